// The browser peer of `whittle bench` (src/bench/browser.ts + bench.html / src/bench/page.ts): in one
// Chromium page, tinystories-656k decodes greedily on the page's WebGPU adapter (SwiftShader here)
// through our engine and on onnxruntime-web (wasm, one thread) from the page's own ONNX export; the
// driver gets both rates and their ratio back; then a LoRA training step of the same model in that
// page. Small settings (a short prompt, few tokens, two timed steps): this checks the path works and
// reports real numbers, not their size.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from '../test/harness.ts';
import { benchBrowser } from '../src/bench/browser.ts';

const MODEL = fileURLToPath(new URL('../../shared/models/tinystories-656k', import.meta.url));

test('bench browser peer: our decode and onnxruntime-web decode in one Chromium page', async () => {
  const r = await benchBrowser(MODEL, { prompt: 16, gen: 8, runs: 1, train: { batch: 1, seq: 16, steps: 2 } });
  assert.match(r.userAgent, /Chrome/, 'measured in Chromium');
  assert.ok(r.adapter.length > 0, 'the page names its WebGPU adapter');
  for (const [name, s] of [['ours decode', r.ours.decodeTokensPerSecond], ['ours prefill', r.ours.prefillTokensPerSecond],
    ['onnxruntime-web decode', r.onnxruntimeWeb.decodeTokensPerSecond], ['onnxruntime-web prefill', r.onnxruntimeWeb.prefillTokensPerSecond]] as const) {
    assert.ok(Number.isFinite(s.median) && s.median > 0, `${name}: ${s.median}`);
  }
  assert.match(r.onnxruntimeWeb.runtime, /browser/, 'the peer ran in the page, not in Node');
  assert.ok(Math.abs(r.decodeRatio - r.ours.decodeTokensPerSecond.median / r.onnxruntimeWeb.decodeTokensPerSecond.median) < 1e-9);
  assert.ok(r.train, 'the training step ran in the page');
  assert.equal(r.train.stepMs.runs.length, 2, 'two timed steps');
  assert.ok(r.train.stepMs.runs.every((x) => Number.isFinite(x) && x > 0) && Number.isFinite(r.train.loss), `step ms ${r.train.stepMs.runs}, loss ${r.train.loss}`);
  assert.deepEqual([r.train.batch, r.train.seq, r.train.quant], [1, 16, 'f32']);
  console.log(`  ${r.adapter}: training step 1×16 ${r.train.stepMs.median.toFixed(0)} ms`);
  console.log(`  ${r.adapter}: ours ${r.ours.decodeTokensPerSecond.median.toFixed(0)} tok/s, onnxruntime-web ${r.onnxruntimeWeb.decodeTokensPerSecond.median.toFixed(0)} tok/s (ratio ${r.decodeRatio.toFixed(3)}, tiny settings)`);
});
