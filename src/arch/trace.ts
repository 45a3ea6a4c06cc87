/**
 * Access traces: a sequence of (VA, access kind, user/supervisor) replayed through a Cpu (TLB,
 * walks, faults) to produce the statistics an architecture simulator reports.
 *
 * Text form, one access per line:
 *     VA KIND [u]
 *   VA    hexadecimal, with or without 0x (always read as hex), any 64-bit value;
 *   KIND  r / read, w / write, x / exec;
 *   u     (or "user") a user-mode (CPL 3 / EL0) access; absent: supervisor / EL1.
 *   `#` starts a comment; blank lines are skipped. Errors name the line number.
 *
 * Binary form (little-endian):
 *   bytes 0-7   magic "MMUTRC1\0" (4d 4d 55 54 52 43 31 00)
 *   then 9-byte records: u64 VA, u8 flags = kind | user << 2, kind 0 read, 1 write, 2 exec
 *   (3 and flag bits 7:3 are invalid). The size after the magic is a multiple of 9.
 *
 * Records are held as struct-of-arrays (vaHi, vaLo, flags) so a replay allocates nothing per access.
 */
import { WalkResult, type AccessKind } from './mmu-types';
import type { Cpu, CpuStatistics } from './cpu';

export const TRACE_MAGIC = new Uint8Array([0x4d, 0x4d, 0x55, 0x54, 0x52, 0x43, 0x31, 0x00]); // "MMUTRC1\0"
export const TRACE_RECORD_BYTES = 9;
export const TRACE_READ = 0;
export const TRACE_WRITE = 1;
export const TRACE_EXEC = 2;
export const TRACE_USER = 4;

export interface TraceRecords {
  readonly count: number;
  readonly vaHi: Uint32Array;
  readonly vaLo: Uint32Array;
  /** kind (0 read, 1 write, 2 exec) | user << 2. */
  readonly flags: Uint8Array;
}

/** A malformed trace: the message names the line (text) or record and byte offset (binary). */
export class TraceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TraceError';
  }
}

const KINDS: Readonly<Record<string, number>> = { r: 0, read: 0, w: 1, write: 1, x: 2, exec: 2 };
const ACCESS: readonly AccessKind[] = ['read', 'write', 'exec'];

/** Parse the text form. `source` names the file in errors. */
export function parseTextTrace(text: string, source = 'trace'): TraceRecords {
  const lines = text.split('\n');
  const vaHi = new Uint32Array(lines.length);
  const vaLo = new Uint32Array(lines.length);
  const flags = new Uint8Array(lines.length);
  let n = 0;
  for (let i = 0; i < lines.length; i++) {
    const hash = lines[i]!.indexOf('#');
    const body = (hash >= 0 ? lines[i]!.slice(0, hash) : lines[i]!).trim();
    if (body === '') continue;
    const where = `${source} line ${i + 1}`;
    const tok = body.split(/\s+/);
    if (tok.length < 2 || tok.length > 3) throw new TraceError(`${where}: expected "VA KIND [u]", got '${body}'`);
    const h = tok[0]!.replace(/^0x/i, '').replace(/_/g, '');
    if (!/^[0-9a-f]{1,16}$/i.test(h)) throw new TraceError(`${where}: VA '${tok[0]}' is not a hexadecimal 64-bit value`);
    vaLo[n] = parseInt(h.slice(-8), 16) >>> 0;
    vaHi[n] = h.length > 8 ? parseInt(h.slice(0, h.length - 8), 16) >>> 0 : 0;
    const k = KINDS[tok[1]!.toLowerCase()];
    if (k === undefined) throw new TraceError(`${where}: access kind '${tok[1]}' is not r/w/x (read/write/exec)`);
    let f = k;
    if (tok.length === 3) {
      const u = tok[2]!.toLowerCase();
      if (u !== 'u' && u !== 'user') throw new TraceError(`${where}: '${tok[2]}' is not 'u' (a user-mode access)`);
      f |= TRACE_USER;
    }
    flags[n] = f;
    n++;
  }
  return { count: n, vaHi: vaHi.subarray(0, n), vaLo: vaLo.subarray(0, n), flags: flags.subarray(0, n) };
}

/** Whether bytes start with the binary trace magic. */
export function isBinaryTrace(bytes: Uint8Array): boolean {
  if (bytes.length < TRACE_MAGIC.length) return false;
  for (let i = 0; i < TRACE_MAGIC.length; i++) if (bytes[i] !== TRACE_MAGIC[i]) return false;
  return true;
}

