// Gpu waits (src/gpu/device.ts settle): relaxed reads and done() return the same data as plain ones,
// several in flight together with a plain read included; the pump that throttles Dawn's polling runs
// only while relaxed waits are pending (in Node) and stops after the last one; with relaxedWait off
// it never starts. (Its speed effect is a benchmark matter: npm run bench, not tested here.)
// acquireGpu's driverThreads (llvmpipe's LP_NUM_THREADS for one device): recorded, env restored,
// the device computes; bad values refused.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { testGpu } from '../util.ts';
import { acquireGpu, isSoftwareAdapter } from '../../src/gpu/device.ts';
import { swiglu_forward } from '../../src/ops/swiglu.ts';
import * as ref from '../../src/ref/swiglu.ts';
import { randn32 } from '../util.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('relaxed and plain reads agree; the pump runs only while relaxed waits are pending', async () => {
  const gpu = await testGpu();
  const n = 4099;
  const g = randn32(n, 1), u = randn32(n, 2), want = new Float32Array(n);
  ref.swiglu_forward(want, g, u, n);
  const bg = gpu.f32(g, 't.g'), bu = gpu.f32(u, 't.u'), outs = [0, 1, 2].map((i) => gpu.f32(n, `t.out${i}`));
  try {
    // on in Node on a CPU driver (the only adapters here); off on a real GPU (isSoftwareAdapter)
    assert.equal(gpu.relaxedWait, gpu.info.host === 'node' && isSoftwareAdapter(gpu));
    const reads: Promise<Float32Array>[] = [];
    await gpu.scoped('wait', () => {
      for (let i = 0; i < 3; i++) {
        for (let r = 0; r < 20; r++) swiglu_forward(gpu, outs[i], bg, bu, n); // some work to wait for
        reads.push(gpu.readF32(outs[i], n, { relaxed: i !== 1 })); // read 1 is a plain one
      }
      if (gpu.relaxedWait) assert.deepEqual(gpu.relaxedState, { pending: 2, pumping: true });
    });
    for (const r of await Promise.all(reads)) assert.deepEqual([...r], [...(await gpu.readF32(outs[0], n))]);
    assert.ok((await reads[0]).every((x, i) => Math.abs(x - want[i]) <= 1e-5 * (1 + Math.abs(want[i]))), 'swiglu values');
    assert.equal(gpu.relaxedState.pending, 0);
    await sleep(20); // the pump notices at its next turn (≤ ~1 ms)
    assert.equal(gpu.relaxedState.pumping, false);
    // done() relaxed: the work is finished when it resolves
    swiglu_forward(gpu, outs[2], bu, bg, n);
    await gpu.done({ relaxed: true });
    const swapped = new Float32Array(n);
    ref.swiglu_forward(swapped, u, g, n);
    assert.ok((await gpu.readF32(outs[2], n)).every((x, i) => Math.abs(x - swapped[i]) <= 1e-5 * (1 + Math.abs(swapped[i]))), 'done() waited');
  } finally {
    for (const b of [bg, bu, ...outs]) gpu.destroy(b);
  }
});

test('relaxedWait off: relaxed reads wait plainly (no pump)', async () => {
  const gpu = await testGpu();
  const keep = gpu.relaxedWait;
  const b = gpu.f32(Float32Array.of(1, 2, 3), 't.b');
  gpu.relaxedWait = false;
  try {
    const p = gpu.readF32(b, 3, { relaxed: true });
    assert.deepEqual(gpu.relaxedState, { pending: 0, pumping: false });
    assert.deepEqual([...(await p)], [1, 2, 3]);
  } finally {
    gpu.relaxedWait = keep;
    gpu.destroy(b);
  }
});

test('acquireGpu driverThreads 0: recorded on llvmpipe, LP_NUM_THREADS restored, computes; bad values refused', async () => {
  const keep = process.env.LP_NUM_THREADS;
  const gpu = await acquireGpu({ driverThreads: 0 });
  try {
    assert.equal(process.env.LP_NUM_THREADS, keep);
    if (/llvmpipe/i.test(gpu.info.description)) assert.equal(gpu.info.driverThreads, 0);
    else assert.equal(gpu.info.driverThreads, undefined);
    const n = 1000, g = randn32(n, 3), u = randn32(n, 4), want = new Float32Array(n);
    ref.swiglu_forward(want, g, u, n);
    const out = gpu.f32(n, 't.out');
    await gpu.scoped('inline', () => swiglu_forward(gpu, out, gpu.f32(g, 't.g'), gpu.f32(u, 't.u'), n));
    assert.ok((await gpu.readF32(out, n)).every((x, i) => Math.abs(x - want[i]) <= 1e-5 * (1 + Math.abs(want[i]))));
  } finally {
    gpu.device.destroy();
  }
  await assert.rejects(acquireGpu({ driverThreads: -1 }), /driverThreads must be an integer 0\.\.64 \(got -1\)/);
  assert.equal(process.env.LP_NUM_THREADS, keep);
});
