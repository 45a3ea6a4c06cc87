/**
 * A /proc/pid/pagemap reader over walk_page_range, as fs/proc/task_mmu.c builds it: one 64-bit
 * entry per virtual page of [start, end), in Documentation/admin-guide/mm/pagemap.rst's layout:
 *
 *   bits 0-54  page frame number if present; if swapped, swap type (bits 0-4) and offset (5-54)
 *   bit  55    pte is soft-dirty (not modelled: always 0)
 *   bit  56    page exclusively mapped (mapcount == 1)
 *   bit  57    pte is uffd-wp write-protected (not modelled: always 0)
 *   bit  61    page is file-page or shared-anon
 *   bit  62    page swapped
 *   bit  63    page present
 *
 * The reader has CAP_SYS_ADMIN: frame numbers are shown, not zeroed. Page facts come from the frame
 * metadata (mapcount, PG_anon); a frame outside emulated memory (a VM_PFNMAP/VM_IO mapping) has no
 * struct page and so gives only the PFN and the present bit.
 */
import { PG_anon } from '../mem/framemeta';
import { isVmHugetlbPage } from '../mm/vma';
import type { MmStruct } from '../mm/mm';
import { ACTION_CONTINUE, walkPageRange, type MmWalk, type MmWalkOps } from './pagewalk';

export const PM_PFRAME_BITS = 55;
export const PM_SOFT_DIRTY = 1n << 55n;
export const PM_MMAP_EXCLUSIVE = 1n << 56n;
export const PM_UFFD_WP = 1n << 57n;
export const PM_FILE = 1n << 61n;
export const PM_SWAP = 1n << 62n;
export const PM_PRESENT = 1n << 63n;
const MAX_SWAPFILES_SHIFT = 5n;
const PFRAME_MASK = (1n << 55n) - 1n;

interface PagemapState {
  out: BigUint64Array;
  start: number;
  pageSize: number;
}

function put(s: PagemapState, addr: number, value: bigint): void {
  s.out[(addr - s.start) / s.pageSize] = value;
}

/** The flags of a mapped frame: PM_MMAP_EXCLUSIVE when mapped once, PM_FILE unless anonymous. */
function pageFlags(walk: MmWalk<PagemapState>, pfn: number): bigint {
  const m = walk.mm.machine;
  const pa = pfn * m.geo.PAGE_SIZE;
  if (!m.mem.contains(pa, 1)) return 0n;
  let flags = 0n;
  if (m.meta.getMapcount(pa) === 1) flags |= PM_MMAP_EXCLUSIVE;
  // Shared anonymous memory is shmem, not PageAnon: it reports as a file page too.
  if (!m.meta.testFlag(pa, PG_anon)) flags |= PM_FILE;
  return flags;
}

function presentEntry(walk: MmWalk<PagemapState>, pfn: number): bigint {
  return PM_PRESENT | (BigInt(pfn) & PFRAME_MASK) | pageFlags(walk, pfn);
}

function swapEntry(walk: MmWalk<PagemapState>, lo: number, hi: number): bigint {
  const bits = walk.mm.machine.bits;
  const frame = BigInt(bits.swapType(lo, hi)) | (BigInt(bits.swapOffset(lo, hi)) << MAX_SWAPFILES_SHIFT);
  return PM_SWAP | (frame & PFRAME_MASK);
}

const ops: MmWalkOps<PagemapState> = {
  pmdEntry(pmd, addr, next, walk) {
    // pagemap_pmd_range: a huge pmd reports each of its pages, then the walk skips its ptes.
    const pt = walk.pt;
    const lo = pt.lo(pmd);
    const hi = pt.hi(pmd);
    if (pt.pmdPresent(lo, hi) && pt.pmdLeaf(lo, hi)) {
      const s = walk.private;
      const base = walk.mm.machine.bits.leafPfn('pmd', lo, hi);
      const first = Math.floor(addr / pt.PMD_SIZE) * pt.PMD_SIZE;
      for (let a = addr; a < next; a += s.pageSize) put(s, a, presentEntry(walk, base + (a - first) / s.pageSize));
      walk.action = ACTION_CONTINUE;
    }
    return 0;
  },
  pteEntry(pte, addr, _next, walk) {
    const pt = walk.pt;
    const lo = pt.lo(pte);
    const hi = pt.hi(pte);
    if (pt.ptePresent(lo, hi)) put(walk.private, addr, presentEntry(walk, walk.mm.machine.bits.leafPfn('pte', lo, hi)));
    else if (!pt.pteNone(lo, hi)) put(walk.private, addr, swapEntry(walk, lo, hi));
    return 0;
  },
  hugetlbEntry(pte, _hmask, addr, next, walk) {
    // pagemap_hugetlb_range: the huge entry (a pud or pmd leaf) reports each base page.
    const pt = walk.pt;
    const lo = pt.lo(pte);
    const hi = pt.hi(pte);
    const vma = walk.vma!;
    const size = vma.hugepageSize!;
    const level = size === pt.PUD_SIZE && walk.mm.machine.geo.pudLeaf ? 'pud' : 'pmd';
    const s = walk.private;
    // huge_pte_none / pte_present apply to huge entries as to ptes.
    if (pt.pteNone(lo, hi)) return 0;
    if (!pt.ptePresent(lo, hi)) {
      for (let a = addr; a < next; a += s.pageSize) put(s, a, swapEntry(walk, lo, hi));
      return 0;
    }
    const base = walk.mm.machine.bits.leafPfn(level, lo, hi);
    const first = Math.floor(addr / size) * size;
    for (let a = addr; a < next; a += s.pageSize) put(s, a, presentEntry(walk, base + (a - first) / s.pageSize));
    return 0;
  },
  // pagemap_pte_hole: holes read as 0 (the buffer starts zeroed); VM_SOFTDIRTY is not modelled.
  pteHole: () => 0,
};

/**
 * Read pagemap entries for [start, end) of mm (page aligned). The mmap lock must be held for read,
 * as the kernel's pagemap_read takes it.
 */
export function readPagemap(mm: MmStruct, start: number, end: number): BigUint64Array {
  const pageSize = mm.machine.geo.PAGE_SIZE;
  if (start % pageSize !== 0 || end % pageSize !== 0 || !(start < end)) {
    throw new RangeError(`pagemap range [0x${start.toString(16)}, 0x${end.toString(16)}): expected page-aligned start < end`);
  }
  const state: PagemapState = { out: new BigUint64Array((end - start) / pageSize), start, pageSize };
  const ret = walkPageRange(mm, start, end, ops, state);
  if (ret < 0) throw new RangeError(`pagemap walk failed with ${ret}`);
  return state.out;
}

/** Whether a VMA is hugetlb (re-exported for callers that format pagemap per VMA). */
export { isVmHugetlbPage };
