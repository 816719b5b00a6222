// CPU twin of shaders/adamw.wgsl: global squared gradient norm and the AdamW step (PyTorch
// semantics: decoupled weight decay, bias correction with 1-based step t, clip_grad_norm_ factor).
// Legend: n = number of trainable parameters. Arithmetic in float64.
import type { Vec } from './types.ts';

/** out (1) = Σ grads[i]² over grads (n) */
export function global_norm_sq(out: Vec, grads: Vec, n: number): void {
  let s = 0;
  for (let i = 0; i < n; i++) s += grads[i] * grads[i];
  out[0] = s;
}

/**
 * params, m, v (n) updated in place; grads (n); normsq (1) = Σ g². A non-finite normsq (NaN / Inf
 * in grads) skips the step: params, m, v unchanged (as the shader does; the shader also skips when
 * Σ g² overflows f32, which float64 here does not).
 */
export function adamw_step(
  params: Vec, grads: Vec, m: Vec, v: Vec, normsq: Vec, n: number,
  lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, t: number, maxNorm: number,
): void {
  if (!Number.isFinite(normsq[0])) return;
  const scale = maxNorm > 0 ? Math.min(1, maxNorm / (Math.sqrt(normsq[0]) + 1e-6)) : 1;
  const bc1 = 1 - Math.pow(beta1, t);
  const bc2 = 1 - Math.pow(beta2, t);
  for (let i = 0; i < n; i++) {
    const g = grads[i] * scale;
    let p = params[i];
    p -= lr * weightDecay * p;
    const mi = beta1 * m[i] + (1 - beta1) * g;
    const vi = beta2 * v[i] + (1 - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    p -= (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
    params[i] = p;
  }
}
