// Inference on the GPU: prefill + decode with a KV cache, and text generation on top of it
// (sampling, EOS, stop strings, streaming, cancellation).
//
// InferenceModel holds the frozen base (its own upload, LlamaModel's buffers shared through
// gpuWeights(), or another InferenceModel's through withAdapter()), the LoRA adapter (unmerged:
// the LoRA kernels with dropout 0; merged: folded into the base on the host by
// src/model/merge.ts, then quantized), a per-layer KV cache and activation scratch for
// `prefillChunk` rows. Everything is allocated once; a step allocates nothing on the GPU except
// the readback staging buffer.
// - prefill(ids): the ids are appended to the cache in chunks of ≤ prefillChunk rows, one pass
//   through every layer per chunk; each layer writes its (rope'd) k and v into the cache (projected
//   straight into the cache rows when their offset is binding-aligned, else via kv_append) and
//   attends the cache (attention_decode). Returns the last position's logits (V).
// - decode(id) = prefill([id]): one row through all layers attending the cache.
// - Own uploads (create) store each layer's q, k, v and gate, up as one weight each (rows [q | k | v],
//   [gate | up]; FusedLayer): a layer is then 9 dispatches instead of 13 — one linear for q, k, v,
//   rope_qkv (q rotated, k rotated and v written into the cache rows), one linear for gate and up,
//   swiglu_rows. An unmerged adapter on such a base is uploaded grouped too (LoraGroups: one LoRA of
//   rank 3R / 2R with a block-diagonal B per fused weight), so its products stay one per linear. On
//   a training model's buffers (fromModel) each target runs on its own.
// - prefillArgmax / decodeArgmaxChained: greedy on the GPU (src/ops/argmax.ts): one u32 comes back
//   per step, and the chosen token never leaves the GPU before the next step reads it, so several
//   steps can be in flight (generate's `lookahead`).
// Only the last position's logits are computed (V floats read back per host-sampled step);
// logitsAll() computes every position's (the `whittle logits` command).
//
// generate(): an async generator of streamed tokens (id + text delta), returning a GenerateResult.
// Greedy without a repetition penalty runs argmax on the GPU; everything else samples on the host
// (src/model/sample.ts). Stops at EOS (not emitted), a stop string (the text is cut before it),
// maxTokens, a full cache, or the AbortSignal (finishReason 'abort'; no throw). A new prompt that
// extends the cached tokens reuses the cache (only the new suffix is prefilled).
//
// Legend: C hidden, V vocab, L layers, NH heads, NKV kv heads, HS head size, F ffn size, R LoRA rank,
// QD = NH*HS, KVD = NKV*HS, Pc = prefillChunk rows, maxT = maxSeq cache positions.
import { type Buf, type Gpu, GpuError } from '../gpu/device.ts';
import { argmax_forward } from '../ops/argmax.ts';
import { attention_decode_forward } from '../ops/attention_decode.ts';
import { embedding_forward } from '../ops/embedding.ts';
import { kv_append_forward } from '../ops/kv_append.ts';
import { type LinearShape, linear_forward, type QWeight, rowWords, tuneLinear, type TuneLinearOptions, uploadWeight } from '../ops/linear.ts';
import { lora_hidden } from '../ops/lora.ts';
import { rmsnorm_forward } from '../ops/rmsnorm.ts';
import { rope_forward, rope_qkv_forward } from '../ops/rope.ts';
import { swiglu_forward, swiglu_rows_forward } from '../ops/swiglu.ts';
import { need } from '../ops/util.ts';
import { rope_inv_freq } from '../ref/rope.ts';
import type { Vec } from '../ref/types.ts';
import type { Tokenizer } from '../tokenizer/types.ts';
import { type LayerWeights, type LlamaConfig, type LlamaWeights, type LoraConfig, type LoraTarget, LORA_TARGETS, loraScale, targetShape } from './config.ts';
import type { GpuBaseWeights, GpuLayer, LlamaModel } from './llama.ts';
import { loraKey, type LoraLayout, loraLayout, type LoraParams } from './lora.ts';
import { Arena } from './memory.ts';
import { mergeLora } from './merge.ts';
import { type QFormat, quantize } from './quant.ts';
import { isGreedy, Rng, type SamplingOptions, sampleToken } from './sample.ts';

/** A LoRA adapter on the host: its config and A (R,IC) / B (OC,R) per loraKey(layer, target). */
export interface LoraWeights {
  config: LoraConfig;
  params: LoraParams<Vec>;
}

export interface InferenceOptions {
  /** maxT: KV-cache positions (prompt + generated); default min(cfg.maxPos, 2048) */
  maxSeq?: number;
  /** Pc: rows per prefill pass (activation scratch); default min(maxSeq, 128) */
  prefillChunk?: number;
}

export interface CreateOptions extends InferenceOptions {
  /** storage format of the frozen linears, embedding and lm_head (default 'f32') */
  quant?: QFormat;
  /** adapter to apply (default none) */
  lora?: LoraWeights | null;
  /** merge the adapter into the base on the host (W + scale·B·A), then quantize; default false (unmerged) */
  merge?: boolean;
}

/** How the adapter (if any) is applied. */
export type LoraMode = 'none' | 'unmerged' | 'merged' | 'shared';

interface GpuLora {
  layout: LoraLayout;
  params: GPUBuffer;
  scale: number;
  slots: Map<string, { A: Buf; B: Buf }>; // A (R,IC), B (OC,R) ranges of params
  /** per layer, the adapter of the fused weights (a host adapter on a fused base; null otherwise) */
  groups: LoraGroups[] | null;
  groupsBuf: GPUBuffer | null;
}

/**
 * The adapter of a layer's fused q, k, v (and gate, up) weights as one LoRA of rank 3R (2R): A the
 * targets' A stacked (3R, C), B block-diagonal (QD+2·KVD, 3R) — target t's B in its rows and its R
 * columns, zeros elsewhere — so h = x·Aᵀ is [h_q | h_k | h_v] and h·Bᵀ is [h_q·B_qᵀ | h_k·B_kᵀ |
 * h_v·B_vᵀ], exactly the three adapters (a target the adapter lacks is zeros). null: no target of the
 * group is adapted. Buffers: ranges of `buf`.
 */
interface LoraGroup { A: Buf; B: Buf; rank: number }
interface LoraGroups { qkv: LoraGroup | null; gu: LoraGroup | null }

