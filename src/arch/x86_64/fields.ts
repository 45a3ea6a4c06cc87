/**
 * x86-64 paging-structure entry formats, as Intel SDM Vol. 3A §4.5 lays them out for 4-level and
 * 5-level paging:
 *
 *   Table 4-14  PML5E that references a PML4 table
 *   Table 4-15  PML4E that references a page-directory-pointer table
 *   Table 4-16  PDPTE that maps a 1-GByte page
 *   Table 4-17  PDPTE that references a page directory
 *   Table 4-18  PDE that maps a 2-MByte page
 *   Table 4-19  PDE that references a page table
 *   Table 4-20  PTE that maps a 4-KByte page
 *
 * plus the not-present entry of Figure 4-11 (P = 0: bits 63:1 ignored).
 *
 * This is the tool side of the arch module (decode/encode with the manual's field names); it speaks
 * bigint and may allocate. The hot-path predicates live in linux.ts.
 *
 * Reserved bits (SDM §4.5.4, and the "Reserved (must be 0)" rows of the tables): with P = 1,
 *  - bits 51:MAXPHYADDR of the address field;
 *  - PS (bit 7) of a PML5E or PML4E;
 *  - bits 29:13 of a PDPTE with PS = 1, bits 20:13 of a PDE with PS = 1;
 *  - XD (bit 63) when IA32_EFER.NXE = 0.
 * A translation that meets one takes a page fault with the RSVD error-code bit set (§4.7).
 */
import type { DecodedDescriptor, DescriptorField, DescriptorKind } from '../types';

/** The hardware configuration the formats depend on. */
export interface X86PagingConfig {
  /** CPUID.80000008H:EAX[7:0]; 36..52. */
  readonly maxPhyAddr: number;
  /** IA32_EFER.NXE: when 0, XD is a reserved bit. */
  readonly nxe: boolean;
  /** CR4.LA57: 5-level paging, so hardware level 5 (the PML5 table) exists. */
  readonly la57: boolean;
}

export const DEFAULT_X86_CONFIG: X86PagingConfig = Object.freeze({ maxPhyAddr: 52, nxe: true, la57: false });

export type X86FormatId = 'NOT_PRESENT' | 'PML5E' | 'PML4E' | 'PDPTE_1G' | 'PDPTE' | 'PDE_2M' | 'PDE' | 'PTE';

/** One row of a format table. */
export interface FieldSpec {
  readonly name: string;
  readonly msb: number;
  readonly lsb: number;
  readonly role?: 'ignored' | 'reserved';
  /** The address field: the physical address is the field value << addressShift (= lsb). */
  readonly isAddress?: boolean;
  /** Meaning of a value, given the whole entry (PAT needs PCD and PWT). */
  readonly meaning?: (field: bigint, entry: bigint) => string | undefined;
}

export interface X86Format {
  readonly id: X86FormatId;
  /** The SDM table, e.g. "Table 4-18". */
  readonly table: string;
  /** The SDM table's caption. */
  readonly title: string;
  /** What a well-formed entry of this format is. */
  readonly kind: DescriptorKind;
  /** Low to high; every bit 63:0 in exactly one field. */
  readonly fields: readonly FieldSpec[];
  /** Granularity of the address field (12 for tables and 4K pages, 21 for 2M, 30 for 1G). */
  readonly addressShift?: number;
}

// ---- field rows ---------------------------------------------------------------------------------

const flag = (name: string, bit: number, one: string, zero: string): FieldSpec => ({
  name,
  msb: bit,
  lsb: bit,
  meaning: (v) => (v ? one : zero),
});

const ignored = (msb: number, lsb: number): FieldSpec => ({ name: `ignored${lsb}`, msb, lsb, role: 'ignored' });

/** Linux's PAT MSR programming (arch/x86/mm/pat/memtype.c, full PAT support): entry 0..7. */
const LINUX_PAT = ['WB', 'WC', 'UC-', 'UC', 'WB', 'WP', 'UC-', 'WT'] as const;

