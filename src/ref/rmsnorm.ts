// CPU twin of shaders/rmsnorm.wgsl. Legend: N rows (B*T), C hidden.
import type { Vec } from './types.ts';

/** out (N,C) = inp · rstd · weight (C); rstd (N) = 1/sqrt(mean_c(inp²) + eps) */
export function rmsnorm_forward(out: Vec, rstd: Vec, inp: Vec, weight: Vec, N: number, C: number, eps: number): void {
  for (let n = 0; n < N; n++) {
    const b = n * C;
    let ss = 0;
    for (let c = 0; c < C; c++) ss += inp[b + c] * inp[b + c];
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    for (let c = 0; c < C; c++) out[b + c] = inp[b + c] * r * weight[c];
  }
}

/** dinp (N,C) += rstd·w·dout − inp·rstd³/C·Σ_c(dout·w·inp)   (weight frozen: no weight grad) */
export function rmsnorm_backward(dinp: Vec, dout: Vec, inp: Vec, weight: Vec, rstd: Vec, N: number, C: number): void {
  for (let n = 0; n < N; n++) {
    const b = n * C;
    const r = rstd[n];
    let dot = 0;
    for (let c = 0; c < C; c++) dot += dout[b + c] * weight[c] * inp[b + c];
    const k = (r * r * r * dot) / C;
    for (let c = 0; c < C; c++) dinp[b + c] += r * weight[c] * dout[b + c] - inp[b + c] * k;
  }
}
