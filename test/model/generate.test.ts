// Inference (src/model/generate.ts) on tiny random models (test/model/tiny.ts) and the two real
// models in ../shared/models:
// - KV-cache logits after the (chunked) prefill and at every decode step equal a full recompute by
//   ref_logits (f32 / q8 / q4 bases against the dequantized reference; rope 'pairs' + q/k/v bias +
//   untied lm_head + MHA; LoRA unmerged against the reference on the host-merged weights);
// - logitsAll equals ref_logits; an InferenceModel sharing a LlamaModel's buffers equals its logits();
// - greedy: GPU argmax (chained, with lookahead) == host argmax; LoRA unmerged == merged (f32 base,
//   token-identical); the q8/q4 unmerged-vs-merged logit gap is measured and printed;
// - sampling is reproducible from a seed; top-k / top-p / repetition penalty on the host sampler;
// - EOS, stop strings (text cut before the stop, stream == text, nothing of the stop leaks), cache
//   reuse, cancellation by AbortSignal and by leaving the loop;
// - stories260K (GGUF) and tinystories-656k (HF) greedy continuations are token-identical to
//   reference.json, with decode tokens/s printed.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from '../harness.ts';
import type { LlamaConfig, LlamaWeights, LoraConfig, LoraTarget } from '../../src/model/config.ts';
import { generate, generateText, type GenToken, InferenceModel, type LoraWeights } from '../../src/model/generate.ts';
import { dequantizedWeights, LlamaModel } from '../../src/model/llama.ts';
import { mergeLora } from '../../src/model/merge.ts';
import type { QFormat } from '../../src/model/quant.ts';
import { applyRepetitionPenalty, argmax, candidates, Rng, sampleToken } from '../../src/model/sample.ts';
import { ref_logits } from '../../src/ref/model.ts';
import type { Tokenizer } from '../../src/tokenizer/types.ts';
import { assertClose, closeness, testGpu, TOL } from '../util.ts';
import { ALL_TARGETS, randomLora, tinyConfig, tinyWeights } from './tiny.ts';

const LORA: LoraConfig = { rank: 4, alpha: 8, dropout: 0.1, targets: ALL_TARGETS };
const PROMPT = [1, 17, 200, 33, 5, 99, 140];

function lastRow(z: Float32Array, V: number): Float32Array {
  return z.subarray(z.length - V);
}

/** A character tokenizer for the tiny models: id ≥ 3 → one letter, every 5th followed by a space. */
function charTokenizer(V: number): Tokenizer {
  const piece = (id: number) => (id < 3 ? '' : String.fromCharCode(97 + (id % 26)) + (id % 5 === 0 ? ' ' : ''));
  return {
    kind: 'hf', vocabSize: V, bos: 1, eos: [2], addBosDefault: true, prefixSpaceDefault: false, bosToken: '<s>', eosToken: '</s>',
    encode: () => { throw new Error('not used'); },
    decode: (ids) => Array.from(ids, piece).join(''),
    tokenToString: piece, tokenToId: () => undefined, isSpecial: (id) => id < 3,
  };
}

/** Prefill PROMPT, then decode `steps` greedy tokens; compare every logits vector with ref_logits(refW). */
async function checkAgainstRef(name: string, m: InferenceModel, cfg: LlamaConfig, refW: LlamaWeights, steps: number): Promise<void> {
  const V = cfg.vocab, ids = PROMPT.slice();
  let z = await m.prefill(ids);
  for (let s = 0; ; s++) {
    assertClose(`${name} step ${s} (${ids.length} tokens)`, z, lastRow(ref_logits(cfg, refW, ids), V), TOL.f32sum);
    if (s === steps) break;
    const id = argmax(z);
    ids.push(id);
    z = await m.decode(id);
  }
  assert.deepEqual([...m.tokens], ids);
}

for (const quant of ['f32', 'q8', 'q4'] as QFormat[]) {
  test(`KV-cache logits == ref_logits at prefill and every decode step (${quant}, prefill chunk 3)`, async () => {
    const gpu = await testGpu();
    const cfg = tinyConfig();
    const w = tinyWeights(cfg, 1);
    const m = InferenceModel.create(gpu, cfg, w, { quant, maxSeq: 40, prefillChunk: 3 });
    await checkAgainstRef(quant, m, cfg, dequantizedWeights(cfg, w, quant), 14);
    m.destroy();
  });
}

