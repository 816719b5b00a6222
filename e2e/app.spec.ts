// The app in real Chromium with WebGPU (SwiftShader): the adapter is reported, the kernel self-test
// runs in the engine worker and every check passes, nothing leaves localhost, the page is usable by
// keyboard; and without WebGPU the page explains why. Screenshots go to test-results/.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { test } from '../test/harness.ts';
import { buildIfStale, guardNetwork, launchChromium, serveDist, watchErrors } from './browser.ts';

const SHOTS = 'test-results';

test('app: adapter reported, self-test passes in the worker, nothing leaves localhost', async () => {
  mkdirSync(SHOTS, { recursive: true });
  const b = buildIfStale();
  if (b.built) console.log(`  built dist/ in ${(b.ms / 1000).toFixed(1)} s`);
  const server = await serveDist();
  const browser = await launchChromium();
  try {
    const net = await guardNetwork(browser.context);
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    const errors = watchErrors(page);
    await page.goto(`${server.url}#device`);

    // the adapter, as the worker got it
    await page.waitForSelector('#adapter-info, #webgpu-missing', { timeout: 60_000 });
    const missing = await page.$('#webgpu-missing');
    assert.equal(missing, null, `the page says WebGPU is missing: ${missing && (await missing.innerText())}`);
    const field = (name: string) => page.locator(`#adapter-info [data-field="${name}"]`).innerText();
    assert.equal(await field('architecture'), 'swiftshader', 'adapter architecture');
    assert.ok((await field('vendor')).length > 0, 'adapter vendor shown');
    assert.equal(await field('context'), 'a Web Worker', 'the engine runs in a Web Worker');
    assert.match(await page.locator('#software-adapter').innerText(), /software renderer.*runs on the CPU/s, 'SwiftShader is named a software renderer');
    for (const f of ['shader-f16', 'subgroups', 'timestamp-query']) {
      assert.equal(await page.locator(`#adapter-features [data-feature="${f}"]`).count(), 1, `feature ${f} listed`);
    }
    assert.match(await page.locator('#adapter-limits [data-limit="maxStorageBufferBindingSize"]').innerText(), /iB$/);
    await page.waitForFunction(() => !document.querySelector('#storage-line')?.textContent?.includes('checking'));
    assert.match(await page.locator('#storage-line').innerText(), /Storage .* used of /);
    await page.screenshot({ path: `${SHOTS}/app-adapter.png`, fullPage: true });

    // run the self-test from the keyboard: Tab to the button, press Enter
    let focused = '';
    for (let i = 0; i < 30 && focused !== 'run-selftest'; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => document.activeElement?.id ?? '');
    }
    assert.equal(focused, 'run-selftest', 'the Run self-test button is reachable with Tab');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#selftest-table[data-state="running"], #selftest-table[data-state="done"]', { timeout: 10_000 });
    await page.waitForSelector('#selftest-table[data-state="done"], #selftest-table[data-state="error"]', { timeout: 150_000 });
    const status = await page.locator('#selftest-status').innerText();
    const table = page.locator('#selftest-table');
    assert.equal(await table.getAttribute('data-state'), 'done', `self-test did not finish: ${status}`);
    const rows = await page.$$eval('#selftest-table tbody tr[data-op]', (trs) =>
      trs.map((tr) => ({ pass: tr.getAttribute('data-pass'), text: (tr as HTMLElement).innerText.replace(/\s+/g, ' ') })),
    );
    assert.ok(rows.length > 0, 'self-test shows results');
    const bad = rows.filter((r) => r.pass !== 'true');
    assert.equal(bad.length, 0, `self-test rows failed:\n  ${bad.map((r) => r.text).join('\n  ')}`);
    assert.equal(await table.getAttribute('data-failed'), '0');
    assert.equal(Number(await table.getAttribute('data-passed')), rows.length, 'every result the worker counted is shown');
    assert.equal(await table.getAttribute('data-context'), 'worker', 'results came from the worker');
    const ops = new Set(await page.$$eval('#selftest-table tbody tr[data-op]', (trs) => trs.map((tr) => tr.getAttribute('data-op'))));
    console.log(`  ${rows.length} checks over ${ops.size} ops passed (${[...ops].join(', ')}): ${status}`);

    // the worker itself ran them
    const worker = page.workers().find((w) => w.url().includes('engine.worker'));
    assert.ok(worker, `the engine worker is running (workers: ${page.workers().map((w) => w.url()).join(', ') || 'none'})`);
    const last = await worker.evaluate(() => (self as unknown as { whittleEngine: { lastSelftest: { passed: number; failed: number } | null } }).whittleEngine.lastSelftest);
    assert.deepEqual(last && { passed: last.passed, failed: last.failed }, { passed: rows.length, failed: 0 }, "the worker's own record");

    await page.evaluate(() => window.scrollTo(0, 0)); // sticky header: full-page shots from the top
    await page.screenshot({ path: `${SHOTS}/app-selftest.png`, fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: `${SHOTS}/app-selftest-dark.png`, fullPage: true });
    await page.setViewportSize({ width: 420, height: 900 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: `${SHOTS}/app-narrow.png`, fullPage: true });

    assert.deepEqual(errors, [], 'no page errors');
    assert.deepEqual(net.offHost, [], 'no request left localhost');
    assert.ok(net.requests.some((u) => u.includes('engine.worker')), 'the worker script was fetched from localhost');
  } finally {
    await browser.close();
    await server.close();
  }
});

test('app: without WebGPU the page explains why', async () => {
  buildIfStale();
  const server = await serveDist();
  const browser = await launchChromium({ webgpu: false });
  try {
    const net = await guardNetwork(browser.context);
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    await page.goto(`${server.url}#device`);
    await page.waitForSelector('#adapter-info, #webgpu-missing', { timeout: 60_000 });
    if (await page.$('#adapter-info')) {
      console.log('  (this chromium gives a WebGPU adapter even without the flags; nothing to explain)');
      return;
    }
    const text = await page.locator('#webgpu-missing').innerText();
    assert.match(text, /WebGPU is not available/);
    assert.ok(await page.locator('#run-selftest').isDisabled(), 'self-test is disabled without WebGPU');
    await page.screenshot({ path: `${SHOTS}/app-no-webgpu.png`, fullPage: true });
    assert.deepEqual(net.offHost, [], 'no request left localhost');
  } finally {
    await browser.close();
    await server.close();
  }
});
