// Memory planner: predicts, before anything is allocated, the GPU memory LlamaModel
// (src/model/llama.ts) will take for a model config and training settings — from the same layout
// functions the model allocates with (activationTable, loraLayout, tableBytes, bytesOf), so the
// prediction equals LlamaModel.memoryReport() — checks it against the device's buffer limits and a
// memory budget, and adapts settings that do not fit: gradient checkpointing first, then shorter
// sequences, then a smaller micro-batch (more gradient accumulation keeps the effective batch),
// each with a message; otherwise a refusal that says why and what would help.
// It is not: an allocator, nor a measurement (memoryReport / gpu.allocated are).
// No DOM, no node:*.
import type { LlamaConfig, LoraConfig, LoraTarget } from '../model/config.ts';
import { activationTable } from '../model/llama.ts';
import { loraLayout } from '../model/lora.ts';
import { elems, tableBytes, type TensorSpec } from '../model/memory.ts';
import { bytesOf, type QFormat } from '../model/quant.ts';
import { xentChunkRows, xentScratchBytes } from '../ops/xent.ts';

/** The device limits that matter (gpu.info.limits) plus the memory we allow ourselves. */
export interface AdapterLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  minStorageBufferOffsetAlignment: number;
  /**
   * Bytes the run may take in all. WebGPU does not report a GPU's memory, so this is the caller's
   * estimate (default 4 GiB: a safe share of an integrated GPU's or a browser tab's memory).
   */
  budgetBytes: number;
}

/** WebGPU's default limits (what every adapter supports) and a 4 GiB budget. */
export const DEFAULT_LIMITS: AdapterLimits = {
  maxBufferSize: 256 * 1024 * 1024,
  maxStorageBufferBindingSize: 128 * 1024 * 1024,
  minStorageBufferOffsetAlignment: 256,
  budgetBytes: 4 * 1024 * 1024 * 1024,
};

/** The settings the plan depends on (a subset of Hyperparameters). */
export interface MemorySettings {
  quant: QFormat;
  rank: number;
  alpha: number;
  dropout: number;
  targets: LoraTarget[];
  batchSize: number;
  seqLen: number;
  checkpointing: boolean;
  /** not priced (accumulation reuses one buffer the size of the LoRA params), kept for fitMemory */
  gradAccum: number;
}

export interface MemoryPlan {
  /** bytes by category; baseWeights..scratch use memoryReport's definitions */
  bytes: {
    baseWeights: number;
    /** LoRA params + grads + Adam m + v (four flat buffers) */
    loraAndOptimizer: number;
    /** tensors saved for backward */
    activations: number;
    /** batch inputs, loss outputs, gradient scratch, temporaries, cross-entropy chunk scratch */
    scratch: number;
    /** the trainer's gradient-accumulation buffer (one more flat LoRA buffer; 0 when gradAccum = 1) */
    accumulation: number;
  };
  /** sum of every category */
  total: number;
  /** what LlamaModel.memoryReport().total will say (total − accumulation) */
  modelTotal: number;
  trainableParams: number;
  /** the largest single buffer and the largest tensor that is bound whole */
  largestBuffer: { name: string; bytes: number };
  largestBinding: { name: string; bytes: number };
  fits: boolean;
  /** why it does not fit and what would help; empty when it fits */
  advice: string[];
  settings: MemorySettings;
}

export const mib = (b: number): string => (b >= 1 << 30 ? `${(b / (1 << 30)).toFixed(2)} GiB` : `${(b / (1 << 20)).toFixed(1)} MiB`);
const buf = (bytes: number) => Math.max(4, Math.ceil(bytes / 4) * 4);

