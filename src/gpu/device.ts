// The GPU runtime: device acquisition (browser, worker, Node/Dawn), real limits, features,
// a pipeline cache keyed by kernel + constants, one command encoder per step with a uniform
// arena (no per-dispatch buffer allocation), readback, readable validation errors, device loss,
// and timestamp-query profiling per kernel.
// It is not: a tensor library or anything that knows about models.
import { isSoftwareInfo } from './software.ts';

export interface GpuFeatures {
  f16: boolean;
  subgroups: boolean;
  timestamp: boolean;
}

export interface GpuInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** 'node' (Dawn through npm `webgpu`) or 'browser' */
  host: 'node' | 'browser';
  features: GpuFeatures;
  limits: Record<string, number>;
  /** subgroup size range from the adapter info (0 when the adapter does not say) */
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  /** llvmpipe shader threads asked for (acquireGpu's driverThreads; absent: the driver's default) */
  driverThreads?: number;
}

/** How a read or done() waits: `relaxed` marks a throughput wait that throttles Dawn's polling (Gpu.settle). */
export interface WaitOptions {
  relaxed?: boolean;
}

/** A storage binding: a whole buffer or a byte range of one. */
export type Buf = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

export class GpuError extends Error {}

const LIMIT_NAMES = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'minStorageBufferOffsetAlignment',
  'minUniformBufferOffsetAlignment',
  'maxUniformBufferBindingSize',
] as const;

export interface AcquireOptions {
  powerPreference?: GPUPowerPreference;
  /**
   * Node on llvmpipe (lavapipe) only: the driver's shader threads for this device (LP_NUM_THREADS
   * while the Dawn instance, adapter and device are created). 0 runs every dispatch on the driver's
   * own queue thread, with no thread-pool handoff: decode steps (many tiny dispatches) measured 2×
   * faster that way, batched work (training, prefill) slower. Default: the driver's (one per core).
   * No effect on other drivers or in a browser. (Sets the process env for the duration of the
   * call: do not acquire two devices concurrently with different values.)
   */
  driverThreads?: number;
}

/** Acquire a GPU. In Node it loads npm `webgpu` (Dawn); in a browser or worker, navigator.gpu. */
export async function acquireGpu(opts: AcquireOptions = {}): Promise<Gpu> {
  const dt = opts.driverThreads;
  if (dt === undefined || typeof process === 'undefined' || !process.versions?.node || (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu) {
    return acquire(opts, undefined);
  }
  if (!Number.isInteger(dt) || dt < 0 || dt > 64) throw new GpuError(`driverThreads must be an integer 0..64 (got ${dt})`);
  const env = process.env, keep = env.LP_NUM_THREADS;
  env.LP_NUM_THREADS = String(dt); // llvmpipe reads it when Dawn's instance creates its screen
  try {
    return await acquire(opts, dt);
  } finally {
    if (keep === undefined) delete env.LP_NUM_THREADS;
    else env.LP_NUM_THREADS = keep;
  }
}

async function acquire(opts: AcquireOptions, driverThreads: number | undefined): Promise<Gpu> {
  let gpu: GPU | undefined;
  let host: 'node' | 'browser' = 'browser';
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) {
    gpu = nav.gpu;
  } else if (typeof process !== 'undefined' && process.versions?.node) {
    host = 'node';
    gpu = await nodeGpu();
  }
  if (!gpu) {
    throw new GpuError(
      'WebGPU is not available here (navigator.gpu is missing). Use a browser with WebGPU enabled ' +
        '(Chrome/Edge 113+, or Chromium with --enable-unsafe-webgpu).',
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new GpuError(
      host === 'node'
        ? 'No WebGPU adapter from Dawn: no Vulkan driver was found. Install one (as root: `bash scripts/ensure-system.sh` ' +
            'installs chromium, whose SwiftShader ICD works, and lavapipe from bookworm-backports), or point ' +
            'VK_ICD_FILENAMES at an ICD json such as /usr/lib/chromium/vk_swiftshader_icd.json.'
        : 'The browser exposes WebGPU but gave no adapter (GPU blocklisted or disabled).',
    );
  }
  const features: GpuFeatures = {
    f16: adapter.features.has('shader-f16'),
    subgroups: adapter.features.has('subgroups' as GPUFeatureName),
    timestamp: adapter.features.has('timestamp-query'),
  };
  const requiredFeatures: GPUFeatureName[] = [];
  if (features.f16) requiredFeatures.push('shader-f16');
  if (features.subgroups) requiredFeatures.push('subgroups' as GPUFeatureName);
  if (features.timestamp) requiredFeatures.push('timestamp-query');
  const requiredLimits: Record<string, number> = {};
  const limits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) {
    const v = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof v === 'number') {
      limits[name] = v;
      requiredLimits[name] = v;
    }
  }
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const ai = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const info: GpuInfo = {
    vendor: ai?.vendor ?? '',
    architecture: ai?.architecture ?? '',
    device: ai?.device ?? '',
    description: ai?.description ?? '',
    host,
    features,
    limits,
    subgroupMinSize: features.subgroups ? Number((ai as { subgroupMinSize?: number } | undefined)?.subgroupMinSize ?? 0) : 0,
    subgroupMaxSize: features.subgroups ? Number((ai as { subgroupMaxSize?: number } | undefined)?.subgroupMaxSize ?? 0) : 0,
    ...(driverThreads !== undefined && /llvmpipe/i.test(ai?.description ?? '') ? { driverThreads } : {}),
  };
  const g = new Gpu(device, info);
  // Dawn in Node: the instance and adapter must outlive the device, or GC of them crashes the process.
  g.keepAlive = [gpu, adapter];
  return g;
}

