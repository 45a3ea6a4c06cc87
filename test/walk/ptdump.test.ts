import { describe, expect, it } from 'vitest';
import { ptdumpMappings, ptdumpText, type PtdumpMapping } from '../../src/walk/ptdump';
import { arm64Hand4k39, arm64Hand4k48, arm64Hand4k52, arm64Hand64k42, x86Hand4, x86Hand5, type Fixture } from './ptdump-fixtures';

const K4 = 4096;
const M2 = 2 * 2 ** 20;
const G1 = 2 ** 30;

/** The ranges with addresses in hex, as the expectations below are written. */
function dump(f: Fixture, opts = {}) {
  return ptdumpMappings(f.machine, f.roots, opts).map((r: PtdumpMapping) => ({
    start: r.start.toString(16),
    end: r.end.toString(16),
    pa: r.pa.toString(16),
    pageSize: r.pageSize,
    count: r.count,
    level: r.level,
    attrs: r.attrs,
  }));
}

function text(f: Fixture): string[] {
  const lines: string[] = [];
  ptdumpText(f.machine, f.roots, (l) => lines.push(l));
  return lines;
}

// x86 attrs of a user page P RW US A D with XD: every flag by its SDM name.
const userRwNx = { rw: true, us: true, nx: true, g: false, a: true, d: true, pwt: false, pcd: false, pat: false, pkey: 0 };

describe('ptdump ranges, x86-64 4-level (SDM Vol.3A §4.6.1 access rights; FORMATS.md mmulab dump)', () => {
  const r = dump(x86Hand4());

  it('three 4K pages with contiguous PAs and equal attributes merge into one range of count 3', () => {
    expect(r[0]).toEqual({ start: '400000', end: '403000', pa: '100000', pageSize: K4, count: 3, level: 1, attrs: userRwNx });
  });
  it('a break in the physical address starts a new range', () => {
    expect(r[1]).toEqual({ start: '403000', end: '404000', pa: '200000', pageSize: K4, count: 1, level: 1, attrs: userRwNx });
  });
  it('a break in the attributes (R/W = 0 in the PTE) starts a new range', () => {
    expect(r[2]).toEqual({ start: '404000', end: '405000', pa: '201000', pageSize: K4, count: 1, level: 1, attrs: { ...userRwNx, rw: false } });
  });
  it('a not-present (P = 0) non-empty PTE is not a mapping', () => {
    expect(r.some((x) => x.start === '405000')).toBe(false);
  });
  it('a 2M leaf stands alone with its size, level 2 (PD), executable without XD', () => {
    expect(r[3]).toEqual({ start: '600000', end: '800000', pa: '40000000', pageSize: M2, count: 1, level: 2, attrs: { ...userRwNx, nx: false } });
  });
  it('SDM §4.6.1: R/W = 0 in the PDE above makes a writable PTE read-only (R/W ANDed)', () => {
    expect(r[4]).toEqual({ start: '800000', end: '801000', pa: '300000', pageSize: K4, count: 1, level: 1, attrs: { ...userRwNx, rw: false } });
  });
  it('SDM §4.6.1: XD = 1 in the PDE makes a PTE without XD execute-disabled (XD ORed)', () => {
    expect(r[5]).toEqual({ start: 'a00000', end: 'a01000', pa: '400000', pageSize: K4, count: 1, level: 1, attrs: userRwNx });
  });
  it('SDM Table 4-20: PWT, PAT (bit 7 of a PTE) and the protection key (bits 62:59 = 5) are reported; a PA-contiguous neighbour with other attributes does not merge', () => {
    expect(r[6]).toEqual({
      start: 'a01000',
      end: 'a02000',
      pa: '401000',
      pageSize: K4,
      count: 1,
      level: 1,
      attrs: { ...userRwNx, d: true, pwt: true, pat: true, pkey: 5 },
    });
  });
  it('pages merge across a page-table boundary (PT G[511] and PT H[0])', () => {
    expect(r[7]).toEqual({ start: 'dff000', end: 'e01000', pa: '500000', pageSize: K4, count: 2, level: 1, attrs: userRwNx });
  });
  it('two 2M leaves with contiguous PAs merge into one range of count 2', () => {
    expect(r[8]).toEqual({ start: '1000000', end: '1400000', pa: '40200000', pageSize: M2, count: 2, level: 2, attrs: { ...userRwNx, nx: false } });
  });
  it('a 1G leaf stands alone, level 3 (PDPT); U/S = 0 in the leaf wins over U/S = 1 above; G set', () => {
    expect(r[9]).toEqual({
      start: '40000000',
      end: '80000000',
      pa: '80000000',
      pageSize: G1,
      count: 1,
      level: 3,
      attrs: { ...userRwNx, us: false, g: true },
    });
  });
  it('the kernel half: the 1G direct-map leaf at 0xffff888000000000, and nothing else', () => {
    expect(r[10]).toEqual({
      start: 'ffff888000000000',
      end: 'ffff888040000000',
      pa: '0',
      pageSize: G1,
      count: 1,
      level: 3,
      attrs: { ...userRwNx, us: false, g: true },
    });
    expect(r).toHaveLength(11);
  });
  it('SDM §4.6.2: with IA32_EFER.NXE = 0 no page is execute-disabled', () => {
    expect(dump(x86Hand4(), { nxe: false }).every((x) => x.attrs.nx === false)).toBe(true);
  });
});

