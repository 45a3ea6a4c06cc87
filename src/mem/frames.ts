/**
 * The frame allocator: a binary buddy allocator over the 4 KiB frames of a PhysMem, after the
 * shape of Linux's mm/page_alloc.c (__rmqueue_smallest / expand on allocation, __free_one_page's
 * buddy merging on free; the per-order counts are /proc/buddyinfo).
 *
 * Frame i is physical address physBase + i * 4096. A block of order k is 2^k frames and starts at
 * a physical address that is a multiple of 2^k * 4 KiB: alignment is reckoned on the physical
 * address, not on i, so a 2 MiB block can back a PMD leaf and a 1 GiB block a PUD leaf whatever
 * physBase is. When physBase (only 4 KiB aligned in general) or physEnd cuts through a large
 * aligned block, the frames at that edge are handed out as smaller blocks.
 *
 * Representation (a few bytes per frame, no per-frame objects: a 16 GiB memory has 4M frames):
 *  - next/prev (Int32Array): the per-order free lists, intrusive doubly linked lists threaded
 *    through the frame index of each free block's first frame. Only meaningful at free heads, so
 *    they are never initialised and stay untouched (uncommitted) elsewhere;
 *  - freeOrder (Int8Array): order of the free block starting at this frame, or -1;
 *  - allocOrder (Int8Array): order of the allocated block starting at this frame, or -1. This is
 *    what lets free() check the caller's order, as Linux's page->private/PageBuddy checks do.
 * Every operation costs O(maxOrder). The allocator never reads or writes the memory itself:
 * frames are zeroed by whoever allocates them, and pages nobody touched stay uncommitted.
 */
import { FrameStateError, OutOfFramesError, PhysAddrError } from './errors';
import { FRAME_SIZE, type PhysMem } from './physmem';

/**
 * Largest order by default: 2^18 frames = 1 GiB, the PUD leaf of 4K x86-64/arm64 (512 MiB, the
 * 64K-granule PMD leaf, is order 17). Linux's own MAX_PAGE_ORDER is 10; gigantic pages come from
 * memblock/CMA there, from this allocator here.
 */
export const MAX_ORDER = 18;

/** Largest maxOrder accepted: frame indices are Int32, so 2^30 frames (4 TiB) per block. */
const ORDER_LIMIT = 30;

const NONE = -1;

export interface FrameAllocatorOptions {
  /** Cap on the block order (default MAX_ORDER); it is further limited by the memory's size. */
  readonly maxOrder?: number;
}

export class FrameAllocator {
  readonly physBase: number;
  readonly physEnd: number;
  readonly totalFrames: number;
  /** The largest order this allocator hands out: min(option, floor(log2(totalFrames))). */
  readonly maxOrder: number;

  /** Frame number (pa / 4096) of frame 0: alignment is tested on basePfn + i. */
  private readonly basePfn: number;
  /**
   * basePfn mod 2^31. A pfn can exceed 2^32, but alignment to 2^k (k ≤ 30) only needs its low
   * bits, and pfnLow + i < 2^32, so the hot paths test `(pfnLow + i) & (2^k - 1)` exactly.
   */
  private readonly pfnLow: number;
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly freeOrder: Int8Array;
  private readonly allocOrder: Int8Array;
  /** Head of the free list of each order (a frame index, or -1). */
  private readonly heads: Int32Array;
  /** Number of free blocks of each order. */
  private readonly nrFree: Int32Array;
  private nFreeFrames = 0;
  /** Remaining allocations allowed by setFailAfter, or null when the hook is off. */
  private failAfter: number | null = null;

