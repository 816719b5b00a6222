// LoRA adapter → GGUF adapter file for llama.cpp (`llama-cli --lora FILE`, llama-server, ollama
// ADAPTER), laid out as llama.cpp's convert_lora_to_gguf.py writes it:
//   metadata  general.architecture (the base's llama.cpp arch: llama — also for HF mistral,
//             which llama.cpp converts as llama — or qwen2, or the base GGUF's own), general.type
//             "adapter", general.name, general.file_type, general.quantization_version 2,
//             adapter.type "lora", adapter.lora.alpha (FLOAT32)
//   tensors   blk.{i}.{attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down}.weight.lora_a
//             with torch shape (R, in) → ggml ne [in, R], and .lora_b (out, R) → ne [R, out]
//             (llama.cpp checks model ne0 == a.ne0, model ne1 == b.ne1, a.ne1 == b.ne0); F32 or F16.
// q/k orientation: llama.cpp runs llama/mistral with q/k rows permuted (adjacent-pair RoPE), and
// the converter permutes lora_b of q and k with the same `permute(w, n_head[, n_kv_head])` —
// applied here when the adapter is in HF orientation, not when its base came from a GGUF (already
// permuted). Qwen2 is never permuted.
// Scale: llama.cpp applies alpha / rank (rank = lora_b ne0). For rsLoRA (alpha/√r) the stored
// alpha is alpha·√r so the applied scale is the same (convert_lora_to_gguf.py ignores use_rslora).
// No DOM, no node:*.
import { type LlamaConfig, targetShape } from '../model/config.ts';
import { GGMLType, type GGUFKV, GGUFType, type GGUFTensorInput, writeGGUF } from '../model/gguf.ts';
import { loraKey } from '../model/lora.ts';
import { type Adapter, type FileSink, GGUF_TENSOR, fitAdapter, ggufPermutesQK, reorient } from './adapter.ts';

export interface GgufLoraOptions {
  /** F32 (default, as the converter's default --outtype f32) or F16 */
  dtype?: 'f32' | 'f16';
  /** general.name (default: the adapter name) */
  name?: string;
  /** file name in the sink (default: `<name>.gguf`, sanitized) */
  file?: string;
}

/** llama.cpp's architecture name for a base model config (what general.architecture must match). */
export function llamaCppArch(a: Adapter, cfg: LlamaConfig): string {
  if (a.base.format === 'gguf') return cfg.arch; // the base GGUF's own general.architecture
  return cfg.arch === 'qwen2' ? 'qwen2' : 'llama'; // convert_hf_to_gguf maps Mistral to llama
}

/** The alpha to store so that llama.cpp's alpha/rank equals the adapter's scale. */
export function ggufAlpha(a: Adapter): number {
  return a.lora.rslora ? a.lora.alpha * Math.sqrt(a.lora.rank) : a.lora.alpha;
}

/** The GGUF adapter file's bytes. */
export function ggufLoraBytes(adapter: Adapter, cfg: LlamaConfig, opts: GgufLoraOptions = {}): Uint8Array {
  const fitted = fitAdapter(adapter, cfg);
  const a = reorient(fitted, cfg, ggufPermutesQK(cfg.arch) ? 'pairs' : 'half');
  const type = opts.dtype === 'f16' ? GGMLType.F16 : GGMLType.F32;
  if (opts.dtype && opts.dtype !== 'f32' && opts.dtype !== 'f16') throw new Error(`GGUF LoRA export: dtype '${opts.dtype}' is not supported (f32, f16)`);
  const kv: GGUFKV[] = [
    { key: 'general.architecture', value: llamaCppArch(a, cfg), type: GGUFType.STRING },
    { key: 'general.type', value: 'adapter', type: GGUFType.STRING },
    { key: 'general.name', value: opts.name ?? a.name, type: GGUFType.STRING },
    { key: 'general.file_type', value: type === GGMLType.F16 ? 1 : 0, type: GGUFType.UINT32 },
    { key: 'general.quantization_version', value: 2, type: GGUFType.UINT32 },
    { key: 'adapter.type', value: 'lora', type: GGUFType.STRING },
    { key: 'adapter.lora.alpha', value: ggufAlpha(a), type: GGUFType.FLOAT32 },
  ];
  const R = a.lora.rank;
  const tensors: GGUFTensorInput[] = [];
  for (let l = 0; l < cfg.layers; l++) {
    for (const t of a.lora.targets) {
      const p = a.tensors.get(loraKey(l, t))!;
      const [OC, IC] = targetShape(cfg, t);
      const base = `blk.${l}.${GGUF_TENSOR[t]}.weight`;
      tensors.push({ name: `${base}.lora_a`, shape: [R, IC], data: p.A, type });
      tensors.push({ name: `${base}.lora_b`, shape: [OC, R], data: p.B, type });
    }
  }
  return writeGGUF(kv, tensors);
}

/** Write the adapter as one GGUF file into `sink`; returns the file name. */
export async function exportGgufLora(adapter: Adapter, cfg: LlamaConfig, sink: FileSink, opts: GgufLoraOptions = {}): Promise<string> {
  const file = opts.file ?? `${(opts.name ?? adapter.name).replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'adapter'}.gguf`;
  await sink(file, ggufLoraBytes(adapter, cfg, opts));
  return file;
}
