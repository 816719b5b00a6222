// Train page in real Chromium (WebGPU on SwiftShader): the plan before starting (trainable
// parameters vs the base, memory, steps), a short LoRA run of tinystories-656k whose chart updates
// as it trains, a reload in the middle → the chart shows the saved metrics at once and the worker
// resumes from the last checkpoint and finishes; the loss falls; the adapter is saved. No request
// at all is made while training (and none leaves localhost). Screenshots: test-results/train-*.png.
import assert from 'node:assert/strict';
import { test } from '../test/harness.ts';
import { downloadTinyModel, openApp, saveDataset, startRun, tinyDataset, workerFetches } from './flows.ts';

const STEPS = 12;

async function chartPoints(page: import('playwright-core').Page): Promise<{ points: number; valid: number; first: number; last: number }> {
  return page.$eval('#job-dashboard svg.chart', (svg) => {
    const d = (svg as SVGElement).dataset;
    return { points: Number(d.points ?? 0), valid: Number(d.valid ?? 0), first: Number(d.first), last: Number(d.last) };
  });
}

test('train: plan, live chart, reload mid-run resumes from the checkpoint and finishes, loss falls, adapter saved', async () => {
  const s = await openApp('train');
  const { page } = s;
  try {
    await downloadTinyModel(s);
    await saveDataset(s, 'greetings', tinyDataset(40).join('\n'));
    const hubBefore = s.hub.log.length;

    const jobId = await startRun(s, 'greetings run', {
      maxSteps: STEPS, batchSize: 4, seqLen: 16, learningRate: 0.01, validationFraction: 0.1, evalInterval: 3, checkpointInterval: 3,
    });
    assert.ok(jobId, 'the dashboard shows the new job');

    // the plan was shown before starting
    assert.match(await page.locator('#plan-trainable').innerText(), /^[\d,]+$/);
    const fetchedBefore = (await workerFetches(page)).length;

    // the chart updates while it trains
    await page.waitForFunction(() => Number(document.querySelector<SVGElement>('#job-dashboard svg.chart')?.dataset.points ?? 0) >= 2, undefined, { timeout: 120_000 });
    const early = await chartPoints(page);
    assert.ok(early.points >= 2, 'points arrive while training');
    assert.match(await page.locator('#job-progress-text').innerText(), new RegExp(`^step \\d+ of ${STEPS} · \\d+%`));
    assert.notEqual(await page.locator('#tile-tps strong').innerText(), '—', 'tokens/s shown');
    await s.shot('running');

    // reload in the middle, after the first checkpoint (step 3)
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('#job-progress-text')?.dataset.step ?? 0) >= 5, undefined, { timeout: 120_000 });
    assert.equal((await workerFetches(page)).length, fetchedBefore, 'the worker fetched nothing while training');
    const before = await chartPoints(page);
    await page.reload();
    await page.waitForSelector(`#job-dashboard[data-job="${jobId}"]`, { timeout: 60_000 });
    await page.waitForFunction(() => Number(document.querySelector<SVGElement>('#job-dashboard svg.chart')?.dataset.points ?? 0) >= 3, undefined, { timeout: 30_000 });
    const after = await chartPoints(page);
    assert.ok(after.points >= 3, `the chart shows the saved metrics after the reload (${after.points} of ${before.points} points)`);
    assert.equal(after.first, before.first, 'the same run');
    await page.waitForSelector('#job-log .ev-checkpoint:has-text("resumed from the checkpoint at step")', { timeout: 120_000 });
    const resumed = await page.locator('#job-log .ev-checkpoint:has-text("resumed from the checkpoint")').last().innerText();
    const at = Number(/step (\d+)/.exec(resumed)![1]);
    assert.ok(at >= 3 && at % 3 === 0, `resumed at a checkpoint step (${at})`);
    assert.ok(await page.locator('#job-log .ev:has-text("the page was reloaded")').count(), 'the log says why it resumed');
    await s.shot('resumed');

    // pause and resume the live job
    await page.waitForSelector('#job-dashboard[data-status="running"]', { timeout: 60_000 });
    await page.click('#job-pause');
    await page.waitForSelector('#job-dashboard[data-status="paused"]', { timeout: 60_000 });
    const pausedAt = Number(await page.getAttribute('#job-progress-text', 'data-step'));
    await page.waitForTimeout(1500);
    assert.equal(Number(await page.getAttribute('#job-progress-text', 'data-step')), pausedAt, 'no step while paused');
    await page.click('#job-resume');
    await page.waitForSelector('#job-dashboard[data-status="running"]', { timeout: 30_000 });

    // it finishes
    await page.waitForSelector('#job-dashboard[data-status="succeeded"]', { timeout: 180_000 }).catch(async (e) => {
      throw new Error(`${(e as Error).message}\nstatus ${await page.getAttribute('#job-dashboard', 'data-status')}; log:\n${await page.locator('#job-log').innerText()}`);
    });
    const end = await chartPoints(page);
    assert.equal(end.points, STEPS, 'one point per step, none doubled by the resume');
    assert.ok(end.valid >= 3, `validation points (${end.valid})`);
    assert.ok(end.last < 0.5 * end.first, `the loss falls: ${end.first.toFixed(3)} → ${end.last.toFixed(3)}`);
    assert.match(await page.locator('#job-progress-text').innerText(), new RegExp(`^step ${STEPS} of ${STEPS} · 100%`));
    await page.waitForSelector('#job-log .ev-adapter', { timeout: 30_000 });
    await s.shot('finished');

    await page.goto(`${s.url}#adapters`);
    await page.waitForSelector('#adapter-list [data-adapter] .adapter-title:has-text("greetings run")', { timeout: 30_000 });
    const loss = Number(await page.locator('#adapter-list [data-adapter] [data-metric="finalLoss"]').first().innerText());
    assert.ok(loss < end.first, `the adapter records the final loss (${loss})`);
    await s.shot('adapter');

    assert.equal(s.hub.log.length, hubBefore, 'no request to the Hub server while training');
    assert.deepEqual(await workerFetches(page), [], 'the worker after the reload fetched nothing');
    assert.deepEqual(s.net.offHost, [], 'no request left localhost');
    assert.deepEqual(s.errors, [], 'no page errors');
  } finally {
    await s.close();
  }
});
