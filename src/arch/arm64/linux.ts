/**
 * What Linux 6.18 believes about an arm64 page-table entry: the predicates, accessors and
 * constructors of arch/arm64/include/asm/pgtable.h, pgtable-hwdef.h, pgtable-prot.h and
 * pgalloc.h, with the protection_map of arch/arm64/mm/mmap.c.
 *
 * The predicates take the entry's halves (lo = bits 31:0, hi = bits 63:32), use 32-bit bit tests
 * only, and allocate nothing. Constructors speak bigint.
 */
import type { Geometry } from '../geometry';
import type { ArchBits, Hi, Lo, PageProt } from '../types';

// ---- pgtable-hwdef.h: hardware bits (bigint, for constructors and callers) ----------------------

export const PTE_VALID = 1n << 0n;
export const PTE_TYPE_MASK = 3n << 0n;
export const PTE_TYPE_PAGE = 3n << 0n;
export const PTE_TABLE_BIT = 1n << 1n;
export const PTE_USER = 1n << 6n; // AP[1]
export const PTE_RDONLY = 1n << 7n; // AP[2]
export const PTE_SHARED = 3n << 8n; // SH[1:0], inner shareable
export const PTE_AF = 1n << 10n;
export const PTE_NG = 1n << 11n;
export const PTE_GP = 1n << 50n;
export const PTE_DBM = 1n << 51n;
export const PTE_CONT = 1n << 52n;
export const PTE_PXN = 1n << 53n;
export const PTE_UXN = 1n << 54n;
export const PTE_SWBITS_MASK = (1n << 63n) | (0xfn << 55n);
export const PTE_ATTRINDX_MASK = 7n << 2n;
export function PTE_ATTRINDX(t: number): bigint {
  return BigInt(t) << 2n;
}

export const PMD_TYPE_MASK = 3n;
export const PMD_TYPE_TABLE = 3n;
export const PMD_TYPE_SECT = 1n;
export const PMD_TABLE_BIT = 1n << 1n;
/** P?D_TABLE_AF: the table Access flag of FEAT_HAFT (ignored without it); set by every p?d_populate. */
export const PMD_TABLE_AF = 1n << 10n;
export const PMD_TABLE_PXN = 1n << 59n;
export const PMD_TABLE_UXN = 1n << 60n;
export const PMD_SECT_CONT = 1n << 52n;

// ---- pgtable-prot.h: software bits -------------------------------------------------------------

/** PTE_WRITE is the DBM bit: writable-clean = DBM with AP[2] set; hardware clears AP[2] on write. */
export const PTE_WRITE = PTE_DBM;
export const PTE_SWP_EXCLUSIVE = 1n << 2n; // only in swap ptes
export const PTE_SWP_UFFD_WP = 1n << 3n; // only in swap ptes
export const PTE_DIRTY = 1n << 55n;
export const PTE_SPECIAL = 1n << 56n;
export const PTE_UFFD_WP = 1n << 58n;
/** PTE_PRESENT_INVALID overlays nG: meaningful only with PTE_VALID clear (since Linux 6.10). */
export const PTE_PRESENT_INVALID = PTE_NG;

// ---- asm/memory.h: MAIR indices ------------------------------------------------------------------

export const MT_NORMAL = 0;
export const MT_NORMAL_TAGGED = 1;
export const MT_NORMAL_NC = 2;
export const MT_DEVICE_nGnRnE = 3;
export const MT_DEVICE_nGnRE = 4;

// ---- swap entry layout (pgtable.h, "Encode and decode a swap entry") ----------------------------

export const __SWP_TYPE_SHIFT = 6;
export const __SWP_TYPE_BITS = 5;
export const __SWP_OFFSET_SHIFT = 12;
export const __SWP_OFFSET_BITS = 50;

