/**
 * struct address_space: a file's pages and the VMAs that map it (i_mmap), guarded by
 * i_mmap_rwsem.
 *
 * i_mmap is an interval index over page offsets [vm_pgoff, vm_pgoff + vma_pages - 1]. Linux keeps
 * it in an augmented rbtree keyed by vm_pgoff, equal keys inserted to the right; iteration is in
 * key order. Here: an array kept sorted by (pgoff, insertion order), with each query cut off at the
 * first VMA starting past the range — O(log n + k) for the scan start, k the VMAs before the cut.
 */
import { RwSemaphore } from './locks';
import type { VmAreaStruct } from './vma';
import { vmaPages } from './vma';

export class AddressSpace {
  readonly iMmapRwsem: RwSemaphore;
  private readonly iMmap: VmAreaStruct[] = [];
  /** The page cache: file page index → physical address of the folio holding it. */
  readonly pages = new Map<number, number>();
  /** The file's contents on its backing store, by page index (pages never written are zeros). */
  readonly backing = new Map<number, Uint8Array>();
  /** i_size in bytes. */
  size = 0;
  /**
   * shmem / tmpfs (and MAP_SHARED|MAP_ANONYMOUS, which Linux backs with a shmem file): swap-backed
   * pages, no writeback, no write notification. Otherwise a regular file with dirty accounting.
   */
  shmem = false;
  /** hugetlbfs: pages of this size, indexed in units of it. */
  hugepageSize: number | null = null;

  constructor(
    readonly name: string,
    /** PAGE_SIZE of the machine whose page cache this is. */
    readonly pageSize = 4096,
  ) {
    this.iMmapRwsem = new RwSemaphore(`${name}.i_mmap_rwsem`);
  }

  /** vma_interval_tree_insert: after every VMA with the same or a smaller pgoff. */
  insert(vma: VmAreaStruct): void {
    let lo = 0;
    let hi = this.iMmap.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.iMmap[mid]!.vmPgoff <= vma.vmPgoff) lo = mid + 1;
      else hi = mid;
    }
    this.iMmap.splice(lo, 0, vma);
  }

  remove(vma: VmAreaStruct): void {
    const i = this.iMmap.indexOf(vma);
    if (i >= 0) this.iMmap.splice(i, 1);
  }

  get mappings(): readonly VmAreaStruct[] {
    return this.iMmap;
  }

  /**
   * vma_interval_tree_foreach(vma, &mapping->i_mmap, first, last): the VMAs whose page-offset
   * interval meets [first, last], in i_mmap order. Offsets are unsigned long page indices, compared
   * exactly as bigint (a query's last index may be ULONG_MAX).
   */
  *overlapping(first: bigint, last: bigint): Generator<VmAreaStruct> {
    for (const vma of this.iMmap) {
      const vba = BigInt(vma.vmPgoff);
      if (vba > last) break;
      const vmaLast = vba + BigInt(vmaPages(vma)) - 1n;
      if (vmaLast >= first) yield vma;
    }
  }
}
