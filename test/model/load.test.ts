// loadModel (src/model/load.ts) on both real models (Node paths, in-memory bytes and Blobs) and on
// small models built here in memory: HF llama/qwen2 (biases, F16/BF16, shards, tied/untied,
// only-one-of-two tied tensors, llama3 rope scaling, generation_config EOS, chat templates) and
// GGUF (quantized weights, qwen2 'half' rope, rope_freqs → llama3). Every unsupported or broken
// input must give a clear error naming the source and the reason.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from '../harness.ts';
import { loadModel, loadModelConfig, configFromHF } from '../../src/model/load.ts';
import { nodeSource } from '../../src/model/source-node.ts';
import { blobSource, memorySource } from '../../src/model/source.ts';
import { writeSafetensors, type SafetensorsInput } from '../../src/model/safetensors.ts';
import { GGMLType, GGUFType, parseGGUF, writeGGUF, type GGUFKV, type GGUFTensorInput } from '../../src/model/gguf.ts';
import { f16ToF32, f32ToF16, bf16ToF32, f32ToBf16 } from '../../src/model/half.ts';
import { S260K_GGUF, TS656K, folderBytes, json, ref656k, ref260k, rejects, seeded, utf8 } from './fixtures.ts';

// ---------------------------------------------------------------------------------------------
// real models

test('load: tinystories-656k (HF folder) → config, tied weights from lm_head only, tokenizer', async () => {
  const m = await loadModel(await nodeSource(TS656K));
  assert.deepEqual(m.config, {
    arch: 'llama', hidden: 128, layers: 2, heads: 8, kvHeads: 4, headDim: 16, ffn: 384, vocab: 2048, maxPos: 512,
    ropeTheta: 10000, ropeStyle: 'half', ropeScaling: null, eps: 1e-6, tiedEmbeddings: true, attnBias: false, bos: 1, eos: [2],
  });
  const w = m.weights;
  assert.equal(w.lmHead, null);
  assert.equal(w.embed.length, 2048 * 128);
  assert.equal(w.layers.length, 2);
  const L = w.layers[1];
  assert.equal(L.wq.length, 128 * 128); assert.equal(L.wk.length, 64 * 128); assert.equal(L.wv.length, 64 * 128);
  assert.equal(L.wo.length, 128 * 128); assert.equal(L.wGate.length, 384 * 128); assert.equal(L.wDown.length, 128 * 384);
  assert.equal(L.bq, null);
  // the embedding is the stored lm_head.weight, element for element
  const raw = readFileSync(TS656K + '/model.safetensors');
  const hlen = Number(raw.readBigUInt64LE(0));
  const hdr = JSON.parse(raw.subarray(8, 8 + hlen).toString('utf8'));
  const [b] = hdr['lm_head.weight'].data_offsets;
  for (const i of [0, 1, 777, 2048 * 128 - 1]) assert.equal(w.embed[i], raw.readFloatLE(8 + hlen + b + 4 * i));
  assert.equal(m.source.format, 'hf');
  assert.equal(m.source.params, 656000);
  assert.deepEqual(m.source.tensorTypes, { F32: 20 });
  assert.ok(m.source.notes.some((n) => /embed_tokens.*lm_head/.test(n)), m.source.notes.join('; '));
  assert.equal(m.chatTemplate, null);
  assert.deepEqual(m.tokenizer.encode(ref656k().prompt), ref656k().prompt_ids_tokenizer_json);
  assert.deepEqual(await loadModelConfig(await nodeSource(TS656K)), m.config);
});

