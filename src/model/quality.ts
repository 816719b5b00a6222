// Quantization quality: the mean next-token negative log-likelihood (nats/token) of a base model
// on held-out token sequences, with its frozen weights in f32, q8 or q4 — the weights the GPU sees
// (dequantize(quantize(w)) through ./quant.ts, via dequantizedWeights of ./llama.ts: the embedding,
// lm_head and every projection; norms and biases stay f32), run through the CPU reference forward
// (ref_logits, float64). Used by scripts/quant-nll.ts and test/model/quant-nll.test.ts.
// No DOM, no node:*.
import type { LlamaConfig, LlamaWeights } from './config.ts';
import { baseMemory } from './fit.ts';
import { dequantizedWeights } from './llama.ts';
import type { QFormat } from './quant.ts';
import { ref_logits } from '../ref/model.ts';

/** Σ −log p(ids[t+1] | ids[0..t]) over t, and how many tokens were predicted. */
export function sequenceNll(cfg: LlamaConfig, weights: LlamaWeights, ids: number[]): { sum: number; tokens: number } {
  if (ids.length < 2) return { sum: 0, tokens: 0 };
  if (ids.length > cfg.maxPos) throw new Error(`sequenceNll: ${ids.length} tokens exceed the model's ${cfg.maxPos} positions`);
  const V = cfg.vocab;
  const logits = ref_logits(cfg, weights, ids.slice(0, -1), 'f64');
  let sum = 0;
  for (let t = 0; t + 1 < ids.length; t++) {
    const row = logits.subarray(t * V, (t + 1) * V);
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, row[v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(row[v] - max);
    sum += max + Math.log(z) - row[ids[t + 1]];
  }
  return { sum, tokens: ids.length - 1 };
}

/** Token-weighted mean NLL (nats/token) over several sequences. */
export function meanNll(cfg: LlamaConfig, weights: LlamaWeights, seqs: number[][]): number {
  let sum = 0, tokens = 0;
  for (const s of seqs) {
    const r = sequenceNll(cfg, weights, s);
    sum += r.sum;
    tokens += r.tokens;
  }
  if (tokens === 0) throw new Error('meanNll: no token to predict (every sequence needs ≥ 2 tokens)');
  return sum / tokens;
}

export interface QuantNllRow {
  quant: QFormat;
  /** mean NLL, nats/token */
  nll: number;
  /** nll − nll(f32) */
  delta: number;
  /** bytes of the base in this format (fit.ts baseMemory) */
  baseBytes: number;
  tokens: number;
}

/** Mean NLL of the base in each format (f32 first: the deltas are against it). */
export function quantNll(cfg: LlamaConfig, weights: LlamaWeights, seqs: number[][], formats: QFormat[] = ['f32', 'q8', 'q4']): QuantNllRow[] {
  const mem = baseMemory(cfg);
  const tokens = seqs.reduce((a, s) => a + Math.max(0, s.length - 1), 0);
  const f32 = meanNll(cfg, weights, seqs);
  return formats.map((quant) => {
    const nll = quant === 'f32' ? f32 : meanNll(cfg, dequantizedWeights(cfg, weights, quant), seqs);
    return { quant, nll, delta: nll - f32, baseBytes: mem.bytes[quant], tokens };
  });
}
