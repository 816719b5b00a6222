// The GPU Llama-family model with LoRA: frozen (f32/q8/q4) base weights, LoRA A/B + gradients +
// AdamW moments in one flat buffer each, and every activation laid out once per (B,T) in arenas
// (src/model/memory.ts), so a training step allocates nothing and is recorded into one encoder:
// setBatch → forward → backward → optimizerStep, one submission, reading back only the per-token
// losses and correct flags. CPU twin: src/ref/model.ts.
// Optional gradient checkpointing keeps only each layer's input residual and recomputes the layer's
// forward inside backward (bit-identical: same kernels, same inputs, same dropout seeds).
// Legend: B batch, T time, N = B*T rows, C hidden, V vocab, L layers, NH heads, NKV kv heads,
// HS head size, R LoRA rank, F ffn size; QD = NH*HS, KVD = NKV*HS.
import type { Buf, Gpu } from '../gpu/device.ts';
import { adamw_step, global_norm_sq } from '../ops/adamw.ts';
import { attention_backward, attention_forward, tuneAttention } from '../ops/attention.ts';
import { embedding_forward } from '../ops/embedding.ts';
import { linear_backward, linear_forward, type QWeight, tuneLinear, uploadWeight } from '../ops/linear.ts';
import { lora_backward_dh, lora_backward_params, lora_hidden } from '../ops/lora.ts';
import { rmsnorm_backward, rmsnorm_forward } from '../ops/rmsnorm.ts';
import { rope_backward, rope_forward } from '../ops/rope.ts';
import { swiglu_backward, swiglu_forward } from '../ops/swiglu.ts';
import { xent_backward, xent_forward, xentChunkRows, xentScratchBytes, type XentTicket } from '../ops/xent.ts';
import { need } from '../ops/util.ts';
import { type AdamWOptions, type Batch, lossScale, tokenAccuracy } from '../ref/model.ts';
import { rope_inv_freq } from '../ref/rope.ts';
import { XENT_IGNORE } from '../ref/xent.ts';
import type { Vec } from '../ref/types.ts';
import { type LayerWeights, type LlamaConfig, type LlamaWeights, type LoraConfig, type LoraTarget, LORA_TARGETS, loraScale, targetShape as targetShapeOf } from './config.ts';
import { initLora, type LoraLayout, type LoraParams, type LoraSlot, loraKey, loraLayout, loraSeed } from './lora.ts';
import { Arena, elems, tableBytes, type TensorSpec } from './memory.ts';
import { dequantize, type QFormat, quantize } from './quant.ts';
import { residual_forward } from '../ops/residual.ts';

export interface ModelOptions {
  /** storage format of the frozen linear weights and the embedding / lm_head */
  quant: QFormat;
  lora: LoraConfig;
  /** B: sequences per step */
  batch: number;
  /** T: tokens per sequence */
  seq: number;
  /** keep only layer inputs, recompute each layer's forward in backward */
  checkpointing?: boolean;
  /** base seed of LoRA initialisation and dropout masks */
  seed?: number;
  /** initial LoRA parameters (default: initLora(cfg, lora, seed) — A Kaiming-uniform, B = 0) */
  init?: LoraParams<Vec>;
  /** lm_head rows per cross-entropy chunk (default: a (N, chunk) logits scratch of ≤ 16 MiB) */
  xentChunk?: number;
}

export interface OptimizerStep extends AdamWOptions {
  /** 1-based step (bias correction; also selects the dropout masks of trainStep) */
  t: number;
}

export interface StepResult {
  loss: number;
  tokenAccuracy: number;
}

/** Bytes per category; activations come from the layout table (one row per tensor). */
export interface MemoryReport {
  baseWeights: number;
  /** LoRA params + grads + Adam m + v */
  loraAndOptimizer: number;
  /** trainable LoRA parameters (count, no alignment padding) */
  trainableParams: number;
  /** tensors saved for backward */
  activations: number;
  /** batch inputs, loss outputs, gradient scratch, per-step temporaries, xent chunk scratch, logits */
  scratch: number;
  total: number;
  checkpointing: boolean;
  /** activation bytes of the same (B,T) without checkpointing */
  activationsWithoutCheckpointing: number;
  /** activationsWithoutCheckpointing − activations */
  checkpointSaved: number;
  table: { name: string; shape: number[]; bytes: number }[];
}

