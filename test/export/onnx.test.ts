// ONNX export (src/export/onnx.ts) checked by running the exported graph in onnxruntime-web (Node
// build, wasm backend, one thread) against the CPU reference (src/ref/model.ts ref_logits, f64):
// - both real models (tinystories-656k: HF, rotate-half, lm_head-only tied; stories260K: GGUF,
//   adjacent-pair RoPE, GQA 8/4): prompt logits within 1e-4; a second call with the first call's
//   present.* as past_key_values (one new token) gives the next position's logits; a batch of two
//   with left padding (attention_mask 0, position_ids from the mask) gives each row's own logits,
//   also for a decode step on top of the padded cache;
// - onnxGenerate (greedy, KV cache) reproduces reference.json's greedy continuations;
// - random tiny models cover the other paths: Qwen2 q/k/v bias, untied lm_head, Llama-3 rope
//   scaling, random 'pairs' q/k (un-permuted at export), MQA (1 kv head), NKV = NH, headDim ≠ C/NH;
// - external data (weights in onnx/model.onnx_data, _1, ...) loads through createOnnxSession and
//   matches the inline export; the folder's files (config.json, tokenizer files, generation config);
// - transformers.js (its onnxruntime-node backend) loads the written folder and greedy-generates
//   the reference continuation.
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { test } from '../harness.ts';
import { loadModel } from '../../src/model/load.ts';
import { nodeSource } from '../../src/model/source-node.ts';
import { ref_logits } from '../../src/ref/model.ts';
import type { LlamaConfig, LlamaWeights } from '../../src/model/config.ts';
import { buildOnnxModel, exportOnnx } from '../../src/export/onnx.ts';
import { createOnnxSession, onnxGenerate } from '../../src/export/onnx-generate.ts';
import { S260K_GGUF, TS656K, ref260k, ref656k } from '../model/fixtures.ts';
import { tinyConfig, tinyWeights } from '../model/tiny.ts';

ort.env.wasm.numThreads = 1;
const TOL = 1e-4;

const models = new Map<string, Awaited<ReturnType<typeof loadModel>>>();
async function model(path: string) {
  if (!models.has(path)) models.set(path, await loadModel(await nodeSource(path)));
  return models.get(path)!;
}

async function session(cfg: LlamaConfig, w: LlamaWeights): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(buildOnnxModel(cfg, w).model, { executionProviders: ['wasm'] });
}

const i64 = (xs: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs, (x) => BigInt(x)), dims);

function emptyPast(cfg: LlamaConfig, B: number): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (let l = 0; l < cfg.layers; l++) {
    for (const kv of ['key', 'value']) out[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [B, cfg.kvHeads, 0, cfg.headDim]);
  }
  return out;
}

function presentAsPast(cfg: LlamaConfig, out: ort.InferenceSession.OnnxValueMapType): Record<string, ort.Tensor> {
  const past: Record<string, ort.Tensor> = {};
  for (let l = 0; l < cfg.layers; l++) {
    for (const kv of ['key', 'value']) past[`past_key_values.${l}.${kv}`] = out[`present.${l}.${kv}`] as ort.Tensor;
  }
  return past;
}

/** One forward: rows (B, S) of ids, attention_mask (B, T), position_ids (B, S). */
async function run(s: ort.InferenceSession, ids: number[][], mask: number[][], pos: number[][], past: Record<string, ort.Tensor>) {
  const B = ids.length, S = ids[0].length, T = mask[0].length;
  return s.run({ ...past, input_ids: i64(ids.flat(), [B, S]), attention_mask: i64(mask.flat(), [B, T]), position_ids: i64(pos.flat(), [B, S]) });
}

/** max |got − want| elementwise (same lengths). */
function maxErr(got: Float32Array, want: Float32Array): number {
  assert.equal(got.length, want.length, 'logits length');
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  return worst;
}

function closeTo(name: string, got: Float32Array, want: Float32Array, tol = TOL) {
  const e = maxErr(got, want);
  assert.ok(e <= tol, `${name}: max |onnx − ref| = ${e.toExponential(3)} > ${tol}`);
}

