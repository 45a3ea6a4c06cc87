/**
 * A machine: physical memory, its frame allocator and metadata, one architecture configuration,
 * and init_mm (the kernel's address space). Everything in src/mm hangs off one Machine.
 */
import { createArchBits, geometry as geometryByName, type ArchOptions, type Geometry, type GeometryName } from '../arch/index';
import { Pgtable } from '../arch/pgtable';
import type { ArchBits } from '../arch/types';
import { FrameAllocator } from '../mem/frames';
import { FrameMeta, PG_pgtable, PG_reserved } from '../mem/framemeta';
import { FRAME_SIZE, PhysMem } from '../mem/physmem';
import type { FolioMapping } from './folio';
import { MmStruct } from './mm';

/** A TLB shootdown the mm layer issues (flush_tlb_range / flush_tlb_mm / flush_tlb_kernel_range). */
export interface TlbFlushEvent {
  readonly kind: 'range' | 'mm' | 'kernel_range' | 'all';
  /** The address space (null for kernel ranges and full flushes). */
  readonly mm: MmStruct | null;
  /** [start, end) of the range; for 'mm' and 'all' the whole space. */
  readonly start: number;
  readonly end: number;
  /** The ASID / PCID the mm runs with (mm.context.id), 0 for the kernel. */
  readonly asid: number;
  /** Largest page size the flushed range may hold (the stride of a ranged TLBI). */
  readonly stride: number;
  /** Only leaf entries changed (no table was freed): ARM64 may use the last-level TLBI forms. */
  readonly lastLevel?: boolean;
}

/** Transparent huge page policy (/sys/kernel/mm/transparent_hugepage/enabled and use_zero_page). */
export interface ThpSettings {
  enabled: 'always' | 'madvise' | 'never';
  useZeroPage: boolean;
}

export interface MachineOptions extends ArchOptions {
  readonly geometry: GeometryName | Geometry;
  /** Bytes of physical memory (default 256 MiB). */
  readonly memSize?: number;
  /** Physical address of the first byte (default 0 on x86-64, 0x40000000 on ARM64 as on QEMU virt). */
  readonly physBase?: number;
  /** Share an existing memory instead of creating one. */
  readonly mem?: PhysMem;
  /**
   * The memory already holds a system (a loaded image): every frame is reserved, since nothing
   * says which are free, and init_mm gets no table of its own (the loader points it at the image's).
   */
  readonly adoptMemory?: boolean;
}

export class Machine {
  readonly geo: Geometry;
  readonly mem: PhysMem;
  readonly frames: FrameAllocator;
  readonly meta: FrameMeta;
  readonly bits: ArchBits;
  readonly pgtable: Pgtable;
  /** init_mm: the kernel's address space (x86-64: its own pgd with both halves; ARM64: the TTBR1 table). */
  readonly initMm: MmStruct;
  /** TASK_SIZE: addresses at or above it are kernel addresses. */
  readonly TASK_SIZE: number;
  /** Frames per table of a non-top level (one granule). */
  readonly tableOrder: number;
  /**
   * Test seam for page-table allocation failure (-ENOMEM): the number of allocations through
   * allocPgtable that still succeed; null = unlimited.
   */
  pgtableAllocLimit: number | null = null;
  /**
   * Test seam on pte_offset_map(_lock) (src/mm/pte-map.ts): return true to make this map fail,
   * as when the pte table is freed under a lockless walk. pte_offset_kernel ignores it.
   */
  pteMapFault: ((pmd: number, addr: number) => boolean) | null = null;
  /** Observers of internal steps (splits, table allocations): informational, for traces. */
  onEvent: ((kind: string, detail: Record<string, unknown>) => void) | null = null;
  /** folio->mapping by folio head address (see folio.ts). */
  readonly folioMappings = new Map<number, FolioMapping>();
  /** The shared zero page (ZERO_PAGE / my_zero_pfn): PG_reserved, never freed; -1 on adopted images. */
  readonly zeroPagePa: number;
  /** The huge zero folio (PMD-sized), allocated on first use, freed when no mm holds it; -1 when absent. */
  hugeZeroFolio = -1;
  /** mm_structs holding a reference on the huge zero folio (MMF_HUGE_ZERO_PAGE). */
  hugeZeroUsers = 0;
  readonly thp: ThpSettings = { enabled: 'always', useZeroPage: true };
  /** Who listens to TLB shootdowns: CPU models register here (the TLB is in src/arch). */
  readonly tlbFlushListeners: Array<(ev: TlbFlushEvent) => void> = [];
  /** Shootdowns issued so far, for tests and statistics. */
  tlbFlushes = 0;
  /** The next ASID / PCID to hand to a new mm (0 is the kernel's). */
  private nextAsid = 1;

