// Hub downloads (src/model/hub.ts) against a local HTTP server (node:http on 127.0.0.1) that
// serves ../shared/models in the Hub's `/<repo>/resolve/<revision>/<file>` layout with Range
// support, LFS-style redirects (x-linked-size / x-linked-etag = sha256), and scripted faults: a
// 404, a connection cut after N bytes, a server that ignores Range, a wrong checksum, an
// unreachable server, a full quota. Stored models are loaded with loadModel(storedModelSource(id))
// and must give the same logits as the files on disk. IndexedDB: fake-indexeddb.
import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from '../harness.ts';
import { HubError, type HubProgress, downloadModel, hubFileUrl, hubModelId, importLocalModel, loadHubModel } from '../../src/model/hub.ts';
import { loadModel } from '../../src/model/load.ts';
import { nodeSource } from '../../src/model/source-node.ts';
import { parseSafetensors, writeSafetensors } from '../../src/model/safetensors.ts';
import { ref_logits } from '../../src/ref/model.ts';
import { StoreError, getModel, listModels, resumeOffset, storedModelSource } from '../../src/store/index.ts';
import type { LlamaWeights } from '../../src/model/config.ts';
import { S260K_GGUF, TS656K, folderBytes, ref656k, rejects } from './fixtures.ts';
import { readFileSync } from 'node:fs';

// ---------------------------------------------------------------------------------------------
// the server

interface Repo {
  files: Map<string, Uint8Array>;
  /** files answered with an LFS-style 302 to /cdn/... carrying x-linked-size / x-linked-etag */
  lfs?: Set<string>;
  /** sha256 to advertise instead of the real one (checksum test) */
  badSha?: Map<string, string>;
  /** file → bytes to send before destroying the socket, for the next GET only */
  cut?: Map<string, number>;
  /** answer every GET with 200 and the whole file */
  noRange?: boolean;
  /** redirects carry no x-linked-* headers, and the CDN refuses HEAD (403: URL signed for GET) */
  signedCdn?: boolean;
}