const GROUPS: { name: keyof LoraGroups; targets: LoraTarget[] }[] = [
  { name: 'qkv', targets: ['q', 'k', 'v'] },
  { name: 'gu', targets: ['gate', 'up'] },
];

/** The grouped adapter (LoraGroups) of every layer, uploaded as one buffer (null when no group is adapted). */
function uploadLoraGroups(gpu: Gpu, cfg: LlamaConfig, lw: LoraWeights): { buf: GPUBuffer; groups: LoraGroups[] } | null {
  const R = lw.config.rank, C = cfg.hidden, alignF = gpu.alignment / 4;
  const up = (f: number) => Math.ceil(f / alignF) * alignF;
  const plan: { l: number; name: keyof LoraGroups; targets: LoraTarget[]; a: number; b: number; rows: number }[] = [];
  let off = 0;
  for (let l = 0; l < cfg.layers; l++) {
    for (const g of GROUPS) {
      if (!g.targets.some((t) => lw.config.targets.includes(t))) continue;
      const rows = g.targets.reduce((n, t) => n + targetShape(cfg, t)[0], 0), rank = R * g.targets.length;
      const a = off, b = up(a + rank * C);
      off = up(b + rows * rank);
      plan.push({ l, name: g.name, targets: g.targets, a, b, rows });
    }
  }
  if (!plan.length) return null;
  const flat = new Float32Array(off);
  for (const p of plan) {
    const rank = R * p.targets.length;
    let row = 0;
    p.targets.forEach((t, j) => {
      const OC = targetShape(cfg, t)[0], pr = lw.params.get(loraKey(p.l, t));
      if (pr) {
        flat.set(pr.A, p.a + j * R * C); // A rows j·R .. j·R+R−1
        for (let o = 0; o < OC; o++) flat.set(pr.B.subarray(o * R, (o + 1) * R), p.b + (row + o) * rank + j * R);
      }
      row += OC;
    });
  }
  const buf = gpu.f32(flat, 'infer.lora.groups');
  const groups: LoraGroups[] = Array.from({ length: cfg.layers }, () => ({ qkv: null, gu: null }));
  for (const p of plan) {
    const rank = R * p.targets.length;
    groups[p.l][p.name] = { rank, A: { buffer: buf, offset: p.a * 4, size: rank * C * 4 }, B: { buffer: buf, offset: p.b * 4, size: p.rows * rank * 4 } };
  }
  return { buf, groups };
}

/**
 * A layer's q, k, v and gate, up weights as one weight each: qkv (QD+2·KVD, C) rows [q | k | v] and
 * gu (2F, C) rows [gate | up] (each row is quantized on its own, so the rows are exactly those of
 * the separate weights); qkvBias (QD+2·KVD) where cfg.attnBias.
 */
interface FusedLayer { qkv: QWeight; qkvBias: GPUBuffer | null; gu: QWeight }

/** One target's weight as a linear call takes it: rows row0 .. row0+OC−1 of w, and its bias. */
interface TargetWeight { w: QWeight; row0: number; bias: GPUBuffer | null }

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Upload the frozen base (labels `infer.base.*`) with q, k, v and gate, up fused per layer
 * (FusedLayer). In `base`, a layer's w.q / w.k / w.v hold the qkv weight and w.gate / w.up the gu
 * weight (every buffer is listed once there): InferenceModel reads a target through its slice table.
 */
export function uploadBase(gpu: Gpu, cfg: LlamaConfig, w: LlamaWeights, quant: QFormat): { base: GpuBaseWeights; fused: FusedLayer[] } {
  const C = cfg.hidden, QD = cfg.heads * cfg.headDim, KVD = cfg.kvHeads * cfg.headDim, F = cfg.ffn, V = cfg.vocab;
  need(w.layers.length === cfg.layers, `inference: ${w.layers.length} layers of weights for cfg.layers = ${cfg.layers}`);
  const up = (a: Float32Array, rows: number, cols: number, label: string) => uploadWeight(gpu, quantize(a, rows, cols, quant), label);
  const bias = (b: Float32Array | null, label: string) => (cfg.attnBias && b ? gpu.f32(b, label) : null);
  const embed = up(w.embed, V, C, 'infer.base.embed');
  const fused: FusedLayer[] = [];
  const layers = w.layers.map((lw: LayerWeights, l): GpuLayer => {
    const qkv = up(concat([lw.wq, lw.wk, lw.wv]), QD + 2 * KVD, C, `infer.base.l${l}.wqkv`);
    const gu = up(concat([lw.wGate, lw.wUp]), 2 * F, C, `infer.base.l${l}.wGateUp`);
    const hasBias = cfg.attnBias && !!lw.bq && !!lw.bk && !!lw.bv;
    fused.push({ qkv, gu, qkvBias: hasBias ? gpu.f32(concat([lw.bq!, lw.bk!, lw.bv!]), `infer.base.l${l}.bqkv`) : null });
    return {
      attnNorm: gpu.f32(lw.attnNorm, `infer.base.l${l}.attnNorm`),
      ffnNorm: gpu.f32(lw.ffnNorm, `infer.base.l${l}.ffnNorm`),
      w: { q: qkv, k: qkv, v: qkv, o: up(lw.wo, C, QD, `infer.base.l${l}.wo`), gate: gu, up: gu, down: up(lw.wDown, C, F, `infer.base.l${l}.wDown`) },
      bias: {
        q: bias(lw.bq, `infer.base.l${l}.bq`), k: bias(lw.bk, `infer.base.l${l}.bk`), v: bias(lw.bv, `infer.base.l${l}.bv`),
        o: null, gate: null, up: null, down: null,
      },
    };
  });
  return {
    base: {
      embed,
      lmHead: w.lmHead ? up(w.lmHead, V, C, 'infer.base.lmHead') : embed,
      norm: gpu.f32(w.norm, 'infer.base.norm'),
      invFreq: gpu.f32(rope_inv_freq(cfg.headDim, cfg.ropeTheta, cfg.ropeScaling), 'infer.base.invFreq'),
      layers,
    },
    fused,
  };
}

/**
 * Upload an adapter for unmerged use (null when it adapts nothing); a mis-shaped tensor is an error
 * naming it. grouped: also its grouped form for a fused base (uploadLoraGroups).
 */
