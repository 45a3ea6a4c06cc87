/**
 * Page faults: mm/memory.c (do_anonymous_page, do_read/cow/shared_fault, do_wp_page,
 * finish_fault, finish_mkwrite_fault, do_fault_around), mm/huge_memory.c (anonymous THP, the huge
 * zero folio), mm/hugetlb.c, and the arch fault handlers' access_error.
 *
 * Expected pte values are written by hand from the bit positions:
 *  x86-64 (arch/x86/include/asm/pgtable_types.h): P 0, RW 1, US 2, A 5, D 6, PSE 7, SPECIAL 9
 *    (_PAGE_BIT_SOFTW1), NX 63; the frame in bits 51:12.
 *  ARM64 4K (arch/arm64/include/asm/pgtable-hwdef.h, pgtable-prot.h): VALID|PAGE 1:0 = 0b11,
 *    AP[1] USER 6, AP[2] RDONLY 7, SH 9:8 = 0b11, AF 10, nG 11, DBM/PTE_WRITE 51, PXN 53, UXN 54,
 *    PTE_DIRTY 55, PTE_SPECIAL 56; the frame in bits 47:12.
 */
import { describe, expect, it } from 'vitest';
import {
  Machine,
  vmMmap,
  doUserAddrFault,
  handleMmFault,
  finishMkwriteFault,
  VmFault,
  dupMm,
  exitMmap,
  createFile,
  lookupEntry,
  mmapReadLock,
  mmapReadUnlock,
  KernelAssertionError,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_HUGETLB,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  PROT_EXEC,
  MM_ANONPAGES,
  MM_FILEPAGES,
  MM_SHMEMPAGES,
  FAULT_FLAG_WRITE,
  FAULT_FLAG_USER,
  VM_FAULT_MAJOR,
  VM_FAULT_LOCKED,
  VM_FAULT_NOPAGE,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
  VM_FAULT_WRITE,
  VM_HUGEPAGE,
  VM_MAYWRITE,
  VM_WRITE,
  PG_dirty,
  PG_anon_exclusive,
  FOLL_FORCE,
  accessRemoteVm,
  type MmStruct,
  type GeometryName,
} from '../../src/index';

const MiB = 2 ** 20;
/** The frame bits of a pte: x86-64 51:12, ARM64 (4K, 48-bit OA) 47:12. */
const X86_PFN_MASK = ((1n << 52n) - 1n) & ~0xfffn;
const ARM_PFN_MASK = ((1n << 48n) - 1n) & ~0xfffn;

function machine(g: GeometryName = 'x86_64-4level', memSize = 64 * MiB): Machine {
  return new Machine({ geometry: g, memSize });
}

/** The entry mapping addr: its value, level and the physical address it maps. */
function entryAt(mm: MmStruct, addr: number): { level: string; v: bigint; lo: number; hi: number; ptr: number } {
  const r = lookupEntry(mm, addr);
  if (r.level === 'none') return { level: 'none', v: 0n, lo: 0, hi: 0, ptr: -1 };
  const pt = mm.machine.pgtable;
  return { level: r.level, v: pt.val(r.ptr), lo: pt.lo(r.ptr), hi: pt.hi(r.ptr), ptr: r.ptr };
}

function pteFlags(m: Machine, v: bigint): bigint {
  return v & ~(m.geo.arch === 'x86_64' ? X86_PFN_MASK : ARM_PFN_MASK);
}

/** Physical address a present pte maps (from the frame bits by hand, not through the arch module). */
function ptePa(m: Machine, v: bigint): number {
  return Number(v & (m.geo.arch === 'x86_64' ? X86_PFN_MASK : ARM_PFN_MASK));
}

function anon(mm: MmStruct, len: number, prot = PROT_READ | PROT_WRITE, flags = 0, addr = 0): number {
  const a = vmMmap(mm, addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags);
  expect(a).toBeGreaterThan(0);
  return a;
}

function fill(n: number, byte: number): Uint8Array {
  return new Uint8Array(n).fill(byte);
}

function readBytes(m: Machine, pa: number, n: number): Uint8Array {
  return new Uint8Array(m.mem.buffer, m.mem.offset(pa, n), n).slice();
}

function withRead<T>(mm: MmStruct, fn: () => T): T {
  mmapReadLock(mm);
  try {
    return fn();
  } finally {
    mmapReadUnlock(mm);
  }
}

