/**
 * The differential property tests' operations: fast-check arbitraries for random sequences of
 * mm operations, and the runner that applies each one to a real Machine (src/) and to the
 * reference model (model.ts), then checks that they agree.
 *
 * An operation is plain data. Its page, address space and file are chosen by small indices that
 * the runner resolves against the state of the moment (modulo what exists), so every subsequence
 * of a sequence is a valid sequence too and fast-check can shrink a failure to a short one.
 *
 * After every step, each check is a named rule (InvariantError's `rule`):
 *  - vma: the VMAs cover exactly the model's pages, with its rights, sharing, file and offset;
 *  - translate: the CPU's debug walk (no TLB) agrees with the model for every page it knows and
 *    for every other page of the window and every page ever mapped — present pages translate with
 *    the model's content (zero page, pfn, tag), nothing else translates, write permission only
 *    where a write cannot reach anyone else's data, execute exactly with PROT_EXEC;
 *  - tlb: after the flushes the kernel issued, the TLB path grants no access the tables no
 *    longer give (the same page, the same right);
 *  - walk: walk_page_range's pte_entry sees exactly the model's present pages and swap entries;
 *  - balance: refcounts and mapcounts match the mappings (test/support/invariants.ts);
 *  - rss: each mm's rss counters match the model's pages;
 *  - frames: frames in use = page tables reachable from the live roots + the model's pages;
 *  - swap / page-cache: swap slots, swap cache and page-cache contents match the model;
 *  - result: an operation returned what the documented semantics say.
 * At the end every address space exits and, with the page caches truncated and the driver's pages
 * released, the allocator must be back to its count after boot.
 *
 * Nothing here imports vitest: bench/soak.ts bundles this file.
 */
import fc from 'fast-check';
import {
  EACCES,
  EBUSY,
  EEXIST,
  EINVAL,
  ENOMEM,
  FOLL_FORCE,
  FOLL_WRITE,
  GEOMETRIES,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MAP_SHARED,
  MMAP_MIN_ADDR,
  MM_ANONPAGES,
  MM_FILEPAGES,
  MM_SHMEMPAGES,
  MM_SWAPENTS,
  Machine,
  PERM_W,
  PERM_X,
  VM_EXEC,
  VM_FAULT_NOPAGE,
  VM_IO,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_MIXEDMAP,
  VM_PFNMAP,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
  WalkResult,
  accessRemoteVm,
  attachCpu,
  createCpu,
  createFile,
  doMmap,
  doMprotect,
  doMunmap,
  doUserAddrFault,
  dupMm,
  exitMmap,
  folioAlloc,
  folioPut,
  lookupEntry,
  migrateFolio,
  mmapReadLock,
  mmapReadUnlock,
  mmapWriteLock,
  mmapWriteUnlock,
  mmPopulate,
  registersFor,
  remapPfnRange,
  setFolioMapping,
  swapDevice,
  swapOutFolio,
  unmapMappingRange,
  vmGetPageProt,
  vmInsertPage,
  vmfInsertPfn,
  walkPageRange,
  zapPageRange,
  zapPageRangeSingle,
  zapVmaPages,
  zapVmaPtes,
  type AccessKind as CpuAccessKind,
  type AddressSpace,
  type Cpu,
  type GeometryName,
  type MmStruct,
} from '../../src/index';
import { InvariantError, checkBalance, countUserTables, countUserTablesAlong, expectEqual, framesPerPage } from '../support/invariants';
import { Model, ModelFile, PROT_EXEC, isDevice, isShared, type AccessKind, type DriverPage, type ModelMm, type RegionKind, type Slot } from './model';

// ---- the operations -----------------------------------------------------------------------------------

/** Pages in the window every mm's fixed mappings go to: it straddles a PMD (and on 4K granules a PUD) boundary. */
export const WINDOW_PAGES = 16;
/** Pages of each of the two regular files (mappings may run past the end: SIGBUS there). */
export const FILE_PAGES = 12;
/** Address spaces alive at most (fork is skipped beyond). */
export const MAX_MMS = 4;

export type Op =
  | { k: 'mmap'; mm: number; p: number; n: number; prot: number; kind: 'anon' | 'shanon' | 'file' | 'shfile'; file: number; off: number; place: 'fixed' | 'noreplace' | 'hint'; populate: boolean }
  | { k: 'munmap'; mm: number; p: number; n: number }
  | { k: 'mprotect'; mm: number; p: number; n: number; prot: number }
  | { k: 'fork'; mm: number }
  | { k: 'exit'; mm: number }
  | { k: 'cpu'; mm: number; p: number; access: AccessKind }
  | { k: 'fault'; mm: number; p: number; access: AccessKind }
  | { k: 'remote'; mm: number; p: number; write: boolean; force: boolean; cross: boolean }
  | { k: 'zap'; mm: number; p: number; n: number; how: 'range' | 'single' | 'vma' | 'ptes' }
  | { k: 'unmapMapping'; file: number; start: number; n: number; evenCows: boolean }
  | { k: 'device'; mm: number; p: number; n: number; kind: 'devmixed' | 'devpfn' }
  | { k: 'insertPage'; mm: number; p: number; d: number }
  | { k: 'insertPfn'; mm: number; p: number; q: number }
  | { k: 'remap'; mm: number; p: number; n: number; q: number }
  | { k: 'swapout'; mm: number; p: number }
  | { k: 'migrate'; mm: number; p: number };

const mmIdx = fc.nat({ max: MAX_MMS - 1 });
const page = fc.nat({ max: 63 });
const len = fc.integer({ min: 1, max: 6 });
/** Rights: read/write half the time (so that accesses succeed and pages fill), any combination otherwise. */
const prot = fc.oneof({ weight: 1, arbitrary: fc.constant(3) }, { weight: 1, arbitrary: fc.nat({ max: 7 }) });
const access = fc.constantFrom<AccessKind>('read', 'read', 'read', 'write', 'write', 'write', 'exec');

