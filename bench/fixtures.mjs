// Address spaces for benchmarks, built through the public API (dist/index.js).
//
// Every builder maps what its comment says and returns the numbers a walk of [start, end) must
// find (test/bench/fixtures.test.ts checks them by hand at small sizes), so a benchmark can verify
// it walked what it claims.
//
// The ptes are written by a fast path: the pte for frame p is `prot | p * PAGE_SIZE`, with prot the
// bits pfnPte gives for frame 0, stored as two 32-bit halves — no BigInt per pte, so 256M ptes
// (1 TiB of 4K pages) build in seconds. pteEncoder checks, against the BigInt pfnPte, that the
// encoding holds for the frames a builder is about to write. Table pages come from entryAlloc
// (once per pte table), blocks from pfnHuge + setPmdAt / setPudAt (once per block).
import { ACTION_CONTINUE, Machine, VM_READ, VM_WRITE, entryAlloc, geometry as geometryOf, setPmdAt, setPudAt } from '../dist/index.js';

/** The five configurations the suites cover: x86-64 4/5-level, ARM64 4K/48, 16K/47, 64K/42. */
export const BENCH_GEOMETRIES = ['x86_64-4level', 'x86_64-5level', 'arm64-4k-48', 'arm64-16k-47', 'arm64-64k-42'];

/** First frame the fixtures' ptes map: frames above any memory the fixtures allocate (4 GiB at 4K). */
export const FIRST_PFN = 0x10_0000;

const DEFAULT_START = 0x7f00_0000_0000;
const TWO32 = 2 ** 32;

/**
 * Where a fixture maps by default: 0x7f0000000000 (the top of a 47-bit user space), or 1 TiB where
 * the user space is smaller (ARM64 64K/42: TASK_SIZE = 4 TiB).
 */
export function defaultStart(geometry) {
  return geometryOf(geometry).TASK_SIZE > DEFAULT_START ? DEFAULT_START : 2 ** 40;
}

export function pageSizeOf(geometry) {
  return geometryOf(geometry).PAGE_SIZE;
}

/** Bytes one entry of a physical level maps (PGDIR_SIZE … PAGE_SIZE; folded levels share their parent's). */
function entrySpan(g, level) {
  return { pgd: g.PGDIR_SIZE, p4d: g.P4D_SIZE, pud: g.PUD_SIZE, pmd: g.PMD_SIZE, pte: g.PAGE_SIZE }[level];
}

/**
 * Upper bound on the page-table pages an mm needs to map anything in [start, end): below the root,
 * one table per entry of the level above that the range touches.
 */
export function tablesSpanned(geometry, start, end) {
  const g = typeof geometry === 'string' ? geometryOf(geometry) : geometry;
  const levels = g.physicalLevels;
  let n = 1; // the root
  for (let i = 1; i < levels.length; i++) {
    const span = entrySpan(g, levels[i - 1]);
    n += Math.ceil(end / span) - Math.floor(start / span);
  }
  return n;
}

/**
 * A Machine whose memory holds the tables for [start, end) (tablesSpanned) plus 16 MiB for the
 * boot allocations (init_mm, the zero page) and slack; `extraBytes` for frames a benchmark
 * allocates itself (faulted pages). Memory pages nobody touches are never committed.
 */
export function benchMachine(geometry, start, end, extraBytes = 0) {
  const g = geometryOf(geometry);
  const bytes = tablesSpanned(g, start, end) * g.PAGE_SIZE + 16 * 2 ** 20 + extraBytes;
  return new Machine({ geometry, memSize: Math.ceil(bytes / 2 ** 21) * 2 ** 21 });
}

/** A new mm with one read/write VMA over [start, end). */
function benchMm(m, start, end) {
  if (end > m.TASK_SIZE) {
    throw new RangeError(`fixture range [0x${start.toString(16)}, 0x${end.toString(16)}) passes TASK_SIZE 0x${m.TASK_SIZE.toString(16)} of ${m.geo.name}`);
  }
  const mm = m.newMm('bench');
  const vma = mm.insertVma({ start, end, flags: VM_READ | VM_WRITE });
  return { mm, vma };
}

