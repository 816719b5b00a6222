// src/model/quant.ts: exact layout of q8/q4 blocks and round-trip error bounds (≤ d/2 per block);
// f16: exact layout (two halves per word, odd rows padded), round to nearest even, range errors.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { blocksPerRow, bytesOf, dequantize, quantize, type QFormat } from '../../src/model/quant.ts';
import { f16ToF32, f32ToF16 } from '../../src/model/half.ts';
import { randn32 } from '../util.ts';

function checkBound(format: 'q8' | 'q4', rows: number, cols: number, scale: number, seed: number) {
  const w = randn32(rows * cols, seed, scale);
  if (rows > 1) w.fill(0, cols, Math.min(2 * cols, rows * cols)); // an all-zero row
  const h = quantize(w, rows, cols, format);
  assert.equal(h.data.byteLength, bytesOf(format, rows, cols));
  const back = dequantize(h);
  const nb = blocksPerRow(cols), W = format === 'q8' ? 9 : 5, qmax = format === 'q8' ? 127 : 7;
  const f = new Float32Array((h.data as Uint32Array).buffer);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const d = f[(r * nb + b) * W];
      let amax = 0;
      for (let c = b * 32; c < Math.min(cols, b * 32 + 32); c++) amax = Math.max(amax, Math.abs(w[r * cols + c]));
      assert.ok(Math.abs(d - amax / qmax) <= 1e-7 * amax, `scale of block (${r},${b}): ${d} vs ${amax / qmax}`);
      for (let c = b * 32; c < Math.min(cols, b * 32 + 32); c++) {
        const err = Math.abs(back[r * cols + c] - w[r * cols + c]);
        assert.ok(err <= d / 2 * (1 + 1e-5) + 1e-30, `${format} (${r},${c}): |err| ${err} > d/2 = ${d / 2}`);
      }
    }
  }
}

for (const [rows, cols] of [[1, 1], [3, 32], [5, 33], [7, 100], [4, 896]] as const) {
  for (const format of ['q8', 'q4'] as const) {
    test(`quant ${format} round trip (${rows},${cols}) error ≤ d/2`, () => {
      checkBound(format, rows, cols, 0.7, rows * 100 + cols);
      checkBound(format, rows, cols, 3e-3, rows * 7 + cols);
    });
  }
}

test('quant f32 is identity and bytesOf', () => {
  const w = randn32(6 * 7, 1);
  const h = quantize(w, 6, 7, 'f32');
  assert.deepEqual(Array.from(dequantize(h)), Array.from(w));
  const cases: [QFormat, number][] = [['f32', 6 * 40 * 4], ['q8', 6 * 2 * 36], ['q4', 6 * 2 * 20], ['f16', 6 * 40 * 2]];
  for (const [fmt, bytes] of cases) assert.equal(bytesOf(fmt, 6, 40), bytes);
  assert.equal(bytesOf('f16', 3, 7), 3 * 4 * 4); // odd rows: 7 halves padded to 8
});

for (const [rows, cols] of [[1, 1], [3, 2], [5, 33], [7, 100], [4, 896]] as const) {
  test(`quant f16 round trip (${rows},${cols}): each value is its f16 rounding, rel err ≤ 2^-11`, () => {
    for (const [scale, seed] of [[0.7, 1], [3e-3, 2], [3000, 3]] as const) {
      const w = randn32(rows * cols, rows * 100 + cols + seed, scale);
      const h = quantize(w, rows, cols, 'f16');
      assert.ok(h.data instanceof Uint32Array);
      assert.equal(h.data.byteLength, bytesOf('f16', rows, cols));
      const back = dequantize(h);
      assert.equal(back.length, rows * cols);
      for (let i = 0; i < w.length; i++) {
        assert.equal(back[i], f16ToF32(f32ToF16(w[i])), `f16 (${i}): ${back[i]} is not the f16 rounding of ${w[i]}`);
        if (Math.abs(w[i]) >= 2 ** -14) assert.ok(Math.abs(back[i] - w[i]) <= Math.abs(w[i]) * 2 ** -11, `f16 (${i}): rel err of ${w[i]} → ${back[i]}`);
      }
    }
  });
}

