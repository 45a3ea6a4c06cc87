/**
 * struct mmu_gather (include/asm-generic/tlb.h, mm/mmu_gather.c): while a range is unmapped, the
 * pages whose last mapping went away and the page tables freed are collected here, together with
 * the range that needs a TLB flush. They are freed only after that flush, so that no CPU can
 * still reach a freed page through a stale TLB entry.
 *
 * The batch is bounded as the kernel's is (MAX_GATHER_BATCH pointers per batch page, at most
 * MAX_GATHER_BATCH_COUNT batches): when it fills, __tlbRemovePage says so and the zapper flushes
 * early (tlb_flush_mmu), exactly where the kernel would.
 */
import type { MmStruct } from './mm';
import { folioMapcount, folioPut } from './folio';
import { folioFreeSwap } from './swap';

/** Pointers per batch page (PAGE_SIZE minus the batch header, over 8-byte pointers): MAX_GATHER_BATCH. */
function maxGatherBatch(pageSize: number): number {
  return (pageSize - 16) / 8;
}
/** MAX_GATHER_BATCH_COUNT = 10000 / MAX_GATHER_BATCH batch pages at most. */
const MAX_GATHER_BATCH_COUNT_PAGES = 10000;
/** The batch embedded in struct mmu_gather (MMU_GATHER_BUNDLE). */
const MMU_GATHER_BUNDLE = 8;

export class MmuGather {
  readonly mm: MmStruct;
  /** tlb_gather_mmu_fullmm: the whole address space goes (exit_mmap). */
  readonly fullmm: boolean;
  start = 0;
  end = 0;
  /** Page tables have been unhooked (pte_free_tlb): walk caches must be invalidated too. */
  freedTables = false;
  clearedPtes = false;
  clearedPmds = false;
  clearedPuds = false;
  /** Largest page size unmapped, the flush stride (tlb_get_unmap_shift). */
  stride = 0;
  /** Pages (folio pages) whose reference is dropped after the flush: __tlb_remove_page. */
  readonly pages: number[] = [];
  /** Page-table pages freed after the flush: tlb_remove_table. */
  readonly tables: number[] = [];
  /** Flushes issued by this gather (for tests). */
  flushes = 0;
  private readonly batchLimit: number;
  finished = false;

  constructor(mm: MmStruct, fullmm: boolean) {
    this.mm = mm;
    this.fullmm = fullmm;
    const ps = mm.machine.geo.PAGE_SIZE;
    const batch = maxGatherBatch(ps);
    // Linux ≥ 6.8 (__tlb_remove_folio_pages_size) keeps one slot of every batch free: the embedded
    // bundle holds 7, each of the MAX_GATHER_BATCH_COUNT batch pages MAX_GATHER_BATCH - 1
    // (9678 pages with 4 KiB pages) before the gather must flush.
    this.batchLimit = MMU_GATHER_BUNDLE - 1 + Math.floor(MAX_GATHER_BATCH_COUNT_PAGES / batch) * (batch - 1);
    this.resetRange();
  }

  private resetRange(): void {
    if (this.fullmm) {
      this.start = 0;
      this.end = 2 ** 64;
    } else {
      this.start = 2 ** 64;
      this.end = 0;
    }
    this.freedTables = false;
    this.clearedPtes = this.clearedPmds = this.clearedPuds = false;
    this.stride = 0;
  }

  /** __tlb_adjust_range. */
  adjustRange(address: number, size: number): void {
    if (this.fullmm) return;
    if (address < this.start) this.start = address;
    if (address + size > this.end) this.end = address + size;
  }

  /** tlb_remove_tlb_entry / tlb_remove_pmd_tlb_entry / tlb_remove_pud_tlb_entry: an entry at `level` mapping `size` bytes was cleared. */
  removeTlbEntry(level: 'pte' | 'pmd' | 'pud', address: number, size: number): void {
    if (level === 'pte') this.clearedPtes = true;
    else if (level === 'pmd') this.clearedPmds = true;
    else this.clearedPuds = true;
    if (size > this.stride) this.stride = size;
    this.adjustRange(address, size);
  }