async function nodeGpu(): Promise<GPU | undefined> {
  const env = process.env;
  if (!env.XDG_RUNTIME_DIR) env.XDG_RUNTIME_DIR = '/tmp';
  // Prefer an explicitly chosen ICD; else lavapipe (faster, f16) when installed; else SwiftShader.
  if (!env.VK_ICD_FILENAMES && !env.VK_DRIVER_FILES) {
    const fs = await import('node:fs');
    const candidates = ['/usr/share/vulkan/icd.d/lvp_icd.json', '/usr/lib/chromium/vk_swiftshader_icd.json'];
    const pick = env.WHITTLE_ICD === 'swiftshader' ? candidates[1] : env.WHITTLE_ICD === 'lavapipe' ? candidates[0] : candidates.find((c) => fs.existsSync(c));
    if (pick && fs.existsSync(pick)) env.VK_ICD_FILENAMES = pick;
  }
  const mod = (await import('webgpu')) as unknown as { create: (o: string[]) => GPU; globals: object };
  Object.assign(globalThis, mod.globals);
  // Dawn quantizes timestamps (to 65.5 µs on NVIDIA, measured) unless told not to: per-kernel profiles need them exact
  return mod.create(['disable-dawn-features=timestamp_quantization']);
}

export interface Pipeline {
  name: string;
  /** cache key: kernel + entry + constants (bind groups are cached per pipeline key) */
  key: string;
  pipeline: GPUComputePipeline;
}

interface ProfileEntry {
  name: string;
  index: number;
}

/** One GPU device plus everything needed to launch kernels on it. */
export class Gpu {
  readonly device: GPUDevice;
  readonly info: GpuInfo;
  /** Set when the device is lost; every later call throws with this reason. */
  lost: string | null = null;
  keepAlive: unknown[] = [];
  private pipelines = new Map<string, Pipeline>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  // Uniform arena: each dispatch of an encoder gets its own 256-byte slot; the CPU copy is
  // written once at submit. The buffer only grows (first steps), never per step afterwards.
  private uniformBuf: GPUBuffer | null = null;
  private uniformCpu = new ArrayBuffer(0);
  private uniformUsed = 0;
  private bindCache = new Map<string, GPUBindGroup>();
  /** free MAP_READ staging buffers by byte size (small reads only) */
  private stagingPool = new Map<number, GPUBuffer[]>();
  private bufIds = new WeakMap<GPUBuffer, number>();
  private nextBufId = 1;
  // Profiling
  private profiling = false;
  private querySet: GPUQuerySet | null = null;
  private queryBuf: GPUBuffer | null = null;
  private queryRead: GPUBuffer | null = null;
  private profileEntries: ProfileEntry[] = [];
  private queryCapacity = 0;
  /** relaxed waits throttle Dawn's polling (settle(); default: on in Node on a CPU driver; WHITTLE_RELAXED_WAIT=0 turns it off) */
  relaxedWait: boolean;
  private relaxedPending = 0;
  private pumping = false;
  /** relaxed waits in flight, and whether the pump that throttles Dawn's polling runs (tests) */
  get relaxedState(): { pending: number; pumping: boolean } {
    return { pending: this.relaxedPending, pumping: this.pumping };
  }
  /** Bytes of buffers created through this object, by label prefix (memory account). */
  readonly allocated = new Map<string, number>();

