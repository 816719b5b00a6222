// Training jobs and the queue that runs them one at a time on the GPU.
// Lifecycle (the store's JobStatus and JOB_TRANSITIONS, src/store/jobs.ts):
//   validating_files → queued → running → succeeded | failed | cancelled,   running ⇄ paused
// - validating_files: spec.prepare() loads / validates model and data (CPU work, may overlap the
//   running job), then resolveHyperparameters fits the settings to the device (or refuses);
// - queued: waits for the GPU (JobQueue runs one job at a time, first queued first);
// - running: builds the Trainer, resumes from the sink's checkpoint when there is one, then steps;
//   pause and cancel are honoured between optimizer steps (a paused job keeps the GPU and its
//   model; pausing a queued job holds it out of the queue until resumed);
// - checkpoints every checkpointInterval steps and at each epoch end, through the CheckpointSink,
//   and when a running job pauses (so a reload while paused loses no step);
// - a step whose loss or gradient norm is NaN / Inf is rejected (never applied): the job rolls back
//   to the sink's latest checkpoint (or the initial state when there is none), halves the learning
//   rate (a 'warning' event; the lowered rate is saved at once in a checkpoint, so a resume keeps
//   it) and goes on; a second one fails the job ("… again after lowering the learning rate to X …");
// - a job that ends (succeeded, failed, cancelled) lets go of its inputs — model weights, datasets,
//   the GPU model — so finished jobs kept in the queue cost no memory; JobQueue.forget drops one;
// - succeeded: the TrainedAdapter is on job.adapter (and job.done's result).
// Every change is reported through JobListener as the store's JobEvent / JobMetric rows (human-
// readable events; one metric row per step: loss, accuracy, lr, tokens/s, elapsed, ETA, and the
// validation loss / accuracy on eval steps), so the worker can append them to IndexedDB as they come.
// No DOM, no node:*.
import type { Gpu } from '../gpu/device.ts';
import type { LlamaConfig, LlamaWeights } from '../model/config.ts';
import { splitDataset } from '../data/batch.ts';
import type { Dataset } from '../data/types.ts';
import { JOB_TRANSITIONS, type JobEvent, type JobMetric, type JobStatus } from '../store/jobs.ts';
import type { TrainedAdapter } from './adapter.ts';
import type { CheckpointSink } from './checkpoint.ts';
import { type HyperparameterInput, type Hyperparameters, resolveHyperparameters } from './hyperparams.ts';
import { mib, type MemoryPlan } from './memory.ts';
import { NonFiniteStepError, type StepMetrics, Trainer, type TrainerHooks } from './trainer.ts';

export type { JobEvent, JobMetric, JobStatus };

/** What a job trains on, produced by spec.prepare() while 'validating_files'. */
export interface JobInputs {
  gpu: Gpu;
  /** the base model's store id (or path) and display name */
  modelId: string;
  config: LlamaConfig;
  weights: LlamaWeights;
  /** the whole training dataset (the validation split, if any, is taken from it here) */
  dataset: Dataset;
  /** a separate validation set (then no split is taken) */
  validation?: Dataset | null;
  datasetId?: string | null;
  /** padding token id (default 0) */
  padId?: number;
  /** memory budget in bytes (default: src/train/memory.ts DEFAULT_LIMITS.budgetBytes) */
  budgetBytes?: number;
  /** LlamaModel xentChunk override (tests) */
  xentChunk?: number;
  /** pick linear kernel variants for this adapter before training (LlamaModel.tune; cached per adapter) */
  autotune?: boolean;
  /** Trainer hooks (tests: inject a NaN at a given step) */
  hooks?: TrainerHooks;
}

export interface JobListener {
  status?(status: JobStatus, job: TrainingJob): void;
  event?(e: JobEvent, job: TrainingJob): void;
  metric?(m: JobMetric, job: TrainingJob): void;
}

