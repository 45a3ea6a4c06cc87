/**
 * The page-walk conformance corpus, replayed from files: `replayPath` takes scenario files or
 * folders (searched recursively for *.json, sorted by name) and `formatReport` prints the agree
 * count and, for each disagreement, the first differing callback (or the return value / tree).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { replayScenario, type ReplayResult } from './driver';
import { parseScenarioText, type TraceEvent, type TreeEntry } from './schema';

export { replayScenario, compareTraces, compareTrees } from './driver';
export type { ReplayResult, TraceDifference, TreeDifference } from './driver';
export { parseScenario, parseScenarioText, ScenarioError } from './schema';
export type { Scenario, TraceEvent, TreeEntry } from './schema';

/** The *.json files under the given files or folders, each list sorted by name. */
export function scenarioFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  const visit = (p: string): void => {
    const st = statSync(p);
    if (st.isDirectory()) {
      const names = readdirSync(p).sort();
      for (const n of names) {
        const child = join(p, n);
        if (statSync(child).isDirectory() || n.endsWith('.json')) visit(child);
      }
    } else {
      out.push(p);
    }
  };
  for (const p of paths) visit(p);
  return out;
}

/** Replay one scenario file. A file that does not parse gives a disagreeing result naming the error. */
export function replayFile(file: string): ReplayResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return failed(file, `cannot read ${file}: ${(e as Error).message}`);
  }
  let result: ReplayResult;
  try {
    result = replayScenario(parseScenarioText(text, file));
  } catch (e) {
    return failed(file, `${file}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
  result.file = file;
  return result;
}

function failed(file: string, error: string): ReplayResult {
  return {
    name: basename(file).replace(/\.json$/, ''),
    rule: '',
    file,
    agree: false,
    ret: { expected: 0, got: null },
    error,
    trace: [],
    tree: {},
  };
}

/** Replay every scenario under `paths` (files or folders, recursively, *.json sorted by name). */
export function replayPath(paths: readonly string[]): ReplayResult[] {
  return scenarioFiles(paths).map(replayFile);
}

function showEvent(e: TraceEvent | null): string {
  return e === null ? '(none: the trace ended)' : JSON.stringify(e);
}

function showTreeEntry(e: TreeEntry | null): string {
  return e === null ? '(none)' : JSON.stringify(e);
}

/** What one disagreement is about, in a few lines (the first difference only). */
export function describeDisagreement(r: ReplayResult): string[] {
  const lines: string[] = [];
  if (r.error !== undefined) lines.push(`  error: ${r.error}`);
  if (r.ret.got !== r.ret.expected && r.ret.got !== null) lines.push(`  ret: expected ${r.ret.expected}, got ${r.ret.got}`);
  const d = r.firstDifference;
  if (d) {
    lines.push(`  first differing callback #${d.index} (${d.fields.join(', ')}):`);
    lines.push(`    expected ${showEvent(d.expected)}`);
    lines.push(`    got      ${showEvent(d.got)}`);
  }
  const t = r.treeDifference;
  if (t && !d) {
    lines.push(`  tree ${t.root}, entry #${t.index}:`);
    lines.push(`    expected ${showTreeEntry(t.expected)}`);
    lines.push(`    got      ${showTreeEntry(t.got)}`);
  } else if (t) {
    lines.push(`  tree ${t.root} differs too (entry #${t.index})`);
  }
  return lines;
}

/**
 * The report: `agree N/M`, then each disagreement with its name, rule and first difference.
 * With `json`, one JSON document: { agree, total, disagreements: [...] }.
 */
export function formatReport(results: readonly ReplayResult[], opts: { json?: boolean } = {}): string {
  const agree = results.filter((r) => r.agree).length;
  const bad = results.filter((r) => !r.agree);
  if (opts.json) {
    return JSON.stringify(
      {
        agree,
        total: results.length,
        disagreements: bad.map((r) => ({
          name: r.name,
          file: r.file,
          rule: r.rule,
          ret: r.ret,
          error: r.error,
          firstDifference: r.firstDifference,
          treeDifference: r.treeDifference,
        })),
      },
      null,
      2,
    );
  }
  const lines = [`agree ${agree}/${results.length}`];
  for (const r of bad) {
    lines.push('', `DISAGREE ${r.name}${r.file ? ` (${r.file})` : ''}`);
    if (r.rule) lines.push(`  rule: ${r.rule}`);
    lines.push(...describeDisagreement(r));
  }
  return lines.join('\n');
}
