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

/**
 * The double-precision sum is flushed into the bigint total at 2^52, before it could lose a unit
 * (each pfn added is below 2^40). A const enum, so the bundler writes the value into the callbacks.
 */
const enum Sum {
  FLUSH = 4503599627370496,
}

/**
 * The walk's running totals. Plain number fields only, so the callbacks below inline into the
 * walker's loops and allocate nothing: leaves are kept per logical level (the hardware level is
 * applied once at the end), and the checksum is summed in a double that is flushed into a bigint
 * before it could lose precision.
 */
class Counter {
  entries = 0;
  pteLeaves = 0;
  pmdLeaves = 0;
  pudLeaves = 0;
  acc = 0;
  total = 0n;
  flush(): void {
    this.total += BigInt(this.acc);
    this.acc = 0;
  }
}

function buildOps(machine: Machine): MmWalkOps<Counter> {
  const g = machine.geo;
  const pt = machine.pgtable;
  const bits = machine.bits;
  const tested = new Set<LevelName>(g.physicalLevels.map((p) => lowestAlias(g, p)));
  // The architecture's own functions, taken once: a pte level is never folded, so Pgtable's
  // folding wrappers add nothing here, and one call less keeps the pte callback small enough
  // for the optimiser to inline it whole into the walker's pte loop.
  const ptePresent = bits.ptePresent;
  const leafPfn = bits.leafPfn;
  const u32 = pt.u32;
  const base = pt.physBase;
  const ops: MmWalkOps<Counter> = {
    pteEntry(pte, _addr, _next, walk) {
      const c = walk.private_;
      c.entries++;
      const i = (pte - base) / 4;
      const lo = u32[i]!;
      const hi = u32[i + 1]!;
      if (ptePresent(lo, hi)) {
        c.pteLeaves++;
        c.acc += leafPfn('pte', lo, hi);
        if (c.acc >= Sum.FLUSH) c.flush();
      }
      return 0;
    },
    pteHole(_addr, _next, _depth, walk) {
      walk.private_.entries++;
      return 0;
    },
  };
  if (tested.has('pmd')) {
    ops.pmdEntry = (pmd, _a, _n, walk) => {
      const c = walk.private_;
      c.entries++;
      const i = (pmd - base) / 4; // the walker hands over pointers into checked tables
      const lo = u32[i]!;
      const hi = u32[i + 1]!;
      if (pt.pmdPresent(lo, hi) && pt.pmdLeaf(lo, hi)) {
        c.pmdLeaves++;
        c.acc += leafPfn('pmd', lo, hi);
        if (c.acc >= Sum.FLUSH) c.flush();
      }
      return 0;
    };
  }
  if (tested.has('pud')) {
    ops.pudEntry = (pud, _a, _n, walk) => {
      const c = walk.private_;
      c.entries++;
      const i = (pud - base) / 4; // the walker hands over pointers into checked tables
      const lo = u32[i]!;
      const hi = u32[i + 1]!;
      if (pt.pudLeaf(lo, hi) && pt.pudPresent(lo, hi)) {
        c.pudLeaves++;
        c.acc += leafPfn('pud', lo, hi);
        if (c.acc >= Sum.FLUSH) c.flush();
      }
      return 0;
    };
  }
  const counting = (_p: number, _a: number, _n: number, walk: { private_: Counter }) => {
    walk.private_.entries++;
    return 0;
  };
  if (tested.has('p4d')) ops.p4dEntry = counting;
  if (tested.has('pgd')) ops.pgdEntry = counting;
  return ops;
}

// One set of callbacks per machine: a fresh closure per walk would change the walker's call
// targets every time, and the optimiser would throw away the code it inlined them into.
const opsOf = new WeakMap<Machine, MmWalkOps<Counter>>();

/** Walk [start, end) of every root (clipped to the root's own range) and count. */
export function countWalk(machine: Machine, roots: readonly ImageRoot[], start = 0, end = 2 ** 64): CountResult {
  let ops = opsOf.get(machine);
  if (!ops) opsOf.set(machine, (ops = buildOps(machine)));
  const g = machine.geo;
  const c = new Counter();
  const t0 = process.hrtime.bigint();
  for (const r of roots) {
    const s = Math.max(start, r.start);
    const e = Math.min(end, r.end);
    if (s >= e) continue;
    const ret = walkKernelPageTableRangeLockless(machine.initMm, s, e, ops, r.table, c);
    if (ret !== 0) throw new Error(`walk of ${r.name} returned ${ret}`);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // Keyed by hardware level (x86-64 1…5, ARM64 -1…3).
  const leavesByLevel: Record<string, number> = {};
  const hw = (level: LevelName) => String(g.hwLevel[physicalOf(g, level)]!);
  if (c.pudLeaves) leavesByLevel[hw('pud')] = c.pudLeaves;
  if (c.pmdLeaves) leavesByLevel[hw('pmd')] = c.pmdLeaves;
  if (c.pteLeaves) leavesByLevel[hw('pte')] = c.pteLeaves;
  return {
    entries: c.entries,
    leaves: c.pteLeaves + c.pmdLeaves + c.pudLeaves,
    leavesByLevel,
    // pfns count PAGE_SIZE units; the checksum counts 4 KiB units: scaled once, here.
    checksum: BigInt.asUintN(64, (c.total + BigInt(c.acc)) * BigInt(g.PAGE_SIZE / 4096)),
    seconds,
  };
}
