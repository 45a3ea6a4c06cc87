/**
 * mm/pagewalk.c over binary page tables: walk_page_range and its variants.
 *
 * One function per level, each the shape of the kernel's: holes handled by an early `continue`,
 * walk->action consulted after pud_entry/pmd_entry, descent only where a lower callback exists.
 * Semantics are pagewalk.c's (the seed of ../shared/seeds/004) brought to Linux 6.18 where the
 * seeds are silent (install_pte, check_ops_valid, walk_page_range_debug, the kernel-range walkers).
 *
 * Pointers handed to callbacks are entry physical addresses; read an entry with
 * `walk.pt.lo(ptr)` / `walk.pt.hi(ptr)` (or the machine's u32 view directly). Per visited entry
 * the walk allocates nothing: the MmWalk object is created once per call.
 */
import type { Pgtable } from '../arch/pgtable';
import { EINVAL, ENOMEM } from '../mm/errno';
import { __p4dAlloc, __pmdAlloc, __pteAlloc, __pudAlloc, setPteAt } from '../mm/pgalloc';
import { pmdIsHuge, splitHugePmd, splitHugePud } from '../mm/huge-memory';
import { hugePteOffset } from '../mm/hugetlb';
import { pteMapsQuietly, pteOffsetMap } from '../mm/pte-map';
import { lockdepAssertHeld } from '../mm/locks';
import { mmapAssertLocked, mmapAssertWriteLocked, type MmStruct } from '../mm/mm';
import type { AddressSpace } from '../mm/address-space';
import { VM_PFNMAP } from '../mm/vm-flags';
import {
  isVmHugetlbPage,
  vmaAssertLocked,
  vmaAssertWriteLocked,
  vmaPages,
  vmaStartWrite,
  type VmAreaStruct,
} from '../mm/vma';

/** enum page_walk_action */
export const ACTION_SUBTREE = 0;
export const ACTION_CONTINUE = 1;
export const ACTION_AGAIN = 2;
export type PageWalkAction = typeof ACTION_SUBTREE | typeof ACTION_CONTINUE | typeof ACTION_AGAIN;

/** enum page_walk_lock */
export const PGWALK_RDLOCK = 0;
export const PGWALK_WRLOCK = 1;
export const PGWALK_WRLOCK_VERIFY = 2;
export const PGWALK_VMA_RDLOCK_VERIFY = 3;
export type PageWalkLock = 0 | 1 | 2 | 3;

/** install_pte's out-parameter (`pte_t *ptep`): the callback stores the pte to install in `value`. */
export interface PteOut {
  value: bigint;
}

/** struct mm_walk_ops. Every callback is optional; absent means NULL. */
export interface MmWalkOps<P = unknown> {
  pgdEntry?(pgd: number, addr: number, next: number, walk: MmWalk<P>): number;
  p4dEntry?(p4d: number, addr: number, next: number, walk: MmWalk<P>): number;
  pudEntry?(pud: number, addr: number, next: number, walk: MmWalk<P>): number;
  pmdEntry?(pmd: number, addr: number, next: number, walk: MmWalk<P>): number;
  pteEntry?(pte: number, addr: number, next: number, walk: MmWalk<P>): number;
  pteHole?(addr: number, next: number, depth: number, walk: MmWalk<P>): number;
  hugetlbEntry?(pte: number, hmask: number, addr: number, next: number, walk: MmWalk<P>): number;
  testWalk?(addr: number, next: number, walk: MmWalk<P>): number;
  preVma?(start: number, end: number, walk: MmWalk<P>): number;
  postVma?(walk: MmWalk<P>): void;
  installPte?(addr: number, next: number, ptep: PteOut, walk: MmWalk<P>): number;
  walkLock?: PageWalkLock;
}

