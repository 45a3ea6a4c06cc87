/** mmulab map: the address space of an image as a picture (SVG) or as ranges (JSON Lines). */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { addressMap, imageCpuParams, loadImage, ptdumpOptionsFor, type AddrMap, type AddrMapRange } from '../../index';
import { parse, parsePageAddress } from '../args';
import type { Command, Io } from '../command';
import { InputError, UsageError } from '../errors';
import { mapSvg, humanSize, permString } from '../map-svg';
import { ProgressBar } from '../progress';
import { hex, sizeName } from '../style';

export const usage = `Usage: mmulab map DIR [--svg FILE] [--start VA] [--end VA] [--json]

Map the address space of the image folder DIR (memory.bin + machine.json): every address from
--start to --end, in order, as runs of mapped pages, holes and untranslated gaps. A run is made of
consecutive leaves of one page size (one table level) with the same effective permissions — user or
kernel, write, execute, after combining the upper levels as the hardware does — whatever their
physical addresses. A hole is a part of a translated range that no leaf maps; untranslated is what no
root translates (x86-64: the non-canonical gap; ARM64: outside the TTBR0/TTBR1 ranges).

--svg FILE draws it: one band per half of the space (x86-64 lower/upper canonical half; ARM64 TTBR0,
TTBR1), rows in address order, a lane per page size, colours by permission, large holes compressed
into hatched rows labelled with their size. The file is written to a temporary and renamed: an error
leaves no partial file. Open it in a browser (hovering a bar shows its addresses and page count).

Text (default): a summary per half — runs, bytes mapped by page size and by permission.
--json: one object per range (JSON Lines, FORMATS.md style; "end" exclusive, 0x10000000000000000 = 2^64):
  {"start":"0x…","end":"0x…","kind":"mapped","root":"cr3","page_size":4096,"level":1,"count":N,"user":true,"perms":"rw-"}
  {"start":"0x…","end":"0x…","kind":"hole","root":"cr3"}
  {"start":"0x…","end":"0x…","kind":"untranslated"}
level is the hardware's number for the table holding the leaves (x86-64 3 PDPT, 2 PD, 1 PT; ARM64
lookup level); perms are the owner's: a user run's EL0/CPL 3 access, a kernel run's supervisor access.

Options:
  --svg FILE    write the picture to FILE (SVG)
  --start VA    first address (hex), page aligned (default 0)
  --end VA      end address, exclusive (default 0x10000000000000000 = 2^64)
  --json        the ranges as JSON Lines instead of the summary
  -h, --help    this help

Examples:
  mmulab export examples/thp-and-hugetlb.json --out /tmp/thp && mmulab map /tmp/thp --svg thp.svg
  mmulab map images/arm64 --start 0xffff000000000000 --svg kernel.svg
  mmulab map images/x86 --json | jq -r 'select(.kind=="mapped" and .perms=="rwx") | .start'`;

function rangeJson(r: AddrMapRange): string {
  if (r.kind === 'mapped') {
    return JSON.stringify({
      start: hex(r.start),
      end: hex(r.end),
      kind: r.kind,
      root: r.root,
      page_size: r.pageSize,
      level: r.level,
      count: r.count,
      user: r.user,
      perms: permString(r),
    });
  }
  if (r.kind === 'hole') return JSON.stringify({ start: hex(r.start), end: hex(r.end), kind: r.kind, root: r.root });
  return JSON.stringify({ start: hex(r.start), end: hex(r.end), kind: r.kind });
}

