/**
 * Page-table geometry of every configuration mmulab models, with Linux's names.
 *
 * Sources: arch/x86/include/asm/pgtable_64_types.h (4-level and LA57), arch/arm64/Kconfig
 * (PGTABLE_LEVELS per granule and VA_BITS) and arch/arm64/include/asm/pgtable-hwdef.h
 * (ARM64_HW_PGTABLE_LEVEL_SHIFT, PTRS_PER_*). Folding follows include/asm-generic/pgtable-nop4d.h,
 * -nopud.h and -nopmd.h: a folded level has PTRS_PER_* = 1 and its parent's shift.
 */

export type ArchName = 'x86_64' | 'arm64';
export type LevelName = 'pgd' | 'p4d' | 'pud' | 'pmd' | 'pte';
export const LEVELS: readonly LevelName[] = ['pgd', 'p4d', 'pud', 'pmd', 'pte'];

export type Granule = 4096 | 16384 | 65536;

export type GeometryName =
  | 'x86_64-4level'
  | 'x86_64-5level'
  | 'arm64-4k-39'
  | 'arm64-4k-48'
  | 'arm64-4k-52'
  | 'arm64-16k-36'
  | 'arm64-16k-47'
  | 'arm64-16k-48'
  | 'arm64-16k-52'
  | 'arm64-64k-42'
  | 'arm64-64k-48'
  | 'arm64-64k-52';

export interface Geometry {
  readonly name: GeometryName;
  readonly arch: ArchName;
  /** CONFIG_PGTABLE_LEVELS (x86-64: 4, or 5 with LA57). */
  readonly pgtableLevels: number;
  /** Virtual address bits translated by one root: 48/57 on x86-64, VA_BITS on ARM64. */
  readonly vaBits: number;
  readonly PAGE_SHIFT: number;
  readonly PAGE_SIZE: Granule;
  readonly PGDIR_SHIFT: number;
  readonly P4D_SHIFT: number;
  readonly PUD_SHIFT: number;
  readonly PMD_SHIFT: number;
  readonly PTRS_PER_PGD: number;
  readonly PTRS_PER_P4D: number;
  readonly PTRS_PER_PUD: number;
  readonly PTRS_PER_PMD: number;
  readonly PTRS_PER_PTE: number;
  readonly PGDIR_SIZE: number;
  readonly P4D_SIZE: number;
  readonly PUD_SIZE: number;
  readonly PMD_SIZE: number;
  /** Logical levels folded into their parent (PTRS_PER_* = 1). */
  readonly folded: readonly LevelName[];
  /** Levels that own a table in memory, top first; each is named by its highest alias. */
  readonly physicalLevels: readonly LevelName[];
  /** For each physical level, the logical levels that share its entries (itself first). */
  readonly aliases: Readonly<Partial<Record<LevelName, readonly LevelName[]>>>;
  /**
   * For each physical level, the hardware's own number of the table: x86-64 paging-structure
   * level (5 PML5, 4 PML4, 3 PDPT, 2 PD, 1 PT); ARM64 lookup level (-1 … 3).
   */
  readonly hwLevel: Readonly<Partial<Record<LevelName, number>>>;
  /** Whether Linux makes PUD leaves here (x86-64 1 GiB pages; ARM64 4K level-1 blocks). */
  readonly pudLeaf: boolean;
  /** huge page sizes hugetlbfs offers (PMD_SIZE everywhere, PUD_SIZE where PUD leaves exist). */
  readonly hugetlbSizes: readonly number[];
  /** TASK_SIZE: the top of the user range. */
  readonly TASK_SIZE: number;
  /** ARM64 52-bit configurations: LPA (64K) or LPA2 (4K/16K, TCR_EL1.DS = 1). */
  readonly pa52: 'none' | 'lpa' | 'lpa2';
  /** x86-64: one root holds both canonical halves; ARM64: TTBR0 (user) and TTBR1 (kernel) roots. */
  readonly rootHalves: 'both' | 'split';
}

const ENTRY_SHIFT = 3; // 8-byte descriptors: a table of one granule holds granule/8 entries

function pow2(n: number): number {
  return 2 ** n;
}

/** ARM64_HW_PGTABLE_LEVEL_SHIFT(n) = (PAGE_SHIFT - 3) * (4 - n) + 3 */
function armLevelShift(pageShift: number, n: number): number {
  return (pageShift - ENTRY_SHIFT) * (4 - n) + ENTRY_SHIFT;
}

