/**
 * An independent expectation model of one x86-64 data or instruction access, written from the SDM
 * Vol. 3A rules (§4.5.4 reserved bits, §4.6 access rights, §4.7 the #PF error code, §4.8 A/D)
 * and NOT from src/arch/x86_64/mmu.ts: it reasons on the case's named flags, never on descriptor
 * bits, and it does not import the MMU.
 *
 * The case space is the one kvm-unit-tests' x86/access.c explores (its code is not used): the
 * flags of the PTE and of the PDE (P, R/W, U/S, A, D, XD, PS on the PDE, an address bit above
 * MAXPHYADDR, bit 51, bit 13 of a 2-MByte PDE, the protection key) × CR0.WP × EFER.NXE ×
 * CR4.SMEP × CR4.SMAP with RFLAGS.AC × CR4.PKE with PKRU AD/WD for the key × user/supervisor ×
 * read/write/fetch. Case i is a mixed-radix number (RADICES below, first digit least
 * significant), so any case is reproducible from its index.
 *
 * The upper levels (PML5E with LA57, PML4E, PDPTE) are fixed: present, R/W = 1, U/S = 1, XD = 0,
 * A = 0, so the model can also say which A bits a successful access sets there.
 */
import type { PhysMem } from '../../src/mem/physmem';
import type { AccessKind, Mmu, WalkResult } from '../../src/arch/mmu-types';

/** MAXPHYADDR of the matrix (the smallest a 64-bit CPU reports, as access.c's "bit 36" cases). */
export const MATRIX_MAXPHYADDR = 36;

export const ACCESSES: readonly AccessKind[] = ['read', 'write', 'exec'];
/** SMAP setting: off; on with RFLAGS.AC = 0; on with RFLAGS.AC = 1. */
export const SMAP_MODES = ['off', 'ac0', 'ac1'] as const;
/**
 * Protection-key setting: the leaf's key and PKRU. 0..3: key 1 with AD1 = bit 0 of the value and
 * WD1 = bit 1; 4: key 0 with every other key's AD and WD set (PKRU = 0xffff_fffc), to show only
 * the page's own key counts.
 */
export const PKEY_MODES = 5;
/** Reserved-bit choice of a present entry: none, address bit MAXPHYADDR, bit 51; PDE also bit 13. */
export const PTE_RSVD = ['none', 'maxphy', 'bit51'] as const;
export const PDE_RSVD = ['none', 'maxphy', 'bit51', 'bit13'] as const;
/** PTE: 0 = not present and clean, 1 = not present with every other bit set, 2.. = present: W U A D NX × rsvd. */
export const PTE_STATES = 2 + 32 * PTE_RSVD.length;
/** PDE: 0 = not present and clean, 1 = not present with every other bit set, 2.. = present: W U A D NX PS × rsvd. */
export const PDE_STATES = 2 + 64 * PDE_RSVD.length;

/** Digits, least significant first. */
export const RADICES = [3, 2, 2, 2, 2, 3, 2, PKEY_MODES, PTE_STATES, PDE_STATES] as const;
export const CASE_COUNT = RADICES.reduce((a, b) => a * b, 1);
/** The CPU-state digits (wp … pkey mode) as one number, to pick a pre-configured MMU. */
export const CPU_CONFIGS = 2 * 2 * 2 * 3 * 2 * PKEY_MODES;

export interface EntryFlags {
  p: boolean;
  w: boolean;
  u: boolean;
  a: boolean;
  d: boolean;
  nx: boolean;
  /** PDE only. */
  ps: boolean;
  rsvd: 'none' | 'maxphy' | 'bit51' | 'bit13';
  /** Not present with every other bit set. */
  junk: boolean;
}

export interface AccessCase {
  index: number;
  access: AccessKind;
  user: boolean;
  wp: boolean;
  nxe: boolean;
  smep: boolean;
  smap: boolean;
  ac: boolean;
  pke: boolean;
  /** The protection key in the leaf (1, or 0 in PKEY mode 4). */
  key: number;
  pkru: number;
  /** Index of the CPU-state digits, 0 … CPU_CONFIGS-1. */
  cpu: number;
  pte: EntryFlags;
  pde: EntryFlags;
}

