// Summary statistics of repeated measurements: median with min–max, as every bench figure is
// reported; and the wall-clock timer the bench uses (performance.now, ms).

export interface Stat {
  median: number;
  min: number;
  max: number;
  /** every sample, in run order */
  runs: number[];
}

export function stat(xs: number[]): Stat {
  if (xs.length === 0) return { median: NaN, min: NaN, max: NaN, runs: [] };
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  const median = s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  return { median, min: s[0], max: s[s.length - 1], runs: [...xs] };
}

/** A derived stat, x → f(x), monotone decreasing f (e.g. ms → tokens/s) swaps min and max. */
export function mapStat(st: Stat, f: (x: number) => number): Stat {
  return stat(st.runs.map(f));
}

/** "1.23 (1.10–1.40)" with `digits` significant-ish decimals. */
export function fmtStat(st: Stat | null | undefined, digits = 1): string {
  if (!st || !Number.isFinite(st.median)) return '—';
  const f = (x: number) => fmtNum(x, digits);
  return st.runs.length > 1 ? `${f(st.median)} (${f(st.min)}–${f(st.max)})` : f(st.median);
}

export function fmtNum(x: number, digits = 1): string {
  if (!Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(Math.max(0, digits - 1));
  if (a >= 1) return x.toFixed(digits);
  if (a === 0) return '0';
  return x.toPrecision(Math.max(2, digits + 1));
}

export const now = (): number => performance.now();
