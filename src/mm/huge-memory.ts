/**
 * Splitting huge entries (mm/huge_memory.c split_huge_pmd / split_huge_pud).
 *
 * What a split leaves depends on the VMA: an anonymous huge pmd becomes a pte table of the same
 * pages (Linux deposits that table when it maps the THP, so the split never allocates through the
 * page-table allocator and never fails); a file or DAX pmd, and every pud (6.18
 * __split_huge_pud_locked clears it), is zapped, left none, to be faulted in again. A VMA may
 * override this (`vma.split`), which the conformance corpus uses.
 */
import { splitLeaf, splitSwap } from '../arch/split';
import type { VmAreaStruct } from './vma';
import { vmaIsAnonymous } from './vma';

function policy(vma: VmAreaStruct, level: 'pud' | 'pmd'): 'table' | 'zap' {
  if (vma.split) return vma.split;
  if (level === 'pud') return 'zap';
  return vmaIsAnonymous(vma) ? 'table' : 'zap';
}

/** pmd_is_huge: a trans-huge pmd, or a non-present non-none pmd (a migration entry). */
export function pmdIsHuge(vma: VmAreaStruct, pmd: number): boolean {
  const pt = vma.vmMm.machine.pgtable;
  const lo = pt.lo(pmd);
  const hi = pt.hi(pmd);
  if (pt.pmdPresent(lo, hi)) return pt.pmdTransHuge(lo, hi);
  return !pt.pmdNone(lo, hi);
}

/** split_huge_pmd(vma, pmd, addr): no-op unless pmd_is_huge. */
export function splitHugePmd(vma: VmAreaStruct, pmd: number, addr: number): void {
  if (!pmdIsHuge(vma, pmd)) return;
  const m = vma.vmMm.machine;
  const pt = m.pgtable;
  const old = pt.val(pmd);
  const mode = policy(vma, 'pmd');
  m.emit('split_huge_pmd', { ptr: pmd, addr, mode, old });
  if (mode === 'zap') {
    pt.clear(pmd);
    return;
  }
  const present = pt.pmdPresent(pt.lo(pmd), pt.hi(pmd));
  const child = present ? splitLeaf(m.bits, 'pmd', old) : splitSwap(m.bits, old);
  installTable(vma, pmd, 'pmd', m.geo.PTRS_PER_PTE, child);
}

/** pud_trans_huge on the folded-aware view: a PUD leaf. */
export function pudIsHuge(vma: VmAreaStruct, pud: number): boolean {
  const pt = vma.vmMm.machine.pgtable;
  return pt.pudLeaf(pt.lo(pud), pt.hi(pud));
}

/** split_huge_pud(vma, pud, addr): no-op unless the pud is a leaf. */
export function splitHugePud(vma: VmAreaStruct, pud: number, addr: number): void {
  if (!pudIsHuge(vma, pud)) return;
  const m = vma.vmMm.machine;
  const pt = m.pgtable;
  const old = pt.val(pud);
  const mode = policy(vma, 'pud');
  m.emit('split_huge_pud', { ptr: pud, addr, mode, old });
  if (mode === 'zap') {
    pt.clear(pud);
    return;
  }
  installTable(vma, pud, 'pud', m.geo.PTRS_PER_PMD, splitLeaf(m.bits, 'pud', old));
}

/** Fill a fresh (deposited) table with `count` entries and point the parent entry at it. */
function installTable(vma: VmAreaStruct, parent: number, level: 'pud' | 'pmd', count: number, child: (i: number) => bigint): void {
  const m = vma.vmMm.machine;
  const table = m.frames.alloc(m.tableOrder);
  m.mem.zero(table, m.geo.PAGE_SIZE);
  for (let i = 0; i < count; i++) m.pgtable.set(table + i * 8, child(i));
  const user = !vma.vmMm.isInitMm && vma.vmStart < m.TASK_SIZE;
  m.pgtable.set(parent, m.bits.mkTable(level, table, user));
}
