/** The architecture layer's surface: geometry, the ArchBits contract, the folding-aware Pgtable. */
import type { Geometry } from './geometry';
import type { ArchBits } from './types';
import { createX86Bits } from './x86_64/index';
import { createArm64Bits } from './arm64/index';

export * from './geometry';
export * from './types';
export { Pgtable, BadTablePointerError } from './pgtable';
export { createX86Bits } from './x86_64/index';
export { createArm64Bits } from './arm64/index';

export interface ArchOptions {
  /** x86-64: CPUID MAXPHYADDR (default 52). */
  readonly maxPhyAddr?: number;
  /** x86-64: EFER.NXE (default true). */
  readonly nxe?: boolean;
}

/** The ArchBits of a geometry: one dispatch, at machine creation, never per entry. */
export function createArchBits(geo: Geometry, opts: ArchOptions = {}): ArchBits {
  return geo.arch === 'x86_64' ? createX86Bits(geo, opts) : createArm64Bits(geo);
}
