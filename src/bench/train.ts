// Training throughput of one bench case: a LlamaModel (src/model/llama.ts) with the bench LoRA
// (r=16 on every linear), `warmup` untimed steps (the first compiles every pipeline), then `steps`
// timed trainStep calls — each one submission and one loss readback, so the wall time of the call is
// the step's time. Random batches (every token valid) are made before the timer starts.
// Memory: bytes the model put in gpu.allocated (at construction, and after the first step, which
// adds the cross-entropy scratch) next to LlamaModel.memoryReport() and the planner (planMemory).
// It is not: a convergence test (the loss is only checked to be finite).
import type { Gpu } from '../gpu/device.ts';
import type { LlamaConfig, LlamaWeights } from '../model/config.ts';
import { LlamaModel, type MemoryReport } from '../model/llama.ts';
import type { QFormat } from '../model/quant.ts';
import { planMemory } from '../train/memory.ts';
import { trainStepFlops, type StepFlops } from './flops.ts';
import { BENCH_ADAMW, BENCH_LORA, randomBatch } from './shapes.ts';
import { type Stat, now, stat } from './stats.ts';

export interface TrainCase {
  /** model name (folder name or shape name) */
  model: string;
  /** 'small' (CPU-driver-sized) or 'issue' (seq 256, batch 4) or a custom label */
  setting: string;
  quant: QFormat;
  batch: number;
  seq: number;
  warmup: number;
  steps: number;
  checkpointing?: boolean;
  /** run the per-adapter kernel trials (LlamaModel.tune, as a training job does) before the steps */
  tune?: boolean;
}

export interface MemoryFigures {
  /** gpu.allocated bytes the model added at construction */
  allocatedAtBuild: number;
  /** … and after its first step (adds xent's logits scratch; null when no step ran) */
  allocatedAfterStep: number | null;
  /** LlamaModel.memoryReport().total */
  modelReport: number;
  /** planMemory(...).modelTotal: the prediction before anything was allocated */
  planned: number;
  /** planned by category */
  plannedBytes: { baseWeights: number; loraAndOptimizer: number; activations: number; scratch: number };
  /** (measured − planned) / planned, measured = after-step figure when there is one */
  plannedError: number;
}

export interface TrainResult extends TrainCase {
  tokensPerStep: number;
  trainableParams: number;
  /** ms to build the model (quantize + upload) */
  buildMs: number;
  /** ms of LlamaModel.tune() (cached trials cost ~0), when c.tune */
  tuneMs?: number;
  /** ms of the first step (pipeline compilation included) */
  firstStepMs: number;
  stepMs: Stat;
  tokensPerSecond: Stat;
  /** matmul FLOPs per step (src/bench/flops.ts) */
  flops: StepFlops;
  /** achieved matmul GFLOP/s = flops.total / step time */
  gflops: Stat;
  /** gflops.median ÷ our f32 matmul peak (set by the runner) */
  shareOfPeak?: number;
  loss: number;
  memory: MemoryFigures;
}

/** gpu.allocated as a plain object. */
export function snapshot(gpu: Gpu): Record<string, number> {
  return Object.fromEntries(gpu.allocated);
}

/**
 * Bytes allocated since `before`. The cross-entropy scratch ('xent') is cached per device and only
 * grows, so it counts in full (it is what this model's steps need) rather than as a delta.
 */
export function allocatedSince(gpu: Gpu, before: Record<string, number>): number {
  let s = 0;
  for (const [k, v] of gpu.allocated) s += k === 'xent' ? v : v - (before[k] ?? 0);
  return s;
}

export function planFor(gpu: Gpu, cfg: LlamaConfig, quant: QFormat, batch: number, seq: number, checkpointing: boolean) {
  const l = gpu.info.limits;
  return planMemory(cfg, {
    quant, rank: BENCH_LORA.rank, alpha: BENCH_LORA.alpha, dropout: BENCH_LORA.dropout, targets: [...BENCH_LORA.targets],
    batchSize: batch, seqLen: seq, checkpointing, gradAccum: 1,
  }, {
    maxBufferSize: l.maxBufferSize, maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    minStorageBufferOffsetAlignment: gpu.alignment, budgetBytes: 64 * 2 ** 30,
  });
}

export function memoryFigures(gpu: Gpu, model: LlamaModel, report: MemoryReport, atBuild: number, afterStep: number | null, cfg: LlamaConfig, c: TrainCase): MemoryFigures {
  const plan = planFor(gpu, cfg, c.quant, c.batch, c.seq, c.checkpointing ?? false);
  const measured = afterStep ?? atBuild;
  return {
    allocatedAtBuild: atBuild,
    allocatedAfterStep: afterStep,
    modelReport: report.total,
    planned: plan.modelTotal,
    plannedBytes: { baseWeights: plan.bytes.baseWeights, loraAndOptimizer: plan.bytes.loraAndOptimizer, activations: plan.bytes.activations, scratch: plan.bytes.scratch },
    plannedError: (measured - plan.modelTotal) / plan.modelTotal,
  };
}

/** Run one training case on `weights` (host f32; quantized by the model). */
export async function benchTrain(gpu: Gpu, cfg: LlamaConfig, weights: LlamaWeights, c: TrainCase, log?: (s: string) => void): Promise<TrainResult> {
  const before = snapshot(gpu);
  let t = now();
  const model = new LlamaModel(gpu, cfg, weights, {
    quant: c.quant, lora: BENCH_LORA, batch: c.batch, seq: c.seq, checkpointing: c.checkpointing ?? false, seed: 0,
  });
  const buildMs = now() - t;
  const atBuild = allocatedSince(gpu, before);
  const N = c.batch * c.seq;
  const ms: number[] = [];
  let firstStepMs = NaN, loss = NaN, afterStep: number | null = null, tuneMs: number | undefined;
  try {
    if (c.tune) {
      t = now();
      await model.tune();
      tuneMs = now() - t;
      log?.(`  kernel variants tuned for this adapter (${tuneMs.toFixed(0)} ms)`);
    }
    for (let i = 1; i <= c.warmup + c.steps; i++) {
      const batch = randomBatch(cfg.vocab, c.batch, c.seq, i);
      t = now();
      const r = await model.trainStep(batch, { ...BENCH_ADAMW, t: i });
      const dt = now() - t;
      if (i === 1) {
        firstStepMs = dt;
        afterStep = allocatedSince(gpu, before);
      }
      if (i > c.warmup) ms.push(dt);
      loss = r.loss;
      if (!Number.isFinite(loss)) throw new Error(`bench ${c.model} ${c.quant}: step ${i} loss is ${loss}`);
      log?.(`  step ${i}${i <= c.warmup ? ' (warm-up)' : ''}: ${dt.toFixed(0)} ms, loss ${loss.toFixed(3)}`);
    }
    const report = model.memoryReport();
    const flops = trainStepFlops(cfg, BENCH_LORA, c.batch, c.seq);
    const stepMs = stat(ms);
    return {
      ...c, tokensPerStep: N, trainableParams: model.layout.params, buildMs, tuneMs, firstStepMs, stepMs,
      tokensPerSecond: stat(ms.map((x) => (N * 1000) / x)),
      flops, gflops: stat(ms.map((x) => flops.total / (x * 1e6))), loss,
      memory: memoryFigures(gpu, model, report, atBuild, afterStep, cfg, c),
    };
  } finally {
    model.destroy();
  }
}
