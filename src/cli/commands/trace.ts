/** mmulab trace: replay an access trace through a TLB model and the hardware walk of an image. */
import { readFileSync } from 'node:fs';
import { TlbSpecError, TraceError, createCpu, imageCpuParams, loadImage, parseTlbSpec, parseTrace, replayTrace, type ReplayStatistics } from '../../index';
import { parse } from '../args';
import type { Command, Io } from '../command';
import { InputError, UsageError } from '../errors';
import { ProgressBar } from '../progress';
import { sizeName } from '../style';
import { parseRegOptions } from './translate';

export const usage = `Usage: mmulab trace IMAGE TRACE [--tlb SPEC] [--walk-cache] [--json] [--reg NAME=VALUE]...

Replay the accesses of TRACE through one CPU of the image: TLB lookups (hits re-check permissions
from the cached entry), walks on misses, accessed/dirty updates, faults (counted, not fatal). Prints
the statistics an architecture simulator reports: hits and misses per TLB array, walks and the level
they end at, faults by kind, the page-size mix of fills, memory references per walk.

IMAGE is an image folder (memory.bin + machine.json) or an ELF core from QEMU's dump-guest-memory.
TRACE is text, one access per line, "VA KIND [u]" (VA hex; KIND r/w/x or read/write/exec; u for a
user-mode access; # comments), or binary: "MMUTRC1\\0" then 9-byte records (u64 LE VA, u8 kind | user<<2).

Options:
  --tlb SPEC          skylake (x86-64 default), neoverse-n1 (ARM64 default), none, or arrays
                      LEVEL:SIZES:ENTRIESxWAYS joined by commas, e.g. L1:4K:64x4,L2:4K+2M:1536x12
                      (SIZES 4K, 2M, 1G, … joined by +, or any; WAYS a number or full)
  --walk-cache        model the paging-structure caches (x86 PML5E/PML4E/PDPTE/PDE) / ARM walk caches:
                      "effective" memory references are those the caches would not have supplied
  --reg NAME=VALUE    set or override a register (for ARM64 ELF cores, which carry none)
  --json              one JSON object (snake_case keys) instead of the table
  -h, --help          this help

Examples:
  mmulab trace images/x86 accesses.txt
  mmulab trace images/arm64 run.mmutrc --tlb L1:any:48xfull,L2:any:1280x5 --walk-cache --json`;

function snake(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(snake);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [/^[0-9]/.test(k) ? k : k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase()), snake(x)]));
  }
  return v;
}

function pct(n: number, d: number): string {
  return d === 0 ? '-' : `${((100 * n) / d).toFixed(2)}%`;
}

function byKey(o: Readonly<Record<string, number>>, label: (k: string) => string): string {
  const e = Object.entries(o);
  return e.length === 0 ? 'none' : e.map(([k, v]) => `${label(k)} ${v}`).join(', ');
}

export function statisticsText(s: ReplayStatistics): string[] {
  const lines = [
    `accesses        ${s.accesses}  (${s.records} records, ${s.seconds.toFixed(3)} s)`,
    `TLB             ${s.tlb}: hits ${s.hits} (${pct(s.hits, s.accesses)}; L1 ${s.l1Hits}, L2 ${s.l2Hits}), misses ${s.misses}`,
  ];
  for (const a of s.tlbArrays) lines.push(`  ${a.name.padEnd(14)} ${String(a.entries).padStart(5)} × ${a.ways}-way  hits ${a.hits}  fills ${a.fills}  evictions ${a.evictions}`);
  lines.push(
    `walks           ${s.walks} (${s.dirtyWalks} for a write to a clean entry); ending at level: ${byKey(s.walksByLevel, (k) => k + ':')}`,
    `faults          ${s.faults}${s.faults ? ` — ${byKey(s.faultsByKind, (k) => k)}` : ''}${s.faultsFromTlb ? `; ${s.faultsFromTlb} raised from TLB entries` : ''}`,
    `fills by size   ${byKey(s.fillsByPageSize, (k) => sizeName(Number(k)))}${s.uncachedFills ? `; ${s.uncachedFills} not cacheable by any array` : ''}`,
    `memory refs     ${s.memRefs} (${s.memRefsPerWalk.toFixed(2)} per walk)`,
  );
  if (s.walkCache) {
    lines.push(
      `  with walk caches ${s.memRefsEffective} (${s.memRefsEffectivePerWalk.toFixed(2)} per walk); cache hits by level: ${byKey(s.walkCacheHitsByLevel, (k) => k + ':')}`,
    );
  }
  if (s.externalAborts) lines.push(`external aborts ${s.externalAborts} (walks that read outside emulated memory)`);
  return lines;
}

export const trace: Command = {
  name: 'trace',
  summary: 'replay an access trace through a TLB model and print hit/miss/walk statistics',
  usage,
  run(argv: string[], io: Io): number {
    const { values, positionals } = parse(
      argv,
      { tlb: { type: 'string' }, 'walk-cache': { type: 'boolean' }, json: { type: 'boolean' }, reg: { type: 'string', multiple: true } },
      2,
    );
    if (values.help) {
      io.out(usage);
      return 0;
    }
    if (positionals.length !== 2) throw new UsageError('IMAGE and TRACE are required');
    let tlb;
    try {
      tlb = values.tlb === undefined ? undefined : parseTlbSpec(values.tlb as string);
    } catch (e) {
      if (e instanceof TlbSpecError) throw new UsageError(`--tlb: ${e.message}`);
      throw e;
    }
    const tracePath = positionals[1]!;
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(tracePath);
    } catch (e) {
      throw new InputError(`${tracePath}: cannot read the trace (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    let records;
    try {
      records = parseTrace(bytes, tracePath);
    } catch (e) {
      if (e instanceof TraceError) throw new InputError(e.message);
      throw e;
    }
    const img = loadImage(positionals[0]!, { registers: parseRegOptions(values.reg as unknown as string[] | undefined), allowBigEndian: true });
    const p = imageCpuParams(img);
    const cpu = createCpu(p.arch, img.machine.mem, p.registers, { ...p.options, ...(tlb ? { tlb } : {}), walkCache: values['walk-cache'] === true });
    const bar = new ProgressBar(process.stderr, 'replaying');
    let stats: ReplayStatistics;
    try {
      stats = replayTrace(cpu, records, (done, total) => bar.update(done, total));
    } finally {
      bar.finish();
    }
    if (values.json) io.out(JSON.stringify(snake(stats)));
    else for (const l of statisticsText(stats)) io.out(l);
    return 0;
  },
};
