/**
 * mmulab demo: the built-in tour. For now: every configuration's geometry, descriptors decoded
 * field by field, and a Linux page walk over a small address space on each architecture.
 */
import {
  GEOMETRY_NAMES,
  GEOMETRIES,
  Machine,
  VM_READ,
  VM_WRITE,
  entryAlloc,
  mmapReadLock,
  mmapReadUnlock,
  setPteAt,
  walkPageRange,
  type Geometry,
  type MmWalkOps,
} from '../../index';
import { parse } from '../args';
import type { Command, Io } from '../command';
import { UsageError } from '../errors';
import { hex, sizeName, type Style } from '../style';
import { formatDecoded } from './decode';

export const usage = `Usage: mmulab demo [--part geometry|decode|walk]

A tour of mmulab on its built-in defaults: the page-table geometry of every x86-64 and ARM64
configuration Linux supports, descriptors decoded with the manuals' field names, and a Linux
walk_page_range over a small address space on each architecture.

Options:
  --part NAME   show one part only: geometry, decode or walk
  -h, --help    this help

Example:
  mmulab demo --part geometry`;

function geometryTable(s: Style): string {
  const head = ['config', 'levels', 'page', 'PGDIR', 'P4D', 'PUD', 'PMD', 'ptrs/table', 'folded', 'hw levels'];
  const rows = GEOMETRY_NAMES.map((n) => {
    const g: Geometry = GEOMETRIES[n];
    const shift = (lvl: 'p4d' | 'pud' | 'pmd', v: number) => (g.folded.includes(lvl) ? '-' : String(v));
    const ptrs = `${g.PTRS_PER_PGD}/${g.PTRS_PER_P4D}/${g.PTRS_PER_PUD}/${g.PTRS_PER_PMD}/${g.PTRS_PER_PTE}`;
    const hw = g.physicalLevels.map((p) => `${p}=${g.hwLevel[p]}`).join(' ');
    return [n, String(g.pgtableLevels), sizeName(g.PAGE_SIZE), String(g.PGDIR_SHIFT), shift('p4d', g.P4D_SHIFT), shift('pud', g.PUD_SHIFT), shift('pmd', g.PMD_SHIFT), ptrs, g.folded.join(',') || '-', hw];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [s.bold('Page-table geometry (Linux names; shifts in bits; ptrs per pgd/p4d/pud/pmd/pte)'), s.dim(line(head)), ...rows.map(line)].join('\n');
}

const SAMPLES: { geo: string; level: number; value: bigint; what: string }[] = [
  { geo: 'x86_64-4level', level: 1, value: 0x8000_0000_1234_5067n, what: 'a user data page: present, writable, user, accessed, dirty, NX' },
  { geo: 'x86_64-4level', level: 2, value: 0x0000_0000_fee0_01e3n, what: 'a 2 MiB kernel page, global' },
  { geo: 'x86_64-5level', level: 5, value: 0x0000_0000_0010_2067n, what: 'an LA57 PML5 entry pointing to a PML4 table' },
  { geo: 'arm64-4k-48', level: 3, value: 0x00e8_0000_4123_4f43n, what: 'a 4K user page (Linux PAGE_SHARED-like)' },
  { geo: 'arm64-4k-48', level: 1, value: 0x0060_0000_4000_0711n, what: 'a 1 GiB kernel block' },
  { geo: 'arm64-64k-52', level: 2, value: 0x0000_0000_2000_f003n, what: 'a 64K/52-bit (LPA) table descriptor with OA[51:48] in bits 15:12' },
];

function decodeSamples(s: Style): string {
  const out: string[] = [s.bold('Descriptors, decoded as the hardware reads them')];
  for (const smp of SAMPLES) {
    const m = new Machine({ geometry: smp.geo as Geometry['name'], memSize: 1 << 20 });
    out.push('', s.cyan(`${smp.geo}: ${smp.what}`), formatDecoded(m.bits.decode(smp.value, smp.level), m.geo, s));
  }
  return out.join('\n');
}

/** Map `pages` 4K pages at `base` in a fresh mm, then count them back with walk_page_range. */
function walkDemo(geo: Geometry['name'], base: number, pages: number, s: Style): string {
  const m = new Machine({ geometry: geo, memSize: 64 * 2 ** 20 });
  const mm = m.newMm('demo');
  const pageSize = m.geo.PAGE_SIZE;
  mm.insertVma({ start: base, end: base + pages * pageSize, flags: VM_READ | VM_WRITE, name: '[heap]' });
  const prot = m.bits.pgprot({ write: true, user: true });
  for (let i = 0; i < pages; i += 2) {
    const addr = base + i * pageSize;
    const ptep = entryAlloc(mm, addr, 'pte');
    setPteAt(mm, addr, ptep, m.bits.pfnPte(0x8000 + i, prot));
  }
  const counts = { pte: 0, present: 0, holes: 0, pmd: 0 };
  const ops: MmWalkOps<typeof counts> = {
    pmdEntry: (_pmd, _a, _n, w) => {
      w.private.pmd++;
      return 0;
    },
    pteEntry: (pte, _a, _n, w) => {
      w.private.pte++;
      if (w.pt.ptePresent(w.pt.lo(pte), w.pt.hi(pte))) w.private.present++;
      return 0;
    },
    pteHole: (_a, _n, _d, w) => {
      w.private.holes++;
      return 0;
    },
  };
  mmapReadLock(mm);
  const t0 = process.hrtime.bigint();
  const ret = walkPageRange(mm, 0, base + 2 * pages * pageSize, ops, counts);
  const dt = Number(process.hrtime.bigint() - t0) / 1e6;
  mmapReadUnlock(mm);
  return (
    `${s.cyan(geo.padEnd(14))} VMA ${hex(base)}-${hex(base + pages * pageSize)}: walk_page_range returned ${ret}; ` +
    `pmd_entry ×${counts.pmd}, pte_entry ×${counts.pte} (${counts.present} present), pte_hole ×${counts.holes}  ${s.dim(`${dt.toFixed(1)} ms`)}`
  );
}

export const demo: Command = {
  name: 'demo',
  summary: 'a tour of mmulab on its built-in defaults (what npm start runs)',
  usage,
  run(argv: string[], io: Io): number {
    const { values } = parse(argv, { part: { type: 'string' } }, 0);
    if (values.help) {
      io.out(usage);
      return 0;
    }
    const part = values.part as string | undefined;
    const parts: Record<string, () => string> = {
      geometry: () => geometryTable(io.style),
      decode: () => decodeSamples(io.style),
      walk: () =>
        [
          io.style.bold('walk_page_range over binary tables (every other page of the VMA mapped)'),
          walkDemo('x86_64-4level', 0x7f00_0000_0000, 1024, io.style),
          walkDemo('x86_64-5level', 0x7f00_0000_0000, 1024, io.style),
          walkDemo('arm64-4k-48', 0x7f00_0000_0000, 1024, io.style),
          walkDemo('arm64-16k-47', 0x7f00_0000_0000, 1024, io.style),
          walkDemo('arm64-64k-42', 0x300_0000_0000, 1024, io.style),
        ].join('\n'),
    };
    if (part !== undefined && !parts[part]) {
      throw new UsageError(`--part: '${part}' is not one of ${Object.keys(parts).join(', ')}`);
    }
    const chosen = part ? [part] : Object.keys(parts);
    io.out(chosen.map((p) => parts[p]!()).join('\n\n'));
    return 0;
  },
};
