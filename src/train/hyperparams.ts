// Training hyperparameters: the resolved set a run uses, the partial input a user gives (any field
// may be left out or set to 'auto'), the rules that fill the 'auto' fields from the dataset size,
// example lengths, model shape and device limits (one explanation line per auto choice), the
// memory fit (./memory.ts fitMemory) and the learning-rate schedule.
// It is not: the training loop (./trainer.ts) nor the memory arithmetic (./memory.ts).
// No DOM, no node:*.
import { LORA_TARGETS, type LlamaConfig, type LoraConfig, type LoraTarget, targetShape } from '../model/config.ts';
import type { QFormat } from '../model/quant.ts';
import { type AdapterLimits, DEFAULT_LIMITS, fitMemory, type MemoryPlan, mib, planMemory } from './memory.ts';

export type Schedule = 'constant' | 'linear' | 'cosine';
export const SCHEDULES: readonly Schedule[] = ['constant', 'linear', 'cosine'];

/** Every setting of a run, resolved (no 'auto'). Plain data: structured-clone and JSON safe. */
export interface Hyperparameters {
  /** passes over the training set (the run may stop earlier at maxSteps) */
  epochs: number;
  /** B: sequences per micro-batch (one forward/backward) */
  batchSize: number;
  /** micro-batches whose gradients are summed (token-weighted) into one optimizer step */
  gradAccum: number;
  /** T: tokens per sequence; longer examples are cut at the end */
  seqLen: number;
  /** peak learning rate */
  learningRate: number;
  schedule: Schedule;
  /** optimizer steps of linear warmup from 0 to learningRate */
  warmupSteps: number;
  /** decoupled AdamW weight decay */
  weightDecay: number;
  /** clip the global gradient norm to this; 0 = no clipping */
  maxGradNorm: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEps: number;
  /** LoRA rank R */
  rank: number;
  /** LoRA alpha (scale = alpha / rank) */
  alpha: number;
  /** LoRA dropout on the adapter input */
  dropout: number;
  /** adapted projections */
  targets: LoraTarget[];
  /** storage format of the frozen base weights */
  quant: QFormat;
  /** gradient checkpointing (recompute each layer in backward) */
  checkpointing: boolean;
  /** optimizer steps of the whole run */
  maxSteps: number;
  /** evaluate on the validation set every N steps (and at the end); 0 = never */
  evalInterval: number;
  /** checkpoint every N steps (and at each epoch end); 0 = at epoch ends only */
  checkpointInterval: number;
  /** seed of LoRA init, dropout masks, data order and the validation split */
  seed: number;
  /** fraction of the dataset held out for validation (0 = none, or a separate validation set) */
  validationFraction: number;
}

export type Auto<T> = T | 'auto';
/** What a user gives: any field left out or 'auto' is chosen by resolveHyperparameters. */
export type HyperparameterInput = { [K in keyof Hyperparameters]?: Auto<Hyperparameters[K]> };

/** Example lengths in tokens (before truncation), e.g. DatasetStats.tokens. A number = all the same. */
export type TokenLengths = number | { mean: number; max: number; median?: number; min?: number };

export interface ResolveContext {
  /** examples in the dataset (before any validation split) */
  datasetSize: number;
  tokensPerExample: TokenLengths;
  model: LlamaConfig;
  /** the device's limits (gpu.info.limits) and an optional memory budget; default: DEFAULT_LIMITS */
  adapterLimits?: Partial<AdapterLimits>;
  /** examples of a separate validation set (validationFraction auto → 0 when given) */
  validationSize?: number;
}

export interface Resolved {
  resolved: Hyperparameters;
  /** one line per auto choice (and per memory adaptation), for logs and UI */
  explanations: string[];
  /** the memory prediction for the resolved settings */
  plan: MemoryPlan;
  /** examples left for training after the validation split */
  trainSize: number;
}

export class HyperparameterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HyperparameterError';
  }
}

const DEFAULTS = { adamBeta1: 0.9, adamBeta2: 0.999, adamEps: 1e-8 } as const;
const isAuto = (v: unknown): v is 'auto' | undefined => v === undefined || v === 'auto';
const pow2Floor = (x: number) => 2 ** Math.floor(Math.log2(Math.max(1, x)));
const fmtLr = (x: number) => x.toExponential(1).replace('.0e', 'e');

