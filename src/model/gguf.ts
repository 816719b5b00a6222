// GGUF reader, dequantizer and writer (llama.cpp/ggml model files; spec: ggml docs/gguf.md).
// File = magic "GGUF", u32 version (2 or 3; v1 is not supported), u64 tensor count, u64 metadata
// count, metadata KVs (u64-length strings, typed values incl. nested arrays), tensor infos (name,
// u32 n_dims, u64 dims innermost first, u32 ggml type, u64 offset), padding to `general.alignment`
// (default 32), then tensor data (offsets relative to that data start, each aligned).
// A tensor with ggml dims (ne0, ne1) is a row-major (ne1, ne0) matrix: ggml's ne0 is the input
// (column) dimension, so GGUF matrices are already in Hugging Face (out, in) orientation.
// Dequantization to f32 follows ggml-quants.c `dequantize_row_*` block layouts exactly:
// F32, F16, BF16, F64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K. Other known
// types (IQ*, TQ*, MXFP4, ...) parse but fail on read with a clear error. Errors name the file.
// The writer (writeGGUF) emits metadata of every type plus F32/F16/raw tensors (tests, export).
// No DOM, no node:*: bytes come through RandomAccessFile (./source.ts).
import { f16ArrayToF32, f16Table, f32ArrayFromBytes, f32ToF16, bf16ArrayToF32 } from './half.ts';
import { type RandomAccessFile, bytesFile } from './source.ts';
import type { StoredTensor, TensorStore } from './safetensors.ts';

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Metadata value types. */
export enum GGUFType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}

/** ggml tensor types (ids as in ggml.h). */
export enum GGMLType {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
}

/** [elements per block, bytes per block] of each known ggml type. */
export const GGML_TYPE_SIZE: Record<number, [number, number]> = {
  [GGMLType.F32]: [1, 4], [GGMLType.F16]: [1, 2], [GGMLType.BF16]: [1, 2], [GGMLType.F64]: [1, 8],
  [GGMLType.I8]: [1, 1], [GGMLType.I16]: [1, 2], [GGMLType.I32]: [1, 4], [GGMLType.I64]: [1, 8],
  [GGMLType.Q4_0]: [32, 18], [GGMLType.Q4_1]: [32, 20], [GGMLType.Q5_0]: [32, 22], [GGMLType.Q5_1]: [32, 24],
  [GGMLType.Q8_0]: [32, 34], [GGMLType.Q8_1]: [32, 36],
  [GGMLType.Q2_K]: [256, 84], [GGMLType.Q3_K]: [256, 110], [GGMLType.Q4_K]: [256, 144],
  [GGMLType.Q5_K]: [256, 176], [GGMLType.Q6_K]: [256, 210], [GGMLType.Q8_K]: [256, 292],
  [GGMLType.IQ2_XXS]: [256, 66], [GGMLType.IQ2_XS]: [256, 74], [GGMLType.IQ3_XXS]: [256, 98],
  [GGMLType.IQ1_S]: [256, 50], [GGMLType.IQ4_NL]: [32, 18], [GGMLType.IQ3_S]: [256, 110],
  [GGMLType.IQ2_S]: [256, 82], [GGMLType.IQ4_XS]: [256, 136], [GGMLType.IQ1_M]: [256, 56],
  [GGMLType.TQ1_0]: [256, 54], [GGMLType.TQ2_0]: [256, 66], [GGMLType.MXFP4]: [32, 17],
};

/** Types that dequantize to f32 here. */
export const GGML_DEQUANT_TYPES: GGMLType[] = [
  GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.F64,
  GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q8_0,
  GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K,
];

export function ggmlTypeName(t: number): string {
  return GGMLType[t] ?? `type ${t}`;
}

export type GGUFValue = number | bigint | boolean | string | GGUFValue[];

export interface GGUFTensorInfo {
  name: string;
  /** ggml dims, innermost first (ne0, ne1, ...) */
  dims: number[];
  /** row-major shape (dims reversed): a matrix is (ne1, ne0) = (out, in) */
  shape: number[];
  type: GGMLType;
  /** offset relative to the data section */
  offset: number;
  /** absolute byte range in the file */
  begin: number;
  end: number;
}

