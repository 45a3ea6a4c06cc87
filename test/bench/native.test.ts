/**
 * The native reference walker (bench/native/walker.c) against mmulab's counting walk (countWalk,
 * the engine of `mmulab walk`): the same image folder must give the same entries, leaves,
 * leaves_by_level and checksum. Skipped, with the reason printed, where there is no C compiler.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GEOMETRY_NAMES,
  Machine,
  countWalk,
  entryAlloc,
  loadImage,
  registersFor,
  saveImage,
  setPmdAt,
  setPteAt,
  setPudAt,
} from '../../src/index';
import { arm64Image, tempDir, x86Image } from '../mm/image-fixtures';

const SOURCE = fileURLToPath(new URL('../../bench/native/walker.c', import.meta.url));
const CC = process.env.CC || 'cc';
const probe = spawnSync(CC, ['--version'], { encoding: 'utf8' });
const haveCc = !probe.error && probe.status === 0;
if (!haveCc) console.log(`test/bench/native: skipped — no C compiler (${CC}) found: install gcc to run the native comparison`);

let buildDir = '';
let walker = '';

beforeAll(() => {
  if (!haveCc) return;
  buildDir = mkdtempSync(join(tmpdir(), 'mmulab-native-'));
  walker = join(buildDir, 'walker');
  execFileSync(CC, ['-O2', '-std=c99', '-Wall', '-Werror', '-o', walker, SOURCE], { stdio: 'pipe' });
});
afterAll(() => {
  if (buildDir) rmSync(buildDir, { recursive: true, force: true });
});

interface Counts {
  entries: number;
  leaves: number;
  leaves_by_level: Record<string, number>;
  checksum: string;
}

function native(dir: string, ...args: string[]): Counts & { seconds: number } {
  return JSON.parse(execFileSync(walker, [dir, ...args], { encoding: 'utf8' }));
}

/** What `mmulab walk --json` reports, from countWalk over the loaded image. */
function mmulab(dir: string, start?: number, end?: number): Counts {
  const img = loadImage(dir);
  const r = countWalk(img.machine, img.roots, start, end);
  return { entries: r.entries, leaves: r.leaves, leaves_by_level: r.leavesByLevel, checksum: '0x' + r.checksum.toString(16) };
}

