// Models from the Hugging Face Hub (or any server with the same URL layout), and from local files,
// cached in IndexedDB (src/store/models.ts: chunked files + a manifest that is complete only at
// the end). The result is a stored model `id`; load it with loadModel(storedModelSource(id)).
//
// URL layout: `${baseUrl}/${repo}/resolve/${revision}/${file}` (baseUrl default
// https://huggingface.co; revision default 'main'). Files of a repo:
//   required  config.json, tokenizer.json, tokenizer_config.json
//   optional  generation_config.json, special_tokens_map.json (a 404 skips them)
//   weights   model.safetensors; when that is a 404, model.safetensors.index.json + every shard in
//             its weight_map
// or, when `file` names a .gguf, only that file (it carries its tokenizer and config).
//
// Protocol of downloadModel():
// 1. A complete stored model with this id is returned at once: no network access at all (offline).
// 2. Resolve: the small JSON files are fetched whole (kept in memory); the weight files' sizes come
//    from HEAD (x-linked-size / x-linked-etag of the Hub's LFS redirect when visible — Node sees
//    it, browsers do not — which also gives a sha256 that completeModel verifies; else the
//    followed HEAD's Content-Length; else a `Range: bytes=0-0` GET's Content-Range).
// 3. ensureSpace() for the bytes still missing, then beginModel() (keeps a matching partial
//    download; a partial download of a different layout, i.e. the repo changed, is replaced).
// 4. Each file from its resumeOffset(): a `Range: bytes=<offset>-` GET whose streaming body goes
//    to writeModelFileStream (an interruption loses at most the chunk being filled). A server that
//    ignores Range (200) is handled by skipping the bytes already stored.
// 5. completeModel() (checks every chunk, and sha256 where known) marks the model complete LAST.
// A 404 on a required file, a connection cut mid-file, a bad checksum: a HubError naming the file
// (and URL); what was stored stays, the manifest stays incomplete, and calling downloadModel again
// resumes. Progress: bytes done / total over all files, percent, speed and ETA. Concurrent calls
// for the same id (in one JS context) share one download.
// No DOM: fetch, ReadableStream and indexedDB only (Node ≥ 18 has fetch; tests use fake-indexeddb).
import {
  type ModelManifest, type ModelOrigin, StoreError, beginModel, chunkStatus, completeModel, ensureSpace, getModel,
  importModelFile, resumeOffset, storedModelSource, writeModelFileStream,
} from '../store/index.ts';
import { type LoadOptions, type LoadedModel, loadModel } from './load.ts';
import { SAFETENSORS_INDEX } from './safetensors.ts';

export const HUB_DEFAULT_BASE = 'https://huggingface.co';
/** Files a Hugging Face-layout model must have (a 404 is an error). */
export const HUB_REQUIRED_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json'] as const;
/** Files fetched when present (a 404 skips them). */
export const HUB_OPTIONAL_FILES = ['generation_config.json', 'special_tokens_map.json'] as const;
export const HUB_WEIGHTS = 'model.safetensors';

export type HubErrorCode =
  /** a required file (or the repo) is not there: 404 */
  | 'not-found'
  /** 401 / 403: private or gated repo (the Hub also answers 401 for a repo that does not exist) */
  | 'auth'
  /** another HTTP status */
  | 'http'
  /** the server could not be reached */
  | 'network'
  /** the connection was cut mid-file; what arrived is kept, run again to resume */
  | 'interrupted'
  /** the server's answer does not make sense (bad index, wrong size, bad Content-Range) */
  | 'invalid'
  /** a downloaded file does not match the sha256 the Hub lists; its chunks were deleted */
  | 'checksum';

export class HubError extends Error {
  constructor(
    public readonly code: HubErrorCode,
    message: string,
    /** the repo file it is about, when there is one */
    public readonly file?: string,
    public readonly url?: string,
    public readonly status?: number,
  ) {
    super(message);
    this.name = 'HubError';
  }
}

