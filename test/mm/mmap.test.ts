/**
 * mmap / munmap / mprotect / fork / exit (mm/mmap.c, mm/vma.c, mm/mprotect.c, kernel/fork.c
 * dup_mmap, mm/memory.c copy_page_range, exit_mmap).
 *
 * Addresses are hand-computed from Linux's layout rules (mm/util.c mmap_base: mmap_base =
 * PAGE_ALIGN(STACK_TOP - gap), the gap clamped up to MIN_GAP = 128 MiB; x86-64 STACK_TOP =
 * TASK_SIZE_MAX = 2^47 - 4096). pte values from the bit positions of
 * arch/x86/include/asm/pgtable_types.h: P 0, RW 1, US 2, A 5, D 6, SPECIAL 9, SAVED_DIRTY 58, NX 63.
 */
import { describe, expect, it } from 'vitest';
import {
  Machine,
  vmMmap,
  doMmap,
  doMunmap,
  doMprotect,
  dupMm,
  exitMmap,
  createFile,
  doUserAddrFault,
  lookupEntry,
  mmapWriteLock,
  mmapWriteUnlock,
  unmapMappingRange,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_POPULATE,
  MAP_HUGETLB,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  PROT_EXEC,
  MM_ANONPAGES,
  MM_FILEPAGES,
  EINVAL,
  ENOMEM,
  EEXIST,
  EACCES,
  VM_READ,
  VM_WRITE,
  VM_EXEC,
  VM_MAYWRITE,
  VM_DONTCOPY,
  VM_WIPEONFORK,
  PG_anon_exclusive,
  type MmStruct,
  type GeometryName,
} from '../../src/index';

const MiB = 2 ** 20;
const X86_PFN_MASK = ((1n << 52n) - 1n) & ~0xfffn;

function machine(g: GeometryName = 'x86_64-4level', memSize = 64 * MiB): Machine {
  return new Machine({ geometry: g, memSize });
}

function pte(mm: MmStruct, addr: number): bigint {
  const r = lookupEntry(mm, addr);
  return r.level === 'none' ? 0n : mm.machine.pgtable.val(r.ptr);
}
const flagsOf = (v: bigint): bigint => v & ~X86_PFN_MASK;
const paOf = (v: bigint): number => Number(v & X86_PFN_MASK);

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe('mmap placement (get_unmapped_area, top-down)', () => {
  it('x86-64: the first mapping ends at mmap_base = (2^47 - 4096) - 128 MiB = 0x7ffff7fff000', () => {
    const m = machine();
    const mm = m.newMm();
    expect(vmMmap(mm, 0, 4096, RW, ANON)).toBe(0x7ffff7ffe000);
    // the next one goes right below it (and, compatible and adjacent, merges into one VMA)
    expect(vmMmap(mm, 0, 2 * 4096, RW, ANON)).toBe(0x7ffff7ffc000);
    expect(mm.mapCount).toBe(1);
    expect(mm.vmaList[0]!.vmStart).toBe(0x7ffff7ffc000);
    expect(mm.vmaList[0]!.vmEnd).toBe(0x7ffff7fff000);
  });

  it('arm64 4K/39-bit: the first mapping ends at 2^39 - 128 MiB = 0x7ff8000000', () => {
    const m = machine('arm64-4k-39');
    const mm = m.newMm();
    expect(vmMmap(mm, 0, 4096, RW, ANON)).toBe(0x7ff7fff000);
  });

  it('a free hint is honoured; an occupied hint falls back to top-down', () => {
    const m = machine();
    const mm = m.newMm();
    expect(vmMmap(mm, 0x10000000, 4096, RW, ANON)).toBe(0x10000000);
    expect(vmMmap(mm, 0x10000000, 4096, PROT_READ, ANON)).toBe(0x7ffff7ffe000);
  });

  it('a PMD-multiple anonymous mapping is PMD aligned (thp_get_unmapped_area): 4 MiB → 0x7ffff7a00000', () => {
    const m = machine();
    const mm = m.newMm();
    // (0x7ffff7fff000 - 0x400000) rounded down to 2 MiB
    expect(vmMmap(mm, 0, 4 * MiB, RW, ANON)).toBe(0x7ffff7a00000);
    // the alignment left a gap [0x7ffff7e00000, 0x7ffff7fff000) above it: a 1 MiB mapping (page
    // aligned only) goes at its top, 0x7ffff7fff000 - 0x100000
    expect(vmMmap(mm, 0, MiB, PROT_READ, ANON)).toBe(0x7ffff7eff000);
  });

  it('MAP_FIXED replaces what was there (its pages are freed); MAP_FIXED_NOREPLACE fails with -EEXIST', () => {
    const m = machine();
    const mm = m.newMm();
    const a = vmMmap(mm, 0x20000000, 4 * 4096, RW, ANON | MAP_POPULATE);
    expect(mm.rss[MM_ANONPAGES]).toBe(4);
    expect(vmMmap(mm, a + 4096, 4096, PROT_READ, ANON | MAP_FIXED_NOREPLACE)).toBe(-EEXIST);
    expect(vmMmap(mm, a + 4096, 2 * 4096, PROT_READ, ANON | MAP_FIXED)).toBe(a + 4096);
    expect(mm.rss[MM_ANONPAGES]).toBe(2);
    expect(mm.mapCount).toBe(3);
    expect(mm.vmaLookup(a + 4096)!.vmFlags & VM_WRITE).toBe(0);
    expect(pte(mm, a + 4096)).toBe(0n);
    expect(pte(mm, a + 3 * 4096)).not.toBe(0n);
    expect(vmMmap(mm, a + 5 * 4096, 4096, PROT_READ, ANON | MAP_FIXED_NOREPLACE)).toBe(a + 5 * 4096);
  });

  it('errors: -EINVAL for length 0, an unknown map type, an unaligned MAP_FIXED; -ENOMEM when it cannot fit', () => {
    const m = machine();
    const mm = m.newMm();
    expect(vmMmap(mm, 0, 0, RW, ANON)).toBe(-EINVAL);
    expect(vmMmap(mm, 0, 4096, RW, MAP_ANONYMOUS)).toBe(-EINVAL); // neither shared nor private
    expect(vmMmap(mm, 0, 4096, RW, 0x0f | MAP_ANONYMOUS)).toBe(-EINVAL);
    expect(vmMmap(mm, 0x10000800, 4096, RW, ANON | MAP_FIXED)).toBe(-EINVAL);
    expect(vmMmap(mm, 0, 2 ** 48, RW, ANON)).toBe(-ENOMEM);
    expect(mm.mapCount).toBe(0);
  });
});

