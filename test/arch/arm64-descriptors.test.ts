/**
 * ARM64 VMSAv8-64 stage 1 descriptor formats: kinds, field layouts, address assembly, encode.
 *
 * Layout tables below are written by hand from the Arm ARM (DDI 0487) D8.3 "Translation table
 * descriptor formats" (D5.3 in older editions) and QEMU target/arm/ptw.c get_phys_addr_lpae();
 * expected values are hand-computed hex, never produced by the code under test.
 */
import { describe, expect, test } from 'vitest';
import { GEOMETRIES, type GeometryName } from '../../src/arch/geometry';
import { createArm64Bits } from '../../src/arch/arm64/index';
import { fieldsOf, type ArchBits, type DecodedDescriptor, type DescriptorKind } from '../../src/arch/types';

/** One geometry per configuration class. */
const CLASSES: Record<string, GeometryName> = {
  '4K': 'arm64-4k-48',
  '4K-LPA2': 'arm64-4k-52',
  '16K': 'arm64-16k-48',
  '16K-LPA2': 'arm64-16k-52',
  '64K': 'arm64-64k-48',
  '64K-LPA': 'arm64-64k-52',
};
type ClassName = keyof typeof CLASSES;

const bitsOf = (c: ClassName): ArchBits => createArm64Bits(GEOMETRIES[CLASSES[c]!]);

/** Lookup levels each class's granule has (Arm ARM D8.2: level -1 only with 4KB and DS = 1). */
const LEVELS: Record<ClassName, number[]> = {
  '4K': [0, 1, 2, 3],
  '4K-LPA2': [-1, 0, 1, 2, 3],
  '16K': [0, 1, 2, 3],
  '16K-LPA2': [0, 1, 2, 3],
  '64K': [1, 2, 3],
  '64K-LPA': [1, 2, 3],
};

function field(d: DecodedDescriptor, name: string) {
  const f = d.fields.find((x) => x.name === name);
  if (!f) throw new Error(`no field ${name} in ${d.kind}@${d.level}: ${d.fields.map((x) => x.name).join(',')}`);
  return f;
}

// ---- kinds -------------------------------------------------------------------------------------

describe('Arm ARM D8.3 AArch64.DecodeDescriptorType: descriptor kind from bits[1:0]', () => {
  for (const c of Object.keys(CLASSES) as ClassName[]) {
    const b = bitsOf(c);
    for (const level of LEVELS[c]) {
      test(`${c} level ${level}: bit[0] = 0 is invalid whatever the other bits`, () => {
        expect(b.decode(0x0n, level).kind).toBe('invalid');
        expect(b.decode(0xfffffffffffffffen, level).kind).toBe('invalid');
        expect(b.decode(0x2n, level).kind).toBe('invalid');
      });
      test(`${c} level ${level}: bits[1:0] = 0b11 is ${level === 3 ? 'a page' : 'a table'}`, () => {
        expect(b.decode(0x3n, level).kind).toBe(level === 3 ? 'page' : 'table');
      });
    }
    test(`${c}: a level 3 descriptor with bits[1:0] = 0b01 is reserved (treated as invalid), with a reason`, () => {
      const d = b.decode(0x0000000012345401n, 3);
      expect(d.kind).toBe('reserved');
      expect(d.reason).toMatch(/level 3/);
      expect(d.reason).toMatch(/Translation fault/);
      expect(d.address).toBeUndefined();
    });
  }
});

/**
 * Arm ARM D8.3 pseudocode AArch64.BlockDescSupported() (QEMU ptw.c lpae_block_desc_valid):
 * 4KB: levels 1, 2, and 0 when DS = 1; 16KB: level 2, and 1 when DS = 1; 64KB: level 2, and 1 when
 * the PA size is 52 bits (FEAT_LPA). Never at level -1 or 3.
 */
const BLOCK_MATRIX: Record<ClassName, Record<number, 'block' | 'reserved'>> = {
  '4K': { 0: 'reserved', 1: 'block', 2: 'block', 3: 'reserved' },
  '4K-LPA2': { [-1]: 'reserved', 0: 'block', 1: 'block', 2: 'block', 3: 'reserved' },
  '16K': { 0: 'reserved', 1: 'reserved', 2: 'block', 3: 'reserved' },
  '16K-LPA2': { 0: 'reserved', 1: 'block', 2: 'block', 3: 'reserved' },
  '64K': { 1: 'reserved', 2: 'block', 3: 'reserved' },
  '64K-LPA': { 1: 'block', 2: 'block', 3: 'reserved' },
};

