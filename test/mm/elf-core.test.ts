import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ImageError, loadImage, readElfCore } from '../../src/index';
import { run } from '../cli/run';
import { tempDir } from './image-fixtures';
import { HandTables } from '../walk/ptdump-fixtures';

// ---- an ELF64 core written by hand from the gABI layout (not with the code under test) ----------
// Elf64_Ehdr: e_ident[16], e_type@16, e_machine@18, e_version@20, e_entry@24, e_phoff@32, e_shoff@40,
// e_flags@48, e_ehsize@52, e_phentsize@54, e_phnum@56, … (64 bytes). Elf64_Phdr (56 bytes): p_type@0,
// p_flags@4, p_offset@8, p_vaddr@16, p_paddr@24, p_filesz@32, p_memsz@40, p_align@48.
interface Load {
  paddr: number;
  data: Uint8Array;
  memsz?: number;
}
function note(name: string, type: number, desc: Uint8Array): Uint8Array {
  const nameLen = name.length + 1;
  const b = new Uint8Array(12 + Math.ceil(nameLen / 4) * 4 + Math.ceil(desc.length / 4) * 4);
  const v = new DataView(b.buffer);
  v.setUint32(0, nameLen, true);
  v.setUint32(4, desc.length, true);
  v.setUint32(8, type, true);
  for (let i = 0; i < name.length; i++) b[12 + i] = name.charCodeAt(i);
  b.set(desc, 12 + Math.ceil(nameLen / 4) * 4);
  return b;
}
function elfCore(machine: number, loads: Load[], notes: Uint8Array[], edit?: (v: DataView) => void): Uint8Array {
  const noteBytes = notes.reduce((n, x) => n + x.length, 0);
  const phnum = 1 + loads.length;
  const dataStart = 64 + 56 * phnum;
  const total = dataStart + noteBytes + loads.reduce((n, l) => n + l.data.length, 0);
  const b = new Uint8Array(total);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  v.setUint16(16, 4, true); // ET_CORE
  v.setUint16(18, machine, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(32, 64n, true); // e_phoff
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, phnum, true);
  let off = dataStart;
  v.setUint32(64, 4, true); // PT_NOTE
  v.setBigUint64(64 + 8, BigInt(off), true);
  v.setBigUint64(64 + 32, BigInt(noteBytes), true);
  for (const n of notes) {
    b.set(n, off);
    off += n.length;
  }
  loads.forEach((l, i) => {
    const o = 64 + 56 * (i + 1);
    v.setUint32(o, 1, true); // PT_LOAD
    v.setBigUint64(o + 8, BigInt(off), true);
    v.setBigUint64(o + 16, 0xffff_8880_0000_0000n + BigInt(l.paddr), true); // p_vaddr: not used
    v.setBigUint64(o + 24, BigInt(l.paddr), true);
    v.setBigUint64(o + 32, BigInt(l.data.length), true);
    v.setBigUint64(o + 40, BigInt(l.memsz ?? l.data.length), true);
    b.set(l.data, off);
    off += l.data.length;
  });
  edit?.(v);
  return b;
}
/** QEMUCPUState (target/i386/arch_dump.c), version 1, 440 bytes: rflags @144, cr[0] @392, cr[3] @416, cr[4] @424. */
function qemuCpuState(cr0: bigint, cr3: bigint, cr4: bigint, version = 1): Uint8Array {
  const b = new Uint8Array(440);
  const v = new DataView(b.buffer);
  v.setUint32(0, version, true);
  v.setUint32(4, 440, true);
  v.setBigUint64(144, 0x246n, true);
  v.setBigUint64(392, cr0, true);
  v.setBigUint64(416, cr3, true);
  v.setBigUint64(424, cr4, true);
  return b;
}
function save(bytes: Uint8Array, name = 'guest.core'): string {
  const p = join(tempDir(), name);
  writeFileSync(p, bytes);
  return p;
}

/**
 * Guest RAM in two pieces, as QEMU's pc machine dumps it: [0, 0x100000) and [0x400000, 0x500000).
 * x86-64 4-level tables in the first piece (SDM Vol.3A 4.5): PML4 0x1000 → PDPT 0x2000 → PD 0x3000
 * → PT 0x4000 (PD[2]); PT[0]: VA 0x400000 → PA 0x401000, P RW US A D (0x67). The second piece
 * holds the bytes "QEMU" at PA 0x401000.
 */
