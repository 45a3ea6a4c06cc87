import { describe, expect, it } from 'vitest';
import { Machine, VM_READ, entryAlloc, freePgdRange, freePgtables, setPteAt } from '../../src/index';

function mapPage(m: Machine, mm: ReturnType<Machine['newMm']>, va: number): void {
  setPteAt(mm, va, entryAlloc(mm, va, 'pte'), m.bits.pfnPte(0x100, m.bits.pgprot({ user: true })));
}

describe('free_pgd_range (mm/memory.c)', () => {
  it('x86-64 4-level, no floor or ceiling: the pte, pmd and pud tables all return and the top entry is cleared', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 1 << 20 });
    const mm = m.newMm();
    const base = m.frames.usedFrames;
    mapPage(m, mm, 0x40_0000);
    expect(m.frames.usedFrames - base).toBe(3);
    freePgdRange(mm, 0x40_0000, 0x40_1000, 0, 0);
    expect(m.frames.usedFrames).toBe(base);
    expect(m.mem.read64(m.pgtable.pgdOffset(mm.pgd, 0x40_0000))).toBe(0n);
  });

  it('a ceiling inside the same PMD span keeps the pte table (another mapping may share it)', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 1 << 20 });
    const mm = m.newMm();
    mapPage(m, mm, 0x40_0000);
    const before = m.frames.usedFrames;
    // ceiling 0x500000 masks down to 0x400000: end 0x401000 - 1 > ceiling - 1, so end drops a PMD and nothing is left
    freePgdRange(mm, 0x40_0000, 0x40_1000, 0, 0x50_0000);
    expect(m.frames.usedFrames).toBe(before);
  });

  it('a floor above the PUD boundary keeps the pmd table but frees the pte table', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 1 << 20 });
    const mm = m.newMm();
    mapPage(m, mm, 0x40_0000);
    const before = m.frames.usedFrames;
    freePgdRange(mm, 0x40_0000, 0x60_0000, 0x20_0000, 0);
    // start & PUD_MASK = 0 < floor: the pmd table (and the pud table above it) stay
    expect(before - m.frames.usedFrames).toBe(1);
    const pmd = m.pgtable.pmdOffset(m.pgtable.pudOffset(m.pgtable.p4dOffset(m.pgtable.pgdOffset(mm.pgd, 0x40_0000), 0x40_0000), 0x40_0000), 0x40_0000);
    expect(m.mem.read64(pmd)).toBe(0n);
  });

  it('arm64 64K/42 (pmd folded into pgd): the pte table returns; the folded levels own no table', () => {
    const m = new Machine({ geometry: 'arm64-64k-42', memSize: 8 << 20 });
    const mm = m.newMm();
    const base = m.frames.usedFrames;
    mapPage(m, mm, 0x2000_0000);
    expect(m.frames.usedFrames - base).toBe(16); // one 64K pte table = 16 frames
    freePgdRange(mm, 0x2000_0000, 0x2001_0000, 0, 0);
    expect(m.frames.usedFrames).toBe(base);
  });
});

describe('free_pgtables', () => {
  it('keeps the tables a neighbouring VMA still uses', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 1 << 20 });
    const mm = m.newMm();
    mm.insertVma({ start: 0x40_0000, end: 0x40_1000, flags: VM_READ }); // shares the pte table with 0x401000
    mapPage(m, mm, 0x40_0000);
    mapPage(m, mm, 0x40_1000);
    const before = m.frames.usedFrames;
    freePgtables(mm, 0x40_1000, 0x40_2000); // floor 0x401000 > 0x400000: nothing can go
    expect(m.frames.usedFrames).toBe(before);
  });
  it('refuses a range a VMA still maps', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 1 << 20 });
    const mm = m.newMm();
    mm.insertVma({ start: 0x40_0000, end: 0x40_2000, flags: VM_READ });
    expect(() => freePgtables(mm, 0x40_1000, 0x40_3000)).toThrow(/still maps part of the range/);
  });
});
