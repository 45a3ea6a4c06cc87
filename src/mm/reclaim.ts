/**
 * Swapping anonymous folios out (mm/vmscan.c shrink_folio_list → try_to_unmap, mm/rmap.c) and
 * migrating folios (mm/migrate.c: try_to_migrate, then remove_migration_ptes) — the two ways
 * non-present swap-format entries get into page tables. Swap-in is do_swap_page (fault.ts).
 */
import { PG_anon_exclusive, PG_swapcache } from '../mem/framemeta';
import { EAGAIN, EBUSY, EINVAL, ENOMEM } from './errno';
import { copyPage, folioAlloc, folioGet, folioMapcount, folioNrPages, folioPut, folioTestAnon, pageFolio, setFolioMapping, folioIndex, folioMapping } from './folio';
import type { Machine } from './machine';
import { addMmCounter, MM_ANONPAGES, MM_SWAPENTS } from './mm';
import { flushTlbRange } from './mmu-gather';
import { lookupEntry } from './pt-lookup';
import { folioAddRmapPtes, folioRemoveRmapPtes, rmapWalk } from './rmap';
import { SWP_MIGRATION_READ, SWP_MIGRATION_READ_EXCLUSIVE, SWP_MIGRATION_WRITE, swapDevice } from './swap';
import type { VmAreaStruct } from './vma';
import { AddressSpace } from './address-space';

/** Where the pte mapping page at (vma, addr) is, if it still maps it; else -1. */
function pteMapping(vma: VmAreaStruct, addr: number, page: number): number {
  const m = vma.vmMm.machine;
  const r = lookupEntry(vma.vmMm, addr);
  if (r.level !== 'pte') return -1;
  const pt = m.pgtable;
  const lo = pt.lo(r.ptr);
  const hi = pt.hi(r.ptr);
  if (!m.bits.ptePresent(lo, hi) || m.bits.pteSpecial(lo, hi)) return -1;
  return m.bits.leafPfn('pte', lo, hi) * pt.PAGE_SIZE === page ? r.ptr : -1;
}

/**
 * Swap one small anonymous folio out: write it to a swap slot, replace every pte that maps it with
 * a swap entry (flushing each, as try_to_unmap_one's ptep_clear_flush does) and free it.
 * 0, -EINVAL (not anonymous), -EBUSY (large, or still referenced elsewhere: pinned).
 */
export function swapOutFolio(m: Machine, page: number): number {
  const folio = pageFolio(m, page);
  if (!folioTestAnon(m, folio)) return -EINVAL;
  if (folioNrPages(m, folio) > 1) return -EBUSY; // mmulab does not split THPs for swap
  const mapcount = folioMapcount(m, folio);
  if (m.meta.getRefcount(folio) !== mapcount) return -EBUSY; // an extra reference (gup pin, swap cache)
  const dev = swapDevice(m);
  const ps = m.geo.PAGE_SIZE;
  const bytes = new Uint8Array(m.mem.buffer, m.mem.offset(folio, ps), ps);
  const offset = dev.alloc(bytes);
  folioGet(m, folio); // isolate: keep it alive while its mappings go
  rmapWalk(m, folio, (vma, addr) => {
    const ptep = pteMapping(vma, addr, folio);
    if (ptep < 0) return;
    const mm = vma.vmMm;
    mm.machine.pgtable.clear(ptep);
    flushTlbRange(mm, addr, addr + ps);
    mm.machine.pgtable.set(ptep, m.bits.mkSwapPte(dev.type, offset));
    dev.dup(offset);
    addMmCounter(mm, MM_ANONPAGES, -1);
    addMmCounter(mm, MM_SWAPENTS, 1);
    folioRemoveRmapPtes(m, folio, 1);
    folioPut(m, folio);
  });
  if (folioMapcount(m, folio) !== 0) {
    folioPut(m, folio);
    return -EAGAIN;
  }
  folioPut(m, folio); // the last reference: the folio is freed
  return 0;
}

/** State of a migration between its two steps. */
export interface Migration {
  readonly src: number;
  /** The (vma, addr) whose ptes now hold migration entries. */
  readonly entries: Array<{ vma: VmAreaStruct; addr: number; type: number; dirty: boolean }>;
}

/**
 * try_to_migrate: replace every pte mapping the small folio with a migration entry (READ,
 * READ_EXCLUSIVE or WRITE after what the pte allowed), flushing each. The folio keeps the
 * isolation reference until migrateFinish.
 */
