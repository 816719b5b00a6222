// Logits truth: both real models, loaded by src/model/load.ts and run by the CPU reference
// (src/ref/model.ts ref_logits(cfg, weights, ids, dtype) → (T, V)), reproduce reference.json —
// the f32 logits at every prompt position within 1e-4 absolute (reference values are rounded to
// 5 decimals), and greedy decoding token for token:
// - stories260K: from `prompt_ids` (BOS + "Once upon a time", llama2.c encoding), the 60
//   `greedy_continuation_ids`;
// - tinystories-656k: from BOS alone ([1]; the model never saw tokenizer.json's lone "▁" id 80),
//   the 64 `greedy_from_bos_ids`; its logits are checked on `prompt_ids_no_prefix`.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { loadModel } from '../../src/model/load.ts';
import { nodeSource } from '../../src/model/source-node.ts';
import { ref_logits } from '../../src/ref/model.ts';
import type { LlamaConfig, LlamaWeights } from '../../src/model/config.ts';
import { S260K_GGUF, TS656K, ref260k, ref656k } from './fixtures.ts';

function checkLogits(name: string, got: Float32Array, want: number[][], V: number) {
  assert.equal(got.length, want.length * V, `${name}: logits length`);
  let worst = 0, at = 0;
  for (let t = 0; t < want.length; t++) {
    for (let v = 0; v < V; v++) {
      const e = Math.abs(got[t * V + v] - want[t][v]);
      if (e > worst) { worst = e; at = t * V + v; }
    }
  }
  assert.ok(worst <= 1e-4, `${name}: max |logit − reference| = ${worst.toExponential(3)} at position ${Math.floor(at / V)}, token ${at % V}`);
}

function greedy(cfg: LlamaConfig, w: LlamaWeights, start: number[], n: number): number[] {
  const ids = start.slice();
  const V = cfg.vocab;
  for (let k = 0; k < n; k++) {
    const lg = ref_logits(cfg, w, ids, 'f32');
    const last = lg.subarray((ids.length - 1) * V, ids.length * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (last[v] > last[best]) best = v;
    ids.push(best);
  }
  return ids.slice(start.length);
}

test('reference logits: stories260K (GGUF, pairs RoPE) prompt logits and greedy continuation', async () => {
  const r = ref260k();
  const m = await loadModel(await nodeSource(S260K_GGUF));
  assert.deepEqual(m.tokenizer.encode(r.prompt), r.prompt_ids);
  checkLogits('stories260K f32', ref_logits(m.config, m.weights, r.prompt_ids, 'f32'), r.prompt_logits, m.config.vocab);
  checkLogits('stories260K f64', ref_logits(m.config, m.weights, r.prompt_ids, 'f64'), r.prompt_logits, m.config.vocab);
  const cont = greedy(m.config, m.weights, r.prompt_ids, r.greedy_continuation_ids.length);
  assert.deepEqual(cont, r.greedy_continuation_ids);
  assert.equal(m.tokenizer.decode([...r.prompt_ids, ...cont], { skipSpecial: true }), r.greedy_text);
});

test('reference logits: tinystories-656k (HF, half RoPE, lm_head-only tied) prompt logits and greedy from BOS', async () => {
  const r = ref656k();
  const m = await loadModel(await nodeSource(TS656K));
  assert.deepEqual(m.tokenizer.encode(r.prompt, { prefixSpace: false }), r.prompt_ids_no_prefix);
  checkLogits('656k f32', ref_logits(m.config, m.weights, r.prompt_ids_no_prefix, 'f32'), r.prompt_no_prefix_logits, m.config.vocab);
  const cont = greedy(m.config, m.weights, [m.config.bos!], r.greedy_from_bos_ids.length);
  assert.deepEqual(cont, r.greedy_from_bos_ids);
  assert.equal(m.tokenizer.decode(cont), r.greedy_from_bos_text);
});