/** Base weights as the GPU sees them: every weight the model quantizes, dequantized (for the reference). */
export function dequantizedWeights(cfg: LlamaConfig, w: LlamaWeights, format: QFormat): LlamaWeights {
  const dq = (a: Float32Array, rows: number, cols: number) => dequantize(quantize(a, rows, cols, format));
  const C = cfg.hidden, QD = cfg.heads * cfg.headDim, KVD = cfg.kvHeads * cfg.headDim, F = cfg.ffn, V = cfg.vocab;
  return {
    embed: dq(w.embed, V, C),
    norm: w.norm,
    lmHead: w.lmHead && dq(w.lmHead, V, C),
    layers: w.layers.map((l) => ({
      ...l,
      wq: dq(l.wq, QD, C), wk: dq(l.wk, KVD, C), wv: dq(l.wv, KVD, C), wo: dq(l.wo, C, QD),
      wGate: dq(l.wGate, F, C), wUp: dq(l.wUp, F, C), wDown: dq(l.wDown, C, F),
    })),
  };
}

export interface GpuLayer {
  attnNorm: GPUBuffer; // (C)
  ffnNorm: GPUBuffer; // (C)
  w: Record<LoraTarget, QWeight>; // q (QD,C) k,v (KVD,C) o (C,QD) gate,up (F,C) down (C,F)
  bias: Record<LoraTarget, GPUBuffer | null>; // q/k/v bias when cfg.attnBias
}

/** The frozen base on the GPU, as LlamaModel uploads it (shared read-only by src/model/generate.ts). */
export interface GpuBaseWeights {
  embed: QWeight; // (V,C)
  lmHead: QWeight; // (V,C), the embed when tied
  norm: GPUBuffer; // (C)
  invFreq: GPUBuffer; // (HS/2)
  layers: GpuLayer[];
}

/** Activations of one layer (a layer's own set, or the shared recompute set when checkpointing). */
interface LayerActs {
  rstd1: Buf; // (N)
  h1: Buf; // (N,C)
  q: Buf; // (N,QD) after rope
  k: Buf; // (N,KVD) after rope
  v: Buf; // (N,KVD)
  att: Buf; // (N,QD)
  lse: Buf; // (B,NH,T)
  x2: Buf; // (N,C)
  rstd2: Buf; // (N)
  h2: Buf; // (N,C)
  gate: Buf; // (N,F)
  up: Buf; // (N,F)
  s: Buf; // (N,F)
  h: Partial<Record<LoraTarget, Buf>>; // LoRA hidden (N,R) of each adapted target
}

/** Per-layer gradient scratch, zeroed once per layer in backward. */
interface LayerGrads {
  ds: Buf; // (N,F)
  dgate: Buf; // (N,F)
  dup: Buf; // (N,F)
  dh2: Buf; // (N,C)
  datt: Buf; // (N,QD)
  dq: Buf; // (N,QD)
  dk: Buf; // (N,KVD)
  dv: Buf; // (N,KVD)
  dh1: Buf; // (N,C)
}

/** Bindings of one adapter in the flat params / grads buffers. */
interface Adapter {
  slot: LoraSlot;
  A: Buf; // (R,IC)
  B: Buf; // (OC,R)
  dA: Buf;
  dB: Buf;
}

/** Activation layout table of a (B,T) model: residuals x.0..x.L, layer sets, final norm. */
export function activationTable(cfg: LlamaConfig, lora: LoraConfig, B: number, T: number, checkpointing: boolean): TensorSpec[] {
  const N = B * T, C = cfg.hidden, QD = cfg.heads * cfg.headDim, KVD = cfg.kvHeads * cfg.headDim, F = cfg.ffn;
  const specs: TensorSpec[] = [];
  for (let l = 0; l <= cfg.layers; l++) specs.push({ name: `x.${l}`, shape: [N, C] });
  const sets = checkpointing ? ['work'] : Array.from({ length: cfg.layers }, (_, l) => `l${l}`);
  for (const s of sets) {
    specs.push(
      { name: `${s}.rstd1`, shape: [N] }, { name: `${s}.h1`, shape: [N, C] },
      { name: `${s}.q`, shape: [N, QD] }, { name: `${s}.k`, shape: [N, KVD] }, { name: `${s}.v`, shape: [N, KVD] },
      { name: `${s}.att`, shape: [N, QD] }, { name: `${s}.lse`, shape: [B, cfg.heads, T] },
      { name: `${s}.x2`, shape: [N, C] }, { name: `${s}.rstd2`, shape: [N] }, { name: `${s}.h2`, shape: [N, C] },
      { name: `${s}.gate`, shape: [N, F] }, { name: `${s}.up`, shape: [N, F] }, { name: `${s}.s`, shape: [N, F] },
    );
    for (const t of LORA_TARGETS) if (lora.targets.includes(t)) specs.push({ name: `${s}.h.${t}`, shape: [N, lora.rank] });
  }
  specs.push({ name: 'final.rstd', shape: [N] }, { name: 'final.h', shape: [N, C] }, { name: 'final.lse', shape: [N] });
  return specs;
}

