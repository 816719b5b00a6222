// lora (shaders/lora.wgsl): ref backward vs finite differences (f64, p = 0 and p = 0.3: the mask
// is deterministic); GPU vs ref with and without dropout on odd shapes (this also checks the WGSL
// hash against dropout_keep bit for bit) for both kernels (lora_mm, lora_mm_sg); B = 0 leaves out
// unchanged exactly; init and mask stats.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import * as ref from '../../src/ref/lora.ts';
import * as op from '../../src/ops/lora.ts';
import { assertClose, finiteDiff, project, randn32, testGpu, to64, TOL } from '../util.ts';
import { fixedSubgroupSize } from '../../src/ops/util.ts';

for (const p of [0, 0.3]) {
  test(`ref lora_backward matches finite differences (f64, p=${p})`, () => {
    const N = 3, IC = 7, OC = 5, R = 2, scale = 1.7, seed = 42;
    const inp = to64(randn32(N * IC, 1)), A = to64(randn32(R * IC, 2)), B = to64(randn32(OC * R, 3));
    const out0 = to64(randn32(N * OC, 4)), w = to64(randn32(N * OC, 5));
    const loss = () => {
      const o = out0.slice(), h = new Float64Array(N * R);
      ref.lora_forward(o, h, inp, A, B, N, IC, OC, R, scale, p, seed);
      return project(o, w);
    };
    const h = new Float64Array(N * R);
    ref.lora_forward(out0.slice(), h, inp, A, B, N, IC, OC, R, scale, p, seed);
    const dinp = new Float64Array(N * IC), dA = new Float64Array(R * IC), dB = new Float64Array(OC * R), dh = new Float64Array(N * R);
    ref.lora_backward(dinp, dA, dB, dh, w, inp, A, B, h, N, IC, OC, R, scale, p, seed);
    for (const [name, x, g] of [['dinp', inp, dinp], ['dA', A, dA], ['dB', B, dB]] as const) {
      const [idx, num] = finiteDiff(loss, x);
      assertClose(`lora fd ${name} p=${p}`, idx.map((i) => g[i]), num, TOL.fd);
    }
    if (p > 0) assert.ok(dinp.some((v, i) => v === 0 && !ref.dropout_keep(seed, i, p)), 'some inputs are dropped');
  });
}

async function runCase(N: number, IC: number, OC: number, R: number, p: number, seed: number) {
  const gpu = await testGpu();
  const scale = 2 / R;
  const inp = randn32(N * IC, seed + 1), A = randn32(R * IC, seed + 2), B = randn32(OC * R, seed + 3);
  const out0 = randn32(N * OC, seed + 4), dout = randn32(N * OC, seed + 5);
  const dinp0 = randn32(N * IC, seed + 6), dA0 = randn32(R * IC, seed + 7), dB0 = randn32(OC * R, seed + 8);
  const out = out0.slice(), h = new Float32Array(N * R);
  ref.lora_forward(out, h, inp, A, B, N, IC, OC, R, scale, p, seed);
  const dinp = dinp0.slice(), dA = dA0.slice(), dB = dB0.slice(), dh = new Float32Array(N * R);
  ref.lora_backward(dinp, dA, dB, dh, dout, inp, A, B, h, N, IC, OC, R, scale, p, seed);
  const b = {
    out: gpu.f32(out0, 't.out'), h: gpu.f32(randn32(N * R, 9), 't.h'), inp: gpu.f32(inp, 't.inp'), A: gpu.f32(A, 't.A'), B: gpu.f32(B, 't.B'),
    dout: gpu.f32(dout, 't.dout'), dinp: gpu.f32(dinp0, 't.dinp'), dA: gpu.f32(dA0, 't.dA'), dB: gpu.f32(dB0, 't.dB'), dh: gpu.f32(randn32(N * R, 10), 't.dh'),
  };
  await gpu.scoped('lora', () => {
    op.lora_forward(gpu, b.out, b.h, b.inp, b.A, b.B, N, IC, OC, R, scale, p, seed);
    op.lora_backward(gpu, b.dinp, b.dA, b.dB, b.dh, b.dout, b.inp, b.A, b.B, b.h, N, IC, OC, R, scale, p, seed);
  });
  const tag = `N=${N} IC=${IC} OC=${OC} R=${R} p=${p}`;
  assertClose(`lora h ${tag}`, await gpu.readF32(b.h, N * R), h, TOL.f32sum);
  assertClose(`lora out ${tag}`, await gpu.readF32(b.out, N * OC), out, TOL.f32sum);
  assertClose(`lora dh ${tag}`, await gpu.readF32(b.dh, N * R), dh, TOL.f32sum);
  assertClose(`lora dB ${tag}`, await gpu.readF32(b.dB, OC * R), dB, TOL.f32sum);
  assertClose(`lora dA ${tag}`, await gpu.readF32(b.dA, R * IC), dA, TOL.f32sum);
  assertClose(`lora dinp ${tag}`, await gpu.readF32(b.dinp, N * IC), dinp, TOL.f32sum);
  for (const x of Object.values(b)) gpu.destroy(x);
}

