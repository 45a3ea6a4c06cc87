/**
 * mmulab map: the ranges of hand-written page tables (every descriptor composed from the manuals'
 * bit positions, every expected range worked out by hand below), the SVG as a well-formed XML
 * document with one element per range, and the command's errors.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../mm/image-fixtures';
import { HandTables } from '../walk/ptdump-fixtures';
import { run } from './run';

// ---- a strict XML reader (well-formedness of the subset SVG uses), written for this test --------

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: (XmlElement | string)[];
}

const NAME = /^[A-Za-z_:][-A-Za-z0-9_:.]*/;

function decodeText(s: string, where: number): string {
  if (s.includes('<')) throw new Error(`'<' in character data near ${where}`);
  return s.replace(/&([^;]*);?/g, (m, ent: string) => {
    if (!m.endsWith(';')) throw new Error(`unterminated entity near ${where}`);
    const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    if (ent in named) return named[ent]!;
    if (/^#[0-9]+$/.test(ent)) return String.fromCodePoint(Number(ent.slice(1)));
    if (/^#x[0-9a-fA-F]+$/.test(ent)) return String.fromCodePoint(parseInt(ent.slice(2), 16));
    throw new Error(`unknown entity &${ent}; near ${where}`);
  });
}

/** Parse a whole document: optional XML declaration, one root element, balanced tags. */
function parseXml(text: string): XmlElement {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  if (text.startsWith('<?xml')) {
    const e = text.indexOf('?>');
    if (e < 0) throw new Error('unterminated XML declaration');
    i = e + 2;
  }
  ws();
  const element = (): XmlElement => {
    if (text[i] !== '<') throw new Error(`expected '<' at ${i}`);
    i++;
    const m = NAME.exec(text.slice(i));
    if (!m) throw new Error(`bad element name at ${i}`);
    const el: XmlElement = { name: m[0], attrs: {}, children: [] };
    i += m[0].length;
    for (;;) {
      const before = i;
      ws();
      if (text.startsWith('/>', i)) {
        i += 2;
        return el;
      }
      if (text[i] === '>') {
        i++;
        break;
      }
      if (i === before) throw new Error(`expected whitespace before an attribute at ${i}`);
      const a = NAME.exec(text.slice(i));
      if (!a) throw new Error(`bad attribute name at ${i}`);
      i += a[0].length;
      ws();
      if (text[i] !== '=') throw new Error(`expected '=' at ${i}`);
      i++;
      ws();
      const q = text[i];
      if (q !== '"' && q !== "'") throw new Error(`unquoted attribute value at ${i}`);
      const end = text.indexOf(q, i + 1);
      if (end < 0) throw new Error(`unterminated attribute value at ${i}`);
      if (a[0] in el.attrs) throw new Error(`duplicate attribute ${a[0]} at ${i}`);
      el.attrs[a[0]] = decodeText(text.slice(i + 1, end), i);
      i = end + 1;
    }
    for (;;) {
      const lt = text.indexOf('<', i);
      if (lt < 0) throw new Error(`<${el.name}> is never closed`);
      if (lt > i) el.children.push(decodeText(text.slice(i, lt), i));
      i = lt;
      if (text.startsWith('</', i)) {
        const close = `</${el.name}`;
        if (!text.startsWith(close, i)) throw new Error(`mismatched end tag at ${i}: expected ${close}>`);
        i += close.length;
        ws();
        if (text[i] !== '>') throw new Error(`expected '>' at ${i}`);
        i++;
        return el;
      }
      if (text.startsWith('<!--', i)) {
        const e = text.indexOf('-->', i);
        if (e < 0) throw new Error('unterminated comment');
        i = e + 3;
        continue;
      }
      el.children.push(element());
    }
  };
  const root = element();
  ws();
  if (i !== text.length) throw new Error(`content after the root element at ${i}`);
  return root;
}

function all(el: XmlElement, pred: (e: XmlElement) => boolean, out: XmlElement[] = []): XmlElement[] {
  if (pred(el)) out.push(el);
  for (const c of el.children) if (typeof c !== 'string') all(c, pred, out);
  return out;
}

const hasClass = (c: string) => (e: XmlElement) => (e.attrs.class ?? '').split(' ').includes(c);

describe('the test XML reader itself', () => {
  it('accepts a well-formed document and rejects the usual breakages', () => {
    expect(parseXml('<?xml version="1.0"?>\n<a x="1 &amp; 2"><b/>t&lt;<c y=\'2\'></c></a>\n').children).toHaveLength(3);
    for (const bad of ['<a><b></a>', '<a x=1/>', '<a>&</a>', '<a>x < y</a>', '<a x="1" x="2"/>', '<a/><b/>', '<a>', '<a x="&foo;"/>']) {
      expect(() => parseXml(bad), bad).toThrow();
    }
  });
});

// ---- the images -----------------------------------------------------------------------------------

const TWO_64 = '0x10000000000000000';

const made: string[] = [];
/** A temporary folder, removed after the tests. */
function scratch(): string {
  const d = tempDir();
  made.push(d);
  return d;
}
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/**
 * x86-64 4-level (SDM Vol.3A §4.5, Tables 4-15 … 4-20: P 0x1, R/W 0x2, U/S 0x4, A 0x20, D 0x40,
 * PS 0x80, G 0x100, XD bit 63). PML4 R[0] → PDPT A; A[0] → PD B; B[2] → PT C (VA 0x400000):
 *   C[0..3] user RW XD pages, PAs 0x100000, 0x105000, 0x103000, 0x200000 (not contiguous: the map
 *     merges them anyway — permissions and page size are all it compares);
 *   C[4] user read-only, executable (0x65: P U/S A D) at VA 0x404000;
 *   C[511] user RW XD at VA 0x5ff000;
 *   B[3], B[4] 2M user RW XD leaves (0xe7 + XD) at VA 0x600000, 0x800000: one 2M run of 2, not
 *     merged with the 4K page before it (another page size);
 *   A[1] 1G supervisor RW XD global leaf (0x1e3 + XD) at VA 0x40000000.
 * Kernel half: R[273] → PDPT F (VA 0xffff888000000000 = 273 << 39 | sign extension);
 *   F[0] 1G supervisor RW XD global; F[1] 1G supervisor read-only executable (0x1e1) at 0xffff888040000000.
 */
function x86Image(): string {
  const t = new HandTables('x86_64-4level');
  const R = t.table();
  const A = t.table();
  const B = t.table();
  const C = t.table();
  const F = t.table();
  t.set(R, 0, BigInt(A) | 0x67n);
  t.set(A, 0, BigInt(B) | 0x67n);
  t.set(B, 2, BigInt(C) | 0x67n);
  t.set(C, 0, 0x8000_0000_0010_0067n);
  t.set(C, 1, 0x8000_0000_0010_5067n);
  t.set(C, 2, 0x8000_0000_0010_3067n);
  t.set(C, 3, 0x8000_0000_0020_0067n);
  t.set(C, 4, 0x0000_0000_0030_0065n);
  t.set(C, 511, 0x8000_0000_0030_1067n);
  t.set(B, 3, 0x8000_0000_0040_00e7n);
  t.set(B, 4, 0x8000_0000_0060_00e7n);
  t.set(A, 1, 0x8000_0000_4000_01e3n);
  t.set(R, 273, BigInt(F) | 0x63n);
  t.set(F, 0, 0x8000_0000_0000_01e3n);
  t.set(F, 1, 0x0000_0000_4000_01e1n);
  return t.save(R, R, scratch());
}

const user = (start: string, end: string, page_size: number, level: number, count: number, perms: string) =>
  ({ start, end, kind: 'mapped', root: 'cr3', page_size, level, count, user: true, perms });
const kernel = (start: string, end: string, page_size: number, level: number, count: number, perms: string) =>
  ({ start, end, kind: 'mapped', root: 'cr3', page_size, level, count, user: false, perms });
const hole = (start: string, end: string, root = 'cr3') => ({ start, end, kind: 'hole', root });

/** The whole space of x86Image(), by hand: 7 runs, 6 holes, the non-canonical gap. */
const X86_RANGES = [
  hole('0x0', '0x400000'),
  user('0x400000', '0x404000', 4096, 1, 4, 'rw-'),
  user('0x404000', '0x405000', 4096, 1, 1, 'r-x'),
  hole('0x405000', '0x5ff000'),
  user('0x5ff000', '0x600000', 4096, 1, 1, 'rw-'),
  user('0x600000', '0xa00000', 2097152, 2, 2, 'rw-'),
  hole('0xa00000', '0x40000000'),
  kernel('0x40000000', '0x80000000', 1073741824, 3, 1, 'rw-'),
  hole('0x80000000', '0x800000000000'),
  { start: '0x800000000000', end: '0xffff800000000000', kind: 'untranslated' },
  hole('0xffff800000000000', '0xffff888000000000'),
  kernel('0xffff888000000000', '0xffff888040000000', 1073741824, 3, 1, 'rw-'),
  kernel('0xffff888040000000', '0xffff888080000000', 1073741824, 3, 1, 'r-x'),
  hole('0xffff888080000000', TWO_64),
];

/**
 * ARM64 4K granule, 48-bit VA (Arm ARM D8.3: bits[1:0] 0b11 page/table, 0b01 block; AttrIndx 4:2;
 * AP 7:6; SH 9:8; AF 10; nG 11; DBM 51; PXN 53; UXN 54). TTBR0: L0[0] → L1 A; A[0] → L2 B; B[2] → L3 C:
 *   C[0] VA 0x400000: AP 01 (EL0 read/write), PXN, UXN           → user rw-
 *   C[1] VA 0x401000: AP 11 (EL0 read-only), PXN, UXN = 0         → user r-x
 *   C[2] VA 0x402000: AP 11, DBM, PXN, UXN                        → user r-- (rw- when TCR_EL1.HA = HD = 1)
 * TTBR1: L0[0] → L1 K1; K1[0] → L2 K2; K2[1]: 2M block VA 0xffff000000200000, AP 10 (EL1 read-only),
 *   UXN, PXN = 0                                                   → kernel r-x
 */
function arm64Image(tcrExtra = 0n): string {
  const t = new HandTables('arm64-4k-48');
  const R0 = t.table();
  const A = t.table();
  const B = t.table();
  const C = t.table();
  const R1 = t.table();
  const K1 = t.table();
  const K2 = t.table();
  const tbl = (pa: number) => BigInt(pa) | 3n;
  t.set(R0, 0, tbl(A));
  t.set(A, 0, tbl(B));
  t.set(B, 2, tbl(C));
  t.set(C, 0, 0x0060_0000_4010_0f43n);
  t.set(C, 1, 0x0020_0000_4010_1fc3n);
  t.set(C, 2, 0x0068_0000_4010_2fc3n);
  t.set(R1, 0, tbl(K1));
  t.set(K1, 0, tbl(K2));
  t.set(K2, 1, 0x0040_0000_4020_0781n);
  const dir = t.save(R0, R1, scratch());
  if (tcrExtra) {
    const p = join(dir, 'machine.json');
    const j = JSON.parse(readFileSync(p, 'utf8'));
    j.registers.tcr_el1 = '0x' + (BigInt(j.registers.tcr_el1) | tcrExtra).toString(16);
    writeFileSync(p, JSON.stringify(j));
  }
  return dir;
}

const jsonLines = (out: string) => out.split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('mmulab map --json: the ranges, worked out by hand', () => {
  it('x86-64 (SDM Vol.3A §4.6.1: R/W, U/S, XD combined down the levels): runs by page size and permission, holes, the non-canonical gap', async () => {
    const r = await run('map', x86Image(), '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(jsonLines(r.out)).toEqual(X86_RANGES);
  });

  it('ARM64 4K/48 (Arm ARM D8.4.1 AP[2:1], UXN for EL0, PXN for EL1): TTBR0, the gap, TTBR1', async () => {
    const expected = [
      hole('0x0', '0x400000', 'ttbr0_el1'),
      { start: '0x400000', end: '0x401000', kind: 'mapped', root: 'ttbr0_el1', page_size: 4096, level: 3, count: 1, user: true, perms: 'rw-' },
      { start: '0x401000', end: '0x402000', kind: 'mapped', root: 'ttbr0_el1', page_size: 4096, level: 3, count: 1, user: true, perms: 'r-x' },
      { start: '0x402000', end: '0x403000', kind: 'mapped', root: 'ttbr0_el1', page_size: 4096, level: 3, count: 1, user: true, perms: 'r--' },
      hole('0x403000', '0x1000000000000', 'ttbr0_el1'),
      { start: '0x1000000000000', end: '0xffff000000000000', kind: 'untranslated' },
      hole('0xffff000000000000', '0xffff000000200000', 'ttbr1_el1'),
      { start: '0xffff000000200000', end: '0xffff000000400000', kind: 'mapped', root: 'ttbr1_el1', page_size: 2097152, level: 2, count: 1, user: false, perms: 'r-x' },
      hole('0xffff000000400000', TWO_64, 'ttbr1_el1'),
    ];
    const r = await run('map', arm64Image(), '--json');
    expect(r.code).toBe(0);
    expect(jsonLines(r.out)).toEqual(expected);
  });

  it('ARM64 with TCR_EL1.HA = HD = 1 (bits 39, 40; Arm ARM D8.5): a DBM page is writable — the hardware clears AP[2] on a write', async () => {
    const r = await run('map', arm64Image((1n << 39n) | (1n << 40n)), '--json');
    expect(jsonLines(r.out)[3]).toMatchObject({ start: '0x402000', perms: 'rw-', user: true });
    // HD alone does nothing without HA.
    const r2 = await run('map', arm64Image(1n << 40n), '--json');
    expect(jsonLines(r2.out)[3]).toMatchObject({ start: '0x402000', perms: 'r--' });
  });

  it('--start/--end clip the map: the window is covered exactly, runs cut at its edges', async () => {
    const dir = x86Image();
    const a = await run('map', dir, '--json', '--start', '0x401000', '--end', '0x700000');
    expect(jsonLines(a.out)).toEqual([
      user('0x401000', '0x404000', 4096, 1, 3, 'rw-'),
      user('0x404000', '0x405000', 4096, 1, 1, 'r-x'),
      hole('0x405000', '0x5ff000'),
      user('0x5ff000', '0x600000', 4096, 1, 1, 'rw-'),
      // B[3]'s 2M leaf, cut at the window's end.
      user('0x600000', '0x700000', 2097152, 2, 1, 'rw-'),
    ]);
    // A window that starts inside B[3]'s 2M leaf and ends inside B[4]'s: one run of the two, cut at both ends.
    const c = await run('map', dir, '--json', '--start', '0x601000', '--end', '0x900000');
    expect(jsonLines(c.out)).toEqual([user('0x601000', '0x900000', 2097152, 2, 2, 'rw-')]);
    // Across the non-canonical gap: a page of each half around it.
    const b = await run('map', dir, '--json', '--start', '0x7ffffffff000', '--end', '0xffff800000001000');
    expect(jsonLines(b.out)).toEqual([
      hole('0x7ffffffff000', '0x800000000000'),
      { start: '0x800000000000', end: '0xffff800000000000', kind: 'untranslated' },
      hole('0xffff800000000000', '0xffff800000001000'),
    ]);
  });

  it('text: a summary per half, by page size and by permission', async () => {
    const r = await run('map', x86Image());
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    // Lower half: 4K ×4 + ×1 + ×1 = 6 leaves (24K); 2M ×2 (4M); 1G ×1. user rw- 16K + 4K + 4M.
    expect(lines[1]).toBe('lower half 0x0 – 0x800000000000: 5 runs, ~1.0G mapped, 4 holes');
    expect(lines[2]).toBe('  by page size   4K ×6 (24K), 2M ×2 (4M), 1G ×1 (1G)');
    expect(lines[3]).toBe('  by permission  user rw- 4116K, user r-x 4K, kernel rw- 1G');
    expect(lines[4]).toBe('upper half 0xffff800000000000 – 0x10000000000000000: 2 runs, 2G mapped, 2 holes');
  });
});

describe('mmulab map --svg', () => {
  it('writes a well-formed SVG with exactly one element per range, each carrying its addresses', async () => {
    const dir = x86Image();
    const svgPath = join(scratch(), 'map.svg');
    const r = await run('map', dir, '--svg', svgPath);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`wrote ${svgPath}: 14 ranges`);
    const text = readFileSync(svgPath, 'utf8');
    const doc = parseXml(text);
    expect(doc.name).toBe('svg');
    expect(doc.attrs.xmlns).toBe('http://www.w3.org/2000/svg');
    expect(Number(doc.attrs.width)).toBeGreaterThan(0);
    expect(Number(doc.attrs.height)).toBeGreaterThan(0);
    expect(doc.attrs.viewBox).toBe(`0 0 ${doc.attrs.width} ${doc.attrs.height}`);
    const ranges = all(doc, hasClass('range'));
    expect(ranges.map((e) => [e.attrs['data-start'], e.attrs['data-end']])).toEqual(X86_RANGES.map((x) => [x.start, x.end]));
    expect(ranges.filter(hasClass('mapped'))).toHaveLength(7);
    expect(ranges.filter(hasClass('hole'))).toHaveLength(6);
    expect(ranges.filter(hasClass('untranslated'))).toHaveLength(1);
    // Each mapped bar has a <title> naming its addresses, its page count and permissions.
    const bar = ranges.find((e) => e.attrs['data-start'] === '0x600000')!;
    const title = bar.children.find((c): c is XmlElement => typeof c !== 'string' && c.name === 'title')!;
    expect(title.children.join('')).toBe('0x0000000000600000 – 0x00000000009fffff  4M: 2 × 2M (PD entry, level 2), user rw-');
    // Colour by permission: the user rw- runs share a fill, which differs from kernel rw- and user r-x.
    const fill = (start: string) => ranges.find((e) => e.attrs['data-start'] === start)!.attrs.fill;
    expect(fill('0x400000')).toBe(fill('0x600000'));
    expect(new Set([fill('0x400000'), fill('0x404000'), fill('0x40000000'), fill('0xffff888040000000')]).size).toBe(4);
  });

  it('rows: edge holes and holes that dwarf their neighbours get rows of their own; a 4K page is not squeezed beside a 1G block', async () => {
    const svgPath = join(scratch(), 'map.svg');
    await run('map', x86Image(), '--svg', svgPath);
    const rows = all(parseXml(readFileSync(svgPath, 'utf8')), hasClass('row')).map((e) => `${e.attrs.class!.split(' ')[1]} ${e.attrs['data-start']}`);
    // Lower half: the 0x400000 … 0x80000000 stretch is split at its largest hole (1014M, half of
    // it), then 0x400000 … 0xa00000 at 0x405000 (its 4K pages would be < 2 px on a 6M-wide row).
    expect(rows).toEqual([
      'hole 0x0',
      'region 0x400000',
      'hole 0x405000',
      'region 0x5ff000',
      'hole 0xa00000',
      'region 0x40000000',
      'hole 0x80000000',
      'hole 0xffff800000000000',
      'region 0xffff888000000000',
      'hole 0xffff888080000000',
    ]);
  });

  it('an ARM64 image names TTBR0_EL1 and TTBR1_EL1 bands and the gap between them', async () => {
    const svgPath = join(scratch(), 'arm.svg');
    const r = await run('map', arm64Image(), '--svg', svgPath, '--json');
    expect(r.code).toBe(0);
    expect(jsonLines(r.out)).toHaveLength(9); // --json still prints the ranges, and nothing else
    const doc = parseXml(readFileSync(svgPath, 'utf8'));
    const texts = all(doc, (e) => e.name === 'text').map((e) => e.children.join(''));
    expect(texts).toContain('TTBR0_EL1 (user space)');
    expect(texts).toContain('TTBR1_EL1 (kernel space)');
    expect(texts.some((t) => t.includes('outside the TTBR0/TTBR1 ranges'))).toBe(true);
    expect(all(doc, hasClass('range'))).toHaveLength(9);
  });

  it('replaces an existing file whole', async () => {
    const svgPath = join(scratch(), 'map.svg');
    writeFileSync(svgPath, 'old content '.repeat(100000));
    expect((await run('map', x86Image(), '--svg', svgPath)).code).toBe(0);
    expect(() => parseXml(readFileSync(svgPath, 'utf8'))).not.toThrow();
  });
});

describe('mmulab map: errors', () => {
  it('usage errors exit 2 with the usage', async () => {
    const dir = x86Image();
    for (const argv of [
      ['map'],
      ['map', dir, dir],
      ['map', dir, '--start', '0x1001'],
      ['map', dir, '--end', 'zz'],
      ['map', dir, '--start', '0x2000', '--end', '0x1000'],
      ['map', dir, '--svg', ''],
      ['map', dir, '--colour'],
    ]) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err).toContain('Usage: mmulab map DIR');
    }
  });

  it('a missing folder exits 1 naming machine.json, no stack trace', async () => {
    const r = await run('map', '/nonexistent/image');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^mmulab map: \/nonexistent\/image.*machine\.json/);
    expect(r.err).not.toMatch(/^\s+at /m);
  });

  it('an --svg path that cannot be written exits 1 and leaves no file behind', async () => {
    const dir = x86Image();
    // A folder where the file should go: the temporary is written, the rename fails, and both go.
    const parent = scratch();
    const target = join(parent, 'taken.svg');
    mkdirSync(target);
    const r = await run('map', dir, '--svg', target);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^mmulab map: --svg ${target}: cannot write \\(E[A-Z]+\\)$`));
    expect(readdirSync(parent)).toEqual(['taken.svg']);
    expect(readdirSync(target)).toEqual([]);
    // A folder that does not exist.
    const missing = join(parent, 'no', 'such', 'map.svg');
    const r2 = await run('map', dir, '--svg', missing);
    expect(r2.code).toBe(1);
    expect(r2.err).toContain('cannot write (ENOENT)');
    expect(existsSync(join(parent, 'no'))).toBe(false);
  });
});