function x86Ram(): Load[] {
  const low = new Uint8Array(0x10_0000);
  const v = new DataView(low.buffer);
  v.setBigUint64(0x1000, 0x2027n, true);
  v.setBigUint64(0x2000, 0x3027n, true);
  v.setBigUint64(0x3010, 0x4027n, true);
  v.setBigUint64(0x4000, 0x40_1067n, true);
  const high = new Uint8Array(0x10_0000);
  high.set([0x51, 0x45, 0x4d, 0x55], 0x1000);
  return [
    { paddr: 0, data: low },
    { paddr: 0x40_0000, data: high },
  ];
}
const prstatus = note('CORE', 1, new Uint8Array(336)); // NT_PRSTATUS: skipped

describe('QEMU pmemsave images (FORMATS.md: memory.bin from `pmemsave` with the registers is an image)', () => {
  it('a raw memory dump and a machine.json with only arch and registers translates', async () => {
    const dir = tempDir();
    const ram = new Uint8Array(0x10_0000);
    ram.set(x86Ram()[0]!.data);
    new DataView(ram.buffer).setBigUint64(0x4000, 0x8_1067n, true); // VA 0x400000 → 0x81000
    writeFileSync(join(dir, 'memory.bin'), ram); // pmemsave 0 0x100000 memory.bin
    writeFileSync(join(dir, 'machine.json'), JSON.stringify({ arch: 'x86_64', registers: { cr0: '0x80050033', cr3: '0x1000', cr4: '0x6f0', efer: '0xd01' } }));
    const img = loadImage(dir);
    expect(img.source).toBe('folder');
    expect(img.machine.mem.physBase).toBe(0);
    const r = await run('translate', dir, '0x400123', '--json');
    expect(JSON.parse(r.out)).toMatchObject({ va: '0x400123', pa: '0x81123', page_size: 4096, level: 1 });
  });
});

