/**
 * The contract every architecture module fulfils: what Linux's <asm/pgtable.h> supplies, plus the
 * manuals' descriptor formats.
 *
 * Two audiences:
 *  - the walker and the mm layer call the predicates once per visited entry. They take the entry's
 *    two 32-bit halves (lo = bits 31:0, hi = bits 63:32), never a BigInt, and allocate nothing.
 *  - tools, tests and the CLI call encode/decode, which speak bigint and manual field names.
 *
 * The predicates are the *real* tests of an entry at a logical level, as the arch defines them
 * when that level is not a folded parent. Folding (the trivial pgd_none() of pgtable-nop4d.h and
 * friends) is applied once, above this contract, by src/arch/pgtable.ts.
 */
import type { Geometry, LevelName } from './geometry';

/** A 64-bit descriptor split into its halves, as the hot path holds it. */
export type Lo = number;
export type Hi = number;

/** One named field of a decoded descriptor, with its bit positions (msb >= lsb, inclusive). */
export interface DescriptorField {
  /** The manual's name in camelCase: x86 `p`, `rw`, `us`, `pwt`, `pcd`, `a`, `d`, `ps`, `g`, `pat`, `addr`, `pkey`, `xd`; ARM64 `valid`, `type`, `attrIndx`, `ns`, `ap`, `sh`, `af`, `nG`, `oa`, `dbm`, `contiguous`, `pxn`, `uxn`, `gp`, `nsTable`, `apTable`, `uxnTable`, `pxnTable`, … */
  readonly name: string;
  readonly msb: number;
  readonly lsb: number;
  /** The field's raw bits (msb:lsb shifted down), for every field, address fields included. */
  readonly value: bigint;
  /** For address fields only: the whole physical address the field (with any split high bits, e.g. LPA's OA[51:48]) encodes. */
  readonly address?: bigint;
  /** Short meaning of the value, e.g. "read-only, EL1 only" for AP = 0b10. */
  readonly meaning?: string;
  /** Ignored by the hardware (available to software), or reserved (must be zero). */
  readonly role?: 'ignored' | 'reserved' | 'software';
}

export type DescriptorKind = 'invalid' | 'table' | 'block' | 'page' | 'reserved';

export interface DecodedDescriptor {
  readonly kind: DescriptorKind;
  /** The hardware level number (x86-64 paging-structure level 5…1; ARM64 lookup level -1…3). */
  readonly level: number;
  /** The full 64-bit value. */
  readonly value: bigint;
  /** Every bit of the descriptor belongs to exactly one field (ignored bits included), low to high. */
  readonly fields: readonly DescriptorField[];
  /** For `reserved` (and `invalid` where useful), the manual's reason. */
  readonly reason?: string;
  /** Where the descriptor points: next table, or the output address of a block/page. */
  readonly address?: bigint;
}

/** Architecture-neutral page protection, turned into pgprot bits by each arch (vm_get_page_prot). */
export interface PageProt {
  readonly read?: boolean; // default true
  readonly write?: boolean;
  readonly exec?: boolean;
  readonly user?: boolean;
  readonly global?: boolean; // x86 G; ARM64: the inverse of nG
  readonly young?: boolean; // accessed (x86 A, ARM64 AF); default true
  readonly dirty?: boolean;
  /** Memory type: normal write-back (default), device/uncached, write-combining. */
  readonly memType?: 'normal' | 'uncached' | 'device' | 'wc';
  /** x86-64 protection key (0-15). */
  readonly pkey?: number;
}

/** The per-architecture module: stateless, bound to one Geometry and hardware options. */
export interface ArchBits {
  readonly geometry: Geometry;
  /** Mask of the physical address bits an entry may hold (MAXPHYADDR or the 48/52-bit OA). */
  readonly physAddrBits: number;

  // ---- Linux predicates, the real (unfolded) tests, on the two halves -------------------------
  pgdNone(lo: Lo, hi: Hi): boolean;
  pgdBad(lo: Lo, hi: Hi): boolean;
  pgdPresent(lo: Lo, hi: Hi): boolean;
  p4dNone(lo: Lo, hi: Hi): boolean;
  p4dBad(lo: Lo, hi: Hi): boolean;
  p4dPresent(lo: Lo, hi: Hi): boolean;
  pudNone(lo: Lo, hi: Hi): boolean;
  pudBad(lo: Lo, hi: Hi): boolean;
  pudPresent(lo: Lo, hi: Hi): boolean;
  /** pud_leaf: a 1 GiB page / level-1 block (false where the geometry has no PUD leaves). */
  pudLeaf(lo: Lo, hi: Hi): boolean;
  pmdNone(lo: Lo, hi: Hi): boolean;
  pmdBad(lo: Lo, hi: Hi): boolean;
  pmdPresent(lo: Lo, hi: Hi): boolean;
  pmdLeaf(lo: Lo, hi: Hi): boolean;
  pmdTransHuge(lo: Lo, hi: Hi): boolean;
  pteNone(lo: Lo, hi: Hi): boolean;
  ptePresent(lo: Lo, hi: Hi): boolean;

