/**
 * The TLB model: set-associative arrays of translations, one or more per page size, in two levels
 * (L1 per-size arrays, an L2 / STLB behind them), true LRU replacement within a set.
 *
 * What an entry holds follows the manuals' description of what a TLB caches (SDM Vol.3A 4.10.2.2
 * "Caching Translations in TLBs": the physical page, the combined access rights, the dirty flag,
 * the protection key; Arm ARM D8.13 "Translation Lookaside Buffers": the output address and
 * attributes, tagged by ASID unless global). A hit is decided from the entry alone — no walk —
 * which is what makes stale translations observable when software skips an invalidation.
 *
 * Tags: the VA page number at the entry's size, the size itself, the address-space tag (x86 PCID
 * when CR4.PCIDE = 1, else PCID 0 — SDM 4.10.1; ARM64 ASID) and a global flag (x86 G with
 * CR4.PGE; ARM64 !nG). An ARM64 entry made from a descriptor with the Contiguous bit covers the
 * whole contiguous range (Arm ARM D8.6.1): its size is the range's size.
 *
 * Storage is struct-of-arrays in typed arrays, sized once; lookups and fills allocate nothing.
 * Page numbers are doubles (a VA page number at 4 KiB granularity is below 2^52, exact).
 */

/** One set-associative array of the TLB. */
export interface TlbArraySpec {
  /** Shown in statistics, e.g. "L1 4K". */
  readonly name: string;
  /** 1: looked up first; 2: looked up on an L1 miss (STLB / L2 TLB), its hits refill L1. */
  readonly level: 1 | 2;
  /** Page sizes in bytes this array holds, or 'any' (e.g. Arm cores' unified TLBs). */
  readonly pageSizes: readonly number[] | 'any';
  readonly entries: number;
  /** Associativity; ways === entries is fully associative. */
  readonly ways: number;
}

export interface TlbConfig {
  /** Shown in statistics. */
  readonly name: string;
  readonly arrays: readonly TlbArraySpec[];
}

const K = 1024;
const M = 1024 * K;
const G = 1024 * M;

/**
 * Intel Skylake client (Intel 64 and IA-32 Architectures Optimization Reference Manual, Skylake
 * microarchitecture, "TLB parameters"): DTLB 4K 64 entries 4-way, 2M/4M 32 entries 4-way,
 * 1G 4 entries 4-way (fully associative); STLB 4K+2M 1536 entries 12-way, 1G 16 entries 4-way.
 */
export const TLB_SKYLAKE: TlbConfig = {
  name: 'skylake',
  arrays: [
    { name: 'L1 4K', level: 1, pageSizes: [4 * K], entries: 64, ways: 4 },
    { name: 'L1 2M', level: 1, pageSizes: [2 * M], entries: 32, ways: 4 },
    { name: 'L1 1G', level: 1, pageSizes: [1 * G], entries: 4, ways: 4 },
    { name: 'STLB 4K+2M', level: 2, pageSizes: [4 * K, 2 * M], entries: 1536, ways: 12 },
    { name: 'STLB 1G', level: 2, pageSizes: [1 * G], entries: 16, ways: 4 },
  ],
};

/**
 * Arm Neoverse N1 (Neoverse N1 Technical Reference Manual, "Memory Management Unit"): a 48-entry
 * fully associative L1 data TLB and a 1280-entry 5-way unified L2 TLB, both holding every page
 * and block size.
 */
export const TLB_NEOVERSE_N1: TlbConfig = {
  name: 'neoverse-n1',
  arrays: [
    { name: 'L1 data', level: 1, pageSizes: 'any', entries: 48, ways: 48 },
    { name: 'L2', level: 2, pageSizes: 'any', entries: 1280, ways: 5 },
  ],
};

/** No TLB: every access walks (to measure walks alone). */
export const TLB_NONE: TlbConfig = { name: 'none', arrays: [] };

export const TLB_PRESETS: Readonly<Record<string, TlbConfig>> = {
  skylake: TLB_SKYLAKE,
  'neoverse-n1': TLB_NEOVERSE_N1,
  none: TLB_NONE,
};

