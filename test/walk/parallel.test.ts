/**
 * The parallel counting walk (src/walk/parallel.ts) against the serial one (count.ts, the walk
 * `mmulab walk` and the native comparison use) and against hand-counted tables.
 *
 * The worker script is built from src/walk/walk-worker.ts with esbuild into a temporary folder,
 * as npm run build makes dist/walk-worker.js.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BadTablePointerError, Machine, countWalk, entryAlloc, loadImage, setPmdAt, setPteAt, setPudAt,
  type GeometryName, type ImageRoot,
} from '../../src/index';
import { WalkPool, parallelCountWalk, planCountWalk } from '../../src/walk/parallel';
import { x86Image } from '../mm/image-fixtures';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
let dir: string;
let workerPath: string;
let pool: WalkPool;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mmulab-walk-worker-'));
  workerPath = join(dir, 'walk-worker.mjs');
  buildSync({ entryPoints: [here('../../src/walk/walk-worker.ts')], bundle: true, platform: 'node', format: 'esm', outfile: workerPath, logLevel: 'warning' });
  pool = new WalkPool({ workers: 2, workerPath });
});

afterAll(async () => {
  await pool?.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A space on `geo` with work spread below one top-level entry and beyond it: in each of three
 * consecutive regions of a pud entry (and one a top-level entry further when the space allows), six pte
 * tables holding ptes 0, 1 and the last, a hole, a pmd leaf; a pud leaf where the geometry has
 * them; two kernel ptes. Roots as image.ts makes them: x86-64 both halves of one root, ARM64
 * TTBR0 (the process) and TTBR1 (init_mm).
 */
function fixture(geo: GeometryName) {
  const m = new Machine({ geometry: geo, memSize: 48 * 2 ** 20 });
  const g = m.geo;
  const user = m.bits.pgprot({ write: true, user: true });
  const kern = m.bits.pgprot({ write: true });
  const perPte = g.PTRS_PER_PTE;
  let pfn = 0x1000;
  const mapPtes = (mm: Machine['initMm'], va: number, root?: number) => {
    for (const i of [0, 1, perPte - 1]) {
      const a = va + i * g.PAGE_SIZE;
      setPteAt(mm, a, entryAlloc(mm, a, 'pte', root), m.bits.pfnPte(pfn++, user));
    }
  };
  const x86 = g.arch === 'x86_64';
  const kernelBase = 2 ** 64 - 2 ** (x86 ? g.vaBits - 1 : g.vaBits);
  // Kernel mappings first: an x86 process pgd copies init_mm's kernel half when it is made.
  mapPtes(m.initMm, kernelBase + 2 * g.PUD_SIZE);
  mapPtes(m.initMm, kernelBase + 2 * g.PUD_SIZE + g.PMD_SIZE);
  const mm = m.newMm();
  // A region spans one pud entry, or eight pmd entries where the pud and pmd levels are folded.
  const step = Math.max(g.PUD_SIZE, 8 * g.PMD_SIZE);
  const R = step;
  const regions = [R, R + step, R + 2 * step];
  if (R + g.PGDIR_SIZE + step <= g.TASK_SIZE && g.PGDIR_SIZE > step) regions.push(R + g.PGDIR_SIZE);
  regions.forEach((base, k) => {
    for (let j = 0; j < 6; j++) mapPtes(mm, base + j * g.PMD_SIZE);
    const leaf = base + 7 * g.PMD_SIZE;
    setPmdAt(mm, leaf, entryAlloc(mm, leaf, 'pmd'), m.bits.pfnHuge('pmd', (8 + k) * perPte, user));
  });
  if (g.pudLeaf && R + 6 * step <= g.TASK_SIZE) {
    const va = R + 5 * step;
    setPudAt(mm, va, entryAlloc(mm, va, 'pud'), m.bits.pfnHuge('pud', 2 * (g.PUD_SIZE / g.PAGE_SIZE), kern));
  }
  const roots: ImageRoot[] = x86
    ? [
        { name: 'cr3', table: mm.pgd, start: 0, end: 2 ** (g.vaBits - 1) },
        { name: 'cr3', table: mm.pgd, start: kernelBase, end: 2 ** 64 },
      ]
    : [
        { name: 'ttbr0_el1', table: mm.pgd, start: 0, end: 2 ** g.vaBits },
        { name: 'ttbr1_el1', table: m.initMm.pgd, start: kernelBase, end: 2 ** 64 },
      ];
  return { m, mm, roots, regions };
}

