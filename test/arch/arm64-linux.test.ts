/**
 * Linux 6.18's view of arm64 entries: predicates, accessors and constructors against the rules of
 * arch/arm64/include/asm/pgtable.h, pgtable-hwdef.h, pgtable-prot.h, pgalloc.h and the
 * protection_map of arch/arm64/mm/mmap.c. Every expected value is hand-computed hex.
 */
import { describe, expect, test } from 'vitest';
import { GEOMETRIES, type GeometryName } from '../../src/arch/geometry';
import { createArm64Bits } from '../../src/arch/arm64/index';
import type { ArchBits } from '../../src/arch/types';

const bits = (name: GeometryName): ArchBits => createArm64Bits(GEOMETRIES[name]);
const b4 = bits('arm64-4k-48');
const b4lpa2 = bits('arm64-4k-52');
const b16 = bits('arm64-16k-48');
const b16lpa2 = bits('arm64-16k-52');
const b64 = bits('arm64-64k-48');
const b64lpa = bits('arm64-64k-52');

/** The halves the hot path sees. */
function lohi(v: bigint): [number, number] {
  return [Number(v & 0xffffffffn), Number(v >> 32n)];
}
const on = <T>(f: (lo: number, hi: number) => T, v: bigint): T => f(...lohi(v));

// Hand-written Linux protections (4K, 48-bit, SH = inner shareable):
const PAGE_KERNEL = 0x0068000000000703n; // TYPE_PAGE|AF|SHARED|PXN|UXN|WRITE
const PAGE_SHARED = 0x0068000000000fc3n; // _PAGE_DEFAULT|USER|RDONLY|NG|PXN|UXN|WRITE
const PAGE_READONLY = 0x0060000000000fc3n;
const PAGE_NONE = 0x0060000000000f82n; // (_PAGE_DEFAULT & ~VALID)|PRESENT_INVALID|RDONLY|NG|PXN|UXN

describe('pte predicates (arch/arm64/include/asm/pgtable.h)', () => {
  test('pgtable.h pte_none: !pte_val — any set bit, in either half, makes it not none', () => {
    expect(on(b4.pteNone, 0n)).toBe(true);
    expect(on(b4.pteNone, 0x800n)).toBe(false);
    expect(on(b4.pteNone, 0x0000000100000000n)).toBe(false);
  });
  test('pgtable.h pte_present: pte_valid || pte_present_invalid (PTE_PRESENT_INVALID = PTE_NG, bit 11, with VALID clear)', () => {
    expect(on(b4.ptePresent, 0x0068000012345fc3n)).toBe(true); // valid
    expect(on(b4.ptePresent, 0x0060000012345f82n)).toBe(true); // PAGE_NONE: present-invalid
    expect(on(b4.ptePresent, 0x00000000000050c0n)).toBe(false); // swap entry: bits 1:0 and 11 clear
    expect(on(b4.ptePresent, 0x0000000012345002n)).toBe(false); // table bit alone is not VALID
  });
});