describe('ELF cores from QEMU dump-guest-memory', () => {
  it('x86-64: PT_LOAD segments land at p_paddr, CR0/CR3/CR4 come from the "QEMU" note (QEMUCPUState), EFER defaults to LME|LMA|NXE', () => {
    const path = save(elfCore(62, x86Ram(), [prstatus, note('QEMU', 0, qemuCpuState(0x8005_0033n, 0x1000n, 0x6f0n))]));
    const core = readElfCore(path);
    expect(core).toMatchObject({ arch: 'x86_64', physBase: 0, physEnd: 0x50_0000, qemuCpuStates: 1 });
    expect(core.segments.map((s) => [s.index, s.paddr, s.filesz])).toEqual([
      [1, 0, 0x10_0000],
      [2, 0x40_0000, 0x10_0000],
    ]);
    const img = loadImage(path);
    expect(img.source).toBe('elf-core');
    expect(img.registers).toMatchObject({ cr0: 0x8005_0033n, cr3: 0x1000n, cr4: 0x6f0n, efer: 0xd00n, rflags: 0x246n });
    expect(img.machine.geo.name).toBe('x86_64-4level');
    expect([...img.machine.mem.readBytes(0x40_1000, 4)]).toEqual([0x51, 0x45, 0x4d, 0x55]);
    expect(img.machine.mem.read64(0x20_0000)).toBe(0n); // the hole between the segments reads zero
  });

  it('x86-64: mmulab translate takes the core file as IMAGE', async () => {
    const path = save(elfCore(62, x86Ram(), [note('QEMU', 0, qemuCpuState(0x8005_0033n, 0x1000n, 0x6f0n))]));
    const r = await run('translate', path, '0x400abc', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ pa: '0x401abc', level: 1, page_size: 4096 });
  });

  it('p_memsz beyond p_filesz is zero-filled memory', () => {
    const [low] = x86Ram();
    const path = save(elfCore(62, [{ ...low!, memsz: 0x20_0000 }], [note('QEMU', 0, qemuCpuState(0x8005_0033n, 0x1000n, 0x6f0n))]));
    const img = loadImage(path);
    expect(img.machine.mem.physEnd).toBe(0x20_0000);
  });

  it('ARM64: the core has no system registers, so they are given (--reg); without them the error says which', async () => {
    // 4K/48 tables by hand at 0x40000000 (Arm ARM D8.3): L0 0x40001000 → L1 0x40002000 → L2 0x40003000;
    // L2[2] → L3 0x40004000; L3[0]: VA 0x400000 → 0x40123000, AP = 01, AF, SH 11, nG (0x40123f43).
    const ram = new Uint8Array(0x20_0000);
    const v = new DataView(ram.buffer);
    v.setBigUint64(0x1000, 0x4000_2003n, true);
    v.setBigUint64(0x2000, 0x4000_3003n, true);
    v.setBigUint64(0x3010, 0x4000_4003n, true);
    v.setBigUint64(0x4000, 0x4012_3f43n, true);
    const path = save(elfCore(183, [{ paddr: 0x4000_0000, data: ram }], [prstatus]));
    expect(() => loadImage(path)).toThrow(/an ARM64 core holds no system registers; give tcr_el1, ttbr0_el1/);
    const regs = ['--reg', 'tcr_el1=0x580900010', '--reg', 'ttbr0_el1=0x40001000', '--reg', 'mair_el1=0xff', '--reg', 'sctlr_el1=0x1'];
    const r = await run('translate', path, '0x400010', '--json', ...regs);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ pa: '0x40123010', level: 3 });
    const e = await run('translate', path, '0x400010');
    expect(e.code).toBe(1);
    expect(e.err).toMatch(/no system registers/);
  });

  describe('hostile cores give an ImageError naming the field', () => {
    const good = () => elfCore(62, x86Ram(), [note('QEMU', 0, qemuCpuState(0x8005_0033n, 0x1000n, 0x6f0n))]);
    const cases: [string, () => Uint8Array, RegExp][] = [
      ['not ELF', () => new Uint8Array([0x7f, 0x45, 0x4c, 0x47, ...new Uint8Array(60)]), /not an ELF core \(no 7f 45 4c 46 magic\)/],
      ['ELFCLASS32', () => elfCore(62, x86Ram(), [], (v) => v.setUint8(4, 1)), /e_ident\[EI_CLASS\] = 1, expected 2 \(ELFCLASS64\)/],
      ['big-endian', () => elfCore(62, x86Ram(), [], (v) => v.setUint8(5, 2)), /e_ident\[EI_DATA\] = 2/],
      ['not a core', () => elfCore(62, x86Ram(), [], (v) => v.setUint16(16, 2, true)), /e_type = 2, expected 4 \(ET_CORE/],
      ['other machine', () => elfCore(40, x86Ram(), []), /e_machine = 40, expected 62 \(EM_X86_64\) or 183/],
      ['truncated header', () => good().subarray(0, 40), /40 bytes is shorter than an ELF64 header/],
      ['program headers past the end', () => elfCore(62, x86Ram(), [], (v) => v.setBigUint64(32, 0x7fff_0000n, true)), /program headers \(e_phoff 0x7fff0000, 3 × 56 bytes\) extend beyond the end/],
      [
        'segment past the end',
        () => elfCore(62, x86Ram(), [], (v) => v.setBigUint64(64 + 56 * 2 + 32, 0x20_0000n, true)),
        /program header 2 \(PT_LOAD\): p_offset 0x[0-9a-f]+ \+ p_filesz 0x200000 is beyond the end of the file/,
      ],
      ['p_filesz > p_memsz', () => elfCore(62, x86Ram(), [], (v) => v.setBigUint64(64 + 56 + 40, 0x1000n, true)), /program header 1 \(PT_LOAD\): p_filesz 0x100000 is larger than p_memsz 0x1000/],
      ['no QEMU note', () => elfCore(62, x86Ram(), [prstatus]), /no "QEMU" note with the CPU state/],
      ['QEMUCPUState version 2', () => elfCore(62, x86Ram(), [note('QEMU', 0, qemuCpuState(0n, 0n, 0n, 2))]), /QEMUCPUState version 2, expected 1/],
      ['no PT_LOAD', () => elfCore(62, [], []), /no PT_LOAD segment/],
    ];
    it.each(cases)('%s', (_name, bytes, message) => {
      const path = save(bytes());
      expect(() => loadImage(path)).toThrow(ImageError);
      expect(() => loadImage(path)).toThrow(message);
    });
  });
});

describe('ARM64 SCTLR_EL1.EE = 1: big-endian descriptors (Arm ARM D8.2, SCTLR_EL1.EE)', () => {
  it('translate reads big-endian tables; the Linux page-walk commands still refuse them', async () => {
    const t = new HandTables('arm64-4k-48');
    const L0 = t.table();
    const L1 = t.table();
    const L2 = t.table();
    const L3 = t.table();
    const be = (table: number, i: number, value: bigint) => t.m.mem.write64Endian(table + i * 8, value, false);
    be(L0, 0, BigInt(L1) | 3n);
    be(L1, 0, BigInt(L2) | 3n);
    be(L2, 2, BigInt(L3) | 3n);
    be(L3, 0, 0x4012_3f43n);
    const dir = t.save(L0, t.table());
    const p = join(dir, 'machine.json');
    const { readFileSync } = await import('node:fs');
    const j = JSON.parse(readFileSync(p, 'utf8'));
    j.registers.sctlr_el1 = '0x' + (BigInt(j.registers.sctlr_el1) | (1n << 25n)).toString(16);
    writeFileSync(p, JSON.stringify(j));
    expect(() => loadImage(dir)).toThrow(/EE \(bit 25\) = 1 .* supported by translate and trace only/);
    const r = await run('translate', dir, '0x400010', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ pa: '0x40123010', level: 3 });
  });
});
