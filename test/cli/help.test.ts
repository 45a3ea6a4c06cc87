/**
 * The command-line contract of DESIGN.md / README, for EVERY command in COMMANDS (a new command is
 * covered as soon as it is listed): --help with examples, exit codes 0 ok / 1 bad input / 2 usage,
 * and no stack trace for a user error.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/main';
import { parseScenarioText, runScenario } from '../../src/index';
import { tempDir } from '../mm/image-fixtures';
import { run, type Run } from './run';

/** A V8 stack frame line ("    at fn (file:1:2)"). */
const STACK_LINE = /^\s+at\s.*(:\d+:\d+\)?|<anonymous>\)?)$/m;

function noStack(r: Run): void {
  expect(r.err).not.toMatch(STACK_LINE);
  expect(r.out).not.toMatch(STACK_LINE);
}

/**
 * The positionals a command's synopsis requires: the upper-case placeholders of its "Usage:" line
 * that are neither inside [ ] nor an option's argument (IMAGE, VA..., PATH..., SCENARIO, VALUE).
 */
function requiredPositionals(usage: string): string[] {
  const synopsis = usage.split('\n')[0]!.replace(/\[[^\]]*\]/g, ' ');
  const words = synopsis.split(/\s+/).slice(3); // "Usage: mmulab NAME"
  return words.filter((w, i) => /^[A-Z][A-Z_]*(\.\.\.)?$/.test(w) && !(words[i - 1] ?? '').startsWith('-'));
}

// ---- bad input, one case per command ---------------------------------------------------------------