/** struct mm_walk: the state one walk shares with its callbacks. */
export class MmWalk<P = unknown> {
  vma: VmAreaStruct | null = null;
  /** walk->action: one of ACTION_*; typed as number so checks after a callback are not narrowed away. */
  action: number = ACTION_SUBTREE;
  /** The page-table view of the walked machine (entry reads, offsets, predicates). */
  readonly pt: Pgtable;
  /** Scratch for install_pte, reused for every call. */
  readonly newPte: PteOut = { value: 0n };
  /**
   * The pte run being walked, [pmd or pte pointer, addr, end], handed down in a typed array:
   * passed as arguments these doubles (above 2^31) would be boxed on every call that the
   * optimiser does not inline, a heap number per pte table.
   */
  readonly span = new Float64Array(3);
  /** This walk's copy of the pte loop (pteLoopFor). */
  readonly pteLoop: (walk: MmWalk<any>) => number;

  constructor(
    readonly ops: MmWalkOps<P>,
    public mm: MmStruct,
    /** Root table to walk instead of mm->pgd (novma walks only), or null. */
    readonly pgd: number | null,
    readonly noVma: boolean,
    readonly private_: P,
  ) {
    this.pt = mm.machine.pgtable;
    this.pteLoop = pteLoopFor(ops);
  }

  /** The `private` field (a reserved word in TypeScript class bodies' strict mode, hence private_). */
  get private(): P {
    return this.private_;
  }
}

/**
 * real_depth(): the level a hole is reported at, once folded levels are taken out — a missing
 * entry found at a folded level is really one of its parent's.
 */
function realDepth(pt: Pgtable, depth: number): number {
  const g = pt.geo;
  if (depth === 3 && g.PTRS_PER_PMD === 1) depth = 2;
  if (depth === 2 && g.PTRS_PER_PUD === 1) depth = 1;
  if (depth === 1 && g.PTRS_PER_P4D === 1) depth = 0;
  return depth;
}

/**
 * The pte loop of a walk without install_pte, over walk.span = [pte, addr, end]: the hottest loop
 * of every walk. It must inline the caller's pte_entry: a pte_entry that is called instead gets
 * its two addresses boxed (they exceed 31 bits), a heap number each per entry.
 *
 * Self-contained (no free variables) because pteLoopFor compiles copies of it from its text.
 */
function walkPteEntries(walk: MmWalk<any>): number {
  const span = walk.span;
  const pte = span[0]!;
  const addr = span[1]!;
  const end = span[2]!;
  const pteEntry = walk.ops.pteEntry!;
  const pt = walk.pt;
  const pageSize = pt.PAGE_SIZE;
  // Integer induction variables: pte and addr are derived from them, not carried around the loop.
  // Carried doubles can end up as tagged loop variables, boxed on every iteration. The trip count
  // is an int32 (at most PTRS_PER_PTE: [addr, end) lies in one pmd, so off stays below 2^30),
  // rounded up as walk_pte_range's loop rounds: an unaligned range visits the pte of each page it
  // touches (it stops once addr >= end - PAGE_SIZE).
  const n = Math.ceil((end - addr) / pageSize) | 0;
  if (pte + n * 8 <= 0x7fffffff) {
    // Every pointer of this run fits an int32 (memories below 2 GiB: all of them): computed as
    // int32s, a callback that indexes memory with them does integer arithmetic, not float.
    const p = pte | 0;
    for (let k = 0, off = 0; k < n; k++, off += pageSize) {
      const a = addr + off;
      const err = pteEntry(p + (k << 3), a, a + pageSize, walk);
      if (err) return err;
    }
    return 0;
  }
  for (let k = 0, off = 0; k < n; k++, off += pageSize) {
    const a = addr + off;
    const err = pteEntry(pte + k * 8, a, a + pageSize, walk);
    if (err) return err;
  }
  return 0;
}

/**
 * One copy of the pte loop per pte_entry function literal. V8 keeps its call-site feedback per
 * function, so with a single shared loop the second callback a process uses turns the call
 * polymorphic, the optimiser stops inlining, and every entry pays for boxed arguments (and runs
 * at a fraction of the speed). Copies compiled from the loop's own text each have their own
 * feedback. They are keyed by the callback's source text, so closures made afresh from one
 * literal for every walk share a copy, as they share their feedback in V8; past PTE_LOOPS_MAX
 * distinct callbacks the shared loop serves.
 */