/** Prompt logits, one KV-cache step, and left-padded batch-of-2 (+ a decode step), all vs ref. */
async function checkModel(name: string, cfg: LlamaConfig, w: LlamaWeights, prompt: number[], other: number[], tol = TOL) {
  const s = await session(cfg, w);
  const V = cfg.vocab, n = prompt.length;
  const want = ref_logits(cfg, w, prompt);
  // full prompt, empty past
  const full = await run(s, [prompt], [prompt.map(() => 1)], [prompt.map((_, i) => i)], emptyPast(cfg, 1));
  assert.deepEqual(full.logits.dims, [1, n, V]);
  assert.deepEqual(full['present.0.key'].dims, [1, cfg.kvHeads, n, cfg.headDim]);
  closeTo(`${name} prompt logits`, full.logits.data as Float32Array, want, tol);
  // prefix, then the last token with the prefix's cache
  const first = await run(s, [prompt.slice(0, -1)], [prompt.slice(0, -1).map(() => 1)], [prompt.slice(0, -1).map((_, i) => i)], emptyPast(cfg, 1));
  const step = await run(s, [[prompt[n - 1]]], [prompt.map(() => 1)], [[n - 1]], presentAsPast(cfg, first));
  assert.deepEqual(step.logits.dims, [1, 1, V]);
  assert.deepEqual(step[`present.${cfg.layers - 1}.value`].dims, [1, cfg.kvHeads, n, cfg.headDim]);
  closeTo(`${name} KV-cache step logits`, step.logits.data as Float32Array, want.subarray((n - 1) * V), tol);
  // present = past ++ new along axis 2
  const pk = first['present.0.key'].data as Float32Array, sk = step['present.0.key'].data as Float32Array;
  const HS = cfg.headDim;
  for (let h = 0; h < cfg.kvHeads; h++) {
    assert.deepEqual(sk.subarray(h * n * HS, (h * n + n - 1) * HS), pk.subarray(h * (n - 1) * HS, (h + 1) * (n - 1) * HS), `${name}: present keeps the past`);
  }
  // batch of two, row 0 left-padded: [pad × (m − n), prompt], row 1: `other` (m tokens)
  const m = other.length, padN = m - n;
  assert.ok(padN > 0);
  const ids = [[...Array(padN).fill(0), ...prompt], other];
  const mask = [[...Array(padN).fill(0), ...prompt.map(() => 1)], other.map(() => 1)];
  const pos = mask.map((r) => { let c = -1; return r.map((x) => (x ? ++c : 1)); }); // transformers.js create_position_ids
  const both = await run(s, ids, mask, pos, emptyPast(cfg, 2));
  const bl = both.logits.data as Float32Array;
  closeTo(`${name} batch row 0 (left-padded)`, bl.subarray(padN * V, m * V), want, tol);
  closeTo(`${name} batch row 1`, bl.subarray(m * V, 2 * m * V), ref_logits(cfg, w, other), tol);
  // decode one more token on each row on top of the padded cache
  const nextA = 5, nextB = 7;
  const step2 = await run(s, [[nextA], [nextB]], mask.map((r) => [...r, 1]), [[n], [m]], presentAsPast(cfg, both));
  const sl = step2.logits.data as Float32Array;
  const wantA = ref_logits(cfg, w, [...prompt, nextA]), wantB = ref_logits(cfg, w, [...other, nextB]);
  closeTo(`${name} batch decode row 0`, sl.subarray(0, V), wantA.subarray(n * V), tol);
  closeTo(`${name} batch decode row 1`, sl.subarray(V, 2 * V), wantB.subarray(m * V), tol);
}

test('onnx: tinystories-656k (HF, rotate-half, tied) logits, KV cache, left-padded batch', async () => {
  const r = ref656k();
  const m = await model(TS656K);
  await checkModel('656k', m.config, m.weights, r.prompt_ids_no_prefix, r.nll_ids_no_prefix.slice(0, r.prompt_ids_no_prefix.length + 4));
  // and the independent numpy reference
  const s = await session(m.config, m.weights);
  const ids = r.prompt_ids_no_prefix;
  const out = await run(s, [ids], [ids.map(() => 1)], [ids.map((_, i) => i)], emptyPast(m.config, 1));
  closeTo('656k vs reference.json', out.logits.data as Float32Array, Float32Array.from(r.prompt_no_prefix_logits.flat()));
});

test('onnx: stories260K (GGUF, pairs RoPE, GQA) logits, KV cache, left-padded batch', async () => {
  const r = ref260k();
  const m = await model(S260K_GGUF);
  assert.equal(m.config.ropeStyle, 'pairs');
  await checkModel('260K', m.config, m.weights, r.prompt_ids, r.nll_ids.slice(0, r.prompt_ids.length + 3));
  const s = await session(m.config, m.weights);
  const ids = r.prompt_ids;
  const out = await run(s, [ids], [ids.map(() => 1)], [ids.map((_, i) => i)], emptyPast(m.config, 1));
  closeTo('260K vs reference.json', out.logits.data as Float32Array, Float32Array.from(r.prompt_logits.flat()));
});