describe('pmd predicates (pgtable.h, Linux 6.18)', () => {
  const table = 0x0800000087654403n; // user table: PXNTable, table AF, 0b11
  const block = 0x0068000040200701n; // PAGE_KERNEL as a 2 MiB block (bits[1:0] = 0b01)
  const invalidBlock = 0x0068000040200f00n; // pmd_mkinvalid(block): VALID clear, PRESENT_INVALID set
  const swap = 0x00000000000050c0n;
  test('pgtable.h pmd_none: !pmd_val', () => {
    expect(on(b4.pmdNone, 0n)).toBe(true);
    expect(on(b4.pmdNone, swap)).toBe(false);
  });
  test('pgtable.h pmd_bad: !pmd_table, pmd_table = (val & PMD_TYPE_MASK) == PMD_TYPE_TABLE', () => {
    expect(on(b4.pmdBad, table)).toBe(false);
    expect(on(b4.pmdBad, block)).toBe(true);
    expect(on(b4.pmdBad, swap)).toBe(true);
    expect(on(b4.pmdBad, 0x0000000087654002n)).toBe(true); // 0b10: not a table
  });
  test('pgtable.h pmd_present: pte_present(pmd_pte(pmd))', () => {
    expect(on(b4.pmdPresent, table)).toBe(true);
    expect(on(b4.pmdPresent, block)).toBe(true);
    expect(on(b4.pmdPresent, invalidBlock)).toBe(true);
    expect(on(b4.pmdPresent, swap)).toBe(false);
  });
  test('pgtable.h pmd_leaf: pmd_present && !pmd_table', () => {
    expect(on(b4.pmdLeaf, block)).toBe(true);
    expect(on(b4.pmdLeaf, invalidBlock)).toBe(true);
    expect(on(b4.pmdLeaf, table)).toBe(false);
    expect(on(b4.pmdLeaf, swap)).toBe(false);
    expect(on(b4.pmdLeaf, 0n)).toBe(false);
  });
  test('pgtable.h pmd_trans_huge: present && !pmd_table(val | PTE_VALID) — present-invalid huge pmds count', () => {
    expect(on(b4.pmdTransHuge, block)).toBe(true);
    expect(on(b4.pmdTransHuge, invalidBlock)).toBe(true);
    expect(on(b4.pmdTransHuge, table)).toBe(false);
    expect(on(b4.pmdTransHuge, swap)).toBe(false);
    expect(on(b4.pmdTransHuge, 0n)).toBe(false);
    // VALID clear, PRESENT_INVALID set, table bit set: forcing VALID makes it a table.
    expect(on(b4.pmdTransHuge, 0x0000000087654802n)).toBe(false);
  });
});

describe('pud, p4d, pgd predicates (pgtable.h, Linux 6.18)', () => {
  const block1G = 0x00680000c0000701n;
  const table = 0x0800000087654403n;
  test('pgtable.h pud_bad: (val & PUD_TYPE_MASK) != PUD_TYPE_TABLE; pud_none: !val; pud_present: pte_present', () => {
    expect(on(b4.pudBad, table)).toBe(false);
    expect(on(b4.pudBad, block1G)).toBe(true);
    expect(on(b4.pudNone, 0n)).toBe(true);
    expect(on(b4.pudNone, block1G)).toBe(false);
    expect(on(b4.pudPresent, block1G)).toBe(true);
    expect(on(b4.pudPresent, 0x00680000c0000f00n)).toBe(true); // present-invalid
    expect(on(b4.pudPresent, 0x00000000000050c0n)).toBe(false);
  });
  test('pgtable.h pud_leaf: pud_present && !pud_table with the 4K granule (pud_sect_supported)', () => {
    expect(on(b4.pudLeaf, block1G)).toBe(true);
    expect(on(b4.pudLeaf, table)).toBe(false);
    expect(on(b4.pudLeaf, 0n)).toBe(false);
    expect(on(bits('arm64-4k-39').pudLeaf, block1G)).toBe(true);
  });
  test('pud_leaf is false where Linux makes no PUD leaves (16K, 64K: pud_sect_supported() is 4K only)', () => {
    expect(on(b16.pudLeaf, block1G)).toBe(false);
    expect(on(b64.pudLeaf, block1G)).toBe(false);
    expect(on(bits('arm64-16k-36').pudLeaf, block1G)).toBe(false);
  });
  test('pgtable.h p4d_none/p4d_bad/p4d_present (levels > 4): !val; type != P4D_TYPE_TABLE; !p4d_none', () => {
    expect(on(b4lpa2.p4dNone, 0n)).toBe(true);
    expect(on(b4lpa2.p4dPresent, 0n)).toBe(false);
    expect(on(b4lpa2.p4dBad, 0x0800000087654003n)).toBe(false);
    expect(on(b4lpa2.p4dBad, 0x0000000087654001n)).toBe(true);
    expect(on(b4lpa2.p4dBad, 0x0000000087654002n)).toBe(true);
    // p4d_present is !p4d_none in 6.18, not the VALID bit: a non-zero invalid entry is "present".
    expect(on(b4lpa2.p4dPresent, 0x0000000087654002n)).toBe(true);
  });
  test('pgtable.h pgd_none/pgd_bad/pgd_present (levels > 4): !val; type != PGD_TYPE_TABLE; !pgd_none', () => {
    expect(on(b4lpa2.pgdNone, 0n)).toBe(true);
    expect(on(b4lpa2.pgdBad, 0x0000000087654003n)).toBe(false);
    expect(on(b4lpa2.pgdBad, 0x0000000087654001n)).toBe(true);
    expect(on(b4lpa2.pgdPresent, 0x0000000087654001n)).toBe(true);
    expect(on(b4lpa2.pgdPresent, 0n)).toBe(false);
  });
});

