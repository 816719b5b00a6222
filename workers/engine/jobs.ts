// The worker's training service: one src/train JobQueue, mirrored into the store (src/store/jobs.ts)
// as it runs, so a reload (or a crash) loses at most the steps since the last checkpoint:
// - every status change, event and metric row of a job is written in order (one write chain per
//   job) and pushed to the page (`job-update`, `job-event`, `job-metric`);
// - checkpoints go to IndexedDB through src/train's storeCheckpointSink; when a run resumes, the
//   metric rows after the checkpoint's step are dropped first (the steps are replayed);
// - the finished adapter is saved to the store BEFORE the job is marked succeeded;
// - a finished job is dropped from the queue once its final state is stored (src/train releases its
//   inputs as it ends), so many runs do not pile up memory in this worker;
// - pausing writes a checkpoint first (src/train), so a reload while paused loses no step;
// - at start-up, jobs the store says are validating, queued or running are resubmitted and resume
//   from their last checkpoint. Only one tab runs jobs: the one holding the 'whittle-jobs' Web Lock.
// The store record's `hyperparameters` holds {input, trainOn, budgetBytes, resolved}: the form's
// input, and once validated the resolved set, which a resumed run reuses so it continues the same run.
// It is not: the training loop (src/train); no DOM.
import { type Gpu, isSoftwareAdapter } from '../../src/gpu/device.ts';
import type { TrainOn } from '../../src/data/index.ts';
import {
  type JobEvent, type JobMetric, type JobRecord, type JobStatus, appendJobEvents, appendJobMetrics, createJob, deleteCheckpoints, deleteJob,
  getJob, getJobWithLogs, getJobMetrics, jobLogPageCount, listJobs, LOG_PAGE_SIZE, saveAdapter, setJobStatus, truncateJobMetrics, updateJob,
} from '../../src/store/index.ts';
import {
  type CheckpointSink, type HyperparameterInput, type Hyperparameters, JobQueue, type TrainingJob, adapterSaveInit, resolveHyperparameters, stepsFor,
} from '../../src/train/index.ts';
import { storeCheckpointSink } from '../../src/train/sink-store.ts';
import type { FromWorker, JobSummary, TrainPlan, TrainRequest } from '../../src/protocol.ts';
import { maxSeqLenOf, type Datasets } from './datasets.ts';
import { paramCount, type Models } from './models.ts';

interface StoredHp {
  input: HyperparameterInput;
  trainOn: TrainOn;
  budgetBytes?: number;
  resolved?: Hyperparameters;
}

const ACTIVE: readonly JobStatus[] = ['validating_files', 'queued', 'running'];
const FINAL: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

function storedHp(r: JobRecord): StoredHp {
  const h = r.hyperparameters as Partial<StoredHp>;
  return { input: h.input ?? {}, trainOn: h.trainOn ?? 'assistant', budgetBytes: h.budgetBytes, resolved: h.resolved };
}

function limitsOf(gpu: Gpu, budgetBytes?: number) {
  const l = gpu.info.limits;
  return {
    maxBufferSize: l.maxBufferSize, maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment, budgetBytes,
  };
}

export class Jobs {
  private queue = new JobQueue();
  private live = new Map<string, TrainingJob>();
  private writes = new Map<string, Promise<unknown>>();
  private sink: CheckpointSink;
  /** resolves once start-up resumption is done, or known not to happen here (lists wait for it) */
  readonly ready: Promise<void>;
  private readyResolve!: () => void;

  constructor(
    private post: (m: FromWorker) => void,
    private gpu: () => Promise<Gpu>,
    private models: Models,
    private datasets: Datasets,
  ) {
    this.ready = new Promise((r) => (this.readyResolve = r));
    const inner = storeCheckpointSink();
    this.sink = {
      save: (jobId, c) => inner.save(jobId, c),
      // a resumed run replays the steps after its checkpoint: drop their metric rows first
      load: async (jobId) => {
        const c = await inner.load(jobId);
        await this.chain(jobId, () => truncateJobMetrics(jobId, c?.step ?? 0));
        return c;
      },
    };
  }

