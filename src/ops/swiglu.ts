// Launcher for shaders/swiglu.wgsl; twin: src/ref/swiglu.ts. Legend: n = N*F elements.
import code from '../../shaders/swiglu.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { grid1d } from './util.ts';

/** out (n) = silu(gate (n)) * up (n) */
export function swiglu_forward(gpu: Gpu, out: Buf, gate: Buf, up: Buf, n: number): void {
  gpu.dispatch(gpu.pipeline('swiglu', code, 'swiglu_forward'), uniforms([[n, 'u32']]), [out, gate, up], grid1d(gpu, n, 256));
}

/** dgate (n) += …; dup (n) += … (adds into both) */
export function swiglu_backward(gpu: Gpu, dgate: Buf, dup: Buf, dout: Buf, gate: Buf, up: Buf, n: number): void {
  gpu.dispatch(gpu.pipeline('swiglu', code, 'swiglu_backward'), uniforms([[n, 'u32']]), [dgate, dup, dout, gate, up], grid1d(gpu, n, 256));
}
