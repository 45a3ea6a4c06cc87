/**
 * Hostile image folders written byte by byte: machine.json as literal JSON and memory.bin as a
 * buffer whose descriptors are composed by hand from the manuals' bit positions (never with the
 * library's encoders or saveImage), so a test's expected fault follows from the literals alone.
 *
 * x86-64 (SDM Vol.3A Tables 4-14 … 4-20): P 0x1, R/W 0x2, U/S 0x4, A 0x20, D 0x40, PS 0x80.
 *   Registers: CR0 0x80000001 (PG bit 31, PE bit 0), CR4 0x20 (PAE bit 5), EFER 0xd00 (LME bit 8,
 *   LMA bit 10, NXE bit 11), CR3 the PML4's address.
 * ARM64 (Arm ARM D8.3): table descriptor 0b11 in bits 1:0, page (level 3) 0b11, AF bit 10 (0x400).
 *   TCR_EL1 for 4KB granule, 48-bit VA in both halves (Arm ARM, TCR_EL1): T0SZ = 16 (bits 5:0),
 *   TG0 = 0b00 (bits 15:14), T1SZ = 16 (bits 21:16), TG1 = 0b10 (bits 31:30), IPS = 0b101 48 bits
 *   (bits 34:32): 0x5_8010_0010. SCTLR_EL1 = 1 (M).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const X86_REGS = { cr0: '0x80000001', cr4: '0x20', efer: '0xd00' } as const;
export const ARM64_TCR_4K48 = '0x580100010';

const made: string[] = [];

/** A new temporary folder, removed by removeTempDirs (call it in afterAll). */
export function tempDir(prefix = 'mmulab-hostile-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

/**
 * A temporary folder in memory (/dev/shm) where there is one: the fuzz writes thousands of small
 * images, and on this machine's disk each write costs ~2 ms, in tmpfs a tenth of that.
 */
export function fastTempDir(prefix = 'mmulab-fuzz-'): string {
  if (!existsSync('/dev/shm')) return tempDir(prefix);
  const d = mkdtempSync(join('/dev/shm', prefix));
  made.push(d);
  return d;
}

export function removeTempDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** A memory image being written: 64-bit little-endian descriptors at physical addresses. */
export class RawMemory {
  readonly bytes: Uint8Array;
  private readonly v: DataView;
  constructor(
    readonly size: number,
    readonly physBase = 0,
  ) {
    this.bytes = new Uint8Array(size);
    this.v = new DataView(this.bytes.buffer);
  }
  set(pa: number, value: bigint): this {
    this.v.setBigUint64(pa - this.physBase, value, true);
    return this;
  }
  get(pa: number): bigint {
    return this.v.getBigUint64(pa - this.physBase, true);
  }
}

/** Write an image folder: machine.json exactly as given (an object is JSON.stringified, a string written as is). */
export function writeImage(json: unknown, memory: Uint8Array, dir = tempDir()): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'machine.json'), typeof json === 'string' ? json : JSON.stringify(json));
  writeFileSync(join(dir, 'memory.bin'), memory);
  return dir;
}

export function x86Json(cr3: number | string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format: 'mmulab-image/1',
    arch: 'x86_64',
    phys_base: '0x0',
    registers: { ...X86_REGS, cr3: typeof cr3 === 'number' ? '0x' + cr3.toString(16) : cr3 },
    ...extra,
  };
}

export function arm64Json(ttbr0: number, ttbr1: number, physBase = 0x4000_0000, tcr = ARM64_TCR_4K48): Record<string, unknown> {
  return {
    format: 'mmulab-image/1',
    arch: 'arm64',
    phys_base: '0x' + physBase.toString(16),
    registers: { ttbr0_el1: '0x' + ttbr0.toString(16), ttbr1_el1: '0x' + ttbr1.toString(16), tcr_el1: tcr, mair_el1: '0xff', sctlr_el1: '0x1' },
  };
}

/**
 * A small valid x86-64 4-level image, 64 KiB at physical 0 — PML4 0x1000 → PDPT 0x2000 → PD 0x3000
 * → PT 0x4000: VA 0x0 → PA 0x8000 and VA 0x1000 → PA 0x9000 (P RW US A D = 0x67), PD[1] a 2 MiB
 * leaf VA 0x200000 → PA 0x200000 (0xe7: P RW US A D PS); PML4[511] → PDPT 0x5000 with PDPT[511]
 * a 1 GiB leaf VA 0xffffffffc0000000 → PA 0x40000000 (0xe3: P RW A D PS, supervisor).
 */
export function x86Small(): RawMemory {
  const m = new RawMemory(0x10000);
  m.set(0x1000, 0x2067n).set(0x2000, 0x3067n).set(0x3000, 0x4067n).set(0x3008, 0x20_00e7n);
  m.set(0x4000, 0x8067n).set(0x4008, 0x9067n);
  m.set(0x1000 + 511 * 8, 0x5067n).set(0x5000 + 511 * 8, 0x4000_00e3n);
  return m;
}

/**
 * A small valid ARM64 4K/48 image, 64 KiB at 0x40000000 — TTBR0 L0 0x40001000 → L1 0x40002000 →
 * L2 0x40003000 → L3 0x40004000: VA 0x0 → PA 0x40008000 (page 0b11, AF, AttrIndx 0 = 0x403 | PA);
 * L2[1] a 2 MiB block VA 0x200000 → PA 0x40200000 (block 0b01 | AF = 0x401 | PA). TTBR1 L0
 * 0x40005000, empty.
 */
export function arm64Small(): RawMemory {
  const b = 0x4000_0000;
  const m = new RawMemory(0x10000, b);
  m.set(b + 0x1000, BigInt(b + 0x2003)).set(b + 0x2000, BigInt(b + 0x3003)).set(b + 0x3000, BigInt(b + 0x4003));
  m.set(b + 0x3008, BigInt(b + 0x20_0401)).set(b + 0x4000, BigInt(b + 0x8403));
  return m;
}
