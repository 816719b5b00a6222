// Inference throughput (src/model/generate.ts InferenceModel) from one generateText call per run:
// greedy on the GPU (its default lookahead), a `prompt`-token random prompt from an empty cache,
// `gen` tokens, EOS off. Prefill tokens/s = promptTokens / prefillMs (prefill + the first argmax,
// one u32 read back); decode tokens/s = generate's tokensPerSecond (decodeTokens / decodeMs). One untimed warm-up of each (pipeline
// compilation), then `runs` timed runs. The base is uploaded in `quant`, no adapter.
import type { Gpu } from '../gpu/device.ts';
import type { LlamaConfig, LlamaWeights } from '../model/config.ts';
import { generateText, InferenceModel } from '../model/generate.ts';
import type { QFormat } from '../model/quant.ts';
import type { OnnxPeerResult } from './onnx-peer.ts';
import { type Stat, stat } from './stats.ts';

export interface InferCase {
  model: string;
  quant: QFormat;
  prompt: number;
  gen: number;
  runs: number;
  /** also time the onnxruntime-web peer on the same case (f32 only) */
  onnx?: boolean;
  /** GPU greedy steps in flight beyond the one awaited (generate's lookahead; default its default) */
  lookahead?: number;
  /** run the per-adapter kernel trials (InferenceModel.tune, as the playground does on a hardware adapter) first */
  tune?: boolean;
}

export interface InferResult extends InferCase {
  prefillTokensPerSecond: Stat;
  decodeTokensPerSecond: Stat;
  /** bytes of the inference model's own buffers (base, KV cache, scratch) */
  bytes: number;
  /** the same model exported to ONNX on onnxruntime-web (wasm, 1 thread, Node); null when not run */
  onnxruntimeWeb: OnnxPeerResult | null;
  /**
   * The same case on a second device whose llvmpipe runs every dispatch on its queue thread
   * (acquireGpu driverThreads 0; src/bench/run.ts, Node on llvmpipe only); null when not run.
   */
  inline?: { prefillTokensPerSecond: Stat; decodeTokensPerSecond: Stat } | null;
  /** our best decode tokens/s (default or inline driver, medians) ÷ onnxruntime-web's; null when the peer was not run */
  decode_ratio_vs_onnxruntime_web: number | null;
  /** which of ours the ratio uses: the driver's default threads or inline (driverThreads 0) */
  decodeBest?: 'default' | 'inline';
  /** the torch GPU peer on the same case (transformers generate, KV cache, the PEFT adapter active; --torch-device cuda --torch-peft) */
  torch?: { prefillTokensPerSecond: Stat; decodeTokensPerSecond: Stat; peer: string } | null;
  /** our decode tokens/s ÷ the torch peer's (medians) */
  decode_ratio_vs_torch?: number | null;
}

/** `n` pseudo-random token ids below `vocab` (deterministic in `seed`). */
export function promptIds(n: number, vocab: number, seed: number): number[] {
  let s = seed * 2654435761 >>> 0 || 1;
  return Array.from({ length: n }, () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % vocab;
  });
}

export async function benchInfer(gpu: Gpu, cfg: LlamaConfig, weights: LlamaWeights, c: InferCase, log?: (s: string) => void): Promise<InferResult> {
  const maxSeq = c.prompt + c.gen + 2;
  const inf = InferenceModel.create(gpu, cfg, weights, { quant: c.quant, maxSeq, prefillChunk: Math.min(128, c.prompt) });
  try {
    if (c.tune) await inf.tune();
    const prefill: number[] = [], decode: number[] = [];
    for (let r = 0; r <= c.runs; r++) {
      const prompt = promptIds(c.prompt, cfg.vocab, r + 1);
      inf.reset();
      const g = await generateText(inf, prompt, { maxTokens: c.gen, greedy: true, eos: [], reuseCache: false, lookahead: c.lookahead });
      if (g.reusedTokens !== 0 || g.decodeTokens < 1) throw new Error(`bench infer: expected a fresh prefill and ≥ 1 decode step (reused ${g.reusedTokens}, decoded ${g.decodeTokens})`);
      if (r === 0) continue; // warm-up
      prefill.push((g.promptTokens * 1000) / g.prefillMs);
      decode.push(g.tokensPerSecond);
    }
    const res: InferResult = { ...c, prefillTokensPerSecond: stat(prefill), decodeTokensPerSecond: stat(decode), bytes: inf.bytes, onnxruntimeWeb: null, decode_ratio_vs_onnxruntime_web: null };
    log?.(`infer ${c.model} ${c.quant}: prefill ${res.prefillTokensPerSecond.median.toFixed(1)} tok/s, decode ${res.decodeTokensPerSecond.median.toFixed(1)} tok/s`);
    return res;
  } finally {
    inf.destroy();
  }
}