function finish(
  base: Omit<Geometry, 'PGDIR_SIZE' | 'P4D_SIZE' | 'PUD_SIZE' | 'PMD_SIZE' | 'physicalLevels' | 'aliases' | 'hwLevel'>,
  hwTop: number,
  hwStep: number,
): Geometry {
  const folded = new Set(base.folded);
  const physicalLevels: LevelName[] = [];
  const aliases: Partial<Record<LevelName, LevelName[]>> = {};
  let current: LevelName | undefined;
  for (const level of LEVELS) {
    if (!folded.has(level)) {
      current = level;
      physicalLevels.push(level);
      aliases[level] = [level];
    } else {
      aliases[current!]!.push(level);
    }
  }
  const hwLevel: Partial<Record<LevelName, number>> = {};
  physicalLevels.forEach((level, i) => {
    hwLevel[level] = hwTop + i * hwStep;
  });
  return Object.freeze({
    ...base,
    PGDIR_SIZE: pow2(base.PGDIR_SHIFT),
    P4D_SIZE: pow2(base.P4D_SHIFT),
    PUD_SIZE: pow2(base.PUD_SHIFT),
    PMD_SIZE: pow2(base.PMD_SHIFT),
    physicalLevels,
    aliases,
    hwLevel,
  });
}

function x86(levels: 4 | 5): Geometry {
  const la57 = levels === 5;
  return finish(
    {
      name: la57 ? 'x86_64-5level' : 'x86_64-4level',
      arch: 'x86_64',
      pgtableLevels: levels,
      vaBits: la57 ? 57 : 48,
      PAGE_SHIFT: 12,
      PAGE_SIZE: 4096,
      PGDIR_SHIFT: la57 ? 48 : 39,
      P4D_SHIFT: 39,
      PUD_SHIFT: 30,
      PMD_SHIFT: 21,
      PTRS_PER_PGD: 512,
      PTRS_PER_P4D: la57 ? 512 : 1,
      PTRS_PER_PUD: 512,
      PTRS_PER_PMD: 512,
      PTRS_PER_PTE: 512,
      folded: la57 ? [] : ['p4d'],
      pudLeaf: true,
      hugetlbSizes: [pow2(21), pow2(30)],
      // TASK_SIZE_MAX = (1 << 47 or 56) - PAGE_SIZE: the guard page below the canonical hole.
      TASK_SIZE: pow2(la57 ? 56 : 47) - 4096,
      pa52: 'none',
      rootHalves: 'both',
    },
    levels,
    -1,
  );
}

const ARM64_LEVELS: Record<string, number> = {
  // arch/arm64/Kconfig, PGTABLE_LEVELS
  '4k-39': 3,
  '4k-48': 4,
  '4k-52': 5,
  '16k-36': 2,
  '16k-47': 3,
  '16k-48': 4,
  '16k-52': 4,
  '64k-42': 2,
  '64k-48': 3,
  '64k-52': 3,
};

