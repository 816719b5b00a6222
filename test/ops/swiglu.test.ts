import { test } from '../harness.ts';
import * as ref from '../../src/ref/swiglu.ts';
import * as op from '../../src/ops/swiglu.ts';
import { assertClose, finiteDiff, project, randn32, testGpu, to64, TOL } from '../util.ts';

test('ref swiglu_backward matches finite differences (f64)', () => {
  const n = 37;
  const gate = to64(randn32(n, 1, 3)), up = to64(randn32(n, 2)), w = to64(randn32(n, 3));
  const loss = () => { const o = new Float64Array(n); ref.swiglu_forward(o, gate, up, n); return project(o, w); };
  const dgate = new Float64Array(n), dup = new Float64Array(n);
  ref.swiglu_backward(dgate, dup, w, gate, up, n);
  for (const [x, g] of [[gate, dgate], [up, dup]] as const) {
    const [idx, num] = finiteDiff(loss, x);
    assertClose('swiglu fd', idx.map((i) => g[i]), num, TOL.fd);
  }
});

// n % 4 == 0 runs the quad (V4) form (1000, 4100), the others the scalar one
for (const n of [1, 255, 1000, 4099, 4100]) {
  test(`gpu swiglu forward+backward n=${n}`, async () => {
    const gpu = await testGpu();
    const gate = randn32(n, 4, 4), up = randn32(n, 5), dout = randn32(n, 6);
    const dg0 = randn32(n, 7), du0 = randn32(n, 8); // non-zero: backward must add
    const out = new Float32Array(n); ref.swiglu_forward(out, gate, up, n);
    const dg = dg0.slice(), du = du0.slice(); ref.swiglu_backward(dg, du, dout, gate, up, n);
    const bGate = gpu.f32(gate, 't.gate'), bUp = gpu.f32(up, 't.up'), bOut = gpu.f32(n, 't.out');
    const bDout = gpu.f32(dout, 't.dout'), bDg = gpu.f32(dg0, 't.dg'), bDu = gpu.f32(du0, 't.du');
    await gpu.scoped('swiglu', () => {
      op.swiglu_forward(gpu, bOut, bGate, bUp, n);
      op.swiglu_backward(gpu, bDg, bDu, bDout, bGate, bUp, n);
    });
    assertClose('swiglu out', await gpu.readF32(bOut, n), out);
    assertClose('swiglu dgate', await gpu.readF32(bDg, n), dg);
    assertClose('swiglu dup', await gpu.readF32(bDu, n), du);
  });
}

// swiglu_rows_forward (inference): gu (N, 2F) rows [gate | up]; F % 4 == 0 runs the quad form
for (const [N, F] of [[1, 384], [3, 5], [4, 1536], [2, 6]] as const) {
  test(`gpu swiglu_rows forward N=${N} F=${F} vs ref (== swiglu_forward on the split rows)`, async () => {
    const gpu = await testGpu();
    const gu = randn32(N * 2 * F, N + F, 3);
    const want = new Float32Array(N * F); ref.swiglu_rows_forward(want, gu, N, F);
    const gate = new Float32Array(N * F), up = new Float32Array(N * F);
    for (let r = 0; r < N; r++) { gate.set(gu.subarray(2 * r * F, (2 * r + 1) * F), r * F); up.set(gu.subarray((2 * r + 1) * F, (2 * r + 2) * F), r * F); }
    const split = new Float32Array(N * F); ref.swiglu_forward(split, gate, up, N * F);
    assertClose('ref rows == ref split', want, split, { atol: 0, rtol: 0 });
    const bGu = gpu.f32(gu, 't.gu'), bOut = gpu.f32(N * F, 't.out');
    await gpu.scoped('swiglu_rows', () => op.swiglu_rows_forward(gpu, bOut, bGu, N, F));
    assertClose('swiglu_rows', await gpu.readF32(bOut, N * F), want);
    for (const b of [bGu, bOut]) gpu.destroy(b);
  });
}