/** The default TLB of an architecture. */
export function defaultTlbConfig(arch: 'x86_64' | 'arm64'): TlbConfig {
  return arch === 'x86_64' ? TLB_SKYLAKE : TLB_NEOVERSE_N1;
}

/** A TLB description that does not parse or does not make a TLB. */
export class TlbSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlbSpecError';
  }
}

function parseSize(t: string, where: string): number {
  const m = /^([0-9]+)([KMGT])$/i.exec(t);
  if (!m) throw new TlbSpecError(`${where}: page size '${t}' is not like 4K, 2M, 1G`);
  const n = Number(m[1]) * { K, M, G, T: 1024 * G }[m[2]!.toUpperCase() as 'K' | 'M' | 'G' | 'T'];
  if (Math.log2(n) % 1 !== 0) throw new TlbSpecError(`${where}: page size '${t}' is not a power of two`);
  if (n < 4 * K) throw new TlbSpecError(`${where}: page size '${t}' is below 4K`);
  return n;
}

/**
 * A TLB from text: a preset name (skylake, neoverse-n1, none) or comma-separated arrays
 * `LEVEL:SIZES:ENTRIESxWAYS`, LEVEL L1 or L2, SIZES `4K`, `4K+2M` or `any`, e.g.
 * `L1:4K:64x4,L1:2M:32x4,L2:4K+2M:1536x12`. `ENTRIESxfull` is fully associative.
 */
export function parseTlbSpec(text: string): TlbConfig {
  const t = text.trim();
  if (t in TLB_PRESETS) return TLB_PRESETS[t]!;
  const arrays: TlbArraySpec[] = [];
  for (const part of t.split(',')) {
    const where = `TLB array '${part}'`;
    const m = /^(L[12]):([^:]+):([0-9]+)x([0-9]+|full)$/i.exec(part.trim());
    if (!m) {
      throw new TlbSpecError(
        `${where}: expected LEVEL:SIZES:ENTRIESxWAYS (e.g. L1:4K:64x4 or L2:4K+2M:1536x12) or a preset (${Object.keys(TLB_PRESETS).join(', ')})`,
      );
    }
    const level = m[1]!.toUpperCase() === 'L1' ? 1 : 2;
    const pageSizes = m[2]!.toLowerCase() === 'any' ? 'any' : m[2]!.split('+').map((s) => parseSize(s, where));
    const entries = Number(m[3]);
    const ways = m[4]!.toLowerCase() === 'full' ? entries : Number(m[4]);
    const name = `L${level} ${m[2]}`;
    arrays.push(checkArray({ name, level, pageSizes, entries, ways }, where));
  }
  return { name: t, arrays };
}

function checkArray(a: TlbArraySpec, where: string): TlbArraySpec {
  if (!Number.isSafeInteger(a.entries) || a.entries < 1 || a.entries > 1 << 20) throw new TlbSpecError(`${where}: ${a.entries} entries (expected 1 … 1048576)`);
  if (!Number.isSafeInteger(a.ways) || a.ways < 1 || a.entries % a.ways !== 0) {
    throw new TlbSpecError(`${where}: ${a.ways} ways do not divide ${a.entries} entries into whole sets`);
  }
  return a;
}

/** Entry flag bits (Tlb.flags). */
export const TLBF_DIRTY = 1;
/** x86-64: R/W ANDed over every level of the walk (SDM 4.6.1). */
export const TLBF_RW = 2;
/** x86-64: U/S ANDed over every level. */
export const TLBF_US = 4;
/** x86-64: XD ORed over every level (with EFER.NXE). */
export const TLBF_XD = 8;

/** invalidateVa / invalidateRange modes. */
export const INV_ASID_OR_GLOBAL = 0; // entries of this ASID/PCID, and global ones (x86 INVLPG, TLBI VAE1)
export const INV_ALL_ASIDS = 1; // every entry for the address (TLBI VAAE1)
export const INV_ASID_NON_GLOBAL = 2; // non-global entries of this ASID/PCID only (INVPCID type 0)

const MAX_SHIFT = 64;

/** 2^i for i = 0…64: a table, since `2 ** n` with a variable n is a slow Math.pow call. */
export const POW2 = Float64Array.from({ length: 65 }, (_, i) => 2 ** i);