// the kernels: 'rt' (lora_mm), 'sg' (lora_mm_sg where subgroups are 8 or 4 wide, else lora_mm), 'sk'
// (lora_mm_sk: K split across the workgroup; R = 1, 2, 3 give 1-, 2-, 3-column tiles, the last two
// shapes K = N = 300 and IC = 200) and 'auto' (there also the quad forms lora_mm_sg4 / lora_mm_sg4x where X, Y
// are contiguous along k: IC or OC % 4 == 0 here; R = 32 gives 4 columns per lane)
for (const kernel of ['rt', 'sg', 'sk', 'auto'] as const) for (const p of [0, 0.3]) {
  test(`gpu lora forward+backward vs ref, odd shapes, p=${p}, kernel ${kernel}`, async () => {
    let seed = 100;
    const keep = op.loraTuning.kernel;
    op.loraTuning.kernel = kernel;
    try {
      for (const [N, IC, OC, R] of [[1, 5, 7, 1], [3, 33, 7, 2], [17, 100, 65, 8], [5, 96, 1, 3], [70, 37, 45, 16], [130, 64, 96, 4], [33, 40, 20, 12], [40, 64, 48, 32],
        ...(kernel === 'sk' ? [[300, 200, 72, 16], [300, 70, 200, 5]] : [])]) {
        await runCase(N, IC, OC, R, p, seed += 17);
      }
      // which kernel ran: the subgroup forms where subgroups are 8 or 4 wide (pipeline lora_sg / lora_sg_w4)
      const gpu = await testGpu();
      const S = fixedSubgroupSize(gpu);
      const x = gpu.f32(randn32(64, 1), 't.x'), y = gpu.f32(64, 't.y'), h = gpu.f32(64, 't.h');
      if (gpu.startProfile()) {
        op.lora_forward(gpu, y, h, x, x, x, 8, 8, 8, 8, 1, p, 1);
        const names = [...(await gpu.stopProfile()).keys()];
        const want = kernel === 'sk' ? 'lora.lora_mm_sk' : kernel === 'rt' || (S !== 8 && S !== 4) ? 'lora.' : S === 4 ? 'lora_sg_w4.' : 'lora_sg.';
        assert.ok(names.length > 0 && names.every((k) => k.startsWith(want)), `kernel ${kernel}, subgroups ${S}: ${want}* ran (${names.join(', ')})`);
      }
      gpu.destroy(x); gpu.destroy(y); gpu.destroy(h);
    } finally {
      op.loraTuning.kernel = keep;
    }
  });
}

test('gpu lora with B = 0 leaves out unchanged exactly (and dA gets 0)', async () => {
  const gpu = await testGpu();
  const N = 9, IC = 33, OC = 20, R = 4, p = 0.1, seed = 7;
  const out0 = randn32(N * OC, 1), A = ref.lora_init_A(R, IC, 3);
  const bOut = gpu.f32(out0, 't.out'), bH = gpu.f32(N * R, 't.h'), bInp = gpu.f32(randn32(N * IC, 2), 't.inp');
  const bA = gpu.f32(A, 't.A'), bB = gpu.f32(OC * R, 't.B'), bdA = gpu.f32(R * IC, 't.dA'), bdB = gpu.f32(OC * R, 't.dB');
  const bdh = gpu.f32(N * R, 't.dh'), bdinp = gpu.f32(N * IC, 't.dinp'), bdout = gpu.f32(randn32(N * OC, 3), 't.dout');
  await gpu.scoped('lora B=0', () => {
    op.lora_forward(gpu, bOut, bH, bInp, bA, bB, N, IC, OC, R, 2, p, seed);
    op.lora_backward(gpu, bdinp, bdA, bdB, bdh, bdout, bInp, bA, bB, bH, N, IC, OC, R, 2, p, seed);
  });
  assert.deepEqual(Array.from(await gpu.readF32(bOut, N * OC)), Array.from(out0));
  assert.ok((await gpu.readF32(bdA, R * IC)).every((v) => v === 0), 'dA = 0 when B = 0');
  assert.ok((await gpu.readF32(bdB, OC * R)).some((v) => v !== 0), 'dB ≠ 0');
  for (const x of [bOut, bH, bInp, bA, bB, bdA, bdB, bdh, bdinp, bdout]) gpu.destroy(x);
});

test('dropout_keep statistics and lora_init_A bound', () => {
  const n = 100000;
  for (const p of [0, 0.1, 0.5]) {
    let kept = 0;
    for (let i = 0; i < n; i++) if (ref.dropout_keep(12345, i, p)) kept++;
    assert.ok(Math.abs(kept / n - (1 - p)) < 0.01, `p=${p}: kept fraction ${kept / n}`);
  }
  // different seeds give different masks
  let same = 0;
  for (let i = 0; i < 1000; i++) if (ref.dropout_keep(1, i, 0.5) === ref.dropout_keep(2, i, 0.5)) same++;
  assert.ok(same > 400 && same < 600, `masks of seeds 1 and 2 agree on ${same}/1000`);
  const R = 16, IC = 896, A = ref.lora_init_A(R, IC, 5), bound = 1 / Math.sqrt(IC);
  let mean = 0, sq = 0, max = 0;
  for (const v of A) { mean += v; sq += v * v; max = Math.max(max, Math.abs(v)); }
  mean /= A.length; sq /= A.length;
  assert.ok(max <= bound && max > 0.99 * bound, `max |A| ${max} vs bound ${bound}`);
  assert.ok(Math.abs(mean) < 0.02 * bound, `mean ${mean}`);
  assert.ok(Math.abs(sq / (bound * bound / 3) - 1) < 0.03, `variance ${sq} vs ${bound * bound / 3}`);
  assert.deepEqual(Array.from(ref.lora_init_A(2, 3, 9)), Array.from(ref.lora_init_A(2, 3, 9)));
});
