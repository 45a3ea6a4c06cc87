// npm run bench:scale — build and walk a large address space: by default 1 TiB mapped with 4 KiB
// pages, 256M ptes in 512K page tables (2 GiB), on x86-64 4-level.
//
//   node bench/scale.mjs [--tib N] [--geometry NAME] [--json]
//
// The machine's memory is sized for the tables (bench/fixtures.mjs tablesSpanned); the ptes are
// written by the fixtures' fast builder (halves with precomputed protection bits, tables from
// entryAlloc), with a progress bar on stderr when it is a terminal. Then two walks of the whole
// mapping, each in a fresh worker thread over the same SharedArrayBuffer (PhysMem's `buffer`
// option, Machine's adoptMemory: nothing is copied, and each walk has a JIT of its own, so its
// figure does not depend on the other having run first): countWalk (the engine of `mmulab walk`,
// over the root's user half) and walkPageRange with a pte_entry callback (the VMA walk, the
// benchmarks' countingOps). Reported: build time, walk times and entries per second, RSS after
// the build and the peak (process.resourceUsage().maxRSS, workers included), and how large an
// address space fits. Results go to bench/results-scale.json.
//
// The limit: PhysMem views its SharedArrayBuffer through a Uint32Array, and Node 20 (V8 11.3) caps
// a typed array at 2^32 elements (buffer.constants.MAX_LENGTH), so a machine's memory is at most
// 16 GiB (a Uint8Array over the whole buffer stops at 4 GiB: code that makes one fails past that).
// With 4 KiB pages one pte table (4 KiB) maps 2 MiB, so 16 GiB of tables map just under 8 TiB.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { MAX_MEMORY, Machine, MmStruct, PhysMem, countWalk, geometry as geometryOf, mmapReadLock, walkPageRange } from '../dist/index.js';
import { benchMachine, countingOps, mapPtes, newCounts, tablesSpanned } from './fixtures.mjs';

/** Largest PhysMem: a Uint32Array over the whole buffer holds at most 2^32 elements. */
/** Memory the fixtures' machines keep beside the tables (init_mm, the zero page, slack). */
const BOOT_BYTES = 16 * 2 ** 20;
const GiB = 2 ** 30;
const TiB = 2 ** 40;
const VM_READ_WRITE = 0x3;

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i < 0 ? fallback : process.argv[i + 1];
}

function usage(msg) {
  console.error(`bench:scale: ${msg}`);
  console.error('usage: node bench/scale.mjs [--tib N] [--geometry NAME] [--json]');
  process.exit(2);
}

/** A progress bar on stderr, drawn only on a terminal (the look of src/cli/progress.ts). */
function progressBar(label) {
  const tty = process.stderr.isTTY;
  const t0 = performance.now();
  let last = 0;
  let drawn = false;
  return {
    update(done, total) {
      if (!tty) return;
      const t = performance.now();
      if (t - last < 100) return;
      last = t;
      drawn = true;
      const frac = done / total;
      const width = Math.max(10, Math.min(40, (process.stderr.columns ?? 80) - label.length - 40));
      const fill = Math.round(frac * width);
      const tail = ` ${String(Math.floor(frac * 100)).padStart(3)}%  ${(done / 2 ** 20).toFixed(0)}M/${(total / 2 ** 20).toFixed(0)}M ptes  ${((t - t0) / 1000).toFixed(1)}s`;
      process.stderr.write(`\r\x1b[2K${label} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}]${tail}`);
    },
    finish() {
      if (drawn) process.stderr.write('\r\x1b[2K');
    },
  };
}

// ---- a walk, in a worker thread --------------------------------------------------------------------

function walkWorker() {
  const d = workerData;
  const mem = new PhysMem({ size: d.size, physBase: d.physBase, buffer: d.buffer });
  const m = new Machine({ geometry: d.geometry, mem, adoptMemory: true });
  if (d.kind === 'countWalk') {
    const t0 = performance.now();
    const r = countWalk(m, [{ name: 'cr3', table: d.pgd, start: 0, end: m.TASK_SIZE + m.geo.PAGE_SIZE }]);
    const seconds = (performance.now() - t0) / 1000;
    const pteLeaves = r.leavesByLevel[String(m.geo.hwLevel.pte)] ?? 0;
    parentPort.postMessage({ entries: r.entries, pteLeaves, checksum: '0x' + r.checksum.toString(16), seconds });
  } else {
    const mm = new MmStruct(m, d.pgd, 'scale', 1);
    mm.insertVma({ start: d.start, end: d.end, flags: VM_READ_WRITE });
    mmapReadLock(mm);
    const counts = newCounts();
    const t0 = performance.now();
    walkPageRange(mm, d.start, d.end, countingOps(counts));
    const seconds = (performance.now() - t0) / 1000;
    parentPort.postMessage({ entries: counts.ptes, present: counts.present, seconds });
  }
}

function walkInWorker(data) {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: data });
    w.once('message', resolve);
    w.once('error', reject);
  });
}

// ---- main ------------------------------------------------------------------------------------------

