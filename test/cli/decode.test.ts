import { describe, expect, it } from 'vitest';
import { run } from './run';

describe('mmulab decode', () => {
  it('SDM Vol.3A Table 4-18: a 2-MByte PDE prints PS, PAT at bit 12 and the frame at bits 51:21', async () => {
    const r = await run('decode', '--arch', 'x86_64', '--level', '2', '0x80000000fee011e3', '--json');
    expect(r.code).toBe(0);
    const d = JSON.parse(r.out);
    expect(d.kind).toBe('block');
    expect(d.address).toBe('0xfee00000');
    const field = (n: string) => d.fields.find((f: { name: string }) => f.name === n);
    expect(field('ps')).toMatchObject({ msb: 7, lsb: 7, value: '0x1' });
    expect(field('pat')).toMatchObject({ msb: 12, lsb: 12, value: '0x1' });
    expect(field('xd')).toMatchObject({ msb: 63, lsb: 63, value: '0x1' });
    expect(field('addr')).toMatchObject({ msb: 51, lsb: 21, address: '0xfee00000' });
  });

  it('Arm ARM D8.3: a level-3 page descriptor of the 4K granule names AF, AP, SH, UXN and its output address', async () => {
    // 0x0040000041234f43: valid page, AttrIndx 0, AP 0b01, SH 0b11, AF 1, nG 1, OA 0x41234000, UXN 1
    const r = await run('decode', '--arch', 'arm64', '--granule', '4k', '--va-bits', '48', '--level', '3', '0x0040000041234fc3', '--json');
    expect(r.code).toBe(0);
    const d = JSON.parse(r.out);
    expect(d.kind).toBe('page');
    expect(d.address).toBe('0x41234000');
    const field = (n: string) => d.fields.find((f: { name: string }) => f.name === n);
    expect(field('af')).toMatchObject({ msb: 10, lsb: 10, value: '0x1' });
    expect(field('ap')).toMatchObject({ msb: 7, lsb: 6, value: '0x3' });
    expect(field('sh')).toMatchObject({ msb: 9, lsb: 8, value: '0x3' });
    expect(field('uxn')).toMatchObject({ msb: 54, lsb: 54, value: '0x1' });
    expect(field('nG')).toMatchObject({ msb: 11, lsb: 11, value: '0x1' });
  });

  it('prints every field with its bit positions in text mode', async () => {
    const r = await run('decode', '--arch', 'x86_64', '--level', '1', '0x8000000012345067');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/PT descriptor 0x8000000012345067: page → 0x12345000/);
    expect(r.out).toMatch(/^\s+51:12\s+addr\s+0x12345/m);
    expect(r.out).toMatch(/^\s+63\s+xd\s+1/m);
  });

  it('x86-64 LA57: level 5 exists only with --levels 5', async () => {
    expect((await run('decode', '--arch', 'x86_64', '--levels', '5', '--level', '5', '0x1003')).code).toBe(0);
    const r = await run('decode', '--arch', 'x86_64', '--level', '5', '0x1003');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--level: 5 is not a table level of x86_64-4level \(1 … 4\)/);
  });

  it.each([
    [['decode', '--level', '1', '0x1'], /--arch is required/],
    [['decode', '--arch', 'mips', '--level', '1', '0x1'], /--arch: 'mips' is not one of x86_64, arm64/],
    [['decode', '--arch', 'arm64', '--granule', '8k', '--level', '3', '0x1'], /--granule: '8k' is not one of 4k, 16k, 64k/],
    [['decode', '--arch', 'arm64', '--granule', '64k', '--va-bits', '39', '--level', '3', '0x1'], /--va-bits: 39 is not one of 42, 48, 52/],
    [['decode', '--arch', 'x86_64', '--level', '1', 'zz'], /VALUE: 'zz' is not a number/],
    [['decode', '--arch', 'x86_64', '--level', '1', '0x10000000000000000'], /does not fit in 64 bits/],
    [['decode', '--arch', 'x86_64', '--level', '1'], /VALUE is required/],
    [['decode', '--arch', 'x86_64', '--bogus', '--level', '1', '0x1'], /Unknown option '--bogus'/],
  ])('bad arguments %j give a usage message and exit 2', async (argv, message) => {
    const r = await run(...argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err).toMatch(/Usage: mmulab decode/);
  });

  it('--help shows the usage with examples and exits 0', async () => {
    const r = await run('decode', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Examples:/);
  });
});

describe('mmulab', () => {
  it('without a command prints the command list and exits 2', async () => {
    const r = await run();
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/Commands:/);
  });
  it('an unknown command exits 2 naming it', async () => {
    const r = await run('frobnicate');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown command 'frobnicate'/);
  });
});

describe('mmulab demo', () => {
  it('tours every geometry with Linux values (arm64-64k-48: PGDIR_SHIFT 42, 64 top-level entries)', async () => {
    const r = await run('demo', '--part', 'geometry');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^arm64-64k-48\s+3\s+64K\s+42\s+-\s+-\s+29\s+64\/1\/1\/8192\/8192/m);
    expect(r.out.split('\n').filter((l) => /^(x86_64|arm64)-/.test(l))).toHaveLength(12);
  });
  it('walks a half-populated VMA: one pte_entry per page, half of them present', async () => {
    const r = await run('demo', '--part', 'walk');
    expect(r.code).toBe(0);
    // 1024-page VMA, every other page mapped: 1024 pte_entry calls inside the VMA, 512 present.
    expect(r.out).toMatch(/x86_64-4level .*returned 0; pmd_entry ×2, pte_entry ×1024 \(512 present\), pte_hole ×2/);
  });
  it('rejects an unknown part with exit 2', async () => {
    const r = await run('demo', '--part', 'nope');
    expect(r.code).toBe(2);
  });
});