  constructor(device: GPUDevice, info: GpuInfo) {
    this.device = device;
    this.info = info;
    const env = typeof process !== 'undefined' ? process.env?.WHITTLE_RELAXED_WAIT : undefined;
    // a CPU driver's shader threads want the core Dawn's polling takes; a real GPU does not, and there
    // the pump's 1 ms sleeps were the whole wait (an empty submission's wait: ~1.2 ms on an H100)
    this.relaxedWait = info.host === 'node' && env !== '0' && isSoftwareInfo(info);
    device.lost.then((l) => {
      this.lost = `GPU device lost (${l.reason}): ${l.message}`;
    });
  }

  get alignment(): number {
    return this.info.limits.minStorageBufferOffsetAlignment ?? 256;
  }

  private check(): void {
    if (this.lost) throw new GpuError(this.lost);
  }

  /** Compile (once) a compute pipeline for `entry` of a WGSL module; cache key = name + entry + constants. */
  pipeline(name: string, code: string, entry: string, constants: Record<string, number> = {}): Pipeline {
    let key = `${name}:${entry}:`;
    for (const c in constants) key += `${c}=${constants[c]},`; // (no JSON.stringify: this runs per dispatch)
    let p = this.pipelines.get(key);
    if (!p) {
      this.check();
      const module = this.device.createShaderModule({ code, label: name });
      const pipeline = this.device.createComputePipeline({
        label: `${name}.${entry}`,
        layout: 'auto',
        compute: { module, entryPoint: entry, constants },
      });
      p = { name: `${name}.${entry}`, key, pipeline };
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** Create a storage buffer (optionally initialised). Size is rounded up to 4 bytes (min 4). */
  buffer(size: number, label: string, init?: ArrayBufferView): GPUBuffer {
    this.check();
    const bytes = Math.max(4, Math.ceil(size / 4) * 4);
    const max = this.info.limits.maxBufferSize ?? 256 * 1024 * 1024;
    if (bytes > max) throw new GpuError(`buffer "${label}" needs ${bytes} bytes but this adapter's maxBufferSize is ${max}`);
    const buf = this.device.createBuffer({
      size: bytes,
      label,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      mappedAtCreation: !!init,
    });
    if (init) {
      new Uint8Array(buf.getMappedRange()).set(new Uint8Array(init.buffer, init.byteOffset, init.byteLength));
      buf.unmap();
    }
    const key = label.split(/[.:/[]/)[0];
    this.allocated.set(key, (this.allocated.get(key) ?? 0) + bytes);
    return buf;
  }

  /** f32 buffer from data (or zeros of `n` floats). */
  f32(data: Float32Array | number, label: string): GPUBuffer {
    return typeof data === 'number' ? this.buffer(data * 4, label) : this.buffer(data.byteLength, label, data);
  }

  /** u32 buffer from data. */
  u32(data: Uint32Array, label: string): GPUBuffer {
    return this.buffer(data.byteLength, label, data);
  }

  write(buf: GPUBuffer, data: ArrayBufferView, offsetBytes = 0): void {
    this.check();
    this.device.queue.writeBuffer(buf, offsetBytes, data.buffer, data.byteOffset, data.byteLength);
  }

  destroy(buf: GPUBuffer): void {
    const key = (buf.label || '').split(/[.:/[]/)[0];
    this.allocated.set(key, (this.allocated.get(key) ?? 0) - buf.size);
    buf.destroy();
  }

  get totalAllocated(): number {
    let s = 0;
    for (const v of this.allocated.values()) s += v;
    return s;
  }

  private bufId(b: GPUBuffer): number {
    let id = this.bufIds.get(b);
    if (!id) {
      id = this.nextBufId++;
      this.bufIds.set(b, id);
    }
    return id;
  }

  private ensureEncoder(): GPUComputePassEncoder {
    if (!this.encoder) {
      this.encoder = this.device.createCommandEncoder();
      this.uniformUsed = 0;
    }
    if (!this.pass) {
      this.pass = this.encoder.beginComputePass();
    }
    return this.pass;
  }

  /**
   * Record one dispatch into the current step's encoder.
   * `uniforms` (if any) is bound at @binding(0) as a uniform struct; storage buffers follow at
   * @binding(1..n) in order. Every binding given must be used by the entry point (layout 'auto').
   * Uniform values: integers go in as u32 unless they are in `floats` (names are irrelevant; order matters).
   */
  dispatch(p: Pipeline, uniforms: ArrayBuffer | null, bufs: Buf[], groups: [number, number?, number?]): void {
    this.check();
    const [gx, gy = 1, gz = 1] = groups;
    const maxG = this.info.limits.maxComputeWorkgroupsPerDimension ?? 65535;
    if (gx > maxG || gy > maxG || gz > maxG) {
      throw new GpuError(`${p.name}: dispatch (${gx},${gy},${gz}) exceeds maxComputeWorkgroupsPerDimension ${maxG}`);
    }
    if (gx === 0 || gy === 0 || gz === 0) return;
    this.ensureEncoder();
    // bind group cache key: pipeline + uniform slot + every buffer range (entries built on a miss only)
    let key = p.key;
    let slot = -1;
    if (uniforms) {
      slot = this.uniformSlot(uniforms);
      key += `|u${slot}:${uniforms.byteLength}`;
    }
    for (const b of bufs) {
      if (b instanceof GPUBuffer) key += `|${this.bufId(b)}:0:-1`;
      else key += `|${this.bufId(b.buffer)}:${b.offset ?? 0}:${b.size ?? -1}`;
    }
    let bg = this.bindCache.get(key);
    if (!bg) {
      const entries: GPUBindGroupEntry[] = [];
      if (uniforms) entries.push({ binding: 0, resource: { buffer: this.uniformBuf!, offset: slot, size: uniforms.byteLength } });
      bufs.forEach((b, i) => entries.push({ binding: i + 1, resource: b instanceof GPUBuffer ? { buffer: b } : b }));
      bg = this.device.createBindGroup({ layout: p.pipeline.getBindGroupLayout(0), entries, label: p.name });
      if (this.bindCache.size > 20000) this.bindCache.clear();
      this.bindCache.set(key, bg);
    }
    if (this.profiling) this.profileBegin(p.name);
    const pass = this.ensureEncoder();
    pass.setPipeline(p.pipeline);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(gx, gy, gz);
    if (this.profiling) this.profileEnd();
  }

  /** Record a buffer-to-buffer copy (ends the current compute pass). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    this.ensureEncoder();
    this.endPass();
    this.encoder!.copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
  }

  /** Zero a buffer range (ends the current compute pass). */
  clear(buf: Buf): void {
    this.ensureEncoder();
    this.endPass();
    const r = buf instanceof GPUBuffer ? { buffer: buf } : buf;
    this.encoder!.clearBuffer(r.buffer, r.offset ?? 0, r.size);
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private uniformSlot(u: ArrayBuffer): number {
    const align = Math.max(256, this.info.limits.minUniformBufferOffsetAlignment ?? 256);
    const slot = this.uniformUsed;
    const need = slot + Math.ceil(u.byteLength / align) * align;
    if (need > this.uniformCpu.byteLength) {
      // Grow: cannot swap the GPU buffer mid-encoder (earlier bind groups use it), so the first
      // encoder that outgrows the arena is flushed with the old buffer and a bigger one follows.
      if (this.encoder && slot > 0) {
        this.flushEncoder();
        this.ensureEncoder();
        return this.uniformSlot(u);
      }
      const size = Math.max(need, this.uniformCpu.byteLength * 2, 64 * 1024);
      const cpu = new ArrayBuffer(size);
      this.uniformCpu = cpu;
      this.uniformBuf?.destroy();
      this.uniformBuf = this.device.createBuffer({ size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'uniforms' });
      this.bindCache.clear();
      this.ensureEncoder();
    }
    new Uint8Array(this.uniformCpu, slot, u.byteLength).set(new Uint8Array(u));
    this.uniformUsed = need;
    return slot;
  }

  private flushEncoder(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.uniformUsed > 0) this.device.queue.writeBuffer(this.uniformBuf!, 0, this.uniformCpu, 0, this.uniformUsed);
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.uniformUsed = 0;
  }

  /** Submit everything recorded so far as one command buffer. */
  submit(): void {
    this.check();
    this.flushEncoder();
  }

  /**
   * Run `fn` (which records and may submit work) inside a validation error scope, and throw a
   * readable GpuError naming `what` if WebGPU reported an error.
   */
  async scoped<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    let result: T;
    try {
      result = await fn();
    } finally {
      this.submit();
    }
    const v = await this.device.popErrorScope();
    const m = await this.device.popErrorScope();
    if (v) throw new GpuError(`WebGPU validation error in ${what}: ${v.message}`);
    if (m) throw new GpuError(`GPU out of memory in ${what}: ${m.message}`);
    if (this.lost) throw new GpuError(this.lost);
    return result;
  }

  /**
   * Copy a buffer (range) to the CPU. Submits pending work first. `relaxed`: a throughput wait
   * (a training step's loss) that throttles Dawn's polling (see settle()); leave it off where
   * latency matters (decode steps, interactive reads).
   */
  async read(buf: Buf, bytes?: number, opts: WaitOptions = {}): Promise<ArrayBuffer> {
    this.check();
    const r = buf instanceof GPUBuffer ? { buffer: buf, offset: 0 } : { buffer: buf.buffer, offset: buf.offset ?? 0 };
    const size = bytes ?? (buf instanceof GPUBuffer ? buf.size : (buf.size ?? buf.buffer.size - (buf.offset ?? 0)));
    const padded = Math.ceil(size / 4) * 4;
    // staging buffers are reused (a decode step reads 4 bytes; creating one per read showed in profiles)
    const pool = this.stagingPool.get(padded);
    const staging = pool?.pop() ?? this.device.createBuffer({ size: padded, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'staging' });
    this.ensureEncoder();
    this.endPass();
    this.encoder!.copyBufferToBuffer(r.buffer, r.offset, staging, 0, padded);
    this.submit();
    let out: ArrayBuffer;
    try {
      await this.settle(() => staging.mapAsync(GPUMapMode.READ), opts.relaxed === true);
      out = staging.getMappedRange().slice(0, size);
      staging.unmap();
    } catch (e) {
      staging.destroy();
      throw e;
    }
    if (padded <= 64 * 1024) {
      const free = this.stagingPool.get(padded) ?? [];
      if (free.length < 8) {
        free.push(staging);
        this.stagingPool.set(padded, free);
      } else staging.destroy();
    } else staging.destroy();
    if (this.lost) throw new GpuError(this.lost);
    return out;
  }

  /** Submit pending work and wait until the GPU has finished everything submitted. */
  async done(opts: WaitOptions = {}): Promise<void> {
    this.check();
    this.submit();
    await this.settle(() => this.device.queue.onSubmittedWorkDone(), opts.relaxed === true);
    if (this.lost) throw new GpuError(this.lost);
  }

  /**
   * Await `start()` (a map or done-promise, called here). Relaxed (asked for, and this.relaxedWait:
   * Dawn in Node): Dawn polls its event loop through setImmediate while any such promise is
   * pending, which keeps one CPU core busy — on a CPU Vulkan driver a core taken from the shader
   * threads (measured on 2 cores: an FMA-bound probe at ~51 GFLOP/s while polled, ~100 with the
   * pump below). So while relaxed waits are pending, a pump blocks the main thread for 1 ms
   * (Atomics.wait) between Dawn's polls: the poll then costs a few µs per ms, and a wait ends at most
   * ~1 ms late. Measured: SmolLM2-135M-shape q4 training 2×64 3,343 → 1,840 ms/step,
   * tinystories-656k f32 4×256 368 → 183–214 ms. For throughput waits only: decode steps measured no
   * gain (they are bound by dispatch count, not by the poll) and would pay the latency.
   */
  private async settle(start: () => Promise<unknown>, relaxed: boolean): Promise<void> {
    if (!relaxed || !this.relaxedWait) {
      await start();
      return;
    }
    this.relaxedPending++;
    if (!this.pumping) void this.pump();
    try {
      await start();
    } finally {
      this.relaxedPending--;
    }
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    const cell = new Int32Array(new SharedArrayBuffer(4));
    try {
      while (this.relaxedPending > 0) {
        await new Promise((res) => setImmediate(res)); // Dawn's poll runs in this turn too
        if (this.relaxedPending > 0) Atomics.wait(cell, 0, 0, 1);
      }
    } finally {
      this.pumping = false;
    }
  }

  async readF32(buf: Buf, n?: number, opts: WaitOptions = {}): Promise<Float32Array> {
    return new Float32Array(await this.read(buf, n === undefined ? undefined : n * 4, opts));
  }

  async readU32(buf: Buf, n?: number, opts: WaitOptions = {}): Promise<Uint32Array> {
    return new Uint32Array(await this.read(buf, n === undefined ? undefined : n * 4, opts));
  }

  // ---- profiling (timestamp-query) -------------------------------------------------------
  /** Start recording per-dispatch GPU times (needs timestamp-query; each dispatch gets its own pass). */
  startProfile(maxDispatches = 2048): boolean {
    if (!this.info.features.timestamp) return false;
    this.submit();
    this.profiling = true;
    this.profileEntries = [];
    if (this.queryCapacity < maxDispatches) {
      this.querySet?.destroy();
      this.queryBuf?.destroy();
      this.queryRead?.destroy();
      this.queryCapacity = maxDispatches;
      this.querySet = this.device.createQuerySet({ type: 'timestamp', count: 2 * maxDispatches });
      this.queryBuf = this.device.createBuffer({ size: 16 * maxDispatches, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      this.queryRead = this.device.createBuffer({ size: 16 * maxDispatches, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    }
    return true;
  }

  private profileBegin(name: string): void {
    if (this.profileEntries.length >= this.queryCapacity) return;
    // Timestamps are taken at compute-pass boundaries: one pass per dispatch while profiling.
    this.endPass();
    const index = this.profileEntries.length;
    this.profileEntries.push({ name, index });
    this.pass = this.encoder!.beginComputePass({
      timestampWrites: { querySet: this.querySet!, beginningOfPassWriteIndex: 2 * index, endOfPassWriteIndex: 2 * index + 1 },
    });
  }

  private profileEnd(): void {
    this.endPass();
  }

  /** Stop profiling and return GPU milliseconds per kernel name (summed), plus dispatch counts. */
  async stopProfile(): Promise<Map<string, { ms: number; count: number }>> {
    const result = new Map<string, { ms: number; count: number }>();
    if (!this.profiling) return result;
    this.submit();
    this.profiling = false;
    const n = this.profileEntries.length;
    if (n === 0) return result;
    // Resolve all queries once here: resolve offsets must be 256-aligned, so per-submit resolves
    // of a running count would be invalid.
    const enc = this.device.createCommandEncoder();
    enc.resolveQuerySet(this.querySet!, 0, 2 * n, this.queryBuf!, 0);
    enc.copyBufferToBuffer(this.queryBuf!, 0, this.queryRead!, 0, 16 * n);
    this.device.queue.submit([enc.finish()]);
    // relaxed: profiled kernels run as in a training step, without Dawn's poll taking a core
    await this.settle(() => this.queryRead!.mapAsync(GPUMapMode.READ), true);
    const t = new BigUint64Array(this.queryRead!.getMappedRange().slice(0, 16 * n));
    this.queryRead!.unmap();
    for (const e of this.profileEntries) {
      const dt = Number(t[2 * e.index + 1] - t[2 * e.index]) / 1e6;
      const r = result.get(e.name) ?? { ms: 0, count: 0 };
      r.ms += dt > 0 && dt < 1e6 ? dt : 0;
      r.count += 1;
      result.set(e.name, r);
    }
    return result;
  }
}

/**
 * Whether `gpu` is a CPU (software) Vulkan driver — SwiftShader, llvmpipe / lavapipe. There the
 * default kernel variants were measured best or within noise (README, "Per-adapter kernel
 * variants") and a trial costs seconds, so the app does not tune on them.
 */
export function isSoftwareAdapter(gpu: Gpu): boolean {
  return isSoftwareInfo(gpu.info);
}


/** Pack uniform values: each entry is [value, 'u32' | 'i32' | 'f32']. Padded to 16 bytes. */
export function uniforms(values: Array<[number, 'u32' | 'i32' | 'f32']>): ArrayBuffer {
  const n = Math.max(4, Math.ceil(values.length / 4) * 4);
  const buf = new ArrayBuffer(n * 4);
  const dv = new DataView(buf);
  values.forEach(([v, t], i) => {
    if (t === 'f32') dv.setFloat32(i * 4, v, true);
    else if (t === 'i32') dv.setInt32(i * 4, v, true);
    else dv.setUint32(i * 4, v >>> 0, true);
  });
  return buf;
}

/** Workgroup count for n items at size wg. */
export function groups(n: number, wg: number): number {
  return Math.ceil(n / wg);
}
