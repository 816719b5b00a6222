// A minimal protocol-buffers writer and the ONNX messages whittle's ONNX exporter needs
// (../onnx.ts). No dependencies, no DOM, no node:*.
//
// Messages are built as trees of parts (bytes, nested messages, or lazy blobs whose size is known
// up front and whose bytes are written only at serialization), so multi-hundred-MB initializers
// are transposed straight into the final buffer instead of being copied several times.
// Encoding follows onnx.proto (proto2): every field is written explicitly, repeated scalars are
// unpacked (one tag per element, the proto2 default; every parser accepts it), int64 varints of
// negative values take the 10-byte two's-complement form.
// Field numbers used (onnx.proto):
//   ModelProto: ir_version 1, producer_name 2, producer_version 3, doc_string 6, graph 7,
//               opset_import 8, metadata_props 14
//   OperatorSetIdProto: domain 1, version 2          StringStringEntryProto: key 1, value 2
//   GraphProto: node 1, name 2, initializer 5, doc_string 10, input 11, output 12
//   NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, domain 7
//   AttributeProto: name 1, f 2, i 3, s 4, t 5, floats 7, ints 8, type 20
//   TensorProto: dims 1, data_type 2, name 8, raw_data 9, external_data 13, data_location 14
//   ValueInfoProto: name 1, type 2     TypeProto: tensor_type 1     TypeProto.Tensor: elem_type 1,
//   shape 2     TensorShapeProto: dim 1     Dimension: dim_value 1, dim_param 2

/** A blob whose bytes are produced at serialization time. */
export interface Lazy {
  readonly size: number;
  write(dst: Uint8Array, offset: number): void;
}

type Part = Uint8Array | Msg | Lazy;

const WIRE_VARINT = 0, WIRE_FIXED32 = 5, WIRE_LEN = 2;
const utf8 = new TextEncoder();

function varintBytes(v: number | bigint): Uint8Array {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 0x80000000) {
    const out: number[] = [];
    while (v >= 0x80) {
      out.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    out.push(v);
    return Uint8Array.from(out);
  }
  if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new Error(`protobuf: varint ${v} is not a safe integer`);
  let b = BigInt.asUintN(64, BigInt(v));
  const out: number[] = [];
  while (b >= 0x80n) {
    out.push(Number(b & 0x7fn) | 0x80);
    b >>= 7n;
  }
  out.push(Number(b));
  return Uint8Array.from(out);
}

function isLazy(p: Part): p is Lazy {
  return !(p instanceof Uint8Array) && !(p instanceof Msg);
}

/** One protobuf message under construction; nested messages are appended once complete. */
export class Msg {
  readonly parts: Part[] = [];
  size = 0;

  private raw(p: Part, n: number): this {
    this.parts.push(p);
    this.size += n;
    return this;
  }

  private tag(field: number, wire: number): this {
    const b = varintBytes(field * 8 + wire);
    return this.raw(b, b.length);
  }

  varint(field: number, v: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    const b = varintBytes(v);
    return this.raw(b, b.length);
  }

  /** repeated int64, unpacked */
  varints(field: number, vs: ArrayLike<number>): this {
    for (let i = 0; i < vs.length; i++) this.varint(field, vs[i]);
    return this;
  }

  float(field: number, f: number): this {
    this.tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, f, true);
    return this.raw(b, 4);
  }

  /** repeated float, unpacked */
  floats(field: number, fs: ArrayLike<number>): this {
    for (let i = 0; i < fs.length; i++) this.float(field, fs[i]);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    const n = varintBytes(data.length);
    this.raw(n, n.length);
    return this.raw(data, data.length);
  }

  string(field: number, s: string): this {
    return this.bytes(field, utf8.encode(s));
  }

  msg(field: number, m: Msg): this {
    this.tag(field, WIRE_LEN);
    const n = varintBytes(m.size);
    this.raw(n, n.length);
    return this.raw(m, m.size);
  }

  /** A length-delimited field whose bytes are written at serialization. */
  lazy(field: number, blob: Lazy): this {
    this.tag(field, WIRE_LEN);
    const n = varintBytes(blob.size);
    this.raw(n, n.length);
    return this.raw(blob, blob.size);
  }

  /** Serialize into a new buffer (its size is exactly this.size). */
  toBytes(): Uint8Array {
    if (this.size > 0x7fffffff) throw new Error(`protobuf: message of ${this.size} bytes exceeds the 2 GiB protobuf limit`);
    const out = new Uint8Array(this.size);
    const end = writeParts(this, out, 0);
    if (end !== this.size) throw new Error(`protobuf: wrote ${end} bytes, expected ${this.size}`);
    return out;
  }
}

