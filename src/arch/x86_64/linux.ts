/**
 * What Linux 6.18 believes about an x86-64 entry: the predicates and constructors of
 * arch/x86/include/asm/pgtable.h, pgtable_types.h, pgtable_64.h and pgtable-invert.h.
 *
 * Configuration modelled (the choices a distribution kernel makes, stated once):
 *  - CONFIG_X86_64: _PAGE_NX, _PAGE_SAVED_DIRTY (bit 58) and _PAGE_KNL_ERRATUM_MASK are real bits.
 *  - CONFIG_MITIGATION_PAGE_TABLE_ISOLATION off: p4d_bad()/pgd_bad() do not ignore NX.
 *  - CONFIG_MEM_SOFT_DIRTY off: pte_mkdirty() sets no soft-dirty bit.
 *  - no user shadow stacks (X86_FEATURE_USER_SHSTK): pte_write() is the RW bit alone.
 *  - no memory encryption: physical_mask keeps bits 51:0, so PTE_PFN_MASK is bits 51:12.
 *  - ARCH_HAS_PTE_DEVMAP is gone (removed in 6.17): pmd_trans_huge() is the PSE bit alone.
 *
 * The predicates take the entry's halves (lo = bits 31:0, hi = bits 63:32), use 32-bit tests only
 * and allocate nothing. Bit 63 (NX) is hi bit 31, bit 58 (SAVED_DIRTY) hi bit 26, the PKEY bits
 * 62:59 hi bits 30:27.
 */
import type { LevelName } from '../geometry';
import type { Hi, Lo, PageProt } from '../types';

// ---- pgtable_types.h: bit numbers and masks (bigint, for the constructors and the API) --------

export const _PAGE_BIT_PRESENT = 0;
export const _PAGE_BIT_RW = 1;
export const _PAGE_BIT_USER = 2;
export const _PAGE_BIT_PWT = 3;
export const _PAGE_BIT_PCD = 4;
export const _PAGE_BIT_ACCESSED = 5;
export const _PAGE_BIT_DIRTY = 6;
export const _PAGE_BIT_PSE = 7;
export const _PAGE_BIT_PAT = 7;
export const _PAGE_BIT_GLOBAL = 8;
export const _PAGE_BIT_SOFTW1 = 9;
export const _PAGE_BIT_SOFTW2 = 10;
export const _PAGE_BIT_SOFTW3 = 11;
export const _PAGE_BIT_PAT_LARGE = 12;
export const _PAGE_BIT_SOFTW4 = 57;
export const _PAGE_BIT_SOFTW5 = 58;
export const _PAGE_BIT_PKEY_BIT0 = 59;
export const _PAGE_BIT_NX = 63;
export const _PAGE_BIT_SPECIAL = _PAGE_BIT_SOFTW1;
export const _PAGE_BIT_UFFD_WP = _PAGE_BIT_SOFTW2;
export const _PAGE_BIT_SOFT_DIRTY = _PAGE_BIT_SOFTW3;
export const _PAGE_BIT_SAVED_DIRTY = _PAGE_BIT_SOFTW5;
/** Only meaningful with _PAGE_PRESENT clear: the global bit marks a PROT_NONE mapping. */
export const _PAGE_BIT_PROTNONE = _PAGE_BIT_GLOBAL;