/** One operation, weighted towards accesses (which is where COW, swap-in and fault-around happen). */
export function opArb(): fc.Arbitrary<Op> {
  return fc.oneof(
    { weight: 12, arbitrary: fc.record({ k: fc.constant('mmap' as const), mm: mmIdx, p: page, n: len, prot, kind: fc.constantFrom('anon' as const, 'shanon' as const, 'file' as const, 'shfile' as const), file: fc.nat({ max: 1 }), off: fc.nat({ max: 10 }), place: fc.constantFrom('fixed' as const, 'fixed' as const, 'noreplace' as const, 'hint' as const), populate: fc.boolean() }) },
    { weight: 5, arbitrary: fc.record({ k: fc.constant('munmap' as const), mm: mmIdx, p: page, n: len }) },
    { weight: 6, arbitrary: fc.record({ k: fc.constant('mprotect' as const), mm: mmIdx, p: page, n: len, prot }) },
    { weight: 4, arbitrary: fc.record({ k: fc.constant('fork' as const), mm: mmIdx }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('exit' as const), mm: mmIdx }) },
    { weight: 26, arbitrary: fc.record({ k: fc.constant('cpu' as const), mm: mmIdx, p: page, access }) },
    { weight: 6, arbitrary: fc.record({ k: fc.constant('fault' as const), mm: mmIdx, p: page, access }) },
    { weight: 9, arbitrary: fc.record({ k: fc.constant('remote' as const), mm: mmIdx, p: page, write: fc.boolean(), force: fc.boolean(), cross: fc.boolean() }) },
    { weight: 6, arbitrary: fc.record({ k: fc.constant('zap' as const), mm: mmIdx, p: page, n: len, how: fc.constantFrom('range' as const, 'single' as const, 'vma' as const, 'ptes' as const) }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('unmapMapping' as const), file: fc.nat({ max: 1 }), start: fc.nat({ max: FILE_PAGES - 1 }), n: fc.nat({ max: 6 }), evenCows: fc.boolean() }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('device' as const), mm: mmIdx, p: page, n: len, kind: fc.constantFrom('devmixed' as const, 'devpfn' as const) }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('insertPage' as const), mm: mmIdx, p: page, d: fc.nat({ max: 1 }) }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('insertPfn' as const), mm: mmIdx, p: page, q: fc.nat({ max: 7 }) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('remap' as const), mm: mmIdx, p: page, n: len, q: fc.nat({ max: 7 }) }) },
    { weight: 6, arbitrary: fc.record({ k: fc.constant('swapout' as const), mm: mmIdx, p: page }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('migrate' as const), mm: mmIdx, p: page }) },
  );
}

/** A sequence of up to maxOps operations. */
export function opsArb(maxOps: number): fc.Arbitrary<Op[]> {
  return fc.array(opArb(), { minLength: 1, maxLength: maxOps, size: 'max' });
}

/**
 * The operations up to and including the one that failed (the runner prefixes its errors with
 * "step N"): fast-check's shrinker does not always drop the steps after the failure.
 */
export function failingPrefix(ops: readonly Op[], error: unknown): readonly Op[] {
  const msg = error instanceof Error ? error.message : String(error);
  const m = /^step (\d+) /.exec(msg);
  return m ? ops.slice(0, Number(m[1]) + 1) : ops;
}

/** One line per operation, for reports and reproductions. */
export function formatOps(ops: readonly Op[]): string {
  return ops.map((o, i) => `${String(i).padStart(3)}  ${JSON.stringify(o)}`).join('\n');
}

// ---- the runner ------------------------------------------------------------------------------------------

const DEV_FLAGS = VM_READ | VM_WRITE | VM_SHARED | VM_MAYREAD | VM_MAYWRITE | VM_MAYSHARE;
const U32 = 2 ** 32;

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** Statistics of one run: how often each kind of operation actually did something. */
export interface RunStats {
  ops: number;
  applied: Record<string, number>;
  skipped: number;
  /** The model's mechanism counters (COW, swap-in, fault-around…). */
  events: Record<string, number>;
}

/** Add one run's statistics into a total. */
export function addStats(total: RunStats, st: RunStats): void {
  total.ops += st.ops;
  total.skipped += st.skipped;
  for (const [k, v] of Object.entries(st.applied)) total.applied[k] = (total.applied[k] ?? 0) + v;
  for (const [k, v] of Object.entries(st.events)) total.events[k] = (total.events[k] ?? 0) + v;
}

export function emptyStats(): RunStats {
  return { ops: 0, applied: {}, skipped: 0, events: {} };
}

export interface HarnessOptions {
  /** Bytes of physical memory (default: see the constructor). */
  readonly memSize?: number;
  /** Count page tables by scanning every entry of every table instead of along the mapped pages' paths (slower). */
  readonly fullTableScan?: boolean;
}

/** One Machine + CPU + model, driven by a sequence of operations. */
export class Harness {
  readonly m: Machine;
  readonly model: Model;
  readonly cpu: Cpu;
  readonly ps: number;
  /** Free frames right after boot (init_mm and the zero page exist). */
  readonly free0: number;
  readonly stats: RunStats = emptyStats();

  private readonly sysMm = new Map<ModelMm, MmStruct>();
  private readonly everMapped = new Map<ModelMm, Set<number>>();
  private readonly files: AddressSpace[] = [];
  private readonly modelFiles: ModelFile[] = [];
  /** shmem files of MAP_SHARED|MAP_ANONYMOUS mappings: model ↔ kernel. */
  private readonly shmem = new Map<ModelFile, AddressSpace>();
  private readonly drivers: Array<{ model: DriverPage; pa: number }> = [];
  private readonly windowBase: number;
  private readonly devPfnBase: number;
  private readonly out = new WalkResult();
  private readonly dbg = new WalkResult();
  private readonly dbg2 = new WalkResult();
  private loaded: MmStruct | null = null;
  private readonly ttbr0 = new Map<MmStruct, bigint>();
  private nextTag = 0x1000;
  private readonly u8: Uint8Array;
  private detach: () => void;
  private readonly fullTableScan: boolean;

