// Datasets: round trip of text and metadata, listing without the text, rename / exclusions /
// delete, clear errors.
import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { StoreError, tx, req } from '../../src/store/core.ts';
import { createDataset, getDataset, getDatasetMeta, listDatasets, renameDataset, setDatasetExcluded, updateDataset, deleteDataset } from '../../src/store/datasets.ts';

const code = (c: string, re?: RegExp) => (e: unknown) => e instanceof StoreError && e.code === c && (!re || re.test(e.message));
const JSONL = '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n{"text":"bad"\n{"messages":[]}\n';

test('create / get round trip, listing carries no text', async () => {
  const meta = await createDataset({ name: '  greetings ', format: 'chat', text: JSONL, report: { lines: 3, examples: 2, errors: 1, notes: ['line 2: invalid JSON'] }, excluded: [2, 2] });
  assert.match(meta.id, /^ds-/);
  assert.equal(meta.name, 'greetings');
  assert.equal(meta.lines, 3);
  assert.equal(meta.chars, JSONL.length);
  assert.deepEqual(meta.excluded, [2]);
  const ds = await getDataset(meta.id);
  assert.equal(ds!.text, JSONL);
  assert.deepEqual(ds!.report, { lines: 3, examples: 2, errors: 1, notes: ['line 2: invalid JSON'] });
  const list = await listDatasets();
  const row = list.find((d) => d.id === meta.id)!;
  assert.ok(!('text' in row));
  assert.equal((await getDatasetMeta(meta.id))!.name, 'greetings');
  // the text lives in its own record
  const raw = await tx('datasets', 'readonly', (s) => req(s.get(['text', meta.id])));
  assert.equal((raw as { magic: string }).magic, 'whittle.dataset-text');
  await assert.rejects(createDataset({ id: meta.id, name: 'x', format: 'chat', text: '' }), code('exists'));
});

test('rename, exclusions, report update, delete', async () => {
  const a = await createDataset({ id: 'ds-a', name: 'A', format: 'text', text: 'one\ntwo' });
  assert.equal(a.lines, 2);
  const r = await renameDataset('ds-a', 'Renamed');
  assert.equal(r.name, 'Renamed');
  assert.ok(r.updatedAt >= a.updatedAt);
  assert.deepEqual((await setDatasetExcluded('ds-a', [5, 1, 5])).excluded, [1, 5]);
  await assert.rejects(setDatasetExcluded('ds-a', [0]), code('invalid', /1-based/));
  await assert.rejects(renameDataset('ds-a', '  '), code('invalid', /non-empty/));
  await assert.rejects(renameDataset('ds-missing', 'x'), code('not-found', /datasets\/ds-missing/));
  const u = await updateDataset('ds-a', { report: { lines: 2, examples: 2 } });
  assert.deepEqual(u.report, { lines: 2, examples: 2 });
  assert.equal((await getDataset('ds-a'))!.text, 'one\ntwo');
  assert.equal(await deleteDataset('ds-a'), true);
  assert.equal(await getDataset('ds-a'), undefined);
  assert.equal(await tx('datasets', 'readonly', (s) => req(s.get(['text', 'ds-a']))), undefined);
  assert.equal(await deleteDataset('ds-a'), false);
  assert.ok(!(await listDatasets()).some((d) => d.id === 'ds-a'));
});

test('a 20 MB dataset round-trips', async () => {
  const line = JSON.stringify({ text: 'x'.repeat(200) }) + '\n';
  const text = line.repeat(100_000);
  const m = await createDataset({ id: 'ds-big', name: 'big', format: 'text', text });
  assert.equal(m.lines, 100_000);
  assert.equal((await getDataset('ds-big'))!.text.length, text.length);
  await deleteDataset('ds-big');
});
