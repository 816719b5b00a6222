// Shared core of the IndexedDB store (src/store/*): one database per record kind, each opened with
// idb-keyval's createStore(db, 'records'); array keys (['meta', id], ['chunk', id, file, i], ...)
// so one kind's records sort together and prefix ranges select them; versioned records (every
// stored object carries `magic` + `v`, checked on read with an actionable error); transactions
// that resolve only once committed; ids; ArrayBuffer normalisation and tensor validation.
// Databases: whittle-models, whittle-datasets, whittle-jobs (jobs, logs and checkpoints share
// one so deleting a job is one transaction), whittle-adapters. See src/store/README.md.
// No DOM beyond indexedDB / IDBKeyRange (and guarded navigator.storage in ./storage.ts).
import { createStore, promisifyRequest, type UseStore } from 'idb-keyval';

export type DbName = 'models' | 'datasets' | 'jobs' | 'adapters';
export const DB_NAMES: readonly DbName[] = ['models', 'datasets', 'jobs', 'adapters'];
/** Object store name used inside every whittle database. */
export const STORE_NAME = 'records';

/** Error codes callers may branch on (the message is always a full sentence for the user). */
export type StoreErrorCode =
  | 'not-found'
  | 'exists'
  | 'version-newer'
  | 'version-older'
  | 'bad-magic'
  | 'incomplete'
  | 'invalid'
  | 'checksum'
  | 'bad-transition'
  | 'unavailable'
  | 'quota';