const PTE_LOOPS_MAX = 64;
const pteLoops = new Map<string, (walk: MmWalk<any>) => number>();
const pteLoopSource = `return ${walkPteEntries.toString()}`;

function pteLoopFor(ops: MmWalkOps<any>): (walk: MmWalk<any>) => number {
  const pteEntry = ops.pteEntry;
  if (pteEntry === undefined || ops.installPte !== undefined) return walkPteEntries;
  const key = Function.prototype.toString.call(pteEntry);
  let loop = pteLoops.get(key);
  if (loop === undefined) {
    if (pteLoops.size >= PTE_LOOPS_MAX) return walkPteEntries;
    loop = new Function(pteLoopSource)() as (walk: MmWalk<any>) => number;
    pteLoops.set(key, loop);
  }
  return loop;
}

/** The pte loop of a walk with install_pte: none entries are filled, others go to pte_entry. */
function walkPteInstall(pte: number, addr: number, end: number, walk: MmWalk<any>): number {
  const ops = walk.ops;
  const pt = walk.pt;
  const pageSize = pt.PAGE_SIZE;
  const installPte = ops.installPte!;
  const pteEntry = ops.pteEntry;
  // The table was bounds-checked when mapped (nextTable); reads below stay inside it.
  const u32 = pt.u32;
  const base = pt.physBase;
  let err = 0;
  for (;;) {
    const i = (pte - base) / 4;
    if (pt.pteNone(u32[i]!, u32[i + 1]!)) {
      walk.newPte.value = 0n;
      err = installPte(addr, addr + pageSize, walk.newPte, walk);
      if (err) break;
      setPteAt(walk.mm, addr, pte, walk.newPte.value);
      walk.mm.machine.emit('set_pte', { ptr: pte, addr, value: walk.newPte.value });
    } else {
      // 6.18 calls pte_entry here unconditionally: install_pte without pte_entry meeting a
      // present pte would be a NULL call in the kernel; refuse it with an error naming the rule.
      if (pteEntry === undefined) throw new TypeError('install_pte walk met an existing pte and ops.pteEntry is NULL');
      err = pteEntry(pte, addr, addr + pageSize, walk);
      if (err) break;
    }
    if (addr >= end - pageSize) break;
    addr += pageSize;
    pte += 8;
  }
  return err;
}


/** walk_pte_range over walk.span = [pmd, addr, end] (set by walkPmdRange). */
function walkPteRange(walk: MmWalk<any>): number {
  const mm = walk.mm;
  const span = walk.span;
  const pmd = span[0]!;
  const addr = span[1]!;
  const pt = walk.pt;
  // Kernel tables (init_mm, or any address above TASK_SIZE) are mapped with pte_offset_kernel,
  // which cannot fail; user tables go through pte_offset_map(_lock) (the ptl is modelled, not
  // taken), which can. Both are spelled out here for the usual case — a present table and no
  // injected failure — and each branch stores its pointer straight into the span: a call would
  // box the address, and a variable merging a call's result with a computed pointer would box
  // the pointer (one heap number per pte table either way).
  if ((walk.noVma && (mm.isInitMm || addr >= mm.machine.TASK_SIZE)) || pteMapsQuietly(mm.machine, pmd)) {
    span[0] = pt.nextTable(pmd) + (Math.floor(addr / pt.PAGE_SIZE) % pt.geo.PTRS_PER_PTE) * 8;
  } else {
    const pte = pteOffsetMap(mm, pmd, addr);
    if (pte < 0) {
      walk.action = ACTION_AGAIN;
      return 0;
    }
    span[0] = pte;
  }
  if (walk.ops.installPte === undefined) return walk.pteLoop(walk);
  return walkPteInstall(span[0]!, addr, span[2]!, walk);
}