function userProt(m) {
  return m.bits.pgprot({ write: true, user: true });
}

/**
 * The pte for frame p as two halves: lo = protLo | (p * PAGE_SIZE mod 2^32), hi = protHi | (p *
 * PAGE_SIZE / 2^32). Holds where the output address sits at its own bit positions in the entry
 * (x86-64; ARM64 without LPA/LPA2, output addresses below 2^48); checked for the frames
 * [firstPfn, lastPfn] against pfnPte before use.
 */
export function pteEncoder(m, prot, firstPfn, lastPfn) {
  const ps = m.geo.PAGE_SIZE;
  const zero = m.bits.pfnPte(0, prot);
  const protLo = Number(zero & 0xffff_ffffn);
  const protHi = Number(zero >> 32n);
  const probes = [firstPfn, lastPfn, Math.floor((firstPfn + lastPfn) / 2)];
  // A frame with every address bit up to lastPfn's set: catches an address bit landing on a prot bit.
  const allOnes = 2 ** Math.ceil(Math.log2(lastPfn + 1)) - 1;
  if (allOnes >= firstPfn && allOnes <= lastPfn) probes.push(allOnes);
  for (const p of probes) {
    const want = m.bits.pfnPte(p, prot);
    const pa = p * ps;
    const lo = (protLo | pa % TWO32) >>> 0;
    const hi = (protHi | Math.floor(pa / TWO32)) >>> 0;
    if (BigInt(hi) * 2n ** 32n + BigInt(lo) !== want) {
      throw new RangeError(`fast pte encoding does not hold on ${m.geo.name} for pfn 0x${p.toString(16)}: pfnPte gives 0x${want.toString(16)}`);
    }
  }
  return { protLo, protHi };
}

/**
 * Map `pages` base pages from `addr` to frames pfn, pfn + 1, … (contiguous), allocating tables
 * through entryAlloc once per pte table and writing the ptes as halves. `progress(done, total)`
 * is called once per pte table.
 */
export function mapPtes(mm, addr, pages, { pfn = FIRST_PFN, prot = userProt(mm.machine), progress } = {}) {
  const m = mm.machine;
  const ps = m.geo.PAGE_SIZE;
  const per = m.geo.PTRS_PER_PTE;
  const { protLo, protHi } = pteEncoder(m, prot, pfn, pfn + pages - 1);
  const u32 = m.mem.u32;
  const base = m.mem.physBase;
  let i = 0;
  while (i < pages) {
    const va = addr + i * ps;
    const ptep = entryAlloc(mm, va, 'pte');
    if (ptep < 0) throw new RangeError(`out of memory for page tables at 0x${va.toString(16)}`);
    const n = Math.min(per - (Math.floor(va / ps) % per), pages - i);
    const pa = (pfn + i) * ps;
    let paLo = pa % TWO32;
    let paHi = Math.floor(pa / TWO32);
    let k = (ptep - base) / 4;
    for (let j = 0; j < n; j++) {
      u32[k] = protLo | paLo;
      u32[k + 1] = protHi | paHi;
      k += 2;
      paLo += ps;
      if (paLo >= TWO32) {
        paLo -= TWO32;
        paHi++;
      }
    }
    i += n;
    if (progress) progress(i, pages);
  }
}

/**
 * A dense mapping: `pages` base pages mapped contiguously at `start` in one VMA, to frames
 * FIRST_PFN… Returns the machine, the mm, the VMA, [start, end) and what a walk must find.
 */
export function denseSpace(geometry, pages, start = defaultStart(geometry), opts = {}) {
  const ps = pageSizeOf(geometry);
  const end = start + pages * ps;
  const m = opts.machine ?? benchMachine(geometry, start, end);
  const { mm, vma } = benchMm(m, start, end);
  mapPtes(mm, start, pages, { progress: opts.progress });
  const per = m.geo.PTRS_PER_PTE;
  const pteTables = Math.ceil(end / ps / per) - Math.floor(start / ps / per);
  // A walk of [start, end) meets exactly `pages` pte slots, all present.
  return { m, mm, vma, start, end, present: pages, pteSlots: pages, pteTables };
}

