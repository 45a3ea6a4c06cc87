/**
 * Replays a page-walk conformance scenario through mmulab's own walker (src/walk/pagewalk.ts) and
 * compares what it does with what the scenario expects: the return value, then every callback
 * invocation in order (the first difference is the finding), then the final page-table tree.
 *
 * The driver follows the corpus README's "A driver, in outline": build the machine and the tree,
 * the mm, init_mm, the VMAs and one address_space per file id; install recording callbacks that
 * answer from the script's rules; route pte_offset_map and the page-table allocator through the
 * inject seams; call the entry point.
 *
 * Entries are encoded through the ArchBits API (pfnPte, pfnHuge, mkTable, mkSwapPte), never as
 * hand-written bit patterns, except `bad`, which is by definition an entry the arch's own
 * p?d_bad rejects and has no constructor. What the walker and its callbacks see is read back with
 * the same predicates the walker uses.
 */
import { lowestAlias, levelShift, physicalOf, tableEntries, type Geometry, type LevelName } from '../../arch/geometry';
import type { Pgtable } from '../../arch/pgtable';
import type { ArchBits } from '../../arch/types';
import { AddressSpace } from '../../mm/address-space';
import { Machine } from '../../mm/machine';
import type { MmStruct } from '../../mm/mm';
import { entryAlloc } from '../../mm/pgalloc';
import { parseVmFlags } from '../../mm/vm-flags';
import type { VmAreaStruct } from '../../mm/vma';
import {
  ACTION_AGAIN,
  ACTION_CONTINUE,
  ACTION_SUBTREE,
  type MmWalk,
  type MmWalkOps,
  type PageWalkAction,
  type PteOut,
  walkKernelPageTableRange,
  walkKernelPageTableRangeLockless,
  walkPageMapping,
  walkPageRange,
  walkPageRangeMm,
  walkPageRangeNovma,
  walkPageRangeVma,
  walkPageVma,
} from '../pagewalk';
import {
  hex,
  type ActionName,
  type CallbackName,
  type EntryKind,
  type EntrySpec,
  type PteSpec,
  type RootHalf,
  type RuleSpec,
  type Scenario,
  type TraceEvent,
  type TreeEntry,
} from './schema';

/** Physical memory of a replay machine: tables must fit; leaves may point anywhere. */
export const REPLAY_MEM_SIZE = 64 * 2 ** 20;

/**
 * The swap type of every `swap` entry: a fixed nonzero type, as a migration entry has (Linux puts
 * the migration types at the top of the 5-bit type space). The scenario's `val` is the offset.
 */
export const SWAP_TYPE = 29;

export interface TraceDifference {
  /** Index in the trace of the first event that differs. */
  readonly index: number;
  /** null: the trace ended before this index. */
  readonly expected: TraceEvent | null;
  readonly got: TraceEvent | null;
  /** The fields whose values differ (all fields when one side is missing). */
  readonly fields: readonly string[];
}

export interface TreeDifference {
  readonly root: string;
  /** Index in that root's entry list of the first entry that differs. */
  readonly index: number;
  readonly expected: TreeEntry | null;
  readonly got: TreeEntry | null;
}

export interface ReplayResult {
  readonly name: string;
  readonly rule: string;
  /** The scenario file, when replayed from one. */
  file?: string;
  agree: boolean;
  readonly ret: { readonly expected: number; readonly got: number | null };
  readonly firstDifference?: TraceDifference;
  readonly treeDifference?: TreeDifference;
  /** The walker (or the model under it) threw instead of returning: the error's name and message. */
  readonly error?: string;
  /** The produced trace. */
  readonly trace: readonly TraceEvent[];
  /** The produced final tree, per root. */
  readonly tree: Readonly<Record<string, readonly TreeEntry[]>>;
}

const ACTION_OF: Record<ActionName, PageWalkAction> = {
  SUBTREE: ACTION_SUBTREE,
  CONTINUE: ACTION_CONTINUE,
  AGAIN: ACTION_AGAIN,
};

