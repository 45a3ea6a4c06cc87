/**
 * Invariant checkers shared by the mm tests and the differential property tests (test/prop). No
 * vitest import: the soak (bench/soak.ts) bundles this file with esbuild and runs it under plain
 * Node, so a broken rule is reported by throwing an InvariantError that names it.
 *
 * The rules come from the kernel's own accounting, not from the code under test:
 *  - include/linux/mm.h, mm/rmap.c (6.18): every pte mapping of a page adds one to that page's
 *    mapcount and one to its folio's refcount; every pmd/pud mapping of a folio adds one to its
 *    entire mapcount and one to its refcount; the page cache holds one reference per folio it
 *    indexes, the swap cache one (PG_swapcache). Special ptes (pfn maps, the zero page) count
 *    nothing, and the zero page keeps the single reference the kernel image holds.
 *  - A page-table page is reachable from exactly one root (x86-64: the user half of the pgd — the
 *    kernel half is init_mm's, copied by pgd_ctor; ARM64: the whole TTBR0 table).
 */
import {
  levelShift,
  lookupEntry,
  lowestAlias,
  tableEntries,
  PG_swapcache,
  type AddressSpace,
  type LevelName,
  type Machine,
  type MmStruct,
} from '../../src/index';

/** 4 KiB frames: the allocator and the frame metadata count in these. */
export const FRAME = 4096;

/** A broken invariant; `rule` names which one. */
export class InvariantError extends Error {
  constructor(
    readonly rule: string,
    detail: string,
  ) {
    super(`[${rule}] ${detail}`);
    this.name = 'InvariantError';
  }
}

/** Throw an InvariantError for `rule` unless actual === expected; `what` may be a function, called only on failure. */
export function expectEqual<T>(rule: string, what: string | (() => string), actual: T, expected: T): void {
  if (actual !== expected) throw new InvariantError(rule, `${typeof what === 'function' ? what() : what}: expected ${String(expected)}, got ${String(actual)}`);
}

/** Frames (4 KiB) per page of this machine. */
export function framesPerPage(m: Machine): number {
  return m.geo.PAGE_SIZE / FRAME;
}

/**
 * The balance rule (see the file comment): walk every mapping of `mms` and compare with each
 * folio's mapcount, entire mapcount and refcount. `files` are the page caches whose folios hold a
 * cache reference; `extra` are references the caller itself holds (a driver's pages).
 */
export function checkBalance(
  m: Machine,
  mms: readonly MmStruct[],
  files: readonly AddressSpace[] = [],
  extra: ReadonlyMap<number, number> = new Map(),
): void {
  const pt = m.pgtable;
  const ps = m.geo.PAGE_SIZE;
  const ptes = new Map<number, number>(); // page pa -> pte mappings
  const entire = new Map<number, number>(); // folio head -> pmd/pud mappings
  const inRam = (pa: number): boolean => pa >= m.mem.physBase && pa + ps <= m.mem.physBase + m.mem.size;
  for (const mm of mms) {
    for (const vma of mm.vmaList) {
      let a = vma.vmStart;
      while (a < vma.vmEnd) {
        const r = lookupEntry(mm, a);
        if (r.level === 'none') {
          a += ps;
          continue;
        }
        const l = pt.lo(r.ptr);
        const h = pt.hi(r.ptr);
        if (r.level === 'pte') {
          if (m.bits.ptePresent(l, h) && !m.bits.pteSpecial(l, h)) {
            const pa = m.bits.leafPfn('pte', l, h) * ps;
            if (inRam(pa) && pa !== m.zeroPagePa) ptes.set(pa, (ptes.get(pa) ?? 0) + 1);
          }
          a += ps;
          continue;
        }
        const size = r.level === 'pmd' ? pt.PMD_SIZE : pt.PUD_SIZE;
        const present = r.level === 'pmd' ? pt.pmdPresent(l, h) : pt.pudPresent(l, h);
        if (present && !m.bits.pteSpecial(l, h)) {
          const pa = m.bits.leafPfn(r.level, l, h) * ps;
          if (inRam(pa) && pa !== m.hugeZeroFolio) entire.set(pa, (entire.get(pa) ?? 0) + 1);
        }
        a = Math.floor(a / size) * size + size;
      }
    }
  }
  const cache = new Set<number>();
  for (const f of files) for (const folio of f.pages.values()) cache.add(folio);
  const folios = new Set<number>([...cache, ...entire.keys(), ...extra.keys()]);
  for (const pa of ptes.keys()) folios.add(m.meta.headOf(pa));
  for (const folio of folios) {
    const pages = (2 ** m.meta.compoundOrder(folio) * FRAME) / ps;
    const e = entire.get(folio) ?? 0;
    let maps = e;
    for (let k = 0; k < pages; k++) {
      const page = folio + k * ps;
      const n = ptes.get(page) ?? 0;
      expectEqual('balance', () => `mapcount of page 0x${page.toString(16)}`, m.meta.getMapcount(page), n);
      maps += n;
    }
    expectEqual('balance', () => `entire mapcount of folio 0x${folio.toString(16)}`, m.meta.entireMapcount[m.meta.frameIndex(folio)], e);
    const want = maps + (cache.has(folio) ? 1 : 0) + (m.meta.testFlag(folio, PG_swapcache) ? 1 : 0) + (extra.get(folio) ?? 0);
    expectEqual('balance', () => `refcount of folio 0x${folio.toString(16)}`, m.meta.getRefcount(folio), want);
  }
  // The zero page is never counted: its one reference is the kernel image's.
  expectEqual('balance', 'refcount of the zero page', m.meta.getRefcount(m.zeroPagePa), 1);
}

