/**
 * The page-walk conformance scenario format ("mmulab-pagewalk-scenario/1"), parsed and validated.
 *
 * The format is specified by the corpus README (test/fixtures/pagewalk-conformance/README.md,
 * "Scenario file schema"). A scenario is input from outside (DESIGN.md, "Errors from outside"):
 * every error names the JSON path and what was expected there, e.g.
 * `vmas[2].start: expected a hex string "0x…"`. Keys this version does not know are ignored, so
 * later versions of the format still load.
 *
 * Unsigned-long quantities are hex strings that may exceed 2^53 ("0x10000000000000000" is 2^64).
 * Addresses become numbers: a page-aligned value below or at 2^64 is exact in a double
 * (DESIGN.md, data representation 3) and the parser checks that the conversion was exact. Page
 * offsets and walk_page_mapping's first_index/nr stay bigint: the walker does their arithmetic
 * modulo 2^64.
 */
import { GEOMETRY_NAMES, geometry, levelShift, lowestAlias, physicalOf, LEVELS } from '../../arch/geometry';
import type { Geometry, GeometryName, LevelName } from '../../arch/geometry';
import { VM_FLAG_NAMES } from '../../mm/vm-flags';

export const SCENARIO_FORMAT = 'mmulab-pagewalk-scenario/1';

/** The mm_walk_ops callbacks, by their C names (the scenario's spelling). */
export const CALLBACK_NAMES = [
  'pgd_entry',
  'p4d_entry',
  'pud_entry',
  'pmd_entry',
  'pte_entry',
  'pte_hole',
  'hugetlb_entry',
  'test_walk',
  'pre_vma',
  'post_vma',
  'install_pte',
] as const;
export type CallbackName = (typeof CALLBACK_NAMES)[number];

export const CALL_FNS = [
  'walk_page_range',
  'walk_page_range_mm',
  'walk_page_range_novma',
  'walk_page_range_debug',
  'walk_kernel_page_table_range',
  'walk_kernel_page_table_range_lockless',
  'walk_page_range_vma',
  'walk_page_vma',
  'walk_page_mapping',
] as const;
export type CallFn = (typeof CALL_FNS)[number];

export type EntryKind = 'none' | 'table' | 'leaf' | 'page' | 'swap' | 'bad';
const ENTRY_KINDS: readonly EntryKind[] = ['none', 'table', 'leaf', 'page', 'swap', 'bad'];

export type RootHalf = 'both' | 'user' | 'kernel';
export type ActionName = 'SUBTREE' | 'CONTINUE' | 'AGAIN';
const ACTION_NAMES: readonly ActionName[] = ['SUBTREE', 'CONTINUE', 'AGAIN'];

/** One entry to install: `{"level", "va", "kind", "pfn" | "val"}`. */
export interface EntrySpec {
  /** The logical level named in the file (a folded level names the physical entry it aliases). */
  readonly level: LevelName;
  readonly va: number;
  readonly kind: EntryKind;
  /** leaf/page: the first page's frame number. */
  readonly pfn?: number;
  /** swap: the swap/migration offset. */
  readonly val?: number;
}

export interface RootSpec {
  readonly name: string;
  readonly half: RootHalf;
  readonly entries: readonly EntrySpec[];
}

export type SplitMode = 'table' | 'zap';

export interface VmaSpec {
  readonly id: string;
  readonly start: number;
  readonly end: number;
  readonly flags: readonly string[];
  /** vm_pgoff, an unsigned long. */
  readonly pgoff: bigint;
  readonly file: string | null;
  readonly hugepageSize: number | null;
  readonly split: SplitMode;
}

