/**
 * struct page / struct folio over the frame metadata (src/mem/framemeta.ts): allocation, references,
 * map counts, anonymous vs file-backed, and the shared zero pages.
 *
 * A folio is named by the physical address of its head frame (a number, like every pointer here).
 * Its mapping — the anon_vma of an anonymous folio, the AddressSpace of a page-cache folio — is not
 * a number, so it lives in a side table on the Machine (folioMappings), keyed by the head address;
 * everything else is in FrameMeta's typed arrays.
 *
 * References and map counts follow Linux 6.18's rules:
 *  - a freshly allocated folio has one reference (the allocator's, handed to the caller);
 *  - every page-table mapping holds one reference (a PMD/PUD mapping of a large folio holds one,
 *    each PTE mapping of one of its pages holds one);
 *  - the page cache holds one reference per folio it indexes;
 *  - mapcount counts PTE mappings per page; entireMapcount counts PMD/PUD mappings of the whole
 *    folio (folio->_entire_mapcount); folioMapcount() is their sum over the folio, as
 *    folio_mapcount() (folio->_large_mapcount) reports it.
 * The last folioPut() frees the folio to the buddy allocator.
 */
import { FRAME_SIZE } from '../mem/physmem';
import { PG_anon, PG_anon_exclusive, PG_dirty, PG_head, PG_referenced, PG_reserved, PG_swapbacked, PG_uptodate } from '../mem/framemeta';
import type { Machine } from './machine';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES } from './mm';
import type { AddressSpace } from './address-space';
import type { AnonVma } from './rmap';

export type FolioMapping = AnonVma | AddressSpace;

/** The page size of the machine in frames (1 on 4K granules, 4 on 16K, 16 on 64K). */
function framesPerPage(m: Machine): number {
  return m.geo.PAGE_SIZE / FRAME_SIZE;
}

/**
 * folio_alloc / vma_alloc_zeroed_movable_folio: a folio of 2^order pages (in PAGE_SIZE units), with
 * one reference; zeroed when asked. -1 when memory is exhausted (the caller returns VM_FAULT_OOM
 * or falls back, as the kernel's callers do).
 */
export function folioAlloc(m: Machine, order: number, zero = true): number {
  const frameOrder = order + m.tableOrder; // tableOrder = log2(PAGE_SIZE / 4 KiB)
  const pa = m.frames.tryAlloc(frameOrder);
  if (pa < 0) return -1;
  m.meta.reset(pa, frameOrder);
  if (frameOrder > 0) m.meta.setCompound(pa, frameOrder);
  m.meta.refcount[m.meta.frameIndex(pa)] = 1;
  if (zero) m.mem.zero(pa, FRAME_SIZE * 2 ** frameOrder);
  m.emit('folio_alloc', { pa, order });
  return pa;
}

/** The head of the folio holding pa (page_folio). */
export function pageFolio(m: Machine, pa: number): number {
  return m.meta.headOf(pa);
}

/** folio_order in PAGE_SIZE units: log2 of the pages in the folio. */
export function folioOrder(m: Machine, folio: number): number {
  return m.meta.compoundOrder(folio) - m.tableOrder;
}

/** folio_nr_pages. */
export function folioNrPages(m: Machine, folio: number): number {
  return 2 ** folioOrder(m, folio);
}

/** folio_size in bytes. */
export function folioSize(m: Machine, folio: number): number {
  return FRAME_SIZE * 2 ** m.meta.compoundOrder(folio);
}

/** folio_ref_count. */
export function folioRefCount(m: Machine, folio: number): number {
  return m.meta.getRefcount(folio);
}

/** folio_get / folio_ref_add. */
export function folioGet(m: Machine, folio: number, nr = 1): void {
  const i = m.meta.frameIndex(folio);
  if (m.meta.refcount[i]! <= 0) throw new FolioStateError(`folio_get on free folio at 0x${folio.toString(16)}`);
  m.meta.refcount[i] = m.meta.refcount[i]! + nr;
}

/**
 * folio_put / folio_put_refs: drop references; the last one frees the folio (its mapping is
 * forgotten, its frames return to the allocator). The zero pages are PG_reserved and never freed.
 */
export function folioPut(m: Machine, folio: number, nr = 1): void {
  const meta = m.meta;
  const i = meta.frameIndex(folio);
  const v = meta.refcount[i]!;
  if (v < nr) throw new FolioStateError(`folio_put at 0x${folio.toString(16)}: refcount ${v} would drop below zero`);
  meta.refcount[i] = v - nr;
  if (v - nr > 0) return;
  if (meta.testFlag(folio, PG_reserved)) return;
  freeFolio(m, folio);
}

function freeFolio(m: Machine, folio: number): void {
  checkNotMapped(m, folio); // before anything changes
  m.folioMappings.delete(folio);
  freeFolioFrames(m, folio);
}

/** The page allocator's free-time check (mm/page_alloc.c free_page_is_bad → bad_page: "nonzero mapcount"). */
function checkNotMapped(m: Machine, folio: number): void {
  const mapped = folioMapcount(m, folio);
  if (mapped !== 0) {
    throw new FolioStateError(`Bad page state (nonzero mapcount): freeing folio at 0x${folio.toString(16)} that is still mapped (mapcount ${mapped})`);
  }
}

