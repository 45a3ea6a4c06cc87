import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './run';

const corpus = join(__dirname, '../fixtures/pagewalk-conformance/scenarios');

describe('mmulab conformance pagewalk', () => {
  it('replays a folder and reports agree N/M, exit 0 when all agree', async () => {
    const r = await run('conformance', 'pagewalk', corpus);
    expect(r.code).toBe(0);
    expect(r.out).toBe('agree 78/78');
  });

  it('a scenario whose expectation is wrong is reported with its rule and first differing callback, exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmulab-conf-'));
    const s = JSON.parse(readFileSync(join(corpus, 'split_huge_pmd_for_pte_entry.json'), 'utf8'));
    s.expected.trace[2].addr = '0x40f000'; // the walk really visits 0x401000 second
    writeFileSync(join(dir, 'doctored.json'), JSON.stringify(s));
    writeFileSync(join(dir, 'ok.json'), readFileSync(join(corpus, 'einval_null_mm.json')));
    const r = await run('conformance', 'pagewalk', dir);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^agree 1\/2/);
    expect(r.out).toMatch(/DISAGREE split_huge_pmd_for_pte_entry/);
    expect(r.out).toMatch(/rule: with a VMA and a pte_entry, a huge pmd is shown to pmd_entry first/);
    expect(r.out).toMatch(/first differing callback #2/);
  });

  it('--json gives the counts and the disagreements as data', async () => {
    const r = await run('conformance', 'pagewalk', join(corpus, 'einval_null_mm.json'), '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ agree: 1, total: 1, disagreements: [] });
  });

  it('a malformed scenario names the JSON path that is wrong', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmulab-conf-'));
    const s = JSON.parse(readFileSync(join(corpus, 'einval_null_mm.json'), 'utf8'));
    s.call.args.start = 'not-hex';
    writeFileSync(join(dir, 'bad.json'), JSON.stringify(s));
    const r = await run('conformance', 'pagewalk', dir);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/call\.args\.start/);
  });

  it.each([
    [['conformance'], 2, /a suite is required: pagewalk/],
    [['conformance', 'tlb', 'x'], 2, /unknown suite 'tlb'/],
    [['conformance', 'pagewalk'], 2, /PATH is required/],
    [['conformance', 'pagewalk', '/no/such/dir'], 1, /\/no\/such\/dir: no such file or folder/],
  ])('%j exits %i', async (argv, code, message) => {
    const r = await run(...argv);
    expect(r.code).toBe(code);
    expect(r.err).toMatch(message);
  });
});
