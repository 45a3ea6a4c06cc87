/**
 * ARM64 stage 1 EL1&0 access control (Arm ARM DDI 0487 D8.4 "Memory access control") and the
 * hardware updates of D8.5, checked against small independent expectations written here from
 * the manual's tables — not from the code under test:
 *  - D8.4.1 data access permissions, AP[2:1] (the stage 1 table for EL1&0),
 *  - D8.4.2 hierarchical controls, APTable / UXNTable / PXNTable (and TCR_EL1.HPDn),
 *  - D8.4.3 execute-never: UXN, PXN, the implicit PXN of EL0-writable locations, SCTLR_EL1.WXN,
 *  - PSTATE.PAN (privileged data accesses to EL0-accessible locations),
 *  - D8.5 the Access flag (AF, TCR_EL1.HA) and dirty state (DBM, TCR_EL1.HD),
 *  - ESR_ELx ISS DFSC/IFSC fault status codes with the lookup level, level -1 included.
 */
import { describe, expect, test } from 'vitest';
import { PhysMem } from '../../src/mem/physmem';
import { createArm64Mmu } from '../../src/arch/arm64/mmu';
import { PERM_R, PERM_W, PERM_X, WalkResult, type AccessKind, type Mmu } from '../../src/arch/mmu-types';

// ---- the independent expectation (Arm ARM D8.4) --------------------------------------------------

type Rights = 'none' | 'RO' | 'RW';
/** D8.4.1, stage 1 data access permissions for the EL1&0 regime: AP[2:1] → (EL1, EL0). */
const AP_RIGHTS: Record<number, { el1: Rights; el0: Rights }> = {
  0b00: { el1: 'RW', el0: 'none' },
  0b01: { el1: 'RW', el0: 'RW' },
  0b10: { el1: 'RO', el0: 'none' },
  0b11: { el1: 'RO', el0: 'RO' },
};
const readOnly = (r: Rights): Rights => (r === 'RW' ? 'RO' : r);

interface Case {
  ap: number;
  uxn: boolean;
  pxn: boolean;
  /** APTable[1:0] as a number: bit 0 no EL0 access, bit 1 no write. */
  apTable: number;
  uxnTable: boolean;
  pxnTable: boolean;
  wxn: boolean;
  pan: boolean;
  el: 0 | 1;
  access: AccessKind;
}

/** Whether the access is permitted, from the manual's tables. */
function allowed(c: Case): boolean {
  let { el1, el0 } = AP_RIGHTS[c.ap]!;
  // D8.4.2: APTable = 0bx1 removes EL0 access below; APTable = 0b1x removes write access at both ELs.
  if (c.apTable & 0b01) el0 = 'none';
  if (c.apTable & 0b10) {
    el1 = readOnly(el1);
    el0 = readOnly(el0);
  }
  if (c.access === 'exec') {
    if (c.el === 0) {
      // D8.4.3: UXN or UXNTable; WXN makes EL0-writable memory execute-never at EL0.
      return !c.uxn && !c.uxnTable && !(c.wxn && el0 === 'RW');
    }
    // PXN or PXNTable; memory writable at EL0 is never executable at EL1; WXN: writable at EL1.
    return !c.pxn && !c.pxnTable && el0 !== 'RW' && !(c.wxn && el1 === 'RW');
  }
  // PSTATE.PAN = 1: an EL1 data access to memory EL0 can access (read or write) faults.
  if (c.el === 1 && c.pan && el0 !== 'none') return false;
  const rights = c.el === 0 ? el0 : el1;
  return c.access === 'read' ? rights !== 'none' : rights === 'RW';
}

// ---- the machine ---------------------------------------------------------------------------------

const BASE = 0x40000000;
const VA = 0x1abcn; // L1[0] L2[0] L3[1], offset 0xabc
const PAGE_PA = 0x80001abcn;

/** TCR_EL1: T0SZ = 25 (4KB, start level 1), IPS = 48 bits, EPD1 = 1, plus HA (39), HD (40), HPD0 (41). */
function tcr(ha = 0, hd = 0, hpd0 = 0): bigint {
  return 25n | (1n << 23n) | (2n << 30n) | (5n << 32n) | (BigInt(ha) << 39n) | (BigInt(hd) << 40n) | (BigInt(hpd0) << 41n);
}

