/**
 * Splitting a leaf into a table of equivalent smaller leaves (what __split_huge_pmd /
 * __split_huge_pud leave behind): entry i of the new table maps the leaf's address + i × span with
 * the same attributes, re-encoded in the smaller format.
 */
import type { ArchBits } from './types';

const X86_PSE = 1n << 7n;
const X86_PAT_4K = 1n << 7n;
const X86_PAT_LARGE = 1n << 12n;
const X86_ADDR_LARGE = ((1n << 52n) - 1n) & ~((1n << 13n) - 1n); // bits 51:13 of a 2M/1G leaf
const ARM_TABLE_OR_PAGE = 1n << 1n;

/**
 * The entries that replace a leaf at `level`: returns a function from index to the child entry.
 * pmd → ptes (PTRS_PER_PTE of them), pud → pmd leaves (PTRS_PER_PMD).
 */
export function splitLeaf(bits: ArchBits, level: 'pud' | 'pmd', value: bigint): (i: number) => bigint {
  const g = bits.geometry;
  const lo = Number(value & 0xffffffffn);
  const hi = Number(value >> 32n);
  const pfn = bits.leafPfn(level, lo, hi);
  if (g.arch === 'x86_64') {
    if (level === 'pmd') {
      // pgprot_large_2_4k: PAT moves from bit 12 back to bit 7, where PSE was.
      let prot = value & ~X86_ADDR_LARGE & ~X86_PAT_LARGE & ~X86_PSE;
      if ((value & X86_PAT_LARGE) !== 0n) prot |= X86_PAT_4K;
      return (i) => bits.pfnPte(pfn + i, prot);
    }
    // pud → 2M leaves: PSE and the large-page PAT bit 12 stay; only the address changes.
    const prot = value & ~X86_ADDR_LARGE;
    const step = g.PMD_SIZE / g.PAGE_SIZE;
    return (i) => bits.pfnPte(pfn + i * step, prot);
  }
  const oaMask = bits.pfnPte(2 ** (52 - g.PAGE_SHIFT) - 1, 0n);
  const prot = value & ~oaMask;
  if (level === 'pmd') {
    // A block (bits[1:0] = 0b01) becomes a page (0b11) at level 3.
    const pageProt = prot | ARM_TABLE_OR_PAGE;
    return (i) => bits.pfnPte(pfn + i, pageProt);
  }
  const step = g.PMD_SIZE / g.PAGE_SIZE;
  return (i) => prot | bits.pfnPte(pfn + i * step, 0n);
}

/** A non-present (swap/migration) pmd splits into ptes with offsets offset, offset + 1, … */
export function splitSwap(bits: ArchBits, value: bigint): (i: number) => bigint {
  const lo = Number(value & 0xffffffffn);
  const hi = Number(value >> 32n);
  const type = bits.swapType(lo, hi);
  const offset = bits.swapOffset(lo, hi);
  return (i) => bits.mkSwapPte(type, offset + i);
}