/** vpn mod sets: integer arithmetic when vpn fits in 31 bits (a double `%` is a slow fmod). */
function setOf(vpn: number, sets: number): number {
  return vpn < 0x8000_0000 ? (vpn | 0) % sets : vpn % sets;
}

/** VA page number at 2^shift granularity, from the two halves; exact (no 32-bit truncation). */
export function vpnOf(vaHi: number, vaLo: number, shift: number): number {
  if (shift < 32) return vaHi * POW2[32 - shift]! + (vaLo >>> shift);
  return vaHi >>> (shift - 32);
}

/** VA modulo 2^shift (the offset inside a page of that size), as a number. */
export function offsetOf(vaHi: number, vaLo: number, shift: number): number {
  if (shift < 32) return shift === 0 ? 0 : (vaLo & (POW2[shift]! - 1)) >>> 0;
  return (shift === 64 ? vaHi : vaHi & (POW2[shift - 32]! - 1)) * POW2[32]! + vaLo;
}

/** Per-array hit and fill counters. */
export interface TlbArrayStats {
  readonly name: string;
  readonly level: 1 | 2;
  readonly entries: number;
  readonly ways: number;
  readonly hits: number;
  readonly fills: number;
  readonly evictions: number;
}

export class Tlb {
  readonly config: TlbConfig;
  /** Total entries over all arrays. */
  readonly size: number;

  // ---- entries (slot = array base + set * ways + way) -------------------------------------------
  readonly valid: Uint8Array;
  readonly vpn: Float64Array;
  readonly shift: Uint8Array;
  readonly asid: Uint16Array;
  readonly global: Uint8Array;
  readonly paBase: Float64Array;
  readonly permUser: Uint8Array;
  readonly permPriv: Uint8Array;
  readonly flags: Uint8Array;
  /** x86-64 protection key of the leaf (bits 62:59); ARM64 unused. */
  readonly pkey: Uint8Array;
  /** ARM64 AttrIndx of the leaf. */
  readonly attrIndx: Uint8Array;
  /** Hardware level of the leaf (x86 3…1, ARM64 0…3), for fault codes raised on a hit. */
  readonly level: Int8Array;
  /** The leaf descriptor, for tools. */
  readonly leafLo: Uint32Array;
  readonly leafHi: Uint32Array;
  private readonly stamp: Float64Array;
  private clock = 0;

  // ---- arrays -------------------------------------------------------------------------------------
  private readonly nArrays: number;
  private readonly aBase: Int32Array;
  private readonly aSets: Int32Array;
  private readonly aWays: Int32Array;
  private readonly aLevel: Uint8Array;
  /** Per array, per shift: 1 when the array may hold that size. */
  private readonly aAccepts: Uint8Array;
  /** Per array, per shift: valid entries of that size (so lookups probe only sizes present). */
  private readonly liveCount: Int32Array;
  /** Per array: the shifts with liveCount > 0, packed (liveLen of them). */
  private readonly liveList: Uint8Array;
  private readonly liveLen: Int32Array;
  private readonly l1: Int32Array;
  private readonly l2: Int32Array;
  private readonly aHits: Float64Array;
  private readonly aFills: Float64Array;
  private readonly aEvictions: Float64Array;

  /** 1 or 2 after a hit: which level hit. */
  lastHitLevel = 0;