/** The table bits of D8.3.1 (bits 59-62) and leaf bits of D8.3.2, by hand. */
function tableDesc(next: number, apTable: number, uxnTable: boolean, pxnTable: boolean): bigint {
  return BigInt(next) | 3n | (BigInt(apTable) << 61n) | (uxnTable ? 1n << 60n : 0n) | (pxnTable ? 1n << 59n : 0n);
}
interface Leaf {
  ap: number;
  uxn?: boolean;
  pxn?: boolean;
  af?: boolean;
  dbm?: boolean;
}
function pageDesc(l: Leaf): bigint {
  return (
    0x80001000n |
    3n |
    (BigInt(l.ap) << 6n) |
    (l.af === false ? 0n : 1n << 10n) |
    (l.dbm ? 1n << 51n : 0n) |
    (l.pxn ? 1n << 53n : 0n) |
    (l.uxn ? 1n << 54n : 0n)
  );
}

const L1 = BASE;
const L2 = BASE + 0x1000;
const L3 = BASE + 0x2000;
const LEAF = L3 + 8;

function machine(opts: { tcr?: bigint; sctlr?: bigint; pan?: bigint; idAa64mmfr1?: bigint } = {}): { m: PhysMem; mmu: Mmu } {
  const m = new PhysMem({ size: 1 << 20, physBase: BASE });
  m.write64(L1, tableDesc(L2, 0, false, false));
  m.write64(L2, tableDesc(L3, 0, false, false));
  m.write64(LEAF, pageDesc({ ap: 0 }));
  const mmu = createArm64Mmu(
    m,
    {
      ttbr0_el1: BigInt(BASE),
      tcr_el1: opts.tcr ?? tcr(),
      mair_el1: 0xffn, // Attr0: Normal WB, so instruction fetches are possible
      sctlr_el1: opts.sctlr ?? 1n,
      pstate_pan: opts.pan ?? 0n,
    },
    opts.idAa64mmfr1 === undefined ? {} : { idAa64mmfr1: opts.idAa64mmfr1 },
  );
  return { m, mmu };
}

const SCTLR_M = 1n;
const SCTLR_WXN = 1n << 19n;

// ---- D8.4 permission matrix ----------------------------------------------------------------------

describe('Arm ARM D8.4 permission matrix: AP[2:1] × UXN × PXN × APTable × UXNTable × PXNTable × WXN × PAN × EL × access', () => {
  const { m, mmu } = machine();
  const out = new WalkResult();
  const bools = [false, true];
  for (const ap of [0, 1, 2, 3]) {
    for (const apTable of [0, 1, 2, 3]) {
      for (const uxn of bools) {
        for (const pxn of bools) {
          for (const uxnTable of bools) {
            for (const pxnTable of bools) {
              const name = `AP=${ap.toString(2).padStart(2, '0')} APTable=${apTable.toString(2).padStart(2, '0')} UXN=${+uxn} PXN=${+pxn} UXNTable=${+uxnTable} PXNTable=${+pxnTable}`;
              test(name, () => {
                // Table controls in the level 2 table descriptor, leaf bits in the level 3 page.
                m.write64(L2, tableDesc(L3, apTable, uxnTable, pxnTable));
                m.write64(LEAF, pageDesc({ ap, uxn, pxn }));
                for (const wxn of bools) {
                  mmu.setRegister('sctlr_el1', SCTLR_M | (wxn ? SCTLR_WXN : 0n));
                  for (const pan of bools) {
                    mmu.setRegister('pstate_pan', pan ? 1n : 0n);
                    for (const el of [0, 1] as const) {
                      for (const access of ['read', 'write', 'exec'] as const) {
                        const c: Case = { ap, uxn, pxn, apTable, uxnTable, pxnTable, wxn, pan, el, access };
                        const want = allowed(c);
                        mmu.walk(0, Number(VA), access, el === 0, false, out);
                        const label = `${access} at EL${el} WXN=${+wxn} PAN=${+pan}`;
                        if (want) {
                          expect(out.fault, label).toBeNull();
                          expect(out.pa, label).toBe(Number(PAGE_PA));
                        } else {
                          expect({ kind: out.fault, level: out.level, code: out.code }, label).toEqual({ kind: 'permission', level: 3, code: 0x0f });
                        }
                      }
                    }
                    // permUser/permPriv: the effective rights, PAN not applied (the TLB applies it on a hit).
                    if (!pan) {
                      mmu.walk(0, Number(VA), 'read', false, true, out);
                      const rights = (el: 0 | 1) =>
                        (allowed({ ap, uxn, pxn, apTable, uxnTable, pxnTable, wxn, pan: false, el, access: 'read' }) ? PERM_R : 0) |
                        (allowed({ ap, uxn, pxn, apTable, uxnTable, pxnTable, wxn, pan: false, el, access: 'write' }) ? PERM_W : 0) |
                        (allowed({ ap, uxn, pxn, apTable, uxnTable, pxnTable, wxn, pan: false, el, access: 'exec' }) ? PERM_X : 0);
                      expect(out.permUser, `permUser WXN=${+wxn}`).toBe(rights(0));
                      expect(out.permPriv, `permPriv WXN=${+wxn}`).toBe(rights(1));
                    }
                  }
                }
              });
            }
          }
        }
      }
    }
  }
});

