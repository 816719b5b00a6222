// Launcher for shaders/residual.wgsl; twin: src/ref/residual.ts. Legend: n = N*C elements.
import code from '../../shaders/residual.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { grid1d } from './util.ts';

/** out (n) = a (n) + b (n); out may not alias a or b (WebGPU forbids a writable alias). */
export function residual_forward(gpu: Gpu, out: Buf, a: Buf, b: Buf, n: number): void {
  gpu.dispatch(gpu.pipeline('residual', code, 'residual_forward'), uniforms([[n, 'u32']]), [out, a, b], grid1d(gpu, n, 256));
}