export interface JobSpec {
  id: string;
  name?: string;
  hyperparameters?: HyperparameterInput;
  /** load and validate the inputs (runs in 'validating_files'); throw an Error with a clear message to fail */
  prepare(): Promise<JobInputs>;
  /** where checkpoints go (none: no checkpoints) */
  sink?: CheckpointSink | null;
  /** continue from the sink's latest checkpoint of this job id when there is one (default true) */
  resume?: boolean;
  listener?: JobListener;
  /** name of the finished adapter (default: the job name) */
  adapterName?: string;
}

export interface JobResult {
  status: 'succeeded' | 'failed' | 'cancelled';
  adapter: TrainedAdapter | null;
  error: string | null;
}

/** A learning rate to 3 significant digits: 5e-4, 1.5e-4. */
const fmtLr = (x: number) => Number(x.toPrecision(3)).toExponential();

const fmtMs = (ms: number) => {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
};

export class JobCancelled extends Error {}

export class TrainingJob {
  readonly id: string;
  readonly name: string;
  readonly spec: JobSpec;
  status: JobStatus = 'validating_files';
  readonly events: JobEvent[] = [];
  readonly metrics: JobMetric[] = [];
  hyperparameters: Hyperparameters | null = null;
  explanations: string[] = [];
  plan: MemoryPlan | null = null;
  adapter: TrainedAdapter | null = null;
  error: string | null = null;
  /** resolves when the job reaches a final state */
  readonly done: Promise<JobResult>;
  private settle!: (r: JobResult) => void;
  private inputs: JobInputs | null = null;
  private train: Dataset | null = null;
  private valid: Dataset | null = null;
  private wantPause = false;
  private wantCancel = false;
  private wake: (() => void) | null = null;
  private listeners: JobListener[] = [];

  constructor(spec: JobSpec) {
    this.id = spec.id;
    this.name = spec.name ?? spec.id;
    this.spec = spec;
    if (spec.listener) this.listeners.push(spec.listener);
    this.done = new Promise((r) => (this.settle = r));
  }

  /** Add a listener (status, events, metrics). */
  on(l: JobListener): void {
    this.listeners.push(l);
  }

  /** Pause between steps (running), or hold out of the queue (queued). */
  pause(): void {
    if (this.final) return;
    this.wantPause = true;
    if (this.status === 'queued') this.setStatus('paused', 'paused while queued');
  }

  /** Resume a paused job (a paused queued job goes back to the queue). */
  resume(): void {
    if (!this.wantPause && this.status !== 'paused') return;
    this.wantPause = false;
    if (this.status === 'paused' && !this.started) {
      this.setStatus('queued', 'resumed: back in the queue');
      this.onRequeue?.();
    }
    this.wake?.();
  }

  /** Cancel: at once when not running, else between steps. */
  cancel(): void {
    if (this.final) return;
    this.wantCancel = true;
    if (this.status === 'queued' || (this.status === 'paused' && !this.started)) this.finish('cancelled', 'cancelled before it started');
    this.wake?.();
  }

  get final(): boolean {
    return this.status === 'succeeded' || this.status === 'failed' || this.status === 'cancelled';
  }

  /** @internal set by JobQueue: called when a paused queued job is resumed */
  onRequeue: (() => void) | null = null;
  private started = false;

  private emit(type: string, message: string, data?: unknown): void {
    const e: JobEvent = { time: Date.now(), type, message, ...(data === undefined ? {} : { data }) };
    this.events.push(e);
    for (const l of this.listeners) this.safely(() => l.event?.(e, this));
  }

