// The worker's adapter service: stored LoRA adapters (src/store/adapters.ts) listed, renamed,
// deleted, and turned back into the host LoRA weights inference takes (src/model/generate.ts
// LoraWeights) from their PEFT tensor names and the LoRA config saved with them.
// Exports go through src/export (PEFT, GGUF LoRA, merged model, ONNX of the merged model (./onnx.ts),
// cluster recipe) into memory and
// come back as one file (a .zip when the format writes several); PEFT imports are checked against
// the chosen base model by src/export importPeft and stored like a trained adapter.
// It is not: training (src/train) nor the exporters (src/export); no DOM.
import { LORA_TARGETS, type LoraConfig, type LoraTarget } from '../../src/model/config.ts';
import type { LoraWeights } from '../../src/model/generate.ts';
import { loraKey, type LoraPair } from '../../src/model/lora.ts';
import { blobSource } from '../../src/model/source.ts';
import {
  deleteAdapter, getAdapter, getJob, getModel, listAdapters, modelShapeSignature, renameAdapter, saveAdapter, storedModelSource, type AdapterMeta,
} from '../../src/store/index.ts';
import { PEFT_MODULES } from '../../src/train/adapter.ts';
import type { Hyperparameters } from '../../src/train/hyperparams.ts';
import {
  type Adapter, adapterFromTrained, exportGgufLora, exportMerged, exportMergedGGUF, exportPeft, exportRecipe, importPeft, memorySink, peftName,
} from '../../src/export/index.ts';
import type { ExportedFile, ExportFormat } from '../../src/protocol.ts';
import type { Datasets } from './datasets.ts';
import type { Models } from './models.ts';
import { onnxFolder } from './onnx.ts';
import { zip } from './zip.ts';

const MODULE_TARGET = new Map<string, LoraTarget>(Object.entries(PEFT_MODULES).map(([t, m]) => [m, t as LoraTarget]));
const PEFT_NAME = /^base_model\.model\.model\.layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)\.lora_([AB])\.weight$/;

/** The LoRA config saved with an adapter (hyperparameters.lora in PEFT terms, or the resolved hyperparameters). */
export function loraConfigOfMeta(meta: AdapterMeta): LoraConfig {
  const hp = meta.hyperparameters as Record<string, unknown>;
  const peft = hp.lora as { r?: number; lora_alpha?: number; targets?: LoraTarget[] } | undefined;
  const rank = peft?.r ?? (hp.rank as number | undefined);
  const alpha = peft?.lora_alpha ?? (hp.alpha as number | undefined);
  const targets = peft?.targets ?? (hp.targets as LoraTarget[] | undefined);
  if (typeof rank !== 'number' || typeof alpha !== 'number' || !Array.isArray(targets)) {
    throw new Error(`adapter "${meta.name}" does not record its LoRA rank, alpha and targets`);
  }
  const rslora = (peft as { use_rslora?: boolean } | undefined)?.use_rslora === true;
  return { rank, alpha, dropout: 0, targets: LORA_TARGETS.filter((t) => targets.includes(t)), ...(rslora ? { rslora: true } : {}) };
}

const safeName = (s: string) => s.replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '') || 'adapter';

export class Adapters {
  list(): Promise<AdapterMeta[]> {
    return listAdapters({ onUnreadable: (e) => console.warn(`whittle: skipping an unreadable adapter record: ${e.message}`) });
  }

  rename(id: string, name: string): Promise<AdapterMeta> {
    return renameAdapter(id, name);
  }

  remove(id: string): Promise<boolean> {
    return deleteAdapter(id);
  }

  /** The adapter's metadata and its weights for inference (dropout off). */
  async weights(id: string): Promise<{ meta: AdapterMeta; lora: LoraWeights }> {
    const a = await getAdapter(id);
    if (!a) throw new Error(`no adapter ${id} in this browser's storage`);
    const config = loraConfigOfMeta(a);
    const params = new Map<string, Partial<LoraPair>>();
    for (const t of a.tensors) {
      const m = PEFT_NAME.exec(t.name);
      const target = m && MODULE_TARGET.get(m[2]);
      if (!m || !target) throw new Error(`adapter "${a.name}": unexpected tensor ${t.name}`);
      if (t.dtype !== 'f32') throw new Error(`adapter "${a.name}": tensor ${t.name} is ${t.dtype}, expected f32`);
      const key = loraKey(Number(m[1]), target);
      const pair = params.get(key) ?? {};
      pair[m[3] as 'A' | 'B'] = new Float32Array(t.data);
      params.set(key, pair);
    }
    for (const [k, p] of params) if (!p.A || !p.B) throw new Error(`adapter "${a.name}": ${k} lacks its ${p.A ? 'B' : 'A'} matrix`);
    return { meta: a, lora: { config, params: params as Map<string, LoraPair> } };
  }
}

export interface ExportDeps {
  models: Models;
  datasets: Datasets;
}

/** The repo id (Hub) or name (local files) of a stored model: PEFT's base_model_name_or_path. */
async function baseNameOf(modelId: string): Promise<string> {
  const m = await getModel(modelId);
  if (!m) return modelId;
  return m.source.kind === 'hub' ? m.source.repo : m.source.name;
}