  constructor(
    readonly geometry: GeometryName,
    opts: HarnessOptions = {},
  ) {
    // Memory for the worst case of MAX_MMS address spaces with every window page private, the two
    // files cached and their page tables: 1024 pages of 4K, 512 of 16K, 256 of 64K.
    const g = GEOMETRIES[geometry];
    const m = new Machine({ geometry, memSize: opts.memSize ?? (g.PAGE_SIZE === 4096 ? 4 : g.PAGE_SIZE === 16384 ? 8 : 16) * 2 ** 20 });
    // THP off: the model has no huge pages (a 2 MiB-512 MiB folio per fault would not fit the budget).
    m.thp.enabled = 'never';
    this.m = m;
    this.ps = m.geo.PAGE_SIZE;
    this.fullTableScan = opts.fullTableScan ?? false;
    this.free0 = m.frames.freeFrames;
    this.u8 = new Uint8Array(m.mem.buffer);
    this.model = new Model(this.ps, m.geo.PTRS_PER_PTE);
    this.stats.events = this.model.events;
    // The window straddles 1 GiB: a PMD boundary everywhere, a PUD boundary on 4K granules.
    this.windowBase = 0x4000_0000 - (WINDOW_PAGES / 2) * this.ps;
    // Device memory: pfns above RAM (no struct page).
    this.devPfnBase = Math.ceil((m.mem.physBase + m.mem.size) / this.ps) + 0x100;

    // Two regular files with a tag in every page of the backing store.
    for (let fi = 0; fi < 2; fi++) {
      const f = createFile(m, `file${fi}`, FILE_PAGES * this.ps);
      for (let i = 0; i < FILE_PAGES; i++) {
        const bytes = new Uint8Array(16);
        new DataView(bytes.buffer).setUint32(0, fileTag(fi, i), true);
        f.backing.set(i, bytes);
      }
      this.files.push(f);
      this.modelFiles.push(this.model.newFile(`file${fi}`, FILE_PAGES, false, (i) => fileTag(fi, i)));
    }
    // Two driver pages (a driver's own allocations, one reference each, kept until the end).
    for (let d = 0; d < 2; d++) {
      const pa = folioAlloc(m, 0, true);
      const tag = this.tag();
      this.writeTagAt(pa, tag);
      this.drivers.push({ model: this.model.newDriverPage(tag), pa });
    }

    // The CPU: x86-64 with PCIDs (CR4.PCIDE), ARM64 with 16-bit ASIDs (TCR_EL1.AS) and hardware
    // access/dirty management (TCR_EL1.HA/HD, which the mm model's old fault-around ptes assume).
    const root = this.addMm(this.model.newMm(), m.newMm('p0'));
    const regs = registersFor(m, root.pgd, m.initMm.pgd);
    if (m.geo.arch === 'x86_64') {
      regs.cr4 = regs.cr4! | (1n << 17n);
      regs.cr3 = BigInt(root.pgd) | BigInt(root.asid & 0xfff);
    } else {
      regs.tcr_el1 = regs.tcr_el1! | (1n << 36n) | (1n << 39n) | (1n << 40n);
      regs.ttbr0_el1 = regs.ttbr0_el1! | (BigInt(root.asid) << 48n);
    }
    this.cpu = createCpu(m.geo.arch, m.mem, regs);
    this.loaded = root;
    this.detach = attachCpu(m, this.cpu);
  }

  private tag(): number {
    this.nextTag = (this.nextTag + 0x9e37) >>> 0;
    if (this.nextTag === 0) this.nextTag = 1;
    return this.nextTag;
  }

  private addMm(model: ModelMm, mm: MmStruct): MmStruct {
    this.sysMm.set(model, mm);
    this.everMapped.set(model, new Set());
    return mm;
  }

  private readTagAt(pa: number): number {
    const o = this.m.mem.offset(pa, 4);
    return (this.u8[o]! | (this.u8[o + 1]! << 8) | (this.u8[o + 2]! << 16) | (this.u8[o + 3]! << 24)) >>> 0;
  }

  private writeTagAt(pa: number, tag: number): void {
    const o = this.m.mem.offset(pa, 4);
    this.u8[o] = tag & 0xff;
    this.u8[o + 1] = (tag >>> 8) & 0xff;
    this.u8[o + 2] = (tag >>> 16) & 0xff;
    this.u8[o + 3] = tag >>> 24;
  }

  // ---- resolving an operation's indices ----------------------------------------------------------------

  private live(): ModelMm[] {
    return this.model.liveMms();
  }

  private pickMm(i: number): [ModelMm, MmStruct] {
    const l = this.live();
    const mm = l[i % l.length]!;
    return [mm, this.sysMm.get(mm)!];
  }

  /**
   * The page an operation acts on: p 0-39 one of the mm's mapped pages (most operations are
   * about them), 40-55 a window page, mapped or not, 56-63 a mapped page outside the window
   * (from an mmap without MAP_FIXED). Falls back to the window when there is none.
   */
  private pageOf(mm: ModelMm, p: number): number {
    const window = this.windowBase + (p % WINDOW_PAGES) * this.ps;
    if (p >= 40 && p < 56) return window;
    const slots = mm.sortedSlots();
    const pool = p < 40 ? slots : slots.filter((s) => s.addr < this.windowBase || s.addr >= this.windowBase + WINDOW_PAGES * this.ps);
    return pool.length === 0 ? window : pool[p % pool.length]!.addr;
  }

  /** A page of the mm whose slot passes `want` (p picks among them), or -1. */
  private slotOf(mm: ModelMm, p: number, want: (s: Slot) => boolean): number {
    const pool = mm.sortedSlots().filter(want);
    return pool.length === 0 ? -1 : pool[p % pool.length]!.addr;
  }

  private modelFile(kind: RegionKind, file: AddressSpace | null): ModelFile | null {
    if (!file) return null;
    const i = this.files.indexOf(file);
    if (i >= 0) return this.modelFiles[i]!;
    for (const [mf, f] of this.shmem) if (f === file) return mf;
    throw new InvariantError('vma', `${kind} VMA maps a file the test does not know (${file.name})`);
  }

  private result(op: Op, what: string, actual: unknown, expected: unknown): void {
    if (actual !== expected) throw new InvariantError('result', `${op.k}: ${what}: expected ${String(expected)}, got ${String(actual)}`);
  }

  /** Switch the CPU to mm without a flush (the kernel's flushes reach every PCID / ASID). */
  private load(mm: MmStruct): void {
    if (this.loaded === mm) return;
    if (this.m.geo.arch === 'x86_64') {
      this.cpu.setRegister('cr3', BigInt(mm.pgd) | BigInt(mm.asid & 0xfff) | (1n << 63n));
    } else {
      let v = this.ttbr0.get(mm);
      if (v === undefined) {
        v = registersFor(this.m, mm.pgd, this.m.initMm.pgd).ttbr0_el1! | (BigInt(mm.asid) << 48n);
        this.ttbr0.set(mm, v);
      }
      this.cpu.setRegister('ttbr0_el1', v);
    }
    this.loaded = mm;
  }

  // ---- running ------------------------------------------------------------------------------------------------

  /** Apply every operation, checking everything after each; then tear down and check for leaks. */
  run(ops: readonly Op[]): void {
    try {
      this.checkAll('start');
      ops.forEach((op, i) => {
        try {
          this.apply(op);
          this.stats.ops++;
          this.checkAll(op.k);
        } catch (e) {
          if (e instanceof Error) e.message = `step ${i} ${JSON.stringify(op)}: ${e.message}`;
          throw e;
        }
      });
      try {
        this.teardown();
      } catch (e) {
        if (e instanceof Error) e.message = `teardown after ${ops.length} steps: ${e.message}`;
        throw e;
      }
    } finally {
      this.detach();
    }
  }

