// The dataset layer with a real tokenizer: tinystories-656k's tokenizer.json through
// src/tokenizer's HfTokenizer (a SentencePiece-like BPE whose pieces carry trailing "▁", so it
// merges across spaces — the case the prompt/answer split exists for). Checks BOS/EOS placement,
// the fallback chat mask, generation-prompt consistency, previews, stats and batches.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from '../harness.ts';
import { HfTokenizer } from '../../src/tokenizer/index.ts';
import {
  BatchIterator, encodeChatPrompt, formatExample, IGNORE, loadDataset, previewExample, type Example, type Tokenizer,
} from '../../src/data/index.ts';
import { jsonl } from './toy.ts';

const dir = new URL('../../../shared/models/tinystories-656k/', import.meta.url);
const hf = new HfTokenizer(JSON.parse(readFileSync(new URL('tokenizer.json', dir), 'utf8')), {
  config: JSON.parse(readFileSync(new URL('tokenizer_config.json', dir), 'utf8')),
});
// src/tokenizer's Tokenizer satisfies the dataset layer's structural interface
const tok: Tokenizer = hf;

const story = 'Once upon a time, there was a little cat. The cat liked to play.';

test('text: <|start_story|> text <|end_story|>, everything after BOS trained', () => {
  assert.equal(tok.bos, 1);
  assert.deepEqual(tok.eos, [2]);
  const ex: Example = { format: 'text', line: 1, text: story };
  const f = formatExample(ex, tok);
  assert.equal(f.ids[0], 1);
  assert.equal(f.ids[f.ids.length - 1], 2);
  assert.deepEqual(f.ids.slice(1, -1), hf.encode(story, { addBos: false }));
  assert.equal(f.trained[0], 0);
  assert.ok(Array.from(f.trained.slice(1)).every((x) => x === 1));
  // the tokenizer's SentencePiece prefix "▁" (id 80) can be turned off
  const g = formatExample(ex, tok, { prefixSpace: false });
  assert.equal(f.ids[1], 80);
  assert.notEqual(g.ids[1], 80);
  assert.equal(hf.decode(g.ids), `<|start_story|>${story}<|end_story|>`);
});

test('fallback chat: the answer and <|end_story|> are trained; the prompt matches generation', () => {
  const ex: Example = {
    format: 'chat', line: 1, messages: [
      { role: 'user', content: 'Tell me about the cat.', weight: 1 },
      { role: 'assistant', content: 'The cat was happy.', weight: 1 },
      { role: 'user', content: 'And then?', weight: 1 },
      { role: 'assistant', content: 'It slept.', weight: 1 },
    ],
  };
  const f = formatExample(ex, tok);
  // trained: each answer encoded on its own (a leading " ", no extra "▁" prefix) + <|end_story|>
  const answer = (s: string) => [...hf.encode(s, { addBos: false, prefixSpace: false }), 2];
  const runs: number[][] = [];
  f.trained.forEach((x, t) => { if (x) { if (!f.trained[t - 1]) runs.push([]); runs[runs.length - 1].push(f.ids[t]); } });
  assert.deepEqual(runs, [answer(' The cat was happy.'), answer(' It slept.')]);
  assert.equal(hf.decode(f.ids), '<|start_story|> User: Tell me about the cat.\nAssistant: The cat was happy.<|end_story|> User: And then?\nAssistant: It slept.<|end_story|>');
  assert.ok(ex.format === 'chat');
  for (const i of [1, 3]) {
    const prompt = encodeChatPrompt(ex.messages.slice(0, i), tok);
    assert.deepEqual(f.ids.slice(0, prompt.length), prompt, `prompt before messages[${i}]`);
    assert.equal(f.trained[prompt.length], 1);
    assert.equal(f.trained[prompt.length - 1], 0);
  }
  // without the prompt/answer split this tokenizer would merge ":" + " The" into ":▁"
  const joined = hf.encode('User: Tell me about the cat.\nAssistant: The cat', { addBos: false });
  assert.ok(joined.some((id) => hf.tokenToString(id) === ':▁'));
});

test('preview with the real tokenizer: pieces spell the text, trained flags line up', () => {
  const ex: Example = { format: 'prompt_completion', line: 1, prompt: 'Tom had a ball.', completion: ' He threw it far.' };
  const p = previewExample(ex, tok, { maxSeqLen: 8 });
  const f = formatExample(ex, tok);
  assert.equal(p.map((x) => x.text).join(''), hf.decode(f.ids));
  assert.deepEqual(p.map((x) => x.trained), Array.from(f.trained, (x) => x === 1));
  assert.equal(p.filter((x) => x.trained).map((x) => x.text).join(''), ' He threw it far.<|end_story|>');
  assert.equal(p.findIndex((x) => x.cut), 8);
});

test('a small real dataset: stats and batches stay in the vocabulary', () => {
  const lines = Array.from({ length: 30 }, (_, i) => (i % 3 === 0
    ? { text: `${story} Day ${i}.` }
    : { messages: [{ role: 'user', content: `Story ${i}?` }, { role: 'assistant', content: `The dog ran ${i} times.` }] }));
  const bytes = new TextEncoder().encode(jsonl(...lines));
  const { dataset, report, reason } = loadDataset(bytes, { tokenizer: tok, maxSeqLen: 64, minExamples: 10 });
  assert.ok(dataset, reason);
  assert.ok(report.issues.some((i) => i.code === 'mixed_formats'));
  assert.equal(dataset.stats.examples, 30);
  assert.ok(dataset.stats.trainedTokens < dataset.stats.totalTokens);
  const it = new BatchIterator(dataset, { batchSize: 8, seed: 5 });
  let trained = 0;
  for (let k = 0; k < 4; k++) {
    const b = it.next()!;
    for (let i = 0; i < b.ids.length; i++) {
      assert.ok(b.ids[i] < tok.vocabSize);
      assert.ok(b.targets[i] === IGNORE || b.targets[i] < tok.vocabSize);
    }
    trained += b.trainedTokens;
  }
  assert.equal(trained, dataset.stats.trainedTokens, 'one epoch of batches covers every trained token');
});
