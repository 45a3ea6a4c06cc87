/**
 * The scenario format ("mmulab-scenario/1"): a machine, some files, and processes that mmap,
 * touch, fork, swap… in a given order. docs/scenarios.md describes it field by field.
 *
 * A scenario is input from outside (DESIGN.md, "Errors from outside"): parseScenario accepts any
 * JSON value and either returns a checked Scenario or throws a ScenarioError naming the JSON path
 * and what was expected there, e.g.
 *   processes[1].ops[3].length: must be a multiple of the page size (4096)
 * Nothing else is thrown. Unknown fields are errors (a misspelt "lenght" must not be silently
 * ignored); "comment" is allowed on every object.
 *
 * The checks are about form and references — types, names, sizes, which mapping or process a step
 * names and whether that process is still alive at that point — done once, statically, so that
 * running a checked scenario only meets the kernel's own answers (errno, signals). Semantic rules
 * the kernel itself enforces (MAP_FIXED alignment, a missing MAP_PRIVATE/MAP_SHARED, mprotect of an
 * unmapped range) are left to the mm model, so a scenario can show the kernel's answer.
 */
import { GEOMETRY_NAMES, geometry, type Geometry, type GeometryName } from '../../arch/geometry';
// Largest machine: 16 GiB of emulated memory (PhysMem's limit).
import { MAX_MEMORY } from '../../mem/physmem';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_HUGE_SHIFT,
  MAP_HUGETLB,
  MAP_LOCKED,
  MAP_NONBLOCK,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_STACK,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
} from '../mmap';

export const SCENARIO_FORMAT = 'mmulab-scenario/1';

/** A scenario that does not follow the format: `path` is the JSON path, `expected` what should be there. */
export class ScenarioError extends Error {
  constructor(
    readonly path: string,
    readonly expected: string,
  ) {
    super(`${path}: ${expected}`);
    this.name = 'ScenarioError';
  }
}

// ---- the checked form ---------------------------------------------------------------------------

export type ThpMode = 'always' | 'madvise' | 'never';

export interface MachineSpec {
  readonly geometry: GeometryName;
  /** Bytes of physical memory. */
  readonly memory: number;
  readonly thp: ThpMode;
}

/** file: a regular file (page cache, dirty accounting); shmem: tmpfs; hugetlbfs: huge pages; device: a driver's mmap window. */
export type FileKind = 'file' | 'shmem' | 'hugetlbfs' | 'device';

export interface FileSpec {
  readonly name: string;
  readonly size: number;
  readonly kind: FileKind;
  /** zero: all zero bytes; pattern: each 8-byte word holds its own file offset, little-endian. */
  readonly fill: 'zero' | 'pattern';
  /** hugetlbfs: the huge page size. */
  readonly hugepageSize: number | null;
}

/** An address: a named mapping of the process plus a byte offset, or an absolute address (base null). */
export interface AddrExpr {
  readonly base: string | null;
  readonly offset: number;
  /** As written, for the log. */
  readonly text: string;
}

export type Access = 'read' | 'write' | 'exec';

export type OpSpec =
  | {
      readonly op: 'mmap';
      readonly as: string | null;
      readonly addr: AddrExpr | null;
      readonly length: number;
      readonly prot: number;
      readonly protNames: readonly string[];
      readonly flags: number;
      readonly flagNames: readonly string[];
      readonly file: string | null;
      readonly offset: number;
    }
  | { readonly op: 'munmap'; readonly at: AddrExpr; readonly length: number }
  | { readonly op: 'mprotect'; readonly at: AddrExpr; readonly length: number; readonly prot: number; readonly protNames: readonly string[] }
  | { readonly op: 'madvise'; readonly at: AddrExpr; readonly length: number; readonly advice: 'hugepage' | 'nohugepage' }
  | { readonly op: 'touch'; readonly at: AddrExpr; readonly access: Access; readonly count: number }
  | { readonly op: 'write'; readonly at: AddrExpr; readonly bytes: Uint8Array }
  | { readonly op: 'read'; readonly at: AddrExpr; readonly length: number; readonly expectBytes: Uint8Array | null }
  | { readonly op: 'poke'; readonly at: AddrExpr; readonly bytes: Uint8Array }
  | { readonly op: 'peek'; readonly at: AddrExpr; readonly length: number; readonly expectBytes: Uint8Array | null }
  | { readonly op: 'fork'; readonly child: string }
  | { readonly op: 'exit' }
  | { readonly op: 'swap_out'; readonly at: AddrExpr; readonly count: number }
  | { readonly op: 'migrate'; readonly at: AddrExpr; readonly count: number }
  | { readonly op: 'zap'; readonly at: AddrExpr; readonly length: number }
  | { readonly op: 'remap_pfn'; readonly at: AddrExpr; readonly pfn: number; readonly length: number; readonly cache: CacheMode | null };