describe('ptdump ranges, x86-64 5-level (LA57)', () => {
  it('the PML5 → PML4 → PDPT → PD → PT chain: one merged 4K range and the 1G kernel leaf', () => {
    expect(dump(x86Hand5())).toEqual([
      { start: '400000', end: '402000', pa: '100000', pageSize: K4, count: 2, level: 1, attrs: userRwNx },
      { start: 'ff11000000000000', end: 'ff11000040000000', pa: '0', pageSize: G1, count: 1, level: 3, attrs: { ...userRwNx, us: false, g: true } },
    ]);
  });
});

// ARM64 attrs of the TTBR0 pages: AP 01 (RW at EL0 and EL1), SH 11, AF, nG, PXN, AttrIndx 0.
const user01 = { ap: 1, uxn: false, pxn: true, af: true, sh: 3, attr_indx: 0, ng: true, contiguous: false, dbm: false };

describe('ptdump ranges, ARM64 4K/48 (Arm ARM D8.3 descriptors, D8.4.2 hierarchical permissions)', () => {
  const r = dump(arm64Hand4k48());

  it('three 4K pages with contiguous PAs merge (count 3); a PA break starts a new range', () => {
    expect(r[0]).toEqual({ start: '400000', end: '403000', pa: '40100000', pageSize: K4, count: 3, level: 3, attrs: user01 });
    expect(r[1]).toEqual({ start: '403000', end: '404000', pa: '40200000', pageSize: K4, count: 1, level: 3, attrs: user01 });
  });
  it('a 2M block stands alone at lookup level 2', () => {
    expect(r[2]).toEqual({ start: '600000', end: '800000', pa: '40400000', pageSize: M2, count: 1, level: 2, attrs: user01 });
  });
  it('D8.4.2: APTable = 0b10 makes AP 01 read-only (AP 11); UXNTable forces UXN', () => {
    expect(r[3]).toEqual({ start: '800000', end: '801000', pa: '40500000', pageSize: K4, count: 1, level: 3, attrs: { ...user01, ap: 3, uxn: true } });
  });
  it('D8.4.2: APTable = 0b01 removes EL0 access (AP 01 → 00)', () => {
    expect(r[4]).toEqual({ start: 'a00000', end: 'a01000', pa: '40600000', pageSize: K4, count: 1, level: 3, attrs: { ...user01, ap: 0 } });
  });
  it('D8.3: Contiguous (bit 52) and DBM (bit 51) are attributes: a PA-contiguous neighbour without them does not merge', () => {
    expect(r[5]).toEqual({
      start: 'a01000',
      end: 'a02000',
      pa: '40601000',
      pageSize: K4,
      count: 1,
      level: 3,
      attrs: { ...user01, ap: 0, contiguous: true, dbm: true },
    });
  });
  it('TTBR1: a 2M block (AttrIndx 1, UXN, global) and a 1G block at lookup level 1 (AP 10, PXN, UXN)', () => {
    expect(r[6]).toEqual({
      start: 'ffff000000200000',
      end: 'ffff000000400000',
      pa: '40800000',
      pageSize: M2,
      count: 1,
      level: 2,
      attrs: { ap: 0, uxn: true, pxn: false, af: true, sh: 3, attr_indx: 1, ng: false, contiguous: false, dbm: false },
    });
    expect(r[7]).toEqual({
      start: 'ffff000040000000',
      end: 'ffff000080000000',
      pa: '80000000',
      pageSize: G1,
      count: 1,
      level: 1,
      attrs: { ap: 2, uxn: true, pxn: true, af: true, sh: 3, attr_indx: 0, ng: false, contiguous: false, dbm: false },
    });
    expect(r).toHaveLength(8);
  });
});