  constructor(mem: Pick<PhysMem, 'physBase' | 'size'>, opts: FrameAllocatorOptions = {}) {
    const cap = opts.maxOrder ?? MAX_ORDER;
    if (!Number.isInteger(cap) || cap < 0 || cap > ORDER_LIMIT) {
      throw new RangeError(`maxOrder ${cap}: expected an integer from 0 to ${ORDER_LIMIT}`);
    }
    const frames = mem.size / FRAME_SIZE;
    if (!Number.isInteger(frames) || frames < 1 || frames >= 2 ** 31) {
      throw new RangeError(`memory of ${mem.size} bytes: expected 1 to 2^31 - 1 frames of 4 KiB`);
    }
    if (!Number.isSafeInteger(mem.physBase) || mem.physBase < 0 || mem.physBase % FRAME_SIZE !== 0) {
      throw new RangeError(`phys_base 0x${mem.physBase.toString(16)}: expected a 4 KiB-aligned address`);
    }
    this.physBase = mem.physBase;
    this.physEnd = mem.physBase + mem.size;
    this.totalFrames = frames;
    this.basePfn = mem.physBase / FRAME_SIZE;
    this.pfnLow = this.basePfn % 2 ** 31;
    let maxOrder = 0;
    while (maxOrder < cap && 2 ** (maxOrder + 1) <= frames) maxOrder++;
    this.maxOrder = maxOrder;

    this.next = new Int32Array(frames);
    this.prev = new Int32Array(frames);
    this.freeOrder = new Int8Array(frames).fill(NONE);
    this.allocOrder = new Int8Array(frames).fill(NONE);
    this.heads = new Int32Array(this.maxOrder + 1).fill(NONE);
    this.nrFree = new Int32Array(this.maxOrder + 1);

    // Carve memory into the largest aligned blocks (memblock_free_all → __free_pages_core does
    // the same). Pushed from the top down so that each list starts with its lowest block.
    const starts: number[] = [];
    const orders: number[] = [];
    this.forEachAlignedBlock(0, frames, (i, k) => {
      starts.push(i);
      orders.push(k);
    });
    for (let b = starts.length - 1; b >= 0; b--) this.pushFree(starts[b]!, orders[b]!);
    this.nFreeFrames = frames;
  }

  get freeFrames(): number {
    return this.nFreeFrames;
  }

  get usedFrames(): number {
    return this.totalFrames - this.nFreeFrames;
  }

  /** Number of free blocks of an order (one column of /proc/buddyinfo). */
  freeBlocks(order: number): number {
    return order >= 0 && order <= this.maxOrder ? this.nrFree[order]! : 0;
  }

  /** Free blocks per order, 0 … maxOrder: /proc/buddyinfo's row. */
  buddyInfo(): number[] {
    return Array.from(this.nrFree);
  }

  /**
   * Allocate a naturally aligned block of 2^order frames and return its physical address.
   * Throws OutOfFramesError when no block is free (the kernel's NULL from alloc_pages, -ENOMEM to
   * its callers), including orders above maxOrder. The frames are not zeroed.
   */
  alloc(order = 0): number {
    const pa = this.tryAlloc(order);
    if (pa < 0) throw new OutOfFramesError(order);
    return pa;
  }

  /** As alloc(), but returns -1 instead of throwing when nothing is free. */
  tryAlloc(order = 0): number {
    if (!Number.isInteger(order) || order < 0) {
      throw new RangeError(`allocation order ${order}: expected a non-negative integer`);
    }
    // alloc_pages warns and returns NULL for order > MAX_PAGE_ORDER: a failure, not a misuse.
    if (order > this.maxOrder) return -1;
    if (this.failAfter !== null && this.failAfter <= 0) return -1;

    // __rmqueue_smallest: the smallest order with a free block.
    let k = order;
    while (k <= this.maxOrder && this.heads[k] === NONE) k++;
    if (k > this.maxOrder) return -1;
    const i = this.heads[k]!;
    this.removeFree(i, k);
    // expand(): keep the low half, give each high half back to the list one order down.
    while (k > order) {
      k--;
      this.pushFree(i + (1 << k), k);
    }
    this.allocOrder[i] = order;
    this.nFreeFrames -= 1 << order;
    if (this.failAfter !== null) this.failAfter--;
    return this.physBase + i * FRAME_SIZE;
  }

