// src/model/quant.ts: exact layout of q8/q4 blocks and round-trip error bounds (≤ d/2 per block).
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { blocksPerRow, bytesOf, dequantize, quantize, type QFormat } from '../../src/model/quant.ts';
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
  const cases: [QFormat, number][] = [['f32', 6 * 40 * 4], ['q8', 6 * 2 * 36], ['q4', 6 * 2 * 20]];
  for (const [fmt, bytes] of cases) assert.equal(bytesOf(fmt, 6, 40), bytes);
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
