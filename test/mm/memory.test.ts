/**
 * Tests of the mm/memory.c primitives (src/mm/memory.ts) and access_remote_vm (src/mm/gup.ts).
 *
 * Every expectation comes from a rule — the kernel-doc of mm/memory.c (the seed text) or Linux
 * 6.18's code of mm/memory.c, mm/gup.c and mm/mmu_gather.c — and is computed by hand here: pte
 * values from the bit positions (x86-64 _PAGE_SPECIAL = bit 9, arch/x86/include/asm/pgtable_types.h;
 * ARM64 PTE_SPECIAL = bit 56, arch/arm64/include/asm/pgtable-prot.h), page indices and ranges from
 * the geometry. After every operation a balance check walks every mapping and compares it with
 * each folio's refcount and mapcount; at the end every process exits and the allocator must be
 * back where it began, the page cache (and pages the test itself holds) excepted.
 */
import { describe, expect, it } from 'vitest';
import {
  AddressSpace,
  EBUSY,
  EFAULT,
  EINVAL,
  ENOMEM,
  FOLL_FORCE,
  FOLL_WRITE,
  KernelAssertionError,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  MM_ANONPAGES,
  MM_FILEPAGES,
  Machine,
  PG_pgtable,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  VM_DONTDUMP,
  VM_DONTEXPAND,
  VM_FAULT_NOPAGE,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_IO,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_MIXEDMAP,
  VM_PFNMAP,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
  accessRemoteVm,
  createFile,
  doUserAddrFault,
  dupMm,
  entryAlloc,
  exitMmap,
  folioAlloc,
  folioPut,
  followPfn,
  followPfnmapEnd,
  followPfnmapStart,
  lookupEntry,
  mmapReadLock,
  mmapReadUnlock,
  mmapWriteLock,
  mmapWriteUnlock,
  remapPfnRange,
  tlbFinishMmu,
  tlbGatherMmu,
  unmapMappingPages,
  unmapMappingRange,
  unmapVmas,
  vmGetPageProt,
  vmInsertPage,
  vmIomapMemory,
  vmMmap,
  vmfInsertPfn,
  vmfInsertPfnProt,
  zapPageRange,
  zapPageRangeSingle,
  zapVmaPages,
  zapVmaPtes,
  type FollowPfnmapArgs,
  type GeometryName,
  type MmStruct,
  type TlbFlushEvent,
  type VmAreaStruct,
} from '../../src/index';
import { checkBalance } from '../support/invariants';

/** One geometry per page size, and both architectures. */
const GEOMETRIES: readonly GeometryName[] = ['x86_64-4level', 'arm64-4k-48', 'arm64-16k-47', 'arm64-64k-42'];
/** 4 KiB frames: the allocator and the metadata count in these. */
const FRAME = 4096;
const MiB = 2 ** 20;
/** A user address below every mmap_base and TASK_SIZE here, aligned for every PAGE_SIZE and PMD_SIZE (512 MiB on 64K). */
const BASE = 0x4000_0000;

const RW = PROT_READ | PROT_WRITE;
/** A driver's shared read/write mapping (what mmap of a device node gives f_op->mmap). */
const DEV_SHARED = VM_READ | VM_WRITE | VM_SHARED | VM_MAYREAD | VM_MAYWRITE | VM_MAYSHARE;
/** A private writable mapping: is_cow_mapping() — VM_MAYWRITE without VM_SHARED. */
const DEV_PRIVATE = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE;

function lo(v: bigint): number {
  return Number(v & 0xffffffffn);
}
function hi(v: bigint): number {
  return Number((v >> 32n) & 0xffffffffn);
}

/** The pte value mapping addr, 0n when no pte table reaches it. */
function pteVal(mm: MmStruct, addr: number): bigint {
  const r = lookupEntry(mm, addr);
  return r.level === 'pte' ? mm.machine.pgtable.val(r.ptr) : 0n;
}

/** Physical address of the page a present pte maps at addr, or -1. */
function mappedPa(mm: MmStruct, addr: number): number {
  const m = mm.machine;
  const v = pteVal(mm, addr);
  if (v === 0n || !m.bits.ptePresent(lo(v), hi(v))) return -1;
  return m.bits.leafPfn('pte', lo(v), hi(v)) * m.geo.PAGE_SIZE;
}

/** The special-pte software bit, by hand: x86-64 _PAGE_BIT_SPECIAL = 9; ARM64 PTE_SPECIAL = bit 56. */
function specialBit(m: Machine): bigint {
  return m.geo.arch === 'x86_64' ? 1n << 9n : 1n << 56n;
}

/** A driver VMA made as f_op->mmap would see it (no fault handler: vm_ops is the driver's). */
function deviceVma(mm: MmStruct, start: number, pages: number, flags: number, pgoff = 0): VmAreaStruct {
  const m = mm.machine;
  const vma = mm.insertVma({ start, end: start + pages * m.geo.PAGE_SIZE, flags, pgoff, name: 'dev' });
  vma.vmOps = 'device';
  vma.vmPageProt = vmGetPageProt(m, flags);
  return vma;
}

/** Collect every TLB shootdown the machine issues. */
function flushLog(m: Machine): TlbFlushEvent[] {
  const log: TlbFlushEvent[] = [];
  m.tlbFlushListeners.push((ev) => log.push(ev));
  return log;
}

/** Frames (4 KiB) per page of this machine. */
function fpp(m: Machine): number {
  return m.geo.PAGE_SIZE / FRAME;
}

/** exit_mmap every process; the allocator must be back to free0 less the page cache and held pages. */
function exitAll(m: Machine, free0: number, mms: readonly MmStruct[], files: readonly AddressSpace[] = [], heldPages = 0): void {
  for (const mm of mms) exitMmap(mm);
  let cachePages = 0;
  for (const f of files) cachePages += f.pages.size;
  checkBalance(m, [], files);
  expect(m.frames.freeFrames).toBe(free0 - (cachePages + heldPages) * fpp(m));
}

/** Three adjacent anonymous VMAs of 4 pages at BASE that cannot merge (different protections), every page written. */
function threeVmas(m: Machine, mm: MmStruct): [VmAreaStruct, VmAreaStruct, VmAreaStruct] {
  const ps = m.geo.PAGE_SIZE;
  const prots = [RW, RW | PROT_EXEC, RW];
  for (let i = 0; i < 3; i++) {
    expect(vmMmap(mm, BASE + i * 4 * ps, 4 * ps, prots[i]!, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)).toBe(BASE + i * 4 * ps);
  }
  for (let p = 0; p < 12; p++) expect(doUserAddrFault(mm, BASE + p * ps, 'write').signal).toBeNull();
  const v = mm.vmaList.filter((x) => x.vmStart >= BASE && x.vmEnd <= BASE + 12 * ps);
  expect(v.length).toBe(3);
  return [v[0]!, v[1]!, v[2]!];
}

/** Which of the 12 pages at BASE are still mapped (1) or not (0). */
function mapPattern(mm: MmStruct): string {
  const ps = mm.machine.geo.PAGE_SIZE;
  let s = '';
  for (let p = 0; p < 12; p++) s += mappedPa(mm, BASE + p * ps) >= 0 ? '1' : '0';
  return s;
}

// ---- zapping ------------------------------------------------------------------------------------------

