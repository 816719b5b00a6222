// `whittle train`: headless LoRA fine-tuning in Node (Dawn through npm `webgpu`). Loads the model
// (src/model/load.ts), validates and tokenizes the JSONL dataset (src/data), resolves the
// hyperparameters ('auto' rules + memory fit, src/train), trains through a src/train job, and
// writes into --out DIR:
//   adapter_config.json + adapter_model.safetensors   the adapter in the PEFT layout (src/export/peft.ts:
//                        base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight (r, in),
//                        …lora_B.weight (out, r); Hugging Face q/k orientation), plus README.md and
//                        whittle_adapter.json (hyperparameters, metrics summary)
//   metrics.jsonl        one JSON object per line: {"type":"train","step",…,"loss","accuracy","lr",
//                        "tokensPerSec",…} per optimizer step, and {"type":"valid","step","loss",
//                        "accuracy"} after each validation pass (rewritten from the checkpoint's history
//                        on --resume, so it never holds steps that are trained again)
//   checkpoints/         train.ckpt.json + train.ckpt.bin (src/train/node.ts); --resume continues there
// Output: a progress bar on stderr when it is a terminal (events printed above it), else one line
// per step; --json prints one JSON object per line instead (events, steps, result). Ctrl-C cancels
// between steps (exit 130). Exit codes: 0 ok, 1 failure, 2 usage error.
// Flag names follow the issue (--batch-size, --max-seq-len, --checkpoint-every); the older
// --batch, --seq, --checkpoint-interval still work as aliases.
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { acquireGpu } from '../gpu/device.ts';
import { loadModel } from '../model/load.ts';
import { nodeSource } from '../model/source-node.ts';
import { LORA_TARGETS, type LoraTarget } from '../model/config.ts';
import { chatRenderer, formatIssue, formatReport, loadDataset } from '../data/index.ts';
import { SCHEDULES, type HyperparameterInput } from '../train/hyperparams.ts';
import { JobQueue, type JobInputs, type JobMetric } from '../train/job.ts';
import { FileCheckpointSink } from '../train/node.ts';
import { adapterFromTrained } from '../export/adapter.ts';
import { PEFT_CONFIG, PEFT_WEIGHTS, exportPeft } from '../export/peft.ts';
import { parseArgs, UsageError } from './args.ts';
import { type Command, type Io, stderrTty } from './command.ts';
import { dirSink } from './fs-sink.ts';
import { ProgressBar, clock } from './progress.ts';

const USAGE = [
  'usage: whittle train --model PATH --data FILE.jsonl --out DIR [options]',
  '',
  'Fine-tunes a LoRA adapter on the GPU. Every setting left out is chosen automatically (the',
  'choices are printed with their reasons) and fitted to the GPU\'s memory. DIR receives',
  'adapter_config.json + adapter_model.safetensors (PEFT layout), metrics.jsonl and checkpoints/.',
  '',
  '  --model PATH            Hugging Face model folder (config.json + safetensors) or a .gguf file',
  '  --data FILE.jsonl       training data: chat, prompt/completion or text lines',
  '  --valid FILE.jsonl      a separate validation set (default: hold out 10% from 50 examples on)',
  '  --out DIR               where the adapter, metrics.jsonl and checkpoints/ go',
  '  --epochs N  --max-steps N  --lr X  --schedule constant|linear|cosine  --warmup N',
  '  --batch-size B  --grad-accum K  --max-seq-len T  --rank R  --alpha A  --dropout P',
  '  --targets q,k,v,o,gate,up,down  --quant f32|f16|q8|q4  --weight-decay X  --clip X  --seed S',
  '  --validation FRACTION   --eval-interval N (validate every N steps)',
  '  --checkpoint-every N    checkpoint every N steps (and at each epoch end)',
  '  --checkpointing         gradient checkpointing on (recompute activations in backward)',
  '  --budget MIB            GPU memory the run may use (default 4096)',
  '  --train-on assistant|all   which tokens carry the loss (default assistant / completion)',
  '  --prefix-space on|off   the tokenizer\'s SentencePiece leading "▁" (default: as the tokenizer says)',
  '  --skip-invalid          train on the valid lines of a file that has bad lines',
  '  --resume                continue from DIR/checkpoints when a checkpoint is there',
  '  --name NAME             adapter name (default: the data file name)',
  '  --base-id ID            base_model_name_or_path in adapter_config.json (default: the model\'s',
  '                          Hugging Face name when it records one, else the --model path)',
  '  --json                  one JSON object per line (events, steps, result) instead of text',
  '  (--batch, --seq and --checkpoint-interval are accepted as aliases)',
].join('\n');