export class LlamaModel {
  readonly gpu: Gpu;
  readonly cfg: LlamaConfig;
  readonly opts: Required<Omit<ModelOptions, 'init'>>;
  readonly layout: LoraLayout;
  /** training step whose dropout masks forward/backward use (trainStep sets it to opt.t) */
  step = 1;
  private N: number;
  private chunk: number;
  /** xent_forward's ticket from the last forward(), for the backward to reuse its last logits chunk */
  private xentTicket: XentTicket | null = null;
  // frozen base
  private embed: QWeight; // (V,C)
  private lmHead: QWeight; // (V,C), the embed when tied
  private norm: GPUBuffer; // (C)
  private invFreq: GPUBuffer; // (HS/2)
  private layers: GpuLayer[];
  private baseBytes = 0;
  // LoRA: one flat buffer each (layout.floats f32)
  private params: GPUBuffer;
  private grads: GPUBuffer;
  private m: GPUBuffer;
  private v: GPUBuffer;
  private adapters = new Map<string, Adapter>();
  // arenas
  private acts: Arena; // saved activations
  private io: Arena; // batch inputs and loss outputs
  private gradTop: Arena; // dx, dhf (N,C)
  private gradLayer: Arena; // per-layer gradient scratch
  private tmp: Arena; // projection output, LoRA dh, norm²
  private layerActs: LayerActs[];
  private lg: LayerGrads;
  private logitsBuf: GPUBuffer | null = null;
  // host copy of the current batch (loss on readback)
  private hostTargets: Uint32Array;
  private hostDloss: Float64Array;
  private training = false;

