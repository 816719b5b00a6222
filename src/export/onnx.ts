// ONNX export of a (merged) Llama-family model (llama, mistral, qwen2) as a transformers.js-style
// folder, returned as a Map of path → bytes:
//   config.json               HF-style config (+ "transformers.js_config": dtype fp32, and the
//                             external-data chunk count when weights are external)
//   generation_config.json    bos/eos ids (unless the caller passes one among tokenizerFiles)
//   <tokenizer files>         copied through as given (tokenizer.json, tokenizer_config.json, ...)
//   onnx/model.onnx           the decoder graph (opset 17, IR 8), f32 weights as raw_data
//   onnx/model.onnx_data[_N]  only when weights go external (auto above ~1.8 GB: protobuf's 2 GiB cap)
//
// Graph I/O (the names transformers.js / optimum use for decoder-with-past models):
//   inputs   input_ids int64 [batch_size, sequence_length]
//            attention_mask int64 [batch_size, total_sequence_length]  (past + new; 0 = padding)
//            position_ids int64 [batch_size, sequence_length]
//            past_key_values.{i}.key / .value f32 [batch_size, NKV, past_sequence_length, HS]
//              (past_sequence_length may be 0: the first call passes empty tensors)
//   outputs  logits f32 [batch_size, sequence_length, V]
//            present.{i}.key / .value f32 [batch_size, NKV, total_sequence_length, HS]
//              = Concat(past, new positions) on axis 2; keys are stored after RoPE.
//
// Per layer, standard ops only: RMSNorm as Mul/ReduceMean/Add/Sqrt/Div/Mul; q/k/v/o/gate/up/down
// as MatMul with pre-transposed (in, out) weights (+ Add for Qwen2's q/k/v bias); RoPE from
// position_ids: Cos/Sin of Cast(position_ids)·inv_freq (inv_freq precomputed by
// src/ref/rope.ts rope_inv_freq, Llama-3 scaling baked in), applied rotate-half style with
// Slice/Mul/Sub/Add/Concat. GGUF 'pairs' models (adjacent-pair RoPE, q/k rows permuted by
// llama.cpp) are exported by un-permuting the q/k rows (and biases) back to HF order, so every
// export is a plain HF-semantics Llama graph. GQA without copying K/V: q is viewed as
// [B, NKV, n_rep, S, HS] and matmuls broadcast against K/V unsqueezed to [B, NKV, 1, T, HS]
// (q head h uses kv head floor(h / n_rep), as HF's repeat_kv). Mask: key j is visible to query i
// when attention_mask[b, j] = 1 and j ≤ past_len + i (cache index, as HF's cache_position), built
// with Shape/Gather/Range/LessOrEqual/Cast/And and applied with Where(·, scores, f32 min) — fully
// masked rows (left-padding queries) stay finite. Softmax, SwiGLU as g·Sigmoid(g)·u, final norm,
// lm_head as Gemm(transB=1) over the (V, C) matrix — for tied models that is the embedding
// initializer itself (one copy in the file).
// Legend: B batch, S new tokens, T total tokens, C hidden, V vocab, NH heads, NKV kv heads,
// HS head size, F ffn size, QD = NH*HS, KVD = NKV*HS.
// No DOM, no node:*; runs in the browser and in Node. See ./onnx-generate.ts for running it.
import type { LlamaConfig, LlamaWeights } from '../model/config.ts';
import { rope_inv_freq } from '../ref/rope.ts';
import { hfConfigJson } from './merged.ts';
import { GraphBuilder } from './onnx/graph.ts';
import { type Dim, type Lazy, DType, attr, modelProto } from './onnx/proto.ts';

export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;
/** Folder-relative path of the model file. */
export const ONNX_MODEL_PATH = 'onnx/model.onnx';
/** Above this many weight bytes, `externalData: 'auto'` moves weights to onnx/model.onnx_data. */
export const ONNX_AUTO_EXTERNAL_BYTES = 1.8e9;