describe('Arm ARM D8.3 AArch64.BlockDescSupported (QEMU ptw.c lpae_block_desc_valid): where bits[1:0] = 0b01 is a block', () => {
  for (const c of Object.keys(CLASSES) as ClassName[]) {
    const b = bitsOf(c);
    for (const level of LEVELS[c]) {
      const want = BLOCK_MATRIX[c][level]!;
      test(`${c} level ${level}: 0b01 is ${want}`, () => {
        const d = b.decode(0x401n, level);
        expect(d.kind).toBe(want);
        if (want === 'reserved') expect(d.reason).toMatch(/AArch64\.(BlockDescSupported|DecodeDescriptorType)/);
      });
    }
  }
  test('a lookup level the granule does not have is a RangeError (4K without DS: -1; 16K: -1; 64K: 0)', () => {
    expect(() => bitsOf('4K').decode(3n, -1)).toThrow(RangeError);
    expect(() => bitsOf('16K-LPA2').decode(3n, -1)).toThrow(RangeError);
    expect(() => bitsOf('64K-LPA').decode(3n, 0)).toThrow(RangeError);
    expect(() => bitsOf('4K').decode(3n, 4)).toThrow(RangeError);
  });
});

// ---- layouts ----------------------------------------------------------------------------------

type Spec = [name: string, msb: number, lsb: number, role?: 'ignored' | 'reserved' | 'software'];

const UPPER: Spec[] = [
  ['gp', 50, 50],
  ['dbm', 51, 51],
  ['contiguous', 52, 52],
  ['pxn', 53, 53],
  ['uxn', 54, 54],
  ['sw55', 58, 55, 'software'],
  ['pbha', 62, 59, 'ignored'],
  ['ignored63', 63, 63, 'ignored'],
];
const LOWER_SH: Spec[] = [
  ['valid', 0, 0],
  ['type', 1, 1],
  ['attrIndx', 4, 2],
  ['ns', 5, 5],
  ['ap', 7, 6],
  ['sh', 9, 8],
  ['af', 10, 10],
  ['nG', 11, 11],
];
// With DS = 1 bits[9:8] are OA[51:50] and SH comes from TCR_ELx.
const LOWER_DS: Spec[] = LOWER_SH.map((s) => (s[0] === 'sh' ? ['oaHi', 9, 8] : s));
const TABLE_UPPER: Spec[] = [
  ['ignored51', 58, 51, 'ignored'],
  ['pxnTable', 59, 59],
  ['uxnTable', 60, 60],
  ['apTable', 62, 61],
  ['nsTable', 63, 63],
];
const TABLE_LOWER: Spec[] = [
  ['valid', 0, 0],
  ['type', 1, 1],
  ['ignored2', 9, 2, 'ignored'],
  ['af', 10, 10, 'ignored'],
  ['ignored11', 11, 11, 'ignored'],
];
const TABLE_LOWER_DS: Spec[] = [
  ['valid', 0, 0],
  ['type', 1, 1],
  ['ignored2', 7, 2, 'ignored'],
  ['nltaHi', 9, 8],
  ['af', 10, 10, 'ignored'],
  ['ignored11', 11, 11, 'ignored'],
];
const RES0_48: Spec = ['res0_48', 49, 48, 'reserved'];

