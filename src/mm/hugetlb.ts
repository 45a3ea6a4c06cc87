/**
 * hugetlb (mm/hugetlb.c): huge pages of a fixed size per VMA (hstate), mapped by one entry — a pmd
 * or pud leaf — or, on ARM64, by a contiguous run of pte or pmd entries (CONT_PTE / CONT_PMD
 * sizes). Faults, copy-on-write, zapping and fork of hugetlb VMAs.
 *
 * Departures: there is no reserved pool — huge folios come straight from the buddy allocator, as
 * surplus pages do with overcommit; a shared hugetlb VMA's pages live in its AddressSpace's page
 * cache, indexed in huge-page units.
 */
import { PG_anon_exclusive } from '../mem/framemeta';
import type { AddressSpace } from './address-space';
import { ENOMEM } from './errno';
import { copyPage, folioAlloc, folioGet, folioPut, folioRefCount, folioTestAnon, pageFolio, setFolioMapping } from './folio';
import type { MmStruct } from './mm';
import type { MmuGather } from './mmu-gather';
import { flushTlbRange } from './mmu-gather';
import { entryAlloc, setHugePteAt } from './pgalloc';
import { folioAddNewAnonRmap, folioAddRmapEntire, folioRemoveRmapEntire } from './rmap';
import type { ZapDetails } from './memory';
import { VM_FAULT_OOM, VM_FAULT_SIGBUS } from './vm-fault';
import type { VmAreaStruct } from './vma';
import { VM_SHARED, VM_WRITE } from './vm-flags';


/** How a huge page of size sz is mapped here: the level of its entries and how many consecutive entries. */
export interface HugeLayout {
  readonly level: 'pud' | 'pmd' | 'pte';
  readonly count: number;
  readonly entrySpan: number;
}

export function hugeLayout(mm: MmStruct, sz: number): HugeLayout {
  const g = mm.machine.geo;
  if (sz === g.PUD_SIZE && g.pudLeaf) return { level: 'pud', count: 1, entrySpan: sz };
  if (sz === g.PMD_SIZE) return { level: 'pmd', count: 1, entrySpan: sz };
  if (g.arch === 'arm64') {
    if (sz > g.PMD_SIZE && sz < g.PUD_SIZE && sz % g.PMD_SIZE === 0) return { level: 'pmd', count: sz / g.PMD_SIZE, entrySpan: g.PMD_SIZE };
    if (sz > g.PAGE_SIZE && sz < g.PMD_SIZE && sz % g.PAGE_SIZE === 0) return { level: 'pte', count: sz / g.PAGE_SIZE, entrySpan: g.PAGE_SIZE };
  }
  throw new RangeError(`huge page size 0x${sz.toString(16)} is not supported on ${g.name} (expected one of ${g.hugetlbSizes.map((s) => '0x' + s.toString(16)).join(', ')})`);
}

function hsize(vma: VmAreaStruct): number {
  const sz = vma.hugepageSize;
  if (sz === null) throw new RangeError(`${vma} is a hugetlb VMA without a huge page size`);
  return sz;
}

/** huge_pte_offset(mm, addr, sz): the (first) entry of the huge page at addr, or -1 where no table reaches it. */
export function hugePteOffset(mm: MmStruct, addr: number, sz: number): number {
  const pt = mm.machine.pgtable;
  const lay = hugeLayout(mm, sz);
  const base = Math.floor(addr / sz) * sz;
  const pgd = pt.pgdOffset(mm.pgd, base);
  if (!pt.pgdPresent(pt.lo(pgd), pt.hi(pgd))) return -1;
  const p4d = pt.p4dOffset(pgd, base);
  if (!pt.p4dPresent(pt.lo(p4d), pt.hi(p4d))) return -1;
  const pud = pt.pudOffset(p4d, base);
  if (lay.level === 'pud') return pud;
  if (!pt.pudPresent(pt.lo(pud), pt.hi(pud))) return -1;
  const pmd = pt.pmdOffset(pud, base);
  if (lay.level === 'pmd') return pmd;
  const lo = pt.lo(pmd);
  const hi = pt.hi(pmd);
  if (pt.pmdNone(lo, hi) || !pt.pmdPresent(lo, hi) || pt.pmdLeaf(lo, hi)) return -1;
  return pt.pteOffsetKernel(pmd, base);
}

/** huge_pte_alloc: allocate the tables down to the huge page's level; -1 on failure. */
export function hugePteAlloc(mm: MmStruct, addr: number, sz: number): number {
  const lay = hugeLayout(mm, sz);
  return entryAlloc(mm, Math.floor(addr / sz) * sz, lay.level);
}

function entryNone(mm: MmStruct, ptr: number): boolean {
  const pt = mm.machine.pgtable;
  return pt.lo(ptr) === 0 && pt.hi(ptr) === 0;
}