/** walk->action by name; a value outside the enum is shown as it is, so a comparison catches it. */
function actionName(a: number): ActionName {
  if (a === ACTION_AGAIN) return 'AGAIN';
  if (a === ACTION_CONTINUE) return 'CONTINUE';
  if (a === ACTION_SUBTREE) return 'SUBTREE';
  return `ACTION(${a})` as ActionName;
}

const TWO_64 = 2 ** 64;

/** What a table holds, for entry ids and the tree dump. */
interface TableInfo {
  readonly root: string;
  /** Physical level of the table. */
  readonly level: LevelName;
  /** Canonical VA of its first entry; for a root, see `rootVa`. */
  readonly base: number;
  readonly isRoot: boolean;
  readonly half: RootHalf;
}

interface Decoded {
  kind: Exclude<EntryKind, 'none'> | 'none';
  pfn?: number;
  val?: number;
}

/** Everything one replay builds: the machine, its roots, and the readers of its entries. */
class Replay {
  readonly machine: Machine;
  readonly geo: Geometry;
  readonly bits: ArchBits;
  readonly pt: Pgtable;
  readonly mm: MmStruct;
  /** Root name → its mm (mm, init_mm, and a fresh mm per extra root). */
  readonly rootMm = new Map<string, MmStruct>();
  readonly rootHalf = new Map<string, RootHalf>();
  readonly vmaById = new Map<string, VmAreaStruct>();
  readonly vmaId = new Map<VmAreaStruct, string>();
  readonly files = new Map<string, AddressSpace>();
  private tables = new Map<number, TableInfo>();

  constructor(readonly s: Scenario) {
    this.geo = s.geo;
    const physBase = s.geo.arch === 'arm64' ? 0x4000_0000 : 0;
    this.machine = new Machine({ geometry: s.geometry, memSize: REPLAY_MEM_SIZE, physBase });
    this.bits = this.machine.bits;
    this.pt = this.machine.pgtable;
    for (const r of s.roots) {
      const mm = r.name === 'init_mm' ? this.machine.initMm : this.machine.newMm(r.name);
      this.rootMm.set(r.name, mm);
      this.rootHalf.set(r.name, r.half);
    }
    this.mm = this.rootMm.get('mm')!;
    for (const r of s.roots) {
      r.entries.forEach((e, i) => this.install(r.name, e, `roots.${r.name}.entries[${i}]`));
    }
    for (const v of s.vmas) {
      let file: AddressSpace | null = null;
      if (v.file !== null) {
        file = this.files.get(v.file) ?? new AddressSpace(v.file);
        this.files.set(v.file, file);
      }
      const pgoff = Number(v.pgoff);
      if (BigInt(pgoff) !== v.pgoff) throw new RangeError(`vmas: ${v.id}.pgoff ${hex(v.pgoff)} is not exact as a number`);
      const vma = this.mm.insertVma({
        start: v.start,
        end: v.end,
        flags: parseVmFlags(v.flags, `vmas[${v.id}].flags`),
        pgoff,
        file,
        hugepageSize: v.hugepageSize,
        split: v.split,
        name: v.id,
      });
      this.vmaById.set(v.id, vma);
      this.vmaId.set(vma, v.id);
    }
    if (s.call.fn === 'walk_page_mapping' && !this.files.has(s.call.mapping)) {
      this.files.set(s.call.mapping, new AddressSpace(s.call.mapping));
    }
  }

  /** Whether tables and pages at va of this root are user ones (the user half, below TASK_SIZE). */
  private isUser(root: string, va: number): boolean {
    return this.rootHalf.get(root) !== 'kernel' && va < this.machine.TASK_SIZE;
  }

  private pgprot(user: boolean): bigint {
    return this.bits.pgprot({ write: true, user });
  }

