// Hyperparameter resolution (auto rules, explanations, explicit values kept, invalid input
// refused), the LR schedule, and the memory planner's adaptation order (pure, no GPU).
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import type { LlamaConfig } from '../../src/model/config.ts';
import { HyperparameterError, learningRateAt, resolveHyperparameters, stepsFor } from '../../src/train/hyperparams.ts';
import { fitMemory, planMemory } from '../../src/train/memory.ts';
import { tinyConfig } from '../model/tiny.ts';

const GiB = 1 << 30;
/** Llama-3.2-1B shapes. */
const big: LlamaConfig = {
  arch: 'llama', hidden: 2048, layers: 16, heads: 32, kvHeads: 8, headDim: 64, ffn: 8192, vocab: 128256, maxPos: 131072,
  ropeTheta: 500000, ropeStyle: 'half', ropeScaling: null, eps: 1e-5, tiedEmbeddings: true, attnBias: false, bos: 128000, eos: [128001],
};

test('auto: every field is chosen with one explanation line, from dataset size and lengths', () => {
  const { resolved: hp, explanations, trainSize, plan } = resolveHyperparameters({}, { datasetSize: 40, tokensPerExample: { mean: 50, max: 90 }, model: tinyConfig({ maxPos: 512 }) });
  assert.equal(trainSize, 40, '< 50 examples: no validation split');
  assert.equal(hp.validationFraction, 0);
  assert.equal(hp.seqLen, 96, 'longest example rounded up to 8');
  assert.equal(hp.quant, 'f32');
  assert.equal(hp.rank, 8);
  assert.equal(hp.alpha, 16);
  assert.equal(hp.dropout, 0.05);
  assert.deepEqual(hp.targets, ['q', 'k', 'v', 'o', 'gate', 'up', 'down']);
  assert.equal(hp.batchSize, 4);
  assert.equal(hp.gradAccum, 1);
  assert.equal(hp.epochs, 5);
  assert.equal(hp.maxSteps, stepsFor(40, 4, 1, 5).steps);
  assert.equal(hp.maxSteps, 50);
  assert.equal(hp.learningRate, 1e-3);
  assert.equal(hp.schedule, 'cosine');
  assert.equal(hp.warmupSteps, 3);
  assert.equal(hp.evalInterval, 0);
  assert.equal(hp.checkpointInterval, 10);
  assert.equal(hp.seed, 42);
  assert.equal(hp.checkpointing, false);
  assert.ok(plan.fits);
  for (const k of ['validationFraction', 'seqLen', 'quant', 'rank', 'alpha', 'dropout', 'targets', 'batchSize', 'gradAccum', 'checkpointing', 'epochs',
    'maxSteps', 'learningRate', 'schedule', 'warmupSteps', 'weightDecay', 'maxGradNorm', 'evalInterval', 'checkpointInterval', 'seed']) {
    assert.equal(explanations.filter((e) => e.startsWith(`${k}:`)).length, 1, `one explanation for ${k}: ${explanations.join(' | ')}`);
  }
});

test('auto: larger datasets get a validation split, accumulation, fewer epochs; big models a lower LR', () => {
  const r = resolveHyperparameters({}, { datasetSize: 3000, tokensPerExample: { mean: 200, max: 700 }, model: tinyConfig({ maxPos: 1024 }) });
  assert.equal(r.resolved.validationFraction, 0.1);
  assert.equal(r.trainSize, 2700);
  assert.equal(r.resolved.seqLen, 704);
  assert.equal(r.resolved.batchSize, 4, 'at most 4096 tokens per micro-batch');
  assert.equal(r.resolved.gradAccum, 4, 'effective batch 16');
  assert.equal(r.resolved.epochs, 2);
  assert.equal(r.resolved.dropout, 0);
  assert.ok(r.resolved.evalInterval > 0);
  const b = resolveHyperparameters({}, { datasetSize: 500, tokensPerExample: 100, model: big, adapterLimits: { budgetBytes: 6 * GiB, maxBufferSize: 2 * GiB, maxStorageBufferBindingSize: 2 * GiB } });
  assert.equal(b.resolved.learningRate, 2e-4);
  assert.equal(b.resolved.quant, 'f16', 'f32 1B base (4.7 GiB) is over half of 6 GiB; f16 (2.3 GiB) is not');
  assert.ok(b.explanations.some((e) => e.startsWith('quant: f16')));
});

