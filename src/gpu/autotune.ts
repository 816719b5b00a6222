// Per-adapter kernel variant selection: a short timed trial of each candidate at first use, the
// winner cached by adapter identity (vendor / architecture / device / description) + kernel +
// shape class, so later runs (another process, a page reload) do no trial.
// Caches: IndexedDB (idb-keyval, database `whittle-autotune`) in a browser or worker; a JSON file
// in Node (WHITTLE_AUTOTUNE_FILE, else $XDG_CACHE_HOME/whittle/autotune.json, else
// ~/.cache/whittle/autotune.json); in-memory (tests, or where neither is available).
// Timing: GPU timestamp queries when the adapter has timestamp-query (Gpu.startProfile), else wall
// time around queue.onSubmittedWorkDone; one warm-up run (in a validation / out-of-memory error
// scope: a candidate that errors or throws is excluded), then `reps` timed runs per candidate,
// interleaved across candidates (background load hits them alike), median; the lowest median
// wins, ties go to the earlier candidate, and the first candidate (the default) keeps the win
// unless another beats it by more than `margin` (5%: near-ties on a loaded machine do not flip).
// Candidates far shorter than the timers' grain run several times per timed window (windowMs: the
// count doubles until the first candidate's work in one window takes max(2 ms, 4 × the wall clock's
// floor)), and such windows are timed by the wall clock less that floor (an empty submission's
// wait): on a real GPU a kernel takes microseconds while Dawn quantizes timestamps to 65.5 µs and
// a completion wait takes ~1.2 ms (NVIDIA H100, measured) — one-run trials there picked at random.
// After the first round, candidates slower than 2.5× the best are not timed again, and no round
// starts after `budgetMs` (3 s). If every candidate fails, the first one is returned and nothing
// is cached.
// On the CPU drivers (lavapipe, SwiftShader) the kernels run on the host's cores, so other load
// on the machine is noise in either timing; the median and the margin damp it.
// It is not: a search over parameters (the candidates are given), nor called inside a step (it
// submits and awaits).
import { createStore, get as idbGet, set as idbSet } from 'idb-keyval';
import type { Gpu, GpuInfo } from './device.ts';

export interface TuneCandidate {
  name: string;
  /** Record the kernel's work once (dispatches into gpu's encoder; chooseVariant submits). */
  run: () => void;
}

/** What the cache holds per (adapter, kernel, shape class). */
export interface TuneRecord {
  /** the winner */
  variant: string;
  /** the candidate names of the trial (a different set later means: tune again) */
  candidates: string[];
  /** median ms per candidate (absent: failed or dropped) */
  ms: Record<string, number>;
  /** why a candidate was excluded */
  failed?: Record<string, string>;
  method: 'timestamp' | 'wall';
  /** runs of each candidate per timed window (absent: 1) */
  runsPerWindow?: number;
  /** the wall clock's floor subtracted from each wall-timed window (ms; an empty submission's wait) */
  floorMs?: number;
  /** ISO time of the trial */
  at: string;
}

export interface TuneCache {
  readonly kind: string;
  get(key: string): Promise<TuneRecord | undefined>;
  set(key: string, rec: TuneRecord): Promise<void>;
}

export interface TuneOptions {
  /** default: defaultTuneCache() */
  cache?: TuneCache;
  /** timed runs per candidate (default 5) */
  reps?: number;
  /**
   * Time budget of the timed rounds in ms (default 3000): after a round that ends past it no
   * further round starts (at least one timed run per candidate always happens). Keeps trials short
   * on slow adapters (SwiftShader: about a second per 256×576×1536 matmul on a loaded machine).
   */
  budgetMs?: number;
  /** ignore a cached choice and run the trial again (the new result replaces it) */
  force?: boolean;
  /** 'auto' (default): timestamps when the adapter has them, else wall time */
  timing?: 'auto' | 'timestamp' | 'wall';
  /**
   * Shortest timed window in ms (default 2; 0: one run per window). Candidates much shorter than the
   * timers' grain — a real GPU runs a decode matvec in microseconds, Dawn quantizes timestamps to
   * 65.5 µs (NVIDIA, Node) and a wall-clock wait carries ~0.1 ms of submit latency — run several times
   * per timed window (the count doubled until the first candidate's window lasts this long by the
   * wall clock), and such windows are timed by the wall clock.
   */
  windowMs?: number;
  /**
   * The first candidate (the default) keeps the win unless another is faster by more than this
   * fraction of its median (default 0.05): near-ties on a noisy machine do not flip the choice.
   */
  margin?: number;
  /** progress / result lines */
  log?: (line: string) => void;
}