  /** Install one entry spec: the tables above it are allocated (entryAlloc), the entry encoded by kind. */
  private install(root: string, e: EntrySpec, path: string): void {
    const mm = this.rootMm.get(root)!;
    const ptr = entryAlloc(mm, e.va, e.level, mm.pgd);
    if (ptr < 0) throw new RangeError(`${path}: could not allocate the tables above the entry`);
    const phys = physicalOf(this.geo, e.level);
    const low = lowestAlias(this.geo, phys);
    const user = this.isUser(root, e.va);
    let value: bigint;
    switch (e.kind) {
      case 'none':
        value = 0n;
        break;
      case 'table': {
        const pa = this.machine.allocPgtable();
        if (pa < 0) throw new RangeError(`${path}: out of page-table memory`);
        value = this.bits.mkTable(low, pa, user);
        break;
      }
      case 'leaf':
        value = this.bits.pfnHuge(low as 'pmd' | 'pud', e.pfn!, this.pgprot(user));
        break;
      case 'page':
        value = this.bits.pfnPte(e.pfn!, this.pgprot(user));
        break;
      case 'swap':
        value = this.bits.mkSwapPte(SWAP_TYPE, e.val!);
        break;
      case 'bad':
        value = this.badEntry(low, path);
        break;
    }
    this.pt.set(ptr, value);
    const got = this.decode(phys, this.pt.lo(ptr), this.pt.hi(ptr));
    const want = e.kind;
    if (got.kind !== want) {
      throw new RangeError(`${path}: the ${want} entry written at ${e.level} reads back as ${got.kind} (encoding and predicates disagree)`);
    }
  }

  /**
   * An entry p?d_bad rejects, at a physical level whose lowest alias is pgd or p4d.
   * x86-64: present with _PAGE_PSE (0x83 | address): pgd_bad wants exactly _KERNPG_TABLE (plus
   * _PAGE_USER), p4d_bad rejects any flag outside _KERNPG_TABLE | _PAGE_USER
   * (arch/x86/include/asm/pgtable.h). ARM64: a block descriptor (bits[1:0] = 0b01), which
   * p?d_bad rejects for lacking the table bit (arch/arm64/include/asm/pgtable.h). The address is
   * a fresh zeroed table, so even a walker that wrongly descended would read zeroes.
   */
  private badEntry(low: LevelName, path: string): bigint {
    const pa = this.machine.allocPgtable();
    if (pa < 0) throw new RangeError(`${path}: out of page-table memory`);
    const value = this.geo.arch === 'x86_64' ? BigInt(pa) | 0x83n : this.bits.mkTable(low, pa, false) & ~2n;
    const lo = Number(value & 0xffffffffn);
    const hi = Number(value >> 32n);
    const bad = low === 'pgd' ? this.bits.pgdBad(lo, hi) : this.bits.p4dBad(lo, hi);
    if (!bad) throw new RangeError(`${path}: the ${this.geo.arch} encoding 0x${value.toString(16)} is not ${low}_bad`);
    return value;
  }

  // ---- reading entries back ------------------------------------------------------------------

  /**
   * Classify an entry of a physical level by the tests of its lowest alias, the level Linux
   * tests it at (the folded parents' tests are trivial).
   */
  decode(phys: LevelName, lo: number, hi: number): Decoded {
    const pt = this.pt;
    switch (lowestAlias(this.geo, phys)) {
      case 'pte':
        if (pt.pteNone(lo, hi)) return { kind: 'none' };
        if (pt.ptePresent(lo, hi)) return { kind: 'page', pfn: this.bits.leafPfn('pte', lo, hi) };
        return { kind: 'swap', val: this.bits.swapOffset(lo, hi) };
      case 'pmd':
        if (pt.pmdNone(lo, hi)) return { kind: 'none' };
        if (!pt.pmdPresent(lo, hi)) return { kind: 'swap', val: this.bits.swapOffset(lo, hi) };
        if (pt.pmdLeaf(lo, hi)) return { kind: 'leaf', pfn: this.bits.leafPfn('pmd', lo, hi) };
        return { kind: 'table' };
      case 'pud':
        if (pt.pudNone(lo, hi)) return { kind: 'none' };
        if (pt.pudLeaf(lo, hi)) return { kind: 'leaf', pfn: this.bits.leafPfn('pud', lo, hi) };
        return { kind: 'table' };
      case 'p4d':
        if (this.bits.p4dNone(lo, hi)) return { kind: 'none' };
        return this.bits.p4dBad(lo, hi) ? { kind: 'bad' } : { kind: 'table' };
      case 'pgd':
        if (this.bits.pgdNone(lo, hi)) return { kind: 'none' };
        return this.bits.pgdBad(lo, hi) ? { kind: 'bad' } : { kind: 'table' };
    }
  }

