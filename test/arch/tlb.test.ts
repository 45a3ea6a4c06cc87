import { describe, expect, it } from 'vitest';
import {
  INV_ALL_ASIDS,
  INV_ASID_NON_GLOBAL,
  INV_ASID_OR_GLOBAL,
  TLB_NEOVERSE_N1,
  TLB_SKYLAKE,
  Tlb,
  TlbSpecError,
  offsetOf,
  parseTlbSpec,
  vpnOf,
} from '../../src/arch/tlb';

/** Fill a translation with only the fields the tag tests care about. */
function put(t: Tlb, vaHi: number, vaLo: number, shift: number, asid: number, global: boolean, pa: number): boolean {
  return t.fill(vaHi, vaLo, shift, asid, global, pa, 7, 7, 1, 0, 0, 1, 0, 0);
}

describe('page numbers on the two halves (no 32-bit truncation)', () => {
  it('vpnOf / offsetOf of 0xffff888000123456', () => {
    // hand-computed: 0xffff888000123456 >> 12 = 0xffff888000123; >> 20 = 0xffff8880001, so >> 21 = 0x7fffc440000;
    // >> 28 = 0xffff88800, so >> 30 = 0x3fffe2200; >> 36 = 0xffff888
    expect(vpnOf(0xffff8880, 0x00123456, 12)).toBe(0xffff888000123);
    expect(vpnOf(0xffff8880, 0x00123456, 21)).toBe(0x7fffc440000);
    expect(vpnOf(0xffff8880, 0x00123456, 30)).toBe(0x3fffe2200);
    expect(vpnOf(0xffff8880, 0x00123456, 36)).toBe(0xffff888);
    expect(offsetOf(0xffff8880, 0x00123456, 12)).toBe(0x456);
    expect(offsetOf(0xffff8880, 0x00123456, 21)).toBe(0x123456);
    expect(offsetOf(0xffff8880, 0x00123456, 30)).toBe(0x123456);
    expect(offsetOf(0xffff8880, 0x00123456, 36)).toBe(0x0_0012_3456);
    expect(offsetOf(0x0000_0012, 0x8000_0000, 36)).toBe(0x2_8000_0000);
  });
});

describe('lookup tags: page size, PCID/ASID, global (SDM Vol.3A 4.10.2, Arm ARM D8.13)', () => {
  it('a 4K entry hits for its page only; a 2M entry for every VA in its 2 MiB', () => {
    const t = new Tlb(TLB_SKYLAKE);
    put(t, 0, 0x400000, 12, 0, false, 0x100000);
    put(t, 0, 0x4000_0000, 21, 0, false, 0x80_0000);
    expect(t.lookup(0, 0x400fff, 0)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(0, 0x401000, 0)).toBe(-1);
    const s = t.lookup(0, 0x401f_ffff, 0);
    expect(s).toBeGreaterThanOrEqual(0);
    expect(t.paBase[s]).toBe(0x80_0000);
    expect(t.shift[s]).toBe(21);
    expect(t.lookup(0, 0x4020_0000, 0)).toBe(-1);
  });

  it('a non-global entry hits only under its own PCID/ASID; a global one under any', () => {
    const t = new Tlb(TLB_NEOVERSE_N1);
    put(t, 0, 0x1000, 12, 5, false, 0xa000);
    put(t, 0, 0x2000, 12, 5, true, 0xb000);
    expect(t.lookup(0, 0x1000, 5)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(0, 0x1000, 6)).toBe(-1);
    expect(t.lookup(0, 0x2000, 6)).toBeGreaterThanOrEqual(0);
  });

  it('the same VA in two ASIDs is two entries', () => {
    const t = new Tlb(TLB_NEOVERSE_N1);
    put(t, 0, 0x1000, 12, 1, false, 0xa000);
    put(t, 0, 0x1000, 12, 2, false, 0xb000);
    expect(t.paBase[t.lookup(0, 0x1000, 1)]).toBe(0xa000);
    expect(t.paBase[t.lookup(0, 0x1000, 2)]).toBe(0xb000);
    expect(t.occupancy()).toBe(4); // each in L1 and L2
  });

  it('Skylake has no array for a 512M page: the fill is refused', () => {
    expect(put(new Tlb(TLB_SKYLAKE), 0, 0x2000_0000, 29, 0, false, 0)).toBe(false);
  });
});

