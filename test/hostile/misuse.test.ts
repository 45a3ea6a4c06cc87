/**
 * API misuse (issue 8, item 3): the kernel's own answer to each — a negative errno where the kernel
 * function returns one, a KernelAssertionError (lockdep / mmap_assert_*) or FolioStateError /
 * FrameStateError (bad_page, VM_BUG_ON) naming the rule where the kernel would warn or BUG.
 *
 * Walk entry points (mm/pagewalk.c, Linux 6.18): walk_page_range_mm checks start >= end and !mm
 * (-EINVAL) BEFORE process_mm_walk_lock asserts the lock; walk_page_range_vma and walk_page_vma
 * assert the mmap lock and then the VMA lock the walk_lock mode asks for; walk_page_range_debug
 * (novma) on a user mm asserts the write lock; walk_kernel_page_table_range asserts init_mm's
 * mmap_lock, its _lockless variant asserts nothing (its callers exclude table freeing otherwise);
 * walk_page_mapping asserts i_mmap_rwsem (lockdep_assert_held); folio_walk_start the mmap lock.
 */
import { describe, expect, it } from 'vitest';
import {
  AddressSpace,
  EINVAL,
  ENOMEM,
  EPERM,
  FolioStateError,
  FolioWalk,
  FrameStateError,
  KernelAssertionError,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  Machine,
  PGWALK_RDLOCK,
  PGWALK_VMA_RDLOCK_VERIFY,
  PGWALK_WRLOCK,
  PGWALK_WRLOCK_VERIFY,
  PROT_READ,
  PROT_WRITE,
  VM_READ,
  doMprotect,
  doMunmap,
  doUserAddrFault,
  entryAlloc,
  folioAlloc,
  folioMapcount,
  folioPut,
  folioRefCount,
  folioWalkEnd,
  folioWalkStart,
  freeFolioFrames,
  mmapReadLock,
  mmapReadUnlock,
  mmapWriteLock,
  vmMmap,
  walkKernelPageTableRange,
  walkKernelPageTableRangeLockless,
  walkPageMapping,
  walkPageRange,
  walkPageRangeMm,
  walkPageRangeNovma,
  walkPageRangeVma,
  walkPageVma,
  type MmStruct,
  type MmWalkOps,
  type VmAreaStruct,
} from '../../src/index';

const KiB = 1024;

function setup() {
  const m = new Machine({ geometry: 'x86_64-4level', memSize: 4 * 2 ** 20 });
  const mm = m.newMm('p');
  const vma = mm.insertVma({ start: 0x40_0000, end: 0x60_0000, flags: VM_READ });
  const ptep = entryAlloc(mm, 0x40_0000, 'pte'); // a pte table under the VMA
  return { m, mm, vma, ptep };
}

/** Ops that record every callback, so a test can see that an assertion fired before any walking. */
function recorder(walkLock: 0 | 1 | 2 | 3 = PGWALK_RDLOCK) {
  const calls: string[] = [];
  const ops: MmWalkOps = {
    walkLock,
    pgdEntry: () => (calls.push('pgd'), 0),
    pteEntry: () => (calls.push('pte'), 0),
    pteHole: () => (calls.push('hole'), 0),
  };
  return { ops, calls };
}

function assertion(fn: () => unknown): KernelAssertionError {
  try {
    fn();
  } catch (e) {
    if (e instanceof KernelAssertionError) return e;
    throw e;
  }
  throw new Error('no KernelAssertionError');
}

// ---- walks without the lock they require -----------------------------------------------------------