describe('memory.c zapping: zap_page_range, zap_page_range_single, zap_vma_pages, zap_vma_ptes', () => {
  for (const g of GEOMETRIES) {
    it(`${g}: memory.c zap_page_range: every VMA from the given one that meets [start, start + size) loses its pages there`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      const [v1, v2] = threeVmas(m, mm);
      expect(mm.rss[MM_ANONPAGES]).toBe(12);
      const log = flushLog(m);
      const before = m.frames.freeFrames;
      // [BASE + 2 pages, BASE + 10 pages): v1's pages 2-3, all of v2, v3's pages 0-1.
      zapPageRange(v1, BASE + 2 * ps, 8 * ps);
      expect(mapPattern(mm)).toBe('110000000011');
      expect(mm.rss[MM_ANONPAGES]).toBe(4);
      expect(m.frames.freeFrames).toBe(before + 8 * fpp(m));
      // One gather over the whole range: one shootdown of exactly the cleared ptes.
      expect(log.map((e) => [e.kind, e.start, e.end])).toEqual([['range', BASE + 2 * ps, BASE + 10 * ps]]);
      checkBalance(m, [mm]);
      // Starting from v2, a range that begins in v1 leaves v1 alone: the walk starts at the given VMA.
      zapPageRange(v2, BASE, 12 * ps);
      expect(mapPattern(mm)).toBe('110000000000');
      checkBalance(m, [mm]);
      exitAll(m, free0, [mm]);
    });

    it(`${g}: memory.c zap_page_range_single: the range is clipped to the one VMA (the neighbour keeps its pages)`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      const [v1] = threeVmas(m, mm);
      zapPageRangeSingle(v1, BASE + 2 * ps, 6 * ps);
      expect(mapPattern(mm)).toBe('110011111111');
      expect(mm.rss[MM_ANONPAGES]).toBe(10);
      checkBalance(m, [mm]);
      exitAll(m, free0, [mm]);
    });

    it(`${g}: memory.c zap_vma_pages: the whole VMA, nothing around it`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const mm = m.newMm('p');
      const [, v2] = threeVmas(m, mm);
      zapVmaPages(v2);
      expect(mapPattern(mm)).toBe('111100001111');
      expect(mm.rss[MM_ANONPAGES]).toBe(8);
      checkBalance(m, [mm]);
      exitAll(m, free0, [mm]);
    });

    it(`${g}: memory.c zap_vma_ptes: only VM_PFNMAP VMAs (a normal VMA keeps its ptes); the whole range inside the VMA, otherwise nothing happens`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      const [v1] = threeVmas(m, mm);
      zapVmaPtes(v1, BASE, 4 * ps);
      expect(mapPattern(mm)).toBe('111111111111');
      // A pfn map of 4 pages of device memory above RAM.
      const dev = BASE + 64 * ps;
      const pfn = Math.ceil((m.mem.physBase + m.mem.size) / ps) + 0x100;
      mmapWriteLock(mm);
      const vma = deviceVma(mm, dev, 4, DEV_SHARED);
      expect(remapPfnRange(vma, dev, pfn, 4 * ps, vma.vmPageProt)).toBe(0);
      mmapWriteUnlock(mm);
      const mapped = (): number[] => [0, 1, 2, 3].map((i) => mappedPa(mm, dev + i * ps));
      const all = [0, 1, 2, 3].map((i) => (pfn + i) * ps);
      expect(mapped()).toEqual(all);
      zapVmaPtes(vma, dev + 2 * ps, 3 * ps); // one page past vm_end
      expect(mapped()).toEqual(all);
      zapVmaPtes(vma, dev - ps, 2 * ps); // one page before vm_start
      expect(mapped()).toEqual(all);
      zapVmaPtes(vma, dev + ps, 2 * ps);
      expect(mapped()).toEqual([all[0], -1, -1, all[3]]);
      checkBalance(m, [mm]);
      exitAll(m, free0, [mm]);
    });
  }
});

// ---- unmap_vmas and the mmu_gather ----------------------------------------------------------------------

describe('memory.c zap_pmd_range on a transparent huge page', () => {
  // arm64-16k-36 has two levels: the pmd is folded into the pgd (include/asm-generic/pgtable-nopmd.h)
  // and a 32 MiB THP lives in that one real entry; pmd_trans_huge still tests it.
  for (const g of ['x86_64-4level', 'arm64-4k-48', 'arm64-16k-36'] as const) {
    it(`${g}: memory.c zap_pmd_range: part of an anonymous THP — the pmd is split, only the ptes of the range go; the whole THP — the pmd goes and the folio is freed`, () => {
      const m = new Machine({ geometry: g, memSize: 128 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const P = m.geo.PMD_SIZE;
      const nr = P / ps; // 512, 512, 2048
      const mm = m.newMm('p');
      const t = vmMmap(mm, 0, 2 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS);
      expect(t % P).toBe(0);
      for (const at of [t, t + P]) expect(doUserAddrFault(mm, at, 'write').signal).toBeNull();
      const heads = [t, t + P].map((at) => {
        const r = lookupEntry(mm, at);
        expect(r.level).toBe('pmd');
        return m.bits.leafPfn('pmd', m.pgtable.lo(r.ptr), m.pgtable.hi(r.ptr)) * ps;
      });
      expect(mm.rss[MM_ANONPAGES]).toBe(2 * nr);
      checkBalance(m, [mm]);
      // access_remote_vm through a pmd leaf reaches the right page of the folio.
      expect(accessRemoteVm(mm, t + 3 * ps + 10, new Uint8Array([0xa5, 0x5a]), 2, FOLL_WRITE)).toBe(2);
      expect([...new Uint8Array(m.mem.buffer, m.mem.offset(heads[0]! + 3 * ps + 10, 2), 2)]).toEqual([0xa5, 0x5a]);
      expect(lookupEntry(mm, t).level).toBe('pmd');
      const vma = mm.vmaLookup(t)!;
      zapPageRangeSingle(vma, t + 5 * ps, 3 * ps);
      expect(lookupEntry(mm, t).level).toBe('pte');
      for (let i = 0; i < nr; i++) expect(mappedPa(mm, t + i * ps)).toBe(i >= 5 && i < 8 ? -1 : heads[0]! + i * ps);
      expect(mm.rss[MM_ANONPAGES]).toBe(2 * nr - 3);
      // nr - 3 pte mappings, one reference each; no entire mapping left.
      expect(m.meta.getRefcount(heads[0]!)).toBe(nr - 3);
      checkBalance(m, [mm]);
      // The second THP whole: its pmd is cleared, and after the flush the folio goes back.
      const before = m.frames.freeFrames;
      zapPageRangeSingle(vma, t + P, P);
      expect(lookupEntry(mm, t + P).level).toBe('none');
      expect(mm.rss[MM_ANONPAGES]).toBe(nr - 3);
      expect(m.meta.getRefcount(heads[1]!)).toBe(0);
      // The folio and the pte table deposited with it.
      expect(m.frames.freeFrames).toBe(before + (nr + 1) * fpp(m));
      checkBalance(m, [mm]);
      exitAll(m, free0, [mm]);
    });
  }
});

describe('memory.c unmap_vmas with an mmu_gather (include/asm-generic/tlb.h, mm/mmu_gather.c)', () => {
  for (const g of GEOMETRIES) {
    it(`${g}: memory.c unmap_vmas: pages stay referenced until tlb_finish_mmu; the caller does the final flush, which covers the unmapped range`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      const [v1, v2, v3] = threeVmas(m, mm);
      const pages = [...Array(12).keys()].map((p) => mappedPa(mm, BASE + p * ps));
      const log = flushLog(m);
      const before = m.frames.freeFrames;
      const tlb = tlbGatherMmu(mm);
      // [BASE + 1 page, BASE + 9 pages) over the sorted list.
      unmapVmas(tlb, [v1, v2, v3], BASE + ps, BASE + 9 * ps);
      expect(mapPattern(mm)).toBe('100000000111');
      expect(mm.rss[MM_ANONPAGES]).toBe(4);
      // Nothing is freed and nothing flushed yet: a CPU may still hold the old translations.
      expect(log).toEqual([]);
      expect(m.frames.freeFrames).toBe(before);
      for (let p = 1; p < 9; p++) {
        expect(m.meta.getRefcount(pages[p]!)).toBe(1);
        expect(m.meta.getMapcount(pages[p]!)).toBe(0);
        expect(m.frames.isFree(pages[p]!)).toBe(false);
      }
      tlbFinishMmu(tlb);
      expect(log.map((e) => [e.kind, e.start, e.end, e.asid])).toEqual([['range', BASE + ps, BASE + 9 * ps, mm.asid]]);
      expect(m.frames.freeFrames).toBe(before + 8 * fpp(m));
      for (let p = 1; p < 9; p++) expect(m.meta.getRefcount(pages[p]!)).toBe(0);
      checkBalance(m, [mm]);
      exitAll(m, free0, [mm]);
    });

    it(`${g}: memory.c unmap_vmas: "The VMA list must be sorted in ascending virtual address order" (an unsorted list is refused)`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      const [v1, v2] = threeVmas(m, mm);
      const tlb = tlbGatherMmu(mm);
      expect(() => unmapVmas(tlb, [v2, v1], BASE, BASE + 12 * ps)).toThrow(KernelAssertionError);
      tlbFinishMmu(tlb);
      expect(mapPattern(mm)).toBe('111111111111');
      checkBalance(m, [mm]);
      exitAll(m, free0, [mm]);
    });
  }

  it('x86_64-4level: mm/mmu_gather.c __tlb_remove_folio_pages_size: a full batch forces a flush before unmap_vmas returns', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 128 * MiB });
    m.thp.enabled = 'never'; // order-0 pages only: one gather slot per page
    const free0 = m.frames.freeFrames;
    const ps = 4096;
    const mm = m.newMm('p');
    const n = 10_100;
    const a = vmMmap(mm, 0, n * ps, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    for (let p = 0; p < n; p++) expect(doUserAddrFault(mm, a + p * ps, 'write').signal).toBeNull();
    const vma = mm.vmaLookup(a)!;
    const log = flushLog(m);
    const before = m.frames.freeFrames;
    const tlb = tlbGatherMmu(mm);
    unmapVmas(tlb, vma, a, a + n * ps);
    // MAX_GATHER_BATCH = (4096 - 16) / 8 = 510 pointers per batch page; MAX_GATHER_BATCH_COUNT =
    // 10000 / 510 = 19 batch pages, plus the 8-slot local batch: at most 8 + 19 * 510 = 9698 pages
    // wait (6.18 keeps a slot free in each batch for a page + nr_pages pair: 7 + 19 * 509 = 9678).
    // 10100 pages overflow it, so exactly one forced flush happens inside unmap_vmas, and it frees
    // what was gathered so far: between 9678 and 9698 pages, never more than ~10000.
    expect(log.length).toBe(1);
    expect(log[0]!.kind).toBe('range');
    expect(log[0]!.start).toBe(a);
    const early = (m.frames.freeFrames - before) / fpp(m);
    expect(early).toBeGreaterThanOrEqual(9678);
    expect(early).toBeLessThanOrEqual(9698);
    expect(log[0]!.end).toBe(a + early * ps);
    tlbFinishMmu(tlb);
    expect(log.length).toBe(2);
    expect([log[1]!.start, log[1]!.end]).toEqual([a + early * ps, a + n * ps]);
    expect(m.frames.freeFrames - before).toBe(n * fpp(m));
    exitAll(m, free0, [mm]);
  });
});