/** Cap on TuneOptions.windowMs's repetition (a candidate recorded this many times per window at most). */
const MAX_RUNS_PER_WINDOW = 1024;

/** Counters of chooseVariant in this process (tests, diagnostics). */
export const autotuneStats = { trials: 0, hits: 0, failures: 0 };

/** The adapter identity a choice is cached under. */
export function adapterKey(info: Pick<GpuInfo, 'vendor' | 'architecture' | 'device' | 'description'>): string {
  return [info.vendor, info.architecture, info.device, info.description].map((s) => (s || '?').replace(/\|/g, '/')).join('|');
}

/** Full cache key: adapter | kernel | shape class. */
export function tuneCacheKey(info: Pick<GpuInfo, 'vendor' | 'architecture' | 'device' | 'description'>, kernel: string, shapeClass: string): string {
  return `${adapterKey(info)}|${kernel}|${shapeClass}`;
}

// ---- caches ----------------------------------------------------------------------------------

/** In-memory cache (tests; environments without IndexedDB or a file system). */
export class MemoryTuneCache implements TuneCache {
  readonly kind = 'memory';
  readonly map = new Map<string, TuneRecord>();
  async get(key: string): Promise<TuneRecord | undefined> {
    return this.map.get(key);
  }
  async set(key: string, rec: TuneRecord): Promise<void> {
    this.map.set(key, rec);
  }
}

/** IndexedDB cache via idb-keyval (browser, worker; or Node with fake-indexeddb). */
export function idbTuneCache(dbName = 'whittle-autotune'): TuneCache {
  let store: ReturnType<typeof createStore> | null = null;
  const s = () => (store ??= createStore(dbName, 'records'));
  return {
    kind: `indexeddb:${dbName}`,
    get: async (key) => (await idbGet<TuneRecord>(key, s())) ?? undefined,
    set: (key, rec) => idbSet(key, rec, s()),
  };
}

interface TuneFile {
  version: 1;
  entries: Record<string, TuneRecord>;
}

/** The CLI's cache file: WHITTLE_AUTOTUNE_FILE, else $XDG_CACHE_HOME/whittle/autotune.json, else ~/.cache/whittle/autotune.json. */
export function defaultTuneFile(): string {
  const env = typeof process !== 'undefined' ? process.env : {};
  if (env.WHITTLE_AUTOTUNE_FILE) return env.WHITTLE_AUTOTUNE_FILE;
  const base = env.XDG_CACHE_HOME || (env.HOME ? `${env.HOME}/.cache` : '.cache');
  return `${base}/whittle/autotune.json`;
}

/**
 * JSON file cache (Node). Read once, lazily; each set re-reads the file and merges before writing
 * (another process may have added entries), written to a temp file and renamed. A missing or
 * unreadable file is an empty cache; a failed write is reported through `log` and the choice
 * kept in memory.
 */
export function fileTuneCache(path = defaultTuneFile(), log: (line: string) => void = () => {}): TuneCache {
  let mem: Record<string, TuneRecord> | null = null;
  const load = async (): Promise<Record<string, TuneRecord>> => {
    const fs = await import('node:fs/promises');
    try {
      const j = JSON.parse(await fs.readFile(path, 'utf8')) as TuneFile;
      return j && j.version === 1 && j.entries && typeof j.entries === 'object' ? j.entries : {};
    } catch {
      return {};
    }
  };
  return {
    kind: `file:${path}`,
    async get(key) {
      mem ??= await load();
      return mem[key];
    },
    async set(key, rec) {
      const fs = await import('node:fs/promises');
      mem = { ...(mem ?? {}), ...(await load()), [key]: rec };
      const body: TuneFile = { version: 1, entries: mem };
      try {
        const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
        if (dir) await fs.mkdir(dir, { recursive: true });
        const tmp = `${path}.${process.pid}.tmp`;
        await fs.writeFile(tmp, JSON.stringify(body, null, 1) + '\n');
        await fs.rename(tmp, path);
      } catch (e) {
        log(`autotune: could not write ${path} (${(e as Error).message}); the choice is kept for this process only`);
      }
    },
  };
}

