/**
 * The address space as a map (`mmulab map`): every VA of the requested span, in order, as runs of
 * mapped pages, holes and untranslated gaps.
 *
 * It is a coarser view of ptdump's ranges (src/walk/ptdump.ts, whose RangeCollector does the walk
 * and the effective-permission rules): a run here keeps going across physical discontinuities and
 * attribute changes that do not change what a program can do with the memory, and ends only where
 * the page size (the table level of the leaf) or the effective access — user or kernel, write,
 * execute — changes, or where no leaf translates.
 *
 * - mapped: consecutive leaves of one page size whose effective permissions are equal;
 * - hole: addresses inside a translated range (a root's span) that no leaf maps;
 * - untranslated: addresses no root translates — the x86-64 non-canonical gap (SDM Vol. 3A
 *   §3.3.7.1), the ARM64 addresses outside the TTBR0/TTBR1 ranges T0SZ/T1SZ define, or a range
 *   whose walks TCR_EL1.EPDn disables (Arm ARM D8.2).
 */
import { LEVELS, physicalOf, type Geometry, type LevelName } from '../arch/geometry';
import type { ImageRoot } from '../mm/image';
import type { Machine } from '../mm/machine';
import { forEachPtdumpMapping, ptdumpLevels, type PtdumpMapping, type PtdumpOptions } from './ptdump';

const TWO_64 = 2 ** 64;

/** A run of mapped pages: one page size, one effective permission. */
export interface MappedRange {
  readonly kind: 'mapped';
  readonly start: number;
  /** Exclusive; 2^64 at the top of the space. */
  readonly end: number;
  /** The root whose tables map it. */
  readonly root: ImageRoot['name'];
  readonly pageSize: number;
  /** Hardware number of the table holding the leaves (x86-64 3/2/1; ARM64 lookup level). */
  readonly level: number;
  /** Leaves in the run. */
  readonly count: number;
  /** Accessible from user mode (x86-64 U/S = 1 at every level; ARM64 AP[1] = 1, EL0 access). */
  readonly user: boolean;
  /** Writable by the mode that owns it (x86-64 R/W; ARM64 AP[2] = 0). */
  readonly write: boolean;
  /**
   * Executable by the mode that owns it: x86-64 XD = 0 at every level (with EFER.NXE); ARM64 UXN = 0
   * for a user page, PXN = 0 for a kernel page (Arm ARM D8.4.2, with the tables' UXN/PXNTable).
   */
  readonly exec: boolean;
}

/** Addresses inside a root's span that no leaf maps. */
export interface HoleRange {
  readonly kind: 'hole';
  readonly start: number;
  readonly end: number;
  readonly root: ImageRoot['name'];
}

/** Addresses no root translates (non-canonical, or outside / disabled TTBR ranges). */
export interface UntranslatedRange {
  readonly kind: 'untranslated';
  readonly start: number;
  readonly end: number;
}

export type AddrMapRange = MappedRange | HoleRange | UntranslatedRange;

/** A leaf kind the geometry has: its page size, Linux level and hardware level. */
export interface LeafKind {
  readonly linuxLevel: LevelName;
  readonly pageSize: number;
  readonly level: number;
}

export interface AddrMap {
  readonly geometry: Geometry;
  /** The roots walked, clipped to [start, end) (those that meet it). */
  readonly roots: readonly ImageRoot[];
  readonly start: number;
  readonly end: number;
  /** The leaf sizes this geometry can map, smallest first. */
  readonly leafKinds: readonly LeafKind[];
  /** Every address of [start, end) exactly once, in address order. */
  readonly ranges: readonly AddrMapRange[];
}

