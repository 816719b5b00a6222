// The worker's model service: stored models as the page lists them, their config and base memory
// (read without the weights), imports of local files and downloads from a Hub-layout server
// (src/model/hub.ts) into the store, deletion, and two caches: tokenizers (cheap, several kept)
// and fully loaded models (weights in f32 on the host; one kept, the most recent).
// It is not: the store (src/store) nor the loaders (src/model/load.ts); no DOM.
import type { LlamaConfig } from '../../src/model/config.ts';
import { downloadModel, hubModelId, importLocalModel, type HubProgress } from '../../src/model/hub.ts';
import { type LoadedModel, loadModel, loadModelTokenizer } from '../../src/model/load.ts';
import type { Tokenizer } from '../../src/tokenizer/types.ts';
import { chatRenderer } from '../../src/data/index.ts';
import type { ChatRenderer } from '../../src/data/types.ts';
import { deleteModel, getModel, listModels, modelShapeSignature, type ModelListing, type ModelManifest, storedModelSource } from '../../src/store/index.ts';
import { planMemory } from '../../src/train/memory.ts';
import type { ModelDetails, ModelSummary } from '../../src/protocol.ts';

export interface TokenizerBundle {
  modelId: string;
  config: LlamaConfig;
  tokenizer: Tokenizer;
  chatTemplate: string | null;
  /** the template as src/data renders it (null: the plain fallback) */
  renderer: ChatRenderer | null;
}

function formatOf(m: ModelManifest): 'hf' | 'gguf' {
  return !m.files.some((f) => f.name === 'config.json') && m.files.some((f) => f.name.toLowerCase().endsWith('.gguf')) ? 'gguf' : 'hf';
}

export function summaryOf(m: ModelManifest | ModelListing): ModelSummary {
  const total = m.files.reduce((a, f) => a + f.size, 0);
  return {
    id: m.id,
    name: m.name,
    source: m.source,
    complete: m.complete,
    totalBytes: 'totalBytes' in m ? m.totalBytes : total,
    storedBytes: 'storedBytes' in m ? m.storedBytes : m.complete ? total : 0,
    files: m.files.map((f) => ({ name: f.name, size: f.size })),
    quant: m.quant,
    format: formatOf(m),
    createdAt: m.createdAt,
  };
}

/** Parameters of a Llama-family base (tied embeddings counted once). */
export function paramCount(c: LlamaConfig): number {
  const QD = c.heads * c.headDim, KVD = c.kvHeads * c.headDim;
  const layer = 2 * c.hidden + QD * c.hidden + 2 * KVD * c.hidden + c.hidden * QD + 3 * c.ffn * c.hidden + (c.attnBias ? QD + 2 * KVD : 0);
  return c.vocab * c.hidden * (c.tiedEmbeddings ? 1 : 2) + c.hidden + c.layers * layer;
}

/** GPU bytes of the frozen base in a storage format (the planner's own arithmetic). */
export function baseBytes(c: LlamaConfig, quant: 'f32' | 'q8' | 'q4'): number {
  return planMemory(c, { quant, rank: 1, alpha: 1, dropout: 0, targets: [], batchSize: 1, seqLen: 2, checkpointing: true, gradAccum: 1 }).bytes.baseWeights;
}

export class Models {
  private tokenizers = new Map<string, Promise<TokenizerBundle>>();
  private loaded: { id: string; model: Promise<LoadedModel> } | null = null;

  async list(): Promise<ModelSummary[]> {
    return (await listModels({ onUnreadable: (e) => console.warn(`whittle: skipping an unreadable model record: ${e.message}`) })).map(summaryOf);
  }

  async summary(id: string): Promise<ModelSummary> {
    const m = await getModel(id);
    if (!m) throw new Error(`no model ${id} in this browser's storage`);
    return summaryOf(m);
  }

  /** Config, parameters, base memory per format and tokenizer facts, without loading weights. */
  async details(id: string): Promise<ModelDetails> {
    const t = await this.tokenizer(id);
    const c = t.config;
    const tok = t.tokenizer;
    return {
      id,
      config: c,
      shape: modelShapeSignature(c),
      params: paramCount(c),
      baseBytes: { f32: baseBytes(c, 'f32'), q8: baseBytes(c, 'q8'), q4: baseBytes(c, 'q4') },
      tokenizer: { kind: tok.kind, vocabSize: tok.vocabSize, bos: tok.bosToken, eos: tok.eosToken },
      chatTemplate: t.chatTemplate !== null,
    };
  }

  /** The tokenizer and chat template of a stored model (cached). */
  tokenizer(id: string): Promise<TokenizerBundle> {
    let p = this.tokenizers.get(id);
    if (!p) {
      p = loadModelTokenizer(storedModelSource(id)).then((r) => ({
        modelId: id, config: r.config, tokenizer: r.tokenizer, chatTemplate: r.chatTemplate,
        renderer: r.chatTemplate ? chatRenderer(r.chatTemplate, r.tokenizer) : null,
      }));
      p.catch(() => this.tokenizers.delete(id));
      if (this.tokenizers.size > 8) this.tokenizers.delete(this.tokenizers.keys().next().value!);
      this.tokenizers.set(id, p);
    }
    return p;
  }

  /** The model with its weights (the last one loaded stays cached; a running job keeps its own reference). */
  load(id: string): Promise<LoadedModel> {
    if (this.loaded?.id === id) return this.loaded.model;
    const model = loadModel(storedModelSource(id));
    const entry = { id, model };
    this.loaded = entry;
    model.catch(() => {
      if (this.loaded === entry) this.loaded = null;
    });
    return model;
  }

  async importFiles(name: string, files: Array<{ path: string; file: File }>, signal: AbortSignal, onProgress: (id: string, p: HubProgress) => void): Promise<ModelSummary> {
    if (!files.length) throw new Error('no files were chosen');
    const map = new Map<string, File>();
    for (const f of files) map.set(f.path, f.file);
    const hasConfig = map.has('config.json');
    const ggufs = [...map.keys()].filter((p) => p.toLowerCase().endsWith('.gguf'));
    if (!hasConfig && ggufs.length === 0) {
      throw new Error(`${name}: no model here — choose a folder with config.json, tokenizer.json and *.safetensors (Hugging Face layout), or one .gguf file`);
    }
    if (hasConfig) {
      // keep what loadModel reads: the HF files, not README images or PyTorch duplicates
      for (const p of [...map.keys()]) {
        if (!/\.(json|safetensors|jinja|txt|model)$/i.test(p) || /^(optimizer|training_args|pytorch_model)/.test(p)) map.delete(p);
      }
    }
    const id = `local:${name}`;
    const m = await importLocalModel(name, map, { id, signal, onProgress: (p) => onProgress(id, p) });
    return summaryOf(m);
  }

  async download(opts: { repo: string; revision?: string; file?: string; baseUrl: string; name?: string }, signal: AbortSignal, onProgress: (id: string, p: HubProgress) => void) {
    const id = hubModelId(opts.repo, opts.revision || 'main', opts.file || undefined);
    const r = await downloadModel({
      repo: opts.repo, revision: opts.revision || undefined, file: opts.file || undefined, baseUrl: opts.baseUrl, name: opts.name,
      signal, onProgress: (p) => onProgress(id, p),
    });
    return { ...summaryOf(r.manifest), cached: r.cached, fetchedBytes: r.fetchedBytes, resumedBytes: r.resumedBytes };
  }

  async remove(id: string): Promise<boolean> {
    this.tokenizers.delete(id);
    if (this.loaded?.id === id) this.loaded = null;
    return deleteModel(id);
  }
}