function writeParts(m: Msg, dst: Uint8Array, off: number): number {
  for (const p of m.parts) {
    if (p instanceof Uint8Array) {
      dst.set(p, off);
      off += p.length;
    } else if (p instanceof Msg) {
      off = writeParts(p, dst, off);
    } else if (isLazy(p)) {
      p.write(dst, off);
      off += p.size;
    }
  }
  return off;
}

// ---------------------------------------------------------------------------------------------
// ONNX messages

export const DType = { FLOAT: 1, INT64: 7, BOOL: 9 } as const;
export type DTypeCode = (typeof DType)[keyof typeof DType];

export type AttrValue =
  | { kind: 'int'; v: number }
  | { kind: 'ints'; v: number[] }
  | { kind: 'float'; v: number }
  | { kind: 'floats'; v: number[] }
  | { kind: 'string'; v: string };

export const attr = {
  int: (v: number): AttrValue => ({ kind: 'int', v }),
  ints: (v: number[]): AttrValue => ({ kind: 'ints', v }),
  float: (v: number): AttrValue => ({ kind: 'float', v }),
  floats: (v: number[]): AttrValue => ({ kind: 'floats', v }),
  string: (v: string): AttrValue => ({ kind: 'string', v }),
};

// AttributeProto.AttributeType
const ATTR_TYPE = { float: 1, int: 2, string: 3, floats: 6, ints: 7 } as const;

export function attributeProto(name: string, a: AttrValue): Msg {
  const m = new Msg().string(1, name);
  switch (a.kind) {
    case 'int': m.varint(3, a.v); break;
    case 'ints': m.varints(8, a.v); break;
    case 'float': m.float(2, a.v); break;
    case 'floats': m.floats(7, a.v); break;
    case 'string': m.string(4, a.v); break;
  }
  return m.varint(20, ATTR_TYPE[a.kind]);
}

export function nodeProto(op: string, inputs: string[], outputs: string[], name: string, attrs: Record<string, AttrValue> = {}): Msg {
  const m = new Msg();
  for (const i of inputs) m.string(1, i);
  for (const o of outputs) m.string(2, o);
  m.string(3, name).string(4, op);
  for (const [k, v] of Object.entries(attrs)) m.msg(5, attributeProto(k, v));
  return m;
}

/** A tensor dimension: a fixed size or a symbolic name. */
export type Dim = number | string;

export function valueInfoProto(name: string, elemType: DTypeCode, dims: Dim[]): Msg {
  const shape = new Msg();
  for (const d of dims) shape.msg(1, typeof d === 'number' ? new Msg().varint(1, d) : new Msg().string(2, d));
  const tensorType = new Msg().varint(1, elemType).msg(2, shape);
  return new Msg().string(1, name).msg(2, new Msg().msg(1, tensorType));
}

/** TensorProto with its bytes inline (raw_data, little-endian). */
export function tensorProtoRaw(name: string, dataType: DTypeCode, dims: number[], raw: Uint8Array | Lazy): Msg {
  const m = new Msg().varints(1, dims).varint(2, dataType).string(8, name);
  return raw instanceof Uint8Array ? m.bytes(9, raw) : m.lazy(9, raw);
}

/** TensorProto whose bytes live in an external file (data_location EXTERNAL). */
export function tensorProtoExternal(name: string, dataType: DTypeCode, dims: number[], location: string, offset: number, length: number): Msg {
  const m = new Msg().varints(1, dims).varint(2, dataType).string(8, name);
  for (const [k, v] of [['location', location], ['offset', String(offset)], ['length', String(length)]]) {
    m.msg(13, new Msg().string(1, k).string(2, v));
  }
  return m.varint(14, 1);
}

export interface ModelProtoParts {
  irVersion: number;
  opset: number;
  producer: string;
  producerVersion: string;
  docString?: string;
  graph: Msg;
  metadata?: Record<string, string>;
}

export function modelProto(p: ModelProtoParts): Msg {
  const m = new Msg().varint(1, p.irVersion).string(2, p.producer).string(3, p.producerVersion);
  if (p.docString) m.string(6, p.docString);
  m.msg(7, p.graph);
  m.msg(8, new Msg().string(1, '').varint(2, p.opset));
  for (const [k, v] of Object.entries(p.metadata ?? {})) m.msg(14, new Msg().string(1, k).string(2, v));
  return m;
}