export const _PAGE_PRESENT = 1n << 0n;
export const _PAGE_RW = 1n << 1n;
export const _PAGE_USER = 1n << 2n;
export const _PAGE_PWT = 1n << 3n;
export const _PAGE_PCD = 1n << 4n;
export const _PAGE_ACCESSED = 1n << 5n;
export const _PAGE_DIRTY = 1n << 6n;
export const _PAGE_PSE = 1n << 7n;
/** PAT bit of a 4K pte (bit 7, where large entries have PSE). */
export const _PAGE_PAT = 1n << 7n;
export const _PAGE_GLOBAL = 1n << 8n;
export const _PAGE_SOFTW1 = 1n << 9n;
export const _PAGE_SOFTW2 = 1n << 10n;
export const _PAGE_SOFTW3 = 1n << 11n;
/** PAT bit of a 2M/1G leaf. */
export const _PAGE_PAT_LARGE = 1n << 12n;
export const _PAGE_SPECIAL = 1n << 9n;
export const _PAGE_UFFD_WP = 1n << 10n;
export const _PAGE_SOFT_DIRTY = 1n << 11n;
export const _PAGE_SOFTW4 = 1n << 57n;
/** Dirty state of a Write=0 entry, kept out of bit 6 so it never reads as a shadow-stack page. */
export const _PAGE_SAVED_DIRTY = 1n << 58n;
export const _PAGE_PKEY_MASK = 0xfn << 59n;
export const _PAGE_NX = 1n << 63n;
export const _PAGE_PROTNONE = 1n << 8n;
export const _PAGE_DIRTY_BITS = _PAGE_DIRTY | _PAGE_SAVED_DIRTY;
/** Knights Landing may set A and D in a not-present entry: the none tests ignore them. */
export const _PAGE_KNL_ERRATUM_MASK = _PAGE_DIRTY | _PAGE_ACCESSED;
export const _PAGE_CACHE_MASK = _PAGE_PAT | _PAGE_PCD | _PAGE_PWT;

export const _PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY;
export const _KERNPG_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY;

/** PAGE_NONE: a PROT_NONE mapping (not present to the CPU, present to Linux). */
export const PAGE_NONE = _PAGE_PROTNONE | _PAGE_ACCESSED;

/** __PHYSICAL_MASK_SHIFT = 52 (page_64_types.h). */
export const __PHYSICAL_MASK_SHIFT = 52;
/** PTE_PFN_MASK: bits 51:12. */
export const PTE_PFN_MASK = ((1n << 52n) - 1n) & ~0xfffn;
/** PTE_FLAGS_MASK: bits 63:52 and 11:0. */
export const PTE_FLAGS_MASK = ~PTE_PFN_MASK & ((1n << 64n) - 1n);
/** PHYSICAL_PMD_PAGE_MASK: bits 51:21. */
export const PHYSICAL_PMD_PAGE_MASK = ((1n << 52n) - 1n) & ~((1n << 21n) - 1n);
/** PHYSICAL_PUD_PAGE_MASK: bits 51:30. */
export const PHYSICAL_PUD_PAGE_MASK = ((1n << 52n) - 1n) & ~((1n << 30n) - 1n);

// pgtable_64.h swap entries: TYPE in 63:59, ~OFFSET in 58:9, bits 8:0 clear.
export const SWP_TYPE_BITS = 5;
export const SWP_OFFSET_FIRST_BIT = _PAGE_BIT_PROTNONE + 1;
export const SWP_OFFSET_SHIFT = SWP_OFFSET_FIRST_BIT + SWP_TYPE_BITS;
/** Offsets have 64 - 5 - 9 = 50 bits. */
export const SWP_OFFSET_BITS = 64 - SWP_TYPE_BITS - SWP_OFFSET_FIRST_BIT;

// ---- the same bits as 32-bit word masks, for the hot path -------------------------------------
// A const enum, so that the bundler writes each value into the code that uses it: a module-level
// constant is a memory load and a type check at every use in optimised code, and these masks are
// used once or twice per entry walked. The named exports below are the same values for other modules.