test('onnx: onnxGenerate greedy = reference continuations (stories260K, tinystories-656k)', async () => {
  const r = ref260k();
  const m = await model(S260K_GGUF);
  const files = exportOnnx(m.config, m.weights);
  const s = await createOnnxSession(files);
  const seen: number[] = [];
  const g = await onnxGenerate(s, m.tokenizer, r.prompt, r.greedy_continuation_ids.length, { onToken: (id) => { seen.push(id); } });
  assert.deepEqual(g.promptIds, r.prompt_ids);
  assert.deepEqual(g.ids, r.greedy_continuation_ids);
  assert.deepEqual(seen, g.ids);
  assert.equal(g.stopReason, 'length');
  assert.equal(m.tokenizer.decode([...r.prompt_ids, ...g.ids], { skipSpecial: true }), r.greedy_text);
  assert.equal(r.greedy_text.startsWith(r.prompt), true);
  assert.equal(r.prompt + g.text, r.greedy_text);
  // ids prompt; stopping via onToken
  const texts: string[] = [];
  const g2 = await onnxGenerate(s, m.tokenizer, r.prompt_ids, 10, { onToken: (_id, text) => { texts.push(text); return texts.length < 3; } });
  assert.equal(g2.stopReason, 'abort');
  assert.deepEqual(g2.ids, r.greedy_continuation_ids.slice(0, 3));
  assert.equal(texts[2], g2.text);
  assert.equal(r.prompt + g2.text, m.tokenizer.decode([...r.prompt_ids, ...g2.ids], { skipSpecial: true }));
  const ac = new AbortController();
  ac.abort();
  assert.equal((await onnxGenerate(s, m.tokenizer, r.prompt_ids, 10, { signal: ac.signal })).stopReason, 'abort');
  // a stop id ends generation without being included
  const g3 = await onnxGenerate(s, m.tokenizer, r.prompt_ids, 10, { stopIds: [r.greedy_continuation_ids[4]] });
  assert.deepEqual(g3.ids, r.greedy_continuation_ids.slice(0, 4));
  assert.equal(g3.stopReason, 'stop');

  const r6 = ref656k();
  const m6 = await model(TS656K);
  const s6 = await createOnnxSession(exportOnnx(m6.config, m6.weights));
  const g6 = await onnxGenerate(s6, m6.tokenizer, [m6.config.bos!], r6.greedy_from_bos_ids.length);
  assert.deepEqual(g6.ids, r6.greedy_from_bos_ids);
  assert.equal(g6.text, r6.greedy_from_bos_text);
});

test('onnx: random tiny models — qwen2 bias, untied head, llama3 scaling, pairs, MQA, NKV = NH, HS ≠ C/NH', async () => {
  const variants: [string, Partial<LlamaConfig>][] = [
    ['llama tied', {}],
    ['qwen2 bias untied', { arch: 'qwen2', attnBias: true, tiedEmbeddings: false, ropeTheta: 1e6, eps: 1e-6 }],
    ['llama3 scaling', { ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 } }],
    ['pairs', { ropeStyle: 'pairs' }],
    ['MQA', { kvHeads: 1 }],
    ['MHA', { kvHeads: 4 }],
    ['headDim 8', { headDim: 8, heads: 4, kvHeads: 2 }],
  ];
  for (const [name, over] of variants) {
    const cfg = tinyConfig(over);
    const w = tinyWeights(cfg, 3);
    const prompt = [1, 17, 200, 33, 90, 4, 250];
    await checkModel(`tiny ${name}`, cfg, w, prompt, [1, 9, 8, 7, 6, 5, 4, 3, 2, 100], 2e-4);
  }
});

