/**
 * The ARM64 hardware's view: the VMSAv8-64 stage 1 EL1&0 translation a PE performs on a TLB miss
 * (Arm ARM DDI 0487, part D8: D8.1 the translation regime, D8.2 translation granules and lookup
 * levels, D8.3 descriptor formats, D8.4 memory access control, D8.5 hardware updates of the
 * Access flag and dirty state), written beside the Arm pseudocode functions it follows
 * (AArch64.S1Translate, AArch64.S1Walk, AArch64.S1StartLevel, AArch64.S1TTBaseAddress,
 * AArch64.NextTableBase, AArch64.LeafBase, AArch64.OAOutOfRange, AArch64.S1DirectBasePermissions,
 * AArch64.S1CheckPermissions). Fault codes are the ESR_ELx ISS DFSC/IFSC encodings.
 *
 * This is separate from the Linux helpers (./linux, ./fields): it decodes descriptors itself, so a
 * kernel-model bug the hardware would expose is not hidden by sharing the same decoder
 * (DESIGN.md, Fidelity).
 *
 * Hot path: walk() works on the two 32-bit halves of the VA and of each descriptor, reads the
 * regime from fields derived once per register write, and allocates nothing (DESIGN.md 1, 4, 5).
 * Physical addresses are numbers (< 2^52, exact in a double), assembled with arithmetic.
 *
 * Choices where the architecture leaves a choice (each also said where it is made):
 *  - TxSZ outside [min, max]: a level 0 Translation fault (AArch64.S1TxSZFaults; QEMU's choice too).
 *  - A reserved TG0/TG1 encoding: the 4KB granule (IMPLEMENTATION DEFINED granule).
 *  - AF is not set on an access that takes a Permission fault (AArch64.SettingAccessFlagPermitted
 *    makes it CONSTRAINED UNPREDICTABLE); nothing is written by a faulting or a debug walk.
 *  - No FEAT_TTST (max TxSZ 39), no FEAT_E0PD/NFD, no FEAT_HAFT, no FEAT_S1PIE/S1POE, no
 *    misprogrammed-Contiguous faults, no FEAT_BBM nT faults.
 */
import type { PhysMem } from '../../mem/physmem';
import {
  PERM_R,
  PERM_W,
  PERM_X,
  WalkResult,
  type AccessKind,
  type Arm64FaultKind,
  type Mmu,
  type TranslateOptions,
  type TranslateOutcome,
} from '../mmu-types';

/** The registers this MMU reads, as in machine.json. */
export const ARM64_MMU_REGISTERS = ['ttbr0_el1', 'ttbr1_el1', 'tcr_el1', 'mair_el1', 'sctlr_el1', 'pstate_pan'] as const;
export type Arm64MmuRegister = (typeof ARM64_MMU_REGISTERS)[number];

/** ID registers describing the implementation; absent: every feature this emulator models. */
export interface Arm64MmuOptions {
  readonly idAa64mmfr0?: bigint;
  readonly idAa64mmfr1?: bigint;
  readonly idAa64mmfr2?: bigint;
}

/**
 * The walk's constants as a const enum, so that the bundler writes each value into the code that
 * uses it: a module-level `const` becomes a `var`, i.e. a context load and a type check at every
 * use in optimised code (the same pattern as src/arch/arm64/linux.ts).
 */
const enum E {
  TWO31 = 2147483648,
  TWO32 = 4294967296,
  TWO48 = 281474976710656,
  TWO50 = 1125899906842624,
  // ESR_ELx ISS DFSC/IFSC (Arm ARM D24, ESR_EL1): the two low bits are the lookup level 0…3.
  FSC_ADDRESS_SIZE = 0x00, // 0b0000LL
  FSC_TRANSLATION = 0x04, // 0b0001LL
  FSC_ACCESS_FLAG = 0x08, // 0b0010LL
  FSC_PERMISSION = 0x0c, // 0b0011LL
  FSC_ADDRESS_SIZE_LM1 = 0x29, // 0b101001: Address size fault, level -1 (FEAT_LPA2)
  FSC_TRANSLATION_LM1 = 0x2b, // 0b101011: Translation fault, level -1 (FEAT_LPA2)
  FSC_EXTERNAL_ABORT_WALK = 0x14, // 0b0101LL: synchronous External abort on translation table walk
  FSC_EXTERNAL_ABORT_WALK_LM1 = 0x13, // 0b010011: the same at level -1 (FEAT_LPA2)
  // Descriptor bits (Arm ARM D8.3), low word: valid, table/page, AttrIndx[2:0] at 4:2, AP[1],
  // AP[2], AF, nG; high word (bit - 32): DBM (51), Contiguous (52), PXN (53), UXN (54).
  VALID = 0x1,
  TABLE = 0x2,
  AP1 = 0x40,
  AP2 = 0x80,
  AF = 0x400,
  NG = 0x800,
  DBM_HI = 0x80000,
  CONTIG_HI = 0x100000,
  PXN_HI = 0x200000,
  UXN_HI = 0x400000,
  /** VA bit 55 (bit 23 of the high word): TTBR0 or TTBR1. */
  VA55_HI = 0x800000,
  // mmu-types.ts PERM_R / PERM_W / PERM_X (checked equal below, at load).
  PERM_R = 1,
  PERM_W = 2,
  PERM_X = 4,
}
if (E.PERM_R !== PERM_R || E.PERM_W !== PERM_W || E.PERM_X !== PERM_X) {
  throw new Error('arm64/mmu.ts: E.PERM_* differ from mmu-types.ts PERM_*');
}

