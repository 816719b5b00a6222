// Tests for rope: HF/llama2.c pairing conventions, rope_inv_freq (default and Llama-3 scaling),
// reference backward vs finite differences, GPU vs reference on odd shapes and large positions.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import * as ref from '../../src/ref/rope.ts';
import * as op from '../../src/ops/rope.ts';
import type { RopeStyle } from '../../src/model/config.ts';
import { assertClose, finiteDiff, project, randn32, rng, testGpu, to64, TOL } from '../util.ts';

const STYLES: RopeStyle[] = ['half', 'pairs'];
const LLAMA32 = { type: 'llama3' as const, factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };

test('rope_inv_freq default = 1/theta^(2i/HS)', () => {
  const f = ref.rope_inv_freq(8, 10000, null);
  assertClose('inv_freq', f, [1, 0.1, 0.01, 0.001], { atol: 0, rtol: 1e-7 });
});

test('rope_inv_freq Llama-3 scaling (Llama-3.2: theta 5e5, factor 32, low 1, high 4, orig 8192, HS 64)', () => {
  const f = ref.rope_inv_freq(64, 500000, LLAMA32);
  assert.equal(f.length, 32);
  // Wavelength bounds: high-freq 8192/4 = 2048, low-freq 8192/1 = 8192; wavelen_i = 2π/inv_i, inv_i = 500000^(−i/32).
  // i = 0:  inv 1, wavelen 2π < 2048 → kept: 1.
  // i = 14: inv 500000^(−14/32) = 3.2114459947525e-3, wavelen 1956.5 < 2048 → kept.
  // i = 16: inv 1/sqrt(500000) = 1.4142135623731e-3, wavelen 2π·sqrt(5e5) = 4442.8829 (medium):
  //         smooth = (8192/4442.8829 − 1)/(4 − 1) = 0.28128260516325
  //         inv' = (1 − smooth)·inv/32 + smooth·inv = 4.2955679655937e-4
  // i = 18: inv 500000^(−18/32) = 6.2277242191460e-4, wavelen 10089.06 > 8192 → inv/32 = 1.9461638184831e-5.
  // i = 31: inv 500000^(−31/32) = 3.0138581521392e-6 → /32 = 9.4183067254349e-8.
  const expect: Record<number, number> = {
    0: 1,
    14: 3.2114459947525e-3,
    16: 4.2955679655937e-4,
    18: 1.9461638184831e-5,
    31: 9.4183067254349e-8,
  };
  for (const [i, v] of Object.entries(expect)) assertClose(`llama3 inv_freq[${i}]`, [f[+i]], [v], { atol: 0, rtol: 1e-6 });
  // the medium band interpolates monotonically between kept and /32
  for (let i = 1; i < 32; i++) assert.ok(f[i] < f[i - 1], `inv_freq decreasing at ${i}`);
});

test('ref rope matches the HF rotate-half and llama2.c pair formulas', () => {
  const HS = 6, half = 3, x = [0.3, -1.2, 0.7, 2.0, 0.5, -0.4], invFreq = new Float32Array([1, 0.25, 0.03]), p = 5;
  const ang = [...invFreq].map((f) => Math.fround(p * f));
  // HF: x·cat(cos,cos) + rotate_half(x)·cat(sin,sin), rotate_half(x) = cat(−x2, x1)
  const rh = [...x.slice(half).map((v) => -v), ...x.slice(0, half)];
  const hf = x.map((v, j) => v * Math.cos(ang[j % half]) + rh[j] * Math.sin(ang[j % half]));
  const a = Float64Array.from(x);
  ref.rope_forward(a, [p], invFreq, 1, 1, HS, 'half');
  assertClose('rope half vs HF', a, hf, TOL.fd);
  // llama2.c: (v0, v1) at (2i, 2i+1) → (v0·cos − v1·sin, v0·sin + v1·cos)
  const l2 = x.slice();
  for (let i = 0; i < half; i++) {
    const [v0, v1] = [x[2 * i], x[2 * i + 1]], c = Math.cos(ang[i]), s = Math.sin(ang[i]);
    l2[2 * i] = v0 * c - v1 * s;
    l2[2 * i + 1] = v0 * s + v1 * c;
  }
  const b = Float64Array.from(x);
  ref.rope_forward(b, [p], invFreq, 1, 1, HS, 'pairs');
  assertClose('rope pairs vs llama2.c', b, l2, TOL.fd);
});

test('ref rope_backward matches finite differences (f64) and inverts forward', () => {
  const N = 3, H = 2, HS = 8, n = N * H * HS;
  const pos = [0, 5, 17], invFreq = ref.rope_inv_freq(HS, 10000, null);
  for (const style of STYLES) {
    const x = to64(randn32(n, 1, 2)), w = to64(randn32(n, 2));
    const loss = () => { const y = x.slice(); ref.rope_forward(y, pos, invFreq, N, H, HS, style); return project(y, w); };
    const dx = w.slice();
    ref.rope_backward(dx, pos, invFreq, N, H, HS, style);
    const [idx, num] = finiteDiff(loss, x);
    assertClose(`rope fd ${style}`, idx.map((i) => dx[i]), num, TOL.fd);
    const y = x.slice();
    ref.rope_forward(y, pos, invFreq, N, H, HS, style);
    ref.rope_backward(y, pos, invFreq, N, H, HS, style);
    assertClose(`rope inverse ${style}`, y, x, TOL.fd);
  }
});