const enum W {
  _PAGE_PRESENT_LO = 0x1,
  _PAGE_RW_LO = 0x2,
  _PAGE_USER_LO = 0x4,
  _PAGE_PWT_LO = 0x8,
  _PAGE_PCD_LO = 0x10,
  _PAGE_ACCESSED_LO = 0x20,
  _PAGE_DIRTY_LO = 0x40,
  _PAGE_PSE_LO = 0x80,
  _PAGE_PAT_LO = 0x80,
  _PAGE_GLOBAL_LO = 0x100,
  _PAGE_PROTNONE_LO = 0x100,
  _PAGE_SPECIAL_LO = 0x200,
  _PAGE_PAT_LARGE_LO = 0x1000,
  _PAGE_SAVED_DIRTY_HI = 0x04000000,
  _PAGE_PKEY_MASK_HI = 0x78000000,
  _PAGE_NX_HI = 0x80000000,
  PTE_PFN_MASK_LO = 0xfffff000,
  PTE_PFN_MASK_HI = 0x000fffff,
  PTE_FLAGS_MASK_LO = 0x00000fff,
  PTE_FLAGS_MASK_HI = 0xfff00000,
  PHYSICAL_PMD_PAGE_MASK_LO = 0xffe00000,
  PHYSICAL_PUD_PAGE_MASK_LO = 0xc0000000,
  KNL_ERRATUM_LO = 0x60, // _PAGE_DIRTY | _PAGE_ACCESSED
  KERNPG_TABLE_LO = 0x63, // _KERNPG_TABLE
}
export const _PAGE_PRESENT_LO: number = W._PAGE_PRESENT_LO;
export const _PAGE_RW_LO: number = W._PAGE_RW_LO;
export const _PAGE_USER_LO: number = W._PAGE_USER_LO;
export const _PAGE_PWT_LO: number = W._PAGE_PWT_LO;
export const _PAGE_PCD_LO: number = W._PAGE_PCD_LO;
export const _PAGE_ACCESSED_LO: number = W._PAGE_ACCESSED_LO;
export const _PAGE_DIRTY_LO: number = W._PAGE_DIRTY_LO;
export const _PAGE_PSE_LO: number = W._PAGE_PSE_LO;
export const _PAGE_PAT_LO: number = W._PAGE_PAT_LO;
export const _PAGE_GLOBAL_LO: number = W._PAGE_GLOBAL_LO;
export const _PAGE_PROTNONE_LO: number = W._PAGE_PROTNONE_LO;
export const _PAGE_SPECIAL_LO: number = W._PAGE_SPECIAL_LO;
export const _PAGE_PAT_LARGE_LO: number = W._PAGE_PAT_LARGE_LO;
/** Bit 58 is hi bit 26. */
export const _PAGE_SAVED_DIRTY_HI: number = W._PAGE_SAVED_DIRTY_HI;
/** Bits 62:59 are hi bits 30:27. */
export const _PAGE_PKEY_MASK_HI: number = W._PAGE_PKEY_MASK_HI;
/** Bit 63 is hi bit 31. */
export const _PAGE_NX_HI: number = W._PAGE_NX_HI;
export const PTE_PFN_MASK_LO: number = W.PTE_PFN_MASK_LO;
export const PTE_PFN_MASK_HI: number = W.PTE_PFN_MASK_HI;
export const PTE_FLAGS_MASK_LO: number = W.PTE_FLAGS_MASK_LO;
export const PTE_FLAGS_MASK_HI: number = W.PTE_FLAGS_MASK_HI;
export const PHYSICAL_PMD_PAGE_MASK_LO: number = W.PHYSICAL_PMD_PAGE_MASK_LO;
export const PHYSICAL_PUD_PAGE_MASK_LO: number = W.PHYSICAL_PUD_PAGE_MASK_LO;

const TWO_32 = 4294967296;

// ---- pgtable.h predicates ---------------------------------------------------------------------

/** pte_none: `!(pte & ~_PAGE_KNL_ERRATUM_MASK)`. */
export function pteNone(lo: Lo, hi: Hi): boolean {
  return (lo & ~W.KNL_ERRATUM_LO) === 0 && hi === 0;
}

/** pte_present: `pte_flags(a) & (_PAGE_PRESENT | _PAGE_PROTNONE)` — a PROT_NONE pte is present to Linux. */
export function ptePresent(lo: Lo, _hi: Hi): boolean {
  return (lo & (W._PAGE_PRESENT_LO | W._PAGE_PROTNONE_LO)) !== 0;
}

/** pmd_none: `(val & ~_PAGE_KNL_ERRATUM_MASK) == 0`. */
export function pmdNone(lo: Lo, hi: Hi): boolean {
  return (lo & ~W.KNL_ERRATUM_LO) === 0 && hi === 0;
}

/**
 * pmd_present: PRESENT | PROTNONE | PSE — a huge pmd being split keeps PSE while PRESENT is
 * briefly clear.
 */
export function pmdPresent(lo: Lo, _hi: Hi): boolean {
  return (lo & (W._PAGE_PRESENT_LO | W._PAGE_PROTNONE_LO | W._PAGE_PSE_LO)) !== 0;
}

