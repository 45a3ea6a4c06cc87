/**
 * ELF cores written by QEMU's `dump-guest-memory FILE` (monitor) / `virsh dump --memory-only`:
 * ELF64 ET_CORE files whose PT_LOAD segments hold guest physical memory at p_paddr, and whose
 * PT_NOTE segment holds, per CPU, an NT_PRSTATUS note ("CORE") and — on x86 — a "QEMU" note
 * with the QEMUCPUState QEMU defines in target/i386/arch_dump.c:
 *
 *   u32 version (1), u32 size; u64 rax rbx rcx rdx rsi rdi rsp rbp r8 … r15 (16 × 8, from byte 8);
 *   u64 rip (136), rflags (144); 10 segments of 24 bytes (cs ds es fs gs ss ldt tr gdt idt, from
 *   152); u64 cr[5] (cr0 at 392, cr1, cr2, cr3 at 416, cr4 at 424); u64 kernel_gs_base (432, when
 *   size allows).
 *
 * QEMU writes no EFER there: mmulab assumes LME | LMA | NXE (0xd00), what a 64-bit Linux guest
 * runs with when CR0.PG = 1 and CR4.PAE = 1 (the only long-mode paging states); give "efer" among
 * the extra registers to override it. ARM64 cores from QEMU carry only general registers, so the
 * translation registers (TCR_EL1, TTBRn_EL1, MAIR_EL1, SCTLR_EL1) must be given by the caller.
 *
 * Every header field read from the file is validated; errors are ImageErrors naming the field.
 * Only little-endian ELF64 is read (the byte order of both guests here).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { FRAME_SIZE, PhysMem } from '../mem/physmem';
import { ImageError } from './image';

export const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];
const ET_CORE = 4;
const EM_X86_64 = 62;
const EM_AARCH64 = 183;
const PT_LOAD = 1;
const PT_NOTE = 4;
const PN_XNUM = 0xffff;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;

export interface ElfLoadSegment {
  readonly index: number;
  readonly offset: number;
  readonly paddr: number;
  readonly filesz: number;
  readonly memsz: number;
}

export interface ElfCore {
  readonly path: string;
  readonly arch: 'x86_64' | 'arm64';
  readonly segments: readonly ElfLoadSegment[];
  /** Lowest and one-past-highest physical address of the PT_LOAD segments, 4 KiB-rounded. */
  readonly physBase: number;
  readonly physEnd: number;
  /** Registers found in the notes (x86: from the first CPU's QEMUCPUState), machine.json names. */
  readonly registers: Readonly<Record<string, bigint>>;
  /** "QEMU" notes found (one per CPU on x86). */
  readonly qemuCpuStates: number;
}

/** Whether the file at `path` starts with the ELF magic. */
export function isElfFile(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && ELF_MAGIC.every((m, i) => b[i] === m);
  } finally {
    closeSync(fd);
  }
}

function readAt(fd: number, pos: number, len: number, what: string, path: string): Buffer {
  const b = Buffer.alloc(len);
  const n = readSync(fd, b, 0, len, pos);
  if (n !== len) throw new ImageError(`${path}: ${what} at byte ${pos} (+${len}) is beyond the end of the file`);
  return b;
}

function u64(b: Buffer, off: number, what: string, path: string): number {
  const v = b.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ImageError(`${path}: ${what} = 0x${v.toString(16)} is too large to be a file offset or address here`);
  return Number(v);
}

const hex = (n: number | bigint) => '0x' + n.toString(16);

