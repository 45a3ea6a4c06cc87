import { readFileSync, readdirSync, writeFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ImageError, countWalk, loadImage } from '../../src/index';
import { arm64Image, tempDir, x86Image } from './image-fixtures';

function editJson(dir: string, edit: (j: Record<string, any>) => void): void {
  const p = join(dir, 'machine.json');
  const j = JSON.parse(readFileSync(p, 'utf8'));
  edit(j);
  writeFileSync(p, JSON.stringify(j));
}

describe('image folders (FORMATS.md)', () => {
  it('x86-64: CR4.LA57 = 0 selects 4-level paging; CR3[51:12] is the root of both canonical halves', () => {
    const { dir, machine } = x86Image();
    const img = loadImage(dir);
    expect(img.machine.geo.name).toBe('x86_64-4level');
    expect(img.roots.map((r) => [r.start, r.end])).toEqual([
      [0, 2 ** 47],
      [2 ** 64 - 2 ** 47, 2 ** 64],
    ]);
    expect(img.roots[0]!.table).toBe(img.roots[1]!.table);
    // the bytes round-trip exactly
    expect(Buffer.compare(Buffer.from(img.machine.mem.buffer), Buffer.from(machine.mem.buffer))).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['machine.json', 'memory.bin']);
  });

  it('x86-64: the counting walk reads every slot of every table reached and sums leaf frames', () => {
    const img = loadImage(x86Image().dir);
    const r = countWalk(img.machine, img.roots);
    // top table 512 + lower pud 512 + pmd (0-1G) 512 + pte 512 + pmd (1-2G) 512 + upper pud 512
    expect(r.entries).toBe(3072);
    expect(r.leaves).toBe(5);
    expect(r.leavesByLevel).toEqual({ '1': 3, '2': 1, '3': 1 });
    expect(r.checksum).toBe(0x100n + 0x101n + 0x200n + 0x800n + 0x40000n);
  });

  it('ARM64: TCR_EL1 TG0/TG1 and T0SZ/T1SZ select 4K/48; TTBR0 and TTBR1 ranges are walked once each', () => {
    const img = loadImage(arm64Image().dir);
    expect(img.machine.geo.name).toBe('arm64-4k-48');
    expect(img.machine.mem.physBase).toBe(0x4000_0000);
    expect(img.roots.map((r) => r.name)).toEqual(['ttbr0_el1', 'ttbr1_el1']);
    const r = countWalk(img.machine, img.roots);
    // TTBR0: pgd 512 + pud 512 + pmd 512 + pte 512; TTBR1: pgd 512 + pud 512 + pmd 512
    expect(r.entries).toBe(3584);
    expect(r.leavesByLevel).toEqual({ '2': 1, '3': 2 });
    expect(r.checksum).toBe(0x40100n + 0x40101n + 0x40200n);
  });

  it('ARM64: TCR_EL1.EPD1 = 1 disables the TTBR1 walk', () => {
    const { dir } = arm64Image();
    editJson(dir, (j) => {
      j.registers.tcr_el1 = '0x' + (BigInt(j.registers.tcr_el1) | (1n << 23n)).toString(16);
    });
    const img = loadImage(dir);
    expect(img.roots.map((r) => r.name)).toEqual(['ttbr0_el1']);
  });

  it('a walk limited by start/end visits only that range', () => {
    const img = loadImage(x86Image().dir);
    const r = countWalk(img.machine, img.roots, 0x400000, 0x402000);
    expect(r.leaves).toBe(2);
    expect(r.checksum).toBe(0x201n);
  });

  describe('hostile images give an ImageError naming the field', () => {
    const cases: [string, (dir: string) => void, RegExp][] = [
      ['missing machine.json', (d) => writeFileSync(join(d, 'machine.json'), ''), /not valid JSON/],
      ['arch of the wrong type', (d) => editJson(d, (j) => (j.arch = 5)), /machine.json arch: expected "x86_64" or "arm64", got 5/],
      ['register not a hex string', (d) => editJson(d, (j) => (j.registers.cr3 = 'banana')), /registers.cr3: expected a hex string/],
      ['missing register', (d) => editJson(d, (j) => delete j.registers.cr4), /registers.cr4: missing/],
      ['paging disabled', (d) => editJson(d, (j) => (j.registers.cr0 = '0x11')), /registers.cr0: PG \(bit 31\) is 0/],
      ['root table outside memory', (d) => editJson(d, (j) => (j.registers.cr3 = '0x7fff000')), /registers.cr3: root table at 0x7fff000 is outside memory/],
      ['truncated memory.bin', (d) => truncateSync(join(d, 'memory.bin'), 5000), /memory.bin: 5000 bytes; expected a non-zero multiple of 4096/],
      ['unknown format', (d) => editJson(d, (j) => (j.format = 'other/9')), /format: expected "mmulab-image\/1"/],
    ];
    it.each(cases)('%s', (_name, spoil, message) => {
      const { dir } = x86Image();
      spoil(dir);
      expect(() => loadImage(dir)).toThrow(ImageError);
      expect(() => loadImage(dir)).toThrow(message);
    });
    it('ARM64 TG0 = 0b11 is a reserved granule encoding', () => {
      const { dir } = arm64Image();
      editJson(dir, (j) => (j.registers.tcr_el1 = '0x' + (BigInt(j.registers.tcr_el1) | (3n << 14n)).toString(16)));
      expect(() => loadImage(dir)).toThrow(/TG0 = 3 is a reserved granule encoding/);
    });
    it('a folder that is not an image', () => {
      expect(() => loadImage(tempDir())).toThrow(/machine.json: not found/);
    });
  });
});
