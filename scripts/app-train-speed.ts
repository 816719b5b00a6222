// Training speed inside the app, as a user gets it: builds and serves the app, opens it in Debian's
// Chromium (WebGPU as the e2e tests get it: SwiftShader here), downloads tinystories-656k from the
// local Hub-layout server, saves a small dataset and starts a LoRA run from the Train page
// (e2e/flows.ts), then prints the wall time per step between steps 3 and 15 (a step is every micro-batch the auto
// hyperparameters accumulate: 4 of batch 2 × 64 here).
// Run: node --import ./scripts/register.mjs scripts/app-train-speed.ts   (env B, T: batch, seq; default 2, 64)
import { downloadTinyModel, openApp, saveDataset, startRun, tinyDataset } from '../e2e/flows.ts';

const B = Number(process.env.B ?? 2), T = Number(process.env.T ?? 64);
const s = await openApp('app-speed');
const { page } = s;
try {
  await downloadTinyModel(s);
  await saveDataset(s, 'greetings', tinyDataset(200).join('\n'));
  await startRun(s, 'speed', { maxSteps: 20, batchSize: B, seqLen: T, learningRate: 0.001, validationFraction: 0.05, evalInterval: 100, checkpointInterval: 100 });
  const step = () => page.evaluate(() => Number(document.querySelector<HTMLElement>('#job-progress-text')?.dataset.step ?? 0));
  while ((await step()) < 3) await page.waitForTimeout(20);
  const t0 = Date.now(), s0 = await step();
  while ((await step()) < 15) await page.waitForTimeout(20);
  const s1 = await step();
  console.log(`batch ${B} × ${T} tokens: ${((Date.now() - t0) / (s1 - s0)).toFixed(0)} ms per step in the app (steps ${s0} → ${s1}, ${await page.evaluate(() => document.querySelector('#gpu-badge')?.textContent ?? '')})`);
} finally {
  await s.close();
}
