// argmax (greedy decoding on the GPU): GPU vs reference, exact — ties to the lowest index, NaN never
// wins, all-NaN rows give 0, rows longer than the workgroup and many rows; the plain (workgroup
// tree) and subgroup forms.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import * as ref from '../../src/ref/argmax.ts';
import * as op from '../../src/ops/argmax.ts';
import { randn32, testGpu } from '../util.ts';
import { isSoftwareAdapter } from '../../src/gpu/device.ts';

test('ref argmax: ties, NaN, -Infinity', () => {
  const out = new Uint32Array(4);
  ref.argmax_forward(out, [1, 3, 3, 2, NaN, -Infinity, NaN, -Infinity, NaN, NaN, NaN, NaN, 0, 5, NaN, 5], 4, 4);
  assert.deepEqual([...out], [1, 1, 0, 1]);
});

// both forms: 'plain' (workgroup tree) and 'auto' (subgroupMax/Min where subgroups have one fixed size),
// each in one pass and split (argmax_partial + argmax_final: forced 'on' for rows of ≥ 2 chunks,
// 'auto' from SPLIT_MIN_V on a real GPU — V 32001 and 49152 here — with the tie and the NaN / −∞ rows across chunks)
for (const kernel of ['plain', 'auto'] as const) for (const split of ['off', 'auto', 'on'] as const) for (const [N, V] of [[1, 1], [1, 5], [3, 256], [2, 1000], [5, 32001], [70, 300], [3, 49152], [1, 9000]]) {
  test(`gpu argmax N=${N} V=${V} kernel ${kernel} split ${split}`, async () => {
    const gpu = await testGpu();
    const keep = { ...op.argmaxTuning };
    const x = randn32(N * V, N + V);
    if (V > 10) {
      // row 0: a tie between two far-apart maxima; row 1 (if any): NaN everywhere but one value
      x[3] = x[V - 2] = 7;
      if (N > 1) { x.fill(NaN, V, 2 * V); x[V + V - 1] = -1; }
      // row 2 (if any): −∞ everywhere but NaNs: the first −∞ wins
      if (N > 2) { x.fill(-Infinity, 2 * V, 3 * V); x[2 * V] = NaN; }
    }
    const want = new Uint32Array(N);
    ref.argmax_forward(want, x, N, V);
    const out = gpu.buffer(4 * N, 't.out');
    Object.assign(op.argmaxTuning, { kernel, split });
    try {
      await gpu.scoped('argmax', () => op.argmax_forward(gpu, out, gpu.f32(x, 't.x'), N, V));
    } finally {
      Object.assign(op.argmaxTuning, keep);
    }
    assert.deepEqual([...(await gpu.readU32(out, N))], [...want]);
  });
}

test('gpu argmax: the split form runs from SPLIT_MIN_V on a real GPU (argmax_partial, then argmax_final), one pass below and on CPU drivers', async () => {
  const gpu = await testGpu();
  const hw = !isSoftwareAdapter(gpu);
  const run = async (V: number) => {
    const x = gpu.f32(randn32(V, 3), 't.x'), out = gpu.buffer(4, 't.out');
    try {
      if (!gpu.startProfile()) return null;
      op.argmax_forward(gpu, out, x, 1, V);
      return [...(await gpu.stopProfile()).keys()].map((k) => k.split('.')[1]);
    } finally {
      gpu.destroy(x);
      gpu.destroy(out);
    }
  };
  const big = await run(op.SPLIT_MIN_V), small = await run(2048);
  if (big) assert.deepEqual(big, hw ? ['argmax_partial', 'argmax_final'] : ['argmax_forward']);
  if (small) assert.deepEqual(small, ['argmax_forward']);
});
