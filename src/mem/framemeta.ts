/**
 * Per-frame metadata: the fields of Linux's struct page that the mm model needs
 * (include/linux/mm_types.h, include/linux/page-flags.h), one typed array per field, indexed by
 * frame (frame i is physical address physBase + i * 4096). No per-frame objects: 4M frames (16 GiB)
 * cost 17 bytes each, and arrays that stay zero are never committed.
 *
 *  - refcount (Int32Array): page->_refcount, page_ref_count();
 *  - mapcount (Int32Array): the logical map count, page_mapcount(). Linux stores _mapcount
 *    biased by -1 (it starts at -1 so that the first mapping's atomic_inc_and_test hits 0);
 *    mmulab stores the unbiased count, so a fresh frame reads 0 and zeroed arrays need no set-up;
 *  - flags (Uint32Array): bit PG_x set when the page flag PG_x is set (test_bit(PG_x, &page->flags));
 *  - order (Uint8Array): folio_order() of a compound head (0 elsewhere);
 *  - entireMapcount (Int32Array): folio->_entire_mapcount, unbiased: on a compound head, the PMD/PUD
 *    mappings of the whole folio (the per-page mapcount counts PTE mappings only);
 *  - index (Float64Array): page->index — the page offset in its file, or the linear page index of
 *    an anonymous page (exact: below 2^53);
 *  - compoundHead (Int32Array): for a tail page, the frame index of its head (Linux's
 *    page->compound_head with bit 0 set); -1 for heads and for pages outside any compound page.
 *    A head is recognised by PG_head, as in Linux.
 *
 * Accessors take a physical address (any byte of the frame), bounds-checked: an address outside
 * memory throws PhysAddrError. The arrays are public for hot loops that already hold an index.
 */
import { FrameStateError, PhysAddrError } from './errors';
import { FRAME_SIZE, type PhysMem } from './physmem';

// ---- page flags (enum pageflags, include/linux/page-flags.h) -----------------------------------
// Bit numbers, not masks: test with (flags[i] & (1 << PG_dirty)) !== 0. The numbering is mmulab's
// own (Linux renumbers between versions); the listed flags keep Linux's relative order.
export const PG_locked = 0;
export const PG_writeback = 1;
export const PG_referenced = 2;
export const PG_uptodate = 3;
export const PG_dirty = 4;
export const PG_lru = 5;
export const PG_head = 6;
export const PG_reserved = 7;
export const PG_private = 8;
export const PG_swapbacked = 9;
/** mmulab's stand-in for PAGE_MAPPING_ANON: the low bit of page->mapping marks an anon folio. */
export const PG_anon = 10;
/** The frame holds a page table (Linux marks these with the PGTY_table page type, PageTable()). */
export const PG_pgtable = 11;
/** PageAnonExclusive: the anonymous page is mapped by exactly one process and may be written in place. */
export const PG_anon_exclusive = 12;
/** The folio sits in the swap cache (folio_test_swapcache). */
export const PG_swapcache = 13;

/** Names of the flags by bit number, for dumps and error messages. */
export const PAGE_FLAG_NAMES: readonly string[] = [
  'locked',
  'writeback',
  'referenced',
  'uptodate',
  'dirty',
  'lru',
  'head',
  'reserved',
  'private',
  'swapbacked',
  'anon',
  'pgtable',
  'anon_exclusive',
  'swapcache',
];

/** The names of the flags set in a flags word, low bit first (as /proc/kpageflags tools print). */
export function pageFlagNames(flags: number): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 32; bit++) {
    if (((flags >>> bit) & 1) !== 0) out.push(PAGE_FLAG_NAMES[bit] ?? `bit${bit}`);
  }
  return out;
}

/** Largest compound order: 2^30 frames, the limit of the Int32 frame indices. */
const MAX_COMPOUND_ORDER = 30;

export class FrameMeta {
  readonly physBase: number;
  readonly frames: number;
  readonly refcount: Int32Array;
  readonly mapcount: Int32Array;
  readonly flags: Uint32Array;
  readonly order: Uint8Array;
  readonly compoundHead: Int32Array;
  readonly entireMapcount: Int32Array;
  readonly index: Float64Array;

