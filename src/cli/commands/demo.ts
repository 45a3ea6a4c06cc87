/**
 * mmulab demo: the built-in tour (what `npm start` runs). The default parts build a realistic
 * system on x86-64 and on ARM64 with the Linux mm model — a process with text, data, heap and
 * stack, a shared file mapping, an anonymous THP, a hugetlb page, a device window mapped with
 * remap_pfn_range, and a forked child sharing pages copy-on-write — then show its page tables
 * (ptdump), smaps-like totals, three translations explained level by level (the hardware walk),
 * TLB statistics for a short access trace, one walk throughput figure, and the teardown's leak
 * check. Each system part fits a screen (≤ 60 lines of ≤ 100 columns).
 *
 * The system is a built-in scenario (src/mm/scenario, the format of `mmulab run`), so the same
 * code that runs examples/*.json builds it. Extra parts: geometry, decode, walk.
 */
import {
  GEOMETRY_NAMES,
  GEOMETRIES,
  Machine,
  VM_READ,
  VM_WRITE,
  WalkResult,
  attachCpu,
  createCpu,
  doUserAddrFault,
  entryAlloc,
  mmapReadLock,
  mmapReadUnlock,
  parseScenario,
  processTotals,
  ptdumpMappings,
  registersFor,
  runScenario,
  setPteAt,
  smaps,
  teardownCheck,
  walkPageRange,
  type AccessKind,
  type Geometry,
  type GeometryName,
  type ImageRoot,
  type MmStruct,
  type MmWalkOps,
  type PtdumpMapping,
  type ScenarioRun,
} from '../../index';
import { parse } from '../args';
import type { Command, Io } from '../command';
import { UsageError } from '../errors';
import { briefWidths, explainTranslation, explanationBrief } from '../explain-format';
import { hex, sizeName, type Style } from '../style';
import { formatDecoded } from './decode';

export const usage = `Usage: mmulab demo [--part x86_64|arm64|geometry|decode|walk]

A tour of mmulab on its built-in defaults. The default parts (x86_64, arm64) build the same system
on each architecture with the Linux mm model: a process with text, data, heap and stack, a shared
file mapping, an anonymous THP, a hugetlb page and a device window (remap_pfn_range), forked into
a child that shares pages copy-on-write. Each part shows the page tables of both processes, smaps
totals, three translations explained level by level, TLB statistics for a short access trace, a
walk throughput figure and the teardown's leak check, in one screen.

Options:
  --part NAME   show one part only: x86_64, arm64 (the system on one architecture), geometry (every
                configuration's page-table geometry), decode (descriptors decoded field by field),
                walk (walk_page_range over a half-populated VMA)
  -h, --help    this help

Examples:
  mmulab demo
  mmulab demo --part arm64
  mmulab demo | less -R`;

// ---- the system: a built-in scenario ------------------------------------------------------------------

/** Where each architecture's device window lives: outside RAM (x86-64 RAM from 0, ARM64 from 1 GiB). */
const DEVICE_PFN: Readonly<Record<'x86_64' | 'arm64', string>> = { x86_64: '0xfd000', arm64: '0x10000' };

/**
 * The demo's system as a scenario (docs/scenarios.md): the process "app" maps text and data from
 * its executable (MAP_PRIVATE, at the addresses a non-PIE ELF loads to), a heap, a stack at the top
 * of user space, a MAP_SHARED data file, a 4M anonymous region (THP always: a PMD-mapped THP), a 2M
 * MAP_HUGETLB page and a driver's window that remap_pfn_range maps write-combining; it touches
 * each, then forks "child", which writes the heap (copy-on-write) and reads the shared file.
 */