describe('Arm ARM D8.4.2 hierarchical controls across levels', () => {
  test('APTable, UXNTable and PXNTable from different levels are ORed (AArch64.S1ApplyTablePerms)', () => {
    const { m, mmu } = machine();
    m.write64(L1, tableDesc(L2, 0b10, true, false)); // level 1: no write, UXNTable
    m.write64(L2, tableDesc(L3, 0b01, false, true)); // level 2: no EL0, PXNTable
    m.write64(LEAF, pageDesc({ ap: 0b01 }));
    const out = new WalkResult();
    mmu.walk(0, Number(VA), 'read', false, true, out);
    // AP 0b01 limited to "RO at EL1, none at EL0", and no execution anywhere.
    expect(out.permUser).toBe(0);
    expect(out.permPriv).toBe(PERM_R);
    expect(mmu.translate(VA, 'read', false)).toMatchObject({ attrs: { ap: 0b10, uxn: true, pxn: true } });
  });
  test('TCR_EL1.HPD0 = 1 (FEAT_HPDS): the table descriptors’ APTable/UXNTable/PXNTable are ignored', () => {
    const { m, mmu } = machine({ tcr: tcr(0, 0, 1) });
    m.write64(L2, tableDesc(L3, 0b11, true, true));
    m.write64(LEAF, pageDesc({ ap: 0b01 }));
    const out = new WalkResult();
    mmu.walk(0, Number(VA), 'write', true, false, out);
    expect(out.fault).toBeNull();
    expect(out.permUser).toBe(PERM_R | PERM_W | PERM_X);
    expect(out.permPriv).toBe(PERM_R | PERM_W); // implicit PXN: EL0-writable
  });
  test('FEAT_PAN3 SCTLR_EL1.EPAN = 1: PAN also covers memory EL0 can only execute', () => {
    // AP = 0b00 (no EL0 data access), UXN = 0: EL0-executable.
    const epan = 1n << 57n;
    const { mmu } = machine({ sctlr: SCTLR_M | epan, pan: 1n });
    expect(mmu.translate(VA, 'read', false)).toMatchObject({ fault: { kind: 'permission', level: 3, code: 0x0f } });
    const { mmu: noEpan } = machine({ pan: 1n });
    expect(noEpan.translate(VA, 'read', false)).toMatchObject({ pa: PAGE_PA });
  });
  test('PSTATE.PAN does not apply to instruction fetches at EL1', () => {
    const { m, mmu } = machine({ pan: 1n });
    m.write64(LEAF, pageDesc({ ap: 0b11 })); // EL0 read-only: PAN-protected for data
    expect(mmu.translate(VA, 'read', false)).toMatchObject({ fault: { kind: 'permission' } });
    expect(mmu.translate(VA, 'exec', false)).toMatchObject({ pa: PAGE_PA });
  });
});

// ---- D8.5 Access flag ----------------------------------------------------------------------------