function uploadLora(gpu: Gpu, cfg: LlamaConfig, lw: LoraWeights, grouped: boolean): GpuLora | null {
  if (lw.config.targets.length === 0) return null;
  const layout = loraLayout(cfg, lw.config, gpu.alignment);
  const flat = new Float32Array(layout.floats);
  const R = layout.rank;
  for (const s of layout.slots) {
    const p = lw.params.get(s.key);
    need(!!p, `inference: LoRA parameters for ${s.key} (layer.target) are missing`);
    need(p.A.length === R * s.in, `inference: LoRA ${s.key} A has ${p.A.length} values, expected (${R}, ${s.in}) = ${R * s.in}`);
    need(p.B.length === s.out * R, `inference: LoRA ${s.key} B has ${p.B.length} values, expected (${s.out}, ${R}) = ${s.out * R}`);
    flat.set(p.A, s.a);
    flat.set(p.B, s.b);
  }
  const params = gpu.f32(flat, 'infer.lora');
  const g = grouped ? uploadLoraGroups(gpu, cfg, lw) : null;
  return { layout, params, scale: loraScale(lw.config), slots: loraBindings(layout, params), groups: g?.groups ?? null, groupsBuf: g?.buf ?? null };
}

function loraBindings(layout: LoraLayout, params: GPUBuffer): GpuLora['slots'] {
  const R = layout.rank, slots: GpuLora['slots'] = new Map();
  for (const s of layout.slots) {
    slots.set(s.key, { A: { buffer: params, offset: s.a * 4, size: R * s.in * 4 }, B: { buffer: params, offset: s.b * 4, size: s.out * R * 4 } });
  }
  return slots;
}

export class InferenceModel {
  readonly gpu: Gpu;
  readonly cfg: LlamaConfig;
  /** maxT: cache positions */
  readonly maxSeq: number;
  /** Pc: rows per prefill pass */
  readonly prefillChunk: number;
  readonly quant: QFormat;
  readonly loraMode: LoraMode;
  private base: GpuBaseWeights;
  /** per layer: q, k, v and gate, up as one weight each (own uploads; null on fromModel's buffers) */
  private fused: FusedLayer[] | null;
  /** per layer, per target: the weight rows a per-target linear call uses */
  private targets: Record<LoraTarget, TargetWeight>[];
  private ownsBase: boolean;
  private lora: GpuLora | null;
  private ownsLora: boolean;
  private acts: Arena; // activation scratch (Pc rows) and the last-row / logits buffers
  private kc: GPUBuffer[]; // per layer (maxT, KVD)
  private vc: GPUBuffer[]; // per layer (maxT, KVD)
  private lmChunk: number; // lm_head rows per linear dispatch (V unless the weight exceeds a binding)
  private allLogits: GPUBuffer | null = null; // (Pc, chunk) scratch of logitsAll
  /** token ids whose k/v are in the cache (−1: fed from the GPU, not yet known on the host) */
  private cached: number[] = [];

  private constructor(gpu: Gpu, cfg: LlamaConfig, base: GpuBaseWeights, fused: FusedLayer[] | null, ownsBase: boolean, lora: GpuLora | null, ownsLora: boolean,
    quant: QFormat, mode: LoraMode, opts: InferenceOptions) {
    this.gpu = gpu;
    this.cfg = cfg;
    this.base = base;
    this.fused = fused;
    this.ownsBase = ownsBase;
    this.lora = lora;
    this.ownsLora = ownsLora;
    this.quant = quant;
    this.loraMode = mode;
    const maxSeq = opts.maxSeq ?? Math.min(cfg.maxPos || 2048, 2048);
    const Pc = Math.min(opts.prefillChunk ?? 128, maxSeq);
    need(Number.isInteger(maxSeq) && maxSeq >= 1, `inference: maxSeq (${maxSeq}) ≥ 1`);
    need(Number.isInteger(Pc) && Pc >= 1, `inference: prefillChunk (${Pc}) ≥ 1`);
    this.maxSeq = maxSeq;
    this.prefillChunk = Pc;
    const C = cfg.hidden, QD = cfg.heads * cfg.headDim, KVD = cfg.kvHeads * cfg.headDim, F = cfg.ffn, V = cfg.vocab;
    // a target's first row in its weight: q, k, v in [q | k | v] and gate, up in [gate | up] when fused
    const row0: Record<LoraTarget, number> = { q: 0, k: fused ? QD : 0, v: fused ? QD + KVD : 0, o: 0, gate: 0, up: fused ? F : 0, down: 0 };
    this.targets = base.layers.map((L) => Object.fromEntries(LORA_TARGETS.map((t) => [t, { w: L.w[t], row0: row0[t], bias: L.bias[t] }])) as Record<LoraTarget, TargetWeight>);
    const maxBind = gpu.info.limits.maxStorageBufferBindingSize ?? 128 << 20;
    need(cfg.headDim <= 128, `inference: head size ${cfg.headDim} > 128 is not supported (attention_decode)`);
    need(maxSeq * KVD * 4 <= maxBind, `inference: one layer's KV cache (${maxSeq}·${KVD} floats) must fit maxStorageBufferBindingSize ${maxBind} — use a smaller maxSeq`);
    this.acts = new Arena(gpu, 'infer', [
      { name: 'ids', shape: [Pc] }, { name: 'pos', shape: [Pc] }, { name: 'tok', shape: [1] },
      { name: 'xa', shape: [Pc, C] }, { name: 'h', shape: [Pc, C] }, { name: 'rstd', shape: [Pc] },
      { name: 'q', shape: [Pc, QD] }, { name: 'att', shape: [Pc, QD] }, { name: 's', shape: [Pc, F] },
      // the fused layer's outputs, or the per-target ones (k, v: when the cache offset is not binding-aligned)
      ...(fused && (!lora || lora.groups)
        ? [{ name: 'qkv', shape: [Pc, QD + 2 * KVD] }, { name: 'gu', shape: [Pc, 2 * F] }]
        : [{ name: 'k', shape: [Pc, KVD] }, { name: 'v', shape: [Pc, KVD] }, { name: 'gate', shape: [Pc, F] }, { name: 'up', shape: [Pc, F] }]),
      // the adapter's hidden: R per target, 3R for a grouped q, k, v
      ...(lora ? [{ name: 'lh', shape: [Pc, lora.layout.rank * (lora.groups ? 3 : 1)] }] : []),
      { name: 'xl', shape: [1, C] }, { name: 'hl', shape: [1, C] }, { name: 'rstdl', shape: [1] }, { name: 'logits', shape: [V] },
    ]);
    this.kc = Array.from({ length: cfg.layers }, (_, l) => gpu.f32(maxSeq * KVD, `kv.k.l${l}`));
    this.vc = Array.from({ length: cfg.layers }, (_, l) => gpu.f32(maxSeq * KVD, `kv.v.l${l}`));
    const lm = base.lmHead;
    if (lm.buf.size <= maxBind) this.lmChunk = V;
    else {
      const alignF = gpu.alignment / 4; // output offsets r0·4 must be binding-aligned
      this.lmChunk = Math.floor(Math.floor((maxBind - gpu.alignment) / (rowWords(lm) * 4)) / alignF) * alignF;
      need(this.lmChunk >= 1, 'inference: lm_head rows too long for one binding');
    }
  }

