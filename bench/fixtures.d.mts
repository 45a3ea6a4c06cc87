// Types of bench/fixtures.mjs, for test/bench/fixtures.test.ts.
import type { GeometryName, Machine, MmStruct, MmWalkOps, VmAreaStruct } from '../src/index';

export declare const BENCH_GEOMETRIES: GeometryName[];
export declare const FIRST_PFN: number;
export declare function defaultStart(geometry: GeometryName): number;
export declare function pageSizeOf(geometry: GeometryName): number;
export declare function tablesSpanned(geometry: GeometryName, start: number, end: number): number;
export declare function benchMachine(geometry: GeometryName, start: number, end: number, extraBytes?: number): Machine;
export declare function pteEncoder(m: Machine, prot: bigint, firstPfn: number, lastPfn: number): { protLo: number; protHi: number };
export declare function mapPtes(
  mm: MmStruct,
  addr: number,
  pages: number,
  opts?: { pfn?: number; prot?: bigint; progress?: (done: number, total: number) => void },
): void;

export interface Space {
  m: Machine;
  mm: MmStruct;
  vma: VmAreaStruct;
  start: number;
  end: number;
  /** Present base pages a walk of [start, end) meets. */
  present: number;
  /** pte slots a walk of [start, end) meets (pte_entry calls). */
  pteSlots: number;
  pteTables: number;
}
export declare function denseSpace(
  geometry: GeometryName,
  pages: number,
  start?: number,
  opts?: { machine?: Machine; progress?: (done: number, total: number) => void },
): Space;
export declare function sparseSpace(
  geometry: GeometryName,
  regions: number,
  opts?: { layout?: 'per-pmd' | 'random'; every?: number; fraction?: number; seed?: number; start?: number },
): Space & { pmdHoles: number };
export declare function mixedSpace(
  geometry: GeometryName,
  opts?: { pteTables?: number; pmdBlocks?: number; pudBlocks?: number; start?: number },
): Space & { pmdLeaves: number; pudLeaves: number };

export interface Counts {
  ptes: number;
  present: number;
  holes: number;
  /** pmd_entry / pud_entry calls (with `leaves`). */
  pmds: number;
  puds: number;
  pmdLeaves: number;
  pudLeaves: number;
}
export declare function newCounts(): Counts;
export declare function countingOps(counts: Counts, opts?: { leaves?: boolean; holes?: boolean }): MmWalkOps<unknown>;
