// Matmul FLOPs of one LoRA training step, counted exactly from the shapes (a multiply-add = 2).
// What is counted — the work a LoRA step needs, not what our kernels happen to execute:
//  - every frozen linear (IC→OC) of every layer: forward 2·N·IC·OC and the input gradient
//    2·N·IC·OC (no weight gradient: the base is frozen);
//  - every adapter (rank R): forward x·Aᵀ 2·N·IC·R and h·Bᵀ 2·N·R·OC; backward dh = dy·B 2·N·OC·R,
//    dB = dyᵀ·h 2·OC·R·N, dA = dhᵀ·x 2·R·IC·N, dx = dh·A 2·N·R·IC — 6·N·R·(IC+OC) in all;
//  - attention (causal, every token valid): per sequence and head T(T+1)/2 visible (query, key)
//    pairs P; forward Q·Kᵀ and P·V 4·P·HS, backward dP = dO·Vᵀ, dV = Pᵀ·dO, dQ = dS·K, dK = dSᵀ·Q
//    8·P·HS (the flash-style recomputation of Q·Kᵀ in backward is not counted);
//  - lm_head: forward 2·N·C·V and the input gradient 2·N·C·V (our xent backward recomputes the
//    logits chunk by chunk — another 2·N·C·V executed, not counted).
//  - NOT needed, so not counted: the input gradient of layer 0's q, k, v projections (base and
//    adapter dx): nothing below them trains. (Our engine computes it anyway; PyTorch's autograd skips it.)
//  - Not counted at all: element-wise work (norms, rope, SwiGLU, softmax, AdamW), the embedding.
// With N = B·T this is ≈ 2·(forward) + 2·(input-grad) ≈ 4·N·(base params) — the familiar 6·N·params
// minus the frozen base's 2·N·params of weight gradients.
import type { LlamaConfig, LoraConfig } from '../model/config.ts';
import { LORA_TARGETS, targetShape } from '../model/config.ts';

export interface StepFlops {
  /** everything below, summed */
  total: number;
  baseForward: number;
  baseInputGrad: number;
  lora: number;
  attention: number;
  lmHead: number;
  /** work our engine executes on top of `total`: layer-0 q/k/v input grads, attention and logit recomputation */
  executedExtra: number;
}

export function trainStepFlops(cfg: LlamaConfig, lora: LoraConfig, B: number, T: number): StepFlops {
  const N = B * T, R = lora.rank, C = cfg.hidden, V = cfg.vocab, HS = cfg.headDim, NH = cfg.heads;
  let baseForward = 0, baseInputGrad = 0, loraF = 0, extra = 0;
  for (let l = 0; l < cfg.layers; l++) {
    for (const t of LORA_TARGETS) {
      const [OC, IC] = targetShape(cfg, t);
      const first = l === 0 && (t === 'q' || t === 'k' || t === 'v');
      baseForward += 2 * N * IC * OC;
      if (first) extra += 2 * N * IC * OC;
      else baseInputGrad += 2 * N * IC * OC;
      if (lora.targets.includes(t)) {
        // forward 2NR(IC+OC); backward dh 2N·OC·R + dB 2·OC·R·N + dA 2R·IC·N (+ dx 2N·R·IC unless layer-0 qkv)
        loraF += 2 * N * R * (IC + OC) + 2 * N * OC * R + 2 * OC * R * N + 2 * R * IC * N;
        if (first) extra += 2 * N * R * IC;
        else loraF += 2 * N * R * IC;
      }
    }
  }
  const pairs = B * NH * (T * (T + 1)) / 2;
  const attention = cfg.layers * 12 * pairs * HS;
  extra += cfg.layers * 2 * pairs * HS; // Q·Kᵀ recomputed in backward
  const lmHead = 4 * N * C * V;
  extra += 2 * N * C * V; // logits recomputed in xent backward
  const total = baseForward + baseInputGrad + loraF + attention + lmHead;
  return { total, baseForward, baseInputGrad, lora: loraF, attention, lmHead, executedExtra: extra };
}
