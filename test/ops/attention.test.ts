// attention: reference backward vs central finite differences (f64); GPU forward/backward vs the
// reference on odd shapes with right-, left- and full padding, several lane/tile configurations.
// Legend: B batch, T time, NH heads, NKV kv heads, HS head size.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import * as ref from '../../src/ref/attention.ts';
import * as op from '../../src/ops/attention.ts';
import { assertClose, finiteDiff, project, randn32, testGpu, to64, TOL } from '../util.ts';
import { fixedSubgroupSize } from '../../src/ops/util.ts';
import { MemoryTuneCache, autotuneStats } from '../../src/gpu/autotune.ts';

/** valid (B*T) from per-sequence masks given as strings of '1'/'0', or lengths (right padding). */
function mask(T: number, rows: Array<number | string>): Uint32Array {
  const m = new Uint32Array(rows.length * T);
  rows.forEach((r, b) => {
    for (let t = 0; t < T; t++) m[b * T + t] = typeof r === 'number' ? +(t < r) : +(r[t] === '1');
  });
  return m;
}

test('ref attention_backward matches finite differences (f64)', () => {
  const B = 2, T = 5, NH = 4, NKV = 2, HS = 3;
  const N = B * T;
  // batch 0: key 3 padded; batch 1: key 0 padded (so query 0 of batch 1 sees nothing)
  const valid = mask(T, ['11101', '01111']);
  const q = to64(randn32(N * NH * HS, 1, 2)), k = to64(randn32(N * NKV * HS, 2, 2)), v = to64(randn32(N * NKV * HS, 3));
  const w = to64(randn32(N * NH * HS, 4));
  const out = new Float64Array(N * NH * HS), lse = new Float64Array(B * NH * T);
  const loss = () => {
    const o = new Float64Array(N * NH * HS), l = new Float64Array(B * NH * T);
    ref.attention_forward(o, l, q, k, v, valid, B, T, NH, NKV, HS);
    return project(o, w);
  };
  ref.attention_forward(out, lse, q, k, v, valid, B, T, NH, NKV, HS);
  // the empty query row is 0 and finite
  for (let h = 0; h < NH; h++) for (let d = 0; d < HS; d++) assert.equal(out[(1 * T + 0) * NH * HS + h * HS + d], 0);
  const dq = new Float64Array(q.length), dk = new Float64Array(k.length), dv = new Float64Array(v.length);
  ref.attention_backward(dq, dk, dv, w, q, k, v, out, lse, valid, B, T, NH, NKV, HS);
  for (const [name, x, g] of [['dq', q, dq], ['dk', k, dk], ['dv', v, dv]] as const) {
    const [idx, num] = finiteDiff(loss, x, 200);
    assertClose(`attention fd ${name}`, idx.map((i) => g[i]), num, TOL.fd);
  }
  // padded keys get no gradient
  for (const s of [3, T + 0]) for (let e = 0; e < NKV * HS; e++) {
    assert.equal(dk[s * NKV * HS + e], 0);
    assert.equal(dv[s * NKV * HS + e], 0);
  }
});

interface Shape { B: number; T: number; NH: number; NKV: number; HS: number; rows: Array<number | string>; bk?: number }
// Head sizes are shared between shapes (each head size is one set of pipelines to compile, seconds
// on CPU drivers): 18 = 2 lanes of 3 vec4 chunks, the last chunk partial and one chunk pure padding;
// 16 = 1 lane of 4 chunks; 64 = 4 lanes; 128 = 8 lanes; 4 and 12: 1 and 3 chunks.
const shapes: Shape[] = [
  { B: 1, T: 1, NH: 1, NKV: 1, HS: 18, rows: [1] },
  { B: 2, T: 1, NH: 2, NKV: 1, HS: 16, rows: [1, 0] },
  { B: 2, T: 5, NH: 4, NKV: 2, HS: 18, rows: ['11101', '01111'] },
  { B: 2, T: 7, NH: 4, NKV: 2, HS: 16, rows: [7, 4] },
  { B: 3, T: 33, NH: 6, NKV: 2, HS: 16, rows: [33, 20, 0] },
  { B: 1, T: 64, NH: 9, NKV: 3, HS: 64, rows: [57] },
  { B: 2, T: 20, NH: 2, NKV: 1, HS: 128, rows: [20, 13] },
  { B: 2, T: 19, NH: 3, NKV: 3, HS: 18, rows: ['0001111111111111111', 19] }, // left padding
  { B: 2, T: 19, NH: 4, NKV: 2, HS: 16, rows: ['0001111111111111111', '1111111111111110011'] }, // padding inside, subgroup forms
  // head sizes of 1 and 3 quads: the subgroup forms' register-held rows (HC < 4)
  { B: 2, T: 19, NH: 2, NKV: 1, HS: 4, rows: [19, '1111111111111110011'] },
  { B: 2, T: 21, NH: 4, NKV: 2, HS: 12, rows: ['000111111111111111111', 17] },
  // tiles that do not divide T (the tile height is a runtime value: no new pipelines)
  { B: 3, T: 33, NH: 6, NKV: 2, HS: 16, rows: [33, 20, 0], bk: 3 },
  { B: 1, T: 21, NH: 4, NKV: 1, HS: 18, rows: [18], bk: 1 },
  { B: 2, T: 70, NH: 2, NKV: 2, HS: 64, rows: [70, 0], bk: 7 },
];

