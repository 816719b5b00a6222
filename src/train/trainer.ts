// The training loop of one run, without lifecycle: a LlamaModel laid out for (batchSize, seqLen),
// a resumable seeded batch iterator over the (truncated) training examples, optimizer steps with
// token-weighted gradient accumulation over micro-batches (./accumulate.ts), the LR schedule, a
// forward-only validation pass, checkpoint save / restore, and the finished adapter.
// Determinism: an optimizer step t uses the micro-batches the iterator yields from its state, and
// dropout masks of micro-step m (loraSeed(seed, m, layer, target)); with gradAccum = 1, m = t, as
// LlamaModel.trainStep does. Restoring a checkpoint restores LoRA params, AdamW moments, step,
// micro-step and iterator state, so the continued run is bit-identical to an uninterrupted one.
// Non-finite steps: the last micro-batch's step reads back the global gradient norm² with the loss
// (two small reads of one submission). A NaN / Inf loss or norm throws NonFiniteStepError; the
// AdamW kernel itself skips an update whose gradient norm is not finite, and the caller rolls the
// trainer back (rollback: a checkpoint or the initial state) and may lower the learning rate
// (lrScale, kept in checkpoints).
// It is not: the job state machine, pause / cancel, events (./job.ts).
// No DOM, no node:*.
import type { Gpu } from '../gpu/device.ts';
import type { LlamaConfig, LlamaWeights } from '../model/config.ts';
import { LlamaModel } from '../model/llama.ts';
import { initLora } from '../model/lora.ts';
import { global_norm_sq } from '../ops/adamw.ts';
import type { Batch as ModelBatch } from '../ref/model.ts';
import { BatchIterator, datasetFingerprint, evalBatches } from '../data/batch.ts';
import { IGNORE, type Batch as DataBatch, type DataState, type Dataset, type TokenizedExample } from '../data/types.ts';
import { modelShapeSignature } from '../store/adapters.ts';
import { accumulate, accumulateOp } from './accumulate.ts';
import { type Checkpoint, type CheckpointExtra, type CheckpointInput, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, flatToTensors, type JobMetric, tensorsToFlat } from './checkpoint.ts';
import { type Hyperparameters, learningRateAt, loraConfigOf } from './hyperparams.ts';
import { buildAdapter, type AdapterMeta, type TrainedAdapter } from './adapter.ts';

export interface TrainerInit {
  gpu: Gpu;
  config: LlamaConfig;
  weights: LlamaWeights;
  /** training examples (already split from validation) */
  train: Dataset | TokenizedExample[];
  valid?: Dataset | TokenizedExample[] | null;
  /** resolved hyperparameters (resolveHyperparameters) */
  hp: Hyperparameters;
  /** id written at padding positions (default 0) */
  padId?: number;
  /** lm_head rows per cross-entropy chunk (LlamaModel option; default: the model's) */
  xentChunk?: number;
  /** test hooks (fault injection) */
  hooks?: TrainerHooks;
}

/** Called while a step is recorded (tests: poison a parameter or a gradient to inject a NaN). */
export interface TrainerHooks {
  /** before step t's first forward is recorded */
  beforeStep?(t: number, trainer: Trainer): void;
  /** after step t's last backward (and accumulation), before the optimizer step is recorded */
  beforeOptimizer?(t: number, trainer: Trainer): void;
}

/**
 * A step whose loss or gradient norm was NaN / Inf. It was not applied to the weights or the AdamW
 * moments (the kernel skips a non-finite norm; a finite norm with a non-finite loss was applied,
 * which the rollback undoes), but the data iterator and micro-step moved on: roll back before
 * stepping again (Trainer.rollback).
 */
export class NonFiniteStepError extends Error {
  /** "the loss became NaN" / "the gradient norm became Infinity" */
  readonly what: string;
  constructor(readonly step: number, readonly loss: number, readonly gradNorm: number, readonly learningRate: number) {
    const what = !Number.isFinite(loss) ? `the loss became ${loss}` : `the gradient norm became ${gradNorm} (loss ${loss.toFixed(4)})`;
    super(`${what} at step ${step}`);
    this.name = 'NonFiniteStepError';
    this.what = what;
  }
}

