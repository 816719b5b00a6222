// Adapters: round trip of tensors and metadata, list (by shape), rename, duplicate, delete.
import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { StoreError, tx, req } from '../../src/store/core.ts';
import { saveAdapter, getAdapter, getAdapterMeta, listAdapters, renameAdapter, duplicateAdapter, deleteAdapter, modelShapeSignature } from '../../src/store/adapters.ts';

const code = (c: string, re?: RegExp) => (e: unknown) => e instanceof StoreError && e.code === c && (!re || re.test(e.message));
const cfg = { arch: 'llama' as const, hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, ffn: 128, vocab: 256 };
const shape = modelShapeSignature(cfg);

function tensors() {
  return [
    { name: 'layers.0.q.A', shape: [4, 64], dtype: 'f32' as const, data: Float32Array.from({ length: 256 }, (_, i) => i) },
    { name: 'layers.0.q.B', shape: [64, 4], dtype: 'f16' as const, data: new Uint16Array(256).fill(0x3c00) },
  ];
}

test('save / get round trip; listing has no tensors', async () => {
  assert.equal(shape, 'llama:C64:L2:H4:KV2:HS16:F128:V256');
  const meta = await saveAdapter({ name: 'poems', baseModel: { id: 'smollm-135m', shape }, datasetId: 'ds-1', jobId: 'job-1', hyperparameters: { rank: 4 }, metrics: { finalLoss: 1.25 }, tensors: tensors() });
  assert.match(meta.id, /^ad-/);
  assert.equal(meta.tensorCount, 2);
  assert.equal(meta.bytes, 1024 + 512);
  const a = await getAdapter(meta.id);
  assert.equal(a!.name, 'poems');
  assert.deepEqual(a!.metrics, { finalLoss: 1.25 });
  assert.deepEqual(new Float32Array(a!.tensors[0].data), tensors()[0].data);
  assert.deepEqual(new Uint16Array(a!.tensors[1].data), tensors()[1].data);
  assert.equal(a!.tensors[1].dtype, 'f16');
  const row = (await listAdapters()).find((x) => x.id === meta.id)!;
  assert.ok(!('tensors' in row));
  assert.ok((await listAdapters({ shape })).some((x) => x.id === meta.id));
  assert.ok(!(await listAdapters({ shape: 'llama:C1' })).some((x) => x.id === meta.id));
  await assert.rejects(saveAdapter({ id: meta.id, name: 'x', baseModel: { id: 'm', shape }, tensors: tensors() }), code('exists'));
  await assert.rejects(saveAdapter({ name: 'x', baseModel: { id: 'm', shape }, tensors: [] }), code('invalid', /no tensors/));
  await assert.rejects(saveAdapter({ name: 'x', baseModel: { id: 'm', shape: '' }, tensors: tensors() }), code('invalid', /shape signature/));
});

test('rename, duplicate, delete', async () => {
  const a = await saveAdapter({ id: 'ad-a', name: 'A', baseModel: { id: 'm', shape }, tensors: tensors() });
  const r = await renameAdapter('ad-a', 'Alpha');
  assert.equal(r.name, 'Alpha');
  assert.equal(r.createdAt, a.createdAt);
  await assert.rejects(renameAdapter('ad-a', ''), code('invalid'));
  await assert.rejects(renameAdapter('ad-none', 'x'), code('not-found', /adapters\/ad-none/));

  const d = await duplicateAdapter('ad-a');
  assert.notEqual(d.id, 'ad-a');
  assert.equal(d.name, 'Alpha (copy)');
  const d2 = await duplicateAdapter('ad-a', { newId: 'ad-b', name: 'Beta' });
  assert.equal(d2.name, 'Beta');
  await assert.rejects(duplicateAdapter('ad-a', { newId: 'ad-b' }), code('exists'));
  const copy = await getAdapter('ad-b');
  assert.deepEqual(new Float32Array(copy!.tensors[0].data), tensors()[0].data);
  assert.equal((await tx('adapters', 'readonly', (s) => req(s.get(['tensors', 'ad-b'])))  as { id: string }).id, 'ad-b');

  // deleting the original leaves the copies whole
  assert.equal(await deleteAdapter('ad-a'), true);
  assert.equal(await getAdapterMeta('ad-a'), undefined);
  assert.equal(await tx('adapters', 'readonly', (s) => req(s.get(['tensors', 'ad-a']))), undefined);
  assert.equal((await getAdapter(d.id))!.tensors.length, 2);
  assert.equal(await deleteAdapter('ad-a'), false);
  const ids = (await listAdapters()).map((x) => x.id);
  assert.ok(ids.includes('ad-b') && ids.includes(d.id) && !ids.includes('ad-a'));
});