  constructor(gpu: Gpu, cfg: LlamaConfig, weights: LlamaWeights, opts: ModelOptions) {
    this.gpu = gpu;
    this.cfg = cfg;
    const B = opts.batch, T = opts.seq, N = B * T;
    this.N = N;
    need(B >= 1 && T >= 1, 'model: batch ≥ 1 and seq ≥ 1');
    need(weights.layers.length === cfg.layers, `model: ${weights.layers.length} layers of weights for cfg.layers = ${cfg.layers}`);
    const maxBind = gpu.info.limits.maxStorageBufferBindingSize ?? 128 << 20;
    this.chunk = opts.xentChunk === undefined ? xentChunkRows(N, cfg.vocab, maxBind)
      : Math.max(1, Math.min(opts.xentChunk, cfg.vocab, Math.floor(maxBind / (4 * N))));
    this.opts = { quant: opts.quant, lora: opts.lora, batch: B, seq: T, checkpointing: opts.checkpointing ?? false, seed: opts.seed ?? 0, xentChunk: this.chunk };
    const C = cfg.hidden, QD = cfg.heads * cfg.headDim, KVD = cfg.kvHeads * cfg.headDim, F = cfg.ffn, V = cfg.vocab;

    // frozen base weights
    const up = (w: Float32Array, rows: number, cols: number, label: string): QWeight => {
      const q = uploadWeight(gpu, quantize(w, rows, cols, opts.quant), label);
      this.baseBytes += q.buf.size;
      return q;
    };
    const f32 = (a: Float32Array, label: string): GPUBuffer => {
      const b = gpu.f32(a, label);
      this.baseBytes += b.size;
      return b;
    };
    this.embed = up(weights.embed, V, C, 'base.embed');
    this.lmHead = weights.lmHead ? up(weights.lmHead, V, C, 'base.lmHead') : this.embed;
    this.norm = f32(weights.norm, 'base.norm');
    this.invFreq = f32(rope_inv_freq(cfg.headDim, cfg.ropeTheta, cfg.ropeScaling), 'base.invFreq');
    const bias = (b: Float32Array | null, label: string) => (cfg.attnBias && b ? f32(b, label) : null);
    this.layers = weights.layers.map((lw: LayerWeights, l) => ({
      attnNorm: f32(lw.attnNorm, `base.l${l}.attnNorm`),
      ffnNorm: f32(lw.ffnNorm, `base.l${l}.ffnNorm`),
      w: {
        q: up(lw.wq, QD, C, `base.l${l}.wq`), k: up(lw.wk, KVD, C, `base.l${l}.wk`), v: up(lw.wv, KVD, C, `base.l${l}.wv`),
        o: up(lw.wo, C, QD, `base.l${l}.wo`), gate: up(lw.wGate, F, C, `base.l${l}.wGate`),
        up: up(lw.wUp, F, C, `base.l${l}.wUp`), down: up(lw.wDown, C, F, `base.l${l}.wDown`),
      },
      bias: {
        q: bias(lw.bq, `base.l${l}.bq`), k: bias(lw.bk, `base.l${l}.bk`), v: bias(lw.bv, `base.l${l}.bv`),
        o: null, gate: null, up: null, down: null,
      },
    }));

    // LoRA params / grads / m / v: one flat buffer each, tensors at aligned offsets
    this.layout = loraLayout(cfg, opts.lora, gpu.alignment);
    const nf = this.layout.floats;
    this.params = gpu.f32(nf, 'lora.params');
    this.grads = gpu.f32(nf, 'lora.grads');
    this.m = gpu.f32(nf, 'lora.m');
    this.v = gpu.f32(nf, 'lora.v');
    const R = this.layout.rank;
    const range = (buf: GPUBuffer, off: number, n: number): Buf => ({ buffer: buf, offset: off * 4, size: n * 4 });
    for (const s of this.layout.slots) {
      this.adapters.set(s.key, {
        slot: s,
        A: range(this.params, s.a, R * s.in), B: range(this.params, s.b, s.out * R),
        dA: range(this.grads, s.a, R * s.in), dB: range(this.grads, s.b, s.out * R),
      });
    }
    this.setLora(opts.init ?? initLora(cfg, opts.lora, this.opts.seed));

    // arenas, laid out once for (B,T)
    this.acts = new Arena(gpu, 'act', activationTable(cfg, opts.lora, B, T, this.opts.checkpointing));
    this.io = new Arena(gpu, 'io', [
      { name: 'ids', shape: [N] }, { name: 'targets', shape: [N] }, { name: 'valid', shape: [N] }, { name: 'pos', shape: [N] },
      { name: 'dloss', shape: [N] }, { name: 'losses', shape: [N] }, { name: 'correct', shape: [N] }, { name: 'stats', shape: [2, N] },
    ]);
    this.gradTop = new Arena(gpu, 'grad', [{ name: 'dx', shape: [N, C] }, { name: 'dhf', shape: [N, C] }]);
    this.gradLayer = new Arena(gpu, 'grad', [
      { name: 'ds', shape: [N, F] }, { name: 'dgate', shape: [N, F] }, { name: 'dup', shape: [N, F] },
      { name: 'dh2', shape: [N, C] }, { name: 'datt', shape: [N, QD] }, { name: 'dq', shape: [N, QD] },
      { name: 'dk', shape: [N, KVD] }, { name: 'dv', shape: [N, KVD] }, { name: 'dh1', shape: [N, C] },
    ]);
    this.tmp = new Arena(gpu, 'scratch', [
      { name: 'proj', shape: [N, C] }, { name: 'normsq', shape: [1] },
      ...(this.layout.slots.length ? [{ name: 'dh', shape: [N, R] }] : []),
    ]);
    const set = (s: string): LayerActs => {
      const a = (n: string) => this.acts.get(`${s}.${n}`);
      const h: LayerActs['h'] = {};
      for (const t of opts.lora.targets) h[t] = a(`h.${t}`);
      return {
        rstd1: a('rstd1'), h1: a('h1'), q: a('q'), k: a('k'), v: a('v'), att: a('att'), lse: a('lse'),
        x2: a('x2'), rstd2: a('rstd2'), h2: a('h2'), gate: a('gate'), up: a('up'), s: a('s'), h,
      };
    };
    const work = this.opts.checkpointing ? set('work') : null;
    this.layerActs = Array.from({ length: cfg.layers }, (_, l) => work ?? set(`l${l}`));
    const g = (n: string) => this.gradLayer.get(n);
    this.lg = { ds: g('ds'), dgate: g('dgate'), dup: g('dup'), dh2: g('dh2'), datt: g('datt'), dq: g('dq'), dk: g('dk'), dv: g('dv'), dh1: g('dh1') };
    this.hostTargets = new Uint32Array(N).fill(XENT_IGNORE);
    this.hostDloss = new Float64Array(N);
  }

  /** Write a (B,T) batch: ids, targets, valid, pos and dloss = lossWeights / Σ lossWeights. */
  setBatch(b: Batch): void {
    const N = this.N;
    need(b.B === this.opts.batch && b.T === this.opts.seq, `setBatch: batch is (${b.B},${b.T}), the model was laid out for (${this.opts.batch},${this.opts.seq})`);
    need(b.ids.length === N && b.targets.length === N && b.valid.length === N && b.pos.length === N && b.lossWeights.length === N, 'setBatch: every array has B·T entries');
    this.hostTargets = b.targets;
    this.hostDloss = lossScale(b.lossWeights);
    const io = this.io, g = this.gpu;
    const w = (name: string, data: Uint32Array | Float32Array) => g.write(io.get(name), data);
    w('ids', b.ids);
    w('targets', b.targets);
    w('valid', b.valid);
    w('pos', b.pos);
    w('dloss', Float32Array.from(this.hostDloss));
  }