describe('pgtable.h __pte_to_phys: tableAddr (p?d_page_paddr)', () => {
  test('4K: PTE_ADDR_LOW = bits[49:12]; SH (PTE_MAYBE_SHARED) is masked before the high bits are read', () => {
    expect(on(b4.tableAddr, 0x0800000087654403n)).toBe(0x87654000);
    expect(on(b4.tableAddr, 0x0003000087654003n)).toBe(0x3000087654000);
    expect(on(b4.tableAddr, 0x0000000087654303n)).toBe(0x87654000);
  });
  test('4K LPA2: bits[9:8] are PA[51:50] (PTE_ADDR_HIGH_SHIFT 42)', () => {
    expect(on(b4lpa2.tableAddr, 0x0000000087654303n)).toBe(0xc000087654000);
    expect(on(b4lpa2.tableAddr, 0x0000000100000103n)).toBe(0x4000100000000);
  });
  test('16K: bits[13:12] are not address; 16K LPA2 bits[9:8] are PA[51:50]', () => {
    expect(on(b16.tableAddr, 0x0000000087654003n)).toBe(0x87654000);
    expect(on(b16.tableAddr, 0x0000000087657003n)).toBe(0x87654000);
    expect(on(b16lpa2.tableAddr, 0x0000000087654203n)).toBe(0x8000087654000);
  });
  test('64K: bits[15:12] are PA[51:48] (PTE_ADDR_HIGH_SHIFT 36), in 6.18 whatever the PA size', () => {
    expect(on(b64.tableAddr, 0x0000000087650003n)).toBe(0x87650000);
    expect(on(b64.tableAddr, 0x0000000087653003n)).toBe(0x3000087650000);
    expect(on(b64lpa.tableAddr, 0x000012345678f403n)).toBe(0xf123456780000);
  });
});

describe('pgtable.h pte_pfn / pmd_pfn / pud_pfn: leafPfn in PAGE_SIZE units', () => {
  test('4K: pte 0x0068000012345FC3 → pfn 0x12345; pmd_pfn masks PMD_MASK; pud_pfn masks PUD_MASK', () => {
    expect(b4.leafPfn('pte', ...lohi(0x0068000012345fc3n))).toBe(0x12345);
    expect(b4.leafPfn('pmd', ...lohi(0x0068000040201701n))).toBe(0x40200); // RES0 bit 12 dropped
    expect(b4.leafPfn('pud', ...lohi(0x00680000c0000701n))).toBe(0xc0000);
  });
  test('16K: pfns count 16 KiB pages; a pmd block is 32 MiB', () => {
    expect(b16.leafPfn('pte', ...lohi(0x0000000048d14703n))).toBe(0x12345);
    expect(b16.leafPfn('pmd', ...lohi(0x0000000042000701n))).toBe(0x10800);
  });
  test('64K and 64K LPA: pfns count 64 KiB pages; LPA high bits included', () => {
    expect(b64.leafPfn('pte', ...lohi(0x0000000012340703n))).toBe(0x1234);
    expect(b64lpa.leafPfn('pte', ...lohi(0x000012345678f403n))).toBe(0xf12345678);
  });
  test('4K LPA2: 0x0003000012345703 → PA 0xF000012345000 → pfn 0xF000012345', () => {
    expect(b4lpa2.leafPfn('pte', ...lohi(0x0003000012345703n))).toBe(0xf000012345);
  });
});

