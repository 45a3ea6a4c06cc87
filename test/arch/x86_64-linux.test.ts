/**
 * The Linux view of x86-64 entries (6.18): each predicate against the rule in its header, with
 * hand-made entry values. Expected hex is written by hand from the _PAGE_* bit positions.
 */
import { describe, expect, it } from 'vitest';
import { GEOMETRIES } from '../../src/arch/geometry';
import {
  _KERNPG_TABLE,
  _PAGE_NX_HI,
  _PAGE_PRESENT,
  _PAGE_SAVED_DIRTY,
  _PAGE_TABLE,
  createX86Bits,
  PAGE_NONE,
} from '../../src/arch/x86_64';

const x86 = createX86Bits(GEOMETRIES['x86_64-5level']);
const x86NoNx = createX86Bits(GEOMETRIES['x86_64-4level'], { nxe: false });

/** (lo, hi) halves of a 64-bit entry, as the walker reads them. */
function halves(v: bigint): [number, number] {
  return [Number(v & 0xffff_ffffn), Number(v >> 32n)];
}

describe('the named bits', () => {
  it('arch/x86/include/asm/pgtable_types.h: _PAGE_TABLE, _KERNPG_TABLE, PAGE_NONE', () => {
    expect(_PAGE_TABLE).toBe(0x67n); // PRESENT|RW|USER|ACCESSED|DIRTY
    expect(_KERNPG_TABLE).toBe(0x63n); // PRESENT|RW|ACCESSED|DIRTY
    expect(PAGE_NONE).toBe(0x120n); // ACCESSED|PROTNONE(=GLOBAL, bit 8)
    expect(_PAGE_SAVED_DIRTY).toBe(0x0400_0000_0000_0000n); // _PAGE_BIT_SOFTW5 = 58
    expect(_PAGE_NX_HI).toBe(0x8000_0000);
  });
});

describe('none: the Knights Landing erratum bits are ignored', () => {
  const levels = [
    ['pte_none', x86.pteNone],
    ['pmd_none', x86.pmdNone],
    ['pud_none', x86.pudNone],
    ['p4d_none', x86.p4dNone],
  ] as const;
  for (const [name, none] of levels) {
    it(`arch/x86/include/asm/pgtable.h ${name}: !(val & ~_PAGE_KNL_ERRATUM_MASK)`, () => {
      expect(none(0, 0)).toBe(true);
      expect(none(0x60, 0)).toBe(true); // stray A|D in an empty entry
      expect(none(0x20, 0)).toBe(true);
      expect(none(0x40, 0)).toBe(true);
      expect(none(0x1, 0)).toBe(false);
      expect(none(0x100, 0)).toBe(false); // PROTNONE
      expect(none(0x80, 0)).toBe(false);
      expect(none(0x1000, 0)).toBe(false);
      expect(none(0, 0x8000_0000)).toBe(false); // NX alone
      expect(none(0, 0x1)).toBe(false); // address bit 32
    });
  }

  it('arch/x86/include/asm/pgtable.h pgd_none (5-level): !native_pgd_val(pgd), no erratum mask', () => {
    expect(x86.pgdNone(0, 0)).toBe(true);
    expect(x86.pgdNone(0x60, 0)).toBe(false);
    expect(x86.pgdNone(0, 0x8000_0000)).toBe(false);
  });
});