  /**
   * Record the forward of the current batch: per-token losses / correct (vocab-chunked xent).
   * train: dropout on; grad (default: train): a backward follows, so the cross-entropy accumulates
   * its gradient while each vocab chunk's logits are at hand (no chunk is recomputed in backward).
   */
  forward(train = true, grad = train): void {
    this.recordTrunk(train);
    const C = this.cfg.hidden, V = this.cfg.vocab, io = this.io;
    this.xentTicket = xent_forward(this.gpu, io.get('losses'), this.acts.get('final.lse'), io.get('correct'), this.acts.get('final.h'),
      this.lmHead, io.get('targets'), this.N, C, V, this.chunk, { grad });
  }

  /** Record the backward of the last forward: zero the LoRA grads, then reverse over the layers. */
  backward(): void {
    const g = this.gpu, N = this.N, C = this.cfg.hidden, V = this.cfg.vocab, A = this.acts;
    const dx = this.gradTop.get('dx'), dhf = this.gradTop.get('dhf');
    g.clear(this.grads);
    this.gradTop.clear();
    // the forward's accumulated gradient (or its last logits chunk) is used when still in the scratch (xent checks)
    xent_backward(g, dhf, A.get('final.h'), this.lmHead, this.io.get('targets'), A.get('final.lse'), this.io.get('dloss'), N, C, V, this.chunk, this.xentTicket);
    this.xentTicket = null;
    rmsnorm_backward(g, dx, dhf, A.get(`x.${this.cfg.layers}`), this.norm, A.get('final.rstd'), N, C);
    // layers below the lowest adapted one need no gradient at all
    const lowest = Math.min(this.cfg.layers, ...this.layout.slots.map((s) => s.layer));
    for (let l = this.cfg.layers - 1; l >= lowest; l--) {
      if (this.opts.checkpointing) this.layerForward(l, true);
      this.gradLayer.clear();
      this.layerBackward(l, dx, l > lowest);
    }
  }

  /** Record clip-by-global-norm + AdamW over the whole flat LoRA buffer (padding stays 0). */
  optimizerStep(o: OptimizerStep): void {
    const g = this.gpu, n = this.layout.floats, normsq = this.tmp.get('normsq');
    global_norm_sq(g, normsq, this.grads, n);
    adamw_step(g, this.params, this.grads, this.m, this.v, normsq, n, o.lr, o.beta1, o.beta2, o.eps, o.weightDecay, o.t, o.maxNorm);
  }

  /** One training step (dropout masks of step o.t) in one submission; returns the step's loss. */
  trainStep(batch: Batch, o: OptimizerStep): Promise<StepResult> {
    return this.gpu.scoped('trainStep', () => {
      this.step = o.t;
      this.setBatch(batch);
      this.forward(true);
      this.backward();
      this.optimizerStep(o);
      return this.readLoss();
    });
  }

  /**
   * Pick the fastest linear kernel variant for every matmul shape of this model on this adapter, and
   * attention's form (subgroup or workgroup-tiled) for its head size and sequence length (a short
   * timed trial per shape class at first use, cached per adapter: src/gpu/autotune.ts).
   * Call once after creation, never inside a step; untuned shapes use the default variant.
   */
  async tune(): Promise<void> {
    const { cfg, N } = this, f = this.opts.quant;
    const seen = new Set<string>();
    const shapes: { format: QFormat; N: number; IC: number; OC: number }[] = [];
    const add = (format: QFormat, IC: number, OC: number) => {
      const k = `${format}:${IC}:${OC}`;
      if (!seen.has(k)) { seen.add(k); shapes.push({ format, N, IC, OC }); }
    };
    for (const t of LORA_TARGETS) {
      const [OC, IC] = targetShapeOf(cfg, t);
      add(f, IC, OC);
    }
    add(f, cfg.hidden, Math.min(this.chunk, cfg.vocab));
    await tuneLinear(this.gpu, shapes);
    await tuneAttention(this.gpu, [{ B: this.opts.batch, T: this.opts.seq, NH: cfg.heads, NKV: cfg.kvHeads, HS: cfg.headDim }]);
  }

