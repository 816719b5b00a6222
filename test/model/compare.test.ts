// Base vs tuned in one call (src/model/compare.ts) on a tiny random model (test/model/tiny.ts):
// - an adapter with B = 0: both sides give the same ids and text, greedy (GPU argmax) and sampled
//   (same seed); both sides stream, interleaved, and each side's stream concatenates to its text;
// - B ≠ 0: the tuned side differs, and each side equals a standalone generateText on its own model
//   (InferenceModel.create with / without the adapter); --merge-like opts.merge gives the same
//   greedy tokens on a second upload (sharedBase false); interleave: false streams base then tuned;
// - withAdapter shares the base upload (the tuned model's own bytes exclude it); a mis-shaped
//   adapter is an error naming the tensor.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import type { LoraConfig } from '../../src/model/config.ts';
import { compareGenerate, type CompareSide } from '../../src/model/compare.ts';
import { generateText, type GenToken, InferenceModel, type LoraWeights } from '../../src/model/generate.ts';
import type { Tokenizer } from '../../src/tokenizer/types.ts';
import { testGpu } from '../util.ts';
import { ALL_TARGETS, randomLora, tinyConfig, tinyWeights } from './tiny.ts';

const LORA: LoraConfig = { rank: 4, alpha: 8, dropout: 0.1, targets: ALL_TARGETS };
const PROMPT = [1, 17, 200, 33, 5, 99, 140];

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

/** Every streamed event, in order, with its side. */
function recorder() {
  const events: { side: CompareSide; ev: GenToken }[] = [];
  const text = (side: CompareSide) => events.filter((e) => e.side === side).map((e) => e.ev.text).join('');
  return { events, text, on: (side: CompareSide, ev: GenToken) => void events.push({ side, ev }) };
}

const cfg = tinyConfig();
const weights = tinyWeights(cfg, 11);
const tokenizer = charTokenizer(cfg.vocab);

test('compareGenerate, B = 0 adapter: identical ids and text (greedy on the GPU and seeded sampling); both stream, interleaved', async () => {
  const gpu = await testGpu();
  const zero: LoraWeights = { config: LORA, params: randomLora(cfg, LORA, 2, 0) };
  for (const sampling of [{ greedy: true }, { temperature: 1, topK: 0, topP: 0.95, seed: 9 }]) {
    const rec = recorder();
    const r = await compareGenerate(gpu, cfg, weights, zero, PROMPT, { ...sampling, maxTokens: 20, eos: [], tokenizer }, rec.on);
    const what = JSON.stringify(sampling);
    assert.equal(r.loraMode, 'unmerged', what);
    assert.equal(r.sharedBase, true, what);
    assert.equal(r.base.ids.length, 20, what);
    assert.deepEqual(r.tuned.ids, r.base.ids, what);
    assert.equal(r.tuned.text, r.base.text, what);
    assert.ok(r.base.text.length > 0, what);
    assert.equal(r.firstDiff, -1, what);
    assert.equal(r.base.gpuGreedy, !!sampling.greedy, what);
    for (const side of ['base', 'tuned'] as const) {
      assert.equal(rec.text(side), r[side].text, `${what}: the ${side} stream is its text`);
      assert.deepEqual(rec.events.filter((e) => e.side === side && e.ev.id !== null).map((e) => e.ev.id), r[side].ids, `${what}: ${side} streamed ids`);
    }
    // interleaved: the tuned side streams before the base side is done
    const firstTuned = rec.events.findIndex((e) => e.side === 'tuned');
    const lastBase = rec.events.map((e) => e.side).lastIndexOf('base');
    assert.ok(firstTuned >= 0 && firstTuned < lastBase, `${what}: interleaved streams (first tuned event ${firstTuned}, last base event ${lastBase})`);
  }
});

