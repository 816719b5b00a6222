// Store core: versioned-record checks (newer / older / foreign records fail with a hint),
// migrations, transaction rollback, tensor validation, incremental SHA-256, storage guards.
import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from '../harness.ts';
import { set } from 'idb-keyval';
import { kind, decode, tx, req, storeFor, StoreError, normTensors, toArrayBuffer, clearAllStores, type Versioned } from '../../src/store/core.ts';
import { Sha256, sha256Hex } from '../../src/store/sha256.ts';
import { storageInfo, requestPersistence, ensureSpace } from '../../src/store/storage.ts';
import { getModel, beginModel, listModels } from '../../src/store/models.ts';
import { getDataset, listDatasets, createDataset } from '../../src/store/datasets.ts';
import { getJob, listJobs } from '../../src/store/jobs.ts';
import { getAdapterMeta, listAdapters } from '../../src/store/adapters.ts';

interface Thing extends Versioned { x: number; y?: number }

function code(e: unknown): string | undefined {
  return e instanceof StoreError ? e.code : undefined;
}

test('decode: a newer record fails loudly with a hint', () => {
  const K = kind<Thing>('thing', 'whittle.thing', 2);
  assert.throws(
    () => decode(K, { magic: 'whittle.thing', v: 3, x: 1 }, 'things/a'),
    (e: unknown) => code(e) === 'version-newer' && /record things\/a was written by a newer whittle \(thing v3\); this build reads v2 — update the app or delete it/.test(String((e as Error).message)),
  );
});

test('decode: an older record without a migration says so; with one it is upgraded', () => {
  const K = kind<Thing>('thing', 'whittle.thing', 3);
  assert.throws(() => decode(K, { magic: 'whittle.thing', v: 1, x: 1 }, 'things/a'), (e: unknown) => code(e) === 'version-older' && /older whittle \(thing v1\)/.test((e as Error).message));
  const M = kind<Thing>('thing', 'whittle.thing', 3, { 1: (r) => ({ ...r, x: r.x * 10 }), 2: (r) => ({ ...r, y: 7 }) });
  assert.deepEqual(decode(M, { magic: 'whittle.thing', v: 1, x: 1 }, 'things/a'), { magic: 'whittle.thing', v: 3, x: 10, y: 7 });
});

test('decode: wrong magic, missing version, non-objects', () => {
  const K = kind<Thing>('thing', 'whittle.thing', 1);
  assert.throws(() => decode(K, { magic: 'other', v: 1 }, 'things/a'), (e: unknown) => code(e) === 'bad-magic' && /not a whittle thing/.test((e as Error).message));
  assert.throws(() => decode(K, new ArrayBuffer(4), 'things/a'), (e: unknown) => code(e) === 'bad-magic');
  assert.throws(() => decode(K, { magic: 'whittle.thing' }, 'things/a'), (e: unknown) => code(e) === 'bad-magic' && /no valid schema version/.test((e as Error).message));
  assert.equal(decode(K, undefined, 'things/a'), undefined);
});

test('every record kind refuses a record from a newer whittle', async () => {
  await clearAllStores();
  await set(['manifest', 'm1'], { magic: 'whittle.model', v: 99, id: 'm1' }, storeFor('models'));
  await set(['meta', 'd1'], { magic: 'whittle.dataset', v: 99, id: 'd1' }, storeFor('datasets'));
  await set(['job', 'j1'], { magic: 'whittle.job', v: 99, id: 'j1' }, storeFor('jobs'));
  await set(['meta', 'a1'], { magic: 'whittle.adapter', v: 99, id: 'a1' }, storeFor('adapters'));
  const newer = (what: RegExp) => (e: unknown) => code(e) === 'version-newer' && what.test((e as Error).message) && /update the app or delete it/.test((e as Error).message);
  await assert.rejects(getModel('m1'), newer(/models\/m1.*model manifest v99.*reads v1/));
  await assert.rejects(beginModel({ id: 'm1', source: { kind: 'local', name: 'x' }, files: [{ name: 'a', size: 1 }] }), newer(/models\/m1/));
  await assert.rejects(getDataset('d1'), newer(/datasets\/d1/));
  await assert.rejects(listDatasets(), newer(/datasets\/d1/));
  await assert.rejects(getJob('j1'), newer(/jobs\/j1/));
  await assert.rejects(getAdapterMeta('a1'), newer(/adapters\/a1/));
  // listings: loud by default, or skip-and-report so a UI can still show the rest
  await createDataset({ id: 'd2', name: 'ok', format: 'text', text: 'x' });
  const bad: StoreError[] = [];
  const ok = await listDatasets({ onUnreadable: (e) => bad.push(e) });
  assert.deepEqual(ok.map((d) => d.id), ['d2']);
  assert.equal(bad.length, 1);
  assert.equal(bad[0].record, 'datasets/d1');
  assert.equal(bad[0].code, 'version-newer');
  for (const list of [listModels, listJobs, listAdapters]) {
    await assert.rejects(list(), (e: unknown) => code(e) === 'version-newer');
    const seen: string[] = [];
    assert.deepEqual(await list({ onUnreadable: (e) => seen.push(e.record!) }), []);
    assert.equal(seen.length, 1);
  }
  await clearAllStores();
});

