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
