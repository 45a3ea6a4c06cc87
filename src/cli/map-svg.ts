/**
 * The picture behind `mmulab map --svg`: an address map (src/walk/addrmap.ts) drawn as SVG.
 *
 * A 64-bit space is 2^64 bytes wide and almost empty, so no single linear axis shows a 4 KiB page
 * and a 128 TiB hole together. The layout compresses it instead:
 *  - one band per translated range (x86-64 lower and upper canonical half; ARM64 TTBR0, TTBR1),
 *    the untranslated gap between them drawn as an axis break with its size;
 *  - inside a band, rows top to bottom in address order. A "region" row holds mapped runs that lie
 *    close together, on a linear scale from the row's start address to its end; a hole much larger
 *    than what surrounds it gets a row of its own, hatched and labelled with its size, not to scale;
 *  - a region row has one lane per page size (the leaf's table level); a run is a bar in its lane,
 *    coloured by its effective permissions (user light, kernel dark), at least 2 px wide so a
 *    single page stays visible next to a gigabyte block. Each bar carries a <title> with the
 *    details (a browser shows it on hover).
 * Every range of the map is exactly one element with class "range" and data-start / data-end.
 */
import type { AddrMap, AddrMapRange, HoleRange, LeafKind, MappedRange } from '../index';
import { hex, sizeName } from './style';

const WIDTH = 1200;
const LABEL_X = 16;
const BAR_X = 178;
const BAR_W = 752;
const TAG_X = BAR_X + BAR_W + 6;
const NOTE_X = TAG_X + 40;
const LANE_H = 15;
const LANE_GAP = 2;
const MIN_BAR = 2;
const MAX_ROWS = 160;
const MONO = "DejaVu Sans Mono, Menlo, Consolas, 'Liberation Mono', monospace";
const SANS = "DejaVu Sans, 'Segoe UI', Helvetica, Arial, sans-serif";

/** Fill colours by permission: user (EL0 / U/S = 1) light, kernel dark; the same hue per access. */
export const PERM_COLOURS: Readonly<Record<'user' | 'kernel', Readonly<Record<string, string>>>> = {
  user: { 'r--': '#a1d99b', 'rw-': '#9ecae1', 'r-x': '#fdd0a2', 'rwx': '#fc9272' },
  kernel: { 'r--': '#238b45', 'rw-': '#2171b5', 'r-x': '#d94801', 'rwx': '#a50f15' },
};

export function permString(r: Pick<MappedRange, 'write' | 'exec'>): string {
  return `r${r.write ? 'w' : '-'}${r.exec ? 'x' : '-'}`;
}