  private count(k: string): void {
    this.stats.applied[k] = (this.stats.applied[k] ?? 0) + 1;
  }

  private skip(): void {
    this.stats.skipped++;
  }

  apply(op: Op): void {
    switch (op.k) {
      case 'mmap':
        return this.opMmap(op);
      case 'munmap': {
        const [mm, sys] = this.pickMm(op.mm);
        const addr = this.pageOf(mm, op.p);
        this.result(op, 'munmap', doMunmap(sys, addr, op.n * this.ps), 0);
        this.model.unmap(mm, addr, op.n);
        return this.count(op.k);
      }
      case 'mprotect': {
        const [mm, sys] = this.pickMm(op.mm);
        const addr = this.pageOf(mm, op.p);
        const want = this.model.mprotect(mm, addr, op.n, op.prot);
        const got = doMprotect(sys, addr, op.n * this.ps, op.prot);
        this.result(op, `mprotect(${hex(addr)}, ${op.n} pages, ${op.prot})`, got, want === 0 ? 0 : want === 'ENOMEM' ? -ENOMEM : -EACCES);
        return this.count(op.k);
      }
      case 'fork': {
        if (this.live().length >= MAX_MMS) return this.skip();
        const [mm, sys] = this.pickMm(op.mm);
        // vma_needs_copy (mm/memory.c): a VMA's ptes are copied when it has anonymous pages
        // (anon_vma) or is a pfn / mixed map; otherwise the child faults them in again.
        const copies = new Map<number, boolean>();
        for (const v of sys.vmaList) {
          const c = v.anonVma !== null || (v.vmFlags & (VM_PFNMAP | VM_MIXEDMAP)) !== 0;
          for (let a = v.vmStart; a < v.vmEnd; a += this.ps) copies.set(a, c);
        }
        const child = dupMm(sys, `p${this.model.mms.length}`);
        const cm = this.model.fork(mm, (s) => copies.get(s.addr) ?? false);
        this.addMm(cm, child);
        for (const a of this.everMapped.get(mm)!) this.everMapped.get(cm)!.add(a);
        return this.count(op.k);
      }
      case 'exit': {
        if (this.live().length <= 1) return this.skip();
        const [mm, sys] = this.pickMm(op.mm);
        exitMmap(sys);
        this.model.exit(mm);
        if (this.loaded === sys) this.loaded = null;
        return this.count(op.k);
      }
      case 'cpu':
        return this.opCpu(op.mm, op.p, op.access);
      case 'fault': {
        const [mm, sys] = this.pickMm(op.mm);
        const addr = this.pageOf(mm, op.p);
        const slot = mm.slots.get(addr);
        let want = this.model.userAccessAllowed(slot, op.access);
        if (want === 'ok') want = this.model.fault(slot!, op.access === 'write', this.bounds(sys, addr));
        const r = doUserAddrFault(sys, addr, op.access);
        this.result(op, `${op.access} fault at ${hex(addr)}`, r.signal ?? 'ok', want);
        return this.count(op.k);
      }
      case 'remote':
        return this.opRemote(op);
      case 'zap':
        return this.opZap(op);
      case 'unmapMapping': {
        const f = this.files[op.file]!;
        unmapMappingRange(f, op.start * this.ps, op.n * this.ps, op.evenCows);
        this.model.unmapMapping(this.modelFiles[op.file]!, op.start, op.n === 0 ? Infinity : op.start + op.n - 1, op.evenCows);
        return this.count(op.k);
      }
      case 'device':
        return this.opDevice(op);
      case 'insertPage': {
        const [mm, sys] = this.pickMm(op.mm);
        const addr = this.slotOf(mm, op.p, (s) => s.kind === 'devmixed');
        if (addr < 0) return this.skip();
        const slot = mm.slots.get(addr)!;
        const d = this.drivers[op.d]!;
        const got = vmInsertPage(sys.vmaLookup(addr)!, addr, d.pa);
        const want = this.model.insertPage(slot, d.model);
        this.result(op, `vm_insert_page at ${hex(addr)}`, got, want === 0 ? 0 : -EBUSY);
        return this.count(op.k);
      }
      case 'insertPfn': {
        const [mm, sys] = this.pickMm(op.mm);
        const addr = this.slotOf(mm, op.p, (s) => s.kind === 'devpfn');
        if (addr < 0) return this.skip();
        const slot = mm.slots.get(addr)!;
        const pfn = this.devPfnBase + op.q;
        this.result(op, `vmf_insert_pfn at ${hex(addr)}`, vmfInsertPfn(sys.vmaLookup(addr)!, addr, pfn), VM_FAULT_NOPAGE);
        this.model.insertPfn(slot, pfn);
        return this.count(op.k);
      }
      case 'remap':
        return this.opRemap(op);
      case 'swapout':
        return this.opSwapout(op);
      case 'migrate':
        return this.opMigrate(op);
    }
  }

  /** The VMA's bounds for fault-around (the kernel chooses where VMAs merge and split). */
  private bounds(sys: MmStruct, addr: number): { vmaStart: number; vmaEnd: number } {
    const v = sys.vmaLookup(addr);
    return v ? { vmaStart: v.vmStart, vmaEnd: v.vmEnd } : { vmaStart: addr, vmaEnd: addr + this.ps };
  }

