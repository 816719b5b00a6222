// Chunked model storage: round trips over several chunks, a partial download that is not listed
// as complete and resumes (by chunk and by stream offset), sha256 verification, reads as bytes,
// ranges and streams, deletion of every chunk, and the ModelSource adapter.
import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from '../harness.ts';
import { tx, req, prefixRange, StoreError } from '../../src/store/core.ts';
import {
  beginModel, putChunk, completeModel, getModel, listModels, chunkStatus, missingRanges, resumeOffset,
  importModelFile, writeModelFileStream, readModelFile, readModelFileRange, streamModelFile, deleteModel,
  storedModelSource, DEFAULT_CHUNK_SIZE,
} from '../../src/store/models.ts';

const code = (c: string, re?: RegExp) => (e: unknown) => e instanceof StoreError && e.code === c && (!re || re.test(e.message));

function bytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    out[i] = x & 255;
  }
  return out;
}
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function* pieces(b: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let i = 0, k = 0;
  while (i < b.length) {
    const n = sizes[k++ % sizes.length];
    yield b.subarray(i, i + n);
    i += n;
  }
}

const CS = 1000; // small chunks keep the tests fast; one test uses the real 8 MiB default

test('chunked round trip: several chunks, concat, ranges, streams', async () => {
  const weights = bytes(5 * CS + 123, 1), config = new TextEncoder().encode('{"hidden_size": 64}');
  await beginModel({ id: 'rt', source: { kind: 'hub', repo: 'org/tiny', revision: 'main' }, chunkSize: CS, quant: { format: 'safetensors-f32' },
    files: [{ name: 'model.safetensors', size: weights.length, sha256: sha(weights) }, { name: 'config.json', size: config.length }] });
  await importModelFile('rt', 'model.safetensors', weights);
  await importModelFile('rt', 'config.json', config);
  const m = await completeModel('rt');
  assert.equal(m.complete, true);
  assert.equal(m.files[0].chunks, 6);
  assert.equal(m.name, 'org/tiny');
  assert.deepEqual(await readModelFile('rt', 'model.safetensors'), weights);
  assert.deepEqual(await readModelFile('rt', 'config.json'), config);
  assert.deepEqual(await readModelFileRange('rt', 'model.safetensors', 990, 2010), weights.subarray(990, 2010));
  assert.deepEqual(await readModelFileRange('rt', 'model.safetensors', 4999, 1e9), weights.subarray(4999));
  const parts: Uint8Array[] = [];
  for await (const c of streamModelFile('rt', 'model.safetensors')) parts.push(c);
  assert.deepEqual(parts.map((p) => p.length), [CS, CS, CS, CS, CS, 123]);
  assert.deepEqual(Buffer.concat(parts), Buffer.from(weights));
  const src = storedModelSource('rt');
  assert.deepEqual(await src.list(), ['model.safetensors', 'config.json']);
  assert.equal(await src.size!('model.safetensors'), weights.length);
  assert.deepEqual(await src.readRange!('model.safetensors', 10, 20), weights.subarray(10, 20));
  assert.deepEqual(await src.read('config.json'), config);
  await assert.rejects(src.read('nope.bin'), code('not-found', /model rt has no file 'nope.bin'/));
});

test('partial download: not complete, listed with stored bytes, resumes by chunk', async () => {
  const data = bytes(7 * CS + 1, 2);
  const init = { id: 'part', source: { kind: 'hub' as const, repo: 'org/part', revision: 'abc123' }, chunkSize: CS, files: [{ name: 'w.bin', size: data.length, sha256: sha(data) }] };
  await beginModel(init);
  for (const i of [0, 1, 2, 5]) await putChunk('part', 'w.bin', i, data.subarray(i * CS, (i + 1) * CS));

  const m = await getModel('part');
  assert.equal(m!.complete, false);
  const listed = (await listModels()).find((x) => x.id === 'part')!;
  assert.equal(listed.complete, false);
  assert.equal(listed.totalBytes, data.length);
  assert.equal(listed.storedBytes, 4 * CS);
  assert.ok(!(await listModels({ completeOnly: true })).some((x) => x.id === 'part'));

  const [st] = await chunkStatus('part');
  assert.deepEqual(st.present, [0, 1, 2, 5]);
  assert.deepEqual(st.missing, [3, 4, 6, 7]);
  assert.deepEqual(await missingRanges('part'), [
    { file: 'w.bin', start: 3 * CS, end: 5 * CS, firstChunk: 3, endChunk: 5 },
    { file: 'w.bin', start: 6 * CS, end: 7 * CS + 1, firstChunk: 6, endChunk: 8 },
  ]);
  assert.equal(await resumeOffset('part', 'w.bin'), 3 * CS);

  await assert.rejects(completeModel('part'), code('incomplete', /w\.bin: 4\/8 chunks missing/));
  await assert.rejects(readModelFile('part', 'w.bin'), code('incomplete', /not completely downloaded/));
  await assert.rejects(readModelFile('part', 'w.bin', { allowIncomplete: true }), code('incomplete', /chunk 4\/8 is missing/));
  assert.deepEqual(await readModelFileRange('part', 'w.bin', 0, 3 * CS, { allowIncomplete: true }), data.subarray(0, 3 * CS));
  await assert.rejects(storedModelSource('part').list(), code('incomplete'));

  // "reload": beginModel with the same layout keeps the partial download
  const again = await beginModel(init);
  assert.equal(again.createdAt, m!.createdAt);
  assert.equal((await chunkStatus('part'))[0].present.length, 4);

  // resume: fetch the missing ranges only
  let written = 0;
  for (const r of await missingRanges('part')) {
    for (let i = r.firstChunk; i < r.endChunk; i++) {
      await putChunk('part', 'w.bin', i, data.subarray(i * CS, Math.min((i + 1) * CS, data.length)));
      written++;
    }
  }
  assert.equal(written, 4);
  assert.deepEqual(await missingRanges('part'), []);
  assert.equal(await resumeOffset('part', 'w.bin'), data.length);
  const done = await completeModel('part');
  assert.equal(done.complete, true);
  assert.ok(done.completedAt! >= done.createdAt);
  assert.deepEqual(await readModelFile('part', 'w.bin'), data);
  assert.equal((await listModels({ completeOnly: true })).find((x) => x.id === 'part')!.storedBytes, data.length);
  await assert.rejects(putChunk('part', 'w.bin', 0, data.subarray(0, CS)), code('invalid', /is complete/));
  await assert.rejects(beginModel(init), code('exists', /already stored/));
});

