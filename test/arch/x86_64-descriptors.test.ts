/**
 * The SDM's entry formats (Intel SDM Vol. 3A §4.5, Tables 4-14 … 4-20): every vector below is
 * written by hand from the table's bit positions.
 */
import { describe, expect, it } from 'vitest';
import { GEOMETRIES } from '../../src/arch/geometry';
import { fieldsOf, type DecodedDescriptor } from '../../src/arch/types';
import { createX86Bits } from '../../src/arch/x86_64';
import { decode, encode, type X86PagingConfig } from '../../src/arch/x86_64/fields';

const LA57: X86PagingConfig = { maxPhyAddr: 52, nxe: true, la57: true };
const L4: X86PagingConfig = { maxPhyAddr: 52, nxe: true, la57: false };
const M46: X86PagingConfig = { maxPhyAddr: 46, nxe: true, la57: false };
const NO_NXE: X86PagingConfig = { maxPhyAddr: 52, nxe: false, la57: true };

type Row = readonly [name: string, msb: number, lsb: number, value: bigint];

function rows(d: DecodedDescriptor): Row[] {
  return d.fields.map((f) => [f.name, f.msb, f.lsb, f.value] as const);
}

function field(d: DecodedDescriptor, name: string) {
  const f = d.fields.find((x) => x.name === name);
  if (!f) throw new Error(`no field ${name} in ${d.fields.map((x) => x.name).join(',')}`);
  return f;
}

/** One vector per field: the format's base (P, and PS where it selects the format) plus that field. */
type FieldVector = readonly [name: string, msb: number, lsb: number, entry: bigint, value: bigint];

interface FormatCase {
  title: string;
  level: number;
  cfg: X86PagingConfig;
  kind: DecodedDescriptor['kind'];
  vectors: readonly FieldVector[];
}

const TABLE_VECTORS = (ps: FieldVector): FieldVector[] => [
  ['p', 0, 0, 0x1n, 1n],
  ['rw', 1, 1, 0x3n, 1n],
  ['us', 2, 2, 0x5n, 1n],
  ['pwt', 3, 3, 0x9n, 1n],
  ['pcd', 4, 4, 0x11n, 1n],
  ['a', 5, 5, 0x21n, 1n],
  ['ignored6', 6, 6, 0x41n, 1n],
  ps,
  ['ignored8', 11, 8, 0xf01n, 0xfn],
  ['addr', 51, 12, 0x000f_ffff_ffff_f001n, 0xff_ffff_ffffn],
  ['ignored52', 62, 52, 0x7ff0_0000_0000_0001n, 0x7ffn],
  ['xd', 63, 63, 0x8000_0000_0000_0001n, 1n],
];

const LARGE_VECTORS = (reserved13: FieldVector, addr: FieldVector): FieldVector[] => [
  ['p', 0, 0, 0x81n, 1n],
  ['rw', 1, 1, 0x83n, 1n],
  ['us', 2, 2, 0x85n, 1n],
  ['pwt', 3, 3, 0x89n, 1n],
  ['pcd', 4, 4, 0x91n, 1n],
  ['a', 5, 5, 0xa1n, 1n],
  ['d', 6, 6, 0xc1n, 1n],
  ['ps', 7, 7, 0x81n, 1n],
  ['g', 8, 8, 0x181n, 1n],
  ['ignored9', 11, 9, 0xe81n, 0x7n],
  ['pat', 12, 12, 0x1081n, 1n],
  reserved13,
  addr,
  ['ignored52', 58, 52, 0x07f0_0000_0000_0081n, 0x7fn],
  ['pkey', 62, 59, 0x7800_0000_0000_0081n, 0xfn],
  ['xd', 63, 63, 0x8000_0000_0000_0081n, 1n],
];

