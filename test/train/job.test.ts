// Jobs and the queue on the tiny random model: lifecycle and events, one job at a time, pause /
// resume (same losses), cancel (running and queued), failure messages, and a job cancelled after
// a checkpoint then resumed as a fresh job (file checkpoint sink) matching an uninterrupted job.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../harness.ts';
import { JobQueue, type JobInputs, type JobSpec, type TrainingJob } from '../../src/train/job.ts';
import type { JobStatus } from '../../src/store/jobs.ts';
import { MemoryCheckpointSink } from '../../src/train/checkpoint.ts';
import { FileCheckpointSink } from '../../src/train/node.ts';
import { testGpu } from '../util.ts';
import { tinyConfig, tinyWeights } from '../model/tiny.ts';
import { tinyDataset } from './fixtures.ts';

const cfg = tinyConfig();
const weights = tinyWeights(cfg, 5);

async function inputs(n = 60): Promise<JobInputs> {
  return { gpu: await testGpu(), modelId: 'tiny', config: cfg, weights, dataset: tinyDataset(n, 11, { kind: 'pattern' }), xentChunk: 100 };
}

const HP = { batchSize: 4, gradAccum: 1, seqLen: 16, rank: 4, learningRate: 1e-2, quant: 'f32', checkpointing: false, seed: 1, maxSteps: 12 } as const;

function spec(id: string, over: Partial<JobSpec> = {}): JobSpec {
  return { id, hyperparameters: { ...HP }, prepare: () => inputs(), ...over };
}

function statuses(job: TrainingJob): JobStatus[] {
  return job.events.filter((e) => e.type === 'status').map((e) => (e.data as { to: JobStatus }).to);
}

const losses = (job: TrainingJob) => job.metrics.map((m) => m.loss as number);