  /** Upload `weights` (quantized to opts.quant) and the adapter, unmerged or merged. */
  static create(gpu: Gpu, cfg: LlamaConfig, weights: LlamaWeights, opts: CreateOptions = {}): InferenceModel {
    const quant = opts.quant ?? 'f32';
    const lw = opts.lora ?? null;
    const merge = !!opts.merge && !!lw && lw.config.targets.length > 0;
    const { base, fused } = uploadBase(gpu, cfg, merge ? mergeLora(cfg, weights, lw!.config, lw!.params) : weights, quant);
    const lora = lw && !merge ? uploadLora(gpu, cfg, lw, true) : null;
    const mode: LoraMode = !lw || lw.config.targets.length === 0 ? 'none' : merge ? 'merged' : 'unmerged';
    return new InferenceModel(gpu, cfg, base, fused, true, lora, true, quant, mode, opts);
  }

  /**
   * Inference on a training model's buffers (shared, not copied): its base and its live LoRA
   * parameters, unmerged — generations follow the training as it goes. Destroy this before the model.
   */
  static fromModel(model: LlamaModel, opts: InferenceOptions = {}): InferenceModel {
    const { base, lora } = model.gpuWeights();
    const gl = lora.layout.slots.length ? { ...lora, slots: loraBindings(lora.layout, lora.params), groups: null, groupsBuf: null } : null;
    return new InferenceModel(model.gpu, model.cfg, base, null, false, gl, false, model.opts.quant, gl ? 'shared' : 'none', opts);
  }

  /**
   * A second model on this one's frozen base (shared, not copied: same quant) with `lora` applied
   * unmerged (null: the plain base), and its own KV cache and scratch — e.g. base vs tuned
   * (src/model/compare.ts). Refused when this model is 'merged' (its base holds an adapter); a
   * fromModel() model's base is shared further (destroy the new one before the training model).
   * Destroy the new model before this one.
   */
  withAdapter(lora: LoraWeights | null, opts: InferenceOptions = {}): InferenceModel {
    need(this.loraMode !== 'merged', 'inference: withAdapter needs a model whose base is not merged with an adapter');
    const gl = lora ? uploadLora(this.gpu, this.cfg, lora, !!this.fused) : null;
    const o: InferenceOptions = { maxSeq: opts.maxSeq ?? this.maxSeq, prefillChunk: opts.prefillChunk ?? this.prefillChunk };
    try {
      return new InferenceModel(this.gpu, this.cfg, this.base, this.fused, false, gl, true, this.quant, gl ? 'unmerged' : 'none', o);
    } catch (e) {
      if (gl) this.gpu.destroy(gl.params);
      if (gl?.groupsBuf) this.gpu.destroy(gl.groupsBuf);
      throw e;
    }
  }

  /** Token ids whose keys/values are in the cache (positions 0 .. length−1). */
  get tokens(): readonly number[] {
    return this.cached;
  }

  get length(): number {
    return this.cached.length;
  }

  /** Forget the cache (the next prefill starts at position 0). */
  reset(): void {
    this.cached = [];
  }

  /** Keep only the first n cached positions. */
  truncate(n: number): void {
    need(Number.isInteger(n) && n >= 0 && n <= this.cached.length, `inference: truncate(${n}) within 0..${this.cached.length}`);
    this.cached = this.cached.slice(0, n);
  }

  /**
   * Declare which tokens the first ids.length cache positions hold (after GPU-chained greedy steps,
   * whose ids the host learns later); positions past ids.length are dropped.
   */
  keep(ids: number[]): void {
    need(ids.length <= this.cached.length, `inference: keep(${ids.length} ids) but only ${this.cached.length} positions are cached`);
    ids.forEach((id, i) => need(this.cached[i] === -1 || this.cached[i] === id, `inference: keep: position ${i} holds ${this.cached[i]}, not ${id}`));
    this.cached = ids.slice();
  }

  /** Append ids to the cache; the logits (V) of the last one. */
  prefill(ids: number[]): Promise<Float32Array> {
    return this.appendLogits(ids, true);
  }

  /** One decode step: feed `id` at the next position; its logits (V). */
  decode(id: number): Promise<Float32Array> {
    return this.appendLogits([id], false);
  }

  /** prefill / decode; relaxed: a throughput wait (Gpu.settle) — prompts, not decode steps. */
  private appendLogits(ids: number[], relaxed: boolean): Promise<Float32Array> {
    return this.guarded('prefill', () => {
      this.recordChunks(ids);
      this.recordLastLogits(this.lastChunkRows(ids.length));
      return this.gpu.readF32(this.acts.get('logits'), this.cfg.vocab, { relaxed });
    });
  }

  /**
   * Append ids and choose the next token on the GPU (argmax of the last logits; one u32 read back).
   * Everything is recorded and submitted before this returns, so decodeArgmaxChained may follow at once.
   */
  prefillArgmax(ids: number[]): Promise<number> {
    return this.guarded('prefill', () => {
      this.recordChunks(ids);
      this.recordLastLogits(this.lastChunkRows(ids.length));
      argmax_forward(this.gpu, this.acts.get('tok'), this.acts.get('logits'), 1, this.cfg.vocab);
      return this.gpu.readU32(this.acts.get('tok'), 1, { relaxed: true }).then((a) => a[0]); // a throughput wait (Gpu.settle)
    });
  }

