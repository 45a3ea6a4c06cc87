/**
 * Looking entries up without allocating (the descent every memory.c primitive starts with:
 * pgd_offset, p4d_offset, pud_offset, pmd_offset, then pte_offset_map), and the small helpers on
 * entries the mm layer shares.
 */
import type { MmStruct } from './mm';

/** Where a lookup stopped. */
export interface PtLookup {
  /** 'pte': ptr is the pte; 'pmd' / 'pud': ptr is a leaf or non-present (huge, swap) entry there; 'none': nothing maps addr. */
  level: 'pte' | 'pmd' | 'pud' | 'none';
  /** Entry pointer (its physical address), or -1 for 'none'. */
  ptr: number;
  /** The pmd pointer above a 'pte' result (for pte table mapping), else -1. */
  pmd: number;
}

/**
 * Descend to the entry mapping addr: stops at a none/bad upper entry ('none'), at a pud or pmd that
 * is not a table (a leaf, or a non-present huge entry), or at the pte. Bad entries are reported as
 * 'none' without clearing them (lookups do not change the tables).
 */
export function lookupEntry(mm: MmStruct, addr: number, root = mm.pgd): PtLookup {
  const pt = mm.machine.pgtable;
  const none: PtLookup = { level: 'none', ptr: -1, pmd: -1 };
  const pgd = pt.pgdOffset(root, addr);
  if (pt.pgdNone(pt.lo(pgd), pt.hi(pgd)) || pt.pgdBad(pt.lo(pgd), pt.hi(pgd))) return none;
  const p4d = pt.p4dOffset(pgd, addr);
  if (pt.p4dNone(pt.lo(p4d), pt.hi(p4d)) || pt.p4dBad(pt.lo(p4d), pt.hi(p4d))) return none;
  const pud = pt.pudOffset(p4d, addr);
  let lo = pt.lo(pud);
  let hi = pt.hi(pud);
  if (pt.pudNone(lo, hi)) return none;
  if (pt.pudLeaf(lo, hi) || (!pt.isFolded('pmd') && !pt.pudPresent(lo, hi))) return { level: 'pud', ptr: pud, pmd: -1 };
  if (pt.pudBad(lo, hi)) return none;
  const pmd = pt.pmdOffset(pud, addr);
  lo = pt.lo(pmd);
  hi = pt.hi(pmd);
  if (pt.pmdNone(lo, hi)) return none;
  if (!pt.pmdPresent(lo, hi) || pt.pmdLeaf(lo, hi)) return { level: 'pmd', ptr: pmd, pmd: -1 };
  if (pt.pmdBad(lo, hi)) return none;
  return { level: 'pte', ptr: pt.pteOffsetKernel(pmd, addr), pmd };
}

/** The pte value at ptr as (lo, hi) tests need it, and as bigint for constructors. */
export function entryVal(mm: MmStruct, ptr: number): bigint {
  return mm.machine.pgtable.val(ptr);
}

export function loOf(v: bigint): number {
  return Number(v & 0xffffffffn);
}
export function hiOf(v: bigint): number {
  return Number((v >> 32n) & 0xffffffffn);
}