describe('MAP_POPULATE and VMA merging', () => {
  it('MAP_POPULATE on private writable memory faults every page in for write', () => {
    const m = machine();
    const mm = m.newMm();
    const a = vmMmap(mm, 0, 3 * 4096, RW, ANON | MAP_POPULATE);
    expect(mm.rss[MM_ANONPAGES]).toBe(3);
    for (let i = 0; i < 3; i++) expect(flagsOf(pte(mm, a + i * 4096))).toBe(0x8000000000000067n);
  });

  it('MAP_POPULATE on a read-only private mapping maps the zero page', () => {
    const m = machine();
    const mm = m.newMm();
    const a = vmMmap(mm, 0, 2 * 4096, PROT_READ, ANON | MAP_POPULATE);
    expect(paOf(pte(mm, a))).toBe(m.zeroPagePa);
    expect(mm.rssPages).toBe(0);
  });

  it('adjacent compatible anonymous mappings merge; different protections do not', () => {
    const m = machine();
    const mm = m.newMm();
    vmMmap(mm, 0x30000000, 4096, RW, ANON | MAP_FIXED);
    vmMmap(mm, 0x30001000, 4096, RW, ANON | MAP_FIXED);
    vmMmap(mm, 0x2ffff000, 4096, RW, ANON | MAP_FIXED);
    expect(mm.mapCount).toBe(1);
    expect([mm.vmaList[0]!.vmStart, mm.vmaList[0]!.vmEnd]).toEqual([0x2ffff000, 0x30002000]);
    vmMmap(mm, 0x30002000, 4096, PROT_READ, ANON | MAP_FIXED);
    expect(mm.mapCount).toBe(2);
  });
});

