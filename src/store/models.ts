// Model files in IndexedDB (database `whittle-models`), chunked so multi-hundred-MB models fit:
//   ['manifest', id]               ModelManifest (versioned): source, files, chunkSize, complete
//   ['chunk', id, fileName, i]     ArrayBuffer: bytes [i·chunkSize, min((i+1)·chunkSize, size)) of the file
// Protocol of a download / import: beginModel() writes the manifest with complete=false, then
// chunks are written in any order (putChunk, importModelFile, writeModelFileStream) — each chunk
// is checked against its expected length, so a stored chunk is always whole — and completeModel()
// verifies that every chunk is present (and sha256 where known) and sets complete=true LAST, in
// the same transaction as the presence check. A partial download therefore never looks complete;
// chunkStatus / missingRanges / resumeOffset say what is left so it can resume. Reads refuse
// incomplete models unless asked (allowIncomplete). Chunks are bare bytes; their layout is governed
// by the manifest's schema version.
import type { ModelSource } from '../model/source.ts';
import { type Versioned, type ListOptions, kind, decodeAll, whereOfId, stamp, decode, decodeRequired, tx, req, prefixRange, deletePrefix, StoreError, checkId, toArrayBuffer } from './core.ts';
import { Sha256 } from './sha256.ts';

export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;

/** Where a model came from. */
export type ModelOrigin =
  | { kind: 'hub'; repo: string; revision: string }
  | { kind: 'local'; name: string };

/** How the stored weights are encoded (free-form: e.g. {format: 'safetensors-bf16'} or {format: 'gguf', bits: 4, detail: 'Q4_0'}). */
export interface QuantInfo {
  format: string;
  bits?: number;
  detail?: string;
}

export interface ModelFileEntry {
  /** '/'-separated path relative to the model root (config.json, model.safetensors, ...). */
  name: string;
  size: number;
  /** Lowercase hex SHA-256 of the whole file, when known (HF LFS files); checked by completeModel. */
  sha256?: string;
  /** Number of chunks: ceil(size / chunkSize). */
  chunks: number;
}

export interface ModelManifest extends Versioned {
  id: string;
  /** Display name (defaults to the repo or local name). */
  name: string;
  source: ModelOrigin;
  chunkSize: number;
  files: ModelFileEntry[];
  /** True only once every chunk of every file is stored (and verified). */
  complete: boolean;
  createdAt: number;
  completedAt: number | null;
  quant: QuantInfo | null;
}

export const MODEL_MANIFEST = kind<ModelManifest>('model manifest', 'whittle.model', 1);

export interface BeginModelInit {
  id: string;
  source: ModelOrigin;
  files: { name: string; size: number; sha256?: string }[];
  name?: string;
  quant?: QuantInfo | null;
  /** Bytes per chunk (default 8 MiB). */
  chunkSize?: number;
}

export interface FileChunkStatus {
  name: string;
  size: number;
  chunks: number;
  present: number[];
  missing: number[];
  storedBytes: number;
}

/** A run of missing chunks of one file, as a byte range [start, end) (an HTTP Range: bytes=start-(end-1)). */
export interface MissingRange {
  file: string;
  start: number;
  end: number;
  /** chunk indices [firstChunk, endChunk) */
  firstChunk: number;
  endChunk: number;
}

export type ModelListing = ModelManifest & { totalBytes: number; storedBytes: number };

export interface ReadOptions {
  /** Read files of a model whose download is not complete (chunks that are missing still throw). */
  allowIncomplete?: boolean;
}

export interface WriteOptions {
  /** Called after each stored chunk with (bytes of this file stored so far, file size). */
  onProgress?: (stored: number, size: number) => void;
  signal?: AbortSignal;
}

const mkey = (id: string) => ['manifest', id];
const ckey = (id: string, file: string, i: number) => ['chunk', id, file, i];
const where = (id: string) => `models/${id}`;

function chunkLen(m: ModelManifest, f: ModelFileEntry, i: number): number {
  return Math.min(m.chunkSize, f.size - i * m.chunkSize);
}

function fileOf(m: ModelManifest, file: string): ModelFileEntry {
  const f = m.files.find((x) => x.name === file);
  if (!f) throw new StoreError('not-found', `model ${m.id} has no file '${file}' (files: ${m.files.map((x) => x.name).join(', ')})`);
  return f;
}

async function manifestIn(s: IDBObjectStore, id: string): Promise<ModelManifest> {
  return decodeRequired(MODEL_MANIFEST, await req(s.get(mkey(id))), where(id));
}

