// Playground and Adapters pages in real Chromium: after a short LoRA run of tinystories-656k, the
// same prompt streams through the base model and the tuned adapter side by side (both panes grow
// token by token at the same time); the tuned one has learned the dataset's ending. Then the
// adapter is exported as PEFT (.zip) and as a llama.cpp GGUF LoRA, as downloads.
// Screenshots: test-results/playground-*.png.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../test/harness.ts';
import { downloadTinyModel, openApp, saveDataset, startRun, tinyDataset } from './flows.ts';

/** The entries of a stored (uncompressed) zip, as the app writes them. */
function unzipStored(zip: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let p = 0;
  while (zip.readUInt32LE(p) === 0x04034b50) {
    assert.equal(zip.readUInt16LE(p + 8), 0, 'stored entries');
    const size = zip.readUInt32LE(p + 18), n = zip.readUInt16LE(p + 26), x = zip.readUInt16LE(p + 28);
    out.set(zip.subarray(p + 30, p + 30 + n).toString('utf8'), zip.subarray(p + 30 + n + x, p + 30 + n + x + size));
    p += 30 + n + x + size;
  }
  return out;
}

test('playground: base vs tuned both stream, the tuned one learned; adapter exports download', async () => {
  const s = await openApp('playground');
  const { page } = s;
  try {
    await downloadTinyModel(s);
    await saveDataset(s, 'greetings', tinyDataset(40).join('\n'));
    await startRun(s, 'greeter', { maxSteps: 8, batchSize: 4, seqLen: 16, learningRate: 0.01, validationFraction: 0, evalInterval: 0 });
    await page.waitForSelector('#job-dashboard[data-status="succeeded"]', { timeout: 180_000 });
    await page.waitForSelector('#job-log .ev-adapter', { timeout: 30_000 });

    await page.goto(`${s.url}#playground`);
    await page.waitForFunction(() => (document.querySelector('#pg-adapter') as HTMLSelectElement)?.selectedOptions[0]?.textContent === 'greeter', undefined, { timeout: 30_000 });
    assert.equal(await page.inputValue('#pg-mode'), 'completion', 'a base model without a chat template starts in completion mode');
    // WebGPU here is SwiftShader: the playground says the CPU (ONNX) path decodes faster, and leaves the choice to the user
    await page.waitForSelector('#pg-cpu-note:not([hidden])', { timeout: 30_000 });
    assert.match(await page.locator('#pg-cpu-note').innerText(), /software renderer \(.*swiftshader.*\).*run on CPU \(ONNX\)” decodes faster/is);
    assert.equal(await page.isChecked('#pg-onnx'), false, 'the WebGPU path stays the default');
    assert.equal(await page.isDisabled('#pg-onnx'), false);
    await page.fill('#pg-prompt', 'Tom saw a dog.');
    await page.locator('#pg-form details.advanced summary').click();
    await page.fill('#pg-temperature', '0');
    await page.fill('#pg-max', '12');

    // record every change of the two panes: streaming means both grow while both still run
    await page.evaluate(() => {
      const w = window as unknown as { snaps: Array<Array<{ state: string; tokens: number }>> };
      w.snaps = [];
      new MutationObserver(() => {
        const panes = [...document.querySelectorAll<HTMLElement>('#pg-outputs .gen-pane')];
        w.snaps.push(panes.map((p) => ({ state: p.dataset.state ?? '', tokens: Number(p.dataset.tokens ?? 0) })));
      }).observe(document.querySelector('#pg-outputs')!, { subtree: true, childList: true, attributes: true, characterData: true });
    });
    await page.click('#pg-generate');
    await page.waitForFunction(() => {
      const panes = [...document.querySelectorAll<HTMLElement>('#pg-outputs .gen-pane')];
      return panes.length === 2 && panes.every((p) => p.dataset.state === 'done');
    }, undefined, { timeout: 120_000 });
    const snaps = await page.evaluate(() => (window as unknown as { snaps: Array<Array<{ state: string; tokens: number }>> }).snaps);
    const both = snaps.filter((x) => x.length === 2 && x.every((p) => p.state === 'running' && p.tokens >= 2));
    assert.ok(both.length > 0, 'at some moment both panes had streamed tokens while both were still generating');
    const [base, tuned] = await page.locator('#pg-outputs .gen-text').allInnerTexts();
    assert.ok(base.trim().length > 0 && tuned.trim().length > 0, `both produced text (base "${base}", tuned "${tuned}")`);
    assert.match(tuned, /said hello/, `the tuned model learned the dataset's ending: "${tuned}"`);
    assert.notEqual(base, tuned, 'base and tuned differ');
    assert.match(await page.locator('#pg-outputs .gen-pane[data-lane="1"] .gen-foot').innerText(), /tokens · .*tokens\/s/);
    await s.shot('compare');

    // exports
    await page.goto(`${s.url}#adapters`);
    const row = page.locator('#adapter-list [data-adapter]').first();
    await row.waitFor();
    const [peft] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), row.locator('button[data-export]').click()]);
    assert.match(peft.suggestedFilename(), /^greeter-peft\.zip$/);
    const zip = readFileSync((await peft.path())!);
    assert.equal(zip.readUInt32LE(0), 0x04034b50, 'a zip file');
    const files = unzipStored(zip);
    for (const f of ['adapter_config.json', 'adapter_model.safetensors']) assert.ok(files.has(f), `the zip holds ${f} (${[...files.keys()].join(', ')})`);
    assert.equal(JSON.parse(files.get('adapter_config.json')!.toString('utf8')).r, 8, 'PEFT config with the rank');
    await row.locator('select').first().selectOption('gguf');
    const [gguf] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), row.locator('button[data-export]').click()]);
    assert.match(gguf.suggestedFilename(), /\.gguf$/);
    assert.equal(readFileSync((await gguf.path())!).subarray(0, 4).toString('latin1'), 'GGUF');

    // the PEFT export imports back as an adapter
    const dir = mkdtempSync(join(tmpdir(), 'whittle-peft-'));
    try {
      for (const f of ['adapter_config.json', 'adapter_model.safetensors']) writeFileSync(join(dir, f), files.get(f)!);
      await page.fill('#imp-name', 'greeter (round trip)');
      await page.setInputFiles('#imp-files', [join(dir, 'adapter_config.json'), join(dir, 'adapter_model.safetensors')]);
      await page.waitForSelector('#imp-note.note-good', { timeout: 30_000 });
      await page.waitForSelector('#adapter-list .adapter-title:has-text("greeter (round trip)")');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await s.shot('adapters');

    assert.deepEqual(s.net.offHost, [], 'no request left localhost');
    assert.deepEqual(s.errors, [], 'no page errors');
  } finally {
    await s.close();
  }
});
