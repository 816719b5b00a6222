// Launcher for shaders/xent.wgsl; twin: src/ref/xent.ts. Masked next-token cross-entropy fused
// with the lm_head matmul in vocab chunks, so the (N, V) logits never exist: per chunk of `chunk`
// rows of W, linear_forward (src/ops/linear.ts) writes the chunk's logits (N, len) into a scratch,
// then xent_update folds them into a running per-row state (N) {max, sum-exp, argmax, target logit};
// the last chunk finalizes losses / lse / correct. Backward walks the chunks last to first, recomputes
// each chunk's logits, turns them in place into dlogits (xent_dlogits) and accumulates dinp +=
// dlogits · W_chunk (linear_backward). The last chunk's logits are still in the scratch after the
// forward: given the forward's ticket (and no xent call on this Gpu since), the backward skips
// recomputing that chunk — with one chunk (small vocabularies) no lm_head recompute at all.
// With more chunks, xent_forward(…, { grad: true }) (training) also accumulates the gradient while
// the logits are at hand — Gacc = Σ exp(logits − running max)·W_chunk, rescaled as the max grows —
// and the backward only finishes dinp += dloss·(Gacc / sumexp − W[target]): no chunk is recomputed
// (shaders/xent.wgsl, GRAD).
// Legend: N rows (B*T), C hidden, V vocab, len = min(chunk, V − r0) rows in the chunk starting at r0.
// Scratch (N·chunk f32 logits, N × 16 bytes of row state and of GRAD factors, and for GRAD two
// (N, C) f32 buffers: Gacc and the gathered W[target] rows) is allocated once per gpu, grown on demand
// (xentScratchBytes gives its size).
import code from '../../shaders/xent.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { embedding_forward } from './embedding.ts';
import { linear_backward, linear_forward, type QWeight } from './linear.ts';
import { fixedSubgroupSize, grid1d, need, preprocess } from './util.ts';

const plain = preprocess(code, { SG: false });
const withSg = preprocess(code, { SG: true });
/** Whether xent_update's subgroup form runs where it can ('auto': fixed subgroup size), or never ('plain'). Tests may change it. */
export const xentTuning: { kernel: 'auto' | 'plain' } = { kernel: 'auto' };

interface Scratch {
  logits: GPUBuffer | null; // (N, chunk) f32
  state: GPUBuffer | null; // (N) RowState {m, s, arg, tgt}
  ga: GPUBuffer | null; // (N) vec4 (alpha, m, s, 0) of the GRAD path
  gacc: GPUBuffer | null; // (N, C) the GRAD path's accumulated gradient
  wt: GPUBuffer | null; // (N, C) W[target] rows (GRAD finish)
  gen: number; // bumped by every xent call: a ticket of an older generation is stale
}

/**
 * What an xent_forward left in this Gpu's scratch: the logits of its last chunk, or (grad) the
 * accumulated gradient. Valid for the xent_backward of the same inp, w, N, C, V, chunk (and targets)
 * as long as no other xent call happened on the Gpu in between (checked) and the caller did not
 * change inp, w or targets (its promise).
 */
export interface XentTicket { gen: number; inp: Buf; w: QWeight; N: number; C: number; V: number; chunk: number; grad: boolean }

/** The default lm_head rows per chunk: a (N, chunk) logits scratch of ≤ 16 MiB that fits one binding (≥ 1, ≤ V). */
export function xentChunkRows(N: number, V: number, maxBindBytes: number): number {
  return Math.max(1, Math.min(Math.floor((16 << 20) / (4 * N)), V, Math.floor(maxBindBytes / (4 * N))));
}

/** Bytes of the per-Gpu cross-entropy scratch for N rows, hidden C, vocab V, chunk rows (the memory planner's figure). */
export function xentScratchBytes(N: number, C: number, V: number, chunk: number, grad: boolean): number {
  const rows = Math.min(chunk, V);
  return N * rows * 4 + 2 * N * 16 + (grad && V > rows ? 2 * N * C * 4 : 0);
}
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

