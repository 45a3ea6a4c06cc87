/**
 * The x86-64 hardware walk: what the processor does with a linear address on a TLB miss, written
 * from the Intel SDM Vol. 3A chapter 4, apart from the kernel's view in linux.ts / fields.ts on
 * purpose (DESIGN.md, Fidelity: "two views of one memory").
 *
 *  - §4.5   4-level and 5-level paging: the structures, the indices, the leaf levels.
 *  - §4.6   access rights: R/W and U/S over all levels, XD, CR0.WP, SMEP, SMAP (RFLAGS.AC), PKRU.
 *  - §4.7   page-fault exceptions and the error code.
 *  - §4.8   accessed and dirty flags.
 *  - §4.10.1 PCID: with CR4.PCIDE = 1, CR3[11:0] is the PCID and not PWT/PCD.
 *
 * Scope: IA-32e paging only (CR0.PG = 1, CR4.PAE = 1, IA32_EFER.LME = 1); 32-bit and PAE paging
 * are not modelled and such a register state is refused with a RangeError naming the register.
 * Not modelled: CR4.PKS / IA32_PKRS (supervisor protection keys), shadow-stack accesses, linear
 * address masking (LAM), HLAT, implicit supervisor accesses (every access is explicit, so
 * RFLAGS.AC always applies under SMAP), CPUs without 1-GByte pages (PDPTE.PS is always a leaf).
 *
 * Hot path: walk() reads the regime from fields set by setRegister (numbers, never BigInt),
 * keeps everything in locals and allocates nothing.
 */
import type { PhysMem } from '../../mem/physmem';
import {
  PERM_R,
  PERM_W,
  PERM_X,
  WalkResult,
  type AccessKind,
  type Mmu,
  type TranslateOptions,
  type TranslateOutcome,
  type X86FaultKind,
} from '../mmu-types';

/**
 * The walk's constants as a const enum, so that the bundler writes each value into the code that
 * uses it: a module-level `const` becomes a `var`, i.e. a context load and a type check at every
 * use in optimised code, and these masks are used several times per entry walked (the same pattern
 * as src/arch/x86_64/linux.ts). Masks with bit 31 set are written as their int32 value (~0xfff is
 * 0xffff_f000): they are only ever used with bitwise operators, and a small integer constant needs
 * no conversion where 0xffff_f000 (a heap number) would. The named exports keep the values for
 * other modules.
 */
const enum E {
  // #PF error-code bits, SDM Vol.3A §4.7 (Figure 4-12).
  PF_P = 0x1,
  PF_WR = 0x2,
  PF_US = 0x4,
  PF_RSVD = 0x8,
  PF_ID = 0x10,
  PF_PK = 0x20,
  // Paging-structure entry bits in the low word (SDM Tables 4-15 … 4-20).
  P = 0x1,
  RW = 0x2,
  US = 0x4,
  PWT = 0x8,
  PCD = 0x10,
  A = 0x20,
  D = 0x40,
  PS = 0x80, // PS in PDPTE/PDE; PAT in a PTE
  G = 0x100,
  PAT_LARGE = 0x1000, // PAT of a 2-MByte or 1-GByte leaf
  /** Bits 20:13 of a PDE that maps a 2-MByte page are reserved (Table 4-18). */
  RSVD_2M_LO = 0x001f_e000,
  /** Bits 29:13 of a PDPTE that maps a 1-GByte page are reserved (Table 4-16). */
  RSVD_1G_LO = 0x3fff_e000,
  /** Address bits 31:12 / 31:21 / 31:30 of the low word (0xffff_f000, 0xffe0_0000, 0xc000_0000). */
  ADDR_4K_LO = ~0xfff,
  ADDR_2M_LO = ~0x1f_ffff,
  ADDR_1G_LO = ~0x3fff_ffff,
  /** XD, bit 63: bit 31 of the high word (0x8000_0000). */
  XD_HI = ~0x7fff_ffff,
  TWO32 = 4294967296,
  /** 2^30: a high-word address bit count of u32 words (address / 4 = hi * 2^32 / 4 + lo / 4). */
  WORDS_PER_HI = 1073741824,
  // mmu-types.ts PERM_R / PERM_W / PERM_X (checked equal below, at load).
  PERM_R = 1,
  PERM_W = 2,
  PERM_X = 4,
}
if (E.PERM_R !== PERM_R || E.PERM_W !== PERM_W || E.PERM_X !== PERM_X) {
  throw new Error('x86_64/mmu.ts: E.PERM_* differ from mmu-types.ts PERM_*');
}