const same = (p: { entries: number; leaves: number; leavesByLevel: Record<string, number>; checksum: bigint }) => ({
  entries: p.entries,
  leaves: p.leaves,
  leavesByLevel: p.leavesByLevel,
  checksum: p.checksum,
});

const GEOMETRIES: GeometryName[] = [
  'x86_64-4level', 'x86_64-5level', 'arm64-4k-39', 'arm64-4k-48', 'arm64-4k-52', 'arm64-16k-36',
  'arm64-16k-47', 'arm64-16k-48', 'arm64-64k-42', 'arm64-64k-48', 'arm64-64k-52',
];

describe('parallelCountWalk equals countWalk', () => {
  it('FORMATS.md walk counts, hand-counted (test/mm/image.test.ts): x86-64 image walked in parallel gives 3072 entries, 5 leaves', async () => {
    const img = loadImage(x86Image().dir);
    const r = await pool.countWalk(img);
    // top table 512 + lower pud 512 + pmd (0-1G) 512 + pte 512 + pmd (1-2G) 512 + upper pud 512
    expect(r.entries).toBe(3072);
    expect(r.leaves).toBe(5);
    expect(r.leavesByLevel).toEqual({ '1': 3, '2': 1, '3': 1 });
    expect(r.checksum).toBe(0x100n + 0x101n + 0x200n + 0x800n + 0x40000n);
    // The top-level entries were opened: the walk was really split below them.
    expect(r.parallel.expansions).toBeGreaterThan(0);
    expect(r.parallel.correction).toBeGreaterThan(0);
    expect(r.parallel.chunks).toBeGreaterThan(2);
  });

  it.each(GEOMETRIES)('%s: holes, pmd and pud leaves, both roots', async (geo) => {
    const { m, roots } = fixture(geo);
    const serial = countWalk(m, roots);
    expect(serial.leaves).toBeGreaterThan(20);
    const r = await pool.countWalk(m, roots);
    expect(same(r)).toEqual(same(serial));
    const plan = planCountWalk(m, roots, 0, 2 ** 64, 2);
    expect(plan.chunks.length).toBeGreaterThan(4);
    // Where the top level holds tables of tables, the planner split below it, so the
    // double-counted entries it subtracts were really there.
    if (m.geo.physicalLevels.length >= 3) expect(plan.correction).toBeGreaterThan(0);
  });

  it('a range that starts and ends inside pte tables and inside a split entry', async () => {
    const { m, roots, regions } = fixture('x86_64-4level');
    const g = m.geo;
    const start = regions[0]! + g.PMD_SIZE + 3 * g.PAGE_SIZE;
    const end = regions[2]! + 4 * g.PMD_SIZE + 511 * g.PAGE_SIZE;
    const serial = countWalk(m, roots, start, end);
    // Hand count: pmd 1 of region 0 from pte 3 (509 ptes, one present: the last), pmds 2-5 and the
    // hole and leaf of region 0, region 1 whole, region 2 up to pte 510 of its pmd 4.
    expect(serial.leaves).toBe(1 + 4 * 3 + 1 + (6 * 3 + 1) + 4 * 3 + 2);
    expect(same(await pool.countWalk(m, roots, { start, end }))).toEqual(same(serial));
  });

  it('x86-64 kernel half [2^64 - 2^47, 2^64): split below its top-level entries too', async () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 8 * 2 ** 20 });
    const kern = m.bits.pgprot({ write: true });
    // 64 pte tables of one page each under four pud entries of one pgd entry (0xffff888000000000)
    for (let t = 0; t < 64; t++) {
      const va = 0xffff_8880_0000_0000 + (t % 4) * 2 ** 30 + Math.floor(t / 4) * 2 ** 21;
      setPteAt(m.initMm, va, entryAlloc(m.initMm, va, 'pte'), m.bits.pfnPte(0x100 + t, kern));
    }
    const roots: ImageRoot[] = [{ name: 'cr3', table: m.initMm.pgd, start: 2 ** 64 - 2 ** 47, end: 2 ** 64 }];
    const plan = planCountWalk(m, roots, 0, 2 ** 64, 2);
    expect(plan.chunks.length).toBeGreaterThan(8);
    expect(plan.chunks.at(-1)!.end).toBe(2 ** 64);
    const r = await pool.countWalk(m, roots);
    // 256 pgd slots + 1 pud table + 4 pmd tables + 64 pte tables, 512 entries each; 64 leaves,
    // pfns 0x100 … 0x13f: sum 64 * 0x100 + (0 + … + 63)
    expect(same(r)).toEqual({ entries: 256 + 512 * (1 + 4 + 64), leaves: 64, leavesByLevel: { '1': 64 }, checksum: BigInt(64 * 0x100 + (63 * 64) / 2) });
    expect(same(r)).toEqual(same(countWalk(m, roots)));
  });

  it('arm64-4k-48 sub-range across the TTBR0 / TTBR1 gap, and an empty range', async () => {
    const { m, roots, regions } = fixture('arm64-4k-48');
    const start = regions[1]! + 5 * m.geo.PAGE_SIZE;
    expect(same(await pool.countWalk(m, roots, { start }))).toEqual(same(countWalk(m, roots, start)));
    const empty = await pool.countWalk(m, roots, { start: 2 ** 50, end: 2 ** 51 });
    expect(same(empty)).toEqual({ entries: 0, leaves: 0, leavesByLevel: {}, checksum: 0n });
  });

  it.each([1, 4])('a pool of %i worker(s) gives the same result', async (n) => {
    const { m, roots } = fixture('arm64-16k-47');
    const serial = countWalk(m, roots);
    const p = new WalkPool({ workers: n, workerPath });
    try {
      const r = await p.countWalk(m, roots);
      expect(same(r)).toEqual(same(serial));
      expect(r.parallel.workers).toHaveLength(n);
      expect(r.parallel.workers.reduce((s, w) => s + w.chunks, 0)).toBe(r.parallel.chunks);
    } finally {
      await p.close();
    }
  });

  it('parallelCountWalk without a pool makes one and closes it; walks queued on one pool all complete', async () => {
    const { m, roots } = fixture('x86_64-5level');
    const serial = same(countWalk(m, roots));
    expect(same(await parallelCountWalk(m, roots, { workers: 2, workerPath }))).toEqual(serial);
    const all = await Promise.all([pool.countWalk(m, roots), pool.countWalk(m, roots), pool.countWalk(m, roots)]);
    for (const r of all) expect(same(r)).toEqual(serial);
  });
});

