// The worker's CPU inference path, for browsers without WebGPU (or when the user asks for it):
// a stored model, with a stored adapter merged into it (src/model/merge.ts mergeLora), exported to
// ONNX in memory (src/export/onnx.ts exportOnnx) and run by onnxruntime-web on WebAssembly
// (src/export/onnx-generate.ts onnxGenerate: greedy decoding with the KV cache). The same folder,
// with the source's tokenizer files and config.json, is what the Adapters page exports as
// "ONNX (merged)".
// onnxruntime-web is imported lazily (its own chunk, and its .wasm fetched from this app's own
// build, so it works offline once the service worker has cached the build); one thread, no proxy.
// Sessions are cached per (model, adapter), a few at a time.
// It is not: the GPU playground (./playground.ts) nor the exporter (src/export); no DOM.
import type { LlamaConfig, LlamaWeights } from '../../src/model/config.ts';
import { mergeLora } from '../../src/model/merge.ts';
import { ONNX_MODEL_PATH, exportOnnx } from '../../src/export/onnx.ts';
import { TOKENIZER_FILES, adapterFromTrained, fitAdapter } from '../../src/export/index.ts';
import { encodeChatPrompt, encodeCompletionPrompt } from '../../src/data/index.ts';
import { getAdapter, getModel, modelShapeSignature, storedModelSource } from '../../src/store/index.ts';
import type { GenerationSummary, PromptInput } from '../../src/protocol.ts';
import type { Models } from './models.ts';

type Ort = typeof import('onnxruntime-web');
type OnnxGen = typeof import('../../src/export/onnx-generate.ts');
type Session = Awaited<ReturnType<OnnxGen['createOnnxSession']>>;

const MAX_SESSIONS = 2; // base + one adapter (the compare view); each holds an f32 copy of the model

let runtime: Promise<{ ort: Ort; gen: OnnxGen }> | null = null;

/** onnxruntime-web and the generator, loaded once (single-threaded wasm, in this worker). */
function loadRuntime(): Promise<{ ort: Ort; gen: OnnxGen }> {
  if (!runtime) {
    runtime = (async () => {
      const ort = await import('onnxruntime-web');
      ort.env.wasm.numThreads = 1; // threads need cross-origin isolation; this worker is the background thread
      ort.env.wasm.proxy = false;
      const gen = await import('../../src/export/onnx-generate.ts');
      return { ort, gen };
    })();
    runtime.catch(() => (runtime = null));
  }
  return runtime;
}

/** The weights to export: the base, or the base with the adapter merged (model orientation, f32). */
async function mergedWeights(models: Models, modelId: string, adapterId: string | null): Promise<{ config: LlamaConfig; weights: LlamaWeights; adapterName: string | null }> {
  const model = await models.load(modelId);
  if (!adapterId) return { config: model.config, weights: model.weights, adapterName: null };
  const a = await getAdapter(adapterId);
  if (!a) throw new Error(`no adapter ${adapterId} in this browser's storage`);
  if (a.baseModel.shape !== modelShapeSignature(model.config)) {
    throw new Error(`adapter "${a.name}" was trained for another model shape (${a.baseModel.shape})`);
  }
  const ad = fitAdapter(adapterFromTrained(a, model.config), model.config);
  return { config: model.config, weights: mergeLora(model.config, model.weights, ad.lora, ad.tensors), adapterName: a.name };
}

/**
 * The ONNX folder (path → bytes) of a stored model with an adapter merged in: config.json (the
 * source's own extra keys kept), the tokenizer files the source has, onnx/model.onnx.
 */
export async function onnxFolder(models: Models, modelId: string, adapterId: string | null): Promise<{ files: Map<string, Uint8Array>; notes: string[] }> {
  const m = await getModel(modelId);
  if (!m?.complete) throw new Error(`the model ${modelId} is not (completely) stored in this browser`);
  const { config, weights } = await mergedWeights(models, modelId, adapterId);
  const src = storedModelSource(modelId);
  const names = await src.list();
  const notes: string[] = [];
  const tokenizerFiles = new Map<string, Uint8Array>();
  for (const f of TOKENIZER_FILES) if (names.includes(f)) tokenizerFiles.set(f, await src.read(f));
  const configJson = names.includes('config.json') ? new TextDecoder().decode(await src.read('config.json')) : undefined;
  if (!tokenizerFiles.size) {
    notes.push('the base model has no tokenizer files (a GGUF keeps its tokenizer inside): copy tokenizer.json from the original Hugging Face repo next to config.json');
  }
  if (config.ropeStyle === 'pairs') notes.push('q/k projections un-permuted from llama.cpp (GGUF) order to Hugging Face order');
  notes.push('weights are f32, merged: the folder runs in transformers.js / onnxruntime without LoRA support');
  return { files: exportOnnx(config, weights, { tokenizerFiles, configJson }), notes };
}