  /** A throwing listener (UI, logging) must not break training: its error is recorded, not raised. */
  private safely(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.events.push({ time: Date.now(), type: 'warning', message: `a job listener threw: ${(err as Error)?.message ?? String(err)}` });
    }
  }

  private setStatus(s: JobStatus, message?: string): void {
    if (s === this.status) return;
    if (!JOB_TRANSITIONS[this.status].includes(s)) throw new Error(`job ${this.id}: cannot go from ${this.status} to ${s}`);
    const from = this.status;
    this.status = s;
    this.emit('status', message ?? s, { from, to: s });
    for (const l of this.listeners) this.safely(() => l.status?.(s, this));
  }

  private finish(s: 'succeeded' | 'failed' | 'cancelled', message: string): void {
    // let go of what the job trained on (weights, datasets; the GPU model is destroyed by run())
    this.inputs = null;
    this.train = null;
    this.valid = null;
    this.setStatus(s, message);
    this.settle({ status: s, adapter: this.adapter, error: this.error });
  }

  /** Whether the job still holds its inputs (model weights, datasets): false once it has ended. */
  get holdsInputs(): boolean {
    return this.inputs !== null || this.train !== null || this.valid !== null;
  }

  /** @internal validating_files → queued (true) or failed / cancelled (false). */
  async validate(): Promise<boolean> {
    try {
      this.emit('info', `validating the model and the dataset`);
      const inputs = await this.spec.prepare();
      if (this.wantCancel) { this.finish('cancelled', 'cancelled while validating'); return false; }
      this.inputs = inputs;
      const ds = inputs.dataset;
      const lim = inputs.gpu.info.limits;
      const r = resolveHyperparameters(this.spec.hyperparameters ?? {}, {
        datasetSize: ds.examples.length,
        tokensPerExample: ds.stats.tokens,
        model: inputs.config,
        validationSize: inputs.validation?.examples.length,
        adapterLimits: {
          maxBufferSize: lim.maxBufferSize, maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
          minStorageBufferOffsetAlignment: lim.minStorageBufferOffsetAlignment, budgetBytes: inputs.budgetBytes,
        },
      });
      this.hyperparameters = r.resolved;
      this.explanations = r.explanations;
      this.plan = r.plan;
      const hp = r.resolved;
      if (inputs.validation) {
        this.train = ds;
        this.valid = inputs.validation;
      } else if (hp.validationFraction > 0) {
        const s = splitDataset(ds, { fraction: hp.validationFraction, seed: hp.seed });
        this.train = s.train;
        this.valid = s.valid;
      } else {
        this.train = ds;
        this.valid = null;
      }
      this.emit('info', `dataset: ${this.train.examples.length} training examples${this.valid ? `, ${this.valid.examples.length} for validation` : ''}`);
      for (const line of r.explanations) this.emit('hyperparameter', line);
      const b = r.plan.bytes;
      this.emit('memory', `GPU memory plan: ${mib(r.plan.total)} (base ${mib(b.baseWeights)}, LoRA + AdamW ${mib(b.loraAndOptimizer + b.accumulation)}, ` +
        `activations ${mib(b.activations)}, scratch ${mib(b.scratch)}); ${r.plan.trainableParams.toLocaleString('en-US')} trainable parameters`, r.plan.bytes);
      if (this.wantCancel) { this.finish('cancelled', 'cancelled while validating'); return false; }
      this.setStatus('queued', 'validated: waiting for the GPU');
      if (this.wantPause) this.setStatus('paused', 'paused while queued');
      return true;
    } catch (e) {
      this.error = (e as Error)?.message ?? String(e);
      this.finish('failed', `failed: ${this.error}`);
      return false;
    }
  }

  /** @internal queued → running → final. */
  async run(): Promise<void> {
    const inputs = this.inputs!, hp = this.hyperparameters!, sink = this.spec.sink ?? null;
    let trainer: Trainer | null = null;
    this.started = true;
    try {
      this.setStatus('running', 'running');
      trainer = new Trainer({
        gpu: inputs.gpu, config: inputs.config, weights: inputs.weights, train: this.train!, valid: this.valid, hp,
        padId: inputs.padId, xentChunk: inputs.xentChunk, hooks: inputs.hooks,
      });
      if (inputs.autotune) {
        await trainer.model.tune();
        this.emit('info', 'matmul kernel variants tuned for this adapter');
      }
      if (trainer.dropped) this.emit('warning', `${trainer.dropped} example(s) have no trained token within ${hp.seqLen} tokens and are skipped`);
      if (sink && this.spec.resume !== false) {
        const c = await sink.load(this.id);
        if (c) {
          for (const w of trainer.restore(c)) this.emit('warning', w);
          this.metrics.length = 0;
          this.metrics.push(...trainer.history);
          this.emit('checkpoint', `resumed from the checkpoint at step ${c.step} (epoch ${c.data.epoch + 1}, example ${c.data.index})`, { step: c.step });
          if (trainer.lrScale < 1) {
            this.emit('warning', `the learning rate stays lowered to ${fmtLr(hp.learningRate * trainer.lrScale)} (peak) after an earlier NaN / Inf step; another one fails the job`,
              { lrScale: trainer.lrScale });
          }
        }
      }
      let savedStep = trainer.step; // the step of the sink's latest checkpoint (0: none needed yet)
      const total = trainer.totalSteps;
      this.emit('info', `training ${total} steps: ${hp.epochs} epoch(s) of ${trainer.batchesPerEpoch} micro-batches of ${hp.batchSize} × ${hp.seqLen} tokens, ` +
        `${hp.gradAccum} micro-batch(es) per step`);
      for (;;) {
        if (this.wantCancel) throw new JobCancelled();
        if (this.wantPause) {
          if (sink && trainer.step > savedStep) {
            // checkpoint first: a reload (or a crash) while paused resumes from here, losing no step
            try {
              const c = await trainer.checkpoint();
              await sink.save(this.id, c);
              savedStep = c.step;
              this.emit('checkpoint', `checkpoint saved at step ${c.step} (pausing)`, { step: c.step, data: c.data });
            } catch (err) {
              this.emit('warning', `could not save a checkpoint before pausing: ${(err as Error)?.message ?? String(err)}; a reload would resume from step ${savedStep}`);
            }
          }
          this.setStatus('paused', `paused at step ${trainer.step}`);
          await new Promise<void>((r) => (this.wake = r));
          this.wake = null;
          if (this.wantCancel) throw new JobCancelled();
          this.setStatus('running', `resumed at step ${trainer.step}`);
        }
        let m: StepMetrics | null;
        try {
          m = await trainer.trainStep();
        } catch (err) {
          if (!(err instanceof NonFiniteStepError)) throw err;
          await this.recover(trainer, err, sink);
          savedStep = trainer.step;
          continue;
        }
        if (!m) break;
        const row = this.row(m);
        const last = trainer.finished;
        if (hp.evalInterval > 0 && (m.step % hp.evalInterval === 0 || last)) {
          const ev = await trainer.evaluate();
          if (ev) {
            row.validLoss = ev.loss;
            row.validAccuracy = ev.tokenAccuracy;
            this.emit('eval', `validation at step ${m.step}: loss ${ev.loss.toFixed(4)}, token accuracy ${(100 * ev.tokenAccuracy).toFixed(1)}%`, { step: m.step, ...ev });
          }
        }
        trainer.history.push(row);
        this.metrics.push(row);
        for (const l of this.listeners) this.safely(() => l.metric?.(row, this));
        if (m.epochEnd) this.emit('info', `epoch ${m.data.epoch} of ${hp.epochs} done at step ${m.step}`);
        const due = (hp.checkpointInterval > 0 && m.step % hp.checkpointInterval === 0) || m.epochEnd;
        if (sink && due && !last) {
          await sink.save(this.id, await trainer.checkpoint());
          savedStep = m.step;
          this.emit('checkpoint', `checkpoint saved at step ${m.step}${m.epochEnd ? ' (epoch end)' : ''}`, { step: m.step, data: m.data });
        }
      }
      this.adapter = await trainer.adapter({ name: this.spec.adapterName ?? this.name, modelId: inputs.modelId, datasetId: inputs.datasetId ?? null, jobId: this.id });
      const fm = this.adapter.metrics;
      this.emit('info', `finished ${trainer.step} steps in ${fmtMs(trainer.elapsedMs)}: final loss ${fm.finalLoss?.toFixed(4)}` +
        (fm.validLoss !== null ? `, validation loss ${fm.validLoss.toFixed(4)}` : ''));
      trainer.destroy();
      trainer = null;
      this.finish('succeeded', 'succeeded');
    } catch (e) {
      trainer?.destroy();
      if (e instanceof JobCancelled) {
        this.finish('cancelled', `cancelled at step ${this.metrics.at(-1)?.step ?? 0}`);
      } else {
        this.error = (e as Error)?.message ?? String(e);
        this.finish('failed', `failed: ${this.error}`);
      }
    }
  }

  /**
   * A NaN / Inf step: the first time, roll back to the sink's latest checkpoint (or the initial
   * state), halve the learning rate, save that at once (so a resume keeps the lowered rate) and go
   * on; when the rate was lowered already, fail with the reason.
   */
  private async recover(trainer: Trainer, e: NonFiniteStepError, sink: CheckpointSink | null): Promise<void> {
    const hp = trainer.hp;
    if (trainer.lrScale < 1) {
      throw new Error(`${e.what} at step ${e.step} again after lowering the learning rate to ${fmtLr(hp.learningRate * trainer.lrScale)}; ` +
        'try a lower learning rate or check the data');
    }
    const c = sink ? await sink.load(this.id) : undefined;
    trainer.rollback(c);
    const from = hp.learningRate * trainer.lrScale;
    trainer.lrScale *= 0.5;
    const to = hp.learningRate * trainer.lrScale;
    this.metrics.length = 0;
    this.metrics.push(...trainer.history);
    this.emit('warning', `${e.what} at step ${e.step}: the step was rejected; rolled back to ${c ? `the checkpoint at step ${c.step}` : 'the initial state (no checkpoint yet)'} ` +
      `and lowered the learning rate from ${fmtLr(from)} to ${fmtLr(to)}`,
      { step: trainer.step, failedStep: e.step, loss: e.loss, gradNorm: e.gradNorm, learningRate: { from, to }, lrScale: trainer.lrScale });
    if (sink) {
      const ck = await trainer.checkpoint();
      await sink.save(this.id, ck);
      this.emit('checkpoint', `checkpoint saved at step ${ck.step} (learning rate lowered to ${fmtLr(to)})`, { step: ck.step, data: ck.data });
    }
  }

  private row(m: StepMetrics): JobMetric {
    return {
      step: m.step, time: Date.now(), epoch: m.epoch, loss: m.loss, accuracy: m.tokenAccuracy, lr: m.learningRate,
      tokensPerSec: m.tokensPerSec, trainedTokens: m.trainedTokens, elapsedMs: m.elapsedMs, etaMs: m.etaMs,
    };
  }
}

