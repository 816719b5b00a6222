// Training checkpoints in IndexedDB (database `whittle-jobs`, next to the job they belong to):
//   ['ckpt-ptr', jobId]       CheckpointPointer (versioned): key of the current checkpoint, its step
//   ['ckpt', jobId, nonce]    CheckpointRecord (versioned): LoRA weights, AdamW moments, step,
//                             RNG state, data-order position, metrics so far
// saveCheckpoint is crash-atomic in three transactions:
//   1. write the new checkpoint under a fresh key (the pointer still names the old one);
//   2. flip the pointer to it, in one transaction that also checks the new record is there and
//      the job still exists;
//   3. delete every other ['ckpt', jobId, *] record (the previous one, and orphans of earlier crashes).
// A crash or exception between 1 and 2 leaves the previous checkpoint current (plus an orphan
// that the next save or gcCheckpoints removes); between 2 and 3 the new one is current and the
// old one an orphan. loadCheckpoint reads pointer and record in one transaction. Saves for one
// job must not run concurrently (the engine saves from one place); a concurrent save fails loudly.
import { type Versioned, type StoredTensor, type TensorInput, kind, stamp, decode, decodeRequired, tx, req, prefixRange, deletePrefix, StoreError, checkId, newId, normTensors } from './core.ts';
import type { JobMetric } from './jobs.ts';

/** Position in the training data order, enough to continue exactly where the run stopped. */
export interface DataPosition {
  epoch: number;
  /** Index of the next example (or batch) in the epoch's order. */
  index: number;
  /** Seed of the epoch's shuffle, if the order is derived from one. */
  orderSeed?: number;
  [key: string]: unknown;
}

/** What the engine hands to saveCheckpoint. Tensor data may be any typed array (copied). */
export interface CheckpointInput {
  /** Optimizer steps done. */
  step: number;
  /** LoRA A/B weights. */
  lora: TensorInput[];
  /** AdamW first and second moments: the same tensor names and shapes as `lora` (or empty). */
  adamM: TensorInput[];
  adamV: TensorInput[];
  /** RNG state words (dropout / sampling). */
  rng: number[];
  data: DataPosition;
  /** Metrics so far (or a summary of them). */
  metrics: JobMetric[];
  extra?: Record<string, unknown>;
}

export interface CheckpointRecord extends Versioned {
  jobId: string;
  savedAt: number;
  step: number;
  lora: StoredTensor[];
  adamM: StoredTensor[];
  adamV: StoredTensor[];
  rng: number[];
  data: DataPosition;
  metrics: JobMetric[];
  extra: Record<string, unknown>;
}

export interface CheckpointPointer extends Versioned {
  jobId: string;
  /** Key of the current CheckpointRecord. */
  key: IDBValidKey[];
  step: number;
  savedAt: number;
  /** Bytes of tensor data in it. */
  bytes: number;
}

export const CHECKPOINT = kind<CheckpointRecord>('checkpoint', 'whittle.checkpoint', 1);
export const CHECKPOINT_POINTER = kind<CheckpointPointer>('checkpoint pointer', 'whittle.checkpoint-ptr', 1);

/** Test seams: called between the steps of saveCheckpoint (a throw simulates a crash there). */
export interface SaveHooks {
  afterWrite?: () => void | Promise<void>;
  afterFlip?: () => void | Promise<void>;
}

const ptrKey = (jobId: string) => ['ckpt-ptr', jobId];
const where = (jobId: string) => `jobs/${jobId}/checkpoint`;

function sameLayout(what: string, a: StoredTensor[], b: StoredTensor[]): void {
  if (b.length === 0) return;
  const ok = a.length === b.length && a.every((t, i) => t.name === b[i].name && t.shape.join() === b[i].shape.join());
  if (!ok) throw new StoreError('invalid', `${what} must hold the same tensors (names, shapes, order) as lora`);
}

