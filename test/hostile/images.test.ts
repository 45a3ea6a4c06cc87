/**
 * Hostile images (issue 8, item 2): descriptors pointing outside physical memory, reserved bits,
 * tables that point to themselves, truncated memory.bin, machine.json with wrong types, missing or
 * impossible registers. Each gives a fault value or a clear error naming the field or address —
 * never an uncaught exception, a hang or a half-written output — through the library and through
 * the commands walk, dump, translate and trace. Every descriptor and expected code is written by
 * hand from the manuals' bit positions (fixtures.ts says which).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ImageError,
  Machine,
  PhysMem,
  WalkResult,
  createArm64Mmu,
  createCpu,
  imageCpuParams,
  isFault,
  loadImage,
  registersFor,
  saveImage,
  type TranslateOutcome,
} from '../../src/index';
import { run } from '../cli/run';
import { RawMemory, X86_REGS, arm64Json, arm64Small, removeTempDirs, tempDir, writeImage, x86Json, x86Small } from './fixtures';

afterAll(removeTempDirs);

/** The CPU-side translation of an image, as `mmulab translate` does it (a debugger walk). */
function translate(dir: string, va: bigint, access: 'read' | 'write' | 'exec' = 'read', user = false): TranslateOutcome {
  const img = loadImage(dir, { allowBigEndian: true });
  const p = imageCpuParams(img);
  const cpu = createCpu(p.arch, img.machine.mem, p.registers, { ...p.options, tlb: 'none' });
  return cpu.translate(va, access, user, { debug: true });
}
function faultOf(t: TranslateOutcome) {
  if (!isFault(t)) throw new Error(`expected a fault, got a translation to 0x${t.pa.toString(16)}`);
  return t.fault;
}
/** A user error from the CLI: exit 1, the message on stderr, no stack trace, nothing on stdout. */
function expectCleanError(r: { code: number; out: string; err: string }, message: RegExp): void {
  expect(r.code).toBe(1);
  expect(r.err).toMatch(message);
  expect(r.err).not.toMatch(/\n\s+at /);
  expect(r.out).toBe('');
}
function traceFile(dir: string, lines: string[]): string {
  const p = join(dir, 'trace.txt');
  writeFileSync(p, lines.join('\n') + '\n');
  return p;
}

// ---- descriptors pointing outside physical memory -------------------------------------------------

