import { describe, expect, it } from 'vitest';
import {
  Machine,
  vmMmap,
  doUserAddrFault,
  dupMm,
  exitMmap,
  doMunmap,
  MAP_PRIVATE,
  MAP_ANONYMOUS,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  MM_ANONPAGES,
  lookupEntry,
  accessRemoteVm,
  FOLL_FORCE,
  FOLL_WRITE,
  createFile,
  GEOMETRY_NAMES,
} from '../../src/index';

function pteOf(mm: ReturnType<Machine['newMm']>, addr: number): bigint {
  const r = lookupEntry(mm, addr);
  return r.level === 'none' ? 0n : mm.machine.pgtable.val(r.ptr);
}

describe('process lifecycle: fork + copy-on-write + exit leaves the allocator as it began', () => {
  for (const g of GEOMETRY_NAMES) {
    it(`${g}: anonymous private memory, fork, COW write in the child, exit both`, () => {
      const m = new Machine({ geometry: g, memSize: 64 * 2 ** 20 });
      const free0 = m.frames.freeFrames;
      const ps = m.geo.PAGE_SIZE;
      const parent = m.newMm('parent');
      const addr = vmMmap(parent, 0, 4 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      expect(addr).toBeGreaterThan(0);
      expect(doUserAddrFault(parent, addr, 'write').signal).toBeNull();
      expect(doUserAddrFault(parent, addr + ps, 'read').signal).toBeNull();
      expect(parent.rss[MM_ANONPAGES]).toBe(1);
      const w = m.bits.pteWrite;
      const before = pteOf(parent, addr);
      expect(w(Number(before & 0xffffffffn), Number(before >> 32n))).toBe(true);
      const child = dupMm(parent);
      const pAfter = pteOf(parent, addr);
      const cAfter = pteOf(child, addr);
      expect(w(Number(pAfter & 0xffffffffn), Number(pAfter >> 32n))).toBe(false);
      expect(m.bits.leafPfn('pte', Number(cAfter & 0xffffffffn), Number(cAfter >> 32n))).toBe(
        m.bits.leafPfn('pte', Number(pAfter & 0xffffffffn), Number(pAfter >> 32n)),
      );
      const page = m.bits.leafPfn('pte', Number(pAfter & 0xffffffffn), Number(pAfter >> 32n)) * ps;
      expect(m.meta.getRefcount(page)).toBe(2);
      expect(m.meta.getMapcount(page)).toBe(2);
      expect(doUserAddrFault(child, addr, 'write').signal).toBeNull();
      const c2 = pteOf(child, addr);
      expect(m.bits.leafPfn('pte', Number(c2 & 0xffffffffn), Number(c2 >> 32n)) * ps).not.toBe(page);
      expect(m.meta.getRefcount(page)).toBe(1);
      // ptrace-style write into the parent's page through FOLL_FORCE
      const buf = new Uint8Array([1, 2, 3]);
      expect(accessRemoteVm(parent, addr + 5, buf, 3, FOLL_WRITE | FOLL_FORCE)).toBe(3);
      const back = new Uint8Array(3);
      expect(accessRemoteVm(parent, addr + 5, back, 3, 0)).toBe(3);
      expect([...back]).toEqual([1, 2, 3]);
      expect(doMunmap(parent, addr + ps, ps)).toBe(0);
      exitMmap(child);
      exitMmap(parent);
      expect(m.frames.freeFrames).toBe(free0);
    });
  }

  it('x86_64-4level: shared file mapping, THP, fork and exit return every frame but the page cache', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 64 * 2 ** 20 });
    const free0 = m.frames.freeFrames;
    const f = createFile(m, 'data', 8 * 4096);
    const mm = m.newMm('p');
    const a = vmMmap(mm, 0, 8 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, { file: f });
    expect(doUserAddrFault(mm, a, 'read').signal).toBeNull();
    expect(doUserAddrFault(mm, a + 4096, 'write').signal).toBeNull();
    const t = vmMmap(mm, 0, 4 * 2 ** 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    expect(t % (2 * 2 ** 20)).toBe(0);
    expect(doUserAddrFault(mm, t, 'write').signal).toBeNull();
    expect(lookupEntry(mm, t).level).toBe('pmd');
    const c = dupMm(mm);
    expect(doUserAddrFault(c, t + 4096, 'write').signal).toBeNull();
    exitMmap(c);
    exitMmap(mm);
    expect(m.frames.freeFrames).toBe(free0 - f.pages.size);
  });
});

describe('pgd_alloc (x86-64 pgd_ctor): a new root shares the kernel half of init_mm', () => {
  it('x86_64-4level: a kernel page mapped in init_mm before the process exists translates through its root', async () => {
    const { entryAlloc, setPteAt } = await import('../../src/index');
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 16 * 2 ** 20 });
    const kva = 0xffff888000200000;
    setPteAt(m.initMm, kva, entryAlloc(m.initMm, kva, 'pte'), m.bits.pfnPte(0x200, m.bits.pgprot({ write: true, global: true })));
    const mm = m.newMm('p');
    expect(mm.pgd).not.toBe(m.initMm.pgd);
    const r = lookupEntry(mm, kva);
    expect(r.level).toBe('pte');
    expect(m.bits.leafPfn('pte', m.pgtable.lo(r.ptr), m.pgtable.hi(r.ptr))).toBe(0x200);
    // The user half starts empty.
    expect(lookupEntry(mm, 0x400000).level).toBe('none');
  });
});
