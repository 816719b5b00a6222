// Without WebGPU (Chromium launched without the WebGPU flags): the Train page says training needs
// WebGPU; tinystories-656k downloads from the local "Hub"; the Playground runs on the CPU through
// an in-memory ONNX export and onnxruntime-web (wasm, served by the app itself) and the text
// streams; a PEFT adapter (made here in Node, B ≠ 0) imports, the Playground runs base and tuned
// through ONNX, and the Adapters page's "ONNX (merged)" export downloads a zip with
// onnx/model.onnx and config.json — which, run in Node's onnxruntime, gives the tuned pane's text.
// Nothing leaves localhost. Screenshots: test-results/onnx-*.png.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { test } from '../test/harness.ts';
import { openApp, setHubServer, TINY_REPO } from './flows.ts';
import { loadModelTokenizer } from '../src/model/load.ts';
import { nodeSource } from '../src/model/source-node.ts';
import { initLora } from '../src/model/lora.ts';
import type { LoraConfig } from '../src/model/config.ts';
import { adapterFromParams, exportPeft, memorySink } from '../src/export/index.ts';
import { createOnnxSession, onnxGenerate } from '../src/export/onnx-generate.ts';
import { encodeCompletionPrompt } from '../src/data/index.ts';
import { SPEC_REPOS } from './hub-server.ts';

ort.env.wasm.numThreads = 1;

const PROMPT = 'Once upon a time';
const MAX = 10;

/** The entries of a stored (uncompressed) zip, as the app writes them. */
function unzipStored(zip: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let p = 0;
  while (zip.readUInt32LE(p) === 0x04034b50) {
    const size = zip.readUInt32LE(p + 18), n = zip.readUInt16LE(p + 26), x = zip.readUInt16LE(p + 28);
    out.set(zip.subarray(p + 30, p + 30 + n).toString('utf8'), zip.subarray(p + 30 + n + x, p + 30 + n + x + size));
    p += 30 + n + x + size;
  }
  return out;
}

