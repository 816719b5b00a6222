// linear (shaders/linear.wgsl): ref backward vs finite differences (f64); GPU vs ref for f32/f16/q8/q4
// weights on odd shapes, with bias, rowOffset slices, += semantics of dinp and of the accumulating
// forward, for every kernel variant (rt8x4, rt4x4, rt1x4, sm64, and sg16x32 / sg1x32 where subgroups
// are 8 wide — elsewhere they fall back to rt8x4 / rt1x4); the f16-compute forward (shader-f16 adapters: required on
// lavapipe); tuned variant dispatch (tuneLinear); a GFLOP/s print per variant.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import * as ref from '../../src/ref/linear.ts';
import * as lref from '../../src/ref/lora.ts';
import * as rref from '../../src/ref/rmsnorm.ts';
import * as op from '../../src/ops/linear.ts';
import { dequantize, quantize, type QFormat } from '../../src/model/quant.ts';
import { assertClose, finiteDiff, project, randn32, testGpu, to64, TOL } from '../util.ts';
import { MemoryTuneCache } from '../../src/gpu/autotune.ts';

test('ref linear_backward matches finite differences (f64)', () => {
  const N = 3, IC = 7, OC = 5, rows = 9, off = 2;
  const inp = to64(randn32(N * IC, 1)), w = to64(randn32(rows * IC, 2)), bias = to64(randn32(OC, 3)), p = to64(randn32(N * OC, 4));
  const loss = () => { const o = new Float64Array(N * OC); ref.linear_forward(o, inp, w, bias, N, IC, OC, off); return project(o, p); };
  const dinp = new Float64Array(N * IC);
  ref.linear_backward(dinp, p, w, N, IC, OC, off);
  const [idx, num] = finiteDiff(loss, inp);
  assertClose('linear fd dinp', idx.map((i) => dinp[i]), num, TOL.fd);
});

interface Case { N: number; IC: number; OC: number; rows?: number; off?: number; bias?: boolean; accumulate?: boolean }

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

async function runCase(format: QFormat, c: Case, seed: number, compute: op.LinearCompute = 'f32', variant?: op.LinearVariant) {
  const gpu = await testGpu();
  const { N, IC, OC } = c, rows = c.rows ?? OC, off = c.off ?? 0;
  const wf = randn32(rows * IC, seed, 0.5);
  const host = quantize(wf, rows, IC, format);
  const wdq = dequantize(host);
  const inp = randn32(N * IC, seed + 1), dout = randn32(N * OC, seed + 2);
  const bias = c.bias ? randn32(OC, seed + 3) : null;
  const dinp0 = randn32(N * IC, seed + 4); // non-zero: backward must add
  const out0 = randn32(N * OC, seed + 5); // garbage the forward overwrites; with accumulate, what it adds to
  const out = new Float32Array(N * OC); ref.linear_forward(out, inp, wdq, bias, N, IC, OC, off);
  if (c.accumulate) for (let i = 0; i < out.length; i++) out[i] += out0[i];
  const dinp = dinp0.slice(); ref.linear_backward(dinp, dout, wdq, N, IC, OC, off);
  const w = op.uploadWeight(gpu, host, 't.w');
  const bInp = gpu.f32(inp, 't.inp'), bOut = gpu.f32(out0, 't.out');
  const bDout = gpu.f32(dout, 't.dout'), bDinp = gpu.f32(dinp0, 't.dinp');
  const bBias = bias ? gpu.f32(bias, 't.bias') : null;
  await gpu.scoped('linear', () => {
    op.linear_forward(gpu, bOut, bInp, w, bBias, N, IC, OC, off, { compute, variant, accumulate: c.accumulate });
    op.linear_backward(gpu, bDinp, bDout, w, N, IC, OC, off, { variant });
  });
  const tag = `${format} N=${N} IC=${IC} OC=${OC} off=${off}${bias ? ' bias' : ''}${c.accumulate ? ' accumulate' : ''} compute ${compute} variant ${variant ?? 'default'}`;
  assertClose(`linear out ${tag}`, await gpu.readF32(bOut, N * OC), out, compute === 'f16' ? TOL.f16 : TOL.f32sum);
  assertClose(`linear dinp ${tag}`, await gpu.readF32(bDinp, N * IC), dinp, TOL.f32sum);
  for (const b of [w.buf, bInp, bOut, bDout, bDinp, bBias]) if (b) gpu.destroy(b);
}