export function demoScenario(geo: GeometryName): Record<string, unknown> {
  const arch = GEOMETRIES[geo].arch;
  const top = GEOMETRIES[geo].TASK_SIZE;
  // The stack VMA ends at the top of user space (TASK_SIZE), 132K as a fresh process's.
  const stack = '0x' + (top - 0x21000).toString(16);
  return {
    format: 'mmulab-scenario/1',
    description: 'mmulab demo: a process and its fork',
    machine: { geometry: geo, memory: '64M', thp: 'always' },
    files: [
      { name: 'app', size: '64K', fill: 'pattern' },
      { name: 'data.db', size: '64K', fill: 'pattern' },
      { name: 'fb0', kind: 'device', size: '1M' },
    ],
    processes: [
      {
        name: 'app',
        ops: [
          { op: 'mmap', as: 'text', addr: '0x400000', length: '32K', prot: ['read', 'exec'], flags: ['private', 'fixed'], file: 'app' },
          { op: 'mmap', as: 'data', addr: '0x408000', length: '16K', prot: ['read', 'write'], flags: ['private', 'fixed'], file: 'app', offset: '32K' },
          { op: 'mmap', as: 'heap', addr: '0x40c000', length: '64K', prot: ['read', 'write'], flags: ['private', 'anonymous', 'fixed'] },
          { op: 'mmap', as: 'stack', addr: stack, length: '132K', prot: ['read', 'write'], flags: ['private', 'anonymous', 'fixed', 'growsdown'] },
          { op: 'mmap', as: 'shared', length: '64K', prot: ['read', 'write'], flags: ['shared'], file: 'data.db' },
          { op: 'mmap', as: 'thp', length: '4M', prot: ['read', 'write'], flags: ['private', 'anonymous'] },
          { op: 'mmap', as: 'huge', length: '2M', prot: ['read', 'write'], flags: ['private', 'anonymous', 'hugetlb'], hugepage_size: '2M' },
          { op: 'mmap', as: 'fb', length: '64K', prot: ['read', 'write'], flags: ['shared'], file: 'fb0' },
          { op: 'remap_pfn', at: 'fb', pfn: DEVICE_PFN[arch], length: '64K', cache: 'wc' },
          { op: 'touch', at: 'text', access: 'exec' },
          { op: 'write', at: 'data', text: 'initialised data' },
          { op: 'touch', at: 'heap', access: 'write', count: 4 },
          { op: 'touch', at: 'stack+128K', access: 'write' },
          { op: 'write', at: 'shared', text: 'shared file page' },
          { op: 'touch', at: 'thp', access: 'write' },
          { op: 'touch', at: 'huge', access: 'write' },
          { op: 'fork', child: 'child' },
        ],
      },
    ],
    steps: [
      { process: 'child', op: 'write', at: 'heap', text: 'child copy' },
      { process: 'child', op: 'read', at: 'shared', length: 16 },
    ],
  };
}

/** The built system: the run, both processes, and where each mapping landed. */
export interface DemoSystem {
  readonly run: ScenarioRun;
  readonly geo: Geometry;
  readonly app: MmStruct;
  readonly child: MmStruct;
  /** Mapping name → address, from the run's log (mmap results). */
  readonly at: ReadonlyMap<string, number>;
}

export function buildDemoSystem(geo: GeometryName): DemoSystem {
  const run = runScenario(parseScenario(demoScenario(geo)));
  if (run.failures.length > 0) throw new Error(`demo scenario on ${geo}: ${run.failures.join('; ')}`);
  const at = new Map<string, number>();
  for (const e of run.log) {
    if (e.op === 'mmap' && e.outcome === 'ok' && typeof e.detail.as === 'string') at.set(e.detail.as, Number(e.detail.addr));
  }
  return { run, geo: run.machine.geo, app: run.processes.get('app')!, child: run.processes.get('child')!, at };
}

/**
 * The CPU registers for running `mm` (machine.json names). ARM64: TTBR0_EL1 carries the mm's ASID
 * (bits 63:48, as Linux's cpu_switch_mm sets it), so TLBI by ASID reaches the entries; TCR_EL1.HA
 * and HD are set as Linux sets them on a CPU with FEAT_HAFDBS (hardware Access flag and dirty state).
 */
