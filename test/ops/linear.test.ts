// linear (shaders/linear.wgsl): ref backward vs finite differences (f64); GPU vs ref for f32/f16/q8/q4
// weights on odd shapes, with bias, rowOffset slices and += semantics of dinp; the f16-compute
// forward variant (shader-f16 adapters: required on lavapipe); a GFLOP/s print.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import * as ref from '../../src/ref/linear.ts';
import * as op from '../../src/ops/linear.ts';
import { dequantize, quantize, type QFormat } from '../../src/model/quant.ts';
import { assertClose, finiteDiff, project, randn32, testGpu, to64, TOL } from '../util.ts';

test('ref linear_backward matches finite differences (f64)', () => {
  const N = 3, IC = 7, OC = 5, rows = 9, off = 2;
  const inp = to64(randn32(N * IC, 1)), w = to64(randn32(rows * IC, 2)), bias = to64(randn32(OC, 3)), p = to64(randn32(N * OC, 4));
  const loss = () => { const o = new Float64Array(N * OC); ref.linear_forward(o, inp, w, bias, N, IC, OC, off); return project(o, p); };
  const dinp = new Float64Array(N * IC);
  ref.linear_backward(dinp, p, w, N, IC, OC, off);
  const [idx, num] = finiteDiff(loss, inp);
  assertClose('linear fd dinp', idx.map((i) => dinp[i]), num, TOL.fd);
});

interface Case { N: number; IC: number; OC: number; rows?: number; off?: number; bias?: boolean }

/**
 * Whether this adapter can run the f16-compute variant. Lavapipe (llvmpipe) has shader-f16: there its
 * absence FAILS the test. Elsewhere without it (SwiftShader) the caller skips, printing why.
 */
async function hasF16(what: string): Promise<boolean> {
  const gpu = await testGpu();
  const desc = gpu.info.description || gpu.info.device;
  if (gpu.info.features.f16) return true;
  if (/llvmpipe/i.test(desc)) throw new Error(`${what}: lavapipe (${desc}) is expected to expose shader-f16 but does not`);
  console.log(`# ${what}: skipped, ${desc} has no shader-f16`);
  return false;
}

async function runCase(format: QFormat, c: Case, seed: number, compute: op.LinearCompute = 'f32') {
  const gpu = await testGpu();
  const { N, IC, OC } = c, rows = c.rows ?? OC, off = c.off ?? 0;
  const wf = randn32(rows * IC, seed, 0.5);
  const host = quantize(wf, rows, IC, format);
  const wdq = dequantize(host);
  const inp = randn32(N * IC, seed + 1), dout = randn32(N * OC, seed + 2);
  const bias = c.bias ? randn32(OC, seed + 3) : null;
  const dinp0 = randn32(N * IC, seed + 4); // non-zero: backward must add
  const out = new Float32Array(N * OC); ref.linear_forward(out, inp, wdq, bias, N, IC, OC, off);
  const dinp = dinp0.slice(); ref.linear_backward(dinp, dout, wdq, N, IC, OC, off);
  const w = op.uploadWeight(gpu, host, 't.w');
  const bInp = gpu.f32(inp, 't.inp'), bOut = gpu.f32(randn32(N * OC, seed + 5), 't.out'); // garbage: forward overwrites
  const bDout = gpu.f32(dout, 't.dout'), bDinp = gpu.f32(dinp0, 't.dinp');
  const bBias = bias ? gpu.f32(bias, 't.bias') : null;
  await gpu.scoped('linear', () => {
    op.linear_forward(gpu, bOut, bInp, w, bBias, N, IC, OC, off, { compute });
    op.linear_backward(gpu, bDinp, bDout, w, N, IC, OC, off);
  });
  const tag = `${format} N=${N} IC=${IC} OC=${OC} off=${off}${bias ? ' bias' : ''} compute ${compute}`;
  assertClose(`linear out ${tag}`, await gpu.readF32(bOut, N * OC), out, compute === 'f16' ? TOL.f16 : TOL.f32sum);
  assertClose(`linear dinp ${tag}`, await gpu.readF32(bDinp, N * IC), dinp, TOL.f32sum);
  for (const b of [w.buf, bInp, bOut, bDout, bDinp, bBias]) if (b) gpu.destroy(b);
}