export type CallSpec =
  | { readonly fn: 'walk_page_range' | 'walk_page_range_mm'; readonly mm: 'mm' | null; readonly start: number; readonly end: number }
  | {
      readonly fn: 'walk_page_range_novma' | 'walk_page_range_debug';
      readonly mm: 'mm' | 'init_mm' | null;
      readonly start: number;
      readonly end: number;
      readonly pgd: string | null;
    }
  | {
      readonly fn: 'walk_kernel_page_table_range' | 'walk_kernel_page_table_range_lockless';
      readonly start: number;
      readonly end: number;
      readonly pgd: string | null;
    }
  | { readonly fn: 'walk_page_range_vma'; readonly vma: string; readonly start: number; readonly end: number }
  | { readonly fn: 'walk_page_vma'; readonly vma: string }
  | { readonly fn: 'walk_page_mapping'; readonly mapping: string; readonly firstIndex: bigint; readonly nr: bigint };

/** What install_pte writes: a page, a swap entry or nothing. */
export type PteSpec = { readonly kind: 'page'; readonly pfn: number } | { readonly kind: 'swap'; readonly val: number } | { readonly kind: 'none' };

/** One answer of the script: selectors (absent = any), counters, outcomes. */
export interface RuleSpec {
  readonly cb: CallbackName;
  readonly seq?: number;
  readonly addr?: number;
  readonly depth?: number;
  /** undefined: any VMA; null: walk->vma == NULL; else a VMA id. */
  readonly vma?: string | null;
  readonly entry?: string;
  readonly skip: number;
  /** Infinity when the file gives no `times`. */
  readonly times: number;
  readonly ret: number;
  readonly action?: ActionName;
  readonly pte?: PteSpec;
}

export interface PteMapFailSpec {
  readonly addr: number;
  readonly times: number;
  readonly effect: 'transient' | 'clear';
}

export interface InjectSpec {
  readonly pteMapFail: readonly PteMapFailSpec[];
  readonly allocLimit: number | null;
}

/**
 * One callback invocation, with the README's fields. Hex quantities are canonical strings
 * (lowercase, "0x", no padding) so that expected and produced events compare as values.
 */
export interface TraceEvent {
  seq: number;
  cb: CallbackName;
  entry?: string;
  val?: string;
  hmask?: string;
  addr?: string;
  next?: string;
  start?: string;
  end?: string;
  depth?: number;
  vma: string | null;
  action?: ActionName;
  pte?: string;
  ret?: number;
}

/** The trace fields in the README's order (the order a produced event is written in). */
export const TRACE_FIELDS = ['seq', 'cb', 'entry', 'val', 'hmask', 'addr', 'next', 'start', 'end', 'depth', 'vma', 'action', 'pte', 'ret'] as const;

/** A non-none entry of the final tree. */
export interface TreeEntry {
  level: LevelName;
  va: string;
  kind: Exclude<EntryKind, 'none'>;
  pfn?: string;
  val?: number;
}

export interface ExpectedSpec {
  readonly ret: number;
  readonly callbacks: number;
  readonly trace: readonly TraceEvent[];
  /** Per root name, in the order the file gives them. */
  readonly tree: Readonly<Record<string, readonly TreeEntry[]>>;
}

export interface Scenario {
  readonly format: string;
  readonly name: string;
  readonly rule: string;
  readonly seedLines: readonly string[];
  readonly geometry: GeometryName;
  readonly geo: Geometry;
  /** In file order; always includes "mm" and "init_mm". */
  readonly roots: readonly RootSpec[];
  readonly vmas: readonly VmaSpec[];
  readonly call: CallSpec;
  readonly ops: readonly CallbackName[];
  readonly rules: readonly RuleSpec[];
  readonly inject: InjectSpec;
  readonly expected: ExpectedSpec;
}

/** A scenario that does not follow the schema: `path` is the JSON path, the message says what was expected. */
export class ScenarioError extends Error {
  constructor(
    readonly path: string,
    readonly expected: string,
    got?: unknown,
  ) {
    super(`${path || '(top level)'}: expected ${expected}${got === undefined ? '' : `, got ${describe(got)}`}`);
    this.name = 'ScenarioError';
  }
}

