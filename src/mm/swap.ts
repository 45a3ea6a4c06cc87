/**
 * Swap and migration entries (include/linux/swap.h, swapops.h) and a simple swap device.
 *
 * A non-present, non-none pte holds a swp_entry_t — a 5-bit type and an offset — in the arch's own
 * layout (ArchBits.mkSwapPte). Types below MAX_SWAPFILES name swap devices; the ones above are
 * Linux's special entries. mmulab's kernel configuration: CONFIG_MIGRATION=y,
 * CONFIG_MEMORY_FAILURE=y, CONFIG_PTE_MARKER=y, CONFIG_DEVICE_PRIVATE=n, so
 *   MAX_SWAPFILES = 32 - 3 (migration) - 1 (hwpoison) - 1 (pte marker) = 27,
 *   SWP_HWPOISON = 27, SWP_MIGRATION_READ = 28, _READ_EXCLUSIVE = 29, _WRITE = 30, SWP_PTE_MARKER = 31.
 * A migration entry's offset is the pfn of the folio page being migrated.
 *
 * The swap device: one area (type 0) whose slots hold a page's bytes and a map count (the
 * swap_map), plus a swap cache (slot → folio) so that a page shared by several processes is swapped
 * back in as one folio.
 */
import { PG_swapcache } from '../mem/framemeta';
import { folioPut } from './folio';
import type { Machine } from './machine';

export const MAX_SWAPFILES_SHIFT = 5;
export const SWP_MIGRATION_NUM = 3;
export const SWP_HWPOISON_NUM = 1;
export const SWP_PTE_MARKER_NUM = 1;
export const SWP_DEVICE_NUM = 0;
export const MAX_SWAPFILES = (1 << MAX_SWAPFILES_SHIFT) - SWP_DEVICE_NUM - SWP_MIGRATION_NUM - SWP_HWPOISON_NUM - SWP_PTE_MARKER_NUM;
export const SWP_HWPOISON = MAX_SWAPFILES;
export const SWP_MIGRATION_READ = MAX_SWAPFILES + SWP_HWPOISON_NUM;
export const SWP_MIGRATION_READ_EXCLUSIVE = MAX_SWAPFILES + SWP_HWPOISON_NUM + 1;
export const SWP_MIGRATION_WRITE = MAX_SWAPFILES + SWP_HWPOISON_NUM + 2;
export const SWP_PTE_MARKER = MAX_SWAPFILES + SWP_HWPOISON_NUM + SWP_MIGRATION_NUM + SWP_DEVICE_NUM;

/** is_migration_entry. */
export function isMigrationType(type: number): boolean {
  return type === SWP_MIGRATION_READ || type === SWP_MIGRATION_READ_EXCLUSIVE || type === SWP_MIGRATION_WRITE;
}

/** non_swap_entry: a special entry, not a slot of a swap device. */
export function isNonSwapType(type: number): boolean {
  return type >= MAX_SWAPFILES;
}

interface SwapSlot {
  /** swap_map count: ptes (and the swap cache) referring to the slot. */
  count: number;
  data: Uint8Array;
}

/** One swap area (swap_info_struct) with its swap cache. */
export class SwapDevice {
  readonly type = 0;
  private readonly slots = new Map<number, SwapSlot>();
  private nextOffset = 1; // offset 0 holds the swap header on a real device
  /** Swap cache: slot → folio head. The cache holds one folio reference. */
  readonly cache = new Map<number, number>();
  /** Pages written out and read back, for statistics. */
  writes = 0;
  reads = 0;

  constructor(readonly pageSize: number) {}

  /** folio_alloc_swap / get_swap_page: a free slot holding a copy of `bytes`. */
  alloc(bytes: Uint8Array): number {
    const offset = this.nextOffset++;
    this.slots.set(offset, { count: 0, data: bytes.slice() });
    this.writes++;
    return offset;
  }

  has(offset: number): boolean {
    return this.slots.has(offset);
  }

  /** __swp_swapcount. */
  count(offset: number): number {
    return this.slots.get(offset)?.count ?? 0;
  }

  /** swap_duplicate: one more pte refers to the slot. */
  dup(offset: number): void {
    const s = this.slot(offset);
    s.count++;
  }

  /** swap_free: one pte fewer; the slot is released with the last reference when not cached. */
  free(offset: number): void {
    const s = this.slot(offset);
    if (s.count <= 0) throw new RangeError(`swap_free: slot ${offset} has no references left`);
    s.count--;
    if (s.count === 0 && !this.cache.has(offset)) this.slots.delete(offset);
  }

  data(offset: number): Uint8Array {
    this.reads++;
    return this.slot(offset).data;
  }

  /** Drop a slot that has no users and no cache entry left. */
  release(offset: number): void {
    const s = this.slots.get(offset);
    if (s && s.count === 0 && !this.cache.has(offset)) this.slots.delete(offset);
  }

  get usedSlots(): number {
    return this.slots.size;
  }

  private slot(offset: number): SwapSlot {
    const s = this.slots.get(offset);
    if (!s) throw new RangeError(`swap entry offset ${offset}: no such slot in swap area ${this.type}`);
    return s;
  }
}

const devices = new WeakMap<Machine, SwapDevice>();

/** The machine's swap area (created on first use). */
export function swapDevice(m: Machine): SwapDevice {
  let d = devices.get(m);
  if (!d) {
    d = new SwapDevice(m.geo.PAGE_SIZE);
    devices.set(m, d);
  }
  return d;
}

/**
 * folio_free_swap (mm/swapfile.c): take a folio out of the swap cache once no swap entry refers to
 * its slot any more — the cache's reference is dropped and the slot released. False (nothing done)
 * when the folio is not in the swap cache or entries still use its slot (folio_swapped).
 */
export function folioFreeSwap(m: Machine, folio: number): boolean {
  if (!m.meta.testFlag(folio, PG_swapcache)) return false;
  const dev = swapDevice(m);
  for (const [offset, f] of dev.cache) {
    if (f !== folio) continue;
    if (dev.count(offset) !== 0) return false;
    dev.cache.delete(offset);
    m.meta.clearFlag(folio, PG_swapcache);
    dev.release(offset);
    folioPut(m, folio);
    return true;
  }
  return false;
}
