// The worker's playground: the same prompt through the base model and through adapters, streamed
// token by token and interleaved (one step of each lane in turn) so the page shows them side by
// side as they grow. Prompts are formatted exactly as training formatted them (the chat template,
// or src/data's plain fallback), so a tuned model sees what it learned from.
// Inference models (src/model/generate.ts InferenceModel: GPU weights + KV cache) are cached per
// (model, adapter, quant) and all destroyed when another base model is asked for.
// It is not: sampling or decoding (src/model); no DOM.
import { type Gpu, isSoftwareAdapter } from '../../src/gpu/device.ts';
import { encodeChatPrompt, encodeCompletionPrompt } from '../../src/data/index.ts';
import { type GenToken, type GenerateResult, InferenceModel, generate } from '../../src/model/generate.ts';
import type { QFormat } from '../../src/model/quant.ts';
import { modelShapeSignature } from '../../src/store/adapters.ts';
import type { SamplingOptions } from '../../src/model/sample.ts';
import type { GenerationSummary, PromptInput } from '../../src/protocol.ts';
import type { Adapters } from './adapters.ts';
import { baseBytes, type Models } from './models.ts';

const MAX_CACHED = 3;

export interface Lane {
  adapterId: string | null;
}

function summary(r: GenerateResult): GenerationSummary {
  return {
    text: r.text, finishReason: r.finishReason, promptTokens: r.promptTokens, tokens: r.ids.length,
    tokensPerSecond: r.tokensPerSecond, prefillMs: r.prefillMs, decodeMs: r.decodeMs, backend: 'gpu',
  };
}

export class Playground {
  private cache = new Map<string, InferenceModel>();
  private modelId: string | null = null;

  constructor(private gpu: () => Promise<Gpu>, private models: Models, private adapters: Adapters) {}

  private drop(): void {
    for (const m of this.cache.values()) m.destroy();
    this.cache.clear();
  }

  private async inference(modelId: string, adapterId: string | null, quant: QFormat): Promise<InferenceModel> {
    if (this.modelId !== modelId) {
      this.drop();
      this.modelId = modelId;
    }
    const key = `${adapterId ?? 'base'}|${quant}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit); // most recent last
      return hit;
    }
    const [gpu, model] = await Promise.all([this.gpu(), this.models.load(modelId)]);
    let lora = null;
    if (adapterId) {
      const a = await this.adapters.weights(adapterId);
      lora = a.lora;
    }
    const im = InferenceModel.create(gpu, model.config, model.weights, { quant, lora, maxSeq: Math.min(model.config.maxPos, 1024) });
    // on a hardware adapter: the linear variants for decode and prefill by a short trial, cached per adapter
    if (!isSoftwareAdapter(gpu)) await im.tune();
    this.cache.set(key, im);
    while (this.cache.size > MAX_CACHED) {
      const [k, old] = this.cache.entries().next().value!;
      old.destroy();
      this.cache.delete(k);
    }
    return im;
  }

  /**
   * Run every lane on the prompt; `onToken` / `onDone` see each lane's stream. The base is kept in
   * the format the adapters were trained on (so base and tuned differ only by the adapter), else
   * f32 when it is under 1 GiB, else q8.
   */
  async run(
    req: { modelId: string; lanes: Lane[]; prompt: PromptInput; sampling: SamplingOptions; maxTokens: number },
    signal: AbortSignal,
    onToken: (lane: number, t: GenToken) => void,
    onDone: (lane: number, s: GenerationSummary) => void,
  ): Promise<GenerationSummary[]> {
    if (!req.lanes.length) throw new Error('nothing to generate with: choose the base model or an adapter');
    const t = await this.models.tokenizer(req.modelId);
    let quant: QFormat | null = null;
    for (const l of req.lanes) {
      if (!l.adapterId) continue;
      const { meta } = await this.adapters.weights(l.adapterId);
      const q = (meta.hyperparameters as { quant?: QFormat }).quant;
      if (q) quant = q;
      if (meta.baseModel.shape !== modelShapeSignature(t.config)) {
        throw new Error(`adapter "${meta.name}" was trained for another model shape (${meta.baseModel.shape})`);
      }
    }
    quant ??= baseBytes(t.config, 'f32') <= 1 << 30 ? 'f32' : 'q8';
    const ids = req.prompt.mode === 'chat'
      ? encodeChatPrompt([...(req.prompt.system?.trim() ? [{ role: 'system', content: req.prompt.system }] : []), { role: 'user', content: req.prompt.user }],
        t.tokenizer, { chatTemplate: t.renderer })
      : encodeCompletionPrompt(req.prompt.text, t.tokenizer);
    if (!ids.length) throw new Error('the prompt is empty');
    const models: InferenceModel[] = [];
    for (const l of req.lanes) models.push(await this.inference(req.modelId, l.adapterId, quant));
    if (new Set(models).size !== models.length) throw new Error('the same adapter is chosen twice');
    const maxTokens = Math.max(1, Math.min(req.maxTokens, models[0].maxSeq - ids.length));
    if (ids.length >= models[0].maxSeq) throw new Error(`the prompt is ${ids.length} tokens; at most ${models[0].maxSeq - 1} fit`);
    const gens = models.map((m) => generate(m, ids, { ...req.sampling, maxTokens, tokenizer: t.tokenizer, signal, reuseCache: false }));
    const results: GenerationSummary[] = new Array(gens.length);
    const open = new Set(gens.map((_, i) => i));
    while (open.size) {
      for (const i of [...open]) {
        const r = await gens[i].next();
        if (r.done) {
          results[i] = summary(r.value);
          open.delete(i);
          onDone(i, results[i]);
        } else onToken(i, r.value);
      }
    }
    return results;
  }
}
