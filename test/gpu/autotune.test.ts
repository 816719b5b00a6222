// src/gpu/autotune.ts: chooseVariant runs a trial once and then answers from the cache (checked by
// run counters and autotuneStats, never by timings); cache entries are keyed per adapter, kernel and
// shape class; a candidate that errors (validation error, or throws while recording) is excluded;
// a changed candidate set tunes again; the file cache (JSON, WHITTLE_AUTOTUNE_FILE) and the
// IndexedDB cache (fake-indexeddb here) round-trip.
import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../harness.ts';
import { testGpu } from '../util.ts';
import {
  adapterKey, autotuneStats, chooseVariant, defaultTuneFile, fileTuneCache, idbTuneCache, MemoryTuneCache,
  tuneCacheKey, type TuneCandidate, type TuneRecord,
} from '../../src/gpu/autotune.ts';
import type { Gpu } from '../../src/gpu/device.ts';

// A tiny kernel with a loop count: candidates of different cost (which one wins is not asserted).
const CODE = `
@group(0) @binding(1) var<storage, read_write> buf: array<f32>;
override ITERS: u32 = 1u;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x >= arrayLength(&buf)) { return; }
  var v = buf[g.x];
  for (var i = 0u; i < ITERS; i++) { v = v * 0.999 + 1.0; }
  buf[g.x] = v;
}`;

interface Counted extends TuneCandidate { count: number }

function candidates(gpu: Gpu, buf: GPUBuffer, iters: number[]): Counted[] {
  return iters.map((n) => {
    const c: Counted = {
      name: `iters${n}`,
      count: 0,
      run: () => {
        c.count++;
        gpu.dispatch(gpu.pipeline('autotune_test', CODE, 'main', { ITERS: n }), null, [buf], [16]);
      },
    };
    return c;
  });
}

const counts = (cs: Counted[]) => cs.map((c) => c.count);

test('chooseVariant: a trial picks a candidate and caches it; the second call does no trial', async () => {
  const gpu = await testGpu();
  const buf = gpu.f32(1024, 'at.buf');
  const cache = new MemoryTuneCache();
  const cs = candidates(gpu, buf, [1, 64, 4]);
  const before = { ...autotuneStats };
  const lines: string[] = [];
  const pick = await chooseVariant(gpu, 'test_kernel', 'n1024', cs, { cache, reps: 3, log: (l) => lines.push(l) });
  assert.ok(cs.some((c) => c.name === pick), `picked a candidate (${pick})`);
  assert.ok(cs.every((c) => c.count >= 2), `each candidate warmed up and timed at least once: ${counts(cs)}`);
  assert.equal(autotuneStats.trials, before.trials + 1);
  assert.equal(cache.map.size, 1);
  const rec = cache.map.get(tuneCacheKey(gpu.info, 'test_kernel', 'n1024'))!;
  assert.ok(rec, `the entry is keyed by adapter | kernel | shape class: ${[...cache.map.keys()]}`);
  assert.equal(rec.variant, pick);
  assert.deepEqual(rec.candidates, ['iters1', 'iters64', 'iters4']);
  assert.deepEqual(Object.keys(rec.ms).sort(), ['iters1', 'iters4', 'iters64']);
  // a window of several runs (kernels shorter than windowMs) is timed by the wall clock
  assert.equal(rec.method, gpu.info.features.timestamp && !rec.runsPerWindow ? 'timestamp' : 'wall');
  assert.match(lines.join('\n'), /autotune test_kernel n1024: iters/);

  const seen = counts(cs);
  const again = await chooseVariant(gpu, 'test_kernel', 'n1024', cs, { cache });
  assert.equal(again, pick);
  assert.deepEqual(counts(cs), seen, 'no candidate ran: answered from the cache');
  assert.equal(autotuneStats.trials, before.trials + 1);
  assert.equal(autotuneStats.hits, before.hits + 1);

  // another shape class or kernel is another entry (a trial each)
  await chooseVariant(gpu, 'test_kernel', 'n4096', cs, { cache, reps: 1 });
  await chooseVariant(gpu, 'other_kernel', 'n1024', cs, { cache, reps: 1 });
  assert.equal(cache.map.size, 3);
  assert.equal(autotuneStats.trials, before.trials + 3);
  // force: a new trial replaces the entry
  const n0 = counts(cs)[0];
  await chooseVariant(gpu, 'test_kernel', 'n1024', cs, { cache, reps: 1, force: true });
  assert.ok(cs[0].count > n0, 'force runs the trial again');
  // wall-time trials work as well
  const w = await chooseVariant(gpu, 'test_kernel', 'wall', cs, { cache, reps: 2, timing: 'wall' });
  assert.equal(cache.map.get(tuneCacheKey(gpu.info, 'test_kernel', 'wall'))!.method, 'wall');
  assert.ok(cs.some((c) => c.name === w));
  // one run per window (windowMs 0): timestamps where the adapter has them
  await chooseVariant(gpu, 'test_kernel', 'one', cs, { cache, reps: 1, windowMs: 0 });
  const one = cache.map.get(tuneCacheKey(gpu.info, 'test_kernel', 'one'))!;
  assert.equal(one.runsPerWindow, undefined);
  assert.equal(one.method, gpu.info.features.timestamp ? 'timestamp' : 'wall');
  // a long window: these microsecond kernels repeat (the count doubles, capped at 1024), wall-timed less the floor
  const c0 = counts(cs);
  await chooseVariant(gpu, 'test_kernel', 'window', cs, { cache, reps: 1, windowMs: 50 });
  const win = cache.map.get(tuneCacheKey(gpu.info, 'test_kernel', 'window'))!;
  assert.ok((win.runsPerWindow ?? 1) >= 2 && win.runsPerWindow! <= 1024, `runs per window ${win.runsPerWindow}`);
  assert.equal(win.method, 'wall');
  assert.ok(win.floorMs! > 0 && Object.values(win.ms).every((t) => t > 0), `floor ${win.floorMs} ms subtracted, times stay positive: ${JSON.stringify(win.ms)}`);
  assert.ok(cs.every((c, i) => counts(cs)[i] - c0[i] >= win.runsPerWindow! + 1), `each candidate ran a whole window: ${counts(cs)} vs ${c0}`);
  gpu.destroy(buf);
});

