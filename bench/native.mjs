// npm run bench:native: mmulab against the native reference walker bench/native/walker.c on the
// same image folders, two comparisons per image:
//  - the counting walk (countWalk, the engine of `mmulab walk`) against `walker DIR`;
//  - translate-by-walk: the hardware walk of one VA from the root to its leaf, no TLB (Mmu.walk,
//    the engine of `mmulab translate`), over a file of random VAs, against `walker DIR --translate`.
// Prints a table for each, writes bench/results-native.json, exits 1 if any image's numbers disagree.
//
// Options: --pages N (base pages mapped per image, default 8M), --rounds N (default 5),
// --translations N (VAs translated per image and round, default 2^20).
//
// mmulab's side runs in a child process per image (this file with --mmulab-worker DIR) that loads
// the image and its VA file once, runs each loop (the counting walk, the translations)
// WARMUP_WALKS times untimed, and then runs them on request: a warm JIT, as in a long-running user
// (the C walker has no warm-up to make), but not polluted by the other geometries' walks (in one
// shared process the walker's call sites turn megamorphic and whichever images come later run
// slower).
import { execFileSync, fork, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WalkResult, countWalk, createCpu, imageCpuParams, loadImage, registersFor, saveImage } from '../dist/index.js';
import { FIRST_PFN, defaultStart, denseSpace, pageSizeOf } from './fixtures.mjs';
import { mulberry32 } from './prng.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));

// The images: dense mappings of base pages (4K, 16K or 64K by granule), one VMA each
// (bench/fixtures.mjs). ARM64 64K/42 has a 4 TiB TTBR0 range, so its mapping starts at 1 TiB
// rather than at the fixture's default 0x7f0000000000.
const IMAGES = [
  { geometry: 'x86_64-4level' },
  { geometry: 'x86_64-5level' },
  { geometry: 'arm64-4k-48' },
  { geometry: 'arm64-16k-47' },
  { geometry: 'arm64-64k-42', start: 2 ** 40 },
];

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) {
    console.error(`bench:native: ${name} needs a positive integer, got '${process.argv[i + 1]}'`);
    process.exit(2);
  }
  return v;
}

// ---- translate-by-walk: the VA file and mmulab's loop ----------------------------------------------

/** The file each image folder gets: `translations` little-endian u64 VAs. */
export const VA_FILE = 'vas.bin';
/** Seed of the VA choice: every run translates the same VAs. */
export const VA_SEED = 0x6d6d75;
/** The share of VAs that fault (an unmapped page just past the mapping), so the fault path is timed too. */
export const FAULT_FRACTION = 1 / 64;
/** Faulting VAs fall in one of this many pages from the end of the mapping. */
const FAULT_PAGES = 16;
/** The translate-by-walk target of issue 6: mmulab's ns per translation at most this times the C walker's. */
export const TRANSLATE_TARGET = 1.5;
const TWO32 = 4294967296;
const CHUNK = 4096;

/**
 * Write the VA file for a denseSpace(geometry, pages, start) image: `translations` VAs, each a
 * uniformly chosen mapped page plus an 8-aligned offset in it, except about 1 in 64
 * (FAULT_FRACTION) that fall in one of the FAULT_PAGES unmapped pages just past the mapping.
 * Returns what a correct walk must report, from the fixture's own rule (bench/fixtures.mjs
 * mapPtes: page i from start maps frame FIRST_PFN + i): the fault count, and the sum of the
 * physical addresses of the others mod 2^64 as hex.
 */