/** Read and validate the headers and notes of an ELF core (not the memory). */
export function readElfCore(path: string): ElfCore {
  const fd = openSync(path, 'r');
  try {
    const fileSize = fstatSync(fd).size;
    if (fileSize < EHDR_SIZE) throw new ImageError(`${path}: ${fileSize} bytes is shorter than an ELF64 header (64 bytes)`);
    const eh = readAt(fd, 0, EHDR_SIZE, 'ELF header', path);
    if (!ELF_MAGIC.every((m, i) => eh[i] === m)) {
      throw new ImageError(`${path}: e_ident magic is ${[...eh.subarray(0, 4)].map((x) => x.toString(16).padStart(2, '0')).join(' ')}, expected 7f 45 4c 46 (an ELF file)`);
    }
    if (eh[4] !== 2) throw new ImageError(`${path}: e_ident[EI_CLASS] = ${eh[4]}, expected 2 (ELFCLASS64)`);
    if (eh[5] !== 1) throw new ImageError(`${path}: e_ident[EI_DATA] = ${eh[5]}, expected 1 (ELFDATA2LSB, little-endian)`);
    const type = eh.readUInt16LE(16);
    if (type !== ET_CORE) throw new ImageError(`${path}: e_type = ${type}, expected 4 (ET_CORE, a core file such as QEMU's dump-guest-memory writes)`);
    const machine = eh.readUInt16LE(18);
    if (machine !== EM_X86_64 && machine !== EM_AARCH64) {
      throw new ImageError(`${path}: e_machine = ${machine}, expected 62 (EM_X86_64) or 183 (EM_AARCH64)`);
    }
    const arch = machine === EM_X86_64 ? 'x86_64' : 'arm64';
    const phoff = u64(eh, 32, 'e_phoff', path);
    const shoff = u64(eh, 40, 'e_shoff', path);
    const phentsize = eh.readUInt16LE(54);
    let phnum = eh.readUInt16LE(56);
    if (phentsize !== PHDR_SIZE) throw new ImageError(`${path}: e_phentsize = ${phentsize}, expected ${PHDR_SIZE} (Elf64_Phdr)`);
    if (phnum === PN_XNUM) {
      // More than 65534 segments: the count is in sh_info of section header 0 (ELF gABI, PN_XNUM).
      if (shoff === 0) throw new ImageError(`${path}: e_phnum = PN_XNUM (0xffff) but e_shoff = 0: no section header 0 holds the real count`);
      phnum = readAt(fd, shoff, 64, 'section header 0', path).readUInt32LE(44);
    }
    if (phoff + phnum * PHDR_SIZE > fileSize) {
      throw new ImageError(`${path}: program headers (e_phoff ${hex(phoff)}, ${phnum} × ${PHDR_SIZE} bytes) extend beyond the end of the file (${fileSize} bytes)`);
    }
    const ph = readAt(fd, phoff, phnum * PHDR_SIZE, 'program headers', path);
    const segments: ElfLoadSegment[] = [];
    const notes: { offset: number; size: number }[] = [];
    for (let i = 0; i < phnum; i++) {
      const o = i * PHDR_SIZE;
      const ptype = ph.readUInt32LE(o);
      if (ptype !== PT_LOAD && ptype !== PT_NOTE) continue;
      const name = `program header ${i} (${ptype === PT_LOAD ? 'PT_LOAD' : 'PT_NOTE'})`;
      const offset = u64(ph, o + 8, `${name} p_offset`, path);
      const paddr = u64(ph, o + 24, `${name} p_paddr`, path);
      const filesz = u64(ph, o + 32, `${name} p_filesz`, path);
      const memsz = u64(ph, o + 40, `${name} p_memsz`, path);
      if (offset + filesz > fileSize) {
        throw new ImageError(`${path}: ${name}: p_offset ${hex(offset)} + p_filesz ${hex(filesz)} is beyond the end of the file (${fileSize} bytes)`);
      }
      if (ptype === PT_NOTE) {
        notes.push({ offset, size: filesz });
        continue;
      }
      if (filesz > memsz) throw new ImageError(`${path}: ${name}: p_filesz ${hex(filesz)} is larger than p_memsz ${hex(memsz)}`);
      if (paddr + memsz > 2 ** 52) throw new ImageError(`${path}: ${name}: p_paddr ${hex(paddr)} + p_memsz ${hex(memsz)} is above 2^52, the largest physical address`);
      if (memsz > 0) segments.push({ index: i, offset, paddr, filesz, memsz });
    }
    if (segments.length === 0) throw new ImageError(`${path}: no PT_LOAD segment: the core holds no memory`);
    const physBase = Math.floor(Math.min(...segments.map((s) => s.paddr)) / FRAME_SIZE) * FRAME_SIZE;
    const physEnd = Math.ceil(Math.max(...segments.map((s) => s.paddr + s.memsz)) / FRAME_SIZE) * FRAME_SIZE;

    let registers: Record<string, bigint> = {};
    let qemuCpuStates = 0;
    for (const n of notes) {
      const buf = readAt(fd, n.offset, n.size, 'PT_NOTE segment', path);
      for (let p = 0; p + 12 <= buf.length; ) {
        const namesz = buf.readUInt32LE(p);
        const descsz = buf.readUInt32LE(p + 4);
        const ntype = buf.readUInt32LE(p + 8);
        const nameAt = p + 12;
        const descAt = nameAt + Math.ceil(namesz / 4) * 4;
        const next = descAt + Math.ceil(descsz / 4) * 4;
        if (next > buf.length) throw new ImageError(`${path}: note at byte ${n.offset + p}: namesz ${namesz} / descsz ${descsz} run past the end of its PT_NOTE segment`);
        const name = buf.toString('latin1', nameAt, nameAt + Math.max(0, namesz - 1));
        if (name === 'QEMU' && ntype === 0 && arch === 'x86_64') {
          if (qemuCpuStates === 0) registers = qemuCpuState(buf.subarray(descAt, descAt + descsz), n.offset + descAt, path);
          qemuCpuStates++;
        }
        p = next;
      }
    }
    return { path, arch, segments, physBase, physEnd, registers, qemuCpuStates };
  } finally {
    closeSync(fd);
  }
}

