// The CPU reference model (src/ref/model.ts): LoRA gradients vs central finite differences in
// float64 on tiny models (every target, dropout on, rope styles, q/k/v bias, untied lm_head), and
// ref_logits consistent with the batched loss path.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import type { LlamaConfig, LoraConfig } from '../../src/model/config.ts';
import { initLora, loraSeed, type LoraParams } from '../../src/model/lora.ts';
import { LORA_TARGETS } from '../../src/model/config.ts';
import { ref_logits, ref_loss, ref_train, type RefLora } from '../../src/ref/model.ts';
import { XENT_IGNORE } from '../../src/ref/xent.ts';
import { assertClose, finiteDiff, TOL } from '../util.ts';
import { ALL_TARGETS, randomLora, tinyBatch, tinyConfig, tinyWeights } from './tiny.ts';

function to64(p: LoraParams): LoraParams<Float64Array> {
  return new Map([...p].map(([k, v]) => [k, { A: Float64Array.from(v.A), B: Float64Array.from(v.B) }]));
}

function fdCheck(name: string, cfg: LlamaConfig, lora: LoraConfig): void {
  const weights = tinyWeights(cfg, 1);
  const batch = tinyBatch(cfg, 2, 8, 2);
  const params = to64(randomLora(cfg, lora, 3, 0.2));
  const rl: RefLora = { config: lora, params, seed: 7, step: 3, train: true };
  const { grads } = ref_loss(cfg, weights, rl, batch, { grads: true });
  const f = () => ref_loss(cfg, weights, rl, batch).loss;
  let checked = 0;
  for (const [key, p] of params) {
    const g = grads.get(key)!;
    for (const [x, gx, which] of [[p.A, g.A, 'A'], [p.B, g.B, 'B']] as const) {
      const [idx, num] = finiteDiff(f, x, 3);
      assertClose(`${name} d${which} ${key}`, idx.map((i) => gx[i]), num, TOL.fd);
      checked += idx.length;
    }
  }
  assert.ok(checked >= 2 * 4 * params.size, `${name}: probed ${checked} parameters`);
}

const lora: LoraConfig = { rank: 2, alpha: 4, dropout: 0.25, targets: ALL_TARGETS };
const small = { hidden: 32, heads: 4, kvHeads: 2, headDim: 8, ffn: 40, vocab: 48 };

test('ref model LoRA grads (all 7 targets, dropout) match finite differences (f64)', () => {
  fdCheck('half/tied', tinyConfig(small), lora);
});

test('ref model grads: pairs rope, llama3 scaling, q/k/v bias, untied lm_head, rslora', () => {
  const cfg = tinyConfig({
    ...small, ropeStyle: 'pairs', attnBias: true, tiedEmbeddings: false,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 4 },
  });
  fdCheck('pairs/bias/untied', cfg, { ...lora, rslora: true, targets: ['q', 'v', 'down'] });
});

test('ref_logits agrees with the batched loss path', () => {
  const cfg = tinyConfig(small);
  const weights = tinyWeights(cfg, 4);
  const T = 9;
  const b = tinyBatch(cfg, 1, T, 5);
  const z = ref_logits(cfg, weights, Array.from(b.ids));
  assert.equal(z.length, T * cfg.vocab);
  const r = ref_loss(cfg, weights, null, b);
  for (let t = 0; t < T; t++) {
    if (b.targets[t] === XENT_IGNORE) continue;
    const row = z.subarray(t * cfg.vocab, (t + 1) * cfg.vocab);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
    assertClose(`loss[${t}]`, [lse - row[b.targets[t]]], [r.losses[t]], { atol: 1e-5, rtol: 1e-5 });
  }
});

test('ref_train lowers the loss (AdamW, 10 steps)', () => {
  const cfg = tinyConfig(small);
  const weights = tinyWeights(cfg, 6);
  const b = tinyBatch(cfg, 2, 8, 7);
  const cfgL: LoraConfig = { rank: 2, alpha: 4, dropout: 0, targets: ALL_TARGETS };
  const opt = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxNorm: 1 };
  const r = ref_train(cfg, weights, cfgL, randomLora(cfg, cfgL, 8, 0), () => b, opt, 10, 9);
  assert.ok(r.losses[9] < r.losses[0] - 0.05, `loss ${r.losses[0]} → ${r.losses[9]}`);
});

test('loraSeed differs per layer/target/step/seed; initLora is reproducible', () => {
  const seen = new Set<number>();
  for (const seed of [0, 1]) {
    for (let step = 1; step <= 20; step++) {
      for (let layer = 0; layer < 4; layer++) for (const t of LORA_TARGETS) seen.add(loraSeed(seed, step, layer, t));
    }
  }
  assert.equal(seen.size, 2 * 20 * 4 * LORA_TARGETS.length);
  const cfg = tinyConfig(small);
  const a = initLora(cfg, lora, 5), b = initLora(cfg, lora, 5), c = initLora(cfg, lora, 6);
  for (const [key, p] of a) {
    assert.deepEqual(p.A, b.get(key)!.A);
    assert.notDeepEqual(p.A, c.get(key)!.A);
    assert.ok(p.B.every((x) => x === 0));
  }
});