const repos = new Map<string, Repo>();
const log: { method: string; path: string; range: string | null }[] = [];
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function serveFile(req: IncomingMessage, res: ServerResponse, repo: Repo, file: string): void {
  const data = repo.files.get(file)!;
  const size = data.length;
  let start = 0, end = size; // [start, end)
  let status = 200;
  const range = req.headers.range;
  if (range && !repo.noRange) {
    const m = /^bytes=(\d+)-(\d*)$/.exec(range);
    if (!m || Number(m[1]) >= size) {
      res.writeHead(416, { 'Content-Range': `bytes */${size}` });
      res.end();
      return;
    }
    start = Number(m[1]);
    end = m[2] ? Math.min(size, Number(m[2]) + 1) : size;
    status = 206;
  }
  const headers: Record<string, string | number> = { 'Content-Length': end - start, 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes' };
  if (status === 206) headers['Content-Range'] = `bytes ${start}-${end - 1}/${size}`;
  res.writeHead(status, headers);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const body = data.subarray(start, end);
  const cut = repo.cut?.get(file);
  if (cut !== undefined && req.method === 'GET') {
    repo.cut!.delete(file);
    res.write(body.subarray(0, cut), () => setTimeout(() => res.destroy(), 20));
    return;
  }
  res.end(body);
}

const server = createServer((req, res) => {
  const u = new URL(req.url!, 'http://x');
  const path = decodeURIComponent(u.pathname);
  log.push({ method: req.method!, path, range: req.headers.range ?? null });
  let m = /^\/cdn\/([^/]+\/[^/]+)\/(.+)$/.exec(path);
  if (m) {
    const repo = repos.get(m[1]);
    if (repo?.signedCdn && req.method === 'HEAD') {
      res.writeHead(403).end();
      return;
    }
    if (repo?.files.has(m[2])) return serveFile(req, res, repo, m[2]);
    res.writeHead(404).end();
    return;
  }
  m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
  const repo = m && repos.get(m[1]);
  if (!m || !repo) {
    // like the Hub: an unknown repo is a 401 (it might be private)
    res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"error":"Repository not found"}');
    return;
  }
  if (m[2] !== 'main') {
    res.writeHead(404).end('{"error":"Revision not found"}');
    return;
  }
  const file = m[3];
  if (!repo.files.has(file)) {
    res.writeHead(404, { 'X-Error-Code': 'EntryNotFound' }).end('{"error":"Entry not found"}');
    return;
  }
  if (repo.lfs?.has(file)) {
    const data = repo.files.get(file)!;
    res.writeHead(302, repo.signedCdn ? { Location: `/cdn/${m[1]}/${file}` } : {
      Location: `/cdn/${m[1]}/${file}`,
      'X-Linked-Size': data.length,
      'X-Linked-Etag': `"${repo.badSha?.get(file) ?? sha(data)}"`,
    }).end();
    return;
  }
  serveFile(req, res, repo, file);
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const BASE = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
process.on('exit', () => server.close());
// the harness calls process.exit when done; keep-alive sockets must not hold the process earlier
server.unref();

// ---------------------------------------------------------------------------------------------
// fixtures

const hfFiles = () => {
  const all = folderBytes(TS656K);
  all.delete('reference.json');
  all.delete('SOURCE.md');
  return all;
};

function addRepo(name: string, r: Partial<Repo> = {}): Repo {
  const repo: Repo = { files: hfFiles(), lfs: new Set(['model.safetensors']), ...r };
  repos.set(name, repo);
  return repo;
}

/** model.safetensors split into two shards + an index (same tensor bytes, same metadata). */
function shardFiles(): Map<string, Uint8Array> {
  const bytes = new Uint8Array(readFileSync(TS656K + '/model.safetensors'));
  const { header } = parseSafetensors('model.safetensors', bytes);
  const names = [...header.tensors.keys()];
  const half = Math.ceil(names.length / 2);
  const files = hfFiles();
  files.delete('model.safetensors');
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (const [i, group] of [names.slice(0, half), names.slice(half)].entries()) {
    const shard = `model-0000${i + 1}-of-00002.safetensors`;
    const tensors = group.map((n) => {
      const t = header.tensors.get(n)!;
      weightMap[n] = shard;
      total += t.end - t.begin;
      return { name: n, shape: t.shape, dtype: t.dtype, data: bytes.subarray(t.begin, t.end) };
    });
    files.set(shard, writeSafetensors(tensors, header.metadata));
  }
  files.set('model.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap })));
  return files;
}

const diskModel = loadModel(await nodeSource(TS656K));
const IDS = ref656k().prompt_ids_no_prefix; // [BOS, Once, upon, a, time]

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function sameWeights(a: LlamaWeights, b: LlamaWeights): void {
  assert.equal(maxDiff(a.embed, b.embed), 0);
  assert.equal(maxDiff(a.norm, b.norm), 0);
  a.layers.forEach((l, i) => {
    for (const k of ['wq', 'wk', 'wv', 'wo', 'wGate', 'wUp', 'wDown', 'attnNorm', 'ffnNorm'] as const) assert.equal(maxDiff(l[k], b.layers[i][k]), 0, `layer ${i} ${k}`);
  });
}

/** loadModel(storedModelSource(id)) gives the disk model's config, weights and logits (a few positions). */
async function sameAsDisk(id: string): Promise<void> {
  const disk = await diskModel;
  const stored = await loadModel(storedModelSource(id));
  assert.deepEqual(stored.config, disk.config);
  sameWeights(stored.weights, disk.weights);
  const a = ref_logits(stored.config, stored.weights, IDS, 'f32');
  const b = ref_logits(disk.config, disk.weights, IDS, 'f32');
  assert.equal(maxDiff(a, b), 0);
  // and both agree with the independent reference (positions 0, 2, 4 of the prompt)
  const ref = ref656k().prompt_no_prefix_logits;
  const V = disk.config.vocab;
  for (const t of [0, 2, 4]) {
    let m = 0;
    for (let v = 0; v < V; v++) m = Math.max(m, Math.abs(a[t * V + v] - ref[t][v]));
    assert.ok(m < 2e-3, `position ${t}: max |Δ| ${m}`);
  }
  assert.deepEqual(stored.tokenizer.encode('Once upon a time'), disk.tokenizer.encode('Once upon a time'));
}

const CHUNK = 64 * 1024;
const throwingFetch = (() => {
  throw new Error('offline: fetch must not be called');
}) as unknown as typeof fetch;

// ---------------------------------------------------------------------------------------------

test('hub: URL layout and ids', () => {
  assert.equal(hubFileUrl('HuggingFaceTB/SmolLM2-135M-Instruct', 'main', 'model.safetensors'),
    'https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/resolve/main/model.safetensors');
  assert.equal(hubFileUrl('a/b', 'refs/pr/1', 'sub dir/x.json', 'http://h:1/'), 'http://h:1/a/b/resolve/refs%2Fpr%2F1/sub%20dir/x.json');
  assert.equal(hubModelId('a/b'), 'hub:a/b@main');
  assert.equal(hubModelId('a/b', 'v1', 'm.gguf'), 'hub:a/b@v1/m.gguf');
  assert.throws(() => downloadModel({ repo: '../etc' }), /not a Hub repo id/);
});

test('hub: tinystories-656k downloads in chunks with progress, verifies sha256, loads with the disk logits', async () => {
  addRepo('test/ts656k');
  log.length = 0;
  const events: HubProgress[] = [];
  const r = await downloadModel({ repo: 'test/ts656k', baseUrl: BASE, chunkSize: CHUNK, onProgress: (p) => events.push(p), progressIntervalMs: 0 });
  assert.equal(r.id, 'hub:test/ts656k@main');
  assert.equal(r.cached, false);
  assert.equal(r.resumedBytes, 0);
  const m = r.manifest;
  assert.equal(m.complete, true);
  assert.deepEqual(m.source, { kind: 'hub', repo: 'test/ts656k', revision: 'main' });
  assert.deepEqual(m.files.map((f) => f.name).sort(),
    ['config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
  const w = m.files.find((f) => f.name === 'model.safetensors')!;
  assert.equal(w.size, 2626168);
  assert.equal(w.sha256, sha(readFileSync(TS656K + '/model.safetensors')));
  assert.equal(w.chunks, Math.ceil(2626168 / CHUNK));
  const total = m.files.reduce((a, f) => a + f.size, 0);
  assert.equal(r.fetchedBytes, total);
  // progress: resolving first, done last at 100 %, bytes never go back
  assert.equal(events[0].phase, 'resolving');
  const last = events[events.length - 1];
  assert.equal(last.phase, 'done');
  assert.equal(last.percent, 100);
  assert.equal(last.done, total);
  assert.equal(last.total, total);
  const dl = events.filter((e) => e.phase === 'downloading');
  assert.ok(dl.length > 5, `${dl.length} downloading events`);
  for (let i = 1; i < dl.length; i++) assert.ok(dl[i].done >= dl[i - 1].done);
  assert.ok(dl.some((e) => e.file === 'model.safetensors' && e.fileDone > 0 && e.fileDone < e.fileTotal));
  assert.ok(events.some((e) => e.phase === 'verifying'));
  // the weights went through the redirect, whole (no Range on a fresh download)
  assert.ok(log.some((l) => l.method === 'GET' && l.path === '/cdn/test/ts656k/model.safetensors' && l.range === null));
  await sameAsDisk(r.id);
});

test('hub: a second load is offline (fetch throws), from the store', async () => {
  const r = await downloadModel({ repo: 'test/ts656k', baseUrl: BASE, fetch: throwingFetch });
  assert.equal(r.cached, true);
  assert.equal(r.fetchedBytes, 0);
  const m = await loadHubModel({ repo: 'test/ts656k', baseUrl: 'http://127.0.0.1:1', fetch: throwingFetch });
  assert.equal(m.config.hidden, 128);
  assert.equal(m.download.cached, true);
});

test('hub: sharded safetensors (404 on model.safetensors → index + 2 shards) load with the disk logits', async () => {
  addRepo('test/sharded', { files: shardFiles(), lfs: new Set(['model-00001-of-00002.safetensors']) });
  log.length = 0;
  const r = await downloadModel({ repo: 'test/sharded', baseUrl: BASE, chunkSize: CHUNK });
  assert.deepEqual(r.manifest.files.map((f) => f.name).filter((f) => f.includes('safetensors')).sort(),
    ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
  assert.ok(log.some((l) => l.path === '/test/sharded/resolve/main/model.safetensors'), 'model.safetensors was tried first');
  assert.ok(r.manifest.files.find((f) => f.name === 'model-00001-of-00002.safetensors')!.sha256);
  assert.equal(r.manifest.files.find((f) => f.name === 'model-00002-of-00002.safetensors')!.sha256, undefined);
  await sameAsDisk(r.id);
});

test('hub: a 404 on a required file names it and leaves nothing complete', async () => {
  const repo = addRepo('test/no-tokenizer');
  repo.files.delete('tokenizer.json');
  const e = await rejects(downloadModel({ repo: 'test/no-tokenizer', baseUrl: BASE }), /tokenizer\.json/, /not found \(404/, /test\/no-tokenizer@main/);
  assert.ok(e instanceof HubError && e.code === 'not-found' && e.file === 'tokenizer.json' && e.status === 404);
  assert.ok(!(await getModel('hub:test/no-tokenizer@main'))?.complete);
  assert.ok(!(await listModels({ completeOnly: true })).some((m) => m.id === 'hub:test/no-tokenizer@main'));

  const nw = addRepo('test/no-weights');
  nw.files.delete('model.safetensors');
  await rejects(downloadModel({ repo: 'test/no-weights', baseUrl: BASE }), /model\.safetensors/, /model\.safetensors\.index\.json/);

  const sh = addRepo('test/missing-shard', { files: shardFiles() });
  sh.files.delete('model-00002-of-00002.safetensors');
  await rejects(downloadModel({ repo: 'test/missing-shard', baseUrl: BASE }), /shard 'model-00002-of-00002\.safetensors'/, /404/);
  // optional files may be missing
  const opt = addRepo('test/no-optional');
  opt.files.delete('generation_config.json');
  opt.files.delete('special_tokens_map.json');
  const r = await downloadModel({ repo: 'test/no-optional', baseUrl: BASE });
  assert.ok(!r.manifest.files.some((f) => f.name === 'generation_config.json'));
});

test('hub: unknown repo (401), unknown revision, unreachable server: clear errors', async () => {
  const e = await rejects(downloadModel({ repo: 'nobody/nothing', baseUrl: BASE }), /config\.json/, /401/, /private or gated/);
  assert.ok(e instanceof HubError && e.code === 'auth');
  await rejects(downloadModel({ repo: 'test/ts656k', revision: 'v9', baseUrl: BASE }), /test\/ts656k@v9/, /config\.json/, /404/);
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  const n = await rejects(downloadModel({ repo: 'test/ts656k', revision: 'x', baseUrl: `http://127.0.0.1:${port}` }),
    new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}/test/ts656k/resolve/x/config\\.json`), /ECONNREFUSED/);
  assert.ok(n instanceof HubError && n.code === 'network');
});

test('hub: a connection cut mid-file → error naming the file, incomplete manifest; a retry resumes with Range', async () => {
  addRepo('test/cut', { cut: new Map([['model.safetensors', 1_000_000]]) });
  const id = 'hub:test/cut@main';
  const e = await rejects(downloadModel({ repo: 'test/cut', baseUrl: BASE, chunkSize: CHUNK }), /test\/cut@main\/model\.safetensors/, /cut at byte/, /run the download again to resume/);
  assert.ok(e instanceof HubError && e.code === 'interrupted' && e.file === 'model.safetensors');
  const m = await getModel(id);
  assert.ok(m && !m.complete);
  const kept = await resumeOffset(id, 'model.safetensors');
  assert.equal(kept, Math.floor(1_000_000 / CHUNK) * CHUNK);
  await rejects(loadModel(storedModelSource(id)), /not completely downloaded/);
  assert.equal(await resumeOffset(id, 'config.json'), m.files.find((f) => f.name === 'config.json')!.size);

  log.length = 0;
  const events: HubProgress[] = [];
  // no chunkSize: the partial download's is kept
  const r = await downloadModel({ repo: 'test/cut', baseUrl: BASE, onProgress: (p) => events.push(p), progressIntervalMs: 0 });
  assert.equal(r.manifest.complete, true);
  assert.equal(r.manifest.chunkSize, CHUNK);
  const total = r.manifest.files.reduce((a, f) => a + f.size, 0);
  assert.ok(r.resumedBytes >= kept, `resumed ${r.resumedBytes} ≥ ${kept}`);
  // one ranged GET of the rest (the resolve URL, then its redirect to the CDN, both with the Range)
  const gets = log.filter((l) => l.method === 'GET' && l.path.endsWith('/model.safetensors'));
  assert.deepEqual(gets.map((l) => [l.path, l.range]), [
    ['/test/cut/resolve/main/model.safetensors', `bytes=${kept}-`],
    ['/cdn/test/cut/model.safetensors', `bytes=${kept}-`],
  ]);
  const firstDl = events.find((p) => p.phase === 'downloading')!;
  assert.ok(firstDl.done >= kept && firstDl.percent > 30, `progress resumes at ${firstDl.percent.toFixed(1)} %`);
  assert.equal(events[events.length - 1].done, total);
  await sameAsDisk(id);
});

test('hub: a server that ignores Range (200) still resumes correctly', async () => {
  addRepo('test/norange', { noRange: true, cut: new Map([['model.safetensors', 300_000]]), lfs: new Set() });
  await rejects(downloadModel({ repo: 'test/norange', baseUrl: BASE, chunkSize: CHUNK }), /cut at byte/);
  const r = await downloadModel({ repo: 'test/norange', baseUrl: BASE, chunkSize: CHUNK });
  assert.ok(r.resumedBytes > 0);
  await sameAsDisk(r.id);
});

test('hub: redirects without x-linked-size to a CDN that refuses HEAD: the size comes from a ranged GET', async () => {
  addRepo('test/signed', { signedCdn: true });
  log.length = 0;
  const r = await downloadModel({ repo: 'test/signed', baseUrl: BASE, chunkSize: CHUNK });
  assert.equal(r.manifest.files.find((f) => f.name === 'model.safetensors')!.size, 2626168);
  assert.equal(r.manifest.files.find((f) => f.name === 'model.safetensors')!.sha256, undefined);
  assert.ok(log.some((l) => l.method === 'GET' && l.path === '/cdn/test/signed/model.safetensors' && l.range === 'bytes=0-0'));
  await sameAsDisk(r.id);
});

test('hub: a sha256 mismatch deletes the file, names it; fixed upstream, a retry completes', async () => {
  const repo = addRepo('test/badsha', { badSha: new Map([['model.safetensors', 'ab'.repeat(32)]]) });
  const e = await rejects(downloadModel({ repo: 'test/badsha', baseUrl: BASE, chunkSize: CHUNK }), /model\.safetensors/, /sha256/);
  assert.ok(e instanceof HubError && e.code === 'checksum');
  assert.ok(!(await getModel('hub:test/badsha@main'))!.complete);
  repo.badSha!.clear();
  const r = await downloadModel({ repo: 'test/badsha', baseUrl: BASE, chunkSize: CHUNK });
  assert.equal(r.manifest.complete, true);
  await sameAsDisk(r.id);
});

test('hub: a single .gguf file (stories260K)', async () => {
  repos.set('test/s260k', { files: new Map([['stories260K.gguf', new Uint8Array(readFileSync(S260K_GGUF))]]) });
  const r = await downloadModel({ repo: 'test/s260k', file: 'stories260K.gguf', baseUrl: BASE, chunkSize: CHUNK });
  assert.deepEqual(r.manifest.files.map((f) => f.name), ['stories260K.gguf']);
  assert.equal(r.id, 'hub:test/s260k@main/stories260K.gguf');
  const a = await loadModel(storedModelSource(r.id));
  const b = await loadModel(await nodeSource(S260K_GGUF));
  assert.deepEqual(a.config, b.config);
  sameWeights(a.weights, b.weights);
  await rejects(downloadModel({ repo: 'test/s260k', file: 'other.gguf', baseUrl: BASE }), /other\.gguf/, /404/);
});

test('hub: not enough storage → quota error before any weight is fetched, no manifest', async () => {
  addRepo('test/quota');
  const nav = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  Object.defineProperty(globalThis, 'navigator', { value: { storage: { estimate: async () => ({ usage: 900_000, quota: 1_000_000 }) } }, configurable: true, writable: true });
  log.length = 0;
  try {
    const e = await rejects(downloadModel({ repo: 'test/quota', baseUrl: BASE }), /not enough browser storage/, /test\/quota@main/);
    assert.ok(e instanceof StoreError && e.code === 'quota');
  } finally {
    if (nav) Object.defineProperty(globalThis, 'navigator', nav);
    else delete (globalThis as { navigator?: unknown }).navigator;
  }
  assert.equal(await getModel('hub:test/quota@main'), undefined);
  assert.ok(!log.some((l) => l.method === 'GET' && l.path.includes('model.safetensors')));
});

test('import: local files are stored, complete, and load like the folder', async () => {
  const files = hfFiles();
  const m = await importLocalModel('ts656k-files', new Map([...files].map(([k, v]) => [k, new Blob([v as Uint8Array<ArrayBuffer>])])), { chunkSize: CHUNK });
  assert.equal(m.complete, true);
  assert.deepEqual(m.source, { kind: 'local', name: 'ts656k-files' });
  await sameAsDisk('local:ts656k-files');
});