  /**
   * Record (and submit, without waiting) one greedy step that feeds the token chosen by the last
   * prefillArgmax / decodeArgmaxChained — still on the GPU — at the next position. Resolves to the
   * token this step chooses. Its cache position holds −1 until keep() names it.
   */
  decodeArgmaxChained(): Promise<number> {
    const t0 = this.cached.length;
    need(t0 >= 1 && t0 < this.maxSeq, `inference: a chained step needs 1 ≤ cached (${t0}) < maxSeq (${this.maxSeq})`);
    return this.guarded('decode', () => {
      const g = this.gpu, tok = this.acts.get('tok');
      g.submit(); // recorded work must not see the new position
      g.write(this.acts.get('pos'), Uint32Array.of(t0));
      this.recordTrunk(1, t0, tok);
      this.cached.push(-1);
      this.recordLastLogits(1);
      argmax_forward(g, tok, this.acts.get('logits'), 1, this.cfg.vocab);
      return g.readU32(tok, 1).then((a) => a[0]);
    });
  }

  /**
   * Logits of every position (T, V) of `ids` from position 0 (the cache is reset and then holds
   * ids). Computed chunk by chunk; for tests and `whittle logits`.
   */
  async logitsAll(ids: number[]): Promise<Float32Array> {
    const { hidden: C, vocab: V } = this.cfg, Pc = this.prefillChunk, T = ids.length;
    const maxBind = this.gpu.info.limits.maxStorageBufferBindingSize ?? 128 << 20;
    const chunk = Math.max(1, Math.min(V, this.lmChunk, Math.floor(Math.min(16 << 20, maxBind) / (4 * Pc))));
    if (!this.allLogits) this.allLogits = this.gpu.f32(Pc * chunk, 'infer.allLogits');
    const out = new Float32Array(T * V);
    this.reset();
    await this.gpu.scoped('logitsAll', async () => {
      for (let i = 0; i < T; i += Pc) {
        const part = ids.slice(i, i + Pc), n = part.length;
        this.recordChunks(part);
        rmsnorm_forward(this.gpu, this.acts.get('h'), this.acts.get('rstd'), this.acts.get('xa'), this.base.norm, n, C, this.cfg.eps);
        for (let r0 = 0; r0 < V; r0 += chunk) {
          const len = Math.min(chunk, V - r0);
          linear_forward(this.gpu, this.allLogits!, this.acts.get('h'), this.base.lmHead, null, n, C, len, r0);
          const z = await this.gpu.readF32(this.allLogits!, n * len);
          for (let t = 0; t < n; t++) out.set(z.subarray(t * len, (t + 1) * len), (i + t) * V + r0);
        }
      }
    });
    return out;
  }

  /** Bytes of this model's own GPU buffers (shared training buffers not counted). */
  get bytes(): number {
    let b = this.acts.bytes + this.kc.reduce((a, x) => a + x.size, 0) * 2 + (this.allLogits?.size ?? 0);
    if (this.ownsLora && this.lora) b += this.lora.params.size + (this.lora.groupsBuf?.size ?? 0);
    if (this.ownsBase) {
      for (const x of this.baseBuffers()) b += x.size;
    }
    return b;
  }

  /** Free this model's buffers (not the shared ones of fromModel). */
  destroy(): void {
    const g = this.gpu;
    this.acts.destroy();
    for (const b of [...this.kc, ...this.vc]) g.destroy(b);
    if (this.allLogits) g.destroy(this.allLogits);
    if (this.ownsLora && this.lora) {
      g.destroy(this.lora.params);
      if (this.lora.groupsBuf) g.destroy(this.lora.groupsBuf);
    }
    if (this.ownsBase) for (const b of this.baseBuffers()) g.destroy(b);
  }

  // ---- recording -----------------------------------------------------------------------------

  private baseBuffers(): Set<GPUBuffer> {
    const b = this.base, s = new Set<GPUBuffer>([b.embed.buf, b.lmHead.buf, b.norm, b.invFreq]);
    for (const f of this.fused ?? []) if (f.qkvBias) s.add(f.qkvBias);
    for (const l of b.layers) {
      s.add(l.attnNorm).add(l.ffnNorm);
      for (const t of Object.keys(l.w) as LoraTarget[]) {
        s.add(l.w[t].buf);
        const bias = l.bias[t];
        if (bias) s.add(bias);
      }
    }
    return s;
  }

