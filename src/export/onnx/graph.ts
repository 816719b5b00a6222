// A small ONNX graph builder for whittle's ONNX exporter (../onnx.ts): nodes with generated,
// readable names (`<scope>/<Op>_<n>`), deduplicated small constants, graph inputs/outputs, and
// initializers that are either inline (raw_data) or placed in external data files
// (`<model>.onnx_data`, `<model>.onnx_data_1`, ... — the names transformers.js asks for when
// config.json's transformers.js_config.use_external_data_format is a chunk count).
// No DOM, no node:*.
import {
  type AttrValue, type Dim, type DTypeCode, type Lazy, DType, Msg,
  nodeProto, tensorProtoExternal, tensorProtoRaw, valueInfoProto,
} from './proto.ts';

interface Init {
  name: string;
  dtype: DTypeCode;
  dims: number[];
  data: Uint8Array | Lazy;
}

/** Bytes of an initializer: a copy of a typed array's bytes, or a lazy writer. */
function size(data: Uint8Array | Lazy): number {
  return data instanceof Uint8Array ? data.length : data.size;
}

function writeTo(data: Uint8Array | Lazy, dst: Uint8Array, off: number): void {
  if (data instanceof Uint8Array) dst.set(data, off);
  else data.write(dst, off);
}

export interface ExternalDataOptions {
  /** file name of the first chunk, relative to the model file (e.g. 'model.onnx_data') */
  location: string;
  /** most bytes per chunk file (a tensor larger than this gets a chunk of its own) */
  maxChunkBytes: number;
  /** tensors smaller than this stay inline */
  minBytes: number;
}

export interface BuiltGraph {
  graph: Msg;
  /** external data chunk files, in order: name relative to the model file → bytes */
  external: { name: string; data: Uint8Array }[];
}

/** Chunk i's file name: `<location>`, `<location>_1`, `<location>_2`, ... */
export function chunkName(location: string, i: number): string {
  return i === 0 ? location : `${location}_${i}`;
}

export class GraphBuilder {
  private nodes: Msg[] = [];
  private inits: Init[] = [];
  private names = new Set<string>();
  private consts = new Map<string, string>();
  private inputs: Msg[] = [];
  private outputs: Msg[] = [];
  private counter = 0;
  /** prefix of generated node/value names */
  scope = '';

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`onnx graph: duplicate value name ${name}`);
    this.names.add(name);
    return name;
  }

  /** Add a node; returns its output names (generated unless given). */
  op(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs: number | string[] = 1): string[] {
    const base = `${this.scope}/${op}_${this.counter++}`;
    const outs = typeof outputs === 'number'
      ? Array.from({ length: outputs }, (_, i) => this.claim(`${base}_output_${i}`))
      : outputs.map((o) => this.claim(o));
    this.nodes.push(nodeProto(op, inputs, outs, base, attrs));
    return outs;
  }

  /** Add a single-output node; returns its output name. */
  op1(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    return this.op(op, inputs, attrs, output ? [output] : 1)[0];
  }

  /** A named initializer. */
  init(name: string, dtype: DTypeCode, dims: number[], data: Uint8Array | Lazy): string {
    this.inits.push({ name: this.claim(name), dtype, dims, data });
    return name;
  }

  /** A float32 initializer whose bytes are those of `data` (not copied until serialization). */
  f32(name: string, dims: number[], data: Float32Array): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new Error(`onnx graph: ${name} has ${data.length} values, expected ${n} (${dims.join('×')})`);
    return this.init(name, DType.FLOAT, dims, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  /** A deduplicated int64 constant (dims [] = scalar; default 1-D). */
  i64(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join(',')}:${values.join(',')}`;
    let name = this.consts.get(key);
    if (!name) {
      const bytes = new Uint8Array(values.length * 8);
      const dv = new DataView(bytes.buffer);
      values.forEach((v, i) => dv.setBigInt64(i * 8, BigInt(v), true));
      name = this.init(`const_i64_${this.consts.size}`, DType.INT64, dims, bytes);
      this.consts.set(key, name);
    }
    return name;
  }

  /** A deduplicated float32 constant (dims [] = scalar). */
  f32const(values: number[], dims: number[] = [values.length]): string {
    const key = `f32:${dims.join(',')}:${values.map((v) => Math.fround(v)).join(',')}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.init(`const_f32_${this.consts.size}`, DType.FLOAT, dims, new Uint8Array(Float32Array.from(values).buffer));
      this.consts.set(key, name);
    }
    return name;
  }

  input(name: string, dtype: DTypeCode, dims: Dim[]): string {
    this.inputs.push(valueInfoProto(this.claim(name), dtype, dims));
    return name;
  }

  /** Declare a graph output (the value must be produced by a node under that name). */
  output(name: string, dtype: DTypeCode, dims: Dim[]): void {
    this.outputs.push(valueInfoProto(name, dtype, dims));
  }

  /** Total bytes of every initializer. */
  initializerBytes(): number {
    return this.inits.reduce((a, i) => a + size(i.data), 0);
  }

  /** The GraphProto, with initializers inline or (given `external`) in chunk files. */
  build(name: string, external: ExternalDataOptions | null): BuiltGraph {
    const g = new Msg();
    for (const n of this.nodes) g.msg(1, n);
    g.string(2, name);
    const chunks: { name: string; parts: { off: number; init: Init }[]; size: number }[] = [];
    for (const init of this.inits) {
      const n = size(init.data);
      if (!external || n < external.minBytes) {
        g.msg(5, tensorProtoRaw(init.name, init.dtype, init.dims, init.data));
        continue;
      }
      // 4 KiB alignment for large tensors (mmap-friendly, as onnx's own converter does), 64 B else
      const align = n >= 1 << 20 ? 4096 : 64;
      let c = chunks[chunks.length - 1];
      let off = c ? Math.ceil(c.size / align) * align : 0;
      if (!c || (c.size > 0 && off + n > external.maxChunkBytes)) {
        c = { name: chunkName(external.location, chunks.length), parts: [], size: 0 };
        chunks.push(c);
        off = 0;
      }
      c.parts.push({ off, init });
      c.size = off + n;
      g.msg(5, tensorProtoExternal(init.name, init.dtype, init.dims, c.name, off, n));
    }
    for (const i of this.inputs) g.msg(11, i);
    for (const o of this.outputs) g.msg(12, o);
    const files = chunks.map((c) => {
      const data = new Uint8Array(c.size);
      for (const p of c.parts) writeTo(p.init.data, data, p.off);
      return { name: c.name, data };
    });
    return { graph: g, external: files };
  }
}
