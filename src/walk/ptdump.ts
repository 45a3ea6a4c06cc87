/**
 * mm/ptdump.c over our walker: the page-table dump behind `mmulab dump` (FORMATS.md).
 *
 * Linux's scheme, kept as it is: a no-VMA walk of the kernel's tables whose entry callbacks feed a
 * `struct ptdump_state` — effective_prot() for every entry on the way down, note_page() for every
 * leaf and every hole (pte_hole, and empty ptes, which pte_entry sees too) — and a final
 * note_page_flush(). Levels are Linux's: 0 pgd, 1 p4d, 2 pud, 3 pmd, 4 pte.
 *
 * Three receivers of those notes live here:
 *  - RangeCollector: the ranges of `mmulab dump --json`. Consecutive leaves merge when their
 *    addresses, page size, effective attributes (by manual name) and physical addresses all
 *    continue; holes and non-translating entries end a range.
 *  - X86LinuxText: arch/x86/mm/dump_pagetables.c's text, line for line (its merge rule: the same
 *    raw flags, the same effective RW/US/NX, the same level; no physical-address test).
 *  - Arm64LinuxText: arch/arm64/mm/ptdump.c's text, line for line (the same masked bits, the same
 *    level).
 *
 * Per visited entry nothing is allocated: the receivers keep their state in numbers and build a
 * string or an object only when a range closes.
 */
import { LEVELS, lowestAlias, physicalOf, type Geometry } from '../arch/geometry';
import type { ImageRoot, LoadedImage } from '../mm/image';
import type { Machine } from '../mm/machine';
import { ACTION_CONTINUE, walkKernelPageTableRangeLockless, type MmWalkOps } from './pagewalk';

const TWO_64 = 2 ** 64;
const TWO_63 = 2 ** 63;

// ---- the walk: mm/ptdump.c ------------------------------------------------------------------------

/** struct ptdump_state: what the walk tells a dumper. `level` is Linux's (0 pgd … 4 pte). */
export interface PtdumpState {
  /** effective_prot_p?d(): an entry the walk passed on its way down (a table or a leaf). */
  effectiveProt(level: number, lo: number, hi: number): void;
  /** note_page_p?d(): a leaf entry, an empty pte, or a hole (lo = hi = 0) starting at addr. */
  notePage(addr: number, level: number, lo: number, hi: number): void;
  /** note_page_flush(): the walk is over; `end` is where it stopped (2^64 for the top of the space). */
  noteFlush(end: number): void;
}

/** A [start, end) range to walk (struct ptdump_range). */
export interface PtdumpRange {
  readonly start: number;
  readonly end: number;
}

/**
 * Which Linux levels test an entry for real (each physical table's lowest logical alias, as in
 * count.ts), and for each of those the nearest such level above it (-1 at the top): the level whose
 * entry pointed at this one's table.
 */
export function ptdumpLevels(g: Geometry): { tested: readonly boolean[]; parent: readonly number[] } {
  const tested = [false, false, false, false, false];
  for (const p of g.physicalLevels) tested[LEVELS.indexOf(lowestAlias(g, p))] = true;
  const parent = [-1, -1, -1, -1, -1];
  let above = -1;
  for (let l = 0; l < 5; l++) {
    parent[l] = above;
    if (tested[l]) above = l;
  }
  return { tested, parent };
}