/** PAT bit of a leaf at bit `patBit` (7 in a PTE, 12 in a 1G/2M leaf): PAT:PCD:PWT index the IA32_PAT MSR (SDM §11.12.3). */
function patField(patBit: number): FieldSpec {
  return {
    name: 'pat',
    msb: patBit,
    lsb: patBit,
    meaning: (v, e) => {
      const index = Number(v) * 4 + Number((e >> 4n) & 1n) * 2 + Number((e >> 3n) & 1n);
      return `PAT entry ${index} (PAT:PCD:PWT = ${index.toString(2).padStart(3, '0')}; ${LINUX_PAT[index]} as Linux programs IA32_PAT)`;
    },
  };
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

function addressField(msb: number, lsb: number, what: string): FieldSpec {
  return { name: 'addr', msb, lsb, isAddress: true, meaning: (v) => `${what} at ${hex(v << BigInt(lsb))}` };
}

/** Bits 6:0 common to every present entry (6 is D in leaves, ignored in tables). */
function lowFlags(leaf: boolean): FieldSpec[] {
  return [
    flag('p', 0, 'present', 'not present'),
    flag('rw', 1, 'writable', 'read-only'),
    flag('us', 2, 'user-mode accesses allowed', 'supervisor-mode only'),
    flag('pwt', 3, 'page-level write-through', 'page-level write-back'),
    flag('pcd', 4, 'page-level cache disable', 'page-level cacheable'),
    flag('a', 5, 'accessed', 'not accessed'),
    leaf ? flag('d', 6, 'dirty', 'clean') : ignored(6, 6),
  ];
}

const xdField = flag('xd', 63, 'execute-disable', 'instruction fetches allowed');
const pkeyField: FieldSpec = {
  name: 'pkey',
  msb: 62,
  lsb: 59,
  meaning: (v) => `protection key ${v} (if CR4.PKE or CR4.PKS)`,
};
const globalField = flag('g', 8, 'global (if CR4.PGE = 1)', 'not global');

/** Bits 51:M, reserved when MAXPHYADDR < 52; absent when M = 52. */
function highReserved(m: number): FieldSpec[] {
  return m < 52 ? [{ name: 'reserved', msb: 51, lsb: m, role: 'reserved' }] : [];
}

function tableFormat(id: X86FormatId, table: string, title: string, m: number, bit7: FieldSpec, next: string): X86Format {
  return {
    id,
    table,
    title,
    kind: 'table',
    addressShift: 12,
    fields: [
      ...lowFlags(false),
      bit7,
      // 10:8 ignored; bit 11 is HLAT's restart flag only with HLAT paging, ignored otherwise.
      ignored(11, 8),
      addressField(m - 1, 12, next),
      ...highReserved(m),
      ignored(62, 52),
      xdField,
    ],
  };
}

function largeLeafFormat(id: X86FormatId, table: string, title: string, m: number, shift: 21 | 30, what: string): X86Format {
  return {
    id,
    table,
    title,
    kind: 'block',
    addressShift: shift,
    fields: [
      ...lowFlags(true),
      flag('ps', 7, `maps a ${what} page`, 'references a table'),
      globalField,
      ignored(11, 9),
      patField(12),
      { name: 'reserved13', msb: shift - 1, lsb: 13, role: 'reserved' },
      addressField(m - 1, shift, `${what} page frame`),
      ...highReserved(m),
      ignored(58, 52),
      pkeyField,
      xdField,
    ],
  };
}

function buildFormats(m: number): Readonly<Record<X86FormatId, X86Format>> {
  const psReserved = (entry: string): FieldSpec => ({
    name: 'ps',
    msb: 7,
    lsb: 7,
    role: 'reserved',
    meaning: (v) => (v ? `reserved: PS must be 0 in a ${entry}` : undefined),
  });
  const psTable = (next: string): FieldSpec => flag('ps', 7, 'maps a page', `references a ${next}`);
  return Object.freeze({
    NOT_PRESENT: {
      id: 'NOT_PRESENT',
      table: 'Figure 4-11',
      title: 'Format of a paging-structure entry that is not present (P = 0)',
      kind: 'invalid',
      fields: [flag('p', 0, 'present', 'not present'), ignored(63, 1)],
    },
    PML5E: tableFormat('PML5E', 'Table 4-14', 'Format of a PML5 Entry (PML5E) that References a PML4 Table', m, psReserved('PML5E'), 'PML4 table'),
    PML4E: tableFormat(
      'PML4E',
      'Table 4-15',
      'Format of a PML4 Entry (PML4E) that References a Page-Directory-Pointer Table',
      m,
      psReserved('PML4E'),
      'page-directory-pointer table',
    ),
    PDPTE_1G: largeLeafFormat('PDPTE_1G', 'Table 4-16', 'Format of a Page-Directory-Pointer-Table Entry (PDPTE) that Maps a 1-GByte Page', m, 30, '1-GByte'),
    PDPTE: tableFormat(
      'PDPTE',
      'Table 4-17',
      'Format of a Page-Directory-Pointer-Table Entry (PDPTE) that References a Page Directory',
      m,
      psTable('page directory'),
      'page directory',
    ),
    PDE_2M: largeLeafFormat('PDE_2M', 'Table 4-18', 'Format of a Page-Directory Entry that Maps a 2-MByte Page', m, 21, '2-MByte'),
    PDE: tableFormat('PDE', 'Table 4-19', 'Format of a Page-Directory Entry that References a Page Table', m, psTable('page table'), 'page table'),
    PTE: {
      id: 'PTE',
      table: 'Table 4-20',
      title: 'Format of a Page-Table Entry that Maps a 4-KByte Page',
      kind: 'page',
      addressShift: 12,
      fields: [
        ...lowFlags(true),
        patField(7),
        globalField,
        ignored(11, 9),
        addressField(m - 1, 12, '4-KByte page frame'),
        ...highReserved(m),
        ignored(58, 52),
        pkeyField,
        xdField,
      ],
    },
  });
}

const formatCache = new Map<number, Readonly<Record<X86FormatId, X86Format>>>();

function checkMaxPhyAddr(m: number): void {
  // 64-bit mode: MAXPHYADDR is at least 36 and at most 52 (SDM §4.1.4).
  if (!Number.isInteger(m) || m < 36 || m > 52) {
    throw new RangeError(`MAXPHYADDR ${m} is out of range: expected an integer 36..52`);
  }
}

/** Every entry format for a MAXPHYADDR (the address field and the reserved bits depend on it). */
export function x86Formats(maxPhyAddr: number): Readonly<Record<X86FormatId, X86Format>> {
  let f = formatCache.get(maxPhyAddr);
  if (!f) {
    checkMaxPhyAddr(maxPhyAddr);
    f = buildFormats(maxPhyAddr);
    formatCache.set(maxPhyAddr, f);
  }
  return f;
}

// ---- decode -------------------------------------------------------------------------------------

const U64 = (1n << 64n) - 1n;

function checkLevel(hwLevel: number, cfg: X86PagingConfig): void {
  const top = cfg.la57 ? 5 : 4;
  if (!Number.isInteger(hwLevel) || hwLevel < 1 || hwLevel > top) {
    throw new RangeError(
      `x86-64 paging-structure level ${hwLevel} does not exist with ${cfg.la57 ? '5' : '4'}-level paging: expected 1..${top}` +
        (hwLevel === 5 ? ' (the PML5 table needs CR4.LA57 = 1)' : ''),
    );
  }
}

function checkValue(value: bigint): void {
  if (typeof value !== 'bigint' || value < 0n || value > U64) {
    throw new RangeError(`descriptor ${String(value)} is not a 64-bit unsigned value`);
  }
}

const bitsOf = (value: bigint, msb: number, lsb: number): bigint =>
  (value >> BigInt(lsb)) & ((1n << BigInt(msb - lsb + 1)) - 1n);

/** The format the hardware applies to a present entry at a level: chosen by PS where PS selects. */
function presentFormat(formats: Readonly<Record<X86FormatId, X86Format>>, hwLevel: number, ps: boolean): X86Format {
  switch (hwLevel) {
    case 5:
      return formats.PML5E;
    case 4:
      return formats.PML4E;
    case 3:
      return ps ? formats.PDPTE_1G : formats.PDPTE;
    case 2:
      return ps ? formats.PDE_2M : formats.PDE;
    default:
      return formats.PTE;
  }
}

/** Why a present entry is reserved, per the SDM; empty when it is well formed. */
function reservedReasons(fmt: X86Format, value: bigint, cfg: X86PagingConfig): string[] {
  const reasons: string[] = [];
  for (const f of fmt.fields) {
    if (f.role !== 'reserved' || bitsOf(value, f.msb, f.lsb) === 0n) continue;
    if (f.name === 'ps') {
      reasons.push(`SDM ${fmt.table}: PS is reserved (must be 0) in a ${fmt.id}`);
    } else if (f.name === 'reserved') {
      reasons.push(
        `SDM §4.5.4 / ${fmt.table}: bits 51:${f.lsb} are reserved (must be 0) with MAXPHYADDR = ${cfg.maxPhyAddr}`,
      );
    } else {
      const what = fmt.id === 'PDPTE_1G' ? 'a PDPTE that maps a 1-GByte page' : 'a PDE that maps a 2-MByte page';
      reasons.push(`SDM ${fmt.table}: bits ${f.msb}:${f.lsb} of ${what} are reserved (must be 0)`);
    }
  }
  if (!cfg.nxe && value >> 63n) {
    reasons.push(`SDM §4.5.4 / ${fmt.table}: XD (bit 63) is reserved (must be 0) when IA32_EFER.NXE = 0`);
  }
  return reasons;
}

function decodeFields(fmt: X86Format, value: bigint, cfg: X86PagingConfig): DescriptorField[] {
  return fmt.fields.map((spec) => {
    const v = bitsOf(value, spec.msb, spec.lsb);
    const field: { -readonly [K in keyof DescriptorField]: DescriptorField[K] } = {
      name: spec.name,
      msb: spec.msb,
      lsb: spec.lsb,
      value: v,
    };
    if (spec.isAddress) field.address = v << BigInt(spec.lsb);
    let meaning = spec.meaning?.(v, value);
    if (spec.name === 'xd' && v && !cfg.nxe) meaning = 'reserved: IA32_EFER.NXE = 0';
    if (meaning !== undefined) field.meaning = meaning;
    if (spec.role) field.role = spec.role;
    return field;
  });
}

/** Decode a descriptor read from the paging structure at hwLevel (5 PML5 … 1 PT). */
export function decode(value: bigint, hwLevel: number, cfg: X86PagingConfig = DEFAULT_X86_CONFIG): DecodedDescriptor {
  checkValue(value);
  checkLevel(hwLevel, cfg);
  const formats = x86Formats(cfg.maxPhyAddr);
  if ((value & 1n) === 0n) {
    // SDM §4.5.4: an entry with P = 0 is not used; software may use bits 63:1 freely.
    return {
      kind: 'invalid',
      level: hwLevel,
      value,
      fields: decodeFields(formats.NOT_PRESENT, value, cfg),
      reason: 'P (bit 0) is 0: not present; bits 63:1 are ignored (SDM §4.5.4, Figure 4-11)',
    };
  }
  const fmt = presentFormat(formats, hwLevel, ((value >> 7n) & 1n) === 1n);
  const fields = decodeFields(fmt, value, cfg);
  const addr = fields.find((f) => f.name === 'addr');
  const reasons = reservedReasons(fmt, value, cfg);
  const out: { -readonly [K in keyof DecodedDescriptor]: DecodedDescriptor[K] } = {
    kind: reasons.length ? 'reserved' : fmt.kind,
    level: hwLevel,
    value,
    fields,
  };
  if (reasons.length) out.reason = reasons.join('; ');
  if (addr?.address !== undefined) out.address = addr.address;
  return out;
}

// ---- encode -------------------------------------------------------------------------------------

function toBig(name: string, v: bigint | number | boolean): bigint {
  if (typeof v === 'boolean') return v ? 1n : 0n;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`field ${name}: ${v} is not a non-negative integer`);
    return BigInt(v);
  }
  if (typeof v !== 'bigint' || v < 0n) throw new RangeError(`field ${name}: ${String(v)} is not a non-negative integer`);
  return v;
}

