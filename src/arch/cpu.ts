/**
 * One CPU's address translation: an Mmu (the hardware walk), its TLB (tlb.ts) and optional
 * paging-structure / walk caches, with the statistics an architecture simulator reports.
 *
 * access() is the hot path: TLB lookup → on a hit, the permission re-check from the cached entry
 * (no walk); on a miss, the walk and a TLB fill. Invalidation is by the instructions the ISAs
 * name (SDM Vol.3A 4.10.4; Arm ARM D8.13 / D8.16 "TLB maintenance instructions"), so a kernel model
 * that forgets a flush keeps using the stale translation, as hardware would.
 *
 * The paging-structure caches (SDM 4.10.3) and ARM walk caches only count: the walk is always done
 * in full for correctness, and the caches say how many of its descriptor reads a real core would
 * have skipped (memory references per walk, "effective"). A model of stale cached table entries
 * (a walk that starts from an out-of-date upper-level entry) is out of scope.
 */
import type { PhysMem } from '../mem/physmem';
import { PERM_R, PERM_W, PERM_X, WalkResult, isFault, type AccessKind, type FaultKind, type Mmu, type TranslateOptions, type TranslateOutcome } from './mmu-types';
import {
  INV_ALL_ASIDS,
  INV_ASID_NON_GLOBAL,
  INV_ASID_OR_GLOBAL,
  TLBF_DIRTY,
  TLBF_RW,
  TLBF_US,
  TLBF_XD,
  Tlb,
  defaultTlbConfig,
  POW2,
  offsetOf,
  parseTlbSpec,
  vpnOf,
  type TlbArrayStats,
  type TlbConfig,
} from './tlb';
import { createX86Mmu } from './x86_64/mmu';
import { createArm64Mmu } from './arm64/mmu';

export type CpuArch = 'x86_64' | 'arm64';

/** Entries per cached level: the hardware level number of the table entry it holds. */
export interface WalkCacheConfig {
  readonly levels: readonly { readonly level: number; readonly entries: number }[];
}

/**
 * Intel's paging-structure caches (SDM 4.10.3.1): PML5E, PML4E, PDPTE and PDE caches. Intel does
 * not document their sizes; these are model parameters of the size published measurements of
 * recent cores report (a few upper-level entries, a few dozen PDEs).
 */
export const X86_WALK_CACHE: WalkCacheConfig = {
  levels: [
    { level: 5, entries: 2 },
    { level: 4, entries: 4 },
    { level: 3, entries: 8 },
    { level: 2, entries: 32 },
  ],
};
/** ARM walk caches of table descriptors at lookup levels -1…2 (Arm ARM D8.13.1 allows caching them); sizes are model parameters. */
export const ARM64_WALK_CACHE: WalkCacheConfig = {
  levels: [
    { level: -1, entries: 2 },
    { level: 0, entries: 4 },
    { level: 1, entries: 8 },
    { level: 2, entries: 32 },
  ],
};

export interface CpuOptions {
  /** The TLB: a config, a spec string (tlb.ts parseTlbSpec), or the architecture's default. */
  readonly tlb?: TlbConfig | string;
  /** Paging-structure / walk caches: true for the architecture's default sizes. Off by default. */
  readonly walkCache?: boolean | WalkCacheConfig;
  /** x86-64 CPUID MAXPHYADDR. */
  readonly maxPhyAddr?: number;
  /** ARM64 ID registers. */
  readonly idAa64mmfr0?: bigint;
  readonly idAa64mmfr1?: bigint;
  readonly idAa64mmfr2?: bigint;
}

/** What replays and the `trace` command print. */
export interface CpuStatistics {
  readonly arch: CpuArch;
  readonly tlb: string;
  readonly walkCache: boolean;
  readonly accesses: number;
  /** TLB hits (L1 + L2), including hits that then fault on the re-check. */
  readonly hits: number;
  readonly l1Hits: number;
  readonly l2Hits: number;
  readonly misses: number;
  readonly hitRate: number;
  /** Hardware walks: one per miss, plus one per write that hit a clean entry (dirtyWalks). */
  readonly walks: number;
  readonly dirtyWalks: number;
  /** Walks by the hardware level of the table holding the leaf or the fault. */
  readonly walksByLevel: Readonly<Record<string, number>>;
  readonly faults: number;
  readonly faultsByKind: Readonly<Record<string, number>>;
  /** Faults raised from a TLB entry's cached rights, without a walk. */
  readonly faultsFromTlb: number;
  /** TLB fills by the size an entry covers (bytes; an ARM64 contiguous range counts as its whole size). */
  readonly fillsByPageSize: Readonly<Record<string, number>>;
  /** Translations no TLB array could hold (a size the configuration has no array for). */
  readonly uncachedFills: number;
  readonly walkCacheHitsByLevel: Readonly<Record<string, number>>;
  /** Descriptor reads of all walks, and per walk. */
  readonly memRefs: number;
  readonly memRefsPerWalk: number;
  /** The same less what the paging-structure / walk caches would have supplied. */
  readonly memRefsEffective: number;
  readonly memRefsEffectivePerWalk: number;
  readonly tlbArrays: readonly TlbArrayStats[];
}

const KIND_NAMES: readonly FaultKind[] = ['not_present', 'protection', 'reserved', 'non_canonical', 'translation', 'access_flag', 'permission', 'address_size', 'external_abort'];