describe('pte accessors (pgtable.h)', () => {
  test('pgtable.h pte_write: PTE_WRITE is DBM (bit 51)', () => {
    expect(on(b4.pteWrite, PAGE_SHARED)).toBe(true);
    expect(on(b4.pteWrite, PAGE_READONLY)).toBe(false);
  });
  test('pgtable.h pte_dirty: PTE_DIRTY (bit 55) || (PTE_WRITE && !PTE_RDONLY)', () => {
    expect(on(b4.pteDirty, PAGE_SHARED)).toBe(false); // writable-clean
    expect(on(b4.pteDirty, 0x0068000000000f43n)).toBe(true); // hardware dirty
    expect(on(b4.pteDirty, 0x00e0000000000fc3n)).toBe(true); // software dirty, read-only
    expect(on(b4.pteDirty, PAGE_READONLY)).toBe(false);
  });
  test('pgtable.h pte_young (AF), pte_user (AP[1]), pte_user_exec (!UXN), pte_special (bit 56), global = !nG', () => {
    expect(on(b4.pteYoung, PAGE_SHARED)).toBe(true);
    expect(on(b4.pteYoung, 0x0068000000000bc3n)).toBe(false);
    expect(on(b4.pteUser, PAGE_SHARED)).toBe(true);
    expect(on(b4.pteUser, PAGE_KERNEL)).toBe(false);
    expect(on(b4.pteExec, 0x0020000000000fc3n)).toBe(true); // PAGE_READONLY_EXEC
    expect(on(b4.pteExec, PAGE_READONLY)).toBe(false);
    expect(on(b4.pteSpecial, 0x0100000000000fc3n)).toBe(true);
    expect(on(b4.pteSpecial, PAGE_SHARED)).toBe(false);
    expect(on(b4.pteGlobal, PAGE_KERNEL)).toBe(true);
    expect(on(b4.pteGlobal, PAGE_SHARED)).toBe(false);
  });
});