  private opMmap(op: Extract<Op, { k: 'mmap' }>): void {
    const [mm, sys] = this.pickMm(op.mm);
    const ps = this.ps;
    const shared = op.kind === 'shanon' || op.kind === 'shfile';
    let flags = shared ? MAP_SHARED : MAP_PRIVATE;
    if (op.kind === 'anon' || op.kind === 'shanon') flags |= MAP_ANONYMOUS;
    if (op.place === 'fixed') flags |= MAP_FIXED;
    if (op.place === 'noreplace') flags |= MAP_FIXED_NOREPLACE;
    const fileBacked = op.kind === 'file' || op.kind === 'shfile';
    const file = fileBacked ? this.files[op.file]! : null;
    const hint = op.place === 'hint' ? 0 : this.windowBase + (op.p % WINDOW_PAGES) * ps;
    const mopts = fileBacked ? { file, offset: op.off * ps } : {};
    mmapWriteLock(sys);
    let addr: number;
    try {
      addr = doMmap(sys, hint, op.n * ps, op.prot, flags, mopts);
    } finally {
      mmapWriteUnlock(sys);
    }
    if (op.place === 'noreplace') {
      let busy = false;
      for (let i = 0; i < op.n; i++) if (mm.slots.has(hint + i * ps)) busy = true;
      this.result(op, 'MAP_FIXED_NOREPLACE', addr, busy ? -EEXIST : hint);
      if (busy) return this.count(op.k);
    } else if (op.place === 'fixed') {
      this.result(op, 'MAP_FIXED', addr, hint);
    } else {
      // No hint: any free, page-aligned range below TASK_SIZE above mmap_min_addr will do.
      if (addr < 0) throw new InvariantError('result', `mmap without a hint failed with ${addr}`);
      if (addr % ps !== 0 || addr < MMAP_MIN_ADDR || addr + op.n * ps > this.m.TASK_SIZE) throw new InvariantError('result', `mmap returned ${hex(addr)}: not a page-aligned user range`);
      for (let i = 0; i < op.n; i++) {
        if (mm.slots.has(addr + i * ps)) throw new InvariantError('result', `mmap without a hint returned ${hex(addr)}, which overlaps a mapping`);
      }
    }
    let mf: ModelFile | null = null;
    let index0 = 0;
    if (fileBacked) {
      mf = this.modelFiles[op.file]!;
      index0 = op.off;
    } else if (op.kind === 'shanon') {
      mf = this.model.newFile('shmem', op.n, true, () => 0);
      const vf = sys.vmaLookup(addr)?.vmFile;
      if (!vf) throw new InvariantError('vma', `MAP_SHARED|MAP_ANONYMOUS at ${hex(addr)}: no shmem file behind the VMA`);
      this.shmem.set(mf, vf);
    }
    this.model.map(mm, addr, op.n, op.prot, op.kind, mf, index0);
    for (let i = 0; i < op.n; i++) this.everMapped.get(mm)!.add(addr + i * ps);
    if (op.populate) {
      // mm_populate: write faults in private writable mappings, read faults elsewhere; PROT_NONE
      // VMAs are skipped.
      mmPopulate(sys, addr, op.n * ps);
      if (op.prot !== 0) {
        for (let i = 0; i < op.n; i++) {
          const slot = mm.slots.get(addr + i * ps)!;
          const write = (op.prot & 2) !== 0 && !isShared(op.kind);
          this.model.fault(slot, write, this.bounds(sys, slot.addr));
        }
      }
    }
    this.count(op.populate ? 'mmap+populate' : op.k);
  }

  private opCpu(mmI: number, p: number, kind: AccessKind): void {
    const [mm, sys] = this.pickMm(mmI);
    const addr = this.pageOf(mm, p);
    const slot = mm.slots.get(addr);
    const bounds = this.bounds(sys, addr);
    let want = this.model.userAccessAllowed(slot, kind);
    if (want === 'ok') want = this.model.fault(slot!, kind === 'write', bounds);
    this.load(sys);
    const hi = Math.floor(addr / U32);
    const lo = addr % U32;
    const out = this.out;
    let got: string | null = null;
    // The hardware access, and the kernel's fault handler when it faults: as a CPU retries the
    // instruction after the handler returns. A resolved fault must let the retry through.
    for (let tries = 0; tries < 3; tries++) {
      this.cpu.access(hi, lo, kind as CpuAccessKind, true, out);
      if (out.fault === null) {
        got = 'ok';
        break;
      }
      const r = doUserAddrFault(sys, addr, kind);
      if (r.signal !== null) {
        got = r.signal;
        break;
      }
    }
    if (got === null) throw new InvariantError('cpu', `${kind} at ${hex(addr)}: the fault handler resolved the fault but the access still faults (${out.fault}, code ${hex(out.code)})`);
    this.result({ k: 'cpu', mm: mmI, p, access: kind }, `${kind} at ${hex(addr)}`, got, want);
    if (got !== 'ok') return this.count('cpu:' + got);
    const s = slot!;
    if (s.state === 'dev') {
      expectEqual('cpu', `${kind} at ${hex(addr)} reaches pfn`, out.pa, s.pfn * this.ps);
    } else if (kind === 'write') {
      const tag = this.tag();
      this.writeTagAt(out.pa, tag);
      this.model.writeTag(s, tag);
    } else {
      expectEqual('cpu', `${kind} at ${hex(addr)} (pa ${hex(out.pa)}) reads`, this.readTagAt(out.pa), this.model.content(s));
    }
    this.count('cpu:' + kind);
  }

  private opRemote(op: Extract<Op, { k: 'remote' }>): void {
    const [mm, sys] = this.pickMm(op.mm);
    const addr = this.pageOf(mm, op.p);
    const ps = this.ps;
    const start = op.cross ? addr + ps - 4 : addr;
    const length = op.cross ? 8 : 4;
    const buf = new Uint8Array(length);
    const tag = this.tag();
    if (op.write) {
      buf.fill(0xee);
      new DataView(buf.buffer).setUint32(length - 4, tag, true);
    }
    // The model: page by page, check_vma_flags then the fault-in; the transfer stops at the first refusal.
    const pages = op.cross ? [addr, addr + ps] : [addr];
    let want = 0;
    let readSlot: Slot | null = null;
    for (let i = 0; i < pages.length; i++) {
      const slot = mm.slots.get(pages[i]!);
      if (!this.model.gupAllowed(slot, op.write, op.force)) break;
      if (this.model.fault(slot!, op.write, this.bounds(sys, pages[i]!)) !== 'ok') break;
      const isTagPage = i === pages.length - 1;
      if (op.write && isTagPage) this.model.writeTag(slot!, tag);
      if (!op.write && isTagPage) readSlot = slot!;
      want += 4;
    }
    const flags = (op.write ? FOLL_WRITE : 0) | (op.force ? FOLL_FORCE : 0);
    const got = accessRemoteVm(sys, start, buf, length, flags);
    this.result(op, `access_remote_vm(${hex(start)}, ${length}, ${op.write ? 'write' : 'read'}${op.force ? ', force' : ''}) bytes`, got, want);
    if (readSlot && got === length) {
      const v = new DataView(buf.buffer).getUint32(length - 4, true);
      expectEqual('content', `access_remote_vm read at ${hex(pages[pages.length - 1]!)}`, v, this.model.content(readSlot));
    }
    this.count(op.write ? 'remote:write' : 'remote:read');
  }