describe('anonymous faults (mm/memory.c do_anonymous_page)', () => {
  it('x86-64: a read maps the zero page: special, read-only, no rss (pgtable_types.h: P|US|A|SPECIAL|NX = 0x8000000000000225)', () => {
    const m = machine();
    const mm = m.newMm();
    const a = anon(mm, 4 * 4096);
    const zeroMap = m.meta.getMapcount(m.zeroPagePa);
    expect(doUserAddrFault(mm, a, 'read')).toEqual({ fault: 0, signal: null });
    const e = entryAt(mm, a);
    expect(e.level).toBe('pte');
    expect(pteFlags(m, e.v)).toBe(0x8000000000000225n);
    expect(ptePa(m, e.v)).toBe(m.zeroPagePa);
    expect(mm.rss[MM_ANONPAGES]).toBe(0);
    expect(mm.rssPages).toBe(0);
    expect(m.meta.getMapcount(m.zeroPagePa)).toBe(zeroMap); // the zero page is not counted (vm_normal_page: special)
  });

  it('ARM64 4K: a read maps the zero page: PTE_SPECIAL, AP[2] read-only, UXN|PXN (0x0160000000000fc3)', () => {
    const m = machine('arm64-4k-48');
    const mm = m.newMm();
    const a = anon(mm, 4 * 4096);
    expect(doUserAddrFault(mm, a, 'read').signal).toBeNull();
    const e = entryAt(mm, a);
    // VALID|PAGE 0x3, USER 0x40, RDONLY 0x80, SH 0x300, AF 0x400, nG 0x800 = 0xfc3; PXN|UXN|SPECIAL = bits 53,54,56
    expect(pteFlags(m, e.v)).toBe(0x0160000000000fc3n);
    expect(ptePa(m, e.v)).toBe(m.zeroPagePa);
    expect(mm.rssPages).toBe(0);
  });

  it('x86-64: a write maps a new zeroed exclusive page, writable and dirty (P|RW|US|A|D|NX = 0x8000000000000067), MM_ANONPAGES +1', () => {
    const m = machine();
    const mm = m.newMm();
    const a = anon(mm, 4 * 4096);
    expect(doUserAddrFault(mm, a + 123, 'write').signal).toBeNull();
    const e = entryAt(mm, a);
    expect(pteFlags(m, e.v)).toBe(0x8000000000000067n);
    const pa = ptePa(m, e.v);
    expect(pa).not.toBe(m.zeroPagePa);
    expect(mm.rss[MM_ANONPAGES]).toBe(1);
    expect(m.meta.getRefcount(pa)).toBe(1);
    expect(m.meta.getMapcount(pa)).toBe(1);
    expect(m.meta.testFlag(pa, PG_anon_exclusive)).toBe(true);
    expect(readBytes(m, pa, 4096).every((x) => x === 0)).toBe(true);
    // the neighbours are untouched
    expect(entryAt(mm, a + 4096).v).toBe(0n);
  });

  it('ARM64 4K: a write maps a writable dirty page: DBM set, AP[2] clear, PTE_DIRTY (0x00e8000000000f43)', () => {
    const m = machine('arm64-4k-48');
    const mm = m.newMm();
    const a = anon(mm, 4 * 4096);
    expect(doUserAddrFault(mm, a, 'write').signal).toBeNull();
    const e = entryAt(mm, a);
    // 0xfc3 without RDONLY (0x80) = 0xf43; bits 51 (DBM), 53, 54, 55 = 0x00e8 << 48
    expect(pteFlags(m, e.v)).toBe(0x00e8000000000f43n);
    expect(mm.rss[MM_ANONPAGES]).toBe(1);
  });

  it('a write after a read replaces the zero page: COW from zeros, with a TLB flush of that page', () => {
    const m = machine();
    const mm = m.newMm();
    const a = anon(mm, 4 * 4096);
    expect(doUserAddrFault(mm, a + 4096, 'read').signal).toBeNull();
    const flushes: Array<{ start: number; end: number }> = [];
    m.tlbFlushListeners.push((ev) => flushes.push({ start: ev.start, end: ev.end }));
    expect(doUserAddrFault(mm, a + 4096, 'write').signal).toBeNull();
    const e = entryAt(mm, a + 4096);
    expect(ptePa(m, e.v)).not.toBe(m.zeroPagePa);
    expect(pteFlags(m, e.v)).toBe(0x8000000000000067n);
    expect(readBytes(m, ptePa(m, e.v), 4096).every((x) => x === 0)).toBe(true);
    expect(mm.rss[MM_ANONPAGES]).toBe(1);
    expect(flushes).toEqual([{ start: a + 4096, end: a + 8192 }]);
  });
});