export interface HubRef {
  /** `owner/name` (e.g. HuggingFaceTB/SmolLM2-135M-Instruct) */
  repo: string;
  /** branch, tag or commit (default 'main') */
  revision?: string;
  /** download only this file (a .gguf) instead of the Hugging Face layout */
  file?: string;
}

export interface HubProgress {
  phase: 'resolving' | 'downloading' | 'verifying' | 'done';
  /** the file being fetched / verified, when there is one */
  file: string | null;
  /** bytes of `file` stored or received so far, and its size (0 when unknown) */
  fileDone: number;
  fileTotal: number;
  /** bytes over all files (including what an earlier, interrupted run stored) */
  done: number;
  total: number;
  /** 0..100 */
  percent: number;
  /** average speed of this run (null until measurable) */
  bytesPerSecond: number | null;
  /** seconds left at that speed (null until measurable) */
  etaSeconds: number | null;
}

export interface HubDownloadOptions extends HubRef {
  /** server root (default https://huggingface.co); the same URL layout is expected */
  baseUrl?: string;
  /** store id (default hubModelId(repo, revision, file)) */
  id?: string;
  /** display name (default the repo, or `repo/file`) */
  name?: string;
  /** access token for private / gated repos (sent as Authorization: Bearer) */
  token?: string;
  /** fetch to use (default globalThis.fetch) */
  fetch?: typeof fetch;
  /** bytes per stored chunk (default the store's 8 MiB) */
  chunkSize?: number;
  signal?: AbortSignal;
  /** check sha256 where the Hub reports one (default true) */
  verify?: boolean;
  onProgress?: (p: HubProgress) => void;
  /** minimum milliseconds between 'downloading' progress calls (default 100) */
  progressIntervalMs?: number;
}

export interface HubDownloadResult {
  id: string;
  manifest: ModelManifest;
  /** true when the model was already complete in the store (nothing was fetched) */
  cached: boolean;
  /** bytes fetched by this call (weights and small files) */
  fetchedBytes: number;
  /** bytes that an earlier, interrupted download had already stored */
  resumedBytes: number;
}

/** The store id of a Hub model: `hub:<repo>@<revision>[/<file>]`. */
export function hubModelId(repo: string, revision = 'main', file?: string): string {
  return `hub:${repo}@${revision}${file ? `/${file}` : ''}`;
}

/** `${base}/${repo}/resolve/${revision}/${file}`, with the revision and each path segment URL-encoded. */
export function hubFileUrl(repo: string, revision: string, file: string, base = HUB_DEFAULT_BASE): string {
  const enc = (p: string) => p.split('/').map(encodeURIComponent).join('/');
  return `${base.replace(/\/+$/, '')}/${enc(repo)}/resolve/${encodeURIComponent(revision)}/${enc(file)}`;
}

const REPO_RE = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/;

function checkRef(ref: HubRef): void {
  if (typeof ref.repo !== 'string' || !REPO_RE.test(ref.repo) || ref.repo.includes('..')) {
    throw new HubError('invalid', `'${ref.repo}' is not a Hub repo id (expected owner/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct)`);
  }
  if (ref.revision !== undefined && (typeof ref.revision !== 'string' || !ref.revision)) {
    throw new HubError('invalid', `${ref.repo}: the revision must be a non-empty branch, tag or commit`);
  }
  if (ref.file !== undefined && (!ref.file || ref.file.startsWith('/') || ref.file.split('/').includes('..'))) {
    throw new HubError('invalid', `${ref.repo}: '${ref.file}' is not a file path inside the repo`);
  }
}

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

// ---------------------------------------------------------------------------------------------
// HTTP

interface Ctx {
  repo: string;
  revision: string;
  base: string;
  fetch: typeof fetch;
  headers: Record<string, string>;
  signal?: AbortSignal;
  /** `repo@revision`, the prefix of every message */
  label: string;
}

const url = (c: Ctx, file: string) => hubFileUrl(c.repo, c.revision, file, c.base);