// every form: 'plain' (workgroup tiles), 'wide' (the same kernels with 8 lanes per row: 8 rows per
// workgroup), 'split' (dk/dv by one workgroup per query head of the group, partials summed: the
// shapes with NH > NKV; plain where NH = NKV) and 'auto' (the subgroup kernels where subgroups are
// 8 wide and HS % 4 == 0 — HS 4, 12, 16, 64, 128 here; HS 18 and SwiftShader run the plain ones)
for (const form of ['plain', 'wide', 'split', 'auto'] as const) for (const s of shapes) {
  const { B, T, NH, NKV, HS, rows } = s;
  if (form === 'auto' && s.bk) continue; // the tile height is a plain-kernel parameter
  test(`gpu attention ${form} B=${B} T=${T} NH=${NH} NKV=${NKV} HS=${HS} valid=[${rows}]${s.bk ? ` bk=${s.bk}` : ''}`, async () => {
    const gpu = await testGpu();
    const N = B * T, nq = N * NH * HS, nk = N * NKV * HS, nl = B * NH * T;
    const valid = mask(T, rows);
    const q = randn32(nq, 11, 2), k = randn32(nk, 12, 2), v = randn32(nk, 13), dout = randn32(nq, 14);
    const dq0 = randn32(nq, 15), dk0 = randn32(nk, 16), dv0 = randn32(nk, 17); // non-zero: backward adds
    // reference in f64 from the same f32 inputs
    const out = new Float64Array(nq), lse = new Float64Array(nl);
    ref.attention_forward(out, lse, to64(q), to64(k), to64(v), valid, B, T, NH, NKV, HS);
    const dq = to64(dq0), dk = to64(dk0), dv = to64(dv0);
    ref.attention_backward(dq, dk, dv, to64(dout), to64(q), to64(k), to64(v), out, lse, valid, B, T, NH, NKV, HS);

    const bQ = gpu.f32(q, 't.q'), bK = gpu.f32(k, 't.k'), bV = gpu.f32(v, 't.v'), bValid = gpu.u32(valid, 't.valid');
    const bOut = gpu.f32(randn32(nq, 18), 't.out'), bLse = gpu.f32(randn32(nl, 19), 't.lse'); // garbage: forward overwrites
    const bDout = gpu.f32(dout, 't.dout'), bDq = gpu.f32(dq0, 't.dq'), bDk = gpu.f32(dk0, 't.dk'), bDv = gpu.f32(dv0, 't.dv');
    op.attentionTuning.bk = s.bk ?? 0;
    Object.assign(op.attentionTuning, { forward: form, dq: form, dkv: form });
    try {
      await gpu.scoped('attention', () => {
        op.attention_forward(gpu, bOut, bLse, bQ, bK, bV, bValid, B, T, NH, NKV, HS);
        op.attention_backward(gpu, bDq, bDk, bDv, bDout, bQ, bK, bV, bOut, bLse, bValid, B, T, NH, NKV, HS);
      });
    } finally {
      Object.assign(op.attentionTuning, { bk: 0, forward: 'auto', dq: 'auto', dkv: 'auto' });
    }
    assertClose('attention out', await gpu.readF32(bOut, nq), out, TOL.f32sum);
    assertClose('attention lse', await gpu.readF32(bLse, nl), lse, TOL.f32sum);
    assertClose('attention dq', await gpu.readF32(bDq, nq), dq, TOL.f32sum);
    assertClose('attention dk', await gpu.readF32(bDk, nk), dk, TOL.f32sum);
    assertClose('attention dv', await gpu.readF32(bDv, nk), dv, TOL.f32sum);
  });
}

// which kernels 'auto' runs: the subgroup forms where subgroups are exactly 8 wide (HS % 4 == 0) or
// 4 wide (HS % 4 == 0, HS ≤ 64: pipelines attention_sg_w4), the plain ones elsewhere
test('gpu attention auto runs the subgroup forms where they can run (8 wide; 4 wide up to HS 64)', async () => {
  const gpu = await testGpu();
  const S = fixedSubgroupSize(gpu);
  for (const HS of [16, 64, 128, 18]) {
    const B = 1, T = 9, NH = 2, NKV = 1, N = B * T;
    const q = gpu.f32(randn32(N * NH * HS, 1), 't.q'), k = gpu.f32(randn32(N * NKV * HS, 2), 't.k'), v = gpu.f32(randn32(N * NKV * HS, 3), 't.v');
    const out = gpu.f32(N * NH * HS, 't.out'), lse = gpu.f32(B * NH * T, 't.lse'), valid = gpu.u32(new Uint32Array(N).fill(1), 't.valid');
    const dq = gpu.f32(N * NH * HS, 't.dq'), dk = gpu.f32(N * NKV * HS, 't.dk'), dv = gpu.f32(N * NKV * HS, 't.dv');
    if (!gpu.startProfile()) return; // no timestamp queries: nothing to observe
    op.attention_forward(gpu, out, lse, q, k, v, valid, B, T, NH, NKV, HS);
    op.attention_backward(gpu, dq, dk, dv, out, q, k, v, out, lse, valid, B, T, NH, NKV, HS);
    const names = [...(await gpu.stopProfile()).keys()].filter((n) => !n.includes('prep')).sort();
    const want = HS % 4 === 0 && (S === 8 || (S === 4 && HS <= 64)) ? (S === 4 ? 'attention_sg_w4.' : 'attention_sg.') : 'attention.';
    assert.equal(names.length, 3, names.join(', '));
    assert.ok(names.every((n) => n.startsWith(want)), `HS=${HS}, subgroups ${S}: ${want}* (${names.join(', ')})`);
    for (const b of [q, k, v, out, lse, valid, dq, dk, dv]) gpu.destroy(b);
  }
});

