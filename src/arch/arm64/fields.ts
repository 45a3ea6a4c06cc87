/**
 * VMSAv8-64 stage 1 translation table descriptor formats, per granule and output-address mode.
 *
 * Source: Arm ARM (DDI 0487) D8.3 "Translation table descriptor formats" (D5.3 in editions before
 * J.a), with the pseudocode functions AArch64.DecodeDescriptorType() and
 * AArch64.BlockDescSupported(); cross-checked against QEMU target/arm/ptw.c get_phys_addr_lpae()
 * and lpae_block_desc_valid().
 *
 * Three address modes:
 *  - 'none': 48-bit output address. OA / next-level table address in bits[47:n].
 *  - 'lpa'  (FEAT_LPA, 64KB granule, 52-bit OA): bits[15:12] hold address bits [51:48].
 *  - 'lpa2' (FEAT_LPA2, 4KB/16KB granule, TCR_ELx.DS = 1): the address field widens to
 *    bits[49:n] and bits[9:8] hold address bits [51:50]; shareability moves to TCR_ELx.SH, so the
 *    descriptor has no SH field.
 *
 * Choices the manual leaves open, made once here:
 *  - Block descriptors carry bit[16] as its own field `nT` (FEAT_BBM block translation hint, RES0
 *    without FEAT_BBM); it sits inside what would otherwise be the block's RES0 gap below the OA.
 *  - Table descriptors carry bit[10] as `af` (FEAT_HAFT: hardware-updated table Access flag;
 *    IGNORED without it). Linux 6.18 sets it in every table it populates (P?D_TABLE_AF).
 *  - A nonzero RES0 field does not change the kind: the descriptor decodes as its bits[1:0] say, and
 *    `reason` lists the offending fields.
 */
import type { Granule } from '../geometry';
import type { DecodedDescriptor, DescriptorField, DescriptorKind } from '../types';

export type Pa52Mode = 'none' | 'lpa' | 'lpa2';

type Role = 'ignored' | 'reserved' | 'software';

/** Where a field's bits go when the address is assembled. */
type AddrPart = 'low' | 'high';

interface FieldSpec {
  readonly name: string;
  readonly msb: number;
  readonly lsb: number;
  readonly role?: Role;
  /** 'low': bits stay in place (address bits msb:lsb). 'high': bits hold address[51:48] or [51:50]. */
  readonly addr?: AddrPart;
  readonly meaning?: (v: bigint) => string | undefined;
}

interface Layout {
  readonly kind: DescriptorKind;
  readonly level: number;
  readonly fields: readonly FieldSpec[];
  /** The fixed value of bits[1:0] for this kind (invalid: bit 0 only, checked separately). */
  readonly typeBits: bigint | undefined;
  /** Bit position where the 'high' address part lands (48 for LPA, 50 for LPA2). */
  readonly highShift: number;
  readonly byName: ReadonlyMap<string, FieldSpec>;
}

const bit = (v: bigint, on: string, off: string) => (v !== 0n ? on : off);

const AP_MEANING = [
  'read/write at EL1, no access at EL0',
  'read/write at EL1 and EL0',
  'read-only at EL1, no access at EL0',
  'read-only at EL1 and EL0',
];
const SH_MEANING = ['non-shareable', 'reserved (CONSTRAINED UNPREDICTABLE)', 'outer shareable', 'inner shareable'];
const APTABLE_MEANING = [
  'no effect on permissions',
  'no EL0 access below this table',
  'no write access below this table',
  'no write access, no EL0 access below this table',
];

/** Block/page size shift at a lookup level: ARM64_HW_PGTABLE_LEVEL_SHIFT, (g - 3) * (4 - level) + 3. */
export function levelShiftOf(granuleShift: number, level: number): number {
  return (granuleShift - 3) * (4 - level) + 3;
}

function granuleShiftOf(granule: Granule): number {
  return granule === 4096 ? 12 : granule === 16384 ? 14 : 16;
}

/**
 * The descriptor formats of one granule and address mode, with decode/encode. Stateless apart
 * from a cache of the field layouts, which depend only on (kind, level).
 */
export class Arm64Descriptors {
  readonly granule: Granule;
  readonly granuleShift: number;
  readonly mode: Pa52Mode;
  /** Lowest and highest lookup level this granule has (Arm ARM D8.2: 4KB -1 (DS=1) or 0; 16KB 0; 64KB 1). */
  readonly minLevel: number;
  readonly maxLevel = 3;
  private readonly layouts = new Map<string, Layout>();