function kindIndex(k: FaultKind): number {
  switch (k) {
    case 'not_present':
      return 0;
    case 'protection':
      return 1;
    case 'reserved':
      return 2;
    case 'non_canonical':
      return 3;
    case 'translation':
      return 4;
    case 'access_flag':
      return 5;
    case 'permission':
      return 6;
    case 'address_size':
      return 7;
    default:
      return 8; // external_abort
  }
}

/** #PF error code bits (SDM Vol.3A 4.7, Figure 4-12). */
const PF_P = 0x1;
const PF_WR = 0x2;
const PF_US = 0x4;
const PF_ID = 0x10;
const PF_PK = 0x20;

/** Small fully associative LRU caches of table entries, one per hardware level (tags: VA prefix, ASID/PCID). */
class WalkCache {
  readonly levels: Int8Array;
  private readonly base: Int32Array;
  private readonly count: Int32Array;
  private readonly valid: Uint8Array;
  private readonly key: Float64Array;
  private readonly keyShift: Uint8Array;
  private readonly asid: Uint16Array;
  private readonly stamp: Float64Array;
  private clock = 0;
  /** Hits by level (index level + 2). */
  readonly hits = new Float64Array(8);

  constructor(cfg: WalkCacheConfig) {
    this.levels = Int8Array.from(cfg.levels.map((l) => l.level));
    this.count = Int32Array.from(cfg.levels.map((l) => l.entries));
    this.base = new Int32Array(cfg.levels.length);
    let total = 0;
    cfg.levels.forEach((l, i) => {
      if (!Number.isInteger(l.entries) || l.entries < 1) throw new RangeError(`walk cache level ${l.level}: ${l.entries} entries (expected at least 1)`);
      this.base[i] = total;
      total += l.entries;
    });
    this.valid = new Uint8Array(total);
    this.key = new Float64Array(total);
    this.keyShift = new Uint8Array(total);
    this.asid = new Uint16Array(total);
    this.stamp = new Float64Array(total);
  }

  private indexOf(level: number): number {
    for (let i = 0; i < this.levels.length; i++) if (this.levels[i] === level) return i;
    return -1;
  }

  /** Whether an entry for (level, VA prefix, asid) is present; touches it. */
  probe(level: number, keyShift: number, vaHi: number, vaLo: number, asid: number): boolean {
    const i = this.indexOf(level);
    if (i < 0) return false;
    const k = vpnOf(vaHi, vaLo, keyShift);
    const b = this.base[i]!;
    for (let s = b; s < b + this.count[i]!; s++) {
      if (this.valid[s] === 1 && this.key[s] === k && this.keyShift[s] === keyShift && this.asid[s] === asid) {
        this.stamp[s] = ++this.clock;
        this.hits[level + 2]!++;
        return true;
      }
    }
    return false;
  }

  fill(level: number, keyShift: number, vaHi: number, vaLo: number, asid: number): void {
    const i = this.indexOf(level);
    if (i < 0) return;
    const k = vpnOf(vaHi, vaLo, keyShift);
    const b = this.base[i]!;
    let victim = b;
    for (let s = b; s < b + this.count[i]!; s++) {
      if (this.valid[s] === 1 && this.key[s] === k && this.keyShift[s] === keyShift && this.asid[s] === asid) {
        victim = s;
        break;
      }
      if (this.valid[s] === 0) {
        victim = s;
        break;
      }
      if (this.stamp[s]! < this.stamp[victim]!) victim = s;
    }
    this.valid[victim] = 1;
    this.key[victim] = k;
    this.keyShift[victim] = keyShift;
    this.asid[victim] = asid;
    this.stamp[victim] = ++this.clock;
  }

  invalidateAll(): void {
    this.valid.fill(0);
  }

  invalidateAsid(asid: number): void {
    for (let s = 0; s < this.valid.length; s++) if (this.asid[s] === asid) this.valid[s] = 0;
  }

  /** Entries (any ASID) that would be used to translate the VA. */
  invalidateVa(vaHi: number, vaLo: number): void {
    for (let s = 0; s < this.valid.length; s++) {
      if (this.valid[s] === 1 && this.key[s] === vpnOf(vaHi, vaLo, this.keyShift[s]!)) this.valid[s] = 0;
    }
  }

  /** Entries (any ASID) whose VA range overlaps [start, end). */
  invalidateRange(start: number, end: number): void {
    for (let s = 0; s < this.valid.length; s++) {
      if (this.valid[s] === 0) continue;
      const size = POW2[this.keyShift[s]!]!;
      const base = this.key[s]! * size;
      if (base < end && base + size > start) this.valid[s] = 0;
    }
  }

  resetStats(): void {
    this.hits.fill(0);
  }
}

function reg(mmu: Mmu, name: string, dflt: bigint): bigint {
  try {
    return mmu.getRegister(name);
  } catch {
    return dflt;
  }
}

const bit = (v: bigint, n: number): boolean => ((v >> BigInt(n)) & 1n) === 1n;

/** Split a 64-bit VA into the halves the hot path takes. */
function halves(va: bigint): [number, number] {
  const v = BigInt.asUintN(64, va);
  return [Number(v >> 32n), Number(v & 0xffff_ffffn)];
}