const SPEC = {
  model: 'string', data: 'string', valid: 'string', out: 'string', epochs: 'string', 'max-steps': 'string', lr: 'string', schedule: 'string',
  warmup: 'string', 'batch-size': 'string', batch: 'string', 'grad-accum': 'string', 'max-seq-len': 'string', seq: 'string', rank: 'string',
  alpha: 'string', dropout: 'string', targets: 'string', quant: 'string', 'weight-decay': 'string', clip: 'string', seed: 'string',
  validation: 'string', 'eval-interval': 'string', 'checkpoint-every': 'string', 'checkpoint-interval': 'string', checkpointing: 'bool',
  budget: 'string', 'train-on': 'string', 'prefix-space': 'string', 'skip-invalid': 'bool', resume: 'bool', name: 'string', 'base-id': 'string',
  json: 'bool',
} as const;

/** The issue's flag name → the older name it replaces (both accepted; giving both with different values is an error). */
const ALIASES: Record<string, string> = { 'batch-size': 'batch', 'max-seq-len': 'seq', 'checkpoint-every': 'checkpoint-interval' };

const QUANTS = ['f32', 'f16', 'q8', 'q4'] as const;

/** The value of flag `key` or of its older alias, with the name the user typed. */
function flag(flags: Record<string, string | true>, key: string): { name: string; value: string | true } | undefined {
  const old = ALIASES[key];
  const a = flags[key], b = old ? flags[old] : undefined;
  if (a !== undefined && b !== undefined && a !== b) throw new UsageError(`--${key} and --${old} are the same setting; give one (got ${JSON.stringify(a)} and ${JSON.stringify(b)})`);
  if (a !== undefined) return { name: key, value: a };
  if (b !== undefined) return { name: old!, value: b };
  return undefined;
}

function num(flags: Record<string, string | true>, key: string, int: boolean): number | undefined {
  const f = flag(flags, key);
  if (!f) return undefined;
  const v = f.value;
  const x = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(x) || (int && !Number.isInteger(x))) {
    throw new UsageError(`--${f.name} needs ${int ? 'an integer' : 'a number'} (got ${JSON.stringify(v)})`);
  }
  return x;
}

/** The hyperparameter input from the flags (absent flags stay 'auto'); bad values are usage errors. */
export function hyperparametersFromFlags(flags: Record<string, string | true>): HyperparameterInput {
  const hp: HyperparameterInput = {};
  const set = <K extends keyof HyperparameterInput>(k: K, v: HyperparameterInput[K] | undefined) => { if (v !== undefined) hp[k] = v; };
  set('epochs', num(flags, 'epochs', true));
  set('maxSteps', num(flags, 'max-steps', true));
  set('learningRate', num(flags, 'lr', false));
  set('warmupSteps', num(flags, 'warmup', true));
  set('batchSize', num(flags, 'batch-size', true));
  set('gradAccum', num(flags, 'grad-accum', true));
  set('seqLen', num(flags, 'max-seq-len', true));
  set('rank', num(flags, 'rank', true));
  set('alpha', num(flags, 'alpha', false));
  set('dropout', num(flags, 'dropout', false));
  set('weightDecay', num(flags, 'weight-decay', false));
  set('maxGradNorm', num(flags, 'clip', false));
  set('seed', num(flags, 'seed', true));
  set('validationFraction', num(flags, 'validation', false));
  set('evalInterval', num(flags, 'eval-interval', true));
  set('checkpointInterval', num(flags, 'checkpoint-every', true));
  if (typeof flags.schedule === 'string') {
    if (!SCHEDULES.includes(flags.schedule as (typeof SCHEDULES)[number])) throw new UsageError(`--schedule must be ${SCHEDULES.join(', ')} (got ${JSON.stringify(flags.schedule)})`);
    hp.schedule = flags.schedule as HyperparameterInput['schedule'];
  }
  if (typeof flags.quant === 'string') {
    if (!(QUANTS as readonly string[]).includes(flags.quant)) throw new UsageError(`--quant must be ${QUANTS.join(', ')} (got ${JSON.stringify(flags.quant)})`);
    hp.quant = flags.quant as HyperparameterInput['quant'];
  }
  if (typeof flags.targets === 'string') {
    const ts = flags.targets.split(',').map((t) => t.trim()).filter(Boolean);
    for (const t of ts) if (!LORA_TARGETS.includes(t as LoraTarget)) throw new UsageError(`--targets: unknown target '${t}' (known: ${LORA_TARGETS.join(', ')})`);
    if (!ts.length) throw new UsageError('--targets needs at least one of q,k,v,o,gate,up,down');
    hp.targets = ts as LoraTarget[];
  }
  if (flags.checkpointing === true) hp.checkpointing = true;
  return hp;
}