describe('walks without the lock they require: KernelAssertionError naming the rule, before any callback', () => {
  const cases: [string, (s: ReturnType<typeof setup>, ops: MmWalkOps) => unknown, string][] = [
    ['walk_page_range (PGWALK_RDLOCK) without mmap_lock', (s, ops) => walkPageRange(s.mm, 0x40_0000, 0x40_2000, ops), 'mmap_assert_locked'],
    ['walk_page_range_mm without mmap_lock', (s, ops) => walkPageRangeMm(s.mm, 0x40_0000, 0x40_2000, ops), 'mmap_assert_locked'],
    ['walk_page_range_vma without mmap_lock', (s, ops) => walkPageRangeVma(s.vma, 0x40_0000, 0x40_2000, ops), 'mmap_assert_locked'],
    ['walk_page_vma without mmap_lock', (s, ops) => walkPageVma(s.vma, ops), 'mmap_assert_locked'],
    ['walk_page_range_debug (novma) on a user mm without the mmap write lock', (s, ops) => walkPageRangeNovma(s.mm, 0x40_0000, 0x40_2000, ops, null), 'mmap_assert_write_locked'],
    ['walk_page_range_debug (novma) on init_mm: walk_kernel_page_table_range asserts init_mm\'s lock', (s, ops) => walkPageRangeNovma(s.m.initMm, 0x40_0000, 0x40_2000, ops, s.mm.pgd), 'mmap_assert_locked'],
    ['walk_kernel_page_table_range without init_mm\'s mmap_lock', (s, ops) => walkKernelPageTableRange(s.m.initMm, 0x40_0000, 0x40_2000, ops, s.mm.pgd), 'mmap_assert_locked'],
    ['walk_page_mapping without i_mmap_rwsem', (_s, ops) => walkPageMapping(new AddressSpace('f'), 0n, 1n, ops), 'lockdep_assert_held'],
  ];
  it.each(cases)('%s', (_name, call, rule) => {
    const s = setup();
    const { ops, calls } = recorder();
    const e = assertion(() => call(s, ops));
    expect(e.rule).toBe(rule);
    expect(e.message.startsWith(`${rule}: `)).toBe(true);
    expect(calls).toEqual([]);
  });

  it('folio_walk_start without mmap_lock: mmap_assert_locked', () => {
    const s = setup();
    expect(assertion(() => folioWalkStart(new FolioWalk(), s.vma, 0x40_0000, 0)).rule).toBe('mmap_assert_locked');
  });

  it('folio_walk_end without a successful folio_walk_start: the lock it would release is not held', () => {
    const s = setup();
    expect(assertion(() => folioWalkEnd(new FolioWalk(), s.vma)).rule).toBe('folio_walk_end');
  });

  it('walk_lock modes (process_mm_walk_lock / process_vma_walk_lock): PGWALK_WRLOCK under the read lock, PGWALK_WRLOCK_VERIFY on a VMA not write-locked, PGWALK_VMA_RDLOCK_VERIFY on an unlocked VMA', () => {
    const s = setup();
    mmapReadLock(s.mm);
    expect(assertion(() => walkPageRange(s.mm, 0x40_0000, 0x40_2000, recorder(PGWALK_WRLOCK).ops)).rule).toBe('mmap_assert_write_locked');
    mmapReadUnlock(s.mm);
    mmapWriteLock(s.mm);
    expect(assertion(() => walkPageVma(s.vma, recorder(PGWALK_WRLOCK_VERIFY).ops)).rule).toBe('vma_assert_write_locked');
    const t = setup();
    expect(assertion(() => walkPageRangeVma(t.vma, 0x40_0000, 0x40_2000, recorder(PGWALK_VMA_RDLOCK_VERIFY).ops)).rule).toBe('vma_assert_locked');
  });

  it('walk_kernel_page_table_range_lockless asserts nothing: it walks without any lock (the caller\'s contract)', () => {
    const s = setup();
    const { ops, calls } = recorder();
    expect(walkKernelPageTableRangeLockless(s.m.initMm, 0x40_0000, 0x40_2000, ops, s.mm.pgd)).toBe(0);
    expect(calls).toEqual(['pgd', 'pte', 'pte']);
  });

  it('the lock held, the same calls walk (the control)', () => {
    const s = setup();
    mmapReadLock(s.mm);
    const { ops, calls } = recorder();
    expect(walkPageRange(s.mm, 0x40_0000, 0x40_2000, ops)).toBe(0);
    expect(walkPageVma(s.vma, recorder().ops)).toBe(0);
    expect(calls).toEqual(['pgd', 'pte', 'pte']);
  });
});

// ---- start >= end, ranges outside the VMA -----------------------------------------------------------