describe('VMA merging and the file\'s i_mmap (mm/vma.c vma_prepare / vma_complete)', () => {
  it('a mapping that extends the next file VMA downwards moves it in i_mmap to its new vm_pgoff: unmap_mapping_range still finds its pages', () => {
    // Regression (found by test/prop): the merged VMA kept its place in the interval index of its
    // old vm_pgoff, so rmap walks (migration, unmap_mapping_range) stopped before reaching it.
    const m = machine();
    const f = createFile(m, 'f', 8 * 4096);
    const b = m.newMm('b');
    expect(vmMmap(b, 0x50000000, 4096, RW, MAP_SHARED | MAP_FIXED, { file: f, offset: 2 * 4096 })).toBe(0x50000000);
    const a = m.newMm('a');
    expect(vmMmap(a, 0x40002000, 4096, RW, MAP_SHARED | MAP_FIXED, { file: f, offset: 2 * 4096 })).toBe(0x40002000);
    // Pages 0-1 of the file right below page 2: one VMA [0x40000000, 0x40003000) with vm_pgoff 0.
    expect(vmMmap(a, 0x40000000, 2 * 4096, RW, MAP_SHARED | MAP_FIXED, { file: f })).toBe(0x40000000);
    expect(a.vmaList.map((v) => [v.vmStart, v.vmEnd, v.vmPgoff])).toEqual([[0x40000000, 0x40003000, 0]]);
    expect(doUserAddrFault(a, 0x40000000, 'read').signal).toBeNull();
    expect(pte(a, 0x40000000)).not.toBe(0n);
    unmapMappingRange(f, 0, 4096, false);
    expect(pte(a, 0x40000000)).toBe(0n);
    expect(m.meta.getMapcount(f.pages.get(0)!)).toBe(0);
  });
});

describe('munmap', () => {
  it('unmapping the middle splits the VMA and frees its page', () => {
    const m = machine();
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 3 * 4096, RW, ANON | MAP_POPULATE);
    const mid = paOf(pte(mm, a + 4096));
    const free0 = m.frames.freeFrames;
    expect(doMunmap(mm, a + 4096, 4096)).toBe(0);
    expect(mm.mapCount).toBe(2);
    expect(mm.vmaList.map((v) => [v.vmStart, v.vmEnd])).toEqual([
      [a, a + 4096],
      [a + 2 * 4096, a + 3 * 4096],
    ]);
    expect(pte(mm, a + 4096)).toBe(0n);
    expect(mm.rss[MM_ANONPAGES]).toBe(2);
    expect(m.meta.getRefcount(mid)).toBe(0);
    expect(m.frames.freeFrames).toBe(free0 + 1);
  });

  it('unmapping everything frees the page tables too: frames back to where they were', () => {
    const m = machine();
    const mm = m.newMm();
    const free0 = m.frames.freeFrames;
    const a = vmMmap(mm, 0x40000000, 2 * 4096, RW, ANON | MAP_POPULATE);
    // 2 pages + pud, pmd and pte tables (p4d folded into the pgd on 4-level)
    expect(free0 - m.frames.freeFrames).toBe(5);
    expect(doMunmap(mm, a, 2 * 4096)).toBe(0);
    expect(m.frames.freeFrames).toBe(free0);
    expect(lookupEntry(mm, a).level).toBe('none');
    expect(mm.mapCount).toBe(0);
  });

  it('the last unmap of a MAP_SHARED|MAP_ANONYMOUS mapping frees its shmem pages (fput → shmem_evict_inode)', () => {
    const m = machine();
    const free0 = m.frames.freeFrames;
    const p = m.newMm('p');
    const a = vmMmap(p, 0x40000000, 2 * 4096, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
    expect(doUserAddrFault(p, a, 'write').signal).toBeNull();
    const shm = paOf(pte(p, a));
    const c = dupMm(p);
    expect(doUserAddrFault(c, a, 'read').signal).toBeNull();
    expect(paOf(pte(c, a))).toBe(shm);
    expect(doMunmap(p, a, 2 * 4096)).toBe(0);
    expect(m.meta.getRefcount(shm)).toBe(2); // the child's mapping and the shmem page cache
    exitMmap(c);
    expect(m.meta.getRefcount(shm)).toBe(0);
    exitMmap(p);
    expect(m.frames.freeFrames).toBe(free0);
  });

  it('munmap of an unaligned address is -EINVAL; of a hole is 0', () => {
    const m = machine();
    const mm = m.newMm();
    expect(doMunmap(mm, 0x40000800, 4096)).toBe(-EINVAL);
    expect(doMunmap(mm, 0x40000000, 4096)).toBe(0);
  });
});