  constructor(config: TlbConfig) {
    this.config = config;
    const arrays = config.arrays.map((a, i) => checkArray(a, `TLB array ${i} (${a.name})`));
    this.nArrays = arrays.length;
    this.aBase = new Int32Array(this.nArrays);
    this.aSets = new Int32Array(this.nArrays);
    this.aWays = new Int32Array(this.nArrays);
    this.aLevel = new Uint8Array(this.nArrays);
    this.aAccepts = new Uint8Array(this.nArrays * MAX_SHIFT);
    this.liveCount = new Int32Array(this.nArrays * MAX_SHIFT);
    this.liveList = new Uint8Array(this.nArrays * MAX_SHIFT);
    this.liveLen = new Int32Array(this.nArrays);
    this.aHits = new Float64Array(this.nArrays);
    this.aFills = new Float64Array(this.nArrays);
    this.aEvictions = new Float64Array(this.nArrays);
    let total = 0;
    arrays.forEach((a, i) => {
      this.aBase[i] = total;
      this.aWays[i] = a.ways;
      this.aSets[i] = a.entries / a.ways;
      this.aLevel[i] = a.level;
      for (let s = 12; s < MAX_SHIFT; s++) {
        if (a.pageSizes === 'any' || a.pageSizes.includes(2 ** s)) this.aAccepts[i * MAX_SHIFT + s] = 1;
      }
      total += a.entries;
    });
    this.l1 = Int32Array.from(arrays.flatMap((a, i) => (a.level === 1 ? [i] : [])));
    this.l2 = Int32Array.from(arrays.flatMap((a, i) => (a.level === 2 ? [i] : [])));
    this.size = total;
    this.valid = new Uint8Array(total);
    this.vpn = new Float64Array(total);
    this.shift = new Uint8Array(total);
    this.asid = new Uint16Array(total);
    this.global = new Uint8Array(total);
    this.paBase = new Float64Array(total);
    this.permUser = new Uint8Array(total);
    this.permPriv = new Uint8Array(total);
    this.flags = new Uint8Array(total);
    this.pkey = new Uint8Array(total);
    this.attrIndx = new Uint8Array(total);
    this.level = new Int8Array(total);
    this.leafLo = new Uint32Array(total);
    this.leafHi = new Uint32Array(total);
    this.stamp = new Float64Array(total);
  }

  /** Whether some array can hold a translation of 2^shift bytes. */
  accepts(shift: number): boolean {
    for (let a = 0; a < this.nArrays; a++) if (this.aAccepts[a * MAX_SHIFT + shift] === 1) return true;
    return false;
  }

  /** Probe one array; the matching slot or -1. */
  private probe(a: number, vaHi: number, vaLo: number, asid: number): number {
    const n = this.liveLen[a]!;
    const ways = this.aWays[a]!;
    const sets = this.aSets[a]!;
    const base = this.aBase[a]!;
    for (let k = 0; k < n; k++) {
      const s = this.liveList[a * MAX_SHIFT + k]!;
      const vpn = vpnOf(vaHi, vaLo, s);
      const first = base + setOf(vpn, sets) * ways;
      for (let slot = first; slot < first + ways; slot++) {
        if (this.valid[slot] === 1 && this.vpn[slot] === vpn && this.shift[slot] === s && (this.global[slot] === 1 || this.asid[slot] === asid)) {
          return slot;
        }
      }
    }
    return -1;
  }

  /**
   * The entry translating the VA for this address-space tag, or -1. L1 arrays first, then L2; an
   * L2 hit is copied into the L1 array for its size (as an STLB hit refills the first-level TLB).
   * Updates LRU order and lastHitLevel.
   */
  lookup(vaHi: number, vaLo: number, asid: number): number {
    const l1 = this.l1;
    for (let i = 0; i < l1.length; i++) {
      const a = l1[i]!;
      const slot = this.probe(a, vaHi, vaLo, asid);
      if (slot >= 0) {
        this.stamp[slot] = ++this.clock;
        this.aHits[a]!++;
        this.lastHitLevel = 1;
        return slot;
      }
    }
    const l2 = this.l2;
    for (let i = 0; i < l2.length; i++) {
      const a = l2[i]!;
      const slot = this.probe(a, vaHi, vaLo, asid);
      if (slot >= 0) {
        this.stamp[slot] = ++this.clock;
        this.aHits[a]!++;
        this.lastHitLevel = 2;
        const s = this.shift[slot]!;
        for (let j = 0; j < l1.length; j++) {
          const b = l1[j]!;
          if (this.aAccepts[b * MAX_SHIFT + s] === 1) {
            this.copyInto(b, slot);
            break;
          }
        }
        return slot;
      }
    }
    this.lastHitLevel = 0;
    return -1;
  }

