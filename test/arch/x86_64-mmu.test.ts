/**
 * The x86-64 hardware walk (src/arch/x86_64/mmu.ts) against the Intel SDM Vol. 3A chapter 4, on
 * hand-built tables. Every expected address and error code below is written by hand from the
 * SDM's bit positions.
 */
import { describe, expect, it } from 'vitest';
import { PhysMem } from '../../src/mem/physmem';
import { PERM_R, PERM_W, PERM_X, WalkResult, isFault, type Mmu, type TranslateOutcome } from '../../src/arch/mmu-types';
import { createX86Mmu } from '../../src/arch/x86_64/mmu';

// Entry bits (SDM Tables 4-15 … 4-20).
const P = 0x1n;
const W = 0x2n;
const U = 0x4n;
const PWT = 0x8n;
const PCD = 0x10n;
const A = 0x20n;
const D = 0x40n;
const PS = 0x80n;
const G = 0x100n;
const XD = 1n << 63n;
const TBL = P | W | U; // a table entry that restricts nothing

// Layout: one 1 MiB memory; tables in frames 1..5.
const PML4 = 0x1000;
const PDPT = 0x2000;
const PD = 0x3000;
const PT = 0x4000;
const PML5 = 0x5000;

// Registers: CR0 = PG | WP | NE | ET | MP | PE; CR4 = PAE; EFER = LME | LMA | NXE.
const CR0 = 0x8001_0033n;
const CR0_NOWP = 0x8000_0033n;
const CR4_PAE = 0x20n;
const CR4_LA57 = 1n << 12n;
const CR4_PGE = 1n << 7n;
const CR4_PCIDE = 1n << 17n;
const CR4_SMEP = 1n << 20n;
const CR4_SMAP = 1n << 21n;
const CR4_PKE = 1n << 22n;
const EFER = 0xd00n;
const EFER_NONX = 0x500n;
const AC = 1n << 18n;

/** A VA from its table indices (input construction only), sign-extended from bit 47 (or 56). */
function va(i4: number, i3: number, i2: number, i1: number, off: number, i5 = 0, la57 = false): bigint {
  let v = (BigInt(i5) << 48n) | (BigInt(i4) << 39n) | (BigInt(i3) << 30n) | (BigInt(i2) << 21n) | (BigInt(i1) << 12n) | BigInt(off);
  const signBit = la57 ? 56n : 47n;
  if ((v >> signBit) & 1n) v |= ((1n << 64n) - 1n) ^ ((1n << (signBit + 1n)) - 1n);
  return v;
}

interface Setup {
  mem: PhysMem;
  mmu: Mmu;
  set(table: number, index: number, value: bigint): void;
  get(table: number, index: number): bigint;
}

function setup(regs: Partial<Record<string, bigint>> = {}, opts: { maxPhyAddr?: number; physBase?: number } = {}): Setup {
  const base = opts.physBase ?? 0;
  const mem = new PhysMem({ size: 1 << 20, physBase: base });
  const all: Record<string, bigint> = { cr0: CR0, cr3: BigInt(base + PML4), cr4: CR4_PAE, efer: EFER };
  for (const [k, v] of Object.entries(regs)) if (v !== undefined) all[k] = v;
  const mmu = createX86Mmu(mem, all, opts.maxPhyAddr === undefined ? undefined : { maxPhyAddr: opts.maxPhyAddr });
  return {
    mem,
    mmu,
    set: (table, index, value) => mem.write64(base + table + index * 8, value),
    get: (table, index) => mem.read64(base + table + index * 8),
  };
}

/** The standard 4K chain for VA(0x0fe, 0x048, 0x1a2, 0x167, off) with the given entry values. */
function chain4k(s: Setup, pml4e: bigint, pdpte: bigint, pde: bigint, pte: bigint): bigint {
  s.set(PML4, 0x0fe, pml4e);
  s.set(PDPT, 0x048, pdpte);
  s.set(PD, 0x1a2, pde);
  s.set(PT, 0x167, pte);
  return va(0x0fe, 0x048, 0x1a2, 0x167, 0xabc);
}
const VA4K = va(0x0fe, 0x048, 0x1a2, 0x167, 0xabc);

function fault(t: TranslateOutcome): { kind: string; level: number; code: number } | null {
  return isFault(t) ? { ...t.fault } : null;
}