function buildOps(machine: Machine): MmWalkOps<PtdumpState> {
  const pt = machine.pgtable;
  const { tested } = ptdumpLevels(machine.geo);
  const ops: MmWalkOps<PtdumpState> = {
    // ptdump_pte_entry: every pte of a table, empty ones included, is noted.
    pteEntry(pte, addr, _next, walk) {
      const lo = pt.lo(pte);
      const hi = pt.hi(pte);
      walk.private.effectiveProt(4, lo, hi);
      walk.private.notePage(addr, 4, lo, hi);
      return 0;
    },
    // ptdump_hole: depth is real_depth()'s, so a hole found at a folded level is its parent's.
    // Depth -1 (outside any VMA) never happens in a no-VMA walk; Linux ignores it too.
    pteHole(addr, _next, depth, walk) {
      if (depth >= 0) walk.private.notePage(addr, depth, 0, 0);
      return 0;
    },
  };
  // A folded level shares its parent's entry; only the lowest alias tests it (p?d_leaf of the
  // upper aliases is the trivial 0 of pgtable-nop?d.h, and effective_prot ignores folded levels).
  if (tested[3]) {
    ops.pmdEntry = (pmd, addr, _next, walk) => {
      const lo = pt.lo(pmd);
      const hi = pt.hi(pmd);
      walk.private.effectiveProt(3, lo, hi);
      if (pt.pmdLeaf(lo, hi)) {
        walk.private.notePage(addr, 3, lo, hi);
        walk.action = ACTION_CONTINUE;
      }
      return 0;
    };
  }
  if (tested[2]) {
    ops.pudEntry = (pud, addr, _next, walk) => {
      const lo = pt.lo(pud);
      const hi = pt.hi(pud);
      walk.private.effectiveProt(2, lo, hi);
      if (pt.pudLeaf(lo, hi)) {
        walk.private.notePage(addr, 2, lo, hi);
        walk.action = ACTION_CONTINUE;
      }
      return 0;
    };
  }
  // p4d_leaf / pgd_leaf are false on x86-64 and arm64 (no 512 GiB / level-0 leaves in Linux).
  if (tested[1]) {
    ops.p4dEntry = (p4d, _addr, _next, walk) => {
      walk.private.effectiveProt(1, pt.lo(p4d), pt.hi(p4d));
      return 0;
    };
  }
  if (tested[0]) {
    ops.pgdEntry = (pgd, _addr, _next, walk) => {
      walk.private.effectiveProt(0, pt.lo(pgd), pt.hi(pgd));
      return 0;
    };
  }
  return ops;
}

/**
 * ptdump_walk_pgd(): walk each range of the table at `pgd` with the ptdump callbacks, then flush.
 * Linux flushes with address 0, which is 2^64 modulo 2^64: for a walk that ends at the top of
 * the space the two agree; a walk that ends lower (an ARM64 TTBR0 range) flushes at its own end.
 */
export function ptdumpWalkPgd(st: PtdumpState, machine: Machine, pgd: number, ranges: readonly PtdumpRange[]): void {
  const ops = buildOps(machine);
  let last = 0;
  for (const r of ranges) {
    if (r.start >= r.end) continue;
    const ret = walkKernelPageTableRangeLockless(machine.initMm, r.start, r.end, ops, pgd, st);
    if (ret !== 0) throw new Error(`ptdump walk of [0x${r.start.toString(16)}, 0x${r.end.toString(16)}) returned ${ret}`);
    last = r.end;
  }
  st.noteFlush(last);
}

// ---- options from the CPU state -----------------------------------------------------------------

export interface PtdumpOptions {
  /** x86-64 IA32_EFER.NXE (default true): without it XD is not an execute-disable bit (SDM §4.6). */
  readonly nxe?: boolean;
  /**
   * ARM64 TCR_EL1. HPD0/HPD1 (bits 41/42, FEAT_HPDS) turn the table descriptors' APTable/UXNTable/
   * PXNTable off for TTBR0/TTBR1 (Arm ARM D8.4.2); with LPA2 (DS = 1) descriptors have no SH
   * field and SH0/SH1 (bits 13:12 / 29:28) give the shareability. Absent: hierarchical permissions
   * apply, and LPA2 ranges carry no `sh`.
   */
  readonly tcr?: bigint;
}

/** The options an image's registers imply (EFER.NXE, TCR_EL1). */
export function ptdumpOptionsFor(img: Pick<LoadedImage, 'machine' | 'registers'>): PtdumpOptions {
  if (img.machine.geo.arch === 'x86_64') {
    const efer = img.registers.efer;
    return efer === undefined ? {} : { nxe: ((efer >> 11n) & 1n) === 1n };
  }
  const tcr = img.registers.tcr_el1;
  return tcr === undefined ? {} : { tcr };
}

// ---- the ranges of `mmulab dump --json` ----------------------------------------------------------

/** One merged run of leaves (FORMATS.md `mmulab dump`). */
export interface PtdumpMapping {
  readonly start: number;
  /** Exclusive; 2^64 for a range that reaches the top of the space. */
  readonly end: number;
  /** Physical address of `start`. */
  readonly pa: number;
  readonly pageSize: number;
  /** Leaves merged into the range. */
  readonly count: number;
  /** Hardware number of the table that held the leaves (x86-64 3/2/1; ARM64 lookup level). */
  readonly level: number;
  /** The leaves' effective attributes by manual name: booleans for flag bits, numbers for fields. */
  readonly attrs: Readonly<Record<string, boolean | number>>;
}

