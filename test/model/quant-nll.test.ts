// Quantization quality on a real model (stories260K): the mean NLL on held-out text with the base
// in q8 / q4 (weights dequantize(quantize(w)), src/model/quality.ts) stays close to f32.
// Measured (scripts/quant-nll.ts): f32 1.3863, q8 +0.0015, q4 +0.1284 nats/token. The bounds are
// loose but fail if quantization were broken (q4 is ~8× coarser than q8; a broken scale or code
// packing costs whole nats) — and Δ must be > 0 for q4, so the quantized path is really taken.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { meanNll } from '../../src/model/quality.ts';
import { measure, stories260K } from '../../scripts/quant-nll.ts';

test('quant-nll: stories260K f32 matches the reference NLL; q8 Δ < 0.01, q4 Δ < 0.5 nats/token', async () => {
  const m = await stories260K();
  const f32ref = meanNll(m.model.config, m.model.weights, [m.seqs[0]]);
  assert.ok(Math.abs(f32ref - m.refNll) < 1e-3, `f32 NLL ${f32ref} vs reference.json ${m.refNll}`);
  const [f32, q8, q4] = measure(m);
  assert.deepEqual([f32.quant, q8.quant, q4.quant], ['f32', 'q8', 'q4']);
  assert.ok(f32.tokens > 300, `${f32.tokens} tokens`);
  assert.ok(f32.nll > 0.5 && f32.nll < 3, `f32 NLL ${f32.nll}`);
  assert.ok(q8.delta > -0.01 && q8.delta < 0.01, `q8 Δ ${q8.delta}`);
  assert.ok(q4.delta > 0.005 && q4.delta < 0.5, `q4 Δ ${q4.delta}`);
  assert.ok(q8.delta !== 0, 'q8 must change the weights');
  assert.ok(f32.baseBytes > q8.baseBytes && q8.baseBytes > q4.baseBytes);
});
