// The parallel counting walk (src/walk/parallel.ts) against the serial one (countWalk), on an
// 8M-page dense space and on a mixed one, for x86_64-4level and arm64-4k-48.
//
//   node scripts/build.mjs && node bench/parallel.mjs [--runs N] [--workers N] [--json]
//
// Needs dist/index.js and dist/walk-worker.js (npm run build). Times are best-of-N wall times of
// one whole walk; pools are created and warmed up before timing (start-up is reported on its own).
// Each case runs in a child process of its own. With thread CPU and run-queue wait times from
// Linux's schedstat, and the hypervisor's steal share from /proc/stat: a parallel walk can only be
// as fast as the free cores allow.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Machine, WalkPool, countWalk, entryAlloc, setPmdAt, setPteAt, setPudAt } from '../dist/index.js';
import { denseSpace } from './fixtures.mjs';

/** The roots `mmulab walk` would walk for a space built on a Machine (image.ts's rules). */
function rootsOf(m, mm) {
  const g = m.geo;
  if (g.arch === 'x86_64') {
    const half = 2 ** (g.vaBits - 1);
    return [
      { name: 'cr3', table: mm.pgd, start: 0, end: half },
      { name: 'cr3', table: mm.pgd, start: 2 ** 64 - half, end: 2 ** 64 },
    ];
  }
  const span = 2 ** g.vaBits;
  return [
    { name: 'ttbr0_el1', table: mm.pgd, start: 0, end: span },
    { name: 'ttbr1_el1', table: m.initMm.pgd, start: 2 ** 64 - span, end: 2 ** 64 },
  ];
}

/**
 * A mixed space (4K granule): 2M dense pages (8 GiB); 4096 pte tables holding one page each,
 * spread over 8 top-level entries; 32768 2 MiB leaves (64 pmd tables of leaves); 256 1 GiB leaves;
 * a few kernel pages. About 4.2M entries, unevenly spread: the dense part is one pgd entry.
 */
export function mixedSpace(geometry) {
  const m = new Machine({ geometry, memSize: 96 * 2 ** 20 });
  const g = m.geo;
  const user = m.bits.pgprot({ write: true, user: true });
  const kern = m.bits.pgprot({ write: true });
  const u32 = m.mem.u32;
  const store = (ptr, v) => {
    const k = (ptr - m.mem.physBase) / 4;
    u32[k] = Number(v & 0xffffffffn);
    u32[k + 1] = Number(v >> 32n);
  };
  const x86 = g.arch === 'x86_64';
  const kernelBase = 2 ** 64 - 2 ** (x86 ? g.vaBits - 1 : g.vaBits);
  for (let i = 0; i < 16; i++) {
    const va = kernelBase + 2 ** 30 + i * g.PAGE_SIZE;
    setPteAt(m.initMm, va, entryAlloc(m.initMm, va, 'pte'), m.bits.pfnPte(0x8000 + i, kern));
  }
  const mm = m.newMm('mixed');
  let pfn = 0x10_0000;
  // dense: 2M pages from 0x7f00_0000_0000
  const dense = 0x7f00_0000_0000;
  for (let t = 0; t < (2 << 20) / 512; t++) {
    const ptep = entryAlloc(mm, dense + t * g.PMD_SIZE, 'pte');
    for (let j = 0; j < 512; j++) store(ptep + j * 8, m.bits.pfnPte(pfn++, user));
  }
  // sparse: one page in each of 4096 pte tables, 8 top-level entries, 8 pud entries each, 64 pmds per pud
  for (let p = 0; p < 8; p++) {
    for (let u = 0; u < 8; u++) {
      for (let d = 0; d < 64; d++) {
        const va = (p + 1) * g.PGDIR_SIZE + u * 8 * g.PUD_SIZE + d * 8 * g.PMD_SIZE + 5 * g.PAGE_SIZE;
        setPteAt(mm, va, entryAlloc(mm, va, 'pte'), m.bits.pfnPte(pfn++, user));
      }
    }
  }
  // 2 MiB leaves: 32768 of them, 64 GiB from 0x5000_0000_0000
  const huge = 0x5000_0000_0000;
  for (let i = 0; i < 32768; i++) {
    const va = huge + i * g.PMD_SIZE;
    setPmdAt(mm, va, entryAlloc(mm, va, 'pmd'), m.bits.pfnHuge('pmd', (0x100_0000 + i) * 512, user));
  }
  // 1 GiB leaves: 256 of them from 0x6000_0000_0000
  const giant = 0x6000_0000_0000;
  for (let i = 0; i < 256; i++) {
    const va = giant + i * g.PUD_SIZE;
    setPudAt(mm, va, entryAlloc(mm, va, 'pud'), m.bits.pfnHuge('pud', (0x100 + i) * 512 * 512, user));
  }
  return { m, mm };
}

