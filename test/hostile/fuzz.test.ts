/**
 * Loader fuzzing (issue 8, item 2): random and mutated machine.json and memory.bin, mutated ELF
 * cores and mutated scenario texts, seeded so a failure reproduces, bounded in time.
 *
 * The property, for every input: loading gives a LoadedImage or an ImageError whose message names a
 * file, a field or an address; over a loaded image the counting walk and the page-table dump give a
 * result or a PhysAddrError (BadTablePointerError) naming the address; the hardware walk of any VA
 * gives a translation or a fault value and never throws; the CLI commands exit 0 or 1 (never an
 * internal error, never a stack trace). Nothing hangs: a table that points to itself ends where the
 * levels end, and each case is timed.
 *
 * test/mm/scenario.test.ts already fuzzes the scenario *schema* with 10,000 JSON values and
 * mutations; the scenario part here fuzzes the *text* (truncation, byte edits) through
 * loadScenarioFile and `mmulab run`, which that file does not reach.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ImageError,
  PhysAddrError,
  WalkResult,
  countWalk,
  createCpu,
  forEachPtdumpMapping,
  imageCpuParams,
  loadImage,
  ptdumpOptionsFor,
  type LoadedImage,
} from '../../src/index';
import { InputError } from '../../src/cli/errors';
import { loadScenarioFile } from '../../src/cli/commands/run';
import { run } from '../cli/run';
import { arm64Json, arm64Small, fastTempDir, removeTempDirs, x86Json, x86Small } from './fixtures';
import { mulberry32 as prng } from '../support/prng';

afterAll(removeTempDirs);

type Rng = () => number;
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: Rng, n: number) => Math.floor(r() * n);
const u64 = (r: Rng) => (BigInt(int(r, 2 ** 32)) << 32n) | BigInt(int(r, 2 ** 32));
const hex = (v: bigint | number) => '0x' + v.toString(16);

const WORDS = ['x86_64', 'arm64', 'mmulab-image/1', '0x', '0x1000', '0xffffffffffffffffff', '', '__proto__', 'constructor', 'cr3', 'NaN', '1e400', '-0x1'];
function randomValue(r: Rng, depth = 0): unknown {
  switch (int(r, depth > 2 ? 6 : 8)) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return pick(r, [0, -1, 4096, 2 ** 52, 2 ** 64, 0.5, 46, 52, 1e308]);
    case 3: return pick(r, WORDS);
    case 4: return hex(u64(r));
    case 5: return hex(BigInt(int(r, 2 ** 20)) << 12n);
    case 6: return Array.from({ length: int(r, 3) }, () => randomValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = int(r, 4); i > 0; i--) o[pick(r, WORDS)] = randomValue(r, depth + 1);
      return o;
    }
  }
}

/** Flip 1–3 random bits of a hex string register (explores regimes: LA57, granules, TxSZ, EPDn…). */
function flipBits(v: unknown, r: Rng): unknown {
  if (typeof v !== 'string' || !/^0x[0-9a-f]+$/i.test(v)) return hex(u64(r));
  let b = BigInt(v);
  for (let n = 1 + int(r, 3); n > 0; n--) b ^= 1n << BigInt(int(r, 64));
  return hex(b);
}

function mutateJson(json: Record<string, any>, r: Rng): unknown {
  const j = structuredClone(json);
  for (let n = 1 + int(r, 3); n > 0; n--) {
    const regs = j.registers;
    switch (int(r, 8)) {
      case 0:
      case 1:
      case 2: // a register's bits
        if (regs && typeof regs === 'object') {
          const k = pick(r, Object.keys(regs).concat('pkru'));
          regs[k] = flipBits(regs[k], r);
        }
        break;
      case 3: // a register retyped or removed
        if (regs && typeof regs === 'object') {
          const k = pick(r, Object.keys(regs));
          if (r() < 0.3) delete regs[k];
          else regs[k] = randomValue(r, 2);
        }
        break;
      case 4: // a top-level field retyped or removed
        {
          const k = pick(r, ['format', 'arch', 'phys_base', 'registers', 'cpu']);
          if (r() < 0.3) delete j[k];
          else j[k] = randomValue(r, 1);
        }
        break;
      case 5:
        j.cpu = pick(r, [{ maxphyaddr: pick(r, [36, 39, 46, 52, 35, 53, '46']) }, { id_aa64mmfr0_el1: hex(u64(r)) }, { id_aa64mmfr1_el1: randomValue(r, 2) }, [], 'cpu']);
        break;
      case 6:
        j.phys_base = pick(r, ['0x0', '0x40000000', '0x1000', hex(BigInt(int(r, 2 ** 40)) << 12n), '0xffffffffff000', hex(u64(r)), 4096]);
        break;
      default:
        j[pick(r, WORDS)] = randomValue(r, 1);
    }
  }
  return j;
}