function flags(): EntryFlags {
  return { p: false, w: false, u: false, a: false, d: false, nx: false, ps: false, rsvd: 'none', junk: false };
}

export function newCase(): AccessCase {
  return {
    index: 0,
    access: 'read',
    user: false,
    wp: false,
    nxe: false,
    smep: false,
    smap: false,
    ac: false,
    pke: false,
    key: 0,
    pkru: 0,
    cpu: 0,
    pte: flags(),
    pde: flags(),
  };
}

function decodeEntry(state: number, isPde: boolean, e: EntryFlags): void {
  e.ps = false;
  e.rsvd = 'none';
  if (state < 2) {
    e.p = false;
    e.junk = state === 1;
    e.w = e.u = e.a = e.d = e.nx = e.junk;
    e.ps = isPde && e.junk;
    return;
  }
  e.p = true;
  e.junk = false;
  let s = state - 2;
  e.w = s % 2 === 1;
  s = Math.floor(s / 2);
  e.u = s % 2 === 1;
  s = Math.floor(s / 2);
  e.a = s % 2 === 1;
  s = Math.floor(s / 2);
  e.d = s % 2 === 1;
  s = Math.floor(s / 2);
  e.nx = s % 2 === 1;
  s = Math.floor(s / 2);
  if (isPde) {
    e.ps = s % 2 === 1;
    s = Math.floor(s / 2);
    e.rsvd = PDE_RSVD[s]!;
  } else {
    e.rsvd = PTE_RSVD[s]!;
  }
}

/** Case i of the space, written into c (reused: the enumeration allocates nothing per case). */
export function decodeCase(i: number, c: AccessCase): AccessCase {
  if (!Number.isInteger(i) || i < 0 || i >= CASE_COUNT) throw new RangeError(`case ${i} outside 0..${CASE_COUNT - 1}`);
  c.index = i;
  let r = i;
  c.access = ACCESSES[r % 3]!;
  r = Math.floor(r / 3);
  c.user = r % 2 === 1;
  r = Math.floor(r / 2);
  const cpu = r % CPU_CONFIGS;
  c.cpu = cpu;
  c.wp = r % 2 === 1;
  r = Math.floor(r / 2);
  c.nxe = r % 2 === 1;
  r = Math.floor(r / 2);
  c.smep = r % 2 === 1;
  r = Math.floor(r / 2);
  const smap = SMAP_MODES[r % 3]!;
  c.smap = smap !== 'off';
  c.ac = smap === 'ac1';
  r = Math.floor(r / 3);
  c.pke = r % 2 === 1;
  r = Math.floor(r / 2);
  const pk = r % PKEY_MODES;
  r = Math.floor(r / PKEY_MODES);
  if (pk < 4) {
    c.key = 1;
    c.pkru = pk << 2; // AD1 = bit 2, WD1 = bit 3
  } else {
    c.key = 0;
    c.pkru = 0xffff_fffc;
  }
  decodeEntry(r % PTE_STATES, false, c.pte);
  r = Math.floor(r / PTE_STATES);
  decodeEntry(r, true, c.pde);
  return c;
}

function encodeEntry(e: EntryFlags, isPde: boolean): number {
  if (!e.p) return e.junk ? 1 : 0;
  let s = isPde ? PDE_RSVD.indexOf(e.rsvd) : PTE_RSVD.indexOf(e.rsvd as (typeof PTE_RSVD)[number]);
  if (s < 0) throw new RangeError(`reserved choice ${e.rsvd} does not exist for a ${isPde ? 'PDE' : 'PTE'}`);
  if (isPde) s = s * 2 + +e.ps;
  s = s * 2 + +e.nx;
  s = s * 2 + +e.d;
  s = s * 2 + +e.a;
  s = s * 2 + +e.u;
  s = s * 2 + +e.w;
  return 2 + s;
}

