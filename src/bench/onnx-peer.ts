// The inference peer: the same model exported to ONNX in memory (src/export/onnx.ts exportOnnx)
// and decoded greedily with the KV cache on onnxruntime-web (src/export/onnx-generate.ts
// onnxGenerate; the runtime transformers.js uses), WebAssembly execution provider, one thread,
// in Node (src/bench/page.ts runs the same pair in a browser page). Same prompt length and number of new tokens as benchInfer, random
// prompt ids, EOS off. Decode tokens/s excludes prefill: (tokens − 1) / (time from the first
// token to the last), the first token being prefill's. PEER_WARMUP untimed runs, then `runs` timed
// runs. onnxruntime-web is imported lazily (only when the peer runs).
import type { LlamaConfig, LlamaWeights } from '../model/config.ts';
import type { Tokenizer } from '../tokenizer/types.ts';
import { promptIds } from './infer.ts';
import { type Stat, stat } from './stats.ts';

export interface OnnxPeerResult {
  prefillTokensPerSecond: Stat;
  decodeTokensPerSecond: Stat;
  runtime: string;
}

/** A tokenizer that only satisfies onnxGenerate's bookkeeping (ids in, no text out, no EOS). */
function idTokenizer(vocab: number): Tokenizer {
  return {
    kind: 'hf', vocabSize: vocab, bos: null, eos: [], addBosDefault: false, prefixSpaceDefault: false, bosToken: null, eosToken: null,
    encode: () => { throw new Error('bench onnx peer: ids only'); },
    decode: () => '', tokenToString: () => '', tokenToId: () => undefined, isSpecial: () => false,
  };
}

/**
 * Untimed runs before the timed ones. V8 compiles wasm with a baseline compiler first and tiers hot
 * functions up to its optimizing one in the background: measured here, decode went 1053 → 1968 →
 * 4161 → 4328 tokens/s over four back-to-back runs (tinystories-656k), so one warm-up run would
 * time a half-compiled peer.
 */
export const PEER_WARMUP = 4;

export async function benchOnnxPeer(
  cfg: LlamaConfig, weights: LlamaWeights, c: { prompt: number; gen: number; runs: number }, log?: (s: string) => void, ep: 'wasm' | 'webgpu' = 'wasm',
): Promise<OnnxPeerResult> {
  if (c.gen < 2) throw new Error('bench onnx peer: gen must be ≥ 2 (one prefill token, ≥ 1 decode step)');
  const ort = ep === 'webgpu' ? await import('onnxruntime-web/webgpu') : await import('onnxruntime-web');
  ort.env.wasm.numThreads = 1;
  const { createOnnxSession, onnxGenerate } = await import('../export/onnx-generate.ts');
  const { exportOnnx } = await import('../export/onnx.ts');
  const files = exportOnnx(cfg, weights);
  const session = ep === 'webgpu'
    ? await createOnnxSession(files, {
      executionProviders: ['webgpu'],
      // the KV cache stays on the GPU between steps, as transformers.js keeps it; logits come back
      preferredOutputLocation: Object.fromEntries(Array.from({ length: cfg.layers }, (_, l) => ['key', 'value'].map((kv) => [`present.${l}.${kv}`, 'gpu-buffer' as const])).flat()),
    }, ort)
    : await createOnnxSession(files);
  const tok = idTokenizer(cfg.vocab);
  try {
    const prefill: number[] = [], decode: number[] = [];
    for (let r = 0; r < PEER_WARMUP + c.runs; r++) {
      const ids = promptIds(c.prompt, cfg.vocab, r + 1);
      const t0 = performance.now();
      let tFirst = 0, tLast = 0, n = 0;
      const g = await onnxGenerate(session, tok, ids, c.gen, {
        stopIds: [], lib: ort,
        onToken: () => {
          tLast = performance.now();
          if (n++ === 0) tFirst = tLast;
        },
      });
      if (g.ids.length !== c.gen) throw new Error(`bench onnx peer: generated ${g.ids.length} of ${c.gen} tokens (${g.stopReason})`);
      if (r < PEER_WARMUP) continue; // warm-up: V8 tiers the wasm up meanwhile
      prefill.push((c.prompt * 1000) / (tFirst - t0));
      decode.push(((c.gen - 1) * 1000) / (tLast - tFirst));
    }
    const res: OnnxPeerResult = {
      prefillTokensPerSecond: stat(prefill), decodeTokensPerSecond: stat(decode),
      runtime: `onnxruntime-web ${ort.env.versions?.web ?? '?'} (${ep === 'webgpu' ? 'WebGPU' : 'wasm, 1 thread'}, ${typeof document === 'undefined' ? 'Node' : 'browser'})`,
    };
    log?.(`  → onnxruntime-web: prefill ${res.prefillTokensPerSecond.median.toFixed(1)} tok/s, decode ${res.decodeTokensPerSecond.median.toFixed(1)} tok/s`);
    return res;
  } finally {
    await session.release();
  }
}
