// Merged-model export: the base weights with the adapter folded in, W' = W + scale·B·A for every
// adapted (layer, target) (src/model/merge.ts mergeLora, float64 accumulation, one f32 rounding),
// written as a standalone model that needs no LoRA support to run.
// - exportMerged: a Hugging Face folder — config.json regenerated from LlamaConfig (architectures,
//   model_type llama/qwen2/mistral, sizes, head_dim, rope_theta/rope_scaling, rms_norm_eps,
//   tie_word_embeddings, bos/eos ids, torch_dtype; fields of the source's own config.json that are
//   not regenerated are carried over, and its bos/eos/pad ids win), model.safetensors (f32 or
//   f16/bf16; sharded with model.safetensors.index.json above maxShardBytes) in HF orientation
//   (a GGUF llama/mistral base's q/k rows and biases are un-permuted), and the tokenizer /
//   generation files copied from the source model when it has them (a GGUF base has its tokenizer
//   inside the .gguf, so none are written: use exportMergedGGUF for GGUF bases).
// - exportMergedGGUF: for a GGUF base, the same .gguf with every adapted tensor replaced by its
//   merged f32 (or f16) version in the file's own (permuted) orientation; all metadata (tokenizer,
//   chat template) and every other tensor are copied byte for byte (quantized ones stay quantized).
// A merged quantized base is not "quantized base + adapter": the adapted tensors become f32.
// No DOM, no node:*: the source model comes through ModelSource, files go to a FileSink.
import type { LayerWeights, LlamaConfig, LlamaWeights } from '../model/config.ts';
import { GGMLType, type GGUFKV, type GGUFTensorInput, readGGUFHeader, ggufStore, writeGGUF } from '../model/gguf.ts';
import type { ModelInfo } from '../model/load.ts';
import { TARGET_FIELD, mergeLora } from '../model/merge.ts';
import { type SafetensorsInput, writeSafetensors } from '../model/safetensors.ts';
import { type ModelSource, openFile } from '../model/source.ts';
import { type Adapter, type ExportDtype, type FileSink, GGUF_TENSOR, fitAdapter, permuteRows, utf8 } from './adapter.ts';

type Json = Record<string, unknown>;

/** What a merge needs of a loaded model (src/model/load.ts LoadedModel satisfies it). */
export interface MergeBase {
  config: LlamaConfig;
  weights: LlamaWeights;
  source: Pick<ModelInfo, 'format' | 'name' | 'modelName' | 'files'>;
}

const ARCH_CLASS: Record<LlamaConfig['arch'], string> = {
  llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', mistral: 'MistralForCausalLM',
};
const TORCH_DTYPE: Record<ExportDtype, string> = { f32: 'float32', f16: 'float16', bf16: 'bfloat16' };
const ST_DTYPE: Record<ExportDtype, string> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

/** Fields of a source config.json never carried over (regenerated, stale after merging, or conflicting). */
const DROP = new Set(['quantization_config', 'torch_dtype', 'dtype', 'rope_parameters', 'transformers_version', '_name_or_path', 'auto_map']);
/** Fields where the source config.json wins over the regenerated value. */
const KEEP_ORIGINAL = new Set(['bos_token_id', 'eos_token_id', 'pad_token_id']);

/** A Hugging Face config.json for `cfg` (merged over `original`, the source's own, when given). */
export function hfConfigJson(cfg: LlamaConfig, dtype: ExportDtype = 'f32', original?: Json | null): Json {
  const rs = cfg.ropeScaling;
  const j: Json = {
    architectures: [ARCH_CLASS[cfg.arch]],
    model_type: cfg.arch,
    hidden_size: cfg.hidden,
    intermediate_size: cfg.ffn,
    num_hidden_layers: cfg.layers,
    num_attention_heads: cfg.heads,
    num_key_value_heads: cfg.kvHeads,
    head_dim: cfg.headDim,
    hidden_act: 'silu',
    max_position_embeddings: cfg.maxPos,
    rms_norm_eps: cfg.eps,
    rope_theta: cfg.ropeTheta,
    rope_scaling: rs
      ? { rope_type: 'llama3', factor: rs.factor, low_freq_factor: rs.lowFreqFactor, high_freq_factor: rs.highFreqFactor, original_max_position_embeddings: rs.originalMaxPositionEmbeddings }
      : null,
    vocab_size: cfg.vocab,
    tie_word_embeddings: cfg.tiedEmbeddings,
    bos_token_id: cfg.bos,
    eos_token_id: cfg.eos.length === 1 ? cfg.eos[0] : cfg.eos.length ? [...cfg.eos] : null,
    attention_dropout: 0,
    initializer_range: 0.02,
    use_cache: true,
    torch_dtype: TORCH_DTYPE[dtype],
  };
  if (cfg.arch === 'llama') Object.assign(j, { attention_bias: cfg.attnBias, mlp_bias: false, pretraining_tp: 1 });
  if (cfg.arch === 'qwen2') Object.assign(j, { use_sliding_window: false, sliding_window: null, max_window_layers: cfg.layers });
  if (cfg.arch === 'mistral') Object.assign(j, { sliding_window: null });
  if (original) {
    for (const [k, v] of Object.entries(original)) {
      if (DROP.has(k)) continue;
      if (!(k in j) || (KEEP_ORIGINAL.has(k) && v !== undefined)) j[k] = v;
    }
  }
  return j;
}