export interface OnnxExportOptions {
  /** files copied into the folder root as given (tokenizer.json, tokenizer_config.json, ...) */
  tokenizerFiles?: Map<string, Uint8Array>;
  /**
   * A base config.json (object or JSON text), e.g. the source model's. Its extra keys are kept;
   * the structural keys (sizes, heads, rope, eps, tying, bos/eos) are always written from `cfg`,
   * which is what the graph implements.
   */
  configJson?: Record<string, unknown> | string;
  /** weights in external data files: true, false, or 'auto' (default: above ~1.8 GB) */
  externalData?: boolean | 'auto';
  /** most bytes per external data file (default 1 GiB) */
  maxChunkBytes?: number;
}

/** The model file and its external data chunks, relative to the model file's folder. */
export interface OnnxModelBytes {
  model: Uint8Array;
  externalData: { path: string; data: Uint8Array }[];
}

function check(cond: boolean, why: string): asserts cond {
  if (!cond) throw new Error(`ONNX export: ${why}`);
}

function checkWeights(cfg: LlamaConfig, w: LlamaWeights): void {
  const C = cfg.hidden, QD = cfg.heads * cfg.headDim, KVD = cfg.kvHeads * cfg.headDim, F = cfg.ffn, V = cfg.vocab;
  check(cfg.heads % cfg.kvHeads === 0, `heads (${cfg.heads}) is not a multiple of kvHeads (${cfg.kvHeads})`);
  check(cfg.headDim % 2 === 0, `headDim (${cfg.headDim}) must be even for RoPE`);
  check(w.layers.length === cfg.layers, `${w.layers.length} layers of weights for a ${cfg.layers}-layer config`);
  const len = (name: string, a: Float32Array | null, n: number) =>
    check(a !== null && a.length === n, `${name} has ${a?.length ?? 'no'} values, expected ${n}`);
  len('embed', w.embed, V * C);
  len('norm', w.norm, C);
  if (w.lmHead) len('lmHead', w.lmHead, V * C);
  w.layers.forEach((l, i) => {
    const p = `layers[${i}].`;
    len(p + 'attnNorm', l.attnNorm, C);
    len(p + 'ffnNorm', l.ffnNorm, C);
    len(p + 'wq', l.wq, QD * C);
    len(p + 'wk', l.wk, KVD * C);
    len(p + 'wv', l.wv, KVD * C);
    len(p + 'wo', l.wo, C * QD);
    len(p + 'wGate', l.wGate, F * C);
    len(p + 'wUp', l.wUp, F * C);
    len(p + 'wDown', l.wDown, C * F);
    if (cfg.attnBias) {
      len(p + 'bq', l.bq, QD);
      len(p + 'bk', l.bk, KVD);
      len(p + 'bv', l.bv, KVD);
    }
  });
}

/**
 * Row order that turns GGUF 'pairs' q/k rows back into HF rotate-half order: within each head,
 * HF row t·HS/2 + i is GGUF row 2i + t (llama.cpp's converter permuted the other way).
 */
function unpermuteRows(heads: number, HS: number): Int32Array {
  const order = new Int32Array(heads * HS), half = HS / 2;
  for (let h = 0; h < heads; h++) {
    for (let t = 0; t < 2; t++) for (let i = 0; i < half; i++) order[h * HS + t * half + i] = h * HS + 2 * i + t;
  }
  return order;
}

/** w (out, in) row-major → (in, out), rows reordered by `order` (new row o = w row order[o]). */
function transposed(w: Float32Array, out: number, inp: number, order: Int32Array | null): Lazy {
  return {
    size: out * inp * 4,
    write(dst, off) {
      const t = new Float32Array(out * inp);
      const BLK = 64;
      for (let o0 = 0; o0 < out; o0 += BLK) {
        const o1 = Math.min(out, o0 + BLK);
        for (let i0 = 0; i0 < inp; i0 += BLK) {
          const i1 = Math.min(inp, i0 + BLK);
          for (let o = o0; o < o1; o++) {
            const src = (order ? order[o] : o) * inp;
            for (let i = i0; i < i1; i++) t[i * out + o] = w[src + i];
          }
        }
      }
      dst.set(new Uint8Array(t.buffer), off);
    },
  };
}

