// Launcher for shaders/rope.wgsl; twin: src/ref/rope.ts (which also has rope_inv_freq).
// Legend: N rows (B*T), H heads, HS head size.
import code from '../../shaders/rope.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import type { RopeStyle } from '../model/config.ts';
import { aligned16, grid1d, need } from './util.ts';

// HS/2 % 4 == 0 with quad-aligned bindings (every model buffer): the quad entry points (4 pairs per thread).
function launch(gpu: Gpu, entry: string, x: Buf, pos: Buf, invFreq: Buf, N: number, H: number, HS: number, style: RopeStyle): void {
  need(HS % 2 === 0, 'rope: head size HS is even');
  need(style === 'half' || style === 'pairs', `rope: style is 'half' or 'pairs' (got ${style})`);
  const u = uniforms([[N, 'u32'], [H, 'u32'], [HS, 'u32'], [style === 'pairs' ? 1 : 0, 'u32']]);
  const q = HS % 8 === 0 && aligned16(x) && aligned16(invFreq);
  gpu.dispatch(gpu.pipeline('rope', code, q ? `${entry}4` : entry), u, [x, pos, invFreq], grid1d(gpu, (N * H * HS) / (q ? 8 : 2), 256));
}

/** x (N,H,HS) rotated in place by angle pos[n]·invFreq[i] per pair i (pairing given by style). */
export function rope_forward(gpu: Gpu, x: Buf, pos: Buf, invFreq: Buf, N: number, H: number, HS: number, style: RopeStyle): void {
  launch(gpu, 'rope_forward', x, pos, invFreq, N, H, HS, style);
}

/** dx (N,H,HS) rotated in place by −angle (the transpose of the forward rotation). */
export function rope_backward(gpu: Gpu, dx: Buf, pos: Buf, invFreq: Buf, N: number, H: number, HS: number, style: RopeStyle): void {
  launch(gpu, 'rope_backward', dx, pos, invFreq, N, H, HS, style);
}

/**
 * Inference, forward only: qkv (N, (NH+2·NKV)·HS) rows [q | k | v] → q (N, NH·HS) rotated, k rotated
 * into kc rows t0 .. t0+N−1 and v copied into vc rows t0 .. (kc, vc: (≥ t0+N, NKV·HS)). pos (N).
 */
export function rope_qkv_forward(gpu: Gpu, q: Buf, kc: Buf, vc: Buf, qkv: Buf, pos: Buf, invFreq: Buf,
  N: number, t0: number, NH: number, NKV: number, HS: number, style: RopeStyle): void {
  need(HS % 2 === 0, 'rope: head size HS is even');
  need(style === 'half' || style === 'pairs', `rope: style is 'half' or 'pairs' (got ${style})`);
  need(Number.isInteger(t0) && t0 >= 0, `rope_qkv: t0 (${t0}) a non-negative integer`);
  const u = uniforms([[N, 'u32'], [NH, 'u32'], [NKV, 'u32'], [HS, 'u32'], [style === 'pairs' ? 1 : 0, 'u32'], [t0, 'u32']]);
  gpu.dispatch(gpu.pipeline('rope', code, 'rope_qkv_forward'), u, [q, pos, invFreq, kc, vc, qkv], grid1d(gpu, (N * (NH + NKV) * HS) / 2, 256));
}