for (const format of ['f32', 'f16', 'q8', 'q4'] as const) {
  test(`gpu linear ${format} odd shapes (N 1,3,17 × IC 5,33,96,100 × OC 1,7,65)`, async () => {
    let seed = 10;
    for (const N of [1, 3, 17]) for (const IC of [5, 33, 96, 100]) for (const OC of [1, 7, 65]) await runCase(format, { N, IC, OC }, seed += 10);
  });
  test(`gpu linear ${format} bias, rowOffset slices, bigger shapes`, async () => {
    await runCase(format, { N: 5, IC: 33, OC: 7, bias: true }, 1);
    await runCase(format, { N: 17, IC: 100, OC: 65, rows: 200, off: 77 }, 2);
    await runCase(format, { N: 3, IC: 64, OC: 1, rows: 9, off: 8, bias: true }, 3);
    await runCase(format, { N: 70, IC: 130, OC: 99, rows: 150, off: 51, bias: true }, 4);
    await runCase(format, { N: 64, IC: 256, OC: 128 }, 5);
    await runCase(format, { N: 9, IC: 96, OC: 20, rows: 50, off: 13 }, 6); // vec4 dout path with a slice
    await runCase(format, { N: 33, IC: 100, OC: 36, rows: 37, off: 1, bias: true }, 7);
    await runCase(format, { N: 6, IC: 33, OC: 8, rows: 10, off: 2 }, 8); // scalar inp, vec4 dout
  });
  test(`gpu linear ${format} weight larger than the binding limit is bound by row slices`, async () => {
    const gpu = await testGpu();
    const lim = gpu.info.limits, saved = lim.maxStorageBufferBindingSize;
    lim.maxStorageBufferBindingSize = 4096; // pretend: the 300-row weights below exceed it
    try {
      await runCase(format, { N: 5, IC: 33, OC: 20, rows: 300, off: 123, bias: true }, 9);
      await runCase(format, { N: 7, IC: 32, OC: 24, rows: 300, off: 275 }, 10);
      await runCase(format, { N: 3, IC: 36, OC: 1, rows: 300, off: 299 }, 11);
    } finally {
      lim.maxStorageBufferBindingSize = saved;
    }
  });
}

// f16 format: each weight is exactly the f16 rounding of the f32 one (what the ref sees); the kernel
// sees the same values, so the f32 tolerance holds. Shapes cover every IC % 4 (odd rows end in a pad half).
test('gpu linear f16 format: weights are the f16 roundings (IC % 4 = 0..3, slices at odd and even rows)', async () => {
  for (const IC of [1, 2, 3, 4, 6, 7, 9, 10, 11, 12]) {
    await runCase('f16', { N: 5, IC, OC: 6, rows: 11, off: 3, bias: true }, 100 + IC);
    await runCase('f16', { N: 9, IC, OC: 5, rows: 9, off: 4 }, 200 + IC);
  }
});

// f16 compute (forward only; the backward stays f32): every format, odd shapes, tolerance TOL.f16
test('gpu linear compute f16 (shader-f16) vs ref: every format, odd shapes, slices, bias', async () => {
  if (!(await hasF16('linear compute f16'))) return;
  let seed = 5000;
  for (const format of ['f32', 'f16', 'q8', 'q4'] as const) {
    for (const N of [1, 17]) for (const IC of [5, 33, 96, 100]) for (const OC of [1, 7, 65]) await runCase(format, { N, IC, OC }, seed += 10, 'f16');
    await runCase(format, { N: 70, IC: 130, OC: 99, rows: 150, off: 51, bias: true }, seed += 10, 'f16');
    await runCase(format, { N: 6, IC: 33, OC: 8, rows: 10, off: 2 }, seed += 10, 'f16');
    await runCase(format, { N: 64, IC: 256, OC: 128, bias: true }, seed += 10, 'f16');
  }
});

