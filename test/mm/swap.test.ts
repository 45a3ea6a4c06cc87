/**
 * Swap and migration entries (include/linux/swap.h, swapops.h), swap-out (try_to_unmap), swap-in
 * (do_swap_page), zap and fork of swap entries, page migration (try_to_migrate,
 * remove_migration_ptes) and /proc/pid/pagemap's view of swapped pages.
 *
 * Swap pte layouts, by hand:
 *  x86-64 (arch/x86/include/asm/pgtable_64.h): type in bits 63:59, the offset inverted in bits
 *    58:9 (SWP_OFFSET_FIRST_BIT = _PAGE_BIT_PROTNONE + 1 = 9), bits 8:0 clear.
 *  ARM64 (arch/arm64/include/asm/pgtable.h): type in bits 10:6, offset in bits 61:12.
 */
import { describe, expect, it } from 'vitest';
import {
  Machine,
  vmMmap,
  doMunmap,
  doMprotect,
  dupMm,
  exitMmap,
  createFile,
  doUserAddrFault,
  lookupEntry,
  swapOutFolio,
  swapDevice,
  migrateStart,
  migrateFinish,
  migrateFolio,
  readPagemap,
  mmapReadLock,
  mmapReadUnlock,
  MAX_SWAPFILES,
  SWP_HWPOISON,
  SWP_MIGRATION_READ,
  SWP_MIGRATION_READ_EXCLUSIVE,
  SWP_MIGRATION_WRITE,
  SWP_PTE_MARKER,
  PM_SWAP,
  PM_PRESENT,
  PM_MMAP_EXCLUSIVE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  PROT_READ,
  PROT_WRITE,
  MM_ANONPAGES,
  MM_FILEPAGES,
  MM_SWAPENTS,
  VM_FAULT_MAJOR,
  EINVAL,
  EAGAIN,
  type Migration,
  type MmStruct,
  type GeometryName,
} from '../../src/index';

const MiB = 2 ** 20;
const X86_PFN_MASK = ((1n << 52n) - 1n) & ~0xfffn;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const RW = PROT_READ | PROT_WRITE;

function machine(g: GeometryName = 'x86_64-4level'): Machine {
  return new Machine({ geometry: g, memSize: 64 * MiB });
}

function pte(mm: MmStruct, addr: number): bigint {
  const r = lookupEntry(mm, addr);
  expect(r.level).toBe('pte');
  return mm.machine.pgtable.val(r.ptr);
}
const lo = (v: bigint): number => Number(v & 0xffffffffn);
const hi = (v: bigint): number => Number(v >> 32n);

/** An anonymous page at a fixed address, written with `byte` everywhere; returns its frame. */
function anonPage(mm: MmStruct, addr: number, byte: number): number {
  expect(vmMmap(mm, addr, 4096, RW, ANON | MAP_FIXED)).toBe(addr);
  expect(doUserAddrFault(mm, addr, 'write').signal).toBeNull();
  const v = pte(mm, addr);
  const pa = mm.machine.bits.leafPfn('pte', lo(v), hi(v)) * 4096;
  new Uint8Array(mm.machine.mem.buffer, mm.machine.mem.offset(pa, 4096), 4096).fill(byte);
  return pa;
}

function bytes(m: Machine, pa: number, n = 4096): Uint8Array {
  return new Uint8Array(m.mem.buffer, m.mem.offset(pa, n), n).slice();
}

describe('include/linux/swap.h swap types (MAX_SWAPFILES_SHIFT 5, CONFIG_MIGRATION, MEMORY_FAILURE, PTE_MARKER, no DEVICE_PRIVATE)', () => {
  it('MAX_SWAPFILES = 32 - 0 - 3 - 1 - 1 = 27; HWPOISON 27; MIGRATION_READ 28, READ_EXCLUSIVE 29, WRITE 30; PTE_MARKER 31', () => {
    expect(MAX_SWAPFILES).toBe(27);
    expect(SWP_HWPOISON).toBe(27);
    expect(SWP_MIGRATION_READ).toBe(28);
    expect(SWP_MIGRATION_READ_EXCLUSIVE).toBe(29);
    expect(SWP_MIGRATION_WRITE).toBe(30);
    expect(SWP_PTE_MARKER).toBe(31);
  });
});

