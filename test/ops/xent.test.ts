// Cross-entropy fused with lm_head: ref backward vs central finite differences (f64); GPU (chunked,
// f32/q8/q4 lm_head) vs ref (unchunked, dequantize(quantize(W))) for losses, lse, correct and dinp +=,
// on odd V (partial last chunk, V < chunk), N = 1 and N = 13, ignored targets, argmax hits, with the
// gradient accumulated in the forward (grad); the backward's reuse of the forward's last logits
// chunk (bitwise = recomputing; stale tickets refused) and the grad path against recomputing.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import * as ref from '../../src/ref/xent.ts';
import * as op from '../../src/ops/xent.ts';
import { uploadWeight } from '../../src/ops/linear.ts';
import { dequantize, quantize, type QFormat } from '../../src/model/quant.ts';
import { assertClose, finiteDiff, project, randn32, rng, testGpu, to64, TOL } from '../util.ts';

const IGN = ref.XENT_IGNORE;

test('ref xent_backward matches finite differences (f64)', () => {
  const N = 3, C = 4, V = 11;
  const inp = to64(randn32(N * C, 1, 2)), w = to64(randn32(V * C, 2, 1.5));
  const targets = new Uint32Array([7, IGN, 0]);
  const proj = to64(randn32(N, 3)); // dloss
  const loss = () => {
    const l = new Float64Array(N), lse = new Float64Array(N), cor = new Float64Array(N);
    ref.xent_forward(l, lse, cor, inp, w, targets, N, C, V, 4);
    return project(l, proj);
  };
  const l = new Float64Array(N), lse = new Float64Array(N), cor = new Float64Array(N);
  ref.xent_forward(l, lse, cor, inp, w, targets, N, C, V, 4);
  assert.equal(l[1], 0, 'ignored target has loss 0');
  const dinp = new Float64Array(N * C);
  ref.xent_backward(dinp, inp, w, targets, lse, proj, N, C, V, 4);
  const [idx, num] = finiteDiff(loss, inp);
  assertClose('xent fd dinp', idx.map((i) => dinp[i]), num, TOL.fd);
  for (let c = 0; c < C; c++) assert.equal(dinp[C + c], 0, 'ignored row gets no gradient');
});

/** Row argmax of inp·wᵀ (f64), to build targets that hit it. */
function argmaxRows(inp: Float32Array, w: Float32Array, N: number, C: number, V: number): number[] {
  const out: number[] = [];
  for (let n = 0; n < N; n++) {
    let best = -Infinity, a = 0;
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += inp[n * C + c] * w[v * C + c];
      if (s > best) { best = s; a = v; }
    }
    out.push(a);
  }
  return out;
}

const shapes: Array<{ N: number; C: number; V: number; chunk: number; wscale: number }> = [
  { N: 13, C: 40, V: 37, chunk: 8, wscale: 1 }, // partial last chunk (5 rows)
  { N: 13, C: 64, V: 1000, chunk: 256, wscale: 0.5 }, // partial last chunk (232 rows), > 256 per row in total
  { N: 1, C: 33, V: 37, chunk: 64, wscale: 1 }, // V < chunk (one chunk), one row
  { N: 5, C: 32, V: 300, chunk: 300, wscale: 8 }, // chunk = V, large logits (|z| ~ 50)
];