export function writeVas(file, { geometry, pages, start = defaultStart(geometry), translations, seed = VA_SEED }) {
  const ps = pageSizeOf(geometry);
  const end = start + pages * ps;
  const next = mulberry32(seed);
  const buf = Buffer.alloc(translations * 8);
  const sum = new PaSum();
  let faults = 0;
  for (let i = 0; i < translations; i++) {
    const offset = Math.floor(next() * (ps / 8)) * 8;
    let pageVa;
    if (next() < FAULT_FRACTION) {
      pageVa = end + Math.floor(next() * FAULT_PAGES) * ps;
      faults++;
    } else {
      const page = Math.floor(next() * pages);
      pageVa = start + page * ps;
      sum.add((FIRST_PFN + page) * ps + offset);
    }
    // A page-aligned VA below 2^64 is exact in a double (DESIGN.md 3); the offset goes into the
    // low half, where it cannot carry (pages are at most 64 KiB).
    const hi = Math.floor(pageVa / TWO32);
    buf.writeUInt32LE(pageVa - hi * TWO32 + offset, i * 8);
    buf.writeUInt32LE(hi, i * 8 + 4);
  }
  writeFileSync(file, buf);
  return { translations, faults, checksum: '0x' + sum.total().toString(16) };
}

/**
 * A sum of physical addresses mod 2^64 without an allocation per address: each PA (< 2^52) is
 * split into 32-bit halves summed as doubles (exact for any 2^20 of them), folded into a BigInt
 * every CHUNK addresses by the caller (flush) or at the end.
 */
class PaSum {
  constructor() {
    this.hi = 0;
    this.lo = 0;
    this.n = 0;
    this.big = 0n;
  }
  add(pa) {
    const h = Math.floor(pa / TWO32);
    this.hi += h;
    this.lo += pa - h * TWO32;
    if (++this.n === CHUNK) this.flush();
  }
  flush() {
    this.big += (BigInt(this.hi) << 32n) + BigInt(this.lo);
    this.hi = this.lo = this.n = 0;
  }
  total() {
    this.flush();
    return BigInt.asUintN(64, this.big);
  }
}

/** A VA file as the two arrays of 32-bit halves Mmu.walk takes (src/arch/mmu-types.ts). */
export function loadVas(file) {
  const buf = readFileSync(file);
  if (buf.length === 0 || buf.length % 8 !== 0) throw new RangeError(`${file}: ${buf.length} bytes; expected a non-zero multiple of 8`);
  const n = buf.length / 8;
  const vaHi = new Uint32Array(n);
  const vaLo = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    vaLo[i] = buf.readUInt32LE(i * 8);
    vaHi[i] = buf.readUInt32LE(i * 8 + 4);
  }
  return { vaHi, vaLo };
}

/** The MMU an image's loader gives, as `mmulab translate` makes it (src/cli/commands/translate.ts), without a TLB. */
export function imageMmu(img) {
  const p = imageCpuParams(img);
  return createCpu(p.arch, img.machine.mem, p.registers, { ...p.options, tlb: 'none' }).mmu;
}

/**
 * The timed loop of mmulab's side: one hardware walk per VA, a user-mode read in debug mode (no
 * A/D update, as the C walker writes nothing), into one reused WalkResult. Sums the PAs of the
 * translations that succeed (halves in doubles, a BigInt once per CHUNK: nothing allocated per
 * translation) and counts the faults.
 */
export function translateAll(mmu, vaHi, vaLo, out) {
  const n = vaLo.length;
  let faults = 0;
  let total = 0n;
  for (let i = 0; i < n; ) {
    const stop = Math.min(n, i + CHUNK);
    let hiSum = 0;
    let loSum = 0;
    for (; i < stop; i++) {
      mmu.walk(vaHi[i], vaLo[i], 'read', true, true, out);
      if (out.fault !== null) {
        faults++;
        continue;
      }
      const pa = out.pa;
      const h = Math.floor(pa / TWO32);
      hiSum += h;
      loSum += pa - h * TWO32;
    }
    total += (BigInt(hiSum) << 32n) + BigInt(loSum);
  }
  return { translations: n, faults, checksum: BigInt.asUintN(64, total) };
}

/** One timed pass of translateAll, as it crosses IPC (checksum as hex). */
function timeTranslations(mmu, vaHi, vaLo, out) {
  const t0 = process.hrtime.bigint();
  const r = translateAll(mmu, vaHi, vaLo, out);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { translations: r.translations, faults: r.faults, checksum: '0x' + r.checksum.toString(16), seconds };
}

