// Trained LoRA adapters in IndexedDB (database `whittle-adapters`):
//   ['meta', id]      AdapterMeta (versioned): name, base model (id + shape signature), dataset,
//                     hyperparameters, metrics summary, tensor count and bytes
//   ['tensors', id]   AdapterTensors (versioned): the LoRA tensors as ArrayBuffers
// Listing reads only metadata. Save, duplicate and delete touch both records in one transaction.
// An adapter fits any base model with the same shape signature (modelShapeSignature), not only
// the exact model id it was trained on.
import type { LlamaConfig } from '../model/config.ts';
import { type Versioned, type ListOptions, decodeAll, whereOfId, type StoredTensor, type TensorInput, kind, stamp, decode, decodeRequired, tx, req, prefixRange, StoreError, checkId, newId, normTensors } from './core.ts';

export interface BaseModelRef {
  id: string;
  /** modelShapeSignature() of the base model's config. */
  shape: string;
  /** q/k row order of the stored LoRA tensors: 'pairs' = llama.cpp's permuted GGUF order. */
  ropeStyle?: 'half' | 'pairs';
}

export interface AdapterMeta extends Versioned {
  id: string;
  name: string;
  baseModel: BaseModelRef;
  datasetId: string | null;
  /** The job that trained it, when it came from one. */
  jobId: string | null;
  hyperparameters: Record<string, unknown>;
  /** Summary of the run (final loss, steps, tokens, ...). */
  metrics: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
  tensorCount: number;
  bytes: number;
}

export interface AdapterTensors extends Versioned {
  id: string;
  tensors: StoredTensor[];
}

export type Adapter = AdapterMeta & { tensors: StoredTensor[] };

export const ADAPTER_META = kind<AdapterMeta>('adapter', 'whittle.adapter', 1);
export const ADAPTER_TENSORS = kind<AdapterTensors>('adapter tensors', 'whittle.adapter-tensors', 1);

/** A stable string of the config fields that decide whether a LoRA adapter fits a model. */
export function modelShapeSignature(cfg: Pick<LlamaConfig, 'arch' | 'hidden' | 'layers' | 'heads' | 'kvHeads' | 'headDim' | 'ffn' | 'vocab'>): string {
  return `${cfg.arch}:C${cfg.hidden}:L${cfg.layers}:H${cfg.heads}:KV${cfg.kvHeads}:HS${cfg.headDim}:F${cfg.ffn}:V${cfg.vocab}`;
}

export interface SaveAdapterInit {
  id?: string;
  name: string;
  baseModel: BaseModelRef;
  datasetId?: string | null;
  jobId?: string | null;
  hyperparameters?: Record<string, unknown>;
  metrics?: Record<string, unknown>;
  tensors: TensorInput[];
}

const where = (id: string) => `adapters/${id}`;

function checkName(name: unknown): string {
  if (typeof name !== 'string' || !name.trim()) throw new StoreError('invalid', `an adapter name must be a non-empty string (got ${JSON.stringify(name)})`);
  return name.trim();
}

/** Store a new adapter (id generated when absent); throws 'exists' when the id is taken. */
export async function saveAdapter(init: SaveAdapterInit): Promise<AdapterMeta> {
  const id = init.id === undefined ? newId('ad') : checkId('adapter', init.id);
  if (!init.baseModel || typeof init.baseModel.id !== 'string' || typeof init.baseModel.shape !== 'string' || !init.baseModel.shape) {
    throw new StoreError('invalid', `adapter ${id}: baseModel needs an id and a shape signature`);
  }
  const tensors = normTensors(`adapter ${id}`, init.tensors);
  if (tensors.length === 0) throw new StoreError('invalid', `adapter ${id}: has no tensors`);
  const now = Date.now();
  const meta = stamp(ADAPTER_META, {
    id,
    name: checkName(init.name),
    baseModel: { id: init.baseModel.id, shape: init.baseModel.shape },
    datasetId: init.datasetId ?? null,
    jobId: init.jobId ?? null,
    hyperparameters: init.hyperparameters ?? {},
    metrics: init.metrics ?? {},
    createdAt: now,
    updatedAt: now,
    tensorCount: tensors.length,
    bytes: tensors.reduce((a, t) => a + t.data.byteLength, 0),
  });
  await tx('adapters', 'readwrite', async (s) => {
    if ((await req(s.count(['meta', id]))) > 0) throw new StoreError('exists', `adapter ${id} already exists`);
    await req(s.put(meta, ['meta', id]));
    await req(s.put(stamp(ADAPTER_TENSORS, { id, tensors }), ['tensors', id]));
  });
  return meta;
}