  constructor(mem: Pick<PhysMem, 'physBase' | 'frames'>) {
    const { physBase, frames } = mem;
    if (!Number.isInteger(frames) || frames < 1 || frames >= 2 ** 31) {
      throw new RangeError(`${frames} frames: expected 1 to 2^31 - 1`);
    }
    if (!Number.isSafeInteger(physBase) || physBase < 0 || physBase % FRAME_SIZE !== 0) {
      throw new RangeError(`phys_base 0x${physBase.toString(16)}: expected a 4 KiB-aligned address`);
    }
    this.physBase = physBase;
    this.frames = frames;
    this.refcount = new Int32Array(frames);
    this.mapcount = new Int32Array(frames);
    this.flags = new Uint32Array(frames);
    this.order = new Uint8Array(frames);
    this.compoundHead = new Int32Array(frames).fill(-1);
    this.entireMapcount = new Int32Array(frames);
    this.index = new Float64Array(frames);
  }

  /** Frame index of the frame holding pa; PhysAddrError outside memory. */
  frameIndex(pa: number): number {
    const off = pa - this.physBase;
    if (!(off >= 0 && off < this.frames * FRAME_SIZE) || !Number.isInteger(pa)) {
      throw new PhysAddrError(pa, 1, this.physBase, this.frames * FRAME_SIZE);
    }
    return Math.floor(off / FRAME_SIZE);
  }

  /** Physical address of frame i. */
  frameAddr(i: number): number {
    return this.physBase + i * FRAME_SIZE;
  }

  // ---- refcount (include/linux/page_ref.h) ----------------------------------------------------

  getRefcount(pa: number): number {
    return this.refcount[this.frameIndex(pa)]!;
  }

  /** set_page_count(); a count is never negative. */
  setRefcount(pa: number, value: number): void {
    const i = this.frameIndex(pa);
    checkCount('refcount', value);
    this.refcount[i] = value;
  }

  /** page_ref_inc_return(): the new count. */
  incRefcount(pa: number): number {
    const i = this.frameIndex(pa);
    const v = this.refcount[i]!;
    if (v === 0x7fffffff) throw new FrameStateError(`refcount of frame 0x${this.frameAddr(i).toString(16)} overflows`);
    this.refcount[i] = v + 1;
    return v + 1;
  }

  /**
   * page_ref_dec_return(): the new count. Dropping a reference the frame does not hold is the
   * bug put_page_testzero's VM_BUG_ON_PAGE(page_ref_count(page) == 0) catches.
   */
  decRefcount(pa: number): number {
    const i = this.frameIndex(pa);
    const v = this.refcount[i]!;
    if (v <= 0) {
      throw new FrameStateError(`refcount of frame 0x${this.frameAddr(i).toString(16)} would drop below zero`);
    }
    this.refcount[i] = v - 1;
    return v - 1;
  }

  // ---- mapcount: the logical count (page_mapcount()), not Linux's -1-biased _mapcount ---------

  getMapcount(pa: number): number {
    return this.mapcount[this.frameIndex(pa)]!;
  }

  setMapcount(pa: number, value: number): void {
    const i = this.frameIndex(pa);
    checkCount('mapcount', value);
    this.mapcount[i] = value;
  }

  /** One more page-table mapping of the frame: the new count. */
  incMapcount(pa: number): number {
    const i = this.frameIndex(pa);
    const v = this.mapcount[i]!;
    if (v === 0x7fffffff) throw new FrameStateError(`mapcount of frame 0x${this.frameAddr(i).toString(16)} overflows`);
    this.mapcount[i] = v + 1;
    return v + 1;
  }

  /** One mapping fewer: the new count. Below zero is Linux's "Bad page map" (mapcount underflow). */
  decMapcount(pa: number): number {
    const i = this.frameIndex(pa);
    const v = this.mapcount[i]!;
    if (v <= 0) {
      throw new FrameStateError(`mapcount of frame 0x${this.frameAddr(i).toString(16)} would drop below zero`);
    }
    this.mapcount[i] = v - 1;
    return v - 1;
  }

  // ---- flags ----------------------------------------------------------------------------------

  getFlags(pa: number): number {
    return this.flags[this.frameIndex(pa)]!;
  }

  testFlag(pa: number, bit: number): boolean {
    const i = this.frameIndex(pa);
    return (this.flags[i]! & flagMask(bit)) !== 0;
  }

  setFlag(pa: number, bit: number): void {
    const i = this.frameIndex(pa);
    this.flags[i] = this.flags[i]! | flagMask(bit);
  }

  clearFlag(pa: number, bit: number): void {
    const i = this.frameIndex(pa);
    this.flags[i] = this.flags[i]! & ~flagMask(bit);
  }

  /** test_and_set_bit(): the old value (trylock_page succeeds when this returns false). */
  testAndSetFlag(pa: number, bit: number): boolean {
    const i = this.frameIndex(pa);
    const m = flagMask(bit);
    const old = (this.flags[i]! & m) !== 0;
    this.flags[i] = this.flags[i]! | m;
    return old;
  }

