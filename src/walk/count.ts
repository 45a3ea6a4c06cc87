/**
 * The counting walk behind `mmulab walk` (FORMATS.md): a walk_page_range-style walk of raw tables
 * from their roots, counting descriptors read, leaves per hardware level, and a checksum a native
 * walker over the same memory.bin reproduces.
 *
 * - entries: every slot of every table reached inside the range, empty ones included — each
 *   physical entry is seen exactly once, by its lowest logical alias's entry callback or by pte_hole;
 * - leaves: present pages and blocks (Linux's present: PROT_NONE entries count);
 * - checksum: sum over leaves of (output address >> 12), modulo 2^64.
 */
import { lowestAlias, physicalOf, type LevelName } from '../arch/geometry';
import type { ImageRoot } from '../mm/image';
import type { Machine } from '../mm/machine';
import { walkKernelPageTableRangeLockless, type MmWalkOps } from './pagewalk';

export interface CountResult {
  entries: number;
  leaves: number;
  /** Keyed by hardware level number (x86-64 1…5, ARM64 -1…3). */
  leavesByLevel: Record<string, number>;
  checksum: bigint;
  seconds: number;
}

/** Limits of the counting state, as a const enum so the bundler writes the values into the callbacks. */
const enum Lim {
  /**
   * An integer pfn sum is moved into the double total once it passes 2^30. Each pte adds less than
   * 2^20 to either sum, so neither ever leaves the int32 range the optimiser keeps it in.
   */
  SUM = 1073741824,
  /**
   * The double total of pfns is flushed into the bigint at 2^52, before it could lose a unit (one
   * flush adds at most 2^31 · 2^20).
   */
  FLUSH = 4503599627370496,
}

/** Slots of the per-entry counters (Int32Array): what the pte callback updates. */
const enum N {
  /** pte_entry calls since the last fold. */
  PTES,
  /** Of those, entries that are not present (the rest are leaves). */
  ABSENT,
  /** Sum of leafPfnLow over present ptes since the last fold. */
  PFN_LOW,
  /** Sum of leafPfnHigh over present ptes since the last fold. */
  PFN_HIGH,
}

/**
 * The running totals of one machine's counting walks.
 *
 * The pte callback is the hot path: it runs once per entry (8M times for an 8M-page image), so its
 * state is an Int32Array of its own, over a SharedArrayBuffer of its own. Such an array is never on
 * the JavaScript heap, so the optimiser compiles each counter update to one load, one integer add
 * and one store at a fixed address — with no object to map-check and no tagged number to untag,
 * retag or overflow-check, as fields of a counter object would need — and the pfn sum runs as two
 * integer sums (leafPfnHigh, leafPfnLow) rather than a floating-point one, whose add latency would
 * bound the loop. The integer counters are folded into the double totals below at every pmd entry
 * (at most PTRS_PER_PTE pte calls happen in between, so the counts stay far inside int32) and
 * whenever a sum passes Lim.SUM.
 */
class Totals {
  // 16 bytes of counters in the middle of 192: worker threads of one process (parallel.ts) each
  // make their own, and small buffers come from the process's one allocator, so two threads'
  // counters could share a cache line and bounce it between cores at every entry (it cost the
  // parallel walk 40% of its speed). 64 bytes of padding on either side keep them apart.
  readonly n = new Int32Array(new SharedArrayBuffer(192), 64, 4);
  /** Entries seen by the other callbacks: pgd…pmd entries and holes. */
  entries = 0;
  ptes = 0;
  pteLeaves = 0;
  pmdLeaves = 0;
  pudLeaves = 0;
  /** Sum of leaf pfns, below 2^53: flushed into `total` at Lim.FLUSH. */
  acc = 0;
  total = 0n;

  constructor(private readonly lowSpan: number) {}

  reset(): void {
    this.n.fill(0);
    this.entries = this.ptes = this.pteLeaves = this.pmdLeaves = this.pudLeaves = this.acc = 0;
    this.total = 0n;
  }

  /** Fold the pte counters into the totals. */
  fold(): void {
    const n = this.n;
    this.ptes += n[N.PTES]!;
    this.pteLeaves += n[N.PTES]! - n[N.ABSENT]!;
    n[N.PTES] = 0;
    n[N.ABSENT] = 0;
    this.foldSums();
  }

  /** Fold the two pfn sums into the double total. */
  foldSums(): void {
    const n = this.n;
    this.addPfn(n[N.PFN_HIGH]! * this.lowSpan + n[N.PFN_LOW]!);
    n[N.PFN_HIGH] = 0;
    n[N.PFN_LOW] = 0;
  }

  addPfn(pfns: number): void {
    this.acc += pfns;
    if (this.acc >= Lim.FLUSH) {
      this.total += BigInt(this.acc);
      this.acc = 0;
    }
  }
}

interface Counting {
  ops: MmWalkOps<null>;
  totals: Totals;
}