for (const variant of op.LINEAR_VARIANTS) for (const format of ['f32', 'f16', 'q8', 'q4'] as const) {
  test(`gpu linear ${variant} ${format} odd shapes (N 1,3,17 × IC 5,33,96,100 × OC 1,7,65)`, async () => {
    let seed = 10;
    for (const N of [1, 3, 17]) for (const IC of [5, 33, 96, 100]) for (const OC of [1, 7, 65]) await runCase(format, { N, IC, OC }, seed += 10, 'f32', variant);
  });
  test(`gpu linear ${variant} ${format} bias, rowOffset slices, bigger shapes`, async () => {
    await runCase(format, { N: 5, IC: 33, OC: 7, bias: true }, 1, 'f32', variant);
    await runCase(format, { N: 17, IC: 100, OC: 65, rows: 200, off: 77 }, 2, 'f32', variant);
    await runCase(format, { N: 3, IC: 64, OC: 1, rows: 9, off: 8, bias: true }, 3, 'f32', variant);
    await runCase(format, { N: 70, IC: 130, OC: 99, rows: 150, off: 51, bias: true }, 4, 'f32', variant);
    await runCase(format, { N: 64, IC: 256, OC: 128 }, 5, 'f32', variant);
    await runCase(format, { N: 9, IC: 96, OC: 20, rows: 50, off: 13 }, 6, 'f32', variant); // vec4 dout path with a slice
    await runCase(format, { N: 33, IC: 100, OC: 36, rows: 37, off: 1, bias: true }, 7, 'f32', variant);
    await runCase(format, { N: 6, IC: 33, OC: 8, rows: 10, off: 2 }, 8, 'f32', variant); // scalar inp, vec4 dout
    // several tiles in every direction, partial last tiles (sm64: 64×64 output, K tiles of 16)
    await runCase(format, { N: 131, IC: 161, OC: 130, bias: true }, 12, 'f32', variant);
    await runCase(format, { N: 129, IC: 200, OC: 67, rows: 90, off: 23 }, 13, 'f32', variant);
    // accumulate: out += inp·Wᵀ + bias (the residual stream updated in place)
    await runCase(format, { N: 1, IC: 96, OC: 65, bias: true, accumulate: true }, 14, 'f32', variant);
    await runCase(format, { N: 70, IC: 33, OC: 130, rows: 150, off: 7, accumulate: true }, 15, 'f32', variant);
  });
  test(`gpu linear ${variant} ${format} weight larger than the binding limit is bound by row slices`, async () => {
    const gpu = await testGpu();
    const lim = gpu.info.limits, saved = lim.maxStorageBufferBindingSize;
    lim.maxStorageBufferBindingSize = 4096; // pretend: the 300-row weights below exceed it
    try {
      await runCase(format, { N: 5, IC: 33, OC: 20, rows: 300, off: 123, bias: true }, 9, 'f32', variant);
      await runCase(format, { N: 7, IC: 32, OC: 24, rows: 300, off: 275 }, 10, 'f32', variant);
      await runCase(format, { N: 3, IC: 36, OC: 1, rows: 300, off: 299 }, 11, 'f32', variant);
    } finally {
      lim.maxStorageBufferBindingSize = saved;
    }
  });
}

// f16 format: each weight is exactly the f16 rounding of the f32 one (what the ref sees); the kernel
// sees the same values, so the f32 tolerance holds. Shapes cover every IC % 4 (odd rows end in a pad half).
test('gpu linear f16 format: weights are the f16 roundings (IC % 4 = 0..3, slices at odd and even rows; every variant)', async () => {
  for (const variant of op.LINEAR_VARIANTS) {
    for (const IC of [1, 2, 3, 4, 6, 7, 9, 10, 11, 12]) {
      await runCase('f16', { N: 5, IC, OC: 6, rows: 11, off: 3, bias: true }, 100 + IC, 'f32', variant);
      await runCase('f16', { N: 9, IC, OC: 5, rows: 9, off: 4 }, 200 + IC, 'f32', variant);
    }
  }
});

