// The GPU model (src/model/llama.ts) against the CPU reference (src/ref/model.ts) on a tiny random
// model (C=64, L=2, NH=4, NKV=2, HS=16, F=96, V=256, B=2, T=16, R=4, padding in sequence 1):
// LoRA with B=0 is bitwise the base model; loss and all LoRA gradients match the reference for
// f32/q8/q4 bases (the reference runs on the dequantized weights), checkpointing on/off bitwise
// equal; rope 'pairs' + q/k/v bias + untied lm_head; a 20-step AdamW run follows the reference.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import type { LlamaConfig, LlamaWeights, LoraConfig } from '../../src/model/config.ts';
import { dequantizedWeights, LlamaModel, type ModelOptions } from '../../src/model/llama.ts';
import type { LoraParams } from '../../src/model/lora.ts';
import type { QFormat } from '../../src/model/quant.ts';
import { ref_logits, ref_loss, ref_train } from '../../src/ref/model.ts';
import { assertClose, testGpu, TOL } from '../util.ts';
import { ALL_TARGETS, randomLora, tinyBatch, tinyConfig, tinyWeights } from './tiny.ts';
import { xentScratchBytes } from '../../src/ops/xent.ts';

const B = 2, T = 16;
const LORA: LoraConfig = { rank: 4, alpha: 8, dropout: 0.1, targets: ALL_TARGETS };
const OPT = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxNorm: 1 };

async function model(cfg: LlamaConfig, w: LlamaWeights, opts: Partial<ModelOptions> = {}): Promise<LlamaModel> {
  return new LlamaModel(await testGpu(), cfg, w, { quant: 'f32', lora: LORA, batch: B, seq: T, seed: 11, xentChunk: 100, ...opts });
}

/** Each tensor within atol = 2e-5·max|ref| + rtol 1e-3 (f32 GPU vs float64 reference). */
function assertGradsClose(name: string, got: LoraParams, ref: LoraParams<Float64Array>): void {
  assert.deepEqual([...got.keys()].sort(), [...ref.keys()].sort(), `${name}: adapters`);
  for (const [key, r] of ref) {
    for (const x of ['A', 'B'] as const) {
      const max = r[x].reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assert.ok(max > 0, `${name} d${x} ${key} is all zero in the reference`);
      assertClose(`${name} d${x} ${key}`, got.get(key)![x], r[x], { atol: 2e-5 * max, rtol: 1e-3 });
    }
  }
}

