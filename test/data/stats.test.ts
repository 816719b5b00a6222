// Dataset statistics (src/data/stats.ts): min/median/max/mean, the length histogram, total and
// trained tokens before and after truncation, epoch cost and the time estimate from a tokens/s.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { epochCost, estimateEpochSeconds, histogram, loadDataset, summarize } from '../../src/data/index.ts';
import { charTokenizer, jsonl } from './toy.ts';

test('summarize: min, median (odd and even), max, mean', () => {
  assert.deepEqual(summarize([5, 1, 3]), { min: 1, median: 3, max: 5, mean: 3 });
  assert.deepEqual(summarize([4, 1, 3, 10]), { min: 1, median: 3.5, max: 10, mean: 4.5 });
  assert.deepEqual(summarize([]), { min: 0, median: 0, max: 0, mean: 0 });
});

test('histogram: round bin widths, every value counted once, half-open bins', () => {
  const v = [3, 7, 12, 12, 19, 20, 95, 100];
  const h = histogram(v, 10);
  assert.equal(h.edges.length, h.counts.length + 1);
  assert.equal(h.counts.reduce((a, b) => a + b, 0), v.length);
  const w = h.edges[1] - h.edges[0];
  assert.equal(w, 10);
  assert.deepEqual(h.edges, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110]);
  assert.deepEqual(h.counts, [2, 3, 1, 0, 0, 0, 0, 0, 0, 1, 1]);
  for (const x of v) {
    const i = h.counts.findIndex((_, k) => x >= h.edges[k] && x < h.edges[k + 1]);
    assert.ok(i >= 0, `${x} in a bin`);
  }
  assert.deepEqual(histogram([5, 5, 5]), { edges: [5, 6], counts: [3] });
  assert.deepEqual(histogram([]), { edges: [0, 1], counts: [0] });
});

test('dataset stats: tokens per example, totals, trained tokens, truncation', () => {
  const tok = charTokenizer();
  // fallback lengths: <s> + "User: " + q + "\n" + "Assistant:" + " " + a + </s> = 20 + |q| + |a|
  const rows = [['a', 'b'], ['aa', 'bbbbb'], ['a', 'b'.repeat(40)]];
  const { dataset } = loadDataset(jsonl(...rows.map(([q, a]) => ({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] }))),
    { tokenizer: tok, maxSeqLen: 32, minExamples: 1 });
  assert.ok(dataset);
  const s = dataset.stats;
  assert.equal(s.examples, 3);
  assert.deepEqual(s.tokens, { min: 22, median: 27, max: 61, mean: (22 + 27 + 61) / 3 });
  assert.equal(s.fullTokens, 22 + 27 + 61);
  assert.equal(s.totalTokens, 22 + 27 + 32);
  // trained: " " + answer + </s>
  assert.equal(s.fullTrainedTokens, 3 + 7 + 42);
  assert.equal(s.trainedTokens, 3 + 7 + (42 - 29));
  assert.equal(s.truncatedExamples, 1);
  assert.equal(s.tokensCut, 29);
  assert.equal(s.trainedTokensCut, 29);
  assert.equal(s.maxSeqLen, 32);
  assert.equal(s.histogram.counts.reduce((a, b) => a + b, 0), 3);

  // epoch cost and time: batch of 2 in file order: T = 27 then 32
  const cost = epochCost(dataset, { batchSize: 2, shuffle: false });
  assert.deepEqual(cost, { batches: 2, examples: 3, tokens: 81, paddedTokens: 2 * 27 + 32, trainedTokens: s.trainedTokens });
  assert.equal(estimateEpochSeconds(cost, 43), 2);
  assert.equal(estimateEpochSeconds(cost, 81, 'real'), 1);
  assert.throws(() => estimateEpochSeconds(cost, 0), /tokensPerSecond must be > 0/);
});