async function main() {
  const geometry = option('--geometry', 'x86_64-4level');
  const tib = Number(option('--tib', '1'));
  let g;
  try {
    g = geometryOf(geometry);
  } catch (e) {
    usage(e.message);
  }
  if (!(tib > 0) || !Number.isInteger(tib * 1024)) usage(`--tib needs a positive number of TiB (a multiple of 1/1024), got '${option('--tib')}'`);

  const ps = g.PAGE_SIZE;
  const pages = (tib * TiB) / ps;
  const start = 2 ** 40; // 1 TiB: a PUD-aligned user address in every configuration with room
  const end = start + pages * ps;
  if (end > g.TASK_SIZE) usage(`${tib} TiB from 1 TiB passes ${geometry}'s TASK_SIZE (0x${g.TASK_SIZE.toString(16)})`);
  const tables = tablesSpanned(g, start, end);
  const needed = tables * ps + BOOT_BYTES;
  if (needed > MAX_MEMORY) {
    usage(`${tib} TiB of ${ps / 1024}K pages needs ${(needed / GiB).toFixed(2)} GiB of page tables; the largest memory is 16 GiB (a Uint32Array holds at most 2^32 elements on Node 20)`);
  }
  if (needed > os.totalmem() * 0.9) usage(`${(needed / GiB).toFixed(2)} GiB of page tables will not fit in this machine's ${(os.totalmem() / GiB).toFixed(1)} GiB`);

  // Build.
  console.log(`bench:scale: ${geometry}, ${tib} TiB mapped with ${ps / 1024} KiB pages: ${pages.toLocaleString('en')} ptes in ${tables.toLocaleString('en')} page tables`);
  const m = benchMachine(geometry, start, end);
  const mm = m.newMm('scale');
  mm.insertVma({ start, end, flags: VM_READ_WRITE });
  const free0 = m.frames.freeFrames;
  const bar = progressBar('building');
  const tBuild = performance.now();
  mapPtes(mm, start, pages, { progress: (done, total) => bar.update(done, total) });
  const buildSeconds = (performance.now() - tBuild) / 1000;
  bar.finish();
  const tableBytes = (free0 - m.frames.freeFrames) * 4096;
  const rssBuilt = process.memoryUsage().rss;
  console.log(
    `built in ${buildSeconds.toFixed(2)} s (${(pages / buildSeconds / 1e6).toFixed(1)} M ptes/s); memory ${(m.mem.size / GiB).toFixed(2)} GiB, page tables ${(tableBytes / GiB).toFixed(3)} GiB, RSS ${(rssBuilt / GiB).toFixed(2)} GiB`,
  );

  // Walk.
  const data = { geometry, buffer: m.mem.buffer, size: m.mem.size, physBase: m.mem.physBase, pgd: mm.pgd, start, end };
  const cw = await walkInWorker({ ...data, kind: 'countWalk' });
  if (cw.pteLeaves !== pages) throw new Error(`countWalk found ${cw.pteLeaves} pte leaves, expected ${pages}`);
  console.log(`countWalk: ${cw.entries.toLocaleString('en')} entries in ${cw.seconds.toFixed(2)} s (${(cw.entries / cw.seconds / 1e6).toFixed(1)} M entries/s), checksum ${cw.checksum}`);
  const pw = await walkInWorker({ ...data, kind: 'walkPageRange' });
  if (pw.entries !== pages || pw.present !== pages) throw new Error(`walkPageRange met ${pw.entries} ptes (${pw.present} present), expected ${pages}`);
  console.log(`walkPageRange + pte_entry: ${pw.entries.toLocaleString('en')} ptes in ${pw.seconds.toFixed(2)} s (${(pw.entries / pw.seconds / 1e6).toFixed(1)} M entries/s)`);
  const peakRss = process.resourceUsage().maxRSS * 1024; // maxRSS is in KiB
  console.log(`peak RSS ${(peakRss / GiB).toFixed(2)} GiB (${((peakRss - tableBytes) / 2 ** 20).toFixed(0)} MiB beyond the page tables)`);

  // What fits: tables per TiB of base pages, against the 16 GiB memory limit and this machine's RAM
  // (less what this run needed beyond its tables, and the frame metadata: about 40 B per 4 KiB frame).
  const perTiB = (tablesSpanned(g, start, start + TiB) - 1) * ps;
  const byMemory = (MAX_MEMORY - BOOT_BYTES) / perTiB;
  const byRam = (os.totalmem() - (peakRss - tableBytes)) / (perTiB * (1 + 40 / 4096));
  const fits = Math.min(byMemory, byRam);
  console.log(
    `fits: ${fits.toFixed(2)} TiB of ${ps / 1024} KiB pages (${(perTiB / GiB).toFixed(3)} GiB of tables per TiB; the 16 GiB memory limit allows ${byMemory.toFixed(2)} TiB, this machine's ${(os.totalmem() / GiB).toFixed(1)} GiB of RAM ${byRam.toFixed(2)} TiB)`,
  );

  const out = {
    date: new Date().toISOString(),
    node: process.version,
    cpu: os.cpus()[0]?.model,
    cores: os.cpus().length,
    totalMemory: os.totalmem(),
    geometry,
    mappedBytes: tib * TiB,
    pageSize: ps,
    ptes: pages,
    pageTables: tables,
    memoryBytes: m.mem.size,
    pageTableBytes: tableBytes,
    buildSeconds,
    countWalk: { entries: cw.entries, seconds: cw.seconds, checksum: cw.checksum },
    walkPageRange: { entries: pw.entries, seconds: pw.seconds },
    rssAfterBuild: rssBuilt,
    peakRss,
    fitsTiB: Number(fits.toFixed(2)),
  };
  writeFileSync(new URL('./results-scale.json', import.meta.url), JSON.stringify(out, null, 2) + '\n');
  if (process.argv.includes('--json')) console.log(JSON.stringify(out));
  console.log('written bench/results-scale.json');
}

if (isMainThread) await main();
else walkWorker();
