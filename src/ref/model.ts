// CPU reference of the whole Llama-family model with LoRA, built only from the src/ref/* op twins:
// the ground truth for the GPU model (src/model/llama.ts) and for real-model logits.
// Works in float64 (default; finite-difference checks, logits) or float32. The base is frozen:
// gradients flow through it to the LoRA A/B of every adapted (layer, target), nothing else.
// Legend: B batch, T time, N = B*T rows, C hidden, V vocab, L layers, NH heads, NKV kv heads,
// HS head size, R LoRA rank, F ffn size; QD = NH*HS, KVD = NKV*HS.
import { residual_forward } from './residual.ts';
import type { LayerWeights, LlamaConfig, LlamaWeights, LoraConfig, LoraTarget } from '../model/config.ts';
import { loraScale } from '../model/config.ts';
import { type LoraPair, type LoraParams, loraKey, loraLayout, loraSeed } from '../model/lora.ts';
import { global_norm_sq, adamw_step } from './adamw.ts';
import { attention_backward, attention_forward } from './attention.ts';
import { embedding_forward } from './embedding.ts';
import { linear_backward, linear_forward } from './linear.ts';
import { lora_backward, lora_forward } from './lora.ts';
import { rmsnorm_backward, rmsnorm_forward } from './rmsnorm.ts';
import { rope_backward, rope_forward, rope_inv_freq } from './rope.ts';
import { swiglu_backward, swiglu_forward } from './swiglu.ts';
import { XENT_IGNORE, xent_backward, xent_forward } from './xent.ts';
import type { Vec } from './types.ts';

export type Dtype = 'f32' | 'f64';

/** One training batch; every array is (B,T) row-major. */
export interface Batch {
  B: number;
  T: number;
  ids: Uint32Array;
  /** next-token targets; XENT_IGNORE (0xFFFFFFFF) contributes nothing */
  targets: Uint32Array;
  /** 1 real token, 0 padding */
  valid: Uint32Array;
  /** position ids */
  pos: Uint32Array;
  /** per-token loss weights; the loss is Σ losses·weights / Σ weights */
  lossWeights: Float32Array;
}

/** LoRA state for a reference run. */
export interface RefLora {
  config: LoraConfig;
  params: LoraParams<Vec>;
  /** base seed and training step of the dropout masks (loraSeed) */
  seed: number;
  step: number;
  /** dropout active (training); false: p = 0 */
  train: boolean;
}

export interface RefResult {
  /** Σ losses[n]·dloss[n], dloss[n] = lossWeights[n] / Σ lossWeights */
  loss: number;
  /** per-token cross-entropy (N); 0 for ignored targets */
  losses: Float64Array;
  /** per-token argmax = target (N) */
  correct: Float64Array;
  /** Σ correct / number of non-ignored targets */
  tokenAccuracy: number;
  /** ∂loss/∂A, ∂loss/∂B of every adapter (empty when grads were not asked for) */
  grads: LoraParams<Float64Array>;
}

interface Ctx {
  cfg: LlamaConfig;
  w: LlamaWeights;
  lora: RefLora | null;
  N: number;
  B: number;
  T: number;
  valid: Uint32Array;
  pos: Uint32Array;
  invFreq: Float32Array;
  alloc: (n: number) => Vec;
}

/** Saved activations of one layer (inputs of its backward). */
interface LayerCache {
  x: Vec; // (N,C) layer input
  rstd1: Vec; // (N)
  h1: Vec; // (N,C) attn-normed
  q: Vec; // (N,QD) after rope
  k: Vec; // (N,KVD) after rope
  v: Vec; // (N,KVD)
  att: Vec; // (N,QD)
  lse: Vec; // (B*NH*T)
  x2: Vec; // (N,C) after the attention residual
  rstd2: Vec; // (N)
  h2: Vec; // (N,C) ffn-normed
  gate: Vec; // (N,F)
  up: Vec; // (N,F)
  s: Vec; // (N,F) swiglu
  hs: Map<LoraTarget, Vec>; // LoRA hidden (N,R) per adapted target
}

function adapter(ctx: Ctx, layer: number, target: LoraTarget) {
  const lora = ctx.lora;
  if (!lora || !lora.config.targets.includes(target)) return null;
  const p = lora.params.get(loraKey(layer, target));
  if (!p) throw new Error(`ref model: LoRA parameters for layer ${layer} target ${target} are missing`);
  return {
    p,
    R: lora.config.rank,
    scale: loraScale(lora.config),
    drop: lora.train ? lora.config.dropout : 0,
    seed: loraSeed(lora.seed, lora.step, layer, target),
  };
}

