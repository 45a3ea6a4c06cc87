/**
 * mm/memory.c: the mapping primitives — vm_normal_page, zapping (zap_pte_range … unmap_vmas,
 * zap_page_range, zap_page_range_single, zap_vma_ptes), inserting (vm_insert_page,
 * vmf_insert_pfn(_prot), remap_pfn_range, vm_iomap_memory), unmap_mapping_pages/range,
 * follow_pfn / follow_pfnmap_start, and copy_page_range for fork.
 *
 * The rules are those of the kernel-doc in ../shared/seeds/003 and Linux 6.18's code; a BUG_ON is a
 * KernelAssertionError naming it, a WARN_ON_ONCE that returns an error returns that error.
 */
import { PG_anon_exclusive, PG_pgtable, PG_swapcache } from '../mem/framemeta';
import { EBUSY, EFAULT, EINVAL, ENOMEM } from './errno';
import {
  folioGet,
  folioMarkAccessed,
  folioMarkDirty,
  folioNrPages,
  folioPut,
  folioRefCount,
  mmCounter,
  folioTestAnon,
  pageFolio,
  pfnToPage,
} from './folio';
import { KernelAssertionError } from './locks';
import { VM_FAULT_NOPAGE, VM_FAULT_OOM, VM_FAULT_SIGBUS } from './vm-fault';
import type { Machine } from './machine';
import { addMmCounter, MM_ANONPAGES, MM_SWAPENTS, mmapAssertWriteLocked, type MmStruct } from './mm';
import { MmuGather, tlbFinishMmu, tlbGatherMmu } from './mmu-gather';
import { entryAlloc } from './pgalloc';
import { hiOf, loOf, lookupEntry } from './pt-lookup';
import { pteOffsetMap } from './pte-map';
import { anonVmaFork, folioAddRmapEntire, folioAddRmapPtes, folioRemoveRmapEntire, folioRemoveRmapPtes } from './rmap';
import { isMigrationType, isNonSwapType, swapDevice } from './swap';
import type { AddressSpace } from './address-space';
import { isVmHugetlbPage, vmaStartWrite, type VmAreaStruct } from './vma';
import { VM_DONTDUMP, VM_DONTEXPAND, VM_IO, VM_MAYWRITE, VM_MIXEDMAP, VM_PFNMAP, VM_SEQ_READ, VM_SHARED } from './vm-flags';
import { splitHugePmd } from './huge-memory';
import { hugetlbCopyRange, unmapHugepageRange } from './hugetlb';