describe('present', () => {
  it('arch/x86/include/asm/pgtable.h pte_present: _PAGE_PRESENT | _PAGE_PROTNONE', () => {
    expect(x86.ptePresent(0x1, 0)).toBe(true);
    expect(x86.ptePresent(0x120, 0)).toBe(true); // PAGE_NONE: P clear, still present to Linux
    expect(x86.ptePresent(0x100, 0)).toBe(true);
    expect(x86.ptePresent(0x80, 0)).toBe(false); // PSE does not count for a pte
    expect(x86.ptePresent(0x60, 0)).toBe(false);
    expect(x86.ptePresent(0xfffffe00, 0x07ffffff)).toBe(false); // a swap pte
  });

  it('arch/x86/include/asm/pgtable.h pmd_present: _PAGE_PRESENT | _PAGE_PROTNONE | _PAGE_PSE', () => {
    expect(x86.pmdPresent(0x1, 0)).toBe(true);
    expect(x86.pmdPresent(0x100, 0)).toBe(true);
    expect(x86.pmdPresent(0x80, 0)).toBe(true); // split_huge_page clears P, keeps PSE
    expect(x86.pmdPresent(0x7e, 0xffffffff)).toBe(false);
  });

  it('arch/x86/include/asm/pgtable.h pud_present, p4d_present, pgd_present: _PAGE_PRESENT only', () => {
    for (const present of [x86.pudPresent, x86.p4dPresent, x86.pgdPresent]) {
      expect(present(0x1, 0)).toBe(true);
      expect(present(0x63, 0)).toBe(true);
      expect(present(0x100, 0)).toBe(false);
      expect(present(0x80, 0)).toBe(false);
      expect(present(0x62, 0xffffffff)).toBe(false);
    }
  });
});

describe('bad', () => {
  it('arch/x86/include/asm/pgtable.h pmd_bad: (flags & ~(USER|ACCESSED)) != (_KERNPG_TABLE & ~ACCESSED)', () => {
    expect(x86.pmdBad(0x0123_4067, 0)).toBe(false); // user table (_PAGE_TABLE)
    expect(x86.pmdBad(0x0123_4063, 0)).toBe(false); // kernel table
    expect(x86.pmdBad(0x0123_4043, 0)).toBe(false); // A cleared by the non-leaf young scan
    expect(x86.pmdBad(0xffff_f067, 0x000f_ffff)).toBe(false); // address bits are not flags
    expect(x86.pmdBad(0x0123_4023, 0)).toBe(true); // D missing
    expect(x86.pmdBad(0x0123_4065, 0)).toBe(true); // RW missing
    expect(x86.pmdBad(0x0020_00e7, 0)).toBe(true); // a 2M leaf (PSE)
    expect(x86.pmdBad(0x0123_4067, 0x8000_0000)).toBe(true); // NX is a flag
    expect(x86.pmdBad(0x0123_4267, 0)).toBe(true); // software bit 9
    expect(x86.pmdBad(0x0123_4067, 0x0400_0000)).toBe(true); // bit 58
  });

  it('arch/x86/include/asm/pgtable.h pud_bad: (flags & ~(_KERNPG_TABLE | USER)) != 0', () => {
    expect(x86.pudBad(0x0123_4067, 0)).toBe(false);
    expect(x86.pudBad(0x0123_4063, 0)).toBe(false);
    expect(x86.pudBad(0x0123_4021, 0)).toBe(false); // any subset of the table bits
    expect(x86.pudBad(0x4000_00e7, 0)).toBe(true); // a 1G leaf
    expect(x86.pudBad(0x0123_4167, 0)).toBe(true); // G
    expect(x86.pudBad(0x0123_4077, 0)).toBe(true); // PCD
    expect(x86.pudBad(0x0123_4067, 0x8000_0000)).toBe(true); // NX
  });

  it('arch/x86/include/asm/pgtable.h p4d_bad: (flags & ~(_KERNPG_TABLE | USER)) != 0, NX counts with PTI off', () => {
    expect(x86.p4dBad(0x0123_4067, 0)).toBe(false);
    expect(x86.p4dBad(0x0123_4001, 0)).toBe(false);
    expect(x86.p4dBad(0x0123_4067, 0x8000_0000)).toBe(true);
    expect(x86.p4dBad(0x0123_40e7, 0)).toBe(true);
    expect(x86.p4dBad(0x0123_4867, 0)).toBe(true); // bit 11
  });

  it('arch/x86/include/asm/pgtable.h pgd_bad (5-level): (flags & ~USER) != _KERNPG_TABLE', () => {
    expect(x86.pgdBad(0x0123_4067, 0)).toBe(false);
    expect(x86.pgdBad(0x0123_4063, 0)).toBe(false);
    expect(x86.pgdBad(0x0123_4023, 0)).toBe(true); // D missing: stricter than p4d_bad
    expect(x86.pgdBad(0x0123_4043, 0)).toBe(true); // A missing
    expect(x86.pgdBad(0x0123_4067, 0x8000_0000)).toBe(true);
    expect(x86.pgdBad(0x0123_4167, 0)).toBe(true);
  });
});