function reorder(b: Float32Array, order: Int32Array | null): Float32Array {
  return order ? Float32Array.from(order, (r) => b[r]) : b;
}

/** Build the graph; returns the builder (not yet serialized). */
function buildGraph(cfg: LlamaConfig, w: LlamaWeights): GraphBuilder {
  checkWeights(cfg, w);
  const g = new GraphBuilder();
  const C = cfg.hidden, NH = cfg.heads, NKV = cfg.kvHeads, HS = cfg.headDim, F = cfg.ffn, V = cfg.vocab;
  const QD = NH * HS, KVD = NKV * HS, NREP = NH / NKV, HALF = HS / 2;
  const batch: Dim = 'batch_size', seq: Dim = 'sequence_length', past: Dim = 'past_sequence_length', total: Dim = 'total_sequence_length';

  // ---- inputs
  const ids = g.input('input_ids', DType.INT64, [batch, seq]);
  const mask = g.input('attention_mask', DType.INT64, [batch, total]);
  const pos = g.input('position_ids', DType.INT64, [batch, seq]);
  const pastK: string[] = [], pastV: string[] = [];
  for (let l = 0; l < cfg.layers; l++) {
    pastK.push(g.input(`past_key_values.${l}.key`, DType.FLOAT, [batch, NKV, past, HS]));
    pastV.push(g.input(`past_key_values.${l}.value`, DType.FLOAT, [batch, NKV, past, HS]));
  }

  // ---- weights
  const qOrder = cfg.ropeStyle === 'pairs' ? unpermuteRows(NH, HS) : null;
  const kOrder = cfg.ropeStyle === 'pairs' ? unpermuteRows(NKV, HS) : null;
  const embed = g.f32('model.embed_tokens.weight', [V, C], w.embed);
  const head = w.lmHead ? g.f32('lm_head.weight', [V, C], w.lmHead) : embed;
  const invFreq = g.f32('rotary_emb.inv_freq', [HALF], rope_inv_freq(HS, cfg.ropeTheta, cfg.ropeScaling));
  const eps = g.f32const([cfg.eps], []);
  const scale = g.f32const([1 / Math.sqrt(HS)], []);
  const negMin = g.f32const([-3.4028234663852886e38], []);
  const linearT = (name: string, wt: Float32Array, out: number, inp: number, order: Int32Array | null = null) =>
    g.init(`${name}.weight_t`, DType.FLOAT, [inp, out], transposed(wt, out, inp, order));

  const rmsnorm = (x: string, weight: string): string => {
    const sq = g.op1('Mul', [x, x]);
    const ms = g.op1('ReduceMean', [sq], { axes: attr.ints([-1]), keepdims: attr.int(1) });
    const r = g.op1('Sqrt', [g.op1('Add', [ms, eps])]);
    return g.op1('Mul', [g.op1('Div', [x, r]), weight]);
  };
  const linear = (x: string, wT: string, bias: string | null): string => {
    const y = g.op1('MatMul', [x, wT]);
    return bias ? g.op1('Add', [y, bias]) : y;
  };
  const sliceStart = g.i64([0]), sliceMid = g.i64([HALF]), sliceEnd = g.i64([HS]), lastAxis = g.i64([-1]);
  /** rotate-half RoPE on the last axis: [x1·cos − x2·sin, x1·sin + x2·cos] */
  const rope = (x: string, cos: string, sin: string): string => {
    const x1 = g.op1('Slice', [x, sliceStart, sliceMid, lastAxis]);
    const x2 = g.op1('Slice', [x, sliceMid, sliceEnd, lastAxis]);
    const a = g.op1('Sub', [g.op1('Mul', [x1, cos]), g.op1('Mul', [x2, sin])]);
    const b = g.op1('Add', [g.op1('Mul', [x1, sin]), g.op1('Mul', [x2, cos])]);
    return g.op1('Concat', [a, b], { axis: attr.int(-1) });
  };

  // ---- shared: embedding, rotary angles, mask
  g.scope = '/model';
  let x = g.op1('Gather', [embed, ids], { axis: attr.int(0) }); // [B,S,C]
  g.scope = '/model/rotary_emb';
  const posF = g.op1('Unsqueeze', [g.op1('Cast', [pos], { to: attr.int(DType.FLOAT) }), g.i64([-1])]); // [B,S,1]
  const freqs = g.op1('Mul', [posF, invFreq]); // [B,S,HALF] (f32 product, as HF)
  const cos = g.op1('Cos', [freqs]), sin = g.op1('Sin', [freqs]);
  const cosK = g.op1('Unsqueeze', [cos, g.i64([1])]), sinK = g.op1('Unsqueeze', [sin, g.i64([1])]); // [B,1,S,HALF]
  const cosQ = g.op1('Unsqueeze', [cos, g.i64([1, 2])]), sinQ = g.op1('Unsqueeze', [sin, g.i64([1, 2])]); // [B,1,1,S,HALF]
  g.scope = '/model/mask';
  const one = g.i64([1], []), zero = g.i64([0], []);
  const T = g.op1('Gather', [g.op1('Shape', [mask]), one], { axis: attr.int(0) }); // scalar
  const S = g.op1('Gather', [g.op1('Shape', [ids]), one], { axis: attr.int(0) }); // scalar
  const P = g.op1('Sub', [T, S]);
  const kIdx = g.op1('Unsqueeze', [g.op1('Range', [zero, T, one]), g.i64([0])]); // [1,T]
  const qIdx = g.op1('Unsqueeze', [g.op1('Range', [P, T, one]), g.i64([1])]); // [S,1]
  const causal = g.op1('LessOrEqual', [kIdx, qIdx]); // [S,T]
  const pad = g.op1('Unsqueeze', [g.op1('Cast', [mask], { to: attr.int(DType.BOOL) }), g.i64([1, 2, 3])]); // [B,1,1,1,T]
  const allowed = g.op1('And', [causal, pad]); // [B,1,1,S,T]

  const qShape = g.i64([0, 0, NKV, NREP, HS]), kvShape = g.i64([0, 0, NKV, HS]), attShape = g.i64([0, 0, QD]);
  const axis2 = g.i64([2]);

  for (let l = 0; l < cfg.layers; l++) {
    const lw = w.layers[l];
    const p = `model.layers.${l}`;
    g.scope = `/model/layers.${l}/self_attn`;
    const wq = linearT(`${p}.self_attn.q_proj`, lw.wq, QD, C, qOrder);
    const wk = linearT(`${p}.self_attn.k_proj`, lw.wk, KVD, C, kOrder);
    const wv = linearT(`${p}.self_attn.v_proj`, lw.wv, KVD, C);
    const wo = linearT(`${p}.self_attn.o_proj`, lw.wo, C, QD);
    const bq = cfg.attnBias ? g.f32(`${p}.self_attn.q_proj.bias`, [QD], reorder(lw.bq!, qOrder)) : null;
    const bk = cfg.attnBias ? g.f32(`${p}.self_attn.k_proj.bias`, [KVD], reorder(lw.bk!, kOrder)) : null;
    const bv = cfg.attnBias ? g.f32(`${p}.self_attn.v_proj.bias`, [KVD], lw.bv!) : null;
    const attnNorm = g.f32(`${p}.input_layernorm.weight`, [C], lw.attnNorm);

    const h = rmsnorm(x, attnNorm);
    // q: [B,S,QD] → [B,S,NKV,NREP,HS] → [B,NKV,NREP,S,HS]
    const q5 = g.op1('Transpose', [g.op1('Reshape', [linear(h, wq, bq), qShape])], { perm: attr.ints([0, 2, 3, 1, 4]) });
    const q = rope(q5, cosQ, sinQ);
    // k, v: [B,S,KVD] → [B,S,NKV,HS] → [B,NKV,S,HS]
    const kNew = g.op1('Transpose', [g.op1('Reshape', [linear(h, wk, bk), kvShape])], { perm: attr.ints([0, 2, 1, 3]) });
    const vNew = g.op1('Transpose', [g.op1('Reshape', [linear(h, wv, bv), kvShape])], { perm: attr.ints([0, 2, 1, 3]) });
    const k = g.op1('Concat', [pastK[l], rope(kNew, cosK, sinK)], { axis: attr.int(2) }, `present.${l}.key`); // [B,NKV,T,HS]
    const v = g.op1('Concat', [pastV[l], vNew], { axis: attr.int(2) }, `present.${l}.value`);
    const kT = g.op1('Transpose', [g.op1('Unsqueeze', [k, axis2])], { perm: attr.ints([0, 1, 2, 4, 3]) }); // [B,NKV,1,HS,T]
    const scores = g.op1('Mul', [g.op1('MatMul', [q, kT]), scale]); // [B,NKV,NREP,S,T]
    const probs = g.op1('Softmax', [g.op1('Where', [allowed, scores, negMin])], { axis: attr.int(-1) });
    const att = g.op1('MatMul', [probs, g.op1('Unsqueeze', [v, axis2])]); // [B,NKV,NREP,S,HS]
    const att2 = g.op1('Reshape', [g.op1('Transpose', [att], { perm: attr.ints([0, 3, 1, 2, 4]) }), attShape]); // [B,S,QD]
    x = g.op1('Add', [x, linear(att2, wo, null)]);

    g.scope = `/model/layers.${l}/mlp`;
    const ffnNorm = g.f32(`${p}.post_attention_layernorm.weight`, [C], lw.ffnNorm);
    const wg = linearT(`${p}.mlp.gate_proj`, lw.wGate, F, C);
    const wu = linearT(`${p}.mlp.up_proj`, lw.wUp, F, C);
    const wd = linearT(`${p}.mlp.down_proj`, lw.wDown, C, F);
    const h2 = rmsnorm(x, ffnNorm);
    const gate = linear(h2, wg, null);
    const s = g.op1('Mul', [g.op1('Mul', [gate, g.op1('Sigmoid', [gate])]), linear(h2, wu, null)]);
    x = g.op1('Add', [x, linear(s, wd, null)]);
  }

  g.scope = '/model/norm';
  const hf = rmsnorm(x, g.f32('model.norm.weight', [C], w.norm));
  g.scope = '/lm_head';
  const flat = g.op1('Reshape', [hf, g.i64([-1, C])]); // [B*S, C]
  const lg = g.op1('Gemm', [flat, head], { transB: attr.int(1) }); // [B*S, V]
  const outShape = g.op1('Concat', [g.op1('Shape', [ids]), g.i64([V])], { axis: attr.int(0) });
  g.op1('Reshape', [lg, outShape], {}, 'logits');

  g.output('logits', DType.FLOAT, [batch, seq, V]);
  for (let l = 0; l < cfg.layers; l++) {
    g.output(`present.${l}.key`, DType.FLOAT, [batch, NKV, total, HS]);
    g.output(`present.${l}.value`, DType.FLOAT, [batch, NKV, total, HS]);
  }
  return g;
}