  private opZap(op: Extract<Op, { k: 'zap' }>): void {
    const [mm, sys] = this.pickMm(op.mm);
    const addr = this.pageOf(mm, op.p);
    const vma = sys.vmaLookup(addr);
    if (!vma) return this.skip();
    const ps = this.ps;
    const end = addr + op.n * ps;
    switch (op.how) {
      case 'range':
        zapPageRange(vma, addr, op.n * ps);
        this.model.zap(mm, addr, op.n);
        break;
      case 'single': {
        const e = Math.min(end, vma.vmEnd);
        zapPageRangeSingle(vma, addr, op.n * ps);
        this.model.zap(mm, addr, (e - addr) / ps);
        break;
      }
      case 'vma': {
        const [s, e] = [vma.vmStart, vma.vmEnd];
        zapVmaPages(vma);
        this.model.zap(mm, s, (e - s) / ps);
        break;
      }
      case 'ptes': {
        // Only VM_PFNMAP VMAs, and only a range inside the VMA; otherwise nothing happens.
        const applies = mm.slots.get(addr)?.kind === 'devpfn' && end <= vma.vmEnd;
        zapVmaPtes(vma, addr, op.n * ps);
        if (applies) this.model.zap(mm, addr, op.n);
        break;
      }
    }
    this.count('zap:' + op.how);
  }

  private opDevice(op: Extract<Op, { k: 'device' }>): void {
    const [mm, sys] = this.pickMm(op.mm);
    const addr = this.windowBase + (op.p % WINDOW_PAGES) * this.ps;
    // mmap(MAP_FIXED) of a device: what was there goes first; the driver's f_op->mmap then gets
    // a shared read/write VMA, marked VM_MIXEDMAP for vm_insert_page or VM_PFNMAP|VM_IO for raw
    // pfns. No fault handler.
    this.result(op, 'munmap before the device mapping', doMunmap(sys, addr, op.n * this.ps), 0);
    this.model.unmap(mm, addr, op.n);
    const flags = (DEV_FLAGS | (op.kind === 'devmixed' ? VM_MIXEDMAP : VM_PFNMAP | VM_IO)) >>> 0;
    mmapWriteLock(sys);
    try {
      const vma = sys.insertVma({ start: addr, end: addr + op.n * this.ps, flags, pgoff: 0, name: 'dev' });
      vma.vmOps = 'device';
      vma.vmPageProt = vmGetPageProt(this.m, flags);
    } finally {
      mmapWriteUnlock(sys);
    }
    this.model.map(mm, addr, op.n, 3, op.kind, null, 0);
    for (let i = 0; i < op.n; i++) this.everMapped.get(mm)!.add(addr + i * this.ps);
    this.count('device');
  }

  private opRemap(op: Extract<Op, { k: 'remap' }>): void {
    const [mm, sys] = this.pickMm(op.mm);
    const addr = this.slotOf(mm, op.p, (s) => s.kind === 'devpfn' && s.state === 'none');
    if (addr < 0) return this.skip();
    const vma = sys.vmaLookup(addr);
    if (!vma) return this.skip();
    const end = Math.min(addr + op.n * this.ps, vma.vmEnd);
    const slots: Slot[] = [];
    for (let a = addr; a < end; a += this.ps) {
      const s = mm.slots.get(a);
      // remap_pfn_range BUG()s on an occupied pte: a driver remaps only what it has not mapped.
      if (!s || s.kind !== 'devpfn' || s.state !== 'none') return this.skip();
      slots.push(s);
    }
    const pfn = this.devPfnBase + op.q;
    mmapWriteLock(sys);
    try {
      this.result(op, `remap_pfn_range at ${hex(addr)}`, remapPfnRange(vma, addr, pfn, end - addr, vma.vmPageProt), 0);
    } finally {
      mmapWriteUnlock(sys);
    }
    slots.forEach((s, i) => this.model.insertPfn(s, pfn + i));
    this.count(op.k);
  }

  /** Physical address of the page mapped at addr (a present pte), from the tables. */
  private mappedPa(sys: MmStruct, addr: number): number {
    const r = lookupEntry(sys, addr);
    if (r.level !== 'pte') throw new InvariantError('translate', `${hex(addr)}: no pte maps it`);
    const pt = this.m.pgtable;
    return this.m.bits.leafPfn('pte', pt.lo(r.ptr), pt.hi(r.ptr)) * this.ps;
  }

  private opSwapout(op: Extract<Op, { k: 'swapout' }>): void {
    const [mm, sys] = this.pickMm(op.mm);
    // Mostly anonymous pages; p >= 56 any present page (the others must be refused).
    const addr = this.slotOf(mm, op.p, op.p < 56 ? (s) => s.state === 'anon' : (s) => s.present && s.state !== 'dev');
    if (addr < 0) return this.skip();
    const slot = mm.slots.get(addr)!;
    const pa = this.mappedPa(sys, addr);
    const got = swapOutFolio(this.m, pa);
    if (slot.state !== 'anon') {
      // Only anonymous folios go to swap (page-cache pages are written back instead).
      this.result(op, `swap-out of a ${slot.state} page at ${hex(addr)}`, got, -EINVAL);
      return this.count('swapout:EINVAL');
    }
    const want = this.model.swapOut(slot.anon!);
    this.result(op, `swap-out at ${hex(addr)}`, got, want === 0 ? 0 : -EBUSY);
    this.count(want === 0 ? 'swapout' : 'swapout:EBUSY');
  }

  private opMigrate(op: Extract<Op, { k: 'migrate' }>): void {
    const [mm, sys] = this.pickMm(op.mm);
    const addr = this.slotOf(mm, op.p, (s) => s.state === 'anon' || s.state === 'cache' || s.state === 'driver');
    if (addr < 0) return this.skip();
    const slot = mm.slots.get(addr)!;
    const pa = this.mappedPa(sys, addr);
    const got = migrateFolio(this.m, pa);
    if (slot.state === 'driver') {
      // A driver's page has no mapping (no anon_vma, no address_space): nothing can migrate it.
      this.result(op, `migration of a driver page at ${hex(addr)}`, got, -EINVAL);
      return this.count('migrate:EINVAL');
    }
    // Migration moves the data; nothing the model sees changes.
    if (got < 0) throw new InvariantError('result', `migrate: migration of the ${slot.state} page at ${hex(addr)} failed with ${got}`);
    this.count('migrate');
  }

  // ---- the checks ------------------------------------------------------------------------------------------

  private checkAll(after: string): void {
    for (const mm of this.live()) {
      const sys = this.sysMm.get(mm)!;
      this.checkVmas(mm, sys);
      this.checkTranslations(mm, sys);
      this.checkWalk(mm, sys);
      this.checkRss(mm, sys);
    }
    this.checkBalanceNow();
    this.checkFrames(after);
    this.checkSwapAndCache();
  }