  /**
   * Read back the per-token losses and correct flags of the last forward (gathered into one
   * (2,N) buffer, one readback): the weighted loss and the token accuracy.
   */
  async readLoss(): Promise<StepResult> {
    const N = this.N, io = this.io, stats = io.get('stats');
    this.gpu.copy(io.get('losses'), 0, stats, 0, N * 4);
    this.gpu.copy(io.get('correct'), 0, stats, N * 4, N * 4);
    const all = await this.gpu.readF32(stats, 2 * N, { relaxed: true }); // a throughput wait (Gpu.settle)
    const losses = all.subarray(0, N), correct = all.subarray(N);
    let loss = 0;
    for (let n = 0; n < N; n++) loss += losses[n] * this.hostDloss[n];
    return { loss, tokenAccuracy: tokenAccuracy(correct, this.hostTargets) };
  }

  /**
   * Full logits of up to B sequences (each ≤ T tokens, positions from 0), LoRA applied without
   * dropout: one (len, V) Float32Array per sequence. Overwrites the current batch.
   */
  async logits(seqs: number[][]): Promise<Float32Array[]> {
    const { batch: B, seq: T } = this.opts, N = this.N, C = this.cfg.hidden, V = this.cfg.vocab;
    need(seqs.length >= 1 && seqs.length <= B && seqs.every((s) => s.length >= 1 && s.length <= T), `logits: 1..${B} sequences of 1..${T} tokens`);
    const ids = new Uint32Array(N), valid = new Uint32Array(N), pos = new Uint32Array(N);
    seqs.forEach((s, b) => s.forEach((id, t) => {
      ids[b * T + t] = id;
      valid[b * T + t] = 1;
      pos[b * T + t] = t;
    }));
    this.setBatch({ B, T, ids, valid, pos, targets: new Uint32Array(N).fill(XENT_IGNORE), lossWeights: new Float32Array(N) });
    if (!this.logitsBuf) this.logitsBuf = this.gpu.f32(N * this.chunk, 'scratch.logits');
    const out = seqs.map((s) => new Float32Array(s.length * V));
    await this.gpu.scoped('logits', async () => {
      this.recordTrunk(false);
      for (let r0 = 0; r0 < V; r0 += this.chunk) {
        const len = Math.min(this.chunk, V - r0);
        linear_forward(this.gpu, this.logitsBuf!, this.acts.get('final.h'), this.lmHead, null, N, C, len, r0);
        const z = await this.gpu.readF32(this.logitsBuf!, N * len);
        seqs.forEach((s, b) => {
          for (let t = 0; t < s.length; t++) out[b].set(z.subarray((b * T + t) * len, (b * T + t + 1) * len), t * V + r0);
        });
      }
    });
    return out;
  }

  /** LoRA parameters (host copies), keyed by loraKey(layer, target). */
  getLora(): Promise<LoraParams> {
    return this.readFlat(this.params);
  }

  /** LoRA gradients of the last backward, keyed like getLora. */
  getGrads(): Promise<LoraParams> {
    return this.readFlat(this.grads);
  }

  /**
   * The flat LoRA buffers (layout.floats f32 each, tensors at the layout's offsets): params, grads
   * of the last backward, AdamW first / second moments. For the training layer (src/train:
   * gradient accumulation, checkpoint save / restore); touch them only between steps.
   */
  flatBuffers(): { params: GPUBuffer; grads: GPUBuffer; m: GPUBuffer; v: GPUBuffer } {
    return { params: this.params, grads: this.grads, m: this.m, v: this.v };
  }

  /** Write LoRA parameters (every adapter present in `p` is written; others are left). */
  setLora(p: LoraParams<Vec>): void {
    for (const [key, pair] of p) {
      const a = this.adapters.get(key);
      need(!!a, `setLora: ${key} is not an adapted (layer.target) of this model`);
      need(pair.A.length === this.layout.rank * a.slot.in && pair.B.length === a.slot.out * this.layout.rank, `setLora: ${key} has the wrong shape`);
      this.gpu.write(this.params, Float32Array.from(pair.A), a.slot.a * 4);
      this.gpu.write(this.params, Float32Array.from(pair.B), a.slot.b * 4);
    }
  }

  /**
   * The frozen base and the live LoRA parameter buffer, shared (not copied): inference on the model
   * being trained (src/model/generate.ts InferenceModel.fromModel). Do not destroy them.
   */
  gpuWeights(): { base: GpuBaseWeights; lora: { layout: LoraLayout; params: GPUBuffer; scale: number } } {
    return {
      base: { embed: this.embed, lmHead: this.lmHead, norm: this.norm, invFreq: this.invFreq, layers: this.layers },
      lora: { layout: this.layout, params: this.params, scale: loraScale(this.opts.lora) },
    };
  }