describe('mprotect (mm/mprotect.c)', () => {
  it('-EACCES without VM_MAYWRITE; -ENOMEM over a hole; -EINVAL unaligned', () => {
    const m = machine();
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 2 * 4096, PROT_READ, ANON | MAP_FIXED);
    const vma = mm.vmaLookup(a)!;
    vma.vmFlags = (vma.vmFlags & ~VM_MAYWRITE) >>> 0;
    expect(doMprotect(mm, a, 4096, RW)).toBe(-EACCES);
    expect(doMprotect(mm, a, 4096, PROT_READ | PROT_EXEC)).toBe(0);
    vmMmap(mm, 0x40004000, 4096, PROT_READ, ANON | MAP_FIXED);
    expect(doMprotect(mm, 0x40000000, 5 * 4096, PROT_READ)).toBe(-ENOMEM);
    expect(doMprotect(mm, 0x40000800, 4096, PROT_READ)).toBe(-EINVAL);
  });

  it('the VMA splits in three; the ptes are rewritten (RW off, D moved to SAVED_DIRTY) and the range flushed', () => {
    const m = machine();
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 3 * 4096, RW, ANON | MAP_POPULATE | MAP_FIXED);
    const flushes: Array<[number, number]> = [];
    m.tlbFlushListeners.push((ev) => flushes.push([ev.start, ev.end]));
    expect(doMprotect(mm, a + 4096, 4096, PROT_READ)).toBe(0);
    expect(mm.vmaList.map((v) => [v.vmStart, v.vmEnd, v.vmFlags & (VM_READ | VM_WRITE | VM_EXEC)])).toEqual([
      [a, a + 4096, VM_READ | VM_WRITE],
      [a + 4096, a + 2 * 4096, VM_READ],
      [a + 2 * 4096, a + 3 * 4096, VM_READ | VM_WRITE],
    ]);
    // P|US|A|NX with D (bit 6) moved to SAVED_DIRTY (bit 58): 0x8400000000000025
    expect(flagsOf(pte(mm, a + 4096))).toBe(0x8400000000000025n);
    expect(flagsOf(pte(mm, a))).toBe(0x8000000000000067n);
    expect(flushes).toContainEqual([a + 4096, a + 2 * 4096]);
    // back to RW: an exclusive anonymous page becomes writable at once, dirty again
    expect(doMprotect(mm, a + 4096, 4096, RW)).toBe(0);
    expect(flagsOf(pte(mm, a + 4096))).toBe(0x8000000000000067n);
  });

  it('PROT_EXEC clears NX; PROT_NONE leaves a non-present, not-none pte', () => {
    const m = machine();
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 4096, RW, ANON | MAP_POPULATE | MAP_FIXED);
    const pa = paOf(pte(mm, a));
    expect(doMprotect(mm, a, 4096, PROT_READ | PROT_EXEC)).toBe(0);
    expect(flagsOf(pte(mm, a))).toBe(0x0400000000000025n);
    expect(doMprotect(mm, a, 4096, PROT_NONE)).toBe(0);
    const v = pte(mm, a);
    expect(v & 1n).toBe(0n); // P clear
    expect(v & 0x100n).toBe(0x100n); // _PAGE_PROTNONE (bit 8)
    expect(doMprotect(mm, a, 4096, RW)).toBe(0);
    expect(paOf(pte(mm, a))).toBe(pa);
    expect(flagsOf(pte(mm, a))).toBe(0x8000000000000067n);
  });

  it('after fork, RO → RW leaves shared anonymous pages write-protected (not exclusive)', () => {
    const m = machine();
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 4096, RW, ANON | MAP_POPULATE | MAP_FIXED);
    const child = dupMm(mm);
    expect(doMprotect(mm, a, 4096, PROT_READ)).toBe(0);
    expect(doMprotect(mm, a, 4096, RW)).toBe(0);
    expect(flagsOf(pte(mm, a)) & 2n).toBe(0n);
    exitMmap(child);
  });

  it('RO → RW leaves the zero page write-protected', () => {
    const m = machine();
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 4096, PROT_READ, ANON | MAP_POPULATE | MAP_FIXED);
    expect(doMprotect(mm, a, 4096, RW)).toBe(0);
    expect(paOf(pte(mm, a))).toBe(m.zeroPagePa);
    expect(flagsOf(pte(mm, a)) & 2n).toBe(0n);
  });

  it('mm/mprotect.c do_mprotect_pkey: the VMAs before a hole or a refused VMA keep their new protection (-ENOMEM / -EACCES, nothing undone)', () => {
    // Regression (found by test/prop): the whole range used to be checked before any change.
    const m = machine();
    const mm = m.newMm();
    const rights = (addr: number): number => mm.vmaLookup(addr)!.vmFlags & (VM_READ | VM_WRITE | VM_EXEC);
    expect(vmMmap(mm, 0x40000000, 2 * 4096, RW, ANON | MAP_FIXED)).toBe(0x40000000);
    expect(vmMmap(mm, 0x40003000, 4096, RW, ANON | MAP_FIXED)).toBe(0x40003000);
    // [0x40000000, 0x40002000) mapped, a hole at 0x40002000, 0x40003000 mapped.
    expect(doMprotect(mm, 0x40000000, 4 * 4096, PROT_READ)).toBe(-ENOMEM);
    expect(rights(0x40000000)).toBe(VM_READ);
    expect(rights(0x40001000)).toBe(VM_READ);
    expect(rights(0x40003000)).toBe(VM_READ | VM_WRITE);
    // A range that starts in the hole changes nothing.
    expect(doMprotect(mm, 0x40002000, 2 * 4096, PROT_NONE)).toBe(-ENOMEM);
    expect(rights(0x40003000)).toBe(VM_READ | VM_WRITE);
    // -EACCES at the second VMA: the first keeps PROT_READ|PROT_WRITE.
    expect(vmMmap(mm, 0x40002000, 4096, PROT_READ, ANON | MAP_FIXED)).toBe(0x40002000);
    const v = mm.vmaLookup(0x40002000)!;
    v.vmFlags = (v.vmFlags & ~VM_MAYWRITE) >>> 0;
    expect(doMprotect(mm, 0x40000000, 4 * 4096, RW)).toBe(-EACCES);
    expect(rights(0x40000000)).toBe(VM_READ | VM_WRITE);
    expect(rights(0x40002000)).toBe(VM_READ);
    expect(rights(0x40003000)).toBe(VM_READ | VM_WRITE);
  });
});

