// Every message between the page (src/ui) and the engine worker (workers/engine.worker.ts), as one
// discriminated union on `type`. The page sends ToWorker, the worker answers FromWorker; requests
// that stream (selftest) carry an `id` echoed on every answer. Plain structured-clone data only.
// It is not: a transport (postMessage is), nor RPC machinery.
import type { GpuInfo } from './gpu/device.ts';
import type { SelftestResult } from './selftest.ts';

/** Bumped on any incompatible change; the worker answers `hello` with it. */
export const PROTOCOL_VERSION = 1;

export type Message =
  // ---- page → worker ----
  /** Acquire the GPU (once) and report it: answered by `ready` or `gpu-unavailable`. */
  | { type: 'hello' }
  /** Run every kernel against its CPU twin: answered by `selftest-plan`, `selftest-result`×k, `selftest-done`. */
  | { type: 'selftest'; id: number; filter?: string }
  // ---- worker → page ----
  | {
      type: 'ready';
      protocol: number;
      gpu: GpuInfo;
      /** where the engine runs: 'worker' inside a dedicated Web Worker */
      context: 'worker' | 'window' | 'node';
    }
  | {
      type: 'gpu-unavailable';
      protocol: number;
      /** the engine's explanation (GpuError message) */
      reason: string;
      /** whether navigator.gpu existed in the worker (false: no WebGPU in workers here) */
      navigatorGpu: boolean;
    }
  | { type: 'selftest-plan'; id: number; cases: Array<{ op: string; shape: string }> }
  | { type: 'selftest-result'; id: number; result: SelftestResult }
  | { type: 'selftest-done'; id: number; passed: number; failed: number; ms: number; context: 'worker' | 'window' | 'node' }
  /** The GPU device was lost; the engine must be restarted (reload). */
  | { type: 'device-lost'; reason: string }
  /** A request failed as a whole (id when it belongs to one). */
  | { type: 'error'; id?: number; message: string };

type PageTypes = 'hello' | 'selftest';
export type ToWorker = Extract<Message, { type: PageTypes }>;
export type FromWorker = Exclude<Message, { type: PageTypes }>;