/** ID_AA64MMFR0_EL1.PARange → bits (0b0111, 56 bits, needs FEAT_D128: capped at 52 here). */
const PA_RANGE_BITS = [32, 36, 40, 42, 44, 48, 52, 52];

/** The MAIR_EL1 Attr<n> encoding (Arm ARM, MAIR_EL1) as a name. */
export function mairAttrName(attr: number): string {
  const a = attr & 0xff;
  const hex = `0x${a.toString(16).padStart(2, '0')}`;
  if ((a & 0xf0) === 0) {
    // 0b0000ddxx: Device memory; xx != 00 is reserved (FEAT_XS gives 0b0000dd01 meaning XS = 0).
    const kind = ['Device-nGnRnE', 'Device-nGnRE', 'Device-nGRE', 'Device-GRE'][(a >>> 2) & 3]!;
    return (a & 3) === 0 ? kind : (a & 3) === 1 ? `${kind} (XS=0)` : `Reserved (${hex})`;
  }
  if (a === 0xf0) return 'Normal Tagged'; // FEAT_MTE2: Tagged Normal, Inner/Outer WB
  const inner = a & 0xf;
  const outer = a >>> 4;
  if (inner === 0) {
    // FEAT_XS encodings of Normal memory with XS = 0; other 0bxxxx0000 values are UNPREDICTABLE.
    if (a === 0x40) return 'Normal NC (XS=0)';
    if (a === 0xa0) return 'Normal WT (XS=0)';
    return `Reserved (${hex})`;
  }
  const i = normalNibble(inner);
  const o = normalNibble(outer);
  return i === o ? `Normal ${i}` : `Normal Inner-${i} Outer-${o}`;
}

/** One cacheability nibble of a Normal memory attribute (0b0000 never reaches here). */
function normalNibble(n: number): string {
  if (n === 0b0100) return 'NC';
  switch (n >>> 2) {
    case 0:
      return 'WT transient';
    case 1:
      return 'WB transient';
    case 2:
      return 'WT';
    default:
      return 'WB';
  }
}

/**
 * One half of the VA space (TTBR0 below, TTBR1 above): everything the walk needs, derived once
 * from TCR_EL1, TTBRn_EL1 and the ID registers by Arm64Mmu.derive (AArch64.GetS1TTWParams).
 */
class HalfRegime {
  /** TCR_EL1.EPDn = 0 (a walk is allowed). */
  enabled = false;
  /** TxSZ outside [min, max]: every access faults (AArch64.S1TxSZFaults). */
  txszFault = false;
  granuleBits = 12;
  stride = 9;
  iaSize = 48;
  startLevel = 0;
  /** VA bit of the start level's index, and the index mask (fewer entries than a full table). */
  startShift = 39;
  startIdxMask = 511;
  strideMask = 511;
  /** VA bits [63:iaSize] (hi word, with and without TBI) and [31:iaSize] (lo word): AArch64.VAIsOutOfRange. */
  hiMaskFull = 0;
  hiMaskTbi = 0;
  loMask = 0;
  tbi = false;
  tbid = false;
  /** TCR_EL1.HPDn (FEAT_HPDS): APTable/UXNTable/PXNTable are ignored. */
  hpd = false;
  /** Effective TCR_EL1.DS (FEAT_LPA2, 4KB/16KB granules only). */
  ds = false;
  /** TCR_EL1.SHn: the shareability when DS = 1 repurposes descriptor bits 9:8. */
  sh = 0;
  /** Output address size (AArch64.PhysicalAddressSize) and 2^oaSize. */
  oaSize = 48;
  oaLimit: number = E.TWO48;
  /** Where OA bits above 47 come from: 0 nowhere, 1 descriptor[15:12] (64KB, FEAT_LPA), 2 descriptor[9:8] and [49:48] (DS). */
  hi52 = 0;
  /** Descriptor address field in the hi word: bits [47:32], or [49:32] with DS. */
  hiAddrMask = 0xffff;
  /** Descriptor address field in the lo word: bits [31:granuleBits], as an int32 (used only with `&`). */
  granLoMask = ~0xfff;
  /** Shallowest level where a block descriptor is allowed (AArch64.BlockDescSupported); deepest is 2. */
  blockMin = 1;
  /** The start table's physical address (AArch64.S1TTBaseAddress) and whether it is beyond the OA size. */
  base = 0;
  baseFault = false;
}

function bit(v: bigint, n: number): boolean {
  return ((v >> BigInt(n)) & 1n) === 1n;
}
function bits(v: bigint, hi: number, lo: number): number {
  return Number((v >> BigInt(lo)) & ((1n << BigInt(hi - lo + 1)) - 1n));
}

