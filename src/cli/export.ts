// `whittle export`: a LoRA adapter out of whittle, in Node (no GPU).
//   whittle export --model PATH --adapter DIR --format peft|gguf|merged|merged-gguf|onnx|recipe --out PATH [--data FILE]
// --model is the base (Hugging Face folder or .gguf); --adapter is a PEFT directory
// (adapter_config.json + adapter_model.safetensors, the common interchange, and what `whittle train`
// writes) or an older whittle adapter directory (adapter.json + adapter.bin). Formats (src/export):
//   peft         PEFT adapter directory (Hugging Face orientation)
//   gguf         llama.cpp GGUF LoRA adapter file (`llama-cli -m BASE.gguf --lora FILE`)
//   merged       base + adapter merged, as a Hugging Face folder (config.json, safetensors, tokenizer files)
//   merged-gguf  base + adapter merged, as a .gguf (GGUF bases: keeps the tokenizer and the other tensors)
//   onnx         base + adapter merged, as a transformers.js-style ONNX folder (src/export/onnx.ts:
//                config.json, generation_config.json, the source's tokenizer files, onnx/model.onnx; f32)
//   recipe       dataset + axolotl.yaml + TRL script + README to run the same fine-tune on a cluster
//                (--data required; --adapter optional: its LoRA settings and hyperparameters are reused)
// Exit codes: 0 ok, 1 failure, 2 usage error. Exports `command` (src/cli/main.ts table) and `run(argv)`.
import { readFile, readdir } from 'node:fs/promises';
import { basename, dirname, extname, resolve } from 'node:path';
import { type LoadedModel, loadModel } from '../model/load.ts';
import { nodeSource } from '../model/source-node.ts';
import { LORA_TARGETS, type LoraConfig, type LoraTarget } from '../model/config.ts';
import { chatRenderer, loadDataset } from '../data/index.ts';
import { type HyperparameterInput, type Hyperparameters, resolveHyperparameters, SCHEDULES } from '../train/hyperparams.ts';
import { type Adapter, type ExportDtype, EXPORT_DTYPES, type FileSink, fitAdapter } from '../export/adapter.ts';
import { exportPeft } from '../export/peft.ts';
import { exportGgufLora } from '../export/gguf-lora.ts';
import { TOKENIZER_FILES, exportMerged, exportMergedGGUF } from '../export/merged.ts';
import { exportOnnx } from '../export/onnx.ts';
import { mergeLora } from '../model/merge.ts';
import { type RecipeHyperparameters, exportRecipe } from '../export/recipe.ts';
import { loadAdapterDir, pathKind as exists } from './adapter-arg.ts';
import { parseArgs, UsageError } from './args.ts';
import type { Command, Io } from './command.ts';
import { dirSink, size } from './fs-sink.ts';

const FORMATS = ['peft', 'gguf', 'merged', 'merged-gguf', 'recipe', 'onnx'] as const;
type Format = (typeof FORMATS)[number];

const USAGE = [
  'usage: whittle export --model PATH --adapter DIR --format FORMAT --out PATH [options]',
  '',
  'Exports a LoRA adapter for use outside whittle.',
  '',
  '  --model PATH        the base model: Hugging Face folder (config.json + safetensors) or a .gguf file',
  '  --adapter DIR       PEFT adapter directory (adapter_config.json + adapter_model.safetensors)',
  '                      (what `whittle train` writes), or an older whittle adapter.json + adapter.bin directory',
  '  --format FORMAT     peft         PEFT adapter directory (transformers, vLLM, axolotl, ...)',
  '                      gguf         llama.cpp LoRA adapter (.gguf) for llama-cli/llama-server --lora, ollama ADAPTER',
  '                      merged       the base with the adapter merged in, as a Hugging Face folder',
  '                      merged-gguf  the base with the adapter merged in, as a .gguf (GGUF bases)',
  '                      onnx         the base with the adapter merged in, as an ONNX folder (onnx/model.onnx,',
  '                                   config.json, tokenizer files) for transformers.js / onnxruntime (f32)',
  '                      recipe       dataset + axolotl.yaml + TRL script to train the same adapter on a cluster',
  '  --out PATH          output directory (a file path ending in .gguf for gguf / merged-gguf also works)',
  '  --dtype f32|f16|bf16   tensor type of the written weights (default f32; GGUF: f32 or f16; ONNX: f32)',
  '  --base-id ID        Hugging Face id of the base model, written as base_model_name_or_path / base_model',
  '                      (default: from the adapter, else the model\'s own name, else --model)',
  '  --name NAME         adapter name (default: from the adapter, else the adapter directory name)',
  '  --force             write into an existing, non-empty output path',
  '',
  'recipe only:',
  '  --data FILE.jsonl   the training data (required); --valid FILE.jsonl a separate validation set',
  '  --epochs N --max-steps N --lr X --schedule constant|linear|cosine --warmup N --batch B --grad-accum K',
  '  --seq T --rank R --alpha A --dropout P --targets q,k,v,o,gate,up,down --weight-decay X --clip X',
  '  --seed S --validation FRACTION --checkpointing --train-on assistant|all',
  '                      override the adapter\'s settings; anything unset is chosen as `whittle train` would',
].join('\n');