/** The metrics.jsonl rows of one job metric row: the step's training row, and a validation row when it has one. */
export function metricsRows(m: JobMetric): Record<string, unknown>[] {
  const { validLoss, validAccuracy, ...train } = m;
  const rows: Record<string, unknown>[] = [{ type: 'train', ...train }];
  if (typeof validLoss === 'number') {
    rows.push({ type: 'valid', step: m.step, ...(m.time !== undefined ? { time: m.time } : {}), ...(typeof m.epoch === 'number' ? { epoch: m.epoch } : {}), loss: validLoss, accuracy: validAccuracy });
  }
  return rows;
}

const jsonl = (rows: Record<string, unknown>[]) => rows.map((r) => JSON.stringify(r) + '\n').join('');

/**
 * metrics.jsonl kept equal to a job's metric rows (metricsRows of each): sync(rows) appends the one
 * new row when `rows` is the written ones plus one, and rewrites the file otherwise (the start of a
 * run, from the checkpoint's history on a resume; a NaN / Inf step that rolled the run back) or
 * when forced. Writes are chained, so they land in order; the first failure is kept in `error`.
 */
export class MetricsFile {
  error: Error | null = null;
  private writes: Promise<void> = Promise.resolve();
  private count = 0; // job metric rows in the file

  constructor(readonly path: string) {}

  sync(rows: readonly JobMetric[], force = false): void {
    if (!force && rows.length === this.count) return;
    const append = !force && rows.length === this.count + 1;
    const text = jsonl((append ? rows.slice(-1) : rows).flatMap(metricsRows));
    this.writes = this.writes
      .then(() => (append ? appendFile(this.path, text) : writeFile(this.path, text)))
      .catch((e: Error) => { this.error ??= e; });
    this.count = rows.length;
  }

  /** Resolves once every write so far has landed (or failed: see `error`). */
  flush(): Promise<void> {
    return this.writes;
  }
}