test('interrupted stream resumes from resumeOffset with a new stream', async () => {
  const data = bytes(6 * CS + 500, 3);
  await beginModel({ id: 'stream', source: { kind: 'hub', repo: 'o/s', revision: 'r' }, chunkSize: CS, files: [{ name: 'w.bin', size: data.length }] });
  // the connection drops after 3.4 chunks: 3 whole chunks are kept, the partial 4th is not
  async function* dropping(): AsyncGenerator<Uint8Array> {
    yield* pieces(data.subarray(0, 3400), [333, 1, 777]);
    throw new Error('network error');
  }
  await assert.rejects(writeModelFileStream('stream', 'w.bin', dropping()), /network error/);
  assert.deepEqual((await chunkStatus('stream'))[0].present, [0, 1, 2]);
  const off = await resumeOffset('stream', 'w.bin');
  assert.equal(off, 3 * CS);
  // a stream that ends early (no error) says so
  await assert.rejects(writeModelFileStream('stream', 'w.bin', pieces(data.subarray(off, off + 1500), [700]), { offset: off }), code('incomplete', /ended at byte 4500 of 6500; 4000 bytes are stored/));
  const off2 = await resumeOffset('stream', 'w.bin');
  assert.equal(off2, 4 * CS);
  await assert.rejects(writeModelFileStream('stream', 'w.bin', pieces(data, [10]), { offset: 123 }), code('invalid', /chunk boundary/));
  // resume through a ReadableStream, like a fetch() body
  const rs = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = off2; i < data.length; i += 611) c.enqueue(data.slice(i, Math.min(i + 611, data.length)));
      c.close();
    },
  });
  const progress: number[] = [];
  await writeModelFileStream('stream', 'w.bin', rs, { offset: off2, onProgress: (n) => progress.push(n) });
  assert.deepEqual(progress, [5 * CS, 6 * CS, data.length]);
  await completeModel('stream');
  assert.deepEqual(await readModelFile('stream', 'w.bin'), data);
  // too long a stream is refused
  await beginModel({ id: 'long', source: { kind: 'local', name: 'x' }, chunkSize: CS, files: [{ name: 'a', size: 10 }] });
  await assert.rejects(writeModelFileStream('long', 'a', pieces(bytes(11, 1), [11])), code('invalid', /runs past/));
});

test('importModelFile from a Blob resumes, skipping stored chunks', async () => {
  const data = bytes(4 * CS + 7, 4);
  const blob = new Blob([data]);
  await beginModel({ id: 'blob', source: { kind: 'local', name: 'my-model' }, chunkSize: CS, files: [{ name: 'm.gguf', size: data.length }] });
  await putChunk('blob', 'm.gguf', 1, data.subarray(CS, 2 * CS));
  const seen: number[] = [];
  await importModelFile('blob', 'm.gguf', blob, { onProgress: (n) => seen.push(n) });
  assert.deepEqual(seen, [2 * CS, 3 * CS, 4 * CS, 4 * CS + 7]);
  await completeModel('blob');
  assert.deepEqual(await readModelFile('blob', 'm.gguf'), data);
  assert.equal((await getModel('blob'))!.name, 'my-model');
  await beginModel({ id: 'blob2', source: { kind: 'local', name: 'x' }, chunkSize: CS, files: [{ name: 'a', size: 5 }] });
  await assert.rejects(importModelFile('blob2', 'a', new Uint8Array(6)), code('invalid', /manifest says 5 bytes, the data has 6/));
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(importModelFile('blob2', 'a', new Uint8Array(5), { signal: ac.signal }));
});