/** Implementation features the ID registers report (absent register: the feature is there). */
interface Features {
  /** AArch64.PAMax(). */
  paMax: number;
  /** FEAT_LPA2 for the 4KB / 16KB granule (TGran4 = 0b0001, TGran16 = 0b0010). */
  lpa2Gran4: boolean;
  lpa2Gran16: boolean;
  /** FEAT_LVA: 52-bit VA with the 64KB granule (ID_AA64MMFR2_EL1.VARange = 0b0001). */
  lva: boolean;
  /** FEAT_HAFDBS: hardware Access flag (HAFDBS >= 1) and dirty state (HAFDBS >= 2). */
  ha: boolean;
  hd: boolean;
  /** FEAT_PAN, and FEAT_PAN3 (SCTLR_EL1.EPAN). */
  pan: boolean;
  pan3: boolean;
}

function featuresOf(opts: Arm64MmuOptions): Features {
  const f: Features = { paMax: 52, lpa2Gran4: true, lpa2Gran16: true, lva: true, ha: true, hd: true, pan: true, pan3: true };
  if (opts.idAa64mmfr0 !== undefined) {
    const m = opts.idAa64mmfr0;
    f.paMax = PA_RANGE_BITS[bits(m, 3, 0) & 7]!;
    f.lpa2Gran4 = bits(m, 31, 28) === 0b0001;
    f.lpa2Gran16 = bits(m, 23, 20) === 0b0010;
  }
  if (opts.idAa64mmfr1 !== undefined) {
    const m = opts.idAa64mmfr1;
    const hafdbs = bits(m, 3, 0);
    f.ha = hafdbs >= 1;
    f.hd = hafdbs >= 2;
    const pan = bits(m, 23, 20);
    f.pan = pan >= 1;
    f.pan3 = pan >= 3;
  }
  if (opts.idAa64mmfr2 !== undefined) f.lva = bits(opts.idAa64mmfr2, 19, 16) >= 1;
  return f;
}

const U64 = (1n << 64n) - 1n;

export class Arm64Mmu implements Mmu {
  readonly arch = 'arm64' as const;
  private readonly u32: Uint32Array;
  /** The same memory as 64-bit words: the hardware's descriptor update is a 64-bit compare-exchange. */
  private readonly u64: BigUint64Array;
  private readonly view: DataView;
  /**
   * Physical memory's [physBase, physEnd): read from a Float64Array they are float64 values for
   * the optimiser, where number fields are tagged values converted at every use in the walk's loop.
   */
  private readonly physBounds: Float64Array;
  private readonly features: Features;
  private readonly regs = new Map<Arm64MmuRegister, bigint>();

  // The derived regime (setRegister → derive).
  private readonly r0 = new HalfRegime();
  private readonly r1 = new HalfRegime();
  /** SCTLR_EL1.M: stage 1 enabled. */
  private mmuOn = true;
  /** SCTLR_EL1.EE: big-endian descriptors. */
  private ee = false;
  private wxn = false;
  /** SCTLR_EL1.I (instruction fetches with the MMU off are Normal WT when set). */
  private icache = false;
  /** TCR_EL1.HA, and HA && HD (the dirty-state update needs both: AArch64.S1ApplyOutputPerms). */
  private ha = false;
  private hd = false;
  private pan = false;
  private epan = false;
  /** MAIR_EL1 as two halves (Attr0-3 in lo, Attr4-7 in hi). */
  private mairLo = 0;
  private mairHi = 0;
  /** A scratch result for translate(). */
  private readonly scratch = new WalkResult();

  constructor(mem: PhysMem, regs: Record<string, bigint>, opts: Arm64MmuOptions = {}) {
    this.u32 = mem.u32;
    this.u64 = mem.u64;
    this.view = mem.view;
    this.physBounds = new Float64Array([mem.physBase, mem.physEnd]);
    this.features = featuresOf(opts);
    for (const [name, value] of Object.entries(regs)) this.regs.set(checkName(name), checkValue(name, value));
    if (!this.regs.has('tcr_el1')) throw new RangeError('arm64 MMU: register tcr_el1 is missing (it selects the translation regime)');
    this.derive();
  }

  setRegister(name: string, value: bigint): void {
    const n = checkName(name);
    const v = checkValue(name, value);
    const had = this.regs.has(n);
    const old = this.regs.get(n);
    this.regs.set(n, v);
    try {
      this.derive();
    } catch (e) {
      // Keep the previous, consistent regime: a rejected write changes nothing.
      if (had) this.regs.set(n, old!);
      else this.regs.delete(n);
      this.derive();
      throw e;
    }
  }

  getRegister(name: string): bigint {
    const n = checkName(name);
    const v = this.regs.get(n);
    if (v !== undefined) return v;
    return n === 'sctlr_el1' ? 1n : 0n;
  }