test('KV-cache logits == ref_logits: rope pairs, q/k/v bias, untied lm_head, NKV = NH, 3 layers', async () => {
  const gpu = await testGpu();
  const cfg = tinyConfig({ ropeStyle: 'pairs', attnBias: true, tiedEmbeddings: false, kvHeads: 4, layers: 3, vocab: 300 });
  const w = tinyWeights(cfg, 2);
  const m = InferenceModel.create(gpu, cfg, w, { maxSeq: 32 });
  await checkAgainstRef('variant', m, cfg, w, 10);
  m.destroy();
});

test('KV-cache logits with LoRA unmerged == ref_logits on the host-merged weights; merged model too', async () => {
  const gpu = await testGpu();
  const cfg = tinyConfig();
  const w = tinyWeights(cfg, 3);
  const lora: LoraWeights = { config: LORA, params: randomLora(cfg, LORA, 4, 0.2) };
  const merged = mergeLora(cfg, w, lora.config, lora.params);
  for (const merge of [false, true]) {
    const m = InferenceModel.create(gpu, cfg, w, { lora, merge, maxSeq: 30, prefillChunk: 4 });
    assert.equal(m.loraMode, merge ? 'merged' : 'unmerged');
    await checkAgainstRef(merge ? 'merged' : 'unmerged', m, cfg, merged, 8);
    m.destroy();
  }
});

// an adapter on some targets only (q and v, gate: PEFT's usual subset and a lone MLP target) on a
// fused base: the grouped form's zero blocks stand for the missing targets; withAdapter on a shared
// base and the training model's buffers (fromModel: per target) give the same logits
test('KV-cache logits with an adapter on q, v and gate only (grouped on the fused base) == ref on the merged weights', async () => {
  const gpu = await testGpu();
  const cfg = tinyConfig({ attnBias: true });
  const w = tinyWeights(cfg, 5);
  const config = { ...LORA, targets: ['q', 'v', 'gate'] as LoraTarget[] };
  const lora: LoraWeights = { config, params: randomLora(cfg, config, 6, 0.2) };
  const merged = mergeLora(cfg, w, config, lora.params);
  const m = InferenceModel.create(gpu, cfg, w, { lora, maxSeq: 30, prefillChunk: 4 });
  await checkAgainstRef('subset unmerged', m, cfg, merged, 6);
  const base = InferenceModel.create(gpu, cfg, w, { maxSeq: 30 });
  const tuned = base.withAdapter(lora);
  await checkAgainstRef('subset withAdapter', tuned, cfg, merged, 6);
  await checkAgainstRef('its base', base, cfg, w, 3);
  for (const x of [tuned, base, m]) x.destroy();
});

test('logitsAll == ref_logits (every position); fromModel(LlamaModel) == LlamaModel.logits', async () => {
  const gpu = await testGpu();
  const cfg = tinyConfig();
  const w = tinyWeights(cfg, 5);
  const ids = Array.from({ length: 13 }, (_, i) => (i * 37 + 11) % cfg.vocab);
  const m = InferenceModel.create(gpu, cfg, w, { prefillChunk: 5 });
  assertClose('logitsAll', await m.logitsAll(ids), ref_logits(cfg, w, ids), TOL.f32sum);
  assert.deepEqual([...m.tokens], ids);
  m.destroy();
  const init = randomLora(cfg, LORA, 6, 0.2);
  const train = new LlamaModel(gpu, cfg, w, { quant: 'q8', lora: LORA, batch: 1, seq: 16, init });
  const want = (await train.logits([ids]))[0];
  const inf = InferenceModel.fromModel(train);
  assert.equal(inf.loraMode, 'shared');
  const got = await inf.prefill(ids);
  assertClose('fromModel last logits', got, lastRow(want, cfg.vocab), TOL.f32sum);
  inf.destroy();
  // the shared buffers are still alive
  assertClose('training model after destroy', (await train.logits([ids]))[0], want, { atol: 0, rtol: 0 });
  train.destroy();
});