function lengths(t: TokenLengths): { mean: number; max: number; median: number } {
  if (typeof t === 'number') return { mean: t, max: t, median: t };
  return { mean: t.mean, max: t.max, median: t.median ?? t.mean };
}

function checkInt(name: string, v: unknown, min: number, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new HyperparameterError(`${name} must be an integer${max === Infinity ? ` ≥ ${min}` : ` in ${min}..${max}`} (got ${JSON.stringify(v)})`);
  }
  return v;
}

function checkNum(name: string, v: unknown, min: number, max: number, openMin = false, openMax = false): number {
  const ok = typeof v === 'number' && Number.isFinite(v) && (openMin ? v > min : v >= min) && (openMax ? v < max : v <= max);
  if (!ok) {
    throw new HyperparameterError(`${name} must be a number in ${openMin ? '(' : '['}${min}, ${max}${openMax ? ')' : ']'} (got ${JSON.stringify(v)})`);
  }
  return v as number;
}

/** Micro-batches per epoch and optimizer steps of `epochs` epochs. */
export function stepsFor(trainSize: number, batchSize: number, gradAccum: number, epochs: number): { microPerEpoch: number; steps: number } {
  const microPerEpoch = Math.ceil(trainSize / batchSize);
  return { microPerEpoch, steps: Math.ceil((microPerEpoch * epochs) / gradAccum) };
}

/**
 * Fill every 'auto' / missing field (rules in src/train/README.md), check the explicit ones, fit
 * the memory plan to the device (checkpointing → shorter sequences → smaller batch, each with an
 * explanation) and return the resolved set. Throws HyperparameterError for invalid input, and
 * when nothing fits (with the planner's advice).
 */
