/**
 * folio_walk_start / folio_walk_end (mm/pagewalk.c; the contract in include/linux/pagewalk.h, seed
 * 002): the folio mapped at one address, the exact page within it (fw->page), the level of the
 * entry (FW_LEVEL_PTE/PMD/PUD), zero pages only with FW_ZEROPAGE and migration entries only with
 * FW_MIGRATION — in both cases without exposing the page (fw->page NULL) — and the locking rules.
 */
import { describe, expect, it } from 'vitest';
import {
  Machine,
  vmMmap,
  doUserAddrFault,
  lookupEntry,
  migrateStart,
  migrateFinish,
  remapPfnRange,
  entryAlloc,
  FolioWalk,
  folioWalkStart,
  folioWalkEnd,
  FW_MIGRATION,
  FW_ZEROPAGE,
  FW_LEVEL_PTE,
  FW_LEVEL_PMD,
  FW_LEVEL_PUD,
  KernelAssertionError,
  mmapReadLock,
  mmapReadUnlock,
  mmapWriteLock,
  mmapWriteUnlock,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  PROT_READ,
  PROT_WRITE,
  type Migration,
  type MmStruct,
  type VmAreaStruct,
} from '../../src/index';

const MiB = 2 ** 20;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const RW = PROT_READ | PROT_WRITE;

function locked<T>(mm: MmStruct, fn: () => T): T {
  mmapReadLock(mm);
  try {
    return fn();
  } finally {
    mmapReadUnlock(mm);
  }
}

/** folio_walk_start under the mmap read lock; ends the walk when it succeeded. */
function walk(vma: VmAreaStruct, addr: number, flags = 0): { folio: number | null; fw: FolioWalk } {
  return locked(vma.vmMm, () => {
    const fw = new FolioWalk();
    const folio = folioWalkStart(fw, vma, addr, flags);
    if (folio !== null) folioWalkEnd(fw, vma);
    return { folio, fw };
  });
}

function ptePa(mm: MmStruct, addr: number): number {
  const r = lookupEntry(mm, addr);
  const pt = mm.machine.pgtable;
  return mm.machine.bits.leafPfn(r.level as 'pte' | 'pmd' | 'pud', pt.lo(r.ptr), pt.hi(r.ptr)) * mm.machine.geo.PAGE_SIZE;
}

