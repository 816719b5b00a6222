// `whittle generate --model PATH --prompt STR …`: load a model (Hugging Face folder or .gguf),
// encode the prompt, and generate with the KV-cache GPU path (src/model/generate.ts), streaming the
// text to stdout as it comes (or one JSON object with --json). Ctrl-C stops generation cleanly.
// --adapter DIR applies a LoRA adapter (PEFT directory or `whittle train` output, ./adapter-arg.ts):
// unmerged (the LoRA kernels beside the frozen base) unless --merge folds it into the base on the
// host first. Also exports the model-loading helpers `whittle logits` (./logits.ts) shares.
import { resolve } from 'node:path';
import { acquireGpu } from '../gpu/device.ts';
import type { Adapter } from '../export/adapter.ts';
import type { LoadedModel } from '../model/load.ts';
import { generate, type GenerateResult, InferenceModel, type LoraMode } from '../model/generate.ts';
import type { QFormat } from '../model/quant.ts';
import type { SamplingOptions } from '../model/sample.ts';
import { describeAdapter, loadAdapterDir, loraWeightsOf } from './adapter-arg.ts';
import { parseArgs, UsageError } from './args.ts';
import type { Command, Io } from './command.ts';

/** Load a model from a directory or file path (Node). */
export async function loadModelPath(path: string): Promise<LoadedModel> {
  const { loadModel } = await import('../model/load.ts');
  const { nodeSource } = await import('../model/source-node.ts');
  return loadModel(await nodeSource(path));
}

export function parseQuant(v: string | true | undefined): QFormat {
  const q = typeof v === 'string' ? v : 'f32';
  if (q !== 'f32' && q !== 'f16' && q !== 'q8' && q !== 'q4') throw new UsageError(`--quant must be f32, f16, q8 or q4 (got ${q})`);
  return q;
}

export function parseNum(name: string, v: string | true | undefined, opts: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
  if (v === undefined) return undefined;
  const x = typeof v === 'string' ? Number(v) : NaN;
  if (!Number.isFinite(x) || (opts.int && !Number.isInteger(x)) || (opts.min !== undefined && x < opts.min) || (opts.max !== undefined && x > opts.max)) {
    throw new UsageError(`--${name} needs ${opts.int ? 'an integer' : 'a number'}${opts.min !== undefined ? ` ≥ ${opts.min}` : ''}${opts.max !== undefined ? ` ≤ ${opts.max}` : ''} (got ${v === true ? 'nothing' : v})`);
  }
  return x;
}

export function parseIds(v: string): number[] {
  const ids = v.split(/[,\s]+/).filter(Boolean).map(Number);
  if (!ids.length || ids.some((x) => !Number.isInteger(x) || x < 0)) throw new UsageError(`--ids needs comma-separated token ids (got ${v})`);
  return ids;
}

/** Prompt ids from --ids or --prompt/--text (tokenizer: BOS per the tokenizer unless --no-bos). */
export function promptIds(m: LoadedModel, flags: Record<string, string | true>, textFlag: string): number[] {
  if (typeof flags.ids === 'string') {
    if (typeof flags[textFlag] === 'string') throw new UsageError(`give --${textFlag} or --ids, not both`);
    return parseIds(flags.ids);
  }
  const text = flags[textFlag];
  if (typeof text !== 'string') throw new UsageError(`--${textFlag} or --ids is required`);
  const ids = m.tokenizer.encode(text, {
    addBos: flags['no-bos'] === true ? false : undefined,
    prefixSpace: flags['no-prefix-space'] === true ? false : undefined,
  });
  if (!ids.length) throw new UsageError('the prompt encodes to no tokens (use a non-empty prompt, or keep BOS)');
  return ids;
}

/** The adapter of --adapter DIR (null without it); --merge without --adapter is a usage error. */
export async function adapterArg(m: LoadedModel, flags: Record<string, string | true>): Promise<Adapter | null> {
  if (typeof flags.adapter !== 'string') {
    if (flags.merge === true) throw new UsageError('--merge needs --adapter DIR');
    return null;
  }
  return loadAdapterDir(resolve(flags.adapter), m);
}

/** What the JSON reports say about the adapter. */
export interface AdapterReport {
  path: string;
  name: string;
  rank: number;
  alpha: number;
  rslora: boolean;
  targets: string[];
  mode: LoraMode;
  notes: string[];
}

export function adapterReport(path: string, a: Adapter, mode: LoraMode): AdapterReport {
  return { path, name: a.name, rank: a.lora.rank, alpha: a.lora.alpha, rslora: a.lora.rslora === true, targets: a.lora.targets.slice(), mode, notes: a.notes.slice() };
}

