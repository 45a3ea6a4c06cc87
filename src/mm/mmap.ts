/**
 * The process-level operations that build and tear down address spaces: mmap (mm/mmap.c do_mmap,
 * mm/vma.c mmap_region), munmap, mprotect (mm/mprotect.c), fork (kernel/fork.c dup_mmap) and exit
 * (exit_mmap), plus MAP_POPULATE (mm/gup.c populate_vma_page_range).
 *
 * Addresses are laid out as a non-randomised Linux process's are: top-down from mmap_base =
 * DEFAULT_MAP_WINDOW - 128 MiB (the minimum stack gap), anonymous mappings that are a multiple of
 * PMD_SIZE aligned to it (THP), hugetlb mappings to their huge page size.
 */
import { AddressSpace } from './address-space';
import { EACCES, EEXIST, EINVAL, ENOMEM, EOVERFLOW, EPERM } from './errno';
import { doUserAddrFault, putHugeZeroFolio } from './fault';
import { PG_anon_exclusive } from '../mem/framemeta';
import { folioPut, folioTestAnon, setFolioMapping } from './folio';
import { freePgtables } from './free-pgtables';
import { KernelAssertionError } from './locks';
import type { Machine } from './machine';
import { copyPageRange, unmapVmas, vmNormalPage } from './memory';
import { mmapAssertWriteLocked, mmapWriteLock, mmapWriteUnlock, type MmStruct } from './mm';
import { flushTlbMm, flushTlbRange, tlbFinishMmu, tlbGatherMmu, tlbGatherMmuFullmm } from './mmu-gather';
import { lookupEntry } from './pt-lookup';
import { anonVmaClone, unlinkAnonVmas } from './rmap';
import { splitHugePmd } from './huge-memory';
import { hugeLayout } from './hugetlb';
import { isMigrationType, SWP_MIGRATION_READ, SWP_MIGRATION_WRITE } from './swap';
import { vmaStartWrite, type VmAreaStruct, type VmaInit } from './vma';
import {
  VM_ACCOUNT,
  VM_DONTCOPY,
  VM_EXEC,
  VM_GROWSDOWN,
  VM_HUGETLB,
  VM_LOCKED,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_NORESERVE,
  VM_PFNMAP,
  VM_READ,
  VM_SHARED,
  VM_WIPEONFORK,
  VM_WRITE,
} from './vm-flags';

// ---- uapi (include/uapi/asm-generic/mman-common.h, mman.h; the same on x86-64 and ARM64) ----------
export const PROT_NONE = 0x0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_SHARED_VALIDATE = 0x03;
export const MAP_TYPE = 0x0f;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_GROWSDOWN = 0x0100;
export const MAP_LOCKED = 0x2000;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MAP_NONBLOCK = 0x10000;
export const MAP_STACK = 0x20000;
export const MAP_HUGETLB = 0x40000;
export const MAP_FIXED_NOREPLACE = 0x100000;
export const MAP_HUGE_SHIFT = 26;
export const MAP_HUGE_MASK = 0x3f;

/** The lowest address mmap hands out (vm.mmap_min_addr default 65536). */
export const MMAP_MIN_ADDR = 65536;
const SIZE_128M = 128 * 2 ** 20;

function pageSize(mm: MmStruct): number {
  return mm.machine.geo.PAGE_SIZE;
}

/** DEFAULT_MAP_WINDOW: x86-64 stays below 47 bits and ARM64 below 48 without a hint above. */
export function defaultMapWindow(m: Machine): number {
  const g = m.geo;
  if (g.arch === 'x86_64') return 2 ** 47 - 4096;
  return Math.min(g.TASK_SIZE, 2 ** 48);
}

/** mmap_base: the window top minus the stack gap (8 MiB rlimit + guard, clamped up to 128 MiB). */
export function mmapBase(m: Machine): number {
  const ps = m.geo.PAGE_SIZE;
  return Math.floor((defaultMapWindow(m) - SIZE_128M) / ps) * ps;
}

