import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  GEOMETRIES,
  GEOMETRY_NAMES,
  geometry,
  levelShift,
  lowestAlias,
  physicalOf,
  tableEntries,
  type GeometryName,
  type LevelName,
} from '../../src/arch/geometry';

/**
 * Linux's values, computed by hand:
 *  - x86-64: arch/x86/include/asm/pgtable_64_types.h — PGDIR_SHIFT 39 (4-level) or 48 (LA57),
 *    P4D_SHIFT 39, PUD_SHIFT 30, PMD_SHIFT 21, 512 entries per table; with 4 levels the p4d is
 *    folded (PTRS_PER_P4D 1, P4D_SHIFT = PGDIR_SHIFT). Hardware levels: SDM Vol. 3A 4.5
 *    (PML5 = 5, PML4 = 4, PDPT = 3, PD = 2, PT = 1).
 *  - arm64: PGTABLE_LEVELS from arch/arm64/Kconfig; arch/arm64/include/asm/pgtable-hwdef.h
 *    ARM64_HW_PGTABLE_LEVEL_SHIFT(n) = (PAGE_SHIFT - 3) * (4 - n) + 3,
 *    PGDIR_SHIFT = ARM64_HW_PGTABLE_LEVEL_SHIFT(4 - PGTABLE_LEVELS),
 *    PTRS_PER_PGD = 1 << (VA_BITS - PGDIR_SHIFT), every other table PAGE_SIZE / 8 entries.
 *      4K:  shifts of lookup levels 3, 2, 1, 0, -1 = 12, 21, 30, 39, 48
 *      16K: 14, 25, 36, 47 (levels 3 … 0)
 *      64K: 16, 29, 42 (levels 3 … 1)
 *    Folded levels take their parent's shift (include/asm-generic/pgtable-nop4d.h P4D_SHIFT =
 *    PGDIR_SHIFT, -nopud.h PUD_SHIFT = P4D_SHIFT, -nopmd.h PMD_SHIFT = PUD_SHIFT) and
 *    PTRS_PER_* 1. The top table's lookup level is 4 - PGTABLE_LEVELS (Arm ARM D8.2).
 */
const TOP_DOWN: readonly LevelName[] = ['pgd', 'p4d', 'pud', 'pmd', 'pte'];

interface Row {
  PAGE_SHIFT: number;
  PGDIR_SHIFT: number;
  P4D_SHIFT: number;
  PUD_SHIFT: number;
  PMD_SHIFT: number;
  PTRS_PER_PGD: number;
  PTRS_PER_P4D: number;
  PTRS_PER_PUD: number;
  PTRS_PER_PMD: number;
  PTRS_PER_PTE: number;
  pgtableLevels: number;
  folded: LevelName[];
  /** Physical levels, top first, with their hardware level number. */
  hwLevel: Array<[LevelName, number]>;
  PAGE_SIZE: number;
  PMD_SIZE: number;
}

