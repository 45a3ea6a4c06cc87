import { describe, expect, it } from 'vitest';
import { PhysMem } from '../../src/mem/physmem';
import { Cpu, createCpu } from '../../src/arch/cpu';
import { WalkResult, isFault, type AccessKind, type TranslateOutcome } from '../../src/arch/mmu-types';

function paOf(t: TranslateOutcome): bigint | string {
  return isFault(t) ? `${t.fault.kind} code 0x${t.fault.code.toString(16)}` : t.pa;
}

// ---------------------------------------------------------------------------------------------------
// x86-64, 4-level, hand-written tables (SDM Vol.3A Table 4-15…4-20 bit positions):
//   PML4 0x1000 → PDPT 0x2000 → PD 0x3000; PD[2] → PT 0x4000 (VA 0x400000-0x5fffff)
//   table entries 0x27 = P | R/W | U/S | A
//   PT[0] VA 0x400000 → 0x100000, 0x67 = P RW US A D (user, non-global)
//   PT[1] VA 0x401000 → 0x101000, 0x163 = P RW A D G (supervisor, global)
//   PT[2] VA 0x402000 → 0x102000, 0x27 = P RW US A (user, clean: D = 0)
//   PT[3] VA 0x403000 → 0x103000, 0x3800000000000067 = user, PKEY 7 (bits 62:59)
// ---------------------------------------------------------------------------------------------------
const CR0 = 0x8001_0001n; // PG | WP | PE
const CR4 = 0xa0n; // PAE | PGE
const EFER = 0xd00n; // LME | LMA | NXE

function x86Machine(regs: Record<string, bigint> = {}, opts: { walkCache?: boolean } = {}) {
  const mem = new PhysMem({ size: 4 * 2 ** 20 });
  mem.write64(0x1000, 0x2027n);
  mem.write64(0x2000, 0x3027n);
  mem.write64(0x3000 + 2 * 8, 0x4027n);
  mem.write64(0x4000, 0x10_0067n);
  mem.write64(0x4008, 0x10_1163n);
  mem.write64(0x4010, 0x10_2027n);
  mem.write64(0x4018, 0x3800_0000_0010_3067n);
  const cpu = createCpu('x86_64', mem, { cr0: CR0, cr3: 0x1000n, cr4: CR4, efer: EFER, ...regs }, opts);
  return { mem, cpu };
}

const rd = (cpu: Cpu, va: bigint, kind: AccessKind = 'read', user = false) => paOf(cpu.translate(va, kind, user));