describe('pgprot: pgtable-prot.h PAGE_* and mm/mmap.c protection_map', () => {
  test('pgtable-prot.h PAGE_KERNEL / _RO / _ROX / _EXEC (4K, 48-bit)', () => {
    expect(b4.pgprot({ write: true })).toBe(0x0068000000000703n);
    expect(b4.pgprot({})).toBe(0x0060000000000783n);
    expect(b4.pgprot({ exec: true })).toBe(0x0040000000000783n);
    expect(b4.pgprot({ write: true, exec: true })).toBe(0x0048000000000703n);
  });
  test('pgtable-prot.h PAGE_READONLY / PAGE_SHARED / *_EXEC / PAGE_NONE for user protections', () => {
    expect(b4.pgprot({ user: true })).toBe(0x0060000000000fc3n);
    expect(b4.pgprot({ user: true, write: true })).toBe(0x0068000000000fc3n);
    expect(b4.pgprot({ user: true, exec: true })).toBe(0x0020000000000fc3n);
    expect(b4.pgprot({ user: true, write: true, exec: true })).toBe(0x0028000000000fc3n);
    expect(b4.pgprot({ user: true, read: false })).toBe(0x0060000000000f82n);
    // mmap.c protection_map[VM_EXEC] = PAGE_READONLY_EXEC without Enhanced PAN.
    expect(b4.pgprot({ user: true, read: false, exec: true })).toBe(0x0020000000000fc3n);
  });
  test('pgtable.h pte_mkdirty on a writable pte clears PTE_RDONLY; pte_mkold clears AF', () => {
    expect(b4.pgprot({ user: true, write: true, dirty: true })).toBe(0x00e8000000000f43n);
    expect(b4.pgprot({ user: true, dirty: true })).toBe(0x00e0000000000fc3n);
    expect(b4.pgprot({ user: true, young: false })).toBe(0x0060000000000bc3n);
    expect(b4.pgprot({ write: true, young: false })).toBe(0x0068000000000303n);
  });
  test('pgtable.h pgprot_device / pgprot_noncached / pgprot_writecombine: AttrIndx 4 / 3 / 2 and XN', () => {
    expect(b4.pgprot({ write: true, memType: 'device' })).toBe(0x0068000000000713n);
    expect(b4.pgprot({ write: true, memType: 'uncached' })).toBe(0x006800000000070fn);
    expect(b4.pgprot({ user: true, write: true, memType: 'wc' })).toBe(0x0068000000000fcbn);
    expect(b4.pgprot({ user: true, exec: true, memType: 'device' })).toBe(0x0060000000000fd3n);
  });
  test('global: user pages are nG unless asked; kernel pages are global unless asked (PTE_MAYBE_NG)', () => {
    expect(b4.pgprot({ user: true, global: true })).toBe(0x00600000000007c3n);
    expect(b4.pgprot({ write: true, global: false })).toBe(0x0068000000000f03n);
  });
  test('LPA2: PTE_MAYBE_SHARED is 0 and adjust_protection_map() strips PTE_SHARED (SH lives in TCR_EL1)', () => {
    expect(b4lpa2.pgprot({ user: true, write: true })).toBe(0x0068000000000cc3n);
    expect(b4lpa2.pgprot({ write: true })).toBe(0x0068000000000403n);
    expect(b4lpa2.pgprot({ user: true, read: false })).toBe(0x0060000000000c82n);
    expect(b16lpa2.pgprot({ user: true })).toBe(0x0060000000000cc3n);
  });
  test('16K and 64K use the same protection bits as 4K', () => {
    expect(b16.pgprot({ user: true, write: true })).toBe(0x0068000000000fc3n);
    expect(b64lpa.pgprot({ write: true })).toBe(0x0068000000000703n);
  });
});

describe('pgtable.h pfn_pte / pfn_pmd + pmd_mkhuge / pfn_pud + pud_mkhuge', () => {
  test('pfn_pte: __phys_to_pte_val(pfn << PAGE_SHIFT) | prot for 4K, 16K, 64K', () => {
    expect(b4.pfnPte(0x12345, PAGE_KERNEL)).toBe(0x0068000012345703n);
    expect(b16.pfnPte(0x12345, PAGE_KERNEL)).toBe(0x0068000048d14703n);
    expect(b64.pfnPte(0x1234, PAGE_KERNEL)).toBe(0x0068000012340703n);
  });
  test('pfn_pte with LPA2: PA 0xF000012345000 → bits[49:12] in place, PA[51:50] in bits[9:8]', () => {
    expect(b4lpa2.pfnPte(0xf000012345, 0x0068000000000403n)).toBe(0x006b000012345703n);
  });
  test('pfn_pte with 64K LPA: PA[51:48] in bits[15:12]; Linux 6.18 PTE_ADDR_LOW (bits 49:16) also keeps PA[49:48]', () => {
    const v = b64lpa.pfnPte(0xf12345678, PAGE_KERNEL);
    expect(v).toBe(0x006b12345678f703n);
    expect(b64lpa.leafPfn('pte', ...lohi(v))).toBe(0xf12345678);
    // The hardware view flags the RES0 bits[49:48] Linux wrote.
    expect(b64lpa.decode(v, 3).reason).toMatch(/res0_48/);
  });
  test('an address beyond the 48-bit OA of a non-52-bit configuration never reaches SH[1:0]', () => {
    expect(b4.pfnPte(2 ** 40 - 1, 0n)).toBe(0x0000fffffffff000n);
  });
  test('pfn_pte rejects what is not a page frame number', () => {
    expect(() => b4.pfnPte(-1, 0n)).toThrow(RangeError);
    expect(() => b4.pfnPte(1.5, 0n)).toThrow(RangeError);
    expect(() => b4.pfnPte(2 ** 40, 0n)).toThrow(RangeError);
  });
  test('pmd_mkhuge / pud_mkhuge: bits[1:0] 0b11 → 0b01, VALID untouched (present-invalid stays so)', () => {
    expect(b4.pfnHuge('pmd', 0x40200, PAGE_KERNEL)).toBe(0x0068000040200701n);
    expect(b4.pfnHuge('pud', 0xc0000, PAGE_KERNEL)).toBe(0x00680000c0000701n);
    const none = b4.pfnHuge('pmd', 0x40200, PAGE_NONE);
    expect(none).toBe(0x0060000040200f80n);
    expect(on(b4.pmdPresent, none)).toBe(true);
    expect(on(b4.pmdTransHuge, none)).toBe(true);
  });
  test('pfnHuge("pud") where Linux has no PUD leaves is an error', () => {
    expect(() => b16.pfnHuge('pud', 0x100, PAGE_KERNEL)).toThrow(/no PUD leaves/);
    expect(() => b64.pfnHuge('pud', 0x100, PAGE_KERNEL)).toThrow(RangeError);
  });
});

