/**
 * An smaps-like counter (fs/proc/task_mmu.c smaps_pte_range / smaps_account): per VMA, the
 * resident set split the way /proc/pid/smaps splits it, in kB.
 *
 * - Rss: every present page; Pss: each page divided by its mapcount;
 * - Shared_* / Private_*: mapcount >= 2 is shared; dirty is pte_dirty or PG_dirty;
 * - Referenced: pte_young or PG_referenced; Anonymous: PG_anon pages;
 * - AnonHugePages: anonymous pages mapped by a huge pmd; Swap: swap entries.
 * A frame outside emulated memory (VM_PFNMAP/VM_IO) has no struct page and is not counted, as
 * vm_normal_page() returns NULL for it.
 */
import { PG_anon, PG_dirty, PG_referenced } from '../mem/framemeta';
import type { MmStruct } from '../mm/mm';
import type { VmAreaStruct } from '../mm/vma';
import { ACTION_CONTINUE, walkPageVma, type MmWalk, type MmWalkOps } from './pagewalk';

export interface SmapsEntry {
  readonly vma: VmAreaStruct;
  /** All sizes in kB, as smaps prints them. */
  Size: number;
  Rss: number;
  Pss: number;
  Shared_Clean: number;
  Shared_Dirty: number;
  Private_Clean: number;
  Private_Dirty: number;
  Referenced: number;
  Anonymous: number;
  AnonHugePages: number;
  Swap: number;
}

function account(walk: MmWalk<SmapsEntry>, pfn: number, bytes: number, young: boolean, dirty: boolean, huge: boolean): void {
  const m = walk.mm.machine;
  const pa = pfn * m.geo.PAGE_SIZE;
  if (!m.mem.contains(pa, 1)) return;
  const e = walk.private;
  const kb = bytes / 1024;
  const mapcount = Math.max(1, m.meta.getMapcount(pa));
  const anon = m.meta.testFlag(pa, PG_anon);
  const isDirty = dirty || m.meta.testFlag(pa, PG_dirty);
  e.Rss += kb;
  e.Pss += kb / mapcount;
  if (mapcount >= 2) {
    if (isDirty) e.Shared_Dirty += kb;
    else e.Shared_Clean += kb;
  } else if (isDirty) e.Private_Dirty += kb;
  else e.Private_Clean += kb;
  if (young || m.meta.testFlag(pa, PG_referenced)) e.Referenced += kb;
  if (anon) {
    e.Anonymous += kb;
    if (huge) e.AnonHugePages += kb;
  }
}

const ops: MmWalkOps<SmapsEntry> = {
  pmdEntry(pmd, _addr, _next, walk) {
    const pt = walk.pt;
    const lo = pt.lo(pmd);
    const hi = pt.hi(pmd);
    if (pt.pmdPresent(lo, hi) && pt.pmdLeaf(lo, hi)) {
      const bits = walk.mm.machine.bits;
      // smaps_pmd_entry accounts the whole huge page; young/dirty read like a pte's bits.
      account(walk, bits.leafPfn('pmd', lo, hi), pt.PMD_SIZE, bits.pteYoung(lo, hi), bits.pteDirty(lo, hi), true);
      walk.action = ACTION_CONTINUE;
    }
    return 0;
  },
  pteEntry(pte, _addr, _next, walk) {
    const pt = walk.pt;
    const lo = pt.lo(pte);
    const hi = pt.hi(pte);
    const bits = walk.mm.machine.bits;
    if (pt.ptePresent(lo, hi)) account(walk, bits.leafPfn('pte', lo, hi), pt.PAGE_SIZE, bits.pteYoung(lo, hi), bits.pteDirty(lo, hi), false);
    else if (!pt.pteNone(lo, hi)) walk.private.Swap += pt.PAGE_SIZE / 1024;
    return 0;
  },
};

/** smaps for every VMA of mm (the mmap lock held for read, as show_smap takes it). */
export function smaps(mm: MmStruct): SmapsEntry[] {
  return mm.vmaList.map((vma) => {
    const e: SmapsEntry = {
      vma,
      Size: (vma.vmEnd - vma.vmStart) / 1024,
      Rss: 0, Pss: 0, Shared_Clean: 0, Shared_Dirty: 0, Private_Clean: 0, Private_Dirty: 0,
      Referenced: 0, Anonymous: 0, AnonHugePages: 0, Swap: 0,
    };
    const ret = walkPageVma(vma, ops, e);
    if (ret < 0) throw new RangeError(`smaps walk of ${vma} failed with ${ret}`);
    e.Pss = Math.floor(e.Pss);
    return e;
  });
}
