// Gradient accumulation over micro-batches, on the GPU. LlamaModel.backward() zeroes the flat LoRA
// gradient buffer every time, so the trainer keeps a second flat buffer `acc` and folds each
// micro-batch's gradient into it with its token weight f_k = S_k / Σ S (S_k = trained tokens of
// micro-batch k): the sum Σ f_k·g_k is exactly the gradient of the token-weighted mean loss over
// all micro-batches, as if they were one batch. Three elementwise kernels (n floats, n = the flat
// LoRA buffer size): set acc = s·g (first), add acc += s·g (middle), fold g = s·g + acc (last, so
// clipping and AdamW then run on the model's own grads buffer unchanged).
// It is not: an optimizer (LlamaModel.optimizerStep is).
import { type Gpu, uniforms } from '../gpu/device.ts';
import { grid1d } from '../ops/util.ts';

const WGSL = /* wgsl */ `
struct Params { n: u32, s: f32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;

fn idx(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * 256u; }

// dst = s · src
@compute @workgroup_size(256)
fn acc_set(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = idx(gid, nwg);
  if (i >= P.n) { return; }
  dst[i] = P.s * src[i];
}

// dst += s · src
@compute @workgroup_size(256)
fn acc_add(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = idx(gid, nwg);
  if (i >= P.n) { return; }
  dst[i] = dst[i] + P.s * src[i];
}

// dst = s · dst + src
@compute @workgroup_size(256)
fn acc_fold(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = idx(gid, nwg);
  if (i >= P.n) { return; }
  dst[i] = P.s * dst[i] + src[i];
}
`;

export type AccumulateOp = 'set' | 'add' | 'fold';

/**
 * Record one accumulation kernel over n floats: 'set' acc = s·grads, 'add' acc += s·grads,
 * 'fold' grads = s·grads + acc. `acc` and `grads` must be different buffers.
 */
export function accumulate(gpu: Gpu, op: AccumulateOp, acc: GPUBuffer, grads: GPUBuffer, n: number, s: number): void {
  const p = gpu.pipeline('train-accumulate', WGSL, `acc_${op}`);
  const [dst, src] = op === 'fold' ? [grads, acc] : [acc, grads];
  gpu.dispatch(p, uniforms([[n, 'u32'], [s, 'f32']]), [dst, src], grid1d(gpu, n, 256));
}

/** Which op micro-batch k of m (0-based) records. */
export function accumulateOp(k: number, m: number): AccumulateOp {
  return k === m - 1 ? 'fold' : k === 0 ? 'set' : 'add';
}