function walkPmdRange(pud: number, start: number, end: number, walk: MmWalk<any>): number {
  const ops = walk.ops;
  const pt = walk.pt;
  const hasHandler = ops.pteEntry !== undefined;
  const hasInstall = ops.installPte !== undefined;
  const depth = realDepth(pt, 3);
  let err = 0;
  const first = pt.pmdOffset(pud, start);
  // Entry k's pointer and address are derived from an integer k rather than carried around the
  // loop as doubles, which the optimiser may keep boxed (one heap number per pmd per walk).
  const size = pt.PMD_SIZE;
  const base = Math.floor(start / size) * size;
  const folded = pt.geo.PTRS_PER_PMD === 1;
  // end as a computed double (end <= 2^64 always), for the same reason: next merges it.
  const last = Math.min(end, 2 ** 64);
  // Entries are read straight from the words: pmdOffset checked the table against memory (and a
  // folded pmd is the checked pud), so the bounds check of pt.lo/pt.hi would be spent again.
  const u32 = pt.u32;
  const physBase = pt.physBase;
  for (let k = 0; ; k++) {
    const pmd = first + k * 8;
    const i = (pmd - physBase) / 4;
    // Written as arithmetic, not `k === 0 ? start : …`: merging the parameter (a tagged value on
    // entry) with a computed double makes the optimiser box the double on every iteration. Entry 0
    // starts at start (maybe mid-entry), the others at their boundary, which lies above start.
    const addr = Math.max(start, base + k * size);
    // pmd_addr_end, computed here rather than called: a call would box both addresses. A folded
    // level's addr_end returns end, so its loop runs once.
    const next = folded ? last : Math.min(base + (k + 1) * size, last);
    // again:
    for (;;) {
      if (pt.pmdNone(u32[i]!, u32[i + 1]!)) {
        if (hasInstall) err = __pteAlloc(walk.mm, pmd, addr);
        else if (ops.pteHole) err = ops.pteHole(addr, next, depth, walk);
        if (err) return err;
        if (!hasInstall) break; // continue
      }
      walk.action = ACTION_SUBTREE;
      // Each pmd_entry() must cope with pmd_trans_huge() pmds.
      if (ops.pmdEntry) err = ops.pmdEntry(pmd, addr, next, walk);
      if (err) return err;
      if (walk.action === ACTION_AGAIN) continue;
      if (walk.action === ACTION_CONTINUE) break;
      if (!hasHandler) {
        if (!hasInstall) break; // no handlers for lower tables: nothing to do
        // Only installing: do not split a present huge page for nothing.
        const lo = u32[i]!;
        const hi = u32[i + 1]!;
        if (pt.pmdPresent(lo, hi) && pt.pmdTransHuge(lo, hi)) break;
      }
      // split_huge_pmd's test before its call, as the kernel's macro makes it: the call takes the
      // address, which would be boxed for every pmd entry walked.
      if (walk.vma) {
        if (pmdIsHuge(walk.vma, pmd)) splitHugePmd(walk.vma, pmd, addr);
      }
      else {
        const lo = u32[i]!;
        const hi = u32[i + 1]!;
        if (pt.pmdLeaf(lo, hi) || !pt.pmdPresent(lo, hi)) break; // nothing to do
      }
      const span = walk.span;
      span[0] = pmd;
      span[1] = addr;
      span[2] = next;
      err = walkPteRange(walk);
      if (err) return err;
      if (walk.action === ACTION_AGAIN) continue;
      break;
    }
    if (next === last) return err;
  }
}