/** #PF error-code bits, SDM Vol.3A §4.7 (Figure 4-12). */
export const PF_P: number = E.PF_P;
export const PF_WR: number = E.PF_WR;
export const PF_US: number = E.PF_US;
export const PF_RSVD: number = E.PF_RSVD;
export const PF_ID: number = E.PF_ID;
export const PF_PK: number = E.PF_PK;

/** Bits of X86Mmu.accessState: CR0.WP, EFER.NXE, CR4.SMEP, CR4.SMAP, CR4.PKE, RFLAGS.AC, CR4.PGE. */
export const ACCESS_WP = 0x1;
export const ACCESS_NXE = 0x2;
export const ACCESS_SMEP = 0x4;
export const ACCESS_SMAP = 0x8;
export const ACCESS_PKE = 0x10;
export const ACCESS_AC = 0x20;
export const ACCESS_PGE = 0x40;

// Control-register bits (SDM Vol.3A §2.5, §2.2.1).
const CR0_WP = 1n << 16n;
const CR0_PG = 1n << 31n;
const CR4_PAE = 1n << 5n;
const CR4_PGE = 1n << 7n;
const CR4_LA57 = 1n << 12n;
const CR4_PCIDE = 1n << 17n;
const CR4_SMEP = 1n << 20n;
const CR4_SMAP = 1n << 21n;
const CR4_PKE = 1n << 22n;
const EFER_LME = 1n << 8n;
const EFER_NXE = 1n << 11n;
const RFLAGS_AC = 1n << 18n;

const REQUIRED = ['cr0', 'cr3', 'cr4', 'efer'] as const;
const REGISTER_NAMES = new Set(['cr0', 'cr3', 'cr4', 'efer', 'pkru', 'rflags']);
const U64_MAX = (1n << 64n) - 1n;

function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

/**
 * An x86-64 MMU over one physical memory. Registers as in machine.json: cr0, cr3, cr4, efer,
 * pkru (default 0), rflags (default 0x2, bit 1 always reads 1).
 */
export class X86Mmu implements Mmu {
  readonly arch = 'x86_64' as const;
  readonly mem: PhysMem;
  /** CPUID.80000008H:EAX[7:0]: physical-address width; address bits at and above it are reserved. */
  readonly maxPhyAddr: number;

  private readonly regs = new Map<string, bigint>();
  private readonly u32: Uint32Array;
  private readonly physBase: number;
  /** physBase / 4: physical memory's first u32 word index. */
  private readonly physBaseWords: number;
  /** Mask of the address bits 51:32 below MAXPHYADDR, in the high word. */
  private readonly addrHi: number;
  /** Address bits 51:MAXPHYADDR in the high word: reserved in every entry (§4.5.4, Tables 4-15…4-20). */
  private readonly rsvdAddrHi: number;
  private readonly scratch = new WalkResult();

  // The regime, re-derived by setRegister (derive()).
  private levels = 4;
  /** CR3's root table address / 4 (a u32 word index of physical memory). */
  private rootWords = 0;
  private pcid = 0;
  private wp = false;
  private nxe = false;
  private smep = false;
  private smap = false;
  private pke = false;
  private pge = false;
  private ac = false;
  private pkru = 0;
  /** Reserved bits of the high word of every entry: 51:MAXPHYADDR, and XD (bit 63) when NXE = 0. */
  private rsvdHi = 0;

