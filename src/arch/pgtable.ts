/**
 * The <asm/pgtable.h> surface bound to one memory: pointer arithmetic (p?d_offset), boundaries
 * (p?d_addr_end), indices, and the predicates with Linux's folding applied.
 *
 * Pointers are entry physical addresses (numbers): `pmd_t *pmd` is the address of that pmd.
 *
 * Folding follows include/asm-generic/pgtable-nop4d.h, -nopud.h and -nopmd.h: when level L is
 * folded, its parent's none/bad/present tests are trivial (0/0/1) and L's offset function returns
 * the parent's pointer, so the one physical entry is tested for real by its lowest alias. The choice
 * between the real and the trivial test is made here, once, so per-entry code never asks "is this
 * level folded?".
 */
import type { PhysMem } from '../mem/physmem';
import { PhysAddrError } from '../mem/errors';
import type { Geometry, LevelName } from './geometry';
import { levelShift, physicalOf, tableEntries } from './geometry';
import type { ArchBits, Hi, Lo } from './types';

export type EntryTest = (lo: Lo, hi: Hi) => boolean;

const never: EntryTest = () => false;
const always: EntryTest = () => true;

/** A table entry pointed outside memory: the descriptor is named with where it was found. */
export class BadTablePointerError extends PhysAddrError {
  constructor(pa: number, mem: PhysMem, from: number) {
    super(pa, 8, mem.physBase, mem.size);
    this.message = `table entry at 0x${from.toString(16)} points to 0x${pa.toString(16)}, outside memory [0x${mem.physBase.toString(16)}, 0x${mem.physEnd.toString(16)})`;
    this.name = 'BadTablePointerError';
  }
}

export class Pgtable {
  readonly geo: Geometry;
  readonly PAGE_SIZE: number;
  readonly PGDIR_SIZE: number;
  readonly P4D_SIZE: number;
  readonly PUD_SIZE: number;
  readonly PMD_SIZE: number;
  readonly u32: Uint32Array;
  readonly physBase: number;

  // Folding-aware tests, chosen once. A level whose child is folded has trivial tests.
  readonly pgdNone: EntryTest;
  readonly pgdBad: EntryTest;
  readonly pgdPresent: EntryTest;
  readonly p4dNone: EntryTest;
  readonly p4dBad: EntryTest;
  readonly p4dPresent: EntryTest;
  readonly pudNone: EntryTest;
  readonly pudBad: EntryTest;
  readonly pudPresent: EntryTest;
  readonly pudLeaf: EntryTest;
  readonly pmdNone: EntryTest;
  readonly pmdBad: EntryTest;
  readonly pmdPresent: EntryTest;
  readonly pmdLeaf: EntryTest;
  readonly pmdTransHuge: EntryTest;
  readonly pteNone: EntryTest;
  readonly ptePresent: EntryTest;

  private readonly p4dFolded: boolean;
  private readonly pudFolded: boolean;
  private readonly pmdFolded: boolean;

  constructor(
    readonly mem: PhysMem,
    readonly bits: ArchBits,
  ) {
    const g = bits.geometry;
    this.geo = g;
    this.PAGE_SIZE = g.PAGE_SIZE;
    this.PGDIR_SIZE = g.PGDIR_SIZE;
    this.P4D_SIZE = g.P4D_SIZE;
    this.PUD_SIZE = g.PUD_SIZE;
    this.PMD_SIZE = g.PMD_SIZE;
    this.u32 = mem.u32;
    this.physBase = mem.physBase;
    this.p4dFolded = g.folded.includes('p4d');
    this.pudFolded = g.folded.includes('pud');
    this.pmdFolded = g.folded.includes('pmd');
    const b = bits;
    // pgtable-nop4d.h: pgd_none() 0, pgd_bad() 0, pgd_present() 1.
    this.pgdNone = this.p4dFolded ? never : (lo, hi) => b.pgdNone(lo, hi);
    this.pgdBad = this.p4dFolded ? never : (lo, hi) => b.pgdBad(lo, hi);
    this.pgdPresent = this.p4dFolded ? always : (lo, hi) => b.pgdPresent(lo, hi);
    // pgtable-nopud.h: p4d_none() 0, p4d_bad() 0, p4d_present() 1.
    this.p4dNone = this.pudFolded ? never : (lo, hi) => b.p4dNone(lo, hi);
    this.p4dBad = this.pudFolded ? never : (lo, hi) => b.p4dBad(lo, hi);
    this.p4dPresent = this.pudFolded ? always : (lo, hi) => b.p4dPresent(lo, hi);
    // pgtable-nopmd.h: pud_none() 0, pud_bad() 0, pud_present() 1; pud_leaf() falls back to 0.
    this.pudNone = this.pmdFolded ? never : (lo, hi) => b.pudNone(lo, hi);
    this.pudBad = this.pmdFolded ? never : (lo, hi) => b.pudBad(lo, hi);
    this.pudPresent = this.pmdFolded ? always : (lo, hi) => b.pudPresent(lo, hi);
    this.pudLeaf = this.pmdFolded || !g.pudLeaf ? never : (lo, hi) => b.pudLeaf(lo, hi);
    this.pmdNone = (lo, hi) => b.pmdNone(lo, hi);
    this.pmdBad = (lo, hi) => b.pmdBad(lo, hi);
    this.pmdPresent = (lo, hi) => b.pmdPresent(lo, hi);
    this.pmdLeaf = (lo, hi) => b.pmdLeaf(lo, hi);
    this.pmdTransHuge = (lo, hi) => b.pmdTransHuge(lo, hi);
    this.pteNone = (lo, hi) => b.pteNone(lo, hi);
    this.ptePresent = (lo, hi) => b.ptePresent(lo, hi);
  }