describe('SDM Vol.3A 4.5 4-level and 5-level paging: the walk', () => {
  it('4.5.4 Figure 4-8: a 4-KByte page through PML4E, PDPTE, PDE, PTE (bits 47:39, 38:30, 29:21, 20:12)', () => {
    const s = setup();
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x12_3456_7000n | P | W);
    const out = new WalkResult();
    // VA 0x0000_7f12_3456_7abc: PML4 0x0fe, PDPT 0x048, PD 0x1a2, PT 0x167, offset 0xabc.
    expect(VA4K).toBe(0x0000_7f12_3456_7abcn);
    s.mmu.walk(0x0000_7f12, 0x3456_7abc, 'read', false, false, out);
    expect(out.fault).toBeNull();
    expect(out.pa).toBe(0x12_3456_7abc);
    expect(out.pageBase).toBe(0x12_3456_7000);
    expect(out.pageSize).toBe(4096);
    expect(out.level).toBe(1);
    expect(out.memRefs).toBe(4);
    expect(out.entries).toBe(4);
    // Entry addresses: table + index * 8.
    expect(Array.from(out.entryAddrs.slice(0, 4))).toEqual([0x17f0, 0x2240, 0x3d10, 0x4b38]);
    expect(out.leafAddr).toBe(0x4b38);
  });

  it('4.5.4 Table 4-18: a PDE with PS = 1 maps a 2-MByte page; bits 51:21 are the base, bit 12 is PAT', () => {
    const s = setup();
    s.set(PML4, 0x0fe, BigInt(PDPT) | TBL);
    s.set(PDPT, 0x048, BigInt(PD) | TBL);
    s.set(PD, 0x1a2, 0x8_4060_0000n | P | W | PS | 0x1000n);
    const t = s.mmu.translate(VA4K, 'read', false);
    // VA bits 20:0 = 0x16_7abc on top of base 0x8_4060_0000.
    expect(t).toMatchObject({ pa: 0x8_4076_7abcn, level: 2, pageSize: 0x20_0000 });
    expect(isFault(t) ? null : t.attrs.pat).toBe(true);
  });

  it('4.5.4 Table 4-16: a PDPTE with PS = 1 maps a 1-GByte page; bits 51:30 are the base', () => {
    const s = setup();
    s.set(PML4, 0x0fe, BigInt(PDPT) | TBL);
    s.set(PDPT, 0x048, 0x3_c000_0000n | P | PS);
    const t = s.mmu.translate(VA4K, 'read', false);
    // VA bits 29:0 = 0x3456_7abc.
    expect(t).toMatchObject({ pa: 0x3_f456_7abcn, level: 3, pageSize: 0x4000_0000 });
  });

  it('4.5.1 CR4.LA57 = 1: 5-level paging reads a PML5E first (bits 56:48)', () => {
    const s = setup({ cr3: BigInt(PML5), cr4: CR4_PAE | CR4_LA57 });
    s.set(PML5, 0x0a5, BigInt(PML4) | TBL);
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x7000n | P);
    const v = va(0x0fe, 0x048, 0x1a2, 0x167, 0xabc, 0x0a5, true);
    expect(v).toBe(0x00a5_7f12_3456_7abcn);
    const out = new WalkResult();
    s.mmu.walk(0x00a5_7f12, 0x3456_7abc, 'read', false, false, out);
    expect(out.fault).toBeNull();
    expect(out.pa).toBe(0x7abc);
    expect(out.memRefs).toBe(5);
    expect(Array.from(out.entryAddrs.slice(0, 5))).toEqual([0x5528, 0x17f0, 0x2240, 0x3d10, 0x4b38]);
  });

  it('4.5.2 / 4.10.1: with CR4.PCIDE = 1, CR3[11:0] is the PCID and not part of the root', () => {
    const s = setup({ cr3: BigInt(PML4) | 0x123n, cr4: CR4_PAE | CR4_PCIDE });
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x9000n | P);
    expect(s.mmu.translate(VA4K, 'read', false)).toMatchObject({ pa: 0x9abcn });
    expect((s.mmu as unknown as { currentPcid: number }).currentPcid).toBe(0x123);
  });

  it('4.5.2: CR3 bits at and above MAXPHYADDR are not part of the root (bit 63, the PCID no-flush hint)', () => {
    const s = setup({ cr3: (1n << 63n) | BigInt(PML4), cr4: CR4_PAE | CR4_PCIDE });
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x9000n | P);
    expect(s.mmu.translate(VA4K, 'read', false)).toMatchObject({ pa: 0x9abcn });
  });

  it('4.5.4: the recursive PML4 slot — a PML4E pointing at the PML4 itself makes a PTE readable at its own VA', () => {
    const s = setup();
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x12_3456_7000n | P | W);
    s.set(PML4, 510, BigInt(PML4) | P | W);
    // Through slot 510, indices shift up one level: PML4 → PML4 (as PDPT) → PDPT (as PD) → PD (as
    // PT), so the final page is the PT, and the offset 0x167 * 8 = 0xb38 selects the PTE.
    // VA = 0xffff_ff00_0000_0000 | 0x0fe << 30 | 0x048 << 21 | 0x1a2 << 12 | 0xb38 = 0xffff_ff3f_891a_2b38.
    expect(va(510, 0x0fe, 0x048, 0x1a2, 0xb38)).toBe(0xffff_ff3f_891a_2b38n);
    const t = s.mmu.translate(0xffff_ff3f_891a_2b38n, 'read', false);
    expect(t).toMatchObject({ pa: 0x4b38n, level: 1 });
    expect(s.mem.read64(Number(isFault(t) ? 0n : t.pa))).toBe(0x12_3456_7000n | P | W);
  });

  it('4.5.4: CR4.PSE is ignored in IA-32e paging (PS alone makes a 2-MByte leaf)', () => {
    for (const cr4 of [CR4_PAE, CR4_PAE | 0x10n]) {
      const s = setup({ cr4 });
      s.set(PML4, 0x0fe, BigInt(PDPT) | TBL);
      s.set(PDPT, 0x048, BigInt(PD) | TBL);
      s.set(PD, 0x1a2, 0x60_0000n | P | PS);
      expect(s.mmu.translate(VA4K, 'read', false)).toMatchObject({ pa: 0x76_7abcn, level: 2 });
    }
  });
});