  /** test_and_clear_bit(): the old value. */
  testAndClearFlag(pa: number, bit: number): boolean {
    const i = this.frameIndex(pa);
    const m = flagMask(bit);
    const old = (this.flags[i]! & m) !== 0;
    this.flags[i] = this.flags[i]! & ~m;
    return old;
  }

  // ---- compound pages / folios (mm/page_alloc.c prep_compound_page, include/linux/page-flags.h) --

  /**
   * Make the 2^order frames at pa one compound page (a folio): PG_head and the order on the head,
   * the head's index in every tail. pa must be aligned to the order in physical terms, as every
   * block the buddy allocator hands out is; order ≥ 1 (an order-0 page is not compound).
   */
  setCompound(pa: number, order: number): void {
    if (!Number.isInteger(order) || order < 1 || order > MAX_COMPOUND_ORDER) {
      throw new RangeError(`compound order ${order}: expected an integer from 1 to ${MAX_COMPOUND_ORDER}`);
    }
    const h = this.frameIndex(pa);
    const n = 2 ** order;
    const bytes = n * FRAME_SIZE;
    if (pa % bytes !== 0) {
      throw new FrameStateError(`compound page at 0x${pa.toString(16)}: not aligned to its order ${order}`);
    }
    if (h + n > this.frames) throw new PhysAddrError(pa, bytes, this.physBase, this.frames * FRAME_SIZE);
    const headMask = flagMask(PG_head);
    for (let i = h; i < h + n; i++) {
      if ((this.flags[i]! & headMask) !== 0 || this.compoundHead[i] !== -1) {
        throw new FrameStateError(
          `compound page at 0x${pa.toString(16)} order ${order}: frame 0x${this.frameAddr(i).toString(16)} already belongs to a compound page`,
        );
      }
    }
    this.flags[h] = this.flags[h]! | headMask;
    this.order[h] = order;
    for (let i = h + 1; i < h + n; i++) this.compoundHead[i] = h;
  }

  /** Undo setCompound (the folio is split or freed); pa must be the head. */
  clearCompound(pa: number): void {
    const h = this.frameIndex(pa);
    if ((this.flags[h]! & flagMask(PG_head)) === 0 || pa % FRAME_SIZE !== 0) {
      throw new FrameStateError(`clearCompound(0x${pa.toString(16)}): not the head of a compound page`);
    }
    const n = 2 ** this.order[h]!;
    for (let i = h + 1; i < h + n; i++) this.compoundHead[i] = -1;
    this.order[h] = 0;
    this.flags[h] = this.flags[h]! & ~flagMask(PG_head);
  }

  /** compound_head(): physical address of the head of the compound page holding pa, or of pa's own frame. */
  headOf(pa: number): number {
    const i = this.frameIndex(pa);
    const h = this.compoundHead[i]!;
    return this.frameAddr(h === -1 ? i : h);
  }

  /** PageHead(). */
  isHead(pa: number): boolean {
    return (this.flags[this.frameIndex(pa)]! & flagMask(PG_head)) !== 0;
  }

  /** PageTail(). */
  isTail(pa: number): boolean {
    return this.compoundHead[this.frameIndex(pa)] !== -1;
  }

  /** folio_order(page_folio()): order of the compound page holding pa; 0 for a single page. */
  compoundOrder(pa: number): number {
    const i = this.frameIndex(pa);
    const h = this.compoundHead[i]!;
    return this.order[h === -1 ? i : h]!;
  }

  /**
   * Clear every field of the 2^order frames at pa (what a fresh page from the allocator looks
   * like: no references, no mappings, no flags, not compound).
   */
  reset(pa: number, order = 0): void {
    if (!Number.isInteger(order) || order < 0 || order > MAX_COMPOUND_ORDER) {
      throw new RangeError(`order ${order}: expected an integer from 0 to ${MAX_COMPOUND_ORDER}`);
    }
    const first = this.frameIndex(pa);
    const end = Math.min(this.frames, first + 2 ** order);
    this.refcount.fill(0, first, end);
    this.mapcount.fill(0, first, end);
    this.flags.fill(0, first, end);
    this.order.fill(0, first, end);
    this.compoundHead.fill(-1, first, end);
    this.entireMapcount.fill(0, first, end);
    this.index.fill(0, first, end);
  }
}

function flagMask(bit: number): number {
  if (!Number.isInteger(bit) || bit < 0 || bit > 31) throw new RangeError(`page flag bit ${bit}: expected 0 to 31`);
  return (1 << bit) >>> 0;
}

function checkCount(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) {
    throw new RangeError(`${name} ${value}: expected an integer from 0 to 2^31 - 1`);
  }
}
