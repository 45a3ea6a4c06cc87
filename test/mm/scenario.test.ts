import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  MM_ANONPAGES,
  MM_SWAPENTS,
  ScenarioError,
  countPageTables,
  lookupEntry,
  parseScenario,
  parseScenarioText,
  runScenario,
  teardownCheck,
  userPa,
  type ScenarioRun,
} from '../../src/index';
import { mulberry32 as prng } from '../support/prng';

const EXAMPLES = join(__dirname, '../../examples');

/** A scenario of one process "p" running `ops`, on x86_64-4level with 32M unless `machine` says otherwise. */
function one(ops: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format: 'mmulab-scenario/1',
    machine: { geometry: 'x86_64-4level', memory: '32M', thp: 'never' },
    processes: [{ name: 'p', ops }],
    ...extra,
  };
}

function errorOf(v: unknown): string {
  try {
    parseScenario(v);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as Error).message;
  }
  throw new Error('expected a ScenarioError');
}

function go(v: unknown): ScenarioRun {
  return runScenario(parseScenario(v));
}

const ANON = { op: 'mmap', as: 'a', length: '16K', prot: ['read', 'write'], flags: ['private', 'anonymous'] };

describe('scenario schema: errors name the JSON path and what was expected', () => {
  const cases: Array<[string, unknown, string]> = [
    ['not an object', [], 'scenario: expected a JSON object {"format": "mmulab-scenario/1", …}, got an array'],
    ['wrong format', { format: 'x' }, 'format: expected "mmulab-scenario/1", got "x"'],
    ['a key that is not an identifier', { format: 'mmulab-scenario/1', 'a b': 1 }, 'scenario["a b"]: unknown field for a scenario (expected one of format, description, machine, files, processes, steps, comment)'],
    ['unknown top-level field', { format: 'mmulab-scenario/1', proceses: [] }, 'scenario.proceses: unknown field for a scenario (expected one of format, description, machine, files, processes, steps, comment)'],
    ['unknown geometry', one([], { machine: { geometry: 'riscv' } }), 'machine.geometry: expected one of "x86_64-4level", "x86_64-5level", "arm64-4k-39", "arm64-4k-48", "arm64-4k-52", "arm64-16k-36", "arm64-16k-47", "arm64-16k-48", "arm64-16k-52", "arm64-64k-42", "arm64-64k-48", "arm64-64k-52", got "riscv"'],
    ['memory not a size', one([], { machine: { memory: '12 bananas' } }), 'machine.memory: expected a memory size: a number of bytes or "256M", "1G", got "12 bananas"'],
    ['memory too small', one([], { machine: { memory: '64K' } }), 'machine.memory: must be 1M … 16G, got "64K"'],
    ['no processes', { format: 'mmulab-scenario/1' }, 'processes: expected at least one process'],
    ['length not a page multiple (the brief\'s example)', one([ANON, { ...ANON, as: 'b', length: 5000 }]), 'processes[0].ops[1].length: must be a multiple of the page size (4096)'],
    ['16K granule page size', one([{ ...ANON, length: '4K' }], { machine: { geometry: 'arm64-16k-47' } }), 'processes[0].ops[0].length: must be a multiple of the page size (16384)'],
    ['unknown op', one([{ op: 'mmapp' }]), 'processes[0].ops[0].op: expected one of "mmap", "munmap", "mprotect", "madvise", "touch", "write", "read", "poke", "peek", "fork", "exit", "swap_out", "migrate", "zap", "remap_pfn", got "mmapp"'],
    ['misspelt field', one([{ ...ANON, lenght: 4096 }]), 'processes[0].ops[0].lenght: unknown field for "mmap" (expected one of op, expect, as, addr, length, prot, flags, file, offset, hugepage_size, comment)'],
    ['unknown prot', one([{ ...ANON, prot: ['read', 'rwx'] }]), 'processes[0].ops[0].prot[1]: expected one of "read", "write", "exec", got "rwx"'],
    ['unknown flag', one([{ ...ANON, flags: ['private', 'anon'] }]), 'processes[0].ops[0].flags[1]: expected one of "private", "shared", "anonymous", "fixed", "fixed_noreplace", "populate", "hugetlb", "noreserve", "locked", "growsdown", "stack", "nonblock", got "anon"'],
    ['neither anonymous nor file', one([{ ...ANON, flags: ['private'] }]), 'processes[0].ops[0].flags: expected the "anonymous" flag or a "file" to map'],
    ['unknown file', one([{ ...ANON, flags: ['private'], file: 'nope' }]), 'processes[0].ops[0].file: no file named "nope" in "files"'],
    ['fixed without addr', one([{ ...ANON, flags: ['private', 'anonymous', 'fixed'] }]), 'processes[0].ops[0].addr: required with the "fixed" and "fixed_noreplace" flags'],
    ['duplicate mapping name', one([ANON, ANON]), 'processes[0].ops[1].as: process "p" already has a mapping named "a"'],
    ['unknown mapping in an address', one([ANON, { op: 'touch', at: 'b+0x1000' }]), 'processes[0].ops[1].at: process "p" has no mapping named "b" (it has "a")'],
    ['bad address syntax', one([ANON, { op: 'touch', at: 'a+zz' }]), 'processes[0].ops[1].at: expected an address: a number, "0x…", or a mapping name with an optional offset ("heap", "heap+0x2000", "heap+8K"), got "a+zz"'],
    ['length needed when "at" has an offset', one([ANON, { op: 'munmap', at: 'a+4K' }]), 'processes[0].ops[1].length: required (it may be left out only when "at" is a bare mapping name: the whole mapping)'],
    ['bad hex bytes', one([ANON, { op: 'write', at: 'a', bytes: 'abc' }]), 'processes[0].ops[1].bytes: expected hex bytes (pairs of hex digits, e.g. "de ad be ef"), got "abc"'],
    ['both bytes and text', one([ANON, { op: 'write', at: 'a', bytes: '00', text: 'x' }]), 'processes[0].ops[1].text: give either "bytes" or "text", not both'],
    ['expect_text length mismatch', one([ANON, { op: 'read', at: 'a', length: 3, expect_text: 'ab' }]), 'processes[0].ops[1].expect_text: holds 2 bytes but "length" is 3'],
    ['unknown expect', one([ANON, { op: 'touch', at: 'a', expect: 'SIGKILL' }]), 'processes[0].ops[1].expect: expected one of "ok", "SIGSEGV", "SIGBUS", "EPERM", "ENOENT", "EIO", "EAGAIN", "ENOMEM", "EACCES", "EFAULT", "EBUSY", "EEXIST", "EINVAL", "ENOSPC", "EOVERFLOW", "EOPNOTSUPP", "EHWPOISON", got "SIGKILL"'],
    ['touch count 0', one([ANON, { op: 'touch', at: 'a', count: 0 }]), 'processes[0].ops[1].count: expected a page count 1 … 1048576, got 0'],
    ['step for an undeclared process', { ...one([]), steps: [{ process: 'q', op: 'exit' }] }, 'steps[0].process: no process named "q" (processes are declared in "processes" or created by a "fork")'],
    ['step after exit', { ...one([{ op: 'exit' }]), steps: [{ process: 'p', op: 'touch', at: 0x10000 }] }, 'steps[0].process: process "p" has exited (at processes[0].ops[0])'],
    ['fork to an existing name', one([{ op: 'fork', child: 'p' }]), 'processes[0].ops[0].child: a process named "p" already exists'],
    ['populate larger than memory', one([{ ...ANON, length: '64M', flags: ['private', 'anonymous', 'populate'] }]), 'processes[0].ops[0].length: with "populate", at most the machine\'s memory (32M)'],
    ['hugetlbfs size', one([], { files: [{ name: 'h', kind: 'hugetlbfs', size: '3M' }] }), 'files[0].size: must be a multiple of the huge page size (2097152)'],
    ['hugetlbfs page size not offered', one([], { files: [{ name: 'h', kind: 'hugetlbfs', size: '4M', hugepage_size: '4M' }] }), 'files[0].hugepage_size: expected one of the huge page sizes of x86_64-4level: 2M, 1G'],
    ['pattern file too large', one([], { files: [{ name: 'big', size: '1G', fill: 'pattern' }] }), 'files[0].size: at most 256M with "fill": "pattern"'],
    ['invalid process name', { format: 'mmulab-scenario/1', processes: [{ name: 'a+b' }] }, 'processes[0].name: "a+b" is not a valid process name: expected a letter or "_" then letters, digits, "_", "." or "-" (at most 64)'],
  ];
  for (const [what, v, msg] of cases) {
    it(`${what}`, () => {
      expect(errorOf(v)).toBe(msg);
    });
  }

  it('JSON syntax errors are ScenarioErrors at the root', () => {
    expect(() => parseScenarioText('{"format": ')).toThrow(ScenarioError);
    expect(() => parseScenarioText('{"format": ')).toThrow(/^scenario: not valid JSON/);
  });

  it('sizes: "2M" = 2^21, "0x4000" = 16384, "16K" = 16384 (binary units, hand-computed)', () => {
    const s = parseScenario(one([{ ...ANON, length: '2M' }, { ...ANON, as: 'b', length: '0x4000' }, { op: 'touch', at: 'b+16K' }]));
    const [m1, m2, t] = s.steps.map((x) => x.op);
    expect(m1).toMatchObject({ op: 'mmap', length: 2097152 });
    expect(m2).toMatchObject({ op: 'mmap', length: 16384 });
    expect(t).toMatchObject({ op: 'touch', at: { base: 'b', offset: 16384 } });
  });

  it('processes[].ops come first (process by process), then steps[]; fork children inherit mapping names', () => {
    const s = parseScenario({
      format: 'mmulab-scenario/1',
      processes: [{ name: 'a', ops: [ANON, { op: 'fork', child: 'c' }] }, { name: 'b', ops: [{ op: 'exit' }] }],
      steps: [{ process: 'c', op: 'touch', at: 'a+4K' }],
    });
    expect(s.steps.map((x) => `${x.path} ${x.process} ${x.op.op}`)).toEqual([
      'processes[0].ops[0] a mmap',
      'processes[0].ops[1] a fork',
      'processes[1].ops[0] b exit',
      'steps[0] c touch',
    ]);
  });
});

