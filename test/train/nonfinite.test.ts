// NaN / Inf steps on the tiny random model (test/model/tiny.ts), injected through the trainer's
// test hooks (a NaN written into a LoRA parameter before a step's forward → NaN loss; or into the
// gradients after backward → finite loss, NaN gradient norm):
// - the trainer rejects the step: NonFiniteStepError, the LoRA weights and AdamW moments unchanged;
// - a job rolls back to the last checkpoint, halves the learning rate (warning event, checkpoint
//   saved with lrScale 0.5) and succeeds; without a sink it restarts from the initial state;
// - a second NaN fails the job with the reason; a job resumed from a lowered-rate checkpoint keeps
//   the lowered rate (same losses as the uninterrupted job) and fails on its next NaN.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { JobQueue, type JobInputs, type JobSpec } from '../../src/train/job.ts';
import { type JobMetric, MemoryCheckpointSink } from '../../src/train/checkpoint.ts';
import { resolveHyperparameters } from '../../src/train/hyperparams.ts';
import { NonFiniteStepError, Trainer, type TrainerHooks } from '../../src/train/trainer.ts';
import { testGpu } from '../util.ts';
import { tinyConfig, tinyWeights } from '../model/tiny.ts';
import { tinyDataset } from './fixtures.ts';

const cfg = tinyConfig();
const weights = tinyWeights(cfg, 5);
const data = tinyDataset(40, 11, { kind: 'pattern' });

const HP = {
  batchSize: 4, gradAccum: 1, seqLen: 16, rank: 4, learningRate: 1e-2, quant: 'f32', checkpointing: false, seed: 1, maxSteps: 10,
  checkpointInterval: 2, validationFraction: 0, schedule: 'constant', warmupSteps: 0,
} as const;

/** Write NaN into the first LoRA parameter (layer 0 q_proj A[0,0]) → the next forward's loss is NaN. */
function poisonParam(t: Trainer): void {
  t.gpu.write(t.model.flatBuffers().params, new Float32Array([NaN]));
}

/** Write NaN into one gradient after backward (submit first: a queue write runs before unsubmitted work). */
function poisonGrad(t: Trainer): void {
  t.gpu.submit();
  t.gpu.write(t.model.flatBuffers().grads, new Float32Array([NaN]), 4 * 7);
}

/** Hooks that poison a parameter before each of the steps `at`, the first time that step runs. */
function nanAt(...at: number[]): TrainerHooks & { fired: number } {
  const left = new Set(at);
  const h = {
    fired: 0,
    beforeStep(t: number, tr: Trainer) {
      if (left.delete(t)) {
        h.fired++;
        poisonParam(tr);
      }
    },
  };
  return h;
}

async function inputs(hooks?: TrainerHooks): Promise<JobInputs> {
  return { gpu: await testGpu(), modelId: 'tiny', config: cfg, weights, dataset: data, xentChunk: 100, hooks };
}

function spec(id: string, hooks: TrainerHooks | undefined, over: Partial<JobSpec> = {}): JobSpec {
  return { id, hyperparameters: { ...HP }, prepare: () => inputs(hooks), ...over };
}

const losses = (rows: JobMetric[]) => rows.map((m) => m.loss as number);
const lrs = (rows: JobMetric[]) => rows.map((m) => m.lr as number);

