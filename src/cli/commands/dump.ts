/** mmulab dump: every mapping of an image folder, as Linux's page-table dump shows it (FORMATS.md). */
// ptdump is not re-exported by src/index.ts yet (that file is not this command's to edit).
import { countWalk, forEachPtdumpMapping, loadImage, ptdumpOptionsFor, ptdumpText, x86LinuxRanges, type PtdumpMapping } from '../../index';
import { parse } from '../args';
import type { Command, Io } from '../command';
import { UsageError } from '../errors';
import { hex } from '../style';

export const usage = `Usage: mmulab dump DIR [--json]

Dump every mapping of the image folder DIR (memory.bin + machine.json) as Linux's page-table dump
(mm/ptdump.c) shows it, walking the tables from the roots the registers select.

Text (default): Linux's own format for the image's architecture, line for line —
  x86-64: arch/x86/mm/dump_pagetables.c (/sys/kernel/debug/page_tables/kernel): both canonical
          halves, the hypervisor guard hole skipped; every range, unmapped ones with blank flags;
          the "User Space" and "Kernel Space" section markers.
  ARM64:  arch/arm64/mm/ptdump.c (/sys/kernel/debug/kernel_page_tables): the TTBR1 range under the
          "Linear Mapping start/end" markers; the TTBR0 range (which Linux does not dump) first,
          under "User Space" markers, in the same format.
  As in Linux, ranges merge on equal flags and level; physical addresses are not compared.

--json: one object per range (JSON Lines, FORMATS.md): consecutive pages with contiguous physical
addresses, the same page size and the same effective attributes merge; unmapped ranges are left out.
  {"start":"0x…","end":"0x…","pa":"0x…","page_size":N,"count":N,"attrs":{…}}
attrs are the effective attributes after combining the upper levels as the hardware does, by the
manuals' names: x86-64 rw, us, nx, g, a, d, pwt, pcd, pat, pkey (R/W and U/S ANDed, XD ORed down
the levels); ARM64 ap, uxn, pxn, af, sh, attr_indx, ng, contiguous, dbm (APTable, UXNTable and
PXNTable of the tables above restrict the leaf). "end" is exclusive; 0x10000000000000000 = 2^64.

Options:
  --json        JSON Lines instead of Linux's text
  -h, --help    this help

Examples:
  mmulab dump images/x86-dense
  mmulab dump images/arm64 --json
  mmulab dump images/x86-dense --json | jq -r 'select(.attrs.rw and (.attrs.nx | not)) | .start'`;

function jsonLine(r: PtdumpMapping): string {
  return JSON.stringify({ start: hex(r.start), end: hex(r.end), pa: hex(r.pa), page_size: r.pageSize, count: r.count, attrs: r.attrs });
}

export const dump: Command = {
  name: 'dump',
  summary: "print every mapping of an image folder, as Linux's page-table dump does",
  usage,
  run(argv: string[], io: Io): number {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' } }, 1);
    if (values.help) {
      io.out(usage);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError('DIR is required: an image folder with memory.bin and machine.json');
    const img = loadImage(positionals[0]!);
    // The dump prints as it walks. A table pointer outside memory would end it with an error after
    // part of the dump: check every table pointer first with the counting walk over the ranges the
    // dump walks (the same walker, a few ns per entry; x86 text skips the hypervisor guard hole as
    // Linux does), so a bad image exits 1 before the first line is printed.
    const g = img.machine.geo;
    const ranges = values.json || g.arch !== 'x86_64' ? img.roots : x86LinuxRanges(g, img.roots).map((r, i) => ({ ...img.roots[i]!, start: r.start, end: r.end }));
    countWalk(img.machine, ranges);
    const opts = ptdumpOptionsFor(img);
    if (values.json) forEachPtdumpMapping(img.machine, img.roots, (r) => io.out(jsonLine(r)), opts);
    else ptdumpText(img.machine, img.roots, (line) => io.out(line), opts);
    return 0;
  },
};