test('tx: a throwing body rolls back its writes', async () => {
  await assert.rejects(
    tx('datasets', 'readwrite', async (s) => {
      await req(s.put('x', ['scratch', 1]));
      throw new Error('boom');
    }),
    /boom/,
  );
  const v = await tx('datasets', 'readonly', (s) => req(s.get(['scratch', 1])));
  assert.equal(v, undefined);
});

test('normTensors: sizes checked, views copied to exact ArrayBuffers', () => {
  const big = new Float32Array(10).map((_, i) => i);
  const [t] = normTensors('x', [{ name: 'a', shape: [2, 3], dtype: 'f32', data: big.subarray(2, 8) }]);
  assert.equal(t.data.byteLength, 24);
  assert.deepEqual([...new Float32Array(t.data)], [2, 3, 4, 5, 6, 7]);
  assert.throws(() => normTensors('adapter z', [{ name: 'a', shape: [2, 2], dtype: 'f32', data: new Float32Array(3) }]), /adapter z: tensor 'a' \(f32 \[2, 2\]\) needs 16 bytes, got 12/);
  assert.throws(() => normTensors('x', [{ name: 'a', shape: [1], dtype: 'f32', data: new Float32Array(1) }, { name: 'a', shape: [1], dtype: 'f32', data: new Float32Array(1) }]), /duplicate tensor 'a'/);
  const whole = new Uint8Array(4);
  assert.equal(toArrayBuffer(whole), whole.buffer);
});

test('Sha256 matches node:crypto for many sizes and split points', () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100_003]) {
    const data = new Uint8Array(randomBytes(n));
    const want = createHash('sha256').update(data).digest('hex');
    assert.equal(sha256Hex(data), want, `size ${n}`);
    const h = new Sha256();
    for (let i = 0; i < n; ) {
      const step = 1 + ((i * 7919) % 97);
      h.update(data.subarray(i, i + step));
      i += step;
    }
    assert.equal(h.hex(), want, `size ${n} in pieces`);
  }
  assert.equal(sha256Hex(new TextEncoder().encode('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('storage helpers return null without navigator.storage (Node)', async () => {
  assert.equal(await storageInfo(), null);
  assert.equal(await requestPersistence(), null);
  await ensureSpace(1e12, 'a model'); // unknown quota: no-op
});

test('storage helpers use navigator.storage when present', async () => {
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  Object.defineProperty(globalThis, 'navigator', {
    configurable: true,
    value: { storage: { estimate: async () => ({ usage: 100, quota: 1000 }), persisted: async () => false, persist: async () => true } },
  });
  try {
    assert.deepEqual(await storageInfo(), { usage: 100, quota: 1000, available: 900, persisted: false });
    assert.equal(await requestPersistence(), true);
    await ensureSpace(900, 'x');
    await assert.rejects(ensureSpace(901, 'model m'), (e: unknown) => code(e) === 'quota' && /not enough browser storage for model m/.test((e as Error).message));
  } finally {
    if (saved) Object.defineProperty(globalThis, 'navigator', saved);
    else delete (globalThis as { navigator?: unknown }).navigator;
  }
});
