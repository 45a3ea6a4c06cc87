/** mmulab run: run a scenario (docs/scenarios.md) and show what the kernel model made of it. */
import { readFileSync, statSync } from 'node:fs';
import {
  parseScenarioText,
  processTotals,
  runScenario,
  ScenarioError,
  sizeText,
  swapDevice,
  teardownCheck,
  type LogEntry,
  type ProcessTotals,
  type Scenario,
  type ScenarioRun,
  type TeardownReport,
} from '../../index';
import { parse } from '../args';
import type { Command, Io } from '../command';
import { InputError, UsageError } from '../errors';
import { ProgressBar } from '../progress';

export const usage = `Usage: mmulab run SCENARIO [--json] [--quiet]

Run the scenario file SCENARIO (format "mmulab-scenario/1", docs/scenarios.md): a machine, files,
and processes that mmap, touch, write, fork, swap, migrate… in order. Every step calls the Linux mm
model the way the kernel's entry point does, and its result is logged: addresses, errno,
VM_FAULT_* bits, signals, where a touched page is now mapped.

At the end: per-process totals (VMAs, rss by type in pages, page-table pages by level), then the
teardown check — every live process exits, the page and swap caches are dropped, and the free
frames must be those of the start: any difference is a leak.

Text (default): one line per step, the totals table, the check.
--json: JSON Lines —
  {"type":"step","index":N,"path":"steps[3]","process":"…","op":"…","outcome":"ok"|"SIGSEGV"|"EINVAL"…,"ok":true,…}
  {"type":"process","name":"…","exited":false,"vmas":N,"rss":{…},"page_tables":{…},…}
  {"type":"check","leaked_frames":0,"swap_slots_left":0,"failures":[…],"ok":true,…}

Exit status: 0 every expectation met and nothing leaked; 1 a bad scenario (the message names the
JSON path), an unmet "expect", a kernel assertion (BUG), or a leak; 2 usage.

Options:
  --json        JSON Lines instead of text
  --quiet       no step log: only the failures and the check (with --json: the check line only)
  -h, --help    this help

Examples:
  mmulab run examples/fork-cow.json
  mmulab run examples/swap-and-migrate.json --json | jq 'select(.type=="step") | .outcome'
  mmulab run my-scenario.json --quiet && echo "no leaks"`;

/** Read and check a scenario file; a bad file is an InputError naming the file and the JSON path. */
export function loadScenarioFile(path: string): Scenario {
  let text: string;
  try {
    if (statSync(path).isDirectory()) throw new InputError(`${path}: is a directory; expected a scenario file (JSON)`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return parseScenarioText(text);
  } catch (e) {
    if (e instanceof ScenarioError) throw new InputError(`${path}: ${e.message}`);
    throw e;
  }
}

/**
 * Run a checked scenario; a step that names a failed mapping or fork is an InputError too. A progress
 * bar on stderr (a terminal only) counts the steps of a run that lasts over a second.
 */
export function runScenarioFile(path: string, scenario: Scenario): ScenarioRun {
  const bar = new ProgressBar(process.stderr, 'running');
  try {
    return runScenario(scenario, (done, total) => bar.update(done, total));
  } catch (e) {
    if (e instanceof ScenarioError) throw new InputError(`${path}: ${e.message}`);
    throw e;
  } finally {
    bar.finish();
  }
}

function stepJson(e: LogEntry): Record<string, unknown> {
  const o: Record<string, unknown> = { type: 'step', index: e.index, path: e.path, process: e.process, op: e.op, outcome: e.outcome };
  if (e.expect !== null) o.expect = e.expect;
  o.ok = e.ok;
  return { ...o, ...e.detail };
}

function totalsJson(t: ProcessTotals): Record<string, unknown> {
  return {
    type: 'process',
    name: t.name,
    exited: t.exited,
    vmas: t.vmas,
    rss: t.rss,
    page_tables: t.pageTables,
    page_tables_total: t.pageTablesTotal,
    deposited_tables: t.deposited,
  };
}

function checkJson(run: ScenarioRun, rep: TeardownReport, ok: boolean): Record<string, unknown> {
  return {
    type: 'check',
    steps: run.log.length,
    expectations: run.log.filter((e) => e.expect !== null).length,
    failures: run.failures,
    aborted: run.aborted,
    teardown_exited: rep.exited,
    page_cache_dropped: rep.pageCacheDropped,
    swap_cache_dropped: rep.swapCacheDropped,
    free_frames_at_start: rep.freeFramesAtStart,
    free_frames_after: rep.freeFramesAfter,
    leaked_frames: rep.leakedFrames,
    swap_slots_left: rep.swapSlotsLeft,
    teardown_errors: rep.errors,
    ok,
  };
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd());
}