describe('fork (dup_mmap, copy_page_range)', () => {
  it('both sides are write-protected; the page has mapcount 2 and refcount 2; the child pte is old', () => {
    const m = machine();
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 4096, RW, ANON | MAP_POPULATE | MAP_FIXED);
    const pa = paOf(pte(mm, a));
    expect(m.meta.testFlag(pa, PG_anon_exclusive)).toBe(true);
    const child = dupMm(mm);
    // parent: P|US|A|NX + SAVED_DIRTY = 0x8400000000000025; child: the same without A
    expect(flagsOf(pte(mm, a))).toBe(0x8400000000000025n);
    expect(flagsOf(pte(child, a))).toBe(0x8400000000000005n);
    expect(paOf(pte(child, a))).toBe(pa);
    expect(m.meta.getMapcount(pa)).toBe(2);
    expect(m.meta.getRefcount(pa)).toBe(2);
    expect(m.meta.testFlag(pa, PG_anon_exclusive)).toBe(false);
    expect(child.rss[MM_ANONPAGES]).toBe(1);
  });

  it('VM_DONTCOPY VMAs are not inherited; VM_WIPEONFORK ones are, empty', () => {
    const m = machine();
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 4096, RW, ANON | MAP_POPULATE | MAP_FIXED);
    const b = vmMmap(mm, 0x50000000, 4096, RW, ANON | MAP_POPULATE | MAP_FIXED);
    mmapWriteLock(mm);
    mm.vmaLookup(a)!.vmFlags |= VM_DONTCOPY; // madvise(MADV_DONTFORK)
    mm.vmaLookup(b)!.vmFlags |= VM_WIPEONFORK; // madvise(MADV_WIPEONFORK)
    mmapWriteUnlock(mm);
    const child = dupMm(mm);
    expect(child.vmaLookup(a)).toBeNull();
    expect(child.vmaLookup(b)).not.toBeNull();
    expect(pte(child, b)).toBe(0n);
    expect(child.rssPages).toBe(0);
    // the wiped range reads zeros again in the child (a new page on write)
    expect(doUserAddrFault(child, b, 'write').signal).toBeNull();
    expect(paOf(pte(child, b))).not.toBe(paOf(pte(mm, b)));
  });

  it('file-backed ptes without anonymous pages are not copied (vma_needs_copy); the child faults them in', () => {
    const m = machine();
    const f = createFile(m, 'f', 4 * 4096);
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 4 * 4096, PROT_READ, MAP_SHARED | MAP_FIXED, { file: f });
    doUserAddrFault(mm, a, 'read');
    const child = dupMm(mm);
    expect(pte(child, a)).toBe(0n);
    expect(child.rss[MM_FILEPAGES]).toBe(0);
    expect(doUserAddrFault(child, a, 'read').signal).toBeNull();
    expect(paOf(pte(child, a))).toBe(f.pages.get(0));
  });

  it('a private file VMA with a COW page (anon_vma set) is copied', () => {
    const m = machine();
    const f = createFile(m, 'f', 4 * 4096);
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 2 * 4096, RW, MAP_PRIVATE | MAP_FIXED, { file: f });
    doUserAddrFault(mm, a, 'write');
    doUserAddrFault(mm, a + 4096, 'read');
    const child = dupMm(mm);
    expect(paOf(pte(child, a))).toBe(paOf(pte(mm, a)));
    expect(paOf(pte(child, a + 4096))).toBe(f.pages.get(1));
    expect(child.rss[MM_ANONPAGES]).toBe(1);
    expect(child.rss[MM_FILEPAGES]).toBe(1);
  });
});

