// Jobs: lifecycle and status transitions, paged event / metric logs (appends touch only the
// tail page), incremental reads, truncation on resume, delete of everything a job owns.
import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { StoreError, tx, req, prefixRange } from '../../src/store/core.ts';
import {
  createJob, getJob, getJobWithLogs, listJobs, setJobStatus, updateJob, appendJobEvents, appendJobMetrics,
  getJobEvents, getJobMetrics, jobLogPageCount, truncateJobMetrics, deleteJob, LOG_PAGE_SIZE, type JobMetric,
} from '../../src/store/jobs.ts';
import { saveCheckpoint } from '../../src/store/checkpoints.ts';

const code = (c: string, re?: RegExp) => (e: unknown) => e instanceof StoreError && e.code === c && (!re || re.test(e.message));
const hp = { lr: 2e-4, rank: 8, alpha: 16, epochs: 1, targets: ['q', 'v'] };

test('lifecycle: statuses, timestamps, events', async () => {
  const j = await createJob({ modelId: 'm', datasetId: 'd', hyperparameters: hp });
  assert.match(j.id, /^job-/);
  assert.equal(j.status, 'validating_files');
  assert.equal(j.startedAt, null);
  await setJobStatus(j.id, 'queued');
  const r = await setJobStatus(j.id, 'running');
  assert.ok(r.startedAt !== null);
  const p = await setJobStatus(j.id, 'paused');
  assert.equal(p.finishedAt, null);
  const r2 = await setJobStatus(j.id, 'running');
  assert.equal(r2.startedAt, r.startedAt, 'startedAt is kept on resume');
  const f = await setJobStatus(j.id, 'failed', { error: 'device lost' });
  assert.equal(f.error, 'device lost');
  assert.ok(f.finishedAt !== null);
  const q = await setJobStatus(j.id, 'queued');
  assert.equal(q.error, null);
  assert.equal(q.finishedAt, null);
  await setJobStatus(j.id, 'running');
  const s = await setJobStatus(j.id, 'succeeded');
  assert.equal(s.status, 'succeeded');
  await assert.rejects(setJobStatus(j.id, 'running'), code('bad-transition', /is succeeded; it cannot become running \(allowed: none, it is final\)/));
  assert.equal((await setJobStatus(j.id, 'succeeded')).status, 'succeeded', 'same status is a no-op');
  const ev = await getJobEvents(j.id);
  assert.deepEqual(ev.map((e) => (e.data as { to?: string }).to ?? 'created'), ['created', 'queued', 'running', 'paused', 'running', 'failed', 'queued', 'running', 'succeeded']);
  assert.equal(ev[5].message, 'failed: device lost');
  await assert.rejects(setJobStatus(j.id, 'bogus' as never), code('invalid', /unknown job status/));
  const j2 = await createJob({ id: 'job-x', modelId: 'm', datasetId: 'd', hyperparameters: hp, status: 'queued' });
  await assert.rejects(setJobStatus(j2.id, 'succeeded'), code('bad-transition', /allowed: running, paused, failed, cancelled/));
  await assert.rejects(createJob({ id: 'job-x', modelId: 'm', datasetId: 'd', hyperparameters: hp }), code('exists'));
  await assert.rejects(setJobStatus('job-none', 'queued'), code('not-found', /jobs\/job-none/));
  const u = await updateJob('job-x', { name: 'first run', hyperparameters: { ...hp, lr: 1e-4 } });
  assert.equal(u.name, 'first run');
  assert.equal((await getJob('job-x'))!.hyperparameters.lr, 1e-4);
  assert.ok((await listJobs()).some((x) => x.id === 'job-x'));
});

test('metric paging: appends fill pages of LOG_PAGE_SIZE, only the tail page is rewritten', async () => {
  const j = await createJob({ id: 'job-metrics', modelId: 'm', datasetId: 'd', hyperparameters: hp });
  const P = LOG_PAGE_SIZE.metrics;
  const rows: JobMetric[] = [];
  // one row per step for 2.5 pages, then a batch
  for (let step = 1; step <= P * 2 + P / 2; step++) {
    const row = { step, loss: 5 / step, lr: 2e-4 };
    rows.push(row);
    await appendJobMetrics(j.id, [row]);
  }
  assert.equal(await jobLogPageCount(j.id, 'metrics'), 3);
  const batch = Array.from({ length: P + 10 }, (_, k) => ({ step: rows.length + 1 + k, loss: 0.1 }));
  rows.push(...batch);
  await appendJobMetrics(j.id, batch);
  assert.equal(rows.length, 3 * P + P / 2 + 10);
  assert.equal(await jobLogPageCount(j.id, 'metrics'), 4);
  // pages: every page but the last is full, keys are [log, job, metrics, page]
  const pages = await tx('jobs', 'readonly', (s) => req(s.getAll(prefixRange(['log', j.id, 'metrics'])))) as { page: number; entries: unknown[]; magic: string }[];
  assert.deepEqual(pages.map((p) => p.entries.length), [P, P, P, P / 2 + 10]);
  assert.deepEqual(pages.map((p) => p.page), [0, 1, 2, 3]);
  assert.equal(pages[0].magic, 'whittle.job-log');
  // the job record itself holds no arrays
  const rec = await tx('jobs', 'readonly', (s) => req(s.get(['job', j.id])));
  assert.ok(!('metrics' in (rec as object)) && !('events' in (rec as object)));
  // reads
  assert.deepEqual(await getJobMetrics(j.id), rows);
  assert.deepEqual(await getJobMetrics(j.id, { from: P + 7 }), rows.slice(P + 7));
  assert.deepEqual(await getJobMetrics(j.id, { from: rows.length }), []);
  const full = await getJobWithLogs(j.id);
  assert.equal(full!.metrics.length, rows.length);
  assert.equal(full!.events.length, 1);
  await assert.rejects(appendJobMetrics(j.id, [{ loss: 1 } as unknown as JobMetric]), code('invalid', /numeric step/));
  await assert.rejects(appendJobMetrics('job-none', [{ step: 1 }]), code('not-found'));
});