export function demoRegisters(sys: DemoSystem, mm: MmStruct): Record<string, bigint> {
  const m = sys.run.machine;
  const regs = registersFor(m, mm.pgd, m.initMm.pgd);
  if (sys.geo.arch === 'arm64') {
    regs.ttbr0_el1 = regs.ttbr0_el1! | (BigInt(mm.asid & 0xffff) << 48n);
    regs.tcr_el1 = regs.tcr_el1! | (1n << 39n) | (1n << 40n);
  }
  return regs;
}

function userRoot(sys: DemoSystem, mm: MmStruct): ImageRoot {
  const g = sys.geo;
  return g.arch === 'x86_64'
    ? { name: 'cr3', table: mm.pgd, start: 0, end: 2 ** (g.vaBits - 1) }
    : { name: 'ttbr0_el1', table: mm.pgd, start: 0, end: 2 ** g.vaBits };
}

/** The user half of mm's tables as merged ranges (`mmulab dump --json`'s ranges). */
export function demoPtdump(sys: DemoSystem, mm: MmStruct): PtdumpMapping[] {
  const opts = sys.geo.arch === 'arm64' ? { tcr: demoRegisters(sys, mm).tcr_el1! } : {};
  return ptdumpMappings(sys.run.machine, [userRoot(sys, mm)], opts);
}

// ---- formatting the parts -------------------------------------------------------------------------

/**
 * Memory types by AttrIndx as Linux programs MAIR_EL1 (arch/arm64/include/asm/memory.h MT_*):
 * 0 Normal write-back, 1 Normal tagged, 2 Normal non-cacheable, 3 Device-nGnRnE, 4 Device-nGnRE.
 */
const MEM_TYPES = ['WB', 'Tagged', 'NC', 'nGnRnE', 'nGnRE', 'Attr5', 'Attr6', 'Attr7'];

/** A range's effective attributes in fixed columns, Linux ptdump style. */
export function rangeAttrs(g: Geometry, a: Readonly<Record<string, boolean | number>>): string {
  if (g.arch === 'x86_64') {
    const cache = [a.pwt ? 'PWT' : '', a.pcd ? 'PCD' : '', a.pat ? 'PAT' : ''].filter(Boolean).join(' ');
    return [a.us ? 'USR' : '   ', a.rw ? 'RW' : 'ro', a.nx ? 'NX' : 'x ', a.a ? 'A' : ' ', a.d ? 'D' : ' ', a.g ? 'G' : ' ', cache].join(' ').trimEnd();
  }
  const ap = Number(a.ap);
  return [
    ap & 1 ? 'USR' : '   ',
    ap & 2 ? 'ro' : 'RW',
    a.uxn ? 'UXN' : '   ',
    a.pxn ? 'PXN' : '   ',
    a.af ? 'AF' : '  ',
    a.ng ? 'nG' : '  ',
    a.dbm ? 'DBM' : '   ',
    MEM_TYPES[Number(a.attr_indx)]!,
    a.contiguous ? 'CONT' : '',
  ]
    .join(' ')
    .trimEnd();
}

function levelName(g: Geometry, hw: number): string {
  const l = g.physicalLevels.find((p) => g.hwLevel[p] === hw);
  return l ?? String(hw);
}

function vmaName(mm: MmStruct, addr: number): string {
  const v = mm.vmaList.find((x) => x.vmStart <= addr && addr < x.vmEnd);
  return v ? v.name || '(anon)' : '-';
}