describe('scenario schema fuzz: any JSON value gives a Scenario or a ScenarioError, never another exception', () => {
  const WORDS = ['op', 'mmap', 'touch', 'fork', 'at', 'a', 'a+4K', 'heap', '0x1000', '2M', 'read', 'write', 'private', 'anonymous', 'p', 'length', '', '-1', '1e400', 'NaN', '0x', '99999999999999999999999', '__proto__', 'constructor'];
  function randomValue(r: () => number, depth: number): unknown {
    const k = Math.floor(r() * (depth > 3 ? 6 : 8));
    switch (k) {
      case 0: return null;
      case 1: return r() < 0.5;
      case 2: return [0, -1, 1, 4096, 2 ** 53, 2 ** 64, 0.5, -0, 1e308, 16384][Math.floor(r() * 10)];
      case 3: return WORDS[Math.floor(r() * WORDS.length)];
      case 4: return Math.floor(r() * 2 ** 32);
      case 5: return String.fromCharCode(...Array.from({ length: Math.floor(r() * 6) }, () => Math.floor(r() * 0x250)));
      case 6: return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = Math.floor(r() * 4); i > 0; i--) o[WORDS[Math.floor(r() * WORDS.length)]!] = randomValue(r, depth + 1);
        return o;
      }
    }
  }
  /** Replace, delete or retype one node of a JSON tree. */
  function mutate(v: unknown, r: () => number): unknown {
    if (Array.isArray(v)) {
      if (v.length === 0 || r() < 0.15) return r() < 0.5 ? randomValue(r, 2) : [...v, randomValue(r, 2)];
      const i = Math.floor(r() * v.length);
      const c = [...v];
      if (r() < 0.1) c.splice(i, 1);
      else c[i] = mutate(c[i], r);
      return c;
    }
    if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      if (keys.length === 0 || r() < 0.15) return randomValue(r, 2);
      const c = { ...(v as Record<string, unknown>) };
      const k = keys[Math.floor(r() * keys.length)]!;
      if (r() < 0.15) delete c[k];
      else c[k] = mutate(c[k], r);
      return c;
    }
    return randomValue(r, 2);
  }
  function check(v: unknown): 'ok' | 'error' {
    try {
      parseScenario(v);
      return 'ok';
    } catch (e) {
      if (!(e instanceof ScenarioError)) throw new Error(`not a ScenarioError for ${JSON.stringify(v)}: ${String(e)}`);
      // "path: what was expected" — a path from the root of the file and a non-empty explanation.
      expect(e.path).toMatch(/^(scenario|format|description|machine|files|processes|steps)\b/);
      expect(e.expected.length).toBeGreaterThan(0);
      expect(e.message).toBe(`${e.path}: ${e.expected}`);
      return 'error';
    }
  }

  it('4000 random values (seed 1)', () => {
    const r = prng(1);
    for (let i = 0; i < 4000; i++) check(randomValue(r, 0));
  });

  it('6000 one- to three-point mutations of the examples (seed 7); the ones still valid run without crashing', () => {
    const r = prng(7);
    const bases = readdirSync(EXAMPLES).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(EXAMPLES, f), 'utf8')) as unknown);
    const seen = { ok: 0, error: 0, ran: 0 };
    for (let i = 0; i < 6000; i++) {
      let v = bases[i % bases.length];
      for (let n = 1 + Math.floor(r() * 3); n > 0; n--) v = mutate(v, r);
      const res = check(v);
      seen[res]++;
      // Run a bounded share of the valid mutants: small machines, few pages per step.
      if (res === 'ok' && seen.ran < 150) {
        const s = parseScenario(v);
        const small = s.machine.memory <= 256 * 2 ** 20 && s.steps.every((st) => !('count' in st.op) || st.op.count <= 16);
        if (!small) continue;
        seen.ran++;
        try {
          const run = runScenario(s);
          teardownCheck(run);
        } catch (e) {
          if (!(e instanceof ScenarioError)) throw new Error(`run of a valid mutant crashed: ${String((e as Error).stack)}\n${JSON.stringify(v)}`);
        }
      }
    }
    expect(seen.error).toBeGreaterThan(1000);
    expect(seen.ok).toBeGreaterThan(100);
    expect(seen.ran).toBeGreaterThan(50);
  });
});