/** ARM64 granule shift from TCR_EL1.TG0 (00 4K, 01 64K, 10 16K) or TG1 (01 16K, 10 4K, 11 64K). */
function tg0Shift(tg: number): number {
  return tg === 1 ? 16 : tg === 2 ? 14 : 12;
}
function tg1Shift(tg: number): number {
  return tg === 1 ? 14 : tg === 3 ? 16 : 12;
}

/**
 * Descriptors in one contiguous run (Arm ARM D8.6.1, "The Contiguous bit"; the same counts as
 * Linux's CONT_PTE / CONT_PMD, arch/arm64/Kconfig ARM64_CONT_PTE_SHIFT / ARM64_CONT_PMD_SHIFT):
 * 4K granule 16 at levels 1-3; 16K 128 at level 3, 32 at level 2; 64K 32 at levels 2-3. Elsewhere the
 * bit is treated as the hint it is (an implementation may ignore it) and the entry covers one descriptor.
 */
function contiguousCount(granuleShift: number, level: number): number {
  if (granuleShift === 12) return level >= 1 && level <= 3 ? 16 : 1;
  if (granuleShift === 14) return level === 3 ? 128 : level === 2 ? 32 : 1;
  return level === 3 || level === 2 ? 32 : 1;
}

export class Cpu {
  readonly arch: CpuArch;
  readonly mmu: Mmu;
  readonly tlb: Tlb;
  readonly walkCache: WalkCache | null;
  private readonly scratch = new WalkResult();

  // ---- the regime the hit path re-checks, re-read on every register write through the Cpu ----
  private x86 = false;
  private pcid = 0;
  private pcide = false;
  private pge = false;
  private wp = false;
  private nxe = false;
  private smep = false;
  private smap = false;
  private pke = false;
  private ac = false;
  private pkru = 0;
  private la57 = false;
  private asid = 0;
  private asidMask = 0xff;
  private pan = false;
  private tbi0 = false;
  private tbi1 = false;
  private tbid0 = false;
  private tbid1 = false;
  private g0 = 12;
  private g1 = 12;
  private ds = false;

  // ---- statistics (numbers and typed arrays: nothing allocated per access) ----
  private nAccesses = 0;
  private nL1 = 0;
  private nL2 = 0;
  private nMisses = 0;
  private nWalks = 0;
  private nDirtyWalks = 0;
  private nFaultsFromTlb = 0;
  private nUncached = 0;
  private nMemRefs = 0;
  private nMemRefsEff = 0;
  private readonly walksByLevel = new Float64Array(8);
  private readonly faultsByKind = new Float64Array(KIND_NAMES.length);
  private readonly fillsByShift = new Float64Array(64);

  constructor(mmu: Mmu, opts: CpuOptions = {}) {
    this.arch = mmu.arch;
    this.mmu = mmu;
    this.x86 = mmu.arch === 'x86_64';
    const cfg = opts.tlb === undefined ? defaultTlbConfig(mmu.arch) : typeof opts.tlb === 'string' ? parseTlbSpec(opts.tlb) : opts.tlb;
    this.tlb = new Tlb(cfg);
    const wc = opts.walkCache === true ? (this.x86 ? X86_WALK_CACHE : ARM64_WALK_CACHE) : opts.walkCache || null;
    this.walkCache = wc ? new WalkCache(wc) : null;
    this.refresh();
  }

  /** Re-read the registers the hit path and the tags depend on. */
  private refresh(): void {
    const m = this.mmu;
    if (this.x86) {
      const cr0 = m.getRegister('cr0');
      const cr4 = m.getRegister('cr4');
      const cr3 = m.getRegister('cr3');
      this.wp = bit(cr0, 16);
      this.pge = bit(cr4, 7);
      this.la57 = bit(cr4, 12);
      this.pcide = bit(cr4, 17);
      this.smep = bit(cr4, 20);
      this.smap = bit(cr4, 21);
      this.pke = bit(cr4, 22);
      this.nxe = bit(m.getRegister('efer'), 11);
      this.ac = bit(reg(m, 'rflags', 2n), 18);
      this.pkru = Number(reg(m, 'pkru', 0n) & 0xffff_ffffn);
      // SDM 4.10.1: the current PCID is CR3[11:0] with CR4.PCIDE = 1, else 000H.
      this.pcid = this.pcide ? Number(cr3 & 0xfffn) : 0;
    } else {
      const tcr = m.getRegister('tcr_el1');
      // Arm ARM D8.13.2 / TCR_EL1.A1 picks the TTBR whose ASID field is the current ASID; TCR_EL1.AS
      // = 0 means 8-bit ASIDs (the upper 8 bits of the field are ignored).
      const a1 = bit(tcr, 22);
      this.asidMask = bit(tcr, 36) ? 0xffff : 0xff;
      const ttbr = reg(m, a1 ? 'ttbr1_el1' : 'ttbr0_el1', 0n);
      this.asid = Number(ttbr >> 48n) & this.asidMask;
      this.tbi0 = bit(tcr, 37);
      this.tbi1 = bit(tcr, 38);
      this.tbid0 = bit(tcr, 51);
      this.tbid1 = bit(tcr, 52);
      this.g0 = tg0Shift(Number((tcr >> 14n) & 3n));
      this.g1 = tg1Shift(Number((tcr >> 30n) & 3n));
      this.ds = bit(tcr, 59);
      this.pan = reg(m, 'pstate_pan', 0n) !== 0n;
    }
  }

