/**
 * Image folders (FORMATS.md): DIR/memory.bin is raw physical memory from phys_base; DIR/machine.json
 * holds the registers that select the translation regime. Loading builds a Machine whose init_mm
 * root is the kernel's table (x86-64: CR3's; ARM64: TTBR1's) and lists the translatable roots.
 *
 * Images are input: every field is validated and an error names it and says what was expected.
 * Saving writes to temporary files and renames them, so a failure leaves no half-written image.
 */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { geometry, GEOMETRY_NAMES, type Geometry } from '../arch/geometry';
import { FRAME_SIZE, PhysMem } from '../mem/physmem';
import { Machine } from './machine';
import { isElfFile, loadElfCoreMemory, readElfCore } from './elf-core';

export const IMAGE_FORMAT = 'mmulab-image/1';

/** A problem with an image: names the file and field. */
export class ImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageError';
  }
}

/** One translatable range and the table that maps it. */
export interface ImageRoot {
  readonly name: 'cr3' | 'ttbr0_el1' | 'ttbr1_el1';
  /** Physical address of the root table. */
  readonly table: number;
  /** [start, end) of the VA range this root translates; end may be 2^64. */
  readonly start: number;
  readonly end: number;
}

export interface LoadedImage {
  /** 'folder': memory.bin + machine.json; 'elf-core': an ELF core from QEMU's dump-guest-memory. */
  readonly source: 'folder' | 'elf-core';
  readonly machine: Machine;
  readonly roots: readonly ImageRoot[];
  readonly registers: Readonly<Record<string, bigint>>;
  readonly json: Readonly<Record<string, unknown>>;
}

const U64 = 1n << 64n;

function field(bits: bigint, msb: number, lsb: number): number {
  return Number((bits >> BigInt(lsb)) & ((1n << BigInt(msb - lsb + 1)) - 1n));
}

/**
 * A hex-string field. FORMATS.md: "all register values are hex strings", so a JSON number is refused
 * there (a decimal 4096 for "cr3" is more likely a mistake than a convenience); `allowNumber` lets
 * the fields FORMATS.md does not bind to hex (phys_base, which stays below 2^52) take a safe integer.
 */