/** The format encode() writes: the kind names it, PS (for 'reserved') disambiguates. */
function encodeFormat(
  formats: Readonly<Record<X86FormatId, X86Format>>,
  kind: DescriptorKind,
  hwLevel: number,
  ps: bigint | undefined,
): X86Format {
  switch (kind) {
    case 'invalid':
      return formats.NOT_PRESENT;
    case 'table':
      if (hwLevel === 1) throw new RangeError('x86-64 level 1 (page table) entries map pages: no table kind there');
      return presentFormat(formats, hwLevel, false);
    case 'block':
      if (hwLevel !== 3 && hwLevel !== 2) {
        throw new RangeError(`x86-64 large pages exist at level 3 (1 GByte) and 2 (2 MByte) only, not level ${hwLevel}`);
      }
      return presentFormat(formats, hwLevel, true);
    case 'page':
      if (hwLevel !== 1) throw new RangeError(`x86-64 4-KByte page entries live at level 1, not level ${hwLevel}`);
      return formats.PTE;
    case 'reserved':
      return presentFormat(formats, hwLevel, ps === 1n);
    default:
      throw new RangeError(`unknown descriptor kind '${String(kind)}'`);
  }
}

/**
 * Encode an entry from named fields; unnamed fields are 0, except PS of a 'block' (the bit that
 * makes it one). `addr` is the raw field; `address` may be given instead, as a physical address
 * aligned to the format's granularity.
 */