  /** LRU victim (an invalid way first) in the set of `vpn` in array a. */
  private victim(a: number, vpn: number): number {
    const ways = this.aWays[a]!;
    const first = this.aBase[a]! + setOf(vpn, this.aSets[a]!) * ways;
    let best = first;
    for (let slot = first; slot < first + ways; slot++) {
      if (this.valid[slot] === 0) return slot;
      if (this.stamp[slot]! < this.stamp[best]!) best = slot;
    }
    return best;
  }

  private arrayOf(slot: number): number {
    let a = this.nArrays - 1;
    while (this.aBase[a]! > slot) a--;
    return a;
  }

  private setLive(a: number, s: number, delta: number): void {
    const i = a * MAX_SHIFT + s;
    const before = this.liveCount[i]!;
    this.liveCount[i] = before + delta;
    if (before === 0 && delta > 0) {
      this.liveList[a * MAX_SHIFT + this.liveLen[a]!] = s;
      this.liveLen[a]!++;
    } else if (before + delta === 0) {
      const n = this.liveLen[a]!;
      for (let k = 0; k < n; k++) {
        if (this.liveList[a * MAX_SHIFT + k] === s) {
          this.liveList[a * MAX_SHIFT + k] = this.liveList[a * MAX_SHIFT + n - 1]!;
          this.liveLen[a] = n - 1;
          break;
        }
      }
    }
  }

  private kill(slot: number): void {
    if (this.valid[slot] === 0) return;
    this.valid[slot] = 0;
    this.setLive(this.arrayOf(slot), this.shift[slot]!, -1);
  }

  /** Take a slot in array a for (vpn, shift), evicting the LRU way; returns it. */
  private claim(a: number, vpn: number, shift: number, asid: number, global: number): number {
    // An entry already there for the same tag is replaced, never duplicated.
    const ways = this.aWays[a]!;
    const first = this.aBase[a]! + setOf(vpn, this.aSets[a]!) * ways;
    let slot = -1;
    for (let s = first; s < first + ways; s++) {
      if (this.valid[s] === 1 && this.vpn[s] === vpn && this.shift[s] === shift && this.global[s] === global && (global === 1 || this.asid[s] === asid)) {
        slot = s;
        break;
      }
    }
    if (slot < 0) {
      slot = this.victim(a, vpn);
      if (this.valid[slot] === 1) this.aEvictions[a]!++;
      this.kill(slot);
    }
    this.aFills[a]!++;
    return slot;
  }

  private copyInto(a: number, from: number): void {
    const s = this.shift[from]!;
    const slot = this.claim(a, this.vpn[from]!, s, this.asid[from]!, this.global[from]!);
    this.vpn[slot] = this.vpn[from]!;
    this.shift[slot] = s;
    this.asid[slot] = this.asid[from]!;
    this.global[slot] = this.global[from]!;
    this.paBase[slot] = this.paBase[from]!;
    this.permUser[slot] = this.permUser[from]!;
    this.permPriv[slot] = this.permPriv[from]!;
    this.flags[slot] = this.flags[from]!;
    this.pkey[slot] = this.pkey[from]!;
    this.attrIndx[slot] = this.attrIndx[from]!;
    this.level[slot] = this.level[from]!;
    this.leafLo[slot] = this.leafLo[from]!;
    this.leafHi[slot] = this.leafHi[from]!;
    this.stamp[slot] = ++this.clock;
    this.valid[slot] = 1;
    this.setLive(a, s, 1);
  }

  /**
   * Insert a translation of 2^shift bytes into every array that holds that size (L1 and L2: an
   * inclusive model). Returns false when no array holds the size (the translation is not cached).
   */
  fill(
    vaHi: number,
    vaLo: number,
    shift: number,
    asid: number,
    global: boolean,
    paBase: number,
    permUser: number,
    permPriv: number,
    flags: number,
    pkey: number,
    attrIndx: number,
    level: number,
    leafLo: number,
    leafHi: number,
  ): boolean {
    const vpn = vpnOf(vaHi, vaLo, shift);
    const g = global ? 1 : 0;
    let filled = false;
    for (let a = 0; a < this.nArrays; a++) {
      if (this.aAccepts[a * MAX_SHIFT + shift] !== 1) continue;
      const slot = this.claim(a, vpn, shift, asid, g);
      this.vpn[slot] = vpn;
      this.shift[slot] = shift;
      this.asid[slot] = g ? 0 : asid;
      this.global[slot] = g;
      this.paBase[slot] = paBase;
      this.permUser[slot] = permUser;
      this.permPriv[slot] = permPriv;
      this.flags[slot] = flags;
      this.pkey[slot] = pkey;
      this.attrIndx[slot] = attrIndx;
      this.level[slot] = level;
      this.leafLo[slot] = leafLo;
      this.leafHi[slot] = leafHi;
      this.stamp[slot] = ++this.clock;
      this.valid[slot] = 1;
      this.setLive(a, shift, 1);
      filled = true;
    }
    return filled;
  }