function describe(v: unknown): string {
  if (v === MISSING) return 'nothing (the key is missing)';
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

// ---- small typed readers, each naming its path ----------------------------------------------------

const MISSING = Symbol('missing');
type Json = unknown;
type Obj = Record<string, Json>;

const TWO_64 = 1n << 64n;
const HEX_RE = /^0x[0-9a-fA-F]+$/;

function isObj(v: Json): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

function get(o: Obj, key: string): Json {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : MISSING;
}

function obj(v: Json, path: string): Obj {
  if (!isObj(v)) throw new ScenarioError(path, 'an object', v);
  return v;
}

function arr(v: Json, path: string): Json[] {
  if (!Array.isArray(v)) throw new ScenarioError(path, 'an array', v);
  return v;
}

function str(v: Json, path: string): string {
  if (typeof v !== 'string') throw new ScenarioError(path, 'a string', v);
  return v;
}

function oneOf<T extends string>(v: Json, path: string, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ScenarioError(path, `one of ${allowed.map((a) => `"${a}"`).join(', ')}`, v);
  }
  return v as T;
}

function int(v: Json, path: string, min = -Infinity): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new ScenarioError(path, 'a JSON integer', v);
  if (v < min) throw new ScenarioError(path, `an integer >= ${min}`, v);
  return v;
}

/** An unsigned long: a "0x…" string whose value is at most 2^64 (2^64 itself is the end of the space). */
function hexBig(v: Json, path: string): bigint {
  if (typeof v !== 'string' || !HEX_RE.test(v)) throw new ScenarioError(path, 'a hex string "0x…"', v);
  const b = BigInt(v);
  if (b > TWO_64) throw new ScenarioError(path, 'a value no larger than 2^64 (0x10000000000000000)', v);
  return b;
}

/** A hex quantity that must be exact as a number (addresses: page-aligned, so always exact). */
function hexNum(v: Json, path: string, what = 'an exactly representable value (page-aligned above 2^53)'): number {
  const b = hexBig(v, path);
  const n = Number(b);
  if (BigInt(n) !== b) throw new ScenarioError(path, what, v);
  return n;
}

/** A frame number: below 2^53 (frame numbers of 52-bit physical addresses are far smaller). */
function hexPfn(v: Json, path: string): number {
  const b = hexBig(v, path);
  if (b >= 1n << 53n) throw new ScenarioError(path, 'a frame number below 2^53', v);
  return Number(b);
}

function required(o: Obj, key: string, path: string): Json {
  const v = get(o, key);
  if (v === MISSING) throw new ScenarioError(join(path, key), 'a value (the key is required)', MISSING);
  return v;
}

/** Canonical form of a hex quantity: lowercase, "0x", no leading zeros. */
export function hex(v: number | bigint): string {
  return `0x${BigInt(v).toString(16)}`;
}

// ---- the parts -------------------------------------------------------------------------------------

function allowedKinds(geo: Geometry, level: LevelName): EntryKind[] {
  const phys = physicalOf(geo, level);
  const low = lowestAlias(geo, phys);
  const kinds: EntryKind[] = ['none'];
  if (phys !== 'pte') kinds.push('table');
  if (low === 'pmd' || (low === 'pud' && geo.pudLeaf)) kinds.push('leaf');
  if (phys === 'pte') kinds.push('page');
  if (phys === 'pte' || low === 'pmd') kinds.push('swap');
  if (low === 'pgd' || low === 'p4d') kinds.push('bad');
  return kinds;
}

/** [lo, hi) of the VAs a root of this half maps (bigint: 2^64 is a bound). */
function halfRange(geo: Geometry, half: RootHalf): [bigint, bigint][] {
  const va = BigInt(geo.vaBits);
  switch (half) {
    case 'user':
      return [[0n, 1n << va]];
    case 'kernel':
      return [[TWO_64 - (1n << va), TWO_64]];
    case 'both':
      return [
        [0n, 1n << (va - 1n)],
        [TWO_64 - (1n << (va - 1n)), TWO_64],
      ];
  }
}

