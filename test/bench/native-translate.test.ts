/**
 * Translate-by-walk, the second comparison of `npm run bench:native`: bench/native/walker.c's
 * `--translate` mode and mmulab's Mmu.walk (driven by bench/native.mjs, as the benchmark drives it)
 * must find, for each VA, the physical address worked out here by hand from the fixture's rule
 * (bench/fixtures.mjs mapPtes: page i of a dense run from `start` maps frame FIRST_PFN + i), or a
 * fault where the manuals say the walk faults. Skipped, with the reason printed, without a C compiler.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Machine,
  WalkResult,
  entryAlloc,
  loadImage,
  registersFor,
  saveImage,
  setPmdAt,
  setPteAt,
  type GeometryName,
  type LoadedImage,
  type MmStruct,
  type Mmu,
} from '../../src/index';
import { FIRST_PFN, denseSpace } from '../../bench/fixtures.mjs';

const SOURCE = fileURLToPath(new URL('../../bench/native/walker.c', import.meta.url));
const CC = process.env.CC || 'cc';
const probe = spawnSync(CC, ['--version'], { encoding: 'utf8' });
const haveCc = !probe.error && probe.status === 0;
if (!haveCc) console.log(`test/bench/native-translate: skipped — no C compiler (${CC}) found: install gcc to run the native comparison`);

/** What the test uses of bench/native.mjs (a plain .mjs without types: imported by a path held in a string). */
interface NativeBench {
  writeVas(
    file: string,
    o: { geometry: GeometryName; pages: number; start?: number; translations: number; seed?: number },
  ): { translations: number; faults: number; checksum: string };
  loadVas(file: string): { vaHi: Uint32Array; vaLo: Uint32Array };
  imageMmu(img: LoadedImage): Mmu;
  translateAll(mmu: Mmu, vaHi: Uint32Array, vaLo: Uint32Array, out: WalkResult): { translations: number; faults: number; checksum: bigint };
}
const NATIVE_MJS: string = fileURLToPath(new URL('../../bench/native.mjs', import.meta.url));

let bench: NativeBench;
let work = '';
let walker = '';

