/**
 * The ARM64 hardware walk (VMSAv8-64 stage 1, EL1&0) over hand-built tables: granules, VA sizes,
 * start levels, 52-bit output addresses, TTBR selection, TBI, address-size checks, descriptor
 * types, MAIR attributes, big-endian walks, registers.
 *
 * Every descriptor and every expected address below is hex written by hand from the Arm ARM
 * (DDI 0487) bit positions: D8.2 (granules, lookup levels, AArch64.S1StartLevel), D8.3 (descriptor
 * formats, AArch64.NextTableBase / AArch64.LeafBase), D8.1/AArch64.VAIsOutOfRange, TCR_EL1 and
 * TTBRn_EL1 field layouts, ESR_ELx DFSC encodings. Index arithmetic is in the comments.
 */
import { describe, expect, test } from 'vitest';
import { PhysMem } from '../../src/mem/physmem';
import { createArm64Mmu, mairAttrName } from '../../src/arch/arm64/mmu';
import { WalkResult, isFault, type Mmu, type TranslateOutcome, type Translation, type TranslationFaultInfo } from '../../src/arch/mmu-types';

const BASE = 0x40000000;

/** TCR_EL1 from named fields (bit positions: Arm ARM, TCR_EL1). EPD1 defaults to 1 (no TTBR1 walks). */
interface Tcr {
  t0sz?: number;
  epd0?: number;
  sh0?: number;
  tg0?: number;
  t1sz?: number;
  epd1?: number;
  sh1?: number;
  tg1?: number;
  ips?: number;
  tbi0?: number;
  tbi1?: number;
  ha?: number;
  hd?: number;
  hpd0?: number;
  tbid0?: number;
  ds?: number;
}
function tcr(f: Tcr): bigint {
  let v = 0n;
  const put = (val: number | undefined, lsb: number) => {
    v |= BigInt(val ?? 0) << BigInt(lsb);
  };
  put(f.t0sz ?? 16, 0);
  put(f.epd0, 7);
  put(f.sh0, 12);
  put(f.tg0, 14);
  put(f.t1sz ?? 16, 16);
  put(f.epd1 ?? 1, 23);
  put(f.sh1, 28);
  put(f.tg1 ?? 2, 30);
  put(f.ips ?? 5, 32);
  put(f.tbi0, 37);
  put(f.tbi1, 38);
  put(f.ha, 39);
  put(f.hd, 40);
  put(f.hpd0, 41);
  put(f.tbid0, 51);
  put(f.ds, 59);
  return v;
}

function mem(size = 16 << 20, physBase = BASE): PhysMem {
  return new PhysMem({ size, physBase });
}

function ok(t: TranslateOutcome): Translation {
  if (isFault(t)) throw new Error(`unexpected fault ${JSON.stringify({ ...t.fault, va: t.va.toString(16) })}`);
  return t;
}
function bad(t: TranslateOutcome): TranslationFaultInfo['fault'] {
  if (!isFault(t)) throw new Error(`expected a fault, got pa 0x${t.pa.toString(16)}`);
  return t.fault;
}

const MAIR_DEFAULT = 0x000000000044ff04n; // Attr0 Device-nGnRE, Attr1 Normal WB, Attr2 Normal NC

// ---- 4KB granule, 48-bit VA --------------------------------------------------------------------

/**
 * VA 0x0000_0081_4060_3abc, 4KB, T0SZ = 16: L0 index VA[47:39] = 1, L1 VA[38:30] = 5,
 * L2 VA[29:21] = 3, L3 VA[20:12] = 3, offset 0xabc.
 */
function fourK48(): { m: PhysMem; mmu: Mmu } {
  const m = mem();
  m.write64(0x40000008, 0x0000000040001003n); // L0[1] → table 0x40001000
  m.write64(0x40001028, 0x0000000040002003n); // L1[5] → table 0x40002000
  m.write64(0x40002018, 0x0000000040003003n); // L2[3] → table 0x40003000
  // L3[3]: page OA 0x4_5678_9000, UXN, nG, AF, SH = 0b11, AP = 0b01, AttrIndx = 1.
  m.write64(0x40003018, 0x0040000456789f47n);
  const mmu = createArm64Mmu(m, { ttbr0_el1: 0x40000000n, tcr_el1: tcr({ t0sz: 16 }), mair_el1: MAIR_DEFAULT });
  return { m, mmu };
}

