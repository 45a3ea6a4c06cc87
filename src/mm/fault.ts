/**
 * Page faults (mm/memory.c handle_mm_fault and the do_* handlers, mm/huge_memory.c for anonymous
 * THP, mm/filemap.c filemap_fault and fault-around), as Linux 6.18 runs them.
 *
 * Every handler returns vm_fault_t bits (VM_FAULT_*). The arch fault handler part that decides
 * whether an access is allowed at all by the VMA (access_error) is doUserAddrFault.
 */
import { PG_anon_exclusive, PG_dirty, PG_reserved, PG_swapbacked, PG_swapcache, PG_uptodate } from '../mem/framemeta';
import type { AddressSpace } from './address-space';
import {
  copyPage,
  folioAlloc,
  folioGet,
  folioMarkDirty,
  folioNrPages,
  folioPut,
  folioRefCount,
  freeFolioFrames,
  folioTestAnon,
  mmCounter,
  pageFolio,
  setFolioMapping,
} from './folio';
import { hugetlbFault } from './hugetlb';
import { splitHugePmd } from './huge-memory';
import { KernelAssertionError } from './locks';
import {
  isCowMapping,
  vmNormalPage,
  VM_FAULT_LOCKED,
  VM_FAULT_MAJOR,
  VM_FAULT_NOPAGE,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
  VM_FAULT_WRITE,
  VM_FAULT_FALLBACK,
  VM_FAULT_ERROR,
  VM_FAULT_HWPOISON,
  VM_FAULT_RETRY,
} from './memory';
import { addMmCounter, mmapAssertLocked, MM_ANONPAGES, MM_SWAPENTS, type MmStruct } from './mm';
import { flushTlbRange } from './mmu-gather';
import { pmdAlloc, pudAlloc, p4dAlloc, __pteAlloc } from './pgalloc';
import { pteOffsetMap } from './pte-map';
import { anonVmaPrepare, folioAddNewAnonRmap, folioAddRmapPtes, folioRemoveRmapPtes, linearPageIndex } from './rmap';
import { folioFreeSwap, isMigrationType, isNonSwapType, SWP_HWPOISON, swapDevice } from './swap';
import { isVmHugetlbPage, vmaAssertLocked, vmaIsAnonymous, type VmAreaStruct } from './vma';
import { VM_EXEC, VM_HUGEPAGE, VM_HUGETLB, VM_IO, VM_MAYSHARE, VM_MAYWRITE, VM_MIXEDMAP, VM_NOHUGEPAGE, VM_PFNMAP, VM_READ, VM_SHARED, VM_WRITE } from './vm-flags';

// ---- fault flags (include/linux/mm_types.h enum fault_flag) -----------------------------------------
export const FAULT_FLAG_WRITE = 1 << 0;
export const FAULT_FLAG_MKWRITE = 1 << 1;
export const FAULT_FLAG_ALLOW_RETRY = 1 << 2;
export const FAULT_FLAG_RETRY_NOWAIT = 1 << 3;
export const FAULT_FLAG_KILLABLE = 1 << 4;
export const FAULT_FLAG_TRIED = 1 << 5;
export const FAULT_FLAG_USER = 1 << 6;
export const FAULT_FLAG_REMOTE = 1 << 7;
export const FAULT_FLAG_INSTRUCTION = 1 << 8;
export const FAULT_FLAG_INTERRUPTIBLE = 1 << 9;
export const FAULT_FLAG_UNSHARE = 1 << 10;
export const FAULT_FLAG_ORIG_PTE_VALID = 1 << 11;
export const FAULT_FLAG_VMA_LOCK = 1 << 12;

/** fault_around_bytes (mm/memory.c): 64 KiB. */
export const FAULT_AROUND_BYTES = 65536;

/** struct vm_fault: what the handlers pass each other. */
export class VmFault {
  /** Page-aligned faulting address. */
  readonly address: number;
  readonly realAddress: number;
  /** linear_page_index(vma, address). */
  readonly pgoff: number;
  flags: number;
  /** The pmd entry pointer, or -1. */
  pmd = -1;
  /** The pte pointer, or -1 (vmf->pte == NULL). */
  pte = -1;
  /** The pte as read when the fault started (vmf->orig_pte). */
  origPte = 0n;
  /** vmf->page: the page the fault handler found (its folio holds a reference for us), or -1. */
  page = -1;
  /** vmf->cow_page: the new anonymous page of a private write fault, or -1. */
  cowPage = -1;

  constructor(
    readonly vma: VmAreaStruct,
    address: number,
    flags: number,
  ) {
    const ps = vma.vmMm.machine.geo.PAGE_SIZE;
    this.realAddress = address;
    this.address = Math.floor(address / ps) * ps;
    this.flags = flags;
    this.pgoff = linearPageIndex(vma, this.address);
  }
}

function isWrite(vmf: VmFault): boolean {
  return (vmf.flags & FAULT_FLAG_WRITE) !== 0;
}

/** maybe_mkwrite: writable only if the VMA is. */
function maybeMkwrite(vma: VmAreaStruct, v: bigint): bigint {
  return (vma.vmFlags & VM_WRITE) !== 0 ? vma.vmMm.machine.bits.pteModify(v, { write: true }) : v;
}

