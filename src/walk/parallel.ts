/**
 * The counting walk of count.ts, run by a pool of worker_threads over the one SharedArrayBuffer
 * that holds physical memory. The result — entries, leaves, leavesByLevel, checksum — is exactly
 * countWalk's over the same roots and range.
 *
 * How the range is split. Splitting only at top-level (pgd) boundaries gives no parallelism for
 * the common case of one populated top-level entry (an 8M-page dense space is 32 GiB, inside one
 * 512 GiB pgd entry of x86-64 or ARM64 4K/48), so the planner refines where the work is:
 *
 * 1. Every top-level entry in range is a unit. A unit whose entry the walker would descend (a
 *    table, by the same none/bad/leaf/present tests pagewalk.ts applies, folding included) is
 *    expandable; the heaviest expandable unit is replaced by the entries of the table it points
 *    to, until no unit weighs more than 1/(16·workers) of the total. Weights (entries the walk
 *    will read): 1 for a hole or a leaf; 1 + ptes in range for a pte table; for a higher table,
 *    1 + the weights of its own entries in range, a table below them counted as full — an upper
 *    bound, exact one level above the pte tables. The smallest unit is one pmd entry (one pte
 *    table). Planning reads, on the calling thread, the tables the walk will read above the pte
 *    level, and writes nothing; runs of holes and leaves become one unit.
 * 2. Consecutive light units merge into chunks of about that size; each chunk is an address range
 *    [start, end) of one root, walked with countWalk by whichever worker takes it next (a shared
 *    counter: Atomics.add), heaviest chunks first.
 * 3. A chunk walk counts every entry it passes through, so a table entry that was split across k
 *    chunks (an expanded unit) is counted k times: the planner subtracts k - 1 for each. Leaves
 *    are never split (only descended entries are), so leaves and the checksum just add up.
 *
 * Errors: a chunk that throws (a table pointer outside memory) is remembered with its address
 * rank; chunks after the lowest failed rank are skipped, and the promise rejects with the error of
 * the lowest-addressed failed chunk — the one the serial walk would have thrown. The pool stays
 * usable. As in the serial walk, p?d_clear_bad may clear a bad upper entry while walking.
 *
 * The worker script is a separate bundle, dist/walk-worker.js (entry src/walk/walk-worker.ts),
 * found next to the bundle that holds this code; from TypeScript sources (tests) pass
 * `workerPath` to a build of walk-worker.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parentPort, Worker } from 'node:worker_threads';
import { GEOMETRIES, type Geometry, type LevelName } from '../arch/geometry';
import { BadTablePointerError } from '../arch/pgtable';
import { PhysAddrError } from '../mem/errors';
import { PhysMem } from '../mem/physmem';
import type { ImageRoot, LoadedImage } from '../mm/image';
import { Machine } from '../mm/machine';
import { countWalk, type CountResult } from './count';

// ---- planning --------------------------------------------------------------------------------

/** One piece of work: [start, end) of roots[root]. `rank` is its place in address order. */
export interface WalkChunk {
  readonly root: number;
  readonly start: number;
  readonly end: number;
  /** Estimated entries to read (see the file comment). */
  readonly weight: number;
  readonly rank: number;
}

export interface WalkPlan {
  /** In address order (rank = index). */
  readonly chunks: readonly WalkChunk[];
  /** Entries counted more than once by the chunk walks (split table entries), to subtract. */
  readonly correction: number;
  /** Tables opened by the planner. */
  readonly expansions: number;
  /** Entries read to weigh tables before opening them. */
  readonly reads: number;
}

/** Chunks aimed at per worker: enough for dynamic hand-out to even out the finish. */
const CHUNKS_PER_WORKER = 16;
/** Tables the planner may open, and entries it may read to weigh them: bound its time. */
const MAX_EXPANSIONS = 1024;
const MAX_PLAN_READS = 1 << 20;

const LOGICAL: readonly LevelName[] = ['pgd', 'p4d', 'pud', 'pmd'];
const PMD = 3;

const KIND_STOP = 0; // a hole, a leaf, or an entry the walker does not descend: read once
const KIND_PTES = 1; // an entry pointing to a pte table: read it and its ptes in range
const KIND_TABLE = 2; // an entry pointing to a table above the pte level: expandable