describe('errors inside workers', () => {
  // x86-64 PDE for a page table: P | R/W | U/S | A (SDM Vol.3A Table 4-17), address 0x7000_0000,
  // beyond the 48 MiB of memory.
  const WILD_PDE_LO = 0x7000_0000 | 0x27;

  it('a table pointer outside memory rejects with the BadTablePointerError the serial walk throws; the pool stays usable', async () => {
    const { m, roots, regions } = fixture('x86_64-4level');
    const g = m.geo;
    // Two wild pmds in different regions: the serial walk meets the lower one first.
    const first = entryAlloc(m.initMm, regions[1]! + 9 * g.PMD_SIZE, 'pmd', roots[0]!.table);
    const second = entryAlloc(m.initMm, regions[2]! + 9 * g.PMD_SIZE, 'pmd', roots[0]!.table);
    m.mem.writeHalves(first, WILD_PDE_LO, 0);
    m.mem.writeHalves(second, WILD_PDE_LO, 0);
    let serialError: unknown;
    try {
      countWalk(m, roots);
    } catch (e) {
      serialError = e;
    }
    expect(serialError).toBeInstanceOf(BadTablePointerError);
    expect((serialError as Error).message).toContain(`table entry at 0x${first.toString(16)} points to 0x70000000`);
    for (let i = 0; i < 3; i++) {
      const e = await pool.countWalk(m, roots).then(
        () => null,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(BadTablePointerError);
      expect((e as Error).message).toBe((serialError as Error).message);
      expect((e as BadTablePointerError).pa).toBe(0x7000_0000);
    }
    // Still usable: the same pool walks a good space.
    const good = fixture('x86_64-4level');
    expect(same(await pool.countWalk(good.m, good.roots))).toEqual(same(countWalk(good.m, good.roots)));
  });

  it('arch/x86/include/asm/pgtable.h p4d_bad (a flag outside _KERNPG_TABLE | _PAGE_USER): cleared and counted as a hole, as serially', async () => {
    // Two identical spaces with the same bad top-level entry (PWT, bit 3, set): the serial walk
    // clears it (p4d_none_or_clear_bad) in one, the parallel walk in the other.
    const a = fixture('x86_64-4level');
    const b = fixture('x86_64-4level');
    const bad = (f: typeof a) => {
      const ptr = f.m.pgtable.pgdOffset(f.mm.pgd, f.regions[3]!);
      f.m.mem.writeHalves(ptr, (f.m.mem.readLo(ptr) | 0x8) >>> 0, f.m.mem.readHi(ptr));
      return ptr;
    };
    const ptr = bad(a);
    bad(b);
    const serial = countWalk(a.m, a.roots);
    expect(same(await pool.countWalk(b.m, b.roots))).toEqual(same(serial));
    expect(b.m.mem.read64(ptr)).toBe(0n);
    expect(Buffer.compare(Buffer.from(a.m.mem.buffer), Buffer.from(b.m.mem.buffer))).toBe(0);
    // The bad entry's subtree (6 pte tables, a pmd table, a pud table) was not walked: 19 leaves fewer.
    const intact = fixture('x86_64-4level');
    expect(serial.leaves).toBe(countWalk(intact.m, intact.roots).leaves - 19);
  });

  it('a root table outside memory: PhysAddrError, as the serial walk', async () => {
    const { m } = fixture('arm64-4k-48');
    const roots: ImageRoot[] = [{ name: 'ttbr0_el1', table: 0x1_0000_0000, start: 0, end: 2 ** 48 }];
    expect(() => countWalk(m, roots)).toThrow(/physical address 0x100000000 .*is outside memory/);
    await expect(pool.countWalk(m, roots)).rejects.toThrow(/physical address 0x100000000 .*is outside memory/);
  });

  it('bad arguments reject before any worker is asked', async () => {
    const { m, roots } = fixture('x86_64-4level');
    await expect(pool.countWalk(m, roots, { start: -1 })).rejects.toThrow(RangeError);
    await expect(pool.countWalk(m)).rejects.toThrow(/give its roots/);
    expect(() => new WalkPool({ workers: 0, workerPath })).toThrow(/workers 0/);
    expect(() => new WalkPool({ workerPath: join(dir, 'missing.mjs') })).toThrow(/not found/);
  });

  it('after close() a walk rejects', async () => {
    const p = new WalkPool({ workers: 1, workerPath });
    await p.close();
    const { m, roots } = fixture('x86_64-4level');
    await expect(p.countWalk(m, roots)).rejects.toThrow(/closed/);
  });
});

describe('no worker outlives its pool', () => {
  // A child process that walks and then either closes its pool or forgets to: it must exit by
  // itself in both cases (a closed pool has no threads; an idle pool's threads are unref'd).
  let script: string;
  beforeAll(() => {
    script = join(dir, 'child.mjs');
    const src = here('../../src');
    buildSync({
      stdin: {
        contents: `
          import { Machine, entryAlloc, setPteAt } from ${JSON.stringify(join(src, 'index'))};
          import { WalkPool } from ${JSON.stringify(join(src, 'walk/parallel'))};
          const m = new Machine({ geometry: 'x86_64-4level', memSize: 4 * 2 ** 20 });
          const mm = m.newMm();
          setPteAt(mm, 0x400000, entryAlloc(mm, 0x400000, 'pte'), m.bits.pfnPte(0x123, m.bits.pgprot({ write: true })));
          const pool = new WalkPool({ workers: 2, workerPath: process.argv[2] });
          const r = await pool.countWalk(m, [{ name: 'cr3', table: mm.pgd, start: 0, end: 2 ** 47 }]);
          if (process.argv[3] === 'close') await pool.close();
          console.log(JSON.stringify({ entries: r.entries, leaves: r.leaves }));
        `,
        resolveDir: here('.'),
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile: script,
      logLevel: 'warning',
    });
  });

  it.each(['close', 'forget'])('pool %s: the process exits on its own', (mode) => {
    const r = spawnSync(process.execPath, [script, workerPath, mode], { encoding: 'utf8', timeout: 15_000 });
    expect(r.signal).toBeNull(); // not killed by the timeout
    expect(r.status).toBe(0);
    // 256 pgd slots + pud 512 + pmd 512 + pte 512; one leaf
    expect(JSON.parse(r.stdout)).toEqual({ entries: 256 + 512 * 3, leaves: 1 });
  });
});
