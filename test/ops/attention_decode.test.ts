// attention_decode (KV-cache attention of new query rows): the reference equals the training
// attention (src/ref/attention.ts) on the same rows; GPU vs reference on odd shapes — one decode
// row, prefill chunks, caches longer than one tile, GQA groups, HS from 1 to 128, for both entry
// points: tiled (workgroups of 32 / 64 / 128 threads, 1 to 4 head dims per thread) and split (keys
// across 8 / 16 / 32 threads, fewer keys than threads) — with
// NaN in every cache row past the last visible one (they must never be read).
// Legend: NQ query rows at positions t0 .. t0+NQ−1, NH heads, NKV kv heads, HS head size.
import { test } from '../harness.ts';
import * as ref from '../../src/ref/attention_decode.ts';
import { attention_forward } from '../../src/ref/attention.ts';
import * as op from '../../src/ops/attention_decode.ts';
import { assertClose, randn32, testGpu, to64, TOL } from '../util.ts';
import assert from 'node:assert/strict';
import { unrollLoops } from '../../src/ops/util.ts';

test('unrollLoops: marked one-line loops with a known bound become constant-index blocks; others stay', () => {
  const src = [
    '  for (var j = 0u; j < HQ; j++) { acc[j] += x[j]; } //#unroll',
    '  for (var j = 0u; j < HQ; j++) { acc[j] += x[j]; }',
    '  for (var i = 0u; i < WG; i++) { m = max(m, s[i]); } //#unroll',
  ].join('\n');
  const out = unrollLoops(src, { HQ: 3 }).split('\n');
  assert.equal(out[0], '  { const j = 0u; acc[j] += x[j]; } { const j = 1u; acc[j] += x[j]; } { const j = 2u; acc[j] += x[j]; }');
  assert.equal(out[1], '  for (var j = 0u; j < HQ; j++) { acc[j] += x[j]; }', 'unmarked: unchanged');
  assert.equal(out[2], '  for (var i = 0u; i < WG; i++) { m = max(m, s[i]); } //#unroll', 'bound not given: unchanged');
  assert.equal(unrollLoops(src, { HQ: 0 }).split('\n')[0], '  ', 'zero trips: nothing');
  assert.throws(() => unrollLoops(src, { HQ: 65 }), /HQ = 65 must be an integer in 0\.\.64/);
});

test('ref attention_decode == causal attention_forward rows t0.. (f64)', () => {
  const T = 23, NH = 6, NKV = 2, HS = 5, KVD = NKV * HS;
  const q = to64(randn32(T * NH * HS, 1, 2)), k = to64(randn32(T * KVD, 2, 2)), v = to64(randn32(T * KVD, 3));
  const want = new Float64Array(T * NH * HS), lse = new Float64Array(NH * T);
  attention_forward(want, lse, q, k, v, new Uint32Array(T).fill(1), 1, T, NH, NKV, HS);
  for (const [t0, NQ] of [[0, T], [0, 1], [7, 5], [22, 1]]) {
    const out = new Float64Array(NQ * NH * HS);
    ref.attention_decode_forward(out, q.subarray(t0 * NH * HS), k, v, NQ, t0, NH, NKV, HS);
    assertClose(`t0=${t0} NQ=${NQ}`, out, want.subarray(t0 * NH * HS, (t0 + NQ) * NH * HS), { atol: 1e-12, rtol: 1e-10 });
  }
});

interface Shape { NQ: number; t0: number; NH: number; NKV: number; HS: number; wg?: number }
const shapes: Shape[] = [
  { NQ: 1, t0: 0, NH: 1, NKV: 1, HS: 4 },
  { NQ: 1, t0: 9, NH: 8, NKV: 4, HS: 8 }, // stories260K-like decode step
  { NQ: 5, t0: 0, NH: 8, NKV: 4, HS: 16 }, // prefill from an empty cache
  { NQ: 3, t0: 126, NH: 4, NKV: 2, HS: 16 }, // crosses the first 128-key tile
  { NQ: 1, t0: 300, NH: 3, NKV: 1, HS: 3 }, // 3 tiles, odd head size
  { NQ: 2, t0: 40, NH: 2, NKV: 2, HS: 1 },
  { NQ: 7, t0: 250, NH: 4, NKV: 1, HS: 64 },
  { NQ: 1, t0: 129, NH: 2, NKV: 1, HS: 128 }, // one key group
  { NQ: 33, t0: 17, NH: 6, NKV: 3, HS: 40 }, // HS not dividing the workgroup
  { NQ: 2, t0: 70, NH: 4, NKV: 2, HS: 8, wg: 64 }, // other workgroup sizes (tiles of 64 / 128 keys)
  { NQ: 3, t0: 126, NH: 4, NKV: 2, HS: 16, wg: 128 },
  { NQ: 1, t0: 200, NH: 2, NKV: 1, HS: 100, wg: 64 }, // 2 dims per thread, one ragged
];

const splitShapes: Array<{ NQ: number; t0: number; NH: number; NKV: number; HS: number; split: true; wg?: number }> = [
  ...shapes.filter((s) => !s.wg).map((s) => ({ ...s, split: true as const })),
  { NQ: 2, t0: 70, NH: 4, NKV: 2, HS: 8, split: true, wg: 32 }, // other split workgroup sizes
  { NQ: 1, t0: 5, NH: 2, NKV: 1, HS: 128, split: true, wg: 16 }, // fewer keys than threads
  { NQ: 1, t0: 300, NH: 2, NKV: 1, HS: 128, split: true, wg: 8 },
];

for (const s of [...shapes.map((x) => ({ ...x, split: false })), ...splitShapes]) {
  const { NQ, t0, NH, NKV, HS, split } = s;
  const wg = s.wg ?? (split ? op.attentionDecodeTuning.splitWg || (HS <= 32 ? 8 : 16) : op.attentionDecodeTuning.wg);
  test(`gpu attention_decode ${split ? 'split' : 'tiled'} NQ=${NQ} t0=${t0} NH=${NH} NKV=${NKV} HS=${HS} WG=${wg}`, async () => {
    const gpu = await testGpu();
    const KVD = NKV * HS, T = t0 + NQ, maxT = T + 5;
    const q = randn32(NQ * NH * HS, 11, 2);
    const kc = randn32(maxT * KVD, 12, 2), vc = randn32(maxT * KVD, 13);
    kc.fill(NaN, T * KVD);
    vc.fill(NaN, T * KVD);
    const want = new Float32Array(NQ * NH * HS);
    ref.attention_decode_forward(want, q, kc, vc, NQ, t0, NH, NKV, HS);
    const out = gpu.f32(NQ * NH * HS, 't.out');
    const keep = { ...op.attentionDecodeTuning };
    Object.assign(op.attentionDecodeTuning, split ? { split, splitWg: wg } : { split, wg });
    try {
      await gpu.scoped('attention_decode', () =>
        op.attention_decode_forward(gpu, out, gpu.f32(q, 't.q'), gpu.f32(kc, 't.kc'), gpu.f32(vc, 't.vc'), NQ, t0, NH, NKV, HS));
    } finally {
      Object.assign(op.attentionDecodeTuning, keep);
    }
    assertClose('attention_decode out', await gpu.readF32(out, NQ * NH * HS), want, TOL.f32sum);
  });
}