describe('ptdump ranges, ARM64 64K/42 (two lookup levels)', () => {
  const f = arm64Hand64k42();
  const r = dump(f);
  const kern = { ap: 0, uxn: true, pxn: false, af: true, sh: 3, attr_indx: 0, ng: false, contiguous: false, dbm: false };

  it('three 64K pages merge (count 3, page size 65536); a PA break; a 512M block at level 2', () => {
    expect(r.slice(0, 3)).toEqual([
      { start: '0', end: '30000', pa: '40100000', pageSize: 65536, count: 3, level: 3, attrs: user01 },
      { start: '30000', end: '40000', pa: '40140000', pageSize: 65536, count: 1, level: 3, attrs: user01 },
      { start: '20000000', end: '40000000', pa: '60000000', pageSize: 2 ** 29, count: 1, level: 2, attrs: user01 },
    ]);
  });
  it('TTBR1: a 512M block; below an APTable = 0b10 / PXNTable table a page becomes read-only and PXN', () => {
    expect(r.slice(3)).toEqual([
      { start: 'fffffc0000000000', end: 'fffffc0020000000', pa: '80000000', pageSize: 2 ** 29, count: 1, level: 2, attrs: { ...kern, attr_indx: 1 } },
      { start: 'fffffc0020000000', end: 'fffffc0020010000', pa: '40200000', pageSize: 65536, count: 1, level: 3, attrs: { ...kern, ap: 2, pxn: true } },
    ]);
  });
  it('Arm ARM D8.4.2 / TCR_EL1.HPD1 (bit 42): with hierarchical permissions disabled the table bits are ignored', () => {
    const h = dump(f, { tcr: 1n << 42n });
    expect(h[4]!.attrs).toEqual(kern);
    // HPD0 leaves TTBR1 alone
    expect(dump(f, { tcr: 1n << 41n })[4]!.attrs).toEqual({ ...kern, ap: 2, pxn: true });
  });
});

describe('ptdump ranges, ARM64 LPA2 (4K/52): no SH field in the descriptor', () => {
  const f = arm64Hand4k52();
  it('Arm ARM D8.3 (DS = 1): shareability comes from TCR_EL1.SH1 (bits 29:28) for TTBR1', () => {
    const r = dump(f, { tcr: 2n << 28n });
    expect(r).toEqual([
      {
        start: 'fff0000000000000',
        end: 'fff0000000001000',
        pa: '40300000',
        pageSize: K4,
        count: 1,
        level: 3,
        attrs: { ap: 0, uxn: false, pxn: false, af: true, sh: 2, attr_indx: 0, ng: false, contiguous: false, dbm: false },
      },
    ]);
  });
  it('without TCR_EL1 the range carries no sh', () => {
    expect(dump(f)[0]!.attrs).not.toHaveProperty('sh');
  });
});

