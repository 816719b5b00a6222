// What the page knows about the store, kept fresh from the worker: the lists of models, datasets,
// adapters and jobs. Refetched when the worker says a kind `changed`; jobs are also patched from
// `job-update` pushes. Sections subscribe to the kinds they show. Settings the user chose (Hub
// server, theme, last choices) live in localStorage, not here.
import type { AdapterMeta, DatasetMeta, JobSummary, ModelSummary, StoreKind } from '../protocol.ts';
import type { Engine, Ready } from './engine.ts';

type Lists = { models: ModelSummary[]; datasets: DatasetMeta[]; adapters: AdapterMeta[]; jobs: JobSummary[] };

const LIST_REQUEST = { models: 'models-list', datasets: 'datasets-list', adapters: 'adapters-list', jobs: 'jobs-list' } as const;

export class AppState {
  readonly lists: Lists = { models: [], datasets: [], adapters: [], jobs: [] };
  /** the first fetch of each kind, so sections can wait for real data */
  readonly loaded: { [K in StoreKind]: Promise<void> };
  private subs: { [K in StoreKind]: Set<() => void> } = { models: new Set(), datasets: new Set(), adapters: new Set(), jobs: new Set() };
  private errors: { [K in StoreKind]?: string } = {};

  /** Whether the engine has a GPU: true, false (no WebGPU here: training is off, the playground runs on the CPU), null until known. */
  gpu: boolean | null = null;

  /** `ready`: the worker's answer to hello (engine.hello()). */
  constructor(readonly engine: Engine, readonly ready: Promise<Ready>) {
    ready.then((r) => (this.gpu = r.type === 'ready'), () => (this.gpu = false));
    this.loaded = {
      models: this.refresh('models'), datasets: this.refresh('datasets'), adapters: this.refresh('adapters'), jobs: this.refresh('jobs'),
    };
    engine.on((m) => {
      if (m.type === 'changed') void this.refresh(m.what);
      else if (m.type === 'job-update') {
        const i = this.lists.jobs.findIndex((j) => j.id === m.job.id);
        if (i >= 0) this.lists.jobs[i] = m.job;
        else this.lists.jobs.push(m.job);
        this.notify('jobs');
      }
    });
  }

  /** Why the last fetch of a kind failed (shown by the section), if it did. */
  error(kind: StoreKind): string | undefined {
    return this.errors[kind];
  }

  async refresh(kind: StoreKind): Promise<void> {
    try {
      const v = await this.engine.request({ type: LIST_REQUEST[kind] });
      (this.lists as Record<StoreKind, unknown>)[kind] = v;
      delete this.errors[kind];
    } catch (e) {
      this.errors[kind] = (e as Error).message;
    }
    this.notify(kind);
  }

  subscribe(kind: StoreKind, fn: () => void): () => void {
    this.subs[kind].add(fn);
    return () => this.subs[kind].delete(fn);
  }

  private notify(kind: StoreKind): void {
    for (const f of this.subs[kind]) f();
  }

  model(id: string): ModelSummary | undefined {
    return this.lists.models.find((m) => m.id === id);
  }
}

/** A remembered choice (localStorage; absent or unreadable: the fallback). */
export function setting(key: string, fallback: string): string {
  try {
    return localStorage.getItem(`whittle.${key}`) ?? fallback;
  } catch {
    return fallback;
  }
}

export function setSetting(key: string, value: string): void {
  try {
    localStorage.setItem(`whittle.${key}`, value);
  } catch {
    /* private mode: the choice lasts this visit only */
  }
}