  /** The address-space tag of new entries: x86 PCID, ARM64 ASID. */
  get currentAsid(): number {
    return this.x86 ? this.pcid : this.asid;
  }

  // =================================================================================================
  // The hot path
  // =================================================================================================

  /**
   * One access. `out` receives the outcome as Mmu.walk leaves it; on a TLB hit, the fields a hit
   * knows (pa, pageBase and pageSize of the cached entry, rights, level, global, dirty, pkey,
   * attrIndx, leafLo/leafHi) with memRefs = 0 and entries = 0.
   */
  access(vaHi: number, vaLo: number, access: AccessKind, user: boolean, out: WalkResult): void {
    this.nAccesses++;
    let thi = vaHi;
    let bypass = false;
    const asid = this.x86 ? this.pcid : this.asid;
    if (!this.x86) {
      // Entries are tagged by VA[55:0] (bit 55 picks the TTBR). With TBI the top byte is not part of
      // the address (Arm ARM D8.8); without it a top byte that is not bit 55 repeated faults, so
      // such a VA never hits: it goes to the walk, which reports the fault.
      const b55 = (vaHi >>> 23) & 1;
      const top = vaHi >>> 24;
      // TCR_EL1.TBIDn: with it, instruction addresses do not have their top byte ignored.
      const tbi = b55 === 1 ? this.tbi1 && !(access === 'exec' && this.tbid1) : this.tbi0 && !(access === 'exec' && this.tbid0);
      if (!tbi && top !== (b55 === 1 ? 0xff : 0)) bypass = true;
      thi = ((vaHi & 0x00ff_ffff) | (b55 === 1 ? 0xff00_0000 : 0)) >>> 0;
    }
    const tlb = this.tlb;
    const slot = bypass ? -1 : tlb.lookup(thi, vaLo, asid);
    if (slot >= 0) {
      if (tlb.lastHitLevel === 1) this.nL1++;
      else this.nL2++;
      const isWrite = access === 'write';
      // A write through an entry whose dirty state is clean needs the walk that sets D (SDM 4.8) or
      // the DBM update (Arm ARM D8.4.6); the walk also decides whether the write is allowed now.
      if (!(isWrite && (tlb.flags[slot]! & TLBF_DIRTY) === 0)) {
        const code = this.x86 ? this.x86Denied(slot, access, user) : this.armDenied(slot, access, user);
        if (code < 0) {
          this.hitResult(slot, vaHi, vaLo, out);
          return;
        }
        this.faultFromEntry(slot, thi, vaLo, code, out);
        return;
      }
      this.nDirtyWalks++;
    } else {
      this.nMisses++;
    }
    this.walkAndFill(vaHi, vaLo, thi, access, user, asid, slot, out);
  }

  /**
   * x86-64 re-check of a hit (SDM Vol.3A 4.6): -1 when allowed, else the #PF error code. Uses the
   * rights cached at fill time (R/W, U/S ANDed and XD ORed over the levels) and the CURRENT CR0.WP,
   * EFER.NXE, CR4.SMEP/SMAP/PKE, RFLAGS.AC and PKRU, which the TLB does not cache.
   */
  private x86Denied(slot: number, access: AccessKind, user: boolean): number {
    const f = this.tlb.flags[slot]!;
    const rw = (f & TLBF_RW) !== 0;
    const userPage = (f & TLBF_US) !== 0;
    const xd = this.nxe && (f & TLBF_XD) !== 0;
    const isWrite = access === 'write';
    const isExec = access === 'exec';
    const base = PF_P | (isWrite ? PF_WR : 0) | (user ? PF_US : 0) | (isExec && (this.nxe || this.smep) ? PF_ID : 0);
    if (user) {
      if (!userPage) return base;
      if (isWrite && !rw) return base;
      if (isExec) return xd ? base : -1;
    } else if (isExec) {
      if (xd) return base;
      if (this.smep && userPage) return base; // 4.6.1: SMEP, supervisor fetch from a user page
      return -1;
    } else {
      if (this.smap && userPage && !this.ac) return base; // 4.6.1: SMAP, explicit access, AC = 0
      if (isWrite && !rw && this.wp) return base;
    }
    // 4.6.2: protection keys, user-mode addresses, data accesses only.
    if (this.pke && userPage) {
      const k = this.tlb.pkey[slot]!;
      const ad = (this.pkru >>> (2 * k)) & 1;
      const wd = (this.pkru >>> (2 * k + 1)) & 1;
      if (ad === 1) return base | PF_PK;
      if (isWrite && wd === 1 && (user || this.wp)) return base | PF_PK;
    }
    return -1;
  }

  /**
   * ARM64 re-check of a hit: -1 when allowed, else the permission-fault status code 0b0011LL
   * (ESR_ELx ISS DFSC/IFSC). The entry holds the rights with APTable/UXNTable/PXNTable/WXN applied
   * (Arm ARM D8.4); PSTATE.PAN is applied here, since it is not part of the translation: an EL1
   * data access to an EL0-accessible page faults (D8.4.1.3).
   */
  private armDenied(slot: number, access: AccessKind, user: boolean): number {
    const tlb = this.tlb;
    const perms = user ? tlb.permUser[slot]! : tlb.permPriv[slot]!;
    const need = access === 'read' ? PERM_R : access === 'write' ? PERM_W : PERM_X;
    const fault = 0b001100 | (tlb.level[slot]! & 3);
    if ((perms & need) === 0) return fault;
    if (!user && this.pan && access !== 'exec' && (tlb.permUser[slot]! & (PERM_R | PERM_W)) !== 0) return fault;
    return -1;
  }