function sameTranslations(a, b) {
  return a.translations === b.translations && a.faults === b.faults && a.checksum === b.checksum;
}

/** countWalk's result as the JSON of `mmulab walk` has it (checksum as hex: bigints do not cross IPC). */
function countsOf(r) {
  return { entries: r.entries, leaves: r.leaves, leavesByLevel: r.leavesByLevel, checksum: '0x' + r.checksum.toString(16), seconds: r.seconds };
}

function sameCounts(a, b) {
  const levels = (x) => JSON.stringify(Object.entries(x.leavesByLevel).sort());
  return a.entries === b.entries && a.leaves === b.leaves && a.checksum === b.checksum && levels(a) === levels(b);
}

// ---- mmulab's side: a worker process per image ---------------------------------------------------

/** Untimed walks a worker makes before the rounds: the optimiser settles in the first few. */
const WARMUP_WALKS = 5;

function runWorker(dir) {
  const img = loadImage(dir);
  for (let i = 0; i < WARMUP_WALKS; i++) countWalk(img.machine, img.roots);
  // Translate-by-walk: the image's MMU over the same memory, the VAs as halves, one WalkResult.
  const mmu = imageMmu(img);
  const { vaHi, vaLo } = loadVas(join(dir, VA_FILE));
  const out = new WalkResult();
  for (let i = 0; i < WARMUP_WALKS; i++) translateAll(mmu, vaHi, vaLo, out);
  process.on('message', (msg) => {
    if (msg === 'walk') process.send(countsOf(countWalk(img.machine, img.roots)));
    else if (msg === 'translate') process.send(timeTranslations(mmu, vaHi, vaLo, out));
    else process.exit(0);
  });
  process.send('ready');
}

