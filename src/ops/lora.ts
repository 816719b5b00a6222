// Launcher for shaders/lora.wgsl; twin: src/ref/lora.ts (also dropout_keep, lora_init_A).
// Legend: N rows (B*T), IC in features, OC out features, R rank. All buffers f32 row-major.
// Every product is one dispatch of the generic strided kernel lora_mm (2 forward, 4 backward), of
// its subgroup forms where subgroups are exactly 8 or 4 wide, or of its split-K form lora_mm_sk for
// long-K products elsewhere (loraTuning). The two products that add
// into the layer's output / input gradient (lora_apply, lora_backward_dinp) can instead run inside
// the linear's own kernel: linear_forward / linear_backward with opts.lora / opts.loraGrad
// (src/model/llama.ts and generate.ts do that; the pieces here are what they fall back to).
import loraCode from '../../shaders/lora.wgsl?raw';
import dropoutHash from '../../shaders/dropout_hash.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { dropout_threshold } from '../ref/lora.ts';
import { aligned16, need, preprocess, subgroupWidth } from './util.ts';

export { lora_init_A, dropout_keep } from '../ref/lora.ts';

const MASK = { none: 0, x: 1, y: 2, c: 3 } as const;

/**
 * Which kernel runs: 'sg' (lora_mm_sg: one W-lane subgroup per 2W×(W·TN) tile, X shared by
 * subgroupBroadcast; only where subgroups are exactly W = 8 or 4 wide), 'rt' (lora_mm, 4×4 per
 * thread) or 'sk' (lora_mm_sk: K split across a 256-thread workgroup).
 * 'auto' (default): sg where it can run, in its quad forms (lora_mm_sg4, lora_mm_sg4x) where X (and
 * Y) are contiguous along k; elsewhere (real GPUs: 32- or 64-wide subgroups) sk for the products with
 * a long K and a rank-sized side (SK_MIN_K, SK_MAX_SIDE), rt for the rest. Tests may change it.
 */
export const loraTuning: { kernel: 'auto' | 'sg' | 'rt' | 'sk' } = { kernel: 'auto' };

/** lora_mm_sk in 'auto': K at least this long … */
const SK_MIN_K = 64;
/** … and M or Nc at most this (the rank side). */
const SK_MAX_SIDE = 64;

const code = `${loraCode}\n${dropoutHash}`;
const plain = preprocess(code, { SG: false });
const withSg = preprocess(code, { SG: true });
const withSg4 = preprocess(code, { SG: true, SG4: true });

/** The subgroup width lora_mm_sg runs with on `gpu` (8 or 4), or 0: the plain kernel runs. */
function sgWidth(gpu: Gpu): number {
  return loraTuning.kernel === 'auto' || loraTuning.kernel === 'sg' ? subgroupWidth(gpu) : 0;
}

/**
 * C (M,Nc) (row stride cs) = or += alpha · Σ_k X[m·xs0 + k·xs1] · Y[n·ys0 + k·ys1],
 * dropout (p, seed) applied to X, Y or C elements by their buffer index.
 */
function mm(
  gpu: Gpu, C: Buf, X: Buf, Y: Buf, M: number, Nc: number, K: number, cs: number,
  xs: [number, number], ys: [number, number], alpha: number, acc: boolean,
  mask: keyof typeof MASK, p: number, seed: number,
): void {
  if (M === 0 || Nc === 0) return;
  const u = uniforms([
    [M, 'u32'], [Nc, 'u32'], [K, 'u32'], [cs, 'u32'],
    [xs[0], 'u32'], [xs[1], 'u32'], [ys[0], 'u32'], [ys[1], 'u32'],
    [alpha, 'f32'], [dropout_threshold(p), 'u32'], [seed, 'u32'], [1 / (1 - p), 'f32'],
  ]);
  const W = sgWidth(gpu);
  if (W) {
    const TN = Nc <= W ? 1 : Nc <= 2 * W ? 2 : 4;
    // X contiguous along k (and Y too): the quad forms, one load per 4 reduction steps
    const x4 = K % 4 === 0 && xs[1] === 1 && xs[0] % 4 === 0 && aligned16(X);
    const y4 = x4 && ys[1] === 1 && ys[0] % 4 === 0 && aligned16(Y);
    const entry = loraTuning.kernel === 'sg' || !x4 ? 'lora_mm_sg' : y4 ? 'lora_mm_sg4' : 'lora_mm_sg4x';
    const pl = W === 4
      ? gpu.pipeline('lora_sg_w4', withSg4, entry, { MASK: MASK[mask], ACC: acc ? 1 : 0, TN, SGW: 4 })
      : gpu.pipeline('lora_sg', withSg, entry, { MASK: MASK[mask], ACC: acc ? 1 : 0, TN });
    gpu.dispatch(pl, u, [C, X, Y], [Math.ceil(Nc / (W * TN)), Math.ceil(M / (2 * W))]);
    return;
  }
  if (loraTuning.kernel === 'sk' || (loraTuning.kernel === 'auto' && K >= SK_MIN_K && Math.min(M, Nc) <= SK_MAX_SIDE)) {
    // tile (4·SKM)×(4·SKN): up to 16 along the smaller side, 8 along the other; S = 256/(SKM·SKN) slices of K
    const [SKM, SKN] = Nc <= M ? [2, Math.min(4, Math.ceil(Nc / 4))] : [Math.min(4, Math.ceil(M / 4)), 2];
    // slices as the fast thread index where X (the large operand) runs along k (h, dh: coalesced
    // reads); else groups (dA, dB: adjacent threads read adjacent rows / columns)
    const SKF = xs[1] === 1 ? 1 : 0;
    const pl = gpu.pipeline('lora', plain, 'lora_mm_sk', { MASK: MASK[mask], ACC: acc ? 1 : 0, SKM, SKN, SKF });
    gpu.dispatch(pl, u, [C, X, Y], [Math.ceil(Nc / (4 * SKN)), Math.ceil(M / (4 * SKM))]);
    return;
  }
  const pl = gpu.pipeline('lora', plain, 'lora_mm', { MASK: MASK[mask], ACC: acc ? 1 : 0 });
  gpu.dispatch(pl, u, [C, X, Y], [Math.ceil(Nc / 32), Math.ceil(M / 32)]);
}