/**
 * pmd_bad: `(pmd_flags(pmd) & ~(_PAGE_USER | _PAGE_ACCESSED)) != (_KERNPG_TABLE & ~_PAGE_ACCESSED)`.
 * The flags are bits 11:0 and 63:52 (a PSE pmd's wider flags mask only adds bits 20:12, and PSE
 * alone already makes it bad), so NX or any high software bit makes a table entry bad.
 */
export function pmdBad(lo: Lo, hi: Hi): boolean {
  return (lo & W.PTE_FLAGS_MASK_LO & ~(W._PAGE_USER_LO | W._PAGE_ACCESSED_LO)) !== (W.KERNPG_TABLE_LO & ~W._PAGE_ACCESSED_LO) ||
    (hi & W.PTE_FLAGS_MASK_HI) !== 0;
}

/** pmd_leaf: `pmd_flags(pte) & _PAGE_PSE`. */
export function pmdLeaf(lo: Lo, _hi: Hi): boolean {
  return (lo & W._PAGE_PSE_LO) !== 0;
}

/** pmd_trans_huge: `(pmd_val(pmd) & _PAGE_PSE) == _PAGE_PSE` (no _PAGE_DEVMAP since 6.17). */
export function pmdTransHuge(lo: Lo, _hi: Hi): boolean {
  return (lo & W._PAGE_PSE_LO) !== 0;
}

/** pud_none: `(pud & ~_PAGE_KNL_ERRATUM_MASK) == 0`. */
export function pudNone(lo: Lo, hi: Hi): boolean {
  return (lo & ~W.KNL_ERRATUM_LO) === 0 && hi === 0;
}

/** pud_present: `pud_flags(pud) & _PAGE_PRESENT`. */
export function pudPresent(lo: Lo, _hi: Hi): boolean {
  return (lo & W._PAGE_PRESENT_LO) !== 0;
}

/**
 * pud_leaf: `pud_val(pud) & _PAGE_PSE`. Since 6.12 ("mm/x86: make pud_leaf() only care about PSE
 * bit") a PROT_NONE 1 GiB leaf (PRESENT clear) is still a leaf; before, PRESENT was required too.
 */
export function pudLeaf(lo: Lo, _hi: Hi): boolean {
  return (lo & W._PAGE_PSE_LO) !== 0;
}

/** pud_bad: `(pud_flags(pud) & ~(_KERNPG_TABLE | _PAGE_USER)) != 0`. */
export function pudBad(lo: Lo, hi: Hi): boolean {
  return (lo & W.PTE_FLAGS_MASK_LO & ~(W.KERNPG_TABLE_LO | W._PAGE_USER_LO)) !== 0 || (hi & W.PTE_FLAGS_MASK_HI) !== 0;
}

/** p4d_none: `(p4d & ~_PAGE_KNL_ERRATUM_MASK) == 0`. */
export function p4dNone(lo: Lo, hi: Hi): boolean {
  return (lo & ~W.KNL_ERRATUM_LO) === 0 && hi === 0;
}

/** p4d_present: `p4d_flags(p4d) & _PAGE_PRESENT`. */
export function p4dPresent(lo: Lo, _hi: Hi): boolean {
  return (lo & W._PAGE_PRESENT_LO) !== 0;
}

/** p4d_bad: `(p4d_flags(p4d) & ~(_KERNPG_TABLE | _PAGE_USER)) != 0` (PTI off: NX is not ignored). */
export function p4dBad(lo: Lo, hi: Hi): boolean {
  return (lo & W.PTE_FLAGS_MASK_LO & ~(W.KERNPG_TABLE_LO | W._PAGE_USER_LO)) !== 0 || (hi & W.PTE_FLAGS_MASK_HI) !== 0;
}

/** pgd_none (5-level): `!native_pgd_val(pgd)` — no KNL workaround, PGDs only point to tables. */
export function pgdNone(lo: Lo, hi: Hi): boolean {
  return lo === 0 && hi === 0;
}

/** pgd_present (5-level): `pgd_flags(pgd) & _PAGE_PRESENT`. */
export function pgdPresent(lo: Lo, _hi: Hi): boolean {
  return (lo & W._PAGE_PRESENT_LO) !== 0;
}