describe('Arm ARM D8.2 4KB granule, 48-bit VA (T0SZ = 16): four lookup levels 0-3', () => {
  test('AArch64.S1StartLevel: 48-bit VA with 4KB starts at level 0; page at level 3', () => {
    const { mmu } = fourK48();
    const t = ok(mmu.translate(0x0000008140603abcn, 'read', false));
    expect(t.pa).toBe(0x456789abcn);
    expect(t.level).toBe(3);
    expect(t.pageSize).toBe(4096);
  });
  test('D8.3 page descriptor attributes: AP, UXN, AF, SH, AttrIndx, nG, memattr from MAIR_EL1 Attr1', () => {
    const { mmu } = fourK48();
    const t = ok(mmu.translate(0x0000008140603abcn, 'read', false));
    expect(t.attrs).toEqual({
      ap: 1,
      uxn: true,
      pxn: false,
      af: true,
      sh: 3,
      attr_indx: 1,
      ng: true,
      contiguous: false,
      dbm: false,
      memattr: 'Normal WB',
    });
  });
  test('AArch64.S1Walk: descriptor addresses visited, one memory reference per level', () => {
    const { mmu } = fourK48();
    const out = new WalkResult();
    mmu.walk(0x00000081, 0x40603abc, 'read', false, false, out);
    expect(out.fault).toBeNull();
    expect(out.memRefs).toBe(4);
    expect(out.entries).toBe(4);
    expect(Array.from(out.entryAddrs.slice(0, 4))).toEqual([0x40000008, 0x40001028, 0x40002018, 0x40003018]);
    expect(Array.from(out.entryLo.slice(0, 4))).toEqual([0x40001003, 0x40002003, 0x40003003, 0x56789f47]);
    expect(out.entryHi[3]).toBe(0x00400004);
    expect(out.leafAddr).toBe(0x40003018);
    expect(out.leafLo).toBe(0x56789f47);
    expect(out.leafHi).toBe(0x00400004);
    expect(out.pageBase).toBe(0x456789000);
    expect(out.pa).toBe(0x456789abc);
    expect(out.global).toBe(false); // nG = 1
    expect(out.attrIndx).toBe(1);
  });
  test('a WalkResult reused for a faulting walk keeps nothing of the previous success', () => {
    const { mmu } = fourK48();
    const out = new WalkResult();
    mmu.walk(0x00000081, 0x40603abc, 'read', false, false, out);
    mmu.walk(0x00000000, 0x00000000, 'read', false, false, out); // L0[0] is empty
    expect(out.fault).toBe('translation');
    expect(out.pa).toBe(0);
    expect(out.pageSize).toBe(0);
    expect(out.permPriv).toBe(0);
    expect(out.memRefs).toBe(1);
  });
  test('D8.3 AArch64.DecodeDescriptorType: an invalid descriptor is a Translation fault at its level (DFSC 0b0001LL)', () => {
    const { m, mmu } = fourK48();
    expect(bad(mmu.translate(0n, 'read', false))).toEqual({ kind: 'translation', level: 0, code: 0x04 });
    m.write64(0x40002018, 0x0000000040003002n); // bit 0 clear: invalid, whatever bit 1 says
    expect(bad(mmu.translate(0x0000008140603abcn, 'read', false))).toEqual({ kind: 'translation', level: 2, code: 0x06 });
  });
  test('D8.3: bits[1:0] = 0b01 at level 3 is reserved, a level 3 Translation fault (0x07)', () => {
    const { m, mmu } = fourK48();
    m.write64(0x40003018, 0x0000000456789401n);
    expect(bad(mmu.translate(0x0000008140603abcn, 'read', false))).toEqual({ kind: 'translation', level: 3, code: 0x07 });
  });
  test('AArch64.BlockDescSupported: no level 0 block with 4KB unless DS = 1 (level 0 Translation fault)', () => {
    const { m, mmu } = fourK48();
    m.write64(0x40000008, 0x0000008000000401n); // a 512GB "block" at level 0
    expect(bad(mmu.translate(0x0000008140603abcn, 'read', false))).toEqual({ kind: 'translation', level: 0, code: 0x04 });
  });
  test('D8.3 Contiguous (bit 52) and nG = 0 are reported on the walk result', () => {
    const { m, mmu } = fourK48();
    m.write64(0x40003018, 0x0010000456789743n); // Contiguous, nG = 0, AF, SH = 0b11, AP = 0b01
    const out = new WalkResult();
    mmu.walk(0x00000081, 0x40603abc, 'read', false, false, out);
    expect(out.contiguous).toBe(true);
    expect(out.global).toBe(true);
    const t = ok(mmu.translate(0x0000008140603abcn, 'read', false));
    expect(t.attrs.contiguous).toBe(true);
    expect(t.attrs.ng).toBe(false);
  });
  test('a descriptor read outside emulated memory is a synchronous External abort on translation table walk at that level (DFSC 0b010110 at level 2), not a throw', () => {
    const { m, mmu } = fourK48();
    m.write64(0x40001028, 0x0000000080000003n); // L1[5] → a table at 0x80000000, past the 16 MiB memory
    expect(bad(mmu.translate(0x0000008140603abcn, 'read', false))).toEqual({ kind: 'external_abort', level: 2, code: 0x16 });
    const out = new WalkResult();
    mmu.walk(0x00000081, 0x40603abc, 'read', false, false, out);
    // L2 index of VA 0x8140603abc is bits 29:21 = 3: the aborted read was at 0x80000018.
    expect(out.entries).toBe(3);
    expect(out.entryAddrs[2]).toBe(0x80000018);
  });
});

// ---- 4KB granule, 39-bit VA: blocks ----------------------------------------------------------

describe('Arm ARM D8.2 4KB granule, 39-bit VA (T0SZ = 25): start level 1, 1GB and 2MB blocks', () => {
  function setup() {
    const m = mem();
    // Level 1 table at 0x40000000 (512 entries: VA[38:30]).
    m.write64(0x40000800, 0x0000000040001003n); // L1[256] → L2 table 0x40001000
    m.write64(0x40001800, 0x0000000080600401n); // L2[256]: 2MB block OA 0x8060_0000, AF
    m.write64(0x40000018, 0x0000000140000401n); // L1[3]: 1GB block OA 0x1_4000_0000, AF
    const mmu = createArm64Mmu(m, { ttbr0_el1: 0x40000000n, tcr_el1: tcr({ t0sz: 25 }), mair_el1: MAIR_DEFAULT });
    return { m, mmu };
  }
  test('AArch64.S1StartLevel: 4 - floor((39 - 4) / 9) = 1; VA 0x40_2000_1234 is L1[256] L2[256] + 0x1234', () => {
    const { mmu } = setup();
    const t = ok(mmu.translate(0x0000004020001234n, 'read', false));
    expect(t.pa).toBe(0x80601234n);
    expect(t.level).toBe(2);
    expect(t.pageSize).toBe(0x200000);
    const out = new WalkResult();
    mmu.walk(0x40, 0x20001234, 'read', false, false, out);
    expect(out.memRefs).toBe(2);
    expect(Array.from(out.entryAddrs.slice(0, 2))).toEqual([0x40000800, 0x40001800]);
  });
  test('D8.3 AArch64.LeafBase: a 1GB block at level 1 keeps VA[29:0] as the offset', () => {
    const { mmu } = setup();
    const t = ok(mmu.translate(0x00000000c0005678n, 'read', false));
    expect(t.pa).toBe(0x140005678n);
    expect(t.level).toBe(1);
    expect(t.pageSize).toBe(0x40000000);
  });
  test('D8.3: a block OA field is aligned to the block size (the RES0 low bits do not reach the PA)', () => {
    const { m, mmu } = setup();
    m.write64(0x40001800, 0x00000000807ff401n); // bits [20:12] set in a 2MB block descriptor
    expect(ok(mmu.translate(0x0000004020001234n, 'read', false)).pa).toBe(0x80601234n);
  });
  test('AArch64.VAIsOutOfRange: VA bits [63:39] must all be 0 for TTBR0 (level 0 Translation fault)', () => {
    const { mmu } = setup();
    expect(bad(mmu.translate(0x0000008000000000n, 'read', false))).toEqual({ kind: 'translation', level: 0, code: 0x04 });
  });
});

