/**
 * The benchmark fixtures (bench/fixtures.mjs) map exactly what they say: at small sizes, a walk
 * counts the entries and leaves per level worked out here by hand from the geometry, so the
 * benchmarks measure what they claim.
 *
 * bench/fixtures.mjs imports the built library (../dist/index.js); vitest.config.ts points that
 * import at the sources, so the test needs no build and checks the code under review.
 */
import { describe, expect, it } from 'vitest';

import { countWalk, createCpu, mmapReadLock, mmapReadUnlock, registersFor, walkPageRange, WalkResult, type MmStruct } from '../../src/index';
import { countingOps, denseSpace, mapPtes, mixedSpace, newCounts, pteEncoder, sparseSpace, tablesSpanned, benchMachine } from '../../bench/fixtures.mjs';

/** walkPageRange over [start, end) with the benchmarks' counting callbacks. */
function walk(mm: MmStruct, start: number, end: number, opts: { leaves?: boolean; holes?: boolean } = {}) {
  const c = newCounts();
  mmapReadLock(mm);
  try {
    expect(walkPageRange(mm, start, end, countingOps(c, opts))).toBe(0);
  } finally {
    mmapReadUnlock(mm);
  }
  return c;
}

/** mmulab walk's counts over one root, [start, end). */
function count(s: { m: any; mm: MmStruct; start: number; end: number }) {
  const r = countWalk(s.m, [{ name: 'cr3', table: s.mm.pgd, start: s.start, end: s.end }]);
  return { entries: r.entries, byLevel: r.leavesByLevel, checksum: '0x' + r.checksum.toString(16) };
}

/** The present ptes met by a walk, as [va, lo, hi]. */
function presentPtes(mm: MmStruct, start: number, end: number): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  mmapReadLock(mm);
  walkPageRange(mm, start, end, {
    pteEntry(pte, addr, _next, walk) {
      const lo = walk.pt.lo(pte);
      if (lo & 1) out.push([addr, lo, walk.pt.hi(pte)]);
      return 0;
    },
  });
  mmapReadUnlock(mm);
  return out;
}