describe('pgalloc.h p?d_populate: mkTable', () => {
  test('pgalloc.h pmd_populate: PMD_TYPE_TABLE | PMD_TABLE_AF | PMD_TABLE_PXN (user); _kernel: PMD_TABLE_UXN', () => {
    expect(b4.mkTable('pmd', 0x87654000, true)).toBe(0x0800000087654403n);
    expect(b4.mkTable('pmd', 0x87654000, false)).toBe(0x1000000087654403n);
  });
  test('pgalloc.h pud/p4d/pgd_populate use the same type, AF and XN-table bits', () => {
    expect(b4lpa2.mkTable('pud', 0x1000, true)).toBe(0x0800000000001403n);
    expect(b4lpa2.mkTable('p4d', 0x1000, false)).toBe(0x1000000000001403n);
    expect(b4lpa2.mkTable('pgd', 0x1000, true)).toBe(0x0800000000001403n);
  });
  test('52-bit table addresses: LPA2 PA[51:50] in bits[9:8]; 64K LPA PA[51:48] in bits[15:12]', () => {
    expect(b4lpa2.mkTable('pmd', 0x4000100000000, true)).toBe(0x0800000100000503n);
    expect(on(b4lpa2.tableAddr, 0x0800000100000503n)).toBe(0x4000100000000);
    const t = b64lpa.mkTable('pmd', 0x3000012340000, true);
    expect(t).toBe(0x0803000012343403n);
    expect(on(b64lpa.tableAddr, t)).toBe(0x3000012340000);
  });
  test('mkTable misuse: a pte level, an unaligned or out-of-range address', () => {
    expect(() => b4.mkTable('pte', 0x1000, true)).toThrow(RangeError);
    expect(() => b4.mkTable('pmd', 0x1800, true)).toThrow(RangeError);
    expect(() => b16.mkTable('pmd', 0x1000, true)).toThrow(RangeError); // not 16K-aligned
    expect(() => b4.mkTable('pmd', 2 ** 48, true)).toThrow(RangeError);
  });
});

