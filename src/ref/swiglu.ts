// CPU twin of shaders/swiglu.wgsl. Legend: n = N*F elements.
import type { Vec } from './types.ts';

/** out (n) = silu(gate) * up */
export function swiglu_forward(out: Vec, gate: Vec, up: Vec, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    out[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
}

/** dgate (n) += dout·up·silu'(gate); dup (n) += dout·silu(gate) */
export function swiglu_backward(dgate: Vec, dup: Vec, dout: Vec, gate: Vec, up: Vec, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    const s = 1 / (1 + Math.exp(-g));
    dgate[i] += dout[i] * up[i] * s * (1 + g * (1 - s));
    dup[i] += dout[i] * g * s;
  }
}

/** out (N,F) = silu(gu[:, :F]) * gu[:, F:] for gu (N, 2F) rows [gate | up] */
export function swiglu_rows_forward(out: Vec, gu: Vec, N: number, F: number): void {
  for (let r = 0; r < N; r++) {
    for (let j = 0; j < F; j++) {
      const g = gu[2 * r * F + j];
      out[r * F + j] = (g / (1 + Math.exp(-g))) * gu[(2 * r + 1) * F + j];
    }
  }
}