describe('start >= end and ranges outside the VMA: -EINVAL, checked before the lock as pagewalk.c does', () => {
  const cases: [string, (s: ReturnType<typeof setup>, a: number, b: number, ops: MmWalkOps) => number][] = [
    ['walk_page_range', (s, a, b, ops) => walkPageRange(s.mm, a, b, ops)],
    ['walk_page_range_mm', (s, a, b, ops) => walkPageRangeMm(s.mm, a, b, ops)],
    ['walk_page_range_vma', (s, a, b, ops) => walkPageRangeVma(s.vma, a, b, ops)],
    ['walk_page_range_debug (novma, user mm)', (s, a, b, ops) => walkPageRangeNovma(s.mm, a, b, ops, null)],
    ['walk_kernel_page_table_range_lockless', (s, a, b, ops) => walkKernelPageTableRangeLockless(s.m.initMm, a, b, ops, s.mm.pgd)],
  ];
  it.each(cases)('%s: start == end and start > end are -EINVAL, with no lock held and no callback', (_name, call) => {
    const s = setup();
    const { ops, calls } = recorder();
    expect(call(s, 0x40_1000, 0x40_1000, ops)).toBe(-EINVAL);
    expect(call(s, 0x40_2000, 0x40_1000, ops)).toBe(-EINVAL);
    expect(calls).toEqual([]);
  });

  it('walk_kernel_page_table_range: start >= end is -EINVAL once init_mm\'s lock is held (its assertion comes first)', () => {
    const s = setup();
    mmapReadLock(s.m.initMm);
    expect(walkKernelPageTableRange(s.m.initMm, 0x40_1000, 0x40_1000, {}, s.mm.pgd)).toBe(-EINVAL);
  });

  it('walk_page_range_vma: a range reaching outside the VMA is -EINVAL (start < vm_start || end > vm_end)', () => {
    const s = setup();
    mmapReadLock(s.mm);
    expect(walkPageRangeVma(s.vma, 0x3f_f000, 0x40_1000, {})).toBe(-EINVAL);
    expect(walkPageRangeVma(s.vma, 0x5f_f000, 0x60_1000, {})).toBe(-EINVAL);
  });

  it('walk_page_range with a NULL mm is -EINVAL', () => {
    expect(walkPageRange(null, 0x1000, 0x2000, {})).toBe(-EINVAL);
  });
});

// ---- unaligned and non-canonical ranges in walks ------------------------------------------------------

describe('unaligned and non-canonical walk ranges: walk_page_range does not check them, and neither does mmulab', () => {
  // mm/pagewalk.c (6.18) walk_pte_range_inner calls pte_entry(pte, addr, addr + PAGE_SIZE) and stops
  // when addr >= end - PAGE_SIZE; pte_offset_map(pmd, addr) picks the entry holding addr. So an
  // unaligned start keeps its offset in every callback, and the last `next` may pass `end`. mmulab
  // gives the same callbacks: the kernel API takes unaligned ranges, a model that refused them
  // would disagree with the kernel on the walks it accepts.
  it('unaligned start 0x400800: pte callbacks at 0x400800 and 0x401800 for the ptes of pages 0x400000 and 0x401000', () => {
    const s = setup();
    mmapReadLock(s.mm);
    const seen: number[][] = [];
    expect(walkPageRange(s.mm, 0x40_0800, 0x40_2000, { pteEntry: (pte, addr, next) => (seen.push([pte, addr, next]), 0) })).toBe(0);
    expect(seen).toEqual([
      [s.ptep, 0x40_0800, 0x40_1800],
      [s.ptep + 8, 0x40_1800, 0x40_2800],
    ]);
  });

  it('unaligned end 0x401800: the pte holding the last partial page is visited', () => {
    const s = setup();
    mmapReadLock(s.mm);
    const seen: number[] = [];
    expect(walkPageRange(s.mm, 0x40_0000, 0x40_1800, { pteEntry: (_p, addr) => (seen.push(addr), 0) })).toBe(0);
    expect(seen).toEqual([0x40_0000, 0x40_1000]);
  });

  it('x86-64 4-level non-canonical range [2^47, 2^64 - 2^47) of a user mm: no VMA there, so one pte_hole with depth -1', () => {
    const s = setup();
    mmapReadLock(s.mm);
    const holes: number[][] = [];
    expect(walkPageRange(s.mm, 2 ** 47, 2 ** 64 - 2 ** 47, { pteHole: (a, b, d) => (holes.push([a, b, d]), 0) })).toBe(0);
    expect(holes).toEqual([[2 ** 47, 2 ** 64 - 2 ** 47, -1]]);
  });

  it('walk_kernel_page_table_range_lockless over a non-canonical range: pgd_index masks, so VA 2^47 reads top-level slot 256 (the first kernel-half entry), as in the kernel', () => {
    const s = setup();
    const seen: number[][] = [];
    walkKernelPageTableRangeLockless(s.m.initMm, 2 ** 47, 2 ** 47 + 2 ** 39, { pgdEntry: (pgd, a, b) => (seen.push([pgd, a, b]), 0) }, s.mm.pgd);
    expect(seen).toEqual([[s.mm.pgd + 256 * 8, 2 ** 47, 2 ** 47 + 2 ** 39]]);
  });
});