class Unit {
  expanded = false;
  constructor(
    readonly root: number,
    readonly a: number,
    public b: number,
    /**
     * The logical level whose table the entry points to is level + 1: the end of the entry's chain
     * of folded levels (for a hole or a leaf, the level it was read at).
     */
    readonly level: number,
    /** The entry's physical address. */
    readonly ptr: number,
    readonly kind: number,
    public weight: number,
  ) {}
}

/** A max-heap of units by weight (the planner opens the heaviest table first). */
class UnitHeap {
  private readonly items: Unit[] = [];
  get size(): number {
    return this.items.length;
  }
  peek(): Unit {
    return this.items[0]!;
  }
  push(u: Unit): void {
    this.items.push(u);
    this.up(this.items.length - 1);
  }
  pop(): Unit {
    const top = this.items[0]!;
    const last = this.items.pop()!;
    if (this.items.length > 0) {
      this.items[0] = last;
      this.down(0);
    }
    return top;
  }
  private up(i: number): void {
    const it = this.items;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (it[p]!.weight >= it[i]!.weight) break;
      [it[p], it[i]] = [it[i]!, it[p]!];
      i = p;
    }
  }
  private down(i: number): void {
    const it = this.items;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < it.length && it[l]!.weight > it[m]!.weight) m = l;
      if (r < it.length && it[r]!.weight > it[m]!.weight) m = r;
      if (m === i) return;
      [it[m], it[i]] = [it[i]!, it[m]!];
      i = m;
    }
  }
}

/**
 * Split the counting walk of `roots` over [start, end) into chunks for `parts` workers. Exported
 * for tests and the benchmark; parallelCountWalk calls it.
 */
