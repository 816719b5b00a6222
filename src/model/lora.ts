// LoRA parameter bookkeeping shared by the GPU model (src/model/llama.ts) and the CPU reference
// (src/ref/model.ts): which (layer, target) pairs are adapted, where each A (R,IC) / B (OC,R) lives
// in the one flat parameter buffer, host-side parameter maps, initialisation and dropout seeds.
// Legend: L layers, R rank, IC/OC in/out features of the adapted base weight.
import { type LlamaConfig, type LoraConfig, type LoraTarget, LORA_TARGETS, targetShape } from './config.ts';
import { lora_init_A } from '../ref/lora.ts';
import type { Vec } from '../ref/types.ts';

/** One adapter's two matrices: A (R, IC), B (OC, R). */
export interface LoraPair<T extends Vec = Float32Array> {
  A: T;
  B: T;
}

/** Host LoRA parameters (or gradients), keyed by loraKey(layer, target). */
export type LoraParams<T extends Vec = Float32Array> = Map<string, LoraPair<T>>;

export function loraKey(layer: number, target: LoraTarget): string {
  return `${layer}.${target}`;
}

/** Where one adapter lives in the flat LoRA buffers (offsets in floats, aligned). */
export interface LoraSlot {
  key: string;
  layer: number;
  target: LoraTarget;
  /** OC: out features of the base weight */
  out: number;
  /** IC: in features of the base weight */
  in: number;
  /** float offset of A (R, IC) */
  a: number;
  /** float offset of B (OC, R) */
  b: number;
}

export interface LoraLayout {
  rank: number;
  slots: LoraSlot[];
  /** total floats of the flat buffer, alignment padding included (padding stays 0) */
  floats: number;
  /** trainable parameters (no padding) */
  params: number;
}

/**
 * Lay out A and B of every adapted (layer, target) in one flat f32 buffer, each tensor starting at a
 * multiple of `alignBytes` (so it can be bound as {buffer, offset, size}). Order: layer-major, then
 * targets in LORA_TARGETS order, A before B.
 */
export function loraLayout(cfg: LlamaConfig, lora: LoraConfig, alignBytes: number): LoraLayout {
  const R = lora.rank;
  const alignF = Math.max(1, alignBytes / 4);
  const up = (f: number) => Math.ceil(f / alignF) * alignF;
  const slots: LoraSlot[] = [];
  let off = 0, params = 0;
  for (let layer = 0; layer < cfg.layers; layer++) {
    for (const target of LORA_TARGETS) {
      if (!lora.targets.includes(target)) continue;
      const [OC, IC] = targetShape(cfg, target);
      const a = off;
      off = up(a + R * IC);
      const b = off;
      off = up(b + OC * R);
      params += R * (IC + OC);
      slots.push({ key: loraKey(layer, target), layer, target, out: OC, in: IC, a, b });
    }
  }
  return { rank: R, slots, floats: Math.max(off, alignF), params };
}

/** 32-bit integer mixer (murmur3 finalizer). */
function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Seed of the (layer, target) random stream at `step`, from a base seed (all u32). Dropout uses the
 * training step (so masks differ per layer/target/step and are reproducible); initialisation uses
 * INIT_STEP.
 */
export function loraSeed(seed: number, step: number, layer: number, target: LoraTarget): number {
  let h = mix32((seed ^ 0x9e3779b9) >>> 0);
  h = mix32((h + step) >>> 0);
  h = mix32((h + layer * 0x632be5ab) >>> 0);
  return mix32((h + LORA_TARGETS.indexOf(target) + 1) >>> 0);
}

const INIT_STEP = 0xffffffff;

/** PEFT initialisation: A Kaiming-uniform (lora_init_A), B = 0; seeded per (layer, target). */
export function initLora(cfg: LlamaConfig, lora: LoraConfig, seed: number): LoraParams {
  const out: LoraParams = new Map();
  for (let layer = 0; layer < cfg.layers; layer++) {
    for (const target of LORA_TARGETS) {
      if (!lora.targets.includes(target)) continue;
      const [OC, IC] = targetShape(cfg, target);
      const A = lora_init_A(lora.rank, IC, loraSeed(seed, INIT_STEP, layer, target));
      out.set(loraKey(layer, target), { A, B: new Float32Array(OC * lora.rank) });
    }
  }
  return out;
}
