import { test } from '../harness.ts';
import * as ref from '../../src/ref/residual.ts';
import * as op from '../../src/ops/residual.ts';
import { assertClose, randn32, testGpu } from '../util.ts';

// n % 4 == 0 runs the quad (V4) form (300, 70004)
for (const n of [1, 300, 70001, 70004]) {
  test(`gpu residual_forward n=${n}`, async () => {
    const gpu = await testGpu();
    const a = randn32(n, 1), b = randn32(n, 2), want = new Float32Array(n);
    ref.residual_forward(want, a, b, n);
    const out = gpu.f32(n, 't.out');
    await gpu.scoped('residual', () => op.residual_forward(gpu, out, gpu.f32(a, 't.a'), gpu.f32(b, 't.b'), n));
    assertClose('residual', await gpu.readF32(out, n), want, { atol: 0, rtol: 0 });
  });
}
