/**
 * Running a checked scenario (schema.ts) on a fresh Machine: each step calls the mm model the way
 * the kernel's entry point would (mmap → vm_mmap_pgoff, touch → do_user_addr_fault, poke →
 * access_remote_vm with FOLL_FORCE, fork → dup_mmap, …) and the log records what came back:
 * addresses, errno, VM_FAULT_* bits, signals.
 *
 * The kernel's answers are outcomes, never errors: an mmap that fails with -ENOMEM or a touch that
 * gets SIGSEGV is logged and the scenario goes on (a signal does not kill the process: it is as if
 * a handler skipped the access). Two things stop a run:
 *  - a step naming a mapping whose mmap failed, or a process whose fork failed (ScenarioError
 *    with the step's path: the scenario cannot mean anything sensible past it);
 *  - a kernel assertion (BUG_ON, a lock rule, a folio refcount going wrong): logged with outcome
 *    "BUG", and the run is aborted, since the model's state is then not to be trusted.
 *
 * teardownCheck() ends a run the way the system would shut down — every live process exits, the
 * page cache and swap cache are dropped — and compares the free frames with those at the start:
 * anything missing is a leak.
 */
import { PhysAddrError } from '../../mem/errors';
import type { AddressSpace } from '../address-space';
import * as errno from '../errno';
import { accessRemoteVm, FOLL_FORCE, FOLL_WRITE } from '../gup';
import { KernelAssertionError } from '../locks';
import { Machine } from '../machine';
import {
  VM_FAULT_COMPLETED,
  VM_FAULT_DONE_COW,
  VM_FAULT_FALLBACK,
  VM_FAULT_HWPOISON,
  VM_FAULT_HWPOISON_LARGE,
  VM_FAULT_LOCKED,
  VM_FAULT_MAJOR,
  VM_FAULT_NEEDDSYNC,
  VM_FAULT_NOPAGE,
  VM_FAULT_OOM,
  VM_FAULT_RETRY,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
  VM_FAULT_WRITE,
  remapPfnRange,
  zapPageRange,
} from '../memory';
import { createFile, doMmap, dupMm, exitMmap, MAP_LOCKED, MAP_NONBLOCK, MAP_POPULATE, mmPopulate, splitVma, doMprotect, doMunmap } from '../mmap';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS, mmapReadLock, mmapReadUnlock, mmapWriteLock, mmapWriteUnlock, type MmStruct } from '../mm';
import { doUserAddrFault, type UserFaultResult } from '../fault';
import { folioMapcount, folioPut, FolioStateError, pfnToPage } from '../folio';
import { lookupEntry } from '../pt-lookup';
import { migrateFolio, swapOutFolio } from '../reclaim';
import { swapDevice } from '../swap';
import { vmaStartWrite, type VmAreaStruct } from '../vma';
import { VM_EXEC, VM_HUGEPAGE, VM_NOHUGEPAGE, VM_READ, VM_SHARED, VM_WRITE } from '../vm-flags';
import type { LevelName } from '../../arch/geometry';
import { ScenarioError, sizeText, type AddrExpr, type FileSpec, type OpSpec, type Scenario, type StepSpec } from './schema';

// ---- the result ---------------------------------------------------------------------------------

export interface LogEntry {
  /** Position in the run (0-based). */
  readonly index: number;
  /** JSON path of the op in the scenario file. */
  readonly path: string;
  readonly process: string;
  readonly op: OpSpec['op'];
  /** "ok", "SIGSEGV", "SIGBUS", an errno name ("EINVAL"), or "BUG" (a kernel assertion fired). */
  readonly outcome: string;
  /** The outcome the scenario expected, if it said. */
  readonly expect: string | null;
  /** false when an expectation (outcome, expect_bytes/expect_text) was not met. */
  readonly ok: boolean;
  /** What the op returned, JSON-ready: addresses as "0x…" strings, fault bits by name. */
  readonly detail: Record<string, unknown>;
  /** One human-readable line: the op and its result. */
  readonly text: string;
}

export interface ScenarioRun {
  readonly scenario: Scenario;
  readonly machine: Machine;
  /** Every process of the run by name, exited ones included (mm.exited). */
  readonly processes: Map<string, MmStruct>;
  /** The scenario's files by name. */
  readonly files: Map<string, AddressSpace>;
  readonly log: LogEntry[];
  /** Free frames right after the machine was made (init_mm's root and the zero page allocated). */
  readonly freeFramesAtStart: number;
  /** Unmet expectations and kernel assertions, one message each. */
  readonly failures: string[];
  /** A kernel assertion stopped the run before its last step. */
  aborted: boolean;
  /** Every file the processes mapped, the shmem files MAP_SHARED|MAP_ANONYMOUS makes included. */
  readonly mappedFiles: Set<AddressSpace>;
}

