/**
 * The soak: the differential property test of test/prop at length — 10^6 operations (by default)
 * over every architecture configuration, each sequence on a fresh machine, with every check after
 * every step (test/prop/ops.ts). Bundled by esbuild and run under plain Node:
 *
 *   npx esbuild bench/soak.ts --bundle --platform=node --format=esm --outfile=dist/soak.mjs && node dist/soak.mjs [options]
 *
 * Options: --ops N (total operations, default 1000000), --seed S (default: the clock), --geometry G
 * (one configuration), --max-len L (operations per sequence, default 150), --path P (replay one
 * failure: with --seed and --geometry, as the failure report prints them).
 *
 * Prints a progress line every few seconds; on a failure, the configuration, the seed and path that
 * replay it, the shrunk operation list and the broken rule, and exits 1.
 */
import fc from 'fast-check';
import { GEOMETRY_NAMES, type GeometryName } from '../src/index';
import { addStats, emptyStats, failingPrefix, formatOps, opsArb, runOps, type Op } from '../test/prop/ops';

interface Args {
  ops: number;
  seed: number;
  geometry: GeometryName | null;
  maxLen: number;
  path: string | null;
}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { ops: 1_000_000, seed: Date.now() % 2 ** 31, geometry: null, maxLen: 150, path: null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[i + 1];
    const need = (): string => {
      if (v === undefined) throw new Error(`${k}: expected a value`);
      i++;
      return v;
    };
    const int = (s: string): number => {
      const n = Number(s.replace(/_/g, ''));
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${k} ${s}: expected a non-negative integer`);
      return n;
    };
    if (k === '--ops') a.ops = int(need());
    else if (k === '--seed') a.seed = int(need());
    else if (k === '--max-len') a.maxLen = Math.max(1, int(need()));
    else if (k === '--path') a.path = need();
    else if (k === '--geometry') {
      const g = need();
      if (!(GEOMETRY_NAMES as readonly string[]).includes(g)) throw new Error(`--geometry ${g}: expected one of ${GEOMETRY_NAMES.join(', ')}`);
      a.geometry = g as GeometryName;
    } else if (k === '--help' || k === '-h') {
      console.log('usage: node dist/soak.mjs [--ops N] [--seed S] [--geometry G] [--max-len L] [--path P]');
      process.exit(0);
    } else throw new Error(`unknown option ${k}`);
  }
  return a;
}

function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

function report(g: GeometryName, seed: number, d: fc.RunDetails<[Op[]]>, maxLen: number): void {
  const ops = failingPrefix(d.counterexample?.[0] ?? [], d.errorInstance);
  const err = d.errorInstance instanceof Error ? d.errorInstance.message : String(d.errorInstance);
  console.error(`\nFAILED on ${g}`);
  console.error(`  seed ${seed}, path "${d.counterexamplePath}" (after ${d.numRuns} sequences, shrunk ${d.numShrinks} times)`);
  console.error(`  replay: npm run soak -- --geometry ${g} --seed ${seed} --max-len ${maxLen} --path "${d.counterexamplePath}"`);
  console.error(`  ${err}`);
  console.error(`  shrunk operations (${ops.length}):`);
  console.error(formatOps(ops).replace(/^/gm, '    '));
}

function main(): void {
  let a: Args;
  try {
    a = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`soak: ${(e as Error).message}`);
    process.exit(2);
  }
  const configs = a.geometry ? [a.geometry] : GEOMETRY_NAMES;
  if (a.path !== null) {
    if (!a.geometry) {
      console.error('soak: --path needs --geometry and --seed');
      process.exit(2);
    }
    const d = fc.check(
      fc.property(opsArb(a.maxLen), (ops) => {
        runOps(a.geometry!, ops);
      }),
      { seed: a.seed, path: a.path, numRuns: 1 },
    );
    if (d.failed) {
      report(a.geometry, a.seed, d, a.maxLen);
      process.exit(1);
    }
    console.log('replayed: no failure');
    return;
  }
  console.log(`soak: ${fmt(a.ops)} operations over ${configs.length} configuration(s), seed ${a.seed}, sequences of up to ${a.maxLen}`);
  const t0 = performance.now();
  let done = 0;
  let sequences = 0;
  let lastPrint = t0;
  const perConfig = new Map<string, number>();
  const total = emptyStats();
  // Round-robin over the configurations in chunks, so that every one gets its share early.
  const chunkRuns = 20;
  for (let round = 0; done < a.ops; round++) {
    for (let ci = 0; ci < configs.length && done < a.ops; ci++) {
      const g = configs[ci]!;
      const seed = (a.seed + round * 7919 + ci * 104729) % 2 ** 31;
      const d = fc.check(
        fc.property(opsArb(a.maxLen), (ops) => {
          const st = runOps(g, ops);
          addStats(total, st);
          done += st.ops;
          sequences++;
          perConfig.set(g, (perConfig.get(g) ?? 0) + st.ops);
        }),
        { seed, numRuns: chunkRuns },
      );
      if (d.failed) {
        report(g, seed, d, a.maxLen);
        process.exit(1);
      }
      const now = performance.now();
      if (now - lastPrint > 5000) {
        lastPrint = now;
        const rate = done / ((now - t0) / 1000);
        console.log(`soak: ${fmt(done)} / ${fmt(a.ops)} operations, ${fmt(sequences)} sequences, ${rate.toFixed(0)} ops/s, ${((now - t0) / 1000).toFixed(0)} s (at ${g})`);
      }
    }
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(`soak: ${fmt(done)} operations, ${fmt(sequences)} sequences, no failure, ${secs.toFixed(1)} s`);
  for (const g of configs) console.log(`  ${g.padEnd(16)} ${fmt(perConfig.get(g) ?? 0)} operations`);
  const list = (r: Record<string, number>): string =>
    Object.entries(r)
      .sort((x, y) => y[1] - x[1])
      .map(([k, v]) => `${k} ${fmt(v)}`)
      .join(', ');
  console.log(`operations applied: ${list(total.applied)}; skipped (nothing to act on) ${fmt(total.skipped)}`);
  console.log(`mechanisms exercised: ${list(total.events)}`);
}

main();