/** The Gpu's scratch, grown for (N, chunk) — and for the GRAD path's (N, C) buffers when C is given. */
function scratch(gpu: Gpu, N: number, chunk: number, C = 0): Scratch & { logits: GPUBuffer; state: GPUBuffer; ga: GPUBuffer } {
  const bytes = N * chunk * 4;
  const maxBind = gpu.info.limits.maxStorageBufferBindingSize ?? 128 * 1024 * 1024;
  need(bytes <= maxBind, `xent: the logits scratch (N=${N}) × (chunk=${chunk}) × 4 = ${bytes} bytes must fit ` +
    `maxStorageBufferBindingSize ${maxBind} — use a smaller chunk`);
  let s = scratches.get(gpu);
  if (!s) scratches.set(gpu, (s = { logits: null, state: null, ga: null, gacc: null, wt: null, gen: 0 }));
  s.logits = grow(gpu, s.logits, bytes, 'xent.logits');
  s.state = grow(gpu, s.state, N * 16, 'xent.state');
  s.ga = grow(gpu, s.ga, N * 16, 'xent.ga');
  if (C > 0) {
    s.gacc = grow(gpu, s.gacc, N * C * 4, 'xent.gacc');
    s.wt = grow(gpu, s.wt, N * C * 4, 'xent.wt');
  }
  s.gen++;
  return s as Scratch & { logits: GPUBuffer; state: GPUBuffer; ga: GPUBuffer };
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
 * opts.grad (training): with more than one chunk, also accumulate the gradient for xent_backward
 * while each chunk's logits are at hand (GRAD). Returns the ticket xent_backward takes.
 */
export function xent_forward(
  gpu: Gpu, losses: Buf, lse: Buf, correct: Buf, inp: Buf, w: QWeight, targets: Buf, N: number, C: number, V: number, chunk: number,
  opts: { grad?: boolean } = {},
): XentTicket {
  chunk = check(w, N, C, V, chunk);
  const nChunks = Math.ceil(V / chunk);
  const grad = opts.grad === true && nChunks > 1;
  const s = scratch(gpu, N, chunk, grad ? C : 0);
  const S = xentTuning.kernel === 'auto' ? fixedSubgroupSize(gpu) : 0;
  const p = S ? gpu.pipeline('xent_sg', withSg, 'xent_update', { WG: S }) : gpu.pipeline('xent', plain, 'xent_update');
  for (let c = 0; c < nChunks; c++) {
    const r0 = c * chunk, len = Math.min(chunk, V - r0);
    const logits = { buffer: s.logits, size: N * len * 4 };
    linear_forward(gpu, logits, inp, w, null, N, C, len, r0);
    const flags = (c === 0 ? 1 : 0) | (c === nChunks - 1 ? 2 : 0) | (grad ? 4 : 0);
    const u = uniforms([[N, 'u32'], [len, 'u32'], [r0, 'u32'], [flags, 'u32']]);
    gpu.dispatch(p, u, [s.state, losses, lse, correct, logits, targets, s.ga], grid1d(gpu, N, 1));
    if (!grad) continue;
    // Gacc (rescaled to the new running max) += exp(logits − max) · W_chunk
    const gacc = s.gacc!;
    gpu.dispatch(gpu.pipeline('xent', plain, 'xent_gscale'), uniforms([[N, 'u32'], [C, 'u32'], [0, 'u32'], [c === 0 ? 1 : 0, 'u32']]),
      [gacc, s.ga], grid1d(gpu, N * C, 256));
    const v4 = len % 4 === 0;
    gpu.dispatch(gpu.pipeline('xent', plain, v4 ? 'xent_probs4' : 'xent_probs'), uniforms([[N, 'u32'], [len, 'u32'], [r0, 'u32']]),
      [logits, targets, s.ga], grid1d(gpu, v4 ? (N * len) / 4 : N * len, 256));
    linear_backward(gpu, gacc, logits, w, N, C, len, r0);
  }
  return { gen: s.gen, inp, w, N, C, V, chunk, grad };
}

/**
 * dinp (N,C) += Σ_chunks ((softmax − onehot(target)) · dloss[n]) · W_chunk; lse (N) from xent_forward;
 * dloss (N) f32. `fresh`: the ticket of the xent_forward of this same batch (same inp, w, targets and
 * shapes, unchanged since). When no other xent call ran on this Gpu since: a grad ticket is
 * finished (dinp += dloss·(Gacc / sumexp − W[target])) with no chunk recomputed; otherwise the
 * chunks are recomputed last to first, the last one's logits taken from the scratch.
 */
export function xent_backward(
  gpu: Gpu, dinp: Buf, inp: Buf, w: QWeight, targets: Buf, lse: Buf, dloss: Buf, N: number, C: number, V: number, chunk: number,
  fresh: XentTicket | null = null,
): void {
  chunk = check(w, N, C, V, chunk);
  const s = scratch(gpu, N, chunk);
  const reuse = !!fresh && fresh.gen === s.gen - 1 && fresh.inp === inp && fresh.w === w &&
    fresh.N === N && fresh.C === C && fresh.V === V && fresh.chunk === chunk;
  if (reuse && fresh.grad) {
    // W[target] rows (zero for an ignored target), then dinp += dloss·(Gacc / sumexp − W[target])
    embedding_forward(gpu, s.wt!, targets, w, N, C);
    gpu.dispatch(gpu.pipeline('xent', plain, 'xent_finish'), uniforms([[N, 'u32'], [C, 'u32'], [0, 'u32']]),
      [dinp, targets, s.ga, dloss, s.gacc!, s.wt!], grid1d(gpu, N * C, 256));
    return;
  }
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