/** Start a worker holding the image at dir; walk() asks it for one countWalk, translate() for one pass over the VA file. */
async function mmulabWorker(dir) {
  const child = fork(fileURLToPath(import.meta.url), ['--mmulab-worker', dir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let pending = null;
  child.on('message', (m) => {
    const p = pending;
    pending = null;
    p?.resolve(m);
  });
  child.on('exit', (code) => pending?.reject(new Error(`mmulab worker for ${dir} exited with code ${code}`)));
  const reply = () => new Promise((resolve, reject) => (pending = { resolve, reject }));
  await reply(); // 'ready': the image is loaded
  const ask = (msg) => {
    const p = reply();
    child.send(msg);
    return p;
  };
  return {
    walk: () => ask('walk'),
    translate: () => ask('translate'),
    close() {
      child.send('exit');
    },
  };
}

// ---- the native side ------------------------------------------------------------------------------

function runNative(walker, dir) {
  const j = JSON.parse(execFileSync(walker, [dir], { encoding: 'utf8' }));
  return { entries: j.entries, leaves: j.leaves, leavesByLevel: j.leaves_by_level, checksum: j.checksum, seconds: j.seconds };
}

function runNativeTranslate(walker, dir) {
  const j = JSON.parse(execFileSync(walker, [dir, '--translate', join(dir, VA_FILE)], { encoding: 'utf8' }));
  return { translations: j.translations, faults: j.faults, checksum: j.checksum, seconds: j.seconds };
}

/** Compile walker.c with the machine's cc (or $CC); null when there is no compiler. */
function buildWalker() {
  const cc = process.env.CC || 'cc';
  const probe = spawnSync(cc, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return null;
  const version = probe.stdout.split('\n')[0];
  const buildDir = join(here, 'native', 'build');
  mkdirSync(buildDir, { recursive: true });
  const walker = join(buildDir, 'walker');
  execFileSync(cc, ['-O2', '-std=c99', '-Wall', '-o', walker, join(here, 'native', 'walker.c')], { stdio: 'inherit' });
  return { walker, version };
}

// ---- the comparison -----------------------------------------------------------------------------

async function main() {
  const pages = option('--pages', 8 * 2 ** 20); // >= 8M entries per image: 8M ptes plus the tables above
  const rounds = option('--rounds', 5);
  const translations = option('--translations', 2 ** 20);
  const built = buildWalker();
  if (!built) {
    console.log('no C compiler (cc) found: install gcc to run the native comparison');
    return 0;
  }
  console.log(`built ${built.walker} with ${built.version} (-O2)`);
  console.log(`${IMAGES.length} images of ${pages} mapped pages, ${rounds} alternating rounds each, best time kept\n`);
  const header = `${'image'.padEnd(16)} ${'entries'.padStart(10)} ${'mmulab s'.padStart(10)} ${'native s'.padStart(10)} ${'ratio'.padStart(8)}  agree`;
  console.log(header);
  console.log('-'.repeat(header.length));

  const work = mkdtempSync(join(os.tmpdir(), 'mmulab-bench-native-'));
  const results = [];
  const translateResults = [];
  try {
    for (const spec of IMAGES) {
      const dir = join(work, spec.geometry);
      {
        // Build and save in a block, so the builder machine can be collected before the walks.
        const { m, mm } = denseSpace(spec.geometry, pages, spec.start);
        saveImage(dir, m, registersFor(m, mm.pgd, m.initMm.pgd));
      }
      // The VAs both sides translate, and what the fixture's rule says they must find.
      const expected = writeVas(join(dir, VA_FILE), { geometry: spec.geometry, pages, start: spec.start, translations });
      const mmulab = await mmulabWorker(dir);
      const best = { mmulab: Infinity, native: Infinity };
      let lastM = null;
      let lastN = null;
      let agree = true;
      try {
        for (let round = 0; round < rounds; round++) {
          // Alternate which side goes first, so neither always runs right after the other.
          const order = round % 2 === 0 ? ['mmulab', 'native'] : ['native', 'mmulab'];
          for (const side of order) {
            if (side === 'mmulab') {
              // A fresh worker process each round, as the native side is a fresh process each
              // round: the optimiser's outcome varies from process to process (the same walk
              // takes 35-60 ms in different ones), and best-of-rounds then samples both sides alike.
              const fresh = await mmulabWorker(dir);
              try {
                lastM = await fresh.walk();
              } finally {
                fresh.close();
              }
              best.mmulab = Math.min(best.mmulab, lastM.seconds);
            } else {
              lastN = runNative(built.walker, dir);
              best.native = Math.min(best.native, lastN.seconds);
            }
          }
          agree &&= sameCounts(lastM, lastN);
        }
        // Translate-by-walk on the same image and worker, alternating the same way.
        const bestT = { mmulab: Infinity, native: Infinity };
        let lastTM = null;
        let lastTN = null;
        let agreeT = true;
        for (let round = 0; round < rounds; round++) {
          const order = round % 2 === 0 ? ['mmulab', 'native'] : ['native', 'mmulab'];
          for (const side of order) {
            if (side === 'mmulab') {
              lastTM = await mmulab.translate();
              bestT.mmulab = Math.min(bestT.mmulab, lastTM.seconds);
            } else {
              lastTN = runNativeTranslate(built.walker, dir);
              bestT.native = Math.min(bestT.native, lastTN.seconds);
            }
          }
          // Both sides must agree with each other and with the fixture's rule.
          agreeT &&= sameTranslations(lastTM, lastTN) && sameTranslations(lastTM, expected);
        }
        const mmulabNs = (bestT.mmulab * 1e9) / translations;
        const nativeNs = (bestT.native * 1e9) / translations;
        const { seconds: _tm, ...resultM } = lastTM;
        const { seconds: _tn, ...resultN } = lastTN;
        translateResults.push({
          image: spec.geometry,
          pages,
          translations,
          faults: lastTM.faults,
          mmulabSeconds: bestT.mmulab,
          nativeSeconds: bestT.native,
          mmulabNs,
          nativeNs,
          ratio: mmulabNs / nativeNs,
          agree: agreeT,
          expected,
          mmulab: resultM,
          native: resultN,
        });
      } finally {
        mmulab.close();
        rmSync(dir, { recursive: true, force: true });
      }
      const ratio = best.mmulab / best.native;
      const { seconds: _m, ...countsM } = lastM;
      const { seconds: _n, ...countsN } = lastN;
      results.push({
        image: spec.geometry,
        pages,
        entries: lastM.entries,
        leaves: lastM.leaves,
        mmulabSeconds: best.mmulab,
        nativeSeconds: best.native,
        ratio,
        agree,
        mmulab: countsM,
        native: countsN,
      });
      console.log(
        `${spec.geometry.padEnd(16)} ${String(lastM.entries).padStart(10)} ${best.mmulab.toFixed(4).padStart(10)} ` +
          `${best.native.toFixed(4).padStart(10)} ${ratio.toFixed(1).padStart(8)}  ${agree ? 'yes' : 'NO'}`,
      );
      if (!agree) {
        console.log(`  mmulab: ${JSON.stringify(countsM)}`);
        console.log(`  native: ${JSON.stringify(countsN)}`);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  // The second table: one hardware walk per VA, root to leaf, no TLB.
  console.log(
    `\ntranslate-by-walk: ${translations} VAs per image (about 1 in ${Math.round(1 / FAULT_FRACTION)} faulting), user read, no TLB; ` +
      `ns per translation, best of ${rounds} rounds; target ratio <= ${TRANSLATE_TARGET}\n`,
  );
  const headerT =
    `${'image'.padEnd(16)} ${'translations'.padStart(12)} ${'faults'.padStart(8)} ${'mmulab ns'.padStart(10)} ` +
    `${'native ns'.padStart(10)} ${'ratio'.padStart(6)}  agree`;
  console.log(headerT);
  console.log('-'.repeat(headerT.length));
  for (const r of translateResults) {
    console.log(
      `${r.image.padEnd(16)} ${String(r.translations).padStart(12)} ${String(r.faults).padStart(8)} ${r.mmulabNs.toFixed(1).padStart(10)} ` +
        `${r.nativeNs.toFixed(1).padStart(10)} ${r.ratio.toFixed(2).padStart(6)}  ${r.agree ? 'yes' : 'NO'}`,
    );
    if (!r.agree) {
      console.log(`  expected: ${JSON.stringify(r.expected)}`);
      console.log(`  mmulab:   ${JSON.stringify(r.mmulab)}`);
      console.log(`  native:   ${JSON.stringify(r.native)}`);
    }
  }

  const out = {
    date: new Date().toISOString(),
    node: process.version,
    cc: built.version,
    cpu: os.cpus()[0]?.model,
    cores: os.cpus().length,
    pages,
    rounds,
    results,
    translate: {
      translations,
      seed: VA_SEED,
      faultFraction: FAULT_FRACTION,
      target: TRANSLATE_TARGET,
      loadavg: os.loadavg(),
      results: translateResults,
    },
  };
  writeFileSync(new URL('./results-native.json', import.meta.url), JSON.stringify(out, null, 2) + '\n');
  console.log('\nwritten bench/results-native.json');
  const disagree = results.filter((r) => !r.agree).map((r) => r.image);
  const disagreeT = translateResults.filter((r) => !r.agree).map((r) => r.image);
  if (disagree.length) console.error(`bench:native: mmulab and the native walker disagree on ${disagree.join(', ')}`);
  if (disagreeT.length) console.error(`bench:native: mmulab and the native walker disagree on translate-by-walk of ${disagreeT.join(', ')}`);
  return disagree.length || disagreeT.length ? 1 : 0;
}

// Run only as a program (or as its own worker): test/bench/native-translate.test.ts imports the
// VA file and the translate loop from here.
const entry = process.argv[1];
if (entry !== undefined && pathToFileURL(realpathSync(entry)).href === import.meta.url) {
  const workerAt = process.argv.indexOf('--mmulab-worker');
  if (workerAt >= 0) runWorker(process.argv[workerAt + 1]);
  else process.exitCode = await main();
}