test('onnx: external data chunks load through createOnnxSession and match the inline export', async () => {
  const m = await model(TS656K);
  const inline = exportOnnx(m.config, m.weights);
  assert.equal([...inline.keys()].some((k) => k.includes('onnx_data')), false);
  const ext = exportOnnx(m.config, m.weights, { externalData: true, maxChunkBytes: 300_000 });
  const chunks = [...ext.keys()].filter((k) => k.startsWith('onnx/model.onnx_data')).sort();
  assert.ok(chunks.length >= 3, `expected several chunks, got ${chunks.join(', ')}`);
  assert.equal(chunks[0], 'onnx/model.onnx_data');
  assert.equal(chunks[1], 'onnx/model.onnx_data_1');
  assert.ok(ext.get('onnx/model.onnx')!.length < 100_000, 'model.onnx holds the graph only');
  const cfgJson = JSON.parse(new TextDecoder().decode(ext.get('config.json')));
  assert.deepEqual(cfgJson['transformers.js_config'], { dtype: 'fp32', use_external_data_format: { 'model.onnx': chunks.length } });
  const ids = [1, 147, 201, 282, 57];
  const feeds = () => ({ ...emptyPast(m.config, 1), input_ids: i64(ids, [1, 5]), attention_mask: i64([1, 1, 1, 1, 1], [1, 5]), position_ids: i64([0, 1, 2, 3, 4], [1, 5]) });
  const a = await (await createOnnxSession(inline)).run(feeds());
  const b = await (await createOnnxSession(ext)).run(feeds());
  assert.deepEqual(b.logits.data, a.logits.data);
});

test('onnx: folder files — config.json, tokenizer files, generation_config.json', async () => {
  const m = await model(TS656K);
  const tokFiles = new Map<string, Uint8Array>();
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
    tokFiles.set(f, new Uint8Array(readFileSync(join(TS656K, f))));
  }
  const base = readFileSync(join(TS656K, 'config.json'), 'utf8');
  const files = exportOnnx(m.config, m.weights, { tokenizerFiles: tokFiles, configJson: base });
  assert.deepEqual([...files.keys()].sort(), ['config.json', 'generation_config.json', 'onnx/model.onnx', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
  assert.equal(files.get('tokenizer.json'), tokFiles.get('tokenizer.json'));
  const c = JSON.parse(new TextDecoder().decode(files.get('config.json')));
  const orig = JSON.parse(base);
  for (const k of ['model_type', 'hidden_size', 'intermediate_size', 'num_attention_heads', 'num_key_value_heads', 'num_hidden_layers', 'vocab_size', 'rms_norm_eps', 'rope_theta', 'tie_word_embeddings', 'initializer_range', 'transformers_version']) {
    assert.deepEqual(c[k], orig[k], k);
  }
  assert.equal(c.head_dim, 16);
  assert.deepEqual(c['transformers.js_config'], { dtype: 'fp32' });
  // GGUF source, no tokenizer files: config built from LlamaConfig, generation_config written
  const g = await model(S260K_GGUF);
  const gf = exportOnnx(g.config, g.weights);
  assert.deepEqual([...gf.keys()].sort(), ['config.json', 'generation_config.json', 'onnx/model.onnx']);
  const gc = JSON.parse(new TextDecoder().decode(gf.get('config.json')));
  assert.equal(gc.model_type, 'llama');
  assert.deepEqual(gc.architectures, ['LlamaForCausalLM']);
  assert.equal(gc.num_key_value_heads, g.config.kvHeads);
  assert.equal(gc.bos_token_id, 1);
  assert.throws(() => exportOnnx(g.config, g.weights, { configJson: '{nope' }), /configJson is not valid JSON/);
  assert.throws(() => exportOnnx(g.config, { ...g.weights, norm: new Float32Array(3) }), /norm has 3 values/);
});

test('onnx: transformers.js loads the exported folder and greedy-generates the reference', async () => {
  const r = ref656k();
  const m = await model(TS656K);
  const tokFiles = new Map<string, Uint8Array>();
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) tokFiles.set(f, new Uint8Array(readFileSync(join(TS656K, f))));
  const files = exportOnnx(m.config, m.weights, { tokenizerFiles: tokFiles, configJson: readFileSync(join(TS656K, 'config.json'), 'utf8') });
  const root = mkdtempSync(join(tmpdir(), 'whittle-onnx-'));
  try {
    for (const [p, bytes] of files) {
      mkdirSync(dirname(join(root, 'ts656k', p)), { recursive: true });
      writeFileSync(join(root, 'ts656k', p), bytes);
    }
    const tf = await import('@huggingface/transformers');
    tf.env.allowRemoteModels = false;
    tf.env.allowLocalModels = true;
    tf.env.localModelPath = root + '/';
    tf.env.useFSCache = false;
    const lm = await tf.AutoModelForCausalLM.from_pretrained('ts656k', { dtype: 'fp32' });
    const n = 16;
    const out = await lm.generate({ inputs: new tf.Tensor('int64', BigInt64Array.from([1n]), [1, 1]), max_new_tokens: n, do_sample: false }) as InstanceType<typeof tf.Tensor>;
    const ids = Array.from(out.data as BigInt64Array, Number);
    assert.deepEqual(ids.slice(1), r.greedy_from_bos_ids.slice(0, n));
    await lm.dispose();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
