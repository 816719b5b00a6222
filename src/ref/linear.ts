// CPU twin of shaders/linear.wgsl. Legend: N rows, IC in features, OC out features.
// w is the dequantized f32 weight (rows, IC) (src/model/quant.ts dequantize); the op uses rows
// rowOffset .. rowOffset+OC of it.
import type { Vec } from './types.ts';

/** out (N,OC) = inp (N,IC) · w[rowOffset : rowOffset+OC]ᵀ (+ bias (OC)) — overwrites out */
export function linear_forward(out: Vec, inp: Vec, w: Vec, bias: Vec | null, N: number, IC: number, OC: number, rowOffset = 0): void {
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < OC; o++) {
      const wr = (rowOffset + o) * IC;
      let s = bias ? bias[o] : 0;
      for (let i = 0; i < IC; i++) s += inp[n * IC + i] * w[wr + i];
      out[n * OC + o] = s;
    }
  }
}

/** dinp (N,IC) += dout (N,OC) · w[rowOffset : rowOffset+OC] */
export function linear_backward(dinp: Vec, dout: Vec, w: Vec, N: number, IC: number, OC: number, rowOffset = 0): void {
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < OC; o++) {
      const g = dout[n * OC + o];
      const wr = (rowOffset + o) * IC;
      for (let i = 0; i < IC; i++) dinp[n * IC + i] += g * w[wr + i];
    }
  }
}