/**
 * arch_wants_old_prefaulted_pte: ARM64 maps fault-around ptes old when the CPU updates the access
 * flag in hardware (mmulab's ARM64 does: FEAT_HAFDBS); x86-64 maps them young.
 */
function wantsOldPrefaulted(vma: VmAreaStruct): boolean {
  return vma.vmMm.machine.geo.arch === 'arm64';
}

// ---- entry point -------------------------------------------------------------------------------------

/**
 * handle_mm_fault(vma, address, flags): resolve a fault at address in vma. The caller holds the
 * mmap lock (or the VMA lock with FAULT_FLAG_VMA_LOCK) and has already checked the access against
 * the VMA (access_error); a write to a VMA that may never be written is refused with SIGSEGV.
 */
export function handleMmFault(vma: VmAreaStruct, address: number, flags: number): number {
  if (flags & FAULT_FLAG_VMA_LOCK) vmaAssertLocked(vma);
  else mmapAssertLocked(vma.vmMm);
  if (address < vma.vmStart || address >= vma.vmEnd) {
    throw new KernelAssertionError('handle_mm_fault', `address 0x${address.toString(16)} is outside ${vma}`);
  }
  // sanitize_fault_flags
  if (flags & FAULT_FLAG_UNSHARE) {
    if (flags & FAULT_FLAG_WRITE) return VM_FAULT_SIGSEGV;
    if (!isCowMapping(vma.vmFlags)) flags &= ~FAULT_FLAG_UNSHARE;
  } else if (flags & FAULT_FLAG_WRITE) {
    if ((vma.vmFlags & VM_MAYWRITE) === 0) return VM_FAULT_SIGSEGV;
    if ((vma.vmFlags & VM_WRITE) === 0 && !isCowMapping(vma.vmFlags)) return VM_FAULT_SIGSEGV;
  }
  if (isVmHugetlbPage(vma)) return hugetlbFault(vma, address, (flags & FAULT_FLAG_WRITE) !== 0);
  return __handleMmFault(vma, address, flags);
}

function __handleMmFault(vma: VmAreaStruct, address: number, flags: number): number {
  const mm = vma.vmMm;
  const m = mm.machine;
  const pt = m.pgtable;
  const vmf = new VmFault(vma, address, flags);
  const pgd = pt.pgdOffset(mm.pgd, vmf.address);
  const p4d = p4dAlloc(mm, pgd, vmf.address);
  if (p4d < 0) return VM_FAULT_OOM;
  const pud = pudAlloc(mm, p4d, vmf.address);
  if (pud < 0) return VM_FAULT_OOM;
  if (pt.pudLeaf(pt.lo(pud), pt.hi(pud))) {
    // A PUD leaf in a non-hugetlb VMA (DAX in Linux): accesses are resolved at that level.
    return 0;
  }
  const pmd = pmdAlloc(mm, pud, vmf.address);
  if (pmd < 0) return VM_FAULT_OOM;
  vmf.pmd = pmd;
  const lo = pt.lo(pmd);
  const hi = pt.hi(pmd);
  if (pt.pmdNone(lo, hi) && thpAllowed(vma, vmf.address)) {
    const ret = doHugePmdAnonymousPage(vmf);
    if (!(ret & VM_FAULT_FALLBACK)) return ret;
  } else if (!pt.pmdNone(lo, hi)) {
    if (!pt.pmdPresent(lo, hi)) return 0; // a pmd migration entry: wait for the migration, then retry
    if (pt.pmdTransHuge(lo, hi)) {
      if ((flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) && !m.bits.pteWrite(lo, hi)) {
        const ret = doHugePmdWpPage(vmf);
        if (!(ret & VM_FAULT_FALLBACK)) return ret;
      } else {
        // huge_pmd_set_accessed
        let v = pt.val(pmd);
        v = m.bits.pteModify(v, (flags & FAULT_FLAG_WRITE) !== 0 ? { young: true, dirty: true } : { young: true });
        pt.set(pmd, v);
        return 0;
      }
    }
  }
  return handlePteFault(vmf);
}

/** thp_vma_allowable_order(vma, PMD_ORDER) and thp_vma_suitable_order for an anonymous fault. */
export function thpAllowed(vma: VmAreaStruct, address: number): boolean {
  const m = vma.vmMm.machine;
  if (!vmaIsAnonymous(vma)) return false;
  if (vma.vmFlags & (VM_NOHUGEPAGE | VM_HUGETLB | VM_PFNMAP | VM_MIXEDMAP | VM_IO)) return false;
  const mode = m.thp.enabled;
  if (mode === 'never' || (mode === 'madvise' && (vma.vmFlags & VM_HUGEPAGE) === 0)) return false;
  const size = m.geo.PMD_SIZE;
  const haddr = Math.floor(address / size) * size;
  return haddr >= vma.vmStart && haddr + size <= vma.vmEnd;
}