function isAbort(e: unknown, signal?: AbortSignal): boolean {
  return !!signal?.aborted || (e as Error)?.name === 'AbortError';
}

function causeOf(e: unknown): string {
  const err = e as Error & { cause?: unknown };
  const inner = err?.cause ? `: ${(err.cause as Error)?.message ?? String(err.cause)}` : '';
  return `${err?.message ?? String(e)}${inner}`;
}

async function request(c: Ctx, file: string, init: RequestInit): Promise<Response> {
  const u = url(c, file);
  try {
    return await c.fetch(u, { ...init, signal: c.signal, headers: { ...c.headers, ...(init.headers as Record<string, string> | undefined) } });
  } catch (e) {
    if (isAbort(e, c.signal)) throw e;
    throw new HubError('network', `${c.label}/${file}: cannot reach ${u} (${causeOf(e)}) — check the connection and the base URL, then try again`, file, u);
  }
}

/** A HubError for a non-OK response. */
function statusError(c: Ctx, file: string, r: Response, what = 'file'): HubError {
  const u = url(c, file);
  if (r.status === 404) {
    return new HubError('not-found', `${c.label}: required ${what} '${file}' was not found (404 at ${u}) — check the repo id, the revision and that the repo has this file`, file, u, 404);
  }
  if (r.status === 401 || r.status === 403) {
    return new HubError('auth', `${c.label}/${file}: access denied (${r.status} at ${u}) — the repo may not exist, or it is private or gated: check the repo id, accept its terms on the Hub, and pass an access token`, file, u, r.status);
  }
  return new HubError('http', `${c.label}/${file}: the server answered ${r.status} ${r.statusText} (${u})`, file, u, r.status);
}

/** A whole small file, or null on 404 when it is optional. */
async function getSmall(c: Ctx, file: string, required: boolean): Promise<Uint8Array | null> {
  const r = await request(c, file, {});
  if (r.status === 404 && !required) {
    await r.body?.cancel().catch(() => {});
    return null;
  }
  if (!r.ok) {
    await r.body?.cancel().catch(() => {});
    throw statusError(c, file, r);
  }
  try {
    return new Uint8Array(await r.arrayBuffer());
  } catch (e) {
    if (isAbort(e, c.signal)) throw e;
    throw new HubError('interrupted', `${c.label}/${file}: the connection was cut while fetching it (${causeOf(e)}) — try again`, file, url(c, file));
  }
}

interface Probe { size: number; sha256?: string }

function sizeHeader(v: string | null): number | null {
  if (v === null || !/^\d+$/.test(v.trim())) return null;
  const n = Number(v.trim());
  return Number.isSafeInteger(n) ? n : null;
}