  /**
   * __tlb_remove_page: queue one reference of page's folio to be dropped after the flush.
   * Returns true when the batch is full and the caller must tlb_flush_mmu before going on.
   */
  removePage(page: number): boolean {
    this.pages.push(page);
    return this.pages.length >= this.batchLimit;
  }

  /** pte_free_tlb / pmd_free_tlb / pud_free_tlb: a table unhooked from [address, address + span). */
  removeTable(table: number, address: number, span: number): void {
    this.freedTables = true;
    this.adjustRange(address, span);
    this.tables.push(table);
  }

  /** tlb_flush_mmu_tlbonly: the TLB shootdown for what has been cleared so far. */
  flushTlbOnly(): void {
    if (!(this.freedTables || this.clearedPtes || this.clearedPmds || this.clearedPuds)) return;
    const m = this.mm.machine;
    this.flushes++;
    if (this.fullmm) {
      // arm64 tlb_flush(): on exit the ASID is about to be released and never reused before a
      // rollover invalidates it, so no TLBI is issued; x86 flushes the mm.
      if (m.geo.arch === 'x86_64') {
        m.flushTlb({ kind: 'mm', mm: this.mm, start: 0, end: 2 ** 64, asid: this.mm.asid, stride: this.stride || m.geo.PAGE_SIZE });
      }
    } else if (this.end > this.start) {
      m.flushTlb({
        kind: this.mm.isInitMm ? 'kernel_range' : 'range',
        mm: this.mm,
        start: this.start,
        end: this.end,
        asid: this.mm.asid,
        stride: this.stride || m.geo.PAGE_SIZE,
        lastLevel: !this.freedTables,
      });
    }
    this.resetRange();
  }

  /**
   * tlb_flush_mmu_free: drop the queued page references and free the queued tables. The pages go
   * through free_pages_and_swap_cache (mm/swap_state.c): free_swap_cache takes a folio that is no
   * longer mapped out of the swap cache when no swap entry uses its slot any more — without it a
   * folio swapped back in while another process still had the entry, whose entry then went, would
   * stay in the swap cache (and its slot allocated) for ever.
   */
  private flushFree(): void {
    const m = this.mm.machine;
    for (const t of this.tables) m.freePgtable(t);
    this.tables.length = 0;
    for (const p of this.pages) {
      const folio = m.meta.headOf(p);
      if (folioMapcount(m, folio) === 0) folioFreeSwap(m, folio);
      folioPut(m, folio);
    }
    this.pages.length = 0;
  }

  /** tlb_flush_mmu: flush, then free what waited for the flush. */
  flush(): void {
    this.flushTlbOnly();
    this.flushFree();
  }
}

/** tlb_gather_mmu(tlb, mm): start gathering for a partial unmap. */
export function tlbGatherMmu(mm: MmStruct): MmuGather {
  return new MmuGather(mm, false);
}

/** tlb_gather_mmu_fullmm(tlb, mm): start gathering for the teardown of the whole mm. */
export function tlbGatherMmuFullmm(mm: MmStruct): MmuGather {
  return new MmuGather(mm, true);
}

/** tlb_flush_mmu. */
export function tlbFlushMmu(tlb: MmuGather): void {
  tlb.flush();
}

/** tlb_finish_mmu: the final flush, then everything gathered is freed. */
export function tlbFinishMmu(tlb: MmuGather): void {
  if (tlb.finished) throw new RangeError('tlb_finish_mmu called twice on one mmu_gather');
  tlb.flush();
  tlb.finished = true;
}

/** flush_tlb_range(vma->vm_mm, start, end) issued outside an mmu_gather (mprotect, fork, COW). */
export function flushTlbRange(mm: MmStruct, start: number, end: number, stride: number = mm.machine.geo.PAGE_SIZE): void {
  mm.machine.flushTlb({ kind: mm.isInitMm ? 'kernel_range' : 'range', mm, start, end, asid: mm.asid, stride });
}

/** flush_tlb_mm. */
export function flushTlbMm(mm: MmStruct): void {
  mm.machine.flushTlb({ kind: 'mm', mm, start: 0, end: 2 ** 64, asid: mm.asid, stride: mm.machine.geo.PAGE_SIZE });
}