/** The index of a case (the inverse of decodeCase; the key/PKRU pair must be one of PKEY_MODES). */
export function encodeCase(c: AccessCase): number {
  let pk: number;
  if (c.key === 1 && (c.pkru & ~0xc) === 0) pk = c.pkru >>> 2;
  else if (c.key === 0 && c.pkru >>> 0 === 0xffff_fffc) pk = 4;
  else throw new RangeError(`key ${c.key} with PKRU 0x${(c.pkru >>> 0).toString(16)} is not in the matrix`);
  const smap = c.smap ? (c.ac ? 2 : 1) : 0;
  const digits = [ACCESSES.indexOf(c.access), +c.user, +c.wp, +c.nxe, +c.smep, smap, +c.pke, pk, encodeEntry(c.pte, false), encodeEntry(c.pde, true)];
  let i = 0;
  for (let d = digits.length - 1; d >= 0; d--) i = i * RADICES[d]! + digits[d]!;
  return i;
}

/** The CPU state of a configuration index (the digits wp … pkey mode), as registers. */
export function cpuRegisters(cpu: number, la57: boolean, cr3: number): Record<string, bigint> {
  const c = newCase();
  decodeCase(cpu * 6, c); // access = read, user = false, the same CPU digits
  let cr0 = 0x8000_0033n;
  if (c.wp) cr0 |= 1n << 16n;
  let cr4 = 0x20n; // PAE
  if (la57) cr4 |= 1n << 12n;
  if (c.smep) cr4 |= 1n << 20n;
  if (c.smap) cr4 |= 1n << 21n;
  if (c.pke) cr4 |= 1n << 22n;
  const efer = c.nxe ? 0xd00n : 0x500n;
  const rflags = c.ac ? 0x2n | (1n << 18n) : 0x2n;
  return { cr0, cr3: BigInt(cr3), cr4, efer, pkru: BigInt(c.pkru >>> 0), rflags };
}

export function describeCase(c: AccessCase): string {
  const e = (x: EntryFlags, pde: boolean) =>
    x.p
      ? `P${x.w ? ' W' : ''}${x.u ? ' U' : ''}${x.a ? ' A' : ''}${x.d ? ' D' : ''}${x.nx ? ' XD' : ''}${pde && x.ps ? ' PS' : ''}${x.rsvd !== 'none' ? ` +${x.rsvd}` : ''}`
      : x.junk
        ? 'not-present (all other bits set)'
        : 'not-present';
  return (
    `case ${c.index}: ${c.user ? 'user' : 'supervisor'} ${c.access}; CR0.WP=${+c.wp} EFER.NXE=${+c.nxe} CR4.SMEP=${+c.smep} ` +
    `CR4.SMAP=${+c.smap} RFLAGS.AC=${+c.ac} CR4.PKE=${+c.pke} key=${c.key} PKRU=0x${(c.pkru >>> 0).toString(16)}; ` +
    `PDE ${e(c.pde, true)}; PTE ${e(c.pte, false)}`
  );
}

/** What the SDM says happens. */
export interface Expectation {
  fault: 'not_present' | 'reserved' | 'protection' | null;
  level: number;
  code: number;
  /** Physical address on success. */
  pa: number;
  /** A (0x20) | D (0x40) of each entry afterwards, by level (index 1 = PTE … 5 = PML5E). */
  readonly ad: number[];
}

export function newExpectation(): Expectation {
  return { fault: null, level: 0, code: 0, pa: 0, ad: [0, 0, 0, 0, 0, 0] };
}

/** Where the matrix's leaves point (below 2^36, so MAXPHYADDR = 36 leaves them valid). */
export const PAGE_4K = 0x9_8765_4000;
export const PAGE_2M = 0x7_a3e0_0000;

const AD = (x: EntryFlags): number => (x.a ? 0x20 : 0) | (x.d ? 0x40 : 0);

