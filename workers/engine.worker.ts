/// <reference lib="webworker" />
// The engine worker: owns the GPUDevice (acquireGpu) and every engine service, answering the typed
// protocol of src/protocol.ts. The page never touches the GPU or IndexedDB; it asks this worker.
// Services (workers/engine/*): models (store, Hub, loaders), datasets (validation, token views),
// jobs (src/train queue mirrored into the store; resumed at start-up), playground (generation on
// the GPU), onnx (generation on the CPU through onnxruntime-web where WebGPU is missing), adapters. Requests are answered by one `reply` or `error`; aborts go through `abort`.
// It is not: UI (no DOM here).
import { acquireGpu, type Gpu } from '../src/gpu/device.ts';
import { PROTOCOL_VERSION, type EngineContext, type FromWorker, type ReplyOf, type Request, type ToWorker } from '../src/protocol.ts';
import { runSelftest, selftestPlan } from '../src/selftest.ts';
import { Adapters, exportAdapter, importPeftAdapter } from './engine/adapters.ts';
import { Datasets } from './engine/datasets.ts';
import { Jobs } from './engine/jobs.ts';
import { Models } from './engine/models.ts';
import { OnnxPlayground } from './engine/onnx.ts';
import { Playground } from './engine/playground.ts';

declare const self: DedicatedWorkerGlobalScope;

const context: EngineContext =
  typeof WorkerGlobalScope !== 'undefined' && self instanceof WorkerGlobalScope ? 'worker' : 'window';

/** Inspectable state for debugging (devtools → worker console: `whittleEngine`) and the e2e specs. */
const state = {
  gpu: null as Gpu | null,
  lastSelftest: null as null | { id: number; passed: number; failed: number; results: number },
  jobsHere: false,
  /** every URL this worker fetched (the specs check that training touches no network) */
  fetched: [] as string[],
};
(self as unknown as { whittleEngine: typeof state }).whittleEngine = state;

function post(m: FromWorker): void {
  self.postMessage(m);
}

// Count this worker's own requests: the Hub download is the only one there should be.
const realFetch = self.fetch.bind(self);
self.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
  state.fetched.push(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
  return realFetch(input, init);
};

let gpuPromise: Promise<Gpu> | null = null;
function gpu(): Promise<Gpu> {
  if (!gpuPromise) {
    gpuPromise = acquireGpu().then((g) => {
      state.gpu = g;
      g.device.lost.then((l) => post({ type: 'device-lost', reason: `${l.reason}: ${l.message}` }));
      return g;
    });
    gpuPromise.catch(() => (gpuPromise = null));
  }
  return gpuPromise;
}

const models = new Models();
const datasets = new Datasets(models);
const adapters = new Adapters();
const jobs = new Jobs(post, gpu, models, datasets);
const playground = new Playground(gpu, models, adapters);
const onnx = new OnnxPlayground(models);

/**
 * One tab runs training jobs: the holder of the 'whittle-jobs' Web Lock, which resumes the jobs the
 * store says were running. Another tab waits for the lock (it takes over when the first one closes);
 * after a reload the previous page's lock is released as its worker ends, so this one gets it.
 */
const lockGranted: Promise<void> = new Promise((resolve) => {
  const locks = (self.navigator as Navigator & { locks?: LockManager }).locks;
  if (!locks) return resolve();
  void locks.request('whittle-jobs', () => {
    resolve();
    return new Promise<void>(() => {}); // held for the worker's life
  });
});
void lockGranted.then(() => {
  state.jobsHere = true;
  void jobs.resumeAtStartup();
});
/** Whether this tab runs jobs, as far as known within 3 s of start-up. */
const jobsLock: Promise<boolean> = Promise.race([lockGranted.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(state.jobsHere), 3000))]);
void jobsLock.then((here) => {
  if (!here) jobs.markReady();
});

const aborts = new Map<number, AbortController>();
function abortable(id: number): AbortSignal {
  const c = new AbortController();
  aborts.set(id, c);
  return c.signal;
}

function reply<T extends keyof ReplyOf>(id: number, _type: T, value: ReplyOf[T]): void {
  post({ type: 'reply', id, value });
}

function changed(what: 'models' | 'datasets' | 'jobs' | 'adapters'): void {
  post({ type: 'changed', what });
}

async function needJobs(): Promise<void> {
  await jobsLock;
  if (!state.jobsHere) throw new Error('training runs in another whittle tab of this browser; use that tab (or close it and reload this one)');
}

