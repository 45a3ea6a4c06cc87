/**
 * The page-walk conformance corpus (test/fixtures/pagewalk-conformance, a copy of
 * shared/conformance/pagewalk): every scenario replayed through src/walk/pagewalk.ts must agree
 * with its expected return value, callback trace and final tree. The expectations are the
 * corpus's own (derived from mm/pagewalk.c, seed 004, and Linux 6.18), independent of our code.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { replayScenario } from '../../src/walk/conformance/driver';
import { describeDisagreement, formatReport, replayFile, replayPath } from '../../src/walk/conformance/index';
import { parseScenario, parseScenarioText, ScenarioError } from '../../src/walk/conformance/schema';

const DIR = fileURLToPath(new URL('../fixtures/pagewalk-conformance/scenarios/', import.meta.url));
const FILES = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

function load(name: string): Record<string, any> {
  return JSON.parse(readFileSync(DIR + name, 'utf8'));
}

describe('pagewalk conformance corpus (mm/pagewalk.c as in seed 004, Linux 6.18 where the seeds are silent)', () => {
  it('holds the 78 scenarios of the corpus', () => {
    expect(FILES.length).toBe(78);
  });

  it.each(FILES)('%s', (file) => {
    const r = replayFile(DIR + file);
    expect(r.agree, [`${r.name}: ${r.rule}`, ...describeDisagreement(r)].join('\n')).toBe(true);
  });
});

describe('conformance driver: a wrong expectation is reported, not hidden', () => {
  it('pagewalk.c walk_pte_range_inner: a changed pte value in the expectation is the first difference, at its index', () => {
    const j = load('action_again_pmd_calls_again.json');
    j.expected.trace[3].val = 'page:0x98'; // the pte at 0x200000 holds pfn 0x99
    const r = replayScenario(parseScenario(j));
    expect(r.agree).toBe(false);
    expect(r.firstDifference?.index).toBe(3);
    expect(r.firstDifference?.fields).toEqual(['val']);
    expect(r.firstDifference?.got?.val).toBe('page:0x99');
    expect(r.treeDifference).toBeUndefined();
  });

  it('a missing tree entry is a tree difference naming the root', () => {
    const j = load('action_again_pmd_calls_again.json');
    j.expected.tree.mm.pop(); // drop the pte 0x200000 -> pfn 0x99
    const r = replayScenario(parseScenario(j));
    expect(r.agree).toBe(false);
    expect(r.firstDifference).toBeUndefined();
    expect(r.treeDifference).toEqual({ root: 'mm', index: 4, expected: null, got: { level: 'pte', va: '0x200000', kind: 'page', pfn: '0x99' } });
  });

  it('README script rules: skip 1, times 1 answers the second pte_entry only; pagewalk.c returns its non-zero value and stops', () => {
    const j = load('action_again_pmd_calls_again.json');
    j.script.rules = [{ cb: 'pte_entry', skip: 1, times: 1, ret: 5 }];
    // Hand-written from the README (hits counted per matching invocation; the rule decides when
    // skip < hits <= skip + times) and walk_pte_range_inner's `if (err) break;`.
    j.expected.ret = 5;
    j.expected.callbacks = 3;
    j.expected.trace = [
      { seq: 0, cb: 'pmd_entry', entry: 'mm:pmd@0x0[1]', val: 'table', addr: '0x200000', next: '0x204000', vma: 'v0', action: 'SUBTREE', ret: 0 },
      { seq: 1, cb: 'pte_entry', entry: 'mm:pte@0x200000[0]', val: 'page:0x99', addr: '0x200000', next: '0x201000', vma: 'v0', ret: 0 },
      { seq: 2, cb: 'pte_entry', entry: 'mm:pte@0x200000[1]', val: 'none', addr: '0x201000', next: '0x202000', vma: 'v0', ret: 5 },
    ];
    const r = replayScenario(parseScenario(j));
    expect(r.agree, describeDisagreement(r).join('\n')).toBe(true);
  });

  it('README script rules: a rule that selects a VMA id does not answer for another one', () => {
    const j = load('action_again_pmd_calls_again.json');
    j.script.rules = [{ cb: 'pmd_entry', vma: 'other', times: 2, action: 'AGAIN' }];
    const r = replayScenario(parseScenario(j));
    expect(r.agree).toBe(false);
    // Without the AGAIN answers the first pmd_entry leaves ACTION_SUBTREE and the walk descends.
    expect(r.firstDifference?.index).toBe(0);
    expect(r.firstDifference?.fields).toEqual(['action']);
    expect(r.firstDifference?.got?.action).toBe('SUBTREE');
    expect(r.trace[1]?.cb).toBe('pte_entry');
  });
});

describe('conformance report', () => {
  it('replayPath takes a folder (recursively, sorted by name) and formatReport counts agreements', () => {
    const results = replayPath([DIR]);
    expect(results.map((r) => r.file!.slice(DIR.length))).toEqual(FILES);
    expect(formatReport(results).split('\n')[0]).toBe(`agree ${results.filter((r) => r.agree).length}/78`);
    const json = JSON.parse(formatReport(results, { json: true }));
    expect(json.total).toBe(78);
  });

  it('a disagreement is printed with its name, rule and first differing callback', () => {
    const j = load('action_again_pmd_calls_again.json');
    j.expected.trace[2].action = 'CONTINUE';
    const r = replayScenario(parseScenario(j));
    const text = formatReport([r]);
    expect(text).toContain('agree 0/1');
    expect(text).toContain('DISAGREE action_again_pmd_calls_again');
    expect(text).toContain('first differing callback #2 (action)');
    expect(text).toContain('"action":"SUBTREE"');
  });
});

describe('scenario schema: errors name the JSON path and what was expected', () => {
  const base = (): Record<string, any> => load('walk_page_mapping_clips_by_pgoff.json');

  it('bad hex: vmas[0].start', () => {
    const j = base();
    j.vmas[0].start = '4096';
    expect(() => parseScenario(j)).toThrow(ScenarioError);
    expect(() => parseScenario(j)).toThrow('vmas[0].start: expected a hex string "0x…", got "4096"');
    j.vmas[0].start = '0x40g000';
    expect(() => parseScenario(j)).toThrow(/^vmas\[0\]\.start: expected a hex string "0x…"/);
  });

  it('a hex value above 2^64 is refused; 2^64 itself is the end of the space, exact as a number', () => {
    const j = load('kernel_walk_to_top_of_space_arm64_4k48.json');
    expect(j.call.args.end).toBe('0x10000000000000000');
    const s = parseScenario(j);
    expect(s.call.fn === 'walk_kernel_page_table_range' && s.call.end).toBe(18446744073709551616);
    j.call.args.end = '0x10000000000000001';
    expect(() => parseScenario(j)).toThrow(/^call\.args\.end: expected a value no larger than 2\^64/);
  });

  it('missing field: call.args.first_index', () => {
    const j = base();
    delete j.call.args.first_index;
    expect(() => parseScenario(j)).toThrow('call.args.first_index: expected a value (the key is required), got nothing (the key is missing)');
  });

  it('unknown geometry', () => {
    const j = base();
    j.geometry = 'x86_64-3level';
    expect(() => parseScenario(j)).toThrow(/^geometry: expected a known geometry \(x86_64-4level, x86_64-5level, arm64-4k-39/);
  });

  it('unknown callback name, in ops and in a rule', () => {
    const j = base();
    j.ops = ['pmd_entry', 'pte_entri'];
    expect(() => parseScenario(j)).toThrow(/^ops\[1\]: expected one of "pgd_entry", .*"install_pte", got "pte_entri"$/);
    const k = base();
    k.script.rules = [{ cb: 'pmd_entry' }, { cb: 'walk_entry', ret: 1 }];
    expect(() => parseScenario(k)).toThrow(/^script\.rules\[1\]\.cb: expected one of "pgd_entry"/);
  });

  it('an entry kind the level cannot hold (README: leaf only where the lowest alias is pmd, or pud with pud_leaf)', () => {
    const j = load('folded_p4d_pud_pmd_same_pointer_arm64_64k42.json');
    j.roots.mm.entries.push({ level: 'pud', va: '0x40000000000', kind: 'bad' });
    // arm64 64K/42: the pgd entry's lowest alias is pmd (p4d, pud and pmd are folded): no "bad".
    expect(() => parseScenario(j)).toThrow(/^roots\.mm\.entries\[\d+\]\.kind: expected one of "none", "table", "leaf", "swap" at level pud of arm64-64k-42, got "bad"$/);
  });

  it('overlapping entries (README: entries never overlap): a pte under a pmd leaf', () => {
    const j = load('action_again_pmd_calls_again.json');
    j.roots.mm.entries.push({ level: 'pmd', va: '0x200000', kind: 'leaf', pfn: '0x400' });
    expect(() => parseScenario(j)).toThrow('roots.mm.entries[1]: expected an entry that does not overlap roots.mm.entries[0] (README: entries never overlap), got "0x200000"');
  });

  it('a JSON syntax error names the source', () => {
    expect(() => parseScenarioText('{"format": ', 'x.json')).toThrow(/^\(top level\): expected JSON \(x\.json: /);
  });

  it('unknown keys are ignored (the schema may grow)', () => {
    const j = base();
    j.future = { anything: 1 };
    j.vmas[0].numa_node = 3;
    j.call.args.flags = 'x';
    j.expected.trace[0].extra = 'ignored';
    const s = parseScenario(j);
    expect(s.vmas[0]!.id).toBe('v0');
    expect(replayScenario(s).agree).toBe(true);
  });
});
