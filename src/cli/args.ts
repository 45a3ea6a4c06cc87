/** Argument parsing on node:util parseArgs, turning its errors into UsageError. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export function parse(argv: string[], options: Options, maxPositionals = Infinity): Parsed {
  let parsed: Parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true }) as Parsed;
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new UsageError(`unexpected argument '${parsed.positionals[maxPositionals]}'`);
  }
  return parsed;
}

/** A 64-bit value from "0x…", "0b…" or decimal; names the option in its error. */
export function parseU64(text: string, what: string): bigint {
  const t = text.replace(/_/g, '');
  if (!/^(0x[0-9a-f]+|0b[01]+|[0-9]+)$/i.test(t)) {
    throw new UsageError(`${what}: '${text}' is not a number (expected hex 0x…, binary 0b… or decimal)`);
  }
  const v = BigInt(t);
  if (v >= 1n << 64n) throw new UsageError(`${what}: '${text}' does not fit in 64 bits`);
  return v;
}

export function parseIntOption(text: string | undefined, what: string, allowed?: readonly number[]): number | undefined {
  if (text === undefined) return undefined;
  if (!/^-?[0-9]+$/.test(text)) throw new UsageError(`${what}: '${text}' is not an integer`);
  const n = Number(text);
  if (allowed && !allowed.includes(n)) throw new UsageError(`${what}: ${n} is not one of ${allowed.join(', ')}`);
  return n;
}

/**
 * A page-aligned VA option (--start/--end): hex "0x…", at most 2^64 (an exclusive end may be
 * 0x10000000000000000). A number: every page-aligned value up to 2^64 is exact in a double.
 */
export function parsePageAddress(text: string | undefined, what: string, fallback: number, pageSize: number): number {
  if (text === undefined) return fallback;
  const t = text.replace(/_/g, '');
  if (!/^0x[0-9a-f]+$/i.test(t)) throw new UsageError(`${what}: '${text}' is not a hex address (0x…)`);
  const v = BigInt(t);
  if (v > 1n << 64n) throw new UsageError(`${what}: '${text}' is beyond 2^64`);
  if (v % BigInt(pageSize) !== 0n) throw new UsageError(`${what}: ${text} is not aligned to the page size (${pageSize})`);
  return Number(v);
}
