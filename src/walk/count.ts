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

const FLUSH = 2 ** 52;

class Counter {
  entries = 0;
  leaves = 0;
  byLevel = [0, 0, 0, 0, 0, 0, 0]; // index hwLevel + 1
  acc = 0;
  total = 0n;
  add(pfn4k: number): void {
    this.acc += pfn4k;
    if (this.acc >= FLUSH) {
      this.total += BigInt(this.acc);
      this.acc = 0;
    }
  }
}

function buildOps(machine: Machine): MmWalkOps<Counter> {
  const g = machine.geo;
  const pt = machine.pgtable;
  const bits = machine.bits;
  const tested = new Set<LevelName>(g.physicalLevels.map((p) => lowestAlias(g, p)));
  const hw = (level: LevelName) => g.hwLevel[physicalOf(g, level)]! + 1;
  const scale = g.PAGE_SIZE / 4096; // a pfn counts PAGE_SIZE units; the checksum counts 4 KiB
  const pudHw = hw('pud');
  const pmdHw = hw('pmd');
  const pteHw = hw('pte');
  const u32 = pt.u32;
  const base = pt.physBase;
  const ops: MmWalkOps<Counter> = {
    pteEntry(pte, _addr, _next, walk) {
      const c = walk.private;
      c.entries++;
      const i = (pte - base) / 4;
      const lo = u32[i]!;
      const hi = u32[i + 1]!;
      if (pt.ptePresent(lo, hi)) {
        c.leaves++;
        c.byLevel[pteHw]!++;
        c.add(bits.leafPfn('pte', lo, hi) * scale);
      }
      return 0;
    },
    pteHole(_addr, _next, _depth, walk) {
      walk.private.entries++;
      return 0;
    },
  };
  if (tested.has('pmd')) {
    ops.pmdEntry = (pmd, _a, _n, walk) => {
      const c = walk.private;
      c.entries++;
      const lo = pt.lo(pmd);
      const hi = pt.hi(pmd);
      if (pt.pmdPresent(lo, hi) && pt.pmdLeaf(lo, hi)) {
        c.leaves++;
        c.byLevel[pmdHw]!++;
        c.add(bits.leafPfn('pmd', lo, hi) * scale);
      }
      return 0;
    };
  }
  if (tested.has('pud')) {
    ops.pudEntry = (pud, _a, _n, walk) => {
      const c = walk.private;
      c.entries++;
      const lo = pt.lo(pud);
      const hi = pt.hi(pud);
      if (pt.pudLeaf(lo, hi) && pt.pudPresent(lo, hi)) {
        c.leaves++;
        c.byLevel[pudHw]!++;
        c.add(bits.leafPfn('pud', lo, hi) * scale);
      }
      return 0;
    };
  }
  const counting = (_p: number, _a: number, _n: number, walk: { private: Counter }) => {
    walk.private.entries++;
    return 0;
  };
  if (tested.has('p4d')) ops.p4dEntry = counting;
  if (tested.has('pgd')) ops.pgdEntry = counting;
  return ops;
}

/** Walk [start, end) of every root (clipped to the root's own range) and count. */
export function countWalk(machine: Machine, roots: readonly ImageRoot[], start = 0, end = 2 ** 64): CountResult {
  const ops = buildOps(machine);
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
  const leavesByLevel: Record<string, number> = {};
  c.byLevel.forEach((n, i) => {
    if (n) leavesByLevel[String(i - 1)] = n;
  });
  return {
    entries: c.entries,
    leaves: c.leaves,
    leavesByLevel,
    checksum: BigInt.asUintN(64, c.total + BigInt(c.acc)),
    seconds,
  };
}
