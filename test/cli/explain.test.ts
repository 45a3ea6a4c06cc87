import { describe, expect, it } from 'vitest';
import { Machine, registersFor, saveImage, type GeometryName } from '../../src/index';
import { tempDir } from '../mm/image-fixtures';
import { run } from './run';

/**
 * Small images written descriptor by descriptor at fixed physical addresses, so every expected
 * table address, entry address (table + index × 8) and descriptor below is a literal worked out by
 * hand from the VA bits and the manuals' formats, not by the code under test.
 *
 * The VA 0x7fabcdef1234 in binary, bits 47…0:
 *   0111 1111 1 | 010 1011 11 | 00 1101 111 | 0 1111 0001 | 0010 0011 0100
 * so its 9-bit indices (SDM Vol.3A §4.5.4 Figure 4-8; Arm ARM D8.2 4K granule, 48-bit VA) are
 * 47:39 = 255, 38:30 = 175, 29:21 = 111, 20:12 = 241, offset 0x234.
 */
const VA = '0x7fabcdef1234';

function image(geometry: GeometryName, memSize: number, entries: [number, bigint][], root: number, root1 = root): string {
  const m = new Machine({ geometry, memSize });
  for (const [pa, value] of entries) m.mem.write64(pa, value);
  const dir = tempDir();
  saveImage(dir, m, registersFor(m, root, root1));
  return dir;
}

/**
 * x86-64 4-level (registersFor: CR0.WP = 1, EFER.NXE = 1): PML4 0x10000 → PDPT 0x11000 → PD 0x12000
 * → PT 0x13000. Table entries are 0x…067 = P | R/W | U/S | A | D (Table 4-15, 4-17, 4-19).
 *   PT[241]  = 0x8000000000042067: a 4-KByte page at 0x42000, XD (Table 4-20).
 *   PD[113]  = 0x00000000002000e5: a 2-MByte page at 0x200000, P | U/S | A | D | PS, R/W = 0 (Table 4-18).
 *   PD[112] is empty: VA 0x7fabce000000 (PD index 112) is not present at level 2.
 */
function x86Image(): string {
  return image(
    'x86_64-4level',
    1 << 20,
    [
      [0x107f8, 0x11067n], // PML4[255]
      [0x11578, 0x12067n], // PDPT[175]
      [0x12378, 0x13067n], // PD[111]
      [0x13788, 0x8000_0000_0004_2067n], // PT[241]
      [0x12388, 0x2000e5n], // PD[113]
    ],
    0x10000,
  );
}