/** is_cow_mapping: private and may become writable. */
export function isCowMapping(flags: number): boolean {
  return (flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
}

/**
 * vm_normal_page(vma, addr, pte): the page a present pte maps that the mm should count, or -1 for
 * "special" mappings — the zero page and raw pfn maps are pte_special on x86-64 and ARM64
 * (ARCH_HAS_PTE_SPECIAL) — and for pfns without a struct page (outside memory: print_bad_pte).
 */
export function vmNormalPage(vma: VmAreaStruct, _addr: number, lo: number, hi: number, level: 'pte' | 'pmd' | 'pud' = 'pte'): number {
  const m = vma.vmMm.machine;
  const b = m.bits;
  if (b.pteSpecial(lo, hi)) return -1;
  const pfn = b.leafPfn(level, lo, hi);
  if (m.isZeroPfn(pfn)) return -1;
  const page = pfnToPage(m, pfn);
  if (page < 0) {
    m.emit('bad_pte', { vma: vma.toString(), addr: _addr, lo, hi });
    return -1;
  }
  return page;
}

export * from './vm-fault';

// ---- zapping ------------------------------------------------------------------------------------------

/** struct zap_details. */
export interface ZapDetails {
  /** Zap private COW'd (anonymous) pages too. */
  readonly evenCows?: boolean;
  /** Only this folio (unmap_mapping_folio). */
  readonly singleFolio?: number;
}

/** should_zap_cows: without details, everything goes. */
function shouldZapCows(details: ZapDetails | null): boolean {
  return details === null || details.evenCows === true;
}

/** should_zap_folio: with !even_cows only page-cache folios go (private COW copies stay). */
function shouldZapFolio(m: Machine, details: ZapDetails | null, folio: number): boolean {
  if (details !== null && details.singleFolio !== undefined && details.singleFolio !== folio) return false;
  if (shouldZapCows(details)) return true;
  return !folioTestAnon(m, folio);
}

function zapPteRange(tlb: MmuGather, vma: VmAreaStruct, pmd: number, addr: number, end: number, details: ZapDetails | null): void {
  const mm = vma.vmMm;
  const m = mm.machine;
  const pt = m.pgtable;
  const b = m.bits;
  const ps = pt.PAGE_SIZE;
  let pte = pteOffsetMap(mm, pmd, addr);
  if (pte < 0) return; // the pmd changed under us: nothing mapped here any more
  for (; addr !== end; addr += ps, pte += 8) {
    const lo = pt.lo(pte);
    const hi = pt.hi(pte);
    if (b.pteNone(lo, hi)) continue;
    if (b.ptePresent(lo, hi)) {
      const page = vmNormalPage(vma, addr, lo, hi);
      const folio = page >= 0 ? pageFolio(m, page) : -1;
      if (folio >= 0 && !shouldZapFolio(m, details, folio)) continue;
      if (folio < 0 && details?.singleFolio !== undefined) continue;
      pt.clear(pte); // ptep_get_and_clear_full
      tlb.removeTlbEntry('pte', addr, ps);
      if (folio < 0) continue; // special: nothing to count or free
      if (!folioTestAnon(m, folio)) {
        if (b.pteDirty(lo, hi)) folioMarkDirty(m, folio);
        if (b.pteYoung(lo, hi) && (vma.vmFlags & VM_SEQ_READ) === 0) folioMarkAccessed(m, folio);
      }
      addMmCounter(mm, mmCounter(m, folio), -1);
      folioRemoveRmapPtes(m, page, 1);
      if (tlb.removePage(page)) tlb.flush(); // the batch is full: force_flush
      continue;
    }
    // A swap entry: a real swap slot, or a special entry (migration, hwpoison, marker).
    const type = b.swapType(lo, hi);
    const offset = b.swapOffset(lo, hi);
    if (!isNonSwapType(type)) {
      if (!shouldZapCows(details)) continue;
      addMmCounter(mm, MM_SWAPENTS, -1);
      freeSwapAndCache(m, offset);
    } else if (isMigrationType(type)) {
      const folio = pageFolio(m, offset * ps);
      if (!shouldZapFolio(m, details, folio)) continue;
      addMmCounter(mm, mmCounter(m, folio), -1);
    } else if (!shouldZapCows(details)) {
      continue;
    }
    pt.clear(pte);
  }
}

/** free_swap_and_cache: drop a pte's reference on a swap slot; the swap cache copy goes with the last. */
export function freeSwapAndCache(m: Machine, offset: number): void {
  const dev = swapDevice(m);
  dev.free(offset);
  if (dev.count(offset) === 0) {
    const folio = dev.cache.get(offset);
    if (folio !== undefined && !m.meta.isTail(folio) && folioRefCount(m, folio) === 1) {
      dev.cache.delete(offset);
      m.meta.clearFlag(folio, PG_swapcache);
      folioPut(m, folio);
      dev.release(offset);
    }
  }
}

/** zap_huge_pmd: the whole huge pmd goes. */
export function zapHugePmd(tlb: MmuGather, vma: VmAreaStruct, pmd: number, addr: number): void {
  const mm = vma.vmMm;
  const m = mm.machine;
  const pt = m.pgtable;
  const lo = pt.lo(pmd);
  const hi = pt.hi(pmd);
  pt.clear(pmd); // pmdp_huge_get_and_clear_full
  tlb.removeTlbEntry('pmd', addr, pt.PMD_SIZE);
  zapDepositedTable(mm, pmd, tlb, addr);
  if (!pt.pmdPresent(lo, hi)) return; // a pmd migration entry: its folio is accounted by the migration
  const pfn = m.bits.leafPfn('pmd', lo, hi);
  if (m.bits.pteSpecial(lo, hi)) return; // pfnmap / DAX: nothing to free
  if (m.hugeZeroFolio >= 0 && pfn * pt.PAGE_SIZE === m.hugeZeroFolio) return; // the huge zero folio
  const folio = pageFolio(m, pfn * pt.PAGE_SIZE);
  folioRemoveRmapEntire(m, folio);
  addMmCounter(mm, mmCounter(m, folio), -folioNrPages(m, folio));
  if (tlb.removePage(folio)) tlb.flush();
}

/** zap_deposited_table: the pte table deposited with a huge pmd goes back (after the flush). */
export function zapDepositedTable(mm: MmStruct, pmd: number, tlb: MmuGather | null, addr: number): void {
  const table = mm.depositedTables.get(pmd);
  if (table === undefined) return;
  mm.depositedTables.delete(pmd);
  if (tlb) tlb.removeTable(table, addr, mm.machine.pgtable.PMD_SIZE);
  else mm.machine.freePgtable(table);
}

/** zap_huge_pud: a PUD leaf (DAX or pfnmap in Linux; any leaf here) is cleared whole. */
function zapHugePud(tlb: MmuGather, vma: VmAreaStruct, pud: number, addr: number): void {
  const mm = vma.vmMm;
  const m = mm.machine;
  const pt = m.pgtable;
  const lo = pt.lo(pud);
  const hi = pt.hi(pud);
  pt.clear(pud);
  tlb.removeTlbEntry('pud', addr, pt.PUD_SIZE);
  if (m.bits.pteSpecial(lo, hi)) return;
  const page = vmNormalPage(vma, addr, lo, hi, 'pud');
  if (page < 0) return;
  const folio = pageFolio(m, page);
  folioRemoveRmapEntire(m, folio);
  addMmCounter(mm, mmCounter(m, folio), -folioNrPages(m, folio));
  if (tlb.removePage(folio)) tlb.flush();
}

function zapPmdRange(tlb: MmuGather, vma: VmAreaStruct, pud: number, addr: number, end: number, details: ZapDetails | null): void {
  const m = vma.vmMm.machine;
  const pt = m.pgtable;
  let pmd = pt.pmdOffset(pud, addr);
  do {
    const next = pt.pmdAddrEnd(addr, end);
    let lo = pt.lo(pmd);
    let hi = pt.hi(pmd);
    const huge = pt.pmdPresent(lo, hi) ? pt.pmdTransHuge(lo, hi) : !pt.pmdNone(lo, hi);
    // No folding test here: on a two-level configuration (pgtable-nopmd.h) the pmd is the one real
    // entry below the pgd, and pmd_trans_huge tests its real bits, so a PMD-sized leaf there is
    // zapped or split like any other (Linux's zap_pmd_range has no such check either).
    if (huge) {
      if (next - addr !== pt.PMD_SIZE) {
        splitHugePmd(vma, pmd, addr); // __split_huge_pmd, then fall through to the pte table
      } else {
        zapHugePmdIfAllowed(tlb, vma, pmd, addr, details);
        pmd += 8;
        addr = next;
        continue;
      }
      lo = pt.lo(pmd);
      hi = pt.hi(pmd);
    }
    if (!pt.pmdNone(lo, hi) && pt.pmdPresent(lo, hi) && !pt.pmdLeaf(lo, hi)) zapPteRange(tlb, vma, pmd, addr, next, details);
    pmd += 8;
    addr = next;
  } while (addr !== end);
}

function zapHugePmdIfAllowed(tlb: MmuGather, vma: VmAreaStruct, pmd: number, addr: number, details: ZapDetails | null): void {
  const m = vma.vmMm.machine;
  const pt = m.pgtable;
  const lo = pt.lo(pmd);
  const hi = pt.hi(pmd);
  if (pt.pmdPresent(lo, hi) && !m.bits.pteSpecial(lo, hi)) {
    const pfn = m.bits.leafPfn('pmd', lo, hi);
    const pa = pfn * pt.PAGE_SIZE;
    if (!(m.hugeZeroFolio >= 0 && pa === m.hugeZeroFolio) && m.mem.contains(pa, 1)) {
      if (!shouldZapFolio(m, details, pageFolio(m, pa))) return;
    }
  }
  zapHugePmd(tlb, vma, pmd, addr);
}

function zapPudRange(tlb: MmuGather, vma: VmAreaStruct, p4d: number, addr: number, end: number, details: ZapDetails | null): void {
  const pt = vma.vmMm.machine.pgtable;
  let pud = pt.pudOffset(p4d, addr);
  do {
    const next = pt.pudAddrEnd(addr, end);
    const lo = pt.lo(pud);
    const hi = pt.hi(pud);
    if (pt.pudLeaf(lo, hi)) {
      if (next - addr !== pt.PUD_SIZE) {
        // __split_huge_pud: the leaf is cleared, to be faulted in again (6.18 never splits a pud into a table).
        zapHugePud(tlb, vma, pud, addr);
      } else {
        zapHugePud(tlb, vma, pud, addr);
      }
    } else if (!pt.pudNone(lo, hi)) {
      if (pt.pudBad(lo, hi)) pt.clear(pud);
      else zapPmdRange(tlb, vma, pud, addr, next, details);
    }
    pud += 8;
    addr = next;
  } while (addr !== end);
}

function zapP4dRange(tlb: MmuGather, vma: VmAreaStruct, pgd: number, addr: number, end: number, details: ZapDetails | null): void {
  const pt = vma.vmMm.machine.pgtable;
  let p4d = pt.p4dOffset(pgd, addr);
  do {
    const next = pt.p4dAddrEnd(addr, end);
    const lo = pt.lo(p4d);
    const hi = pt.hi(p4d);
    if (!pt.p4dNone(lo, hi)) {
      if (pt.p4dBad(lo, hi)) pt.clear(p4d);
      else zapPudRange(tlb, vma, p4d, addr, next, details);
    }
    p4d += 8;
    addr = next;
  } while (addr !== end);
}

/** unmap_page_range(tlb, vma, addr, end, details). */
export function unmapPageRange(tlb: MmuGather, vma: VmAreaStruct, addr: number, end: number, details: ZapDetails | null): void {
  if (!(addr < end)) throw new KernelAssertionError('unmap_page_range', `BUG_ON(addr >= end): [0x${addr.toString(16)}, 0x${end.toString(16)})`);
  const pt = vma.vmMm.machine.pgtable;
  let pgd = pt.pgdOffset(vma.vmMm.pgd, addr);
  do {
    const next = pt.pgdAddrEnd(addr, end);
    const lo = pt.lo(pgd);
    const hi = pt.hi(pgd);
    if (!pt.pgdNone(lo, hi)) {
      if (pt.pgdBad(lo, hi)) pt.clear(pgd);
      else zapP4dRange(tlb, vma, pgd, addr, next, details);
    }
    pgd += 8;
    addr = next;
  } while (addr !== end);
}

/** unmap_single_vma: [start, end) clipped to the VMA; hugetlb VMAs one huge page at a time. */
export function unmapSingleVma(tlb: MmuGather, vma: VmAreaStruct, startAddr: number, endAddr: number, details: ZapDetails | null): void {
  const start = Math.max(vma.vmStart, startAddr);
  if (start >= vma.vmEnd) return;
  const end = Math.min(vma.vmEnd, endAddr);
  if (end <= vma.vmStart) return;
  if (start === end) return;
  if (isVmHugetlbPage(vma)) unmapHugepageRange(tlb, vma, start, end, details);
  else unmapPageRange(tlb, vma, start, end, details);
}

/**
 * unmap_vmas(tlb, vma, start_addr, end_addr): unmap [start, end) in every VMA of the list — an
 * array, or the VMA to start from in its mm's list — which must be sorted by address. Pages go
 * to the gather; the caller does the final flush (tlb_finish_mmu), which also frees them.
 */
export function unmapVmas(tlb: MmuGather, vmas: VmAreaStruct | readonly VmAreaStruct[], startAddr: number, endAddr: number): void {
  let list: readonly VmAreaStruct[];
  if (Array.isArray(vmas)) {
    list = vmas;
  } else {
    const first = vmas as VmAreaStruct;
    const all = first.vmMm.vmaList;
    list = all.slice(all.indexOf(first));
  }
  for (let i = 1; i < list.length; i++) {
    if (list[i]!.vmStart < list[i - 1]!.vmEnd) {
      throw new KernelAssertionError('unmap_vmas', `the VMA list must be sorted in ascending address order: ${list[i]} follows ${list[i - 1]}`);
    }
  }
  // Careful - we need to zap private pages too!
  const details: ZapDetails = { evenCows: true };
  for (const vma of list) {
    if (vma.vmStart >= endAddr) break;
    if (vma.vmMm !== tlb.mm) throw new KernelAssertionError('unmap_vmas', `${vma} is not in the gather's mm ${tlb.mm.name}`);
    unmapSingleVma(tlb, vma, startAddr, endAddr, details);
  }
}

/**
 * zap_page_range(vma, start, size) (the seed's API; Linux ≤ 6.2): every VMA from `vma` on that meets
 * [start, start + size) loses its pages there. Caller must protect the VMA list.
 */
export function zapPageRange(vma: VmAreaStruct, start: number, size: number): void {
  const mm = vma.vmMm;
  const end = start + size;
  const tlb = tlbGatherMmu(mm);
  const all = mm.vmaList;
  for (let i = all.indexOf(vma); i >= 0 && i < all.length && all[i]!.vmStart < end; i++) {
    unmapSingleVma(tlb, all[i]!, start, end, null);
  }
  tlbFinishMmu(tlb);
}

/** zap_page_range_single(vma, address, size, details): the range must fit into one VMA (it is clipped to it). */
export function zapPageRangeSingle(vma: VmAreaStruct, address: number, size: number, details: ZapDetails | null = null): void {
  const tlb = tlbGatherMmu(vma.vmMm);
  unmapSingleVma(tlb, vma, address, address + size, details);
  tlbFinishMmu(tlb);
}

/** zap_vma_pages(vma): the whole VMA (Linux's name since 6.3 for zapping one VMA). */
export function zapVmaPages(vma: VmAreaStruct): void {
  zapPageRangeSingle(vma, vma.vmStart, vma.vmEnd - vma.vmStart, null);
}

/** zap_vma_ptes(vma, address, size): only VM_PFNMAP VMAs, the whole range inside the VMA; otherwise nothing happens. */
export function zapVmaPtes(vma: VmAreaStruct, address: number, size: number): void {
  if (address < vma.vmStart || address + size > vma.vmEnd || (vma.vmFlags & VM_PFNMAP) === 0) return;
  zapPageRangeSingle(vma, address, size, null);
}

// ---- inserting pages and pfns -----------------------------------------------------------------------

/** get_locked_pte: the pte for addr, allocating tables; -1 when that fails. */
function getLockedPte(mm: MmStruct, addr: number): number {
  const pt = mm.machine.pgtable;
  const pmd = entryAlloc(mm, addr, 'pmd');
  if (pmd < 0) return -1;
  const lo = pt.lo(pmd);
  const hi = pt.hi(pmd);
  if (!pt.pmdNone(lo, hi) && (pt.pmdLeaf(lo, hi) || !pt.pmdPresent(lo, hi))) return -1; // a huge pmd is in the way
  return entryAlloc(mm, addr, 'pte');
}

/** validate_page_before_insert: a page with references that is neither anonymous nor a typed (page-table) page. */
function validatePageBeforeInsert(m: Machine, page: number): number {
  const folio = pageFolio(m, page);
  if (folioRefCount(m, folio) === 0) return -EINVAL;
  if (page === m.zeroPagePa) return 0;
  if (folioTestAnon(m, folio) || m.meta.testFlag(folio, PG_pgtable) /* page_has_type */) return -EINVAL;
  return 0;
}

/** insert_page: map one page at addr with prot; -EBUSY if something is mapped there. */
function insertPage(vma: VmAreaStruct, addr: number, page: number, prot: bigint): number {
  const mm = vma.vmMm;
  const m = mm.machine;
  if (!m.mem.contains(page, m.geo.PAGE_SIZE) || page % m.geo.PAGE_SIZE !== 0) return -EINVAL;
  const err = validatePageBeforeInsert(m, page);
  if (err) return err;
  const pte = getLockedPte(mm, addr);
  if (pte < 0) return -ENOMEM;
  const pt = m.pgtable;
  if (!m.bits.pteNone(pt.lo(pte), pt.hi(pte))) return -EBUSY;
  const pfn = page / m.geo.PAGE_SIZE;
  if (page === m.zeroPagePa) {
    pt.set(pte, m.bits.pteMkspecial(m.bits.pfnPte(pfn, prot)));
    return 0;
  }
  const folio = pageFolio(m, page);
  folioGet(m, folio);
  addMmCounter(mm, mmCounter(m, folio), 1);
  folioAddRmapPtes(m, page, 1);
  pt.set(pte, m.bits.pfnPte(pfn, prot));
  return 0;
}

/**
 * vm_insert_page(vma, addr, page): insert a driver's page (an individual page, or a page of a
 * compound page marked as such) into a user VMA with the VMA's protection. Takes a page reference.
 * Without VM_MIXEDMAP the caller must hold the mmap write lock; VM_MIXEDMAP is then set.
 */
export function vmInsertPage(vma: VmAreaStruct, addr: number, page: number): number {
  if (addr < vma.vmStart || addr >= vma.vmEnd) return -EFAULT;
  if ((vma.vmFlags & VM_MIXEDMAP) === 0) {
    // BUG_ON(mmap_read_trylock(vma->vm_mm)): the mmap lock must be held for write.
    if (!vma.vmMm.mmapLock.isWriteLocked) {
      throw new KernelAssertionError('vm_insert_page', `BUG_ON(mmap_read_trylock(mm)): the mmap lock of ${vma.vmMm.name} must be held for write to set VM_MIXEDMAP`);
    }
    if (vma.vmFlags & VM_PFNMAP) throw new KernelAssertionError('vm_insert_page', `BUG_ON(vma->vm_flags & VM_PFNMAP): ${vma}`);
    vmaStartWrite(vma); // vm_flags_set
    vma.vmFlags = (vma.vmFlags | VM_MIXEDMAP) >>> 0;
  }
  return insertPage(vma, addr, page, vma.vmPageProt);
}

/**
 * vmf_insert_pfn_prot(vma, addr, pfn, pgprot): a raw pfn as a special pte. VM_PFNMAP or VM_MIXEDMAP
 * (not both), never a COW VM_PFNMAP mapping; with VM_MIXEDMAP only pfns without a struct page.
 * No TLB flush: the pte was empty. An occupied pte is left alone (VM_FAULT_NOPAGE either way).
 */
export function vmfInsertPfnProt(vma: VmAreaStruct, addr: number, pfn: number, pgprot: bigint): number {
  const f = vma.vmFlags;
  const m = vma.vmMm.machine;
  if ((f & (VM_PFNMAP | VM_MIXEDMAP)) === 0) throw new KernelAssertionError('vmf_insert_pfn_prot', `BUG_ON(!(vma->vm_flags & (VM_PFNMAP|VM_MIXEDMAP))): ${vma}`);
  if ((f & (VM_PFNMAP | VM_MIXEDMAP)) === (VM_PFNMAP | VM_MIXEDMAP)) {
    throw new KernelAssertionError('vmf_insert_pfn_prot', `BUG_ON(VM_PFNMAP and VM_MIXEDMAP both set): ${vma}`);
  }
  if ((f & VM_PFNMAP) !== 0 && isCowMapping(f)) throw new KernelAssertionError('vmf_insert_pfn_prot', `BUG_ON(VM_PFNMAP on a COW mapping): ${vma}`);
  if ((f & VM_MIXEDMAP) !== 0 && pfnToPage(m, pfn) >= 0) {
    throw new KernelAssertionError('vmf_insert_pfn_prot', `BUG_ON(VM_MIXEDMAP && pfn_valid(0x${pfn.toString(16)})): use vm_insert_page for pages with a struct page`);
  }
  if (addr < vma.vmStart || addr >= vma.vmEnd) return VM_FAULT_SIGBUS;
  return insertPfn(vma, addr, pfn, pgprot);
}

/** vmf_insert_pfn(vma, addr, pfn): with the VMA's own protection. */
export function vmfInsertPfn(vma: VmAreaStruct, addr: number, pfn: number): number {
  return vmfInsertPfnProt(vma, addr, pfn, vma.vmPageProt);
}

function insertPfn(vma: VmAreaStruct, addr: number, pfn: number, prot: bigint): number {
  const mm = vma.vmMm;
  const m = mm.machine;
  const pte = getLockedPte(mm, addr);
  if (pte < 0) return VM_FAULT_OOM;
  const pt = m.pgtable;
  if (!m.bits.pteNone(pt.lo(pte), pt.hi(pte))) return VM_FAULT_NOPAGE;
  pt.set(pte, m.bits.pteMkspecial(m.bits.pfnPte(pfn, prot)));
  return VM_FAULT_NOPAGE;
}

/**
 * remap_pfn_range(vma, addr, pfn, size, prot): map [pfn, pfn + size/PAGE_SIZE) at addr as special
 * ptes and mark the VMA VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP. A COW mapping may only be
 * remapped whole (its vm_pgoff becomes pfn). Only safe under the mmap write lock (vm_flags_set).
 * On failure the part mapped so far is zapped again. Returns 0 or a negative errno.
 */
export function remapPfnRange(vma: VmAreaStruct, addr: number, pfn: number, size: number, prot: bigint): number {
  const mm = vma.vmMm;
  const m = mm.machine;
  const ps = m.geo.PAGE_SIZE;
  if (addr % ps !== 0) return -EINVAL; // WARN_ON_ONCE(!PAGE_ALIGNED(addr))
  const end = addr + Math.ceil(size / ps) * ps;
  if (isCowMapping(vma.vmFlags)) {
    if (addr !== vma.vmStart || end !== vma.vmEnd) return -EINVAL;
    vma.vmPgoff = pfn;
  }
  mmapAssertWriteLocked(mm);
  vmaStartWrite(vma); // vm_flags_set
  vma.vmFlags = (vma.vmFlags | VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP) >>> 0;
  if (!(addr < end)) throw new KernelAssertionError('remap_pfn_range', `BUG_ON(addr >= end): [0x${addr.toString(16)}, 0x${end.toString(16)})`);
  if (addr < vma.vmStart || end > vma.vmEnd) return -EINVAL;
  const pt = m.pgtable;
  for (let a = addr, p = pfn; a < end; a += ps, p++) {
    const pte = getLockedPte(mm, a);
    if (pte < 0) {
      zapPageRangeSingle(vma, addr, a - addr, null);
      return -ENOMEM;
    }
    if (!m.bits.pteNone(pt.lo(pte), pt.hi(pte))) {
      throw new KernelAssertionError('remap_pte_range', `BUG_ON(!pte_none(*pte)) at 0x${a.toString(16)}: ${vma} already maps it`);
    }
    pt.set(pte, m.bits.pteMkspecial(m.bits.pfnPte(p, prot)));
  }
  return 0;
}

/** io_remap_pfn_range: remap_pfn_range on x86-64 and ARM64. */
export const ioRemapPfnRange = remapPfnRange;

/**
 * vm_iomap_memory(vma, start, len): map the physical range [start, start + len) into the whole VMA,
 * starting vm_pgoff pages into the range, with the VMA's protection. -EINVAL if the range wraps,
 * vm_pgoff is past its end, or the VMA is larger than what is left.
 */
export function vmIomapMemory(vma: VmAreaStruct, start: number | bigint, len: number | bigint): number {
  const ps = BigInt(vma.vmMm.machine.geo.PAGE_SIZE);
  const s = BigInt(start);
  let l = BigInt(len);
  const U64 = 1n << 64n;
  if (s + l >= U64 && (s + l) % U64 < s) return -EINVAL; // start + len < start
  l += s & (ps - 1n);
  let pfn = s / ps;
  let pages = (l + ps - 1n) / ps;
  if (pfn + pages >= U64) return -EINVAL;
  const pgoff = BigInt(vma.vmPgoff);
  if (pgoff > pages) return -EINVAL;
  pfn += pgoff;
  pages -= pgoff;
  const vmLen = vma.vmEnd - vma.vmStart;
  if (BigInt(vmLen) / ps > pages) return -EINVAL;
  return ioRemapPfnRange(vma, vma.vmStart, Number(pfn), vmLen, vma.vmPageProt);
}

// ---- unmapping a file's pages from every process -----------------------------------------------

const ULONG_MAX = (1n << 64n) - 1n;

/**
 * unmap_mapping_pages(mapping, start, nr, even_cows): zap file pages [start, start + nr) in every
 * VMA that maps them; nr 0 (or a range that wraps) means to the end of the file. Private COW'd
 * pages stay unless even_cows.
 */
export function unmapMappingPages(mapping: AddressSpace, start: number | bigint, nr: number | bigint, evenCows: boolean): void {
  const first = BigInt(start);
  let last = (first + BigInt(nr) - 1n) & ULONG_MAX;
  if (last < first) last = ULONG_MAX;
  const details: ZapDetails = { evenCows };
  mapping.iMmapRwsem.downRead();
  try {
    for (const vma of [...mapping.overlapping(first, last)]) {
      const ps = BigInt(vma.vmMm.machine.geo.PAGE_SIZE);
      const vba = BigInt(vma.vmPgoff);
      const vea = vba + BigInt((vma.vmEnd - vma.vmStart) / Number(ps)) - 1n;
      const zba = first > vba ? first : vba;
      const zea = last < vea ? last : vea;
      const s = Number((zba - vba) * ps) + vma.vmStart;
      const e = Number((zea - vba + 1n) * ps) + vma.vmStart;
      zapPageRangeSingle(vma, s, e - s, details);
    }
  } finally {
    mapping.iMmapRwsem.upRead();
  }
}

/**
 * unmap_mapping_range(mapping, holebegin, holelen, even_cows): the byte range of the file; holebegin
 * is rounded down and holelen up to whole pages, and a holelen of 0 means to the end of the file.
 */
export function unmapMappingRange(mapping: AddressSpace, holebegin: number | bigint, holelen: number | bigint, evenCows: boolean | number, pageSize = mapping.pageSize): void {
  const ps = BigInt(pageSize);
  const hba = BigInt(holebegin) / ps;
  const hlen = (BigInt(holelen) + ps - 1n) / ps;
  unmapMappingPages(mapping, hba, hlen, Boolean(evenCows));
}

// ---- looking pfns up ------------------------------------------------------------------------------------

/** What follow_pfnmap_start reports (struct follow_pfnmap_args). */
export interface FollowPfnmapArgs {
  readonly vma: VmAreaStruct;
  readonly address: number;
  pfn: number;
  pgprot: bigint;
  writable: boolean;
  special: boolean;
  /** Level of the leaf found. */
  level: 'pte' | 'pmd' | 'pud' | null;
}

/**
 * follow_pfnmap_start(args): the pfn mapped at args.address in a VM_IO / VM_PFNMAP VMA (pte, pmd or
 * pud leaf). 0 on success, -EINVAL when the VMA is not such a mapping or nothing present maps it.
 */
export function followPfnmapStart(args: FollowPfnmapArgs): number {
  const { vma, address } = args;
  const m = vma.vmMm.machine;
  if ((vma.vmFlags & (VM_IO | VM_PFNMAP)) === 0) return -EINVAL;
  if (address < vma.vmStart || address >= vma.vmEnd) return -EINVAL;
  const r = lookupEntry(vma.vmMm, address);
  if (r.level === 'none') return -EINVAL;
  const pt = m.pgtable;
  const lo = pt.lo(r.ptr);
  const hi = pt.hi(r.ptr);
  const present = r.level === 'pte' ? m.bits.ptePresent(lo, hi) : r.level === 'pmd' ? pt.pmdPresent(lo, hi) : pt.pudPresent(lo, hi);
  if (!present) return -EINVAL;
  const base = m.bits.leafPfn(r.level, lo, hi);
  const span = r.level === 'pte' ? 1 : r.level === 'pmd' ? pt.PMD_SIZE / pt.PAGE_SIZE : pt.PUD_SIZE / pt.PAGE_SIZE;
  const within = r.level === 'pte' ? 0 : Math.floor((address % (span * pt.PAGE_SIZE)) / pt.PAGE_SIZE);
  args.pfn = base + within;
  args.writable = m.bits.pteWrite(lo, hi);
  args.special = m.bits.pteSpecial(lo, hi);
  const v = pt.val(r.ptr);
  args.pgprot = v & ~m.bits.pfnPte(base, 0n);
  args.level = r.level;
  return 0;
}

/** follow_pfnmap_end: releases what start took (the page-table lock; nothing to do here). */
export function followPfnmapEnd(args: FollowPfnmapArgs): void {
  args.level = null;
}

/**
 * follow_pfn(vma, address, pfnOut): only IO mappings and raw PFN mappings; 0 and the pfn in
 * out.pfn, or a negative errno.
 */
export function followPfn(vma: VmAreaStruct, address: number, out: { pfn: number }): number {
  const args: FollowPfnmapArgs = { vma, address, pfn: 0, pgprot: 0n, writable: false, special: false, level: null };
  const ret = followPfnmapStart(args);
  if (ret) return ret;
  out.pfn = args.pfn;
  followPfnmapEnd(args);
  return 0;
}

// ---- fork: copy_page_range ----------------------------------------------------------------------------

/** vma_needs_copy: pfn maps and VMAs with anonymous pages are copied; file pages are faulted in again by the child. */
function vmaNeedsCopy(src: VmAreaStruct): boolean {
  if (src.vmFlags & (VM_PFNMAP | VM_MIXEDMAP)) return true;
  return src.anonVma !== null;
}

/**
 * copy_page_range(dst_vma, src_vma): the child's tables for one VMA. In a COW mapping writable
 * ptes are write-protected on both sides; anonymous pages become shared (not exclusive) with one
 * more reference and mapping; shared mappings' ptes are copied clean; every copied pte is old.
 * Returns 0 or -ENOMEM.
 */
export function copyPageRange(dst: VmAreaStruct, src: VmAreaStruct): number {
  if (src.anonVma) anonVmaFork(dst, src);
  if (!vmaNeedsCopy(src)) return 0;
  if (isVmHugetlbPage(src)) return hugetlbCopyRange(dst, src);
  const srcMm = src.vmMm;
  const dstMm = dst.vmMm;
  const m = srcMm.machine;
  const pt = m.pgtable;
  const b = m.bits;
  const cow = isCowMapping(src.vmFlags);
  const ps = pt.PAGE_SIZE;
  let addr = src.vmStart;
  while (addr < src.vmEnd) {
    const r = lookupEntry(srcMm, addr);
    if (r.level === 'none') {
      // Skip to the next pmd boundary: nothing at all below here.
      addr = Math.min(src.vmEnd, Math.floor(addr / pt.PMD_SIZE) * pt.PMD_SIZE + pt.PMD_SIZE);
      continue;
    }
    if (r.level === 'pud') {
      addr = Math.min(src.vmEnd, Math.floor(addr / pt.PUD_SIZE) * pt.PUD_SIZE + pt.PUD_SIZE); // copy_huge_pud: DAX only
      continue;
    }
    if (r.level === 'pmd') {
      const err = copyHugePmd(dst, src, r.ptr, addr);
      if (err) return err;
      addr += pt.PMD_SIZE;
      continue;
    }
    // A pte table: copy every pte of [addr, pmd end) within the VMA.
    const end = Math.min(src.vmEnd, Math.floor(addr / pt.PMD_SIZE) * pt.PMD_SIZE + pt.PMD_SIZE);
    let spte = r.ptr;
    for (; addr < end; addr += ps, spte += 8) {
      let lo = pt.lo(spte);
      let hi = pt.hi(spte);
      if (b.pteNone(lo, hi)) continue;
      const dpte = entryAlloc(dstMm, addr, 'pte');
      if (dpte < 0) return -ENOMEM;
      if (!b.ptePresent(lo, hi)) {
        // copy_nonpresent_pte
        const type = b.swapType(lo, hi);
        if (!isNonSwapType(type)) {
          swapDevice(m).dup(b.swapOffset(lo, hi));
          addMmCounter(dstMm, MM_SWAPENTS, 1);
        } else if (isMigrationType(type)) {
          const folio = pageFolio(m, b.swapOffset(lo, hi) * ps);
          addMmCounter(dstMm, mmCounter(m, folio), 1);
        }
        pt.set(dpte, pt.val(spte));
        continue;
      }
      const page = vmNormalPage(src, addr, lo, hi);
      if (page >= 0) {
        const folio = pageFolio(m, page);
        folioGet(m, folio);
        if (folioTestAnon(m, folio)) {
          // folio_try_dup_anon_rmap_pte: the page is shared from now on.
          m.meta.clearFlag(page, PG_anon_exclusive);
          addMmCounter(dstMm, MM_ANONPAGES, 1);
        } else {
          addMmCounter(dstMm, mmCounter(m, folio), 1);
        }
        folioAddRmapPtes(m, page, 1);
      }
      let v = pt.val(spte);
      if (cow && b.pteWrite(lo, hi)) {
        v = b.pteModify(v, { write: false }); // ptep_set_wrprotect(src) and pte_wrprotect
        pt.set(spte, v);
        lo = loOf(v);
        hi = hiOf(v);
      }
      if (src.vmFlags & VM_SHARED) v = b.pteModify(v, { dirty: false });
      v = b.pteModify(v, { young: false });
      pt.set(dpte, v);
    }
  }
  return 0;
}

/** copy_huge_pmd: an anonymous THP (or the huge zero pmd) is shared write-protected; file THPs are not copied. */
function copyHugePmd(dst: VmAreaStruct, src: VmAreaStruct, spmd: number, addr: number): number {
  if (dst.vmFile !== null) return 0;
  const m = src.vmMm.machine;
  const pt = m.pgtable;
  const dstMm = dst.vmMm;
  const lo = pt.lo(spmd);
  const hi = pt.hi(spmd);
  if (!pt.pmdPresent(lo, hi)) return 0; // a pmd migration entry: mmulab does not migrate THPs
  const table = m.allocPgtable(); // pte_alloc_one: the deposit for the child
  if (table < 0) return -ENOMEM;
  const dpmd = entryAlloc(dstMm, addr, 'pmd');
  if (dpmd < 0) {
    m.freePgtable(table);
    return -ENOMEM;
  }
  const pa = m.bits.leafPfn('pmd', lo, hi) * pt.PAGE_SIZE;
  if (m.hugeZeroFolio >= 0 && pa === m.hugeZeroFolio) {
    if (!dstMm.hugeZeroRef) {
      dstMm.hugeZeroRef = true;
      m.hugeZeroUsers++;
    }
  } else {
    const folio = pageFolio(m, pa);
    folioGet(m, folio);
    m.meta.clearFlag(folio, PG_anon_exclusive);
    folioAddRmapEntire(m, folio);
    addMmCounter(dstMm, MM_ANONPAGES, folioNrPages(m, folio));
  }
  dstMm.depositedTables.set(dpmd, table);
  let v = pt.val(spmd);
  v = m.bits.pteModify(v, { write: false });
  pt.set(spmd, v);
  pt.set(dpmd, m.bits.pteModify(v, { young: false }));
  return 0;
}