describe('Arm ARM D8.5 Access flag: AF × TCR_EL1.HA × access × debug', () => {
  const bools = [false, true];
  for (const af of bools) {
    for (const ha of bools) {
      for (const access of ['read', 'write', 'exec'] as const) {
        for (const debug of bools) {
          test(`AF=${+af} HA=${+ha} ${access}${debug ? ' (debug walk)' : ''}`, () => {
            const { m, mmu } = machine({ tcr: tcr(ha ? 1 : 0) });
            m.write64(LEAF, pageDesc({ ap: 0b00, af })); // EL1 RW, EL1 executable
            const before = m.read64(LEAF);
            const t = mmu.translate(VA, access, false, { debug });
            if (!af && !ha) {
              // An Access flag fault at the leaf's level (DFSC 0b001011), memory untouched.
              expect(t).toMatchObject({ fault: { kind: 'access_flag', level: 3, code: 0x0b } });
              expect(m.read64(LEAF)).toBe(before);
              return;
            }
            expect(t).toMatchObject({ pa: PAGE_PA });
            const setByHardware = !af && ha && !debug;
            expect(m.read64(LEAF)).toBe(setByHardware ? before | (1n << 10n) : before);
            expect(t).toMatchObject({ attrs: { af: af || setByHardware } });
          });
        }
      }
    }
  }
  test('AArch64.S1Walk: the Access flag fault is reported before a Permission fault', () => {
    const { m, mmu } = machine();
    m.write64(LEAF, pageDesc({ ap: 0b00, af: false }));
    expect(mmu.translate(VA, 'read', true)).toMatchObject({ fault: { kind: 'access_flag', level: 3, code: 0x0b } });
  });
  test('HA = 1: an access that takes a Permission fault does not set AF', () => {
    const { m, mmu } = machine({ tcr: tcr(1) });
    m.write64(LEAF, pageDesc({ ap: 0b00, af: false }));
    const before = m.read64(LEAF);
    expect(mmu.translate(VA, 'read', true)).toMatchObject({ fault: { kind: 'permission', level: 3, code: 0x0f } });
    expect(m.read64(LEAF)).toBe(before);
  });
  test('ID_AA64MMFR1_EL1.HAFDBS = 0: TCR_EL1.HA has no effect (Access flag fault)', () => {
    const { m, mmu } = machine({ tcr: tcr(1), idAa64mmfr1: 0n });
    m.write64(LEAF, pageDesc({ ap: 0b00, af: false }));
    expect(mmu.translate(VA, 'read', false)).toMatchObject({ fault: { kind: 'access_flag', level: 3, code: 0x0b } });
  });
});

// ---- D8.5 dirty state ------------------------------------------------------------------------------