describe('file faults (mm/filemap.c filemap_fault, mm/memory.c do_read_fault)', () => {
  it('first read is VM_FAULT_MAJOR|VM_FAULT_LOCKED; the page holds a page-cache and a mapping reference', () => {
    const m = machine();
    const f = createFile(m, 'f', 4 * 4096);
    f.backing.set(0, fill(4096, 0xab));
    const mm = m.newMm();
    const a = vmMmap(mm, 0, 4 * 4096, PROT_READ, MAP_PRIVATE, { file: f });
    const vma = mm.vmaLookup(a)!;
    const ret = withRead(mm, () => handleMmFault(vma, a, FAULT_FLAG_USER));
    expect(ret).toBe(VM_FAULT_MAJOR | VM_FAULT_LOCKED);
    const folio = f.pages.get(0)!;
    expect(folio).toBeDefined();
    expect(m.meta.getRefcount(folio)).toBe(2);
    expect(m.meta.getMapcount(folio)).toBe(1);
    expect(mm.rss[MM_FILEPAGES]).toBe(1);
    expect(readBytes(m, folio, 4)).toEqual(new Uint8Array([0xab, 0xab, 0xab, 0xab]));
    // x86-64 file read pte: P|US|A|NX, not special
    expect(pteFlags(m, entryAt(mm, a).v)).toBe(0x8000000000000025n);
    // A second process finds it cached: fault-around maps it (VM_FAULT_NOPAGE), no major fault.
    const mm2 = m.newMm('2');
    const b = vmMmap(mm2, 0, 4 * 4096, PROT_READ, MAP_PRIVATE, { file: f });
    const ret2 = withRead(mm2, () => handleMmFault(mm2.vmaLookup(b)!, b, FAULT_FLAG_USER));
    expect(ret2 & VM_FAULT_MAJOR).toBe(0);
    expect(ret2).toBe(VM_FAULT_NOPAGE);
    expect(m.meta.getRefcount(folio)).toBe(3);
    expect(m.meta.getMapcount(folio)).toBe(2);
  });

  for (const [g, oldPrefault] of [
    ['x86_64-4level', false],
    ['arm64-4k-48', true],
  ] as const) {
    it(`${g}: fault-around maps the cached neighbours in the aligned 64 KiB window, ${oldPrefault ? 'old (arch_wants_old_prefaulted_pte)' : 'young'}`, () => {
      const m = machine(g);
      const f = createFile(m, 'f', 32 * 4096);
      const warm = m.newMm('warm');
      const w = vmMmap(warm, 0, 32 * 4096, PROT_READ, MAP_SHARED, { file: f });
      for (let i = 0; i < 32; i++) expect(doUserAddrFault(warm, w + i * 4096, 'read').signal).toBeNull();
      expect(f.pages.size).toBe(32);
      const mm = m.newMm();
      // page-aligned in the pmd: fault at page 21 → window pages 16..31 (16 pages = 64 KiB / 4 KiB)
      const a = vmMmap(mm, 0x40000000, 32 * 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED, { file: f });
      expect(a).toBe(0x40000000);
      expect(doUserAddrFault(mm, a + 21 * 4096, 'read').signal).toBeNull();
      for (let i = 0; i < 32; i++) {
        const e = entryAt(mm, a + i * 4096);
        const mapped = i >= 16;
        expect(e.level === 'pte' && m.bits.ptePresent(e.lo, e.hi), `page ${i}`).toBe(mapped);
        if (!mapped) continue;
        expect(ptePa(m, e.v)).toBe(f.pages.get(i));
        const young = m.bits.pteYoung(e.lo, e.hi);
        expect(young, `page ${i} young`).toBe(i === 21 ? true : !oldPrefault);
        expect(m.bits.pteWrite(e.lo, e.hi)).toBe(false);
      }
      expect(mm.rss[MM_FILEPAGES]).toBe(16);
    });
  }

  it('fault-around stays inside the VMA', () => {
    const m = machine();
    const f = createFile(m, 'f', 32 * 4096);
    const warm = m.newMm('warm');
    const w = vmMmap(warm, 0, 32 * 4096, PROT_READ, MAP_SHARED, { file: f });
    for (let i = 0; i < 32; i++) doUserAddrFault(warm, w + i * 4096, 'read');
    const mm = m.newMm();
    // 4 pages of the file from page 2, at a 64 KiB-aligned address
    const a = vmMmap(mm, 0x40000000, 4 * 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED, { file: f, offset: 2 * 4096 });
    expect(doUserAddrFault(mm, a + 4096, 'read').signal).toBeNull();
    for (let i = 0; i < 4; i++) expect(ptePa(m, entryAt(mm, a + i * 4096).v)).toBe(f.pages.get(2 + i));
    expect(entryAt(mm, a + 4 * 4096).v).toBe(0n);
    expect(mm.rss[MM_FILEPAGES]).toBe(4);
  });

  it('fault-around stops at the pmd boundary even when the VMA and the cache go on', () => {
    const m = machine();
    const f = createFile(m, 'f', 32 * 4096);
    const warm = m.newMm('warm');
    const w = vmMmap(warm, 0, 32 * 4096, PROT_READ, MAP_SHARED, { file: f });
    for (let i = 0; i < 32; i++) doUserAddrFault(warm, w + i * 4096, 'read');
    const mm = m.newMm();
    // 0x401f0000 + 16 pages = 0x40200000, a 2 MiB boundary; the VMA spans it
    const a = vmMmap(mm, 0x401f0000, 32 * 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED, { file: f });
    expect(doUserAddrFault(mm, 0x401ff000, 'read').signal).toBeNull();
    for (let i = 0; i < 16; i++) expect(ptePa(m, entryAt(mm, a + i * 4096).v), `page ${i}`).toBe(f.pages.get(i));
    expect(lookupEntry(mm, 0x40200000).level).toBe('none'); // no table allocated across the boundary
    expect(mm.rss[MM_FILEPAGES]).toBe(16);
  });

  it('a read beyond i_size is SIGBUS (filemap_fault: index >= DIV_ROUND_UP(i_size, PAGE_SIZE))', () => {
    const m = machine();
    const f = createFile(m, 'f', 4096 + 100); // two pages hold i_size
    const mm = m.newMm();
    const a = vmMmap(mm, 0, 4 * 4096, PROT_READ, MAP_PRIVATE, { file: f });
    expect(doUserAddrFault(mm, a + 4096, 'read').signal).toBeNull();
    const r = doUserAddrFault(mm, a + 2 * 4096, 'read');
    expect(r.signal).toBe('SIGBUS');
    expect(r.code).toBe('BUS_ADRERR');
    expect(r.fault & VM_FAULT_SIGBUS).toBe(VM_FAULT_SIGBUS);
    expect(f.pages.has(2)).toBe(false);
  });

  it('a private file write maps a new anonymous copy; the page-cache page is untouched', () => {
    const m = machine();
    const f = createFile(m, 'f', 4 * 4096);
    f.backing.set(1, fill(4096, 0x5a));
    const mm = m.newMm();
    const a = vmMmap(mm, 0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, { file: f });
    expect(doUserAddrFault(mm, a + 4096, 'write').signal).toBeNull();
    const cache = f.pages.get(1)!;
    const e = entryAt(mm, a + 4096);
    const pa = ptePa(m, e.v);
    expect(pa).not.toBe(cache);
    expect(pteFlags(m, e.v)).toBe(0x8000000000000067n);
    expect(readBytes(m, pa, 4096).every((x) => x === 0x5a)).toBe(true);
    expect(m.meta.testFlag(pa, PG_anon_exclusive)).toBe(true);
    expect(mm.rss[MM_ANONPAGES]).toBe(1);
    expect(mm.rss[MM_FILEPAGES]).toBe(0);
    // the cache page: only the page cache's reference, unmapped, clean, contents as on disk
    expect(m.meta.getRefcount(cache)).toBe(1);
    expect(m.meta.getMapcount(cache)).toBe(0);
    expect(m.meta.testFlag(cache, PG_dirty)).toBe(false);
    new Uint8Array(m.mem.buffer, m.mem.offset(pa, 1), 1)[0] = 1;
    expect(readBytes(m, cache, 1)[0]).toBe(0x5a);
  });

  it('a shared file write calls page_mkwrite, then maps a writable dirty pte and marks the folio PG_dirty', () => {
    const m = machine();
    const events: string[] = [];
    m.onEvent = (k) => events.push(k);
    const f = createFile(m, 'f', 4 * 4096);
    const mm = m.newMm();
    const a = vmMmap(mm, 0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, { file: f });
    expect(doUserAddrFault(mm, a, 'write').signal).toBeNull();
    expect(events).toContain('page_mkwrite');
    const folio = f.pages.get(0)!;
    const e = entryAt(mm, a);
    expect(ptePa(m, e.v)).toBe(folio);
    expect(pteFlags(m, e.v)).toBe(0x8000000000000067n);
    expect(m.meta.testFlag(folio, PG_dirty)).toBe(true);
    expect(mm.rss[MM_FILEPAGES]).toBe(1);
    expect(m.meta.getRefcount(folio)).toBe(2);
  });

  it('shmem (MAP_SHARED|MAP_ANONYMOUS) write maps writable at once, counted as MM_SHMEMPAGES, no page_mkwrite', () => {
    const m = machine();
    const events: string[] = [];
    m.onEvent = (k) => events.push(k);
    const mm = m.newMm();
    const a = vmMmap(mm, 0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    expect(doUserAddrFault(mm, a, 'read').signal).toBeNull();
    const e = entryAt(mm, a);
    // shmem has no write notification: vm_page_prot is the shared writable one (P|RW|US|A|NX)
    expect(pteFlags(m, e.v)).toBe(0x8000000000000027n);
    expect(mm.rss[MM_SHMEMPAGES]).toBe(1);
    expect(doUserAddrFault(mm, a + 4096, 'write').signal).toBeNull();
    expect(events).not.toContain('page_mkwrite');
  });

  it('shared file read then write: a write-protect fault runs page_mkwrite and makes the same pte writable', () => {
    const m = machine();
    const events: string[] = [];
    m.onEvent = (k) => events.push(k);
    const f = createFile(m, 'f', 4 * 4096);
    const mm = m.newMm();
    const a = vmMmap(mm, 0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, { file: f });
    expect(doUserAddrFault(mm, a, 'read').signal).toBeNull();
    // vma_wants_writenotify: read-only until the first write (P|US|A|NX)
    expect(pteFlags(m, entryAt(mm, a).v)).toBe(0x8000000000000025n);
    expect(m.meta.testFlag(f.pages.get(0)!, PG_dirty)).toBe(false);
    expect(doUserAddrFault(mm, a, 'write').signal).toBeNull();
    expect(events.filter((k) => k === 'page_mkwrite')).toHaveLength(1);
    expect(ptePa(m, entryAt(mm, a).v)).toBe(f.pages.get(0));
    expect(pteFlags(m, entryAt(mm, a).v)).toBe(0x8000000000000067n);
    expect(m.meta.testFlag(f.pages.get(0)!, PG_dirty)).toBe(true);
    expect(mm.rss[MM_FILEPAGES]).toBe(1);
    expect(m.meta.getRefcount(f.pages.get(0)!)).toBe(2);
  });

  it('finish_mkwrite_fault (seed kernel-doc): VM_FAULT_WRITE on success, 0 when the pte changed', () => {
    const m = machine();
    const f = createFile(m, 'f', 4 * 4096);
    const mm = m.newMm();
    const a = vmMmap(mm, 0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, { file: f });
    doUserAddrFault(mm, a, 'read');
    doUserAddrFault(mm, a + 4096, 'read');
    const vma = mm.vmaLookup(a)!;
    const r0 = lookupEntry(mm, a);
    withRead(mm, () => {
      const vmf = new VmFault(vma, a, FAULT_FLAG_WRITE);
      vmf.pmd = r0.pmd;
      vmf.origPte = m.pgtable.val(r0.ptr);
      expect(finishMkwriteFault(vmf)).toBe(VM_FAULT_WRITE);
      expect(m.bits.pteWrite(m.pgtable.lo(r0.ptr), m.pgtable.hi(r0.ptr))).toBe(true);
      // the pte changed under us (e.g. accessed bit cleared by reclaim): 0, pte left alone
      const r1 = lookupEntry(mm, a + 4096);
      const vmf2 = new VmFault(vma, a + 4096, FAULT_FLAG_WRITE);
      vmf2.pmd = r1.pmd;
      vmf2.origPte = m.pgtable.val(r1.ptr);
      const changed = m.bits.pteModify(vmf2.origPte, { young: false });
      m.pgtable.set(r1.ptr, changed);
      expect(finishMkwriteFault(vmf2)).toBe(0);
      expect(m.pgtable.val(r1.ptr)).toBe(changed);
    });
  });

  it('finish_mkwrite_fault on a private mapping: WARN_ON_ONCE(!(vma->vm_flags & VM_SHARED))', () => {
    const m = machine();
    const mm = m.newMm();
    const a = anon(mm, 4096);
    doUserAddrFault(mm, a, 'read');
    const vmf = new VmFault(mm.vmaLookup(a)!, a, FAULT_FLAG_WRITE);
    vmf.pmd = lookupEntry(mm, a).pmd;
    expect(() => finishMkwriteFault(vmf)).toThrow(KernelAssertionError);
  });
});

describe('PROT_NONE file pages (arch/x86/include/asm/pgtable-invert.h: a PROT_NONE pte holds its pfn inverted)', () => {
  it('x86-64: a FOLL_FORCE read (access_remote_vm, as PTRACE_PEEKDATA) of a PROT_NONE MAP_SHARED file maps PAGE_NONE (A|PROTNONE = 0x120) with ~pfn in bits 51:12, the fault-around neighbour too', () => {
    // Regression (found by test/prop): set_pte_range masked the frame out of the first pte with
    // pfn_pte(pfn, 0), which leaves an inverted pfn behind — the next pfn_pte threw.
    const m = machine();
    const f = createFile(m, 'f', 4 * 4096);
    f.backing.set(0, fill(4096, 0x5a));
    f.backing.set(1, fill(4096, 0x6b));
    const other = m.newMm('other');
    const b = vmMmap(other, 0, 4 * 4096, PROT_READ, MAP_SHARED, { file: f });
    expect(doUserAddrFault(other, b + 4096, 'read').signal).toBeNull(); // page 1 is now cached
    const mm = m.newMm();
    const a = vmMmap(mm, 0, 4 * 4096, PROT_NONE, MAP_SHARED, { file: f });
    const buf = new Uint8Array(4);
    expect(accessRemoteVm(mm, a, buf, 4, FOLL_FORCE)).toBe(4);
    expect([...buf]).toEqual([0x5a, 0x5a, 0x5a, 0x5a]);
    const p0 = f.pages.get(0)!;
    const p1 = f.pages.get(1)!;
    expect(entryAt(mm, a).v).toBe((X86_PFN_MASK & ~BigInt(p0)) | 0x120n);
    expect(entryAt(mm, a + 4096).v).toBe((X86_PFN_MASK & ~BigInt(p1)) | 0x120n);
    expect(mm.rss[MM_FILEPAGES]).toBe(2);
    // The hardware cannot use them (P = 0): a user read is still SEGV_ACCERR.
    expect(doUserAddrFault(mm, a, 'read').code).toBe('SEGV_ACCERR');
    exitMmap(mm);
    exitMmap(other);
  });
});

describe('write-protect faults on anonymous memory (do_wp_page)', () => {
  it('reuses an exclusive page: no new page, no copy', () => {
    const m = machine();
    const mm = m.newMm();
    const a = anon(mm, 4096);
    doUserAddrFault(mm, a, 'write');
    const pa = ptePa(m, entryAt(mm, a).v);
    // the child goes away again: the page's only reference is the parent's (wp_can_reuse_anon_folio)
    const child = dupMm(mm);
    exitMmap(child);
    expect(m.meta.testFlag(pa, PG_anon_exclusive)).toBe(false);
    expect(m.bits.pteWrite(entryAt(mm, a).lo, entryAt(mm, a).hi)).toBe(false);
    const free0 = m.frames.freeFrames;
    expect(doUserAddrFault(mm, a, 'write').signal).toBeNull();
    expect(ptePa(m, entryAt(mm, a).v)).toBe(pa);
    expect(pteFlags(m, entryAt(mm, a).v)).toBe(0x8000000000000067n);
    expect(m.frames.freeFrames).toBe(free0);
    expect(m.meta.testFlag(pa, PG_anon_exclusive)).toBe(true);
  });

  it('copies a page shared with a forked child, keeping the data; the child keeps the original', () => {
    const m = machine();
    const mm = m.newMm();
    const a = anon(mm, 4096);
    doUserAddrFault(mm, a, 'write');
    const pa = ptePa(m, entryAt(mm, a).v);
    new Uint8Array(m.mem.buffer, m.mem.offset(pa, 4), 4).set([1, 2, 3, 4]);
    const child = dupMm(mm);
    expect(doUserAddrFault(mm, a, 'write').signal).toBeNull();
    const np = ptePa(m, entryAt(mm, a).v);
    expect(np).not.toBe(pa);
    expect([...readBytes(m, np, 4)]).toEqual([1, 2, 3, 4]);
    expect(ptePa(m, entryAt(child, a).v)).toBe(pa);
    expect(m.meta.getRefcount(pa)).toBe(1);
    expect(m.meta.getMapcount(pa)).toBe(1);
    // the child is now the only user: its write reuses the page
    expect(doUserAddrFault(child, a, 'write').signal).toBeNull();
    expect(ptePa(m, entryAt(child, a).v)).toBe(pa);
  });
});

describe('anonymous THP (mm/huge_memory.c)', () => {
  it('x86-64: a write fault in a 2 MiB-aligned range maps a pmd leaf (PS set) with a deposited pte table', () => {
    const m = machine();
    const mm = m.newMm();
    const a = anon(mm, 4 * MiB);
    expect(a % (2 * MiB)).toBe(0);
    const free0 = m.frames.freeFrames;
    expect(doUserAddrFault(mm, a + 5 * 4096, 'write').signal).toBeNull();
    const e = entryAt(mm, a + 5 * 4096);
    expect(e.level).toBe('pmd');
    // P|RW|US|A|D|PSE|NX = 0x80000000000000e7; the frame 2 MiB aligned
    expect(pteFlags(m, e.v)).toBe(0x80000000000000e7n);
    expect(ptePa(m, e.v) % (2 * MiB)).toBe(0);
    expect(mm.rss[MM_ANONPAGES]).toBe(512);
    expect(mm.depositedTables.has(e.ptr)).toBe(true);
    // 512 frames of THP + the deposit + pud/pmd tables (p4d folded: pgd → pud table → pmd table)
    expect(free0 - m.frames.freeFrames).toBe(512 + 1 + 2);
    expect(entryAt(mm, a + 2 * MiB).level).toBe('none');
  });

  it('a read maps the huge zero folio (special pmd); a write to it splits and COWs one page', () => {
    const m = machine();
    const mm = m.newMm();
    const a = anon(mm, 2 * MiB);
    expect(doUserAddrFault(mm, a, 'read').signal).toBeNull();
    const e = entryAt(mm, a);
    expect(e.level).toBe('pmd');
    expect(m.hugeZeroFolio).toBeGreaterThanOrEqual(0);
    expect(ptePa(m, e.v)).toBe(m.hugeZeroFolio);
    // P|US|A|PSE|SPECIAL|NX = 0x80000000000002a5
    expect(pteFlags(m, e.v)).toBe(0x80000000000002a5n);
    expect(mm.rssPages).toBe(0);
    expect(mm.hugeZeroRef).toBe(true);
    expect(doUserAddrFault(mm, a + 7 * 4096, 'write').signal).toBeNull();
    const w = entryAt(mm, a + 7 * 4096);
    expect(w.level).toBe('pte');
    expect(pteFlags(m, w.v)).toBe(0x8000000000000067n);
    expect(mm.rss[MM_ANONPAGES]).toBe(1);
    // the rest maps the small zero page
    for (const i of [0, 6, 8, 511]) {
      const z = entryAt(mm, a + i * 4096);
      expect(ptePa(m, z.v), `page ${i}`).toBe(m.zeroPagePa);
      expect(pteFlags(m, z.v)).toBe(0x8000000000000225n);
    }
  });

  it('an exclusive THP write-protected by mprotect is reused on write (same frame, pmd stays)', () => {
    const m = machine();
    const mm = m.newMm();
    const a = anon(mm, 2 * MiB);
    doUserAddrFault(mm, a, 'write');
    const pa = ptePa(m, entryAt(mm, a).v);
    const child = dupMm(mm);
    exitMmap(child);
    expect(m.bits.pteWrite(entryAt(mm, a).lo, entryAt(mm, a).hi)).toBe(false);
    expect(doUserAddrFault(mm, a + 4096, 'write').signal).toBeNull();
    const e = entryAt(mm, a);
    expect(e.level).toBe('pmd');
    expect(ptePa(m, e.v)).toBe(pa);
    expect(m.bits.pteWrite(e.lo, e.hi)).toBe(true);
  });

  it('no THP for a VMA smaller than or not covering an aligned PMD', () => {
    const m = machine();
    const mm = m.newMm();
    const a = anon(mm, MiB);
    doUserAddrFault(mm, a, 'write');
    expect(entryAt(mm, a).level).toBe('pte');
    // 2 MiB long but starting 4 KiB past a 2 MiB boundary
    const b = vmMmap(mm, 0x40001000, 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    expect(b).toBe(0x40001000);
    doUserAddrFault(mm, 0x40100000, 'write');
    expect(entryAt(mm, 0x40100000).level).toBe('pte');
  });

  it("thp.enabled 'never' maps ptes; 'madvise' only with VM_HUGEPAGE", () => {
    const m = machine();
    const mm = m.newMm();
    m.thp.enabled = 'never';
    const a = anon(mm, 2 * MiB);
    doUserAddrFault(mm, a, 'write');
    expect(entryAt(mm, a).level).toBe('pte');
    m.thp.enabled = 'madvise';
    const b = anon(mm, 2 * MiB);
    doUserAddrFault(mm, b, 'write');
    expect(entryAt(mm, b).level).toBe('pte');
    const c = anon(mm, 2 * MiB);
    const vma = mm.vmaLookup(c)!;
    expect(vma.vmStart).toBe(c); // not merged with b: c's range is its own VMA
    vma.vmFlags = (vma.vmFlags | VM_HUGEPAGE) >>> 0; // madvise(MADV_HUGEPAGE)
    doUserAddrFault(mm, c, 'write');
    expect(entryAt(mm, c).level).toBe('pmd');
  });
});

describe('hugetlb faults (mm/hugetlb.c, MAP_HUGETLB)', () => {
  it('x86-64: a private write maps a writable dirty 2 MiB pmd leaf; hugetlb usage, not rss', () => {
    const m = machine();
    const mm = m.newMm();
    const a = vmMmap(mm, 0, 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    expect(a % (2 * MiB)).toBe(0);
    expect(doUserAddrFault(mm, a + 12345, 'write').signal).toBeNull();
    const e = entryAt(mm, a);
    expect(e.level).toBe('pmd');
    expect(pteFlags(m, e.v)).toBe(0x80000000000000e7n);
    expect(mm.hugetlbUsage).toBe(512);
    expect(mm.rssPages).toBe(0);
  });

  it('a shared hugetlb file maps the same huge folio in two processes', () => {
    const m = machine();
    const f = createFile(m, 'hugetlbfs/x', 2 * MiB, { hugepageSize: 2 * MiB });
    const p = m.newMm('p');
    const q = m.newMm('q');
    const a = vmMmap(p, 0, 2 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, { file: f });
    const b = vmMmap(q, 0, 2 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, { file: f });
    expect(doUserAddrFault(p, a, 'write').signal).toBeNull();
    expect(doUserAddrFault(q, b + 4096, 'read').signal).toBeNull();
    const pa = ptePa(m, entryAt(p, a).v);
    expect(ptePa(m, entryAt(q, b).v)).toBe(pa);
    expect(f.pages.get(0)).toBe(pa);
    expect(m.meta.entireMapcount[m.meta.frameIndex(pa)]).toBe(2);
    // page cache + two mappings
    expect(m.meta.getRefcount(pa)).toBe(3);
  });

  it('MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB: parent and forked child share the huge folio; it is freed with the last mapping', () => {
    const m = machine();
    const free0 = m.frames.freeFrames;
    const p = m.newMm('p');
    const a = vmMmap(p, 0, 2 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB);
    expect(a % (2 * MiB)).toBe(0);
    expect(doUserAddrFault(p, a, 'write').signal).toBeNull();
    const pa = ptePa(m, entryAt(p, a).v);
    const c = dupMm(p);
    expect(doUserAddrFault(c, a + MiB, 'write').signal).toBeNull();
    expect(ptePa(m, entryAt(c, a).v)).toBe(pa);
    expect(m.meta.getRefcount(pa)).toBe(3);
    exitMmap(p);
    exitMmap(c);
    expect(m.meta.getRefcount(pa)).toBe(0);
    expect(m.frames.freeFrames).toBe(free0);
  });

  it('a private hugetlb page is copied on write after fork', () => {
    const m = machine();
    const mm = m.newMm();
    const a = vmMmap(mm, 0, 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    doUserAddrFault(mm, a, 'write');
    const pa = ptePa(m, entryAt(mm, a).v);
    new Uint8Array(m.mem.buffer, m.mem.offset(pa + MiB, 1), 1)[0] = 0x77;
    const child = dupMm(mm);
    expect(m.bits.pteWrite(entryAt(mm, a).lo, entryAt(mm, a).hi)).toBe(false);
    expect(ptePa(m, entryAt(child, a).v)).toBe(pa);
    expect(m.meta.getRefcount(pa)).toBe(2);
    expect(doUserAddrFault(child, a, 'write').signal).toBeNull();
    const cp = ptePa(m, entryAt(child, a).v);
    expect(cp).not.toBe(pa);
    expect(cp % (2 * MiB)).toBe(0);
    expect(readBytes(m, cp + MiB, 1)[0]).toBe(0x77);
    expect(m.meta.getRefcount(pa)).toBe(1);
    // the parent is alone now: its write reuses the original
    expect(doUserAddrFault(mm, a, 'write').signal).toBeNull();
    expect(ptePa(m, entryAt(mm, a).v)).toBe(pa);
  });
});

describe('handle_mm_fault sanitize_fault_flags: writes that can never succeed', () => {
  it('a write to a VMA without VM_MAYWRITE is VM_FAULT_SIGSEGV', () => {
    const m = machine();
    const mm = m.newMm();
    const a = anon(mm, 4096, PROT_READ);
    const vma = mm.vmaLookup(a)!;
    vma.vmFlags = (vma.vmFlags & ~VM_MAYWRITE) >>> 0; // as a read-only file opened O_RDONLY
    expect(withRead(mm, () => handleMmFault(vma, a, FAULT_FLAG_WRITE))).toBe(VM_FAULT_SIGSEGV);
  });

  it('a write to a shared read-only (non-COW) VMA is VM_FAULT_SIGSEGV; to a private one it COWs (FOLL_FORCE)', () => {
    const m = machine();
    const mm = m.newMm();
    const f = createFile(m, 'f', 4096);
    const s = vmMmap(mm, 0, 4096, PROT_READ, MAP_SHARED, { file: f });
    const svma = mm.vmaLookup(s)!;
    expect(svma.vmFlags & VM_MAYWRITE).toBe(VM_MAYWRITE);
    expect(withRead(mm, () => handleMmFault(svma, s, FAULT_FLAG_WRITE))).toBe(VM_FAULT_SIGSEGV);
    const p = anon(mm, 4096, PROT_READ);
    const pvma = mm.vmaLookup(p)!;
    expect(pvma.vmFlags & VM_WRITE).toBe(0);
    expect(withRead(mm, () => handleMmFault(pvma, p, FAULT_FLAG_WRITE))).toBe(0);
    expect(mm.rss[MM_ANONPAGES]).toBe(1);
    // the page is mapped but not writable: maybe_mkwrite leaves the pte read-only
    expect(m.bits.pteWrite(entryAt(mm, p).lo, entryAt(mm, p).hi)).toBe(false);
  });

  it('handle_mm_fault without the mmap lock is a KernelAssertionError', () => {
    const m = machine();
    const mm = m.newMm();
    const a = anon(mm, 4096);
    expect(() => handleMmFault(mm.vmaLookup(a)!, a, 0)).toThrow(KernelAssertionError);
  });
});

describe('do_user_addr_fault / do_page_fault: SEGV_MAPERR and SEGV_ACCERR', () => {
  for (const g of ['x86_64-4level', 'arm64-4k-48'] as const) {
    it(`${g}: no VMA → SEGV_MAPERR; PROT_NONE → SEGV_ACCERR; write to PROT_READ → SEGV_ACCERR; exec of non-exec → SEGV_ACCERR`, () => {
      const m = machine(g);
      const mm = m.newMm();
      const a = anon(mm, 3 * 4096);
      expect(doUserAddrFault(mm, a - 0x100000, 'read')).toEqual({ fault: 0, signal: 'SIGSEGV', code: 'SEGV_MAPERR' });
      const n = anon(mm, 4096, PROT_NONE);
      expect(doUserAddrFault(mm, n, 'read')).toEqual({ fault: 0, signal: 'SIGSEGV', code: 'SEGV_ACCERR' });
      const r = anon(mm, 4096, PROT_READ);
      expect(doUserAddrFault(mm, r, 'write')).toEqual({ fault: 0, signal: 'SIGSEGV', code: 'SEGV_ACCERR' });
      expect(doUserAddrFault(mm, r, 'exec')).toEqual({ fault: 0, signal: 'SIGSEGV', code: 'SEGV_ACCERR' });
      expect(doUserAddrFault(mm, r, 'read').signal).toBeNull();
      const x = anon(mm, 4096, PROT_EXEC);
      expect(doUserAddrFault(mm, x, 'exec').signal).toBeNull();
    });
  }

  it('x86-64 access_error: a read needs any of VM_READ|VM_WRITE|VM_EXEC (vma_is_accessible)', () => {
    const m = machine();
    const mm = m.newMm();
    expect(doUserAddrFault(mm, anon(mm, 4096, PROT_WRITE), 'read').signal).toBeNull();
    expect(doUserAddrFault(mm, anon(mm, 4096, PROT_EXEC), 'read').signal).toBeNull();
  });

  it('arm64 do_page_fault (no FEAT_EPAN): a read needs VM_READ, VM_WRITE ("write implies read") or VM_EXEC ("exec implies read")', () => {
    const m = machine('arm64-4k-48');
    const mm = m.newMm();
    expect(doUserAddrFault(mm, anon(mm, 4096, PROT_READ), 'read').signal).toBeNull();
    expect(doUserAddrFault(mm, anon(mm, 4096, PROT_EXEC), 'read').signal).toBeNull();
    expect(doUserAddrFault(mm, anon(mm, 4096, PROT_WRITE), 'read').signal).toBeNull();
    expect(doUserAddrFault(mm, anon(mm, 4096, PROT_NONE), 'read').code).toBe('SEGV_ACCERR');
  });
});
