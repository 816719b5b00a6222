// Base vs tuned in one call: the same prompt and sampling settings through the base model and
// through the base with a LoRA adapter, both streamed, both results returned.
//
// compareGenerate(gpu, cfg, weights, adapter, prompt, opts, onToken) uploads the base once
// (InferenceModel.create) and builds the tuned side on the same GPU weights
// (InferenceModel.withAdapter: the adapter unmerged, its own KV cache and scratch), so comparing
// costs one base upload plus the LoRA parameters and a second cache. With opts.merge the tuned side
// is a second upload with the adapter merged in on the host (src/model/merge.ts) — twice the base
// memory, base-model speed. compareModels(base, tuned, …) does the same on two InferenceModels the
// caller owns (e.g. one from InferenceModel.fromModel during training).
//
// Both sides get the same GenerateOptions, seed included: with an adapter whose B = 0 (or scale 0)
// the tuned logits equal the base logits exactly, so the two texts are identical even when sampling.
// By default the two generations run interleaved (each awaits its own GPU readback while the other
// records its next step), so both stream side by side; `interleave: false` runs base, then tuned
// (tokens/s then measure each alone). opts.signal stops both.
// No DOM, no node:*.
import type { Gpu } from '../gpu/device.ts';
import type { LlamaConfig, LlamaWeights } from './config.ts';
import {
  generate, type GenerateOptions, type GenerateResult, type GenToken, InferenceModel, type InferenceOptions, type LoraMode, type LoraWeights,
} from './generate.ts';
import type { QFormat } from './quant.ts';

export type CompareSide = 'base' | 'tuned';

export interface CompareOptions extends GenerateOptions, InferenceOptions {
  /** storage format of the frozen weights on the GPU (default 'f32'; both sides) */
  quant?: QFormat;
  /** tuned side: merge the adapter into a second upload of the base (default false: unmerged on the shared base) */
  merge?: boolean;
  /** step both generations concurrently so they stream side by side (default true); false: base to the end, then tuned */
  interleave?: boolean;
}

export interface CompareResult {
  base: GenerateResult;
  tuned: GenerateResult;
  /** how the tuned side applies the adapter ('none' when the adapter is null or adapts nothing) */
  loraMode: LoraMode;
  /** whether both sides ran on one upload of the base weights */
  sharedBase: boolean;
  /** index of the first generated token where the two differ; −1 when the ids are identical */
  firstDiff: number;
}

/** Streamed events of both sides, tagged with the side. */
export type CompareListener = (side: CompareSide, ev: GenToken) => void;

/**
 * Generate after `prompt` with the base model and with `adapter` applied (null: the base twice),
 * streaming every event of both to `onToken`. Allocates the models and frees them before returning.
 * opts.maxSeq defaults to prompt + maxTokens positions (at most the model's context).
 */
export async function compareGenerate(
  gpu: Gpu, cfg: LlamaConfig, weights: LlamaWeights, adapter: LoraWeights | null, prompt: number[],
  opts: CompareOptions = {}, onToken?: CompareListener,
): Promise<CompareResult> {
  const quant = opts.quant ?? 'f32';
  const want = prompt.length + (opts.maxTokens ?? 256);
  const maxSeq = opts.maxSeq ?? Math.max(prompt.length, Math.min(cfg.maxPos || want, want));
  const io: InferenceOptions = { maxSeq, ...(opts.prefillChunk !== undefined ? { prefillChunk: opts.prefillChunk } : {}) };
  const merged = !!opts.merge && !!adapter && adapter.config.targets.length > 0;
  const base = InferenceModel.create(gpu, cfg, weights, { ...io, quant });
  let tuned: InferenceModel;
  try {
    tuned = merged ? InferenceModel.create(gpu, cfg, weights, { ...io, quant, lora: adapter, merge: true }) : base.withAdapter(adapter);
  } catch (e) {
    base.destroy();
    throw e;
  }
  try {
    const r = await compareModels(base, tuned, prompt, opts, onToken);
    return { ...r, sharedBase: !merged };
  } finally {
    tuned.destroy();
    base.destroy();
  }
}

/**
 * The comparison on two existing models (same config; the caller owns and destroys them): `base`
 * and `tuned` each generate after `prompt` with the same options. sharedBase is reported as false
 * unless the caller knows better.
 */
export async function compareModels(
  base: InferenceModel, tuned: InferenceModel, prompt: number[], opts: GenerateOptions & { interleave?: boolean } = {}, onToken?: CompareListener,
): Promise<CompareResult> {
  if (base === tuned) throw new Error('compare: base and tuned must be two InferenceModels (each generates with its own cache)');
  if (base.cfg.vocab !== tuned.cfg.vocab || base.cfg.hidden !== tuned.cfg.hidden || base.cfg.layers !== tuned.cfg.layers) {
    throw new Error('compare: base and tuned are different models');
  }
  const run = async (side: CompareSide, m: InferenceModel): Promise<GenerateResult> => {
    const it = generate(m, prompt, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
      onToken?.(side, r.value);
    }
  };
  let b: GenerateResult, t: GenerateResult;
  if (opts.interleave ?? true) {
    // settle both before throwing: the caller may destroy the models right after
    const [rb, rt] = await Promise.allSettled([run('base', base), run('tuned', tuned)]);
    if (rb.status === 'rejected') throw rb.reason;
    if (rt.status === 'rejected') throw rt.reason;
    b = rb.value;
    t = rt.value;
  } else {
    b = await run('base', base);
    t = await run('tuned', tuned);
  }
  let firstDiff = -1;
  for (let i = 0; i < Math.max(b.ids.length, t.ids.length); i++) {
    if (b.ids[i] !== t.ids[i]) {
      firstDiff = i;
      break;
    }
  }
  return { base: b, tuned: t, loraMode: tuned.loraMode, sharedBase: false, firstDiff };
}