/** [class, kind, level, fields low to high] */
const LAYOUTS: [ClassName, DescriptorKind, number, Spec[]][] = [
  // Pages (level 3): OA[47:12|14|16]; 16K/64K have RES0 (or LPA's OA[51:48]) between nG and the OA.
  ['4K', 'page', 3, [...LOWER_SH, ['oa', 47, 12], RES0_48, ...UPPER]],
  ['4K-LPA2', 'page', 3, [...LOWER_DS, ['oa', 49, 12], ...UPPER]],
  ['16K', 'page', 3, [...LOWER_SH, ['res0_12', 13, 12, 'reserved'], ['oa', 47, 14], RES0_48, ...UPPER]],
  ['16K-LPA2', 'page', 3, [...LOWER_DS, ['res0_12', 13, 12, 'reserved'], ['oa', 49, 14], ...UPPER]],
  ['64K', 'page', 3, [...LOWER_SH, ['res0_12', 15, 12, 'reserved'], ['oa', 47, 16], RES0_48, ...UPPER]],
  ['64K-LPA', 'page', 3, [...LOWER_SH, ['oaHi', 15, 12], ['oa', 47, 16], RES0_48, ...UPPER]],
  // Blocks: nT at bit 16 (FEAT_BBM), RES0 up to the block size's shift.
  ['4K', 'block', 1, [...LOWER_SH, ['res0_12', 15, 12, 'reserved'], ['nT', 16, 16], ['res0_17', 29, 17, 'reserved'], ['oa', 47, 30], RES0_48, ...UPPER]],
  ['4K', 'block', 2, [...LOWER_SH, ['res0_12', 15, 12, 'reserved'], ['nT', 16, 16], ['res0_17', 20, 17, 'reserved'], ['oa', 47, 21], RES0_48, ...UPPER]],
  ['4K-LPA2', 'block', 0, [...LOWER_DS, ['res0_12', 15, 12, 'reserved'], ['nT', 16, 16], ['res0_17', 38, 17, 'reserved'], ['oa', 49, 39], ...UPPER]],
  ['4K-LPA2', 'block', 1, [...LOWER_DS, ['res0_12', 15, 12, 'reserved'], ['nT', 16, 16], ['res0_17', 29, 17, 'reserved'], ['oa', 49, 30], ...UPPER]],
  ['4K-LPA2', 'block', 2, [...LOWER_DS, ['res0_12', 15, 12, 'reserved'], ['nT', 16, 16], ['res0_17', 20, 17, 'reserved'], ['oa', 49, 21], ...UPPER]],
  ['16K', 'block', 2, [...LOWER_SH, ['res0_12', 15, 12, 'reserved'], ['nT', 16, 16], ['res0_17', 24, 17, 'reserved'], ['oa', 47, 25], RES0_48, ...UPPER]],
  ['16K-LPA2', 'block', 1, [...LOWER_DS, ['res0_12', 15, 12, 'reserved'], ['nT', 16, 16], ['res0_17', 35, 17, 'reserved'], ['oa', 49, 36], ...UPPER]],
  ['16K-LPA2', 'block', 2, [...LOWER_DS, ['res0_12', 15, 12, 'reserved'], ['nT', 16, 16], ['res0_17', 24, 17, 'reserved'], ['oa', 49, 25], ...UPPER]],
  ['64K', 'block', 2, [...LOWER_SH, ['res0_12', 15, 12, 'reserved'], ['nT', 16, 16], ['res0_17', 28, 17, 'reserved'], ['oa', 47, 29], RES0_48, ...UPPER]],
  ['64K-LPA', 'block', 1, [...LOWER_SH, ['oaHi', 15, 12], ['nT', 16, 16], ['res0_17', 41, 17, 'reserved'], ['oa', 47, 42], RES0_48, ...UPPER]],
  ['64K-LPA', 'block', 2, [...LOWER_SH, ['oaHi', 15, 12], ['nT', 16, 16], ['res0_17', 28, 17, 'reserved'], ['oa', 47, 29], RES0_48, ...UPPER]],
  // Tables: NLTA[47:g] (LPA2: [49:g] with [51:50] in 9:8; LPA: [51:48] in 15:12), RES0 50:48.
  ['4K', 'table', 0, [...TABLE_LOWER, ['nlta', 47, 12], ['res0_48', 50, 48, 'reserved'], ...TABLE_UPPER]],
  ['4K', 'table', 2, [...TABLE_LOWER, ['nlta', 47, 12], ['res0_48', 50, 48, 'reserved'], ...TABLE_UPPER]],
  ['4K-LPA2', 'table', -1, [...TABLE_LOWER_DS, ['nlta', 49, 12], ['res0_50', 50, 50, 'reserved'], ...TABLE_UPPER]],
  ['16K', 'table', 1, [...TABLE_LOWER, ['res0_12', 13, 12, 'reserved'], ['nlta', 47, 14], ['res0_48', 50, 48, 'reserved'], ...TABLE_UPPER]],
  ['16K-LPA2', 'table', 0, [...TABLE_LOWER_DS, ['res0_12', 13, 12, 'reserved'], ['nlta', 49, 14], ['res0_50', 50, 50, 'reserved'], ...TABLE_UPPER]],
  ['64K', 'table', 2, [...TABLE_LOWER, ['res0_12', 15, 12, 'reserved'], ['nlta', 47, 16], ['res0_48', 50, 48, 'reserved'], ...TABLE_UPPER]],
  ['64K-LPA', 'table', 1, [...TABLE_LOWER, ['nltaHi', 15, 12], ['nlta', 47, 16], ['res0_48', 50, 48, 'reserved'], ...TABLE_UPPER]],
  // Invalid and reserved encodings: only the structural bits mean anything.
  ['4K', 'invalid', 3, [['valid', 0, 0], ['ignored1', 63, 1, 'ignored']]],
  ['16K', 'reserved', 1, [['valid', 0, 0], ['type', 1, 1], ['ignored2', 63, 2, 'ignored']]],
];