const dirs: string[] = [];
function scratch(): string {
  const d = tempDir();
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** An image folder whose machine.json names an architecture that does not exist. */
function badImage(): string {
  const d = scratch();
  writeFileSync(join(d, 'machine.json'), JSON.stringify({ format: 'mmulab-image/1', arch: 'riscv', registers: {} }));
  writeFileSync(join(d, 'memory.bin'), new Uint8Array(4096));
  return d;
}

function file(name: string, text: string): string {
  const p = join(scratch(), name);
  writeFileSync(p, text);
  return p;
}

const badScenario = () =>
  file('bad-scenario.json', JSON.stringify({ format: 'mmulab-scenario/1', machine: { geometry: 'riscv' }, processes: [{ name: 'a', ops: [] }] }));

interface BadInput {
  argv: () => string[];
  /** What the message must name (the field, the file, the line). */
  names: RegExp;
}

/**
 * For every command: arguments that are well-formed but whose input is bad, and what the message
 * names. null: the command reads no input besides its arguments (every bad argument is a usage
 * error, exit 2) — said here explicitly, so that a new command must state its case.
 */
const BAD_INPUT: Record<string, BadInput | null> = {
  demo: null, // built-in defaults only
  decode: null, // VALUE and the options are arguments: malformed ones exit 2
  walk: { argv: () => ['walk', badImage()], names: /machine\.json arch: expected "x86_64" or "arm64", got "riscv"/ },
  dump: { argv: () => ['dump', badImage()], names: /machine\.json arch/ },
  map: { argv: () => ['map', badImage(), '--json'], names: /machine\.json arch/ },
  translate: { argv: () => ['translate', badImage(), '0x1000'], names: /machine\.json arch/ },
  explain: { argv: () => ['explain', badImage(), '0x1000'], names: /machine\.json arch/ },
  trace: { argv: () => ['trace', badImage(), file('t.trace', '0x1000 r\n0x2000 q\n')], names: /t\.trace line 2/ },
  conformance: {
    argv: () => ['conformance', 'pagewalk', file('s.json', JSON.stringify({ format: 'mmulab-pagewalk-scenario/1' }))],
    names: /s\.json.*\bname\b.*missing/,
  },
  run: { argv: () => ['run', badScenario()], names: /bad-scenario\.json: machine\.geometry: expected one of/ },
  export: { argv: () => ['export', badScenario(), '--out', join(scratch(), 'img')], names: /bad-scenario\.json: machine\.geometry/ },
};

describe('every command (COMMANDS)', () => {
  it('each one has a bad-input case (or says it reads no input)', () => {
    expect(COMMANDS.map((c) => c.name).filter((n) => !(n in BAD_INPUT))).toEqual([]);
  });

  for (const cmd of COMMANDS) {
    describe(`mmulab ${cmd.name}`, () => {
      it('--help and -h exit 0 with "Usage: mmulab NAME", the usage the command declares, and examples of itself', async () => {
        const r = await run(cmd.name, '--help');
        expect(r.code).toBe(0);
        expect(r.err).toBe('');
        expect(r.out.startsWith(`Usage: mmulab ${cmd.name}`)).toBe(true);
        expect(r.out).toBe(cmd.usage);
        const ex = r.out.split('\n').findIndex((l) => /^Examples?:$/.test(l));
        expect(ex, 'an "Example:" or "Examples:" section').toBeGreaterThan(0);
        const examples = r.out.split('\n').slice(ex + 1).filter((l) => /^\s+mmulab /.test(l));
        expect(examples.length).toBeGreaterThan(0);
        expect(examples.some((l) => l.trim().startsWith(`mmulab ${cmd.name}`))).toBe(true);
        expect((await run(cmd.name, '-h')).out).toBe(r.out);
        // The main help lists it with its summary.
        expect((await run('--help')).out).toContain(`  ${cmd.name}`);
      });

      it('an unknown flag exits 2 with the usage and no stack trace', async () => {
        const r = await run(cmd.name, '--no-such-flag');
        expect(r.code).toBe(2);
        expect(r.out).toBe('');
        expect(r.err).toMatch(new RegExp(`^mmulab ${cmd.name}: Unknown option '--no-such-flag'`));
        expect(r.err).toContain(`\n\nUsage: mmulab ${cmd.name}`);
        noStack(r);
      });

      it('a wrong positional count exits 2 with the usage and no stack trace', async () => {
        // Twelve junk arguments: more than any synopsis takes, and not an address, a suite or a file.
        const many = await run(cmd.name, ...Array<string>(12).fill('zz'));
        expect(many.code).toBe(2);
        expect(many.err).toContain(`Usage: mmulab ${cmd.name}`);
        noStack(many);
        if (requiredPositionals(cmd.usage).length > 0) {
          const none = await run(cmd.name);
          expect(none.code).toBe(2);
          expect(none.err).toContain(`Usage: mmulab ${cmd.name}`);
          noStack(none);
        }
      });

      const bad = BAD_INPUT[cmd.name];
      if (bad) {
        it('bad input exits 1 with a message naming the field or file, and no stack trace', async () => {
          const r = await run(...bad.argv());
          expect(r.code).toBe(1);
          expect(r.out + '\n' + r.err).toMatch(bad.names);
          expect(r.err).not.toContain('Usage:');
          noStack(r);
        });
      }
    });
  }
});

describe('the synopsis reader of this test', () => {
  it('finds the positionals a usage line requires', () => {
    expect(requiredPositionals('Usage: mmulab demo [--part x86_64|arm64|geometry]')).toEqual([]);
    expect(requiredPositionals('Usage: mmulab decode --arch x86_64|arm64 --level L VALUE [options]')).toEqual(['VALUE']);
    expect(requiredPositionals('Usage: mmulab export SCENARIO --out DIR [--process NAME]')).toEqual(['SCENARIO']);
    expect(requiredPositionals('Usage: mmulab translate IMAGE VA... [--access read|write|exec] [--reg NAME=VALUE]...')).toEqual(['IMAGE', 'VA...']);
  });
});

describe('mmulab itself', () => {
  it('no command: the command list, exit 2; --help: exit 0; an unknown command: exit 2 naming it', async () => {
    const none = await run();
    expect(none.code).toBe(2);
    expect(none.out).toContain('Usage: mmulab COMMAND');
    expect((await run('--help')).code).toBe(0);
    const unknown = await run('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/^mmulab: unknown command 'frobnicate'/);
  });

  it('a folder given where a file is expected, and a file where a folder is, exit 1 without a stack trace', async () => {
    const d = scratch();
    mkdirSync(join(d, 'sub'));
    for (const argv of [['run', join(d, 'sub')], ['walk', file('plain.txt', 'not an image')], ['trace', badImage(), join(d, 'sub')]]) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(1);
      noStack(r);
    }
  });
});

/** Commands whose output is not data (a tour for people): everything else takes --json. */
const NOT_DATA = new Set(['demo']);

describe('--json wherever the output is data (FORMATS.md)', () => {
  for (const cmd of COMMANDS.filter((c) => !NOT_DATA.has(c.name))) {
    it(`${cmd.name}: documented in its usage and accepted by its parser`, async () => {
      expect(cmd.usage).toMatch(/^\s+--json\s/m);
      // An unknown option would be rejected before anything else; --json is not.
      const r = await run(cmd.name, '--json', '--help');
      expect(r.code).toBe(0);
    });
  }

  it('export --json: what was written, as one object (a 4M ARM64 machine at 0x40000000, one process with one VMA)', async () => {
    const out = join(scratch(), 'img');
    const sc = file(
      'small.json',
      JSON.stringify({
        format: 'mmulab-scenario/1',
        machine: { geometry: 'arm64-4k-48', memory: '4M' },
        processes: [{ name: 'p', ops: [{ op: 'mmap', as: 'a', length: '8K', prot: ['read', 'write'], flags: ['private', 'anonymous'] }, { op: 'touch', at: 'a', access: 'write' }] }],
      }),
    );
    const r = await run('export', sc, '--out', out, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    expect(j).toMatchObject({ out, arch: 'arm64', geometry: 'arm64-4k-48', memory_size: 4194304, phys_base: '0x40000000', process: 'p' });
    expect(j.processes).toEqual([{ name: 'p', pgd: j.root_table, vmas: 1 }]);
    // The root table is the one TTBR0_EL1 holds in the image (BADDR, bits 47:1, ASID 0).
    const regs = JSON.parse(readFileSync(join(out, 'machine.json'), 'utf8')).registers;
    expect(BigInt(regs.ttbr0_el1) & 0x0000_ffff_ffff_fffen).toBe(BigInt(j.root_table as string));
  });
});

describe('progress (src/cli/progress.ts) for run, export and conformance', () => {
  it('runScenario reports each step done, in order, to its onStep callback', () => {
    const sc = parseScenarioText(
      JSON.stringify({
        format: 'mmulab-scenario/1',
        machine: { geometry: 'x86_64-4level', memory: '4M' },
        processes: [{ name: 'p', ops: [{ op: 'mmap', as: 'a', length: '8K', prot: ['read'], flags: ['private', 'anonymous'] }, { op: 'touch', at: 'a' }, { op: 'exit' }] }],
      }),
    );
    const seen: [number, number][] = [];
    runScenario(sc, (done, total) => seen.push([done, total]));
    expect(seen).toEqual([
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
  });

  it('off a terminal the bars print nothing: stderr stays empty on success', async () => {
    const one = 'test/fixtures/pagewalk-conformance/scenarios/' + readdirSync('test/fixtures/pagewalk-conformance/scenarios').filter((f) => f.endsWith('.json'))[0];
    for (const argv of [['run', 'examples/fork-cow.json', '--quiet'], ['conformance', 'pagewalk', one]]) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.err).toBe('');
    }
  });
});