export function planCountWalk(machine: Machine, roots: readonly ImageRoot[], start: number, end: number, parts: number): WalkPlan {
  const pt = machine.pgtable;
  const bits = machine.bits;
  const mem = machine.mem;
  const u32 = mem.u32;
  const physBase = mem.physBase;
  const pageSize = pt.PAGE_SIZE;
  const folded = LOGICAL.map((l) => pt.isFolded(l));
  const span = LOGICAL.map((l) => pt.span(l));
  // The pointer to the first entry, for `addr`, of the table a level-(l - 1) entry points to:
  // p?d_offset, which checks that the table lies inside memory (BadTablePointerError otherwise).
  const offset = [
    (p: number, _a: number) => p,
    (p: number, a: number) => pt.p4dOffset(p, a),
    (p: number, a: number) => pt.pudOffset(p, a),
    (p: number, a: number) => pt.pmdOffset(p, a),
  ];
  // A folded level shares its parent's entry: the chain of levels starting at l that test one
  // physical entry ends at endOf[l], the level whose table that entry points to.
  const endOf = LOGICAL.map((_, l) => {
    let r = l;
    while (r < PMD && folded[r + 1]) r++;
    return r;
  });
  // Whether the walker goes below an entry, level by level: pagewalk.ts's tests, with Pgtable's
  // folding-aware predicates (a folded level's parent tests are trivial). The walker tests one
  // physical entry at every level of its chain, so all of them must pass.
  const test = [
    (lo: number, hi: number) => !pt.pgdNone(lo, hi) && !pt.pgdBad(lo, hi),
    (lo: number, hi: number) => !pt.p4dNone(lo, hi) && !pt.p4dBad(lo, hi),
    (lo: number, hi: number) => !pt.pudNone(lo, hi) && !pt.pudLeaf(lo, hi) && pt.pudPresent(lo, hi),
    (lo: number, hi: number) => !pt.pmdNone(lo, hi) && !pt.pmdLeaf(lo, hi) && pt.pmdPresent(lo, hi),
  ];
  const descends = (l: number, lo: number, hi: number): boolean => {
    for (let x = l; x <= endOf[l]!; x++) if (!test[x]!(lo, hi)) return false;
    return true;
  };
  const nextBoundary = (l: number, addr: number, e: number): number => {
    const b = (Math.floor(addr / span[l]!) + 1) * span[l]!;
    return b < e ? b : e;
  };
  // The weight of the level-l entry (lo, hi) over [a, b) without opening its table: 1 for a hole
  // or a leaf, 1 + its ptes for a pte table, the most it could hold for a higher table.
  const quick = (l: number, lo: number, hi: number, a: number, b: number): number => {
    if (!descends(l, lo, hi)) return 1;
    if (endOf[l] === PMD) return 1 + Math.ceil((b - a) / pageSize);
    return Math.max(1, (b - a) / pageSize);
  };
  // The weight of a table entry (its chain ends at level r; its table is of level r + 1) over
  // [a, b): 1 + every entry of that table in range weighed by quick(). Exact where the entries
  // below are holes, leaves and pte tables; never below the truth (a table further down counts as
  // full), so no heavy subtree hides in a light-looking unit. (Weighing a few sampled entries
  // instead is not safe: eight populated pud entries out of 512 were all missed in a test, and 2M
  // pages went to one worker.) Past the read budget, the bound is the range itself.
  let reads = 0;
  const lookahead = (r: number, ptr: number, a: number, b: number): number => {
    const child = r + 1;
    const n = Math.ceil(b / span[child]!) - Math.floor(a / span[child]!);
    if (reads + n > MAX_PLAN_READS) return Math.max(1, (b - a) / pageSize);
    reads += n;
    let p: number;
    try {
      p = offset[child]!(ptr, a);
    } catch (e) {
      if (!(e instanceof PhysAddrError)) throw e;
      return 1; // a table outside memory: the walk fails at once
    }
    let sum = 1;
    let addr = a;
    if (child === PMD) {
      // The common case, a table of pmds: its entries are tested for real (a pte level is never
      // folded), so the architecture's own predicates serve, called directly.
      const { pmdNone, pmdLeaf, pmdPresent } = bits;
      const pmdSpan = span[PMD]!;
      do {
        const next = Math.min(b, (Math.floor(addr / pmdSpan) + 1) * pmdSpan);
        const i = (p - physBase) / 4;
        const lo = u32[i]!;
        const hi = u32[i + 1]!;
        sum += pmdNone(lo, hi) || pmdLeaf(lo, hi) || !pmdPresent(lo, hi) ? 1 : 1 + Math.ceil((next - addr) / pageSize);
        p += 8;
        addr = next;
      } while (addr !== b);
      return sum;
    }
    do {
      const next = nextBoundary(child, addr, b);
      const i = (p - physBase) / 4;
      sum += quick(child, u32[i]!, u32[i + 1]!, addr, next);
      p += 8;
      addr = next;
    } while (addr !== b);
    return sum;
  };

  const units: Unit[] = [];
  const heap = new UnitHeap();
  let total = 0;
  const add = (u: Unit) => {
    units.push(u);
    total += u.weight;
    if (u.kind === KIND_TABLE) heap.push(u);
  };
  // The level-l entries of one table from pointer p (the entry for a) over [a, b), as units; runs
  // of holes and leaves (read once each) become one unit, so sparse tables cost no object per slot.
  // The table lies inside memory (checked by p?d_offset, or by the caller for a root table).
  const addEntries = (root: number, l: number, p: number, a: number, b: number): Unit[] => {
    const out: Unit[] = [];
    let run: Unit | null = null;
    let addr = a;
    do {
      const next = nextBoundary(l, addr, b);
      const i = (p - physBase) / 4;
      const lo = u32[i]!;
      const hi = u32[i + 1]!;
      if (!descends(l, lo, hi)) {
        if (run) {
          run.b = next;
          run.weight++;
        } else {
          run = new Unit(root, addr, next, l, p, KIND_STOP, 1);
          out.push(run);
        }
      } else {
        run = null;
        const r = endOf[l]!;
        if (r === PMD) out.push(new Unit(root, addr, next, r, p, KIND_PTES, 1 + Math.ceil((next - addr) / pageSize)));
        else out.push(new Unit(root, addr, next, r, p, KIND_TABLE, lookahead(r, p, addr, next)));
      }
      p += 8;
      addr = next;
    } while (addr !== b);
    return out;
  };
  roots.forEach((r, ri) => {
    const s = Math.max(start, r.start);
    const e = Math.min(end, r.end);
    if (!(s < e)) return;
    const first = pt.pgdOffset(r.table, s);
    // (Not pgdOffset(e - 1): with e = 2^64, e - 1 is 2^64 again in a double.)
    const last = first + (Math.ceil(e / span[0]!) - Math.floor(s / span[0]!) - 1) * 8;
    // A root table (partly) outside memory: one unit, for a worker to fail on as the serial walk does.
    if (!(mem.contains(first, 8) && mem.contains(last, 8))) add(new Unit(ri, s, e, 0, first, KIND_STOP, 1));
    else for (const u of addEntries(ri, 0, first, s, e)) add(u);
  });

  const target = () => total / (CHUNKS_PER_WORKER * Math.max(1, parts));
  const expandedRanges: Array<[number, number, number]> = [];
  let expansions = 0;
  while (heap.size > 0 && expansions < MAX_EXPANSIONS && heap.peek().weight > target()) {
    const u = heap.pop();
    const child = u.level + 1;
    let children: Unit[];
    try {
      children = addEntries(u.root, child, offset[child]!(u.ptr, u.a), u.a, u.b);
    } catch (e) {
      if (!(e instanceof PhysAddrError)) throw e;
      // The table pointer is outside memory: leave the unit whole for a worker to fail on.
      total -= u.weight - 1;
      u.weight = 1;
      continue;
    }
    expansions++;
    u.expanded = true;
    total -= u.weight;
    expandedRanges.push([u.root, u.a, u.b]);
    for (const c of children) add(c);
  }

  // Merge consecutive light units (address order) into chunks of about the target weight.
  const live = units.filter((u) => !u.expanded).sort((x, y) => x.root - y.root || x.a - y.a);
  const limit = target();
  const chunks: WalkChunk[] = [];
  let cur: { root: number; start: number; end: number; weight: number } | null = null;
  for (const u of live) {
    if (cur && cur.root === u.root && cur.end === u.a && cur.weight + u.weight <= limit) {
      cur.end = u.b;
      cur.weight += u.weight;
      continue;
    }
    if (cur) chunks.push({ ...cur, rank: chunks.length });
    cur = { root: u.root, start: u.a, end: u.b, weight: u.weight };
  }
  if (cur) chunks.push({ ...cur, rank: chunks.length });

  // Each expanded entry is counted once by every chunk whose range meets it.
  let correction = 0;
  for (const [root, a, b] of expandedRanges) {
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      // first chunk not entirely before [a, b): (root, end) > (root, a)
      const mid = (lo + hi) >> 1;
      const c = chunks[mid]!;
      if (c.root < root || (c.root === root && c.end <= a)) lo = mid + 1;
      else hi = mid;
    }
    let k = 0;
    for (let i = lo; i < chunks.length && chunks[i]!.root === root && chunks[i]!.start < b; i++) k++;
    correction += k - 1;
  }
  return { chunks, correction, expansions, reads };
}