export type OpName = OpSpec['op'];
export type CacheMode = 'uncached' | 'wc' | 'device';

export interface StepSpec {
  /** JSON path of the op in the file: "processes[0].ops[2]" or "steps[5]". */
  readonly path: string;
  readonly process: string;
  readonly op: OpSpec;
  /** The outcome the scenario expects ("ok", "SIGSEGV", "EINVAL", …), or null for no check. */
  readonly expect: string | null;
}

export interface Scenario {
  readonly description: string;
  readonly machine: MachineSpec;
  readonly files: readonly FileSpec[];
  /** Processes that exist from the start, in order (forks add the others). */
  readonly processes: readonly string[];
  /** Every step in execution order: processes[].ops first (process by process), then steps[]. */
  readonly steps: readonly StepSpec[];
}

// ---- vocabularies -------------------------------------------------------------------------------

export const OP_NAMES: readonly OpName[] = [
  'mmap', 'munmap', 'mprotect', 'madvise', 'touch', 'write', 'read', 'poke', 'peek', 'fork', 'exit',
  'swap_out', 'migrate', 'zap', 'remap_pfn',
];

export const PROT_NAMES: Readonly<Record<string, number>> = { read: PROT_READ, write: PROT_WRITE, exec: PROT_EXEC };

export const MAP_FLAG_NAMES: Readonly<Record<string, number>> = {
  private: MAP_PRIVATE,
  shared: MAP_SHARED,
  anonymous: MAP_ANONYMOUS,
  fixed: MAP_FIXED,
  fixed_noreplace: MAP_FIXED_NOREPLACE,
  populate: MAP_POPULATE,
  hugetlb: MAP_HUGETLB,
  noreserve: MAP_NORESERVE,
  locked: MAP_LOCKED,
  growsdown: MAP_GROWSDOWN,
  stack: MAP_STACK,
  nonblock: MAP_NONBLOCK,
};

/** Outcomes an "expect" may name: success, the signals a user access gets, errno names. */
export const OUTCOMES: readonly string[] = [
  'ok', 'SIGSEGV', 'SIGBUS', 'EPERM', 'ENOENT', 'EIO', 'EAGAIN', 'ENOMEM', 'EACCES', 'EFAULT', 'EBUSY',
  'EEXIST', 'EINVAL', 'ENOSPC', 'EOVERFLOW', 'EOPNOTSUPP', 'EHWPOISON',
];

/** Fields each op takes besides "op", "process" (in steps), "expect" and "comment". */
const OP_FIELDS: Readonly<Record<OpName, readonly string[]>> = {
  mmap: ['as', 'addr', 'length', 'prot', 'flags', 'file', 'offset', 'hugepage_size'],
  munmap: ['at', 'length'],
  mprotect: ['at', 'length', 'prot'],
  madvise: ['at', 'length', 'advice'],
  touch: ['at', 'access', 'count'],
  write: ['at', 'bytes', 'text'],
  read: ['at', 'length', 'expect_bytes', 'expect_text'],
  poke: ['at', 'bytes', 'text'],
  peek: ['at', 'length', 'expect_bytes', 'expect_text'],
  fork: ['child'],
  exit: [],
  swap_out: ['at', 'count'],
  migrate: ['at', 'count'],
  zap: ['at', 'length'],
  remap_pfn: ['at', 'pfn', 'length', 'cache'],
};

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
/** Bytes a single read/write/peek/poke may move (the log prints them). */
export const MAX_DATA_BYTES = 1 << 20;
/** Pages one touch/swap_out/migrate may cover. */
export const MAX_COUNT = 1 << 20;
const MAX_STEPS = 1 << 20;
/** Largest file with "fill": "pattern". */
export const MAX_PATTERN_FILE = 256 * 2 ** 20;

