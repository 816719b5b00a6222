// PEFT LoRA adapters (Hugging Face `peft`), export and import: the interchange format every
// training stack reads (transformers, vLLM, llama.cpp's convert_lora_to_gguf.py, axolotl, TRL).
//
// A PEFT adapter directory, as `PeftModel.save_pretrained` writes it for LoRA on a Llama-family
// causal LM:
//   adapter_config.json        LoraConfig as JSON (sorted keys, indent 2): peft_type "LORA",
//                              task_type "CAUSAL_LM", r, lora_alpha, lora_dropout, target_modules
//                              (["q_proj", …]), bias "none", fan_in_fan_out false, use_rslora,
//                              use_dora false, base_model_name_or_path, inference_mode true,
//                              modules_to_save null, init_lora_weights true, rank/alpha_pattern {}, …
//   adapter_model.safetensors  base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_A.weight
//                              (R, in) and .lora_B.weight (out, R); mlp.{gate,up,down}_proj likewise;
//                              __metadata__ {"format": "pt"}
//   README.md                  model card (front matter base_model, library_name: peft)
// plus, from whittle only, whittle_adapter.json (name, base shape/orientation, hyperparameters,
// metrics) — ignored by PEFT, read back by importPeft when present.
// PEFT tensors are in Hugging Face orientation. Adapters of GGUF llama/mistral bases (q/k rows in
// llama.cpp's permuted order, ropeStyle 'pairs') are un-permuted on export and permuted on import
// (./adapter.ts permuteRows); lora_A is unaffected.
// Import accepts: keys with or without `base_model.model.` / `model.` and with an adapter-name
// segment (`lora_A.default.weight`); target_modules as a list, "all-linear" or a regex string
// (the targets are then those found in the file); layers_to_transform or a regex target_modules
// (layers without tensors become zero, i.e. unadapted; otherwise a missing layer is an error);
// use_rslora (scale alpha/√r). It rejects, with a clear error: .bin
// (pickle) weights, non-LoRA peft_type, DoRA, rank_pattern/alpha_pattern, fan_in_fan_out,
// LoRA biases, modules_to_save / embedding LoRA tensors, and any tensor whose shape does not fit
// the base model (naming the tensor and the expected vs actual shape).
// No DOM, no node:*: files come through ModelSource (src/model/source.ts) and go to a FileSink.
import { LORA_TARGETS, type LlamaConfig, type LoraConfig, type LoraTarget, targetShape } from '../model/config.ts';
import { loraKey, type LoraParams } from '../model/lora.ts';
import { readSafetensorsHeader, readSafetensorsTensor, writeSafetensors, type SafetensorsInput } from '../model/safetensors.ts';
import { type ModelSource, openFile, readJson } from '../model/source.ts';
import { modelShapeSignature } from '../store/adapters.ts';
import {
  type Adapter, type AdapterBase, type ExportDtype, type FileSink, HF_MODULE, describeConfig, fitAdapter, parsePeftName,
  peftName, reorient, targetOfModule, utf8,
} from './adapter.ts';

export const PEFT_CONFIG = 'adapter_config.json';
export const PEFT_WEIGHTS = 'adapter_model.safetensors';
export const PEFT_WEIGHTS_BIN = 'adapter_model.bin';
export const WHITTLE_META = 'whittle_adapter.json';

/** The adapter_config.json PEFT writes for this LoRA config (PEFT 0.13–0.15 field set). */
export function peftConfigJson(lora: LoraConfig, baseModelNameOrPath: string | null): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModelNameOrPath,
    bias: 'none',
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: lora.alpha,
    lora_bias: false,
    lora_dropout: lora.dropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: lora.rank,
    rank_pattern: {},
    revision: null,
    target_modules: LORA_TARGETS.filter((t) => lora.targets.includes(t)).map((t) => HF_MODULE[t]),
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: lora.rslora === true,
  };
}

/** JSON with sorted keys and 2-space indent, as PEFT's save_pretrained writes it. */
export function sortedJson(o: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort((v as Record<string, unknown>)[k])]));
    return v;
  };
  return JSON.stringify(sort(o), null, 2);
}