/** This thread's [CPU ns, run-queue wait ns] (Linux /proc/thread-self/schedstat), or null. */
function schedstat() {
  try {
    const f = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ');
    return [Number(f[0]), Number(f[1])];
  } catch {
    return null;
  }
}

/** [steal, total] jiffies of all CPUs so far (Linux /proc/stat): time the hypervisor ran others. */
function cpuStat() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return [f[7] ?? 0, f.slice(0, 8).reduce((a, b) => a + b, 0)];
  } catch {
    return null;
  }
}

const equal = (a, b) =>
  a.entries === b.entries && a.leaves === b.leaves && a.checksum === b.checksum && JSON.stringify(a.leavesByLevel) === JSON.stringify(b.leavesByLevel);

/** Best-of-`runs` wall time of `fn` (ms), with this thread's CPU and run-queue wait during that run. */
async function best(runs, fn, check) {
  let ms = Infinity;
  let cpuMs = NaN;
  let waitMs = NaN;
  let result = null;
  const st0 = cpuStat();
  for (let i = 0; i < runs; i++) {
    const s0 = schedstat();
    const t = performance.now();
    const r = await fn();
    const dt = performance.now() - t;
    const s1 = schedstat();
    check(r);
    if (dt < ms) {
      ms = dt;
      result = r;
      if (s0 && s1) [cpuMs, waitMs] = [(s1[0] - s0[0]) / 1e6, (s1[1] - s0[1]) / 1e6];
    }
  }
  const st1 = cpuStat();
  // Share of the machine's CPU time taken by the hypervisor over all `runs` (a virtual CPU is not
  // a core of one's own).
  const steal = st0 && st1 && st1[1] > st0[1] ? (st1[0] - st0[0]) / (st1[1] - st0[1]) : NaN;
  return { ms, cpuMs, waitMs, steal, result };
}

/**
 * One case, in this process: serial countWalk, a pool of 1 worker (the machinery without the
 * parallelism) and a pool of `workers`, best of `runs` each (warmed up first).
 */
async function runCase(geometry, space, runs, workers) {
  const { m, mm } = space === 'mixed' ? mixedSpace(geometry) : denseSpace(geometry, 8 << 20);
  const roots = rootsOf(m, mm);
  const ref = countWalk(m, roots);
  let same = true;
  const check = (r) => (same &&= equal(r, ref));
  const t0 = performance.now();
  const pool = new WalkPool({ workers });
  const one = new WalkPool({ workers: 1 });
  try {
    await pool.countWalk(m, roots);
    const startupMs = performance.now() - t0;
    for (let i = 0; i < 2; i++) {
      // warm-up: the first walks compile the walker; a worker's first job also builds its view of the machine
      countWalk(m, roots);
      await pool.countWalk(m, roots);
      await one.countWalk(m, roots);
    }
    const serial = await best(runs, () => countWalk(m, roots), check);
    const single = await best(runs, () => one.countWalk(m, roots), check);
    const par = await best(runs, () => pool.countWalk(m, roots), check);
    const info = (r) => ({
      chunks: r.parallel.chunks,
      planMs: r.parallel.planSeconds * 1e3,
      workers: r.parallel.workers.map((x) => ({ chunks: x.chunks, ms: x.seconds * 1e3, cpuMs: x.cpuSeconds * 1e3, waitMs: x.waitSeconds * 1e3 })),
    });
    return {
      geometry,
      space,
      entries: ref.entries,
      leaves: ref.leaves,
      equal: same,
      startupMs,
      serial: { ms: serial.ms, cpuMs: serial.cpuMs, waitMs: serial.waitMs, steal: serial.steal },
      oneWorker: { ms: single.ms, steal: single.steal, ...info(single.result) },
      parallel: { ms: par.ms, steal: par.steal, ...info(par.result) },
      speedup: serial.ms / par.ms,
      loadavg: os.loadavg(),
    };
  } finally {
    await Promise.all([pool.close(), one.close()]);
  }
}

