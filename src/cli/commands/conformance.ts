/** mmulab conformance pagewalk: replay page-walk scenario files through the real walker. */
import { existsSync } from 'node:fs';
import { pagewalkConformance } from '../../index';
import { parse } from '../args';
import type { Command, Io } from '../command';
import { InputError, UsageError } from '../errors';
import { ProgressBar } from '../progress';

export const usage = `Usage: mmulab conformance pagewalk PATH... [--json]

Replay page-walk conformance scenarios (format mmulab-pagewalk-scenario/1): each file is one call
of a Linux page-walk entry point on a small page-table tree with the expected return value,
callback trace and final tree. PATH is a scenario file or a folder searched recursively for
*.json. Prints "agree N/M" and, for each disagreement, the scenario's name and rule and the first
differing callback (index, expected, got). Exit 0 only when every scenario agrees.

Options:
  --json        one JSON document: {agree, total, disagreements}
  -h, --help    this help

Examples:
  mmulab conformance pagewalk test/fixtures/pagewalk-conformance/scenarios
  mmulab conformance pagewalk my-corpus/ one_more.json --json`;

export const conformance: Command = {
  name: 'conformance',
  summary: 'replay the page-walk conformance corpus (or any corpus in its schema)',
  usage,
  run(argv: string[], io: Io): number {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
    if (values.help) {
      io.out(usage);
      return 0;
    }
    const [suite, ...paths] = positionals;
    if (suite === undefined) throw new UsageError('a suite is required: pagewalk');
    if (suite !== 'pagewalk') throw new UsageError(`unknown suite '${suite}': expected pagewalk`);
    if (paths.length === 0) throw new UsageError('PATH is required: scenario files or folders');
    for (const p of paths) if (!existsSync(p)) throw new InputError(`${p}: no such file or folder`);
    // replayPath, file by file, with a progress bar on stderr for a corpus that takes over a second.
    const files = pagewalkConformance.scenarioFiles(paths);
    const bar = new ProgressBar(process.stderr, 'replaying');
    const results: ReturnType<typeof pagewalkConformance.replayFile>[] = [];
    try {
      for (const f of files) {
        results.push(pagewalkConformance.replayFile(f));
        bar.update(results.length, files.length);
      }
    } finally {
      bar.finish();
    }
    if (results.length === 0) throw new InputError(`no *.json scenario files under ${paths.join(', ')}`);
    io.out(pagewalkConformance.formatReport(results, { json: Boolean(values.json) }));
    return results.every((r) => r.agree) ? 0 : 1;
  },
};