  /** Resubmit the jobs the store says were active (this tab holds the job lock). */
  resumeAtStartup(): Promise<void> {
    return (async () => {
      const all = await listJobs({ onUnreadable: (e) => console.warn(`whittle: skipping an unreadable job record: ${e.message}`) });
      for (const r of all) {
        if (!ACTIVE.includes(r.status)) continue;
        await appendJobEvents(r.id, [{ type: 'info', message: 'the page was reloaded: resuming from the last checkpoint' }]).catch(() => {});
        this.submit(r);
      }
    })().catch((e) => console.error('whittle: could not resume jobs at start-up', e)).finally(() => this.readyResolve());
  }

  /** Start-up resumption will not happen in this worker (another tab runs the jobs). */
  markReady(): void {
    this.readyResolve();
  }

  /** Serialize the store writes of one job (status, events, metrics stay in order). */
  private chain<T>(jobId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.writes.get(jobId) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch((e) => console.error(`whittle: job ${jobId}: a store write failed`, e));
    this.writes.set(jobId, settled);
    void settled.then(() => {
      if (this.writes.get(jobId) === settled) this.writes.delete(jobId);
    });
    return next;
  }

  async plan(req: TrainRequest): Promise<TrainPlan> {
    const t = await this.models.tokenizer(req.modelId);
    const hp = req.hyperparameters;
    const maxSeqLen = typeof hp.seqLen === 'number' ? hp.seqLen : maxSeqLenOf(t);
    const ds = await this.datasets.forTraining(req.datasetId, t, maxSeqLen, req.trainOn);
    const gpu = await this.gpu();
    const r = resolveHyperparameters(hp, {
      datasetSize: ds.examples.length, tokensPerExample: ds.stats.tokens, model: t.config, adapterLimits: limitsOf(gpu, req.budgetBytes),
    });
    const baseParams = paramCount(t.config);
    const { microPerEpoch } = stepsFor(r.trainSize, r.resolved.batchSize, r.resolved.gradAccum, r.resolved.epochs);
    return {
      resolved: r.resolved,
      explanations: r.explanations,
      plan: r.plan,
      examples: ds.examples.length,
      trainSize: r.trainSize,
      baseParams,
      trainableParams: r.plan.trainableParams,
      trainablePercent: (100 * r.plan.trainableParams) / baseParams,
      epochTokens: Math.round((ds.stats.totalTokens * r.trainSize) / ds.examples.length),
      batchesPerEpoch: microPerEpoch,
    };
  }

  async start(req: TrainRequest & { name: string }): Promise<JobSummary> {
    const name = req.name.trim() || 'LoRA run';
    const stored: StoredHp = { input: req.hyperparameters, trainOn: req.trainOn, ...(req.budgetBytes ? { budgetBytes: req.budgetBytes } : {}) };
    const rec = await createJob({ name, modelId: req.modelId, datasetId: req.datasetId, hyperparameters: stored as unknown as Record<string, unknown> });
    this.submit(rec);
    return this.summaryOf(rec);
  }

  private submit(rec: JobRecord): TrainingJob {
    const hp = storedHp(rec);
    const job = this.queue.submit({
      id: rec.id,
      name: rec.name,
      hyperparameters: hp.resolved ? { ...hp.resolved } : hp.input,
      sink: this.sink,
      resume: true,
      adapterName: rec.name,
      prepare: async () => {
        const gpu = await this.gpu();
        const model = await this.models.load(rec.modelId);
        const seq = hp.resolved?.seqLen ?? (typeof hp.input.seqLen === 'number' ? hp.input.seqLen : Math.min(model.config.maxPos, 2048));
        const renderer = model.chatTemplate ? (await this.models.tokenizer(rec.modelId)).renderer : null;
        const dataset = await this.datasets.forTraining(rec.datasetId, { tokenizer: model.tokenizer, renderer }, seq, hp.trainOn);
        return { gpu, modelId: rec.modelId, config: model.config, weights: model.weights, dataset, datasetId: rec.datasetId, budgetBytes: hp.budgetBytes, autotune: !isSoftwareAdapter(gpu) };
      },
      listener: {
        event: (e, j) => this.onEvent(j, e),
        metric: (m, j) => this.onMetric(j, m),
      },
    });
    this.live.set(rec.id, job);
    return job;
  }

