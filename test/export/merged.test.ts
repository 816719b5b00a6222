// src/export/merged.ts: merge → write → reload → the CPU reference of the merged model equals the
// base model running the (unmerged) LoRA adapter, on the real tinystories-656k (HF) and
// stories260K (GGUF, q/k permuted) models with random adapters; config.json, tokenizer files,
// f16 weights, sharding, and the GGUF → merged GGUF path (tokenizer and metadata kept).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from '../harness.ts';
import type { LoraConfig } from '../../src/model/config.ts';
import { loadModel } from '../../src/model/load.ts';
import { parseGGUF } from '../../src/model/gguf.ts';
import { mergeLora } from '../../src/model/merge.ts';
import { memorySource } from '../../src/model/source.ts';
import { ref_logits } from '../../src/ref/model.ts';
import { adapterFromParams, memorySink } from '../../src/export/adapter.ts';
import { exportMerged, exportMergedGGUF, hfConfigJson } from '../../src/export/merged.ts';
import { ALL_TARGETS, randomLora, tinyConfig } from '../model/tiny.ts';
import { S260K_GGUF, TS656K, folderBytes, ref656k } from '../model/fixtures.ts';
import { assertClose } from '../util.ts';
import { maxRelDiff, randomIds, readHfExport, tokenLosses } from './fixtures.ts';

const lora: LoraConfig = { rank: 4, alpha: 8, dropout: 0.1, targets: ALL_TARGETS };
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

test('merged HF export of tinystories-656k + random adapter reloads (loadModel) and matches the unmerged LoRA forward', async () => {
  const src = memorySource('tinystories-656k', folderBytes(TS656K));
  const base = await loadModel(src);
  const cfg = base.config;
  const params = randomLora(cfg, lora, 11, 0.2);
  const adapter = adapterFromParams(cfg, lora, params, { name: 'rand', format: 'hf' });
  const { sink, files } = memorySink();
  const r = await exportMerged(base, adapter, sink, { src });
  assert.deepEqual(r.files, ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']);
  assert.deepEqual(r.notes, []);
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
    assert.deepEqual(files.get(f), new Uint8Array(readFileSync(`${TS656K}/${f}`)), f);
  }
  const j = JSON.parse(dec(files.get('config.json')!));
  const orig = JSON.parse(readFileSync(`${TS656K}/config.json`, 'utf8'));
  for (const k of ['architectures', 'model_type', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads',
    'max_position_embeddings', 'rms_norm_eps', 'rope_theta', 'rope_scaling', 'vocab_size', 'tie_word_embeddings', 'bos_token_id', 'eos_token_id',
    'hidden_act', 'attention_bias', 'mlp_bias', 'torch_dtype']) assert.deepEqual(j[k], orig[k], k);
  assert.equal(j.head_dim, 16);

  const merged = await loadModel(memorySource('merged', files));
  assert.deepEqual(merged.config, cfg);
  assert.equal(merged.weights.lmHead, null, 'tied: no lm_head.weight written');
  assert.deepEqual(merged.tokenizer.encode(ref656k().prompt), base.tokenizer.encode(ref656k().prompt));
  const ids = randomIds(cfg.vocab, 16, 5);
  const want = tokenLosses(cfg, base.weights, { config: lora, params }, ids);
  const got = tokenLosses(merged.config, merged.weights, null, ids);
  assertClose('merged vs LoRA losses', got, want, { atol: 1e-4, rtol: 1e-4 });
  const baseOnly = tokenLosses(cfg, base.weights, null, ids);
  assert.ok(maxRelDiff(want, baseOnly) > 1e-2, `the adapter must matter (${maxRelDiff(want, baseOnly)})`);
  // and the logits of the reloaded file equal the in-memory merge's
  assertClose('logits', ref_logits(merged.config, merged.weights, ids.slice(0, 6)), ref_logits(cfg, mergeLora(cfg, base.weights, lora, params), ids.slice(0, 6)), { atol: 1e-6, rtol: 1e-6 });

  // f16 weights and sharding
  const m16 = memorySink();
  await exportMerged(base, adapter, m16.sink, { src, dtype: 'f16', maxShardBytes: 300_000 });
  const names = [...m16.files.keys()];
  assert.ok(names.includes('model.safetensors.index.json') && names.includes('model-00001-of-00004.safetensors'), names.join(','));
  const idx = JSON.parse(dec(m16.files.get('model.safetensors.index.json')!));
  assert.equal(idx.weight_map['model.embed_tokens.weight'], 'model-00001-of-00004.safetensors');
  assert.equal(JSON.parse(dec(m16.files.get('config.json')!)).torch_dtype, 'float16');
  const h = await loadModel(memorySource('m16', m16.files));
  assert.deepEqual(h.source.tensorTypes, { F16: 20 });
  assertClose('f16 merged losses', tokenLosses(h.config, h.weights, null, ids), want, { atol: 2e-2, rtol: 2e-2 });
});

