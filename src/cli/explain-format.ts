/**
 * A hardware walk explained step by step: what `mmulab explain` prints, and the compact form the
 * demo shows. The walk itself is the Mmu's (src/arch/*\/mmu.ts, the CPU's view); this module only
 * reads what it recorded — WalkResult.entryAddrs / entryLo / entryHi, one per descriptor read, top
 * level first — and says, from the raw descriptors and the manuals' rules, where each entry sits
 * (table base + index × 8, the index taken from the VA bits: SDM Vol.3A §4.5 Figures 4-8…4-11;
 * Arm ARM D8.2 "Translation granules and lookup levels") and why the walk went down or stopped.
 *
 * Nothing here changes memory: the walk is a debugger's (no accessed/dirty or AF updates).
 */
import {
  WalkResult,
  isFault,
  type AccessKind,
  type ArchBits,
  type DecodedDescriptor,
  type FaultKind,
  type Geometry,
  type Mmu,
} from '../index';
import { formatDecoded } from './commands/decode';
import { hex, sizeName, type Style } from './style';

export type StepAction = 'descend' | 'leaf' | 'fault';

/** One descriptor the walk read. */
export interface ExplainStep {
  /** The hardware level number: x86-64 5…1 (PML5 … PT), ARM64 lookup level -1…3. */
  readonly level: number;
  /** "PML4", "PD", "level 2"… */
  readonly tableName: string;
  /** Physical address of the table, and the entry's index in it. */
  readonly table: number;
  readonly index: number;
  /** The VA bits that made the index (inclusive). */
  readonly vaMsb: number;
  readonly vaLsb: number;
  /** Physical address of the entry: table + index × 8. */
  readonly entryAddr: number;
  readonly raw: bigint;
  readonly decoded: DecodedDescriptor;
  readonly action: StepAction;
  /** Why the walk descended, stopped at a leaf, or faulted here — in the manuals' terms. */
  readonly why: string;
}

export interface ExplainFault {
  readonly kind: FaultKind;
  readonly level: number;
  /** x86-64 #PF error code; ARM64 DFSC/IFSC. */
  readonly code: number;
  /** The exception as the manual names it: "#PF, error code 0x7 (P | W/R | U/S)", "Data Abort … DFSC …". */
  readonly name: string;
  /** Why, in one sentence (the step's `why` when the fault is at a step). */
  readonly why: string;
  /** The rule alone (for a fault at a leaf: what denied the access, without the leaf's description). */
  readonly rule: string;
}

export interface ExplainResult {
  readonly pa: bigint;
  readonly pageSize: number;
  readonly level: number;
  readonly attrs: Readonly<Record<string, number | boolean | string>>;
}

export interface Explanation {
  readonly arch: 'x86_64' | 'arm64';
  readonly va: bigint;
  readonly access: AccessKind;
  readonly user: boolean;
  /** The regime in one line: paging mode, root register and table. */
  readonly regime: string;
  readonly steps: readonly ExplainStep[];
  readonly result: ExplainResult | null;
  readonly fault: ExplainFault | null;
}

/** What explain needs: the hardware walk, a decoder for field names, the geometry, the registers. */
export interface ExplainContext {
  readonly mmu: Mmu;
  readonly bits: ArchBits;
  readonly geo: Geometry;
  /** The MMU's registers (machine.json names); used to name the rule behind a fault. */
  readonly registers: Readonly<Record<string, bigint>>;
  /** Whether emulated memory backs [pa, pa + len): a descriptor read elsewhere reads no memory. */
  readonly contains: (pa: number, len: number) => boolean;
}

// ---- small helpers ---------------------------------------------------------------------------------

const X86_TABLE = ['', 'PT', 'PD', 'PDPT', 'PML4', 'PML5'];
const X86_ENTRY = ['', 'PTE', 'PDE', 'PDPTE', 'PML4E', 'PML5E'];
const X86_NEXT = ['', 'page table', 'page directory', 'page-directory-pointer table', 'PML4 table', 'PML5 table'];