test('compareGenerate, B ≠ 0: tuned differs; each side == a standalone generation; merge and interleave: false agree', async () => {
  const gpu = await testGpu();
  const lora: LoraWeights = { config: LORA, params: randomLora(cfg, LORA, 4, 0.3) };
  const opts = { greedy: true, maxTokens: 16, eos: [], tokenizer };
  const rec = recorder();
  const r = await compareGenerate(gpu, cfg, weights, lora, PROMPT, opts, rec.on);
  assert.ok(r.firstDiff >= 0, 'the adapter changes the greedy continuation');
  assert.notDeepEqual(r.tuned.ids, r.base.ids);
  assert.equal(rec.text('tuned'), r.tuned.text);
  assert.equal(rec.text('base'), r.base.text);

  const solo = async (l: LoraWeights | null) => {
    const m = InferenceModel.create(gpu, cfg, weights, { maxSeq: 32, lora: l });
    try {
      return await generateText(m, PROMPT, opts);
    } finally {
      m.destroy();
    }
  };
  assert.deepEqual(r.base.ids, (await solo(null)).ids, 'base side == the base alone');
  assert.deepEqual(r.tuned.ids, (await solo(lora)).ids, 'tuned side == the adapter alone (unmerged)');

  const mg = await compareGenerate(gpu, cfg, weights, lora, PROMPT, { ...opts, merge: true });
  assert.equal(mg.loraMode, 'merged');
  assert.equal(mg.sharedBase, false);
  assert.deepEqual(mg.tuned.ids, r.tuned.ids, 'merged == unmerged greedy tokens (f32)');
  assert.deepEqual(mg.base.ids, r.base.ids);

  const seq = recorder();
  const sq = await compareGenerate(gpu, cfg, weights, lora, PROMPT, { ...opts, interleave: false, lookahead: 0 }, seq.on);
  assert.deepEqual(sq.tuned.ids, r.tuned.ids);
  const sides = seq.events.map((e) => e.side);
  assert.equal(sides.indexOf('tuned'), sides.lastIndexOf('base') + 1, 'interleave: false streams base, then tuned');

  const none = await compareGenerate(gpu, cfg, weights, null, PROMPT, opts);
  assert.equal(none.loraMode, 'none');
  assert.deepEqual(none.tuned.ids, none.base.ids);
});

test('withAdapter shares the base upload; a mis-shaped adapter names the tensor', async () => {
  const gpu = await testGpu();
  const base = InferenceModel.create(gpu, cfg, weights, { maxSeq: 24 });
  const lora: LoraWeights = { config: LORA, params: randomLora(cfg, LORA, 6, 0.3) };
  const tuned = base.withAdapter(lora);
  try {
    assert.equal(tuned.loraMode, 'unmerged');
    assert.equal(tuned.maxSeq, 24);
    const alone = InferenceModel.create(gpu, cfg, weights, { maxSeq: 24, lora });
    const [a, b] = [await tuned.prefill(PROMPT), await alone.prefill(PROMPT)];
    assert.deepEqual(a, b, 'same logits as the adapter on its own upload');
    assert.ok(tuned.bytes < alone.bytes, `the shared base is not counted twice (${tuned.bytes} < ${alone.bytes} bytes)`);
    alone.destroy();
  } finally {
    tuned.destroy();
  }
  const bad = new Map(lora.params);
  bad.set('1.v', { A: lora.params.get('1.v')!.A, B: new Float32Array(7) });
  assert.throws(() => base.withAdapter({ config: LORA, params: bad }), /LoRA 1\.v B has 7 values, expected \(32, 4\) = 128/);
  await assert.rejects(compareGenerate(gpu, cfg, weights, { config: LORA, params: bad }, PROMPT, { maxTokens: 2 }), /LoRA 1\.v B has 7 values/);
  // the base still works after its adapted twin was destroyed
  assert.equal((await base.prefill(PROMPT)).length, cfg.vocab);
  base.destroy();
  const merged = InferenceModel.create(gpu, cfg, weights, { maxSeq: 8, lora, merge: true });
  assert.throws(() => merged.withAdapter(null), /withAdapter needs a model whose base is not merged/);
  merged.destroy();
});
