// Launcher for shaders/residual.wgsl; twin: src/ref/residual.ts. Legend: n = N*C elements.
// n % 4 == 0 with quad-aligned bindings (every model buffer): the V4 form, by quads.
import code from '../../shaders/residual.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { grid1d, preprocess, quadAligned } from './util.ts';

const scalar = preprocess(code, { V4: false });
const quads = preprocess(code, { V4: true });

/** out (n) = a (n) + b (n); out may not alias a or b (WebGPU forbids a writable alias). */
export function residual_forward(gpu: Gpu, out: Buf, a: Buf, b: Buf, n: number): void {
  const q = quadAligned(n, out, a, b);
  const m = q ? n / 4 : n;
  const pl = q ? gpu.pipeline('residual_v4', quads, 'residual_forward') : gpu.pipeline('residual', scalar, 'residual_forward');
  gpu.dispatch(pl, uniforms([[m, 'u32']]), [out, a, b], grid1d(gpu, m, 256));
}