/** `whittle train` with explicit output streams; returns the exit code. */
export async function runTrain(args: string[], io: Io): Promise<number> {
  const { flags, positional } = parseArgs(args, SPEC);
  if (positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`);
  if (typeof flags.model !== 'string') throw new UsageError('--model PATH is required');
  if (typeof flags.data !== 'string') throw new UsageError('--data FILE.jsonl is required');
  if (typeof flags.out !== 'string') throw new UsageError('--out DIR is required');
  const json = flags.json === true;
  const hpInput = hyperparametersFromFlags(flags);
  const trainOn = flags['train-on'] ?? 'assistant';
  if (trainOn !== 'assistant' && trainOn !== 'all') throw new UsageError(`--train-on must be assistant or all (got ${JSON.stringify(trainOn)})`);
  const ps = flags['prefix-space'];
  if (ps !== undefined && ps !== 'on' && ps !== 'off') throw new UsageError(`--prefix-space must be on or off (got ${JSON.stringify(ps)})`);
  const budget = num(flags, 'budget', false);
  const out = resolve(flags.out);
  const dataPath = flags.data, validPath = typeof flags.valid === 'string' ? flags.valid : null;
  const bar = !json && io.tty ? new ProgressBar(io.tty) : null;
  const print = (s: string) => (bar ? bar.above(io.out, s) : io.out(s));
  const say = (text: string, obj: Record<string, unknown>) => (json ? io.out(JSON.stringify(obj)) : print(text));

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

  await mkdir(out, { recursive: true });
  const metricsPath = join(out, 'metrics.jsonl');
  const inputs: JobInputs = {
    gpu, modelId: flags.model, config: cfg, weights: model.weights, dataset, validation, datasetId: null,
    ...(budget !== undefined ? { budgetBytes: budget * 2 ** 20 } : {}),
  };
  const queue = new JobQueue();
  const name = typeof flags.name === 'string' ? flags.name : dataPath.replace(/^.*[\\/]/, '').replace(/\.jsonl?$/i, '');
  const resume = flags.resume === true;
  let total = 0, resumed = false;
  const metrics = new MetricsFile(metricsPath);
  const job = queue.submit({
    id: 'train', name, hyperparameters: hpInput, prepare: async () => inputs,
    sink: new FileCheckpointSink(join(out, 'checkpoints')), resume,
    listener: {
      event: (e, j) => {
        if (e.type === 'checkpoint' && /^resumed /.test(e.message)) resumed = true;
        const start = e.type === 'info' && /^training (\d+) steps/.exec(e.message);
        if (start) {
          total = Number(start[1]);
          metrics.sync(j.metrics, true);
          if (resume && !resumed) {
            const note = `no checkpoint in ${join(out, 'checkpoints')}: starting from step 0`;
            if (json) io.out(JSON.stringify({ type: 'event', kind: 'info', time: Date.now(), message: note }));
            else print(note);
          }
        } else if (total) {
          metrics.sync(j.metrics);
        }
        if (json) { io.out(JSON.stringify({ ...e, kind: e.type, type: 'event' })); return; }
        // text: status changes are implied by the lines around them; without a bar, eval results are on the step line
        if (e.type !== 'status' && (e.type !== 'eval' || bar)) print(`${e.type === 'hyperparameter' ? '  ' : ''}${e.message}`);
        if (start && bar) bar.update(j.metrics.at(-1)?.step ?? 0, total, 'starting');
      },
      metric: (m, j) => {
        metrics.sync(j.metrics);
        if (json) { io.out(JSON.stringify({ type: 'step', ...m })); return; }
        const loss = (m.loss as number).toFixed(4), lr = (m.lr as number).toExponential(2), tps = Math.round(m.tokensPerSec as number);
        if (bar) {
          bar.update(m.step, total || m.step, `loss ${loss}  ${clock(m.elapsedMs as number)}<${clock(m.etaMs as number)}  ${tps} tok/s  lr ${lr}  epoch ${(m.epoch as number).toFixed(2)}`);
          return;
        }
        const acc = ((m.accuracy as number) * 100).toFixed(1);
        io.out(`step ${String(m.step).padStart(String(total || m.step).length)}/${total}  epoch ${(m.epoch as number).toFixed(2)}  ` +
          `loss ${loss}  acc ${acc}%  lr ${lr}  ${tps} tok/s  ${clock(m.elapsedMs as number)} elapsed  ${clock(m.etaMs as number)} left` +
          (typeof m.validLoss === 'number' ? `  valid loss ${m.validLoss.toFixed(4)} acc ${((m.validAccuracy as number) * 100).toFixed(1)}%` : ''));
      },
    },
  });
  const onSigint = () => {
    const msg = 'whittle train: cancelling after the current step (Ctrl-C again to quit now)';
    if (bar) bar.above(io.err, msg);
    else io.err(msg);
    process.off('SIGINT', onSigint);
    job.cancel();
  };
  process.on('SIGINT', onSigint);
  let r;
  try {
    r = await job.done;
    await metrics.flush();
  } finally {
    process.off('SIGINT', onSigint);
    bar?.clear();
  }
  if (metrics.error) io.err(`whittle train: could not write ${metricsPath}: ${metrics.error.message}`);
  if (r.status === 'cancelled') {
    say(`cancelled; the last checkpoint is in ${join(out, 'checkpoints')} (--resume continues from it)`, { type: 'result', status: 'cancelled' });
    return 130;
  }
  if (r.status === 'failed' || !r.adapter) {
    if (json) io.out(JSON.stringify({ type: 'result', status: 'failed', error: r.error }));
    io.err(`whittle train: ${r.error ?? 'failed'}`);
    return 1;
  }
  // the adapter as a PEFT directory (Hugging Face orientation; whittle_adapter.json keeps the run's settings)
  const adapter = adapterFromTrained(r.adapter, cfg);
  const baseId = typeof flags['base-id'] === 'string' ? flags['base-id'] : model.source.modelName ?? resolve(flags.model);
  const written: { path: string; bytes: number }[] = [];
  await exportPeft(adapter, cfg, dirSink(out, written), { baseModelNameOrPath: baseId });
  const m = r.adapter.metrics;
  const files = { config: join(out, PEFT_CONFIG), weights: join(out, PEFT_WEIGHTS), metrics: metricsPath };
  say(`adapter   ${files.config} + ${files.weights}: ${r.adapter.tensors.length} tensors, rank ${r.adapter.lora.r}, alpha ${r.adapter.lora.lora_alpha}, ` +
    `targets ${r.adapter.lora.targets.join(',')}; final loss ${m.finalLoss?.toFixed(4)}` +
    (m.validLoss !== null ? `, validation loss ${m.validLoss.toFixed(4)}` : '') + `\nmetrics   ${files.metrics}`,
  { type: 'result', status: 'succeeded', dir: out, files, written: written.map((w) => w.path), tensors: r.adapter.tensors.length, metrics: m });
  return metrics.error ? 1 : 0;
}

/** `whittle train` on stdout / stderr (the entry point the brief names); returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const io: Io = { out: (s) => process.stdout.write(s + '\n'), err: (s) => process.stderr.write(s + '\n'), tty: stderrTty() };
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