  private hitResult(slot: number, vaHi: number, vaLo: number, out: WalkResult): void {
    const tlb = this.tlb;
    const s = tlb.shift[slot]!;
    out.fault = null;
    out.code = 0;
    out.level = tlb.level[slot]!;
    out.pageBase = tlb.paBase[slot]!;
    out.pageSize = POW2[s]!;
    out.pa = out.pageBase + offsetOf(vaHi, vaLo, s);
    out.permUser = tlb.permUser[slot]!;
    out.permPriv = tlb.permPriv[slot]!;
    out.global = tlb.global[slot] === 1;
    out.contiguous = false;
    out.dirty = (tlb.flags[slot]! & TLBF_DIRTY) !== 0;
    out.pkey = tlb.pkey[slot]!;
    out.attrIndx = tlb.attrIndx[slot]!;
    out.leafLo = tlb.leafLo[slot]!;
    out.leafHi = tlb.leafHi[slot]!;
    out.leafAddr = 0;
    out.memRefs = 0;
    out.entries = 0;
  }

  private faultFromEntry(slot: number, thi: number, vaLo: number, code: number, out: WalkResult): void {
    const tlb = this.tlb;
    out.fault = this.x86 ? 'protection' : 'permission';
    out.code = code;
    out.level = tlb.level[slot]!;
    out.pa = 0;
    out.pageBase = 0;
    out.pageSize = 0;
    out.memRefs = 0;
    out.entries = 0;
    this.nFaultsFromTlb++;
    this.faultsByKind[kindIndex(out.fault)]!++;
    if (this.x86) {
      // SDM 4.10.4.1: a page fault invalidates the TLB entries for the faulting address and the
      // paging-structure-cache entries that would be used for it, so a re-execution walks afresh.
      tlb.invalidateVa(thi, vaLo, this.pcid, INV_ASID_OR_GLOBAL);
      this.walkCache?.invalidateVa(thi, vaLo);
    }
  }

  /** Hardware level of the i-th descriptor read (top first) of a walk that read `out.entries`. */
  private entryLevel(out: WalkResult, i: number): number {
    return this.x86 ? out.level + (out.entries - 1 - i) : out.level - (out.entries - 1 - i);
  }

  /** VA bits above this shift select the entry at `level` (x86 9 bits per level; ARM per granule). */
  private keyShift(level: number, vaHi: number): number {
    if (this.x86) return 12 + 9 * (level - 1);
    const g = (vaHi >>> 23) & 1 ? this.g1 : this.g0;
    return g + (g - 3) * (3 - level);
  }

  private walkAndFill(vaHi: number, vaLo: number, thi: number, access: AccessKind, user: boolean, asid: number, hitSlot: number, out: WalkResult): void {
    const wc = this.walkCache;
    // The deepest cached table entry for this VA: a real walk would start below it.
    let wcLevel = -100;
    if (wc !== null) {
      if (this.x86) {
        for (let L = 2; L <= (this.la57 ? 5 : 4); L++) {
          if (wc.probe(L, this.keyShift(L, thi), thi, vaLo, asid)) {
            wcLevel = L;
            break;
          }
        }
      } else {
        for (let L = 2; L >= -1; L--) {
          if (wc.probe(L, this.keyShift(L, thi), thi, vaLo, asid)) {
            wcLevel = L;
            break;
          }
        }
      }
    }
    this.mmu.walk(vaHi, vaLo, access, user, false, out);
    this.nWalks++;
    this.walksByLevel[out.level + 2]!++;
    this.nMemRefs += out.memRefs;
    let saved = 0;
    if (wc !== null) {
      const n = out.entries;
      for (let i = 0; i < n; i++) {
        const L = this.entryLevel(out, i);
        if (L === wcLevel) saved = i + 1;
        // Table entries (every descriptor but the last read) go into the caches (SDM 4.10.3.1:
        // only entries that reference another table; the faulting or leaf entry is not cached).
        if (i < n - 1) wc.fill(L, this.keyShift(L, thi), thi, vaLo, asid);
      }
      if (saved > out.memRefs) saved = out.memRefs;
    }
    this.nMemRefsEff += out.memRefs - saved;

    if (out.fault !== null) {
      this.faultsByKind[kindIndex(out.fault)]!++;
      if (this.x86) {
        // SDM 4.10.4.1: a page fault invalidates the TLB entries for the faulting address and the
        // paging-structure-cache entries that would be used for it.
        this.tlb.invalidateVa(thi, vaLo, asid, INV_ASID_OR_GLOBAL);
        wc?.invalidateVa(thi, vaLo);
      } else if (hitSlot >= 0) {
        // A write through a clean entry whose walk now faults: the entry no longer describes memory.
        this.tlb.invalidateVa(thi, vaLo, asid, INV_ASID_OR_GLOBAL);
      }
      return;
    }
    // No descriptor read (ARM64 with SCTLR_EL1.M = 0: the VA is the PA): nothing to cache.
    if (out.entries > 0) this.fill(thi, vaLo, asid, out);
  }