function sameLayout(a: ModelManifest, b: ModelManifest): boolean {
  return a.chunkSize === b.chunkSize && a.files.length === b.files.length &&
    a.files.every((f, i) => f.name === b.files[i].name && f.size === b.files[i].size && (f.sha256 ?? '') === (b.files[i].sha256 ?? ''));
}

/**
 * Start (or resume) storing a model: writes its manifest with complete=false. When an incomplete
 * manifest with the same files, sizes and chunk size exists, it is kept (resume) and returned. A
 * complete model with this id throws 'exists'; an incomplete one with a different layout throws
 * 'exists' unless `replace` (which deletes its chunks first).
 */
export async function beginModel(init: BeginModelInit, opts: { replace?: boolean } = {}): Promise<ModelManifest> {
  const id = checkId('model', init.id);
  const chunkSize = init.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize <= 0) throw new StoreError('invalid', `model ${id}: chunkSize must be a positive integer (got ${chunkSize})`);
  if (!Array.isArray(init.files) || init.files.length === 0) throw new StoreError('invalid', `model ${id}: needs at least one file`);
  const names = new Set<string>();
  const files: ModelFileEntry[] = init.files.map((f) => {
    if (typeof f.name !== 'string' || !f.name) throw new StoreError('invalid', `model ${id}: a file has no name`);
    if (names.has(f.name)) throw new StoreError('invalid', `model ${id}: file '${f.name}' listed twice`);
    names.add(f.name);
    if (!Number.isSafeInteger(f.size) || f.size < 0) throw new StoreError('invalid', `model ${id}: file '${f.name}' has a bad size ${f.size}`);
    if (f.sha256 !== undefined && !/^[0-9a-f]{64}$/i.test(f.sha256)) throw new StoreError('invalid', `model ${id}: file '${f.name}' sha256 must be 64 hex characters`);
    const e: ModelFileEntry = { name: f.name, size: f.size, chunks: Math.ceil(f.size / chunkSize) };
    if (f.sha256) e.sha256 = f.sha256.toLowerCase();
    return e;
  });
  const src = init.source;
  const fresh = stamp(MODEL_MANIFEST, {
    id,
    name: init.name ?? (src.kind === 'hub' ? src.repo : src.name),
    source: src,
    chunkSize,
    files,
    complete: false,
    createdAt: Date.now(),
    completedAt: null,
    quant: init.quant ?? null,
  });
  return tx('models', 'readwrite', async (s) => {
    const old = decode(MODEL_MANIFEST, await req(s.get(mkey(id))), where(id));
    if (old) {
      if (old.complete) throw new StoreError('exists', `model ${id} is already stored (complete); delete it before storing it again`);
      if (sameLayout(old, fresh) && !opts.replace) return old;
      if (!opts.replace) {
        throw new StoreError('exists', `model ${id} has a partial download with different files or chunk size; pass {replace: true} to discard it`);
      }
      await deletePrefix(s, ['chunk', id]);
    }
    await req(s.put(fresh, mkey(id)));
    return fresh;
  });
}

/** Store chunk `index` of `file`; its length must be exactly that chunk's length. Overwrites. */
export async function putChunk(id: string, file: string, index: number, bytes: ArrayBuffer | ArrayBufferView): Promise<void> {
  const data = toArrayBuffer(bytes);
  await tx('models', 'readwrite', async (s) => {
    const m = await manifestIn(s, id);
    if (m.complete) throw new StoreError('invalid', `model ${id} is complete; its chunks cannot be rewritten (delete the model to re-download it)`);
    const f = fileOf(m, file);
    if (!Number.isInteger(index) || index < 0 || index >= f.chunks) {
      throw new StoreError('invalid', `model ${id} file '${file}': chunk index ${index} is out of range (0..${f.chunks - 1})`);
    }
    const want = chunkLen(m, f, index);
    if (data.byteLength !== want) {
      throw new StoreError('invalid', `model ${id} file '${file}': chunk ${index} must be ${want} bytes, got ${data.byteLength}`);
    }
    await req(s.put(data, ckey(id, file, index)));
  });
}

/** The manifest, or undefined. Throws on a record from another schema version. */
export async function getModel(id: string): Promise<ModelManifest | undefined> {
  return tx('models', 'readonly', async (s) => decode(MODEL_MANIFEST, await req(s.get(mkey(id))), where(id)));
}