export interface PeftExportOptions {
  /** tensor dtype in adapter_model.safetensors (default f32) */
  dtype?: ExportDtype;
  /** base_model_name_or_path (default: adapter.base.nameOrPath) */
  baseModelNameOrPath?: string | null;
  /** write README.md and whittle_adapter.json (default true) */
  extras?: boolean;
}

const ST_DTYPE: Record<ExportDtype, string> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

/** Extra whittle information stored next to a PEFT adapter (whittle_adapter.json). */
export interface WhittleAdapterMeta {
  format: 'whittle.peft-extras';
  version: 1;
  name: string;
  base: AdapterBase;
  hyperparameters?: Record<string, unknown>;
  metrics?: Record<string, unknown>;
}

/**
 * Write `adapter` as a PEFT directory into `sink`: adapter_config.json, adapter_model.safetensors
 * (Hugging Face orientation), README.md and whittle_adapter.json. `cfg` is the base model's config
 * (checked against the adapter; gives the head counts for un-permuting GGUF q/k).
 */
export async function exportPeft(adapter: Adapter, cfg: LlamaConfig, sink: FileSink, opts: PeftExportOptions = {}): Promise<string[]> {
  const a = reorient(fitAdapter(adapter, cfg), cfg, 'half');
  const dtype = ST_DTYPE[opts.dtype ?? 'f32'];
  if (!dtype) throw new Error(`PEFT export: unknown dtype '${opts.dtype}' (f32, f16, bf16)`);
  const base = opts.baseModelNameOrPath !== undefined ? opts.baseModelNameOrPath : a.base.nameOrPath;
  const R = a.lora.rank;
  const tensors: SafetensorsInput[] = [];
  for (let l = 0; l < cfg.layers; l++) {
    for (const t of a.lora.targets) {
      const p = a.tensors.get(loraKey(l, t))!;
      const [OC, IC] = targetShape(cfg, t);
      tensors.push({ name: peftName(l, t, 'A'), shape: [R, IC], data: p.A, dtype });
      tensors.push({ name: peftName(l, t, 'B'), shape: [OC, R], data: p.B, dtype });
    }
  }
  const written: string[] = [];
  const put = async (name: string, bytes: Uint8Array) => {
    await sink(name, bytes);
    written.push(name);
  };
  await put(PEFT_CONFIG, utf8(sortedJson(peftConfigJson(a.lora, base)) + '\n'));
  await put(PEFT_WEIGHTS, writeSafetensors(tensors, { format: 'pt' }));
  if (opts.extras !== false) {
    await put('README.md', utf8(peftModelCard(a, base)));
    const meta: WhittleAdapterMeta = {
      format: 'whittle.peft-extras', version: 1, name: a.name, base: { ...a.base, nameOrPath: base, ropeStyle: 'half' },
      ...(a.hyperparameters ? { hyperparameters: a.hyperparameters } : {}),
      ...(a.metrics ? { metrics: a.metrics } : {}),
    };
    await put(WHITTLE_META, utf8(JSON.stringify(meta, null, 2) + '\n'));
  }
  return written;
}

function peftModelCard(a: Adapter, base: string | null): string {
  const lines = ['---'];
  if (base) lines.push(`base_model: ${JSON.stringify(base)}`);
  lines.push('library_name: peft', 'tags:', '- lora', '- whittle', '---', '', `# ${a.name}`, '',
    `A LoRA adapter${base ? ` for \`${base}\`` : ''}, trained with whittle (in the browser, on WebGPU) and saved in PEFT format.`, '',
    `- rank ${a.lora.rank}, alpha ${a.lora.alpha}${a.lora.rslora ? ' (rsLoRA: scale alpha/√r)' : ''}, dropout ${a.lora.dropout}`,
    `- target modules: ${a.lora.targets.map((t) => HF_MODULE[t]).join(', ')}`, '',
    '```python', 'from peft import PeftModel', 'from transformers import AutoModelForCausalLM', '',
    `base = AutoModelForCausalLM.from_pretrained(${JSON.stringify(base ?? 'BASE_MODEL')})`,
    'model = PeftModel.from_pretrained(base, "path/to/this/folder")', '```', '');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Import

export interface PeftImportOptions {
  /** adapter name (default: the source name's last path segment) */
  name?: string;
}

type Json = Record<string, unknown>;

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === 'object' && Object.keys(v as object).length === 0);
}

