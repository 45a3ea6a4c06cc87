/**
 * The x86-64 architecture module: 4-level and 5-level (LA57) paging.
 *
 * Two views of one entry, kept apart on purpose:
 *  - linux.ts: what Linux believes (pgtable.h predicates and constructors);
 *  - fields.ts: what the SDM says the hardware reads (formats, reserved bits).
 */
import type { Geometry } from '../geometry';
import type { ArchBits } from '../types';
import { decode, encode, type X86PagingConfig } from './fields';
import * as L from './linux';

export {
  _PAGE_BIT_PRESENT,
  _PAGE_BIT_RW,
  _PAGE_BIT_USER,
  _PAGE_BIT_PWT,
  _PAGE_BIT_PCD,
  _PAGE_BIT_ACCESSED,
  _PAGE_BIT_DIRTY,
  _PAGE_BIT_PSE,
  _PAGE_BIT_PAT,
  _PAGE_BIT_GLOBAL,
  _PAGE_BIT_SOFTW1,
  _PAGE_BIT_SOFTW2,
  _PAGE_BIT_SOFTW3,
  _PAGE_BIT_PAT_LARGE,
  _PAGE_BIT_SOFTW4,
  _PAGE_BIT_SOFTW5,
  _PAGE_BIT_PKEY_BIT0,
  _PAGE_BIT_NX,
  _PAGE_BIT_SPECIAL,
  _PAGE_BIT_UFFD_WP,
  _PAGE_BIT_SOFT_DIRTY,
  _PAGE_BIT_SAVED_DIRTY,
  _PAGE_BIT_PROTNONE,
  _PAGE_PRESENT,
  _PAGE_RW,
  _PAGE_USER,
  _PAGE_PWT,
  _PAGE_PCD,
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_PSE,
  _PAGE_PAT,
  _PAGE_GLOBAL,
  _PAGE_SOFTW1,
  _PAGE_SOFTW2,
  _PAGE_SOFTW3,
  _PAGE_SOFTW4,
  _PAGE_PAT_LARGE,
  _PAGE_SPECIAL,
  _PAGE_UFFD_WP,
  _PAGE_SOFT_DIRTY,
  _PAGE_SAVED_DIRTY,
  _PAGE_DIRTY_BITS,
  _PAGE_PKEY_MASK,
  _PAGE_NX,
  _PAGE_PROTNONE,
  _PAGE_KNL_ERRATUM_MASK,
  _PAGE_CACHE_MASK,
  _PAGE_TABLE,
  _KERNPG_TABLE,
  PAGE_NONE,
  PTE_PFN_MASK,
  PTE_FLAGS_MASK,
  PHYSICAL_PMD_PAGE_MASK,
  PHYSICAL_PUD_PAGE_MASK,
  SWP_TYPE_BITS,
  SWP_OFFSET_FIRST_BIT,
  SWP_OFFSET_SHIFT,
  SWP_OFFSET_BITS,
  _PAGE_PRESENT_LO,
  _PAGE_RW_LO,
  _PAGE_USER_LO,
  _PAGE_PWT_LO,
  _PAGE_PCD_LO,
  _PAGE_ACCESSED_LO,
  _PAGE_DIRTY_LO,
  _PAGE_PSE_LO,
  _PAGE_PAT_LO,
  _PAGE_GLOBAL_LO,
  _PAGE_PROTNONE_LO,
  _PAGE_SPECIAL_LO,
  _PAGE_PAT_LARGE_LO,
  _PAGE_SAVED_DIRTY_HI,
  _PAGE_PKEY_MASK_HI,
  _PAGE_NX_HI,
  PTE_PFN_MASK_LO,
  PTE_PFN_MASK_HI,
  PTE_FLAGS_MASK_LO,
  PTE_FLAGS_MASK_HI,
  PHYSICAL_PMD_PAGE_MASK_LO,
  PHYSICAL_PUD_PAGE_MASK_LO,
} from './linux';
export { decode, encode, x86Formats, DEFAULT_X86_CONFIG } from './fields';
export type { X86PagingConfig, X86Format, X86FormatId, FieldSpec } from './fields';

export interface X86Options {
  /** CPUID.80000008H:EAX[7:0], 36..52 (default 52): where the reserved address bits start. */
  maxPhyAddr?: number;
  /** IA32_EFER.NXE (default true): without it XD is reserved and Linux sets no NX bit. */
  nxe?: boolean;
}

/** The x86-64 ArchBits for a 4-level or 5-level geometry. */
export function createX86Bits(geometry: Geometry, opts: X86Options = {}): ArchBits {
  if (geometry.arch !== 'x86_64') {
    throw new RangeError(`createX86Bits needs an x86_64 geometry, got ${geometry.name}`);
  }
  const maxPhyAddr = opts.maxPhyAddr ?? 52;
  if (!Number.isInteger(maxPhyAddr) || maxPhyAddr < 36 || maxPhyAddr > 52) {
    throw new RangeError(`maxPhyAddr ${maxPhyAddr} is out of range: expected an integer 36..52`);
  }
  const nxe = opts.nxe ?? true;
  const cfg: X86PagingConfig = Object.freeze({ maxPhyAddr, nxe, la57: geometry.pgtableLevels === 5 });

  return Object.freeze({
    geometry,
    physAddrBits: maxPhyAddr,

    // The predicates are module functions: no closure, no allocation per call.
    pgdNone: L.pgdNone,
    pgdBad: L.pgdBad,
    pgdPresent: L.pgdPresent,
    p4dNone: L.p4dNone,
    p4dBad: L.p4dBad,
    p4dPresent: L.p4dPresent,
    pudNone: L.pudNone,
    pudBad: L.pudBad,
    pudPresent: L.pudPresent,
    pudLeaf: L.pudLeaf,
    pmdNone: L.pmdNone,
    pmdBad: L.pmdBad,
    pmdPresent: L.pmdPresent,
    pmdLeaf: L.pmdLeaf,
    pmdTransHuge: L.pmdTransHuge,
    pteNone: L.pteNone,
    ptePresent: L.ptePresent,
    tableAddr: L.tableAddr,
    leafPfn: L.leafPfn,
    leafPfnLow: L.leafPfnLow,
    leafPfnHigh: L.leafPfnHigh,

    pteWrite: L.pteWrite,
    pteDirty: L.pteDirty,
    pteYoung: L.pteYoung,
    pteExec: L.pteExec,
    pteUser: L.pteUser,
    pteGlobal: L.pteGlobal,
    pteSpecial: L.pteSpecial,

    pgprot: (prot) => L.pgprot(prot, nxe),
    pfnPte: (pfn, prot) => L.pfnPte(pfn, prot, nxe),
    pfnHuge: (level, pfn, prot) => L.pfnHuge(level, pfn, prot, nxe),
    mkTable: L.mkTable,
    mkSwapPte: L.mkSwapPte,
    swapType: L.swapType,
    swapOffset: L.swapOffset,
    pteModify: L.pteModify,
    pteMkspecial: L.pteMkspecial,
    pteModifyProt: (pte, newprot) => L.pteModifyProt(pte, newprot, nxe),

    decode: (value, hwLevel) => decode(value, hwLevel, cfg),
    encode: (kind, hwLevel, fields) => encode(kind, hwLevel, fields, cfg),
  } satisfies ArchBits);
}