function linkedSha(v: string | null): string | undefined {
  const s = v?.replace(/^W\//, '').replace(/"/g, '').trim().toLowerCase();
  return s && /^[0-9a-f]{64}$/.test(s) ? s : undefined;
}

/** Size (and sha256 when the Hub reports it) of a weight file, or null on 404. */
async function probe(c: Ctx, file: string): Promise<Probe | null> {
  // 1. HEAD without following redirects: the Hub's LFS redirect carries x-linked-size and
  //    x-linked-etag (the file's sha256). Browsers hide redirects (opaqueredirect): go on to 2.
  let r = await request(c, file, { method: 'HEAD', redirect: 'manual' });
  if (r.status === 404) return null;
  const redirected = r.type === 'opaqueredirect' || r.status === 0 || (r.status >= 300 && r.status < 400);
  if (redirected) {
    const size = sizeHeader(r.headers.get('x-linked-size'));
    if (size !== null) return { size, sha256: linkedSha(r.headers.get('x-linked-etag')) };
    // 2. HEAD, following redirects
    r = await request(c, file, { method: 'HEAD' });
    if (r.status === 404) return null;
  }
  if (r.ok) {
    const size = sizeHeader(r.headers.get('x-linked-size')) ?? (r.headers.get('content-encoding') ? null : sizeHeader(r.headers.get('content-length')));
    if (size !== null) return { size, sha256: linkedSha(r.headers.get('x-linked-etag')) };
  }
  // 3. no usable HEAD (no size; 405; a CDN URL signed for GET only answers HEAD with 403): a
  //    one-byte ranged GET, whose Content-Range names the total; its errors are the real ones
  r = await request(c, file, { headers: { Range: 'bytes=0-0', 'Accept-Encoding': 'identity' } });
  await r.body?.cancel().catch(() => {});
  if (r.status === 404) return null;
  if (r.status === 206) {
    const m = /\/(\d+)\s*$/.exec(r.headers.get('content-range') ?? '');
    if (m) return { size: Number(m[1]) };
  } else if (r.ok) {
    const size = sizeHeader(r.headers.get('content-length'));
    if (size !== null) return { size };
  } else throw statusError(c, file, r);
  throw new HubError('invalid', `${c.label}/${file}: the server does not say how big the file is (no Content-Length, no Content-Range)`, file, url(c, file));
}

// ---------------------------------------------------------------------------------------------
// Progress

class Meter {
  done = 0;
  total = 0;
  private t0 = 0;
  private fetched = 0;
  private last = 0;
  constructor(private cb: ((p: HubProgress) => void) | undefined, private interval: number) {}
  start(done: number, total: number): void {
    this.done = done;
    this.total = total;
    this.t0 = performance.now();
  }
  /** `n` more bytes arrived over the network and count towards done */
  add(n: number): void {
    this.done += n;
    this.fetched += n;
  }
  emit(phase: HubProgress['phase'], file: string | null, fileDone: number, fileTotal: number, force = false): void {
    if (!this.cb) return;
    const now = performance.now();
    if (!force && now - this.last < this.interval) return;
    this.last = now;
    const secs = (now - this.t0) / 1000;
    const bps = secs > 0.25 && this.fetched > 0 ? this.fetched / secs : null;
    const left = Math.max(0, this.total - this.done);
    this.cb({
      phase, file, fileDone, fileTotal, done: this.done, total: this.total,
      percent: this.total > 0 ? Math.min(100, (100 * this.done) / this.total) : phase === 'done' ? 100 : 0,
      bytesPerSecond: bps,
      etaSeconds: phase === 'done' ? 0 : bps ? left / bps : null,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Download

/** Downloads in flight in this JS context, by id (a second call for the same id joins the first). */
const inflight = new Map<string, Promise<HubDownloadResult>>();

/**
 * Download a model from the Hub into the store (or return it from the store, offline, when it is
 * already complete). See the header for the protocol. Throws HubError (network / HTTP / data
 * problems, naming the file) or StoreError (quota, store state); either way a later call resumes.
 */
export function downloadModel(opts: HubDownloadOptions): Promise<HubDownloadResult> {
  checkRef(opts);
  const id = opts.id ?? hubModelId(opts.repo, opts.revision ?? 'main', opts.file);
  const running = inflight.get(id);
  if (running) return running;
  const p = download(id, opts).finally(() => inflight.delete(id));
  inflight.set(id, p);
  return p;
}

async function download(id: string, opts: HubDownloadOptions): Promise<HubDownloadResult> {
  const revision = opts.revision ?? 'main';
  const source: ModelOrigin = { kind: 'hub', repo: opts.repo, revision };
  const label = `${opts.repo}@${revision}`;

  // 1. offline when complete
  const existing = await getModel(id);
  if (existing) {
    const s = existing.source;
    if (s.kind !== 'hub' || s.repo !== opts.repo || s.revision !== revision) {
      throw new StoreError('exists', `store id ${id} already holds another model (${s.kind === 'hub' ? `${s.repo}@${s.revision}` : `local ${s.name}`}); choose another id`);
    }
    if (existing.complete) {
      opts.onProgress?.({ phase: 'done', file: null, fileDone: 0, fileTotal: 0, done: 0, total: 0, percent: 100, bytesPerSecond: null, etaSeconds: 0 });
      return { id, manifest: existing, cached: true, fetchedBytes: 0, resumedBytes: 0 };
    }
  }

  const f = opts.fetch ?? globalThis.fetch?.bind(globalThis);
  if (!f) throw new HubError('network', `${label}: no fetch() in this environment`);
  const headers: Record<string, string> = {};
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  const c: Ctx = { repo: opts.repo, revision, base: opts.baseUrl ?? HUB_DEFAULT_BASE, fetch: f, headers, signal: opts.signal, label };
  const meter = new Meter(opts.onProgress, opts.progressIntervalMs ?? 100);

  // 2. resolve the file list and sizes
  meter.emit('resolving', null, 0, 0, true);
  const small = new Map<string, Uint8Array>();
  const big = new Map<string, Probe>();
  let fetchedBytes = 0;
  if (opts.file) {
    const p = await probe(c, opts.file);
    if (!p) throw new HubError('not-found', `${label}: file '${opts.file}' was not found (404 at ${url(c, opts.file)})`, opts.file, url(c, opts.file), 404);
    big.set(opts.file, p);
  } else {
    for (const name of HUB_REQUIRED_FILES) small.set(name, (await getSmall(c, name, true))!);
    for (const name of HUB_OPTIONAL_FILES) {
      const b = await getSmall(c, name, false);
      if (b) small.set(name, b);
    }
    const single = await probe(c, HUB_WEIGHTS);
    if (single) big.set(HUB_WEIGHTS, single);
    else {
      const idxBytes = await getSmall(c, SAFETENSORS_INDEX, false);
      if (!idxBytes) {
        throw new HubError('not-found', `${label}: no weights — neither '${HUB_WEIGHTS}' nor '${SAFETENSORS_INDEX}' was found (404 at ${url(c, HUB_WEIGHTS)}); only safetensors weights are supported (or name a .gguf file)`, HUB_WEIGHTS, url(c, HUB_WEIGHTS), 404);
      }
      small.set(SAFETENSORS_INDEX, idxBytes);
      let shards: string[];
      try {
        const idx = JSON.parse(new TextDecoder().decode(idxBytes)) as { weight_map?: Record<string, string> };
        if (!idx || typeof idx.weight_map !== 'object' || !idx.weight_map) throw new Error('no "weight_map" object');
        shards = [...new Set(Object.values(idx.weight_map))].sort();
        if (shards.length === 0) throw new Error('the weight_map is empty');
        for (const s of shards) {
          if (typeof s !== 'string' || !s || s.startsWith('/') || s.split('/').includes('..')) throw new Error(`bad shard name ${JSON.stringify(s)}`);
        }
      } catch (e) {
        throw new HubError('invalid', `${label}/${SAFETENSORS_INDEX}: ${(e as Error).message}`, SAFETENSORS_INDEX, url(c, SAFETENSORS_INDEX));
      }
      for (const s of shards) {
        const p = await probe(c, s);
        if (!p) throw new HubError('not-found', `${label}: shard '${s}' listed in ${SAFETENSORS_INDEX} was not found (404 at ${url(c, s)})`, s, url(c, s), 404);
        big.set(s, p);
      }
    }
    for (const b of small.values()) fetchedBytes += b.length;
  }
  const verify = opts.verify !== false;
  const files: { name: string; size: number; sha256?: string }[] = [
    ...[...small].map(([name, b]) => ({ name, size: b.length })),
    ...[...big].map(([name, p]) => ({ name, size: p.size, ...(verify && p.sha256 ? { sha256: p.sha256 } : {}) })),
  ];
  const total = files.reduce((a, x) => a + x.size, 0);

  // 3. space, then the manifest (kept when it matches a partial download)
  // a partial download keeps its chunk size unless one is asked for
  const chunkSize = opts.chunkSize ?? existing?.chunkSize;
  const init = { id, source, files, name: opts.name ?? (opts.file ? `${opts.repo}/${opts.file}` : opts.repo), chunkSize };
  let stored = 0;
  if (existing) {
    try {
      const st = await chunkStatus(id);
      const same = existing.files.length === files.length && chunkSize === existing.chunkSize &&
        existing.files.every((x, i) => x.name === files[i].name && x.size === files[i].size && (x.sha256 ?? '') === (files[i].sha256 ?? ''));
      if (same) stored = st.reduce((a, x) => a + x.storedBytes, 0);
    } catch { /* an unreadable partial download is replaced below */ }
  }
  await ensureSpace(total - stored, `${label} (${mib(total - stored)} to download)`);
  let manifest: ModelManifest;
  try {
    manifest = await beginModel(init);
  } catch (e) {
    // same id = same repo and revision: a partial download of other files means the repo changed
    if (!(e instanceof StoreError && e.code === 'exists')) throw e;
    manifest = await beginModel(init, { replace: true });
    stored = 0;
  }

  // 4. every file from where it stopped
  meter.start(stored, total);
  const resumedBytes = stored;
  for (const entry of manifest.files) {
    const name = entry.name;
    const bytes = small.get(name);
    if (bytes) {
      const before = await resumeOffset(id, name);
      await importModelFile(id, name, bytes, { signal: opts.signal });
      meter.done += entry.size - Math.min(before, entry.size);
      meter.emit('downloading', name, entry.size, entry.size);
      continue;
    }
    fetchedBytes += await fetchFile(c, id, name, entry.size, meter);
  }

  // 5. verify and mark complete
  meter.emit('verifying', null, 0, 0, true);
  try {
    manifest = await completeModel(id, { onProgress: (file, hashed, size) => meter.emit('verifying', file, hashed, size) });
  } catch (e) {
    if (e instanceof StoreError && e.code === 'checksum') {
      const file = manifest.files.find((x) => e.message.includes(`'${x.name}'`))?.name;
      throw new HubError('checksum', `${label}${file ? `/${file}` : ''}: the downloaded bytes do not match the sha256 the Hub lists — ${e.message}`, file, file && url(c, file));
    }
    throw e;
  }
  meter.emit('done', null, 0, 0, true);
  return { id, manifest, cached: false, fetchedBytes, resumedBytes };
}

/** Stream one weight file into the store from its resume offset; returns the bytes fetched. */
async function fetchFile(c: Ctx, id: string, file: string, size: number, meter: Meter): Promise<number> {
  const offset = await resumeOffset(id, file);
  if (offset >= size) return 0;
  const u = url(c, file);
  const h: Record<string, string> = { 'Accept-Encoding': 'identity' };
  if (offset > 0) h.Range = `bytes=${offset}-`;
  const r = await request(c, file, { headers: h });
  let skip = 0;
  if (r.status === 206) {
    const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/.exec(r.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== offset || (m[3] !== '*' && Number(m[3]) !== size)) {
      await r.body?.cancel().catch(() => {});
      throw new HubError('invalid', `${c.label}/${file}: asked for bytes ${offset}- of ${size}, the server sent Content-Range '${r.headers.get('content-range')}' — the file may have changed upstream; delete the partial download and try again`, file, u, 206);
    }
  } else if (r.ok) {
    skip = offset; // the server ignored Range: drop what is already stored
  } else {
    await r.body?.cancel().catch(() => {});
    if (r.status === 416) {
      throw new HubError('invalid', `${c.label}/${file}: the server refused the range bytes=${offset}- (416) — the file is shorter than the ${size} bytes expected; it may have changed upstream: delete the partial download and try again`, file, u, 416);
    }
    throw statusError(c, file, r);
  }
  if (!r.body) throw new HubError('invalid', `${c.label}/${file}: the response has no body (${u})`, file, u, r.status);

  let received = 0;
  const doneAtStart = meter.done;
  async function* counted(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
    const reader = body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        let piece = value;
        if (skip > 0) {
          const k = Math.min(skip, piece.length);
          skip -= k;
          piece = piece.subarray(k);
          if (!piece.length) continue;
        }
        received += piece.length;
        meter.add(piece.length);
        meter.emit('downloading', file, offset + received, size);
        yield piece;
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }
  try {
    await writeModelFileStream(id, file, counted(r.body), { offset, signal: c.signal });
  } catch (e) {
    if (isAbort(e, c.signal)) throw e;
    const kept = await resumeOffset(id, file).catch(() => offset);
    meter.done = doneAtStart + Math.max(0, kept - offset); // only whole stored chunks count
    if (e instanceof StoreError && e.code === 'invalid') {
      throw new HubError('invalid', `${c.label}/${file}: the server sent more than the ${size} bytes expected — the file may have changed upstream; delete the partial download and try again`, file, u);
    }
    if (e instanceof StoreError && e.code !== 'incomplete') throw e; // quota, store state: the store's own message
    const why = e instanceof StoreError ? 'the server closed the connection early' : causeOf(e);
    throw new HubError('interrupted',
      `${c.label}/${file}: the download was cut at byte ${offset + received} of ${size} (${why}); ${kept} bytes are stored — run the download again to resume from there`,
      file, u);
  }
  meter.emit('downloading', file, size, size, true);
  return received;
}

/** Download (or find in the store) a Hub model, then load it from the store. */
export async function loadHubModel(opts: HubDownloadOptions, load: LoadOptions = {}): Promise<LoadedModel & { download: HubDownloadResult }> {
  const download = await downloadModel(opts);
  const m = await loadModel(storedModelSource(download.id), opts.file && !load.file ? { ...load, file: opts.file } : load);
  return { ...m, download };
}

// ---------------------------------------------------------------------------------------------
// Local files

type BlobLike = { size: number; slice(start?: number, end?: number): { arrayBuffer(): Promise<ArrayBuffer> } };

export interface ImportOptions {
  /** store id (default `local:<name>`) */
  id?: string;
  chunkSize?: number;
  signal?: AbortSignal;
  onProgress?: (p: HubProgress) => void;
}

/**
 * Store local model files (a folder's files from a picker, or one .gguf) under `local:<name>`:
 * checks space, writes the missing chunks (so a second call after an interruption resumes) and
 * marks the model complete. Keys of `files` are the '/'-separated names inside the model folder.
 * A complete model with this id is returned as is.
 */
export async function importLocalModel(name: string, files: Map<string, BlobLike | Uint8Array> | Record<string, BlobLike | Uint8Array>, opts: ImportOptions = {}): Promise<ModelManifest> {
  const id = opts.id ?? `local:${name}`;
  const map = files instanceof Map ? files : new Map(Object.entries(files));
  if (map.size === 0) throw new StoreError('invalid', `${name}: no files to import`);
  const existing = await getModel(id);
  if (existing?.complete) return existing;
  const list = [...map].map(([f, d]) => ({ name: f, size: d instanceof Uint8Array ? d.length : d.size }));
  const total = list.reduce((a, x) => a + x.size, 0);
  await ensureSpace(total, `${name} (${mib(total)})`);
  const meter = new Meter(opts.onProgress, 100);
  const init = { id, name, source: { kind: 'local', name } as ModelOrigin, files: list, chunkSize: opts.chunkSize };
  try {
    await beginModel(init); // keeps a partial import of the same files (resume)
  } catch (e) {
    if (!(e instanceof StoreError && e.code === 'exists')) throw e;
    await beginModel(init, { replace: true }); // a partial import of other files: start over
  }
  meter.start(0, total);
  let before = 0;
  for (const { name: f, size } of list) {
    await importModelFile(id, f, map.get(f)!, {
      signal: opts.signal,
      onProgress: (stored) => {
        meter.done = before + stored;
        meter.emit('downloading', f, stored, size);
      },
    });
    before += size;
    meter.done = before;
  }
  const m = await completeModel(id);
  meter.emit('done', null, 0, 0, true);
  return m;
}