describe('Arm ARM D8.5 dirty state: DBM × AP[2] × HA × HD × access (EL1, AP[1] = 0)', () => {
  const bools = [false, true];
  for (const dbm of bools) {
    for (const ap2 of bools) {
      for (const ha of bools) {
        for (const hd of bools) {
          for (const access of ['read', 'write'] as const) {
            test(`DBM=${+dbm} AP[2]=${+ap2} HA=${+ha} HD=${+hd} ${access}`, () => {
              const { m, mmu } = machine({ tcr: tcr(ha ? 1 : 0, hd ? 1 : 0) });
              m.write64(LEAF, pageDesc({ ap: ap2 ? 0b10 : 0b00, dbm }));
              const before = m.read64(LEAF);
              const out = new WalkResult();
              mmu.walk(0, Number(VA), access, false, false, out);
              // D8.5: hardware dirty-state management needs HA = HD = 1; DBM = 1 then means
              // "writable-clean": a write clears AP[2] instead of faulting.
              const managed = ha && hd && dbm;
              if (access === 'write' && ap2 && !managed) {
                expect({ kind: out.fault, level: out.level, code: out.code }).toEqual({ kind: 'permission', level: 3, code: 0x0f });
                expect(m.read64(LEAF)).toBe(before);
                return;
              }
              expect(out.fault).toBeNull();
              const cleared = access === 'write' && ap2 && managed;
              expect(m.read64(LEAF)).toBe(cleared ? before & ~(1n << 7n) : before);
              // dirty: AP[2] of the descriptor as now in memory is 0 (a write needs no update).
              expect(out.dirty).toBe(!ap2 || cleared);
              // EL1 write right: AP[2] = 0, or DBM under hardware management.
              expect((out.permPriv & PERM_W) !== 0).toBe(!ap2 || managed);
            });
          }
        }
      }
    }
  }
  test('a debug write to a writable-clean page is permitted but changes nothing (dirty stays false)', () => {
    const { m, mmu } = machine({ tcr: tcr(1, 1) });
    m.write64(LEAF, pageDesc({ ap: 0b10, dbm: true }));
    const before = m.read64(LEAF);
    const out = new WalkResult();
    mmu.walk(0, Number(VA), 'write', false, true, out);
    expect(out.fault).toBeNull();
    expect(out.dirty).toBe(false);
    expect(m.read64(LEAF)).toBe(before);
  });
  test('APTable[1] still forbids the write of a DBM page: Permission fault, AP[2] kept', () => {
    const { m, mmu } = machine({ tcr: tcr(1, 1) });
    m.write64(L2, tableDesc(L3, 0b10, false, false));
    m.write64(LEAF, pageDesc({ ap: 0b10, dbm: true }));
    const before = m.read64(LEAF);
    expect(mmu.translate(VA, 'write', false)).toMatchObject({ fault: { kind: 'permission', level: 3, code: 0x0f } });
    expect(m.read64(LEAF)).toBe(before);
  });
  test('AArch64.S1ApplyOutputPerms: a DBM page counts as writable for WXN (not executable at EL1)', () => {
    const { m, mmu } = machine({ tcr: tcr(1, 1), sctlr: SCTLR_M | SCTLR_WXN });
    m.write64(LEAF, pageDesc({ ap: 0b10, dbm: true }));
    expect(mmu.translate(VA, 'exec', false)).toMatchObject({ fault: { kind: 'permission', level: 3, code: 0x0f } });
    const { m: m2, mmu: noHd } = machine({ tcr: tcr(1, 0), sctlr: SCTLR_M | SCTLR_WXN });
    m2.write64(LEAF, pageDesc({ ap: 0b10, dbm: true }));
    expect(noHd.translate(VA, 'exec', false)).toMatchObject({ pa: PAGE_PA });
  });
  test('AArch64.S1ApplyOutputPerms: an EL0 read-only DBM page (AP = 0b11) is EL0-writable, hence implicitly PXN', () => {
    const { m, mmu } = machine({ tcr: tcr(1, 1) });
    m.write64(LEAF, pageDesc({ ap: 0b11, dbm: true }));
    expect(mmu.translate(VA, 'exec', false)).toMatchObject({ fault: { kind: 'permission' } });
    expect(mmu.translate(VA, 'write', true)).toMatchObject({ pa: PAGE_PA });
    expect(m.read64(LEAF) & (1n << 7n)).toBe(0n);
  });
  test('one update sets AF and clears AP[2] together (HA = HD = 1, write to a young-clean page)', () => {
    const { m, mmu } = machine({ tcr: tcr(1, 1) });
    m.write64(LEAF, pageDesc({ ap: 0b10, dbm: true, af: false }));
    const before = m.read64(LEAF);
    const out = new WalkResult();
    mmu.walk(0, Number(VA), 'write', false, false, out);
    expect(out.fault).toBeNull();
    expect(m.read64(LEAF)).toBe((before | (1n << 10n)) & ~(1n << 7n));
    // leafLo is the descriptor after the update.
    expect(out.leafLo).toBe(Number(((before | (1n << 10n)) & ~(1n << 7n)) & 0xffffffffn));
    expect(out.dirty).toBe(true);
  });
});

// ---- ESR_ELx fault status codes --------------------------------------------------------------------

