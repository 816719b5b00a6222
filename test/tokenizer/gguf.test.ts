// Tokenizers rebuilt from GGUF metadata (src/tokenizer/gguf.ts, spm.ts): stories260K's SentencePiece
// vocabulary gives reference.json's ids and text; its pieces/scores match Karpathy's tok512.bin;
// the SPM merge loop agrees with an HF BPE built from the same vocabulary; byte fallback and
// special-token handling follow llama.cpp; a synthetic gpt2 byte-level BPE vocabulary encodes,
// merges and round-trips; unsupported tokenizer metadata gives clear errors.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from '../harness.ts';
import { GGUFType, parseGGUF, writeGGUF, type GGUFKV } from '../../src/model/gguf.ts';
import { tokenizerFromGGUF, ggufChatTemplate } from '../../src/tokenizer/gguf.ts';
import { HfTokenizer } from '../../src/tokenizer/hf.ts';
import { S260K, S260K_GGUF, ref260k, rejects } from '../model/fixtures.ts';

const g260 = () => parseGGUF('stories260K.gguf', new Uint8Array(readFileSync(S260K_GGUF)));

test('gguf llama (SPM) tokenizer: stories260K reference ids and greedy text', () => {
  const r = ref260k();
  const t = tokenizerFromGGUF(g260());
  assert.equal(t.kind, 'spm');
  assert.equal(t.vocabSize, 512);
  assert.equal(t.bos, 1);
  assert.deepEqual(t.eos, [2]);
  assert.equal(t.bosToken, '<s>');
  assert.equal(t.eosToken, '</s>');
  assert.ok(t.addBosDefault && t.prefixSpaceDefault);
  assert.deepEqual(t.encode(r.prompt), r.prompt_ids);
  assert.deepEqual(t.encode(r.prompt), [1, 403, 407, 261, 378]);
  assert.deepEqual(t.encode(r.nll_text), r.nll_ids);
  assert.equal(t.decode([...r.prompt_ids, ...r.greedy_continuation_ids], { skipSpecial: true }), r.greedy_text);
  assert.equal(t.decode([...r.prompt_ids, ...r.greedy_continuation_ids]), '<s>' + r.greedy_text);
  assert.equal(t.tokenToString(403), '▁Once');
  assert.equal(t.tokenToId('▁the'), 265);
  assert.ok(t.isSpecial(1) && t.isSpecial(2) && !t.isSpecial(403));
  assert.deepEqual(t.encode('Once', { addBos: false, prefixSpace: false }).map((i) => t.tokenToString(i)).join(''), 'Once');
});

test('gguf llama (SPM) tokenizer: byte fallback, unicode round trip, special tokens as llama.cpp', () => {
  const t = tokenizerFromGGUF(g260());
  // 'ß' is not a piece: UTF-8 bytes C3 9F → <0xC3> <0x9F> (ids 3 + byte)
  const ids = t.encode('ß', { addBos: false, prefixSpace: false });
  assert.deepEqual(ids, [3 + 0xc3, 3 + 0x9f]);
  assert.equal(t.tokenToString(ids[0]), '<0xC3>');
  for (const s of ['ß 😀 “quoted” — naïve', 'Tabs\tand\nnewlines  double  spaces', 'é is a piece here']) {
    assert.equal(t.decode(t.encode(s), { skipSpecial: true }), s);
    assert.equal(t.decode(t.encode(s, { addBos: false })), s);
  }
  // control token text is parsed; text after a special token gets the prefix space again
  const sp = t.encode('<s>hi</s> there', { addBos: false });
  assert.deepEqual(sp.slice(0, 1), [1]);
  assert.equal(sp[sp.indexOf(2) - 1] !== undefined, true);
  assert.deepEqual(sp.slice(1, sp.indexOf(2)), t.encode('hi', { addBos: false }));
  assert.deepEqual(sp.slice(sp.indexOf(2) + 1), t.encode('  there', { addBos: false, prefixSpace: false }));
  assert.deepEqual(t.encode(''), [1]);
  assert.deepEqual(t.encode('', { addBos: false }), []);
});