// ---- the same bits as 32-bit masks on the halves (hot path) -------------------------------------
// A const enum, so that the bundler writes each value into the code that uses it: a module-level
// constant is a context load and a type check at every use in optimised code, and these masks are
// used once or twice per entry walked. The named exports below are the same values for other modules.
const enum W {
  PTE_VALID_LO = 0x1,
  PTE_TABLE_BIT_LO = 0x2,
  PTE_TYPE_MASK_LO = 0x3,
  PTE_USER_LO = 0x40,
  PTE_RDONLY_LO = 0x80,
  PTE_SHARED_LO = 0x300,
  PTE_AF_LO = 0x400,
  PTE_NG_LO = 0x800,
  PTE_PRESENT_INVALID_LO = W.PTE_NG_LO,
  PTE_GP_HI = 1 << (50 - 32),
  PTE_DBM_HI = 1 << (51 - 32),
  PTE_WRITE_HI = W.PTE_DBM_HI,
  PTE_CONT_HI = 1 << (52 - 32),
  PTE_PXN_HI = 1 << (53 - 32),
  PTE_UXN_HI = 1 << (54 - 32),
  PTE_DIRTY_HI = 1 << (55 - 32),
  PTE_SPECIAL_HI = 1 << (56 - 32),
  PTE_ADDR_HI_MASK = 0x3ffff,
  TWO32 = 4294967296,
}

export const PTE_VALID_LO: number = W.PTE_VALID_LO;
export const PTE_TABLE_BIT_LO: number = W.PTE_TABLE_BIT_LO;
export const PTE_TYPE_MASK_LO: number = W.PTE_TYPE_MASK_LO;
export const PTE_USER_LO: number = W.PTE_USER_LO;
export const PTE_RDONLY_LO: number = W.PTE_RDONLY_LO;
export const PTE_SHARED_LO: number = W.PTE_SHARED_LO;
export const PTE_AF_LO: number = W.PTE_AF_LO;
export const PTE_NG_LO: number = W.PTE_NG_LO;
export const PTE_PRESENT_INVALID_LO: number = W.PTE_PRESENT_INVALID_LO;
export const PTE_GP_HI: number = W.PTE_GP_HI;
export const PTE_DBM_HI: number = W.PTE_DBM_HI;
export const PTE_WRITE_HI: number = W.PTE_WRITE_HI;
export const PTE_CONT_HI: number = W.PTE_CONT_HI;
export const PTE_PXN_HI: number = W.PTE_PXN_HI;
export const PTE_UXN_HI: number = W.PTE_UXN_HI;
export const PTE_DIRTY_HI: number = W.PTE_DIRTY_HI;
export const PTE_SPECIAL_HI: number = W.PTE_SPECIAL_HI;
/** Address bits 49:32 in the high half (PTE_ADDR_LOW's upper part). */
export const PTE_ADDR_HI_MASK: number = W.PTE_ADDR_HI_MASK;

/** The Linux half of ArchBits: everything but the geometry and the manual's encode/decode. */
export type Arm64Linux = Omit<ArchBits, 'geometry' | 'decode' | 'encode'>;

// ---- pte_* helpers on bigint (pgtable.h), used by the constructors -------------------------------

function pteHwDirty(v: bigint): boolean {
  return (v & PTE_WRITE) !== 0n && (v & PTE_RDONLY) === 0n;
}
/** pte_mkdirty: set the software dirty bit; a writable pte also becomes hardware-dirty. */
function pteMkdirty(v: bigint): bigint {
  v |= PTE_DIRTY;
  if ((v & PTE_WRITE) !== 0n) v &= ~PTE_RDONLY;
  return v;
}
/** pte_mkclean: a clean pte is read-only to the hardware until DBM (or a fault) dirties it. */
function pteMkclean(v: bigint): bigint {
  return (v & ~PTE_DIRTY) | PTE_RDONLY;
}
/**
 * pte_mkwrite_novma, as fixed for 6.18 ("arm64, mm: avoid always making PTE dirty in
 * pte_mkwrite()"): only a software-dirty pte loses PTE_RDONLY; a clean one stays writable-clean.
 */
function pteMkwrite(v: bigint): bigint {
  v |= PTE_WRITE;
  if ((v & PTE_DIRTY) !== 0n) v &= ~PTE_RDONLY;
  return v;
}
/** pte_wrprotect: move hardware dirtiness into PTE_DIRTY before dropping write. */
function pteWrprotect(v: bigint): bigint {
  if (pteHwDirty(v)) v |= PTE_DIRTY;
  return (v & ~PTE_WRITE) | PTE_RDONLY;
}