// ---- naming results -------------------------------------------------------------------------------

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(errno)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
);

/** "EINVAL" for -22 (or 22). */
export function errnoName(ret: number): string {
  return ERRNO_NAMES.get(Math.abs(ret)) ?? `E${Math.abs(ret)}`;
}

const FAULT_BITS: ReadonlyArray<readonly [number, string]> = [
  [VM_FAULT_OOM, 'VM_FAULT_OOM'],
  [VM_FAULT_SIGBUS, 'VM_FAULT_SIGBUS'],
  [VM_FAULT_MAJOR, 'VM_FAULT_MAJOR'],
  [VM_FAULT_WRITE, 'VM_FAULT_WRITE'],
  [VM_FAULT_HWPOISON, 'VM_FAULT_HWPOISON'],
  [VM_FAULT_HWPOISON_LARGE, 'VM_FAULT_HWPOISON_LARGE'],
  [VM_FAULT_SIGSEGV, 'VM_FAULT_SIGSEGV'],
  [VM_FAULT_NOPAGE, 'VM_FAULT_NOPAGE'],
  [VM_FAULT_LOCKED, 'VM_FAULT_LOCKED'],
  [VM_FAULT_RETRY, 'VM_FAULT_RETRY'],
  [VM_FAULT_FALLBACK, 'VM_FAULT_FALLBACK'],
  [VM_FAULT_DONE_COW, 'VM_FAULT_DONE_COW'],
  [VM_FAULT_NEEDDSYNC, 'VM_FAULT_NEEDDSYNC'],
  [VM_FAULT_COMPLETED, 'VM_FAULT_COMPLETED'],
];

/** The VM_FAULT_* names of the bits set in a handle_mm_fault return value. */
export function faultBitNames(fault: number): string[] {
  return FAULT_BITS.filter(([b]) => (fault & b) !== 0).map(([, n]) => n);
}

function hex(n: number): string {
  return '0x' + n.toString(16);
}