function parseEntry(v: Json, path: string, geo: Geometry, half: RootHalf): EntrySpec {
  const o = obj(v, path);
  const level = oneOf(required(o, 'level', path), join(path, 'level'), LEVELS);
  const vaBig = hexBig(required(o, 'va', path), join(path, 'va'));
  const kind = oneOf(required(o, 'kind', path), join(path, 'kind'), ENTRY_KINDS);
  const allowed = allowedKinds(geo, level);
  if (!allowed.includes(kind)) {
    throw new ScenarioError(
      join(path, 'kind'),
      `one of ${allowed.map((k) => `"${k}"`).join(', ')} at level ${level} of ${geo.name}`,
      kind,
    );
  }
  const span = 1n << BigInt(levelShift(geo, level));
  if (vaBig % span !== 0n) throw new ScenarioError(join(path, 'va'), `a VA aligned to the ${level} span ${hex(span)}`, o['va']);
  if (!halfRange(geo, half).some(([lo, hi]) => vaBig >= lo && vaBig + span <= hi)) {
    throw new ScenarioError(join(path, 'va'), `a VA inside the root's "${half}" range`, o['va']);
  }
  const va = Number(vaBig);
  if (kind === 'leaf' || kind === 'page') {
    const pfn = hexPfn(required(o, 'pfn', path), join(path, 'pfn'));
    if (kind === 'leaf') {
      const pages = span / BigInt(geo.PAGE_SIZE);
      if (BigInt(pfn) % pages !== 0n) throw new ScenarioError(join(path, 'pfn'), `a pfn aligned to the leaf's ${pages} pages`, o['pfn']);
    }
    return { level, va, kind, pfn };
  }
  if (kind === 'swap') return { level, va, kind, val: int(required(o, 'val', path), join(path, 'val'), 0) };
  return { level, va, kind };
}

/** README: "Entries never overlap" (a `table` is an empty lower table; nothing is installed under a leaf). */
function checkNoOverlap(entries: readonly EntrySpec[], geo: Geometry, path: string): void {
  const spans = entries
    .map((e, i) => {
      const start = BigInt(e.va);
      return { i, start, end: start + (1n << BigInt(levelShift(geo, e.level))) };
    })
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : Number(b.end - a.end)));
  let prev: (typeof spans)[number] | null = null;
  for (const s of spans) {
    if (prev !== null && s.start < prev.end) {
      const [a, b] = prev.i < s.i ? [prev.i, s.i] : [s.i, prev.i];
      throw new ScenarioError(join(path, b), `an entry that does not overlap ${join(path, a)} (README: entries never overlap)`, hex(entries[b]!.va));
    }
    if (prev === null || s.end > prev.end) prev = s;
  }
}

function parseRoots(v: Json, geo: Geometry): RootSpec[] {
  const path = 'roots';
  const o = obj(v, path);
  const halves: RootHalf[] = geo.rootHalves === 'both' ? ['both'] : ['user', 'kernel'];
  const roots: RootSpec[] = [];
  for (const [name, rv] of Object.entries(o)) {
    const rp = join(path, name);
    const r = obj(rv, rp);
    const half = oneOf(required(r, 'half', rp), join(rp, 'half'), halves);
    const entries = arr(required(r, 'entries', rp), join(rp, 'entries')).map((e, i) =>
      parseEntry(e, join(join(rp, 'entries'), i), geo, half),
    );
    checkNoOverlap(entries, geo, join(rp, 'entries'));
    roots.push({ name, half, entries });
  }
  for (const name of ['mm', 'init_mm']) {
    if (!roots.some((r) => r.name === name)) throw new ScenarioError(join(path, name), 'a root (every scenario has "mm" and "init_mm")', MISSING);
  }
  return roots;
}