// [N, H, HS, max position, scaled]
const SHAPES: [number, number, number, number, boolean][] = [
  [1, 1, 2, 10, false],
  [7, 3, 6, 100, false],
  [33, 2, 64, 8192, true],
  [5, 4, 128, 131072, true],
  [4, 5, 10, 300, false],
  [3, 2, 16, 50, false], // HS/2 % 4 == 0 (as 64, 128): the quad entry points
];
for (const [N, H, HS, maxPos, scaled] of SHAPES) {
  for (const style of STYLES) {
    test(`gpu rope forward+backward N=${N} H=${H} HS=${HS} pos<${maxPos} ${style}`, async () => {
      const gpu = await testGpu();
      const n = N * H * HS, seed = N * 100 + HS;
      const r = rng(seed);
      const pos = Uint32Array.from({ length: N }, (_, i) => (i === N - 1 ? maxPos - 1 : Math.floor(r() * maxPos)));
      const invFreq = ref.rope_inv_freq(HS, scaled ? 500000 : 10000, scaled ? LLAMA32 : null);
      const x = randn32(n, seed + 1, 2), dx = randn32(n, seed + 2);
      const y = x.slice(); ref.rope_forward(y, pos, invFreq, N, H, HS, style);
      const dy = dx.slice(); ref.rope_backward(dy, pos, invFreq, N, H, HS, style);
      const bX = gpu.f32(x, 't.x'), bD = gpu.f32(dx, 't.dx'), bP = gpu.u32(pos, 't.pos'), bF = gpu.f32(invFreq, 't.freq');
      await gpu.scoped('rope', () => {
        op.rope_forward(gpu, bX, bP, bF, N, H, HS, style);
        op.rope_backward(gpu, bD, bP, bF, N, H, HS, style);
      });
      assertClose('rope forward', await gpu.readF32(bX, n), y);
      assertClose('rope backward', await gpu.readF32(bD, n), dy);
      for (const b of [bX, bD, bP, bF]) gpu.destroy(b);
    });
  }
}

// rope_qkv_forward (inference): rows [q | k | v] split into q (rotated), the k cache rows t0..
// (rotated) and the v cache rows t0.. (copied); cache rows outside t0..t0+N−1 untouched.
for (const [N, NH, NKV, HS, t0] of [[1, 8, 4, 16, 191], [5, 3, 1, 10, 0], [3, 9, 3, 64, 70], [2, 4, 4, 2, 5]] as const) {
  for (const style of STYLES) {
    test(`gpu rope_qkv forward N=${N} NH=${NH} NKV=${NKV} HS=${HS} t0=${t0} ${style} vs ref`, async () => {
      const gpu = await testGpu();
      const QD = NH * HS, KVD = NKV * HS, W = QD + 2 * KVD, T = t0 + N + 3, seed = 7 * N + HS + t0;
      const pos = Uint32Array.from({ length: N }, (_, i) => t0 + i);
      const invFreq = ref.rope_inv_freq(HS, 10000, null);
      const qkv = randn32(N * W, seed, 2), kc0 = randn32(T * KVD, seed + 1), vc0 = randn32(T * KVD, seed + 2);
      const q = new Float32Array(N * QD), kc = kc0.slice(), vc = vc0.slice();
      ref.rope_qkv_forward(q, kc, vc, qkv, pos, invFreq, N, t0, NH, NKV, HS, style);
      const bQ = gpu.f32(N * QD, 't.q'), bK = gpu.f32(kc0, 't.kc'), bV = gpu.f32(vc0, 't.vc'), bX = gpu.f32(qkv, 't.qkv');
      const bP = gpu.u32(pos, 't.pos'), bF = gpu.f32(invFreq, 't.freq');
      await gpu.scoped('rope_qkv', () => op.rope_qkv_forward(gpu, bQ, bK, bV, bX, bP, bF, N, t0, NH, NKV, HS, style));
      assertClose('rope_qkv q', await gpu.readF32(bQ, N * QD), q);
      assertClose('rope_qkv kc', await gpu.readF32(bK, T * KVD), kc);
      assertClose('rope_qkv vc', await gpu.readF32(bV, T * KVD), vc, { atol: 0, rtol: 0 });
      for (const b of [bQ, bK, bV, bX, bP, bF]) gpu.destroy(b);
    });
  }
}

test('ref rope_qkv_forward == split + rope_forward on q and k (f64)', () => {
  const N = 3, NH = 4, NKV = 2, HS = 8, t0 = 2, QD = NH * HS, KVD = NKV * HS, W = QD + 2 * KVD;
  const qkv = to64(randn32(N * W, 3)), pos = [2, 3, 4], invFreq = ref.rope_inv_freq(HS, 10000, null);
  const q = new Float64Array(N * QD), kc = new Float64Array((t0 + N) * KVD), vc = new Float64Array((t0 + N) * KVD);
  ref.rope_qkv_forward(q, kc, vc, qkv, pos, invFreq, N, t0, NH, NKV, HS, 'half');
  const wq = new Float64Array(N * QD), wk = new Float64Array(N * KVD);
  for (let n = 0; n < N; n++) {
    wq.set(qkv.subarray(n * W, n * W + QD), n * QD);
    wk.set(qkv.subarray(n * W + QD, n * W + QD + KVD), n * KVD);
    assertClose('v copied', vc.subarray((t0 + n) * KVD, (t0 + n + 1) * KVD), qkv.subarray(n * W + QD + KVD, (n + 1) * W), { atol: 0, rtol: 0 });
  }
  ref.rope_forward(wq, pos, invFreq, N, NH, HS, 'half');
  ref.rope_forward(wk, pos, invFreq, N, NKV, HS, 'half');
  assertClose('q', q, wq, { atol: 0, rtol: 0 });
  assertClose('k rows t0..', kc.subarray(t0 * KVD), wk, { atol: 0, rtol: 0 });
  assert.ok(kc.subarray(0, t0 * KVD).every((x) => x === 0), 'rows before t0 untouched');
});