function ptdumpBlock(sys: DemoSystem, mm: MmStruct, other: MmStruct, s: Style): string[] {
  const g = sys.geo;
  const mine = demoPtdump(sys, mm);
  const theirs = demoPtdump(sys, other);
  // Bytes of a range the other process maps to the same physical addresses (COW-shared pages,
  // the THP, the hugetlb page, the device window, the shared file page).
  const same = (r: PtdumpMapping): number => {
    let n = 0;
    for (const t of theirs) {
      const lo = Math.max(r.start, t.start);
      const hi = Math.min(r.end, t.end);
      if (lo < hi && t.pa - t.start === r.pa - r.start) n += hi - lo;
    }
    return n;
  };
  const rows = mine.map((r) => [
    `${hex(r.start)}-${hex(r.end)}`,
    sizeName(r.end - r.start),
    levelName(g, r.level),
    hex(r.pa),
    rangeAttrs(g, r.attrs),
    vmaName(mm, r.start),
    same(r) === 0 ? '' : same(r) === r.end - r.start ? `= ${other.name}` : `= ${other.name} (${sizeName(same(r))})`,
  ]);
  const w = [0, 1, 2, 3, 4, 5].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = [
    s.bold(`Page tables of ${mm.name}`) + s.dim(` (pgd ${hex(mm.pgd)}; merged leaves, effective attributes; = ${other.name}: same page there)`),
  ];
  for (const r of rows) {
    lines.push(
      `  ${r[0]!.padEnd(w[0]!)} ${r[1]!.padStart(w[1]!)} ${r[2]!.padEnd(w[2]!)} ${r[3]!.padEnd(w[3]!)} ${r[4]!.padEnd(w[4]!)} ${s.cyan(r[5]!.padEnd(w[5]!))} ${s.dim(r[6]!)}`.trimEnd(),
    );
  }
  return lines;
}

function smapsBlock(sys: DemoSystem, s: Style): string[] {
  const head = ['smaps totals (kB)', 'Size', 'Rss', 'Pss', 'Shared', 'Private', 'Anon', 'AnonHuge', 'Hugetlb', 'Swap', 'PT pages'];
  const rows: string[][] = [];
  for (const mm of [sys.app, sys.child]) {
    mmapReadLock(mm);
    let entries;
    try {
      entries = smaps(mm);
    } finally {
      mmapReadUnlock(mm);
    }
    const sum = (k: 'Size' | 'Rss' | 'Pss' | 'Shared_Clean' | 'Shared_Dirty' | 'Private_Clean' | 'Private_Dirty' | 'Anonymous' | 'AnonHugePages' | 'Swap') =>
      entries.reduce((a, e) => a + e[k], 0);
    const t = processTotals(mm.name, mm);
    rows.push([
      mm.name,
      String(sum('Size')),
      String(sum('Rss')),
      String(sum('Pss')),
      String(sum('Shared_Clean') + sum('Shared_Dirty')),
      String(sum('Private_Clean') + sum('Private_Dirty')),
      String(sum('Anonymous')),
      String(sum('AnonHugePages')),
      String((t.rss.hugetlb * sys.geo.PAGE_SIZE) / 1024),
      String(sum('Swap')),
      String(t.pageTablesTotal),
    ]);
  }
  const all = [head, ...rows];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return [s.bold(line(head)), ...rows.map(line)];
}

/** Wrap a long line at `width` columns, continuation lines indented by `indent` spaces. */
function wrap(text: string, width: number, indent: number): string[] {
  if (visible(text).length <= width) return [text];
  const lead = /^ */.exec(text)![0];
  const out: string[] = [];
  let line = lead;
  for (const word of text.slice(lead.length).split(' ')) {
    if (line.trim() !== '' && visible(line).length + 1 + visible(word).length > width) {
      out.push(line);
      line = ' '.repeat(indent) + word;
    } else line = line.trim() === '' ? line + word : `${line} ${word}`;
  }
  if (line.trim() !== '') out.push(line);
  return out;
}