/** Predict the memory of LlamaModel(cfg, settings) on a device with `limits` (see the header). */
export function planMemory(cfg: LlamaConfig, s: MemorySettings, limits: Partial<AdapterLimits> = {}): MemoryPlan {
  const lim: AdapterLimits = { ...DEFAULT_LIMITS, ...Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)) };
  const B = s.batchSize, T = s.seqLen, N = B * T;
  const C = cfg.hidden, QD = cfg.heads * cfg.headDim, KVD = cfg.kvHeads * cfg.headDim, F = cfg.ffn, V = cfg.vocab;
  const lora: LoraConfig = { rank: s.rank, alpha: s.alpha, dropout: s.dropout, targets: s.targets };

  // frozen base, as LlamaModel uploads it
  const weights: { name: string; bytes: number }[] = [];
  const w = (name: string, rows: number, cols: number) => weights.push({ name, bytes: buf(bytesOf(s.quant, rows, cols)) });
  const f = (name: string, n: number) => weights.push({ name, bytes: buf(n * 4) });
  w('embed', V, C);
  if (!cfg.tiedEmbeddings) w('lmHead', V, C);
  f('norm', C);
  f('invFreq', cfg.headDim / 2);
  for (let l = 0; l < cfg.layers; l++) {
    f(`l${l}.attnNorm`, C);
    f(`l${l}.ffnNorm`, C);
    w(`l${l}.wq`, QD, C); w(`l${l}.wk`, KVD, C); w(`l${l}.wv`, KVD, C); w(`l${l}.wo`, C, QD);
    w(`l${l}.wGate`, F, C); w(`l${l}.wUp`, F, C); w(`l${l}.wDown`, C, F);
    if (cfg.attnBias) { f(`l${l}.bq`, QD); f(`l${l}.bk`, KVD); f(`l${l}.bv`, KVD); }
  }
  const baseWeights = weights.reduce((a, x) => a + x.bytes, 0);

  // LoRA params / grads / m / v
  const layout = loraLayout(cfg, lora, lim.minStorageBufferOffsetAlignment);
  const flat = buf(layout.floats * 4);
  const loraAndOptimizer = 4 * flat;
  const accumulation = s.gradAccum > 1 ? flat : 0;

  // arenas
  const acts = activationTable(cfg, lora, B, T, s.checkpointing);
  const io: TensorSpec[] = ['ids', 'targets', 'valid', 'pos', 'dloss', 'losses', 'correct'].map((name) => ({ name, shape: [N] }));
  io.push({ name: 'stats', shape: [2, N] });
  const gradTop: TensorSpec[] = [{ name: 'dx', shape: [N, C] }, { name: 'dhf', shape: [N, C] }];
  const gradLayer: TensorSpec[] = [
    { name: 'ds', shape: [N, F] }, { name: 'dgate', shape: [N, F] }, { name: 'dup', shape: [N, F] }, { name: 'dh2', shape: [N, C] },
    { name: 'datt', shape: [N, QD] }, { name: 'dq', shape: [N, QD] }, { name: 'dk', shape: [N, KVD] }, { name: 'dv', shape: [N, KVD] },
    { name: 'dh1', shape: [N, C] },
  ];
  const tmp: TensorSpec[] = [{ name: 'proj', shape: [N, C] }, { name: 'normsq', shape: [1] }];
  if (layout.slots.length) tmp.push({ name: 'dh', shape: [N, s.rank] });
  const maxBind = lim.maxStorageBufferBindingSize;
  const chunk = xentChunkRows(N, V, maxBind);
  const xentScratch = xentScratchBytes(N, C, V, chunk, true);
  const activations = tableBytes(acts);
  const scratch = tableBytes(io) + tableBytes(gradTop) + tableBytes(gradLayer) + tableBytes(tmp) + xentScratch;
  const modelTotal = baseWeights + loraAndOptimizer + activations + scratch;
  const total = modelTotal + accumulation;

  // limits
  const largest = (xs: { name: string; bytes: number }[]) => xs.reduce((a, x) => (x.bytes > a.bytes ? x : a), { name: '', bytes: 0 });
  const bound = [
    ...[...acts, ...io, ...gradTop, ...gradLayer, ...tmp].map((t) => ({ name: t.name, bytes: elems(t.shape) * 4 })),
    { name: 'lora (flat params / grads / Adam moments)', bytes: flat },
    { name: 'cross-entropy logits chunk', bytes: N * chunk * 4 },
  ];
  const largestBinding = largest(bound);
  const largestBuffer = largest([...weights.map((x) => ({ name: `base ${x.name}`, bytes: x.bytes })), ...bound]);
  const advice: string[] = [];
  if (largestBuffer.bytes > lim.maxBufferSize) {
    advice.push(`${largestBuffer.name} needs a ${mib(largestBuffer.bytes)} buffer, over this device's maxBufferSize ${mib(lim.maxBufferSize)}` +
      (largestBuffer.name.startsWith('base') ? ' — quantize the base (q8 or q4)' : ' — use a smaller batch or sequence length'));
  }
  if (largestBinding.bytes > maxBind) {
    advice.push(`${largestBinding.name} is ${mib(largestBinding.bytes)}, over this device's maxStorageBufferBindingSize ${mib(maxBind)}` +
      (largestBinding.name.startsWith('lora') ? ' — use a lower rank or fewer targets' : ' — use a smaller batch or sequence length'));
  }
  if (total > lim.budgetBytes) {
    const parts = `base ${mib(baseWeights)}, LoRA + optimizer ${mib(loraAndOptimizer + accumulation)}, activations ${mib(activations)}, scratch ${mib(scratch)}`;
    let tip = '';
    if (baseWeights > lim.budgetBytes * 0.8) tip = s.quant === 'q4' ? ' — the base model alone is too large for this budget' : ` — quantize the base (${s.quant === 'f32' ? 'q8 or q4' : 'q4'})`;
    else if (!s.checkpointing) tip = ' — enable gradient checkpointing, or use a smaller batch or sequence length';
    else tip = ' — use a smaller batch or sequence length';
    advice.push(`the run needs ${mib(total)} (${parts}), over the budget of ${mib(lim.budgetBytes)}${tip}`);
  }
  return {
    bytes: { baseWeights, loraAndOptimizer, activations, scratch, accumulation },
    total, modelTotal, trainableParams: layout.params, largestBuffer, largestBinding,
    fits: advice.length === 0, advice, settings: { ...s, targets: [...s.targets] },
  };
}

