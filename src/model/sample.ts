// Next-token choice on the host, from one logits vector (V): greedy, temperature, top-k, top-p
// (nucleus), repetition penalty, with a seeded RNG so a seed reproduces a sample exactly. Used by
// src/model/generate.ts (greedy without a penalty runs on the GPU there instead: src/ops/argmax.ts).
// Order, as in Hugging Face transformers: repetition penalty → temperature → top-k → top-p → draw.
// Legend: V vocab.
// It is not: a GPU kernel, or anything that knows about models or tokenizers.

export interface SamplingOptions {
  /** always take the most likely token (also when temperature ≤ 0) */
  greedy?: boolean;
  /** softmax temperature (default 1; ≤ 0 means greedy) */
  temperature?: number;
  /** keep only the k most likely tokens (ties at the k-th value are kept); 0 or ≥ V: off */
  topK?: number;
  /** keep the smallest set of most likely tokens whose probability sums to ≥ topP (≥ 1: off) */
  topP?: number;
  /**
   * CTRL / Hugging Face repetition penalty over every distinct token of the history (prompt and
   * generated, or the last `repetitionWindow` of them): a logit z > 0 becomes z/p, else z·p. 1: off.
   */
  repetitionPenalty?: number;
  /** how many of the most recent history tokens the penalty looks at (0 or absent: all) */
  repetitionWindow?: number;
  /** RNG seed (u32); the same seed, logits and options give the same tokens */
  seed?: number;
}

/** Seeded PRNG (mulberry32): next() in [0, 1) with 32 random bits. */
export class Rng {
  private a: number;
  constructor(seed = 0) {
    this.a = seed >>> 0;
  }
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

/** Whether these options always pick the argmax (no randomness at all). */
export function isGreedy(o: SamplingOptions): boolean {
  return !!o.greedy || (o.temperature ?? 1) <= 0;
}

/** Index of the largest value (first one on ties; NaN never wins; 0 when nothing compares). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0, idx = -1;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v === v && (idx < 0 || v > best)) {
      best = v;
      idx = i;
    }
  }
  return Math.max(idx, 0);
}

/** logits (V) with the repetition penalty applied to every distinct token of `history` (a copy). */
export function applyRepetitionPenalty(logits: Float32Array, history: ArrayLike<number>, penalty: number, window = 0): Float32Array {
  const out = logits.slice();
  if (penalty === 1) return out;
  const start = window > 0 ? Math.max(0, history.length - window) : 0;
  const seen = new Set<number>();
  for (let i = start; i < history.length; i++) {
    const id = history[i];
    if (id < 0 || id >= out.length || seen.has(id)) continue;
    seen.add(id);
    out[id] = out[id] > 0 ? out[id] / penalty : out[id] * penalty;
  }
  return out;
}

// Tokens whose tempered logit is more than CUTOFF below the maximum (probability ratio e^−40 ≈ 4e−18)
// are never candidates: their whole mass is < V·4e−18, so only top-p within ~1e−12 of 1 could notice.
const CUTOFF = 40;

/**
 * The candidate distribution after temperature, top-k and top-p: token ids (most likely first) and
 * their renormalised probabilities. Exposed for tests and UIs (e.g. showing the top choices).
 */
export function candidates(logits: ArrayLike<number>, o: SamplingOptions): { ids: number[]; probs: number[] } {
  const V = logits.length;
  const temp = o.temperature ?? 1;
  if (isGreedy(o)) return { ids: [argmax(logits)], probs: [1] };
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i] > max) max = logits[i];
  if (!Number.isFinite(max)) return { ids: [argmax(logits)], probs: [1] };
  // top-k threshold: the k-th largest logit (ties kept)
  let floor = max - CUTOFF * temp;
  const k = o.topK ?? 0;
  if (k > 0 && k < V) {
    const sorted = Float32Array.from(logits).sort(); // ascending; NaN last
    let n = V;
    while (n > 0 && Number.isNaN(sorted[n - 1])) n--;
    if (k <= n) floor = Math.max(floor, sorted[n - k]);
  }
  const ids: number[] = [];
  for (let i = 0; i < V; i++) if (logits[i] >= floor) ids.push(i);
  ids.sort((a, b) => logits[b] - logits[a] || a - b);
  const p = ids.map((i) => Math.exp((logits[i] - max) / temp));
  let total = p.reduce((a, b) => a + b, 0);
  const topP = o.topP ?? 1;
  let keep = ids.length;
  if (topP < 1) {
    let cum = 0;
    keep = 0;
    while (keep < ids.length) {
      cum += p[keep++];
      if (cum >= topP * total) break;
    }
    total = cum;
  }
  return { ids: ids.slice(0, keep), probs: p.slice(0, keep).map((x) => x / total) };
}

/**
 * Choose the next token from logits (V): repetition penalty over `history`, then greedy, or
 * temperature / top-k / top-p and one draw from `rng`.
 */
export function sampleToken(logits: Float32Array, o: SamplingOptions, rng: Rng, history: ArrayLike<number> = []): number {
  const pen = o.repetitionPenalty ?? 1;
  const z = pen !== 1 ? applyRepetitionPenalty(logits, history, pen, o.repetitionWindow) : logits;
  if (isGreedy(o)) return argmax(z);
  const { ids, probs } = candidates(z, o);
  let r = rng.next();
  for (let i = 0; i < ids.length; i++) {
    r -= probs[i];
    if (r < 0) return ids[i];
  }
  return ids[ids.length - 1];
}
