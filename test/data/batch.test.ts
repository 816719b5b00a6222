// Batching (src/data/batch.ts): the seeded per-epoch order (deterministic, a permutation, a
// function of seed+epoch only), batch tensors in the engine's conventions (targets = next token
// where trained else 0xFFFFFFFF, valid, pos, right padding), exact resume from {epoch, index},
// dropLast / padding options, evaluation batches, the seeded validation split, overlap, cost.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import {
  BatchIterator, datasetFingerprint, epochCost, epochOrder, evalBatches, findOverlap, IGNORE, loadDataset, makeBatch, splitDataset,
  type Batch, type Dataset,
} from '../../src/data/index.ts';
import { charTokenizer, jsonl } from './toy.ts';

const tok = charTokenizer();

/** n chat examples of varying length (answer i has i % 7 + 1 words). */
function dataset(n: number, maxSeqLen = 128): Dataset {
  const lines = Array.from({ length: n }, (_, i) => ({
    messages: [
      { role: 'user', content: `q${i}` },
      { role: 'assistant', content: Array.from({ length: (i % 7) + 1 }, (_, k) => `w${k}`).join(' ') },
    ],
  }));
  const { dataset: ds, reason } = loadDataset(jsonl(...lines), { tokenizer: tok, maxSeqLen, minExamples: 1 });
  assert.ok(ds, reason);
  return ds;
}

const snapshot = (b: Batch) => ({ B: b.B, T: b.T, rows: b.rows, ids: Array.from(b.ids), targets: Array.from(b.targets), valid: Array.from(b.valid), pos: Array.from(b.pos), state: b.state, next: b.next });

