// src/export/peft.ts: PEFT export (exact adapter_config.json fields, key names, shapes, dtypes,
// HF orientation for GGUF bases) and import (a hand-written PEFT-layout directory with key
// variants, rsLoRA, layers_to_transform, round trips, and every clear error).
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import type { LoraConfig } from '../../src/model/config.ts';
import { loraScale } from '../../src/model/config.ts';
import { parseSafetensors, writeSafetensors, type SafetensorsInput } from '../../src/model/safetensors.ts';
import { memorySource } from '../../src/model/source.ts';
import { adapterFromParams, memorySink, permuteRows } from '../../src/export/adapter.ts';
import { exportPeft, importPeft, peftConfigJson } from '../../src/export/peft.ts';
import { ALL_TARGETS, randomLora, tinyConfig } from '../model/tiny.ts';
import { json, rejects } from '../model/fixtures.ts';
import { randn32 } from '../util.ts';

const cfg = tinyConfig(); // C64 L2 NH4 NKV2 HS16 F96
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** A PEFT directory written by hand the way PEFT lays it out (not through exportPeft). */
function handPeft(opts: { names?: (l: number, mod: string, which: 'A' | 'B') => string; config?: Record<string, unknown>; r?: number; extra?: SafetensorsInput[]; skip?: (l: number, mod: string) => boolean } = {}) {
  const r = opts.r ?? 4;
  const mods: [string, string, number, number][] = [['self_attn', 'q_proj', 64, 64], ['self_attn', 'k_proj', 32, 64], ['mlp', 'down_proj', 64, 96]];
  const name = opts.names ?? ((l, mod, w) => `base_model.model.model.layers.${l}.${mod}.lora_${w}.weight`);
  const tensors: SafetensorsInput[] = [];
  const values = new Map<string, { A: Float32Array; B: Float32Array }>();
  let seed = 10;
  for (let l = 0; l < 2; l++) {
    for (const [parent, mod, OC, IC] of mods) {
      if (opts.skip?.(l, mod)) continue;
      const A = randn32(r * IC, seed++, 0.1), B = randn32(OC * r, seed++, 0.1);
      values.set(`${l}.${mod}`, { A, B });
      tensors.push({ name: name(l, `${parent}.${mod}`, 'A'), shape: [r, IC], data: A });
      tensors.push({ name: name(l, `${parent}.${mod}`, 'B'), shape: [OC, r], data: B });
    }
  }
  const config = {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', r, lora_alpha: 16, lora_dropout: 0.05, target_modules: ['k_proj', 'q_proj', 'down_proj'],
    bias: 'none', fan_in_fan_out: false, use_rslora: false, use_dora: false, base_model_name_or_path: 'org/tiny-llama', inference_mode: true,
    modules_to_save: null, rank_pattern: {}, alpha_pattern: {}, ...opts.config,
  };
  const files = new Map<string, Uint8Array>([
    ['adapter_config.json', json(config)],
    ['adapter_model.safetensors', writeSafetensors([...tensors, ...(opts.extra ?? [])], { format: 'pt' })],
  ]);
  return { files, values };
}

test('import: a hand-written PEFT directory (PEFT key layout) reads with the right config, targets and values', async () => {
  const { files, values } = handPeft();
  const a = await importPeft(memorySource('dl/my-adapter', files), cfg);
  assert.equal(a.name, 'my-adapter');
  assert.deepEqual(a.lora, { rank: 4, alpha: 16, dropout: 0.05, targets: ['q', 'k', 'down'] });
  assert.equal(a.base.nameOrPath, 'org/tiny-llama');
  assert.equal(a.base.ropeStyle, 'half');
  assert.equal(loraScale(a.lora), 4);
  assert.equal(a.tensors.size, 6);
  for (const [k, mod] of [['0.q', '0.q_proj'], ['1.k', '1.k_proj'], ['1.down', '1.down_proj']]) {
    assert.deepEqual(a.tensors.get(k)!.A, values.get(mod)!.A, k);
    assert.deepEqual(a.tensors.get(k)!.B, values.get(mod)!.B, k);
  }
  assert.deepEqual(a.notes, []);
});