export function createArm64Linux(g: Geometry): Arm64Linux {
  if (g.arch !== 'arm64') throw new RangeError(`createArm64Linux: ${g.name} is not an arm64 geometry`);
  const PAGE_SIZE = g.PAGE_SIZE;
  const PAGE_SHIFT = g.PAGE_SHIFT;
  const PMD_SIZE = g.PMD_SIZE;
  const PUD_SIZE = g.PUD_SIZE;
  const lpa2 = g.pa52 === 'lpa2';
  const k64 = PAGE_SIZE === 65536;
  const physAddrBits = g.pa52 === 'none' ? 48 : 52;
  // PTE_ADDR_LOW = bits[49:PAGE_SHIFT]: its low-half part.
  const addrLoMask = (0xffffffff << PAGE_SHIFT) >>> 0;
  // PTE_MAYBE_SHARED: SH[1:0] with DS = 0, nothing with LPA2 (TCR_ELx.SH holds shareability).
  const maybeShared = lpa2 ? 0n : PTE_SHARED;
  const pudLeafOk = g.pudLeaf;

  /**
   * __pte_to_phys (Linux >= 6.14 always builds the 52-bit helpers): (val & PTE_ADDR_LOW) |
   * ((val & PTE_ADDR_HIGH) << PTE_ADDR_HIGH_SHIFT). 64K: PTE_ADDR_HIGH = bits[15:12], shift 36
   * (address [51:48]); 4K/16K: bits[9:8], shift 42 (address [51:50]), after clearing
   * PTE_MAYBE_SHARED, so without LPA2 the SH bits never reach the address. The high bits are ORed
   * into the high half, as the C code ORs (they may overlap bits 49:48 of PTE_ADDR_LOW).
   */
  const physHigh: (lo: Lo, hi: Hi) => number = k64
    ? (lo, hi) => ((hi & W.PTE_ADDR_HI_MASK) | (((lo >>> 12) & 0xf) << 16)) >>> 0
    : lpa2
      ? (lo, hi) => ((hi & W.PTE_ADDR_HI_MASK) | (((lo >>> 8) & 0x3) << 18)) >>> 0
      : (_lo, hi) => hi & W.PTE_ADDR_HI_MASK;
  const phys = (lo: Lo, hi: Hi): number => physHigh(lo, hi) * W.TWO32 + ((lo & addrLoMask) >>> 0);
  // The leaf masks of leafPfnLow / leafPfnHigh: PTE_ADDR_LOW, and for blocks PMD_MASK / PUD_MASK,
  // split into the halves they clear (a level spanning 4 GiB or more clears high-half bits too).
  const lowSpan = 2 ** (32 - PAGE_SHIFT);
  const blockLoMask = (size: number): number => (size >= W.TWO32 ? 0 : (addrLoMask & ~(size - 1)) >>> 0);
  const blockHiMask = (size: number): number => (size > W.TWO32 ? ~(size / W.TWO32 - 1) : -1);
  const pmdLoMask = blockLoMask(PMD_SIZE);
  const pudLoMask = blockLoMask(PUD_SIZE);
  const pmdHiMask = blockHiMask(PMD_SIZE);
  const pudHiMask = blockHiMask(PUD_SIZE);

  /**
   * __phys_to_pte_val: (phys | phys >> PTE_ADDR_HIGH_SHIFT) & PHYS_TO_PTE_ADDR_MASK. The address is
   * first bounded by the output-address size of this configuration (48 bits without LPA/LPA2): the
   * hardware has no bits for more, and this keeps the SH bits of a non-LPA2 entry out of reach.
   */
  function physToPteVal(pa: bigint): bigint {
    const bounded = pa & ((1n << BigInt(physAddrBits)) - 1n);
    if (k64) {
      const mask = (((1n << 34n) - 1n) << 16n) | (0xfn << 12n); // PTE_ADDR_LOW | PTE_ADDR_HIGH
      return (bounded | (bounded >> 36n)) & mask;
    }
    const mask = ((1n << 50n) - 1n) & ~((1n << 8n) - 1n); // GENMASK_ULL(49, 8)
    return (bounded | (bounded >> 42n)) & mask;
  }

  function pfnToPa(pfn: number, what: string): bigint {
    if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= 2 ** (52 - PAGE_SHIFT)) {
      throw new RangeError(`${what}: pfn ${pfn} is not a page frame number below 2^${52 - PAGE_SHIFT}`);
    }
    return BigInt(pfn) << BigInt(PAGE_SHIFT);
  }

  // pte_present: pte_valid || pte_present_invalid, i.e. VALID set, or VALID clear with nG
  // (PTE_PRESENT_INVALID) set: either bit makes the entry present.
  function leafPfnLow(level: 'pud' | 'pmd' | 'pte', lo: Lo, _hi: Hi): number {
    const mask = level === 'pte' ? addrLoMask : level === 'pmd' ? pmdLoMask : pudLoMask;
    return (lo & mask) >>> PAGE_SHIFT;
  }
  function leafPfnHigh(level: 'pud' | 'pmd' | 'pte', lo: Lo, hi: Hi): number {
    const high = physHigh(lo, hi);
    return level === 'pte' ? high : (high & (level === 'pmd' ? pmdHiMask : pudHiMask)) >>> 0;
  }
  const present = (lo: Lo): boolean => (lo & (W.PTE_VALID_LO | W.PTE_PRESENT_INVALID_LO)) !== 0;
  const none = (lo: Lo, hi: Hi): boolean => lo === 0 && hi === 0;
  // p?d_table / p?d_bad: (val & P?D_TYPE_MASK) != P?D_TYPE_TABLE.
  const notTable = (lo: Lo): boolean => (lo & W.PTE_TYPE_MASK_LO) !== W.PTE_TYPE_MASK_LO;

  function pgprot(prot: PageProt): bigint {
    const read = prot.read ?? true;
    const write = prot.write ?? false;
    const exec = prot.exec ?? false;
    const user = prot.user ?? false;
    const young = prot.young ?? true;
    const dirty = prot.dirty ?? false;
    const memType = prot.memType ?? 'normal';
    // _PAGE_DEFAULT / PROT_DEFAULT: PTE_TYPE_PAGE | PTE_AF | PTE_MAYBE_SHARED | ATTRINDX(MT_NORMAL).
    // With LPA2, adjust_protection_map() strips PTE_SHARED from the user protections too.
    const base = PTE_TYPE_PAGE | PTE_AF | maybeShared | PTE_ATTRINDX(MT_NORMAL);
    let v: bigint;
    if (!read && !write && !exec) {
      // PAGE_NONE: present to Linux (PTE_PRESENT_INVALID), invalid to the hardware.
      v = (base & ~PTE_VALID) | PTE_PRESENT_INVALID | PTE_RDONLY | PTE_NG | PTE_PXN | PTE_UXN;
    } else if (user) {
      // protection_map[] (mm/mmap.c, no EPAN): exec-only maps as READONLY_EXEC; any write is the
      // shared-writable protection (the private-COW case is the mm layer's choice not to pass write).
      v = base | PTE_USER | PTE_RDONLY | PTE_NG | PTE_PXN;
      if (!exec) v |= PTE_UXN; // PAGE_READONLY / PAGE_SHARED vs *_EXEC
      if (write) v |= PTE_WRITE; // PAGE_SHARED*: PTE_RDONLY | PTE_WRITE = writable-clean
      if (prot.global === true) v &= ~PTE_NG;
    } else {
      // PAGE_KERNEL* from PROT_NORMAL = PROT_DEFAULT | PTE_PXN | PTE_UXN | PTE_WRITE | MT_NORMAL.
      // Kernel mappings are never writable-clean: PAGE_KERNEL has PTE_RDONLY clear.
      v = base | PTE_UXN;
      if (write) v |= PTE_WRITE;
      else v |= PTE_RDONLY; // PAGE_KERNEL_RO / _ROX
      if (!exec) v |= PTE_PXN; // PAGE_KERNEL_EXEC / _ROX clear PXN
      if (prot.global === false) v |= PTE_NG; // PTE_MAYBE_NG
    }
    // pgprot_noncached / _writecombine / _device: AttrIndx, and never executable.
    if (memType !== 'normal') {
      const mt = memType === 'uncached' ? MT_DEVICE_nGnRnE : memType === 'device' ? MT_DEVICE_nGnRE : MT_NORMAL_NC;
      v = (v & ~PTE_ATTRINDX_MASK) | PTE_ATTRINDX(mt) | PTE_PXN | PTE_UXN;
    }
    if (!young) v &= ~PTE_AF; // pte_mkold
    if (dirty) v = pteMkdirty(v);
    return v;
  }

  return {
    physAddrBits,

    // pgd_* with 5 levels and p4d_* with 4+ (pgtable_l5/l4_enabled(): the emulated CPU supports
    // the full VA_BITS): none = !val, bad = type != TABLE, present = !none.
    pgdNone: none,
    pgdBad: (lo) => notTable(lo),
    pgdPresent: (lo, hi) => !none(lo, hi),
    p4dNone: none,
    p4dBad: (lo) => notTable(lo),
    p4dPresent: (lo, hi) => !none(lo, hi),

    // pud_none = !val; pud_bad = type != PUD_TYPE_TABLE; pud_present = pte_present(pud_pte(pud)).
    pudNone: none,
    pudBad: (lo) => notTable(lo),
    pudPresent: (lo) => present(lo),
    // pud_leaf = pud_present && !pud_table, but only where PUD blocks exist (pud_sect_supported:
    // 4K); with 64K pud_table() is constant true. The contract returns false elsewhere.
    pudLeaf: pudLeafOk ? (lo) => present(lo) && notTable(lo) : () => false,

    // pmd_none = !val; pmd_bad = !pmd_table; pmd_leaf = pmd_present && !pmd_table.
    pmdNone: none,
    pmdBad: (lo) => notTable(lo),
    pmdPresent: (lo) => present(lo),
    pmdLeaf: (lo) => present(lo) && notTable(lo),
    // pmd_trans_huge = pmd_present && !pmd_table(val | PTE_VALID): a present-invalid huge pmd
    // counts, so only the table bit decides.
    pmdTransHuge: (lo) => present(lo) && (lo & W.PTE_TABLE_BIT_LO) === 0,

    pteNone: none,
    ptePresent: (lo) => present(lo),

    // p?d_page_paddr = __p?d_to_phys = __pte_to_phys.
    tableAddr: phys,
    // pte_pfn; pmd_pfn / pud_pfn mask with PMD_MASK / PUD_MASK first. pfns count PAGE_SIZE units.
    leafPfn(level, lo, hi) {
      return leafPfnHigh(level, lo, hi) * lowSpan + leafPfnLow(level, lo, hi);
    },
    leafPfnLow,
    leafPfnHigh,

    pteWrite: (_lo, hi) => (hi & W.PTE_WRITE_HI) !== 0,
    // pte_dirty = pte_sw_dirty || pte_hw_dirty (PTE_WRITE && !PTE_RDONLY).
    pteDirty: (lo, hi) => (hi & W.PTE_DIRTY_HI) !== 0 || ((hi & W.PTE_WRITE_HI) !== 0 && (lo & W.PTE_RDONLY_LO) === 0),
    pteYoung: (lo) => (lo & W.PTE_AF_LO) !== 0,
    // pte_user_exec: executable at EL0 (UXN clear). Kernel execute permission is PXN's business.
    pteExec: (_lo, hi) => (hi & W.PTE_UXN_HI) === 0,
    pteUser: (lo) => (lo & W.PTE_USER_LO) !== 0,
    // Global = nG clear (on a valid pte; with VALID clear nG is PTE_PRESENT_INVALID instead).
    pteGlobal: (lo) => (lo & W.PTE_NG_LO) === 0,
    pteSpecial: (_lo, hi) => (hi & W.PTE_SPECIAL_HI) !== 0,

    pgprot,

    // pfn_pte: __phys_to_pte_val(pfn << PAGE_SHIFT) | pgprot.
    pfnPte(pfn, prot) {
      return physToPteVal(pfnToPa(pfn, 'pfnPte')) | prot;
    },

    // pfn_pmd / pfn_pud then p?d_mkhuge: clear the table bit (bits[1:0] 0b11 -> 0b01) and leave
    // PTE_VALID alone, so a present-invalid prot stays present-invalid.
    pfnHuge(level, pfn, prot) {
      if (level === 'pud' && !pudLeafOk) throw new RangeError(`pfnHuge: ${g.name} has no PUD leaves (pud_sect_supported() is 4K only)`);
      const v = physToPteVal(pfnToPa(pfn, 'pfnHuge')) | prot;
      return v & ~PTE_TABLE_BIT;
    },

    // p?d_populate (pgalloc.h): __phys_to_p?d_val(pa) | P?D_TYPE_TABLE | P?D_TABLE_AF |
    // (user tables P?D_TABLE_PXN, kernel tables P?D_TABLE_UXN).
    mkTable(level, tablePa, user) {
      if (level === 'pte') throw new RangeError('mkTable: a pte cannot point to a table');
      if (!Number.isSafeInteger(tablePa) || tablePa < 0 || tablePa % PAGE_SIZE !== 0 || tablePa >= 2 ** physAddrBits) {
        throw new RangeError(`mkTable: table address 0x${tablePa.toString(16)} is not a ${PAGE_SIZE}-aligned ${physAddrBits}-bit physical address`);
      }
      return physToPteVal(BigInt(tablePa)) | PMD_TYPE_TABLE | PMD_TABLE_AF | (user ? PMD_TABLE_PXN : PMD_TABLE_UXN);
    },

    // __swp_entry_to_pte(__swp_entry(type, offset)): type in bits 10:6, offset in bits 61:12;
    // bits 1:0 and 11 (PTE_PRESENT_INVALID) stay clear so the pte is neither none nor present.
    mkSwapPte(type, offset) {
      if (!Number.isInteger(type) || type < 0 || type >= 1 << __SWP_TYPE_BITS) {
        throw new RangeError(`mkSwapPte: swap type ${type} does not fit ${__SWP_TYPE_BITS} bits`);
      }
      if (!Number.isSafeInteger(offset) || offset < 0 || offset >= 2 ** __SWP_OFFSET_BITS) {
        throw new RangeError(`mkSwapPte: swap offset ${offset} does not fit ${__SWP_OFFSET_BITS} bits`);
      }
      return (BigInt(type) << BigInt(__SWP_TYPE_SHIFT)) | (BigInt(offset) << BigInt(__SWP_OFFSET_SHIFT));
    },
    swapType: (lo) => (lo >>> __SWP_TYPE_SHIFT) & ((1 << __SWP_TYPE_BITS) - 1),
    // Offset bits 61:12: 20 bits from lo, 30 from hi.
    swapOffset: (lo, hi) => (lo >>> __SWP_OFFSET_SHIFT) + (hi & 0x3fffffff) * 2 ** (32 - __SWP_OFFSET_SHIFT),

    // pte_mkspecial: the software PTE_SPECIAL bit (56).
    pteMkspecial: (pte) => pte | PTE_SPECIAL,

    // pte_modify: hardware dirtiness is saved in PTE_DIRTY first, the protection bits (USER, PXN,
    // UXN, RDONLY, PRESENT_INVALID, VALID, WRITE, GP, AttrIndx) come from newprot, and a dirty pte
    // is made dirty again under the new protection.
    pteModifyProt(pte, newprot) {
      const mask = PTE_USER | PTE_PXN | PTE_UXN | PTE_RDONLY | PTE_PRESENT_INVALID | PTE_VALID | PTE_WRITE | PTE_GP | PTE_ATTRINDX_MASK;
      let v = pte;
      if (pteHwDirty(v)) v |= PTE_DIRTY;
      v = (v & ~mask) | (newprot & mask);
      if ((v & PTE_DIRTY) !== 0n) v = pteMkdirty(v);
      return v;
    },

    pteModify(pte, change) {
      let v = pte;
      if (change.young === true) v |= PTE_AF;
      else if (change.young === false) v &= ~PTE_AF;
      if (change.dirty === true) v = pteMkdirty(v);
      else if (change.dirty === false) v = pteMkclean(v);
      if (change.write === true) v = pteMkwrite(v);
      else if (change.write === false) v = pteWrprotect(v);
      return v;
    },
  };
}