/** Merged weights in Hugging Face orientation (q/k rows and biases un-permuted for a 'pairs' base). */
export function mergedWeightsHF(cfg: LlamaConfig, weights: LlamaWeights, adapter: Adapter): LlamaWeights {
  const a = fitAdapter(adapter, cfg);
  const merged = mergeLora(cfg, weights, a.lora, a.tensors);
  if (cfg.ropeStyle !== 'pairs') return merged;
  const C = cfg.hidden, HS = cfg.headDim;
  return {
    ...merged,
    layers: merged.layers.map((lw): LayerWeights => ({
      ...lw,
      wq: permuteRows(lw.wq, cfg.heads, HS, C, 'half'),
      wk: permuteRows(lw.wk, cfg.kvHeads, HS, C, 'half'),
      bq: lw.bq && permuteRows(lw.bq, cfg.heads, HS, 1, 'half'),
      bk: lw.bk && permuteRows(lw.bk, cfg.kvHeads, HS, 1, 'half'),
    })),
  };
}

/** Tensors of a Hugging Face Llama-family checkpoint, in checkpoint order. */
export function hfTensors(cfg: LlamaConfig, w: LlamaWeights): { name: string; shape: number[]; data: Float32Array }[] {
  const C = cfg.hidden, Q = cfg.heads * cfg.headDim, KV = cfg.kvHeads * cfg.headDim, F = cfg.ffn, V = cfg.vocab;
  const out: { name: string; shape: number[]; data: Float32Array }[] = [{ name: 'model.embed_tokens.weight', shape: [V, C], data: w.embed }];
  w.layers.forEach((lw, i) => {
    const p = `model.layers.${i}.`;
    out.push({ name: p + 'input_layernorm.weight', shape: [C], data: lw.attnNorm });
    out.push({ name: p + 'self_attn.q_proj.weight', shape: [Q, C], data: lw.wq });
    if (lw.bq) out.push({ name: p + 'self_attn.q_proj.bias', shape: [Q], data: lw.bq });
    out.push({ name: p + 'self_attn.k_proj.weight', shape: [KV, C], data: lw.wk });
    if (lw.bk) out.push({ name: p + 'self_attn.k_proj.bias', shape: [KV], data: lw.bk });
    out.push({ name: p + 'self_attn.v_proj.weight', shape: [KV, C], data: lw.wv });
    if (lw.bv) out.push({ name: p + 'self_attn.v_proj.bias', shape: [KV], data: lw.bv });
    out.push({ name: p + 'self_attn.o_proj.weight', shape: [C, Q], data: lw.wo });
    out.push({ name: p + 'post_attention_layernorm.weight', shape: [C], data: lw.ffnNorm });
    out.push({ name: p + 'mlp.gate_proj.weight', shape: [F, C], data: lw.wGate });
    out.push({ name: p + 'mlp.up_proj.weight', shape: [F, C], data: lw.wUp });
    out.push({ name: p + 'mlp.down_proj.weight', shape: [C, F], data: lw.wDown });
  });
  out.push({ name: 'model.norm.weight', shape: [C], data: w.norm });
  if (w.lmHead) out.push({ name: 'lm_head.weight', shape: [V, C], data: w.lmHead });
  return out;
}

/** Files of a Hugging Face model folder copied next to merged weights when the source has them. */
export const TOKENIZER_FILES = [
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model', 'added_tokens.json',
  'vocab.json', 'merges.txt', 'chat_template.jinja', 'chat_template.json', 'generation_config.json',
];

export interface MergedExportOptions {
  /** weight dtype (default f32) */
  dtype?: ExportDtype;
  /** the source model's files, for config.json extras and tokenizer files */
  src?: ModelSource;
  /** largest safetensors shard (default 2 GiB); above it: model-0000i-of-0000n.safetensors + index */
  maxShardBytes?: number;
}

export interface ExportResult {
  files: string[];
  notes: string[];
}

