import { acquireGpu } from './src/gpu/device.ts';
import { loadModel } from './src/model/load.ts';
import { nodeSource } from './src/model/source-node.ts';
import { InferenceModel, generateText } from './src/model/generate.ts';
const gpu = await acquireGpu();
console.log(gpu.info.description, gpu.info.features);
for (const p of ['../shared/models/stories260K/stories260K.gguf', '../shared/models/tinystories-656k']) {
  const m = await loadModel(await nodeSource(p));
  const inf = InferenceModel.create(gpu, m.config, m.weights, { maxSeq: 512 });
  const prompt = [1, 403, 407, 261, 378];
  await generateText(inf, prompt, { maxTokens: 20, greedy: true, eos: [] });
  for (const la of [0, 1, 2, 4]) {
    const r = await generateText(inf, prompt, { maxTokens: 200, greedy: true, eos: [], lookahead: la, reuseCache: false });
    console.log(p.split('/').pop(), 'gpu greedy lookahead', la, r.tokensPerSecond.toFixed(1), 'tok/s');
  }
  const r = await generateText(inf, prompt, { maxTokens: 200, greedy: true, eos: [], gpuGreedy: false, reuseCache: false });
  console.log('host greedy', r.tokensPerSecond.toFixed(1));
  const r2 = await generateText(inf, prompt, { maxTokens: 200, temperature: 0.8, topP: 0.9, seed: 1, eos: [], reuseCache: false });
  console.log('host sample', r2.tokensPerSecond.toFixed(1));
  if (gpu.startProfile()) {
    await inf.decode(5);
    await inf.decode(6);
    const prof = await gpu.stopProfile();
    const rows = [...prof].sort((a, b) => b[1].ms - a[1].ms);
    let tot = 0; for (const [, v] of rows) tot += v.ms;
    console.log('profile 2 steps total', tot.toFixed(2), 'ms', rows.map(([k, v]) => `${k} ${v.ms.toFixed(2)}/${v.count}`).join(', '));
  }
  inf.destroy();
}
