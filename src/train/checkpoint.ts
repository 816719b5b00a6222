// Training checkpoints as the trainer writes and reads them, and where they go: a CheckpointSink
// (save / load the latest checkpoint of a job). The shape is the store's CheckpointInput
// (src/store/checkpoints.ts), so `storeCheckpointSink()` (./sink-store.ts, IndexedDB) passes it
// through unchanged; Node uses MemoryCheckpointSink (tests) or FileCheckpointSink (./sink-node.ts).
// What a checkpoint holds (enough to continue bit-exactly, see README "Checkpoints"):
//   lora        A (R,IC) and B (OC,R) of every adapted (layer, target), named `<layer>.<target>.A|B`
//   adamM/adamV AdamW first / second moments, same names and shapes
//   step        optimizer steps done (the next step is step + 1: LR schedule and bias correction)
//   rng         [seed, microStep]: dropout masks are a pure function of (seed, micro-step, layer,
//               target) (src/model/lora.ts loraSeed), so these two words are the whole RNG state
//   data        {epoch, index, orderSeed}: the batch iterator's position (src/data BatchIterator)
//   metrics     every metric row so far (rows after `step` are dropped on resume)
//   extra       CheckpointExtra: format tag, micro-step, active time, dataset fingerprint, model
//               signature, the resolved hyperparameters, lrScale (the factor on the scheduled
//               learning rate: 0.5 once a NaN / Inf step was rolled back; version 2 on)
// No DOM, no node:*.
import type { CheckpointInput, DataPosition } from '../store/checkpoints.ts';
import type { TensorInput } from '../store/core.ts';
import type { JobMetric } from '../store/jobs.ts';
import type { LoraLayout } from '../model/lora.ts';
import type { Hyperparameters } from './hyperparams.ts';

export type { CheckpointInput, DataPosition, JobMetric, TensorInput };

export const CHECKPOINT_FORMAT = 'whittle.train-checkpoint';
/** 2: extra.lrScale (a version-1 checkpoint has none: 1). */
export const CHECKPOINT_VERSION = 2;

export interface CheckpointExtra extends Record<string, unknown> {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  /** micro-batches done (the dropout stream position) */
  microStep: number;
  /** active training time so far (pauses excluded), ms */
  elapsedMs: number;
  /** trained tokens so far */
  trainedTokens: number;
  /** datasetFingerprint of the (truncated) training examples */
  dataset: string;
  /** modelShapeSignature of the base */
  model: string;
  hyperparameters: Hyperparameters;
  /** factor on the scheduled learning rate (1; 0.5 after a NaN / Inf step was rolled back) */
  lrScale: number;
}

/** A checkpoint as saved / loaded (tensor data as ArrayBuffer or a typed array). */
export interface Checkpoint extends CheckpointInput {
  extra: CheckpointExtra;
}

/** Where checkpoints go. save replaces the job's previous checkpoint (atomically, where the sink can). */
export interface CheckpointSink {
  save(jobId: string, ckpt: Checkpoint): Promise<void>;
  /** the latest checkpoint of the job, or undefined */
  load(jobId: string): Promise<CheckpointInput | undefined>;
}

/** Name of a LoRA tensor in a checkpoint. */
export function ckptTensorName(key: string, which: 'A' | 'B'): string {
  return `${key}.${which}`;
}

/** The flat LoRA buffer (layout.floats) as named per-adapter tensors (copies). */
export function flatToTensors(flat: Float32Array, layout: LoraLayout): TensorInput[] {
  const R = layout.rank, out: TensorInput[] = [];
  for (const s of layout.slots) {
    out.push({ name: ckptTensorName(s.key, 'A'), shape: [R, s.in], dtype: 'f32', data: flat.slice(s.a, s.a + R * s.in) });
    out.push({ name: ckptTensorName(s.key, 'B'), shape: [s.out, R], dtype: 'f32', data: flat.slice(s.b, s.b + s.out * R) });
  }
  return out;
}

function f32Of(t: TensorInput): Float32Array {
  const d = t.data;
  if (d instanceof ArrayBuffer) return new Float32Array(d);
  return new Float32Array(d.buffer, d.byteOffset, d.byteLength / 4);
}

/** Named tensors back into a flat buffer of the layout; throws when a tensor is missing or misshapen. */
export function tensorsToFlat(ts: TensorInput[], layout: LoraLayout, what: string): Float32Array {
  const R = layout.rank, flat = new Float32Array(layout.floats);
  const byName = new Map(ts.map((t) => [t.name, t]));
  for (const s of layout.slots) {
    for (const [which, off, n, shape] of [['A', s.a, R * s.in, [R, s.in]], ['B', s.b, s.out * R, [s.out, R]]] as const) {
      const name = ckptTensorName(s.key, which);
      const t = byName.get(name);
      if (!t) throw new Error(`${what}: tensor ${name} is missing (the checkpoint was made with other LoRA targets or layers)`);
      if (t.dtype !== 'f32' || t.shape.join() !== shape.join()) {
        throw new Error(`${what}: tensor ${name} is ${t.dtype} [${t.shape}], expected f32 [${shape}] (another rank or model?)`);
      }
      const a = f32Of(t);
      if (a.length !== n) throw new Error(`${what}: tensor ${name} has ${a.length} values, expected ${n}`);
      flat.set(a, off);
    }
  }
  return flat;
}

/** Deep copy with every tensor's data as its own ArrayBuffer (what the store keeps). */
export function cloneCheckpoint<T extends CheckpointInput>(c: T): T {
  const tensors = (ts: TensorInput[]) => ts.map((t) => {
    const d = t.data;
    const data = d instanceof ArrayBuffer ? d.slice(0) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice().buffer;
    return { name: t.name, shape: [...t.shape], dtype: t.dtype, data };
  });
  return {
    ...structuredClone({ ...c, lora: [], adamM: [], adamV: [] }),
    lora: tensors(c.lora), adamM: tensors(c.adamM), adamV: tensors(c.adamV),
  } as T;
}

/** Keeps the latest checkpoint of each job in memory (tests, and runs that need no persistence). */
export class MemoryCheckpointSink implements CheckpointSink {
  private byJob = new Map<string, CheckpointInput>();
  /** every save, in order (tests) */
  saves: { jobId: string; step: number }[] = [];

  async save(jobId: string, ckpt: Checkpoint): Promise<void> {
    this.byJob.set(jobId, cloneCheckpoint(ckpt));
    this.saves.push({ jobId, step: ckpt.step });
  }

  async load(jobId: string): Promise<CheckpointInput | undefined> {
    const c = this.byJob.get(jobId);
    return c && cloneCheckpoint(c);
  }

  delete(jobId: string): void {
    this.byJob.delete(jobId);
  }
}