/**
 * pgd_bad (5-level): `(pgd_flags(pgd) & ~_PAGE_USER) != _KERNPG_TABLE` (PTI off) — stricter than
 * p4d_bad: A and D must both be set.
 */
export function pgdBad(lo: Lo, hi: Hi): boolean {
  return (lo & W.PTE_FLAGS_MASK_LO & ~W._PAGE_USER_LO) !== W.KERNPG_TABLE_LO || (hi & W.PTE_FLAGS_MASK_HI) !== 0;
}

/** p?d_page_paddr / p?d_pgtable: bits 51:12 of a table entry. */
export function tableAddr(lo: Lo, hi: Hi): number {
  return (hi & W.PTE_PFN_MASK_HI) * TWO_32 + ((lo & W.PTE_PFN_MASK_LO) >>> 0);
}

/*
 * A non-zero entry without PRESENT (PROT_NONE, swap) holds its PFN inverted (the L1TF mitigation of
 * pgtable-invert.h), so both halves are xored with all-ones before masking. The flip is written out
 * in each function rather than called: a call to a module-level function is re-checked at every
 * use in optimised code. An xor rather than reassigning ~lo keeps the halves 32-bit integers on both
 * paths, so the optimiser never boxes them.
 */

/**
 * Bits 31:12 of a present leaf's frame address, >>> 12: the pfn's low 20 bits (pmd and pud leaves
 * masked to their page size, as pmd_pfn / pud_pfn mask with PHYSICAL_P?D_PAGE_MASK).
 */
export function leafPfnLow(level: 'pud' | 'pmd' | 'pte', lo: Lo, hi: Hi): number {
  const flip = (lo & W._PAGE_PRESENT_LO) === 0 && (lo !== 0 || hi !== 0) ? -1 : 0;
  const loMask = level === 'pte' ? W.PTE_PFN_MASK_LO : level === 'pmd' ? W.PHYSICAL_PMD_PAGE_MASK_LO : W.PHYSICAL_PUD_PAGE_MASK_LO;
  return ((lo ^ flip) & loMask) >>> 12;
}

/** Bits 51:32 of a present leaf's frame address (pfn bits 39:20). */
export function leafPfnHigh(_level: 'pud' | 'pmd' | 'pte', lo: Lo, hi: Hi): number {
  const flip = (lo & W._PAGE_PRESENT_LO) === 0 && (lo !== 0 || hi !== 0) ? -1 : 0;
  return (hi ^ flip) & W.PTE_PFN_MASK_HI;
}

/** pte_pfn / pmd_pfn / pud_pfn, inverted entries inverted back. */
export function leafPfn(level: 'pud' | 'pmd' | 'pte', lo: Lo, hi: Hi): number {
  return leafPfnHigh(level, lo, hi) * 1048576 + leafPfnLow(level, lo, hi);
}

// ---- pte accessors (valid on a present pte) ---------------------------------------------------

/** pte_write: RW (pte_shstk() is false without user shadow stacks). */
export function pteWrite(lo: Lo, _hi: Hi): boolean {
  return (lo & W._PAGE_RW_LO) !== 0;
}

/** pte_dirty: `pte_flags(pte) & _PAGE_DIRTY_BITS` — D, or SAVED_DIRTY for a write-protected pte. */
export function pteDirty(lo: Lo, hi: Hi): boolean {
  return (lo & W._PAGE_DIRTY_LO) !== 0 || (hi & W._PAGE_SAVED_DIRTY_HI) !== 0;
}

/** pte_young: A. */
export function pteYoung(lo: Lo, _hi: Hi): boolean {
  return (lo & W._PAGE_ACCESSED_LO) !== 0;
}

/** pte_exec: `!(pte_flags(pte) & _PAGE_NX)`. */
export function pteExec(_lo: Lo, hi: Hi): boolean {
  return (hi & W._PAGE_NX_HI) === 0;
}

/** US (pte_flags & _PAGE_USER). */
export function pteUser(lo: Lo, _hi: Hi): boolean {
  return (lo & W._PAGE_USER_LO) !== 0;
}

/** pte_global: G. */
export function pteGlobal(lo: Lo, _hi: Hi): boolean {
  return (lo & W._PAGE_GLOBAL_LO) !== 0;
}