/** The architecture half of the range collector: bit tests on (lo, hi), packed into small ints. */
interface AttrRules {
  /** Restrictions a table entry adds to those above it (`parent` < 0: none above). */
  table(parent: number, lo: number, hi: number): number;
  /** Whether the hardware translates through this leaf (it holds an output address). */
  valid(level: number, lo: number): boolean;
  /** The leaf's effective attributes, packed: equal keys mean equal attrs. */
  key(level: number, lo: number, hi: number, restrictions: number): number;
  attrs(key: number): Record<string, boolean | number>;
}

/**
 * x86-64, Intel SDM Vol. 3A §4.6.1: a linear address is writable only if R/W = 1 in every
 * paging-structure entry that maps it, user-accessible only if U/S = 1 in every one, and with
 * IA32_EFER.NXE = 1 not executable if XD = 1 in any one. The other attributes are the leaf's own
 * (Tables 4-16, 4-18, 4-20): G, A, D, PWT, PCD, PAT (bit 7 of a PTE, bit 12 of a 2M/1G leaf), and the
 * protection key in bits 62:59. Packed restriction bits: 1 = R/W, 2 = U/S, 4 = XD.
 */
function x86Rules(nxe: boolean): AttrRules {
  const own = (lo: number, hi: number): number => ((lo >>> 1) & 3) | (nxe && hi >>> 31 !== 0 ? 4 : 0);
  const combine = (parent: number, bits: number): number => (parent < 0 ? bits : (parent & bits & 3) | ((parent | bits) & 4));
  return {
    table: (parent, lo, hi) => combine(parent, own(lo, hi)),
    valid: (_level, lo) => (lo & 1) !== 0, // P (bit 0)
    key(level, lo, hi, restrictions) {
      const eff = combine(restrictions, own(lo, hi));
      const pat = level === 4 ? (lo >>> 7) & 1 : (lo >>> 12) & 1;
      return (
        eff | // rw, us, nx
        (((lo >>> 8) & 1) << 3) | // G
        (((lo >>> 5) & 1) << 4) | // A
        (((lo >>> 6) & 1) << 5) | // D
        (((lo >>> 3) & 1) << 6) | // PWT
        (((lo >>> 4) & 1) << 7) | // PCD
        (pat << 8) |
        (((hi >>> 27) & 0xf) << 9) // protection key, bits 62:59
      );
    },
    attrs: (k) => ({
      rw: (k & 1) !== 0,
      us: (k & 2) !== 0,
      nx: (k & 4) !== 0,
      g: (k & 8) !== 0,
      a: (k & 0x10) !== 0,
      d: (k & 0x20) !== 0,
      pwt: (k & 0x40) !== 0,
      pcd: (k & 0x80) !== 0,
      pat: (k & 0x100) !== 0,
      pkey: (k >>> 9) & 0xf,
    }),
  };
}

/**
 * ARM64, Arm ARM D8.4.2 (hierarchical permissions) and D8.3 (descriptor formats): a table
 * descriptor's APTable[1] (bit 62) forbids writes below it at every EL, APTable[0] (bit 61) forbids
 * EL0 access, UXNTable (bit 60) and PXNTable (bit 59) force UXN and PXN. The restrictions of every
 * table on the way down accumulate; a leaf's AP[2:1] (bits 7:6) is limited by them. The other
 * attributes are the leaf's: AttrIndx 4:2, SH 9:8 (TCR_ELx.SH with LPA2), AF 10, nG 11, DBM 51,
 * Contiguous 52, PXN 53, UXN 54. Packed restrictions: 1 = no EL0, 2 = no write, 4 = UXN, 8 = PXN.
 * `hpd`: TCR_ELx.HPDn = 1, the table bits are ignored. `tcrSh`: undefined to read SH from the
 * descriptor; with LPA2 the TCR_ELx.SHn value, or null when unknown (then no `sh` attribute).
 */