function hexBytes(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** Printable text for bytes when they are all printable ASCII, else null. */
function asText(b: Uint8Array): string | null {
  if (b.length === 0) return null;
  for (const x of b) if (x < 0x20 || x > 0x7e) return null;
  return new TextDecoder().decode(b);
}

// ---- the machine's files ----------------------------------------------------------------------------

function makeFile(m: Machine, f: FileSpec): AddressSpace {
  // A character device's mmap window: no page cache and no dirty accounting (no ->page_mkwrite),
  // which mmulab's vma_wants_writenotify reads from the shmem flag; faults on it get SIGBUS
  // (vm_ops without ->fault), so only remap_pfn puts anything in its VMAs.
  const file = createFile(m, f.name, f.size, {
    shmem: f.kind === 'shmem' || f.kind === 'device',
    hugepageSize: f.kind === 'hugetlbfs' ? f.hugepageSize! : undefined,
  });
  if (f.fill === 'pattern') {
    const ps = m.geo.PAGE_SIZE;
    for (let index = 0; index * ps < f.size; index++) {
      const page = new Uint8Array(ps);
      const dv = new DataView(page.buffer);
      for (let w = 0; w < ps; w += 8) {
        const off = index * ps + w;
        if (off >= f.size) break;
        dv.setUint32(w, off % 2 ** 32, true);
        dv.setUint32(w + 4, Math.floor(off / 2 ** 32), true);
      }
      file.backing.set(index, page);
    }
  }
  return file;
}

// ---- per-process state of the runner ------------------------------------------------------------------

interface MappingAddr {
  /** Where the mmap put it, or null when it failed. */
  readonly addr: number | null;
  readonly length: number;
  /** The mmap's path and its errno, for the error when a later step uses a failed mapping. */
  readonly from: string;
  readonly error: string;
}

interface Proc {
  readonly mm: MmStruct;
  readonly mappings: Map<string, MappingAddr>;
}

class Abort extends Error {}

// ---- running ------------------------------------------------------------------------------------------

/**
 * Run a checked scenario. Throws ScenarioError only for a step that names a mapping whose mmap
 * failed (or a child whose fork failed); kernel answers are in the log. `onStep` is told after each
 * step how many of the steps are done (for a progress bar).
 */
export function runScenario(scenario: Scenario, onStep?: (done: number, total: number) => void): ScenarioRun {
  const spec = scenario.machine;
  const machine = new Machine({ geometry: spec.geometry, memSize: spec.memory });
  machine.thp.enabled = spec.thp;
  const files = new Map<string, AddressSpace>();
  for (const f of scenario.files) files.set(f.name, makeFile(machine, f));
  const run: ScenarioRun = {
    scenario,
    machine,
    processes: new Map(),
    files,
    log: [],
    freeFramesAtStart: machine.frames.freeFrames,
    failures: [],
    aborted: false,
    mappedFiles: new Set(),
  };
  const procs = new Map<string, Proc>();
  const fileKind = new Map<AddressSpace, FileSpec>();
  for (const f of scenario.files) fileKind.set(files.get(f.name)!, f);
  for (const name of scenario.processes) {
    const mm = machine.newMm(name);
    procs.set(name, { mm, mappings: new Map() });
    run.processes.set(name, mm);
  }
  const exec = new Executor(run, procs, fileKind);
  for (const [i, step] of scenario.steps.entries()) {
    try {
      exec.step(step);
    } catch (e) {
      if (e instanceof Abort) {
        run.aborted = true;
        break;
      }
      throw e;
    }
    onStep?.(i + 1, scenario.steps.length);
  }
  return run;
}

class Executor {
  private readonly m: Machine;
  private readonly ps: number;

  constructor(
    private readonly run: ScenarioRun,
    private readonly procs: Map<string, Proc>,
    private readonly fileKind: Map<AddressSpace, FileSpec>,
  ) {
    this.m = run.machine;
    this.ps = run.machine.geo.PAGE_SIZE;
  }

  step(s: StepSpec): void {
    const proc = this.procs.get(s.process);
    if (!proc) {
      // Only a failed fork leaves a checked scenario naming a process that does not exist.
      throw new ScenarioError(`${s.path}.process`, `process "${s.process}" does not exist: the fork that was to create it failed`);
    }
    let res: { outcome: string; detail: Record<string, unknown>; text: string; dataOk?: boolean };
    try {
      res = this.op(s, proc);
    } catch (e) {
      if (e instanceof ScenarioError) throw e;
      if (e instanceof KernelAssertionError || e instanceof FolioStateError || e instanceof PhysAddrError || e instanceof RangeError) {
        const msg = (e as Error).message;
        this.record(s, 'BUG', { error: msg }, `${opText(s.op)}: BUG: ${msg}`, true);
        this.run.failures.push(`${s.path} (${s.process} ${s.op.op}): kernel assertion: ${msg}`);
        throw new Abort();
      }
      throw e;
    }
    this.record(s, res.outcome, res.detail, res.text, res.dataOk ?? true);
  }

  private record(s: StepSpec, outcome: string, detail: Record<string, unknown>, text: string, dataOk: boolean): void {
    const outcomeOk = s.expect === null || s.expect === outcome || outcome === 'BUG' /* reported on its own */;
    if (!outcomeOk) this.run.failures.push(`${s.path} (${s.process} ${s.op.op}): expected ${s.expect}, got ${outcome}`);
    if (!dataOk) this.run.failures.push(`${s.path} (${s.process} ${s.op.op}): the bytes read differ from the expected ones`);
    this.run.log.push({
      index: this.run.log.length,
      path: s.path,
      process: s.process,
      op: s.op.op,
      outcome,
      expect: s.expect,
      ok: outcomeOk && dataOk && outcome !== 'BUG',
      detail,
      text,
    });
  }

  private op(s: StepSpec, proc: Proc): { outcome: string; detail: Record<string, unknown>; text: string; dataOk?: boolean } {
    const op = s.op;
    const mm = proc.mm;
    const m = this.m;
    switch (op.op) {
      case 'mmap': {
        const file = op.file === null ? null : this.run.files.get(op.file)!;
        const hint = op.addr === null ? 0 : this.addrOf(op.addr, proc, s.path, 'addr');
        const device = file !== null && this.fileKind.get(file)?.kind === 'device';
        let ret: number;
        // vm_mmap_pgoff: do_mmap under the mmap write lock — with the device driver's ->mmap
        // (its vm_ops) for device files — then mm_populate for MAP_POPULATE / MAP_LOCKED.
        mmapWriteLock(mm);
        try {
          ret = doMmap(mm, hint, op.length, op.prot, op.flags, { file, offset: op.offset, name: op.as ?? '' });
          if (ret >= 0 && device) {
            const vma = mm.vmaLookup(ret)!;
            vmaStartWrite(vma);
            vma.vmOps = 'device';
          }
        } finally {
          mmapWriteUnlock(mm);
        }
        if (ret >= 0 && (op.flags & (MAP_POPULATE | MAP_LOCKED)) && !(op.flags & MAP_NONBLOCK)) mmPopulate(mm, ret, Math.ceil(op.length / this.ps) * this.ps);
        this.noteFiles(mm);
        const outcome = ret >= 0 ? 'ok' : errnoName(ret);
        if (op.as !== null) proc.mappings.set(op.as, { addr: ret >= 0 ? ret : null, length: op.length, from: s.path, error: outcome });
        const what = `mmap${op.as ? ' ' + op.as : ''} ${sizeText(op.length)} ${protText(op.protNames)} ${op.flagNames.join(',')}${op.file ? ` file ${op.file}+${hex(op.offset)}` : ''}`;
        const detail: Record<string, unknown> = { length: op.length, prot: op.protNames, flags: op.flagNames };
        if (op.as) detail.as = op.as;
        if (op.file) detail.file = op.file;
        if (ret >= 0) detail.addr = hex(ret);
        else detail.errno = ret;
        return { outcome, detail, text: ret >= 0 ? `${what} → ${hex(ret)}` : `${what} → ${ret} (${outcome})` };
      }
      case 'munmap': {
        const start = this.addrOf(op.at, proc, s.path);
        const ret = doMunmap(mm, start, op.length);
        return this.errnoResult(ret, { start: hex(start), length: op.length }, `munmap ${op.at.text} (${hex(start)}) ${sizeText(op.length)}`);
      }
      case 'mprotect': {
        const start = this.addrOf(op.at, proc, s.path);
        const ret = doMprotect(mm, start, op.length, op.prot);
        return this.errnoResult(ret, { start: hex(start), length: op.length, prot: op.protNames }, `mprotect ${op.at.text} (${hex(start)}) ${sizeText(op.length)} ${protText(op.protNames)}`);
      }
      case 'madvise': {
        const start = this.addrOf(op.at, proc, s.path);
        const ret = madviseHugepage(mm, start, op.length, op.advice === 'hugepage');
        return this.errnoResult(ret, { start: hex(start), length: op.length, advice: op.advice }, `madvise ${op.at.text} (${hex(start)}) ${sizeText(op.length)} MADV_${op.advice.toUpperCase()}`);
      }
      case 'touch': {
        const start = this.addrOf(op.at, proc, s.path);
        const pages: Record<string, unknown>[] = [];
        let outcome = 'ok';
        const bits = new Map<string, number>();
        const levels = new Map<string, number>();
        for (let i = 0; i < op.count; i++) {
          const a = start + i * this.ps;
          const r = doUserAddrFault(mm, a, op.access);
          const d = faultDetail(mm, a, r);
          pages.push(d);
          for (const n of faultBitNames(r.fault)) bits.set(n, (bits.get(n) ?? 0) + 1);
          if (d.level) levels.set(d.level as string, (levels.get(d.level as string) ?? 0) + 1);
          if (r.signal) {
            outcome = r.signal;
            break;
          }
        }
        const sum = [...bits].map(([n, c]) => (op.count > 1 ? `${n.replace('VM_FAULT_', '')}×${c}` : n.replace('VM_FAULT_', ''))).join(' ');
        const last = pages[pages.length - 1]!;
        const sig = outcome === 'ok' ? 'ok' : `${outcome} (${String(last.code ?? '')}) at ${String(last.addr)}`;
        const mapped =
          op.count === 1 && last.level
            ? `, mapped by a ${String(last.level)} → pa ${String(last.pa)}`
            : [...levels].map(([l, c]) => `${c} by ${l}`).join(', ').replace(/^(.)/, ', mapped: $1');
        return {
          outcome,
          detail: { start: hex(start), access: op.access, count: op.count, pages },
          text: `touch ${op.at.text} (${hex(start)}) ${op.access}${op.count > 1 ? ` ×${op.count}` : ''}: ${sig}${sum ? ` [${sum}]` : ''}${mapped}`,
        };
      }
      case 'write':
      case 'read': {
        const start = this.addrOf(op.at, proc, s.path);
        const len = op.op === 'write' ? op.bytes.length : op.length;
        const buf = op.op === 'write' ? op.bytes : new Uint8Array(len);
        const r = this.userCopy(mm, start, buf, op.op === 'write');
        const detail: Record<string, unknown> = { start: hex(start), length: len, transferred: r.done };
        if (r.signal) {
          detail.signal = r.signal;
          detail.fault_addr = hex(r.faultAddr);
        }
        if (r.unbacked) detail.unbacked = true;
        let dataOk = true;
        let text = `${op.op} ${op.at.text} (${hex(start)}) ${len} bytes`;
        if (op.op === 'read') {
          const got = buf.subarray(0, r.done);
          detail.bytes = hexBytes(got);
          const t = asText(got);
          if (t !== null) detail.text = t;
          if (op.expectBytes) dataOk = r.done === len && got.every((b, i) => b === op.expectBytes![i]);
          text += `: ${t !== null ? JSON.stringify(t) : shortHex(got)}`;
        }
        if (r.signal) text += `: ${r.signal} at ${hex(r.faultAddr)} after ${r.done} bytes`;
        if (r.unbacked) text += ' (device memory: not emulated)';
        if (!dataOk) text += ' ≠ expected';
        return { outcome: r.signal ?? 'ok', detail, text, dataOk };
      }
      case 'poke':
      case 'peek': {
        const start = this.addrOf(op.at, proc, s.path);
        const write = op.op === 'poke';
        const len = write ? op.bytes.length : op.length;
        const buf = write ? op.bytes.slice() : new Uint8Array(len);
        const n = accessRemoteVm(mm, start, buf, len, FOLL_FORCE | (write ? FOLL_WRITE : 0));
        // ptrace(PTRACE_POKEDATA) and writes to /proc/PID/mem fail with -EIO when access_remote_vm
        // moves fewer bytes than asked.
        const outcome = n === len ? 'ok' : 'EIO';
        const detail: Record<string, unknown> = { start: hex(start), length: len, transferred: n };
        let text = `${op.op} ${op.at.text} (${hex(start)}) ${len} bytes (access_remote_vm FOLL_FORCE${write ? '|FOLL_WRITE' : ''}) → ${n}`;
        let dataOk = true;
        if (!write) {
          const got = buf.subarray(0, n);
          detail.bytes = hexBytes(got);
          const t = asText(got);
          if (t !== null) detail.text = t;
          if (op.expectBytes) dataOk = n === len && got.every((b, i) => b === op.expectBytes![i]);
          text += `: ${t !== null ? JSON.stringify(t) : shortHex(got)}${dataOk ? '' : ' ≠ expected'}`;
        }
        return { outcome, detail, text, dataOk };
      }
      case 'fork': {
        const before = m.frames.freeFrames;
        let child: MmStruct;
        try {
          child = dupMm(mm, op.child);
        } catch (e) {
          if (!(e instanceof RangeError) || e instanceof PhysAddrError) throw e;
          return { outcome: 'ENOMEM', detail: { child: op.child, errno: -errno.ENOMEM }, text: `fork → ${op.child}: ENOMEM (${e.message})` };
        }
        this.procs.set(op.child, { mm: child, mappings: new Map(proc.mappings) });
        this.run.processes.set(op.child, child);
        const used = before - m.frames.freeFrames;
        return { outcome: 'ok', detail: { child: op.child, pgd: hex(child.pgd), frames_used: used }, text: `fork → ${op.child} (pgd ${hex(child.pgd)}, ${used} frames for its tables and copies)` };
      }
      case 'exit': {
        const before = m.frames.freeFrames;
        exitMmap(mm);
        const freed = m.frames.freeFrames - before;
        return { outcome: 'ok', detail: { frames_freed: freed }, text: `exit (exit_mmap freed ${freed} frames)` };
      }
      case 'swap_out':
      case 'migrate': {
        const start = this.addrOf(op.at, proc, s.path);
        const pages: Record<string, unknown>[] = [];
        let outcome = 'ok';
        for (let i = 0; i < op.count && outcome === 'ok'; i++) {
          const a = start + i * this.ps;
          const page = this.normalPage(mm, a);
          if (page < 0) {
            outcome = 'EFAULT';
            pages.push({ addr: hex(a), errno: -errno.EFAULT, note: 'no normal page is mapped there' });
            break;
          }
          const ret = op.op === 'swap_out' ? swapOutFolio(m, page) : migrateFolio(m, page);
          if (ret < 0) {
            outcome = errnoName(ret);
            pages.push({ addr: hex(a), page: hex(page), errno: ret });
          } else if (op.op === 'migrate') pages.push({ addr: hex(a), from: hex(page), to: hex(ret) });
          else pages.push({ addr: hex(a), page: hex(page) });
        }
        const what = op.op === 'swap_out' ? 'swap_out' : 'migrate';
        const moved = pages
          .filter((p) => p.errno === undefined)
          .map((p) => (op.op === 'migrate' ? `${String(p.from)}→${String(p.to)}` : String(p.page)))
          .join(' ');
        return {
          outcome,
          detail: { start: hex(start), count: op.count, pages },
          text: `${what} ${op.at.text} (${hex(start)})${op.count > 1 ? ` ×${op.count}` : ''}: ${outcome}${moved ? ` [${moved}]` : ''}`,
        };
      }
      case 'zap': {
        const start = this.addrOf(op.at, proc, s.path);
        mmapReadLock(mm);
        let ret = 0;
        try {
          const vma = mm.findVma(start);
          if (!vma || vma.vmStart >= start + op.length) ret = -errno.EINVAL;
          else zapPageRange(vma, start, op.length);
        } finally {
          mmapReadUnlock(mm);
        }
        return this.errnoResult(ret, { start: hex(start), length: op.length }, `zap ${op.at.text} (${hex(start)}) ${sizeText(op.length)}${ret ? ' (no VMA in the range)' : ''}`);
      }
      case 'remap_pfn': {
        const start = this.addrOf(op.at, proc, s.path);
        let ret: number;
        // A driver's ->mmap calls remap_pfn_range with the mmap write lock held.
        mmapWriteLock(mm);
        try {
          const vma = mm.vmaLookup(start);
          if (!vma) ret = -errno.EINVAL;
          else ret = remapPfnRange(vma, start, op.pfn, op.length, remapProt(m, vma, op.cache));
        } finally {
          mmapWriteUnlock(mm);
        }
        return this.errnoResult(
          ret,
          { start: hex(start), pfn: hex(op.pfn), length: op.length, cache: op.cache ?? 'vm_page_prot' },
          `remap_pfn ${op.at.text} (${hex(start)}) → pa ${hex(op.pfn * this.ps)} ${sizeText(op.length)}${op.cache ? ` ${op.cache}` : ''}`,
        );
      }
    }
  }

  private addrOf(a: AddrExpr, proc: Proc, path: string, field = 'at'): number {
    if (a.base === null) return a.offset;
    const mp = proc.mappings.get(a.base)!;
    if (mp.addr === null) throw new ScenarioError(`${path}.${field}`, `mapping "${a.base}" has no address: its mmap (${mp.from}) failed with ${mp.error}`);
    return mp.addr + a.offset;
  }

  private errnoResult(ret: number, detail: Record<string, unknown>, what: string): { outcome: string; detail: Record<string, unknown>; text: string } {
    if (ret < 0) return { outcome: errnoName(ret), detail: { ...detail, errno: ret }, text: `${what} → ${ret} (${errnoName(ret)})` };
    return { outcome: 'ok', detail, text: `${what}: ok` };
  }

  /** Files the mm's VMAs map (the shmem files of MAP_SHARED|MAP_ANONYMOUS are made inside do_mmap). */
  private noteFiles(mm: MmStruct): void {
    for (const v of mm.vmaList) if (v.vmFile) this.run.mappedFiles.add(v.vmFile);
  }

  /** The page (struct page's physical address) mapped at addr, or -1: none, special, or not RAM. */
  private normalPage(mm: MmStruct, addr: number): number {
    const pa = userPa(mm, addr);
    if (pa < 0) return -1;
    const page = Math.floor(pa / this.ps) * this.ps;
    if (pfnToPage(this.m, page / this.ps) < 0) return -1;
    const r = lookupEntry(mm, addr);
    const pt = this.m.pgtable;
    if (r.level === 'pte' && this.m.bits.pteSpecial(pt.lo(r.ptr), pt.hi(r.ptr))) return -1;
    return page;
  }

  /**
   * A user load or store of buf at addr: each page is faulted in with do_user_addr_fault for the
   * access (as the CPU's fault handler would be entered on a missing or insufficient entry), then
   * the bytes move through the translation the tables now hold.
   */
  private userCopy(mm: MmStruct, addr: number, buf: Uint8Array, write: boolean): { done: number; signal: string | null; faultAddr: number; unbacked: boolean } {
    const m = this.m;
    const u8 = new Uint8Array(m.mem.buffer);
    let done = 0;
    let unbacked = false;
    while (done < buf.length) {
      const a = addr + done;
      const r = doUserAddrFault(mm, a, write ? 'write' : 'read');
      if (r.signal) return { done, signal: r.signal, faultAddr: a, unbacked };
      const pa = userPa(mm, a);
      if (pa < 0) return { done, signal: 'SIGBUS', faultAddr: a, unbacked };
      const n = Math.min(buf.length - done, this.ps - (a % this.ps));
      if (!m.mem.contains(pa, n)) {
        // Device memory (a remap_pfn outside RAM): mmulab emulates no device behind it. Stores are
        // dropped; loads read all-ones, as an unclaimed bus read does.
        unbacked = true;
        if (!write) buf.fill(0xff, done, done + n);
      } else if (write) u8.set(buf.subarray(done, done + n), m.mem.offset(pa, n));
      else buf.set(u8.subarray(m.mem.offset(pa, n), m.mem.offset(pa, n) + n), done);
      done += n;
    }
    return { done, signal: null, faultAddr: 0, unbacked };
  }
}

function faultDetail(mm: MmStruct, addr: number, r: UserFaultResult): Record<string, unknown> {
  const d: Record<string, unknown> = { addr: hex(addr), fault: faultBitNames(r.fault) };
  if (r.signal) d.signal = r.signal;
  if (r.code) d.code = r.code;
  // What maps the address now: the level of the leaf and where it points.
  const pa = userPa(mm, addr);
  if (pa >= 0) {
    d.level = lookupEntry(mm, addr).level;
    d.pa = hex(pa);
  }
  return d;
}

function protText(names: readonly string[]): string {
  return (names.includes('read') ? 'r' : '-') + (names.includes('write') ? 'w' : '-') + (names.includes('exec') ? 'x' : '-');
}

function opText(op: OpSpec): string {
  return op.op;
}

function shortHex(b: Uint8Array): string {
  return b.length > 32 ? `${hexBytes(b.subarray(0, 32))} …` : hexBytes(b);
}

/** The protection remap_pfn uses: the VMA's own, or pgprot_noncached / pgprot_writecombine / pgprot_device of it. */
function remapProt(m: Machine, vma: VmAreaStruct, cache: 'uncached' | 'wc' | 'device' | null): bigint {
  if (cache === null) return vma.vmPageProt;
  const f = vma.vmFlags;
  const r = (f & VM_READ) !== 0;
  const w = (f & VM_WRITE) !== 0;
  return m.bits.pgprot({ read: r || w, write: w && (f & VM_SHARED) !== 0, exec: (f & VM_EXEC) !== 0, user: true, memType: cache });
}

/**
 * The physical address a user address translates to through the tables as they are, or -1 when
 * nothing present maps it (pte, or a pmd / pud leaf: THP, hugetlb).
 */
export function userPa(mm: MmStruct, addr: number): number {
  const m = mm.machine;
  const pt = m.pgtable;
  const r = lookupEntry(mm, addr);
  if (r.level === 'none') return -1;
  const lo = pt.lo(r.ptr);
  const hi = pt.hi(r.ptr);
  if (r.level === 'pte') {
    if (!pt.ptePresent(lo, hi)) return -1;
    return m.bits.leafPfn('pte', lo, hi) * pt.PAGE_SIZE + (addr % pt.PAGE_SIZE);
  }
  const present = r.level === 'pmd' ? pt.pmdPresent(lo, hi) : pt.pudPresent(lo, hi);
  if (!present) return -1;
  const size = r.level === 'pmd' ? pt.PMD_SIZE : pt.PUD_SIZE;
  return m.bits.leafPfn(r.level, lo, hi) * pt.PAGE_SIZE + (addr % size);
}

/**
 * madvise(MADV_HUGEPAGE / MADV_NOHUGEPAGE) (mm/madvise.c → hugepage_madvise): set or clear
 * VM_HUGEPAGE on every VMA in the range, splitting VMAs at its ends. Like madvise, the mapped parts
 * are changed and -ENOMEM reports a hole; -EINVAL for an unaligned start or a hugetlb VMA cut
 * inside a huge page. mmulab does not merge the VMAs back afterwards (Linux's vma_modify may).
 */
function madviseHugepage(mm: MmStruct, start: number, len: number, on: boolean): number {
  const ps = mm.machine.geo.PAGE_SIZE;
  if (start % ps !== 0) return -errno.EINVAL;
  const end = start + Math.ceil(len / ps) * ps;
  mmapWriteLock(mm);
  try {
    const hit = mm.vmaList.filter((v) => v.vmEnd > start && v.vmStart < end);
    for (const v of hit) {
      if (v.hugepageSize && ((v.vmStart < start && start % v.hugepageSize) || (v.vmEnd > end && end % v.hugepageSize))) return -errno.EINVAL;
    }
    let covered = start;
    let hole = false;
    for (let v of hit) {
      if (v.vmStart > covered) hole = true;
      if (v.vmStart < start) v = splitVma(mm, v, start);
      if (v.vmEnd > end) splitVma(mm, v, end);
      vmaStartWrite(v);
      v.vmFlags = on ? ((v.vmFlags | VM_HUGEPAGE) & ~VM_NOHUGEPAGE) >>> 0 : ((v.vmFlags | VM_NOHUGEPAGE) & ~VM_HUGEPAGE) >>> 0;
      covered = v.vmEnd;
    }
    return hole || covered < end ? -errno.ENOMEM : 0;
  } finally {
    mmapWriteUnlock(mm);
  }
}

// ---- totals and the teardown check -------------------------------------------------------------------------

export interface ProcessTotals {
  readonly name: string;
  readonly exited: boolean;
  readonly vmas: number;
  /** mm->rss_stat in pages, and hugetlb pages (mm->hugetlb_usage, in PAGE_SIZE units). */
  readonly rss: { readonly anon: number; readonly file: number; readonly shmem: number; readonly swap: number; readonly hugetlb: number };
  /** Page-table pages reachable from the root, by physical level (the root included). */
  readonly pageTables: Readonly<Partial<Record<LevelName, number>>>;
  readonly pageTablesTotal: number;
  /** Tables deposited for huge pmds (pgtable_trans_huge_deposit). */
  readonly deposited: number;
}

/**
 * Count the page tables of an address space: a descent from its root over every entry that points
 * to a table. A folded level's entries are tested with the lowest level sharing them (as Linux's
 * p?d_none of the folded level is the real test; DESIGN.md, "Fidelity").
 */
export function countPageTables(mm: MmStruct): Partial<Record<LevelName, number>> {
  const m = mm.machine;
  const g = m.geo;
  const pt = m.pgtable;
  const out: Partial<Record<LevelName, number>> = {};
  const levels = g.physicalLevels;
  const isTable = (lowest: LevelName, lo: number, hi: number): boolean => {
    switch (lowest) {
      case 'pgd':
        return !pt.pgdNone(lo, hi) && !pt.pgdBad(lo, hi);
      case 'p4d':
        return !pt.p4dNone(lo, hi) && !pt.p4dBad(lo, hi);
      case 'pud':
        return !pt.pudNone(lo, hi) && pt.pudPresent(lo, hi) && !pt.pudLeaf(lo, hi);
      case 'pmd':
        return !pt.pmdNone(lo, hi) && pt.pmdPresent(lo, hi) && !pt.pmdLeaf(lo, hi);
      default:
        return false;
    }
  };
  const visit = (table: number, depth: number): void => {
    const level = levels[depth]!;
    out[level] = (out[level] ?? 0) + 1;
    if (depth === levels.length - 1) return;
    const aliases = g.aliases[level]!;
    const lowest = aliases[aliases.length - 1]!;
    const n = pt.tableBytes(level) / 8;
    for (let i = 0; i < n; i++) {
      const ptr = table + i * 8;
      if (isTable(lowest, pt.lo(ptr), pt.hi(ptr))) visit(pt.nextTable(ptr), depth + 1);
    }
  };
  if (!mm.exited) visit(mm.pgd, 0);
  return out;
}

export function processTotals(name: string, mm: MmStruct): ProcessTotals {
  const pageTables = countPageTables(mm);
  return {
    name,
    exited: mm.exited,
    vmas: mm.mapCount,
    rss: {
      anon: mm.rss[MM_ANONPAGES]!,
      file: mm.rss[MM_FILEPAGES]!,
      shmem: mm.rss[MM_SHMEMPAGES]!,
      swap: mm.rss[MM_SWAPENTS]!,
      hugetlb: mm.hugetlbUsage,
    },
    pageTables,
    pageTablesTotal: Object.values(pageTables).reduce((a, b) => a + b, 0),
    deposited: mm.depositedTables.size,
  };
}

export interface TeardownReport {
  /** Processes still alive at the end, which the teardown made exit. */
  readonly exited: string[];
  /** Page-cache folios dropped (truncate of every file) and swap-cache folios dropped. */
  readonly pageCacheDropped: number;
  readonly swapCacheDropped: number;
  readonly freeFramesAtStart: number;
  readonly freeFramesAfter: number;
  /** Frames neither free nor accounted for: freeFramesAtStart - freeFramesAfter. 0 when nothing leaked. */
  readonly leakedFrames: number;
  /** Swap slots still in use after every reference went (0 when nothing leaked). */
  readonly swapSlotsLeft: number;
  /** Problems met while tearing down (a folio still mapped, a refcount gone wrong). */
  readonly errors: string[];
}

/**
 * Shut the run's machine down and look for leaks: exit_mmap every live process, drop every file's
 * page cache (truncate) and the swap cache, then compare the free frames with those at the start.
 * Destructive: the machine is empty afterwards (export first if the state is wanted).
 */
export function teardownCheck(run: ScenarioRun): TeardownReport {
  const m = run.machine;
  const errors: string[] = [];
  const exited: string[] = [];
  for (const [name, mm] of run.processes) {
    if (mm.exited) continue;
    try {
      exitMmap(mm);
      exited.push(name);
    } catch (e) {
      errors.push(`exit_mmap of ${name}: ${(e as Error).message}`);
    }
  }
  const allFiles = new Set<AddressSpace>([...run.files.values(), ...run.mappedFiles]);
  let pageCacheDropped = 0;
  for (const f of allFiles) {
    for (const [index, folio] of [...f.pages]) {
      try {
        const mc = folioMapcount(m, folio);
        if (mc !== 0) {
          errors.push(`${f.name} page ${index} (folio ${hex(folio)}) is still mapped ${mc} times after every process exited`);
          continue;
        }
        f.pages.delete(index);
        folioPut(m, folio); // the page cache's reference
        pageCacheDropped++;
      } catch (e) {
        errors.push(`dropping ${f.name} page ${index}: ${(e as Error).message}`);
      }
    }
  }
  const dev = swapDevice(m);
  let swapCacheDropped = 0;
  for (const [offset, folio] of [...dev.cache]) {
    try {
      dev.cache.delete(offset);
      dev.release(offset);
      folioPut(m, folio); // the swap cache's reference
      swapCacheDropped++;
    } catch (e) {
      errors.push(`dropping swap cache slot ${offset}: ${(e as Error).message}`);
    }
  }
  const freeFramesAfter = m.frames.freeFrames;
  return {
    exited,
    pageCacheDropped,
    swapCacheDropped,
    freeFramesAtStart: run.freeFramesAtStart,
    freeFramesAfter,
    leakedFrames: run.freeFramesAtStart - freeFramesAfter,
    swapSlotsLeft: dev.usedSlots,
    errors,
  };
}
