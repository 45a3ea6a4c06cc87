/**
 * The ARM64 (AArch64, VMSAv8-64 stage 1) architecture module: Linux 6.18's view of the entries
 * (./linux) joined with the Arm ARM descriptor formats (./fields), bound to one geometry.
 *
 * The geometry fixes the granule and the 52-bit mode: 'lpa' is FEAT_LPA with the 64KB granule,
 * 'lpa2' is FEAT_LPA2 with TCR_EL1.DS = 1 (4KB/16KB), 'none' a 48-bit output address.
 */
import type { Geometry } from '../geometry';
import type { ArchBits } from '../types';
import { Arm64Descriptors } from './fields';
import { createArm64Linux } from './linux';

export * from './linux';
export { Arm64Descriptors, levelShiftOf } from './fields';
export type { Pa52Mode } from './fields';

export function createArm64Bits(geometry: Geometry): ArchBits {
  if (geometry.arch !== 'arm64') throw new RangeError(`createArm64Bits: ${geometry.name} is not an arm64 geometry`);
  const linux = createArm64Linux(geometry);
  const desc = new Arm64Descriptors(geometry.PAGE_SIZE, geometry.pa52);
  return {
    geometry,
    ...linux,
    decode: (value, hwLevel) => desc.decode(value, hwLevel),
    encode: (kind, hwLevel, fields) => desc.encode(kind, hwLevel, fields),
  };
}