/** Runs submitted jobs one at a time (validation of later jobs overlaps the running one). */
export class JobQueue {
  private all: TrainingJob[] = [];
  private current: TrainingJob | null = null;
  private idleWaiters: (() => void)[] = [];
  private validating = 0;

  /** Create a job from `spec`, validate it, then queue it. */
  submit(spec: JobSpec): TrainingJob {
    if (this.all.some((j) => j.id === spec.id && !j.final)) throw new Error(`job ${spec.id} is already in the queue`);
    const job = new TrainingJob(spec);
    job.onRequeue = () => this.pump();
    this.all.push(job);
    this.validating++;
    void job.validate().then(() => {
      this.validating--;
      this.pump();
    });
    return job;
  }

  get jobs(): readonly TrainingJob[] {
    return this.all;
  }

  /** Drop a finished job from the queue's list (its record lives elsewhere); false when unknown or not final. */
  forget(id: string): boolean {
    const i = this.all.findIndex((j) => j.id === id && j.final);
    if (i < 0) return false;
    this.all.splice(i, 1);
    return true;
  }

  get running(): TrainingJob | null {
    return this.current;
  }

  /** Jobs waiting for the GPU, in order. */
  get queued(): TrainingJob[] {
    return this.all.filter((j) => j.status === 'queued');
  }

  /** Resolves when no job is validating, queued or running (paused queued jobs do not count). */
  idle(): Promise<void> {
    if (this.isIdle) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private get isIdle(): boolean {
    return !this.current && this.validating === 0 && this.queued.length === 0;
  }

  private pump(): void {
    if (this.current) return;
    const next = this.all.find((j) => j.status === 'queued');
    if (!next) {
      if (this.isIdle) for (const w of this.idleWaiters.splice(0)) w();
      return;
    }
    this.current = next;
    void next.run().finally(() => {
      this.current = null;
      this.pump();
    });
  }
}