describe('swap-out (shrink_folio_list → try_to_unmap) and swap-in (do_swap_page)', () => {
  it('x86-64: the pte becomes type 0 / offset 1: ~1 in bits 58:9 = 0x07fffffffffffc00; MM_SWAPENTS counts it; the frame is freed', () => {
    const m = machine();
    const mm = m.newMm();
    const pa = anonPage(mm, 0x40000000, 0xc3);
    const free0 = m.frames.freeFrames;
    expect(swapOutFolio(m, pa)).toBe(0);
    const v = pte(mm, 0x40000000);
    expect(v).toBe(0x07fffffffffffc00n);
    expect(m.bits.ptePresent(lo(v), hi(v))).toBe(false);
    expect(m.bits.swapType(lo(v), hi(v))).toBe(0);
    expect(m.bits.swapOffset(lo(v), hi(v))).toBe(1);
    expect(mm.rss[MM_ANONPAGES]).toBe(0);
    expect(mm.rss[MM_SWAPENTS]).toBe(1);
    expect(m.frames.freeFrames).toBe(free0 + 1);
    expect(m.meta.getRefcount(pa)).toBe(0);
    expect(swapDevice(m).count(1)).toBe(1);
  });

  it('ARM64 4K: the swap pte of type 0 / offset 1 is 1 << 12 = 0x1000', () => {
    const m = machine('arm64-4k-48');
    const mm = m.newMm();
    const pa = anonPage(mm, 0x40000000, 1);
    expect(swapOutFolio(m, pa)).toBe(0);
    const v = pte(mm, 0x40000000);
    expect(v).toBe(0x1000n);
    expect(m.bits.swapOffset(lo(v), hi(v))).toBe(1);
  });

  it('a read swaps the page back in (VM_FAULT_MAJOR) with its data; exclusive, so mapped writable (P|RW|US|A|NX)', () => {
    const m = machine();
    const mm = m.newMm();
    const pa = anonPage(mm, 0x40000000, 0x3c);
    swapOutFolio(m, pa);
    const r = doUserAddrFault(mm, 0x40000010, 'read');
    expect(r.signal).toBeNull();
    expect(r.fault & VM_FAULT_MAJOR).toBe(VM_FAULT_MAJOR);
    const v = pte(mm, 0x40000000);
    expect(v & ~X86_PFN_MASK).toBe(0x8000000000000027n);
    const np = Number(v & X86_PFN_MASK);
    expect(bytes(m, np).every((b) => b === 0x3c)).toBe(true);
    expect(mm.rss[MM_ANONPAGES]).toBe(1);
    expect(mm.rss[MM_SWAPENTS]).toBe(0);
    expect(swapDevice(m).has(1)).toBe(false); // the slot was freed with its last user
    expect(m.meta.getRefcount(np)).toBe(1);
    expect(m.meta.getMapcount(np)).toBe(1);
  });

  it('a write swaps it in writable and dirty (P|RW|US|A|D|NX)', () => {
    const m = machine();
    const mm = m.newMm();
    const pa = anonPage(mm, 0x40000000, 0x11);
    swapOutFolio(m, pa);
    expect(doUserAddrFault(mm, 0x40000000, 'write').signal).toBeNull();
    const v = pte(mm, 0x40000000);
    expect(v & ~X86_PFN_MASK).toBe(0x8000000000000067n);
    expect(bytes(m, Number(v & X86_PFN_MASK), 1)[0]).toBe(0x11);
    expect(mm.rss[MM_ANONPAGES]).toBe(1);
  });

  it('swap-out refuses a page with an extra reference (-EBUSY is not 0) and a non-anonymous page (-EINVAL)', () => {
    const m = machine();
    const mm = m.newMm();
    const pa = anonPage(mm, 0x40000000, 0);
    m.meta.setRefcount(pa, 2); // a pin
    expect(swapOutFolio(m, pa)).toBeLessThan(0);
    m.meta.setRefcount(pa, 1);
    const f = createFile(m, 'f', 4096);
    const a = vmMmap(mm, 0, 4096, PROT_READ, MAP_SHARED, { file: f });
    doUserAddrFault(mm, a, 'read');
    expect(swapOutFolio(m, f.pages.get(0)!)).toBe(-EINVAL);
  });
});