  // ---- entry access ----------------------------------------------------------------------------

  /** Low half of the entry at ptr (bounds-checked). */
  lo(ptr: number): number {
    return this.u32[this.index32(ptr)]!;
  }

  /** High half of the entry at ptr (bounds-checked). */
  hi(ptr: number): number {
    return this.u32[this.index32(ptr) + 1]!;
  }

  val(ptr: number): bigint {
    return this.mem.read64(ptr);
  }

  set(ptr: number, value: bigint): void {
    this.mem.write64(ptr, value);
  }

  clear(ptr: number): void {
    const i = this.index32(ptr);
    this.u32[i] = 0;
    this.u32[i + 1] = 0;
  }

  /** p?d_none_or_clear_bad: true for a none entry, and for a bad one, which is cleared first. */
  noneOrClearBad(ptr: number, none: (lo: number, hi: number) => boolean, bad: (lo: number, hi: number) => boolean): boolean {
    const lo = this.lo(ptr);
    const hi = this.hi(ptr);
    if (none(lo, hi)) return true;
    if (!bad(lo, hi)) return false;
    this.clear(ptr);
    return true;
  }

  /** u32 index of the entry at ptr; throws PhysAddrError outside memory. */
  index32(ptr: number): number {
    const off = ptr - this.physBase;
    if (!(off >= 0 && off + 8 <= this.mem.size) || off % 8 !== 0) {
      throw new PhysAddrError(ptr, 8, this.physBase, this.mem.size);
    }
    return off / 4;
  }

  // ---- indices (addr is an exact integer below 2^64; no 32-bit operators) ---------------------

  pgdIndex(addr: number): number {
    return Math.floor(addr / this.PGDIR_SIZE) % this.geo.PTRS_PER_PGD;
  }
  p4dIndex(addr: number): number {
    return Math.floor(addr / this.P4D_SIZE) % this.geo.PTRS_PER_P4D;
  }
  pudIndex(addr: number): number {
    return Math.floor(addr / this.PUD_SIZE) % this.geo.PTRS_PER_PUD;
  }
  pmdIndex(addr: number): number {
    return Math.floor(addr / this.PMD_SIZE) % this.geo.PTRS_PER_PMD;
  }
  pteIndex(addr: number): number {
    return Math.floor(addr / this.PAGE_SIZE) % this.geo.PTRS_PER_PTE;
  }

  // ---- offsets: pointer of the entry for addr at the next level ---------------------------------

  /** pgd_offset_pgd(pgd, addr): root table base + index. */
  pgdOffset(pgdBase: number, addr: number): number {
    return pgdBase + this.pgdIndex(addr) * 8;
  }

  p4dOffset(pgd: number, addr: number): number {
    if (this.p4dFolded) return pgd;
    return this.nextTable(pgd) + this.p4dIndex(addr) * 8;
  }

  pudOffset(p4d: number, addr: number): number {
    if (this.pudFolded) return p4d;
    return this.nextTable(p4d) + this.pudIndex(addr) * 8;
  }

  pmdOffset(pud: number, addr: number): number {
    if (this.pmdFolded) return pud;
    return this.nextTable(pud) + this.pmdIndex(addr) * 8;
  }

  pteOffsetKernel(pmd: number, addr: number): number {
    return this.nextTable(pmd) + this.pteIndex(addr) * 8;
  }

  /**
   * The table an entry points to, checked to lie inside memory: descriptors come from images, so
   * a wild pointer is reported with the entry that held it, never read as undefined.
   */
  nextTable(ptr: number): number {
    const i = this.index32(ptr);
    const table = this.bits.tableAddr(this.u32[i]!, this.u32[i + 1]!);
    if (table < this.physBase || table + this.PAGE_SIZE > this.mem.physEnd) {
      throw new BadTablePointerError(table, this.mem, ptr);
    }
    return table;
  }

  // ---- boundaries: p?d_addr_end --------------------------------------------------------------
  // Linux: boundary = (addr + SIZE) & MASK; return (boundary - 1 < end - 1) ? boundary : end.
  // With exact integers (end may be 2^64) and page-aligned operands this is boundary < end.

  pgdAddrEnd(addr: number, end: number): number {
    const b = (Math.floor(addr / this.PGDIR_SIZE) + 1) * this.PGDIR_SIZE;
    return b < end ? b : end;
  }
  p4dAddrEnd(addr: number, end: number): number {
    if (this.p4dFolded) return end;
    const b = (Math.floor(addr / this.P4D_SIZE) + 1) * this.P4D_SIZE;
    return b < end ? b : end;
  }
  pudAddrEnd(addr: number, end: number): number {
    if (this.pudFolded) return end;
    const b = (Math.floor(addr / this.PUD_SIZE) + 1) * this.PUD_SIZE;
    return b < end ? b : end;
  }
  pmdAddrEnd(addr: number, end: number): number {
    if (this.pmdFolded) return end;
    const b = (Math.floor(addr / this.PMD_SIZE) + 1) * this.PMD_SIZE;
    return b < end ? b : end;
  }

  /** Whether a logical level is folded into its parent. */
  isFolded(level: LevelName): boolean {
    return this.geo.folded.includes(level);
  }

  /** Bytes of one table of a physical level (the top table may be smaller than a granule). */
  tableBytes(physical: LevelName): number {
    return tableEntries(this.geo, physical) * 8;
  }

  /** Span in bytes of one entry of a logical level. */
  span(level: LevelName): number {
    return 2 ** levelShift(this.geo, level);
  }

  /** The physical level holding a logical level's entries. */
  physicalOf(level: LevelName): LevelName {
    return physicalOf(this.geo, level);
  }
}