function arm64Rules(hpd: boolean, tcrSh: number | null | undefined): AttrRules {
  return {
    table(parent, lo, hi) {
      const above = parent < 0 ? 0 : parent;
      // Only a table descriptor (bits[1:0] = 0b11) carries these bits; with HPD they are ignored.
      if (hpd || (lo & 3) !== 3) return above;
      return above | ((hi >>> 29) & 3) | (((hi >>> 28) & 1) << 2) | (((hi >>> 27) & 1) << 3);
    },
    // A page (0b11 at level 3) or a block (0b01 above it) translates; anything else faults.
    valid: (level, lo) => (lo & 3) === (level === 4 ? 3 : 1),
    key(_level, lo, hi, restrictions) {
      const r = restrictions < 0 ? 0 : restrictions;
      let ap = (lo >>> 6) & 3;
      if (r & 2) ap |= 2; // AP[2] = 1: read-only
      if (r & 1) ap &= 2; // AP[1] = 0: no EL0 access
      const uxn = ((hi >>> 22) & 1) | ((r >>> 2) & 1);
      const pxn = ((hi >>> 21) & 1) | ((r >>> 3) & 1);
      const sh = tcrSh === undefined ? (lo >>> 8) & 3 : (tcrSh ?? 0);
      return (
        ap |
        (uxn << 2) |
        (pxn << 3) |
        (((lo >>> 10) & 1) << 4) | // AF
        (sh << 5) |
        (((lo >>> 2) & 7) << 7) | // AttrIndx
        (((lo >>> 11) & 1) << 10) | // nG
        (((hi >>> 20) & 1) << 11) | // Contiguous
        (((hi >>> 19) & 1) << 12) // DBM
      );
    },
    attrs(k) {
      const a: Record<string, boolean | number> = {
        ap: k & 3,
        uxn: (k & 4) !== 0,
        pxn: (k & 8) !== 0,
        af: (k & 0x10) !== 0,
      };
      if (tcrSh !== null) a.sh = (k >>> 5) & 3;
      a.attr_indx = (k >>> 7) & 7;
      a.ng = (k & 0x400) !== 0;
      a.contiguous = (k & 0x800) !== 0;
      a.dbm = (k & 0x1000) !== 0;
      return a;
    },
  };
}

/**
 * note_page() for FORMATS.md's ranges: a leaf that continues the open range (next address, same
 * page size, same effective attributes, next physical address) extends it; anything else — a
 * hole, an entry the hardware does not translate through, a break — closes it.
 */
export class RangeCollector implements PtdumpState {
  private readonly restrictions = [-1, -1, -1, -1, -1];
  private readonly parent: readonly number[];
  private readonly size: readonly number[];
  private readonly hw: readonly number[];
  private readonly leafName: readonly ('pud' | 'pmd' | 'pte')[];
  private rules!: AttrRules;
  // The open range; count 0 when none.
  private start = 0;
  private end = 0;
  private pa = 0;
  private count = 0;
  private level = -1;
  private key = 0;

  constructor(
    private readonly machine: Machine,
    private readonly emit: (r: PtdumpMapping) => void,
    private readonly opts: PtdumpOptions = {},
  ) {
    const g = machine.geo;
    this.parent = ptdumpLevels(g).parent;
    // Leaves are noted at the pud, pmd or pte level only (p4d_leaf / pgd_leaf are false).
    this.size = LEVELS.map((l) => 2 ** (l === 'pte' ? g.PAGE_SHIFT : l === 'pmd' ? g.PMD_SHIFT : g.PUD_SHIFT));
    this.hw = LEVELS.map((l) => g.hwLevel[physicalOf(g, l)]!);
    this.leafName = ['pud', 'pud', 'pud', 'pmd', 'pte'];
    this.setRoot('cr3');
  }

  /** Select the translation regime of the root about to be walked (ARM64: TTBR0 or TTBR1). */
  setRoot(name: ImageRoot['name']): void {
    if (this.machine.geo.arch === 'x86_64') {
      this.rules = x86Rules(this.opts.nxe ?? true);
      return;
    }
    const tcr = this.opts.tcr;
    const one = name === 'ttbr1_el1';
    const hpd = tcr !== undefined && ((tcr >> (one ? 42n : 41n)) & 1n) === 1n;
    // Shareability: the descriptor's SH (undefined), TCR_EL1.SHn with LPA2, or unknown (null).
    let sh: number | null | undefined;
    if (this.machine.geo.pa52 === 'lpa2') sh = tcr === undefined ? null : Number((tcr >> (one ? 28n : 12n)) & 3n);
    this.rules = arm64Rules(hpd, sh);
  }

  effectiveProt(level: number, lo: number, hi: number): void {
    if (level === 4) return; // a pte restricts nothing below it
    const p = this.parent[level]!;
    this.restrictions[level] = this.rules.table(p < 0 ? -1 : this.restrictions[p]!, lo, hi);
  }