/**
 * Page-table pages reachable from mm's root (the root included): the user half of the pgd on
 * x86-64, all of TTBR0's table on ARM64. Each is one granule (PAGE_SIZE) of frames. Leaves and
 * non-present entries above the pte level are not followed.
 */
export function countUserTables(mm: MmStruct): number {
  const m = mm.machine;
  const g = m.geo;
  const pt = m.pgtable;
  const levels = g.physicalLevels;
  const none = (level: LevelName, lo: number, hi: number): boolean => {
    switch (level) {
      case 'pgd':
        return pt.pgdNone(lo, hi);
      case 'p4d':
        return pt.p4dNone(lo, hi);
      case 'pud':
        return pt.pudNone(lo, hi);
      case 'pmd':
        return pt.pmdNone(lo, hi);
      default:
        return pt.pteNone(lo, hi);
    }
  };
  const notTable = (level: LevelName, lo: number, hi: number): boolean => {
    if (level === 'pmd') return pt.pmdLeaf(lo, hi) || !pt.pmdPresent(lo, hi);
    if (level === 'pud') return pt.pudLeaf(lo, hi) || !pt.pudPresent(lo, hi);
    return false;
  };
  const descend = (table: number, depth: number, entries: number): number => {
    let n = 1;
    if (depth === levels.length - 1) return n;
    const real = lowestAlias(g, levels[depth]!);
    const u32 = pt.u32;
    const base = pt.index32(table);
    for (let i = 0; i < entries; i++) {
      const lo = u32[base + 2 * i]!;
      const hi = u32[base + 2 * i + 1]!;
      if (lo === 0 && hi === 0) continue; // none on every architecture; most entries are
      if (none(real, lo, hi) || notTable(real, lo, hi)) continue;
      const next = levels[depth + 1]!;
      n += descend(m.bits.tableAddr(lo, hi), depth + 1, tableEntries(g, next));
    }
    return n;
  };
  const top = tableEntries(g, levels[0]!);
  return descend(mm.pgd, 0, g.rootHalves === 'both' ? top / 2 : top);
}

/**
 * The same count, found along the paths to `addrs` only: enough when every user address a table
 * was ever allocated for is among them (a table sits on the path of each address it covers), and
 * far cheaper than scanning every entry of 8192-entry tables.
 */
export function countUserTablesAlong(mm: MmStruct, addrs: Iterable<number>): number {
  const m = mm.machine;
  const g = m.geo;
  const pt = m.pgtable;
  const levels = g.physicalLevels;
  const shifts = levels.map((l) => 2 ** levelShift(g, lowestAlias(g, l)));
  const sizes = levels.map((l) => tableEntries(g, l));
  const tables = new Set<number>([mm.pgd]);
  for (const addr of addrs) {
    let table = mm.pgd;
    for (let d = 0; d < levels.length - 1; d++) {
      const ptr = table + (Math.floor(addr / shifts[d]!) % sizes[d]!) * 8;
      const lo = pt.lo(ptr);
      const hi = pt.hi(ptr);
      const real = lowestAlias(g, levels[d]!);
      if (lo === 0 && hi === 0) break;
      if (real === 'pmd' && (pt.pmdNone(lo, hi) || pt.pmdLeaf(lo, hi) || !pt.pmdPresent(lo, hi))) break;
      if (real === 'pud' && (pt.pudNone(lo, hi) || pt.pudLeaf(lo, hi) || !pt.pudPresent(lo, hi))) break;
      if (real === 'p4d' && pt.p4dNone(lo, hi)) break;
      if (real === 'pgd' && pt.pgdNone(lo, hi)) break;
      table = m.bits.tableAddr(lo, hi);
      tables.add(table);
    }
  }
  return tables.size;
}
