/**
 * Populating page tables (mm/memory.c __p4d_alloc … __pte_alloc, include/linux/mm.h p?d_alloc)
 * and storing entries (set_pte_at, pte_clear, set_pmd_at, set_pud_at, set_huge_pte_at).
 *
 * Pointers are entry physical addresses. The *_alloc functions return 0 or -ENOMEM, as the
 * kernel's do; the p?dAlloc wrappers return the next level's pointer or -1 for NULL.
 */
import type { LevelName } from '../arch/geometry';
import { ENOMEM } from './errno';
import type { MmStruct } from './mm';

function userTables(mm: MmStruct, addr: number): boolean {
  return !mm.isInitMm && addr < mm.machine.TASK_SIZE;
}

/** Shared body of __p?d_alloc: allocate a table, install it if the entry is still none. */
function allocInto(mm: MmStruct, level: LevelName, ptr: number, addr: number, isNone: boolean): number {
  const m = mm.machine;
  const table = m.allocPgtable();
  if (table < 0) {
    m.emit('alloc_fail', { level, ptr });
    return -ENOMEM;
  }
  m.emit('alloc', { level, ptr, table });
  if (!isNone) {
    // Someone populated it first (the kernel re-checks under the lock): give the page back.
    m.freePgtable(table);
    return 0;
  }
  m.pgtable.set(ptr, m.bits.mkTable(level, table, userTables(mm, addr)));
  return 0;
}

/** __p4d_alloc(mm, pgd, addr): a p4d table under a none pgd entry. */
export function __p4dAlloc(mm: MmStruct, pgd: number, addr: number): number {
  const pt = mm.machine.pgtable;
  return allocInto(mm, 'pgd', pgd, addr, pt.pgdNone(pt.lo(pgd), pt.hi(pgd)));
}

/** __pud_alloc(mm, p4d, addr). */
export function __pudAlloc(mm: MmStruct, p4d: number, addr: number): number {
  const pt = mm.machine.pgtable;
  return allocInto(mm, 'p4d', p4d, addr, pt.p4dNone(pt.lo(p4d), pt.hi(p4d)));
}

/** __pmd_alloc(mm, pud, addr). */
export function __pmdAlloc(mm: MmStruct, pud: number, addr: number): number {
  const pt = mm.machine.pgtable;
  return allocInto(mm, 'pud', pud, addr, pt.pudNone(pt.lo(pud), pt.hi(pud)));
}

/** __pte_alloc(mm, pmd). */
export function __pteAlloc(mm: MmStruct, pmd: number, addr = 0): number {
  const pt = mm.machine.pgtable;
  return allocInto(mm, 'pmd', pmd, addr, pt.pmdNone(pt.lo(pmd), pt.hi(pmd)));
}

/** p4d_alloc: the p4d pointer for addr, allocating below a none pgd; -1 on failure. */
export function p4dAlloc(mm: MmStruct, pgd: number, addr: number): number {
  const pt = mm.machine.pgtable;
  if (pt.pgdNone(pt.lo(pgd), pt.hi(pgd)) && __p4dAlloc(mm, pgd, addr)) return -1;
  return pt.p4dOffset(pgd, addr);
}

export function pudAlloc(mm: MmStruct, p4d: number, addr: number): number {
  const pt = mm.machine.pgtable;
  if (pt.p4dNone(pt.lo(p4d), pt.hi(p4d)) && __pudAlloc(mm, p4d, addr)) return -1;
  return pt.pudOffset(p4d, addr);
}

export function pmdAlloc(mm: MmStruct, pud: number, addr: number): number {
  const pt = mm.machine.pgtable;
  if (pt.pudNone(pt.lo(pud), pt.hi(pud)) && __pmdAlloc(mm, pud, addr)) return -1;
  return pt.pmdOffset(pud, addr);
}

/** pte_alloc + pte_offset_kernel: the pte pointer for addr; -1 on failure. */
export function pteAlloc(mm: MmStruct, pmd: number, addr: number): number {
  const pt = mm.machine.pgtable;
  if (pt.pmdNone(pt.lo(pmd), pt.hi(pmd)) && __pteAlloc(mm, pmd, addr)) return -1;
  return pt.pteOffsetKernel(pmd, addr);
}

