import { describe, expect, it } from 'vitest';
import {
  Machine,
  attachCpu,
  createCpu,
  registersFor,
  vmMmap,
  doMunmap,
  doMprotect,
  doUserAddrFault,
  dupMm,
  isFault,
  lookupEntry,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  type GeometryName,
} from '../../src/index';

function setup(g: GeometryName) {
  const m = new Machine({ geometry: g, memSize: 32 * 2 ** 20 });
  const mm = m.newMm('p');
  const regs = registersFor(m, mm.pgd, m.initMm.pgd);
  if (g.startsWith('arm64')) regs.ttbr0_el1 = regs.ttbr0_el1! | (BigInt(mm.asid) << 48n);
  const cpu = createCpu(m.geo.arch, m.mem, regs);
  return { m, mm, cpu };
}

describe('TLB shootdowns reach the CPU model as the kernel issues them', () => {
  for (const g of ['x86_64-4level', 'arm64-4k-48'] as const) {
    it(`${g}: without attachCpu a munmap leaves a stale TLB translation (the flush is what removes it)`, () => {
      const { mm, cpu } = setup(g);
      const a = vmMmap(mm, 0, 4096 * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      doUserAddrFault(mm, a, 'write');
      expect(isFault(cpu.translate(BigInt(a), 'write', true))).toBe(false); // fills the TLB
      expect(doMunmap(mm, a, 4096 * 4)).toBe(0);
      // The tables no longer map it, but nobody told this CPU: the stale entry still hits.
      expect(isFault(cpu.translate(BigInt(a), 'read', true))).toBe(false);
      expect(isFault(cpu.translate(BigInt(a), 'read', true, { debug: true }))).toBe(true);
    });

    it(`${g}: with attachCpu, munmap's mmu_gather flush invalidates the translation`, () => {
      const { m, mm, cpu } = setup(g);
      attachCpu(m, cpu);
      const a = vmMmap(mm, 0, 4096 * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      doUserAddrFault(mm, a, 'write');
      expect(isFault(cpu.translate(BigInt(a), 'write', true))).toBe(false);
      expect(doMunmap(mm, a, 4096 * 4)).toBe(0);
      expect(isFault(cpu.translate(BigInt(a), 'read', true))).toBe(true);
    });

    it(`${g}: mprotect(PROT_READ) flushes, so a cached writable entry no longer allows writes`, () => {
      const { m, mm, cpu } = setup(g);
      attachCpu(m, cpu);
      const a = vmMmap(mm, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      doUserAddrFault(mm, a, 'write');
      expect(isFault(cpu.translate(BigInt(a), 'write', true))).toBe(false);
      expect(doMprotect(mm, a, 4096, PROT_READ)).toBe(0);
      expect(isFault(cpu.translate(BigInt(a), 'write', true))).toBe(true);
      expect(isFault(cpu.translate(BigInt(a), 'read', true))).toBe(false);
    });

    it(`${g}: fork write-protects the parent and flushes its TLB (flush_tlb_mm in dup_mmap)`, () => {
      const { m, mm, cpu } = setup(g);
      attachCpu(m, cpu);
      const a = vmMmap(mm, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      doUserAddrFault(mm, a, 'write');
      expect(isFault(cpu.translate(BigInt(a), 'write', true))).toBe(false);
      dupMm(mm);
      const r = lookupEntry(mm, a);
      expect(m.bits.pteWrite(m.pgtable.lo(r.ptr), m.pgtable.hi(r.ptr))).toBe(false);
      expect(isFault(cpu.translate(BigInt(a), 'write', true))).toBe(true);
    });
  }
});