  /** Re-derive the regime from the registers (AArch64.GetS1TTWParams, once per write). */
  private derive(): void {
    const f = this.features;
    const tcr = this.regs.get('tcr_el1')!;
    // An absent SCTLR_EL1 means M = 1, as image loading assumes (src/mm/image.ts).
    const sctlr = this.regs.get('sctlr_el1') ?? 1n;
    const mair = this.regs.get('mair_el1') ?? 0n;
    this.mmuOn = bit(sctlr, 0);
    this.icache = bit(sctlr, 12);
    this.wxn = bit(sctlr, 19);
    this.ee = bit(sctlr, 25);
    this.epan = f.pan3 && bit(sctlr, 57);
    this.pan = f.pan && (this.regs.get('pstate_pan') ?? 0n) !== 0n;
    this.ha = f.ha && bit(tcr, 39);
    // D8.5: hardware dirty-state management is enabled by {HA, HD} = {1, 1}.
    this.hd = this.ha && f.hd && bit(tcr, 40);
    this.mairLo = Number(mair & 0xffffffffn);
    this.mairHi = Number((mair >> 32n) & 0xffffffffn);
    this.deriveHalf(this.r0, 0, tcr);
    this.deriveHalf(this.r1, 1, tcr);
  }

  private deriveHalf(r: HalfRegime, half: 0 | 1, tcr: bigint): void {
    const f = this.features;
    // TCR_EL1 field positions for TTBR0 / TTBR1.
    const txsz = half === 0 ? bits(tcr, 5, 0) : bits(tcr, 21, 16);
    const epd = half === 0 ? bit(tcr, 7) : bit(tcr, 23);
    const sh = half === 0 ? bits(tcr, 13, 12) : bits(tcr, 29, 28);
    const tg = half === 0 ? bits(tcr, 15, 14) : bits(tcr, 31, 30);
    r.tbi = half === 0 ? bit(tcr, 37) : bit(tcr, 38);
    r.hpd = half === 0 ? bit(tcr, 41) : bit(tcr, 42);
    r.tbid = half === 0 ? bit(tcr, 51) : bit(tcr, 52);
    r.enabled = !epd;
    r.sh = sh;
    // TG0: 00 4KB, 01 64KB, 10 16KB; TG1: 01 16KB, 10 4KB, 11 64KB. A reserved value selects an
    // IMPLEMENTATION DEFINED granule: 4KB here.
    const g = half === 0 ? (tg === 1 ? 16 : tg === 2 ? 14 : 12) : tg === 1 ? 14 : tg === 3 ? 16 : 12;
    r.granuleBits = g;
    r.stride = g - 3;
    r.strideMask = (1 << r.stride) - 1;
    r.granLoMask = ~((1 << g) - 1);
    const lpa2 = g === 12 ? f.lpa2Gran4 : g === 14 ? f.lpa2Gran16 : false;
    // TCR_EL1.DS only means something with FEAT_LPA2 and the 4KB/16KB granules.
    r.ds = lpa2 && bit(tcr, 59);
    const lpa = f.paMax >= 52;

    // AArch64.S1MinTxSZ / AArch64.MaxTxSZ: 52-bit VAs with DS = 1 or (64KB and FEAT_LVA); no FEAT_TTST.
    const minTxsz = r.ds || (g === 16 && f.lva) ? 12 : 16;
    const maxTxsz = 39;
    r.txszFault = txsz < minTxsz || txsz > maxTxsz;
    const eff = Math.min(Math.max(txsz, minTxsz), maxTxsz);
    r.iaSize = 64 - eff;

    // AArch64.S1StartLevel: level = 4 - RoundUp((iasize - granulebits) / stride).
    r.startLevel = 4 - Math.floor((r.iaSize - 4) / r.stride);
    r.startShift = g + r.stride * (3 - r.startLevel);
    r.startIdxMask = 2 ** (r.iaSize - r.startShift) - 1;

    // AArch64.VAIsOutOfRange: bits [addrtop:iasize] must all equal bit 55.
    // Kept as int32 values (bit 31 negative): the walk compares them with `vaHi & mask` directly.
    r.hiMaskFull = r.iaSize >= 32 ? ~((2 ** (r.iaSize - 32) - 1) | 0) : -1;
    r.hiMaskTbi = r.hiMaskFull & 0x00ffffff;
    r.loMask = r.iaSize >= 32 ? 0 : ~((1 << r.iaSize) - 1);

    // AArch64.PhysicalAddressSize: IPS capped by PAMax, and at 48 bits unless FEAT_LPA with the
    // 64KB granule or FEAT_LPA2.
    const ips = bits(tcr, 34, 32);
    const ps = PA_RANGE_BITS[ips]!;
    const maxPs = lpa && (g === 16 || lpa2) ? Math.min(52, f.paMax) : Math.min(48, f.paMax);
    r.oaSize = Math.min(ps, maxPs);
    r.oaLimit = 2 ** r.oaSize;

    // AArch64.NextTableBase / AArch64.LeafBase: OA[51:48] from descriptor[15:12] with 64KB when
    // PAMax is 52; from descriptor[9:8]:[49:48] with DS.
    r.hi52 = g === 16 && lpa ? 1 : r.ds ? 2 : 0;
    r.hiAddrMask = r.ds ? 0x3ffff : 0xffff;

    // AArch64.BlockDescSupported: 4KB level 1-2 (level 0 with DS), 16KB level 2 (level 1 with DS),
    // 64KB level 2 (level 1 when PAMax is 52).
    r.blockMin = g === 12 ? (r.ds ? 0 : 1) : g === 14 ? (r.ds ? 1 : 2) : lpa ? 1 : 2;

    // AArch64.S1TTBaseAddress: the start table is aligned to its size (at least 64 bytes when
    // BADDR carries bits 51:48 in TTBR bits 5:2).
    const name = half === 0 ? 'ttbr0_el1' : 'ttbr1_el1';
    const ttbr = this.regs.get(name);
    if (ttbr === undefined) {
      if (r.enabled && this.mmuOn) {
        throw new RangeError(`arm64 MMU: register ${name} is missing while TCR_EL1.EPD${half} = 0 enables its walks`);
      }
      r.base = 0;
      r.baseFault = false;
      return;
    }
    const levels = 3 - r.startLevel;
    let tsize = r.iaSize - (levels * r.stride + g) + 3;
    let base: bigint;
    if (r.ds || (g === 16 && ips === 0b110 && lpa)) {
      tsize = Math.max(tsize, 6);
      base = (((ttbr >> 2n) & 0xfn) << 48n) | (ttbr & 0x0000ffffffffffc0n);
    } else {
      base = ttbr & 0x0000fffffffffffen;
    }
    base &= ~((1n << BigInt(tsize)) - 1n);
    r.base = Number(base);
    r.baseFault = r.base >= r.oaLimit;
  }

