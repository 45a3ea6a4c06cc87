/**
 * The reference model of the differential property tests: what a process's memory is, written
 * from the documented semantics and nothing else — plain Maps and small objects, no page tables,
 * no frames, no import from src/.
 *
 * Documented rules it follows (man mmap(2), munmap(2), mprotect(2), fork(2), madvise(2)
 * MADV_DONTNEED, ptrace(2) PTRACE_POKEDATA, and the kernel-doc of mm/memory.c / mm/gup.c):
 *  - A private anonymous mapping reads as zeros until written. A read of untouched anonymous
 *    memory maps the shared zero page (mm/memory.c do_anonymous_page); a write gets a page of its own.
 *  - A private file mapping reads the file (the page cache) until written; a write gives the
 *    process a private copy (copy-on-write), which later changes of the file do not reach.
 *  - A shared mapping (of a file, or MAP_SHARED|MAP_ANONYMOUS, a shmem file) reads and writes the
 *    file's page: every mapper sees every write.
 *  - fork gives the child a copy of every private page (shared until one side writes: COW) and the
 *    same shared pages; munmap removes pages; zapping (MADV_DONTNEED) drops private pages (anonymous
 *    memory reads zeros again, private file pages read the file again) and unmaps shared ones,
 *    whose contents stay in the file.
 *  - mprotect changes rights only. A swapped-out page reads back the content it had.
 *  - A page beyond the end of the file cannot be faulted in (SIGBUS); a device mapping has no
 *    fault handler, so touching a page the driver did not map is SIGBUS too.
 *
 * Contents are tracked as one tag per page (a 32-bit value at offset 0 of the page): a write
 * stores a fresh tag, so COW, sharing and swap are checked by content, not only by presence.
 *
 * Where the kernel's observable state depends on how a page got there (which ptes are present,
 * which pages share a frame), the model follows the kernel's documented mechanisms: the zero page
 * for anonymous reads, fault-around (mm/memory.c do_fault_around: fault_around_bytes = 64 KiB,
 * aligned, clipped to the VMA and the page table, only pages already in the page cache), COW reuse
 * of a page nobody else holds (wp_can_reuse_anon_folio), the swap cache holding a page read back
 * while other entries still refer to its slot (mm/swap_state.c), vma_needs_copy at fork (a caller
 * decision passed in: the model has no VMAs). It has no THP (the tests run with THP off).
 */

export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;

/** What a range of the address space is. */
export type RegionKind =
  /** MAP_PRIVATE|MAP_ANONYMOUS */
  | 'anon'
  /** MAP_SHARED|MAP_ANONYMOUS: a shmem file of the mapping's size */
  | 'shanon'
  /** MAP_PRIVATE of a file */
  | 'file'
  /** MAP_SHARED of a file */
  | 'shfile'
  /** a driver's shared mapping filled with vm_insert_page (VM_MIXEDMAP) */
  | 'devmixed'
  /** a driver's shared mapping of raw pfns (VM_PFNMAP: vmf_insert_pfn, remap_pfn_range) */
  | 'devpfn';

/** What a page's pte holds, as far as the semantics decide it. */
export type PageState = 'none' | 'zero' | 'anon' | 'cache' | 'swap' | 'driver' | 'dev';

export function isShared(kind: RegionKind): boolean {
  return kind !== 'anon' && kind !== 'file';
}
export function isDevice(kind: RegionKind): boolean {
  return kind === 'devmixed' || kind === 'devpfn';
}
export function isFileBacked(kind: RegionKind): boolean {
  return kind === 'file' || kind === 'shfile' || kind === 'shanon';
}

/** A file: its size, the contents on the backing store, and the pages in the page cache. */
export class ModelFile {
  /** Page cache: page index → tag. Pages enter on a fault and stay (no truncation, no reclaim of the cache). */
  readonly cache = new Map<number, number>();
  /** Pages of address space that map the file (a shmem file of MAP_SHARED|MAP_ANONYMOUS lives as long as one does). */
  refs = 0;
  constructor(
    readonly name: string,
    readonly sizePages: number,
    readonly shmem: boolean,
    private readonly backing: (index: number) => number,
  ) {}

