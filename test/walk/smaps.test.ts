import { describe, expect, it } from 'vitest';
import { Machine, PG_anon, VM_READ, VM_WRITE, entryAlloc, mmapReadLock, setPmdAt, setPteAt, smaps } from '../../src/index';

// fs/proc/task_mmu.c smaps_account: shared when mapcount >= 2; dirty from pte_dirty or PG_dirty;
// Pss divides each page by its mapcount; AnonHugePages counts anonymous huge pmds.
describe('smaps', () => {
  it('splits Rss into private/shared and clean/dirty, and divides Pss by mapcount', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 16 << 20 });
    const mm = m.newMm();
    mm.insertVma({ start: 0x40_0000, end: 0x41_0000, flags: VM_READ | VM_WRITE });
    const page = (i: number, pfn: number, mapcount: number, dirty: boolean, anon: boolean) => {
      m.meta.setMapcount(pfn * 4096, mapcount);
      if (anon) m.meta.setFlag(pfn * 4096, PG_anon);
      const va = 0x40_0000 + i * 0x1000;
      setPteAt(mm, va, entryAlloc(mm, va, 'pte'), m.bits.pfnPte(pfn, m.bits.pgprot({ write: true, user: true, dirty, young: true })));
    };
    page(0, 0x300, 1, true, true); // private dirty anon
    page(1, 0x301, 1, false, true); // private clean anon
    page(2, 0x302, 2, false, false); // shared clean file page, Pss 2 kB
    page(3, 0x303, 4, true, false); // shared dirty, Pss 1 kB
    setPteAt(mm, 0x40_4000, entryAlloc(mm, 0x40_4000, 'pte'), m.bits.mkSwapPte(1, 7)); // swapped
    mmapReadLock(mm);
    const [e] = smaps(mm);
    expect(e).toMatchObject({
      Size: 64, Rss: 16, Pss: 4 + 4 + 2 + 1, Private_Dirty: 4, Private_Clean: 4, Shared_Clean: 4, Shared_Dirty: 4,
      Referenced: 16, Anonymous: 8, AnonHugePages: 0, Swap: 4,
    });
  });

  it('an anonymous transparent huge pmd counts 2048 kB of AnonHugePages', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 16 << 20 });
    const mm = m.newMm();
    mm.insertVma({ start: 0x60_0000, end: 0x80_0000, flags: VM_READ | VM_WRITE });
    m.meta.setMapcount(0x400 * 4096, 1);
    m.meta.setFlag(0x400 * 4096, PG_anon);
    setPmdAt(mm, 0x60_0000, entryAlloc(mm, 0x60_0000, 'pmd'), m.bits.pfnHuge('pmd', 0x400, m.bits.pgprot({ write: true, user: true })));
    mmapReadLock(mm);
    expect(smaps(mm)[0]).toMatchObject({ Rss: 2048, Anonymous: 2048, AnonHugePages: 2048, Private_Clean: 2048 });
  });
});