const FORMATS: FormatCase[] = [
  {
    title: 'SDM Vol.3A Table 4-14: PML5E referencing a PML4 table',
    level: 5,
    cfg: LA57,
    kind: 'table',
    vectors: TABLE_VECTORS(['ps', 7, 7, 0x81n, 1n]),
  },
  {
    title: 'SDM Vol.3A Table 4-15: PML4E referencing a page-directory-pointer table',
    level: 4,
    cfg: L4,
    kind: 'table',
    vectors: TABLE_VECTORS(['ps', 7, 7, 0x81n, 1n]),
  },
  {
    title: 'SDM Vol.3A Table 4-16: PDPTE mapping a 1-GByte page',
    level: 3,
    cfg: L4,
    kind: 'block',
    vectors: LARGE_VECTORS(
      ['reserved13', 29, 13, 0x3fff_e081n, 0x1_ffffn],
      ['addr', 51, 30, 0x000f_ffff_c000_0081n, 0x3f_ffffn],
    ),
  },
  {
    title: 'SDM Vol.3A Table 4-17: PDPTE referencing a page directory',
    level: 3,
    cfg: L4,
    kind: 'table',
    vectors: TABLE_VECTORS(['ps', 7, 7, 0x1n, 0n]),
  },
  {
    title: 'SDM Vol.3A Table 4-18: PDE mapping a 2-MByte page',
    level: 2,
    cfg: L4,
    kind: 'block',
    vectors: LARGE_VECTORS(
      ['reserved13', 20, 13, 0x1f_e081n, 0xffn],
      ['addr', 51, 21, 0x000f_ffff_ffe0_0081n, 0x7fff_ffffn],
    ),
  },
  {
    title: 'SDM Vol.3A Table 4-19: PDE referencing a page table',
    level: 2,
    cfg: L4,
    kind: 'table',
    vectors: TABLE_VECTORS(['ps', 7, 7, 0x1n, 0n]),
  },
  {
    title: 'SDM Vol.3A Table 4-20: PTE mapping a 4-KByte page',
    level: 1,
    cfg: L4,
    kind: 'page',
    vectors: [
      ['p', 0, 0, 0x1n, 1n],
      ['rw', 1, 1, 0x3n, 1n],
      ['us', 2, 2, 0x5n, 1n],
      ['pwt', 3, 3, 0x9n, 1n],
      ['pcd', 4, 4, 0x11n, 1n],
      ['a', 5, 5, 0x21n, 1n],
      ['d', 6, 6, 0x41n, 1n],
      ['pat', 7, 7, 0x81n, 1n],
      ['g', 8, 8, 0x101n, 1n],
      ['ignored9', 11, 9, 0xe01n, 0x7n],
      ['addr', 51, 12, 0x000f_ffff_ffff_f001n, 0xff_ffff_ffffn],
      ['ignored52', 58, 52, 0x07f0_0000_0000_0001n, 0x7fn],
      ['pkey', 62, 59, 0x7800_0000_0000_0001n, 0xfn],
      ['xd', 63, 63, 0x8000_0000_0000_0001n, 1n],
    ],
  },
];

describe('x86-64 descriptor fields, one vector per field', () => {
  for (const fc of FORMATS) {
    for (const [name, msb, lsb, entry, value] of fc.vectors) {
      it(`${fc.title}: ${name} is bits ${msb}:${lsb}`, () => {
        const d = decode(entry, fc.level, fc.cfg);
        const f = field(d, name);
        expect([f.msb, f.lsb, f.value]).toEqual([msb, lsb, value]);
        // Every other non-fixed field is zero: the vector set exactly one field.
        for (const other of d.fields) {
          if (other.name === name || other.name === 'p' || (other.name === 'ps' && fc.kind === 'block')) continue;
          expect(other.value, `${other.name} in 0x${entry.toString(16)}`).toBe(0n);
        }
      });
    }
  }

  it('SDM Vol.3A Table 4-18: PDE mapping a 2-MByte page: PAT is bit 12', () => {
    const d = decode(0x1081n, 2, L4);
    expect(d.kind).toBe('block');
    expect(field(d, 'pat')).toMatchObject({ msb: 12, lsb: 12, value: 1n });
    expect(field(d, 'ps').value).toBe(1n);
  });

  it('SDM Vol.3A Table 4-20: PTE: bit 7 is PAT, not PS', () => {
    const d = decode(0x81n, 1, L4);
    expect(d.kind).toBe('page');
    expect(d.fields.some((f) => f.name === 'ps')).toBe(false);
    expect(field(d, 'pat')).toMatchObject({ msb: 7, lsb: 7, value: 1n });
  });

  it('SDM Vol.3A Table 4-20: the addr field value is raw, address is the frame it encodes', () => {
    const d = decode(0x000f_ffff_ffff_f001n, 1, L4);
    expect(field(d, 'addr').address).toBe(0x000f_ffff_ffff_f000n);
    expect(d.address).toBe(0x000f_ffff_ffff_f000n);
  });
});