let defaultCache: TuneCache | null = null;

/** The cache chooseVariant uses without opts.cache: a file in Node, IndexedDB in a browser / worker, else memory. */
export function defaultTuneCache(): TuneCache {
  if (!defaultCache) {
    const isNode = typeof process !== 'undefined' && !!process.versions?.node;
    if (isNode) defaultCache = fileTuneCache();
    else if (typeof indexedDB !== 'undefined') defaultCache = idbTuneCache();
    else defaultCache = new MemoryTuneCache();
  }
  return defaultCache;
}

/** Replace the default cache (null: back to the environment's default). */
export function setDefaultTuneCache(cache: TuneCache | null): void {
  defaultCache = cache;
}

// ---- the trial ---------------------------------------------------------------------------------

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Run `fn` once inside validation + out-of-memory error scopes; the error message, or null. */
async function tryRun(gpu: Gpu, fn: () => void): Promise<string | null> {
  const dev = gpu.device;
  dev.pushErrorScope('out-of-memory');
  dev.pushErrorScope('validation');
  let thrown: string | null = null;
  try {
    fn();
  } catch (e) {
    thrown = (e as Error)?.message ?? String(e);
  }
  try {
    gpu.submit();
  } catch (e) {
    thrown ??= (e as Error)?.message ?? String(e);
  }
  const v = await dev.popErrorScope();
  const m = await dev.popErrorScope();
  if (thrown) return thrown;
  if (v) return `validation error: ${v.message}`;
  if (m) return `out of memory: ${m.message}`;
  try {
    await gpu.done({ relaxed: true });
  } catch (e) {
    return gpu.lost ?? ((e as Error)?.message ?? String(e));
  }
  return gpu.lost;
}

/** GPU ms of one run: timestamp sum over its dispatches, or wall time to completion. */
async function timeOnce(gpu: Gpu, fn: () => void, useTimestamps: boolean): Promise<number> {
  if (useTimestamps && gpu.startProfile()) {
    fn();
    const prof = await gpu.stopProfile();
    let ms = 0;
    for (const v of prof.values()) ms += v.ms;
    if (ms > 0 && Number.isFinite(ms)) return ms;
  }
  const t0 = performance.now();
  fn();
  await gpu.done({ relaxed: true }); // as training steps wait (Gpu.settle)
  return performance.now() - t0;
}

/**
 * The name of the fastest candidate for `kernel` at `shapeClass` on this adapter: the cached
 * choice when there is one (for the same candidate names), else a short timed trial whose result
 * is cached. Candidates run in the order given; the first is the fallback.
 */
