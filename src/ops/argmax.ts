// Launcher for shaders/argmax.wgsl; twin: src/ref/argmax.ts. Greedy decoding on the GPU: one u32
// per row comes back instead of V logits. Legend: N rows, V vocab, C chunks per row.
// The subgroup form (a workgroup = one subgroup per row) runs where subgroups have one fixed size.
// On a real GPU, rows of at least SPLIT_MIN_V values run split (argmax_partial over C chunks of CH = max(32·WG,
// 2048) values, then argmax_final over the C pairs): a single workgroup walking a 49,152-logit row was 450 µs of
// every decode token on an H100 (measured, `whittle profile --decode`).
import code from '../../shaders/argmax.wgsl?raw';
import { type Buf, type Gpu, isSoftwareAdapter, uniforms } from '../gpu/device.ts';
import { fixedSubgroupSize, grid1d, preprocess } from './util.ts';

const plain = preprocess(code, { SG: false });
const withSg = preprocess(code, { SG: true });
/**
 * Test hooks: kernel — the subgroup form where it can run ('auto') or never ('plain'); split —
 * 'auto' (rows of ≥ SPLIT_MIN_V values on a real GPU; on the CPU drivers, where every dispatch
 * costs tens of µs, one pass measured as fast or faster: lavapipe 152–174 vs 195–326 µs, SwiftShader
 * 730–876 vs 1,046–1,331 µs per 49,152-value argmax and read), 'on' (every row of ≥ 2 chunks), 'off' (never).
 */
export const argmaxTuning: { kernel: 'auto' | 'plain'; split: 'auto' | 'on' | 'off' } = { kernel: 'auto', split: 'auto' };

/** Rows at least this long run the split form (SmolLM2 / Llama / Qwen vocabularies; not tinystories' 2,048). */
export const SPLIT_MIN_V = 16384;
/** Values per chunk of the split form: per thread of the workgroup, and at least (narrow subgroup
 * workgroups: SwiftShader's 4 lanes measured slower split into 128-value chunks than in one pass). */
const PER_THREAD = 32;
const MIN_CHUNK = 2048;
/** The split form's pair scratch at most (bytes); beyond it (many rows) the one-pass form runs. */
const MAX_SCRATCH = 1 << 20;

const scratch = new WeakMap<Gpu, GPUBuffer>();
function pairs(gpu: Gpu, bytes: number): GPUBuffer {
  let b = scratch.get(gpu);
  if (!b || b.size < bytes) {
    if (b) gpu.destroy(b);
    scratch.set(gpu, (b = gpu.buffer(Math.max(bytes, 4096), 'argmax.pairs')));
  }
  return b;
}

/** out u32 (N) = argmax of each row of inp (N, V); ties → lowest index; NaN never wins; all-NaN → 0. */
export function argmax_forward(gpu: Gpu, out: Buf, inp: Buf, N: number, V: number): void {
  if (N === 0) return;
  const S = argmaxTuning.kernel === 'auto' ? fixedSubgroupSize(gpu) : 0;
  const WG = S || 256;
  const CH = Math.max(PER_THREAD * WG, MIN_CHUNK), C = Math.ceil(V / CH);
  const split = argmaxTuning.split === 'on' ? C >= 2 : argmaxTuning.split === 'auto' && V >= SPLIT_MIN_V && C >= 2 && !isSoftwareAdapter(gpu);
  const pipe = (entry: string) => (S ? gpu.pipeline('argmax_sg', withSg, entry, { WG: S }) : gpu.pipeline('argmax', plain, entry));
  if (split && N * C * 8 <= MAX_SCRATCH && N <= (gpu.info.limits.maxComputeWorkgroupsPerDimension ?? 65535)) {
    const u = uniforms([[N, 'u32'], [V, 'u32'], [C, 'u32'], [CH, 'u32']]);
    const part = pairs(gpu, N * C * 8);
    gpu.dispatch(pipe('argmax_partial'), u, [part, inp], [C, N]);
    gpu.dispatch(pipe('argmax_final'), u, [out, part], grid1d(gpu, N, 1));
    return;
  }
  gpu.dispatch(pipe('argmax_forward'), uniforms([[N, 'u32'], [V, 'u32'], [1, 'u32'], [V, 'u32']]), [out, inp], grid1d(gpu, N, 1));
}