describe('set-associative placement and LRU replacement', () => {
  it('L1 4K 64 entries × 4 ways = 16 sets: five pages of one set evict the least recently used', () => {
    const t = new Tlb(parseTlbSpec('L1:4K:64x4'));
    // Pages 0x10, 0x20, 0x30, 0x40, 0x50 all have page number ≡ 0 (mod 16): set 0.
    for (const p of [0x10, 0x20, 0x30, 0x40]) put(t, 0, p * 4096, 12, 0, false, p * 4096);
    expect(t.lookup(0, 0x10 * 4096, 0)).toBeGreaterThanOrEqual(0); // 0x10 is now the most recent
    put(t, 0, 0x50 * 4096, 12, 0, false, 0);
    expect(t.lookup(0, 0x20 * 4096, 0)).toBe(-1); // 0x20 was the LRU way
    for (const p of [0x10, 0x30, 0x40, 0x50]) expect(t.lookup(0, p * 4096, 0)).toBeGreaterThanOrEqual(0);
    // A page of another set (0x11: set 1) does not disturb set 0.
    put(t, 0, 0x11 * 4096, 12, 0, false, 0);
    expect(t.occupancy()).toBe(5);
    expect(t.arrayStats()[0]).toMatchObject({ fills: 6, evictions: 1 });
  });

  it('refilling the same tag replaces the entry instead of duplicating it', () => {
    const t = new Tlb(parseTlbSpec('L1:4K:4x4'));
    put(t, 0, 0x1000, 12, 0, false, 0xa000);
    put(t, 0, 0x1000, 12, 0, false, 0xb000);
    expect(t.occupancy()).toBe(1);
    expect(t.paBase[t.lookup(0, 0x1000, 0)]).toBe(0xb000);
  });

  it('an L2 hit refills L1 (an STLB hit, then an L1 hit)', () => {
    const t = new Tlb(parseTlbSpec('L1:4K:4x4,L2:4K:64x4'));
    for (let p = 1; p <= 5; p++) put(t, 0, p * 4096, 12, 0, false, p * 0x10000);
    // L1 holds pages 2-5; page 1 is only in L2.
    expect(t.lookup(0, 0x1000, 0)).toBeGreaterThanOrEqual(0);
    expect(t.lastHitLevel).toBe(2);
    const s = t.lookup(0, 0x1000, 0);
    expect(t.lastHitLevel).toBe(1);
    expect(t.paBase[s]).toBe(0x10000);
  });
});