  constructor(mem: PhysMem, regs: Record<string, bigint>, opts: { maxPhyAddr?: number } = {}) {
    const m = opts.maxPhyAddr ?? 52;
    // 64-bit processors report MAXPHYADDR 36…52 (SDM Vol.3A §4.1.4).
    if (!Number.isInteger(m) || m < 36 || m > 52) {
      throw new RangeError(`maxPhyAddr ${m} is out of range: expected an integer 36..52`);
    }
    this.mem = mem;
    this.maxPhyAddr = m;
    this.u32 = mem.u32;
    this.physBase = mem.physBase;
    this.physBaseWords = mem.physBase / 4;
    this.addrHi = (2 ** (m - 32) - 1) >>> 0;
    this.rsvdHi = 0;
    this.rsvdAddrHi = (0x000f_ffff & ~this.addrHi) >>> 0;

    for (const name of REQUIRED) {
      if (!(name in regs) || regs[name] === undefined) {
        throw new RangeError(`x86-64 MMU: register ${name} is missing (required: cr0, cr3, cr4, efer)`);
      }
    }
    const init = new Map<string, bigint>([
      ['pkru', 0n],
      ['rflags', 0x2n],
    ]);
    for (const [name, value] of Object.entries(regs)) {
      checkRegister(name, value);
      init.set(name, value);
    }
    this.validate(init);
    for (const [k, v] of init) this.regs.set(k, v);
    this.derive();
  }

  setRegister(name: string, value: bigint): void {
    checkRegister(name, value);
    const next = new Map(this.regs);
    next.set(name, value);
    this.validate(next); // a refused value leaves every register as it was
    this.regs.set(name, value);
    this.derive();
  }

  getRegister(name: string): bigint {
    const v = this.regs.get(name);
    if (v === undefined) throw new RangeError(`x86-64 MMU: no register ${name} (known: ${[...REGISTER_NAMES].join(', ')})`);
    return v;
  }

  /**
   * IA-32e paging is in use iff CR0.PG = 1, CR4.PAE = 1 and IA32_EFER.LME = 1 (SDM Vol.3A §4.1.1,
   * Table 4-1). Other paging modes are not modelled, so those states are refused.
   */
  private validate(r: Map<string, bigint>): void {
    const cr0 = r.get('cr0')!;
    const cr4 = r.get('cr4')!;
    const efer = r.get('efer')!;
    if ((cr0 & CR0_PG) === 0n) {
      throw new RangeError(`x86-64 MMU: cr0 ${hex(cr0)} has PG (bit 31) = 0: paging is disabled; only 4-level and 5-level paging are modelled`);
    }
    if ((cr4 & CR4_PAE) === 0n) {
      throw new RangeError(`x86-64 MMU: cr4 ${hex(cr4)} has PAE (bit 5) = 0: 32-bit paging is not modelled (4-level/5-level paging need PAE = 1)`);
    }
    if ((efer & EFER_LME) === 0n) {
      throw new RangeError(`x86-64 MMU: efer ${hex(efer)} has LME (bit 8) = 0: PAE paging is not modelled (4-level/5-level paging need LME = 1)`);
    }
    const pkru = r.get('pkru')!;
    if (pkru > 0xffff_ffffn) throw new RangeError(`x86-64 MMU: pkru ${hex(pkru)} is wider than 32 bits`);
  }