test('greedy: GPU argmax (chained, lookahead 0/1/3) == host argmax; LoRA unmerged == merged on f32', async () => {
  const gpu = await testGpu();
  const cfg = tinyConfig();
  const w = tinyWeights(cfg, 7);
  const lora: LoraWeights = { config: LORA, params: randomLora(cfg, LORA, 8, 0.1) };
  const opts = { maxTokens: 40, greedy: true, eos: [] };
  const un = InferenceModel.create(gpu, cfg, w, { lora, maxSeq: 64 });
  const host = await generateText(un, PROMPT, { ...opts, gpuGreedy: false, reuseCache: false });
  assert.equal(host.ids.length, 40);
  assert.equal(host.gpuGreedy, false);
  for (const lookahead of [0, 1, 3]) {
    const r = await generateText(un, PROMPT, { ...opts, lookahead, reuseCache: false });
    assert.equal(r.gpuGreedy, true);
    assert.deepEqual(r.ids, host.ids, `GPU greedy lookahead ${lookahead}`);
    assert.equal(r.finishReason, 'length');
  }
  const mg = InferenceModel.create(gpu, cfg, w, { lora, merge: true, maxSeq: 64 });
  const merged = await generateText(mg, PROMPT, opts);
  assert.deepEqual(merged.ids, host.ids, 'LoRA merged vs unmerged (f32 base)');
  un.destroy();
  mg.destroy();
});

test('q8 / q4: LoRA unmerged vs merged-then-requantized (measured, printed)', async () => {
  const gpu = await testGpu();
  const cfg = tinyConfig();
  const w = tinyWeights(cfg, 7);
  const lora: LoraWeights = { config: LORA, params: randomLora(cfg, LORA, 8, 0.1) };
  const ids = PROMPT.concat(Array.from({ length: 20 }, (_, i) => (i * 13 + 7) % cfg.vocab));
  for (const quant of ['f32', 'q8', 'q4'] as QFormat[]) {
    const a = InferenceModel.create(gpu, cfg, w, { quant, lora });
    const b = InferenceModel.create(gpu, cfg, w, { quant, lora, merge: true });
    const za = await a.logitsAll(ids), zb = await b.logitsAll(ids);
    const c = closeness(za, zb, 0, 0);
    let scale = 0;
    for (const x of za) scale = Math.max(scale, Math.abs(x));
    const ga = await generateText(a, PROMPT, { maxTokens: 30, greedy: true, eos: [] });
    const gb = await generateText(b, PROMPT, { maxTokens: 30, greedy: true, eos: [] });
    let same = 0;
    while (same < ga.ids.length && ga.ids[same] === gb.ids[same]) same++;
    console.log(`  ${quant}: max |logit unmerged − merged| = ${c.maxAbs.toExponential(2)} (max |logit| ${scale.toFixed(2)}); ` +
      `greedy: first ${same}/30 tokens identical`);
    if (quant === 'f32') assert.ok(c.maxAbs < 1e-3, 'f32 merge is exact up to rounding');
    else assert.ok(c.maxAbs < 0.5 * scale, `${quant}: merged model stays close`);
    a.destroy();
    b.destroy();
  }
});

test('host sampler: top-k, top-p, repetition penalty, determinism', () => {
  const z = Float32Array.from([1, 3, 2, 3, -1, 0]);
  assert.equal(argmax(z), 1);
  assert.deepEqual(candidates(z, { topK: 2 }).ids, [1, 3]);
  assert.deepEqual(candidates(z, { topK: 3 }).ids, [1, 3, 2]);
  const p = candidates(z, {});
  assert.deepEqual(p.ids, [1, 3, 2, 0, 5, 4]);
  const e = [3, 3, 2, 1, 0, -1].map((x) => Math.exp(x - 3)), sum = e.reduce((a, b) => a + b);
  assertClose('softmax', p.probs, e.map((x) => x / sum), { atol: 1e-12, rtol: 1e-9 });
  // top-p: p(1) = p(3) ≈ 0.39 each, p(2) ≈ 0.14: 0.5 keeps two, 0.8 three
  assert.deepEqual(candidates(z, { topP: 0.5 }).ids, [1, 3]);
  assert.deepEqual(candidates(z, { topP: 0.8 }).ids, [1, 3, 2]);
  assert.deepEqual(candidates(z, { topP: 0.8, topK: 1 }).ids, [1, 3], 'ties at the k-th value are kept');
  assert.deepEqual(candidates(z, { topP: 0.3 }).ids, [1], 'top-p keeps at least one');
  assertClose('renormalised', [candidates(z, { topP: 0.5 }).probs.reduce((a, b) => a + b)], [1], { atol: 1e-12, rtol: 0 });
  assert.deepEqual([...applyRepetitionPenalty(z, [1, 4, 1], 2)], [1, 1.5, 2, 3, -2, 0]);
  assert.equal(sampleToken(z, { greedy: true, repetitionPenalty: 2 }, new Rng(1), [1]), 3);
  assert.equal(sampleToken(z, { temperature: 0 }, new Rng(1)), 1);
  const draw = (seed: number) => { const r = new Rng(seed); return Array.from({ length: 50 }, () => sampleToken(z, { temperature: 1.3, topK: 4 }, r)); };
  assert.deepEqual(draw(5), draw(5));
  assert.notDeepEqual(draw(5), draw(6));
  const counts = new Map<number, number>();
  const r = new Rng(9);
  for (let i = 0; i < 4000; i++) { const t = sampleToken(z, { topP: 0.5 }, r); counts.set(t, (counts.get(t) ?? 0) + 1); }
  assert.deepEqual([...counts.keys()].sort(), [1, 3]);
  assert.ok(Math.abs(counts.get(1)! / 4000 - 0.5) < 0.05, 'equal logits are drawn about equally');
});

