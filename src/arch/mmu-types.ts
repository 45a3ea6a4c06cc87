/**
 * The contract of the CPU-side translation (what the hardware does on an access), separate from the
 * Linux helpers of types.ts so that a kernel-model bug the hardware would expose can be caught
 * (DESIGN.md, Fidelity). One module per architecture implements `Mmu`; the TLB model (tlb.ts)
 * caches what they return.
 *
 * Hot-path shape: `walk()` writes into a caller-owned `WalkResult` and allocates nothing; the
 * object-returning `translate()` is the API edge (CLI, tests, tools).
 */

export type AccessKind = 'read' | 'write' | 'exec';

/**
 * Fault kinds by manual name (FORMATS.md, translate). ARM64 'external_abort' is the synchronous
 * External abort on a translation table walk (ESR_ELx DFSC 0b0101LL, 0b010011 at level -1): a
 * descriptor read from a physical address with no memory behind it. x86-64 has no such #PF: a read
 * of unbacked memory returns all-ones on a PC, which decodes as a present entry with reserved bits
 * set, so the walk reports 'reserved' (src/arch/x86_64/mmu.ts says where the two can differ).
 */
export type X86FaultKind = 'not_present' | 'protection' | 'reserved' | 'non_canonical';
export type Arm64FaultKind = 'translation' | 'access_flag' | 'permission' | 'address_size' | 'external_abort';
export type FaultKind = X86FaultKind | Arm64FaultKind;

/** Effective permissions of a translation, combined down the levels as the hardware does. */
export const PERM_R = 1; // readable at the privilege it was looked up for… see permUser/permPriv
export const PERM_W = 2;
export const PERM_X = 4;

/**
 * One hardware walk's outcome, mutated in place by Mmu.walk (no allocation per walk).
 * Numbers only: a physical address below 2^52 is exact in a double.
 */
export class WalkResult {
  /** null on success. */
  fault: FaultKind | null = null;
  /** x86-64: the #PF error code; ARM64: the DFSC/IFSC value (ESR_ELx.ISS[5:0]). 0 on success. */
  code = 0;
  /**
   * The hardware level number of the table holding the leaf or the faulting entry: x86-64 5…1
   * (PML5 … PT), ARM64 lookup level -1…3. For a non-canonical / address-size fault before any
   * table is read: the start level (ARM64) or the top level (x86-64).
   */
  level = 0;
  /** Physical address of the byte translated (page base + offset). */
  pa = 0;
  /** Physical address of the page/block base. */
  pageBase = 0;
  /** Bytes the leaf maps (4K, 2M, 1G; ARM64 16K/64K granules, 32M, 512M, 64G, 4T blocks…). */
  pageSize = 0;
  /** Effective permissions for user / EL0 and for supervisor / EL1 accesses (PERM_* bits). */
  permUser = 0;
  permPriv = 0;
  /** x86-64 G (global) / ARM64 !nG. */
  global = false;
  /** ARM64 Contiguous bit on the leaf; x86-64 always false. */
  contiguous = false;
  /** The leaf descriptor as read (after any A/D update), and its physical address. */
  leafLo = 0;
  leafHi = 0;
  leafAddr = 0;
  /** Whether the leaf's dirty state allows a write without another walk (x86 D = 1; ARM64 writable without DBM clean). */
  dirty = false;
  /** x86-64: protection key of the leaf (0 when CR4.PKE is off); ARM64: AttrIndx. */
  pkey = 0;
  attrIndx = 0;
  /** Descriptor reads of this walk (memory references per walk). */
  memRefs = 0;
  /**
   * Table entries visited, top first: physical address of each descriptor read (for explain /
   * paging-structure caches). A read outside emulated memory is recorded too, as the last entry,
   * with the value the walk saw: x86-64 all-ones (0xffffffff in both halves), ARM64 0 (the read
   * aborted and returned nothing).
   *
   * Typed arrays, written once per level of every walk: a store is then one bounds check and a raw
   * write, with no elements-kind map check or boxing of halves at and above 2^31 (a plain array of
   * numbers would hold them as doubles after the first one). Addresses are Float64Array (they go
   * up to 2^52), the descriptor halves Uint32Array. Six entries: the deepest walk reads five
   * (x86-64 5-level paging, ARM64 levels -1…3); `entries` says how many are this walk's.
   */
  readonly entryAddrs = new Float64Array(6);
  readonly entryLo = new Uint32Array(6);
  readonly entryHi = new Uint32Array(6);
  entries = 0;

  /** No translation: every field that describes a leaf back to its zero (the fault paths of the walks). */
  clearLeaf(): void {
    this.pa = 0;
    this.pageBase = 0;
    this.pageSize = 0;
    this.permUser = 0;
    this.permPriv = 0;
    this.global = false;
    this.contiguous = false;
    this.leafLo = 0;
    this.leafHi = 0;
    this.leafAddr = 0;
    this.dirty = false;
    this.pkey = 0;
    this.attrIndx = 0;
  }
}

/** The object form of a translation, for the API edge (FORMATS.md translate JSON). */
export interface Translation {
  readonly va: bigint;
  readonly pa: bigint;
  readonly level: number;
  readonly pageSize: number;
  /** The leaf's effective attributes by manual name (x86-64: rw, us, nx, g, a, d, pwt, pcd, pat, pkey; ARM64: ap, uxn, pxn, af, sh, attr_indx, ng, contiguous, dbm, plus memattr from MAIR). */
  readonly attrs: Readonly<Record<string, number | boolean | string>>;
}
export interface TranslationFaultInfo {
  readonly va: bigint;
  readonly fault: { readonly kind: FaultKind; readonly level: number; readonly code: number };
}
export type TranslateOutcome = Translation | TranslationFaultInfo;

export function isFault(t: TranslateOutcome): t is TranslationFaultInfo {
  return 'fault' in t;
}

export interface TranslateOptions {
  /** Debugger walk: no accessed/dirty update, no TLB fill, no statistics. */
  readonly debug?: boolean;
}

/**
 * One architecture's MMU over one physical memory, configured by its registers (the same names
 * and values as machine.json: x86-64 cr0, cr3, cr4, efer, pkru, rflags; ARM64 ttbr0_el1,
 * ttbr1_el1, tcr_el1, mair_el1, sctlr_el1, pstate_pan (0/1)). Writing a register goes through
 * setRegister, which re-derives the regime (and, for CR3/TTBR writes, tells the TLB as the ISA
 * says).
 */
export interface Mmu {
  readonly arch: 'x86_64' | 'arm64';
  setRegister(name: string, value: bigint): void;
  getRegister(name: string): bigint;
  /**
   * The hardware walk for one access, without the TLB. `user`: CPL 3 (x86-64) / EL0 (ARM64).
   * vaHi/vaLo are the two 32-bit halves of the VA (so the hot path needs no BigInt); the page
   * offset is in vaLo. Sets A/D (x86) or AF/DBM-dirty (ARM64 with HA/HD) unless `debug`.
   */
  walk(vaHi: number, vaLo: number, access: AccessKind, user: boolean, debug: boolean, out: WalkResult): void;
  /** The API edge: a bigint VA, an object result. */
  translate(va: bigint, access: AccessKind, user: boolean, opts?: TranslateOptions): TranslateOutcome;
}