// f16 compute (forward only; the backward stays f32): every format, odd shapes, tolerance TOL.f16
for (const variant of op.LINEAR_VARIANTS) {
  test(`gpu linear ${variant} compute f16 (shader-f16) vs ref: every format, odd shapes, slices, bias`, async () => {
    if (!(await hasF16('linear compute f16'))) return;
    let seed = 5000;
    for (const format of ['f32', 'f16', 'q8', 'q4'] as const) {
      for (const N of [1, 17]) for (const IC of [5, 33, 96, 100]) for (const OC of [1, 7, 65]) await runCase(format, { N, IC, OC }, seed += 10, 'f16', variant);
      await runCase(format, { N: 70, IC: 130, OC: 99, rows: 150, off: 51, bias: true }, seed += 10, 'f16', variant);
      await runCase(format, { N: 6, IC: 33, OC: 8, rows: 10, off: 2 }, seed += 10, 'f16', variant);
      await runCase(format, { N: 64, IC: 256, OC: 128, bias: true }, seed += 10, 'f16', variant);
      await runCase(format, { N: 131, IC: 161, OC: 130, bias: true }, seed += 10, 'f16', variant);
    }
  });
}

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

// The names of the linear pipelines a recorded piece of work dispatches (timestamp profiling
// names every dispatch), or null where the adapter has no timestamp-query.
async function dispatched(fn: () => void): Promise<string[] | null> {
  const gpu = await testGpu();
  if (!gpu.startProfile()) return null;
  fn();
  return [...(await gpu.stopProfile()).keys()].filter((k) => k.startsWith('linear_')).sort();
}

test('gpu linear tuned dispatch: tuneLinear fills the table, calls of a tuned class run its variant, others the default', async () => {
  const gpu = await testGpu();
  op.clearLinearTuning(gpu);
  const N = 40, IC = 96, OC = 80;
  const cls = op.linearShapeClass(N, IC, OC);
  assert.equal(cls, 'n64.i256.o256');
  assert.equal(op.linearShapeClass(1, 576, 49152), 'n1.i1024.o16384');
  // a cache that already holds rt4x4 (forward) and sm64 (backward) for this adapter and class:
  // tuneLinear takes them without a trial
  const cache = new MemoryTuneCache();
  const names = [...op.LINEAR_VARIANTS];
  const at = new Date().toISOString();
  await cache.set(op.linearTuneCacheKey(gpu, 'forward', 'q8', N, IC, OC), { variant: 'rt4x4', candidates: names, ms: {}, method: 'wall', at });
  await cache.set(op.linearTuneCacheKey(gpu, 'backward', 'q8', N, IC, OC), { variant: 'sm64', candidates: names, ms: {}, method: 'wall', at });
  const table = await op.tuneLinear(gpu, [{ format: 'q8', N, IC, OC }, { format: 'q8', N: 50, IC: 100, OC: 70 }], { cache });
  assert.equal(table.get(`q8.forward.${cls}`), 'rt4x4');
  assert.equal(table.get(`q8.backward.${cls}`), 'sm64');
  assert.equal(table.size, 2, 'the second shape is of the same class: no second entry');
  assert.equal(op.linearVariant(gpu, 'q8', 'forward', 33, 200, 255), 'rt4x4');
  const dflt0 = op.subgroupVariantAvailable(gpu) ? 'sg16x32' : 'rt8x4'; // the untuned default for N > 4, IC % 4 == 0
  assert.equal(op.linearVariant(gpu, 'q8', 'forward', 65, 200, 255), dflt0, 'another class: the default');
  assert.equal(op.linearVariant(gpu, 'q4', 'forward', N, IC, OC), dflt0, 'another format: the default');
  assert.equal(op.linearVariant(gpu, 'q4', 'forward', 3, IC, OC), op.subgroupVariantAvailable(gpu) ? 'sg1x32' : 'rt1x4', 'N ≤ 4: the matvec default');
  assert.equal(op.linearVariant(gpu, 'f32', 'forward', 1, IC, OC), op.subgroupWidth(gpu) === 4 ? 'rt1x8' : 'rt1x4', 'N ≤ 4, f32: the 8-column matvec on 4-wide subgroups (SwiftShader)');
  assert.equal(op.linearVariant(gpu, 'f32', 'forward', 1, 201, OC), 'rt1x4', 'N ≤ 4, IC % 4 ≠ 0: rt1x4');
  assert.equal(op.linearVariant(gpu, 'q4', 'forward', 65, 201, OC), 'rt8x4', 'IC % 4 ≠ 0: the register-tiled default');
  try {
    // correct results through the tuned path (no opts.variant)
    await runCase('q8', { N, IC, OC, rows: 90, off: 5, bias: true }, 77);
    const w = op.uploadWeight(gpu, quantize(randn32(OC * IC, 1), OC, IC, 'q8'), 't.w');
    const x = gpu.f32(randn32(N * IC, 2), 't.x'), y = gpu.f32(N * OC, 't.y');
    const got = await dispatched(() => {
      op.linear_forward(gpu, y, x, w, null, N, IC, OC);
      op.linear_backward(gpu, x, y, w, N, IC, OC);
    });
    if (got) assert.deepEqual(got, ['linear_q8_v4_dv_sm64.linear_backward', 'linear_q8_v4_rt4x4.linear_forward']);
    const forced = await dispatched(() => op.linear_forward(gpu, y, x, w, null, N, IC, OC, 0, { variant: 'sm64' }));
    if (forced) assert.deepEqual(forced, ['linear_q8_v4_sm64.linear_forward'], 'opts.variant overrides the tuned choice');
    op.clearLinearTuning(gpu);
    const dflt = await dispatched(() => op.linear_forward(gpu, y, x, w, null, N, IC, OC));
    if (dflt) assert.deepEqual(dflt, [`linear_q8_v4_${dflt0}${op.subgroupWidth(gpu) === 4 ? '_w4' : ''}.linear_forward`]);
    for (const b of [w.buf, x, y]) gpu.destroy(b);
  } finally {
    op.clearLinearTuning(gpu);
  }
  assert.throws(() => op.linear_forward(gpu, gpu.f32(1, 't'), gpu.f32(1, 't'), op.uploadWeight(gpu, quantize(new Float32Array(1), 1, 1, 'f32'), 't'), null, 1, 1, 1, 0, { variant: 'nope' as op.LinearVariant }), /unknown variant/);
});