function buildCounting(machine: Machine): Counting {
  const g = machine.geo;
  const pt = machine.pgtable;
  const bits = machine.bits;
  const tested = new Set<LevelName>(g.physicalLevels.map((p) => lowestAlias(g, p)));
  const totals = new Totals(2 ** (32 - g.PAGE_SHIFT));
  const n = totals.n;
  // The architecture's own functions, taken once: a pte level is never folded, so Pgtable's
  // folding wrappers add nothing here, and one call less keeps the pte callback small enough
  // for the optimiser to inline it whole into the walker's pte loop.
  const ptePresent = bits.ptePresent;
  const pfnLow = bits.leafPfnLow;
  const pfnHigh = bits.leafPfnHigh;
  const u32 = pt.u32;
  // The entries' high words as a view of their own, one word further on: an entry at index i of
  // u32 has its high word at index i of u32hi, so both reads share one index computation.
  const u32hi = new Uint32Array(u32.buffer, u32.byteOffset + 4, u32.length - 1);
  const base = pt.physBase;
  const ops: MmWalkOps<null> = {
    pteEntry(pte) {
      n[N.PTES]++;
      const i = (pte - base) / 4; // the walker hands over pointers into checked tables
      const lo = u32[i]!;
      const hi = u32hi[i]!;
      if (ptePresent(lo, hi)) {
        const low = (n[N.PFN_LOW] += pfnLow('pte', lo, hi));
        const high = (n[N.PFN_HIGH] += pfnHigh('pte', lo, hi));
        if (low > Lim.SUM || high > Lim.SUM) totals.foldSums();
      } else n[N.ABSENT]++;
      return 0;
    },
    pteHole() {
      totals.entries++;
      return 0;
    },
  };
  // The level above the ptes is always the pmd's (folded configurations fold pud, p4d and pgd into
  // it, never it into them), so pmd_entry sees every entry of that level, and it runs before each
  // walk_pte_range: folding the counters here bounds what they gather to one pte table.
  if (!tested.has('pmd')) throw new Error(`countWalk: ${g.name} has no pmd entries to count`);
  ops.pmdEntry = (pmd) => {
    totals.fold();
    totals.entries++;
    const i = (pmd - base) / 4;
    const lo = u32[i]!;
    const hi = u32hi[i]!;
    if (pt.pmdPresent(lo, hi) && pt.pmdLeaf(lo, hi)) {
      totals.pmdLeaves++;
      totals.addPfn(bits.leafPfn('pmd', lo, hi));
    }
    return 0;
  };
  if (tested.has('pud')) {
    ops.pudEntry = (pud) => {
      totals.entries++;
      const i = (pud - base) / 4;
      const lo = u32[i]!;
      const hi = u32hi[i]!;
      if (pt.pudLeaf(lo, hi) && pt.pudPresent(lo, hi)) {
        totals.pudLeaves++;
        totals.addPfn(bits.leafPfn('pud', lo, hi));
      }
      return 0;
    };
  }
  const counting = (): number => {
    totals.entries++;
    return 0;
  };
  if (tested.has('p4d')) ops.p4dEntry = counting;
  if (tested.has('pgd')) ops.pgdEntry = counting;
  return { ops, totals };
}

// One set of callbacks per machine: a fresh closure per walk would change the walker's call
// targets every time, and the optimiser would throw away the code it inlined them into.
const countingOf = new WeakMap<Machine, Counting>();

/** Walk [start, end) of every root (clipped to the root's own range) and count. */
export function countWalk(machine: Machine, roots: readonly ImageRoot[], start = 0, end = 2 ** 64): CountResult {
  let counting = countingOf.get(machine);
  if (!counting) countingOf.set(machine, (counting = buildCounting(machine)));
  const { ops, totals: c } = counting;
  const g = machine.geo;
  c.reset();
  const t0 = process.hrtime.bigint();
  for (const r of roots) {
    const s = Math.max(start, r.start);
    const e = Math.min(end, r.end);
    if (s >= e) continue;
    const ret = walkKernelPageTableRangeLockless(machine.initMm, s, e, ops, r.table, null);
    if (ret !== 0) throw new Error(`walk of ${r.name} returned ${ret}`);
  }
  c.fold();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // Keyed by hardware level (x86-64 1…5, ARM64 -1…3).
  const leavesByLevel: Record<string, number> = {};
  const hw = (level: LevelName) => String(g.hwLevel[physicalOf(g, level)]!);
  if (c.pudLeaves) leavesByLevel[hw('pud')] = c.pudLeaves;
  if (c.pmdLeaves) leavesByLevel[hw('pmd')] = c.pmdLeaves;
  if (c.pteLeaves) leavesByLevel[hw('pte')] = c.pteLeaves;
  return {
    entries: c.entries + c.ptes,
    leaves: c.pteLeaves + c.pmdLeaves + c.pudLeaves,
    leavesByLevel,
    // pfns count PAGE_SIZE units; the checksum counts 4 KiB units: scaled once, here.
    checksum: BigInt.asUintN(64, (c.total + BigInt(c.acc)) * BigInt(g.PAGE_SIZE / 4096)),
    seconds,
  };
}