/** pte_special: _PAGE_SPECIAL (bit 9, _PAGE_BIT_SOFTW1). */
export function pteSpecial(lo: Lo, _hi: Hi): boolean {
  return (lo & W._PAGE_SPECIAL_LO) !== 0;
}

// ---- constructors (bigint) --------------------------------------------------------------------

const U64 = (1n << 64n) - 1n;
const MAX_PFN = 2 ** (__PHYSICAL_MASK_SHIFT - 12);

function checkPgprot(pgprot: bigint): void {
  if (typeof pgprot !== 'bigint' || pgprot < 0n || pgprot > U64) {
    throw new RangeError(`pgprot ${String(pgprot)} is not a 64-bit value`);
  }
  if (pgprot & PTE_PFN_MASK) {
    throw new RangeError(`pgprot 0x${pgprot.toString(16)} has bits in PTE_PFN_MASK (51:12): a protection holds no frame`);
  }
}

function checkPfn(pfn: number): void {
  if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= MAX_PFN) {
    throw new RangeError(`pfn ${pfn} is out of range: expected an integer 0..2^40-1 (52-bit physical addresses)`);
  }
}

/** pgtable-invert.h __pte_needs_invert: non-zero and not present (PROT_NONE, swap). */
function needsInvert(val: bigint): boolean {
  return val !== 0n && (val & _PAGE_PRESENT) === 0n;
}

/** massage_pgprot: a present pgprot loses the bits __supported_pte_mask lacks (NX without EFER.NXE). */
export function massagePgprot(pgprot: bigint, nxe: boolean): bigint {
  return pgprot & _PAGE_PRESENT && !nxe ? pgprot & ~_PAGE_NX : pgprot;
}

/**
 * cachemode2protval with Linux's PAT programming (arch/x86/mm/pat/memtype.c: PAT0 WB, PAT1 WC,
 * PAT2 UC-, PAT3 UC, …): WC is slot 1 (PWT), UC slot 3 (PCD|PWT).
 */
function cacheBits(memType: PageProt['memType']): bigint {
  switch (memType ?? 'normal') {
    case 'normal':
      return 0n;
    case 'wc':
      return _PAGE_PWT;
    case 'uncached':
    case 'device':
      return _PAGE_PCD | _PAGE_PWT;
    default:
      throw new RangeError(`unknown memType '${String(memType)}': expected normal, uncached, device or wc`);
  }
}

/**
 * vm_get_page_prot: protection_map[] (PAGE_READONLY, PAGE_SHARED, …) plus the pkey bits, masked
 * by __supported_pte_mask. x86 has no write-only or exec-only pages: any access makes the page
 * present and readable; no access at all is PAGE_NONE.
 *
 * dirty on a read-only protection is SAVED_DIRTY, not D: Linux never builds Write=0,Dirty=1 (the
 * shadow-stack encoding; pfn_pte() warns on it) and pte_mkdirty() on such a pte moves D there.
 */
export function pgprot(prot: PageProt, nxe: boolean): bigint {
  const read = prot.read ?? true;
  const write = prot.write ?? false;
  const exec = prot.exec ?? false;
  let val = cacheBits(prot.memType);
  if (prot.pkey !== undefined) {
    if (!Number.isInteger(prot.pkey) || prot.pkey < 0 || prot.pkey > 15) {
      throw new RangeError(`pkey ${prot.pkey} is out of range: x86-64 protection keys are 0..15`);
    }
    val |= BigInt(prot.pkey) << BigInt(_PAGE_BIT_PKEY_BIT0);
  }
  if (!read && !write && !exec) return val | PAGE_NONE;
  val |= _PAGE_PRESENT;
  if (write) val |= _PAGE_RW;
  if (prot.user) val |= _PAGE_USER;
  if (!exec) val |= _PAGE_NX;
  if (prot.young ?? true) val |= _PAGE_ACCESSED;
  if (prot.dirty) val |= write ? _PAGE_DIRTY : _PAGE_SAVED_DIRTY;
  if (prot.global) val |= _PAGE_GLOBAL;
  return massagePgprot(val, nxe);
}