test('gpu linear tuneLinear runs a real trial (every variant works; memory cache; second call no trial)', async () => {
  const gpu = await testGpu();
  const cache = new MemoryTuneCache();
  const shapes: op.LinearShape[] = [{ format: 'q4', N: 33, IC: 70, OC: 45 }];
  const lines: string[] = [];
  const t1 = await op.tuneLinear(gpu, shapes, { cache, reps: 1, log: (l) => lines.push(l) });
  try {
    const cls = op.linearShapeClass(33, 70, 45);
    for (const dir of ['forward', 'backward']) {
      const v = t1.get(`q4.${dir}.${cls}`);
      assert.ok(v && op.LINEAR_VARIANTS.includes(v), `a variant for ${dir}: ${v}`);
    }
    assert.equal(cache.map.size, 2);
    for (const rec of cache.map.values()) {
      const cands = op.LINEAR_VARIANTS.filter((v) => !v.startsWith('sg') || op.subgroupVariantAvailable(gpu));
      assert.deepEqual(Object.keys(rec.ms).sort(), [...cands].sort(), 'a median for every candidate');
      assert.equal(rec.failed, undefined, `no variant failed: ${JSON.stringify(rec.failed)}`);
    }
    assert.ok(lines.some((l) => l.includes('autotune linear')), lines.join('\n'));
    lines.length = 0;
    await op.tuneLinear(gpu, shapes, { cache, log: (l) => lines.push(l) });
    assert.deepEqual(lines, [], 'second call: from the cache, no trial');
    await runCase('q4', { N: 33, IC: 70, OC: 45, bias: true }, 78); // the tuned variants compute correctly
  } finally {
    op.clearLinearTuning(gpu);
  }
});