describe('invalidation by address, by ASID, by range', () => {
  it('invalidateVa removes every entry that translates the VA, whatever its size', () => {
    const t = new Tlb(TLB_SKYLAKE);
    put(t, 0, 0x4000_0000, 21, 0, false, 0);
    put(t, 0, 0x4000_0000, 12, 0, false, 0);
    expect(t.invalidateVa(0, 0x4000_0000, 0, INV_ASID_OR_GLOBAL)).toBe(4); // L1 + STLB, 2M and 4K
    expect(t.occupancy()).toBe(0);
  });

  it('modes: ASID-or-global, all ASIDs, ASID non-global only', () => {
    const t = new Tlb(TLB_NEOVERSE_N1);
    const load = () => {
      t.invalidateAll();
      put(t, 0, 0x1000, 12, 1, false, 0);
      put(t, 0, 0x1000, 12, 2, false, 0);
      put(t, 0, 0x1000, 12, 1, true, 0);
    };
    load();
    t.invalidateVa(0, 0x1000, 1, INV_ASID_OR_GLOBAL);
    expect(t.lookup(0, 0x1000, 2)).toBeGreaterThanOrEqual(0); // ASID 2's entry survives
    expect(t.lookup(0, 0x1000, 1)).toBe(-1); // ASID 1's and the global one are gone
    load();
    t.invalidateVa(0, 0x1000, 1, INV_ALL_ASIDS);
    expect(t.occupancy()).toBe(0);
    load();
    t.invalidateVa(0, 0x1000, 1, INV_ASID_NON_GLOBAL);
    expect(t.lookup(0, 0x1000, 3)).toBeGreaterThanOrEqual(0); // the global entry survives
    expect(t.lookup(0, 0x1000, 2)).toBeGreaterThanOrEqual(0);
  });

  it('invalidateNonGlobal keeps global entries; invalidateAll does not', () => {
    const t = new Tlb(TLB_SKYLAKE);
    put(t, 0, 0x1000, 12, 0, false, 0);
    put(t, 0xffff8880, 0, 12, 0, true, 0);
    t.invalidateNonGlobal(0);
    expect(t.lookup(0, 0x1000, 0)).toBe(-1);
    expect(t.lookup(0xffff8880, 0, 0)).toBeGreaterThanOrEqual(0);
    t.invalidateAll();
    expect(t.occupancy()).toBe(0);
  });

  it('invalidateRange removes entries overlapping [start, end), at the top of the space too', () => {
    const t = new Tlb(TLB_NEOVERSE_N1);
    put(t, 0, 0x3ff000, 12, 1, false, 0);
    put(t, 0, 0x400000, 12, 1, false, 0);
    put(t, 0, 0x403000, 12, 1, false, 0);
    put(t, 0, 0x404000, 12, 1, false, 0);
    put(t, 0xffff_ffff, 0xffe0_0000, 21, 1, false, 0); // the last 2M of the space
    t.invalidateRange(0x400000, 0x404000, 1, INV_ASID_OR_GLOBAL);
    expect(t.lookup(0, 0x3ff000, 1)).toBeGreaterThanOrEqual(0);
    expect(t.lookup(0, 0x400000, 1)).toBe(-1);
    expect(t.lookup(0, 0x403000, 1)).toBe(-1);
    expect(t.lookup(0, 0x404000, 1)).toBeGreaterThanOrEqual(0);
    t.invalidateRange(2 ** 64 - 4096, 2 ** 64, 1, INV_ASID_OR_GLOBAL);
    expect(t.lookup(0xffff_ffff, 0xffe0_1000, 1)).toBe(-1);
  });
});

describe('TLB specifications', () => {
  it('presets and LEVEL:SIZES:ENTRIESxWAYS', () => {
    expect(parseTlbSpec('skylake')).toBe(TLB_SKYLAKE);
    const c = parseTlbSpec('L1:4K:64x4,L2:4K+2M:1536x12,L1:any:48xfull');
    expect(c.arrays).toEqual([
      { name: 'L1 4K', level: 1, pageSizes: [4096], entries: 64, ways: 4 },
      { name: 'L2 4K+2M', level: 2, pageSizes: [4096, 2097152], entries: 1536, ways: 12 },
      { name: 'L1 any', level: 1, pageSizes: 'any', entries: 48, ways: 48 },
    ]);
  });
  it.each([
    ['L3:4K:64x4', /expected LEVEL:SIZES:ENTRIESxWAYS/],
    ['L1:3K:64x4', /page size '3K' is not a power of two/],
    ['L1:4K:64x5', /5 ways do not divide 64 entries/],
    ['L1:1K:64x4', /below 4K/],
    ['', /expected LEVEL/],
  ])('%s is refused', (spec, msg) => {
    expect(() => parseTlbSpec(spec)).toThrow(TlbSpecError);
    expect(() => parseTlbSpec(spec)).toThrow(msg);
  });
});