function statusFrom(m: ModelManifest, keys: IDBValidKey[]): FileChunkStatus[] {
  const have = new Map<string, Set<number>>();
  for (const k of keys) {
    const [, , file, i] = k as [string, string, string, number];
    let set = have.get(file);
    if (!set) have.set(file, (set = new Set()));
    set.add(i);
  }
  return m.files.map((f) => {
    const set = have.get(f.name) ?? new Set<number>();
    const present: number[] = [], missing: number[] = [];
    let storedBytes = 0;
    for (let i = 0; i < f.chunks; i++) {
      if (set.has(i)) {
        present.push(i);
        storedBytes += chunkLen(m, f, i);
      } else missing.push(i);
    }
    return { name: f.name, size: f.size, chunks: f.chunks, present, missing, storedBytes };
  });
}

/** Which chunks of each file are stored and which are missing. */
export async function chunkStatus(id: string): Promise<FileChunkStatus[]> {
  return tx('models', 'readonly', async (s) => {
    const m = await manifestIn(s, id);
    return statusFrom(m, await req(s.getAllKeys(prefixRange(['chunk', id]))));
  });
}

/** Byte ranges still to fetch, contiguous missing chunks merged, in file order. Empty when all chunks are stored. */
export async function missingRanges(id: string): Promise<MissingRange[]> {
  const m = await getModel(id);
  if (!m) throw new StoreError('not-found', `no model manifest ${where(id)} in the store`);
  const out: MissingRange[] = [];
  for (const st of await chunkStatus(id)) {
    for (let j = 0; j < st.missing.length; ) {
      let k = j;
      while (k + 1 < st.missing.length && st.missing[k + 1] === st.missing[k] + 1) k++;
      const first = st.missing[j], end = st.missing[k] + 1;
      out.push({ file: st.name, start: first * m.chunkSize, end: Math.min(end * m.chunkSize, st.size), firstChunk: first, endChunk: end });
      j = k + 1;
    }
  }
  return out;
}

/** Byte offset where a sequential download of `file` continues: the start of its first missing chunk (its size when whole). */
export async function resumeOffset(id: string, file: string): Promise<number> {
  const m = await getModel(id);
  if (!m) throw new StoreError('not-found', `no model manifest ${where(id)} in the store`);
  const st = (await chunkStatus(id)).find((x) => x.name === file);
  if (!st) fileOf(m, file);
  return st!.missing.length ? st!.missing[0] * m.chunkSize : st!.size;
}

type BlobLike = { size: number; slice(start?: number, end?: number): { arrayBuffer(): Promise<ArrayBuffer> } };

/**
 * Import a whole file from random-access bytes (a File/Blob from a picker, or a Uint8Array),
 * writing only the chunks that are missing — so calling it again after an interruption resumes.
 */
export async function importModelFile(id: string, file: string, data: BlobLike | Uint8Array, opts: WriteOptions = {}): Promise<void> {
  const m = await getModel(id);
  if (!m) throw new StoreError('not-found', `no model manifest ${where(id)}; call beginModel first`);
  const f = fileOf(m, file);
  const size = data instanceof Uint8Array ? data.length : data.size;
  if (size !== f.size) throw new StoreError('invalid', `model ${id} file '${file}': manifest says ${f.size} bytes, the data has ${size}`);
  const st = (await chunkStatus(id)).find((x) => x.name === file)!;
  let stored = st.storedBytes;
  for (const i of st.missing) {
    opts.signal?.throwIfAborted();
    const a = i * m.chunkSize, b = a + chunkLen(m, f, i);
    const bytes = data instanceof Uint8Array ? data.subarray(a, b) : await data.slice(a, b).arrayBuffer();
    await putChunk(id, file, i, bytes);
    stored += b - a;
    opts.onProgress?.(stored, f.size);
  }
}

async function* iterate(src: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  if (typeof (src as ReadableStream<Uint8Array>).getReader === 'function') {
    const reader = (src as ReadableStream<Uint8Array>).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      reader.releaseLock();
    }
  } else {
    yield* src as AsyncIterable<Uint8Array>;
  }
}

/**
 * Store a file from a sequential stream (a fetch() body) that starts at byte `offset` of the file
 * (a chunk boundary: use resumeOffset() and an HTTP Range request). Pieces are re-cut into chunks;
 * each whole chunk is stored as soon as it is complete, so an interrupted stream loses at most
 * one chunk. A stream that ends before the end of the file throws 'incomplete' (what was stored
 * stays); one that runs past it throws 'invalid'.
 */