describe('swap entries across fork, zap and exit', () => {
  it('a page shared after fork is swapped out of both; both get the same folio back through the swap cache', () => {
    const m = machine();
    const p = m.newMm('p');
    const pa = anonPage(p, 0x40000000, 0x99);
    const c = dupMm(p);
    expect(swapOutFolio(m, pa)).toBe(0);
    const dev = swapDevice(m);
    expect(dev.count(1)).toBe(2);
    expect(pte(p, 0x40000000)).toBe(0x07fffffffffffc00n);
    expect(pte(c, 0x40000000)).toBe(0x07fffffffffffc00n);
    expect(c.rss[MM_SWAPENTS]).toBe(1);
    expect(doUserAddrFault(p, 0x40000000, 'read').signal).toBeNull();
    const folio = Number(pte(p, 0x40000000) & X86_PFN_MASK);
    expect(dev.cache.get(1)).toBe(folio);
    expect(doUserAddrFault(c, 0x40000000, 'read').signal).toBeNull();
    expect(Number(pte(c, 0x40000000) & X86_PFN_MASK)).toBe(folio);
    expect(m.meta.getMapcount(folio)).toBe(2);
    expect(m.meta.getRefcount(folio)).toBe(2); // the swap cache let go with the slot's last user
    expect(dev.has(1)).toBe(false);
    // shared: neither pte is writable; the child's write copies
    const pv = pte(p, 0x40000000);
    expect(m.bits.pteWrite(lo(pv), hi(pv))).toBe(false);
    expect(doUserAddrFault(c, 0x40000000, 'write').signal).toBeNull();
    const cp = Number(pte(c, 0x40000000) & X86_PFN_MASK);
    expect(cp).not.toBe(folio);
    expect(bytes(m, cp, 1)[0]).toBe(0x99);
  });

  it('fork duplicates the slot count; munmap and exit drop it; the slot goes with the last', () => {
    const m = machine();
    const p = m.newMm('p');
    const pa = anonPage(p, 0x40000000, 7);
    swapOutFolio(m, pa);
    const dev = swapDevice(m);
    const c = dupMm(p);
    expect(dev.count(1)).toBe(2);
    expect(c.rss[MM_SWAPENTS]).toBe(1);
    expect(pte(c, 0x40000000)).toBe(0x07fffffffffffc00n);
    expect(doMunmap(p, 0x40000000, 4096)).toBe(0);
    expect(p.rss[MM_SWAPENTS]).toBe(0);
    expect(dev.count(1)).toBe(1);
    exitMmap(c);
    expect(dev.has(1)).toBe(false);
    expect(dev.usedSlots).toBe(0);
  });
});

describe('the swap cache after the last swap entry goes (mm/swap_state.c free_swap_cache, mm/swapfile.c folio_free_swap)', () => {
  /**
   * A page shared after fork is swapped out; the parent reads it back while the child still has
   * its entry, so the page enters the swap cache; the child exits: the slot has no entry left, but
   * the page is mapped, so free_swap_and_cache leaves it in the cache (TTRS_UNMAPPED).
   */
  function cachedAfterChildExit(): { m: Machine; p: MmStruct; folio: number; free0: number } {
    const m = machine();
    const free0 = m.frames.freeFrames;
    const p = m.newMm('p');
    const pa = anonPage(p, 0x40000000, 0x3c);
    const c = dupMm(p);
    expect(swapOutFolio(m, pa)).toBe(0);
    expect(doUserAddrFault(p, 0x40000000, 'read').signal).toBeNull();
    const folio = Number(pte(p, 0x40000000) & X86_PFN_MASK);
    const dev = swapDevice(m);
    expect(dev.cache.get(1)).toBe(folio);
    exitMmap(c);
    expect(dev.count(1)).toBe(0);
    expect(dev.cache.get(1)).toBe(folio); // still mapped by p: kept
    expect(m.meta.getRefcount(folio)).toBe(2); // p's pte + the swap cache
    return { m, p, folio, free0 };
  }

  it('unmapping the last pte takes the page out of the swap cache and releases the slot (free_pages_and_swap_cache)', () => {
    // Regression (found by test/prop): the page and its slot stayed allocated for ever.
    const { m, p, free0 } = cachedAfterChildExit();
    expect(doMunmap(p, 0x40000000, 4096)).toBe(0);
    const dev = swapDevice(m);
    expect(dev.cache.size).toBe(0);
    expect(dev.usedSlots).toBe(0);
    exitMmap(p);
    expect(m.frames.freeFrames).toBe(free0);
  });

  it('a write by the only mapper frees the swap slot and reuses the page in place (wp_can_reuse_anon_folio → folio_free_swap)', () => {
    // Regression (found by test/prop): the write copied the page and left the old one in the swap cache for ever.
    const { m, p, folio, free0 } = cachedAfterChildExit();
    expect(doUserAddrFault(p, 0x40000000, 'write').signal).toBeNull();
    const v = pte(p, 0x40000000);
    expect(Number(v & X86_PFN_MASK)).toBe(folio);
    expect(v & 0x42n).toBe(0x42n); // RW (bit 1) and D (bit 6)
    expect(m.meta.getRefcount(folio)).toBe(1);
    const dev = swapDevice(m);
    expect(dev.cache.size).toBe(0);
    expect(dev.usedSlots).toBe(0);
    exitMmap(p);
    expect(m.frames.freeFrames).toBe(free0);
  });

  it('a page in the swap cache migrates with it: the slot names the new folio, which holds the cache reference (__folio_migrate_mapping)', () => {
    // Regression (found by test/prop): the cache kept naming the old folio, which leaked with its reference.
    const m = machine();
    const free0 = m.frames.freeFrames;
    const p = m.newMm('p');
    const pa = anonPage(p, 0x40000000, 0x77);
    const c = dupMm(p);
    expect(swapOutFolio(m, pa)).toBe(0);
    expect(doUserAddrFault(p, 0x40000000, 'read').signal).toBeNull();
    const folio = Number(pte(p, 0x40000000) & X86_PFN_MASK);
    const dst = migrateFolio(m, folio);
    expect(dst).toBeGreaterThanOrEqual(0);
    expect(dst).not.toBe(folio);
    const dev = swapDevice(m);
    expect(dev.cache.get(1)).toBe(dst);
    expect(Number(pte(p, 0x40000000) & X86_PFN_MASK)).toBe(dst);
    expect(m.meta.getRefcount(dst)).toBe(2); // p's pte + the swap cache
    // The child's swap-in finds the new folio in the cache, with the data.
    expect(doUserAddrFault(c, 0x40000000, 'read').signal).toBeNull();
    expect(Number(pte(c, 0x40000000) & X86_PFN_MASK)).toBe(dst);
    expect(bytes(m, dst, 1)[0]).toBe(0x77);
    exitMmap(c);
    exitMmap(p);
    expect(dev.usedSlots).toBe(0);
    expect(m.frames.freeFrames).toBe(free0);
  });
});