test('chooseVariant: cache entries are per adapter; a changed candidate set tunes again', async () => {
  const gpu = await testGpu();
  const buf = gpu.f32(1024, 'at.buf');
  const cs = candidates(gpu, buf, [1, 8]);
  const infoA = { vendor: 'v', architecture: 'a', device: 'd', description: 'x' };
  assert.notEqual(adapterKey(infoA), adapterKey({ ...infoA, device: 'd2' }));
  assert.notEqual(adapterKey(infoA), adapterKey({ ...infoA, description: 'y' }));
  assert.equal(adapterKey(gpu.info), adapterKey({ ...gpu.info, limits: {} } as typeof gpu.info), 'limits are not part of the identity');
  const rec = (variant: string): TuneRecord => ({ variant, candidates: ['iters1', 'iters8'], ms: {}, method: 'wall', at: '' });

  // an entry for ANOTHER adapter (same kernel and class) is not used: a trial runs
  const cache = new MemoryTuneCache();
  const other = { ...gpu.info, description: `${gpu.info.description} (another one)` };
  await cache.set(tuneCacheKey(other, 'k', 'c'), rec('iters8'));
  await chooseVariant(gpu, 'k', 'c', cs, { cache, reps: 1 });
  assert.ok(cs.every((c) => c.count > 0), 'trial ran despite the other adapter\'s entry');
  assert.equal(cache.map.size, 2, 'both adapters\' entries are kept');
  assert.equal(cache.map.get(tuneCacheKey(other, 'k', 'c'))!.variant, 'iters8');

  // an entry for THIS adapter is used as is (even a slower variant: the cache is trusted)
  const cache2 = new MemoryTuneCache();
  await cache2.set(tuneCacheKey(gpu.info, 'k', 'c'), rec('iters8'));
  const seen = counts(cs);
  assert.equal(await chooseVariant(gpu, 'k', 'c', cs, { cache: cache2 }), 'iters8');
  assert.deepEqual(counts(cs), seen);

  // the cached winner is no longer a candidate, or the set changed: tune again
  const cs3 = candidates(gpu, buf, [1, 2]);
  const p3 = await chooseVariant(gpu, 'k', 'c', cs3, { cache: cache2, reps: 1 });
  assert.ok(cs3.every((c) => c.count > 0) && ['iters1', 'iters2'].includes(p3));
  const cs4 = candidates(gpu, buf, [1, 2, 8]);
  await chooseVariant(gpu, 'k', 'c', cs4, { cache: cache2, reps: 1 });
  assert.ok(cs4.every((c) => c.count > 0), 'a new candidate joined: tune again');
  gpu.destroy(buf);
});