/** out (N,OC) = inp·Wᵀ (+bias) + LoRA(inp); records the LoRA hidden (N,R) in hs. */
function proj(ctx: Ctx, layer: number, target: LoraTarget, hs: Map<LoraTarget, Vec>, inp: Vec, w: Float32Array, bias: Float32Array | null, IC: number, OC: number): Vec {
  const { N } = ctx;
  const out = ctx.alloc(N * OC);
  linear_forward(out, inp, w, bias, N, IC, OC);
  const a = adapter(ctx, layer, target);
  if (a) {
    const h = ctx.alloc(N * a.R);
    lora_forward(out, h, inp, a.p.A, a.p.B, N, IC, OC, a.R, a.scale, a.drop, a.seed);
    hs.set(target, h);
  }
  return out;
}

/** dinp (N,IC) += through the frozen linear and the adapter; dA, dB += into grads. */
function projBack(ctx: Ctx, layer: number, target: LoraTarget, grads: LoraParams<Float64Array>, cache: LayerCache, dinp: Vec, dout: Vec, inp: Vec, w: Float32Array, IC: number, OC: number): void {
  const { N } = ctx;
  linear_backward(dinp, dout, w, N, IC, OC);
  const a = adapter(ctx, layer, target);
  if (a) {
    const g = grads.get(loraKey(layer, target))!;
    const dh = ctx.alloc(N * a.R);
    lora_backward(dinp, g.A, g.B, dh, dout, inp, a.p.A, a.p.B, cache.hs.get(target)!, N, IC, OC, a.R, a.scale, a.drop, a.seed);
  }
}

function add(ctx: Ctx, a: Vec, b: Vec): Vec {
  const out = ctx.alloc(a.length);
  residual_forward(out, a, b, a.length);
  return out;
}

function layerForward(ctx: Ctx, layer: number, x: Vec): { cache: LayerCache; out: Vec } {
  const { cfg, N, B, T } = ctx;
  const lw: LayerWeights = ctx.w.layers[layer];
  const C = cfg.hidden, HS = cfg.headDim, NH = cfg.heads, NKV = cfg.kvHeads, F = cfg.ffn;
  const QD = NH * HS, KVD = NKV * HS;
  const hs = new Map<LoraTarget, Vec>();
  const rstd1 = ctx.alloc(N), h1 = ctx.alloc(N * C);
  rmsnorm_forward(h1, rstd1, x, lw.attnNorm, N, C, cfg.eps);
  const q = proj(ctx, layer, 'q', hs, h1, lw.wq, lw.bq, C, QD);
  const k = proj(ctx, layer, 'k', hs, h1, lw.wk, lw.bk, C, KVD);
  const v = proj(ctx, layer, 'v', hs, h1, lw.wv, lw.bv, C, KVD);
  rope_forward(q, ctx.pos, ctx.invFreq, N, NH, HS, cfg.ropeStyle);
  rope_forward(k, ctx.pos, ctx.invFreq, N, NKV, HS, cfg.ropeStyle);
  const att = ctx.alloc(N * QD), lse = ctx.alloc(B * NH * T);
  attention_forward(att, lse, q, k, v, ctx.valid, B, T, NH, NKV, HS);
  const o = proj(ctx, layer, 'o', hs, att, lw.wo, null, QD, C);
  const x2 = add(ctx, x, o);
  const rstd2 = ctx.alloc(N), h2 = ctx.alloc(N * C);
  rmsnorm_forward(h2, rstd2, x2, lw.ffnNorm, N, C, cfg.eps);
  const gate = proj(ctx, layer, 'gate', hs, h2, lw.wGate, null, C, F);
  const up = proj(ctx, layer, 'up', hs, h2, lw.wUp, null, C, F);
  const s = ctx.alloc(N * F);
  swiglu_forward(s, gate, up, N * F);
  const d = proj(ctx, layer, 'down', hs, s, lw.wDown, null, F, C);
  return { cache: { x, rstd1, h1, q, k, v, att, lse, x2, rstd2, h2, gate, up, s, hs }, out: add(ctx, x2, d) };
}