describe('leaves', () => {
  it('arch/x86/include/asm/pgtable.h pmd_leaf: _PAGE_PSE', () => {
    expect(x86.pmdLeaf(0x0020_00e7, 0)).toBe(true);
    expect(x86.pmdLeaf(0x0020_01a0, 0)).toBe(true); // PROT_NONE huge pmd
    expect(x86.pmdLeaf(0x0123_4067, 0)).toBe(false);
  });

  it('arch/x86/include/asm/pgtable.h pud_leaf (6.12+): _PAGE_PSE alone, so a PROT_NONE 1G leaf counts', () => {
    expect(x86.pudLeaf(0x4000_00e7, 0)).toBe(true);
    expect(x86.pudLeaf(0x4000_01a0, 0)).toBe(true); // PSE|PROTNONE|A, P clear
    expect(x86.pudLeaf(0x0123_4067, 0)).toBe(false);
    expect(x86.pudLeaf(0x1, 0)).toBe(false);
  });

  it('arch/x86/include/asm/pgtable.h pmd_trans_huge (6.18, no _PAGE_DEVMAP): _PAGE_PSE', () => {
    expect(x86.pmdTransHuge(0x0020_00e7, 0)).toBe(true);
    expect(x86.pmdTransHuge(0x0020_00e7, 0x0200_0000)).toBe(true); // bit 57, once _PAGE_DEVMAP, means nothing now
    expect(x86.pmdTransHuge(0x0123_4067, 0)).toBe(false);
  });
});

describe('addresses', () => {
  it('arch/x86/include/asm/pgtable_types.h PTE_PFN_MASK: tableAddr is bits 51:12, exact above 2^32', () => {
    expect(x86.tableAddr(0xffff_f067, 0x000f_ffff)).toBe(0x000f_ffff_ffff_f000);
    expect(x86.tableAddr(0xffff_ffff, 0xffff_ffff)).toBe(0x000f_ffff_ffff_f000); // NX and 62:52 dropped
    expect(x86.tableAddr(0x0000_1067, 0x0000_0001)).toBe(0x1_0000_1000);
  });

  it('arch/x86/include/asm/pgtable.h pte_pfn / pmd_pfn / pud_pfn: bits 51:12 / 51:21 / 51:30, as a 4K pfn', () => {
    expect(x86.leafPfn('pte', 0xffff_f067, 0x800f_ffff)).toBe(0xff_ffff_ffff);
    // 2M leaf with PAT (bit 12) and junk in 20:13: neither is address.
    expect(x86.leafPfn('pmd', 0xffff_f0e7, 0x000f_ffff)).toBe(0xff_ffff_fe00);
    expect(x86.leafPfn('pud', 0xffff_f0e7, 0x000f_ffff)).toBe(0xff_fffc_0000);
    expect(x86.leafPfn('pmd', 0x4020_10e7, 0)).toBe(0x4_0200);
  });

  it('arch/x86/include/asm/pgtable-invert.h: a PROT_NONE entry holds its pfn inverted, pte_pfn undoes it', () => {
    // pfn_pte(0x12345, PAGE_NONE): ~0x12345000 within bits 51:12, | 0x120.
    expect(x86.pfnPte(0x12345, PAGE_NONE)).toBe(0x000f_ffff_edcb_a120n);
    expect(x86.leafPfn('pte', 0xedcb_a120, 0x000f_ffff)).toBe(0x12345);
    expect(x86.ptePresent(0xedcb_a120, 0x000f_ffff)).toBe(true);
  });
});