describe('mmulab explain: x86-64 4-level (SDM Vol.3A §4.5 Figure 4-8)', () => {
  it('each level: table, VA-bit index, entry = table + index × 8, raw descriptor; the 4K page and the PA', async () => {
    const r = await run('explain', x86Image(), VA, '--user', '--json');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o.va).toBe('0x7fabcdef1234');
    expect(o.steps.map((s: { level: number }) => s.level)).toEqual([4, 3, 2, 1]);
    expect(o.steps.map((s: { table: string }) => s.table)).toEqual(['0x10000', '0x11000', '0x12000', '0x13000']);
    expect(o.steps.map((s: { index: number }) => s.index)).toEqual([255, 175, 111, 241]);
    expect(o.steps.map((s: { va_bits: string }) => s.va_bits)).toEqual(['47:39', '38:30', '29:21', '20:12']);
    expect(o.steps.map((s: { entry_addr: string }) => s.entry_addr)).toEqual(['0x107f8', '0x11578', '0x12378', '0x13788']);
    expect(o.steps.map((s: { raw: string }) => s.raw)).toEqual([
      '0x0000000000011067',
      '0x0000000000012067',
      '0x0000000000013067',
      '0x8000000000042067',
    ]);
    expect(o.steps.map((s: { action: string }) => s.action)).toEqual(['descend', 'descend', 'descend', 'leaf']);
    // Table 4-20 field names, decoded: P = 1, R/W = 1, U/S = 1, XD = 1, address 0x42000.
    expect(o.steps[3].fields.p).toMatchObject({ bits: '0', value: '0x1' });
    expect(o.steps[3].fields.xd).toMatchObject({ bits: '63', value: '0x1' });
    expect(o.steps[3].fields.addr).toMatchObject({ bits: '51:12', address: '0x42000' });
    expect(o.result).toMatchObject({ pa: '0x42234', page_size: 4096, level: 1, attrs: { rw: true, us: true, nx: true } });
    expect(o.fault).toBeUndefined();
  });

  it('a not-present PDE: the walk stops at level 2 with #PF error code W/R | U/S = 0x6 (SDM §4.7)', async () => {
    const r = await run('explain', x86Image(), '0x7fab_ce00_0000', '--user', '--access', 'write', '--json');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o.steps.map((s: { entry_addr: string }) => s.entry_addr)).toEqual(['0x107f8', '0x11578', '0x12380']);
    expect(o.steps[2]).toMatchObject({ level: 2, table: '0x12000', index: 112, raw: '0x0000000000000000', action: 'fault' });
    expect(o.steps[2].why).toMatch(/P \(bit 0\) = 0/);
    expect(o.fault).toMatchObject({ kind: 'not_present', level: 2, code: '0x6' });
    expect(o.fault.name).toBe('#PF, error code 0x6 (W/R | U/S)');
    expect(o.result).toBeUndefined();
  });

  it('a read-only 2-MByte page: a user write is a protection fault at level 2, code P | W/R | U/S = 0x7 (SDM §4.6.1)', async () => {
    // PD index 113: VA bits 29:21 = 113 → 0x7fabc0000000 + 113 × 2M = 0x7fabce200000.
    const r = await run('explain', x86Image(), '0x7fabce212345', '--user', '--access', 'write', '--json');
    const o = JSON.parse(r.out);
    expect(o.steps[2]).toMatchObject({ level: 2, index: 113, entry_addr: '0x12388', raw: '0x00000000002000e5', action: 'fault' });
    expect(o.fault).toMatchObject({ kind: 'protection', level: 2, code: '0x7' });
    expect(o.fault.rule).toMatch(/R\/W = 0 in the PDE \(level 2\)/);
    // The same page read: a 2-MByte leaf, PA = 0x200000 + 0x12345.
    const rd = JSON.parse((await run('explain', x86Image(), '0x7fabce212345', '--user', '--json')).out);
    expect(rd.result).toMatchObject({ pa: '0x212345', page_size: 2097152, level: 2 });
    expect(rd.steps[2].action).toBe('leaf');
  });

  it('text: every field by manual name, why each step descended, the result line', async () => {
    const r = await run('explain', x86Image(), VA, '--user');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Level 4: PML4 table at 0x10000, index 255 \(VA bits 47:39\)$/m);
    expect(r.out).toMatch(/^ {2}PML4E at 0x10000 \+ 255 × 8 = 0x107f8: 0x0000000000011067$/m);
    expect(r.out).toMatch(/^Level 1: page table at 0x13000, index 241 \(VA bits 20:12\)$/m);
    expect(r.out).toMatch(/descend: P = 1, PS \(bit 7\) = 0: the PDE references the page table at 0x13000/);
    expect(r.out).toMatch(/^ +63 +xd +1 +execute-disable$/m);
    expect(r.out).toMatch(/leaf: the PTE maps a 4-KByte page at 0x42000/);
    expect(r.out).toMatch(/^Result: 0x7fabcdef1234 → 0x42234 {2}4K page, level 1/m);
  });

  it('a non-canonical VA: #GP, no walk (SDM Vol.3A §3.3.7.1)', async () => {
    const o = JSON.parse((await run('explain', x86Image(), '0x8000000000000000', '--json')).out);
    expect(o.steps).toEqual([]);
    expect(o.fault).toMatchObject({ kind: 'non_canonical', level: 4 });
    expect(o.fault.name).toMatch(/^#GP/);
    expect(o.fault.why).toMatch(/bits 63:47 .* not all equal/);
  });

  it('--reg overrides a register: CR3 pointing at the PDPT makes PDPT[255] (empty) the PML4E', async () => {
    const o = JSON.parse((await run('explain', x86Image(), VA, '--reg', 'cr3=0x11000', '--json')).out);
    expect(o.steps).toHaveLength(1);
    expect(o.steps[0]).toMatchObject({ table: '0x11000', entry_addr: '0x117f8' });
    expect(o.fault).toMatchObject({ kind: 'not_present', level: 4, code: '0x0' });
  });
});

