import { describe, expect, it } from 'vitest';
import { AddressSpace, Machine, VM_READ, entryAlloc, setHugePteAt } from '../../src/index';

describe('set_huge_pte_at with the Contiguous hint (Arm ARM D8.6, contiguous bit)', () => {
  it('arm64 4K/48: a 64 KiB hugetlb page is 16 consecutive ptes with Contiguous set, each mapping its 4K slice', () => {
    const m = new Machine({ geometry: 'arm64-4k-48', memSize: 4 << 20 });
    const mm = m.newMm();
    const ptep = entryAlloc(mm, 0x41_0000, 'pte');
    setHugePteAt(mm, 0x41_0000, ptep, m.bits.pfnPte(0x48000, m.bits.pgprot({ user: true })), 0x1_0000);
    for (let i = 0; i < 16; i++) {
      const d = m.bits.decode(m.mem.read64(ptep + i * 8), 3);
      expect(d.kind).toBe('page');
      expect(d.address).toBe(0x4800_0000n + BigInt(i) * 0x1000n);
      expect(d.fields.find((f) => f.name === 'contiguous')!.value).toBe(1n);
    }
    expect(m.mem.read64(ptep + 16 * 8)).toBe(0n);
  });

  it('arm64 4K/52 (LPA2): slices above 2^50 keep OA[51:50] in bits 9:8 of every entry', () => {
    const m = new Machine({ geometry: 'arm64-4k-52', memSize: 4 << 20 });
    const mm = m.newMm();
    const ptep = entryAlloc(mm, 0x41_0000, 'pte');
    const pa = 0x000c_0000_0001_0000n; // OA[51:50] = 0b11
    setHugePteAt(mm, 0x41_0000, ptep, m.bits.pfnPte(Number(pa >> 12n), m.bits.pgprot({ user: true })), 0x1_0000);
    for (let i = 0; i < 16; i++) {
      const v = m.mem.read64(ptep + i * 8);
      expect((v >> 8n) & 3n).toBe(3n);
      expect(m.bits.decode(v, 3).address).toBe(pa + BigInt(i) * 0x1000n);
    }
  });

  it('refuses a size the configuration cannot map, naming it', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 1 << 20 });
    const mm = m.newMm();
    const ptep = entryAlloc(mm, 0x40_0000, 'pte');
    expect(() => setHugePteAt(mm, 0x40_0000, ptep, 1n, 0x1_0000)).toThrow(/huge page size 0x10000 is not supported on x86_64-4level/);
  });
});

describe('address_space i_mmap queries (page offsets are unsigned long)', () => {
  it('[0, ULONG_MAX] meets every VMA; a range past every VMA meets none; order is by vm_pgoff', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 1 << 20 });
    const mm = m.newMm();
    const f = new AddressSpace('f');
    mm.insertVma({ start: 0x10_0000, end: 0x20_0000, flags: VM_READ, pgoff: 0x100, file: f, name: 'a' });
    mm.insertVma({ start: 0x40_0000, end: 0x41_0000, flags: VM_READ, pgoff: 0x10, file: f, name: 'b' });
    const names = (first: bigint, last: bigint) => [...f.overlapping(first, last)].map((v) => v.name);
    expect(names(0n, (1n << 64n) - 1n)).toEqual(['b', 'a']);
    expect(names((1n << 53n) + 5n, (1n << 64n) - 1n)).toEqual([]);
    expect(names(0x1ffn, 0x1ffn)).toEqual(['a']); // a maps pgoff 0x100..0x1ff
    expect(names(0x200n, 0x300n)).toEqual([]);
  });
  it('a VMA page offset that a double cannot hold exactly is refused', () => {
    const m = new Machine({ geometry: 'x86_64-4level', memSize: 1 << 20 });
    expect(() => m.newMm().insertVma({ start: 0x1000, end: 0x2000, flags: 0, pgoff: 2 ** 60 })).toThrow(/pgoff/);
  });
});
