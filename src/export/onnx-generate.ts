// Running an exported ONNX model (./onnx.ts) with onnxruntime-web: createOnnxSession (a session
// from the exported folder's files, external data included) and onnxGenerate (greedy decoding
// with the KV cache, batch 1) — the inference fallback where WebGPU is missing.
// Statically imports onnxruntime-web (its wasm is fetched when the first session is created), so
// import this module lazily (`await import(...)`) from code that may never need it. In Node,
// 'onnxruntime-web' resolves to its Node build; set ort.env.wasm.numThreads = 1 there (no
// worker threads).
import * as ort from 'onnxruntime-web';
import type { Tokenizer } from '../tokenizer/types.ts';
import { ONNX_MODEL_PATH } from './onnx.ts';

/**
 * An InferenceSession over an exported folder (path → bytes, as exportOnnx returns or as read
 * back from disk): onnx/model.onnx plus every onnx/model.onnx_data* chunk as externalData.
 * Default execution provider: wasm.
 */
export async function createOnnxSession(
  files: Map<string, Uint8Array>, options: ort.InferenceSession.SessionOptions = {}, lib: OrtLib = ort,
): Promise<ort.InferenceSession> {
  const model = files.get(ONNX_MODEL_PATH);
  if (!model) throw new Error(`ONNX session: the folder has no ${ONNX_MODEL_PATH}`);
  const dir = ONNX_MODEL_PATH.slice(0, ONNX_MODEL_PATH.lastIndexOf('/') + 1);
  const dataPrefix = `${ONNX_MODEL_PATH}_data`;
  const externalData = [...files.keys()]
    .filter((p) => p === dataPrefix || p.startsWith(`${dataPrefix}_`))
    .sort()
    .map((p) => ({ path: p.slice(dir.length), data: files.get(p)! }));
  return lib.InferenceSession.create(model, {
    executionProviders: ['wasm'],
    ...options,
    ...(externalData.length ? { externalData: [...(options.externalData ?? []), ...externalData] } : {}),
  });
}

export interface OnnxGenerateOptions {
  /** called with each new token id and the text so far; return false to stop */
  onToken?: (id: number, text: string) => void | boolean;
  signal?: AbortSignal;
  /** ids that end generation (not included in the output); default tokenizer.eos */
  stopIds?: number[];
  /** encode options for a string prompt (default: the tokenizer's own defaults) */
  addBos?: boolean;
  prefixSpace?: boolean;
  /** the onnxruntime-web build the session came from (default: this module's; e.g. 'onnxruntime-web/webgpu') */
  lib?: OrtLib;
}

/** An onnxruntime-web module (its default build or a variant such as 'onnxruntime-web/webgpu'). */
export type OrtLib = typeof ort;

export interface OnnxGenerateResult {
  /** the prompt as ids (as given, or encoded) */
  promptIds: number[];
  /** generated ids (a stop id that ended generation is not included) */
  ids: number[];
  /** decoded continuation: decode(prompt + ids) minus decode(prompt), special tokens skipped */
  text: string;
  stopReason: 'stop' | 'length' | 'abort';
}

/** decode with special tokens skipped; '' when nothing is left (some decoders reject empty input) */
function decodeText(tokenizer: Tokenizer, ids: number[]): string {
  const keep = ids.filter((i) => !tokenizer.isSpecial(i));
  return keep.length ? tokenizer.decode(keep, { skipSpecial: true }) : '';
}

/** [NKV, HS] of the cache, from the session's input metadata. */
function cacheShape(session: ort.InferenceSession): [number, number] {
  const meta = session.inputMetadata?.find((m) => m.name === 'past_key_values.0.key');
  if (meta && meta.isTensor) {
    const [, nkv, , hs] = meta.shape;
    if (typeof nkv === 'number' && typeof hs === 'number') return [nkv, hs];
  }
  throw new Error('ONNX generate: cannot read the past_key_values.0.key shape [batch, kv_heads, past, head_dim] from the session');
}

/**
 * Greedy decoding (argmax, lowest id on ties) of up to maxTokens tokens after `prompt` (text,
 * encoded with the tokenizer, or ids), batch 1: one prefill call, then one call per token feeding
 * present.* back as past_key_values.*.
 */
export async function onnxGenerate(
  session: ort.InferenceSession, tokenizer: Tokenizer, prompt: string | number[], maxTokens: number,
  opts: OnnxGenerateOptions = {},
): Promise<OnnxGenerateResult> {
  const promptIds = typeof prompt === 'string'
    ? tokenizer.encode(prompt, { addBos: opts.addBos, prefixSpace: opts.prefixSpace })
    : prompt.slice();
  if (promptIds.length === 0) throw new Error('ONNX generate: empty prompt');
  const layers = session.inputNames.filter((n) => /^past_key_values\.\d+\.key$/.test(n)).length;
  const [nkv, hs] = cacheShape(session);
  const hasPos = session.inputNames.includes('position_ids');
  const stop = new Set(opts.stopIds ?? tokenizer.eos);
  const promptText = decodeText(tokenizer, promptIds);
  const textOf = (ids: number[]) => decodeText(tokenizer, [...promptIds, ...ids]).slice(promptText.length);

  const lib = opts.lib ?? ort;
  const past: Record<string, ort.Tensor> = {};
  for (let l = 0; l < layers; l++) {
    for (const kv of ['key', 'value']) past[`past_key_values.${l}.${kv}`] = new lib.Tensor('float32', new Float32Array(0), [1, nkv, 0, hs]);
  }
  const ids: number[] = [];
  let input = promptIds, done = 0, stopReason: OnnxGenerateResult['stopReason'] = 'length';
  try {
    while (ids.length < maxTokens) {
      if (opts.signal?.aborted) { stopReason = 'abort'; break; }
      const S = input.length, T = done + S;
      const feeds: Record<string, ort.Tensor> = {
        ...past,
        input_ids: new lib.Tensor('int64', BigInt64Array.from(input, (t) => BigInt(t)), [1, S]),
        attention_mask: new lib.Tensor('int64', new BigInt64Array(T).fill(1n), [1, T]),
      };
      if (hasPos) feeds.position_ids = new lib.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(done + i)), [1, S]);
      const out = await session.run(feeds);
      for (let l = 0; l < layers; l++) {
        for (const kv of ['key', 'value']) {
          const k = `past_key_values.${l}.${kv}`;
          if (past[k].location === 'gpu-buffer') past[k].dispose(); // a cache kept on the GPU (preferredOutputLocation)
          past[k] = out[`present.${l}.${kv}`];
        }
      }
      const V = out.logits.dims[2];
      const logits = (out.logits.location === 'cpu' ? out.logits.data : await out.logits.getData(true)) as Float32Array;
      const last = logits.subarray((S - 1) * V, S * V);
      let best = 0;
      for (let v = 1; v < V; v++) if (last[v] > last[best]) best = v;
      done = T;
      if (stop.has(best)) { stopReason = 'stop'; break; }
      ids.push(best);
      if (opts.onToken && opts.onToken(best, textOf(ids)) === false) { stopReason = 'abort'; break; }
      input = [best];
    }
  } finally {
    for (const t of Object.values(past)) if (t.location === 'gpu-buffer') t.dispose(); // the last step's cache, when kept on the GPU
  }
  return { promptIds, ids, text: textOf(ids), stopReason };
}