export interface StepMetrics {
  /** optimizer steps done (this step's number, 1-based) */
  step: number;
  /** epoch progress: epochs done + fraction of the current one */
  epoch: number;
  /** token-weighted mean loss over the step's micro-batches */
  loss: number;
  tokenAccuracy: number;
  learningRate: number;
  /** micro-batches in this step (gradAccum, fewer at the end of the data) */
  microBatches: number;
  /** tokens with a loss, and real (non-padding) tokens, in this step */
  trainedTokens: number;
  realTokens: number;
  /** real tokens per second of this step */
  tokensPerSec: number;
  /** active time of the run so far and the estimate of what remains, ms */
  elapsedMs: number;
  etaMs: number;
  /** the step finished an epoch */
  epochEnd: boolean;
  /** iterator position after the step */
  data: DataState;
}

export interface EvalMetrics {
  loss: number;
  tokenAccuracy: number;
  trainedTokens: number;
  batches: number;
}

/** Cut examples to `T` tokens (dropping those left with nothing to train on); returns the kept ones. */
export function truncateExamples(examples: TokenizedExample[], T: number): TokenizedExample[] {
  const out: TokenizedExample[] = [];
  for (const e of examples) {
    if (e.ids.length <= T) { out.push(e); continue; }
    const trained = e.trained.slice(0, T);
    let trainedCount = 0;
    for (let t = 0; t < T; t++) trainedCount += trained[t];
    if (trainedCount > 0) out.push({ ...e, ids: e.ids.slice(0, T), trained, trainedCount });
  }
  return out;
}

/**
 * A data batch (b.B ≤ B rows, b.T ≤ T tokens) as the model's fixed (B,T) batch: right-padded rows
 * and whole padding rows get valid 0, target IGNORE and loss weight 0; real targets weight 1.
 */
export function toModelBatch(b: Omit<DataBatch, 'state' | 'next'>, B: number, T: number, padId = 0): ModelBatch {
  if (b.B > B || b.T > T) throw new Error(`a (${b.B},${b.T}) batch does not fit the model's (${B},${T}) layout`);
  const N = B * T;
  const ids = new Uint32Array(N).fill(padId), targets = new Uint32Array(N).fill(IGNORE);
  const valid = new Uint32Array(N), pos = new Uint32Array(N), lossWeights = new Float32Array(N);
  for (let r = 0; r < B; r++) {
    for (let t = 0; t < T; t++) {
      const n = r * T + t;
      pos[n] = t;
      if (r >= b.B || t >= b.T) continue;
      const m = r * b.T + t;
      ids[n] = b.ids[m];
      valid[n] = b.valid[m];
      targets[n] = b.targets[m];
      if (b.targets[m] !== IGNORE) lossWeights[n] = 1;
    }
  }
  return { B, T, ids, targets, valid, pos, lossWeights };
}

const examplesOf = (s: Dataset | TokenizedExample[]) => (Array.isArray(s) ? s : s.examples);

export class Trainer {
  readonly gpu: Gpu;
  readonly cfg: LlamaConfig;
  readonly hp: Hyperparameters;
  readonly model: LlamaModel;
  readonly train: TokenizedExample[];
  readonly valid: TokenizedExample[];
  /** datasetFingerprint of the truncated training examples */
  readonly fingerprint: string;
  /** examples dropped by truncation to seqLen (nothing left to train on) */
  readonly dropped: number;
  /** optimizer steps done */
  step = 0;
  /** micro-batches done */
  microStep = 0;
  /** active training time, ms (restored from checkpoints) */
  elapsedMs = 0;
  trainedTokens = 0;
  /** metric rows so far (one per step, with validation columns on eval steps) */
  history: JobMetric[] = [];
  /**
   * Factor on the scheduled learning rate (1; 0.5 after a NaN / Inf step was rolled back). Saved
   * in checkpoints and restored with them, so a resumed run keeps the lowered rate.
   */
  lrScale = 1;
  private it: BatchIterator;
  private acc: GPUBuffer | null = null;
  /** global gradient norm² of the last step (1 float; the same reduction AdamW clips with) */
  private normsq: GPUBuffer;
  private hooks: TrainerHooks;
  private padId: number;
  private recentStepMs: number[] = [];