// ---- small readers --------------------------------------------------------------------------------

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown, path: string, what = 'an object'): Record<string, unknown> {
  if (!isObject(v)) throw new ScenarioError(path, `expected ${what}, got ${describe(v)}`);
  return v;
}

function arr(v: unknown, path: string, what = 'an array'): unknown[] {
  if (!Array.isArray(v)) throw new ScenarioError(path, `expected ${what}, got ${describe(v)}`);
  return v;
}

function str(v: unknown, path: string, what = 'a string'): string {
  if (typeof v !== 'string') throw new ScenarioError(path, `expected ${what}, got ${describe(v)}`);
  return v;
}

function oneOf<T extends string>(v: unknown, path: string, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ScenarioError(path, `expected one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${describe(v)}`);
  }
  return v as T;
}

/** path.key, or path["key"] for a key that is not an identifier. */
function keyPath(path: string, k: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k.length > 40 ? k.slice(0, 40) + '…' : k)}]`;
}

function onlyKeys(o: Record<string, unknown>, path: string, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(o)) {
    if (k === 'comment') continue;
    if (!allowed.includes(k)) {
      throw new ScenarioError(keyPath(path, k), `unknown field for ${what} (expected one of ${[...allowed, 'comment'].join(', ')})`);
    }
  }
}

function name(v: unknown, path: string, what: string): string {
  const s = str(v, path, `${what} (a string)`);
  if (!NAME_RE.test(s)) {
    throw new ScenarioError(path, `${describe(s)} is not a valid ${what}: expected a letter or "_" then letters, digits, "_", "." or "-" (at most 64)`);
  }
  return s;
}

const UNIT: Readonly<Record<string, number>> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/**
 * A non-negative integer from a number, "0x…" hex, decimal, or decimal with a K/M/G/T suffix
 * (binary units, "2M" = 2097152); bigint arithmetic, so values up to 2^64 are read exactly and
 * then must be exact as a double (page-aligned values below 2^64 are).
 */
function sizeValue(v: unknown, path: string, what: string): number {
  let b: bigint;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new ScenarioError(path, `expected ${what}, got ${describe(v)}`);
    return v;
  } else if (typeof v === 'string') {
    const t = v.trim().replace(/_/g, '');
    const hex = /^0x([0-9a-fA-F]{1,16})$/.exec(t);
    const dec = /^([0-9]{1,20})\s*([KMGT]?)(?:i?B)?$/.exec(t);
    if (hex) b = BigInt('0x' + hex[1]);
    else if (dec) b = BigInt(dec[1]!) * BigInt(UNIT[dec[2]!]!);
    else throw new ScenarioError(path, `expected ${what}, got ${describe(v)}`);
  } else {
    throw new ScenarioError(path, `expected ${what}, got ${describe(v)}`);
  }
  if (b > 1n << 64n) throw new ScenarioError(path, `${describe(v)} is larger than 2^64`);
  const n = Number(b);
  if (BigInt(n) !== b) throw new ScenarioError(path, `${describe(v)} is not exactly representable (above 2^53 only multiples of a power of two are)`);
  return n;
}

const SIZE_WHAT = 'a size: a number, "0x…", or decimal with an optional K/M/G/T suffix ("64K", "2M")';

function pageMultiple(v: unknown, path: string, ps: number, what = SIZE_WHAT): number {
  const n = sizeValue(v, path, what);
  if (n % ps !== 0) throw new ScenarioError(path, `must be a multiple of the page size (${ps})`);
  return n;
}

function positiveLength(v: unknown, path: string, ps: number): number {
  const n = pageMultiple(v, path, ps);
  if (n === 0) throw new ScenarioError(path, 'must not be 0');
  return n;
}

function count(v: unknown, path: string): number {
  if (v === undefined) return 1;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_COUNT) {
    throw new ScenarioError(path, `expected a page count 1 … ${MAX_COUNT}, got ${describe(v)}`);
  }
  return v;
}

/** "de ad be ef", "0xdeadbeef", "deadbeef" → bytes. */
function hexBytes(v: unknown, path: string): Uint8Array {
  const s = str(v, path, 'a hex string ("de ad be ef" or "0xdeadbeef")');
  const t = s.replace(/^0x/i, '').replace(/[\s_:]/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(t)) throw new ScenarioError(path, `expected hex bytes (pairs of hex digits, e.g. "de ad be ef"), got ${describe(s)}`);
  if (t.length === 0) throw new ScenarioError(path, 'must hold at least one byte');
  if (t.length / 2 > MAX_DATA_BYTES) throw new ScenarioError(path, `at most ${MAX_DATA_BYTES} bytes`);
  const out = new Uint8Array(t.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(t.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function textBytes(v: unknown, path: string): Uint8Array {
  const s = str(v, path, 'a string');
  const b = new TextEncoder().encode(s);
  if (b.length === 0) throw new ScenarioError(path, 'must hold at least one byte');
  if (b.length > MAX_DATA_BYTES) throw new ScenarioError(path, `at most ${MAX_DATA_BYTES} bytes`);
  return b;
}

/** A "bytes" (hex) or "text" field, exactly one of them (optional when `optional`). */
function data(o: Record<string, unknown>, path: string, hexKey: string, textKey: string, optional: boolean): Uint8Array | null {
  const hasHex = o[hexKey] !== undefined;
  const hasText = o[textKey] !== undefined;
  if (hasHex && hasText) throw new ScenarioError(`${path}.${textKey}`, `give either "${hexKey}" or "${textKey}", not both`);
  if (hasHex) return hexBytes(o[hexKey], `${path}.${hexKey}`);
  if (hasText) return textBytes(o[textKey], `${path}.${textKey}`);
  if (optional) return null;
  throw new ScenarioError(`${path}.${hexKey}`, `required: the bytes to write, as "${hexKey}" (hex) or "${textKey}" (UTF-8)`);
}

function dataLength(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_DATA_BYTES) {
    throw new ScenarioError(path, `expected a byte count 1 … ${MAX_DATA_BYTES}, got ${describe(v)}`);
  }
  return v;
}

function protList(v: unknown, path: string): { prot: number; names: string[] } {
  const a = arr(v, path, 'a list of "read", "write", "exec" ([] for PROT_NONE)');
  let prot = 0;
  const names: string[] = [];
  a.forEach((p, i) => {
    const n = oneOf(p, `${path}[${i}]`, Object.keys(PROT_NAMES));
    if (names.includes(n)) throw new ScenarioError(`${path}[${i}]`, `${JSON.stringify(n)} is listed twice`);
    names.push(n);
    prot |= PROT_NAMES[n]!;
  });
  return { prot, names };
}

// ---- addresses ----------------------------------------------------------------------------------

const ADDR_WHAT = 'an address: a number, "0x…", or a mapping name with an optional offset ("heap", "heap+0x2000", "heap+8K")';

function addrExpr(v: unknown, path: string): AddrExpr {
  if (typeof v === 'number') return { base: null, offset: sizeValue(v, path, ADDR_WHAT), text: '0x' + v.toString(16) };
  if (typeof v !== 'string') throw new ScenarioError(path, `expected ${ADDR_WHAT}, got ${describe(v)}`);
  const t = v.trim();
  if (/^[0-9]/.test(t)) {
    const n = sizeValue(t, path, ADDR_WHAT);
    if (n >= 2 ** 64) throw new ScenarioError(path, `${describe(v)} is not below 2^64`);
    return { base: null, offset: n, text: t };
  }
  const m = /^([^+\s]+)\s*(?:\+\s*(\S+))?$/.exec(t);
  if (!m) throw new ScenarioError(path, `expected ${ADDR_WHAT}, got ${describe(v)}`);
  const base = m[1]!;
  if (!NAME_RE.test(base)) throw new ScenarioError(path, `expected ${ADDR_WHAT}, got ${describe(v)}`);
  let offset = 0;
  if (m[2] !== undefined) {
    try {
      offset = sizeValue(m[2], path, ADDR_WHAT);
    } catch {
      throw new ScenarioError(path, `expected ${ADDR_WHAT}, got ${describe(v)}`);
    }
  }
  return { base, offset, text: t };
}

// ---- machine and files --------------------------------------------------------------------------

function machineSpec(v: unknown): { spec: MachineSpec; geo: Geometry } {
  const path = 'machine';
  const o = v === undefined ? {} : obj(v, path);
  onlyKeys(o, path, ['geometry', 'memory', 'thp'], 'machine');
  const g = o.geometry === undefined ? 'x86_64-4level' : oneOf(o.geometry, `${path}.geometry`, GEOMETRY_NAMES);
  const geo = geometry(g);
  let memory = 256 * 2 ** 20;
  if (o.memory !== undefined) {
    memory = sizeValue(o.memory, `${path}.memory`, 'a memory size: a number of bytes or "256M", "1G"');
    if (memory % geo.PAGE_SIZE !== 0) throw new ScenarioError(`${path}.memory`, `must be a multiple of the page size (${geo.PAGE_SIZE})`);
    if (memory < 2 ** 20 || memory > MAX_MEMORY) throw new ScenarioError(`${path}.memory`, `must be 1M … ${MAX_MEMORY / 2 ** 30}G, got ${describe(o.memory)}`);
  }
  const thp = o.thp === undefined ? 'always' : oneOf(o.thp, `${path}.thp`, ['always', 'madvise', 'never'] as const);
  return { spec: { geometry: g, memory, thp }, geo };
}

function fileSpec(v: unknown, path: string, geo: Geometry): FileSpec {
  const o = obj(v, path, 'a file: {"name", "size", "kind"?, "fill"?}');
  onlyKeys(o, path, ['name', 'size', 'kind', 'fill', 'hugepage_size'], 'a file');
  const nm = name(o.name, `${path}.name`, 'file name');
  const kind = o.kind === undefined ? 'file' : oneOf(o.kind, `${path}.kind`, ['file', 'shmem', 'hugetlbfs', 'device'] as const);
  if (o.size === undefined) throw new ScenarioError(`${path}.size`, 'required: the file size in bytes');
  const size = sizeValue(o.size, `${path}.size`, SIZE_WHAT);
  if (size > MAX_MEMORY) throw new ScenarioError(`${path}.size`, `at most ${MAX_MEMORY / 2 ** 30}G`);
  let hugepageSize: number | null = null;
  if (kind === 'hugetlbfs') {
    if (o.hugepage_size === undefined) hugepageSize = geo.PMD_SIZE;
    else {
      hugepageSize = sizeValue(o.hugepage_size, `${path}.hugepage_size`, SIZE_WHAT);
      if (!geo.hugetlbSizes.includes(hugepageSize)) {
        throw new ScenarioError(`${path}.hugepage_size`, `expected one of the huge page sizes of ${geo.name}: ${geo.hugetlbSizes.map(sizeText).join(', ')}`);
      }
    }
    if (size % hugepageSize !== 0) throw new ScenarioError(`${path}.size`, `must be a multiple of the huge page size (${hugepageSize})`);
  } else if (o.hugepage_size !== undefined) {
    throw new ScenarioError(`${path}.hugepage_size`, 'only for "kind": "hugetlbfs"');
  }
  const fill = o.fill === undefined ? 'zero' : oneOf(o.fill, `${path}.fill`, ['zero', 'pattern'] as const);
  if ((kind === 'device' || kind === 'hugetlbfs') && fill !== 'zero') {
    throw new ScenarioError(`${path}.fill`, `a ${kind} file has no initial contents to fill`);
  }
  // The pattern is written to the backing store up front, one page buffer per page.
  if (fill === 'pattern' && size > MAX_PATTERN_FILE) {
    throw new ScenarioError(`${path}.size`, `at most ${sizeText(MAX_PATTERN_FILE)} with "fill": "pattern"`);
  }
  return { name: nm, size, kind, fill, hugepageSize };
}

export function sizeText(n: number): string {
  for (const [u, f] of [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const) {
    if (n >= f && n % f === 0) return `${n / f}${u}`;
  }
  return String(n);
}

// ---- ops ----------------------------------------------------------------------------------------

/** What the checker knows about one process at a point of the scenario. */
interface ProcState {
  alive: boolean;
  /** Where it exited, for the error message. */
  exitedAt: string;
  /** Mapping names → the length their mmap asked for. */
  mappings: Map<string, number>;
}

interface Ctx {
  readonly geo: Geometry;
  readonly machine: MachineSpec;
  readonly files: ReadonlyMap<string, FileSpec>;
  readonly procs: Map<string, ProcState>;
}

function resolveName(a: AddrExpr, path: string, proc: ProcState, procName: string): void {
  if (a.base !== null && !proc.mappings.has(a.base)) {
    const known = [...proc.mappings.keys()];
    throw new ScenarioError(
      path,
      `process "${procName}" has no mapping named "${a.base}"${known.length ? ` (it has ${known.map((k) => `"${k}"`).join(', ')})` : ' (name one with "as" in an mmap)'}`,
    );
  }
}

/** A range length: given, or the whole named mapping when "at" is a bare mapping name. */
function rangeLength(o: Record<string, unknown>, path: string, at: AddrExpr, proc: ProcState, ps: number): number {
  if (o.length !== undefined) return positiveLength(o.length, `${path}.length`, ps);
  if (at.base !== null && at.offset === 0) return proc.mappings.get(at.base)!;
  throw new ScenarioError(`${path}.length`, 'required (it may be left out only when "at" is a bare mapping name: the whole mapping)');
}

function opSpec(o: Record<string, unknown>, path: string, op: OpName, procName: string, ctx: Ctx): OpSpec {
  const ps = ctx.geo.PAGE_SIZE;
  const proc = ctx.procs.get(procName)!;
  const at = (): AddrExpr => {
    if (o.at === undefined) throw new ScenarioError(`${path}.at`, `required: ${ADDR_WHAT}`);
    const a = addrExpr(o.at, `${path}.at`);
    resolveName(a, `${path}.at`, proc, procName);
    return a;
  };
  switch (op) {
    case 'mmap': {
      const as = o.as === undefined ? null : name(o.as, `${path}.as`, 'mapping name');
      if (as !== null && proc.mappings.has(as)) throw new ScenarioError(`${path}.as`, `process "${procName}" already has a mapping named "${as}"`);
      if (o.length === undefined) throw new ScenarioError(`${path}.length`, 'required: the length of the mapping');
      const length = positiveLength(o.length, `${path}.length`, ps);
      if (o.prot === undefined) throw new ScenarioError(`${path}.prot`, 'required: a list of "read", "write", "exec" ([] for PROT_NONE)');
      const { prot, names: protNames } = protList(o.prot, `${path}.prot`);
      const fl = arr(o.flags ?? [], `${path}.flags`, `a list of mmap flags (${Object.keys(MAP_FLAG_NAMES).join(', ')})`);
      let flags = 0;
      const flagNames: string[] = [];
      fl.forEach((f, i) => {
        const n = oneOf(f, `${path}.flags[${i}]`, Object.keys(MAP_FLAG_NAMES));
        if (flagNames.includes(n)) throw new ScenarioError(`${path}.flags[${i}]`, `${JSON.stringify(n)} is listed twice`);
        flagNames.push(n);
        flags |= MAP_FLAG_NAMES[n]!;
      });
      const addr = o.addr === undefined ? null : addrExpr(o.addr, `${path}.addr`);
      if (addr) resolveName(addr, `${path}.addr`, proc, procName);
      if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) !== 0 && addr === null) {
        throw new ScenarioError(`${path}.addr`, 'required with the "fixed" and "fixed_noreplace" flags');
      }
      const anon = (flags & MAP_ANONYMOUS) !== 0;
      let file: string | null = null;
      if (o.file !== undefined) {
        file = name(o.file, `${path}.file`, 'file name');
        if (anon) throw new ScenarioError(`${path}.file`, 'not allowed with the "anonymous" flag');
        if (!ctx.files.has(file)) {
          throw new ScenarioError(`${path}.file`, `no file named "${file}" in "files"${ctx.files.size ? ` (there are ${[...ctx.files.keys()].map((k) => `"${k}"`).join(', ')})` : ''}`);
        }
      } else if (!anon) {
        throw new ScenarioError(`${path}.flags`, 'expected the "anonymous" flag or a "file" to map');
      }
      const offset = o.offset === undefined ? 0 : pageMultiple(o.offset, `${path}.offset`, ps);
      if (offset !== 0 && file === null) throw new ScenarioError(`${path}.offset`, 'only for file mappings');
      if (o.hugepage_size !== undefined) {
        if ((flags & MAP_HUGETLB) === 0) throw new ScenarioError(`${path}.hugepage_size`, 'only with the "hugetlb" flag');
        const hs = sizeValue(o.hugepage_size, `${path}.hugepage_size`, SIZE_WHAT);
        const log = Math.log2(hs);
        if (!Number.isInteger(log) || log < 1 || log > 63) throw new ScenarioError(`${path}.hugepage_size`, `must be a power of two (MAP_HUGE_${sizeText(hs)}B does not exist)`);
        flags = (flags | (log << MAP_HUGE_SHIFT)) >>> 0;
      }
      if ((flags & MAP_POPULATE) !== 0 && length > ctx.machine.memory) {
        throw new ScenarioError(`${path}.length`, `with "populate", at most the machine's memory (${sizeText(ctx.machine.memory)})`);
      }
      if (as !== null) proc.mappings.set(as, length);
      return { op, as, addr, length, prot, protNames, flags, flagNames, file, offset };
    }
    case 'munmap':
    case 'zap': {
      const a = at();
      return { op, at: a, length: rangeLength(o, path, a, proc, ps) };
    }
    case 'mprotect': {
      const a = at();
      const length = rangeLength(o, path, a, proc, ps);
      if (o.prot === undefined) throw new ScenarioError(`${path}.prot`, 'required: a list of "read", "write", "exec" ([] for PROT_NONE)');
      const { prot, names } = protList(o.prot, `${path}.prot`);
      return { op, at: a, length, prot, protNames: names };
    }
    case 'madvise': {
      const a = at();
      const length = rangeLength(o, path, a, proc, ps);
      if (o.advice === undefined) throw new ScenarioError(`${path}.advice`, 'required: "hugepage" or "nohugepage"');
      return { op, at: a, length, advice: oneOf(o.advice, `${path}.advice`, ['hugepage', 'nohugepage'] as const) };
    }
    case 'touch': {
      const a = at();
      const access = o.access === undefined ? 'read' : oneOf(o.access, `${path}.access`, ['read', 'write', 'exec'] as const);
      return { op, at: a, access, count: count(o.count, `${path}.count`) };
    }
    case 'swap_out':
    case 'migrate':
      return { op, at: at(), count: count(o.count, `${path}.count`) };
    case 'write':
    case 'poke': {
      const a = at();
      return { op, at: a, bytes: data(o, path, 'bytes', 'text', false)! };
    }
    case 'read':
    case 'peek': {
      const a = at();
      const expectBytes = data(o, path, 'expect_bytes', 'expect_text', true);
      let length: number;
      if (o.length !== undefined) length = dataLength(o.length, `${path}.length`);
      else if (expectBytes) length = expectBytes.length;
      else throw new ScenarioError(`${path}.length`, `required: the number of bytes to read (1 … ${MAX_DATA_BYTES})`);
      if (expectBytes && expectBytes.length !== length) {
        throw new ScenarioError(`${path}.${o.expect_bytes !== undefined ? 'expect_bytes' : 'expect_text'}`, `holds ${expectBytes.length} bytes but "length" is ${length}`);
      }
      return { op, at: a, length, expectBytes };
    }
    case 'fork': {
      const child = name(o.child, `${path}.child`, 'process name');
      if (ctx.procs.has(child)) throw new ScenarioError(`${path}.child`, `a process named "${child}" already exists`);
      ctx.procs.set(child, { alive: true, exitedAt: '', mappings: new Map(proc.mappings) });
      return { op, child };
    }
    case 'exit':
      proc.alive = false;
      proc.exitedAt = path;
      return { op };
    case 'remap_pfn': {
      const a = at();
      if (o.pfn === undefined) throw new ScenarioError(`${path}.pfn`, `required: the first page frame number (in ${ps}-byte pages)`);
      const pfn = sizeValue(o.pfn, `${path}.pfn`, 'a page frame number: a number or "0x…"');
      if (pfn >= 2 ** 52 / ps) throw new ScenarioError(`${path}.pfn`, `must be below 2^52 / ${ps} (52-bit physical addresses)`);
      const length = rangeLength(o, path, a, proc, ps);
      const cache = o.cache === undefined ? null : oneOf(o.cache, `${path}.cache`, ['uncached', 'wc', 'device'] as const);
      return { op, at: a, pfn, length, cache };
    }
  }
}

