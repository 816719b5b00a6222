// Launcher for shaders/xent.wgsl; twin: src/ref/xent.ts. Masked next-token cross-entropy fused
// with the lm_head matmul in vocab chunks, so the (N, V) logits never exist: per chunk of `chunk`
// rows of W, linear_forward (src/ops/linear.ts) writes the chunk's logits (N, len) into a scratch,
// then xent_update folds them into a running per-row state (N) {max, sum-exp, argmax, target logit};
// the last chunk finalizes losses / lse / correct. Backward walks the chunks last to first, recomputes
// each chunk's logits, turns them in place into dlogits (xent_dlogits) and accumulates dinp +=
// dlogits · W_chunk (linear_backward). The last chunk's logits are still in the scratch after the
// forward: given the forward's ticket (and no xent call on this Gpu since), the backward skips
// recomputing that chunk — with one chunk (small vocabularies) no lm_head recompute at all.
// Legend: N rows (B*T), C hidden, V vocab, len = min(chunk, V − r0) rows in the chunk starting at r0.
// Scratch (N·chunk f32) and state (N × 16 bytes) are allocated once per gpu, grown on demand.
import code from '../../shaders/xent.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { linear_backward, linear_forward, type QWeight } from './linear.ts';
import { fixedSubgroupSize, grid1d, need, preprocess } from './util.ts';

const plain = preprocess(code, { SG: false });
const withSg = preprocess(code, { SG: true });
/** Whether xent_update's subgroup form runs where it can ('auto': fixed subgroup size), or never ('plain'). Tests may change it. */
export const xentTuning: { kernel: 'auto' | 'plain' } = { kernel: 'auto' };

interface Scratch {
  logits: GPUBuffer | null; // (N, chunk) f32
  state: GPUBuffer | null; // (N) RowState {m, s, arg, tgt}
  gen: number; // bumped by every xent call: a ticket of an older generation is stale
}

/**
 * What an xent_forward left in this Gpu's scratch: the logits of its last chunk. Valid for the
 * xent_backward of the same inp, w, N, C, V, chunk as long as no other xent call happened on the
 * Gpu in between (checked) and the caller did not change inp or w (its promise).
 */
export interface XentTicket { gen: number; inp: Buf; w: QWeight; N: number; C: number; V: number; chunk: number }
const scratches = new WeakMap<Gpu, Scratch>();

/** A cached buffer of at least `bytes`; a too-small one is replaced (pending work submitted first). */
function grow(gpu: Gpu, old: GPUBuffer | null, bytes: number, label: string): GPUBuffer {
  if (old && old.size >= bytes) return old;
  if (old) {
    gpu.submit(); // recorded dispatches may still reference `old`
    gpu.destroy(old);
  }
  return gpu.buffer(bytes, label);
}

function scratch(gpu: Gpu, N: number, chunk: number): { logits: GPUBuffer; state: GPUBuffer; gen: number } {
  const bytes = N * chunk * 4;
  const maxBind = gpu.info.limits.maxStorageBufferBindingSize ?? 128 * 1024 * 1024;
  need(bytes <= maxBind, `xent: the logits scratch (N=${N}) × (chunk=${chunk}) × 4 = ${bytes} bytes must fit ` +
    `maxStorageBufferBindingSize ${maxBind} — use a smaller chunk`);
  let s = scratches.get(gpu);
  if (!s) scratches.set(gpu, (s = { logits: null, state: null, gen: 0 }));
  s.logits = grow(gpu, s.logits, bytes, 'xent.logits');
  s.state = grow(gpu, s.state, N * 16, 'xent.state');
  return { logits: s.logits, state: s.state, gen: ++s.gen };
}

function check(w: QWeight, N: number, C: number, V: number, chunk: number): number {
  need(w.rows === V && w.cols === C, `xent: lm_head must be (V=${V}, C=${C}), got (${w.rows}, ${w.cols})`);
  need(N >= 1 && V >= 1 && Number.isInteger(chunk) && chunk >= 1, 'xent: N ≥ 1, V ≥ 1, integer chunk ≥ 1');
  return Math.min(chunk, V);
}

