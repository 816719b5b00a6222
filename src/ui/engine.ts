// The page's handle on the engine worker: starts workers/engine.worker.ts as an ES-module worker
// and speaks src/protocol.ts to it. Sections use this, never postMessage directly.
import type { FromWorker, ToWorker } from '../protocol.ts';

type Ready = Extract<FromWorker, { type: 'ready' | 'gpu-unavailable' }>;
type SelftestEvent = Extract<FromWorker, { type: 'selftest-plan' | 'selftest-result' | 'selftest-done' }>;

export class Engine {
  private worker: Worker | null = null;
  private listeners = new Set<(m: FromWorker) => void>();
  private nextId = 1;
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
    for (const l of this.listeners) l(m);
  }

  /** Listen to every message from the worker; returns the unsubscribe function. */
  on(fn: (m: FromWorker) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private send(m: ToWorker): void {
    if (!this.worker) throw new Error(this.failure ?? 'no engine worker');
    this.worker.postMessage(m);
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