describe('running scenarios: every op against the kernel rule it models', () => {
  it('mmap: an anonymous mapping below mmap_base, page aligned; MAP_FIXED at an unaligned address is -EINVAL; MAP_FIXED_NOREPLACE over a mapping is -EEXIST (mm/mmap.c do_mmap)', () => {
    const r = go(
      one([
        ANON,
        { op: 'mmap', as: 'f', addr: '0x10001000', length: '4K', prot: ['read'], flags: ['private', 'anonymous', 'fixed'] },
        { op: 'mmap', addr: '0x10000800', length: '4K', prot: ['read'], flags: ['private', 'anonymous', 'fixed'], expect: 'EINVAL' },
        { op: 'mmap', addr: 'f', length: '4K', prot: ['read'], flags: ['private', 'anonymous', 'fixed_noreplace'], expect: 'EEXIST' },
      ]),
    );
    expect(r.failures).toEqual([]);
    const a = parseInt(r.log[0]!.detail.addr as string, 16);
    expect(a % 4096).toBe(0);
    // mmap_base = DEFAULT_MAP_WINDOW (2^47 - 4096) - 128M gap, rounded down to a page: 0x7ffff7fff000.
    expect(a + 16384).toBeLessThanOrEqual(0x7ffff7fff000);
    expect(r.log[1]!.detail.addr).toBe('0x10001000');
    expect(r.log[2]!.detail.errno).toBe(-22);
    expect(r.log[3]!.detail.errno).toBe(-17);
  });

  it('touch: SEGV_MAPERR outside any VMA, SEGV_ACCERR on PROT_NONE, SIGBUS past the end of a file (filemap_fault beyond i_size)', () => {
    const r = go(
      one(
        [
          { op: 'mmap', as: 'none', length: '4K', prot: [], flags: ['private', 'anonymous'] },
          { op: 'touch', at: 'none', expect: 'SIGSEGV' },
          { op: 'touch', at: 'none+0x100000', expect: 'SIGSEGV' },
          { op: 'mmap', as: 'f', length: '16K', prot: ['read'], flags: ['private'], file: 'small' },
          { op: 'touch', at: 'f' },
          { op: 'touch', at: 'f+8K', expect: 'SIGBUS' },
        ],
        { files: [{ name: 'small', size: 5000 }] },
      ),
    );
    expect(r.failures).toEqual([]);
    expect((r.log[1]!.detail.pages as Array<Record<string, unknown>>)[0]!.code).toBe('SEGV_ACCERR');
    expect((r.log[2]!.detail.pages as Array<Record<string, unknown>>)[0]!.code).toBe('SEGV_MAPERR');
    // 5000 bytes = 2 pages: index 2 (f+8K) is past i_size.
    expect((r.log[5]!.detail.pages as Array<Record<string, unknown>>)[0]!.fault).toContain('VM_FAULT_SIGBUS');
  });

  it('touch with a count faults each page; a read maps the zero page, a write a private page (do_anonymous_page)', () => {
    const r = go(one([ANON, { op: 'touch', at: 'a', access: 'read', count: 2 }, { op: 'touch', at: 'a+8K', access: 'write', count: 2 }]));
    const m = r.machine;
    const mm = r.processes.get('p')!;
    const a = parseInt(r.log[0]!.detail.addr as string, 16);
    expect(userPa(mm, a)).toBe(m.zeroPagePa);
    expect(userPa(mm, a + 4096)).toBe(m.zeroPagePa);
    expect(userPa(mm, a + 8192)).not.toBe(m.zeroPagePa);
    expect(mm.rss[MM_ANONPAGES]).toBe(2);
    expect((r.log[1]!.detail.pages as unknown[]).length).toBe(2);
  });

  it('write then read round-trips; a wrong expect_text is a failure; madvise(MADV_HUGEPAGE) in THP "madvise" mode gives a pmd leaf', () => {
    const r = go(
      one(
        [
          { op: 'mmap', as: 't', length: '4M', prot: ['read', 'write'], flags: ['private', 'anonymous'] },
          { op: 'write', at: 't+2M', bytes: 'de ad be ef' },
          { op: 'read', at: 't+2M', expect_bytes: 'deadbeef' },
          { op: 'read', at: 't+2M', expect_text: 'nope' },
          { op: 'madvise', at: 't', advice: 'hugepage' },
          { op: 'touch', at: 't', access: 'write' },
        ],
        { machine: { memory: '32M', thp: 'madvise' } },
      ),
    );
    expect(r.log[2]!.ok).toBe(true);
    expect(r.log[3]!.ok).toBe(false);
    expect(r.failures).toEqual(['processes[0].ops[3] (p read): the bytes read differ from the expected ones']);
    const mm = r.processes.get('p')!;
    const t = parseInt(r.log[0]!.detail.addr as string, 16);
    expect(lookupEntry(mm, t + 2 * 2 ** 20).level).toBe('pte'); // written before the madvise
    expect(lookupEntry(mm, t).level).toBe('pmd');
  });

  it('poke with FOLL_FORCE writes a read-only private mapping (a COW copy) where a user write gets SIGSEGV; peek reads it back', () => {
    const r = go(
      one([
        { op: 'mmap', as: 'ro', length: '4K', prot: ['read'], flags: ['private', 'anonymous'] },
        { op: 'write', at: 'ro', text: 'x', expect: 'SIGSEGV' },
        { op: 'poke', at: 'ro+10', text: 'forced' },
        { op: 'peek', at: 'ro+10', expect_text: 'forced' },
        { op: 'read', at: 'ro+10', expect_text: 'forced' },
      ]),
    );
    expect(r.failures).toEqual([]);
    expect(r.log[2]!.detail.transferred).toBe(6);
  });

  it('fork: the child sees the parent\'s data; its write is private to it; exit frees; the allocator ends where it began', () => {
    const r = go({
      ...one([ANON, { op: 'write', at: 'a', text: 'mine' }, { op: 'fork', child: 'c' }]),
      steps: [
        { process: 'c', op: 'read', at: 'a', expect_text: 'mine' },
        { process: 'c', op: 'write', at: 'a', text: 'MINE' },
        { process: 'p', op: 'read', at: 'a', expect_text: 'mine' },
        { process: 'c', op: 'exit' },
        { process: 'p', op: 'exit' },
      ],
    });
    expect(r.failures).toEqual([]);
    expect(r.machine.frames.freeFrames).toBe(r.freeFramesAtStart);
  });

  it('swap_out turns the pte into a swap entry (MM_SWAPENTS); a read swaps it in with VM_FAULT_MAJOR; migrate moves the data to another frame', () => {
    const r = go(
      one([
        ANON,
        { op: 'write', at: 'a', text: 'payload' },
        { op: 'swap_out', at: 'a' },
        { op: 'touch', at: 'a' },
        { op: 'migrate', at: 'a' },
        { op: 'read', at: 'a', expect_text: 'payload' },
      ]),
    );
    expect(r.failures).toEqual([]);
    const pages = (i: number) => r.log[i]!.detail.pages as Array<Record<string, unknown>>;
    expect(pages(3)[0]!.fault).toContain('VM_FAULT_MAJOR');
    expect(pages(4)[0]!.from).not.toBe(pages(4)[0]!.to);
    const mm = r.processes.get('p')!;
    expect(mm.rss[MM_SWAPENTS]).toBe(0);
    expect(userPa(mm, parseInt(r.log[0]!.detail.addr as string, 16))).toBe(parseInt(pages(4)[0]!.to as string, 16));
  });

  it('swap_out keeps the count: one swap entry, no anonymous page, until the process touches it', () => {
    const r = go(one([ANON, { op: 'write', at: 'a', text: 'z' }, { op: 'swap_out', at: 'a' }]));
    const mm = r.processes.get('p')!;
    expect(mm.rss[MM_SWAPENTS]).toBe(1);
    expect(mm.rss[MM_ANONPAGES]).toBe(0);
  });

  it('zap drops private anonymous pages: the next read sees zeros (MADV_DONTNEED semantics); zap with no VMA is -EINVAL', () => {
    const r = go(
      one([
        ANON,
        { op: 'write', at: 'a', text: 'gone' },
        { op: 'zap', at: 'a' },
        { op: 'read', at: 'a', expect_bytes: '00 00 00 00' },
        { op: 'zap', at: '0x10000', length: '4K', expect: 'EINVAL' },
      ]),
    );
    expect(r.failures).toEqual([]);
  });

  it('remap_pfn maps pfn 0xfd000 at the VMA: the pte points at physical 0xfd000000 (pfn × 4096, by hand); mprotect of an unmapped range is -ENOMEM', () => {
    const r = go(
      one(
        [
          { op: 'mmap', as: 'd', length: '8K', prot: ['read', 'write'], flags: ['shared'], file: 'dev' },
          { op: 'remap_pfn', at: 'd', pfn: '0xfd000', length: '8K' },
          { op: 'touch', at: 'd+4K', access: 'write' },
          { op: 'mprotect', at: '0x20000000', length: '4K', prot: ['read'], expect: 'ENOMEM' },
          { op: 'munmap', at: 'd+0x800', length: '4K', expect: 'EINVAL' },
        ],
        { files: [{ name: 'dev', kind: 'device', size: '8K' }] },
      ),
    );
    expect(r.failures).toEqual([]);
    const mm = r.processes.get('p')!;
    const d = parseInt(r.log[0]!.detail.addr as string, 16);
    expect(userPa(mm, d)).toBe(0xfd000000);
    expect(userPa(mm, d + 4096)).toBe(0xfd001000);
  });

  it('file fill "pattern": each 8-byte word holds its file offset, little-endian (offset 0x1008 → 08 10 00 00 00 00 00 00)', () => {
    const r = go(
      one(
        [
          { op: 'mmap', as: 'f', length: '8K', prot: ['read'], flags: ['shared'], file: 'pat' },
          { op: 'read', at: 'f+0x1008', expect_bytes: '08 10 00 00 00 00 00 00' },
        ],
        { files: [{ name: 'pat', size: '8K', fill: 'pattern' }] },
      ),
    );
    expect(r.failures).toEqual([]);
  });

  it('a step naming a mapping whose mmap failed is a ScenarioError with its path', () => {
    expect(() => go(one([{ ...ANON, addr: '0x1000', flags: ['private', 'anonymous', 'fixed'] }, { op: 'touch', at: 'a' }]))).toThrow(
      'processes[0].ops[1].at: mapping "a" has no address: its mmap (processes[0].ops[0]) failed with EPERM',
    );
  });

  it('a kernel assertion (remap_pfn over present ptes: BUG_ON(!pte_none)) is logged as BUG and aborts the run', () => {
    const r = go(
      one(
        [
          { op: 'mmap', as: 'd', length: '4K', prot: ['read'], flags: ['shared'], file: 'dev' },
          { op: 'remap_pfn', at: 'd', pfn: '0xfd000', length: '4K' },
          { op: 'remap_pfn', at: 'd', pfn: '0xfd000', length: '4K' },
          { op: 'exit' },
        ],
        { files: [{ name: 'dev', kind: 'device', size: '4K' }] },
      ),
    );
    expect(r.aborted).toBe(true);
    expect(r.log.map((e) => e.outcome)).toEqual(['ok', 'ok', 'BUG']);
    expect(r.failures[0]).toMatch(/^processes\[0\]\.ops\[2\] \(p remap_pfn\): kernel assertion: remap_pte_range: BUG_ON\(!pte_none\(\*pte\)\)/);
  });
});

