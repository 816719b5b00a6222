// src/export/adapter.ts: llama.cpp's q/k permutation (definition, inverse, and that a 'pairs'
// model with permuted q/k — and a re-oriented adapter — computes exactly what the HF model does),
// PEFT tensor names, fit checks, and adapters from trainer results.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import type { LoraConfig } from '../../src/model/config.ts';
import { loraKey } from '../../src/model/lora.ts';
import { modelShapeSignature } from '../../src/store/adapters.ts';
import { type PeftNamedAdapter, adapterFromParams, adapterFromTrained, fitAdapter, parsePeftName, peftName, permuteRows, reorient } from '../../src/export/adapter.ts';
import { ALL_TARGETS, randomLora, tinyConfig, tinyWeights } from '../model/tiny.ts';
import { rejects } from '../model/fixtures.ts';
import { assertClose } from '../util.ts';
import { randomIds, tokenLosses, toPairs } from './fixtures.ts';

test('permuteRows is llama.cpp permute(): reshape(n_head, 2, HS/2, cols).swapaxes(1, 2), and "half" undoes it', () => {
  const nHead = 3, HS = 6, cols = 2;
  const m = Float32Array.from({ length: nHead * HS * cols }, (_, i) => i);
  const p = permuteRows(m, nHead, HS, cols, 'pairs');
  // numpy: out[h, j, s, :] = in[h, s, j, :]
  for (let h = 0; h < nHead; h++) {
    for (let j = 0; j < HS / 2; j++) {
      for (let s = 0; s < 2; s++) {
        for (let c = 0; c < cols; c++) {
          assert.equal(p[((h * HS) + j * 2 + s) * cols + c], m[((h * HS) + s * (HS / 2) + j) * cols + c]);
        }
      }
    }
  }
  assert.deepEqual(permuteRows(p, nHead, HS, cols, 'half'), m);
  assert.notDeepEqual(p, m);
  assert.throws(() => permuteRows(m, nHead, HS, 3, 'pairs'), /not \(3·6\) × 3/);
});

test('a llama.cpp-permuted (pairs) model and a re-oriented adapter compute what the HF model and adapter do', () => {
  const cfg = tinyConfig();
  const w = tinyWeights(cfg, 3);
  const lora: LoraConfig = { rank: 4, alpha: 8, dropout: 0, targets: ALL_TARGETS };
  const params = randomLora(cfg, lora, 5, 0.1);
  const hf = adapterFromParams(cfg, lora, params, { name: 'a', nameOrPath: 'org/tiny', format: 'hf' });
  const pairs = toPairs(cfg, w);
  const toP = reorient(hf, pairs.cfg, 'pairs');
  assert.equal(toP.base.ropeStyle, 'pairs');
  assert.equal(toP.tensors.get('0.v'), hf.tensors.get('0.v'), 'non-q/k targets are shared, not copied');
  assert.notDeepEqual(toP.tensors.get('1.q')!.B, hf.tensors.get('1.q')!.B);
  assert.equal(toP.tensors.get('1.q')!.A, hf.tensors.get('1.q')!.A, 'lora_A is unaffected');
  const ids = randomIds(cfg.vocab, 12, 9);
  const ref = tokenLosses(cfg, w, { config: lora, params }, ids);
  const got = tokenLosses(pairs.cfg, pairs.w, { config: lora, params: toP.tensors }, ids);
  assertClose('pairs model + permuted adapter', got, ref, { atol: 1e-9, rtol: 1e-9 });
  const base = tokenLosses(cfg, w, null, ids);
  assert.ok(Math.max(...ref.map((x, i) => Math.abs(x - base[i]))) > 1e-3, 'the adapter changes the output');
  // and back
  const back = reorient(toP, cfg, 'half');
  for (const [k, p] of hf.tensors) assert.deepEqual(back.tensors.get(k)!.B, p.B, k);
  // qwen2 has no permutation
  assert.throws(() => reorient(hf, tinyConfig({ arch: 'qwen2' }), 'pairs'), /qwen2 model has no llama\.cpp q\/k permutation/);
});