  /** What page `index` of the file holds now. */
  value(index: number): number {
    return this.cache.get(index) ?? this.backing(index);
  }

  /** filemap_fault: read the page into the cache (a no-op if it is there). */
  bringIn(index: number): void {
    if (!this.cache.has(index)) this.cache.set(index, this.backing(index));
  }
}

/** An anonymous page (a frame): its content and every page of address space mapping it. */
export class AnonPage {
  readonly mappers = new Set<Slot>();
  /** The swap slot whose swap cache holds this page (one reference), or null. */
  cachedBy: SwapSlot | null = null;
  constructor(
    readonly id: number,
    public tag: number,
  ) {}
}

/** A swap slot: the content written out, the entries referring to it, the page in the swap cache. */
export class SwapSlot {
  refs = 0;
  cached: AnonPage | null = null;
  constructor(
    readonly id: number,
    readonly tag: number,
  ) {}
}

/** A page a driver owns and inserts with vm_insert_page. */
export class DriverPage {
  constructor(
    readonly id: number,
    public tag: number,
  ) {}
}

/** One page of one address space. */
export class Slot {
  state: PageState = 'none';
  anon: AnonPage | null = null;
  swap: SwapSlot | null = null;
  driver: DriverPage | null = null;
  /** For 'dev': the pfn mapped. */
  pfn = -1;
  constructor(
    readonly mm: ModelMm,
    readonly addr: number,
    public prot: number,
    readonly kind: RegionKind,
    /** The file (regular or shmem) for file-backed kinds. */
    readonly file: ModelFile | null,
    /** Page index in the file. */
    readonly index: number,
  ) {}

  get shared(): boolean {
    return isShared(this.kind);
  }

  /** Present in the page table (pte_present), as the semantics and mechanisms above decide. */
  get present(): boolean {
    return this.state !== 'none' && this.state !== 'swap';
  }
}

/** One address space. */
export class ModelMm {
  /** Page address → slot, for every mapped page. */
  readonly slots = new Map<number, Slot>();
  exited = false;
  constructor(readonly id: number) {}

  /** Mapped pages in address order. */
  sortedSlots(): Slot[] {
    return [...this.slots.values()].sort((a, b) => a.addr - b.addr);
  }
}

/** The outcome of a fault or access as the semantics give it. */
export type AccessOutcome = 'ok' | 'SIGSEGV' | 'SIGBUS';

export type AccessKind = 'read' | 'write' | 'exec';

/** Where fault-around may map: the VMA holding the page (VMA boundaries are the kernel's choice; the caller passes them). */
export interface FaultAroundBounds {
  readonly vmaStart: number;
  readonly vmaEnd: number;
}

export class Model {
  readonly mms: ModelMm[] = [];
  readonly files: ModelFile[] = [];
  readonly drivers: DriverPage[] = [];
  /** Anonymous pages alive: mapped somewhere or held by the swap cache. */
  readonly anonPages = new Set<AnonPage>();
  readonly swapSlots = new Set<SwapSlot>();
  /** How often each mechanism happened (so a test can tell it was exercised). */
  readonly events: Record<string, number> = {};
  private nextId = 1;

  constructor(
    readonly pageSize: number,
    /** PTRS_PER_PTE: fault-around stays inside one page table. */
    readonly ptrsPerPte: number,
    /** fault_around_bytes (64 KiB). */
    readonly faultAroundBytes = 65536,
  ) {}

  newMm(): ModelMm {
    const mm = new ModelMm(this.nextId++);
    this.mms.push(mm);
    return mm;
  }

  liveMms(): ModelMm[] {
    return this.mms.filter((m) => !m.exited);
  }

  newFile(name: string, sizePages: number, shmem: boolean, backing: (index: number) => number): ModelFile {
    const f = new ModelFile(name, sizePages, shmem, backing);
    if (!shmem) this.files.push(f);
    return f;
  }

  newDriverPage(tag: number): DriverPage {
    const d = new DriverPage(this.nextId++, tag);
    this.drivers.push(d);
    return d;
  }

  /** Shmem files with a mapper left (their page cache is alive). */
  liveShmemFiles(): ModelFile[] {
    const s = new Set<ModelFile>();
    for (const mm of this.liveMms()) for (const slot of mm.slots.values()) if (slot.file?.shmem) s.add(slot.file);
    return [...s];
  }

