/**
 * Page tables written descriptor by descriptor, for the ptdump tests: every value below is a
 * 64-bit descriptor composed by hand from the manuals' bit positions, so the expected dumps follow
 * from these literals and not from the library's constructors. Only the tables' own addresses come
 * from the frame allocator (they never appear in a dump).
 */
import { Machine, registersFor, saveImage, type GeometryName, type ImageRoot } from '../../src/index';
import { tempDir } from '../mm/image-fixtures';

const TWO_64 = 2 ** 64;

export class HandTables {
  readonly m: Machine;
  constructor(geometry: GeometryName, memSize = 4 * 2 ** 20) {
    this.m = new Machine({ geometry, memSize });
  }
  /** A zeroed table (one granule). */
  table(): number {
    const pa = this.m.allocPgtable();
    if (pa < 0) throw new Error('fixture out of table memory');
    return pa;
  }
  set(table: number, index: number, value: bigint): void {
    this.m.mem.write64(table + index * 8, value);
  }
  /** Save as an image folder whose registers select these roots. */
  save(userRoot: number, kernelRoot: number, dir = tempDir()): string {
    saveImage(dir, this.m, registersFor(this.m, userRoot, kernelRoot));
    return dir;
  }
}

export interface Fixture {
  machine: Machine;
  roots: ImageRoot[];
  /** Save as an image folder (mmulab dump reads these). */
  save(dir?: string): string;
}

function x86Roots(root: number, half: number): ImageRoot[] {
  return [
    { name: 'cr3', table: root, start: 0, end: half },
    { name: 'cr3', table: root, start: TWO_64 - half, end: TWO_64 },
  ];
}

// x86-64 entry bits (SDM Vol.3A Tables 4-15..4-20): P 0x1, R/W 0x2, U/S 0x4, PWT 0x8, PCD 0x10,
// A 0x20, D 0x40, PS/PAT 0x80, G 0x100, PAT(large) 0x1000, PKEY bits 62:59, XD bit 63.
const XD = 0x8000_0000_0000_0000n;

/**
 * x86-64 4-level. User half (PML4[0] → PDPT A → PD B):
 *   PD B[2] → PT C (VA 0x400000): C[0..2] 4K → PA 0x100000, 0x101000, 0x102000 (P RW US A D, XD);
 *     C[3] → PA 0x200000 (same flags: PA break); C[4] → PA 0x201000 with R/W = 0;
 *     C[5] = 0x203060: not present (P = 0) but not empty.
 *   PD B[3]: 2M leaf VA 0x600000 → PA 0x40000000 (P RW US A D PS, executable).
 *   PD B[4] → PT D with R/W = 0 in the PDE: D[0] VA 0x800000 → PA 0x300000 writable in the PTE.
 *   PD B[5] → PT E with XD in the PDE: E[0] VA 0xa00000 → PA 0x400000 (no XD in the PTE);
 *     E[1] VA 0xa01000 → PA 0x401000 with PWT, PAT (bit 7) and protection key 5.
 *   PD B[6] → PT G, B[7] → PT H: G[511] VA 0xdff000 → PA 0x500000, H[0] VA 0xe00000 → PA 0x501000.
 *   PD B[8], B[9]: 2M leaves VA 0x1000000, 0x1200000 → PA 0x40200000, 0x40400000.
 *   PDPT A[1]: 1G leaf VA 0x40000000 → PA 0x80000000 (P RW A D PS G, supervisor, XD).
 * Kernel half: PML4[273] → PDPT F; F[0]: 1G leaf VA 0xffff888000000000 → PA 0 (P RW A D PS G XD).
 */
export function x86Hand4(): Fixture {
  const t = new HandTables('x86_64-4level');
  const R = t.table();
  const A = t.table();
  const B = t.table();
  const C = t.table();
  const D = t.table();
  const E = t.table();
  const F = t.table();
  const G = t.table();
  const H = t.table();
  // _PAGE_TABLE = P RW US A D, as Linux populates user tables (pgd_bad with LA57 wants exactly
  // _KERNPG_TABLE, U/S aside: a table entry without D would be cleared as bad by the walk).
  const tbl = (pa: number) => BigInt(pa) | 0x67n;
  t.set(R, 0, tbl(A));
  t.set(A, 0, tbl(B));
  t.set(B, 2, tbl(C));
  t.set(C, 0, 0x8000_0000_0010_0067n);
  t.set(C, 1, 0x8000_0000_0010_1067n);
  t.set(C, 2, 0x8000_0000_0010_2067n);
  t.set(C, 3, 0x8000_0000_0020_0067n);
  t.set(C, 4, 0x8000_0000_0020_1065n);
  t.set(C, 5, 0x0000_0000_0020_3060n);
  t.set(B, 3, 0x0000_0000_4000_00e7n);
  t.set(B, 4, BigInt(D) | 0x65n); // P US A D, R/W = 0
  t.set(D, 0, 0x8000_0000_0030_0067n);
  t.set(B, 5, BigInt(E) | 0x67n | XD);
  t.set(E, 0, 0x0000_0000_0040_0067n);
  t.set(E, 1, 0x2800_0000_0040_10efn); // pkey 5 = bits 62:59 = 0b0101; PAT 0x80, PWT 0x8
  t.set(B, 6, tbl(G));
  t.set(B, 7, tbl(H));
  t.set(G, 511, 0x8000_0000_0050_0067n);
  t.set(H, 0, 0x8000_0000_0050_1067n);
  t.set(B, 8, 0x0000_0000_4020_00e7n);
  t.set(B, 9, 0x0000_0000_4040_00e7n);
  t.set(A, 1, 0x8000_0000_8000_01e3n);
  t.set(R, 273, BigInt(F) | 0x63n); // P RW A D (kernel table)
  t.set(F, 0, 0x8000_0000_0000_01e3n);
  return { machine: t.m, roots: x86Roots(R, 2 ** 47), save: (dir) => t.save(R, R, dir) };
}