test('sampling on the GPU model is reproducible from a seed; temperature changes it', async () => {
  const gpu = await testGpu();
  const cfg = tinyConfig();
  const m = InferenceModel.create(gpu, cfg, tinyWeights(cfg, 9));
  const o = { maxTokens: 30, temperature: 0.9, topK: 40, topP: 0.95, repetitionPenalty: 1.1, eos: [] };
  const a = await generateText(m, PROMPT, { ...o, seed: 42 });
  const b = await generateText(m, PROMPT, { ...o, seed: 42 });
  const c = await generateText(m, PROMPT, { ...o, seed: 43 });
  assert.equal(a.gpuGreedy, false);
  assert.deepEqual(a.ids, b.ids);
  assert.notDeepEqual(a.ids, c.ids);
  assert.ok(b.reusedTokens > 0, 'the second run reused the cached prompt');
  m.destroy();
});

test('EOS ends generation (not emitted); stop strings cut the text and never leak into the stream', async () => {
  const gpu = await testGpu();
  const cfg = tinyConfig();
  const tok = charTokenizer(cfg.vocab);
  const m = InferenceModel.create(gpu, cfg, tinyWeights(cfg, 10));
  const base = await generateText(m, PROMPT, { maxTokens: 30, greedy: true, eos: [], tokenizer: tok });
  assert.equal(base.text, tok.decode(base.ids));
  const e = await generateText(m, PROMPT, { maxTokens: 30, greedy: true, eos: [base.ids[4]], tokenizer: tok });
  assert.equal(e.finishReason, 'eos');
  assert.deepEqual(e.ids, base.ids.slice(0, base.ids.indexOf(base.ids[4])));
  // a stop string spanning tokens 6..8 of the greedy text
  const pre = tok.decode(base.ids.slice(0, 6)), stopStr = tok.decode(base.ids.slice(6, 9));
  const want = base.text.slice(0, base.text.indexOf(stopStr));
  for (const gpuGreedy of [true, false]) {
    const events: GenToken[] = [];
    const s = await generateText(m, PROMPT, { maxTokens: 30, greedy: true, eos: [], tokenizer: tok, stop: ['zzzz', stopStr], gpuGreedy, onToken: (t) => events.push(t) });
    assert.equal(s.finishReason, 'stop');
    assert.equal(s.stop, stopStr);
    assert.equal(s.text, want);
    assert.ok(want.length <= pre.length);
    assert.equal(events.map((t) => t.text).join(''), s.text, 'the stream is the text');
    assert.ok(!events.map((t) => t.text).join('').includes(stopStr));
    assert.ok(s.ids.length <= 9);
  }
  // without a stop: the streamed text is the decoded text
  const events: string[] = [];
  const r = await generateText(m, PROMPT, { maxTokens: 12, temperature: 0.8, seed: 1, eos: [], tokenizer: tok, onToken: (t) => events.push(t.text) });
  assert.equal(events.join(''), r.text);
  assert.equal(r.text, tok.decode(r.ids));
  m.destroy();
});