  /**
   * One hardware walk (AArch64.S1Translate + AArch64.S1Walk + AArch64.S1CheckPermissions), into
   * `out`. A descriptor read outside emulated memory is the fault 'external_abort' (a synchronous
   * External abort on translation table walk, DFSC 0b0101LL) at the level being read; it never throws.
   *
   * On success `permUser` / `permPriv` are the EL0 / EL1 rights of AArch64.S1DirectBasePermissions
   * with the table controls, the implicit PXN of EL0-writable memory, SCTLR_EL1.WXN and the
   * no-execute of Device memory applied, and with a DBM page under HA = HD = 1 counted as writable
   * (its effective AP[2] is 0). PSTATE.PAN is NOT applied to `permPriv` (it depends on PSTATE, not
   * on the entry): a TLB hit for an EL1 data access must fault when PAN = 1 and `permUser` has R or
   * W (or X with SCTLR_EL1.EPAN). `dirty` is true when the descriptor as now in memory has AP[2] = 0,
   * so a write needs no dirty-state update (false for a writable-clean DBM page: walk again on a
   * write). Faults: `level` is the lookup level; checks made before any table is read (TxSZ, VA
   * out of range, EPDn, TTBR base beyond the OA size) report level 0, as AArch64.S1Translate and
   * AArch64.S1Walk set fault.level = 0 for them, also when the walk would start at level -1 or 1-2.
   */
  walk(vaHi: number, vaLo: number, access: AccessKind, user: boolean, debug: boolean, out: WalkResult): void {
    // Every exit below writes every field of `out` (fault() for the faults), so the result is not
    // reset up front. vaHi / vaLo are only used with bitwise operators (which take them modulo
    // 2^32) except once, where vaLo is made unsigned.
    if (this.mmuOn !== true) {
      this.walkDisabled(vaHi, vaLo, access, out);
      return;
    }
    const fetch = access === 'exec';
    // D8.1: VA bit 55 selects TTBR0 (0) or TTBR1 (1), whatever TBI says.
    const upper = (vaHi & E.VA55_HI) !== 0;
    const r = upper ? this.r1 : this.r0;

    // AArch64.S1Translate: TxSZ out of range, then VA out of range, are level 0 Translation faults
    // (before any table is read; the pseudocode sets fault.level = 0 even when level -1 exists).
    if (r.txszFault) return fault(out, 'translation', 0, 0, 0);
    // AArch64.AddrTop: TBIn ignores bits 63:56, except for instruction fetches when TBIDn = 1.
    // The masks are int32 (HalfRegime), so the comparison needs no unsigned conversion.
    const hm = r.tbi && !(fetch && r.tbid) ? r.hiMaskTbi : r.hiMaskFull;
    const lm = r.loMask;
    if ((vaHi & hm) !== (upper ? hm : 0) || (vaLo & lm) !== (upper ? lm : 0)) {
      return fault(out, 'translation', 0, 0, 0);
    }
    // AArch64.S1Walk: EPDn = 1 is a level 0 Translation fault; a start table beyond the OA size a
    // level 0 Address size fault.
    if (!r.enabled) return fault(out, 'translation', 0, 0, 0);
    if (r.baseFault) return fault(out, 'address_size', 0, 0, 0);

    const u32 = this.u32;
    const physBounds = this.physBounds;
    const physBase = physBounds[0]!;
    const physEnd = physBounds[1]!;
    // `=== true` on the boolean fields: a comparison with a constant is all the optimiser needs to
    // branch, where a field read as such is converted by the generic ToBoolean at every use.
    const ee = this.ee === true;
    const stride = r.stride;
    const strideMask = r.strideMask;
    const hiAddrMask = r.hiAddrMask;
    const granLoMask = r.granLoMask;
    const hi52 = r.hi52;
    const oaLimit = r.oaLimit;
    const hpd = r.hpd === true;
    const entryAddrs = out.entryAddrs;
    const entryLo = out.entryLo;
    const entryHi = out.entryHi;
    const traceMax = entryAddrs.length;

    let level = r.startLevel;
    let shift = r.startShift;
    let idxMask = r.startIdxMask;
    let table = r.base;
    // Hierarchical controls gathered from table descriptors (AArch64.S1ApplyTablePerms): bit 0
    // APTable[0] (no EL0 access), bit 1 APTable[1] (no write), bit 2 UXNTable, bit 3 PXNTable.
    let tableBits = 0;
    let n = 0;
    let refs = 0;

    for (;;) {
      // AArch64.TTEntryAddress: the VA bits [shift + stride - 1 : shift] index the table.
      const idx =
        shift >= 32 ? (vaHi >>> (shift - 32)) & idxMask : ((vaLo >>> shift) | (vaHi << (32 - shift))) & idxMask;
      const addr = table + idx * 8;
      if (addr < physBase || addr + 8 > physEnd) {
        // No memory behind the descriptor's address (it is below the OA size, or the Address size
        // fault above would have been taken): the read gets an External abort, which the PE reports
        // as a synchronous External abort on translation table walk at this lookup level
        // (AArch64.S1Walk → FetchDescriptor; ESR_ELx DFSC 0b0101LL, 0b010011 at level -1). The
        // aborted read is recorded as an entry that returned nothing (0).
        if (n < traceMax) {
          entryAddrs[n] = addr;
          entryLo[n] = 0;
          entryHi[n] = 0;
        }
        return fault(out, 'external_abort', level, refs + 1, n + 1);
      }
      const off = addr - physBase;
      let lo: number;
      let hi: number;
      if (ee) {
        // SCTLR_EL1.EE = 1: descriptors are big-endian 64-bit values.
        hi = this.view.getUint32(off, false);
        lo = this.view.getUint32(off + 4, false);
      } else {
        const i = off / 4;
        lo = u32[i]!;
        hi = u32[i + 1]!;
      }
      refs++;
      if (n < traceMax) {
        entryAddrs[n] = addr;
        entryLo[n] = lo;
        entryHi[n] = hi;
      }
      n++;

      // AArch64.DecodeDescriptorType: bit 0 clear is invalid.
      if ((lo & E.VALID) === 0) return fault(out, 'translation', level, refs, n);
      if ((lo & E.TABLE) !== 0 && level < 3) {
        // Table descriptor (D8.3.1): next-level table address, then the next level's controls.
        let next = (hi & hiAddrMask) * E.TWO32 + ((lo & granLoMask) >>> 0);
        if (hi52 === 1) next += ((lo >>> 12) & 0xf) * E.TWO48;
        else if (hi52 === 2) next += ((lo >>> 8) & 3) * E.TWO50;
        // AArch64.S1Walk "Detect Address Size Fault by Descriptor Address": the table descriptor's level.
        if (next >= oaLimit) return fault(out, 'address_size', level, refs, n);
        // D8.4.2 hierarchical controls: bits 62:61 APTable, 60 UXNTable, 59 PXNTable (ignored with HPD).
        if (!hpd) tableBits |= (hi >>> 29) & 3 | (((hi >>> 28) & 1) << 2) | (((hi >>> 27) & 1) << 3);
        table = next;
        level++;
        shift -= stride;
        idxMask = strideMask;
        continue;
      }
      // A page at level 3 is 0b11; 0b01 at level 3 is reserved; a block (0b01) only where allowed.
      if (level === 3 ? (lo & E.TABLE) === 0 : level < r.blockMin) return fault(out, 'translation', level, refs, n);

      // Leaf: AArch64.LeafBase aligns the descriptor's address field to the block/page size.
      let hiA = hi & hiAddrMask;
      let loA = (lo & granLoMask) >>> 0;
      if (shift >= 32) {
        loA = 0;
        hiA = ((hiA >>> (shift - 32)) << (shift - 32)) >>> 0;
      } else {
        loA = ((loA >>> shift) << shift) >>> 0;
      }
      let pageBase = hiA * E.TWO32 + loA;
      if (hi52 === 1) pageBase += ((lo >>> 12) & 0xf) * E.TWO48;
      else if (hi52 === 2) pageBase += ((lo >>> 8) & 3) * E.TWO50;
      // AArch64.S1Walk "Detect Address Size Fault by final output".
      if (pageBase >= oaLimit) return fault(out, 'address_size', level, refs, n);
      // Check descriptor AF bit: an Access flag fault unless the hardware manages it (HA).
      const af = (lo & E.AF) !== 0;
      if (!af && this.ha !== true) return fault(out, 'access_flag', level, refs, n);

      // AArch64.S1ApplyOutputPerms: with HA and HD, DBM = 1 makes the effective AP[2] 0.
      const ap2 = (lo & E.AP2) !== 0;
      const dbm = this.hd === true && (hi & E.DBM_HI) !== 0;
      const ap1 = (lo & E.AP1) !== 0;
      // AArch64.S1DirectBasePermissions: AP[2:1], then APTable, then the execute-never bits.
      const ur = ap1 && (tableBits & 1) === 0;
      const pw = !(ap2 && !dbm) && (tableBits & 2) === 0;
      const uw = ur && pw;
      let ux = (hi & E.UXN_HI) === 0 && (tableBits & 4) === 0; // UXN, bit 54
      // EL0-writable locations are never executable at EL1 (implicit PXN).
      let px = (hi & E.PXN_HI) === 0 && (tableBits & 8) === 0 && !uw; // PXN, bit 53
      // SCTLR_EL1.WXN: writable at an EL means not executable at that EL.
      if (this.wxn === true) {
        if (uw) ux = false;
        if (pw) px = false;
      }
      // AArch64.S1CheckPermissions: an instruction fetch from Device memory is a Permission fault.
      const attrIndx = (lo >>> 2) & 7;
      const mairByte = attrIndx < 4 ? (this.mairLo >>> (attrIndx * 8)) & 0xff : (this.mairHi >>> ((attrIndx - 4) * 8)) & 0xff;
      if ((mairByte & 0xf0) === 0) {
        ux = false;
        px = false;
      }
      const permUser = (ur ? E.PERM_R : 0) | (uw ? E.PERM_W : 0) | (ux ? E.PERM_X : 0);
      const permPriv = E.PERM_R | (pw ? E.PERM_W : 0) | (px ? E.PERM_X : 0);

      let ok: boolean;
      if (fetch) ok = user ? ux : px;
      else if (user) ok = access === 'write' ? uw : ur;
      else {
        // PSTATE.PAN: EL1 data accesses to EL0-accessible locations fault (EPAN: EL0-executable too).
        const panHit = this.pan && (ur || uw || (this.epan && ux));
        ok = !panHit && (access === 'write' ? pw : true);
      }
      if (!ok) return fault(out, 'permission', level, refs, n);

      // D8.5: set AF, and on a write clear AP[2] of a DBM page, in one atomic update of the
      // descriptor read; never in a debug walk. The update is a compare-exchange of the whole
      // 64-bit descriptor against the value this walk decoded: if anything changed, the new value
      // is read and handled from scratch (validity, permissions, DBM) — a retry loop, each round
      // of which needs another agent's change. A 32-bit exchange of the low word would not do:
      // Linux's ptep_set_wrprotect of a writable-clean pte (pte_wrprotect, a 64-bit cmpxchg)
      // clears DBM (bit 51, the high word) and leaves the low word as it was, and clearing AP[2]
      // after that would make a write-protected page writable again. The bigint compare-exchange
      // runs only when a descriptor's AF or dirty state is first set, not on ordinary walks.
      if (!debug) {
        let newLo = lo | E.AF;
        if (dbm && ap2 && access === 'write') newLo &= ~E.AP2;
        newLo >>>= 0;
        if (newLo !== lo) {
          // In memory the u64 word is the descriptor's little-endian bytes; with EE = 1 its bytes
          // are big-endian, so the word holds both halves byte-reversed and swapped.
          const expected = ee ? (BigInt(bswap32(lo)) << 32n) | BigInt(bswap32(hi)) : (BigInt(hi) << 32n) | BigInt(lo);
          const replace = ee ? (BigInt(bswap32(newLo)) << 32n) | BigInt(bswap32(hi)) : (BigInt(hi) << 32n) | BigInt(newLo);
          if (Atomics.compareExchange(this.u64, off / 8, expected, replace) !== expected) {
            // Read the descriptor again at the same level: it replaces this entry of the trace.
            n--;
            continue;
          }
          lo = newLo;
        }
      }

      // 2^shift, in int32 arithmetic below 2^31 (shift is at most 48: level -1 with the 4KB granule).
      const pageSize = shift < 31 ? 1 << shift : (1 << (shift - 31)) * E.TWO31;
      const offset =
        shift >= 32 ? (vaHi & ((1 << (shift - 32)) - 1)) * E.TWO32 + (vaLo >>> 0) : (vaLo & ((1 << shift) - 1)) >>> 0;
      out.fault = null;
      out.code = 0;
      out.level = level;
      out.pageBase = pageBase;
      out.pageSize = pageSize;
      out.pa = pageBase + offset;
      out.permUser = permUser;
      out.permPriv = permPriv;
      out.global = (lo & E.NG) === 0;
      out.contiguous = (hi & E.CONTIG_HI) !== 0;
      out.leafLo = lo;
      out.leafHi = hi;
      out.leafAddr = addr;
      // The descriptor as now in memory permits writes without a dirty-state update: AP[2] = 0.
      out.dirty = (lo & E.AP2) === 0;
      out.pkey = 0;
      out.attrIndx = attrIndx;
      out.memRefs = refs;
      out.entries = n;
      return;
    }
  }