/**
 * The entry pointer for addr at a logical level, allocating every missing table above it.
 * Returns -1 when an allocation fails. Stops early (returns the pointer at the level reached) only
 * if asked for a higher level.
 */
export function entryAlloc(mm: MmStruct, addr: number, level: LevelName, root = mm.pgd): number {
  const pt = mm.machine.pgtable;
  const pgd = pt.pgdOffset(root, addr);
  if (level === 'pgd') return pgd;
  const p4d = p4dAlloc(mm, pgd, addr);
  if (p4d < 0 || level === 'p4d') return p4d;
  const pud = pudAlloc(mm, p4d, addr);
  if (pud < 0 || level === 'pud') return pud;
  const pmd = pmdAlloc(mm, pud, addr);
  if (pmd < 0 || level === 'pmd') return pmd;
  return pteAlloc(mm, pmd, addr);
}

/** set_pte_at(mm, addr, ptep, pte). */
export function setPteAt(mm: MmStruct, _addr: number, ptep: number, pte: bigint): void {
  mm.machine.pgtable.set(ptep, pte);
}

/** pte_clear(mm, addr, ptep). */
export function pteClear(mm: MmStruct, _addr: number, ptep: number): void {
  mm.machine.pgtable.clear(ptep);
}

/** set_pmd_at(mm, addr, pmdp, pmd): a transparent huge pmd. */
export function setPmdAt(mm: MmStruct, addr: number, pmdp: number, pmd: bigint): void {
  assertAligned(mm, addr, mm.machine.pgtable.PMD_SIZE, 'set_pmd_at');
  mm.machine.pgtable.set(pmdp, pmd);
}

/** set_pud_at(mm, addr, pudp, pud). */
export function setPudAt(mm: MmStruct, addr: number, pudp: number, pud: bigint): void {
  assertAligned(mm, addr, mm.machine.pgtable.PUD_SIZE, 'set_pud_at');
  mm.machine.pgtable.set(pudp, pud);
}

/**
 * set_huge_pte_at(mm, addr, ptep, pte, sz): a hugetlb entry of size sz. x86-64: a 2M pmd or 1G pud
 * leaf. ARM64: a block at pmd/pud level, or a contiguous run (CONT_PTE / CONT_PMD) written as
 * `count` consecutive entries with the Contiguous bit, each mapping its slice.
 */
export function setHugePteAt(mm: MmStruct, addr: number, ptep: number, pte: bigint, sz: number): void {
  assertAligned(mm, addr, sz, 'set_huge_pte_at');
  const pt = mm.machine.pgtable;
  const g = mm.machine.geo;
  if (sz === g.PMD_SIZE || sz === g.PUD_SIZE) {
    pt.set(ptep, pte);
    return;
  }
  const entrySpan = sz < g.PMD_SIZE ? g.PAGE_SIZE : g.PMD_SIZE;
  const count = sz / entrySpan;
  if (g.arch !== 'arm64' || !Number.isInteger(count) || count < 2) {
    throw new RangeError(`set_huge_pte_at: huge page size 0x${sz.toString(16)} is not supported on ${g.name}`);
  }
  // Contiguous hint: consecutive entries, each with its own slice of the output address. Each is
  // re-encoded through pfnPte, since with LPA/LPA2 the address is split across the descriptor.
  const contBit = 1n << 52n;
  const lo = Number(pte & 0xffffffffn);
  const hi = Number(pte >> 32n);
  const level = sz < g.PMD_SIZE ? 'pte' : 'pmd';
  const pfn = m(mm).bits.leafPfn(level, lo, hi);
  const oaMask = m(mm).bits.pfnPte(2 ** (52 - g.PAGE_SHIFT) - 1, 0n);
  const prot = (pte & ~oaMask) | contBit;
  const step = entrySpan / g.PAGE_SIZE;
  for (let i = 0; i < count; i++) pt.set(ptep + i * 8, m(mm).bits.pfnPte(pfn + i * step, prot));
}

function m(mm: MmStruct) {
  return mm.machine;
}

function assertAligned(mm: MmStruct, addr: number, size: number, what: string): void {
  if (addr % size !== 0) {
    throw new RangeError(`${what}: address 0x${addr.toString(16)} is not aligned to 0x${size.toString(16)} (${mm.name})`);
  }
}