describe('SDM Vol.3A 3.3.7.1 canonical addresses (#GP, reported as non_canonical)', () => {
  it('4-level: bits 63:47 must be equal — 0x0000_8000_0000_0000 and 0x8000_0000_0000_0000 are not canonical', () => {
    const s = setup();
    for (const v of [0x0000_8000_0000_0000n, 0x8000_0000_0000_0000n, 0xffff_7fff_ffff_ffffn, 0x0001_0000_0000_0000n]) {
      expect(fault(s.mmu.translate(v, 'read', false))).toEqual({ kind: 'non_canonical', level: 4, code: 0 });
    }
  });

  it('4-level: 0x0000_7fff_ffff_f000 and 0xffff_8000_0000_0000 are canonical (they walk and find P = 0)', () => {
    const s = setup();
    expect(fault(s.mmu.translate(0x0000_7fff_ffff_f000n, 'read', false))).toEqual({ kind: 'not_present', level: 4, code: 0 });
    expect(fault(s.mmu.translate(0xffff_8000_0000_0000n, 'read', false))).toEqual({ kind: 'not_present', level: 4, code: 0 });
  });

  it('5-level: bits 63:56 must be equal — 0x0000_8000_0000_0000 is canonical, 0x0100_0000_0000_0000 is not', () => {
    const s = setup({ cr3: BigInt(PML5), cr4: CR4_PAE | CR4_LA57 });
    expect(fault(s.mmu.translate(0x0000_8000_0000_0000n, 'read', false))).toEqual({ kind: 'not_present', level: 5, code: 0 });
    expect(fault(s.mmu.translate(0xff00_0000_0000_0000n, 'read', false))).toEqual({ kind: 'not_present', level: 5, code: 0 });
    expect(fault(s.mmu.translate(0x0100_0000_0000_0000n, 'read', false))).toEqual({ kind: 'non_canonical', level: 5, code: 0 });
    expect(fault(s.mmu.translate(0xfe00_0000_0000_0000n, 'write', true))).toEqual({ kind: 'non_canonical', level: 5, code: 0 });
  });
});

describe('SDM Vol.3A 4.7 page-fault error code: not-present faults', () => {
  it('P = 0 at each level faults at that level; W/R and U/S describe the access (code 0x6 for a user write)', () => {
    const entries: [bigint, bigint, bigint, bigint][] = [
      [0n, 0n, 0n, 0n],
      [BigInt(PDPT) | TBL, 0n, 0n, 0n],
      [BigInt(PDPT) | TBL, BigInt(PD) | TBL, 0n, 0n],
      [BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0n],
    ];
    entries.forEach(([a, b, c, d], i) => {
      const s = setup();
      chain4k(s, a, b, c, d);
      expect(fault(s.mmu.translate(VA4K, 'write', true))).toEqual({ kind: 'not_present', level: 4 - i, code: 0x6 });
      expect(fault(s.mmu.translate(VA4K, 'read', false))).toEqual({ kind: 'not_present', level: 4 - i, code: 0x0 });
    });
  });

  it('I/D (bit 4) is set for a fetch iff EFER.NXE = 1 or CR4.SMEP = 1', () => {
    expect(fault(setup().mmu.translate(VA4K, 'exec', false))).toEqual({ kind: 'not_present', level: 4, code: 0x10 });
    expect(fault(setup({ efer: EFER_NONX }).mmu.translate(VA4K, 'exec', false))).toEqual({ kind: 'not_present', level: 4, code: 0x0 });
    expect(fault(setup({ efer: EFER_NONX, cr4: CR4_PAE | CR4_SMEP }).mmu.translate(VA4K, 'exec', true))).toEqual({
      kind: 'not_present',
      level: 4,
      code: 0x14,
    });
  });

  it('reserved bits are not checked in an entry whose P = 0 (RSVD can be set only with P)', () => {
    const s = setup({}, { maxPhyAddr: 40 });
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, (1n << 51n) | PS | XD | 0x2000n | W, 0n);
    expect(fault(s.mmu.translate(VA4K, 'read', true))).toEqual({ kind: 'not_present', level: 2, code: 0x4 });
  });
});