export async function writeModelFileStream(
  id: string,
  file: string,
  stream: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
  opts: WriteOptions & { offset?: number } = {},
): Promise<void> {
  const m = await getModel(id);
  if (!m) throw new StoreError('not-found', `no model manifest ${where(id)}; call beginModel first`);
  const f = fileOf(m, file);
  const offset = opts.offset ?? 0;
  if (!Number.isInteger(offset) || offset < 0 || offset > f.size || (offset % m.chunkSize !== 0 && offset !== f.size)) {
    throw new StoreError('invalid', `model ${id} file '${file}': stream offset ${offset} must be a chunk boundary (multiple of ${m.chunkSize}) within the file`);
  }
  let index = offset / m.chunkSize;
  let pos = offset;
  let buf = new Uint8Array(index < f.chunks ? chunkLen(m, f, index) : 0);
  let fill = 0;
  for await (const piece of iterate(stream)) {
    opts.signal?.throwIfAborted();
    let p = 0;
    while (p < piece.length) {
      if (index >= f.chunks) {
        throw new StoreError('invalid', `model ${id} file '${file}': the stream runs past the file's size (${f.size} bytes)`);
      }
      const take = Math.min(buf.length - fill, piece.length - p);
      buf.set(piece.subarray(p, p + take), fill);
      fill += take;
      p += take;
      pos += take;
      if (fill === buf.length) {
        await putChunk(id, file, index, buf);
        opts.onProgress?.(pos, f.size);
        index++;
        buf = new Uint8Array(index < f.chunks ? chunkLen(m, f, index) : 0);
        fill = 0;
      }
    }
  }
  if (pos < f.size) {
    throw new StoreError('incomplete', `model ${id} file '${file}': the stream ended at byte ${pos} of ${f.size}; ${index * m.chunkSize} bytes are stored — resume from resumeOffset()`);
  }
}

/**
 * Mark a model complete: checks every chunk of every file is present, verifies files that have a
 * sha256 (unless verify=false; a mismatch deletes that file's chunks and throws 'checksum'), then
 * sets complete=true in the same transaction as a final presence check. Idempotent.
 */
export async function completeModel(id: string, opts: { verify?: boolean; onProgress?: (file: string, hashed: number, size: number) => void } = {}): Promise<ModelManifest> {
  const m = await getModel(id);
  if (!m) throw new StoreError('not-found', `no model manifest ${where(id)} in the store`);
  if (m.complete) return m;
  const missingSummary = (st: FileChunkStatus[]) =>
    st.filter((x) => x.missing.length).map((x) => `${x.name}: ${x.missing.length}/${x.chunks} chunks missing`).join('; ');
  const pre = missingSummary(await chunkStatus(id));
  if (pre) throw new StoreError('incomplete', `model ${id} cannot be marked complete: ${pre} — resume the download`);
  if (opts.verify !== false) {
    for (const f of m.files) {
      if (!f.sha256) continue;
      const h = new Sha256();
      let n = 0;
      for await (const c of streamModelFile(id, f.name, { allowIncomplete: true })) {
        h.update(c);
        n += c.length;
        opts.onProgress?.(f.name, n, f.size);
      }
      const got = h.hex();
      if (got !== f.sha256) {
        await tx('models', 'readwrite', (s) => deletePrefix(s, ['chunk', id, f.name]));
        throw new StoreError('checksum', `model ${id} file '${f.name}': sha256 is ${got}, expected ${f.sha256}; its chunks were deleted — download it again`);
      }
    }
  }
  return tx('models', 'readwrite', async (s) => {
    const cur = await manifestIn(s, id);
    if (cur.complete) return cur;
    if (!sameLayout(cur, m)) throw new StoreError('invalid', `model ${id} was replaced while it was being completed; try again`);
    const left = missingSummary(statusFrom(cur, await req(s.getAllKeys(prefixRange(['chunk', id])))));
    if (left) throw new StoreError('incomplete', `model ${id} cannot be marked complete: ${left}`);
    const done: ModelManifest = { ...cur, complete: true, completedAt: Date.now() };
    await req(s.put(done, mkey(id)));
    return done;
  });
}

