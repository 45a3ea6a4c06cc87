// npm run bench:gc — the zero-allocation proof (DESIGN.md, data representation 4: per visited
// entry the walker allocates nothing).
//
//   node bench/gc.mjs [--entries N] [--geometry NAME] [--verbose]
//
// Builds N densely mapped base pages (default 16M: 64 GiB of 4K pages, 128 MiB of page tables),
// then walks them with the two walkers users run: countWalk (the engine of `mmulab walk`) and
// walkPageRange with a pte_entry callback (the benchmark's, bench/fixtures.mjs countingOps) —
// each alone in a process, then both alternating in one process, as in any program that uses
// more than one walker. Each walker runs three times after a short warm-up (a first walk runs in
// the interpreter and baseline code, whose double arithmetic boxes numbers until the optimiser
// takes over: JIT start-up, not the walker's steady state), and each run is watched three ways:
//  - V8's own log: every measuring process runs under `node --trace-gc --expose-gc`, and the
//    Scavenge / Mark-Compact lines printed between the markers around each walk are counted;
//  - a PerformanceObserver('gc') in that process, matching GC entries by time;
//  - heapUsed, and the young generation's bytes in use, before and after (a minor GC first, so the
//    young generation starts empty: with no GC inside the window, its growth is what the walk
//    allocated as objects; heapUsed also moves with the optimiser's code and is only reported).
// One more walk each runs under V8's sampling heap profiler to name where the bytes come from.
//
// PASS when every measured walk saw no GC of any kind and allocated less than 64 KiB in the young
// generation (a walk allocates a few objects per call — its MmWalk, countWalk's callbacks and
// result — and nothing per entry: 16M entries allocating even one 16-byte number each would be
// 256 MiB, a hundred scavenges). Exit status 0 on PASS, 1 on FAIL.
import { spawn } from 'node:child_process';
import { writeSync } from 'node:fs';
import { PerformanceObserver, constants as perf } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';

const HERE = fileURLToPath(import.meta.url);
const RUNS = 3;
const HEAP_LIMIT = 64 * 1024;

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  return process.argv[i + 1];
}

function fail(msg) {
  console.error(`bench:gc: ${msg}`);
  process.exit(2);
}

const ENTRIES = Number(option('--entries', String(1 << 24)));
const GEOMETRY = option('--geometry', 'x86_64-4level');
if (!Number.isInteger(ENTRIES) || ENTRIES < 1 << 16) fail(`--entries needs an integer ≥ 65536, got '${option('--entries')}'`);

// ================================================================================================
// The child: build, walk, report (stdout lines starting with @@ are for the parent)
// ================================================================================================

/** Bytes in use in the young generation: what the walk allocated, when no scavenge ran in between. */
function newSpaceUsed() {
  return v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space').space_used_size;
}