function entryPresent(mm: MmStruct, ptr: number, lay: HugeLayout): boolean {
  const pt = mm.machine.pgtable;
  const lo = pt.lo(ptr);
  const hi = pt.hi(ptr);
  if (lay.level === 'pte') return mm.machine.bits.ptePresent(lo, hi);
  if (lay.level === 'pmd') return pt.pmdPresent(lo, hi);
  return pt.pudPresent(lo, hi);
}

/** make_huge_pte: the entry for a huge folio with the VMA's protection, writable (and dirty) when asked. */
function makeHugePte(vma: VmAreaStruct, folio: number, writable: boolean): bigint {
  const m = vma.vmMm.machine;
  const lay = hugeLayout(vma.vmMm, hsize(vma));
  const pfn = folio / m.geo.PAGE_SIZE;
  const prot = vma.vmPageProt;
  const v = lay.level === 'pte' ? m.bits.pfnPte(pfn, prot) : m.bits.pfnHuge(lay.level, pfn, prot);
  return m.bits.pteModify(v, writable ? { write: true, dirty: true } : { write: false });
}

function setHuge(vma: VmAreaStruct, addr: number, ptep: number, v: bigint): void {
  const sz = hsize(vma);
  setHugePteAt(vma.vmMm, Math.floor(addr / sz) * sz, ptep, v, sz);
}

function clearHuge(mm: MmStruct, ptep: number, lay: HugeLayout): void {
  for (let i = 0; i < lay.count; i++) mm.machine.pgtable.clear(ptep + i * 8);
}

function leafOf(mm: MmStruct, ptep: number, lay: HugeLayout): number {
  const pt = mm.machine.pgtable;
  const level = lay.level === 'pte' ? 'pte' : lay.level;
  const pfn = mm.machine.bits.leafPfn(level, pt.lo(ptep), pt.hi(ptep));
  return pfn * mm.machine.geo.PAGE_SIZE;
}

/** The huge folio order in 4 KiB frames for a size. */
function frameOrderOf(mm: MmStruct, sz: number): number {
  return Math.log2(sz / mm.machine.geo.PAGE_SIZE);
}

/** hugetlb_fault(mm, vma, address, flags) → VM_FAULT_* bits. */
export function hugetlbFault(vma: VmAreaStruct, address: number, write: boolean): number {
  const mm = vma.vmMm;
  const m = mm.machine;
  const sz = hsize(vma);
  const lay = hugeLayout(mm, sz);
  const haddr = Math.floor(address / sz) * sz;
  const ptep = hugePteAlloc(mm, haddr, sz);
  if (ptep < 0) return VM_FAULT_OOM;
  if (entryNone(mm, ptep)) return hugetlbNoPage(vma, haddr, ptep, write);
  if (!entryPresent(mm, ptep, lay)) return 0; // a migration or hwpoison entry: wait / retry
  const pt = m.pgtable;
  if (write && !m.bits.pteWrite(pt.lo(ptep), pt.hi(ptep))) return hugetlbWp(vma, haddr, ptep);
  // Already writable or a read: huge_ptep_set_access_flags (young, and dirty for writes).
  const v = m.bits.pteModify(pt.val(ptep), write ? { young: true, dirty: true } : { young: true });
  setHuge(vma, haddr, ptep, v);
  return 0;
}

function hugetlbNoPage(vma: VmAreaStruct, haddr: number, ptep: number, write: boolean): number {
  const mm = vma.vmMm;
  const m = mm.machine;
  const sz = hsize(vma);
  const shared = (vma.vmFlags & VM_SHARED) !== 0;
  let folio: number;
  if (shared) {
    const mapping = vma.vmFile as AddressSpace | null;
    if (!mapping) return VM_FAULT_SIGBUS;
    const idx = (haddr - vma.vmStart) / sz + (vma.vmPgoff * m.geo.PAGE_SIZE) / sz;
    const cached = mapping.pages.get(idx);
    if (cached !== undefined) {
      folio = cached;
      folioGet(m, folio); // the mapping's reference
    } else {
      folio = folioAlloc(m, frameOrderOf(mm, sz), true);
      if (folio < 0) return VM_FAULT_OOM;
      mapping.pages.set(idx, folio);
      setFolioMapping(m, folio, mapping, idx);
      folioGet(m, folio); // one for the page cache, one for the mapping
    }
    folioAddRmapEntire(m, folio);
  } else {
    folio = folioAlloc(m, frameOrderOf(mm, sz), true);
    if (folio < 0) return VM_FAULT_OOM;
    folioAddNewAnonRmap(m, folio, vma, haddr, 'pmd');
  }
  mm.hugetlbUsage += sz / m.geo.PAGE_SIZE;
  const writable = shared ? (vma.vmFlags & VM_WRITE) !== 0 : false;
  setHuge(vma, haddr, ptep, makeHugePte(vma, folio, writable));
  // A private write fault does the COW at once (it reuses the new, exclusive folio).
  if (write && !shared) return hugetlbWp(vma, haddr, ptep);
  return 0;
}