describe('x86-64 TLB invalidation (SDM Vol.3A 4.10.4)', () => {
  it('SDM 4.10.4.3: a PTE changed without INVLPG still translates the old way; INVLPG makes the walk see the new one', () => {
    const { mem, cpu } = x86Machine();
    expect(rd(cpu, 0x400123n)).toBe(0x100123n);
    mem.write64(0x4000, 0x20_0067n); // remap to 0x200000, no INVLPG
    expect(rd(cpu, 0x400123n)).toBe(0x100123n); // stale TLB hit
    mem.write64(0x4000, 0n); // even not-present: the TLB still holds the translation
    expect(rd(cpu, 0x400123n)).toBe(0x100123n);
    mem.write64(0x4000, 0x20_0067n);
    cpu.invlpg(0x400fffn); // any address in the page
    expect(rd(cpu, 0x400123n)).toBe(0x200123n);
    expect(cpu.statistics()).toMatchObject({ accesses: 4, hits: 2, misses: 2, walks: 2 });
  });

  it('SDM 4.10.4.1: MOV to CR3 invalidates non-global entries; global (G = 1, CR4.PGE = 1) entries survive', () => {
    const { mem, cpu } = x86Machine();
    rd(cpu, 0x400000n);
    rd(cpu, 0x401000n);
    mem.write64(0x4000, 0x20_0067n);
    mem.write64(0x4008, 0x20_1163n);
    cpu.movToCr3(0x1000n);
    expect(rd(cpu, 0x400000n)).toBe(0x200000n); // flushed: walked again
    expect(rd(cpu, 0x401000n)).toBe(0x101000n); // global: the stale entry survives
    cpu.invlpg(0x401000n); // INVLPG removes global entries too
    expect(rd(cpu, 0x401000n)).toBe(0x201000n);
  });

  it('SDM 4.10.2.4: with CR4.PGE = 0 the G bit is ignored, so MOV to CR3 flushes that entry too', () => {
    const { mem, cpu } = x86Machine({ cr4: 0x20n });
    rd(cpu, 0x401000n);
    mem.write64(0x4008, 0x20_1163n);
    cpu.movToCr3(0x1000n);
    expect(rd(cpu, 0x401000n)).toBe(0x201000n);
  });

  it('SDM 4.10.4.1 MOV to CR4: changing PGE invalidates global entries too', () => {
    const { mem, cpu } = x86Machine();
    rd(cpu, 0x401000n);
    mem.write64(0x4008, 0x20_1163n);
    cpu.setRegister('cr4', CR4); // no change: nothing flushed
    expect(rd(cpu, 0x401000n)).toBe(0x101000n);
    cpu.setRegister('cr4', 0x20n); // PGE 1 → 0
    expect(rd(cpu, 0x401000n)).toBe(0x201000n);
  });

  it('SDM 4.10.1 / 4.10.4.1: PCID-tagged entries survive a CR3 switch to another PCID; bit 63 = 1 skips the flush', () => {
    const PCIDE = 1n << 17n;
    const { mem, cpu } = x86Machine({ cr3: 0x1001n, cr4: CR4 | PCIDE });
    expect(cpu.currentAsid).toBe(1);
    rd(cpu, 0x400000n); // PCID 1
    mem.write64(0x4000, 0x20_0067n);
    cpu.movToCr3(0x1002n); // PCID 2: its own (empty) context is flushed, PCID 1 is kept
    expect(rd(cpu, 0x400000n)).toBe(0x200000n); // PCID 2 walks
    mem.write64(0x4000, 0x30_0067n);
    cpu.movToCr3(0x1001n | (1n << 63n)); // back to PCID 1 without a flush
    expect(cpu.getRegister('cr3')).toBe(0x1001n); // bit 63 is not stored
    expect(rd(cpu, 0x400000n)).toBe(0x100000n); // PCID 1's entry from before
    cpu.movToCr3(0x1002n | (1n << 63n));
    expect(rd(cpu, 0x400000n)).toBe(0x200000n); // PCID 2's entry kept too
    cpu.movToCr3(0x1001n); // bit 63 = 0: PCID 1's non-global entries go
    expect(rd(cpu, 0x400000n)).toBe(0x300000n);
  });

  it('SDM 4.10.4.1 INVPCID: type 0 individual address, 1 single context, 2 all incl. global, 3 all but global', () => {
    const PCIDE = 1n << 17n;
    const { mem, cpu } = x86Machine({ cr3: 0x1001n, cr4: CR4 | PCIDE });
    const fillAll = () => {
      mem.write64(0x4000, 0x10_0067n);
      mem.write64(0x4008, 0x10_1163n);
      mem.write64(0x4010, 0x10_2067n);
      cpu.invpcid(2, 0);
      for (const va of [0x400000n, 0x401000n, 0x402000n]) rd(cpu, va);
      mem.write64(0x4000, 0x20_0067n);
      mem.write64(0x4008, 0x20_1163n);
      mem.write64(0x4010, 0x20_2067n);
    };
    const now = () => [0x400000n, 0x401000n, 0x402000n].map((va) => rd(cpu, va));
    fillAll();
    cpu.invpcid(0, 1, 0x400000n);
    expect(now()).toEqual([0x200000n, 0x101000n, 0x102000n]);
    fillAll();
    cpu.invpcid(0, 1, 0x401000n); // a global translation: type 0 need not remove it
    expect(now()).toEqual([0x100000n, 0x101000n, 0x102000n]);
    fillAll();
    cpu.invpcid(1, 2); // another PCID: nothing of PCID 1 goes
    expect(now()).toEqual([0x100000n, 0x101000n, 0x102000n]);
    cpu.invpcid(1, 1);
    expect(now()).toEqual([0x200000n, 0x101000n, 0x202000n]);
    fillAll();
    cpu.invpcid(3, 0);
    expect(now()).toEqual([0x200000n, 0x101000n, 0x202000n]);
    fillAll();
    cpu.invpcid(2, 0);
    expect(now()).toEqual([0x200000n, 0x201000n, 0x202000n]);
    expect(() => cpu.invpcid(4, 0)).toThrow(/type 4/);
    expect(() => cpu.invpcid(1, 0x1000)).toThrow(/12 bits/);
    expect(() => cpu.invpcid(0, 1, 0x0000_8000_0000_0000n)).toThrow(/not canonical/);
  });

  it('INVPCID with CR4.PCIDE = 0 and a non-zero PCID is #GP (SDM INVPCID operation)', () => {
    const { cpu } = x86Machine();
    expect(() => cpu.invpcid(1, 3)).toThrow(/PCIDE = 0/);
  });
});

