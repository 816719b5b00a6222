// Dataset statistics for the UI and the trainer: tokens per example (min/median/max/mean and a
// histogram), total and trained (masked-in) tokens per epoch, what truncation removes, and an
// epoch's cost once batched (padding included) turned into a time from a measured tokens/s.
// It is not: a benchmark — the throughput is the caller's measurement.
import type { DatasetStats, TokenizedExample } from './types.ts';

export function summarize(values: ArrayLike<number>): { min: number; median: number; max: number; mean: number } {
  const n = values.length;
  if (!n) return { min: 0, median: 0, max: 0, mean: 0 };
  const v = Float64Array.from(values).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += v[i];
  const median = n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return { min: v[0], median, max: v[n - 1], mean: sum / n };
}

/** 1, 2, 5 × 10^k at or above x. */
function niceWidth(x: number): number {
  if (x <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

/**
 * Histogram of non-negative integers in about `bins` bins of a round width: counts[i] values lie
 * in [edges[i], edges[i+1]). edges.length = counts.length + 1.
 */
export function histogram(values: ArrayLike<number>, bins = 20): { edges: number[]; counts: number[] } {
  if (!values.length) return { edges: [0, 1], counts: [0] };
  const { min, max } = summarize(values);
  const width = niceWidth((max - min + 1) / Math.max(1, bins));
  const lo = Math.floor(min / width) * width;
  const nb = Math.max(1, Math.floor((max - lo) / width) + 1);
  const counts = new Array<number>(nb).fill(0);
  for (let i = 0; i < values.length; i++) counts[Math.min(nb - 1, Math.floor((values[i] - lo) / width))]++;
  const edges = Array.from({ length: nb + 1 }, (_, i) => lo + i * width);
  return { edges, counts };
}

export function computeStats(examples: TokenizedExample[], maxSeqLen: number, bins = 20): DatasetStats {
  const lengths = examples.map((e) => e.fullLength);
  let totalTokens = 0, trainedTokens = 0, fullTokens = 0, fullTrainedTokens = 0, truncatedExamples = 0;
  for (const e of examples) {
    totalTokens += e.ids.length;
    trainedTokens += e.trainedCount;
    fullTokens += e.fullLength;
    fullTrainedTokens += e.fullTrained;
    if (e.fullLength > e.ids.length) truncatedExamples++;
  }
  return {
    examples: examples.length,
    tokens: summarize(lengths),
    histogram: histogram(lengths, bins),
    totalTokens,
    trainedTokens,
    fullTokens,
    fullTrainedTokens,
    truncatedExamples,
    tokensCut: fullTokens - totalTokens,
    trainedTokensCut: fullTrainedTokens - trainedTokens,
    maxSeqLen,
  };
}

/** What one epoch costs once batched (see batch.ts epochCost). */
export interface EpochCost {
  batches: number;
  examples: number;
  /** real (non-padding) tokens */
  tokens: number;
  /** B×T summed over batches: positions the GPU computes, padding included */
  paddedTokens: number;
  /** tokens with a loss target */
  trainedTokens: number;
}

/**
 * Seconds per epoch from a measured throughput. `unit` says what the measurement counted:
 * 'padded' (B×T positions per second, the usual GPU-side figure) or 'real' (non-padding tokens).
 */
export function estimateEpochSeconds(cost: EpochCost, tokensPerSecond: number, unit: 'padded' | 'real' = 'padded'): number {
  if (!(tokensPerSecond > 0)) throw new Error(`estimateEpochSeconds: tokensPerSecond must be > 0 (got ${tokensPerSecond})`);
  return (unit === 'padded' ? cost.paddedTokens : cost.tokens) / tokensPerSecond;
}
