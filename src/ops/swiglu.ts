// Launcher for shaders/swiglu.wgsl; twin: src/ref/swiglu.ts. Legend: n = N*F elements.
// n % 4 == 0 with quad-aligned bindings (every model buffer): the V4 form, by quads.
import code from '../../shaders/swiglu.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { grid1d, preprocess, quadAligned } from './util.ts';

const scalar = preprocess(code, { V4: false });
const quads = preprocess(code, { V4: true });

// f: elements per row of the rows form (its quads must not straddle rows: f % 4 == 0 for V4)
function launch(gpu: Gpu, entry: string, bufs: Buf[], n: number, f = n): void {
  const q = quadAligned(n, ...bufs) && f % 4 === 0;
  const m = q ? n / 4 : n;
  const pl = q ? gpu.pipeline('swiglu_v4', quads, entry) : gpu.pipeline('swiglu', scalar, entry);
  gpu.dispatch(pl, uniforms([[m, 'u32'], [q ? f / 4 : f, 'u32']]), bufs, grid1d(gpu, m, 256));
}

/** out (n) = silu(gate (n)) * up (n) */
export function swiglu_forward(gpu: Gpu, out: Buf, gate: Buf, up: Buf, n: number): void {
  launch(gpu, 'swiglu_forward', [out, gate, up], n);
}

/** dgate (n) += …; dup (n) += … (adds into both) */
export function swiglu_backward(gpu: Gpu, dgate: Buf, dup: Buf, dout: Buf, gate: Buf, up: Buf, n: number): void {
  launch(gpu, 'swiglu_backward', [dgate, dup, dout, gate, up], n);
}

/** out (N,F) = silu(gu[:, :F]) * gu[:, F:] for gu (N, 2F) rows [gate | up] (inference, forward only) */
export function swiglu_rows_forward(gpu: Gpu, out: Buf, gu: Buf, N: number, F: number): void {
  launch(gpu, 'swiglu_rows_forward', [out, gu], N * F, F);
}
