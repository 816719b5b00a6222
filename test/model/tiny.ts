// Tiny random Llama-family models, batches and LoRA parameters for the model tests (not a test file).
// Legend: B batch, T time, N = B*T, C hidden, V vocab, R rank.
import type { LlamaConfig, LlamaWeights, LoraConfig } from '../../src/model/config.ts';
import { targetShape } from '../../src/model/config.ts';
import { loraLayout, type LoraParams } from '../../src/model/lora.ts';
import type { Batch } from '../../src/ref/model.ts';
import { XENT_IGNORE } from '../../src/ref/xent.ts';
import { randn32, rng } from '../util.ts';

/** C=64, L=2, NH=4, NKV=2, HS=16, F=96, V=256, HF rotate-half rope, tied embeddings, no bias. */
export function tinyConfig(over: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    arch: 'llama', hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, ffn: 96, vocab: 256, maxPos: 64,
    ropeTheta: 10000, ropeStyle: 'half', ropeScaling: null, eps: 1e-5, tiedEmbeddings: true, attnBias: false,
    bos: 1, eos: [2], ...over,
  };
}

/** Random weights: linears U(±1/√in), norms 1 ± 0.2, embedding U(±0.2) (logits of std ≈ 1), biases U(±0.1). */
export function tinyWeights(cfg: LlamaConfig, seed: number): LlamaWeights {
  let s = seed * 1000;
  const lin = (rows: number, cols: number) => randn32(rows * cols, ++s, 1 / Math.sqrt(cols));
  const norm = (n: number) => randn32(n, ++s, 0.2).map((x) => 1 + x);
  const bias = (n: number) => (cfg.attnBias ? randn32(n, ++s, 0.1) : null);
  const C = cfg.hidden, QD = cfg.heads * cfg.headDim, KVD = cfg.kvHeads * cfg.headDim, F = cfg.ffn;
  return {
    embed: randn32(cfg.vocab * C, ++s, 0.2),
    norm: norm(C),
    lmHead: cfg.tiedEmbeddings ? null : lin(cfg.vocab, C),
    layers: Array.from({ length: cfg.layers }, () => ({
      attnNorm: norm(C), wq: lin(QD, C), wk: lin(KVD, C), wv: lin(KVD, C), bq: bias(QD), bk: bias(KVD), bv: bias(KVD),
      wo: lin(C, QD), ffnNorm: norm(C), wGate: lin(F, C), wUp: lin(F, C), wDown: lin(C, F),
    })),
  };
}

/**
 * A (B,T) next-token batch of random ids. Sequence 1 (if any) is right-padded after T−5 tokens;
 * targets are the next id (ignored at each sequence end and on padding, plus one more); loss
 * weights 1 on real targets, 0.5 on the first one of each sequence, 0 on ignored ones.
 */
export function tinyBatch(cfg: LlamaConfig, B: number, T: number, seed: number): Batch {
  const r = rng(seed);
  const N = B * T;
  const ids = new Uint32Array(N), targets = new Uint32Array(N).fill(XENT_IGNORE), valid = new Uint32Array(N), pos = new Uint32Array(N);
  const lossWeights = new Float32Array(N);
  for (let b = 0; b < B; b++) {
    const len = b === 1 ? T - 5 : T;
    for (let t = 0; t < len; t++) {
      const n = b * T + t;
      ids[n] = Math.floor(r() * cfg.vocab);
      valid[n] = 1;
      pos[n] = t;
    }
    for (let t = 0; t + 1 < len; t++) {
      const n = b * T + t;
      if (b === 0 && t === 3) continue; // one ignored target inside a sequence
      targets[n] = ids[n + 1];
      lossWeights[n] = t === 0 ? 0.5 : 1;
    }
  }
  return { B, T, ids, targets, valid, pos, lossWeights };
}

/** Random LoRA parameters: A U(±1/√IC), B U(±bScale). */
export function randomLora(cfg: LlamaConfig, lora: LoraConfig, seed: number, bScale = 0.05): LoraParams {
  const out: LoraParams = new Map();
  let s = seed * 1000;
  for (const slot of loraLayout(cfg, lora, 4).slots) {
    const [OC, IC] = targetShape(cfg, slot.target);
    out.set(slot.key, { A: randn32(lora.rank * IC, ++s, 1 / Math.sqrt(IC)), B: randn32(OC * lora.rank, ++s, bScale) });
  }
  return out;
}

export const ALL_TARGETS: LoraConfig['targets'] = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];