// prettier-ignore
const LINUX: Record<GeometryName, Row> = {
  'x86_64-4level': { PAGE_SHIFT: 12, PGDIR_SHIFT: 39, P4D_SHIFT: 39, PUD_SHIFT: 30, PMD_SHIFT: 21,
    PTRS_PER_PGD: 512, PTRS_PER_P4D: 1, PTRS_PER_PUD: 512, PTRS_PER_PMD: 512, PTRS_PER_PTE: 512,
    pgtableLevels: 4, folded: ['p4d'], hwLevel: [['pgd', 4], ['pud', 3], ['pmd', 2], ['pte', 1]],
    PAGE_SIZE: 0x1000, PMD_SIZE: 0x200000 },
  'x86_64-5level': { PAGE_SHIFT: 12, PGDIR_SHIFT: 48, P4D_SHIFT: 39, PUD_SHIFT: 30, PMD_SHIFT: 21,
    PTRS_PER_PGD: 512, PTRS_PER_P4D: 512, PTRS_PER_PUD: 512, PTRS_PER_PMD: 512, PTRS_PER_PTE: 512,
    pgtableLevels: 5, folded: [], hwLevel: [['pgd', 5], ['p4d', 4], ['pud', 3], ['pmd', 2], ['pte', 1]],
    PAGE_SIZE: 0x1000, PMD_SIZE: 0x200000 },
  'arm64-4k-39': { PAGE_SHIFT: 12, PGDIR_SHIFT: 30, P4D_SHIFT: 30, PUD_SHIFT: 30, PMD_SHIFT: 21,
    PTRS_PER_PGD: 512, PTRS_PER_P4D: 1, PTRS_PER_PUD: 1, PTRS_PER_PMD: 512, PTRS_PER_PTE: 512,
    pgtableLevels: 3, folded: ['p4d', 'pud'], hwLevel: [['pgd', 1], ['pmd', 2], ['pte', 3]],
    PAGE_SIZE: 0x1000, PMD_SIZE: 0x200000 },
  'arm64-4k-48': { PAGE_SHIFT: 12, PGDIR_SHIFT: 39, P4D_SHIFT: 39, PUD_SHIFT: 30, PMD_SHIFT: 21,
    PTRS_PER_PGD: 512, PTRS_PER_P4D: 1, PTRS_PER_PUD: 512, PTRS_PER_PMD: 512, PTRS_PER_PTE: 512,
    pgtableLevels: 4, folded: ['p4d'], hwLevel: [['pgd', 0], ['pud', 1], ['pmd', 2], ['pte', 3]],
    PAGE_SIZE: 0x1000, PMD_SIZE: 0x200000 },
  'arm64-4k-52': { PAGE_SHIFT: 12, PGDIR_SHIFT: 48, P4D_SHIFT: 39, PUD_SHIFT: 30, PMD_SHIFT: 21,
    PTRS_PER_PGD: 16, PTRS_PER_P4D: 512, PTRS_PER_PUD: 512, PTRS_PER_PMD: 512, PTRS_PER_PTE: 512,
    pgtableLevels: 5, folded: [], hwLevel: [['pgd', -1], ['p4d', 0], ['pud', 1], ['pmd', 2], ['pte', 3]],
    PAGE_SIZE: 0x1000, PMD_SIZE: 0x200000 },
  'arm64-16k-36': { PAGE_SHIFT: 14, PGDIR_SHIFT: 25, P4D_SHIFT: 25, PUD_SHIFT: 25, PMD_SHIFT: 25,
    PTRS_PER_PGD: 2048, PTRS_PER_P4D: 1, PTRS_PER_PUD: 1, PTRS_PER_PMD: 1, PTRS_PER_PTE: 2048,
    pgtableLevels: 2, folded: ['p4d', 'pud', 'pmd'], hwLevel: [['pgd', 2], ['pte', 3]],
    PAGE_SIZE: 0x4000, PMD_SIZE: 0x2000000 },
  'arm64-16k-47': { PAGE_SHIFT: 14, PGDIR_SHIFT: 36, P4D_SHIFT: 36, PUD_SHIFT: 36, PMD_SHIFT: 25,
    PTRS_PER_PGD: 2048, PTRS_PER_P4D: 1, PTRS_PER_PUD: 1, PTRS_PER_PMD: 2048, PTRS_PER_PTE: 2048,
    pgtableLevels: 3, folded: ['p4d', 'pud'], hwLevel: [['pgd', 1], ['pmd', 2], ['pte', 3]],
    PAGE_SIZE: 0x4000, PMD_SIZE: 0x2000000 },
  'arm64-16k-48': { PAGE_SHIFT: 14, PGDIR_SHIFT: 47, P4D_SHIFT: 47, PUD_SHIFT: 36, PMD_SHIFT: 25,
    PTRS_PER_PGD: 2, PTRS_PER_P4D: 1, PTRS_PER_PUD: 2048, PTRS_PER_PMD: 2048, PTRS_PER_PTE: 2048,
    pgtableLevels: 4, folded: ['p4d'], hwLevel: [['pgd', 0], ['pud', 1], ['pmd', 2], ['pte', 3]],
    PAGE_SIZE: 0x4000, PMD_SIZE: 0x2000000 },
  'arm64-16k-52': { PAGE_SHIFT: 14, PGDIR_SHIFT: 47, P4D_SHIFT: 47, PUD_SHIFT: 36, PMD_SHIFT: 25,
    PTRS_PER_PGD: 32, PTRS_PER_P4D: 1, PTRS_PER_PUD: 2048, PTRS_PER_PMD: 2048, PTRS_PER_PTE: 2048,
    pgtableLevels: 4, folded: ['p4d'], hwLevel: [['pgd', 0], ['pud', 1], ['pmd', 2], ['pte', 3]],
    PAGE_SIZE: 0x4000, PMD_SIZE: 0x2000000 },
  'arm64-64k-42': { PAGE_SHIFT: 16, PGDIR_SHIFT: 29, P4D_SHIFT: 29, PUD_SHIFT: 29, PMD_SHIFT: 29,
    PTRS_PER_PGD: 8192, PTRS_PER_P4D: 1, PTRS_PER_PUD: 1, PTRS_PER_PMD: 1, PTRS_PER_PTE: 8192,
    pgtableLevels: 2, folded: ['p4d', 'pud', 'pmd'], hwLevel: [['pgd', 2], ['pte', 3]],
    PAGE_SIZE: 0x10000, PMD_SIZE: 0x20000000 },
  'arm64-64k-48': { PAGE_SHIFT: 16, PGDIR_SHIFT: 42, P4D_SHIFT: 42, PUD_SHIFT: 42, PMD_SHIFT: 29,
    PTRS_PER_PGD: 64, PTRS_PER_P4D: 1, PTRS_PER_PUD: 1, PTRS_PER_PMD: 8192, PTRS_PER_PTE: 8192,
    pgtableLevels: 3, folded: ['p4d', 'pud'], hwLevel: [['pgd', 1], ['pmd', 2], ['pte', 3]],
    PAGE_SIZE: 0x10000, PMD_SIZE: 0x20000000 },
  'arm64-64k-52': { PAGE_SHIFT: 16, PGDIR_SHIFT: 42, P4D_SHIFT: 42, PUD_SHIFT: 42, PMD_SHIFT: 29,
    PTRS_PER_PGD: 1024, PTRS_PER_P4D: 1, PTRS_PER_PUD: 1, PTRS_PER_PMD: 8192, PTRS_PER_PTE: 8192,
    pgtableLevels: 3, folded: ['p4d', 'pud'], hwLevel: [['pgd', 1], ['pmd', 2], ['pte', 3]],
    PAGE_SIZE: 0x10000, PMD_SIZE: 0x20000000 },
};