/** Text without ANSI escapes (for widths). */
function visible(t: string): string {
  // eslint-disable-next-line no-control-regex
  return t.replace(/\x1b\[[0-9;]*m/g, '');
}

interface Probe {
  readonly what: string;
  readonly va: number;
  readonly access: AccessKind;
}

function explainBlock(sys: DemoSystem, s: Style): string[] {
  const at = (n: string) => sys.at.get(n)!;
  const probes: Probe[] = [
    { what: 'text, a user fetch', va: at('text') + 0x10, access: 'exec' },
    { what: 'THP, a user read', va: at('thp') + 0x12_3456, access: 'read' },
    { what: 'heap after fork, a user write (COW)', va: at('heap') + 0x20, access: 'write' },
  ];
  const m = sys.run.machine;
  const regs = demoRegisters(sys, sys.app);
  const cpu = createCpu(sys.geo.arch, m.mem, regs, { tlb: 'none' });
  const lines = [s.bold('Three translations of app, level by level') + s.dim(' (hardware walk; mmulab explain IMAGE VA --brief)')];
  const ctx = { mmu: cpu.mmu, bits: m.bits, geo: sys.geo, registers: regs, contains: (pa: number, len: number) => m.mem.contains(pa, len) };
  const es = probes.map((p) => explainTranslation(ctx, BigInt(p.va), p.access, true));
  const widths = briefWidths(es, sys.geo);
  es.forEach((e, i) => {
    const outcome = e.result ? s.green(`→ ${hex(e.result.pa)}`) : s.red(`→ ${e.fault?.kind ?? 'error'} fault`);
    lines.push(`${s.cyan(hex(probes[i]!.va))} ${probes[i]!.what} ${outcome}`);
    for (const l of explanationBrief(e, sys.geo, s, widths)) lines.push(...wrap(l, 100, 4));
  });
  return lines;
}

/** The access trace: `rounds` passes over a working set touching every kind of mapping. */
function traceOf(sys: DemoSystem): Probe[] {
  const at = (n: string) => sys.at.get(n)!;
  const ps = sys.geo.PAGE_SIZE;
  const t: Probe[] = [];
  t.push({ what: 'text', va: at('text'), access: 'exec' }, { what: 'text', va: at('text') + 0x40, access: 'exec' });
  t.push({ what: 'data', va: at('data'), access: 'read' });
  for (let i = 0; i < 4; i++) t.push({ what: 'heap', va: at('heap') + i * ps, access: 'write' });
  t.push({ what: 'stack', va: at('stack') + 128 * 1024, access: 'write' });
  t.push({ what: 'shared', va: at('shared'), access: 'read' }, { what: 'shared', va: at('shared') + 8, access: 'write' });
  for (let i = 0; i < 16; i++) t.push({ what: 'thp', va: at('thp') + i * 128 * 1024, access: 'read' });
  for (let i = 0; i < 8; i++) t.push({ what: 'huge', va: at('huge') + i * 256 * 1024, access: 'read' });
  for (let i = 0; i < 16; i++) t.push({ what: 'fb', va: at('fb') + i * ps, access: 'write' });
  return t;
}

function pct(n: number): string {
  return `${(100 * n).toFixed(1)} %`;
}

function byKey(o: Readonly<Record<string, number>>, name: (k: string) => string): string {
  return Object.entries(o)
    .map(([k, v]) => `${name(k)} ×${v}`)
    .join(', ');
}

/**
 * TLB statistics: app runs the trace on a CPU (the architecture's default TLB) attached to the
 * machine, so the mm layer's shootdowns reach it as INVLPG / TLBI. A hardware fault (the COW
 * pages after fork) goes to do_user_addr_fault, as the CPU's #PF / Data Abort handler would, and the
 * access is retried. Then one throughput figure: debugger walks over the trace's addresses.
 */
function traceBlock(sys: DemoSystem, s: Style): string[] {
  const m = sys.run.machine;
  const cpu = createCpu(sys.geo.arch, m.mem, demoRegisters(sys, sys.app));
  const detach = attachCpu(m, cpu);
  const trace = traceOf(sys);
  const rounds = 4;
  const out = new WalkResult();
  let resolved = 0;
  const signals: string[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      for (const p of trace) {
        const hi = Math.floor(p.va / 2 ** 32);
        const lo = p.va % 2 ** 32;
        cpu.access(hi, lo, p.access, true, out);
        if (out.fault === null) continue;
        // The fault handler: handle_mm_fault resolves it (COW copy or reuse), then the retry.
        const f = doUserAddrFault(sys.app, p.va, p.access);
        if (f.signal) {
          signals.push(`${f.signal} at ${hex(p.va)}`);
          continue;
        }
        resolved++;
        cpu.access(hi, lo, p.access, true, out);
        if (out.fault !== null) signals.push(`${out.fault} again at ${hex(p.va)}`);
      }
    }
  } finally {
    detach();
  }
  const st = cpu.statistics();
  const lvl = (k: string) => `level ${k}`;
  const lines = [
    s.bold(`TLB (${st.tlb}, the ${sys.geo.arch === 'x86_64' ? 'x86-64' : 'ARM64'} default)`) +
      s.dim(` — app runs ${rounds} passes over ${trace.length} addresses in every mapping`),
    `  ${st.accesses} accesses: ${st.hits} hits (${pct(st.hitRate)}; L1 ${st.l1Hits}, L2 ${st.l2Hits}), ${st.misses} misses, ${st.walks} walks` +
      (st.dirtyWalks ? ` (${st.dirtyWalks} to set the dirty state)` : ''),
    `  walks ending at ${byKey(st.walksByLevel, lvl)}; ${st.memRefsPerWalk.toFixed(2)} descriptor reads per walk`,
    `  fills by page size: ${byKey(st.fillsByPageSize, (k) => sizeName(Number(k)))}`,
    `  faults: ${st.faults ? byKey(st.faultsByKind, (k) => k) : 'none'}` +
      (resolved ? ` — each resolved by handle_mm_fault (copy-on-write) and the access retried` : ''),
  ];
  if (signals.length) lines.push(s.red(`  unresolved: ${signals.join(', ')}`));

  // Walk throughput: debugger walks (nothing written) over the trace's pages: 150 ms to let the JIT
  // optimise the walk, then 100 ms measured.
  const pages = trace.map((p) => [Math.floor(p.va / 2 ** 32), p.va % 2 ** 32] as const);
  const mmu = cpu.mmu;
  const timed = (ms: number): { walks: number; refs: number; ns: number } => {
    let walks = 0;
    let refs = 0;
    let ns = 0;
    const t0 = process.hrtime.bigint();
    while (ns < ms * 1e6) {
      for (let k = 0; k < 64; k++) {
        for (let i = 0; i < pages.length; i++) {
          mmu.walk(pages[i]![0], pages[i]![1], 'read', true, true, out);
          refs += out.memRefs;
        }
      }
      walks += 64 * pages.length;
      ns = Number(process.hrtime.bigint() - t0);
    }
    return { walks, refs, ns };
  };
  timed(150);
  const w = timed(100);
  lines.push(
    s.bold('Walk throughput: ') +
      `${((w.walks / w.ns) * 1e3).toFixed(1)} M hardware walks/s, ${(w.refs / w.walks).toFixed(2)} descriptor reads each ` +
      s.dim(`(debugger walks, ${(w.ns / 1e6).toFixed(0)} ms)`),
  );
  return lines;
}