describe('exit_mmap returns every frame', () => {
  for (const g of ['x86_64-4level', 'x86_64-5level', 'arm64-4k-39', 'arm64-16k-47', 'arm64-64k-52'] as const) {
    it(`${g}: anonymous, THP, huge zero, file, shmem, hugetlb, fork, exit: free frames as before but the page cache`, () => {
      const m = machine(g, 256 * MiB);
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const pmd = m.geo.PMD_SIZE;
      const mm = m.newMm('p');
      const a = vmMmap(mm, 0, 8 * ps, RW, ANON);
      for (let i = 0; i < 8; i += 2) expect(doUserAddrFault(mm, a + i * ps, i % 4 ? 'read' : 'write').signal).toBeNull();
      const f = createFile(m, 'f', 4 * ps);
      const fa = vmMmap(mm, 0, 4 * ps, RW, MAP_SHARED, { file: f });
      expect(doUserAddrFault(mm, fa, 'write').signal).toBeNull();
      const sh = vmMmap(mm, 0, 2 * ps, RW, MAP_SHARED | MAP_ANONYMOUS);
      expect(doUserAddrFault(mm, sh, 'write').signal).toBeNull();
      if (pmd <= 32 * MiB) {
        const t = vmMmap(mm, 0, 2 * pmd, RW, ANON);
        expect(t % pmd).toBe(0);
        expect(doUserAddrFault(mm, t, 'write').signal).toBeNull();
        expect(doUserAddrFault(mm, t + pmd, 'read').signal).toBeNull();
        const h = vmMmap(mm, 0, pmd, RW, ANON | MAP_HUGETLB);
        expect(h).toBeGreaterThan(0);
        expect(doUserAddrFault(mm, h, 'write').signal).toBeNull();
      }
      const child = dupMm(mm);
      expect(doUserAddrFault(child, a, 'write').signal).toBeNull();
      expect(doUserAddrFault(child, a + 5 * ps, 'write').signal).toBeNull();
      exitMmap(mm);
      exitMmap(child);
      expect(m.hugeZeroFolio).toBe(-1);
      // what remains is the regular file's page cache (one page here)
      expect(f.pages.size).toBe(1);
      expect(m.frames.freeFrames).toBe(free0 - f.pages.size * (ps / 4096));
    });
  }

  it('exit twice is a KernelAssertionError', () => {
    const m = machine();
    const mm = m.newMm();
    exitMmap(mm);
    expect(() => exitMmap(mm)).toThrow(/exit_mmap/);
  });

  it('doMmap without the mmap write lock is refused (mmap_assert_write_locked)', () => {
    const m = machine();
    const mm = m.newMm();
    expect(() => doMmap(mm, 0, 4096, RW, ANON)).toThrow(/mmap_assert_write_locked/);
  });
});
