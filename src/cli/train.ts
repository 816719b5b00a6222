// `whittle train`: headless LoRA fine-tuning in Node (Dawn through npm `webgpu`). Loads the model
// (src/model/load.ts), validates and tokenizes the JSONL dataset (src/data), resolves the
// hyperparameters ('auto' rules + memory fit, src/train), trains through a src/train job printing
// one line (or JSON object) per step, and writes the adapter to --out as adapter.json (manifest)
// + adapter.bin (raw f32 tensors, PEFT names). Checkpoints go to <out>/checkpoints; --resume
// continues from there. Ctrl-C cancels between steps (exit 130). Exit codes: 0 ok, 1 failure,
// 2 usage error.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { acquireGpu } from '../gpu/device.ts';
import { loadModel } from '../model/load.ts';
import { nodeSource } from '../model/source-node.ts';
import { chatRenderer, formatIssue, formatReport, loadDataset } from '../data/index.ts';
import type { HyperparameterInput } from '../train/hyperparams.ts';
import { JobQueue, type JobInputs } from '../train/job.ts';
import { FileCheckpointSink, writeAdapterFiles } from '../train/node.ts';
import { parseArgs, UsageError } from './args.ts';
import type { Command, Io } from './command.ts';

const USAGE = [
  'usage: whittle train --model PATH --data FILE.jsonl [options]',
  '',
  'Fine-tunes a LoRA adapter on the GPU. Every setting left out is chosen automatically (the',
  'choices are printed with their reasons) and fitted to the GPU\'s memory.',
  '',
  '  --model PATH            Hugging Face model folder (config.json + safetensors) or a .gguf file',
  '  --data FILE.jsonl       training data: chat, prompt/completion or text lines',
  '  --valid FILE.jsonl      a separate validation set (default: hold out 10% from 50 examples on)',
  '  --out DIR               where adapter.json + adapter.bin (and checkpoints/) go (default: ./adapter)',
  '  --epochs N  --max-steps N  --lr X  --schedule constant|linear|cosine  --warmup N',
  '  --batch B  --grad-accum K  --seq T  --rank R  --alpha A  --dropout P  --targets q,k,v,o,gate,up,down',
  '  --quant f32|q8|q4  --weight-decay X  --clip X  --seed S  --validation FRACTION',
  '  --eval-interval N  --checkpoint-interval N  --checkpointing (gradient checkpointing on)',
  '  --budget MIB            GPU memory the run may use (default 4096)',
  '  --train-on assistant|all   which tokens carry the loss (default assistant / completion)',
  '  --prefix-space on|off   the tokenizer\'s SentencePiece leading "▁" (default: as the tokenizer says)',
  '  --skip-invalid          train on the valid lines of a file that has bad lines',
  '  --resume                continue from <out>/checkpoints when a checkpoint is there',
  '  --name NAME             adapter name (default: the data file name)',
  '  --json                  one JSON object per line (events, steps, result) instead of text',
].join('\n');

const SPEC = {
  model: 'string', data: 'string', valid: 'string', out: 'string', epochs: 'string', 'max-steps': 'string', lr: 'string', schedule: 'string',
  warmup: 'string', batch: 'string', 'grad-accum': 'string', seq: 'string', rank: 'string', alpha: 'string', dropout: 'string', targets: 'string',
  quant: 'string', 'weight-decay': 'string', clip: 'string', seed: 'string', validation: 'string', 'eval-interval': 'string',
  'checkpoint-interval': 'string', checkpointing: 'bool', budget: 'string', 'train-on': 'string', 'prefix-space': 'string', 'skip-invalid': 'bool',
  resume: 'bool', name: 'string', json: 'bool',
} as const;

function num(flags: Record<string, string | true>, key: string, int: boolean): number | undefined {
  const v = flags[key];
  if (v === undefined) return undefined;
  const x = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(x) || (int && !Number.isInteger(x))) {
    throw new UsageError(`--${key} needs ${int ? 'an integer' : 'a number'} (got ${JSON.stringify(v)})`);
  }
  return x;
}

