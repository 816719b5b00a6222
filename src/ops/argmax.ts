// Launcher for shaders/argmax.wgsl; twin: src/ref/argmax.ts. Greedy decoding on the GPU: one u32
// per row comes back instead of V logits. Legend: N rows, V vocab.
// The subgroup form (a workgroup = one subgroup per row) runs where subgroups have one fixed size.
import code from '../../shaders/argmax.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { fixedSubgroupSize, grid1d, preprocess } from './util.ts';

const plain = preprocess(code, { SG: false });
const withSg = preprocess(code, { SG: true });
/** Whether the subgroup form runs where it can ('auto'), or never ('plain'). Tests may change it. */
export const argmaxTuning: { kernel: 'auto' | 'plain' } = { kernel: 'auto' };

/** out u32 (N) = argmax of each row of inp (N, V); ties → lowest index; NaN never wins; all-NaN → 0. */
export function argmax_forward(gpu: Gpu, out: Buf, inp: Buf, N: number, V: number): void {
  if (N === 0) return;
  const S = argmaxTuning.kernel === 'auto' ? fixedSubgroupSize(gpu) : 0;
  const p = S ? gpu.pipeline('argmax_sg', withSg, 'argmax_forward', { WG: S }) : gpu.pipeline('argmax', plain, 'argmax_forward');
  gpu.dispatch(p, uniforms([[N, 'u32'], [V, 'u32']]), [out, inp], grid1d(gpu, N, 1));
}