/** vm_get_page_prot(vm_flags): protection_map[] — shared writable mappings writable, private ones COW (read-only). */
export function vmGetPageProt(m: Machine, flags: number): bigint {
  const r = (flags & VM_READ) !== 0;
  const w = (flags & VM_WRITE) !== 0;
  const x = (flags & VM_EXEC) !== 0;
  if (!r && !w && !x) return m.bits.pgprot({ read: false, write: false, exec: false, user: true });
  return m.bits.pgprot({ read: r || w, write: w && (flags & VM_SHARED) !== 0, exec: x, user: true });
}

/**
 * vma_wants_writenotify: a shared writable mapping of a file with dirty accounting is mapped
 * read-only, so the first write to each clean page faults (page_mkwrite). shmem has none.
 */
export function vmaWantsWritenotify(vma: VmAreaStruct): boolean {
  if ((vma.vmFlags & (VM_SHARED | VM_WRITE)) !== (VM_SHARED | VM_WRITE)) return false;
  if (vma.vmFlags & VM_PFNMAP) return false;
  return vma.vmFile !== null && !vma.vmFile.shmem && vma.vmFile.hugepageSize === null;
}

/** vma_set_page_prot. */
export function vmaSetPageProt(vma: VmAreaStruct): void {
  const m = vma.vmMm.machine;
  let flags = vma.vmFlags;
  if (vmaWantsWritenotify(vma)) flags &= ~VM_SHARED; // write-protect: the private (COW) protection
  vma.vmPageProt = vmGetPageProt(m, flags);
}

/** A file for mmap: a regular file (page cache + backing store) of `size` bytes. */
export function createFile(m: Machine, name: string, size: number, opts: { shmem?: boolean; hugepageSize?: number } = {}): AddressSpace {
  const f = new AddressSpace(name, m.geo.PAGE_SIZE);
  f.size = size;
  f.shmem = opts.shmem ?? false;
  f.hugepageSize = opts.hugepageSize ?? null;
  return f;
}

// ---- get_unmapped_area ----------------------------------------------------------------------------

function rangeFree(mm: MmStruct, start: number, end: number): boolean {
  const v = mm.findVma(start);
  return !v || v.vmStart >= end;
}

/** vm_unmapped_area, top-down: the highest free [addr, addr + len) below high with addr ≡ 0 mod align. */
function unmappedAreaTopdown(mm: MmStruct, len: number, align: number, low: number, high: number): number {
  const list = mm.vmaList;
  let gapEnd = high;
  for (let i = list.length - 1; i >= -1; i--) {
    const vma = i >= 0 ? list[i]! : null;
    const gapStart = vma ? vma.vmEnd : low;
    if (vma && vma.vmEnd >= high) {
      gapEnd = Math.min(gapEnd, vma.vmStart);
      continue;
    }
    const top = Math.min(gapEnd, high);
    const addr = Math.floor((top - len) / align) * align;
    if (top - len >= gapStart && addr >= gapStart && addr >= low) return addr;
    if (vma) gapEnd = vma.vmStart;
  }
  return -ENOMEM;
}

/** __get_unmapped_area: a hint if free, else top-down from mmap_base. */
export function getUnmappedArea(mm: MmStruct, addr: number, len: number, align: number): number {
  const m = mm.machine;
  const window = defaultMapWindow(m);
  const taskSize = addr + len > window ? m.TASK_SIZE : window;
  if (len > taskSize) return -ENOMEM;
  if (addr) {
    addr = Math.ceil(addr / align) * align;
    if (addr >= MMAP_MIN_ADDR && addr + len <= taskSize && rangeFree(mm, addr, addr + len)) return addr;
  }
  return unmappedAreaTopdown(mm, len, align, MMAP_MIN_ADDR, mmapBase(m));
}

// ---- mmap --------------------------------------------------------------------------------------------

export interface MmapOptions {
  /** The file to map (null / absent for MAP_ANONYMOUS). */
  readonly file?: AddressSpace | null;
  /** Byte offset in the file (page aligned). */
  readonly offset?: number;
  /** A name for dumps ("[heap]", "libc.so"). */
  readonly name?: string;
}