/** Text-level damage: truncation, a byte changed, a byte inserted. */
function mutateText(text: string, r: Rng): string {
  const at = int(r, text.length + 1);
  switch (int(r, 3)) {
    case 0: return text.slice(0, at);
    case 1: return text.slice(0, at) + String.fromCharCode(int(r, 128)) + text.slice(at + 1);
    default: return text.slice(0, at) + pick(r, ['{', '}', '"', ',', '0', '\u0000', '\\']) + text.slice(at);
  }
}

/** Memory damage: bit flips, random descriptors, pointers to other frames (loops, shared tables), size changes. */
function mutateMemory(mem: Uint8Array, physBase: number, r: Rng): Uint8Array {
  let b: Uint8Array = mem.slice();
  const v = () => new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let n = 1 + int(r, 4); n > 0; n--) {
    const frames = Math.floor(b.length / 4096);
    if (frames === 0) break;
    // Mostly the first eight frames: that is where both base images keep their tables.
    const at = (int(r, Math.min(frames, 8)) * 4096 + int(r, 512) * 8) % (frames * 4096);
    switch (int(r, 7)) {
      case 0:
        b[at + int(r, 8)]! ^= 1 << int(r, 8);
        break;
      case 1:
        v().setBigUint64(at, u64(r), true);
        break;
      case 2:
      case 3: // a pointer to a frame in memory, with table / leaf / odd flags: loops and DAGs
        v().setBigUint64(at, BigInt(physBase + int(r, frames) * 4096) | pick(r, [0x3n, 0x67n, 0x63n, 0xe7n, 0x403n, 0x401n, 0x1n, BigInt(int(r, 4096))]), true);
        break;
      case 4:
        v().setBigUint64(at, 0xffff_ffff_ffff_ffffn, true);
        break;
      case 5: // truncated (not always whole frames) or grown
        if (r() < 0.5) b = b.slice(0, int(r, b.length + 1));
        else {
          const g = new Uint8Array(b.length + 4096 * (1 + int(r, 3)));
          g.set(b);
          b = g;
        }
        break;
      default: // a whole random frame
        for (let i = 0; i < 4096 && at - (at % 4096) + i < b.length; i++) b[at - (at % 4096) + i] = int(r, 256);
    }
  }
  return b;
}

const NAMES_SOMETHING = /machine\.json|memory\.bin|registers\.|phys_base|\.core|0x[0-9a-f]+/;

/** Everything one image goes through in the library; returns what happened, or throws on a property violation. */
function exercise(img: LoadedImage): string {
  const outcomes: string[] = [];
  for (const step of ['walk', 'dump'] as const) {
    try {
      if (step === 'walk') countWalk(img.machine, img.roots);
      else forEachPtdumpMapping(img.machine, img.roots, () => undefined, ptdumpOptionsFor(img));
      outcomes.push('ok');
    } catch (e) {
      if (!(e instanceof PhysAddrError) || !/0x[0-9a-f]+/.test(e.message)) throw e;
      outcomes.push('bad-table');
    }
  }
  // The hardware walk: any register state the loader accepts must make a CPU, and every VA a value.
  const p = imageCpuParams(img);
  const cpu = createCpu(p.arch, img.machine.mem, p.registers, { ...p.options, tlb: 'none' });
  const out = new WalkResult();
  for (const [hi, lo] of [[0, 0], [0, 0x1000], [0, 0x20_0000], [0x80, 0], [0xffff_ffff, 0xc000_0000], [0xffff_0000, 0], [0x8000_0000, 0x1234]] as const) {
    for (const access of ['read', 'write', 'exec'] as const) {
      cpu.access(hi, lo, access, access === 'write', out);
      // A translation has a page; a fault has a 6-bit code (#PF error code bits 5:0, or DFSC) and a
      // level the hardware numbers (x86-64 5…1, ARM64 -1…3).
      const levelOk = p.arch === 'x86_64' ? out.level >= 1 && out.level <= 5 : out.level >= -1 && out.level <= 3;
      if (out.fault === null ? !(out.pageSize > 0 && Number.isFinite(out.pa) && levelOk) : !(Number.isInteger(out.code) && out.code >= 0 && out.code < 64 && levelOk)) {
        throw new Error(`walk of 0x${hi.toString(16)}_${lo.toString(16)} ${access}: inconsistent result ${JSON.stringify({ fault: out.fault, code: out.code, pa: out.pa, size: out.pageSize })}`);
      }
      outcomes.push(out.fault ?? 'ok');
    }
  }
  return outcomes.join(',');
}

function loadOrError(path: string): LoadedImage | 'error' {
  try {
    return loadImage(path, { allowBigEndian: true });
  } catch (e) {
    if (!(e instanceof ImageError)) throw e;
    expect(e.message).toMatch(NAMES_SOMETHING);
    return 'error';
  }
}