describe('SDM Vol.3A 4.5.4 / 4.7 reserved bits (RSVD = 1, P = 1)', () => {
  const ok = (s: Setup) => expect(fault(s.mmu.translate(VA4K, 'read', false))).toBeNull();

  it('address bits 51:MAXPHYADDR are reserved at every level (MAXPHYADDR = 46: bit 46 faults, bit 45 does not)', () => {
    const levels = [4, 3, 2, 1];
    levels.forEach((lvl, i) => {
      const s = setup({}, { maxPhyAddr: 46 });
      const e: bigint[] = [BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x7000n | P];
      e[i] = e[i]! | (1n << 46n);
      chain4k(s, e[0]!, e[1]!, e[2]!, e[3]!);
      expect(fault(s.mmu.translate(VA4K, 'write', true))).toEqual({ kind: 'reserved', level: lvl, code: 0xf });
    });
    const s = setup({}, { maxPhyAddr: 46 });
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, (1n << 45n) | P);
    expect(s.mmu.translate(VA4K, 'read', false)).toMatchObject({ pa: 0x2000_0000_0abcn });
  });

  it('with MAXPHYADDR = 52 bit 51 is an address bit, not reserved', () => {
    const s = setup();
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, (1n << 51n) | P);
    expect(s.mmu.translate(VA4K, 'read', false)).toMatchObject({ pa: 0x8_0000_0000_0abcn });
  });

  it('Table 4-15 / 4-14: PS (bit 7) is reserved in a PML4E and in a PML5E', () => {
    const s = setup();
    chain4k(s, BigInt(PDPT) | TBL | PS, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x7000n | P);
    expect(fault(s.mmu.translate(VA4K, 'read', false))).toEqual({ kind: 'reserved', level: 4, code: 0x9 });
    const s5 = setup({ cr3: BigInt(PML5), cr4: CR4_PAE | CR4_LA57 });
    s5.set(PML5, 0, BigInt(PML4) | TBL | PS);
    expect(fault(s5.mmu.translate(0x1000n, 'exec', false))).toEqual({ kind: 'reserved', level: 5, code: 0x19 });
  });

  it('Table 4-18: bits 20:13 of a 2-MByte PDE are reserved (bit 13 and bit 20 fault; bit 12 = PAT does not)', () => {
    for (const bit of [13n, 20n]) {
      const s = setup();
      chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, 0x60_0000n | (1n << bit) | P | PS, 0n);
      expect(fault(s.mmu.translate(VA4K, 'read', false))).toEqual({ kind: 'reserved', level: 2, code: 0x9 });
    }
    const s = setup();
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, 0x60_0000n | (1n << 12n) | P | PS, 0n);
    ok(s);
  });

  it('a PDE with PS = 0 uses bits 20:13 as table address bits (not reserved)', () => {
    const s = setup();
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, 0x6000n | TBL, 0n);
    s.set(0x6000, 0x167, 0x5_0000n | P);
    expect(s.mmu.translate(VA4K, 'read', false)).toMatchObject({ pa: 0x5_0abcn });
  });

  it('Table 4-16: bits 29:13 of a 1-GByte PDPTE are reserved (bit 29 and bit 13 fault)', () => {
    for (const bit of [13n, 21n, 29n]) {
      const s = setup();
      s.set(PML4, 0x0fe, BigInt(PDPT) | TBL);
      s.set(PDPT, 0x048, 0x4000_0000n | (1n << bit) | P | PS);
      expect(fault(s.mmu.translate(VA4K, 'write', false))).toEqual({ kind: 'reserved', level: 3, code: 0xb });
    }
  });

  it('XD (bit 63) is reserved at every level when EFER.NXE = 0, and allowed when NXE = 1', () => {
    [4, 3, 2, 1].forEach((lvl, i) => {
      const e: bigint[] = [BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x7000n | P];
      e[i] = e[i]! | XD;
      const s = setup({ efer: EFER_NONX });
      chain4k(s, e[0]!, e[1]!, e[2]!, e[3]!);
      expect(fault(s.mmu.translate(VA4K, 'read', true))).toEqual({ kind: 'reserved', level: lvl, code: 0xd });
      const n = setup();
      chain4k(n, e[0]!, e[1]!, e[2]!, e[3]!);
      expect(fault(n.mmu.translate(VA4K, 'read', false))).toBeNull();
    });
  });

  it('bits 62:52 are ignored (not reserved), also in table entries', () => {
    const s = setup();
    const ign = 0x7ff0_0000_0000_0000n;
    chain4k(s, BigInt(PDPT) | TBL | ign, BigInt(PD) | TBL | ign, BigInt(PT) | TBL | ign, 0x7000n | P | ign);
    expect(s.mmu.translate(VA4K, 'read', false)).toMatchObject({ pa: 0x7abcn });
  });

  it('mmulab: a paging structure outside emulated memory is a reserved fault (P | RSVD + access bits) at the level that cannot be read', () => {
    const s = setup();
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, 0x1_0000_0000n | TBL, 0n);
    expect(fault(s.mmu.translate(VA4K, 'read', false))).toEqual({ kind: 'reserved', level: 1, code: 0x9 });
    expect(fault(s.mmu.translate(VA4K, 'write', true))).toEqual({ kind: 'reserved', level: 1, code: 0xf });
    // Memory is 1 MiB: a PDPT at 0x10_0000 is the first frame past the end.
    chain4k(s, 0x10_0000n | TBL, 0n, 0n, 0n);
    expect(fault(s.mmu.translate(VA4K, 'read', false))).toEqual({ kind: 'reserved', level: 3, code: 0x9 });
    // CR3 itself outside memory: the fault is at the top level.
    const c = setup({ cr3: 0x4000_0000n });
    expect(fault(c.mmu.translate(VA4K, 'read', false))).toEqual({ kind: 'reserved', level: 4, code: 0x9 });
  });

  it('mmulab: with phys_base 0x40000000 a table below phys_base is outside memory too', () => {
    const s = setup({}, { physBase: 0x4000_0000 });
    const b = 0x4000_0000n;
    chain4k(s, b + BigInt(PDPT) | TBL, b + BigInt(PD) | TBL, b + BigInt(PT) | TBL, 0x8000n | P);
    expect(s.mmu.translate(VA4K, 'read', false)).toMatchObject({ pa: 0x8abcn });
    s.set(PD, 0x1a2, BigInt(PT) | TBL); // 0x4000 < phys_base
    expect(fault(s.mmu.translate(VA4K, 'read', false))).toEqual({ kind: 'reserved', level: 1, code: 0x9 });
  });
});