const SPEC = {
  model: 'string', adapter: 'string', format: 'string', out: 'string', data: 'string', valid: 'string', dtype: 'string', 'base-id': 'string',
  name: 'string', force: 'bool', epochs: 'string', 'max-steps': 'string', lr: 'string', schedule: 'string', warmup: 'string', batch: 'string',
  'grad-accum': 'string', seq: 'string', rank: 'string', alpha: 'string', dropout: 'string', targets: 'string', 'weight-decay': 'string',
  clip: 'string', seed: 'string', validation: 'string', checkpointing: 'bool', 'train-on': 'string',
} as const;

type Flags = Record<string, string | true>;

function numFlag(flags: Flags, key: string, int: boolean): number | undefined {
  const v = flags[key];
  if (v === undefined) return undefined;
  const x = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(x) || (int && !Number.isInteger(x))) {
    throw new UsageError(`--${key} needs ${int ? 'an integer' : 'a number'} (got ${JSON.stringify(v)})`);
  }
  return x;
}

/** Hyperparameter input from the recipe flags (only those given). */
function hpFlags(flags: Flags): HyperparameterInput {
  const hp: HyperparameterInput = {};
  const set = <K extends keyof HyperparameterInput>(k: K, v: HyperparameterInput[K] | undefined) => { if (v !== undefined) hp[k] = v; };
  set('epochs', numFlag(flags, 'epochs', true));
  set('maxSteps', numFlag(flags, 'max-steps', true));
  set('learningRate', numFlag(flags, 'lr', false));
  set('warmupSteps', numFlag(flags, 'warmup', true));
  set('batchSize', numFlag(flags, 'batch', true));
  set('gradAccum', numFlag(flags, 'grad-accum', true));
  set('seqLen', numFlag(flags, 'seq', true));
  set('rank', numFlag(flags, 'rank', true));
  set('alpha', numFlag(flags, 'alpha', false));
  set('dropout', numFlag(flags, 'dropout', false));
  set('weightDecay', numFlag(flags, 'weight-decay', false));
  set('maxGradNorm', numFlag(flags, 'clip', false));
  set('seed', numFlag(flags, 'seed', true));
  set('validationFraction', numFlag(flags, 'validation', false));
  if (typeof flags.schedule === 'string') {
    if (!SCHEDULES.includes(flags.schedule as Hyperparameters['schedule'])) throw new UsageError(`--schedule must be ${SCHEDULES.join(', ')}`);
    hp.schedule = flags.schedule as Hyperparameters['schedule'];
  }
  if (typeof flags.targets === 'string') {
    const ts = flags.targets.split(',').map((t) => t.trim()).filter(Boolean);
    for (const t of ts) if (!LORA_TARGETS.includes(t as LoraTarget)) throw new UsageError(`--targets: unknown target '${t}' (known: ${LORA_TARGETS.join(', ')})`);
    hp.targets = ts as LoraTarget[];
  }
  if (flags.checkpointing === true) hp.checkpointing = true;
  return hp;
}

const HP_KEYS: (keyof Hyperparameters)[] = [
  'epochs', 'batchSize', 'gradAccum', 'seqLen', 'learningRate', 'schedule', 'warmupSteps', 'weightDecay', 'maxGradNorm', 'adamBeta1',
  'adamBeta2', 'adamEps', 'rank', 'alpha', 'dropout', 'targets', 'checkpointing', 'seed', 'validationFraction',
];

