// Launcher for shaders/swiglu.wgsl; twin: src/ref/swiglu.ts. Legend: n = N*F elements.
// n % 4 == 0 with quad-aligned bindings (every model buffer): the quad entry points.
import code from '../../shaders/swiglu.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { grid1d, quadAligned } from './util.ts';

/** out (n) = silu(gate (n)) * up (n) */
export function swiglu_forward(gpu: Gpu, out: Buf, gate: Buf, up: Buf, n: number): void {
  const q = quadAligned(n, out, gate, up);
  const m = q ? n / 4 : n;
  gpu.dispatch(gpu.pipeline('swiglu', code, q ? 'swiglu_forward4' : 'swiglu_forward'), uniforms([[m, 'u32']]), [out, gate, up], grid1d(gpu, m, 256));
}

/** dgate (n) += …; dup (n) += … (adds into both) */
export function swiglu_backward(gpu: Gpu, dgate: Buf, dup: Buf, dout: Buf, gate: Buf, up: Buf, n: number): void {
  const q = quadAligned(n, dgate, dup, dout, gate, up);
  const m = q ? n / 4 : n;
  gpu.dispatch(gpu.pipeline('swiglu', code, q ? 'swiglu_backward4' : 'swiglu_backward'), uniforms([[m, 'u32']]), [dgate, dup, dout, gate, up], grid1d(gpu, m, 256));
}
