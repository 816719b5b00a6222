import { acquireGpu, uniforms } from './src/gpu/device.ts';
import { readFileSync } from 'node:fs';
const gpu = await acquireGpu();
const base = readFileSync('shaders/attention_decode.wgsl', 'utf8');
const variants: Record<string, string> = {
  full: base,
  noPV: base.replace('for (var i = g; i < cnt; i += GR) { a += pr[i] * vc[(s0 + i) * KVD + kvoff + d]; }', ''),
  noRed: base.replace('for (var i = 0u; i < cnt; i++) { mt = max(mt, sc[i]); }', 'mt = sc[0];').replace('for (var i = 0u; i < cnt; i++) { lt += pr[i]; }', 'lt = pr[0];'),
  noQK: base.replace('for (var e = 0u; e < HS; e++) { x += qs[e] * kc[kb + e]; }', 'x = qs[0] * kc[kb];'),
};
const NH = 32, NKV = 8, HS = 64, KVD = NKV * HS, maxT = 1024, t0 = 500, WG = 64;
for (const [name, code] of Object.entries(variants)) {
  const q = gpu.f32(new Float32Array(NH * HS).fill(0.1), 'q'), kc = gpu.f32(new Float32Array(maxT * KVD).fill(0.2), 'k'), vc = gpu.f32(new Float32Array(maxT * KVD).fill(0.3), 'v'), out = gpu.f32(NH * HS, 'o');
  const p = gpu.pipeline('ad_' + name, code, 'attention_decode_forward', { HS, WG });
  const u = uniforms([[1, 'u32'], [t0, 'u32'], [NH, 'u32'], [NKV, 'u32'], [0.125, 'f32']]);
  gpu.dispatch(p, u, [out, q, kc, vc], [NH, 1]); await gpu.readF32(out);
  const n = 30, s = performance.now();
  for (let i = 0; i < n; i++) gpu.dispatch(p, u, [out, q, kc, vc], [NH, 1]);
  await gpu.readF32(out);
  console.log(name, ((performance.now() - s) / n * 1000).toFixed(0), 'us');
}