// ---- 16KB granule ----------------------------------------------------------------------------

describe('Arm ARM D8.2 16KB granule (TG0 = 0b10)', () => {
  /** T0SZ = 17 (47-bit): start level 1, L1 VA[46:36], L2 VA[35:25], L3 VA[24:14]. */
  function setup47() {
    const m = mem();
    // VA 0x5a3c_9e47_6abc: L1 idx 0x5a3 (offset 0x2d18), L2 idx 0x64f (0x3278), L3 idx 0x11d (0x8e8), offset 0x2abc.
    m.write64(0x40002d18, 0x0000000040004003n);
    m.write64(0x40007278, 0x0000000040008003n);
    m.write64(0x400088e8, 0x000000012345c403n); // page OA 0x1_2345_c000, AF
    // L2 idx 0x650 (offset 0x3280): 32MB block OA 0x2_0200_0000.
    m.write64(0x40007280, 0x0000000202000401n);
    const mmu = createArm64Mmu(m, { ttbr0_el1: 0x40000000n, tcr_el1: tcr({ t0sz: 17, tg0: 0b10 }), mair_el1: MAIR_DEFAULT });
    return { m, mmu };
  }
  test('AArch64.S1StartLevel: 47-bit VA with 16KB starts at level 1 (4 - floor(43 / 11))', () => {
    const { mmu } = setup47();
    const t = ok(mmu.translate(0x00005a3c9e476abcn, 'read', false));
    expect(t.pa).toBe(0x12345eabcn);
    expect(t.level).toBe(3);
    expect(t.pageSize).toBe(16384);
    const out = new WalkResult();
    mmu.walk(0x5a3c, 0x9e476abc, 'read', false, false, out);
    expect(Array.from(out.entryAddrs.slice(0, 3))).toEqual([0x40002d18, 0x40007278, 0x400088e8]);
  });
  test('D8.3: a 32MB block at level 2 with 16KB', () => {
    const { mmu } = setup47();
    const t = ok(mmu.translate(0x00005a3ca1234567n, 'read', false));
    expect(t.pa).toBe(0x203234567n);
    expect(t.level).toBe(2);
    expect(t.pageSize).toBe(0x2000000);
  });
  test('AArch64.BlockDescSupported: no level 1 block with 16KB unless DS = 1 (Translation fault, 0x05)', () => {
    const { m, mmu } = setup47();
    m.write64(0x40002d18, 0x0000001000000401n); // a 64GB block at level 1
    expect(bad(mmu.translate(0x00005a3c9e476abcn, 'read', false))).toEqual({ kind: 'translation', level: 1, code: 0x05 });
  });
  test('AArch64.S1StartLevel: 48-bit VA with 16KB starts at level 0 with a 2-entry table (VA[47])', () => {
    const m = mem();
    // VA 0x8123_4567_8abc: L0 idx 1, L1 idx 0x12 (0x90), L2 idx 0x1a2 (0xd10), 32MB block, offset 0x1678abc.
    m.write64(0x40000008, 0x0000000040004003n);
    m.write64(0x40004090, 0x0000000040008003n);
    m.write64(0x40008d10, 0x0000000306000401n); // 32MB block OA 0x3_0600_0000
    const mmu = createArm64Mmu(m, { ttbr0_el1: 0x40000000n, tcr_el1: tcr({ t0sz: 16, tg0: 0b10 }) });
    const t = ok(mmu.translate(0x0000812345678abcn, 'read', false));
    expect(t.pa).toBe(0x307678abcn);
    expect(t.level).toBe(2);
  });
  test('AArch64.BlockDescSupported with DS = 1 (FEAT_LPA2): a 64GB block at level 1 with 16KB', () => {
    const { m } = setup47();
    m.write64(0x40002d18, 0x0000001000000401n); // 64GB block OA 0x10_0000_0000
    const mmu = createArm64Mmu(m, { ttbr0_el1: 0x40000000n, tcr_el1: tcr({ t0sz: 17, tg0: 0b10, ds: 1 }) });
    const t = ok(mmu.translate(0x00005a3c9e476abcn, 'read', false));
    // VA[35:0] = 0xc_9e47_6abc is the offset in a 64GB block.
    expect(t.pa).toBe(0x1c9e476abcn);
    expect(t.level).toBe(1);
    expect(t.pageSize).toBe(2 ** 36);
  });
});

// ---- 64KB granule ----------------------------------------------------------------------------

