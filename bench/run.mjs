// npm run bench: every suite, a table on stdout and bench/results.json.
//
//   node bench/run.mjs [--suite NAME[,NAME…]] [--geometry NAME[,NAME…]] [--quick] [--list] [--suites-only]
//
// Suites (bench/fixtures.mjs builds the address spaces; every walk is checked against the counts
// the fixture promises before it is timed):
//   walk-dense   walkPageRange + pte_entry over 1M densely mapped base pages
//   walk-sparse  the same over sparse mappings: one page in every 2nd PMD region (pte_hole for the
//                others), and a random 5 % of the pages
//   walk-mixed   pte tables, PMD blocks and PUD blocks (where the geometry has them); pmd_entry and
//                pud_entry see the leaves and skip them, as kernel walkers do
//   translate    Cpu.access on a TLB hit, Cpu.access on a TLB miss (walk + fill), Mmu.walk alone
//   fault        handleMmFault: anonymous write / read faults, anonymous THP, file read faults
//   zap          zapPageRange and doMunmap over populated anonymous pages
//   build        vmMmap(MAP_POPULATE), the fast pte builder, and set_pte_at with pfnPte (BigInt)
//
// Each (suite, geometry) runs in its own child process: the walker's call sites stay as
// monomorphic as one geometry makes them, and a figure does not depend on which suites ran before
// it in the same process (see bench/native.mjs). Stateless cases run under benchmark.js; cases
// that change the machine (faults, zaps, builds) need an untimed reset between runs, which
// benchmark.js's cycles do not offer, so they use a small harness below with the same statistics.
//
// With --suite or --geometry the rows measured replace their old rows in bench/results.json; a
// full run rewrites it.
import Benchmark from 'benchmark';
import { fork, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  FAULT_FLAG_USER,
  FAULT_FLAG_WRITE,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_POPULATE,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  VM_FAULT_ERROR,
  WalkResult,
  createCpu,
  createFile,
  doMunmap,
  entryAlloc,
  exitMmap,
  folioPut,
  geometry as geometryOf,
  handleMmFault,
  mmapReadLock,
  mmapReadUnlock,
  registersFor,
  setFolioMapping,
  setPteAt,
  vmMmap,
  walkPageRange,
  zapPageRange,
} from '../dist/index.js';
import { BENCH_GEOMETRIES, benchMachine, countingOps, defaultStart, denseSpace, mapPtes, mixedSpace, newCounts, sparseSpace } from './fixtures.mjs';

const HERE = fileURLToPath(import.meta.url);
const RESULTS = new URL('./results.json', import.meta.url);

/** Which geometries each suite runs on. */
const SUITES = {
  'walk-dense': BENCH_GEOMETRIES,
  'walk-sparse': BENCH_GEOMETRIES,
  'walk-mixed': BENCH_GEOMETRIES,
  translate: ['x86_64-4level', 'x86_64-5level', 'arm64-4k-48', 'arm64-64k-42'],
  fault: ['x86_64-4level', 'arm64-4k-48'],
  zap: ['x86_64-4level', 'arm64-4k-48'],
  build: ['x86_64-4level', 'arm64-4k-48'],
};

// ================================================================================================
// Options
// ================================================================================================

function listOption(name) {
  const i = process.argv.indexOf(name);
  if (i < 0) return null;
  const v = process.argv[i + 1];
  if (!v || v.startsWith('--')) usage(`${name} needs a value`);
  return v.split(',');
}

function usage(msg) {
  console.error(`bench: ${msg}`);
  console.error(`usage: node bench/run.mjs [--suite ${Object.keys(SUITES).join('|')}[,…]] [--geometry NAME[,…]] [--quick] [--list]`);
  process.exit(2);
}

const QUICK = process.argv.includes('--quick');
/** Time per case: benchmark.js maxTime and the harness's budget, in seconds. */
const MAX_TIME = QUICK ? 0.3 : 1.5;
const MIN_SAMPLES = QUICK ? 2 : 5;

// ================================================================================================
// Measuring
// ================================================================================================

/** Two-sided 95 % Student t for n - 1 degrees of freedom (as benchmark.js uses). */
function tCritical(df) {
  const table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];
  return df < 1 ? NaN : df <= 30 ? table[df - 1] : 1.96;
}