/** A size for people: exact when it is a whole number of some unit with at most 4 digits ("2044K"), else "~127.9T". */
export function humanSize(bytes: number): string {
  const exact = sizeName(bytes);
  if (/^\d{1,4}[KMGTPE]?$/.test(exact)) return exact;
  const units = ['', 'K', 'M', 'G', 'T', 'P', 'E'];
  let u = 0;
  while (u < units.length - 1 && bytes >= 1024 ** (u + 1)) u++;
  return `~${(Math.floor((bytes / 1024 ** u) * 10) / 10).toFixed(1)}${units[u]}`;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function n(v: number): string {
  return String(Math.round(v * 100) / 100);
}

function addr(v: number): string {
  return '0x' + v.toString(16).padStart(16, '0');
}

/** The last byte of a range, for labels (in BigInt: end - 1 is not a double above 2^53). */
function last(end: number): string {
  return '0x' + (BigInt(end) - 1n).toString(16).padStart(16, '0');
}

function levelName(arch: AddrMap['geometry']['arch'], k: LeafKind): string {
  if (arch === 'x86_64') return `${['', 'PT', 'PD', 'PDPT'][k.level] ?? 'level'} entry, level ${k.level}`;
  return `level ${k.level} ${k.linuxLevel === 'pte' ? 'page' : 'block'}`;
}

type Row =
  | { readonly type: 'region'; readonly start: number; readonly end: number; readonly items: readonly AddrMapRange[] }
  | { readonly type: 'hole'; readonly range: HoleRange };

interface Band {
  readonly name: string;
  readonly start: number;
  readonly end: number;
  readonly rows: readonly Row[];
  readonly mapped: number;
}

/** A run of items that starts and ends with a mapped range, and what splitting it would gain. */
interface Segment {
  readonly items: readonly AddrMapRange[];
  /** Index of the largest interior hole, -1 if none. */
  readonly split: number;
  /** > 1: the row would be unreadable (mostly hole, or its smallest run under ~2 px). */
  readonly badness: number;
}

function segment(items: readonly AddrMapRange[], resolution: number): Segment {
  const span = items[items.length - 1]!.end - items[0]!.start;
  let split = -1;
  let largest = 0;
  let smallest = Infinity;
  items.forEach((r, i) => {
    const size = r.end - r.start;
    if (r.kind === 'hole' && size > largest) {
      largest = size;
      split = i;
    } else if (r.kind === 'mapped' && size < smallest) smallest = size;
  });
  return { items, split, badness: split < 0 ? 0 : Math.max((2 * largest) / span, span / (resolution * smallest)) };
}

/**
 * Cut a band's ranges into rows. The holes at the band's edges are rows of their own. What lies
 * between is one region, split at its largest hole while a region is more than half hole or its
 * smallest run would be narrower than BAR_W / `resolution` px (the worst region first), as long as
 * the rows stay within `maxRows`. A hole that splits becomes a row of its own, not to scale.
 */
export function bandRows(items: readonly AddrMapRange[], maxRows = MAX_ROWS, resolution = BAR_W / MIN_BAR): Row[] {
  let lo = 0;
  let hi = items.length;
  const head = items[0]?.kind === 'hole' ? items[lo++] : undefined;
  const tail = hi > lo && items[hi - 1]!.kind === 'hole' ? items[--hi] : undefined;
  const out: Row[] = [];
  if (head) out.push({ type: 'hole', range: head as HoleRange });
  if (hi > lo) {
    // Segments in address order, separated by the holes that split them.
    const parts: (Segment | HoleRange)[] = [segment(items.slice(lo, hi), resolution)];
    let rows = out.length + 1 + (tail ? 1 : 0);
    while (rows + 2 <= maxRows) {
      let worst = -1;
      parts.forEach((p, i) => {
        if ('badness' in p && p.badness > 1 && (worst < 0 || p.badness > (parts[worst] as Segment).badness)) worst = i;
      });
      if (worst < 0) break;
      const { items: seg, split } = parts[worst] as Segment;
      parts.splice(worst, 1, segment(seg.slice(0, split), resolution), seg[split] as HoleRange, segment(seg.slice(split + 1), resolution));
      rows += 2;
    }
    for (const p of parts) {
      if ('badness' in p) out.push({ type: 'region', start: p.items[0]!.start, end: p.items[p.items.length - 1]!.end, items: p.items });
      else out.push({ type: 'hole', range: p });
    }
  }
  if (tail) out.push({ type: 'hole', range: tail as HoleRange });
  return out;
}

/** The bands (one per root) and the untranslated gaps, in address order. */
function bands(map: AddrMap): (Band | AddrMapRange)[] {
  const out: Band[] = [];
  const order: (Band | AddrMapRange)[] = [];
  const twoHalves = map.geometry.arch === 'x86_64';
  for (const root of map.roots) {
    const items = map.ranges.filter((r) => r.kind !== 'untranslated' && r.start >= root.start && r.end <= root.end);
    const upper = root.start >= 2 ** 63;
    const name =
      twoHalves
        ? `${upper ? 'Upper' : 'Lower'} canonical half (${upper ? 'kernel' : 'user'} space), CR3`
        : `${root.name === 'ttbr1_el1' ? 'TTBR1_EL1 (kernel space)' : 'TTBR0_EL1 (user space)'}`;
    const mapped = items.reduce((a, r) => a + (r.kind === 'mapped' ? r.end - r.start : 0), 0);
    const b: Band = { name, start: root.start, end: root.end, rows: bandRows(items), mapped };
    out.push(b);
  }
  // Address order: each untranslated gap where it falls between the bands.
  for (const r of map.ranges) {
    if (r.kind === 'untranslated') order.push(r);
    else {
      const b = out.find((x) => r.start >= x.start && r.end <= x.end)!;
      if (order[order.length - 1] !== b) order.push(b);
    }
  }
  return order;
}

class Svg {
  readonly parts: string[] = [];
  y = 0;
  text(x: number, y: number, s: string, attrs = ''): void {
    this.parts.push(`<text x="${n(x)}" y="${n(y)}"${attrs ? ' ' + attrs : ''}>${esc(s)}</text>`);
  }
  rect(x: number, y: number, w: number, h: number, attrs: string, title?: string): void {
    const open = `<rect x="${n(x)}" y="${n(y)}" width="${n(w)}" height="${n(h)}" ${attrs}`;
    this.parts.push(title === undefined ? `${open}/>` : `${open}><title>${esc(title)}</title></rect>`);
  }
}

function rangeAttrs(r: AddrMapRange): string {
  return `class="range ${r.kind}" data-start="${hex(r.start)}" data-end="${hex(r.end)}"`;
}

function mappedTitle(r: MappedRange, kinds: readonly LeafKind[], arch: AddrMap['geometry']['arch']): string {
  const k = kinds.find((x) => x.pageSize === r.pageSize);
  return (
    `${addr(r.start)} – ${last(r.end)}  ${humanSize(r.end - r.start)}: ${r.count} × ${sizeName(r.pageSize)}` +
    `${k ? ` (${levelName(arch, k)})` : ''}, ${r.user ? 'user' : 'kernel'} ${permString(r)}`
  );
}

/** Text that fits `w` px at the monospace label size (about 6.1 px a character at 10 px). */
function fits(s: string, w: number): boolean {
  return s.length * 6.1 + 6 <= w;
}

function drawRegion(svg: Svg, row: Extract<Row, { type: 'region' }>, kinds: readonly LeafKind[], arch: AddrMap['geometry']['arch']): void {
  const h = kinds.length * (LANE_H + LANE_GAP) - LANE_GAP;
  const top = svg.y + 6;
  const span = row.end - row.start;
  const x = (a: number) => BAR_X + ((a - row.start) / span) * BAR_W;
  svg.parts.push(`<g class="row region" data-start="${hex(row.start)}" data-end="${hex(row.end)}">`);
  svg.text(LABEL_X, top + 10, addr(row.start), `font-family="${MONO}" font-size="11.5"`);
  svg.text(LABEL_X, top + Math.max(h, 26), last(row.end), `font-family="${MONO}" font-size="11.5" fill="#777"`);
  svg.rect(BAR_X, top, BAR_W, h, 'fill="#fbfbfb" stroke="#bbb" stroke-width="0.8"');
  kinds.forEach((k, i) => {
    const ly = top + i * (LANE_H + LANE_GAP);
    if (i > 0) svg.parts.push(`<line x1="${BAR_X}" y1="${n(ly - LANE_GAP / 2)}" x2="${BAR_X + BAR_W}" y2="${n(ly - LANE_GAP / 2)}" stroke="#e2e2e2" stroke-width="1"/>`);
    svg.text(TAG_X, ly + 11, sizeName(k.pageSize), `font-family="${MONO}" font-size="9.5" fill="#888"`);
  });
  let runs = 0;
  let mapped = 0;
  // Where each mapped run starts and ends on the row, to tell a lone narrow run from a dense crowd.
  const spans = row.items.filter((r) => r.kind === 'mapped').map((r) => [x(r.start), x(r.end)] as const);
  let k = -1;
  for (const r of row.items) {
    if (r.kind === 'hole') {
      svg.rect(x(r.start), top, x(r.end) - x(r.start), h, `${rangeAttrs(r)} fill="url(#hatch)"`, `${addr(r.start)} – ${last(r.end)}  ${humanSize(r.end - r.start)} unmapped`);
      continue;
    }
    if (r.kind !== 'mapped') continue;
    runs++;
    k++;
    mapped += r.end - r.start;
    const lane = Math.max(0, kinds.findIndex((k) => k.pageSize === r.pageSize));
    const ly = top + lane * (LANE_H + LANE_GAP);
    const x0 = x(r.start);
    const w = Math.max(MIN_BAR, x(r.end) - x0);
    const fill = PERM_COLOURS[r.user ? 'user' : 'kernel'][permString(r)]!;
    // A lone run narrower than a few pixels gets a dark outline, so a single page stands out; runs
    // crowded closer than that keep their colours (outlines would turn the crowd black).
    const alone = (spans[k - 1]?.[1] ?? -Infinity) < x0 - 3 && (spans[k + 1]?.[0] ?? Infinity) > x0 + w + 3;
    const stroke = w >= 4 ? 'stroke="#00000055" stroke-width="0.5"' : alone ? 'stroke="#333" stroke-width="0.8"' : 'stroke="none"';
    svg.rect(x0, ly, w, LANE_H, `${rangeAttrs(r)} fill="${fill}" ${stroke}`, mappedTitle(r, kinds, arch));
    const label = `${permString(r)} ${humanSize(r.end - r.start)}`;
    if (fits(label, w)) {
      svg.text(x0 + 3, ly + 11, label, `font-family="${MONO}" font-size="10" fill="${r.user ? '#1a1a1a' : '#ffffff'}" pointer-events="none"`);
    }
  }
  svg.text(NOTE_X, top + 11, `${humanSize(span)} span`, `font-size="11.5"`);
  svg.text(NOTE_X, top + 25, `${runs} run${runs === 1 ? '' : 's'}, ${humanSize(mapped)} mapped`, `font-size="11" fill="#555"`);
  svg.parts.push('</g>');
  svg.y = top + Math.max(h, 28) + 8;
}

function drawHoleRow(svg: Svg, r: HoleRange): void {
  const top = svg.y + 3;
  svg.parts.push(`<g class="row hole" data-start="${hex(r.start)}" data-end="${hex(r.end)}">`);
  svg.text(LABEL_X, top + 11, addr(r.start), `font-family="${MONO}" font-size="11.5" fill="#777"`);
  svg.rect(BAR_X, top, BAR_W, 15, `${rangeAttrs(r)} fill="url(#hatch)" stroke="#ccc" stroke-width="0.6"`, `${addr(r.start)} – ${last(r.end)}  ${humanSize(r.end - r.start)} unmapped`);
  const label = `unmapped ${humanSize(r.end - r.start)} (not to scale)`;
  const w = label.length * 6.4 + 12;
  svg.rect(BAR_X + BAR_W / 2 - w / 2, top + 1, w, 13, 'fill="#ffffff" fill-opacity="0.9" rx="3"');
  svg.text(BAR_X + BAR_W / 2, top + 11.5, label, `font-size="10.5" fill="#555" text-anchor="middle"`);
  svg.parts.push('</g>');
  svg.y = top + 15 + 5;
}

function drawUntranslated(svg: Svg, r: AddrMapRange, arch: AddrMap['geometry']['arch'], vaBits: number): void {
  const top = svg.y + 8;
  const h = 30;
  svg.rect(BAR_X, top, BAR_W, h, `${rangeAttrs(r)} fill="#f0f0f0"`, `${addr(r.start)} – ${last(r.end)}  ${humanSize(r.end - r.start)} untranslated`);
  // The axis break: two zigzags across the bar.
  for (const yy of [top + 4, top + h - 4]) {
    let d = `M${BAR_X} ${n(yy)}`;
    for (let xx = BAR_X, i = 0; xx < BAR_X + BAR_W; xx += 8, i++) d += ` L${n(Math.min(xx + 8, BAR_X + BAR_W))} ${n(yy + (i % 2 ? -3 : 3))}`;
    svg.parts.push(`<path class="break" d="${d}" fill="none" stroke="#999" stroke-width="1"/>`);
  }
  const why = arch === 'x86_64' ? `non-canonical: bits 63:${vaBits - 1} not all equal, #GP, no walk` : 'outside the TTBR0/TTBR1 ranges (or walks disabled): translation fault';
  svg.text(LABEL_X, top + 19, addr(r.start), `font-family="${MONO}" font-size="11.5" fill="#777"`);
  svg.text(BAR_X + BAR_W / 2, top + 19.5, `${humanSize(r.end - r.start)} ${why}`, `font-size="11.5" fill="#444" text-anchor="middle" font-style="italic"`);
  svg.y = top + h + 10;
}

function drawLegend(svg: Svg, map: AddrMap, kinds: readonly LeafKind[]): void {
  const y0 = svg.y;
  const arch = map.geometry.arch;
  const who = arch === 'x86_64' ? { user: 'user (U/S = 1)', kernel: 'supervisor only' } : { user: 'user (EL0 access)', kernel: 'kernel (EL1 only)' };
  (['user', 'kernel'] as const).forEach((mode, j) => {
    const y = y0 + j * 22;
    svg.text(LABEL_X, y + 12, who[mode], `font-size="12"`);
    Object.entries(PERM_COLOURS[mode]).forEach(([perm, colour], i) => {
      const x = BAR_X + i * 120;
      svg.rect(x, y, 30, 15, `fill="${colour}" stroke="#00000055" stroke-width="0.5"`);
      svg.text(x + 36, y + 12, perm, `font-family="${MONO}" font-size="12"`);
    });
  });
  const y = y0 + 44;
  svg.rect(BAR_X, y, 30, 15, 'fill="url(#hatch)" stroke="#ccc" stroke-width="0.6"');
  svg.text(BAR_X + 36, y + 12, 'unmapped (hole)', `font-size="12"`);
  svg.rect(BAR_X + 240, y, 30, 15, 'fill="#f0f0f0"');
  svg.text(BAR_X + 276, y + 12, arch === 'x86_64' ? 'non-canonical (untranslated)' : 'outside TTBR0/TTBR1 (untranslated)', `font-size="12"`);
  const lanes = kinds.map((k) => `${sizeName(k.pageSize)} (${levelName(arch, k)})`).join(' · ');
  const absent = map.leafKinds.filter((k) => !kinds.includes(k)).map((k) => `${sizeName(k.pageSize)} (${levelName(arch, k)})`);
  svg.text(LABEL_X, y + 36, `Lanes in each row, top to bottom: ${lanes}.${absent.length ? ` No ${absent.join(' or ')} mappings.` : ''}`, `font-size="12"`);
  svg.text(
    LABEL_X,
    y + 54,
    'Each row is to scale from its start address (left column) to its end; rows are not to scale with each other. Large holes get their own hatched row.',
    `font-size="12" fill="#555"`,
  );
  svg.y = y + 70;
}

/** The SVG document for a map; `title` names the image. */
export function mapSvg(map: AddrMap, title: string): string {
  const svg = new Svg();
  const arch = map.geometry.arch;
  svg.y = 14;
  const order = bands(map);
  const counts = { mapped: 0, hole: 0, untranslated: 0 };
  for (const r of map.ranges) counts[r.kind]++;
  svg.text(LABEL_X, svg.y + 16, `mmulab map — ${title}`, `font-size="19" font-weight="bold"`);
  svg.text(
    LABEL_X,
    svg.y + 36,
    `${map.geometry.name}, ${addr(map.start)} – ${last(map.end)}: ${counts.mapped} mapped runs, ${counts.hole} holes, ${counts.untranslated} untranslated`,
    `font-size="12.5" fill="#444"`,
  );
  svg.y += 52;
  // One lane per page size the map uses (all of the geometry's when nothing is mapped).
  const used = map.leafKinds.filter((k) => map.ranges.some((r) => r.kind === 'mapped' && r.pageSize === k.pageSize));
  const kinds = used.length ? used : map.leafKinds;
  drawLegend(svg, map, kinds);
  for (const item of order) {
    if ('kind' in item) {
      drawUntranslated(svg, item, arch, map.geometry.vaBits);
      continue;
    }
    svg.y += 8;
    svg.rect(LABEL_X - 6, svg.y, WIDTH - 2 * (LABEL_X - 6), 24, 'fill="#eef1f6" rx="3"');
    svg.text(LABEL_X, svg.y + 16.5, item.name, `font-size="13.5" font-weight="bold"`);
    svg.text(
      BAR_X + 300,
      svg.y + 16.5,
      `${addr(item.start)} – ${last(item.end)}  (${humanSize(item.end - item.start)}, ${humanSize(item.mapped)} mapped)`,
      `font-family="${MONO}" font-size="11.5" fill="#333"`,
    );
    svg.y += 30;
    for (const row of item.rows) {
      if (row.type === 'hole') drawHoleRow(svg, row.range);
      else drawRegion(svg, row, kinds, arch);
    }
  }
  const height = Math.ceil(svg.y + 16);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="${SANS}">`,
    `<title>${esc(`mmulab map — ${title}`)}</title>`,
    '<defs><pattern id="hatch" width="7" height="7" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">' +
      '<rect width="7" height="7" fill="#f6f6f6"/><line x1="0" y1="0" x2="0" y2="7" stroke="#d0d0d0" stroke-width="2.5"/></pattern></defs>',
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...svg.parts,
    '</svg>',
    '',
  ].join('\n');
}