  notePage(addr: number, level: number, lo: number, hi: number): void {
    const rules = this.rules;
    if ((lo === 0 && hi === 0) || !rules.valid(level, lo)) {
      this.close();
      return;
    }
    const p = this.parent[level]!;
    const key = rules.key(level, lo, hi, p < 0 ? -1 : this.restrictions[p]!);
    const size = this.size[level]!;
    const pa = this.machine.bits.leafPfn(this.leafName[level]!, lo, hi) * this.machine.geo.PAGE_SIZE;
    if (this.count !== 0 && addr === this.end && level === this.level && key === this.key && pa === this.pa + (this.end - this.start)) {
      this.end += size;
      this.count++;
      return;
    }
    this.close();
    this.start = addr;
    this.end = addr + size;
    this.pa = pa;
    this.count = 1;
    this.level = level;
    this.key = key;
  }

  noteFlush(_end: number): void {
    this.close();
  }

  private close(): void {
    if (this.count === 0) return;
    this.emit({
      start: this.start,
      end: this.end,
      pa: this.pa,
      pageSize: this.size[this.level]!,
      count: this.count,
      level: this.hw[this.level]!,
      attrs: this.rules.attrs(this.key),
    });
    this.count = 0;
  }
}

/** Every mapping of the roots' ranges, merged, in address order, handed to `fn` as it closes. */
export function forEachPtdumpMapping(
  machine: Machine,
  roots: readonly ImageRoot[],
  fn: (r: PtdumpMapping) => void,
  opts: PtdumpOptions = {},
): void {
  const st = new RangeCollector(machine, fn, opts);
  for (const root of roots) {
    st.setRoot(root.name);
    // Each root is its own walk: a range never merges across roots.
    ptdumpWalkPgd(st, machine, root.table, [{ start: root.start, end: root.end }]);
  }
}

/** The merged mappings as an array (FORMATS.md `mmulab dump --json`, one entry per line). */
export function ptdumpMappings(machine: Machine, roots: readonly ImageRoot[], opts: PtdumpOptions = {}): PtdumpMapping[] {
  const out: PtdumpMapping[] = [];
  forEachPtdumpMapping(machine, roots, (r) => out.push(r), opts);
  return out;
}

// ---- Linux's text ---------------------------------------------------------------------------------

/** struct addr_marker: a section header printed where the dump crosses `start`. */
export interface AddrMarker {
  readonly start: number;
  readonly name: string;
  /** x86 only: print at most this many lines in the section (0: no limit). */
  readonly maxLines?: number;
}

/** The list terminator, { -1, NULL }: never reached by a page-aligned address. */
const END_MARKER: AddrMarker = { start: Infinity, name: '(null)' };

function hex16(v: number): string {
  return v.toString(16).padStart(16, '0');
}

/** unsigned long arithmetic: the flush address 2^64 prints and compares as Linux's 0. */
function ulong(v: number): number {
  return v >= TWO_64 ? v - TWO_64 : v;
}

/** The "%9lu%c" size column: divide by 1024 while the remainder is 0 and a larger unit is left. */
function sizeColumn(bytesOrK: number, units: string): string {
  let delta = bytesOrK;
  let u = 0;
  while (delta % 1024 === 0 && u < units.length - 1) {
    delta /= 1024;
    u++;
  }
  return String(delta).padStart(9) + units[u]!;
}

/**
 * arch/x86/mm/dump_pagetables.c, as Linux 6.18 prints /sys/kernel/debug/page_tables/*.
 *
 * note_page() keeps the raw flags (`val & PTE_FLAGS_MASK`: bits 11:0 and 63:52) and the effective
 * RW/US/NX of the range; a change in either, in the level, or crossing a marker prints the range:
 * `0x%016lx-0x%016lx   %9lu%c ` then printk_prot() and the level name. Holes and not-present
 * entries print too, with blank flags. PTE_FLAGS_MASK removes bits 51:12, so the PAT bit of a
 * 2M/1G leaf (bit 12) never reaches printk_prot: Linux never prints PAT for pmd/pud leaves.
 */
export class X86LinuxText implements PtdumpState {
  private level = -1;
  private curLo = 0;
  private curHi = 0;
  private eff = 0;
  private start = 0;
  private marker = 0;
  private lines = 0;
  /** prot_levels[]: the effective RW/US (bits 1, 2 as in the entry) and NX (8) at each level. */
  private readonly protLevels = [0, 0, 0, 0, 0];
  private readonly parent: readonly number[];
  private readonly markers: readonly AddrMarker[];