describe('pte accessors', () => {
  it('arch/x86/include/asm/pgtable.h pte_write, pte_young, pte_exec, pte_global, pte_special, _PAGE_USER', () => {
    expect(x86.pteWrite(0x3, 0)).toBe(true);
    expect(x86.pteWrite(0x1, 0)).toBe(false);
    expect(x86.pteYoung(0x21, 0)).toBe(true);
    expect(x86.pteYoung(0x41, 0)).toBe(false);
    expect(x86.pteExec(0x1, 0)).toBe(true);
    expect(x86.pteExec(0x1, 0x8000_0000)).toBe(false);
    expect(x86.pteUser(0x5, 0)).toBe(true);
    expect(x86.pteUser(0x3, 0)).toBe(false);
    expect(x86.pteGlobal(0x101, 0)).toBe(true);
    expect(x86.pteGlobal(0x1, 0)).toBe(false);
    expect(x86.pteSpecial(0x201, 0)).toBe(true); // _PAGE_BIT_SOFTW1
    expect(x86.pteSpecial(0x401, 0)).toBe(false);
  });

  it('arch/x86/include/asm/pgtable.h pte_dirty: _PAGE_DIRTY_BITS = DIRTY | SAVED_DIRTY (bit 58)', () => {
    expect(x86.pteDirty(0x41, 0)).toBe(true);
    expect(x86.pteDirty(0x1, 0x0400_0000)).toBe(true);
    expect(x86.pteDirty(0x1, 0)).toBe(false);
    expect(x86.pteDirty(0x1, 0x0200_0000)).toBe(false); // bit 57 is not a dirty bit
  });
});