describe('bench/fixtures.mjs denseSpace', () => {
  it('x86-64 4-level, 1024 pages at 0x7f0000000000: 1 PML4E + 1 PDPTE + 2 PDEs + 1024 PTEs = 1028 entries; checksum sum(0x100000..0x1003ff) = 0x4007fe00', () => {
    const s = denseSpace('x86_64-4level', 1024, 0x7f00_0000_0000);
    expect(s.end).toBe(0x7f00_0040_0000);
    expect({ present: s.present, pteSlots: s.pteSlots, pteTables: s.pteTables }).toEqual({ present: 1024, pteSlots: 1024, pteTables: 2 });
    expect(walk(s.mm, s.start, s.end)).toMatchObject({ ptes: 1024, present: 1024 });
    // 1024 * 0x100000 + (0 + … + 1023) = 0x40000000 + 0x7fe00
    expect(count(s)).toEqual({ entries: 1028, byLevel: { '1': 1024 }, checksum: '0x4007fe00' });
  });

  it('SDM Vol.3A Table 4-20 (4-KByte page PTE): the first and last ptes hold frames 0x100000 and 0x1003ff (bits 51:12), with P, R/W, U/S set', () => {
    const s = denseSpace('x86_64-4level', 1024, 0x7f00_0000_0000);
    const ptes = presentPtes(s.mm, s.start, s.end);
    const [va0, lo0, hi0] = ptes[0]!;
    const [vaN, loN, hiN] = ptes[1023]!;
    expect(va0).toBe(0x7f00_0000_0000);
    // pa 0x100000000: bit 32 → hi bit 0; lo bits 31:12 zero. P = bit 0, R/W = bit 1, U/S = bit 2.
    expect([hi0 & 0xf_ffff, lo0 >>> 12, lo0 & 7]).toEqual([0x1, 0x0, 0x7]);
    expect(vaN).toBe(0x7f00_003f_f000);
    // pa 0x1003ff000
    expect([hiN & 0xf_ffff, loN >>> 12, loN & 7]).toEqual([0x1, 0x3ff, 0x7]);
  });

  it('the fast halves equal pfnPte (the BigInt descriptor API) for every pte written', () => {
    const s = denseSpace('arm64-4k-48', 600, 0x7f00_0000_0000);
    const prot = s.m.bits.pgprot({ write: true, user: true });
    const ptes = presentPtes(s.mm, s.start, s.end);
    expect(ptes.length).toBe(600);
    ptes.forEach(([, lo, hi], i) => {
      expect(BigInt(hi) * 2n ** 32n + BigInt(lo >>> 0)).toBe(s.m.bits.pfnPte(0x10_0000 + i, prot));
    });
  });

  it('Arm ARM D8.3 (4KB granule page descriptor): bits 1:0 = 0b11, OA[47:12] = frame 0x100000 → descriptor bit 32; AF (bit 10) set; 513 pages cross into a second L3 table', () => {
    const s = denseSpace('arm64-4k-48', 513, 0x7f00_0000_0000);
    const [va, lo, hi] = presentPtes(s.mm, s.start, s.end)[0]!;
    expect(va).toBe(0x7f00_0000_0000);
    expect([lo & 3, (lo >>> 10) & 1, lo >>> 12, hi & 0xffff]).toEqual([3, 1, 0, 1]);
    // L0 1 + L1 1 + L2 2 + L3 513
    expect(count(s)).toMatchObject({ entries: 517, byLevel: { '3': 513 } });
  });

  it('Arm ARM D8.2 (16KB granule, 47-bit VA: L1 → L2 → L3 of 2048 entries): 2049 pages → 1 + 2 + 2049 = 2052 entries; checksum 4 × (2049 × 0x100000 + 2049 × 1024) = 0x200c01000', () => {
    const s = denseSpace('arm64-16k-47', 2049, 0x7f00_0000_0000);
    expect(s.pteTables).toBe(2);
    const [, lo, hi] = presentPtes(s.mm, s.start, s.end)[0]!;
    // 16K frame 0x100000 = pa 2^20 × 2^14 = 0x4_0000_0000: OA bits 47:14 → descriptor bit 34 = hi bit 2
    expect([lo & 3, lo >>> 12, hi & 0xffff]).toEqual([3, 0, 0x4]);
    // the checksum counts 4 KiB frames: a 16K pfn p counts 4p
    expect(count(s)).toEqual({ entries: 2052, byLevel: { '3': 2049 }, checksum: '0x200c01000' });
  });

  it('Arm ARM D8.2 (64KB granule, 42-bit VA: L2 of 8192 → L3 of 8192): 8193 pages at 1 TiB → 2 + 8193 = 8195 entries', () => {
    const s = denseSpace('arm64-64k-42', 8193, 2 ** 40);
    expect(s.pteTables).toBe(2);
    expect(walk(s.mm, s.start, s.end)).toMatchObject({ ptes: 8193, present: 8193 });
    expect(count(s)).toMatchObject({ entries: 8195, byLevel: { '3': 8193 } });
  });

  it('an unaligned start (LA57): 10 pages from 0x7f00001ff000 (the last pte of one table) use 2 pte tables, 1 + 1 + 1 + 2 + 10 = 15 entries', () => {
    const s = denseSpace('x86_64-5level', 10, 0x7f00_001f_f000);
    expect(s.pteTables).toBe(2);
    // LA57: PML5E 1 + PML4E 1 + PDPTE 1 + PDE 2 + PTE 10
    expect(count(s)).toMatchObject({ entries: 15, byLevel: { '1': 10 } });
    expect(walk(s.mm, s.start, s.end)).toMatchObject({ ptes: 10, present: 10 });
  });
});

