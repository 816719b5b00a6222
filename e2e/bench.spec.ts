// The browser peer of `whittle bench` (src/bench/browser.ts + bench.html / src/bench/page.ts): in one
// Chromium page, tinystories-656k decodes greedily on the page's WebGPU adapter (SwiftShader here)
// through our engine and on onnxruntime-web (wasm, one thread) from the page's own ONNX export; the
// driver gets both rates and their ratio back; onnxruntime-web's WebGPU execution provider on the
// same WebGPU adapter (transformers.js's device 'webgpu') too; then a LoRA training step of the same
// model in that page. The build's service worker does not precache the bench page's own files. Small settings (a short prompt, few tokens, two timed steps): this checks the path works and
// reports real numbers, not their size.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { test } from '../test/harness.ts';
import { benchBrowser } from '../src/bench/browser.ts';

const MODEL = fileURLToPath(new URL('../../shared/models/tinystories-656k', import.meta.url));

test('bench browser peer: our decode and onnxruntime-web decode in one Chromium page', async () => {
  const r = await benchBrowser(MODEL, { prompt: 16, gen: 8, runs: 1, driver: 'tiny', train: { batch: 1, seq: 16, steps: 2 } });
  assert.match(r.userAgent, /Chrome/, 'measured in Chromium');
  assert.ok(r.adapter.length > 0, 'the page names its WebGPU adapter');
  for (const [name, s] of [['ours decode', r.ours.decodeTokensPerSecond], ['ours prefill', r.ours.prefillTokensPerSecond],
    ['onnxruntime-web decode', r.onnxruntimeWeb.decodeTokensPerSecond], ['onnxruntime-web prefill', r.onnxruntimeWeb.prefillTokensPerSecond]] as const) {
    assert.ok(Number.isFinite(s.median) && s.median > 0, `${name}: ${s.median}`);
  }
  assert.match(r.onnxruntimeWeb.runtime, /browser/, 'the peer ran in the page, not in Node');
  assert.ok(Math.abs(r.decodeRatio - r.ours.decodeTokensPerSecond.median / r.onnxruntimeWeb.decodeTokensPerSecond.median) < 1e-9);
  const gp = r.onnxruntimeWebgpu;
  assert.ok(gp, 'the WebGPU peer was asked for');
  assert.ok(!('error' in gp), `the WebGPU peer ran: ${'error' in gp ? gp.error : ''}`);
  assert.match(gp.runtime, /WebGPU, browser/);
  assert.ok(Number.isFinite(gp.decodeTokensPerSecond.median) && gp.decodeTokensPerSecond.median > 0, `WebGPU peer decode ${gp.decodeTokensPerSecond.median}`);
  assert.ok(Math.abs(r.decodeRatioWebgpu! - r.ours.decodeTokensPerSecond.median / gp.decodeTokensPerSecond.median) < 1e-9);
  assert.ok(r.driver, 'the page measured its adapter\'s ceilings');
  for (const [name, s] of [['FMA', r.driver.fmaGflops], ['load', r.driver.loadNsPerVec4], ['dispatch', r.driver.dispatchUs]] as const) {
    assert.ok(Number.isFinite(s.median) && s.median > 0, `${name}: ${s.median}`);
  }
  assert.ok(r.train, 'the training step ran in the page');
  assert.equal(r.train.stepMs.runs.length, 2, 'two timed steps');
  assert.ok(r.train.stepMs.runs.every((x) => Number.isFinite(x) && x > 0) && Number.isFinite(r.train.loss), `step ms ${r.train.stepMs.runs}, loss ${r.train.loss}`);
  assert.deepEqual([r.train.batch, r.train.seq, r.train.quant], [1, 16, 'f32']);
  console.log(`  ${r.adapter}: training step 1×16 ${r.train.stepMs.median.toFixed(0)} ms`);
  console.log(`  ${r.adapter}: ours ${r.ours.decodeTokensPerSecond.median.toFixed(0)} tok/s, onnxruntime-web ${r.onnxruntimeWeb.decodeTokensPerSecond.median.toFixed(0)} tok/s (ratio ${r.decodeRatio.toFixed(3)}), its WebGPU provider ${gp.decodeTokensPerSecond.median.toFixed(1)} tok/s (tiny settings)`);
  // the service worker's precache list (dist/sw.js, written by the build the bench served): the app's
  // ONNX fallback wasm is in it, the bench page and the WebGPU peer's 27 MB wasm are not
  const sw = readFileSync(fileURLToPath(new URL('../dist/sw.js', import.meta.url)), 'utf8');
  const files = JSON.parse(/const MANIFEST = (\{.*?\});/s.exec(sw)![1]).files as string[];
  assert.ok(files.includes('index.html') && files.some((f) => /^assets\/ort-wasm-simd-threaded-[\w-]+\.wasm$/.test(f)), files.join(', '));
  assert.ok(!files.some((f) => f === 'bench.html' || /asyncify|ort\.webgpu|^assets\/bench-/.test(f)), `bench-only files precached: ${files.join(', ')}`);
});