const CASES = [
  ['x86_64-4level', 'dense 8M'],
  ['x86_64-4level', 'mixed'],
  ['arm64-4k-48', 'dense 8M'],
  ['arm64-4k-48', 'mixed'],
];

const f0 = (x) => x.toFixed(0);
const pct = (x) => (Number.isNaN(x) ? '?' : `${(x * 100).toFixed(0)}%`);
function describe(r, workers) {
  const w = (x) => x.workers.map((y) => `${f0(y.cpuMs)}/${f0(y.waitMs)}`).join(' ');
  return (
    `${r.geometry.padEnd(14)} ${r.space.padEnd(9)} ${(r.entries / 1e6).toFixed(2)}M entries  ` +
    `serial ${r.serial.ms.toFixed(1).padStart(6)} ms  1 worker ${r.oneWorker.ms.toFixed(1).padStart(6)} ms  ` +
    `${workers} workers ${r.parallel.ms.toFixed(1).padStart(6)} ms  speedup ${r.speedup.toFixed(2)}x  equal ${r.equal}\n` +
    `${''.padEnd(25)} cpu/waiting ms: serial ${f0(r.serial.cpuMs)}/${f0(r.serial.waitMs)}, 1 worker ${w(r.oneWorker)}, ` +
    `${workers} workers ${w(r.parallel)}; ${r.parallel.chunks} chunks, plan ${r.parallel.planMs.toFixed(2)} ms, pool start ${f0(r.startupMs)} ms; ` +
    `steal ${pct(r.serial.steal)} / ${pct(r.oneWorker.steal)} / ${pct(r.parallel.steal)}`
  );
}

/**
 * Run every case, each in a child process of its own, so that one architecture's walk does not
 * share optimised code with another's (a walker compiled for two predicate sets runs slower, and
 * the comparison would depend on the order of the cases). Returns one record per case.
 */
export async function parallelBench({ runs = 7, workers = 2, log = console.log } = {}) {
  const self = fileURLToPath(import.meta.url);
  log(`${os.cpus().length} CPUs (${os.cpus()[0]?.model}), load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; best of ${runs}`);
  const results = [];
  for (const [geometry, space] of CASES) {
    const out = execFileSync(process.execPath, [self, '--case', geometry, space, '--runs', String(runs), '--workers', String(workers)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const r = JSON.parse(out);
    results.push(r);
    log(describe(r, workers));
  }
  return { workers, cpus: os.cpus().length, results };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name, def) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : def;
  };
  const runs = Number(arg('--runs', '7'));
  const workers = Number(arg('--workers', '2'));
  const c = process.argv.indexOf('--case');
  if (c >= 0) {
    console.log(JSON.stringify(await runCase(process.argv[c + 1], process.argv[c + 2], runs, workers)));
  } else {
    const json = process.argv.includes('--json');
    const out = await parallelBench({ runs, workers, log: json ? () => {} : console.log });
    if (json) console.log(JSON.stringify(out, null, 2));
    if (!out.results.every((r) => r.equal)) {
      console.error('parallel and serial results differ');
      process.exitCode = 1;
    }
  }
}
