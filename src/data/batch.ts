// Batching for training and evaluation: a seeded, deterministic shuffle per epoch (the order of
// epoch e depends only on (seed, e, dataset size)), right-padded (B, T) u32 batches in the engine's
// conventions (docs/ENGINE.md: ids, targets with IGNORE = 0xFFFFFFFF, valid, pos), a resumable
// iterator whose state {epoch, index} goes into a checkpoint, and the validation split.
//
// Padding choice: each batch is padded on the RIGHT to its longest row (optionally rounded up to
// a multiple, or always to maxSeqLen with pad: 'max'). Right padding keeps every real token at
// pos = t, so rotary positions match generation, and with causal attention a pad (always after
// the real tokens) is never visible to a real token; valid = 0 and target IGNORE drop pads from
// attention keys and from the loss. Padding to the batch's longest row (not to maxSeqLen) saves
// compute when examples are short. Pad ids are `padId` (default 0, any in-vocab id works).
// The last batch of an epoch holds the remaining rows (B smaller) unless dropLast is set.
// It is not: tokenization (tokenize.ts) nor the training loop.
import { computeStats, type EpochCost } from './stats.ts';
import { IGNORE, type Batch, type DataState, type Dataset, type TokenizedExample } from './types.ts';

// ---------------------------------------------------------------- deterministic randomness

/** murmur3's 32-bit finalizer: a good integer hash. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash of several 32-bit words (order matters). */
export function hash32(...words: number[]): number {
  let h = 0x9e3779b9;
  for (const w of words) h = fmix32((h ^ fmix32(w >>> 0)) + 0x7f4a7c15);
  return h >>> 0;
}

import { mulberry32 } from '../rng.ts';
export { mulberry32 };

/** Seeded Fisher–Yates permutation of 0..n-1. */
export function permutation(n: number, seed: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const r = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = p[i]; p[i] = p[j]; p[j] = t;
  }
  return p;
}

const SALT_SHUFFLE = 0x5348; // 'SH'
const SALT_SPLIT = 0x5350; // 'SP'

/** The order of epoch `epoch`: a function of (n, seed, epoch) only. shuffle=false: 0..n-1. */
export function epochOrder(n: number, seed: number, epoch: number, shuffle = true): Uint32Array {
  if (!shuffle) return Uint32Array.from({ length: n }, (_, i) => i);
  return permutation(n, hash32(SALT_SHUFFLE, seed, epoch));
}

// ---------------------------------------------------------------- batches

export interface BatchOptions {
  batchSize: number;
  /** shuffle seed (u32) */
  seed?: number;
  /** default true; false: file order every epoch (evaluation) */
  shuffle?: boolean;
  /** skip the last, smaller batch of each epoch (default false) */
  dropLast?: boolean;
  /** 'longest' (default): T = longest row of the batch; 'max': T = dataset maxSeqLen */
  pad?: 'longest' | 'max';
  /** round T up to a multiple of this (default 1), never beyond maxSeqLen */
  padMultiple?: number;
  /** id written at padding positions (default 0) */
  padId?: number;
  /** the iterator returns null once this many epochs are done (default: never) */
  maxEpochs?: number;
}

type Source = Dataset | TokenizedExample[];
const examplesOf = (s: Source) => (Array.isArray(s) ? s : s.examples);
const maxLenOf = (s: Source) => (Array.isArray(s) ? s.reduce((m, e) => Math.max(m, e.ids.length), 0) : s.maxSeqLen);

/**
 * Builds one right-padded batch from dataset rows. targets[b,t] = ids[b,t+1] when token t+1 is
 * trained, else IGNORE; the last real token and every pad have IGNORE.
 */
export function makeBatch(
  src: Source,
  rows: ArrayLike<number>,
  opts: { T?: number; padMultiple?: number; maxSeqLen?: number; padId?: number } = {},
): Omit<Batch, 'state' | 'next'> {
  const ex = examplesOf(src);
  const B = rows.length;
  if (!B) throw new Error('makeBatch: no rows');
  let longest = 0;
  for (let b = 0; b < B; b++) longest = Math.max(longest, ex[rows[b]].ids.length);
  let T = opts.T ?? longest;
  const m = opts.padMultiple ?? 1;
  if (opts.T === undefined && m > 1) {
    T = Math.ceil(T / m) * m;
    if (opts.maxSeqLen !== undefined) T = Math.max(longest, Math.min(T, opts.maxSeqLen));
  }
  if (T < longest) throw new Error(`makeBatch: T=${T} is shorter than the longest row (${longest} tokens)`);
  T = Math.max(T, 1);
  const padId = opts.padId ?? 0;
  const ids = new Uint32Array(B * T).fill(padId);
  const targets = new Uint32Array(B * T).fill(IGNORE);
  const valid = new Uint32Array(B * T);
  const pos = new Uint32Array(B * T);
  let trainedTokens = 0, realTokens = 0;
  const rowList: number[] = [], lines: number[] = [];
  for (let b = 0; b < B; b++) {
    const e = ex[rows[b]];
    const L = e.ids.length, o = b * T;
    rowList.push(rows[b]);
    lines.push(e.line);
    ids.set(e.ids, o);
    for (let t = 0; t < T; t++) pos[o + t] = t;
    valid.fill(1, o, o + L);
    realTokens += L;
    for (let t = 0; t + 1 < L; t++) {
      if (e.trained[t + 1]) { targets[o + t] = e.ids[t + 1]; trainedTokens++; }
    }
  }
  return { B, T, ids, targets, valid, pos, trainedTokens, realTokens, rows: rowList, lines };
}

