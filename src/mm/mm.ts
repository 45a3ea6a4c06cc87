/**
 * struct mm_struct: one address space — its root table, its VMAs, its mmap_lock.
 */
import { KernelAssertionError, RwSemaphore } from './locks';
import type { Machine } from './machine';
import { VmAreaStruct, type VmaInit } from './vma';

export class MmStruct {
  /** Physical address of the root table (x86-64: CR3's table; ARM64: the TTBR0 table, or TTBR1 for init_mm). */
  pgd: number;
  readonly mmapLock = new RwSemaphore('mmap_lock');
  /** Bumped when the mmap write lock is released: VMA write locks taken under it expire (vma_end_write_all). */
  mmLockSeq = 0;
  /** VMAs sorted by vm_start; they never overlap. */
  private readonly vmas: VmAreaStruct[] = [];
  /** page_table_lock, modelled for assertions. */
  readonly pageTableLock = new RwSemaphore('page_table_lock');

  /** mm->rss_stat: MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES (in pages). */
  readonly rss = [0, 0, 0, 0];
  /** mm->hugetlb_usage: hugetlb pages mapped (in PAGE_SIZE units; not part of rss, as in Linux). */
  hugetlbUsage = 0;
  /** mm->hiwater_rss. */
  hiwaterRss = 0;
  /** The mm holds a reference on the huge zero folio (MMF_HUGE_ZERO_PAGE). */
  hugeZeroRef = false;
  /** Deposited page tables for huge pmds (pgtable_trans_huge_deposit), by pmd entry address. */
  readonly depositedTables = new Map<number, number>();
  /** exit_mmap has run: the mm has no tables and no VMAs left. */
  exited = false;

  constructor(
    readonly machine: Machine,
    pgd: number,
    readonly name: string,
    /** mm->context.id: the ASID (ARM64) or PCID (x86-64) this address space runs with; 0 for init_mm. */
    readonly asid = 0,
  ) {
    this.pgd = pgd;
  }

  /** get_mm_rss: file + anon + shmem pages mapped. */
  get rssPages(): number {
    return this.rss[MM_FILEPAGES]! + this.rss[MM_ANONPAGES]! + this.rss[MM_SHMEMPAGES]!;
  }

  get isInitMm(): boolean {
    return this.machine.initMm === this;
  }

  get mapCount(): number {
    return this.vmas.length;
  }

  /** The VMAs in address order (read-only view). */
  get vmaList(): readonly VmAreaStruct[] {
    return this.vmas;
  }

  /** find_vma(mm, addr): the first VMA with addr < vm_end, or null. O(log n). */
  findVma(addr: number): VmAreaStruct | null {
    const v = this.vmas;
    let lo = 0;
    let hi = v.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (v[mid]!.vmEnd <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo < v.length ? v[lo]! : null;
  }

  /** The VMA containing addr, or null (vma_lookup). */
  vmaLookup(addr: number): VmAreaStruct | null {
    const vma = this.findVma(addr);
    return vma && vma.vmStart <= addr ? vma : null;
  }

  /** Insert a new VMA (vma_link): page-aligned, non-empty, not overlapping another. */
  insertVma(init: VmaInit): VmAreaStruct {
    const pageSize = this.machine.pgtable.PAGE_SIZE;
    const { start, end } = init;
    if (!(start < end) || start % pageSize !== 0 || end % pageSize !== 0) {
      throw new RangeError(
        `vma [0x${start.toString(16)}, 0x${end.toString(16)}): expected page-aligned start < end (PAGE_SIZE ${pageSize})`,
      );
    }
    const next = this.findVma(start);
    if (next && next.vmStart < end) {
      throw new RangeError(`vma [0x${start.toString(16)}, 0x${end.toString(16)}) overlaps ${next}`);
    }
    const vma = new VmAreaStruct(this, init);
    const i = next ? this.vmas.indexOf(next) : this.vmas.length;
    this.vmas.splice(i, 0, vma);
    vma.vmFile?.insert(vma);
    return vma;
  }

  /** Detach a VMA from the mm (and from its file's i_mmap). */
  removeVma(vma: VmAreaStruct): void {
    const i = this.vmas.indexOf(vma);
    if (i < 0) throw new RangeError(`${vma} is not in ${this.name}`);
    this.vmas.splice(i, 1);
    vma.vmFile?.remove(vma);
  }
}

export const MM_FILEPAGES = 0;
export const MM_ANONPAGES = 1;
export const MM_SWAPENTS = 2;
export const MM_SHMEMPAGES = 3;

/** add_mm_counter. */
export function addMmCounter(mm: MmStruct, member: number, value: number): void {
  mm.rss[member] = mm.rss[member]! + value;
  if (member !== MM_SWAPENTS && mm.rssPages > mm.hiwaterRss) mm.hiwaterRss = mm.rssPages;
}

export function mmapReadLock(mm: MmStruct): void {
  mm.mmapLock.downRead();
}
export function mmapReadUnlock(mm: MmStruct): void {
  mm.mmapLock.upRead();
}
export function mmapWriteLock(mm: MmStruct): void {
  mm.mmapLock.downWrite();
}
export function mmapWriteUnlock(mm: MmStruct): void {
  mm.mmapLock.upWrite();
  mm.mmLockSeq++; // vma_end_write_all(): every VMA write lock ends with the mmap write lock
}

/** mmap_assert_locked(mm): held for read or write. */
export function mmapAssertLocked(mm: MmStruct): void {
  if (!mm.mmapLock.isLocked) throw new KernelAssertionError('mmap_assert_locked', `${mm.name}: mmap_lock is not held`);
}

/** mmap_assert_write_locked(mm). */
export function mmapAssertWriteLocked(mm: MmStruct): void {
  if (!mm.mmapLock.isWriteLocked) {
    throw new KernelAssertionError('mmap_assert_write_locked', `${mm.name}: mmap_lock is not held for write`);
  }
}
