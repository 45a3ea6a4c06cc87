/** mmulab decode: one descriptor, field by field, with the manuals' names and bit positions. */
import { createArchBits, geometry, type DecodedDescriptor, type Geometry } from '../../index';
import { parse, parseIntOption, parseU64 } from '../args';
import { UsageError } from '../errors';
import { hex, type Style } from '../style';
import type { Command, Io } from '../command';

export const usage = `Usage: mmulab decode --arch x86_64|arm64 --level L VALUE [options]

Decode a 64-bit page-table descriptor as the hardware reads it from a table at level L,
listing every field with its bit positions (Intel SDM Vol.3A §4.5; Arm ARM VMSAv8-64 formats).

Options:
  --arch x86_64|arm64      architecture (required)
  --level L                the table's level: x86-64 5 (PML5) … 1 (PT); ARM64 lookup level -1 … 3
  --levels 4|5             x86-64 paging levels (default 4; 5 = LA57)
  --maxphyaddr N           x86-64 MAXPHYADDR (default 52)
  --no-nxe                 x86-64 with EFER.NXE = 0 (XD becomes reserved)
  --granule 4k|16k|64k     ARM64 translation granule (default 4k)
  --va-bits N              ARM64 VA_BITS: 36, 39, 42, 47, 48 or 52 (default 48; 52 = LPA/LPA2)
  --json                   print the decoded descriptor as JSON
  -h, --help               this help

Examples:
  mmulab decode --arch x86_64 --level 2 0x80000000fee001e3
  mmulab decode --arch arm64 --granule 4k --va-bits 48 --level 3 0x00e8000041234f43 --json`;

const ARM_VA_BITS: Record<string, number[]> = { '4k': [39, 48, 52], '16k': [36, 47, 48, 52], '64k': [42, 48, 52] };

export function geometryFromOptions(values: Record<string, unknown>): Geometry {
  const arch = values.arch as string | undefined;
  if (arch === undefined) throw new UsageError('--arch is required (x86_64 or arm64)');
  if (arch === 'x86_64' || arch === 'x86-64') {
    const levels = parseIntOption(values.levels as string | undefined, '--levels', [4, 5]) ?? 4;
    return geometry(`x86_64-${levels}level`);
  }
  if (arch === 'arm64' || arch === 'aarch64') {
    const granule = ((values.granule as string | undefined) ?? '4k').toLowerCase();
    const allowed = ARM_VA_BITS[granule];
    if (!allowed) throw new UsageError(`--granule: '${granule}' is not one of 4k, 16k, 64k`);
    const vaBits = parseIntOption(values['va-bits'] as string | undefined, '--va-bits', allowed) ?? 48;
    return geometry(`arm64-${granule}-${vaBits}`);
  }
  throw new UsageError(`--arch: '${arch}' is not one of x86_64, arm64`);
}

export function hwLevelRange(g: Geometry): [number, number] {
  const levels = g.physicalLevels.map((p) => g.hwLevel[p]!);
  return [Math.min(...levels), Math.max(...levels)];
}

export function describeLevel(g: Geometry, level: number): string {
  if (g.arch === 'x86_64') return ['', 'PT', 'PD', 'PDPT', 'PML4', 'PML5'][level] ?? `level ${level}`;
  return `level ${level}`;
}

function bitsLabel(msb: number, lsb: number): string {
  return msb === lsb ? `${msb}` : `${msb}:${lsb}`;
}

export function formatDecoded(d: DecodedDescriptor, g: Geometry, s: Style): string {
  const head =
    `${g.arch === 'x86_64' ? 'x86-64' : 'ARM64'} ${describeLevel(g, d.level)} descriptor ${hex(d.value)}: ` +
    s.bold(d.kind) +
    (d.address !== undefined ? ` → ${hex(d.address)}` : '') +
    (d.reason ? `\n  ${s.yellow(d.reason)}` : '');
  const rows = [...d.fields].reverse().map((f) => {
    const value = f.msb - f.lsb >= 3 ? hex(f.value) : f.value.toString(2).padStart(f.msb - f.lsb + 1, '0');
    const extra = [f.address !== undefined ? `addr ${hex(f.address)}` : '', f.meaning ?? '', f.role ? s.dim(`(${f.role})`) : '']
      .filter(Boolean)
      .join('  ');
    return `  ${bitsLabel(f.msb, f.lsb).padStart(5)}  ${f.name.padEnd(11)} ${value.padEnd(18)} ${extra}`.trimEnd();
  });
  return [head, `  ${s.dim('bits   field       value')}`, ...rows].join('\n');
}

export function decodedToJson(d: DecodedDescriptor): object {
  return {
    value: hex(d.value),
    level: d.level,
    kind: d.kind,
    ...(d.address !== undefined ? { address: hex(d.address) } : {}),
    ...(d.reason ? { reason: d.reason } : {}),
    fields: d.fields.map((f) => ({
      name: f.name,
      msb: f.msb,
      lsb: f.lsb,
      value: hex(f.value),
      ...(f.address !== undefined ? { address: hex(f.address) } : {}),
      ...(f.meaning ? { meaning: f.meaning } : {}),
      ...(f.role ? { role: f.role } : {}),
    })),
  };
}

export const decode: Command = {
  name: 'decode',
  summary: 'decode one page-table descriptor field by field',
  usage,
  run(argv: string[], io: Io): number {
    const { values, positionals } = parse(
      argv,
      {
        arch: { type: 'string' },
        level: { type: 'string' },
        levels: { type: 'string' },
        maxphyaddr: { type: 'string' },
        'no-nxe': { type: 'boolean' },
        granule: { type: 'string' },
        'va-bits': { type: 'string' },
        json: { type: 'boolean' },
      },
      1,
    );
    if (values.help) {
      io.out(usage);
      return 0;
    }
    const g = geometryFromOptions(values);
    if (positionals.length !== 1) throw new UsageError('VALUE is required: the 64-bit descriptor, e.g. 0x8000000000200083');
    const value = parseU64(positionals[0]!, 'VALUE');
    if (values.level === undefined) throw new UsageError('--level is required');
    const [lo, hi] = hwLevelRange(g);
    const level = parseIntOption(values.level as string, '--level')!;
    if (level < lo || level > hi) throw new UsageError(`--level: ${level} is not a table level of ${g.name} (${lo} … ${hi})`);
    const maxPhyAddr = parseIntOption(values.maxphyaddr as string | undefined, '--maxphyaddr');
    if (maxPhyAddr !== undefined && (maxPhyAddr < 36 || maxPhyAddr > 52)) {
      throw new UsageError(`--maxphyaddr: ${maxPhyAddr} is outside 36 … 52`);
    }
    const bits = createArchBits(g, { maxPhyAddr, nxe: !values['no-nxe'] });
    const d = bits.decode(value, level);
    io.out(values.json ? JSON.stringify(decodedToJson(d)) : formatDecoded(d, g, io.style));
    return 0;
  },
};