test('gpu linear GFLOP/s per variant (N=256, IC=576, OC=1536; printed, not asserted) and the autotune pick', async () => {
  const gpu = await testGpu();
  const N = 256, IC = 576, OC = 1536, flop = 2 * N * IC * OC;
  const inp = gpu.f32(randn32(N * IC, 1), 'p.inp'), out = gpu.f32(N * OC, 'p.out');
  const dout = gpu.f32(randn32(N * OC, 2), 'p.dout'), dinp = gpu.f32(N * IC, 'p.dinp');
  const wf = randn32(OC * IC, 3, 0.1);
  const lines: string[] = [];
  // every format (and f16 compute) for the default variant; f32 and q4 for the others (SwiftShader is slow)
  for (const variant of op.LINEAR_VARIANTS) {
    const line: string[] = [];
    for (const format of variant === op.DEFAULT_LINEAR_VARIANT ? ['f32', 'f16', 'q8', 'q4'] as const : ['f32', 'q4'] as const) {
      const w = op.uploadWeight(gpu, quantize(wf, OC, IC, format), 'p.w');
      for (const dir of gpu.info.features.f16 && variant === op.DEFAULT_LINEAR_VARIANT ? ['fwd', 'fwd-h', 'bwd'] as const : ['fwd', 'bwd'] as const) {
        const opts: op.LinearOptions = { compute: dir === 'fwd-h' ? 'f16' : 'f32', variant };
        const run = () => dir === 'bwd' ? op.linear_backward(gpu, dinp, dout, w, N, IC, OC, 0, opts) : op.linear_forward(gpu, out, inp, w, null, N, IC, OC, 0, opts);
        await gpu.scoped('warm', run);
        await gpu.readF32(out, 1);
        const reps = 3, t0 = performance.now();
        for (let r = 0; r < reps; r++) { run(); gpu.submit(); }
        await gpu.readF32(dir === 'bwd' ? dinp : out, 1);
        const ms = (performance.now() - t0) / reps;
        line.push(`${format} ${dir} ${(flop / ms / 1e6).toFixed(2)}`);
      }
      gpu.destroy(w.buf);
    }
    lines.push(`${variant}: ${line.join(', ')}`);
  }
  const picks: string[] = [];
  for (const format of ['f32', 'q4'] as const) {
    const t = await op.tuneLinear(gpu, [{ format, N, IC, OC, dirs: ['forward'] }], { cache: new MemoryTuneCache(), reps: 2 });
    picks.push(`${format} forward → ${t.get(`${format}.forward.${op.linearShapeClass(N, IC, OC)}`)}`);
  }
  op.clearLinearTuning(gpu);
  console.log(`# linear GFLOP/s on ${gpu.info.description || gpu.info.device} (wall, loaded machine: noisy)\n#   ${lines.join('\n#   ')}\n#   autotune: ${picks.join(', ')}`);
  for (const b of [inp, out, dout, dinp]) gpu.destroy(b);
});

