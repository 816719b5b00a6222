// safetensors reader and writer (https://github.com/huggingface/safetensors, format section).
// File = u64 LE header length N, N bytes of JSON header, then the data section. The header maps
// tensor name → {dtype, shape, data_offsets: [begin, end)} (offsets relative to the data section)
// plus an optional "__metadata__" string map. Every header is validated before any tensor is used:
// truncation, a header length past EOF, bad JSON, unknown dtypes, offsets out of range, sizes that
// disagree with shape·dtype and overlapping tensors are each a clear Error naming the file.
// Tensors load as f32 from F32, F16, BF16 (and F64); other dtypes are an error on read.
// Sharded checkpoints (model.safetensors.index.json + shards) open as one SafetensorsStore.
// No DOM, no node:*: files come through ModelSource / RandomAccessFile (./source.ts).
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayFromBytes, f32ToBf16, f32ToF16 } from './half.ts';
import { type ModelSource, type RandomAccessFile, bytesFile, openFile, readJson } from './source.ts';

/** Bytes per element of every safetensors dtype. */
export const SAFETENSORS_DTYPE_SIZE: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
};
/** dtypes that load as f32 weights. */
export const SAFETENSORS_FLOAT_DTYPES = ['F32', 'F16', 'BF16', 'F64'] as const;

/** Header limit used by the reference implementation (100 MB). */
const MAX_HEADER = 100_000_000;

export interface SafetensorsTensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** absolute byte range [begin, end) in the file */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** file label used in errors */
  file: string;
  fileSize: number;
  /** absolute offset of the data section (8 + header length) */
  dataStart: number;
  tensors: Map<string, SafetensorsTensorInfo>;
  metadata: Record<string, string>;
}

