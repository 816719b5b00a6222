// Launcher for shaders/rmsnorm.wgsl; twin: src/ref/rmsnorm.ts. Legend: N rows (B*T), C hidden.
import code from '../../shaders/rmsnorm.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { grid1d, need } from './util.ts';

function params(N: number, C: number, eps: number): ArrayBuffer {
  return uniforms([[N, 'u32'], [C, 'u32'], [eps, 'f32']]);
}

/** out (N,C) = inp (N,C) · rstd · weight (C); rstd (N) = 1/sqrt(mean(inp²)+eps) is saved for backward. */
export function rmsnorm_forward(gpu: Gpu, out: Buf, rstd: Buf, inp: Buf, weight: Buf, N: number, C: number, eps: number): void {
  need(C > 0, 'rmsnorm: C > 0');
  // one workgroup per row
  gpu.dispatch(gpu.pipeline('rmsnorm', code, 'rmsnorm_forward'), params(N, C, eps), [out, rstd, inp, weight], grid1d(gpu, N, 1));
}

/** dinp (N,C) += ∂loss/∂inp given dout (N,C) and the saved rstd (N); the weight is frozen (no grad). */
export function rmsnorm_backward(gpu: Gpu, dinp: Buf, dout: Buf, inp: Buf, weight: Buf, rstd: Buf, N: number, C: number): void {
  need(C > 0, 'rmsnorm: C > 0');
  gpu.dispatch(gpu.pipeline('rmsnorm', code, 'rmsnorm_backward'), params(N, C, 0), [dinp, dout, inp, weight, rstd], grid1d(gpu, N, 1));
}