describe('mmulab explain: x86-64 5-level (LA57, SDM Vol.3A §4.5 Figure 4-9)', () => {
  /**
   * VA 0x00abcdef12345678: bits 56:48 = 0x0ab = 171; bits 47:0 = 0xcdef12345678 =
   *   1100 1101 1 | 110 1111 00 | 01 0010 001 | 1 0100 0101 0110 0111 1000
   * PML4 411, PDPT 444, PD 145, offset in a 2-MByte page 0x145678.
   * PML5 0x20000 → PML4 0x21000 → PDPT 0x22000 → PD 0x23000; PD[145] = 0x4000e7, a 2-MByte page at 0x400000.
   */
  it('five steps from CR3, the PML5E at 0x20000 + 171 × 8, a 2-MByte page', async () => {
    const dir = image(
      'x86_64-5level',
      1 << 20,
      [
        [0x20558, 0x21067n],
        [0x21cd8, 0x22067n],
        [0x22de0, 0x23067n],
        [0x23488, 0x4000e7n],
      ],
      0x20000,
    );
    const r = await run('explain', dir, '0x00ab_cdef_1234_5678', '--json');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o.steps.map((s: { level: number }) => s.level)).toEqual([5, 4, 3, 2]);
    expect(o.steps.map((s: { index: number }) => s.index)).toEqual([171, 411, 444, 145]);
    expect(o.steps.map((s: { va_bits: string }) => s.va_bits)).toEqual(['56:48', '47:39', '38:30', '29:21']);
    expect(o.steps.map((s: { entry_addr: string }) => s.entry_addr)).toEqual(['0x20558', '0x21cd8', '0x22de0', '0x23488']);
    expect(o.steps[3]).toMatchObject({ raw: '0x00000000004000e7', kind: 'block', action: 'leaf' });
    expect(o.result).toMatchObject({ pa: '0x545678', page_size: 2097152, level: 2 });
  });
});

