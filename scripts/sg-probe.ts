import { acquireGpu, uniforms } from '../src/gpu/device.ts';
import { linear_forward, uploadWeight } from '../src/ops/linear.ts';
import { quantize } from '../src/model/quant.ts';
const gpu = await acquireGpu();
const ai: any = (gpu.keepAlive[1] as any).info;
console.log('subgroups', gpu.info.features.subgroups, 'sizes', ai?.subgroupMinSize, ai?.subgroupMaxSize);
const N = +(process.argv[2] ?? 512), K = +(process.argv[3] ?? 576), O = +(process.argv[4] ?? 1536);
const X = Float32Array.from({ length: N * K }, (_, i) => Math.sin(i * 0.37));
const W = Float32Array.from({ length: O * K }, (_, i) => Math.cos(i * 0.11));
const ref = new Float32Array(N * O);
for (let n = 0; n < N; n += 37) for (let o = 0; o < O; o++) { let s = 0; for (let k = 0; k < K; k++) s += X[n * K + k] * W[o * K + k]; ref[n * O + o] = s; }
const bx = gpu.buffer(N * K * 4, 'x', X), bw = gpu.buffer(O * K * 4, 'w', W), bo = gpu.buffer(N * O * 4, 'o');
async function check() {
  const got = await gpu.readF32(bo, N * O);
  let err = 0;
  for (let n = 0; n < N; n += 37) for (let o = 0; o < O; o++) err = Math.max(err, Math.abs(got[n * O + o] - ref[n * O + o]));
  return err;
}
async function time(name: string, run: () => void) {
  new Float32Array(0);
  run(); gpu.submit(); await gpu.device.queue.onSubmittedWorkDone();
  const err = await check();
  const t: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) run();
    gpu.submit(); await gpu.device.queue.onSubmittedWorkDone();
    t.push((performance.now() - t0) / 3);
  }
  t.sort((a, b) => a - b);
  console.log(`${name.padEnd(28)} ${(2 * N * K * O / t[2] / 1e6).toFixed(2)} GFLOP/s  (${t[2].toFixed(2)} ms) err ${err.toExponential(1)}`);
}
const lw = uploadWeight(gpu, quantize(W, O, K, 'f32'), 'w');
await time('current linear_forward', () => linear_forward(gpu, bo, bx, lw, null, N, K, O));
const rep = (n: number, f: (i: number) => string, sep = '\n') => Array.from({ length: n }, (_, i) => f(i)).join(sep);
const u = uniforms([[N, 'u32'], [K, 'u32'], [O, 'u32'], [0, 'u32']]);
for (const [RG, TN] of [[2, 4], [2, 6], [2, 8], [3, 4], [1, 8], [4, 4]]) {
  const code = `enable subgroups;
struct P { N: u32, K: u32, O: u32, _p: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<vec4f>;
@group(0) @binding(3) var<storage, read> w: array<vec4f>;
@compute @workgroup_size(8) fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) j: u32) {
  let o0 = wg.x * ${8 * TN}u;
  let n0 = wg.y * ${8 * RG}u;
  let K4 = p.K / 4u;
  ${rep(RG, (g) => `let xr${g} = min(n0 + j + ${8 * g}u, p.N - 1u) * K4;`)}
  ${rep(TN, (c) => `let wr${c} = min(o0 + j + ${8 * c}u, p.O - 1u) * K4;`)}
  ${rep(8 * RG * TN, (t) => `var a${t} = 0.0;`, ' ')}
  for (var k = 0u; k < K4; k++) {
    ${rep(RG, (g) => `let xq${g} = x[xr${g} + k];`)}
    ${rep(TN, (c) => `let wq${c} = w[wr${c} + k];`)}
    ${rep(RG, (g) => rep(8, (r) => `{ let b = subgroupBroadcast(xq${g}, ${r}u); ${rep(TN, (c) => `a${(g * 8 + r) * TN + c} += dot(b, wq${c});`, ' ')} }`))}
  }
  ${rep(RG * 8, (i) => `{ let n = n0 + ${i}u; if (n < p.N) { ${rep(TN, (c) => `{ let o = o0 + j + ${8 * c}u; if (o < p.O) { out[n * p.O + o] = a${i * TN + c}; } }`, ' ')} } }`)}
}`;
  const pl = gpu.pipeline(`SG${RG}x${TN}`, code, 'main');
  await time(`SG rows ${8 * RG} x cols/lane ${TN}`, () => gpu.dispatch(pl, u, [bo, bx, bw], [Math.ceil(O / (8 * TN)), Math.ceil(N / (8 * RG))]));
}
process.exit(0);
