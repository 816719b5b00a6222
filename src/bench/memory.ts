// GPU memory of the training settings that matter for the "fits in 1 GiB" question: for each
// (quant, batch, seq, checkpointing) the planner's prediction (planMemory, before allocation) and —
// when `measure` — the bytes a real LlamaModel put in gpu.allocated at construction, next to its
// memoryReport(). Construction allocates everything but the cross-entropy logits scratch, which
// the first step adds (N·chunk·4 + 16·N bytes, ≤ 16 MiB + 16·N; counted by the planner and the
// report). No training step runs here (a SmolLM2-135M step at seq 256 takes minutes on a CPU driver).
import type { Gpu } from '../gpu/device.ts';
import type { LlamaConfig, LlamaWeights } from '../model/config.ts';
import { LlamaModel } from '../model/llama.ts';
import type { QFormat } from '../model/quant.ts';
import { allocatedSince, planFor, snapshot } from './train.ts';
import { BENCH_LORA } from './shapes.ts';
import { xentChunkRows, xentScratchBytes } from '../ops/xent.ts';

export interface MemoryCase {
  model: string;
  quant: QFormat;
  batch: number;
  seq: number;
  checkpointing: boolean;
}

export interface MemoryResult extends MemoryCase {
  /** planMemory(...).modelTotal */
  planned: number;
  plannedBytes: { baseWeights: number; loraAndOptimizer: number; activations: number; scratch: number };
  /** the xent logits scratch included in `planned` but allocated only at the first step */
  xentScratch: number;
  /** gpu.allocated added by constructing the model (null: not measured) */
  allocatedAtBuild: number | null;
  /** LlamaModel.memoryReport().total (null: not measured) */
  modelReport: number | null;
  /** planned < 1 GiB */
  fitsUnder1GiB: boolean;
}

export async function benchMemory(gpu: Gpu, cfg: LlamaConfig, weights: LlamaWeights | null, cases: MemoryCase[], log?: (s: string) => void): Promise<MemoryResult[]> {
  const out: MemoryResult[] = [];
  for (const c of cases) {
    const plan = planFor(gpu, cfg, c.quant, c.batch, c.seq, c.checkpointing);
    const N = c.batch * c.seq;
    const maxBind = gpu.info.limits.maxStorageBufferBindingSize ?? 128 << 20;
    const chunk = xentChunkRows(N, cfg.vocab, maxBind);
    const r: MemoryResult = {
      ...c, planned: plan.modelTotal,
      plannedBytes: { baseWeights: plan.bytes.baseWeights, loraAndOptimizer: plan.bytes.loraAndOptimizer, activations: plan.bytes.activations, scratch: plan.bytes.scratch },
      xentScratch: xentScratchBytes(N, cfg.hidden, cfg.vocab, chunk, true), allocatedAtBuild: null, modelReport: null, fitsUnder1GiB: plan.modelTotal < 2 ** 30,
    };
    if (weights && plan.fits) {
      const before = snapshot(gpu);
      const model = new LlamaModel(gpu, cfg, weights, { quant: c.quant, lora: BENCH_LORA, batch: c.batch, seq: c.seq, checkpointing: c.checkpointing, seed: 0 });
      try {
        r.allocatedAtBuild = allocatedSince(gpu, before) - (gpu.allocated.get('xent') ?? 0);
        r.modelReport = model.memoryReport().total;
      } finally {
        model.destroy();
      }
    }
    log?.(`memory ${c.model} ${c.quant} B=${c.batch} T=${c.seq}${c.checkpointing ? ' ckpt' : ''}: planned ${(r.planned / 2 ** 20).toFixed(1)} MiB` +
      (r.allocatedAtBuild !== null ? `, allocated at build ${(r.allocatedAtBuild / 2 ** 20).toFixed(1)} MiB (+ xent scratch ${(r.xentScratch / 2 ** 20).toFixed(1)} MiB at the first step)` : ''));
    out.push(r);
  }
  return out;
}