function parseVmas(v: Json, geo: Geometry): VmaSpec[] {
  const path = 'vmas';
  const ids = new Set<string>();
  return arr(v, path).map((x, i) => {
    const p = join(path, i);
    const o = obj(x, p);
    const id = str(required(o, 'id', p), join(p, 'id'));
    if (ids.has(id)) throw new ScenarioError(join(p, 'id'), 'a VMA id not used before', id);
    ids.add(id);
    const start = hexNum(required(o, 'start', p), join(p, 'start'));
    const end = hexNum(required(o, 'end', p), join(p, 'end'));
    if (start % geo.PAGE_SIZE !== 0) throw new ScenarioError(join(p, 'start'), `a page-aligned address (PAGE_SIZE ${hex(geo.PAGE_SIZE)})`, o['start']);
    if (end % geo.PAGE_SIZE !== 0) throw new ScenarioError(join(p, 'end'), `a page-aligned address (PAGE_SIZE ${hex(geo.PAGE_SIZE)})`, o['end']);
    if (!(start < end)) throw new ScenarioError(join(p, 'end'), 'an address above start (VMAs are non-empty)', o['end']);
    const flags = arr(required(o, 'flags', p), join(p, 'flags')).map((f, j) => {
      const name = str(f, join(join(p, 'flags'), j));
      if (VM_FLAG_NAMES[name] === undefined) throw new ScenarioError(join(join(p, 'flags'), j), 'a vm flag name (VM_READ, VM_PFNMAP, VM_HUGETLB, …)', f);
      return name;
    });
    const pg = get(o, 'pgoff');
    const pgoff = pg === MISSING ? 0n : hexBig(pg, join(p, 'pgoff'));
    if (pgoff >= TWO_64) throw new ScenarioError(join(p, 'pgoff'), 'an unsigned long (below 2^64)', pg);
    const fv = get(o, 'file');
    const file = fv === MISSING || fv === null ? null : str(fv, join(p, 'file'));
    const hv = get(o, 'hugepage_size');
    const hugepageSize = hv === MISSING || hv === null ? null : hexNum(hv, join(p, 'hugepage_size'));
    if (hugepageSize !== null && !geo.hugetlbSizes.includes(hugepageSize)) {
      throw new ScenarioError(join(p, 'hugepage_size'), `one of the hugetlb sizes of ${geo.name}: ${geo.hugetlbSizes.map((s) => hex(s)).join(', ')}`, hv);
    }
    if (flags.includes('VM_HUGETLB') && hugepageSize === null) {
      throw new ScenarioError(join(p, 'hugepage_size'), 'a huge page size (the VMA has VM_HUGETLB)', hv === MISSING ? MISSING : hv);
    }
    const sv = get(o, 'split');
    const split = sv === MISSING ? 'table' : oneOf(sv, join(p, 'split'), ['table', 'zap'] as const);
    return { id, start, end, flags, pgoff, file, hugepageSize, split };
  });
}

function parseCall(v: Json, roots: readonly RootSpec[], vmas: readonly VmaSpec[]): CallSpec {
  const path = 'call';
  const o = obj(v, path);
  const fn = oneOf(required(o, 'fn', path), join(path, 'fn'), CALL_FNS);
  const ap = join(path, 'args');
  const a = obj(required(o, 'args', path), ap);
  const addr = (key: string): number => hexNum(required(a, key, ap), join(ap, key));
  const rootName = (key: string): string | null => {
    const x = required(a, key, ap);
    if (x === null) return null;
    const s = str(x, join(ap, key));
    if (!roots.some((r) => r.name === s)) throw new ScenarioError(join(ap, key), `null or a root name (${roots.map((r) => `"${r.name}"`).join(', ')})`, x);
    return s;
  };
  const vmaId = (key: string): string => {
    const s = str(required(a, key, ap), join(ap, key));
    if (!vmas.some((m) => m.id === s)) throw new ScenarioError(join(ap, key), `a VMA id (${vmas.map((m) => `"${m.id}"`).join(', ') || 'none defined'})`, s);
    return s;
  };
  switch (fn) {
    case 'walk_page_range':
    case 'walk_page_range_mm': {
      const m = required(a, 'mm', ap);
      const mm = m === null ? null : oneOf(m, join(ap, 'mm'), ['mm'] as const);
      return { fn, mm, start: addr('start'), end: addr('end') };
    }
    case 'walk_page_range_novma':
    case 'walk_page_range_debug': {
      const m = required(a, 'mm', ap);
      const mm = m === null ? null : oneOf(m, join(ap, 'mm'), ['mm', 'init_mm'] as const);
      return { fn, mm, start: addr('start'), end: addr('end'), pgd: get(a, 'pgd') === MISSING ? null : rootName('pgd') };
    }
    case 'walk_kernel_page_table_range':
    case 'walk_kernel_page_table_range_lockless':
      return { fn, start: addr('start'), end: addr('end'), pgd: get(a, 'pgd') === MISSING ? null : rootName('pgd') };
    case 'walk_page_range_vma':
      return { fn, vma: vmaId('vma'), start: addr('start'), end: addr('end') };
    case 'walk_page_vma':
      return { fn, vma: vmaId('vma') };
    case 'walk_page_mapping': {
      const firstIndex = hexBig(required(a, 'first_index', ap), join(ap, 'first_index'));
      const nr = hexBig(required(a, 'nr', ap), join(ap, 'nr'));
      if (firstIndex >= TWO_64) throw new ScenarioError(join(ap, 'first_index'), 'an unsigned long (below 2^64)', a['first_index']);
      if (nr >= TWO_64) throw new ScenarioError(join(ap, 'nr'), 'an unsigned long (below 2^64)', a['nr']);
      return { fn, mapping: str(required(a, 'mapping', ap), join(ap, 'mapping')), firstIndex, nr };
    }
  }
}

