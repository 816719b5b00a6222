// Launchers for shaders/adamw.wgsl (global gradient norm + AdamW step); twin: src/ref/adamw.ts.
// Legend: n = number of trainable parameters in one flat buffer.
// Nothing is read back: the clip factor is computed on the GPU from normsq (1).
import code from '../../shaders/adamw.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { fixedSubgroupSize, grid1d, need, preprocess, quadAligned } from './util.ts';

const plain = preprocess(code, { SG: false });
const withSg = preprocess(code, { SG: true });
const quads = preprocess(code, { SG: false, V4: true }); // adamw_step by quads
/** Whether global_norm_sq's subgroup form runs where it can ('auto': fixed subgroup size), or never ('plain'). Tests may change it. */
export const normTuning: { kernel: 'auto' | 'plain' } = { kernel: 'auto' };

/** Most stage-1 workgroups (= partial sums); stage 2 is one workgroup of 256 summing them. */
const MAX_GROUPS = 1024;
/** Aim for at least this many elements per stage-1 invocation before adding workgroups. */
const PER_THREAD = 4;

// Partial-sum scratch (MAX_GROUPS f32), allocated once per gpu.
const scratch = new WeakMap<Gpu, GPUBuffer>();
function partials(gpu: Gpu): GPUBuffer {
  let b = scratch.get(gpu);
  if (!b) {
    b = gpu.f32(MAX_GROUPS, 'adamw.partials');
    scratch.set(gpu, b);
  }
  return b;
}

/** Stage-1 workgroup count for n elements (fixed for a given n: the reduction order is deterministic). */
export function norm_groups(n: number): number {
  return Math.max(1, Math.min(MAX_GROUPS, Math.ceil(n / (256 * PER_THREAD))));
}

/**
 * out (1) = Σ grads[i]² over grads (n). Overwrites out. Two-stage workgroup reduction, deterministic
 * (run to run on one adapter); where subgroups have one fixed size, workgroups of one subgroup.
 */
export function global_norm_sq(gpu: Gpu, out: Buf, grads: Buf, n: number): void {
  need(n >= 1 && n < 2 ** 31, 'global_norm_sq: 1 ≤ n < 2^31');
  const G = norm_groups(n);
  const u = uniforms([[n, 'u32'], [G, 'u32']]);
  const part = partials(gpu);
  const S = normTuning.kernel === 'auto' ? fixedSubgroupSize(gpu) : 0;
  if (S) {
    gpu.dispatch(gpu.pipeline('adamw_sg', withSg, 'global_norm_sq_partial_sg', { SGW: S }), u, [part, grads], [G, 1]);
    gpu.dispatch(gpu.pipeline('adamw_sg', withSg, 'global_norm_sq_final_sg', { SGW: S }), u, [out, part], [1, 1]);
    return;
  }
  gpu.dispatch(gpu.pipeline('adamw', plain, 'global_norm_sq_partial'), u, [part, grads], [G, 1]);
  gpu.dispatch(gpu.pipeline('adamw', plain, 'global_norm_sq_final'), u, [out, part], [1, 1]);
}

/**
 * One AdamW step over params/m/v (n) in place, grads (n) read, normsq (1) = Σ g² (from global_norm_sq).
 * g' = g · min(1, maxNorm/(sqrt(normsq)+1e-6)) (no clipping when maxNorm ≤ 0); p -= lr·wd·p;
 * m = b1 m + (1−b1) g'; v = b2 v + (1−b2) g'²; p -= lr·(m/(1−b1^t)) / (sqrt(v/(1−b2^t)) + eps). t is 1-based.
 * A non-finite normsq (NaN / Inf in grads) skips the step: params, m, v stay as they were.
 */
export function adamw_step(
  gpu: Gpu, params: Buf, grads: Buf, m: Buf, v: Buf, normsq: Buf, n: number,
  lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, t: number, maxNorm: number,
): void {
  need(t >= 1 && Number.isInteger(t), 'adamw_step: step t is a 1-based integer');
  const bc1 = 1 - Math.pow(beta1, t);
  const bc2 = 1 - Math.pow(beta2, t);
  // n % 4 == 0 with quad-aligned buffers (the model's flat LoRA buffers): by quads
  const q = quadAligned(n, params, grads, m, v);
  const k = q ? n / 4 : n;
  const u = uniforms([
    [k, 'u32'], [lr, 'f32'], [beta1, 'f32'], [beta2, 'f32'], [eps, 'f32'], [weightDecay, 'f32'],
    [bc1, 'f32'], [bc2, 'f32'], [maxNorm, 'f32'],
  ]);
  const pl = q ? gpu.pipeline('adamw_v4', quads, 'adamw_step') : gpu.pipeline('adamw', plain, 'adamw_step');
  gpu.dispatch(pl, u, [params, grads, m, v, normsq], grid1d(gpu, k, 256));
}
