// `whittle grads --model PATH --adapter DIR --tokens FILE.json --out GRADS.safetensors`: one
// forward + backward of a LoRA adapter on given tokens, on the GPU, for comparisons with other
// implementations (PEFT + PyTorch, the CPU reference src/ref/model.ts).
// FILE.json is {"input_ids": [[…], …], "loss_mask": [[…], …]}: B rows of T token ids (every row the
// same length; no padding) and a 0/1 mask of the same shape. Position t predicts token t+1 and is
// counted where loss_mask[t+1] is 1 (loss_mask[0] is never used); the loss is the mean cross-entropy
// over the counted targets of all rows. No dropout (the adapter's lora_dropout is ignored).
// Output: stdout gets one JSON object {"loss", "tokens" (counted targets), "rows", "seq", "tensors",
// "out", "adapter"}; GRADS.safetensors holds ∂loss/∂A (r, in) and ∂loss/∂B (out, r) of every
// LoRA tensor, f32, named like the adapter's tensors with ".grad" appended
// (base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight.grad; the names of the adapter's
// own adapter_model.safetensors when it has one, else the names PEFT writes), in Hugging Face
// q/k orientation like the PEFT file (gradients of a GGUF llama/mistral base are un-permuted).
// Exit codes: 0 ok, 1 failure (bad file, ids outside the vocabulary, GPU), 2 usage error.
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Gpu } from '../gpu/device.ts';
import type { LlamaConfig, LlamaWeights, LoraConfig, LoraTarget } from '../model/config.ts';
import { targetShape } from '../model/config.ts';
import { LlamaModel } from '../model/llama.ts';
import { loraKey, type LoraParams } from '../model/lora.ts';
import type { QFormat } from '../model/quant.ts';
import { readSafetensorsHeader, writeSafetensors, type SafetensorsInput } from '../model/safetensors.ts';
import { openFile } from '../model/source.ts';
import type { Batch } from '../ref/model.ts';
import { XENT_IGNORE } from '../ref/xent.ts';
import { type Adapter, fitAdapter, parsePeftName, peftName, reorient } from '../export/adapter.ts';
import { PEFT_WEIGHTS } from '../export/peft.ts';
import { parseArgs, UsageError } from './args.ts';
import type { Command, Io } from './command.ts';
import { loadAdapterDir, pathKind } from './adapter-arg.ts';
import { loadModelPath, parseQuant } from './generate.ts';

const USAGE = [
  'usage: whittle grads --model PATH --adapter DIR --tokens FILE.json --out GRADS.safetensors [--quant f32|f16|q8|q4]',
  '',
  'One forward and backward pass of a LoRA adapter on the GPU (no dropout). Prints the loss as JSON',
  'and writes the gradient of every LoRA tensor to a safetensors file, under the adapter\'s tensor',
  'names with ".grad" appended.',
  '',
  '  --model PATH        the base model: Hugging Face folder or .gguf',
  '  --adapter DIR       PEFT adapter directory or a `whittle train` output directory',
  '  --tokens FILE.json  {"input_ids": [[…], …], "loss_mask": [[…], …]}: equal-length rows; position t',
  '                      predicts token t+1 and counts where loss_mask[t+1] is 1; the loss is the mean',
  '                      over the counted targets',
  '  --out FILE          the gradients (safetensors, f32; the loss is also in its metadata)',
  '  --quant FORMAT      storage format of the frozen weights on the GPU (default f32)',
  '',
  'Exit code: 0 ok, 1 failure, 2 bad arguments.',
].join('\n');

const SPEC = { model: 'string', adapter: 'string', tokens: 'string', out: 'string', quant: 'string' } as const;