function check(p: number, R: number): void {
  need(p >= 0 && p < 1, `lora: dropout p must be in [0, 1), got ${p}`);
  need(R >= 1, `lora: rank R must be ≥ 1, got ${R}`);
}

/** h (N,R) = dropout_p(inp (N,IC))·A (R,IC)ᵀ (written): the adapter's hidden, first half of the forward. */
export function lora_hidden(gpu: Gpu, h: Buf, inp: Buf, A: Buf, N: number, IC: number, R: number, p: number, seed: number): void {
  check(p, R);
  mm(gpu, h, inp, A, N, R, IC, R, [IC, 1], [IC, 1], 1, false, 'x', p, seed);
}

/** out (N,OC) += scale · h (N,R)·B (OC,R)ᵀ: second half of the forward (linear_forward fuses it where it can). */
export function lora_apply(gpu: Gpu, out: Buf, h: Buf, B: Buf, N: number, OC: number, R: number, scale: number): void {
  mm(gpu, out, h, B, N, OC, R, OC, [R, 1], [R, 1], scale, true, 'none', 0, 0);
}

/** h (N,R) = dropout_p(inp (N,IC))·A (R,IC)ᵀ (written); out (N,OC) += scale · h·B (OC,R)ᵀ */
export function lora_forward(gpu: Gpu, out: Buf, h: Buf, inp: Buf, A: Buf, B: Buf, N: number, IC: number, OC: number, R: number, scale: number, p: number, seed: number): void {
  lora_hidden(gpu, h, inp, A, N, IC, R, p, seed);
  lora_apply(gpu, out, h, B, N, OC, R, scale);
}

/** dh (N,R) = scale·dout (N,OC)·B (OC,R) (written): first step of the backward. */
export function lora_backward_dh(gpu: Gpu, dh: Buf, dout: Buf, B: Buf, N: number, OC: number, R: number, scale: number): void {
  mm(gpu, dh, dout, B, N, R, OC, R, [OC, 1], [1, R], scale, false, 'none', 0, 0);
}

/** dB (OC,R) += scale·doutᵀ·h; dA (R,IC) += dhᵀ·dropout(inp) (dh from lora_backward_dh, h the forward's). */
export function lora_backward_params(
  gpu: Gpu, dA: Buf, dB: Buf, dh: Buf, dout: Buf, inp: Buf, h: Buf,
  N: number, IC: number, OC: number, R: number, scale: number, p: number, seed: number,
): void {
  check(p, R);
  // dB[o,r] += scale Σ_n dout[n,o]·h[n,r]
  mm(gpu, dB, dout, h, OC, R, N, R, [1, OC], [1, R], scale, true, 'none', p, seed);
  // dA[r,i] += Σ_n dh[n,r]·drop(inp)[n,i]
  mm(gpu, dA, dh, inp, R, IC, N, IC, [1, R], [1, IC], 1, true, 'y', p, seed);
}

/** dinp (N,IC) += dropout'(dh (N,R)·A (R,IC)) (linear_backward fuses it where it can, for p = 0). */
export function lora_backward_dinp(gpu: Gpu, dinp: Buf, dh: Buf, A: Buf, N: number, IC: number, R: number, p: number, seed: number): void {
  check(p, R);
  // dinp[n,i] += drop'[n,i] · Σ_r dh[n,r]·A[r,i]
  mm(gpu, dinp, dh, A, N, IC, R, IC, [R, 1], [1, IC], 1, true, 'c', p, seed);
}

/**
 * dh (N,R) = scale·dout·B (scratch); dB (OC,R) += scale·doutᵀ·h; dA (R,IC) += dhᵀ·dropout(inp);
 * dinp (N,IC) += dropout'(dh·A). h is the forward's h.
 */
export function lora_backward(
  gpu: Gpu, dinp: Buf, dA: Buf, dB: Buf, dh: Buf, dout: Buf, inp: Buf, A: Buf, B: Buf, h: Buf,
  N: number, IC: number, OC: number, R: number, scale: number, p: number, seed: number,
): void {
  check(p, R);
  lora_backward_dh(gpu, dh, dout, B, N, OC, R, scale);
  lora_backward_params(gpu, dA, dB, dh, dout, inp, h, N, IC, OC, R, scale, p, seed);
  lora_backward_dinp(gpu, dinp, dh, A, N, IC, R, p, seed);
}