// ---- the worker side ---------------------------------------------------------------------------

interface MachineSpec {
  readonly key: number;
  readonly buffer: SharedArrayBuffer;
  readonly physBase: number;
  readonly size: number;
  /** A geometry name, or the Geometry object itself when it is not one of GEOMETRIES. */
  readonly geometry: string | Geometry;
  readonly maxPhyAddr?: number;
  readonly nxe?: boolean;
}

interface JobMessage {
  readonly type: 'job';
  readonly job: number;
  readonly machine: MachineSpec;
  readonly roots: readonly ImageRoot[];
  /** (root, start, end, rank) per chunk, in hand-out order. */
  readonly chunks: Float64Array;
  /** [next chunk to take, lowest failed rank (INT32_MAX: none)]. */
  readonly control: Int32Array;
}

interface SerializedError {
  readonly rank: number;
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
  readonly props: Record<string, unknown>;
}

interface DoneMessage {
  readonly type: 'done';
  readonly job: number;
  readonly entries: number;
  /** Leaves by hardware level + 1 (-1 … 5); their sum is the leaf count. */
  readonly byLevel: number[];
  readonly checksum: bigint;
  readonly chunks: number;
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly waitSeconds: number;
  readonly error: SerializedError | null;
}

const NO_ERROR = 0x7fff_ffff;
/** Machines a worker keeps built (one per memory and configuration), least recently used dropped. */
const WORKER_MACHINES = 4;

function serializeError(e: unknown, rank: number): SerializedError {
  if (e instanceof Error) {
    const props: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e)) {
      const t = typeof v;
      if (t === 'string' || t === 'number' || t === 'bigint' || t === 'boolean') props[k] = v;
    }
    return { rank, name: e.name, message: e.message, stack: e.stack, props };
  }
  return { rank, name: 'Error', message: String(e), stack: undefined, props: {} };
}

