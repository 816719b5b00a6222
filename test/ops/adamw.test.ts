// AdamW + global-norm clipping: ref sanity (first step is lr·sign(g) plus decay), GPU global_norm_sq
// vs ref (tiny, odd, large; deterministic; plain and subgroup forms), GPU adamw_step vs ref over 5 steps with clipping
// active, inactive and disabled; a NaN / Inf gradient (or an f32-overflowing norm) skips the step
// on the GPU and in the ref (params and moments unchanged).
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import * as ref from '../../src/ref/adamw.ts';
import * as op from '../../src/ops/adamw.ts';
import { assertClose, randn32, testGpu, TOL } from '../util.ts';

test('ref adamw first step = p(1−lr·wd) − lr·g/(|g|+eps)', () => {
  const n = 17, lr = 1e-2, wd = 0.1, eps = 1e-8;
  const p0 = Float64Array.from(randn32(n, 1)), g = Float64Array.from(randn32(n, 2));
  const p = p0.slice(), m = new Float64Array(n), v = new Float64Array(n);
  const ns = new Float64Array(1);
  ref.global_norm_sq(ns, g, n);
  ref.adamw_step(p, g, m, v, ns, n, lr, 0.9, 0.999, eps, wd, 1, 0);
  const want = Array.from(p0, (x, i) => x * (1 - lr * wd) - (lr * g[i]) / (Math.abs(g[i]) + eps));
  assertClose('adamw step 1', p, want, TOL.fd);
  // clipping scales g, which step 1 ignores up to eps; m carries the scale
  const p2 = p0.slice(), m2 = new Float64Array(n), v2 = new Float64Array(n);
  ref.adamw_step(p2, g, m2, v2, ns, n, lr, 0.9, 0.999, eps, wd, 1, 0.5 * Math.sqrt(ns[0]));
  assertClose('adamw clipped m', m2, Array.from(g, (x) => 0.1 * x * 0.5 * Math.sqrt(ns[0]) / (Math.sqrt(ns[0]) + 1e-6)), TOL.fd);
});

// both forms: 'plain' (workgroup trees) and 'auto' (subgroupAdd where the subgroup size is fixed)
for (const kernel of ['plain', 'auto'] as const) for (const n of [1, 1000, 300001, 2_500_003]) {
  test(`gpu global_norm_sq n=${n} kernel ${kernel}`, async () => {
    const gpu = await testGpu();
    const g = randn32(n, 10 + n % 97, 0.3);
    const want = new Float64Array(1);
    ref.global_norm_sq(want, g, n);
    const bG = gpu.f32(g, 't.g'), bOut = gpu.f32(1, 't.ns');
    const keep = op.normTuning.kernel;
    op.normTuning.kernel = kernel;
    try {
      await gpu.scoped('global_norm_sq', () => op.global_norm_sq(gpu, bOut, bG, n));
      const got = await gpu.readF32(bOut, 1);
      assertClose('normsq', got, want, TOL.f32sum);
      // deterministic: same bits on a second run
      await gpu.scoped('global_norm_sq', () => op.global_norm_sq(gpu, bOut, bG, n));
      const again = await gpu.readF32(bOut, 1);
      assert.equal(again[0], got[0], 'global_norm_sq is not deterministic');
    } finally {
      op.normTuning.kernel = keep;
      gpu.destroy(bG);
      gpu.destroy(bOut);
    }
  });
}