test('load: stories260K.gguf → config, pairs RoPE, output copy treated as tied, SPM tokenizer', async () => {
  const m = await loadModel(await nodeSource(S260K_GGUF));
  assert.deepEqual(m.config, {
    arch: 'llama', hidden: 64, layers: 5, heads: 8, kvHeads: 4, headDim: 8, ffn: 172, vocab: 512, maxPos: 2048,
    ropeTheta: 10000, ropeStyle: 'pairs', ropeScaling: null, eps: 1e-5, tiedEmbeddings: true, attnBias: false, bos: 1, eos: [2],
  });
  assert.equal(m.weights.lmHead, null);
  assert.equal(m.weights.layers.length, 5);
  assert.equal(m.weights.layers[0].wk.length, 32 * 64);
  assert.equal(m.weights.layers[4].wDown.length, 64 * 172);
  assert.equal(m.source.format, 'gguf');
  assert.equal(m.source.params, 260032);
  assert.ok(m.source.notes.some((n) => /byte-identical copy/.test(n)));
  assert.equal(m.tokenizer.kind, 'spm');
  assert.deepEqual(m.tokenizer.encode(ref260k().prompt), ref260k().prompt_ids);
  assert.equal(m.chatTemplate, null);
  // the folder works too (the only model file there is the .gguf; .bin files are ignored)
  const dir = await loadModelConfig(await nodeSource(S260K_GGUF.replace(/\/[^/]*$/, '')));
  assert.deepEqual(dir, m.config);
});

test('load: browser paths (bytes in memory, Blobs) give the same model as the Node path', async () => {
  const fromDisk = await loadModel(await nodeSource(TS656K));
  const files = folderBytes(TS656K);
  const progress: string[] = [];
  const mem = await loadModel(memorySource('idb:tinystories-656k', files), { onProgress: (p) => progress.push(`${p.done}/${p.total}`) });
  assert.deepEqual(mem.config, fromDisk.config);
  assert.deepEqual(mem.weights, fromDisk.weights);
  assert.equal(progress.length, 20);
  assert.equal(progress[19], '20/20');
  const blobs = new Map([...files].map(([k, v]) => [k, new Blob([v as Uint8Array<ArrayBuffer>])]));
  const viaBlob = await loadModel(blobSource('picked files', blobs));
  assert.deepEqual(viaBlob.weights.layers[1].wDown, fromDisk.weights.layers[1].wDown);
  const gguf = await loadModel(memorySource('x', { 'stories260K.gguf': new Uint8Array(readFileSync(S260K_GGUF)) }));
  assert.equal(gguf.config.ropeStyle, 'pairs');
  assert.deepEqual(gguf.weights.norm, (await loadModel(await nodeSource(S260K_GGUF))).weights.norm);
});

// ---------------------------------------------------------------------------------------------
// small HF models built in memory

const TOKJSON = () => new Uint8Array(readFileSync(TS656K + '/tokenizer.json'));
const TOKCFG = () => JSON.parse(readFileSync(TS656K + '/tokenizer_config.json', 'utf8'));

interface Tiny {
  C: number; L: number; NH: number; NKV: number; HS: number; F: number; V: number;
}
const T: Tiny = { C: 16, L: 2, NH: 4, NKV: 2, HS: 4, F: 24, V: 2048 };

function hfConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: T.C, num_hidden_layers: T.L,
    num_attention_heads: T.NH, num_key_value_heads: T.NKV, intermediate_size: T.F, vocab_size: T.V,
    max_position_embeddings: 256, rms_norm_eps: 1e-5, rope_theta: 500000, tie_word_embeddings: false,
    hidden_act: 'silu', bos_token_id: 1, eos_token_id: 2, ...over,
  };
}