export function migrateStart(m: Machine, page: number): Migration | number {
  const folio = pageFolio(m, page);
  if (folioNrPages(m, folio) > 1) return -EBUSY;
  if (folioMapping(m, folio) === null) return -EINVAL;
  const ps = m.geo.PAGE_SIZE;
  folioGet(m, folio);
  const entries: Migration['entries'] = [];
  rmapWalk(m, folio, (vma, addr) => {
    const ptep = pteMapping(vma, addr, folio);
    if (ptep < 0) return;
    const pt = m.pgtable;
    const lo = pt.lo(ptep);
    const hi = pt.hi(ptep);
    const type = m.bits.pteWrite(lo, hi)
      ? SWP_MIGRATION_WRITE
      : folioTestAnon(m, folio) && m.meta.testFlag(folio, PG_anon_exclusive)
        ? SWP_MIGRATION_READ_EXCLUSIVE
        : SWP_MIGRATION_READ;
    entries.push({ vma, addr, type, dirty: m.bits.pteDirty(lo, hi) });
    pt.clear(ptep);
    flushTlbRange(vma.vmMm, addr, addr + ps);
    pt.set(ptep, m.bits.mkSwapPte(type, folio / ps));
    folioRemoveRmapPtes(m, folio, 1);
    folioPut(m, folio);
  });
  return { src: folio, entries };
}

/**
 * move_to_new_folio + remove_migration_ptes: copy the folio to a new one and turn every migration
 * entry back into a pte for the new folio (writable for WRITE entries). The old folio is freed.
 * Returns the new folio; -ENOMEM when none could be allocated (the entries are then restored to
 * the old folio); -EAGAIN when nothing referred to the folio any more (every entry was zapped
 * meanwhile), so the new folio was freed again.
 */
export function migrateFinish(m: Machine, mig: Migration): number {
  const ps = m.geo.PAGE_SIZE;
  const src = mig.src;
  let dst = folioAlloc(m, 0, false);
  const failed = dst < 0;
  if (failed) dst = src;
  else {
    copyPage(m, dst, src);
    m.meta.flags[m.meta.frameIndex(dst)] = m.meta.flags[m.meta.frameIndex(src)]!;
    const mapping = folioMapping(m, src);
    setFolioMapping(m, dst, mapping, folioIndex(m, src));
    if (mapping instanceof AddressSpace && mapping.pages.get(folioIndex(m, src)) === src) {
      mapping.pages.set(folioIndex(m, src), dst);
      folioGet(m, dst); // the page cache's reference moves to the new folio
      folioPut(m, src);
    }
    if (m.meta.testFlag(src, PG_swapcache)) {
      // __folio_migrate_mapping: a swap-cache folio's slot now names the new folio, and the swap
      // cache's reference moves with it (PG_swapcache came with the flags copied above).
      const dev = swapDevice(m);
      for (const [offset, f] of dev.cache) {
        if (f !== src) continue;
        dev.cache.set(offset, dst);
        folioGet(m, dst);
        folioPut(m, src);
        break;
      }
    }
  }
  for (const e of mig.entries) {
    const r = lookupEntry(e.vma.vmMm, e.addr);
    if (r.level !== 'pte') continue;
    const pt = m.pgtable;
    const lo = pt.lo(r.ptr);
    const hi = pt.hi(r.ptr);
    if (m.bits.ptePresent(lo, hi) || m.bits.pteNone(lo, hi) || m.bits.swapOffset(lo, hi) !== src / ps) continue;
    let v = m.bits.pfnPte(dst / ps, e.vma.vmPageProt);
    if (e.type === SWP_MIGRATION_WRITE) v = m.bits.pteModify(v, { write: true });
    if (e.dirty) v = m.bits.pteModify(v, { dirty: true });
    folioGet(m, dst);
    folioAddRmapPtes(m, dst, 1);
    pt.set(r.ptr, v);
  }
  folioPut(m, src); // the isolation reference: the old folio goes
  if (failed) return -ENOMEM;
  // migrate_folio_move ends with folio_putback_lru(dst) / folio_put: the allocation reference is
  // the migration's own, not a mapping's — the new folio is left with one reference per mapping
  // (and the page cache's), and is freed at once when every entry was zapped meanwhile.
  const alive = m.meta.getRefcount(dst) > 1;
  folioPut(m, dst);
  return alive ? dst : -EAGAIN;
}

/** migrate_pages for one small folio: both steps. */
export function migrateFolio(m: Machine, page: number): number {
  const mig = migrateStart(m, page);
  if (typeof mig === 'number') return mig;
  return migrateFinish(m, mig);
}