describe('ptdump text, x86-64 (arch/x86/mm/dump_pagetables.c printk_prot / note_page)', () => {
  it('dump_pagetables.c: 4-level, every range with its flags, unmapped ranges blank, the guard hole skipped, User/Kernel Space markers', () => {
    expect(text(x86Hand4())).toEqual([
      '---[ User Space ]---',
      '0x0000000000000000-0x0000000000400000           4M                               pmd',
      // Linux merges on raw flags and level only: C[0..3] are one line although C[3] breaks the PA run.
      '0x0000000000400000-0x0000000000404000          16K USR RW                     NX pte',
      '0x0000000000404000-0x0000000000405000           4K USR ro                     NX pte',
      // C[5]: not present, but its flags (A, D) differ from an empty pte's.
      '0x0000000000405000-0x0000000000406000           4K                               pte',
      '0x0000000000406000-0x0000000000600000        2024K                               pte',
      '0x0000000000600000-0x0000000000800000           2M USR RW         PSE         x  pmd',
      // The raw PTE flags are printed (RW) although the PDE makes the page read-only.
      '0x0000000000800000-0x0000000000801000           4K USR RW                     NX pte',
      '0x0000000000801000-0x0000000000a00000        2044K                               pte',
      '0x0000000000a00000-0x0000000000a01000           4K USR RW                     x  pte',
      '0x0000000000a01000-0x0000000000a02000           4K USR RW PWT         PAT     x  pte',
      '0x0000000000a02000-0x0000000000dff000        4084K                               pte',
      '0x0000000000dff000-0x0000000000e01000           8K USR RW                     NX pte',
      '0x0000000000e01000-0x0000000001000000        2044K                               pte',
      '0x0000000001000000-0x0000000001400000           4M USR RW         PSE         x  pmd',
      '0x0000000001400000-0x0000000040000000        1004M                               pmd',
      '0x0000000040000000-0x0000000080000000           1G     RW         PSE     GLB NX pud',
      '0x0000000080000000-0x0000008000000000         510G                               pud',
      // The last user range is closed by the first kernel note, at GUARD_HOLE_END_ADDR.
      '0x0000008000000000-0xffff880000000000   17179745792G                               pgd',
      '---[ Kernel Space ]---',
      '0xffff880000000000-0xffff888000000000         512G                               pgd',
      '0xffff888000000000-0xffff888040000000           1G     RW         PSE     GLB NX pud',
      '0xffff888040000000-0xffff890000000000         511G                               pud',
      // note_page_flush() passes address 0: the last range ends at 0x0000000000000000.
      '0xffff890000000000-0x0000000000000000         119T                               pgd',
    ]);
  });
  it('dump_pagetables.c: 5-level, p4d holes named p4d, the guard hole at 0xff00000000000000-0xff10000000000000 skipped', () => {
    expect(text(x86Hand5())).toEqual([
      '---[ User Space ]---',
      '0x0000000000000000-0x0000000000400000           4M                               pmd',
      '0x0000000000400000-0x0000000000402000           8K USR RW                     NX pte',
      '0x0000000000402000-0x0000000000600000        2040K                               pte',
      '0x0000000000600000-0x0000000040000000        1018M                               pmd',
      '0x0000000040000000-0x0000008000000000         511G                               pud',
      '0x0000008000000000-0x0001000000000000      261632G                               p4d',
      '0x0001000000000000-0xff10000000000000    16715520T                               pgd',
      '---[ Kernel Space ]---',
      '0xff10000000000000-0xff11000000000000         256T                               pgd',
      '0xff11000000000000-0xff11000040000000           1G     RW         PSE     GLB NX pud',
      '0xff11000040000000-0xff11008000000000         511G                               pud',
      '0xff11008000000000-0xff12000000000000      261632G                               p4d',
      '0xff12000000000000-0x0000000000000000       60928T                               pgd',
    ]);
  });
});

describe('ptdump text, ARM64 (arch/arm64/mm/ptdump.c note_page / dump_prot)', () => {
  it('arm64 ptdump.c: 4K/48, TTBR0 under User Space markers, then TTBR1 under Linear Mapping start/end', () => {
    expect(text(arm64Hand4k48())).toEqual([
      '---[ User Space ]---',
      '0x0000000000000000-0x0000000000400000           4M PMD',
      '0x0000000000400000-0x0000000000404000          16K PTE   USR RW NX SHD AF NG                MEM/NORMAL',
      '0x0000000000404000-0x0000000000600000        2032K PTE',
      '0x0000000000600000-0x0000000000800000           2M PMD   USR RW NX SHD AF NG     BLK        MEM/NORMAL',
      '0x0000000000800000-0x0000000000801000           4K PTE   USR RW NX SHD AF NG                MEM/NORMAL',
      '0x0000000000801000-0x0000000000a00000        2044K PTE',
      '0x0000000000a00000-0x0000000000a01000           4K PTE   USR RW NX SHD AF NG                MEM/NORMAL',
      '0x0000000000a01000-0x0000000000a02000           4K PTE   USR RW NX SHD AF NG CON            MEM/NORMAL',
      '0x0000000000a02000-0x0000000000c00000        2040K PTE',
      '0x0000000000c00000-0x0000000040000000        1012M PMD',
      '0x0000000040000000-0x0000008000000000         511G PUD',
      '0x0000008000000000-0x0001000000000000      261632G PGD',
      '---[ User Space end ]---',
      '---[ Linear Mapping start ]---',
      '0xffff000000000000-0xffff000000200000           2M PMD',
      '0xffff000000200000-0xffff000000400000           2M PMD       RW x  SHD AF        BLK UXN    MEM/NORMAL-TAGGED',
      '0xffff000000400000-0xffff000040000000        1020M PMD',
      '0xffff000040000000-0xffff000080000000           1G PUD       ro NX SHD AF        BLK UXN    MEM/NORMAL',
      '0xffff000080000000-0xffff008000000000         510G PUD',
      '0xffff008000000000-0xffff800000000000      130560G PGD',
      '---[ Linear Mapping end ]---',
      '0xffff800000000000-0x0000000000000000         128T PGD',
    ]);
  });
  it('arm64 ptdump.c: 64K/42, a pmd leaf is PMD and holes of the folded levels are PGD', () => {
    const lines = text(arm64Hand64k42());
    const k = lines.indexOf('---[ Linear Mapping start ]---');
    expect(lines.slice(k)).toEqual([
      '---[ Linear Mapping start ]---',
      '0xfffffc0000000000-0xfffffc0020000000         512M PMD       RW x  SHD AF        BLK UXN    MEM/NORMAL-TAGGED',
      '0xfffffc0020000000-0xfffffc0020010000          64K PTE       RW x  SHD AF            UXN    MEM/NORMAL',
      '0xfffffc0020010000-0xfffffc0040000000      524224K PTE',
      '0xfffffc0040000000-0xfffffe0000000000        2047G PGD',
      '---[ Linear Mapping end ]---',
      '0xfffffe0000000000-0x0000000000000000           2T PGD',
    ]);
  });
  it('arm64 ptdump.c: 4K/39, mm_pud_folded: a level-1 block noted at the pud level is printed as PGD', () => {
    const lines = text(arm64Hand4k39());
    const k = lines.indexOf('---[ Linear Mapping start ]---');
    expect(lines.slice(k)).toEqual([
      '---[ Linear Mapping start ]---',
      '0xffffff8000000000-0xffffff8040000000           1G PGD       RW NX SHD AF        BLK UXN    MEM/NORMAL',
      '0xffffff8040000000-0xffffffc000000000         255G PGD',
      '---[ Linear Mapping end ]---',
      '0xffffffc000000000-0x0000000000000000         256G PGD',
    ]);
  });
});