async function cliClean(args: string[]): Promise<number> {
  const r = await run(...args); // an internal error would reject here
  expect([0, 1], `${args.join(' ')} → ${r.code}: ${r.err}`).toContain(r.code);
  if (r.code === 1) {
    expect(r.err).toMatch(NAMES_SOMETHING);
    expect(r.err).not.toMatch(/\n\s+at /);
  }
  return r.code;
}

describe('image loader fuzz: random and mutated machine.json and memory.bin (seeded, bounded)', () => {
  const bases = [
    { json: x86Json(0x1000), mem: x86Small().bytes, physBase: 0 },
    { json: arm64Json(0x4000_1000, 0x4000_5000), mem: arm64Small().bytes, physBase: 0x4000_0000 },
  ];

  it('3000 cases (seed 11): a loaded image, or an ImageError naming what is wrong; walks, dump and translate never throw anything else; every 10th case through the CLI', async () => {
    const r = prng(11);
    const dir = fastTempDir();
    const traceFile = join(dir, 'trace.txt');
    writeFileSync(traceFile, ['0 r', '1000 w u', '200000 x', '8000000000 r', 'ffffffffc0000000 r', 'ffff000000000000 w', '8000000000001234 r'].join('\n'));
    const seen = { loaded: 0, error: 0, badTable: 0, faults: 0, cli: 0 };
    const t0 = performance.now();
    for (let i = 0; i < 3000; i++) {
      const base = bases[i % 2]!;
      // Three kinds of input: mutated JSON + mutated memory, JSON text damage, and fully random.
      const kind = i % 10 === 9 ? 'random' : i % 10 === 8 ? 'text' : 'mutated';
      let jsonText: string;
      let mem: Uint8Array;
      if (kind === 'random') {
        jsonText = JSON.stringify(r() < 0.5 ? randomValue(r) : { ...base.json, registers: randomValue(r, 1) });
        mem = Uint8Array.from({ length: 4096 * (1 + int(r, 4)) }, () => int(r, 256));
      } else if (kind === 'text') {
        jsonText = mutateText(JSON.stringify(base.json), r);
        mem = base.mem;
      } else {
        jsonText = JSON.stringify(r() < 0.8 ? mutateJson(base.json, r) : base.json);
        mem = mutateMemory(base.mem, base.physBase, r);
      }
      writeFileSync(join(dir, 'machine.json'), jsonText);
      writeFileSync(join(dir, 'memory.bin'), mem);
      const c0 = performance.now();
      try {
        const img = loadOrError(dir);
        if (img === 'error') seen.error++;
        else {
          seen.loaded++;
          const o = exercise(img);
          if (o.includes('bad-table')) seen.badTable++;
          if (/reserved|external_abort|translation|not_present/.test(o)) seen.faults++;
        }
        if (i % 10 === 0) {
          seen.cli++;
          for (const args of [['walk', dir, '--json'], ['dump', dir, '--json'], ['translate', dir, '0x0', '0x8000000000', '0xffffffffc0000000', '--json'], ['trace', dir, traceFile, '--json']]) await cliClean(args);
        }
      } catch (e) {
        throw new Error(`case ${i} (seed 11, ${kind}): ${String((e as Error).stack)}\nmachine.json: ${jsonText}`);
      }
      // A hang shows as one case taking long: each is a few small files and walks of at most 16 frames.
      expect(performance.now() - c0, `case ${i} took too long`).toBeLessThan(2000);
    }
    // The corpus reaches every outcome (a fuzz that only ever errors out tests nothing).
    expect(seen.loaded).toBeGreaterThan(600);
    expect(seen.error).toBeGreaterThan(600);
    expect(seen.badTable).toBeGreaterThan(50);
    expect(seen.faults).toBeGreaterThan(300);
    expect(performance.now() - t0).toBeLessThan(20_000);
  }, 60_000);
});

// ---- ELF cores ------------------------------------------------------------------------------------

/**
 * A small x86-64 ELF core by hand (ELF gABI layout, QEMUCPUState of target/i386/arch_dump.c): one
 * PT_NOTE with a "QEMU" note (version 1, 440 bytes, CR0 @392, CR3 @416, CR4 @424), one PT_LOAD of
 * the 64 KiB x86Small memory at p_paddr 0.
 */
