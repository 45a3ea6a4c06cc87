/**
 * get_user_pages (mm/gup.c) reduced to what access_remote_vm needs, and access_remote_vm itself
 * (mm/memory.c __access_remote_vm): reading and writing another process's memory page by page,
 * faulting pages in, honouring the VMA's permissions — and, with FOLL_FORCE, writing into a
 * read-only private mapping through a copy-on-write copy, as ptrace's PTRACE_POKEDATA does.
 */
import { PG_anon_exclusive } from '../mem/framemeta';
import { EFAULT, ENOMEM } from './errno';
import { FAULT_FLAG_REMOTE, FAULT_FLAG_WRITE, handleMmFault } from './fault';
import { folioGet, folioMarkDirty, folioPut, folioTestAnon, pageFolio } from './folio';
import { isCowMapping, vmNormalPage, VM_FAULT_ERROR, VM_FAULT_HWPOISON, VM_FAULT_OOM } from './memory';
import { mmapReadLock, mmapReadUnlock, type MmStruct } from './mm';
import { lookupEntry } from './pt-lookup';
import { isVmHugetlbPage, type VmAreaStruct } from './vma';
import { VM_IO, VM_MAYREAD, VM_PFNMAP, VM_READ, VM_WRITE } from './vm-flags';

// gup_flags (include/linux/mm_types.h / mm.h FOLL_*)
export const FOLL_WRITE = 0x01;
export const FOLL_GET = 0x02;
export const FOLL_DUMP = 0x04;
export const FOLL_FORCE = 0x08;
export const FOLL_NOWAIT = 0x10;
export const FOLL_NOFAULT = 0x20;
export const FOLL_HWPOISON = 0x40;
export const FOLL_ANON = 0x80;
export const FOLL_LONGTERM = 0x100;
export const FOLL_SPLIT_PMD = 0x200;
export const FOLL_PCI_P2PDMA = 0x400;
export const FOLL_INTERRUPTIBLE = 0x800;
export const FOLL_HONOR_NUMA_FAULT = 0x1000;
export const FOLL_REMOTE = 0x2000;

/** check_vma_flags: may gup touch this VMA this way? 0 or -EFAULT. */
export function checkVmaFlags(vma: VmAreaStruct, gupFlags: number): number {
  const f = vma.vmFlags;
  const write = (gupFlags & FOLL_WRITE) !== 0;
  if (f & (VM_IO | VM_PFNMAP)) return -EFAULT;
  if ((gupFlags & FOLL_ANON) && !(vma.vmOps === null && vma.vmFile === null)) return -EFAULT;
  if (write) {
    if (!(f & VM_WRITE)) {
      if (!(gupFlags & FOLL_FORCE)) return -EFAULT;
      if (isVmHugetlbPage(vma)) return -EFAULT; // hugetlb does not support FOLL_FORCE|FOLL_WRITE
      if (!isCowMapping(f)) return -EFAULT; // force-writes only break COW, never write shared read-only pages
    }
  } else if (!(f & VM_READ)) {
    if (!(gupFlags & FOLL_FORCE)) return -EFAULT;
    if (!(f & VM_MAYREAD)) return -EFAULT;
  }
  return 0;
}

/**
 * can_follow_write_pte: a write through gup needs a writable pte — or, with FOLL_FORCE in a COW
 * mapping that is not writable, a pte that maps an exclusive anonymous page (the COW already
 * happened, so writing it cannot reach the file).
 */
function canFollowWrite(vma: VmAreaStruct, writable: boolean, page: number, gupFlags: number): boolean {
  if (writable) return true;
  if (!(gupFlags & FOLL_FORCE)) return false;
  if (!isCowMapping(vma.vmFlags)) return false;
  if (vma.vmFlags & VM_WRITE) return false;
  if (page < 0) return false;
  const m = vma.vmMm.machine;
  return folioTestAnon(m, pageFolio(m, page)) && m.meta.testFlag(page, PG_anon_exclusive);
}

/**
 * follow_page_mask: the page mapped at addr for this access, with a reference, or -1 when a fault
 * is needed first. The zero page is returned for reads of untouched anonymous memory.
 */
