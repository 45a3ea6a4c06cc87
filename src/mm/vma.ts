/**
 * struct vm_area_struct: a range of one address space with the same flags and backing.
 */
import type { AddressSpace } from './address-space';
import { KernelAssertionError } from './locks';
import type { MmStruct } from './mm';
import type { AnonVma } from './rmap';
import { VM_HUGETLB } from './vm-flags';

/** What splitting a huge entry of this VMA leaves (see split.ts). */
export type SplitPolicy = 'table' | 'zap';

export interface VmaInit {
  readonly start: number;
  readonly end: number;
  readonly flags: number;
  readonly pgoff?: number;
  readonly file?: AddressSpace | null;
  /** hugetlb VMAs: the huge page size (huge_page_size(hstate_vma(vma))). */
  readonly hugepageSize?: number | null;
  /** Override what split_huge_pmd/pud leave (default: Linux's rule, see split.ts). */
  readonly split?: SplitPolicy | null;
  /** A name for traces and dumps (the scenario's VMA id, "[heap]", a file path). */
  readonly name?: string;
}

export class VmAreaStruct {
  vmStart: number;
  vmEnd: number;
  vmFlags: number;
  /** Offset in the file, in PAGE_SIZE units. */
  vmPgoff: number;
  vmFile: AddressSpace | null;
  readonly vmMm: MmStruct;
  hugepageSize: number | null;
  split: SplitPolicy | null;
  name: string;
  /** Per-VMA lock (CONFIG_PER_VMA_LOCK): write-locked while vmLockSeq equals mm.mmLockSeq. */
  vmLockSeq = -1;
  /** Readers holding the per-VMA lock (lock_vma_under_rcu). */
  vmReadLocks = 0;
  /** vma->anon_vma: the anon_vma of this VMA's own anonymous pages (null until the first). */
  anonVma: AnonVma | null = null;
  /** vma->anon_vma_chain: every anon_vma this VMA is linked to (its own and its ancestors'). */
  readonly anonVmaChain: AnonVma[] = [];
  /**
   * vma->vm_page_prot: the pgprot new ptes get (vm_get_page_prot of the flags, write-protected for
   * private writable mappings and for shared ones that want write notification). Set by the code
   * that creates the VMA (mmap), kept in step by mprotect; 0n until then.
   */
  vmPageProt = 0n;
  /**
   * vma->vm_ops: null for anonymous memory (vma_is_anonymous); 'file' for page-cache backed VMAs
   * (filemap_fault / shmem_fault); 'device' for driver mappings (remap_pfn_range, vm_insert_page),
   * which have vm_ops but no fault handler here.
   */
  vmOps: 'file' | 'device' | null = null;

  constructor(mm: MmStruct, init: VmaInit) {
    this.vmMm = mm;
    this.vmStart = init.start;
    this.vmEnd = init.end;
    this.vmFlags = init.flags >>> 0;
    this.vmPgoff = init.pgoff ?? 0;
    if (!Number.isSafeInteger(this.vmPgoff) || this.vmPgoff < 0) {
      throw new RangeError(`vma pgoff ${this.vmPgoff}: expected a page offset in 0 … 2^53 - 1 (exact as a number)`);
    }
    this.vmFile = init.file ?? null;
    if (this.vmFile) this.vmOps = 'file';
    this.hugepageSize = init.hugepageSize ?? null;
    this.split = init.split ?? null;
    this.name = init.name ?? '';
  }

  toString(): string {
    return `vma ${this.name ? this.name + ' ' : ''}[0x${this.vmStart.toString(16)}, 0x${this.vmEnd.toString(16)})`;
  }
}

/** vma_pages(vma): the VMA's length in pages. */
export function vmaPages(vma: VmAreaStruct): number {
  return (vma.vmEnd - vma.vmStart) / vma.vmMm.machine.pgtable.PAGE_SIZE;
}

/** is_vm_hugetlb_page(vma). */
export function isVmHugetlbPage(vma: VmAreaStruct): boolean {
  return (vma.vmFlags & VM_HUGETLB) !== 0;
}

/** vma_is_anonymous(vma): no vm_ops (no file, no driver) behind it. */
export function vmaIsAnonymous(vma: VmAreaStruct): boolean {
  return vma.vmOps === null && vma.vmFile === null;
}

/** vma_start_write(vma): take the per-VMA write lock; requires the mmap write lock. */
export function vmaStartWrite(vma: VmAreaStruct): void {
  const mm = vma.vmMm;
  if (!mm.mmapLock.isWriteLocked) {
    throw new KernelAssertionError('vma_start_write', `mmap_lock must be held for write to write-lock ${vma}`);
  }
  vma.vmLockSeq = mm.mmLockSeq;
}

/** vma_assert_write_locked(vma). */
export function vmaAssertWriteLocked(vma: VmAreaStruct): void {
  if (!(vma.vmMm.mmapLock.isWriteLocked && vma.vmLockSeq === vma.vmMm.mmLockSeq)) {
    throw new KernelAssertionError('vma_assert_write_locked', `${vma} is not write-locked`);
  }
}

/** vma_assert_locked(vma): read- or write-locked. */
export function vmaAssertLocked(vma: VmAreaStruct): void {
  const writeLocked = vma.vmMm.mmapLock.isWriteLocked && vma.vmLockSeq === vma.vmMm.mmLockSeq;
  if (vma.vmReadLocks === 0 && !writeLocked) {
    throw new KernelAssertionError('vma_assert_locked', `${vma} is not locked`);
  }
}
