import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../mm/image-fixtures';
import { HandTables, arm64Hand4k48, x86Hand4 } from '../walk/ptdump-fixtures';
import { run } from './run';

describe('mmulab dump --json (FORMATS.md: one object per range, JSON Lines)', () => {
  it('x86-64: the exact line shape, hex addresses, page_size and count, attrs by manual name', async () => {
    const dir = x86Hand4().save();
    const r = await run('dump', dir, '--json');
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines).toHaveLength(11);
    expect(lines[0]).toBe(
      '{"start":"0x400000","end":"0x403000","pa":"0x100000","page_size":4096,"count":3,' +
        '"attrs":{"rw":true,"us":true,"nx":true,"g":false,"a":true,"d":true,"pwt":false,"pcd":false,"pat":false,"pkey":0}}',
    );
    expect(lines[10]).toBe(
      '{"start":"0xffff888000000000","end":"0xffff888040000000","pa":"0x0","page_size":1073741824,"count":1,' +
        '"attrs":{"rw":true,"us":false,"nx":true,"g":true,"a":true,"d":true,"pwt":false,"pcd":false,"pat":false,"pkey":0}}',
    );
    // SDM §4.6.1: the PDE's R/W = 0 shows in the leaf below it.
    expect(JSON.parse(lines[4]!)).toEqual({
      start: '0x800000',
      end: '0x801000',
      pa: '0x300000',
      page_size: 4096,
      count: 1,
      attrs: { rw: false, us: true, nx: true, g: false, a: true, d: true, pwt: false, pcd: false, pat: false, pkey: 0 },
    });
  });

  it('ARM64 4K/48: TTBR0 then TTBR1 ranges; APTable = 0b10 / UXNTable restrict the leaf (Arm ARM D8.4.2)', async () => {
    const dir = arm64Hand4k48().save();
    const r = await run('dump', dir, '--json');
    expect(r.code).toBe(0);
    const lines = r.out.split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(8);
    expect(lines[3]).toEqual({
      start: '0x800000',
      end: '0x801000',
      pa: '0x40500000',
      page_size: 4096,
      count: 1,
      attrs: { ap: 3, uxn: true, pxn: true, af: true, sh: 3, attr_indx: 0, ng: true, contiguous: false, dbm: false },
    });
    expect(lines[7]).toMatchObject({ start: '0xffff000040000000', end: '0xffff000080000000', pa: '0x80000000', page_size: 1073741824, count: 1 });
  });

  it('a range that reaches the top of the space ends at 0x10000000000000000 (2^64, as --end takes it)', async () => {
    // x86-64 4-level: PML4[511] → PDPT[511] → PD[511] → PT[510], PT[511]: the last two 4K pages,
    // PA 0x7000 and 0x8000 (P RW A D G XD = 0x8000000000000163 | PA).
    const t = new HandTables('x86_64-4level');
    const R = t.table();
    const P = t.table();
    const D = t.table();
    const T = t.table();
    t.set(R, 511, BigInt(P) | 0x63n);
    t.set(P, 511, BigInt(D) | 0x63n);
    t.set(D, 511, BigInt(T) | 0x63n);
    t.set(T, 510, 0x8000_0000_0000_7163n);
    t.set(T, 511, 0x8000_0000_0000_8163n);
    const dir = t.save(R, R);
    const j = await run('dump', dir, '--json');
    expect(j.out).toBe(
      '{"start":"0xffffffffffffe000","end":"0x10000000000000000","pa":"0x7000","page_size":4096,"count":2,' +
        '"attrs":{"rw":true,"us":false,"nx":true,"g":true,"a":true,"d":true,"pwt":false,"pcd":false,"pat":false,"pkey":0}}',
    );
    // dump_pagetables.c prints the same range ending at 0x0000000000000000 (unsigned long wrap).
    const text = (await run('dump', dir)).out.split('\n');
    expect(text[text.length - 1]).toBe('0xffffffffffffe000-0x0000000000000000           8K     RW                 GLB NX pte');
  });
});

describe('mmulab dump (text)', () => {
  it("prints arch/x86/mm/dump_pagetables.c's lines for an x86-64 image", async () => {
    const r = await run('dump', x86Hand4().save());
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toBe('---[ User Space ]---');
    expect(lines).toContain('---[ Kernel Space ]---');
    expect(lines).toContain('0xffff888000000000-0xffff888040000000           1G     RW         PSE     GLB NX pud');
  });
  it("prints arch/arm64/mm/ptdump.c's lines for an ARM64 image", async () => {
    const r = await run('dump', arm64Hand4k48().save());
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines).toContain('---[ Linear Mapping start ]---');
    expect(lines).toContain('0xffff000040000000-0xffff000080000000           1G PUD       ro NX SHD AF        BLK UXN    MEM/NORMAL');
    expect(lines[lines.length - 1]).toBe('0xffff800000000000-0x0000000000000000         128T PGD');
  });
});

describe('mmulab dump: help and errors', () => {
  it('--help prints the usage with examples and exits 0', async () => {
    const r = await run('dump', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Usage: mmulab dump DIR \[--json\]/);
    expect(r.out).toMatch(/Examples:\n {2}mmulab dump /);
  });
  it('is listed in mmulab --help', async () => {
    expect((await run('--help')).out).toMatch(/\n {2}dump {2,}/);
  });
  it('a folder without an image exits 1 naming the missing file, no stack trace', async () => {
    const r = await run('dump', '/nonexistent-mmulab-dump');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/machine\.json: not found/);
    expect(r.err).not.toMatch(/at .*\.ts:/);
  });
  it('a bad machine.json field exits 1 naming it', async () => {
    const dir = x86Hand4().save();
    const json = JSON.parse(readFileSync(join(dir, 'machine.json'), 'utf8'));
    json.arch = 'riscv64';
    writeFileSync(join(dir, 'machine.json'), JSON.stringify(json));
    const r = await run('dump', dir, '--json');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/machine\.json arch: expected "x86_64" or "arm64", got "riscv64"/);
  });
  it('a table entry pointing outside memory exits 1 naming the entry and the address', async () => {
    const t = new HandTables('x86_64-4level');
    const R = t.table();
    t.set(R, 0, 0x7f_ffff_f000n | 0x67n); // PML4[0] → 0x7ffffff000, far above the 4 MiB of memory
    const r = await run('dump', t.save(R, R, tempDir()));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`table entry at 0x${R.toString(16)} points to 0x7ffffff000, outside memory`));
    expect(r.err).not.toMatch(/at .*\.ts:/);
  });
  it.each([
    [[], /DIR is required/],
    [['DIR', '--bogus'], /Unknown option '--bogus'/],
    [['DIR', 'extra'], /unexpected argument 'extra'/],
  ])('usage error %j exits 2 with the usage', async (args, message) => {
    const r = await run('dump', ...args.map((a) => (a === 'DIR' ? '/tmp' : a)));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err).toMatch(/Usage: mmulab dump/);
  });
});