/** The JSON document of `whittle generate --json`. */
export interface GenerateReport {
  model: string;
  quant: QFormat;
  /** the --adapter applied (null without one) */
  adapter: AdapterReport | null;
  prompt: string | null;
  promptIds: number[];
  sampling: SamplingOptions & { maxTokens: number; stop: string[] };
  ids: number[];
  text: string;
  finishReason: GenerateResult['finishReason'];
  stop: string | null;
  stats: {
    promptTokens: number;
    generatedTokens: number;
    prefillMs: number;
    decodeMs: number;
    decodeTokensPerSecond: number;
    gpuGreedy: boolean;
    /** how the adapter is applied: 'none', 'unmerged' or 'merged' */
    adapter: LoraMode;
  };
}

const USAGE = [
  'usage: whittle generate --model PATH --prompt STR [--max-tokens N] [--greedy]',
  '                        [--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R] [--seed S]',
  '                        [--stop STR] [--quant f32|f16|q8|q4] [--max-seq N] [--no-bos] [--no-prefix-space] [--json]',
  '                        [--adapter DIR [--merge]]',
  '',
  'Generates text with the KV-cache GPU path (prefill once, then one token per step), streaming it',
  'to stdout. PATH is a Hugging Face model folder (config.json + *.safetensors + tokenizer.json) or a',
  '.gguf file.',
  '',
  '  --prompt STR            text to continue (encoded with the model\'s tokenizer, BOS added as it says)',
  '  --ids 1,2,3             token ids instead of --prompt',
  '  --max-tokens N          most tokens to generate (default 128); EOS ends earlier',
  '  --greedy                always the most likely token (argmax on the GPU)',
  '  --temperature T         sampling temperature (default 0.8; 0 = greedy)',
  '  --top-k K               sample among the K most likely tokens (default 40; 0 = all)',
  '  --top-p P               nucleus sampling: smallest set with probability ≥ P (default 0.95)',
  '  --repetition-penalty R  divide the logits of tokens already present by R (default 1 = off)',
  '  --seed S                RNG seed (default: random; printed with --json) — same seed, same text',
  '  --stop STR              stop when the text contains STR (cut before it)',
  '  --quant f32|f16|q8|q4   storage format of the frozen weights on the GPU (default f32)',
  '  --max-seq N             KV-cache positions (default min(model context, prompt + max-tokens))',
  '  --no-bos                do not add BOS to --prompt',
  '  --no-prefix-space       no SentencePiece leading "▁" (tinystories-656k was trained without it)',
  '  --json                  print one JSON object at the end instead of streaming',
  '  --adapter DIR           apply a LoRA adapter: a PEFT directory (adapter_config.json +',
  '                          adapter_model.safetensors, what `whittle train` writes) or an older whittle',
  '                          adapter.json + adapter.bin directory;',
  '                          unmerged (LoRA kernels beside the frozen base) by default',
  '  --merge                 merge the adapter into the base weights first (W + scale·B·A; base-model speed)',
  '  --driver-threads N      llvmpipe (lavapipe) only: its shader threads (default 0: every dispatch on',
  '                          the driver\'s queue thread — decode up to ~2× faster there, a long prompt',
  '                          slower; -1: the driver\'s own default, one per core)',
  '',
  'Exit code: 0 ok, 1 failure, 2 bad arguments.',
].join('\n');

