import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../mm/image-fixtures';
import { HandTables } from '../walk/ptdump-fixtures';
import { run } from './run';

/** x86-64 4-level by hand: VA 0x400000-0x402fff → 0x100000-0x102fff, user RW A D (0x67); 0x403000 supervisor (0x63). */
function image(): string {
  const t = new HandTables('x86_64-4level');
  const R = t.table();
  const P = t.table();
  const D = t.table();
  const T = t.table();
  t.set(R, 0, BigInt(P) | 0x67n);
  t.set(P, 0, BigInt(D) | 0x67n);
  t.set(D, 2, BigInt(T) | 0x67n);
  for (let i = 0; i < 3; i++) t.set(T, i, 0x10_0067n + BigInt(i) * 0x1000n);
  t.set(T, 3, 0x10_3063n);
  return t.save(R, R);
}

function traceFile(text: string | Uint8Array, name = 'trace.txt'): string {
  const p = join(tempDir(), name);
  writeFileSync(p, text);
  return p;
}

const TRACE = ['# user loop over three pages', '0x400000 r u', '0x401000 r u', '0x402000 w u', '0x400010 r u', '0x401010 w u', '0x403000 r u', '0x900000 r'].join('\n');

describe('mmulab trace', () => {
  it('--json: hits, misses, walks by level, faults by kind, fills by size (SDM Vol.3A 4.10.2: one entry per 4K page)', async () => {
    const r = await run('trace', image(), traceFile(TRACE), '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out);
    expect(s).toMatchObject({
      arch: 'x86_64',
      tlb: 'skylake',
      records: 7,
      accesses: 7,
      hits: 2,
      misses: 5,
      walks: 5,
      walks_by_level: { '1': 4, '2': 1 },
      faults: 2,
      faults_by_kind: { protection: 1, not_present: 1 },
      fills_by_page_size: { '4096': 3 },
      mem_refs: 4 + 4 + 4 + 4 + 3,
    });
    expect(s.tlb_arrays[0]).toMatchObject({ name: 'L1 4K', entries: 64, ways: 4, hits: 2, fills: 3 });
  });

  it('--walk-cache counts the PDE-cache hits and the effective memory references (SDM 4.10.3)', async () => {
    const r = await run('trace', image(), traceFile(TRACE), '--walk-cache', '--json');
    const s = JSON.parse(r.out);
    // walks: 0x400000 (4 reads), 0x401000, 0x402000, 0x403000 (PDE cached: 1 read each). The #PF of
    // the user read of 0x403000 invalidates the PML4E/PDPTE/PDE-cache entries used for it (SDM
    // 4.10.4.1), so 0x900000 (PD[4] empty) reads all 3 levels again.
    expect(s.walk_cache_hits_by_level).toEqual({ '2': 3 });
    expect(s.mem_refs_effective).toBe(4 + 1 + 1 + 1 + 3);
  });

  it('--tlb none: every access walks', async () => {
    const s = JSON.parse((await run('trace', image(), traceFile(TRACE), '--tlb', 'none', '--json')).out);
    expect(s).toMatchObject({ hits: 0, misses: 7, walks: 7 });
  });

  it('text output and a binary trace', async () => {
    const bin = new Uint8Array([0x4d, 0x4d, 0x55, 0x54, 0x52, 0x43, 0x31, 0x00, 0x00, 0x00, 0x40, 0, 0, 0, 0, 0, 0x04, 0x08, 0x00, 0x40, 0, 0, 0, 0, 0, 0x05]);
    const r = await run('trace', image(), traceFile(bin, 't.mmutrc'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^accesses {8}2 {2}\(2 records/);
    expect(r.out).toMatch(/TLB {13}skylake: hits 1 \(50\.00%; L1 1, L2 0\), misses 1/);
    expect(r.out).toMatch(/fills by size {3}4K 1/);
  });

  it('a bad trace line exits 1 naming the file and line; a bad --tlb exits 2', async () => {
    const bad = traceFile('0x400000 r\n0x400000 z\n');
    const r = await run('trace', image(), bad);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/trace\.txt line 2: access kind 'z'/);
    const t = await run('trace', image(), bad, '--tlb', 'L1:4K:64x5');
    expect(t.code).toBe(2);
    expect(t.err).toMatch(/--tlb: .*5 ways do not divide 64 entries/);
    const m = await run('trace', image(), '/nonexistent/trace');
    expect(m.code).toBe(1);
    expect(m.err).toMatch(/\/nonexistent\/trace: cannot read the trace \(ENOENT\)/);
  });

  it('--help and listing', async () => {
    const r = await run('trace', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Examples:\n {2}mmulab trace /);
    expect((await run('--help')).out).toMatch(/\n {2}trace {2,}/);
  });
});

describe('progress bar (src/cli/progress.ts)', () => {
  it('silent on a non-TTY; on a TTY only after the delay, at most every 100 ms, erased at the end', async () => {
    const { ProgressBar, progressLine } = await import('../../src/cli/progress');
    let now = 0;
    const written: string[] = [];
    const quiet = new ProgressBar({ isTTY: false, write: (s) => written.push(s) }, 'x', 1000, () => 5000);
    quiet.update(1, 2);
    quiet.finish();
    expect(written).toEqual([]);
    const bar = new ProgressBar({ isTTY: true, columns: 80, write: (s) => written.push(s) }, 'replaying', 1000, () => now);
    now = 500;
    bar.update(10, 100); // before the delay: nothing
    now = 1500;
    bar.update(50, 100);
    now = 1550;
    bar.update(60, 100); // within 100 ms of the last draw: nothing
    bar.finish();
    expect(written).toHaveLength(2);
    expect(written[0]).toMatch(/^\r\x1b\[2Kreplaying \[#+-+\] {2}50% {2}50\/100/);
    expect(written[1]).toBe('\r\x1b[2K');
    // 40 columns: tail "  25%  1/4  2.0s" is 16, so the bar gets 40 - 1 - 16 - 4 = 19 cells, round(19 / 4) = 5 filled
    expect(progressLine('p', 1, 4, 2, 40)).toBe('p [#####--------------]  25%  1/4  2.0s');
  });
});