// ---- munmap, mprotect, mmap with unaligned or non-canonical addresses -----------------------------------

describe('munmap / mprotect / mmap with unaligned or non-canonical addresses: the errno of mm/mmap.c, mm/vma.c and mm/mprotect.c', () => {
  function proc(): { m: Machine; mm: MmStruct; a: number } {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 8 * 2 ** 20 });
    const mm = m.newMm('p');
    const a = vmMmap(mm, 0, 16 * KiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    expect(a).toBeGreaterThan(0);
    return { m, mm, a };
  }
  const NONCANONICAL = 2 ** 47; // 0x800000000000: bits 63:47 not all equal (SDM §3.3.7.1)
  const KERNEL = 0xffff_8880_0000_0000;

  it('do_vmi_munmap: offset_in_page(start) → -EINVAL', () => {
    const { mm, a } = proc();
    expect(doMunmap(mm, a + 0x800, 4 * KiB)).toBe(-EINVAL);
    expect(mm.vmaList).toHaveLength(1);
  });

  it('do_vmi_munmap: start > TASK_SIZE (a non-canonical or kernel address) → -EINVAL; len > TASK_SIZE - start → -EINVAL; len 0 → -EINVAL', () => {
    const { m, mm, a } = proc();
    expect(doMunmap(mm, NONCANONICAL, 4 * KiB)).toBe(-EINVAL);
    expect(doMunmap(mm, KERNEL, 4 * KiB)).toBe(-EINVAL);
    expect(doMunmap(mm, m.TASK_SIZE - 4 * KiB, 8 * KiB)).toBe(-EINVAL);
    expect(doMunmap(mm, a, 0)).toBe(-EINVAL);
  });

  it('do_vmi_munmap: a negative start is an unsigned long above TASK_SIZE to the kernel → -EINVAL (not a walk from 0)', () => {
    const { mm, a } = proc();
    expect(doMunmap(mm, -4096, 4 * KiB)).toBe(-EINVAL);
    expect(doMunmap(mm, a + 0.5, 4 * KiB)).toBe(-EINVAL);
    expect(mm.vmaList).toHaveLength(1);
  });

  it('do_mprotect_pkey: start & ~PAGE_MASK → -EINVAL; len 0 → 0; no VMA at a non-canonical or kernel address → -ENOMEM (mprotect has no TASK_SIZE check)', () => {
    const { mm, a } = proc();
    expect(doMprotect(mm, a + 0x10, 4 * KiB, PROT_READ)).toBe(-EINVAL);
    expect(doMprotect(mm, a, 0, PROT_READ)).toBe(0);
    expect(doMprotect(mm, NONCANONICAL, 4 * KiB, PROT_READ)).toBe(-ENOMEM);
    expect(doMprotect(mm, KERNEL, 4 * KiB, PROT_READ)).toBe(-ENOMEM);
    // end = start + len wraps in the kernel (end <= start → -ENOMEM); mmulab's larger number finds no VMA: the same answer.
    expect(doMprotect(mm, 2 ** 64 - 4096, 8 * KiB, PROT_READ)).toBe(-ENOMEM);
  });

  it('mmap MAP_FIXED (__get_unmapped_area): past TASK_SIZE → -ENOMEM before alignment; unaligned → -EINVAL; below mmap_min_addr → -EPERM (cap_mmap_addr without CAP_SYS_RAWIO)', () => {
    const { mm } = proc();
    const fixed = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    expect(vmMmap(mm, 0x1000_0800, 4 * KiB, PROT_READ, fixed)).toBe(-EINVAL);
    expect(vmMmap(mm, NONCANONICAL, 4 * KiB, PROT_READ, fixed)).toBe(-ENOMEM);
    expect(vmMmap(mm, NONCANONICAL + 0x800, 4 * KiB, PROT_READ, fixed)).toBe(-ENOMEM);
    expect(vmMmap(mm, KERNEL, 4 * KiB, PROT_READ, fixed)).toBe(-ENOMEM);
    expect(vmMmap(mm, -4096, 4 * KiB, PROT_READ, fixed)).toBe(-ENOMEM);
    expect(vmMmap(mm, 0x1000, 4 * KiB, PROT_READ, fixed)).toBe(-EPERM); // vm.mmap_min_addr = 65536
    expect(vmMmap(mm, 0x1_0000, 4 * KiB, PROT_READ, fixed)).toBe(0x1_0000); // the control
  });

  it('mmap without MAP_FIXED: an unaligned or non-canonical hint is only a hint (round_hint_to_min / get_unmapped_area pick a valid address)', () => {
    const { m, mm } = proc();
    for (const hint of [0x1000_0800, NONCANONICAL, KERNEL]) {
      const r = vmMmap(mm, hint, 4 * KiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
      expect(r % 4096).toBe(0);
      expect(r).toBeGreaterThanOrEqual(0x1_0000);
      expect(r + 4 * KiB).toBeLessThanOrEqual(m.TASK_SIZE);
    }
  });
});