  /** Re-derive the regime from the registers: done once per register write, never per walk. */
  private derive(): void {
    const cr0 = this.regs.get('cr0')!;
    const cr3 = this.regs.get('cr3')!;
    const cr4 = this.regs.get('cr4')!;
    const efer = this.regs.get('efer')!;
    this.levels = (cr4 & CR4_LA57) !== 0n ? 5 : 4; // §4.5.1: CR4.LA57 selects 5-level paging
    // §4.5.2: the root table is CR3[MAXPHYADDR-1:12]; bits 63:MAXPHYADDR are not an address.
    const rootMask = ((1n << BigInt(this.maxPhyAddr)) - 1n) & ~0xfffn;
    this.rootWords = Number(cr3 & rootMask) / 4;
    // §4.10.1: with CR4.PCIDE = 1, CR3[11:0] is the current PCID (0 otherwise).
    this.pcid = (cr4 & CR4_PCIDE) !== 0n ? Number(cr3 & 0xfffn) : 0;
    this.wp = (cr0 & CR0_WP) !== 0n;
    this.nxe = (efer & EFER_NXE) !== 0n;
    this.smep = (cr4 & CR4_SMEP) !== 0n;
    this.smap = (cr4 & CR4_SMAP) !== 0n;
    this.pke = (cr4 & CR4_PKE) !== 0n;
    this.pge = (cr4 & CR4_PGE) !== 0n;
    this.ac = (this.regs.get('rflags')! & RFLAGS_AC) !== 0n;
    this.pkru = Number(this.regs.get('pkru')!);
    // §4.5.4 / Table 4-15…4-20: XD (bit 63) is reserved when IA32_EFER.NXE = 0.
    // Kept as an int32 (bit 31 negative): it is only ANDed with an entry's high word.
    this.rsvdHi = this.rsvdAddrHi | (this.nxe ? 0 : E.XD_HI);
  }

  /** The current PCID (CR3[11:0] with CR4.PCIDE = 1, else 0): the TLB tags entries with it. */
  get currentPcid(): number {
    return this.pcid;
  }

  /**
   * The control bits a TLB hit must re-check, as numbers (no BigInt on the hot path): ACCESS_*
   * flags below, and PKRU. They change only through setRegister.
   */
  get accessState(): number {
    return (
      (this.wp ? ACCESS_WP : 0) |
      (this.nxe ? ACCESS_NXE : 0) |
      (this.smep ? ACCESS_SMEP : 0) |
      (this.smap ? ACCESS_SMAP : 0) |
      (this.pke ? ACCESS_PKE : 0) |
      (this.ac ? ACCESS_AC : 0) |
      (this.pge ? ACCESS_PGE : 0)
    );
  }

  get pkruBits(): number {
    return this.pkru;
  }

  /** 4 or 5: the paging levels CR4.LA57 selects. */
  get pagingLevels(): number {
    return this.levels;
  }

