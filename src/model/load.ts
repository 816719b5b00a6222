// Load a Llama-family model (llama, mistral, qwen2) from a ModelSource into LlamaConfig +
// LlamaWeights (all f32, Hugging Face (out, in) orientation) + Tokenizer + chat template.
// Two layouts:
// - Hugging Face: config.json, model.safetensors (or model.safetensors.index.json + shards),
//   tokenizer.json, tokenizer_config.json (chat_template; or chat_template.jinja / .json),
//   generation_config.json (extra EOS ids). RoPE is rotate-half ('half').
// - GGUF (one .gguf): hyper-parameters from `<arch>.*` metadata, tensors dequantized from any
//   supported ggml type (./gguf.ts), tokenizer and chat template from `tokenizer.*` metadata.
//   llama.cpp's converter PERMUTES the q/k projection rows of llama/mistral models so that RoPE
//   rotates adjacent pairs (x[2i], x[2i+1]) instead of HF's halves. We keep q/k as stored and set
//   ropeStyle 'pairs' — equivalent, and no un-permutation is needed. Qwen2 GGUFs are NOT permuted
//   (llama.cpp runs them with NEOX rope), so they stay 'half'.
// Tied embeddings: a checkpoint may store only one of embed/lm_head (tinystories-656k stores only
// `lm_head.weight`, with `__metadata__` {"model.embed_tokens.weight": "lm_head.weight"}); the one
// stored becomes `embed` and lmHead is null. GGUF: no `output.weight`, or one byte-identical to
// `token_embd.weight` (stories260K), means tied.
// config.bos is the BOS id model inputs start with (the tokenizer's, when it adds one by default),
// else null — e.g. Qwen2 lists bos_token_id in config.json but never prepends it. config.eos is
// every id that ends generation (config.json, generation_config.json, tokenizer EOS/EOT/EOM).
// Every unsupported or inconsistent input is a clear Error naming the source/file and the reason.
// No DOM, no node:* (Node paths: ./source-node.ts).
import type { LayerWeights, LlamaConfig, LlamaWeights, RopeScaling } from './config.ts';
import { type GGUFFile, ggufNumber, ggufStore, readGGUFHeader } from './gguf.ts';
import { type TensorStore, SAFETENSORS_INDEX, openSafetensorsStore } from './safetensors.ts';
import { type ModelSource, openFile, readJson, readText } from './source.ts';
import { HfTokenizer } from '../tokenizer/hf.ts';
import { ggufChatTemplate, tokenizerFromGGUF } from '../tokenizer/gguf.ts';
import type { Tokenizer } from '../tokenizer/types.ts';

export interface ModelInfo {
  format: 'hf' | 'gguf';
  /** the source's name (path, folder, id) */
  name: string;
  /** model name from the files (general.name / _name_or_path), if any */
  modelName: string | null;
  /** files read */
  files: string[];
  /** stored tensor types (F32, BF16, Q4_K, ...) → how many tensors used */
  tensorTypes: Record<string, number>;
  /** unique parameters loaded (tied embeddings counted once) */
  params: number;
  /** quirks handled while loading, for logs and UI */
  notes: string[];
}

export interface LoadedModel {
  config: LlamaConfig;
  weights: LlamaWeights;
  tokenizer: Tokenizer;
  /** Jinja chat template, or null when the model has none (base models) */
  chatTemplate: string | null;
  source: ModelInfo;
}

export interface LoadOptions {
  /** force a layout; default: HF when config.json is present, else the .gguf file */
  format?: 'hf' | 'gguf';
  /** which .gguf file when the source holds several */
  file?: string;
  /** called after each tensor is loaded */
  onProgress?: (p: { done: number; total: number; tensor: string }) => void;
}

type Json = Record<string, unknown>;

const ARCHS = ['llama', 'mistral', 'qwen2'] as const;

function err(where: string, why: string): never {
  throw new Error(`${where}: ${why}`);
}

// ---------------------------------------------------------------------------------------------
// Layout detection