test('import: key variants (.default adapter name, no base_model.model. prefix), rsLoRA and "all-linear"', async () => {
  const variants: ((l: number, mod: string, w: 'A' | 'B') => string)[] = [
    (l, mod, w) => `base_model.model.model.layers.${l}.${mod}.lora_${w}.default.weight`,
    (l, mod, w) => `model.layers.${l}.${mod}.lora_${w}.weight`,
  ];
  for (const names of variants) {
    const { files, values } = handPeft({ names, config: { use_rslora: true, target_modules: 'all-linear' } });
    const a = await importPeft(memorySource('v', files), cfg);
    assert.deepEqual(a.lora, { rank: 4, alpha: 16, dropout: 0.05, targets: ['q', 'k', 'down'], rslora: true });
    assert.equal(loraScale(a.lora), 8, 'rsLoRA scale alpha/√r');
    assert.deepEqual(a.tensors.get('1.down')!.B, values.get('1.down_proj')!.B);
  }
  // a regex target_modules: targets come from the weights
  const { files } = handPeft({ config: { target_modules: '.*\\.(q_proj|k_proj|down_proj)' } });
  const a = await importPeft(memorySource('re', files), cfg);
  assert.deepEqual(a.lora.targets, ['q', 'k', 'down']);
  assert.match(a.notes.join('\n'), /target_modules is the pattern/);
});

test('import: layers_to_transform leaves the other layers unadapted (zero), with a note', async () => {
  const { files } = handPeft({ config: { layers_to_transform: [1] }, skip: (l) => l === 0 });
  const a = await importPeft(memorySource('ltt', files), cfg);
  assert.equal(a.tensors.size, 6);
  assert.ok(a.tensors.get('0.q')!.A.every((x) => x === 0) && a.tensors.get('0.q')!.B.every((x) => x === 0));
  assert.ok(a.tensors.get('1.q')!.B.some((x) => x !== 0));
  assert.match(a.notes.join('\n'), /no LoRA tensors for 3 layer\/module pair\(s\) \(layers_to_transform \[1\]\): 0\.q_proj, 0\.k_proj, 0\.down_proj — left unadapted/);
});

test('import for a GGUF (pairs) base applies llama.cpp\'s permutation to q/k lora_B only', async () => {
  const { files, values } = handPeft();
  const pcfg = tinyConfig({ ropeStyle: 'pairs' });
  const a = await importPeft(memorySource('g', files), pcfg);
  assert.equal(a.base.ropeStyle, 'pairs');
  assert.deepEqual(a.tensors.get('0.q')!.B, permuteRows(values.get('0.q_proj')!.B, 4, 16, 4, 'pairs'));
  assert.deepEqual(a.tensors.get('1.k')!.B, permuteRows(values.get('1.k_proj')!.B, 2, 16, 4, 'pairs'));
  assert.deepEqual(a.tensors.get('0.q')!.A, values.get('0.q_proj')!.A);
  assert.deepEqual(a.tensors.get('0.down')!.B, values.get('0.down_proj')!.B);
});