function parseOps(v: Json): CallbackName[] {
  const seen = new Set<string>();
  return arr(v, 'ops').map((x, i) => {
    const name = oneOf(x, join('ops', i), CALLBACK_NAMES);
    if (seen.has(name)) throw new ScenarioError(join('ops', i), 'each callback name once', x);
    seen.add(name);
    return name;
  });
}

function parsePteSpec(v: Json, path: string): PteSpec {
  const o = obj(v, path);
  const kind = oneOf(required(o, 'kind', path), join(path, 'kind'), ['page', 'swap', 'none'] as const);
  if (kind === 'page') return { kind, pfn: hexPfn(required(o, 'pfn', path), join(path, 'pfn')) };
  if (kind === 'swap') return { kind, val: int(required(o, 'val', path), join(path, 'val'), 0) };
  return { kind };
}

function parseRule(v: Json, path: string): RuleSpec {
  const o = obj(v, path);
  const cb = oneOf(required(o, 'cb', path), join(path, 'cb'), CALLBACK_NAMES);
  const opt = <T>(key: string, read: (x: Json, p: string) => T): T | undefined => {
    const x = get(o, key);
    return x === MISSING ? undefined : read(x, join(path, key));
  };
  const seq = opt('seq', (x, p) => int(x, p, 0));
  const addr = opt('addr', (x, p) => hexNum(x, p));
  const depth = opt('depth', (x, p) => int(x, p, -1));
  const vma = opt('vma', (x, p) => (x === null ? null : str(x, p)));
  const entry = opt('entry', (x, p) => str(x, p));
  const skip = opt('skip', (x, p) => int(x, p, 0)) ?? 0;
  const times = opt('times', (x, p) => int(x, p, 0)) ?? Infinity;
  const ret = opt('ret', (x, p) => int(x, p)) ?? 0;
  const action = opt('action', (x, p) => oneOf(x, p, ACTION_NAMES));
  if (action !== undefined && cb !== 'pud_entry' && cb !== 'pmd_entry') {
    throw new ScenarioError(join(path, 'action'), 'no action: only pud_entry and pmd_entry rules set walk->action', action);
  }
  const pte = opt('pte', parsePteSpec);
  if (pte !== undefined && cb !== 'install_pte') throw new ScenarioError(join(path, 'pte'), 'no pte: only install_pte rules write a pte', o['pte']);
  const rule: RuleSpec = { cb, skip, times, ret };
  return Object.assign(
    rule,
    seq === undefined ? {} : { seq },
    addr === undefined ? {} : { addr },
    depth === undefined ? {} : { depth },
    vma === undefined ? {} : { vma },
    entry === undefined ? {} : { entry },
    action === undefined ? {} : { action },
    pte === undefined ? {} : { pte },
  );
}

