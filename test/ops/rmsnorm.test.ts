// Tests for rmsnorm: reference backward vs finite differences, GPU vs reference on odd shapes.
import { test } from '../harness.ts';
import * as ref from '../../src/ref/rmsnorm.ts';
import * as op from '../../src/ops/rmsnorm.ts';
import { assertClose, finiteDiff, project, randn32, testGpu, to64, TOL } from '../util.ts';

test('ref rmsnorm_backward matches finite differences (f64)', () => {
  for (const [N, C] of [[3, 5], [2, 16]]) {
    const eps = 1e-5;
    const inp = to64(randn32(N * C, 1, 2)), w = to64(randn32(C, 2, 1.5)), proj = to64(randn32(N * C, 3));
    const loss = () => {
      const o = new Float64Array(N * C), r = new Float64Array(N);
      ref.rmsnorm_forward(o, r, inp, w, N, C, eps);
      return project(o, proj);
    };
    const out = new Float64Array(N * C), rstd = new Float64Array(N);
    ref.rmsnorm_forward(out, rstd, inp, w, N, C, eps);
    const dinp = new Float64Array(N * C);
    ref.rmsnorm_backward(dinp, proj, inp, w, rstd, N, C);
    const [idx, num] = finiteDiff(loss, inp);
    assertClose(`rmsnorm fd N=${N} C=${C}`, idx.map((i) => dinp[i]), num, TOL.fd);
  }
});

// both forms: 'plain' (workgroup tree reduction) and 'auto' (subgroupAdd where subgroups have one fixed size)
// C % 4 == 0 (64, 300, 576) runs the quad (V4) forms
for (const kernel of ['plain', 'auto'] as const) for (const [N, C] of [[1, 5], [7, 64], [33, 97], [5, 300], [3, 2053], [9, 576]] as const) {
  test(`gpu rmsnorm forward+backward N=${N} C=${C} kernel ${kernel}`, async () => {
    const gpu = await testGpu();
    const keep = op.rmsnormTuning.kernel;
    op.rmsnormTuning.kernel = kernel;
    const eps = 1e-5, seed = N * 1000 + C;
    const inp = randn32(N * C, seed, 3), w = randn32(C, seed + 1, 2), dout = randn32(N * C, seed + 2);
    const d0 = randn32(N * C, seed + 3); // non-zero: backward must add
    const out = new Float32Array(N * C), rstd = new Float32Array(N);
    ref.rmsnorm_forward(out, rstd, inp, w, N, C, eps);
    const dinp = d0.slice();
    ref.rmsnorm_backward(dinp, dout, inp, w, rstd, N, C);
    const bInp = gpu.f32(inp, 't.inp'), bW = gpu.f32(w, 't.w'), bOut = gpu.f32(N * C, 't.out'), bR = gpu.f32(N, 't.rstd');
    const bDout = gpu.f32(dout, 't.dout'), bD = gpu.f32(d0, 't.dinp');
    try {
      await gpu.scoped('rmsnorm', () => {
        op.rmsnorm_forward(gpu, bOut, bR, bInp, bW, N, C, eps);
        op.rmsnorm_backward(gpu, bD, bDout, bInp, bW, bR, N, C);
      });
    } finally {
      op.rmsnormTuning.kernel = keep;
    }
    assertClose('rmsnorm rstd', await gpu.readF32(bR, N), rstd);
    assertClose('rmsnorm out', await gpu.readF32(bOut, N * C), out);
    // dinp subtracts a row reduction (Σ dout·w·inp) from the direct term: reduction tolerance
    assertClose('rmsnorm dinp', await gpu.readF32(bD, N * C), dinp, TOL.f32sum);
    for (const b of [bInp, bW, bOut, bR, bDout, bD]) gpu.destroy(b);
  });
}