// ---- vm_insert_page -------------------------------------------------------------------------------------

describe('memory.c vm_insert_page', () => {
  for (const g of GEOMETRIES) {
    it(`${g}: memory.c vm_insert_page: -EFAULT outside the VMA; takes a reference, sets VM_MIXEDMAP, maps with vm_page_prot; mapcount and MM_FILEPAGES +1; zapping drops both again`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      const page = folioAlloc(m, 0); // the driver's page: one reference, its own
      mmapWriteLock(mm);
      const vma = deviceVma(mm, BASE, 4, DEV_SHARED);
      expect(vmInsertPage(vma, BASE - ps, page)).toBe(-EFAULT);
      expect(vmInsertPage(vma, BASE + 4 * ps, page)).toBe(-EFAULT);
      expect(vma.vmFlags & VM_MIXEDMAP).toBe(0); // the address is checked before anything changes
      expect(vmInsertPage(vma, BASE + ps, page)).toBe(0);
      mmapWriteUnlock(mm);
      expect((vma.vmFlags & VM_MIXEDMAP) >>> 0).toBe(VM_MIXEDMAP);
      expect(m.meta.getRefcount(page)).toBe(2);
      expect(m.meta.getMapcount(page)).toBe(1);
      expect(mm.rss[MM_FILEPAGES]).toBe(1);
      expect(mm.rss[MM_ANONPAGES]).toBe(0);
      // pte = the page's address | vm_page_prot, and not special: the page is counted.
      const v = pteVal(mm, BASE + ps);
      expect(v).toBe(BigInt(page) | vma.vmPageProt);
      expect(v & specialBit(m)).toBe(0n);
      checkBalance(m, [mm], [], new Map([[page, 1]]));
      // -EBUSY on an occupied pte; nothing changes.
      expect(vmInsertPage(vma, BASE + ps, page)).toBe(-EBUSY);
      expect(m.meta.getRefcount(page)).toBe(2);
      expect(m.meta.getMapcount(page)).toBe(1);
      zapVmaPages(vma);
      expect(mappedPa(mm, BASE + ps)).toBe(-1);
      expect(m.meta.getRefcount(page)).toBe(1);
      expect(m.meta.getMapcount(page)).toBe(0);
      expect(mm.rss[MM_FILEPAGES]).toBe(0);
      // Mapped again (VM_MIXEDMAP is set now: no lock needed), then exit: the driver still owns it.
      expect(vmInsertPage(vma, BASE, page)).toBe(0);
      exitAll(m, free0, [mm], [], 1);
      expect(m.meta.getRefcount(page)).toBe(1);
      folioPut(m, page);
      expect(m.frames.freeFrames).toBe(free0);
    });

    it(`${g}: memory.c vm_insert_page: without VM_MIXEDMAP the mmap lock must be held for write (BUG_ON(mmap_read_trylock))`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const mm = m.newMm('p');
      const page = folioAlloc(m, 0);
      mmapWriteLock(mm);
      const vma = deviceVma(mm, BASE, 4, DEV_SHARED);
      mmapWriteUnlock(mm);
      expect(() => vmInsertPage(vma, BASE, page)).toThrow(KernelAssertionError);
      mmapReadLock(mm);
      expect(() => vmInsertPage(vma, BASE, page)).toThrow(KernelAssertionError);
      mmapReadUnlock(mm);
      expect(vma.vmFlags & VM_MIXEDMAP).toBe(0);
      expect(m.meta.getRefcount(page)).toBe(1);
      // BUG_ON(vma->vm_flags & VM_PFNMAP): a pfn map cannot become a mixed map, even under the lock.
      mmapWriteLock(mm);
      const pfnmap = deviceVma(mm, BASE + 8 * m.geo.PAGE_SIZE, 4, DEV_SHARED | VM_PFNMAP);
      expect(() => vmInsertPage(pfnmap, pfnmap.vmStart, page)).toThrow(KernelAssertionError);
      mmapWriteUnlock(mm);
      expect(pfnmap.vmFlags & VM_MIXEDMAP).toBe(0);
      expect(mappedPa(mm, pfnmap.vmStart)).toBe(-1);
      // With VM_MIXEDMAP already set (a fault handler's case), the read lock is enough.
      mmapWriteLock(mm);
      vma.vmFlags = (vma.vmFlags | VM_MIXEDMAP) >>> 0;
      mmapWriteUnlock(mm);
      mmapReadLock(mm);
      expect(vmInsertPage(vma, BASE, page)).toBe(0);
      mmapReadUnlock(mm);
      checkBalance(m, [mm], [], new Map([[page, 1]]));
    });

    it(`${g}: memory.c validate_page_before_insert: anonymous pages and page-table pages are refused (-EINVAL); a page of a compound page is accepted`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      const anon = vmMmap(mm, 0, 2 * ps, RW, MAP_PRIVATE | MAP_ANONYMOUS);
      expect(doUserAddrFault(mm, anon, 'write').signal).toBeNull();
      const anonPage = mappedPa(mm, anon);
      mmapWriteLock(mm);
      const vma = deviceVma(mm, BASE, 8, DEV_SHARED);
      expect(vmInsertPage(vma, BASE, anonPage)).toBe(-EINVAL);
      // A page-table page (page_has_type): Linux's have a reference of their own (pagetable_alloc);
      // give this one that reference so only the type check can refuse it.
      const table = m.allocPgtable();
      expect(m.meta.testFlag(table, PG_pgtable)).toBe(true);
      expect(vmInsertPage(vma, BASE, table)).toBe(-EINVAL); // refcount 0 here anyway
      m.meta.setRefcount(table, 1);
      expect(vmInsertPage(vma, BASE, table)).toBe(-EINVAL);
      m.meta.setRefcount(table, 0);
      m.freePgtable(table);
      // A compound (__GFP_COMP) allocation of 4 pages: its third page may be inserted; the folio
      // (the head) takes the reference, the page itself the mapping.
      const comp = folioAlloc(m, 2);
      expect(vmInsertPage(vma, BASE + ps, comp + 2 * ps)).toBe(0);
      mmapWriteUnlock(mm);
      expect(m.meta.getRefcount(comp)).toBe(2);
      expect(m.meta.getMapcount(comp + 2 * ps)).toBe(1);
      expect(m.meta.getMapcount(comp)).toBe(0);
      expect(mappedPa(mm, BASE + ps)).toBe(comp + 2 * ps);
      expect(mappedPa(mm, BASE)).toBe(-1);
      expect(mm.rss[MM_FILEPAGES]).toBe(1);
      checkBalance(m, [mm], [], new Map([[comp, 1]]));
      exitAll(m, free0, [mm], [], 4);
      folioPut(m, comp);
      expect(m.frames.freeFrames).toBe(free0);
    });
  }

  for (const g of GEOMETRIES) {
    it(`${g}: memory.c insert_page_into_pte_locked: the zero page is inserted as a special pte, without a reference, a mapcount or rss`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const mm = m.newMm('p');
      mmapWriteLock(mm);
      const vma = deviceVma(mm, BASE, 2, DEV_SHARED);
      expect(vmInsertPage(vma, BASE, m.zeroPagePa)).toBe(0);
      mmapWriteUnlock(mm);
      expect(pteVal(mm, BASE)).toBe(BigInt(m.zeroPagePa) | vma.vmPageProt | specialBit(m));
      expect(m.meta.getRefcount(m.zeroPagePa)).toBe(1);
      expect(m.meta.getMapcount(m.zeroPagePa)).toBe(0);
      expect(mm.rssPages).toBe(0);
      checkBalance(m, [mm]);
      exitAll(m, free0, [mm]);
    });
  }

  for (const g of ['x86_64-4level', 'arm64-4k-48'] as const) {
    // A 4K-granule machine: there, one page is one frame, so a non-compound order-1 allocation is
    // two frames of which only the first has a reference — as alloc_pages() without __GFP_COMP.
    it(`${g}: memory.c vm_insert_page: "a nice clean _individual_ kernel allocation" — the tail of a non-compound high-order allocation (refcount 0) is refused with -EINVAL`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const mm = m.newMm('p');
      const pa = m.frames.alloc(1);
      m.meta.reset(pa, 1);
      m.meta.setRefcount(pa, 1);
      mmapWriteLock(mm);
      const vma = deviceVma(mm, BASE, 4, DEV_SHARED);
      expect(vmInsertPage(vma, BASE, pa + 4096)).toBe(-EINVAL);
      expect(mappedPa(mm, BASE)).toBe(-1);
      expect(vmInsertPage(vma, BASE, pa)).toBe(0); // the first page has the reference
      mmapWriteUnlock(mm);
      expect(m.meta.getRefcount(pa)).toBe(2);
      checkBalance(m, [mm], [], new Map([[pa, 1]]));
      exitMmap(mm);
      expect(m.meta.getRefcount(pa)).toBe(1);
      m.meta.setRefcount(pa, 0);
      m.frames.free(pa, 1);
      expect(m.frames.freeFrames).toBe(free0);
    });
  }
});

