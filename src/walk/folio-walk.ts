/**
 * folio_walk_start / folio_walk_end (mm/pagewalk.c, include/linux/pagewalk.h): look up the folio
 * mapped at one address of a VMA — by a pte, a pmd leaf or a pud leaf — and hold the page-table
 * lock of that entry until folio_walk_end.
 *
 * What is found: a "normal" page (vm_normal_page: not special, not the zero page); with FW_ZEROPAGE
 * also the shared zero page and the huge zero folio; with FW_MIGRATION also the folio a migration
 * entry refers to (pte or pmd; pud migration entries are not walked, as in Linux). For the zero
 * pages and migration entries fw.page stays null (the page is not exposed), for a normal page it is
 * the exact page at addr within the folio.
 */
import { pageFolio } from '../mm/folio';
import { KernelAssertionError } from '../mm/locks';
import { vmNormalPage } from '../mm/memory';
import { mmapAssertLocked } from '../mm/mm';
import { isMigrationType } from '../mm/swap';
import type { VmAreaStruct } from '../mm/vma';

/** Walk migration entries as well. */
export const FW_MIGRATION = 1 << 0;
/** Walk shared zeropages (small + huge) as well. */
export const FW_ZEROPAGE = 1 << 1;

export const FW_LEVEL_PTE = 0;
export const FW_LEVEL_PMD = 1;
export const FW_LEVEL_PUD = 2;

/** struct folio_walk. Entry pointers are entry physical addresses; entry values bigint. */
export class FolioWalk {
  /** The exact page referenced (physical address), or null when not exposed. */
  page: number | null = null;
  level = FW_LEVEL_PTE;
  /** fw->ptep / pmdp / pudp: the entry's address. */
  ptr = -1;
  /** fw->pte / pmd / pud: the entry's value when it was read. */
  entry = 0n;
  /** private: the VMA and the lock held (the entry's lock is modelled as a flag). */
  vma: VmAreaStruct | null = null;
  locked = false;

  get ptep(): number {
    return this.ptr;
  }
  get pmdp(): number {
    return this.ptr;
  }
  get pudp(): number {
    return this.ptr;
  }
  get pte(): bigint {
    return this.entry;
  }
  get pmd(): bigint {
    return this.entry;
  }
  get pud(): bigint {
    return this.entry;
  }
}

/**
 * folio_walk_start(fw, vma, addr, flags): the folio (its head's physical address) mapped at addr,
 * or null. On success the entry's lock is held until folioWalkEnd. The mmap lock must be held.
 */
export function folioWalkStart(fw: FolioWalk, vma: VmAreaStruct, addr: number, flags: number): number | null {
  const mm = vma.vmMm;
  const m = mm.machine;
  const pt = m.pgtable;
  const b = m.bits;
  mmapAssertLocked(mm);
  if (addr < vma.vmStart || addr >= vma.vmEnd) return null; // WARN_ON_ONCE
  const pgd = pt.pgdOffset(mm.pgd, addr);
  if (pt.noneOrClearBad(pgd, pt.pgdNone, pt.pgdBad)) return null;
  const p4d = pt.p4dOffset(pgd, addr);
  if (pt.noneOrClearBad(p4d, pt.p4dNone, pt.p4dBad)) return null;
  const pud = pt.pudOffset(p4d, addr);
  let lo = pt.lo(pud);
  let hi = pt.hi(pud);
  if (pt.pudNone(lo, hi)) return null;
  if (!pt.isFolded('pmd') && (!pt.pudPresent(lo, hi) || pt.pudLeaf(lo, hi))) {
    fw.level = FW_LEVEL_PUD;
    fw.ptr = pud;
    fw.entry = pt.val(pud);
    if (!pt.pudPresent(lo, hi) || b.pteSpecial(lo, hi)) return null;
    if (pt.pudLeaf(lo, hi)) {
      const page = b.leafPfn('pud', lo, hi) * pt.PAGE_SIZE;
      return found(fw, vma, page, addr, pt.PUD_SIZE, true);
    }
  } else if (pt.pudBad(lo, hi) && !pt.isFolded('pmd')) {
    return null;
  }
  const pmd = pt.pmdOffset(pud, addr);
  lo = pt.lo(pmd);
  hi = pt.hi(pmd);
  if (pt.pmdNone(lo, hi)) return null;
  if (!pt.pmdPresent(lo, hi) || pt.pmdLeaf(lo, hi)) {
    fw.level = FW_LEVEL_PMD;
    fw.ptr = pmd;
    fw.entry = pt.val(pmd);
    if (pt.pmdPresent(lo, hi)) {
      const page = vmNormalPage(vma, addr, lo, hi, 'pmd');
      if (page >= 0) return found(fw, vma, page, addr, pt.PMD_SIZE, true);
      const pa = b.leafPfn('pmd', lo, hi) * pt.PAGE_SIZE;
      if ((flags & FW_ZEROPAGE) && m.hugeZeroFolio >= 0 && pa === m.hugeZeroFolio) return found(fw, vma, pa, addr, pt.PMD_SIZE, false);
      return null;
    }
    if ((flags & FW_MIGRATION) && isMigrationType(b.swapType(lo, hi))) {
      return found(fw, vma, b.swapOffset(lo, hi) * pt.PAGE_SIZE, addr, pt.PMD_SIZE, false);
    }
    return null;
  }
  if (pt.pmdBad(lo, hi)) {
    pt.clear(pmd);
    return null;
  }
  // pte_offset_map_lock
  const pte = pt.pteOffsetKernel(pmd, addr);
  lo = pt.lo(pte);
  hi = pt.hi(pte);
  fw.level = FW_LEVEL_PTE;
  fw.ptr = pte;
  fw.entry = pt.val(pte);
  if (b.ptePresent(lo, hi)) {
    const page = vmNormalPage(vma, addr, lo, hi);
    if (page >= 0) return found(fw, vma, page, addr, pt.PAGE_SIZE, true);
    const pfn = b.leafPfn('pte', lo, hi);
    if ((flags & FW_ZEROPAGE) && m.isZeroPfn(pfn)) return found(fw, vma, pfn * pt.PAGE_SIZE, addr, pt.PAGE_SIZE, false);
  } else if (!b.pteNone(lo, hi)) {
    if ((flags & FW_MIGRATION) && isMigrationType(b.swapType(lo, hi))) {
      return found(fw, vma, b.swapOffset(lo, hi) * pt.PAGE_SIZE, addr, pt.PAGE_SIZE, false);
    }
  }
  return null;
}

function found(fw: FolioWalk, vma: VmAreaStruct, page: number, addr: number, entrySize: number, expose: boolean): number | null {
  const m = vma.vmMm.machine;
  if (!m.mem.contains(page, 1)) return null; // no struct page behind the pfn
  // Offset from the mapped page, not the folio start.
  fw.page = expose ? page + Math.floor((addr % entrySize) / m.geo.PAGE_SIZE) * m.geo.PAGE_SIZE : null;
  fw.vma = vma;
  fw.locked = true;
  return pageFolio(m, page);
}

/** folio_walk_end(fw, vma): release the entry's lock taken by a successful folio_walk_start. */
export function folioWalkEnd(fw: FolioWalk, vma: VmAreaStruct): void {
  if (!fw.locked || fw.vma !== vma) {
    throw new KernelAssertionError('folio_walk_end', `no folio_walk_start on ${vma} holds a lock to release`);
  }
  fw.locked = false;
}