test('lifecycle: validating → queued → running → succeeded, events, metrics, adapter; loss falls', async () => {
  const q = new JobQueue();
  const sink = new MemoryCheckpointSink();
  const seen: JobStatus[] = [];
  const job = q.submit(spec('a', { sink, hyperparameters: { ...HP, maxSteps: 'auto', epochs: 2, evalInterval: 5, checkpointInterval: 4 }, listener: { status: (s) => seen.push(s) } }));
  assert.equal(job.status, 'validating_files');
  const r = await job.done;
  assert.equal(r.status, 'succeeded', job.error ?? '');
  assert.deepEqual(seen, ['queued', 'running', 'succeeded']);
  const hp = job.hyperparameters!;
  assert.equal(hp.validationFraction, 0.1, '60 examples: auto validation split');
  assert.equal(hp.maxSteps, 28, '54 training examples, batch 4 → 14 steps × 2 epochs');
  assert.equal(job.metrics.length, 28);
  const m = job.metrics[9];
  for (const k of ['step', 'time', 'epoch', 'loss', 'accuracy', 'lr', 'tokensPerSec', 'elapsedMs', 'etaMs']) assert.equal(typeof m[k], 'number', k);
  assert.equal(typeof m.validLoss, 'number', 'eval at step 10');
  assert.equal(job.metrics[10].validLoss, undefined);
  assert.equal(typeof job.metrics[27].validLoss, 'number', 'eval at the end');
  const first = job.metrics.slice(0, 3).reduce((a, x) => a + (x.loss as number), 0) / 3;
  const last = job.metrics.slice(-3).reduce((a, x) => a + (x.loss as number), 0) / 3;
  assert.ok(last < 0.9 * first, `loss falls: ${first.toFixed(3)} → ${last.toFixed(3)}`);
  assert.ok((job.metrics[27].validLoss as number) < (job.metrics[4].validLoss as number), 'validation loss falls');
  const types = new Set(job.events.map((e) => e.type));
  for (const t of ['status', 'info', 'hyperparameter', 'memory', 'eval', 'checkpoint']) assert.ok(types.has(t), `an event of type ${t}`);
  assert.ok(job.events.some((e) => /^epoch 1 of 2 done at step 14/.test(e.message)));
  // checkpoints every 4 steps and at the epoch end (14), not at the final step (28)
  assert.deepEqual(sink.saves.map((s) => s.step), [4, 8, 12, 14, 16, 20, 24]);
  const a = r.adapter!;
  assert.equal(a.tensors.length, 2 * 2 * 7);
  assert.equal(a.tensors[0].name, 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
  assert.deepEqual(a.tensors[0].shape, [4, 64]);
  assert.deepEqual(a.lora.target_modules, ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
  assert.equal(a.baseModel.shape, 'llama:C64:L2:H4:KV2:HS16:F96:V256');
  assert.equal(a.metrics.steps, 28);
  assert.equal(typeof a.metrics.validLoss, 'number');
});

test('queue: one job at a time; pause / resume gives the same losses; cancel running and queued', async () => {
  const q = new JobQueue();
  let pausedAt = -1;
  const a = q.submit(spec('a', {
    listener: {
      metric: (m, job) => { if (m.step === 3) job.pause(); },
      status: (s, job) => {
        if (s === 'paused') { pausedAt = job.metrics.length; setTimeout(() => job.resume(), 30); }
      },
    },
  }));
  const b = q.submit(spec('b'));
  const c = q.submit(spec('c', { listener: { metric: (m, job) => { if (m.step === 2) job.cancel(); } } }));
  const d = q.submit(spec('d'));
  const e = q.submit(spec('e'));
  e.pause();
  let bWaited = false;
  a.on({ metric: () => { if (b.status === 'queued') bWaited = true; } });
  const ra = await a.done;
  assert.equal(ra.status, 'succeeded');
  assert.ok(bWaited, 'b stayed queued while a ran');
  assert.equal(pausedAt, 3);
  assert.deepEqual(statuses(a), ['queued', 'running', 'paused', 'running', 'succeeded']);
  d.cancel();
  assert.equal(d.status, 'cancelled', 'a queued job is cancelled at once');
  assert.equal((await b.done).status, 'succeeded');
  assert.deepEqual(losses(a), losses(b), 'pausing does not change the run');
  const rc = await c.done;
  assert.equal(rc.status, 'cancelled');
  assert.equal(c.metrics.length, 2);
  assert.deepEqual(statuses(c), ['queued', 'running', 'cancelled']);
  await q.idle();
  assert.equal(q.running, null);
  assert.equal(e.status, 'paused', 'a job paused while validating is held out of the queue');
  e.resume();
  assert.equal((await e.done).status, 'succeeded');
  assert.deepEqual(statuses(e), ['queued', 'paused', 'queued', 'running', 'succeeded']);
  assert.deepEqual(losses(e), losses(b));
});

test('failures: prepare throws, settings cannot fit, a NaN loss — each failed with a clear message', async () => {
  const q = new JobQueue();
  const bad = q.submit(spec('x', { prepare: async () => { throw new Error('data.jsonl line 3: invalid JSON'); } }));
  assert.equal((await bad.done).error, 'data.jsonl line 3: invalid JSON');
  assert.equal(bad.status, 'failed');
  const huge = q.submit(spec('y', { prepare: async () => ({ ...(await inputs()), budgetBytes: 100_000 }) }));
  const r = await huge.done;
  assert.equal(r.status, 'failed');
  assert.match(r.error!, /cannot fit on this device/);
  const nan = q.submit(spec('z', { hyperparameters: { ...HP, learningRate: 1, maxGradNorm: 0 }, prepare: async () => ({ ...(await inputs()), weights: { ...weights, norm: weights.norm.map(() => NaN) } }) }));
  const rn = await nan.done;
  assert.equal(rn.status, 'failed');
  assert.equal(rn.error, 'the loss became NaN at step 1 again after lowering the learning rate to 5e-1; try a lower learning rate or check the data');
  assert.ok(nan.events.some((e) => e.type === 'warning' && /^the loss became NaN at step 1: the step was rejected; rolled back to the initial state/.test(e.message)));
});

test('job resume: cancelled after the step-5 checkpoint, a fresh job resumes from the file sink = uninterrupted job', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'whittle-train-'));
  try {
    const q = new JobQueue();
    const hp = { ...HP, gradAccum: 2, batchSize: 2, dropout: 0.1, checkpointInterval: 5, schedule: 'cosine', warmupSteps: 2 } as const;
    const straight = q.submit(spec('s', { hyperparameters: hp }));
    assert.equal((await straight.done).status, 'succeeded');
    const sink = new FileCheckpointSink(dir);
    const first = q.submit(spec('r', { hyperparameters: hp, sink, listener: { metric: (m, job) => { if (m.step === 6) job.cancel(); } } }));
    assert.equal((await first.done).status, 'cancelled');
    assert.equal(first.metrics.length, 6);
    const second = q.submit(spec('r', { hyperparameters: hp, sink }));
    assert.equal((await second.done).status, 'succeeded', second.error ?? '');
    assert.ok(second.events.some((e) => /resumed from the checkpoint at step 5/.test(e.message)));
    assert.equal(second.metrics.length, 12, 'history: 5 restored rows + 7 new');
    assert.deepEqual(losses(second), losses(straight), 'bit-identical losses');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