test('explicit values are kept; maxSteps alone derives epochs; invalid input is refused clearly', () => {
  const r = resolveHyperparameters({ epochs: 'auto', batchSize: 2, gradAccum: 3, learningRate: 5e-4, schedule: 'linear', warmupSteps: 0, rank: 4, alpha: 4, dropout: 0, targets: ['v', 'q'], quant: 'q4', maxSteps: 7, seed: 9, seqLen: 32 },
    { datasetSize: 10, tokensPerExample: 20, model: tinyConfig() });
  const hp = r.resolved;
  assert.deepEqual([hp.batchSize, hp.gradAccum, hp.learningRate, hp.schedule, hp.warmupSteps, hp.rank, hp.alpha, hp.dropout, hp.quant, hp.maxSteps, hp.seed, hp.seqLen],
    [2, 3, 5e-4, 'linear', 0, 4, 4, 0, 'q4', 7, 9, 32]);
  assert.deepEqual(hp.targets, ['q', 'v'], 'targets in canonical order');
  assert.equal(hp.epochs, 5, '7 steps × 3 micro-batches over 5 micro-batches per epoch');
  assert.ok(!r.explanations.some((e) => e.startsWith('rank:')), 'no explanation for explicit values');
  const bad = (input: object, re: RegExp) => assert.throws(() => resolveHyperparameters(input, { datasetSize: 10, tokensPerExample: 20, model: tinyConfig() }),
    (e: Error) => e instanceof HyperparameterError && re.test(e.message), `expected ${re}`);
  bad({ rank: 0 }, /rank must be an integer in 1\.\.32/);
  bad({ rank: 33 }, /rank must be an integer in 1\.\.32/);
  bad({ learningRate: -1 }, /learningRate must be a number in \(0, 1\]/);
  bad({ schedule: 'step' }, /schedule must be constant, linear, cosine/);
  bad({ targets: ['q', 'x'] }, /unknown LoRA target 'x'/);
  bad({ quant: 'q2' }, /quant must be f32, f16, q8 or q4/);
  bad({ seqLen: 100 }, /seqLen must be an integer in 2\.\.64/);
  bad({ lr: 1 }, /unknown hyperparameter 'lr'/);
  bad({ warmupSteps: 50, maxSteps: 10 }, /warmupSteps 50 must be smaller than the run's 10 steps/);
});

test('learningRateAt: warmup, constant, linear and cosine decay', () => {
  const base = { learningRate: 1, warmupSteps: 4, maxSteps: 14 };
  for (const schedule of ['constant', 'linear', 'cosine'] as const) {
    const hp = { ...base, schedule };
    assert.deepEqual([1, 2, 3, 4].map((t) => learningRateAt(t, hp)), [0.25, 0.5, 0.75, 1], `${schedule} warmup`);
    assert.equal(learningRateAt(5, hp), 1, `${schedule}: full rate right after warmup`);
  }
  const lin = { ...base, schedule: 'linear' as const }, cos = { ...base, schedule: 'cosine' as const };
  assert.equal(learningRateAt(10, { ...base, schedule: 'constant' }), 1);
  assert.ok(Math.abs(learningRateAt(10, lin) - 0.5) < 1e-12, 'linear: halfway through the decay');
  assert.ok(Math.abs(learningRateAt(10, cos) - 0.5) < 1e-12, 'cosine: halfway = 0.5');
  assert.ok(Math.abs(learningRateAt(7, cos) - 0.5 * (1 + Math.cos(Math.PI * 0.2))) < 1e-12);
  assert.ok(learningRateAt(14, lin) > 0 && learningRateAt(14, cos) > 0, 'the last step still learns');
  for (let t = 5; t < 14; t++) assert.ok(learningRateAt(t + 1, cos) < learningRateAt(t, cos), 'cosine decreases');
  assert.equal(learningRateAt(3, { learningRate: 2, warmupSteps: 0, maxSteps: 10, schedule: 'constant' }), 2);
});

test('planner adapts in order: checkpointing, then shorter sequences, then smaller batch; refuses with advice', () => {
  const lim = { budgetBytes: 3 * GiB, maxBufferSize: 2 * GiB, maxStorageBufferBindingSize: 2 * GiB };
  const s = { quant: 'q4' as const, rank: 8, alpha: 16, dropout: 0, targets: ['q', 'v'] as ('q' | 'v')[], batchSize: 8, seqLen: 2048, checkpointing: false, gradAccum: 1 };
  const p0 = planMemory(big, s, lim);
  assert.ok(!p0.fits && p0.advice.length > 0);
  const f = fitMemory(big, s, lim, { minSeqLen: 256 });
  assert.ok(f.ok, f.reason);
  assert.ok(f.messages[0].startsWith('checkpointing: on'), f.messages.join('\n'));
  assert.ok(f.messages.some((m) => m.startsWith('seqLen: 1024')), f.messages.join('\n'));
  const firstBatch = f.messages.findIndex((m) => m.startsWith('batchSize'));
  const lastSeq = f.messages.map((m) => m.startsWith('seqLen')).lastIndexOf(true);
  assert.ok(firstBatch < 0 || firstBatch > lastSeq, 'batch only after sequences reached their floor');
  assert.equal(f.hp.batchSize * f.hp.gradAccum >= 8, true, 'effective batch kept');
  assert.ok(planMemory(big, f.hp, lim).fits);
  // a 64 MiB budget cannot hold the q4 base (≈ 0.7 GiB)
  const no = fitMemory(big, s, { ...lim, budgetBytes: 64 << 20 });
  assert.equal(no.ok, false);
  assert.match(no.reason!, /cannot fit on this device.*base model alone is too large/);
  // a binding limit: one (N,F) activation over 128 MiB
  const bind = planMemory(big, { ...s, batchSize: 4, seqLen: 2048, checkpointing: true }, { maxStorageBufferBindingSize: 128 << 20, maxBufferSize: 256 << 20 });
  assert.ok(bind.advice.some((a) => /maxStorageBufferBindingSize/.test(a)), bind.advice.join('\n'));
  // resolveHyperparameters refuses with the same reason
  assert.throws(() => resolveHyperparameters({ quant: 'q4' }, { datasetSize: 100, tokensPerExample: 100, model: big, adapterLimits: { budgetBytes: 64 << 20 } }),
    (e: Error) => e instanceof HyperparameterError && /cannot fit/.test(e.message));
});