/** The recipe files for `model`, the data, an optional adapter and the flags. */
async function recipe(flags: Flags, model: LoadedModel, adapter: Adapter | null, baseId: string, sink: FileSink, io: Io): Promise<string[]> {
  if (typeof flags.data !== 'string') throw new UsageError('--format recipe needs --data FILE.jsonl');
  const trainOn = flags['train-on'] ?? 'assistant';
  if (trainOn !== 'assistant' && trainOn !== 'all') throw new UsageError(`--train-on must be assistant or all (got ${JSON.stringify(trainOn)})`);
  const read = async (p: string) => {
    try {
      return new Uint8Array(await readFile(p));
    } catch (e) {
      throw new Error(`${p}: cannot read the dataset: ${(e as Error).message}`);
    }
  };
  const data = await read(flags.data);
  const valid = typeof flags.valid === 'string' ? await read(flags.valid) : null;
  // settings: the adapter's (LoRA + whittle hyperparameters when recorded), then the flags; the
  // rest 'auto' as `whittle train` resolves them (memory fit against a large cluster GPU)
  const input: HyperparameterInput = {};
  if (adapter) {
    Object.assign(input, { rank: adapter.lora.rank, alpha: adapter.lora.alpha, dropout: adapter.lora.dropout, targets: adapter.lora.targets });
    const h = adapter.hyperparameters ?? {};
    for (const k of HP_KEYS) if (h[k] !== undefined && k !== 'rank' && k !== 'alpha' && k !== 'dropout' && k !== 'targets') (input as Record<string, unknown>)[k] = h[k];
  }
  const given = hpFlags(flags);
  Object.assign(input, given);
  const cfg = model.config;
  const maxSeqLen = typeof input.seqLen === 'number' ? input.seqLen : Math.min(cfg.maxPos, 2048);
  const r = loadDataset(data, {
    tokenizer: model.tokenizer, maxSeqLen, trainOn, source: flags.data,
    chatTemplate: model.chatTemplate ? chatRenderer(model.chatTemplate, model.tokenizer) : null,
  });
  if (!r.dataset) throw new Error(`${flags.data}: ${r.reason}`);
  const ds = r.dataset;
  const huge = 2 ** 40;
  const res = resolveHyperparameters(input, {
    datasetSize: ds.examples.length, tokensPerExample: ds.stats.tokens, model: cfg,
    validationSize: valid ? new TextDecoder().decode(valid).split('\n').filter((l) => l.trim()).length : undefined,
    adapterLimits: { maxBufferSize: huge, maxStorageBufferBindingSize: huge, budgetBytes: 80 * 2 ** 30 },
  });
  for (const e of res.explanations) if (!/^(quant|evalInterval|checkpointInterval):/.test(e)) io.out(`  ${e}`); // not part of a recipe
  const hp = res.resolved;
  const lora: LoraConfig = { rank: hp.rank, alpha: hp.alpha, dropout: hp.dropout, targets: hp.targets, ...(adapter?.lora.rslora ? { rslora: true } : {}) };
  const rh: RecipeHyperparameters = {
    epochs: hp.epochs, batchSize: hp.batchSize, gradAccum: hp.gradAccum, seqLen: hp.seqLen, learningRate: hp.learningRate, schedule: hp.schedule,
    warmupSteps: hp.warmupSteps, weightDecay: hp.weightDecay, maxGradNorm: hp.maxGradNorm, adamBeta1: hp.adamBeta1, adamBeta2: hp.adamBeta2,
    adamEps: hp.adamEps, seed: hp.seed, validationFraction: hp.validationFraction, checkpointing: hp.checkpointing,
    maxSteps: given.maxSteps !== undefined ? hp.maxSteps : null,
  };
  const name = typeof flags.name === 'string' ? flags.name : adapter?.name ?? basename(flags.data).replace(/\.jsonl?$/i, '');
  return exportRecipe({ baseModel: baseId, lora, hp: rh, data, valid, trainOn, name }, sink);
}