/** A PEFT adapter folder for tinystories-656k with random A and B (so it changes the model). */
async function peftFolder(dir: string): Promise<string[]> {
  const { config } = await loadModelTokenizer(await nodeSource(SPEC_REPOS[TINY_REPO]));
  const lora: LoraConfig = { rank: 4, alpha: 8, dropout: 0, targets: ['q', 'v', 'o', 'down'] };
  const params = initLora(config, lora, 7);
  let s = 12345;
  for (const p of params.values()) for (let i = 0; i < p.B.length; i++) p.B[i] = (((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5) * 0.6;
  const { sink, files } = memorySink();
  await exportPeft(adapterFromParams(config, lora, params, { name: 'random', nameOrPath: TINY_REPO, format: 'hf' }), config, sink, { baseModelNameOrPath: TINY_REPO });
  const paths: string[] = [];
  for (const [name, bytes] of files) {
    writeFileSync(join(dir, name), bytes);
    paths.push(join(dir, name));
  }
  return paths;
}

async function generate(page: import('playwright-core').Page, lanes: number): Promise<{ texts: string[]; streamed: boolean }> {
  await page.evaluate(() => {
    const w = window as unknown as { snaps: Array<Array<{ state: string; tokens: number }>> };
    w.snaps = [];
    new MutationObserver(() => {
      const panes = [...document.querySelectorAll<HTMLElement>('#pg-outputs .gen-pane')];
      w.snaps.push(panes.map((p) => ({ state: p.dataset.state ?? '', tokens: Number(p.dataset.tokens ?? 0) })));
    }).observe(document.querySelector('#pg-outputs')!, { subtree: true, childList: true, attributes: true, characterData: true });
  });
  await page.click('#pg-generate');
  await page.waitForFunction((n) => {
    const panes = [...document.querySelectorAll<HTMLElement>('#pg-outputs .gen-pane')];
    return panes.length === n && panes.every((p) => p.dataset.state !== 'running');
  }, lanes, { timeout: 60_000 });
  const note = await page.locator('#pg-note').innerText().catch(() => '');
  const states = await page.$$eval('#pg-outputs .gen-pane', (ps) => ps.map((p) => (p as HTMLElement).dataset.state));
  assert.deepEqual(states, Array(lanes).fill('done'), `every lane finished (${note})`);
  const snaps = await page.evaluate(() => (window as unknown as { snaps: Array<Array<{ state: string; tokens: number }>> }).snaps);
  // streaming: some lane was seen running with a few tokens already shown
  const streamed = snaps.some((x) => x.some((p) => p.state === 'running' && p.tokens >= 2 && p.tokens < MAX));
  return { texts: await page.locator('#pg-outputs .gen-text').allInnerTexts(), streamed };
}

test('no WebGPU: training says it needs WebGPU; the playground runs on the CPU via ONNX; ONNX (merged) export downloads', async () => {
  const s = await openApp('onnx', { webgpu: false, hash: '#train' });
  const { page } = s;
  const dir = mkdtempSync(join(tmpdir(), 'whittle-onnx-'));
  try {
    await page.waitForSelector('#train-no-gpu:not([hidden])', { timeout: 30_000 });
    assert.match(await page.locator('#train-no-gpu').innerText(), /Training needs WebGPU[\s\S]*Playground/);
    assert.ok(await page.locator('#train-start').isDisabled(), 'no training without WebGPU');
    await s.shot('train');

    // the model from the local "Hub" (downloads need no GPU)
    await setHubServer(s);
    await page.click(`[data-hub="${TINY_REPO}"] button`);
    await page.waitForSelector(`#model-list [data-model="hub:${TINY_REPO}@main"][data-complete="true"]`, { timeout: 60_000 });

    // the playground: CPU forced, text streams
    await page.goto(`${s.url}#playground`);
    await page.waitForSelector('#pg-cpu-note:not([hidden])', { timeout: 30_000 });
    assert.ok(await page.locator('#pg-onnx').isChecked(), 'run on CPU (ONNX) is on');
    assert.ok(await page.locator('#pg-onnx').isDisabled(), '… and cannot be turned off without WebGPU');
    await page.waitForFunction(() => (document.querySelector('#pg-model') as HTMLSelectElement)?.value !== '', undefined, { timeout: 30_000 });
    await page.selectOption('#pg-mode', 'completion');
    await page.fill('#pg-prompt', PROMPT);
    await page.locator('#pg-form details.advanced summary').click();
    await page.fill('#pg-max', String(MAX));
    const t0 = performance.now();
    const base = await generate(page, 1);
    console.log(`  base via ONNX in ${((performance.now() - t0) / 1000).toFixed(1)} s: "${base.texts[0]}"`);
    assert.ok(base.texts[0].trim().length > 0, 'text came out');
    assert.ok(base.streamed, 'the text streamed token by token');
    assert.match(await page.locator('#pg-outputs .gen-foot').innerText(), /tokens · .* · CPU \(ONNX, greedy\)/);
    await s.shot('playground-base');

    // a PEFT adapter (no GPU needed to import), then base vs tuned through ONNX
    const peft = await peftFolder(dir);
    await page.goto(`${s.url}#adapters`);
    await page.fill('#imp-name', 'random adapter');
    await page.setInputFiles('#imp-files', peft);
    await page.waitForSelector('#imp-note.note-good', { timeout: 30_000 });
    await page.goto(`${s.url}#playground`);
    await page.waitForFunction(() => (document.querySelector('#pg-adapter') as HTMLSelectElement)?.selectedOptions[0]?.textContent === 'random adapter', undefined, { timeout: 30_000 });
    await page.check('#pg-compare');
    const both = await generate(page, 2);
    console.log(`  base "${both.texts[0]}" vs tuned "${both.texts[1]}"`);
    assert.equal(both.texts[0], base.texts[0], 'the base lane is the same greedy text');
    assert.ok(both.texts[1].trim().length > 0, 'the tuned lane produced text');
    assert.notEqual(both.texts[1], both.texts[0], 'the merged adapter changes the text');
    await s.shot('playground-compare');

    // Adapters → ONNX (merged) download
    await page.goto(`${s.url}#adapters`);
    const row = page.locator('#adapter-list [data-adapter]').first();
    await row.waitFor();
    await row.locator('select').first().selectOption('onnx');
    assert.ok(await row.locator('select').nth(1).isDisabled(), 'no dtype choice for ONNX (f32)');
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), row.locator('button[data-export]').click()]);
    assert.equal(dl.suggestedFilename(), 'random-adapter-onnx.zip');
    const files = unzipStored(readFileSync((await dl.path())!));
    for (const f of ['onnx/model.onnx', 'config.json', 'tokenizer.json', 'generation_config.json']) assert.ok(files.has(f), `the zip holds ${f} (${[...files.keys()].join(', ')})`);
    const cfgJson = JSON.parse(files.get('config.json')!.toString('utf8'));
    assert.equal(cfgJson['transformers.js_config'].dtype, 'fp32');
    await page.waitForSelector(`#adapter-list [data-adapter] .note-good`);
    await s.shot('adapters-onnx');

    // the exported folder, run in Node's onnxruntime, continues the prompt as the tuned pane did
    const { tokenizer } = await loadModelTokenizer(await nodeSource(SPEC_REPOS[TINY_REPO]));
    const session = await createOnnxSession(new Map([...files].map(([k, v]) => [k, new Uint8Array(v)])));
    const g = await onnxGenerate(session, tokenizer, encodeCompletionPrompt(PROMPT, tokenizer), MAX);
    assert.equal(g.text, both.texts[1], 'the downloaded ONNX model = the playground tuned lane');

    assert.deepEqual(s.net.offHost, [], 'no request left localhost');
    assert.ok(s.net.requests.some((u) => /ort-wasm-simd-threaded.*\.wasm$/.test(u)), "onnxruntime's wasm came from the app's own build");
    assert.deepEqual(s.errors, [], 'no page errors');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await s.close();
  }
});
