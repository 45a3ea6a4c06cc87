// npm run bench:native: mmulab's counting walk (countWalk, the engine of `mmulab walk`) against
// the native reference walker bench/native/walker.c on the same image folders. Prints a table,
// writes bench/results-native.json, exits 1 if any image's numbers disagree.
//
// Options: --pages N (base pages mapped per image, default 8M), --rounds N (default 5).
//
// mmulab's side runs in a child process per image (this file with --mmulab-worker DIR) that loads
// the image once, walks it WARMUP_WALKS times untimed, and then walks it on request: a warm JIT, as
// in a long-running user (the C walker has no warm-up to make), but not polluted by the other
// geometries' walks (in one shared process the walker's call sites turn megamorphic
// and whichever images come later run slower).
import { execFileSync, fork, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countWalk, loadImage, registersFor, saveImage } from '../dist/index.js';
import { denseSpace } from './fixtures.mjs';

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
  process.on('message', (msg) => {
    if (msg === 'walk') process.send(countsOf(countWalk(img.machine, img.roots)));
    else process.exit(0);
  });
  process.send('ready');
}

/** Start a worker holding the image at dir; walk() asks it for one countWalk. */
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
  return {
    walk() {
      const p = reply();
      child.send('walk');
      return p;
    },
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
  try {
    for (const spec of IMAGES) {
      const dir = join(work, spec.geometry);
      {
        // Build and save in a block, so the builder machine can be collected before the walks.
        const { m, mm } = denseSpace(spec.geometry, pages, spec.start);
        saveImage(dir, m, registersFor(m, mm.pgd, m.initMm.pgd));
      }
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
              lastM = await mmulab.walk();
              best.mmulab = Math.min(best.mmulab, lastM.seconds);
            } else {
              lastN = runNative(built.walker, dir);
              best.native = Math.min(best.native, lastN.seconds);
            }
          }
          agree &&= sameCounts(lastM, lastN);
        }
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

  const out = {
    date: new Date().toISOString(),
    node: process.version,
    cc: built.version,
    cpu: os.cpus()[0]?.model,
    cores: os.cpus().length,
    pages,
    rounds,
    results,
  };
  writeFileSync(new URL('./results-native.json', import.meta.url), JSON.stringify(out, null, 2) + '\n');
  console.log('\nwritten bench/results-native.json');
  const disagree = results.filter((r) => !r.agree).map((r) => r.image);
  if (disagree.length) {
    console.error(`bench:native: mmulab and the native walker disagree on ${disagree.join(', ')}`);
    return 1;
  }
  return 0;
}

const workerAt = process.argv.indexOf('--mmulab-worker');
if (workerAt >= 0) runWorker(process.argv[workerAt + 1]);
else process.exitCode = await main();