describe('descriptors pointing outside physical memory', () => {
  // x86Small's PML4 is at 0x1000; PML4[1] (at 0x1008) covers VA 0x8000000000 (bits 47:39 = 1).
  // 0x1000000067: a PDPT at 64 GiB (bits 51:12 = 0x1000000), P RW US A D — memory is 64 KiB.
  const x86OutOfMemory = () => writeImage(x86Json(0x1000), x86Small().set(0x1008, 0x10_0000_0067n).bytes);

  it('descriptor pointing outside physical memory (x86-64 PML4E → 64 GiB): a #PF with RSVD at level 3, code P|RSVD = 0x9 (what the all-ones read of unbacked memory decodes to: PS = 1 and bits 29:13 set, SDM Table 4-16)', () => {
    const dir = x86OutOfMemory();
    expect(faultOf(translate(dir, 0x80_0000_0000n))).toEqual({ kind: 'reserved', level: 3, code: 0x9 });
    // The access bits join as in any #PF (SDM §4.7): W/R 0x2, U/S 0x4.
    expect(faultOf(translate(dir, 0x80_0000_0000n, 'write', true))).toEqual({ kind: 'reserved', level: 3, code: 0xf });
  });

  it('x86-64: the unreadable PDPTE is recorded as the walk\'s last entry, with the all-ones value a PC returns (address 0x1000000000 + index 0)', () => {
    const img = loadImage(x86OutOfMemory());
    const p = imageCpuParams(img);
    const mmu = createCpu(p.arch, img.machine.mem, p.registers, { tlb: 'none' });
    const out = new WalkResult();
    mmu.access(0x80, 0x0, 'read', false, out);
    expect(out.fault).toBe('reserved');
    expect(out.entries).toBe(2);
    expect(out.memRefs).toBe(2);
    expect(Array.from(out.entryAddrs.slice(0, 2))).toEqual([0x1008, 0x10_0000_0000]);
    expect([out.entryLo[1], out.entryHi[1]]).toEqual([0xffff_ffff, 0xffff_ffff]);
  });

  it('x86-64: the same faults as an all-ones entry really present in memory, at the PDPT, PD and (MAXPHYADDR 46) PT levels', () => {
    const ONES = 0xffff_ffff_ffff_ffffn;
    // PML4[1] → PDPT 0x6000 | PDPT[0] → PD 0x7000 | PD[0] → PT 0xa000 (all inside the 64 KiB); the
    // entry under test is all-ones in memory in one image and a table outside memory in the other.
    const chain = (pdpt0: bigint, pd0: bigint, pt0: bigint) =>
      x86Small().set(0x1008, 0x6067n).set(0x6000, pdpt0).set(0x7000, pd0).set(0xa000, pt0).bytes;
    const far = 0x10_0000_0067n;
    const cases: [string, Uint8Array, Uint8Array, number][] = [
      ['PDPTE', chain(ONES, 0n, 0n), x86Small().set(0x1008, far).bytes, 3],
      ['PDE', chain(0x7067n, ONES, 0n), chain(far, 0n, 0n), 2],
      ['PTE', chain(0x7067n, 0xa067n, ONES), chain(0x7067n, far, 0n), 1],
    ];
    for (const [what, ones, outside, level] of cases) {
      const cpu = { cpu: { maxphyaddr: 46 } };
      const a = faultOf(translate(writeImage(x86Json(0x1000, cpu), ones), 0x80_0000_0000n));
      const b = faultOf(translate(writeImage(x86Json(0x1000, cpu), outside), 0x80_0000_0000n));
      expect(a, what).toEqual({ kind: 'reserved', level, code: 0x9 });
      expect(b, what).toEqual(a);
    }
  });

  it('x86-64, the one chosen case: with MAXPHYADDR 52 and EFER.NXE = 1 an all-ones PTE has no reserved bit (it maps 0xffffffffff000); a page table outside memory is still the RSVD fault', () => {
    const ones = x86Small().set(0x1008, 0x6067n).set(0x6000, 0x7067n).set(0x7000, 0xa067n).set(0xa000, 0xffff_ffff_ffff_ffffn).bytes;
    expect(translate(writeImage(x86Json(0x1000), ones), 0x80_0000_0123n)).toMatchObject({ pa: 0xf_ffff_ffff_f123n, level: 1 });
    const outside = x86Small().set(0x1008, 0x6067n).set(0x6000, 0x7067n).set(0x7000, 0x10_0000_0067n).bytes;
    expect(faultOf(translate(writeImage(x86Json(0x1000), outside), 0x80_0000_0123n))).toEqual({ kind: 'reserved', level: 1, code: 0x9 });
  });

  // arm64Small's TTBR0 L0 table is at 0x40001000; L0[1] (at 0x40001008) covers VA 0x8000000000.
  // 0x1000000003: a table descriptor (0b11) to a level 1 table at 64 GiB, below the 48-bit OA size.
  const armOutOfMemory = () => writeImage(arm64Json(0x4000_1000, 0x4000_5000), arm64Small().set(0x4000_1008, 0x10_0000_0003n).bytes);

  it('descriptor pointing outside physical memory (ARM64 L0 → 64 GiB): a synchronous External abort on translation table walk at level 1, DFSC 0b010101 = 0x15 (Arm ARM ESR_ELx ISS DFSC)', () => {
    const dir = armOutOfMemory();
    expect(faultOf(translate(dir, 0x80_0000_0000n))).toEqual({ kind: 'external_abort', level: 1, code: 0x15 });
    expect(faultOf(translate(dir, 0x80_0000_0000n, 'exec', true))).toEqual({ kind: 'external_abort', level: 1, code: 0x15 });
  });

  it('ARM64 LPA2 (4KB granule, 52-bit VA): a start table outside memory is an External abort at level -1, DFSC 0b010011 = 0x13', () => {
    // TCR_EL1: T0SZ = 12 (bits 5:0), TG0 = 4KB, EPD1 = 1 (bit 23), IPS = 0b110 52 bits (34:32), DS = 1 (bit 59).
    const tcr = (1n << 59n) | (6n << 32n) | (1n << 23n) | 12n;
    const mem = new PhysMem({ size: 0x10000, physBase: 0x4000_0000 });
    const mmu = createArm64Mmu(mem, { tcr_el1: tcr, ttbr0_el1: 0x8000_0000n, sctlr_el1: 1n });
    expect(faultOf(mmu.translate(0x1000n, 'read', false))).toEqual({ kind: 'external_abort', level: -1, code: 0x13 });
  });

  it('ARM64: a table address at or above the IPS output size is an Address size fault (DFSC 0b0000LL), not an External abort', () => {
    // IPS = 0b000 (32-bit PA): TCR 0x80100010. L0[1] → a table at 4 GiB = 2^32, the first address beyond.
    const dir = writeImage(arm64Json(0x4000_1000, 0x4000_5000, 0x4000_0000, '0x80100010'), arm64Small().set(0x4000_1008, 0x1_0000_0003n).bytes);
    expect(faultOf(translate(dir, 0x80_0000_0000n))).toEqual({ kind: 'address_size', level: 0, code: 0x00 });
  });

  it('through the CLI: translate reports the fault value, walk and dump exit 1 naming the entry and the address with nothing printed, trace counts the fault', async () => {
    const x = x86OutOfMemory();
    const a = armOutOfMemory();
    expect((await run('translate', x, '0x8000000000', '--json')).out).toBe('{"va":"0x8000000000","fault":{"kind":"reserved","level":3,"code":"0x9"}}');
    expect((await run('translate', a, '0x8000000000', '--json')).out).toBe('{"va":"0x8000000000","fault":{"kind":"external_abort","level":1,"code":"0x15"}}');
    expect((await run('translate', a, '0x8000000000')).out).toBe('0x8000000000  fault external_abort at level 1, code 0x15');
    for (const [dir, entry] of [
      [x, 0x1008],
      [a, 0x4000_1008],
    ] as const) {
      const pattern = new RegExp(`table entry at 0x${entry.toString(16)} points to 0x1000000000, outside memory`);
      expectCleanError(await run('walk', dir, '--json'), pattern);
      expectCleanError(await run('dump', dir), pattern); // no half-printed dump before the error
      expectCleanError(await run('dump', dir, '--json'), pattern);
    }
    const tx = JSON.parse((await run('trace', x, traceFile(x, ['8000000000 r', '0 r']), '--json')).out);
    // Memory references count the read that found no memory: 2 for the faulting walk (PML4E, the
    // unbacked PDPTE), 4 for VA 0 (PML4E, PDPTE, PDE, PTE).
    expect(tx).toMatchObject({ accesses: 2, walks: 2, faults: 1, faults_by_kind: { reserved: 1 }, external_aborts: 0, mem_refs: 6 });
    const ta = JSON.parse((await run('trace', a, traceFile(a, ['8000000000 r', '0 r', '8000000000 w u']), '--json')).out);
    expect(ta).toMatchObject({ accesses: 3, walks: 3, faults: 2, faults_by_kind: { external_abort: 2 }, external_aborts: 2, mem_refs: 2 + 4 + 2 });
    const text = (await run('trace', a, join(a, 'trace.txt'))).out;
    expect(text).toMatch(/faults +2 — external_abort 2/);
    expect(text).toMatch(/external aborts 2 \(walks that read outside emulated memory\)/);
  });
});