describe('migration entries (mm/migrate.c)', () => {
  it('x86-64: a writable anonymous pte becomes SWP_MIGRATION_WRITE (30) with the pfn as offset; migrateFinish restores it on a new frame', () => {
    const m = machine();
    const mm = m.newMm();
    const pa = anonPage(mm, 0x40000000, 0x42);
    const pfn = pa / 4096;
    const mig = migrateStart(m, pa) as Migration;
    expect(typeof mig).toBe('object');
    const v = pte(mm, 0x40000000);
    // 30 = 0b11110 in bits 63:59; pfn inverted in bits 58:9
    const inverted = ((1n << 50n) - 1n) ^ BigInt(pfn);
    expect(v).toBe(0xf000000000000000n | (inverted << 9n));
    expect(m.bits.swapType(lo(v), hi(v))).toBe(SWP_MIGRATION_WRITE);
    expect(m.bits.swapOffset(lo(v), hi(v))).toBe(pfn);
    // a fault meanwhile waits (migration_entry_wait): nothing changes
    expect(doUserAddrFault(mm, 0x40000000, 'read')).toEqual({ fault: 0, signal: null });
    expect(pte(mm, 0x40000000)).toBe(v);
    const dst = migrateFinish(m, mig);
    expect(dst).toBeGreaterThanOrEqual(0);
    expect(dst).not.toBe(pa);
    const nv = pte(mm, 0x40000000);
    expect(Number(nv & X86_PFN_MASK)).toBe(dst);
    expect(nv & ~X86_PFN_MASK).toBe(0x8000000000000067n);
    expect(bytes(m, dst).every((b) => b === 0x42)).toBe(true);
    expect(m.meta.getRefcount(pa)).toBe(0);
    expect(m.meta.getRefcount(dst)).toBe(1);
    expect(m.meta.getMapcount(dst)).toBe(1);
    expect(mm.rss[MM_ANONPAGES]).toBe(1);
  });

  it('ARM64 4K: SWP_MIGRATION_READ_EXCLUSIVE (29) for an exclusive read-only page: 29 << 6 | pfn << 12', () => {
    const m = machine('arm64-4k-48');
    const mm = m.newMm();
    const pa = anonPage(mm, 0x40000000, 5);
    expect(doMprotect(mm, 0x40000000, 4096, PROT_READ)).toBe(0);
    const mig = migrateStart(m, pa) as Migration;
    const v = pte(mm, 0x40000000);
    expect(v).toBe((29n << 6n) | (BigInt(pa / 4096) << 12n));
    const dst = migrateFinish(m, mig);
    const nv = pte(mm, 0x40000000);
    expect(m.bits.leafPfn('pte', lo(nv), hi(nv)) * 4096).toBe(dst);
    expect(m.bits.pteWrite(lo(nv), hi(nv))).toBe(false);
  });

  it('SWP_MIGRATION_READ (28) for a page shared after fork; both ptes are restored to the new frame', () => {
    const m = machine();
    const p = m.newMm('p');
    const pa = anonPage(p, 0x40000000, 9);
    const c = dupMm(p);
    const mig = migrateStart(m, pa) as Migration;
    for (const mm of [p, c]) {
      const v = pte(mm, 0x40000000);
      expect(m.bits.swapType(lo(v), hi(v))).toBe(SWP_MIGRATION_READ);
    }
    const dst = migrateFinish(m, mig);
    expect(Number(pte(p, 0x40000000) & X86_PFN_MASK)).toBe(dst);
    expect(Number(pte(c, 0x40000000) & X86_PFN_MASK)).toBe(dst);
    expect(m.meta.getMapcount(dst)).toBe(2);
    expect(m.meta.getRefcount(dst)).toBe(2);
    expect(m.meta.getRefcount(pa)).toBe(0);
  });

  it('a page-cache page migrates too: the cache points at the new folio; MM_FILEPAGES unchanged', () => {
    const m = machine();
    const f = createFile(m, 'f', 4096);
    f.backing.set(0, new Uint8Array(4096).fill(0xee));
    const mm = m.newMm();
    const a = vmMmap(mm, 0, 4096, PROT_READ, MAP_SHARED, { file: f });
    doUserAddrFault(mm, a, 'read');
    const old = f.pages.get(0)!;
    const dst = migrateFolio(m, old);
    expect(dst).toBeGreaterThanOrEqual(0);
    expect(f.pages.get(0)).toBe(dst);
    expect(Number(pte(mm, a) & X86_PFN_MASK)).toBe(dst);
    expect(bytes(m, dst, 1)[0]).toBe(0xee);
    expect(m.meta.getRefcount(dst)).toBe(2);
    expect(m.meta.getRefcount(old)).toBe(0);
    expect(mm.rss[MM_FILEPAGES]).toBe(1);
  });

  it('munmap of a migration entry leaves the counters balanced', () => {
    const m = machine();
    const mm = m.newMm();
    const free0 = m.frames.freeFrames;
    const pa = anonPage(mm, 0x40000000, 0);
    const mig = migrateStart(m, pa) as Migration;
    expect(doMunmap(mm, 0x40000000, 4096)).toBe(0);
    expect(mm.rss[MM_ANONPAGES]).toBe(0);
    const dst = migrateFinish(m, mig);
    // nothing maps it any more: the new folio is freed again (-EAGAIN), the old one and the
    // page tables too — every frame is back
    expect(dst).toBe(-EAGAIN);
    expect(m.meta.getRefcount(pa)).toBe(0);
    expect(m.frames.freeFrames).toBe(free0);
  });
});