  constructor(init: TrainerInit) {
    const hp = init.hp;
    this.gpu = init.gpu;
    this.cfg = init.config;
    this.hp = hp;
    this.padId = init.padId ?? 0;
    const all = examplesOf(init.train);
    this.train = truncateExamples(all, hp.seqLen);
    this.dropped = all.length - this.train.length;
    if (!this.train.length) throw new Error(`no training example has a trained token within the first ${hp.seqLen} tokens (seqLen): raise seqLen`);
    this.valid = init.valid ? truncateExamples(examplesOf(init.valid), hp.seqLen) : [];
    for (const e of [...this.train, ...this.valid]) {
      for (const id of e.ids) {
        if (id >= init.config.vocab) throw new Error(`line ${e.line}: token id ${id} is outside the model's vocabulary (${init.config.vocab}); was the dataset tokenized with this model's tokenizer?`);
      }
    }
    this.fingerprint = datasetFingerprint(this.train);
    this.it = this.iterator({ epoch: 0, index: 0 });
    this.model = new LlamaModel(init.gpu, init.config, init.weights, {
      quant: hp.quant, lora: loraConfigOf(hp), batch: hp.batchSize, seq: hp.seqLen, checkpointing: hp.checkpointing, seed: hp.seed,
      ...(init.xentChunk ? { xentChunk: init.xentChunk } : {}),
    });
    if (hp.gradAccum > 1) this.acc = init.gpu.f32(this.model.layout.floats, 'lora.accum');
    this.normsq = init.gpu.f32(1, 'train.normsq');
    this.hooks = init.hooks ?? {};
  }

  private iterator(state: DataState): BatchIterator {
    return new BatchIterator(this.train, { batchSize: this.hp.batchSize, seed: this.hp.seed, shuffle: true, maxEpochs: this.hp.epochs }, state);
  }

  /** Micro-batches per epoch. */
  get batchesPerEpoch(): number {
    return this.it.batchesPerEpoch;
  }

  /** Where the data iterator stands. */
  get dataState(): DataState {
    return this.it.state;
  }

  /** Whether another step can run (maxSteps not reached, data left). */
  get finished(): boolean {
    return this.step >= this.hp.maxSteps || this.it.state.epoch >= this.hp.epochs;
  }

  /**
   * One optimizer step over up to gradAccum micro-batches; null when the run is finished. Throws
   * NonFiniteStepError when the loss or the gradient norm is NaN / Inf (then roll back).
   */
  async trainStep(): Promise<StepMetrics | null> {
    if (this.finished) return null;
    const hp = this.hp, g = this.gpu, model = this.model;
    const t0 = performance.now();
    const epochBefore = this.it.state.epoch;
    const micro: DataBatch[] = [];
    while (micro.length < hp.gradAccum) {
      const b = this.it.next();
      if (!b) break;
      micro.push(b);
    }
    if (!micro.length) return null;
    const t = this.step + 1;
    const lr = learningRateAt(t, hp) * this.lrScale;
    const total = micro.reduce((a, b) => a + b.trainedTokens, 0);
    const m = micro.length;
    let loss = 0, hits = 0, realTokens = 0, normsq = 0;
    for (let k = 0; k < m; k++) {
      const b = micro[k];
      const f = total > 0 ? b.trainedTokens / total : 0;
      realTokens += b.realTokens;
      const r = await g.scoped(`train step ${t}${m > 1 ? ` micro-batch ${k + 1}/${m}` : ''}`, () => {
        model.step = this.microStep + 1;
        if (k === 0) this.hooks.beforeStep?.(t, this);
        model.setBatch(toModelBatch(b, hp.batchSize, hp.seqLen, this.padId));
        model.forward(true);
        model.backward();
        if (m > 1) {
          const { grads } = model.flatBuffers();
          accumulate(g, accumulateOp(k, m), this.acc!, grads, model.layout.floats, f);
        }
        if (k === m - 1) {
          this.hooks.beforeOptimizer?.(t, this);
          // the norm AdamW clips with (same kernel, same grads: the same bits), read back with the loss
          global_norm_sq(g, this.normsq, model.flatBuffers().grads, model.layout.floats);
          model.optimizerStep({ t, lr, beta1: hp.adamBeta1, beta2: hp.adamBeta2, eps: hp.adamEps, weightDecay: hp.weightDecay, maxNorm: hp.maxGradNorm });
          const ns = g.readF32(this.normsq, 1, { relaxed: true }); // both reads relaxed: either one polling takes a core
          return Promise.all([model.readLoss(), ns]).then(([r, x]) => ({ ...r, normsq: x[0] }));
        }
        return model.readLoss().then((r) => ({ ...r, normsq: 0 }));
      });
      this.microStep++;
      if (k === m - 1) normsq = r.normsq;
      loss += f * r.loss;
      hits += r.tokenAccuracy * b.trainedTokens;
    }
    if (!Number.isFinite(loss) || !Number.isFinite(normsq)) throw new NonFiniteStepError(t, loss, Math.sqrt(normsq), lr);
    this.step = t;
    this.trainedTokens += total;
    const ms = performance.now() - t0;
    this.elapsedMs += ms;
    this.recentStepMs.push(ms);
    if (this.recentStepMs.length > 20) this.recentStepMs.shift();
    const avg = this.recentStepMs.reduce((a, x) => a + x, 0) / this.recentStepMs.length;
    const state = this.it.state;
    return {
      step: t,
      epoch: Math.min(hp.epochs, state.epoch + state.index / this.train.length),
      loss,
      tokenAccuracy: total > 0 ? hits / total : 0,
      learningRate: lr,
      microBatches: m,
      trainedTokens: total,
      realTokens,
      tokensPerSec: realTokens / Math.max(1e-6, ms / 1000),
      elapsedMs: this.elapsedMs,
      etaMs: avg * Math.max(0, this.totalSteps - t),
      epochEnd: state.epoch > epochBefore,
      data: state,
    };
  }