// ---- vmf_insert_pfn -----------------------------------------------------------------------------------

describe('memory.c vmf_insert_pfn / vmf_insert_pfn_prot', () => {
  for (const g of GEOMETRIES) {
    it(`${g}: memory.c vmf_insert_pfn_prot: the BUG_ONs — neither PFNMAP nor MIXEDMAP; both; PFNMAP on a COW mapping; MIXEDMAP with a pfn that has a struct page`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      const ioPfn = Math.ceil((m.mem.physBase + m.mem.size) / ps) + 0x40;
      const ramPfn = m.mem.physBase / ps + 0x20;
      mmapWriteLock(mm);
      const plain = deviceVma(mm, BASE, 4, DEV_SHARED);
      const both = deviceVma(mm, BASE + 8 * ps, 4, DEV_SHARED | VM_PFNMAP | VM_MIXEDMAP);
      const cowPfn = deviceVma(mm, BASE + 16 * ps, 4, DEV_PRIVATE | VM_PFNMAP);
      const mixed = deviceVma(mm, BASE + 24 * ps, 4, DEV_SHARED | VM_MIXEDMAP);
      const cowMixed = deviceVma(mm, BASE + 32 * ps, 4, DEV_PRIVATE | VM_MIXEDMAP);
      mmapWriteUnlock(mm);
      expect(() => vmfInsertPfn(plain, BASE, ioPfn)).toThrow(KernelAssertionError);
      expect(() => vmfInsertPfn(both, BASE + 8 * ps, ioPfn)).toThrow(KernelAssertionError);
      expect(() => vmfInsertPfn(cowPfn, BASE + 16 * ps, ioPfn)).toThrow(KernelAssertionError);
      expect(() => vmfInsertPfn(mixed, BASE + 24 * ps, ramPfn)).toThrow(KernelAssertionError);
      // The BUG_ONs come before the address check.
      expect(() => vmfInsertPfn(plain, BASE - ps, ioPfn)).toThrow(KernelAssertionError);
      for (const a of [BASE, BASE + 8 * ps, BASE + 16 * ps, BASE + 24 * ps]) expect(mappedPa(mm, a)).toBe(-1);
      // Allowed: MIXEDMAP with a pfn without a struct page, also in a COW mapping (only PFNMAP is barred there).
      expect(vmfInsertPfn(mixed, BASE + 24 * ps, ioPfn)).toBe(VM_FAULT_NOPAGE);
      expect(vmfInsertPfn(cowMixed, BASE + 33 * ps, ioPfn + 1)).toBe(VM_FAULT_NOPAGE);
      expect(mappedPa(mm, BASE + 24 * ps)).toBe(ioPfn * ps);
      expect(mappedPa(mm, BASE + 33 * ps)).toBe((ioPfn + 1) * ps);
    });

    it(`${g}: memory.c vmf_insert_pfn_prot: SIGBUS outside the VMA; VM_FAULT_NOPAGE; a special pte with the given pgprot; no TLB flush; an occupied pte is left as it was`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      mmapWriteLock(mm);
      const vma = deviceVma(mm, BASE, 4, DEV_SHARED | VM_PFNMAP | VM_IO);
      mmapWriteUnlock(mm);
      const pfn = Math.ceil((m.mem.physBase + m.mem.size) / ps) + 0x80;
      const log = flushLog(m);
      const flushes0 = m.tlbFlushes;
      expect(vmfInsertPfn(vma, BASE - ps, pfn)).toBe(VM_FAULT_SIGBUS);
      expect(vmfInsertPfn(vma, BASE + 4 * ps, pfn)).toBe(VM_FAULT_SIGBUS);
      const prot = m.bits.pgprot({ read: true, write: false, user: true, memType: 'uncached' });
      expect(vmfInsertPfnProt(vma, BASE + ps, pfn, prot)).toBe(VM_FAULT_NOPAGE);
      // pte = pfn << PAGE_SHIFT | pgprot | special: the pgprot is the one given, not vm_page_prot.
      expect(pteVal(mm, BASE + ps)).toBe(BigInt(pfn * ps) | prot | specialBit(m));
      expect(vmfInsertPfn(vma, BASE + 2 * ps, pfn + 7)).toBe(VM_FAULT_NOPAGE);
      expect(pteVal(mm, BASE + 2 * ps)).toBe(BigInt((pfn + 7) * ps) | vma.vmPageProt | specialBit(m));
      // An occupied pte: NOPAGE, the old pte stays.
      expect(vmfInsertPfn(vma, BASE + ps, pfn + 1)).toBe(VM_FAULT_NOPAGE);
      expect(pteVal(mm, BASE + ps)).toBe(BigInt(pfn * ps) | prot | specialBit(m));
      // "we do not need to flush old virtual caches or the TLB".
      expect(log).toEqual([]);
      expect(m.tlbFlushes).toBe(flushes0);
      checkBalance(m, [mm]);
      exitAll(m, free0, [mm]);
    });
  }
});

// ---- remap_pfn_range and vm_iomap_memory --------------------------------------------------------