  // ---- what a page reads as -------------------------------------------------------------------------

  /** The tag a read of this page returns now (device pfns: undefined — not memory the test can read). */
  content(slot: Slot): number | undefined {
    switch (slot.state) {
      case 'anon':
        return slot.anon!.tag;
      case 'zero':
        return 0;
      case 'cache':
        return slot.file!.value(slot.index);
      case 'swap':
        return slot.swap!.tag;
      case 'driver':
        return slot.driver!.tag;
      case 'dev':
        return undefined;
      case 'none':
        if (isDevice(slot.kind)) return undefined;
        return slot.file ? slot.file.value(slot.index) : 0;
    }
  }

  /**
   * May the hardware let this page be written now without the kernel seeing it? Only a shared
   * mapping's page, or a private page that is this mapping's alone (no other mapper, not in the
   * swap cache), in a VMA with PROT_WRITE. (A stricter pte is always allowed: the write faults.)
   */
  writableSafe(slot: Slot): boolean {
    if ((slot.prot & PROT_WRITE) === 0) return false;
    if (slot.shared) return slot.state === 'cache' || slot.state === 'driver' || slot.state === 'dev';
    return slot.state === 'anon' && this.soleOwner(slot.anon!);
  }

  private soleOwner(page: AnonPage): boolean {
    return page.mappers.size === 1 && page.cachedBy === null;
  }

  // ---- page state transitions ----------------------------------------------------------------------

  private note(event: string): void {
    this.events[event] = (this.events[event] ?? 0) + 1;
  }

  private newAnon(tag: number): AnonPage {
    const p = new AnonPage(this.nextId++, tag);
    this.anonPages.add(p);
    return p;
  }

  private releaseIfUnused(p: AnonPage): void {
    if (p.mappers.size === 0 && p.cachedBy === null) this.anonPages.delete(p);
  }

  private attachAnon(slot: Slot, page: AnonPage): void {
    slot.state = 'anon';
    slot.anon = page;
    page.mappers.add(slot);
  }

  /** Whatever the page holds goes (unmap, zap): the pte becomes none. */
  dropState(slot: Slot): void {
    switch (slot.state) {
      case 'anon': {
        const p = slot.anon!;
        p.mappers.delete(slot);
        slot.anon = null;
        // free_pages_and_swap_cache: the last mapping of a swap-cache page whose slot nobody
        // uses any more takes it out of the swap cache.
        if (p.mappers.size === 0 && p.cachedBy !== null && p.cachedBy.refs === 0) {
          this.note('swap-cache freed at unmap');
          this.freeSlot(p.cachedBy);
        }
        this.releaseIfUnused(p);
        break;
      }
      case 'swap': {
        const s = slot.swap!;
        slot.swap = null;
        this.swapPut(s, true);
        break;
      }
      case 'driver':
        slot.driver = null;
        break;
      case 'dev':
        slot.pfn = -1;
        break;
      default:
        break;
    }
    slot.state = 'none';
  }

  /**
   * One entry fewer refers to the slot. With the last, the slot goes with its swap-cache page —
   * except (keepIfMapped: free_swap_and_cache's TTRS_UNMAPPED) while that page is still mapped:
   * it stays in the swap cache, holding the slot, until its last mapping goes or its sole mapper
   * writes it.
   */
  private swapPut(s: SwapSlot, keepIfMapped: boolean): void {
    s.refs--;
    if (s.refs > 0) return;
    if (keepIfMapped && s.cached !== null && s.cached.mappers.size > 0) {
      this.note('swap-cache kept while mapped');
      return;
    }
    this.freeSlot(s);
  }

  /** The slot is released; its swap-cache page, if any, leaves the cache. */
  private freeSlot(s: SwapSlot): void {
    this.swapSlots.delete(s);
    const cached = s.cached;
    if (cached) {
      s.cached = null;
      cached.cachedBy = null;
      this.releaseIfUnused(cached);
    }
  }

