// Offline in real Chromium: the first load installs the service worker, which precaches the whole
// build (page, engine worker, chunks, onnxruntime's .wasm); tinystories-656k is downloaded from the
// local "Hub" (after which whittle asks for persistent storage, shown on the Device page with the
// usage and quota) and a dataset saved. Then the app server and the Hub server are shut down and
// the browser goes offline: a reload still loads the app, the stored model is listed, a short
// training run succeeds, and the playground generates on the GPU and on the CPU (ONNX, whose
// .wasm comes from the cache). No request leaves localhost during the whole spec.
// Screenshots: test-results/offline-*.png.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from '../test/harness.ts';
import { TINY_REPO, downloadTinyModel, openApp, saveDataset, startRun, tinyDataset } from './flows.ts';

test('offline: after the first load the app, its stored model, dataset and adapters work with no network', async () => {
  const s = await openApp('offline');
  const { page } = s;
  try {
    // the first load: the service worker installs, precaches the build and takes the page
    await page.waitForFunction(() => !!navigator.serviceWorker?.controller, undefined, { timeout: 60_000 });
    const cached = await page.evaluate(async () => {
      const name = (await caches.keys()).find((k) => k.startsWith('whittle-app-'));
      return name ? (await (await caches.open(name)).keys()).map((r) => new URL(r.url).pathname) : [];
    });
    for (const re of [/\/index\.html$/, /\/assets\/index-.*\.js$/, /\/assets\/engine\.worker-.*\.js$/, /\/assets\/ort-wasm-simd-threaded-.*\.wasm$/, /\/assets\/onnx-generate-.*\.js$/]) {
      assert.ok(cached.some((p) => re.test(p)), `the cache holds ${re} (${cached.join(', ')})`);
    }

    // a new build (here: dist/sw.js with another version) installs beside this one; the page offers
    // "Reload", which switches to it and drops the old cache
    const swPath = 'dist/sw.js', swText = readFileSync(swPath, 'utf8');
    const version = /"version":"([0-9a-f]+)"/.exec(swText)![1];
    writeFileSync(swPath, swText.replace(`"version":"${version}"`, `"version":"${version}-next"`));
    try {
      await page.evaluate(() => navigator.serviceWorker.getRegistration().then((r) => r?.update()));
      await page.waitForSelector('#update-banner:not([hidden])', { timeout: 60_000 });
      assert.match(await page.locator('#update-banner').innerText(), /A new version of whittle is ready/);
      await s.shot('update');
      await Promise.all([page.waitForEvent('load', { timeout: 60_000 }), page.click('#update-reload')]);
    } finally {
      writeFileSync(swPath, swText);
    }
    await page.waitForSelector('#gpu-badge.ok', { timeout: 60_000 });
    assert.deepEqual(await page.evaluate(() => caches.keys()), [`whittle-app-${version}-next`], 'the new cache only');
    assert.ok(await page.locator('#update-banner').isHidden(), 'no banner after the update');

    await downloadTinyModel(s);
    await saveDataset(s, 'greetings', tinyDataset(24).join('\n'));

    // storage: asked once, after the first download; usage and quota on the Device page
    await page.goto(`${s.url}#device`);
    await page.waitForSelector('#persist-line[data-state="granted"], #persist-line[data-state="denied"]', { timeout: 30_000 });
    const persist = await page.locator('#persist-line').innerText();
    assert.match(persist, /Persistent storage (granted|not granted) \(asked .*, after the first download\)/);
    const asked = await page.evaluate(() => localStorage.getItem('whittle.persist'));
    assert.equal(JSON.parse(asked!).after, 'the first download', 'asked after the first download, not after the dataset save');
    const usage = Number(await page.getAttribute('#storage-line', 'data-usage'));
    const quota = Number(await page.getAttribute('#storage-line', 'data-quota'));
    assert.ok(usage > 2e6 && quota > usage, `usage ${usage} of quota ${quota} (the model is stored)`);
    assert.match(await page.locator('#storage-line').innerText(), /Storage .* used of .* this site may use \(/);
    assert.equal(await page.getAttribute('#offline-line', 'data-state'), 'ready');
    console.log(`  ${persist.replace(/\s+/g, ' ')}`);
    await s.shot('device');

    // no network from here on: no app server, no Hub server, the browser offline
    await s.stopServers();
    await s.context.setOffline(true);
    await page.goto(`${s.url}#models`);
    await page.waitForSelector('#gpu-badge.ok', { timeout: 60_000 });
    await page.waitForSelector(`#model-list [data-model="hub:${TINY_REPO}@main"][data-complete="true"]`, { timeout: 30_000 });
    await s.shot('models');

    await startRun(s, 'offline run', { maxSteps: 3, batchSize: 4, seqLen: 16, learningRate: 0.01, validationFraction: 0, evalInterval: 0 });
    await page.waitForSelector('#job-dashboard[data-status="succeeded"]', { timeout: 120_000 });
    await page.waitForSelector('#job-log .ev-adapter', { timeout: 30_000 });

    await page.goto(`${s.url}#playground`);
    await page.waitForFunction(() => (document.querySelector('#pg-adapter') as HTMLSelectElement)?.selectedOptions[0]?.textContent === 'offline run', undefined, { timeout: 30_000 });
    await page.fill('#pg-prompt', 'Tom saw a dog.');
    await page.locator('#pg-form details.advanced summary').click();
    await page.fill('#pg-temperature', '0');
    await page.fill('#pg-max', '8');
    const run = async (backend: string) => {
      await page.click('#pg-generate');
      await page.waitForFunction(() => {
        const panes = [...document.querySelectorAll<HTMLElement>('#pg-outputs .gen-pane')];
        return panes.length === 2 && panes.every((p) => p.dataset.state !== 'running');
      }, undefined, { timeout: 60_000 });
      const note = (await page.locator('#pg-note').isVisible()) ? await page.locator('#pg-note').innerText() : '';
      const panes = await page.$$eval('#pg-outputs .gen-pane', (ps) => ps.map((p) => ({ state: (p as HTMLElement).dataset.state, backend: (p as HTMLElement).dataset.backend })));
      assert.deepEqual(panes, [{ state: 'done', backend }, { state: 'done', backend }], `both lanes generated on ${backend} (${note})`);
      const texts = await page.locator('#pg-outputs .gen-text').allInnerTexts();
      assert.ok(texts.every((t) => t.trim().length > 0), `text on ${backend}: ${JSON.stringify(texts)}`);
      return texts;
    };
    const gpu = await run('gpu');
    await s.shot('playground-gpu');
    await page.check('#pg-onnx');
    const cpu = await run('onnx');
    console.log(`  offline: GPU ${JSON.stringify(gpu)}, CPU (ONNX) ${JSON.stringify(cpu)}`);
    await s.shot('playground-onnx');
    await page.uncheck('#pg-onnx');

    assert.deepEqual(s.net.offHost, [], 'no request left localhost');
    assert.deepEqual(s.errors, [], 'no page errors');
  } finally {
    await s.close();
  }
});