  /** vma: the VMAs cover exactly the model's pages with its attributes. */
  private checkVmas(mm: ModelMm, sys: MmStruct): void {
    let pages = 0;
    for (const v of sys.vmaList) {
      const isDev = v.vmOps === 'device';
      for (let a = v.vmStart; a < v.vmEnd; a += this.ps) {
        pages++;
        const s = mm.slots.get(a);
        if (!s) throw new InvariantError('vma', `${sys.name}: ${v} maps ${hex(a)}, which the model has unmapped`);
        const rights = ((v.vmFlags & VM_READ ? 1 : 0) | (v.vmFlags & VM_WRITE ? 2 : 0) | (v.vmFlags & VM_EXEC ? 4 : 0)) >>> 0;
        if (rights !== s.prot) throw new InvariantError('vma', `${sys.name}: ${hex(a)} has rights ${rights} in ${v}, the model ${s.prot}`);
        if (((v.vmFlags & VM_SHARED) !== 0) !== s.shared) throw new InvariantError('vma', `${sys.name}: ${hex(a)}: VM_SHARED ${(v.vmFlags & VM_SHARED) !== 0}, model shared ${s.shared}`);
        if (isDev !== isDevice(s.kind)) throw new InvariantError('vma', `${sys.name}: ${hex(a)}: ${v} device ${isDev}, model kind ${s.kind}`);
        if (isDevice(s.kind)) continue;
        const mf = this.modelFile(s.kind, v.vmFile);
        if (mf !== s.file) throw new InvariantError('vma', `${sys.name}: ${hex(a)}: ${v} maps file ${v.vmFile?.name ?? 'none'}, the model ${s.file?.name ?? 'none'}`);
        if (s.file) expectEqual('vma', () => `${sys.name}: file index of ${hex(a)}`, v.vmPgoff + (a - v.vmStart) / this.ps, s.index);
      }
    }
    expectEqual('vma', `${sys.name}: pages in VMAs`, pages, mm.slots.size);
  }

  /** translate + tlb + content for the window, every mapped page and every page ever mapped. */
  private checkTranslations(mm: ModelMm, sys: MmStruct): void {
    this.load(sys);
    const seen = new Set<number>();
    for (let i = 0; i < WINDOW_PAGES; i++) {
      const a = this.windowBase + i * this.ps;
      seen.add(a);
      this.checkPage(mm, sys, a);
    }
    for (const a of this.everMapped.get(mm)!) {
      if (seen.has(a)) continue;
      seen.add(a);
      this.checkPage(mm, sys, a);
    }
  }

  private checkPage(mm: ModelMm, sys: MmStruct, addr: number): void {
    const slot = mm.slots.get(addr);
    const hi = Math.floor(addr / U32);
    const lo = addr % U32;
    const mmu = this.cpu.mmu;
    const d = this.dbg;
    mmu.walk(hi, lo, 'read', true, true, d);
    const where = (): string => `${sys.name} ${hex(addr)}`;
    const expectMapped = slot !== undefined && slot.present && slot.prot !== 0;
    if (!expectMapped) {
      if (d.fault === null) {
        throw new InvariantError('translate', `${where()} translates to ${hex(d.pa)}, but the model has ${slot ? `a ${slot.state} page with rights ${slot.prot}` : 'nothing mapped'} there`);
      }
    } else {
      const s = slot!;
      if (d.fault !== null) throw new InvariantError('translate', `${where()}: a ${s.state} page with rights ${s.prot} does not translate (${d.fault} at level ${d.level})`);
      if (s.state === 'dev' && d.pa !== s.pfn * this.ps) throw new InvariantError('translate', `${where()}: pfn map to ${hex(s.pfn * this.ps)}, the walk gives ${hex(d.pa)}`);
      if (s.state === 'zero' && d.pa !== this.m.zeroPagePa) throw new InvariantError('translate', `${where()}: untouched anonymous memory maps the zero page, not ${hex(d.pa)}`);
      if (s.state !== 'dev') {
        const got = this.readTagAt(d.pa);
        const want = this.model.content(s);
        if (got !== want) throw new InvariantError('content', `${where()} (${s.state}, pa ${hex(d.pa)}) holds ${hex(got)}, expected ${hex(want!)}`);
      }
      if ((d.permUser & PERM_W) !== 0 && !this.model.writableSafe(s)) {
        throw new InvariantError('translate', `${where()}: the pte lets a write through to a ${s.state} page (${s.shared ? 'shared' : 'private'}, rights ${s.prot}${s.anon ? `, ${s.anon.mappers.size} mappers${s.anon.cachedBy ? ', in the swap cache' : ''}` : ''}) that the write must not reach in place`);
      }
      const x = (d.permUser & PERM_X) !== 0;
      if (x !== ((s.prot & PROT_EXEC) !== 0)) throw new InvariantError('translate', `${where()}: executable ${x}, rights ${s.prot}`);
    }
    // The TLB path: whatever it grants, the tables must grant now, to the same page.
    const out = this.out;
    for (const kind of KINDS) {
      this.cpu.access(hi, lo, kind, true, out);
      if (out.fault !== null) continue;
      const d2 = this.dbg2;
      mmu.walk(hi, lo, kind, true, true, d2);
      if (d2.fault !== null || d2.pa !== out.pa) {
        throw new InvariantError('tlb', `${where()}: the TLB grants ${kind} to ${hex(out.pa)}, the tables ${d2.fault !== null ? `fault (${d2.fault})` : `map ${hex(d2.pa)}`}`);
      }
    }
  }