function parseScript(v: Json): RuleSpec[] {
  if (v === MISSING) return [];
  const o = obj(v, 'script');
  const rules = get(o, 'rules');
  if (rules === MISSING) return [];
  return arr(rules, 'script.rules').map((r, i) => parseRule(r, join('script.rules', i)));
}

function parseInject(v: Json): InjectSpec {
  if (v === MISSING || v === null) return { pteMapFail: [], allocLimit: null };
  const o = obj(v, 'inject');
  const pm = get(o, 'pte_map_fail');
  const pteMapFail =
    pm === MISSING || pm === null
      ? []
      : arr(pm, 'inject.pte_map_fail').map((x, i) => {
          const p = join('inject.pte_map_fail', i);
          const e = obj(x, p);
          return {
            addr: hexNum(required(e, 'addr', p), join(p, 'addr')),
            times: int(required(e, 'times', p), join(p, 'times'), 0),
            effect: oneOf(required(e, 'effect', p), join(p, 'effect'), ['transient', 'clear'] as const),
          };
        });
  const al = get(o, 'alloc_limit');
  const allocLimit = al === MISSING || al === null ? null : int(al, 'inject.alloc_limit', 0);
  return { pteMapFail, allocLimit };
}

/** A value string (`none`, `table`, `bad`, `leaf:<pfn>`, `page:<pfn>`, `swap:<val>`), canonicalised. */
function parseValueString(v: Json, path: string): string {
  if (typeof v === 'string') {
    if (v === 'none' || v === 'table' || v === 'bad') return v;
    const m = /^(leaf|page):(0x[0-9a-fA-F]+)$/.exec(v);
    if (m) return `${m[1]}:${hex(BigInt(m[2]!))}`;
    const s = /^swap:(\d+)$/.exec(v);
    if (s) return `swap:${BigInt(s[1]!).toString()}`;
  }
  throw new ScenarioError(path, 'a value string: none, table, bad, leaf:0x…, page:0x… or swap:<n>', v);
}

function parseTraceEvent(v: Json, path: string): TraceEvent {
  const o = obj(v, path);
  const ev: TraceEvent = {
    seq: int(required(o, 'seq', path), join(path, 'seq'), 0),
    cb: oneOf(required(o, 'cb', path), join(path, 'cb'), CALLBACK_NAMES),
    vma: null,
  };
  const vm = required(o, 'vma', path);
  ev.vma = vm === null ? null : str(vm, join(path, 'vma'));
  const opt = (key: string): Json => get(o, key);
  if (opt('entry') !== MISSING) ev.entry = str(o['entry'], join(path, 'entry'));
  if (opt('val') !== MISSING) ev.val = parseValueString(o['val'], join(path, 'val'));
  for (const key of ['hmask', 'addr', 'next', 'start', 'end'] as const) {
    if (opt(key) !== MISSING) ev[key] = hex(hexBig(o[key], join(path, key)));
  }
  if (opt('depth') !== MISSING) ev.depth = int(o['depth'], join(path, 'depth'), -1);
  if (opt('action') !== MISSING) ev.action = oneOf(o['action'], join(path, 'action'), ACTION_NAMES);
  if (opt('pte') !== MISSING) ev.pte = parseValueString(o['pte'], join(path, 'pte'));
  if (opt('ret') !== MISSING) ev.ret = int(o['ret'], join(path, 'ret'));
  return orderTraceEvent(ev);
}

/** The same event with its keys in the README's order (for printing; comparison ignores order). */
export function orderTraceEvent(ev: TraceEvent): TraceEvent {
  const out: Record<string, unknown> = {};
  for (const k of TRACE_FIELDS) if (ev[k] !== undefined) out[k] = ev[k];
  return out as unknown as TraceEvent;
}