  constructor(granule: Granule, mode: Pa52Mode) {
    if (mode === 'lpa' && granule !== 65536) throw new RangeError('FEAT_LPA 52-bit descriptors need the 64KB granule');
    if (mode === 'lpa2' && granule === 65536) throw new RangeError('FEAT_LPA2 (DS = 1) applies to the 4KB and 16KB granules');
    this.granule = granule;
    this.granuleShift = granuleShiftOf(granule);
    this.mode = mode;
    // Level -1 exists only with the 4KB granule and DS = 1 (52-bit input addresses).
    this.minLevel = granule === 4096 ? (mode === 'lpa2' ? -1 : 0) : granule === 16384 ? 0 : 1;
  }

  /**
   * AArch64.BlockDescSupported(): 4KB: levels 1, 2, and 0 with DS = 1; 16KB: level 2, and 1 with
   * DS = 1; 64KB: level 2, and 1 when the PE supports a 52-bit PA (FEAT_LPA). Never at level -1 or 3.
   */
  blockAllowed(level: number): boolean {
    switch (this.granule) {
      case 4096:
        return level === 1 || level === 2 || (level === 0 && this.mode === 'lpa2');
      case 16384:
        return level === 2 || (level === 1 && this.mode === 'lpa2');
      case 65536:
        return level === 2 || (level === 1 && this.mode === 'lpa');
    }
  }

  /** The kind bits[1:0] give at a level (AArch64.DecodeDescriptorType). */
  kindOf(value: bigint, level: number): DescriptorKind {
    this.checkLevel(level);
    if ((value & 1n) === 0n) return 'invalid';
    const table = (value & 2n) !== 0n;
    if (level === 3) return table ? 'page' : 'reserved';
    if (table) return 'table';
    return this.blockAllowed(level) ? 'block' : 'reserved';
  }

  decode(value: bigint, level: number): DecodedDescriptor {
    if (value < 0n || value >= 1n << 64n) throw new RangeError(`descriptor 0x${value.toString(16)} is not a 64-bit value`);
    const kind = this.kindOf(value, level);
    const layout = this.layout(kind, level);
    const fields: DescriptorField[] = [];
    let low = 0n;
    let high = 0n;
    const nonzeroRes0: string[] = [];
    for (const f of layout.fields) {
      const raw = (value >> BigInt(f.lsb)) & ((1n << BigInt(f.msb - f.lsb + 1)) - 1n);
      if (f.addr === 'low') low |= raw << BigInt(f.lsb);
      else if (f.addr === 'high') high = raw;
      if (f.role === 'reserved' && raw !== 0n && kind !== 'reserved') {
        nonzeroRes0.push(`${f.name} (bits[${f.msb}:${f.lsb}]) = 0x${raw.toString(16)}`);
      }
    }
    const hasAddress = kind === 'table' || kind === 'block' || kind === 'page';
    const address = hasAddress ? low | (high << BigInt(layout.highShift)) : undefined;
    for (const f of layout.fields) {
      const raw = (value >> BigInt(f.lsb)) & ((1n << BigInt(f.msb - f.lsb + 1)) - 1n);
      const meaning = f.meaning?.(raw);
      const field: DescriptorField = {
        name: f.name,
        msb: f.msb,
        lsb: f.lsb,
        value: raw,
        ...(f.addr !== undefined && address !== undefined ? { address } : {}),
        ...(meaning !== undefined ? { meaning } : {}),
        ...(f.role !== undefined ? { role: f.role } : {}),
      };
      fields.push(field);
    }
    let reason: string | undefined;
    if (kind === 'reserved') reason = this.reservedReason(level);
    else if (kind === 'invalid') reason = 'bit[0] = 0: invalid descriptor, a lookup through it is a Translation fault; bits[63:1] are ignored by hardware';
    else if (nonzeroRes0.length > 0) reason = `RES0 bits set (hardware behaviour is CONSTRAINED UNPREDICTABLE or ignores them): ${nonzeroRes0.join(', ')}`;
    return {
      kind,
      level,
      value,
      fields,
      ...(reason !== undefined ? { reason } : {}),
      ...(address !== undefined ? { address } : {}),
    };
  }