/** pfn_pte: the frame (inverted for a PROT_NONE pgprot) masked by PTE_PFN_MASK, or'd with the pgprot. */
export function pfnPte(pfn: number, prot: bigint, nxe: boolean): bigint {
  checkPfn(pfn);
  checkPgprot(prot);
  let pa = BigInt(pfn) << 12n;
  if (needsInvert(prot)) pa = ~pa;
  return (pa & PTE_PFN_MASK) | massagePgprot(prot, nxe);
}

/** pgprot_4k_2_large: the 4K PAT bit (7) moves to bit 12, freeing bit 7 for PSE. */
export function pgprot4kToLarge(prot: bigint): bigint {
  return (prot & ~(_PAGE_PAT | _PAGE_PAT_LARGE)) | ((prot & _PAGE_PAT) << BigInt(_PAGE_BIT_PAT_LARGE - _PAGE_BIT_PAT));
}

/** pmd_mkhuge(pfn_pmd(pfn, pgprot_4k_2_large(prot))) and the pud equivalent. */
export function pfnHuge(level: 'pmd' | 'pud', pfn: number, prot: bigint, nxe: boolean): bigint {
  if (level !== 'pmd' && level !== 'pud') throw new RangeError(`pfnHuge level '${String(level)}': expected pmd or pud`);
  checkPfn(pfn);
  checkPgprot(prot);
  const span = level === 'pmd' ? 512 : 262144;
  if (pfn % span !== 0) {
    throw new RangeError(`pfn 0x${pfn.toString(16)} is not aligned to a ${level === 'pmd' ? '2 MiB' : '1 GiB'} page (${span} frames)`);
  }
  const large = pgprot4kToLarge(prot) | _PAGE_PSE;
  let pa = BigInt(pfn) << 12n;
  if (needsInvert(large)) pa = ~pa;
  return (pa & (level === 'pmd' ? PHYSICAL_PMD_PAGE_MASK : PHYSICAL_PUD_PAGE_MASK)) | massagePgprot(large, nxe);
}

/**
 * pmd_populate / pud_populate / p4d_populate / pgd_populate: `_PAGE_TABLE | __pa(table)` for user
 * tables, `_KERNPG_TABLE | __pa(table)` for kernel ones (pmd_populate_kernel, …).
 */
export function mkTable(level: LevelName, tablePa: number, user: boolean): bigint {
  if (level === 'pte') throw new RangeError('a pte maps a page: no table entry at level pte');
  if (!Number.isSafeInteger(tablePa) || tablePa < 0 || tablePa % 4096 !== 0 || tablePa >= 2 ** __PHYSICAL_MASK_SHIFT) {
    throw new RangeError(`table address 0x${tablePa.toString(16)} is not a 4 KiB-aligned physical address below 2^52`);
  }
  return BigInt(tablePa) | (user ? _PAGE_TABLE : _KERNPG_TABLE);
}

/**
 * __swp_entry_to_pte(__swp_entry(type, offset)) of pgtable_64.h: type in bits 63:59, the offset
 * inverted in bits 58:9 (so a swap pte's "frame" bits point at the top of physical memory, the
 * L1TF mitigation), bits 8:0 clear so neither PRESENT, PROTNONE nor PSE reads as set.
 */
export function mkSwapPte(type: number, offset: number): bigint {
  if (!Number.isInteger(type) || type < 0 || type >= 1 << SWP_TYPE_BITS) {
    throw new RangeError(`swap type ${type} is out of range: SWP_TYPE_BITS = 5 allows 0..31`);
  }
  if (!Number.isSafeInteger(offset) || offset < 0 || offset >= 2 ** SWP_OFFSET_BITS) {
    throw new RangeError(`swap offset ${offset} is out of range: x86-64 swap ptes hold 50-bit offsets`);
  }
  const inverted = ((1n << BigInt(SWP_OFFSET_BITS)) - 1n) ^ BigInt(offset);
  return (inverted << BigInt(SWP_OFFSET_FIRST_BIT)) | (BigInt(type) << BigInt(64 - SWP_TYPE_BITS));
}

/** __swp_type: bits 63:59. */
export function swapType(_lo: Lo, hi: Hi): number {
  return hi >>> (32 - SWP_TYPE_BITS);
}