/** The LoRA settings of an adapter_config.json, checked (everything whittle cannot apply is an error). */
export function parsePeftConfig(where: string, j: Json): { r: number; alpha: number; dropout: number; rslora: boolean; modules: string[] | 'all-linear' | 'pattern'; layers: number[] | null; base: string | null; notes: string[] } {
  const notes: string[] = [];
  const peftType = j.peft_type;
  if (peftType !== undefined && peftType !== 'LORA') err(where, `peft_type is ${JSON.stringify(peftType)}; only LoRA adapters ("LORA") can be imported`);
  if (j.task_type !== undefined && j.task_type !== null && j.task_type !== 'CAUSAL_LM') notes.push(`task_type is ${JSON.stringify(j.task_type)}, not CAUSAL_LM; imported as a causal-LM adapter`);
  const r = j.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) err(where, `r is ${JSON.stringify(r)}, expected a positive integer`);
  const alpha = j.lora_alpha ?? r;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) err(where, `lora_alpha is ${JSON.stringify(j.lora_alpha)}, expected a number`);
  const dropout = j.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) err(where, `lora_dropout is ${JSON.stringify(j.lora_dropout)}, expected a number in [0, 1)`);
  if (j.use_dora === true) err(where, 'use_dora is true: DoRA adapters (a learned magnitude vector per module) are not supported; train or export a plain LoRA adapter');
  if (!isEmpty(j.rank_pattern)) err(where, `rank_pattern ${JSON.stringify(j.rank_pattern)} gives some modules another rank; whittle needs one rank for every module`);
  if (!isEmpty(j.alpha_pattern)) err(where, `alpha_pattern ${JSON.stringify(j.alpha_pattern)} gives some modules another alpha; whittle needs one alpha for every module`);
  if (j.fan_in_fan_out === true) err(where, 'fan_in_fan_out is true (Conv1D / GPT-2 layout); a Llama-family adapter stores nn.Linear (out, in) weights');
  if (j.lora_bias === true) err(where, 'lora_bias is true: LoRA B biases are not supported');
  if (j.bias !== undefined && j.bias !== 'none') err(where, `bias is ${JSON.stringify(j.bias)}: trained biases are not supported (only bias "none")`);
  if (j.layer_replication !== undefined && j.layer_replication !== null) err(where, 'layer_replication is not supported');
  if (Array.isArray(j.modules_to_save) && j.modules_to_save.length) {
    err(where, `modules_to_save ${JSON.stringify(j.modules_to_save)}: fully trained modules (e.g. embed_tokens / lm_head) are not supported, only LoRA A/B of ${Object.values(HF_MODULE).join(', ')}`);
  }
  if (typeof j.init_lora_weights === 'string' && /pissa|olora|corda|loftq/i.test(j.init_lora_weights)) {
    notes.push(`init_lora_weights is '${j.init_lora_weights}': such adapters change the base weights at init; unless they were converted back to plain LoRA, results will differ`);
  }
  let modules: string[] | 'all-linear' | 'pattern';
  const tm = j.target_modules;
  if (Array.isArray(tm)) {
    if (!tm.every((m) => typeof m === 'string')) err(where, `target_modules ${JSON.stringify(tm)} is not a list of names`);
    const bad = (tm as string[]).filter((m) => !targetOfModule(m.replace(/^.*\./, '')));
    if (bad.length) err(where, `target_modules ${bad.map((m) => JSON.stringify(m)).join(', ')} cannot be adapted here (supported: ${Object.values(HF_MODULE).join(', ')})`);
    modules = tm as string[];
  } else if (tm === 'all-linear') modules = 'all-linear';
  else if (typeof tm === 'string') {
    modules = 'pattern';
    notes.push(`target_modules is the pattern ${JSON.stringify(tm)}: the targets are the modules found in the weights`);
  } else err(where, `target_modules is ${JSON.stringify(tm)}, expected a list of module names or a string`);
  let layers: number[] | null = null;
  const ltt = j.layers_to_transform;
  if (typeof ltt === 'number') layers = [ltt];
  else if (Array.isArray(ltt)) layers = ltt.filter((x): x is number => typeof x === 'number');
  else if (ltt !== undefined && ltt !== null) err(where, `layers_to_transform is ${JSON.stringify(ltt)}, expected a layer index or a list of them`);
  const base = typeof j.base_model_name_or_path === 'string' && j.base_model_name_or_path ? j.base_model_name_or_path : null;
  return { r, alpha, dropout, rslora: j.use_rslora === true, modules, layers, base, notes };
}

