// Pausing a running job writes a checkpoint first, so a reload while paused (simulated: the paused
// job is abandoned and a fresh job with the same id and sink resumes) loses no step and continues
// bit-identically; a finished job lets go of its inputs, and the queue can forget it.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { JobQueue, type JobInputs, type JobMetric, type JobSpec } from '../../src/train/job.ts';
import { MemoryCheckpointSink } from '../../src/train/checkpoint.ts';
import { testGpu } from '../util.ts';
import { tinyConfig, tinyWeights } from '../model/tiny.ts';
import { tinyDataset } from './fixtures.ts';

const cfg = tinyConfig();
const weights = tinyWeights(cfg, 5);

async function inputs(): Promise<JobInputs> {
  return { gpu: await testGpu(), modelId: 'tiny', config: cfg, weights, dataset: tinyDataset(40, 11, { kind: 'pattern' }), xentChunk: 100 };
}

// checkpoints only at the epoch end (far away): any checkpoint before it comes from the pause
const HP = {
  batchSize: 4, gradAccum: 1, seqLen: 16, rank: 4, learningRate: 1e-2, quant: 'f32', checkpointing: false, seed: 1, maxSteps: 8,
  checkpointInterval: 0, validationFraction: 0, evalInterval: 0,
} as const;

function spec(id: string, over: Partial<JobSpec> = {}): JobSpec {
  return { id, hyperparameters: { ...HP }, prepare: () => inputs(), ...over };
}

const losses = (ms: readonly JobMetric[]) => ms.map((m) => m.loss as number);

test('pause: a checkpoint is written before pausing; a fresh job resumes there with no step lost (= uninterrupted)', async () => {
  const q = new JobQueue();
  const straight = q.submit(spec('straight'));
  assert.equal((await straight.done).status, 'succeeded', straight.error ?? '');
  assert.equal(straight.metrics.length, 8);

  const sink = new MemoryCheckpointSink();
  let savesWhenPaused: number[] | null = null;
  const first = q.submit(spec('p', {
    sink,
    listener: {
      metric: (m, job) => { if (m.step === 3) job.pause(); },
      status: (s) => { if (s === 'paused') savesWhenPaused = sink.saves.map((x) => x.step); },
    },
  }));
  while (first.status !== 'paused') await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(savesWhenPaused, [3], 'the checkpoint at the paused step was saved before the job said paused');
  assert.ok(first.events.some((e) => e.type === 'checkpoint' && /checkpoint saved at step 3 \(pausing\)/.test(e.message)), 'the log says so');
  // resumed and paused again at once: one more step runs (pause is honoured between steps), then it checkpoints again
  first.resume();
  first.pause();
  while (first.status !== 'paused' || first.events.filter((e) => e.type === 'status' && /^paused/.test(e.message)).length < 2) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const stepsNow = first.metrics.length;
  assert.equal(stepsNow, 4);
  assert.deepEqual(sink.saves.map((x) => x.step), [3, 4], 'a checkpoint at each pause');

  // "reload": the paused job is abandoned (cancelled here, which keeps the sink's checkpoint)
  first.cancel();
  assert.equal((await first.done).status, 'cancelled');
  const second = q.submit(spec('p', { sink }));
  assert.equal((await second.done).status, 'succeeded', second.error ?? '');
  assert.ok(second.events.some((e) => new RegExp(`resumed from the checkpoint at step ${stepsNow}`).test(e.message)), 'resumed at the paused step');
  assert.equal(second.metrics.length, 8);
  assert.deepEqual(losses(second.metrics), losses(straight.metrics), 'bit-identical losses: no step lost or repeated differently');
});

test('a job that ends releases its inputs; the queue forgets finished jobs on request', async () => {
  const q = new JobQueue();
  const ok = q.submit(spec('ok', { hyperparameters: { ...HP, maxSteps: 2 } }));
  assert.equal(ok.holdsInputs, false, 'nothing held while validating');
  await new Promise<void>((resolve) => ok.on({ status: (s) => { if (s === 'running') resolve(); } }));
  assert.equal(ok.holdsInputs, true, 'held while it runs');
  assert.equal((await ok.done).status, 'succeeded');
  assert.equal(ok.holdsInputs, false, 'released once succeeded');
  assert.ok(ok.adapter, 'the result stays');

  const cancelled = q.submit(spec('c', { listener: { metric: (m, job) => { if (m.step === 1) job.cancel(); } } }));
  assert.equal((await cancelled.done).status, 'cancelled');
  assert.equal(cancelled.holdsInputs, false, 'released once cancelled');

  const failed = q.submit(spec('f', { prepare: async () => ({ ...(await inputs()), dataset: { ...(await inputs()).dataset, examples: [] } }) }));
  assert.equal((await failed.done).status, 'failed');
  assert.equal(failed.holdsInputs, false, 'released once failed');

  assert.equal(q.jobs.length, 3);
  assert.equal(q.forget('ok'), true);
  assert.equal(q.forget('ok'), false, 'already gone');
  assert.deepEqual(q.jobs.map((j) => j.id), ['c', 'f']);
  const running = q.submit(spec('r', { hyperparameters: { ...HP, maxSteps: 2 } }));
  assert.equal(q.forget('r'), false, 'a job that has not ended stays');
  await running.done;
  assert.equal(q.forget('r'), true);
});