describe('x86-64 TLB hits: what is cached and what is re-checked (SDM Vol.3A 4.6, 4.8, 4.10.2.2)', () => {
  it('SDM 4.8: a write through an entry with D = 0 walks again, and the walk sets D in memory', () => {
    const { mem, cpu } = x86Machine();
    expect(rd(cpu, 0x402000n, 'read', true)).toBe(0x102000n);
    expect(rd(cpu, 0x402000n, 'read', true)).toBe(0x102000n); // hit
    expect(cpu.statistics().walks).toBe(1);
    expect(rd(cpu, 0x402000n, 'write', true)).toBe(0x102000n);
    expect(cpu.statistics()).toMatchObject({ walks: 2, dirtyWalks: 1, hits: 2 });
    expect(mem.read64(0x4010)).toBe(0x10_2067n); // D (bit 6) set
    expect(rd(cpu, 0x402000n, 'write', true)).toBe(0x102000n); // now a plain hit
    expect(cpu.statistics().walks).toBe(2);
  });

  it('SDM 4.6.1: SMAP is checked on a hit with the current CR4 (a change of SMAP flushes nothing); the #PF invalidates the entry (4.10.4.1)', () => {
    const { mem, cpu } = x86Machine();
    expect(rd(cpu, 0x400000n)).toBe(0x100000n); // supervisor read of a user page, SMAP off
    mem.write64(0x4000, 0x20_0067n);
    cpu.setRegister('cr4', CR4 | (1n << 21n)); // SMAP on
    expect(rd(cpu, 0x400000n)).toBe('protection code 0x1'); // P = 1, read, supervisor
    expect(cpu.statistics()).toMatchObject({ faultsFromTlb: 1, faultsByKind: { protection: 1 } });
    cpu.setRegister('rflags', 0x4_0002n); // AC = 1: SMAP allows it; the entry is gone, so it walks
    expect(rd(cpu, 0x400000n)).toBe(0x200000n);
  });

  it('SDM 4.6.1: CR0.WP is applied at the time of the access, not cached', () => {
    const { mem, cpu } = x86Machine();
    mem.write64(0x4000, 0x10_0065n); // user, read-only, D = 1
    expect(rd(cpu, 0x400000n, 'write')).toBe('protection code 0x3'); // WP = 1: P | W
    cpu.setRegister('cr0', CR0 & ~(1n << 16n));
    expect(rd(cpu, 0x400000n, 'write')).toBe(0x100000n); // WP = 0: supervisor may write
    expect(rd(cpu, 0x400000n, 'write')).toBe(0x100000n); // and again from the TLB
    cpu.setRegister('cr0', CR0);
    expect(rd(cpu, 0x400000n, 'write')).toBe('protection code 0x3');
    expect(cpu.statistics().faultsFromTlb).toBe(1);
  });

  it('SDM 4.6.2: PKRU is checked on a hit (AD for data, WD for writes; fetches ignore it); PK is bit 5 of the error code', () => {
    const { cpu } = x86Machine({ cr4: CR4 | (1n << 22n) }); // PKE
    expect(rd(cpu, 0x403000n, 'read', true)).toBe(0x103000n);
    cpu.setRegister('pkru', 2n << 14n); // key 7: WD (bit 15)
    expect(rd(cpu, 0x403000n, 'read', true)).toBe(0x103000n);
    expect(rd(cpu, 0x403000n, 'write', true)).toBe('protection code 0x27'); // P | W | U | PK
    rd(cpu, 0x403000n, 'read', true);
    cpu.setRegister('pkru', 1n << 14n); // key 7: AD
    expect(rd(cpu, 0x403000n, 'read', true)).toBe('protection code 0x25'); // P | U | PK
    expect(rd(cpu, 0x403000n, 'exec', true)).toBe(0x103000n);
  });

  it('statistics: walks by level, fills by page size, memory references per walk', () => {
    const { cpu } = x86Machine();
    rd(cpu, 0x400000n);
    rd(cpu, 0x401000n);
    rd(cpu, 0x400000n);
    rd(cpu, 0x7000_0000n); // PDPT[1] empty: not present at level 3
    const s = cpu.statistics();
    expect(s.walksByLevel).toEqual({ '1': 2, '3': 1 });
    expect(s.fillsByPageSize).toEqual({ '4096': 2 });
    expect(s.faultsByKind).toEqual({ not_present: 1 });
    expect(s.memRefs).toBe(4 + 4 + 2);
    expect(s.memRefsPerWalk).toBeCloseTo(10 / 3);
    expect(s.hitRate).toBe(0.25);
  });

  it('SDM 4.10.3: with paging-structure caches a second page of the same PT saves the PML4E, PDPTE and PDE reads', () => {
    const { cpu } = x86Machine({}, { walkCache: true });
    rd(cpu, 0x400000n);
    rd(cpu, 0x401000n);
    rd(cpu, 0x402000n);
    const s = cpu.statistics();
    expect(s.memRefs).toBe(12);
    expect(s.memRefsEffective).toBe(4 + 1 + 1);
    expect(s.walkCacheHitsByLevel).toEqual({ '2': 2 });
    // INVLPG drops every paging-structure-cache entry of the current PCID (SDM 4.10.4.1)
    cpu.invlpg(0x402000n);
    rd(cpu, 0x402000n);
    expect(cpu.statistics().memRefsEffective).toBe(6 + 4);
  });

  it('the hit result carries the cached translation; a miss carries the walk', () => {
    const { cpu } = x86Machine();
    const out = new WalkResult();
    cpu.access(0, 0x400abc, 'read', true, out);
    expect(out.memRefs).toBe(4);
    cpu.access(0, 0x400abc, 'read', true, out);
    expect(out).toMatchObject({ fault: null, pa: 0x100abc, pageBase: 0x100000, pageSize: 4096, level: 1, memRefs: 0, dirty: true });
  });
});