function nativeFails(dir: string): { status: number | null; stderr: string } {
  const r = spawnSync(walker, [dir], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

describe.skipIf(!haveCc)('bench/native/walker.c', () => {
  it('x86-64 4-level fixture, by hand: 6 tables x 512 slots = 3072 entries; 4K pfns 0x100+0x101+0x200, 2M 0x800, 1G 0x40000 -> checksum 0x40c01', () => {
    const { dir } = x86Image();
    try {
      const n = native(dir);
      // Tables reached: the PML4, the user PDPT, two PDs (for 0x0 and 0x40000000), one PT, and the
      // kernel PDPT holding the 1 GiB leaf (SDM Vol.3A 4.5: 512 8-byte entries per table).
      expect(n).toMatchObject({ entries: 3072, leaves: 5, leaves_by_level: { '1': 3, '2': 1, '3': 1 }, checksum: '0x40c01' });
      expect(typeof n.seconds).toBe('number');
      const m = mmulab(dir);
      expect({ entries: n.entries, leaves: n.leaves, leaves_by_level: n.leaves_by_level, checksum: n.checksum }).toEqual(m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('arm64 4K/48 fixture, by hand: TTBR0 4 tables + TTBR1 3 tables = 7 x 512 = 3584 entries; checksum 0x40100+0x40101+0x40200 = 0xc0401', () => {
    const { dir } = arm64Image();
    try {
      const n = native(dir);
      // Arm ARM D8.2: 4KB granule, 48-bit VA starts at level 0; every table holds 512 descriptors.
      // TTBR0: L0, L1, L2, L3 (two pages); TTBR1: L0, L1, L2 (one 2 MiB block at level 2).
      expect(n).toMatchObject({ entries: 3584, leaves: 3, leaves_by_level: { '2': 1, '3': 2 }, checksum: '0xc0401' });
      const m = mmulab(dir);
      expect({ entries: n.entries, leaves: n.leaves, leaves_by_level: n.leaves_by_level, checksum: n.checksum }).toEqual(m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--start/--end, by hand: [0x400000, 0x402000) on the x86 fixture reads 1 PML4E + 1 PDPTE + 1 PDE + 2 PTEs, leaves pfn 0x100 + 0x101', () => {
    const { dir } = x86Image();
    try {
      const n = native(dir, '--start', '0x400000', '--end', '0x402000');
      expect(n).toMatchObject({ entries: 5, leaves: 2, leaves_by_level: { '1': 2 }, checksum: '0x201' });
      expect(mmulab(dir, 0x400000, 0x402000)).toEqual({ entries: 5, leaves: 2, leaves_by_level: { '1': 2 }, checksum: '0x201' });
      // The top of the range may be given as 2^64, as for `mmulab walk`.
      const top = native(dir, '--start', '0xffff888000000000', '--end', '0x10000000000000000');
      expect(top).toMatchObject({ leaves: 1, leaves_by_level: { '3': 1 }, checksum: '0x40000' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('agrees with countWalk on every geometry: 4K pages (one PROT_NONE), PMD and PUD leaves, high output addresses', () => {
    for (const geo of GEOMETRY_NAMES) {
      const arm = geo.startsWith('arm64');
      const m = new Machine({ geometry: geo, memSize: 4 * 2 ** 20, ...(arm ? { physBase: 0x4000_0000 } : {}) });
      const g = m.geo;
      const P = g.PAGE_SIZE;
      const mm = m.newMm();
      const user = m.bits.pgprot({ write: true, user: true });
      const protNone = m.bits.pgprot({ read: false, write: false, exec: false, user: true });
      // Output addresses near the top of the PA space exercise LPA/LPA2's split address fields.
      const highPfn = Math.floor(2 ** (g.pa52 === 'none' ? 47 : 51) / P) - 8;
      for (let i = 0; i < 4; i++) {
        const va = 0x40_0000 + i * P;
        setPteAt(mm, va, entryAlloc(mm, va, 'pte'), m.bits.pfnPte(highPfn + i, i === 2 ? protNone : user));
      }
      const perPmd = g.PMD_SIZE / P;
      setPmdAt(mm, g.PMD_SIZE * 3, entryAlloc(mm, g.PMD_SIZE * 3, 'pmd'), m.bits.pfnHuge('pmd', Math.floor(highPfn / perPmd) * perPmd, user));
      if (g.pudLeaf) setPudAt(mm, g.PUD_SIZE * 2, entryAlloc(mm, g.PUD_SIZE * 2, 'pud'), m.bits.pfnHuge('pud', 5 * (g.PUD_SIZE / P), user));
      // A kernel block: ARM64 through TTBR1 (init_mm), x86-64 in the upper canonical half of CR3's table.
      const k = arm ? m.initMm : mm;
      const kva = 2 ** 64 - 2 ** (arm ? g.vaBits : g.vaBits - 1) + g.PMD_SIZE * 5;
      setPmdAt(k, kva, entryAlloc(k, kva, 'pmd'), m.bits.pfnHuge('pmd', 7 * perPmd, m.bits.pgprot({ write: true })));
      const dir = tempDir();
      try {
        saveImage(dir, m, registersFor(m, mm.pgd, k.pgd));
        const n = native(dir);
        const expected = mmulab(dir);
        expect({ geo, entries: n.entries, leaves: n.leaves, leaves_by_level: n.leaves_by_level, checksum: n.checksum }).toEqual({ geo, ...expected });
        expect({ geo, leaves: n.leaves }).toEqual({ geo, leaves: 4 + 1 + (g.pudLeaf ? 1 : 0) + 1 });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it('a table entry pointing outside memory is an error on both sides (exit 1, the entry named)', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 4 * 2 ** 20 });
    const mm = m.newMm();
    const pmd = entryAlloc(mm, 0x40_0000, 'pmd');
    // A present PDE referencing a page table at 1 GiB, beyond the 4 MiB of memory (SDM Table 4-19).
    m.pgtable.set(pmd, 0x4000_0000n | 0x67n);
    const dir = tempDir();
    try {
      saveImage(dir, m, registersFor(m, mm.pgd, mm.pgd));
      expect(() => mmulab(dir)).toThrow(/outside memory/);
      const r = nativeFails(dir);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`table entry at 0x${pmd.toString(16)} points to 0x40000000, outside memory`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a folder without machine.json exits 1 naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmulab-native-empty-'));
    try {
      const r = nativeFails(dir);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/machine\.json: not found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