/**
 * x86-64 5-level (LA57). PML5[0] → PML4[0] → PDPT[0] → PD B; B[2] → PT C: C[0], C[1] 4K at VA
 * 0x400000 → PA 0x100000, 0x101000 (P RW US A D XD). Kernel: PML5[273] → PML4 K4; K4[0] → PDPT K3;
 * K3[0]: 1G leaf VA 0xff11000000000000 → PA 0 (P RW A D PS G XD).
 */
export function x86Hand5(): Fixture {
  const t = new HandTables('x86_64-5level');
  const R = t.table();
  const P4 = t.table();
  const A = t.table();
  const B = t.table();
  const C = t.table();
  const K4 = t.table();
  const K3 = t.table();
  const tbl = (pa: number) => BigInt(pa) | 0x67n;
  t.set(R, 0, tbl(P4));
  t.set(P4, 0, tbl(A));
  t.set(A, 0, tbl(B));
  t.set(B, 2, tbl(C));
  t.set(C, 0, 0x8000_0000_0010_0067n);
  t.set(C, 1, 0x8000_0000_0010_1067n);
  t.set(R, 273, BigInt(K4) | 0x63n);
  t.set(K4, 0, BigInt(K3) | 0x63n);
  t.set(K3, 0, 0x8000_0000_0000_01e3n);
  return { machine: t.m, roots: x86Roots(R, 2 ** 56), save: (dir) => t.save(R, R, dir) };
}

// ARM64 stage 1 descriptor bits (Arm ARM D8.3): bits[1:0] 0b11 table/page, 0b01 block; AttrIndx
// 4:2; AP 7:6; SH 9:8; AF 10; nG 11; DBM 51; Contiguous 52; PXN 53; UXN 54. Table descriptors:
// PXNTable 59, UXNTable 60, APTable 62:61.

function armRoots(r0: number, r1: number, vaBits: number): ImageRoot[] {
  return [
    { name: 'ttbr0_el1', table: r0, start: 0, end: 2 ** vaBits },
    { name: 'ttbr1_el1', table: r1, start: TWO_64 - 2 ** vaBits, end: TWO_64 },
  ];
}

/**
 * ARM64 4K granule, 48-bit VA (lookup levels 0-3). TTBR0: L0[0] → L1 A; A[0] → L2 B:
 *   B[2] → L3 C (VA 0x400000): C[0..2] pages → PA 0x40100000.. (AP 01, SH 11, AF, nG, PXN, AttrIndx 0);
 *     C[3] → PA 0x40200000 (PA break).
 *   B[3]: 2M block VA 0x600000 → PA 0x40400000, same attributes.
 *   B[4] → L3 D with APTable = 0b10 and UXNTable: D[0] VA 0x800000 → PA 0x40500000 (AP 01).
 *   B[5] → L3 E with APTable = 0b01: E[0] VA 0xa00000 → PA 0x40600000 (AP 01);
 *     E[1] VA 0xa01000 → PA 0x40601000 with Contiguous and DBM too.
 * TTBR1: L0[0] → L1 F; F[0] → L2 G; G[1]: 2M block VA 0xffff000000200000 → PA 0x40800000 (AttrIndx 1,
 *   AP 00, SH 11, AF, UXN); F[1]: 1G block VA 0xffff000040000000 → PA 0x80000000 (AP 10, SH 11, AF, PXN, UXN).
 */