describe('pagemap (fs/proc/task_mmu.c, Documentation/admin-guide/mm/pagemap.rst)', () => {
  it('a swapped page reads PM_SWAP (bit 62) with type in bits 4:0 and offset from bit 5: 0x4000000000000020', () => {
    const m = machine();
    const mm = m.newMm();
    expect(vmMmap(mm, 0x40000000, 2 * 4096, RW, ANON | MAP_FIXED)).toBe(0x40000000);
    doUserAddrFault(mm, 0x40000000, 'write');
    doUserAddrFault(mm, 0x40001000, 'write');
    const pa = Number(pte(mm, 0x40000000) & X86_PFN_MASK);
    const pb = Number(pte(mm, 0x40001000) & X86_PFN_MASK);
    swapOutFolio(m, pa);
    mmapReadLock(mm);
    let pm: BigUint64Array;
    try {
      pm = readPagemap(mm, 0x40000000, 0x40003000);
    } finally {
      mmapReadUnlock(mm);
    }
    expect(PM_SWAP).toBe(1n << 62n);
    expect(pm[0]).toBe(0x4000000000000020n);
    // present, exclusive (mapcount 1), anonymous: bits 63 and 56 and the pfn
    expect(pm[1]).toBe(0x8100000000000000n | BigInt(pb / 4096));
    expect(pm[1]! & (PM_PRESENT | PM_MMAP_EXCLUSIVE)).toBe(PM_PRESENT | PM_MMAP_EXCLUSIVE);
    expect(pm[2]).toBe(0n);
  });
});
