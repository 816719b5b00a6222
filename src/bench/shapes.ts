// Benchmark models: named shapes (SmolLM2-135M, a tiny test shape) with randomly initialised
// weights, random next-token batches, and the LoRA setting every case uses (r=16 on every linear).
// Random weights time exactly like trained ones (same shapes, same kernels); the values only have
// to keep activations finite: linears U(±1/√in)-ish, norms 1, embedding small.
// It is not: a model loader (src/model/load.ts) or a quality measurement.
import type { LlamaConfig, LlamaWeights, LoraConfig } from '../model/config.ts';
import { LORA_TARGETS } from '../model/config.ts';
import type { Batch } from '../ref/model.ts';
import { XENT_IGNORE } from '../ref/xent.ts';

/** Shapes known to the bench (config of a randomly initialised model). */
export const SHAPES: Record<string, LlamaConfig> = {
  // HuggingFaceTB/SmolLM2-135M: 30 layers, hidden 576, 9 heads / 3 kv heads of 64, ffn 1536, vocab 49152, tied
  'smollm2-135m': {
    arch: 'llama', hidden: 576, layers: 30, heads: 9, kvHeads: 3, headDim: 64, ffn: 1536, vocab: 49152, maxPos: 8192,
    ropeTheta: 100000, ropeStyle: 'half', ropeScaling: null, eps: 1e-5, tiedEmbeddings: true, attnBias: false, bos: 0, eos: [0],
  },
  // a few-second shape for tests (`whittle bench --tiny`)
  tiny: {
    arch: 'llama', hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, ffn: 128, vocab: 256, maxPos: 256,
    ropeTheta: 10000, ropeStyle: 'half', ropeScaling: null, eps: 1e-5, tiedEmbeddings: true, attnBias: false, bos: 1, eos: [2],
  },
};

/** The LoRA of every bench case: rank 16, alpha 32, dropout 0.05 on q,k,v,o,gate,up,down. */
export const BENCH_LORA: LoraConfig = { rank: 16, alpha: 32, dropout: 0.05, targets: [...LORA_TARGETS] };

/** AdamW of every bench case (the trainer's defaults: clip 1.0, weight decay 0). */
export const BENCH_ADAMW = { lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxNorm: 1 };

/** xorshift32 uniform floats in [-1, 1), fast enough for 135M weights (~1 s). */
function fill(n: number, seed: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  let s = (seed * 2654435761 + 1) >>> 0 || 1;
  const k = (2 * scale) / 4294967296;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    a[i] = (s >>> 0) * k - scale;
  }
  return a;
}

/** Random weights of `cfg`: linears U(±√3/√in) (unit variance outputs), norms 1, embedding U(±0.05). */
export function randomWeights(cfg: LlamaConfig, seed = 1): LlamaWeights {
  let s = seed * 1000;
  const C = cfg.hidden, QD = cfg.heads * cfg.headDim, KVD = cfg.kvHeads * cfg.headDim, F = cfg.ffn;
  const lin = (rows: number, cols: number) => fill(rows * cols, ++s, Math.sqrt(3 / cols));
  const ones = (n: number) => new Float32Array(n).fill(1);
  return {
    embed: fill(cfg.vocab * C, ++s, 0.05),
    norm: ones(C),
    lmHead: cfg.tiedEmbeddings ? null : lin(cfg.vocab, C),
    layers: Array.from({ length: cfg.layers }, () => ({
      attnNorm: ones(C), wq: lin(QD, C), wk: lin(KVD, C), wv: lin(KVD, C), bq: null, bk: null, bv: null,
      wo: lin(C, QD), ffnNorm: ones(C), wGate: lin(F, C), wUp: lin(F, C), wDown: lin(C, F),
    })),
  };
}

/** A full (B,T) batch of random ids (every token valid, targets = next id, last position ignored). */
export function randomBatch(vocab: number, B: number, T: number, seed: number): Batch {
  const N = B * T;
  const ids = new Uint32Array(N), targets = new Uint32Array(N).fill(XENT_IGNORE), valid = new Uint32Array(N).fill(1);
  const pos = new Uint32Array(N), lossWeights = new Float32Array(N);
  let s = (seed * 747796405 + 2891336453) >>> 0 || 1;
  for (let n = 0; n < N; n++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    ids[n] = (s >>> 0) % vocab;
    pos[n] = n % T;
  }
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      targets[b * T + t] = ids[b * T + t + 1];
      lossWeights[b * T + t] = 1;
    }
  }
  return { B, T, ids, targets, valid, pos, lossWeights };
}

/** Parameters of a config (tied embeddings counted once). */
export function paramCount(cfg: LlamaConfig): number {
  const C = cfg.hidden, QD = cfg.heads * cfg.headDim, KVD = cfg.kvHeads * cfg.headDim, F = cfg.ffn;
  const layer = 2 * C + QD * C + 2 * KVD * C + C * QD + 3 * F * C + (cfg.attnBias ? QD + 2 * KVD : 0);
  return cfg.vocab * C * (cfg.tiedEmbeddings ? 1 : 2) + C + cfg.layers * layer;
}