function err(where: string, why: string): never {
  throw new Error(`${where}: ${why}`);
}

/**
 * Read a PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) for the
 * base model `cfg`, returning it in that model's q/k orientation (cfg.ropeStyle: a GGUF
 * llama/mistral base gets llama.cpp's permutation applied to q/k lora_B).
 */
export async function importPeft(src: ModelSource, cfg: LlamaConfig, opts: PeftImportOptions = {}): Promise<Adapter> {
  const files = await src.list();
  if (!files.includes(PEFT_CONFIG)) {
    err(src.name, `no ${PEFT_CONFIG}: not a PEFT adapter directory (files: ${files.slice(0, 12).join(', ') || 'none'}${files.length > 12 ? ', …' : ''})`);
  }
  if (!files.includes(PEFT_WEIGHTS)) {
    if (files.includes(PEFT_WEIGHTS_BIN)) {
      err(src.name, `${PEFT_WEIGHTS_BIN} (PyTorch pickle) is not supported; convert it to safetensors, e.g. ` +
        `python -c "import torch; from safetensors.torch import save_file; save_file(torch.load('${PEFT_WEIGHTS_BIN}', map_location='cpu'), '${PEFT_WEIGHTS}', metadata={'format': 'pt'})"`);
    }
    err(src.name, `no ${PEFT_WEIGHTS} next to ${PEFT_CONFIG}`);
  }
  const cfgWhere = `${src.name}/${PEFT_CONFIG}`;
  const pc = parsePeftConfig(cfgWhere, await readJson<Json>(src, PEFT_CONFIG));
  const notes = [...pc.notes];
  let meta: WhittleAdapterMeta | null = null;
  if (files.includes(WHITTLE_META)) {
    const m = await readJson<WhittleAdapterMeta>(src, WHITTLE_META);
    if (m && m.format === 'whittle.peft-extras') meta = m;
  }

  const f = await openFile(src, PEFT_WEIGHTS);
  const h = await readSafetensorsHeader(f);
  const where = f.label;
  const R = pc.r;
  const differentBase = () => `: this adapter was made for a different base model${pc.base ? ` (${PEFT_CONFIG} says ${pc.base})` : ''} than this one (${describeConfig(cfg)})`;
  // name → (layer, target, which), checked before any tensor is read
  const plan: { name: string; layer: number; target: LoraTarget; which: 'A' | 'B' }[] = [];
  const seen = new Map<string, string>();
  for (const info of h.tensors.values()) {
    const p = parsePeftName(info.name);
    if (!p) {
      const hint = /lora_magnitude_vector/.test(info.name) ? ' (a DoRA magnitude: DoRA is not supported)'
        : /lora_embedding_|embed_tokens|lm_head/.test(info.name) ? ' (embedding / output-head tensors are not supported: only LoRA on the attention and MLP projections)'
        : /\.bias$/.test(info.name) ? ' (LoRA / trained biases are not supported)'
        : /modules_to_save/.test(info.name) ? ' (modules_to_save are not supported)'
        : '';
      err(where, `tensor '${info.name}' is not a LoRA A/B weight of ${Object.values(HF_MODULE).join(', ')}${hint}`);
    }
    const id = `${p.layer}.${p.target}.${p.which}`;
    if (seen.has(id)) err(where, `tensors '${seen.get(id)}' and '${info.name}' are the same LoRA ${p.which} of layer ${p.layer} ${HF_MODULE[p.target]}`);
    seen.set(id, info.name);
    if (p.layer >= cfg.layers) err(where, `tensor '${info.name}' is for layer ${p.layer}, but the base model has ${cfg.layers} layers${differentBase()}`);
    const [OC, IC] = targetShape(cfg, p.target);
    const want = p.which === 'A' ? [R, IC] : [OC, R];
    const got = info.shape;
    if (got.length !== 2 || got[0] !== want[0] || got[1] !== want[1]) {
      const rankOnly = got.length === 2 && (p.which === 'A' ? got[1] === IC : got[0] === OC);
      err(where, `tensor '${info.name}' has shape [${got.join(', ')}], expected [${want.join(', ')}] ` +
        `(${p.which === 'A' ? `r × in features of ${HF_MODULE[p.target]}` : `out features of ${HF_MODULE[p.target]} × r`}, r = ${R})` +
        (rankOnly ? `: its rank differs from r in ${PEFT_CONFIG}` : differentBase()));
    }
    plan.push({ name: info.name, ...p });
  }
  if (plan.length === 0) err(where, 'no LoRA tensors');

  const found = new Set(plan.map((p) => p.target));
  if (Array.isArray(pc.modules)) {
    const listed = new Set(pc.modules.map((m) => targetOfModule(m.replace(/^.*\./, ''))!));
    const extra = [...found].filter((t) => !listed.has(t));
    if (extra.length) err(where, `holds LoRA tensors for ${extra.map((t) => HF_MODULE[t]).join(', ')}, which target_modules in ${PEFT_CONFIG} does not list`);
    const absent = [...listed].filter((t) => !found.has(t));
    if (absent.length) notes.push(`target_modules lists ${absent.map((t) => HF_MODULE[t]).join(', ')}, but the weights have no tensors for them (ignored)`);
  }
  const targets = LORA_TARGETS.filter((t) => found.has(t));
  const params: LoraParams = new Map();
  for (const p of plan) {
    const data = await readSafetensorsTensor(f, h, p.name);
    const key = loraKey(p.layer, p.target);
    const cur = params.get(key) ?? { A: null as unknown as Float32Array, B: null as unknown as Float32Array };
    cur[p.which] = data;
    params.set(key, cur);
  }
  // pairs with only one half are an error; (layer, target) absent altogether are unadapted (zero)
  const zeroed: string[] = [];
  for (let l = 0; l < cfg.layers; l++) {
    for (const t of targets) {
      const key = loraKey(l, t);
      const p = params.get(key);
      const [OC, IC] = targetShape(cfg, t);
      if (!p) {
        params.set(key, { A: new Float32Array(R * IC), B: new Float32Array(OC * R) });
        zeroed.push(`${l}.${HF_MODULE[t]}`);
      } else if (!p.A || !p.B) {
        err(where, `layer ${l} ${HF_MODULE[t]} has lora_${p.A ? 'A' : 'B'} but no lora_${p.A ? 'B' : 'A'}`);
      }
    }
  }
  if (zeroed.length && pc.layers === null && pc.modules !== 'pattern') {
    err(where, `no LoRA tensors for ${zeroed.slice(0, 4).join(', ')}${zeroed.length > 4 ? ` and ${zeroed.length - 4} more layer/module pairs` : ''}, ` +
      `although ${PEFT_CONFIG} adapts every layer (no layers_to_transform)${differentBase()}, which has ${cfg.layers} layers`);
  }
  if (zeroed.length) {
    const layersNote = pc.layers ? ` (layers_to_transform ${JSON.stringify(pc.layers)})` : '';
    notes.push(`no LoRA tensors for ${zeroed.length} layer/module pair(s)${layersNote}: ${zeroed.slice(0, 8).join(', ')}${zeroed.length > 8 ? ', …' : ''} — left unadapted (A = B = 0)`);
  }
  if (meta && meta.base.shape && meta.base.shape !== modelShapeSignature(cfg)) {
    notes.push(`${WHITTLE_META} says it was trained on shape ${meta.base.shape}; this base is ${modelShapeSignature(cfg)} (the tensor shapes fit)`);
  }
  const lora: LoraConfig = { rank: R, alpha: pc.alpha, dropout: pc.dropout, targets, ...(pc.rslora ? { rslora: true } : {}) };
  const name = opts.name ?? meta?.name ?? (src.name.replace(/[\\/]+$/, '').split(/[\\/]/).pop() || 'adapter');
  const adapter: Adapter = {
    name,
    base: { nameOrPath: pc.base, shape: modelShapeSignature(cfg), arch: cfg.arch, ropeStyle: 'half', format: meta?.base.format ?? null },
    lora,
    tensors: params,
    ...(meta?.hyperparameters ? { hyperparameters: meta.hyperparameters } : {}),
    ...(meta?.metrics ? { metrics: meta.metrics } : {}),
    notes,
  };
  return reorient(adapter, cfg, cfg.ropeStyle);
}