// ---------------------------------------------------------------------------------------------------
// ARM64, 4K granule, 48-bit VA (Arm ARM D8.2, D8.3 descriptor bits), memory at 0x40000000:
//   TTBR0 → L0 0x40001000 → L1 0x40002000 → L2 0x40003000; L2[2] → L3 0x40004000 (VA 0x400000-)
//   table descriptors: addr | 0b11. Pages: addr | 0b11 | AP[1] EL0 (0x40) | SH inner (0x300) | AF (0x400) | nG (0x800)
//   TCR_EL1: T0SZ = T1SZ = 16, TG0 = 4K (00), TG1 = 4K (10), IPS = 48-bit (101), EPD1 = 1.
// ---------------------------------------------------------------------------------------------------
const TCR = 0x0000_0005_8090_0010n; // EPD1 (bit 23) | TG1=10 | T1SZ=16 | T0SZ=16 | IPS=5
const PAGE_NG = 0xf43n;
const PAGE_G = 0x743n;
const CONT = 1n << 52n;

function armMachine(regs: Record<string, bigint> = {}, opts: { walkCache?: boolean } = {}) {
  const mem = new PhysMem({ size: 4 * 2 ** 20, physBase: 0x4000_0000 });
  mem.write64(0x4000_1000, 0x4000_2003n);
  mem.write64(0x4000_2000, 0x4000_3003n);
  mem.write64(0x4000_3000 + 2 * 8, 0x4000_4003n);
  for (let i = 0; i < 8; i++) mem.write64(0x4000_4000 + i * 8, 0x4010_0000n + BigInt(i) * 0x1000n + PAGE_NG);
  const cpu = createCpu('arm64', mem, { tcr_el1: TCR, ttbr0_el1: 0x4000_1000n | (1n << 48n), mair_el1: 0xffn, sctlr_el1: 1n, ...regs }, opts);
  return { mem, cpu };
}
const asidTtbr = (asid: bigint) => 0x4000_1000n | (asid << 48n);