  /**
   * The hardware walk (SDM Vol.3A §4.5) for one access. What it leaves in `out`:
   *  - fault / code / level: null, 0 and the leaf's level on success; otherwise the fault kind, the
   *    #PF error code (§4.7) and the level of the entry that faulted (protection faults: the leaf's
   *    level; non-canonical: the top level, code 0 — a #GP on hardware, not a #PF).
   *  - pa, pageBase, pageSize, leafLo/leafHi/leafAddr, permUser, permPriv, global, dirty, pkey:
   *    filled when a leaf was reached, i.e. on success and on protection faults (the translation
   *    exists, the rights deny it); 0/false after not-present, reserved and non-canonical faults.
   *  - permUser: the rights the paging structures give a user-mode access, raw: 0 unless U/S = 1 at
   *    every level (a supervisor-mode address); otherwise PERM_R, plus PERM_W if R/W = 1 at every
   *    level, plus PERM_X unless (EFER.NXE = 1 and XD = 1 at some level). PKRU is not applied.
   *  - permPriv: the rights for a supervisor-mode access with CR0.WP applied and nothing else:
   *    PERM_R; PERM_W if R/W = 1 at every level or CR0.WP = 0; PERM_X as for permUser. SMEP, SMAP
   *    and PKRU are NOT applied: a TLB hit re-checks them (a user-mode address is permUser !== 0;
   *    the key is `pkey`; SMAP needs RFLAGS.AC at the time of the access).
   *  - global: G (bit 8) of the leaf AND CR4.PGE (§4.10.2.4: G only counts with PGE).
   *  - dirty: D of the leaf after this walk's update (a TLB hit may write without a walk only then).
   *  - pkey: leaf bits 62:59 when CR4.PKE = 1, else 0. attrIndx: 0. contiguous: false.
   *  - leafLo/leafHi: the leaf descriptor with this walk's A/D update applied; leafAddr its address.
   *  - entryAddrs/entryLo/entryHi[0..entries-1]: each descriptor read, top level first, with this
   *    walk's A/D update applied to entryLo; memRefs = entries = descriptors read.
   */
  walk(vaHi: number, vaLo: number, access: AccessKind, user: boolean, debug: boolean, out: WalkResult): void {
    // Every exit below writes every field of `out` (noLeaf for the faults before a leaf), so the
    // result is not reset up front.
    const top = this.levels;
    // §3.3.7.1 / §4.5: a linear address is canonical when bits 63:47 (63:56 with LA57) are all
    // equal. The arithmetic shift leaves 0 or -1 exactly then. A non-canonical access is a #GP
    // (or #SS) on hardware, reported here as a fault value with code 0.
    const sign = top === 5 ? vaHi >> 24 : vaHi >> 15;
    if (sign !== 0 && sign !== -1) {
      noLeaf(out, 'non_canonical', 0, top, 0);
      return;
    }

    const write = access === 'write';
    const fetch = access === 'exec';
    // `=== true` on the boolean fields: a comparison with a constant is all the optimiser needs to
    // branch, where a field read as such is converted by the generic ToBoolean at every use.
    const nxe = this.nxe === true;
    const smep = this.smep === true;
    // §4.7: W/R and U/S describe the access; I/D is set for fetches when EFER.NXE = 1 or
    // CR4.SMEP = 1 (PAE is always 1 in IA-32e paging).
    const accessCode = (write ? E.PF_WR : 0) | (user ? E.PF_US : 0) | (fetch && (nxe || smep) ? E.PF_ID : 0);

    // Table and entry positions are u32 word indices into the buffer: for tables below 4 GiB and a
    // phys_base below 2^33 they stay small integers, so the loop runs on int32 arithmetic.
    const u32 = this.u32;
    const physBase = this.physBase;
    const baseW = this.physBaseWords;
    const lenW = u32.length;
    const addrHi = this.addrHi;
    const rsvdHi = this.rsvdHi;
    const entryAddrs = out.entryAddrs;
    const entryLo = out.entryLo;
    const entryHi = out.entryHi;

    let tw = this.rootWords; // the current table, as a word index of physical memory (address / 4)
    let rwAll: number = E.RW; // R/W ANDed over all levels (§4.6.1)
    let usAll: number = E.US; // U/S ANDed over all levels
    let xdAny = 0; // XD ORed over all levels (meaningful only with NXE = 1)
    let aAll: number = E.A; // A ANDed over all levels: whether §4.8 has anything left to set
    let level = top;
    // The lowest VA bit of this level's 9-bit index (§4.5, Figures 4-8 … 4-11): 12 + 9 * (level - 1),
    // i.e. PML5 56:48, PML4 47:39, PDPT 38:30, PD 29:21, PT 20:12.
    let shift = 9 * top + 3;
    let lo = 0;
    let hi = 0;
    let ew = 0; // word index in u32 of the current entry
    let n = 0;
    for (;;) {
      // Bits above 31 come from vaHi; the PDPT index (38:30) straddles the two halves.
      const idx = shift >= 32 ? (vaHi >>> (shift - 32)) & 511 : ((vaLo >>> shift) | (vaHi << (32 - shift))) & 511;
      ew = tw + idx * 2 - baseW;
      // A paging structure outside emulated memory. The SDM defines no fault for it: the read goes
      // to the platform, and on a PC a read of unbacked physical memory returns all-ones. An
      // all-ones entry is present (P = 1) with PS = 1, which is reserved in a PML5E/PML4E, and with
      // bits 29:13 (PDPTE) / 20:13 (PDE) set, reserved too (Tables 4-14 … 4-18); in a PTE bits
      // 51:MAXPHYADDR are reserved when MAXPHYADDR < 52, and XD when EFER.NXE = 0 (Table 4-20).
      // So the walk reports that #PF: 'reserved' at the level whose entry could not be read, code
      // P | RSVD plus the access bits (W/R, U/S, I/D). The one place this is a choice: a PTE read
      // with MAXPHYADDR = 52 and NXE = 1, where all-ones has no reserved bit and would map the page
      // 0xf_ffff_ffff_f000 — memory that does not exist either; mmulab reports the same fault
      // there, so a translation never leads through a table that is not in memory. The read is
      // recorded as an entry with the all-ones value it would have returned.
      if (ew < 0 || ew + 2 > lenW) {
        entryAddrs[n] = (ew + baseW) * 4;
        entryLo[n] = 0xffff_ffff;
        entryHi[n] = 0xffff_ffff;
        noLeaf(out, 'reserved', accessCode | E.PF_P | E.PF_RSVD, level, n + 1);
        return;
      }
      lo = u32[ew]!;
      hi = u32[ew + 1]!;
      entryAddrs[n] = (ew + baseW) * 4;
      entryLo[n] = lo;
      entryHi[n] = hi;
      n++;
      // §4.7: P = 0 is a not-present fault; no other bit of the entry is looked at (RSVD stays 0).
      if ((lo & E.P) === 0) {
        noLeaf(out, 'not_present', accessCode, level, n);
        return;
      }
      // §4.5.4 reserved bits: address bits 51:MAXPHYADDR, XD without NXE, PS in a PML5E/PML4E,
      // bits 29:13 of a 1-GByte PDPTE and 20:13 of a 2-MByte PDE.
      const ps = (lo & E.PS) !== 0;
      if (
        (hi & rsvdHi) !== 0 ||
        (ps && (level >= 4 || (level === 3 && (lo & E.RSVD_1G_LO) !== 0) || (level === 2 && (lo & E.RSVD_2M_LO) !== 0)))
      ) {
        noLeaf(out, 'reserved', accessCode | E.PF_P | E.PF_RSVD, level, n);
        return;
      }
      rwAll &= lo;
      usAll &= lo;
      aAll &= lo;
      xdAny |= hi;
      // A PTE always maps a page; PS = 1 makes a PDPTE (1 GByte) or PDE (2 MBytes) a leaf. CR4.PSE
      // is ignored in IA-32e paging (§4.5.4: only 32-bit paging consults it).
      if (level === 1 || ps) break;
      const th = hi & addrHi;
      tw = th === 0 ? (lo & E.ADDR_4K_LO) >>> 2 : th * E.WORDS_PER_HI + ((lo & E.ADDR_4K_LO) >>> 2);
      level--;
      shift -= 9;
    }

    // The leaf: page base, size and offset (§4.5.4, Figures 4-8 … 4-10).
    let pageBase: number;
    let pageSize: number;
    let offset: number;
    if (level === 1) {
      pageBase = (hi & addrHi) * E.TWO32 + ((lo & E.ADDR_4K_LO) >>> 0);
      pageSize = 4096;
      offset = vaLo & 0xfff;
    } else if (level === 2) {
      pageBase = (hi & addrHi) * E.TWO32 + ((lo & E.ADDR_2M_LO) >>> 0);
      pageSize = 0x20_0000;
      offset = vaLo & 0x1f_ffff;
    } else {
      pageBase = (hi & addrHi) * E.TWO32 + ((lo & E.ADDR_1G_LO) >>> 0);
      pageSize = 0x4000_0000;
      offset = vaLo & 0x3fff_ffff;
    }
    const userAddr = usAll !== 0; // a user-mode address: U/S = 1 at every level (§4.6)
    const writable = rwAll !== 0;
    const noExec = nxe && (xdAny & E.XD_HI) !== 0;
    const wp = this.wp === true;
    const pke = this.pke === true;
    const key = (hi >>> 27) & 0xf; // protection key: bits 62:59 of the leaf (§4.6.2)

    out.level = level;
    out.pageBase = pageBase;
    out.pageSize = pageSize;
    out.pa = pageBase + offset;
    out.leafAddr = (ew + baseW) * 4;
    out.leafHi = hi;
    out.permUser = userAddr ? E.PERM_R | (writable ? E.PERM_W : 0) | (noExec ? 0 : E.PERM_X) : 0;
    out.permPriv = E.PERM_R | (writable || !wp ? E.PERM_W : 0) | (noExec ? 0 : E.PERM_X);
    out.contiguous = false;
    out.pkey = pke ? key : 0;
    out.attrIndx = 0;
    out.memRefs = n;
    out.entries = n;

    // §4.6.1 access rights.
    let denied: boolean;
    if (user) {
      // User-mode accesses: only user-mode addresses; writes need R/W = 1 everywhere (CR0.WP
      // plays no part); fetches need XD = 0 everywhere when NXE = 1.
      denied = !userAddr || (write && !writable) || (fetch && noExec);
    } else if (fetch) {
      // Supervisor fetches: XD as above; SMEP forbids fetching from any user-mode address.
      denied = noExec || (smep && userAddr);
    } else {
      // Supervisor data accesses: SMAP forbids user-mode addresses unless RFLAGS.AC = 1 (every
      // access is modelled as explicit); writes to read-only addresses fault only with CR0.WP = 1.
      denied = (this.smap === true && userAddr && this.ac !== true) || (write && !writable && wp);
    }
    // §4.6.2 protection keys: with CR4.PKE = 1, data accesses to user-mode addresses consult
    // PKRU for the leaf's key: AD forbids every data access, WD forbids writes by user mode and,
    // with CR0.WP = 1, by supervisor mode. Fetches ignore PKRU. PK is reported whenever PKRU
    // forbids the access, even if another rule forbids it too (§4.7).
    let pk = false;
    if (pke && userAddr && !fetch) {
      const bits = this.pkru >>> (key * 2);
      pk = (bits & 1) !== 0 || (write && (bits & 2) !== 0 && (user || wp));
    }
    if (denied || pk) {
      out.fault = 'protection';
      out.code = accessCode | E.PF_P | (pk ? E.PF_PK : 0);
      out.leafLo = lo;
      out.dirty = (lo & E.D) !== 0;
      out.global = this.pge === true && (lo & E.G) !== 0;
      return;
    }

    // §4.8: A is set in every paging-structure entry used and in the leaf, D in the leaf on a
    // write, only when not already set. The processor does it with a locked read-modify-write of
    // the entry as it is in memory at that moment (§9.1.2.1, automatic locking), and only while
    // it is still the entry the translation used: it never writes A/D into an entry software has
    // cleared in the meantime (Linux relies on it: ptep_get_and_clear is one xchg of the entry).
    // So each update is a compare-exchange of the low word (P, R/W, A, D and the low address bits
    // live there) against the value read. If it fails because another CPU set A or D, retry on
    // the new value; if anything else changed — P cleared, the entry replaced or write-protected —
    // walk again from the top, so that the access, its faults and its A/D all go by the entry now
    // in memory (a re-walk finds P = 0 and reports the not-present fault). An Atomics.or here
    // would turn a cleared entry into a non-zero one, or set D in a new entry for a write that
    // went through the old one. Each re-walk needs another agent's change of an entry in between.
    // mmulab sets A/D only for an access that passed the checks above (the SDM lets a processor set
    // A in upper levels of an access that faults; this model does not); an upper entry's A set
    // before a re-walk stays set, as on the hardware. A debugger walk changes nothing.
    if (!debug && (aAll === 0 || (write && (lo & E.D) === 0))) {
      const leafSet: number = write ? E.A | E.D : E.A;
      for (let i = 0; i < n; i++) {
        const want: number = i === n - 1 ? leafSet : E.A;
        const w = (entryAddrs[i]! - physBase) / 4;
        const used = entryLo[i]!;
        let cur = used;
        while ((cur & want) !== want) {
          const seen = Atomics.compareExchange(u32, w, cur, (cur | want) >>> 0);
          if (seen === cur) {
            cur = (cur | want) >>> 0;
            break;
          }
          cur = seen;
          if (((cur ^ used) & ~(E.A | E.D)) !== 0) return this.walk(vaHi, vaLo, access, user, debug, out);
        }
        entryLo[i] = cur;
      }
      lo = entryLo[n - 1]!;
    }
    out.fault = null;
    out.code = 0;
    out.leafLo = lo;
    out.dirty = (lo & E.D) !== 0;
    out.global = this.pge === true && (lo & E.G) !== 0;
  }

