/**
 * mmulab's public library surface. src/cli calls only this.
 */
export * from './mem/index';
export * from './arch/index';
export { splitLeaf, splitSwap } from './arch/split';
export * from './mm/errno';
export * from './mm/locks';
export * from './mm/vm-flags';
export * from './mm/vma';
export * from './mm/mm';
export * from './mm/address-space';
export * from './mm/machine';
export * from './mm/pgalloc';
export * from './mm/huge-memory';
export * from './mm/pte-map';
export * from './walk/pagewalk';
export * from './mm/image';
export * from './walk/count';
export * as pagewalkConformance from './walk/conformance/index';
export * from './mm/free-pgtables';
export * from './walk/pagemap';
export * from './walk/smaps';
export * from './walk/ptdump';
export * from './arch/mmu-types';
export * from './arch/tlb';
export * from './arch/cpu';
export * from './arch/trace';
export * from './mm/elf-core';
export * from './mm/folio';
export * from './mm/rmap';
export * from './mm/mmu-gather';
export * from './mm/memory';
export * from './mm/fault';
export * from './mm/hugetlb';
export * from './mm/mmap';
export * from './mm/gup';
export * from './mm/swap';
export * from './mm/reclaim';
export * from './mm/pt-lookup';
export * from './walk/folio-walk';
export { createX86Mmu } from './arch/x86_64/mmu';
export { createArm64Mmu } from './arch/arm64/mmu';
export * from './mm/tlbflush';
export * from './mm/scenario/schema';
export * from './mm/scenario/run';
export * from './walk/addrmap';
export {
  WalkPool, parallelCountWalk, planCountWalk,
  type ParallelCountResult, type ParallelWalkOptions, type WalkPoolOptions, type WalkChunk, type WalkPlan,
} from './walk/parallel';