export function resolveHyperparameters(input: HyperparameterInput, ctx: ResolveContext): Resolved {
  const ex: string[] = [];
  const cfg = ctx.model;
  const limits: AdapterLimits = { ...DEFAULT_LIMITS, ...stripUndefined(ctx.adapterLimits ?? {}) };
  const n = ctx.datasetSize;
  if (!Number.isInteger(n) || n < 1) throw new HyperparameterError(`the dataset must have at least 1 example (got ${n})`);
  const len = lengths(ctx.tokensPerExample);
  const known = new Set<string>([...Object.keys(DEFAULTS), 'epochs', 'batchSize', 'gradAccum', 'seqLen', 'learningRate', 'schedule', 'warmupSteps',
    'weightDecay', 'maxGradNorm', 'rank', 'alpha', 'dropout', 'targets', 'quant', 'checkpointing', 'maxSteps', 'evalInterval',
    'checkpointInterval', 'seed', 'validationFraction']);
  for (const k of Object.keys(input)) if (!known.has(k)) throw new HyperparameterError(`unknown hyperparameter '${k}' (known: ${[...known].join(', ')})`);

  // --- validation split
  let validationFraction: number;
  if (isAuto(input.validationFraction)) {
    if (ctx.validationSize) {
      validationFraction = 0;
      ex.push(`validationFraction: 0 — a separate validation set of ${ctx.validationSize} examples is given`);
    } else if (n >= 50) {
      validationFraction = 0.1;
      ex.push(`validationFraction: 0.1 — ${n} examples (≥ 50): hold out 10% to measure generalization`);
    } else {
      validationFraction = 0;
      ex.push(`validationFraction: 0 — only ${n} examples (< 50): all of them are used for training`);
    }
  } else validationFraction = checkNum('validationFraction', input.validationFraction, 0, 1, false, true);
  const held = validationFraction > 0 ? Math.min(n - 1, Math.max(1, Math.round(validationFraction * n))) : 0;
  const trainSize = n - held;
  if (trainSize < 1) throw new HyperparameterError(`validationFraction ${validationFraction} leaves no training example out of ${n}`);

  // --- sequence length
  let seqLen: number;
  if (isAuto(input.seqLen)) {
    const cap = Math.min(cfg.maxPos, 2048);
    seqLen = Math.max(8, Math.min(cap, Math.ceil(len.max / 8) * 8));
    ex.push(len.max > cap
      ? `seqLen: ${seqLen} — the longest example (${len.max} tokens) exceeds the cap min(model max positions ${cfg.maxPos}, 2048): longer examples are cut`
      : `seqLen: ${seqLen} — the longest example (${len.max} tokens) rounded up to a multiple of 8`);
  } else {
    seqLen = checkInt('seqLen', input.seqLen, 2, cfg.maxPos);
  }

  // --- base quantization
  let quant: QFormat;
  if (isAuto(input.quant)) {
    const base = (f: QFormat) => planMemory(cfg, { ...probeHp(cfg, seqLen), quant: f }, limits).bytes.baseWeights;
    const share = limits.budgetBytes * 0.5;
    quant = (['f32', 'f16', 'q8', 'q4'] as QFormat[]).find((f) => base(f) <= share) ?? 'q4';
    ex.push(quant === 'f32'
      ? `quant: f32 — the base weights (${mib(base('f32'))}) fit in half the memory budget (${mib(limits.budgetBytes)}) unquantized`
      : `quant: ${quant} — f32 base weights (${mib(base('f32'))}) would take over half the memory budget (${mib(limits.budgetBytes)}); ${quant} takes ${mib(base(quant))}`);
  } else {
    if (!['f32', 'f16', 'q8', 'q4'].includes(input.quant as string)) throw new HyperparameterError(`quant must be f32, f16, q8 or q4 (got ${JSON.stringify(input.quant)})`);
    quant = input.quant as QFormat;
  }

  // --- LoRA
  let targets: LoraTarget[];
  if (isAuto(input.targets)) {
    targets = [...LORA_TARGETS];
    ex.push('targets: q,k,v,o,gate,up,down — adapting every linear projection works best for a given rank (QLoRA)');
  } else {
    if (!Array.isArray(input.targets) || !input.targets.length) throw new HyperparameterError(`targets must be a non-empty list of ${LORA_TARGETS.join(', ')}`);
    for (const t of input.targets) if (!LORA_TARGETS.includes(t)) throw new HyperparameterError(`unknown LoRA target '${t}' (known: ${LORA_TARGETS.join(', ')})`);
    targets = LORA_TARGETS.filter((t) => input.targets!.includes(t));
  }
  const maxRank = Math.min(...targets.map((t) => Math.min(...targetShape(cfg, t))));
  let rank: number;
  if (isAuto(input.rank)) {
    rank = Math.min(n > 5000 ? 16 : 8, maxRank);
    ex.push(`rank: ${rank} — ${n > 5000 ? `a large dataset (${n} > 5000 examples) can use more adapter capacity` : `8 suits datasets up to 5000 examples`}${rank < 8 ? ` (capped by the smallest adapted dimension ${maxRank})` : ''}`);
  } else rank = checkInt('rank', input.rank, 1, maxRank);
  let alpha: number;
  if (isAuto(input.alpha)) {
    alpha = 2 * rank;
    ex.push(`alpha: ${alpha} — 2 × rank, so the adapter scale alpha/rank is 2 whatever the rank`);
  } else alpha = checkNum('alpha', input.alpha, 0, 1e6, true);
  let dropout: number;
  if (isAuto(input.dropout)) {
    dropout = trainSize < 2000 ? 0.05 : 0;
    ex.push(trainSize < 2000 ? `dropout: 0.05 — a small dataset (${trainSize} < 2000 training examples) overfits easily` : `dropout: 0 — ${trainSize} training examples regularize enough`);
  } else dropout = checkNum('dropout', input.dropout, 0, 1, false, true);

  // --- batch and accumulation
  const effTarget = trainSize < 64 ? 4 : trainSize < 1000 ? 8 : 16;
  let batchSize: number;
  if (isAuto(input.batchSize)) {
    batchSize = Math.max(1, Math.min(effTarget, pow2Floor(4096 / seqLen), pow2Floor(trainSize)));
    ex.push(`batchSize: ${batchSize} — at most ${effTarget} sequences (effective batch for ${trainSize} examples), at most 4096 tokens per micro-batch (${batchSize} × ${seqLen})`);
  } else batchSize = checkInt('batchSize', input.batchSize, 1);
  let gradAccum: number;
  if (isAuto(input.gradAccum)) {
    gradAccum = Math.max(1, Math.min(Math.ceil(effTarget / batchSize), Math.ceil(trainSize / batchSize)));
    ex.push(gradAccum > 1
      ? `gradAccum: ${gradAccum} — reaches an effective batch of ${gradAccum * batchSize} sequences per optimizer step`
      : `gradAccum: 1 — the micro-batch already is the effective batch`);
  } else gradAccum = checkInt('gradAccum', input.gradAccum, 1);

  let checkpointing: boolean;
  if (isAuto(input.checkpointing)) {
    checkpointing = false;
  } else {
    if (typeof input.checkpointing !== 'boolean') throw new HyperparameterError(`checkpointing must be true, false or 'auto'`);
    checkpointing = input.checkpointing;
  }

  // --- memory fit (may turn on checkpointing, shorten seqLen, shrink batchSize)
  const fit = fitMemory(cfg, { quant, rank, alpha, dropout, targets, batchSize, seqLen, checkpointing, gradAccum }, limits, {
    minSeqLen: Math.min(seqLen, Math.max(32, Math.ceil(len.median))),
  });
  if (!fit.ok) throw new HyperparameterError(fit.reason!);
  if (isAuto(input.checkpointing) && !fit.hp.checkpointing) ex.push('checkpointing: off — the activations fit without recomputation (faster)');
  ex.push(...fit.messages);
  ({ batchSize, seqLen, checkpointing, gradAccum } = fit.hp);

  // --- schedule length
  let epochs: number, maxSteps: number;
  const autoEpochs = () => (trainSize <= 100 ? 5 : trainSize <= 1000 ? 3 : trainSize <= 10000 ? 2 : 1);
  if (!isAuto(input.maxSteps)) {
    maxSteps = checkInt('maxSteps', input.maxSteps, 1);
    if (isAuto(input.epochs)) {
      epochs = Math.max(1, Math.ceil((maxSteps * gradAccum) / Math.ceil(trainSize / batchSize)));
      ex.push(`epochs: ${epochs} — as many passes as maxSteps ${maxSteps} needs`);
    } else {
      epochs = checkInt('epochs', input.epochs, 1);
      maxSteps = Math.min(maxSteps, stepsFor(trainSize, batchSize, gradAccum, epochs).steps);
    }
  } else {
    if (isAuto(input.epochs)) {
      epochs = autoEpochs();
      ex.push(`epochs: ${epochs} — ${trainSize} training examples (${trainSize <= 100 ? '≤ 100' : trainSize <= 1000 ? '≤ 1000' : trainSize <= 10000 ? '≤ 10000' : '> 10000'}): ${epochs} pass${epochs > 1 ? 'es' : ''}`);
    } else epochs = checkInt('epochs', input.epochs, 1);
    maxSteps = stepsFor(trainSize, batchSize, gradAccum, epochs).steps;
    ex.push(`maxSteps: ${maxSteps} — ${epochs} epoch${epochs > 1 ? 's' : ''} of ${Math.ceil(trainSize / batchSize)} micro-batches, ${gradAccum} per step`);
  }

  // --- optimizer
  let learningRate: number;
  if (isAuto(input.learningRate)) {
    learningRate = cfg.hidden < 1024 ? 1e-3 : 2e-4;
    ex.push(`learningRate: ${fmtLr(learningRate)} — ${cfg.hidden < 1024 ? `a small model (hidden ${cfg.hidden} < 1024) tolerates a larger LoRA step` : 'the usual LoRA rate for models with hidden ≥ 1024'}`);
  } else learningRate = checkNum('learningRate', input.learningRate, 0, 1, true);
  let schedule: Schedule;
  if (isAuto(input.schedule)) {
    schedule = maxSteps >= 20 ? 'cosine' : 'constant';
    ex.push(schedule === 'cosine' ? `schedule: cosine — decays smoothly to 0 over ${maxSteps} steps` : `schedule: constant — ${maxSteps} steps (< 20) are too few to decay`);
  } else {
    if (!SCHEDULES.includes(input.schedule as Schedule)) throw new HyperparameterError(`schedule must be ${SCHEDULES.join(', ')} (got ${JSON.stringify(input.schedule)})`);
    schedule = input.schedule as Schedule;
  }
  let warmupSteps: number;
  if (isAuto(input.warmupSteps)) {
    warmupSteps = maxSteps >= 20 ? Math.min(100, Math.ceil(0.05 * maxSteps)) : 0;
    ex.push(warmupSteps ? `warmupSteps: ${warmupSteps} — 5% of the run (at most 100) ramps the rate up while Adam's moments settle` : `warmupSteps: 0 — the run is too short for warmup`);
  } else warmupSteps = checkInt('warmupSteps', input.warmupSteps, 0);
  if (warmupSteps >= maxSteps && maxSteps > 1 && !isAuto(input.warmupSteps)) {
    throw new HyperparameterError(`warmupSteps ${warmupSteps} must be smaller than the run's ${maxSteps} steps`);
  }
  let weightDecay: number;
  if (isAuto(input.weightDecay)) {
    weightDecay = 0;
    ex.push('weightDecay: 0 — LoRA adapters start at B = 0 and are small; dropout regularizes instead (PEFT default)');
  } else weightDecay = checkNum('weightDecay', input.weightDecay, 0, 1);
  let maxGradNorm: number;
  if (isAuto(input.maxGradNorm)) {
    maxGradNorm = 1;
    ex.push('maxGradNorm: 1 — clipping the global gradient norm keeps early steps stable');
  } else maxGradNorm = checkNum('maxGradNorm', input.maxGradNorm, 0, 1e9);
  const adamBeta1 = isAuto(input.adamBeta1) ? DEFAULTS.adamBeta1 : checkNum('adamBeta1', input.adamBeta1, 0, 1, false, true);
  const adamBeta2 = isAuto(input.adamBeta2) ? DEFAULTS.adamBeta2 : checkNum('adamBeta2', input.adamBeta2, 0, 1, false, true);
  const adamEps = isAuto(input.adamEps) ? DEFAULTS.adamEps : checkNum('adamEps', input.adamEps, 0, 1, true);

  // --- logging cadence
  let evalInterval: number;
  const hasValid = validationFraction > 0 || !!ctx.validationSize;
  if (isAuto(input.evalInterval)) {
    evalInterval = hasValid ? Math.max(1, Math.round(maxSteps / 10)) : 0;
    ex.push(hasValid ? `evalInterval: ${evalInterval} — about 10 validation passes over the run` : 'evalInterval: 0 — no validation set');
  } else evalInterval = checkInt('evalInterval', input.evalInterval, 0);
  let checkpointInterval: number;
  if (isAuto(input.checkpointInterval)) {
    checkpointInterval = Math.min(200, Math.max(10, Math.round(maxSteps / 10)));
    ex.push(`checkpointInterval: ${checkpointInterval} — about 10 checkpoints per run (10..200 steps apart), plus one at each epoch end`);
  } else checkpointInterval = checkInt('checkpointInterval', input.checkpointInterval, 0);
  let seed: number;
  if (isAuto(input.seed)) {
    seed = 42;
    ex.push('seed: 42 — fixed, so the same settings reproduce the same run; change it to vary init, dropout and data order');
  } else seed = checkInt('seed', input.seed, 0, 0xffffffff);

  const resolved: Hyperparameters = {
    epochs, batchSize, gradAccum, seqLen, learningRate, schedule, warmupSteps, weightDecay, maxGradNorm, adamBeta1, adamBeta2, adamEps,
    rank, alpha, dropout, targets, quant, checkpointing, maxSteps, evalInterval, checkpointInterval, seed, validationFraction,
  };
  return { resolved, explanations: ex, plan: fit.plan, trainSize };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Minimal settings to price the base weights alone. */
function probeHp(_cfg: LlamaConfig, seqLen: number) {
  return { rank: 1, alpha: 1, dropout: 0, targets: [] as LoraTarget[], batchSize: 1, seqLen, checkpointing: true, gradAccum: 1 };
}


/** The LoRA config of a resolved set (for LlamaModel). */
export function loraConfigOf(hp: Pick<Hyperparameters, 'rank' | 'alpha' | 'dropout' | 'targets'>): LoraConfig {
  return { rank: hp.rank, alpha: hp.alpha, dropout: hp.dropout, targets: [...hp.targets] };
}

/**
 * Learning rate of optimizer step t (1-based) of a `maxSteps` run: linear warmup t/W·lr for
 * t ≤ W, then constant, or a linear / cosine decay over the remaining steps that starts at lr at
 * step W+1 and ends one step short of 0 (the last step still learns).
 */
export function learningRateAt(t: number, hp: Pick<Hyperparameters, 'learningRate' | 'schedule' | 'warmupSteps' | 'maxSteps'>): number {
  const lr = hp.learningRate, W = hp.warmupSteps, total = hp.maxSteps;
  if (t < 1) return 0;
  if (W > 0 && t <= W) return (lr * t) / W;
  if (hp.schedule === 'constant') return lr;
  const span = Math.max(1, total - W);
  const p = Math.min(1, Math.max(0, (t - W - 1) / span));
  return hp.schedule === 'linear' ? lr * (1 - p) : lr * 0.5 * (1 + Math.cos(Math.PI * p));
}