function walkPudRange(p4d: number, addr: number, end: number, walk: MmWalk<any>): number {
  const ops = walk.ops;
  const pt = walk.pt;
  const hasHandler = ops.pmdEntry !== undefined || ops.pteEntry !== undefined;
  const hasInstall = ops.installPte !== undefined;
  const depth = realDepth(pt, 2);
  let err = 0;
  let pud = pt.pudOffset(p4d, addr);
  let next: number;
  do {
    for (;;) {
      next = pt.pudAddrEnd(addr, end);
      if (pt.pudNone(pt.lo(pud), pt.hi(pud))) {
        if (hasInstall) err = __pmdAlloc(walk.mm, pud, addr);
        else if (ops.pteHole) err = ops.pteHole(addr, next, depth, walk);
        if (err) return err;
        if (!hasInstall) break;
      }
      walk.action = ACTION_SUBTREE;
      if (ops.pudEntry) err = ops.pudEntry(pud, addr, next, walk);
      if (err) return err;
      if (walk.action === ACTION_AGAIN) continue;
      if (walk.action === ACTION_CONTINUE) break;
      if (!hasHandler) {
        if (!hasInstall) break;
        const lo = pt.lo(pud);
        const hi = pt.hi(pud);
        if (pt.pudPresent(lo, hi) && pt.pudLeaf(lo, hi)) break; // pud_trans_huge
      }
      if (walk.vma) splitHugePud(walk.vma, pud, addr);
      else {
        const lo = pt.lo(pud);
        const hi = pt.hi(pud);
        if (pt.pudLeaf(lo, hi) || !pt.pudPresent(lo, hi)) break;
      }
      if (pt.pudNone(pt.lo(pud), pt.hi(pud))) continue; // the split zapped it: goto again
      err = walkPmdRange(pud, addr, next, walk);
      if (err) return err;
      break;
    }
    pud += 8;
    addr = next;
  } while (addr !== end);
  return err;
}

/** p?d_none_or_clear_bad: a bad entry is reported (pgd_clear_bad) and cleared, then treated as none. */
function noneOrClearBad(walk: MmWalk<any>, ptr: number, none: (lo: number, hi: number) => boolean, bad: (lo: number, hi: number) => boolean): boolean {
  // Not Pgtable.noneOrClearBad: the walker reads each entry once and reports the clear.
  const pt = walk.pt;
  const lo = pt.lo(ptr);
  const hi = pt.hi(ptr);
  if (none(lo, hi)) return true;
  if (!bad(lo, hi)) return false;
  walk.mm.machine.emit('clear_bad', { ptr });
  pt.clear(ptr);
  return true;
}

function walkP4dRange(pgd: number, addr: number, end: number, walk: MmWalk<any>): number {
  const ops = walk.ops;
  const pt = walk.pt;
  const hasHandler = ops.pudEntry !== undefined || ops.pmdEntry !== undefined || ops.pteEntry !== undefined;
  const hasInstall = ops.installPte !== undefined;
  const depth = realDepth(pt, 1);
  let err = 0;
  let p4d = pt.p4dOffset(pgd, addr);
  let next: number;
  do {
    next = pt.p4dAddrEnd(addr, end);
    let walkIt = true;
    if (noneOrClearBad(walk, p4d, pt.p4dNone, pt.p4dBad)) {
      if (hasInstall) err = __pudAlloc(walk.mm, p4d, addr);
      else if (ops.pteHole) err = ops.pteHole(addr, next, depth, walk);
      if (err) break;
      walkIt = hasInstall;
    }
    if (walkIt) {
      if (ops.p4dEntry) {
        err = ops.p4dEntry(p4d, addr, next, walk);
        if (err) break;
      }
      if (hasHandler || hasInstall) err = walkPudRange(p4d, addr, next, walk);
      if (err) break;
    }
    p4d += 8;
    addr = next;
  } while (addr !== end);
  return err;
}

function walkPgdRange(addr: number, end: number, walk: MmWalk<any>): number {
  const ops = walk.ops;
  const pt = walk.pt;
  const hasHandler =
    ops.p4dEntry !== undefined || ops.pudEntry !== undefined || ops.pmdEntry !== undefined || ops.pteEntry !== undefined;
  const hasInstall = ops.installPte !== undefined;
  let err = 0;
  let pgd = pt.pgdOffset(walk.pgd ?? walk.mm.pgd, addr);
  let next: number;
  do {
    next = pt.pgdAddrEnd(addr, end);
    let walkIt = true;
    if (noneOrClearBad(walk, pgd, pt.pgdNone, pt.pgdBad)) {
      if (hasInstall) err = __p4dAlloc(walk.mm, pgd, addr);
      else if (ops.pteHole) err = ops.pteHole(addr, next, 0, walk);
      if (err) break;
      walkIt = hasInstall;
    }
    if (walkIt) {
      if (ops.pgdEntry) {
        err = ops.pgdEntry(pgd, addr, next, walk);
        if (err) break;
      }
      // is_hugepd() is false on x86-64 and arm64: walk_hugepd_range is never reached.
      if (hasHandler || hasInstall) err = walkP4dRange(pgd, addr, next, walk);
      if (err) break;
    }
    pgd += 8;
    addr = next;
  } while (addr !== end);
  return err;
}

