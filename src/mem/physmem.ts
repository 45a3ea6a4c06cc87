/**
 * Emulated physical memory: one SharedArrayBuffer of 4 KiB frames.
 *
 * Physical address `physBase + i` is byte i of the buffer. The buffer is allocated zeroed and the
 * operating system commits its pages only when first touched, so a 16 GiB memory costs nothing
 * until used.
 *
 * Three views of the same bytes (DESIGN.md, data representation 1):
 *  - u32: the hot path; a descriptor at byte offset o is lo = u32[o / 4], hi = u32[o / 4 + 1];
 *  - u64: whole descriptors as bigint, for the descriptor API;
 *  - view: byte access with explicit endianness (ARM64 SCTLR_EL1.EE big-endian walks).
 * The host is little-endian (x86-64 and ARM64 Linux both are); memory holds the guest's bytes.
 */
import { PhysAddrError } from './errors';

export const FRAME_SHIFT = 12;
export const FRAME_SIZE = 4096;

export interface PhysMemOptions {
  /** Size in bytes, a multiple of 4 KiB. */
  readonly size: number;
  /** Physical address of byte 0 (0 on a PC, 0x40000000 on the Arm "virt" board). */
  readonly physBase?: number;
  /** Reuse an existing buffer (a worker's view of the same memory). */
  readonly buffer?: SharedArrayBuffer;
}

export class PhysMem {
  readonly buffer: SharedArrayBuffer;
  readonly u32: Uint32Array;
  readonly u64: BigUint64Array;
  readonly view: DataView;
  readonly physBase: number;
  readonly size: number;
  /** physBase + size: the first address past memory. */
  readonly physEnd: number;
  readonly frames: number;

  constructor(opts: PhysMemOptions) {
    const { size } = opts;
    const physBase = opts.physBase ?? 0;
    if (!Number.isSafeInteger(size) || size <= 0 || size % FRAME_SIZE !== 0) {
      throw new RangeError(`memory size ${size}: expected a positive multiple of ${FRAME_SIZE}`);
    }
    if (!Number.isSafeInteger(physBase) || physBase < 0 || physBase % FRAME_SIZE !== 0) {
      throw new RangeError(`phys_base 0x${physBase.toString(16)}: expected a 4 KiB-aligned address`);
    }
    if (physBase + size > 2 ** 52) {
      throw new RangeError('physical memory must end at or below 2^52 (the largest physical address)');
    }
    if (size > MAX_MEMORY) {
      // The whole memory is viewed as one Uint32Array, and Node 20 (V8) caps a typed array at 2^32
      // elements: a larger buffer would allocate, and then fail with V8's "Invalid typed array length".
      throw new RangeError(`memory size ${size} bytes: at most ${MAX_MEMORY} (16 GiB, the 2^32-element limit of the Uint32Array that views it)`);
    }
    this.buffer = opts.buffer ?? new SharedArrayBuffer(size);
    if (this.buffer.byteLength !== size) {
      throw new RangeError(`buffer of ${this.buffer.byteLength} bytes given for a memory of ${size}`);
    }
    this.u32 = new Uint32Array(this.buffer);
    this.u64 = new BigUint64Array(this.buffer);
    this.view = new DataView(this.buffer);
    this.physBase = physBase;
    this.size = size;
    this.physEnd = physBase + size;
    this.frames = size / FRAME_SIZE;
  }

  /** True when [pa, pa + len) lies inside memory. */
  contains(pa: number, len = 1): boolean {
    return pa >= this.physBase && pa + len <= this.physEnd;
  }

  /** Byte offset of pa in the buffer; throws PhysAddrError outside memory. */
  offset(pa: number, len = 1): number {
    if (!(pa >= this.physBase && pa + len <= this.physEnd) || !Number.isInteger(pa)) {
      throw new PhysAddrError(pa, len, this.physBase, this.size);
    }
    return pa - this.physBase;
  }

  /** Index in u32 of the low half of the 8-byte-aligned descriptor at pa (bounds-checked). */
  entryIndex(pa: number): number {
    if (pa % 8 !== 0) throw new RangeError(`descriptor address 0x${pa.toString(16)} is not 8-byte aligned`);
    return this.offset(pa, 8) / 4;
  }

  read64(pa: number): bigint {
    return this.u64[this.entryIndex(pa) / 2]!;
  }

  write64(pa: number, value: bigint): void {
    this.u64[this.entryIndex(pa) / 2] = BigInt.asUintN(64, value);
  }

  /** Low 32 bits of the descriptor at pa. */
  readLo(pa: number): number {
    return this.u32[this.entryIndex(pa)]!;
  }

  /** High 32 bits of the descriptor at pa. */
  readHi(pa: number): number {
    return this.u32[this.entryIndex(pa) + 1]!;
  }

  /** Store both halves of a descriptor. */
  writeHalves(pa: number, lo: number, hi: number): void {
    const i = this.entryIndex(pa);
    this.u32[i] = lo;
    this.u32[i + 1] = hi;
  }

  read32(pa: number, littleEndian = true): number {
    return this.view.getUint32(this.offset(pa, 4), littleEndian);
  }

  write32(pa: number, value: number, littleEndian = true): void {
    this.view.setUint32(this.offset(pa, 4), value, littleEndian);
  }

  /** A 64-bit read with explicit endianness (big-endian table walks). */
  read64Endian(pa: number, littleEndian: boolean): bigint {
    return this.view.getBigUint64(this.offset(pa, 8), littleEndian);
  }

  write64Endian(pa: number, value: bigint, littleEndian: boolean): void {
    this.view.setBigUint64(this.offset(pa, 8), BigInt.asUintN(64, value), littleEndian);
  }

  readBytes(pa: number, len: number): Uint8Array {
    const o = this.offset(pa, len);
    return new Uint8Array(this.buffer, o, len).slice();
  }

  writeBytes(pa: number, bytes: Uint8Array): void {
    const o = this.offset(pa, bytes.length);
    new Uint8Array(this.buffer, o, bytes.length).set(bytes);
  }

  /** Zero `len` bytes from pa (a freshly allocated table or page). */
  zero(pa: number, len: number): void {
    const o = this.offset(pa, len);
    new Uint8Array(this.buffer, o, len).fill(0);
  }

  /** Frame number (physical address >> 12, not relative to physBase) of a physical address. */
  static pfnOf(pa: number): number {
    return Math.floor(pa / FRAME_SIZE);
  }
}
/** The largest memory a PhysMem can hold: 2^32 32-bit words, the longest typed array Node 20 makes. */
export const MAX_MEMORY = 2 ** 34;