  valueString(d: Decoded): string {
    switch (d.kind) {
      case 'leaf':
      case 'page':
        return `${d.kind}:${hex(d.pfn!)}`;
      case 'swap':
        return `swap:${d.val!}`;
      default:
        return d.kind;
    }
  }

  /** The canonical VA of entry i of a table (roots: the half's own numbering, x86 sign-extended). */
  private entryVa(t: TableInfo, i: number): number {
    const span = 2 ** levelShift(this.geo, t.level);
    if (!t.isRoot) return t.base + i * span;
    const va = this.geo.vaBits;
    if (t.half === 'kernel') return TWO_64 - 2 ** va + i * span;
    if (t.half === 'both' && i >= tableEntries(this.geo, 'pgd') / 2) return TWO_64 - 2 ** va + i * span;
    return i * span;
  }

  /** Walk every root depth first: `visit(table, index, ptr, decoded)` for each non-none entry. */
  private scan(visit: (t: TableInfo, i: number, d: Decoded, ptr: number) => void): void {
    const levels = this.geo.physicalLevels;
    const walkTable = (pa: number, t: TableInfo): void => {
      this.tables.set(pa, t);
      const n = tableEntries(this.geo, t.level);
      const k = levels.indexOf(t.level);
      for (let i = 0; i < n; i++) {
        const ptr = pa + i * 8;
        const lo = this.pt.lo(ptr);
        const hi = this.pt.hi(ptr);
        const d = this.decode(t.level, lo, hi);
        if (d.kind === 'none') continue;
        visit(t, i, d, ptr);
        if (d.kind === 'table' && k + 1 < levels.length) {
          const child = this.bits.tableAddr(lo, hi);
          const base = this.entryVa(t, i);
          walkTable(child, { root: t.root, level: levels[k + 1]!, base, isRoot: false, half: t.half });
        }
      }
    };
    for (const r of this.s.roots) {
      const mm = this.rootMm.get(r.name)!;
      walkTable(mm.pgd, { root: r.name, level: levels[0]!, base: 0, isRoot: true, half: r.half });
    }
  }

  /** The final tree, per root, in the README's form. */
  dumpTree(): Record<string, TreeEntry[]> {
    const out: Record<string, TreeEntry[]> = {};
    for (const r of this.s.roots) out[r.name] = [];
    this.tables = new Map();
    this.scan((t, i, d) => {
      const e: TreeEntry = { level: t.level, va: hex(this.entryVa(t, i)), kind: d.kind as TreeEntry['kind'] };
      if (d.pfn !== undefined) e.pfn = hex(d.pfn);
      if (d.val !== undefined) e.val = d.val;
      out[t.root]!.push(e);
    });
    return out;
  }

  /** The entry id of a pointer: `ROOT:pgd[i]` or `ROOT:LEVEL@BASE[i]`, found from its table. */
  entryId(ptr: number): string {
    const size = this.geo.PAGE_SIZE;
    const base = this.machine.mem.physBase;
    const table = base + Math.floor((ptr - base) / size) * size;
    let t = this.tables.get(table);
    if (t === undefined) {
      // A split or an install added tables since the last scan: rescan.
      this.tables = new Map();
      this.scan(() => {});
      t = this.tables.get(table);
    }
    if (t === undefined) return `?:0x${ptr.toString(16)}`;
    const i = (ptr - table) / 8;
    return t.isRoot ? `${t.root}:pgd[${i}]` : `${t.root}:${t.level}@${hex(t.base)}[${i}]`;
  }

  /** The value string of the entry at ptr, classified at the physical level of its table. */
  entryValue(ptr: number): string {
    const size = this.geo.PAGE_SIZE;
    const base = this.machine.mem.physBase;
    const table = base + Math.floor((ptr - base) / size) * size;
    if (!this.tables.has(table)) this.entryId(ptr);
    const t = this.tables.get(table);
    const phys = t ? t.level : 'pte';
    return this.valueString(this.decode(phys, this.pt.lo(ptr), this.pt.hi(ptr)));
  }