function workerMachine(cache: Map<number, Machine>, spec: MachineSpec): Machine {
  let m = cache.get(spec.key);
  if (m) {
    cache.delete(spec.key); // re-insert: most recently used last
  } else {
    const mem = new PhysMem({ size: spec.size, physBase: spec.physBase, buffer: spec.buffer });
    const geometry = typeof spec.geometry === 'string' ? (GEOMETRIES as Record<string, Geometry>)[spec.geometry]! : spec.geometry;
    m = new Machine({ geometry, mem, adoptMemory: true, maxPhyAddr: spec.maxPhyAddr, nxe: spec.nxe });
    if (cache.size >= WORKER_MACHINES) cache.delete(cache.keys().next().value!);
  }
  cache.set(spec.key, m);
  return m;
}

/**
 * This thread's CPU time and run-queue wait in ns (Linux /proc/thread-self/schedstat: time on a
 * CPU, time runnable but waiting for one), or null elsewhere. A walk slower than its CPU time
 * says is a walk that waited for a core.
 */
function schedstat(): [number, number] | null {
  try {
    const f = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ');
    return [Number(f[0]), Number(f[1])];
  } catch {
    return null;
  }
}

function runJob(cache: Map<number, Machine>, msg: JobMessage): DoneMessage {
  const t0 = process.hrtime.bigint();
  const s0 = schedstat();
  const ctl = msg.control;
  const chunks = msg.chunks;
  const n = chunks.length / 4;
  let entries = 0;
  const byLevel = [0, 0, 0, 0, 0, 0, 0];
  let checksum = 0n;
  let walked = 0;
  let error: SerializedError | null = null;
  let machine: Machine | null = null;
  try {
    machine = workerMachine(cache, msg.machine);
  } catch (e) {
    error = serializeError(e, -1);
    Atomics.store(ctl, 1, -1);
  }
  for (;;) {
    const i = Atomics.add(ctl, 0, 1);
    if (i >= n || machine === null) break;
    const root = chunks[i * 4]!;
    const rank = chunks[i * 4 + 3]!;
    // A chunk after a failed one in address order: the serial walk never got there.
    if (rank > Atomics.load(ctl, 1)) continue;
    try {
      const r = countWalk(machine, [msg.roots[root]!], chunks[i * 4 + 1]!, chunks[i * 4 + 2]!);
      entries += r.entries;
      for (const [lv, c] of Object.entries(r.leavesByLevel)) byLevel[Number(lv) + 1]! += c;
      checksum += r.checksum;
      walked++;
    } catch (e) {
      if (error === null || rank < error.rank) error = serializeError(e, rank);
      let cur = Atomics.load(ctl, 1);
      while (rank < cur) {
        const seen = Atomics.compareExchange(ctl, 1, cur, rank);
        if (seen === cur) break;
        cur = seen;
      }
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const s1 = s0 && schedstat();
  const cpuSeconds = s1 ? (s1[0] - s0![0]) / 1e9 : NaN;
  const waitSeconds = s1 ? (s1[1] - s0![1]) / 1e9 : NaN;
  return { type: 'done', job: msg.job, entries, byLevel, checksum, chunks: walked, seconds, cpuSeconds, waitSeconds, error };
}

/** The body of dist/walk-worker.js: answer job messages until terminated. */
export function runWalkWorker(): void {
  const port = parentPort;
  if (!port) throw new Error('runWalkWorker: not running in a worker thread');
  const cache = new Map<number, Machine>();
  port.on('message', (msg: JobMessage) => {
    if (msg && msg.type === 'job') port.postMessage(runJob(cache, msg));
  });
}

// ---- the pool ------------------------------------------------------------------------------------

/** Error classes a worker's error is rebuilt as, by name (instanceof works on the caller's side). */
const ERROR_CLASSES: Record<string, { prototype: Error }> = {
  BadTablePointerError,
  PhysAddrError,
  RangeError,
  TypeError,
  Error,
};

function reviveError(s: SerializedError): Error {
  const e = Object.create((ERROR_CLASSES[s.name] ?? Error).prototype) as Error;
  Object.defineProperty(e, 'message', { value: s.message, writable: true, configurable: true });
  Object.defineProperty(e, 'stack', { value: s.stack ?? `${s.name}: ${s.message}`, writable: true, configurable: true });
  Object.assign(e, s.props);
  e.name = s.name;
  return e;
}

export interface WalkPoolOptions {
  /** Worker threads (default 2). */
  readonly workers?: number;
  /** The worker script (default: walk-worker.js next to the bundle holding this code). */
  readonly workerPath?: string | URL;
}

export interface RangeOptions {
  readonly start?: number;
  readonly end?: number;
}

/** What a parallel walk adds to CountResult: how the work was split and shared. */
export interface ParallelCountResult extends CountResult {
  readonly parallel: {
    readonly chunks: number;
    readonly expansions: number;
    readonly correction: number;
    /** Seconds spent planning on the calling thread. */
    readonly planSeconds: number;
    /**
     * Per worker: chunks walked; seconds from receiving the job to posting the result; of those,
     * seconds on a CPU and seconds waiting for one (Linux only, NaN elsewhere).
     */
    readonly workers: ReadonlyArray<{ readonly chunks: number; readonly seconds: number; readonly cpuSeconds: number; readonly waitSeconds: number }>;
  };
}

function defaultWorkerPath(): string {
  return fileURLToPath(new URL('./walk-worker.js', import.meta.url));
}

type Target = Machine | LoadedImage;

function isImage(t: Target): t is LoadedImage {
  return (t as LoadedImage).machine instanceof Machine && Array.isArray((t as LoadedImage).roots);
}

function checkAddress(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 2 ** 64) throw new RangeError(`${what} ${v}: expected an integer address in [0, 2^64]`);
}

interface PendingJob {
  readonly job: number;
  readonly results: Array<DoneMessage | null>;
  remaining: number;
  resolve(results: DoneMessage[]): void;
  reject(e: Error): void;
}

/**
 * Worker threads that run counting walks, created once (a worker costs tens of milliseconds to
 * start) and reused; idle workers do not keep the process alive. Jobs run one at a time, in the
 * order they were asked for. close() terminates the workers.
 */
export class WalkPool {
  readonly size: number;
  private readonly workers: Worker[] = [];
  private closed = false;
  private tail: Promise<unknown> = Promise.resolve();
  private pending: PendingJob | null = null;
  private nextJob = 1;
  private readonly keys = new WeakMap<Machine, number>();
  private nextKey = 1;

  constructor(opts: WalkPoolOptions = {}) {
    const size = opts.workers ?? 2;
    if (!Number.isInteger(size) || size < 1 || size > 256) throw new RangeError(`workers ${size}: expected an integer 1 … 256`);
    this.size = size;
    const raw = opts.workerPath ?? defaultWorkerPath();
    const path = raw instanceof URL ? fileURLToPath(raw) : raw;
    if (!existsSync(path)) {
      throw new Error(`walk worker script ${path} not found: build it (npm run build makes dist/walk-worker.js) or pass workerPath`);
    }
    for (let i = 0; i < size; i++) {
      const w = new Worker(path);
      w.unref();
      w.on('message', (msg: DoneMessage) => this.onDone(i, msg));
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`walk worker ${i} exited unexpectedly (code ${code})`));
      });
      this.workers.push(w);
    }
  }

  /** countWalk's result for `roots` (default: the image's) over [start, end), computed by the workers. */
  countWalk(target: Target, roots?: readonly ImageRoot[] | null, opts: RangeOptions = {}): Promise<ParallelCountResult> {
    const run = () => this.run(target, roots, opts);
    const p = this.tail.then(run, run);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Terminate every worker; pending and later walks reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pending?.reject(new Error('walk pool closed'));
    this.pending = null;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private async run(target: Target, rootsArg: readonly ImageRoot[] | null | undefined, opts: RangeOptions): Promise<ParallelCountResult> {
    if (this.closed) throw new Error('walk pool closed');
    const machine = isImage(target) ? target.machine : target;
    const roots = rootsArg ?? (isImage(target) ? target.roots : null);
    if (!roots) throw new TypeError('parallel walk of a Machine: give its roots (ImageRoot[])');
    const start = opts.start ?? 0;
    const end = opts.end ?? 2 ** 64;
    checkAddress(start, 'start');
    checkAddress(end, 'end');
    const t0 = process.hrtime.bigint();
    const plan = planCountWalk(machine, roots, start, end, this.size);
    const planSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    let results: DoneMessage[] = [];
    if (plan.chunks.length > 0) {
      // Heaviest first, so the last chunks taken are the small ones (longest-processing-time order).
      const order = [...plan.chunks].sort((x, y) => y.weight - x.weight || x.rank - y.rank);
      const chunks = new Float64Array(order.length * 4);
      order.forEach((c, i) => chunks.set([c.root, c.start, c.end, c.rank], i * 4));
      const control = new Int32Array(new SharedArrayBuffer(8));
      control[1] = NO_ERROR;
      results = await this.dispatch({ type: 'job', job: 0, machine: this.spec(machine), roots: roots.map((r) => ({ ...r })), chunks, control });
    }
    const failed = results.filter((r) => r.error !== null).map((r) => r.error!);
    if (failed.length > 0) {
      failed.sort((x, y) => x.rank - y.rank);
      throw reviveError(failed[0]!);
    }
    let entries = 0;
    let leaves = 0;
    let checksum = 0n;
    const byLevel = [0, 0, 0, 0, 0, 0, 0];
    for (const r of results) {
      entries += r.entries;
      checksum += r.checksum;
      r.byLevel.forEach((c, i) => (byLevel[i]! += c));
    }
    entries -= plan.correction;
    // Ascending numeric keys, as countWalk's (JSON.stringify orders integer-like keys so).
    const leavesByLevel: Record<string, number> = {};
    byLevel.forEach((c, i) => {
      leaves += c;
      if (c) leavesByLevel[String(i - 1)] = c;
    });
    return {
      entries,
      leaves,
      leavesByLevel,
      checksum: BigInt.asUintN(64, checksum),
      seconds: Number(process.hrtime.bigint() - t0) / 1e9,
      parallel: {
        chunks: plan.chunks.length,
        expansions: plan.expansions,
        correction: plan.correction,
        planSeconds,
        workers: results.map((r) => ({ chunks: r.chunks, seconds: r.seconds, cpuSeconds: r.cpuSeconds, waitSeconds: r.waitSeconds })),
      },
    };
  }

  private spec(machine: Machine): MachineSpec {
    let key = this.keys.get(machine);
    if (key === undefined) {
      key = this.nextKey++;
      this.keys.set(machine, key);
    }
    const geo = machine.geo;
    const named = (GEOMETRIES as Record<string, Geometry>)[geo.name] === geo;
    const mem = machine.mem;
    const spec: MachineSpec = { key, buffer: mem.buffer, physBase: mem.physBase, size: mem.size, geometry: named ? geo.name : geo };
    if (geo.arch !== 'x86_64') return spec;
    // The x86 options that shape ArchBits: MAXPHYADDR, and EFER.NXE (whether pgprot sets XD, bit 63).
    const nxe = (machine.bits.pgprot({ exec: false }) >> 63n) === 1n;
    return { ...spec, maxPhyAddr: machine.bits.physAddrBits, nxe };
  }

  private dispatch(msg: JobMessage): Promise<DoneMessage[]> {
    return new Promise((resolve, reject) => {
      const job = this.nextJob++;
      this.pending = { job, results: this.workers.map(() => null), remaining: this.workers.length, resolve, reject };
      for (const w of this.workers) {
        w.ref(); // a walk in progress keeps the process alive
        w.postMessage({ ...msg, job });
      }
    });
  }

  private onDone(i: number, msg: DoneMessage): void {
    const p = this.pending;
    if (!p || msg.type !== 'done' || msg.job !== p.job || p.results[i] !== null) return;
    p.results[i] = msg;
    this.workers[i]!.unref();
    if (--p.remaining === 0) {
      this.pending = null;
      p.resolve(p.results as DoneMessage[]);
    }
  }

  /** A worker died (an uncaught error, or it exited): the walk in progress fails, the pool closes. */
  private fail(e: Error): void {
    if (this.closed) return;
    const p = this.pending;
    this.pending = null;
    void this.close();
    p?.reject(e);
  }
}

export interface ParallelWalkOptions extends RangeOptions {
  /** Workers of a temporary pool (default 2), when no `pool` is given. */
  readonly workers?: number;
  /** Run on this pool (not closed afterwards). */
  readonly pool?: WalkPool;
  readonly workerPath?: string | URL;
}

/**
 * countWalk(machine, roots, start, end) computed by worker threads. With `pool` it runs there;
 * otherwise a pool of `workers` threads is created for this walk and closed after it (its start-up
 * time is then part of the call).
 */
export async function parallelCountWalk(
  target: Target,
  roots?: readonly ImageRoot[] | null,
  opts: ParallelWalkOptions = {},
): Promise<ParallelCountResult> {
  if (opts.pool) return opts.pool.countWalk(target, roots, opts);
  const pool = new WalkPool({ workers: opts.workers, workerPath: opts.workerPath });
  try {
    return await pool.countWalk(target, roots, opts);
  } finally {
    await pool.close();
  }
}
