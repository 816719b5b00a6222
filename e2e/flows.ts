// Steps the app specs share, done through the UI as a user would: open the built app with the
// network guard and a local Hub-layout server, download the tinystories model from that "Hub",
// save a dataset, start a short training run. Screenshots go to test-results/ (one per step).
// It is not: a spec (each spec file runs its own flow and asserts its own outcome).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import type { BrowserContext, Page } from 'playwright-core';
import { buildIfStale, guardNetwork, launchChromium, serveDist, watchErrors } from './browser.ts';
import { SPEC_REPOS, startHubServer, type HubServer } from './hub-server.ts';

export const SHOTS = 'test-results';
export const TINY_REPO = 'raincandy-u/TinyStories-656K';

export interface AppSession {
  page: Page;
  context: BrowserContext;
  url: string;
  hub: HubServer;
  net: { requests: string[]; offHost: string[] };
  errors: string[];
  shot(name: string): Promise<void>;
  /** Stop the app server and the Hub server (the offline spec: only the service worker serves the app then). */
  stopServers(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Build (when stale), serve dist/, start the Hub server and a fresh Chromium profile, open the app.
 * `webgpu: false` launches Chromium without the WebGPU flags (no adapter: the page says so).
 */
export async function openApp(spec: string, opts: { hubBytesPerSecond?: number; hash?: string; webgpu?: boolean } = {}): Promise<AppSession> {
  mkdirSync(SHOTS, { recursive: true });
  const b = buildIfStale();
  if (b.built) console.log(`  built dist/ in ${(b.ms / 1000).toFixed(1)} s`);
  const server = await serveDist();
  const hub = await startHubServer(SPEC_REPOS, { bytesPerSecond: opts.hubBytesPerSecond });
  const gpu = opts.webgpu !== false;
  const browser = await launchChromium({ webgpu: gpu });
  const net = await guardNetwork(browser.context);
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  const errors = watchErrors(page);
  await page.goto(`${server.url}${opts.hash ?? '#models'}`);
  await page.waitForSelector('#gpu-badge.ok, #gpu-badge.warn', { timeout: 60_000 });
  if (gpu) assert.ok(await page.$('#gpu-badge.ok'), `the engine has a GPU (${await page.locator('#gpu-badge').innerText()})`);
  else assert.equal(await page.locator('#gpu-badge').innerText(), 'no WebGPU', 'launched without WebGPU: the badge says so');
  let n = 0, serving = true;
  const stopServers = async () => {
    if (!serving) return;
    serving = false;
    await hub.close();
    await server.close();
  };
  return {
    page, context: browser.context, url: server.url, hub, net, errors, stopServers,
    shot: async (name) => {
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: `${SHOTS}/${spec}-${String(++n).padStart(2, '0')}-${name}.png`, fullPage: true });
    },
    close: async () => {
      await browser.close();
      await stopServers();
    },
  };
}

/** Point the app at the local Hub server (Models → Hub server). */
export async function setHubServer(s: AppSession): Promise<void> {
  const { page } = s;
  await page.goto(`${s.url}#models`);
  const details = page.locator('details.server');
  if (!(await details.evaluate((d) => (d as HTMLDetailsElement).open))) await details.locator('summary').click();
  await page.fill('#hub-server', s.hub.url);
  await page.locator('#hub-server').dispatchEvent('change');
}

/** Download tinystories-656k from the local "Hub" through the built-in list; resolves when it is stored. */
export async function downloadTinyModel(s: AppSession): Promise<void> {
  await setHubServer(s);
  await s.page.click(`[data-hub="${TINY_REPO}"] button`);
  await s.page.waitForSelector(`#model-list [data-model="hub:${TINY_REPO}@main"][data-complete="true"]`, { timeout: 60_000 });
}

/** Save `text` as a dataset named `name` from the Datasets editor; returns its id. */
export async function saveDataset(s: AppSession, name: string, text: string): Promise<string> {
  const { page } = s;
  await page.goto(`${s.url}#datasets`);
  await page.fill('#ds-name', name);
  await page.fill('#ds-text', text);
  await page.waitForSelector('#ds-summary[data-state="valid"]', { timeout: 30_000 });
  await page.click('#ds-save');
  await page.waitForSelector('#ds-save-note.note-good', { timeout: 30_000 });
  return (await page.getAttribute('#ds-save-note', 'data-dataset-id'))!;
}

/** A short, learnable prompt/completion dataset for the tiny model (16 tokens per example). */
export function tinyDataset(n = 40): string[] {
  const names = ['Tom', 'Lily', 'Ben', 'Mia', 'Sam', 'Sue', 'Max', 'Anna'];
  const pets = ['dog', 'cat', 'bird', 'frog', 'fish'];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push(JSON.stringify({ prompt: `${names[i % 8]} saw a ${pets[i % 5]}.`, completion: ` ${names[i % 8]} said hello. The end.` }));
  }
  return out;
}

/** Fill the Train form (model and dataset as chosen there; `hp` by field key) and start; resolves with the job id. */
export async function startRun(s: AppSession, name: string, hp: Record<string, string | number>): Promise<string> {
  const { page } = s;
  await page.goto(`${s.url}#train`);
  await page.fill('#train-name', name);
  const adv = page.locator('#train-form details.advanced');
  if (!(await adv.evaluate((d) => (d as HTMLDetailsElement).open))) await adv.locator('summary').click();
  for (const [k, v] of Object.entries(hp)) await page.fill(`#hp-${k}`, String(v));
  await page.waitForFunction((steps) => document.querySelector('#plan-steps')?.textContent === String(steps) && !document.querySelector('#train-plan[aria-busy]'),
    hp.maxSteps ?? null, { timeout: 60_000 }).catch(async () => {
    throw new Error(`the plan did not show: ${await page.locator('#train-plan').innerText()}`);
  });
  await page.waitForSelector('#train-start:not([disabled])', { timeout: 30_000 });
  await page.click('#train-start');
  await page.waitForFunction((n) => document.querySelector('#dash-h')?.textContent === n, name, { timeout: 30_000 });
  return (await page.getAttribute('#job-dashboard', 'data-job'))!;
}

/** The worker's own record of the URLs it fetched. */
export async function workerFetches(page: Page): Promise<string[]> {
  const w = page.workers().find((x) => x.url().includes('engine.worker'));
  assert.ok(w, 'the engine worker is running');
  return w.evaluate(() => (self as unknown as { whittleEngine: { fetched: string[] } }).whittleEngine.fetched.slice());
}