// ---- hugetlb ------------------------------------------------------------------------------------

/**
 * hugetlb_walk(vma, addr, sz) → huge_pte_offset (mm/hugetlb.c; arm64's own for contiguous sizes):
 * the pud, pmd or (first contiguous) pte pointer of the huge page, or -1 where no table reaches it.
 */
export function hugetlbWalk(vma: VmAreaStruct, addr: number, sz: number): number {
  return hugePteOffset(vma.vmMm, addr, sz);
}

/** huge_page_mask(h) as a 64-bit value: 2^64 - size (exact in a double for sizes >= 2 KiB). */
export function hugePageMask(size: number): number {
  return 2 ** 64 - size;
}

function walkHugetlbRange(addr: number, end: number, walk: MmWalk<any>): number {
  const vma = walk.vma!;
  const sz = vma.hugepageSize;
  if (sz === null) throw new TypeError(`${vma} has VM_HUGETLB but no huge page size`);
  const hmask = hugePageMask(sz);
  const ops = walk.ops;
  let err = 0;
  let next: number;
  do {
    const base = Math.floor(addr / sz) * sz; // addr & hmask
    const boundary = base + sz; // hugetlb_entry_end
    next = boundary < end ? boundary : end;
    const pte = hugetlbWalk(vma, base, sz);
    if (pte >= 0) err = ops.hugetlbEntry!(pte, hmask, addr, next, walk);
    else if (ops.pteHole) err = ops.pteHole(addr, next, -1, walk);
    if (err) break;
    addr = next;
  } while (addr !== end);
  return err;
}

// ---- per-VMA ------------------------------------------------------------------------------------

/**
 * walk_page_test: 0 walk the VMA, > 0 skip it, < 0 abort. Without test_walk a VM_PFNMAP VMA (no
 * struct pages behind it) is handed to pte_hole when there is one, and skipped.
 */
function walkPageTest(start: number, end: number, walk: MmWalk<any>): number {
  const ops = walk.ops;
  if (ops.testWalk) return ops.testWalk(start, end, walk);
  if ((walk.vma!.vmFlags & VM_PFNMAP) !== 0) {
    let err = 1;
    if (ops.pteHole) err = ops.pteHole(start, end, -1, walk);
    return err ? err : 1;
  }
  return 0;
}

function __walkPageRange(start: number, end: number, walk: MmWalk<any>): number {
  const vma = walk.vma!;
  const ops = walk.ops;
  const isHugetlb = isVmHugetlbPage(vma);
  // Installing ptes into hugetlb ranges is not supported.
  if (ops.installPte && isHugetlb) return -EINVAL;
  let err = 0;
  if (ops.preVma) {
    err = ops.preVma(start, end, walk);
    if (err) return err;
  }
  if (isHugetlb) {
    if (ops.hugetlbEntry) err = walkHugetlbRange(start, end, walk);
  } else {
    err = walkPgdRange(start, end, walk);
  }
  // pagewalk.c calls post_vma whatever the walk returned (see the conformance README, 2).
  if (ops.postVma) ops.postVma(walk);
  return err;
}

function processMmWalkLock(mm: MmStruct, lock: PageWalkLock): void {
  if (lock === PGWALK_RDLOCK) mmapAssertLocked(mm);
  else if (lock !== PGWALK_VMA_RDLOCK_VERIFY) mmapAssertWriteLocked(mm);
}

function processVmaWalkLock(vma: VmAreaStruct, lock: PageWalkLock): void {
  switch (lock) {
    case PGWALK_WRLOCK:
      vmaStartWrite(vma);
      break;
    case PGWALK_WRLOCK_VERIFY:
      vmaAssertWriteLocked(vma);
      break;
    case PGWALK_VMA_RDLOCK_VERIFY:
      vmaAssertLocked(vma);
      break;
    case PGWALK_RDLOCK:
      break; // checked by processMmWalkLock
  }
}

