import { acquireGpu } from './src/gpu/device.ts';
import { attention_decode_forward, attentionDecodeTuning } from './src/ops/attention_decode.ts';
const gpu = await acquireGpu();
for (const [NH, NKV, HS] of [[8, 4, 8], [8, 4, 16], [32, 8, 64]]) {
const KVD = NKV * HS, maxT = 1024;
for (const wg of [32, 64, 128]) for (const t0 of [60, 500]) {
  const q = gpu.f32(new Float32Array(NH * HS).fill(0.1), 'q'), kc = gpu.f32(new Float32Array(maxT * KVD).fill(0.2), 'k'), vc = gpu.f32(new Float32Array(maxT * KVD).fill(0.3), 'v'), out = gpu.f32(NH * HS, 'o');
  attentionDecodeTuning.wg = wg;
  attention_decode_forward(gpu, out, q, kc, vc, 1, t0, NH, NKV, HS); await gpu.readF32(out);
  const n = 100, s = performance.now();
  for (let i = 0; i < n; i++) attention_decode_forward(gpu, out, q, kc, vc, 1, t0, NH, NKV, HS);
  await gpu.readF32(out);
  console.log(gpu.info.description.slice(0, 12), `NH ${NH} HS ${HS} wg ${wg} t0 ${t0}`, ((performance.now() - s) / n * 1000).toFixed(0), 'us');
}}
