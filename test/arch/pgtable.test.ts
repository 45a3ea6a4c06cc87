import { describe, expect, it } from 'vitest';
import { BadTablePointerError, Machine, PhysAddrError, entryAlloc } from '../../src/index';

const TOP = 2 ** 64;

describe('p?d_addr_end: Linux boundary math with exact integers', () => {
  const x4 = new Machine({ geometry: 'x86_64-4level', memSize: 1 << 20 }).pgtable;
  const x5 = new Machine({ geometry: 'x86_64-5level', memSize: 1 << 20 }).pgtable;

  it('include/linux/pgtable.h pgd_addr_end: the next 512 GiB boundary, or end if that comes first', () => {
    expect(x4.pgdAddrEnd(0x1000, 0x8000_0000_0000)).toBe(0x80_0000_0000); // 2^39
    expect(x4.pgdAddrEnd(0x1000, 0x5000)).toBe(0x5000);
  });

  it('kernel half (4-level): from 0xffff800000000000 the next PGDIR boundary is 0xffff808000000000', () => {
    expect(x4.pgdAddrEnd(0xffff_8000_0000_0000, TOP)).toBe(0xffff_8080_0000_0000);
    expect(x4.pudAddrEnd(0xffff_8000_0000_0000, TOP)).toBe(0xffff_8000_4000_0000);
    expect(x4.pmdAddrEnd(0xffff_8000_0000_0000, TOP)).toBe(0xffff_8000_0020_0000);
  });

  it('LA57 kernel half: from 0xff00000000000000 the next PGDIR (2^48) boundary is 0xff01000000000000', () => {
    expect(x5.pgdAddrEnd(0xff00_0000_0000_0000, TOP)).toBe(0xff01_0000_0000_0000);
    expect(x5.p4dAddrEnd(0xff00_0000_0000_0000, TOP)).toBe(0xff00_0080_0000_0000);
  });

  it('at the top of the space the boundary would wrap to 0 in C; with end = 2^64 the answer is end', () => {
    expect(x4.pgdAddrEnd(0xffff_ff80_0000_0000, TOP)).toBe(TOP);
    expect(x4.pmdAddrEnd(TOP - 0x1000, TOP)).toBe(TOP);
    expect(x5.pgdAddrEnd(0xffff_0000_0000_0000, TOP)).toBe(TOP);
  });

  it('pgtable-nop4d.h: a folded level returns end from its addr_end', () => {
    expect(x4.p4dAddrEnd(0x1000, 0x9000_0000_0000)).toBe(0x9000_0000_0000);
  });
});

describe('indices', () => {
  const x4 = new Machine({ geometry: 'x86_64-4level', memSize: 1 << 20 }).pgtable;
  const a52 = new Machine({ geometry: 'arm64-4k-52', memSize: 1 << 20 }).pgtable;
  it('pgd_index of the 4-level kernel half: 0xffff888000000000 → 273 (bits 47:39)', () => {
    expect(x4.pgdIndex(0xffff_8880_0000_0000)).toBe(0x111);
    expect(x4.pudIndex(0xffff_8880_4000_0000)).toBe(1);
  });
  it('arm64 4K/52 (LPA2): PTRS_PER_PGD 16, pgd_index = bits 51:48', () => {
    expect(a52.pgdIndex(0x000f_0000_0000_0000)).toBe(15);
    expect(a52.pgdIndex(0xfff0_0000_0000_0000)).toBe(0); // TTBR1 range start: index 0 of its own root
  });
});

describe('folding (asm-generic/pgtable-nop4d.h, -nopud.h, -nopmd.h)', () => {
  it('x86-64 4-level: p4d_offset returns the pgd pointer; pgd tests are trivial, p4d tests the entry', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 1 << 20 });
    const pt = m.pgtable;
    const pgd = pt.pgdOffset(m.initMm.pgd, 0x1000);
    expect(pt.p4dOffset(pgd, 0x1000)).toBe(pgd);
    // an empty top-level slot: pgd_none() is 0 under nop4d, p4d_none() sees the real entry
    expect(pt.pgdNone(0, 0)).toBe(false);
    expect(pt.pgdPresent(0, 0)).toBe(true);
    expect(pt.p4dNone(0, 0)).toBe(true);
  });

  it('arm64 64K/42 (two levels): p4d, pud and pmd all share the pgd entry; pmd is the real test', () => {
    const m = new Machine({ geometry: 'arm64-64k-42', memSize: 4 << 20 });
    const pt = m.pgtable;
    const pgd = pt.pgdOffset(m.initMm.pgd, 0x2000_0000);
    const p4d = pt.p4dOffset(pgd, 0x2000_0000);
    const pud = pt.pudOffset(p4d, 0x2000_0000);
    expect([p4d, pud, pt.pmdOffset(pud, 0x2000_0000)]).toEqual([pgd, pgd, pgd]);
    expect(pt.pudNone(0, 0)).toBe(false);
    expect(pt.pudLeaf(1, 0)).toBe(false); // nopmd: pud_leaf() falls back to 0
    expect(pt.pmdNone(0, 0)).toBe(true);
  });

  it('entryAlloc on arm64 4K/39 allocates only the tables that exist: pgd → pmd → pte', () => {
    const m = new Machine({ geometry: 'arm64-4k-39', memSize: 4 << 20 });
    const before = m.frames.usedFrames;
    const mm = m.newMm();
    entryAlloc(mm, 0x40_0000, 'pte');
    expect(m.frames.usedFrames - before).toBe(3); // the root, one pmd table, one pte table
  });
});

describe('out-of-range physical access', () => {
  it('an entry pointer outside memory is a PhysAddrError naming the address', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 1 << 20 });
    expect(() => m.pgtable.lo(0x10_0000)).toThrow(PhysAddrError);
    expect(() => m.pgtable.lo(0x10_0000)).toThrow(/0x100000/);
  });
  it('a table descriptor pointing outside memory is a BadTablePointerError naming the entry that held it', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 1 << 20 });
    const pgd = m.pgtable.pgdOffset(m.initMm.pgd, 0);
    m.pgtable.set(pgd, 0x7_0000_0000n | 0x63n); // a table at 28 GiB, memory is 1 MiB
    expect(() => m.pgtable.pudOffset(m.pgtable.p4dOffset(pgd, 0), 0)).toThrow(BadTablePointerError);
    expect(() => m.pgtable.pudOffset(pgd, 0)).toThrow(new RegExp(`table entry at 0x${pgd.toString(16)} points to 0x700000000`));
  });
});