describe('constructors', () => {
  it('arch/x86/include/asm/pgtable_types.h protection_map: pgprot for common protections', () => {
    expect(x86.pgprot({ user: true })).toBe(0x8000_0000_0000_0025n); // PAGE_READONLY
    expect(x86.pgprot({ user: true, write: true })).toBe(0x8000_0000_0000_0027n); // PAGE_SHARED
    expect(x86.pgprot({ user: true, write: true, exec: true })).toBe(0x27n); // PAGE_SHARED_EXEC
    expect(x86.pgprot({ user: true, exec: true })).toBe(0x25n); // PAGE_READONLY_EXEC
    expect(x86.pgprot({ user: true, read: false, exec: true })).toBe(0x25n); // no exec-only pages
    expect(x86.pgprot({ read: false })).toBe(0x120n); // PAGE_NONE
    expect(x86.pgprot({ write: true, global: true, dirty: true })).toBe(0x8000_0000_0000_0163n); // PAGE_KERNEL
    expect(x86.pgprot({ user: true, write: true, young: false })).toBe(0x8000_0000_0000_0007n);
  });

  it('arch/x86/mm/pat/memtype.c PAT setup: WC is slot 1 (PWT), UC slot 3 (PCD|PWT)', () => {
    expect(x86.pgprot({ user: true, write: true, memType: 'wc' })).toBe(0x8000_0000_0000_002fn);
    expect(x86.pgprot({ write: true, memType: 'uncached' })).toBe(0x8000_0000_0000_003bn);
    expect(x86.pgprot({ write: true, memType: 'device' })).toBe(0x8000_0000_0000_003bn);
    expect(x86.pgprot({ write: true, memType: 'normal' })).toBe(0x8000_0000_0000_0023n);
  });

  it('arch/x86/mm/pgprot.c vm_get_page_prot: pkey bits 62:59; NX only with EFER.NXE', () => {
    expect(x86.pgprot({ user: true, write: true, pkey: 5 })).toBe(0xa800_0000_0000_0027n);
    expect(x86NoNx.pgprot({ user: true, write: true })).toBe(0x27n);
    expect(() => x86.pgprot({ pkey: 16 })).toThrow(RangeError);
  });

  it('arch/x86/include/asm/pgtable_types.h _PAGE_SAVED_DIRTY: a dirty read-only pgprot never reads Write=0,Dirty=1', () => {
    expect(x86.pgprot({ user: true, dirty: true })).toBe(0x8400_0000_0000_0025n);
  });

  it('arch/x86/include/asm/pgtable.h pfn_pte: pfn << 12 | pgprot (massaged)', () => {
    expect(x86.pfnPte(0x12345, 0x8000_0000_0000_0027n)).toBe(0x8000_0000_1234_5027n);
    expect(x86.pfnPte(0xff_ffff_ffff, 0x63n)).toBe(0x000f_ffff_ffff_f063n);
    expect(x86NoNx.pfnPte(1, 0x8000_0000_0000_0027n)).toBe(0x1027n); // __supported_pte_mask drops NX
    expect(() => x86.pfnPte(1, 0x1000n)).toThrow(RangeError); // a pgprot with frame bits
    expect(() => x86.pfnPte(2 ** 40, 0x1n)).toThrow(RangeError);
  });

  it('arch/x86/include/asm/pgtable_types.h pgprot_4k_2_large: pfnHuge moves PAT from bit 7 to bit 12 and sets PSE', () => {
    // WT in Linux's PAT setup is slot 7: PAT|PCD|PWT = 0x98 in a 4K pgprot.
    expect(x86.pfnHuge('pmd', 0x200, 0x8000_0000_0000_00bfn)).toBe(0x8000_0000_0020_10bfn);
    expect(x86.pfnHuge('pud', 0x4_0000, 0x8000_0000_0000_0063n)).toBe(0x8000_0000_4000_00e3n);
    expect(x86.pfnHuge('pud', 0xff_fffc_0000, 0x63n)).toBe(0x000f_ffff_c000_00e3n);
    expect(() => x86.pfnHuge('pmd', 0x201, 0x63n)).toThrow(/aligned/);
    expect(() => x86.pfnHuge('pud', 0x200, 0x63n)).toThrow(/aligned/);
  });

  it('arch/x86/include/asm/pgtable-invert.h: a PROT_NONE huge pmd is inverted too, and still a present leaf to Linux', () => {
    const v = x86.pfnHuge('pmd', 0x200, PAGE_NONE);
    expect(v).toBe(0x000f_ffff_ffc0_01a0n);
    const [lo, hi] = halves(v);
    expect(x86.pmdPresent(lo, hi)).toBe(true);
    expect(x86.pmdLeaf(lo, hi)).toBe(true);
    expect(x86.leafPfn('pmd', lo, hi)).toBe(0x200);
  });

  it('arch/x86/include/asm/pgalloc.h p?d_populate: _PAGE_TABLE for user tables, _KERNPG_TABLE for kernel ones', () => {
    expect(x86.mkTable('pmd', 0x123_4000, true)).toBe(0x123_4067n);
    expect(x86.mkTable('pud', 0x123_4000, false)).toBe(0x123_4063n);
    expect(x86.mkTable('pgd', 2 ** 51, true)).toBe(0x0008_0000_0000_0067n);
    const [lo, hi] = halves(x86.mkTable('p4d', 0x000f_ffff_ffff_f000, true));
    expect(x86.tableAddr(lo, hi)).toBe(0x000f_ffff_ffff_f000);
    expect(x86.p4dBad(lo, hi)).toBe(false);
    expect(() => x86.mkTable('pte', 0x1000, true)).toThrow(RangeError);
    expect(() => x86.mkTable('pmd', 0x1001, true)).toThrow(RangeError);
  });
});