/** dx (N,C): ∂loss/∂(layer output) in, ∂loss/∂(layer input) out (in place). */
function layerBackward(ctx: Ctx, layer: number, c: LayerCache, dx: Vec, grads: LoraParams<Float64Array>): void {
  const { cfg, N, B, T } = ctx;
  const lw = ctx.w.layers[layer];
  const C = cfg.hidden, HS = cfg.headDim, NH = cfg.heads, NKV = cfg.kvHeads, F = cfg.ffn;
  const QD = NH * HS, KVD = NKV * HS;
  // MLP branch: x3 = x2 + down(swiglu(gate(h2), up(h2))), h2 = norm(x2)
  const ds = ctx.alloc(N * F);
  projBack(ctx, layer, 'down', grads, c, ds, dx, c.s, lw.wDown, F, C);
  const dgate = ctx.alloc(N * F), dup = ctx.alloc(N * F);
  swiglu_backward(dgate, dup, ds, c.gate, c.up, N * F);
  const dh2 = ctx.alloc(N * C);
  projBack(ctx, layer, 'gate', grads, c, dh2, dgate, c.h2, lw.wGate, C, F);
  projBack(ctx, layer, 'up', grads, c, dh2, dup, c.h2, lw.wUp, C, F);
  rmsnorm_backward(dx, dh2, c.x2, lw.ffnNorm, c.rstd2, N, C);
  // attention branch: x2 = x + o(attention(rope(q(h1)), rope(k(h1)), v(h1))), h1 = norm(x)
  const datt = ctx.alloc(N * QD);
  projBack(ctx, layer, 'o', grads, c, datt, dx, c.att, lw.wo, QD, C);
  const dq = ctx.alloc(N * QD), dk = ctx.alloc(N * KVD), dv = ctx.alloc(N * KVD);
  attention_backward(dq, dk, dv, datt, c.q, c.k, c.v, c.att, c.lse, ctx.valid, B, T, NH, NKV, HS);
  rope_backward(dq, ctx.pos, ctx.invFreq, N, NH, HS, cfg.ropeStyle);
  rope_backward(dk, ctx.pos, ctx.invFreq, N, NKV, HS, cfg.ropeStyle);
  const dh1 = ctx.alloc(N * C);
  projBack(ctx, layer, 'q', grads, c, dh1, dq, c.h1, lw.wq, C, QD);
  projBack(ctx, layer, 'k', grads, c, dh1, dk, c.h1, lw.wk, C, KVD);
  projBack(ctx, layer, 'v', grads, c, dh1, dv, c.h1, lw.wv, C, KVD);
  rmsnorm_backward(dx, dh1, c.x, lw.attnNorm, c.rstd1, N, C);
}

function context(cfg: LlamaConfig, w: LlamaWeights, lora: RefLora | null, B: number, T: number, valid: Uint32Array, pos: Uint32Array, dtype: Dtype): Ctx {
  const Arr = dtype === 'f64' ? Float64Array : Float32Array;
  return {
    cfg, w, lora, B, T, N: B * T, valid, pos,
    invFreq: rope_inv_freq(cfg.headDim, cfg.ropeTheta, cfg.ropeScaling),
    alloc: (n) => new Arr(n),
  };
}

/** Embedding, every layer, final norm: the final hidden (N,C), its rstd (N) and the layer caches. */
function trunk(ctx: Ctx, ids: Uint32Array): { caches: LayerCache[]; xL: Vec; rstd: Vec; hf: Vec } {
  const { cfg, N } = ctx;
  const C = cfg.hidden;
  let x = ctx.alloc(N * C);
  embedding_forward(x, ids, ctx.w.embed, N, C);
  const caches: LayerCache[] = [];
  for (let l = 0; l < cfg.layers; l++) {
    const r = layerForward(ctx, l, x);
    caches.push(r.cache);
    x = r.out;
  }
  const rstd = ctx.alloc(N), hf = ctx.alloc(N * C);
  rmsnorm_forward(hf, rstd, x, ctx.w.norm, N, C, cfg.eps);
  return { caches, xL: x, rstd, hf };
}

/** Logits (T, V) of one sequence (positions 0..T−1, all valid), base model only (no LoRA). */
export function ref_logits(cfg: LlamaConfig, weights: LlamaWeights, ids: number[], dtype: Dtype = 'f64'): Float32Array {
  const T = ids.length;
  const pos = Uint32Array.from({ length: T }, (_, i) => i);
  const ctx = context(cfg, weights, null, 1, T, new Uint32Array(T).fill(1), pos, dtype);
  const { hf } = trunk(ctx, Uint32Array.from(ids));
  const out = ctx.alloc(T * cfg.vocab);
  linear_forward(out, hf, weights.lmHead ?? weights.embed, null, T, cfg.hidden, cfg.vocab);
  return Float32Array.from(out);
}

/** dloss (N) = lossWeights / Σ lossWeights (0 everywhere when the weights sum to 0). */
export function lossScale(lossWeights: Float32Array): Float64Array {
  let sum = 0;
  for (const x of lossWeights) sum += x;
  return Float64Array.from(lossWeights, (x) => (sum > 0 ? x / sum : 0));
}