/**
 * The SDM's verdict on case c through the fixed upper levels, at linear address offset bits
 * `vaLow21` (bits 20:0 of the VA).
 */
export function expectAccess(c: AccessCase, levels: 4 | 5, vaLow21: number, x: Expectation): Expectation {
  const { pte, pde } = c;
  const write = c.access === 'write';
  const fetch = c.access === 'exec';
  // Before the walk: nothing changes unless the access succeeds.
  for (let l = 3; l <= 5; l++) x.ad[l] = 0;
  x.ad[2] = AD(pde);
  x.ad[1] = AD(pte);
  x.pa = 0;
  x.level = 0;

  // §4.7 Figure 4-12: W/R, U/S describe the access; I/D marks a fetch when NXE = 1 or SMEP = 1.
  let code = 0;
  if (write) code += 2;
  if (c.user) code += 4;
  if (fetch && (c.nxe || c.smep)) code += 16;

  // §4.5.4: a present entry with a reserved bit set, checked level by level from the top.
  // Reserved: address bits at or above MAXPHYADDR (bit 36 and bit 51 here), XD without NXE, and
  // bit 13 in a PDE mapping a 2-MByte page (it is a table-address bit in a PDE with PS = 0).
  const reserved = (e: EntryFlags, isLeaf2M: boolean): boolean =>
    e.rsvd === 'maxphy' || e.rsvd === 'bit51' || (e.nx && !c.nxe) || (isLeaf2M && e.rsvd === 'bit13');

  if (!pde.p) return done(x, 'not_present', 2, code);
  if (reserved(pde, pde.ps)) return done(x, 'reserved', 2, code | 1 | 8);
  const huge = pde.ps;
  if (!huge) {
    if (!pte.p) return done(x, 'not_present', 1, code);
    if (reserved(pte, false)) return done(x, 'reserved', 1, code | 1 | 8);
  }
  const leafLevel = huge ? 2 : 1;
  // §4.6: the upper levels grant everything, so the rights are the PDE's and (4K) the PTE's.
  const writable = pde.w && (huge || pte.w);
  const userPage = pde.u && (huge || pte.u); // "user-mode address"
  const xd = pde.nx || (!huge && pte.nx);
  const execDisabled = c.nxe && xd;

  // §4.6.1, rule by rule.
  let allowed: boolean;
  if (c.user) {
    if (!userPage) allowed = false; // user mode never touches supervisor-mode addresses
    else if (c.access === 'read') allowed = true;
    else if (write) allowed = writable;
    else allowed = !execDisabled;
  } else if (c.access === 'read') {
    // Supervisor reads: any supervisor-mode address; user-mode ones unless SMAP and AC = 0.
    allowed = !userPage || !c.smap || c.ac;
  } else if (write) {
    if (userPage && c.smap && !c.ac) allowed = false;
    else allowed = !c.wp || writable; // WP = 0: any address; WP = 1: R/W = 1 only
  } else {
    // Supervisor fetches: XD with NXE, and SMEP forbids user-mode addresses.
    allowed = !execDisabled && !(c.smep && userPage);
  }

  // §4.6.2: PKRU for the leaf's key, for data accesses to user-mode addresses.
  let keyDenied = false;
  if (c.pke && userPage && !fetch) {
    const adBit = ((c.pkru >>> 0) / 2 ** (2 * c.key)) % 2 === 1;
    const wdBit = Math.floor((c.pkru >>> 0) / 2 ** (2 * c.key + 1)) % 2 === 1;
    if (adBit) keyDenied = true;
    if (wdBit && write && (c.user || c.wp)) keyDenied = true;
  }
  if (!allowed || keyDenied) return done(x, 'protection', leafLevel, code | 1 | (keyDenied ? 32 : 0));

  // §4.8: success — A in every entry used, D in the leaf for a write.
  for (let l = 3; l <= levels; l++) x.ad[l] = 0x20;
  if (huge) {
    x.ad[2] = AD(pde) | 0x20 | (write ? 0x40 : 0);
    x.pa = PAGE_2M + vaLow21;
  } else {
    x.ad[2] = AD(pde) | 0x20; // a table PDE's bit 6 is ignored: D stays as it was
    x.ad[1] = AD(pte) | 0x20 | (write ? 0x40 : 0);
    x.pa = PAGE_4K + (vaLow21 % 4096);
  }
  x.fault = null;
  x.level = leafLevel;
  x.code = 0;
  return x;
}