/** Save a checkpoint atomically (see the header). Returns the new pointer. */
export async function saveCheckpoint(jobId: string, input: CheckpointInput, hooks: SaveHooks = {}): Promise<CheckpointPointer> {
  checkId('job', jobId);
  if (!Number.isInteger(input.step) || input.step < 0) throw new StoreError('invalid', `checkpoint of job ${jobId}: step must be a non-negative integer (got ${input.step})`);
  const what = `checkpoint of job ${jobId} at step ${input.step}`;
  const lora = normTensors(`${what} (lora)`, input.lora);
  const adamM = normTensors(`${what} (adamM)`, input.adamM ?? []);
  const adamV = normTensors(`${what} (adamV)`, input.adamV ?? []);
  sameLayout(`${what}: adamM`, lora, adamM);
  sameLayout(`${what}: adamV`, lora, adamV);
  if (!Array.isArray(input.rng) || input.rng.some((x) => typeof x !== 'number')) throw new StoreError('invalid', `${what}: rng must be an array of numbers`);
  const savedAt = Date.now();
  const rec = stamp(CHECKPOINT, {
    jobId,
    savedAt,
    step: input.step,
    lora,
    adamM,
    adamV,
    rng: [...input.rng],
    data: { ...input.data },
    metrics: input.metrics ?? [],
    extra: input.extra ?? {},
  });
  const key: IDBValidKey[] = ['ckpt', jobId, newId('c')];
  const bytes = [...lora, ...adamM, ...adamV].reduce((a, t) => a + t.data.byteLength, 0);

  // 1. the new record under a fresh key
  await tx('jobs', 'readwrite', async (s) => {
    await req(s.put(rec, key));
  });
  await hooks.afterWrite?.();

  // 2. flip the pointer
  const ptr = stamp(CHECKPOINT_POINTER, { jobId, key, step: input.step, savedAt, bytes });
  await tx('jobs', 'readwrite', async (s) => {
    if ((await req(s.count(['job', jobId]))) === 0) {
      throw new StoreError('not-found', `${what}: job ${jobId} no longer exists (deleted while training?)`);
    }
    if ((await req(s.count(key))) === 0) {
      throw new StoreError('invalid', `${what}: the checkpoint record vanished before the pointer flip (a concurrent save for this job?)`);
    }
    await req(s.put(ptr, ptrKey(jobId)));
  }).catch(async (e) => {
    // The pointer was not flipped: drop the new record (best effort) and report.
    await tx('jobs', 'readwrite', (s) => req(s.delete(key))).catch(() => {});
    throw e;
  });
  await hooks.afterFlip?.();

  // 3. drop every record the pointer does not name
  await gcCheckpoints(jobId);
  return ptr;
}

/** Remove checkpoint records of `jobId` that its pointer does not name; returns how many. */
export async function gcCheckpoints(jobId: string): Promise<number> {
  return tx('jobs', 'readwrite', async (s) => {
    const ptr = decode(CHECKPOINT_POINTER, await req(s.get(ptrKey(jobId))), where(jobId));
    const keys = await req(s.getAllKeys(prefixRange(['ckpt', jobId])));
    const keep = ptr ? JSON.stringify(ptr.key) : null;
    let n = 0;
    for (const k of keys) {
      if (JSON.stringify(k) === keep) continue;
      await req(s.delete(k));
      n++;
    }
    return n;
  });
}

/** The current checkpoint's pointer (step, time, size) without loading it, or undefined. */
export async function checkpointInfo(jobId: string): Promise<CheckpointPointer | undefined> {
  return tx('jobs', 'readonly', async (s) => decode(CHECKPOINT_POINTER, await req(s.get(ptrKey(jobId))), where(jobId)));
}

/** The current checkpoint of a job, or undefined when it has none. */
export async function loadCheckpoint(jobId: string): Promise<CheckpointRecord | undefined> {
  return tx('jobs', 'readonly', async (s) => {
    const ptr = decode(CHECKPOINT_POINTER, await req(s.get(ptrKey(jobId))), where(jobId));
    if (!ptr) return undefined;
    const raw = await req(s.get(ptr.key));
    if (raw === undefined) {
      throw new StoreError('invalid', `the checkpoint pointer of job ${jobId} names a missing record (step ${ptr.step}); the store is damaged — delete the job's checkpoints`);
    }
    return decodeRequired(CHECKPOINT, raw, `${where(jobId)}@${ptr.step}`);
  });
}

/** Delete a job's pointer and every checkpoint record, in one transaction. */
export async function deleteCheckpoints(jobId: string): Promise<void> {
  await tx('jobs', 'readwrite', async (s) => {
    await req(s.delete(ptrKey(jobId)));
    await deletePrefix(s, ['ckpt', jobId]);
  });
}