// xent_update's two forms: 'plain' (workgroup tree) on f32, 'auto' (its subgroup form where the
// subgroup size is fixed) on every format
for (const [format, kernel] of [['f32', 'plain'], ['f32', 'auto'], ['q8', 'auto'], ['q4', 'auto']] as [QFormat, 'plain' | 'auto'][]) {
  for (const { N, C, V, chunk, wscale } of shapes) {
    test(`gpu xent ${format} N=${N} C=${C} V=${V} chunk=${chunk} kernel ${kernel}`, async () => {
      const gpu = await testGpu();
      const seed = N * 1000 + V;
      const inp = randn32(N * C, seed), wRaw = randn32(V * C, seed + 1, wscale);
      const host = quantize(wRaw, V, C, format);
      const wd = dequantize(host); // what the kernels see
      // targets: argmax hits (correct = 1), random ids, one ignored row (when N > 1)
      const am = argmaxRows(inp, wd, N, C, V);
      const r = rng(seed + 2);
      const targets = new Uint32Array(N);
      for (let n = 0; n < N; n++) targets[n] = n % 3 === 0 ? am[n] : Math.floor(r() * V);
      if (N > 1) targets[2] = IGN;
      const dloss = randn32(N, seed + 3);
      const dinp0 = randn32(N * C, seed + 4); // non-zero: backward must add

      const rl = new Float64Array(N), rlse = new Float64Array(N), rc = new Float64Array(N);
      ref.xent_forward(rl, rlse, rc, to64(inp), to64(wd), targets, N, C, V, chunk);
      const rd = to64(dinp0);
      ref.xent_backward(rd, to64(inp), to64(wd), targets, rlse, to64(dloss), N, C, V, chunk);
      assert.ok(rc.some((x) => x === 1), 'test data hits the argmax somewhere');

      const w = uploadWeight(gpu, host, 't.w');
      const bInp = gpu.f32(inp, 't.inp'), bT = gpu.u32(targets, 't.tg'), bDl = gpu.f32(dloss, 't.dl');
      const bL = gpu.f32(N, 't.l'), bLse = gpu.f32(N, 't.lse'), bC = gpu.f32(N, 't.c'), bD = gpu.f32(dinp0, 't.d');
      const keep = op.xentTuning.kernel;
      op.xentTuning.kernel = kernel;
      try {
        await gpu.scoped('xent', () => {
          // with the forward's ticket (grad: more than one chunk accumulates the gradient in the
          // forward; one chunk leaves its logits in the scratch for the backward)
          const ticket = op.xent_forward(gpu, bL, bLse, bC, bInp, w, bT, N, C, V, chunk, { grad: true });
          assert.equal(ticket.grad, V > chunk, 'the gradient is accumulated in the forward exactly when there are several chunks');
          op.xent_backward(gpu, bD, bInp, w, bT, bLse, bDl, N, C, V, chunk, ticket);
        });
      } finally {
        op.xentTuning.kernel = keep;
      }
      assertClose('xent losses', await gpu.readF32(bL, N), rl, TOL.f32sum);
      assertClose('xent lse', await gpu.readF32(bLse, N), rlse, TOL.f32sum);
      assert.deepEqual(Array.from(await gpu.readF32(bC, N)), Array.from(rc), 'xent correct');
      assertClose('xent dinp', await gpu.readF32(bD, N * C), rd, TOL.f32sum);
      for (const b of [w.buf, bInp, bT, bDl, bL, bLse, bC, bD]) gpu.destroy(b);
    });
  }
}

test('gpu xent: repeated calls and a larger N reuse/grow the cached scratch', async () => {
  const gpu = await testGpu();
  for (const [N, chunk] of [[4, 16], [13, 16], [4, 50], [13, 16]] as const) {
    const C = 24, V = 50;
    const inp = randn32(N * C, N + chunk), w = randn32(V * C, 7);
    const targets = Uint32Array.from({ length: N }, (_, n) => (n * 7) % V);
    const rl = new Float64Array(N), rlse = new Float64Array(N), rc = new Float64Array(N);
    ref.xent_forward(rl, rlse, rc, to64(inp), to64(w), targets, N, C, V, chunk);
    const qw = uploadWeight(gpu, quantize(w, V, C, 'f32'), 't.w');
    const bInp = gpu.f32(inp, 't.inp'), bT = gpu.u32(targets, 't.tg');
    const bL = gpu.f32(N, 't.l'), bLse = gpu.f32(N, 't.lse'), bC = gpu.f32(N, 't.c');
    await gpu.scoped('xent', () => op.xent_forward(gpu, bL, bLse, bC, bInp, qw, bT, N, C, V, chunk));
    assertClose(`xent losses N=${N} chunk=${chunk}`, await gpu.readF32(bL, N), rl, TOL.f32sum);
    for (const b of [qw.buf, bInp, bT, bL, bLse, bC]) gpu.destroy(b);
  }
});