/** Σ correct / number of non-ignored targets (0 when there are none). */
export function tokenAccuracy(correct: ArrayLike<number>, targets: Uint32Array): number {
  let hit = 0, count = 0;
  for (let n = 0; n < targets.length; n++) {
    if (targets[n] === XENT_IGNORE) continue;
    count++;
    hit += correct[n];
  }
  return count ? hit / count : 0;
}

/**
 * Forward (and, with opts.grads, backward) over a batch: the weighted mean cross-entropy and the
 * gradients of every LoRA A/B. lora = null runs the base model (no grads).
 */
export function ref_loss(
  cfg: LlamaConfig, weights: LlamaWeights, lora: RefLora | null, batch: Batch,
  opts: { grads?: boolean; dtype?: Dtype } = {},
): RefResult {
  const { B, T } = batch;
  const ctx = context(cfg, weights, lora, B, T, batch.valid, batch.pos, opts.dtype ?? 'f64');
  const N = ctx.N, C = cfg.hidden, V = cfg.vocab;
  const lmHead = weights.lmHead ?? weights.embed;
  const { caches, xL, rstd, hf } = trunk(ctx, batch.ids);
  const losses = new Float64Array(N), lse = new Float64Array(N), correct = new Float64Array(N);
  xent_forward(losses, lse, correct, hf, lmHead, batch.targets, N, C, V, V);
  const dloss = lossScale(batch.lossWeights);
  let loss = 0;
  for (let n = 0; n < N; n++) loss += losses[n] * dloss[n];
  const grads: LoraParams<Float64Array> = new Map();
  if (opts.grads && lora) {
    for (const [key, p] of lora.params) grads.set(key, { A: new Float64Array(p.A.length), B: new Float64Array(p.B.length) });
    const dhf = ctx.alloc(N * C);
    xent_backward(dhf, hf, lmHead, batch.targets, lse, dloss, N, C, V, V);
    const dx = ctx.alloc(N * C);
    rmsnorm_backward(dx, dhf, xL, weights.norm, rstd, N, C);
    for (let l = cfg.layers - 1; l >= 0; l--) layerBackward(ctx, l, caches[l], dx, grads);
  }
  return { loss, losses, correct, tokenAccuracy: tokenAccuracy(correct, batch.targets), grads };
}

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** global gradient-norm clip; ≤ 0: none */
  maxNorm: number;
}

/**
 * Reference AdamW training: `steps` steps (t = 1..steps) on batchAt(t), from `init`, all in float64.
 * Dropout masks use loraSeed(seed, t, layer, target), as the GPU model's trainStep(t) does.
 * Returns the loss and token accuracy of every step (before its update) and the final parameters.
 */
export function ref_train(
  cfg: LlamaConfig, weights: LlamaWeights, config: LoraConfig, init: LoraParams<Vec>,
  batchAt: (t: number) => Batch, opt: AdamWOptions, steps: number, seed: number,
): { losses: number[]; accuracies: number[]; params: LoraParams<Float64Array> } {
  const layout = loraLayout(cfg, config, 4);
  const flat = new Float64Array(layout.floats), g = new Float64Array(layout.floats);
  const m = new Float64Array(layout.floats), v = new Float64Array(layout.floats), normsq = new Float64Array(1);
  const params: LoraParams<Float64Array> = new Map();
  for (const s of layout.slots) {
    const A = flat.subarray(s.a, s.a + layout.rank * s.in), B = flat.subarray(s.b, s.b + s.out * layout.rank);
    const p0 = init.get(s.key)!;
    A.set(p0.A);
    B.set(p0.B);
    params.set(s.key, { A, B });
  }
  const losses: number[] = [], accuracies: number[] = [];
  for (let t = 1; t <= steps; t++) {
    const r = ref_loss(cfg, weights, { config, params, seed, step: t, train: true }, batchAt(t), { grads: true });
    losses.push(r.loss);
    accuracies.push(r.tokenAccuracy);
    for (const s of layout.slots) {
      const gr: LoraPair<Float64Array> = r.grads.get(s.key)!;
      g.set(gr.A, s.a);
      g.set(gr.B, s.b);
    }
    global_norm_sq(normsq, g, g.length);
    adamw_step(flat, g, m, v, normsq, flat.length, opt.lr, opt.beta1, opt.beta2, opt.eps, opt.weightDecay, t, opt.maxNorm);
  }
  return { losses, accuracies, params };
}
