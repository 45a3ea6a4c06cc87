/**
 * Reverse mappings (mm/rmap.c): anon_vma objects and the folio_add/remove_*_rmap family that keep
 * map counts, plus rmap_walk, which finds every page-table entry mapping a folio.
 *
 * anon_vma model: each VMA that has anonymous pages owns an AnonVma; a forked child's VMA is chained
 * to every AnonVma of its parent's VMA and to its own (anon_vma_fork), so an anonymous folio — whose
 * mapping is the AnonVma of the VMA that created it — is found through every VMA that may map it,
 * as Linux's anon_vma_chain does. A file folio is found through its AddressSpace's i_mmap.
 */
import { PG_anon, PG_anon_exclusive, PG_swapbacked } from '../mem/framemeta';
import { AddressSpace } from './address-space';
import { FolioStateError, folioMapping, folioIndex, setFolioMapping, type FolioMapping } from './folio';
import type { Machine } from './machine';
import type { VmAreaStruct } from './vma';

export class AnonVma {
  /** VMAs chained to this anon_vma (the anon_vma_chain entries of its interval tree). */
  readonly vmas = new Set<VmAreaStruct>();
  /** anon_vma->root: the oldest ancestor's anon_vma, which every forked VMA is chained to. */
  readonly root: AnonVma;
  constructor(
    readonly name: string,
    root: AnonVma | null = null,
  ) {
    this.root = root ?? this;
  }
}

/** anon_vma_prepare: give the VMA its own anon_vma before its first anonymous page. */
export function anonVmaPrepare(vma: VmAreaStruct): AnonVma {
  if (vma.anonVma) return vma.anonVma;
  const av = new AnonVma(`anon_vma(${vma.name || vma.vmStart.toString(16)})`);
  vma.anonVma = av;
  vma.anonVmaChain.push(av);
  av.vmas.add(vma);
  return av;
}

/** anon_vma_fork / anon_vma_clone: the child VMA joins every anon_vma of its parent and gets its own. */
export function anonVmaFork(child: VmAreaStruct, parent: VmAreaStruct): void {
  if (!parent.anonVma) return;
  for (const av of parent.anonVmaChain) {
    child.anonVmaChain.push(av);
    av.vmas.add(child);
  }
  const own = new AnonVma(`anon_vma(${child.name || child.vmStart.toString(16)})`, parent.anonVma.root);
  child.anonVma = own;
  child.anonVmaChain.push(own);
  own.vmas.add(child);
}

/** anon_vma_clone for a VMA split: the new part shares exactly the chain of the old. */
export function anonVmaClone(dst: VmAreaStruct, src: VmAreaStruct): void {
  dst.anonVma = src.anonVma;
  for (const av of src.anonVmaChain) {
    dst.anonVmaChain.push(av);
    av.vmas.add(dst);
  }
}

/** unlink_anon_vmas: the VMA leaves every anon_vma it is chained to. */
export function unlinkAnonVmas(vma: VmAreaStruct): void {
  for (const av of vma.anonVmaChain) av.vmas.delete(vma);
  vma.anonVmaChain.length = 0;
  vma.anonVma = null;
}

/** linear_page_index(vma, address): the page index of address in the VMA's object. */
export function linearPageIndex(vma: VmAreaStruct, address: number): number {
  const pageSize = vma.vmMm.machine.geo.PAGE_SIZE;
  return (address - vma.vmStart) / pageSize + vma.vmPgoff;
}

/** vma_address(vma, pgoff): where page pgoff of the VMA's object is mapped, or -1 outside it. */
export function vmaAddress(vma: VmAreaStruct, pgoff: number): number {
  const pageSize = vma.vmMm.machine.geo.PAGE_SIZE;
  const addr = vma.vmStart + (pgoff - vma.vmPgoff) * pageSize;
  return addr >= vma.vmStart && addr < vma.vmEnd ? addr : -1;
}

// ---- adding and removing mappings ----------------------------------------------------------------