function followPage(vma: VmAreaStruct, addr: number, gupFlags: number): number {
  const mm = vma.vmMm;
  const m = mm.machine;
  const pt = m.pgtable;
  const r = lookupEntry(mm, addr);
  if (r.level === 'none') return -1;
  const lo = pt.lo(r.ptr);
  const hi = pt.hi(r.ptr);
  let present: boolean;
  if (r.level === 'pte') present = m.bits.ptePresent(lo, hi);
  else if (r.level === 'pmd') present = pt.pmdPresent(lo, hi);
  else present = pt.pudPresent(lo, hi);
  if (!present) return -1;
  const base = m.bits.leafPfn(r.level, lo, hi) * pt.PAGE_SIZE;
  const span = r.level === 'pte' ? pt.PAGE_SIZE : r.level === 'pmd' ? pt.PMD_SIZE : pt.PUD_SIZE;
  let page = base + (Math.floor(addr / pt.PAGE_SIZE) * pt.PAGE_SIZE) % span;
  if (r.level === 'pte') {
    const normal = vmNormalPage(vma, addr, lo, hi);
    if (normal < 0) {
      if (!m.isZeroPfn(base / pt.PAGE_SIZE)) return -1; // a raw pfn: no struct page to hand out
      page = base; // the zero page
    }
  }
  if ((gupFlags & FOLL_WRITE) && !canFollowWrite(vma, m.bits.pteWrite(lo, hi), page === m.zeroPagePa ? -1 : page, gupFlags)) return -1;
  if (!m.mem.contains(page, pt.PAGE_SIZE)) return -1;
  folioGet(m, pageFolio(m, page));
  return page;
}

/** get_user_page_vma_remote: one page of mm at addr (faulting it in), with a reference; a negative errno on failure. */
export function getUserPageVmaRemote(mm: MmStruct, addr: number, gupFlags: number): { page: number; vma: VmAreaStruct | null } {
  const vma = mm.vmaLookup(addr);
  if (!vma) return { page: -EFAULT, vma: null };
  const err = checkVmaFlags(vma, gupFlags | FOLL_REMOTE);
  if (err) return { page: err, vma };
  // Bounded: each fault makes progress; a migration entry that never resolves would loop for ever.
  for (let tries = 0; tries < 4; tries++) {
    const page = followPage(vma, addr, gupFlags);
    if (page >= 0) return { page, vma };
    let flags = FAULT_FLAG_REMOTE;
    if (gupFlags & FOLL_WRITE) flags |= FAULT_FLAG_WRITE;
    const ret = handleMmFault(vma, addr, flags);
    if (ret & VM_FAULT_OOM) return { page: -ENOMEM, vma };
    if (ret & (VM_FAULT_ERROR | VM_FAULT_HWPOISON)) return { page: -EFAULT, vma };
  }
  return { page: -EFAULT, vma };
}

/**
 * access_remote_vm(mm, addr, buf, len, gup_flags): copy len bytes between buf and mm's memory at
 * addr (a write with FOLL_WRITE), page by page. Returns the bytes transferred — fewer than len when
 * it reaches memory it may not access. The caller holds a reference on mm; the mmap read lock is
 * taken here.
 */
export function accessRemoteVm(mm: MmStruct, addr: number, buf: Uint8Array, len: number, gupFlags: number): number {
  const m = mm.machine;
  const ps = m.geo.PAGE_SIZE;
  const write = (gupFlags & FOLL_WRITE) !== 0;
  const u8 = new Uint8Array(m.mem.buffer);
  let done = 0;
  mmapReadLock(mm);
  try {
    while (done < len) {
      const { page } = getUserPageVmaRemote(mm, addr, gupFlags);
      if (page < 0) break; // (no vm_ops->access for IO mappings in mmulab)
      const offset = addr % ps;
      const bytes = Math.min(len - done, ps - offset);
      const at = m.mem.offset(page + offset, bytes);
      if (write) {
        u8.set(buf.subarray(done, done + bytes), at);
        folioMarkDirty(m, pageFolio(m, page)); // set_page_dirty_lock
      } else {
        buf.set(u8.subarray(at, at + bytes), done);
      }
      folioPut(m, pageFolio(m, page));
      done += bytes;
      addr += bytes;
    }
  } finally {
    mmapReadUnlock(mm);
  }
  return done;
}
