/**
 * A progress bar on a terminal, for long runs: silent unless the stream is a TTY, shown only once
 * the run has lasted about a second (short runs print nothing), redrawn at most ten times a second,
 * erased when done. No dependency: a carriage return and an erase-line sequence.
 */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

export class ProgressBar {
  private readonly start: number;
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly stream: ProgressStream,
    private readonly label: string,
    private readonly delayMs = 1000,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.start = now();
  }

  /** Report `done` of `total`; draws when due. */
  update(done: number, total: number): void {
    if (!this.stream.isTTY) return;
    const t = this.now();
    if (t - this.start < this.delayMs || t - this.lastDraw < 100) return;
    this.lastDraw = t;
    this.drawn = true;
    this.stream.write('\r\x1b[2K' + progressLine(this.label, done, total, (t - this.start) / 1000, this.stream.columns ?? 80));
  }

  /** Erase the bar, if one was drawn. */
  finish(): void {
    if (this.drawn) this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }
}

/** "label [#####-----]  42%  1234/5678  2.1s", fitted to `width` columns. */
export function progressLine(label: string, done: number, total: number, seconds: number, width: number): string {
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const tail = ` ${String(Math.floor(frac * 100)).padStart(3)}%  ${done}/${total}  ${seconds.toFixed(1)}s`;
  const barWidth = Math.max(10, Math.min(40, width - label.length - tail.length - 4));
  const fill = Math.round(frac * barWidth);
  return `${label} [${'#'.repeat(fill)}${'-'.repeat(barWidth - fill)}]${tail}`;
}