export class OnnxPlayground {
  private sessions = new Map<string, Promise<Session>>();

  constructor(private models: Models) {}

  private async session(modelId: string, adapterId: string | null): Promise<Session> {
    const key = `${modelId}|${adapterId ?? 'base'}`;
    let s = this.sessions.get(key);
    if (s) {
      this.sessions.delete(key);
      this.sessions.set(key, s); // most recent last
      return s;
    }
    s = (async () => {
      const { gen } = await loadRuntime();
      const { config, weights } = await mergedWeights(this.models, modelId, adapterId);
      const files = exportOnnx(config, weights);
      if (!files.has(ONNX_MODEL_PATH)) throw new Error('the ONNX export wrote no model');
      return gen.createOnnxSession(files);
    })();
    s.catch(() => this.sessions.delete(key));
    this.sessions.set(key, s);
    while (this.sessions.size > MAX_SESSIONS) {
      const [k, old] = this.sessions.entries().next().value!;
      this.sessions.delete(k);
      void old.then((x) => x.release()).catch(() => {});
    }
    return s;
  }

  /** Forget the sessions of a model (deleted) or of an adapter (deleted). */
  forget(id: string): void {
    for (const [k, s] of this.sessions) {
      if (k.split('|').includes(id)) {
        this.sessions.delete(k);
        void s.then((x) => x.release()).catch(() => {});
      }
    }
  }

  /**
   * Greedy generation through ONNX Runtime (wasm), lane after lane (one session runs at a time on
   * this thread). Prompts are formatted as on the GPU path; sampling settings do not apply.
   */
  async run(
    req: { modelId: string; lanes: Array<{ adapterId: string | null }>; prompt: PromptInput; maxTokens: number },
    signal: AbortSignal,
    onToken: (lane: number, text: string, id: number | null) => void,
    onDone: (lane: number, s: GenerationSummary) => void,
  ): Promise<GenerationSummary[]> {
    if (!req.lanes.length) throw new Error('nothing to generate with: choose the base model or an adapter');
    if (new Set(req.lanes.map((l) => l.adapterId)).size !== req.lanes.length) throw new Error('the same adapter is chosen twice');
    const t = await this.models.tokenizer(req.modelId);
    const ids = req.prompt.mode === 'chat'
      ? encodeChatPrompt([...(req.prompt.system?.trim() ? [{ role: 'system', content: req.prompt.system }] : []), { role: 'user', content: req.prompt.user }],
        t.tokenizer, { chatTemplate: t.renderer })
      : encodeCompletionPrompt(req.prompt.text, t.tokenizer);
    if (!ids.length) throw new Error('the prompt is empty');
    const maxPos = t.config.maxPos;
    if (ids.length >= maxPos) throw new Error(`the prompt is ${ids.length} tokens; at most ${maxPos - 1} fit`);
    const maxTokens = Math.max(1, Math.min(req.maxTokens, maxPos - ids.length));
    const { gen } = await loadRuntime();
    const results: GenerationSummary[] = [];
    for (let lane = 0; lane < req.lanes.length; lane++) {
      const session = await this.session(req.modelId, req.lanes[lane].adapterId);
      let shown = '', first = 0;
      const t0 = performance.now();
      const r = await gen.onnxGenerate(session, t.tokenizer, ids, maxTokens, {
        signal,
        onToken: (id, text) => {
          if (!first) first = performance.now();
          // stream the new text; a partial UTF-8 sequence shows once it completes
          if (text.startsWith(shown)) {
            onToken(lane, text.slice(shown.length), id);
            shown = text;
          } else onToken(lane, '', id);
        },
      });
      const end = performance.now();
      if (r.text.startsWith(shown) && r.text.length > shown.length) onToken(lane, r.text.slice(shown.length), null);
      const decodeMs = first ? end - first : 0;
      const s: GenerationSummary = {
        text: r.text,
        finishReason: r.stopReason === 'stop' ? 'eos' : r.stopReason,
        promptTokens: ids.length,
        tokens: r.ids.length,
        tokensPerSecond: r.ids.length > 1 && decodeMs > 0 ? ((r.ids.length - 1) * 1000) / decodeMs : 0,
        prefillMs: (first || end) - t0,
        decodeMs,
        backend: 'onnx',
      };
      results.push(s);
      onDone(lane, s);
      if (signal.aborted) {
        for (let rest = lane + 1; rest < req.lanes.length; rest++) {
          const empty: GenerationSummary = { text: '', finishReason: 'abort', promptTokens: ids.length, tokens: 0, tokensPerSecond: 0, prefillMs: 0, decodeMs: 0, backend: 'onnx' };
          results.push(empty);
          onDone(rest, empty);
        }
        break;
      }
    }
    return results;
  }
}