/** xorshift32: a seeded, reproducible choice of pages. */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / TWO32;
  };
}

/**
 * A sparse mapping over `regions` PMD-sized regions from `start` (PMD-aligned), one VMA:
 *  - layout 'per-pmd': one page in every `every`-th region (page (r mod PTRS_PER_PTE) of region r),
 *    so each pte table reached holds one present pte and the regions between are pmd holes;
 *  - layout 'random': each page of every region present with probability `fraction` (seeded), so
 *    every pte table is reached (at these sizes) and its present ptes are scattered.
 * Frames are FIRST_PFN + the page's index from start. Returns the counts a walk must find:
 * present pages, pte slots in the tables reached, and pmd holes (regions without a table).
 */
export function sparseSpace(geometry, regions, { layout = 'per-pmd', every = 1, fraction = 0.05, seed = 1, start: s } = {}) {
  const g = geometryOf(geometry);
  const start = s ?? defaultStart(geometry);
  if (start % g.PMD_SIZE !== 0) throw new RangeError(`sparseSpace: start 0x${start.toString(16)} is not PMD-aligned`);
  const ps = g.PAGE_SIZE;
  const per = g.PTRS_PER_PTE;
  const end = start + regions * g.PMD_SIZE;
  const m = benchMachine(geometry, start, end);
  const { mm, vma } = benchMm(m, start, end);
  const prot = userProt(m);
  const { protLo, protHi } = pteEncoder(m, prot, FIRST_PFN, FIRST_PFN + regions * per - 1);
  const u32 = m.mem.u32;
  const base = m.mem.physBase;
  const write = (ptep, page) => {
    const pa = (FIRST_PFN + page) * ps;
    const k = (ptep - base) / 4;
    u32[k] = protLo | pa % TWO32;
    u32[k + 1] = protHi | Math.floor(pa / TWO32);
  };
  let present = 0;
  let tables = 0;
  if (layout === 'per-pmd') {
    for (let r = 0; r < regions; r += every) {
      const page = r * per + (r % per);
      const ptep = entryAlloc(mm, start + page * ps, 'pte');
      if (ptep < 0) throw new RangeError('out of memory for page tables');
      write(ptep, page);
      present++;
      tables++;
    }
  } else if (layout === 'random') {
    const next = rng(seed);
    for (let r = 0; r < regions; r++) {
      let table = -1;
      for (let j = 0; j < per; j++) {
        if (next() >= fraction) continue;
        const page = r * per + j;
        if (table < 0) {
          table = entryAlloc(mm, start + r * g.PMD_SIZE, 'pte');
          if (table < 0) throw new RangeError('out of memory for page tables');
          tables++;
        }
        write(table + j * 8, page);
        present++;
      }
    }
  } else {
    throw new RangeError(`sparseSpace: layout '${layout}': expected 'per-pmd' or 'random'`);
  }
  return { m, mm, vma, start, end, present, pteTables: tables, pteSlots: tables * per, pmdHoles: regions - tables };
}

/**
 * A mixed mapping from `start` (aligned to the largest block used), one VMA:
 *  - a PMD-level run of `pteTables + pmdBlocks` consecutive PMD-sized slots, alternating a full pte
 *    table (PTRS_PER_PTE base pages: 4K, 16K or 64K) and a PMD block (2M, 32M or 512M) while both
 *    last, then the rest of whichever kind remains;
 *  - then, from the next PUD boundary, `pudBlocks` PUD blocks (1G; only where the geometry makes
 *    PUD leaves — x86-64 and ARM64 4K; ARM64 16K/47 and 64K/42 have none: pass 0).
 * Blocks map frames aligned to their size from 2^40 up; base pages map FIRST_PFN… Returns what a
 * walk must find per kind of leaf.
 */