describe('geometry: every configuration against Linux (pgtable_64_types.h, arm64 Kconfig + pgtable-hwdef.h)', () => {
  it('GEOMETRIES holds exactly the twelve configurations of the table', () => {
    expect([...GEOMETRY_NAMES].sort()).toEqual(Object.keys(LINUX).sort());
  });

  for (const name of Object.keys(LINUX) as GeometryName[]) {
    const want = LINUX[name];
    describe(name, () => {
      const g = GEOMETRIES[name];

      it('PAGE_SHIFT, PGDIR/P4D/PUD/PMD_SHIFT', () => {
        expect({
          PAGE_SHIFT: g.PAGE_SHIFT,
          PGDIR_SHIFT: g.PGDIR_SHIFT,
          P4D_SHIFT: g.P4D_SHIFT,
          PUD_SHIFT: g.PUD_SHIFT,
          PMD_SHIFT: g.PMD_SHIFT,
        }).toEqual({
          PAGE_SHIFT: want.PAGE_SHIFT,
          PGDIR_SHIFT: want.PGDIR_SHIFT,
          P4D_SHIFT: want.P4D_SHIFT,
          PUD_SHIFT: want.PUD_SHIFT,
          PMD_SHIFT: want.PMD_SHIFT,
        });
      });

      it('PTRS_PER_PGD/P4D/PUD/PMD/PTE', () => {
        expect([g.PTRS_PER_PGD, g.PTRS_PER_P4D, g.PTRS_PER_PUD, g.PTRS_PER_PMD, g.PTRS_PER_PTE]).toEqual([
          want.PTRS_PER_PGD,
          want.PTRS_PER_P4D,
          want.PTRS_PER_PUD,
          want.PTRS_PER_PMD,
          want.PTRS_PER_PTE,
        ]);
      });

      it('CONFIG_PGTABLE_LEVELS and the folded levels', () => {
        expect(g.pgtableLevels).toBe(want.pgtableLevels);
        expect([...g.folded]).toEqual(want.folded);
        expect(g.physicalLevels.length).toBe(want.pgtableLevels);
      });

      it('physical levels, top first, and the hardware level of each', () => {
        expect([...g.physicalLevels]).toEqual(want.hwLevel.map(([l]) => l));
        expect(g.hwLevel).toEqual(Object.fromEntries(want.hwLevel));
      });

      it('PAGE_SIZE and PMD_SIZE', () => {
        expect(g.PAGE_SIZE).toBe(want.PAGE_SIZE);
        expect(g.PMD_SIZE).toBe(want.PMD_SIZE);
      });

      it('levelShift / tableEntries / physicalOf / lowestAlias agree with the table', () => {
        const shifts: Record<LevelName, number> = {
          pgd: want.PGDIR_SHIFT,
          p4d: want.P4D_SHIFT,
          pud: want.PUD_SHIFT,
          pmd: want.PMD_SHIFT,
          pte: want.PAGE_SHIFT,
        };
        for (const l of TOP_DOWN) expect(levelShift(g, l)).toBe(shifts[l]);
        const physical = want.hwLevel.map(([l]) => l);
        for (const p of physical) {
          const entries = { pgd: want.PTRS_PER_PGD, p4d: want.PTRS_PER_P4D, pud: want.PTRS_PER_PUD, pmd: want.PTRS_PER_PMD, pte: want.PTRS_PER_PTE }[p];
          expect(tableEntries(g, p)).toBe(entries);
        }
        // A folded level belongs to the nearest physical level above it.
        for (const l of TOP_DOWN) {
          const above = physical.filter((p) => TOP_DOWN.indexOf(p) <= TOP_DOWN.indexOf(l)).pop();
          expect(physicalOf(g, l)).toBe(above);
        }
      });
    });
  }

  it('examples from the brief, spelled out: 64K/48, 4K/52 LPA2, 16K/36, 16K/48', () => {
    const a = geometry('arm64-64k-48');
    expect([a.pgtableLevels, a.PGDIR_SHIFT, a.PTRS_PER_PGD, a.PMD_SHIFT, a.PTRS_PER_PMD, a.PTRS_PER_PTE]).toEqual([3, 42, 64, 29, 8192, 8192]);
    const b = geometry('arm64-4k-52');
    expect([b.pgtableLevels, b.PGDIR_SHIFT, b.PTRS_PER_PGD, b.pa52]).toEqual([5, 48, 16, 'lpa2']);
    const c = geometry('arm64-16k-36');
    expect([c.pgtableLevels, c.PGDIR_SHIFT, c.PTRS_PER_PGD]).toEqual([2, 25, 2048]);
    const d = geometry('arm64-16k-48');
    expect([d.pgtableLevels, d.PGDIR_SHIFT, d.PTRS_PER_PGD]).toEqual([4, 47, 2]);
    expect(lowestAlias(geometry('arm64-64k-42'), 'pgd')).toBe('pmd');
  });

  it('an unknown geometry name is an error listing the valid ones', () => {
    expect(() => geometry('arm64-8k-48')).toThrow(/unknown geometry 'arm64-8k-48'.*x86_64-4level/);
  });
});