test('quant f16 exact bit layout and rounding (docs/ENGINE.md)', () => {
  // row 0: 1, -2, 0.5, 65504, 2^-24 (smallest subnormal); row 1: ties and overflow-free big values
  const tie0 = 1 + 2 ** -11, tie1 = 1 + 3 * 2 ** -11; // halfway cases: to even → 1.0 and 1 + 2^-9
  const w = Float32Array.from([1, -2, 0.5, 65504, 2 ** -24, tie0, tie1, -0, 65519, -1e-9]);
  const h = quantize(w, 2, 5, 'f16').data as Uint32Array;
  assert.equal(h.length, 6); // 2 rows × ceil(5/2) words
  assert.equal(h[0], 0xc0003c00); // element 0 (1.0) low, element 1 (-2) high
  assert.equal(h[1], 0x7bff3800); // 0.5, 65504
  assert.equal(h[2], 0x00000001); // 2^-24, then the +0 pad half
  assert.equal(h[3], 0x3c023c00); // ties to even: 1.0, 1 + 2^-9
  assert.equal(h[4], 0x7bff8000); // -0, 65519 → 65504 (below the rounding midpoint to Inf)
  assert.equal(h[5], 0x00008000); // -1e-9 underflows to -0, pad +0
  assert.throws(() => quantize(Float32Array.from([1, 65520]), 1, 2, 'f16'), /outside the f16 range/);
  assert.throws(() => quantize(Float32Array.from([-1e6]), 1, 1, 'f16'), /outside the f16 range/);
  // non-finite input stays non-finite (not an error: it was never a number in range)
  const inf = dequantize(quantize(Float32Array.from([Infinity, NaN]), 1, 2, 'f16'));
  assert.equal(inf[0], Infinity);
  assert.ok(Number.isNaN(inf[1]));
});

test('quant exact bit layout (docs/ENGINE.md)', () => {
  // one row, 33 columns: block 0 = values, block 1 = one value + 31 zero pads
  const w = new Float32Array(33);
  for (let i = 0; i < 32; i++) w[i] = (i - 16) / 16; // absmax 1 at i=0
  w[32] = -0.5;
  const q8 = quantize(w, 1, 33, 'q8').data as Uint32Array;
  assert.equal(q8.length, 18);
  assert.equal(new Float32Array(q8.buffer)[0], Math.fround(1 / 127));
  // element 4w+j in bits 8j..: element 0 = round(-127) = -127 → 0x81; element 1 = round(-15/16·127 = -119.06) = -119 → 0x89
  assert.equal(q8[1] & 0xff, 0x81);
  assert.equal((q8[1] >>> 8) & 0xff, 0x89);
  assert.equal(new Float32Array(q8.buffer)[9], Math.fround(0.5 / 127));
  assert.equal(q8[10], 0x81); // -127, the rest padded zeros
  for (let i = 11; i < 18; i++) assert.equal(q8[i], 0);
  const q4 = quantize(w, 1, 33, 'q4').data as Uint32Array;
  assert.equal(q4.length, 10);
  assert.equal(new Float32Array(q4.buffer)[0], Math.fround(1 / 7));
  // element 0: round(-7) = -7 → c = 1; element 1: -15/16·7 = -6.5625 → -7 → 1; element 2: -14/16·7 = -6.125 → -6 → 2
  assert.equal(q4[1] & 0xf, 1);
  assert.equal((q4[1] >>> 4) & 0xf, 1);
  assert.equal((q4[1] >>> 8) & 0xf, 2);
  // block 1: element 0 = -7 → 1; padding codes are 8 (value 0)
  assert.equal(q4[6], 0x88888881);
  assert.equal(q4[7], 0x88888888);
});
