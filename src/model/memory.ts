// Arenas: a layout table (name → shape) allocated once, one storage buffer per tensor. The GPU
// model keeps every activation, gradient scratch and batch input in arenas, so a training step
// allocates nothing. Tensors are not packed into shared buffers on purpose: WebGPU forbids a
// buffer bound writable and bound again (even another range) in the same dispatch, and kernels
// read one activation while writing another. Elements are 4 bytes (f32 or u32).
import type { Gpu } from '../gpu/device.ts';

export interface TensorSpec {
  name: string;
  shape: number[];
}

export const elems = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** Bytes of a layout table as allocated (each tensor's buffer rounded up to 4 bytes). */
export function tableBytes(specs: TensorSpec[]): number {
  return specs.reduce((a, s) => a + Math.max(4, elems(s.shape) * 4), 0);
}

/** Named tensors, each in its own storage buffer labelled `<label>.<name>` (gpu.allocated key: label). */
export class Arena {
  readonly specs: TensorSpec[];
  readonly bytes: number;
  private bufs = new Map<string, GPUBuffer>();
  private gpu: Gpu;

  constructor(gpu: Gpu, label: string, specs: TensorSpec[]) {
    this.gpu = gpu;
    this.specs = specs;
    const maxBind = gpu.info.limits.maxStorageBufferBindingSize ?? 128 << 20;
    for (const s of specs) {
      const bytes = elems(s.shape) * 4;
      if (this.bufs.has(s.name)) throw new Error(`arena ${label}: tensor ${s.name} is laid out twice`);
      if (bytes > maxBind) {
        throw new Error(`arena ${label}: tensor ${s.name} [${s.shape}] is ${bytes} bytes, over this device's ` +
          `maxStorageBufferBindingSize ${maxBind} — use a smaller batch or sequence`);
      }
      this.bufs.set(s.name, gpu.buffer(bytes, `${label}.${s.name}`));
    }
    this.bytes = tableBytes(specs);
  }

  get(name: string): GPUBuffer {
    const b = this.bufs.get(name);
    if (!b) throw new Error(`arena: no tensor named ${name}`);
    return b;
  }

  /** Zero every tensor of the arena (records clears into the current step). */
  clear(): void {
    for (const b of this.bufs.values()) this.gpu.clear(b);
  }

  destroy(): void {
    for (const b of this.bufs.values()) this.gpu.destroy(b);
  }
}
