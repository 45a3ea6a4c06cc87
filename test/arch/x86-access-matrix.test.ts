/**
 * The kvm-unit-tests x86/access.c test space (PTE/PDE flags × CR0.WP × EFER.NXE × CR4.SMEP ×
 * CR4.SMAP/RFLAGS.AC × CR4.PKE/PKRU × user/supervisor × read/write/fetch), enumerated as a
 * mixed-radix index in x86-access-model.ts. `npm test` runs a seeded random sample for 4-level
 * and 5-level paging and compares src/arch/x86_64/mmu.ts with the independent SDM model (fault,
 * error code, level, pa, A/D of every level afterwards). bench/access-matrix.ts runs every case.
 *
 * Reproduce one case: decodeCase(i, newCase()) and describeCase() name its flags.
 */
import { describe, expect, it } from 'vitest';
import { PhysMem } from '../../src/mem/physmem';
import { WalkResult, type Mmu } from '../../src/arch/mmu-types';
import { createX86Mmu } from '../../src/arch/x86_64/mmu';
import {
  CASE_COUNT,
  CPU_CONFIGS,
  MATRIX_LAYOUT,
  MATRIX_MAXPHYADDR,
  RADICES,
  buildCase,
  checkCase,
  cpuRegisters,
  decodeCase,
  describeCase,
  encodeCase,
  expectAccess,
  matrixVa,
  newCase,
  newExpectation,
  type AccessCase,
} from './x86-access-model';
import { mulberry32 as rng } from '../support/prng';

const SAMPLE = 120_000;


/** A case by its named flags (for the hand-checked model tests). */
function make(over: Partial<AccessCase>, pde: Partial<AccessCase['pde']>, pte: Partial<AccessCase['pte']>): AccessCase {
  const c = newCase();
  Object.assign(c, { key: 1, pkru: 0 }, over);
  Object.assign(c.pde, { p: true, w: true, u: true }, pde);
  Object.assign(c.pte, { p: true, w: true, u: true }, pte);
  return c;
}

describe('the access.c case space (mixed radix)', () => {
  it('has every dimension of the space and millions of cases per paging mode', () => {
    expect(RADICES).toEqual([3, 2, 2, 2, 2, 3, 2, 5, 98, 258]);
    expect(CASE_COUNT).toBe(3 * 2 * 2 * 2 * 2 * 3 * 2 * 5 * 98 * 258);
    expect(CASE_COUNT).toBe(36_408_960);
    expect(CPU_CONFIGS).toBe(240);
  });

  it('decodeCase and encodeCase are inverse (index i is reproducible)', () => {
    const r = rng(7);
    const c = newCase();
    for (let n = 0; n < 5000; n++) {
      const i = Math.floor(r() * CASE_COUNT);
      expect(encodeCase(decodeCase(i, c))).toBe(i);
    }
    expect(encodeCase(decodeCase(0, c))).toBe(0);
    expect(encodeCase(decodeCase(CASE_COUNT - 1, c))).toBe(CASE_COUNT - 1);
    expect(() => decodeCase(CASE_COUNT, c)).toThrow(RangeError);
  });

  it('the last case is: fetch, user, every CPU feature on, key 0 behind PKRU 0xfffffffc, PDE P W U A D XD PS + bit 13, PTE P W U A D XD + bit 51', () => {
    const c = decodeCase(CASE_COUNT - 1, newCase());
    expect(describeCase(c)).toBe(
      `case ${CASE_COUNT - 1}: user exec; CR0.WP=1 EFER.NXE=1 CR4.SMEP=1 CR4.SMAP=1 RFLAGS.AC=1 CR4.PKE=1 key=0 PKRU=0xfffffffc; ` +
        'PDE P W U A D XD PS +bit13; PTE P W U A D XD +bit51',
    );
  });
});