  memoryReport(): MemoryReport {
    const { batch: B, seq: T, checkpointing, lora } = this.opts;
    const noCkpt = tableBytes(activationTable(this.cfg, lora, B, T, false));
    const xentScratch = xentScratchBytes(this.N, this.cfg.hidden, this.cfg.vocab, this.chunk, true); // src/ops/xent.ts scratch (training)
    const scratch = this.io.bytes + this.gradTop.bytes + this.gradLayer.bytes + this.tmp.bytes + xentScratch + (this.logitsBuf?.size ?? 0);
    const loraAndOptimizer = this.params.size + this.grads.size + this.m.size + this.v.size;
    return {
      baseWeights: this.baseBytes,
      loraAndOptimizer,
      trainableParams: this.layout.params,
      activations: this.acts.bytes,
      scratch,
      total: this.baseBytes + loraAndOptimizer + this.acts.bytes + scratch,
      checkpointing,
      activationsWithoutCheckpointing: noCkpt,
      checkpointSaved: noCkpt - this.acts.bytes,
      table: this.acts.specs.map((s) => ({ name: s.name, shape: s.shape, bytes: elems(s.shape) * 4 })),
    };
  }

  /** Free every buffer of the model. */
  destroy(): void {
    const g = this.gpu;
    const weights = new Set<GPUBuffer>([this.embed.buf, this.lmHead.buf, this.norm, this.invFreq]);
    for (const l of this.layers) {
      weights.add(l.attnNorm).add(l.ffnNorm);
      for (const t of LORA_TARGETS) {
        weights.add(l.w[t].buf);
        const b = l.bias[t];
        if (b) weights.add(b);
      }
    }
    for (const b of weights) g.destroy(b);
    for (const b of [this.params, this.grads, this.m, this.v]) g.destroy(b);
    for (const a of [this.acts, this.io, this.gradTop, this.gradLayer, this.tmp]) a.destroy();
    if (this.logitsBuf) g.destroy(this.logitsBuf);
  }

  // ---- recording ---------------------------------------------------------------------------

  private async readFlat(buf: GPUBuffer): Promise<LoraParams> {
    const flat = await this.gpu.readF32(buf);
    const R = this.layout.rank, out: LoraParams = new Map();
    for (const s of this.layout.slots) out.set(s.key, { A: flat.slice(s.a, s.a + R * s.in), B: flat.slice(s.b, s.b + s.out * R) });
    return out;
  }

  /** Embedding, every layer, final norm into final.h (no loss). */
  private recordTrunk(train: boolean): void {
    this.training = train;
    const g = this.gpu, N = this.N, C = this.cfg.hidden, A = this.acts;
    embedding_forward(g, A.get('x.0'), this.io.get('ids'), this.embed, N, C);
    for (let l = 0; l < this.cfg.layers; l++) this.layerForward(l, false);
    rmsnorm_forward(g, A.get('final.h'), A.get('final.rstd'), A.get(`x.${this.cfg.layers}`), this.norm, N, C, this.cfg.eps);
  }

  /** LoRA launch parameters of (layer, target) for the current step, or null when not adapted. */
  private adapter(l: number, t: LoraTarget) {
    const a = this.adapters.get(loraKey(l, t));
    if (!a) return null;
    const lora = this.opts.lora;
    return { a, scale: loraScale(lora), p: this.training ? lora.dropout : 0, seed: loraSeed(this.opts.seed, this.step, l, t) };
  }

  /**
   * out (N,OC) = inp·Wᵀ (+bias) + LoRA(inp), the LoRA hidden into la.h[t]; the adapter's output
   * product runs inside the linear's kernel where it can (linear_forward opts.lora).
   */
  private proj(l: number, t: LoraTarget, la: LayerActs, out: Buf, inp: Buf): void {
    const g = this.gpu, N = this.N, w = this.layers[l].w[t], R = this.layout.rank;
    const ad = this.adapter(l, t);
    if (ad) lora_hidden(g, la.h[t]!, inp, ad.a.A, N, w.cols, R, ad.p, ad.seed);
    linear_forward(g, out, inp, w, this.layers[l].bias[t], N, w.cols, w.rows, 0,
      ad ? { lora: { h: la.h[t]!, B: ad.a.B, rank: R, scale: ad.scale } } : {});
  }

  /**
   * dinp (N,IC) += through the frozen W and the adapter; dA, dB += into the flat grads. The
   * adapter's dinp product runs inside the linear's kernel where it can (opts.loraGrad).
   */
  private projBack(l: number, t: LoraTarget, la: LayerActs, dinp: Buf | null, dout: Buf, inp: Buf): void {
    const g = this.gpu, N = this.N, w = this.layers[l].w[t], R = this.layout.rank;
    const ad = this.adapter(l, t);
    if (!ad) {
      if (dinp) linear_backward(g, dinp, dout, w, N, w.cols, w.rows);
      return;
    }
    const dh = this.tmp.get('dh');
    lora_backward_dh(g, dh, dout, ad.a.B, N, w.rows, R, ad.scale);
    if (dinp) linear_backward(g, dinp, dout, w, N, w.cols, w.rows, 0, { loraGrad: { dh, A: ad.a.A, rank: R, p: ad.p, seed: ad.seed } });
    lora_backward_params(g, ad.a.dA, ad.a.dB, dh, dout, inp, la.h[t]!, N, w.cols, w.rows, R, ad.scale, ad.p, ad.seed);
  }