test('export: adapter_config.json exactly as PEFT writes it, PEFT key names, shapes, f32/f16/bf16', async () => {
  const lora: LoraConfig = { rank: 4, alpha: 8, dropout: 0.05, targets: ALL_TARGETS };
  const params = randomLora(cfg, lora, 3);
  const a = adapterFromParams(cfg, lora, params, { name: 'story-tuner', nameOrPath: 'org/tiny-llama', format: 'hf', hyperparameters: { learningRate: 0.001 } });
  const { sink, files } = memorySink();
  const written = await exportPeft(a, cfg, sink);
  assert.deepEqual(written, ['adapter_config.json', 'adapter_model.safetensors', 'README.md', 'whittle_adapter.json']);
  const text = dec(files.get('adapter_config.json')!);
  const j = JSON.parse(text);
  assert.deepEqual(Object.keys(j), [...Object.keys(j)].sort(), 'keys sorted');
  assert.match(text, /^\{\n {2}"alpha_pattern": \{\},\n/);
  assert.deepEqual(j, {
    alpha_pattern: {}, auto_mapping: null, base_model_name_or_path: 'org/tiny-llama', bias: 'none', eva_config: null, exclude_modules: null,
    fan_in_fan_out: false, inference_mode: true, init_lora_weights: true, layer_replication: null, layers_pattern: null, layers_to_transform: null,
    loftq_config: {}, lora_alpha: 8, lora_bias: false, lora_dropout: 0.05, megatron_config: null, megatron_core: 'megatron.core',
    modules_to_save: null, peft_type: 'LORA', r: 4, rank_pattern: {}, revision: null,
    target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], task_type: 'CAUSAL_LM', use_dora: false, use_rslora: false,
  });
  assert.deepEqual(peftConfigJson({ ...lora, rslora: true }, null).use_rslora, true);
  const st = parseSafetensors('a', files.get('adapter_model.safetensors')!);
  assert.deepEqual(st.header.metadata, { format: 'pt' });
  assert.equal(st.header.tensors.size, 2 * 2 * 7);
  const info = (n: string) => st.header.tensors.get(n)!;
  assert.deepEqual(info('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight').shape, [4, 64]);
  assert.deepEqual(info('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight').shape, [64, 4]);
  assert.deepEqual(info('base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight').shape, [32, 4]);
  assert.deepEqual(info('base_model.model.model.layers.1.self_attn.o_proj.lora_A.weight').shape, [4, 64]);
  assert.deepEqual(info('base_model.model.model.layers.1.mlp.down_proj.lora_A.weight').shape, [4, 96]);
  assert.deepEqual(info('base_model.model.model.layers.1.mlp.gate_proj.lora_B.weight').shape, [96, 4]);
  assert.equal(info('base_model.model.model.layers.1.mlp.up_proj.lora_A.weight').dtype, 'F32');
  assert.deepEqual(st.get('base_model.model.model.layers.1.mlp.up_proj.lora_A.weight'), params.get('1.up')!.A);
  assert.match(dec(files.get('README.md')!), /^---\nbase_model: "org\/tiny-llama"\nlibrary_name: peft\n/);
  const meta = JSON.parse(dec(files.get('whittle_adapter.json')!));
  assert.equal(meta.name, 'story-tuner');
  assert.deepEqual(meta.hyperparameters, { learningRate: 0.001 });
  for (const [dtype, tag] of [['f16', 'F16'], ['bf16', 'BF16']] as const) {
    const m = memorySink();
    await exportPeft(a, cfg, m.sink, { dtype, extras: false, baseModelNameOrPath: 'other/id' });
    assert.deepEqual([...m.files.keys()], ['adapter_config.json', 'adapter_model.safetensors']);
    assert.equal(JSON.parse(dec(m.files.get('adapter_config.json')!)).base_model_name_or_path, 'other/id');
    const s2 = parseSafetensors('b', m.files.get('adapter_model.safetensors')!);
    assert.equal(s2.header.tensors.get('base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight')!.dtype, tag);
    const back = await importPeft(memorySource('b', m.files), cfg);
    const x = back.tensors.get('0.v')!.B, y = params.get('0.v')!.B;
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - y[i]) <= (dtype === 'f16' ? 1e-3 : 1e-2) * Math.abs(y[i]) + 1e-7, `${dtype} ${i}`);
  }
});

test('round trip export → import is exact (HF base), and a GGUF base exports in HF orientation', async () => {
  const lora: LoraConfig = { rank: 3, alpha: 5, dropout: 0, targets: ['q', 'k', 'v', 'o'], rslora: true };
  const params = randomLora(cfg, lora, 4);
  const a = adapterFromParams(cfg, lora, params, { name: 'rt', nameOrPath: 'org/m' });
  const { sink, files } = memorySink();
  await exportPeft(a, cfg, sink);
  const b = await importPeft(memorySource('rt', files), cfg);
  assert.deepEqual(b.lora, lora);
  assert.equal(b.name, 'rt', 'name from whittle_adapter.json');
  for (const [k, p] of params) {
    assert.deepEqual(b.tensors.get(k)!.A, p.A, k);
    assert.deepEqual(b.tensors.get(k)!.B, p.B, k);
  }
  // the same adapter trained on a GGUF (pairs) base: the PEFT file holds HF rows
  const pcfg = tinyConfig({ ropeStyle: 'pairs' });
  const pparams = new Map([...params].map(([k, p]) => {
    const t = k.split('.')[1];
    return [k, t === 'q' || t === 'k' ? { A: p.A, B: permuteRows(p.B, t === 'q' ? 4 : 2, 16, 3, 'pairs') } : p];
  }));
  const g = adapterFromParams(pcfg, lora, pparams, { name: 'g', format: 'gguf' });
  const m = memorySink();
  await exportPeft(g, pcfg, m.sink);
  const st = parseSafetensors('g', m.files.get('adapter_model.safetensors')!);
  assert.deepEqual(st.get('base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight'), params.get('1.q')!.B);
  assert.deepEqual(st.get('base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight'), params.get('1.k')!.B);
  // importing it for the HF base gives the HF adapter; for the GGUF base the permuted one
  assert.deepEqual((await importPeft(memorySource('g', m.files), cfg)).tensors.get('0.k')!.B, params.get('0.k')!.B);
  assert.deepEqual((await importPeft(memorySource('g', m.files), pcfg)).tensors.get('0.k')!.B, pparams.get('0.k')!.B);
});