  constructor(
    g: Geometry,
    private readonly out: (line: string) => void,
    markers: readonly AddrMarker[] = x86Markers(),
  ) {
    this.parent = ptdumpLevels(g).parent;
    this.markers = [...markers, END_MARKER];
  }

  /** effective_prot(): RW and US ANDed down the levels, NX ORed; the first real level as is. */
  effectiveProt(level: number, lo: number, hi: number): void {
    const prot = (lo & 6) | (hi >>> 31 !== 0 ? 8 : 0);
    const p = this.parent[level]!;
    if (p < 0) {
      this.protLevels[level] = prot;
      return;
    }
    const higher = this.protLevels[p]!;
    this.protLevels[level] = (higher & prot & 6) | ((higher | prot) & 8);
  }

  notePage(addr: number, level: number, lo: number, hi: number): void {
    this.note(ulong(addr), level, lo & 0xfff, (hi & 0xfff00000) >>> 0, lo === 0 && hi === 0 ? 0 : this.protLevels[level]!);
  }

  noteFlush(end: number): void {
    this.note(ulong(end), -1, 0, 0, 0);
  }

  private note(addr: number, level: number, newLo: number, newHi: number, newEff: number): void {
    const m = this.markers;
    if (this.level === -1) {
      this.curLo = newLo;
      this.curHi = newHi;
      this.eff = newEff;
      this.level = level;
      this.marker = 0;
      this.lines = 0;
      this.out(`---[ ${m[0]!.name} ]---`);
      return;
    }
    if (newLo === this.curLo && newHi === this.curHi && newEff === this.eff && level === this.level && addr < m[this.marker + 1]!.start) return;
    const max = m[this.marker]!.maxLines ?? 0;
    if (!max || this.lines < max) {
      const delta = addr >= this.start ? addr - this.start : addr - this.start + TWO_64;
      this.out(`0x${hex16(this.start)}-0x${hex16(addr)}   ${sizeColumn(delta, 'BKMGTPE')} ${x86Prot(this.curLo, this.curHi, this.level)}`);
    }
    this.lines++;
    if (addr >= m[this.marker + 1]!.start) {
      if (max && this.lines > max) {
        const nskip = this.lines - max;
        this.out(`... ${nskip} entr${nskip === 1 ? 'y' : 'ies'} skipped ... `);
      }
      this.marker++;
      this.lines = 0;
      this.out(`---[ ${m[this.marker]!.name} ]---`);
    }
    this.start = addr;
    this.curLo = newLo;
    this.curHi = newHi;
    this.eff = newEff;
    this.level = level;
  }
}

const X86_LEVEL_NAMES = ['pgd', 'p4d', 'pud', 'pmd', 'pte'];

/** printk_prot(): the flag columns of one x86 line, then the level name. */
function x86Prot(lo: number, hi: number, level: number): string {
  let s: string;
  if ((lo & 1) === 0) {
    s = ' '.repeat(30); // not present
  } else {
    s =
      ((lo & 4) !== 0 ? 'USR ' : '    ') +
      ((lo & 2) !== 0 ? 'RW ' : 'ro ') +
      ((lo & 8) !== 0 ? 'PWT ' : '    ') +
      ((lo & 0x10) !== 0 ? 'PCD ' : '    ') +
      // Bit 7 is PSE above the pte level and PAT in a pte.
      (level <= 3 && (lo & 0x80) !== 0 ? 'PSE ' : '    ') +
      ((level === 4 && (lo & 0x80) !== 0) || ((level === 3 || level === 2) && (lo & 0x1000) !== 0) ? 'PAT ' : '    ') +
      ((lo & 0x100) !== 0 ? 'GLB ' : '    ') +
      (hi >>> 31 !== 0 ? 'NX ' : 'x  ');
  }
  return s + (X86_LEVEL_NAMES[level] ?? '');
}

/**
 * The x86-64 markers that are facts of the address space, not of a kernel build: where user space
 * starts and where the kernel half starts (1UL << 63). The rest of dump_pagetables.c's list
 * (PAGE_OFFSET, vmalloc, vmemmap…) moves with KASLR and the configuration; pass them if known.
 */