/** HF tensors for the tiny config; `bias` adds q/k/v biases. */
function hfTensors(opts: { bias?: boolean; dtype?: string; tied?: boolean } = {}): SafetensorsInput[] {
  const { C, L, NH, NKV, HS, F, V } = T;
  const out: SafetensorsInput[] = [];
  let seed = 1;
  const add = (name: string, shape: number[]) => out.push({ name, shape, data: seeded(shape.reduce((a, b) => a * b, 1), seed++, 0.5), dtype: opts.dtype });
  add('model.embed_tokens.weight', [V, C]);
  if (!opts.tied) add('lm_head.weight', [V, C]);
  add('model.norm.weight', [C]);
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}.`;
    add(p + 'input_layernorm.weight', [C]);
    add(p + 'post_attention_layernorm.weight', [C]);
    add(p + 'self_attn.q_proj.weight', [NH * HS, C]);
    add(p + 'self_attn.k_proj.weight', [NKV * HS, C]);
    add(p + 'self_attn.v_proj.weight', [NKV * HS, C]);
    add(p + 'self_attn.o_proj.weight', [C, NH * HS]);
    if (opts.bias) {
      add(p + 'self_attn.q_proj.bias', [NH * HS]);
      add(p + 'self_attn.k_proj.bias', [NKV * HS]);
      add(p + 'self_attn.v_proj.bias', [NKV * HS]);
    }
    add(p + 'mlp.gate_proj.weight', [F, C]);
    add(p + 'mlp.up_proj.weight', [F, C]);
    add(p + 'mlp.down_proj.weight', [C, F]);
  }
  return out;
}

function hfFolder(cfg: Record<string, unknown>, tensors: SafetensorsInput[], extra: Record<string, Uint8Array> = {}): Map<string, Uint8Array> {
  return new Map(Object.entries({
    'config.json': json(cfg),
    'model.safetensors': writeSafetensors(tensors),
    'tokenizer.json': TOKJSON(),
    'tokenizer_config.json': json(TOKCFG()),
    ...extra,
  }));
}

const byName = (ts: SafetensorsInput[], n: string) => ts.find((t) => t.name === n)!.data as Float32Array;

test('load HF: untied llama with F16/BF16 weights, generation_config EOS list, chat template', async () => {
  for (const dtype of ['F32', 'F16', 'BF16']) {
    const ts = hfTensors({ dtype });
    const files = hfFolder(hfConfig(), ts, {
      'generation_config.json': json({ eos_token_id: [2, 7] }),
      'tokenizer_config.json': json({ ...TOKCFG(), chat_template: '{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}' }),
    });
    const m = await loadModel(memorySource('tiny', files));
    assert.equal(m.config.tiedEmbeddings, false);
    assert.equal(m.config.ropeTheta, 500000);
    assert.equal(m.config.headDim, 4);
    assert.deepEqual(m.config.eos, [2, 7]);
    assert.deepEqual(m.tokenizer.eos, [2, 7]);
    assert.equal(m.chatTemplate, '{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}');
    const cvt = dtype === 'F16' ? (v: number) => f16ToF32(f32ToF16(v)) : dtype === 'BF16' ? (v: number) => bf16ToF32(f32ToBf16(v)) : (v: number) => v;
    const want = (n: string) => Float32Array.from(byName(ts, n), cvt);
    assert.deepEqual(m.weights.lmHead, want('lm_head.weight'));
    assert.deepEqual(m.weights.embed, want('model.embed_tokens.weight'));
    assert.deepEqual(m.weights.layers[1].wv, want('model.layers.1.self_attn.v_proj.weight'));
    assert.deepEqual(m.weights.layers[0].wDown, want('model.layers.0.mlp.down_proj.weight'));
    assert.deepEqual(m.source.tensorTypes, { [dtype]: 3 + 9 * T.L });
  }
});

test('load HF: qwen2 has q/k/v biases; head_dim and llama3 rope_scaling are read', async () => {
  const ts = hfTensors({ bias: true });
  const m = await loadModel(memorySource('qwen', hfFolder(hfConfig({ model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'] }), ts)));
  assert.equal(m.config.arch, 'qwen2');
  assert.equal(m.config.attnBias, true);
  assert.deepEqual(m.weights.layers[1].bk, byName(ts, 'model.layers.1.self_attn.k_proj.bias'));
  assert.deepEqual(m.weights.layers[0].bq, byName(ts, 'model.layers.0.self_attn.q_proj.bias'));
  const cfg = configFromHF(hfConfig({
    head_dim: 8,
    rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    eos_token_id: [128001, 128008, 128009],
  }));
  assert.equal(cfg.headDim, 8);
  assert.deepEqual(cfg.ropeScaling, { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  assert.deepEqual(cfg.eos, [128001, 128008, 128009]);
  assert.equal(configFromHF(hfConfig({ rope_scaling: { type: 'default' } })).ropeScaling, null);
  assert.equal(configFromHF(hfConfig({ model_type: 'mistral' })).arch, 'mistral');
  // transformers 5.x style rope_parameters
  const v5 = configFromHF(hfConfig({ rope_theta: undefined, rope_parameters: { rope_type: 'default', rope_theta: 1e6 } }));
  assert.equal(v5.ropeTheta, 1e6);
});

test('load HF: sharded weights; tied models storing only one of the two tensors', async () => {
  // shards
  const ts = hfTensors();
  const half = Math.ceil(ts.length / 2);
  const s1 = ts.slice(0, half), s2 = ts.slice(half);
  const map: Record<string, string> = {};
  for (const t of s1) map[t.name] = 'model-00001-of-00002.safetensors';
  for (const t of s2) map[t.name] = 'model-00002-of-00002.safetensors';
  const files = hfFolder(hfConfig(), [], {
    'model.safetensors.index.json': json({ metadata: {}, weight_map: map }),
    'model-00001-of-00002.safetensors': writeSafetensors(s1),
    'model-00002-of-00002.safetensors': writeSafetensors(s2),
  });
  files.delete('model.safetensors');
  const m = await loadModel(memorySource('sharded', files));
  assert.deepEqual(m.weights.layers[1].wUp, byName(ts, 'model.layers.1.mlp.up_proj.weight'));
  assert.deepEqual(m.source.files.filter((f) => f.includes('safetensors')), ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
  // tied, only embed stored
  const tiedTs = hfTensors({ tied: true });
  const t1 = await loadModel(memorySource('t1', hfFolder(hfConfig({ tie_word_embeddings: true }), tiedTs)));
  assert.equal(t1.weights.lmHead, null);
  assert.deepEqual(t1.weights.embed, byName(tiedTs, 'model.embed_tokens.weight'));
  // tied, only lm_head stored (no metadata alias)
  const headOnly = tiedTs.map((t) => (t.name === 'model.embed_tokens.weight' ? { ...t, name: 'lm_head.weight' } : t));
  const t2 = await loadModel(memorySource('t2', hfFolder(hfConfig({ tie_word_embeddings: true }), headOnly)));
  assert.equal(t2.weights.lmHead, null);
  assert.deepEqual(t2.weights.embed, byName(tiedTs, 'model.embed_tokens.weight'));
  assert.ok(t2.source.notes.some((n) => /not stored; the embedding is the tied lm_head/.test(n)));
  // untied config but no lm_head: tied with a note
  const t3 = await loadModel(memorySource('t3', hfFolder(hfConfig({ tie_word_embeddings: false }), tiedTs)));
  assert.equal(t3.config.tiedEmbeddings, true);
  assert.equal(t3.weights.lmHead, null);
  assert.ok(t3.source.notes.some((n) => /lm_head\.weight is missing/.test(n)));
});

test('load HF: unsupported or broken inputs give clear errors', async () => {
  const ok = () => hfFolder(hfConfig(), hfTensors());
  const src = (files: Map<string, Uint8Array>) => memorySource('models/tiny', files);
  const patched = (over: Record<string, unknown>) => { const f = ok(); f.set('config.json', json(hfConfig(over))); return f; };
  await rejects(loadModel(src(patched({ model_type: 'gemma', architectures: ['GemmaForCausalLM'] }))), /models\/tiny\/config\.json/, /unsupported architecture 'gemma'/, /supported: llama, mistral, qwen2/);
  await rejects(loadModel(src(patched({ model_type: undefined, architectures: ['PhiForCausalLM'] }))), /unsupported architecture 'PhiForCausalLM'/);
  await rejects(loadModel(src(patched({ hidden_act: 'gelu' }))), /unsupported hidden_act 'gelu'/);
  await rejects(loadModel(src(patched({ rope_scaling: { type: 'yarn', factor: 4 } }))), /unsupported rope_scaling type 'yarn'/);
  await rejects(loadModel(src(patched({ num_key_value_heads: 3 }))), /num_attention_heads 4 is not a multiple of num_key_value_heads 3/);
  await rejects(loadModel(src(patched({ hidden_size: 'big' }))), /'hidden_size' is "big", expected a positive integer/);
  await rejects(loadModel(src(patched({ mlp_bias: true }))), /mlp_bias: true is not supported/);
  // missing tokenizer
  const noTok = ok();
  noTok.delete('tokenizer.json');
  await rejects(loadModel(src(noTok)), /models\/tiny: no tokenizer\.json/, /tokenizer is required/);
  noTok.set('tokenizer.model', new Uint8Array(4));
  await rejects(loadModel(src(noTok)), /SentencePiece tokenizer\.model alone is not supported/);
  // missing weights / pickle only
  const noW = ok();
  noW.delete('model.safetensors');
  await rejects(loadModel(src(noW)), /no weights found/);
  noW.set('pytorch_model.bin', new Uint8Array(4));
  await rejects(loadModel(src(noW)), /only PyTorch pickle weights \(pytorch_model\.bin\)/);
  // a missing tensor, a wrong shape, an unsupported o_proj bias
  const miss = ok();
  miss.set('model.safetensors', writeSafetensors(hfTensors().filter((t) => t.name !== 'model.layers.1.mlp.up_proj.weight')));
  await rejects(loadModel(src(miss)), /models\/tiny: tensor 'model\.layers\.1\.mlp\.up_proj\.weight' is missing/);
  const shape = ok();
  shape.set('model.safetensors', writeSafetensors(hfTensors().map((t) => (t.name.endsWith('0.self_attn.k_proj.weight') ? { ...t, shape: [T.C, 8] } : t))));
  await rejects(loadModel(src(shape)), /tensor 'model\.layers\.0\.self_attn\.k_proj\.weight' has shape \[16,8\], but the config .* needs \[8,16\]/);
  const ob = ok();
  ob.set('model.safetensors', writeSafetensors([...hfTensors(), { name: 'model.layers.0.self_attn.o_proj.bias', shape: [T.C], data: new Float32Array(T.C) }]));
  await rejects(loadModel(src(ob)), /o_proj\.bias' \(attention output bias\) is not supported/);
  // qwen2 without biases
  const qb = ok();
  qb.set('config.json', json(hfConfig({ model_type: 'qwen2' })));
  await rejects(loadModel(src(qb)), /tensor 'model\.layers\.0\.self_attn\.q_proj\.bias' is missing/);
  // broken JSON / broken safetensors name the file
  const bj = ok();
  bj.set('config.json', utf8('{"model_type": '));
  await rejects(loadModel(src(bj)), /models\/tiny\/config\.json: invalid JSON/);
  const bs = ok();
  bs.set('model.safetensors', bs.get('model.safetensors')!.subarray(0, 100));
  await rejects(loadModel(src(bs)), /models\/tiny\/model\.safetensors: invalid safetensors file/);
  // tokenizer larger than the vocab
  await rejects(loadModel(src(patched({ vocab_size: 1000 }))), /tokenizer\.json has 2048 tokens but config\.json vocab_size is 1000/);
  // nothing recognisable
  await rejects(loadModel(memorySource('empty', { 'README.md': utf8('hi') })), /empty: no model found: expected config\.json/);
  await rejects(nodeSource('/nonexistent/model/dir'), /\/nonexistent\/model\/dir: cannot open model path/);
});

// ---------------------------------------------------------------------------------------------
// GGUF models built in memory from stories260K

/** stories260K's metadata and tensors, for rewriting with changes. */
function s260kParts() {
  const bytes = new Uint8Array(readFileSync(S260K_GGUF));
  const g = parseGGUF('s.gguf', bytes);
  const kv: GGUFKV[] = [...g.metadata].map(([key, value]) => ({ key, value, ...g.metadataTypes.get(key) }));
  const tensors: GGUFTensorInput[] = [...g.tensors.values()].map((t) => ({
    name: t.name, shape: t.shape, type: t.type, data: bytes.slice(t.begin, t.end),
  }));
  return { kv, tensors };
}

function quantizeQ8_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32, out = new Uint8Array(nb * 34);
  for (let i = 0; i < nb; i++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[i * 32 + j]));
    const d = amax / 127, h = f32ToF16(d);
    out[i * 34] = h & 255; out[i * 34 + 1] = h >> 8;
    for (let j = 0; j < 32; j++) out[i * 34 + 2 + j] = Math.round(d ? x[i * 32 + j] / d : 0) & 255;
  }
  return out;
}

test('load GGUF: quantized weights, arch qwen2 (half RoPE + biases), rope_freqs → llama3, errors', async () => {
  const base = await loadModel(await nodeSource(S260K_GGUF));
  const { kv, tensors } = s260kParts();
  // Q8_0 attention/ffn matrices (rows of 64 inputs are 2 blocks; ffn_down has 172 inputs: keep F32)
  const q8 = tensors.map((t) => (/attn_(q|k|v|output)|ffn_(gate|up)/.test(t.name)
    ? { ...t, type: GGMLType.Q8_0, data: quantizeQ8_0(new Float32Array((t.data as Uint8Array).slice().buffer)) } : t));
  const mq = await loadModel(memorySource('q8', { 'm.gguf': writeGGUF(kv, q8) }));
  assert.deepEqual(mq.source.tensorTypes, { F32: 47 - 30, Q8_0: 30 });
  const wq0 = base.weights.layers[0].wq, gq0 = mq.weights.layers[0].wq;
  let maxErr = 0, maxAbs = 0;
  for (let i = 0; i < wq0.length; i++) { maxErr = Math.max(maxErr, Math.abs(wq0[i] - gq0[i])); maxAbs = Math.max(maxAbs, Math.abs(wq0[i])); }
  assert.ok(maxErr > 0 && maxErr <= (maxAbs / 127) * 0.51 + 1e-6, `q8 error ${maxErr} vs scale ${maxAbs / 127}`);
  assert.deepEqual(mq.weights.layers[2].wDown, base.weights.layers[2].wDown);

  // qwen2: keys renamed, biases added, output.weight removed → tied; rope stays 'half'
  const qkv = kv.map((e) => (e.key === 'general.architecture' ? { ...e, value: 'qwen2' } : e.key.startsWith('llama.') ? { ...e, key: 'qwen2.' + e.key.slice(6) } : e));
  qkv.push({ key: 'qwen2.rope.freq_base', type: GGUFType.FLOAT32, value: 1000000 });
  const biases: GGUFTensorInput[] = [];
  for (let i = 0; i < 5; i++) {
    biases.push({ name: `blk.${i}.attn_q.bias`, shape: [64], data: seeded(64, i) });
    biases.push({ name: `blk.${i}.attn_k.bias`, shape: [32], data: seeded(32, 10 + i) });
    biases.push({ name: `blk.${i}.attn_v.bias`, shape: [32], data: seeded(32, 20 + i) });
  }
  const qwen = await loadModel(memorySource('qwen', { 'q.gguf': writeGGUF(qkv, [...tensors.filter((t) => t.name !== 'output.weight'), ...biases]) }));
  assert.equal(qwen.config.arch, 'qwen2');
  assert.equal(qwen.config.ropeStyle, 'half');
  assert.equal(qwen.config.ropeTheta, 1000000);
  assert.equal(qwen.config.attnBias, true);
  assert.equal(qwen.config.tiedEmbeddings, true);
  assert.deepEqual(qwen.weights.layers[3].bk, seeded(32, 13));
  assert.ok(!qwen.source.notes.some((n) => /byte-identical/.test(n)));

  // untied: a different output.weight is kept
  const other = tensors.map((t) => (t.name === 'output.weight' ? { ...t, data: seeded(512 * 64, 5) } : t));
  const untied = await loadModel(memorySource('u', { 'u.gguf': writeGGUF(kv, other) }));
  assert.equal(untied.config.tiedEmbeddings, false);
  assert.deepEqual(untied.weights.lmHead, seeded(512 * 64, 5));

  // rope_freqs.weight (llama3 scaling, as convert_hf_to_gguf writes it) → ropeScaling
  const theta = 500000, hd = 8, factor = 8, low = 1, high = 4, orig = 8192;
  const ff = new Float32Array(hd / 2);
  for (let i = 0; i < hd / 2; i++) {
    const wl = (2 * Math.PI) / (1 / theta ** ((2 * i) / hd));
    if (wl < orig / high) ff[i] = 1;
    else if (wl > orig / low) ff[i] = factor;
    else { const s = (orig / wl - low) / (high - low); ff[i] = 1 / ((1 - s) / factor + s); }
  }
  const rkv = [...kv, { key: 'llama.rope.freq_base', type: GGUFType.FLOAT32, value: theta }];
  const r3 = await loadModel(memorySource('r', { 'r.gguf': writeGGUF(rkv, [...tensors, { name: 'rope_freqs.weight', shape: [hd / 2], data: ff }]) }));
  assert.deepEqual(r3.config.ropeScaling, { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });

  // errors
  const gg = (k: GGUFKV[], t = tensors) => memorySource('models', { 'bad.gguf': writeGGUF(k, t) });
  await rejects(loadModel(gg(kv.map((e) => (e.key === 'general.architecture' ? { ...e, value: 'gemma2' } : e)))), /models\/bad\.gguf/, /unsupported architecture 'gemma2' \(general\.architecture\)/);
  await rejects(loadModel(gg(kv.filter((e) => !e.key.startsWith('tokenizer.')))), /models\/bad\.gguf: no tokenizer in this GGUF file/);
  await rejects(loadModel(gg(kv.filter((e) => e.key !== 'llama.embedding_length'))), /required metadata 'llama\.embedding_length' is missing/);
  await rejects(loadModel(gg(kv, tensors.filter((t) => t.name !== 'blk.3.ffn_up.weight'))), /tensor 'blk\.3\.ffn_up\.weight' is missing/);
  await rejects(loadModel(gg([...kv, { key: 'llama.rope.scaling.type', value: 'yarn' }])), /unsupported rope scaling 'yarn'/);
  await rejects(loadModel(gg(kv, [...tensors, { name: 'rope_freqs.weight', shape: [4], data: new Float32Array([1, 3, 2, 7]) }])), /rope_freqs\.weight does not match llama3 rope scaling/);
  const bad = writeGGUF(kv, tensors);
  bad.set([0x47, 0x47, 0x4d, 0x4c], 0);
  await rejects(loadModel(memorySource('models', { 'bad.gguf': bad })), /models\/bad\.gguf: invalid GGUF file: bad magic/);
  await rejects(loadModel(memorySource('two', { 'a.gguf': bad, 'b.gguf': bad })), /several \.gguf files \(a\.gguf, b\.gguf\)/);
  await rejects(loadModel(memorySource('split', { 'm-00001-of-00002.gguf': bad })), /split \(multi-part\) GGUF files are not supported/);
});

test('load HF: config.bos follows the tokenizer (null when it prepends no BOS, as Qwen2)', async () => {
  const files = hfFolder(hfConfig({ model_type: 'qwen2', bos_token_id: 1 }), hfTensors({ bias: true }), {
    'tokenizer_config.json': json({ ...TOKCFG(), bos_token: null, add_bos_token: false }),
  });
  const m = await loadModel(memorySource('q', files));
  assert.equal(m.config.bos, null);
  assert.equal(m.tokenizer.bos, null);
  assert.deepEqual(m.tokenizer.encode('Once upon a time', { prefixSpace: false }), ref656k().prompt_ids_no_prefix.slice(1));
});