test('import errors: .bin weights, not PEFT, wrong base (shape, layers), rank mismatch, DoRA, patterns, extra tensors', async () => {
  const base = handPeft().files;
  const without = (f: string, extra: Record<string, Uint8Array> = {}) => {
    const m = new Map(base);
    m.delete(f);
    for (const [k, v] of Object.entries(extra)) m.set(k, v);
    return memorySource('ad', m);
  };
  await rejects(importPeft(without('adapter_model.safetensors', { 'adapter_model.bin': new Uint8Array(4) }), cfg),
    /ad: adapter_model\.bin \(PyTorch pickle\) is not supported; convert it to safetensors, e\.g\. python -c/);
  await rejects(importPeft(without('adapter_model.safetensors'), cfg), /ad: no adapter_model\.safetensors next to adapter_config\.json/);
  await rejects(importPeft(without('adapter_config.json'), cfg), /ad: no adapter_config\.json: not a PEFT adapter directory/);
  // a different base: hidden 128 instead of 64
  await rejects(importPeft(memorySource('ad', base), tinyConfig({ hidden: 128, headDim: 32 })),
    /ad\/adapter_model\.safetensors: tensor 'base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight' has shape \[4, 64\], expected \[4, 128\] \(r × in features of q_proj, r = 4\): this adapter was made for a different base model \(adapter_config\.json says org\/tiny-llama\)/);
  await rejects(importPeft(memorySource('ad', base), tinyConfig({ layers: 1 })), /tensor '.*layers\.1\..*' is for layer 1, but the base model has 1 layers: this adapter was made for a different base model/);
  await rejects(importPeft(memorySource('ad', handPeft({ config: { r: 8 } }).files), cfg), /has shape \[4, 64\], expected \[8, 64\] .*: its rank differs from r in adapter_config\.json/);
  const cfgErr = async (over: Record<string, unknown>, re: RegExp) => rejects(importPeft(memorySource('ad', handPeft({ config: over }).files), cfg), re);
  await cfgErr({ peft_type: 'IA3' }, /adapter_config\.json: peft_type is "IA3"; only LoRA adapters/);
  await cfgErr({ use_dora: true }, /use_dora is true: DoRA adapters .* are not supported/);
  await cfgErr({ rank_pattern: { q_proj: 8 } }, /rank_pattern \{"q_proj":8\} gives some modules another rank/);
  await cfgErr({ alpha_pattern: { q_proj: 8 } }, /alpha_pattern/);
  await cfgErr({ fan_in_fan_out: true }, /fan_in_fan_out is true/);
  await cfgErr({ bias: 'lora_only' }, /bias is "lora_only": trained biases are not supported/);
  await cfgErr({ modules_to_save: ['lm_head'] }, /modules_to_save \["lm_head"\]: fully trained modules/);
  await cfgErr({ target_modules: ['q_proj', 'lm_head'] }, /target_modules "lm_head" cannot be adapted here/);
  await cfgErr({ target_modules: ['q_proj'] }, /holds LoRA tensors for k_proj, down_proj, which target_modules in adapter_config\.json does not list/);
  await cfgErr({ r: 0 }, /r is 0, expected a positive integer/);
  const extra = async (name: string, re: RegExp) => rejects(importPeft(memorySource('ad', handPeft({ extra: [{ name, shape: [4], data: new Float32Array(4) }] }).files), cfg), re);
  await extra('base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector.weight', /tensor '.*lora_magnitude_vector\.weight' is not a LoRA A\/B weight .* \(a DoRA magnitude: DoRA is not supported\)/);
  await extra('base_model.model.model.embed_tokens.lora_embedding_A', /\(embedding \/ output-head tensors are not supported/);
  await extra('base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias', /\(LoRA \/ trained biases are not supported\)/);
  await extra('base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight', /tensors '.*q_proj\.lora_A\.weight' and '.*q_proj\.lora_A\.default\.weight' are the same LoRA A of layer 0 q_proj/);
  await rejects(importPeft(memorySource('ad', handPeft({ skip: (l) => l === 1 }).files), cfg),
    /no LoRA tensors for 1\.q_proj, 1\.k_proj, 1\.down_proj, although adapter_config\.json adapts every layer \(no layers_to_transform\): this adapter was made for a different base model .*, which has 2 layers/);
  // a lone half
  const lone = handPeft();
  const st = parseSafetensors('x', lone.files.get('adapter_model.safetensors')!);
  const keep = [...st.header.tensors.keys()].filter((n) => n !== 'base_model.model.model.layers.1.mlp.down_proj.lora_B.weight');
  lone.files.set('adapter_model.safetensors', writeSafetensors(keep.map((n) => ({ name: n, shape: st.header.tensors.get(n)!.shape, data: st.get(n) }))));
  await rejects(importPeft(memorySource('ad', lone.files), cfg), /layer 1 down_proj has lora_A but no lora_B/);
});
