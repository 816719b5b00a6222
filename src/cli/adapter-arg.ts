// `--adapter DIR` of the CLI commands (export, generate, logits): load a LoRA adapter directory for
// a loaded base model, in Node (no GPU). DIR is a PEFT directory (adapter_config.json +
// adapter_model.safetensors, src/export/peft.ts importPeft; what `whittle train` writes) or an older
// whittle adapter directory (adapter.json + adapter.bin, src/train/node.ts readAdapterFiles → src/export/adapter.ts
// adapterFromTrained). Either way the adapter comes back checked against the base (every tensor's
// shape; an Error names the tensor and the expected vs actual shape) and in the base's q/k
// orientation (a GGUF llama/mistral base gets llama.cpp's row permutation on q/k lora_B).
import { readdir, stat } from 'node:fs/promises';
import type { LoadedModel } from '../model/load.ts';
import type { LoraWeights } from '../model/generate.ts';
import { nodeSource } from '../model/source-node.ts';
import { readAdapterFiles } from '../train/node.ts';
import { type Adapter, adapterFromTrained } from '../export/adapter.ts';
import { PEFT_CONFIG, PEFT_WEIGHTS_BIN, importPeft } from '../export/peft.ts';

/** 'dir', 'file', or null when nothing is at `p`. */
export async function pathKind(p: string): Promise<'file' | 'dir' | null> {
  try {
    const s = await stat(p);
    return s.isDirectory() ? 'dir' : 'file';
  } catch {
    return null;
  }
}

/** Load the adapter at `dir` for `model`: a PEFT directory or a `whittle train` output. */
export async function loadAdapterDir(dir: string, model: LoadedModel, name?: string): Promise<Adapter> {
  const kind = await pathKind(dir);
  if (kind !== 'dir') throw new Error(`${dir}: ${kind ? 'is a file; --adapter takes a directory' : 'no such directory'}`);
  const files = await readdir(dir);
  if (files.includes(PEFT_CONFIG)) return importPeft(await nodeSource(dir), model.config, name ? { name } : {});
  if (files.includes('adapter.json')) {
    const a = await readAdapterFiles(dir);
    const out = adapterFromTrained(a, model.config);
    return { ...out, name: name ?? out.name, base: { ...out.base, format: out.base.format ?? model.source.format } };
  }
  if (files.includes(PEFT_WEIGHTS_BIN)) throw new Error(`${dir}: has ${PEFT_WEIGHTS_BIN} but no ${PEFT_CONFIG}`);
  throw new Error(`${dir}: not an adapter directory: expected ${PEFT_CONFIG} + adapter_model.safetensors (PEFT) or adapter.json + adapter.bin (older whittle train)`);
}

/** The engine's view of an adapter (src/model/generate.ts): its LoRA config and A/B per loraKey. */
export function loraWeightsOf(a: Adapter): LoraWeights {
  return { config: a.lora, params: a.tensors };
}

/** One line describing an adapter: "NAME: rank 4, alpha 8, targets q,v (unmerged)". */
export function describeAdapter(a: Adapter, mode?: string): string {
  return `${a.name}: rank ${a.lora.rank}, alpha ${a.lora.alpha}${a.lora.rslora ? ' (rsLoRA)' : ''}, targets ${a.lora.targets.join(',')}${mode ? ` (${mode})` : ''}`;
}