/**
 * The ONNX model bytes alone (no folder): `model` and, when weights are external, the chunk
 * files named relative to the model file (`model.onnx_data`, `model.onnx_data_1`, ...).
 */
export function buildOnnxModel(
  cfg: LlamaConfig, weights: LlamaWeights,
  opts: { externalData?: boolean | 'auto'; maxChunkBytes?: number; modelFileName?: string } = {},
): OnnxModelBytes {
  const g = buildGraph(cfg, weights);
  const mode = opts.externalData ?? 'auto';
  const external = mode === true || (mode === 'auto' && g.initializerBytes() > ONNX_AUTO_EXTERNAL_BYTES);
  const location = `${opts.modelFileName ?? 'model.onnx'}_data`;
  const built = g.build('whittle_llama', external
    ? { location, maxChunkBytes: opts.maxChunkBytes ?? 2 ** 30, minBytes: 1024 }
    : null);
  const model = modelProto({
    irVersion: ONNX_IR_VERSION,
    opset: ONNX_OPSET,
    producer: 'whittle',
    producerVersion: '0.1.0',
    docString: `${cfg.arch} decoder with KV cache (${cfg.layers} layers, hidden ${cfg.hidden}, vocab ${cfg.vocab}), exported by whittle`,
    graph: built.graph,
    metadata: { rope_style_source: cfg.ropeStyle, tied_embeddings: String(cfg.tiedEmbeddings || !weights.lmHead) },
  }).toBytes();
  return { model, externalData: built.external.map((f) => ({ path: f.name, data: f.data })) };
}