  constructor(opts: MachineOptions) {
    this.geo = typeof opts.geometry === 'string' ? geometryByName(opts.geometry) : opts.geometry;
    const physBase = opts.physBase ?? (this.geo.arch === 'arm64' ? 0x4000_0000 : 0);
    this.mem = opts.mem ?? new PhysMem({ size: opts.memSize ?? 256 * 2 ** 20, physBase });
    this.frames = new FrameAllocator(this.mem);
    this.meta = new FrameMeta(this.mem);
    this.bits = createArchBits(this.geo, opts);
    this.pgtable = new Pgtable(this.mem, this.bits);
    this.TASK_SIZE = this.geo.TASK_SIZE;
    this.tableOrder = Math.log2(this.geo.PAGE_SIZE / FRAME_SIZE);
    if (opts.adoptMemory) {
      this.frames.reserve(this.mem.physBase, this.mem.size);
      this.initMm = new MmStruct(this, this.mem.physBase, 'init_mm', 0);
      this.zeroPagePa = -1;
    } else {
      this.initMm = new MmStruct(this, this.allocTableFrames(), 'init_mm', 0);
      // The zero page is allocated once, at boot, as the kernel's empty_zero_page is part of its
      // image: a machine's free-frame count is then the same before and after any workload.
      this.zeroPagePa = this.frames.alloc(this.tableOrder);
      this.mem.zero(this.zeroPagePa, this.geo.PAGE_SIZE);
      this.meta.setFlag(this.zeroPagePa, PG_reserved);
      this.meta.setRefcount(this.zeroPagePa, 1);
    }
  }

  /** my_zero_pfn / zero_pfn: the zero page's pfn (PAGE_SIZE units). */
  zeroPfn(): number {
    if (this.zeroPagePa < 0) throw new RangeError('this machine has no zero page (an adopted image): anonymous read faults are not available');
    return this.zeroPagePa / this.geo.PAGE_SIZE;
  }

  /** is_zero_pfn. */
  isZeroPfn(pfn: number): boolean {
    return this.zeroPagePa >= 0 && pfn === this.zeroPagePa / this.geo.PAGE_SIZE;
  }

  /** Tell every registered TLB model about a shootdown. */
  flushTlb(ev: TlbFlushEvent): void {
    this.tlbFlushes++;
    this.emit('tlb_flush', { kind: ev.kind, start: ev.start, end: ev.end, asid: ev.asid });
    for (const l of this.tlbFlushListeners) l(ev);
  }

  /** mm->context.id: a fresh ASID / PCID for a new address space. */
  allocAsid(): number {
    return this.nextAsid++;
  }

  /** A new address space with an empty root table (mm_alloc + pgd_alloc). */
  newMm(name = 'mm'): MmStruct {
    const pgd = this.allocTableFrames();
    if (this.geo.rootHalves === 'both') {
      // x86-64 pgd_alloc → pgd_ctor: the kernel half of the new root is a copy of init_mm's
      // (clone_pgd_range of KERNEL_PGD_BOUNDARY … PTRS_PER_PGD), so kernel addresses translate in
      // every process. The tables below those entries stay init_mm's.
      const half = this.geo.PTRS_PER_PGD / 2;
      // Through the u32 view: a Uint8Array over the whole buffer cannot exist past 4 GiB (Node 20's
      // typed-array length limit is 2^32 elements), u32 reaches 16 GiB.
      const u32 = this.mem.u32;
      const src = this.mem.offset(this.initMm.pgd + half * 8, half * 8) / 4;
      u32.copyWithin(this.mem.offset(pgd + half * 8, half * 8) / 4, src, src + half * 2);
    }
    return new MmStruct(this, pgd, name, this.allocAsid());
  }

  /**
   * Allocate one zeroed page-table page (granule-sized, naturally aligned), or -1 when the test
   * seam says the allocator is out of memory, as __p?d_alloc would see -ENOMEM.
   */
  allocPgtable(): number {
    if (this.pgtableAllocLimit !== null) {
      if (this.pgtableAllocLimit <= 0) return -1;
      this.pgtableAllocLimit--;
    }
    const pa = this.frames.tryAlloc(this.tableOrder);
    if (pa < 0) return -1;
    this.initTable(pa);
    return pa;
  }

  /** pgd_free: the root table of an exiting mm. */
  freePgd(pa: number): void {
    this.freePgtable(pa);
  }

  /** Free a page-table page back to the allocator. */
  freePgtable(pa: number): void {
    this.meta.clearFlag(pa, PG_pgtable);
    this.meta.setRefcount(pa, 0);
    this.frames.free(pa, this.tableOrder);
  }

  private allocTableFrames(): number {
    const pa = this.frames.alloc(this.tableOrder);
    this.initTable(pa);
    return pa;
  }

  private initTable(pa: number): void {
    this.mem.zero(pa, this.geo.PAGE_SIZE);
    this.meta.setFlag(pa, PG_pgtable);
    this.meta.setRefcount(pa, 1); // pagetable_alloc: an allocated page holds one reference
  }

  emit(kind: string, detail: Record<string, unknown>): void {
    this.onEvent?.(kind, detail);
  }
}