/** Every stored model (complete or not, unless completeOnly) with total and stored byte counts, oldest first. */
export async function listModels(opts: ListOptions & { completeOnly?: boolean } = {}): Promise<ModelListing[]> {
  const [raws, keys] = await tx('models', 'readonly', async (s) =>
    Promise.all([req(s.getAll(prefixRange(['manifest']))), req(s.getAllKeys(prefixRange(['chunk'])))]),
  );
  const byModel = new Map<string, IDBValidKey[]>();
  for (const k of keys) {
    const id = (k as string[])[1];
    let a = byModel.get(id);
    if (!a) byModel.set(id, (a = []));
    a.push(k);
  }
  const out: ModelListing[] = [];
  for (const m of decodeAll(MODEL_MANIFEST, raws, whereOfId('models'), opts.onUnreadable)) {
    if (opts.completeOnly && !m.complete) continue;
    const st = statusFrom(m, byModel.get(m.id) ?? []);
    out.push({
      ...m,
      totalBytes: m.files.reduce((a, f) => a + f.size, 0),
      storedBytes: st.reduce((a, f) => a + f.storedBytes, 0),
    });
  }
  return out.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
}

async function readableManifest(id: string, file: string, opts: ReadOptions): Promise<[ModelManifest, ModelFileEntry]> {
  const m = await getModel(id);
  if (!m) throw new StoreError('not-found', `no model ${id} in the store`);
  if (!m.complete && !opts.allowIncomplete) {
    throw new StoreError('incomplete', `model ${id} is not completely downloaded; resume the download (or delete it) before using it`);
  }
  return [m, fileOf(m, file)];
}

function missingChunk(id: string, file: string, i: number, f: ModelFileEntry): StoreError {
  return new StoreError('incomplete', `model ${id} file '${file}': chunk ${i + 1}/${f.chunks} is missing — the download is incomplete; resume it`);
}

/**
 * A file's chunks in order, optionally only bytes [start, end). One small transaction per
 * chunk, so at most one chunk is held at a time by the reader.
 */
export async function* streamModelFile(id: string, file: string, opts: ReadOptions & { start?: number; end?: number } = {}): AsyncGenerator<Uint8Array> {
  const [m, f] = await readableManifest(id, file, opts);
  const start = Math.max(0, opts.start ?? 0), end = Math.min(f.size, opts.end ?? f.size);
  if (end <= start) return;
  const first = Math.floor(start / m.chunkSize), last = Math.floor((end - 1) / m.chunkSize);
  for (let i = first; i <= last; i++) {
    const buf = await tx('models', 'readonly', (s) => req(s.get(ckey(id, file, i)))) as ArrayBuffer | undefined;
    if (!buf) throw missingChunk(id, file, i, f);
    const base = i * m.chunkSize;
    const a = Math.max(start - base, 0), b = Math.min(end - base, buf.byteLength);
    yield new Uint8Array(buf, a, b - a);
  }
}

/** Bytes [start, end) of a file (clamped to its size). */
export async function readModelFileRange(id: string, file: string, start: number, end: number, opts: ReadOptions = {}): Promise<Uint8Array> {
  const [, f] = await readableManifest(id, file, opts);
  const s = Math.max(0, Math.min(start, f.size)), e = Math.max(s, Math.min(end, f.size));
  const out = new Uint8Array(e - s);
  let o = 0;
  for await (const c of streamModelFile(id, file, { ...opts, start: s, end: e })) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** A whole file, its chunks concatenated. */
export async function readModelFile(id: string, file: string, opts: ReadOptions = {}): Promise<Uint8Array> {
  return readModelFileRange(id, file, 0, Number.MAX_SAFE_INTEGER, opts);
}

/** Delete a model's manifest and every chunk, in one transaction. Resolves false when there was nothing. */
export async function deleteModel(id: string): Promise<boolean> {
  return tx('models', 'readwrite', async (s) => {
    const had = (await req(s.count(mkey(id)))) > 0 || (await req(s.count(prefixRange(['chunk', id])))) > 0;
    await req(s.delete(mkey(id)));
    await deletePrefix(s, ['chunk', id]);
    return had;
  });
}

/** A ModelSource (src/model/source.ts) over a complete stored model, for the loaders. */
export function storedModelSource(id: string): ModelSource {
  let mp: Promise<ModelManifest> | undefined;
  const manifest = () =>
    (mp ??= (async () => {
      const m = await getModel(id);
      if (!m) throw new StoreError('not-found', `no model ${id} in the store`);
      if (!m.complete) throw new StoreError('incomplete', `model ${id} is not completely downloaded; resume the download before loading it`);
      return m;
    })().catch((e) => {
      mp = undefined;
      throw e;
    }));
  return {
    name: id,
    list: async () => (await manifest()).files.map((f) => f.name),
    read: async (file) => (await manifest(), readModelFile(id, file)),
    size: async (file) => fileOf(await manifest(), file).size,
    readRange: async (file, start, end) => (await manifest(), readModelFileRange(id, file, start, end)),
  };
}