// ---- frees of frames still mapped, double frees ----------------------------------------------------------

describe('frees of frames still mapped or referenced, and double frees: the page allocator\'s checks', () => {
  /** A private anonymous page written once: one pte maps it, the mapping holds its one reference. */
  function mappedFolio(): { m: Machine; mm: MmStruct; vma: VmAreaStruct; folio: number } {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 8 * 2 ** 20 });
    const mm = m.newMm('p');
    const a = vmMmap(mm, 0, 4 * KiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    doUserAddrFault(mm, a, 'write');
    const vma = mm.findVma(a)!;
    mmapReadLock(mm);
    const fw = new FolioWalk();
    const folio = folioWalkStart(fw, vma, a, 0)!;
    folioWalkEnd(fw, vma);
    mmapReadUnlock(mm);
    expect([folioRefCount(m, folio), folioMapcount(m, folio)]).toEqual([1, 1]);
    return { m, mm, vma, folio };
  }

  it('folio_put of the last reference of a folio still mapped: "Bad page state (nonzero mapcount)" (mm/page_alloc.c bad_page), the frames are not freed', () => {
    const { m, folio } = mappedFolio();
    const free = m.frames.freeFrames;
    expect(() => folioPut(m, folio)).toThrow(FolioStateError);
    expect(m.frames.freeFrames).toBe(free);
    expect(m.frames.isFree(folio)).toBe(false);
  });

  it('freeing a mapped folio\'s frames directly (freeFolioFrames): the same Bad page state check, before anything changes', () => {
    const { m, folio } = mappedFolio();
    expect(() => freeFolioFrames(m, folio)).toThrow(/^Bad page state \(nonzero mapcount\): freeing folio at 0x[0-9a-f]+ that is still mapped \(mapcount 1\)$/);
    expect([folioRefCount(m, folio), folioMapcount(m, folio), m.frames.isFree(folio)]).toEqual([1, 1, false]);
  });

  it('double free through folio_put: the second put finds refcount 0 (VM_BUG_ON: put_page on a page with refcount 0)', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 4 * 2 ** 20 });
    const f = folioAlloc(m, 0);
    folioPut(m, f);
    expect(m.frames.isFree(f)).toBe(true);
    expect(() => folioPut(m, f)).toThrow(/folio_put at 0x[0-9a-f]+: refcount 0 would drop below zero/);
  });

  it('double free at the buddy allocator (__free_one_page on a free block): FrameStateError naming the address', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 4 * 2 ** 20 });
    const pa = m.frames.alloc(0);
    m.frames.free(pa, 0);
    expect(() => m.frames.free(pa, 0)).toThrow(FrameStateError);
    expect(() => m.frames.free(pa, 0)).toThrow(new RegExp(`double free of 0x${pa.toString(16)}: the frame is already free`));
  });

  it('freeing with another order than the allocation\'s: FrameStateError naming both orders', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 4 * 2 ** 20 });
    const pa = m.frames.alloc(1);
    expect(() => m.frames.free(pa, 0)).toThrow(/it was allocated with order 1/);
  });
});