test('chooseVariant: a failing candidate is excluded (validation error, throw); all failing → the first, not cached', async () => {
  const gpu = await testGpu();
  const buf = gpu.f32(1024, 'at.buf');
  const [good] = candidates(gpu, buf, [4]);
  let badRuns = 0;
  const invalid: TuneCandidate = {
    name: 'invalid-wgsl',
    run: () => {
      badRuns++;
      // does not compile: the pipeline is invalid, so is its dispatch (a validation error)
      gpu.dispatch(gpu.pipeline('autotune_bad', 'fn main( {', 'main'), null, [buf], [1]);
    },
  };
  const throws: TuneCandidate = {
    name: 'throws',
    run: () => {
      const max = gpu.info.limits.maxComputeWorkgroupsPerDimension ?? 65535;
      gpu.dispatch(gpu.pipeline('autotune_test', CODE, 'main', { ITERS: 1 }), null, [buf], [max + 1]);
    },
  };
  const cache = new MemoryTuneCache();
  const lines: string[] = [];
  const before = autotuneStats.failures;
  const pick = await chooseVariant(gpu, 'fail_kernel', 'c', [invalid, throws, good], { cache, reps: 2, log: (l) => lines.push(l) });
  assert.equal(pick, 'iters4', 'the only working candidate wins');
  assert.equal(badRuns, 1, 'the failing candidate ran once (the warm-up) and was excluded');
  assert.equal(autotuneStats.failures, before + 2);
  const rec = cache.map.get(tuneCacheKey(gpu.info, 'fail_kernel', 'c'))!;
  assert.deepEqual(Object.keys(rec.failed ?? {}).sort(), ['invalid-wgsl', 'throws']);
  assert.match(rec.failed!['invalid-wgsl'], /validation/i);
  assert.match(rec.failed!.throws, /maxComputeWorkgroupsPerDimension/);
  assert.deepEqual(Object.keys(rec.ms), ['iters4']);
  assert.ok(lines.some((l) => /invalid-wgsl excluded/.test(l)), lines.join('\n'));
  // the device is still usable and the error scopes are balanced: a later scoped call is clean
  await gpu.scoped('after failures', () => good.run());

  const cache2 = new MemoryTuneCache();
  assert.equal(await chooseVariant(gpu, 'fail_kernel', 'all', [throws, invalid], { cache: cache2 }), 'throws', 'every candidate failed: the first');
  assert.equal(cache2.map.size, 0, 'a failed trial is not cached');
  await gpu.scoped('after failures', () => good.run());
  gpu.destroy(buf);
});

test('tune caches: JSON file (WHITTLE_AUTOTUNE_FILE, merge, corrupt file) and IndexedDB round-trip', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'whittle-autotune-'));
  const saved = process.env.WHITTLE_AUTOTUNE_FILE;
  try {
    process.env.WHITTLE_AUTOTUNE_FILE = join(dir, 'sub', 'tune.json');
    assert.equal(defaultTuneFile(), join(dir, 'sub', 'tune.json'));
    delete process.env.WHITTLE_AUTOTUNE_FILE;
    assert.match(defaultTuneFile(), /whittle\/autotune\.json$/);
  } finally {
    if (saved === undefined) delete process.env.WHITTLE_AUTOTUNE_FILE;
    else process.env.WHITTLE_AUTOTUNE_FILE = saved;
  }
  const path = join(dir, 'sub', 'tune.json');
  const rec = (variant: string): TuneRecord => ({ variant, candidates: ['a', 'b'], ms: { a: 1, b: 2 }, method: 'wall', at: 'now' });
  const a = fileTuneCache(path), b = fileTuneCache(path);
  assert.equal(await a.get('k1'), undefined, 'a missing file is an empty cache');
  await a.set('k1', rec('a'));
  await b.set('k2', rec('b')); // another process: merges with what is on disk
  const c = fileTuneCache(path);
  assert.deepEqual(await c.get('k1'), rec('a'));
  assert.deepEqual(await c.get('k2'), rec('b'));
  const j = JSON.parse(readFileSync(path, 'utf8'));
  assert.equal(j.version, 1);
  assert.deepEqual(Object.keys(j.entries).sort(), ['k1', 'k2']);
  writeFileSync(path, '{ not json');
  const d = fileTuneCache(path);
  assert.equal(await d.get('k1'), undefined, 'a corrupt file is an empty cache');
  await d.set('k3', rec('a'));
  assert.deepEqual(Object.keys(JSON.parse(readFileSync(path, 'utf8')).entries), ['k3']);
  // an unwritable path: the set is reported, not thrown, and kept in memory
  const lines: string[] = [];
  writeFileSync(join(dir, 'a-file'), 'x'); // its "subdirectory" cannot be created (ENOTDIR)
  const e = fileTuneCache(join(dir, 'a-file', 'sub', 'tune.json'), (l) => lines.push(l));
  await e.set('k', rec('b'));
  assert.equal((await e.get('k'))?.variant, 'b');
  assert.match(lines.join('\n'), /could not write/);

  const idb = idbTuneCache('whittle-autotune-test');
  assert.equal(await idb.get('k'), undefined);
  await idb.set('k', rec('b'));
  assert.deepEqual(await idbTuneCache('whittle-autotune-test').get('k'), rec('b'));
});

test('chooseVariant with a file cache: a second process (a new cache object) does no trial', async () => {
  const gpu = await testGpu();
  const buf = gpu.f32(1024, 'at.buf');
  const path = join(mkdtempSync(join(tmpdir(), 'whittle-autotune-')), 'autotune.json');
  const cs = candidates(gpu, buf, [1, 16]);
  const pick = await chooseVariant(gpu, 'file_kernel', 'c', cs, { cache: fileTuneCache(path), reps: 1 });
  const seen = counts(cs);
  assert.equal(await chooseVariant(gpu, 'file_kernel', 'c', cs, { cache: fileTuneCache(path) }), pick);
  assert.deepEqual(counts(cs), seen);
  gpu.destroy(buf);
});