/**
 * losses (N), lse (N), correct (N) f32 (1.0/0.0) from inp (N,C), lm_head w (V,C), targets u32 (N):
 * losses[n] = logsumexp(logits[n]) − logits[n][target]; correct[n] = 1 if argmax (first on ties) = target;
 * both 0 for an ignored target (0xFFFFFFFF); lse is written for every row. Targets must be < V or ignored.
 * Returns the ticket xent_backward takes to reuse the last chunk's logits.
 */
export function xent_forward(
  gpu: Gpu, losses: Buf, lse: Buf, correct: Buf, inp: Buf, w: QWeight, targets: Buf, N: number, C: number, V: number, chunk: number,
): XentTicket {
  chunk = check(w, N, C, V, chunk);
  const s = scratch(gpu, N, chunk);
  const S = xentTuning.kernel === 'auto' ? fixedSubgroupSize(gpu) : 0;
  const p = S ? gpu.pipeline('xent_sg', withSg, 'xent_update', { WG: S }) : gpu.pipeline('xent', plain, 'xent_update');
  const nChunks = Math.ceil(V / chunk);
  for (let c = 0; c < nChunks; c++) {
    const r0 = c * chunk, len = Math.min(chunk, V - r0);
    const logits = { buffer: s.logits, size: N * len * 4 };
    linear_forward(gpu, logits, inp, w, null, N, C, len, r0);
    const flags = (c === 0 ? 1 : 0) | (c === nChunks - 1 ? 2 : 0);
    const u = uniforms([[N, 'u32'], [len, 'u32'], [r0, 'u32'], [flags, 'u32']]);
    gpu.dispatch(p, u, [s.state, losses, lse, correct, logits, targets], grid1d(gpu, N, 1));
  }
  return { gen: s.gen, inp, w, N, C, V, chunk };
}

/**
 * dinp (N,C) += Σ_chunks ((softmax − onehot(target)) · dloss[n]) · W_chunk; lse (N) from xent_forward;
 * dloss (N) f32. `fresh`: the ticket of the xent_forward of this same batch (same inp, w and shapes,
 * inp and w unchanged since): when no other xent call ran on this Gpu since, the last chunk's logits
 * are taken from the scratch instead of recomputed.
 */
export function xent_backward(
  gpu: Gpu, dinp: Buf, inp: Buf, w: QWeight, targets: Buf, lse: Buf, dloss: Buf, N: number, C: number, V: number, chunk: number,
  fresh: XentTicket | null = null,
): void {
  chunk = check(w, N, C, V, chunk);
  const s = scratch(gpu, N, chunk);
  const reuse = !!fresh && fresh.gen === s.gen - 1 && fresh.inp === inp && fresh.w === w &&
    fresh.N === N && fresh.C === C && fresh.V === V && fresh.chunk === chunk;
  const nChunks = Math.ceil(V / chunk);
  for (let c = nChunks - 1; c >= 0; c--) {
    const r0 = c * chunk, len = Math.min(chunk, V - r0);
    const logits = { buffer: s.logits, size: N * len * 4 };
    if (!(reuse && c === nChunks - 1)) linear_forward(gpu, logits, inp, w, null, N, C, len, r0);
    const u = uniforms([[N, 'u32'], [len, 'u32'], [r0, 'u32']]);
    // rows of whole quads: the vec4 form (a quarter of the per-row reads)
    const v4 = len % 4 === 0;
    const p = gpu.pipeline('xent', plain, v4 ? 'xent_dlogits4' : 'xent_dlogits');
    gpu.dispatch(p, u, [logits, targets, lse, dloss], grid1d(gpu, v4 ? (N * len) / 4 : N * len, 256));
    linear_backward(gpu, dinp, logits, w, N, C, len, r0);
  }
}