// n = 4099 runs adamw_step, n = 4100 (n % 4 == 0) its quad (V4) form
for (const n of [4099, 4100]) for (const [label, clipFrac] of [['clipping active', 0.3], ['clipping inactive', 1e3], ['clipping disabled', 0]] as const) {
  test(`gpu adamw_step vs ref, 5 steps, n=${n}, ${label}`, async () => {
    const gpu = await testGpu();
    const lr = 3e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
    const p = randn32(n, 20), m = new Float32Array(n), v = new Float32Array(n);
    const bP = gpu.f32(p, 't.p'), bM = gpu.f32(n, 't.m'), bV = gpu.f32(n, 't.v');
    const bG = gpu.f32(n, 't.g'), bNs = gpu.f32(1, 't.ns');
    const ns = new Float64Array(1);
    for (let t = 1; t <= 5; t++) {
      const g = randn32(n, 30 + t, 0.05 * t);
      ref.global_norm_sq(ns, g, n);
      // maxNorm relative to the norm of step 1 (≈ 0.05·sqrt(n/3)): later steps have larger norms
      const maxNorm = clipFrac === 0 ? 0 : clipFrac * 0.05 * Math.sqrt(n / 3);
      ref.adamw_step(p, g, m, v, ns, n, lr, b1, b2, eps, wd, t, maxNorm);
      gpu.write(bG, g);
      await gpu.scoped('adamw', () => {
        op.global_norm_sq(gpu, bNs, bG, n);
        op.adamw_step(gpu, bP, bG, bM, bV, bNs, n, lr, b1, b2, eps, wd, t, maxNorm);
      });
    }
    assertClose('adamw params', await gpu.readF32(bP, n), p);
    assertClose('adamw m', await gpu.readF32(bM, n), m);
    assertClose('adamw v', await gpu.readF32(bV, n), v);
    for (const b of [bP, bM, bV, bG, bNs]) gpu.destroy(b);
  });
}

for (const n of [1031, 1032]) test(`adamw_step skips the step when the gradient norm is not finite (gpu and ref), n=${n}`, async () => {
  const gpu = await testGpu();
  const lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
  const p0 = randn32(n, 40), g0 = randn32(n, 41, 0.1);
  const bP = gpu.f32(n, 't.p'), bM = gpu.f32(n, 't.m'), bV = gpu.f32(n, 't.v'), bG = gpu.f32(n, 't.g'), bNs = gpu.f32(1, 't.ns');
  // one ordinary step first, so the moments are non-zero
  gpu.write(bP, p0);
  gpu.write(bG, g0);
  await gpu.scoped('adamw', () => {
    op.global_norm_sq(gpu, bNs, bG, n);
    op.adamw_step(gpu, bP, bG, bM, bV, bNs, n, lr, b1, b2, eps, wd, 1, 1);
  });
  const [p1, m1, v1] = [await gpu.readF32(bP, n), await gpu.readF32(bM, n), await gpu.readF32(bV, n)];
  assert.ok(m1.some((x) => x !== 0));
  for (const [label, bad] of [['NaN', NaN], ['Inf', Infinity], ['-Inf', -Infinity], ['f32 overflow of Σ g²', 1e30]] as const) {
    for (const maxNorm of [1, 0]) {
      const g = g0.slice();
      g[517] = bad;
      gpu.write(bG, g);
      await gpu.scoped('adamw', () => {
        op.global_norm_sq(gpu, bNs, bG, n);
        op.adamw_step(gpu, bP, bG, bM, bV, bNs, n, lr, b1, b2, eps, wd, 2, maxNorm);
      });
      const ns = (await gpu.readF32(bNs, 1))[0];
      assert.ok(!Number.isFinite(ns), `${label}: normsq ${ns} is not finite`);
      assert.deepEqual(await gpu.readF32(bP, n), p1, `${label}, maxNorm ${maxNorm}: params unchanged`);
      assert.deepEqual(await gpu.readF32(bM, n), m1, `${label}, maxNorm ${maxNorm}: m unchanged`);
      assert.deepEqual(await gpu.readF32(bV, n), v1, `${label}, maxNorm ${maxNorm}: v unchanged`);
      if (Number.isFinite(bad)) continue; // float64 does not overflow: the ref takes that step
      const rp = Float64Array.from(p1), rm = Float64Array.from(m1), rv = Float64Array.from(v1), rns = new Float64Array(1);
      ref.global_norm_sq(rns, g, n);
      ref.adamw_step(rp, g, rm, rv, rns, n, lr, b1, b2, eps, wd, 2, maxNorm);
      assert.deepEqual([rp, rm, rv], [Float64Array.from(p1), Float64Array.from(m1), Float64Array.from(v1)], `${label}: ref unchanged`);
    }
  }
  // a finite gradient afterwards steps again
  gpu.write(bG, g0);
  await gpu.scoped('adamw', () => {
    op.global_norm_sq(gpu, bNs, bG, n);
    op.adamw_step(gpu, bP, bG, bM, bV, bNs, n, lr, b1, b2, eps, wd, 2, 1);
  });
  assert.notDeepEqual(await gpu.readF32(bP, n), p1, 'a finite step updates');
  for (const b of [bP, bM, bV, bG, bNs]) gpu.destroy(b);
});