describe('ARM64 TLB maintenance (Arm ARM D8.13, D8.16)', () => {
  it('D8.16: a descriptor changed without TLBI still translates the old way; TLBI VAE1 for the page and ASID makes the walk see the new one', () => {
    const { mem, cpu } = armMachine();
    expect(rd(cpu, 0x400010n)).toBe(0x4010_0010n);
    mem.write64(0x4000_4000, 0x4020_0000n + PAGE_NG);
    expect(rd(cpu, 0x400010n)).toBe(0x4010_0010n);
    cpu.tlbi('VAE1IS', (2n << 48n) | 0x400n); // another ASID: not this entry
    expect(rd(cpu, 0x400010n)).toBe(0x4010_0010n);
    cpu.tlbi('VAE1IS', (1n << 48n) | 0x400n); // Xt = ASID[63:48] | VA[55:12]
    expect(rd(cpu, 0x400010n)).toBe(0x4020_0010n);
  });

  it('D8.13.2: non-global entries are tagged with the ASID of TTBR0 (TCR.A1 = 0); a switch to another ASID keeps them', () => {
    const { mem, cpu } = armMachine();
    rd(cpu, 0x400000n); // ASID 1
    mem.write64(0x4000_4000, 0x4020_0000n + PAGE_NG);
    cpu.setRegister('ttbr0_el1', asidTtbr(2n)); // no invalidation on a TTBR write
    expect(rd(cpu, 0x400000n)).toBe(0x4020_0000n); // ASID 2 walks
    cpu.setRegister('ttbr0_el1', asidTtbr(1n));
    expect(rd(cpu, 0x400000n)).toBe(0x4010_0000n); // ASID 1's entry survived
    cpu.tlbi('ASIDE1', 1n << 48n);
    expect(rd(cpu, 0x400000n)).toBe(0x4020_0000n);
  });

  it('D8.13.2: TCR_EL1.AS = 0 uses 8-bit ASIDs: TTBR0 ASID 0x101 is ASID 1', () => {
    const { cpu } = armMachine({ ttbr0_el1: asidTtbr(0x101n) });
    expect(cpu.currentAsid).toBe(1);
    cpu.setRegister('tcr_el1', TCR | (1n << 36n));
    expect(cpu.currentAsid).toBe(0x101);
  });

  it('D8.13: global entries (nG = 0) hit under every ASID; ASIDE1 keeps them, VAAE1 and VMALLE1 remove them', () => {
    const { mem, cpu } = armMachine();
    mem.write64(0x4000_4008, 0x4010_1000n + PAGE_G);
    rd(cpu, 0x401000n);
    mem.write64(0x4000_4008, 0x4020_1000n + PAGE_G);
    cpu.setRegister('ttbr0_el1', asidTtbr(7n));
    expect(rd(cpu, 0x401000n)).toBe(0x4010_1000n);
    cpu.tlbi('ASIDE1', 7n << 48n);
    expect(rd(cpu, 0x401000n)).toBe(0x4010_1000n);
    cpu.tlbi('VAAE1', 0x401n);
    expect(rd(cpu, 0x401000n)).toBe(0x4020_1000n);
    mem.write64(0x4000_4008, 0x4030_1000n + PAGE_G);
    cpu.tlbi('VMALLE1');
    expect(rd(cpu, 0x401000n)).toBe(0x4030_1000n);
  });

  it('D8.16.2 range TLBI: RVAE1 with TG = 4K, SCALE 0, NUM 1 covers (1 + 1) × 2^1 = 4 pages from BaseADDR', () => {
    const { mem, cpu } = armMachine();
    for (let i = 0; i < 6; i++) rd(cpu, 0x400000n + BigInt(i) * 0x1000n);
    for (let i = 0; i < 6; i++) mem.write64(0x4000_4000 + i * 8, 0x4020_0000n + BigInt(i) * 0x1000n + PAGE_NG);
    // Xt: ASID 1 [63:48], TG 01 [47:46], SCALE 0 [45:44], NUM 1 [43:39], TTL 0, BaseADDR 0x401 (VA 0x401000)
    const xt = (1n << 48n) | (1n << 46n) | (1n << 39n) | 0x401n;
    expect(xt).toBe(0x0001_4080_0000_0401n);
    cpu.tlbi('RVAE1IS', xt);
    const now = [0, 1, 2, 3, 4, 5].map((i) => rd(cpu, 0x400000n + BigInt(i) * 0x1000n));
    expect(now).toEqual([0x4010_0000n, 0x4020_1000n, 0x4020_2000n, 0x4020_3000n, 0x4020_4000n, 0x4010_5000n]);
  });

  it('D8.16.2: a range TLBI with TG = 0b00 (reserved) invalidates nothing', () => {
    const { mem, cpu } = armMachine();
    rd(cpu, 0x400000n);
    mem.write64(0x4000_4000, 0x4020_0000n + PAGE_NG);
    cpu.tlbi('RVAAE1', (1n << 39n) | 0x400n);
    expect(rd(cpu, 0x400000n)).toBe(0x4010_0000n);
  });

  it('D8.16: the last-level forms (VALE1) need not invalidate walk caches; VAE1 does', () => {
    const { cpu } = armMachine({}, { walkCache: true });
    rd(cpu, 0x400000n);
    cpu.tlbi('VALE1', (1n << 48n) | 0x400n);
    rd(cpu, 0x400000n); // TLB miss, walk cache hit at level 2: only the level 3 read is needed
    expect(cpu.statistics()).toMatchObject({ walks: 2, memRefs: 8, memRefsEffective: 5, walkCacheHitsByLevel: { '2': 1 } });
    cpu.tlbi('VAE1', (1n << 48n) | 0x400n);
    rd(cpu, 0x400000n);
    expect(cpu.statistics()).toMatchObject({ walks: 3, memRefs: 12, memRefsEffective: 9 });
  });

  it('D8.6.1: one TLB entry covers a 16-descriptor contiguous run (64K with the 4K granule)', () => {
    const { mem, cpu } = armMachine();
    for (let i = 0; i < 16; i++) mem.write64(0x4000_4000 + i * 8, 0x4010_0000n + BigInt(i) * 0x1000n + PAGE_NG + CONT);
    expect(rd(cpu, 0x403456n)).toBe(0x4010_3456n);
    expect(rd(cpu, 0x40f004n)).toBe(0x4010_f004n); // a TLB hit: no second walk
    expect(rd(cpu, 0x400000n)).toBe(0x4010_0000n);
    const s = cpu.statistics();
    expect(s).toMatchObject({ walks: 1, hits: 2, fillsByPageSize: { '65536': 1 } });
    cpu.tlbi('VALE1', (1n << 48n) | 0x40en); // any page of the run removes the whole entry
    rd(cpu, 0x400000n);
    expect(cpu.statistics().walks).toBe(2);
  });

  it('D8.4.1.3: PSTATE.PAN is applied on a hit: an EL1 read of an EL0-accessible page faults, permission at level 3 (DFSC 0b001111)', () => {
    const { cpu } = armMachine();
    expect(rd(cpu, 0x400000n)).toBe(0x4010_0000n);
    cpu.setRegister('pstate_pan', 1n);
    expect(rd(cpu, 0x400000n)).toBe('permission code 0xf');
    expect(rd(cpu, 0x400000n, 'read', true)).toBe(0x4010_0000n); // PAN does not affect EL0
    expect(cpu.statistics().faultsFromTlb).toBe(1);
  });

  it('D8.8: with TBI0 the top byte is ignored (tagged pointers share one entry); without it such a VA faults and never hits', () => {
    const { cpu } = armMachine({ tcr_el1: TCR | (1n << 37n) });
    expect(rd(cpu, 0x400000n)).toBe(0x4010_0000n);
    expect(rd(cpu, 0x5a00_0000_0040_0000n)).toBe(0x4010_0000n);
    expect(cpu.statistics().walks).toBe(1);
    const plain = armMachine().cpu;
    rd(plain, 0x400000n);
    expect(rd(plain, 0x5a00_0000_0040_0000n)).toMatch(/translation/);
  });

  it('D8.4.6: with HA/HD, a write to a clean DBM page walks and clears AP[2] (the dirty state)', () => {
    const DBM = 1n << 51n;
    const AP2 = 0x80n;
    const { mem, cpu } = armMachine({ tcr_el1: TCR | (1n << 39n) | (1n << 40n) });
    mem.write64(0x4000_4000, 0x4010_0000n + PAGE_NG + DBM + AP2);
    rd(cpu, 0x400000n, 'read', true);
    rd(cpu, 0x400000n, 'write', true);
    expect(cpu.statistics()).toMatchObject({ walks: 2, dirtyWalks: 1 });
    expect(mem.read64(0x4000_4000)).toBe(0x4010_0000n + PAGE_NG + DBM);
    rd(cpu, 0x400000n, 'write', true);
    expect(cpu.statistics().walks).toBe(2);
  });

  it('TLBI names outside the modelled set are refused; x86 instructions on an ARM CPU too', () => {
    const { cpu } = armMachine();
    expect(() => cpu.tlbi('ALLE2')).toThrow(/not a modelled/);
    expect(() => cpu.invlpg(0n)).toThrow(/x86-64 instruction/);
  });
});
