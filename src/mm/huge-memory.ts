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
import { PG_anon_exclusive, PG_pgtable } from '../mem/framemeta';
import { folioPut, mmCounter } from './folio';
import { addMmCounter } from './mm';
import { flushTlbRange } from './mmu-gather';
import type { VmAreaStruct } from './vma';
import { vmaIsAnonymous } from './vma';

/**
 * The folio a huge leaf maps, when the mm model tracks it (it was mapped through the fault / insert
 * paths, so it holds references and an entire mapping); -1 for the huge zero folio, special
 * entries, and leaves written straight into the tables (conformance tests, loaded images).
 */
function trackedFolio(vma: VmAreaStruct, level: 'pmd' | 'pud', lo: number, hi: number): number {
  const m = vma.vmMm.machine;
  if (m.bits.pteSpecial(lo, hi)) return -1;
  const pa = m.bits.leafPfn(level, lo, hi) * m.geo.PAGE_SIZE;
  if (pa === m.hugeZeroFolio || !m.mem.contains(pa, 1)) return -1;
  const head = m.meta.headOf(pa);
  const h = m.meta.frameIndex(head);
  return m.meta.refcount[h]! > 0 && m.meta.entireMapcount[h]! > 0 ? head : -1;
}

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
  const lo = pt.lo(pmd);
  const hi = pt.hi(pmd);
  const present = pt.pmdPresent(lo, hi);
  const folio = present ? trackedFolio(vma, 'pmd', lo, hi) : -1;
  const haddr = Math.floor(addr / pt.PMD_SIZE) * pt.PMD_SIZE;
  const mm = vma.vmMm;
  if (mode === 'zap') {
    pt.clear(pmd);
    flushTlbRange(mm, haddr, haddr + pt.PMD_SIZE, pt.PMD_SIZE);
    const deposited = mm.depositedTables.get(pmd);
    if (deposited !== undefined) {
      mm.depositedTables.delete(pmd);
      m.freePgtable(deposited);
    }
    if (folio >= 0) {
      // The file / shmem folio loses its PMD mapping; it is faulted in again by ptes.
      const i = m.meta.frameIndex(folio);
      m.meta.entireMapcount[i] = m.meta.entireMapcount[i]! - 1;
      const nr = pt.PMD_SIZE / pt.PAGE_SIZE;
      addMmCounter(mm, mmCounter(m, folio), -nr);
      folioPut(m, folio);
    }
    return;
  }
  const child = present ? splitLeaf(m.bits, 'pmd', old) : splitSwap(m.bits, old);
  if (folio >= 0) {
    // __split_huge_pmd_locked: the PMD mapping becomes PTRS_PER_PTE pte mappings, each holding a
    // reference and a per-page mapcount; an exclusive anon folio stays exclusive page by page.
    const meta = m.meta;
    const h = meta.frameIndex(folio);
    const nr = m.geo.PTRS_PER_PTE;
    const step = pt.PAGE_SIZE / 4096;
    const exclusive = (meta.flags[h]! & (1 << PG_anon_exclusive)) !== 0;
    meta.entireMapcount[h] = meta.entireMapcount[h]! - 1;
    meta.refcount[h] = meta.refcount[h]! + nr - 1;
    for (let k = 0; k < nr; k++) {
      const fi = h + k * step;
      meta.mapcount[fi] = meta.mapcount[fi]! + 1;
      if (exclusive) meta.flags[fi] = meta.flags[fi]! | (1 << PG_anon_exclusive);
    }
  }
  const isHugeZero = present && m.hugeZeroFolio >= 0 && m.bits.leafPfn('pmd', lo, hi) * pt.PAGE_SIZE === m.hugeZeroFolio;
  if (isHugeZero) {
    // __split_huge_zero_page_pmd: every pte maps the (small) zero page, read-only and special.
    const zeroPte = m.bits.pteMkspecial(m.bits.pfnPte(m.zeroPfn(), vma.vmPageProt));
    installTable(vma, pmd, 'pmd', m.geo.PTRS_PER_PTE, () => zeroPte);
    return;
  }
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

/**
 * Fill the deposited table (pgtable_trans_huge_withdraw) — or, for leaves the mm model did not map,
 * a fresh one — with `count` entries and point the parent entry at it.
 */
function installTable(vma: VmAreaStruct, parent: number, level: 'pud' | 'pmd', count: number, child: (i: number) => bigint): void {
  const m = vma.vmMm.machine;
  const deposited = vma.vmMm.depositedTables.get(parent);
  let table: number;
  if (deposited !== undefined) {
    vma.vmMm.depositedTables.delete(parent);
    table = deposited;
  } else {
    table = m.frames.alloc(m.tableOrder);
    m.meta.setFlag(table, PG_pgtable);
    m.meta.setRefcount(table, 1);
  }
  m.mem.zero(table, m.geo.PAGE_SIZE);
  for (let i = 0; i < count; i++) m.pgtable.set(table + i * 8, child(i));
  const user = !vma.vmMm.isInitMm && vma.vmStart < m.TASK_SIZE;
  m.pgtable.set(parent, m.bits.mkTable(level, table, user));
}