export interface FitResult {
  ok: boolean;
  /** the settings that fit (the input when nothing had to change) */
  hp: MemorySettings;
  plan: MemoryPlan;
  /** one line per change made */
  messages: string[];
  /** when !ok: why nothing fits, with the planner's advice */
  reason?: string;
}

/**
 * Adapt `s` until planMemory fits: (1) gradient checkpointing on, (2) halve seqLen down to
 * `minSeqLen` (examples longer than that are cut), (3) halve batchSize down to 1 while doubling
 * gradAccum (same effective batch). Returns the first plan that fits, or ok = false with a reason.
 */
export function fitMemory(cfg: LlamaConfig, s: MemorySettings, limits: Partial<AdapterLimits> = {}, opts: { minSeqLen?: number } = {}): FitResult {
  const messages: string[] = [];
  let cur: MemorySettings = { ...s, targets: [...s.targets] };
  let plan = planMemory(cfg, cur, limits);
  const first = plan;
  if (plan.fits) return { ok: true, hp: cur, plan, messages };
  const why = () => plan.advice[0] ?? '';
  if (!cur.checkpointing) {
    const before = plan.bytes.activations;
    cur = { ...cur, checkpointing: true };
    plan = planMemory(cfg, cur, limits);
    messages.push(`checkpointing: on — ${first.advice[0]}; recomputing each layer in backward cuts activations from ${mib(before)} to ${mib(plan.bytes.activations)}`);
    if (plan.fits) return { ok: true, hp: cur, plan, messages };
  }
  const minSeq = Math.max(2, Math.min(cur.seqLen, opts.minSeqLen ?? 32));
  while (!plan.fits && cur.seqLen > minSeq) {
    const reason = why();
    const seqLen = Math.max(minSeq, Math.floor(cur.seqLen / 2));
    cur = { ...cur, seqLen };
    plan = planMemory(cfg, cur, limits);
    messages.push(`seqLen: ${seqLen} — ${reason}; shorter sequences (longer examples are cut at ${seqLen} tokens)`);
  }
  while (!plan.fits && cur.batchSize > 1) {
    const reason = why();
    const batchSize = Math.max(1, Math.floor(cur.batchSize / 2));
    const gradAccum = Math.ceil((cur.gradAccum * cur.batchSize) / batchSize);
    cur = { ...cur, batchSize, gradAccum };
    plan = planMemory(cfg, cur, limits);
    messages.push(`batchSize: ${batchSize}, gradAccum: ${gradAccum} — ${reason}; a smaller micro-batch with more accumulation keeps the effective batch`);
  }
  if (plan.fits) return { ok: true, hp: cur, plan, messages };
  return {
    ok: false, hp: cur, plan, messages,
    reason: `this run cannot fit on this device even with gradient checkpointing, ${cur.seqLen}-token sequences and a batch of ${cur.batchSize}: ` +
      plan.advice.join('; '),
  };
}
