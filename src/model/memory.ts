// Arenas: a layout table (name → shape) packed once into a few storage buffers, each tensor at an
// offset aligned to minStorageBufferOffsetAlignment and bound as {buffer, offset, size}. The GPU
// model keeps every activation, gradient scratch and batch input in arenas, so a training step
// allocates nothing. Elements are 4 bytes (f32 or u32).
import type { Buf, Gpu } from '../gpu/device.ts';

export interface TensorSpec {
  name: string;
  shape: number[];
}

export interface Placement {
  /** index of the arena buffer */
  buffer: number;
  /** byte offset inside it (aligned) */
  offset: number;
  /** bytes of the tensor */
  bytes: number;
}

export const elems = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * Pack specs in order into buffers of at most maxBytes, each tensor at an `align`-aligned offset.
 * Returns the placements and each buffer's size (aligned up).
 */
export function pack(specs: TensorSpec[], align: number, maxBytes: number): { at: Map<string, Placement>; sizes: number[] } {
  const at = new Map<string, Placement>();
  const sizes: number[] = [];
  let cur = -1, off = 0;
  for (const s of specs) {
    const bytes = elems(s.shape) * 4;
    if (bytes === 0) throw new Error(`arena: tensor ${s.name} has an empty shape [${s.shape}]`);
    if (bytes > maxBytes) throw new Error(`arena: tensor ${s.name} [${s.shape}] is ${bytes} bytes, over the ${maxBytes}-byte buffer binding limit`);
    if (at.has(s.name)) throw new Error(`arena: tensor ${s.name} is laid out twice`);
    let start = Math.ceil(off / align) * align;
    if (cur < 0 || start + bytes > maxBytes) {
      if (cur >= 0) sizes[cur] = off;
      cur++;
      start = 0;
    }
    at.set(s.name, { buffer: cur, offset: start, bytes });
    off = start + bytes;
  }
  if (cur >= 0) sizes[cur] = off;
  return { at, sizes: sizes.map((b) => Math.ceil(b / align) * align) };
}

/** Largest buffer an arena may use on this device (one binding must cover any tensor in it). */
export function maxArenaBytes(gpu: Gpu): number {
  const l = gpu.info.limits;
  return Math.min(l.maxStorageBufferBindingSize ?? 128 << 20, l.maxBufferSize ?? 256 << 20);
}

/** Bytes an arena of these specs would take on this device (without allocating it). */
export function arenaBytes(gpu: Gpu, specs: TensorSpec[]): number {
  if (specs.length === 0) return 0;
  return pack(specs, gpu.alignment, maxArenaBytes(gpu)).sizes.reduce((a, b) => a + b, 0);
}

/** Named tensors packed into storage buffers labelled `<label>.<i>` (gpu.allocated key: label). */
export class Arena {
  readonly specs: TensorSpec[];
  readonly buffers: GPUBuffer[];
  readonly bytes: number;
  private at: Map<string, Placement>;
  private gpu: Gpu;

  constructor(gpu: Gpu, label: string, specs: TensorSpec[]) {
    this.gpu = gpu;
    this.specs = specs;
    const { at, sizes } = pack(specs, gpu.alignment, maxArenaBytes(gpu));
    this.at = at;
    this.buffers = sizes.map((b, i) => gpu.buffer(b, `${label}.${i}`));
    this.bytes = this.buffers.reduce((a, b) => a + b.size, 0);
  }

  has(name: string): boolean {
    return this.at.has(name);
  }

  /** The tensor's binding {buffer, offset, size}. */
  get(name: string): Buf & { buffer: GPUBuffer; offset: number; size: number } {
    const p = this.at.get(name);
    if (!p) throw new Error(`arena: no tensor named ${name}`);
    return { buffer: this.buffers[p.buffer], offset: p.offset, size: p.bytes };
  }

  /** Zero every buffer of the arena (records clears into the current step). */
  clear(): void {
    for (const b of this.buffers) this.gpu.clear(b);
  }

  destroy(): void {
    for (const b of this.buffers) this.gpu.destroy(b);
  }
}