/** Export a stored adapter with src/export; several files come back as one .zip. */
export async function exportAdapter(deps: ExportDeps, adapterId: string, format: ExportFormat, dtype?: 'f32' | 'f16' | 'bf16'): Promise<ExportedFile> {
  const a = await getAdapter(adapterId);
  if (!a) throw new Error(`no adapter ${adapterId} in this browser's storage`);
  const modelId = a.baseModel.id;
  if (!(await getModel(modelId))?.complete) {
    throw new Error(`the base model of "${a.name}" (${modelId}) is no longer stored; add it again on the Models page to export`);
  }
  const t = await deps.models.tokenizer(modelId);
  const nameOrPath = await baseNameOf(modelId);
  const { sink, files } = memorySink();
  const notes: string[] = [];
  const adapter = (): Adapter => adapterFromTrained({ ...a, baseModel: { ...a.baseModel, id: nameOrPath } }, t.config);
  const base = safeName(a.name);
  if (format === 'peft') {
    await exportPeft(adapter(), t.config, sink, { dtype: dtype ?? 'f32', baseModelNameOrPath: nameOrPath });
  } else if (format === 'gguf') {
    await exportGgufLora(adapter(), t.config, sink, { dtype: dtype === 'f16' ? 'f16' : 'f32', file: `${base}.gguf` });
  } else if (format === 'merged' || format === 'merged-gguf') {
    const model = await deps.models.load(modelId);
    const r = format === 'merged'
      ? await exportMerged(model, adapterFromTrained({ ...a, baseModel: { ...a.baseModel, id: nameOrPath } }, model.config), sink, { dtype: dtype ?? 'f16', src: storedModelSource(modelId) })
      : await exportMergedGGUF(storedModelSource(modelId), model, adapterFromTrained({ ...a, baseModel: { ...a.baseModel, id: nameOrPath } }, model.config), sink, { dtype: dtype === 'f32' ? 'f32' : 'f16' });
    notes.push(...r.notes);
  } else if (format === 'onnx') {
    const r = await onnxFolder(deps.models, modelId, adapterId);
    for (const [name, bytes] of r.files) await sink(name, bytes);
    notes.push(...r.notes);
  } else if (format === 'recipe') {
    if (!a.datasetId) throw new Error(`"${a.name}" was not trained from a stored dataset; a recipe needs its training data`);
    const d = await deps.datasets.get(a.datasetId);
    const hp = a.hyperparameters as unknown as Hyperparameters & { lora?: unknown };
    const job = a.jobId ? await getJob(a.jobId) : undefined;
    const trainOn = ((job?.hyperparameters as { trainOn?: 'assistant' | 'all' } | undefined)?.trainOn) ?? 'assistant';
    await exportRecipe({
      baseModel: nameOrPath, lora: loraConfigOfMeta(a), hp, data: new TextEncoder().encode(d.text), trainOn, name: a.name,
    }, sink);
  } else {
    throw new Error(`unknown export format '${format as string}'`);
  }
  const names = [...files.keys()];
  if (names.length === 1) {
    const bytes = files.get(names[0])!;
    return { name: names[0].split('/').pop()!, mime: 'application/octet-stream', bytes: bytes.slice().buffer, files: names, notes };
  }
  const z = zip(files);
  return { name: `${base}-${format}.zip`, mime: 'application/zip', bytes: z.buffer as ArrayBuffer, files: names, notes };
}

/** Import a PEFT adapter directory for a stored base model and store it. */
export async function importPeftAdapter(deps: ExportDeps, modelId: string, name: string, files: Array<{ path: string; file: File }>): Promise<AdapterMeta> {
  // a folder picker gives 'dir/adapter_config.json': keep the paths relative to the folder
  const strip = (p: string) => p.replace(/^[^/]+\/(?=adapter_)/, '');
  const map = new Map(files.map((f) => [strip(f.path), f.file as Blob]));
  const cfg = (await deps.models.tokenizer(modelId)).config;
  const ad = await importPeft(blobSource(name, map), cfg, { name });
  const tensors = [];
  for (const [key, p] of ad.tensors) {
    const [l, target] = key.split('.') as [string, LoraTarget];
    tensors.push({ name: peftName(Number(l), target, 'A'), shape: [ad.lora.rank, p.A.length / ad.lora.rank], dtype: 'f32' as const, data: p.A });
    tensors.push({ name: peftName(Number(l), target, 'B'), shape: [p.B.length / ad.lora.rank, ad.lora.rank], dtype: 'f32' as const, data: p.B });
  }
  return saveAdapter({
    name,
    baseModel: { id: modelId, shape: modelShapeSignature(cfg) },
    hyperparameters: {
      lora: { r: ad.lora.rank, lora_alpha: ad.lora.alpha, lora_dropout: ad.lora.dropout, targets: ad.lora.targets, use_rslora: !!ad.lora.rslora },
      imported: 'peft', notes: ad.notes,
    },
    metrics: {},
    tensors,
  });
}