  /** Layer l: x.l → x.(l+1), saving its activations; `recompute` (checkpointing) skips the output. */
  private layerForward(l: number, recompute: boolean): void {
    const g = this.gpu, cfg = this.cfg, N = this.N, A = this.acts, la = this.layerActs[l], L = this.layers[l];
    const C = cfg.hidden, HS = cfg.headDim, NH = cfg.heads, NKV = cfg.kvHeads, F = cfg.ffn;
    const x = A.get(`x.${l}`), proj = this.tmp.get('proj'), pos = this.io.get('pos');
    rmsnorm_forward(g, la.h1, la.rstd1, x, L.attnNorm, N, C, cfg.eps);
    this.proj(l, 'q', la, la.q, la.h1);
    this.proj(l, 'k', la, la.k, la.h1);
    this.proj(l, 'v', la, la.v, la.h1);
    rope_forward(g, la.q, pos, this.invFreq, N, NH, HS, cfg.ropeStyle);
    rope_forward(g, la.k, pos, this.invFreq, N, NKV, HS, cfg.ropeStyle);
    attention_forward(g, la.att, la.lse, la.q, la.k, la.v, this.io.get('valid'), this.opts.batch, this.opts.seq, NH, NKV, HS);
    this.proj(l, 'o', la, proj, la.att);
    residual_forward(g, la.x2, x, proj, N * C);
    rmsnorm_forward(g, la.h2, la.rstd2, la.x2, L.ffnNorm, N, C, cfg.eps);
    this.proj(l, 'gate', la, la.gate, la.h2);
    this.proj(l, 'up', la, la.up, la.h2);
    swiglu_forward(g, la.s, la.gate, la.up, N * F);
    this.proj(l, 'down', la, proj, la.s);
    if (!recompute) residual_forward(g, A.get(`x.${l + 1}`), la.x2, proj, N * C);
  }

  /** dx (N,C): ∂loss/∂x.(l+1) in, ∂loss/∂x.l out (in place); LoRA grads of layer l accumulated. */
  /**
   * Layer l's backward: dx (the residual stream's gradient) in, dx below out, LoRA grads added.
   * inGrad = false (no adapter below this layer): the gradient into the layer's input is not needed,
   * so the attention branch's input projections and norm skip their input gradient (their adapters
   * still get dA, dB).
   */
  private layerBackward(l: number, dx: Buf, inGrad: boolean): void {
    const g = this.gpu, cfg = this.cfg, N = this.N, la = this.layerActs[l], L = this.layers[l], d = this.lg;
    const C = cfg.hidden, HS = cfg.headDim, NH = cfg.heads, NKV = cfg.kvHeads, F = cfg.ffn;
    const pos = this.io.get('pos');
    const dh1 = inGrad ? d.dh1 : null;
    // MLP branch
    this.projBack(l, 'down', la, d.ds, dx, la.s);
    swiglu_backward(g, d.dgate, d.dup, d.ds, la.gate, la.up, N * F);
    this.projBack(l, 'gate', la, d.dh2, d.dgate, la.h2);
    this.projBack(l, 'up', la, d.dh2, d.dup, la.h2);
    rmsnorm_backward(g, dx, d.dh2, la.x2, L.ffnNorm, la.rstd2, N, C);
    // attention branch
    this.projBack(l, 'o', la, d.datt, dx, la.att);
    attention_backward(g, d.dq, d.dk, d.dv, d.datt, la.q, la.k, la.v, la.att, la.lse, this.io.get('valid'), this.opts.batch, this.opts.seq, NH, NKV, HS);
    rope_backward(g, d.dq, pos, this.invFreq, N, NH, HS, cfg.ropeStyle);
    rope_backward(g, d.dk, pos, this.invFreq, N, NKV, HS, cfg.ropeStyle);
    this.projBack(l, 'q', la, dh1, d.dq, la.h1);
    this.projBack(l, 'k', la, dh1, d.dk, la.h1);
    this.projBack(l, 'v', la, dh1, d.dv, la.h1);
    if (inGrad) rmsnorm_backward(g, dx, d.dh1, this.acts.get(`x.${l}`), L.attnNorm, la.rstd1, N, C);
  }
}
