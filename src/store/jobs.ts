// Fine-tuning jobs in IndexedDB (database `whittle-jobs`, shared with ./checkpoints.ts so a job
// and everything it owns is deleted in one transaction):
//   ['job', id]                         JobRecord (versioned): status, ids, hyperparameters, times, error
//   ['log', id, 'events'|'metrics', p]  JobLogPage (versioned): entries [p·PAGE, (p+1)·PAGE) of that log
// Appends touch only the last page (at most PAGE entries rewritten) plus any new pages, inside one
// transaction, so logging a metric every step stays O(page) instead of rewriting the whole history,
// and the job record itself is not rewritten. Status changes validate the transition, stamp
// startedAt / finishedAt and append a 'status' event in the same transaction.
import { type Versioned, type ListOptions, kind, decodeAll, whereOfId, stamp, decode, decodeRequired, tx, req, prefixRange, deletePrefix, StoreError, checkId, newId } from './core.ts';

export type JobStatus = 'validating_files' | 'queued' | 'running' | 'paused' | 'succeeded' | 'failed' | 'cancelled';

/** Allowed status changes. 'failed' may be re-queued (resume from the last checkpoint); succeeded and cancelled are final. */
export const JOB_TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  validating_files: ['queued', 'failed', 'cancelled'],
  queued: ['running', 'paused', 'failed', 'cancelled'],
  running: ['paused', 'queued', 'succeeded', 'failed', 'cancelled'],
  paused: ['running', 'queued', 'failed', 'cancelled'],
  failed: ['queued'],
  succeeded: [],
  cancelled: [],
};
const TERMINAL: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

export interface JobEvent {
  time: number;
  /** 'status', 'warning', 'info', 'checkpoint', ... */
  type: string;
  message: string;
  data?: unknown;
}

/** One logged training step (or eval): `step` plus any numeric series (loss, lr, gradNorm, tokPerSec, ...). */
export interface JobMetric {
  step: number;
  time?: number;
  [series: string]: number | undefined;
}

export type LogKind = 'events' | 'metrics';
/** Entries per log page. */
export const LOG_PAGE_SIZE: Readonly<Record<LogKind, number>> = { events: 128, metrics: 256 };

export interface JobRecord extends Versioned {
  id: string;
  name: string;
  status: JobStatus;
  modelId: string;
  datasetId: string;
  hyperparameters: Record<string, unknown>;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** Message of the failure when status is 'failed'. */
  error: string | null;
}

export interface JobLogPage<T = unknown> extends Versioned {
  jobId: string;
  log: LogKind;
  page: number;
  entries: T[];
}

/** A job with its logs loaded. */
export type Job = JobRecord & { events: JobEvent[]; metrics: JobMetric[] };

export const JOB = kind<JobRecord>('job', 'whittle.job', 1);
export const JOB_LOG_PAGE = kind<JobLogPage>('job log page', 'whittle.job-log', 1);

const where = (id: string) => `jobs/${id}`;
const logPrefix = (id: string, log: LogKind) => ['log', id, log];

async function jobIn(s: IDBObjectStore, id: string): Promise<JobRecord> {
  return decodeRequired(JOB, await req(s.get(['job', id])), where(id));
}

export interface CreateJobInit {
  id?: string;
  name?: string;
  modelId: string;
  datasetId: string;
  hyperparameters: Record<string, unknown>;
  /** Initial status (default 'validating_files'). */
  status?: 'validating_files' | 'queued';
}

/** Create a job; throws 'exists' when the id is taken. */
export async function createJob(init: CreateJobInit): Promise<JobRecord> {
  const id = init.id === undefined ? newId('job') : checkId('job', init.id);
  const rec = stamp(JOB, {
    id,
    name: init.name ?? id,
    status: init.status ?? 'validating_files',
    modelId: checkId('model', init.modelId),
    datasetId: checkId('dataset', init.datasetId),
    hyperparameters: init.hyperparameters ?? {},
    createdAt: Date.now(),
    startedAt: null,
    finishedAt: null,
    error: null,
  });
  await tx('jobs', 'readwrite', async (s) => {
    if ((await req(s.count(['job', id]))) > 0) throw new StoreError('exists', `job ${id} already exists`);
    await req(s.put(rec, ['job', id]));
    await appendIn(s, id, 'events', [{ time: rec.createdAt, type: 'status', message: `created (${rec.status})`, data: { status: rec.status } }]);
  });
  return rec;
}