describe('Arm ARM D8.2 64KB granule (TG0 = 0b01)', () => {
  /** T0SZ = 16: start level 1 with 64 entries (VA[47:42]), L2 VA[41:29], L3 VA[28:16]. */
  function setup48(opts?: { idAa64mmfr0?: bigint }) {
    const m = mem();
    // VA 0x9abc_def1_2345: L1 idx 0x26 (0x130), L2 idx 0x15e6 (0xaf30), L3 idx 0x1ef1 (0xf788), offset 0x2345.
    m.write64(0x40000130, 0x0000000040010003n);
    m.write64(0x4001af30, 0x0000000040020003n);
    m.write64(0x4002f788, 0x0000000567890403n); // page OA 0x5_6789_0000
    m.write64(0x4001af38, 0x0000000620000401n); // L2 idx 0x15e7: 512MB block OA 0x6_2000_0000
    const mmu = createArm64Mmu(m, { ttbr0_el1: 0x40000000n, tcr_el1: tcr({ t0sz: 16, tg0: 0b01 }) }, opts);
    return { m, mmu };
  }
  test('AArch64.S1StartLevel: 48-bit VA with 64KB starts at level 1 (4 - floor(44 / 13))', () => {
    const { mmu } = setup48();
    const t = ok(mmu.translate(0x00009abcdef12345n, 'read', false));
    expect(t.pa).toBe(0x567892345n);
    expect(t.level).toBe(3);
    expect(t.pageSize).toBe(65536);
    const out = new WalkResult();
    mmu.walk(0x9abc, 0xdef12345, 'read', false, false, out);
    expect(Array.from(out.entryAddrs.slice(0, 3))).toEqual([0x40000130, 0x4001af30, 0x4002f788]);
  });
  test('D8.3: a 512MB block at level 2 with 64KB', () => {
    const { mmu } = setup48();
    const t = ok(mmu.translate(0x00009abcfef12345n, 'read', false));
    expect(t.pa).toBe(0x63ef12345n);
    expect(t.level).toBe(2);
    expect(t.pageSize).toBe(0x20000000);
  });
  test('AArch64.LeafBase: with PAMax = 52, descriptor[15:12] are OA[51:48] even when IPS = 48 (Address size fault 0x03)', () => {
    const { m, mmu } = setup48();
    m.write64(0x4002f788, 0x0000000567891403n); // bit 12 set: OA bit 48
    expect(bad(mmu.translate(0x00009abcdef12345n, 'read', false))).toEqual({ kind: 'address_size', level: 3, code: 0x03 });
  });
  test('AArch64.LeafBase: with PAMax = 48 (ID_AA64MMFR0_EL1.PARange = 0b0101), descriptor[15:12] are not address bits', () => {
    const { m, mmu } = setup48({ idAa64mmfr0: 0x5n });
    m.write64(0x4002f788, 0x0000000567891403n);
    expect(ok(mmu.translate(0x00009abcdef12345n, 'read', false)).pa).toBe(0x567892345n);
  });
  test('AArch64.BlockDescSupported: a 64KB level 1 block needs PAMax = 52 (else level 1 Translation fault)', () => {
    const { m } = setup48();
    m.write64(0x40000130, 0x0000c00000000401n); // 4TB block OA 0xc000_0000_0000 (2^42-aligned)
    const with52 = createArm64Mmu(m, { ttbr0_el1: 0x40000000n, tcr_el1: tcr({ t0sz: 16, tg0: 0b01 }) });
    const t = ok(with52.translate(0x00009abcdef12345n, 'read', false));
    expect(t.pa).toBe(0xc2bcdef12345n); // OA + VA[41:0] = 0xc000_0000_0000 + 0x2bc_def1_2345
    expect(t.level).toBe(1);
    expect(t.pageSize).toBe(2 ** 42);
    const with48 = createArm64Mmu(m, { ttbr0_el1: 0x40000000n, tcr_el1: tcr({ t0sz: 16, tg0: 0b01 }) }, { idAa64mmfr0: 0x5n });
    expect(bad(with48.translate(0x00009abcdef12345n, 'read', false))).toEqual({ kind: 'translation', level: 1, code: 0x05 });
  });
  test('AArch64.S1StartLevel: 42-bit VA (T0SZ = 22) with 64KB starts at level 2', () => {
    const m = mem();
    // VA 0x3_4567_8abc: L2 idx VA[41:29] = 0x1a (0xd0), L3 idx VA[28:16] = 0x567 (0x2b38), offset 0x8abc.
    m.write64(0x400000d0, 0x0000000040010003n);
    m.write64(0x40012b38, 0x0000000abcde0403n);
    const mmu = createArm64Mmu(m, { ttbr0_el1: 0x40000000n, tcr_el1: tcr({ t0sz: 22, tg0: 0b01 }) });
    const out = new WalkResult();
    mmu.walk(0x3, 0x45678abc, 'read', false, false, out);
    expect(out.fault).toBeNull();
    expect(out.memRefs).toBe(2);
    expect(out.pa).toBe(0xabcde8abc);
  });
});

describe('Arm ARM D8.2 / D8.3 FEAT_LPA: 64KB granule with 52-bit VA and PA (TCR_EL1.IPS = 0b110)', () => {
  // Memory placed at 2^48 so that the tables themselves need BADDR[51:48].
  const P48 = 2 ** 48;
  function setup() {
    const m = new PhysMem({ size: 1 << 20, physBase: P48 });
    // T0SZ = 12: level 1 has 1024 entries (VA[51:42]).
    // L1 idx 0x3ff (offset 0x1ff8): 4TB block OA 0xf_fc00_0000_0000: OA[47:42] in place, OA[51:48] = 0xf in bits 15:12.
    m.write64(P48 + 0x1ff8, 0x0000fc000000f401n);
    // L1 idx 0x3fe (offset 0x1ff0) → table at 0x1_0000_0001_0000: bits 47:16 = 0x1, bits 15:12 = 0x1.
    m.write64(P48 + 0x1ff0, 0x0000000000011003n);
    m.write64(P48 + 0x10010, 0x0000000000021003n); // L2 idx 2 → table 0x1_0000_0002_0000
    m.write64(P48 + 0x20018, 0x0000765432118403n); // L3 idx 3: page OA 0x8_7654_3211_0000
    // TTBR0_EL1 BADDR[51:48] = 0b0001 in bits 5:2, BADDR[47:6] = 0.
    const mmu = createArm64Mmu(m, { ttbr0_el1: 0x4n, tcr_el1: tcr({ t0sz: 12, tg0: 0b01, ips: 0b110 }) });
    return { m, mmu };
  }
  test('AArch64.S1TTBaseAddress: TTBR0 bits 5:2 are BADDR[51:48]; a 4TB level 1 block with OA[51:48] from bits 15:12', () => {
    const { mmu } = setup();
    const t = ok(mmu.translate(0x000fff0012345678n, 'read', false));
    expect(t.pa).toBe(0xfff0012345678n);
    expect(t.level).toBe(1);
    const out = new WalkResult();
    mmu.walk(0x000fff00, 0x12345678, 'read', false, false, out);
    expect(out.entryAddrs[0]).toBe(P48 + 0x1ff8);
  });
  test('AArch64.NextTableBase: next-level table addresses above 2^48; a 64KB page with OA[51:48] = 0x8', () => {
    const { mmu } = setup();
    const t = ok(mmu.translate(0x000ff80040030042n, 'read', false));
    expect(t.pa).toBe(0x8765432110042n);
    expect(t.level).toBe(3);
    const out = new WalkResult();
    mmu.walk(0x000ff800, 0x40030042, 'read', false, false, out);
    expect(Array.from(out.entryAddrs.slice(0, 3))).toEqual([P48 + 0x1ff0, P48 + 0x10010, P48 + 0x20018]);
  });
  test('AArch64.S1MinTxSZ: T0SZ = 12 needs FEAT_LVA (ID_AA64MMFR2_EL1.VARange = 0): otherwise a level 0 Translation fault', () => {
    const { m } = setup();
    const mmu = createArm64Mmu(m, { ttbr0_el1: 0x4n, tcr_el1: tcr({ t0sz: 12, tg0: 0b01, ips: 0b110 }) }, { idAa64mmfr2: 0n });
    expect(bad(mmu.translate(0x000fff0012345678n, 'read', false))).toEqual({ kind: 'translation', level: 0, code: 0x04 });
  });
});

