// Checkpoints: full round trip of the payload, and crash-atomicity — a failure after writing the
// new record but before the pointer flip, or after the flip but before cleanup, leaves a whole,
// readable checkpoint (the previous one, or the new one), and orphans are collected later.
import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { StoreError, tx, req, prefixRange, type TensorInput } from '../../src/store/core.ts';
import { createJob, deleteJob } from '../../src/store/jobs.ts';
import { saveCheckpoint, loadCheckpoint, checkpointInfo, gcCheckpoints, deleteCheckpoints, type CheckpointInput } from '../../src/store/checkpoints.ts';

const code = (c: string, re?: RegExp) => (e: unknown) => e instanceof StoreError && e.code === c && (!re || re.test(e.message));

function payload(step: number): CheckpointInput {
  const t = (name: string, shape: number[], base: number): TensorInput => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { name, shape, dtype: 'f32', data: Float32Array.from({ length: n }, (_, i) => base + step + i / 1000) };
  };
  const names: [string, number[]][] = [['layers.0.q.A', [4, 64]], ['layers.0.q.B', [64, 4]], ['layers.0.v.A', [4, 64]], ['layers.0.v.B', [32, 4]]];
  return {
    step,
    lora: names.map(([n, s]) => t(n, s, 0)),
    adamM: names.map(([n, s]) => t(n, s, 100)),
    adamV: names.map(([n, s]) => t(n, s, 200)),
    rng: [0x12345678, step, 0xdeadbeef, 7],
    data: { epoch: 1, index: step * 4, orderSeed: 42 },
    metrics: Array.from({ length: step }, (_, i) => ({ step: i + 1, loss: 3 - i * 0.01 })),
    extra: { lrScheduler: 'cosine' },
  };
}

async function records(jobId: string): Promise<number> {
  return tx('jobs', 'readonly', (s) => req(s.count(prefixRange(['ckpt', jobId]))));
}

function assertIs(ck: Awaited<ReturnType<typeof loadCheckpoint>>, step: number): void {
  assert.ok(ck, `a checkpoint is readable`);
  assert.equal(ck.step, step);
  const want = payload(step);
  assert.deepEqual(ck.rng, want.rng);
  assert.deepEqual(ck.data, want.data);
  assert.equal(ck.metrics.length, step);
  for (const [got, exp] of [[ck.lora, want.lora], [ck.adamM, want.adamM], [ck.adamV, want.adamV]] as const) {
    assert.deepEqual(got.map((t) => t.name), exp.map((t) => t.name));
    got.forEach((t, i) => {
      assert.ok(t.data instanceof ArrayBuffer);
      assert.deepEqual(new Float32Array(t.data), exp[i].data);
      assert.deepEqual(t.shape, exp[i].shape);
    });
  }
}

test('round trip; each save replaces the previous one', async () => {
  const job = await createJob({ id: 'ck-rt', modelId: 'm', datasetId: 'd', hyperparameters: {} });
  assert.equal(await loadCheckpoint(job.id), undefined);
  assert.equal(await checkpointInfo(job.id), undefined);
  const p1 = await saveCheckpoint(job.id, payload(10));
  assert.equal(p1.step, 10);
  assert.equal(p1.bytes, 3 * 4 * (256 + 256 + 256 + 128));
  assertIs(await loadCheckpoint(job.id), 10);
  await saveCheckpoint(job.id, payload(20));
  assertIs(await loadCheckpoint(job.id), 20);
  assert.equal((await checkpointInfo(job.id))!.step, 20);
  assert.equal(await records(job.id), 1, 'the old record was deleted');
  assert.deepEqual((await loadCheckpoint(job.id))!.extra, { lrScheduler: 'cosine' });
});

test('crash after writing the new record, before the flip: the previous checkpoint stays', async () => {
  const job = await createJob({ id: 'ck-crash-1', modelId: 'm', datasetId: 'd', hyperparameters: {} });
  await saveCheckpoint(job.id, payload(5));
  await assert.rejects(
    saveCheckpoint(job.id, payload(6), { afterWrite: () => { throw new Error('tab closed'); } }),
    /tab closed/,
  );
  assertIs(await loadCheckpoint(job.id), 5);
  assert.equal((await checkpointInfo(job.id))!.step, 5);
  assert.equal(await records(job.id), 2, 'an orphan is left, as after a real crash');
  // the next save collects it
  await saveCheckpoint(job.id, payload(7));
  assertIs(await loadCheckpoint(job.id), 7);
  assert.equal(await records(job.id), 1);
});