export async function getAdapterMeta(id: string): Promise<AdapterMeta | undefined> {
  return tx('adapters', 'readonly', async (s) => decode(ADAPTER_META, await req(s.get(['meta', id])), where(id)));
}

/** Metadata and tensors, or undefined. */
export async function getAdapter(id: string): Promise<Adapter | undefined> {
  return tx('adapters', 'readonly', async (s) => {
    const meta = decode(ADAPTER_META, await req(s.get(['meta', id])), where(id));
    if (!meta) return undefined;
    const t = decodeRequired(ADAPTER_TENSORS, await req(s.get(['tensors', id])), `${where(id)}/tensors`);
    return { ...meta, tensors: t.tensors };
  });
}

/** Every adapter's metadata, oldest first; `shape` keeps only those that fit a base model shape. */
export async function listAdapters(opts: ListOptions & { shape?: string } = {}): Promise<AdapterMeta[]> {
  const raws = await tx('adapters', 'readonly', (s) => req(s.getAll(prefixRange(['meta']))));
  return decodeAll(ADAPTER_META, raws, whereOfId('adapters'), opts.onUnreadable)
    .filter((m) => opts.shape === undefined || m.baseModel.shape === opts.shape)
    .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
}

export async function renameAdapter(id: string, name: string): Promise<AdapterMeta> {
  const n = checkName(name);
  return tx('adapters', 'readwrite', async (s) => {
    const cur = decodeRequired(ADAPTER_META, await req(s.get(['meta', id])), where(id));
    const next: AdapterMeta = { ...cur, name: n, updatedAt: Date.now() };
    await req(s.put(next, ['meta', id]));
    return next;
  });
}

/** Copy an adapter (metadata and tensors) under a new id, in one transaction. Default name: "<name> (copy)". */
export async function duplicateAdapter(id: string, opts: { newId?: string; name?: string } = {}): Promise<AdapterMeta> {
  const nid = opts.newId === undefined ? newId('ad') : checkId('adapter', opts.newId);
  return tx('adapters', 'readwrite', async (s) => {
    const cur = decodeRequired(ADAPTER_META, await req(s.get(['meta', id])), where(id));
    const t = decodeRequired(ADAPTER_TENSORS, await req(s.get(['tensors', id])), `${where(id)}/tensors`);
    if ((await req(s.count(['meta', nid]))) > 0) throw new StoreError('exists', `adapter ${nid} already exists`);
    const now = Date.now();
    const meta: AdapterMeta = { ...cur, id: nid, name: checkName(opts.name ?? `${cur.name} (copy)`), createdAt: now, updatedAt: now };
    await req(s.put(meta, ['meta', nid]));
    await req(s.put({ ...t, id: nid }, ['tensors', nid]));
    return meta;
  });
}

/** Delete metadata and tensors in one transaction; false when there was no such adapter. */
export async function deleteAdapter(id: string): Promise<boolean> {
  return tx('adapters', 'readwrite', async (s) => {
    const had = (await req(s.count(['meta', id]))) > 0;
    await req(s.delete(['meta', id]));
    await req(s.delete(['tensors', id]));
    return had;
  });
}