// ---- 4KB / 16KB with FEAT_LPA2 (DS = 1) ------------------------------------------------------

describe('Arm ARM D8.2 / D8.3 FEAT_LPA2: 4KB granule, DS = 1, 52-bit VA (T0SZ = 12): level -1', () => {
  /**
   * Tables: level -1 at 0x4000_0000 (16 entries: VA[51:48]), level 0 0x4000_1000, level 1
   * 0x4000_2000, level 2 0x4000_3000, level 3 0x4000_4000. VA 0x1_0080_4020_1123 has index 1 at every
   * level (VA[48], [39], [30], [21], [12]) and offset 0x123.
   */
  function setup(ips = 0b110) {
    const m = mem(1 << 20);
    m.write64(0x40000008, 0x0000000040001003n);
    m.write64(0x40001008, 0x0000000040002003n);
    m.write64(0x40002008, 0x0000000040003003n);
    m.write64(0x40003008, 0x0000000040004003n);
    // Page OA 0xf_1234_5678_9000: OA[51:50] = 0b11 in bits 9:8, OA[49:48] = 0b11 in bits 49:48; AF.
    m.write64(0x40004008, 0x0003123456789703n);
    // Level 0 idx 2 (offset 0x10): a 512GB block at OA 0x3_0080_0000_0000 (OA[49:48] = 0b11 in bits 49:48).
    m.write64(0x40001010, 0x0003008000000401n);
    const mmu = createArm64Mmu(m, {
      ttbr0_el1: 0x40000000n,
      tcr_el1: tcr({ t0sz: 12, tg0: 0, ips, ds: 1, sh0: 0b10 }),
      mair_el1: MAIR_DEFAULT,
    });
    return { m, mmu };
  }
  test('AArch64.S1StartLevel: 4 - floor((52 - 4) / 9) = -1; five lookups, level -1 first', () => {
    const { mmu } = setup();
    const out = new WalkResult();
    mmu.walk(0x00010080, 0x40201123, 'read', false, false, out);
    expect(out.fault).toBeNull();
    expect(out.memRefs).toBe(5);
    expect(Array.from(out.entryAddrs.slice(0, 5))).toEqual([0x40000008, 0x40001008, 0x40002008, 0x40003008, 0x40004008]);
    expect(out.level).toBe(3);
  });
  test('AArch64.LeafBase with DS: OA[51:50] from bits 9:8, OA[49:48] from bits 49:48; SH from TCR_EL1.SH0', () => {
    const { mmu } = setup();
    const t = ok(mmu.translate(0x0001008040201123n, 'read', false));
    expect(t.pa).toBe(0xf123456789123n);
    expect(t.attrs.sh).toBe(2);
  });
  test('AArch64.BlockDescSupported with DS: a 512GB block at level 0', () => {
    const { mmu } = setup();
    const t = ok(mmu.translate(0x000101123456789an, 'read', false));
    expect(t.pa).toBe(0x300923456789an);
    expect(t.level).toBe(0);
    expect(t.pageSize).toBe(2 ** 39);
  });
  test('ESR_ELx DFSC 0b101011: an invalid level -1 descriptor is a level -1 Translation fault', () => {
    const { mmu } = setup();
    expect(bad(mmu.translate(0x0002000000000000n, 'read', false))).toEqual({ kind: 'translation', level: -1, code: 0x2b });
  });
  test('ESR_ELx DFSC 0b101001: a level -1 table address beyond a 48-bit IPS is a level -1 Address size fault', () => {
    const { m, mmu } = setup(0b101);
    m.write64(0x40000008, 0x0001000040001003n); // next-table bit 48 set (descriptor bits 49:48 = 0b01)
    expect(bad(mmu.translate(0x0001008040201123n, 'read', false))).toEqual({ kind: 'address_size', level: -1, code: 0x29 });
  });
  test('AArch64.OAOutOfRange with IPS = 48: the page OA 0xf_1234_5678_9000 is a level 3 Address size fault', () => {
    const { mmu } = setup(0b101);
    expect(bad(mmu.translate(0x0001008040201123n, 'read', false))).toEqual({ kind: 'address_size', level: 3, code: 0x03 });
  });
  test('AArch64.VAIsOutOfRange: VA bit 52 set under TTBR0 is a Translation fault at level 0, not -1 (AArch64.S1Translate)', () => {
    const { mmu } = setup();
    expect(bad(mmu.translate(0x0010000000000000n, 'read', false))).toEqual({ kind: 'translation', level: 0, code: 0x04 });
  });
  test('AArch64.S1TTBaseAddress with DS: TTBR0 bits 5:2 are BADDR[51:48] (memory at 2^48)', () => {
    const P48 = 2 ** 48;
    const m = new PhysMem({ size: 1 << 20, physBase: P48 });
    m.write64(P48 + 0x78, 0x0001000000001003n); // level -1 idx 15 → table 0x1_0000_0000_1000
    const mmu = createArm64Mmu(m, { ttbr0_el1: 0x4n, tcr_el1: tcr({ t0sz: 12, tg0: 0, ips: 0b110, ds: 1 }) });
    const out = new WalkResult();
    mmu.walk(0x000f0000, 0, 'read', false, false, out);
    expect(Array.from(out.entryAddrs.slice(0, 2))).toEqual([P48 + 0x78, P48 + 0x1000]);
    expect(out).toMatchObject({ fault: 'translation', level: 0, code: 0x04 }); // level 0 entry is empty
  });
  test('TCR_EL1.DS is ignored without FEAT_LPA2 (ID_AA64MMFR0_EL1.TGran4 = 0): T0SZ = 12 is then out of range', () => {
    const { m } = setup();
    const mmu = createArm64Mmu(m, { ttbr0_el1: 0x40000000n, tcr_el1: tcr({ t0sz: 12, ips: 0b101, ds: 1 }) }, { idAa64mmfr0: 0x5n });
    expect(bad(mmu.translate(0x0001008040201123n, 'read', false))).toEqual({ kind: 'translation', level: 0, code: 0x04 });
  });
});

