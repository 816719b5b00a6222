// src/export/gguf-lora.ts: the llama.cpp GGUF LoRA adapter, parsed back with parseGGUF: metadata
// (general.architecture/type, adapter.type, adapter.lora.alpha as FLOAT32), tensor names and ggml
// dims (lora_a ne [in, r], lora_b ne [r, out], as llama.cpp's loader checks them), values, the
// q/k permutation for HF-orientation adapters (and none for GGUF-based or qwen2 ones), rsLoRA.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import type { LoraConfig } from '../../src/model/config.ts';
import { GGMLType, GGUFType, parseGGUF, readGGUFTensor } from '../../src/model/gguf.ts';
import { bytesFile } from '../../src/model/source.ts';
import { adapterFromParams, memorySink, permuteRows } from '../../src/export/adapter.ts';
import { exportGgufLora, ggufLoraBytes } from '../../src/export/gguf-lora.ts';
import { ALL_TARGETS, randomLora, tinyConfig } from '../model/tiny.ts';

const lora: LoraConfig = { rank: 4, alpha: 8, dropout: 0.05, targets: ALL_TARGETS };
const NAMES = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'];

async function parse(bytes: Uint8Array) {
  const g = parseGGUF('a.gguf', bytes);
  const f = bytesFile('a.gguf', bytes);
  return { g, read: (n: string) => readGGUFTensor(f, g, n) };
}

test('GGUF LoRA: metadata, tensor names, ggml dims and values as convert_lora_to_gguf.py writes them (HF llama base)', async () => {
  const cfg = tinyConfig();
  const params = randomLora(cfg, lora, 1);
  const a = adapterFromParams(cfg, lora, params, { name: 'my adapter', format: 'hf' });
  const { sink, files } = memorySink();
  const file = await exportGgufLora(a, cfg, sink);
  assert.equal(file, 'my-adapter.gguf');
  const { g, read } = await parse(files.get(file)!);
  assert.equal(g.metadata.get('general.architecture'), 'llama');
  assert.equal(g.metadata.get('general.type'), 'adapter');
  assert.equal(g.metadata.get('adapter.type'), 'lora');
  assert.equal(g.metadata.get('adapter.lora.alpha'), 8);
  assert.equal(g.metadataTypes.get('adapter.lora.alpha')!.type, GGUFType.FLOAT32);
  assert.equal(g.metadata.get('general.name'), 'my adapter');
  assert.equal(g.metadata.get('general.file_type'), 0);
  const names = [...g.tensors.keys()];
  assert.equal(names.length, 2 * 2 * 7);
  assert.deepEqual(names.slice(0, 4), ['blk.0.attn_q.weight.lora_a', 'blk.0.attn_q.weight.lora_b', 'blk.0.attn_k.weight.lora_a', 'blk.0.attn_k.weight.lora_b']);
  for (let l = 0; l < 2; l++) for (const n of NAMES) for (const s of ['a', 'b']) assert.ok(g.tensors.has(`blk.${l}.${n}.weight.lora_${s}`), `${l} ${n} ${s}`);
  // llama.cpp: model ne0 (in) == a.ne0, model ne1 (out) == b.ne1, a.ne1 == b.ne0 == rank
  const dims = (n: string) => g.tensors.get(n)!.dims;
  assert.deepEqual(dims('blk.0.attn_q.weight.lora_a'), [64, 4]);
  assert.deepEqual(dims('blk.0.attn_q.weight.lora_b'), [4, 64]);
  assert.deepEqual(dims('blk.1.attn_k.weight.lora_b'), [4, 32]);
  assert.deepEqual(dims('blk.1.attn_output.weight.lora_a'), [64, 4]);
  assert.deepEqual(dims('blk.1.ffn_down.weight.lora_a'), [96, 4]);
  assert.deepEqual(dims('blk.1.ffn_down.weight.lora_b'), [4, 64]);
  assert.deepEqual(dims('blk.0.ffn_up.weight.lora_b'), [4, 96]);
  assert.equal(g.tensors.get('blk.0.ffn_up.weight.lora_b')!.type, GGMLType.F32);
  // values: A as is; B as is except q/k, permuted into llama.cpp order
  assert.deepEqual(await read('blk.1.ffn_gate.weight.lora_a'), params.get('1.gate')!.A);
  assert.deepEqual(await read('blk.1.attn_v.weight.lora_b'), params.get('1.v')!.B);
  assert.deepEqual(await read('blk.0.attn_q.weight.lora_a'), params.get('0.q')!.A);
  assert.deepEqual(await read('blk.0.attn_q.weight.lora_b'), permuteRows(params.get('0.q')!.B, 4, 16, 4, 'pairs'));
  assert.deepEqual(await read('blk.1.attn_k.weight.lora_b'), permuteRows(params.get('1.k')!.B, 2, 16, 4, 'pairs'));
});

test('GGUF LoRA: a GGUF-based (pairs) adapter is not permuted again; qwen2 never; mistral HF → llama; rsLoRA alpha; F16', async () => {
  const pcfg = tinyConfig({ ropeStyle: 'pairs' });
  const params = randomLora(pcfg, lora, 2);
  const g1 = await parse(ggufLoraBytes(adapterFromParams(pcfg, lora, params, { name: 'g', format: 'gguf' }), pcfg));
  assert.deepEqual(await g1.read('blk.0.attn_q.weight.lora_b'), params.get('0.q')!.B);
  assert.deepEqual(await g1.read('blk.1.attn_k.weight.lora_b'), params.get('1.k')!.B);

  const qcfg = tinyConfig({ arch: 'qwen2', attnBias: true });
  const qp = randomLora(qcfg, lora, 3);
  const g2 = await parse(ggufLoraBytes(adapterFromParams(qcfg, lora, qp, { name: 'q', format: 'hf' }), qcfg));
  assert.equal(g2.g.metadata.get('general.architecture'), 'qwen2');
  assert.deepEqual(await g2.read('blk.0.attn_q.weight.lora_b'), qp.get('0.q')!.B);

  const mcfg = tinyConfig({ arch: 'mistral' });
  const rs: LoraConfig = { ...lora, targets: ['q', 'v'], rslora: true };
  const mp = randomLora(mcfg, rs, 4);
  const g3 = await parse(ggufLoraBytes(adapterFromParams(mcfg, rs, mp, { name: 'm', format: 'hf' }), mcfg, { dtype: 'f16' }));
  assert.equal(g3.g.metadata.get('general.architecture'), 'llama', 'llama.cpp converts HF Mistral as llama');
  assert.equal(g3.g.tensors.size, 8);
  // llama.cpp scale = alpha/rank; rsLoRA scale = alpha/√r → stored alpha = alpha·√r = 16
  assert.equal(g3.g.metadata.get('adapter.lora.alpha'), 16);
  assert.equal(g3.g.metadata.get('general.file_type'), 1);
  assert.equal(g3.g.tensors.get('blk.0.attn_v.weight.lora_a')!.type, GGMLType.F16);
  const got = await g3.read('blk.0.attn_v.weight.lora_a'), want = mp.get('0.v')!.A;
  for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-3 * Math.abs(want[i]) + 1e-6);
  // a mistral GGUF base keeps its own architecture name
  const gm = await parse(ggufLoraBytes(adapterFromParams({ ...mcfg, ropeStyle: 'pairs' }, rs, mp, { name: 'm', format: 'gguf' }), { ...mcfg, ropeStyle: 'pairs' }));
  assert.equal(gm.g.metadata.get('general.architecture'), 'mistral');
});