describe('page-table totals: one touched page needs one table per physical level (Linux PGTABLE_LEVELS)', () => {
  const cases: Array<[string, Record<string, number>]> = [
    ['x86_64-4level', { pgd: 1, pud: 1, pmd: 1, pte: 1 }], // p4d folded into the pgd (pgtable-nop4d.h)
    ['x86_64-5level', { pgd: 1, p4d: 1, pud: 1, pmd: 1, pte: 1 }],
    ['arm64-4k-48', { pgd: 1, pud: 1, pmd: 1, pte: 1 }],
    ['arm64-16k-47', { pgd: 1, pmd: 1, pte: 1 }], // 3 levels: the pud folded
    ['arm64-64k-42', { pgd: 1, pte: 1 }], // 2 levels: pud and pmd folded
  ];
  for (const [g, want] of cases) {
    it(g, () => {
      const r = go({
        format: 'mmulab-scenario/1',
        machine: { geometry: g, memory: '16M', thp: 'never' },
        processes: [{ name: 'p', ops: [{ op: 'mmap', as: 'a', length: '64K', prot: ['read', 'write'], flags: ['private', 'anonymous'] }, { op: 'touch', at: 'a', access: 'write' }] }],
      });
      expect(countPageTables(r.processes.get('p')!)).toEqual(want);
    });
  }
});

