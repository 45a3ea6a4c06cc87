/**
 * Mapping a pte table for a walk (mm/pgtable-generic.c __pte_offset_map, 6.18): NULL when the pmd
 * no longer points to a pte table — none, a migration entry, a trans-huge leaf, or bad (which it
 * clears, as pmd_clear_bad does) — so the caller retries (ACTION_AGAIN) and sees the new pmd.
 *
 * Machine.pteMapFault is a test seam on this real path: it can make a map fail as if the table had
 * just been freed under the walk.
 */
import type { Machine } from './machine';
import type { MmStruct } from './mm';

/** pte_offset_map(pmd, addr) / pte_offset_map_lock(mm, pmd, addr, &ptl): pte pointer or -1. */
export function pteOffsetMap(mm: MmStruct, pmd: number, addr: number): number {
  const m = mm.machine;
  if (m.pteMapFault !== null && m.pteMapFault(pmd, addr)) {
    m.emit('pte_map_fail', { ptr: pmd, addr });
    return -1;
  }
  const pt = m.pgtable;
  const lo = pt.lo(pmd);
  const hi = pt.hi(pmd);
  if (pt.pmdNone(lo, hi) || !pt.pmdPresent(lo, hi) || pt.pmdTransHuge(lo, hi)) {
    m.emit('pte_map_null', { ptr: pmd, addr });
    return -1;
  }
  if (pt.pmdBad(lo, hi)) {
    m.emit('clear_bad', { ptr: pmd, addr });
    pt.clear(pmd);
    return -1;
  }
  return pt.pteOffsetKernel(pmd, addr);
}

/**
 * Whether pte_offset_map would map the table under the pmd at `pmd` with nothing to report: no
 * injected failure armed, and an entry that is present, a table (not a huge page) and not bad.
 * The walker computes the pte pointer itself in that case (pteOffsetKernel's arithmetic) and
 * leaves every other case to pteOffsetMap, which reports and handles it.
 */
export function pteMapsQuietly(m: Machine, pmd: number): boolean {
  if (m.pteMapFault !== null) return false;
  const pt = m.pgtable;
  const lo = pt.lo(pmd);
  const hi = pt.hi(pmd);
  return !pt.pmdNone(lo, hi) && pt.pmdPresent(lo, hi) && !pt.pmdTransHuge(lo, hi) && !pt.pmdBad(lo, hi);
}