/** A result row: `unitsPerOp` units (entries, accesses, faults, pages) per timed operation. */
function row(suite, geometry, name, unit, unitsPerOp, secondsPerOp, rme, samples) {
  const unitsPerSecond = unitsPerOp / secondsPerOp;
  return { suite, geometry, case: name, unit, unitsPerOp, unitsPerSecond, nsPerUnit: 1e9 / unitsPerSecond, rme, samples };
}

/** Stateless cases: benchmark.js, one Suite per (suite, geometry). */
function runBenchmarkJs(suite, geometry, cases) {
  const rows = [];
  const s = new Benchmark.Suite(`${suite} ${geometry}`);
  for (const c of cases) s.add(c.name, c.fn, { minSamples: MIN_SAMPLES, maxTime: MAX_TIME });
  s.on('cycle', (e) => {
    const b = e.target;
    if (b.error) throw new Error(`${suite} ${geometry} '${b.name}': ${b.error.message}`);
    const c = cases.find((x) => x.name === b.name);
    rows.push(row(suite, geometry, b.name, c.unit, c.units, b.stats.mean, b.stats.rme, b.stats.sample.length));
  });
  s.run({ async: false });
  return rows;
}

/**
 * Stateful cases: setup() (untimed) → run() (timed) → teardown() (untimed), repeated until
 * MAX_TIME of measured time and MIN_SAMPLES samples; one warm-up round first.
 */
function runStateful(suite, geometry, c) {
  const once = () => {
    const state = c.setup ? c.setup() : undefined;
    const t0 = process.hrtime.bigint();
    c.run(state);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (c.teardown) c.teardown(state);
    return dt;
  };
  once(); // warm-up: JIT, first-touch of memory
  const samples = [];
  let total = 0;
  while ((total < MAX_TIME || samples.length < MIN_SAMPLES) && samples.length < 200) {
    const dt = once();
    samples.push(dt);
    total += dt;
  }
  const n = samples.length;
  const mean = total / n;
  const variance = samples.reduce((a, x) => a + (x - mean) ** 2, 0) / Math.max(1, n - 1);
  const rme = ((Math.sqrt(variance / n) * tCritical(n - 1)) / mean) * 100;
  return row(suite, geometry, c.name, c.unit, c.units, mean, rme, n);
}

function check(cond, msg) {
  if (!cond) throw new Error(`fixture check failed: ${msg}`);
}

// ================================================================================================
// Suites
// ================================================================================================

/** 1M pte_entry calls per walk in the dense and sparse suites (4 GiB of 4K pages). */
const WALK_ENTRIES = QUICK ? 1 << 16 : 1 << 20;

/**
 * A walk case over a fixture: walkPageRange(mm, start, end) with the counting callbacks. The
 * counts of one walk are checked against what the fixture promises; every timed walk re-checks
 * the number of present ptes. units = every callback of a walk (pte_entry, pte_hole, and
 * pmd_entry / pud_entry where the case has them).
 */
function walkCase(name, space, { leaves = false, holes = false } = {}) {
  const { mm, start, end } = space;
  const counts = newCounts();
  const ops = countingOps(counts, { leaves, holes });
  mmapReadLock(mm);
  walkPageRange(mm, start, end, ops);
  check(counts.ptes === space.pteSlots, `${name}: pte_entry ${counts.ptes}, expected ${space.pteSlots}`);
  check(counts.present === space.present, `${name}: ${counts.present} present ptes, expected ${space.present}`);
  if (holes) check(counts.holes === (space.pmdHoles ?? 0), `${name}: ${counts.holes} holes, expected ${space.pmdHoles ?? 0}`);
  if (leaves) {
    check(counts.pmdLeaves === space.pmdLeaves, `${name}: ${counts.pmdLeaves} pmd leaves, expected ${space.pmdLeaves}`);
    check(counts.pudLeaves === space.pudLeaves, `${name}: ${counts.pudLeaves} pud leaves, expected ${space.pudLeaves}`);
  }
  const units = counts.ptes + counts.holes + counts.pmds + counts.puds;
  const present = space.present;
  return {
    name,
    unit: 'entries',
    units,
    fn() {
      counts.present = 0;
      walkPageRange(mm, start, end, ops);
      if (counts.present !== present) throw new Error(`walked ${counts.present} present ptes, expected ${present}`);
    },
  };
}