// ---- TTBR selection, TBI, EPD, TxSZ ----------------------------------------------------------

describe('Arm ARM D8.1 translation regime: TTBR selection by VA bit 55, TBI, EPD, TxSZ', () => {
  /**
   * TTBR0 (T0SZ = 16) at 0x4000_0000, TTBR1 (T1SZ = 16, TG1 = 0b10 = 4KB) at 0x4001_0000.
   * TTBR0 path for VA 0x40_0000 (L2[2]): 2MB block 0x8000_0000.
   * TTBR1 path for VA 0xffff_0000_0020_1000 (L0[0] L1[0] L2[1] L3[1]): page 0x9000_0000.
   */
  function setup(f: Tcr = {}) {
    const m = mem();
    m.write64(0x40000000, 0x0000000040001003n);
    m.write64(0x40001000, 0x0000000040002003n);
    m.write64(0x40002010, 0x0000000080000401n);
    m.write64(0x40010000, 0x0000000040011003n);
    m.write64(0x40011000, 0x0000000040012003n);
    m.write64(0x40012008, 0x0000000040013003n);
    m.write64(0x40013008, 0x0000000090000403n);
    // MAIR_EL1.Attr0 = 0xff (Normal WB), so that instruction fetches are allowed.
    const regs = { ttbr0_el1: 0x40000000n, ttbr1_el1: 0x40010000n, tcr_el1: tcr({ epd1: 0, tg1: 0b10, ...f }), mair_el1: 0xffn };
    return { m, mmu: createArm64Mmu(m, regs) };
  }
  test('D8.1: VA bit 55 = 1 with bits 63:48 all ones walks from TTBR1_EL1', () => {
    const { mmu } = setup();
    expect(ok(mmu.translate(0xffff000000201abcn, 'read', false)).pa).toBe(0x90000abcn);
    const out = new WalkResult();
    mmu.walk(0xffff0000, 0x00201abc, 'read', false, false, out);
    expect(out.entryAddrs[0]).toBe(0x40010000);
  });
  test('AArch64.VAIsOutOfRange: bit 55 = 1 but bits 63:48 not all ones is a level 0 Translation fault', () => {
    const { mmu } = setup();
    expect(bad(mmu.translate(0xab80000000201abcn, 'read', false))).toEqual({ kind: 'translation', level: 0, code: 0x04 });
    expect(bad(mmu.translate(0x7fff000000201abcn, 'read', false))).toEqual({ kind: 'translation', level: 0, code: 0x04 });
  });
  test('AArch64.AddrTop: TBI1 = 1 ignores VA bits 63:56 under TTBR1 (bit 55 still selects it)', () => {
    const { mmu } = setup({ tbi1: 1 });
    expect(ok(mmu.translate(0xabff000000201abcn, 'read', false)).pa).toBe(0x90000abcn);
    expect(ok(mmu.translate(0x00ff000000201abcn, 'read', false)).pa).toBe(0x90000abcn);
  });
  test('AArch64.AddrTop: TBI0 = 1 ignores VA bits 63:56 under TTBR0; TBI0 = 0 faults', () => {
    expect(ok(setup({ tbi0: 1 }).mmu.translate(0x5a00000000412345n, 'read', false)).pa).toBe(0x80012345n);
    expect(bad(setup().mmu.translate(0x5a00000000412345n, 'read', false))).toEqual({ kind: 'translation', level: 0, code: 0x04 });
  });
  test('AArch64.AddrTop: TBID0 = 1 keeps the top byte for instruction fetches only', () => {
    const { mmu } = setup({ tbi0: 1, tbid0: 1 });
    expect(ok(mmu.translate(0x5a00000000412345n, 'read', false)).pa).toBe(0x80012345n);
    expect(bad(mmu.translate(0x5a00000000412345n, 'exec', false))).toEqual({ kind: 'translation', level: 0, code: 0x04 });
    expect(ok(mmu.translate(0x0000000000412345n, 'exec', false)).pa).toBe(0x80012345n);
  });
  test('AArch64.S1Walk: EPD0 = 1 makes every TTBR0 access a level 0 Translation fault; TTBR1 still walks', () => {
    const { mmu } = setup({ epd0: 1 });
    expect(bad(mmu.translate(0x0000000000412345n, 'read', false))).toEqual({ kind: 'translation', level: 0, code: 0x04 });
    expect(ok(mmu.translate(0xffff000000201abcn, 'read', false)).pa).toBe(0x90000abcn);
    const out = new WalkResult();
    mmu.walk(0, 0x412345, 'read', false, false, out);
    expect(out.memRefs).toBe(0);
  });
  test('AArch64.S1TxSZFaults: T0SZ = 40 (above the maximum 39) and T0SZ = 15 (below 16 without DS) fault at level 0', () => {
    expect(bad(setup({ t0sz: 40 }).mmu.translate(0x412345n, 'read', false))).toEqual({ kind: 'translation', level: 0, code: 0x04 });
    expect(bad(setup({ t0sz: 15 }).mmu.translate(0x412345n, 'read', false))).toEqual({ kind: 'translation', level: 0, code: 0x04 });
  });
});

// ---- Output address size -----------------------------------------------------------------------