/** check_ops_valid: installing ptes is reserved to mm-internal walks. */
function checkOpsValid(ops: MmWalkOps<any>): boolean {
  return ops.installPte === undefined;
}

// ---- entry points -------------------------------------------------------------------------------

/**
 * walk_page_range_mm (mm/internal.h): the VMA-aware walk, install_pte allowed. Holes outside any
 * VMA are reported with depth -1; each VMA is tested (test_walk / VM_PFNMAP) and walked.
 */
export function walkPageRangeMm<P>(mm: MmStruct | null, start: number, end: number, ops: MmWalkOps<P>, priv?: P): number {
  if (start >= end) return -EINVAL;
  if (!mm) return -EINVAL;
  const walk = new MmWalk<P>(ops, mm, null, false, priv as P);
  const lock = ops.walkLock ?? PGWALK_RDLOCK;
  processMmWalkLock(mm, lock);
  let vma = mm.findVma(start);
  let err = 0;
  let next: number;
  do {
    if (!vma) {
      // after the last vma
      walk.vma = null;
      next = end;
      if (ops.pteHole) err = ops.pteHole(start, next, -1, walk);
    } else if (start < vma.vmStart) {
      // outside vma
      walk.vma = null;
      next = Math.min(end, vma.vmStart);
      if (ops.pteHole) err = ops.pteHole(start, next, -1, walk);
    } else {
      processVmaWalkLock(vma, lock);
      walk.vma = vma;
      next = Math.min(end, vma.vmEnd);
      vma = mm.findVma(vma.vmEnd);
      err = walkPageTest(start, next, walk);
      if (err > 0) {
        // Positive test results only steer the walk; the caller never sees them.
        err = 0;
        start = next;
        continue;
      }
      if (err < 0) break;
      err = __walkPageRange(start, next, walk);
    }
    if (err) break;
    start = next;
  } while (start < end);
  return err;
}

/** walk_page_range(mm, start, end, ops, private). */
export function walkPageRange<P>(mm: MmStruct | null, start: number, end: number, ops: MmWalkOps<P>, priv?: P): number {
  if (!checkOpsValid(ops)) return -EINVAL;
  return walkPageRangeMm(mm, start, end, ops, priv);
}

/**
 * walk_kernel_page_table_range_lockless: a no-VMA walk of init_mm's tables (or of `pgd`), without
 * lock assertions — for callers that exclude concurrent table freeing some other way.
 */
export function walkKernelPageTableRangeLockless<P>(
  initMm: MmStruct,
  start: number,
  end: number,
  ops: MmWalkOps<P>,
  pgd: number | null,
  priv?: P,
): number {
  if (start >= end) return -EINVAL;
  if (!checkOpsValid(ops)) return -EINVAL;
  const walk = new MmWalk<P>(ops, initMm, pgd, true, priv as P);
  return walkPgdRange(start, end, walk);
}

/** walk_kernel_page_table_range: as the lockless one, with init_mm's mmap_lock asserted held. */
export function walkKernelPageTableRange<P>(
  initMm: MmStruct,
  start: number,
  end: number,
  ops: MmWalkOps<P>,
  pgd: number | null,
  priv?: P,
): number {
  mmapAssertLocked(initMm);
  return walkKernelPageTableRangeLockless(initMm, start, end, ops, pgd, priv);
}

/**
 * walk_page_range_novma (6.18: walk_page_range_debug): walk any tables, VMAs ignored. For a user mm
 * the mmap lock must be held for write (munmap tears tables down after dropping to read);
 * init_mm goes through walk_kernel_page_table_range.
 */