test('cache reuse equals a fresh prefill; cancellation by AbortSignal and by leaving the loop', async () => {
  const gpu = await testGpu();
  const cfg = tinyConfig();
  const w = tinyWeights(cfg, 11);
  const m = InferenceModel.create(gpu, cfg, w, { maxSeq: 60 });
  const fresh = InferenceModel.create(gpu, cfg, w, { maxSeq: 60 });
  const o = { maxTokens: 10, greedy: true, eos: [] as number[] };
  const r1 = await generateText(m, PROMPT, o);
  assert.deepEqual([...m.tokens], PROMPT.concat(r1.ids.slice(0, -1)), 'cache = prompt + all but the last token');
  const p2 = PROMPT.concat(r1.ids.slice(0, 6), [77]);
  const r2 = await generateText(m, p2, o);
  assert.equal(r2.reusedTokens, PROMPT.length + 6);
  const f2 = await generateText(fresh, p2, o);
  assert.equal(f2.reusedTokens, 0);
  assert.deepEqual(r2.ids, f2.ids);
  // AbortSignal: aborted after the 3rd token
  for (const gpuGreedy of [true, false]) {
    const ac = new AbortController();
    let n = 0;
    const a = await generateText(m, PROMPT, { ...o, maxTokens: 30, gpuGreedy, signal: ac.signal, onToken: () => { if (++n === 3) ac.abort(); } });
    assert.equal(a.finishReason, 'abort');
    assert.equal(a.ids.length, 3);
    assert.deepEqual([...m.tokens], PROMPT.concat(a.ids.slice(0, 2)));
  }
  // leaving the for-await loop
  let k = 0;
  for await (const t of generate(m, PROMPT, { ...o, maxTokens: 30 })) {
    assert.ok(t.id !== null);
    if (++k === 4) break;
  }
  assert.equal(m.length, PROMPT.length + 3);
  const again = await generateText(m, PROMPT, o);
  assert.deepEqual(again.ids, r1.ids);
  // a full cache ends with 'length'
  const small = InferenceModel.create(gpu, cfg, w, { maxSeq: PROMPT.length + 4 });
  const full = await generateText(small, PROMPT, { ...o, maxTokens: 100 });
  assert.equal(full.finishReason, 'length');
  assert.deepEqual(full.ids, r1.ids.slice(0, 5));
  small.destroy();
  m.destroy();
  fresh.destroy();
});

// ---- real models --------------------------------------------------------------------------------

const SHARED = new URL('../../../shared/models/', import.meta.url).pathname;

async function realModel(path: string) {
  const { loadModel } = await import('../../src/model/load.ts');
  const { nodeSource } = await import('../../src/model/source-node.ts');
  return loadModel(await nodeSource(path));
}

function asIds(x: unknown): number[] {
  return typeof x === 'string' ? JSON.parse(x) : (x as number[]);
}

for (const spec of [
  { name: 'stories260K (GGUF)', path: 'stories260K/stories260K.gguf', ref: 'stories260K/reference.json', prompt: 'prompt_ids', want: 'greedy_continuation_ids', logits: 'prompt_logits' },
  { name: 'tinystories-656k (HF)', path: 'tinystories-656k', ref: 'tinystories-656k/reference.json', prompt: null, want: 'greedy_from_bos_ids', logits: 'prompt_no_prefix_logits' },
] as const) {
  test(`${spec.name}: KV-cache greedy continuation == reference.json (f32), prompt logits match`, async () => {
    if (!existsSync(SHARED + spec.path)) throw new Error(`missing ${SHARED + spec.path}`);
    const gpu = await testGpu();
    const ref = JSON.parse(readFileSync(SHARED + spec.ref, 'utf8'));
    const loaded = await realModel(SHARED + spec.path);
    const prompt = spec.prompt ? asIds(ref[spec.prompt]) : [1];
    const want = asIds(ref[spec.want]);
    const m = InferenceModel.create(gpu, loaded.config, loaded.weights, { maxSeq: 256 });
    const r = await generateText(m, prompt, { maxTokens: want.length, greedy: true, eos: [], reuseCache: false });
    assert.deepEqual(r.ids, want);
    const host = await generateText(m, prompt, { maxTokens: want.length, greedy: true, eos: [], reuseCache: false, gpuGreedy: false });
    assert.deepEqual(host.ids, want);
    console.log(`  ${spec.name}: ${want.length} tokens; decode ${r.tokensPerSecond.toFixed(0)} tok/s (GPU greedy), ` +
      `${host.tokensPerSecond.toFixed(0)} tok/s (host greedy, V logits read back per step); prefill ${r.prefillMs.toFixed(1)} ms`);
    // logits of the reference prompt positions (stored rounded to 5 decimals)
    const refIds = spec.prompt ? prompt : asIds(ref.prompt_ids_no_prefix);
    const wantZ = Float32Array.from(asIds(ref[spec.logits]).flat() as number[]);
    assertClose('prompt logits', await m.logitsAll(refIds), wantZ, { atol: 2e-4, rtol: 1e-4 });
    m.destroy();
  });
}