/** do_huge_pmd_anonymous_page: the huge zero folio for reads, a new THP for writes; FALLBACK when none can be had. */
function doHugePmdAnonymousPage(vmf: VmFault): number {
  const vma = vmf.vma;
  const mm = vma.vmMm;
  const m = mm.machine;
  const pt = m.pgtable;
  const size = pt.PMD_SIZE;
  const haddr = Math.floor(vmf.address / size) * size;
  const order = Math.log2(size / pt.PAGE_SIZE);
  anonVmaPrepare(vma);
  if (!isWrite(vmf) && m.thp.useZeroPage) {
    const table = m.allocPgtable(); // pte_alloc_one: the deposit
    if (table < 0) return VM_FAULT_OOM;
    const zero = getHugeZeroFolio(mm, order);
    if (zero < 0) {
      m.freePgtable(table);
      return VM_FAULT_FALLBACK;
    }
    mm.depositedTables.set(vmf.pmd, table);
    const entry = m.bits.pteMkspecial(m.bits.pfnHuge('pmd', zero / pt.PAGE_SIZE, vma.vmPageProt));
    pt.set(vmf.pmd, entry);
    return 0;
  }
  const folio = folioAlloc(m, order, true);
  if (folio < 0) return VM_FAULT_FALLBACK;
  const table = m.allocPgtable();
  if (table < 0) {
    folioPut(m, folio);
    return VM_FAULT_OOM;
  }
  m.meta.setFlag(folio, PG_uptodate);
  let entry = m.bits.pfnHuge('pmd', folio / pt.PAGE_SIZE, vma.vmPageProt);
  entry = maybeMkwrite(vma, m.bits.pteModify(entry, { dirty: true }));
  folioAddNewAnonRmap(m, folio, vma, haddr, 'pmd');
  mm.depositedTables.set(vmf.pmd, table);
  pt.set(vmf.pmd, entry);
  addMmCounter(mm, MM_ANONPAGES, size / pt.PAGE_SIZE);
  return 0;
}

/** mm_get_huge_zero_folio: the machine's huge zero folio, allocated on first use; -1 when memory is short. */
function getHugeZeroFolio(mm: MmStruct, order: number): number {
  const m = mm.machine;
  if (m.hugeZeroFolio < 0) {
    const f = folioAlloc(m, order, true);
    if (f < 0) return -1;
    m.meta.setFlag(f, PG_reserved); // never freed through folio_put
    m.hugeZeroFolio = f;
  }
  if (!mm.hugeZeroRef) {
    mm.hugeZeroRef = true;
    m.hugeZeroUsers++;
  }
  return m.hugeZeroFolio;
}

/** mm_put_huge_zero_folio at exit: the last user lets the shrinker free it (done at once here). */
export function putHugeZeroFolio(mm: MmStruct): void {
  const m = mm.machine;
  if (!mm.hugeZeroRef) return;
  mm.hugeZeroRef = false;
  m.hugeZeroUsers--;
  if (m.hugeZeroUsers === 0 && m.hugeZeroFolio >= 0) {
    const f = m.hugeZeroFolio;
    m.hugeZeroFolio = -1;
    freeFolioFrames(m, f);
  }
}

/** do_huge_pmd_wp_page: reuse an exclusive THP, else split and let the pte path copy one page. */
function doHugePmdWpPage(vmf: VmFault): number {
  const vma = vmf.vma;
  const m = vma.vmMm.machine;
  const pt = m.pgtable;
  const lo = pt.lo(vmf.pmd);
  const hi = pt.hi(vmf.pmd);
  const pa = m.bits.leafPfn('pmd', lo, hi) * pt.PAGE_SIZE;
  const isZero = pa === m.hugeZeroFolio;
  if (!isZero && vmaIsAnonymous(vma) && !m.bits.pteSpecial(lo, hi)) {
    const folio = pageFolio(m, pa);
    if (m.meta.testFlag(pa, PG_anon_exclusive) || folioRefCount(m, folio) === 1) {
      m.meta.setFlag(pa, PG_anon_exclusive);
      let v = m.bits.pteModify(pt.val(vmf.pmd), { young: true, dirty: true });
      v = maybeMkwrite(vma, v);
      pt.set(vmf.pmd, v);
      return 0;
    }
  }
  splitHugePmd(vma, vmf.pmd, vmf.address);
  return VM_FAULT_FALLBACK;
}

// ---- the pte level --------------------------------------------------------------------------------------

/** handle_pte_fault. */
function handlePteFault(vmf: VmFault): number {
  const vma = vmf.vma;
  const mm = vma.vmMm;
  const m = mm.machine;
  const pt = m.pgtable;
  const b = m.bits;
  const plo = pt.lo(vmf.pmd);
  const phi = pt.hi(vmf.pmd);
  if (pt.pmdNone(plo, phi)) {
    vmf.pte = -1;
  } else {
    vmf.pte = pteOffsetMap(mm, vmf.pmd, vmf.address);
    if (vmf.pte < 0) return 0; // the pmd changed: retry the fault
    vmf.origPte = pt.val(vmf.pte);
    if (b.pteNone(pt.lo(vmf.pte), pt.hi(vmf.pte))) vmf.pte = -1;
  }
  if (vmf.pte < 0) return vmaIsAnonymous(vma) ? doAnonymousPage(vmf) : doFault(vmf);
  const lo = pt.lo(vmf.pte);
  const hi = pt.hi(vmf.pte);
  if (!b.ptePresent(lo, hi)) return doSwapPage(vmf);
  if (vmf.flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) {
    if (!b.pteWrite(lo, hi)) return doWpPage(vmf);
  }
  // The pte allows the access already (another thread fixed it, or the TLB was stale):
  // ptep_set_access_flags with young, and dirty for a write.
  const v = b.pteModify(vmf.origPte, isWrite(vmf) ? { young: true, dirty: true } : { young: true });
  pt.set(vmf.pte, v);
  return 0;
}

