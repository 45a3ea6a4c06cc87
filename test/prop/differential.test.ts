/**
 * Differential property tests (issue 8): random sequences of mmap, munmap, mprotect, fork, exit,
 * CPU accesses and faults, access_remote_vm, zaps, unmap_mapping_range, driver mappings
 * (vm_insert_page, vmf_insert_pfn, remap_pfn_range), swap-out/in and migration, on every
 * architecture configuration, against the reference model of test/prop/model.ts — written from
 * the documented semantics of mmap(2), fork(2), madvise(2) MADV_DONTNEED, ptrace(2) and the
 * kernel-doc of mm/memory.c and mm/gup.c. After every step test/prop/ops.ts checks, each as a named
 * rule: the CPU's debug walk against the model (content by tag, zero page, pfn, write and execute
 * rights), the TLB against the tables after the kernel's flushes, walk_page_range's present pages
 * and swap entries, refcount/mapcount balance, rss counters, frames in use (no leak, no double
 * free), swap slots and page-cache contents; at the end every process exits and the allocator is
 * back where it was after boot.
 *
 * Each configuration runs at least 10,000 operations from a fixed seed (deterministic). A failure
 * names the configuration, the seed and fast-check path, the shrunk operation list and the broken
 * rule, and the command that replays it under the soak (npm run soak, bench/soak.ts).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GEOMETRY_NAMES, type GeometryName } from '../../src/index';
import { addStats, emptyStats, failingPrefix, formatOps, opsArb, runOps, type Op, type RunStats } from './ops';

/** The fixed seed of the first configuration's run; the others use the next ones (the soak draws its own). */
const SEED = 0x8a11;
const MAX_LEN = 150;
/** Sequences per configuration: with these seeds every configuration gets more than MIN_OPS operations. */
const RUNS = 180;
const MIN_OPS = 10_000;

/** Mechanisms every configuration must have exercised (fault-around needs more than one page in 64 KiB). */
function expectedEvents(g: GeometryName): string[] {
  const e = [
    'swap-out',
    'swap-out of a shared page',
    'swap-in',
    'swap-in from the swap cache',
    'COW of the zero page',
    'COW of a page-cache page',
    'COW of a shared anonymous page',
    'SIGBUS past EOF',
  ];
  if (!g.includes('64k')) e.push('fault-around');
  return e;
}

const OPS_APPLIED = ['mmap', 'mmap+populate', 'munmap', 'mprotect', 'fork', 'exit', 'cpu:read', 'cpu:write', 'cpu:exec', 'fault', 'remote:read', 'remote:write', 'zap:range', 'zap:single', 'zap:vma', 'zap:ptes', 'unmapMapping', 'device', 'insertPage', 'insertPfn', 'remap', 'swapout', 'migrate'];

function runConfig(g: GeometryName, seed: number): RunStats {
  const total = emptyStats();
  const d = fc.check(
    fc.property(opsArb(MAX_LEN), (ops: Op[]) => {
      addStats(total, runOps(g, ops));
    }),
    { seed, numRuns: RUNS },
  );
  if (d.failed) {
    const ops = failingPrefix(d.counterexample?.[0] ?? [], d.errorInstance);
    const err = d.errorInstance instanceof Error ? d.errorInstance.message : String(d.errorInstance);
    throw new Error(
      [
        `${g}: ${err}`,
        `seed ${seed}, path "${d.counterexamplePath}"; replay: npm run soak -- --geometry ${g} --seed ${seed} --max-len ${MAX_LEN} --path "${d.counterexamplePath}"`,
        `shrunk operations (${ops.length}):`,
        formatOps(ops),
      ].join('\n'),
    );
  }
  return total;
}

describe('differential property test: the mm model against a reference model (man mmap/fork/madvise, mm/memory.c kernel-doc)', () => {
  GEOMETRY_NAMES.forEach((g, i) => {
    it(`${g}: ≥ ${MIN_OPS.toLocaleString('en-US')} random operations agree with the model after every step`, () => {
      const st = runConfig(g, SEED + i);
      expect(st.ops).toBeGreaterThanOrEqual(MIN_OPS);
      // The sequences must have reached every operation and mechanism, or the test proves little.
      for (const k of OPS_APPLIED) expect(st.applied[k] ?? 0, `operation ${k} applied`).toBeGreaterThan(0);
      for (const e of expectedEvents(g)) expect(st.events[e] ?? 0, `mechanism "${e}" exercised`).toBeGreaterThan(0);
      if (process.env.PROP_STATS) console.log(g, st.ops, JSON.stringify(st.events));
    });
  });
});