export function walkPageRangeNovma<P>(
  mm: MmStruct | null,
  start: number,
  end: number,
  ops: MmWalkOps<P>,
  pgd: number | null,
  priv?: P,
): number {
  if (mm && mm.isInitMm) return walkKernelPageTableRange(mm, start, end, ops, pgd, priv);
  if (start >= end || !mm) return -EINVAL;
  if (!checkOpsValid(ops)) return -EINVAL;
  mmapAssertWriteLocked(mm);
  const walk = new MmWalk<P>(ops, mm, pgd, true, priv as P);
  return walkPgdRange(start, end, walk);
}

/** 6.18's name for walk_page_range_novma. */
export const walkPageRangeDebug = walkPageRangeNovma;

/** walk_page_range_vma: [start, end) must lie inside the VMA. */
export function walkPageRangeVma<P>(vma: VmAreaStruct, start: number, end: number, ops: MmWalkOps<P>, priv?: P): number {
  const mm = vma.vmMm;
  if (start >= end || !mm) return -EINVAL;
  if (start < vma.vmStart || end > vma.vmEnd) return -EINVAL;
  if (!checkOpsValid(ops)) return -EINVAL;
  const lock = ops.walkLock ?? PGWALK_RDLOCK;
  processMmWalkLock(mm, lock);
  processVmaWalkLock(vma, lock);
  const walk = new MmWalk<P>(ops, mm, null, false, priv as P);
  walk.vma = vma;
  return __walkPageRange(start, end, walk);
}

/** walk_page_vma: the whole VMA; test_walk is not consulted. */
export function walkPageVma<P>(vma: VmAreaStruct, ops: MmWalkOps<P>, priv?: P): number {
  const mm = vma.vmMm;
  if (!mm) return -EINVAL;
  if (!checkOpsValid(ops)) return -EINVAL;
  const lock = ops.walkLock ?? PGWALK_RDLOCK;
  processMmWalkLock(mm, lock);
  processVmaWalkLock(vma, lock);
  const walk = new MmWalk<P>(ops, mm, null, false, priv as P);
  walk.vma = vma;
  return __walkPageRange(vma.vmStart, vma.vmEnd, walk);
}

const U64 = 1n << 64n;

/**
 * walk_page_mapping: every VMA mapping file pages [firstIndex, firstIndex + nr), clipped to the
 * pages it maps. Page offsets are unsigned long in the kernel: the arithmetic here is modulo 2^64
 * (bigint), so nr = 0 wraps the interval query to [first, ULONG_MAX] just as C does.
 * A positive test_walk result ends the whole walk with 0 (pagewalk.c: `err = 0; break;`).
 */
export function walkPageMapping<P>(
  mapping: AddressSpace,
  firstIndex: number | bigint,
  nr: number | bigint,
  ops: MmWalkOps<P>,
  priv?: P,
): number {
  if (!checkOpsValid(ops)) return -EINVAL;
  lockdepAssertHeld(mapping.iMmapRwsem);
  const first = BigInt(firstIndex);
  const n = BigInt(nr);
  const last = (first + n - 1n + U64) % U64;
  let err = 0;
  let walk: MmWalk<P> | null = null;
  for (const vma of [...mapping.overlapping(first, last)]) {
    const vba = BigInt(vma.vmPgoff);
    const vea = (vba + BigInt(vmaPages(vma))) % U64;
    const cba = first > vba ? first : vba;
    const ceaRaw = (first + n) % U64;
    const cea = ceaRaw < vea ? ceaRaw : vea;
    const shift = BigInt(vma.vmMm.machine.geo.PAGE_SHIFT);
    const startAddr = Number((((cba - vba + U64) % U64 << shift) + BigInt(vma.vmStart)) % U64);
    const endAddr = Number((((cea - vba + U64) % U64 << shift) + BigInt(vma.vmStart)) % U64);
    if (startAddr >= endAddr) continue;
    walk ??= new MmWalk<P>(ops, vma.vmMm, null, false, priv as P);
    walk.vma = vma;
    walk.mm = vma.vmMm;
    err = walkPageTest(vma.vmStart, vma.vmEnd, walk);
    if (err > 0) {
      err = 0;
      break;
    } else if (err < 0) break;
    err = __walkPageRange(startAddr, endAddr, walk);
    if (err) break;
  }
  return err;
}

export { ENOMEM };
