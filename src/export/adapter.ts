// The in-memory LoRA adapter every exporter and importer of src/export works on, and the q/k
// row permutation between Hugging Face and llama.cpp orientation.
//
// An Adapter is {name, base, lora, tensors, ...}: `tensors` maps loraKey(layer, target)
// ("3.q") to {A (R, IC), B (OC, R)} f32, exactly the LoraParams the trainer and the CPU
// reference use (src/model/lora.ts); `lora` is the LoraConfig (rank, alpha, dropout, targets,
// rslora). `base.ropeStyle` says in which orientation the q/k rows of B are:
//   'half'  — Hugging Face order (rotate-half RoPE): what PEFT files hold;
//   'pairs' — llama.cpp's GGUF order: convert_hf_to_gguf.py permutes the q/k projection rows
//             of llama/mistral models, `permute(w, n_head)` =
//             w.reshape(n_head, 2, HS/2, in).swapaxes(1, 2).reshape(out, in) (n_kv_head for k),
//             and whittle keeps GGUF q/k as stored (src/model/load.ts, ropeStyle 'pairs').
// An adapter trained on a model is in that model's orientation (config.ropeStyle). Only B's rows
// (the output side) move; A (input side) is the same in both. Qwen2 GGUFs are not permuted
// (llama.cpp runs them with NEOX RoPE), so they are 'half' like HF checkpoints.
//
// It is not: a file format (./peft.ts, ./gguf-lora.ts, ./merged.ts write those) nor the stored
// record (src/store/adapters.ts) or the trainer's result (src/train/adapter.ts TrainedAdapter);
// adapterFromTrained converts the latter two (PEFT-named tensors) into an Adapter.
// No DOM, no node:*.
import { LORA_TARGETS, type LlamaConfig, type LoraConfig, type LoraTarget, type RopeStyle, targetShape } from '../model/config.ts';
import { loraKey, type LoraParams } from '../model/lora.ts';
import { modelShapeSignature } from '../store/adapters.ts';

/** What an adapter was trained on. */
export interface AdapterBase {
  /** Hugging Face repo id or path of the base model (PEFT base_model_name_or_path), null when unknown */
  nameOrPath: string | null;
  /** modelShapeSignature() of the base config: an adapter fits any base with the same shapes */
  shape: string;
  arch: LlamaConfig['arch'];
  /** q/k row order of the B tensors (see the header) */
  ropeStyle: RopeStyle;
  /** file format the base was loaded from, when known */
  format: 'hf' | 'gguf' | null;
}

export interface Adapter {
  name: string;
  base: AdapterBase;
  lora: LoraConfig;
  /** loraKey(layer, target) → A (R, IC), B (OC, R), f32, B rows in base.ropeStyle order */
  tensors: LoraParams;
  /** training settings (src/train Hyperparameters or anything else), when known */
  hyperparameters?: Record<string, unknown>;
  /** training summary (final loss, steps, ...), when known */
  metrics?: Record<string, unknown>;
  /** things worth telling the user that happened while building / importing it */
  notes: string[];
}

/** Hugging Face module name of each target (the PEFT target_modules entry). */
export const HF_MODULE: Record<LoraTarget, string> = {
  q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj', gate: 'gate_proj', up: 'up_proj', down: 'down_proj',
};
/** Parent of each module inside a decoder layer. */
export const HF_PARENT: Record<LoraTarget, 'self_attn' | 'mlp'> = {
  q: 'self_attn', k: 'self_attn', v: 'self_attn', o: 'self_attn', gate: 'mlp', up: 'mlp', down: 'mlp',
};
/** llama.cpp tensor name (without `blk.N.` and `.weight`) of each target. */
export const GGUF_TENSOR: Record<LoraTarget, string> = {
  q: 'attn_q', k: 'attn_k', v: 'attn_v', o: 'attn_output', gate: 'ffn_gate', up: 'ffn_up', down: 'ffn_down',
};

/** HF module name → target ('q_proj' → 'q'). */
export function targetOfModule(module: string): LoraTarget | undefined {
  return LORA_TARGETS.find((t) => HF_MODULE[t] === module);
}