export const run: Command = {
  name: 'run',
  summary: 'run a scenario (mmap, touch, fork, swap… on the mm model) and check it for leaks',
  usage,
  run(argv: string[], io: Io): number {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' }, quiet: { type: 'boolean' } }, 1);
    if (values.help) {
      io.out(usage);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError('SCENARIO is required: a scenario file (JSON, docs/scenarios.md)');
    const path = positionals[0]!;
    const scenario = loadScenarioFile(path);
    const res = runScenarioFile(path, scenario);
    const s = io.style;
    const m = res.machine;
    // Totals first (the teardown empties the machine), then the check.
    const totals = [...res.processes].map(([name, mm]) => processTotals(name, mm));
    const swapUsed = swapDevice(m).usedSlots;
    const freeAtEnd = m.frames.freeFrames;
    const rep = teardownCheck(res);
    const ok = res.failures.length === 0 && rep.leakedFrames === 0 && rep.swapSlotsLeft === 0 && rep.errors.length === 0;

    if (values.json) {
      if (!values.quiet) {
        for (const e of res.log) io.out(JSON.stringify(stepJson(e)));
        for (const t of totals) io.out(JSON.stringify(totalsJson(t)));
      }
      io.out(JSON.stringify(checkJson(res, rep, ok)));
      return ok ? 0 : 1;
    }

    const spec = scenario.machine;
    if (!values.quiet) {
      io.out(s.bold(`${path}: ${spec.geometry}, ${sizeText(spec.memory)} of memory, THP ${spec.thp}`));
      if (scenario.description) io.out(s.dim(scenario.description));
      io.out('');
      const iw = String(res.log.length).length;
      const pw = Math.max(7, ...res.log.map((e) => e.process.length));
      for (const e of res.log) {
        let line = `${String(e.index).padStart(iw)}  ${e.process.padEnd(pw)}  ${e.text}`;
        if (e.outcome !== 'ok' && e.expect === e.outcome) line += s.dim(' (expected)');
        io.out(e.ok ? line : s.red(line));
        if (!e.ok && e.expect !== null && e.expect !== e.outcome) io.out(s.red(`${' '.repeat(iw)}  ${' '.repeat(pw)}  ✗ expected ${e.expect}, got ${e.outcome}`));
      }
      io.out('');
      const rows = [['process', 'state', 'VMAs', 'anon', 'file', 'shmem', 'swap', 'hugetlb', 'page tables']];
      for (const t of totals) {
        const pts = Object.entries(t.pageTables).map(([l, n]) => `${l} ${n}`).join(', ');
        rows.push([t.name, t.exited ? 'exited' : 'alive', String(t.vmas), String(t.rss.anon), String(t.rss.file), String(t.rss.shmem), String(t.rss.swap), String(t.rss.hugetlb), t.exited ? '-' : `${t.pageTablesTotal} (${pts})${t.deposited ? ` + ${t.deposited} deposited` : ''}`]);
      }
      io.out(s.bold('Processes (rss in pages)'));
      for (const l of table(rows)) io.out(l);
      io.out('');
      io.out(`Machine: ${freeAtEnd} of ${m.frames.totalFrames} frames free at the end, ${swapUsed} swap slots in use, ${m.tlbFlushes} TLB flushes`);
    } else {
      for (const f of res.failures) io.out(s.red(`✗ ${f}`));
    }
    if (!values.quiet) for (const f of res.failures) io.out(s.red(`✗ ${f}`));
    for (const err of rep.errors) io.out(s.red(`✗ teardown: ${err}`));
    const expectations = res.log.filter((e) => e.expect !== null).length;
    const leak =
      rep.leakedFrames === 0 && rep.swapSlotsLeft === 0
        ? 'no frame leaked'
        : `${rep.leakedFrames} frames leaked (${rep.freeFramesAtStart} free at the start, ${rep.freeFramesAfter} after), ${rep.swapSlotsLeft} swap slots left`;
    const summary =
      `Check: ${res.log.length} steps${res.aborted ? ' (aborted by a kernel assertion)' : ''}, ` +
      `${expectations} expectation${expectations === 1 ? '' : 's'}, ${res.failures.length} failed; teardown` +
      `${rep.exited.length ? ` (exited ${rep.exited.join(', ')})` : ''}: ${leak}`;
    io.out(ok ? s.green(`${summary} — ok`) : s.red(`${summary} — FAILED`));
    return ok ? 0 : 1;
  },
};