function walkDense(geometry) {
  const s = denseSpace(geometry, WALK_ENTRIES);
  return runBenchmarkJs('walk-dense', geometry, [walkCase(`dense ${pageKiB(geometry)}K pages`, s)]);
}

function walkSparse(geometry) {
  const regions = Math.max(2, Math.round(WALK_ENTRIES / geometryOf(geometry).PTRS_PER_PTE));
  const half = sparseSpace(geometry, regions * 2, { every: 2 });
  const random = sparseSpace(geometry, regions, { layout: 'random', fraction: 0.05 });
  return runBenchmarkJs('walk-sparse', geometry, [
    walkCase('1 page in every 2nd PMD region', half, { holes: true }),
    walkCase('random 5 % of pages', random, { holes: true }),
  ]);
}

function walkMixed(geometry) {
  const g = geometryOf(geometry);
  const tables = Math.max(2, Math.round(WALK_ENTRIES / g.PTRS_PER_PTE / 2));
  const s = mixedSpace(geometry, { pteTables: tables, pmdBlocks: tables, pudBlocks: g.pudLeaf ? 64 : 0 });
  const name = g.pudLeaf ? 'pte tables, PMD blocks, 64 PUD blocks' : 'pte tables and PMD blocks';
  return runBenchmarkJs('walk-mixed', geometry, [walkCase(name, s, { leaves: true })]);
}

function pageKiB(geometry) {
  return geometryOf(geometry).PAGE_SIZE / 1024;
}

/**
 * Translation latency on a dense space of 64K base pages: a TLB hit (16 warm pages, round robin),
 * a TLB miss (all 64K pages round robin: far more than any modelled TLB holds, so every access
 * walks and fills), and the hardware walk alone (Mmu.walk in debug mode: no TLB, no A/D update).
 */
function translate(geometry) {
  const PAGES = 1 << 16;
  const PER_OP = 4096;
  const s = denseSpace(geometry, PAGES);
  const arch = s.m.geo.arch;
  const cpu = createCpu(arch, s.m.mem, registersFor(s.m, s.mm.pgd, s.m.initMm.pgd));
  const out = new WalkResult();
  const ps = s.m.geo.PAGE_SIZE;
  const vaHi = new Uint32Array(PAGES);
  const vaLo = new Uint32Array(PAGES);
  for (let i = 0; i < PAGES; i++) {
    const va = s.start + i * ps + 0x10 * (i % 256); // an offset inside the page, 16-byte aligned
    vaHi[i] = Math.floor(va / 2 ** 32);
    vaLo[i] = va % 2 ** 32;
  }
  // Check: every address translates to the frame the fixture mapped.
  for (const i of [0, 1, PAGES - 1]) {
    cpu.mmu.walk(vaHi[i], vaLo[i], 'read', true, true, out);
    check(out.fault === null && out.pa === (0x10_0000 + i) * ps + 0x10 * (i % 256), `translate page ${i}: ${out.fault ?? out.pa}`);
  }
  let cursor = 16;
  const cases = [
    {
      name: 'Cpu.access, TLB hit (16 warm pages)',
      unit: 'accesses',
      units: PER_OP,
      fn() {
        for (let k = 0; k < PER_OP; k++) {
          const i = k & 15;
          cpu.access(vaHi[i], vaLo[i], 'read', true, out);
        }
        if (out.fault !== null) throw new Error(`fault ${out.fault}`);
      },
    },
    {
      name: 'Cpu.access, TLB miss (walk + fill)',
      unit: 'accesses',
      units: PER_OP,
      fn() {
        for (let k = 0; k < PER_OP; k++) {
          const i = cursor;
          cursor = cursor === PAGES - 1 ? 16 : cursor + 1; // pages 16…: never the hit case's
          cpu.access(vaHi[i], vaLo[i], 'read', true, out);
        }
        if (out.fault !== null) throw new Error(`fault ${out.fault}`);
      },
    },
    {
      name: 'Mmu.walk (debug walk, no TLB)',
      unit: 'walks',
      units: PER_OP,
      fn() {
        for (let k = 0; k < PER_OP; k++) {
          const i = cursor;
          cursor = cursor === PAGES - 1 ? 16 : cursor + 1;
          cpu.mmu.walk(vaHi[i], vaLo[i], 'read', true, true, out);
        }
        if (out.fault !== null) throw new Error(`fault ${out.fault}`);
      },
    },
  ];
  const rows = runBenchmarkJs('translate', geometry, cases);
  // The hit and miss cases are what their names say: check the TLB's own counters.
  cases[0].fn(); // warm the 16 pages again
  cpu.resetStatistics();
  cases[0].fn();
  const hit = cpu.statistics();
  cpu.resetStatistics();
  cases[1].fn();
  const miss = cpu.statistics();
  check(hit.hits === PER_OP, `TLB-hit case: ${hit.hits} hits of ${PER_OP}`);
  check(miss.misses === PER_OP, `TLB-miss case: ${miss.misses} misses of ${PER_OP}`);
  return rows;
}