/** The hyperparameter input from the flags (absent flags stay 'auto'). */
export function hyperparametersFromFlags(flags: Record<string, string | true>): HyperparameterInput {
  const hp: HyperparameterInput = {};
  const set = <K extends keyof HyperparameterInput>(k: K, v: HyperparameterInput[K] | undefined) => { if (v !== undefined) hp[k] = v; };
  set('epochs', num(flags, 'epochs', true));
  set('maxSteps', num(flags, 'max-steps', true));
  set('learningRate', num(flags, 'lr', false));
  set('warmupSteps', num(flags, 'warmup', true));
  set('batchSize', num(flags, 'batch', true));
  set('gradAccum', num(flags, 'grad-accum', true));
  set('seqLen', num(flags, 'seq', true));
  set('rank', num(flags, 'rank', true));
  set('alpha', num(flags, 'alpha', false));
  set('dropout', num(flags, 'dropout', false));
  set('weightDecay', num(flags, 'weight-decay', false));
  set('maxGradNorm', num(flags, 'clip', false));
  set('seed', num(flags, 'seed', true));
  set('validationFraction', num(flags, 'validation', false));
  set('evalInterval', num(flags, 'eval-interval', true));
  set('checkpointInterval', num(flags, 'checkpoint-interval', true));
  if (typeof flags.schedule === 'string') hp.schedule = flags.schedule as HyperparameterInput['schedule'];
  if (typeof flags.quant === 'string') hp.quant = flags.quant as HyperparameterInput['quant'];
  if (typeof flags.targets === 'string') hp.targets = flags.targets.split(',').map((t) => t.trim()).filter(Boolean) as HyperparameterInput['targets'];
  if (flags.checkpointing === true) hp.checkpointing = true;
  return hp;
}