test('gpu xent_backward: the forward\'s last logits chunk or accumulated gradient only with a fresh ticket', async () => {
  const gpu = await testGpu();
  for (const [N, C, V, chunk] of [[13, 40, 37, 8], [9, 32, 300, 300]] as const) {
    const inp = randn32(N * C, V), other = randn32(N * C, V + 1), wRaw = randn32(V * C, V + 2);
    const w = uploadWeight(gpu, quantize(wRaw, V, C, 'q8'), 't.w');
    const targets = Uint32Array.from({ length: N }, (_, n) => (n * 5) % V);
    const bInp = gpu.f32(inp, 't.inp'), bOther = gpu.f32(other, 't.other'), bT = gpu.u32(targets, 't.tg'), bDl = gpu.f32(randn32(N, 3), 't.dl');
    const bL = gpu.f32(N, 't.l'), bLse = gpu.f32(N, 't.lse'), bC = gpu.f32(N, 't.c'), bL2 = gpu.f32(N, 't.l2'), bLse2 = gpu.f32(N, 't.lse2');
    const run = async (mode: 'recompute' | 'fresh' | 'stale' | 'grad' | 'grad-stale'): Promise<Float32Array> => {
      const bD = gpu.f32(N * C, 't.d');
      let linears = -1;
      const grad = mode.startsWith('grad');
      const rec = () => {
        const ticket = op.xent_forward(gpu, bL, bLse, bC, bInp, w, bT, N, C, V, chunk, { grad });
        if (mode === 'grad-stale') op.xent_forward(gpu, bL2, bLse2, bC, bOther, w, bT, N, C, V, chunk);
        // stale: another forward (other rows) overwrote the scratch in between
        if (mode === 'stale') op.xent_forward(gpu, bL2, bLse2, bC, bOther, w, bT, N, C, V, chunk);
        op.xent_backward(gpu, bD, bInp, w, bT, bLse, bDl, N, C, V, chunk, mode === 'recompute' ? null : ticket);
      };
      if (gpu.startProfile()) {
        rec();
        linears = [...(await gpu.stopProfile()).entries()].filter(([k]) => k.startsWith('linear_') && k.endsWith('linear_forward')).reduce((a, [, v]) => a + v.count, 0);
      } else await gpu.scoped('xent', rec);
      const nChunks = Math.ceil(V / chunk), g = nChunks > 1; // the grad path runs with several chunks only
      const expect = {
        recompute: 2 * nChunks, fresh: 2 * nChunks - 1, stale: 3 * nChunks,
        grad: g ? nChunks : 2 * nChunks - 1, 'grad-stale': 3 * nChunks,
      }[mode];
      if (linears >= 0) assert.equal(linears, expect, `${mode} V=${V} chunk=${chunk}: lm_head chunk matmuls`);
      const d = await gpu.readF32(bD, N * C);
      gpu.destroy(bD);
      return d;
    };
    const a = await run('recompute'), b = await run('fresh'), c = await run('stale'), d = await run('grad'), e = await run('grad-stale');
    assert.deepEqual(Array.from(b), Array.from(a), `fresh ticket V=${V}: bitwise equal to recomputing`);
    assert.deepEqual(Array.from(c), Array.from(a), `stale ticket V=${V}: recomputed, bitwise equal`);
    assert.deepEqual(Array.from(e), Array.from(a), `stale grad ticket V=${V}: recomputed, bitwise equal`);
    assertClose(`grad in the forward V=${V}: = recomputing`, d, a, TOL.f32sum);
    for (const x of [w.buf, bInp, bOther, bT, bDl, bL, bLse, bC, bL2, bLse2]) gpu.destroy(x);
  }
});
