// Merge a LoRA adapter into the base weights on the host: W' = W + scale·B·A for every adapted
// (layer, target), computed in float64 and stored as f32 (Hugging Face orientation (out, in)).
// A merged model runs at base-model speed with no LoRA kernels; when the GPU base is quantized
// (q8 / q4) the merged f32 weights are quantized afterwards (src/model/quant.ts, at upload), so
// a merged quantized model is NOT the quantized base plus the adapter — its rounding differs.
// Legend: R rank, IC/OC in/out features of the adapted weight.
import { type LayerWeights, type LlamaConfig, type LlamaWeights, type LoraConfig, type LoraTarget, loraScale, targetShape } from './config.ts';
import { loraKey, type LoraParams } from './lora.ts';
import type { Vec } from '../ref/types.ts';

/** LayerWeights field of each LoRA target. */
export const TARGET_FIELD: Record<LoraTarget, 'wq' | 'wk' | 'wv' | 'wo' | 'wGate' | 'wUp' | 'wDown'> = {
  q: 'wq', k: 'wk', v: 'wv', o: 'wo', gate: 'wGate', up: 'wUp', down: 'wDown',
};

/** W (OC,IC) + scale · B (OC,R) · A (R,IC), in float64, rounded once to f32 (a new array). */
export function mergeOne(W: Float32Array, A: Vec, B: Vec, OC: number, IC: number, R: number, scale: number): Float32Array {
  const out = new Float32Array(OC * IC);
  const row = new Float64Array(IC);
  for (let o = 0; o < OC; o++) {
    for (let i = 0; i < IC; i++) row[i] = W[o * IC + i];
    for (let r = 0; r < R; r++) {
      const b = scale * B[o * R + r];
      if (b === 0) continue;
      for (let i = 0; i < IC; i++) row[i] += b * A[r * IC + i];
    }
    out.set(row, o * IC);
  }
  return out;
}

/**
 * Weights with the adapter merged in. Unadapted tensors are shared with `weights` (not copied);
 * every adapted one is a new array. Throws when an adapter of config.targets is missing or
 * mis-shaped.
 */
export function mergeLora(cfg: LlamaConfig, weights: LlamaWeights, config: LoraConfig, params: LoraParams<Vec>): LlamaWeights {
  const R = config.rank, scale = loraScale(config);
  const layers = weights.layers.map((lw, l): LayerWeights => {
    const out: LayerWeights = { ...lw };
    for (const t of config.targets) {
      const p = params.get(loraKey(l, t));
      if (!p) throw new Error(`mergeLora: LoRA parameters for layer ${l} target ${t} are missing`);
      const [OC, IC] = targetShape(cfg, t);
      if (p.A.length !== R * IC || p.B.length !== OC * R) {
        throw new Error(`mergeLora: layer ${l} target ${t}: A must be (${R},${IC}) and B (${OC},${R})`);
      }
      const f = TARGET_FIELD[t];
      out[f] = mergeOne(lw[f], p.A, p.B, OC, IC, R, scale);
    }
    return out;
  });
  return { ...weights, layers };
}