function checkState(s: DataState, n: number): void {
  if (!Number.isInteger(s.epoch) || s.epoch < 0 || !Number.isInteger(s.index) || s.index < 0 || s.index > n) {
    throw new Error(`invalid data state {epoch: ${s.epoch}, index: ${s.index}} for a dataset of ${n} examples`);
  }
}

/**
 * Resumable training batches. `next()` returns the batch starting at `state` and advances;
 * save `batch.next` (or `iterator.state`) in a checkpoint and pass it back to resume the exact
 * same sequence of batches (same options and dataset; see datasetFingerprint).
 */
export class BatchIterator {
  private ex: TokenizedExample[];
  private order: Uint32Array | null = null;
  private orderEpoch = -1;
  private st: DataState;
  readonly opts: Required<Omit<BatchOptions, 'maxEpochs'>> & { maxEpochs: number };
  readonly maxSeqLen: number;

  constructor(src: Source, opts: BatchOptions, state: DataState = { epoch: 0, index: 0 }) {
    this.ex = examplesOf(src);
    const n = this.ex.length;
    if (!n) throw new Error('BatchIterator: the dataset has no examples');
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new Error(`BatchIterator: batchSize must be a positive integer (got ${opts.batchSize})`);
    if (opts.dropLast && opts.batchSize > n) throw new Error(`BatchIterator: batchSize ${opts.batchSize} > ${n} examples with dropLast: no batch would ever be produced`);
    this.maxSeqLen = maxLenOf(src);
    this.opts = {
      batchSize: opts.batchSize,
      seed: (opts.seed ?? 0) >>> 0,
      shuffle: opts.shuffle ?? true,
      dropLast: opts.dropLast ?? false,
      pad: opts.pad ?? 'longest',
      padMultiple: opts.padMultiple ?? 1,
      padId: opts.padId ?? 0,
      maxEpochs: opts.maxEpochs ?? Infinity,
    };
    checkState(state, n);
    this.st = this.normalize({ ...state });
  }

  /** Where the next batch starts (a copy). */
  get state(): DataState {
    return { ...this.st };
  }

  /** Full batches per epoch (plus one partial unless dropLast). */
  get batchesPerEpoch(): number {
    const n = this.ex.length, B = this.opts.batchSize;
    return this.opts.dropLast ? Math.floor(n / B) : Math.ceil(n / B);
  }

  private normalize(s: DataState): DataState {
    const n = this.ex.length;
    if (s.index >= n || (this.opts.dropLast && s.index + this.opts.batchSize > n)) return { epoch: s.epoch + 1, index: 0 };
    return s;
  }

  /** The dataset order of an epoch (cached for the current one). */
  orderOf(epoch: number): Uint32Array {
    if (this.orderEpoch !== epoch || !this.order) {
      this.order = epochOrder(this.ex.length, this.opts.seed, epoch, this.opts.shuffle);
      this.orderEpoch = epoch;
    }
    return this.order;
  }

  next(): Batch | null {
    const s = this.st;
    if (s.epoch >= this.opts.maxEpochs) return null;
    const order = this.orderOf(s.epoch);
    const end = Math.min(order.length, s.index + this.opts.batchSize);
    const rows = order.subarray(s.index, end);
    const b = makeBatch(this.ex, rows, {
      T: this.opts.pad === 'max' ? this.maxSeqLen : undefined,
      padMultiple: this.opts.padMultiple,
      maxSeqLen: this.maxSeqLen,
      padId: this.opts.padId,
    });
    const next = this.normalize({ epoch: s.epoch, index: end });
    this.st = next;
    return { ...b, state: { ...s }, next: { ...next } };
  }

  [Symbol.iterator](): Iterator<Batch> {
    return { next: () => { const b = this.next(); return b ? { value: b, done: false } : { value: undefined, done: true }; } };
  }
}