// ---- reserved bits ---------------------------------------------------------------------------------

describe('reserved bits and reserved encodings: fault values with the manual\'s code', () => {
  it('x86-64 PDE with PS = 1 and bit 13 set (reserved in a 2-MByte PDE, SDM Table 4-18): RSVD fault at level 2, code 0x9; walk and dump still read the tables as Linux does', async () => {
    const dir = writeImage(x86Json(0x1000), x86Small().set(0x3008, 0x20_20e7n).bytes);
    expect(faultOf(translate(dir, 0x20_0000n))).toEqual({ kind: 'reserved', level: 2, code: 0x9 });
    expect((await run('walk', dir, '--json')).code).toBe(0);
    expect((await run('dump', dir, '--json')).code).toBe(0);
  });

  it('x86-64 PML4E with an address bit above MAXPHYADDR (cpu.maxphyaddr 36, bit 36 set: SDM §4.5.4): RSVD fault at level 4', () => {
    const dir = writeImage(x86Json(0x1000, { cpu: { maxphyaddr: 36 } }), x86Small().set(0x1000, 0x10_0000_2067n).bytes);
    expect(faultOf(translate(dir, 0x0n))).toEqual({ kind: 'reserved', level: 4, code: 0x9 });
  });

  it('x86-64 PS = 1 in a PML4E (reserved, SDM Table 4-15): RSVD fault at level 4', () => {
    const dir = writeImage(x86Json(0x1000), x86Small().set(0x1000, 0x20e7n).bytes);
    expect(faultOf(translate(dir, 0x0n, 'write', true))).toEqual({ kind: 'reserved', level: 4, code: 0xf });
  });

  it('ARM64 bits[1:0] = 0b01 at level 3 (reserved, Arm ARM D8.3): a level 3 Translation fault, DFSC 0b000111 = 0x07', () => {
    const dir = writeImage(arm64Json(0x4000_1000, 0x4000_5000), arm64Small().set(0x4000_4000, 0x4000_8401n).bytes);
    expect(faultOf(translate(dir, 0x0n))).toEqual({ kind: 'translation', level: 3, code: 0x07 });
  });

  it('ARM64 a block descriptor at level 0 with the 4KB granule and DS = 0 (AArch64.BlockDescSupported): a level 0 Translation fault, DFSC 0x04', () => {
    const dir = writeImage(arm64Json(0x4000_1000, 0x4000_5000), arm64Small().set(0x4000_1000, 0x401n).bytes);
    expect(faultOf(translate(dir, 0x0n))).toEqual({ kind: 'translation', level: 0, code: 0x04 });
  });
});