test('gguf llama (SPM) tokenizer: pieces and scores match tok512.bin (llama2.c format)', () => {
  const g = g260();
  const tokens = g.metadata.get('tokenizer.ggml.tokens') as string[];
  const scores = g.metadata.get('tokenizer.ggml.scores') as number[];
  const bin = readFileSync(S260K + '/tok512.bin');
  let p = 4;
  for (let i = 0; i < 512; i++) {
    const score = bin.readFloatLE(p), len = bin.readInt32LE(p + 4);
    let piece = bin.subarray(p + 8, p + 8 + len).toString('utf8');
    p += 8 + len;
    if (i === 1 || i === 2) piece = piece.trim(); // llama2.c writes "\n<s>\n" / "\n</s>\n"
    assert.equal(tokens[i], piece.replaceAll(' ', '▁'), `piece ${i}`);
    assert.ok(Math.fround(scores[i]) === score, `score ${i}: ${scores[i]} vs ${score}`);
  }
  assert.equal(p, bin.length);
});

test('gguf llama (SPM) tokenizer: agrees with an HF BPE built from the same vocabulary (merges by score)', () => {
  const g = g260();
  const toks = g.metadata.get('tokenizer.ggml.tokens') as string[];
  const scores = g.metadata.get('tokenizer.ggml.scores') as number[];
  const types = g.metadata.get('tokenizer.ggml.token_type') as number[];
  const vocab: Record<string, number> = {};
  toks.forEach((t, i) => (vocab[t] = i));
  const merges: [string, string, number][] = [];
  for (let i = 0; i < toks.length; i++) {
    if (types[i] !== 1) continue;
    const cps = Array.from(toks[i]);
    for (let k = 1; k < cps.length; k++) {
      const a = cps.slice(0, k).join(''), b = cps.slice(k).join('');
      if (types[vocab[a]] === 1 && types[vocab[b]] === 1) merges.push([a, b, scores[i]]);
    }
  }
  merges.sort((x, y) => y[2] - x[2]);
  const hf = new HfTokenizer({
    version: '1.0',
    added_tokens: [0, 1, 2].map((id) => ({ id, content: toks[id], special: true, normalized: false, lstrip: false, rstrip: false, single_word: false })),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null, post_processor: null, decoder: null,
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: merges.map((m) => [m[0], m[1]]) },
  }, { config: { bos_token: '<s>', eos_token: '</s>', add_bos_token: true } });
  const spm = tokenizerFromGGUF(g);
  const r = ref260k();
  for (const text of [r.greedy_text, r.nll_text, 'Hello World! The quick brown fox jumps over the lazy dog. ß 😀 “quoted” — 12345', 'aaaaaaaa bbbbbbb   spaces\n\nnewlines\ttabs']) {
    assert.deepEqual(spm.encode(text), hf.encode(text), text);
  }
});

/** GPT-2 bytes_to_unicode: printable stand-ins for the 256 byte values. */
function byteChars(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i])));
  return out;
}

function gpt2Gguf(extra: GGUFKV[] = [], pre = 'qwen2'): Uint8Array {
  const bc = byteChars();
  const tokens = [...bc, 'Ġt', 'he', 'Ġthe', 'Ġa', '<|endoftext|>', '<|im_start|>', '<|im_end|>'];
  const types = tokens.map((t) => (t.startsWith('<|') ? 3 : 1));
  return writeGGUF([
    { key: 'general.architecture', value: 'qwen2' },
    { key: 'tokenizer.ggml.model', value: 'gpt2' },
    { key: 'tokenizer.ggml.pre', value: pre },
    { key: 'tokenizer.ggml.tokens', value: tokens },
    { key: 'tokenizer.ggml.token_type', value: types, itemType: GGUFType.INT32 },
    { key: 'tokenizer.ggml.merges', value: ['Ġ t', 'h e', 'Ġt he', 'Ġ a'] },
    { key: 'tokenizer.ggml.eos_token_id', value: 260 }, // <|endoftext|>
    { key: 'tokenizer.ggml.eot_token_id', value: 262 }, // <|im_end|>
    { key: 'tokenizer.ggml.bos_token_id', value: 260 },
    { key: 'tokenizer.ggml.add_bos_token', value: false },
    { key: 'tokenizer.chat_template', value: '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}' },
    ...extra,
  ], []);
}