/** The job record (no logs), or undefined. */
export async function getJob(id: string): Promise<JobRecord | undefined> {
  return tx('jobs', 'readonly', async (s) => decode(JOB, await req(s.get(['job', id])), where(id)));
}

/** The job with its events and metrics, or undefined (one consistent snapshot). */
export async function getJobWithLogs(id: string): Promise<Job | undefined> {
  return tx('jobs', 'readonly', async (s) => {
    const rec = decode(JOB, await req(s.get(['job', id])), where(id));
    if (!rec) return undefined;
    const events = await readLogIn<JobEvent>(s, id, 'events');
    const metrics = await readLogIn<JobMetric>(s, id, 'metrics');
    return { ...rec, events, metrics };
  });
}

/** Every job record, oldest first. */
export async function listJobs(opts: ListOptions = {}): Promise<JobRecord[]> {
  const raws = await tx('jobs', 'readonly', (s) => req(s.getAll(prefixRange(['job']))));
  return decodeAll(JOB, raws, whereOfId('jobs'), opts.onUnreadable)
    .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
}

/** Change the name or hyperparameters (not the status: use setJobStatus). */
export async function updateJob(id: string, patch: { name?: string; hyperparameters?: Record<string, unknown> }): Promise<JobRecord> {
  return tx('jobs', 'readwrite', async (s) => {
    const cur = await jobIn(s, id);
    const next: JobRecord = { ...cur };
    if (patch.name !== undefined) next.name = patch.name;
    if (patch.hyperparameters !== undefined) next.hyperparameters = patch.hyperparameters;
    await req(s.put(next, ['job', id]));
    return next;
  });
}

/**
 * Move a job to `status`, checking JOB_TRANSITIONS (StoreError 'bad-transition' otherwise; the
 * same status is a no-op). Sets startedAt on the first 'running', finishedAt on succeeded /
 * failed / cancelled (cleared when a failed job is re-queued), `error` for 'failed', and appends
 * a 'status' event — all in one transaction.
 */
export async function setJobStatus(id: string, status: JobStatus, opts: { error?: string; message?: string } = {}): Promise<JobRecord> {
  if (!(status in JOB_TRANSITIONS)) throw new StoreError('invalid', `unknown job status '${String(status)}'`);
  return tx('jobs', 'readwrite', async (s) => {
    const cur = await jobIn(s, id);
    if (cur.status === status) return cur;
    if (!JOB_TRANSITIONS[cur.status].includes(status)) {
      const allowed = JOB_TRANSITIONS[cur.status];
      throw new StoreError('bad-transition', `job ${id} is ${cur.status}; it cannot become ${status} (allowed: ${allowed.length ? allowed.join(', ') : 'none, it is final'})`);
    }
    const now = Date.now();
    const next: JobRecord = { ...cur, status };
    if (status === 'running' && next.startedAt === null) next.startedAt = now;
    if (TERMINAL.includes(status)) next.finishedAt = now;
    else next.finishedAt = null;
    next.error = status === 'failed' ? (opts.error ?? 'failed (no message)') : null;
    await req(s.put(next, ['job', id]));
    const msg = opts.message ?? (status === 'failed' ? `failed: ${next.error}` : status);
    await appendIn(s, id, 'events', [{ time: now, type: 'status', message: msg, data: { from: cur.status, to: status } }]);
    return next;
  });
}

async function appendIn<T>(s: IDBObjectStore, id: string, log: LogKind, items: T[]): Promise<void> {
  if (!items.length) return;
  const size = LOG_PAGE_SIZE[log];
  const cursor = await req(s.openCursor(prefixRange(logPrefix(id, log)), 'prev'));
  let page: JobLogPage<T>;
  if (cursor) {
    const key = cursor.key as [string, string, LogKind, number];
    page = decodeRequired(JOB_LOG_PAGE, cursor.value, `${where(id)}/${log}/${key[3]}`) as JobLogPage<T>;
    page = { ...page, entries: page.entries.slice() };
  } else {
    page = stamp(JOB_LOG_PAGE, { jobId: id, log, page: 0, entries: [] }) as JobLogPage<T>;
  }
  let i = 0;
  for (;;) {
    const take = Math.min(size - page.entries.length, items.length - i);
    for (let k = 0; k < take; k++) page.entries.push(items[i + k]);
    i += take;
    if (take > 0) await req(s.put(page, [...logPrefix(id, log), page.page]));
    if (i >= items.length) return;
    page = stamp(JOB_LOG_PAGE, { jobId: id, log, page: page.page + 1, entries: [] }) as JobLogPage<T>;
  }
}