function parseHexField(v: unknown, where: string, allowNumber = false): bigint {
  if (typeof v === 'number') {
    if (allowNumber && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
    throw new ImageError(
      `machine.json ${where}: expected a hex string "0x…", got ${JSON.stringify(v)} (a JSON number${allowNumber ? '' : '; register values are hex strings, FORMATS.md'})`,
    );
  }
  if (typeof v !== 'string' || !/^0x[0-9a-fA-F]+$/.test(v)) {
    throw new ImageError(`machine.json ${where}: expected a hex string "0x…", got ${JSON.stringify(v)}`);
  }
  const b = BigInt(v);
  if (b >= U64) throw new ImageError(`machine.json ${where}: ${v} does not fit in 64 bits`);
  return b;
}

function requireRegister(regs: Record<string, unknown>, name: string): bigint {
  if (!(name in regs)) throw new ImageError(`machine.json registers.${name}: missing (required for this architecture)`);
  return parseHexField(regs[name], `registers.${name}`);
}

/** x86-64: CR0.PG, CR4.PAE, EFER.LME must be on; CR4.LA57 picks 4 or 5 levels; CR3[51:12] is the root. */
function x86Regime(regs: Record<string, unknown>, maxPhyAddr: number) {
  const cr0 = requireRegister(regs, 'cr0');
  const cr3 = requireRegister(regs, 'cr3');
  const cr4 = requireRegister(regs, 'cr4');
  const efer = requireRegister(regs, 'efer');
  if (!field(cr0, 31, 31)) throw new ImageError('machine.json registers.cr0: PG (bit 31) is 0 — paging is disabled, nothing to translate');
  // SDM Vol.3A §2.5 (CR0.PG): setting PG while PE is clear raises #GP, so no CPU holds this state.
  if (!field(cr0, 0, 0)) throw new ImageError('machine.json registers.cr0: PG (bit 31) = 1 with PE (bit 0) = 0 is impossible (SDM Vol.3A §2.5: paging needs protected mode)');
  if (!field(cr4, 5, 5)) throw new ImageError('machine.json registers.cr4: PAE (bit 5) must be 1 for 4- or 5-level paging');
  if (!field(efer, 8, 8)) throw new ImageError('machine.json registers.efer: LME (bit 8) must be 1 for IA-32e paging');
  // PKRU is a 32-bit register (SDM Vol.3A §2.7: RDPKRU/WRPKRU move EAX).
  if ('pkru' in regs && parseHexField(regs.pkru, 'registers.pkru') > 0xffff_ffffn) {
    throw new ImageError(`machine.json registers.pkru: ${String(regs.pkru)} is wider than 32 bits (PKRU is a 32-bit register)`);
  }
  const la57 = field(cr4, 12, 12) === 1;
  const g = geometry(la57 ? 'x86_64-5level' : 'x86_64-4level');
  const table = Number(cr3 & ((1n << BigInt(maxPhyAddr)) - 1n) & ~0xfffn);
  const half = 2 ** (g.vaBits - 1);
  const roots: ImageRoot[] = [
    { name: 'cr3', table, start: 0, end: half },
    { name: 'cr3', table, start: 2 ** 64 - half, end: 2 ** 64 },
  ];
  return { g, roots, nxe: field(efer, 11, 11) === 1 };
}

/** ARM64 (VMSAv8-64 stage 1, EL1&0): TCR_EL1 picks granule and VA size per TTBR; EPDn disables a walk. */
function arm64Regime(regs: Record<string, unknown>, allowBigEndian: boolean) {
  const tcr = requireRegister(regs, 'tcr_el1');
  const sctlr = 'sctlr_el1' in regs ? parseHexField(regs.sctlr_el1, 'registers.sctlr_el1') : 1n;
  if (!field(sctlr, 0, 0)) throw new ImageError('machine.json registers.sctlr_el1: M (bit 0) is 0 — the stage 1 MMU is off');
  // The hardware walk (src/arch/arm64/mmu.ts) reads big-endian descriptors; the Linux-side walker
  // (walk, dump) reads them as little-endian, so only callers that translate through the Mmu ask.
  if (field(sctlr, 25, 25) && !allowBigEndian) {
    throw new ImageError(
      'machine.json registers.sctlr_el1: EE (bit 25) = 1 (big-endian table walks) is supported by translate and trace only, not by the Linux page-walk commands',
    );
  }
  const t0sz = field(tcr, 5, 0);
  const epd0 = field(tcr, 7, 7);
  const tg0 = field(tcr, 15, 14);
  const t1sz = field(tcr, 21, 16);
  const epd1 = field(tcr, 23, 23);
  const tg1 = field(tcr, 31, 30);
  // TG0 and TG1 encode granules differently (Arm ARM, TCR_EL1).
  const g0 = ({ 0: '4k', 1: '64k', 2: '16k' } as Record<number, string>)[tg0];
  const g1 = ({ 1: '16k', 2: '4k', 3: '64k' } as Record<number, string>)[tg1];
  if (!epd0 && !g0) throw new ImageError(`machine.json registers.tcr_el1: TG0 = ${tg0} is a reserved granule encoding`);
  if (!epd1 && !g1) throw new ImageError(`machine.json registers.tcr_el1: TG1 = ${tg1} is a reserved granule encoding`);
  if (!epd0 && !epd1 && (g0 !== g1 || t0sz !== t1sz)) {
    throw new ImageError(
      `machine.json registers.tcr_el1: TTBR0 (${g0}, T0SZ ${t0sz}) and TTBR1 (${g1}, T1SZ ${t1sz}) differ; mmulab models one granule and VA size per machine, as Linux does`,
    );
  }
  const granule = epd0 ? g1! : g0!;
  const vaBits = 64 - (epd0 ? t1sz : t0sz);
  const name = `arm64-${granule}-${vaBits}`;
  if (!(GEOMETRY_NAMES as string[]).includes(name)) {
    throw new ImageError(
      `machine.json registers.tcr_el1: ${vaBits}-bit VA (T${epd0 ? 1 : 0}SZ ${64 - vaBits}) with the ${granule} granule is not a configuration Linux builds (expected one of ${GEOMETRY_NAMES.filter((n) => n.startsWith(`arm64-${granule}-`)).join(', ')})`,
    );
  }
  const g: Geometry = geometry(name);
  const ds = field(tcr, 59, 59);
  if (g.pa52 === 'lpa2' && !ds) throw new ImageError('machine.json registers.tcr_el1: 52-bit VA with a 4K/16K granule needs DS (bit 59) = 1 (LPA2)');
  const roots: ImageRoot[] = [];
  const span = 2 ** vaBits;
  const baddr = (ttbr: bigint) => {
    // BADDR is bits 47:1 (table alignment zeroes the low ones); with 52-bit OAs bits 5:2 hold BADDR[51:48].
    let pa = ttbr & 0x0000_ffff_ffff_fffen;
    if (g.pa52 !== 'none') pa = (pa & ~0x3cn) | (BigInt(field(ttbr, 5, 2)) << 48n);
    return Number(pa);
  };
  if (!epd0) roots.push({ name: 'ttbr0_el1', table: baddr(requireRegister(regs, 'ttbr0_el1')), start: 0, end: span });
  if (!epd1) roots.push({ name: 'ttbr1_el1', table: baddr(requireRegister(regs, 'ttbr1_el1')), start: 2 ** 64 - span, end: 2 ** 64 });
  return { g, roots };
}

export interface LoadImageOptions {
  /**
   * Registers to add or override (machine.json names, e.g. from the command line): required for an
   * ARM64 ELF core, whose notes hold no system registers; x86 "efer" overrides the ELF default.
   */
  readonly registers?: Readonly<Record<string, bigint>>;
  /** Accept ARM64 SCTLR_EL1.EE = 1 (big-endian descriptors), for callers that translate through the Mmu. */
  readonly allowBigEndian?: boolean;
}

/**
 * Read an image into a new Machine: an image folder (memory.bin + machine.json), or an ELF core
 * file written by QEMU's dump-guest-memory (src/mm/elf-core.ts).
 */
export function loadImage(path: string, opts: LoadImageOptions = {}): LoadedImage {
  if (existsSync(path) && statSync(path).isFile()) {
    if (!isElfFile(path)) {
      throw new ImageError(`${path}: a file that is not an ELF core (no 7f 45 4c 46 magic); an image is a folder with machine.json and memory.bin, or an ELF core`);
    }
    return loadElfImage(path, opts);
  }
  const dir = path;
  const jsonPath = join(dir, 'machine.json');
  const memPath = join(dir, 'memory.bin');
  if (!existsSync(jsonPath)) throw new ImageError(`${jsonPath}: not found (an image folder holds machine.json and memory.bin)`);
  if (!existsSync(memPath)) throw new ImageError(`${memPath}: not found (an image folder holds machine.json and memory.bin)`);
  let text: string;
  try {
    if (!statSync(jsonPath).isFile()) throw new ImageError(`${jsonPath}: not a regular file (an image folder holds machine.json and memory.bin)`);
    text = readFileSync(jsonPath, 'utf8');
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw new ImageError(`${jsonPath}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ImageError(`${jsonPath}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ImageError(`${jsonPath}: expected a JSON object`);
  if (json.format !== undefined && json.format !== IMAGE_FORMAT) {
    throw new ImageError(`machine.json format: expected "${IMAGE_FORMAT}", got ${JSON.stringify(json.format)}`);
  }
  const arch = json.arch;
  if (arch !== 'x86_64' && arch !== 'arm64') throw new ImageError(`machine.json arch: expected "x86_64" or "arm64", got ${JSON.stringify(arch)}`);
  const physBase = json.phys_base === undefined ? 0 : Number(parseHexField(json.phys_base, 'phys_base', true));
  if (physBase % FRAME_SIZE !== 0) throw new ImageError(`machine.json phys_base: ${json.phys_base} is not 4 KiB aligned`);
  if (physBase >= PA_LIMIT) throw new ImageError(`machine.json phys_base: ${json.phys_base} is at or above 2^52, the largest physical address`);
  const regs = json.registers;
  if (typeof regs !== 'object' || regs === null || Array.isArray(regs)) throw new ImageError('machine.json registers: expected an object of hex strings');
  const cpu = (json.cpu ?? {}) as Record<string, unknown>;
  if (typeof cpu !== 'object' || cpu === null || Array.isArray(cpu)) throw new ImageError('machine.json cpu: expected an object');
  const allRegs = { ...(regs as Record<string, unknown>), ...hexRegisters(opts.registers ?? {}) };
  return build('folder', arch, allRegs, cpu, json, opts, () => readMemoryBin(memPath, physBase));
}

/** The largest physical address + 1 of either architecture (x86-64 MAXPHYADDR ≤ 52, Arm 52-bit OAs). */
const PA_LIMIT = 2 ** 52;

/**
 * memory.bin into a new PhysMem: a regular file of whole frames that ends at or below 2^52. Every
 * failure (not a file, a size that is not whole frames, a buffer the host cannot allocate, a read
 * error) is an ImageError naming memory.bin, never a raw Node or V8 error.
 */
function readMemoryBin(memPath: string, physBase: number): PhysMem {
  let fd: number;
  try {
    if (!statSync(memPath).isFile()) throw new ImageError(`${memPath}: not a regular file (memory.bin is raw physical memory)`);
    fd = openSync(memPath, 'r');
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw new ImageError(`${memPath}: cannot be opened (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0 || size % FRAME_SIZE !== 0) {
      const down = Math.floor(size / FRAME_SIZE) * FRAME_SIZE;
      const up = down + FRAME_SIZE;
      throw new ImageError(
        `${memPath}: ${size} bytes; expected a non-zero multiple of 4096 (whole frames${size === 0 ? '' : `: ${down > 0 ? `${down} or ` : ''}${up} — a truncated dump?`})`,
      );
    }
    if (physBase + size > PA_LIMIT) {
      throw new ImageError(`${memPath}: ${size} bytes from phys_base 0x${physBase.toString(16)} end above 2^52, the largest physical address`);
    }
    let mem: PhysMem;
    try {
      mem = new PhysMem({ size, physBase });
    } catch (e) {
      throw new ImageError(`${memPath}: ${size} bytes cannot be allocated as emulated memory on this host (${(e as Error).message})`);
    }
    // One view per chunk: a Uint8Array over a whole buffer past 4 GiB exceeds Node 20's typed-array
    // length limit (2^32 elements), a 1 GiB window at any offset does not.
    for (let off = 0; off < size; ) {
      let n: number;
      try {
        const chunk = new Uint8Array(mem.buffer, off, Math.min(size - off, 1 << 30));
        n = readSync(fd, chunk, 0, chunk.length, off);
      } catch (e) {
        throw new ImageError(`${memPath}: read error at byte ${off} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      if (n <= 0) throw new ImageError(`${memPath}: short read at byte ${off} of ${size} (the file shrank while being read?)`);
      off += n;
    }
    return mem;
  } finally {
    closeSync(fd);
  }
}

function hexRegisters(regs: Readonly<Record<string, bigint>>): Record<string, string> {
  return Object.fromEntries(Object.entries(regs).map(([k, v]) => [k, '0x' + v.toString(16)]));
}

/** An ELF core: memory from its PT_LOAD segments, registers from its notes and `opts.registers`. */
function loadElfImage(path: string, opts: LoadImageOptions): LoadedImage {
  const core = readElfCore(path);
  const regs = { ...hexRegisters(core.registers), ...hexRegisters(opts.registers ?? {}) };
  if (core.arch === 'x86_64' && core.qemuCpuStates === 0 && !('cr3' in regs)) {
    throw new ImageError(`${path}: no "QEMU" note with the CPU state (QEMUCPUState); give cr0, cr3, cr4 and efer as registers`);
  }
  if (core.arch === 'arm64' && !('tcr_el1' in regs)) {
    throw new ImageError(
      `${path}: an ARM64 core holds no system registers; give tcr_el1, ttbr0_el1, ttbr1_el1, mair_el1 and sctlr_el1 as registers (e.g. --reg tcr_el1=0x…)`,
    );
  }
  const json = {
    format: IMAGE_FORMAT,
    arch: core.arch,
    phys_base: '0x' + core.physBase.toString(16),
    registers: regs,
    source: 'elf-core',
  };
  return build('elf-core', core.arch, regs, {}, json, opts, () => loadElfCoreMemory(core));
}

/** The common part: the regime the registers select, the Machine over the memory, the roots. */
function build(
  source: LoadedImage['source'],
  arch: 'x86_64' | 'arm64',
  regs: Record<string, unknown>,
  cpu: Record<string, unknown>,
  json: Record<string, unknown>,
  opts: LoadImageOptions,
  memory: () => PhysMem,
): LoadedImage {
  let maxPhyAddr = 52;
  if (cpu.maxphyaddr !== undefined) {
    if (typeof cpu.maxphyaddr !== 'number' || !Number.isInteger(cpu.maxphyaddr) || cpu.maxphyaddr < 36 || cpu.maxphyaddr > 52) {
      throw new ImageError(`machine.json cpu.maxphyaddr: expected an integer 36 … 52, got ${JSON.stringify(cpu.maxphyaddr)}`);
    }
    maxPhyAddr = cpu.maxphyaddr;
  }
  // The ID registers are read only by the CPU-side walk (imageCpuParams), but an image is checked
  // whole when it is loaded, so every command accepts or refuses the same file.
  for (const key of ['id_aa64mmfr0_el1', 'id_aa64mmfr1_el1', 'id_aa64mmfr2_el1']) {
    if (cpu[key] !== undefined) parseHexField(cpu[key], `cpu.${key}`);
  }
  const regime = arch === 'x86_64' ? x86Regime(regs, maxPhyAddr) : { ...arm64Regime(regs, opts.allowBigEndian === true), nxe: true };
  // Every register is a hex string, the ones this regime does not read too (FORMATS.md); checked
  // before memory is read, so a bad field costs no allocation.
  const registers: Record<string, bigint> = Object.fromEntries(Object.entries(regs).map(([k, v]) => [k, parseHexField(v, `registers.${k}`)]));
  const mem = memory();
  const machine = new Machine({ geometry: regime.g, mem, maxPhyAddr, nxe: regime.nxe, adoptMemory: true });
  for (const r of regime.roots) {
    if (!machine.mem.contains(r.table, machine.pgtable.tableBytes('pgd'))) {
      throw new ImageError(
        `machine.json registers.${r.name}: root table at 0x${r.table.toString(16)} is outside memory [0x${mem.physBase.toString(16)}, 0x${machine.mem.physEnd.toString(16)}) ` +
          `(${source === 'folder' ? 'memory.bin' : 'the core'} holds ${mem.size} bytes from 0x${mem.physBase.toString(16)})`,
      );
    }
  }
  const kernelRoot = regime.roots[regime.roots.length - 1]!;
  machine.initMm.pgd = kernelRoot.table;
  return { source, machine, roots: regime.roots, registers, json };
}

/** The registers of a loaded image that the CPU-side MMU of its architecture takes. */
export const MMU_REGISTER_NAMES: Readonly<Record<'x86_64' | 'arm64', readonly string[]>> = {
  x86_64: ['cr0', 'cr3', 'cr4', 'efer', 'pkru', 'rflags'],
  arm64: ['ttbr0_el1', 'ttbr1_el1', 'tcr_el1', 'mair_el1', 'sctlr_el1', 'pstate_pan'],
};

/** What createCpu needs from an image: its architecture, memory, MMU registers and "cpu" options. */
export function imageCpuParams(img: LoadedImage): {
  arch: 'x86_64' | 'arm64';
  registers: Record<string, bigint>;
  options: { maxPhyAddr?: number; idAa64mmfr0?: bigint; idAa64mmfr1?: bigint; idAa64mmfr2?: bigint };
} {
  const arch = img.machine.geo.arch;
  const registers: Record<string, bigint> = {};
  for (const n of MMU_REGISTER_NAMES[arch]) if (img.registers[n] !== undefined) registers[n] = img.registers[n]!;
  const cpu = (img.json.cpu ?? {}) as Record<string, unknown>;
  const options: { maxPhyAddr?: number; idAa64mmfr0?: bigint; idAa64mmfr1?: bigint; idAa64mmfr2?: bigint } = {};
  if (typeof cpu.maxphyaddr === 'number') options.maxPhyAddr = cpu.maxphyaddr;
  for (const [key, opt] of [
    ['id_aa64mmfr0_el1', 'idAa64mmfr0'],
    ['id_aa64mmfr1_el1', 'idAa64mmfr1'],
    ['id_aa64mmfr2_el1', 'idAa64mmfr2'],
  ] as const) {
    if (cpu[key] !== undefined) options[opt] = parseHexField(cpu[key], `cpu.${key}`);
  }
  return { arch, registers, options };
}

/**
 * Write an image folder so that no failure leaves a half-written image: both files go to temporaries
 * first; then the old machine.json (if any) is moved aside, memory.bin and machine.json are renamed
 * into place, and the old one is removed. At every instant the folder holds the old pair, the new
 * pair, or a memory.bin without machine.json (which loadImage refuses by name) — never a new
 * memory.bin beside an old machine.json. On failure the temporaries, and the folder itself when this
 * call created it, are removed, and an ImageError names the folder and the cause.
 */
export function saveImage(dir: string, machine: Machine, registers: Record<string, bigint>, extra: Record<string, unknown> = {}): void {
  const json = {
    format: IMAGE_FORMAT,
    arch: machine.geo.arch,
    phys_base: '0x' + machine.mem.physBase.toString(16),
    registers: Object.fromEntries(Object.entries(registers).map(([k, v]) => [k, '0x' + v.toString(16)])),
    ...extra,
  };
  const text = JSON.stringify(json, null, 2) + '\n'; // before the disk is touched
  const why = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  let created: string | undefined;
  try {
    created = mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new ImageError(`${dir}: cannot create the image folder (${why(e)})`);
  }
  const memPath = join(dir, 'memory.bin');
  const jsonPath = join(dir, 'machine.json');
  const tmpMem = join(dir, `.memory.bin.${process.pid}.tmp`);
  const tmpJson = join(dir, `.machine.json.${process.pid}.tmp`);
  const oldJson = join(dir, `.machine.json.${process.pid}.old`);
  const mine: string[] = []; // temporaries this call created, removed on failure
  let step = 'writing memory.bin';
  try {
    const fd = openSync(tmpMem, 'w');
    mine.push(tmpMem);
    try {
      const size = machine.mem.size;
      // A window per chunk: one Uint8Array over a buffer past 4 GiB exceeds the typed-array limit.
      for (let off = 0; off < size; ) {
        const chunk = new Uint8Array(machine.mem.buffer, off, Math.min(size - off, 1 << 30));
        off += writeSync(fd, chunk, 0, chunk.length, off);
      }
    } finally {
      closeSync(fd);
    }
    step = 'writing machine.json';
    mine.push(tmpJson);
    writeFileSync(tmpJson, text);
    step = 'replacing the files';
    const hadJson = existsSync(jsonPath);
    if (hadJson) renameSync(jsonPath, oldJson);
    try {
      renameSync(tmpMem, memPath);
    } catch (e) {
      if (hadJson) renameSync(oldJson, jsonPath); // nothing replaced yet: the old image stands
      throw e;
    }
    mine.splice(mine.indexOf(tmpMem), 1);
    step = hadJson ? `installing machine.json (memory.bin is new; the previous machine.json is at ${oldJson})` : 'installing machine.json';
    renameSync(tmpJson, jsonPath);
    mine.length = 0;
  } catch (e) {
    for (const f of mine) {
      try {
        rmSync(f, { force: true }); // never recursive: a folder of that name is not ours
      } catch {
        /* left for the caller to see; the error below says what failed */
      }
    }
    if (created !== undefined) rmSync(created, { recursive: true, force: true });
    throw new ImageError(`${dir}: the image could not be written while ${step} (${why(e)})`);
  }
  try {
    rmSync(oldJson, { force: true }); // the new image is in place; a leftover here is harmless
  } catch {
    /* e.g. the previous "machine.json" was a folder: left as .machine.json.PID.old */
  }
}

/**
 * MAIR_EL1 as Linux 6.18 programs it (arch/arm64/include/asm/memory.h MT_* indices): Attr0
 * MT_NORMAL 0xff, Attr1 MT_NORMAL_TAGGED 0xff (0xf0 only with MTE), Attr2 MT_NORMAL_NC 0x44,
 * Attr3 MT_DEVICE_nGnRnE 0x00, Attr4 MT_DEVICE_nGnRE 0x04 — the AttrIndx values pgprot() uses.
 */
export const MAIR_EL1_LINUX = 0x04_00_44_ff_ffn;

/** The registers that make a Machine's regime, for saveImage: x86-64 CR0/CR3/CR4/EFER; ARM64 TCR/TTBRs/SCTLR. */
export function registersFor(machine: Machine, userPgd: number, kernelPgd: number): Record<string, bigint> {
  const g = machine.geo;
  if (g.arch === 'x86_64') {
    const cr4 = 0x20n | 0x80n | 0x200n | 0x400n | (g.pgtableLevels === 5 ? 1n << 12n : 0n); // PAE PGE OSFXSR OSXMMEXCPT [LA57]
    return { cr0: 0x8005_0033n, cr3: BigInt(userPgd), cr4, efer: 0xd01n };
  }
  const tsz = BigInt(64 - g.vaBits);
  const tg0 = { 4096: 0n, 65536: 1n, 16384: 2n }[g.PAGE_SIZE];
  const tg1 = { 4096: 2n, 65536: 3n, 16384: 1n }[g.PAGE_SIZE];
  const ds = g.pa52 === 'lpa2' ? 1n << 59n : 0n;
  const ips = g.pa52 === 'none' ? 5n : 6n; // 48-bit or 52-bit physical addresses
  const tcr = tsz | (tg0 << 14n) | (tsz << 16n) | (tg1 << 30n) | (ips << 32n) | ds;
  const ttbr = (pa: number) => {
    const b = BigInt(pa);
    return g.pa52 === 'none' ? b : (b & 0x0000_ffff_ffff_ffc0n) | (((b >> 48n) & 0xfn) << 2n);
  };
  return { tcr_el1: tcr, ttbr0_el1: ttbr(userPgd), ttbr1_el1: ttbr(kernelPgd), mair_el1: MAIR_EL1_LINUX, sctlr_el1: 0x30d0_5185n };
}