describe('swap entries', () => {
  it('arch/x86/include/asm/pgtable_64.h __swp_entry: type in 63:59, ~offset in 58:9', () => {
    expect(x86.mkSwapPte(0, 0)).toBe(0x07ff_ffff_ffff_fe00n);
    expect(x86.mkSwapPte(3, 0x1234)).toBe(0x1fff_ffff_ffdb_9600n);
    expect(x86.mkSwapPte(31, 2 ** 50 - 2)).toBe(0xf800_0000_0000_0200n);
  });

  it('arch/x86/include/asm/pgtable_64.h __swp_type/__swp_offset: round trip; a swap pte is neither none nor present', () => {
    const cases: [number, number][] = [
      [0, 0],
      [1, 1],
      [3, 0x1234],
      [31, 2 ** 49 + 12345],
      [17, 0x7fffff], // offset bits 22:0 all set: the lo/hi seam
      [5, 0x800000],
      [30, 2 ** 50 - 2],
    ];
    for (const [type, offset] of cases) {
      const [lo, hi] = halves(x86.mkSwapPte(type, offset));
      expect(x86.swapType(lo, hi)).toBe(type);
      expect(x86.swapOffset(lo, hi)).toBe(offset);
      expect(x86.pteNone(lo, hi)).toBe(false);
      expect(x86.ptePresent(lo, hi)).toBe(false);
      expect(x86.pmdPresent(lo, hi)).toBe(false);
      expect(lo & 0x1ff).toBe(0); // bits 8:0 clear
    }
    expect(() => x86.mkSwapPte(32, 0)).toThrow(RangeError);
    expect(() => x86.mkSwapPte(0, 2 ** 50)).toThrow(RangeError);
  });
});

describe('pte_modify family', () => {
  const pte = 0x8000_0000_1234_5067n; // P RW US A D, NX

  it('arch/x86/include/asm/pgtable.h pte_wrprotect: clears RW and moves D to SAVED_DIRTY', () => {
    const ro = x86.pteModify(pte, { write: false });
    expect(ro).toBe(0x8400_0000_1234_5025n);
    const [lo, hi] = halves(ro);
    expect(x86.pteWrite(lo, hi)).toBe(false);
    expect(x86.pteDirty(lo, hi)).toBe(true);
  });

  it('arch/x86/mm/pgtable.c pte_mkwrite: sets RW and moves SAVED_DIRTY back to D', () => {
    expect(x86.pteModify(0x8400_0000_1234_5025n, { write: true })).toBe(pte);
  });

  it('arch/x86/include/asm/pgtable.h pte_mkdirty/pte_mkclean', () => {
    expect(x86.pteModify(pte, { dirty: false })).toBe(0x8000_0000_1234_5027n);
    expect(x86.pteModify(0x8000_0000_1234_5027n, { dirty: true })).toBe(pte);
    expect(x86.pteModify(0x8000_0000_1234_5025n, { dirty: true })).toBe(0x8400_0000_1234_5025n); // read-only
    expect(x86.pteModify(0x8400_0000_1234_5025n, { dirty: false })).toBe(0x8000_0000_1234_5025n);
  });

  it('arch/x86/include/asm/pgtable.h pte_mkold/pte_mkyoung', () => {
    expect(x86.pteModify(pte, { young: false })).toBe(0x8000_0000_1234_5047n);
    expect(x86.pteModify(0x8000_0000_1234_5047n, { young: true })).toBe(pte);
    expect(x86.pteModify(pte, {})).toBe(pte);
  });
});

describe('createX86Bits', () => {
  it('binds an x86-64 geometry and the options', () => {
    expect(x86.physAddrBits).toBe(52);
    expect(x86.geometry.name).toBe('x86_64-5level');
    expect(createX86Bits(GEOMETRIES['x86_64-4level'], { maxPhyAddr: 46 }).physAddrBits).toBe(46);
    expect(() => createX86Bits(GEOMETRIES['arm64-4k-48'])).toThrow(RangeError);
    expect(() => createX86Bits(GEOMETRIES['x86_64-4level'], { maxPhyAddr: 60 })).toThrow(RangeError);
    expect(_PAGE_PRESENT).toBe(1n);
  });
});
