import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../mm/image-fixtures';
import { run } from './run';

const EXAMPLES = join(__dirname, '../../examples');
const examples = readdirSync(EXAMPLES).filter((f) => f.endsWith('.json'));

function scenarioFile(v: unknown): string {
  const p = join(tempDir(), 'scenario.json');
  writeFileSync(p, typeof v === 'string' ? v : JSON.stringify(v));
  return p;
}

const ANON = { op: 'mmap', as: 'a', length: '16K', prot: ['read', 'write'], flags: ['private', 'anonymous'] };
const base = (ops: unknown[]) => ({ format: 'mmulab-scenario/1', machine: { memory: '16M' }, processes: [{ name: 'p', ops }] });

describe('mmulab run', () => {
  for (const f of examples) {
    it(`examples/${f}: exit 0, expectations met, no frame leaked`, async () => {
      const r = await run('run', join(EXAMPLES, f));
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/Check: \d+ steps, \d+ expectations?, 0 failed; teardown.*: no frame leaked — ok$/);
    });
  }

  it('--json: one step line per op, one line per process, then the check line', async () => {
    const r = await run('run', join(EXAMPLES, 'fork-cow.json'), '--json');
    expect(r.code).toBe(0);
    const lines = r.out.split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const steps = lines.filter((l) => l.type === 'step');
    expect(steps).toHaveLength(17);
    expect(steps[0]).toMatchObject({ type: 'step', index: 0, path: 'processes[0].ops[0]', process: 'parent', op: 'mmap', outcome: 'ok', ok: true, as: 'heap', length: 16384 });
    expect(steps[9]).toMatchObject({ process: 'child', op: 'touch', outcome: 'SIGSEGV', expect: 'SIGSEGV', ok: true });
    expect(lines.filter((l) => l.type === 'process').map((l) => [l.name, l.exited])).toEqual([
      ['parent', true],
      ['child', true],
    ]);
    const check = lines[lines.length - 1]!;
    expect(check).toMatchObject({ type: 'check', leaked_frames: 0, swap_slots_left: 0, failures: [], ok: true });
    expect(check.free_frames_after).toBe(check.free_frames_at_start);
  });

  it('live processes get totals (VMAs, rss, page tables) and are made to exit by the teardown', async () => {
    const r = await run('run', scenarioFile(base([ANON, { op: 'touch', at: 'a', access: 'write', count: 2 }])), '--json');
    expect(r.code).toBe(0);
    const lines = r.out.split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const p = lines.find((l) => l.type === 'process')!;
    // x86_64-4level: one table per physical level for one touched range (p4d folded into the pgd).
    expect(p).toMatchObject({ name: 'p', exited: false, vmas: 1, rss: { anon: 2, file: 0, shmem: 0, swap: 0, hugetlb: 0 }, page_tables: { pgd: 1, pud: 1, pmd: 1, pte: 1 }, page_tables_total: 4 });
    expect(lines[lines.length - 1]).toMatchObject({ teardown_exited: ['p'], leaked_frames: 0, ok: true });
  });

  it('--quiet: only the check; with --json only the check line', async () => {
    const q = await run('run', join(EXAMPLES, 'fork-cow.json'), '--quiet');
    expect(q.code).toBe(0);
    expect(q.out.split('\n')).toHaveLength(1);
    const j = await run('run', join(EXAMPLES, 'fork-cow.json'), '--quiet', '--json');
    expect(j.out.split('\n')).toHaveLength(1);
    expect(JSON.parse(j.out)).toMatchObject({ type: 'check', ok: true });
  });

  it('an unmet expectation exits 1 and says what was expected', async () => {
    const r = await run('run', scenarioFile(base([ANON, { op: 'touch', at: 'a', expect: 'SIGSEGV' }])));
    expect(r.code).toBe(1);
    expect(r.out).toContain('✗ expected SIGSEGV, got ok');
    expect(r.out).toContain('processes[0].ops[1] (p touch): expected SIGSEGV, got ok');
    expect(r.out).toMatch(/— FAILED$/);
  });

  it('a bad scenario exits 1 with the file, the JSON path and what was expected', async () => {
    const f = scenarioFile(base([{ ...ANON, length: 5000 }]));
    const r = await run('run', f);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`mmulab run: ${f}: processes[0].ops[0].length: must be a multiple of the page size (4096)`);
  });

  it('invalid JSON and a missing file exit 1', async () => {
    const bad = await run('run', scenarioFile('{"format": '));
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/scenario: not valid JSON/);
    const missing = await run('run', '/nonexistent/scenario.json');
    expect(missing.code).toBe(1);
    expect(missing.err).toBe('mmulab run: /nonexistent/scenario.json: cannot read (ENOENT)');
  });

  it('usage errors exit 2; --help exits 0 with examples', async () => {
    expect((await run('run')).code).toBe(2);
    expect((await run('run', 'a.json', 'b.json')).code).toBe(2);
    expect((await run('run', 'a.json', '--bogus')).code).toBe(2);
    const h = await run('run', '--help');
    expect(h.code).toBe(0);
    expect(h.out).toContain('Usage: mmulab run SCENARIO');
    expect(h.out).toContain('Examples:');
  });
});