export function mixedSpace(geometry, { pteTables = 64, pmdBlocks = 64, pudBlocks = 0, start: s } = {}) {
  const g = geometryOf(geometry);
  if (pudBlocks > 0 && !g.pudLeaf) throw new RangeError(`mixedSpace: ${geometry} has no PUD leaves`);
  const start = s ?? defaultStart(geometry);
  const align = pudBlocks > 0 ? g.PUD_SIZE : g.PMD_SIZE;
  if (start % align !== 0) throw new RangeError(`mixedSpace: start 0x${start.toString(16)} is not aligned to 0x${align.toString(16)}`);
  const ps = g.PAGE_SIZE;
  const per = g.PTRS_PER_PTE;
  const slots = pteTables + pmdBlocks;
  const pmdEnd = start + slots * g.PMD_SIZE;
  const pudStart = Math.ceil(pmdEnd / g.PUD_SIZE) * g.PUD_SIZE;
  const end = pudBlocks > 0 ? pudStart + pudBlocks * g.PUD_SIZE : pmdEnd;
  const m = benchMachine(geometry, start, end);
  const { mm, vma } = benchMm(m, start, end);
  const prot = userProt(m);
  const blockBase = 2 ** 40; // output addresses of blocks: aligned to every block size used here
  let tables = 0;
  let blocks = 0;
  for (let slot = 0; slot < slots; slot++) {
    const addr = start + slot * g.PMD_SIZE;
    const tableTurn = tables < pteTables && (blocks >= pmdBlocks || slot % 2 === 0);
    if (tableTurn) {
      mapPtes(mm, addr, per, { pfn: FIRST_PFN + tables * per, prot });
      tables++;
    } else {
      const pmdp = entryAlloc(mm, addr, 'pmd');
      if (pmdp < 0) throw new RangeError('out of memory for page tables');
      setPmdAt(mm, addr, pmdp, m.bits.pfnHuge('pmd', (blockBase + blocks * g.PMD_SIZE) / ps, prot));
      blocks++;
    }
  }
  for (let i = 0; i < pudBlocks; i++) {
    const addr = pudStart + i * g.PUD_SIZE;
    const pudp = entryAlloc(mm, addr, 'pud');
    if (pudp < 0) throw new RangeError('out of memory for page tables');
    setPudAt(mm, addr, pudp, m.bits.pfnHuge('pud', (blockBase + 2 ** 39 + i * g.PUD_SIZE) / ps, prot));
  }
  return { m, mm, vma, start, end, present: pteTables * per, pteSlots: pteTables * per, pteTables, pmdLeaves: pmdBlocks, pudLeaves: pudBlocks };
}

/**
 * Walk callbacks that count: pteEntry reads each pte's low half (present ptes: bit 0, P on x86-64,
 * Valid on ARM64 — the fixtures write no PROT_NONE ptes); pmdEntry/pudEntry count leaves and stop
 * the walk descending into them (ACTION_CONTINUE: a VMA walk would otherwise split them, as
 * mm/pagewalk.c does for a pte_entry walker that meets a huge pmd) and count every call (pmds,
 * puds); pteHole counts holes.
 * `counts` is mutated in place; reset it between walks.
 */
export function countingOps(counts, { leaves = false, holes = false } = {}) {
  const ops = {
    pteEntry(pte, _addr, _next, walk) {
      const pt = walk.pt;
      counts.ptes++;
      counts.present += pt.u32[(pte - pt.physBase) / 4] & 1;
      return 0;
    },
  };
  if (holes) {
    ops.pteHole = () => {
      counts.holes++;
      return 0;
    };
  }
  if (leaves) {
    ops.pmdEntry = (pmd, _addr, _next, walk) => {
      const pt = walk.pt;
      counts.pmds++;
      if (pt.pmdLeaf(pt.lo(pmd), pt.hi(pmd))) {
        counts.pmdLeaves++;
        walk.action = ACTION_CONTINUE;
      }
      return 0;
    };
    ops.pudEntry = (pud, _addr, _next, walk) => {
      const pt = walk.pt;
      counts.puds++;
      if (pt.pudLeaf(pt.lo(pud), pt.hi(pud))) {
        counts.pudLeaves++;
        walk.action = ACTION_CONTINUE;
      }
      return 0;
    };
  }
  return ops;
}

export function newCounts() {
  return { ptes: 0, present: 0, holes: 0, pmds: 0, puds: 0, pmdLeaves: 0, pudLeaves: 0 };
}