function assertBitwise(name: string, a: ArrayLike<number>, b: ArrayLike<number>): void {
  assert.equal(a.length, b.length, `${name}: lengths`);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${name}: differs at ${i}: ${a[i]} vs ${b[i]}`);
  }
}

test('B = 0: LoRA logits are bitwise the base model; base logits match ref_logits', async () => {
  const cfg = tinyConfig();
  const w = tinyWeights(cfg, 1);
  const seqs = [Array.from({ length: T }, (_, i) => (i * 37 + 5) % cfg.vocab), Array.from({ length: T - 5 }, (_, i) => (i * 11 + 3) % cfg.vocab)];
  const base = await model(cfg, w, { lora: { ...LORA, targets: [] } });
  const withLora = await model(cfg, w);
  const zb = await base.logits(seqs), zl = await withLora.logits(seqs);
  const lora = await withLora.getLora();
  assert.ok([...lora.values()].every((p) => p.B.every((x) => x === 0) && p.A.some((x) => x !== 0)), 'init: A random, B = 0');
  seqs.forEach((s, b) => {
    assertBitwise(`logits seq ${b}`, zl[b], zb[b]);
    assertClose(`logits seq ${b} vs ref`, zb[b], ref_logits(cfg, w, s), TOL.f32sum);
  });
  base.destroy();
  withLora.destroy();
});

for (const quant of ['f32', 'q8', 'q4'] as QFormat[]) {
  test(`loss and all LoRA grads match the reference (${quant} base, dropout, checkpointing on = off bitwise)`, async () => {
    const cfg = tinyConfig();
    const w = tinyWeights(cfg, 2);
    const init = randomLora(cfg, LORA, 3);
    const batch = tinyBatch(cfg, B, T, 4);
    const ref = ref_loss(cfg, dequantizedWeights(cfg, w, quant), { config: LORA, params: init, seed: 11, step: 5, train: true }, batch, { grads: true });
    const runs = [];
    for (const checkpointing of [false, true]) {
      const m = await model(cfg, w, { quant, init, checkpointing });
      m.step = 5;
      m.setBatch(batch);
      m.forward();
      m.backward();
      const r = await m.readLoss();
      runs.push({ ...r, grads: await m.getGrads() });
      m.destroy();
    }
    assertClose('loss', [runs[0].loss], [ref.loss], TOL.f32sum);
    assert.equal(runs[0].tokenAccuracy, ref.tokenAccuracy);
    assertGradsClose(quant, runs[0].grads, ref.grads);
    assert.equal(runs[1].loss, runs[0].loss, 'checkpointing: same loss');
    for (const [key, g] of runs[0].grads) {
      assertBitwise(`checkpointing dA ${key}`, runs[1].grads.get(key)!.A, g.A);
      assertBitwise(`checkpointing dB ${key}`, runs[1].grads.get(key)!.B, g.B);
    }
  });
}

test('variant: rope pairs + llama3 scaling, q/k/v bias, untied lm_head, rslora, some targets', async () => {
  const cfg = tinyConfig({
    arch: 'qwen2', ropeStyle: 'pairs', attnBias: true, tiedEmbeddings: false, ropeTheta: 500000,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8 },
  });
  const lora: LoraConfig = { rank: 3, alpha: 6, dropout: 0, targets: ['q', 'k', 'v', 'down'], rslora: true };
  const w = tinyWeights(cfg, 5);
  const init = randomLora(cfg, lora, 6);
  const batch = tinyBatch(cfg, B, T, 7);
  const ref = ref_loss(cfg, w, { config: lora, params: init, seed: 11, step: 1, train: true }, batch, { grads: true });
  const m = await model(cfg, w, { lora, init });
  m.setBatch(batch);
  m.forward();
  m.backward();
  const r = await m.readLoss();
  assertClose('loss', [r.loss], [ref.loss], TOL.f32sum);
  assertGradsClose('variant', await m.getGrads(), ref.grads);
  const z = await m.logits([Array.from(batch.ids.subarray(0, T))]);
  assert.ok(z[0].every(Number.isFinite));
  m.destroy();
});

test('20 AdamW steps lower the loss and follow the reference trajectory', async () => {
  const cfg = tinyConfig();
  const w = tinyWeights(cfg, 8);
  const batches = [tinyBatch(cfg, B, T, 9), tinyBatch(cfg, B, T, 10)];
  const batchAt = (t: number) => batches[t % 2];
  const m = await model(cfg, w, { seed: 12 });
  const init = await m.getLora();
  const ref = ref_train(cfg, w, LORA, init, batchAt, OPT, 20, 12);
  const losses: number[] = [];
  for (let t = 1; t <= 20; t++) {
    const r = await m.trainStep(batchAt(t), { ...OPT, t });
    losses.push(r.loss);
    assertClose(`loss at step ${t}`, [r.loss], [ref.losses[t - 1]], { atol: 1e-4, rtol: 1e-4 });
    assert.equal(r.tokenAccuracy, ref.accuracies[t - 1], `token accuracy at step ${t}`);
  }
  assert.ok(losses[19] < losses[0] - 0.5 && losses[18] < losses[1] - 0.5, `loss ${losses[0]} → ${losses[19]}`);
  const final = await m.getLora();
  for (const [key, p] of ref.params) {
    assertClose(`final A ${key}`, final.get(key)!.A, p.A, { atol: 1e-4, rtol: 1e-3 });
    assertClose(`final B ${key}`, final.get(key)!.B, p.B, { atol: 1e-4, rtol: 1e-3 });
  }
  m.destroy();
});

test('memory report: categories add up, match gpu.allocated, checkpointing saves activations', async () => {
  const gpu = await testGpu();
  const cfg = tinyConfig({ layers: 4 });
  const w = tinyWeights(cfg, 13);
  const reports = [];
  for (const checkpointing of [false, true]) {
    const before = gpu.totalAllocated;
    const m = await model(cfg, w, { quant: 'q8', checkpointing });
    const r = m.memoryReport();
    const xentScratch = xentScratchBytes(B * T, cfg.hidden, cfg.vocab, 100, true);
    assert.equal(gpu.totalAllocated - before, r.baseWeights + r.loraAndOptimizer + r.activations + r.scratch - xentScratch);
    assert.equal(r.total, r.baseWeights + r.loraAndOptimizer + r.activations + r.scratch);
    assert.equal(r.activations, r.table.reduce((a, t) => a + t.bytes, 0));
    assert.equal(r.loraAndOptimizer, 4 * 4 * m.layout.floats);
    m.destroy();
    assert.equal(gpu.totalAllocated, before, 'destroy frees everything');
    reports.push(r);
  }
  const [off, on] = reports;
  assert.equal(off.checkpointSaved, 0);
  assert.equal(on.activationsWithoutCheckpointing, off.activations);
  assert.ok(on.checkpointSaved > 0.5 * off.activations, `saved ${on.checkpointSaved} of ${off.activations}`);
  console.log(`  memory (q8, L=4, B=${B}, T=${T}, checkpointing on): ${JSON.stringify({ ...on, table: `${on.table.length} tensors` })}`);
});