/** pte_alloc for vmf->pmd: 0, or VM_FAULT_OOM. */
function allocPteTable(vmf: VmFault): number {
  const mm = vmf.vma.vmMm;
  const pt = mm.machine.pgtable;
  if (pt.pmdNone(pt.lo(vmf.pmd), pt.hi(vmf.pmd)) && __pteAlloc(mm, vmf.pmd, vmf.address)) return VM_FAULT_OOM;
  return 0;
}

/** do_anonymous_page: the zero page for a read, a new zeroed page for a write. */
function doAnonymousPage(vmf: VmFault): number {
  const vma = vmf.vma;
  const mm = vma.vmMm;
  const m = mm.machine;
  const pt = m.pgtable;
  if (vma.vmFlags & VM_SHARED) return VM_FAULT_SIGBUS;
  if (allocPteTable(vmf)) return VM_FAULT_OOM;
  const ptep = pteOffsetMap(mm, vmf.pmd, vmf.address);
  if (ptep < 0) return 0;
  if (!isWrite(vmf) && m.zeroPagePa >= 0) {
    if (!m.bits.pteNone(pt.lo(ptep), pt.hi(ptep))) return 0;
    pt.set(ptep, m.bits.pteMkspecial(m.bits.pfnPte(m.zeroPfn(), vma.vmPageProt)));
    return 0;
  }
  anonVmaPrepare(vma);
  const folio = folioAlloc(m, 0, true);
  if (folio < 0) return VM_FAULT_OOM;
  m.meta.setFlag(folio, PG_uptodate);
  let entry = m.bits.pfnPte(folio / pt.PAGE_SIZE, vma.vmPageProt);
  if (vma.vmFlags & VM_WRITE) entry = m.bits.pteModify(entry, { dirty: true, write: true });
  if (!m.bits.pteNone(pt.lo(ptep), pt.hi(ptep))) {
    folioPut(m, folio);
    return 0;
  }
  addMmCounter(mm, MM_ANONPAGES, 1);
  folioAddNewAnonRmap(m, folio, vma, vmf.address);
  pt.set(ptep, entry);
  return 0;
}

// ---- file faults -----------------------------------------------------------------------------------------

/** do_fault: read, COW or shared fault through the VMA's fault handler. */
function doFault(vmf: VmFault): number {
  const vma = vmf.vma;
  if (vma.vmOps !== 'file' || vma.vmFile === null) return VM_FAULT_SIGBUS; // no ->fault: a driver mapping
  if (!isWrite(vmf)) return doReadFault(vmf);
  if ((vma.vmFlags & VM_SHARED) === 0) return doCowFault(vmf);
  return doSharedFault(vmf);
}

/**
 * filemap_fault / shmem_fault: the page-cache folio for vmf->pgoff, read in from the backing store
 * if it is not cached (VM_FAULT_MAJOR). Beyond i_size: SIGBUS. Returns VM_FAULT_LOCKED with a
 * reference on the folio for the caller, in vmf->page.
 */
export function filemapFault(vmf: VmFault): number {
  const vma = vmf.vma;
  const m = vma.vmMm.machine;
  const mapping = vma.vmFile!;
  const ps = m.geo.PAGE_SIZE;
  const maxIdx = Math.ceil(mapping.size / ps);
  if (vmf.pgoff >= maxIdx) return VM_FAULT_SIGBUS;
  let ret = 0;
  let folio = mapping.pages.get(vmf.pgoff);
  if (folio === undefined) {
    folio = readCachePage(m, mapping, vmf.pgoff);
    if (folio < 0) return VM_FAULT_OOM;
    ret |= VM_FAULT_MAJOR;
  }
  folioGet(m, folio);
  vmf.page = folio;
  return ret | VM_FAULT_LOCKED;
}

/** Bring page `index` of a file into its page cache (the cache's reference); -1 when out of memory. */
export function readCachePage(m: import('./machine').Machine, mapping: AddressSpace, index: number): number {
  const folio = folioAlloc(m, 0, true);
  if (folio < 0) return -1;
  const data = mapping.backing.get(index);
  if (data) new Uint8Array(m.mem.buffer, m.mem.offset(folio, data.length), data.length).set(data);
  if (mapping.shmem) m.meta.setFlag(folio, PG_swapbacked);
  m.meta.setFlag(folio, PG_uptodate);
  setFolioMapping(m, folio, mapping, index);
  mapping.pages.set(index, folio);
  return folio;
}

/**
 * do_fault_around: map the page-cache pages already present around the fault (fault_around_bytes,
 * aligned, clipped to the VMA and the pmd) read-only, without taking the fault handler's path.
 * VM_FAULT_NOPAGE when the faulting page itself got mapped.
 */