/** Answer one request (the reply's type follows ReplyOf). */
async function answer(m: Request): Promise<void> {
  switch (m.type) {
    case 'abort': {
      const c = aborts.get(m.target);
      c?.abort();
      return reply(m.id, m.type, !!c);
    }
    case 'models-list':
      return reply(m.id, m.type, await models.list());
    case 'model-info':
      return reply(m.id, m.type, await models.details(m.modelId));
    case 'model-import': {
      const r = await models.importFiles(m.name, m.files, abortable(m.id), (modelId, progress) => post({ type: 'progress', id: m.id, modelId, progress }));
      changed('models');
      return reply(m.id, m.type, r);
    }
    case 'model-download': {
      try {
        const r = await models.download(m, abortable(m.id), (modelId, progress) => post({ type: 'progress', id: m.id, modelId, progress }));
        return reply(m.id, m.type, r);
      } finally {
        changed('models'); // a partial download is listed too (it can be resumed)
      }
    }
    case 'model-delete': {
      onnx.forget(m.modelId);
      const r = await models.remove(m.modelId);
      changed('models');
      return reply(m.id, m.type, r);
    }
    case 'datasets-list':
      return reply(m.id, m.type, await datasets.list());
    case 'dataset-check':
      return reply(m.id, m.type, await datasets.check(m.input, m.modelId, m.trainOn));
    case 'dataset-preview':
      return reply(m.id, m.type, await datasets.preview(m.text, m.line, m.modelId, m.trainOn));
    case 'dataset-save': {
      const r = await datasets.save(m.name, m.text, m.excluded);
      changed('datasets');
      return reply(m.id, m.type, r);
    }
    case 'dataset-get':
      return reply(m.id, m.type, await datasets.get(m.datasetId));
    case 'dataset-rename': {
      const r = await datasets.rename(m.datasetId, m.name);
      changed('datasets');
      return reply(m.id, m.type, r);
    }
    case 'dataset-delete': {
      const r = await datasets.remove(m.datasetId);
      changed('datasets');
      return reply(m.id, m.type, r);
    }
    case 'train-plan':
      return reply(m.id, m.type, await jobs.plan(m));
    case 'train-start': {
      await needJobs();
      const r = await jobs.start(m);
      changed('jobs');
      return reply(m.id, m.type, r);
    }
    case 'job-control':
      await needJobs();
      return reply(m.id, m.type, await jobs.control(m.jobId, m.action));
    case 'jobs-list':
      return reply(m.id, m.type, await jobs.list());
    case 'job-get':
      return reply(m.id, m.type, await jobs.get(m.jobId));
    case 'job-delete': {
      await needJobs();
      const r = await jobs.remove(m.jobId);
      changed('jobs');
      return reply(m.id, m.type, r);
    }
    case 'generate': {
      if (m.backend === 'onnx') {
        const r = await onnx.run(m, abortable(m.id),
          (lane, text, tokenId) => post({ type: 'gen-token', id: m.id, lane, text, tokenId }),
          (lane, summary) => post({ type: 'gen-done', id: m.id, lane, summary }));
        return reply(m.id, m.type, r);
      }
      const r = await playground.run(m, abortable(m.id),
        (lane, t) => post({ type: 'gen-token', id: m.id, lane, text: t.text, tokenId: t.id }),
        (lane, summary) => post({ type: 'gen-done', id: m.id, lane, summary }));
      return reply(m.id, m.type, r);
    }
    case 'adapters-list':
      return reply(m.id, m.type, await adapters.list());
    case 'adapter-rename': {
      const r = await adapters.rename(m.adapterId, m.name);
      changed('adapters');
      return reply(m.id, m.type, r);
    }
    case 'adapter-delete': {
      onnx.forget(m.adapterId);
      const r = await adapters.remove(m.adapterId);
      changed('adapters');
      return reply(m.id, m.type, r);
    }
    case 'adapter-export': {
      const r = await exportAdapter({ models, datasets }, m.adapterId, m.format, m.dtype);
      self.postMessage({ type: 'reply', id: m.id, value: r } satisfies FromWorker, [r.bytes]);
      return;
    }
    case 'adapter-import': {
      const r = await importPeftAdapter({ models, datasets }, m.modelId, m.name, m.files);
      changed('adapters');
      return reply(m.id, m.type, r);
    }
    default: {
      const never: never = m;
      throw new Error(`unknown request ${JSON.stringify(never)}`);
    }
  }
}

let selftestRunning = false;

async function handle(m: ToWorker): Promise<void> {
  switch (m.type) {
    case 'hello': {
      try {
        const g = await gpu();
        post({ type: 'ready', protocol: PROTOCOL_VERSION, gpu: g.info, context, jobsHere: await jobsLock });
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
      if (selftestRunning) {
        post({ type: 'error', id: m.id, message: 'a self-test is already running' });
        return;
      }
      selftestRunning = true;
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
        selftestRunning = false;
      }
      return;
    }
    default: {
      try {
        await answer(m);
      } catch (e) {
        const err = e as Error;
        post({ type: 'error', id: m.id, message: err?.name === 'AbortError' ? 'stopped' : err?.message ?? String(e) });
      } finally {
        aborts.delete(m.id);
      }
    }
  }
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  void handle(e.data);
};