/** The value with the structural bits of a kind: invalid 0, block/reserved 0b01, table/page 0b11. */
const STRUCT: Record<DescriptorKind, bigint> = { invalid: 0n, block: 1n, reserved: 1n, table: 3n, page: 3n };

describe('Arm ARM D8.3 descriptor formats: every field, low to high, tiling bits 63:0', () => {
  for (const [c, kind, level, specs] of LAYOUTS) {
    const b = bitsOf(c);
    test(`${c} ${kind} at level ${level}: names, positions and roles`, () => {
      const d = b.decode(STRUCT[kind], level);
      expect(d.kind).toBe(kind);
      expect(d.fields.map((f) => [f.name, f.msb, f.lsb, f.role])).toEqual(specs.map(([n, m, l, r]) => [n, m, l, r]));
    });
    for (const [name, msb, lsb] of specs) {
      if (name === 'valid' || name === 'type') continue;
      test(`${c} ${kind} at level ${level}: setting only ${name} (bits[${msb}:${lsb}]) decodes as ${name} = all ones`, () => {
        const ones = (1n << BigInt(msb - lsb + 1)) - 1n;
        const v = STRUCT[kind] | (ones << BigInt(lsb));
        const d = b.decode(v, level);
        expect(d.kind).toBe(kind);
        for (const f of d.fields) {
          if (f.name === name) expect(f.value).toBe(ones);
          else if (f.name !== 'valid' && f.name !== 'type') expect(f.value).toBe(0n);
        }
        expect(b.encode(kind, level, fieldsOf(d))).toBe(v);
      });
    }
  }
});

// ---- hand vectors -----------------------------------------------------------------------------

