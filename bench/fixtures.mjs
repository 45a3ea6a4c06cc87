// Address spaces for benchmarks, built through the public API (dist/index.js).
import { Machine, VM_READ, VM_WRITE, entryAlloc } from '../dist/index.js';

/**
 * A dense mapping: `pages` base pages mapped contiguously at `start` in one VMA. Page tables are
 * allocated with entryAlloc once per pte table; the ptes are stored as two 32-bit halves.
 */
export function denseSpace(geometry, pages, start = 0x7f00_0000_0000) {
  const pageSize = geometry.startsWith('arm64-64k') ? 65536 : geometry.startsWith('arm64-16k') ? 16384 : 4096;
  const tableBytes = pageSize * Math.ceil(pages / (pageSize / 8)) * 1.05 + 64 * 2 ** 20;
  const m = new Machine({ geometry, memSize: Math.ceil(tableBytes / 2 ** 21) * 2 ** 21 });
  const mm = m.newMm('bench');
  const end = start + pages * pageSize;
  mm.insertVma({ start, end, flags: VM_READ | VM_WRITE });
  const prot = m.bits.pgprot({ write: true, user: true });
  const u32 = m.mem.u32;
  const perTable = m.geo.PTRS_PER_PTE;
  for (let i = 0; i < pages; i += perTable) {
    const addr = start + i * pageSize;
    const ptep = entryAlloc(mm, addr, 'pte');
    const n = Math.min(perTable, pages - i);
    for (let j = 0; j < n; j++) {
      const v = m.bits.pfnPte(0x10_0000 + i + j, prot);
      const k = (ptep + j * 8 - m.mem.physBase) / 4;
      u32[k] = Number(v & 0xffffffffn);
      u32[k + 1] = Number(v >> 32n);
    }
  }
  return { m, mm, start, end };
}
