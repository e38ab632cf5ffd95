/**
 * A progress line on stderr with rate and ETA (redrawn in place on a terminal, one line per 10% otherwise).
 */
export class Progress {
  private readonly start = performance.now();
  private lastDraw = 0;
  private lastDecile = -1;
  private done = 0;

  constructor(
    readonly label: string,
    readonly total: number,
    readonly enabled = process.env.EDITEVAL_QUIET !== "1",
  ) {}

  tick(n = 1, note = ""): void {
    this.done += n;
    if (!this.enabled) return;
    const now = performance.now();
    const tty = process.stderr.isTTY;
    const decile = Math.floor((10 * this.done) / Math.max(1, this.total));
    if (
      tty
        ? now - this.lastDraw < 200 && this.done < this.total
        : decile === this.lastDecile && this.done < this.total
    )
      return;
    this.lastDraw = now;
    this.lastDecile = decile;
    const elapsed = (now - this.start) / 1000;
    const rate = this.done / Math.max(elapsed, 1e-9);
    const eta = rate > 0 ? (this.total - this.done) / rate : 0;
    const line = `${this.label}: ${this.done}/${this.total} (${((100 * this.done) / Math.max(1, this.total)).toFixed(0)}%) ${formatDuration(elapsed)} elapsed, ETA ${formatDuration(eta)}${note ? " " + note : ""}`;
    if (tty) process.stderr.write(`\r\x1b[K${line}${this.done >= this.total ? "\n" : ""}`);
    else process.stderr.write(line + "\n");
  }
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60)
    return `${m}m${Math.round(s - 60 * m)
      .toString()
      .padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${(m % 60).toString().padStart(2, "0")}m`;
}