/** Evaluation batches: every example once, in file order, no shuffle. */
export function* evalBatches(src: Source, opts: { batchSize: number; padMultiple?: number; padId?: number; pad?: 'longest' | 'max' }): Generator<Batch> {
  const it = new BatchIterator(src, { ...opts, shuffle: false, maxEpochs: 1 });
  for (const b of it) yield b;
}

/** The cost of one epoch with these options (exact: it walks the epoch's batches, without building them). */
export function epochCost(src: Source, opts: BatchOptions, epoch = 0): EpochCost {
  const ex = examplesOf(src);
  const n = ex.length, B = opts.batchSize;
  const maxSeqLen = maxLenOf(src);
  const order = epochOrder(n, (opts.seed ?? 0) >>> 0, epoch, opts.shuffle ?? true);
  const m = opts.padMultiple ?? 1;
  const cost: EpochCost = { batches: 0, examples: 0, tokens: 0, paddedTokens: 0, trainedTokens: 0 };
  for (let i = 0; i < n; i += B) {
    const rows = order.subarray(i, Math.min(n, i + B));
    if (opts.dropLast && rows.length < B) break;
    let longest = 0;
    for (const r of rows) {
      const e = ex[r];
      longest = Math.max(longest, e.ids.length);
      cost.tokens += e.ids.length;
      cost.trainedTokens += e.trainedCount;
    }
    let T = opts.pad === 'max' ? maxSeqLen : longest;
    if (opts.pad !== 'max' && m > 1) T = Math.max(longest, Math.min(Math.ceil(T / m) * m, maxSeqLen));
    cost.batches++;
    cost.examples += rows.length;
    cost.paddedTokens += rows.length * T;
  }
  return cost;
}

// ---------------------------------------------------------------- datasets derived from datasets

function subset(ds: Dataset, idx: number[], split: Dataset['split']): Dataset {
  const examples = idx.map((i) => ds.examples[i]);
  return { ...ds, examples, split, stats: computeStats(examples, ds.maxSeqLen, ds.stats.histogram.counts.length || 20) };
}

/**
 * Seeded train/validation split: round(fraction·n) examples (at least 1, leaving at least 1 for
 * training) go to `valid`; both halves keep file order. Same (dataset, fraction, seed) → same split.
 */
export function splitDataset(ds: Dataset, opts: { fraction: number; seed?: number }): { train: Dataset; valid: Dataset } {
  const n = ds.examples.length;
  const f = opts.fraction;
  if (!(f > 0 && f < 1)) throw new Error(`splitDataset: fraction must be in (0, 1) (got ${f})`);
  if (n < 2) throw new Error(`splitDataset: need at least 2 examples to split (have ${n})`);
  const seed = (opts.seed ?? 0) >>> 0;
  const k = Math.min(n - 1, Math.max(1, Math.round(f * n)));
  const p = permutation(n, hash32(SALT_SPLIT, seed));
  const inValid = new Uint8Array(n);
  for (let i = 0; i < k; i++) inValid[p[i]] = 1;
  const tr: number[] = [], va: number[] = [];
  for (let i = 0; i < n; i++) (inValid[i] ? va : tr).push(i);
  return {
    train: subset(ds, tr, { part: 'train', fraction: f, seed }),
    valid: subset(ds, va, { part: 'valid', fraction: f, seed }),
  };
}

function exampleKey(e: TokenizedExample): string {
  return `${e.ids.join(',')}|${e.trained.join('')}`;
}

/** Validation examples identical (same tokens and mask) to a training example: leakage. */
export function findOverlap(train: Source, valid: Source): { validLine: number; trainLine: number }[] {
  const seen = new Map<string, number>();
  for (const e of examplesOf(train)) if (!seen.has(exampleKey(e))) seen.set(exampleKey(e), e.line);
  const out: { validLine: number; trainLine: number }[] = [];
  for (const e of examplesOf(valid)) {
    const t = seen.get(exampleKey(e));
    if (t !== undefined) out.push({ validLine: e.line, trainLine: t });
  }
  return out;
}

/**
 * A short hash of the dataset content (ids, masks, lines) for a checkpoint: resuming a data
 * state is only meaningful on the same dataset.
 */
export function datasetFingerprint(src: Source): string {
  let h = 0x811c9dc5;
  const mix = (x: number) => { h = Math.imul(h ^ (x >>> 0), 0x01000193) >>> 0; };
  for (const e of examplesOf(src)) {
    mix(e.line); mix(e.ids.length);
    for (let t = 0; t < e.ids.length; t++) { mix(e.ids[t]); mix(e.trained[t]); }
  }
  return h.toString(16).padStart(8, '0') + '-' + examplesOf(src).length;
}