describe('Arm ARM D8.3 AArch64.OAOutOfRange: TCR_EL1.IPS and ID_AA64MMFR0_EL1.PARange bound output addresses', () => {
  function setup(ips: number, opts?: { idAa64mmfr0?: bigint }) {
    const m = mem();
    m.write64(0x40000000, 0x0000000040001003n); // L0[0]
    m.write64(0x40001000, 0x0000000040002003n); // L1[0]
    m.write64(0x40002000, 0x0000000040003003n); // L2[0]
    m.write64(0x40003000, 0x0000000100000403n); // L3[0]: page OA 0x1_0000_0000 (just above 32 bits)
    m.write64(0x40002008, 0x00000000c0000401n); // L2[1]: 2MB block 0xc000_0000 (below 2^32)
    m.write64(0x40002010, 0x0000000100200401n); // L2[2]: 2MB block 0x1_0020_0000
    m.write64(0x40001008, 0x0000000100000003n); // L1[1] → table at 0x1_0000_0000
    m.write64(0x40003008, 0x000000ffffff0403n); // L3[1]: page OA 0xff_ffff_0000 (just below 2^40)
    m.write64(0x40003010, 0x0000010000000403n); // L3[2]: page OA 0x100_0000_0000 (2^40)
    const mmu = createArm64Mmu(m, { ttbr0_el1: 0x40000000n, tcr_el1: tcr({ t0sz: 16, ips }) }, opts);
    return { m, mmu };
  }
  test('IPS = 0b000 (32 bits): a page OA of 2^32 is a level 3 Address size fault (DFSC 0b000011)', () => {
    expect(bad(setup(0).mmu.translate(0x0n, 'read', false))).toEqual({ kind: 'address_size', level: 3, code: 0x03 });
    expect(ok(setup(0).mmu.translate(0x200000n, 'read', false)).pa).toBe(0xc0000000n);
  });
  test('IPS = 0b000: a 2MB block at 0x1_0020_0000 is a level 2 Address size fault (0x02)', () => {
    expect(bad(setup(0).mmu.translate(0x400000n, 'read', false))).toEqual({ kind: 'address_size', level: 2, code: 0x02 });
  });
  test('IPS = 0b000: a next-level table at 2^32 is an Address size fault at the table descriptor level (1, 0x01)', () => {
    expect(bad(setup(0).mmu.translate(0x40000000n, 'read', false))).toEqual({ kind: 'address_size', level: 1, code: 0x01 });
  });
  test('AArch64.S1Walk: a TTBR0 base beyond the OA size is a level 0 Address size fault (0x00)', () => {
    const m = mem();
    const mmu = createArm64Mmu(m, { ttbr0_el1: 0x100000000n, tcr_el1: tcr({ t0sz: 16, ips: 0 }) });
    expect(bad(mmu.translate(0x0n, 'read', false))).toEqual({ kind: 'address_size', level: 0, code: 0x00 });
  });
  test('AArch64.PhysicalAddressSize: IPS = 48 capped by PARange = 0b0010 (40 bits)', () => {
    const { mmu } = setup(0b101, { idAa64mmfr0: 0x2n });
    expect(ok(mmu.translate(0x1234n, 'read', false)).pa).toBe(0xffffff0234n); // L3[1] + 0x234
    expect(bad(mmu.translate(0x2234n, 'read', false))).toEqual({ kind: 'address_size', level: 3, code: 0x03 });
    // Without the ID register the same IPS = 48 allows 2^40.
    expect(ok(setup(0b101).mmu.translate(0x2234n, 'read', false)).pa).toBe(0x10000000234n);
  });
});

// ---- MAIR, Device, endianness, MMU off ---------------------------------------------------------

describe('Arm ARM MAIR_EL1 Attr<n> encodings (memattr in translate attrs)', () => {
  test.each([
    [0x00, 'Device-nGnRnE'],
    [0x04, 'Device-nGnRE'],
    [0x08, 'Device-nGRE'],
    [0x0c, 'Device-GRE'],
    [0xff, 'Normal WB'],
    [0x44, 'Normal NC'],
    [0xbb, 'Normal WT'],
    [0x4f, 'Normal Inner-WB Outer-NC'],
    [0x77, 'Normal WB transient'],
    [0xf0, 'Normal Tagged'],
  ])('MAIR attr 0x%s is %s', (attr, name) => {
    expect(mairAttrName(attr)).toBe(name);
  });
  test('translate() looks up MAIR_EL1.Attr[AttrIndx] (AttrIndx 0 = 0x04, 2 = 0x44)', () => {
    const { m, mmu } = fourK48();
    m.write64(0x40003018, 0x0040000456789f43n); // AttrIndx 0
    expect(ok(mmu.translate(0x0000008140603abcn, 'read', false)).attrs.memattr).toBe('Device-nGnRE');
    m.write64(0x40003018, 0x0040000456789f4bn); // AttrIndx 2
    expect(ok(mmu.translate(0x0000008140603abcn, 'read', false)).attrs.memattr).toBe('Normal NC');
  });
  test('AArch64.S1CheckPermissions: an instruction fetch from Device memory is a Permission fault (0x0f)', () => {
    const { m, mmu } = fourK48();
    m.write64(0x40003018, 0x0000000456789f03n); // AttrIndx 0 (Device-nGnRE), AP = 0b00, no XN bits
    expect(ok(mmu.translate(0x0000008140603abcn, 'read', false)).pa).toBe(0x456789abcn);
    expect(bad(mmu.translate(0x0000008140603abcn, 'exec', false))).toEqual({ kind: 'permission', level: 3, code: 0x0f });
    m.write64(0x40003018, 0x0000000456789f07n); // AttrIndx 1 (Normal WB): executable at EL1
    expect(ok(mmu.translate(0x0000008140603abcn, 'exec', false)).pa).toBe(0x456789abcn);
  });
});