/** Whether llama.cpp permutes this architecture's q/k rows when converting to GGUF. */
export function ggufPermutesQK(arch: LlamaConfig['arch']): boolean {
  return arch !== 'qwen2';
}

/**
 * Rows of a row-major (rows, cols) matrix, rows = nHead·HS, reordered between HF order and
 * llama.cpp's GGUF order (a new array). `to: 'pairs'` applies llama.cpp's permute (HF → GGUF):
 * GGUF row h·HS + 2j + s = HF row h·HS + s·HS/2 + j (j < HS/2, s ∈ {0,1}); `to: 'half'` undoes it.
 * Works for weights (cols = in), LoRA B (cols = R) and biases (cols = 1).
 */
export function permuteRows(m: Float32Array, nHead: number, headDim: number, cols: number, to: RopeStyle): Float32Array {
  const rows = nHead * headDim;
  if (m.length !== rows * cols) throw new Error(`permuteRows: ${m.length} values are not (${nHead}·${headDim}) × ${cols}`);
  if (headDim % 2 !== 0) throw new Error(`permuteRows: head size ${headDim} is odd`);
  const half = headDim / 2;
  const out = new Float32Array(m.length);
  for (let h = 0; h < nHead; h++) {
    for (let j = 0; j < half; j++) {
      for (let s = 0; s < 2; s++) {
        const g = h * headDim + 2 * j + s; // GGUF (pairs) row
        const f = h * headDim + s * half + j; // HF (half) row
        const [dst, src] = to === 'pairs' ? [g, f] : [f, g];
        out.set(m.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

/** Heads whose rows a q or k projection holds (k: the kv heads). */
function headsOf(cfg: LlamaConfig, t: 'q' | 'k'): number {
  return t === 'q' ? cfg.heads : cfg.kvHeads;
}

/**
 * The adapter with its q/k B rows in `to` order (the same object when already there). Only
 * llama/mistral can be 'pairs'; asking a qwen2 adapter for 'pairs' is an error.
 */
export function reorient(a: Adapter, cfg: LlamaConfig, to: RopeStyle): Adapter {
  if (a.base.ropeStyle === to) return a;
  if (!ggufPermutesQK(cfg.arch)) throw new Error(`adapter '${a.name}': a ${cfg.arch} model has no llama.cpp q/k permutation ('${a.base.ropeStyle}' → '${to}')`);
  const R = a.lora.rank;
  const tensors: LoraParams = new Map();
  for (const [key, p] of a.tensors) {
    const t = key.slice(key.indexOf('.') + 1) as LoraTarget;
    if (t === 'q' || t === 'k') tensors.set(key, { A: p.A, B: permuteRows(p.B, headsOf(cfg, t), cfg.headDim, R, to) });
    else tensors.set(key, p);
  }
  return { ...a, base: { ...a.base, ropeStyle: to }, tensors };
}

/** Which base-model description a model gives an adapter trained on it. */
export function baseOf(cfg: LlamaConfig, nameOrPath: string | null, format: 'hf' | 'gguf' | null): AdapterBase {
  return { nameOrPath, shape: modelShapeSignature(cfg), arch: cfg.arch, ropeStyle: cfg.ropeStyle, format };
}

/** Short description of a config for errors: "llama, 2 layers, hidden 64, 4×16 heads, 2 kv heads, ffn 96". */
export function describeConfig(cfg: LlamaConfig): string {
  return `${cfg.arch}, ${cfg.layers} layers, hidden ${cfg.hidden}, ${cfg.heads}×${cfg.headDim} heads, ${cfg.kvHeads} kv heads, ffn ${cfg.ffn}`;
}

/**
 * Check that every (layer, target) of lora.targets has A (R, IC) and B (OC, R) for `cfg`, and no
 * stray keys. Throws an Error naming the tensor and the expected vs actual size.
 */
export function checkTensors(what: string, cfg: LlamaConfig, lora: LoraConfig, tensors: LoraParams): void {
  const R = lora.rank;
  if (!Number.isInteger(R) || R < 1) throw new Error(`${what}: LoRA rank ${R} is not a positive integer`);
  for (const t of lora.targets) if (!LORA_TARGETS.includes(t)) throw new Error(`${what}: unknown LoRA target '${t}' (known: ${LORA_TARGETS.join(', ')})`);
  const want = new Set<string>();
  for (let l = 0; l < cfg.layers; l++) {
    for (const t of lora.targets) {
      const key = loraKey(l, t);
      want.add(key);
      const p = tensors.get(key);
      if (!p) throw new Error(`${what}: LoRA tensors of layer ${l} ${HF_MODULE[t]} are missing`);
      const [OC, IC] = targetShape(cfg, t);
      if (p.A.length !== R * IC) throw new Error(`${what}: layer ${l} ${HF_MODULE[t]} lora_A has ${p.A.length} values, the base model (${describeConfig(cfg)}) needs (${R}, ${IC}) = ${R * IC}`);
      if (p.B.length !== OC * R) throw new Error(`${what}: layer ${l} ${HF_MODULE[t]} lora_B has ${p.B.length} values, the base model (${describeConfig(cfg)}) needs (${OC}, ${R}) = ${OC * R}`);
    }
  }
  for (const key of tensors.keys()) if (!want.has(key)) throw new Error(`${what}: unexpected LoRA tensors '${key}' (layer.target outside the ${cfg.layers} layers × targets ${lora.targets.join(',')})`);
}

/**
 * Make sure `a` fits the model `cfg` (same shape signature, every tensor sized right) and return
 * it in the model's q/k orientation.
 */
export function fitAdapter(a: Adapter, cfg: LlamaConfig): Adapter {
  const sig = modelShapeSignature(cfg);
  if (a.base.shape !== sig) {
    throw new Error(`adapter '${a.name}' was trained on a different base model (shape ${a.base.shape}${a.base.nameOrPath ? `, ${a.base.nameOrPath}` : ''}) than this one (${sig})`);
  }
  checkTensors(`adapter '${a.name}'`, cfg, a.lora, a.tensors);
  return reorient(a, cfg, cfg.ropeStyle);
}

/** An Adapter from trained LoRA parameters (trainer output or initLora), in the model's orientation. */
export function adapterFromParams(
  cfg: LlamaConfig, lora: LoraConfig, params: LoraParams,
  opts: { name: string; nameOrPath?: string | null; format?: 'hf' | 'gguf' | null; hyperparameters?: Record<string, unknown>; metrics?: Record<string, unknown> },
): Adapter {
  const lc: LoraConfig = { ...lora, targets: LORA_TARGETS.filter((t) => lora.targets.includes(t)) };
  checkTensors(`adapter '${opts.name}'`, cfg, lc, params);
  return {
    name: opts.name,
    base: baseOf(cfg, opts.nameOrPath ?? null, opts.format ?? null),
    lora: lc,
    tensors: params,
    hyperparameters: opts.hyperparameters,
    metrics: opts.metrics,
    notes: [],
  };
}

// ---------------------------------------------------------------------------------------------
// PEFT tensor names

/**
 * Parse a PEFT LoRA tensor name: `[base_model.model.][model.]layers.{i}.{self_attn|mlp}.{x}_proj.lora_{A|B}[.default].weight`.
 * Returns null for anything else (DoRA magnitudes, biases, modules_to_save, embeddings, ...).
 */
export function parsePeftName(name: string): { layer: number; target: LoraTarget; which: 'A' | 'B' } | null {
  const m = /^(?:base_model\.model\.)?(?:model\.)?layers\.(\d+)\.(self_attn|mlp)\.([a-z]+_proj)\.lora_(A|B)(?:\.[A-Za-z0-9_-]+)?\.weight$/.exec(name);
  if (!m) return null;
  const target = targetOfModule(m[3]);
  if (!target || HF_PARENT[target] !== m[2]) return null;
  return { layer: Number(m[1]), target, which: m[4] as 'A' | 'B' };
}

/** The PEFT name PEFT itself writes: base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight. */
export function peftName(layer: number, target: LoraTarget, which: 'A' | 'B'): string {
  return `base_model.model.model.layers.${layer}.${HF_PARENT[target]}.${HF_MODULE[target]}.lora_${which}.weight`;
}

function f32Of(what: string, dtype: string, data: ArrayBuffer | ArrayBufferView): Float32Array {
  if (dtype !== 'f32') throw new Error(`${what}: dtype ${dtype} (only f32 LoRA tensors are read here)`);
  if (data instanceof Float32Array) return data;
  if (data instanceof ArrayBuffer) return new Float32Array(data.slice(0));
  const v = data as ArrayBufferView;
  return new Float32Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
}

/** The fields of a trained or stored adapter (src/train TrainedAdapter, src/store Adapter) that matter here. */
export interface PeftNamedAdapter {
  name: string;
  baseModel: { id: string; shape: string; ropeStyle?: RopeStyle; format?: 'hf' | 'gguf' };
  /** PEFT terms (TrainedAdapter.lora; the store keeps it at hyperparameters.lora) */
  lora?: { r: number; lora_alpha: number; lora_dropout?: number; use_rslora?: boolean };
  hyperparameters?: object;
  metrics?: object;
  tensors: { name: string; shape: number[]; dtype: string; data: ArrayBuffer | ArrayBufferView }[];
}

/**
 * An Adapter from a trainer result or stored record: tensors under PEFT names in the orientation
 * of the model it was trained on. That orientation is `baseModel.ropeStyle` when recorded, else
 * `ropeStyle` (the caller's model: the one it was trained on must have had the same shapes).
 */
export function adapterFromTrained(a: PeftNamedAdapter, cfg: LlamaConfig, ropeStyle: RopeStyle = cfg.ropeStyle): Adapter {
  const what = `adapter '${a.name}'`;
  const lp = a.lora ?? ((a.hyperparameters as Record<string, unknown> | undefined)?.lora as PeftNamedAdapter['lora'] | undefined);
  if (!lp || typeof lp.r !== 'number' || typeof lp.lora_alpha !== 'number') throw new Error(`${what}: no LoRA config (r, lora_alpha)`);
  const params: LoraParams = new Map();
  const targets = new Set<LoraTarget>();
  for (const t of a.tensors) {
    const p = parsePeftName(t.name);
    if (!p) throw new Error(`${what}: tensor '${t.name}' is not a LoRA A/B tensor of a decoder layer`);
    targets.add(p.target);
    const key = loraKey(p.layer, p.target);
    const cur = params.get(key) ?? { A: new Float32Array(0), B: new Float32Array(0) };
    cur[p.which] = f32Of(`${what}: tensor '${t.name}'`, t.dtype, t.data);
    params.set(key, cur);
  }
  const lora: LoraConfig = {
    rank: lp.r, alpha: lp.lora_alpha, dropout: lp.lora_dropout ?? 0, targets: LORA_TARGETS.filter((t) => targets.has(t)),
    ...(lp.use_rslora ? { rslora: true } : {}),
  };
  const shape = a.baseModel.shape;
  if (shape !== modelShapeSignature(cfg)) {
    throw new Error(`${what} was trained on a different base model (shape ${shape}, ${a.baseModel.id}) than this one (${modelShapeSignature(cfg)})`);
  }
  checkTensors(what, cfg, lora, params);
  const out: Adapter = {
    name: a.name,
    base: { nameOrPath: a.baseModel.id || null, shape, arch: cfg.arch, ropeStyle: a.baseModel.ropeStyle ?? ropeStyle, format: a.baseModel.format ?? null },
    lora,
    tensors: params,
    hyperparameters: a.hyperparameters as Record<string, unknown> | undefined,
    metrics: a.metrics as Record<string, unknown> | undefined,
    notes: [],
  };
  return reorient(out, cfg, cfg.ropeStyle);
}

/** Every dtype an exporter can write tensors in. */
export type ExportDtype = 'f32' | 'f16' | 'bf16';
export const EXPORT_DTYPES: readonly ExportDtype[] = ['f32', 'f16', 'bf16'];

/** Where exporters put files: a name ('/'-separated, relative to the output) and its bytes. */
export type FileSink = (name: string, bytes: Uint8Array) => void | Promise<void>;

/** A sink that keeps every file in a Map (tests, the browser before zipping / downloading). */
export function memorySink(): { sink: FileSink; files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  return { sink: (name, bytes) => void files.set(name, bytes), files };
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