export function encode(
  kind: DescriptorKind,
  hwLevel: number,
  fields: Readonly<Record<string, bigint | number | boolean>>,
  cfg: X86PagingConfig = DEFAULT_X86_CONFIG,
): bigint {
  checkLevel(hwLevel, cfg);
  const formats = x86Formats(cfg.maxPhyAddr);
  const given = new Map<string, bigint>();
  for (const [name, v] of Object.entries(fields)) given.set(name, toBig(name, v));
  const fmt = encodeFormat(formats, kind, hwLevel, given.get('ps'));

  if (given.has('address')) {
    const address = given.get('address')!;
    given.delete('address');
    const shift = fmt.addressShift;
    if (shift === undefined) throw new RangeError(`a ${fmt.id} entry has no address field`);
    if (address % (1n << BigInt(shift)) !== 0n) {
      throw new RangeError(`address ${hex(address)} is not aligned to 2^${shift} as ${fmt.table} requires`);
    }
    const raw = address >> BigInt(shift);
    if (given.has('addr') && given.get('addr') !== raw) {
      throw new RangeError(`addr ${hex(given.get('addr')!)} and address ${hex(address)} disagree`);
    }
    given.set('addr', raw);
  }
  if (kind === 'block') {
    if (given.has('ps') && given.get('ps') !== 1n) throw new RangeError('a block (large-page) entry has PS = 1');
    given.set('ps', 1n);
  }
  if (kind === 'table' && (given.get('ps') ?? 0n) !== 0n) {
    throw new RangeError(`a ${fmt.id} that references a table has PS = 0 (${fmt.table}); PS = 1 there is kind 'block' or 'reserved'`);
  }
  if (kind === 'invalid' && (given.get('p') ?? 0n) !== 0n) throw new RangeError('an invalid entry has P = 0');

  let value = 0n;
  for (const spec of fmt.fields) {
    const v = given.get(spec.name);
    if (v === undefined) continue;
    given.delete(spec.name);
    const width = spec.msb - spec.lsb + 1;
    if (v >> BigInt(width) !== 0n) {
      throw new RangeError(`field ${spec.name} (bits ${spec.msb}:${spec.lsb} of ${fmt.table}) cannot hold ${hex(v)}`);
    }
    value |= v << BigInt(spec.lsb);
  }
  if (given.size) {
    const names = fmt.fields.map((f) => f.name).join(', ');
    throw new RangeError(`${fmt.id} (${fmt.table}) has no field ${[...given.keys()].join(', ')}: its fields are ${names}`);
  }
  return value;
}
