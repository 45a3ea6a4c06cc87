/**
 * The mmulab command: dispatch, help, and the exit-code contract of DESIGN.md
 * (0 ok, 1 bad input or failed operation, 2 usage; no stack trace for a user error).
 */
import { ImageError, PhysAddrError } from '../index';
import type { Command, Io } from './command';
import { decode } from './commands/decode';
import { demo } from './commands/demo';
import { walk } from './commands/walk';
import { dump } from './commands/dump';
import { conformance } from './commands/conformance';
import { translate } from './commands/translate';
import { trace } from './commands/trace';
import { run } from './commands/run';
import { exportCommand } from './commands/export';
import { explain } from './commands/explain';
import { map } from './commands/map';
import { InputError, UsageError } from './errors';
import { styleFor } from './style';

export const COMMANDS: readonly Command[] = [demo, decode, walk, dump, conformance, translate, explain, map, trace, run, exportCommand];

export function mainUsage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: mmulab COMMAND [options]',
    '',
    'mmulab emulates the MMU of x86-64 and ARM64 machines: bit-exact page tables in emulated',
    'physical memory, the Linux page-walk API over them, and the tools to look inside.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run 'mmulab COMMAND --help' for a command's options and examples.",
  ].join('\n');
}

export async function runCli(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(mainUsage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    io.out('mmulab 0.1.0');
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    io.err(`mmulab: unknown command '${name}'\n\n${mainUsage()}`);
    return 2;
  }
  try {
    return await cmd.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`mmulab ${cmd.name}: ${e.message}\n\n${cmd.usage}`);
      return 2;
    }
    if (e instanceof InputError || e instanceof ImageError || e instanceof PhysAddrError || e instanceof RangeError || e instanceof SyntaxError) {
      io.err(`mmulab ${cmd.name}: ${(e as Error).message}`);
      return 1;
    }
    throw e;
  }
}

function processIo(): Io {
  return {
    out: (t) => process.stdout.write(t + '\n'),
    err: (t) => process.stderr.write(t + '\n'),
    style: styleFor(process.stdout),
  };
}

// Run when executed as the bin (dist/cli.js), not when imported by tests.
const invoked = process.argv[1] ?? '';
if (/(?:^|[\\/])(cli\.js|main\.ts|mmulab)$/.test(invoked)) {
  // A reader that stops early (mmulab dump --json | head) closes the pipe: stop quietly, as a
  // SIGPIPE would, instead of dying on an unhandled EPIPE 'error' event with a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(process.exitCode ?? 0);
  });
  runCli(process.argv.slice(2), processIo()).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`mmulab: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