test('PEFT names: parse every accepted variant, reject others', () => {
  assert.equal(peftName(3, 'gate', 'B'), 'base_model.model.model.layers.3.mlp.gate_proj.lora_B.weight');
  for (const n of [
    'base_model.model.model.layers.3.mlp.gate_proj.lora_B.weight',
    'base_model.model.model.layers.3.mlp.gate_proj.lora_B.default.weight',
    'model.layers.3.mlp.gate_proj.lora_B.weight',
    'layers.3.mlp.gate_proj.lora_B.weight',
  ]) assert.deepEqual(parsePeftName(n), { layer: 3, target: 'gate', which: 'B' }, n);
  for (const n of [
    'base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector.default.weight',
    'base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias',
    'base_model.model.model.embed_tokens.lora_embedding_A',
    'base_model.model.lm_head.lora_A.weight',
    'base_model.model.model.layers.0.mlp.q_proj.lora_A.weight',
  ]) assert.equal(parsePeftName(n), null, n);
});

test('fitAdapter / adapterFromParams reject an adapter for another base, naming the tensor and sizes', async () => {
  const cfg = tinyConfig();
  const lora: LoraConfig = { rank: 2, alpha: 4, dropout: 0, targets: ['q', 'v'] };
  const params = randomLora(cfg, lora, 1);
  const a = adapterFromParams(cfg, lora, params, { name: 'x' });
  assert.equal(a.base.shape, modelShapeSignature(cfg));
  const other = tinyConfig({ ffn: 128 });
  await rejects(() => fitAdapter(a, other), /adapter 'x' was trained on a different base model \(shape llama:C64:L2:H4:KV2:HS16:F96:V256\) than this one \(llama:C64:L2:H4:KV2:HS16:F128:V256\)/);
  const bad = new Map(params);
  bad.set(loraKey(1, 'v'), { A: params.get('1.v')!.A, B: new Float32Array(3) });
  await rejects(() => adapterFromParams(cfg, lora, bad, { name: 'y' }), /adapter 'y': layer 1 v_proj lora_B has 3 values, the base model \(llama, 2 layers, hidden 64, 4×16 heads, 2 kv heads, ffn 96\) needs \(32, 2\) = 64/);
  bad.delete(loraKey(1, 'v'));
  await rejects(() => adapterFromParams(cfg, lora, bad, { name: 'z' }), /layer 1 v_proj are missing/);
});

test('adapterFromTrained: PEFT-named f32 tensors (trainer result / stored record) in the model orientation', async () => {
  const cfg = tinyConfig({ ropeStyle: 'pairs' });
  const lora: LoraConfig = { rank: 2, alpha: 4, dropout: 0.1, targets: ['q', 'k', 'down'] };
  const params = randomLora(cfg, lora, 2);
  const tensors: PeftNamedAdapter['tensors'] = [];
  for (const [key, p] of params) {
    const [l, t] = key.split('.');
    tensors.push({ name: peftName(Number(l), t as 'q', 'A'), shape: [2, p.A.length / 2], dtype: 'f32', data: p.A });
    tensors.push({ name: peftName(Number(l), t as 'q', 'B'), shape: [p.B.length / 2, 2], dtype: 'f32', data: p.B.buffer as ArrayBuffer });
  }
  const a = adapterFromTrained({
    name: 'run', baseModel: { id: 'stories.gguf', shape: modelShapeSignature(cfg) },
    lora: { r: 2, lora_alpha: 4, lora_dropout: 0.1 }, hyperparameters: { learningRate: 1e-3 }, tensors,
  }, cfg);
  assert.deepEqual(a.lora, { rank: 2, alpha: 4, dropout: 0.1, targets: ['q', 'k', 'down'] });
  assert.equal(a.base.ropeStyle, 'pairs');
  for (const [k, p] of params) {
    assert.deepEqual(a.tensors.get(k)!.A, p.A);
    assert.deepEqual(a.tensors.get(k)!.B, p.B);
  }
  // recorded HF orientation on a pairs model: permuted on the way in
  const b = adapterFromTrained({
    name: 'run', baseModel: { id: 'x', shape: modelShapeSignature(cfg), ropeStyle: 'half' }, lora: { r: 2, lora_alpha: 4 }, tensors,
  }, cfg);
  assert.deepEqual(b.tensors.get('0.q')!.B, permuteRows(params.get('0.q')!.B, cfg.heads, cfg.headDim, 2, 'pairs'));
  await rejects(() => adapterFromTrained({ name: 'r', baseModel: { id: 'x', shape: 'llama:C1' }, lora: { r: 2, lora_alpha: 4 }, tensors }, cfg), /different base model \(shape llama:C1, x\)/);
});
