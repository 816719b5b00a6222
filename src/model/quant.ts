// Frozen-weight quantization (host side): f32 / f16 / q8 / q4 formats, dequantized inside kernels.
// Layout contract: docs/ENGINE.md "Frozen weight formats". A weight is (rows, cols) in Hugging Face
// orientation (out, in). Each row is cut into nb = ceil(cols/32) blocks of 32 consecutive columns
// (the tail block zero-padded); block (r, b) starts at u32 word (r·nb + b)·WORDS.
//   q8: WORDS = 9: [f32 d = absmax/127][8 words of 4 × int8 q, element 4w+j in bits 8j..8j+7 of word 1+w]
//   q4: WORDS = 5: [f32 d = absmax/7][4 words of 8 × 4-bit c = q+8, element 8w+j in bits 4j..4j+3 of word 1+w]
// Rounding is half away from zero; an all-zero block has d = 0 and all codes 0 (q4: c = 8).
//   f16: not blocked: row r is rw = ceil(cols/2) u32 words at word r·rw, each holding two IEEE half
//        values (element 2w in bits 0..15 of word w, element 2w+1 in bits 16..31); a row of odd
//        length ends with a +0 pad half. f32 → f16 rounds to nearest, ties to even (src/model/half.ts);
//        a finite value beyond the f16 range (|x| > 65504 after rounding) is an error, not ±Inf.

import { f16Table, f32ToF16 } from './half.ts';

export type QFormat = 'f32' | 'q8' | 'q4' | 'f16';

export interface QWeightHost {
  format: QFormat;
  /** out features */
  rows: number;
  /** in features */
  cols: number;
  /** f32: Float32Array (rows·cols); q8/q4: Uint32Array (rows·nb·WORDS); f16: Uint32Array (rows·ceil(cols/2)) */
  data: Float32Array | Uint32Array;
}

export const QBLOCK = 32;

/** u32 words per block of 32 weights (f32: 32, f16: 16 — those two are not padded to whole blocks). */
export function wordsPerBlock(format: QFormat): number {
  return format === 'q8' ? 9 : format === 'q4' ? 5 : format === 'f16' ? 16 : 32;
}

/** Blocks per row: ceil(cols / 32). */
export function blocksPerRow(cols: number): number {
  return Math.ceil(cols / QBLOCK);
}

/** Bytes of the stored weight (rows, cols) in `format`. */
export function bytesOf(format: QFormat, rows: number, cols: number): number {
  if (format === 'f32') return rows * cols * 4;
  if (format === 'f16') return rows * Math.ceil(cols / 2) * 4;
  return rows * blocksPerRow(cols) * wordsPerBlock(format) * 4;
}

const roundAway = (v: number): number => (v < 0 ? -Math.round(-v) : Math.round(v));

/** f16: rows of ceil(cols/2) words, two halves per word (element 2w low), round to nearest even. */
function quantizeF16(w: Float32Array, rows: number, cols: number): QWeightHost {
  const rw = Math.ceil(cols / 2);
  const data = new Uint32Array(rows * rw);
  for (let r = 0; r < rows; r++) {
    const row = r * cols, base = r * rw;
    for (let c = 0; c < cols; c++) {
      const v = w[row + c];
      const h = f32ToF16(v);
      if ((h & 0x7fff) === 0x7c00 && Number.isFinite(v)) {
        throw new Error(`quantize f16: weight (${r},${c}) = ${v} is outside the f16 range (±65504); use f32 or q8 for this tensor`);
      }
      data[base + (c >> 1)] |= h << (16 * (c & 1));
    }
  }
  return { format: 'f16', rows, cols, data };
}

/**
 * Quantize w (rows, cols) row-major. For 'f32' the returned data is `w` itself (not copied) when
 * it has exactly rows·cols elements. 'f16' rounds each value to the nearest half (ties to even).
 */
export function quantize(w: Float32Array, rows: number, cols: number, format: QFormat): QWeightHost {
  if (w.length < rows * cols) throw new Error(`quantize: w has ${w.length} values, need rows·cols = ${rows * cols}`);
  if (format === 'f32') {
    return { format, rows, cols, data: w.length === rows * cols ? w : w.slice(0, rows * cols) };
  }
  if (format === 'f16') return quantizeF16(w, rows, cols);
  const nb = blocksPerRow(cols);
  const W = wordsPerBlock(format);
  const data = new Uint32Array(rows * nb * W);
  const f = new Float32Array(data.buffer);
  const qmax = format === 'q8' ? 127 : 7;
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    for (let b = 0; b < nb; b++) {
      const c0 = b * QBLOCK, c1 = Math.min(cols, c0 + QBLOCK);
      let amax = 0;
      for (let c = c0; c < c1; c++) amax = Math.max(amax, Math.abs(w[row + c]));
      const d = Math.fround(amax / qmax); // the stored (f32) scale is the one we round against
      const base = (r * nb + b) * W;
      f[base] = d;
      const inv = d > 0 ? 1 / d : 0;
      if (format === 'q8') {
        for (let c = c0; c < c1; c++) {
          const q = Math.max(-127, Math.min(127, roundAway(w[row + c] * inv)));
          const e = c - c0;
          data[base + 1 + (e >> 2)] |= (q & 0xff) << (8 * (e & 3));
        }
      } else {
        for (let e = 0; e < QBLOCK; e++) {
          const c = c0 + e;
          const q = c < c1 ? Math.max(-8, Math.min(7, roundAway(w[row + c] * inv))) : 0;
          data[base + 1 + (e >> 3)] |= (q + 8) << (4 * (e & 7));
        }
      }
    }
  }
  return { format, rows, cols, data };
}

/** Dequantize to plain f32 (rows, cols) row-major, exactly as the kernels do (d·q in f32). */
export function dequantize(h: QWeightHost): Float32Array {
  const { format, rows, cols } = h;
  if (format === 'f32') return Float32Array.from(h.data as Float32Array);
  const data = h.data as Uint32Array;
  if (format === 'f16') {
    const t = f16Table(), rw = Math.ceil(cols / 2), out = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) out[r * cols + c] = t[(data[r * rw + (c >> 1)] >>> (16 * (c & 1))) & 0xffff];
    }
    return out;
  }
  const f = new Float32Array(data.buffer, data.byteOffset, data.length);
  const nb = blocksPerRow(cols);
  const W = wordsPerBlock(format);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const base = (r * nb + b) * W;
      const d = f[base];
      const c0 = b * QBLOCK, c1 = Math.min(cols, c0 + QBLOCK);
      for (let c = c0; c < c1; c++) {
        const e = c - c0;
        let q: number;
        if (format === 'q8') q = ((data[base + 1 + (e >> 2)] >>> (8 * (e & 3))) << 24) >> 24;
        else q = ((data[base + 1 + (e >> 3)] >>> (4 * (e & 7))) & 15) - 8;
        out[r * cols + c] = Math.fround(d * q);
      }
    }
  }
  return out;
}
