// Hugging Face tokenizer.json tokenizers (src/tokenizer/hf.ts) on tinystories-656k: the reference
// ids of reference.json with and without the lone "▁" prefix quirk, decoding the reference greedy
// story, special tokens, and BOS handling of tokenizers without BOS (Qwen2-style config).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from '../harness.ts';
import { HfTokenizer } from '../../src/tokenizer/hf.ts';
import { TS656K, ref656k, rejects } from '../model/fixtures.ts';

const tj = () => JSON.parse(readFileSync(TS656K + '/tokenizer.json', 'utf8'));
const tc = () => JSON.parse(readFileSync(TS656K + '/tokenizer_config.json', 'utf8'));
const tok = () => new HfTokenizer(tj(), { config: tc(), bosId: 1, eosIds: [2] });

test('hf tokenizer (656k): reference prompt ids, with and without the Prepend "▁" quirk', () => {
  const r = ref656k();
  const t = tok();
  assert.equal(t.kind, 'hf');
  assert.equal(t.vocabSize, 2048);
  assert.equal(t.bos, 1);
  assert.deepEqual(t.eos, [2]);
  assert.equal(t.bosToken, '<|start_story|>');
  assert.equal(t.eosToken, '<|end_story|>');
  assert.equal(t.addBosDefault, true);
  assert.equal(t.prefixSpaceDefault, true);
  assert.deepEqual(t.encode(r.prompt), r.prompt_ids_tokenizer_json);
  assert.deepEqual(t.encode(r.prompt), [1, 80, 147, 201, 282, 57]);
  assert.deepEqual(t.encode(r.prompt, { prefixSpace: false }), r.prompt_ids_no_prefix);
  assert.deepEqual(t.encode(r.nll_text), r.nll_ids_tokenizer_json);
  assert.deepEqual(t.encode(r.nll_text, { prefixSpace: false }), r.nll_ids_no_prefix);
  assert.deepEqual(t.encode(r.prompt, { addBos: false, prefixSpace: false }), r.prompt_ids_no_prefix.slice(1));
  assert.equal(t.tokenToString(80), '▁');
  assert.deepEqual([147, 201, 282, 57].map((i) => t.tokenToString(i)), ['On', 'ce▁', 'upon▁a▁tim', 'e']);
  assert.equal(t.tokenToId('upon▁a▁tim'), 282);
  assert.equal(t.tokenToString(99999), '');
  assert.ok(t.isSpecial(1) && t.isSpecial(2) && !t.isSpecial(80));
});

test('hf tokenizer (656k): decoding the reference greedy story, specials kept or skipped', () => {
  const r = ref656k();
  const t = tok();
  assert.equal(t.decode(r.greedy_from_bos_ids), r.greedy_from_bos_text);
  assert.equal(t.decode([1, ...r.greedy_from_bos_ids], { skipSpecial: true }), r.greedy_from_bos_text);
  assert.equal(t.decode(r.prompt_ids_tokenizer_json, { skipSpecial: true }), r.prompt);
  assert.equal(t.decode(r.prompt_ids_no_prefix, { skipSpecial: true }), r.prompt);
  assert.match(t.decode([1, 147, 201, 2]), /^<\|start_story\|>.*Once.*<\|end_story\|>$/);
  // special token text in the input becomes the special id
  const ids = t.encode('The end.<|end_story|>', { addBos: false });
  assert.equal(ids[ids.length - 1], 2);
});

test('hf tokenizer: BOS from config.json when tokenizer_config is absent; none when bos_token is null', async () => {
  const plain = new HfTokenizer(tj(), { bosId: 1, eosIds: [2] });
  assert.equal(plain.bos, 1);
  assert.equal(plain.bosToken, '<|start_story|>');
  assert.equal(plain.addBosDefault, true); // its post-processor adds BOS
  assert.deepEqual(plain.encode('Once upon a time'), ref656k().prompt_ids_tokenizer_json);
  // Qwen2-style: tokenizer_config says bos_token null → no BOS, whatever config.json says
  const qwenish = new HfTokenizer(tj(), { config: { ...tc(), bos_token: null, add_bos_token: undefined }, bosId: 1, eosIds: [2] });
  assert.equal(qwenish.bos, null);
  assert.equal(qwenish.addBosDefault, false);
  assert.deepEqual(qwenish.encode('Once upon a time'), [80, 147, 201, 282, 57]);
  assert.deepEqual(qwenish.encode('Once upon a time', { addBos: true }), [80, 147, 201, 282, 57]);
  // add_bos_token false is honoured
  const noBos = new HfTokenizer(tj(), { config: { ...tc(), add_bos_token: false } });
  assert.equal(noBos.addBosDefault, false);
  assert.deepEqual(noBos.encode('Once', { addBos: true }).slice(0, 1), [1]);
  // a tokenizer without any prefix step has prefixSpaceDefault false
  const j = tj();
  j.normalizer = { type: 'Replace', pattern: { String: ' ' }, content: '▁' };
  const np = new HfTokenizer(j, { config: tc() });
  assert.equal(np.prefixSpaceDefault, false);
  assert.deepEqual(np.encode('Once upon a time'), ref656k().prompt_ids_no_prefix);
  await rejects(() => new HfTokenizer({ version: '1.0' }, { label: 'x/tokenizer.json' }), /x\/tokenizer\.json: not a tokenizer\.json/);
});