const FAULT_PAGES = QUICK ? 1024 : 8192;

/** An mm with one anonymous private read/write mapping of `pages` base pages. */
function anonMapping(m, pages) {
  const mm = m.newMm('bench');
  const addr = vmMmapOrThrow(mm, pages * m.geo.PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  return { mm, addr, vma: mm.vmaLookup(addr), len: pages * m.geo.PAGE_SIZE };
}

/**
 * vmMmap at MAP_BASE (MAP_FIXED): PMD-aligned, so THP faults get whole folios and each
 * fault-around window (64 KiB-aligned) lies inside the mapping, and the same on every round.
 */
function vmMmapOrThrow(mm, len, prot, flags, opts) {
  const a = vmMmap(mm, MAP_BASE, len, prot, flags | MAP_FIXED, opts);
  if (a !== MAP_BASE) throw new Error(`vmMmap: ${a}`);
  return a;
}

const MAP_BASE = 2 ** 30;

/** handleMmFault at `step` intervals over [addr, addr + len), under the mmap read lock. */
function faultRange(mm, vma, addr, len, step, flags) {
  mmapReadLock(mm);
  try {
    for (let a = addr; a < addr + len; a += step) {
      const r = handleMmFault(vma, a, flags);
      if (r & VM_FAULT_ERROR) throw new Error(`handleMmFault at 0x${a.toString(16)}: 0x${r.toString(16)}`);
    }
  } finally {
    mmapReadUnlock(mm);
  }
}

/** A machine with room for `bytes` of faulted pages and their tables. */
function faultMachine(geometry, bytes) {
  return benchMachine(geometry, 0, 0, bytes + bytes / 256);
}

/** Drop a file's page cache after its last mapping went (truncate_inode_pages). */
function dropPageCache(m, file) {
  for (const [index, folio] of file.pages) {
    file.pages.delete(index);
    setFolioMapping(m, folio, null, 0);
    folioPut(m, folio);
  }
}

function fault(geometry) {
  const rows = [];
  const N = FAULT_PAGES;
  const m = faultMachine(geometry, 4 * N * (pageKiB(geometry) * 1024) + 2 ** 27);
  const ps = m.geo.PAGE_SIZE;
  const W = FAULT_FLAG_WRITE | FAULT_FLAG_USER;
  const anon = (name, unitsPer, flags, thp, step = ps, pages = N) => ({
    name,
    unit: 'faults',
    units: unitsPer,
    setup() {
      m.thp.enabled = thp;
      return anonMapping(m, pages);
    },
    run: (s) => faultRange(s.mm, s.vma, s.addr, s.len, step, flags),
    teardown(s) {
      if (flags & FAULT_FLAG_WRITE) checkMapped(m, s, pages, thp);
      exitMmap(s.mm);
    },
  });
  const free0 = m.frames.freeFrames;
  rows.push(runStateful('fault', geometry, anon('anonymous write fault, 4K pages (THP never)', N, W, 'never')));
  rows.push(runStateful('fault', geometry, anon('anonymous read fault (zero page)', N, FAULT_FLAG_USER, 'never')));
  const thpFaults = QUICK ? 4 : 32;
  rows.push(runStateful('fault', geometry, anon(`anonymous write fault, THP (${m.geo.PMD_SIZE / 2 ** 20}M folios)`, thpFaults, W, 'always', m.geo.PMD_SIZE, (thpFaults * m.geo.PMD_SIZE) / ps)));
  m.thp.enabled = 'never';

  // File read faults on a private read-only mapping of a file of N pages.
  const file = createFile(m, 'bench-file', N * ps);
  const aroundPages = Math.max(1, 65536 / ps); // fault-around: 64 KiB (FAULT_AROUND_BYTES)
  const fileMap = () => {
    const mm = m.newMm('bench');
    const addr = vmMmapOrThrow(mm, N * ps, PROT_READ, MAP_PRIVATE, { file });
    return { mm, addr, vma: mm.vmaLookup(addr), len: N * ps };
  };
  // Warm the page cache once: every later mapping finds the pages there.
  const warm = fileMap();
  faultRange(warm.mm, warm.vma, warm.addr, warm.len, ps, FAULT_FLAG_USER);
  check(file.pages.size === N, `page cache holds ${file.pages.size} of ${N} pages`);
  rows.push(
    runStateful('fault', geometry, {
      name: `file read fault, page cache warm (fault-around maps ${aroundPages})`,
      unit: 'faults',
      units: N / aroundPages,
      setup: fileMap,
      run: (s) => faultRange(s.mm, s.vma, s.addr, s.len, aroundPages * ps, FAULT_FLAG_USER),
      teardown(s) {
        checkMapped(m, s, N, 'never');
        exitMmap(s.mm);
      },
    }),
  );
  exitMmap(warm.mm);
  rows.push(
    runStateful('fault', geometry, {
      name: 'file read fault, page cache cold (major: page cache fill)',
      unit: 'faults',
      units: N,
      setup() {
        dropPageCache(m, file);
        return fileMap();
      },
      run: (s) => faultRange(s.mm, s.vma, s.addr, s.len, ps, FAULT_FLAG_USER),
      teardown(s) {
        check(file.pages.size === N, `cold fault run filled ${file.pages.size} of ${N} pages`);
        exitMmap(s.mm);
      },
    }),
  );
  dropPageCache(m, file);
  // Every round gave back what it took.
  check(m.frames.freeFrames === free0, `fault suite leaked ${free0 - m.frames.freeFrames} frames`);
  return rows;
}

/** After a populating run: a walk of the mapping finds `pages` present base pages (or the THP leaves). */
function checkMapped(m, s, pages, thp) {
  const counts = newCounts();
  mmapReadLock(s.mm);
  walkPageRange(s.mm, s.addr, s.addr + s.len, countingOps(counts, { leaves: true }));
  mmapReadUnlock(s.mm);
  const got = counts.present + counts.pmdLeaves * m.geo.PTRS_PER_PTE;
  check(got === pages, `${pages} pages faulted, a walk finds ${got} (thp ${thp})`);
}

function zap(geometry) {
  const N = FAULT_PAGES;
  const m = faultMachine(geometry, 2 * N * pageKiB(geometry) * 1024);
  m.thp.enabled = 'never';
  const populated = () => {
    const s = anonMapping(m, N);
    faultRange(s.mm, s.vma, s.addr, s.len, m.geo.PAGE_SIZE, FAULT_FLAG_WRITE | FAULT_FLAG_USER);
    return s;
  };
  const free0 = m.frames.freeFrames;
  const rows = [
    runStateful('zap', geometry, {
      name: 'zapPageRange, anonymous 4K pages',
      unit: 'pages',
      units: N,
      setup: populated,
      run(s) {
        mmapReadLock(s.mm);
        zapPageRange(s.vma, s.addr, s.len);
        mmapReadUnlock(s.mm);
      },
      teardown(s) {
        checkMapped(m, s, 0, 'never');
        exitMmap(s.mm);
      },
    }),
    runStateful('zap', geometry, {
      name: 'doMunmap, anonymous 4K pages (pages and tables freed)',
      unit: 'pages',
      units: N,
      setup: populated,
      run: (s) => check(doMunmap(s.mm, s.addr, s.len) === 0, 'doMunmap failed'),
      teardown: (s) => exitMmap(s.mm),
    }),
  ];
  check(m.frames.freeFrames === free0, `zap suite leaked ${free0 - m.frames.freeFrames} frames`);
  return rows;
}

function build(geometry) {
  const rows = [];
  const N = FAULT_PAGES;
  const m = faultMachine(geometry, 2 * N * pageKiB(geometry) * 1024);
  m.thp.enabled = 'never';
  rows.push(
    runStateful('build', geometry, {
      name: 'vmMmap MAP_POPULATE, anonymous 4K pages',
      unit: 'pages',
      units: N,
      setup: () => ({ mm: m.newMm('bench'), addr: 0, len: N * m.geo.PAGE_SIZE }),
      run(s) {
        s.addr = vmMmapOrThrow(s.mm, s.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE);
      },
      teardown(s) {
        checkMapped(m, s, N, 'never');
        exitMmap(s.mm);
      },
    }),
  );
  const FAST = QUICK ? 1 << 18 : 1 << 22; // 4M ptes: 16 GiB of 4K pages, 32 MiB of tables
  const start = defaultStart(geometry);
  const end = start + FAST * m.geo.PAGE_SIZE;
  rows.push(
    runStateful('build', geometry, {
      name: `fast builder (mapPtes), ${FAST >= 1 << 20 ? FAST / 2 ** 20 + 'M' : FAST / 1024 + 'K'} ptes, tables included`,
      unit: 'ptes',
      units: FAST,
      setup() {
        const mm = benchMachine(geometry, start, end).newMm('bench');
        mm.insertVma({ start, end, flags: 0x3 });
        return mm;
      },
      run: (mm) => mapPtes(mm, start, FAST),
    }),
  );
  const SLOW = QUICK ? 1 << 14 : 1 << 18;
  rows.push(
    runStateful('build', geometry, {
      name: 'set_pte_at(pfn_pte()) per pte (the BigInt API)',
      unit: 'ptes',
      units: SLOW,
      setup() {
        const mm = benchMachine(geometry, start, start + SLOW * m.geo.PAGE_SIZE).newMm('bench');
        return mm;
      },
      run(mm) {
        const mc = mm.machine;
        const prot = mc.bits.pgprot({ write: true, user: true });
        const ps = mc.geo.PAGE_SIZE;
        const per = mc.geo.PTRS_PER_PTE;
        let ptep = 0;
        for (let i = 0; i < SLOW; i++) {
          const addr = start + i * ps;
          if (i % per === 0) ptep = entryAlloc(mm, addr, 'pte');
          else ptep += 8;
          setPteAt(mm, addr, ptep, mc.bits.pfnPte(0x10_0000 + i, prot));
        }
      },
    }),
  );
  return rows;
}

const RUNNERS = { 'walk-dense': walkDense, 'walk-sparse': walkSparse, 'walk-mixed': walkMixed, translate, fault, zap, build };

// ================================================================================================
// Worker: one (suite, geometry) in this process, rows back over IPC
// ================================================================================================

async function worker(suite, geometry) {
  try {
    const rows = RUNNERS[suite](geometry);
    process.send({ rows }, () => process.exit(0));
  } catch (e) {
    process.send({ error: e instanceof Error ? e.stack ?? e.message : String(e) }, () => process.exit(1));
  }
}

function runWorker(suite, geometry) {
  return new Promise((resolve, reject) => {
    const args = ['--worker', suite, geometry];
    if (QUICK) args.push('--quick');
    const child = fork(HERE, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let reply = null;
    child.on('message', (msg) => (reply = msg));
    child.on('exit', (code) => {
      if (reply?.rows) resolve(reply.rows);
      else reject(new Error(`${suite} ${geometry}: ${reply?.error ?? `worker exited with code ${code}`}`));
    });
  });
}

// ================================================================================================
// Main: the table and results.json
// ================================================================================================

function rate(x) {
  if (x >= 1e9) return `${(x / 1e9).toFixed(2)} G`;
  if (x >= 1e6) return `${(x / 1e6).toFixed(1)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`;
  return `${x.toFixed(1)} `;
}

function ns(x) {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)} ms` : x >= 1e3 ? `${(x / 1e3).toFixed(2)} µs` : `${x.toFixed(1)} ns`;
}

function printRow(r) {
  console.log(
    `${r.suite.padEnd(12)} ${r.geometry.padEnd(14)} ${r.case.padEnd(58)} ${(rate(r.unitsPerSecond) + r.unit + '/s').padStart(16)} ${ns(r.nsPerUnit).padStart(10)}  ±${r.rme.toFixed(1).padStart(4)}%  ${String(r.samples).padStart(3)}`,
  );
}

async function main() {
  if (process.argv.includes('--list')) {
    for (const [s, geos] of Object.entries(SUITES)) console.log(`${s.padEnd(12)} ${geos.join(' ')}`);
    return;
  }
  const suites = listOption('--suite') ?? Object.keys(SUITES);
  for (const s of suites) if (!SUITES[s]) usage(`unknown suite '${s}'`);
  const geoFilter = listOption('--geometry');
  if (geoFilter) for (const g of geoFilter) if (!BENCH_GEOMETRIES.includes(g)) usage(`unknown geometry '${g}' (one of ${BENCH_GEOMETRIES.join(', ')})`);
  const partial = listOption('--suite') !== null || geoFilter !== null;

  const t0 = Date.now();
  console.log(`${'suite'.padEnd(12)} ${'geometry'.padEnd(14)} ${'case'.padEnd(58)} ${'rate'.padStart(16)} ${'per unit'.padStart(10)}  ${'rme'.padStart(6)}  ${'n'.padStart(3)}`);
  const rows = [];
  let failed = 0;
  for (const suite of suites) {
    for (const geometry of SUITES[suite]) {
      if (geoFilter && !geoFilter.includes(geometry)) continue;
      try {
        const got = await runWorker(suite, geometry);
        for (const r of got) printRow(r);
        rows.push(...got);
      } catch (e) {
        failed++;
        console.error(`FAILED ${e.message}`);
      }
    }
  }
  if (QUICK) {
    // A smoke run (tiny sizes, few samples): its figures are not worth keeping.
    console.log(`\n${rows.length} cases in ${((Date.now() - t0) / 1000).toFixed(0)} s (--quick: bench/results.json not written)`);
    if (failed) {
      console.error(`${failed} suite run(s) failed`);
      process.exit(1);
    }
    return;
  }
  const date = new Date().toISOString();
  for (const r of rows) r.date = date;
  let results = rows;
  if (partial && existsSync(RESULTS)) {
    const old = JSON.parse(readFileSync(RESULTS, 'utf8'));
    const key = (r) => `${r.suite}|${r.geometry}|${r.case}`;
    const fresh = new Set(rows.map(key));
    results = [...(old.results ?? []).filter((r) => r.geometry && !fresh.has(key(r))), ...rows];
  }
  const out = {
    date,
    node: process.version,
    v8: process.versions.v8,
    cpu: os.cpus()[0]?.model,
    cores: os.cpus().length,
    memory: os.totalmem(),
    quick: QUICK,
    seconds: (Date.now() - t0) / 1000,
    results,
  };
  writeFileSync(RESULTS, JSON.stringify(out, null, 2) + '\n');
  console.log(`\n${rows.length} cases in ${out.seconds.toFixed(0)} s; written bench/results.json${partial ? ' (rows merged)' : ''}`);
  // A full run goes on with the whole-program benchmarks, each in its own process: parallel walks
  // (bench/parallel.mjs), zero allocation (bench/gc.mjs) and scale (bench/scale.mjs). They are
  // also npm scripts of their own (bench:parallel, bench:gc, bench:scale); --suites-only skips them.
  if (!partial && !process.argv.includes('--suites-only')) {
    for (const script of ['parallel.mjs', 'gc.mjs', 'scale.mjs']) {
      console.log(`\n==== bench/${script}\n`);
      const r = spawnSync(process.execPath, [fileURLToPath(new URL(script, import.meta.url))], { stdio: 'inherit' });
      if (r.status !== 0) {
        console.error(`bench/${script} exited with status ${r.status}`);
        failed++;
      }
    }
  }
  if (failed) {
    console.error(`${failed} suite run(s) failed`);
    process.exit(1);
  }
}

const wi = process.argv.indexOf('--worker');
if (wi >= 0) await worker(process.argv[wi + 1], process.argv[wi + 2]);
else await main();