// tuneAttention: a timed trial of the subgroup form, the plain one and the wide one per direction and
// shape class (the forms that can run), cached per adapter; calls then run the winner
test('gpu attention tuneAttention: trial per direction and class, cached; calls run the tuned form', async () => {
  const gpu = await testGpu();
  op.clearAttentionTuning(gpu);
  const cache = new MemoryTuneCache();
  const shape = { B: 1, T: 24, NH: 4, NKV: 2, HS: 16 };
  const S = fixedSubgroupSize(gpu);
  const sgCan = S === 8 || S === 4;
  const trials0 = autotuneStats.trials;
  const table = await op.tuneAttention(gpu, [shape, { ...shape, T: 30 }], { cache, reps: 2 }); // T 24 and 30: one class (t64)
  const cls = op.attentionShapeClass(16, 24);
  assert.equal(cls, 'hs16.t64');
  // candidates: sg where it can run, plain, and wide (HS 16 runs 1 lane per row by default); the
  // backward also split (NH 4 > NKV 2)
  const forms = sgCan ? ['sg', 'plain', 'wide'] : ['plain', 'wide'];
  assert.equal(autotuneStats.trials - trials0, 2, 'forward and backward, one class');
  assert.ok(forms.includes(table.get(`forward.${cls}`)!) && [...forms, 'split'].includes(table.get(`backward.${cls}`)!), `${[...table]}`);
  const recs = [...cache.map.entries()];
  assert.deepEqual(recs.find(([k]) => k.includes('.forward'))![1].candidates, forms);
  assert.deepEqual(recs.find(([k]) => k.includes('.backward'))![1].candidates, [...forms, 'split']);
  // HS 128 already runs 8 lanes per row: without the subgroup form there is nothing to choose
  if (!sgCan) {
    const t128 = await op.tuneAttention(gpu, [{ B: 1, T: 8, NH: 1, NKV: 1, HS: 128 }], { cache, reps: 1 });
    assert.equal(t128.get(`forward.${op.attentionShapeClass(128, 8)}`), undefined);
  }
  assert.equal(cache.map.size, 2, 'both choices cached');
  await op.tuneAttention(gpu, [shape], { cache });
  assert.equal(autotuneStats.trials - trials0, 2, 'second call: cache hits, no trial');
  // a cached 'plain' choice is what calls of that class run (the cache is what a later process reads)
  for (const rec of cache.map.values()) rec.variant = 'plain';
  op.clearAttentionTuning(gpu);
  await op.tuneAttention(gpu, [shape], { cache });
  const { B, T, NH, NKV, HS } = shape, N = B * T;
  const q = gpu.f32(randn32(N * NH * HS, 1), 't.q'), k = gpu.f32(randn32(N * NKV * HS, 2), 't.k'), v = gpu.f32(randn32(N * NKV * HS, 3), 't.v');
  const out = gpu.f32(N * NH * HS, 't.out'), lse = gpu.f32(B * NH * T, 't.lse'), valid = gpu.u32(new Uint32Array(N).fill(1), 't.valid');
  const dq = gpu.f32(N * NH * HS, 't.dq'), dk = gpu.f32(N * NKV * HS, 't.dk'), dv = gpu.f32(N * NKV * HS, 't.dv');
  try {
    if (gpu.startProfile()) {
      op.attention_forward(gpu, out, lse, q, k, v, valid, B, T, NH, NKV, HS);
      op.attention_backward(gpu, dq, dk, dv, out, q, k, v, out, lse, valid, B, T, NH, NKV, HS);
      const names = [...(await gpu.stopProfile()).keys()];
      assert.ok(names.every((n) => n.startsWith('attention.')), `the tuned plain form ran: ${names.join(', ')}`);
    }
    // another class (T 200: t256) was not tuned: the default (the subgroup form) runs there
    assert.equal(op.attentionTunedForms(gpu).get(`forward.${op.attentionShapeClass(16, 200)}`), undefined);
  } finally {
    op.clearAttentionTuning(gpu);
    for (const b of [q, k, v, out, lse, valid, dq, dk, dv]) gpu.destroy(b);
  }
});