/** Parse the binary form. */
export function parseBinaryTrace(bytes: Uint8Array, source = 'trace'): TraceRecords {
  if (!isBinaryTrace(bytes)) throw new TraceError(`${source}: does not start with the magic "MMUTRC1\\0"`);
  const body = bytes.length - TRACE_MAGIC.length;
  if (body % TRACE_RECORD_BYTES !== 0) {
    throw new TraceError(`${source}: ${body} bytes after the magic is not a whole number of ${TRACE_RECORD_BYTES}-byte records (${body % TRACE_RECORD_BYTES} bytes left over at the end)`);
  }
  const count = body / TRACE_RECORD_BYTES;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const vaHi = new Uint32Array(count);
  const vaLo = new Uint32Array(count);
  const flags = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const off = TRACE_MAGIC.length + i * TRACE_RECORD_BYTES;
    vaLo[i] = view.getUint32(off, true);
    vaHi[i] = view.getUint32(off + 4, true);
    const f = bytes[off + 8]!;
    if ((f & 3) === 3 || f > 7) {
      throw new TraceError(`${source} record ${i} (byte ${off + 8}): flags 0x${f.toString(16)} — expected kind 0-2 in bits 1:0, user in bit 2, bits 7:3 zero`);
    }
    flags[i] = f;
  }
  return { count, vaHi, vaLo, flags };
}

/** Either form, told apart by the magic. */
export function parseTrace(bytes: Uint8Array, source = 'trace'): TraceRecords {
  if (isBinaryTrace(bytes)) return parseBinaryTrace(bytes, source);
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  if (text.includes('\0')) throw new TraceError(`${source}: neither a text trace (it holds NUL bytes) nor a binary one (no "MMUTRC1\\0" magic)`);
  return parseTextTrace(text, source);
}

/** The binary form of records. */
export function encodeBinaryTrace(r: TraceRecords): Uint8Array {
  const out = new Uint8Array(TRACE_MAGIC.length + r.count * TRACE_RECORD_BYTES);
  out.set(TRACE_MAGIC);
  const view = new DataView(out.buffer);
  for (let i = 0; i < r.count; i++) {
    const off = TRACE_MAGIC.length + i * TRACE_RECORD_BYTES;
    view.setUint32(off, r.vaLo[i]!, true);
    view.setUint32(off + 4, r.vaHi[i]!, true);
    out[off + 8] = r.flags[i]!;
  }
  return out;
}

/** Records from (va, kind, user) triples: for tests and tools. */
export function traceOf(items: readonly (readonly [bigint, AccessKind, boolean?])[]): TraceRecords {
  const n = items.length;
  const vaHi = new Uint32Array(n);
  const vaLo = new Uint32Array(n);
  const flags = new Uint8Array(n);
  items.forEach(([va, kind, user], i) => {
    const v = BigInt.asUintN(64, va);
    vaHi[i] = Number(v >> 32n);
    vaLo[i] = Number(v & 0xffff_ffffn);
    flags[i] = ACCESS.indexOf(kind) | (user ? TRACE_USER : 0);
  });
  return { count: n, vaHi, vaLo, flags };
}

export interface ReplayStatistics extends CpuStatistics {
  readonly records: number;
  /**
   * Walks that read a descriptor outside emulated memory: the ARM64 faults of kind
   * 'external_abort' (also counted in faultsByKind). x86-64 reports such a walk as a 'reserved'
   * fault (an all-ones read, src/arch/x86_64/mmu.ts), so it is 0 there.
   */
  readonly externalAborts: number;
  readonly seconds: number;
}

/**
 * Replay records through the CPU. Faults are counted, not thrown. onProgress(done, total) is
 * called every `every` records and at the end.
 */
export function replayTrace(
  cpu: Cpu,
  records: TraceRecords,
  onProgress?: (done: number, total: number) => void,
  every = 1 << 16,
): ReplayStatistics {
  const out = new WalkResult();
  const { count, vaHi, vaLo, flags } = records;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const f = flags[i]!;
    cpu.access(vaHi[i]!, vaLo[i]!, ACCESS[f & 3]!, (f & TRACE_USER) !== 0, out);
    if (onProgress !== undefined && (i + 1) % every === 0) onProgress(i + 1, count);
  }
  const seconds = (performance.now() - t0) / 1000;
  onProgress?.(count, count);
  const stats = cpu.statistics();
  return { ...stats, records: count, externalAborts: stats.faultsByKind.external_abort ?? 0, seconds };
}