  /** Steps of the whole run (maxSteps, or fewer when the data runs out first). */
  get totalSteps(): number {
    return Math.min(this.hp.maxSteps, Math.ceil((this.it.batchesPerEpoch * this.hp.epochs) / this.hp.gradAccum));
  }

  /** Forward-only pass (no dropout) over the validation examples; null when there are none. */
  async evaluate(): Promise<EvalMetrics | null> {
    if (!this.valid.length) return null;
    const hp = this.hp;
    const t0 = performance.now();
    let loss = 0, hits = 0, tokens = 0, batches = 0;
    for (const b of evalBatches(this.valid, { batchSize: hp.batchSize, padId: this.padId })) {
      if (!b.trainedTokens) continue;
      const r = await this.gpu.scoped('validation', () => {
        this.model.setBatch(toModelBatch(b, hp.batchSize, hp.seqLen, this.padId));
        this.model.forward(false);
        return this.model.readLoss();
      });
      loss += r.loss * b.trainedTokens;
      hits += r.tokenAccuracy * b.trainedTokens;
      tokens += b.trainedTokens;
      batches++;
    }
    this.elapsedMs += performance.now() - t0;
    return { loss: tokens ? loss / tokens : 0, tokenAccuracy: tokens ? hits / tokens : 0, trainedTokens: tokens, batches };
  }

  /** Everything needed to continue this run exactly (see ./checkpoint.ts). */
  async checkpoint(): Promise<Checkpoint> {
    const { params, m, v } = this.model.flatBuffers();
    const layout = this.model.layout;
    const [p, mm, vv] = [await this.gpu.readF32(params), await this.gpu.readF32(m), await this.gpu.readF32(v)];
    const state = this.it.state;
    const extra: CheckpointExtra = {
      format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, microStep: this.microStep, elapsedMs: this.elapsedMs,
      trainedTokens: this.trainedTokens, dataset: this.fingerprint, model: modelShapeSignature(this.cfg), hyperparameters: structuredClone(this.hp),
      lrScale: this.lrScale,
    };
    return {
      step: this.step,
      lora: flatToTensors(p, layout),
      adamM: flatToTensors(mm, layout),
      adamV: flatToTensors(vv, layout),
      rng: [this.hp.seed, this.microStep],
      data: { epoch: state.epoch, index: state.index, orderSeed: this.hp.seed },
      metrics: this.history.map((r) => ({ ...r })),
      extra,
    };
  }