test('chunk validation and layout changes', async () => {
  await beginModel({ id: 'val', source: { kind: 'local', name: 'v' }, chunkSize: CS, files: [{ name: 'a', size: 2500 }] });
  await assert.rejects(putChunk('val', 'a', 2, new Uint8Array(CS)), code('invalid', /chunk 2 must be 500 bytes, got 1000/));
  await assert.rejects(putChunk('val', 'a', 3, new Uint8Array(1)), code('invalid', /out of range \(0\.\.2\)/));
  await assert.rejects(putChunk('val', 'b', 0, new Uint8Array(1)), code('not-found', /no file 'b'/));
  await assert.rejects(putChunk('nope', 'a', 0, new Uint8Array(1)), code('not-found'));
  await putChunk('val', 'a', 0, new Uint8Array(CS));
  const other = { id: 'val', source: { kind: 'local' as const, name: 'v' }, chunkSize: CS, files: [{ name: 'a', size: 9999 }] };
  await assert.rejects(beginModel(other), code('exists', /different files or chunk size/));
  await beginModel(other, { replace: true });
  assert.deepEqual((await chunkStatus('val'))[0].present, []);
  await assert.rejects(beginModel({ id: 'dup', source: { kind: 'local', name: 'v' }, files: [{ name: 'a', size: 1 }, { name: 'a', size: 1 }] }), code('invalid', /listed twice/));
  await assert.rejects(beginModel({ id: 'bad', source: { kind: 'local', name: 'v' }, chunkSize: 0, files: [{ name: 'a', size: 1 }] }), code('invalid', /chunkSize/));
});

test('sha256 mismatch: completion refused, the bad file\'s chunks deleted', async () => {
  const data = bytes(2 * CS + 10, 5);
  const wrong = sha(bytes(5, 9));
  await beginModel({ id: 'bad-sha', source: { kind: 'hub', repo: 'o/b', revision: 'r' }, chunkSize: CS, files: [{ name: 'w', size: data.length, sha256: wrong }] });
  await importModelFile('bad-sha', 'w', data);
  await assert.rejects(completeModel('bad-sha'), code('checksum', /sha256 is [0-9a-f]{64}, expected [0-9a-f]{64}; its chunks were deleted/));
  assert.equal((await getModel('bad-sha'))!.complete, false);
  assert.equal((await chunkStatus('bad-sha'))[0].missing.length, 3);
  // verify=false skips hashing
  await importModelFile('bad-sha', 'w', data);
  assert.equal((await completeModel('bad-sha', { verify: false })).complete, true);
});

test('delete removes the manifest and every chunk', async () => {
  const data = bytes(3 * CS, 6);
  await beginModel({ id: 'del', source: { kind: 'local', name: 'd' }, chunkSize: CS, files: [{ name: 'a', size: data.length }, { name: 'b', size: 10 }] });
  await importModelFile('del', 'a', data);
  await importModelFile('del', 'b', data.subarray(0, 10));
  await completeModel('del');
  // a model whose id is a prefix of another must not be touched
  await beginModel({ id: 'del-2', source: { kind: 'local', name: 'd' }, chunkSize: CS, files: [{ name: 'a', size: 10 }] });
  await putChunk('del-2', 'a', 0, new Uint8Array(10));
  assert.equal(await deleteModel('del'), true);
  assert.equal(await getModel('del'), undefined);
  const left = await tx('models', 'readonly', (s) => req(s.getAllKeys(prefixRange(['chunk', 'del']))));
  assert.deepEqual(left, []);
  assert.equal((await chunkStatus('del-2'))[0].present.length, 1);
  assert.equal(await deleteModel('del'), false);
  assert.ok(!(await listModels()).some((m) => m.id === 'del'));
});

test('default 8 MiB chunks: a 20 MB file round-trips in 3 chunks', async () => {
  const data = bytes(20_000_000, 7);
  await beginModel({ id: 'big', source: { kind: 'hub', repo: 'o/big', revision: 'main' }, files: [{ name: 'model.safetensors', size: data.length, sha256: sha(data) }] });
  await writeModelFileStream('big', 'model.safetensors', pieces(data, [1 << 20, 65536 + 3]));
  const m = await completeModel('big');
  assert.equal(m.chunkSize, DEFAULT_CHUNK_SIZE);
  assert.equal(m.files[0].chunks, 3);
  const back = await readModelFile('big', 'model.safetensors');
  assert.equal(back.length, data.length);
  assert.ok(Buffer.from(back).equals(Buffer.from(data)));
  assert.equal((await listModels()).find((x) => x.id === 'big')!.storedBytes, data.length);
  await deleteModel('big');
});