describe('bench/fixtures.mjs sparseSpace', () => {
  it("per-pmd, every 3rd of 8 regions (x86-64): regions 0, 3, 6 hold one page each, page r of region r; 5 pmd holes; 3 × 512 pte slots", () => {
    const s = sparseSpace('x86_64-4level', 8, { every: 3, start: 0x7f00_0000_0000 });
    expect({ present: s.present, pteTables: s.pteTables, pteSlots: s.pteSlots, pmdHoles: s.pmdHoles }).toEqual({ present: 3, pteTables: 3, pteSlots: 1536, pmdHoles: 5 });
    expect(walk(s.mm, s.start, s.end, { holes: true })).toMatchObject({ ptes: 1536, present: 3, holes: 5 });
    // region 3: 0x7f0000000000 + 3 × 2 MiB + 3 × 4 KiB, page 3 × 512 + 3 = 0x603 → frame 0x100603
    const got = presentPtes(s.mm, s.start, s.end).map(([va, lo, hi]) => [va, (hi & 0xf_ffff) * 2 ** 20 + (lo >>> 12)]);
    expect(got).toEqual([
      [0x7f00_0000_0000, 0x10_0000],
      [0x7f00_0060_3000, 0x10_0603],
      [0x7f00_00c0_6000, 0x10_0c06],
    ]);
    // PML4E 1 + PDPTE 1 + 8 PDEs (5 of them holes) + 3 × 512 PTEs
    expect(count(s)).toMatchObject({ entries: 1546, byLevel: { '1': 3 } });
  });

  it('per-pmd on ARM64 64K/42: a region is one 512 MiB L2 entry; 4 regions, every one → 4 L3 tables of 8192', () => {
    const s = sparseSpace('arm64-64k-42', 4, { start: 2 ** 40 });
    expect(walk(s.mm, s.start, s.end, { holes: true })).toMatchObject({ ptes: 4 * 8192, present: 4, holes: 0 });
    expect(count(s)).toMatchObject({ entries: 4 + 4 * 8192, byLevel: { '3': 4 } });
  });

  it('random 5 % of 16 regions × 512 pages: every pte table reached, 8192 slots, a present count near 410 (σ ≈ 20), reproducible by seed', () => {
    const a = sparseSpace('x86_64-4level', 16, { layout: 'random', seed: 7 });
    const b = sparseSpace('x86_64-4level', 16, { layout: 'random', seed: 7 });
    const c = sparseSpace('x86_64-4level', 16, { layout: 'random', seed: 8 });
    expect(a.pteSlots).toBe(8192);
    expect(a.present).toBeGreaterThan(330);
    expect(a.present).toBeLessThan(490);
    expect(walk(a.mm, a.start, a.end)).toMatchObject({ ptes: 8192, present: a.present });
    expect(count(a).byLevel).toEqual({ '1': a.present });
    expect(presentPtes(b.mm, b.start, b.end)).toEqual(presentPtes(a.mm, a.start, a.end));
    expect(presentPtes(c.mm, c.start, c.end)).not.toEqual(presentPtes(a.mm, a.start, a.end));
  });

  it('refuses an unknown layout and a start that is not PMD-aligned', () => {
    expect(() => sparseSpace('x86_64-4level', 2, { layout: 'dense' as never })).toThrow(/layout/);
    expect(() => sparseSpace('x86_64-4level', 2, { start: 0x7f00_0000_1000 })).toThrow(/PMD-aligned/);
  });
});