  /**
   * Build a descriptor from named field values (raw, as decode reports them). Unnamed fields are
   * zero, except `valid` and `type`, which default to what `kind` requires. `address` may be given
   * instead of the address fields: it is split into them (LPA/LPA2 high bits included).
   */
  encode(kind: DescriptorKind, level: number, fields: Readonly<Record<string, bigint | number | boolean>>): bigint {
    this.checkLevel(level);
    const layout = this.layout(kind, level);
    const given = new Map<string, bigint>();
    for (const [name, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const big = typeof v === 'bigint' ? v : typeof v === 'boolean' ? (v ? 1n : 0n) : toBigInt(name, v);
      given.set(name, big);
    }
    if (given.has('address')) {
      if (kind !== 'table' && kind !== 'block' && kind !== 'page') {
        throw new RangeError(`encode: a ${kind} descriptor has no address`);
      }
      const addr = given.get('address')!;
      given.delete('address');
      for (const f of layout.fields) {
        if (f.addr === undefined) continue;
        if (given.has(f.name)) throw new RangeError(`encode: give either 'address' or '${f.name}', not both`);
      }
      this.splitAddress(layout, addr, given);
    }
    let value = 0n;
    for (const [name, v] of given) {
      const f = layout.byName.get(name);
      if (!f) {
        throw new RangeError(
          `encode: a level ${level} ${kind} descriptor has no field '${name}' (fields: ${layout.fields.map((x) => x.name).join(', ')})`,
        );
      }
      const width = BigInt(f.msb - f.lsb + 1);
      if (v < 0n || v >= 1n << width) {
        throw new RangeError(`encode: ${name} = 0x${v.toString(16)} does not fit bits[${f.msb}:${f.lsb}]`);
      }
      value |= v << BigInt(f.lsb);
    }
    // The structural bits follow the kind; a contradicting value is an error, not a silent fix.
    if (kind === 'invalid') {
      if ((value & 1n) !== 0n) throw new RangeError('encode: an invalid descriptor has valid = 0');
    } else {
      const want = layout.typeBits!;
      const validGiven = given.has('valid');
      const typeGiven = given.has('type');
      if (validGiven && (value & 1n) !== (want & 1n)) throw new RangeError(`encode: a ${kind} descriptor has valid = 1`);
      if (typeGiven && (value & 2n) !== (want & 2n)) {
        throw new RangeError(`encode: a level ${level} ${kind} descriptor has type = ${(want >> 1n).toString()}`);
      }
      value |= want;
    }
    return value;
  }

  /** The field layout of a kind at a level (throws where the kind cannot occur). */
  layout(kind: DescriptorKind, level: number): Layout {
    this.checkLevel(level);
    const key = `${kind}@${level}`;
    let l = this.layouts.get(key);
    if (!l) {
      l = this.build(kind, level);
      this.layouts.set(key, l);
    }
    return l;
  }

  // ---- internals ------------------------------------------------------------------------------

  private checkLevel(level: number): void {
    if (!Number.isInteger(level) || level < this.minLevel || level > this.maxLevel) {
      throw new RangeError(
        `lookup level ${level} does not exist with the ${this.granule / 1024}KB granule` +
          `${this.mode === 'lpa2' ? ' (DS = 1)' : ''}: expected ${this.minLevel}…${this.maxLevel}`,
      );
    }
  }

  private reservedReason(level: number): string {
    if (level === 3) {
      return 'Arm ARM D8.3 (AArch64.DecodeDescriptorType): bits[1:0] = 0b01 at level 3 is reserved and treated as invalid (Translation fault)';
    }
    const ds = this.mode === 'lpa2' ? ', DS = 1' : this.mode === 'lpa' ? ', 52-bit PA' : '';
    return (
      `Arm ARM D8.3 (AArch64.BlockDescSupported): no block descriptor at level ${level} with the ` +
      `${this.granule / 1024}KB granule${ds}; bits[1:0] = 0b01 here is treated as invalid (Translation fault)`
    );
  }

  private splitAddress(layout: Layout, addr: bigint, out: Map<string, bigint>): void {
    const top = this.mode === 'none' ? 48n : 52n;
    if (addr < 0n || addr >= 1n << top) {
      throw new RangeError(`encode: address 0x${addr.toString(16)} exceeds the ${top}-bit output address`);
    }
    for (const f of layout.fields) {
      if (f.addr === 'low') {
        const mask = ((1n << BigInt(f.msb + 1)) - 1n) & ~((1n << BigInt(f.lsb)) - 1n);
        out.set(f.name, (addr & mask) >> BigInt(f.lsb));
      } else if (f.addr === 'high') {
        out.set(f.name, addr >> BigInt(layout.highShift));
      }
    }
    // Bits below the address field's lsb must be zero: a block maps an aligned block.
    const lowField = layout.fields.find((f) => f.addr === 'low')!;
    if ((addr & ((1n << BigInt(lowField.lsb)) - 1n)) !== 0n) {
      throw new RangeError(`encode: address 0x${addr.toString(16)} is not aligned to 2^${lowField.lsb}`);
    }
  }

  private build(kind: DescriptorKind, level: number): Layout {
    const g = this.granuleShift;
    const lpa2 = this.mode === 'lpa2';
    const lpa = this.mode === 'lpa';
    const f: FieldSpec[] = [];
    let typeBits: bigint | undefined;
    switch (kind) {
      case 'invalid':
        f.push({ name: 'valid', msb: 0, lsb: 0, meaning: () => 'invalid' });
        f.push({ name: 'ignored1', msb: 63, lsb: 1, role: 'ignored' });
        break;
      case 'reserved':
        if (level !== 3 && this.blockAllowed(level)) {
          throw new RangeError(`bits[1:0] = 0b01 at level ${level} is a block descriptor, not a reserved one`);
        }
        typeBits = 1n;
        f.push({ name: 'valid', msb: 0, lsb: 0, meaning: () => 'valid bit set, but the encoding is reserved' });
        f.push({ name: 'type', msb: 1, lsb: 1, meaning: () => 'reserved encoding (bits[1:0] = 0b01)' });
        f.push({ name: 'ignored2', msb: 63, lsb: 2, role: 'ignored' });
        break;
      case 'table': {
        if (level === 3) throw new RangeError('a level 3 descriptor with bits[1:0] = 0b11 is a page, not a table');
        typeBits = 3n;
        f.push({ name: 'valid', msb: 0, lsb: 0, meaning: () => 'valid' });
        f.push({ name: 'type', msb: 1, lsb: 1, meaning: () => 'table' });
        if (lpa2) {
          f.push({ name: 'ignored2', msb: 7, lsb: 2, role: 'ignored' });
          f.push({ name: 'nltaHi', msb: 9, lsb: 8, addr: 'high', meaning: () => 'next-level table address [51:50]' });
        } else {
          f.push({ name: 'ignored2', msb: 9, lsb: 2, role: 'ignored' });
        }
        f.push({
          name: 'af',
          msb: 10,
          lsb: 10,
          role: 'ignored',
          meaning: (v) => bit(v, 'table Access flag set (FEAT_HAFT; ignored without it)', 'table Access flag clear (FEAT_HAFT; ignored without it)'),
        });
        f.push({ name: 'ignored11', msb: 11, lsb: 11, role: 'ignored' });
        if (g > 12) {
          if (lpa) f.push({ name: 'nltaHi', msb: 15, lsb: 12, addr: 'high', meaning: () => 'next-level table address [51:48]' });
          else f.push({ name: 'res0_12', msb: g - 1, lsb: 12, role: 'reserved' });
        }
        f.push({ name: 'nlta', msb: lpa2 ? 49 : 47, lsb: g, addr: 'low', meaning: () => 'next-level table address' });
        f.push({ name: lpa2 ? 'res0_50' : 'res0_48', msb: 50, lsb: lpa2 ? 50 : 48, role: 'reserved' });
        f.push({ name: 'ignored51', msb: 58, lsb: 51, role: 'ignored' });
        f.push({ name: 'pxnTable', msb: 59, lsb: 59, meaning: (v) => bit(v, 'privileged execute-never below this table', 'no effect') });
        f.push({ name: 'uxnTable', msb: 60, lsb: 60, meaning: (v) => bit(v, 'unprivileged execute-never below this table', 'no effect') });
        f.push({ name: 'apTable', msb: 62, lsb: 61, meaning: (v) => APTABLE_MEANING[Number(v)] });
        f.push({ name: 'nsTable', msb: 63, lsb: 63, meaning: (v) => bit(v, 'next table in Non-secure PA space (Secure state only)', 'no effect') });
        break;
      }
      case 'block':
      case 'page': {
        if (kind === 'page' && level !== 3) throw new RangeError(`a page descriptor exists only at level 3, not level ${level}`);
        if (kind === 'block' && !this.blockAllowed(level)) {
          throw new RangeError(
            `no block descriptor at level ${level} with the ${this.granule / 1024}KB granule in this mode ` +
              `(AArch64.BlockDescSupported); bits[1:0] = 0b01 there is kind 'reserved'`,
          );
        }
        typeBits = kind === 'page' ? 3n : 1n;
        const n = kind === 'page' ? g : levelShiftOf(g, level);
        f.push({ name: 'valid', msb: 0, lsb: 0, meaning: () => 'valid' });
        f.push({ name: 'type', msb: 1, lsb: 1, meaning: () => kind });
        f.push({ name: 'attrIndx', msb: 4, lsb: 2, meaning: (v) => `MAIR_ELx.Attr${v}` });
        f.push({ name: 'ns', msb: 5, lsb: 5, meaning: (v) => bit(v, 'Non-secure output (Secure state only)', 'no effect') });
        f.push({ name: 'ap', msb: 7, lsb: 6, meaning: (v) => AP_MEANING[Number(v)] });
        if (lpa2) f.push({ name: 'oaHi', msb: 9, lsb: 8, addr: 'high', meaning: () => 'output address [51:50]' });
        else f.push({ name: 'sh', msb: 9, lsb: 8, meaning: (v) => SH_MEANING[Number(v)] });
        f.push({ name: 'af', msb: 10, lsb: 10, meaning: (v) => bit(v, 'accessed', 'not accessed (Access flag fault on use)') });
        f.push({ name: 'nG', msb: 11, lsb: 11, meaning: (v) => bit(v, 'not global (ASID-tagged)', 'global') });
        if (kind === 'page') {
          if (g > 12) {
            if (lpa) f.push({ name: 'oaHi', msb: 15, lsb: 12, addr: 'high', meaning: () => 'output address [51:48]' });
            else f.push({ name: 'res0_12', msb: g - 1, lsb: 12, role: 'reserved' });
          }
        } else {
          if (lpa) f.push({ name: 'oaHi', msb: 15, lsb: 12, addr: 'high', meaning: () => 'output address [51:48]' });
          else f.push({ name: 'res0_12', msb: 15, lsb: 12, role: 'reserved' });
          f.push({ name: 'nT', msb: 16, lsb: 16, meaning: (v) => bit(v, 'block translation hint (FEAT_BBM; RES0 without it)', 'no hint') });
          f.push({ name: 'res0_17', msb: n - 1, lsb: 17, role: 'reserved' });
        }
        f.push({ name: 'oa', msb: lpa2 ? 49 : 47, lsb: n, addr: 'low', meaning: () => 'output address' });
        if (!lpa2) f.push({ name: 'res0_48', msb: 49, lsb: 48, role: 'reserved' });
        f.push({ name: 'gp', msb: 50, lsb: 50, meaning: (v) => bit(v, 'guarded page (FEAT_BTI)', 'not guarded') });
        f.push({ name: 'dbm', msb: 51, lsb: 51, meaning: (v) => bit(v, 'dirty bit modifier: hardware may clear AP[2] on write', 'no hardware dirty state') });
        f.push({ name: 'contiguous', msb: 52, lsb: 52, meaning: (v) => bit(v, 'one of a contiguous set of entries', 'not contiguous') });
        f.push({ name: 'pxn', msb: 53, lsb: 53, meaning: (v) => bit(v, 'privileged execute-never', 'privileged execution allowed') });
        f.push({ name: 'uxn', msb: 54, lsb: 54, meaning: (v) => bit(v, 'unprivileged execute-never (UXN/XN)', 'unprivileged execution allowed') });
        f.push({ name: 'sw55', msb: 58, lsb: 55, role: 'software' });
        f.push({ name: 'pbha', msb: 62, lsb: 59, role: 'ignored', meaning: () => 'page-based hardware attributes: IMPLEMENTATION DEFINED with FEAT_HPDS2, otherwise ignored' });
        f.push({ name: 'ignored63', msb: 63, lsb: 63, role: 'ignored' });
        break;
      }
    }
    // Guard the invariant the contract promises: the fields tile bits 0..63 in order.
    let next = 0;
    for (const x of f) {
      if (x.lsb !== next || x.msb < x.lsb) throw new Error(`internal: ${kind}@${level} field ${x.name} breaks the tiling at bit ${next}`);
      next = x.msb + 1;
    }
    if (next !== 64) throw new Error(`internal: ${kind}@${level} fields end at bit ${next}`);
    return {
      kind,
      level,
      fields: f,
      typeBits,
      highShift: lpa ? 48 : 50,
      byName: new Map(f.map((x) => [x.name, x])),
    };
  }
}

function toBigInt(name: string, v: number): bigint {
  if (!Number.isSafeInteger(v)) throw new RangeError(`encode: ${name} = ${v} is not an exact integer`);
  return BigInt(v);
}