  /**
   * SCTLR_EL1.M = 0 (AArch64.S1DisabledOutput): the VA is the PA; a VA above PAMax (below the
   * top byte when TBI applies) is a level 0 Address size fault. Everything is readable, writable
   * and executable.
   */
  private walkDisabled(vaHi: number, vaLo: number, access: AccessKind, out: WalkResult): void {
    const upper = (vaHi & E.VA55_HI) !== 0;
    const r = upper ? this.r1 : this.r0;
    const top = r.tbi && !(access === 'exec' && r.tbid) ? 0x00ffffff : 0xffffffff;
    const paBitsHi = this.features.paMax - 32;
    const allowed = (2 ** paBitsHi - 1) >>> 0;
    if ((vaHi & top & ~allowed) >>> 0 !== 0) return fault(out, 'address_size', 0, 0, 0);
    const pageBase = (vaHi & allowed) * E.TWO32 + ((vaLo & 0xfffff000) >>> 0);
    out.fault = null;
    out.code = 0;
    out.level = 0;
    out.pageBase = pageBase;
    out.pa = pageBase + (vaLo & 0xfff);
    out.pageSize = 4096;
    out.permUser = E.PERM_R | E.PERM_W | E.PERM_X;
    out.permPriv = E.PERM_R | E.PERM_W | E.PERM_X;
    out.global = false;
    out.contiguous = false;
    out.leafLo = 0;
    out.leafHi = 0;
    out.leafAddr = 0;
    out.dirty = true;
    out.pkey = 0;
    out.attrIndx = 0;
    out.memRefs = 0;
    out.entries = 0;
  }