describe('SDM Vol.3A 4.6.1 access rights: R/W and U/S over all levels, XD, CR0.WP', () => {
  it('R/W = 0 in one upper level makes the page read-only for user writes (code 0x7)', () => {
    const s = setup();
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | P | U, BigInt(PT) | TBL, 0x7000n | P | W | U);
    expect(fault(s.mmu.translate(VA4K, 'read', true))).toBeNull();
    expect(fault(s.mmu.translate(VA4K, 'write', true))).toEqual({ kind: 'protection', level: 1, code: 0x7 });
  });

  it('supervisor writes to a read-only address fault iff CR0.WP = 1 (code 0x3)', () => {
    const s = setup();
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x7000n | P);
    expect(fault(s.mmu.translate(VA4K, 'write', false))).toEqual({ kind: 'protection', level: 1, code: 0x3 });
    s.mmu.setRegister('cr0', CR0_NOWP);
    expect(fault(s.mmu.translate(VA4K, 'write', false))).toBeNull();
    // … but CR0.WP never lets user mode write.
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x7000n | P | U);
    expect(fault(s.mmu.translate(VA4K, 'write', true))).toEqual({ kind: 'protection', level: 1, code: 0x7 });
  });

  it('U/S = 0 at any level makes a supervisor-mode address: user reads fault (code 0x5), supervisor reads do not', () => {
    for (let i = 0; i < 4; i++) {
      const e: bigint[] = [BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x7000n | P | W | U];
      e[i] = e[i]! & ~U;
      const s = setup();
      chain4k(s, e[0]!, e[1]!, e[2]!, e[3]!);
      expect(fault(s.mmu.translate(VA4K, 'read', true))).toEqual({ kind: 'protection', level: 1, code: 0x5 });
      expect(fault(s.mmu.translate(VA4K, 'read', false))).toBeNull();
    }
  });

  it('XD = 1 at any level forbids fetches when NXE = 1 (code 0x11 supervisor, 0x15 user); data is unaffected', () => {
    for (let i = 0; i < 4; i++) {
      const e: bigint[] = [BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x7000n | P | U];
      e[i] = e[i]! | XD;
      const s = setup();
      chain4k(s, e[0]!, e[1]!, e[2]!, e[3]!);
      expect(fault(s.mmu.translate(VA4K, 'exec', false))).toEqual({ kind: 'protection', level: 1, code: 0x11 });
      expect(fault(s.mmu.translate(VA4K, 'exec', true))).toEqual({ kind: 'protection', level: 1, code: 0x15 });
      expect(fault(s.mmu.translate(VA4K, 'read', true))).toBeNull();
    }
  });

  it('a protection fault is reported at the leaf level (2-MByte leaf: level 2)', () => {
    const s = setup();
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, 0x20_0000n | P | PS, 0n);
    expect(fault(s.mmu.translate(VA4K, 'read', true))).toEqual({ kind: 'protection', level: 2, code: 0x5 });
  });
});

describe('SDM Vol.3A 4.6.1 SMEP and SMAP', () => {
  function userPage(regs: Partial<Record<string, bigint>>, leaf = 0x7000n | P | U): Setup {
    const s = setup(regs);
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, leaf);
    return s;
  }

  it('CR4.SMEP = 1: a supervisor fetch from a user-mode address faults (code 0x11); a user fetch does not', () => {
    const s = userPage({ cr4: CR4_PAE | CR4_SMEP });
    expect(fault(s.mmu.translate(VA4K, 'exec', false))).toEqual({ kind: 'protection', level: 1, code: 0x11 });
    expect(fault(s.mmu.translate(VA4K, 'exec', true))).toBeNull();
    expect(fault(userPage({}).mmu.translate(VA4K, 'exec', false))).toBeNull();
  });

  it('CR4.SMEP = 1 with NXE = 0: still code 0x11 (I/D set because SMEP = 1)', () => {
    const s = userPage({ cr4: CR4_PAE | CR4_SMEP, efer: EFER_NONX });
    expect(fault(s.mmu.translate(VA4K, 'exec', false))).toEqual({ kind: 'protection', level: 1, code: 0x11 });
  });

  it('SMEP does not apply to a supervisor-mode address (U/S = 0 in an upper level)', () => {
    const s = setup({ cr4: CR4_PAE | CR4_SMEP });
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | P | W, BigInt(PT) | TBL, 0x7000n | P | U);
    expect(fault(s.mmu.translate(VA4K, 'exec', false))).toBeNull();
  });

  it('CR4.SMAP = 1: supervisor reads and writes of user-mode addresses fault unless RFLAGS.AC = 1', () => {
    const s = userPage({ cr4: CR4_PAE | CR4_SMAP }, 0x7000n | P | W | U);
    expect(fault(s.mmu.translate(VA4K, 'read', false))).toEqual({ kind: 'protection', level: 1, code: 0x1 });
    expect(fault(s.mmu.translate(VA4K, 'write', false))).toEqual({ kind: 'protection', level: 1, code: 0x3 });
    expect(fault(s.mmu.translate(VA4K, 'read', true))).toBeNull();
    expect(fault(s.mmu.translate(VA4K, 'exec', false))).toBeNull(); // SMAP is about data only
    s.mmu.setRegister('rflags', 0x2n | AC);
    expect(fault(s.mmu.translate(VA4K, 'read', false))).toBeNull();
    expect(fault(s.mmu.translate(VA4K, 'write', false))).toBeNull();
  });

  it('SMAP with AC = 1: writes to a read-only user page follow CR0.WP (fault with WP = 1, allowed with WP = 0)', () => {
    const s = userPage({ cr4: CR4_PAE | CR4_SMAP, rflags: 0x2n | AC });
    expect(fault(s.mmu.translate(VA4K, 'write', false))).toEqual({ kind: 'protection', level: 1, code: 0x3 });
    s.mmu.setRegister('cr0', CR0_NOWP);
    expect(fault(s.mmu.translate(VA4K, 'write', false))).toBeNull();
  });

  it('RFLAGS.AC does not matter without SMAP, and SMAP does not restrict supervisor-mode addresses', () => {
    expect(fault(userPage({ rflags: 0x2n }).mmu.translate(VA4K, 'read', false))).toBeNull();
    const s = setup({ cr4: CR4_PAE | CR4_SMAP });
    chain4k(s, BigInt(PDPT) | P | W, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x7000n | P | U);
    expect(fault(s.mmu.translate(VA4K, 'read', false))).toBeNull();
  });
});