// A LoRA adapter through the linear (opts.lora / opts.loraGrad): forward out (+)= inp·Wᵀ (+bias) +
// scale·h·Bᵀ, backward dinp += dout·W + dropout'(dh·A), against the two CPU twins. sg16x32 with R % 4 == 0 runs
// it inside the kernel (the LORA pipelines: checked by name where the adapter profiles); every
// other variant / rank runs the separate lora product after the linear.
async function loraCase(format: QFormat, variant: op.LinearVariant, N: number, IC: number, OC: number, R: number, seed: number, compute: op.LinearCompute = 'f32', accumulate = false, p = 0, row0 = 0): Promise<string[] | null> {
  const gpu = await testGpu();
  const rows = row0 + OC + (row0 ? 3 : 0); // row0 > 0: the weight's rows row0 .. row0+OC−1 (a slice), more rows after
  const host = quantize(randn32(rows * IC, seed, 0.5), rows, IC, format);
  const wdq = dequantize(host);
  const inp = randn32(N * IC, seed + 1), dout = randn32(N * OC, seed + 2), bias = randn32(OC, seed + 3);
  const h = randn32(N * R, seed + 4), B = randn32(OC * R, seed + 5), dh = randn32(N * R, seed + 6), A = randn32(R * IC, seed + 7);
  const out0 = randn32(N * OC, seed + 8), dinp0 = randn32(N * IC, seed + 9);
  const scale = 2 / R;
  // the reference: the linear's twin, then out += scale·h·Bᵀ and dinp += dh·A (src/ref/lora.ts's products, given h and dh)
  const out = new Float32Array(N * OC); ref.linear_forward(out, inp, wdq, bias, N, IC, OC, row0);
  for (let n = 0; n < N; n++) for (let o = 0; o < OC; o++) {
    let s = 0;
    for (let r = 0; r < R; r++) s += h[n * R + r] * B[o * R + r];
    out[n * OC + o] += scale * s + (accumulate ? out0[n * OC + o] : 0);
  }
  const dinp = dinp0.slice(); ref.linear_backward(dinp, dout, wdq, N, IC, OC, row0);
  for (let n = 0; n < N; n++) for (let i = 0; i < IC; i++) {
    let s = 0;
    for (let r = 0; r < R; r++) s += dh[n * R + r] * A[r * IC + i];
    dinp[n * IC + i] += lref.dropout_keep(seed, n * IC + i, p) ? s * Math.fround(1 / (1 - p)) : 0;
  }
  const w = op.uploadWeight(gpu, host, 't.w');
  const b = { inp: gpu.f32(inp, 't.inp'), out: gpu.f32(out0, 't.out'), dout: gpu.f32(dout, 't.dout'), dinp: gpu.f32(dinp0, 't.dinp'),
    bias: gpu.f32(bias, 't.bias'), h: gpu.f32(h, 't.h'), B: gpu.f32(B, 't.B'), dh: gpu.f32(dh, 't.dh'), A: gpu.f32(A, 't.A') };
  const run = () => {
    op.linear_forward(gpu, b.out, b.inp, w, b.bias, N, IC, OC, row0, { compute, variant, accumulate, lora: { h: b.h, B: b.B, rank: R, scale } });
    op.linear_backward(gpu, b.dinp, b.dout, w, N, IC, OC, row0, { variant, loraGrad: { dh: b.dh, A: b.A, rank: R, p, seed } });
  };
  let names: string[] | null = null;
  if (gpu.startProfile()) { run(); names = [...(await gpu.stopProfile()).keys()].sort(); } else await gpu.scoped('linear lora', run);
  const tag = `${format} ${variant} N=${N} IC=${IC} OC=${OC} R=${R} p=${p} compute ${compute}${accumulate ? ' accumulate' : ''}${row0 ? ` rows ${row0}..` : ''}`;
  assertClose(`linear+lora out ${tag}`, await gpu.readF32(b.out, N * OC), out, compute === 'f16' ? TOL.f16 : TOL.f32sum);
  assertClose(`linear+lora dinp ${tag}`, await gpu.readF32(b.dinp, N * IC), dinp, TOL.f32sum);
  for (const x of [w.buf, ...Object.values(b)]) gpu.destroy(x);
  return names;
}