export async function chooseVariant(gpu: Gpu, kernel: string, shapeClass: string, candidates: TuneCandidate[], opts: TuneOptions = {}): Promise<string> {
  if (candidates.length === 0) throw new Error(`chooseVariant ${kernel}: no candidates`);
  const names = candidates.map((c) => c.name);
  if (new Set(names).size !== names.length) throw new Error(`chooseVariant ${kernel}: duplicate candidate names (${names.join(', ')})`);
  const log = opts.log ?? (() => {});
  const cache = opts.cache ?? defaultTuneCache();
  const key = tuneCacheKey(gpu.info, kernel, shapeClass);
  if (!opts.force) {
    let rec: TuneRecord | undefined;
    try {
      rec = await cache.get(key);
    } catch (e) {
      log(`autotune: cache ${cache.kind} unreadable (${(e as Error).message}); tuning again`);
    }
    if (rec && names.includes(rec.variant) && sameSet(rec.candidates, names)) {
      autotuneStats.hits++;
      return rec.variant;
    }
  }
  if (candidates.length === 1) return names[0];
  autotuneStats.trials++;
  if (gpu.lost) throw new Error(gpu.lost);
  gpu.submit(); // whatever the caller recorded is not ours to time
  const useTs = opts.timing === 'wall' ? false : opts.timing === 'timestamp' ? true : gpu.info.features.timestamp;
  const failed: Record<string, string> = {};
  let alive: TuneCandidate[] = [];
  for (const c of candidates) {
    const err = await tryRun(gpu, c.run); // warm-up: compiles the pipeline, first-touch of buffers
    if (err) {
      failed[c.name] = err;
      autotuneStats.failures++;
      log(`autotune ${kernel} ${shapeClass}: ${c.name} excluded (${err.split('\n')[0]})`);
    } else alive.push(c);
  }
  if (gpu.lost) throw new Error(gpu.lost);
  if (alive.length === 0) {
    log(`autotune ${kernel} ${shapeClass}: every candidate failed; using ${names[0]} (not cached)`);
    return names[0];
  }
  const reps = Math.max(1, opts.reps ?? 5);
  const budget = opts.budgetMs ?? 3000;
  // runs per timed window: doubled until the first candidate's work in one window (its wall time less
  // the wall clock's floor: an empty submission's wait, ~1.2 ms with Dawn on NVIDIA) lasts
  // max(windowMs, 4 × floor); the floor is subtracted from every wall-timed window
  const windowMs = opts.windowMs ?? 2;
  let inner = 1, floor = 0;
  if (windowMs > 0) {
    const f: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      gpu.submit();
      await gpu.done({ relaxed: true });
      f.push(performance.now() - t);
    }
    floor = median(f);
    const target = Math.max(windowMs, 4 * floor);
    while (inner < MAX_RUNS_PER_WINDOW) {
      const t = performance.now();
      for (let i = 0; i < inner; i++) alive[0].run();
      await gpu.done({ relaxed: true });
      if (performance.now() - t - floor >= target) break;
      inner *= 2;
    }
  }
  const windowed = useTs && inner === 1; // one run per window: timestamps where the adapter has them
  const window = (c: TuneCandidate) => () => {
    for (let i = 0; i < inner; i++) c.run();
  };
  const times = new Map<string, number[]>(alive.map((c) => [c.name, []]));
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) {
    for (const c of alive) {
      const w = await timeOnce(gpu, window(c), windowed);
      times.get(c.name)!.push((windowed ? w : Math.max(w - floor, 1e-6)) / inner);
    }
    if (performance.now() - t0 > budget) break;
    // after the first round, drop candidates over 2.5× the best (saves the slow ones' reps)
    if (r === 0 && alive.length > 1) {
      const best = Math.min(...alive.map((c) => times.get(c.name)![0]));
      alive = alive.filter((c) => times.get(c.name)![0] <= 2.5 * best);
    }
  }
  const ms: Record<string, number> = {};
  for (const [n, t] of times) ms[n] = median(t);
  let win = '';
  for (const n of names) if (n in ms && (win === '' || ms[n] < ms[win])) win = n;
  const first = names[0];
  if (win !== first && first in ms && ms[win] >= ms[first] * (1 - (opts.margin ?? 0.05))) win = first;
  const rec: TuneRecord = { variant: win, candidates: names, ms, method: windowed ? 'timestamp' : 'wall', at: new Date().toISOString() };
  if (inner > 1) rec.runsPerWindow = inner;
  if (!windowed && floor > 0) rec.floorMs = floor;
  if (Object.keys(failed).length) rec.failed = failed;
  log(`autotune ${kernel} ${shapeClass}: ${win} (${Object.entries(ms).map(([n, t]) => `${n} ${t.toFixed(3)} ms`).join(', ')}; ${rec.method}${inner > 1 ? `, ${inner} runs per window` : ''})`);
  try {
    await cache.set(key, rec);
  } catch (e) {
    log(`autotune: could not store the choice in ${cache.kind} (${(e as Error).message})`);
  }
  return win;
}

function sameSet(a: string[] | undefined, b: string[]): boolean {
  return !!a && a.length === b.length && b.every((x) => a.includes(x));
}
