// The Llama-family model config, as one typed object, and host-side weights in Hugging Face
// orientation. Built by the loaders (src/model/load-*.ts) from HF config.json or GGUF metadata,
// consumed by the CPU reference (src/ref/model.ts) and the GPU model (src/model/llama.ts).
// Legend: C hidden, L layers, NH heads, NKV kv heads, HS head size, F ffn size, V vocab.

export type RopeStyle = 'half' /* HF rotate-half */ | 'pairs' /* GGUF / llama2.c adjacent pairs */;

export interface RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface LlamaConfig {
  arch: 'llama' | 'qwen2' | 'mistral';
  hidden: number; // C
  layers: number; // L
  heads: number; // NH
  kvHeads: number; // NKV
  headDim: number; // HS (usually C / NH)
  ffn: number; // F
  vocab: number; // V
  maxPos: number;
  ropeTheta: number;
  ropeStyle: RopeStyle;
  ropeScaling: RopeScaling | null;
  eps: number; // RMSNorm epsilon
  tiedEmbeddings: boolean;
  attnBias: boolean; // q/k/v bias (Qwen2)
  bos: number | null;
  eos: number[];
}

export interface LayerWeights {
  attnNorm: Float32Array; // (C)
  wq: Float32Array; // (NH*HS, C)
  wk: Float32Array; // (NKV*HS, C)
  wv: Float32Array; // (NKV*HS, C)
  bq: Float32Array | null; // (NH*HS)
  bk: Float32Array | null; // (NKV*HS)
  bv: Float32Array | null; // (NKV*HS)
  wo: Float32Array; // (C, NH*HS)
  ffnNorm: Float32Array; // (C)
  wGate: Float32Array; // (F, C)
  wUp: Float32Array; // (F, C)
  wDown: Float32Array; // (C, F)
}

/** All weights as f32 in Hugging Face orientation (out, in), q/k in the config's rope style. */
export interface LlamaWeights {
  embed: Float32Array; // (V, C)
  layers: LayerWeights[];
  norm: Float32Array; // (C)
  lmHead: Float32Array | null; // (V, C); null when tied to embed
}

export const LORA_TARGETS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export interface LoraConfig {
  rank: number; // R
  alpha: number;
  dropout: number;
  targets: LoraTarget[];
  rslora?: boolean; // scale = alpha/sqrt(R) instead of alpha/R
}

export function loraScale(c: LoraConfig): number {
  return c.rslora ? c.alpha / Math.sqrt(c.rank) : c.alpha / c.rank;
}

/** (out, in) shape of a target's base weight. */
export function targetShape(cfg: LlamaConfig, t: LoraTarget): [number, number] {
  const C = cfg.hidden, Q = cfg.heads * cfg.headDim, KV = cfg.kvHeads * cfg.headDim, F = cfg.ffn;
  switch (t) {
    case 'q': return [Q, C];
    case 'k': return [KV, C];
    case 'v': return [KV, C];
    case 'o': return [C, Q];
    case 'gate': return [F, C];
    case 'up': return [F, C];
    case 'down': return [C, F];
  }
}
