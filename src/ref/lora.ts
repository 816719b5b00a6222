// CPU twin of shaders/lora.wgsl, plus the dropout hash shared bit-exactly with the kernel and
// lora_init_A. Legend: N rows, IC in features, OC out features, R rank.
import type { Vec } from './types.ts';

/** PCG-RXS-M-XS 32-bit hash (u32 → u32), integer ops only (same as `pcg` in lora.wgsl). */
export function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The dropout hash of element idx under seed: pcg(pcg(idx) ^ seed·0x9E3779B9) (u32). */
export function dropout_hash(seed: number, idx: number): number {
  return pcg((pcg(idx) ^ Math.imul(seed >>> 0, 0x9e3779b9)) >>> 0);
}

/** Keep threshold for drop probability p: element kept when hash ≥ floor(p·2^32). */
export function dropout_threshold(p: number): number {
  return Math.min(0xffffffff, Math.floor(p * 4294967296));
}

/** Is element idx (= n·IC + i) kept by dropout with probability p under seed? */
export function dropout_keep(seed: number, idx: number, p: number): boolean {
  return dropout_hash(seed, idx) >= dropout_threshold(p);
}

/** Per-element dropout multiplier: 0 or 1/(1−p) (f32 like the kernel). */
function dropMul(seed: number, idx: number, p: number): number {
  return dropout_keep(seed, idx, p) ? Math.fround(1 / (1 - p)) : 0;
}

/**
 * A (R,IC) initialised Kaiming-uniform as PEFT (kaiming_uniform_(a=√5) ⇒ U(−1/√IC, 1/√IC)),
 * from the same counter hash: A[r,i] = (2u − 1)·bound, u = (hash(seed, r·IC+i) + 0.5)/2^32.
 */
export function lora_init_A(R: number, IC: number, seed: number): Float32Array {
  const bound = 1 / Math.sqrt(IC);
  const a = new Float32Array(R * IC);
  for (let i = 0; i < a.length; i++) a[i] = (2 * ((dropout_hash(seed, i) + 0.5) / 4294967296) - 1) * bound;
  return a;
}

/** h (N,R) = dropout_p(inp)·Aᵀ (written); out (N,OC) += scale·h·Bᵀ */
export function lora_forward(out: Vec, h: Vec, inp: Vec, A: Vec, B: Vec, N: number, IC: number, OC: number, R: number, scale: number, p: number, seed: number): void {
  for (let n = 0; n < N; n++) {
    for (let r = 0; r < R; r++) {
      let s = 0;
      for (let i = 0; i < IC; i++) s += inp[n * IC + i] * dropMul(seed, n * IC + i, p) * A[r * IC + i];
      h[n * R + r] = s;
    }
    for (let o = 0; o < OC; o++) {
      let s = 0;
      for (let r = 0; r < R; r++) s += h[n * R + r] * B[o * R + r];
      out[n * OC + o] += scale * s;
    }
  }
}

/**
 * dh (N,R) = scale·dout·B (scratch, overwritten); dB (OC,R) += scale·doutᵀ·h;
 * dA (R,IC) += dhᵀ·dropout(inp); dinp (N,IC) += dropout'(dh·A)
 */
export function lora_backward(dinp: Vec, dA: Vec, dB: Vec, dh: Vec, dout: Vec, inp: Vec, A: Vec, B: Vec, h: Vec, N: number, IC: number, OC: number, R: number, scale: number, p: number, seed: number): void {
  for (let n = 0; n < N; n++) {
    for (let r = 0; r < R; r++) {
      let s = 0;
      for (let o = 0; o < OC; o++) s += dout[n * OC + o] * B[o * R + r];
      dh[n * R + r] = scale * s;
    }
    for (let o = 0; o < OC; o++) {
      for (let r = 0; r < R; r++) dB[o * R + r] += scale * dout[n * OC + o] * h[n * R + r];
    }
    for (let i = 0; i < IC; i++) {
      const m = dropMul(seed, n * IC + i, p);
      let s = 0;
      for (let r = 0; r < R; r++) {
        dA[r * IC + i] += dh[n * R + r] * inp[n * IC + i] * m;
        s += dh[n * R + r] * A[r * IC + i];
      }
      dinp[n * IC + i] += m * s;
    }
  }
}