function bitOf(v: bigint | undefined, n: number): boolean {
  return v !== undefined && ((v >> BigInt(n)) & 1n) === 1n;
}
function fieldOf(v: bigint | undefined, msb: number, lsb: number): number {
  if (v === undefined) return 0;
  return Number((v >> BigInt(lsb)) & ((1n << BigInt(msb - lsb + 1)) - 1n));
}
function raw64(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
function hex16(v: bigint): string {
  return '0x' + v.toString(16).padStart(16, '0');
}
function bitsLabel(msb: number, lsb: number): string {
  return msb === lsb ? `${msb}` : `${msb}:${lsb}`;
}

/** Table name of a hardware level. */
export function tableName(g: Geometry, level: number): string {
  return g.arch === 'x86_64' ? (X86_TABLE[level] ?? `level ${level}`) : `level ${level}`;
}

/**
 * The VA bits that index the table at `level` (inclusive msb, lsb). x86-64 (SDM Vol.3A §4.5.4,
 * Figures 4-8…4-10): 9 bits per level above the 12-bit page offset. ARM64 (Arm ARM D8.2): the
 * granule's offset bits, then (granule bits − 3) per level; the start level takes what is left
 * below the VA size (e.g. 4K/48: level 0 bits 47:39; 64K/48: level 1 bits 47:42).
 */
export function vaIndexBits(g: Geometry, level: number): [number, number] {
  if (g.arch === 'x86_64') {
    const lsb = 12 + 9 * (level - 1);
    return [lsb + 8, lsb];
  }
  const gbits = g.PAGE_SHIFT;
  const stride = gbits - 3;
  const lsb = gbits + stride * (3 - level);
  const start = g.hwLevel[g.physicalLevels[0]!]!;
  return [level === start ? g.vaBits - 1 : lsb + stride - 1, lsb];
}

/** The hardware level of the walk's i-th descriptor read. */
function stepLevel(g: Geometry, i: number): number {
  const top = g.hwLevel[g.physicalLevels[0]!]!;
  return g.arch === 'x86_64' ? top - i : top + i;
}

// ---- the walk, explained ------------------------------------------------------------------------------

/** Walk `va` (a debugger walk: nothing written) and explain every step. */
export function explainTranslation(ctx: ExplainContext, va: bigint, access: AccessKind, user: boolean): Explanation {
  const g = ctx.geo;
  const v = BigInt.asUintN(64, va);
  const out = new WalkResult();
  // A table outside emulated memory is a fault, not an exception (mmu-types.ts): the walk records
  // that read as its last entry.
  ctx.mmu.walk(Number(v >> 32n), Number(v & 0xffff_ffffn), access, user, true, out);
  const n = Math.min(out.entries, out.entryAddrs.length);
  const faulted = out.fault !== null;
  const steps: ExplainStep[] = [];
  for (let i = 0; i < n; i++) {
    const level = stepLevel(g, i);
    const [msb, lsb] = vaIndexBits(g, level);
    const index = Number((v >> BigInt(lsb)) & ((1n << BigInt(msb - lsb + 1)) - 1n));
    const entryAddr = out.entryAddrs[i]!;
    const raw = raw64(out.entryLo[i]!, out.entryHi[i]!);
    const decoded = ctx.bits.decode(raw, level);
    const last = i === n - 1;
    // A fault reported below the last entry read (none today) leaves that entry a descent.
    const action: StepAction = !last ? 'descend' : faulted && out.level === level ? 'fault' : faulted ? 'descend' : 'leaf';
    steps.push({ level, tableName: tableName(g, level), table: entryAddr - index * 8, index, vaMsb: msb, vaLsb: lsb, entryAddr, raw, decoded, action, why: '' });
  }
  // Reasons need the steps above (combined rights), so they are filled in a second pass.
  const ctxR = { ctx, steps, out, access, user, v };
  let rule = '';
  for (let i = 0; i < steps.length; i++) {
    const w = stepWhy(ctxR, i);
    (steps[i] as { why: string }).why = w.leaf && w.rule ? `${w.leaf}; but ${w.rule}` : w.leaf || w.rule;
    rule = w.rule || w.leaf;
  }

  let fault: ExplainFault | null = null;
  let result: ExplainResult | null = null;
  if (out.fault !== null) {
    const atStep = steps.length > 0 && steps[steps.length - 1]!.action === 'fault';
    const why = atStep ? steps[steps.length - 1]!.why : noStepWhy(ctxR);
    fault = { kind: out.fault, level: out.level, code: out.code, name: faultName(g, out.fault, out.code, out.level, access, user), why, rule: atStep ? rule : why };
  } else {
    const t = ctx.mmu.translate(v, access, user, { debug: true });
    if (!isFault(t)) result = { pa: t.pa, pageSize: t.pageSize, level: t.level, attrs: t.attrs };
  }
  return { arch: g.arch, va: v, access, user, regime: regimeLine(ctx, v), steps, result, fault };
}

interface Ctx {
  readonly ctx: ExplainContext;
  readonly steps: readonly ExplainStep[];
  readonly out: WalkResult;
  readonly access: AccessKind;
  readonly user: boolean;
  readonly v: bigint;
}

function regimeLine(ctx: ExplainContext, va: bigint): string {
  const g = ctx.geo;
  const r = ctx.registers;
  if (g.arch === 'x86_64') {
    const levels = g.pgtableLevels;
    return `x86-64 ${levels}-level paging (CR4.LA57 = ${levels === 5 ? 1 : 0}), CR3 ${hex(r.cr3 ?? 0n)}`;
  }
  const upper = bitOf(va, 55);
  const name = upper ? 'TTBR1_EL1' : 'TTBR0_EL1';
  const ttbr = r[upper ? 'ttbr1_el1' : 'ttbr0_el1'];
  const start = g.hwLevel[g.physicalLevels[0]!]!;
  return `ARM64 stage 1, ${sizeName(g.PAGE_SIZE)} granule, ${g.vaBits}-bit VA (T${upper ? 1 : 0}SZ ${64 - g.vaBits}), start level ${start}; VA bit 55 = ${upper ? 1 : 0} → ${name} ${hex(ttbr ?? 0n)}`;
}

/**
 * Why the walk did what it did at step i: `leaf` describes a leaf the walk reached (empty
 * otherwise), `rule` the manual's rule that made it descend or fault (empty for a plain leaf).
 */
function stepWhy(c: Ctx, i: number): { leaf: string; rule: string } {
  const s = c.steps[i]!;
  if (s.action === 'descend') return { leaf: '', rule: descendWhy(c, i) };
  // The page size follows from the level (the VA bits below its index); the base from the
  // descriptor's address field (an ARM64 walk that faults at the leaf does not report it).
  const leaf = leafText(c.ctx.geo, s, 2 ** s.vaLsb, s.decoded.address !== undefined ? s.decoded.address : BigInt(c.out.pageBase));
  if (s.action === 'leaf') return { leaf, rule: '' };
  return faultWhy(c, s, leaf);
}

function descendWhy(c: Ctx, i: number): string {
  const s = c.steps[i]!;
  const next = s.decoded.address;
  const where = next !== undefined ? ` at ${hex(next)}` : '';
  if (c.ctx.geo.arch === 'x86_64') {
    const ps = s.level === 3 || s.level === 2 ? ', PS (bit 7) = 0' : '';
    return `P = 1${ps}: the ${X86_ENTRY[s.level]} references the ${X86_NEXT[s.level - 1]}${where}`;
  }
  const controls = s.decoded.fields
    .filter((f) => (f.name === 'apTable' || f.name === 'uxnTable' || f.name === 'pxnTable') && f.value !== 0n)
    .map((f) => `${ARM_NAMES[f.name]} = ${f.value.toString(2)}${f.meaning ? ` (${f.meaning})` : ''}`);
  return `bits[1:0] = 0b11 at level ${s.level}: table descriptor → level ${s.level + 1} table${where}${controls.length ? '; ' + controls.join(', ') : ''}`;
}

/** The walk faulted at step s: the rule, with the leaf's description when a leaf was reached. */
function faultWhy(c: Ctx, s: ExplainStep, leaf: string): { leaf: string; rule: string } {
  const g = c.ctx.geo;
  const kind = c.out.fault!;
  const only = (rule: string) => ({ leaf: '', rule });
  if (!c.ctx.contains(s.entryAddr, 8)) {
    // The MMU records a read with no memory behind it as an entry: x86-64 sees all-ones (an unbacked
    // read on a PC), ARM64 an External abort (mmu-types.ts, WalkResult.entryAddrs).
    const where = `the ${g.arch === 'x86_64' ? X86_ENTRY[s.level] : `level ${s.level} descriptor`} at ${hex(s.entryAddr)} is outside emulated memory`;
    if (g.arch === 'x86_64') {
      return only(`${where}: the read returns all-ones, a present entry with reserved bits set (SDM Vol.3A §4.5.4): a reserved-bit fault`);
    }
    return only(`${where}: the read gets an External abort, reported as a synchronous External abort on translation table walk (AArch64.S1Walk)`);
  }
  if (g.arch === 'x86_64') {
    if (kind === 'not_present') return only(`P (bit 0) = 0: the ${X86_ENTRY[s.level]} is not present (SDM Vol.3A §4.7)`);
    if (kind === 'reserved') return only(s.decoded.reason ?? `a reserved bit is set in the ${X86_ENTRY[s.level]} (SDM Vol.3A §4.5.4)`);
    return { leaf, rule: x86Denial(c) };
  }
  const lo = Number(s.raw & 0xffff_ffffn);
  switch (kind) {
    case 'translation':
      if (s.decoded.kind === 'invalid' || s.decoded.kind === 'reserved') return only(s.decoded.reason ?? 'invalid descriptor (bit 0 = 0): Translation fault');
      if ((lo & 3) === 1) {
        return only(
          `bits[1:0] = 0b01 (block) at level ${s.level}: the ${sizeName(g.PAGE_SIZE)} granule has no blocks at this level (Arm ARM D8.3, AArch64.BlockDescSupported): Translation fault`,
        );
      }
      return only('the descriptor does not translate (Arm ARM D8.3): Translation fault');
    case 'address_size':
      return only(
        `${s.decoded.kind === 'table' ? 'the next-level table address' : 'the output address'} ${s.decoded.address !== undefined ? hex(s.decoded.address) + ' ' : ''}is beyond the output address size (TCR_EL1.IPS = ${ipsBits(c.ctx)} bits): Address size fault (Arm ARM D8.3, AArch64.S1Walk)`,
      );
    case 'access_flag':
      return { leaf, rule: 'AF (bit 10) = 0 and TCR_EL1.HA = 0: the first access faults so that software can set AF (Arm ARM D8.5)' };
    default:
      return { leaf, rule: armDenial(c) };
  }
}

function leafText(g: Geometry, s: ExplainStep, pageSize: number, pageBase: bigint): string {
  const size = sizeName(pageSize);
  if (g.arch === 'x86_64') {
    const unit = pageSize === 4096 ? '4-KByte' : pageSize === 0x20_0000 ? '2-MByte' : '1-GByte';
    if (s.level === 1) return `the PTE maps a ${unit} page at ${hex(pageBase)}`;
    return `PS (bit 7) = 1: the ${X86_ENTRY[s.level]} maps a ${unit} page at ${hex(pageBase)}`;
  }
  if (s.level === 3) return `bits[1:0] = 0b11 at level 3: page descriptor, a ${size} page at ${hex(pageBase)}`;
  return `bits[1:0] = 0b01 at level ${s.level}: block descriptor, a ${size} block at ${hex(pageBase)}`;
}

/** Why a fault happened before (or without) a step of its own. */
function noStepWhy(c: Ctx): string {
  const g = c.ctx.geo;
  const r = c.ctx.registers;
  const out = c.out;
  if (g.arch === 'x86_64') {
    if (out.fault === 'non_canonical') {
      const top = g.pgtableLevels === 5 ? 56 : 47;
      return `bits 63:${top} of ${hex(c.v)} are not all equal: the address is not canonical (SDM Vol.3A §3.3.7.1); no page walk`;
    }
    return `a ${out.fault} fault at level ${out.level}`;
  }
  const upper = bitOf(c.v, 55);
  const n = upper ? 1 : 0;
  const tcr = r.tcr_el1;
  if (out.fault === 'address_size') return `the TTBR${n}_EL1 table address is beyond the output address size (TCR_EL1.IPS = ${ipsBits(c.ctx)} bits): Address size fault, level 0 (AArch64.S1Walk)`;
  if (bitOf(tcr, upper ? 23 : 7)) return `TCR_EL1.EPD${n} = 1: walks from TTBR${n}_EL1 are disabled, a level 0 Translation fault (Arm ARM D8.1)`;
  const tbi = bitOf(tcr, upper ? 38 : 37) && !(c.access === 'exec' && bitOf(tcr, upper ? 52 : 51));
  const txsz = fieldOf(tcr, upper ? 21 : 5, upper ? 16 : 0);
  const range = upper ? `[2^64 − 2^${64 - txsz}, 2^64)` : `[0, 2^${64 - txsz})`;
  return `${hex(c.v)} is outside the TTBR${n}_EL1 range ${range}: VA bits ${tbi ? 55 : 63}:${64 - txsz} must all equal bit 55${tbi ? ' (TBI' + n + ' = 1 ignores bits 63:56)' : ''} (Arm ARM D8.1, AArch64.VAIsOutOfRange): a level 0 Translation fault`;
}

function ipsBits(ctx: ExplainContext): number {
  return [32, 36, 40, 42, 44, 48, 52, 52][fieldOf(ctx.registers.tcr_el1, 34, 32)]!;
}

/** x86-64 SDM Vol.3A §4.6.1 / §4.6.2: the rule that denied the access, from the entries read. */
function x86Denial(c: Ctx): string {
  const r = c.ctx.registers;
  const steps = c.steps;
  const nxe = bitOf(r.efer, 11);
  const wp = bitOf(r.cr0, 16);
  const smep = bitOf(r.cr4, 20);
  const smap = bitOf(r.cr4, 21);
  const ac = bitOf(r.rflags, 18);
  // The first entry (top down) with R/W = 0, U/S = 0, XD = 1: rights are combined over all levels.
  const first = (test: (lo: number, hi: number) => boolean): ExplainStep | undefined =>
    steps.find((s) => test(Number(s.raw & 0xffff_ffffn), Number(s.raw >> 32n)));
  const noWrite = first((lo) => (lo & 2) === 0);
  const supervisor = first((lo) => (lo & 4) === 0);
  const xd = nxe ? first((_lo, hi) => hi >>> 31 === 1) : undefined;
  const at = (s: ExplainStep) => `in the ${X86_ENTRY[s.level]} (level ${s.level})`;
  const write = c.access === 'write';
  const exec = c.access === 'exec';
  if ((c.out.code & 0x20) !== 0) {
    const leaf = steps[steps.length - 1]!;
    const key = Number((leaf.raw >> 59n) & 0xfn);
    return `PKRU forbids this data access for protection key ${key} (${write ? 'AD or WD' : 'AD'} set; SDM Vol.3A §4.6.2)`;
  }
  if (c.user) {
    if (supervisor) return `U/S = 0 ${at(supervisor)}: a supervisor-mode address, no user-mode access (SDM Vol.3A §4.6.1)`;
    if (write && noWrite) return `R/W = 0 ${at(noWrite)}: user-mode writes are not allowed (SDM Vol.3A §4.6.1)`;
    if (exec && xd) return `XD = 1 ${at(xd)} with IA32_EFER.NXE = 1: instruction fetches are not allowed (SDM Vol.3A §4.6.1)`;
  } else if (exec) {
    if (xd) return `XD = 1 ${at(xd)} with IA32_EFER.NXE = 1: instruction fetches are not allowed (SDM Vol.3A §4.6.1)`;
    if (smep && !supervisor) return 'CR4.SMEP = 1: supervisor-mode fetches from a user-mode address are not allowed (SDM Vol.3A §4.6.1)';
  } else {
    if (smap && !supervisor && !ac) return 'CR4.SMAP = 1 and RFLAGS.AC = 0: supervisor-mode data accesses to a user-mode address are not allowed (SDM Vol.3A §4.6.1)';
    if (write && noWrite && wp) return `R/W = 0 ${at(noWrite)} with CR0.WP = 1: supervisor-mode writes are not allowed (SDM Vol.3A §4.6.1)`;
  }
  return 'the access rights of the paging-structure entries deny this access (SDM Vol.3A §4.6)';
}

/** ARM64 Arm ARM D8.4: the permission rule that denied the access, from the descriptors read. */
function armDenial(c: Ctx): string {
  const r = c.ctx.registers;
  const steps = c.steps;
  const leaf = steps[steps.length - 1]!;
  const upper = bitOf(c.v, 55);
  const tcr = r.tcr_el1;
  const hpd = bitOf(tcr, upper ? 42 : 41);
  const hd = bitOf(tcr, 39) && bitOf(tcr, 40);
  const lo = Number(leaf.raw & 0xffff_ffffn);
  const hi = Number(leaf.raw >> 32n);
  // Hierarchical controls (D8.4.2): bit 62 APTable[1] no write, 61 APTable[0] no EL0, 60 UXNTable, 59 PXNTable.
  const table = (bit: number): ExplainStep | undefined =>
    hpd ? undefined : steps.slice(0, -1).find((s) => ((s.raw >> BigInt(bit)) & 1n) === 1n);
  const ap1 = (lo & 0x40) !== 0;
  const ap2 = (lo & 0x80) !== 0;
  const dbm = hd && (hi & 0x80000) !== 0;
  const noEl0 = table(61);
  const noWrite = table(62);
  const ur = ap1 && !noEl0;
  const pw = !(ap2 && !dbm) && !noWrite;
  const uw = ur && pw;
  const lv = (s: ExplainStep) => `in the level ${s.level} table descriptor`;
  const wxn = bitOf(r.sctlr_el1, 19);
  const attrIndx = (lo >>> 2) & 7;
  const mairByte = fieldOf(r.mair_el1, attrIndx * 8 + 7, attrIndx * 8);
  const device = (mairByte & 0xf0) === 0;
  const apText = `AP[2:1] = 0b${(ap2 ? '1' : '0') + (ap1 ? '1' : '0')}`;
  if (c.access === 'exec') {
    if (c.user) {
      if ((hi & 0x400000) !== 0) return 'UXN (bit 54) = 1: not executable at EL0 (Arm ARM D8.4.1)';
      const t = table(60);
      if (t) return `UXNTable = 1 ${lv(t)}: nothing below it is executable at EL0 (Arm ARM D8.4.2)`;
      if (wxn && uw) return 'SCTLR_EL1.WXN = 1 and the page is writable at EL0: not executable there (Arm ARM D8.4.1)';
    } else {
      if ((hi & 0x200000) !== 0) return 'PXN (bit 53) = 1: not executable at EL1 (Arm ARM D8.4.1)';
      const t = table(59);
      if (t) return `PXNTable = 1 ${lv(t)}: nothing below it is executable at EL1 (Arm ARM D8.4.2)`;
      if (uw) return `${apText}: writable at EL0, hence never executable at EL1 (Arm ARM D8.4.1)`;
      if (wxn && pw) return 'SCTLR_EL1.WXN = 1 and the page is writable at EL1: not executable there (Arm ARM D8.4.1)';
    }
    if (device) return `AttrIndx ${attrIndx} selects Device memory (MAIR_EL1 0x${mairByte.toString(16).padStart(2, '0')}): instruction fetches fault (AArch64.S1CheckPermissions)`;
  } else if (c.user) {
    if (!ap1) return `${apText}: no access at EL0 (Arm ARM D8.4.1, Table D8-46)`;
    if (noEl0) return `APTable[0] = 1 ${lv(noEl0)}: no EL0 access below it (Arm ARM D8.4.2)`;
    if (c.access === 'write' && noWrite) return `APTable[1] = 1 ${lv(noWrite)}: no writes below it (Arm ARM D8.4.2)`;
    if (c.access === 'write' && ap2 && !dbm) return `${apText}: read-only at EL0 and EL1 (Arm ARM D8.4.1)${(hi & 0x80000) !== 0 ? '; DBM = 1 but TCR_EL1.HD = 0' : ''}`;
  } else {
    if (bitOf(r.pstate_pan, 0) && (ur || uw)) return 'PSTATE.PAN = 1 and the page is accessible at EL0: EL1 data accesses fault (Arm ARM D8.4.1.3)';
    if (c.access === 'write' && noWrite) return `APTable[1] = 1 ${lv(noWrite)}: no writes below it (Arm ARM D8.4.2)`;
    if (c.access === 'write' && ap2 && !dbm) return `${apText}: read-only (Arm ARM D8.4.1)`;
  }
  return 'the descriptors\' permissions deny this access (Arm ARM D8.4)';
}

const PF_BITS: readonly [number, string][] = [
  [0x1, 'P'],
  [0x2, 'W/R'],
  [0x4, 'U/S'],
  [0x8, 'RSVD'],
  [0x10, 'I/D'],
  [0x20, 'PK'],
];

/** ESR_ELx DFSC/IFSC names (Arm ARM D24, ISS encoding for an exception from a Data/Instruction Abort). */
function fscName(code: number): string {
  if (code === 0x29) return 'Address size fault, level -1';
  if (code === 0x2b) return 'Translation fault, level -1';
  if (code === 0x13) return 'Synchronous External abort on translation table walk, level -1';
  if ((code & 0x3c) === 0x14) return `Synchronous External abort on translation table walk, level ${code & 3}`;
  const kind = ['Address size fault', 'Translation fault', 'Access flag fault', 'Permission fault'][(code >>> 2) & 3];
  return `${kind}, level ${code & 3}`;
}

/** The exception as the manual names it. */
export function faultName(g: Geometry, kind: FaultKind, code: number, _level: number, access: AccessKind, user: boolean): string {
  if (g.arch === 'x86_64') {
    if (kind === 'non_canonical') return '#GP(0): non-canonical address (no #PF, no error code)';
    const bits = PF_BITS.filter(([b]) => (code & b) !== 0).map(([, n]) => n);
    return `#PF, error code ${hex(code)} (${bits.length ? bits.join(' | ') : 'none set'})`;
  }
  const exec = access === 'exec';
  const fsc = code.toString(2).padStart(6, '0');
  return `${exec ? 'Instruction' : 'Data'} Abort from EL${user ? 0 : 1}, ${exec ? 'IFSC' : 'DFSC'} ${hex(code)} (0b${fsc}): ${fscName(code)}`;
}

// ---- text ---------------------------------------------------------------------------------------------

function accessText(e: Explanation): string {
  return `${e.user ? (e.arch === 'x86_64' ? 'user-mode' : 'EL0') : e.arch === 'x86_64' ? 'supervisor-mode' : 'EL1'} ${e.access}`;
}

/** The leaf's attributes, as translate prints them. */
export function attrText(attrs: Readonly<Record<string, number | boolean | string>>): string {
  return Object.entries(attrs)
    .map(([k, v]) => (typeof v === 'boolean' ? (v ? k : '') : typeof v === 'string' ? `${k}="${v}"` : `${k}=${v}`))
    .filter((s) => s !== '')
    .join(' ');
}

/** "PML4 255 (47:39) · PDPT 511 (38:30) · … · offset 0x123": how the VA splits for this walk. */
function vaSplit(e: Explanation, g: Geometry): string {
  const parts: string[] = [];
  for (let i = 0; i < g.physicalLevels.length; i++) {
    const level = stepLevel(g, i);
    const [msb, lsb] = vaIndexBits(g, level);
    const idx = Number((e.va >> BigInt(lsb)) & ((1n << BigInt(msb - lsb + 1)) - 1n));
    parts.push(`${g.arch === 'x86_64' ? tableName(g, level) : `L${level}`} ${idx} (${bitsLabel(msb, lsb)})`);
  }
  parts.push(`offset ${hex(e.va & BigInt(g.PAGE_SIZE - 1))} (${bitsLabel(g.PAGE_SHIFT - 1, 0)})`);
  return parts.join(' · ');
}

function outcomeLines(e: Explanation, s: Style): string[] {
  if (e.fault) {
    const head = s.red(`Fault: ${e.fault.kind} at level ${e.fault.level} — ${e.fault.name}`);
    // A fault at a step has its reason printed there already.
    const atStep = e.steps.length > 0 && e.steps[e.steps.length - 1]!.action === 'fault';
    return atStep ? [head] : [head, `  ${e.fault.why}`];
  }
  if (e.result) {
    const r = e.result;
    return [s.green(`Result: ${hex(e.va)} → ${hex(r.pa)}  ${sizeName(r.pageSize)} page, level ${r.level}`) + `  ${attrText(r.attrs)}`.trimEnd()];
  }
  return [];
}

/**
 * The full explanation: the regime, how the VA splits, then per level the table and entry
 * addresses, the raw descriptor with every field decoded (mmulab decode's table), and why the walk
 * went on or stopped; the result or the fault as the manual names it.
 */
export function explanationText(e: Explanation, g: Geometry, s: Style): string {
  const lines: string[] = [];
  lines.push(s.bold(`${hex(e.va)}, ${accessText(e)}`));
  lines.push(e.regime);
  lines.push(`VA split: ${vaSplit(e, g)}`);
  for (const st of e.steps) {
    lines.push('');
    const table = g.arch === 'x86_64' ? X86_NEXT[st.level]! : 'table';
    const what = g.arch === 'x86_64' ? `${X86_ENTRY[st.level]}` : 'descriptor';
    lines.push(s.cyan(`Level ${st.level}: ${table} at ${hex(st.table)}, index ${st.index} (VA bits ${bitsLabel(st.vaMsb, st.vaLsb)})`));
    lines.push(`  ${what} at ${hex(st.table)} + ${st.index} × 8 = ${hex(st.entryAddr)}: ${s.bold(hex16(st.raw))}`);
    // formatDecoded's first line repeats the value and kind; its reason (if any) and field rows follow.
    const body = formatDecoded(st.decoded, g, s).split('\n').slice(1);
    lines.push(...body);
    const verb = st.action === 'descend' ? s.dim('descend') : st.action === 'leaf' ? s.green('leaf') : s.red('fault');
    lines.push(`  ${verb}: ${st.why}`);
  }
  if (e.steps.length > 0 || e.fault || e.result) lines.push('');
  lines.push(...outcomeLines(e, s));
  return lines.join('\n');
}

/** The Arm ARM's spelling of the decoder's camelCase field names (D8.3). */
const ARM_NAMES: Readonly<Record<string, string>> = {
  uxn: 'UXN',
  pxn: 'PXN',
  af: 'AF',
  ap: 'AP',
  dbm: 'DBM',
  gp: 'GP',
  contiguous: 'Contiguous',
  apTable: 'APTable',
  uxnTable: 'UXNTable',
  pxnTable: 'PXNTable',
  nsTable: 'NSTable',
};

/** The descriptor's set flags and non-zero small fields, by manual name, for one-line views. */
export function shortFields(d: DecodedDescriptor, g: Geometry): string {
  const out: string[] = [];
  // x86-64 reads low to high (P RW US … XD), ARM64 high to low (UXN PXN … AP), as the manuals list them.
  for (const f of g.arch === 'x86_64' ? d.fields : [...d.fields].reverse()) {
    if (f.role || f.address !== undefined || f.value === 0n) continue;
    if (g.arch === 'arm64' && (f.name === 'valid' || f.name === 'type' || f.name === 'sh' || f.name === 'attrIndx' || f.name === 'ns')) continue;
    const name = g.arch === 'x86_64' ? f.name.toUpperCase() : (ARM_NAMES[f.name] ?? f.name);
    const width = f.msb - f.lsb + 1;
    out.push(width === 1 ? name : `${name}=${width <= 3 ? f.value.toString(2).padStart(width, '0') : hex(f.value)}`);
  }
  if (g.arch === 'arm64' && d.kind !== 'invalid') {
    const ai = d.fields.find((f) => f.name === 'attrIndx');
    if (ai && d.kind !== 'table') out.push(`AttrIndx=${ai.value}`);
  }
  return out.join(' ');
}

/** Column widths for one-line views, so several explanations line up. */
export interface BriefWidths {
  readonly name: number;
  readonly addr: number;
  readonly fields: number;
}

function briefName(g: Geometry, st: ExplainStep): string {
  return `${g.arch === 'x86_64' ? st.tableName : `L${st.level}`}[${st.index}]`;
}

export function briefWidths(es: readonly Explanation[], g: Geometry): BriefWidths {
  const steps = es.flatMap((e) => e.steps);
  return {
    name: Math.max(0, ...steps.map((st) => briefName(g, st).length)),
    addr: Math.max(0, ...steps.map((st) => hex(st.entryAddr).length)),
    fields: Math.max(0, ...steps.map((st) => shortFields(st.decoded, g).length)),
  };
}

/** One line per level: the compact form the demo prints (and explain --brief). */
export function explanationBrief(e: Explanation, g: Geometry, s: Style, widths: BriefWidths = briefWidths([e], g)): string[] {
  const lines: string[] = [];
  for (const st of e.steps) {
    let tail: string;
    if (st.action === 'descend') tail = st.decoded.address !== undefined ? `→ table ${hex(st.decoded.address)}` : '→ next level';
    else if (st.action === 'leaf') {
      const size = e.result?.pageSize ?? 0;
      tail = s.green(`→ ${sizeName(size)} at ${hex((e.result?.pa ?? 0n) - (e.va & BigInt(Math.max(size, 1) - 1)))}`);
    } else tail = s.red(`✗ ${e.fault?.kind ?? 'fault'}`);
    const head = briefName(g, st).padEnd(widths.name);
    lines.push(`  ${head} ${s.dim(hex(st.entryAddr).padStart(widths.addr))} ${hex16(st.raw)}  ${shortFields(st.decoded, g).padEnd(widths.fields)}  ${tail}`.trimEnd());
  }
  if (e.fault) lines.push(`  ${s.red(e.fault.name)}`, `  ${e.fault.rule}`);
  return lines;
}

// ---- JSON ---------------------------------------------------------------------------------------------

/**
 * One object: {va, access, user, steps[], result | fault}. Each step: level, table, index,
 * entry_addr, raw, kind, fields {name: {bits, value, meaning?, role?, address?}}, action, why.
 */
export function explanationJson(e: Explanation): Record<string, unknown> {
  const o: Record<string, unknown> = {
    va: hex(e.va),
    arch: e.arch,
    access: e.access,
    user: e.user,
    steps: e.steps.map((st) => ({
      level: st.level,
      table: hex(st.table),
      index: st.index,
      va_bits: bitsLabel(st.vaMsb, st.vaLsb),
      entry_addr: hex(st.entryAddr),
      raw: hex16(st.raw),
      kind: st.decoded.kind,
      fields: Object.fromEntries(
        st.decoded.fields.map((f) => [
          f.name,
          {
            bits: bitsLabel(f.msb, f.lsb),
            value: hex(f.value),
            ...(f.address !== undefined ? { address: hex(f.address) } : {}),
            ...(f.meaning ? { meaning: f.meaning } : {}),
            ...(f.role ? { role: f.role } : {}),
          },
        ]),
      ),
      action: st.action,
      why: st.why,
    })),
  };
  if (e.result) o.result = { pa: hex(e.result.pa), page_size: e.result.pageSize, level: e.result.level, attrs: e.result.attrs };
  if (e.fault) o.fault = { kind: e.fault.kind, level: e.fault.level, code: hex(e.fault.code), name: e.fault.name, why: e.fault.why, rule: e.fault.rule };
  return o;
}
