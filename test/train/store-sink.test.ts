// The IndexedDB checkpoint sink (src/train/sink-store.ts over src/store, fake-indexeddb here):
// a trainer checkpoint round-trips through the store and resumes bit-exactly.
import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { createJob } from '../../src/store/jobs.ts';
import { storeCheckpointSink } from '../../src/train/sink-store.ts';
import { resolveHyperparameters } from '../../src/train/hyperparams.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { testGpu } from '../util.ts';
import { tinyConfig, tinyWeights } from '../model/tiny.ts';
import { tinyDataset } from './fixtures.ts';

test('store sink: save at step 3, load into a fresh trainer, 3 more steps = 6 straight steps', async () => {
  const cfg = tinyConfig(), weights = tinyWeights(cfg, 2), data = tinyDataset(12, 4);
  const hp = resolveHyperparameters({ batchSize: 2, seqLen: 16, maxSteps: 6, rank: 2, dropout: 0.2, learningRate: 1e-2, quant: 'q8', seed: 8, validationFraction: 0, warmupSteps: 0 },
    { datasetSize: 12, tokensPerExample: data.stats.tokens, model: cfg }).resolved;
  const gpu = await testGpu();
  const make = () => new Trainer({ gpu, config: cfg, weights, train: data, hp, xentChunk: 64 });
  const steps = async (t: Trainer, n: number) => { const out: number[] = []; for (let i = 0; i < n; i++) out.push((await t.trainStep())!.loss); return out; };
  const a = make();
  const straight = await steps(a, 6);
  a.destroy();
  await createJob({ id: 'job1', modelId: 'tiny', datasetId: 'ds', hyperparameters: {} });
  const sink = storeCheckpointSink();
  const b = make();
  const first = await steps(b, 3);
  b.history.push(...first.map((loss, i) => ({ step: i + 1, loss })));
  await sink.save('job1', await b.checkpoint());
  b.destroy();
  const ck = await sink.load('job1');
  assert.ok(ck);
  assert.equal(ck.step, 3);
  assert.equal(ck.metrics.length, 3);
  const c = make();
  assert.deepEqual(c.restore(ck), []);
  const rest = await steps(c, 3);
  c.destroy();
  assert.deepEqual([...first, ...rest], straight);
});
