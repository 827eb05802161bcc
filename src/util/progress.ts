/**
 * A one-line progress bar on stderr: redrawn in place on a terminal, a line every ~10% otherwise (logs, CI).
 */
export class ProgressBar {
  private readonly started = Date.now();
  private lastPrintedDecile = -1;
  private readonly interactive: boolean;
  /** Work done before this process started (a resumed run): not counted in the rate. */
  private startedAt = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = "",
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.interactive = Boolean(stream.isTTY) && !process.env.CI;
  }

  /** A resumed run: `done` units were finished by an earlier process (shown, but not counted in the rate). */
  resumeFrom(done: number): void {
    this.startedAt = done;
  }

  update(done: number, extra = ""): void {
    const fraction = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const elapsed = (Date.now() - this.started) / 1000;
    const rate = elapsed > 0 ? Math.max(0, done - this.startedAt) / elapsed : 0;
    const eta = rate > 0 ? (this.total - done) / rate : 0;
    const width = 24;
    const filled = Math.round(fraction * width);
    const text =
      `${this.label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${this.total}${this.unit}` +
      ` ${formatRate(rate)}${this.unit}/s ETA ${formatSeconds(eta)}${extra ? " " + extra : ""}`;
    if (this.interactive) {
      this.stream.write(`\r${text}\x1b[K`);
    } else {
      const decile = Math.floor(fraction * 10);
      if (decile !== this.lastPrintedDecile) {
        this.lastPrintedDecile = decile;
        this.stream.write(text + "\n");
      }
    }
  }

  finish(extra = ""): void {
    this.update(this.total, extra);
    if (this.interactive) this.stream.write("\n");
  }
}

function formatRate(rate: number): string {
  return rate >= 100 ? rate.toFixed(0) : rate.toFixed(1);
}

export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${seconds.toFixed(0)}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${Math.round(seconds - minutes * 60)
    .toString()
    .padStart(2, "0")}s`;
}