  translate(va: bigint, access: AccessKind, user: boolean, opts: TranslateOptions = {}): TranslateOutcome {
    if (va < 0n || va > U64_MAX) throw new RangeError(`virtual address ${va < 0n ? '-' : ''}0x${(va < 0n ? -va : va).toString(16)} is outside 0..2^64-1`);
    if (access !== 'read' && access !== 'write' && access !== 'exec') {
      throw new RangeError(`access ${String(access)}: expected read, write or exec`);
    }
    const out = this.scratch;
    this.walk(Number(va >> 32n), Number(va & 0xffff_ffffn), access, user, opts.debug === true, out);
    if (out.fault !== null) return { va, fault: { kind: out.fault, level: out.level, code: out.code } };
    const lo = out.leafLo;
    const hi = out.leafHi;
    return {
      va,
      pa: BigInt(out.pa),
      level: out.level,
      pageSize: out.pageSize,
      // Effective R/W, U/S, XD combined over the levels (§4.6.1: nx only with EFER.NXE = 1); the
      // others are the leaf's own bits. pkey is the raw field 62:59, as the dump shows it.
      attrs: {
        rw: this.allLevelsWritable(out),
        us: out.permUser !== 0,
        nx: (out.permPriv & E.PERM_X) === 0,
        g: (lo & E.G) !== 0,
        a: (lo & E.A) !== 0,
        d: (lo & E.D) !== 0,
        pwt: (lo & E.PWT) !== 0,
        pcd: (lo & E.PCD) !== 0,
        pat: (out.level === 1 ? lo & E.PS : lo & E.PAT_LARGE) !== 0,
        pkey: (hi >>> 27) & 0xf,
      },
    };
  }

