// Launcher for shaders/rmsnorm.wgsl; twin: src/ref/rmsnorm.ts. Legend: N rows (B*T), C hidden.
// The subgroup form (a workgroup = one subgroup per row, subgroupAdd) runs where subgroups have one fixed size.
import code from '../../shaders/rmsnorm.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { fixedSubgroupSize, grid1d, need, preprocess, quadAligned } from './util.ts';

// Rows of whole quads (C % 4 == 0, quad-aligned bindings) run the V4 form of either.
const sources = new Map<string, string>();
function source(sg: boolean, v4: boolean): string {
  const key = `${sg}${v4}`;
  let s = sources.get(key);
  if (!s) sources.set(key, (s = preprocess(code, { SG: sg, V4: v4 })));
  return s;
}
/** Whether the subgroup form runs where it can ('auto'), or never ('plain'). Tests may change it. */
export const rmsnormTuning: { kernel: 'auto' | 'plain' } = { kernel: 'auto' };

function pipe(gpu: Gpu, entry: string, v4: boolean) {
  const S = rmsnormTuning.kernel === 'auto' ? fixedSubgroupSize(gpu) : 0;
  const q = v4 ? '_v4' : '';
  return S ? gpu.pipeline(`rmsnorm_sg${q}`, source(true, v4), entry, { WG: S }) : gpu.pipeline(`rmsnorm${q}`, source(false, v4), entry);
}

function params(N: number, C: number, eps: number): ArrayBuffer {
  return uniforms([[N, 'u32'], [C, 'u32'], [eps, 'f32']]);
}

/** out (N,C) = inp (N,C) · rstd · weight (C); rstd (N) = 1/sqrt(mean(inp²)+eps) is saved for backward. */
export function rmsnorm_forward(gpu: Gpu, out: Buf, rstd: Buf, inp: Buf, weight: Buf, N: number, C: number, eps: number): void {
  need(C > 0, 'rmsnorm: C > 0');
  // one workgroup per row
  gpu.dispatch(pipe(gpu, 'rmsnorm_forward', quadAligned(C, out, inp, weight)), params(N, C, eps), [out, rstd, inp, weight], grid1d(gpu, N, 1));
}

/** dinp (N,C) += ∂loss/∂inp given dout (N,C) and the saved rstd (N); the weight is frozen (no grad). */
export function rmsnorm_backward(gpu: Gpu, dinp: Buf, dout: Buf, inp: Buf, weight: Buf, rstd: Buf, N: number, C: number): void {
  need(C > 0, 'rmsnorm: C > 0');
  gpu.dispatch(pipe(gpu, 'rmsnorm_backward', quadAligned(C, dinp, dout, inp, weight)), params(N, C, 0), [dinp, dout, inp, weight, rstd], grid1d(gpu, N, 1));
}
