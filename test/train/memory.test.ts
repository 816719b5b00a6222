// The memory planner's prediction against what LlamaModel allocates (memoryReport) on the real
// GPU, for several configs and settings: every category equal, and equal to what the constructor
// allocated (gpu.totalAllocated) plus the lazily allocated cross-entropy scratch.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { LlamaModel } from '../../src/model/llama.ts';
import type { LoraTarget } from '../../src/model/config.ts';
import type { QFormat } from '../../src/model/quant.ts';
import { planMemory } from '../../src/train/memory.ts';
import { testGpu } from '../util.ts';
import { ALL_TARGETS, tinyConfig, tinyWeights } from '../model/tiny.ts';
import { xentScratchBytes } from '../../src/ops/xent.ts';

const cases: { name: string; over: object; quant: QFormat; targets: LoraTarget[]; B: number; T: number; ckpt: boolean; rank: number }[] = [
  { name: 'f32 all targets', over: {}, quant: 'f32', targets: ALL_TARGETS, B: 2, T: 16, ckpt: false, rank: 4 },
  { name: 'q8 checkpointing', over: { layers: 3 }, quant: 'q8', targets: ALL_TARGETS, B: 3, T: 24, ckpt: true, rank: 8 },
  { name: 'q4 q,v untied bias', over: { tiedEmbeddings: false, attnBias: true, hidden: 96, heads: 6 }, quant: 'q4', targets: ['q', 'v'], B: 1, T: 40, ckpt: false, rank: 2 },
  { name: 'no targets', over: {}, quant: 'f32', targets: [], B: 4, T: 8, ckpt: true, rank: 4 },
];

for (const c of cases) {
  test(`planMemory equals memoryReport: ${c.name}`, async () => {
    const gpu = await testGpu();
    const cfg = tinyConfig(c.over);
    const w = tinyWeights(cfg, 3);
    const before = gpu.totalAllocated;
    const lora = { rank: c.rank, alpha: 2 * c.rank, dropout: 0, targets: c.targets };
    const model = new LlamaModel(gpu, cfg, w, { quant: c.quant, lora, batch: c.B, seq: c.T, checkpointing: c.ckpt, seed: 1 });
    const allocated = gpu.totalAllocated - before;
    const rep = model.memoryReport();
    const plan = planMemory(cfg, { quant: c.quant, rank: c.rank, alpha: 2 * c.rank, dropout: 0, targets: c.targets, batchSize: c.B, seqLen: c.T, checkpointing: c.ckpt, gradAccum: 1 }, gpu.info.limits);
    assert.equal(plan.bytes.baseWeights, rep.baseWeights, 'baseWeights');
    assert.equal(plan.bytes.loraAndOptimizer, rep.loraAndOptimizer, 'loraAndOptimizer');
    assert.equal(plan.bytes.activations, rep.activations, 'activations');
    assert.equal(plan.bytes.scratch, rep.scratch, 'scratch');
    assert.equal(plan.modelTotal, rep.total, 'total');
    assert.equal(plan.trainableParams, rep.trainableParams, 'trainable params');
    assert.equal(plan.bytes.accumulation, 0);
    // what the constructor allocated: everything but the cross-entropy scratch (allocated on the first forward)
    const N = c.B * c.T, xent = xentScratchBytes(N, cfg.hidden, cfg.vocab, model.opts.xentChunk, true);
    assert.equal(allocated, plan.modelTotal - xent, 'gpu.allocated after construction');
    assert.ok(plan.fits);
    model.destroy();
  });
}