describe('SDM Vol.3A 4.6.2 protection keys (CR4.PKE, PKRU)', () => {
  // Key 3 in bits 62:59; PKRU: AD3 = bit 6, WD3 = bit 7.
  const KEY3 = 3n << 59n;
  function keyed(regs: Partial<Record<string, bigint>>, leaf = 0x7000n | P | W | U | KEY3): Setup {
    const s = setup({ cr4: CR4_PAE | CR4_PKE, ...regs });
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, leaf);
    return s;
  }

  it('AD of the page key forbids user reads and writes (code 0x25, 0x27: PK = bit 5)', () => {
    const s = keyed({ pkru: 0x40n });
    expect(fault(s.mmu.translate(VA4K, 'read', true))).toEqual({ kind: 'protection', level: 1, code: 0x25 });
    expect(fault(s.mmu.translate(VA4K, 'write', true))).toEqual({ kind: 'protection', level: 1, code: 0x27 });
  });

  it('AD also forbids supervisor data access to a user-mode address (code 0x21)', () => {
    expect(fault(keyed({ pkru: 0x40n }).mmu.translate(VA4K, 'read', false))).toEqual({ kind: 'protection', level: 1, code: 0x21 });
  });

  it('WD forbids user writes always, supervisor writes only with CR0.WP = 1; reads are allowed', () => {
    const s = keyed({ pkru: 0x80n });
    expect(fault(s.mmu.translate(VA4K, 'read', true))).toBeNull();
    expect(fault(s.mmu.translate(VA4K, 'write', true))).toEqual({ kind: 'protection', level: 1, code: 0x27 });
    expect(fault(s.mmu.translate(VA4K, 'write', false))).toEqual({ kind: 'protection', level: 1, code: 0x23 });
    s.mmu.setRegister('cr0', CR0_NOWP);
    expect(fault(s.mmu.translate(VA4K, 'write', false))).toBeNull();
    expect(fault(s.mmu.translate(VA4K, 'write', true))).toEqual({ kind: 'protection', level: 1, code: 0x27 });
  });

  it('fetches ignore PKRU; other keys\' bits do not apply; supervisor-mode addresses are not subject to keys', () => {
    const s = keyed({ pkru: 0xffff_ff3fn }); // every AD/WD set except key 3's
    expect(fault(s.mmu.translate(VA4K, 'write', true))).toBeNull();
    const f = keyed({ pkru: 0xc0n });
    expect(fault(f.mmu.translate(VA4K, 'exec', true))).toBeNull();
    const sup = setup({ cr4: CR4_PAE | CR4_PKE, pkru: 0xc0n });
    chain4k(sup, BigInt(PDPT) | TBL, BigInt(PD) | P | W, BigInt(PT) | TBL, 0x7000n | P | W | U | KEY3);
    expect(fault(sup.mmu.translate(VA4K, 'write', false))).toBeNull();
  });

  it('CR4.PKE = 0: bits 62:59 are ignored and WalkResult.pkey is 0', () => {
    const s = keyed({ cr4: CR4_PAE, pkru: 0xc0n });
    const out = new WalkResult();
    s.mmu.walk(0x0000_7f12, 0x3456_7abc, 'write', true, false, out);
    expect(out.fault).toBeNull();
    expect(out.pkey).toBe(0);
    const k = keyed({ pkru: 0n });
    k.mmu.walk(0x0000_7f12, 0x3456_7abc, 'read', true, false, out);
    expect(out.pkey).toBe(3);
  });

  it('4.7: PK is set whenever PKRU forbids the access, also when R/W forbids it too (user write to a read-only page: 0x27)', () => {
    const s = keyed({ pkru: 0x80n }, 0x7000n | P | U | KEY3);
    expect(fault(s.mmu.translate(VA4K, 'write', true))).toEqual({ kind: 'protection', level: 1, code: 0x27 });
    // A key fault on a 2-MByte leaf uses the PDE's key field.
    const l = setup({ cr4: CR4_PAE | CR4_PKE, pkru: 0x40n });
    chain4k(l, BigInt(PDPT) | TBL, BigInt(PD) | TBL, 0x20_0000n | P | U | PS | KEY3, 0n);
    expect(fault(l.mmu.translate(VA4K, 'read', true))).toEqual({ kind: 'protection', level: 2, code: 0x25 });
  });
});