  private onEvent(job: TrainingJob, e: JobEvent): void {
    this.post({ type: 'job-event', jobId: job.id, event: e });
    if (e.type !== 'status') {
      void this.chain(job.id, () => appendJobEvents(job.id, [e]));
      return;
    }
    const to = (e.data as { to: JobStatus }).to;
    void this.chain(job.id, async () => {
      if (to === 'queued' && job.hyperparameters) {
        const cur = await getJob(job.id);
        if (cur) {
          const h = storedHp(cur);
          await updateJob(job.id, { hyperparameters: { ...h, resolved: job.hyperparameters } as unknown as Record<string, unknown> });
        }
      }
      if (to === 'succeeded' && job.adapter) {
        const meta = await saveAdapter(adapterSaveInit(job.adapter));
        const saved: JobEvent = { time: Date.now(), type: 'adapter', message: `adapter "${meta.name}" saved (${meta.tensorCount} tensors)`, data: { adapterId: meta.id } };
        await appendJobEvents(job.id, [saved]);
        this.post({ type: 'job-event', jobId: job.id, event: saved });
        this.post({ type: 'changed', what: 'adapters' });
      }
      try {
        await setJobStatus(job.id, to, { error: job.error ?? undefined, message: e.message });
      } catch (err) {
        console.warn(`whittle: job ${job.id}: ${(err as Error).message}`);
      }
      if (to === 'succeeded' || to === 'cancelled') await deleteCheckpoints(job.id);
      if (FINAL.includes(to)) {
        // the store has it all now: let the queue drop the job (and its adapter, metrics, events)
        this.live.delete(job.id);
        this.queue.forget(job.id);
      }
      const rec = await getJob(job.id);
      if (rec) this.post({ type: 'job-update', job: await this.summaryOf(rec) });
    });
  }

  private onMetric(job: TrainingJob, m: JobMetric): void {
    this.post({ type: 'job-metric', jobId: job.id, metric: m });
    void this.chain(job.id, () => appendJobMetrics(job.id, [m]));
  }

  private async summaryOf(rec: JobRecord): Promise<JobSummary> {
    const job = this.live.get(rec.id);
    let last: JobMetric | null = job?.metrics.at(-1) ?? null;
    if (!last) {
      const pages = await jobLogPageCount(rec.id, 'metrics');
      if (pages) last = (await getJobMetrics(rec.id, { from: (pages - 1) * LOG_PAGE_SIZE.metrics })).at(-1) ?? null;
    }
    const hp = job?.hyperparameters ?? storedHp(rec).resolved ?? null;
    return { ...rec, live: !!job && !job.final, last, totalSteps: hp?.maxSteps ?? null };
  }

  async list(): Promise<JobSummary[]> {
    await this.ready;
    const all = await listJobs({ onUnreadable: (e) => console.warn(`whittle: skipping an unreadable job record: ${e.message}`) });
    return Promise.all(all.map((r) => this.summaryOf(r)));
  }

  async get(id: string) {
    await this.ready;
    await this.writes.get(id);
    const j = await getJobWithLogs(id);
    if (!j) throw new Error(`no job ${id} in this browser's storage`);
    const { events, metrics, ...rec } = j;
    return { job: await this.summaryOf(rec), events, metrics };
  }

  async control(id: string, action: 'pause' | 'resume' | 'cancel'): Promise<JobSummary> {
    const job = this.live.get(id);
    const rec = await getJob(id);
    if (!rec) throw new Error(`no job ${id} in this browser's storage`);
    if (job && !job.final) {
      if (action === 'pause') job.pause();
      else if (action === 'resume') job.resume();
      else job.cancel();
      return this.summaryOf(rec);
    }
    // not running in this worker (paused before a reload, or failed): act on the stored record
    if (action === 'pause') throw new Error(`job "${rec.name}" is ${rec.status}, not running`);
    if (action === 'resume') {
      if (rec.status !== 'paused' && rec.status !== 'failed' && !ACTIVE.includes(rec.status)) {
        throw new Error(`job "${rec.name}" is ${rec.status}; only a paused or failed job can be resumed`);
      }
      await this.chain(id, () => appendJobEvents(id, [{ type: 'info', message: 'resuming from the last checkpoint' }]));
      this.submit(rec);
      return this.summaryOf(rec);
    }
    await this.chain(id, async () => {
      await setJobStatus(id, 'cancelled', { message: 'cancelled' });
      await deleteCheckpoints(id);
    });
    const after = (await getJob(id))!;
    const s = await this.summaryOf(after);
    this.post({ type: 'job-update', job: s });
    return s;
  }

  async remove(id: string): Promise<boolean> {
    const job = this.live.get(id);
    if (job && !job.final) throw new Error('cancel the job before deleting it');
    await this.writes.get(id);
    return deleteJob(id);
  }
}