function doFaultAround(vmf: VmFault): number {
  const vma = vmf.vma;
  const mm = vma.vmMm;
  const m = mm.machine;
  const pt = m.pgtable;
  const ps = pt.PAGE_SIZE;
  const nrPages = FAULT_AROUND_BYTES / ps;
  if (nrPages <= 1) return 0;
  const mapping = vma.vmFile!;
  const ptrsPerPte = m.geo.PTRS_PER_PTE;
  const pteOff = (vmf.address / ps) % ptrsPerPte;
  const vmaOff = vmf.pgoff - vma.vmPgoff;
  const fromPte = Math.max(Math.floor(pteOff / nrPages) * nrPages, pteOff - Math.min(pteOff, vmaOff));
  const vmaLeft = (vma.vmEnd - vmf.address) / ps - 1;
  const toPte = Math.min(Math.min(fromPte + nrPages, ptrsPerPte) - 1, pteOff + Math.min(ptrsPerPte - 1 - pteOff, vmaLeft));
  if (allocPteTable(vmf)) return VM_FAULT_OOM;
  const maxIdx = Math.ceil(mapping.size / ps);
  let ret = 0;
  for (let k = fromPte; k <= toPte; k++) {
    const addr = vmf.address + (k - pteOff) * ps;
    const index = vmf.pgoff + (k - pteOff);
    if (index >= maxIdx) break;
    const folio = mapping.pages.get(index);
    if (folio === undefined || !m.meta.testFlag(folio, PG_uptodate)) continue;
    const ptep = pteOffsetMap(mm, vmf.pmd, addr);
    if (ptep < 0 || !m.bits.pteNone(pt.lo(ptep), pt.hi(ptep))) continue;
    folioGet(m, folio);
    setPteRange(vmf, folio, folio, 1, addr, ptep);
    addMmCounter(mm, mmCounter(m, folio), 1);
    if (addr === vmf.address) ret = VM_FAULT_NOPAGE;
  }
  return ret;
}

function doReadFault(vmf: VmFault): number {
  const m = vmf.vma.vmMm.machine;
  if (FAULT_AROUND_BYTES / m.geo.PAGE_SIZE > 1) {
    const ret = doFaultAround(vmf);
    if (ret) return ret;
  }
  let ret = filemapFault(vmf);
  if (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) return ret;
  ret |= finishFault(vmf);
  if (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) folioPut(m, pageFolio(m, vmf.page));
  return ret;
}

function doCowFault(vmf: VmFault): number {
  const vma = vmf.vma;
  const m = vma.vmMm.machine;
  anonVmaPrepare(vma);
  const cow = folioAlloc(m, 0, false);
  if (cow < 0) return VM_FAULT_OOM;
  vmf.cowPage = cow;
  let ret = filemapFault(vmf);
  if (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) {
    folioPut(m, cow);
    return ret;
  }
  copyPage(m, cow, vmf.page);
  m.meta.setFlag(cow, PG_uptodate);
  ret |= finishFault(vmf);
  folioPut(m, pageFolio(m, vmf.page)); // put_page(vmf->page): the cache page was only read
  if (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) folioPut(m, cow);
  return ret;
}

function doSharedFault(vmf: VmFault): number {
  const vma = vmf.vma;
  const m = vma.vmMm.machine;
  let ret = filemapFault(vmf);
  if (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) return ret;
  const folio = pageFolio(m, vmf.page);
  if (wantsPageMkwrite(vma)) doPageMkwrite(vmf, folio);
  ret |= finishFault(vmf);
  if (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) {
    folioPut(m, folio);
    return ret;
  }
  folioMarkDirty(m, folio); // fault_dirty_shared_page
  return ret;
}

/** A regular file has ->page_mkwrite (filemap_page_mkwrite); shmem does not. */
function wantsPageMkwrite(vma: VmAreaStruct): boolean {
  return vma.vmFile !== null && !vma.vmFile.shmem && vma.vmOps === 'file';
}

/** do_page_mkwrite / filemap_page_mkwrite: the file is told the page becomes writable; it is dirtied. */
function doPageMkwrite(vmf: VmFault, folio: number): number {
  const m = vmf.vma.vmMm.machine;
  m.meta.setFlag(folio, PG_dirty);
  m.emit('page_mkwrite', { address: vmf.address, folio });
  return VM_FAULT_LOCKED;
}

/**
 * set_pte_range(vmf, folio, page, nr, addr) — alloc_set_pte in the seed's kernel: map nr pages of
 * the folio from page on at addr, add the reverse mapping. A private write maps a new anonymous
 * page; everything else a page-cache page. ptep defaults to vmf->pte.
 */
export function setPteRange(vmf: VmFault, folio: number, page: number, nr: number, addr: number, ptep = vmf.pte): void {
  const vma = vmf.vma;
  const m = vma.vmMm.machine;
  const b = m.bits;
  const pt = m.pgtable;
  const ps = pt.PAGE_SIZE;
  const write = isWrite(vmf);
  const prefault = !(vmf.address >= addr && vmf.address < addr + nr * ps);
  const dirtyFolio = m.meta.testFlag(folio, PG_dirty);
  // Each pte is built from its own pfn (set_ptes advances the pfn with pte_advance_pfn): masking
  // the frame out of the first entry would not work where the pfn is stored inverted (x86-64
  // PROT_NONE ptes, the L1TF mitigation of arch/x86/include/asm/pgtable-invert.h).
  const mkEntry = (pfn: number): bigint => {
    let entry = b.pfnPte(pfn, vma.vmPageProt);
    if (prefault && wantsOldPrefaulted(vma)) entry = b.pteModify(entry, { young: false });
    if (write) entry = maybeMkwrite(vma, b.pteModify(entry, { dirty: true }));
    else if (b.pteWrite(Number(entry & 0xffffffffn), Number(entry >> 32n)) && dirtyFolio) entry = b.pteModify(entry, { dirty: true });
    return entry;
  };
  if (write && (vma.vmFlags & VM_SHARED) === 0) {
    if (nr !== 1) throw new KernelAssertionError('set_pte_range', 'VM_BUG_ON_FOLIO(nr != 1): a COW maps one page');
    folioAddNewAnonRmap(m, folio, vma, addr);
  } else {
    folioAddRmapPtes(m, page, nr);
  }
  for (let i = 0; i < nr; i++) pt.set(ptep + i * 8, mkEntry(page / ps + i));
}

