// Launcher for shaders/residual.wgsl; twin: src/ref/residual.ts. Legend: n = N*C elements.
// n % 4 == 0 with quad-aligned bindings (every model buffer): the quad entry point.
import code from '../../shaders/residual.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { grid1d, quadAligned } from './util.ts';

/** out (n) = a (n) + b (n); out may not alias a or b (WebGPU forbids a writable alias). */
export function residual_forward(gpu: Gpu, out: Buf, a: Buf, b: Buf, n: number): void {
  const q = quadAligned(n, out, a, b);
  const m = q ? n / 4 : n;
  gpu.dispatch(gpu.pipeline('residual', code, q ? 'residual_forward4' : 'residual_forward'), uniforms([[m, 'u32']]), [out, a, b], grid1d(gpu, m, 256));
}