describe('memory.c remap_pfn_range / vm_iomap_memory', () => {
  const REMAP_FLAGS = VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
  for (const g of GEOMETRIES) {
    it(`${g}: memory.c remap_pfn_range: VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP; size rounded up to pages; every pte special with consecutive pfns`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      mmapWriteLock(mm);
      const vma = deviceVma(mm, BASE, 8, DEV_SHARED, 3);
      const pfn = Math.ceil((m.mem.physBase + m.mem.size) / ps) + 0x1234;
      // 2 pages and 1 byte from the second page of the VMA: 3 ptes (PAGE_ALIGN(size)).
      expect(remapPfnRange(vma, BASE + ps, pfn, 2 * ps + 1, vma.vmPageProt)).toBe(0);
      mmapWriteUnlock(mm);
      expect((vma.vmFlags & REMAP_FLAGS) >>> 0).toBe(REMAP_FLAGS);
      expect(vma.vmPgoff).toBe(3); // a shared mapping keeps its pgoff
      expect(pteVal(mm, BASE)).toBe(0n);
      for (let i = 0; i < 3; i++) {
        const v = pteVal(mm, BASE + (i + 1) * ps);
        expect(m.bits.pteSpecial(lo(v), hi(v))).toBe(true);
        expect(m.bits.leafPfn('pte', lo(v), hi(v))).toBe(pfn + i);
        expect(v).toBe(BigInt((pfn + i) * ps) | vma.vmPageProt | specialBit(m));
      }
      expect(pteVal(mm, BASE + 4 * ps)).toBe(0n);
      // remap_pte_range: BUG_ON(!pte_none(ptep_get(pte))) — remapping over a mapped pte.
      mmapWriteLock(mm);
      expect(() => remapPfnRange(vma, BASE + 3 * ps, pfn + 100, 2 * ps, vma.vmPageProt)).toThrow(KernelAssertionError);
      mmapWriteUnlock(mm);
      expect(m.bits.leafPfn('pte', lo(pteVal(mm, BASE + 3 * ps)), hi(pteVal(mm, BASE + 3 * ps)))).toBe(pfn + 2);
      // The hardware reading the same bytes: x86-64 PTE address field bits 51:12 (SDM Vol. 3A Table 4-19).
      if (m.geo.arch === 'x86_64') {
        const v = pteVal(mm, BASE + 3 * ps);
        const d = m.bits.decode(v, 1);
        expect(d.kind).toBe('page');
        expect(d.address).toBe(BigInt((pfn + 2) * 4096));
        expect(((hi(v) & 0xfffff) * 2 ** 20 + (lo(v) >>> 12))).toBe(pfn + 2);
      }
      checkBalance(m, [mm]);
      exitAll(m, free0, [mm]);
    });

    it(`${g}: memory.c remap_pfn_range: a COW mapping must be remapped whole (else -EINVAL) and its vm_pgoff becomes pfn; an unaligned addr is -EINVAL`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      const pfn = Math.ceil((m.mem.physBase + m.mem.size) / ps) + 0x77;
      mmapWriteLock(mm);
      const vma = deviceVma(mm, BASE, 4, DEV_PRIVATE, 9);
      expect(remapPfnRange(vma, BASE + ps, pfn, 3 * ps, vma.vmPageProt)).toBe(-EINVAL);
      expect(remapPfnRange(vma, BASE, pfn, 3 * ps, vma.vmPageProt)).toBe(-EINVAL);
      expect(vma.vmFlags & VM_PFNMAP).toBe(0);
      expect(vma.vmPgoff).toBe(9);
      expect(remapPfnRange(vma, BASE + 0x800, pfn, ps, vma.vmPageProt)).toBe(-EINVAL);
      expect(mappedPa(mm, BASE)).toBe(-1);
      expect(remapPfnRange(vma, BASE, pfn, 4 * ps, vma.vmPageProt)).toBe(0);
      expect(vma.vmPgoff).toBe(pfn);
      expect((vma.vmFlags & REMAP_FLAGS) >>> 0).toBe(REMAP_FLAGS);
      for (let i = 0; i < 4; i++) expect(mappedPa(mm, BASE + i * ps)).toBe((pfn + i) * ps);
      // A shared mapping may be remapped in part, but not at an unaligned address either.
      const shared = deviceVma(mm, BASE + 8 * ps, 4, DEV_SHARED);
      expect(remapPfnRange(shared, BASE + 8 * ps + 8, pfn, ps, shared.vmPageProt)).toBe(-EINVAL);
      mmapWriteUnlock(mm);
      checkBalance(m, [mm]);
      exitAll(m, free0, [mm]);
    });

    it(`${g}: memory.c remap_pfn_range: "only safe if the mm semaphore is held" — without the mmap write lock it is refused`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      const pfn = Math.ceil((m.mem.physBase + m.mem.size) / ps) + 5;
      mmapWriteLock(mm);
      const vma = deviceVma(mm, BASE, 4, DEV_SHARED);
      mmapWriteUnlock(mm);
      expect(() => remapPfnRange(vma, BASE, pfn, ps, vma.vmPageProt)).toThrow(KernelAssertionError);
      mmapReadLock(mm);
      expect(() => remapPfnRange(vma, BASE, pfn, ps, vma.vmPageProt)).toThrow(KernelAssertionError);
      mmapReadUnlock(mm);
      expect(mappedPa(mm, BASE)).toBe(-1);
      expect(vma.vmFlags & VM_PFNMAP).toBe(0);
    });

    it(`${g}: memory.c vm_iomap_memory: the VMA maps [start, start + len) from vm_pgoff pages in; -EINVAL when it wraps, vm_pgoff is past the end or the VMA does not fit`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      const base = (Math.ceil((m.mem.physBase + m.mem.size) / ps) + 0x100) * ps;
      // start is half a page in: len grows by that half page, so pages = ceil((6 pages + ps/2) / ps) = 7.
      const start = base + ps / 2;
      const len = 6 * ps;
      mmapWriteLock(mm);
      // vm_pgoff 2, 4 pages: pfns base/ps + 2 … + 5 (4 <= 7 - 2).
      const a = deviceVma(mm, BASE, 4, DEV_SHARED, 2);
      expect(vmIomapMemory(a, start, len)).toBe(0);
      for (let i = 0; i < 4; i++) expect(mappedPa(mm, BASE + i * ps)).toBe(base + (2 + i) * ps);
      expect((a.vmFlags & REMAP_FLAGS) >>> 0).toBe(REMAP_FLAGS);
      // vm_pgoff 8 > 7 pages.
      const b = deviceVma(mm, BASE + 8 * ps, 1, DEV_SHARED, 8);
      expect(vmIomapMemory(b, start, len)).toBe(-EINVAL);
      // vm_pgoff 7 = pages: 0 pages left, a 1-page VMA does not fit.
      const b2 = deviceVma(mm, BASE + 10 * ps, 1, DEV_SHARED, 7);
      expect(vmIomapMemory(b2, start, len)).toBe(-EINVAL);
      // vm_pgoff 2 leaves 5 pages: a 6-page VMA does not fit, a 5-page one does.
      const c = deviceVma(mm, BASE + 16 * ps, 6, DEV_SHARED, 2);
      expect(vmIomapMemory(c, start, len)).toBe(-EINVAL);
      const c2 = deviceVma(mm, BASE + 24 * ps, 5, DEV_SHARED, 2);
      expect(vmIomapMemory(c2, start, len)).toBe(0);
      expect(mappedPa(mm, BASE + 28 * ps)).toBe(base + 6 * ps);
      // start + len wraps past 2^64.
      const d = deviceVma(mm, BASE + 32 * ps, 1, DEV_SHARED, 0);
      expect(vmIomapMemory(d, (1n << 64n) - BigInt(ps), BigInt(2 * ps))).toBe(-EINVAL);
      for (const v of [b, b2, c, d]) {
        expect(v.vmFlags & VM_PFNMAP).toBe(0);
        expect(mappedPa(mm, v.vmStart)).toBe(-1);
      }
      mmapWriteUnlock(mm);
      checkBalance(m, [mm]);
      exitAll(m, free0, [mm]);
    });
  }
});