  /** do_swap_page: read the slot back (through the swap cache when others still refer to it). */
  private swapIn(slot: Slot): void {
    const s = slot.swap!;
    let page = s.cached;
    if (page === null) {
      page = this.newAnon(s.tag);
      this.note('swap-in');
      if (s.refs > 1) {
        s.cached = page;
        page.cachedBy = s;
      }
    } else {
      this.note('swap-in from the swap cache');
    }
    slot.swap = null;
    this.attachAnon(slot, page);
    // do_swap_page: the last entry read back takes the page out of the swap cache.
    this.swapPut(s, false);
  }

  /**
   * Fault-around (do_fault_around): the pages around `slot` in the same page table, VMA and
   * fault_around_bytes-aligned window whose file pages are already in the page cache get mapped.
   */
  private faultAround(slot: Slot, b: FaultAroundBounds): void {
    const ps = this.pageSize;
    const nr = this.faultAroundBytes / ps;
    if (nr <= 1) return;
    const file = slot.file!;
    const pteOff = (slot.addr / ps) % this.ptrsPerPte;
    const vmaOff = (slot.addr - b.vmaStart) / ps;
    const vmaPages = (b.vmaEnd - b.vmaStart) / ps;
    const from = Math.max(Math.floor(pteOff / nr) * nr, pteOff - Math.min(pteOff, vmaOff));
    const to = Math.min(from + nr, this.ptrsPerPte, pteOff + vmaPages - vmaOff) - 1;
    for (let k = from; k <= to; k++) {
      const addr = slot.addr + (k - pteOff) * ps;
      const other = slot.mm.slots.get(addr);
      if (!other || other.file !== file) continue;
      if (other.index >= file.sizePages) continue;
      if (other.state !== 'none' || !file.cache.has(other.index)) continue;
      if (other !== slot) this.note('fault-around');
      other.state = 'cache';
    }
  }

  /**
   * A fault (or a gup fault-in) that the VMA allows: map what the semantics say. `write` makes the
   * page writable for this mapping: a private page becomes this mapping's own (COW). Returns
   * SIGBUS for a file page past EOF and a device page the driver did not map.
   */
  fault(slot: Slot, write: boolean, bounds: FaultAroundBounds): AccessOutcome {
    if (isDevice(slot.kind)) return slot.state === 'none' ? 'SIGBUS' : 'ok';
    if (slot.state === 'none' && slot.file && slot.index >= slot.file.sizePages) {
      // do_read_fault tries fault-around before ->fault: the neighbours below EOF that are
      // cached get mapped even though the faulting page itself is SIGBUS (filemap_map_pages
      // clips at the end of the file, filemap_fault refuses the page past it).
      if (!write) this.faultAround(slot, bounds);
      this.note('SIGBUS past EOF');
      return 'SIGBUS';
    }
    if (slot.state === 'swap') this.swapIn(slot);
    if (!write) {
      if (slot.state !== 'none') return 'ok';
      if (slot.kind === 'anon') {
        slot.state = 'zero';
        return 'ok';
      }
      this.faultAround(slot, bounds); // only pages cached before this fault
      slot.file!.bringIn(slot.index);
      slot.state = 'cache';
      return 'ok';
    }
    if (slot.shared) {
      if (slot.state === 'none') {
        slot.file!.bringIn(slot.index);
        slot.state = 'cache';
      }
      return 'ok';
    }
    // A private page written: this mapping's own page from now on.
    switch (slot.state) {
      case 'none':
        if (slot.file) {
          slot.file.bringIn(slot.index); // the COW source is read into the page cache
          this.attachAnon(slot, this.newAnon(slot.file.value(slot.index)));
        } else {
          this.attachAnon(slot, this.newAnon(0));
        }
        return 'ok';
      case 'zero':
        this.note('COW of the zero page');
        this.attachAnon(slot, this.newAnon(0));
        return 'ok';
      case 'cache':
        this.note('COW of a page-cache page');
        this.attachAnon(slot, this.newAnon(slot.file!.value(slot.index)));
        return 'ok';
      case 'anon': {
        const old = slot.anon!;
        // wp_can_reuse_anon_folio: this mapping and the swap cache alone hold it, and no entry
        // uses the slot any more — folio_free_swap, then the page is ours to write.
        if (old.mappers.size === 1 && old.cachedBy !== null && old.cachedBy.refs === 0) {
          this.note('swap-cache freed at write');
          this.freeSlot(old.cachedBy);
        }
        if (this.soleOwner(old)) return 'ok';
        this.note('COW of a shared anonymous page');
        old.mappers.delete(slot);
        this.attachAnon(slot, this.newAnon(old.tag));
        this.releaseIfUnused(old);
        return 'ok';
      }
      default:
        return 'ok';
    }
  }

