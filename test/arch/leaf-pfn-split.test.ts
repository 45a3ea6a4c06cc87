/**
 * leafPfnLow / leafPfnHigh: leafPfn split into two 32-bit integers for the counting walk's integer
 * sums. The rule checked: leafPfn = leafPfnHigh · 2^(32 − PAGE_SHIFT) + leafPfnLow, with the low
 * part the output address bits [31:PAGE_SHIFT] and the high part bits [51:32], after the level's
 * alignment mask (pmd_pfn / pud_pfn) and, on x86-64, the L1TF inversion of non-present entries.
 * Hand-computed cases first, then every configuration against a BigInt decoding of random entries.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { createArchBits as bitsFor } from '../../src/arch/index';
import { GEOMETRIES, GEOMETRY_NAMES, type GeometryName } from '../../src/arch/geometry';

const lohi = (v: bigint): [number, number] => [Number(v & 0xffffffffn), Number(v >> 32n)];
const bits = (name: GeometryName) => bitsFor(GEOMETRIES[name]);

describe('leafPfnLow / leafPfnHigh: hand-computed splits', () => {
  test('x86-64 pte (SDM Vol.3A Table 4-19: address bits 51:12): 0x8000_0123_4567_8067 splits at bit 32', () => {
    const b = bits('x86_64-4level');
    const [lo, hi] = lohi(0x8000_0123_4567_8067n);
    expect(b.leafPfnHigh('pte', lo, hi)).toBe(0x123);
    expect(b.leafPfnLow('pte', lo, hi)).toBe(0x45678);
    expect(b.leafPfn('pte', lo, hi)).toBe(0x12345678);
  });
  test('x86-64 2 MiB pmd (Table 4-18: bits 51:21, PAT at bit 12 is not address): low part loses bits 20:12', () => {
    const b = bits('x86_64-4level');
    const [lo, hi] = lohi(0x0000_0001_4030_10e7n); // PSE|PAT(12)|A|D|U|RW|P, frame 0x1_4020_0000
    expect(b.leafPfnHigh('pmd', lo, hi)).toBe(0x1);
    expect(b.leafPfnLow('pmd', lo, hi)).toBe(0x40200);
  });
  test('x86-64 PROT_NONE pte (pgtable-invert.h): the inverted pfn is inverted back in both halves', () => {
    const b = bits('x86_64-4level');
    // pfn 0x12345678 stored inverted: bits 51:12 = ~pfn, flags PROTNONE|A (0x120), NX clear.
    const inv = ((~0x12345678n & 0xff_ffff_ffffn) << 12n) | 0x120n;
    const [lo, hi] = lohi(inv);
    expect(b.leafPfnHigh('pte', lo, hi)).toBe(0x123);
    expect(b.leafPfnLow('pte', lo, hi)).toBe(0x45678);
  });
  test('ARM64 64K LPA pte (Arm ARM D8.3: OA[51:48] in bits 15:12): high part takes them as address bits 51:48', () => {
    const b = bits('arm64-64k-52');
    const [lo, hi] = lohi(0x0000_1234_5678_f403n); // OA 0xf_1234_5678_0000
    expect(b.leafPfnHigh('pte', lo, hi)).toBe(0xf1234);
    expect(b.leafPfnLow('pte', lo, hi)).toBe(0x5678); // bits 31:16
    expect(b.leafPfn('pte', lo, hi)).toBe(0xf12345678);
  });
  test('ARM64 4K LPA2 pte (Arm ARM D8.3: OA[51:50] in bits 9:8): high part bits 19:18', () => {
    const b = bits('arm64-4k-52');
    const [lo, hi] = lohi(0x0003_0000_1234_5703n); // OA[51:50] = 0b11 (bits 9:8), OA[49:48] = 0b11
    expect(b.leafPfnHigh('pte', lo, hi)).toBe(0xf0000);
    expect(b.leafPfnLow('pte', lo, hi)).toBe(0x12345);
  });
  test('ARM64 16K pmd block (32 MiB): the low part is masked to bits 31:25', () => {
    const b = bits('arm64-16k-48');
    const [lo, hi] = lohi(0x0000_0002_4300_4701n); // block at 0x2_4200_0000 with bits 24:14 set in the entry
    expect(b.leafPfnHigh('pmd', lo, hi)).toBe(0x2);
    expect(b.leafPfnLow('pmd', lo, hi)).toBe(0x42000000 / 16384);
  });
});

/** The leaf's output address decoded from the 64-bit value, independently of the split. */
function decodedPfn(name: GeometryName, level: 'pte' | 'pmd' | 'pud', v: bigint): bigint {
  const g = GEOMETRIES[name];
  const size = BigInt(level === 'pte' ? g.PAGE_SIZE : level === 'pmd' ? g.PMD_SIZE : g.PUD_SIZE);
  let pa: bigint;
  if (g.arch === 'x86_64') {
    const inverted = (v & 1n) === 0n && v !== 0n;
    pa = (inverted ? ~v : v) & 0x000f_ffff_ffff_f000n;
  } else {
    // __pte_to_phys as Linux >= 6.14 builds it for every configuration: (v & PTE_ADDR_LOW, bits
    // 49:PAGE_SHIFT) | (v & PTE_ADDR_HIGH) << shift — 64K: bits 15:12 to 51:48; 4K/16K: bits 9:8 to
    // 51:50 with LPA2 only (without it those are SH bits, cleared first).
    pa = v & ((1n << 50n) - 1n) & ~(BigInt(g.PAGE_SIZE) - 1n);
    if (g.PAGE_SIZE === 65536) pa |= ((v >> 12n) & 0xfn) << 48n;
    else if (g.pa52 === 'lpa2') pa |= ((v >> 8n) & 3n) << 50n;
  }
  return (pa & ~(size - 1n)) / BigInt(g.PAGE_SIZE);
}

describe('leafPfn = leafPfnHigh · 2^(32 − PAGE_SHIFT) + leafPfnLow on every configuration', () => {
  for (const name of GEOMETRY_NAMES) {
    const g = GEOMETRIES[name];
    const levels = (['pte', 'pmd', ...(g.pudLeaf ? ['pud'] : [])] as const) as readonly ('pte' | 'pmd' | 'pud')[];
    test(`${name}: random entries at ${levels.join('/')} agree with a BigInt decoding`, () => {
      const b = bitsFor(g);
      const span = 2 ** (32 - g.PAGE_SHIFT);
      fc.assert(
        fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.constantFrom(...levels), (v, level) => {
          // ARM64 leaves are valid descriptors (bit 0) or present-invalid ones; any bits elsewhere.
          const [lo, hi] = lohi(v);
          const low = b.leafPfnLow(level, lo, hi);
          const high = b.leafPfnHigh(level, lo, hi);
          expect(Number.isInteger(low) && low >= 0 && low < span).toBe(true);
          expect(Number.isInteger(high) && high >= 0 && high < 2 ** 20).toBe(true);
          expect(high * span + low).toBe(b.leafPfn(level, lo, hi));
          expect(BigInt(b.leafPfn(level, lo, hi))).toBe(decodedPfn(name, level, v));
        }),
        { numRuns: 2000, seed: 0x5eed },
      );
    });
  }
});