export function x86Markers(): AddrMarker[] {
  return [
    { start: 0, name: 'User Space' },
    { start: TWO_63, name: 'Kernel Space' },
  ];
}

/**
 * ptdump_walk_pgd_level_core()'s ranges: the user half, then the kernel half from
 * GUARD_HOLE_END_ADDR — the 16 top-level entries at GUARD_HOLE_PGD_ENTRY = -256 are reserved for a
 * hypervisor and never dumped.
 */
export function x86LinuxRanges(g: Geometry, roots: readonly ImageRoot[]): PtdumpRange[] {
  const guardEnd = TWO_64 - 256 * g.PGDIR_SIZE + 16 * g.PGDIR_SIZE;
  return roots.map((r) => ({ start: r.start >= TWO_63 ? Math.max(r.start, guardEnd) : r.start, end: r.end }));
}

/**
 * arch/arm64/mm/ptdump.c, as Linux 6.18 prints /sys/kernel/debug/kernel_page_tables.
 *
 * note_page() keeps `val & mask` (the union of the pte_bits masks); a change in it, in the level,
 * or crossing a marker prints `0x%016lx-0x%016lx   %9lu%c %s` (size in K and up, level name) and,
 * unless the kept bits are 0, " %s" for each pte_bits entry. A level folded at run time or at
 * build time (mm_p4d_folded / mm_pud_folded) is reported as the pgd.
 */
export class Arm64LinuxText implements PtdumpState {
  private level = -1;
  private curLo = 0;
  private curHi = 0;
  private start = 0;
  private marker = 0;
  private readonly p4dFolded: boolean;
  private readonly pudFolded: boolean;
  private readonly markers: readonly AddrMarker[];

  constructor(
    g: Geometry,
    private readonly out: (line: string) => void,
    markers: readonly AddrMarker[],
  ) {
    this.p4dFolded = g.folded.includes('p4d');
    this.pudFolded = g.folded.includes('pud');
    this.markers = [...markers, END_MARKER];
  }

  effectiveProt(): void {
    // arm64's ptdump has no effective_prot callback: it prints each leaf's own bits.
  }

  notePage(addr: number, level: number, lo: number, hi: number): void {
    this.note(ulong(addr), level, lo, hi);
  }

  noteFlush(end: number): void {
    this.note(ulong(end), -1, 0, 0);
  }

  private note(addr: number, level: number, lo: number, hi: number): void {
    const m = this.markers;
    if ((level === 1 && this.p4dFolded) || (level === 2 && this.pudFolded)) level = 0;
    // The pte_bits masks: VALID, type (PMD_TYPE_MASK), AttrIndx, USER, RDONLY, SHARED, AF, NG
    // (bits 11:0 but NS) and GP 50, CONT 52, PXN 53, UXN 54.
    const protLo = level >= 0 ? lo & 0xfdf : 0;
    const protHi = level >= 0 ? (hi & 0x00740000) >>> 0 : 0;
    if (this.level === -1) {
      this.level = level;
      this.curLo = protLo;
      this.curHi = protHi;
      this.start = addr;
      this.out(`---[ ${m[this.marker]!.name} ]---`);
    } else if (protLo !== this.curLo || protHi !== this.curHi || level !== this.level || addr >= m[this.marker + 1]!.start) {
      const delta = (addr >= this.start ? addr - this.start : addr - this.start + TWO_64) / 1024;
      let line = `0x${hex16(this.start)}-0x${hex16(addr)}   ${sizeColumn(delta, 'KMGTPE')} ${ARM64_LEVEL_NAMES[this.level]}`;
      if (this.curLo !== 0 || this.curHi !== 0) line += arm64Prot(this.curLo, this.curHi);
      this.out(line);
      if (addr >= m[this.marker + 1]!.start) {
        this.marker++;
        this.out(`---[ ${m[this.marker]!.name} ]---`);
      }
      this.start = addr;
      this.curLo = protLo;
      this.curHi = protHi;
      this.level = level;
    }
    if (addr >= m[this.marker + 1]!.start) {
      this.marker++;
      this.out(`---[ ${m[this.marker]!.name} ]---`);
    }
  }
}

const ARM64_LEVEL_NAMES = ['PGD', 'P4D', 'PUD', 'PMD', 'PTE'];

/** AttrIndx → pte_bits name, Linux's MT_* indices (arch/arm64/include/asm/memory.h). */
const ARM64_MT_NAMES: Readonly<Record<number, string>> = {
  3: 'DEVICE/nGnRnE',
  4: 'DEVICE/nGnRE',
  2: 'MEM/NORMAL-NC',
  0: 'MEM/NORMAL',
  1: 'MEM/NORMAL-TAGGED',
};