/** alloc_set_pte: the seed kernel's name for set_pte_range on one page (vmf->page or vmf->cow_page). */
export function allocSetPte(vmf: VmFault, page: number): number {
  const m = vmf.vma.vmMm.machine;
  if (vmf.pte < 0) {
    if (allocPteTable(vmf)) return VM_FAULT_OOM;
    vmf.pte = pteOffsetMap(vmf.vma.vmMm, vmf.pmd, vmf.address);
    if (vmf.pte < 0) return VM_FAULT_NOPAGE;
  }
  if (!m.bits.pteNone(m.pgtable.lo(vmf.pte), m.pgtable.hi(vmf.pte))) return VM_FAULT_NOPAGE;
  setPteRange(vmf, pageFolio(m, page), page, 1, vmf.address);
  return 0;
}

/**
 * finish_fault(vmf): map the prepared page (vmf->cow_page for a private write, vmf->page
 * otherwise), adding the reverse mapping and counting it. Consumes the page reference the caller
 * holds (it becomes the pte's). 0, VM_FAULT_NOPAGE if something is mapped there already, or
 * VM_FAULT_OOM.
 */
export function finishFault(vmf: VmFault): number {
  const vma = vmf.vma;
  const mm = vma.vmMm;
  const m = mm.machine;
  const pt = m.pgtable;
  const cow = isWrite(vmf) && (vma.vmFlags & VM_SHARED) === 0;
  const page = cow ? vmf.cowPage : vmf.page;
  if (page < 0) throw new KernelAssertionError('finish_fault', 'no page prepared (vmf->page / vmf->cow_page is NULL)');
  const folio = pageFolio(m, page);
  if (allocPteTable(vmf)) return VM_FAULT_OOM;
  const ptep = pteOffsetMap(mm, vmf.pmd, vmf.address);
  if (ptep < 0) return VM_FAULT_NOPAGE;
  vmf.pte = ptep;
  if (!m.bits.pteNone(pt.lo(ptep), pt.hi(ptep))) return VM_FAULT_NOPAGE; // vmf_pte_changed
  setPteRange(vmf, folio, page, 1, vmf.address);
  addMmCounter(mm, cow ? MM_ANONPAGES : mmCounter(m, folio), 1);
  return 0;
}

// ---- write-protect faults -------------------------------------------------------------------------------

/** do_wp_page: a write to a present, write-protected pte. */
function doWpPage(vmf: VmFault): number {
  const vma = vmf.vma;
  const m = vma.vmMm.machine;
  const pt = m.pgtable;
  const lo = pt.lo(vmf.pte);
  const hi = pt.hi(vmf.pte);
  vmf.page = vmNormalPage(vma, vmf.address, lo, hi);
  const folio = vmf.page >= 0 ? pageFolio(m, vmf.page) : -1;
  if (vma.vmFlags & (VM_SHARED | VM_MAYSHARE)) {
    if (folio < 0) return wpPfnShared(vmf);
    return wpPageShared(vmf, folio);
  }
  if (folio >= 0 && folioTestAnon(m, folio) && (m.meta.testFlag(vmf.page, PG_anon_exclusive) || wpCanReuseAnonFolio(vmf, folio))) {
    m.meta.setFlag(vmf.page, PG_anon_exclusive);
    wpPageReuse(vmf);
    return 0;
  }
  if (folio >= 0) folioGet(m, folio);
  return wpPageCopy(vmf, folio);
}

/** wp_can_reuse_anon_folio: a small folio whose only reference is this mapping's. */
function wpCanReuseAnonFolio(vmf: VmFault, folio: number): boolean {
  const m = vmf.vma.vmMm.machine;
  if (folioNrPages(m, folio) > 1) return false; // large folios: only when exclusive (6.18 checks mapcount; kept simple)
  // Only this mapping and the swap cache hold it: folio_free_swap first (when no swap entry uses
  // the slot any more), then the folio is ours alone.
  if (m.meta.testFlag(folio, PG_swapcache) && folioRefCount(m, folio) === 2) folioFreeSwap(m, folio);
  return folioRefCount(m, folio) === 1;
}

/** wp_page_reuse: make the pte young, dirty and (if the VMA allows) writable in place. */
function wpPageReuse(vmf: VmFault): void {
  const vma = vmf.vma;
  const m = vma.vmMm.machine;
  let v = m.bits.pteModify(vmf.origPte, { young: true, dirty: true });
  v = maybeMkwrite(vma, v);
  m.pgtable.set(vmf.pte, v);
}

function wpPfnShared(vmf: VmFault): number {
  wpPageReuse(vmf);
  return 0;
}