async function pickFormat(src: ModelSource, files: string[], opts: LoadOptions): Promise<{ format: 'hf' | 'gguf'; gguf?: string }> {
  const ggufs = files.filter((f) => f.toLowerCase().endsWith('.gguf'));
  const hasConfig = files.includes('config.json');
  let format = opts.format;
  if (!format) {
    if (hasConfig) format = 'hf';
    else if (ggufs.length) format = 'gguf';
    else {
      err(src.name, `no model found: expected config.json + *.safetensors (Hugging Face layout) or a .gguf file (files: ${files.slice(0, 20).join(', ') || 'none'})`);
    }
  }
  if (format === 'hf') return { format };
  if (opts.file) {
    if (!files.includes(opts.file)) err(src.name, `no file '${opts.file}'`);
    return { format, gguf: opts.file };
  }
  if (ggufs.length === 0) err(src.name, 'no .gguf file');
  if (ggufs.length > 1) err(src.name, `several .gguf files (${ggufs.join(', ')}); choose one with the 'file' option`);
  if (/-\d{5}-of-\d{5}\.gguf$/i.test(ggufs[0])) err(`${src.name}/${ggufs[0]}`, 'split (multi-part) GGUF files are not supported; merge them with llama-gguf-split --merge');
  return { format, gguf: ggufs[0] };
}

// ---------------------------------------------------------------------------------------------
// Hugging Face config.json → LlamaConfig

function int(where: string, j: Json, key: string, def?: number): number {
  const v = j[key] ?? def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) err(where, `'${key}' is ${JSON.stringify(j[key])}, expected a positive integer`);
  return v;
}