export function arm64Hand4k48(): Fixture {
  const t = new HandTables('arm64-4k-48');
  const R0 = t.table();
  const A = t.table();
  const B = t.table();
  const C = t.table();
  const D = t.table();
  const E = t.table();
  const R1 = t.table();
  const F = t.table();
  const G = t.table();
  const tbl = (pa: number) => BigInt(pa) | 3n;
  t.set(R0, 0, tbl(A));
  t.set(A, 0, tbl(B));
  t.set(B, 2, tbl(C));
  t.set(C, 0, 0x0020_0000_4010_0f43n);
  t.set(C, 1, 0x0020_0000_4010_1f43n);
  t.set(C, 2, 0x0020_0000_4010_2f43n);
  t.set(C, 3, 0x0020_0000_4020_0f43n);
  t.set(B, 3, 0x0020_0000_4040_0f41n);
  t.set(B, 4, BigInt(D) | 0x5000_0000_0000_0003n); // APTable 0b10 (bit 62), UXNTable (bit 60)
  t.set(D, 0, 0x0020_0000_4050_0f43n);
  t.set(B, 5, BigInt(E) | 0x2000_0000_0000_0003n); // APTable 0b01 (bit 61)
  t.set(E, 0, 0x0020_0000_4060_0f43n);
  t.set(E, 1, 0x0038_0000_4060_1f43n); // + Contiguous (52), DBM (51)
  t.set(R1, 0, tbl(F));
  t.set(F, 0, tbl(G));
  t.set(G, 1, 0x0040_0000_4080_0705n);
  t.set(F, 1, 0x0060_0000_8000_0781n);
  return { machine: t.m, roots: armRoots(R0, R1, 48), save: (dir) => t.save(R0, R1, dir) };
}

/**
 * ARM64 64K granule, 42-bit VA (lookup levels 2-3; 512M blocks at level 2). TTBR0: L2[0] → L3 T:
 *   T[0..2] 64K pages → PA 0x40100000, 0x40110000, 0x40120000 (AP 01, SH 11, AF, nG, PXN);
 *   T[3] → PA 0x40140000 (PA break); L2[1]: 512M block VA 0x20000000 → PA 0x60000000, same attributes.
 * TTBR1 (from 0xfffffc0000000000): L2[0]: 512M block → PA 0x80000000 (AttrIndx 1, AP 00, SH 11, AF,
 *   UXN); L2[1] → L3 U with APTable = 0b10 and PXNTable: U[0] 64K page → PA 0x40200000 (AP 00, SH 11,
 *   AF, UXN).
 */
export function arm64Hand64k42(): Fixture {
  const t = new HandTables('arm64-64k-42', 8 * 2 ** 20);
  const R0 = t.table();
  const T = t.table();
  const R1 = t.table();
  const U = t.table();
  t.set(R0, 0, BigInt(T) | 3n);
  t.set(T, 0, 0x0020_0000_4010_0f43n);
  t.set(T, 1, 0x0020_0000_4011_0f43n);
  t.set(T, 2, 0x0020_0000_4012_0f43n);
  t.set(T, 3, 0x0020_0000_4014_0f43n);
  t.set(R0, 1, 0x0020_0000_6000_0f41n);
  t.set(R1, 0, 0x0040_0000_8000_0705n);
  t.set(R1, 1, BigInt(U) | 0x4800_0000_0000_0003n); // APTable 0b10 (bit 62), PXNTable (bit 59)
  t.set(U, 0, 0x0040_0000_4020_0703n);
  return { machine: t.m, roots: armRoots(R0, R1, 42), save: (dir) => t.save(R0, R1, dir) };
}

/** ARM64 4K granule, 39-bit VA (levels 1-3): TTBR1 L1[0] is a 1G block → PA 0x80000000 (AP 00, SH 11, AF, PXN, UXN). */
export function arm64Hand4k39(): Fixture {
  const t = new HandTables('arm64-4k-39');
  const R0 = t.table();
  const R1 = t.table();
  t.set(R1, 0, 0x0060_0000_8000_0701n);
  return { machine: t.m, roots: armRoots(R0, R1, 39), save: (dir) => t.save(R0, R1, dir) };
}

/**
 * ARM64 4K granule, 52-bit VA with LPA2 (levels -1..3). TTBR1 (from 0xfff0000000000000): one 4K
 * page at its start → PA 0x40300000 (AttrIndx 0, AP 00, AF; bits 9:8 are OA[51:50] = 0, no SH).
 */
export function arm64Hand4k52(): Fixture {
  const t = new HandTables('arm64-4k-52');
  const R0 = t.table();
  const R1 = t.table();
  const L0 = t.table();
  const L1 = t.table();
  const L2 = t.table();
  const L3 = t.table();
  t.set(R1, 0, BigInt(L0) | 3n);
  t.set(L0, 0, BigInt(L1) | 3n);
  t.set(L1, 0, BigInt(L2) | 3n);
  t.set(L2, 0, BigInt(L3) | 3n);
  t.set(L3, 0, 0x0000_0000_4030_0403n);
  return { machine: t.m, roots: armRoots(R0, R1, 52), save: (dir) => t.save(R0, R1, dir) };
}