test('gpu linear compute f16: per-Gpu default (setLinearCompute), and a clear error without shader-f16', async () => {
  const gpu = await testGpu();
  assert.equal(op.linearCompute(gpu), 'f32', 'the default compute is f32');
  if (!gpu.info.features.f16) {
    assert.throws(() => op.setLinearCompute(gpu, 'f16'), /shader-f16/);
    const w = op.uploadWeight(gpu, quantize(randn32(8 * 4, 1), 8, 4, 'f16'), 't.w'), x = gpu.f32(4, 't.x'), y = gpu.f32(8, 't.y');
    assert.throws(() => op.linear_forward(gpu, y, x, w, null, 1, 4, 8, 0, { compute: 'f16' }), /shader-f16/);
    for (const b of [w.buf, x, y]) gpu.destroy(b);
    if (!(await hasF16('linear setLinearCompute f16'))) return;
  }
  // with the Gpu default at f16, a call without options takes the f16 variant: its result differs
  // from the f32 one (f16 rounding of x), and an explicit compute 'f32' still overrides it
  const N = 9, IC = 100, OC = 20;
  const host = quantize(randn32(OC * IC, 2, 0.5), OC, IC, 'f32');
  const w = op.uploadWeight(gpu, host, 't.w'), x = gpu.f32(randn32(N * IC, 3), 't.x');
  const y = [gpu.f32(N * OC, 't.y0'), gpu.f32(N * OC, 't.y1'), gpu.f32(N * OC, 't.y2')];
  try {
    await gpu.scoped('linear', () => op.linear_forward(gpu, y[0], x, w, null, N, IC, OC));
    op.setLinearCompute(gpu, 'f16');
    assert.equal(op.linearCompute(gpu), 'f16');
    await gpu.scoped('linear', () => {
      op.linear_forward(gpu, y[1], x, w, null, N, IC, OC);
      op.linear_forward(gpu, y[2], x, w, null, N, IC, OC, 0, { compute: 'f32' });
    });
  } finally {
    op.setLinearCompute(gpu, 'f32');
  }
  const [a, b, c] = [await gpu.readF32(y[0]), await gpu.readF32(y[1]), await gpu.readF32(y[2])];
  assert.deepEqual(Array.from(c), Array.from(a), 'explicit f32 overrides the Gpu default');
  assert.ok(a.some((v, i) => v !== b[i]), 'the Gpu default f16 took the f16 variant');
  assertClose('f16 default vs f32', b, a, TOL.f16);
  for (const buf of [w.buf, x, ...y]) gpu.destroy(buf);
});

test('gpu linear GFLOP/s (N=256, IC=576, OC=1536; printed, not asserted)', async () => {
  const gpu = await testGpu();
  const N = 256, IC = 576, OC = 1536, flop = 2 * N * IC * OC;
  const inp = gpu.f32(randn32(N * IC, 1), 'p.inp'), out = gpu.f32(N * OC, 'p.out');
  const dout = gpu.f32(randn32(N * OC, 2), 'p.dout'), dinp = gpu.f32(N * IC, 'p.dinp');
  const wf = randn32(OC * IC, 3, 0.1);
  const line: string[] = [];
  for (const format of ['f32', 'f16', 'q8', 'q4'] as const) {
    const w = op.uploadWeight(gpu, quantize(wf, OC, IC, format), 'p.w');
    for (const dir of gpu.info.features.f16 ? ['fwd', 'fwd-h', 'bwd'] as const : ['fwd', 'bwd'] as const) {
      const opts: op.LinearOptions = { compute: dir === 'fwd-h' ? 'f16' : 'f32' };
      const run = () => dir === 'bwd' ? op.linear_backward(gpu, dinp, dout, w, N, IC, OC) : op.linear_forward(gpu, out, inp, w, null, N, IC, OC, 0, opts);
      await gpu.scoped('warm', run);
      await gpu.readF32(out, 1);
      const reps = 5, t0 = performance.now();
      for (let r = 0; r < reps; r++) { run(); gpu.submit(); }
      await gpu.readF32(dir === 'bwd' ? dinp : out, 1);
      const ms = (performance.now() - t0) / reps;
      line.push(`${format} ${dir} ${(flop / ms / 1e6).toFixed(2)}`);
    }
    gpu.destroy(w.buf);
  }
  console.log(`# linear GFLOP/s on ${gpu.info.description || gpu.info.device}: ${line.join(', ')}`);
});