describe('Arm ARM ESR_ELx ISS DFSC/IFSC: fault status codes by kind and lookup level (FEAT_LPA2 for level -1)', () => {
  /**
   * 4KB, DS = 1, T0SZ = 12 (start level -1). Tables at 0x4000_0000 (level -1) … 0x4000_4000
   * (level 3); VA 0x1_0080_4020_1123 uses index 1 at every level, so entry n is at table + 8.
   */
  const VA52 = 0x0001008040201123n;
  function chain(leafLevel: number, leaf: bigint, ips = 0b110): Mmu {
    const m = new PhysMem({ size: 1 << 20, physBase: BASE });
    for (let level = -1; level < leafLevel; level++) {
      const table = BASE + 0x1000 * (level + 1);
      m.write64(table + 8, BigInt(table + 0x1000) | 3n);
    }
    m.write64(BASE + 0x1000 * (leafLevel + 1) + 8, leaf);
    // TCR_EL1: T0SZ = 12, IPS, EPD1 = 1, TG1 = 4KB, DS (bit 59).
    const t = 12n | (1n << 23n) | (2n << 30n) | (BigInt(ips) << 32n) | (1n << 59n);
    return createArm64Mmu(m, { ttbr0_el1: BigInt(BASE), tcr_el1: t, mair_el1: 0xffn });
  }
  // Hand-written from the DFSC table: 0b0000LL address size, 0b0001LL translation, 0b0010LL access
  // flag, 0b0011LL permission; 0b101001 / 0b101011 address size / translation at level -1.
  const TRANSLATION: Record<number, number> = { [-1]: 0x2b, 0: 0x04, 1: 0x05, 2: 0x06, 3: 0x07 };
  const ADDRESS_SIZE: Record<number, number> = { [-1]: 0x29, 0: 0x00, 1: 0x01, 2: 0x02, 3: 0x03 };
  const ACCESS_FLAG: Record<number, number> = { 0: 0x08, 1: 0x09, 2: 0x0a, 3: 0x0b };
  const PERMISSION: Record<number, number> = { 0: 0x0c, 1: 0x0d, 2: 0x0e, 3: 0x0f };
  /** Block/page OA fields at each level (512GB, 1GB, 2MB, 4KB aligned), in memory's range. */
  const OA: Record<number, bigint> = { 0: 0x0000008000000000n, 1: 0x0000000080000000n, 2: 0x0000000080200000n, 3: 0x0000000080201000n };
  const LEAF_TYPE: Record<number, bigint> = { 0: 1n, 1: 1n, 2: 1n, 3: 3n };

  for (const level of [-1, 0, 1, 2, 3]) {
    test(`translation fault at level ${level}: 0x${TRANSLATION[level]!.toString(16)}`, () => {
      const mmu = chain(level, 0n);
      expect(mmu.translate(VA52, 'read', false)).toMatchObject({ fault: { kind: 'translation', level, code: TRANSLATION[level] } });
    });
  }
  for (const level of [-1, 0, 1, 2, 3]) {
    test(`address size fault at level ${level} with IPS = 48: 0x${ADDRESS_SIZE[level]!.toString(16)}`, () => {
      // A table (levels -1…2) or a page (level 3) whose address has bit 48 set (descriptor bit 48 with DS).
      const desc = level === 3 ? 0x0001000080201403n : 0x0001000040000003n;
      const mmu = chain(level, desc, 0b101);
      expect(mmu.translate(VA52, 'read', false)).toMatchObject({ fault: { kind: 'address_size', level, code: ADDRESS_SIZE[level] } });
    });
  }
  for (const level of [0, 1, 2, 3]) {
    test(`access flag fault at level ${level}: 0x${ACCESS_FLAG[level]!.toString(16)}`, () => {
      const mmu = chain(level, OA[level]! | LEAF_TYPE[level]!); // AF = 0
      expect(mmu.translate(VA52, 'read', false)).toMatchObject({ fault: { kind: 'access_flag', level, code: ACCESS_FLAG[level] } });
    });
    test(`permission fault at level ${level}: 0x${PERMISSION[level]!.toString(16)}`, () => {
      const mmu = chain(level, OA[level]! | LEAF_TYPE[level]! | 0x400n); // AF, AP = 0b00: no EL0 access
      expect(mmu.translate(VA52, 'read', true)).toMatchObject({ fault: { kind: 'permission', level, code: PERMISSION[level] } });
      expect(mmu.translate(VA52, 'read', false)).toMatchObject({ level });
    });
  }
  test('AArch64.S1Walk: a TTBR base beyond the OA size is an Address size fault at level 0 even when the walk starts at -1', () => {
    const m = new PhysMem({ size: 1 << 20, physBase: BASE });
    // TTBR0 BADDR[51:48] = 0b0001 (bits 5:2) with IPS = 48.
    const t = 12n | (1n << 23n) | (2n << 30n) | (5n << 32n) | (1n << 59n);
    const mmu = createArm64Mmu(m, { ttbr0_el1: 0x4n, tcr_el1: t });
    expect(mmu.translate(VA52, 'read', false)).toMatchObject({ fault: { kind: 'address_size', level: 0, code: 0x00 } });
  });
});