describe('Arm ARM D8.3 hand-decoded descriptors', () => {
  test('4K page 0x0068000012345FC3: Linux PAGE_SHARED at PA 0x12345000', () => {
    const d = bitsOf('4K').decode(0x0068000012345fc3n, 3);
    expect(d.kind).toBe('page');
    expect(d.address).toBe(0x12345000n);
    expect(field(d, 'attrIndx').value).toBe(0n);
    expect(field(d, 'ap').value).toBe(3n);
    expect(field(d, 'ap').meaning).toMatch(/read-only at EL1 and EL0/);
    expect(field(d, 'sh').value).toBe(3n);
    expect(field(d, 'sh').meaning).toBe('inner shareable');
    expect(field(d, 'af').value).toBe(1n);
    expect(field(d, 'nG').value).toBe(1n);
    expect(field(d, 'oa').value).toBe(0x12345n);
    expect(field(d, 'oa').address).toBe(0x12345000n);
    expect(field(d, 'dbm').value).toBe(1n);
    expect(field(d, 'pxn').value).toBe(1n);
    expect(field(d, 'uxn').value).toBe(1n);
    expect(field(d, 'contiguous').value).toBe(0n);
    expect(d.reason).toBeUndefined();
  });

  test('4K level 2 block 0x0000000040200401: 2 MiB at PA 0x40200000; nT (bit 16) is not address', () => {
    const d = bitsOf('4K').decode(0x0000000040200401n, 2);
    expect(d.kind).toBe('block');
    expect(field(d, 'oa').value).toBe(0x201n);
    expect(d.address).toBe(0x40200000n);
    const withNt = bitsOf('4K').decode(0x0000000040210401n, 2);
    expect(field(withNt, 'nT').value).toBe(1n);
    expect(withNt.address).toBe(0x40200000n);
    expect(withNt.reason).toBeUndefined();
  });

  test('4K level 2 block with RES0 bit 17 set still decodes as a block and names the field in reason', () => {
    const d = bitsOf('4K').decode(0x0000000040220401n, 2);
    expect(d.kind).toBe('block');
    expect(field(d, 'res0_17').value).toBe(1n);
    expect(d.reason).toMatch(/res0_17/);
    expect(d.address).toBe(0x40200000n);
  });

  test('4K level 1 block 0x00000000C0000401: 1 GiB at PA 0xC0000000', () => {
    const d = bitsOf('4K').decode(0x00000000c0000401n, 1);
    expect(d.kind).toBe('block');
    expect(field(d, 'oa').value).toBe(3n);
    expect(d.address).toBe(0xc0000000n);
  });

  test('4K table 0x0800000087654403: next table at 0x87654000, PXNTable, table AF (FEAT_HAFT)', () => {
    const d = bitsOf('4K').decode(0x0800000087654403n, 1);
    expect(d.kind).toBe('table');
    expect(d.address).toBe(0x87654000n);
    expect(field(d, 'nlta').value).toBe(0x87654n);
    expect(field(d, 'pxnTable').value).toBe(1n);
    expect(field(d, 'uxnTable').value).toBe(0n);
    expect(field(d, 'af').value).toBe(1n);
    expect(field(d, 'apTable').value).toBe(0n);
  });

  test('64K-LPA page 0x000012345678F403: OA[51:48] = 0xF from bits[15:12] → PA 0xF123456780000', () => {
    const d = bitsOf('64K-LPA').decode(0x000012345678f403n, 3);
    expect(d.kind).toBe('page');
    expect(field(d, 'oaHi').value).toBe(0xfn);
    expect(field(d, 'oa').value).toBe(0x12345678n);
    expect(d.address).toBe(0xf123456780000n);
    expect(field(d, 'oaHi').address).toBe(0xf123456780000n);
  });

  test('64K without LPA: bits[15:12] are RES0, not address (page 0x000012345678F403 → PA 0x123456780000)', () => {
    const d = bitsOf('64K').decode(0x000012345678f403n, 3);
    expect(field(d, 'res0_12').value).toBe(0xfn);
    expect(d.address).toBe(0x123456780000n);
    expect(d.reason).toMatch(/res0_12/);
  });

  test('64K-LPA level 1 block 0x000004000000A401: 4 TiB block at PA 0xA040000000000', () => {
    const d = bitsOf('64K-LPA').decode(0x000004000000a401n, 1);
    expect(d.kind).toBe('block');
    expect(field(d, 'oa').value).toBe(1n);
    expect(field(d, 'oaHi').value).toBe(0xan);
    expect(d.address).toBe(0xa040000000000n);
  });

  test('64K-LPA table 0x0000000012343003: NLTA[51:48] = 3 in bits[15:12] → table at 0x3000012340000', () => {
    const d = bitsOf('64K-LPA').decode(0x0000000012343003n, 2);
    expect(d.kind).toBe('table');
    expect(field(d, 'nltaHi').value).toBe(3n);
    expect(d.address).toBe(0x3000012340000n);
  });

  test('4K-LPA2 page 0x0003000012345703: OA[51:50] = 3 from bits[9:8], OA[49:12] in place → PA 0xF000012345000', () => {
    const d = bitsOf('4K-LPA2').decode(0x0003000012345703n, 3);
    expect(d.kind).toBe('page');
    expect(field(d, 'oaHi').value).toBe(3n);
    expect(field(d, 'oa').value).toBe(0x3000012345n);
    expect(d.address).toBe(0xf000012345000n);
    expect(d.fields.some((f) => f.name === 'sh')).toBe(false);
  });

  test('16K-LPA2 level 1 block 0x0000001000000601: 64 GiB block, OA[51:50] = 2 → PA 0x8001000000000', () => {
    const d = bitsOf('16K-LPA2').decode(0x0000001000000601n, 1);
    expect(d.kind).toBe('block');
    expect(field(d, 'oa').value).toBe(1n);
    expect(field(d, 'oaHi').value).toBe(2n);
    expect(d.address).toBe(0x8001000000000n);
  });

  test('4K-LPA2 level -1 table 0x0000000100000103: NLTA[51:50] = 1 → table at 0x4000100000000', () => {
    const d = bitsOf('4K-LPA2').decode(0x0000000100000103n, -1);
    expect(d.kind).toBe('table');
    expect(field(d, 'nltaHi').value).toBe(1n);
    expect(d.address).toBe(0x4000100000000n);
  });

  test('invalid descriptors keep their software bits in one ignored field (bits[63:1])', () => {
    const d = bitsOf('4K').decode(0x00000000000050c0n, 3);
    expect(d.kind).toBe('invalid');
    expect(field(d, 'ignored1').value).toBe(0x2860n);
    expect(d.address).toBeUndefined();
  });
});

// ---- encode -----------------------------------------------------------------------------------