  /**
   * Free a block allocated with alloc(order) (or an order-0 frame of a reserve()d range), merging
   * it with its free buddies (__free_one_page). Misuse — an address outside memory, not aligned
   * to the order, not the start of an allocated block, freed twice, or freed with another order
   * than it was allocated with — throws FrameStateError (Linux's bad_page / VM_BUG_ON) and changes
   * nothing.
   */
  free(pa: number, order: number): void {
    const i = this.checkFree(pa, order);
    this.allocOrder[i] = NONE;
    this.nFreeFrames += 1 << order;

    let idx = i;
    let k = order;
    while (k < this.maxOrder) {
      const size = 1 << k;
      // The buddy is the other half of the aligned block of order k + 1: pfn ^ 2^k, so it lies
      // above when bit k of the pfn is clear.
      const buddy = ((this.pfnLow + idx) & size) === 0 ? idx + size : idx - size;
      if (buddy < 0 || buddy >= this.totalFrames || this.freeOrder[buddy] !== k) break;
      this.removeFree(buddy, k);
      if (buddy < idx) idx = buddy;
      k++;
    }
    this.pushFree(idx, k);
  }

  /** Whether the frame containing pa is free. Throws PhysAddrError outside memory. */
  isFree(pa: number): boolean {
    return this.freeBlockOf(this.indexOf(pa)) !== NONE;
  }

  /**
   * Order of the allocated block starting at pa, or -1 (free, a tail frame, or not a block start).
   * Reserved frames read as order 0. Throws PhysAddrError outside memory.
   */
  allocatedOrder(pa: number): number {
    const i = this.indexOf(pa);
    return (pa - this.physBase) % FRAME_SIZE === 0 ? this.allocOrder[i]! : NONE;
  }

  /**
   * Mark [pa, pa + len) used at start-up (firmware, the kernel image, a device tree: memblock's
   * reservations). Every frame the range touches becomes an allocated order-0 frame, which
   * free(pa, 0) can release later (free_reserved_page). Throws PhysAddrError when the range
   * leaves memory and FrameStateError when a frame in it is already in use; nothing changes then.
   */
  reserve(pa: number, len: number): void {
    if (!Number.isInteger(len) || len < 0) throw new RangeError(`reserve length ${len}: expected a non-negative integer`);
    if (!Number.isInteger(pa) || pa < this.physBase || pa + len > this.physEnd) {
      throw new PhysAddrError(pa, len, this.physBase, this.physEnd - this.physBase);
    }
    if (len === 0) return;
    const first = Math.floor((pa - this.physBase) / FRAME_SIZE);
    const end = Math.ceil((pa + len - this.physBase) / FRAME_SIZE);

    // Check first, so a refused reservation leaves the allocator as it was.
    for (let i = first; i < end; ) {
      const head = this.freeBlockOf(i);
      if (head === NONE) {
        throw new FrameStateError(`reserve: frame 0x${this.paOf(i).toString(16)} is already in use`);
      }
      i = head + 2 ** this.freeOrder[head]!;
    }
    for (let i = first; i < end; ) {
      const head = this.freeBlockOf(i);
      const k = this.freeOrder[head]!;
      const blockEnd = head + 2 ** k;
      const stop = Math.min(end, blockEnd);
      this.removeFree(head, k);
      // Give back the parts of the block on either side of the range, as aligned blocks.
      this.forEachAlignedBlock(head, i, (s, o) => this.pushFree(s, o));
      this.forEachAlignedBlock(stop, blockEnd, (s, o) => this.pushFree(s, o));
      for (let j = i; j < stop; j++) this.allocOrder[j] = 0;
      this.nFreeFrames -= stop - i;
      i = stop;
    }
  }

  /**
   * Fault injection for tests: the next n allocations succeed (when memory allows), every one
   * after that fails as if memory were exhausted, until setFailAfter(null). Only successful
   * allocations count down; reserve() does not count.
   */
  setFailAfter(n: number | null): void {
    if (n !== null && (!Number.isInteger(n) || n < 0)) {
      throw new RangeError(`setFailAfter(${n}): expected a non-negative integer or null`);
    }
    this.failAfter = n;
  }

  // ---- internals ------------------------------------------------------------------------------

  private paOf(i: number): number {
    return this.physBase + i * FRAME_SIZE;
  }

  /** Frame index of the frame containing pa; PhysAddrError outside memory. */
  private indexOf(pa: number): number {
    if (!(pa >= this.physBase && pa < this.physEnd) || !Number.isInteger(pa)) {
      throw new PhysAddrError(pa, 1, this.physBase, this.physEnd - this.physBase);
    }
    return Math.floor((pa - this.physBase) / FRAME_SIZE);
  }

