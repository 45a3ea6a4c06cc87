/** Small machines with hand-placed mappings, saved as image folders for the image and walk tests. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine, entryAlloc, registersFor, saveImage, setPmdAt, setPteAt, setPudAt } from '../../src/index';

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'mmulab-img-'));
}

/**
 * x86-64 4-level: 4K pages at 0x400000 (pfn 0x100), 0x401000 (0x101), 0x403000 (0x200); a 2M leaf at
 * 0x40000000 (pfn 0x800); a 1G kernel leaf at 0xffff888000000000 (pfn 0x40000).
 */
export function x86Image(dir = tempDir()): { dir: string; machine: Machine } {
  const m = new Machine({ geometry: 'x86_64-4level', memSize: 4 * 2 ** 20 });
  const mm = m.newMm();
  const user = m.bits.pgprot({ write: true, user: true });
  const kern = m.bits.pgprot({ write: true, global: true });
  for (const [va, pfn] of [[0x400000, 0x100], [0x401000, 0x101], [0x403000, 0x200]] as const) {
    setPteAt(mm, va, entryAlloc(mm, va, 'pte'), m.bits.pfnPte(pfn, user));
  }
  setPmdAt(mm, 0x4000_0000, entryAlloc(mm, 0x4000_0000, 'pmd'), m.bits.pfnHuge('pmd', 0x800, user));
  setPudAt(mm, 0xffff_8880_0000_0000, entryAlloc(mm, 0xffff_8880_0000_0000, 'pud'), m.bits.pfnHuge('pud', 0x40000, kern));
  saveImage(dir, m, registersFor(m, mm.pgd, mm.pgd));
  return { dir, machine: m };
}

/** ARM64 4K/48: TTBR0 pages at 0x400000 (pfn 0x40100), 0x401000 (0x40101); TTBR1 2M block at 0xffff000000200000 (pfn 0x40200). */
export function arm64Image(dir = tempDir()): { dir: string; machine: Machine } {
  const m = new Machine({ geometry: 'arm64-4k-48', memSize: 4 * 2 ** 20 });
  const mm = m.newMm();
  const user = m.bits.pgprot({ write: true, user: true });
  const kern = m.bits.pgprot({ write: true });
  setPteAt(mm, 0x400000, entryAlloc(mm, 0x400000, 'pte'), m.bits.pfnPte(0x40100, user));
  setPteAt(mm, 0x401000, entryAlloc(mm, 0x401000, 'pte'), m.bits.pfnPte(0x40101, user));
  const k = m.initMm;
  setPmdAt(k, 0xffff_0000_0020_0000, entryAlloc(k, 0xffff_0000_0020_0000, 'pmd'), m.bits.pfnHuge('pmd', 0x40200, kern));
  saveImage(dir, m, registersFor(m, mm.pgd, k.pgd));
  return { dir, machine: m };
}
