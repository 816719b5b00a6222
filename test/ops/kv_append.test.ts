// kv_append: a chunk's k, v rows land at cache rows t0 .. t0+NQ−1 of both caches (bit-exact), and
// nothing else in the caches changes.
import { test } from '../harness.ts';
import * as ref from '../../src/ref/kv_append.ts';
import * as op from '../../src/ops/kv_append.ts';
import { assertClose, randn32, testGpu } from '../util.ts';

for (const [NQ, t0, KVD, maxT] of [[1, 0, 4, 3], [1, 7, 32, 8], [5, 3, 64, 20], [300, 100, 24, 400]]) {
  test(`gpu kv_append NQ=${NQ} t0=${t0} KVD=${KVD}`, async () => {
    const gpu = await testGpu();
    const k = randn32(NQ * KVD, 1), v = randn32(NQ * KVD, 2);
    const kc = randn32(maxT * KVD, 3), vc = randn32(maxT * KVD, 4);
    const bk = gpu.f32(kc, 't.kc'), bv = gpu.f32(vc, 't.vc');
    ref.kv_append_forward(kc, vc, k, v, NQ, t0, KVD);
    await gpu.scoped('kv_append', () => op.kv_append_forward(gpu, bk, bv, gpu.f32(k, 't.k'), gpu.f32(v, 't.v'), NQ, t0, KVD));
    assertClose('kc', await gpu.readF32(bk), kc, { atol: 0, rtol: 0 });
    assertClose('vc', await gpu.readF32(bv), vc, { atol: 0, rtol: 0 });
  });
}