/** What one system part shows, with the data behind it (for tests). */
export interface SystemPart {
  readonly text: string;
  readonly ptdumps: Readonly<Record<string, readonly PtdumpMapping[]>>;
  readonly at: ReadonlyMap<string, number>;
  readonly leakedFrames: number;
  readonly teardownErrors: readonly string[];
}

export function systemPart(geo: GeometryName, s: Style): SystemPart {
  const t0 = process.hrtime.bigint();
  const sys = buildDemoSystem(geo);
  const g = sys.geo;
  const m = sys.run.machine;
  const lines: string[] = [];
  lines.push(s.bold(`${g.arch === 'x86_64' ? 'x86-64' : 'ARM64'} (${geo}): a process and its fork, built by the Linux mm model`));
  lines.push(
    ...wrap(
      `On ${sizeName(m.mem.size)} of emulated memory, THP always: app maps text and data from its executable, a heap, a ` +
        'stack, a MAP_SHARED file, a 4M anonymous region (one THP), a 2M hugetlb page and a device window ' +
        `(remap_pfn_range at pa ${hex(Number(DEVICE_PFN[g.arch]) * g.PAGE_SIZE)}, write-combining), touches each, and forks ` +
        'child, which writes the heap (copy-on-write) and reads the file.',
      100,
      0,
    ),
  );
  const ptdumps = { app: demoPtdump(sys, sys.app), child: demoPtdump(sys, sys.child) };
  lines.push('', ...ptdumpBlock(sys, sys.app, sys.child, s), ...ptdumpBlock(sys, sys.child, sys.app, s));
  lines.push('', ...smapsBlock(sys, s));
  lines.push('', ...explainBlock(sys, s));
  lines.push('', ...traceBlock(sys, s));
  const rep = teardownCheck(sys.run);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const ok = rep.leakedFrames === 0 && rep.errors.length === 0;
  lines.push(
    (ok ? s.green('Teardown: ') : s.red('Teardown: ')) +
      `both exit, caches dropped: ${rep.freeFramesAfter} of ${m.frames.totalFrames} frames free, ` +
      (ok ? 'no frame leaked' : s.red(`${rep.leakedFrames} frames leaked ${rep.errors.join('; ')}`)) +
      s.dim(` (${ms.toFixed(0)} ms)`),
  );
  return { text: lines.join('\n'), ptdumps, at: sys.at, leakedFrames: rep.leakedFrames, teardownErrors: rep.errors };
}