async function child() {
  const { countWalk, mmapReadLock, walkPageRange } = await import('../dist/index.js');
  const { countingOps, denseSpace, newCounts } = await import('./fixtures.mjs');
  const mark = (line) => writeSync(1, `@@${line}\n`); // synchronous: ordered with V8's --trace-gc lines

  const gcEntries = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcEntries.push({ start: e.startTime, end: e.startTime + e.duration, kind: e.detail?.kind ?? e.kind });
  });
  obs.observe({ entryTypes: ['gc'] });

  const t0 = performance.now();
  const s = denseSpace(GEOMETRY, ENTRIES);
  mark(`BUILT ${JSON.stringify({ seconds: (performance.now() - t0) / 1000, tableBytes: (s.m.mem.frames - s.m.frames.freeFrames) * 4096 })}`);
  mmapReadLock(s.mm);

  const counts = newCounts();
  const ops = countingOps(counts);
  const all = {
    countWalk: (start, end) => countWalk(s.m, [{ name: 'cr3', table: s.mm.pgd, start, end }]).entries,
    'walkPageRange+pte_entry': (start, end) => {
      counts.ptes = 0;
      counts.present = 0;
      walkPageRange(s.mm, start, end, ops);
      return counts.ptes;
    },
  };
  const only = option('--walker', 'both');
  const walkers = only === 'both' ? all : { [only]: all[only] };
  // Warm-up: the same code paths over the first 64K pages, then whole walks, so that the measured
  // walks run the optimised code of the steady state rather than its tiering-up.
  const warmEnd = s.start + 65536 * s.m.geo.PAGE_SIZE;
  for (let i = 0; i < 5; i++) for (const w of Object.values(walkers)) w(s.start, warmEnd);
  for (let i = 0; i < 2; i++) for (const w of Object.values(walkers)) w(s.start, s.end);

  const runs = [];
  for (const [name, w] of Object.entries(walkers)) {
    for (let r = 0; r < RUNS; r++) {
      // A minor GC empties the young generation. Not a full one: a full GC clears weakly held
      // objects, which deoptimises the walker's code that embedded them, and the measured walk
      // would then run (and allocate) in unoptimised code while it re-optimises.
      globalThis.gc({ type: 'minor' });
      const label = `${name}#${r + 1}`;
      const heap0 = process.memoryUsage().heapUsed;
      const young0 = newSpaceUsed();
      mark(`BEGIN ${label}`);
      const a = performance.now();
      const entries = w(s.start, s.end);
      const b = performance.now();
      mark(`END ${label}`);
      const young1 = newSpaceUsed();
      const heap1 = process.memoryUsage().heapUsed;
      runs.push({ label, walker: name, entries, seconds: (b - a) / 1000, heapBefore: heap0, heapAfter: heap1, youngAllocated: young1 - young0, t0: a, t1: b });
    }
  }
  await new Promise((r) => setTimeout(r, 200)); // let the observer deliver
  obs.disconnect();
  // One more walk each under V8's sampling heap profiler, keeping the objects scavenges collected:
  // where the bytes were allocated (functions as the bundle dist/index.js names them).
  const sites = [];
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  for (const [name, w] of Object.entries(walkers)) {
    await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
    const entries = w(s.start, s.end);
    const { profile } = await session.post('HeapProfiler.stopSampling');
    const bySite = new Map();
    let total = 0;
    const visit = (node, caller) => {
      const f = node.callFrame;
      const here = `${f.functionName || '(anonymous)'} (${f.url.split('/').pop()}:${f.lineNumber + 1})`;
      if (node.selfSize > 0) {
        const key = caller ? `${here} called from ${caller}` : here;
        bySite.set(key, (bySite.get(key) ?? 0) + node.selfSize);
        total += node.selfSize;
      }
      for (const c of node.children ?? []) visit(c, here);
    };
    visit(profile.head, null);
    const top = [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([site, bytes]) => ({ site, bytes }));
    sites.push({ walker: name, entries, bytes: total, top });
  }
  session.disconnect();
  for (const run of runs) {
    const inside = gcEntries.filter((e) => e.end >= run.t0 && e.start <= run.t1);
    run.observer = {
      minor: inside.filter((e) => e.kind === perf.NODE_PERFORMANCE_GC_MINOR).length,
      major: inside.filter((e) => e.kind === perf.NODE_PERFORMANCE_GC_MAJOR).length,
      other: inside.filter((e) => e.kind !== perf.NODE_PERFORMANCE_GC_MINOR && e.kind !== perf.NODE_PERFORMANCE_GC_MAJOR).length,
    };
  }
  mark(`RESULT ${JSON.stringify({ runs, sites, expected: s.pteSlots })}`);
}

// ================================================================================================
// The parent: run the child under --trace-gc, count V8's GC lines per walk, judge
// ================================================================================================

/**
 * One measuring process: `walker` is countWalk, walkPageRange+pte_entry, or both (the two walkers
 * alternate in one process, as in any program that uses more than one walker: the walker's call
 * sites then see more than one callback).
 */
function measure(walker, verbose) {
  const args = ['--trace-gc', '--expose-gc', HERE, '--child', '--entries', String(ENTRIES), '--geometry', GEOMETRY, '--walker', walker];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const trace = new Map(); // label → { scavenge, markCompact, other, lines }
  let current = null;
  let result = null;
  let built = null;
  let buf = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith('@@BEGIN ')) {
        current = { scavenge: 0, markCompact: 0, other: 0, lines: [] };
        trace.set(line.slice(8), current);
      } else if (line.startsWith('@@END ')) current = null;
      else if (line.startsWith('@@BUILT ')) built = JSON.parse(line.slice(8));
      else if (line.startsWith('@@RESULT ')) result = JSON.parse(line.slice(9));
      else if (/: (Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Compact|Minor Mark-Sweep)\b/.test(line)) {
        if (current) {
          if (/: Scavenge\b/.test(line)) current.scavenge++;
          else if (/: Mark-(Compact|sweep)\b/.test(line)) current.markCompact++;
          else current.other++;
          current.lines.push(line);
        }
        if (verbose) console.log(line);
      } else if (line.trim()) console.log(line);
    }
  });
  return new Promise((resolve) => proc.on('exit', (code) => resolve({ walker, code, result, built, trace })));
}