function elfCore(): Uint8Array {
  const mem = x86Small().bytes;
  const desc = new Uint8Array(440);
  const d = new DataView(desc.buffer);
  d.setUint32(0, 1, true);
  d.setUint32(4, 440, true);
  d.setBigUint64(392, 0x8000_0001n, true);
  d.setBigUint64(416, 0x1000n, true);
  d.setBigUint64(424, 0x20n, true);
  const note = new Uint8Array(12 + 8 + 440);
  const n = new DataView(note.buffer);
  n.setUint32(0, 5, true); // "QEMU\0"
  n.setUint32(4, 440, true);
  note.set([0x51, 0x45, 0x4d, 0x55], 12);
  note.set(desc, 20);
  const phoff = 64;
  const noteOff = phoff + 2 * 56;
  const loadOff = noteOff + note.length;
  const b = new Uint8Array(loadOff + mem.length);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, 4, true); // ET_CORE
  v.setUint16(18, 62, true); // EM_X86_64
  v.setBigUint64(32, BigInt(phoff), true);
  v.setUint16(54, 56, true);
  v.setUint16(56, 2, true);
  v.setUint32(64, 4, true); // PT_NOTE
  v.setBigUint64(64 + 8, BigInt(noteOff), true);
  v.setBigUint64(64 + 32, BigInt(note.length), true);
  v.setUint32(120, 1, true); // PT_LOAD
  v.setBigUint64(120 + 8, BigInt(loadOff), true);
  v.setBigUint64(120 + 32, BigInt(mem.length), true);
  v.setBigUint64(120 + 40, BigInt(mem.length), true);
  b.set(note, noteOff);
  b.set(mem, loadOff);
  return b;
}

describe('ELF core fuzz: mutated headers, program headers and notes (seeded)', () => {
  it('600 cores (seed 5): a loaded image or an ImageError naming the core; loaded ones walk and translate without throwing', () => {
    const r = prng(5);
    const good = elfCore();
    const dir = fastTempDir();
    const path = join(dir, 'guest.core');
    let loaded = 0;
    let errors = 0;
    for (let i = 0; i < 600; i++) {
      const b = good.slice();
      const v = new DataView(b.buffer);
      for (let n = 1 + int(r, 3); n > 0; n--) {
        // Header fields and the note are where a core's structure lives: 64 + 112 + 460 bytes.
        const at = int(r, 64 + 112 + 460);
        switch (int(r, 4)) {
          case 0:
            b[at]! ^= 1 << int(r, 8);
            break;
          case 1:
            b[at] = int(r, 256);
            break;
          case 2: // a 64-bit field set to an extreme
            if (at + 8 <= b.length) v.setBigUint64(at - (at % 8), pick(r, [0n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 52n, BigInt(b.length), u64(r)]), true);
            break;
          default: // a 16-bit count set to an extreme (e_phnum at 56 is one of them)
            v.setUint16(at - (at % 2), pick(r, [0, 1, 0xffff, int(r, 65536)]), true);
        }
      }
      const bytes = r() < 0.1 ? b.slice(0, int(r, b.length)) : b;
      writeFileSync(path, bytes);
      try {
        const img = loadOrError(path);
        if (img === 'error') errors++;
        else {
          loaded++;
          exercise(img);
        }
      } catch (e) {
        throw new Error(`core ${i} (seed 5): ${String((e as Error).stack)}`);
      }
    }
    expect(loaded).toBeGreaterThan(100);
    expect(errors).toBeGreaterThan(100);
  });
});

// ---- scenario texts ---------------------------------------------------------------------------------

describe('scenario text fuzz: damaged example files through loadScenarioFile and mmulab run', () => {
  it('800 damaged texts (seed 3): a Scenario or an InputError "FILE: path: expected"; every 20th through `mmulab run`, exit 0 or 1', async () => {
    const r = prng(3);
    const examples = join(__dirname, '../../examples');
    const texts = readdirSync(examples)
      .filter((f) => f.endsWith('.json'))
      .map((f) => readFileSync(join(examples, f), 'utf8'));
    const dir = fastTempDir();
    const file = join(dir, 'scenario.json');
    const seen = { ok: 0, error: 0 };
    for (let i = 0; i < 800; i++) {
      let t = texts[i % texts.length]!;
      for (let n = 1 + int(r, 2); n > 0; n--) t = mutateText(t, r);
      writeFileSync(file, t);
      try {
        loadScenarioFile(file);
        seen.ok++;
      } catch (e) {
        if (!(e instanceof InputError)) throw new Error(`text ${i} (seed 3): not an InputError: ${String((e as Error).stack)}`);
        // "FILE: path: what was expected", the path rooted at the file's top-level fields.
        expect(e.message.startsWith(`${file}: `)).toBe(true);
        expect(e.message.slice(file.length + 2)).toMatch(/^(scenario|format|description|machine|files|processes|steps)\b[^:]*: ./);
        seen.error++;
      }
      if (i % 20 === 0) {
        const res = await run('run', file, '--quiet');
        expect([0, 1]).toContain(res.code);
        expect(res.err).not.toMatch(/\n\s+at /);
      }
    }
    expect(seen.error).toBeGreaterThan(300);
    expect(seen.ok).toBeGreaterThan(20);
  }, 60_000);
});
