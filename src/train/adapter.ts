// The finished adapter of a run, as one plain object the store (saveAdapter takes its fields:
// name, baseModel {id, shape}, hyperparameters, metrics, tensors) and exporters can take:
// LoRA tensors under PEFT names (`base_model.model.model.layers.{l}.self_attn.q_proj.lora_A.weight`,
// A (R, IC), B (OC, R), f32, in the loaded model's q/k row order: `baseModel.ropeStyle` 'pairs'
// means llama.cpp's permuted GGUF order, which src/export un-permutes for PEFT), the LoRA config in PEFT
// terms, the base model signature (src/store/adapters.ts modelShapeSignature: an adapter fits any
// base with the same shapes), the resolved hyperparameters, a metrics summary and the full history.
// No DOM, no node:*.
import type { LlamaConfig, LoraTarget } from '../model/config.ts';
import type { LoraParams } from '../model/lora.ts';
import type { TensorInput } from '../store/core.ts';
import type { JobMetric } from '../store/jobs.ts';
import { modelShapeSignature } from '../store/adapters.ts';
import { type Hyperparameters, loraConfigOf } from './hyperparams.ts';

export const ADAPTER_FORMAT = 'whittle.lora-adapter';
export const ADAPTER_VERSION = 1;

/** Hugging Face module name of each LoRA target inside a decoder layer. */
export const PEFT_MODULES: Record<LoraTarget, string> = {
  q: 'self_attn.q_proj', k: 'self_attn.k_proj', v: 'self_attn.v_proj', o: 'self_attn.o_proj',
  gate: 'mlp.gate_proj', up: 'mlp.up_proj', down: 'mlp.down_proj',
};

/** PEFT tensor name of A or B of (layer, target). */
export function peftTensorName(layer: number, target: LoraTarget, which: 'A' | 'B'): string {
  return `base_model.model.model.layers.${layer}.${PEFT_MODULES[target]}.lora_${which}.weight`;
}

/** What the caller knows about the run that the trainer does not. */
export interface AdapterMeta {
  name: string;
  /** the base model's id in the store (or its path / name) */
  modelId: string;
  datasetId?: string | null;
  jobId?: string | null;
}

export interface AdapterMetrics {
  steps: number;
  trainedTokens: number;
  elapsedMs: number;
  /** mean train loss / accuracy of the last up-to-10 steps */
  finalLoss: number | null;
  finalAccuracy: number | null;
  /** the last validation result, if any */
  validLoss: number | null;
  validAccuracy: number | null;
  [k: string]: number | null;
}

export interface TrainedAdapter {
  format: typeof ADAPTER_FORMAT;
  version: number;
  name: string;
  baseModel: { id: string; shape: string; arch: LlamaConfig['arch']; ropeStyle: LlamaConfig['ropeStyle'] };
  datasetId: string | null;
  jobId: string | null;
  /** PEFT LoraConfig fields */
  lora: { r: number; lora_alpha: number; lora_dropout: number; target_modules: string[]; targets: LoraTarget[]; bias: 'none'; task_type: 'CAUSAL_LM' };
  tensors: TensorInput[];
  hyperparameters: Hyperparameters;
  metrics: AdapterMetrics;
  history: JobMetric[];
  createdAt: number;
}

/** Assemble the adapter object (tensors ordered layer-major, targets in LORA_TARGETS order, A then B). */
export function buildAdapter(
  cfg: LlamaConfig, hp: Hyperparameters, params: LoraParams, history: JobMetric[], meta: AdapterMeta,
  run: { steps: number; trainedTokens: number; elapsedMs: number },
): TrainedAdapter {
  const lc = loraConfigOf(hp);
  const tensors: TensorInput[] = [];
  for (const [key, pair] of params) {
    const [ls, target] = key.split('.') as [string, LoraTarget];
    const layer = Number(ls);
    const IC = pair.A.length / lc.rank, OC = pair.B.length / lc.rank;
    tensors.push({ name: peftTensorName(layer, target, 'A'), shape: [lc.rank, IC], dtype: 'f32', data: pair.A });
    tensors.push({ name: peftTensorName(layer, target, 'B'), shape: [OC, lc.rank], dtype: 'f32', data: pair.B });
  }
  const trainRows = history.filter((r) => typeof r.loss === 'number');
  const tail = trainRows.slice(-10);
  const mean = (k: string) => (tail.length ? tail.reduce((a, r) => a + (r[k] as number), 0) / tail.length : null);
  const lastValid = [...history].reverse().find((r) => typeof r.validLoss === 'number');
  return {
    format: ADAPTER_FORMAT,
    version: ADAPTER_VERSION,
    name: meta.name,
    baseModel: { id: meta.modelId, shape: modelShapeSignature(cfg), arch: cfg.arch, ropeStyle: cfg.ropeStyle },
    datasetId: meta.datasetId ?? null,
    jobId: meta.jobId ?? null,
    lora: {
      r: lc.rank, lora_alpha: lc.alpha, lora_dropout: lc.dropout, target_modules: lc.targets.map((t) => PEFT_MODULES[t].split('.')[1]),
      targets: [...lc.targets], bias: 'none', task_type: 'CAUSAL_LM',
    },
    tensors,
    hyperparameters: structuredClone(hp),
    metrics: {
      steps: run.steps, trainedTokens: run.trainedTokens, elapsedMs: run.elapsedMs,
      finalLoss: mean('loss'), finalAccuracy: mean('accuracy'),
      validLoss: lastValid?.validLoss ?? null, validAccuracy: lastValid?.validAccuracy ?? null,
    },
    history: history.map((r) => ({ ...r })),
    createdAt: Date.now(),
  };
}

/** The fields of src/store saveAdapter's input (SaveAdapterInit), from a trained adapter. */
export function adapterSaveInit(a: TrainedAdapter): {
  name: string; baseModel: { id: string; shape: string; ropeStyle: LlamaConfig['ropeStyle'] }; datasetId: string | null; jobId: string | null;
  hyperparameters: Record<string, unknown>; metrics: Record<string, unknown>; tensors: TensorInput[];
} {
  return {
    name: a.name,
    baseModel: { id: a.baseModel.id, shape: a.baseModel.shape, ropeStyle: a.baseModel.ropeStyle },
    datasetId: a.datasetId,
    jobId: a.jobId,
    hyperparameters: { ...a.hyperparameters, lora: a.lora } as Record<string, unknown>,
    metrics: { ...a.metrics } as Record<string, unknown>,
    tensors: a.tensors,
  };
}
