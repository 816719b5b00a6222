// CPU twin of shaders/rope.wgsl, plus rope_inv_freq (HF default and Llama-3 scaled frequencies).
// Legend: N rows (B*T), H heads, HS head size.
import type { RopeScaling, RopeStyle } from '../model/config.ts';
import type { IVec, Vec } from './types.ts';

function rotate(x: Vec, pos: IVec, invFreq: Vec, N: number, H: number, HS: number, style: RopeStyle, sign: number): void {
  const half = HS / 2;
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < half; i++) {
      const a = Math.fround(pos[n] * invFreq[i]); // the angle is an f32, as in HF and the kernel
      const c = Math.cos(a), s = sign * Math.sin(a);
      for (let h = 0; h < H; h++) {
        const base = (n * H + h) * HS;
        const ia = style === 'pairs' ? base + 2 * i : base + i;
        const ib = style === 'pairs' ? ia + 1 : ia + half;
        const xa = x[ia], xb = x[ib];
        x[ia] = xa * c - xb * s;
        x[ib] = xa * s + xb * c;
      }
    }
  }
}

/** x (N,H,HS) in place: pair i of each head rotated by pos[n]·invFreq[i]. */
export function rope_forward(x: Vec, pos: IVec, invFreq: Vec, N: number, H: number, HS: number, style: RopeStyle): void {
  rotate(x, pos, invFreq, N, H, HS, style, 1);
}

/** dx (N,H,HS) in place: rotation by −angle. */
export function rope_backward(dx: Vec, pos: IVec, invFreq: Vec, N: number, H: number, HS: number, style: RopeStyle): void {
  rotate(dx, pos, invFreq, N, H, HS, style, -1);
}

/**
 * qkv (N, (NH+2·NKV)·HS) rows [q | k | v] → q (N, NH·HS) rotated, k rotated into kc rows t0.. and v
 * copied into vc rows t0.. (kc, vc: (≥ t0+N, NKV·HS)).
 */
export function rope_qkv_forward(q: Vec, kc: Vec, vc: Vec, qkv: Vec, pos: IVec, invFreq: Vec,
  N: number, t0: number, NH: number, NKV: number, HS: number, style: RopeStyle): void {
  const QD = NH * HS, KVD = NKV * HS, W = QD + 2 * KVD;
  const k = new Float64Array(N * KVD);
  for (let n = 0; n < N; n++) {
    for (let e = 0; e < QD; e++) q[n * QD + e] = qkv[n * W + e];
    for (let e = 0; e < KVD; e++) {
      k[n * KVD + e] = qkv[n * W + QD + e];
      vc[(t0 + n) * KVD + e] = qkv[n * W + QD + KVD + e];
    }
  }
  rope_forward(q, pos, invFreq, N, NH, HS, style);
  rope_forward(k, pos, invFreq, N, NKV, HS, style);
  for (let i = 0; i < N * KVD; i++) kc[t0 * KVD + i] = k[i];
}

/**
 * invFreq (HS/2): HF default 1/theta^(2i/HS), then (if given) Llama-3 scaling as transformers'
 * _compute_llama3_parameters: wavelengths longer than orig/lowFreqFactor are divided by `factor`,
 * shorter than orig/highFreqFactor are kept, and those in between are interpolated.
 */
export function rope_inv_freq(headDim: number, theta: number, scaling: RopeScaling | null): Float32Array {
  const half = headDim / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    let f = 1 / Math.pow(theta, (2 * i) / headDim);
    if (scaling) {
      const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: old } = scaling;
      const lowFreqWavelen = old / lowFreqFactor, highFreqWavelen = old / highFreqFactor;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowFreqWavelen) {
        f = f / factor;
      } else if (wavelen >= highFreqWavelen) {
        const smooth = (old / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        f = ((1 - smooth) * f) / factor + smooth * f;
      }
    }
    out[i] = f;
  }
  return out;
}