describe('teardown check', () => {
  it('finds a frame allocated behind the scenario\'s back (the check can fail)', () => {
    const r = go(one([ANON, { op: 'touch', at: 'a', access: 'write' }]));
    r.machine.frames.alloc(0);
    const rep = teardownCheck(r);
    expect(rep.exited).toEqual(['p']);
    expect(rep.leakedFrames).toBe(1);
  });

  it('page cache, swap cache and live processes are all accounted for: 0 leaked', () => {
    const r = go({
      ...one(
        [
          ANON,
          { op: 'write', at: 'a', text: 's' },
          { op: 'fork', child: 'c' },
          { op: 'swap_out', at: 'a' },
          { op: 'mmap', as: 'f', length: '8K', prot: ['read', 'write'], flags: ['shared'], file: 'data' },
          { op: 'write', at: 'f+4K', text: 'w' },
          { op: 'mmap', as: 's', length: '8K', prot: ['read', 'write'], flags: ['shared', 'anonymous'] },
          { op: 'write', at: 's', text: 'shm' },
        ],
        { files: [{ name: 'data', size: '8K' }] },
      ),
      steps: [{ process: 'c', op: 'read', at: 'a', length: 1 }],
    });
    expect(r.failures).toEqual([]);
    const rep = teardownCheck(r);
    expect(rep.exited.sort()).toEqual(['c', 'p']);
    expect(rep.pageCacheDropped).toBeGreaterThanOrEqual(1);
    expect(rep.leakedFrames).toBe(0);
    expect(rep.swapSlotsLeft).toBe(0);
    expect(rep.errors).toEqual([]);
  });

  it('every examples/*.json runs with its expectations met and leaks nothing', () => {
    const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThanOrEqual(6);
    for (const f of files) {
      const r = runScenario(parseScenarioText(readFileSync(join(EXAMPLES, f), 'utf8')));
      expect(r.failures, f).toEqual([]);
      const rep = teardownCheck(r);
      expect([f, rep.leakedFrames, rep.swapSlotsLeft, rep.errors]).toEqual([f, 0, 0, []]);
    }
  });
});