/** One op object: `inStep` ops carry their "process"; processes[].ops get it from their process. */
function stepSpec(v: unknown, path: string, procName: string | null, ctx: Ctx): StepSpec {
  const o = obj(v, path, procName === null ? 'a step: {"process", "op", …}' : 'an op: {"op", …}');
  let proc = procName;
  if (proc === null) {
    if (o.process === undefined) throw new ScenarioError(`${path}.process`, 'required: the name of the process that runs this step');
    proc = name(o.process, `${path}.process`, 'process name');
  }
  const st = ctx.procs.get(proc);
  if (!st) {
    throw new ScenarioError(
      procName === null ? `${path}.process` : path,
      `no process named "${proc}" (processes are declared in "processes" or created by a "fork")`,
    );
  }
  if (!st.alive) throw new ScenarioError(procName === null ? `${path}.process` : path, `process "${proc}" has exited (at ${st.exitedAt})`);
  if (o.op === undefined) throw new ScenarioError(`${path}.op`, `required: one of ${OP_NAMES.join(', ')}`);
  const op = oneOf(o.op, `${path}.op`, OP_NAMES);
  onlyKeys(o, path, [...(procName === null ? ['process'] : []), 'op', 'expect', ...OP_FIELDS[op]], `"${op}"`);
  const expect = o.expect === undefined ? null : oneOf(o.expect, `${path}.expect`, OUTCOMES);
  return { path, process: proc, op: opSpec(o, path, op, proc, ctx), expect };
}