describe('mmulab explain: ARM64 (Arm ARM D8.2 lookup levels, D8.3 descriptors)', () => {
  /**
   * 4K granule, 48-bit VA, start level 0 (physical memory from 0x40000000). Same VA indices as x86:
   * L0 255, L1 175, L2 111, L3 241. Tables L0 0x40010000 → L1 0x40011000 → L2 0x40012000 →
   * L3 0x40013000, each table descriptor = next table | 0b11.
   * L3[241] = 0x0060000040042fc3: page (0b11), AttrIndx 0, AP[2:1] = 0b11 (read-only, EL0 and EL1),
   * SH 0b11, AF, nG, PXN (53), UXN (54); output address 0x40042000.
   */
  function arm4k(): string {
    return image(
      'arm64-4k-48',
      1 << 20,
      [
        [0x4001_07f8, 0x4001_1003n],
        [0x4001_1578, 0x4001_2003n],
        [0x4001_2378, 0x4001_3003n],
        [0x4001_3788, 0x0060_0000_4004_2fc3n],
      ],
      0x4001_0000,
      0x4002_0000,
    );
  }

  it('4K: four levels from TTBR0_EL1, entry = table + index × 8, the page and its PA', async () => {
    const r = await run('explain', arm4k(), VA, '--user', '--json');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o.steps.map((s: { level: number }) => s.level)).toEqual([0, 1, 2, 3]);
    expect(o.steps.map((s: { table: string }) => s.table)).toEqual(['0x40010000', '0x40011000', '0x40012000', '0x40013000']);
    expect(o.steps.map((s: { entry_addr: string }) => s.entry_addr)).toEqual(['0x400107f8', '0x40011578', '0x40012378', '0x40013788']);
    expect(o.steps.map((s: { raw: string }) => s.raw)).toEqual([
      '0x0000000040011003',
      '0x0000000040012003',
      '0x0000000040013003',
      '0x0060000040042fc3',
    ]);
    expect(o.steps[3].fields.ap).toMatchObject({ bits: '7:6', value: '0x3' });
    expect(o.steps[3].fields.af).toMatchObject({ bits: '10', value: '0x1' });
    expect(o.steps[3].kind).toBe('page');
    expect(o.result).toMatchObject({ pa: '0x40042234', page_size: 4096, level: 3, attrs: { ap: 3, uxn: true, pxn: true } });
  });

  it('4K: an EL0 write to AP[2:1] = 0b11 is a Permission fault, level 3: DFSC 0b001111 (ESR_ELx ISS)', async () => {
    const r = await run('explain', arm4k(), VA, '--user', '--access', 'write', '--json');
    const o = JSON.parse(r.out);
    expect(o.steps).toHaveLength(4);
    expect(o.steps[3].action).toBe('fault');
    expect(o.fault).toMatchObject({ kind: 'permission', level: 3, code: '0xf' });
    expect(o.fault.name).toBe('Data Abort from EL0, DFSC 0xf (0b001111): Permission fault, level 3');
    expect(o.fault.rule).toMatch(/AP\[2:1\] = 0b11: read-only/);
    // An instruction fetch at EL0 from a UXN page: Instruction Abort, IFSC 0b001111.
    const x = JSON.parse((await run('explain', arm4k(), VA, '--user', '--access', 'exec', '--json')).out);
    expect(x.fault).toMatchObject({ kind: 'permission', level: 3, code: '0xf' });
    expect(x.fault.name).toMatch(/^Instruction Abort from EL0, IFSC 0xf/);
    expect(x.fault.rule).toMatch(/UXN \(bit 54\) = 1/);
  });

  it('4K: an invalid level 2 descriptor is a Translation fault, level 2: DFSC 0b000110', async () => {
    // L2 index 112: VA 0x7fabce000000 (as on x86), L2[112] at 0x40012000 + 0x380 is empty.
    const o = JSON.parse((await run('explain', arm4k(), '0x7fabce000000', '--json')).out);
    expect(o.steps.map((s: { entry_addr: string }) => s.entry_addr)).toEqual(['0x400107f8', '0x40011578', '0x40012380']);
    expect(o.fault).toMatchObject({ kind: 'translation', level: 2, code: '0x6' });
  });

  it('4K: a VA above the 48-bit TTBR0 range faults at level 0 before any table is read (D8.1)', async () => {
    const o = JSON.parse((await run('explain', arm4k(), '0x0001000000000000', '--json')).out);
    expect(o.steps).toEqual([]);
    expect(o.fault).toMatchObject({ kind: 'translation', level: 0, code: '0x4' });
    expect(o.fault.why).toMatch(/outside the TTBR0_EL1 range/);
  });

  /**
   * 64K granule, 48-bit VA: levels 1-3 (D8.2: level 1 indexes bits 47:42, 64 entries; level 2 bits
   * 41:29; level 3 bits 28:16; offset 15:0). VA 0x7fabcdef1234: bits 47:42 = 011111 = 31;
   * bits 41:29 = 1 1101 0101 1110 = 7518; bits 28:16 = 0 1101 1110 1111 = 3567; offset 0x1234.
   * L1 0x40010000 → L2 0x40020000 → L3 0x40030000; L3[3567] = 0x0060000040050fc3, a 64K page at 0x40050000.
   */
  it('64K: three levels, entries at 0x40010000 + 31 × 8, 0x40020000 + 7518 × 8, 0x40030000 + 3567 × 8', async () => {
    const dir = image(
      'arm64-64k-48',
      4 << 20,
      [
        [0x4001_00f8, 0x4002_0003n],
        [0x4002_eaf0, 0x4003_0003n],
        [0x4003_6f78, 0x0060_0000_4005_0fc3n],
      ],
      0x4001_0000,
      0x4006_0000,
    );
    const r = await run('explain', dir, VA, '--user', '--json');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o.steps.map((s: { level: number }) => s.level)).toEqual([1, 2, 3]);
    expect(o.steps.map((s: { index: number }) => s.index)).toEqual([31, 7518, 3567]);
    expect(o.steps.map((s: { va_bits: string }) => s.va_bits)).toEqual(['47:42', '41:29', '28:16']);
    expect(o.steps.map((s: { entry_addr: string }) => s.entry_addr)).toEqual(['0x400100f8', '0x4002eaf0', '0x40036f78']);
    expect(o.result).toMatchObject({ pa: '0x40051234', page_size: 65536, level: 3 });
    const w = JSON.parse((await run('explain', dir, VA, '--user', '--access', 'write', '--json')).out);
    expect(w.fault).toMatchObject({ kind: 'permission', level: 3, code: '0xf' });
  });

  it('--brief: one line per level', async () => {
    const r = await run('explain', arm4k(), VA, '--user', '--access', 'write', '--brief');
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines.filter((l) => /^ {2}L[0-3]\[\d+\]/.test(l))).toHaveLength(4);
    expect(r.out).toMatch(/L3\[241\] 0x40013788 0x0060000040042fc3 +UXN PXN nG AF AP=11 AttrIndx=0 +✗ permission/);
  });
});