describe('x86-64 realistic descriptors, every field', () => {
  it('SDM Vol.3A Table 4-14: PML5E 0x8000000123456067 (user table, NX)', () => {
    const d = decode(0x8000_0001_2345_6067n, 5, LA57);
    expect(d.kind).toBe('table');
    expect(d.address).toBe(0x1_2345_6000n);
    expect(rows(d)).toEqual([
      ['p', 0, 0, 1n],
      ['rw', 1, 1, 1n],
      ['us', 2, 2, 1n],
      ['pwt', 3, 3, 0n],
      ['pcd', 4, 4, 0n],
      ['a', 5, 5, 1n],
      ['ignored6', 6, 6, 1n],
      ['ps', 7, 7, 0n],
      ['ignored8', 11, 8, 0n],
      ['addr', 51, 12, 0x12_3456n],
      ['ignored52', 62, 52, 0n],
      ['xd', 63, 63, 1n],
    ]);
    expect(field(d, 'ps').role).toBe('reserved');
    expect(field(d, 'ignored6').role).toBe('ignored');
  });

  it('SDM Vol.3A Table 4-15: PML4E 0x00000007ffffe063 (kernel table)', () => {
    const d = decode(0x0000_0007_ffff_e063n, 4, L4);
    expect(d.kind).toBe('table');
    expect(d.address).toBe(0x7_ffff_e000n);
    expect(rows(d)).toEqual([
      ['p', 0, 0, 1n],
      ['rw', 1, 1, 1n],
      ['us', 2, 2, 0n],
      ['pwt', 3, 3, 0n],
      ['pcd', 4, 4, 0n],
      ['a', 5, 5, 1n],
      ['ignored6', 6, 6, 1n],
      ['ps', 7, 7, 0n],
      ['ignored8', 11, 8, 0n],
      ['addr', 51, 12, 0x7f_fffen],
      ['ignored52', 62, 52, 0n],
      ['xd', 63, 63, 0n],
    ]);
    expect(field(d, 'rw').meaning).toBe('writable');
    expect(field(d, 'us').meaning).toBe('supervisor-mode only');
  });

  it('SDM Vol.3A Table 4-16: PDPTE 0x80000001400001e3 maps the 1-GByte page at 0x140000000', () => {
    const d = decode(0x8000_0001_4000_01e3n, 3, L4);
    expect(d.kind).toBe('block');
    expect(d.address).toBe(0x1_4000_0000n);
    expect(rows(d)).toEqual([
      ['p', 0, 0, 1n],
      ['rw', 1, 1, 1n],
      ['us', 2, 2, 0n],
      ['pwt', 3, 3, 0n],
      ['pcd', 4, 4, 0n],
      ['a', 5, 5, 1n],
      ['d', 6, 6, 1n],
      ['ps', 7, 7, 1n],
      ['g', 8, 8, 1n],
      ['ignored9', 11, 9, 0n],
      ['pat', 12, 12, 0n],
      ['reserved13', 29, 13, 0n],
      ['addr', 51, 30, 5n],
      ['ignored52', 58, 52, 0n],
      ['pkey', 62, 59, 0n],
      ['xd', 63, 63, 1n],
    ]);
    expect(field(d, 'reserved13').role).toBe('reserved');
    expect(field(d, 'xd').meaning).toBe('execute-disable');
  });

  it('SDM Vol.3A Table 4-17: PDPTE 0x000000000abcd027 references the page directory at 0xabcd000', () => {
    const d = decode(0x0000_0000_0abc_d027n, 3, L4);
    expect(d.kind).toBe('table');
    expect(d.address).toBe(0xabc_d000n);
    expect(rows(d)).toEqual([
      ['p', 0, 0, 1n],
      ['rw', 1, 1, 1n],
      ['us', 2, 2, 1n],
      ['pwt', 3, 3, 0n],
      ['pcd', 4, 4, 0n],
      ['a', 5, 5, 1n],
      ['ignored6', 6, 6, 0n],
      ['ps', 7, 7, 0n],
      ['ignored8', 11, 8, 0n],
      ['addr', 51, 12, 0xabcdn],
      ['ignored52', 62, 52, 0n],
      ['xd', 63, 63, 0n],
    ]);
  });

  it('SDM Vol.3A Table 4-18: PDE 0x98000000402010e7 maps a 2-MByte page, PAT = 1, pkey 3', () => {
    const d = decode(0x9800_0000_4020_10e7n, 2, L4);
    expect(d.kind).toBe('block');
    expect(d.address).toBe(0x4020_0000n);
    expect(rows(d)).toEqual([
      ['p', 0, 0, 1n],
      ['rw', 1, 1, 1n],
      ['us', 2, 2, 1n],
      ['pwt', 3, 3, 0n],
      ['pcd', 4, 4, 0n],
      ['a', 5, 5, 1n],
      ['d', 6, 6, 1n],
      ['ps', 7, 7, 1n],
      ['g', 8, 8, 0n],
      ['ignored9', 11, 9, 0n],
      ['pat', 12, 12, 1n],
      ['reserved13', 20, 13, 0n],
      ['addr', 51, 21, 0x201n],
      ['ignored52', 58, 52, 0n],
      ['pkey', 62, 59, 3n],
      ['xd', 63, 63, 1n],
    ]);
    // PAT:PCD:PWT = 100: PAT entry 4, which Linux programs as WB.
    expect(field(d, 'pat').meaning).toMatch(/^PAT entry 4 .*WB/);
  });

  it('SDM Vol.3A Table 4-19: PDE 0x0000000001234067 references the page table at 0x1234000', () => {
    const d = decode(0x0000_0000_0123_4067n, 2, L4);
    expect(d.kind).toBe('table');
    expect(d.address).toBe(0x123_4000n);
    expect(rows(d)).toEqual([
      ['p', 0, 0, 1n],
      ['rw', 1, 1, 1n],
      ['us', 2, 2, 1n],
      ['pwt', 3, 3, 0n],
      ['pcd', 4, 4, 0n],
      ['a', 5, 5, 1n],
      ['ignored6', 6, 6, 1n],
      ['ps', 7, 7, 0n],
      ['ignored8', 11, 8, 0n],
      ['addr', 51, 12, 0x1234n],
      ['ignored52', 62, 52, 0n],
      ['xd', 63, 63, 0n],
    ]);
  });

  it('SDM Vol.3A Table 4-20: PTE 0x8400000012345867 (bit 11 and bit 58 ignored, used by software)', () => {
    const d = decode(0x8400_0000_1234_5867n, 1, L4);
    expect(d.kind).toBe('page');
    expect(d.address).toBe(0x1234_5000n);
    expect(rows(d)).toEqual([
      ['p', 0, 0, 1n],
      ['rw', 1, 1, 1n],
      ['us', 2, 2, 1n],
      ['pwt', 3, 3, 0n],
      ['pcd', 4, 4, 0n],
      ['a', 5, 5, 1n],
      ['d', 6, 6, 1n],
      ['pat', 7, 7, 0n],
      ['g', 8, 8, 0n],
      ['ignored9', 11, 9, 4n],
      ['addr', 51, 12, 0x1_2345n],
      ['ignored52', 58, 52, 0x40n],
      ['pkey', 62, 59, 0n],
      ['xd', 63, 63, 1n],
    ]);
    expect(field(d, 'ignored9').role).toBe('ignored');
    expect(field(d, 'ignored52').role).toBe('ignored');
  });

  it('SDM Vol.3A Table 4-20 with MAXPHYADDR = 46: addr is bits 45:12, bits 51:46 reserved', () => {
    const d = decode(0x8000_0000_1234_5867n, 1, M46);
    expect(d.kind).toBe('page');
    expect(rows(d).slice(10, 13)).toEqual([
      ['addr', 45, 12, 0x1_2345n],
      ['reserved', 51, 46, 0n],
      ['ignored52', 58, 52, 0n],
    ]);
  });

  it('SDM Vol.3A Figure 4-11: P = 0 leaves bits 63:1 to software', () => {
    const empty = decode(0n, 1, L4);
    expect(empty.kind).toBe('invalid');
    expect(rows(empty)).toEqual([
      ['p', 0, 0, 0n],
      ['ignored1', 63, 1, 0n],
    ]);
    // A Linux swap pte (type 0, offset 0): all its payload is in the ignored field.
    const swap = decode(0x07ff_ffff_ffff_fe00n, 1, L4);
    expect(swap.kind).toBe('invalid');
    expect(field(swap, 'ignored1').value).toBe(0x03ff_ffff_ffff_ff00n);
    expect(swap.address).toBeUndefined();
  });
});