  /**
   * Run `fn` — which records, submits and starts its readback synchronously, returning the readback
   * promise — inside WebGPU error scopes pushed and popped before this returns (so later steps
   * recorded while this one is in flight are outside them). On any error the cache is dropped.
   */
  private guarded<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const dev = this.gpu.device;
    dev.pushErrorScope('out-of-memory');
    dev.pushErrorScope('validation');
    let p: Promise<T>;
    try {
      p = fn();
      this.gpu.submit();
    } catch (e) {
      this.cached = [];
      void dev.popErrorScope();
      void dev.popErrorScope();
      return Promise.reject(e);
    }
    const v = dev.popErrorScope(), m = dev.popErrorScope();
    return (async () => {
      try {
        const [r, ev, em] = await Promise.all([p, v, m]);
        if (ev) throw new GpuError(`WebGPU validation error in ${what}: ${ev.message}`);
        if (em) throw new GpuError(`GPU out of memory in ${what}: ${em.message}`);
        return r;
      } catch (e) {
        this.cached = [];
        throw e;
      }
    })();
  }

  /** Append ids to the cache in chunks of ≤ Pc rows (each chunk submitted before the next is written). */
  private recordChunks(ids: number[]): void {
    const V = this.cfg.vocab, Pc = this.prefillChunk;
    need(ids.length >= 1, 'inference: at least one token to prefill');
    need(this.cached.length + ids.length <= this.maxSeq, `inference: ${this.cached.length} cached + ${ids.length} new tokens exceed maxSeq ${this.maxSeq}`);
    for (const id of ids) need(Number.isInteger(id) && id >= 0 && id < V, `inference: token id ${id} outside the vocabulary 0..${V - 1}`);
    const g = this.gpu;
    for (let i = 0; i < ids.length; i += Pc) {
      const part = ids.slice(i, i + Pc), n = part.length, t0 = this.cached.length;
      g.submit(); // recorded work must not see this chunk's ids / positions
      g.write(this.acts.get('ids'), Uint32Array.from(part));
      g.write(this.acts.get('pos'), Uint32Array.from({ length: n }, (_, j) => t0 + j));
      this.recordTrunk(n, t0, this.acts.get('ids'));
      this.cached.push(...part);
    }
  }

  /** Embedding and every layer of n rows at positions t0 .. t0+n−1: the residual stream ends in xa. */
  private recordTrunk(n: number, t0: number, ids: Buf): void {
    embedding_forward(this.gpu, this.acts.get('xa'), ids, this.base.embed, n, this.cfg.hidden);
    for (let l = 0; l < this.cfg.layers; l++) this.layer(l, n, t0);
  }

  /** Rows of the last prefill chunk of `count` ids. */
  private lastChunkRows(count: number): number {
    return ((count - 1) % this.prefillChunk) + 1;
  }

  /**
   * Pick the fastest linear kernel variant for this model's projections and lm_head on this adapter,
   * as decode (one row) and as prefill (a chunk of rows) call them — forward only (a short timed
   * trial per shape class at first use, cached per adapter: src/gpu/autotune.ts, tuneLinear). Call
   * once after creation on hardware adapters (a GPU may well prefer the coalesced matvec `mv16`
   * for decode); untuned shapes use the defaults. Never inside a generation.
   */
  async tune(opts: TuneLinearOptions = {}): Promise<void> {
    const cfg = this.cfg, shapes: LinearShape[] = [];
    for (const N of new Set([1, this.prefillChunk])) {
      for (const t of LORA_TARGETS) {
        const [OC, IC] = targetShape(cfg, t);
        shapes.push({ format: this.quant, N, IC, OC, dirs: ['forward'] });
      }
    }
    if (this.fused) {
      for (const N of new Set([1, this.prefillChunk])) {
        shapes.push({ format: this.quant, N, IC: cfg.hidden, OC: (cfg.heads + 2 * cfg.kvHeads) * cfg.headDim, dirs: ['forward'] });
        shapes.push({ format: this.quant, N, IC: cfg.hidden, OC: 2 * cfg.ffn, dirs: ['forward'] });
      }
    }
    shapes.push({ format: this.base.lmHead.format, N: 1, IC: cfg.hidden, OC: this.lmChunk, dirs: ['forward'] });
    await tuneLinear(this.gpu, shapes, opts);
  }

  /**
   * Final norm of the last of n rows of xa and its logits (V) into `logits`. The norm stays its own
   * dispatch: inside the lm_head's matvec every one of its V/8 threads would redo it (on SwiftShader
   * rt1x8 128→2048 with the norm inside measured 655–666 µs against 512–612 for rmsnorm then the
   * plain matvec: scripts/matvec-speed.ts f32 rt1x8 norm | rmsnorm+).
   */
  private recordLastLogits(n: number): void {
    const g = this.gpu, C = this.cfg.hidden, V = this.cfg.vocab, A = this.acts;
    g.copy(A.get('xa'), (n - 1) * C * 4, A.get('xl'), 0, C * 4);
    rmsnorm_forward(g, A.get('hl'), A.get('rstdl'), A.get('xl'), this.base.norm, 1, C, this.cfg.eps);
    const logits = A.get('logits');
    for (let r0 = 0; r0 < V; r0 += this.lmChunk) {
      const len = Math.min(this.lmChunk, V - r0);
      const out: Buf = len === V ? logits : { buffer: logits, offset: r0 * 4, size: len * 4 };
      linear_forward(g, out, A.get('hl'), this.base.lmHead, null, 1, C, len, r0);
    }
  }

  /** out (n,OC) = inp·Wᵀ (+bias) + LoRA(inp) (dropout 0); accumulate: out += … instead. */
  private proj(l: number, t: LoraTarget, out: Buf, inp: Buf, n: number, accumulate = false): void {
    const { w, row0, bias } = this.targets[l][t], [OC, IC] = targetShape(this.cfg, t);
    const a = this.lora?.slots.get(loraKey(l, t));
    if (!a) {
      linear_forward(this.gpu, out, inp, w, bias, n, IC, OC, row0, { accumulate });
      return;
    }
    // the adapter's hidden first; its output product runs inside the linear's kernel where it can
    const h = this.acts.get('lh'), rank = this.lora!.layout.rank;
    lora_hidden(this.gpu, h, inp, a.A, n, IC, rank, 0, 0);
    linear_forward(this.gpu, out, inp, w, bias, n, IC, OC, row0, { accumulate, lora: { h, B: a.B, rank, scale: this.lora!.scale } });
  }

  /**
   * out (n,OC) = rmsnorm(xa; norm)·Wᵀ (+bias) of a fused weight, plus its grouped adapter (LoraGroup)
   * if any. Without an adapter the norm runs inside the linear's kernel where it can (opts.norm);
   * with one, rmsnorm writes h first (the adapter's hidden reads it too).
   */
  private fusedProj(out: Buf, xa: Buf, norm: GPUBuffer, w: QWeight, bias: GPUBuffer | null, ad: LoraGroup | null, n: number, OC: number): void {
    const g = this.gpu, C = this.cfg.hidden, A = this.acts, x = A.get('h');
    if (!ad) {
      linear_forward(g, out, xa, w, bias, n, C, OC, 0, { norm: { weight: norm, eps: this.cfg.eps, scratch: x, rstd: A.get('rstd') } });
      return;
    }
    rmsnorm_forward(g, x, A.get('rstd'), xa, norm, n, C, this.cfg.eps);
    const h = A.get('lh');
    lora_hidden(g, h, x, ad.A, n, C, ad.rank, 0, 0);
    linear_forward(g, out, x, w, bias, n, C, OC, 0, { lora: { h, B: ad.B, rank: ad.rank, scale: this.lora!.scale } });
  }

  /**
   * Layer l on n rows at positions t0..: the residual stream xa is updated in place (the o and down
   * projections add into it). Fused (own upload, no unmerged adapter): q, k, v from one linear, split
   * by rope_qkv into q and the cache rows t0..; gate, up from one linear. Otherwise per target: k and
   * v are projected straight into the cache rows t0.. (k rope'd there) when that byte offset is
   * binding-aligned; otherwise into scratch, then kv_append.
   */
  private layer(l: number, n: number, t0: number): void {
    const g = this.gpu, cfg = this.cfg, A = this.acts, L = this.base.layers[l];
    const C = cfg.hidden, HS = cfg.headDim, NH = cfg.heads, NKV = cfg.kvHeads, F = cfg.ffn, KVD = NKV * HS;
    const xa = A.get('xa'), h = A.get('h'), rstd = A.get('rstd');
    const q = A.get('q'), att = A.get('att'), pos = A.get('pos');
    const fl = this.lora && !this.lora.groups ? null : this.fused?.[l];
    if (fl) {
      // fused: q, k, v in one linear, split by rope_qkv (k and v straight into cache rows t0..);
      // gate and up in one linear, swiglu over its rows; an adapter as its grouped form
      const qkv = A.get('qkv'), gu = A.get('gu'), gr = this.lora?.groups?.[l];
      this.fusedProj(qkv, xa, L.attnNorm, fl.qkv, fl.qkvBias, gr?.qkv ?? null, n, NH * HS + 2 * KVD);
      rope_qkv_forward(g, q, this.kc[l], this.vc[l], qkv, pos, this.base.invFreq, n, t0, NH, NKV, HS, cfg.ropeStyle);
      attention_decode_forward(g, att, q, this.kc[l], this.vc[l], n, t0, NH, NKV, HS);
      this.proj(l, 'o', xa, att, n, true);
      this.fusedProj(gu, xa, L.ffnNorm, fl.gu, null, gr?.gu ?? null, n, 2 * F);
      swiglu_rows_forward(g, A.get('s'), gu, n, F);
      this.proj(l, 'down', xa, A.get('s'), n, true);
      return;
    }
    rmsnorm_forward(g, h, rstd, xa, L.attnNorm, n, C, cfg.eps);
    this.proj(l, 'q', q, h, n);
    const off = t0 * KVD * 4, direct = off % g.alignment === 0;
    const k: Buf = direct ? { buffer: this.kc[l], offset: off, size: n * KVD * 4 } : A.get('k');
    const v: Buf = direct ? { buffer: this.vc[l], offset: off, size: n * KVD * 4 } : A.get('v');
    this.proj(l, 'k', k, h, n);
    this.proj(l, 'v', v, h, n);
    rope_forward(g, q, pos, this.base.invFreq, n, NH, HS, cfg.ropeStyle);
    rope_forward(g, k, pos, this.base.invFreq, n, NKV, HS, cfg.ropeStyle);
    if (!direct) kv_append_forward(g, this.kc[l], this.vc[l], k, v, n, t0, KVD);
    attention_decode_forward(g, att, q, this.kc[l], this.vc[l], n, t0, NH, NKV, HS);
    this.proj(l, 'o', xa, att, n, true);
    rmsnorm_forward(g, h, rstd, xa, L.ffnNorm, n, C, cfg.eps);
    this.proj(l, 'gate', A.get('gate'), h, n);
    this.proj(l, 'up', A.get('up'), h, n);
    swiglu_forward(g, A.get('s'), A.get('gate'), A.get('up'), n * F);
    this.proj(l, 'down', xa, A.get('s'), n, true);
  }
}

