/** Terminal styling: colour only on a TTY that wants it (NO_COLOR, FORCE_COLOR honoured). */
export interface Style {
  bold(s: string): string;
  dim(s: string): string;
  cyan(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  red(s: string): string;
}

function wrap(open: number, close: number): (s: string) => string {
  return (s) => `\x1b[${open}m${s}\x1b[${close}m`;
}

const plain: Style = { bold: (s) => s, dim: (s) => s, cyan: (s) => s, green: (s) => s, yellow: (s) => s, red: (s) => s };
const colour: Style = {
  bold: wrap(1, 22),
  dim: wrap(2, 22),
  cyan: wrap(36, 39),
  green: wrap(32, 39),
  yellow: wrap(33, 39),
  red: wrap(31, 39),
};

export function styleFor(stream: NodeJS.WriteStream): Style {
  if (process.env.NO_COLOR) return plain;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return colour;
  return stream.isTTY ? colour : plain;
}

export function hex(v: number | bigint): string {
  return '0x' + v.toString(16);
}

/** Human size: 4096 → "4K", 2097152 → "2M", 1073741824 → "1G". */
export function sizeName(bytes: number): string {
  const units = ['', 'K', 'M', 'G', 'T', 'P', 'E'];
  let u = 0;
  while (bytes >= 1024 && bytes % 1024 === 0 && u < units.length - 1) {
    bytes /= 1024;
    u++;
  }
  return `${bytes}${units[u]}`;
}
