// Base-model size check (src/model/fit.ts): sizes in f32 / q8 / q4 agree with the loaders'
// parameter counts and the training planner; configs too big for the adapter's buffer limits or
// the memory budget are refused from the config alone, with an error naming the model, the
// limit and the quantization that would fit.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { baseMemory, checkFits, checkModelFits, describeBaseMemory, fitReport } from '../../src/model/fit.ts';
import { loadModel } from '../../src/model/load.ts';
import { nodeSource } from '../../src/model/source-node.ts';
import type { LlamaConfig } from '../../src/model/config.ts';
import { planMemory } from '../../src/train/memory.ts';
import { S260K_GGUF, TS656K, rejects } from './fixtures.ts';

const MiB = 1 << 20, GiB = 1 << 30;
const DEFAULTS = { maxBufferSize: 256 * MiB, maxStorageBufferBindingSize: 128 * MiB };

const llama = (o: Partial<LlamaConfig>): LlamaConfig => ({
  arch: 'llama', hidden: 4096, layers: 32, heads: 32, kvHeads: 32, headDim: 128, ffn: 11008, vocab: 32000, maxPos: 4096,
  ropeTheta: 10000, ropeStyle: 'half', ropeScaling: null, eps: 1e-5, tiedEmbeddings: false, attnBias: false, bos: 1, eos: [2], ...o,
});
const LLAMA7B = llama({});
// SmolLM2-360M's shape
const SMOL360 = llama({ hidden: 960, layers: 32, heads: 15, kvHeads: 5, headDim: 64, ffn: 2560, vocab: 49152, tiedEmbeddings: true });

test('fit: params and bytes of the real models match the loaders and the planner', async () => {
  for (const path of [TS656K, S260K_GGUF]) {
    const m = await loadModel(await nodeSource(path));
    const mem = baseMemory(m.config);
    assert.equal(mem.params, m.source.params, path);
    for (const q of ['f32', 'q8', 'q4'] as const) {
      const plan = planMemory(m.config, { quant: q, rank: 4, alpha: 8, dropout: 0, targets: ['q', 'v'], batchSize: 1, seqLen: 8, checkpointing: false, gradAccum: 1 });
      assert.equal(mem.bytes[q], plan.bytes.baseWeights, `${path} ${q}`);
    }
    assert.ok(mem.bytes.f32 > mem.bytes.q8 && mem.bytes.q8 > mem.bytes.q4);
    checkFits(m.config, 'f32', DEFAULTS, 64 * MiB, path);
  }
  const ts = await loadModel(await nodeSource(TS656K));
  assert.match(describeBaseMemory(ts.config), /^656\.0K params · f32 2\.\d MiB · f16 1\.\d MiB · q8 \d+\.\d KiB · q4 \d+\.\d KiB$/);
  assert.equal(baseMemory(LLAMA7B).params, 6738415616); // Llama-2-7B
});

test('fit: a 7B base does not fit the default limits in f32; f16 would, within a 16 GiB budget', () => {
  const e = (() => { try { checkFits(LLAMA7B, 'f32', DEFAULTS, 16 * GiB, 'meta-llama/Llama-2-7b-hf'); } catch (x) { return x as Error; } })();
  assert.ok(e, 'must throw');
  assert.match(e.message, /^meta-llama\/Llama-2-7b-hf does not fit this GPU as f32/);
  assert.match(e.message, /embed needs a 500\.0 MiB buffer in f32, this adapter allows 256\.0 MiB \(maxBufferSize\)/);
  assert.match(e.message, /l\d+\.wGate is 172\.0 MiB in f32 and is bound whole, this adapter allows 128\.0 MiB/);
  assert.match(e.message, /the base needs 25\.\d\d GiB in f32, the memory budget allows 16\.00 GiB/);
  assert.match(e.message, /f16 would fit \(12\.\d\d GiB\)/);
  const r = checkFits(LLAMA7B, 'q8', DEFAULTS, 16 * GiB);
  assert.deepEqual(r.fitsIn, ['f16', 'q8', 'q4']);
});

test('fit: too big for a 3 GiB budget even as q4 → "choose a smaller model"', () => {
  // Llama-2-7B as q4: 6.74e9 params × 20 bytes / 32 = 3.9 GiB
  assert.throws(() => checkFits(LLAMA7B, 'q4', DEFAULTS, 3 * GiB, 'llama-7b'),
    /^Error: llama-7b does not fit this GPU as q4: the base needs 3\.9\d GiB in q4, the memory budget allows 3\.00 GiB\..*No quantization is smaller than q4 — choose a smaller model/);
  assert.throws(() => checkFits(LLAMA7B, 'f32', DEFAULTS, 3 * GiB, 'llama-7b'), /It does not fit even as q4 \(the base needs 3\.9\d GiB in q4.*\) — choose a smaller model\.$/);
  const r = fitReport(LLAMA7B, 'q4', DEFAULTS, 3 * GiB);
  assert.equal(r.fits, false);
  assert.deepEqual(r.fitsIn, []);
  assert.ok(fitReport(LLAMA7B, 'q4', DEFAULTS, 4 * GiB).fits);
});

test('fit: limits only (no budget): a model whose f32 embedding is over maxBufferSize → f16 would fit', () => {
  // 49152 × 960 f32 = 180 MiB: fine for the defaults (embedding bound in row chunks) ...
  checkFits(SMOL360, 'f32', DEFAULTS);
  // ... but not for an adapter with a 128 MiB maxBufferSize
  assert.throws(() => checkFits(SMOL360, 'f32', { maxBufferSize: 128 * MiB, maxStorageBufferBindingSize: 128 * MiB }, undefined, 'smol-360m'),
    /smol-360m does not fit this GPU as f32: embed needs a 180\.0 MiB buffer in f32, this adapter allows 128\.0 MiB \(maxBufferSize\).*f16 would fit \(690\.\d MiB\)/);
});

test('fit: checkModelFits reads only the config and names the source', async () => {
  const r = await checkModelFits(await nodeSource(TS656K), 'q4', DEFAULTS, 1 * MiB);
  assert.ok(r.fits);
  await rejects(checkModelFits(await nodeSource(TS656K), 'f32', DEFAULTS, 1 * MiB), /tinystories-656k does not fit this GPU as f32: the base needs 2\.\d MiB in f32, the memory budget allows 1\.0 MiB/, /q8 would fit/);
});
