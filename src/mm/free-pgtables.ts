/**
 * Freeing page tables (mm/memory.c free_pgd_range, free_pgtables): after a range has been
 * zapped, the tables that map only [floor, ceiling) within [addr, end) go back to the allocator
 * and the entries that pointed at them are cleared.
 *
 * C's unsigned arithmetic is kept with exact integers: a ceiling of 0 means "no ceiling" (the
 * top of the space), `x - 1 > y - 1` is evaluated with that in mind. A folded level owns no table,
 * so freeing it does nothing (pgtable-nopmd.h makes pud_clear() and pmd_free_tlb() empty).
 *
 * With an mmu_gather (exit_mmap, munmap) the tables are unhooked at once and freed after its TLB
 * flush (pte_free_tlb and friends); without one (tests, tools) they are freed at once.
 */
import type { MmStruct } from './mm';
import type { MmuGather } from './mmu-gather';

const TOP = 2 ** 64;

function mask(addr: number, size: number): number {
  return Math.floor(addr / size) * size;
}

/** `end - 1 > ceiling - 1` with ceiling 0 meaning 2^64. */
function pastCeiling(end: number, ceiling: number): boolean {
  return end > (ceiling === 0 ? TOP : ceiling);
}

/** The upper-level clip of free_p?d_range: may the table above [start, end) go? (shift = the parent's span) */
function mayFreeTable(start: number, end: number, floor: number, ceiling: number, span: number): boolean {
  start = mask(start, span);
  if (start < floor) return false;
  if (ceiling !== 0) {
    ceiling = mask(ceiling, span);
    if (ceiling === 0) return false;
  }
  return !pastCeiling(end, ceiling);
}

function freeTableAt(mm: MmStruct, entry: number, tlb: MmuGather | null, address: number, span: number): void {
  const m = mm.machine;
  const table = m.pgtable.nextTable(entry);
  m.pgtable.clear(entry);
  if (tlb) tlb.removeTable(table, mask(address, span), span);
  else m.freePgtable(table);
}

function freePmdRange(mm: MmStruct, tlb: MmuGather | null, pud: number, addr: number, end: number, floor: number, ceiling: number): void {
  const pt = mm.machine.pgtable;
  const start = addr;
  let pmd = pt.pmdOffset(pud, addr);
  do {
    const next = pt.pmdAddrEnd(addr, end);
    const lo = pt.lo(pmd);
    const hi = pt.hi(pmd);
    // free_pte_range: a pmd that is a table loses it; leaves and none entries have none to free.
    if (!pt.pmdNone(lo, hi) && pt.pmdPresent(lo, hi) && !pt.pmdLeaf(lo, hi)) {
      if (pt.pmdBad(lo, hi)) pt.clear(pmd);
      else freeTableAt(mm, pmd, tlb, addr, pt.PMD_SIZE);
    }
    pmd += 8;
    addr = next;
  } while (addr !== end);
  if (pt.isFolded('pmd') || !mayFreeTable(start, end, floor, ceiling, pt.PUD_SIZE)) return;
  freeTableAt(mm, pud, tlb, start, pt.PUD_SIZE);
}

function freePudRange(mm: MmStruct, tlb: MmuGather | null, p4d: number, addr: number, end: number, floor: number, ceiling: number): void {
  const pt = mm.machine.pgtable;
  const start = addr;
  let pud = pt.pudOffset(p4d, addr);
  do {
    const next = pt.pudAddrEnd(addr, end);
    const lo = pt.lo(pud);
    const hi = pt.hi(pud);
    if (!pt.noneOrClearBad(pud, pt.pudNone, (l, h) => pt.pudBad(l, h) && !pt.pudLeaf(l, h))) {
      if (!pt.pudLeaf(lo, hi)) freePmdRange(mm, tlb, pud, addr, next, floor, ceiling);
    }
    pud += 8;
    addr = next;
  } while (addr !== end);
  if (pt.isFolded('pud') || !mayFreeTable(start, end, floor, ceiling, pt.P4D_SIZE)) return;
  freeTableAt(mm, p4d, tlb, start, pt.P4D_SIZE);
}

function freeP4dRange(mm: MmStruct, tlb: MmuGather | null, pgd: number, addr: number, end: number, floor: number, ceiling: number): void {
  const pt = mm.machine.pgtable;
  const start = addr;
  let p4d = pt.p4dOffset(pgd, addr);
  do {
    const next = pt.p4dAddrEnd(addr, end);
    if (!pt.noneOrClearBad(p4d, pt.p4dNone, pt.p4dBad)) freePudRange(mm, tlb, p4d, addr, next, floor, ceiling);
    p4d += 8;
    addr = next;
  } while (addr !== end);
  if (pt.isFolded('p4d') || !mayFreeTable(start, end, floor, ceiling, pt.PGDIR_SIZE)) return;
  freeTableAt(mm, pgd, tlb, start, pt.PGDIR_SIZE);
}

/**
 * free_pgd_range(tlb, addr, end, floor, ceiling): free the tables of [addr, end) that map nothing
 * outside [floor, ceiling) (ceiling 0 = no ceiling). The range must have been zapped first.
 */
export function freePgdRange(mm: MmStruct, addr: number, end: number, floor: number, ceiling: number, tlb: MmuGather | null = null): void {
  const pt = mm.machine.pgtable;
  addr = mask(addr, pt.PMD_SIZE);
  if (addr < floor) {
    addr += pt.PMD_SIZE;
    if (addr === TOP) return;
  }
  if (ceiling !== 0) {
    ceiling = mask(ceiling, pt.PMD_SIZE);
    if (ceiling === 0) return;
  }
  if (pastCeiling(end, ceiling)) end -= pt.PMD_SIZE;
  if (addr >= end) return;
  let pgd = pt.pgdOffset(mm.pgd, addr);
  do {
    const next = pt.pgdAddrEnd(addr, end);
    if (!pt.noneOrClearBad(pgd, pt.pgdNone, pt.pgdBad)) freeP4dRange(mm, tlb, pgd, addr, next, floor, ceiling);
    pgd += 8;
    addr = next;
  } while (addr !== end);
}

/**
 * free_pgtables for a range no VMA maps any more: floor is the end of the VMA below `start` (or 0,
 * FIRST_USER_ADDRESS), ceiling the start of the VMA at or above `end` (or 0, USER_PGTABLES_CEILING),
 * so tables shared with a neighbouring VMA stay.
 */
export function freePgtables(mm: MmStruct, start: number, end: number, tlb: MmuGather | null = null): void {
  const list = mm.vmaList;
  const after = mm.findVma(start);
  if (after && after.vmStart < end) {
    throw new RangeError(`free_pgtables [0x${start.toString(16)}, 0x${end.toString(16)}): ${after} still maps part of the range`);
  }
  const i = after ? list.indexOf(after) : list.length;
  const floor = i > 0 ? list[i - 1]!.vmEnd : 0;
  const ceiling = after ? after.vmStart : 0;
  freePgdRange(mm, start, end, floor, ceiling, tlb);
}