export interface AddrMapOptions extends PtdumpOptions {
  readonly start?: number;
  readonly end?: number;
  /**
   * ARM64: whether the hardware manages the dirty state (DBM pages are writable). Default: from
   * `tcr`, TCR_EL1.HA (bit 39) and HD (bit 40) both 1; pass false when the CPU lacks FEAT_HAFDBS.
   */
  readonly hardwareDirty?: boolean;
  /** Called between slices of the walk: `done` of `total` slices walked. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** The leaf levels ptdump notes (pud, pmd, pte where the level tests its entry), smallest page first. */
export function leafKinds(g: Geometry): LeafKind[] {
  const { tested } = ptdumpLevels(g);
  const shift: Partial<Record<LevelName, number>> = { pud: g.PUD_SHIFT, pmd: g.PMD_SHIFT, pte: g.PAGE_SHIFT };
  const out: LeafKind[] = [];
  for (const l of ['pte', 'pmd', 'pud'] as const) {
    if (l === 'pte' || tested[LEVELS.indexOf(l)]) out.push({ linuxLevel: l, pageSize: 2 ** shift[l]!, level: g.hwLevel[physicalOf(g, l)]! });
  }
  return out;
}

/**
 * user/write/exec of a ptdump range, from its effective attributes by manual name.
 * ARM64 AP[2:1] (Arm ARM D8.4.1): AP[1] grants EL0 access, AP[2] makes the page read-only. With
 * hardware dirty-state management (TCR_ELx.HA = HD = 1, Arm ARM D8.5) a write to a DBM = 1 page
 * clears AP[2] instead of faulting, so it counts as writable. (ptdump's `ap` already folds in
 * APTable[1]; a DBM page under a table with APTable[1] = 1 — which Linux never builds — would
 * wrongly count as writable here.)
 */
function permissions(arch: Geometry['arch'], a: Readonly<Record<string, boolean | number>>, hwDirty: boolean): { user: boolean; write: boolean; exec: boolean } {
  if (arch === 'x86_64') return { user: a.us === true, write: a.rw === true, exec: a.nx !== true };
  const ap = a.ap as number;
  const user = (ap & 1) !== 0;
  return { user, write: (ap & 2) === 0 || (hwDirty && a.dbm === true), exec: user ? a.uxn !== true : a.pxn !== true };
}

/**
 * Slices of [s, e) on top-level-entry boundaries, at most ~64 per root, so a long walk can report
 * progress between them. A slice boundary splits no leaf (a leaf never spans two top-level entries).
 */
function slices(g: Geometry, s: number, e: number): [number, number][] {
  const top = 2 ** g.PGDIR_SHIFT;
  const step = top * Math.max(1, Math.ceil((e - s) / top / 64));
  const out: [number, number][] = [];
  for (let a = s; a < e; ) {
    const next = Math.min(e, (Math.floor(a / step) + 1) * step);
    out.push([a, next]);
    a = next;
  }
  return out;
}

/**
 * The map of [opts.start, opts.end) (default the whole 64-bit space) over the image's roots: each
 * root's span clipped to the window is walked with ptdump's collector, and its ranges are merged on
 * page size and effective permissions; what is left between them is a hole, and what no root
 * covers is untranslated.
 */
export function addressMap(machine: Machine, roots: readonly ImageRoot[], opts: AddrMapOptions = {}): AddrMap {
  const g = machine.geo;
  const start = opts.start ?? 0;
  const end = opts.end ?? TWO_64;
  const clipped = [...roots]
    .sort((a, b) => a.start - b.start)
    .map((r) => ({ ...r, start: Math.max(r.start, start), end: Math.min(r.end, end) }))
    .filter((r) => r.start < r.end);
  const tcr = opts.tcr ?? 0n;
  const hwDirty = opts.hardwareDirty ?? (((tcr >> 39n) & 3n) === 3n);
  const work = clipped.map((r) => slices(g, r.start, r.end));
  const total = work.reduce((n, w) => n + w.length, 0);
  let done = 0;
  const ranges: AddrMapRange[] = [];
  let cursor = start;
  const gap = (to: number, root: ImageRoot['name'] | null) => {
    if (cursor < to) ranges.push(root === null ? { kind: 'untranslated', start: cursor, end: to } : { kind: 'hole', start: cursor, end: to, root });
    cursor = to;
  };
  clipped.forEach((root, i) => {
    gap(root.start, null);
    let open: { start: number; end: number; pageSize: number; level: number; count: number; user: boolean; write: boolean; exec: boolean } | null = null;
    const close = () => {
      if (open) ranges.push({ kind: 'mapped', root: root.name, ...open });
      open = null;
    };
    const take = (m: PtdumpMapping) => {
      const p = permissions(g.arch, m.attrs, hwDirty);
      // A walk that starts inside a leaf notes it at the walk's start, not the leaf's; its true end
      // comes from the leaf's aligned base. A walk that ends inside one: clip to the window.
      const mEnd = Math.min(Math.floor(m.start / m.pageSize) * m.pageSize + m.count * m.pageSize, root.end);
      if (open && open.end === m.start && open.pageSize === m.pageSize && open.user === p.user && open.write === p.write && open.exec === p.exec) {
        open.end = mEnd;
        open.count += m.count;
        cursor = mEnd;
        return;
      }
      close();
      gap(m.start, root.name);
      open = { start: m.start, end: mEnd, pageSize: m.pageSize, level: m.level, count: m.count, ...p };
      cursor = mEnd;
    };
    for (const [s, e] of work[i]!) {
      forEachPtdumpMapping(machine, [{ ...root, start: s, end: e }], take, opts);
      opts.onProgress?.(++done, total);
    }
    close();
    gap(root.end, root.name);
  });
  gap(end, null);
  return { geometry: g, roots: clipped, start, end, leafKinds: leafKinds(g), ranges };
}
