// LlamaModel.tune(): every matmul shape of the model gets a tuned linear variant and its attention
// shape a tuned form where there is a choice (trial once, cached in memory here), and training with
// the tuned variants still matches the reference.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { MemoryTuneCache, autotuneStats, setDefaultTuneCache } from '../../src/gpu/autotune.ts';
import { LlamaModel } from '../../src/model/llama.ts';
import { InferenceModel } from '../../src/model/generate.ts';
import { clearLinearTuning, linearTuning } from '../../src/ops/linear.ts';
import { attentionShapeClass, attentionTunedForms, clearAttentionTuning } from '../../src/ops/attention.ts';
import { fixedSubgroupSize } from '../../src/ops/util.ts';
import { ref_loss } from '../../src/ref/model.ts';
import { ALL_TARGETS, tinyBatch, tinyConfig, tinyWeights } from './tiny.ts';
import { testGpu } from '../util.ts';

test('tune() fills the variant table for the model shapes; loss still matches the reference', async () => {
  const gpu = await testGpu();
  setDefaultTuneCache(new MemoryTuneCache());
  clearLinearTuning(gpu);
  const cfg = tinyConfig(), weights = tinyWeights(cfg, 3);
  const lora = { rank: 4, alpha: 8, dropout: 0, targets: ALL_TARGETS };
  const model = new LlamaModel(gpu, cfg, weights, { quant: 'f32', lora, batch: 2, seq: 16, seed: 1 });
  const trials0 = autotuneStats.trials;
  await model.tune();
  assert.ok(linearTuning(gpu).size > 0, 'tuned variants recorded');
  const S = fixedSubgroupSize(gpu), cls = attentionShapeClass(cfg.headDim, 16);
  if (cfg.headDim % 4 === 0 && (S === 8 || (S === 4 && cfg.headDim <= 64))) {
    assert.deepEqual([...attentionTunedForms(gpu).keys()].sort(), [`backward.${cls}`, `forward.${cls}`], 'attention forms tuned');
  }
  clearAttentionTuning(gpu);
  assert.ok(autotuneStats.trials > trials0, 'a trial ran on a cold cache');
  clearLinearTuning(gpu);
  const trials1 = autotuneStats.trials;
  await model.tune();
  assert.equal(autotuneStats.trials, trials1, 'second tune is served from the cache');
  const batch = tinyBatch(cfg, 2, 16, 5);
  const got = await model.trainStep(batch, { lr: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxNorm: 0, t: 1 });
  const want = ref_loss(cfg, weights, { config: lora, params: await model.getLora(), seed: 1, step: 1, train: false }, batch);
  assert.ok(Math.abs(got.loss - want.loss) < 1e-4 * Math.max(1, Math.abs(want.loss)), `loss ${got.loss} vs ref ${want.loss}`);
  model.destroy();
  clearLinearTuning(gpu);
  clearAttentionTuning(gpu);
  setDefaultTuneCache(null);
});

// InferenceModel.tune(): the decode (one row) and prefill (a chunk) shapes of every projection and
// the lm_head get a tuned variant, forward only; greedy tokens are the same with any variant —
// checked with each coalesced GPU matvec (mv16, mvsg) forced as the only candidate
for (const only of ['mv16', 'mvsg'] as const) test(`InferenceModel.tune() tunes decode and prefill shapes; greedy tokens unchanged (${only} forced)`, async () => {
  const gpu = await testGpu();
  setDefaultTuneCache(new MemoryTuneCache());
  clearLinearTuning(gpu);
  const cfg = tinyConfig(), weights = tinyWeights(cfg, 4);
  const im = InferenceModel.create(gpu, cfg, weights, { quant: 'q8', maxSeq: 48, prefillChunk: 8 });
  const greedy = async () => {
    im.reset();
    const toks = [await im.prefillArgmax([1, 5, 9, 33, 70, 12, 3, 8, 100, 41])];
    for (let i = 0; i < 12; i++) toks.push(await im.decodeArgmaxChained());
    return toks;
  };
  try {
    const before = await greedy();
    await im.tune({ variants: [only] });
    const keys = [...linearTuning(gpu).keys()];
    assert.ok(keys.some((k) => k.startsWith('q8.forward.n1.')) && keys.some((k) => k.startsWith('q8.forward.n16.')), `decode (n1) and prefill (n16: 8 rows) classes tuned: ${keys.join(', ')}`);
    assert.ok(keys.every((k) => k.includes('.forward.')), 'forward only');
    assert.ok([...linearTuning(gpu).values()].every((v) => v === only));
    assert.deepEqual(await greedy(), before, `the same greedy tokens through ${only}`);
  } finally {
    im.destroy();
    clearLinearTuning(gpu);
    setDefaultTuneCache(null);
  }
});