describe('x86-64 reserved bits', () => {
  it('SDM Vol.3A Table 4-15: PS is reserved (must be 0) in a PML4E', () => {
    const d = decode(0x0000_0000_0010_0083n, 4, L4);
    expect(d.kind).toBe('reserved');
    expect(d.reason).toBe('SDM Table 4-15: PS is reserved (must be 0) in a PML4E');
    expect(field(d, 'ps')).toMatchObject({ value: 1n, role: 'reserved' });
    expect(d.fields).toHaveLength(12);
    expect(d.address).toBe(0x10_0000n);
  });

  it('SDM Vol.3A Table 4-14: PS is reserved (must be 0) in a PML5E', () => {
    const d = decode(0x81n, 5, LA57);
    expect(d.kind).toBe('reserved');
    expect(d.reason).toBe('SDM Table 4-14: PS is reserved (must be 0) in a PML5E');
  });

  it('SDM Vol.3A §4.5.4: address bits 51:46 are reserved with MAXPHYADDR = 46', () => {
    const d = decode(0x0000_4000_0000_1001n, 1, M46); // bit 46 and bit 12
    expect(d.kind).toBe('reserved');
    expect(field(d, 'reserved')).toMatchObject({ msb: 51, lsb: 46, value: 1n, role: 'reserved' });
    expect(field(d, 'addr')).toMatchObject({ msb: 45, lsb: 12, value: 1n, address: 0x1000n });
    expect(d.reason).toContain('bits 51:46 are reserved');
    expect(d.reason).toContain('MAXPHYADDR = 46');
    // Bit 51 in a PDE that references a page table: bit 51 is bit 5 of the reserved field.
    const pde = decode(0x0008_0000_0000_0001n, 2, M46);
    expect(pde.kind).toBe('reserved');
    expect(field(pde, 'reserved').value).toBe(0x20n);
    // The same bit 46 is address with MAXPHYADDR = 52.
    expect(decode(0x0000_4000_0000_1001n, 1, L4).kind).toBe('page');
  });

  it('SDM Vol.3A §4.5.4: XD is reserved when IA32_EFER.NXE = 0', () => {
    const d = decode(0x8000_0000_0000_0001n, 1, NO_NXE);
    expect(d.kind).toBe('reserved');
    expect(d.reason).toContain('IA32_EFER.NXE = 0');
    expect(field(d, 'xd').meaning).toBe('reserved: IA32_EFER.NXE = 0');
    expect(decode(0x8000_0000_0000_0063n, 4, NO_NXE).kind).toBe('reserved');
    // With NXE = 1 the same bit is execute-disable.
    expect(decode(0x8000_0000_0000_0001n, 1, L4).kind).toBe('page');
    // Not present: nothing is reserved.
    expect(decode(0x8000_0000_0000_0000n, 1, NO_NXE).kind).toBe('invalid');
  });

  it('SDM Vol.3A Table 4-18: bits 20:13 of a PDE mapping a 2-MByte page are reserved', () => {
    const d = decode(0x0000_0000_0000_2081n, 2, L4); // bit 13
    expect(d.kind).toBe('reserved');
    expect(field(d, 'reserved13')).toMatchObject({ msb: 20, lsb: 13, value: 1n });
    expect(d.reason).toBe('SDM Table 4-18: bits 20:13 of a PDE that maps a 2-MByte page are reserved (must be 0)');
    expect(field(decode(0x0000_0000_0010_0081n, 2, L4), 'reserved13').value).toBe(0x80n); // bit 20
    // Bit 21 is the first address bit, bit 12 the PAT bit: both fine.
    expect(decode(0x0000_0000_0020_1081n, 2, L4).kind).toBe('block');
  });

  it('SDM Vol.3A Table 4-16: bits 29:13 of a PDPTE mapping a 1-GByte page are reserved', () => {
    const d = decode(0x0000_0000_2000_0081n, 3, L4); // bit 29
    expect(d.kind).toBe('reserved');
    expect(field(d, 'reserved13').value).toBe(0x1_0000n);
    expect(d.reason).toContain('SDM Table 4-16: bits 29:13');
    // The same bits are address in a PDPTE that references a page directory.
    expect(decode(0x0000_0000_2000_0001n, 3, L4).kind).toBe('table');
  });

  it('SDM Vol.3A §4.5.4: every reserved-bit violation is reported', () => {
    const d = decode(0x8000_0000_0000_0081n, 4, { maxPhyAddr: 52, nxe: false, la57: false });
    expect(d.reason?.split('; ')).toHaveLength(2);
  });

  it('hardware level 5 exists only with CR4.LA57; other levels and values are checked', () => {
    expect(() => decode(1n, 5, L4)).toThrow(RangeError);
    expect(() => decode(1n, 0, L4)).toThrow(RangeError);
    expect(() => decode(-1n, 1, L4)).toThrow(RangeError);
    expect(() => decode(1n << 64n, 1, L4)).toThrow(RangeError);
    expect(() => decode(1n, 1, { maxPhyAddr: 53, nxe: true, la57: false })).toThrow(RangeError);
  });
});