function parseTreeEntry(v: Json, path: string): TreeEntry {
  const o = obj(v, path);
  const level = oneOf(required(o, 'level', path), join(path, 'level'), LEVELS);
  const va = hex(hexBig(required(o, 'va', path), join(path, 'va')));
  const kind = oneOf(required(o, 'kind', path), join(path, 'kind'), ['table', 'leaf', 'page', 'swap', 'bad'] as const);
  if (kind === 'leaf' || kind === 'page') return { level, va, kind, pfn: hex(hexBig(required(o, 'pfn', path), join(path, 'pfn'))) };
  if (kind === 'swap') return { level, va, kind, val: int(required(o, 'val', path), join(path, 'val'), 0) };
  return { level, va, kind };
}

function parseExpected(v: Json, roots: readonly RootSpec[]): ExpectedSpec {
  const path = 'expected';
  const o = obj(v, path);
  const ret = int(required(o, 'ret', path), join(path, 'ret'));
  const trace = arr(required(o, 'trace', path), join(path, 'trace')).map((e, i) => parseTraceEvent(e, join(join(path, 'trace'), i)));
  trace.forEach((e, i) => {
    if (e.seq !== i) throw new ScenarioError(join(join(path, 'trace'), i) + '.seq', `${i} (events are numbered from 0 in order)`, e.seq);
  });
  const cv = get(o, 'callbacks');
  const callbacks = cv === MISSING ? trace.length : int(cv, join(path, 'callbacks'), 0);
  if (callbacks !== trace.length) throw new ScenarioError(join(path, 'callbacks'), `the trace length ${trace.length}`, callbacks);
  const tp = join(path, 'tree');
  const t = obj(required(o, 'tree', path), tp);
  const tree: Record<string, TreeEntry[]> = {};
  for (const [name, list] of Object.entries(t)) {
    if (!roots.some((r) => r.name === name)) throw new ScenarioError(join(tp, name), `a root name (${roots.map((r) => `"${r.name}"`).join(', ')})`, name);
    tree[name] = arr(list, join(tp, name)).map((e, i) => parseTreeEntry(e, join(join(tp, name), i)));
  }
  return { ret, callbacks, trace, tree };
}

/** Parse and validate one scenario (already JSON-decoded). Throws ScenarioError naming the path. */
export function parseScenario(json: unknown): Scenario {
  const o = obj(json, '');
  const format = str(required(o, 'format', ''), 'format');
  if (format !== SCENARIO_FORMAT) throw new ScenarioError('format', `"${SCENARIO_FORMAT}"`, format);
  const name = str(required(o, 'name', ''), 'name');
  const rv = get(o, 'rule');
  const rule = rv === MISSING ? '' : str(rv, 'rule');
  const sv = get(o, 'seed_lines');
  const seedLines = sv === MISSING ? [] : arr(sv, 'seed_lines').map((x, i) => str(x, join('seed_lines', i)));
  const gname = required(o, 'geometry', '');
  if (typeof gname !== 'string' || !(GEOMETRY_NAMES as readonly string[]).includes(gname)) {
    throw new ScenarioError('geometry', `a known geometry (${GEOMETRY_NAMES.join(', ')})`, gname);
  }
  const geo = geometry(gname);
  const roots = parseRoots(required(o, 'roots', ''), geo);
  const vmas = parseVmas(required(o, 'vmas', ''), geo);
  const call = parseCall(required(o, 'call', ''), roots, vmas);
  const ops = parseOps(required(o, 'ops', ''));
  const rules = parseScript(get(o, 'script'));
  const inject = parseInject(get(o, 'inject'));
  const expected = parseExpected(required(o, 'expected', ''), roots);
  return { format, name, rule, seedLines, geometry: geo.name, geo, roots, vmas, call, ops, rules, inject, expected };
}

/** Parse scenario text; a JSON syntax error is reported like any other (with the source name). */
export function parseScenarioText(text: string, source = 'scenario'): Scenario {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ScenarioError('', `JSON (${source}: ${(e as Error).message})`);
  }
  return parseScenario(json);
}