const clock = (ms: number) => {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), ss = s % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(ss).padStart(2, '0')}` : `${m}:${String(ss).padStart(2, '0')}`;
};

/** `whittle train` with explicit output streams; returns the exit code. */
export async function runTrain(args: string[], io: Io): Promise<number> {
  const { flags, positional } = parseArgs(args, SPEC);
  if (positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`);
  if (typeof flags.model !== 'string') throw new UsageError('--model PATH is required');
  if (typeof flags.data !== 'string') throw new UsageError('--data FILE.jsonl is required');
  const json = flags.json === true;
  const hpInput = hyperparametersFromFlags(flags);
  const trainOn = flags['train-on'] ?? 'assistant';
  if (trainOn !== 'assistant' && trainOn !== 'all') throw new UsageError(`--train-on must be assistant or all (got ${JSON.stringify(trainOn)})`);
  const ps = flags['prefix-space'];
  if (ps !== undefined && ps !== 'on' && ps !== 'off') throw new UsageError(`--prefix-space must be on or off (got ${JSON.stringify(ps)})`);
  const budget = num(flags, 'budget', false);
  const out = resolve(typeof flags.out === 'string' ? flags.out : 'adapter');
  const dataPath = flags.data, validPath = typeof flags.valid === 'string' ? flags.valid : null;
  const say = (text: string, obj: Record<string, unknown>) => (json ? io.out(JSON.stringify(obj)) : io.out(text));

  const gpu = await acquireGpu();
  const t0 = performance.now();
  const model = await loadModel(await nodeSource(flags.model));
  const cfg = model.config;
  say(`model     ${model.source.modelName ?? model.source.name} (${cfg.arch}, ${cfg.layers} layers, hidden ${cfg.hidden}, vocab ${cfg.vocab}, ` +
    `${model.source.params.toLocaleString('en-US')} parameters) loaded in ${((performance.now() - t0) / 1000).toFixed(1)}s`,
  { type: 'model', name: model.source.modelName ?? model.source.name, config: cfg, params: model.source.params });

  const maxSeqLen = typeof hpInput.seqLen === 'number' ? hpInput.seqLen : Math.min(cfg.maxPos, 2048);
  const prep = async (path: string) => {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (e) {
      throw new Error(`${path}: cannot read the dataset: ${(e as Error).message}`);
    }
    const r = loadDataset(bytes, {
      tokenizer: model.tokenizer, maxSeqLen, trainOn, source: path, skipInvalid: flags['skip-invalid'] === true,
      chatTemplate: model.chatTemplate ? chatRenderer(model.chatTemplate, model.tokenizer) : null,
      ...(ps ? { prefixSpace: ps === 'on' } : {}),
    });
    if (!r.dataset) {
      if (json) io.out(JSON.stringify({ type: 'dataset-error', source: path, reason: r.reason, report: r.report }));
      else io.err(formatReport(r.report, { source: path }));
      throw new Error(`${path}: ${r.reason}`);
    }
    const ds = r.dataset;
    const warn = r.report.issues.filter((i) => i.severity !== 'info');
    say(`data      ${path}: ${ds.examples.length} examples (${ds.format}), tokens per example ${ds.stats.tokens.min}..${ds.stats.tokens.max} ` +
      `(median ${ds.stats.tokens.median}), ${ds.stats.trainedTokens} trained tokens` +
      (warn.length ? `\n${warn.slice(0, 10).map((i) => '  ' + formatIssue(i, path)).join('\n')}${warn.length > 10 ? `\n  … and ${warn.length - 10} more` : ''}` : ''),
    { type: 'dataset', source: path, examples: ds.examples.length, format: ds.format, stats: ds.stats, issues: warn });
    return ds;
  };
  const dataset = await prep(dataPath);
  const validation = validPath ? await prep(validPath) : null;

  const inputs: JobInputs = {
    gpu, modelId: flags.model, config: cfg, weights: model.weights, dataset, validation, datasetId: null,
    ...(budget !== undefined ? { budgetBytes: budget * 2 ** 20 } : {}),
  };
  const queue = new JobQueue();
  const name = typeof flags.name === 'string' ? flags.name : dataPath.replace(/^.*[\\/]/, '').replace(/\.jsonl?$/i, '');
  let total = 0;
  const job = queue.submit({
    id: 'train', name, hyperparameters: hpInput, prepare: async () => inputs,
    sink: new FileCheckpointSink(resolve(out, 'checkpoints')), resume: flags.resume === true,
    listener: {
      event: (e) => {
        // text mode: status changes are implied by the lines around them, eval results are on the step line
        if ((e.type === 'status' || e.type === 'eval') && !json) return;
        if (e.type === 'info' && /^training (\d+) steps/.test(e.message)) total = Number(/^training (\d+)/.exec(e.message)![1]);
        if (json) io.out(JSON.stringify({ ...e, kind: e.type, type: 'event' }));
        else io.out(`${e.type === 'hyperparameter' ? '  ' : ''}${e.message}`);
      },
      metric: (m) => {
        if (json) { io.out(JSON.stringify({ type: 'step', ...m })); return; }
        const acc = ((m.accuracy as number) * 100).toFixed(1);
        io.out(`step ${String(m.step).padStart(String(total || m.step).length)}/${total}  epoch ${(m.epoch as number).toFixed(2)}  ` +
          `loss ${(m.loss as number).toFixed(4)}  acc ${acc}%  lr ${(m.lr as number).toExponential(2)}  ` +
          `${Math.round(m.tokensPerSec as number)} tok/s  ${clock(m.elapsedMs as number)} elapsed  ${clock(m.etaMs as number)} left` +
          (typeof m.validLoss === 'number' ? `  valid loss ${m.validLoss.toFixed(4)} acc ${((m.validAccuracy as number) * 100).toFixed(1)}%` : ''));
      },
    },
  });
  const onSigint = () => {
    io.err('whittle train: cancelling after the current step (Ctrl-C again to quit now)');
    process.off('SIGINT', onSigint);
    job.cancel();
  };
  process.on('SIGINT', onSigint);
  let r;
  try {
    r = await job.done;
  } finally {
    process.off('SIGINT', onSigint);
  }
  if (r.status === 'cancelled') {
    say(`cancelled; the last checkpoint is in ${resolve(out, 'checkpoints')} (--resume continues from it)`, { type: 'result', status: 'cancelled' });
    return 130;
  }
  if (r.status === 'failed' || !r.adapter) {
    if (json) io.out(JSON.stringify({ type: 'result', status: 'failed', error: r.error }));
    io.err(`whittle train: ${r.error ?? 'failed'}`);
    return 1;
  }
  const paths = await writeAdapterFiles(out, r.adapter);
  const m = r.adapter.metrics;
  say(`adapter   ${paths.manifest} + ${paths.data}: ${r.adapter.tensors.length} tensors, rank ${r.adapter.lora.r}; final loss ${m.finalLoss?.toFixed(4)}` +
    (m.validLoss !== null ? `, validation loss ${m.validLoss.toFixed(4)}` : ''),
  { type: 'result', status: 'succeeded', manifest: paths.manifest, data: paths.data, metrics: m });
  return 0;
}

/** `whittle train` on stdout / stderr (the entry point the brief names); returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const io: Io = { out: (s) => process.stdout.write(s + '\n'), err: (s) => process.stderr.write(s + '\n') };
  try {
    return await runTrain(argv, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`whittle train: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    io.err(`whittle train: ${(e as Error)?.message ?? String(e)}`);
    return 1;
  }
}

export const command: Command = { name: 'train', usage: USAGE, run: runTrain };