/** calc_vm_prot_bits. */
function calcVmProtBits(prot: number): number {
  return ((prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0) | (prot & PROT_EXEC ? VM_EXEC : 0)) >>> 0;
}

/** The huge page size MAP_HUGETLB asks for: log2 in bits 26..31, 0 for the default (PMD_SIZE). */
function hugetlbSizeOf(m: Machine, flags: number): number {
  const log = (flags >>> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
  return log === 0 ? m.geo.PMD_SIZE : 2 ** log;
}

/**
 * do_mmap(mm, addr, len, prot, flags, file, offset): create a mapping; returns its address or a
 * negative errno. Requires the mmap write lock. MAP_POPULATE is vm_mmap's job (see vmMmap).
 */
export function doMmap(mm: MmStruct, addr: number, len: number, prot: number, flags: number, opts: MmapOptions = {}): number {
  mmapAssertWriteLocked(mm);
  const m = mm.machine;
  const ps = pageSize(mm);
  if (!Number.isSafeInteger(len) || len <= 0) return -EINVAL;
  const type = flags & MAP_TYPE;
  if (type !== MAP_SHARED && type !== MAP_PRIVATE && type !== MAP_SHARED_VALIDATE) return -EINVAL;
  const shared = type !== MAP_PRIVATE;
  const anon = (flags & MAP_ANONYMOUS) !== 0;
  let file = anon ? null : (opts.file ?? null);
  if (!anon && file === null) return -EINVAL; // EBADF in Linux: no file to map
  const offset = opts.offset ?? 0;
  if (offset % ps !== 0 || offset < 0) return -EINVAL;
  let hugeSize = 0;
  if (flags & MAP_HUGETLB) {
    if (!anon) return -EINVAL;
    hugeSize = hugetlbSizeOf(m, flags);
    try {
      hugeLayout(mm, hugeSize);
    } catch {
      return -EINVAL;
    }
  } else if (file?.hugepageSize) {
    hugeSize = file.hugepageSize;
  }
  const unit = hugeSize || ps;
  len = Math.ceil(len / unit) * unit;
  if (len > m.TASK_SIZE) return -ENOMEM;
  let pgoff = offset / ps;
  if (pgoff + len / ps > Number.MAX_SAFE_INTEGER) return -EOVERFLOW;

  let vmFlags = calcVmProtBits(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  if (flags & MAP_LOCKED) vmFlags |= VM_LOCKED;
  if (flags & MAP_GROWSDOWN) vmFlags |= VM_GROWSDOWN;
  if (flags & MAP_NORESERVE) vmFlags |= VM_NORESERVE;
  if (shared) vmFlags |= VM_SHARED | VM_MAYSHARE;
  if (hugeSize) vmFlags |= VM_HUGETLB;
  vmFlags >>>= 0;

  // Where: MAP_FIXED takes addr as it is; otherwise a hint, aligned for THP / hugetlb.
  if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
    // __get_unmapped_area (mm/mmap.c), in its order: hugetlb's own alignment check first
    // (hugetlb_get_unmapped_area → prepare_hugepage_range), then the range must fit below TASK_SIZE
    // (-ENOMEM: a non-canonical or kernel address, or a negative number read as unsigned), then be
    // page aligned (-EINVAL), then security_mmap_addr: below mmap_min_addr needs CAP_SYS_RAWIO
    // (cap_mmap_addr: -EPERM; the model's processes are unprivileged).
    if (hugeSize && addr % unit !== 0) return -EINVAL;
    if (addr < 0 || addr + len > m.TASK_SIZE) return -ENOMEM;
    if (addr % unit !== 0) return -EINVAL;
    if (addr < MMAP_MIN_ADDR) return -EPERM;
    if ((flags & MAP_FIXED_NOREPLACE) && !rangeFree(mm, addr, addr + len)) return -EEXIST;
  } else {
    let align = unit;
    if (anon && !shared && !hugeSize && !addr && len % m.geo.PMD_SIZE === 0) align = m.geo.PMD_SIZE; // thp_get_unmapped_area
    addr = getUnmappedArea(mm, addr, len, align);
    if (addr < 0) return addr;
  }

  // mmap_region: whatever MAP_FIXED covers goes first.
  if (!rangeFree(mm, addr, addr + len)) {
    const err = doMunmapLocked(mm, addr, len);
    if (err) return err;
  }
  if (anon && shared) {
    // shmem_zero_setup: MAP_SHARED|MAP_ANONYMOUS is a shmem file of the mapping's size.
    file = createFile(m, hugeSize ? 'anon_hugepage' : '/dev/zero (deleted)', len, { shmem: true, hugepageSize: hugeSize || undefined });
    unlinkedFiles.add(file);
    pgoff = 0;
  } else if (anon && hugeSize) {
    pgoff = 0;
  } else if (anon) {
    pgoff = addr / ps; // a private anonymous VMA's pgoff is its linear page index
  }
  if (!shared && (vmFlags & VM_WRITE) && !(vmFlags & VM_NORESERVE)) vmFlags = (vmFlags | VM_ACCOUNT) >>> 0;

  const init: VmaInit = { start: addr, end: addr + len, flags: vmFlags, pgoff, file, hugepageSize: hugeSize || null, name: opts.name ?? '' };
  const merged = tryMergeNew(mm, init);
  if (merged) return addr;
  const vma = mm.insertVma(init);
  if (file) vma.vmOps = 'file';
  vmaSetPageProt(vma);
  return addr;
}

/** Can a new range [start, end) with these properties extend prev / next (vma_merge_new_range)? */
function compatible(a: VmAreaStruct, init: VmaInit): boolean {
  return a.vmFlags === init.flags && a.vmFile === (init.file ?? null) && a.vmOps === (init.file ? 'file' : null) && a.hugepageSize === (init.hugepageSize ?? null) && (a.vmFlags & VM_PFNMAP) === 0;
}

function tryMergeNew(mm: MmStruct, init: VmaInit): boolean {
  const ps = pageSize(mm);
  const list = mm.vmaList;
  const next = list.find((v) => v.vmStart === init.end) ?? null;
  const prev = [...list].reverse().find((v) => v.vmEnd === init.start) ?? null;
  const pgoff = init.pgoff ?? 0;
  const canPrev = prev !== null && compatible(prev, init) && prev.vmPgoff + (prev.vmEnd - prev.vmStart) / ps === pgoff;
  const canNext = next !== null && compatible(next, init) && pgoff + (init.end - init.start) / ps === next.vmPgoff;
  if (canPrev && canNext && prev!.anonVma && next!.anonVma && prev!.anonVma !== next!.anonVma) {
    // Both have anonymous pages of different anon_vmas: only one side may merge.
    prev!.vmEnd = init.end;
    return true;
  }
  if (canPrev) {
    prev!.vmEnd = canNext ? next!.vmEnd : init.end;
    if (canNext) {
      if (!prev!.anonVma && next!.anonVma) anonVmaClone(prev!, next!);
      detachVma(mm, next!);
    }
    return true;
  }
  if (canNext) {
    // vma_prepare / vma_complete: a VMA whose vm_pgoff changes leaves the file's i_mmap and comes
    // back in, since the interval tree is ordered by it (rmap walks would otherwise miss it).
    next!.vmFile?.remove(next!);
    next!.vmStart = init.start;
    next!.vmPgoff = pgoff;
    next!.vmFile?.insert(next!);
    return true;
  }
  return false;
}

/**
 * Files with no name and no open descriptor: the shmem files shmem_zero_setup creates for
 * MAP_SHARED|MAP_ANONYMOUS. Only their VMAs hold them (vma->vm_file); createFile's files stand for
 * files the caller keeps open, whose page cache outlives every mapping.
 */
const unlinkedFiles = new WeakSet<AddressSpace>();

/**
 * remove_vma's fput(vma->vm_file): when the last VMA of an unlinked shmem file goes, the file is
 * released and shmem_evict_inode truncates its page cache — each folio loses the cache's
 * reference (it is freed now, or after the mmu_gather flush that still holds it).
 */
function fputVmaFile(m: Machine, file: AddressSpace | null): void {
  if (file === null || !unlinkedFiles.has(file) || file.mappings.length > 0) return;
  for (const [index, folio] of file.pages) {
    file.pages.delete(index);
    setFolioMapping(m, folio, null, 0);
    folioPut(m, folio);
  }
}

function detachVma(mm: MmStruct, vma: VmAreaStruct): void {
  mm.removeVma(vma);
  unlinkAnonVmas(vma);
  fputVmaFile(mm.machine, vma.vmFile);
}

/**
 * vm_mmap_pgoff: take the mmap write lock, do_mmap, and populate the range for MAP_POPULATE (and
 * VM_LOCKED) after dropping it, as mm_populate does.
 */
export function vmMmap(mm: MmStruct, addr: number, len: number, prot: number, flags: number, opts: MmapOptions = {}): number {
  mmapWriteLock(mm);
  let ret: number;
  try {
    ret = doMmap(mm, addr, len, prot, flags, opts);
  } finally {
    mmapWriteUnlock(mm);
  }
  if (ret >= 0 && (flags & (MAP_POPULATE | MAP_LOCKED)) && !(flags & MAP_NONBLOCK)) mmPopulate(mm, ret, Math.ceil(len / pageSize(mm)) * pageSize(mm));
  return ret;
}

/**
 * mm_populate / populate_vma_page_range: fault every page of [start, start + len) in — with write
 * faults in private writable mappings (to break COW), read faults elsewhere. PROT_NONE VMAs are skipped.
 */
export function mmPopulate(mm: MmStruct, start: number, len: number): void {
  const ps = pageSize(mm);
  for (let addr = start; addr < start + len; ) {
    const vma = mm.vmaLookup(addr);
    if (!vma) {
      addr += ps;
      continue;
    }
    const step = vma.hugepageSize ?? ps;
    if ((vma.vmFlags & (VM_READ | VM_WRITE | VM_EXEC)) === 0 || (vma.vmFlags & VM_PFNMAP)) {
      addr = vma.vmEnd;
      continue;
    }
    const write = (vma.vmFlags & (VM_WRITE | VM_SHARED)) === VM_WRITE;
    doUserAddrFault(mm, addr, write ? 'write' : 'read');
    addr += step;
  }
}

// ---- munmap ---------------------------------------------------------------------------------------------

/** __split_vma: vma becomes [vmStart, at) and a new VMA [at, vmEnd) is returned. */
export function splitVma(mm: MmStruct, vma: VmAreaStruct, at: number): VmAreaStruct {
  const ps = pageSize(mm);
  if (vma.hugepageSize && at % vma.hugepageSize !== 0) throw new RangeError(`split of ${vma} at 0x${at.toString(16)}: not huge page aligned`);
  const init: VmaInit = {
    start: at,
    end: vma.vmEnd,
    flags: vma.vmFlags,
    pgoff: vma.vmPgoff + (at - vma.vmStart) / ps,
    file: vma.vmFile,
    hugepageSize: vma.hugepageSize,
    split: vma.split,
    name: vma.name,
  };
  // A huge pmd straddling the split point is split first (vma_adjust_trans_huge).
  if (!vma.hugepageSize && at % mm.machine.geo.PMD_SIZE !== 0) {
    const r = lookupEntry(mm, at);
    if (r.level === 'pmd') splitHugePmd(vma, r.ptr, at);
  }
  vma.vmEnd = at;
  const tail = mm.insertVma(init);
  tail.vmOps = vma.vmOps;
  tail.vmPageProt = vma.vmPageProt;
  anonVmaClone(tail, vma);
  return tail;
}

/** do_vmi_munmap with the mmap write lock held: 0 or -EINVAL. */
function doMunmapLocked(mm: MmStruct, start: number, len: number): number {
  const ps = pageSize(mm);
  // do_vmi_munmap: offset_in_page(start) || start > TASK_SIZE || len > TASK_SIZE - start. A negative
  // or fractional number is no unsigned long: as the kernel would read it, above TASK_SIZE.
  if (!Number.isInteger(start) || start < 0 || start % ps !== 0 || start > mm.machine.TASK_SIZE || len > mm.machine.TASK_SIZE - start) return -EINVAL;
  len = Math.ceil(len / ps) * ps;
  if (len === 0) return -EINVAL;
  const end = start + len;
  let vma = mm.findVma(start);
  if (!vma || vma.vmStart >= end) return 0;
  // Hugetlb VMAs can only be cut at huge page boundaries.
  for (const v of mm.vmaList) {
    if (v.vmEnd <= start || v.vmStart >= end || !v.hugepageSize) continue;
    if ((v.vmStart < start && start % v.hugepageSize) || (v.vmEnd > end && end % v.hugepageSize)) return -EINVAL;
  }
  if (vma.vmStart < start) {
    vma = splitVma(mm, vma, start);
  }
  const last = [...mm.vmaList].reverse().find((v) => v.vmStart < end)!;
  if (last.vmEnd > end) splitVma(mm, last, end);
  const doomed = mm.vmaList.filter((v) => v.vmStart >= start && v.vmEnd <= end);
  for (const v of doomed) vmaStartWrite(v);
  // unmap_region: zap, free the tables no remaining VMA needs, flush, then free pages and tables.
  const tlb = tlbGatherMmu(mm);
  unmapVmas(tlb, doomed, start, end);
  for (const v of doomed) detachVma(mm, v);
  freePgtables(mm, doomed[0]!.vmStart, doomed[doomed.length - 1]!.vmEnd, tlb);
  tlbFinishMmu(tlb);
  return 0;
}

/** munmap(addr, len): 0 or a negative errno. */
export function doMunmap(mm: MmStruct, start: number, len: number): number {
  mmapWriteLock(mm);
  try {
    return doMunmapLocked(mm, start, len);
  } finally {
    mmapWriteUnlock(mm);
  }
}

// ---- mprotect -------------------------------------------------------------------------------------------

/**
 * can_change_pte_writable: mprotect may map a pte writable at once when no fault would be needed —
 * an exclusive anonymous page in a private mapping, a dirty pte in a shared one.
 */
function canChangePteWritable(vma: VmAreaStruct, addr: number, lo: number, hi: number): boolean {
  const m = vma.vmMm.machine;
  if ((vma.vmFlags & VM_WRITE) === 0) return false;
  if ((vma.vmFlags & VM_SHARED) === 0) {
    const page = vmNormalPage(vma, addr, lo, hi);
    return page >= 0 && folioTestAnon(m, m.meta.headOf(page)) && m.meta.testFlag(page, PG_anon_exclusive);
  }
  return m.bits.pteDirty(lo, hi);
}

/** change_protection over [start, end) of one VMA; returns the pages changed. */
function changeProtection(vma: VmAreaStruct, start: number, end: number): number {
  const mm = vma.vmMm;
  const m = mm.machine;
  const pt = m.pgtable;
  const b = m.bits;
  const ps = pt.PAGE_SIZE;
  // vma_wants_manual_pte_write_upgrade: shared mappings that write-notify upgrade dirty ptes by
  // hand (the others get write from vm_page_prot already); private ones exclusive anon pages.
  const tryWritable = (vma.vmFlags & VM_SHARED) ? vmaWantsWritenotify(vma) : (vma.vmFlags & VM_WRITE) !== 0;
  let pages = 0;
  for (let addr = start; addr < end; ) {
    const r = lookupEntry(mm, addr);
    if (r.level === 'none') {
      addr = Math.min(end, Math.floor(addr / pt.PMD_SIZE) * pt.PMD_SIZE + pt.PMD_SIZE);
      continue;
    }
    if (r.level === 'pud' || r.level === 'pmd') {
      const size = r.level === 'pud' ? pt.PUD_SIZE : pt.PMD_SIZE;
      const base = Math.floor(addr / size) * size;
      const lo = pt.lo(r.ptr);
      const hi = pt.hi(r.ptr);
      const present = r.level === 'pmd' ? pt.pmdPresent(lo, hi) : pt.pudPresent(lo, hi);
      if (base < start || base + size > end) {
        if (r.level === 'pmd') {
          splitHugePmd(vma, r.ptr, addr);
          continue;
        }
      }
      if (present) {
        // change_huge_pmd: the protection of the leaf (pmd_modify keeps the huge bit).
        let v = b.pteModifyProt(pt.val(r.ptr), hugeProt(vma, r.level));
        if (tryWritable && !b.pteWrite(Number(v & 0xffffffffn), Number(v >> 32n)) && canChangePteWritable(vma, addr, Number(v & 0xffffffffn), Number(v >> 32n))) {
          v = b.pteModify(v, { write: true });
        }
        pt.set(r.ptr, v);
        pages += size / ps;
      }
      addr = base + size;
      continue;
    }
    const pmdEnd = Math.min(end, Math.floor(addr / pt.PMD_SIZE) * pt.PMD_SIZE + pt.PMD_SIZE);
    for (let pte = r.ptr; addr < pmdEnd; addr += ps, pte += 8) {
      const lo = pt.lo(pte);
      const hi = pt.hi(pte);
      if (b.pteNone(lo, hi)) continue;
      if (b.ptePresent(lo, hi)) {
        let v = b.pteModifyProt(pt.val(pte), vma.vmPageProt);
        const nlo = Number(v & 0xffffffffn);
        const nhi = Number(v >> 32n);
        if (tryWritable && !b.pteWrite(nlo, nhi) && canChangePteWritable(vma, addr, nlo, nhi)) v = b.pteModify(v, { write: true });
        pt.set(pte, v);
        pages++;
      } else if (isMigrationType(b.swapType(lo, hi)) && (vma.vmFlags & VM_WRITE) === 0) {
        // A writable migration entry becomes a readable one when write permission goes.
        const type = b.swapType(lo, hi);
        if (type === SWP_MIGRATION_WRITE) pt.set(pte, b.mkSwapPte(SWP_MIGRATION_READ, b.swapOffset(lo, hi)));
      }
    }
  }
  return pages;
}

function hugeProt(vma: VmAreaStruct, level: 'pmd' | 'pud'): bigint {
  const m = vma.vmMm.machine;
  // The huge leaf's protection bits: those of a huge entry built with vm_page_prot, without its frame.
  const probe = m.bits.pfnHuge(level, 0, vma.vmPageProt);
  return probe;
}

/**
 * mprotect(start, len, prot): 0 or a negative errno — -EINVAL for an unaligned start or unknown
 * prot bits, -ENOMEM when part of the range is unmapped, -EACCES when a VMA may not get the
 * permission (VM_MAY* missing). Splits VMAs at the range ends, updates every pte and flushes.
 * On an error the VMAs before the hole or refused VMA keep their new protection (mm/mprotect.c
 * do_mprotect_pkey breaks out of its per-VMA loop; nothing is undone).
 */
export function doMprotect(mm: MmStruct, start: number, len: number, prot: number): number {
  const ps = pageSize(mm);
  if (start % ps !== 0) return -EINVAL;
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) return -EINVAL;
  if (!len) return 0;
  len = Math.ceil(len / ps) * ps;
  const end = start + len;
  if (end <= start) return -ENOMEM;
  mmapWriteLock(mm);
  try {
    const newBits = calcVmProtBits(prot);
    // do_mprotect_pkey goes VMA by VMA and stops at the first hole (-ENOMEM) or refused VMA
    // (-EACCES, -EINVAL); the VMAs before it keep their new protection, as in Linux.
    const touched = mm.vmaList.filter((v) => v.vmEnd > start && v.vmStart < end);
    let cursor = start;
    for (let v of touched) {
      if (v.vmStart > cursor) return -ENOMEM;
      const vEnd = v.vmEnd;
      const wanted = (v.vmFlags & ~(VM_READ | VM_WRITE | VM_EXEC)) | newBits;
      if ((wanted & ~(wanted >>> 4)) & (VM_READ | VM_WRITE | VM_EXEC)) return -EACCES;
      if (v.hugepageSize && ((v.vmStart < start && start % v.hugepageSize) || (v.vmEnd > end && end % v.hugepageSize))) return -EINVAL;
      cursor = vEnd;
      if (v.vmStart < start) v = splitVma(mm, v, start);
      if (v.vmEnd > end) splitVma(mm, v, end);
      vmaStartWrite(v);
      const old = v.vmFlags;
      let newFlags = ((old & ~(VM_READ | VM_WRITE | VM_EXEC)) | newBits) >>> 0;
      if ((newFlags & VM_WRITE) && !(old & (VM_ACCOUNT | VM_SHARED | VM_NORESERVE)) && !v.hugepageSize) newFlags = (newFlags | VM_ACCOUNT) >>> 0;
      v.vmFlags = newFlags;
      vmaSetPageProt(v);
      const pages = changeProtection(v, v.vmStart, v.vmEnd);
      if (pages) flushTlbRange(mm, v.vmStart, v.vmEnd);
    }
    return cursor < end ? -ENOMEM : 0;
  } finally {
    mmapWriteUnlock(mm);
  }
}