describe('ptdump attribute names agree with the descriptor decoder (manual field names)', () => {
  // Leaves with no restriction from the tables above: their effective attributes are their own
  // fields, which machine.bits.decode names per SDM Tables 4-16..4-20 / Arm ARM D8.3.
  const fieldsOf = (f: Fixture, value: bigint, level: number) =>
    Object.fromEntries(f.machine.bits.decode(value, level).fields.map((x) => [x.name, Number(x.value)]));

  it('x86-64: SDM Table 4-20 PTE 0x28000000004010ef and Table 4-16 PDPTE 0x80000000800001e3', () => {
    const f = x86Hand4();
    const r = ptdumpMappings(f.machine, f.roots);
    const pte = fieldsOf(f, 0x2800_0000_0040_10efn, 1);
    const a = r.find((x) => x.start === 0xa01000)!.attrs;
    expect(a).toMatchObject({ us: pte.us === 1, pwt: pte.pwt === 1, pcd: pte.pcd === 1, a: pte.a === 1, d: pte.d === 1, g: pte.g === 1, pat: pte.pat === 1, pkey: pte.pkey });
    const pdpte = fieldsOf(f, 0x8000_0000_8000_01e3n, 3);
    const b = r.find((x) => x.start === 0x4000_0000)!.attrs;
    expect(b).toEqual({
      rw: pdpte.rw === 1,
      us: pdpte.us === 1,
      nx: pdpte.xd === 1,
      g: pdpte.g === 1,
      a: pdpte.a === 1,
      d: pdpte.d === 1,
      pwt: pdpte.pwt === 1,
      pcd: pdpte.pcd === 1,
      pat: pdpte.pat === 1,
      pkey: pdpte.pkey,
    });
  });
  it('ARM64: Arm ARM D8.3 block 0x0060000080000781 (level 1) and page 0x0038000040601f43 fields', () => {
    const f = arm64Hand4k48();
    const r = ptdumpMappings(f.machine, f.roots);
    const blk = fieldsOf(f, 0x0060_0000_8000_0781n, 1);
    expect(r.find((x) => x.start === 0xffff_0000_4000_0000)!.attrs).toEqual({
      ap: blk.ap,
      uxn: blk.uxn === 1,
      pxn: blk.pxn === 1,
      af: blk.af === 1,
      sh: blk.sh,
      attr_indx: blk.attrIndx,
      ng: blk.nG === 1,
      contiguous: blk.contiguous === 1,
      dbm: blk.dbm === 1,
    });
    const page = fieldsOf(f, 0x0038_0000_4060_1f43n, 3);
    expect(r.find((x) => x.start === 0xa01000)!.attrs).toMatchObject({ contiguous: page.contiguous === 1, dbm: page.dbm === 1, ng: page.nG === 1, sh: page.sh });
  });
});