describe('memory.c get_locked_pte failures (Machine.pgtableAllocLimit)', () => {
  for (const g of GEOMETRIES) {
    it(`${g}: memory.c: without a pte table vmf_insert_pfn is VM_FAULT_OOM, vm_insert_page -ENOMEM (no reference taken), and remap_pfn_range -ENOMEM with the part already mapped zapped again`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      const pfn = Math.ceil((m.mem.physBase + m.mem.size) / ps) + 0x200;
      // Four pages across the 4th PMD boundary above BASE: two pte tables are needed.
      const start = BASE + 4 * m.geo.PMD_SIZE - 2 * ps;
      mmapWriteLock(mm);
      const vma = deviceVma(mm, start, 4, DEV_SHARED);
      const pfnVma = deviceVma(mm, BASE, 1, DEV_SHARED | VM_PFNMAP);
      const page = folioAlloc(m, 0);
      m.pgtableAllocLimit = 0;
      expect(vmfInsertPfn(pfnVma, BASE, pfn)).toBe(VM_FAULT_OOM);
      expect(vmInsertPage(vma, start, page)).toBe(-ENOMEM);
      expect(m.meta.getRefcount(page)).toBe(1);
      expect(mm.rss[MM_FILEPAGES]).toBe(0);
      // Every table for the first half, and the pmd entry of the second: only its pte table is missing.
      m.pgtableAllocLimit = null;
      expect(entryAlloc(mm, start, 'pte')).toBeGreaterThanOrEqual(0);
      expect(entryAlloc(mm, start + 2 * ps, 'pmd')).toBeGreaterThanOrEqual(0);
      m.pgtableAllocLimit = 0;
      expect(remapPfnRange(vma, start, pfn, 4 * ps, vma.vmPageProt)).toBe(-ENOMEM);
      m.pgtableAllocLimit = null;
      mmapWriteUnlock(mm);
      for (let i = 0; i < 4; i++) expect(mappedPa(mm, start + i * ps)).toBe(-1);
      checkBalance(m, [mm], [], new Map([[page, 1]]));
      exitAll(m, free0, [mm], [], 1);
      folioPut(m, page);
      expect(m.frames.freeFrames).toBe(free0);
    });
  }
});

describe('memory.c copy_page_range of pfn maps (fork)', () => {
  it('x86_64-4level: memory.c vma_needs_copy / __copy_present_ptes: a VM_PFNMAP VMA is copied at fork, each special pte made old and clean (A = bit 5, D = bit 6), no reference taken', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 64 * MiB });
    const free0 = m.frames.freeFrames;
    const ps = 4096;
    const mm = m.newMm('parent');
    const pfn = 0x123456; // far above the 64 MiB of RAM
    mmapWriteLock(mm);
    const vma = deviceVma(mm, BASE, 3, DEV_SHARED);
    expect(remapPfnRange(vma, BASE, pfn, 3 * ps, vma.vmPageProt)).toBe(0);
    mmapWriteUnlock(mm);
    // Dirty the first pte as a CPU write would (D = bit 6).
    const r = lookupEntry(mm, BASE);
    m.pgtable.set(r.ptr, m.pgtable.val(r.ptr) | 0x40n);
    const child = dupMm(mm);
    const cv = child.vmaLookup(BASE)!;
    expect((cv.vmFlags & (VM_PFNMAP | VM_IO)) >>> 0).toBe((VM_PFNMAP | VM_IO) >>> 0);
    for (let i = 0; i < 3; i++) {
      const p = pteVal(mm, BASE + i * ps);
      const c = pteVal(child, BASE + i * ps);
      expect(p & 0x200n).toBe(0x200n);
      expect(c).toBe(p & ~0x60n);
      expect(c & 0x000ffffffffff000n).toBe(BigInt((pfn + i) * ps));
    }
    checkBalance(m, [mm, child]);
    exitAll(m, free0, [mm, child]);
  });
});

// ---- unmap_mapping_pages / unmap_mapping_range ------------------------------------------------------

describe('memory.c unmap_mapping_pages / unmap_mapping_range', () => {
  /**
   * A file of 8 pages (page i holds the byte i + 1); A maps it whole MAP_SHARED, B maps pages 2-7
   * MAP_PRIVATE (vm_pgoff 2) and writes B's 4th page (file page 5), which makes it a COW copy.
   */
  function setup(g: GeometryName) {
    const m = new Machine({ geometry: g, memSize: 64 * MiB });
    const free0 = m.frames.freeFrames;
    const ps = m.geo.PAGE_SIZE;
    const f = createFile(m, 'data', 8 * ps);
    for (let i = 0; i < 8; i++) f.backing.set(i, new Uint8Array([i + 1]));
    const A = m.newMm('A');
    const B = m.newMm('B');
    const a = vmMmap(A, 0, 8 * ps, RW, MAP_SHARED, { file: f });
    const b = vmMmap(B, 0, 6 * ps, RW, MAP_PRIVATE, { file: f, offset: 2 * ps });
    for (let i = 0; i < 8; i++) expect(doUserAddrFault(A, a + i * ps, 'read').signal).toBeNull();
    for (let i = 0; i < 6; i++) expect(doUserAddrFault(B, b + i * ps, 'read').signal).toBeNull();
    expect(doUserAddrFault(B, b + 3 * ps, 'write').signal).toBeNull();
    expect(B.vmaLookup(b)!.vmPgoff).toBe(2);
    const pattern = (mm: MmStruct, at: number, n: number): string => {
      let s = '';
      for (let i = 0; i < n; i++) s += mappedPa(mm, at + i * ps) >= 0 ? '1' : '0';
      return s;
    };
    return { m, free0, ps, f, A, B, a, b, pattern };
  }

  for (const g of GEOMETRIES) {
    it(`${g}: memory.c unmap_mapping_range: holebegin rounded down, holelen rounded up; shared and private page-cache ptes go, private COW'd pages stay unless even_cows; holelen 0 = to the end`, () => {
      const { m, free0, ps, f, A, B, a, b, pattern } = setup(g);
      // Before: A maps the 8 cache pages, B the 5 cache pages 2,3,4,6,7 and its own copy of page 5.
      expect(pattern(A, a, 8)).toBe('11111111');
      expect(pattern(B, b, 6)).toBe('111111');
      expect(mappedPa(B, b + 3 * ps)).not.toBe(f.pages.get(5));
      expect(new Uint8Array(m.mem.buffer, m.mem.offset(mappedPa(B, b + 3 * ps), 1), 1)[0]).toBe(6);
      expect([A.rss[MM_FILEPAGES], B.rss[MM_FILEPAGES], B.rss[MM_ANONPAGES]]).toEqual([8, 5, 1]);
      checkBalance(m, [A, B], [f]);
      // Bytes [3 pages + 100, 4 pages + 101): page indices 3 (rounded down) and 4 (rounded up).
      unmapMappingRange(f, 3 * ps + 100, ps + 1, 0);
      expect(pattern(A, a, 8)).toBe('11100111');
      expect(pattern(B, b, 6)).toBe('100111'); // B's pages 1-2 are file pages 3-4
      expect([A.rss[MM_FILEPAGES], B.rss[MM_FILEPAGES], B.rss[MM_ANONPAGES]]).toEqual([6, 3, 1]);
      checkBalance(m, [A, B], [f]);
      // holelen 0: from file page 4 to the end. B's COW copy of page 5 stays (even_cows = 0).
      unmapMappingRange(f, 4 * ps, 0, 0);
      expect(pattern(A, a, 8)).toBe('11100000');
      expect(pattern(B, b, 6)).toBe('100100');
      expect([A.rss[MM_FILEPAGES], B.rss[MM_FILEPAGES], B.rss[MM_ANONPAGES]]).toEqual([3, 1, 1]);
      checkBalance(m, [A, B], [f]);
      // With even_cows the copy goes as well.
      const cow = mappedPa(B, b + 3 * ps);
      const before = m.frames.freeFrames;
      unmapMappingRange(f, 5 * ps, ps, 1);
      expect(pattern(B, b, 6)).toBe('100000');
      expect(B.rss[MM_ANONPAGES]).toBe(0);
      expect(m.frames.freeFrames).toBe(before + fpp(m));
      expect(m.meta.getRefcount(cow)).toBe(0);
      checkBalance(m, [A, B], [f]);
      // Page-cache pages are unmapped, never freed: the cache keeps its reference.
      expect(f.pages.size).toBe(8);
      exitAll(m, free0, [A, B], [f]);
    });

    it(`${g}: memory.c unmap_mapping_pages: [start, start + nr) in file pages, through each VMA's vm_pgoff; nr 0 = to the end of the file; even_cows`, () => {
      const { m, free0, f, A, B, a, b, pattern } = setup(g);
      // File pages 1-2: A's pages 1-2; B (from file page 2) its page 0 only.
      unmapMappingPages(f, 1, 2, false);
      expect(pattern(A, a, 8)).toBe('10011111');
      expect(pattern(B, b, 6)).toBe('011111');
      checkBalance(m, [A, B], [f]);
      // File page 5 without even_cows: A's page 5 goes, B's COW copy stays.
      unmapMappingPages(f, 5, 1, false);
      expect(pattern(A, a, 8)).toBe('10011011');
      expect(pattern(B, b, 6)).toBe('011111');
      // ... and with even_cows it goes.
      unmapMappingPages(f, 5, 1, true);
      expect(pattern(B, b, 6)).toBe('011011');
      checkBalance(m, [A, B], [f]);
      // nr 0: from file page 7 to the end of the file.
      unmapMappingPages(f, 7, 0, true);
      expect(pattern(A, a, 8)).toBe('10011010');
      expect(pattern(B, b, 6)).toBe('011010');
      // A start past every VMA's range touches nothing.
      unmapMappingPages(f, 8, 0, true);
      expect(pattern(A, a, 8)).toBe('10011010');
      expect([A.rss[MM_FILEPAGES], B.rss[MM_FILEPAGES], B.rss[MM_ANONPAGES]]).toEqual([4, 3, 0]);
      checkBalance(m, [A, B], [f]);
      exitAll(m, free0, [A, B], [f]);
    });
  }

  it('x86_64-4level: memory.c unmap_mapping_pages: a forked child\'s COW\'d page stays, the page-cache ptes of parent and child go', () => {
    const { m, free0, ps, f, A, B, b, pattern } = setup('x86_64-4level');
    const C = dupMm(B, 'C');
    // Fork copies B's anonymous page (B's VMA has an anon_vma) and, since the VMA is copied whole, its page-cache ptes.
    expect(mappedPa(C, b + 3 * ps)).toBe(mappedPa(B, b + 3 * ps));
    checkBalance(m, [A, B, C], [f]);
    unmapMappingPages(f, 0, 0, false);
    expect(pattern(B, b, 6)).toBe('000100');
    expect(pattern(C, b, 6)).toBe('000100');
    expect(m.meta.getMapcount(mappedPa(B, b + 3 * ps))).toBe(2);
    checkBalance(m, [A, B, C], [f]);
    exitAll(m, free0, [A, B, C], [f]);
  });
});