/**
 * folio_add_new_anon_rmap: a new anonymous folio mapped for the first time by one PTE (small
 * folio) or one PMD (whole folio); it becomes exclusive to this process (PageAnonExclusive).
 */
export function folioAddNewAnonRmap(
  m: Machine,
  folio: number,
  vma: VmAreaStruct,
  address: number,
  level: 'pte' | 'pmd' | 'pud' = 'pte',
  exclusive = true,
): void {
  const av = anonVmaPrepare(vma);
  const meta = m.meta;
  const h = meta.frameIndex(folio);
  // __folio_set_anon: a folio that may be shared (swapped in after fork) hangs off the root
  // anon_vma, which every related VMA is chained to.
  setFolioMapping(m, folio, exclusive ? av : av.root, linearPageIndex(vma, address));
  meta.flags[h] = meta.flags[h]! | (1 << PG_anon) | (1 << PG_swapbacked) | (exclusive ? 1 << PG_anon_exclusive : 0);
  if (level === 'pte') meta.mapcount[h] = meta.mapcount[h]! + 1;
  else meta.entireMapcount[h] = meta.entireMapcount[h]! + 1;
}

/** folio_add_anon_rmap_ptes / folio_add_file_rmap_ptes / folio_dup_*_rmap_ptes: nr more PTE mappings from page on. */
export function folioAddRmapPtes(m: Machine, page: number, nr = 1): void {
  const meta = m.meta;
  const step = m.geo.PAGE_SIZE;
  for (let k = 0; k < nr; k++) {
    const i = meta.frameIndex(page + k * step);
    meta.mapcount[i] = meta.mapcount[i]! + 1;
  }
}

/** folio_add_*_rmap_pmd / _pud: one more mapping of the whole folio. */
export function folioAddRmapEntire(m: Machine, folio: number): void {
  const i = m.meta.frameIndex(folio);
  m.meta.entireMapcount[i] = m.meta.entireMapcount[i]! + 1;
}

/** folio_remove_rmap_ptes: nr PTE mappings fewer, from page on. */
export function folioRemoveRmapPtes(m: Machine, page: number, nr = 1): void {
  const meta = m.meta;
  const step = m.geo.PAGE_SIZE;
  for (let k = 0; k < nr; k++) {
    const pa = page + k * step;
    const i = meta.frameIndex(pa);
    if (meta.mapcount[i]! <= 0) throw new FolioStateError(`Bad page map: mapcount of page 0x${pa.toString(16)} would drop below zero`);
    meta.mapcount[i] = meta.mapcount[i]! - 1;
  }
}

/** folio_remove_rmap_pmd / _pud. */
export function folioRemoveRmapEntire(m: Machine, folio: number): void {
  const i = m.meta.frameIndex(folio);
  if (m.meta.entireMapcount[i]! <= 0) throw new FolioStateError(`Bad page map: entire mapcount of folio 0x${folio.toString(16)} would drop below zero`);
  m.meta.entireMapcount[i] = m.meta.entireMapcount[i]! - 1;
}

// ---- rmap_walk ---------------------------------------------------------------------------------------

/**
 * rmap_walk: call fn(vma, address) for every VMA and address at which the folio's first page may be
 * mapped (the caller checks the page table: the VMA may not map it any more, or map a COW copy).
 * Anonymous folios through their anon_vma, file folios through the mapping's i_mmap.
 */
export function rmapWalk(m: Machine, folio: number, fn: (vma: VmAreaStruct, address: number) => boolean | void): void {
  const mapping: FolioMapping | null = folioMapping(m, folio);
  if (mapping === null) return;
  const index = folioIndex(m, folio);
  const vmas: Iterable<VmAreaStruct> =
    mapping instanceof AddressSpace ? mapping.overlapping(BigInt(index), BigInt(index)) : [...mapping.vmas].sort((a, b) => a.vmStart - b.vmStart);
  for (const vma of vmas) {
    const addr = vmaAddress(vma, index);
    if (addr < 0) continue;
    if (fn(vma, addr) === false) return;
  }
}
