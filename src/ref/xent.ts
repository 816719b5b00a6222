// CPU twin of shaders/xent.wgsl + src/ops/xent.ts: masked next-token cross-entropy over the
// lm_head logits, computed straightforwardly (no chunking; `chunk` is accepted and ignored).
// Legend: N rows (B*T), C hidden, V vocab. w is the dequantized f32 lm_head (V, C).
// Arithmetic in float64.
import type { IVec, Vec } from './types.ts';

/** Target id that contributes no loss and no gradient. */
export const XENT_IGNORE = 0xffffffff;

function target(targets: IVec, n: number, V: number): number {
  const t = targets[n] >>> 0;
  if (t !== XENT_IGNORE && t >= V) throw new Error(`xent: target ${t} at row ${n} is outside the vocab (V = ${V})`);
  return t;
}

/** logits row n (V) = inp[n] · wᵀ */
function logitsRow(out: Float64Array, inp: Vec, w: Vec, n: number, C: number, V: number): void {
  for (let v = 0; v < V; v++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += inp[n * C + c] * w[v * C + c];
    out[v] = s;
  }
}

/**
 * losses (N) = lse − logit[target]; lse (N) = logsumexp(logits[n]) (every row); correct (N) = 1 if
 * argmax (first on ties) = target. losses and correct are 0 for an ignored target.
 */
export function xent_forward(
  losses: Vec, lse: Vec, correct: Vec, inp: Vec, w: Vec, targets: IVec, N: number, C: number, V: number, _chunk: number,
): void {
  const z = new Float64Array(V);
  for (let n = 0; n < N; n++) {
    logitsRow(z, inp, w, n, C, V);
    let m = -Infinity, a = -1;
    for (let v = 0; v < V; v++) if (z[v] > m) { m = z[v]; a = v; }
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(z[v] - m);
    const l = m + Math.log(s);
    lse[n] = l;
    const t = target(targets, n, V);
    if (t === XENT_IGNORE) {
      losses[n] = 0;
      correct[n] = 0;
    } else {
      losses[n] = l - z[t];
      correct[n] = a === t ? 1 : 0;
    }
  }
}

/** dinp (N, C) += Σ_v (softmax − onehot(target))[n, v] · dloss[n] · w[v]   (rows with ignored targets add 0) */
export function xent_backward(
  dinp: Vec, inp: Vec, w: Vec, targets: IVec, lse: Vec, dloss: Vec, N: number, C: number, V: number, _chunk: number,
): void {
  const z = new Float64Array(V);
  for (let n = 0; n < N; n++) {
    const t = target(targets, n, V);
    if (t === XENT_IGNORE) continue;
    logitsRow(z, inp, w, n, C, V);
    for (let v = 0; v < V; v++) {
      const d = (Math.exp(z[v] - lse[n]) - (v === t ? 1 : 0)) * dloss[n];
      for (let c = 0; c < C; c++) dinp[n * C + c] += d * w[v * C + c];
    }
  }
}
