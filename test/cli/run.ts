/** Run the CLI in-process with captured output. */
import { runCli } from '../../src/cli/main';

export interface Run {
  code: number;
  out: string;
  err: string;
}

const plain = { bold: (s: string) => s, dim: (s: string) => s, cyan: (s: string) => s, green: (s: string) => s, yellow: (s: string) => s, red: (s: string) => s };

export async function run(...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t), style: plain });
  return { code, out: out.join('\n'), err: err.join('\n') };
}