/** A tokens file as a (B,T) batch: every token valid, targets where counted, loss weight 1 on them. */
export function tokensBatch(text: string, where: string, vocab: number): { batch: Batch; counted: number } {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: not valid JSON: ${(e as Error).message}`);
  }
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw new Error(`${where}: expected an object {"input_ids": [[…]], "loss_mask": [[…]]}`);
  const o = j as Record<string, unknown>;
  const rows = (key: string): unknown[][] => {
    const v = o[key];
    if (!Array.isArray(v) || !v.length || !v.every((r) => Array.isArray(r))) throw new Error(`${where}: "${key}" must be a non-empty array of rows (arrays)`);
    return v as unknown[][];
  };
  const ids = rows('input_ids'), mask = rows('loss_mask');
  const B = ids.length, T = ids[0].length;
  if (T < 2) throw new Error(`${where}: input_ids rows need at least 2 tokens (position t predicts token t+1)`);
  if (mask.length !== B) throw new Error(`${where}: loss_mask has ${mask.length} rows, input_ids has ${B}`);
  const N = B * T;
  const batch: Batch = {
    B, T, ids: new Uint32Array(N), targets: new Uint32Array(N).fill(XENT_IGNORE), valid: new Uint32Array(N).fill(1),
    pos: new Uint32Array(N), lossWeights: new Float32Array(N),
  };
  let counted = 0;
  for (let b = 0; b < B; b++) {
    if (ids[b].length !== T) throw new Error(`${where}: input_ids row ${b} has ${ids[b].length} tokens, row 0 has ${T}: rows must have equal length`);
    if (mask[b].length !== T) throw new Error(`${where}: loss_mask row ${b} has ${mask[b].length} entries, input_ids row ${b} has ${T}`);
    for (let t = 0; t < T; t++) {
      const id = ids[b][t], m = mask[b][t];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocab) {
        throw new Error(`${where}: input_ids[${b}][${t}] = ${JSON.stringify(id)} is not a token id of this model (0..${vocab - 1})`);
      }
      if (m !== 0 && m !== 1 && m !== true && m !== false) throw new Error(`${where}: loss_mask[${b}][${t}] = ${JSON.stringify(m)}: expected 0 or 1`);
      batch.ids[b * T + t] = id;
      batch.pos[b * T + t] = t;
    }
    for (let t = 0; t + 1 < T; t++) {
      const m = mask[b][t + 1];
      if (m !== 1 && m !== true) continue;
      batch.targets[b * T + t] = ids[b][t + 1] as number;
      batch.lossWeights[b * T + t] = 1;
      counted++;
    }
  }
  if (!counted) throw new Error(`${where}: loss_mask counts no target (loss_mask[b][t] = 1 for some t ≥ 1 is needed)`);
  return { batch, counted };
}

/**
 * The loss (mean over counted targets) and ∂loss/∂A, ∂loss/∂B of every adapted (layer, target) on
 * `batch`, without dropout, in the model's orientation (cfg.ropeStyle).
 */
export async function loraGradients(
  gpu: Gpu, cfg: LlamaConfig, weights: LlamaWeights, lora: LoraConfig, params: LoraParams, batch: Batch, opts: { quant?: QFormat } = {},
): Promise<{ loss: number; tokenAccuracy: number; grads: LoraParams }> {
  const model = new LlamaModel(gpu, cfg, weights, { quant: opts.quant ?? 'f32', lora, batch: batch.B, seq: batch.T, init: params });
  try {
    const r = await gpu.scoped('grads', () => {
      model.setBatch(batch);
      model.forward(false, true); // no dropout; a backward follows
      model.backward();
      return model.readLoss();
    });
    return { ...r, grads: await model.getGrads() };
  } finally {
    model.destroy();
  }
}

/** loraKey + A/B → the tensor's name in the adapter directory's adapter_model.safetensors (empty map when it has none). */
async function fileNames(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const { nodeSource } = await import('../model/source-node.ts');
  const src = await nodeSource(dir);
  if (!(await src.list()).includes(PEFT_WEIGHTS)) return out;
  const h = await readSafetensorsHeader(await openFile(src, PEFT_WEIGHTS));
  for (const name of h.tensors.keys()) {
    const p = parsePeftName(name);
    if (p) out.set(`${loraKey(p.layer, p.target)}.${p.which}`, name);
  }
  return out;
}

/** `whittle grads` with explicit output streams; returns the exit code. */
export async function runGrads(args: string[], io: Io): Promise<number> {
  const { flags, positional } = parseArgs(args, SPEC);
  if (positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`);
  for (const k of ['model', 'adapter', 'tokens', 'out'] as const) {
    if (typeof flags[k] !== 'string') throw new UsageError(`--${k} ${k === 'tokens' ? 'FILE.json' : k === 'out' ? 'GRADS.safetensors' : k === 'adapter' ? 'DIR' : 'PATH'} is required`);
  }
  const quant = parseQuant(flags.quant);
  const out = resolve(flags.out as string);
  if ((await pathKind(out)) === 'dir') throw new Error(`${out} is a directory; --out takes a file name`);
  const loaded = await loadModelPath(flags.model as string);
  const cfg = loaded.config;
  const adapterDir = resolve(flags.adapter as string);
  const adapter: Adapter = fitAdapter(await loadAdapterDir(adapterDir, loaded), cfg);
  const tokensPath = flags.tokens as string;
  let text: string;
  try {
    text = await readFile(tokensPath, 'utf8');
  } catch (e) {
    throw new Error(`${tokensPath}: cannot read: ${(e as Error).message}`);
  }
  const { batch, counted } = tokensBatch(text, tokensPath, cfg.vocab);
  const { acquireGpu } = await import('../gpu/device.ts');
  const gpu = await acquireGpu();
  const r = await loraGradients(gpu, cfg, loaded.weights, adapter.lora, adapter.tensors, batch, { quant });
  // gradients in PEFT (Hugging Face) orientation: B's rows move like B's, A is unaffected
  const g = reorient({ ...adapter, tensors: r.grads }, cfg, 'half').tensors;
  const names = await fileNames(adapterDir);
  const R = adapter.lora.rank;
  const tensors: SafetensorsInput[] = [];
  for (let l = 0; l < cfg.layers; l++) {
    for (const t of adapter.lora.targets as LoraTarget[]) {
      const key = loraKey(l, t), p = g.get(key)!;
      const [OC, IC] = targetShape(cfg, t);
      tensors.push({ name: `${names.get(`${key}.A`) ?? peftName(l, t, 'A')}.grad`, shape: [R, IC], data: p.A });
      tensors.push({ name: `${names.get(`${key}.B`) ?? peftName(l, t, 'B')}.grad`, shape: [OC, R], data: p.B });
    }
  }
  await writeFile(out, writeSafetensors(tensors, { format: 'pt', loss: String(r.loss), tokens: String(counted) }));
  io.out(JSON.stringify({
    loss: r.loss, tokens: counted, rows: batch.B, seq: batch.T, tensors: tensors.length, out,
    adapter: { path: adapterDir, name: adapter.name, rank: R, alpha: adapter.lora.alpha, targets: adapter.lora.targets },
  }));
  return 0;
}

export const command: Command = { name: 'grads', usage: USAGE, run: runGrads };