async function parent() {
  const verbose = process.argv.includes('--verbose');
  const modes = ['countWalk', 'walkPageRange+pte_entry', 'both'];
  console.log(`bench:gc: ${GEOMETRY}, ${ENTRIES.toLocaleString('en')} ptes mapped; each process: node --trace-gc --expose-gc bench/gc.mjs --child --walker MODE`);
  console.log('');
  console.log(`${'process'.padEnd(8)} ${'walk'.padEnd(28)} ${'entries'.padStart(12)} ${'seconds'.padStart(8)} ${'M/s'.padStart(6)} ${'heapUsed before → after'.padStart(22)} ${'young gen'.padStart(10)}  ${'trace-gc scav/mark'.padStart(18)}  ${'observer minor/major'.padStart(20)}`);
  const problems = [];
  const sites = [];
  for (const mode of modes) {
    const { code, result, built, trace } = await measure(mode, verbose);
    const tag = mode === 'both' ? 'both' : 'alone';
    if (code !== 0 || !result) {
      problems.push(`${mode}: the measuring process exited with code ${code}${result ? '' : ' before reporting'}`);
      continue;
    }
    for (const r of result.runs) {
      const t = trace.get(r.label) ?? { scavenge: NaN, markCompact: NaN, other: NaN, lines: [] };
      const heap = `${(r.heapBefore / 2 ** 20).toFixed(2)} → ${(r.heapAfter / 2 ** 20).toFixed(2)} MiB`;
      console.log(
        `${tag.padEnd(8)} ${r.label.padEnd(28)} ${r.entries.toLocaleString('en').padStart(12)} ${r.seconds.toFixed(3).padStart(8)} ${(r.entries / r.seconds / 1e6).toFixed(0).padStart(6)} ${heap.padStart(22)} ${`${r.youngAllocated} B`.padStart(10)}  ${`${t.scavenge} / ${t.markCompact}`.padStart(18)}  ${`${r.observer.minor} / ${r.observer.major}`.padStart(20)}`,
      );
      const what = `${tag} ${r.label}`;
      const why = [];
      if (r.entries < ENTRIES) why.push(`walked ${r.entries} entries, fewer than the ${ENTRIES} mapped`);
      if (t.scavenge + t.markCompact + t.other > 0) why.push(`${t.scavenge} scavenge(s) and ${t.markCompact} mark-compact(s) in V8's log`);
      if (r.observer.minor + r.observer.major + r.observer.other > 0) why.push(`${r.observer.minor + r.observer.major + r.observer.other} GC(s) seen by the observer`);
      // Young-generation bytes (objects; not the optimiser's code, which heapUsed also counts).
      // With scavenges inside the window the difference understates what was allocated.
      if (r.youngAllocated > HEAP_LIMIT) why.push(`${r.youngAllocated} B allocated in the young generation${t.scavenge ? ' (net of the scavenges)' : ''}`);
      if (why.length) problems.push(`${what}: ${why.join('; ')}`);
    }
    for (const site of result.sites) {
      const per = site.bytes / site.entries;
      sites.push(
        `${tag} ${site.walker}: ${(site.bytes / 2 ** 20).toFixed(1)} MiB sampled over ${site.entries.toLocaleString('en')} entries (${per.toFixed(per < 1 ? 3 : 1)} B/entry)` +
          site.top.map((x) => `\n      ${(x.bytes / 2 ** 20).toFixed(2).padStart(7)} MiB  ${x.site}`).join(''),
      );
    }
    if (built && mode === modes[0]) console.log(`${''.padEnd(8)} (built in ${built.seconds.toFixed(2)} s; ${(built.tableBytes / 2 ** 20).toFixed(0)} MiB of memory in use)`);
  }
  console.log('\nWhere the walks allocate (one more walk each, V8 sampling heap profiler, every 4 KiB):');
  for (const x of sites) console.log(`  ${x}`);
  console.log('');
  if (problems.length === 0) {
    console.log(`PASS: every walk of ≥ ${ENTRIES.toLocaleString('en')} entries ran without a scavenge or mark-compact, < ${HEAP_LIMIT / 1024} KiB allocated per walk`);
  } else {
    console.log(`FAIL: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
}

if (process.argv.includes('--child')) await child();
else await parent();