test('merged export of the stories260K GGUF (q/k permuted): HF files un-permuted, merged GGUF keeps tokenizer; both match the LoRA forward', async () => {
  const ggufBytes = new Uint8Array(readFileSync(S260K_GGUF));
  const src = memorySource('stories260K', { 'stories260K.gguf': ggufBytes });
  const base = await loadModel(src);
  const cfg = base.config;
  assert.equal(cfg.ropeStyle, 'pairs');
  const params = randomLora(cfg, lora, 12, 0.2);
  const adapter = adapterFromParams(cfg, lora, params, { name: 'rand', format: 'gguf' });
  const ids = randomIds(cfg.vocab, 16, 6);
  const want = tokenLosses(cfg, base.weights, { config: lora, params }, ids);
  assert.ok(maxRelDiff(want, tokenLosses(cfg, base.weights, null, ids)) > 1e-2, 'the adapter must matter');

  // Hugging Face folder: rotate-half model with un-permuted q/k
  const hf = memorySink();
  const r = await exportMerged(base, adapter, hf.sink, { src });
  assert.deepEqual(r.files, ['config.json', 'model.safetensors']);
  assert.match(r.notes.join('\n'), /q\/k projections un-permuted/);
  assert.match(r.notes.join('\n'), /the base is a GGUF file: its tokenizer lives in the GGUF metadata/);
  const back = await readHfExport(hf.files);
  assert.equal(back.cfg.ropeStyle, 'half');
  assert.equal(back.json.model_type, 'llama');
  assert.equal(back.json.tie_word_embeddings, cfg.tiedEmbeddings);
  assert.equal(back.json.num_key_value_heads, cfg.kvHeads);
  assertClose('HF merged (rotate-half) vs GGUF base + LoRA', tokenLosses(back.cfg, back.w, null, ids), want, { atol: 1e-4, rtol: 1e-4 });

  // merged GGUF: same metadata and tokenizer, adapted tensors F32
  const gg = memorySink();
  const rg = await exportMergedGGUF(src, base, adapter, gg.sink);
  assert.deepEqual(rg.files, ['stories260K-rand.gguf']);
  const out = gg.files.get('stories260K-rand.gguf')!;
  const g0 = parseGGUF('in', ggufBytes), g1 = parseGGUF('out', out);
  assert.deepEqual([...g1.metadata.keys()], [...g0.metadata.keys()]);
  assert.deepEqual(g1.metadata.get('tokenizer.ggml.tokens'), g0.metadata.get('tokenizer.ggml.tokens'));
  assert.deepEqual([...g1.metadataTypes], [...g0.metadataTypes]);
  assert.deepEqual([...g1.tensors.keys()], [...g0.tensors.keys()]);
  const m = await loadModel(memorySource('m', { 'm.gguf': out }));
  assert.equal(m.config.ropeStyle, 'pairs');
  assert.deepEqual(m.tokenizer.encode('Once upon a time'), base.tokenizer.encode('Once upon a time'));
  assertClose('merged GGUF vs GGUF base + LoRA', tokenLosses(m.config, m.weights, null, ids), want, { atol: 1e-4, rtol: 1e-4 });
});

test('hfConfigJson: qwen2 / mistral fields, llama3 rope scaling, eos lists, original fields carried over', () => {
  const q = hfConfigJson(tinyConfig({ arch: 'qwen2', attnBias: true, tiedEmbeddings: true, eos: [2, 7], bos: null }), 'bf16');
  assert.deepEqual(q.architectures, ['Qwen2ForCausalLM']);
  assert.equal(q.use_sliding_window, false);
  assert.equal(q.torch_dtype, 'bfloat16');
  assert.deepEqual(q.eos_token_id, [2, 7]);
  assert.equal(q.bos_token_id, null);
  assert.equal(q.attention_bias, undefined);
  const m = hfConfigJson(tinyConfig({ arch: 'mistral', ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 } }));
  assert.deepEqual(m.architectures, ['MistralForCausalLM']);
  assert.deepEqual(m.rope_scaling, { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 });
  const o = hfConfigJson(tinyConfig(), 'f32', { pad_token_id: 0, eos_token_id: [2, 3], quantization_config: { bits: 4 }, custom: 'x', hidden_size: 999 });
  assert.equal(o.pad_token_id, 0);
  assert.deepEqual(o.eos_token_id, [2, 3]);
  assert.equal(o.custom, 'x');
  assert.equal(o.hidden_size, 64, 'regenerated sizes win');
  assert.equal(o.quantization_config, undefined);
});
