import type { Style } from './style';

/** Where a command writes: injectable so tests capture output without spawning a process. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  readonly style: Style;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  /** Returns the exit code; throws UsageError (exit 2) or InputError (exit 1). */
  run(argv: string[], io: Io): number | Promise<number>;
}