  /**
   * Continue from a checkpoint of the same run: same dataset, base model shape and the settings
   * that shape the run (LoRA, batch, sequence, accumulation, seed, schedule). Returns warnings for
   * settings that changed but may (maxSteps, epochs, eval / checkpoint intervals).
   */
  restore(c: CheckpointInput): string[] {
    const x = c.extra as Partial<CheckpointExtra> | undefined;
    const what = `checkpoint at step ${c.step}`;
    if (!x || x.format !== CHECKPOINT_FORMAT) throw new Error(`${what}: not a whittle training checkpoint (extra.format is ${JSON.stringify(x?.format)})`);
    if ((x.version ?? 0) > CHECKPOINT_VERSION) throw new Error(`${what}: made by a newer whittle (version ${x.version}); update to resume it`);
    if (x.model !== modelShapeSignature(this.cfg)) throw new Error(`${what}: made for base model ${x.model}, this one is ${modelShapeSignature(this.cfg)}`);
    if (x.dataset !== this.fingerprint) throw new Error(`${what}: made on another dataset (fingerprint ${x.dataset}, now ${this.fingerprint}); resuming would not continue the same run`);
    const hp = x.hyperparameters!;
    const fixed: (keyof Hyperparameters)[] = ['batchSize', 'gradAccum', 'seqLen', 'rank', 'alpha', 'dropout', 'targets', 'quant', 'seed',
      'learningRate', 'schedule', 'warmupSteps', 'weightDecay', 'maxGradNorm', 'adamBeta1', 'adamBeta2', 'adamEps', 'validationFraction'];
    for (const k of fixed) {
      if (JSON.stringify(hp[k]) !== JSON.stringify(this.hp[k])) {
        throw new Error(`${what}: ${k} was ${JSON.stringify(hp[k])}, now ${JSON.stringify(this.hp[k])}; resume with the checkpoint's settings (or start a new job)`);
      }
    }
    const warnings: string[] = [];
    for (const k of ['maxSteps', 'epochs', 'evalInterval', 'checkpointInterval', 'checkpointing'] as const) {
      if (hp[k] !== this.hp[k]) warnings.push(`${k} changed from ${hp[k]} to ${this.hp[k]} since the checkpoint${k === 'maxSteps' ? ' (the LR schedule changes with it)' : ''}`);
    }
    const layout = this.model.layout;
    const { params, m, v } = this.model.flatBuffers();
    this.gpu.write(params, tensorsToFlat(c.lora, layout, `${what} (lora)`));
    this.gpu.write(m, tensorsToFlat(c.adamM, layout, `${what} (adamM)`));
    this.gpu.write(v, tensorsToFlat(c.adamV, layout, `${what} (adamV)`));
    const lrScale = x.lrScale ?? 1;
    if (typeof lrScale !== 'number' || !(lrScale > 0 && lrScale <= 1)) throw new Error(`${what}: extra.lrScale is ${JSON.stringify(lrScale)}, expected a number in (0, 1]`);
    this.lrScale = lrScale;
    this.step = c.step;
    this.microStep = x.microStep ?? c.step;
    this.elapsedMs = x.elapsedMs ?? 0;
    this.trainedTokens = x.trainedTokens ?? 0;
    this.it = this.iterator({ epoch: c.data.epoch, index: c.data.index });
    this.history = c.metrics.filter((r) => r.step <= c.step).map((r) => ({ ...r }));
    return warnings;
  }

  /**
   * Undo everything since a checkpoint of this run (restore, see there), or since the start when
   * there is none: the initial LoRA (initLora of the seed, as LlamaModel starts), zero AdamW moments,
   * step 0, the data from the start, no history. Active time (elapsedMs) keeps counting; lrScale is
   * the checkpoint's (1 for the initial state): the caller sets the lowered rate afterwards.
   */
  rollback(c?: CheckpointInput | null): void {
    const elapsed = this.elapsedMs;
    if (c) {
      this.restore(c);
    } else {
      const layout = this.model.layout;
      const flat = new Float32Array(layout.floats);
      const init = initLora(this.cfg, loraConfigOf(this.hp), this.hp.seed);
      for (const s of layout.slots) {
        const p = init.get(s.key)!;
        flat.set(p.A, s.a);
        flat.set(p.B, s.b);
      }
      const { params, m, v } = this.model.flatBuffers();
      this.gpu.write(params, flat);
      const zeros = new Float32Array(layout.floats);
      this.gpu.write(m, zeros);
      this.gpu.write(v, zeros);
      this.step = 0;
      this.microStep = 0;
      this.trainedTokens = 0;
      this.lrScale = 1;
      this.it = this.iterator({ epoch: 0, index: 0 });
      this.history = [];
    }
    this.elapsedMs = elapsed;
    this.recentStepMs = [];
  }

  /** The adapter as it stands (LoRA tensors + config + base signature + hyperparameters + metrics). */
  async adapter(meta: AdapterMeta): Promise<TrainedAdapter> {
    return buildAdapter(this.cfg, this.hp, await this.model.getLora(), this.history, meta, {
      steps: this.step, trainedTokens: this.trainedTokens, elapsedMs: this.elapsedMs,
    });
  }

  /** Free the model and the accumulation buffer. */
  destroy(): void {
    this.model.destroy();
    if (this.acc) this.gpu.destroy(this.acc);
    this.acc = null;
    this.gpu.destroy(this.normsq);
  }
}