  private fill(thi: number, vaLo: number, asid: number, out: WalkResult): void {
    let shift = Math.log2(out.pageSize);
    let paBase = out.pageBase;
    let flags = out.dirty ? TLBF_DIRTY : 0;
    let pkey = 0;
    if (this.x86) {
      // Combined rights from the descriptors read (SDM 4.6.1): R/W and U/S ANDed, XD ORed.
      let rw = 1;
      let us = 1;
      let xd = 0;
      for (let i = 0; i < out.entries; i++) {
        rw &= (out.entryLo[i]! >>> 1) & 1;
        us &= (out.entryLo[i]! >>> 2) & 1;
        xd |= out.entryHi[i]! >>> 31;
      }
      flags |= (rw ? TLBF_RW : 0) | (us ? TLBF_US : 0) | (xd ? TLBF_XD : 0);
      pkey = (out.leafHi >>> 27) & 0xf; // bits 62:59 (4.6.2)
    } else if (out.contiguous) {
      const g = (thi >>> 23) & 1 ? this.g1 : this.g0;
      const n = contiguousCount(g, out.level);
      if (n > 1) {
        const rangeShift = shift + Math.log2(n);
        if (this.tlb.accepts(rangeShift)) {
          // The run's output addresses are contiguous and aligned to its size (D8.6.1).
          paBase = out.pageBase - (offsetOf(thi, vaLo, rangeShift) - offsetOf(thi, vaLo, shift));
          shift = rangeShift;
        }
      }
    }
    const global = out.global && (!this.x86 || this.pge);
    if (
      this.tlb.fill(thi, vaLo, shift, asid, global, paBase, out.permUser, out.permPriv, flags, pkey, out.attrIndx, out.level, out.leafLo, out.leafHi)
    ) {
      this.fillsByShift[shift]!++;
    } else {
      this.nUncached++;
    }
  }

  // =================================================================================================
  // The object API
  // =================================================================================================

  /**
   * A bigint VA through the TLB (or, with `debug`, the Mmu's debugger walk: no TLB fill, no A/D,
   * no statistics). attrs come from a debugger walk of the current tables; when the TLB served a
   * translation the tables no longer give (a stale entry), attrs is `{ tlb_stale: true }`.
   */
  translate(va: bigint, access: AccessKind = 'read', user = false, opts: TranslateOptions = {}): TranslateOutcome {
    if (opts.debug) return this.mmu.translate(va, access, user, { debug: true });
    const [hi, lo] = halves(va);
    const r = this.scratch;
    this.access(hi, lo, access, user, r);
    const v = BigInt.asUintN(64, va);
    if (r.fault !== null) return { va: v, fault: { kind: r.fault, level: r.level, code: r.code } };
    const now = this.mmu.translate(va, access, user, { debug: true });
    const fresh = !isFault(now) && now.pa === BigInt(r.pa);
    return { va: v, pa: BigInt(r.pa), level: r.level, pageSize: r.pageSize, attrs: fresh ? now.attrs : { tlb_stale: true } };
  }

  // =================================================================================================
  // Registers and invalidation
  // =================================================================================================

  getRegister(name: string): bigint {
    return this.mmu.getRegister(name);
  }

  /**
   * A register write with the TLB side effects the ISA gives it: x86 MOV to CR3 (movToCr3), MOV to
   * CR4 and CR0 (SDM 4.10.4.1). ARM64 register writes invalidate nothing (Arm ARM D8.13: software
   * maintains the TLB with TLBI after changing TTBRs, TCR or descriptors).
   */
  setRegister(name: string, value: bigint): void {
    if (!this.x86) {
      this.mmu.setRegister(name, value);
      this.refresh();
      return;
    }
    if (name === 'cr3') return this.movToCr3(value);
    if (name === 'cr4') return this.movToCr4(value);
    if (name === 'cr0') {
      const pgBefore = bit(this.mmu.getRegister('cr0'), 31);
      this.mmu.setRegister(name, value);
      this.refresh();
      // MOV to CR0 that clears PG invalidates everything (the model refuses PG = 0; kept for order).
      if (pgBefore && !bit(value, 31)) this.flushAll();
      return;
    }
    this.mmu.setRegister(name, value);
    this.refresh();
  }

  private flushAll(): void {
    this.tlb.invalidateAll();
    this.walkCache?.invalidateAll();
  }

  private requireX86(what: string): void {
    if (!this.x86) throw new RangeError(`${what} is an x86-64 instruction; this CPU is ${this.arch}`);
  }

  /**
   * MOV to CR3 (SDM 4.10.4.1): without PCIDE, invalidates the non-global entries of PCID 0 and its
   * paging-structure-cache entries; with PCIDE, those of the new PCID (CR3[11:0]) unless bit 63 of
   * the source is 1 (no flush). Bit 63 is not stored in CR3.
   */
  movToCr3(value: bigint): void {
    this.requireX86('MOV to CR3');
    const v = BigInt.asUintN(64, value);
    const noFlush = this.pcide && bit(v, 63);
    this.mmu.setRegister('cr3', v & ~(1n << 63n));
    this.refresh();
    if (noFlush) return;
    this.tlb.invalidateNonGlobal(this.pcid);
    this.walkCache?.invalidateAsid(this.pcid);
  }