  /** The pte install_pte writes (default: a page at addr's own frame number). */
  pteValue(spec: PteSpec | undefined, addr: number): bigint {
    const user = addr < this.machine.TASK_SIZE;
    if (spec === undefined) return this.bits.pfnPte(Math.floor(addr / this.geo.PAGE_SIZE), this.pgprot(user));
    switch (spec.kind) {
      case 'page':
        return this.bits.pfnPte(spec.pfn, this.pgprot(user));
      case 'swap':
        return this.bits.mkSwapPte(SWAP_TYPE, spec.val);
      case 'none':
        return 0n;
    }
  }

  pteValueString(value: bigint): string {
    const lo = Number(value & 0xffffffffn);
    const hi = Number((value >> 32n) & 0xffffffffn);
    return this.valueString(this.decode('pte', lo, hi));
  }
}

/** The script: every matching rule counts a hit; the first with skip < hits <= skip + times answers. */
class Script {
  private readonly hits: number[];
  constructor(private readonly rules: readonly RuleSpec[]) {
    this.hits = rules.map(() => 0);
  }

  answer(cb: CallbackName, seq: number, sel: { addr?: number; depth?: number; entry?: string; vma: string | null }): RuleSpec | null {
    let chosen: RuleSpec | null = null;
    for (let k = 0; k < this.rules.length; k++) {
      const r = this.rules[k]!;
      if (r.cb !== cb) continue;
      if (r.seq !== undefined && r.seq !== seq) continue;
      if (r.addr !== undefined && r.addr !== sel.addr) continue;
      if (r.depth !== undefined && r.depth !== sel.depth) continue;
      if (r.entry !== undefined && r.entry !== sel.entry) continue;
      if (r.vma !== undefined && r.vma !== sel.vma) continue;
      const h = ++this.hits[k]!;
      if (chosen === null && h > r.skip && h <= r.skip + r.times) chosen = r;
    }
    return chosen;
  }
}