// ---- tables that point to themselves -----------------------------------------------------------------

describe('tables that point to themselves: a hand-made loop ends where the levels end', () => {
  // PML4 at 0x1000 whose entry 0 is 0x1003 (P RW → the PML4 itself): for VA 0 the walk reads the same
  // entry as PML4E, PDPTE, PDE and PTE; the PTE maps the 4 KiB page 0x1000 (the recursive-slot trick).
  const x86Self = () => writeImage(x86Json(0x1000), new RawMemory(0x10000).set(0x1000, 0x1003n).bytes);

  it('self-referencing table (PML4E → its own table) ends at level 1: VA 0 translates to the PML4 itself, after 4 reads of the same entry', () => {
    const img = loadImage(x86Self());
    const p = imageCpuParams(img);
    const cpu = createCpu(p.arch, img.machine.mem, p.registers, { tlb: 'none' });
    const out = new WalkResult();
    cpu.access(0, 0x123, 'read', false, out);
    expect(out.fault).toBeNull();
    expect([out.level, out.pa, out.pageSize, out.entries]).toEqual([1, 0x1123, 4096, 4]);
    expect(Array.from(out.entryAddrs.slice(0, 4))).toEqual([0x1000, 0x1000, 0x1000, 0x1000]);
  });

  it('self-referencing table (x86-64) through the CLI: translate, walk (512 PML4 + 3 × 512 slots, one leaf, checksum 0x1), dump (one 4K range)', async () => {
    const dir = x86Self();
    expect((await run('translate', dir, '0x0', '--json')).out).toMatch(/^\{"va":"0x0","pa":"0x1000","page_size":4096,"level":1,/);
    const w = JSON.parse((await run('walk', dir, '--json')).out);
    expect(w).toMatchObject({ entries: 2048, leaves: 1, leaves_by_level: { '1': 1 }, checksum: '0x1' });
    const d = (await run('dump', dir, '--json')).out.split('\n');
    expect(d).toHaveLength(1);
    expect(JSON.parse(d[0]!)).toMatchObject({ start: '0x0', end: '0x1000', pa: '0x1000', page_size: 4096, count: 1 });
  });

  it('a PML4 all of whose 512 entries point to itself: the walk of one 2 MiB range ends (1 + 1 + 1 + 512 slots); a hardware walk of any VA ends at level 1', async () => {
    const m = new RawMemory(0x10000);
    for (let i = 0; i < 512; i++) m.set(0x1000 + i * 8, 0x1003n);
    const dir = writeImage(x86Json(0x1000), m.bytes);
    const w = JSON.parse((await run('walk', dir, '--start', '0x7fffffe00000', '--end', '0x800000000000', '--json')).out);
    expect(w).toMatchObject({ entries: 515, leaves: 512, checksum: '0x200' });
    expect(translate(dir, 0xffff_ffff_ffff_f000n)).toMatchObject({ pa: 0x1000n, level: 1 });
  });

  it('self-referencing table (ARM64 L0[0] → its own table) ends at level 3: with AF = 0 an Access flag fault at level 3 (DFSC 0b001011 = 0x0b); with AF = 1 the page is the table itself', async () => {
    const b = 0x4000_0000;
    const noAf = writeImage(arm64Json(b + 0x1000, b + 0x5000), new RawMemory(0x10000, b).set(b + 0x1000, BigInt(b + 0x1003)).bytes);
    expect(faultOf(translate(noAf, 0x0n))).toEqual({ kind: 'access_flag', level: 3, code: 0x0b });
    // Bit 10 is IGNORED in a table descriptor (D8.3.1, no FEAT_HAFT) and AF in the level 3 page.
    const af = writeImage(arm64Json(b + 0x1000, b + 0x5000), new RawMemory(0x10000, b).set(b + 0x1000, BigInt(b + 0x1403)).bytes);
    expect(translate(af, 0x7n)).toMatchObject({ pa: BigInt(b + 0x1007), level: 3 });
    // TTBR0: 512 slots at each of 4 levels; TTBR1: its empty L0 table, 512 slots. pfn 0x40001.
    const w = JSON.parse((await run('walk', af, '--json')).out);
    expect(w).toMatchObject({ entries: 2560, leaves: 1, leaves_by_level: { '3': 1 }, checksum: '0x40001' });
  });
});

// ---- machine.json and memory.bin ------------------------------------------------------------------------

type Spoil = (dir: string) => void;
const editJson = (edit: (j: Record<string, any>) => void): Spoil => (dir) => {
  const p = join(dir, 'machine.json');
  const j = JSON.parse(readFileSync(p, 'utf8'));
  edit(j);
  writeFileSync(p, JSON.stringify(j));
};
const setJsonText = (text: string): Spoil => (dir) => writeFileSync(join(dir, 'machine.json'), text);

/** [case name, architecture, spoil, what the message must name] */
const BAD_INPUT: [string, 'x86_64' | 'arm64', Spoil, RegExp][] = [
  ['truncated memory.bin: ImageError naming memory.bin and the expected size', 'x86_64', (d) => truncateSync(join(d, 'memory.bin'), 5000), /memory\.bin: 5000 bytes; expected a non-zero multiple of 4096 \(whole frames: 4096 or 8192 — a truncated dump\?\)/],
  ['empty memory.bin', 'x86_64', (d) => truncateSync(join(d, 'memory.bin'), 0), /memory\.bin: 0 bytes; expected a non-zero multiple of 4096/],
  ['memory.bin cut before the root table: names registers.cr3, the table address and what memory.bin holds', 'x86_64', (d) => truncateSync(join(d, 'memory.bin'), 4096), /machine\.json registers\.cr3: root table at 0x1000 is outside memory \[0x0, 0x1000\) \(memory\.bin holds 4096 bytes from 0x0\)/],
  ['memory.bin is a folder', 'x86_64', (d) => { rmSync(join(d, 'memory.bin')); mkdirSync(join(d, 'memory.bin')); }, /memory\.bin: not a regular file/],
  ['memory.bin missing', 'x86_64', (d) => rmSync(join(d, 'memory.bin')), /memory\.bin: not found/],
  ['memory.bin larger than the host can allocate (a sparse 8 TiB file)', 'x86_64', (d) => truncateSync(join(d, 'memory.bin'), 2 ** 43), /memory\.bin: 8796093022208 bytes cannot be allocated as emulated memory on this host/],
  ['machine.json is a folder', 'x86_64', (d) => { rmSync(join(d, 'machine.json')); mkdirSync(join(d, 'machine.json')); }, /machine\.json: not a regular file/],
  ['machine.json is not JSON', 'x86_64', setJsonText('{"arch": "x86_64",'), /machine\.json: not valid JSON/],
  ['machine.json is a JSON array', 'x86_64', setJsonText('[1, 2]'), /machine\.json: expected a JSON object/],
  ['machine.json is null', 'x86_64', setJsonText('null'), /machine\.json: expected a JSON object/],
  ['machine.json cr3 as a number instead of a hex string: names registers.cr3', 'x86_64', editJson((j) => (j.registers.cr3 = 4096)), /machine\.json registers\.cr3: expected a hex string "0x…", got 4096 \(a JSON number; register values are hex strings, FORMATS\.md\)/],
  ['machine.json cr3 null', 'x86_64', editJson((j) => (j.registers.cr3 = null)), /machine\.json registers\.cr3: expected a hex string "0x…", got null/],
  ['machine.json cr4 as decimal text', 'x86_64', editJson((j) => (j.registers.cr4 = '32')), /machine\.json registers\.cr4: expected a hex string "0x…", got "32"/],
  ['machine.json register wider than 64 bits', 'x86_64', editJson((j) => (j.registers.efer = '0x10000000000000d00')), /machine\.json registers\.efer: 0x10000000000000d00 does not fit in 64 bits/],
  ['machine.json an extra register that is not a hex string', 'x86_64', editJson((j) => (j.registers.note = 'saved by hand')), /machine\.json registers\.note: expected a hex string/],
  ['machine.json registers as an array', 'x86_64', editJson((j) => (j.registers = ['0x1000'])), /machine\.json registers: expected an object of hex strings/],
  ['machine.json missing cr3', 'x86_64', editJson((j) => delete j.registers.cr3), /machine\.json registers\.cr3: missing/],
  ['machine.json missing ttbr1_el1 while TCR_EL1.EPD1 = 0', 'arm64', editJson((j) => delete j.registers.ttbr1_el1), /machine\.json registers\.ttbr1_el1: missing/],
  ['impossible registers: CR0.PG = 1 with CR0.PE = 0 (SDM §2.5)', 'x86_64', editJson((j) => (j.registers.cr0 = '0x80000000')), /machine\.json registers\.cr0: PG \(bit 31\) = 1 with PE \(bit 0\) = 0 is impossible/],
  ['impossible registers: CR4.PAE = 0 with paging on', 'x86_64', editJson((j) => (j.registers.cr4 = '0x0')), /machine\.json registers\.cr4: PAE \(bit 5\) must be 1/],
  ['impossible registers: PKRU wider than 32 bits', 'x86_64', editJson((j) => (j.registers.pkru = '0x100000000')), /machine\.json registers\.pkru: 0x100000000 is wider than 32 bits/],
  ['impossible registers: ARM64 T0SZ = 0 (a 64-bit VA)', 'arm64', editJson((j) => (j.registers.tcr_el1 = '0x580000000')), /machine\.json registers\.tcr_el1: 64-bit VA \(T0SZ 0\)/],
  ['impossible registers: ARM64 SCTLR_EL1.M = 0', 'arm64', editJson((j) => (j.registers.sctlr_el1 = '0x0')), /machine\.json registers\.sctlr_el1: M \(bit 0\) is 0/],
  ['arch of the wrong type', 'x86_64', editJson((j) => (j.arch = ['x86_64'])), /machine\.json arch: expected "x86_64" or "arm64", got \["x86_64"\]/],
  ['phys_base not 4 KiB aligned', 'arm64', editJson((j) => (j.phys_base = '0x40000800')), /machine\.json phys_base: 0x40000800 is not 4 KiB aligned/],
  ['phys_base above 2^52', 'x86_64', editJson((j) => (j.phys_base = '0xfffffffffffff000')), /machine\.json phys_base: 0xfffffffffffff000 is at or above 2\^52/],
  ['phys_base + memory.bin ending above 2^52', 'x86_64', editJson((j) => (j.phys_base = '0xffffffffff000')), /memory\.bin: 65536 bytes from phys_base 0xffffffffff000 end above 2\^52/],
  ['cpu as an array', 'x86_64', editJson((j) => (j.cpu = [46])), /machine\.json cpu: expected an object/],
  ['cpu.maxphyaddr out of range', 'x86_64', editJson((j) => (j.cpu = { maxphyaddr: 60 })), /machine\.json cpu\.maxphyaddr: expected an integer 36 … 52, got 60/],
  ['cpu.maxphyaddr as a string', 'x86_64', editJson((j) => (j.cpu = { maxphyaddr: '46' })), /machine\.json cpu\.maxphyaddr: expected an integer 36 … 52, got "46"/],
];

function imageFor(arch: 'x86_64' | 'arm64'): string {
  return arch === 'x86_64' ? writeImage(x86Json(0x1000), x86Small().bytes) : writeImage(arm64Json(0x4000_1000, 0x4000_5000), arm64Small().bytes);
}

describe('machine.json and memory.bin: an ImageError naming the file and field, through the library and every image command', () => {
  it.each(BAD_INPUT)('%s', async (_name, arch, spoil, message) => {
    const dir = imageFor(arch);
    spoil(dir);
    let thrown: unknown;
    try {
      loadImage(dir);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ImageError);
    expect((thrown as Error).message).toMatch(message);
    const trace = traceFile(tempDir(), ['0 r']);
    for (const args of [['walk', dir], ['dump', dir], ['dump', dir, '--json'], ['translate', dir, '0x0'], ['trace', dir, trace]]) {
      expectCleanError(await run(...args), message);
    }
  });

  it('a well-formed image loads and every command exits 0 (the control for the cases above)', async () => {
    for (const arch of ['x86_64', 'arm64'] as const) {
      const dir = imageFor(arch);
      expect(() => loadImage(dir)).not.toThrow();
      for (const args of [['walk', dir], ['dump', dir], ['translate', dir, '0x0'], ['trace', dir, traceFile(dir, ['0 r'])]]) {
        expect((await run(...args)).code).toBe(0);
      }
    }
  });

  it('phys_base as a JSON number is accepted (FORMATS.md binds only numbers that can exceed 2^53, and registers, to hex strings)', () => {
    const dir = writeImage({ ...arm64Json(0x4000_1000, 0x4000_5000), phys_base: 0x4000_0000 }, arm64Small().bytes);
    expect(loadImage(dir).machine.mem.physBase).toBe(0x4000_0000);
  });

  it('an ELF core whose PT_LOAD segments span more than the host can allocate: an ImageError naming the core and the range', () => {
    // ELF64 header + 2 program headers by hand (gABI layout): PT_LOAD at p_paddr 0 and 2^51, 4 KiB each.
    const b = new Uint8Array(64 + 2 * 56 + 8192);
    const v = new DataView(b.buffer);
    b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    v.setUint16(16, 4, true); // ET_CORE
    v.setUint16(18, 62, true); // EM_X86_64
    v.setBigUint64(32, 64n, true); // e_phoff
    v.setUint16(54, 56, true);
    v.setUint16(56, 2, true);
    for (const [i, paddr] of [[0, 0n], [1, 2n ** 51n]] as const) {
      const o = 64 + i * 56;
      v.setUint32(o, 1, true);
      v.setBigUint64(o + 8, BigInt(176 + i * 4096), true);
      v.setBigUint64(o + 24, paddr, true);
      v.setBigUint64(o + 32, 4096n, true);
      v.setBigUint64(o + 40, 4096n, true);
    }
    const p = join(tempDir(), 'huge.core');
    writeFileSync(p, b);
    expect(() => loadImage(p, { registers: { cr0: 0x8000_0001n, cr3: 0x1000n, cr4: 0x20n, efer: 0xd00n } })).toThrow(
      /huge\.core: physical memory \[0x0, 0x8000000001000\) cannot be allocated/,
    );
  });
});

// ---- saving: no half-written image ------------------------------------------------------------------------

describe('saving: saveImage and mmulab export never leave a half-written folder', () => {
  const small = () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 64 * 1024 });
    return { m, regs: registersFor(m, m.initMm.pgd, m.initMm.pgd) };
  };
  const listing = (dir: string) => readdirSync(dir).sort();

  it('a write that fails in a new folder removes the folder (the memory buffer fails to read: a simulated ENOSPC)', () => {
    const dir = join(tempDir(), 'new', 'image');
    const { m, regs } = small();
    const failing = Object.create(m) as Machine;
    Object.defineProperty(failing, 'mem', {
      value: {
        physBase: 0,
        size: 8192,
        get buffer(): SharedArrayBuffer {
          throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        },
      },
    });
    expect(() => saveImage(dir, failing, regs)).toThrow(new RegExp(`${dir}: the image could not be written while writing memory.bin \\(ENOSPC\\)`));
    expect(existsSync(join(dir, '..'))).toBe(false); // "new" was created by this call: gone too
  });

  it('a write that fails over an existing image (the machine.json temporary cannot be created) leaves the old image intact and no temporaries', () => {
    const dir = imageFor('x86_64');
    const before = [readFileSync(join(dir, 'machine.json')), readFileSync(join(dir, 'memory.bin'))];
    mkdirSync(join(dir, `.machine.json.${process.pid}.tmp`)); // in the way of the temporary
    const { m, regs } = small();
    expect(() => saveImage(dir, m, regs)).toThrow(ImageError);
    expect(() => saveImage(dir, m, regs)).toThrow(/while writing machine\.json \(EISDIR\)/);
    expect(listing(dir)).toEqual([`.machine.json.${process.pid}.tmp`, 'machine.json', 'memory.bin']);
    expect(readFileSync(join(dir, 'machine.json'))).toEqual(before[0]);
    expect(readFileSync(join(dir, 'memory.bin'))).toEqual(before[1]);
  });

  it('a rename that fails (memory.bin is a non-empty folder) puts the old machine.json back: the folder is as before', () => {
    const dir = imageFor('x86_64');
    const json = readFileSync(join(dir, 'machine.json'));
    rmSync(join(dir, 'memory.bin'));
    mkdirSync(join(dir, 'memory.bin'));
    writeFileSync(join(dir, 'memory.bin', 'x'), 'x');
    const { m, regs } = small();
    expect(() => saveImage(dir, m, regs)).toThrow(/while replacing the files/);
    expect(listing(dir)).toEqual(['machine.json', 'memory.bin']);
    expect(readFileSync(join(dir, 'machine.json'))).toEqual(json);
    expect(statSync(join(dir, 'memory.bin')).isDirectory()).toBe(true);
  });

  it('a successful save over an existing image replaces both files and leaves nothing else', () => {
    const dir = imageFor('arm64');
    const { m, regs } = small();
    saveImage(dir, m, regs);
    expect(listing(dir)).toEqual(['machine.json', 'memory.bin']);
    expect(loadImage(dir).machine.geo.name).toBe('x86_64-4level');
  });

  it('mmulab export --out under a regular file: exit 1 naming the folder, nothing created; --out onto a folder that cannot take the files: the old image stays', async () => {
    const base = tempDir();
    writeFileSync(join(base, 'file'), '');
    const scenario = join(base, 's.json');
    writeFileSync(
      scenario,
      JSON.stringify({
        format: 'mmulab-scenario/1',
        machine: { geometry: 'x86_64-4level', memory: '4M' },
        processes: [{ name: 'p', ops: [{ op: 'mmap', as: 'a', length: '4K', prot: ['read', 'write'], flags: ['private', 'anonymous'] }] }],
      }),
    );
    const under = join(base, 'file', 'img');
    expectCleanError(await run('export', scenario, '--out', under), new RegExp(`${under}: cannot create the image folder \\(ENOTDIR\\)`));
    expect(listing(base)).toEqual(['file', 's.json']);

    const dir = imageFor('x86_64');
    const json = readFileSync(join(dir, 'machine.json'));
    rmSync(join(dir, 'memory.bin'));
    mkdirSync(join(dir, 'memory.bin'));
    writeFileSync(join(dir, 'memory.bin', 'x'), 'x');
    expectCleanError(await run('export', scenario, '--out', dir), /the image could not be written while replacing the files/);
    expect(listing(dir)).toEqual(['machine.json', 'memory.bin']);
    expect(readFileSync(join(dir, 'machine.json'))).toEqual(json);
  });
});

// Registers the tests above write by hand, checked once against the SDM bit positions they claim.
it('fixtures: CR0 0x80000001 is PG (bit 31) | PE (bit 0); CR4 0x20 is PAE (bit 5); EFER 0xd00 is LME (8) | LMA (10) | NXE (11)', () => {
  expect(BigInt(X86_REGS.cr0)).toBe((1n << 31n) | 1n);
  expect(BigInt(X86_REGS.cr4)).toBe(1n << 5n);
  expect(BigInt(X86_REGS.efer)).toBe((1n << 8n) | (1n << 10n) | (1n << 11n));
});