/** `whittle export` with explicit output streams; returns the exit code. */
export async function runExport(args: string[], io: Io): Promise<number> {
  const { flags, positional } = parseArgs(args, SPEC);
  if (positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`);
  const format = flags.format as Format;
  if (typeof flags.format !== 'string' || !FORMATS.includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}`);
  if (typeof flags.model !== 'string') throw new UsageError('--model PATH is required');
  if (typeof flags.out !== 'string') throw new UsageError('--out PATH is required');
  if (typeof flags.adapter !== 'string' && format !== 'recipe') throw new UsageError('--adapter DIR is required');
  const dtype = (flags.dtype ?? 'f32') as ExportDtype;
  if (!EXPORT_DTYPES.includes(dtype)) throw new UsageError(`--dtype must be ${EXPORT_DTYPES.join(', ')}`);
  if ((format === 'gguf' || format === 'merged-gguf') && dtype === 'bf16') throw new UsageError('--dtype bf16 is not available for GGUF output (f32 or f16)');
  if (format === 'onnx' && dtype !== 'f32') throw new UsageError('--format onnx writes f32 weights (no --dtype f16 / bf16)');
  const name = typeof flags.name === 'string' ? flags.name : undefined;

  const t0 = performance.now();
  const src = await nodeSource(flags.model);
  const model = await loadModel(src);
  const cfg = model.config;
  io.out(`model    ${model.source.modelName ?? model.source.name} (${model.source.format}, ${cfg.arch}, ${cfg.layers} layers, hidden ${cfg.hidden}${cfg.ropeStyle === 'pairs' ? ', q/k in llama.cpp order' : ''})`);
  const adapter = typeof flags.adapter === 'string' ? await loadAdapterDir(resolve(flags.adapter), model, name) : null;
  if (adapter) {
    io.out(`adapter  ${adapter.name}: rank ${adapter.lora.rank}, alpha ${adapter.lora.alpha}${adapter.lora.rslora ? ' (rsLoRA)' : ''}, targets ${adapter.lora.targets.join(',')}`);
    for (const n of adapter.notes) io.out(`  note: ${n}`);
  }
  const baseId = typeof flags['base-id'] === 'string' ? flags['base-id'] : adapter?.base.nameOrPath ?? model.source.modelName ?? flags.model;

  // output path: a directory, or a .gguf file for the GGUF formats
  const out = resolve(flags.out);
  const ggufFile = (format === 'gguf' || format === 'merged-gguf') && extname(out).toLowerCase() === '.gguf';
  const root = ggufFile ? dirname(out) : out;
  const kind = await exists(out);
  if (kind && flags.force !== true) {
    if (kind === 'file') throw new Error(`${out} exists (use --force to overwrite)`);
    if ((await readdir(out)).length) throw new Error(`${out} is a non-empty directory (use --force to write into it)`);
  }
  if (kind === 'dir' && ggufFile) throw new Error(`${out} is a directory`);
  const written: { path: string; bytes: number }[] = [];
  const sink = dirSink(root, written);
  const notes: string[] = [];

  switch (format) {
    case 'peft':
      await exportPeft(adapter!, cfg, sink, { dtype, baseModelNameOrPath: baseId });
      break;
    case 'gguf':
      await exportGgufLora(adapter!, cfg, sink, { dtype: dtype as 'f32' | 'f16', ...(ggufFile ? { file: basename(out) } : {}) });
      break;
    case 'merged': {
      const r = await exportMerged(model, adapter!, sink, { dtype, src });
      notes.push(...r.notes);
      break;
    }
    case 'merged-gguf': {
      if (model.source.format !== 'gguf') throw new Error(`--format merged-gguf needs a GGUF base (${flags.model} is a Hugging Face folder): use --format merged`);
      const r = await exportMergedGGUF(src, model, adapter!, sink, { dtype: dtype as 'f32' | 'f16', ...(ggufFile ? { file: basename(out) } : {}) });
      notes.push(...r.notes);
      break;
    }
    case 'onnx': {
      // the merged model in the base's own orientation: exportOnnx un-permutes a GGUF 'pairs' q/k itself
      const a = fitAdapter(adapter!, cfg);
      const merged = mergeLora(cfg, model.weights, a.lora, a.tensors);
      const names = await src.list();
      const tokenizerFiles = new Map<string, Uint8Array>();
      let configJson: string | undefined;
      if (model.source.format === 'hf') {
        for (const f of TOKENIZER_FILES) if (names.includes(f)) tokenizerFiles.set(f, await src.read(f));
        if (names.includes('config.json')) configJson = new TextDecoder().decode(await src.read('config.json'));
      } else {
        notes.push('the base is a GGUF file: its tokenizer lives in the GGUF metadata, so no tokenizer files were written (copy tokenizer.json from the original Hugging Face repo next to config.json)');
      }
      if (cfg.ropeStyle === 'pairs') notes.push('q/k projections un-permuted from llama.cpp (GGUF) order to Hugging Face order');
      notes.push('weights are f32, with the adapter merged in: the folder runs in transformers.js / onnxruntime without LoRA support');
      const files = exportOnnx(cfg, merged, { tokenizerFiles, ...(configJson !== undefined ? { configJson } : {}) });
      for (const [name, bytes] of files) await sink(name, bytes);
      break;
    }
    case 'recipe':
      if (!/^[\w.-]+\/[\w.-]+$/.test(baseId)) notes.push(`the base model is '${baseId}', which is not a Hugging Face id: the cluster must be able to read that path (or pass --base-id ORG/NAME)`);
      await recipe(flags, model, adapter, baseId, sink, io);
      break;
  }
  for (const w of written) io.out(`wrote    ${w.path} (${size(w.bytes)})`);
  for (const n of notes) io.out(`note     ${n}`);
  io.out(`done in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  return 0;
}

export const command: Command = { name: 'export', usage: USAGE, run: runExport };

/** `whittle export ARGS` on stdout/stderr; returns the exit code (usage errors print the usage). */
export async function run(argv: string[]): Promise<number> {
  const io: Io = { out: (s) => process.stdout.write(s + '\n'), err: (s) => process.stderr.write(s + '\n') };
  try {
    return await runExport(argv, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`whittle export: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    io.err(`whittle export: ${(e as Error)?.message ?? String(e)}`);
    return 1;
  }
}