function arm64(granuleK: 4 | 16 | 64, vaBits: number): Geometry {
  const key = `${granuleK}k-${vaBits}`;
  const levels = ARM64_LEVELS[key];
  if (levels === undefined) throw new RangeError(`no ARM64 configuration ${key}`);
  const pageShift = granuleK === 4 ? 12 : granuleK === 16 ? 14 : 16;
  const perTable = pow2(pageShift - ENTRY_SHIFT);
  // Levels present, from the bottom: pte is lookup level 3, pmd 2, pud 1, p4d 0.
  const pmdShift = levels > 2 ? armLevelShift(pageShift, 2) : 0;
  const pudShift = levels > 3 ? armLevelShift(pageShift, 1) : 0;
  const p4dShift = levels > 4 ? armLevelShift(pageShift, 0) : 0;
  const pgdShift = armLevelShift(pageShift, 4 - levels);
  const folded: LevelName[] = [];
  if (levels < 5) folded.push('p4d');
  if (levels < 4) folded.push('pud');
  if (levels < 3) folded.push('pmd');
  // A folded level takes its parent's shift (PUD_SHIFT = PGDIR_SHIFT under pgtable-nopud.h).
  const P4D_SHIFT = levels > 4 ? p4dShift : pgdShift;
  const PUD_SHIFT = levels > 3 ? pudShift : P4D_SHIFT;
  const PMD_SHIFT = levels > 2 ? pmdShift : PUD_SHIFT;
  const pudLeaf = granuleK === 4 && levels > 2; // pud_sect_supported(): 4K granule only
  const pmdSize = pow2(PMD_SHIFT);
  const pa52 = vaBits === 52 ? (granuleK === 64 ? 'lpa' : 'lpa2') : 'none';
  return finish(
    {
      name: `arm64-${key}` as GeometryName,
      arch: 'arm64',
      pgtableLevels: levels,
      vaBits,
      PAGE_SHIFT: pageShift,
      PAGE_SIZE: (granuleK * 1024) as Granule,
      PGDIR_SHIFT: pgdShift,
      P4D_SHIFT,
      PUD_SHIFT,
      PMD_SHIFT,
      // PTRS_PER_PGD = 1 << (VA_BITS - PGDIR_SHIFT): the top table may be smaller than a granule.
      PTRS_PER_PGD: pow2(vaBits - pgdShift),
      PTRS_PER_P4D: levels > 4 ? perTable : 1,
      PTRS_PER_PUD: levels > 3 ? perTable : 1,
      PTRS_PER_PMD: levels > 2 ? perTable : 1,
      PTRS_PER_PTE: perTable,
      folded,
      pudLeaf,
      hugetlbSizes: pudLeaf ? [pmdSize, pow2(PUD_SHIFT)] : [pmdSize],
      // TASK_SIZE_64 = 1 << VA_BITS (vabits_actual; the emulated CPU supports the full VA_BITS).
      TASK_SIZE: pow2(vaBits),
      pa52,
      rootHalves: 'split',
    },
    4 - levels,
    1,
  );
}

export const GEOMETRIES: Readonly<Record<GeometryName, Geometry>> = Object.freeze({
  'x86_64-4level': x86(4),
  'x86_64-5level': x86(5),
  'arm64-4k-39': arm64(4, 39),
  'arm64-4k-48': arm64(4, 48),
  'arm64-4k-52': arm64(4, 52),
  'arm64-16k-36': arm64(16, 36),
  'arm64-16k-47': arm64(16, 47),
  'arm64-16k-48': arm64(16, 48),
  'arm64-16k-52': arm64(16, 52),
  'arm64-64k-42': arm64(64, 42),
  'arm64-64k-48': arm64(64, 48),
  'arm64-64k-52': arm64(64, 52),
});

export const GEOMETRY_NAMES = Object.keys(GEOMETRIES) as GeometryName[];

export function geometry(name: string): Geometry {
  const g = (GEOMETRIES as Record<string, Geometry>)[name];
  if (!g) throw new RangeError(`unknown geometry '${name}': expected one of ${GEOMETRY_NAMES.join(', ')}`);
  return g;
}

/** The logical level whose tests are the real ones for a physical level: its lowest alias. */
export function lowestAlias(g: Geometry, physical: LevelName): LevelName {
  const a = g.aliases[physical]!;
  return a[a.length - 1]!;
}

/** The physical level whose entries a logical level shares. */
export function physicalOf(g: Geometry, level: LevelName): LevelName {
  for (const p of g.physicalLevels) if (g.aliases[p]!.includes(level)) return p;
  throw new RangeError(`level ${level} not in ${g.name}`);
}

/** Shift of a logical level (the span one of its entries maps is 2^shift). */
export function levelShift(g: Geometry, level: LevelName): number {
  switch (level) {
    case 'pgd':
      return g.PGDIR_SHIFT;
    case 'p4d':
      return g.P4D_SHIFT;
    case 'pud':
      return g.PUD_SHIFT;
    case 'pmd':
      return g.PMD_SHIFT;
    case 'pte':
      return g.PAGE_SHIFT;
  }
}

/** Number of entries in one table of a physical level. */
export function tableEntries(g: Geometry, physical: LevelName): number {
  switch (physical) {
    case 'pgd':
      return g.PTRS_PER_PGD;
    case 'p4d':
      return g.PTRS_PER_P4D;
    case 'pud':
      return g.PTRS_PER_PUD;
    case 'pmd':
      return g.PTRS_PER_PMD;
    case 'pte':
      return g.PTRS_PER_PTE;
  }
}