  /** Store a tag in a page made writable by fault(slot, true). */
  writeTag(slot: Slot, tag: number): void {
    switch (slot.state) {
      case 'anon':
        slot.anon!.tag = tag;
        return;
      case 'cache':
        if (!slot.shared) throw new Error(`model: write to a private page-cache page at 0x${slot.addr.toString(16)}`);
        slot.file!.cache.set(slot.index, tag);
        return;
      case 'driver':
        slot.driver!.tag = tag;
        return;
      case 'dev':
        return;
      default:
        throw new Error(`model: write to a page in state ${slot.state}`);
    }
  }

  // ---- user accesses: the architecture's access_error and gup's check_vma_flags ---------------------

  /**
   * A user access by the CPU: access_error (arch/x86/mm/fault.c, arch/arm64/mm/fault.c) — a write
   * needs PROT_WRITE, a fetch PROT_EXEC, a read any right — then the fault.
   */
  userAccessAllowed(slot: Slot | undefined, access: AccessKind): AccessOutcome {
    if (!slot) return 'SIGSEGV';
    if (access === 'write') return slot.prot & PROT_WRITE ? 'ok' : 'SIGSEGV';
    if (access === 'exec') return slot.prot & PROT_EXEC ? 'ok' : 'SIGSEGV';
    return slot.prot & (PROT_READ | PROT_WRITE | PROT_EXEC) ? 'ok' : 'SIGSEGV';
  }

  /**
   * check_vma_flags (mm/gup.c) for access_remote_vm: no pfn/IO mappings; a write needs PROT_WRITE,
   * or FOLL_FORCE on a private (COW) mapping; a read needs PROT_READ, or FOLL_FORCE (VM_MAYREAD is
   * always set here).
   */
  gupAllowed(slot: Slot | undefined, write: boolean, force: boolean): boolean {
    if (!slot) return false;
    if (slot.kind === 'devpfn') return false;
    if (write) return (slot.prot & PROT_WRITE) !== 0 || (force && !slot.shared);
    return (slot.prot & PROT_READ) !== 0 || force;
  }

  // ---- address-space operations -----------------------------------------------------------------------

  /** A new mapping of `pages` pages at addr (whatever was there goes first, as MAP_FIXED does). */
  map(mm: ModelMm, addr: number, pages: number, prot: number, kind: RegionKind, file: ModelFile | null, index0: number): Slot[] {
    this.unmap(mm, addr, pages);
    const out: Slot[] = [];
    for (let i = 0; i < pages; i++) {
      const s = new Slot(mm, addr + i * this.pageSize, prot, kind, file, file ? index0 + i : 0);
      if (file) file.refs++;
      mm.slots.set(s.addr, s);
      out.push(s);
    }
    return out;
  }

  /** munmap: the pages go; a shmem file whose last mapper went takes its pages with it. */
  unmap(mm: ModelMm, addr: number, pages: number): void {
    for (let i = 0; i < pages; i++) {
      const a = addr + i * this.pageSize;
      const s = mm.slots.get(a);
      if (!s) continue;
      this.dropState(s);
      mm.slots.delete(a);
      if (s.file) {
        s.file.refs--;
        if (s.file.shmem && s.file.refs === 0) s.file.cache.clear();
      }
    }
  }

  /** exit: every page goes. */
  exit(mm: ModelMm): void {
    for (const s of mm.sortedSlots()) this.unmap(mm, s.addr, 1);
    mm.exited = true;
  }