describe('x86-64 encode', () => {
  it('SDM Vol.3A Table 4-18: a block at level 2 gets PS = 1 without naming it', () => {
    expect(encode('block', 2, { p: 1, rw: 1, addr: 0x201 }, L4)).toBe(0x0000_0000_4020_0083n);
  });

  it('SDM Vol.3A Table 4-15: a PML4E from flags and a physical address', () => {
    expect(encode('table', 4, { p: true, rw: 1, us: 1n, a: 1, ignored6: 1, address: 0x1_2345_6000n }, L4)).toBe(
      0x0000_0001_2345_6067n,
    );
  });

  it('rejects fields a format does not have, values too wide, and kinds at the wrong level', () => {
    expect(() => encode('page', 1, { ps: 1 }, L4)).toThrow(/no field ps/);
    expect(() => encode('page', 1, { pkey: 16 }, L4)).toThrow(/pkey/);
    expect(() => encode('page', 1, { addr: 1n << 34n }, M46)).toThrow(/addr/);
    expect(() => encode('page', 2, { p: 1 }, L4)).toThrow(RangeError);
    expect(() => encode('block', 4, { p: 1 }, L4)).toThrow(RangeError);
    expect(() => encode('block', 3, { p: 1, ps: 0 }, L4)).toThrow(RangeError);
    expect(() => encode('table', 3, { p: 1, ps: 1 }, L4)).toThrow(RangeError);
    expect(() => encode('invalid', 1, { p: 1 }, L4)).toThrow(RangeError);
    expect(() => encode('page', 1, { address: 0x1001n }, L4)).toThrow(/aligned/);
    expect(() => encode('table', 5, { p: 1 }, L4)).toThrow(/LA57/);
  });

  it('the reserved kind encodes the format PS selects', () => {
    expect(encode('reserved', 4, { p: 1, ps: 1 }, L4)).toBe(0x81n);
    expect(encode('reserved', 2, { p: 1, ps: 1, reserved13: 1 }, L4)).toBe(0x2081n);
    expect(encode('reserved', 1, { p: 1, xd: 1 }, NO_NXE)).toBe(0x8000_0000_0000_0001n);
  });
});