test('gpu linear with a LoRA adapter (opts.lora, opts.loraGrad) vs ref: fused in sg16x32 (and the register-tiled and matvec forwards) for R % 4 == 0, separate elsewhere', async () => {
  const gpu = await testGpu();
  const sg = op.subgroupVariantAvailable(gpu);
  let seed = 500;
  for (const format of ['f32', 'f16', 'q8', 'q4'] as const) {
    for (const [N, IC, OC, R] of [[17, 96, 65, 4], [33, 100, 70, 8], [5, 32, 9, 3], [70, 33, 20, 4], [2, 64, 40, 16]]) {
      for (const variant of ['sg16x32', 'rt8x4'] as const) {
        const names = await loraCase(format, variant, N, IC, OC, R, seed += 13, 'f32', false, seed % 2 ? 0.3 : 0);
        // the backward fuses in sg16x32 only; the forward in sg16x32 and in rt8x4 (sg16x32's stand-in)
        const sgRuns = sg && variant === 'sg16x32' && IC % 4 === 0;
        const bwdFused = sgRuns && R % 4 === 0, fwdFused = R % 4 === 0;
        if (names) {
          const lin = names.filter((k) => k.startsWith('linear_'));
          const fwd = lin.filter((k) => k.endsWith('.linear_forward')), bwd = lin.filter((k) => k.endsWith('.linear_backward'));
          assert.equal(fwd.length + bwd.length, 2, `one forward and one backward linear dispatch: ${names.join(', ')}`);
          const tag = `(${format} ${variant} R=${R} IC=${IC}): ${names.join(', ')}`;
          assert.equal(fwd[0].includes('_lora_'), fwdFused, `forward LORA pipeline exactly when fused ${tag}`);
          assert.equal(bwd[0].includes('_lora_'), bwdFused, `backward LORA pipeline exactly when fused ${tag}`);
          assert.equal(names.some((k) => k.startsWith('lora')), !(fwdFused && bwdFused), `a separate lora product exactly where a direction is not fused ${tag}`);
          if (bwdFused) assert.equal(lin.every((k) => k.includes('_w4.')), op.subgroupWidth(gpu) === 4, `4-wide subgroups run the W = 4 form: ${names.join(', ')}`);
        }
      }
    }
  }
  // the matvecs (rt1x8; mv16, mvsg): their forward takes the adapter in-kernel (R % 4 == 0; where IC %
  // 4 ≠ 0 rt1x4 runs in their place, and fuses too); their backward is rt1x4's, with the separate product
  for (const variant of ['rt1x8', 'mv16', 'mvsg'] as const) {
    for (const format of ['f32', 'f16', 'q8', 'q4'] as const) {
      for (const [N, IC, OC, R] of [[1, 96, 65, 4], [3, 100, 70, 8], [1, 32, 9, 3], [2, 33, 20, 4], [1, 64, 300, 16]]) {
        const names = await loraCase(format, variant, N, IC, OC, R, seed += 13, 'f32', N === 1, 0);
        if (names) {
          const fwd = names.filter((k) => k.startsWith('linear_') && k.endsWith('.linear_forward'));
          assert.equal(fwd.length, 1, names.join(', '));
          assert.equal(fwd[0].includes('_lora_'), R % 4 === 0, `${variant} fuses the adapter exactly when R is a multiple of 4: ${names.join(', ')}`);
        }
      }
    }
  }
  await loraCase('q4', 'sg16x32', 40, 64, 36, 16, seed += 13, 'f32', true, 0.3);
  await loraCase('f32', 'sg16x32', 40, 64, 36, 16, seed += 13, 'f32', false, 0.3);
  if (await hasF16('linear+lora compute f16')) await loraCase('q8', 'sg16x32', 33, 96, 70, 8, seed += 13, 'f16', true);
  // a row slice of a larger weight (inference runs q / k / v and gate / up as slices of one concatenated
  // weight): the adapter's B has the slice's OC rows
  for (const variant of ['sg16x32', 'rt8x4', 'rt1x4', 'rt1x8', 'mv16', 'mvsg'] as const) {
    for (const format of ['f32', 'q4'] as const) {
      await loraCase(format, variant, 5, 64, 36, 8, seed += 13, 'f32', true, 0.3, 40);
      await loraCase(format, variant, 1, 96, 20, 16, seed += 13, 'f32', false, 0, 7);
    }
  }
});

// opts.norm: the linear's input inp's rows RMS-normalized — in-kernel (XN) where rt1x8, mv16, mvsg or
// sg1x32 runs (IC % 4 == 0), else a separate rmsnorm dispatch into scratch first; both vs the twins' composition
// (src/ref/rmsnorm.ts, then src/ref/linear.ts)
async function normCase(format: QFormat, variant: op.LinearVariant, N: number, IC: number, OC: number, seed: number, accumulate: boolean, row0: number, compute: op.LinearCompute = 'f32'): Promise<string[] | null> {
  const gpu = await testGpu();
  const rows = row0 + OC + 2;
  const host = quantize(randn32(rows * IC, seed, 0.5), rows, IC, format);
  const wdq = dequantize(host);
  const inp = randn32(N * IC, seed + 1, 2), g = randn32(IC, seed + 2), bias = randn32(OC, seed + 3), out0 = randn32(N * OC, seed + 4);
  const eps = 1e-5;
  const x = new Float32Array(N * IC);
  rref.rmsnorm_forward(x, new Float32Array(N), inp, g, N, IC, eps);
  const want = new Float32Array(N * OC); ref.linear_forward(want, x, wdq, bias, N, IC, OC, row0);
  if (accumulate) for (let i = 0; i < N * OC; i++) want[i] += out0[i];
  const w = op.uploadWeight(gpu, host, 't.w');
  const b = { inp: gpu.f32(inp, 't.inp'), g: gpu.f32(g, 't.g'), bias: gpu.f32(bias, 't.bias'), out: gpu.f32(out0, 't.out'), scratch: gpu.f32(N * IC, 't.scratch'), rstd: gpu.f32(N, 't.rstd') };
  const run = () => op.linear_forward(gpu, b.out, b.inp, w, b.bias, N, IC, OC, row0, { variant, accumulate, compute, norm: { weight: b.g, eps, scratch: b.scratch, rstd: b.rstd } });
  let names: string[] | null = null;
  if (gpu.startProfile()) { run(); names = [...(await gpu.stopProfile()).keys()].sort(); } else await gpu.scoped('linear norm', run);
  const tag = `${format} ${variant} N=${N} IC=${IC} OC=${OC}${accumulate ? ' accumulate' : ''}${row0 ? ` rows ${row0}..` : ''} compute ${compute}`;
  assertClose(`linear norm out ${tag}`, await gpu.readF32(b.out, N * OC), want, compute === 'f16' ? TOL.f16 : TOL.f32sum);
  for (const x of [w.buf, ...Object.values(b)]) gpu.destroy(x);
  return names;
}