function wpPageShared(vmf: VmFault, folio: number): number {
  const vma = vmf.vma;
  const m = vma.vmMm.machine;
  folioGet(m, folio);
  if (wantsPageMkwrite(vma)) {
    doPageMkwrite(vmf, folio);
    const tmp = finishMkwriteFault(vmf);
    if (tmp & (VM_FAULT_ERROR | VM_FAULT_NOPAGE)) {
      folioPut(m, folio);
      return tmp;
    }
  } else {
    wpPageReuse(vmf);
  }
  folioMarkDirty(m, folio); // fault_dirty_shared_page
  folioPut(m, folio);
  return 0;
}

/**
 * finish_mkwrite_fault(vmf): after ->page_mkwrite prepared the page, make the shared mapping's pte
 * writable — unless it changed meanwhile. As the seed's kernel-doc gives it: VM_FAULT_WRITE on
 * success, 0 when the pte changed (Linux ≥ 6.1 returns 0 and VM_FAULT_NOPAGE instead).
 */
export function finishMkwriteFault(vmf: VmFault): number {
  const vma = vmf.vma;
  const m = vma.vmMm.machine;
  if ((vma.vmFlags & VM_SHARED) === 0) throw new KernelAssertionError('finish_mkwrite_fault', `WARN_ON_ONCE(!(vma->vm_flags & VM_SHARED)): ${vma}`);
  const ptep = pteOffsetMap(vma.vmMm, vmf.pmd, vmf.address);
  if (ptep < 0) return 0;
  if (m.pgtable.val(ptep) !== vmf.origPte) return 0;
  vmf.pte = ptep;
  wpPageReuse(vmf);
  return VM_FAULT_WRITE;
}

/**
 * wp_page_copy: copy the page (or start from zeros for the zero page) into a new exclusive
 * anonymous page, replace the pte with a flush, and drop the old page's mapping and the reference
 * do_wp_page took.
 */
function wpPageCopy(vmf: VmFault, oldFolio: number): number {
  const vma = vmf.vma;
  const mm = vma.vmMm;
  const m = mm.machine;
  const pt = m.pgtable;
  const b = m.bits;
  anonVmaPrepare(vma);
  const isZero = m.isZeroPfn(b.leafPfn('pte', Number(vmf.origPte & 0xffffffffn), Number(vmf.origPte >> 32n)));
  const page = folioAlloc(m, 0, isZero);
  if (page < 0) {
    if (oldFolio >= 0) folioPut(m, oldFolio);
    return VM_FAULT_OOM;
  }
  if (!isZero) {
    const src = b.leafPfn('pte', Number(vmf.origPte & 0xffffffffn), Number(vmf.origPte >> 32n)) * pt.PAGE_SIZE;
    if (m.mem.contains(src, pt.PAGE_SIZE)) copyPage(m, page, src);
  }
  m.meta.setFlag(page, PG_uptodate);
  if (pt.val(vmf.pte) !== vmf.origPte) {
    folioPut(m, page);
    if (oldFolio >= 0) folioPut(m, oldFolio);
    return 0;
  }
  if (oldFolio >= 0) {
    if (!folioTestAnon(m, oldFolio)) {
      addMmCounter(mm, mmCounter(m, oldFolio), -1);
      addMmCounter(mm, MM_ANONPAGES, 1);
    }
  } else {
    addMmCounter(mm, MM_ANONPAGES, 1);
  }
  let entry = b.pfnPte(page / pt.PAGE_SIZE, vma.vmPageProt);
  if (vmf.flags & FAULT_FLAG_UNSHARE) entry = b.pteModify(entry, { write: false });
  else entry = maybeMkwrite(vma, b.pteModify(entry, { dirty: true }));
  pt.clear(vmf.pte); // ptep_clear_flush
  flushTlbRange(mm, vmf.address, vmf.address + pt.PAGE_SIZE);
  folioAddNewAnonRmap(m, page, vma, vmf.address);
  pt.set(vmf.pte, entry);
  if (oldFolio >= 0) {
    folioRemoveRmapPtes(m, vmf.page, 1);
    folioPut(m, oldFolio); // the old mapping's reference
    folioPut(m, oldFolio); // do_wp_page's
  }
  return 0;
}

// ---- swap entries ---------------------------------------------------------------------------------------

/**
 * do_swap_page: a non-present pte. A migration entry waits (returns 0: the fault is retried once
 * the migration is done); a swap entry is read back — through the swap cache when other ptes still
 * refer to the slot — and mapped, writable at once when the page is certainly exclusive.
 */