  private matchesTag(slot: number, asid: number, mode: number): boolean {
    if (mode === INV_ALL_ASIDS) return true;
    if (this.global[slot] === 1) return mode === INV_ASID_OR_GLOBAL;
    return this.asid[slot] === asid;
  }

  /** Invalidate every entry (all arrays, global ones too). */
  invalidateAll(): number {
    let n = 0;
    for (let slot = 0; slot < this.size; slot++) {
      if (this.valid[slot] === 1) {
        this.kill(slot);
        n++;
      }
    }
    return n;
  }

  /** Invalidate the non-global entries of one ASID/PCID, or of every ASID when asid < 0. */
  invalidateNonGlobal(asid: number): number {
    let n = 0;
    for (let slot = 0; slot < this.size; slot++) {
      if (this.valid[slot] === 1 && this.global[slot] === 0 && (asid < 0 || this.asid[slot] === asid)) {
        this.kill(slot);
        n++;
      }
    }
    return n;
  }

  /** Invalidate the entries, of any size, that translate the VA (mode: INV_*). */
  invalidateVa(vaHi: number, vaLo: number, asid: number, mode: number): number {
    let n = 0;
    for (let a = 0; a < this.nArrays; a++) {
      const ways = this.aWays[a]!;
      const sets = this.aSets[a]!;
      const base = this.aBase[a]!;
      for (let s = 12; s < MAX_SHIFT; s++) {
        if (this.liveCount[a * MAX_SHIFT + s] === 0) continue;
        const vpn = vpnOf(vaHi, vaLo, s);
        const first = base + setOf(vpn, sets) * ways;
        for (let slot = first; slot < first + ways; slot++) {
          if (this.valid[slot] === 1 && this.vpn[slot] === vpn && this.shift[slot] === s && this.matchesTag(slot, asid, mode)) {
            this.kill(slot);
            n++;
          }
        }
      }
    }
    return n;
  }

  /**
   * Invalidate entries overlapping [start, end) (numbers: page-aligned VAs are exact below 2^64),
   * mode INV_*. Scans every entry: range invalidations are rare and may cover many sets.
   */
  invalidateRange(start: number, end: number, asid: number, mode: number): number {
    let n = 0;
    for (let slot = 0; slot < this.size; slot++) {
      if (this.valid[slot] === 0) continue;
      const size = POW2[this.shift[slot]!]!;
      const base = this.vpn[slot]! * size;
      if (base < end && base + size > start && this.matchesTag(slot, asid, mode)) {
        this.kill(slot);
        n++;
      }
    }
    return n;
  }

  /** Drop one entry (x86: a page fault invalidates the entry for the faulting address, SDM 4.10.4.1). */
  invalidateSlot(slot: number): void {
    this.kill(slot);
  }

  /** Valid entries now. */
  occupancy(): number {
    let n = 0;
    for (let slot = 0; slot < this.size; slot++) n += this.valid[slot]!;
    return n;
  }

  arrayStats(): TlbArrayStats[] {
    return this.config.arrays.map((a, i) => ({
      name: a.name,
      level: a.level,
      entries: a.entries,
      ways: a.ways,
      hits: this.aHits[i]!,
      fills: this.aFills[i]!,
      evictions: this.aEvictions[i]!,
    }));
  }

  resetStats(): void {
    this.aHits.fill(0);
    this.aFills.fill(0);
    this.aEvictions.fill(0);
  }
}