describe('SDM Vol.3A 4.8 accessed and dirty flags', () => {
  function plain(s: Setup, leaf = 0x7000n | P | W | U): void {
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, leaf);
  }
  const entries = (s: Setup) => [s.get(PML4, 0x0fe), s.get(PDPT, 0x048), s.get(PD, 0x1a2), s.get(PT, 0x167)];

  it('a read sets A in every entry used and in the leaf, and no D', () => {
    const s = setup();
    plain(s);
    expect(fault(s.mmu.translate(VA4K, 'read', true))).toBeNull();
    expect(entries(s)).toEqual([0x2027n, 0x3027n, 0x4027n, 0x7027n]);
  });

  it('a write sets D in the leaf only (bit 6 of a table entry is left alone)', () => {
    const s = setup();
    plain(s);
    const t = s.mmu.translate(VA4K, 'write', true);
    expect(entries(s)).toEqual([0x2027n, 0x3027n, 0x4027n, 0x7067n]);
    expect(isFault(t) ? null : [t.attrs.a, t.attrs.d]).toEqual([true, true]);
  });

  it('a write through a 2-MByte leaf sets D in the PDE', () => {
    const s = setup();
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, 0x20_0000n | P | W | PS, 0n);
    s.mmu.translate(VA4K, 'write', false);
    expect(s.get(PD, 0x1a2)).toBe(0x20_00e3n);
    expect(s.get(PT, 0x167)).toBe(0n);
  });

  it('a faulting access changes no A or D bit (protection, not-present and reserved faults)', () => {
    const s = setup();
    plain(s, 0x7000n | P | U); // read-only
    expect(fault(s.mmu.translate(VA4K, 'write', true))?.kind).toBe('protection');
    expect(entries(s)).toEqual([0x2007n, 0x3007n, 0x4007n, 0x7005n]);
    plain(s, 0n);
    expect(fault(s.mmu.translate(VA4K, 'read', true))?.kind).toBe('not_present');
    expect(entries(s)).toEqual([0x2007n, 0x3007n, 0x4007n, 0n]);
  });

  it('a debug walk changes nothing', () => {
    const s = setup();
    plain(s);
    expect(fault(s.mmu.translate(VA4K, 'write', true, { debug: true }))).toBeNull();
    expect(entries(s)).toEqual([0x2007n, 0x3007n, 0x4007n, 0x7007n]);
  });

  it('bits already set stay set; the rest of the entry (XD, key, address) is untouched', () => {
    const s = setup();
    const hi = XD | (5n << 59n) | (0x7ffn << 52n);
    chain4k(s, BigInt(PDPT) | TBL | A, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x12_3456_7000n | P | W | U | D | hi);
    s.mmu.translate(VA4K, 'read', true);
    expect(entries(s)).toEqual([0x2027n, 0x3027n, 0x4027n, 0x12_3456_7067n | hi]);
  });

  it('WalkResult: leafLo and entryLo show the updated entries; dirty follows D', () => {
    const s = setup();
    plain(s);
    const out = new WalkResult();
    s.mmu.walk(0x0000_7f12, 0x3456_7abc, 'read', true, false, out);
    expect(out.leafLo).toBe(0x7027);
    expect(out.dirty).toBe(false);
    expect(Array.from(out.entryLo.slice(0, 4))).toEqual([0x2027, 0x3027, 0x4027, 0x7027]);
    s.mmu.walk(0x0000_7f12, 0x3456_7abc, 'write', true, false, out);
    expect(out.leafLo).toBe(0x7067);
    expect(out.dirty).toBe(true);
  });
});

describe('WalkResult fields (src/arch/mmu-types.ts)', () => {
  it('permUser / permPriv: raw rights of the structures; permPriv applies CR0.WP only', () => {
    const s = setup({ cr4: CR4_PAE | CR4_SMEP | CR4_SMAP });
    const out = new WalkResult();
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x7000n | P | U);
    s.mmu.walk(0x0000_7f12, 0x3456_7abc, 'read', true, false, out);
    expect([out.permUser, out.permPriv]).toEqual([PERM_R | PERM_X, PERM_R | PERM_X]);
    s.mmu.setRegister('cr0', CR0_NOWP);
    s.mmu.walk(0x0000_7f12, 0x3456_7abc, 'read', true, false, out);
    expect([out.permUser, out.permPriv]).toEqual([PERM_R | PERM_X, PERM_R | PERM_W | PERM_X]);
    chain4k(s, BigInt(PDPT) | P | W, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x7000n | P | W | U | XD);
    s.mmu.walk(0x0000_7f12, 0x3456_7abc, 'read', false, false, out);
    expect([out.permUser, out.permPriv]).toEqual([0, PERM_R | PERM_W]);
  });

  it('global = G of the leaf only with CR4.PGE = 1 (SDM 4.10.2.4)', () => {
    const out = new WalkResult();
    for (const [cr4, want] of [
      [CR4_PAE, false],
      [CR4_PAE | CR4_PGE, true],
    ] as const) {
      const s = setup({ cr4 });
      chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x7000n | P | G);
      s.mmu.walk(0x0000_7f12, 0x3456_7abc, 'read', false, false, out);
      expect(out.global).toBe(want);
    }
  });

  it('a protection fault still reports the leaf (pa, page size); a not-present fault reports none', () => {
    const s = setup();
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x7000n | P);
    const out = new WalkResult();
    s.mmu.walk(0x0000_7f12, 0x3456_7abc, 'read', true, false, out);
    expect([out.fault, out.pa, out.pageSize, out.leafAddr]).toEqual(['protection', 0x7abc, 4096, 0x4b38]);
    s.set(PT, 0x167, 0n);
    s.mmu.walk(0x0000_7f12, 0x3456_7abc, 'read', true, false, out);
    expect([out.fault, out.pa, out.pageSize, out.memRefs]).toEqual(['not_present', 0, 0, 4]);
  });
});

describe('translate(): attrs (FORMATS.md translate)', () => {
  it('effective rw/us/nx combined over the levels, the rest from the leaf', () => {
    const s = setup({ cr4: CR4_PAE | CR4_PKE });
    chain4k(s, BigInt(PDPT) | TBL | XD, BigInt(PD) | P | U, BigInt(PT) | TBL, 0x7000n | P | W | U | G | PWT | PCD | PS | (9n << 59n));
    const t = s.mmu.translate(VA4K, 'read', false);
    expect(t).toEqual({
      va: VA4K,
      pa: 0x7abcn,
      level: 1,
      pageSize: 4096,
      attrs: { rw: false, us: true, nx: true, g: true, a: true, d: false, pwt: true, pcd: true, pat: true, pkey: 9 },
    });
  });

  it('nx is false when EFER.NXE = 0 (no XD bit can be set)', () => {
    const s = setup({ efer: EFER_NONX });
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x7000n | P);
    const t = s.mmu.translate(VA4K, 'read', false);
    expect(isFault(t) ? null : t.attrs).toMatchObject({ rw: false, us: false, nx: false, pat: false });
  });

  it('a VA outside 0..2^64-1 or an unknown access is a RangeError', () => {
    const s = setup();
    expect(() => s.mmu.translate(1n << 64n, 'read', false)).toThrow(RangeError);
    expect(() => s.mmu.translate(-1n, 'read', false)).toThrow(RangeError);
    expect(() => s.mmu.translate(0n, 'load' as never, false)).toThrow(/access load/);
  });
});