  translate(va: bigint, access: AccessKind, user: boolean, opts: TranslateOptions = {}): TranslateOutcome {
    if (va < 0n || va > U64) throw new RangeError(`virtual address ${va} is outside [0, 2^64)`);
    const out = this.scratch;
    this.walk(Number(va >> 32n), Number(va & 0xffffffffn), access, user, opts.debug === true, out);
    if (out.fault !== null) return { va, fault: { kind: out.fault, level: out.level, code: out.code } };
    if (!this.mmuOn) {
      const memattr = access === 'exec' ? (this.icache ? 'Normal WT' : 'Normal NC') : 'Device-nGnRnE';
      return { va, pa: BigInt(out.pa), level: 0, pageSize: out.pageSize, attrs: { memattr } };
    }
    const lo = out.leafLo;
    const hi = out.leafHi;
    const r = (Number(va >> 32n) & 0x00800000) !== 0 ? this.r1 : this.r0;
    // The effective attributes: the leaf's own, with the table descriptors' restrictions applied.
    let tableBits = 0;
    if (!r.hpd) {
      for (let k = 0; k < Math.min(out.entries, 6) - 1; k++) {
        const th = out.entryHi[k]!;
        tableBits |= (th >>> 29) & 3 | (((th >>> 28) & 1) << 2) | (((th >>> 27) & 1) << 3);
      }
    }
    let ap = (lo >>> 6) & 3;
    if (tableBits & 2) ap |= 2; // APTable[1]: read-only
    if (tableBits & 1) ap &= 2; // APTable[0]: no EL0 access
    const attrIndx = (lo >>> 2) & 7;
    const mair = (this.regs.get('mair_el1') ?? 0n) >> BigInt(attrIndx * 8);
    return {
      va,
      pa: BigInt(out.pa),
      level: out.level,
      pageSize: out.pageSize,
      attrs: {
        ap,
        uxn: (hi & 0x400000) !== 0 || (tableBits & 4) !== 0,
        pxn: (hi & 0x200000) !== 0 || (tableBits & 8) !== 0,
        af: (lo & 0x400) !== 0,
        sh: r.ds ? r.sh : (lo >>> 8) & 3,
        attr_indx: attrIndx,
        ng: (lo & 0x800) !== 0,
        contiguous: (hi & 0x100000) !== 0,
        dbm: (hi & 0x80000) !== 0,
        memattr: mairAttrName(Number(mair & 0xffn)),
      },
    };
  }
}