function done(x: Expectation, kind: 'not_present' | 'reserved' | 'protection', level: number, code: number): Expectation {
  x.fault = kind;
  x.level = level;
  x.code = code;
  return x;
}

// ---------------------------------------------------------------------------------------------
// Running a case against an MMU: the tables and the comparison. Shared by the vitest sample and
// bench/access-matrix.ts.

/** Table frames (physical addresses) of the matrix memory. */
export const MATRIX_LAYOUT = {
  pml5: 0x1000,
  pml4: 0x2000,
  pdpt: 0x3000,
  pd: 0x4000,
  /** The PT; a PDE with bit 13 set (and PS = 0) points at pt + 0x2000 instead. */
  pt: 0x8000,
  ptAlt: 0xa000,
  size: 0x10000,
} as const;

/** Indices of the matrix VA at each level and its offset bits 20:0. */
export interface MatrixVa {
  vaHi: number;
  vaLo: number;
  idx: readonly number[]; // by level, [0] unused
  low21: number;
}

/** The matrix VA: indices 0x1c7 (PML5, LA57 only), 0x123, 0x0ab, 0x155, 0x0cc; offset 0x9ab. */
export function matrixVa(levels: 4 | 5): MatrixVa {
  const idx = [0, 0x0cc, 0x155, 0x0ab, 0x123, levels === 5 ? 0x1c7 : 0];
  let v = 0x9abn;
  for (let l = 1; l <= 5; l++) v |= BigInt(idx[l]!) << BigInt(3 + 9 * l);
  const sign = levels === 5 ? 56n : 47n;
  if ((v >> sign) & 1n) v |= ((1n << 64n) - 1n) ^ ((1n << (sign + 1n)) - 1n);
  return { vaHi: Number(v >> 32n), vaLo: Number(v & 0xffff_ffffn), idx, low21: Number(v & 0x1f_ffffn) };
}

const LO_BITS = { p: 1, w: 2, u: 4, a: 0x20, d: 0x40, ps: 0x80 };

function entryLo(e: EntryFlags, base: number): number {
  let lo = base;
  if (e.p) lo |= LO_BITS.p;
  if (e.w) lo |= LO_BITS.w;
  if (e.u) lo |= LO_BITS.u;
  if (e.a) lo |= LO_BITS.a;
  if (e.d) lo |= LO_BITS.d;
  if (e.ps) lo |= LO_BITS.ps;
  if (e.rsvd === 'bit13' || e.junk) lo |= 0x2000;
  return lo >>> 0;
}

function entryHi(e: EntryFlags, baseHi: number, key: number): number {
  let hi = baseHi | (key << 27); // protection key in bits 62:59 (ignored in non-leaf entries)
  if (e.nx) hi |= 0x8000_0000;
  if (e.rsvd === 'maxphy' || e.junk) hi |= 1 << (MATRIX_MAXPHYADDR - 32);
  if (e.rsvd === 'bit51' || e.junk) hi |= 1 << 19;
  return hi >>> 0;
}

function put(u: Uint32Array, table: number, index: number, lo: number, hi: number): void {
  const w = (table + index * 8) / 4;
  u[w] = lo;
  u[w + 1] = hi;
}