  /**
   * mprotect (mm/mprotect.c do_mprotect_pkey): VMA by VMA in address order; an unmapped page stops
   * it with -ENOMEM, a device page asked for PROT_EXEC (no VM_MAYEXEC) with -EACCES — what came
   * before keeps its new rights. Returns 0 or the errno name.
   */
  mprotect(mm: ModelMm, addr: number, pages: number, prot: number): 0 | 'ENOMEM' | 'EACCES' {
    for (let i = 0; i < pages; i++) {
      const s = mm.slots.get(addr + i * this.pageSize);
      if (!s) return 'ENOMEM';
      if (isDevice(s.kind) && prot & PROT_EXEC) return 'EACCES';
      s.prot = prot;
    }
    return 0;
  }

  /**
   * fork: the child gets every mapping; where `copies(slot)` (vma_needs_copy: the VMA has
   * anonymous pages or is a pfn/mixed map) the child's ptes are the parent's — private pages now
   * shared between them until one writes — elsewhere the child faults its pages in afresh.
   */
  fork(parent: ModelMm, copies: (slot: Slot) => boolean): ModelMm {
    const child = this.newMm();
    for (const s of parent.sortedSlots()) {
      const c = new Slot(child, s.addr, s.prot, s.kind, s.file, s.index);
      if (s.file) s.file.refs++;
      child.slots.set(c.addr, c);
      if (!copies(s)) {
        if (s.state === 'anon' || s.state === 'swap') throw new Error(`model: fork without copying a VMA that holds anonymous memory at 0x${s.addr.toString(16)}`);
        continue;
      }
      c.state = s.state;
      switch (s.state) {
        case 'anon':
          this.attachAnon(c, s.anon!);
          break;
        case 'swap':
          c.swap = s.swap;
          s.swap!.refs++;
          break;
        case 'driver':
          c.driver = s.driver;
          break;
        case 'dev':
          c.pfn = s.pfn;
          break;
        default:
          break;
      }
    }
    return child;
  }

  /** zap (MADV_DONTNEED, zap_page_range*): the pages stay mapped, what they held goes. */
  zap(mm: ModelMm, addr: number, pages: number): void {
    for (let i = 0; i < pages; i++) {
      const s = mm.slots.get(addr + i * this.pageSize);
      if (s) this.dropState(s);
    }
  }

  /**
   * unmap_mapping_range: in every address space, the pages of `file` with index in [first, last]
   * lose their page-cache ptes; with even_cows the private copies (and their swap entries) go too.
   */
  unmapMapping(file: ModelFile, first: number, last: number, evenCows: boolean): void {
    for (const mm of this.liveMms()) {
      for (const s of mm.slots.values()) {
        if (s.file !== file || s.index < first || s.index > last) continue;
        if (evenCows || s.state === 'cache') this.dropState(s);
      }
    }
  }

  /** swap-out of an anonymous page: every pte mapping it becomes a swap entry. -EBUSY while the swap cache holds it. */
  swapOut(page: AnonPage): 0 | 'EBUSY' {
    if (page.cachedBy !== null) return 'EBUSY';
    const s = new SwapSlot(this.nextId++, page.tag);
    this.swapSlots.add(s);
    this.note(page.mappers.size > 1 ? 'swap-out of a shared page' : 'swap-out');
    for (const m of [...page.mappers]) {
      page.mappers.delete(m);
      m.anon = null;
      m.state = 'swap';
      m.swap = s;
      s.refs++;
    }
    this.releaseIfUnused(page);
    return 0;
  }

  /** vm_insert_page: -EBUSY when something is mapped there. */
  insertPage(slot: Slot, d: DriverPage): 0 | 'EBUSY' {
    if (slot.state !== 'none') return 'EBUSY';
    slot.state = 'driver';
    slot.driver = d;
    return 0;
  }

  /** vmf_insert_pfn: an empty pte gets the pfn; an occupied one is left alone. */
  insertPfn(slot: Slot, pfn: number): void {
    if (slot.state !== 'none') return;
    slot.state = 'dev';
    slot.pfn = pfn;
  }

  /** Frames the model accounts for, in pages: anonymous pages alive, page-cache pages, driver pages. */
  dataPages(): number {
    let n = this.anonPages.size + this.drivers.length;
    for (const f of this.files) n += f.cache.size;
    for (const f of this.liveShmemFiles()) n += f.cache.size;
    return n;
  }
}