async function readLogIn<T>(s: IDBObjectStore, id: string, log: LogKind, fromPage = 0): Promise<T[]> {
  const range = IDBKeyRange.bound([...logPrefix(id, log), fromPage], [...logPrefix(id, log), []], false, true);
  const pages = await req(s.getAll(range));
  const out: T[] = [];
  for (const p of pages) {
    const page = decodeRequired(JOB_LOG_PAGE, p, `${where(id)}/${log}`) as JobLogPage<T>;
    for (const e of page.entries) out.push(e);
  }
  return out;
}

async function append<T>(id: string, log: LogKind, items: T[]): Promise<void> {
  await tx('jobs', 'readwrite', async (s) => {
    if ((await req(s.count(['job', id]))) === 0) throw new StoreError('not-found', `no job ${where(id)} in the store (deleted?)`);
    await appendIn(s, id, log, items);
  });
}

/** Append events (time defaults to now). */
export async function appendJobEvents(id: string, events: Array<Omit<JobEvent, 'time'> & { time?: number }>): Promise<void> {
  const now = Date.now();
  return append<JobEvent>(id, 'events', events.map((e) => ({ ...e, time: e.time ?? now })));
}

/** Append metric rows; batch several steps per call when logging every step. */
export async function appendJobMetrics(id: string, metrics: JobMetric[]): Promise<void> {
  for (const m of metrics) {
    if (!m || typeof m.step !== 'number' || !Number.isFinite(m.step)) throw new StoreError('invalid', `job ${id}: every metric row needs a numeric step`);
  }
  return append<JobMetric>(id, 'metrics', metrics);
}

export async function getJobEvents(id: string): Promise<JobEvent[]> {
  return tx('jobs', 'readonly', (s) => readLogIn<JobEvent>(s, id, 'events'));
}

/** Metric rows, all or those from index `from` on (reads only the pages that hold them: for incremental chart updates). */
export async function getJobMetrics(id: string, opts: { from?: number } = {}): Promise<JobMetric[]> {
  const from = Math.max(0, opts.from ?? 0);
  const size = LOG_PAGE_SIZE.metrics;
  const firstPage = Math.floor(from / size);
  const rows = await tx('jobs', 'readonly', (s) => readLogIn<JobMetric>(s, id, 'metrics', firstPage));
  return rows.slice(from - firstPage * size);
}

/** Number of pages of a log (for diagnostics and tests). */
export async function jobLogPageCount(id: string, log: LogKind): Promise<number> {
  return tx('jobs', 'readonly', (s) => req(s.count(prefixRange(logPrefix(id, log)))));
}

/**
 * Drop metric rows whose step is greater than `step` (resuming from a checkpoint at `step`
 * replays the steps after it). Rewrites only the pages at the tail.
 */
export async function truncateJobMetrics(id: string, step: number): Promise<number> {
  return tx('jobs', 'readwrite', async (s) => {
    let removed = 0;
    for (;;) {
      const cursor = await req(s.openCursor(prefixRange(logPrefix(id, 'metrics')), 'prev'));
      if (!cursor) return removed;
      const key = cursor.key as IDBValidKey[];
      const page = decodeRequired(JOB_LOG_PAGE, cursor.value, `${where(id)}/metrics`) as JobLogPage<JobMetric>;
      const keep = page.entries.filter((m) => m.step <= step);
      removed += page.entries.length - keep.length;
      if (keep.length === page.entries.length) return removed;
      if (keep.length === 0) {
        await req(s.delete(key));
        continue;
      }
      await req(s.put({ ...page, entries: keep }, key));
      return removed;
    }
  });
}

/** Delete the job, its logs and its checkpoints, in one transaction. False when there was no such job. */
export async function deleteJob(id: string): Promise<boolean> {
  return tx('jobs', 'readwrite', async (s) => {
    const had = (await req(s.count(['job', id]))) > 0;
    await req(s.delete(['job', id]));
    await deletePrefix(s, ['log', id]);
    await req(s.delete(['ckpt-ptr', id]));
    await deletePrefix(s, ['ckpt', id]);
    return had;
  });
}
