/**
 * The kernel's TLB shootdowns as the ISA instructions a CPU model receives: what
 * arch/x86/mm/tlb.c (flush_tlb_mm_range, flush_tlb_kernel_range) and
 * arch/arm64/include/asm/tlbflush.h (__flush_tlb_range, flush_tlb_mm, flush_tlb_kernel_range)
 * issue for the mm layer's TlbFlushEvents (mmu_gather, mprotect, COW, fork).
 *
 * attachCpu registers one CPU with a Machine; every shootdown is then translated into INVLPG /
 * INVPCID / TLBI operations on it, with Linux's thresholds for when a range becomes a full flush.
 * mmulab models one CPU: a flush for an mm that is not loaded on it (another CR3 / TTBR0) is
 * applied to that mm's PCID / ASID directly, as Linux's deferred flush at the next switch would.
 */
import type { Cpu } from '../arch/cpu';
import type { Machine, TlbFlushEvent } from './machine';

/** tlb_single_page_flush_ceiling (arch/x86/mm/tlb.c): above 33 pages a range flush becomes a full flush. */
export const TLB_SINGLE_PAGE_FLUSH_CEILING = 33;

/** arm64 MAX_DVM_OPS = PTRS_PER_PTE: above it a range becomes flush_tlb_mm / flush_tlb_all (without FEAT_TLBIRANGE). */
function maxDvmOps(m: Machine): number {
  return m.geo.PTRS_PER_PTE;
}

function x86Flush(m: Machine, cpu: Cpu, ev: TlbFlushEvent): void {
  const pcide = (cpu.getRegister('cr4') & (1n << 17n)) !== 0n;
  const cr3 = cpu.getRegister('cr3');
  const loaded = ev.mm !== null && BigInt(ev.mm.pgd) === (cr3 & 0x000f_ffff_ffff_f000n);
  const pcid = ev.mm ? ev.mm.asid & 0xfff : 0;
  const fullMm = (): void => {
    if (pcide) cpu.invpcid(1, pcid);
    else if (loaded) cpu.movToCr3(cr3); // reload CR3: every non-global entry goes
  };
  if (ev.kind === 'all') {
    if (pcide) cpu.invpcid(2, 0);
    else cpu.movToCr4(cpu.getRegister('cr4')); // the PGE toggle's effect: done as a CR4 rewrite
    return;
  }
  const pages = (ev.end - ev.start) / ev.stride;
  if (ev.kind === 'kernel_range') {
    if (pages > TLB_SINGLE_PAGE_FLUSH_CEILING) {
      if (pcide) cpu.invpcid(2, 0);
      else cpu.movToCr4(cpu.getRegister('cr4'));
      return;
    }
    for (let a = ev.start; a < ev.end; a += ev.stride) cpu.invlpg(BigInt(a));
    return;
  }
  if (ev.kind === 'mm' || pages > TLB_SINGLE_PAGE_FLUSH_CEILING) {
    fullMm();
    return;
  }
  for (let a = ev.start; a < ev.end; a += ev.stride) {
    if (loaded) cpu.invlpg(BigInt(a));
    else if (pcide) cpu.invpcid(0, pcid, BigInt(a));
  }
}

function arm64Flush(m: Machine, cpu: Cpu, ev: TlbFlushEvent): void {
  const asid = BigInt(ev.mm ? ev.mm.asid & 0xffff : 0) << 48n;
  const limit = maxDvmOps(m);
  if (ev.kind === 'all') {
    cpu.tlbi('VMALLE1IS');
    return;
  }
  const pages = (ev.end - ev.start) / m.geo.PAGE_SIZE;
  const vaArg = (a: number): bigint => (BigInt.asUintN(56, BigInt(a)) >> 12n) & ((1n << 44n) - 1n);
  if (ev.kind === 'kernel_range') {
    if (pages > limit) {
      cpu.tlbi('VMALLE1IS');
      return;
    }
    for (let a = ev.start; a < ev.end; a += m.geo.PAGE_SIZE) cpu.tlbi('VAALE1IS', vaArg(a));
    return;
  }
  if (ev.kind === 'mm' || pages > limit) {
    cpu.tlbi('ASIDE1IS', asid);
    return;
  }
  const op = ev.lastLevel ? 'VALE1IS' : 'VAE1IS';
  for (let a = ev.start; a < ev.end; a += ev.stride) cpu.tlbi(op, asid | vaArg(a));
}

/** Deliver the machine's TLB shootdowns to cpu; returns a function that detaches it. */
export function attachCpu(m: Machine, cpu: Cpu): () => void {
  const listener = (ev: TlbFlushEvent): void => (m.geo.arch === 'x86_64' ? x86Flush(m, cpu, ev) : arm64Flush(m, cpu, ev));
  m.tlbFlushListeners.push(listener);
  return () => {
    const i = m.tlbFlushListeners.indexOf(listener);
    if (i >= 0) m.tlbFlushListeners.splice(i, 1);
  };
}