// ---- follow_pfn / follow_pfnmap_start -----------------------------------------------------------------

describe('memory.c follow_pfn / follow_pfnmap_start', () => {
  for (const g of GEOMETRIES) {
    it(`${g}: memory.c follow_pfn: "Only IO mappings and raw PFN mappings are allowed" (-EINVAL otherwise); -EINVAL where nothing is mapped; the pfn of a remap_pfn_range mapping`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      const anon = vmMmap(mm, 0, 2 * ps, RW, MAP_PRIVATE | MAP_ANONYMOUS);
      expect(doUserAddrFault(mm, anon, 'write').signal).toBeNull();
      const out = { pfn: -1 };
      expect(followPfn(mm.vmaLookup(anon)!, anon, out)).toBe(-EINVAL);
      expect(out.pfn).toBe(-1);
      const pfn = Math.ceil((m.mem.physBase + m.mem.size) / ps) + 0x3c;
      mmapWriteLock(mm);
      const vma = deviceVma(mm, BASE, 4, DEV_SHARED);
      expect(remapPfnRange(vma, BASE + ps, pfn, 2 * ps, vma.vmPageProt)).toBe(0);
      mmapWriteUnlock(mm);
      expect(followPfn(vma, BASE + ps, out)).toBe(0);
      expect(out.pfn).toBe(pfn);
      expect(followPfn(vma, BASE + 2 * ps + 123, out)).toBe(0);
      expect(out.pfn).toBe(pfn + 1);
      out.pfn = -1;
      expect(followPfn(vma, BASE, out)).toBe(-EINVAL); // pte table there, pte none
      expect(followPfn(vma, BASE + 3 * ps, out)).toBe(-EINVAL);
      expect(out.pfn).toBe(-1);
      // A VM_IO | VM_PFNMAP VMA with no table at all below it.
      mmapWriteLock(mm);
      const empty = deviceVma(mm, BASE + 64 * m.geo.PMD_SIZE, 1, DEV_SHARED | VM_IO | VM_PFNMAP);
      mmapWriteUnlock(mm);
      expect(followPfn(empty, empty.vmStart, out)).toBe(-EINVAL);
      checkBalance(m, [mm]);
      exitAll(m, free0, [mm]);
    });

    it(`${g}: memory.c follow_pfnmap_start: a pmd leaf gives the pfn of the page within it (pfn + (address & ~PMD_MASK) >> PAGE_SHIFT)`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const pmdSize = m.geo.PMD_SIZE;
      const perPmd = pmdSize / ps;
      const mm = m.newMm('p');
      // A PMD-aligned pfn above RAM: 16 PMD blocks past the end of memory.
      const base = (Math.ceil((m.mem.physBase + m.mem.size) / pmdSize) + 16) * perPmd;
      mmapWriteLock(mm);
      const vma = deviceVma(mm, BASE, perPmd, DEV_SHARED | VM_IO | VM_PFNMAP);
      mmapWriteUnlock(mm);
      const pmd = entryAlloc(mm, BASE, 'pmd');
      expect(pmd).toBeGreaterThanOrEqual(0);
      // A special huge pmd, as a driver's huge_fault (vmf_insert_pfn_pmd) installs it.
      m.pgtable.set(pmd, m.bits.pteMkspecial(m.bits.pfnHuge('pmd', base, vma.vmPageProt)));
      const args: FollowPfnmapArgs = { vma, address: BASE + 5 * ps + 77, pfn: 0, pgprot: 0n, writable: false, special: false, level: null };
      expect(followPfnmapStart(args)).toBe(0);
      expect(args.pfn).toBe(base + 5);
      expect(args.level).toBe('pmd');
      expect(args.special).toBe(true);
      followPfnmapEnd(args);
      const last: FollowPfnmapArgs = { vma, address: BASE + pmdSize - 1, pfn: 0, pgprot: 0n, writable: false, special: false, level: null };
      expect(followPfnmapStart(last)).toBe(0);
      expect(last.pfn).toBe(base + perPmd - 1);
      followPfnmapEnd(last);
      // Outside the VMA: -EINVAL before any lookup.
      const out: FollowPfnmapArgs = { vma, address: BASE + pmdSize, pfn: 0, pgprot: 0n, writable: false, special: false, level: null };
      expect(followPfnmapStart(out)).toBe(-EINVAL);
      const out2 = { pfn: 0 };
      expect(followPfn(vma, BASE + 3 * ps, out2)).toBe(0);
      expect(out2.pfn).toBe(base + 3);
      // zap_pmd_range on part of it: __split_huge_pmd of a special (pfnmap) pmd clears it whole
      // (mm/huge_memory.c __split_huge_pmd_locked: vma_is_special_huge), so nothing stays mapped.
      zapVmaPtes(vma, BASE + ps, ps);
      expect(m.pgtable.val(pmd)).toBe(0n);
      expect(followPfn(vma, BASE + 3 * ps, out2)).toBe(-EINVAL);
      checkBalance(m, [mm]);
      exitAll(m, free0, [mm]);
    });
  }
});

// ---- access_remote_vm -------------------------------------------------------------------------------