test('epoch order: a permutation, deterministic, a function of (seed, epoch) only', () => {
  const a = epochOrder(100, 42, 0);
  assert.deepEqual(Array.from(a).sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
  assert.deepEqual(epochOrder(100, 42, 0), a);
  assert.notDeepEqual(epochOrder(100, 42, 1), a);
  assert.notDeepEqual(epochOrder(100, 43, 0), a);
  assert.deepEqual(Array.from(epochOrder(5, 42, 3, false)), [0, 1, 2, 3, 4]);
  // pinned: the order must never change across versions (checkpoints depend on it)
  assert.deepEqual(Array.from(epochOrder(10, 1234, 0)), [9, 5, 1, 4, 7, 2, 3, 8, 0, 6]);
  assert.deepEqual(Array.from(epochOrder(10, 1234, 1)), [6, 3, 2, 9, 1, 5, 4, 7, 8, 0]);
});

test('batch tensors: targets = next token where trained, IGNORE elsewhere; right padding', () => {
  const ds = dataset(5);
  const b = makeBatch(ds, [0, 6 % 5, 3]);
  const ex = [ds.examples[0], ds.examples[1], ds.examples[3]];
  const T = Math.max(...ex.map((e) => e.ids.length));
  assert.equal(b.B, 3);
  assert.equal(b.T, T);
  let trained = 0, real = 0;
  for (let r = 0; r < 3; r++) {
    const e = ex[r], L = e.ids.length;
    for (let t = 0; t < T; t++) {
      const i = r * T + t;
      assert.equal(b.pos[i], t);
      assert.equal(b.valid[i], t < L ? 1 : 0);
      assert.equal(b.ids[i], t < L ? e.ids[t] : 0);
      const want = t + 1 < L && e.trained[t + 1] ? e.ids[t + 1] : IGNORE;
      assert.equal(b.targets[i], want, `row ${r} t ${t}`);
      if (want !== IGNORE) trained++;
    }
    real += L;
  }
  assert.equal(b.trainedTokens, trained);
  assert.equal(b.realTokens, real);
  assert.equal(trained, ex.reduce((s, e) => s + e.trainedCount, 0), 'every trained token is a target once');
  assert.deepEqual(b.lines, [1, 2, 4]);
  // the targets of row 0 spell " w0</s>"
  const tg = Array.from(b.targets.slice(0, T)).filter((x) => x !== IGNORE);
  assert.equal(tok.decode(tg), ' w0</s>');
});

test('iterator: every example once per epoch; deterministic; exact resume from a saved state', () => {
  const ds = dataset(23);
  const opts = { batchSize: 4, seed: 9 };
  const it = new BatchIterator(ds, opts);
  assert.equal(it.batchesPerEpoch, 6);
  const run: Batch[] = [];
  for (let k = 0; k < 20; k++) run.push(it.next()!);
  // epoch 0: 5 full batches + one of 3, then epoch 1 starts
  assert.deepEqual(run.slice(0, 7).map((b) => b.B), [4, 4, 4, 4, 4, 3, 4]);
  assert.deepEqual(run[5].next, { epoch: 1, index: 0 });
  assert.deepEqual(run.slice(0, 6).flatMap((b) => b.rows).sort((a, b) => a - b), Array.from({ length: 23 }, (_, i) => i));
  assert.notDeepEqual(run.slice(0, 6).flatMap((b) => b.rows), run.slice(6, 12).flatMap((b) => b.rows), 'epochs are reshuffled');
  // the same options give the same batches
  const again = new BatchIterator(ds, opts);
  for (let k = 0; k < 20; k++) assert.deepEqual(snapshot(again.next()!), snapshot(run[k]));
  // resume from any saved state, including across the epoch boundary
  for (const k of [0, 3, 5, 6, 13]) {
    const resumed = new BatchIterator(ds, opts, JSON.parse(JSON.stringify(run[k].next)));
    for (let j = k + 1; j < 20; j++) assert.deepEqual(snapshot(resumed.next()!), snapshot(run[j]), `resume after batch ${k}, batch ${j}`);
  }
  assert.throws(() => new BatchIterator(ds, opts, { epoch: 0, index: 24 }), /invalid data state/);
  assert.throws(() => new BatchIterator(ds, { batchSize: 0 }), /batchSize/);
});

test('dropLast, maxEpochs, pad "max", padMultiple', () => {
  const ds = dataset(10, 64);
  const it = new BatchIterator(ds, { batchSize: 4, seed: 1, dropLast: true, maxEpochs: 2 });
  const bs = [...it];
  assert.equal(bs.length, 4, '2 full batches per epoch, 2 epochs');
  assert.ok(bs.every((b) => b.B === 4));
  assert.deepEqual(bs.map((b) => b.state), [{ epoch: 0, index: 0 }, { epoch: 0, index: 4 }, { epoch: 1, index: 0 }, { epoch: 1, index: 4 }]);
  assert.equal(it.next(), null);
  assert.throws(() => new BatchIterator(ds, { batchSize: 11, dropLast: true }), /no batch would ever be produced/);

  const max = new BatchIterator(ds, { batchSize: 3, pad: 'max' }).next()!;
  assert.equal(max.T, 64);
  const mult = new BatchIterator(ds, { batchSize: 3, padMultiple: 16 }).next()!;
  assert.equal(mult.T % 16, 0);
  assert.ok(mult.T >= Math.max(...mult.rows.map((r) => ds.examples[r].ids.length)));
  const padded = new BatchIterator(ds, { batchSize: 3, padId: 7 }).next()!;
  for (let i = 0; i < padded.ids.length; i++) if (!padded.valid[i]) { assert.equal(padded.ids[i], 7); assert.equal(padded.targets[i], IGNORE); }
});

test('evaluation batches: file order, each example once', () => {
  const ds = dataset(7);
  const rows = [...evalBatches(ds, { batchSize: 3 })].map((b) => b.rows);
  assert.deepEqual(rows, [[0, 1, 2], [3, 4, 5], [6]]);
});

test('validation split: seeded, disjoint, sizes; overlap detection; fingerprint', () => {
  const ds = dataset(50);
  const { train, valid } = splitDataset(ds, { fraction: 0.1, seed: 3 });
  assert.equal(valid.examples.length, 5);
  assert.equal(train.examples.length, 45);
  const lines = (d: Dataset) => d.examples.map((e) => e.line);
  assert.deepEqual([...lines(train), ...lines(valid)].sort((a, b) => a - b), lines(ds));
  assert.deepEqual(lines(valid), [...lines(valid)].sort((a, b) => a - b), 'file order kept');
  assert.deepEqual(splitDataset(ds, { fraction: 0.1, seed: 3 }).valid.examples.map((e) => e.line), lines(valid));
  assert.notDeepEqual(splitDataset(ds, { fraction: 0.1, seed: 4 }).valid.examples.map((e) => e.line), lines(valid));
  assert.deepEqual(valid.split, { part: 'valid', fraction: 0.1, seed: 3 });
  assert.equal(valid.stats.examples, 5);
  assert.equal(train.stats.trainedTokens + valid.stats.trainedTokens, ds.stats.trainedTokens);
  assert.equal(splitDataset(dataset(3), { fraction: 0.01 }).valid.examples.length, 1, 'at least one');
  assert.throws(() => splitDataset(ds, { fraction: 1 }), /fraction/);

  // a separate validation file sharing an example with training
  assert.deepEqual(findOverlap(train, valid), []);
  const other = loadDataset(jsonl({ messages: [{ role: 'user', content: 'q3' }, { role: 'assistant', content: 'w0 w1 w2 w3' }] }, { text: 'new' }), { tokenizer: tok, maxSeqLen: 128, minExamples: 1 }).dataset!;
  assert.deepEqual(findOverlap(ds, other), [{ validLine: 1, trainLine: 4 }]);

  assert.equal(datasetFingerprint(ds), datasetFingerprint(dataset(50)));
  assert.notEqual(datasetFingerprint(ds), datasetFingerprint(dataset(49)));
  assert.notEqual(datasetFingerprint(ds), datasetFingerprint(dataset(50, 26)));
});

test('epochCost agrees with the batches the iterator builds', () => {
  const ds = dataset(23);
  for (const opts of [{ batchSize: 4, seed: 2 }, { batchSize: 5, seed: 2, dropLast: true }, { batchSize: 3, padMultiple: 8 }, { batchSize: 6, pad: 'max' as const }]) {
    const cost = epochCost(ds, opts, 1);
    const it = new BatchIterator(ds, opts, { epoch: 1, index: 0 });
    let batches = 0, tokens = 0, padded = 0, trained = 0, examples = 0;
    for (let b = it.next()!; b.state.epoch === 1; b = it.next()!) {
      batches++; tokens += b.realTokens; padded += b.B * b.T; trained += b.trainedTokens; examples += b.B;
    }
    assert.deepEqual(cost, { batches, examples, tokens, paddedTokens: padded, trainedTokens: trained }, JSON.stringify(opts));
  }
});