describe('folio_walk_start: what is found and where', () => {
  it('a normal pte: FW_LEVEL_PTE, fw.page the page, fw.ptep/fw.pte the entry', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 64 * MiB });
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 4 * 4096, RW, ANON | MAP_FIXED);
    doUserAddrFault(mm, a + 4096, 'write');
    const vma = mm.vmaLookup(a)!;
    const pa = ptePa(mm, a + 4096);
    const { folio, fw } = walk(vma, a + 4096 + 0x123);
    expect(folio).toBe(pa);
    expect(fw.level).toBe(FW_LEVEL_PTE);
    expect(fw.page).toBe(pa);
    const r = lookupEntry(mm, a + 4096);
    expect(fw.ptep).toBe(r.ptr);
    expect(fw.pte).toBe(m.pgtable.val(r.ptr));
    // an empty pte in a populated table: nothing
    expect(walk(vma, a).folio).toBeNull();
  });

  it('a THP: FW_LEVEL_PMD, the folio head returned and fw.page the exact page (offset from the mapped page)', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 64 * MiB });
    const mm = m.newMm();
    const a = vmMmap(mm, 0, 2 * MiB, RW, ANON);
    expect(a % (2 * MiB)).toBe(0);
    doUserAddrFault(mm, a, 'write');
    const head = ptePa(mm, a);
    const vma = mm.vmaLookup(a)!;
    const { folio, fw } = walk(vma, a + 7 * 4096 + 100);
    expect(folio).toBe(head);
    expect(fw.level).toBe(FW_LEVEL_PMD);
    expect(fw.page).toBe(head + 7 * 4096);
    expect(fw.pmdp).toBe(lookupEntry(mm, a).ptr);
    const last = walk(vma, a + 2 * MiB - 1);
    expect(last.fw.page).toBe(head + 511 * 4096);
    expect(last.folio).toBe(head);
  });

  it('a PUD leaf (ARM64 4K level-1 block): FW_LEVEL_PUD, fw.page offset within the 1 GiB block', () => {
    // QEMU virt memory starts at 0x40000000, 1 GiB aligned: a block there reaches real frames.
    const m = new Machine({ geometry: 'arm64-4k-48', memSize: 64 * MiB });
    expect(m.mem.physBase).toBe(0x40000000);
    const mm = m.newMm();
    const a = vmMmap(mm, 0x80000000, 2 ** 30, RW, ANON | MAP_FIXED);
    expect(a).toBe(0x80000000);
    const vma = mm.vmaLookup(a)!;
    const pud = entryAlloc(mm, a, 'pud');
    m.pgtable.set(pud, m.bits.pfnHuge('pud', 0x40000000 / 4096, vma.vmPageProt));
    const { folio, fw } = walk(vma, a + 5 * 4096 + 8);
    expect(fw.level).toBe(FW_LEVEL_PUD);
    expect(fw.pudp).toBe(pud);
    expect(fw.page).toBe(0x40000000 + 5 * 4096);
    expect(folio).toBe(m.meta.headOf(0x40000000));
  });

  it('the zero page is found only with FW_ZEROPAGE, and fw.page stays null', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 64 * MiB });
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 4096, PROT_READ, ANON | MAP_FIXED);
    doUserAddrFault(mm, a, 'read');
    const vma = mm.vmaLookup(a)!;
    expect(walk(vma, a).folio).toBeNull();
    const { folio, fw } = walk(vma, a, FW_ZEROPAGE);
    expect(folio).toBe(m.zeroPagePa);
    expect(fw.page).toBeNull();
    expect(fw.level).toBe(FW_LEVEL_PTE);
  });

  it('the huge zero folio is found only with FW_ZEROPAGE, at FW_LEVEL_PMD, fw.page null', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 64 * MiB });
    const mm = m.newMm();
    const a = vmMmap(mm, 0, 2 * MiB, RW, ANON);
    doUserAddrFault(mm, a + 4096, 'read');
    expect(m.hugeZeroFolio).toBeGreaterThanOrEqual(0);
    const vma = mm.vmaLookup(a)!;
    expect(walk(vma, a + 4096).folio).toBeNull();
    const { folio, fw } = walk(vma, a + 4096, FW_ZEROPAGE);
    expect(folio).toBe(m.hugeZeroFolio);
    expect(fw.level).toBe(FW_LEVEL_PMD);
    expect(fw.page).toBeNull();
  });

  it('a migration entry is walked only with FW_MIGRATION: the folio being migrated, fw.page null', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 64 * MiB });
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 4096, RW, ANON | MAP_FIXED);
    doUserAddrFault(mm, a, 'write');
    const pa = ptePa(mm, a);
    const vma = mm.vmaLookup(a)!;
    const mig = migrateStart(m, pa) as Migration;
    expect(walk(vma, a).folio).toBeNull();
    const { folio, fw } = walk(vma, a, FW_MIGRATION);
    expect(folio).toBe(pa);
    expect(fw.page).toBeNull();
    expect(fw.level).toBe(FW_LEVEL_PTE);
    expect(walk(vma, a, FW_ZEROPAGE).folio).toBeNull();
    const dst = migrateFinish(m, mig);
    expect(walk(vma, a).folio).toBe(dst);
  });

  it('special (VM_PFNMAP) ptes are never walked, even when the pfn is a real frame', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 64 * MiB });
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 2 * 4096, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
    const vma = mm.vmaLookup(a)!;
    const frame = m.frames.alloc(0);
    mmapWriteLock(mm);
    try {
      expect(remapPfnRange(vma, a, frame / 4096, 4096, vma.vmPageProt)).toBe(0);
    } finally {
      mmapWriteUnlock(mm);
    }
    expect(walk(vma, a).folio).toBeNull();
    expect(walk(vma, a, FW_ZEROPAGE | FW_MIGRATION).folio).toBeNull();
  });

  it('an address outside the VMA gives null (WARN_ON_ONCE in Linux)', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 64 * MiB });
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 4096, RW, ANON | MAP_FIXED);
    const b = vmMmap(mm, 0x40001000, 4096, PROT_READ, ANON | MAP_FIXED);
    doUserAddrFault(mm, a, 'write');
    doUserAddrFault(mm, b, 'read');
    const vma = mm.vmaLookup(a)!;
    expect(walk(vma, a).folio).not.toBeNull();
    expect(walk(vma, b).folio).toBeNull();
    expect(walk(vma, a - 4096).folio).toBeNull();
  });
});

describe('folio_walk locking', () => {
  it('folio_walk_start without the mmap lock is a KernelAssertionError (mmap_assert_locked)', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 64 * MiB });
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 4096, RW, ANON | MAP_FIXED);
    doUserAddrFault(mm, a, 'write');
    expect(() => folioWalkStart(new FolioWalk(), mm.vmaLookup(a)!, a, 0)).toThrow(KernelAssertionError);
  });

  it('folio_walk_end without a successful start is a KernelAssertionError; twice too', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 64 * MiB });
    const mm = m.newMm();
    const a = vmMmap(mm, 0x40000000, 2 * 4096, RW, ANON | MAP_FIXED);
    doUserAddrFault(mm, a, 'write');
    const vma = mm.vmaLookup(a)!;
    locked(mm, () => {
      expect(() => folioWalkEnd(new FolioWalk(), vma)).toThrow(KernelAssertionError);
      const miss = new FolioWalk();
      expect(folioWalkStart(miss, vma, a + 4096, 0)).toBeNull();
      expect(() => folioWalkEnd(miss, vma)).toThrow(KernelAssertionError);
      const fw = new FolioWalk();
      expect(folioWalkStart(fw, vma, a, 0)).not.toBeNull();
      expect(fw.locked).toBe(true);
      folioWalkEnd(fw, vma);
      expect(fw.locked).toBe(false);
      expect(() => folioWalkEnd(fw, vma)).toThrow(KernelAssertionError);
    });
  });
});