function geometryTable(s: Style): string {
  const head = ['config', 'levels', 'page', 'PGDIR', 'P4D', 'PUD', 'PMD', 'ptrs/table', 'folded', 'hw levels'];
  const rows = GEOMETRY_NAMES.map((n) => {
    const g: Geometry = GEOMETRIES[n];
    const shift = (lvl: 'p4d' | 'pud' | 'pmd', v: number) => (g.folded.includes(lvl) ? '-' : String(v));
    const ptrs = `${g.PTRS_PER_PGD}/${g.PTRS_PER_P4D}/${g.PTRS_PER_PUD}/${g.PTRS_PER_PMD}/${g.PTRS_PER_PTE}`;
    const hw = g.physicalLevels.map((p) => `${p}=${g.hwLevel[p]}`).join(' ');
    return [n, String(g.pgtableLevels), sizeName(g.PAGE_SIZE), String(g.PGDIR_SHIFT), shift('p4d', g.P4D_SHIFT), shift('pud', g.PUD_SHIFT), shift('pmd', g.PMD_SHIFT), ptrs, g.folded.join(',') || '-', hw];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [s.bold('Page-table geometry (Linux names; shifts in bits; ptrs per pgd/p4d/pud/pmd/pte)'), s.dim(line(head)), ...rows.map(line)].join('\n');
}

const SAMPLES: { geo: string; level: number; value: bigint; what: string }[] = [
  { geo: 'x86_64-4level', level: 1, value: 0x8000_0000_1234_5067n, what: 'a user data page: present, writable, user, accessed, dirty, NX' },
  { geo: 'x86_64-4level', level: 2, value: 0x0000_0000_fee0_01e3n, what: 'a 2 MiB kernel page, global' },
  { geo: 'x86_64-5level', level: 5, value: 0x0000_0000_0010_2067n, what: 'an LA57 PML5 entry pointing to a PML4 table' },
  { geo: 'arm64-4k-48', level: 3, value: 0x00e8_0000_4123_4f43n, what: 'a 4K user page (Linux PAGE_SHARED-like)' },
  { geo: 'arm64-4k-48', level: 1, value: 0x0060_0000_4000_0711n, what: 'a 1 GiB kernel block' },
  { geo: 'arm64-64k-52', level: 2, value: 0x0000_0000_2000_f003n, what: 'a 64K/52-bit (LPA) table descriptor with OA[51:48] in bits 15:12' },
];

function decodeSamples(s: Style): string {
  const out: string[] = [s.bold('Descriptors, decoded as the hardware reads them')];
  for (const smp of SAMPLES) {
    const m = new Machine({ geometry: smp.geo as Geometry['name'], memSize: 1 << 20 });
    out.push('', s.cyan(`${smp.geo}: ${smp.what}`), formatDecoded(m.bits.decode(smp.value, smp.level), m.geo, s));
  }
  return out.join('\n');
}

/** Map `pages` 4K pages at `base` in a fresh mm, then count them back with walk_page_range. */
function walkDemo(geo: Geometry['name'], base: number, pages: number, s: Style): string {
  const m = new Machine({ geometry: geo, memSize: 64 * 2 ** 20 });
  const mm = m.newMm('demo');
  const pageSize = m.geo.PAGE_SIZE;
  mm.insertVma({ start: base, end: base + pages * pageSize, flags: VM_READ | VM_WRITE, name: '[heap]' });
  const prot = m.bits.pgprot({ write: true, user: true });
  for (let i = 0; i < pages; i += 2) {
    const addr = base + i * pageSize;
    const ptep = entryAlloc(mm, addr, 'pte');
    setPteAt(mm, addr, ptep, m.bits.pfnPte(0x8000 + i, prot));
  }
  const counts = { pte: 0, present: 0, holes: 0, pmd: 0 };
  const ops: MmWalkOps<typeof counts> = {
    pmdEntry: (_pmd, _a, _n, w) => {
      w.private.pmd++;
      return 0;
    },
    pteEntry: (pte, _a, _n, w) => {
      w.private.pte++;
      if (w.pt.ptePresent(w.pt.lo(pte), w.pt.hi(pte))) w.private.present++;
      return 0;
    },
    pteHole: (_a, _n, _d, w) => {
      w.private.holes++;
      return 0;
    },
  };
  mmapReadLock(mm);
  const t0 = process.hrtime.bigint();
  const ret = walkPageRange(mm, 0, base + 2 * pages * pageSize, ops, counts);
  const dt = Number(process.hrtime.bigint() - t0) / 1e6;
  mmapReadUnlock(mm);
  return (
    `${s.cyan(geo.padEnd(14))} VMA ${hex(base)}-${hex(base + pages * pageSize)}: walk_page_range returned ${ret}; ` +
    `pmd_entry ×${counts.pmd}, pte_entry ×${counts.pte} (${counts.present} present), pte_hole ×${counts.holes}  ${s.dim(`${dt.toFixed(1)} ms`)}`
  );
}

const SYSTEM_PARTS: Readonly<Record<string, GeometryName>> = { x86_64: 'x86_64-4level', arm64: 'arm64-4k-48' };

export const demo: Command = {
  name: 'demo',
  summary: 'a tour of mmulab on its built-in defaults (what npm start runs)',
  usage,
  run(argv: string[], io: Io): number {
    const { values } = parse(argv, { part: { type: 'string' } }, 0);
    if (values.help) {
      io.out(usage);
      return 0;
    }
    const part = values.part as string | undefined;
    const s = io.style;
    let leaked = false;
    const system = (geo: GeometryName) => () => {
      const p = systemPart(geo, s);
      if (p.leakedFrames !== 0 || p.teardownErrors.length > 0) leaked = true;
      return p.text;
    };
    const parts: Record<string, () => string> = {
      x86_64: system(SYSTEM_PARTS.x86_64!),
      arm64: system(SYSTEM_PARTS.arm64!),
      geometry: () => geometryTable(s),
      decode: () => decodeSamples(s),
      walk: () =>
        [
          s.bold('walk_page_range over binary tables (every other page of the VMA mapped)'),
          walkDemo('x86_64-4level', 0x7f00_0000_0000, 1024, s),
          walkDemo('x86_64-5level', 0x7f00_0000_0000, 1024, s),
          walkDemo('arm64-4k-48', 0x7f00_0000_0000, 1024, s),
          walkDemo('arm64-16k-47', 0x7f00_0000_0000, 1024, s),
          walkDemo('arm64-64k-42', 0x300_0000_0000, 1024, s),
        ].join('\n'),
    };
    if (part !== undefined && !parts[part]) {
      throw new UsageError(`--part: '${part}' is not one of ${Object.keys(parts).join(', ')}`);
    }
    const chosen = part ? [part] : Object.keys(SYSTEM_PARTS);
    for (let i = 0; i < chosen.length; i++) io.out((i > 0 ? '\n' : '') + parts[chosen[i]!]!());
    // A leak is a model bug, not a user error: say so in the exit status too.
    return leaked ? 1 : 0;
  },
};