export const command: Command = {
  name: 'generate',
  usage: USAGE,
  async run(args, io) {
    const { flags, positional } = parseArgs(args, {
      model: 'string', prompt: 'string', ids: 'string', 'max-tokens': 'string', greedy: 'bool', temperature: 'string',
      'top-k': 'string', 'top-p': 'string', 'repetition-penalty': 'string', seed: 'string', stop: 'string', quant: 'string',
      'max-seq': 'string', 'no-bos': 'bool', 'no-prefix-space': 'bool', json: 'bool', adapter: 'string', merge: 'bool',
      'driver-threads': 'string',
    });
    if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
    if (typeof flags.model !== 'string') throw new UsageError('--model PATH is required');
    const quant = parseQuant(flags.quant);
    const maxTokens = parseNum('max-tokens', flags['max-tokens'], { int: true, min: 0 }) ?? 128;
    const greedy = flags.greedy === true;
    const sampling: SamplingOptions = {
      greedy,
      temperature: parseNum('temperature', flags.temperature, { min: 0 }) ?? 0.8,
      topK: parseNum('top-k', flags['top-k'], { int: true, min: 0 }) ?? 40,
      topP: parseNum('top-p', flags['top-p'], { min: 0, max: 1 }) ?? 0.95,
      repetitionPenalty: parseNum('repetition-penalty', flags['repetition-penalty'], { min: 1e-6 }) ?? 1,
      seed: parseNum('seed', flags.seed, { int: true, min: 0 }) ?? Math.floor(Math.random() * 2 ** 31),
    };
    const stop = typeof flags.stop === 'string' ? [flags.stop] : [];
    const json = flags.json === true;

    const loaded = await loadModelPath(flags.model);
    const adapter = await adapterArg(loaded, flags);
    const prompt = promptIds(loaded, flags, 'prompt');
    const cfg = loaded.config;
    const maxSeq = parseNum('max-seq', flags['max-seq'], { int: true, min: 1 }) ?? Math.min(Math.max(cfg.maxPos, prompt.length + 1), prompt.length + maxTokens + 1);
    if (prompt.length > maxSeq) throw new UsageError(`the prompt has ${prompt.length} tokens, more than --max-seq ${maxSeq}`);
    // llvmpipe: decode steps are many tiny dispatches, faster without the thread-pool handoff
    const driverThreads = parseNum('driver-threads', flags['driver-threads'], { int: true, min: -1, max: 64 }) ?? 0;
    const gpu = await acquireGpu(driverThreads < 0 ? {} : { driverThreads });
    const model = InferenceModel.create(gpu, cfg, loaded.weights, { quant, maxSeq, lora: adapter && loraWeightsOf(adapter), merge: flags.merge === true });
    const ac = new AbortController();
    const onInt = () => ac.abort();
    process.once('SIGINT', onInt);
    try {
      const write = (s: string) => process.stdout.write(s);
      const promptText = typeof flags.prompt === 'string' ? flags.prompt : loaded.tokenizer.decode(prompt, { skipSpecial: true });
      if (adapter && !json) {
        io.err(`[adapter ${describeAdapter(adapter, model.loraMode)}]`);
        for (const n of adapter.notes) io.err(`[adapter note: ${n}]`);
      }
      if (!json) write(promptText);
      const it = generate(model, prompt, { ...sampling, maxTokens, stop, tokenizer: loaded.tokenizer, signal: ac.signal });
      let r = await it.next();
      while (!r.done) {
        if (!json) write(r.value.text);
        r = await it.next();
      }
      const res = r.value;
      const stats = {
        promptTokens: res.promptTokens, generatedTokens: res.ids.length, prefillMs: round(res.prefillMs), decodeMs: round(res.decodeMs),
        decodeTokensPerSecond: round(res.tokensPerSecond), gpuGreedy: res.gpuGreedy, adapter: model.loraMode,
      };
      if (json) {
        const report: GenerateReport = {
          model: flags.model, quant, adapter: adapter ? adapterReport(flags.adapter as string, adapter, model.loraMode) : null, prompt: typeof flags.prompt === 'string' ? flags.prompt : null, promptIds: prompt,
          sampling: greedy
            ? { greedy, repetitionPenalty: sampling.repetitionPenalty, seed: sampling.seed, maxTokens, stop }
            : { ...sampling, maxTokens, stop },
          ids: res.ids, text: res.text, finishReason: res.finishReason, stop: res.stop, stats,
        };
        io.out(JSON.stringify(report));
      } else {
        write('\n');
        io.err(`[${res.ids.length} tokens, ${res.finishReason}${res.stop !== null ? ` (${JSON.stringify(res.stop)})` : ''}; prompt ${res.promptTokens} tokens in ` +
          `${stats.prefillMs} ms; decode ${stats.decodeTokensPerSecond} tokens/s${res.gpuGreedy ? ' (greedy on the GPU)' : ''}; ` +
          `${quant}${adapter ? `; adapter ${adapter.name} (${model.loraMode})` : ''}; seed ${sampling.seed}; ${gpu.info.description || gpu.info.vendor || 'GPU'}]`);
      }
      return 0;
    } finally {
      process.off('SIGINT', onInt);
      model.destroy();
    }
  },
};

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Default Io: stdout / stderr lines. */
export const stdio: Io = {
  out: (s) => process.stdout.write(s + '\n'),
  err: (s) => process.stderr.write(s + '\n'),
};

/** `whittle generate` with argv (no command name): the exit code. */
export async function run(argv: string[]): Promise<number> {
  try {
    return await command.run(argv, stdio);
  } catch (e) {
    stdio.err(`whittle generate: ${(e as Error)?.message ?? String(e)}${e instanceof UsageError ? `\n\n${USAGE}` : ''}`);
    return e instanceof UsageError ? 2 : 1;
  }
}