describe('the model against hand-checked SDM cases', () => {
  const x = newExpectation();
  const run = (c: AccessCase) => {
    expectAccess(c, 4, 0x1_59ab, x);
    return { fault: x.fault, level: x.level, code: x.code };
  };

  it('SDM 4.7: a not-present PDE with every other bit set is not_present, RSVD clear (code 0x6 for a user write)', () => {
    expect(run(make({ access: 'write', user: true }, { p: false, junk: true, nx: true, ps: true }, {}))).toEqual({
      fault: 'not_present',
      level: 2,
      code: 0x6,
    });
  });

  it('SDM 4.5.4: bit 13 of a 2-MByte PDE is reserved (code 0x9), of a table PDE is not', () => {
    expect(run(make({}, { ps: true, rsvd: 'bit13' }, {}))).toEqual({ fault: 'reserved', level: 2, code: 0x9 });
    expect(run(make({}, { rsvd: 'bit13' }, {})).fault).toBeNull();
  });

  it('SDM 4.6.1: supervisor write to a read-only user page with SMAP and AC = 1 follows CR0.WP', () => {
    expect(run(make({ access: 'write', smap: true, ac: true, wp: true }, {}, { w: false }))).toEqual({ fault: 'protection', level: 1, code: 0x3 });
    expect(run(make({ access: 'write', smap: true, ac: true, wp: false }, {}, { w: false })).fault).toBeNull();
  });

  it('SDM 4.6.2 / 4.7: PKRU WD1 with CR0.WP = 1 blocks a supervisor write to a key-1 user page (code 0x23)', () => {
    expect(run(make({ access: 'write', pke: true, wp: true, pkru: 0x8 }, {}, {}))).toEqual({ fault: 'protection', level: 1, code: 0x23 });
    expect(run(make({ access: 'write', pke: true, wp: false, pkru: 0x8 }, {}, {})).fault).toBeNull();
  });

  it('SDM 4.8: a successful write through a 2-MByte PDE sets A in every level and D in the PDE only', () => {
    const c = make({ access: 'write' }, { ps: true }, { a: false, d: false });
    expectAccess(c, 4, 0x1_59ab, x);
    expect([x.fault, x.pa, x.ad.slice(1, 5)]).toEqual([null, 0x7_a3e1_59ab, [0, 0x60, 0x20, 0x20]]);
  });
});

describe.each([4, 5] as const)('SDM Vol.3A ch.4 access matrix, %i-level paging: mmu.ts agrees with the model', (levels) => {
  it(`a seeded sample of ${SAMPLE} cases of ${CASE_COUNT}: fault, #PF error code, level, pa and A/D of every level`, () => {
    const mem = new PhysMem({ size: MATRIX_LAYOUT.size });
    const root = levels === 5 ? MATRIX_LAYOUT.pml5 : MATRIX_LAYOUT.pml4;
    const mmus: Mmu[] = [];
    for (let k = 0; k < CPU_CONFIGS; k++) {
      mmus.push(createX86Mmu(mem, cpuRegisters(k, levels === 5, root), { maxPhyAddr: MATRIX_MAXPHYADDR }));
    }
    const va = matrixVa(levels);
    const c = newCase();
    const x = newExpectation();
    const out = new WalkResult();
    const r = rng(levels === 5 ? 0x5eed5 : 0x5eed4);
    const failures: string[] = [];
    const kinds: Record<string, number> = { ok: 0, not_present: 0, reserved: 0, protection: 0 };
    let pk = 0;
    for (let n = 0; n < SAMPLE; n++) {
      decodeCase(Math.floor(r() * CASE_COUNT), c);
      buildCase(mem, c, levels, va);
      const d = checkCase(mmus[c.cpu]!, mem, c, levels, va, out, x);
      if (d !== null && failures.length < 10) failures.push(d);
      kinds[x.fault ?? 'ok']!++;
      if ((x.code & 0x20) !== 0) pk++;
    }
    expect(failures).toEqual([]);
    // The sample reaches every outcome, the PK error-code bit included.
    for (const k of Object.keys(kinds)) expect(kinds[k], k).toBeGreaterThan(1000);
    expect(pk).toBeGreaterThan(100);
  });
});
