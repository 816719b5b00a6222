// A one-line progress bar for a terminal (Io.tty, stderr): redrawn in place with '\r' and
// erase-to-end-of-line, cut to the terminal's width. Lines printed while it is shown go through
// `above()`, which erases the bar, prints, and draws it again, so the bar stays the last line.
// It is not: a logger; commands decide what to print. Without a terminal, commands print lines.
import type { Io } from './command.ts';

const CLEAR = '\r\x1b[K';

/** "m:ss" or "h:mm:ss". */
export function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), ss = s % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(ss).padStart(2, '0')}` : `${m}:${String(ss).padStart(2, '0')}`;
}

/** The bar's text (no control characters): `[#####-----] 12/30  40%  <label>`, cut to width − 1 columns. */
export function renderBar(done: number, total: number, label: string, width: number): string {
  const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const count = `${String(done).padStart(String(total).length)}/${total}`;
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  const cells = Math.max(10, Math.min(30, Math.floor(width / 4))); // the same for every label; the label is cut instead
  const full = Math.round(frac * cells);
  const text = `[${'#'.repeat(full)}${'-'.repeat(cells - full)}] ${count} ${pct}${label ? `  ${label}` : ''}`;
  return text.length > width - 1 ? text.slice(0, Math.max(0, width - 1)) : text;
}

export class ProgressBar {
  private shown = '';

  constructor(private readonly tty: NonNullable<Io['tty']>) {}

  /** Draw (or redraw) the bar at `done` of `total`. */
  update(done: number, total: number, label: string): void {
    this.shown = renderBar(done, total, label, this.tty.columns);
    this.tty.write(CLEAR + this.shown);
  }

  /** Print through `print` (a line of stdout or stderr) above the bar. */
  above(print: (s: string) => void, s: string): void {
    if (this.shown) this.tty.write(CLEAR);
    print(s);
    if (this.shown) this.tty.write(this.shown);
  }

  /** Erase the bar (the terminal line is left empty for what follows). */
  clear(): void {
    if (this.shown) this.tty.write(CLEAR);
    this.shown = '';
  }
}