/** dump_prot() over pte_bits[]: " set" or " clear" per entry, in the table's order. */
function arm64Prot(lo: number, hi: number): string {
  const mt = ARM64_MT_NAMES[(lo >>> 2) & 7];
  return (
    ((lo & 1) !== 0 ? '  ' : ' F') + // PTE_VALID
    ((lo & 0x40) !== 0 ? ' USR' : '    ') + // PTE_USER (AP[1])
    ((lo & 0x80) !== 0 ? ' ro' : ' RW') + // PTE_RDONLY (AP[2])
    ((hi & 0x200000) !== 0 ? ' NX' : ' x ') + // PTE_PXN
    ((lo & 0x300) === 0x300 ? ' SHD' : '    ') + // PTE_SHARED (inner shareable)
    ((lo & 0x400) !== 0 ? ' AF' : '   ') + // PTE_AF
    ((lo & 0x800) !== 0 ? ' NG' : '   ') + // PTE_NG
    ((hi & 0x100000) !== 0 ? ' CON' : '    ') + // PTE_CONT
    ((lo & 3) === 1 ? ' BLK' : '    ') + // PMD_TYPE_SECT under PMD_TYPE_MASK
    ((hi & 0x400000) !== 0 ? ' UXN' : '    ') + // PTE_UXN
    ((hi & 0x40000) !== 0 ? ' GP' : '   ') + // PTE_GP
    (mt !== undefined ? ` ${mt}` : '')
  );
}

/** VA_BITS_MIN (arch/arm64/include/asm/memory.h): 52-bit builds must also boot with 48 (16K: 47). */
function vaBitsMin(g: Geometry): number {
  if (g.vaBits <= 48) return g.vaBits;
  return g.PAGE_SIZE === 16384 ? 47 : 48;
}

/**
 * The ARM64 markers fixed by the VA size: the linear map runs from PAGE_OFFSET = -(1 << VA_BITS)
 * to PAGE_END = -(1 << (VA_BITS_MIN - 1)). Later markers (modules, vmalloc, vmemmap, fixmap) depend
 * on the build (KASAN, per-cpu areas); pass them if known.
 */
export function arm64KernelMarkers(g: Geometry): AddrMarker[] {
  return [
    { start: TWO_64 - 2 ** g.vaBits, name: 'Linear Mapping start' },
    { start: TWO_64 - 2 ** (vaBitsMin(g) - 1), name: 'Linear Mapping end' },
  ];
}

/**
 * Linux dumps only the kernel's TTBR1 tables on ARM64; mmulab dumps the TTBR0 range the same way,
 * under these two markers (ptdump_walk()'s user-range form, as for efi_page_tables).
 */
export function arm64UserMarkers(root: ImageRoot): AddrMarker[] {
  return [
    { start: root.start, name: 'User Space' },
    { start: root.end, name: 'User Space end' },
  ];
}

export interface PtdumpTextOptions extends PtdumpOptions {
  /** Section markers (x86: one list for the whole dump; ARM64: the kernel (TTBR1) list). */
  readonly markers?: readonly AddrMarker[];
}

/**
 * The dump in Linux's own text format for the machine's architecture, one line at a time.
 * x86-64: one pass over both canonical halves of the root (dump_pagetables.c). ARM64: the TTBR0
 * range (if walked) then the TTBR1 range, each its own pass (arch/arm64/mm/ptdump.c).
 */
export function ptdumpText(machine: Machine, roots: readonly ImageRoot[], out: (line: string) => void, opts: PtdumpTextOptions = {}): void {
  const g = machine.geo;
  if (g.arch === 'x86_64') {
    if (roots.length === 0) return;
    const st = new X86LinuxText(g, out, opts.markers ?? x86Markers());
    ptdumpWalkPgd(st, machine, roots[0]!.table, x86LinuxRanges(g, roots));
    return;
  }
  for (const root of roots) {
    const markers = root.name === 'ttbr0_el1' ? arm64UserMarkers(root) : (opts.markers ?? arm64KernelMarkers(g));
    const st = new Arm64LinuxText(g, out, markers);
    ptdumpWalkPgd(st, machine, root.table, [{ start: root.start, end: root.end }]);
  }
}
