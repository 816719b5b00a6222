/// <reference lib="webworker" />
// The engine worker: owns the GPUDevice (acquireGpu) and runs engine work off the page's thread,
// answering the typed protocol of src/protocol.ts. Thin shell: the work itself lives in src/.
// It is not: UI (no DOM here).
import { acquireGpu, type Gpu } from '../src/gpu/device.ts';
import { PROTOCOL_VERSION, type FromWorker, type ToWorker } from '../src/protocol.ts';
import { runSelftest, selftestPlan } from '../src/selftest.ts';

declare const self: DedicatedWorkerGlobalScope;

const context: 'worker' | 'window' | 'node' =
  typeof WorkerGlobalScope !== 'undefined' && self instanceof WorkerGlobalScope ? 'worker' : 'window';

/** Inspectable state for debugging (devtools → worker console: `whittleEngine`) and the e2e spec. */
const state = {
  gpu: null as Gpu | null,
  lastSelftest: null as null | { id: number; passed: number; failed: number; results: number },
};
(self as unknown as { whittleEngine: typeof state }).whittleEngine = state;

function post(m: FromWorker): void {
  self.postMessage(m);
}

let gpuPromise: Promise<Gpu> | null = null;
function gpu(): Promise<Gpu> {
  if (!gpuPromise) {
    gpuPromise = acquireGpu().then((g) => {
      state.gpu = g;
      g.device.lost.then((l) => post({ type: 'device-lost', reason: `${l.reason}: ${l.message}` }));
      return g;
    });
  }
  return gpuPromise;
}

let running = false;

async function handle(m: ToWorker): Promise<void> {
  switch (m.type) {
    case 'hello': {
      try {
        const g = await gpu();
        post({ type: 'ready', protocol: PROTOCOL_VERSION, gpu: g.info, context });
      } catch (e) {
        post({
          type: 'gpu-unavailable',
          protocol: PROTOCOL_VERSION,
          reason: (e as Error)?.message ?? String(e),
          navigatorGpu: 'gpu' in self.navigator,
        });
      }
      return;
    }
    case 'selftest': {
      if (running) {
        post({ type: 'error', id: m.id, message: 'a self-test is already running' });
        return;
      }
      running = true;
      try {
        const g = await gpu();
        post({ type: 'selftest-plan', id: m.id, cases: selftestPlan(m.filter) });
        const t0 = performance.now();
        const results = await runSelftest(g, (result) => post({ type: 'selftest-result', id: m.id, result }), { filter: m.filter });
        const failed = results.filter((r) => !r.pass).length;
        const passed = results.length - failed;
        state.lastSelftest = { id: m.id, passed, failed, results: results.length };
        post({ type: 'selftest-done', id: m.id, passed, failed, ms: performance.now() - t0, context });
      } catch (e) {
        post({ type: 'error', id: m.id, message: (e as Error)?.message ?? String(e) });
      } finally {
        running = false;
      }
      return;
    }
    default: {
      const never: never = m;
      post({ type: 'error', message: `unknown message ${JSON.stringify(never)}` });
    }
  }
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  void handle(e.data);
};