function doSwapPage(vmf: VmFault): number {
  const vma = vmf.vma;
  const mm = vma.vmMm;
  const m = mm.machine;
  const pt = m.pgtable;
  const b = m.bits;
  const lo = pt.lo(vmf.pte);
  const hi = pt.hi(vmf.pte);
  const type = b.swapType(lo, hi);
  const offset = b.swapOffset(lo, hi);
  if (isNonSwapType(type)) {
    if (isMigrationType(type)) return 0; // migration_entry_wait
    if (type === SWP_HWPOISON) return VM_FAULT_HWPOISON;
    return VM_FAULT_SIGBUS;
  }
  const dev = swapDevice(m);
  if (!dev.has(offset)) return VM_FAULT_SIGBUS;
  let ret = 0;
  let folio = dev.cache.get(offset) ?? -1;
  let fromCache = folio >= 0;
  if (folio < 0) {
    folio = folioAlloc(m, 0, false);
    if (folio < 0) return VM_FAULT_OOM;
    const data = dev.data(offset);
    new Uint8Array(m.mem.buffer, m.mem.offset(folio, data.length), data.length).set(data);
    m.meta.setFlag(folio, PG_uptodate);
    ret |= VM_FAULT_MAJOR;
    if (dev.count(offset) > 1) {
      // Others still refer to the slot: the folio goes into the swap cache (its own reference).
      dev.cache.set(offset, folio);
      m.meta.setFlag(folio, PG_swapcache);
      folioGet(m, folio);
      fromCache = true;
    }
  } else {
    folioGet(m, folio);
  }
  const exclusive = !fromCache;
  dev.free(offset); // swap_free
  // should_try_to_free_swap: the last user of the slot takes the folio out of the swap cache.
  if (fromCache && dev.count(offset) === 0) {
    dev.cache.delete(offset);
    m.meta.clearFlag(folio, PG_swapcache);
    folioPut(m, folio);
    dev.release(offset);
  }
  addMmCounter(mm, MM_ANONPAGES, 1);
  addMmCounter(mm, MM_SWAPENTS, -1);
  let entry = b.pfnPte(folio / pt.PAGE_SIZE, vma.vmPageProt);
  const certain = exclusive || folioRefCount(m, folio) === 1;
  if (certain && (vma.vmFlags & VM_WRITE)) {
    entry = b.pteModify(entry, { write: true });
    if (isWrite(vmf)) {
      entry = b.pteModify(entry, { dirty: true });
      vmf.flags &= ~FAULT_FLAG_WRITE;
    }
  }
  if (!folioTestAnon(m, folio)) folioAddNewAnonRmap(m, folio, vma, vmf.address, 'pte', certain);
  else {
    folioAddRmapPtes(m, folio, 1);
    if (certain) m.meta.setFlag(folio, PG_anon_exclusive);
  }
  pt.set(vmf.pte, entry);
  if (isWrite(vmf)) {
    vmf.origPte = entry;
    ret |= doWpPage(vmf);
    if (ret & VM_FAULT_ERROR) ret &= VM_FAULT_ERROR;
  }
  return ret;
}

// ---- the arch side: access_error and do_user_addr_fault ----------------------------------------------

export type AccessType = 'read' | 'write' | 'exec';

/** What a user fault resolved to, as do_user_addr_fault would deliver it. */
export interface UserFaultResult {
  /** VM_FAULT_* bits from handle_mm_fault, or 0 when refused before it. */
  readonly fault: number;
  /** The signal the task would get: null when the fault was resolved. */
  readonly signal: null | 'SIGSEGV' | 'SIGBUS';
  /** SEGV_MAPERR (no VMA) / SEGV_ACCERR (VMA forbids the access). */
  readonly code?: 'SEGV_MAPERR' | 'SEGV_ACCERR' | 'BUS_ADRERR';
}

/**
 * access_error (arch/x86/mm/fault.c) / do_page_fault's vm_flags test (arch/arm64/mm/fault.c): may
 * the VMA be accessed this way? Writes need VM_WRITE, fetches VM_EXEC. A read needs any of
 * VM_READ|VM_WRITE|VM_EXEC on both: x86 tests vma_is_accessible(); arm64 builds the read's
 * vm_flags as VM_READ, plus VM_WRITE ("write implies read"), plus VM_EXEC without FEAT_EPAN
 * ("exec implies read" — mmulab's Linux side models no EPAN).
 * Departure: x86 does not test VM_EXEC on a not-present fetch (the page is mapped NX and the
 * retried fetch faults as a protection fault, SEGV_ACCERR); refusing it at once gives the same signal.
 */
export function accessError(vma: VmAreaStruct, access: AccessType): boolean {
  const f = vma.vmFlags;
  if (access === 'write') return (f & VM_WRITE) === 0;
  if (access === 'exec') return (f & VM_EXEC) === 0;
  return (f & (VM_READ | VM_WRITE | VM_EXEC)) === 0;
}

/**
 * do_user_addr_fault / do_page_fault for a user access at addr: find the VMA, check the access,
 * run handle_mm_fault under the mmap read lock (retaking it when the fault asks to retry).
 */
export function doUserAddrFault(mm: MmStruct, addr: number, access: AccessType): UserFaultResult {
  const lockedHere = !mm.mmapLock.isLocked;
  if (lockedHere) mm.mmapLock.downRead();
  try {
    const vma = mm.vmaLookup(addr);
    if (!vma) return { fault: 0, signal: 'SIGSEGV', code: 'SEGV_MAPERR' };
    if (accessError(vma, access)) return { fault: 0, signal: 'SIGSEGV', code: 'SEGV_ACCERR' };
    let flags = FAULT_FLAG_USER | FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE;
    if (access === 'write') flags |= FAULT_FLAG_WRITE;
    if (access === 'exec') flags |= FAULT_FLAG_INSTRUCTION;
    const fault = handleMmFault(vma, addr, flags);
    if (fault & VM_FAULT_OOM) return { fault, signal: 'SIGBUS' };
    if (fault & (VM_FAULT_SIGBUS | VM_FAULT_HWPOISON)) return { fault, signal: 'SIGBUS', code: 'BUS_ADRERR' };
    if (fault & VM_FAULT_SIGSEGV) return { fault, signal: 'SIGSEGV', code: 'SEGV_ACCERR' };
    return { fault, signal: null };
  } finally {
    if (lockedHere) mm.mmapLock.upRead();
  }
}
