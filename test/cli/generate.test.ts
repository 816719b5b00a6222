// `whittle generate` and `whittle logits` as child processes (lavapipe) on the real stories260K GGUF:
// the greedy continuation of reference.json (f32; its first tokens with f16 weights), seeded sampling
// reproducible, stop strings, the logits JSON against reference.json's prompt logits, and usage
// errors (exit 2); --driver-threads -1 (the driver's thread pool) gives the same greedy ids. --adapter / --merge: ./adapter.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from '../harness.ts';
import type { GenerateReport } from '../../src/cli/generate.ts';
import { assertClose } from '../util.ts';

const MODEL = new URL('../../../shared/models/stories260K/stories260K.gguf', import.meta.url).pathname;
const REF = JSON.parse(readFileSync(new URL('../../../shared/models/stories260K/reference.json', import.meta.url), 'utf8'));

function whittle(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || '/tmp' };
  const r = spawnSync(process.execPath, ['bin/whittle.mjs', ...args], { env, encoding: 'utf8', timeout: 5 * 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function report(args: string[]): GenerateReport {
  const r = whittle(['generate', '--model', MODEL, '--json', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('whittle generate --greedy --json: the reference continuation; streamed text without --json', () => {
  const g = report(['--prompt', 'Once upon a time', '--max-tokens', '60', '--greedy']);
  assert.deepEqual(g.promptIds, REF.prompt_ids);
  assert.deepEqual(g.ids, REF.greedy_continuation_ids);
  assert.equal('Once upon a time' + g.text, REF.greedy_text);
  assert.equal(g.finishReason, 'length');
  assert.equal(g.stats.gpuGreedy, true);
  assert.ok(g.stats.decodeTokensPerSecond > 0);
  const s = whittle(['generate', '--model', MODEL, '--prompt', 'Once upon a time', '--max-tokens', '60', '--greedy']);
  assert.equal(s.code, 0, s.stderr);
  assert.equal(s.stdout, REF.greedy_text + '\n');
  assert.match(s.stderr, /60 tokens, length; .* tokens\/s/);
  // --driver-threads -1 (llvmpipe's thread pool; the default 0 runs dispatches on its queue thread): the same greedy ids
  const pool = report(['--prompt', 'Once upon a time', '--max-tokens', '60', '--greedy', '--driver-threads', '-1']);
  assert.deepEqual(pool.ids, REF.greedy_continuation_ids);
});

test('whittle generate: a seed reproduces a sample; --stop cuts the text; q8; f16', () => {
  const a = report(['--prompt', 'Once upon a time', '--max-tokens', '30', '--seed', '3', '--temperature', '1', '--top-k', '0', '--top-p', '0.9']);
  const b = report(['--prompt', 'Once upon a time', '--max-tokens', '30', '--seed', '3', '--temperature', '1', '--top-k', '0', '--top-p', '0.9']);
  assert.deepEqual(a.ids, b.ids);
  assert.equal(a.stats.gpuGreedy, false);
  const st = report(['--ids', '1,403,407,261,378', '--max-tokens', '60', '--greedy', '--stop', 'Lily']);
  assert.equal(st.finishReason, 'stop');
  assert.equal(st.text, ', there was a little girl named ');
  const q = report(['--prompt', 'Once upon a time', '--max-tokens', '10', '--greedy', '--quant', 'q8']);
  assert.equal(q.quant, 'q8');
  assert.equal(q.ids.length, 10);
  const h = report(['--prompt', 'Once upon a time', '--max-tokens', '10', '--greedy', '--quant', 'f16']);
  assert.equal(h.quant, 'f16');
  assert.deepEqual(h.ids, REF.greedy_continuation_ids.slice(0, 10), 'f16 weights: the reference greedy start');
});

test('whittle logits --json: every position matches reference.json; usage errors exit 2', () => {
  const r = whittle(['logits', '--model', MODEL, '--ids', REF.prompt_ids.join(','), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { ids: number[]; logits: number[][] };
  assert.deepEqual(j.ids, REF.prompt_ids);
  const want = (typeof REF.prompt_logits === 'string' ? JSON.parse(REF.prompt_logits) : REF.prompt_logits) as number[][];
  assert.equal(j.logits.length, want.length);
  assertClose('logits', j.logits.flat(), want.flat(), { atol: 2e-4, rtol: 1e-4 });
  const t = whittle(['logits', '--model', MODEL, '--text', 'Once upon a time', '--top', '2']);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /"▁time" \(378\) → "," /);
  assert.equal(whittle(['logits', '--model', MODEL]).code, 2);
  assert.equal(whittle(['generate', '--model', MODEL, '--prompt', 'x', '--quant', 'q5']).code, 2);
  assert.equal(whittle(['generate', '--prompt', 'x']).code, 2);
  const dt = whittle(['generate', '--model', MODEL, '--prompt', 'x', '--driver-threads', '-2']);
  assert.equal(dt.code, 2);
  assert.match(dt.stderr, /--driver-threads needs an integer ≥ -1 ≤ 64 \(got -2\)/);
});