test('appends write only the tail page', async () => {
  const j = await createJob({ id: 'job-tail', modelId: 'm', datasetId: 'd', hyperparameters: hp });
  const P = LOG_PAGE_SIZE.metrics;
  await appendJobMetrics(j.id, Array.from({ length: 2 * P + 3 }, (_, i) => ({ step: i })));
  // count IDB puts made by one more append
  const proto = Object.getPrototypeOf((await tx('jobs', 'readonly', async (s) => s)));
  const orig = proto.put;
  const keys: unknown[] = [];
  proto.put = function (this: IDBObjectStore, v: unknown, k?: IDBValidKey) {
    keys.push(k);
    return orig.call(this, v, k);
  };
  try {
    await appendJobMetrics(j.id, [{ step: 9999 }]);
  } finally {
    proto.put = orig;
  }
  assert.deepEqual(keys, [['log', j.id, 'metrics', 2]]);
});

test('events page too, and truncateJobMetrics drops steps after a checkpoint', async () => {
  const j = await createJob({ id: 'job-ev', modelId: 'm', datasetId: 'd', hyperparameters: hp });
  const E = LOG_PAGE_SIZE.events;
  for (let i = 0; i < E + 5; i++) await appendJobEvents(j.id, [{ type: 'info', message: `event ${i}` }]);
  const ev = await getJobEvents(j.id);
  assert.equal(ev.length, E + 6);
  assert.equal(ev[E + 5].message, `event ${E + 4}`);
  assert.ok(typeof ev[1].time === 'number');
  assert.equal(await jobLogPageCount(j.id, 'events'), 2);

  const P = LOG_PAGE_SIZE.metrics;
  await appendJobMetrics(j.id, Array.from({ length: 3 * P }, (_, i) => ({ step: i + 1 })));
  const removed = await truncateJobMetrics(j.id, P + 20);
  assert.equal(removed, 3 * P - (P + 20));
  assert.equal(await jobLogPageCount(j.id, 'metrics'), 2);
  const m = await getJobMetrics(j.id);
  assert.equal(m.length, P + 20);
  assert.equal(m[m.length - 1].step, P + 20);
  await appendJobMetrics(j.id, [{ step: P + 21 }]);
  assert.deepEqual((await getJobMetrics(j.id, { from: P + 20 })).map((x) => x.step), [P + 21]);
  assert.equal(await truncateJobMetrics(j.id, 1e9), 0);
});

test('deleteJob removes the job, its logs and its checkpoints', async () => {
  const j = await createJob({ id: 'job-del', modelId: 'm', datasetId: 'd', hyperparameters: hp });
  const other = await createJob({ id: 'job-del-2', modelId: 'm', datasetId: 'd', hyperparameters: hp });
  await appendJobMetrics(j.id, Array.from({ length: 600 }, (_, i) => ({ step: i })));
  await appendJobMetrics(other.id, [{ step: 1 }]);
  await saveCheckpoint(j.id, { step: 3, lora: [{ name: 'a', shape: [2], dtype: 'f32', data: new Float32Array(2) }], adamM: [], adamV: [], rng: [1], data: { epoch: 0, index: 3 }, metrics: [] });
  assert.equal(await deleteJob(j.id), true);
  assert.equal(await getJob(j.id), undefined);
  for (const p of [['log', j.id], ['ckpt', j.id], ['ckpt-ptr', j.id]]) {
    assert.equal(await tx('jobs', 'readonly', (s) => req(s.count(prefixRange(p)))), 0, `nothing left under ${p}`);
  }
  assert.equal((await getJobMetrics(other.id)).length, 1);
  assert.equal(await deleteJob(j.id), false);
});