/**
 * config.json for the folder: `base`'s extra keys, the structural keys from `cfg`, and
 * transformers.js_config { dtype: 'fp32' (so transformers.js loads onnx/model.onnx, not a
 * quantized variant), use_external_data_format: chunk count (when external) }.
 */
export function onnxConfigJson(cfg: LlamaConfig, base: Record<string, unknown> = {}, externalChunks = 0): Record<string, unknown> {
  const baseTjs = (base['transformers.js_config'] ?? {}) as Record<string, unknown>;
  const tjs: Record<string, unknown> = { ...baseTjs, dtype: 'fp32' };
  if (externalChunks > 0) tjs.use_external_data_format = { 'model.onnx': externalChunks };
  else delete tjs.use_external_data_format;
  return { ...base, ...hfConfigJson(cfg, 'f32', base), 'transformers.js_config': tjs };
}

/**
 * Export a merged model as a transformers.js-style folder: path → bytes (config.json,
 * generation_config.json, the tokenizer files as given, onnx/model.onnx[, onnx/model.onnx_data*]).
 */
export function exportOnnx(cfg: LlamaConfig, weights: LlamaWeights, opts: OnnxExportOptions = {}): Map<string, Uint8Array> {
  const enc = new TextEncoder();
  const { model, externalData } = buildOnnxModel(cfg, weights, {
    externalData: opts.externalData, maxChunkBytes: opts.maxChunkBytes, modelFileName: 'model.onnx',
  });
  let base: Record<string, unknown> = {};
  if (typeof opts.configJson === 'string') {
    try {
      base = JSON.parse(opts.configJson) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`ONNX export: configJson is not valid JSON: ${(e as Error).message}`);
    }
  } else if (opts.configJson) {
    base = opts.configJson;
  }
  const files = new Map<string, Uint8Array>();
  files.set('config.json', enc.encode(JSON.stringify(onnxConfigJson(cfg, base, externalData.length), null, 2) + '\n'));
  for (const [path, bytes] of opts.tokenizerFiles ?? []) {
    check(!path.startsWith('onnx/') && path !== 'config.json', `tokenizer file ${path} would overwrite an exported file`);
    files.set(path, bytes);
  }
  if (!files.has('generation_config.json')) {
    const eos = cfg.eos.length === 1 ? cfg.eos[0] : cfg.eos;
    const gen: Record<string, unknown> = { bos_token_id: cfg.bos, eos_token_id: eos };
    files.set('generation_config.json', enc.encode(JSON.stringify(gen, null, 2) + '\n'));
  }
  files.set(ONNX_MODEL_PATH, model);
  for (const f of externalData) files.set(`onnx/${f.path}`, f.data);
  return files;
}