  /** walk: pte_entry sees exactly the present pages and swap entries the model has. */
  private checkWalk(mm: ModelMm, sys: MmStruct): void {
    const vmas = sys.vmaList;
    if (vmas.length === 0) return;
    const present: number[] = [];
    const swap: number[] = [];
    const b = this.m.bits;
    let huge = -1;
    mmapReadLock(sys);
    try {
      walkPageRange(sys, vmas[0]!.vmStart, vmas[vmas.length - 1]!.vmEnd, {
        testWalk: () => 0, // walk VM_PFNMAP VMAs too
        pmdEntry: (pmd, addr, _next, walk) => {
          const l = walk.pt.lo(pmd);
          const h = walk.pt.hi(pmd);
          if (!walk.pt.pmdNone(l, h) && walk.pt.pmdLeaf(l, h)) huge = addr;
          return 0;
        },
        pteEntry: (pte, addr, _next, walk) => {
          const l = walk.pt.lo(pte);
          const h = walk.pt.hi(pte);
          if (b.ptePresent(l, h)) present.push(addr);
          else if (!b.pteNone(l, h)) swap.push(addr);
          return 0;
        },
      });
    } finally {
      mmapReadUnlock(sys);
    }
    if (huge >= 0) throw new InvariantError('walk', `${sys.name}: a huge pmd at ${hex(huge)} with THP off`);
    const wantPresent: number[] = [];
    const wantSwap: number[] = [];
    for (const s of mm.sortedSlots()) {
      if (s.present) wantPresent.push(s.addr);
      else if (s.state === 'swap') wantSwap.push(s.addr);
    }
    sameSet('walk', `${sys.name}: present ptes`, present, wantPresent);
    sameSet('walk', `${sys.name}: swap entries`, swap, wantSwap);
  }

  /** rss: MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS against the model's pages. */
  private checkRss(mm: ModelMm, sys: MmStruct): void {
    let anon = 0;
    let file = 0;
    let shmem = 0;
    let swap = 0;
    for (const s of mm.slots.values()) {
      if (s.state === 'anon') anon++;
      else if (s.state === 'swap') swap++;
      else if (s.state === 'driver') file++;
      else if (s.state === 'cache') {
        if (s.file!.shmem) shmem++;
        else file++;
      }
    }
    expectEqual('rss', `${sys.name} MM_ANONPAGES`, sys.rss[MM_ANONPAGES], anon);
    expectEqual('rss', `${sys.name} MM_FILEPAGES`, sys.rss[MM_FILEPAGES], file);
    expectEqual('rss', `${sys.name} MM_SHMEMPAGES`, sys.rss[MM_SHMEMPAGES], shmem);
    expectEqual('rss', `${sys.name} MM_SWAPENTS`, sys.rss[MM_SWAPENTS], swap);
  }

  private liveSysMms(): MmStruct[] {
    return this.live().map((mm) => this.sysMm.get(mm)!);
  }

  private checkBalanceNow(): void {
    const files = [...this.files];
    for (const mf of this.model.liveShmemFiles()) files.push(this.shmem.get(mf)!);
    const extra = new Map<number, number>(this.drivers.map((d) => [d.pa, 1]));
    checkBalance(this.m, this.liveSysMms(), files, extra);
  }

  /** frames: in use = page tables reachable from the live roots + the model's pages. */
  private checkFrames(after: string): void {
    let tables = 0;
    for (const mm of this.live()) {
      // Tables are only ever allocated for pages that were mapped: the paths to those find them all.
      const sys = this.sysMm.get(mm)!;
      tables += this.fullTableScan ? countUserTables(sys) : countUserTablesAlong(sys, this.everMapped.get(mm)!);
    }
    const fpp = framesPerPage(this.m);
    const used = this.free0 - this.m.frames.freeFrames;
    const want = (tables + this.model.dataPages()) * fpp;
    if (used !== want) {
      throw new InvariantError(
        'frames',
        `after ${after}: ${used} frames in use, expected ${want} (${tables} page tables + ${this.model.anonPages.size} anonymous pages + ${this.model.dataPages() - this.model.anonPages.size} page-cache and driver pages, ${fpp} frames each)`,
      );
    }
  }

  /** swap / page-cache: slots, swap cache, and every cached file page's content. */
  private checkSwapAndCache(): void {
    const dev = swapDevice(this.m);
    expectEqual('swap', 'swap slots in use', dev.usedSlots, this.model.swapSlots.size);
    let cached = 0;
    for (const s of this.model.swapSlots) if (s.cached) cached++;
    expectEqual('swap', 'pages in the swap cache', dev.cache.size, cached);
    const check = (mf: ModelFile, f: AddressSpace): void => {
      expectEqual('page-cache', `${mf.name}: pages cached`, f.pages.size, mf.cache.size);
      for (const [i, tag] of mf.cache) {
        const folio = f.pages.get(i);
        if (folio === undefined) throw new InvariantError('page-cache', `${mf.name}: page ${i} is not in the page cache`);
        expectEqual('page-cache', () => `${mf.name}: page ${i} (pa ${hex(folio)})`, this.readTagAt(folio), tag);
      }
    };
    this.modelFiles.forEach((mf, i) => check(mf, this.files[i]!));
    for (const [mf, f] of this.shmem) check(mf, f);
  }

  /** Every mm exits; the page caches are truncated and the driver's pages released: the allocator is back at its count after boot. */
  private teardown(): void {
    for (const mm of this.live()) {
      exitMmap(this.sysMm.get(mm)!);
      this.model.exit(mm);
    }
    this.checkSwapAndCache();
    expectEqual('frames', 'swap slots after every exit', swapDevice(this.m).usedSlots, 0);
    const fpp = framesPerPage(this.m);
    const held = this.model.dataPages();
    expectEqual('frames', 'frames in use after every exit (page cache and driver pages only)', this.free0 - this.m.frames.freeFrames, held * fpp);
    checkBalance(this.m, [], this.files, new Map(this.drivers.map((d) => [d.pa, 1])));
    for (const f of this.files) {
      for (const [i, folio] of [...f.pages]) {
        f.pages.delete(i);
        setFolioMapping(this.m, folio, null, 0);
        folioPut(this.m, folio);
      }
    }
    for (const d of this.drivers) folioPut(this.m, d.pa);
    expectEqual('frames', 'free frames after teardown', this.m.frames.freeFrames, this.free0);
  }
}

const KINDS: readonly CpuAccessKind[] = ['read', 'write', 'exec'];

function fileTag(fi: number, index: number): number {
  return (0x5000_0000 + fi * 0x1000 + index) >>> 0;
}

function sameSet(rule: string, what: string, got: number[], want: number[]): void {
  const g = new Set(got);
  const w = new Set(want);
  const missing = want.filter((a) => !g.has(a));
  const extra = got.filter((a) => !w.has(a));
  if (missing.length || extra.length || got.length !== g.size) {
    throw new InvariantError(rule, `${what}: missing [${missing.map(hex).join(', ')}], unexpected [${extra.map(hex).join(', ')}]${got.length !== g.size ? ' (some visited twice)' : ''}`);
  }
}

/** Run one sequence on a fresh machine of this geometry (the property, and reproductions). */
export function runOps(geometry: GeometryName, ops: readonly Op[], opts: HarnessOptions = {}): RunStats {
  const h = new Harness(geometry, opts);
  h.run(ops);
  return h.stats;
}

