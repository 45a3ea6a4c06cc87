import { describe, expect, it } from 'vitest';
import {
  Machine, PG_anon, PM_FILE, PM_PRESENT, PM_SWAP, VM_HUGETLB, VM_READ, VM_WRITE,
  entryAlloc, mmapReadLock, readPagemap, setHugePteAt, setPmdAt, setPteAt,
} from '../../src/index';

// Documentation/admin-guide/mm/pagemap.rst: bits 0-54 PFN or swap (type 0-4, offset 5-54),
// 56 exclusively mapped, 61 file-page or shared-anon, 62 swapped, 63 present.
describe('pagemap (fs/proc/task_mmu.c, pagemap.rst)', () => {
  function setup() {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 16 << 20 });
    const mm = m.newMm();
    mm.insertVma({ start: 0x40_0000, end: 0x80_0000, flags: VM_READ | VM_WRITE });
    return { m, mm };
  }

  it('a present anonymous page mapped once: present | exclusive | PFN; a hole reads 0', () => {
    const { m, mm } = setup();
    const pfn = 0x200; // frame at 2 MiB, inside memory
    m.meta.setMapcount(pfn * 4096, 1);
    m.meta.setFlag(pfn * 4096, PG_anon);
    setPteAt(mm, 0x40_0000, entryAlloc(mm, 0x40_0000, 'pte'), m.bits.pfnPte(pfn, m.bits.pgprot({ write: true, user: true })));
    mmapReadLock(mm);
    const pm = readPagemap(mm, 0x40_0000, 0x40_2000);
    expect(pm[0]).toBe(0x8100_0000_0000_0200n); // bit 63 | bit 56 | 0x200
    expect(pm[1]).toBe(0n);
  });

  it('a file page mapped twice: present | file, not exclusive', () => {
    const { m, mm } = setup();
    m.meta.setMapcount(0x201 * 4096, 2);
    setPteAt(mm, 0x40_0000, entryAlloc(mm, 0x40_0000, 'pte'), m.bits.pfnPte(0x201, m.bits.pgprot({ user: true })));
    mmapReadLock(mm);
    expect(readPagemap(mm, 0x40_0000, 0x40_1000)[0]).toBe(PM_PRESENT | PM_FILE | 0x201n);
  });

  it('a swapped-out page: swapped | type in bits 0-4 | offset from bit 5', () => {
    const { m, mm } = setup();
    setPteAt(mm, 0x40_0000, entryAlloc(mm, 0x40_0000, 'pte'), m.bits.mkSwapPte(3, 0x1234));
    mmapReadLock(mm);
    expect(readPagemap(mm, 0x40_0000, 0x40_1000)[0]).toBe(PM_SWAP | (0x1234n << 5n) | 3n);
  });

  it('a transparent huge pmd reports each of its 512 pages with consecutive PFNs', () => {
    const { m, mm } = setup();
    setPmdAt(mm, 0x60_0000, entryAlloc(mm, 0x60_0000, 'pmd'), m.bits.pfnHuge('pmd', 0x4_0000, m.bits.pgprot({ user: true })));
    mmapReadLock(mm);
    const pm = readPagemap(mm, 0x60_0000, 0x80_0000);
    expect(pm.length).toBe(512);
    expect(pm[0]).toBe(PM_PRESENT | 0x4_0000n); // frame outside memory: no struct page, no page flags
    expect(pm[511]).toBe(PM_PRESENT | 0x4_01ffn);
  });

  it('a 2 MiB hugetlb page read from its middle starts at the right PFN', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 16 << 20 });
    const mm = m.newMm();
    mm.insertVma({ start: 0x4000_0000, end: 0x4020_0000, flags: VM_READ | VM_HUGETLB, hugepageSize: 0x20_0000 });
    setHugePteAt(mm, 0x4000_0000, entryAlloc(mm, 0x4000_0000, 'pmd'), m.bits.pfnHuge('pmd', 0x8_0000, m.bits.pgprot({ user: true })), 0x20_0000);
    mmapReadLock(mm);
    const pm = readPagemap(mm, 0x4010_0000, 0x4010_2000);
    expect([...pm]).toEqual([PM_PRESENT | 0x8_0100n, PM_PRESENT | 0x8_0101n]);
  });

  it('refuses an unaligned range', () => {
    const { mm } = setup();
    expect(() => readPagemap(mm, 0x40_0001, 0x40_2000)).toThrow(/page-aligned/);
  });
});