describe('memory.c access_remote_vm (mm/gup.c check_vma_flags, can_follow_write_pte)', () => {
  for (const g of GEOMETRIES) {
    it(`${g}: memory.c access_remote_vm: a read of untouched anonymous memory goes through the zero page`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      const a = vmMmap(mm, 0, 4 * ps, RW, MAP_PRIVATE | MAP_ANONYMOUS);
      const allocs: unknown[] = [];
      m.onEvent = (kind, detail) => {
        if (kind === 'folio_alloc') allocs.push(detail);
      };
      const buf = new Uint8Array(32).fill(0xee);
      expect(accessRemoteVm(mm, a + ps + 7, buf, 32, 0)).toBe(32);
      expect([...buf]).toEqual(new Array(32).fill(0));
      expect(mappedPa(mm, a + ps)).toBe(m.zeroPagePa);
      const v = pteVal(mm, a + ps);
      expect(v & specialBit(m)).toBe(specialBit(m)); // the zero page is mapped special
      expect(mm.rss[MM_ANONPAGES]).toBe(0);
      // No folio was allocated: only page tables.
      expect(allocs).toEqual([]);
      checkBalance(m, [mm]);
      exitAll(m, free0, [mm]);
    });

    it(`${g}: memory.c access_remote_vm: a write needs FOLL_WRITE (else it is a read) and VM_WRITE (else -EFAULT: 0 bytes)`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      const a = vmMmap(mm, 0, 2 * ps, RW, MAP_PRIVATE | MAP_ANONYMOUS);
      expect(accessRemoteVm(mm, a + ps - 2, new Uint8Array([1, 2, 3, 4]), 4, FOLL_WRITE)).toBe(4); // crosses a page
      const buf = new Uint8Array([9, 9, 9, 9]);
      expect(accessRemoteVm(mm, a + ps - 2, buf, 4, 0)).toBe(4);
      expect([...buf]).toEqual([1, 2, 3, 4]);
      expect(mm.rss[MM_ANONPAGES]).toBe(2);
      const ro = vmMmap(mm, 0, ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
      expect(accessRemoteVm(mm, ro, new Uint8Array([5]), 1, FOLL_WRITE)).toBe(0);
      // check_vma_flags refuses before any fault: nothing was mapped or allocated.
      expect(mappedPa(mm, ro)).toBe(-1);
      expect(mm.rss[MM_ANONPAGES]).toBe(2);
      const back = new Uint8Array([7]);
      expect(accessRemoteVm(mm, ro, back, 1, 0)).toBe(1);
      expect(back[0]).toBe(0);
      checkBalance(m, [mm]);
      exitAll(m, free0, [mm]);
    });

    it(`${g}: mm/gup.c FOLL_FORCE: a write into a read-only private file mapping goes to a COW copy (the page cache is unchanged, the process sees the new bytes)`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const f = createFile(m, 'prog', 2 * ps);
      f.backing.set(0, new Uint8Array([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa]));
      const mm = m.newMm('p');
      const a = vmMmap(mm, 0, 2 * ps, PROT_READ, MAP_PRIVATE, { file: f });
      for (const pre of [false, true]) {
        // First without, then with the file page already mapped read-only.
        if (pre) {
          expect(doUserAddrFault(mm, a + ps, 'read').signal).toBeNull();
          expect(mappedPa(mm, a + ps)).toBe(f.pages.get(1));
        }
        const at = pre ? a + ps : a;
        expect(accessRemoteVm(mm, at + 8, new Uint8Array([0xcc, 0xdd]), 2, FOLL_WRITE)).toBe(0);
        expect(accessRemoteVm(mm, at + 8, new Uint8Array([0xcc, 0xdd]), 2, FOLL_WRITE | FOLL_FORCE)).toBe(2);
        const cache = f.pages.get(pre ? 1 : 0)!;
        const mine = mappedPa(mm, at);
        expect(mine).not.toBe(cache);
        expect(mine).toBeGreaterThanOrEqual(0);
        const cacheBytes = new Uint8Array(m.mem.buffer, m.mem.offset(cache, 10), 10);
        expect([...cacheBytes]).toEqual(pre ? new Array(10).fill(0) : [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa]);
        const seen = new Uint8Array(10);
        expect(accessRemoteVm(mm, at, seen, 10, 0)).toBe(10);
        expect([...seen]).toEqual(pre ? [0, 0, 0, 0, 0, 0, 0, 0, 0xcc, 0xdd] : [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0xcc, 0xdd]);
        // The copy is mapped but not writable: the VMA has no VM_WRITE.
        const v = pteVal(mm, at);
        expect(m.bits.pteWrite(lo(v), hi(v))).toBe(false);
      }
      expect([mm.rss[MM_ANONPAGES], mm.rss[MM_FILEPAGES]]).toEqual([2, 0]);
      checkBalance(m, [mm], [f]);
      exitAll(m, free0, [mm], [f]);
    });

    it(`${g}: mm/gup.c check_vma_flags: FOLL_FORCE does not write into a read-only shared mapping`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const f = createFile(m, 'shared', ps);
      f.backing.set(0, new Uint8Array([1, 2, 3]));
      const mm = m.newMm('p');
      const a = vmMmap(mm, 0, ps, PROT_READ, MAP_SHARED, { file: f });
      expect(accessRemoteVm(mm, a, new Uint8Array([9, 9, 9]), 3, FOLL_WRITE | FOLL_FORCE)).toBe(0);
      expect(mappedPa(mm, a)).toBe(-1); // refused before any fault
      const seen = new Uint8Array(3);
      expect(accessRemoteVm(mm, a, seen, 3, FOLL_FORCE)).toBe(3);
      expect([...seen]).toEqual([1, 2, 3]);
      expect(mappedPa(mm, a)).toBe(f.pages.get(0));
      expect(mm.rss[MM_ANONPAGES]).toBe(0);
      checkBalance(m, [mm], [f]);
      exitAll(m, free0, [mm], [f]);
    });

    it(`${g}: memory.c access_remote_vm: a read stops at an unmapped hole (returns the bytes done); VM_IO / VM_PFNMAP give 0 bytes`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * MiB });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const mm = m.newMm('p');
      expect(vmMmap(mm, BASE, 2 * ps, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)).toBe(BASE);
      expect(vmMmap(mm, BASE + 3 * ps, ps, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)).toBe(BASE + 3 * ps);
      const buf = new Uint8Array(3 * ps);
      expect(accessRemoteVm(mm, BASE + ps + 100, buf, 2 * ps, 0)).toBe(ps - 100);
      expect(accessRemoteVm(mm, BASE + 2 * ps, buf, 8, 0)).toBe(0);
      expect(accessRemoteVm(mm, BASE + ps + 100, buf, 2 * ps, FOLL_WRITE)).toBe(ps - 100);
      // A pfn map of RAM pages (so there would be bytes to read): gup refuses it.
      const ram = folioAlloc(m, 0);
      new Uint8Array(m.mem.buffer, m.mem.offset(ram, 4), 4).set([1, 2, 3, 4]);
      mmapWriteLock(mm);
      const vma = deviceVma(mm, BASE + 16 * ps, 1, DEV_SHARED);
      expect(remapPfnRange(vma, vma.vmStart, ram / ps, ps, vma.vmPageProt)).toBe(0);
      const io = deviceVma(mm, BASE + 20 * ps, 1, DEV_SHARED | VM_IO);
      mmapWriteUnlock(mm);
      expect(accessRemoteVm(mm, vma.vmStart, buf, 4, 0)).toBe(0);
      expect(accessRemoteVm(mm, vma.vmStart, buf, 4, FOLL_FORCE)).toBe(0);
      expect(accessRemoteVm(mm, io.vmStart, buf, 4, 0)).toBe(0);
      // The special pte holds no reference: the driver's page keeps only its own.
      expect(m.meta.getRefcount(ram)).toBe(1);
      // A VM_IO mixed map holding a normal (counted) page: gup still refuses the VMA.
      const page = folioAlloc(m, 0);
      new Uint8Array(m.mem.buffer, m.mem.offset(page, 4), 4).set([5, 6, 7, 8]);
      mmapWriteLock(mm);
      const mixedIo = deviceVma(mm, BASE + 24 * ps, 1, DEV_SHARED | VM_IO);
      expect(vmInsertPage(mixedIo, mixedIo.vmStart, page)).toBe(0);
      mmapWriteUnlock(mm);
      expect(mappedPa(mm, mixedIo.vmStart)).toBe(page);
      expect(accessRemoteVm(mm, mixedIo.vmStart, buf, 4, 0)).toBe(0);
      expect(accessRemoteVm(mm, mixedIo.vmStart, buf, 4, FOLL_WRITE | FOLL_FORCE)).toBe(0);
      expect([...new Uint8Array(m.mem.buffer, m.mem.offset(page, 4), 4)]).toEqual([5, 6, 7, 8]);
      checkBalance(m, [mm], [], new Map([[ram, 1], [page, 1]]));
      exitAll(m, free0, [mm], [], 2);
      folioPut(m, page);
      folioPut(m, ram);
      expect(m.frames.freeFrames).toBe(free0);
    });
  }
});
