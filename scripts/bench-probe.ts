import { acquireGpu } from '../src/gpu/device.ts';
import { LlamaModel } from '../src/model/llama.ts';
import { SHAPES, randomWeights, randomBatch, BENCH_LORA, BENCH_ADAMW } from '../src/bench/shapes.ts';
import { loadModel } from '../src/model/load.ts';
import { nodeSource } from '../src/model/source-node.ts';
const gpu = await acquireGpu();
console.log(gpu.info.description, gpu.info.architecture, gpu.info.limits.maxBufferSize, gpu.info.limits.maxStorageBufferBindingSize);
const which = process.argv[2] ?? 'ts';
const B = +(process.argv[3] ?? 2), T = +(process.argv[4] ?? 64), quant = (process.argv[5] ?? 'f32') as 'f32';
let cfg, w;
if (which === 'ts') { const m = await loadModel(await nodeSource('../shared/models/tinystories-656k')); cfg = m.config; w = m.weights; }
else { cfg = SHAPES['smollm2-135m']; let t = performance.now(); w = randomWeights(cfg); console.log('weights', performance.now() - t); }
let t = performance.now();
const model = new LlamaModel(gpu, cfg, w, { quant, lora: BENCH_LORA, batch: B, seq: T });
console.log('build ms', performance.now() - t, 'alloc', gpu.totalAllocated / 2 ** 20, model.memoryReport().total / 2 ** 20);
for (let i = 1; i <= 4; i++) {
  t = performance.now();
  const r = await model.trainStep(randomBatch(cfg.vocab, B, T, i), { ...BENCH_ADAMW, t: i });
  const ms = performance.now() - t;
  console.log(i, ms.toFixed(0), 'ms', (B * T / ms * 1000).toFixed(0), 'tok/s', r.loss.toFixed(3));
}