/** Per root span: runs, holes, bytes by page size and by permission. */
function summary(map: AddrMap, io: Io): void {
  const s = io.style;
  io.out(s.bold(`${map.geometry.name}: ${hex(map.start)} – ${hex(map.end)}`));
  for (const root of map.roots) {
    const inside = map.ranges.filter((r) => r.kind !== 'untranslated' && r.start >= root.start && r.end <= root.end);
    const runs = inside.filter((r) => r.kind === 'mapped');
    const holes = inside.length - runs.length;
    const bySize = new Map<number, { leaves: number; bytes: number }>();
    const byPerm = new Map<string, number>();
    let bytes = 0;
    for (const r of runs) {
      const e = bySize.get(r.pageSize) ?? { leaves: 0, bytes: 0 };
      e.leaves += r.count;
      e.bytes += r.end - r.start;
      bySize.set(r.pageSize, e);
      const key = `${r.user ? 'user' : 'kernel'} ${permString(r)}`;
      byPerm.set(key, (byPerm.get(key) ?? 0) + r.end - r.start);
      bytes += r.end - r.start;
    }
    const half = map.geometry.arch === 'x86_64' ? (root.start >= 2 ** 63 ? 'upper half' : 'lower half') : root.name;
    io.out(`${s.cyan(half)} ${hex(root.start)} – ${hex(root.end)}: ${runs.length} run${runs.length === 1 ? '' : 's'}, ${humanSize(bytes)} mapped, ${holes} hole${holes === 1 ? '' : 's'}`);
    if (runs.length) {
      const sizes = [...bySize].sort((a, b) => a[0] - b[0]).map(([ps, e]) => `${sizeName(ps)} ×${e.leaves} (${humanSize(e.bytes)})`);
      io.out(`  by page size   ${sizes.join(', ')}`);
      io.out(`  by permission  ${[...byPerm].map(([k, b]) => `${k} ${humanSize(b)}`).join(', ')}`);
    }
  }
  const untranslated = map.ranges.filter((r) => r.kind === 'untranslated');
  for (const r of untranslated) io.out(s.dim(`untranslated ${hex(r.start)} – ${hex(r.end)} (${humanSize(r.end - r.start)})`));
}

/** The picture's title: the folder's name, and the process whose tables it is when machine.json lists it. */
function imageTitle(path: string, json: Readonly<Record<string, unknown>>, table: number | undefined): string {
  const name = basename(path.replace(/[\\/]+$/, '')) || path;
  const procs = Array.isArray(json.processes) ? (json.processes as { name?: unknown; pgd?: unknown }[]) : [];
  const p = table === undefined ? undefined : procs.find((x) => typeof x?.pgd === 'string' && x.pgd === hex(table));
  return p && typeof p.name === 'string' ? `${name}, process "${p.name}"` : name;
}

/** Write `text` to `path` through a temporary in the same folder, renamed into place. */
export function writeFileAtomic(path: string, text: string, what: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    throw new InputError(`${what} ${path}: cannot write (${err.code ?? err.message})`);
  }
}

export const map: Command = {
  name: 'map',
  summary: 'draw the address space of an image folder (SVG), or list its ranges and holes',
  usage,
  run(argv: string[], io: Io): number {
    const { values, positionals } = parse(argv, { svg: { type: 'string' }, start: { type: 'string' }, end: { type: 'string' }, json: { type: 'boolean' } }, 1);
    if (values.help) {
      io.out(usage);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError('DIR is required: an image folder with memory.bin and machine.json');
    const svgPath = values.svg as string | undefined;
    if (svgPath === '') throw new UsageError('--svg: a file name is required');
    const img = loadImage(positionals[0]!);
    const pageSize = img.machine.geo.PAGE_SIZE;
    const start = parsePageAddress(values.start as string | undefined, '--start', 0, pageSize);
    const end = parsePageAddress(values.end as string | undefined, '--end', 2 ** 64, pageSize);
    if (start >= end) throw new UsageError(`--start ${hex(start)} must be below --end ${hex(end)}`);
    const bar = new ProgressBar(process.stderr, 'mapping');
    let m: AddrMap;
    try {
      // ID_AA64MMFR1_EL1.HAFDBS (bits 3:0) < 2: no hardware dirty-state update, whatever TCR_EL1 says.
      const mmfr1 = imageCpuParams(img).options.idAa64mmfr1;
      const noHd = mmfr1 !== undefined && (mmfr1 & 0xfn) < 2n;
      m = addressMap(img.machine, img.roots, {
        ...ptdumpOptionsFor(img),
        ...(noHd ? { hardwareDirty: false } : {}),
        start,
        end,
        onProgress: (d, t) => bar.update(d, t),
      });
    } finally {
      bar.finish();
    }
    if (svgPath !== undefined) writeFileAtomic(svgPath, mapSvg(m, imageTitle(positionals[0]!, img.json, img.roots[0]?.table)), '--svg');
    if (values.json) {
      for (const r of m.ranges) io.out(rangeJson(r));
      return 0;
    }
    summary(m, io);
    if (svgPath !== undefined) io.out(`wrote ${svgPath}: ${m.ranges.length} ranges`);
    return 0;
  },
};
