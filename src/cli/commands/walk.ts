/** mmulab walk: a counting walk_page_range-style walk over an image folder (FORMATS.md). */
import { countWalk, loadImage } from '../../index';
import { parse, parsePageAddress } from '../args';
import type { Command, Io } from '../command';
import { UsageError } from '../errors';
import { hex } from '../style';

export const usage = `Usage: mmulab walk DIR [--start VA] [--end VA] [--json]

Walk the page tables of the image folder DIR (memory.bin + machine.json) from their roots, as
walk_page_range does, with callbacks that count. Prints the descriptors read (every slot of every
table reached, empty ones included), the leaves per hardware level, a checksum of their output
addresses (sum of PA >> 12 mod 2^64) and the walk time (loading is not timed). A native walker over
the same memory.bin computes the same three numbers.

Without --start/--end every translatable range is walked once: x86-64 both canonical halves;
ARM64 the TTBR0 range and, unless TCR_EL1.EPD1 disables it, the TTBR1 range.

Options:
  --start VA    first address (hex), page aligned
  --end VA      end address (exclusive; 0x10000000000000000 = 2^64)
  --json        one JSON object (FORMATS.md)
  -h, --help    this help

Examples:
  mmulab walk images/x86-dense
  mmulab walk images/arm64 --start 0xffff000000000000 --json`;

export const walk: Command = {
  name: 'walk',
  summary: 'count a walk_page_range-style walk over an image folder',
  usage,
  run(argv: string[], io: Io): number {
    const { values, positionals } = parse(argv, { start: { type: 'string' }, end: { type: 'string' }, json: { type: 'boolean' } }, 1);
    if (values.help) {
      io.out(usage);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError('DIR is required: an image folder with memory.bin and machine.json');
    const img = loadImage(positionals[0]!);
    const pageSize = img.machine.geo.PAGE_SIZE;
    const start = parsePageAddress(values.start as string | undefined, '--start', 0, pageSize);
    const end = parsePageAddress(values.end as string | undefined, '--end', 2 ** 64, pageSize);
    if (start >= end) throw new UsageError(`--start ${hex(start)} must be below --end ${hex(end)}`);
    const r = countWalk(img.machine, img.roots, start, end);
    if (values.json) {
      io.out(
        JSON.stringify({ entries: r.entries, leaves: r.leaves, leaves_by_level: r.leavesByLevel, checksum: hex(r.checksum), seconds: Number(r.seconds.toFixed(6)) }),
      );
    } else {
      const levels = Object.entries(r.leavesByLevel)
        .map(([l, n]) => `level ${l}: ${n}`)
        .join(', ');
      io.out(
        `${img.machine.geo.name}: ${r.entries} entries read, ${r.leaves} leaves (${levels || 'none'}), checksum ${hex(r.checksum)}, ` +
          `${r.seconds.toFixed(3)} s (${((r.entries / Math.max(r.seconds, 1e-9)) / 1e6).toFixed(1)} M entries/s)`,
      );
    }
    return 0;
  },
};
