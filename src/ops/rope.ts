// Launcher for shaders/rope.wgsl; twin: src/ref/rope.ts (which also has rope_inv_freq).
// Legend: N rows (B*T), H heads, HS head size.
import code from '../../shaders/rope.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import type { RopeStyle } from '../model/config.ts';
import { grid1d, need } from './util.ts';

function launch(gpu: Gpu, entry: string, x: Buf, pos: Buf, invFreq: Buf, N: number, H: number, HS: number, style: RopeStyle): void {
  need(HS % 2 === 0, 'rope: head size HS is even');
  need(style === 'half' || style === 'pairs', `rope: style is 'half' or 'pairs' (got ${style})`);
  const u = uniforms([[N, 'u32'], [H, 'u32'], [HS, 'u32'], [style === 'pairs' ? 1 : 0, 'u32']]);
  gpu.dispatch(gpu.pipeline('rope', code, entry), u, [x, pos, invFreq], grid1d(gpu, (N * H * HS) / 2, 256));
}

/** x (N,H,HS) rotated in place by angle pos[n]·invFreq[i] per pair i (pairing given by style). */
export function rope_forward(gpu: Gpu, x: Buf, pos: Buf, invFreq: Buf, N: number, H: number, HS: number, style: RopeStyle): void {
  launch(gpu, 'rope_forward', x, pos, invFreq, N, H, HS, style);
}

/** dx (N,H,HS) rotated in place by −angle (the transpose of the forward rotation). */
export function rope_backward(gpu: Gpu, dx: Buf, pos: Buf, invFreq: Buf, N: number, H: number, HS: number, style: RopeStyle): void {
  launch(gpu, 'rope_backward', dx, pos, invFreq, N, H, HS, style);
}
