/**
 * The whole kvm-unit-tests x86/access.c case space (test/arch/x86-access-model.ts) for 4-level
 * and 5-level paging: every case is built in memory, walked by src/arch/x86_64/mmu.ts and
 * compared with the independent SDM model (fault, #PF error code, level, pa, A/D of every level).
 *
 *   npx esbuild bench/access-matrix.ts --bundle --platform=node --format=esm --outfile=dist/access-matrix.mjs
 *   node dist/access-matrix.mjs [--levels 4|5|4,5] [--json]
 *
 * Progress goes to stderr about once a second; the result (cases, disagreements, cases/s, the
 * outcome mix) to stdout. Exit status 1 when any case disagrees (the first 20 are printed).
 *
 * Each paging mode runs in its own worker thread, one after the other: in one isolate the second
 * mode ran at less than half the speed of the first (the JIT's type feedback from the 4-level run
 * made the shared code polymorphic), which would measure the harness, not the walk.
 */
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { PhysMem } from '../src/mem/physmem';
import { WalkResult, type Mmu } from '../src/arch/mmu-types';
import { createX86Mmu } from '../src/arch/x86_64/mmu';
import {
  CASE_COUNT,
  CPU_CONFIGS,
  MATRIX_LAYOUT,
  MATRIX_MAXPHYADDR,
  buildCase,
  checkCase,
  cpuRegisters,
  decodeCase,
  matrixVa,
  newCase,
  newExpectation,
} from '../test/arch/x86-access-model';

interface ModeResult {
  levels: number;
  cases: number;
  disagreements: number;
  seconds: number;
  casesPerSecond: number;
  outcomes: Record<string, number>;
}

function runMode(levels: 4 | 5, firstFailures: string[], progress: (line: string) => void): ModeResult {
  const mem = new PhysMem({ size: MATRIX_LAYOUT.size });
  const root = levels === 5 ? MATRIX_LAYOUT.pml5 : MATRIX_LAYOUT.pml4;
  const mmus: Mmu[] = [];
  for (let k = 0; k < CPU_CONFIGS; k++) {
    mmus.push(createX86Mmu(mem, cpuRegisters(k, levels === 5, root), { maxPhyAddr: MATRIX_MAXPHYADDR }));
  }
  const va = matrixVa(levels);
  const c = newCase();
  const x = newExpectation();
  const out = new WalkResult();
  let ok = 0;
  let notPresent = 0;
  let reserved = 0;
  let protection = 0;
  let disagreements = 0;
  const t0 = performance.now();
  let nextReport = t0 + 1000;
  const CHUNK = 1 << 16;
  for (let start = 0; start < CASE_COUNT; start += CHUNK) {
    const end = Math.min(CASE_COUNT, start + CHUNK);
    for (let i = start; i < end; i++) {
      decodeCase(i, c);
      buildCase(mem, c, levels, va);
      const d = checkCase(mmus[c.cpu]!, mem, c, levels, va, out, x);
      if (d !== null) {
        disagreements++;
        if (firstFailures.length < 20) firstFailures.push(d);
      }
      const f = x.fault;
      if (f === null) ok++;
      else if (f === 'not_present') notPresent++;
      else if (f === 'reserved') reserved++;
      else protection++;
    }
    const now = performance.now();
    if (now >= nextReport) {
      nextReport = now + 1000;
      const rate = end / ((now - t0) / 1000);
      const pct = ((100 * end) / CASE_COUNT).toFixed(1);
      const eta = ((CASE_COUNT - end) / rate).toFixed(0);
      progress(`${levels}-level: ${end}/${CASE_COUNT} (${pct}%) ${(rate / 1e6).toFixed(2)} M cases/s, ${eta} s left, ${disagreements} disagreements`);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    levels,
    cases: CASE_COUNT,
    disagreements,
    seconds,
    casesPerSecond: CASE_COUNT / seconds,
    outcomes: { ok, not_present: notPresent, reserved, protection },
  };
}

interface WorkerMessage {
  progress?: string;
  result?: ModeResult;
  failures?: string[];
}

/** One mode in a fresh worker; progress lines come back as messages and go to stderr. */
function runWorker(levels: 4 | 5): Promise<{ result: ModeResult; failures: string[] }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: { levels } });
    let done: { result: ModeResult; failures: string[] } | null = null;
    w.on('message', (m: WorkerMessage) => {
      if (m.progress !== undefined) process.stderr.write(`\r${m.progress}   `);
      if (m.result !== undefined) done = { result: m.result, failures: m.failures ?? [] };
    });
    w.on('error', reject);
    w.on('exit', (code) => {
      process.stderr.write('\n');
      if (done !== null) resolve(done);
      else reject(new Error(`${levels}-level worker exited with code ${code} before reporting`));
    });
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { levels: { type: 'string', default: '4,5' }, json: { type: 'boolean', default: false } } });
  const modes = values.levels.split(',').map((s) => s.trim());
  for (const m of modes) {
    if (m !== '4' && m !== '5') {
      process.stderr.write(`--levels ${values.levels}: expected 4, 5 or 4,5\n`);
      return 2;
    }
  }
  const failures: string[] = [];
  const results: ModeResult[] = [];
  for (const m of modes) {
    const r = await runWorker(m === '5' ? 5 : 4);
    results.push(r.result);
    failures.push(...r.failures.slice(0, 20 - failures.length));
  }
  for (const r of results) {
    if (values.json) {
      console.log(JSON.stringify(r));
    } else {
      const o = r.outcomes;
      console.log(
        `x86-64 ${r.levels}-level access matrix: ${r.cases} cases, ${r.disagreements} disagreements, ` +
          `${r.seconds.toFixed(1)} s, ${(r.casesPerSecond / 1e6).toFixed(2)} M cases/s ` +
          `(ok ${o.ok}, not_present ${o.not_present}, reserved ${o.reserved}, protection ${o.protection})`,
      );
    }
  }
  for (const f of failures) console.log(`DISAGREE ${f}`);
  return results.some((r) => r.disagreements > 0) ? 1 : 0;
}

if (isMainThread) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`access-matrix: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
} else {
  const levels = (workerData as { levels: 4 | 5 }).levels;
  const failures: string[] = [];
  const result = runMode(levels, failures, (line) => parentPort!.postMessage({ progress: line } satisfies WorkerMessage));
  parentPort!.postMessage({ result, failures } satisfies WorkerMessage);
}