describe('mmulab explain: tables outside emulated memory (the MMU records the read as an entry)', () => {
  it('x86-64: a PDE pointing past memory — the PTE read returns all-ones: a reserved-bit #PF at level 1, P | RSVD = 0x9', async () => {
    // PD[111] → a page table at 0x7ff000 (memory is 1 MiB): P | R/W | U/S | A | D = 0x7ff067; the
    // PTE would be at 0x7ff000 + 241 × 8 = 0x7ff788.
    const dir = image('x86_64-4level', 1 << 20, [[0x107f8, 0x11067n], [0x11578, 0x12067n], [0x12378, 0x7ff067n]], 0x10000);
    const r = await run('explain', dir, VA, '--json');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o.steps).toHaveLength(4);
    expect(o.steps[3]).toMatchObject({ level: 1, table: '0x7ff000', entry_addr: '0x7ff788', raw: '0xffffffffffffffff', action: 'fault' });
    expect(o.fault).toMatchObject({ kind: 'reserved', level: 1, code: '0x9' });
    expect(o.fault.why).toMatch(/PTE at 0x7ff788 is outside emulated memory: the read returns all-ones/);
  });
  it('ARM64: a level 2 table past memory — a synchronous External abort on the walk, level 2: DFSC 0b010110', async () => {
    // L1[175] → a level 2 table at 0x80000000; its entry 111 would be at 0x80000000 + 0x378.
    const dir = image('arm64-4k-48', 1 << 20, [[0x4001_07f8, 0x4001_1003n], [0x4001_1578, 0x8000_0003n]], 0x4001_0000, 0x4002_0000);
    const r = await run('explain', dir, VA, '--json');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o.steps.map((s: { entry_addr: string }) => s.entry_addr)).toEqual(['0x400107f8', '0x40011578', '0x80000378']);
    expect(o.steps[2].action).toBe('fault');
    expect(o.fault).toMatchObject({ kind: 'external_abort', level: 2, code: '0x16' });
    expect(o.fault.name).toBe('Data Abort from EL1, DFSC 0x16 (0b010110): Synchronous External abort on translation table walk, level 2');
  });
});

describe('mmulab explain: errors', () => {
  it('a VA that is not hex is a usage error naming VA and what was expected (exit 2)', async () => {
    const r = await run('explain', x86Image(), '0xfoo');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/VA '0xfoo' is not a hexadecimal 64-bit address \(expected/);
  });
  it('--access must be read, write or exec; VA is required (exit 2)', async () => {
    expect((await run('explain', x86Image(), VA, '--access', 'fetch')).err).toMatch(/--access 'fetch': expected read, write or exec/);
    const r = await run('explain', x86Image());
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/VA is required/);
    expect((await run('explain', x86Image(), VA, VA)).code).toBe(2);
  });
  it('a missing image folder exits 1 with its name and no stack trace', async () => {
    const r = await run('explain', '/nonexistent/image', VA);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/\/nonexistent\/image\/machine\.json: not found/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});