/** geometry_params copied from shared/conformance/pagewalk/scenarios/hole_depths_*.json. */
interface ConformanceParams {
  source: string;
  arch: string;
  va_bits: number;
  page_shift: number;
  shift: Record<LevelName, number>;
  ptrs_per: Record<LevelName, number>;
  folded: LevelName[];
  physical_levels: LevelName[];
  aliases: Record<string, LevelName[]>;
  pud_leaf: boolean;
  hugetlb_sizes: string[];
  task_size: string;
  root_halves: string[];
}

const fixture = JSON.parse(
  readFileSync(new URL('./fixtures/linux-geometry-params.json', import.meta.url), 'utf8'),
) as Record<string, ConformanceParams>;

describe('geometry: the 7 geometries of the page-walk conformance corpus (geometry_params)', () => {
  it('the fixture holds the 7 corpus geometries', () => {
    expect(Object.keys(fixture).sort()).toEqual(
      ['arm64-16k-47', 'arm64-4k-39', 'arm64-4k-48', 'arm64-4k-52', 'arm64-64k-42', 'x86_64-4level', 'x86_64-5level'],
    );
  });

  for (const [name, p] of Object.entries(fixture)) {
    describe(`${name} (${p.source})`, () => {
      const g = geometry(name);

      it('arch, va_bits, page_shift, shift and ptrs_per of every level', () => {
        expect(g.arch).toBe(p.arch);
        expect(g.vaBits).toBe(p.va_bits);
        expect(g.PAGE_SHIFT).toBe(p.page_shift);
        expect({ pgd: g.PGDIR_SHIFT, p4d: g.P4D_SHIFT, pud: g.PUD_SHIFT, pmd: g.PMD_SHIFT, pte: g.PAGE_SHIFT }).toEqual(p.shift);
        expect({ pgd: g.PTRS_PER_PGD, p4d: g.PTRS_PER_P4D, pud: g.PTRS_PER_PUD, pmd: g.PTRS_PER_PMD, pte: g.PTRS_PER_PTE }).toEqual(
          p.ptrs_per,
        );
      });

      it('folded, physical_levels, aliases', () => {
        expect([...g.folded]).toEqual(p.folded);
        expect([...g.physicalLevels]).toEqual(p.physical_levels);
        expect(g.aliases).toEqual(p.aliases);
      });

      it('pud_leaf, hugetlb_sizes, task_size, root_halves', () => {
        expect(g.pudLeaf).toBe(p.pud_leaf);
        expect([...g.hugetlbSizes]).toEqual(p.hugetlb_sizes.map((h) => Number(BigInt(h))));
        expect(g.TASK_SIZE).toBe(Number(BigInt(p.task_size)));
        expect(g.rootHalves).toBe(p.root_halves.length === 1 && p.root_halves[0] === 'both' ? 'both' : 'split');
        if (g.rootHalves === 'split') expect(p.root_halves).toEqual(['user', 'kernel']);
      });
    });
  }
});
