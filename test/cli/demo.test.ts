import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main';
import { systemPart } from '../../src/cli/commands/demo';
import type { PtdumpMapping } from '../../src/index';
import { run } from './run';

const plain = { bold: (t: string) => t, dim: (t: string) => t, cyan: (t: string) => t, green: (t: string) => t, yellow: (t: string) => t, red: (t: string) => t };

const HEADINGS = [
  /^Page tables of app /m,
  /^Page tables of child /m,
  /^smaps totals \(kB\)/m,
  /^Three translations of app, level by level/m,
  /^TLB \(/m,
  /^Walk throughput: /m,
  /^Teardown: .*no frame leaked/m,
];

/** One ptdump block of the text: its range lines parsed (start, end, pa, rw, vma, shared-with marker). */
function ptdumpRows(text: string, proc: string): { start: number; end: number; pa: number; ro: boolean; vma: string; same: string }[] {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`Page tables of ${proc} `));
  expect(at).toBeGreaterThanOrEqual(0);
  const rows = [];
  for (const l of lines.slice(at + 1)) {
    const m = /^ {2}(0x[0-9a-f]+)-(0x[0-9a-f]+) +\S+ +(pte|pmd|pud) +(0x[0-9a-f]+) +(.*?) {1,}(\w+)(?: +(= \w+.*))?$/.exec(l);
    if (!m) break;
    rows.push({ start: Number(m[1]), end: Number(m[2]), pa: Number(m[4]), ro: /\bro\b/.test(m[5]!), vma: m[6]!, same: m[7] ?? '' });
  }
  return rows;
}

/** The PA a merged range list gives `va`, and whether that range is read-only; null when unmapped. */
function lookup(ranges: readonly PtdumpMapping[], va: number): { pa: number; attrs: Readonly<Record<string, boolean | number>> } | null {
  const r = ranges.find((x) => x.start <= va && va < x.end);
  return r ? { pa: r.pa + (va - r.start), attrs: r.attrs } : null;
}

describe('mmulab demo (the default: the system on x86-64 and on ARM64)', () => {
  it('exits 0 within a few seconds and shows every part of both systems, in plain text when not a terminal', async () => {
    const t0 = Date.now();
    const r = await run('demo');
    const seconds = (Date.now() - t0) / 1000;
    expect(r.code).toBe(0);
    expect(seconds).toBeLessThan(10);
    expect(r.out).toMatch(/^x86-64 \(x86_64-4level\): a process and its fork/m);
    expect(r.out).toMatch(/^ARM64 \(arm64-4k-48\): a process and its fork/m);
    const parts = r.out.split(/\n(?=ARM64 \(arm64-4k-48\))/);
    expect(parts).toHaveLength(2);
    for (const p of parts) for (const h of HEADINGS) expect(p).toMatch(h);
    // io.style is plain in these tests (a pipe): no escape sequence anywhere.
    expect(r.out).not.toMatch(/\x1b\[/);
  });

  it('each system part fits a screen: at most 60 lines of at most 100 columns', async () => {
    for (const part of ['x86_64', 'arm64']) {
      const r = await run('demo', '--part', part);
      expect(r.code).toBe(0);
      const lines = r.out.split('\n');
      expect(lines.length).toBeLessThanOrEqual(60);
      const widest = Math.max(...lines.map((l) => [...l].length));
      expect(widest).toBeLessThanOrEqual(100);
    }
  });

  it('colours headings when the terminal supports it (a colour Io style)', async () => {
    const out: string[] = [];
    const colour = { ...plain, bold: (t: string) => `\x1b[1m${t}\x1b[22m` };
    const code = await runCli(['demo', '--part', 'decode'], { out: (t) => out.push(t), err: () => {}, style: colour });
    expect(code).toBe(0);
    expect(out.join('\n')).toMatch(/\x1b\[1mDescriptors, decoded/);
  });

  it('keeps the other parts; an unknown part is a usage error (exit 2)', async () => {
    const g = await run('demo', '--part', 'geometry');
    expect(g.out.split('\n').filter((l) => /^(x86_64|arm64)-/.test(l))).toHaveLength(12);
    const bad = await run('demo', '--part', 'sparc');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--part: 'sparc' is not one of x86_64, arm64, geometry, decode, walk/);
  });
});

describe('mmulab demo: the figures agree with each other (mm/memory.c copy-on-write, fork)', () => {
  for (const geo of ['x86_64-4level', 'arm64-4k-48'] as const) {
    it(`${geo}: the COW pages are in both ptdumps at the same PA, read-only; the child's written page is its own; nothing leaks`, () => {
      const p = systemPart(geo, plain);
      const heap = p.at.get('heap')!;
      const stack = p.at.get('stack')!;
      const app = p.ptdumps.app!;
      const child = p.ptdumps.child!;
      const readOnly = (a: Readonly<Record<string, boolean | number>>) => (geo.startsWith('x86') ? a.rw === false : (Number(a.ap) & 2) !== 0);
      // The heap's pages 1-3 and the stack's top page: written by app before fork, never written
      // after — copy_present_pte write-protected them in both processes, same page frame.
      for (const va of [heap + 0x1000, heap + 0x2000, heap + 0x3000, stack + 128 * 1024]) {
        const a = lookup(app, va)!;
        const c = lookup(child, va)!;
        expect(a).not.toBeNull();
        expect(c.pa).toBe(a.pa);
        expect(readOnly(a.attrs)).toBe(true);
        expect(readOnly(c.attrs)).toBe(true);
      }
      // Heap page 0: the child wrote it after fork, so do_wp_page gave it a copy (writable, another frame).
      const a0 = lookup(app, heap)!;
      const c0 = lookup(child, heap)!;
      expect(c0.pa).not.toBe(a0.pa);
      expect(readOnly(c0.attrs)).toBe(false);
      expect(readOnly(a0.attrs)).toBe(true);

      // The text shows the same: the child's heap rows marked "= app" carry app's PAs, read-only.
      const appRows = ptdumpRows(p.text, 'app');
      const childRows = ptdumpRows(p.text, 'child');
      expect(appRows.length).toBe(app.length);
      expect(childRows.length).toBe(child.length);
      const shared = childRows.filter((r) => r.vma === 'heap' && r.same === '= app');
      expect(shared).toHaveLength(1);
      const appHeap = appRows.find((r) => r.vma === 'heap')!;
      expect(shared[0]!.pa).toBe(appHeap.pa + (shared[0]!.start - appHeap.start));
      expect(shared[0]!.ro && appHeap.ro).toBe(true);

      // The explained COW write faults at the last level on the frame the ptdump shows for app's heap.
      // heap + 0x20 is in the heap's first page, 0x40c000: last-level index 12 on x86 and ARM64 4K alike.
      const leaf = /heap after fork, a user write \(COW\) → (?:protection|permission) fault\n(?: {2}[^\n]*\n)*? {2}(?:PT|L3)\[12\] +\S+ (0x[0-9a-f]{16})/.exec(p.text);
      expect(leaf).not.toBeNull();
      const desc = BigInt(leaf![1]!);
      // Output address field: bits 47:12 (x86-64 up to 51:12; no bits above 47 here).
      expect(Number(desc & 0x0000_ffff_ffff_f000n)).toBe(a0.pa);

      // The trace's COW faults were resolved by the kernel, and every frame came back at teardown.
      expect(p.text).toMatch(/faults: (protection|permission) ×\d+ — each resolved by handle_mm_fault/);
      expect(p.text).not.toMatch(/unresolved/);
      expect(p.leakedFrames).toBe(0);
      expect(p.teardownErrors).toEqual([]);
    });
  }
});