/** hugetlb_wp: write to a write-protected huge entry — reuse an exclusive anonymous folio, else copy. */
function hugetlbWp(vma: VmAreaStruct, haddr: number, ptep: number): number {
  const mm = vma.vmMm;
  const m = mm.machine;
  const sz = hsize(vma);
  const lay = hugeLayout(mm, sz);
  const pt = m.pgtable;
  const old = leafOf(mm, ptep, lay);
  const oldFolio = pageFolio(m, old);
  if ((vma.vmFlags & VM_SHARED) !== 0) {
    setHuge(vma, haddr, ptep, m.bits.pteModify(pt.val(ptep), { write: true, dirty: true, young: true }));
    return 0;
  }
  if (folioTestAnon(m, oldFolio) && (m.meta.testFlag(oldFolio, PG_anon_exclusive) || folioRefCount(m, oldFolio) === 1)) {
    m.meta.setFlag(oldFolio, PG_anon_exclusive);
    setHuge(vma, haddr, ptep, m.bits.pteModify(pt.val(ptep), { write: true, dirty: true, young: true }));
    return 0;
  }
  const folio = folioAlloc(m, frameOrderOf(mm, sz), false);
  if (folio < 0) return VM_FAULT_OOM;
  copyPage(m, folio, oldFolio, sz);
  clearHuge(mm, ptep, lay);
  flushTlbRange(mm, haddr, haddr + sz, sz); // huge_ptep_clear_flush
  folioAddNewAnonRmap(m, folio, vma, haddr, 'pmd');
  setHuge(vma, haddr, ptep, makeHugePte(vma, folio, true));
  folioRemoveRmapEntire(m, oldFolio);
  folioPut(m, oldFolio);
  return 0;
}

/** __unmap_hugepage_range(tlb, vma, start, end): each huge page's entries cleared, its folio freed after the flush. */
export function unmapHugepageRange(tlb: MmuGather, vma: VmAreaStruct, start: number, end: number, details: ZapDetails | null): void {
  const mm = vma.vmMm;
  const m = mm.machine;
  const sz = hsize(vma);
  const lay = hugeLayout(mm, sz);
  for (let addr = Math.floor(start / sz) * sz; addr < end; addr += sz) {
    const ptep = hugePteOffset(mm, addr, sz);
    if (ptep < 0 || entryNone(mm, ptep)) continue;
    const present = entryPresent(mm, ptep, lay);
    const page = present ? leafOf(mm, ptep, lay) : -1;
    if (page >= 0 && details?.singleFolio !== undefined && pageFolio(m, page) !== details.singleFolio) continue;
    clearHuge(mm, ptep, lay);
    tlb.removeTlbEntry(lay.level, addr, sz);
    if (page < 0) continue;
    const folio = pageFolio(m, page);
    mm.hugetlbUsage -= sz / m.geo.PAGE_SIZE;
    folioRemoveRmapEntire(m, folio);
    if (tlb.removePage(folio)) tlb.flush();
  }
}

/** copy_hugetlb_page_range for fork: shared pages are shared; private ones become COW on both sides. */
export function hugetlbCopyRange(dst: VmAreaStruct, src: VmAreaStruct): number {
  const srcMm = src.vmMm;
  const dstMm = dst.vmMm;
  const m = srcMm.machine;
  const pt = m.pgtable;
  const sz = hsize(src);
  const lay = hugeLayout(srcMm, sz);
  const cow = (src.vmFlags & VM_SHARED) === 0;
  for (let addr = src.vmStart; addr < src.vmEnd; addr += sz) {
    const sp = hugePteOffset(srcMm, addr, sz);
    if (sp < 0 || entryNone(srcMm, sp)) continue;
    const dp = hugePteAlloc(dstMm, addr, sz);
    if (dp < 0) return -ENOMEM;
    let v = pt.val(sp);
    if (entryPresent(srcMm, sp, lay)) {
      const folio = pageFolio(m, leafOf(srcMm, sp, lay));
      folioGet(m, folio);
      if (folioTestAnon(m, folio)) m.meta.clearFlag(folio, PG_anon_exclusive);
      folioAddRmapEntire(m, folio);
      dstMm.hugetlbUsage += sz / m.geo.PAGE_SIZE;
      if (cow && m.bits.pteWrite(pt.lo(sp), pt.hi(sp))) {
        v = m.bits.pteModify(v, { write: false });
        setHuge(src, addr, sp, v);
      }
    }
    setHuge(dst, addr, dp, v);
  }
  return 0;
}
