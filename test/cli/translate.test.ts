import { describe, expect, it } from 'vitest';
import { HandTables } from '../walk/ptdump-fixtures';
import { run } from './run';

/**
 * x86-64 4-level, by hand (SDM Vol.3A Tables 4-15…4-20):
 *   PML4[0] → PDPT → PD; PD[2] → PT; PT[0]: VA 0x400000 → 0x123000, P RW US A D XD (0x8000000000123067)
 *   PML4[273] (VA 0xffff888000000000) → PDPT2; PDPT2[0]: 1G page at 0x40000000, P RW A D PS G (0x1e3)
 */
function x86Dir(): string {
  const t = new HandTables('x86_64-4level');
  const R = t.table();
  const P = t.table();
  const D = t.table();
  const T = t.table();
  const P2 = t.table();
  t.set(R, 0, BigInt(P) | 0x67n);
  t.set(P, 0, BigInt(D) | 0x67n);
  t.set(D, 2, BigInt(T) | 0x67n);
  t.set(T, 0, 0x8000_0000_0012_3067n);
  t.set(R, 273, BigInt(P2) | 0x63n);
  t.set(P2, 0, 0x4000_01e3n);
  return t.save(R, R);
}

/** ARM64 4K/48 (Arm ARM D8.3): L0[0] → L1 → L2; L2[2] → L3; L3[0]: VA 0x400000 → 0x40123000, AP[2:1] = 01, AF, SH 11, nG (0x40123f43). */
function armDir(): string {
  const t = new HandTables('arm64-4k-48');
  const L0 = t.table();
  const L1 = t.table();
  const L2 = t.table();
  const L3 = t.table();
  t.set(L0, 0, BigInt(L1) | 3n);
  t.set(L1, 0, BigInt(L2) | 3n);
  t.set(L2, 2, BigInt(L3) | 3n);
  t.set(L3, 0, 0x4012_3f43n);
  return t.save(L0, t.table());
}

describe('mmulab translate --json (FORMATS.md translate: one object per VA)', () => {
  it('x86-64: a 4K user page, a 1G global kernel page and a hole (SDM 4.5 walk, 4.7 error code)', async () => {
    const r = await run('translate', x86Dir(), '0x400abc', 'ffff888000123456', '0x7f0000000000', '--json');
    expect(r.code).toBe(0);
    const [a, b, c] = r.out.split('\n').map((l) => JSON.parse(l));
    expect(a).toMatchObject({ va: '0x400abc', pa: '0x123abc', page_size: 4096, level: 1, attrs: { rw: true, us: true, nx: true, a: true, d: true, g: false } });
    expect(b).toMatchObject({ va: '0xffff888000123456', pa: '0x40123456', page_size: 1073741824, level: 3, attrs: { rw: true, us: false, g: true } });
    // PML4[254] is empty: not present at level 4; a supervisor read: error code 0
    expect(c).toEqual({ va: '0x7f0000000000', fault: { kind: 'not_present', level: 4, code: '0x0' } });
  });

  it('x86-64: --user --access write sets W/R and U/S in the code; a user access to a supervisor page is a protection fault (P = 1)', async () => {
    const dir = x86Dir();
    const r = await run('translate', dir, '0x7f0000000000', '0xffff888000000000', '--user', '--access', 'write', '--json');
    expect(r.out.split('\n').map((l) => JSON.parse(l))).toEqual([
      { va: '0x7f0000000000', fault: { kind: 'not_present', level: 4, code: '0x6' } },
      { va: '0xffff888000000000', fault: { kind: 'protection', level: 3, code: '0x7' } },
    ]);
    // exec of an XD page with EFER.NXE = 1: P | U/S | I/D = 0x15
    const x = await run('translate', dir, '0x400000', '--user', '--access', 'exec', '--json');
    expect(JSON.parse(x.out)).toEqual({ va: '0x400000', fault: { kind: 'protection', level: 1, code: '0x15' } });
  });

  it('ARM64 4K/48: an EL0 write to an AP = 01 page; a hole is a translation fault at level 2 (DFSC 0b000110)', async () => {
    const r = await run('translate', armDir(), '0x400010', '0x800000', '--user', '--access', 'write', '--json');
    expect(r.code).toBe(0);
    const [a, b] = r.out.split('\n').map((l) => JSON.parse(l));
    expect(a).toMatchObject({ va: '0x400010', pa: '0x40123010', page_size: 4096, level: 3, attrs: { ap: 1, af: true, ng: true } });
    expect(b).toEqual({ va: '0x800000', fault: { kind: 'translation', level: 2, code: '0x6' } });
  });
});

describe('mmulab translate (text)', () => {
  it('one readable line per VA, addresses aligned', async () => {
    const r = await run('translate', x86Dir(), '0x400abc', '0xffff888000123456', '0x7f0000000000');
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toMatch(/^0x400abc {10} {2}-> 0x123abc {2}4K page, level 1 {2}rw us nx a d/);
    expect(lines[1]).toMatch(/^0xffff888000123456 {2}-> 0x40123456 {2}1G page, level 3 {2}rw/);
    expect(lines[2]).toBe('0x7f0000000000      fault not_present at level 4, code 0x0');
  });
});

describe('mmulab translate: help and errors', () => {
  it('--help exits 0 with usage and examples; listed in mmulab --help', async () => {
    const r = await run('translate', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Usage: mmulab translate IMAGE VA\.\.\./);
    expect(r.out).toMatch(/Examples:\n {2}mmulab translate /);
    expect((await run('--help')).out).toMatch(/\n {2}translate {2,}/);
  });
  it.each([
    [['0xzz'], /VA '0xzz' is not a hexadecimal 64-bit address/],
    [['0x10000000000000000'], /VA '0x10000000000000000'/],
    [['0x1000', '--access', 'fetch'], /--access 'fetch': expected read, write or exec/],
    [[], /at least one VA is required/],
    [['0x1000', '--reg', 'tcr_el1'], /--reg 'tcr_el1': expected NAME=VALUE/],
  ])('%j is a usage error (exit 2)', async (args, msg) => {
    const r = await run('translate', x86Dir(), ...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
  });
  it('a missing image exits 1 naming it', async () => {
    const r = await run('translate', '/nonexistent-mmulab', '0x1000');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/machine\.json: not found/);
  });
});