/**
 * Record a fault (ESR_ELx DFSC/IFSC with the lookup level) after `reads` descriptor reads and
 * `entries` trace entries; a faulting walk gives no translation, so every leaf field is cleared.
 */
function fault(out: WalkResult, kind: Arm64FaultKind, level: number, reads: number, entries: number): void {
  out.fault = kind;
  out.level = level;
  switch (kind) {
    case 'address_size':
      out.code = level < 0 ? E.FSC_ADDRESS_SIZE_LM1 : E.FSC_ADDRESS_SIZE | level;
      break;
    case 'translation':
      out.code = level < 0 ? E.FSC_TRANSLATION_LM1 : E.FSC_TRANSLATION | level;
      break;
    case 'access_flag':
      out.code = E.FSC_ACCESS_FLAG | level;
      break;
    case 'external_abort':
      out.code = level < 0 ? E.FSC_EXTERNAL_ABORT_WALK_LM1 : E.FSC_EXTERNAL_ABORT_WALK | level;
      break;
    default:
      out.code = E.FSC_PERMISSION | level;
  }
  out.clearLeaf();
  out.memRefs = reads;
  out.entries = entries;
}

function bswap32(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}

function checkName(name: string): Arm64MmuRegister {
  if (!(ARM64_MMU_REGISTERS as readonly string[]).includes(name)) {
    throw new RangeError(`arm64 MMU: unknown register ${name} (expected one of ${ARM64_MMU_REGISTERS.join(', ')})`);
  }
  return name as Arm64MmuRegister;
}

function checkValue(name: string, value: bigint): bigint {
  if (typeof value !== 'bigint' || value < 0n || value > U64) {
    throw new RangeError(`arm64 MMU: register ${name} = ${String(value)} is not a 64-bit unsigned value`);
  }
  return value;
}

export function createArm64Mmu(mem: PhysMem, regs: Record<string, bigint>, opts?: Arm64MmuOptions): Mmu {
  return new Arm64Mmu(mem, regs, opts);
}
