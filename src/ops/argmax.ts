// Launcher for shaders/argmax.wgsl; twin: src/ref/argmax.ts. Greedy decoding on the GPU: one u32
// per row comes back instead of V logits. Legend: N rows, V vocab.
import code from '../../shaders/argmax.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { grid1d } from './util.ts';

/** out u32 (N) = argmax of each row of inp (N, V); ties → lowest index; NaN never wins; all-NaN → 0. */
export function argmax_forward(gpu: Gpu, out: Buf, inp: Buf, N: number, V: number): void {
  if (N === 0) return;
  gpu.dispatch(gpu.pipeline('argmax', code, 'argmax_forward'), uniforms([[N, 'u32'], [V, 'u32']]), [out, inp], grid1d(gpu, N, 1));
}