/** Write the merged model as a Hugging Face folder into `sink`. */
export async function exportMerged(model: MergeBase, adapter: Adapter, sink: FileSink, opts: MergedExportOptions = {}): Promise<ExportResult> {
  const cfg = model.config;
  const dtype = opts.dtype ?? 'f32';
  if (!ST_DTYPE[dtype]) throw new Error(`merged export: unknown dtype '${dtype}' (f32, f16, bf16)`);
  const notes: string[] = [];
  const files: string[] = [];
  const put = async (name: string, bytes: Uint8Array) => {
    await sink(name, bytes);
    files.push(name);
  };
  const w = mergedWeightsHF(cfg, model.weights, adapter);
  if (cfg.ropeStyle === 'pairs') notes.push('q/k projections un-permuted from llama.cpp (GGUF) order to Hugging Face order');
  const srcFiles = opts.src ? await opts.src.list() : [];
  let original: Json | null = null;
  if (opts.src && model.source.format === 'hf' && srcFiles.includes('config.json')) {
    original = JSON.parse(new TextDecoder().decode(await opts.src.read('config.json'))) as Json;
  }
  const config = hfConfigJson(cfg, dtype, original);
  const nameOrPath = model.source.modelName ?? model.source.name;
  config._name_or_path = nameOrPath;
  await put('config.json', utf8(JSON.stringify(config, null, 2) + '\n'));

  // weights, sharded when large
  const tensors = hfTensors(cfg, w);
  const per = dtype === 'f32' ? 4 : 2;
  const max = opts.maxShardBytes ?? 2 ** 31;
  const shards: (typeof tensors)[] = [[]];
  let size = 0;
  for (const t of tensors) {
    const b = t.data.length * per;
    if (size > 0 && size + b > max) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(t);
    size += b;
  }
  const st = (ts: typeof tensors) => writeSafetensors(ts.map((t): SafetensorsInput => ({ ...t, dtype: ST_DTYPE[dtype] })), { format: 'pt' });
  if (shards.length === 1) await put('model.safetensors', st(shards[0]));
  else {
    const n = shards.length, pad = (i: number) => String(i).padStart(5, '0');
    const weightMap: Record<string, string> = {};
    let total = 0;
    for (let i = 0; i < n; i++) {
      const file = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
      for (const t of shards[i]) {
        weightMap[t.name] = file;
        total += t.data.length * per;
      }
      await put(file, st(shards[i]));
    }
    await put('model.safetensors.index.json', utf8(JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n'));
  }

  // tokenizer and generation files
  if (opts.src && model.source.format === 'hf') {
    for (const f of TOKENIZER_FILES) if (srcFiles.includes(f)) await put(f, await opts.src.read(f));
  } else if (model.source.format === 'gguf') {
    notes.push('the base is a GGUF file: its tokenizer lives in the GGUF metadata, so no tokenizer files were written (copy them from the original Hugging Face repo, or export with exportMergedGGUF / --format merged-gguf)');
  } else {
    notes.push('no source model files were given: no tokenizer files were written');
  }
  return { files, notes };
}

// ---------------------------------------------------------------------------------------------
// GGUF base → merged GGUF

export interface MergedGgufOptions {
  /** type of the merged tensors: F32 (default) or F16 */
  dtype?: 'f32' | 'f16';
  /** output file name (default: `<gguf name>-<adapter>.gguf`) */
  file?: string;
}

/**
 * For a base loaded from a GGUF file: write that file again with the adapted tensors merged.
 * `src` is the source the model was loaded from (model.source.files[0] is the .gguf).
 */
export async function exportMergedGGUF(src: ModelSource, model: MergeBase, adapter: Adapter, sink: FileSink, opts: MergedGgufOptions = {}): Promise<ExportResult> {
  if (model.source.format !== 'gguf') throw new Error(`merged GGUF export: the base model ${model.source.name} was not loaded from a GGUF file (use the Hugging Face merged export)`);
  const cfg = model.config;
  const a = fitAdapter(adapter, cfg);
  const merged = mergeLora(cfg, model.weights, a.lora, a.tensors);
  const ggufFile = model.source.files[0];
  const f = await openFile(src, ggufFile);
  const g = await readGGUFHeader(f);
  const store = ggufStore(f, g);
  const kv: GGUFKV[] = [...g.metadata].map(([key, value]) => ({ key, value, ...g.metadataTypes.get(key) }));
  const replaced = new Map<string, Float32Array>();
  for (let l = 0; l < cfg.layers; l++) {
    for (const t of a.lora.targets) replaced.set(`blk.${l}.${GGUF_TENSOR[t]}.weight`, merged.layers[l][TARGET_FIELD[t]]);
  }
  const type = opts.dtype === 'f16' ? GGMLType.F16 : GGMLType.F32;
  const tensors: GGUFTensorInput[] = [];
  for (const t of g.tensors.values()) {
    const m = replaced.get(t.name);
    if (m) tensors.push({ name: t.name, shape: t.shape, data: m, type });
    else tensors.push({ name: t.name, shape: t.shape, data: await store.readRaw(t.name), type: t.type });
  }
  for (const name of replaced.keys()) if (!g.tensors.has(name)) throw new Error(`${f.label}: tensor '${name}' is missing`);
  const stem = ggufFile.replace(/^.*\//, '').replace(/\.gguf$/i, '');
  const file = opts.file ?? `${stem}-${a.name.replace(/[^A-Za-z0-9._-]+/g, '-')}.gguf`;
  await sink(file, writeGGUF(kv, tensors));
  return { files: [file], notes: [`${replaced.size} tensors merged and stored as ${type === GGMLType.F16 ? 'F16' : 'F32'}; the other ${g.tensors.size - replaced.size} copied as they were`] };
}