beforeAll(async () => {
  bench = (await import(NATIVE_MJS)) as NativeBench;
  if (!haveCc) return;
  work = mkdtempSync(join(tmpdir(), 'mmulab-native-translate-'));
  walker = join(work, 'walker');
  execFileSync(CC, ['-O2', '-std=c99', '-Wall', '-Werror', '-o', walker, SOURCE], { stdio: 'pipe' });
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

interface NativeTranslate {
  translations: number;
  faults: number;
  checksum: string;
  seconds: number;
  ns_per_translation: number;
}

function writeVaFile(file: string, vas: readonly bigint[]): void {
  const buf = Buffer.alloc(vas.length * 8);
  vas.forEach((va, i) => buf.writeBigUInt64LE(va, i * 8));
  writeFileSync(file, buf);
}

function nativeTranslate(dir: string, file: string): NativeTranslate {
  return JSON.parse(execFileSync(walker, [dir, '--translate', file], { encoding: 'utf8' }));
}

/** One VA through mmulab's hardware walk, as the benchmark calls it: a user-mode read, debug (no A/D). */
function mmulabOne(mmu: Mmu, va: bigint): bigint | null {
  const out = new WalkResult();
  mmu.walk(Number(va >> 32n), Number(va & 0xffff_ffffn), 'read', true, true, out);
  return out.fault === null ? BigInt(out.pa) : null;
}

/** A case: a VA, and the PA the manuals' walk gives (null: it faults). */
type Case = readonly [va: bigint, pa: bigint | null, why: string];

/**
 * Check every case on both sides one VA at a time (the checksum of one translation is its PA),
 * then all together in one file, through the benchmark's own loop for mmulab.
 */
function checkCases(dir: string, cases: readonly Case[], sum: bigint, faults: number): void {
  const mmu = bench.imageMmu(loadImage(dir));
  const file = join(dir, 'one.bin');
  for (const [va, pa, why] of cases) {
    writeVaFile(file, [va]);
    const n = nativeTranslate(dir, file);
    const want = { va: '0x' + va.toString(16), why, faults: pa === null ? 1 : 0, checksum: '0x' + (pa ?? 0n).toString(16) };
    expect({ va: want.va, why, faults: n.faults, checksum: n.checksum }).toEqual(want);
    expect({ va: want.va, why, pa: mmulabOne(mmu, va) }).toEqual({ va: want.va, why, pa });
  }
  const all = join(dir, 'all.bin');
  writeVaFile(all, cases.map((c) => c[0]));
  expect(nativeTranslate(dir, all)).toMatchObject({ translations: cases.length, faults, checksum: '0x' + sum.toString(16) });
  const { vaHi, vaLo } = bench.loadVas(all);
  expect(bench.translateAll(mmu, vaHi, vaLo, new WalkResult())).toEqual({ translations: cases.length, faults, checksum: sum });
}

/**
 * 4096 dense pages (denseSpace) plus whatever `extra` maps, saved as an image folder; `extra`
 * returns the mm whose pgd is the kernel root (ARM64 TTBR1). `json` goes into machine.json.
 */
function image(
  geometry: GeometryName,
  start: number | undefined,
  extra: (m: Machine, mm: MmStruct) => MmStruct,
  json: Record<string, unknown> = {},
): string {
  const { m, mm } = denseSpace(geometry, 4096, start);
  const kernel = extra(m, mm);
  const dir = mkdtempSync(join(work, `${geometry}-`));
  saveImage(dir, m, registersFor(m, mm.pgd, kernel.pgd), json);
  return dir;
}

/** The low word and the high word of the descriptor at ptr. */
function halves(m: Machine, ptr: number): [number, number] {
  return [m.pgtable.lo(ptr), m.pgtable.hi(ptr)];
}

describe.skipIf(!haveCc)('walker.c --translate against mmulab Mmu.walk, by hand', () => {
  it('the fixture rule the hand values below rely on: FIRST_PFN is 0x100000', () => {
    expect(FIRST_PFN).toBe(0x10_0000);
  });

  it('SDM Vol.3A 4.5/4.6.1, Tables 4-15/4-18/4-20: x86-64 4-level, 4K pages, a 2-MByte PDE, R/W = 0 + XD page, U/S = 0 in the leaf or in the PML4E only, reserved bits, not-present and non-canonical', () => {
    const dir = image('x86_64-4level', undefined, (m, mm) => {
      // A 2-MByte page at 0x7f0002000000 -> 0x200000000 (pfn 0x200000), past the dense run's 16 MiB.
      const user = m.bits.pgprot({ write: true, user: true });
      setPmdAt(mm, 0x7f00_0200_0000, entryAlloc(mm, 0x7f00_0200_0000, 'pmd'), m.bits.pfnHuge('pmd', 0x20_0000, user));
      // Read-only and execute-disable (EFER.NXE = 1 in the image): neither stops a read (SDM 4.6.1).
      const ro = entryAlloc(mm, 0x7f00_0300_0000, 'pte');
      setPteAt(mm, 0x7f00_0300_0000, ro, m.bits.pfnPte(0x30_0000, m.bits.pgprot({ user: true, write: false, exec: false })));
      const [roLo, roHi] = halves(m, ro);
      expect({ rw: roLo & 2, us: roLo & 4, xd: roHi >>> 31 }).toEqual({ rw: 0, us: 4, xd: 1 });
      // U/S = 0: a supervisor-mode page, no user-mode access (SDM 4.6.1).
      const kp = entryAlloc(mm, 0x7f00_0300_1000, 'pte');
      setPteAt(mm, 0x7f00_0300_1000, kp, m.bits.pfnPte(0x30_0001, m.bits.pgprot({ write: true })));
      expect(halves(m, kp)[0] & 5).toBe(1); // P = 1, U/S = 0
      // Reserved bits (#PF with RSVD): with MAXPHYADDR = 46 (cpu.maxphyaddr below), bit 47 of a PTE
      // (Table 4-20: bits 51:MAXPHYADDR); bit 13 of a 2-MByte PDE (Table 4-18: bits 20:13).
      m.pgtable.set(entryAlloc(mm, 0x7f00_0300_2000, 'pte'), 0x8000_0000_0000n | 0x3_0000_2000n | 0x67n);
      const pde = entryAlloc(mm, 0x7f00_0400_0000, 'pmd');
      setPmdAt(mm, 0x7f00_0400_0000, pde, m.bits.pfnHuge('pmd', 0x50_0000, user));
      m.pgtable.set(pde, m.pgtable.val(pde) | 0x2000n);
      // A U/S = 1 2-MByte page in the upper canonical half: the tables above it are a kernel
      // address's (pgd_populate with _KERNPG_TABLE), U/S = 0 in the PML4E, so a user read faults
      // although the leaf allows it: U/S is ANDed over every level.
      const upper = entryAlloc(mm, 0xffff_8000_0040_0000, 'pmd');
      setPmdAt(mm, 0xffff_8000_0040_0000, upper, m.bits.pfnHuge('pmd', 0x40_0000, user));
      expect({ pml4eUs: halves(m, entryAlloc(mm, 0xffff_8000_0040_0000, 'pgd'))[0] & 4, pdeUs: halves(m, upper)[0] & 4 }).toEqual({ pml4eUs: 0, pdeUs: 4 });
      return mm;
    }, { cpu: { maxphyaddr: 46 } });
    const cases: Case[] = [
      [0x7f00_0000_0000n, 0x1_0000_0000n, 'page 0 of the run: frame 0x100000'],
      [0x7f00_0012_35a8n, 0x1_0012_35a8n, 'page 0x123, offset 0x5a8'],
      [0x7f00_00ff_fff8n, 0x1_00ff_fff8n, 'page 0xfff (the last), offset 0xff8'],
      [0x7f00_021f_fff8n, 0x2_001f_fff8n, '2-MByte page, offset 0x1ffff8 (bits 20:0 of the VA)'],
      [0x7f00_0300_0010n, 0x3_0000_0010n, 'R/W = 0, XD = 1: a read still translates'],
      [0x7f00_0300_1010n, null, 'U/S = 0: user-mode read faults'],
      [0xffff_8000_0040_0008n, null, 'upper half: U/S = 1 in the PDE, 0 in the PML4E'],
      [0x7f00_0300_2010n, null, 'PTE bit 47 set, MAXPHYADDR 46: reserved'],
      [0x7f00_0400_0010n, null, '2-MByte PDE with bit 13 set: reserved'],
      [0x7f00_0100_0000n, null, 'the page just past the run: PDE not present'],
      [0x0000_8000_0000_0000n, null, 'bit 47 set, bits 63:48 clear: non-canonical'],
    ];
    // 0x100000000 + 0x1001235a8 + 0x100fffff8 + 0x2001ffff8 + 0x300000010
    checkCases(dir, cases, 0x8_0132_35a8n, 6);
  });

  it('Arm ARM D8.2-D8.4: arm64 4K/48, level 3 pages, a level 2 block, AP[2] + UXN/PXN page, AP[1] = 0, AF = 0, TTBR1, invalid and out of range', () => {
    const dir = image('arm64-4k-48', undefined, (m, mm) => {
      const user = m.bits.pgprot({ write: true, user: true });
      setPmdAt(mm, 0x7f00_0200_0000, entryAlloc(mm, 0x7f00_0200_0000, 'pmd'), m.bits.pfnHuge('pmd', 0x20_0000, user));
      // AP[2] = 1 (read-only) and UXN/PXN: neither stops an EL0 read (D8.4.1).
      const ro = entryAlloc(mm, 0x7f00_0300_0000, 'pte');
      setPteAt(mm, 0x7f00_0300_0000, ro, m.bits.pfnPte(0x30_0000, m.bits.pgprot({ user: true, write: false, exec: false })));
      const [roLo, roHi] = halves(m, ro);
      expect({ ap1: roLo & 0x40, ap2: roLo & 0x80, af: roLo & 0x400, uxn: (roHi >>> 22) & 1 }).toEqual({ ap1: 0x40, ap2: 0x80, af: 0x400, uxn: 1 });
      // AP[1] = 0: no EL0 access, a Permission fault.
      const kp = entryAlloc(mm, 0x7f00_0300_1000, 'pte');
      setPteAt(mm, 0x7f00_0300_1000, kp, m.bits.pfnPte(0x30_0001, m.bits.pgprot({ write: true })));
      expect(halves(m, kp)[0] & 0x441).toBe(0x401); // valid, AF = 1, AP[1] = 0
      // AF = 0 with TCR_EL1.HA = 0: an Access flag fault.
      const old = entryAlloc(mm, 0x7f00_0300_2000, 'pte');
      setPteAt(mm, 0x7f00_0300_2000, old, m.bits.pfnPte(0x30_0002, m.bits.pgprot({ user: true, young: false })));
      expect(halves(m, old)[0] & 0x441).toBe(0x41); // valid, AP[1] = 1, AF = 0
      // Written raw (D8.3): bits[1:0] = 0b01 at level 3 is reserved; a block at level 0 is not
      // allowed with the 4KB granule unless DS = 1 (this image: DS = 0). Both are Translation faults.
      m.pgtable.set(entryAlloc(mm, 0x7f00_0300_3000, 'pte'), 0x3_0000_3000n | 0x441n);
      m.pgtable.set(entryAlloc(mm, 0x4000_0000_0000, 'pgd'), 0x80_0000_0000n | 0x441n);
      // APTable[0] (bit 61) = 1 in the level 2 table descriptor above a user page: no EL0 access
      // anywhere below it (D8.4.2, hierarchical controls).
      setPteAt(mm, 0x7f00_0340_0000, entryAlloc(mm, 0x7f00_0340_0000, 'pte'), m.bits.pfnPte(0x30_0004, user));
      const table = entryAlloc(mm, 0x7f00_0340_0000, 'pmd');
      m.pgtable.set(table, m.pgtable.val(table) | (1n << 61n));
      // A user-accessible level 2 block through TTBR1 (init_mm): VA bit 55 selects it.
      const k = m.initMm;
      setPmdAt(k, 0xffff_0000_0040_0000, entryAlloc(k, 0xffff_0000_0040_0000, 'pmd'), m.bits.pfnHuge('pmd', 0x40_0000, user));
      return k;
    });
    const cases: Case[] = [
      [0x7f00_0000_0000n, 0x1_0000_0000n, 'page 0 of the run: frame 0x100000'],
      [0x7f00_0012_35a8n, 0x1_0012_35a8n, 'page 0x123, offset 0x5a8'],
      [0x7f00_00ff_fff8n, 0x1_00ff_fff8n, 'page 0xfff (the last), offset 0xff8'],
      [0x7f00_021f_fff8n, 0x2_001f_fff8n, 'level 2 block (2 MiB), offset 0x1ffff8'],
      [0x7f00_0300_0010n, 0x3_0000_0010n, 'AP[2] = 1, UXN = PXN = 1: an EL0 read still translates'],
      [0x7f00_0300_1010n, null, 'AP[1] = 0: EL0 read, Permission fault'],
      [0x7f00_0300_2010n, null, 'AF = 0, HA = 0: Access flag fault'],
      [0xffff_0000_0040_0008n, 0x4_0000_0008n, 'TTBR1_EL1: level 2 block'],
      [0x7f00_0300_3010n, null, 'level 3 descriptor 0b01: reserved, Translation fault'],
      [0x7f00_0340_0010n, null, 'APTable[0] = 1 above an AP[1] = 1 page: Permission fault'],
      [0x4000_0000_1000n, null, 'level 0 block descriptor with the 4KB granule, DS = 0: Translation fault'],
      [0x7f00_0100_0000n, null, 'the page just past the run: invalid descriptor'],
      [0x0001_0000_0000_0000n, null, 'bit 48 set, bit 55 clear: VA out of range for T0SZ = 16'],
    ];
    checkCases(dir, cases, 0xc_0132_35b0n, 7);
  });

  it('Arm ARM D8.2-D8.4: arm64 64K/42 (two levels from level 2), 64K pages, a 512 MiB level 2 block, AP[1] = 0, AF = 0, TTBR1, invalid and out of range', () => {
    const dir = image('arm64-64k-42', 2 ** 40, (m, mm) => {
      const user = m.bits.pgprot({ write: true, user: true });
      // 512 MiB block at 0x10020000000 -> 0x4000000000 (pfn 0x400000 in 64K frames).
      setPmdAt(mm, 0x100_2000_0000, entryAlloc(mm, 0x100_2000_0000, 'pmd'), m.bits.pfnHuge('pmd', 0x40_0000, user));
      const ro = entryAlloc(mm, 0x100_4000_0000, 'pte');
      setPteAt(mm, 0x100_4000_0000, ro, m.bits.pfnPte(0x50_0000, m.bits.pgprot({ user: true, write: false, exec: false })));
      const kp = entryAlloc(mm, 0x100_4001_0000, 'pte');
      setPteAt(mm, 0x100_4001_0000, kp, m.bits.pfnPte(0x50_0001, m.bits.pgprot({ write: true })));
      expect(halves(m, kp)[0] & 0x441).toBe(0x401);
      const old = entryAlloc(mm, 0x100_4002_0000, 'pte');
      setPteAt(mm, 0x100_4002_0000, old, m.bits.pfnPte(0x50_0002, m.bits.pgprot({ user: true, young: false })));
      expect(halves(m, old)[0] & 0x441).toBe(0x41);
      // Written raw: a 64KB page whose bits 15:12 (OA[51:48], FEAT_LPA) are 0b0001: OA
      // 0x1005000030000 is beyond the 48-bit output size of TCR_EL1.IPS = 0b101, an Address size fault.
      m.pgtable.set(entryAlloc(mm, 0x100_4003_0000, 'pte'), 0x50_0003_0000n | 0x1000n | 0x443n);
      // TTBR1 covers 0xfffffc0000000000 and up (T1SZ = 22); a block there -> 0x6000000000.
      const k = m.initMm;
      setPmdAt(k, 0xffff_fc00_2000_0000, entryAlloc(k, 0xffff_fc00_2000_0000, 'pmd'), m.bits.pfnHuge('pmd', 0x60_0000, user));
      return k;
    });
    const cases: Case[] = [
      [0x100_0000_0000n, 0x10_0000_0000n, 'page 0 of the run: 64K frame 0x100000 = 0x1000000000'],
      [0x100_0123_05a8n, 0x10_0123_05a8n, 'page 0x123, offset 0x5a8'],
      [0x100_0fff_fff8n, 0x10_0fff_fff8n, 'page 0xfff (the last), offset 0xfff8'],
      [0x100_3fff_fff8n, 0x40_1fff_fff8n, 'level 2 block (512 MiB), offset 0x1ffffff8'],
      [0x100_4000_0010n, 0x50_0000_0010n, 'AP[2] = 1, UXN = PXN = 1: an EL0 read still translates'],
      [0x100_4001_0010n, null, 'AP[1] = 0: EL0 read, Permission fault'],
      [0x100_4002_0010n, null, 'AF = 0, HA = 0: Access flag fault'],
      [0xffff_fc00_2000_0008n, 0x60_0000_0008n, 'TTBR1_EL1: level 2 block'],
      [0x100_4003_0010n, null, 'OA[51:48] = 1 from descriptor bits 15:12, IPS 48 bits: Address size fault'],
      [0x100_1000_0000n, null, 'the page just past the run: invalid descriptor in the same level 3 table'],
      [0x400_0000_0000n, null, 'bit 42 set, bit 55 clear: VA out of range for T0SZ = 22'],
    ];
    // 0x1000000000 + 0x10012305a8 + 0x100ffffff8 + 0x401ffffff8 + 0x5000000010 + 0x6000000008
    checkCases(dir, cases, 0x120_3123_05b0n, 5);
  });

  it('the benchmark VA file (writeVas): 8-aligned offsets, about 1 in 64 faulting, and both sides find the sum its fixture rule predicts', () => {
    for (const [geometry, start] of [
      ['x86_64-4level', undefined],
      ['arm64-16k-47', undefined],
      ['arm64-64k-42', 2 ** 40],
    ] as const) {
      const dir = image(geometry, start, (_m, mm) => mm);
      const file = join(dir, 'vas.bin');
      const expected = bench.writeVas(file, { geometry, pages: 4096, start, translations: 8192 });
      const raw = readFileSync(file);
      expect(raw.length).toBe(8192 * 8);
      for (let i = 0; i < raw.length; i += 8) expect(raw.readUInt32LE(i) % 8).toBe(0);
      // 8192 / 64 = 128 expected faults; a seeded draw lands well inside [64, 192].
      expect(expected.faults).toBeGreaterThan(64);
      expect(expected.faults).toBeLessThan(192);
      const n = nativeTranslate(dir, file);
      expect({ geometry, translations: n.translations, faults: n.faults, checksum: n.checksum }).toEqual({ geometry, ...expected });
      const { vaHi, vaLo } = bench.loadVas(file);
      const r = bench.translateAll(bench.imageMmu(loadImage(dir)), vaHi, vaLo, new WalkResult());
      expect({ geometry, translations: r.translations, faults: r.faults, checksum: '0x' + r.checksum.toString(16) }).toEqual({ geometry, ...expected });
    }
  });

  it('a table entry pointing outside memory: exit 1 naming the entry, as in walk mode', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 4 * 2 ** 20 });
    const mm = m.newMm();
    const pmd = entryAlloc(mm, 0x40_0000, 'pmd');
    // A present PDE referencing a page table at 1 GiB, beyond the 4 MiB of memory (SDM Table 4-19).
    m.pgtable.set(pmd, 0x4000_0000n | 0x67n);
    const dir = mkdtempSync(join(work, 'outside-'));
    saveImage(dir, m, registersFor(m, mm.pgd, mm.pgd));
    const file = join(dir, 'vas.bin');
    writeVaFile(file, [0x40_0000n]);
    const r = spawnSync(walker, [dir, '--translate', file], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`table entry at 0x${pmd.toString(16)} points to 0x40000000, outside memory`));
  });

  it('bad input: a VA file that is not whole u64s exits 1; --translate with --start is a usage error (2)', () => {
    const dir = image('x86_64-4level', undefined, (_m, mm) => mm);
    const bad = join(dir, 'bad.bin');
    writeFileSync(bad, Buffer.alloc(12));
    const r = spawnSync(walker, [dir, '--translate', bad], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bad\.bin: 12 bytes; expected a non-zero multiple of 8/);
    const u = spawnSync(walker, [dir, '--translate', bad, '--start', '0x0'], { encoding: 'utf8' });
    expect(u.status).toBe(2);
    expect(u.stderr).toMatch(/takes no --start\/--end/);
  });
});
