import { acquireGpu } from '../src/gpu/device.ts';
import { benchMatmul, matmulSizes } from '../src/bench/matmul.ts';
const gpu = await acquireGpu();
const r = await benchMatmul(gpu, matmulSizes(false, false), { log: console.log });
console.log(JSON.stringify(r.peakF32), JSON.stringify(r.byFormat));