// ---- fork and exit -----------------------------------------------------------------------------------

/**
 * fork's dup_mmap: a new mm with a copy of every VMA (VM_DONTCOPY ones skipped, VM_WIPEONFORK ones
 * empty) and copy_page_range for each; the parent's TLB is flushed afterwards since its writable
 * private ptes became read-only. Returns the child, or throws RangeError on -ENOMEM (after
 * tearing the half-made child down).
 */
export function dupMm(parent: MmStruct, name = `${parent.name}-child`): MmStruct {
  const m = parent.machine;
  const child = m.newMm(name);
  mmapWriteLock(parent);
  try {
    for (const v of parent.vmaList) {
      if (v.vmFlags & VM_DONTCOPY) continue;
      const c = child.insertVma({
        start: v.vmStart,
        end: v.vmEnd,
        flags: (v.vmFlags & ~VM_LOCKED) >>> 0,
        pgoff: v.vmPgoff,
        file: v.vmFile,
        hugepageSize: v.hugepageSize,
        split: v.split,
        name: v.name,
      });
      c.vmOps = v.vmOps;
      c.vmPageProt = v.vmPageProt;
      if (v.vmFlags & VM_WIPEONFORK) continue; // the child starts with an empty anonymous range
      const err = copyPageRange(c, v);
      if (err) {
        mmapWriteUnlock(parent);
        exitMmap(child);
        throw new RangeError(`fork: copy_page_range failed with ${err} (out of memory)`);
      }
    }
    flushTlbMm(parent);
  } finally {
    if (parent.mmapLock.isWriteLocked) mmapWriteUnlock(parent);
  }
  return child;
}

/**
 * exit_mmap: unmap every VMA, free every page table and the root, release the huge zero folio.
 * Afterwards the mm holds nothing: all its frames are back in the allocator.
 */
export function exitMmap(mm: MmStruct): void {
  if (mm.exited) throw new KernelAssertionError('exit_mmap', `${mm.name} has already exited`);
  if (mm.isInitMm) throw new KernelAssertionError('exit_mmap', 'init_mm never exits');
  const m = mm.machine;
  mmapWriteLock(mm);
  try {
    const vmas = [...mm.vmaList];
    const tlb = tlbGatherMmuFullmm(mm);
    if (vmas.length) {
      for (const v of vmas) vmaStartWrite(v);
      unmapVmas(tlb, vmas, 0, 2 ** 64);
      for (const v of vmas) detachVma(mm, v);
      freePgtables(mm, vmas[0]!.vmStart, vmas[vmas.length - 1]!.vmEnd, tlb);
    }
    tlbFinishMmu(tlb);
    for (const [, table] of mm.depositedTables) m.freePgtable(table);
    mm.depositedTables.clear();
    putHugeZeroFolio(mm);
    m.freePgd(mm.pgd);
    mm.exited = true;
  } finally {
    mmapWriteUnlock(mm);
  }
}