/** __swp_offset: bits 58:9, inverted back. */
export function swapOffset(lo: Lo, hi: Hi): number {
  const low = (~lo >>> SWP_OFFSET_FIRST_BIT) & 0x7fffff; // bits 31:9 -> offset bits 22:0
  const high = ~hi & 0x7ffffff; // bits 58:32 -> offset bits 49:23
  return high * 8388608 + low;
}

/**
 * pte_mkwrite/pte_wrprotect, pte_mkdirty/pte_mkclean, pte_mkyoung/pte_mkold with 6.18's dirty
 * shuffling: wrprotect moves D to SAVED_DIRTY (mksaveddirty_shift), mkwrite moves it back
 * (clear_saveddirty_shift), mkdirty on a read-only pte lands in SAVED_DIRTY, mkclean clears both.
 */
export function pteModify(pte: bigint, change: { young?: boolean; write?: boolean; dirty?: boolean }): bigint {
  if (typeof pte !== 'bigint' || pte < 0n || pte > U64) throw new RangeError(`pte ${String(pte)} is not a 64-bit value`);
  let v = pte;
  if (change.write === true) {
    v |= _PAGE_RW;
    v = clearSavedDirtyShift(v);
  } else if (change.write === false) {
    v &= ~_PAGE_RW;
    v = mkSavedDirtyShift(v);
  }
  if (change.dirty === true) {
    v |= _PAGE_DIRTY;
    v = mkSavedDirtyShift(v);
  } else if (change.dirty === false) {
    v &= ~_PAGE_DIRTY_BITS;
  }
  if (change.young === true) v |= _PAGE_ACCESSED;
  else if (change.young === false) v &= ~_PAGE_ACCESSED;
  return v;
}

/** mksaveddirty_shift: when Write = 0, D moves to SAVED_DIRTY. */
function mkSavedDirtyShift(v: bigint): bigint {
  if (v & _PAGE_RW) return v;
  if (v & _PAGE_DIRTY) v = (v | _PAGE_SAVED_DIRTY) & ~_PAGE_DIRTY;
  return v;
}

/** clear_saveddirty_shift: when Write = 1, SAVED_DIRTY moves to D. */
function clearSavedDirtyShift(v: bigint): bigint {
  if (!(v & _PAGE_RW)) return v;
  if (v & _PAGE_SAVED_DIRTY) v = (v | _PAGE_DIRTY) & ~_PAGE_SAVED_DIRTY;
  return v;
}

/** pte_mkspecial: _PAGE_SPECIAL (software bit 9). */
export function pteMkspecial(pte: bigint): bigint {
  return pte | _PAGE_SPECIAL;
}

/**
 * _PAGE_CHG_MASK (pgtable_types.h): what pte_modify keeps from the old pte — the frame, the
 * cache bits, special, accessed, both dirty bits and soft-dirty; the rest comes from newprot.
 */
const _PAGE_CHG_MASK =
  PTE_PFN_MASK | _PAGE_PCD | _PAGE_PWT | _PAGE_SPECIAL | _PAGE_ACCESSED | _PAGE_DIRTY_BITS | _PAGE_SOFT_DIRTY | _PAGE_UFFD_WP;

/**
 * pte_modify (6.18 arch/x86/include/asm/pgtable.h): keep _PAGE_CHG_MASK plus the PAT bit, take the
 * rest from newprot (massaged); flip_protnone_guard re-inverts the frame when the pte moves into or
 * out of PROT_NONE; then the dirty bit lands in D or SAVED_DIRTY by the new Write bit.
 */
export function pteModifyProt(pte: bigint, newprot: bigint, nxe: boolean): bigint {
  const keep = _PAGE_CHG_MASK | _PAGE_PAT;
  let v = (pte & keep) | (massagePgprot(newprot, nxe) & ~keep);
  const oldInv = needsInvert(pte);
  const newInv = needsInvert(v);
  if (oldInv !== newInv) v = (v & ~PTE_PFN_MASK) | (~v & PTE_PFN_MASK);
  return (v & _PAGE_RW) !== 0n ? clearSavedDirtyShift(v) : mkSavedDirtyShift(v);
}