function idList(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

function hfRopeScaling(where: string, j: Json): RopeScaling | null {
  // transformers ≤4.x: rope_scaling; 5.x: rope_parameters (which also carries rope_theta)
  const rs = (j.rope_scaling ?? j.rope_parameters ?? null) as Json | null;
  if (!rs) return null;
  const type = (rs.rope_type ?? rs.type ?? 'default') as string;
  if (type === 'default') return null;
  if (type === 'llama3') {
    const num = (k: string, def?: number) => {
      const v = rs[k] ?? def;
      if (typeof v !== 'number') err(where, `rope_scaling.${k} is missing`);
      return v;
    };
    return {
      type: 'llama3',
      factor: num('factor'),
      lowFreqFactor: num('low_freq_factor', 1),
      highFreqFactor: num('high_freq_factor', 4),
      originalMaxPositionEmbeddings: num('original_max_position_embeddings', 8192),
    };
  }
  err(where, `unsupported rope_scaling type '${type}' (supported: llama3)`);
}

/** LlamaConfig from a parsed config.json (+ generation_config.json for extra EOS ids). */
export function configFromHF(j: Json, where = 'config.json', generation?: Json | null): LlamaConfig {
  const modelType = j.model_type as string | undefined;
  const archs = Array.isArray(j.architectures) ? (j.architectures as string[]) : [];
  if (!modelType || !(ARCHS as readonly string[]).includes(modelType)) {
    err(where, `unsupported architecture '${modelType ?? archs[0] ?? 'unknown'}' (model_type${archs.length ? `, architectures ${archs.join(', ')}` : ''}); supported: ${ARCHS.join(', ')}`);
  }
  const arch = modelType as LlamaConfig['arch'];
  const act = (j.hidden_act ?? j.hidden_activation ?? 'silu') as string;
  if (act !== 'silu' && act !== 'swish') err(where, `unsupported hidden_act '${act}' (only silu/SwiGLU)`);
  if (j.mlp_bias === true) err(where, 'mlp_bias: true is not supported');
  const prf = j.partial_rotary_factor;
  if (typeof prf === 'number' && prf !== 1) err(where, `partial_rotary_factor ${prf} is not supported`);
  const hidden = int(where, j, 'hidden_size');
  const heads = int(where, j, 'num_attention_heads');
  const kvHeads = int(where, j, 'num_key_value_heads', heads);
  if (heads % kvHeads !== 0) err(where, `num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  if (j.head_dim == null && hidden % heads !== 0) err(where, `hidden_size ${hidden} is not a multiple of num_attention_heads ${heads} and head_dim is not given`);
  const headDim = int(where, j, 'head_dim', hidden / heads);
  if (headDim % 2 !== 0) err(where, `head_dim ${headDim} is odd`);
  const rp = j.rope_parameters as Json | undefined;
  const theta = j.rope_theta ?? rp?.rope_theta ?? 10000;
  if (typeof theta !== 'number' || !(theta > 0)) err(where, `rope_theta ${JSON.stringify(theta)} is not a positive number`);
  const eps = j.rms_norm_eps ?? 1e-6;
  if (typeof eps !== 'number' || !(eps > 0)) err(where, `rms_norm_eps ${JSON.stringify(eps)} is not a positive number`);
  const eos = idList(j.eos_token_id);
  for (const e of idList(generation?.eos_token_id)) if (!eos.includes(e)) eos.push(e);
  const bos = typeof j.bos_token_id === 'number' ? j.bos_token_id : typeof generation?.bos_token_id === 'number' ? (generation.bos_token_id as number) : null;
  return {
    arch,
    hidden,
    layers: int(where, j, 'num_hidden_layers'),
    heads,
    kvHeads,
    headDim,
    ffn: int(where, j, 'intermediate_size'),
    vocab: int(where, j, 'vocab_size'),
    maxPos: int(where, j, 'max_position_embeddings', 2048),
    ropeTheta: theta,
    ropeStyle: 'half',
    ropeScaling: hfRopeScaling(where, j),
    eps,
    tiedEmbeddings: j.tie_word_embeddings === true,
    attnBias: arch === 'qwen2' ? true : j.attention_bias === true,
    bos,
    eos,
  };
}

// ---------------------------------------------------------------------------------------------
// GGUF metadata → LlamaConfig

/** Recover llama3 rope scaling parameters from a GGUF `rope_freqs.weight` (per-frequency divisors). */
function llama3FromRopeFreqs(where: string, ff: Float32Array, headDim: number, theta: number): RopeScaling {
  let factor = 0;
  for (const v of ff) factor = Math.max(factor, v);
  if (Math.abs(factor - 1) < 1e-6) err(where, 'rope_freqs.weight is all ones');
  for (const orig of [8192, 4096, 2048, 16384, 32768, 65536, 131072, 1024]) {
    for (const low of [1, 0.5, 2]) {
      for (const high of [4, 2, 8, 1.5, 3]) {
        if (high <= low) continue;
        let ok = true;
        for (let i = 0; i < ff.length && ok; i++) {
          const freq = 1 / theta ** ((2 * i) / headDim);
          const wl = (2 * Math.PI) / freq;
          let f: number;
          if (wl < orig / high) f = 1;
          else if (wl > orig / low) f = factor;
          else {
            const s = (orig / wl - low) / (high - low);
            f = 1 / ((1 - s) / factor + s);
          }
          ok = Math.abs(f - ff[i]) <= 1e-3 * Math.max(1, Math.abs(f));
        }
        if (ok) return { type: 'llama3', factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: orig };
      }
    }
  }
  err(where, 'rope_freqs.weight does not match llama3 rope scaling; this rope scaling is not supported');
}

/** LlamaConfig from GGUF metadata (rope scaling from rope_freqs is filled in by loadModel). */
export function configFromGGUF(g: GGUFFile): LlamaConfig {
  const where = g.file;
  const archName = g.metadata.get('general.architecture');
  if (typeof archName !== 'string') err(where, 'general.architecture is missing');
  if (!(ARCHS as readonly string[]).includes(archName)) err(where, `unsupported architecture '${archName}' (general.architecture); supported: ${ARCHS.join(', ')}`);
  const arch = archName as LlamaConfig['arch'];
  const scalar = (key: string, def?: number) => {
    const v = g.metadata.get(`${arch}.${key}`);
    if (Array.isArray(v)) {
      const u = new Set(v.map(Number));
      if (u.size !== 1) err(where, `${arch}.${key} varies per layer (${[...u].slice(0, 4).join(', ')}, …), which is not supported`);
      return Number(v[0]);
    }
    return ggufNumber(g, `${arch}.${key}`, def);
  };
  const hidden = scalar('embedding_length');
  const heads = scalar('attention.head_count');
  const kvHeads = scalar('attention.head_count_kv', heads);
  if (heads % kvHeads !== 0) err(where, `attention.head_count ${heads} is not a multiple of head_count_kv ${kvHeads}`);
  const headDim = scalar('attention.key_length', hidden / heads);
  if (!Number.isInteger(headDim)) err(where, `embedding_length ${hidden} is not a multiple of head_count ${heads}`);
  const vDim = scalar('attention.value_length', headDim);
  if (vDim !== headDim) err(where, `attention.value_length ${vDim} ≠ key_length ${headDim} is not supported`);
  const ropeDims = scalar('rope.dimension_count', headDim);
  if (ropeDims !== headDim) err(where, `rope.dimension_count ${ropeDims} < head size ${headDim} (partial RoPE) is not supported`);
  const scalingType = g.metadata.get(`${arch}.rope.scaling.type`);
  if (typeof scalingType === 'string' && scalingType !== 'none') {
    err(where, `unsupported rope scaling '${scalingType}' (${arch}.rope.scaling.type)`);
  }
  const tokId = (k: string): number | null => {
    const v = g.metadata.get(`tokenizer.ggml.${k}`);
    return typeof v === 'number' ? v : null;
  };
  const eos: number[] = [];
  for (const k of ['eos_token_id', 'eot_token_id', 'eom_token_id']) {
    const e = tokId(k);
    if (e !== null && !eos.includes(e)) eos.push(e);
  }
  const embd = g.tensors.get('token_embd.weight');
  if (!embd) err(where, "tensor 'token_embd.weight' is missing");
  return {
    arch,
    hidden,
    layers: scalar('block_count'),
    heads,
    kvHeads,
    headDim,
    ffn: scalar('feed_forward_length'),
    vocab: embd.shape[0],
    maxPos: scalar('context_length', 2048),
    ropeTheta: scalar('rope.freq_base', 10000),
    ropeStyle: arch === 'qwen2' ? 'half' : 'pairs',
    ropeScaling: null,
    eps: scalar('attention.layer_norm_rms_epsilon', 1e-5),
    tiedEmbeddings: !g.tensors.has('output.weight'),
    attnBias: arch === 'qwen2',
    bos: tokId('bos_token_id'),
    eos,
  };
}

// ---------------------------------------------------------------------------------------------
// Weights

interface Names {
  embed: string;
  head: string;
  norm: string;
  layer(i: number, t: 'attnNorm' | 'wq' | 'wk' | 'wv' | 'wo' | 'bq' | 'bk' | 'bv' | 'bo' | 'ffnNorm' | 'wGate' | 'wUp' | 'wDown'): string;
}

const HF_NAMES: Names = {
  embed: 'model.embed_tokens.weight',
  head: 'lm_head.weight',
  norm: 'model.norm.weight',
  layer: (i, t) => {
    const p = `model.layers.${i}.`;
    switch (t) {
      case 'attnNorm': return p + 'input_layernorm.weight';
      case 'ffnNorm': return p + 'post_attention_layernorm.weight';
      case 'wq': return p + 'self_attn.q_proj.weight';
      case 'wk': return p + 'self_attn.k_proj.weight';
      case 'wv': return p + 'self_attn.v_proj.weight';
      case 'wo': return p + 'self_attn.o_proj.weight';
      case 'bq': return p + 'self_attn.q_proj.bias';
      case 'bk': return p + 'self_attn.k_proj.bias';
      case 'bv': return p + 'self_attn.v_proj.bias';
      case 'bo': return p + 'self_attn.o_proj.bias';
      case 'wGate': return p + 'mlp.gate_proj.weight';
      case 'wUp': return p + 'mlp.up_proj.weight';
      case 'wDown': return p + 'mlp.down_proj.weight';
    }
  },
};

const GGUF_NAMES: Names = {
  embed: 'token_embd.weight',
  head: 'output.weight',
  norm: 'output_norm.weight',
  layer: (i, t) => {
    const p = `blk.${i}.`;
    switch (t) {
      case 'attnNorm': return p + 'attn_norm.weight';
      case 'ffnNorm': return p + 'ffn_norm.weight';
      case 'wq': return p + 'attn_q.weight';
      case 'wk': return p + 'attn_k.weight';
      case 'wv': return p + 'attn_v.weight';
      case 'wo': return p + 'attn_output.weight';
      case 'bq': return p + 'attn_q.bias';
      case 'bk': return p + 'attn_k.bias';
      case 'bv': return p + 'attn_v.bias';
      case 'bo': return p + 'attn_output.bias';
      case 'wGate': return p + 'ffn_gate.weight';
      case 'wUp': return p + 'ffn_up.weight';
      case 'wDown': return p + 'ffn_down.weight';
    }
  },
};

interface WeightResult {
  weights: LlamaWeights;
  tiedEmbeddings: boolean;
  tensorTypes: Record<string, number>;
  params: number;
  notes: string[];
}

async function loadWeights(store: TensorStore, cfg: LlamaConfig, N: Names, opts: LoadOptions): Promise<WeightResult> {
  const where = store.label;
  const C = cfg.hidden, Q = cfg.heads * cfg.headDim, KV = cfg.kvHeads * cfg.headDim, F = cfg.ffn, V = cfg.vocab;
  const notes: string[] = [];
  const tensorTypes: Record<string, number> = {};
  let params = 0;
  // aliases declared in safetensors __metadata__ (e.g. "model.embed_tokens.weight": "lm_head.weight")
  const alias = new Map<string, string>();
  for (const [k, v] of Object.entries(store.metadata)) {
    if (typeof v === 'string' && !store.info(k) && store.info(v)) alias.set(k, v);
  }
  const has = (name: string) => !!store.info(name) || alias.has(name);
  const resolve = (name: string) => alias.get(name) ?? name;

  const plan: { name: string; shape: number[] }[] = [];
  const want = (name: string, shape: number[]) => plan.push({ name, shape });
  // embeddings / head, tied or not
  let tied = cfg.tiedEmbeddings;
  let embedName: string;
  const hasEmbed = has(N.embed), hasHead = has(N.head);
  if (hasEmbed) embedName = N.embed;
  else if (hasHead && tied) {
    embedName = N.head;
    notes.push(`${N.embed} is not stored; the embedding is the tied ${N.head}`);
  } else err(where, `tensor '${N.embed}' is missing${hasHead ? ` (only '${N.head}' is stored, and the embeddings are not tied)` : ''}`);
  if (alias.has(N.embed)) notes.push(`${N.embed} is stored as '${alias.get(N.embed)}' (safetensors __metadata__ alias)`);
  let headName: string | null = null;
  if (!tied) {
    if (hasHead) headName = N.head;
    else {
      tied = true;
      notes.push(`${N.head} is missing: the output head is tied to the embedding`);
    }
  } else if (hasEmbed && hasHead && resolve(N.embed) !== resolve(N.head)) {
    notes.push(`tied embeddings: the stored ${N.head} is not used (the head is ${N.embed})`);
  }
  want(embedName, [V, C]);
  if (headName) want(headName, [V, C]);
  want(N.norm, [C]);
  for (let i = 0; i < cfg.layers; i++) {
    want(N.layer(i, 'attnNorm'), [C]);
    want(N.layer(i, 'wq'), [Q, C]);
    want(N.layer(i, 'wk'), [KV, C]);
    want(N.layer(i, 'wv'), [KV, C]);
    if (cfg.attnBias) {
      want(N.layer(i, 'bq'), [Q]);
      want(N.layer(i, 'bk'), [KV]);
      want(N.layer(i, 'bv'), [KV]);
    }
    if (has(N.layer(i, 'bo'))) err(where, `tensor '${N.layer(i, 'bo')}' (attention output bias) is not supported`);
    want(N.layer(i, 'wo'), [C, Q]);
    want(N.layer(i, 'ffnNorm'), [C]);
    want(N.layer(i, 'wGate'), [F, C]);
    want(N.layer(i, 'wUp'), [F, C]);
    want(N.layer(i, 'wDown'), [C, F]);
  }
  // validate everything before reading anything
  for (const { name, shape } of plan) {
    const info = store.info(resolve(name));
    if (!info) err(where, `tensor '${name}' is missing`);
    const ok = info.shape.length === shape.length && info.shape.every((d, k) => d === shape[k]);
    // a 1-D tensor may be stored as (1, n) or (n, 1) by some converters
    const ok1d = shape.length === 1 && info.shape.reduce((a, b) => a * b, 1) === shape[0];
    if (!ok && !ok1d) {
      err(where, `tensor '${name}' has shape [${info.shape}], but the config (hidden ${C}, heads ${cfg.heads}×${cfg.headDim}, kv heads ${cfg.kvHeads}, ffn ${F}, vocab ${V}) needs [${shape}]`);
    }
  }
  const got = new Map<string, Float32Array>();
  let done = 0;
  for (const { name, shape } of plan) {
    const info = store.info(resolve(name))!;
    const data = await store.read(resolve(name));
    if (data.length !== shape.reduce((a, b) => a * b, 1)) err(where, `tensor '${name}': read ${data.length} values`);
    tensorTypes[info.dtype] = (tensorTypes[info.dtype] ?? 0) + 1;
    params += data.length;
    got.set(name, data);
    opts.onProgress?.({ done: ++done, total: plan.length, tensor: name });
  }
  const g = (name: string) => got.get(name)!;
  const layers: LayerWeights[] = [];
  for (let i = 0; i < cfg.layers; i++) {
    const L = (t: Parameters<Names['layer']>[1]) => g(N.layer(i, t));
    layers.push({
      attnNorm: L('attnNorm'),
      wq: L('wq'), wk: L('wk'), wv: L('wv'),
      bq: cfg.attnBias ? L('bq') : null,
      bk: cfg.attnBias ? L('bk') : null,
      bv: cfg.attnBias ? L('bv') : null,
      wo: L('wo'),
      ffnNorm: L('ffnNorm'),
      wGate: L('wGate'), wUp: L('wUp'), wDown: L('wDown'),
    });
  }
  return {
    weights: { embed: g(embedName), layers, norm: g(N.norm), lmHead: headName ? g(headName) : null },
    tiedEmbeddings: tied,
    tensorTypes,
    params,
    notes,
  };
}

// ---------------------------------------------------------------------------------------------
// Loaders

/**
 * The tokenizer and chat template of a Hugging Face layout (tokenizer.json, tokenizer_config.json,
 * chat_template.jinja / .json). Completes `config.eos` with the tokenizer's end ids and sets
 * `config.bos` as model inputs use it; appends the files it read to `used`.
 */
async function hfTokenizer(src: ModelSource, files: string[], config: LlamaConfig, used: string[]): Promise<{ tokenizer: Tokenizer; chatTemplate: string | null }> {
  const has = (f: string) => files.includes(f);
  if (!has('tokenizer.json')) {
    err(src.name, `no tokenizer.json${has('tokenizer.model') ? ' (a SentencePiece tokenizer.model alone is not supported: save the tokenizer with transformers to get tokenizer.json)' : ''}; the tokenizer is required`);
  }
  const tokJson = await readJson<Json>(src, 'tokenizer.json');
  used.push('tokenizer.json');
  const tokConfig = has('tokenizer_config.json') ? await readJson<Json>(src, 'tokenizer_config.json') : null;
  if (tokConfig) used.push('tokenizer_config.json');
  const tokenizer = new HfTokenizer(tokJson, {
    config: tokConfig,
    bosId: config.bos,
    eosIds: config.eos,
    label: `${src.name}/tokenizer.json`,
  });
  for (const e of tokenizer.eos) if (!config.eos.includes(e)) config.eos.push(e);
  config.bos = tokenizer.addBosDefault ? tokenizer.bos : null;
  if (tokenizer.vocabSize > config.vocab) {
    err(src.name, `tokenizer.json has ${tokenizer.vocabSize} tokens but config.json vocab_size is ${config.vocab}`);
  }

  let chatTemplate: string | null = null;
  const ct = tokConfig?.chat_template;
  if (typeof ct === 'string') chatTemplate = ct;
  else if (Array.isArray(ct)) {
    const named = ct as { name?: string; template?: string }[];
    chatTemplate = (named.find((t) => t.name === 'default') ?? named[0])?.template ?? null;
  }
  if (chatTemplate === null && has('chat_template.jinja')) {
    chatTemplate = await readText(src, 'chat_template.jinja');
    used.push('chat_template.jinja');
  } else if (chatTemplate === null && has('chat_template.json')) {
    const j = await readJson<Json>(src, 'chat_template.json');
    if (typeof j.chat_template === 'string') chatTemplate = j.chat_template;
    used.push('chat_template.json');
  }
  return { tokenizer, chatTemplate };
}

async function loadHF(src: ModelSource, files: string[], opts: LoadOptions): Promise<LoadedModel> {
  const has = (f: string) => files.includes(f);
  const used = ['config.json'];
  const cfgJson = await readJson<Json>(src, 'config.json');
  const generation = has('generation_config.json') ? await readJson<Json>(src, 'generation_config.json') : null;
  if (generation) used.push('generation_config.json');
  const config = configFromHF(cfgJson, `${src.name}/config.json`, generation);

  if (!has(SAFETENSORS_INDEX) && !files.some((f) => f.endsWith('.safetensors'))) {
    const pt = files.filter((f) => /\.(bin|pt|pth)$/.test(f));
    err(src.name, pt.length
      ? `only PyTorch pickle weights (${pt.join(', ')}) found; whittle reads safetensors — convert the checkpoint (e.g. save_pretrained(safe_serialization=True))`
      : 'no weights found: expected model.safetensors or model.safetensors.index.json + shards');
  }
  // tokenizer first: a missing tokenizer should fail before reading gigabytes of weights
  const { tokenizer, chatTemplate } = await hfTokenizer(src, files, config, used);

  const store = await openSafetensorsStore(src, files);
  const w = await loadWeights(store, config, HF_NAMES, opts);
  const sw = cfgJson.sliding_window;
  if (typeof sw === 'number' && sw < config.maxPos && cfgJson.use_sliding_window !== false) {
    w.notes.push(`sliding_window ${sw} is not applied (full causal attention): exact for sequences up to ${sw} tokens`);
  }
  config.tiedEmbeddings = w.tiedEmbeddings;
  const shardFiles = has(SAFETENSORS_INDEX)
    ? [SAFETENSORS_INDEX, ...new Set(store.names().map((n) => store.info(n)!.file.slice(src.name.length + 1)))]
    : [...new Set(store.names().map((n) => store.info(n)!.file.slice(src.name.length + 1)))];
  return {
    config,
    weights: w.weights,
    tokenizer,
    chatTemplate,
    source: {
      format: 'hf',
      name: src.name,
      modelName: typeof cfgJson._name_or_path === 'string' && cfgJson._name_or_path ? cfgJson._name_or_path : null,
      files: [...used, ...shardFiles.sort()],
      tensorTypes: w.tensorTypes,
      params: w.params,
      notes: w.notes,
    },
  };
}

/** The full config of a GGUF file: metadata, llama3 scaling from rope_freqs, tied detection by bytes. */
async function ggufConfig(store: ReturnType<typeof ggufStore>, notes: string[]): Promise<LlamaConfig> {
  const g = store.gguf;
  const config = configFromGGUF(g);
  if (config.ropeStyle === 'pairs') notes.push('q/k weights kept as stored by llama.cpp (permuted for adjacent-pair RoPE): ropeStyle pairs');
  if (g.tensors.has('rope_freqs.weight')) {
    const ff = await store.read('rope_freqs.weight');
    if (ff.length !== config.headDim / 2) err(g.file, `rope_freqs.weight has ${ff.length} values, expected head size / 2 = ${config.headDim / 2}`);
    config.ropeScaling = llama3FromRopeFreqs(g.file, ff, config.headDim, config.ropeTheta);
    const rs = config.ropeScaling;
    notes.push(`llama3 rope scaling recovered from rope_freqs.weight: factor ${rs.factor}, low ${rs.lowFreqFactor}, high ${rs.highFreqFactor}, original context ${rs.originalMaxPositionEmbeddings}`);
  }
  // an output.weight that is a byte-identical copy of token_embd.weight is a tied head
  const te = g.tensors.get('token_embd.weight'), out = g.tensors.get('output.weight');
  if (te && out && te.type === out.type && te.end - te.begin === out.end - out.begin) {
    const [x, y] = await Promise.all([store.readRaw(te.name), store.readRaw(out.name)]);
    let same = true;
    for (let i = 0; i < x.length && same; i++) same = x[i] === y[i];
    if (same) {
      config.tiedEmbeddings = true;
      notes.push('output.weight is a byte-identical copy of token_embd.weight: treated as tied');
    }
  }
  return config;
}

async function loadGGUF(src: ModelSource, file: string, opts: LoadOptions): Promise<LoadedModel> {
  const f = await openFile(src, file);
  const g = await readGGUFHeader(f);
  const store = ggufStore(f, g);
  const notes: string[] = [];
  const config = await ggufConfig(store, notes);
  const tokenizer = tokenizerFromGGUF(g);
  for (const e of tokenizer.eos) if (!config.eos.includes(e)) config.eos.push(e);
  config.bos = tokenizer.addBosDefault ? tokenizer.bos : null;
  if (tokenizer.vocabSize > config.vocab) err(f.label, `the tokenizer has ${tokenizer.vocabSize} tokens but token_embd.weight has ${config.vocab} rows`);
  const w = await loadWeights(store, config, GGUF_NAMES, opts);
  config.tiedEmbeddings = w.tiedEmbeddings;
  const name = g.metadata.get('general.name');
  return {
    config,
    weights: w.weights,
    tokenizer,
    chatTemplate: ggufChatTemplate(g),
    source: {
      format: 'gguf',
      name: src.name,
      modelName: typeof name === 'string' ? name : null,
      files: [file],
      tensorTypes: w.tensorTypes,
      params: w.params,
      notes: [...notes, ...w.notes],
    },
  };
}

/** Load config, f32 weights, tokenizer and chat template of a model. */
export async function loadModel(src: ModelSource, opts: LoadOptions = {}): Promise<LoadedModel> {
  const files = await src.list();
  const { format, gguf } = await pickFormat(src, files, opts);
  return format === 'hf' ? loadHF(src, files, opts) : loadGGUF(src, gguf!, opts);
}

/** Only the config (cheap: reads config.json or the GGUF header), e.g. to show a model's size before loading. */
export async function loadModelConfig(src: ModelSource, opts: Omit<LoadOptions, 'onProgress'> = {}): Promise<LlamaConfig> {
  const files = await src.list();
  const { format, gguf } = await pickFormat(src, files, opts);
  if (format === 'hf') {
    const generation = files.includes('generation_config.json') ? await readJson<Json>(src, 'generation_config.json') : null;
    return configFromHF(await readJson<Json>(src, 'config.json'), `${src.name}/config.json`, generation);
  }
  const f = await openFile(src, gguf!);
  return ggufConfig(ggufStore(f, await readGGUFHeader(f)), []);
}

/**
 * The config, tokenizer and chat template without the weights (reads config.json + the tokenizer
 * files, or the GGUF header): what dataset validation and token counts need. For a GGUF the config
 * is the header's (no rope_freqs / tied-head detection, which read tensor data).
 */
export async function loadModelTokenizer(src: ModelSource, opts: Omit<LoadOptions, 'onProgress'> = {}): Promise<{ config: LlamaConfig; tokenizer: Tokenizer; chatTemplate: string | null }> {
  const files = await src.list();
  const { format, gguf } = await pickFormat(src, files, opts);
  if (format === 'hf') {
    const generation = files.includes('generation_config.json') ? await readJson<Json>(src, 'generation_config.json') : null;
    const config = configFromHF(await readJson<Json>(src, 'config.json'), `${src.name}/config.json`, generation);
    return { config, ...(await hfTokenizer(src, files, config, [])) };
  }
  const g = await readGGUFHeader(await openFile(src, gguf!));
  const config = configFromGGUF(g);
  const tokenizer = tokenizerFromGGUF(g);
  for (const e of tokenizer.eos) if (!config.eos.includes(e)) config.eos.push(e);
  config.bos = tokenizer.addBosDefault ? tokenizer.bos : null;
  return { config, tokenizer, chatTemplate: ggufChatTemplate(g) };
}