  /** R/W = 1 at every level read (permUser is 0 for a supervisor-mode address, so it cannot tell). */
  private allLevelsWritable(out: WalkResult): boolean {
    for (let i = 0; i < out.entries; i++) if ((out.entryLo[i]! & E.RW) === 0) return false;
    return true;
  }
}

/** A fault before a leaf was reached (or without one): no translation, every leaf field cleared. */
function noLeaf(out: WalkResult, kind: X86FaultKind, code: number, level: number, reads: number): void {
  out.fault = kind;
  out.code = code;
  out.level = level;
  out.clearLeaf();
  out.memRefs = reads;
  out.entries = reads;
}

function checkRegister(name: string, value: bigint): void {
  if (!REGISTER_NAMES.has(name)) {
    throw new RangeError(`x86-64 MMU: no register ${name} (known: ${[...REGISTER_NAMES].join(', ')})`);
  }
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
    throw new RangeError(`x86-64 MMU: register ${name} = ${String(value)}: expected a bigint 0..2^64-1`);
  }
}

/** The x86-64 MMU (IA-32e 4-level / 5-level paging) over `mem`, configured by `regs`. */
export function createX86Mmu(mem: PhysMem, regs: Record<string, bigint>, opts?: { maxPhyAddr?: number }): Mmu {
  return new X86Mmu(mem, regs, opts);
}