test('trainer: a NaN loss or NaN gradient norm throws NonFiniteStepError and leaves weights and moments as they were', async () => {
  const gpu = await testGpu();
  const hp = resolveHyperparameters({ ...HP }, { datasetSize: data.examples.length, tokensPerExample: data.stats.tokens, model: cfg }).resolved;
  let mode: 'param' | 'grad' | null = null;
  const tr = new Trainer({
    gpu, config: cfg, weights, train: data, hp, xentChunk: 100,
    hooks: { beforeStep: (_t, x) => { if (mode === 'param') poisonParam(x); }, beforeOptimizer: (_t, x) => { if (mode === 'grad') poisonGrad(x); } },
  });
  try {
    for (let i = 0; i < 2; i++) assert.ok(await tr.trainStep());
    const read = async () => {
      const { params, m, v } = tr.model.flatBuffers();
      return [await gpu.readF32(params), await gpu.readF32(m), await gpu.readF32(v)];
    };
    const before = await read();
    mode = 'grad';
    const e = await tr.trainStep().then(() => null, (x: unknown) => x);
    assert.ok(e instanceof NonFiniteStepError, `NonFiniteStepError, got ${e}`);
    assert.equal(e.step, 3);
    assert.ok(Number.isFinite(e.loss), 'the loss itself was finite');
    assert.ok(Number.isNaN(e.gradNorm));
    assert.match(e.message, /^the gradient norm became NaN \(loss \d+\.\d{4}\) at step 3$/);
    assert.equal(tr.step, 2, 'the step was not counted');
    assert.deepEqual(await read(), before, 'AdamW skipped the step: params, m, v unchanged');
    mode = 'param';
    const e2 = await tr.trainStep().then(() => null, (x: unknown) => x);
    assert.ok(e2 instanceof NonFiniteStepError);
    assert.ok(Number.isNaN(e2.loss));
    assert.equal(e2.message, 'the loss became NaN at step 3');
    const after = await read();
    assert.deepEqual(after.slice(1), before.slice(1), 'moments unchanged');
    assert.ok(Number.isNaN(after[0][0]) && after[0].every((x, i) => i === 0 || x === before[0][i]), 'params: only the poisoned value differs');
    // rollback to the initial state: the first step again gives the first step's loss
    mode = null;
    tr.rollback(null);
    assert.equal(tr.step, 0);
    const fresh = new Trainer({ gpu, config: cfg, weights, train: data, hp, xentChunk: 100 });
    try {
      const [a, b] = [await tr.trainStep(), await fresh.trainStep()];
      assert.equal(a!.loss, b!.loss, 'same loss as a fresh trainer after rolling back to the initial state');
      assert.deepEqual(await gpu.readF32(tr.model.flatBuffers().params), await gpu.readF32(fresh.model.flatBuffers().params));
    } finally {
      fresh.destroy();
    }
  } finally {
    tr.destroy();
  }
});