function fail(file: string, why: string): never {
  throw new Error(`${file}: invalid safetensors file: ${why}`);
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Parse and validate a header. `prefix` holds at least the first 8 + N bytes of the file (or the
 * whole file when shorter); `fileSize` is the size of the whole file.
 */
export function parseSafetensorsHeader(file: string, prefix: Uint8Array, fileSize: number): SafetensorsHeader {
  if (fileSize < 8 || prefix.length < 8) fail(file, `truncated: ${fileSize} bytes, but the file must start with an 8-byte header length`);
  const dv = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (8 + n > fileSize) fail(file, `header length ${n} runs past the end of the file (${fileSize} bytes; truncated or not a safetensors file)`);
  if (n > MAX_HEADER) fail(file, `header length ${n} is larger than the 100 MB limit`);
  if (n < 2) fail(file, `header length ${n} is too small for a JSON object`);
  if (prefix.length < 8 + n) fail(file, `internal: header prefix too short`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(prefix.subarray(8, 8 + n)));
  } catch (e) {
    fail(file, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) fail(file, 'header is not a JSON object');
  const dataStart = 8 + n;
  const dataLen = fileSize - dataStart;
  const tensors = new Map<string, SafetensorsTensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (v && typeof v === 'object' && !Array.isArray(v)) metadata = v as Record<string, string>;
      else fail(file, '__metadata__ is not an object');
      continue;
    }
    const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!t || typeof t !== 'object') fail(file, `tensor '${name}': entry is not an object`);
    if (typeof t.dtype !== 'string') fail(file, `tensor '${name}': missing dtype`);
    const size = SAFETENSORS_DTYPE_SIZE[t.dtype];
    if (size === undefined) fail(file, `tensor '${name}': unsupported dtype '${t.dtype}' (known: ${Object.keys(SAFETENSORS_DTYPE_SIZE).join(', ')})`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(file, `tensor '${name}': shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
    const off = t.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(file, `tensor '${name}': data_offsets ${JSON.stringify(off)} is not [begin, end]`);
    const [b, e] = off as [number, number];
    if (e < b) fail(file, `tensor '${name}': data_offsets [${b}, ${e}] end before they begin`);
    if (e > dataLen) fail(file, `tensor '${name}': data_offsets [${b}, ${e}] lie past the end of the data section (${dataLen} bytes; file truncated?)`);
    const shape = t.shape as number[];
    const need = numel(shape) * size;
    if (e - b !== need) fail(file, `tensor '${name}': data_offsets [${b}, ${e}] span ${e - b} bytes, but shape [${shape}] × ${t.dtype} needs ${need}`);
    tensors.set(name, { name, dtype: t.dtype, shape, begin: dataStart + b, end: dataStart + e });
  }
  const sorted = [...tensors.values()].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1], c = sorted[i];
    if (c.begin < p.end) {
      fail(file, `tensors '${p.name}' [${p.begin - dataStart}, ${p.end - dataStart}) and '${c.name}' [${c.begin - dataStart}, ${c.end - dataStart}) overlap`);
    }
  }
  return { file, fileSize, dataStart, tensors, metadata };
}

/** Read and validate the header of a safetensors file. */
export async function readSafetensorsHeader(f: RandomAccessFile): Promise<SafetensorsHeader> {
  const head = await f.read(0, 8);
  if (f.size < 8 || head.length < 8) fail(f.label, `truncated: ${f.size} bytes, but the file must start with an 8-byte header length`);
  const n = Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > f.size) fail(f.label, `header length ${n} runs past the end of the file (${f.size} bytes; truncated or not a safetensors file)`);
  if (n > MAX_HEADER) fail(f.label, `header length ${n} is larger than the 100 MB limit`);
  const prefix = await f.read(0, 8 + n);
  if (prefix.length < 8 + n) fail(f.label, `truncated while reading the header`);
  return parseSafetensorsHeader(f.label, prefix, f.size);
}

/** Convert raw tensor bytes of a float dtype to f32. */
export function tensorBytesToF32(file: string, info: SafetensorsTensorInfo, bytes: Uint8Array): Float32Array {
  const n = numel(info.shape);
  switch (info.dtype) {
    case 'F32': return f32ArrayFromBytes(bytes, 0, n);
    case 'F16': return f16ArrayToF32(bytes, 0, n);
    case 'BF16': return bf16ArrayToF32(bytes, 0, n);
    case 'F64': {
      const d = new Float64Array(n);
      new Uint8Array(d.buffer).set(bytes.subarray(0, 8 * n));
      return Float32Array.from(d);
    }
    default:
      throw new Error(`${file}: tensor '${info.name}' has dtype ${info.dtype}, which cannot be loaded as f32 weights (supported: ${SAFETENSORS_FLOAT_DTYPES.join(', ')})`);
  }
}

/** Read one tensor as f32. */
export async function readSafetensorsTensor(f: RandomAccessFile, h: SafetensorsHeader, name: string): Promise<Float32Array> {
  const info = h.tensors.get(name);
  if (!info) throw new Error(`${f.label}: no tensor '${name}'`);
  if (!(SAFETENSORS_FLOAT_DTYPES as readonly string[]).includes(info.dtype)) tensorBytesToF32(f.label, info, new Uint8Array(0));
  const bytes = await f.read(info.begin, info.end);
  if (bytes.length !== info.end - info.begin) fail(f.label, `truncated while reading tensor '${name}'`);
  return tensorBytesToF32(f.label, info, bytes);
}

/** Parse a whole in-memory safetensors file: the validated header and a synchronous f32 getter. */
export function parseSafetensors(file: string, bytes: Uint8Array): { header: SafetensorsHeader; get(name: string): Float32Array } {
  const header = parseSafetensorsHeader(file, bytes, bytes.length);
  return {
    header,
    get(name) {
      const info = header.tensors.get(name);
      if (!info) throw new Error(`${file}: no tensor '${name}'`);
      return tensorBytesToF32(file, info, bytes.subarray(info.begin, info.end));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Writer

export interface SafetensorsInput {
  name: string;
  shape: number[];
  /** f32 values (stored as `dtype`, default F32), or raw little-endian bytes of `dtype`. */
  data: Float32Array | Uint8Array;
  dtype?: string;
}

/**
 * Serialize tensors (in the given order, 8-byte aligned header padded with spaces, as the
 * reference writer does) to safetensors bytes. `metadata` becomes "__metadata__".
 */
export function writeSafetensors(tensors: SafetensorsInput[], metadata?: Record<string, string>): Uint8Array {
  const payloads: Uint8Array[] = [];
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const t of tensors) {
    const dtype = t.dtype ?? 'F32';
    let bytes: Uint8Array;
    if (t.data instanceof Float32Array) {
      const n = t.data.length;
      if (n !== numel(t.shape)) throw new Error(`writeSafetensors: tensor '${t.name}' has ${n} values, shape [${t.shape}] needs ${numel(t.shape)}`);
      if (dtype === 'F32') bytes = new Uint8Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + 4 * n));
      else if (dtype === 'F16' || dtype === 'BF16') {
        const u = new Uint16Array(n);
        const cvt = dtype === 'F16' ? f32ToF16 : f32ToBf16;
        for (let i = 0; i < n; i++) u[i] = cvt(t.data[i]);
        bytes = new Uint8Array(u.buffer);
      } else throw new Error(`writeSafetensors: cannot convert f32 data of '${t.name}' to ${dtype} (give raw bytes)`);
    } else {
      bytes = t.data;
    }
    if (header[t.name] !== undefined) throw new Error(`writeSafetensors: duplicate tensor '${t.name}'`);
    header[t.name] = { dtype, shape: t.shape, data_offsets: [off, off + bytes.length] };
    payloads.push(bytes);
    off += bytes.length;
  }
  let json = JSON.stringify(header);
  const enc = new TextEncoder();
  let hb = enc.encode(json);
  const pad = (8 - (hb.length % 8)) % 8;
  if (pad) hb = enc.encode(json + ' '.repeat(pad));
  const out = new Uint8Array(8 + hb.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const b of payloads) {
    out.set(b, p);
    p += b.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// A model's tensors over one or several files

export interface StoredTensor {
  name: string;
  shape: number[];
  dtype: string;
  file: string;
}

/** Named tensors of a checkpoint, read on demand as f32. Shared shape with the GGUF store. */
export interface TensorStore {
  /** label for errors */
  label: string;
  names(): string[];
  info(name: string): StoredTensor | undefined;
  read(name: string): Promise<Float32Array>;
  /** __metadata__ of every shard merged (safetensors) */
  metadata: Record<string, string>;
}

export const SAFETENSORS_INDEX = 'model.safetensors.index.json';

/**
 * Open the safetensors weights of a Hugging Face folder: `model.safetensors.index.json` and its
 * shards when present, else every `*.safetensors` file (normally one `model.safetensors`).
 */
export async function openSafetensorsStore(src: ModelSource, files?: string[]): Promise<TensorStore> {
  const all = files ?? (await src.list());
  const where = new Map<string, { f: RandomAccessFile; h: SafetensorsHeader; info: SafetensorsTensorInfo }>();
  const metadata: Record<string, string> = {};
  let shardFiles: string[];
  let weightMap: Record<string, string> | null = null;
  if (all.includes(SAFETENSORS_INDEX)) {
    const idx = await readJson<{ weight_map?: Record<string, string> }>(src, SAFETENSORS_INDEX);
    if (!idx || typeof idx.weight_map !== 'object' || !idx.weight_map) {
      throw new Error(`${src.name}/${SAFETENSORS_INDEX}: no "weight_map" object`);
    }
    weightMap = idx.weight_map;
    shardFiles = [...new Set(Object.values(weightMap))].sort();
    for (const s of shardFiles) {
      if (!all.includes(s)) throw new Error(`${src.name}/${SAFETENSORS_INDEX}: shard '${s}' is listed in weight_map but missing from ${src.name}`);
    }
  } else {
    shardFiles = all.filter((f) => f.endsWith('.safetensors') && !f.includes('/')).sort();
    if (shardFiles.length === 0) shardFiles = all.filter((f) => f.endsWith('.safetensors')).sort();
  }
  if (shardFiles.length === 0) throw new Error(`${src.name}: no .safetensors weights found`);
  for (const s of shardFiles) {
    const f = await openFile(src, s);
    const h = await readSafetensorsHeader(f);
    Object.assign(metadata, h.metadata);
    for (const info of h.tensors.values()) {
      const prev = where.get(info.name);
      if (prev) throw new Error(`${src.name}: tensor '${info.name}' is stored twice, in '${prev.f.label}' and '${f.label}'`);
      where.set(info.name, { f, h, info });
    }
  }
  if (weightMap) {
    for (const [name, shard] of Object.entries(weightMap)) {
      const w = where.get(name);
      if (!w) throw new Error(`${src.name}/${SAFETENSORS_INDEX}: tensor '${name}' is mapped to '${shard}' but not stored there`);
      if (!w.f.label.endsWith('/' + shard)) throw new Error(`${src.name}/${SAFETENSORS_INDEX}: tensor '${name}' is mapped to '${shard}' but stored in '${w.f.label}'`);
    }
  }
  return {
    label: src.name,
    metadata,
    names: () => [...where.keys()],
    info: (name) => {
      const w = where.get(name);
      return w && { name, shape: w.info.shape, dtype: w.info.dtype, file: w.f.label };
    },
    read: async (name) => {
      const w = where.get(name);
      if (!w) throw new Error(`${src.name}: no tensor '${name}' in the safetensors weights`);
      return readSafetensorsTensor(w.f, w.h, name);
    },
  };
}

/** A TensorStore over one in-memory safetensors file (tests, exporters). */
export async function safetensorsStoreFromBytes(label: string, bytes: Uint8Array): Promise<TensorStore> {
  const f = bytesFile(label, bytes);
  const h = await readSafetensorsHeader(f);
  return {
    label,
    metadata: h.metadata,
    names: () => [...h.tensors.keys()],
    info: (name) => {
      const t = h.tensors.get(name);
      return t && { name, shape: t.shape, dtype: t.dtype, file: label };
    },
    read: (name) => readSafetensorsTensor(f, h, name),
  };
}