  /** Physical address of the next-level table held in a table entry (p?d_page_paddr). */
  tableAddr(lo: Lo, hi: Hi): number;
  /** Page frame number (PAGE_SIZE units) of a present leaf at the given logical level. */
  leafPfn(level: 'pud' | 'pmd' | 'pte', lo: Lo, hi: Hi): number;
  /**
   * leafPfn in two 32-bit integers, for sums that must stay in integer registers (the counting
   * walk): the leaf's output address bits [31:PAGE_SHIFT] (shifted down) and bits [51:32], so that
   * leafPfn = leafPfnHigh · 2^(32 − PAGE_SHIFT) + leafPfnLow, each masked by the level's alignment.
   */
  leafPfnLow(level: 'pud' | 'pmd' | 'pte', lo: Lo, hi: Hi): number;
  leafPfnHigh(level: 'pud' | 'pmd' | 'pte', lo: Lo, hi: Hi): number;

  // ---- pte accessors (pte_write, pte_dirty, …) on a present pte -------------------------------
  pteWrite(lo: Lo, hi: Hi): boolean;
  pteDirty(lo: Lo, hi: Hi): boolean;
  pteYoung(lo: Lo, hi: Hi): boolean;
  pteExec(lo: Lo, hi: Hi): boolean;
  pteUser(lo: Lo, hi: Hi): boolean;
  pteGlobal(lo: Lo, hi: Hi): boolean;
  pteSpecial(lo: Lo, hi: Hi): boolean;

  // ---- constructors (API edge: bigint) --------------------------------------------------------
  /** pgprot bits for a protection (vm_get_page_prot), to combine with a pfn. */
  pgprot(prot: PageProt): bigint;
  /** pfn_pte / mk_pte: a present pte. */
  pfnPte(pfn: number, pgprot: bigint): bigint;
  /** pfn_pmd + pmd_mkhuge / pfn_pud + pud_mkhuge: a leaf at pmd or pud level. */
  pfnHuge(level: 'pmd' | 'pud', pfn: number, pgprot: bigint): bigint;
  /** p?d_populate: the entry of logical level `level` (the one being written) pointing at the next table, at tablePa. */
  mkTable(level: LevelName, tablePa: number, user: boolean): bigint;
  /** __swp_entry_to_pte(__swp_entry(type, offset)): a non-present swap pte, Linux's encoding. */
  mkSwapPte(type: number, offset: number): bigint;
  /** Inverse of mkSwapPte on a non-present, non-none pte. */
  swapType(lo: Lo, hi: Hi): number;
  swapOffset(lo: Lo, hi: Hi): number;
  /** pte_mkold/pte_mkyoung, pte_wrprotect, pte_mkwrite, pte_mkdirty/pte_mkclean (bigint edge). */
  pteModify(pte: bigint, change: { young?: boolean; write?: boolean; dirty?: boolean }): bigint;
  /** pte_mkspecial: mark a pte that maps no struct page the mm should count (zero page, pfn maps). */
  pteMkspecial(pte: bigint): bigint;
  /**
   * pte_modify(pte, newprot) (mprotect's change_pte_range): the protection bits of newprot, the
   * frame, accessed, dirty and software bits of pte.
   */
  pteModifyProt(pte: bigint, newprot: bigint): bigint;

  // ---- the manuals' descriptor formats --------------------------------------------------------
  /** Decode a descriptor read from a table at a hardware level (x86 5…1, ARM64 -1…3). */
  decode(value: bigint, hwLevel: number): DecodedDescriptor;
  /**
   * Encode from named fields; unnamed fields are zero. `kind` picks the format (table/block/page).
   * encode(d.kind, d.level, fieldsOf(d)) === d.value for every decodable d.
   */
  encode(kind: DescriptorKind, hwLevel: number, fields: Readonly<Record<string, bigint | number | boolean>>): bigint;
}

/** Field values of a decoded descriptor, as encode() takes them. */
export function fieldsOf(d: DecodedDescriptor): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  for (const f of d.fields) out[f.name] = f.value;
  return out;
}
