// The page's handle on the engine worker: starts workers/engine.worker.ts as an ES-module worker
// and speaks src/protocol.ts to it. Sections use this, never postMessage directly:
// `request(msg, onStream)` sends a request with a fresh id and resolves with its typed reply
// (messages that stream for that id — progress, tokens — go to onStream); `on` sees every message.
import type { FromWorker, ReplyOf, Request, ToWorker } from '../protocol.ts';

/** The worker's answer to `hello`: a GPU, or why there is none. */
export type Ready = Extract<FromWorker, { type: 'ready' | 'gpu-unavailable' }>;
type SelftestEvent = Extract<FromWorker, { type: 'selftest-plan' | 'selftest-result' | 'selftest-done' }>;
type Streamed = Extract<FromWorker, { id: number }>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A request as the page writes it (the id is added here). */
export type RequestInput = DistributiveOmit<Request, 'id'>;

export interface Pending<T> {
  id: number;
  result: Promise<T>;
}

export class Engine {
  private worker: Worker | null = null;
  private listeners = new Set<(m: FromWorker) => void>();
  private nextId = 1;
  private waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; stream?: (m: Streamed) => void }>();
  /** why the worker itself failed to start or crashed, if it did */
  failure: string | null = null;

  constructor() {
    try {
      this.worker = new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), { type: 'module', name: 'whittle-engine' });
      this.worker.onmessage = (e: MessageEvent<FromWorker>) => this.emit(e.data);
      this.worker.onerror = (e) => {
        this.failure = `the engine worker failed: ${e.message || 'it could not be loaded (module workers unsupported?)'}`;
        this.emit({ type: 'error', message: this.failure });
      };
    } catch (e) {
      this.failure = `the engine worker could not start: ${(e as Error).message}`;
    }
  }

  private emit(m: FromWorker): void {
    if ('id' in m && typeof m.id === 'number') {
      const w = this.waiting.get(m.id);
      if (w) {
        if (m.type === 'reply') {
          this.waiting.delete(m.id);
          w.resolve(m.value);
        } else if (m.type === 'error') {
          this.waiting.delete(m.id);
          w.reject(new Error(m.message));
        } else w.stream?.(m);
      }
    } else if (m.type === 'error' || m.type === 'device-lost') {
      const why = m.type === 'error' ? m.message : `the GPU device was lost (${m.reason}); reload the page`;
      for (const [id, w] of this.waiting) {
        if (m.type === 'device-lost' || this.failure) {
          this.waiting.delete(id);
          w.reject(new Error(why));
        }
      }
    }
    for (const l of this.listeners) l(m);
  }

  /** Listen to every message from the worker; returns the unsubscribe function. */
  on(fn: (m: FromWorker) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private send(m: ToWorker, transfer: Transferable[] = []): void {
    if (!this.worker) throw new Error(this.failure ?? 'no engine worker');
    this.worker.postMessage(m, transfer);
  }

  /** Send a request; resolves with its reply. Streamed messages of this request go to `stream`. */
  start<M extends RequestInput>(msg: M, stream?: (m: Streamed) => void): Pending<ReplyOf[M['type']]> {
    const id = this.nextId++;
    const result = new Promise<ReplyOf[M['type']]>((resolve, reject) => {
      if (!this.worker) return reject(new Error(this.failure ?? 'no engine worker'));
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, stream });
      this.send({ ...msg, id } as unknown as ToWorker);
    });
    return { id, result };
  }

  request<M extends RequestInput>(msg: M, stream?: (m: Streamed) => void): Promise<ReplyOf[M['type']]> {
    return this.start(msg, stream).result;
  }

  /** Ask the worker to stop request `id` (a download, an import, a generation). */
  abort(id: number): Promise<boolean> {
    return this.request({ type: 'abort', target: id });
  }

  /** Acquire the GPU in the worker; resolves with its adapter or the reason there is none. */
  hello(): Promise<Ready> {
    return new Promise((resolve, reject) => {
      if (!this.worker) return reject(new Error(this.failure ?? 'no engine worker'));
      const off = this.on((m) => {
        if (m.type === 'ready' || m.type === 'gpu-unavailable') {
          off();
          resolve(m);
        } else if (m.type === 'error' && m.id === undefined) {
          off();
          reject(new Error(m.message));
        }
      });
      this.send({ type: 'hello' });
    });
  }

  /** Run the self-test; `onEvent` sees the plan, each result and the final summary. */
  selftest(onEvent: (m: SelftestEvent) => void, filter?: string): Promise<Extract<FromWorker, { type: 'selftest-done' }>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const off = this.on((m) => {
        if (m.type === 'error' && (m.id === id || m.id === undefined)) {
          off();
          reject(new Error(m.message));
        } else if (m.type === 'device-lost') {
          off();
          reject(new Error(`the GPU device was lost (${m.reason}); reload the page`));
        } else if ((m.type === 'selftest-plan' || m.type === 'selftest-result' || m.type === 'selftest-done') && m.id === id) {
          onEvent(m);
          if (m.type === 'selftest-done') {
            off();
            resolve(m);
          }
        }
      });
      this.send({ type: 'selftest', id, filter });
    });
  }
}