test('job: NaN at step 7 → rolled back to the step-6 checkpoint, learning rate halved, succeeded', async () => {
  const q = new JobQueue();
  const straight = q.submit(spec('s', undefined));
  assert.equal((await straight.done).status, 'succeeded', straight.error ?? '');
  const sink = new MemoryCheckpointSink();
  const hooks = nanAt(7);
  const job = q.submit(spec('n', hooks, { sink }));
  const r = await job.done;
  assert.equal(r.status, 'succeeded', job.error ?? '');
  assert.equal(hooks.fired, 1);
  const w = job.events.find((e) => e.type === 'warning' && /NaN/.test(e.message));
  assert.ok(w, 'a warning event');
  assert.equal(w.message, 'the loss became NaN at step 7: the step was rejected; rolled back to the checkpoint at step 6 and lowered the learning rate from 1e-2 to 5e-3');
  assert.deepEqual(w.data, { step: 6, failedStep: 7, loss: NaN, gradNorm: NaN, learningRate: { from: 1e-2, to: 5e-3 }, lrScale: 0.5 });
  assert.ok(job.events.some((e) => e.type === 'checkpoint' && e.message === 'checkpoint saved at step 6 (learning rate lowered to 5e-3)'));
  assert.deepEqual(sink.saves.map((s) => s.step), [2, 4, 6, 6, 8], 'the rolled-back state is saved again at once (with the lowered rate)');
  assert.deepEqual(job.metrics.map((m) => m.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'one row per step, no row for the rejected step');
  assert.deepEqual(lrs(job.metrics), [...Array(6).fill(1e-2), ...Array(4).fill(5e-3)]);
  assert.deepEqual(losses(job.metrics).slice(0, 7), losses(straight.metrics).slice(0, 7), 'steps 1..6 as before, step 7 from the same state');
  assert.ok(losses(job.metrics).every(Number.isFinite));
  const ck = (await sink.load('n'))!;
  assert.equal(ck.step, 8);
  assert.equal((ck.extra as { lrScale: number }).lrScale, 0.5, 'the checkpoint records the lowered rate');
  assert.equal(r.adapter!.metrics.steps, 10);
  for (const t of r.adapter!.tensors) assert.ok(new Float32Array(t.data as ArrayBuffer).every(Number.isFinite), `${t.name} finite`);
});

test('job: a second NaN after lowering the learning rate fails with the reason', async () => {
  const q = new JobQueue();
  const sink = new MemoryCheckpointSink();
  const job = q.submit(spec('twice', nanAt(5, 7), { sink }));
  const r = await job.done;
  assert.equal(r.status, 'failed');
  assert.equal(r.error, 'the loss became NaN at step 7 again after lowering the learning rate to 5e-3; try a lower learning rate or check the data');
  assert.ok(job.events.some((e) => e.type === 'warning' && /at step 5: the step was rejected; rolled back to the checkpoint at step 4/.test(e.message)));
  assert.deepEqual(job.metrics.map((m) => m.step), [1, 2, 3, 4, 5, 6]);
  assert.equal(job.events.at(-1)!.message, `failed: ${r.error}`);
});

test('job without a sink: NaN at step 3 → back to the initial state with the halved rate; the same step twice fails', async () => {
  const q = new JobQueue();
  const straight = q.submit(spec('s', undefined));
  await straight.done;
  const job = q.submit(spec('nosink', nanAt(3)));
  assert.equal((await job.done).status, 'succeeded', job.error ?? '');
  assert.ok(job.events.some((e) => e.message === 'the loss became NaN at step 3: the step was rejected; rolled back to the initial state (no checkpoint yet) and lowered the learning rate from 1e-2 to 5e-3'));
  assert.deepEqual(job.metrics.map((m) => m.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(lrs(job.metrics), Array(10).fill(5e-3), 'the whole run again at the lowered rate');
  assert.equal(job.metrics[0].loss, straight.metrics[0].loss, 'step 1 from the initial LoRA again');
  // a gradient NaN on every try of step 2: rejected, then fails
  const g = q.submit(spec('grad', { beforeOptimizer: (t, tr) => { if (t === 2) poisonGrad(tr); } }));
  const r = await g.done;
  assert.equal(r.status, 'failed');
  assert.match(r.error!, /^the gradient norm became NaN \(loss \d+\.\d{4}\) at step 2 again after lowering the learning rate to 5e-3; try a lower learning rate or check the data$/);
});

test('resume after a rollback keeps the lowered rate: same losses as uninterrupted; the next NaN fails at once', async () => {
  const q = new JobQueue();
  const whole = q.submit(spec('w', nanAt(5), { sink: new MemoryCheckpointSink() }));
  assert.equal((await whole.done).status, 'succeeded', whole.error ?? '');
  const sink = new MemoryCheckpointSink();
  const first = q.submit(spec('r', nanAt(5), { sink, listener: { metric: (m, job) => { if (m.step === 7) job.cancel(); } } }));
  assert.equal((await first.done).status, 'cancelled');
  assert.equal((await sink.load('r'))!.step, 6);
  const second = q.submit(spec('r', undefined, { sink }));
  assert.equal((await second.done).status, 'succeeded', second.error ?? '');
  assert.ok(second.events.some((e) => e.type === 'warning' && /^the learning rate stays lowered to 5e-3 \(peak\)/.test(e.message)));
  assert.deepEqual(losses(second.metrics), losses(whole.metrics), 'bit-identical to the job that was not interrupted');
  assert.deepEqual(lrs(second.metrics), lrs(whole.metrics));
  // resumed with the lowered rate, a NaN is the second one
  const sink2 = new MemoryCheckpointSink();
  const a = q.submit(spec('x', nanAt(5), { sink: sink2, listener: { metric: (m, job) => { if (m.step === 6) job.cancel(); } } }));
  await a.done;
  const b = q.submit(spec('x', nanAt(8), { sink: sink2 }));
  const rb = await b.done;
  assert.equal(rb.status, 'failed');
  assert.equal(rb.error, 'the loss became NaN at step 8 again after lowering the learning rate to 5e-3; try a lower learning rate or check the data');
});