  /**
   * MOV to CR4 (SDM 4.10.4.1): a change of PGE, or PCIDE going 1 → 0, invalidates every entry
   * including global ones, for all PCIDs; a change of PAE or SMEP going 0 → 1 invalidates the
   * current PCID's entries — done here as a full flush (invalidating more is always allowed).
   */
  movToCr4(value: bigint): void {
    this.requireX86('MOV to CR4');
    const before = this.mmu.getRegister('cr4');
    this.mmu.setRegister('cr4', value);
    this.refresh();
    const changed = (n: number) => bit(before, n) !== bit(value, n);
    if (changed(7) || (bit(before, 17) && !bit(value, 17)) || changed(5) || (!bit(before, 20) && bit(value, 20))) this.flushAll();
  }

  /**
   * INVLPG (SDM 4.10.4.1): the entries for the page of `va` of the current PCID, global entries for
   * it whatever their PCID, and every paging-structure-cache entry of the current PCID.
   */
  invlpg(va: bigint): void {
    this.requireX86('INVLPG');
    const [hi, lo] = halves(va);
    this.tlb.invalidateVa(hi, lo, this.pcid, INV_ASID_OR_GLOBAL);
    this.walkCache?.invalidateAsid(this.pcid);
  }

  /**
   * INVPCID (SDM 4.10.4.1 and the INVPCID instruction reference): type 0 individual-address
   * (non-global entries of that PCID for `va`), 1 single-context (non-global entries of the PCID),
   * 2 all-context including globals, 3 all-context except globals. The #GP cases are RangeErrors.
   */
  invpcid(type: number, pcid: number, va = 0n): void {
    this.requireX86('INVPCID');
    if (!Number.isInteger(type) || type < 0 || type > 3) throw new RangeError(`INVPCID type ${type}: only types 0-3 are defined (#GP)`);
    if (!Number.isInteger(pcid) || pcid < 0 || pcid > 0xfff) throw new RangeError(`INVPCID: PCID ${pcid} does not fit in 12 bits (descriptor bits 63:12 must be 0, #GP)`);
    if (type <= 1 && !this.pcide && pcid !== 0) throw new RangeError(`INVPCID type ${type}: PCID ${pcid} with CR4.PCIDE = 0 (#GP)`);
    if (type === 0) {
      const v = BigInt.asUintN(64, va);
      const bits = this.la57 ? 57 : 48;
      const upper = v >> BigInt(bits - 1);
      if (upper !== 0n && upper !== (1n << BigInt(65 - bits)) - 1n) throw new RangeError(`INVPCID type 0: address 0x${v.toString(16)} is not canonical (#GP)`);
      const [hi, lo] = halves(v);
      this.tlb.invalidateVa(hi, lo, pcid, INV_ASID_NON_GLOBAL);
      this.walkCache?.invalidateAsid(pcid);
    } else if (type === 1) {
      this.tlb.invalidateNonGlobal(pcid);
      this.walkCache?.invalidateAsid(pcid);
    } else if (type === 2) {
      this.flushAll();
    } else {
      this.tlb.invalidateNonGlobal(-1);
      this.walkCache?.invalidateAll();
    }
  }

  /**
   * TLBI for stage 1 EL1&0 (Arm ARM D8.16 and the TLBI instruction descriptions in C5.5). `op`
   * takes the names without or with the shareability suffix (IS, OS, NXS: one CPU, same effect).
   *  - VMALLE1: every entry. ASIDE1: non-global entries of Xt[63:48].
   *  - VAE1 / VALE1: entries for VA Xt[43:0] << 12 of ASID Xt[63:48], and global ones.
   *    VAAE1 / VAALE1: for any ASID. The *L* (last level) forms need not touch walk caches.
   *  - RVAE1, RVALE1, RVAAE1, RVAALE1: a range, Xt = ASID[63:48] TG[47:46] SCALE[45:44]
   *    NUM[43:39] TTL[38:37] BaseADDR[36:0]: (NUM + 1) × 2^(5 × SCALE + 1) granules from BaseADDR
   *    in granule units (64K units with TCR_EL1.DS = 1, LPA2). TG = 0b00 (reserved) invalidates
   *    nothing. TTL (a level hint) is not used: invalidating regardless is always correct.
   * ASIDs are compared under TCR_EL1.AS (8 bits when AS = 0). The VA is sign-extended from bit 55
   * (the top of the TLBI address; bit 55 selects TTBR0 or TTBR1), as the entries are tagged.
   */
  tlbi(op: string, arg = 0n): void {
    if (this.x86) throw new RangeError(`TLBI is an ARM64 instruction; this CPU is ${this.arch}`);
    const name = op.toUpperCase().replace(/(IS|OS)?(NXS)?$/, '');
    const x = BigInt.asUintN(64, arg);
    const asid = Number(x >> 48n) & this.asidMask;
    const wc = this.walkCache;
    switch (name) {
      case 'VMALLE1':
        this.flushAll();
        return;
      case 'ASIDE1':
        this.tlb.invalidateNonGlobal(asid);
        wc?.invalidateAsid(asid);
        return;
      case 'VAE1':
      case 'VALE1':
      case 'VAAE1':
      case 'VAALE1': {
        const va = (x & 0x0fff_ffff_ffffn) << 12n; // VA[55:12]
        const ext = bit(va, 55) ? va | 0xff00_0000_0000_0000n : va;
        const [hi, lo] = halves(ext);
        const mode = name.startsWith('VAA') ? INV_ALL_ASIDS : INV_ASID_OR_GLOBAL;
        this.tlb.invalidateVa(hi, lo, asid, mode);
        if (!name.endsWith('LE1')) {
          const page = vpnOf(hi, lo, 12) * 4096;
          wc?.invalidateRange(page, page + 4096);
        }
        return;
      }
      case 'RVAE1':
      case 'RVALE1':
      case 'RVAAE1':
      case 'RVAALE1': {
        const tg = Number((x >> 46n) & 3n);
        if (tg === 0) return;
        const granule = tg === 1 ? 12 : tg === 2 ? 14 : 16;
        const scale = Number((x >> 44n) & 3n);
        const num = Number((x >> 39n) & 0x1fn);
        const baddr = x & 0x1f_ffff_ffffn;
        const unit = this.ds ? 16 : granule;
        let start = baddr << BigInt(unit);
        const topBit = unit + 36;
        if (bit(start, topBit)) start |= BigInt.asUintN(64, -1n << BigInt(topBit));
        const startN = Number(start);
        const endN = startN + (num + 1) * 2 ** (5 * scale + 1) * 2 ** granule;
        const mode = name.startsWith('RVAA') ? INV_ALL_ASIDS : INV_ASID_OR_GLOBAL;
        this.tlb.invalidateRange(startN, endN, asid, mode);
        if (!name.endsWith('LE1')) wc?.invalidateRange(startN, endN);
        return;
      }
      default:
        throw new RangeError(
          `TLBI ${op}: not a modelled stage 1 EL1&0 operation (VMALLE1, ASIDE1, VAE1, VALE1, VAAE1, VAALE1, RVAE1, RVALE1, RVAAE1, RVAALE1, with optional IS/OS/NXS)`,
        );
    }
  }