describe('registers and regime', () => {
  const mem = new PhysMem({ size: 1 << 20 });
  it('missing cr0/cr3/cr4/efer is a RangeError naming the register', () => {
    const full = { cr0: CR0, cr3: 0x1000n, cr4: CR4_PAE, efer: EFER };
    for (const name of ['cr0', 'cr3', 'cr4', 'efer'] as const) {
      const regs: Record<string, bigint> = { ...full };
      delete regs[name];
      expect(() => createX86Mmu(mem, regs)).toThrow(new RegExp(`register ${name} is missing`));
    }
  });

  it('SDM 4.1.1 Table 4-1: only IA-32e paging (CR0.PG = 1, CR4.PAE = 1, EFER.LME = 1) is accepted', () => {
    expect(() => createX86Mmu(mem, { cr0: 0x11n, cr3: 0n, cr4: CR4_PAE, efer: EFER })).toThrow(/cr0 0x11 has PG/);
    expect(() => createX86Mmu(mem, { cr0: CR0, cr3: 0n, cr4: 0n, efer: EFER })).toThrow(/cr4 0x0 has PAE/);
    expect(() => createX86Mmu(mem, { cr0: CR0, cr3: 0n, cr4: CR4_PAE, efer: 0x800n })).toThrow(/efer 0x800 has LME/);
    const m = createX86Mmu(mem, { cr0: CR0, cr3: 0n, cr4: CR4_PAE, efer: EFER });
    expect(() => m.setRegister('cr0', 0x11n)).toThrow(RangeError);
    expect(m.getRegister('cr0')).toBe(CR0); // a refused write changes nothing
  });

  it('defaults pkru = 0, rflags = 0x2; unknown registers and values beyond 64 bits are refused', () => {
    const m = createX86Mmu(mem, { cr0: CR0, cr3: 0n, cr4: CR4_PAE, efer: EFER });
    expect(m.getRegister('pkru')).toBe(0n);
    expect(m.getRegister('rflags')).toBe(2n);
    expect(m.arch).toBe('x86_64');
    expect(() => m.getRegister('cr2')).toThrow(/no register cr2/);
    expect(() => m.setRegister('cr8', 0n)).toThrow(/no register cr8/);
    expect(() => m.setRegister('cr3', 1n << 64n)).toThrow(/cr3/);
    expect(() => m.setRegister('pkru', 1n << 32n)).toThrow(/pkru/);
    expect(() => createX86Mmu(mem, { cr0: CR0, cr3: 0n, cr4: CR4_PAE, efer: EFER }, { maxPhyAddr: 53 })).toThrow(/maxPhyAddr 53/);
  });

  it('setRegister re-derives the regime: CR4.LA57 switches 4-level ↔ 5-level, CR3 switches the root', () => {
    const s = setup();
    chain4k(s, BigInt(PDPT) | TBL, BigInt(PD) | TBL, BigInt(PT) | TBL, 0x7000n | P);
    s.set(PML5, 0, BigInt(PML4) | TBL);
    expect(s.mmu.translate(VA4K, 'read', false)).toMatchObject({ pa: 0x7abcn });
    s.mmu.setRegister('cr3', BigInt(PML5));
    s.mmu.setRegister('cr4', CR4_PAE | CR4_LA57);
    const out = new WalkResult();
    s.mmu.walk(0x0000_7f12, 0x3456_7abc, 'read', false, false, out);
    expect([out.fault, out.pa, out.memRefs]).toEqual([null, 0x7abc, 5]);
    s.mmu.setRegister('cr3', 0x6000n); // an empty PML5
    expect(fault(s.mmu.translate(VA4K, 'read', false))).toEqual({ kind: 'not_present', level: 5, code: 0 });
  });
});

describe('X86Mmu numeric state for the TLB (no BigInt on a hit)', () => {
  it('accessState has WP 0x1, NXE 0x2, SMEP 0x4, SMAP 0x8, PKE 0x10, AC 0x20, PGE 0x40; pkruBits is PKRU', () => {
    const s = setup({ cr4: CR4_PAE | CR4_SMEP | CR4_PKE, pkru: 0xdead_beefn });
    const m = s.mmu as unknown as { accessState: number; pkruBits: number; pagingLevels: number };
    expect(m.accessState).toBe(0x1 | 0x2 | 0x4 | 0x10);
    expect(m.pkruBits).toBe(0xdead_beef);
    expect(m.pagingLevels).toBe(4);
    s.mmu.setRegister('cr0', CR0_NOWP);
    s.mmu.setRegister('efer', EFER_NONX);
    s.mmu.setRegister('cr4', CR4_PAE | CR4_SMAP | CR4_PGE);
    s.mmu.setRegister('rflags', 0x2n | AC);
    expect(m.accessState).toBe(0x8 | 0x20 | 0x40);
  });
});