/**
 * Return a folio's frames to the allocator with their metadata cleared. The caller owns the folio
 * (its references are the caller's business); a folio still mapped is refused, as the page
 * allocator's free path does it.
 */
export function freeFolioFrames(m: Machine, folio: number): void {
  checkNotMapped(m, folio);
  const order = m.meta.compoundOrder(folio);
  if (order > 0) m.meta.clearCompound(folio);
  m.meta.reset(folio, order);
  m.frames.free(folio, order);
  m.emit('folio_free', { pa: folio, order });
}

/** folio_mapcount: PTE mappings of every page plus the entire (PMD/PUD) mappings. */
export function folioMapcount(m: Machine, folio: number): number {
  const meta = m.meta;
  const h = meta.frameIndex(folio);
  if ((meta.flags[h]! & (1 << PG_head)) === 0) return meta.mapcount[h]!;
  const frames = 2 ** meta.order[h]!;
  const step = framesPerPage(m);
  let n = meta.entireMapcount[h]!;
  for (let i = h; i < h + frames; i += step) n += meta.mapcount[i]!;
  return n;
}

/** folio_mapped. */
export function folioMapped(m: Machine, folio: number): boolean {
  return folioMapcount(m, folio) > 0;
}

/** page_mapcount of one page: its PTE mappings plus the entire mappings of its folio. */
export function pageMapcount(m: Machine, page: number): number {
  const head = m.meta.headOf(page);
  const entire = m.meta.isHead(head) ? m.meta.entireMapcount[m.meta.frameIndex(head)]! : 0;
  return m.meta.getMapcount(page) + entire;
}

export function folioTestAnon(m: Machine, folio: number): boolean {
  return m.meta.testFlag(folio, PG_anon);
}
export function folioTestSwapbacked(m: Machine, folio: number): boolean {
  return m.meta.testFlag(folio, PG_swapbacked);
}
export function pageAnonExclusive(m: Machine, page: number): boolean {
  return m.meta.testFlag(page, PG_anon_exclusive);
}
export function setPageAnonExclusive(m: Machine, page: number): void {
  m.meta.setFlag(page, PG_anon_exclusive);
}
export function clearPageAnonExclusive(m: Machine, page: number): void {
  m.meta.clearFlag(page, PG_anon_exclusive);
}

/** mm_counter(folio): which rss counter a folio's mappings count in. */
export function mmCounter(m: Machine, folio: number): number {
  if (folioTestAnon(m, folio)) return MM_ANONPAGES;
  return folioTestSwapbacked(m, folio) ? MM_SHMEMPAGES : MM_FILEPAGES;
}

/** folio_mark_dirty (the page cache's dirty tag is the PG_dirty flag here). */
export function folioMarkDirty(m: Machine, folio: number): void {
  m.meta.setFlag(folio, PG_dirty);
}

/** folio_mark_accessed, reduced to the PG_referenced bit (mmulab has no LRU lists). */
export function folioMarkAccessed(m: Machine, folio: number): void {
  m.meta.setFlag(folio, PG_referenced);
}

export function folioMarkUptodate(m: Machine, folio: number): void {
  m.meta.setFlag(folio, PG_uptodate);
}

/** folio->mapping. */
export function folioMapping(m: Machine, folio: number): FolioMapping | null {
  return m.folioMappings.get(folio) ?? null;
}

/** folio->index: file page offset, or linear page index of an anonymous folio. */
export function folioIndex(m: Machine, folio: number): number {
  return m.meta.index[m.meta.frameIndex(folio)]!;
}

export function setFolioMapping(m: Machine, folio: number, mapping: FolioMapping | null, index: number): void {
  if (mapping === null) m.folioMappings.delete(folio);
  else m.folioMappings.set(folio, mapping);
  m.meta.index[m.meta.frameIndex(folio)] = index;
}

/** pfn of the page at pa, in PAGE_SIZE units (page_to_pfn). */
export function pagePfn(m: Machine, pa: number): number {
  return Math.floor(pa / m.geo.PAGE_SIZE);
}

/** pfn_to_page; -1 when the pfn is outside the machine's memory (no struct page: pfn_valid false). */
export function pfnToPage(m: Machine, pfn: number): number {
  const pa = pfn * m.geo.PAGE_SIZE;
  return m.mem.contains(pa, m.geo.PAGE_SIZE) ? pa : -1;
}

/** Copy a page's bytes (copy_user_highpage). */
export function copyPage(m: Machine, to: number, from: number, bytes: number = m.geo.PAGE_SIZE): void {
  const u8 = new Uint8Array(m.mem.buffer);
  const src = m.mem.offset(from, bytes);
  u8.copyWithin(m.mem.offset(to, bytes), src, src + bytes);
}

/** A misuse of a folio the kernel would catch with VM_BUG_ON_FOLIO. */
export class FolioStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FolioStateError';
  }
}
