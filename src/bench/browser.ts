// The browser peer of `whittle bench` (issue: "transformers.js / onnxruntime-web on the same model
// in the same browser"): builds the app when stale (bench.html is one of its pages), serves dist/
// on localhost, opens bench.html in Debian's Chromium (headless, WebGPU on SwiftShader — the flags of
// e2e/browser.ts) and collects what src/bench/page.ts measured there: our decode on the browser's
// WebGPU adapter and onnxruntime-web's (wasm, 1 thread) on the same model, same page, same run —
// and (unless c.ortWebgpu is false) onnxruntime-web's WebGPU execution provider on the same WebGPU
// adapter, as transformers.js runs with device 'webgpu'; the page's adapter's ceilings (unless
// c.driver is false; 'tiny': small probes); with c.train, a LoRA training step of that model in the
// page too.
// The model files are answered from disk (route `**/bench-model/*`); nothing leaves the machine.
// Node only (playwright-core, vite): imported lazily by src/bench/run.ts.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildIfStale, launchChromium, serveDist } from '../../e2e/browser.ts';
import type { BrowserBenchResult } from './page.ts';

export type { BrowserBenchResult };

export async function benchBrowser(
  modelDir: string, c: { prompt: number; gen: number; runs: number; ortWebgpu?: boolean; driver?: boolean | 'tiny'; train?: { batch: number; seq: number; steps: number } }, log?: (s: string) => void, timeoutMs = 10 * 60_000,
): Promise<BrowserBenchResult> {
  const b = buildIfStale();
  if (b.built) log?.(`  built the app for the browser bench (${(b.ms / 1000).toFixed(1)} s)`);
  const server = await serveDist();
  const { context, close } = await launchChromium();
  try {
    await context.route('**/bench-model/*', async (route) => {
      const name = new URL(route.request().url()).pathname.split('/').pop() ?? '';
      if (!/^[\w.-]+$/.test(name)) return route.fulfill({ status: 400, body: 'bad name' });
      try {
        return route.fulfill({ status: 200, body: await readFile(join(modelDir, name)), contentType: 'application/octet-stream' });
      } catch {
        return route.fulfill({ status: 404, body: `${name} not in ${modelDir}` });
      }
    });
    const page = await context.newPage();
    page.on('console', (m) => log?.(`  [browser] ${m.text()}`));
    const t = c.train ? `&trainSteps=${c.train.steps}&trainBatch=${c.train.batch}&trainSeq=${c.train.seq}` : '';
    await page.goto(`${server.url}bench.html?prompt=${c.prompt}&gen=${c.gen}&runs=${c.runs}${c.ortWebgpu === false ? '' : '&ortWebgpu=1'}${c.driver === false ? '' : `&driver=${c.driver === 'tiny' ? 'tiny' : '1'}`}${t}`);
    await page.waitForFunction(() => (window as unknown as { __whittleBench?: unknown }).__whittleBench !== undefined, null, { timeout: timeoutMs });
    const r = await page.evaluate(() => (window as unknown as { __whittleBench: unknown }).__whittleBench) as BrowserBenchResult | { error: string };
    if ('error' in r) throw new Error(`browser bench page failed: ${r.error}`);
    return r;
  } finally {
    await close();
    await server.close();
  }
}