describe('pgtable.h swap entries: type in bits 10:6 (__SWP_TYPE_SHIFT 6), offset in bits 61:12', () => {
  test('__swp_entry(3, 5) is 0x50C0: not none, not present', () => {
    const v = b4.mkSwapPte(3, 5);
    expect(v).toBe(0x00000000000050c0n);
    expect(on(b4.pteNone, v)).toBe(false);
    expect(on(b4.ptePresent, v)).toBe(false);
    expect(b4.swapType(...lohi(v))).toBe(3);
    expect(b4.swapOffset(...lohi(v))).toBe(5);
  });
  test('the largest entry: type 31, offset 2^50 - 1 → 0x3FFFFFFFFFFFF7C0, and back', () => {
    const v = b64.mkSwapPte(31, 2 ** 50 - 1);
    expect(v).toBe(0x3ffffffffffff7c0n);
    expect(b64.swapType(...lohi(v))).toBe(31);
    expect(b64.swapOffset(...lohi(v))).toBe(2 ** 50 - 1);
    expect(on(b64.ptePresent, v)).toBe(false);
  });
  test('round trip across the offset halves', () => {
    for (const [type, offset] of [
      [0, 1],
      [17, 0xfffff],
      [1, 0x100000],
      [30, 0x123456789ab],
    ] as const) {
      const [lo, hi] = lohi(b16.mkSwapPte(type, offset));
      expect([b16.swapType(lo, hi), b16.swapOffset(lo, hi)]).toEqual([type, offset]);
    }
  });
  test('a type or offset that does not fit is an error', () => {
    expect(() => b4.mkSwapPte(32, 0)).toThrow(RangeError);
    expect(() => b4.mkSwapPte(0, 2 ** 50)).toThrow(RangeError);
  });
});

describe('pteModify: pte_mkyoung/mkold, pte_mkdirty/mkclean, pte_mkwrite_novma/pte_wrprotect (pgtable.h)', () => {
  const clean = 0x0068000012345fc3n; // writable-clean: WRITE with RDONLY
  const hwDirty = 0x0068000012345f43n;
  test('pgtable.h pte_mkdirty: PTE_DIRTY, and a writable pte loses PTE_RDONLY', () => {
    expect(b4.pteModify(clean, { dirty: true })).toBe(0x00e8000012345f43n);
  });
  test('pgtable.h pte_mkclean: PTE_DIRTY cleared, PTE_RDONLY set', () => {
    expect(b4.pteModify(0x00e8000012345f43n, { dirty: false })).toBe(clean);
  });
  test('pgtable.h pte_wrprotect: hardware dirtiness moves to PTE_DIRTY before PTE_WRITE goes', () => {
    expect(b4.pteModify(hwDirty, { write: false })).toBe(0x00e0000012345fc3n);
    expect(b4.pteModify(clean, { write: false })).toBe(0x0060000012345fc3n);
  });
  test('pgtable.h pte_mkwrite_novma (6.18): PTE_WRITE; PTE_RDONLY cleared only for a software-dirty pte', () => {
    expect(b4.pteModify(0x0060000012345fc3n, { write: true })).toBe(clean);
    expect(b4.pteModify(0x00e0000012345fc3n, { write: true })).toBe(0x00e8000012345f43n);
  });
  test('pgtable.h pte_mkold / pte_mkyoung toggle AF only', () => {
    expect(b4.pteModify(clean, { young: false })).toBe(0x0068000012345bc3n);
    expect(b4.pteModify(0x0068000012345bc3n, { young: true })).toBe(clean);
  });
  test('combined: write + dirty on a read-only clean pte gives a hardware-dirty writable pte', () => {
    expect(b4.pteModify(0x0060000012345fc3n, { write: true, dirty: true })).toBe(0x00e8000012345f43n);
  });
});

describe('the contract surface', () => {
  test('physAddrBits: 48 without LPA/LPA2, 52 with', () => {
    expect(b4.physAddrBits).toBe(48);
    expect(b64.physAddrBits).toBe(48);
    expect(b4lpa2.physAddrBits).toBe(52);
    expect(b16lpa2.physAddrBits).toBe(52);
    expect(b64lpa.physAddrBits).toBe(52);
  });
  test('createArm64Bits refuses an x86-64 geometry', () => {
    expect(() => createArm64Bits(GEOMETRIES['x86_64-4level'])).toThrow(RangeError);
  });
});