test('gpu linear with an RMS-normalized input (opts.norm) vs ref: in-kernel for the matvecs rt1x8, mv16, mvsg, sg1x32 (IC % 4 == 0), a separate rmsnorm dispatch first elsewhere', async () => {
  const gpu = await testGpu();
  let seed = 900;
  for (const variant of ['rt1x8', 'mv16', 'mvsg', 'sg1x32', 'rt1x4', 'rt8x4'] as const) {
    for (const format of ['f32', 'f16', 'q8', 'q4'] as const) {
      for (const [N, IC, OC, row0] of [[1, 96, 65, 0], [3, 64, 300, 7], [1, 100, 20, 0], [2, 32, 9, 3], [1, 160, 33, 0], [2, 30, 17, 1], ...(format === 'f32' ? [[1, 128, 2048, 0]] : [])]) {
        const names = await normCase(format, variant, N, IC, OC, seed += 7, seed % 2 === 0, row0);
        if (!names) continue;
        const tag = `(${format} ${variant} IC=${IC}): ${names.join(', ')}`;
        const fwd = names.filter((k) => k.startsWith('linear_'));
        assert.equal(fwd.length, 1, tag);
        // the variant that ran (sg1x32 and mvsg fall back to rt1x4 where they cannot run, every matvec where IC % 4 ≠ 0)
        const ran = /_(rt8x4|rt4x4|rt1x4|rt1x8|sm64|sm128|sg16x32|sg1x32|mv16|mvsg)(_w\d+)?\.linear_forward$/.exec(fwd[0])?.[1] as op.LinearVariant;
        assert.ok(ran, tag);
        const fused = op.fusesNorm(ran, IC);
        assert.equal(fused, IC % 4 === 0 && ran !== 'rt1x4' && ran !== 'rt8x4', `fusesNorm: the matvecs but rt1x4 ${tag}`);
        assert.equal(fwd[0].includes('_rmsnorm_'), fused, `the normalizing pipeline exactly when fused ${tag}`);
        assert.equal(names.some((k) => k.startsWith('rmsnorm')), !fused, `a separate rmsnorm dispatch exactly when not fused ${tag}`);
      }
    }
  }
  if (await hasF16('linear norm compute f16')) {
    for (const variant of ['rt1x8', 'mv16', 'mvsg', 'sg1x32'] as const) await normCase('q8', variant, 1, 96, 70, seed += 7, true, 0, 'f16');
  }
  const w = op.uploadWeight(gpu, quantize(randn32(8 * 8, 1), 8, 8, 'f32'), 't.w');
  const x = gpu.f32(8, 't.x'), y = gpu.f32(8, 't.y');
  assert.throws(() => op.linear_forward(gpu, y, x, w, null, 1, 8, 8, 0, { norm: { weight: x, eps: 1e-5, scratch: x, rstd: x }, lora: { h: x, B: x, rank: 4, scale: 1 } }), /opts.norm and opts.lora cannot be combined/);
  for (const b of [w.buf, x, y]) gpu.destroy(b);
});
