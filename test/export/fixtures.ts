// Shared helpers of the src/export tests (not a test file): HF ↔ llama.cpp-permuted tiny models,
// per-token losses of the CPU reference with or without a LoRA adapter, and reading merged HF
// weights back from safetensors bytes.
import type { LlamaConfig, LlamaWeights, LoraConfig } from '../../src/model/config.ts';
import type { LoraParams } from '../../src/model/lora.ts';
import { ref_loss } from '../../src/ref/model.ts';
import { permuteRows } from '../../src/export/adapter.ts';
import { safetensorsStoreFromBytes } from '../../src/model/safetensors.ts';
import { configFromHF } from '../../src/model/load.ts';
import { rng } from '../util.ts';

/** The same model with q/k rows (and biases) in llama.cpp's GGUF order and ropeStyle 'pairs'. */
export function toPairs(cfg: LlamaConfig, w: LlamaWeights): { cfg: LlamaConfig; w: LlamaWeights } {
  const C = cfg.hidden, HS = cfg.headDim;
  return {
    cfg: { ...cfg, ropeStyle: 'pairs' },
    w: {
      ...w,
      layers: w.layers.map((l) => ({
        ...l,
        wq: permuteRows(l.wq, cfg.heads, HS, C, 'pairs'),
        wk: permuteRows(l.wk, cfg.kvHeads, HS, C, 'pairs'),
        bq: l.bq && permuteRows(l.bq, cfg.heads, HS, 1, 'pairs'),
        bk: l.bk && permuteRows(l.bk, cfg.kvHeads, HS, 1, 'pairs'),
      })),
    },
  };
}

/** Random token ids (T) below `vocab`. */
export function randomIds(vocab: number, T: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: T }, () => Math.floor(r() * vocab));
}

/**
 * Per-token cross-entropies of `targetsPerPos` target ids at every position (the next id, then
 * fixed pseudo-random ones): a LoRA-aware stand-in for comparing logits (ref_loss runs the
 * adapter; ref_logits does not), in float64.
 */
export function tokenLosses(cfg: LlamaConfig, w: LlamaWeights, lora: { config: LoraConfig; params: LoraParams } | null, ids: number[], targetsPerPos = 4): Float64Array {
  const T = ids.length;
  const out = new Float64Array(T * targetsPerPos);
  for (let k = 0; k < targetsPerPos; k++) {
    const targets = new Uint32Array(T);
    for (let t = 0; t < T; t++) targets[t] = t + 1 < T && k === 0 ? ids[t + 1] : (ids[t] * 7 + k * 13 + t) % cfg.vocab;
    const batch = {
      B: 1, T, ids: Uint32Array.from(ids), targets, valid: new Uint32Array(T).fill(1),
      pos: Uint32Array.from({ length: T }, (_, i) => i), lossWeights: new Float32Array(T).fill(1),
    };
    const r = ref_loss(cfg, w, lora && { config: lora.config, params: lora.params, seed: 0, step: 0, train: false }, batch);
    for (let t = 0; t < T; t++) out[t * targetsPerPos + k] = r.losses[t];
  }
  return out;
}

/** Config and weights of a merged Hugging Face export held in memory. */
export async function readHfExport(files: Map<string, Uint8Array>): Promise<{ cfg: LlamaConfig; w: LlamaWeights; json: Record<string, unknown> }> {
  const json = JSON.parse(new TextDecoder().decode(files.get('config.json')!)) as Record<string, unknown>;
  const cfg = configFromHF(json);
  const st = await safetensorsStoreFromBytes('model.safetensors', files.get('model.safetensors')!);
  const g = (n: string) => st.read(n);
  const opt = async (n: string) => (st.info(n) ? st.read(n) : null);
  const layers = [];
  for (let i = 0; i < cfg.layers; i++) {
    const p = `model.layers.${i}.`;
    layers.push({
      attnNorm: await g(p + 'input_layernorm.weight'), ffnNorm: await g(p + 'post_attention_layernorm.weight'),
      wq: await g(p + 'self_attn.q_proj.weight'), wk: await g(p + 'self_attn.k_proj.weight'), wv: await g(p + 'self_attn.v_proj.weight'),
      bq: await opt(p + 'self_attn.q_proj.bias'), bk: await opt(p + 'self_attn.k_proj.bias'), bv: await opt(p + 'self_attn.v_proj.bias'),
      wo: await g(p + 'self_attn.o_proj.weight'),
      wGate: await g(p + 'mlp.gate_proj.weight'), wUp: await g(p + 'mlp.up_proj.weight'), wDown: await g(p + 'mlp.down_proj.weight'),
    });
  }
  return { cfg, json, w: { embed: await g('model.embed_tokens.weight'), norm: await g('model.norm.weight'), lmHead: await opt('lm_head.weight'), layers } };
}

/** Max |a − b| / max(1, |b|) over two arrays. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return m;
}
