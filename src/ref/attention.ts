// CPU twin of shaders/attention.wgsl: causal grouped-query self-attention with a padding mask.
// Legend: B batch, T time, N = B*T, NH query heads, NKV kv heads (head h uses kv head h / (NH/NKV)),
// HS head size, scale = 1/sqrt(HS). Key s of batch b is visible to query t iff s ≤ t and
// valid[b*T+s] = 1. A query with no visible key: out row 0, lse 0, no gradient contribution.
// Layouts: q, out, dq (N, NH*HS) = (B,T,NH,HS); k, v, dk, dv (N, NKV*HS); lse (B*NH*T) = (B,NH,T).
import type { IVec, Vec } from './types.ts';

/** out (N, NH*HS) = softmax(q·kᵀ·scale | visible)·v; lse (B*NH*T) = log Σ_visible exp(q·k·scale) */
export function attention_forward(out: Vec, lse: Vec, q: Vec, k: Vec, v: Vec, valid: IVec, B: number, T: number, NH: number, NKV: number, HS: number): void {
  const G = NH / NKV, scale = 1 / Math.sqrt(HS);
  const qs = NH * HS, ks = NKV * HS;
  const sc = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const ko = Math.floor(h / G) * HS;
      for (let t = 0; t < T; t++) {
        const qo = (b * T + t) * qs + h * HS;
        let m = -Infinity;
        for (let s = 0; s <= t; s++) {
          if (!valid[b * T + s]) continue;
          const kb = (b * T + s) * ks + ko;
          let x = 0;
          for (let d = 0; d < HS; d++) x += q[qo + d] * k[kb + d];
          sc[s] = x * scale;
          m = Math.max(m, sc[s]);
        }
        for (let d = 0; d < HS; d++) out[qo + d] = 0;
        if (m === -Infinity) {
          lse[(b * NH + h) * T + t] = 0;
          continue;
        }
        let l = 0;
        for (let s = 0; s <= t; s++) if (valid[b * T + s]) l += Math.exp(sc[s] - m);
        for (let s = 0; s <= t; s++) {
          if (!valid[b * T + s]) continue;
          const p = Math.exp(sc[s] - m) / l;
          const vb = (b * T + s) * ks + ko;
          for (let d = 0; d < HS; d++) out[qo + d] += p * v[vb + d];
        }
        lse[(b * NH + h) * T + t] = m + Math.log(l);
      }
    }
  }
}

/**
 * dq (N, NH*HS) +=, dk, dv (N, NKV*HS) += from dout (N, NH*HS), with P = exp(S − lse) recomputed:
 * D = rowsum(dout∘out), dS = P∘(dout·vᵀ − D), dq = dS·k·scale, dk = dSᵀ·q·scale, dv = Pᵀ·dout
 * (dk, dv summed over the heads of each kv group).
 */
export function attention_backward(dq: Vec, dk: Vec, dv: Vec, dout: Vec, q: Vec, k: Vec, v: Vec, out: Vec, lse: Vec, valid: IVec, B: number, T: number, NH: number, NKV: number, HS: number): void {
  const G = NH / NKV, scale = 1 / Math.sqrt(HS);
  const qs = NH * HS, ks = NKV * HS;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const ko = Math.floor(h / G) * HS;
      for (let t = 0; t < T; t++) {
        const qo = (b * T + t) * qs + h * HS;
        const L = lse[(b * NH + h) * T + t];
        let D = 0;
        for (let d = 0; d < HS; d++) D += dout[qo + d] * out[qo + d];
        for (let s = 0; s <= t; s++) {
          if (!valid[b * T + s]) continue;
          const kb = (b * T + s) * ks + ko;
          let x = 0, dp = 0;
          for (let d = 0; d < HS; d++) {
            x += q[qo + d] * k[kb + d];
            dp += dout[qo + d] * v[kb + d];
          }
          const p = Math.exp(x * scale - L);
          const ds = p * (dp - D);
          for (let d = 0; d < HS; d++) {
            dq[qo + d] += ds * k[kb + d] * scale;
            dk[kb + d] += ds * q[qo + d] * scale;
            dv[kb + d] += p * dout[qo + d];
          }
        }
      }
    }
  }
}