/** splitmix64: a seeded, deterministic 64-bit generator. */
function splitmix64(seed: bigint): () => bigint {
  let s = seed;
  const M = (1n << 64n) - 1n;
  return () => {
    s = (s + 0x9e37_79b9_7f4a_7c15n) & M;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58_476d_1ce4_e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d0_49bb_1331_11ebn) & M;
    return z ^ (z >> 31n);
  };
}

describe('x86-64 round trips: encode(decode(v)) === v', () => {
  const configs: [string, X86PagingConfig][] = [
    ['MAXPHYADDR 52, NXE, LA57', LA57],
    ['MAXPHYADDR 46, NXE = 0, LA57', { maxPhyAddr: 46, nxe: false, la57: true }],
    ['MAXPHYADDR 36, NXE, 4-level', { maxPhyAddr: 36, nxe: true, la57: false }],
  ];
  for (const [name, cfg] of configs) {
    const top = cfg.la57 ? 5 : 4;
    for (let level = top; level >= 1; level--) {
      it(`${name}: 2000 random descriptors at level ${level}`, () => {
        const next = splitmix64(BigInt(level * 1000 + cfg.maxPhyAddr));
        const kinds = new Set<string>();
        for (let i = 0; i < 2000; i++) {
          let v = next();
          // Every other value has its reserved bits cleared, so well-formed kinds are covered too.
          if (i % 2) {
            v &= ~(((1n << 52n) - 1n) & ~((1n << BigInt(cfg.maxPhyAddr)) - 1n)); // 51:M
            if (!cfg.nxe) v &= ~(1n << 63n);
            if (level >= 4) v &= ~0x80n; // PS
            if (level === 3) v &= ~0x3fff_e000n; // 29:13
            if (level === 2) v &= ~0x1f_e000n; // 20:13
          }
          const d = decode(v, level, cfg);
          kinds.add(d.kind);
          // The fields tile bits 0..63, low to high.
          let bit = 0;
          for (const f of d.fields) {
            expect(f.lsb).toBe(bit);
            bit = f.msb + 1;
          }
          expect(bit).toBe(64);
          expect(encode(d.kind, d.level, fieldsOf(d), cfg)).toBe(v);
        }
        expect(kinds.has('invalid')).toBe(true);
        // A PTE has no reserved bits with MAXPHYADDR = 52 and NXE = 1.
        expect(kinds.has('reserved')).toBe(level > 1 || cfg.maxPhyAddr < 52 || !cfg.nxe);
        expect(kinds.has(level === 1 ? 'page' : 'table')).toBe(true);
        expect(kinds.has('block')).toBe(level === 3 || level === 2);
      });
    }
  }

  it('through ArchBits: createX86Bits binds MAXPHYADDR, NXE and the geometry', () => {
    const bits = createX86Bits(GEOMETRIES['x86_64-5level'], { maxPhyAddr: 46, nxe: false });
    expect(bits.physAddrBits).toBe(46);
    const next = splitmix64(7n);
    for (let i = 0; i < 1000; i++) {
      const v = next();
      const level = (i % 5) + 1;
      const d = bits.decode(v, level);
      expect(bits.encode(d.kind, d.level, fieldsOf(d))).toBe(v);
    }
    expect(bits.decode(0x8000_0000_0000_0001n, 1).kind).toBe('reserved');
    expect(() => createX86Bits(GEOMETRIES['x86_64-4level']).decode(1n, 5)).toThrow(RangeError);
  });
});
