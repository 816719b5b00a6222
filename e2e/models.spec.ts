// Models page in real Chromium: download tinystories-656k from a local Hub-layout server with
// visible progress (bytes, percent, speed, time left), cancel and resume a download, see the config
// and the base memory per format, import a .gguf and a Hugging Face folder from local files, delete.
// Every request stays on this machine. Screenshots: test-results/models-*.png.
import assert from 'node:assert/strict';
import { test } from '../test/harness.ts';
import { openApp, setHubServer, TINY_REPO } from './flows.ts';

test('models: Hub download with progress, cancel and resume, details, local .gguf and folder imports, delete', async () => {
  const s = await openApp('models', { hubBytesPerSecond: 400_000 });
  const { page } = s;
  page.on('dialog', (d) => void d.accept());
  try {
    await page.waitForSelector('#models-empty');
    await s.shot('empty');
    await setHubServer(s);
    assert.equal(await page.inputValue('#hub-server'), s.hub.url);

    // start, watch the progress, cancel half way
    await page.click(`[data-hub="${TINY_REPO}"] button`);
    await page.waitForFunction(() => {
      const t = document.querySelector<HTMLElement>('.transfer');
      return !!t && Number(t.dataset.percent) > 20 && Number(t.dataset.percent) < 85 && /left/.test(t.innerText);
    }, undefined, { timeout: 30_000 });
    const midText = await page.locator('.transfer .transfer-text').first().innerText();
    assert.match(midText, /iB of .*iB · \d+% · .*iB\/s · .* left/, `progress shows bytes, percent, speed and time left: ${midText}`);
    await s.shot('downloading');
    await page.click('.transfer .transfer-head button');
    await page.waitForSelector('.transfer[data-state="failed"]', { timeout: 15_000 });
    await page.waitForSelector(`[data-model="hub:${TINY_REPO}@main"][data-complete="false"]`, { timeout: 15_000 });
    await s.shot('cancelled');

    // resume it (unthrottled) from the partial row
    s.hub.throttle(0);
    await page.click(`[data-model="hub:${TINY_REPO}@main"] button:has-text("Resume download")`);
    await page.waitForSelector(`[data-model="hub:${TINY_REPO}@main"][data-complete="true"]`, { timeout: 60_000 });
    const gets = s.hub.log.filter((r) => r.method === 'GET' && r.path.endsWith('/model.safetensors'));
    assert.ok(gets.length >= 2, `the weights were requested again to resume (${gets.length} GETs)`);
    assert.ok(s.hub.log.every((r) => r.path.startsWith(`/${TINY_REPO}/resolve/main/`)), 'only the repo files were requested');

    // details: config and base memory (opened after a download)
    const det = page.locator(`[data-model-details="hub:${TINY_REPO}@main"]`);
    await det.locator('[data-field="layers"]').waitFor({ timeout: 30_000 });
    assert.equal(await det.locator('[data-field="layers"]').innerText(), '2');
    assert.equal(await det.locator('[data-field="hidden"]').innerText(), '128');
    assert.equal(await det.locator('[data-field="vocab"]').innerText(), '2,048');
    assert.match(await det.locator('[data-field="params"]').innerText(), /^6\d\dK/);
    const mem = await det.locator('[data-field="memory"] td').allInnerTexts();
    assert.equal(mem.length, 3, 'f32, q8 and q4 base memory');
    assert.match(mem[0], /MiB|KiB/);
    await s.shot('downloaded');

    // a single .gguf from the computer
    await page.setInputFiles('#local-gguf', '../shared/models/stories260K/stories260K.gguf');
    await page.waitForSelector('[data-model="local:stories260K"][data-complete="true"]', { timeout: 60_000 });
    const g = page.locator('[data-model-details="local:stories260K"]');
    await g.locator('[data-field="layers"]').waitFor({ timeout: 30_000 });
    assert.equal(await g.locator('[data-field="hidden"]').innerText(), '64');
    assert.equal(await g.locator('[data-field="vocab"]').innerText(), '512');

    // a Hugging Face folder (webkitdirectory)
    await page.setInputFiles('#local-folder', '../shared/models/tinystories-656k');
    await page.waitForSelector('[data-model="local:tinystories-656k"][data-complete="true"]', { timeout: 60_000 });
    await s.shot('imported');

    // delete the .gguf
    await page.click('[data-model="local:stories260K"] button:has-text("Delete")');
    await page.waitForSelector('[data-model="local:stories260K"]', { state: 'detached', timeout: 15_000 });
    assert.equal(await page.locator('#model-list [data-model]').count(), 2);

    await page.emulateMedia({ colorScheme: 'dark' });
    await s.shot('dark');
    await page.setViewportSize({ width: 420, height: 900 });
    await s.shot('narrow');

    assert.deepEqual(s.errors, [], 'no page errors');
    assert.deepEqual(s.net.offHost, [], 'no request left localhost');
  } finally {
    await s.close();
  }
});