export interface GGUFFile {
  file: string;
  fileSize: number;
  version: number;
  alignment: number;
  /** absolute offset of the tensor data section */
  dataStart: number;
  metadata: Map<string, GGUFValue>;
  /** the stored type of each metadata value (and of array items) */
  metadataTypes: Map<string, { type: GGUFType; itemType?: GGUFType }>;
  tensors: Map<string, GGUFTensorInfo>;
}

function fail(file: string, why: string): never {
  throw new Error(`${file}: invalid GGUF file: ${why}`);
}

class NeedMore extends Error {}

class Reader {
  pos = 0;
  dv: DataView;
  td = new TextDecoder('utf-8');
  constructor(public file: string, public buf: Uint8Array, public fileSize: number) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  need(n: number, what: string): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.buf.length < this.fileSize) throw new NeedMore();
    fail(this.file, `truncated: ${what} at byte ${this.pos} needs ${n} bytes, but the file has ${this.fileSize}`);
  }
  u8() { this.need(1, 'u8'); return this.dv.getUint8(this.pos++); }
  i8() { this.need(1, 'i8'); return this.dv.getInt8(this.pos++); }
  u16() { this.need(2, 'u16'); const v = this.dv.getUint16(this.pos, true); this.pos += 2; return v; }
  i16() { this.need(2, 'i16'); const v = this.dv.getInt16(this.pos, true); this.pos += 2; return v; }
  u32() { this.need(4, 'u32'); const v = this.dv.getUint32(this.pos, true); this.pos += 4; return v; }
  i32() { this.need(4, 'i32'); const v = this.dv.getInt32(this.pos, true); this.pos += 4; return v; }
  f32() { this.need(4, 'f32'); const v = this.dv.getFloat32(this.pos, true); this.pos += 4; return v; }
  f64() { this.need(8, 'f64'); const v = this.dv.getFloat64(this.pos, true); this.pos += 8; return v; }
  u64(): number | bigint {
    this.need(8, 'u64');
    const v = this.dv.getBigUint64(this.pos, true);
    this.pos += 8;
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  i64(): number | bigint {
    this.need(8, 'i64');
    const v = this.dv.getBigInt64(this.pos, true);
    this.pos += 8;
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
  }
  /** u64 that must be a usable count/size */
  size(what: string): number {
    const v = this.u64();
    if (typeof v === 'bigint' || v > this.fileSize * 8 + 1e6) fail(this.file, `${what} ${v} at byte ${this.pos - 8} is implausibly large (corrupt file?)`);
    return v;
  }
  str(what: string): string {
    const n = this.size(`${what} length`);
    this.need(n, what);
    const s = this.td.decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
}

/** The shortest decimal that rounds to the same f32 (metadata 1e-5 reads as 1e-5, not 9.99999974e-6). */
function shortestF32(v: number): number {
  if (!Number.isFinite(v)) return v;
  for (let p = 1; p <= 9; p++) {
    const d = Number(v.toPrecision(p));
    if (Math.fround(d) === v) return d;
  }
  return v;
}

function readValue(r: Reader, type: number, key: string): GGUFValue {
  switch (type) {
    case GGUFType.UINT8: return r.u8();
    case GGUFType.INT8: return r.i8();
    case GGUFType.UINT16: return r.u16();
    case GGUFType.INT16: return r.i16();
    case GGUFType.UINT32: return r.u32();
    case GGUFType.INT32: return r.i32();
    case GGUFType.FLOAT32: return shortestF32(r.f32());
    case GGUFType.BOOL: {
      const b = r.u8();
      if (b > 1) fail(r.file, `metadata '${key}': bool value ${b} is neither 0 nor 1`);
      return b === 1;
    }
    case GGUFType.STRING: return r.str(`metadata '${key}' string`);
    case GGUFType.UINT64: return r.u64();
    case GGUFType.INT64: return r.i64();
    case GGUFType.FLOAT64: return r.f64();
    case GGUFType.ARRAY: {
      const it = r.u32();
      const n = r.size(`metadata '${key}' array length`);
      const out: GGUFValue[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = readValue(r, it, key);
      return out;
    }
    default:
      fail(r.file, `metadata '${key}' has unknown value type ${type}`);
  }
}

/**
 * Parse a GGUF header (metadata + tensor infos) from `prefix`, the first bytes of a file of
 * `fileSize` bytes. Throws NeedMore (internal) when `prefix` is too short but the file is longer.
 */
function parseGGUFPrefix(file: string, prefix: Uint8Array, fileSize: number): GGUFFile {
  const r = new Reader(file, prefix, fileSize);
  if (fileSize < 4) fail(file, `truncated: ${fileSize} bytes`);
  const magic = r.u32();
  if (magic !== GGUF_MAGIC) {
    const got = Array.from(prefix.subarray(0, 4), (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
    fail(file, `bad magic '${got}' (expected 'GGUF'; not a GGUF file)`);
  }
  const version = r.u32();
  if (version === 1) fail(file, `unsupported GGUF version 1 (supported: 2, 3; re-convert the model with a current llama.cpp)`);
  if (version !== 2 && version !== 3) {
    const swapped = ((version & 0xff) << 24) | ((version & 0xff00) << 8) | ((version >>> 8) & 0xff00) | (version >>> 24);
    if (swapped === 2 || swapped === 3) fail(file, `big-endian GGUF (version ${swapped}) is not supported`);
    fail(file, `unsupported GGUF version ${version} (supported: 2, 3)`);
  }
  const nTensors = r.size('tensor count');
  const nKV = r.size('metadata count');
  const metadata = new Map<string, GGUFValue>();
  const metadataTypes = new Map<string, { type: GGUFType; itemType?: GGUFType }>();
  for (let i = 0; i < nKV; i++) {
    const key = r.str('metadata key');
    const type = r.u32();
    let itemType: number | undefined;
    if (type === GGUFType.ARRAY) {
      // peek the item type for metadataTypes (readValue re-reads it)
      r.need(4, 'array type');
      itemType = r.dv.getUint32(r.pos, true);
    }
    const v = readValue(r, type, key);
    if (metadata.has(key)) fail(file, `duplicate metadata key '${key}'`);
    metadata.set(key, v);
    metadataTypes.set(key, itemType === undefined ? { type } : { type, itemType });
  }
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (metadata.has('general.alignment')) {
    const a = metadata.get('general.alignment');
    if (typeof a !== 'number' || a <= 0 || (a & (a - 1)) !== 0) fail(file, `general.alignment ${a} is not a power of two`);
    alignment = a;
  }
  const infos: Omit<GGUFTensorInfo, 'begin' | 'end'>[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = r.str('tensor name');
    const nd = r.u32();
    if (nd > 8) fail(file, `tensor '${name}': ${nd} dimensions (at most 8)`);
    const dims: number[] = [];
    for (let d = 0; d < nd; d++) dims.push(r.size(`tensor '${name}' dim`));
    const type = r.u32();
    const offset = r.size(`tensor '${name}' offset`);
    if (!GGML_TYPE_SIZE[type]) fail(file, `tensor '${name}' has unknown ggml type ${type}`);
    if (seen.has(name)) fail(file, `duplicate tensor '${name}'`);
    seen.add(name);
    infos.push({ name, dims, shape: [...dims].reverse(), type, offset });
  }
  const dataStart = Math.ceil(r.pos / alignment) * alignment;
  const tensors = new Map<string, GGUFTensorInfo>();
  for (const t of infos) {
    const [bs, ts] = GGML_TYPE_SIZE[t.type];
    const ne0 = t.dims[0] ?? 1;
    if (ne0 % bs !== 0) fail(file, `tensor '${t.name}': row length ${ne0} is not a multiple of the ${ggmlTypeName(t.type)} block size ${bs}`);
    const rows = t.dims.slice(1).reduce((a, b) => a * b, 1);
    const nbytes = (ne0 / bs) * ts * rows;
    if (t.offset % alignment !== 0) fail(file, `tensor '${t.name}': offset ${t.offset} is not a multiple of the alignment ${alignment}`);
    const begin = dataStart + t.offset, end = begin + nbytes;
    if (end > fileSize) {
      fail(file, `tensor '${t.name}' (${ggmlTypeName(t.type)} [${t.dims}], ${nbytes} bytes at ${begin}) runs past the end of the file (${fileSize} bytes; truncated?)`);
    }
    tensors.set(t.name, { ...t, begin, end });
  }
  const sorted = [...tensors.values()].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) fail(file, `tensors '${sorted[i - 1].name}' and '${sorted[i].name}' overlap`);
  }
  return { file, fileSize, version, alignment, dataStart, metadata, metadataTypes, tensors };
}

/** Parse a whole in-memory GGUF file's header. */
export function parseGGUF(file: string, bytes: Uint8Array): GGUFFile {
  return parseGGUFPrefix(file, bytes, bytes.length);
}

/** Read a GGUF header from a (possibly huge) file, fetching only as many bytes as it needs. */
export async function readGGUFHeader(f: RandomAccessFile): Promise<GGUFFile> {
  let n = Math.min(f.size, 1 << 20);
  for (;;) {
    const prefix = await f.read(0, n);
    try {
      return parseGGUFPrefix(f.label, prefix, prefix.length < n ? prefix.length : f.size);
    } catch (e) {
      if (!(e instanceof NeedMore) || n >= f.size) throw e;
      n = Math.min(f.size, n * 4);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Dequantization (ggml-quants.c dequantize_row_*; all arithmetic in f32 like ggml)

const fr = Math.fround;

/**
 * Dequantize `n` elements of ggml `type` from `src` (starting at byte 0) into a new Float32Array.
 * `what` names the tensor in errors.
 */
export function dequantize(type: GGMLType, src: Uint8Array, n: number, what = 'tensor'): Float32Array {
  const size = GGML_TYPE_SIZE[type];
  if (!size) throw new Error(`${what}: unknown ggml type ${type}`);
  const [bs, ts] = size;
  if (n % bs !== 0) throw new Error(`${what}: ${n} elements is not a multiple of the ${ggmlTypeName(type)} block size ${bs}`);
  const nb = n / bs;
  if (src.length < nb * ts) throw new Error(`${what}: ${src.length} bytes, ${ggmlTypeName(type)} × ${n} needs ${nb * ts}`);
  const y = new Float32Array(n);
  const h = f16Table();
  const f16 = (p: number) => h[src[p] | (src[p + 1] << 8)];
  const i8 = (p: number) => (src[p] << 24) >> 24;
  switch (type) {
    case GGMLType.F32: return f32ArrayFromBytes(src, 0, n);
    case GGMLType.F16: return f16ArrayToF32(src, 0, n, y);
    case GGMLType.BF16: return bf16ArrayToF32(src, 0, n, y);
    case GGMLType.F64: {
      const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
      for (let i = 0; i < n; i++) y[i] = dv.getFloat64(8 * i, true);
      return y;
    }
    case GGMLType.Q8_0: // { f16 d; int8 qs[32] }: y = d·q
      for (let i = 0; i < nb; i++) {
        const b = i * 34, d = f16(b), o = i * 32;
        for (let j = 0; j < 32; j++) y[o + j] = d * i8(b + 2 + j);
      }
      return y;
    case GGMLType.Q4_0: // { f16 d; u8 qs[16] }: y[j] = d·((qs[j]&15)−8), y[j+16] = d·((qs[j]>>4)−8)
      for (let i = 0; i < nb; i++) {
        const b = i * 18, d = f16(b), o = i * 32;
        for (let j = 0; j < 16; j++) {
          const q = src[b + 2 + j];
          y[o + j] = ((q & 15) - 8) * d;
          y[o + j + 16] = ((q >> 4) - 8) * d;
        }
      }
      return y;
    case GGMLType.Q4_1: // { f16 d, m; u8 qs[16] }: y = d·q + m
      for (let i = 0; i < nb; i++) {
        const b = i * 20, d = f16(b), m = f16(b + 2), o = i * 32;
        for (let j = 0; j < 16; j++) {
          const q = src[b + 4 + j];
          y[o + j] = fr((q & 15) * d) + m;
          y[o + j + 16] = fr((q >> 4) * d) + m;
        }
      }
      return y;
    case GGMLType.Q5_0: // { f16 d; u8 qh[4]; u8 qs[16] }: 5th bit of element j in bit j of qh
      for (let i = 0; i < nb; i++) {
        const b = i * 22, d = f16(b), o = i * 32;
        const qh = (src[b + 2] | (src[b + 3] << 8) | (src[b + 4] << 16) | (src[b + 5] << 24)) >>> 0;
        for (let j = 0; j < 16; j++) {
          const q = src[b + 6 + j];
          const h0 = ((qh >>> j) << 4) & 0x10, h1 = (qh >>> (j + 12)) & 0x10;
          y[o + j] = (((q & 15) | h0) - 16) * d;
          y[o + j + 16] = (((q >> 4) | h1) - 16) * d;
        }
      }
      return y;
    case GGMLType.Q5_1: // { f16 d, m; u8 qh[4]; u8 qs[16] }: y = d·q + m
      for (let i = 0; i < nb; i++) {
        const b = i * 24, d = f16(b), m = f16(b + 2), o = i * 32;
        const qh = (src[b + 4] | (src[b + 5] << 8) | (src[b + 6] << 16) | (src[b + 7] << 24)) >>> 0;
        for (let j = 0; j < 16; j++) {
          const q = src[b + 8 + j];
          const h0 = ((qh >>> j) << 4) & 0x10, h1 = (qh >>> (j + 12)) & 0x10;
          y[o + j] = fr(((q & 15) | h0) * d) + m;
          y[o + j + 16] = fr(((q >> 4) | h1) * d) + m;
        }
      }
      return y;
    case GGMLType.Q2_K: // { u8 scales[16]; u8 qs[64]; f16 d, dmin }
      for (let i = 0; i < nb; i++) {
        const b = i * 84, d = f16(b + 80), dmin = f16(b + 82);
        let o = i * 256, is = 0, q = b + 16;
        for (let n0 = 0; n0 < 256; n0 += 128) {
          for (let shift = 0; shift < 8; shift += 2) {
            let sc = src[b + is++];
            let dl = fr(d * (sc & 15)), ml = fr(dmin * (sc >> 4));
            for (let l = 0; l < 16; l++) y[o++] = fr(dl * ((src[q + l] >> shift) & 3)) - ml;
            sc = src[b + is++];
            dl = fr(d * (sc & 15)); ml = fr(dmin * (sc >> 4));
            for (let l = 0; l < 16; l++) y[o++] = fr(dl * ((src[q + l + 16] >> shift) & 3)) - ml;
          }
          q += 32;
        }
      }
      return y;
    case GGMLType.Q3_K: { // { u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d }
      const sc = new Int8Array(16);
      for (let i = 0; i < nb; i++) {
        const b = i * 110, dAll = f16(b + 108);
        // unpack 16 6-bit scales (kmask dance of ggml, done bytewise)
        const s = src.subarray(b + 96, b + 108);
        for (let j = 0; j < 16; j++) {
          const low = j < 8 ? s[j] & 15 : s[j - 8] >> 4;
          const high = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
          sc[j] = (low | (high << 4)) - 32;
        }
        let o = i * 256, is = 0, q = b + 32, m = 1;
        for (let n0 = 0; n0 < 256; n0 += 128) {
          for (let shift = 0; shift < 8; shift += 2) {
            let dl = fr(dAll * sc[is++]);
            for (let l = 0; l < 16; l++) y[o++] = dl * (((src[q + l] >> shift) & 3) - (src[b + l] & m ? 0 : 4));
            dl = fr(dAll * sc[is++]);
            for (let l = 0; l < 16; l++) y[o++] = dl * (((src[q + l + 16] >> shift) & 3) - (src[b + l + 16] & m ? 0 : 4));
            m <<= 1;
          }
          q += 32;
        }
      }
      return y;
    }
    case GGMLType.Q4_K: // { f16 d, dmin; u8 scales[12]; u8 qs[128] }
      for (let i = 0; i < nb; i++) {
        const b = i * 144, d = f16(b), dmin = f16(b + 2), s = b + 4;
        let q = b + 16, o = i * 256;
        for (let j = 0, is = 0; j < 256; j += 64, is += 2) {
          const [sc1, m1] = scaleMinK4(src, s, is), [sc2, m2] = scaleMinK4(src, s, is + 1);
          const d1 = fr(d * sc1), mm1 = fr(dmin * m1), d2 = fr(d * sc2), mm2 = fr(dmin * m2);
          for (let l = 0; l < 32; l++) y[o++] = fr(d1 * (src[q + l] & 15)) - mm1;
          for (let l = 0; l < 32; l++) y[o++] = fr(d2 * (src[q + l] >> 4)) - mm2;
          q += 32;
        }
      }
      return y;
    case GGMLType.Q5_K: // { f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] }
      for (let i = 0; i < nb; i++) {
        const b = i * 176, d = f16(b), dmin = f16(b + 2), s = b + 4, qh = b + 16;
        let ql = b + 48, o = i * 256, u1 = 1, u2 = 2;
        for (let j = 0, is = 0; j < 256; j += 64, is += 2) {
          const [sc1, m1] = scaleMinK4(src, s, is), [sc2, m2] = scaleMinK4(src, s, is + 1);
          const d1 = fr(d * sc1), mm1 = fr(dmin * m1), d2 = fr(d * sc2), mm2 = fr(dmin * m2);
          for (let l = 0; l < 32; l++) y[o++] = fr(d1 * ((src[ql + l] & 15) + (src[qh + l] & u1 ? 16 : 0))) - mm1;
          for (let l = 0; l < 32; l++) y[o++] = fr(d2 * ((src[ql + l] >> 4) + (src[qh + l] & u2 ? 16 : 0))) - mm2;
          ql += 32;
          u1 <<= 2;
          u2 <<= 2;
        }
      }
      return y;
    case GGMLType.Q6_K: // { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d }
      for (let i = 0; i < nb; i++) {
        const b = i * 210, d = f16(b + 208);
        let ql = b, qh = b + 128, sc = b + 192, o = i * 256;
        for (let n0 = 0; n0 < 256; n0 += 128) {
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const q1 = ((src[ql + l] & 15) | (((src[qh + l] >> 0) & 3) << 4)) - 32;
            const q2 = ((src[ql + l + 32] & 15) | (((src[qh + l] >> 2) & 3) << 4)) - 32;
            const q3 = ((src[ql + l] >> 4) | (((src[qh + l] >> 4) & 3) << 4)) - 32;
            const q4 = ((src[ql + l + 32] >> 4) | (((src[qh + l] >> 6) & 3) << 4)) - 32;
            y[o + l] = fr(d * i8(sc + is)) * q1;
            y[o + l + 32] = fr(d * i8(sc + is + 2)) * q2;
            y[o + l + 64] = fr(d * i8(sc + is + 4)) * q3;
            y[o + l + 96] = fr(d * i8(sc + is + 6)) * q4;
          }
          o += 128;
          ql += 64;
          qh += 32;
          sc += 8;
        }
      }
      return y;
    default:
      throw new Error(`${what}: ggml type ${ggmlTypeName(type)} cannot be dequantized here (supported: ${GGML_DEQUANT_TYPES.map(ggmlTypeName).join(', ')})`);
  }
}

/** ggml get_scale_min_k4: the j-th (6-bit scale, 6-bit min) of a Q4_K/Q5_K 12-byte scales field. */
function scaleMinK4(q: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [q[s + j] & 63, q[s + j + 4] & 63];
  return [(q[s + j + 4] & 15) | ((q[s + j - 4] >> 6) << 4), (q[s + j + 4] >> 4) | ((q[s + j] >> 6) << 4)];
}

/** Read one tensor of a GGUF file as f32 (row-major `info.shape`). */
export async function readGGUFTensor(f: RandomAccessFile, g: GGUFFile, name: string): Promise<Float32Array> {
  const t = g.tensors.get(name);
  if (!t) throw new Error(`${f.label}: no tensor '${name}'`);
  const what = `${f.label}: tensor '${name}'`;
  if (!GGML_DEQUANT_TYPES.includes(t.type)) dequantize(t.type, new Uint8Array(0), 0, what);
  const bytes = await f.read(t.begin, t.end);
  if (bytes.length !== t.end - t.begin) fail(f.label, `truncated while reading tensor '${name}'`);
  return dequantize(t.type, bytes, t.shape.reduce((a, b) => a * b, 1), what);
}

/** A TensorStore (shared with safetensors) over the tensors of one GGUF file. */
export function ggufStore(f: RandomAccessFile, g: GGUFFile): TensorStore & { gguf: GGUFFile; readRaw(name: string): Promise<Uint8Array> } {
  return {
    label: f.label,
    gguf: g,
    metadata: {},
    names: () => [...g.tensors.keys()],
    info: (name): StoredTensor | undefined => {
      const t = g.tensors.get(name);
      return t && { name, shape: t.shape, dtype: ggmlTypeName(t.type), file: f.label };
    },
    read: (name) => readGGUFTensor(f, g, name),
    readRaw: async (name) => {
      const t = g.tensors.get(name);
      if (!t) throw new Error(`${f.label}: no tensor '${name}'`);
      return f.read(t.begin, t.end);
    },
  };
}

/** Open an in-memory GGUF file as a TensorStore. */
export function ggufStoreFromBytes(label: string, bytes: Uint8Array) {
  return ggufStore(bytesFile(label, bytes), parseGGUF(label, bytes));
}

// ---------------------------------------------------------------------------------------------
// Writer

export interface GGUFKV {
  key: string;
  /** stored type; inferred when absent (string → STRING, boolean → BOOL, integer → UINT32/INT32/INT64, other number → FLOAT32, arrays from their items) */
  type?: GGUFType;
  /** item type of an ARRAY value (inferred when absent) */
  itemType?: GGUFType;
  value: GGUFValue;
}

export interface GGUFTensorInput {
  name: string;
  /** row-major shape, e.g. (out, in) for a matrix; written as ggml dims reversed */
  shape: number[];
  /** f32 values (stored as `type`: F32 default, or F16), or raw bytes already in `type`'s layout */
  data: Float32Array | Uint8Array;
  type?: GGMLType;
}

function inferType(v: GGUFValue): GGUFType {
  if (typeof v === 'string') return GGUFType.STRING;
  if (typeof v === 'boolean') return GGUFType.BOOL;
  if (typeof v === 'bigint') return v < 0n ? GGUFType.INT64 : GGUFType.UINT64;
  if (Array.isArray(v)) return GGUFType.ARRAY;
  if (Number.isInteger(v)) return v >= 0 && v < 2 ** 32 ? GGUFType.UINT32 : v >= -(2 ** 31) && v < 2 ** 31 ? GGUFType.INT32 : GGUFType.INT64;
  return GGUFType.FLOAT32;
}

function inferItemType(items: GGUFValue[]): GGUFType {
  if (items.length === 0) return GGUFType.INT32;
  if (items.every((x) => typeof x === 'number')) {
    if (items.every((x) => Number.isInteger(x))) {
      return (items as number[]).every((x) => x >= -(2 ** 31) && x < 2 ** 31) ? GGUFType.INT32 : GGUFType.INT64;
    }
    return GGUFType.FLOAT32;
  }
  return inferType(items[0]);
}

class Writer {
  chunks: Uint8Array[] = [];
  len = 0;
  enc = new TextEncoder();
  push(b: Uint8Array) { this.chunks.push(b); this.len += b.length; }
  num(n: number | bigint, bytes: number, set: (dv: DataView) => void) {
    const b = new Uint8Array(bytes);
    set(new DataView(b.buffer));
    this.push(b);
    void n;
  }
  u8(v: number) { this.num(v, 1, (d) => d.setUint8(0, v)); }
  i8(v: number) { this.num(v, 1, (d) => d.setInt8(0, v)); }
  u16(v: number) { this.num(v, 2, (d) => d.setUint16(0, v, true)); }
  i16(v: number) { this.num(v, 2, (d) => d.setInt16(0, v, true)); }
  u32(v: number) { this.num(v, 4, (d) => d.setUint32(0, v, true)); }
  i32(v: number) { this.num(v, 4, (d) => d.setInt32(0, v, true)); }
  f32(v: number) { this.num(v, 4, (d) => d.setFloat32(0, v, true)); }
  f64(v: number) { this.num(v, 8, (d) => d.setFloat64(0, v, true)); }
  u64(v: number | bigint) { this.num(v, 8, (d) => d.setBigUint64(0, BigInt(v), true)); }
  i64(v: number | bigint) { this.num(v, 8, (d) => d.setBigInt64(0, BigInt(v), true)); }
  str(s: string) { const b = this.enc.encode(s); this.u64(b.length); this.push(b); }
  pad(align: number) { const p = (align - (this.len % align)) % align; if (p) this.push(new Uint8Array(p)); }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.len);
    let o = 0;
    for (const c of this.chunks) { out.set(c, o); o += c.length; }
    return out;
  }
}

function writeValue(w: Writer, type: GGUFType, v: GGUFValue, key: string, itemType?: GGUFType): void {
  const num = () => {
    if (typeof v !== 'number' && typeof v !== 'bigint') throw new Error(`writeGGUF: '${key}' must be a number`);
    return v as number;
  };
  switch (type) {
    case GGUFType.UINT8: return w.u8(num());
    case GGUFType.INT8: return w.i8(num());
    case GGUFType.UINT16: return w.u16(num());
    case GGUFType.INT16: return w.i16(num());
    case GGUFType.UINT32: return w.u32(num());
    case GGUFType.INT32: return w.i32(num());
    case GGUFType.FLOAT32: return w.f32(num());
    case GGUFType.FLOAT64: return w.f64(num());
    case GGUFType.UINT64: return w.u64(num());
    case GGUFType.INT64: return w.i64(num());
    case GGUFType.BOOL: return w.u8(v ? 1 : 0);
    case GGUFType.STRING:
      if (typeof v !== 'string') throw new Error(`writeGGUF: '${key}' must be a string`);
      return w.str(v);
    case GGUFType.ARRAY: {
      if (!Array.isArray(v)) throw new Error(`writeGGUF: '${key}' must be an array`);
      const it = itemType ?? inferItemType(v);
      w.u32(it);
      w.u64(v.length);
      for (const x of v) writeValue(w, it, x, key, Array.isArray(x) ? inferItemType(x) : undefined);
      return;
    }
    default:
      throw new Error(`writeGGUF: '${key}': unknown type ${type}`);
  }
}

/**
 * Serialize metadata and tensors to GGUF bytes (version 3 by default). `general.alignment` is
 * honoured when given in `kv`. F32 data with `type: F16` is converted; other non-F32 types need
 * raw bytes in ggml's block layout.
 */
export function writeGGUF(kv: GGUFKV[], tensors: GGUFTensorInput[], opts: { version?: number; alignment?: number } = {}): Uint8Array {
  const alignKV = kv.find((k) => k.key === 'general.alignment');
  const alignment = opts.alignment ?? (alignKV ? Number(alignKV.value) : GGUF_DEFAULT_ALIGNMENT);
  const w = new Writer();
  w.u32(GGUF_MAGIC);
  w.u32(opts.version ?? 3);
  w.u64(tensors.length);
  w.u64(kv.length);
  for (const e of kv) {
    w.str(e.key);
    const t = e.type ?? inferType(e.value);
    w.u32(t);
    writeValue(w, t, e.value, e.key, e.itemType);
  }
  const datas: Uint8Array[] = [];
  let off = 0;
  for (const t of tensors) {
    const type = t.type ?? GGMLType.F32;
    const n = t.shape.reduce((a, b) => a * b, 1);
    let bytes: Uint8Array;
    if (t.data instanceof Float32Array) {
      if (t.data.length !== n) throw new Error(`writeGGUF: tensor '${t.name}' has ${t.data.length} values, shape [${t.shape}] needs ${n}`);
      if (type === GGMLType.F32) bytes = new Uint8Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + 4 * n));
      else if (type === GGMLType.F16) {
        const u = new Uint16Array(n);
        for (let i = 0; i < n; i++) u[i] = f32ToF16(t.data[i]);
        bytes = new Uint8Array(u.buffer);
      } else throw new Error(`writeGGUF: tensor '${t.name}': f32 data can only be written as F32 or F16 (give raw bytes for ${ggmlTypeName(type)})`);
    } else bytes = t.data;
    w.str(t.name);
    w.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) w.u64(d);
    w.u32(type);
    w.u64(off);
    datas.push(bytes);
    off += Math.ceil(bytes.length / alignment) * alignment;
  }
  w.pad(alignment);
  for (const b of datas) {
    w.push(b);
    w.pad(alignment);
  }
  return w.bytes();
}

// ---------------------------------------------------------------------------------------------
// Metadata helpers

/** A metadata value as a number (u64/i64 big values converted), or `def` when absent. */
export function ggufNumber(g: GGUFFile, key: string, def?: number): number {
  const v = g.metadata.get(key);
  if (v === undefined) {
    if (def === undefined) throw new Error(`${g.file}: required metadata '${key}' is missing`);
    return def;
  }
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  throw new Error(`${g.file}: metadata '${key}' is ${Array.isArray(v) ? 'an array' : typeof v}, expected a number`);
}

export function ggufString(g: GGUFFile, key: string): string | undefined {
  const v = g.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new Error(`${g.file}: metadata '${key}' is not a string`);
  return v;
}