/** Check a parsed JSON value; throws ScenarioError (and nothing else) when it is not a scenario. */
export function parseScenario(v: unknown): Scenario {
  try {
    return parseUnchecked(v);
  } catch (e) {
    if (e instanceof ScenarioError) throw e;
    // A check this file forgot must still come out as a scenario error, never as a crash.
    throw new ScenarioError('scenario', `could not be read (${(e as Error)?.message ?? String(e)})`);
  }
}

function parseUnchecked(v: unknown): Scenario {
  const root = obj(v, 'scenario', 'a JSON object {"format": "mmulab-scenario/1", …}');
  onlyKeys(root, 'scenario', ['format', 'description', 'machine', 'files', 'processes', 'steps'], 'a scenario');
  if (root.format !== SCENARIO_FORMAT) throw new ScenarioError('format', `expected "${SCENARIO_FORMAT}", got ${describe(root.format)}`);
  const description = root.description === undefined ? '' : str(root.description, 'description');
  const { spec: machine, geo } = machineSpec(root.machine);

  const files = new Map<string, FileSpec>();
  arr(root.files ?? [], 'files').forEach((f, i) => {
    const spec = fileSpec(f, `files[${i}]`, geo);
    if (files.has(spec.name)) throw new ScenarioError(`files[${i}].name`, `a file named "${spec.name}" is already declared`);
    files.set(spec.name, spec);
  });

  const ctx: Ctx = { geo, machine, files, procs: new Map() };
  const procList = arr(root.processes ?? [], 'processes', 'an array of processes [{"name", "ops"?}]');
  const procNames: string[] = [];
  procList.forEach((p, i) => {
    const o = obj(p, `processes[${i}]`, 'a process: {"name", "ops"?}');
    onlyKeys(o, `processes[${i}]`, ['name', 'ops'], 'a process');
    const n = name(o.name, `processes[${i}].name`, 'process name');
    if (ctx.procs.has(n)) throw new ScenarioError(`processes[${i}].name`, `a process named "${n}" is already declared`);
    ctx.procs.set(n, { alive: true, exitedAt: '', mappings: new Map() });
    procNames.push(n);
  });
  if (procNames.length === 0) throw new ScenarioError('processes', 'expected at least one process');

  const steps: StepSpec[] = [];
  procList.forEach((p, i) => {
    const o = p as Record<string, unknown>;
    arr(o.ops ?? [], `processes[${i}].ops`).forEach((op, j) => {
      if (steps.length >= MAX_STEPS) throw new ScenarioError(`processes[${i}].ops[${j}]`, `too many steps (at most ${MAX_STEPS})`);
      steps.push(stepSpec(op, `processes[${i}].ops[${j}]`, procNames[i]!, ctx));
    });
  });
  arr(root.steps ?? [], 'steps').forEach((s, i) => {
    if (steps.length >= MAX_STEPS) throw new ScenarioError(`steps[${i}]`, `too many steps (at most ${MAX_STEPS})`);
    steps.push(stepSpec(s, `steps[${i}]`, null, ctx));
  });
  return { description, machine, files: [...files.values()], processes: procNames, steps };
}

/** Parse scenario text (a file's contents); a JSON syntax error is a ScenarioError too. */
export function parseScenarioText(text: string): Scenario {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ScenarioError('scenario', `not valid JSON (${(e as Error).message})`);
  }
  return parseScenario(v);
}
