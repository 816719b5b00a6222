// Tests for embedding: reference backward vs finite differences; GPU gather (f32 / q8 / q4 tables,
// dequantized in-kernel) and deterministic scatter-add vs reference on odd shapes, repeated and
// out-of-range ids, and with the table bound in row chunks.
import { test } from '../harness.ts';
import * as ref from '../../src/ref/embedding.ts';
import * as op from '../../src/ops/embedding.ts';
import { dequantize, quantize, type QFormat } from '../../src/model/quant.ts';
import { uploadWeight } from '../../src/ops/linear.ts';
import { assertClose, finiteDiff, project, randn32, rng, testGpu, to64, TOL } from '../util.ts';

test('ref embedding_backward matches finite differences (f64)', () => {
  const N = 6, C = 5, V = 4;
  const ids = [2, 0, 2, 3, 2, 0];
  const wte = to64(randn32(V * C, 1)), w = to64(randn32(N * C, 2));
  const loss = () => { const o = new Float64Array(N * C); ref.embedding_forward(o, ids, wte, N, C); return project(o, w); };
  const dwte = new Float64Array(V * C);
  ref.embedding_backward(dwte, w, ids, N, C, V);
  const [idx, num] = finiteDiff(loss, wte);
  assertClose('embedding fd', idx.map((i) => dwte[i]), num, TOL.fd);
});

/** N ids in [0, V) with repeats; `oob` replaces one with an out-of-range id. */
function makeIds(N: number, V: number, seed: number, oob: boolean): Uint32Array {
  const r = rng(seed);
  const ids = Uint32Array.from({ length: N }, () => Math.floor(r() * Math.min(V, Math.max(2, N / 2))));
  if (oob && N > 2) ids[N - 2] = V + 3;
  return ids;
}

async function check(N: number, C: number, V: number, fmt: QFormat, oob: boolean, maxBind?: number): Promise<void> {
  const gpu = await testGpu();
  const seed = N * 1000 + C + V;
  const host = quantize(randn32(V * C, seed, 2), V, C, fmt);
  const table = dequantize(host); // what the kernel must reproduce
  const ids = makeIds(N, V, seed + 1, oob);
  const dout = randn32(N * C, seed + 2), d0 = randn32(V * C, seed + 3); // non-zero: backward must add
  const out = new Float32Array(N * C); ref.embedding_forward(out, ids, table, N, C);
  const dwte = d0.slice(); ref.embedding_backward(dwte, dout, ids, N, C, V);
  const wte = uploadWeight(gpu, host, 't.wte');
  const bIds = gpu.u32(ids, 't.ids'), bOut = gpu.f32(randn32(N * C, seed + 4), 't.out'); // garbage: forward overwrites
  const bDout = gpu.f32(dout, 't.dout'), bD = gpu.f32(d0, 't.dwte');
  await gpu.scoped('embedding', () => {
    op.embedding_forward(gpu, bOut, bIds, wte, N, C, maxBind);
    op.embedding_backward(gpu, bD, bDout, bIds, N, C, V, maxBind);
  });
  assertClose(`embedding out ${fmt}`, await gpu.readF32(bOut, N * C), out);
  assertClose('embedding dwte', await gpu.readF32(bD, V * C), dwte);
  for (const b of [wte.buf, bIds, bOut, bDout, bD]) gpu.destroy(b);
}

// [N, C, V, out-of-range id]
const SHAPES: [number, number, number, boolean][] = [[1, 5, 3, false], [7, 64, 11, true], [33, 97, 50, true], [5, 300, 7, false]];
for (const [N, C, V, oob] of SHAPES) {
  for (const fmt of ['f32', 'q8', 'q4'] as QFormat[]) {
    test(`gpu embedding forward+backward N=${N} C=${C} V=${V} ${fmt}${oob ? ' +oob id' : ''}`, () => check(N, C, V, fmt, oob));
  }
}

// Row chunks: a 1 KiB binding limit splits the table (and dwte) into several dispatches.
for (const fmt of ['f32', 'q8', 'q4'] as QFormat[]) {
  test(`gpu embedding chunked binding N=33 C=97 V=50 ${fmt}`, () => check(33, 97, 50, fmt, true, 1024));
}