test('gguf gpt2 (byte-level BPE) tokenizer: merges, special tokens, unicode round trip', () => {
  const g = parseGGUF('qwenish.gguf', gpt2Gguf());
  const t = tokenizerFromGGUF(g);
  const id = (s: string) => t.tokenToId(s)!;
  assert.equal(t.kind, 'bpe');
  assert.equal(t.vocabSize, 263);
  assert.equal(t.bos, 260);
  assert.deepEqual(t.eos, [260, 262]);
  assert.equal(t.addBosDefault, false);
  assert.equal(t.prefixSpaceDefault, false);
  // "the the": "the" → t + he (no "t he" merge); " the" → Ġ t → Ġt, h e → he, Ġt he → Ġthe
  assert.deepEqual(t.encode('the the'), [id('t'), id('he'), id('Ġthe')]);
  assert.deepEqual(t.encode(' a'), [id('Ġa')]);
  assert.deepEqual(t.encode('<|im_start|>the<|im_end|>'), [261, id('t'), id('he'), 262]);
  for (const s of ['the the', 'héllo wörld 😀 — ok', '  two  spaces\n\nand tabs\t!', 'The 12345 digits']) {
    assert.equal(t.decode(t.encode(s)), s, s);
  }
  assert.equal(t.decode([261, id('Ġthe'), 262], { skipSpecial: true }), ' the');
  assert.equal(t.decode([261, id('Ġthe'), 262]), '<|im_start|> the<|im_end|>');
  assert.ok(t.isSpecial(262) && !t.isSpecial(id('he')));
  assert.deepEqual(t.encode('the', { addBos: true }), [260, id('t'), id('he')]);
  assert.match(ggufChatTemplate(g)!, /im_start/);
  // the default gpt2 pre-tokenizer and llama-bpe work too
  for (const pre of ['default', 'llama-bpe', 'smollm']) {
    const tt = tokenizerFromGGUF(parseGGUF('x.gguf', gpt2Gguf([], pre)));
    assert.deepEqual(tt.encode('the the', { addBos: false }), [id('t'), id('he'), id('Ġthe')], pre);
    assert.equal(tt.decode(tt.encode('héllo 😀 1234', { addBos: false })), 'héllo 😀 1234');
  }
});

test('gguf tokenizer: unsupported or missing tokenizer metadata gives clear errors', async () => {
  const base = (kv: GGUFKV[]) => parseGGUF('t.gguf', writeGGUF(kv, []));
  await rejects(() => tokenizerFromGGUF(base([{ key: 'general.architecture', value: 'llama' }])), /t\.gguf: no tokenizer in this GGUF file \(tokenizer\.ggml\.model is missing\)/);
  await rejects(() => tokenizerFromGGUF(base([{ key: 'tokenizer.ggml.model', value: 'bert' }, { key: 'tokenizer.ggml.tokens', value: ['a'] }])), /unsupported tokenizer model 'bert'/);
  await rejects(() => tokenizerFromGGUF(base([{ key: 'tokenizer.ggml.model', value: 'llama' }])), /tokenizer\.ggml\.tokens is missing or empty/);
  await rejects(() => tokenizerFromGGUF(base([{ key: 'tokenizer.ggml.model', value: 'llama' }, { key: 'tokenizer.ggml.tokens', value: ['a', 'b'] }])), /tokenizer\.ggml\.scores is missing/);
  await rejects(() => tokenizerFromGGUF(parseGGUF('t.gguf', gpt2Gguf([], 'tekken'))), /unsupported BPE pre-tokenizer 'tekken'/);
  await rejects(() => tokenizerFromGGUF(base([{ key: 'tokenizer.ggml.model', value: 'gpt2' }, { key: 'tokenizer.ggml.tokens', value: ['a'] }])), /gpt2 tokenizer without tokenizer\.ggml\.merges/);
});