export class StoreError extends Error {
  constructor(
    public readonly code: StoreErrorCode,
    message: string,
    /** The record it is about, as `<db>/<id>[/part]` (set for unreadable records), so a UI can offer to delete it. */
    public readonly record?: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

const stores = new Map<DbName, UseStore>();

/** The idb-keyval store of database `whittle-<name>` (opened lazily, cached). */
export function storeFor(name: DbName): UseStore {
  let s = stores.get(name);
  if (!s) {
    if (typeof indexedDB === 'undefined') {
      throw new StoreError('unavailable', `IndexedDB is not available here, so whittle cannot store ${name} (private browsing, or a non-browser runtime without fake-indexeddb).`);
    }
    s = createStore(`whittle-${name}`, STORE_NAME);
    stores.set(name, s);
  }
  return s;
}

/**
 * Run `body` in one transaction on database `name`; resolves with its result only after the
 * transaction has committed, and aborts it (rolling back every write made in it) when `body`
 * throws. Inside `body`, await only IDB requests (`req(...)`), never timers or fetches, or the
 * transaction auto-commits early.
 */
export function tx<T>(name: DbName, mode: IDBTransactionMode, body: (s: IDBObjectStore) => Promise<T>): Promise<T> {
  return storeFor(name)(mode, async (s) => {
    const done = promisifyRequest(s.transaction);
    let result: T;
    try {
      result = await body(s);
    } catch (e) {
      done.catch(() => {});
      try {
        s.transaction.abort();
      } catch {
        /* already finished */
      }
      throw e;
    }
    await done;
    return result;
  });
}

/** An IDBRequest as a promise. */
export function req<T>(r: IDBRequest<T>): Promise<T> {
  return promisifyRequest(r);
}

/** Key range of every array key that starts with `prefix` (and the key `prefix` itself). */
export function prefixRange(prefix: IDBValidKey[]): IDBKeyRange {
  // Arrays sort after numbers, dates and strings, so [...prefix, []] is above every
  // [...prefix, x] whose x is not itself an array.
  return IDBKeyRange.bound(prefix, [...prefix, []], false, true);
}

/** Delete every record under `prefix` (inside an open readwrite transaction). */
export function deletePrefix(s: IDBObjectStore, prefix: IDBValidKey[]): Promise<undefined> {
  return req(s.delete(prefixRange(prefix)));
}

/** Remove every whittle record of every kind (the "delete all data" button; tests). */
export async function clearAllStores(): Promise<void> {
  for (const n of DB_NAMES) await tx(n, 'readwrite', (s) => req(s.clear()));
}

// ---------------------------------------------------------------------------------------------
// Versioned records

/** Fields every stored record carries. */
export interface Versioned {
  /** What the record is, e.g. 'whittle.model'. */
  magic: string;
  /** Schema version of that kind when it was written. */
  v: number;
}

export interface RecordKind<T extends Versioned> {
  /** Human name used in messages, e.g. 'model manifest'. */
  label: string;
  magic: string;
  /** Version this build writes and reads. */
  version: number;
  /** Optional upgrades of older versions: migrate[n] turns a v=n record into v=n+1. */
  migrate?: Record<number, (old: any) => any>;
  /** Compile-time only. */
  _type?: T;
}

export function kind<T extends Versioned>(label: string, magic: string, version: number, migrate?: RecordKind<T>['migrate']): RecordKind<T> {
  return { label, magic, version, migrate };
}

/** Stamp `data` with the kind's magic and current version. */
export function stamp<T extends Versioned>(k: RecordKind<T>, data: Omit<T, 'magic' | 'v'>): T {
  return { ...data, magic: k.magic, v: k.version } as T;
}

/**
 * Check a value read from IndexedDB against its kind; `where` names the record for the message
 * (e.g. `models/smollm-135m`). Returns undefined for undefined. Throws StoreError
 * 'bad-magic' | 'version-newer' | 'version-older' with a hint on what to do.
 */
export function decode<T extends Versioned>(k: RecordKind<T>, raw: unknown, where: string): T | undefined {
  if (raw === undefined) return undefined;
  const r = raw as Partial<Versioned> | null;
  if (!r || typeof r !== 'object' || r.magic !== k.magic) {
    const got = r && typeof r === 'object' && 'magic' in r ? `magic '${String(r.magic)}'` : 'no magic';
    throw new StoreError('bad-magic', `record ${where} is not a whittle ${k.label} (expected magic '${k.magic}', found ${got}); it is corrupt or was written by something else — delete it.`, where);
  }
  let v = r.v;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new StoreError('bad-magic', `record ${where} (${k.label}) has no valid schema version (v=${String(v)}); it is corrupt — delete it.`, where);
  }
  if (v > k.version) {
    throw new StoreError('version-newer', `record ${where} was written by a newer whittle (${k.label} v${v}); this build reads v${k.version} — update the app or delete it.`, where);
  }
  let out: any = r;
  while (v < k.version) {
    const up = k.migrate?.[v];
    if (!up) {
      throw new StoreError('version-older', `record ${where} was written by an older whittle (${k.label} v${v}); this build reads v${k.version} and cannot upgrade it — delete it (and re-create it).`, where);
    }
    out = { ...up(out), magic: k.magic, v: v + 1 };
    v++;
  }
  return out as T;
}

/**
 * Decode the records of a listing. By default one unreadable record fails the whole listing
 * (loudly); with `onUnreadable` it is reported there and skipped, so a UI can still show the
 * rest and offer to delete it (the error's `record` names it).
 */
export function decodeAll<T extends Versioned>(k: RecordKind<T>, raws: unknown[], whereOf: (raw: unknown) => string, onUnreadable?: (e: StoreError) => void): T[] {
  const out: T[] = [];
  for (const raw of raws) {
    try {
      out.push(decodeRequired(k, raw, whereOf(raw)));
    } catch (e) {
      if (!onUnreadable || !(e instanceof StoreError)) throw e;
      onUnreadable(e);
    }
  }
  return out;
}

/** Options of the list* functions. */
export interface ListOptions {
  /** Report unreadable records (newer / older schema, foreign) here and skip them, instead of throwing. */
  onUnreadable?: (e: StoreError) => void;
}

/** `<db>/<id>` of a raw record that has an `id` field, for messages. */
export function whereOfId(db: string): (raw: unknown) => string {
  return (raw) => `${db}/${String((raw as { id?: unknown } | null)?.id ?? '?')}`;
}

/** decode() that throws StoreError 'not-found' for a missing record. */
export function decodeRequired<T extends Versioned>(k: RecordKind<T>, raw: unknown, where: string): T {
  const r = decode(k, raw, where);
  if (r === undefined) throw new StoreError('not-found', `no ${k.label} ${where} in the store`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** A fresh id: `<prefix>-<time base36>-<random>`, sortable by creation time. */
export function newId(prefix: string): string {
  const c = globalThis.crypto as Crypto | undefined;
  const rnd = c?.randomUUID ? c.randomUUID().replace(/-/g, '').slice(0, 12) : Math.random().toString(36).slice(2, 14);
  return `${prefix}-${Date.now().toString(36)}-${rnd}`;
}

/** Reject empty / non-string ids early, with the record kind in the message. */
export function checkId(what: string, id: unknown): string {
  if (typeof id !== 'string' || id.length === 0) throw new StoreError('invalid', `${what} id must be a non-empty string (got ${JSON.stringify(id)})`);
  return id;
}

/** A standalone ArrayBuffer holding exactly the bytes of `data` (copied when it is a view). */
export function toArrayBuffer(data: ArrayBuffer | ArrayBufferView): ArrayBuffer {
  if (data instanceof ArrayBuffer) return data;
  const { buffer, byteOffset, byteLength } = data;
  if (buffer instanceof ArrayBuffer && byteOffset === 0 && byteLength === buffer.byteLength) return buffer;
  const out = new ArrayBuffer(byteLength);
  new Uint8Array(out).set(new Uint8Array(buffer, byteOffset, byteLength));
  return out;
}

export type TensorDType = 'f32' | 'f16' | 'bf16' | 'u32' | 'i32' | 'u8';
const DTYPE_BYTES: Record<TensorDType, number> = { f32: 4, f16: 2, bf16: 2, u32: 4, i32: 4, u8: 1 };

/** A named tensor as stored (adapters, checkpoints): raw little-endian bytes. */
export interface StoredTensor {
  name: string;
  shape: number[];
  dtype: TensorDType;
  data: ArrayBuffer;
}

/** What callers may pass: data as an ArrayBuffer or any typed array (copied when a view). */
export interface TensorInput {
  name: string;
  shape: number[];
  dtype: TensorDType;
  data: ArrayBuffer | ArrayBufferView;
}

/** Validate names/shapes/byte sizes and normalise data to ArrayBuffers. `what` names the owner. */
export function normTensors(what: string, ts: TensorInput[]): StoredTensor[] {
  if (!Array.isArray(ts)) throw new StoreError('invalid', `${what}: tensors must be an array`);
  const seen = new Set<string>();
  return ts.map((t) => {
    if (!t || typeof t.name !== 'string' || !t.name) throw new StoreError('invalid', `${what}: every tensor needs a name`);
    if (seen.has(t.name)) throw new StoreError('invalid', `${what}: duplicate tensor '${t.name}'`);
    seen.add(t.name);
    const per = DTYPE_BYTES[t.dtype];
    if (!per) throw new StoreError('invalid', `${what}: tensor '${t.name}' has unknown dtype '${String(t.dtype)}'`);
    if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new StoreError('invalid', `${what}: tensor '${t.name}' has a bad shape ${JSON.stringify(t.shape)}`);
    }
    const data = toArrayBuffer(t.data);
    const want = t.shape.reduce((a, b) => a * b, 1) * per;
    if (data.byteLength !== want) {
      throw new StoreError('invalid', `${what}: tensor '${t.name}' (${t.dtype} [${t.shape.join(', ')}]) needs ${want} bytes, got ${data.byteLength}`);
    }
    return { name: t.name, shape: [...t.shape], dtype: t.dtype, data };
  });
}
