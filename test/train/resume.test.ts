// The trainer on the tiny random model (test/model/tiny.ts) with a tiny dataset:
// - resume: 12 steps straight vs 5 steps → checkpoint (through a sink) → fresh model and trainer
//   restored → 7 more steps gives bit-identical per-step losses and final LoRA weights (dropout on,
//   gradient accumulation 2, cosine schedule with warmup, epochs crossed);
// - gradient accumulation: batch 2 × 2 micro-batches gives the gradient and loss of batch 4;
// - a checkpoint from another dataset or other settings is refused clearly.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { type Hyperparameters, resolveHyperparameters } from '../../src/train/hyperparams.ts';
import { MemoryCheckpointSink } from '../../src/train/checkpoint.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { assertClose, testGpu } from '../util.ts';
import { tinyConfig, tinyWeights } from '../model/tiny.ts';
import { tinyDataset } from './fixtures.ts';

const cfg = tinyConfig();
const weights = tinyWeights(cfg, 5);
const data = tinyDataset(20, 7);

function hp(over: object = {}): Hyperparameters {
  return resolveHyperparameters({
    batchSize: 2, gradAccum: 2, seqLen: 16, maxSteps: 12, rank: 4, alpha: 8, dropout: 0.1, learningRate: 1e-2, schedule: 'cosine',
    warmupSteps: 2, quant: 'f32', checkpointing: false, validationFraction: 0, seed: 3, weightDecay: 0.01, ...over,
  }, { datasetSize: data.examples.length, tokensPerExample: data.stats.tokens, model: cfg }).resolved;
}

async function trainer(h: Hyperparameters, ds = data): Promise<Trainer> {
  return new Trainer({ gpu: await testGpu(), config: cfg, weights, train: ds, hp: h, xentChunk: 100 });
}

async function run(t: Trainer, steps: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    const m = await t.trainStep();
    assert.ok(m, `step ${i + 1} ran`);
    out.push(m.loss);
  }
  return out;
}

function bitwise(name: string, a: ArrayLike<number>, b: ArrayLike<number>): void {
  assert.equal(a.length, b.length, `${name}: lengths`);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${name}: differs at ${i}: ${a[i]} vs ${b[i]}`);
}

test('resume: 12 straight steps = 5 steps, checkpoint, fresh trainer restored, 7 steps (bitwise)', async () => {
  const h = hp();
  assert.equal(h.epochs, 3, '10 micro-batches per epoch, 2 per step: 12 steps cross two epoch ends');
  const a = await trainer(h);
  const straight = await run(a, 12);
  assert.equal(await a.trainStep(), null, 'maxSteps reached');
  const loraA = await a.model.getLora();
  a.destroy();

  const sink = new MemoryCheckpointSink();
  const b = await trainer(h);
  const first = await run(b, 5);
  await sink.save('job', await b.checkpoint());
  b.destroy();
  const c = await trainer(h);
  const ck = await sink.load('job');
  assert.ok(ck);
  assert.equal(ck.step, 5);
  assert.deepEqual(ck.rng, [3, 10]);
  assert.deepEqual({ epoch: ck.data.epoch, index: ck.data.index }, { epoch: 1, index: 0 }, 'step 5 ended epoch 1');
  assert.deepEqual(c.restore(ck), []);
  const rest = await run(c, 7);
  assert.equal(await c.trainStep(), null);
  bitwise('per-step losses', [...first, ...rest], straight);
  const loraC = await c.model.getLora();
  for (const [k, p] of loraA) {
    bitwise(`${k}.A`, loraC.get(k)!.A, p.A);
    bitwise(`${k}.B`, loraC.get(k)!.B, p.B);
  }
  c.destroy();
  assert.ok(straight.every(Number.isFinite));
});

test('gradient accumulation: 2 micro-batches of 2 = one batch of 4 (loss and gradient)', async () => {
  const base = { dropout: 0, maxSteps: 1, warmupSteps: 0, schedule: 'constant' };
  const one = await trainer(hp({ ...base, batchSize: 4, gradAccum: 1 }));
  const two = await trainer(hp({ ...base, batchSize: 2, gradAccum: 2 }));
  const m1 = (await one.trainStep())!, m2 = (await two.trainStep())!;
  assert.equal(m2.microBatches, 2);
  assert.equal(m1.trainedTokens, m2.trainedTokens);
  assertClose('loss', [m2.loss], [m1.loss], { atol: 1e-6, rtol: 1e-5 });
  assertClose('accuracy', [m2.tokenAccuracy], [m1.tokenAccuracy], { atol: 1e-9, rtol: 1e-9 });
  const g1 = await one.model.getGrads(), g2 = await two.model.getGrads();
  let nonzero = 0;
  for (const [k, p] of g1) {
    const max = p.B.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    if (max > 0) nonzero++;
    assertClose(`dB ${k}`, g2.get(k)!.B, p.B, { atol: 1e-5 * max + 1e-12, rtol: 1e-4 });
  }
  assert.ok(nonzero > 0, 'some gradient is nonzero');
  one.destroy();
  two.destroy();
});

test('restore refuses a checkpoint of another dataset or other settings', async () => {
  const h = hp({ maxSteps: 2, warmupSteps: 0 });
  const a = await trainer(h);
  await run(a, 1);
  const ck = await a.checkpoint();
  a.destroy();
  const other = await trainer(h, tinyDataset(20, 8));
  assert.throws(() => other.restore(ck), /made on another dataset/);
  other.destroy();
  const rank = await trainer({ ...h, rank: 2, alpha: 4 });
  assert.throws(() => rank.restore(ck), /rank was 4, now 2/);
  rank.destroy();
  const longer = await trainer({ ...h, maxSteps: 3 });
  assert.match(longer.restore(ck).join(), /maxSteps changed from 2 to 3/);
  longer.destroy();
});