/** The recording mm_walk_ops: one callback per name in `ops`. */
function recordingOps(rp: Replay, script: Script, names: readonly CallbackName[], trace: TraceEvent[]): MmWalkOps {
  const vmaOf = (walk: MmWalk): string | null => (walk.vma ? (rp.vmaId.get(walk.vma) ?? walk.vma.name) : null);
  const ops: MmWalkOps = {};
  const entryCb = (cb: CallbackName) => (ptr: number, addr: number, next: number, walk: MmWalk): number => {
    const seq = trace.length;
    const entry = rp.entryId(ptr);
    const val = rp.entryValue(ptr);
    const vma = vmaOf(walk);
    const ev: TraceEvent = { seq, cb, entry, val, addr: hex(addr), next: hex(next), vma };
    const r = script.answer(cb, seq, { addr, entry, vma });
    const ret = r?.ret ?? 0;
    if (cb === 'pud_entry' || cb === 'pmd_entry') {
      // The rule's action is what the callback leaves in walk->action; without one it is untouched.
      if (r?.action !== undefined) walk.action = ACTION_OF[r.action];
      ev.action = actionName(walk.action);
    }
    ev.ret = ret;
    trace.push(ev);
    return ret;
  };
  for (const name of names) {
    switch (name) {
      case 'pgd_entry':
        ops.pgdEntry = entryCb(name);
        break;
      case 'p4d_entry':
        ops.p4dEntry = entryCb(name);
        break;
      case 'pud_entry':
        ops.pudEntry = entryCb(name);
        break;
      case 'pmd_entry':
        ops.pmdEntry = entryCb(name);
        break;
      case 'pte_entry':
        ops.pteEntry = entryCb(name);
        break;
      case 'hugetlb_entry':
        ops.hugetlbEntry = (ptr: number, hmask: number, addr: number, next: number, walk: MmWalk): number => {
          const seq = trace.length;
          const entry = rp.entryId(ptr);
          const vma = vmaOf(walk);
          const r = script.answer(name, seq, { addr, entry, vma });
          const ret = r?.ret ?? 0;
          trace.push({ seq, cb: name, entry, val: rp.entryValue(ptr), hmask: hex(hmask), addr: hex(addr), next: hex(next), vma, ret });
          return ret;
        };
        break;
      case 'pte_hole':
        ops.pteHole = (addr: number, next: number, depth: number, walk: MmWalk): number => {
          const seq = trace.length;
          const vma = vmaOf(walk);
          const r = script.answer(name, seq, { addr, depth, vma });
          const ret = r?.ret ?? 0;
          trace.push({ seq, cb: name, addr: hex(addr), next: hex(next), depth, vma, ret });
          return ret;
        };
        break;
      case 'test_walk':
        ops.testWalk = (addr: number, next: number, walk: MmWalk): number => {
          const seq = trace.length;
          const vma = vmaOf(walk);
          const r = script.answer(name, seq, { addr, vma });
          const ret = r?.ret ?? 0;
          trace.push({ seq, cb: name, addr: hex(addr), next: hex(next), vma, ret });
          return ret;
        };
        break;
      case 'pre_vma':
        ops.preVma = (start: number, end: number, walk: MmWalk): number => {
          const seq = trace.length;
          const vma = vmaOf(walk);
          const r = script.answer(name, seq, { addr: start, vma });
          const ret = r?.ret ?? 0;
          trace.push({ seq, cb: name, start: hex(start), end: hex(end), vma, ret });
          return ret;
        };
        break;
      case 'post_vma':
        ops.postVma = (walk: MmWalk): void => {
          const seq = trace.length;
          const vma = vmaOf(walk);
          script.answer(name, seq, { vma }); // counts hits; post_vma returns nothing
          trace.push({ seq, cb: name, vma });
        };
        break;
      case 'install_pte':
        ops.installPte = (addr: number, next: number, ptep: PteOut, walk: MmWalk): number => {
          const seq = trace.length;
          const vma = vmaOf(walk);
          const r = script.answer(name, seq, { addr, vma });
          const ret = r?.ret ?? 0;
          const ev: TraceEvent = { seq, cb: name, addr: hex(addr), next: hex(next), vma };
          if (ret === 0) {
            ptep.value = rp.pteValue(r?.pte, addr);
            ev.pte = rp.pteValueString(ptep.value);
          }
          ev.ret = ret;
          trace.push(ev);
          return ret;
        };
        break;
    }
  }
  return ops;
}

/** pte_offset_map failure injection: per spec, the next `times` maps in its PMD span fail. */
function installInject(rp: Replay): void {
  const m = rp.machine;
  const pmdSize = m.pgtable.PMD_SIZE;
  const specs = rp.s.inject.pteMapFail.map((f) => ({ span: Math.floor(f.addr / pmdSize), times: f.times, clear: f.effect === 'clear' }));
  if (specs.length > 0) {
    m.pteMapFault = (pmd: number, addr: number): boolean => {
      const span = Math.floor(addr / pmdSize);
      for (const f of specs) {
        if (f.times > 0 && f.span === span) {
          f.times--;
          if (f.clear) m.pgtable.clear(pmd); // the pte table went away under the walk
          return true;
        }
      }
      return false;
    };
  }
  // Set after the tree is built: only the walk's own allocations count.
  m.pgtableAllocLimit = rp.s.inject.allocLimit;
}

/** Hold what the entry points assert: both mmap_locks for write, every i_mmap_rwsem for read. */
function takeLocks(rp: Replay): void {
  rp.mm.mmapLock.downWrite();
  rp.machine.initMm.mmapLock.downWrite();
  if (rp.s.call.fn === 'walk_page_mapping') for (const f of rp.files.values()) f.iMmapRwsem.downRead();
}