describe('Arm ARM SCTLR_EL1.EE = 1: big-endian translation table walks', () => {
  function setup(ha: number) {
    const m = mem();
    m.write64Endian(0x40000008, 0x0000000040001003n, false);
    m.write64Endian(0x40001028, 0x0000000040002003n, false);
    m.write64Endian(0x40002018, 0x0000000040003003n, false);
    m.write64Endian(0x40003018, 0x0040000456789b47n, false); // AF = 0
    const mmu = createArm64Mmu(m, {
      ttbr0_el1: 0x40000000n,
      tcr_el1: tcr({ t0sz: 16, ha }),
      sctlr_el1: 0x02000001n, // EE (bit 25), M (bit 0)
      mair_el1: MAIR_DEFAULT,
    });
    return { m, mmu };
  }
  test('descriptors are read as big-endian 64-bit values', () => {
    const { m, mmu } = setup(1);
    expect(ok(mmu.translate(0x0000008140603abcn, 'read', false)).pa).toBe(0x456789abcn);
    // Sanity of the setup: the same bytes read little-endian would be garbage.
    expect(m.read64(0x40000008)).toBe(0x0310004000000000n);
  });
  test('D8.5 with HA = 1: the AF update (bit 10) lands in the big-endian descriptor', () => {
    const { m, mmu } = setup(1);
    ok(mmu.translate(0x0000008140603abcn, 'read', false));
    expect(m.read64Endian(0x40003018, false)).toBe(0x0040000456789f47n);
  });
  test('HA = 0: AF = 0 is an Access flag fault, big-endian too (0x0b)', () => {
    const { mmu } = setup(0);
    expect(bad(mmu.translate(0x0000008140603abcn, 'read', false))).toEqual({ kind: 'access_flag', level: 3, code: 0x0b });
  });
});

describe('Arm ARM AArch64.S1DisabledOutput: SCTLR_EL1.M = 0', () => {
  test('the VA is the PA; a VA at or above 2^PAMax is a level 0 Address size fault', () => {
    const m = mem();
    const mmu = createArm64Mmu(m, { tcr_el1: tcr({ t0sz: 16, epd0: 1 }), sctlr_el1: 0n });
    expect(ok(mmu.translate(0x000f123456789abcn, 'write', true)).pa).toBe(0xf123456789abcn);
    expect(bad(mmu.translate(0x0010000000000000n, 'read', false))).toEqual({ kind: 'address_size', level: 0, code: 0x00 });
  });
});

// ---- registers ---------------------------------------------------------------------------------

describe('registers (machine.json names): validation and setRegister re-deriving the regime', () => {
  test('a missing tcr_el1 is a RangeError naming it', () => {
    expect(() => createArm64Mmu(mem(), { ttbr0_el1: 0x40000000n })).toThrow(RangeError);
    expect(() => createArm64Mmu(mem(), { ttbr0_el1: 0x40000000n })).toThrow(/tcr_el1/);
  });
  test('a TTBR is required only while its half is enabled (EPDn = 0)', () => {
    expect(() => createArm64Mmu(mem(), { ttbr0_el1: 0x40000000n, tcr_el1: tcr({ epd1: 1 }) })).not.toThrow();
    expect(() => createArm64Mmu(mem(), { ttbr0_el1: 0x40000000n, tcr_el1: tcr({ epd1: 0 }) })).toThrow(/ttbr1_el1/);
    expect(() => createArm64Mmu(mem(), { tcr_el1: tcr({ epd0: 0 }) })).toThrow(/ttbr0_el1/);
  });
  test('an unknown register name is a RangeError listing the known ones', () => {
    expect(() => createArm64Mmu(mem(), { tcr_el1: tcr({ epd0: 1 }), cr3: 0n })).toThrow(/unknown register cr3/);
    const { mmu } = fourK48();
    expect(() => mmu.setRegister('ttbr2_el1', 0n)).toThrow(RangeError);
    expect(() => mmu.getRegister('x0')).toThrow(RangeError);
  });
  test('getRegister returns what was set; absent sctlr_el1 reads as M = 1', () => {
    const { mmu } = fourK48();
    expect(mmu.getRegister('ttbr0_el1')).toBe(0x40000000n);
    expect(mmu.getRegister('sctlr_el1')).toBe(1n);
    mmu.setRegister('mair_el1', 0xffn);
    expect(mmu.getRegister('mair_el1')).toBe(0xffn);
  });
  test('setRegister(tcr_el1) re-derives the start level: T0SZ 16 → 25 turns a 4-level walk into a 3-level one', () => {
    const { m, mmu } = fourK48();
    // With T0SZ = 25 the table at 0x4000_0000 is a level 1 table: VA 0x40_2000_1234 uses L1[256].
    m.write64(0x40000800, 0x0000000140000401n); // 1GB block at 0x1_4000_0000
    const out = new WalkResult();
    mmu.walk(0x40, 0x20001234, 'read', false, false, out);
    expect(out.fault).toBe('translation'); // L0[0] empty under T0SZ = 16
    mmu.setRegister('tcr_el1', tcr({ t0sz: 25 }));
    mmu.walk(0x40, 0x20001234, 'read', false, false, out);
    expect(out.fault).toBeNull();
    expect(out.pa).toBe(0x160001234);
    expect(out.memRefs).toBe(1);
  });
  test('setRegister(ttbr0_el1) moves the walk to another table', () => {
    const { m, mmu } = fourK48();
    m.write64(0x40100008, 0x0000000040001003n); // a second L0 table at 0x4010_0000 sharing the L1 table
    mmu.setRegister('ttbr0_el1', 0x40100000n);
    const out = new WalkResult();
    mmu.walk(0x81, 0x40603abc, 'read', false, false, out);
    expect(out.entryAddrs[0]).toBe(0x40100008);
    expect(out.pa).toBe(0x456789abc);
  });
  test('a rejected setRegister leaves the previous regime in place', () => {
    const { mmu } = fourK48();
    expect(() => mmu.setRegister('tcr_el1', tcr({ t0sz: 16, epd1: 0 }))).toThrow(/ttbr1_el1/);
    expect(mmu.getRegister('tcr_el1')).toBe(tcr({ t0sz: 16 }));
    expect(ok(mmu.translate(0x0000008140603abcn, 'read', false)).pa).toBe(0x456789abcn);
  });
  test('a register value outside 64 bits is a RangeError', () => {
    const { mmu } = fourK48();
    expect(() => mmu.setRegister('mair_el1', 1n << 64n)).toThrow(RangeError);
    expect(() => mmu.translate(1n << 64n, 'read', false)).toThrow(RangeError);
  });
});