describe('encode from named fields (Arm ARM D8.3 bit positions)', () => {
  test('4K page from fields: oa 0x12345, ap 3, sh 3, af, nG, dbm, pxn, uxn = 0x0068000012345FC3', () => {
    const v = bitsOf('4K').encode('page', 3, { oa: 0x12345n, ap: 3, sh: 3, af: true, nG: 1, dbm: 1, pxn: 1, uxn: 1 });
    expect(v).toBe(0x0068000012345fc3n);
  });
  test('64K-LPA page from an address: 0xF123456780000 splits into bits[47:16] and OA[51:48] in bits[15:12]', () => {
    expect(bitsOf('64K-LPA').encode('page', 3, { address: 0xf123456780000n, af: 1 })).toBe(0x000012345678f403n);
  });
  test('4K-LPA2 block from an address: 0x8000000200000 at level 2 → bits[9:8] = 2, OA[49:21]', () => {
    // 0x8000000200000 = 2^51 + 2^21: OA[51:50] = 0b10, OA[49:21] = 1.
    expect(bitsOf('4K-LPA2').encode('block', 2, { address: 0x8000000200000n })).toBe(0x0000000000200201n);
  });
  test('4K table from an address with PXNTable and APTable = 0b10', () => {
    expect(bitsOf('4K').encode('table', 0, { address: 0x1000n, pxnTable: 1, apTable: 2 })).toBe(0x4800000000001003n);
  });
  test('valid and type follow the kind: an empty field set gives the bare encoding', () => {
    expect(bitsOf('16K').encode('block', 2, {})).toBe(0x1n);
    expect(bitsOf('16K').encode('page', 3, {})).toBe(0x3n);
    expect(bitsOf('16K').encode('table', 1, {})).toBe(0x3n);
    expect(bitsOf('16K').encode('invalid', 1, {})).toBe(0x0n);
    expect(bitsOf('16K').encode('reserved', 1, {})).toBe(0x1n);
  });
  test('misuse is a RangeError naming the problem', () => {
    const b = bitsOf('4K');
    expect(() => b.encode('page', 3, { bogus: 1 })).toThrow(/no field 'bogus'/);
    expect(() => b.encode('page', 3, { ap: 4 })).toThrow(/does not fit bits\[7:6\]/);
    expect(() => b.encode('page', 2, {})).toThrow(RangeError);
    expect(() => b.encode('block', 0, {})).toThrow(/reserved/);
    expect(() => b.encode('table', 3, {})).toThrow(RangeError);
    expect(() => b.encode('page', 3, { valid: 0 })).toThrow(RangeError);
    expect(() => b.encode('page', 3, { address: 0x1000n, oa: 1 })).toThrow(/either/);
    expect(() => b.encode('block', 2, { address: 0x1000n })).toThrow(/aligned/);
    expect(() => b.encode('page', 3, { address: 1n << 48n })).toThrow(/48-bit/);
    expect(() => bitsOf('16K').encode('block', 1, {})).toThrow(RangeError);
    expect(() => bitsOf('16K').encode('reserved', 2, {})).toThrow(RangeError);
  });
});

// ---- round trips ------------------------------------------------------------------------------

/** splitmix64: a seeded 64-bit generator. */
function rng(seed: bigint): () => bigint {
  let s = seed & 0xffffffffffffffffn;
  const M = 0xffffffffffffffffn;
  return () => {
    s = (s + 0x9e3779b97f4a7c15n) & M;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    return z ^ (z >> 31n);
  };
}

describe('encode(decode(v)) === v: 1200 seeded random values per level per class', () => {
  for (const c of Object.keys(CLASSES) as ClassName[]) {
    const b = bitsOf(c);
    for (const level of LEVELS[c]) {
      test(`${c} level ${level}`, () => {
        const next = rng(0xa5a5n * BigInt(level + 7) + BigInt(c.length));
        const kinds = new Set<string>();
        for (let i = 0; i < 1200; i++) {
          // Force bits[1:0] through all four encodings so every kind at this level is exercised.
          const v = (next() & ~3n) | BigInt(i & 3);
          const d = b.decode(v, level);
          kinds.add(d.kind);
          let nextBit = 0;
          for (const f of d.fields) {
            expect(f.lsb).toBe(nextBit);
            nextBit = f.msb + 1;
          }
          expect(nextBit).toBe(64);
          expect(b.encode(d.kind, d.level, fieldsOf(d))).toBe(v);
        }
        expect(kinds.has('invalid')).toBe(true);
        expect(kinds.size).toBe(3);
      });
    }
  }
});