/** The registers mmulab needs from a QEMUCPUState (target/i386/arch_dump.c layout, see the file header). */
function qemuCpuState(d: Buffer, at: number, path: string): Record<string, bigint> {
  if (d.length < 8) throw new ImageError(`${path}: QEMU note at byte ${at}: ${d.length} bytes, too short for QEMUCPUState`);
  const version = d.readUInt32LE(0);
  const size = d.readUInt32LE(4);
  if (version !== 1) throw new ImageError(`${path}: QEMU note at byte ${at}: QEMUCPUState version ${version}, expected 1`);
  if (size < 432 || d.length < 432) {
    throw new ImageError(`${path}: QEMU note at byte ${at}: QEMUCPUState size ${size} (descsz ${d.length}); expected at least 432 bytes (through cr[4])`);
  }
  return {
    rflags: d.readBigUInt64LE(144),
    cr0: d.readBigUInt64LE(392),
    cr3: d.readBigUInt64LE(416),
    cr4: d.readBigUInt64LE(424),
    efer: 0xd00n,
  };
}

/** Guest physical memory of a core: PT_LOAD segments placed at p_paddr, the rest zero. */
export function loadElfCoreMemory(core: ElfCore): PhysMem {
  const size = core.physEnd - core.physBase;
  let mem: PhysMem;
  try {
    mem = new PhysMem({ size, physBase: core.physBase });
  } catch (e) {
    throw new ImageError(`${core.path}: physical memory [${hex(core.physBase)}, ${hex(core.physEnd)}) cannot be allocated: ${(e as Error).message}`);
  }
  const fd = openSync(core.path, 'r');
  try {
    for (const s of core.segments) {
      for (let done = 0; done < s.filesz; ) {
        const len = Math.min(s.filesz - done, 1 << 30);
        // A window per chunk: a Uint8Array over a whole buffer past 4 GiB exceeds Node's typed-array limit.
        const window = new Uint8Array(mem.buffer, s.paddr - core.physBase + done, len);
        let n: number;
        try {
          n = readSync(fd, window, 0, len, s.offset + done);
        } catch (e) {
          throw new ImageError(`${core.path}: program header ${s.index} (PT_LOAD): read error at file byte ${s.offset + done} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
        }
        if (n <= 0) throw new ImageError(`${core.path}: program header ${s.index} (PT_LOAD): short read at file byte ${s.offset + done}`);
        done += n;
      }
    }
  } finally {
    closeSync(fd);
  }
  return mem;
}