// ---- generation ----------------------------------------------------------------------------------

export interface GenerateOptions extends SamplingOptions {
  /** most tokens to generate (EOS not counted); default 256 */
  maxTokens?: number;
  /** decodes the text (and is needed for stop strings); without it every text is '' */
  tokenizer?: Tokenizer | null;
  /** stop when the generated text contains one of these; the text ends before it */
  stop?: string[];
  /** ids that end generation (not emitted); default tokenizer.eos ∪ cfg.eos */
  eos?: number[];
  /** cancel: the generation ends with finishReason 'abort' at the next step */
  signal?: AbortSignal;
  /** reuse cached positions shared with the prompt (default true) */
  reuseCache?: boolean;
  /** greedy without a repetition penalty: argmax on the GPU (default true) */
  gpuGreedy?: boolean;
  /** GPU greedy: decode steps in flight beyond the one awaited (default 1; 0 = none) */
  lookahead?: number;
  /** host-sampled steps: called with each logits vector (V) before sampling (step 0 = after prefill) */
  onLogits?: (logits: Float32Array, step: number) => void;
}

/** One streamed event: a new token (id) and the text it adds, or (id null) the held-back text at the end. */
export interface GenToken {
  id: number | null;
  /** text added (may be '' while a possible stop string or an incomplete character is held back) */
  text: string;
}

export type FinishReason = 'eos' | 'stop' | 'length' | 'abort';

export interface GenerateResult {
  /** generated token ids (no EOS); with a stop string, including the token that completed it */
  ids: number[];
  /** generated text (cut before a stop string); the concatenation of every event's text */
  text: string;
  finishReason: FinishReason;
  /** the stop string that ended generation */
  stop: string | null;
  promptTokens: number;
  /** prompt positions taken from the cache instead of prefilled */
  reusedTokens: number;
  prefillMs: number;
  /** time from the end of prefill to the last token */
  decodeMs: number;
  /** decode steps run (tokens after the first) */
  decodeTokens: number;
  /** decodeTokens / decodeMs (0 when no decode step ran) */
  tokensPerSecond: number;
  /** whether argmax ran on the GPU */
  gpuGreedy: boolean;
}

/** Incremental detokenization with stop strings and hold-back (prefixes of a stop string, U+FFFD). */
class TextStream {
  private ctxText: string;
  emitted = 0;
  constructor(private tok: Tokenizer | null, private ctx: number[], private stops: string[]) {
    this.ctxText = tok ? tok.decode(ctx, { skipSpecial: true }) : '';
  }

  decode(ids: number[]): string {
    if (!this.tok) return '';
    const all = this.tok.decode(this.ctx.concat(ids), { skipSpecial: true });
    return all.startsWith(this.ctxText) ? all.slice(this.ctxText.length) : this.tok.decode(ids, { skipSpecial: true });
  }