  // =================================================================================================
  // Statistics
  // =================================================================================================

  statistics(): CpuStatistics {
    const byIndex = (arr: Float64Array, key: (i: number) => string | null): Record<string, number> => {
      const o: Record<string, number> = {};
      arr.forEach((v, i) => {
        const k = key(i);
        if (v > 0 && k !== null) o[k] = v;
      });
      return o;
    };
    const hits = this.nL1 + this.nL2;
    return {
      arch: this.arch,
      tlb: this.tlb.config.name,
      walkCache: this.walkCache !== null,
      accesses: this.nAccesses,
      hits,
      l1Hits: this.nL1,
      l2Hits: this.nL2,
      misses: this.nMisses,
      hitRate: this.nAccesses === 0 ? 0 : hits / this.nAccesses,
      walks: this.nWalks,
      dirtyWalks: this.nDirtyWalks,
      walksByLevel: byIndex(this.walksByLevel, (i) => String(i - 2)),
      faults: this.faultsByKind.reduce((a, b) => a + b, 0),
      faultsByKind: byIndex(this.faultsByKind, (i) => KIND_NAMES[i] ?? null),
      faultsFromTlb: this.nFaultsFromTlb,
      fillsByPageSize: byIndex(this.fillsByShift, (i) => String(2 ** i)),
      uncachedFills: this.nUncached,
      walkCacheHitsByLevel: this.walkCache ? byIndex(this.walkCache.hits, (i) => String(i - 2)) : {},
      memRefs: this.nMemRefs,
      memRefsPerWalk: this.nWalks === 0 ? 0 : this.nMemRefs / this.nWalks,
      memRefsEffective: this.nMemRefsEff,
      memRefsEffectivePerWalk: this.nWalks === 0 ? 0 : this.nMemRefsEff / this.nWalks,
      tlbArrays: this.tlb.arrayStats(),
    };
  }

  resetStatistics(): void {
    this.nAccesses = this.nL1 = this.nL2 = this.nMisses = this.nWalks = this.nDirtyWalks = 0;
    this.nFaultsFromTlb = this.nUncached = this.nMemRefs = this.nMemRefsEff = 0;
    this.walksByLevel.fill(0);
    this.faultsByKind.fill(0);
    this.fillsByShift.fill(0);
    this.walkCache?.resetStats();
    this.tlb.resetStats();
  }
}

/** A CPU of the given architecture over `mem`, its MMU configured by `regs` (machine.json names). */
export function createCpu(arch: CpuArch, mem: PhysMem, regs: Record<string, bigint>, opts: CpuOptions = {}): Cpu {
  const mmu =
    arch === 'x86_64'
      ? createX86Mmu(mem, regs, opts.maxPhyAddr === undefined ? {} : { maxPhyAddr: opts.maxPhyAddr })
      : createArm64Mmu(mem, regs, {
          ...(opts.idAa64mmfr0 === undefined ? {} : { idAa64mmfr0: opts.idAa64mmfr0 }),
          ...(opts.idAa64mmfr1 === undefined ? {} : { idAa64mmfr1: opts.idAa64mmfr1 }),
          ...(opts.idAa64mmfr2 === undefined ? {} : { idAa64mmfr2: opts.idAa64mmfr2 }),
        });
  return new Cpu(mmu, opts);
}