function callEntryPoint(rp: Replay, ops: MmWalkOps): number {
  const c = rp.s.call;
  const mmOf = (name: 'mm' | 'init_mm' | null): MmStruct | null => (name === null ? null : rp.rootMm.get(name)!);
  const pgdOf = (name: string | null): number | null => (name === null ? null : rp.rootMm.get(name)!.pgd);
  switch (c.fn) {
    case 'walk_page_range':
      return walkPageRange(mmOf(c.mm), c.start, c.end, ops);
    case 'walk_page_range_mm':
      return walkPageRangeMm(mmOf(c.mm), c.start, c.end, ops);
    case 'walk_page_range_novma':
    case 'walk_page_range_debug':
      return walkPageRangeNovma(mmOf(c.mm), c.start, c.end, ops, pgdOf(c.pgd));
    case 'walk_kernel_page_table_range':
      return walkKernelPageTableRange(rp.machine.initMm, c.start, c.end, ops, pgdOf(c.pgd));
    case 'walk_kernel_page_table_range_lockless':
      return walkKernelPageTableRangeLockless(rp.machine.initMm, c.start, c.end, ops, pgdOf(c.pgd));
    case 'walk_page_range_vma':
      return walkPageRangeVma(rp.vmaById.get(c.vma)!, c.start, c.end, ops);
    case 'walk_page_vma':
      return walkPageVma(rp.vmaById.get(c.vma)!, ops);
    case 'walk_page_mapping':
      return walkPageMapping(rp.files.get(c.mapping)!, c.firstIndex, c.nr, ops);
  }
}

function sameEvent(a: TraceEvent, b: TraceEvent): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof TraceEvent>;
  const diff: string[] = [];
  for (const k of keys) if (a[k] !== b[k]) diff.push(k);
  return diff;
}

function sameTreeEntry(a: TreeEntry, b: TreeEntry): boolean {
  return a.level === b.level && a.va === b.va && a.kind === b.kind && a.pfn === b.pfn && a.val === b.val;
}

/** The first event where two traces differ, or undefined. */
export function compareTraces(expected: readonly TraceEvent[], got: readonly TraceEvent[]): TraceDifference | undefined {
  const n = Math.max(expected.length, got.length);
  for (let i = 0; i < n; i++) {
    const e = expected[i] ?? null;
    const g = got[i] ?? null;
    if (e === null || g === null) {
      const present = (e ?? g)!;
      return { index: i, expected: e, got: g, fields: Object.keys(present) };
    }
    const fields = sameEvent(e, g);
    if (fields.length > 0) return { index: i, expected: e, got: g, fields };
  }
  return undefined;
}

/** The first entry where two trees differ (roots in the expected order, then any extra). */
export function compareTrees(
  expected: Readonly<Record<string, readonly TreeEntry[]>>,
  got: Readonly<Record<string, readonly TreeEntry[]>>,
): TreeDifference | undefined {
  const roots = [...new Set([...Object.keys(expected), ...Object.keys(got)])];
  for (const root of roots) {
    const e = expected[root] ?? [];
    const g = got[root] ?? [];
    const n = Math.max(e.length, g.length);
    for (let i = 0; i < n; i++) {
      const a = e[i] ?? null;
      const b = g[i] ?? null;
      if (a === null || b === null || !sameTreeEntry(a, b)) return { root, index: i, expected: a, got: b };
    }
  }
  return undefined;
}

/** Replay one scenario through the real walker and compare with its expectations. */
export function replayScenario(s: Scenario): ReplayResult {
  const rp = new Replay(s);
  const trace: TraceEvent[] = [];
  const ops = recordingOps(rp, new Script(s.rules), s.ops, trace);
  // The tree as built: entry ids need its tables.
  rp.dumpTree();
  installInject(rp);
  takeLocks(rp);
  let got: number | null = null;
  let error: string | undefined;
  try {
    got = callEntryPoint(rp, ops);
  } catch (e) {
    error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  }
  rp.machine.pgtableAllocLimit = null;
  rp.machine.pteMapFault = null;
  const tree = rp.dumpTree();
  const firstDifference = compareTraces(s.expected.trace, trace);
  const treeDifference = compareTrees(s.expected.tree, tree);
  const agree = error === undefined && got === s.expected.ret && firstDifference === undefined && treeDifference === undefined;
  return {
    name: s.name,
    rule: s.rule,
    agree,
    ret: { expected: s.expected.ret, got },
    ...(firstDifference ? { firstDifference } : {}),
    ...(treeDifference ? { treeDifference } : {}),
    ...(error !== undefined ? { error } : {}),
    trace,
    tree,
  };
}