test('crash after the flip, before cleanup: the new checkpoint is current and whole', async () => {
  const job = await createJob({ id: 'ck-crash-2', modelId: 'm', datasetId: 'd', hyperparameters: {} });
  await saveCheckpoint(job.id, payload(5));
  await assert.rejects(
    saveCheckpoint(job.id, payload(6), { afterFlip: async () => { throw new Error('power cut'); } }),
    /power cut/,
  );
  assertIs(await loadCheckpoint(job.id), 6);
  assert.equal(await records(job.id), 2);
  assert.equal(await gcCheckpoints(job.id), 1);
  assert.equal(await records(job.id), 1);
  assertIs(await loadCheckpoint(job.id), 6);
});

test('first save crashing before the flip leaves no checkpoint, not a broken one', async () => {
  const job = await createJob({ id: 'ck-crash-0', modelId: 'm', datasetId: 'd', hyperparameters: {} });
  await assert.rejects(saveCheckpoint(job.id, payload(1), { afterWrite: () => { throw new Error('x'); } }));
  assert.equal(await loadCheckpoint(job.id), undefined);
  assert.equal(await gcCheckpoints(job.id), 1);
});

test('a failing flip (job deleted mid-training) keeps nothing behind', async () => {
  const job = await createJob({ id: 'ck-gone', modelId: 'm', datasetId: 'd', hyperparameters: {} });
  await assert.rejects(
    saveCheckpoint(job.id, payload(3), { afterWrite: async () => { await deleteJob(job.id); } }),
    code('not-found', /job ck-gone no longer exists/),
  );
  assert.equal(await records(job.id), 0);
  assert.equal(await checkpointInfo(job.id), undefined);
});

test('validation and deleteCheckpoints', async () => {
  const job = await createJob({ id: 'ck-val', modelId: 'm', datasetId: 'd', hyperparameters: {} });
  const bad = payload(1);
  bad.adamM = bad.adamM.slice(1);
  await assert.rejects(saveCheckpoint(job.id, bad), code('invalid', /adamM must hold the same tensors/));
  await assert.rejects(saveCheckpoint(job.id, { ...payload(1), step: -1 }), code('invalid', /step must be a non-negative integer/));
  const short = payload(1);
  short.lora[0] = { ...short.lora[0], data: new Float32Array(3) };
  await assert.rejects(saveCheckpoint(job.id, short), code('invalid', /tensor 'layers.0.q.A' \(f32 \[4, 64\]\) needs 1024 bytes, got 12/));
  assert.equal(await records(job.id), 0, 'a refused save writes nothing');
  // moments may be empty (e.g. optimizer state not kept)
  await saveCheckpoint(job.id, { ...payload(2), adamM: [], adamV: [] });
  assert.deepEqual((await loadCheckpoint(job.id))!.adamM, []);
  await deleteCheckpoints(job.id);
  assert.equal(await loadCheckpoint(job.id), undefined);
  assert.equal(await records(job.id), 0);
});

test('a dangling pointer and a newer checkpoint record fail loudly', async () => {
  const job = await createJob({ id: 'ck-bad', modelId: 'm', datasetId: 'd', hyperparameters: {} });
  const ptr = await saveCheckpoint(job.id, payload(1));
  const rec = await tx('jobs', 'readonly', (s) => req(s.get(ptr.key)));
  await tx('jobs', 'readwrite', (s) => req(s.put({ ...(rec as object), v: 9 }, ptr.key)));
  await assert.rejects(loadCheckpoint(job.id), code('version-newer', /jobs\/ck-bad\/checkpoint@1 was written by a newer whittle \(checkpoint v9\)/));
  await tx('jobs', 'readwrite', (s) => req(s.delete(ptr.key)));
  await assert.rejects(loadCheckpoint(job.id), code('invalid', /names a missing record/));
});