  /** Index of the first frame of the free block that contains frame i, or -1 when i is in use. */
  private freeBlockOf(i: number): number {
    const low = this.pfnLow + i;
    for (let k = 0; k <= this.maxOrder; k++) {
      // The only block of order k that can contain frame i starts at its pfn rounded down to 2^k.
      const head = i - (low & ((1 << k) - 1));
      if (head < 0) break;
      if (this.freeOrder[head] === k) return head;
    }
    return NONE;
  }

  /** Index of the allocated block containing frame i, or -1. */
  private allocBlockOf(i: number): number {
    const low = this.pfnLow + i;
    for (let k = 0; k <= this.maxOrder; k++) {
      const head = i - (low & ((1 << k) - 1));
      if (head < 0) break;
      if (this.allocOrder[head] === k) return head;
    }
    return NONE;
  }

  /** Validate a free(pa, order) and return the block's frame index; throws FrameStateError. */
  private checkFree(pa: number, order: number): number {
    if (!((order >>> 0) === order && order <= this.maxOrder)) {
      throw new FrameStateError(`free of ${hex(pa)}: order ${order} is not an order of this allocator (0 to ${this.maxOrder})`);
    }
    const n = 1 << order;
    // Frame index; an integer exactly when pa is a frame-aligned integer (physBase is one).
    const i = (pa - this.physBase) / FRAME_SIZE;
    if (!(i >= 0 && i + n <= this.totalFrames) || !Number.isFinite(pa)) {
      throw new FrameStateError(
        `free of ${hex(pa)} order ${order}: outside memory [0x${this.physBase.toString(16)}, 0x${this.physEnd.toString(16)})`,
      );
    }
    if ((i | 0) !== i || ((this.pfnLow + i) & (n - 1)) !== 0) {
      throw new FrameStateError(`free of ${hex(pa)}: not aligned to its order ${order} (0x${(n * FRAME_SIZE).toString(16)} bytes)`);
    }
    const held = this.allocOrder[i]!;
    if (held === order) return i;
    if (held !== NONE) {
      throw new FrameStateError(`free of ${hex(pa)} with order ${order}: it was allocated with order ${held}`);
    }
    if (this.freeBlockOf(i) !== NONE) throw new FrameStateError(`double free of ${hex(pa)}: the frame is already free`);
    const owner = this.allocBlockOf(i);
    if (owner !== NONE) {
      throw new FrameStateError(
        `free of ${hex(pa)}: inside the block of order ${this.allocOrder[owner]} allocated at 0x${this.paOf(owner).toString(16)}`,
      );
    }
    throw new FrameStateError(`free of ${hex(pa)}: not an allocated block`);
  }

  /** Cover frames [from, to) with the largest naturally aligned blocks, low to high. */
  private forEachAlignedBlock(from: number, to: number, visit: (start: number, order: number) => void): void {
    let i = from;
    while (i < to) {
      let k = this.maxOrder;
      while (k > 0 && ((this.basePfn + i) % 2 ** k !== 0 || i + 2 ** k > to)) k--;
      visit(i, k);
      i += 2 ** k;
    }
  }

  private pushFree(i: number, k: number): void {
    const head = this.heads[k]!;
    this.freeOrder[i] = k;
    this.prev[i] = NONE;
    this.next[i] = head;
    if (head !== NONE) this.prev[head] = i;
    this.heads[k] = i;
    this.nrFree[k] = this.nrFree[k]! + 1;
  }

  private removeFree(i: number, k: number): void {
    const p = this.prev[i]!;
    const n = this.next[i]!;
    if (p !== NONE) this.next[p] = n;
    else this.heads[k] = n;
    if (n !== NONE) this.prev[n] = p;
    this.freeOrder[i] = NONE;
    this.nrFree[k] = this.nrFree[k]! - 1;
  }
}

/** An address for an error message (built only when an error is thrown). */
function hex(pa: number): string {
  return Number.isFinite(pa) ? `0x${pa.toString(16)}` : String(pa);
}