/** Writes case c's tables (mem must be MATRIX_LAYOUT.size bytes at phys_base 0). */
export function buildCase(mem: PhysMem, c: AccessCase, levels: 4 | 5, va: MatrixVa): void {
  const u = mem.u32;
  const L = MATRIX_LAYOUT;
  const up = 0x7; // P | R/W | U/S, A = 0
  if (levels === 5) put(u, L.pml5, va.idx[5]!, L.pml4 | up, 0);
  put(u, L.pml4, va.idx[4]!, L.pdpt | up, 0);
  put(u, L.pdpt, va.idx[3]!, L.pd | up, 0);
  const pdeBase = c.pde.ps ? PAGE_2M % 2 ** 32 : L.pt;
  const pdeHiBase = c.pde.ps ? Math.floor(PAGE_2M / 2 ** 32) : 0;
  put(u, L.pd, va.idx[2]!, entryLo(c.pde, pdeBase), entryHi(c.pde, pdeHiBase, c.key));
  const pteLo = entryLo(c.pte, PAGE_4K % 2 ** 32);
  const pteHi = entryHi(c.pte, Math.floor(PAGE_4K / 2 ** 32), c.key);
  // The PTE goes into both page tables, so a PDE whose bit 13 selects the other one finds it.
  put(u, L.pt, va.idx[1]!, pteLo, pteHi);
  put(u, L.ptAlt, va.idx[1]!, pteLo, pteHi);
}

/** A and D (bits 5, 6) of the entry at table[index]. */
function adAt(u: Uint32Array, table: number, index: number): number {
  return u[(table + index * 8) / 4]! & 0x60;
}

/** The table holding the level-l entry of the matrix VA (1 = the PT the PDE selects). */
function tableOf(c: AccessCase, l: number): number {
  const L = MATRIX_LAYOUT;
  if (l === 1) return c.pde.p && !c.pde.ps && c.pde.rsvd === 'bit13' ? L.ptAlt : L.pt;
  return l === 2 ? L.pd : l === 3 ? L.pdpt : l === 4 ? L.pml4 : L.pml5;
}

/**
 * Compares the MMU's walk of case c (tables already built) with the model. Returns null when they
 * agree, else a message naming the case.
 */
export function checkCase(mmu: Mmu, mem: PhysMem, c: AccessCase, levels: 4 | 5, va: MatrixVa, out: WalkResult, x: Expectation): string | null {
  mmu.walk(va.vaHi, va.vaLo, c.access, c.user, false, out);
  expectAccess(c, levels, va.low21, x);
  const u = mem.u32;
  // A PDE with bit 13 set and PS = 0 points at the other PT copy; the unused copy must not change.
  const other = tableOf(c, 1) === MATRIX_LAYOUT.pt ? MATRIX_LAYOUT.ptAlt : MATRIX_LAYOUT.pt;
  const pteAd = (c.pte.a ? 0x20 : 0) + (c.pte.d ? 0x40 : 0);
  let agree =
    out.fault === x.fault &&
    out.code === x.code &&
    out.level === x.level &&
    (x.fault !== null || out.pa === x.pa) &&
    adAt(u, other, va.idx[1]!) === pteAd;
  for (let l = 1; l <= levels && agree; l++) agree = adAt(u, tableOf(c, l), va.idx[l]!) === x.ad[l];
  if (agree) return null;

  let diff = '';
  if (out.fault !== x.fault) diff += ` fault ${out.fault} (model ${x.fault})`;
  if (out.code !== x.code) diff += ` code 0x${out.code.toString(16)} (model 0x${x.code.toString(16)})`;
  if (out.level !== x.level) diff += ` level ${out.level} (model ${x.level})`;
  if (x.fault === null && out.pa !== x.pa) diff += ` pa 0x${out.pa.toString(16)} (model 0x${x.pa.toString(16)})`;
  for (let l = 1; l <= levels; l++) {
    const got = adAt(u, tableOf(c, l), va.idx[l]!);
    if (got !== x.ad[l]) diff += ` A/D at level ${l} 0x${got.toString(16)} (model 0x${x.ad[l]!.toString(16)})`;
  }
  if (adAt(u, other, va.idx[1]!) !== pteAd) diff += ' the unused PT copy changed';
  return `${levels}-level ${describeCase(c)}:${diff}`;
}