describe('bench/fixtures.mjs mixedSpace', () => {
  it('x86-64: 3 pte tables and 2 2M blocks alternate (table, block, table, block, table), then 2 1G blocks from the next PUD boundary', () => {
    const s = mixedSpace('x86_64-4level', { pteTables: 3, pmdBlocks: 2, pudBlocks: 2, start: 0x7f00_0000_0000 });
    expect(s.end).toBe(0x7f00_c000_0000);
    // pmd_entry for the 5 used PDEs (3 tables, 2 leaves), pud_entry for the 3 used PDPTEs
    expect(walk(s.mm, s.start, s.end, { leaves: true })).toMatchObject({ ptes: 1536, present: 1536, pmds: 5, puds: 3, pmdLeaves: 2, pudLeaves: 2 });
    // PML4E 1 + PDPTEs 3 (a table, two 1G leaves) + the 512 PDEs of the first PD (5 used) + 1536 PTEs;
    // checksum: ptes 1536 × 0x100000 + 1535 × 768 = 0x6011fd00; 2M blocks at 2^40 and 2^40 + 2M:
    // 0x10000000 + 0x10000200; 1G blocks at 2^40 + 2^39 (+1G): 0x18000000 + 0x18040000.
    expect(count(s)).toEqual({ entries: 2052, byLevel: { '1': 1536, '2': 2, '3': 2 }, checksum: '0xb015ff00' });
    const leaves: number[] = [];
    mmapReadLock(s.mm);
    walkPageRange(s.mm, s.start, s.end, {
      pmdEntry(pmd, addr, _n, w) {
        if (w.pt.pmdLeaf(w.pt.lo(pmd), w.pt.hi(pmd))) leaves.push(addr);
        return 0;
      },
      pudEntry(pud, addr, _n, w) {
        if (w.pt.pudLeaf(w.pt.lo(pud), w.pt.hi(pud))) {
          leaves.push(addr);
          w.action = 1; // ACTION_CONTINUE
        }
        return 0;
      },
    });
    mmapReadUnlock(s.mm);
    expect(leaves).toEqual([0x7f00_0020_0000, 0x7f00_0060_0000, 0x7f00_4000_0000, 0x7f00_8000_0000]);
  });

  it('the walk leaves the blocks alone: the 2M and 1G leaves are still there after a pte_entry walk (no split)', () => {
    const s = mixedSpace('arm64-4k-48', { pteTables: 1, pmdBlocks: 1, pudBlocks: 1 });
    const before = count(s);
    walk(s.mm, s.start, s.end, { leaves: true });
    walk(s.mm, s.start, s.end, { leaves: true });
    expect(count(s)).toEqual(before);
    // Arm ARM D8.2 4KB granule: a level-1 block, a level-2 block, 512 level-3 pages
    expect(before.byLevel).toEqual({ '1': 1, '2': 1, '3': 512 });
  });

  it('ARM64 16K/47: 32M blocks at level 2, no PUD leaves (a PUD block is refused)', () => {
    const s = mixedSpace('arm64-16k-47', { pteTables: 2, pmdBlocks: 2 });
    expect(walk(s.mm, s.start, s.end, { leaves: true })).toMatchObject({ ptes: 4096, pmdLeaves: 2, pudLeaves: 0 });
    // L1 1 + L2 4 + L3 2 × 2048
    expect(count(s)).toMatchObject({ entries: 4101, byLevel: { '2': 2, '3': 4096 } });
    expect(() => mixedSpace('arm64-16k-47', { pudBlocks: 1 })).toThrow(/no PUD leaves/);
  });

  it('a translation through the mixed tables lands where the fixture says: a 2M block at 2^40, a 4K page at frame 0x100000', () => {
    const s = mixedSpace('x86_64-4level', { pteTables: 1, pmdBlocks: 1, start: 0x7f00_0000_0000 });
    const cpu = createCpu('x86_64', s.m.mem, registersFor(s.m, s.mm.pgd, s.m.initMm.pgd));
    const out = new WalkResult();
    cpu.mmu.walk(0x7f00, 0x0000_1234, 'read', true, true, out);
    expect([out.fault, out.pa, out.pageSize]).toEqual([null, 0x1_0000_1234, 4096]);
    cpu.mmu.walk(0x7f00, 0x0020_5678, 'read', true, true, out);
    expect([out.fault, out.pa, out.pageSize]).toEqual([null, 2 ** 40 + 0x5678, 2 ** 21]);
  });
});

describe('bench/fixtures.mjs builders', () => {
  it('tablesSpanned, x86-64 4-level, 4 GiB from 0x7f0000000000: root 1 + PDPT 1 + PDs 4 + PTs 2048 = 2054', () => {
    expect(tablesSpanned('x86_64-4level', 0x7f00_0000_0000, 0x7f01_0000_0000)).toBe(2054);
    // ARM64 64K/42: the root (L2) and 512 MiB per L3 table: 1 GiB + 64K crosses 3 L2 entries
    expect(tablesSpanned('arm64-64k-42', 2 ** 40, 2 ** 40 + 2 ** 30 + 65536)).toBe(4);
  });

  it('mapPtes reports progress once per pte table, ending at the total', () => {
    const m = benchMachine('x86_64-4level', 0x4000_0000, 0x4000_0000 + 1100 * 4096);
    const mm = m.newMm();
    const calls: number[] = [];
    mapPtes(mm, 0x4000_0000, 1100, { progress: (done: number) => calls.push(done) });
    expect(calls).toEqual([512, 1024, 1100]);
  });

  it('pteEncoder refuses where the output address is split (ARM64 64K/52 LPA: OA[51:48] in bits 15:12)', () => {
    const m = benchMachine('arm64-64k-52', 2 ** 40, 2 ** 40 + 2 ** 30);
    const prot = m.bits.pgprot({ write: true, user: true });
    expect(() => pteEncoder(m, prot, 0x10_0000, 0x10_0fff)).not.toThrow();
    // 64K frame 2^32 is pa 2^48: its bit 48 goes to descriptor bit 12, not 48
    expect(() => pteEncoder(m, prot, 2 ** 32 - 16, 2 ** 32 + 16)).toThrow(/does not hold/);
  });
});