  /** Text so far: the new delta, and the stop string found (then `text` ends before it). */
  update(ids: number[]): { delta: string; text: string; stop: string | null } {
    const full = this.decode(ids);
    let cut = -1, stop: string | null = null;
    for (const s of this.stops) {
      const i = full.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) {
        cut = i;
        stop = s;
      }
    }
    if (stop !== null) return { ...this.take(full.slice(0, cut), full.slice(0, cut).length), stop };
    let safe = full.length;
    while (safe > 0 && full[safe - 1] === '\uFFFD') safe--; // an incomplete UTF-8 character
    const t = full.slice(0, safe);
    let hold = 0; // the longest end of t that begins a stop string
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, t.length); k > hold; k--) {
        if (t.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    return { ...this.take(full, safe - hold), stop: null };
  }

  private take(text: string, upto: number): { delta: string; text: string } {
    const delta = upto > this.emitted ? text.slice(this.emitted, upto) : '';
    this.emitted = Math.max(this.emitted, upto);
    return { delta, text };
  }

  /** The rest of `text` not yet emitted. */
  flush(text: string): string {
    const rest = text.length > this.emitted ? text.slice(this.emitted) : '';
    this.emitted = Math.max(this.emitted, text.length);
    return rest;
  }
}

const busy = new WeakSet<InferenceModel>();

/**
 * Generate after `prompt` (token ids): yields each new token with its text delta as it comes;
 * returns the GenerateResult. Breaking out of the loop (or opts.signal) stops it early.
 */
export async function* generate(model: InferenceModel, prompt: number[], opts: GenerateOptions = {}): AsyncGenerator<GenToken, GenerateResult, void> {
  const maxTokens = opts.maxTokens ?? 256;
  need(prompt.length >= 1, 'generate: the prompt has at least one token (e.g. BOS)');
  need(Number.isInteger(maxTokens) && maxTokens >= 0, `generate: maxTokens (${maxTokens}) ≥ 0`);
  const stops = (opts.stop ?? []).filter((s) => s.length > 0);
  const tok = opts.tokenizer ?? null;
  need(!stops.length || !!tok, 'generate: stop strings need a tokenizer');
  need(prompt.length <= model.maxSeq, `generate: the prompt (${prompt.length} tokens) exceeds maxSeq ${model.maxSeq}`);
  const eos = new Set(opts.eos ?? [...(tok?.eos ?? []), ...model.cfg.eos]);
  const gpuGreedy = (opts.gpuGreedy ?? true) && isGreedy(opts) && (opts.repetitionPenalty ?? 1) === 1 && !opts.onLogits;
  const lookahead = Math.max(0, opts.lookahead ?? 1);
  const rng = new Rng(opts.seed ?? 0);
  need(!busy.has(model), 'generate: this model is already generating (one generation at a time per InferenceModel)');
  const text = new TextStream(tok, prompt.slice(-8), stops);

  // reuse the cached prefix (at least one prompt token is prefilled: its logits are needed)
  let reused = 0;
  if (opts.reuseCache ?? true) {
    const c = model.tokens, lim = Math.min(c.length, prompt.length - 1);
    while (reused < lim && c[reused] === prompt[reused]) reused++;
  }
  model.truncate(Math.min(reused, model.length));

  const gen: number[] = [];
  const history = prompt.slice();
  let finish: FinishReason = 'length', stop: string | null = null, finalText = '';
  const inflight: Promise<number>[] = [];
  const t0 = performance.now();
  let tPrefill = t0, tLast = t0, steps = 0;
  busy.add(model);
  try {
    if (maxTokens === 0) return result();
    let logits: Float32Array | null = null;
    if (gpuGreedy) inflight.push(model.prefillArgmax(prompt.slice(reused)));
    else logits = await model.prefill(prompt.slice(reused));
    let recorded = 1; // steps recorded (prefill = step 0)
    for (;;) {
      let id: number;
      if (gpuGreedy) {
        // keep `lookahead` chained steps in flight behind the one awaited
        while (inflight.length <= lookahead && recorded < maxTokens && model.length < model.maxSeq) {
          inflight.push(model.decodeArgmaxChained());
          recorded++;
        }
        id = await inflight.shift()!;
      } else {
        opts.onLogits?.(logits!, gen.length);
        id = sampleToken(logits!, opts, rng, history);
      }
      const now = performance.now();
      if (gen.length === 0) tPrefill = now;
      else steps++;
      tLast = now;
      if (opts.signal?.aborted) {
        finish = 'abort';
        break;
      }
      if (eos.has(id)) {
        finish = 'eos';
        break;
      }
      gen.push(id);
      history.push(id);
      const u = text.update(gen);
      finalText = u.text;
      if (u.stop !== null) {
        finish = 'stop';
        stop = u.stop;
        yield { id, text: u.delta };
        break;
      }
      // GPU greedy: steps may already be in flight (the cache is ahead of the emitted tokens)
      const more = gpuGreedy ? inflight.length > 0 || model.length < model.maxSeq : model.length < model.maxSeq;
      if (gen.length >= maxTokens || !more) {
        yield { id, text: u.delta + text.flush(finalText) };
        finish = 'length';
        break;
      }
      yield { id, text: u.delta };
      if (opts.signal?.aborted) {
        finish = 'abort';
        break;
      }
      if (!gpuGreedy) logits = await model.decode(id);
    }
    const rest = text.flush(finalText);
    if (rest) yield { id: null, text: rest };
    return result();
  } finally {
    // settle chained steps still in flight, then record what the cache really holds:
    // every emitted token but the last was fed; the last too when EOS followed it
    try {
      for (const p of inflight.splice(0)) await p.catch(() => 0);
      const fed = finish === 'eos' ? gen.length : Math.max(0, gen.length - 1);
      const keep = prompt.concat(gen.slice(0, fed));
      model.keep(keep.slice(0, Math.min(keep.length, model.length)));
    } finally {
      busy.delete(model);
    }
  }

  function result(): GenerateResult {
    const decodeMs = steps ? tLast - tPrefill : 0;
    return {
      ids: gen.slice(), text: finalText, finishReason: finish, stop, promptTokens: prompt.length, reusedTokens: reused,
      prefillMs: tPrefill - t0, decodeMs, decodeTokens: steps, tokensPerSecond: steps && decodeMs > 0 ? (steps / decodeMs) * 1000 : 0, gpuGreedy,
    };
  }
}

/** Run generate() to the end; onToken sees every streamed event. */
export async function generateText(model: InferenceModel, prompt: number[], opts: GenerateOptions & { onToken?: (t: GenToken) => void } = {}): Promise<GenerateResult> {
  const it = generate(model, prompt, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
    opts.onToken?.(r.value);
  }
}
