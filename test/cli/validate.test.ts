// `whittle validate` (src/cli/validate.ts): no GPU. A file with a bad JSON line and an empty
// completion gives exit 1 and line-precise errors (text and --json); a clean file exit 0 with its
// warnings; --model (tinystories-656k folder, stories260K GGUF) adds token statistics and the
// too-long warnings of --max-seq-len; usage errors exit 2 through `whittle` itself.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../harness.ts';
import { runValidate } from '../../src/cli/validate.ts';
import { S260K_GGUF, TS656K } from '../model/fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'whittle-validate-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

async function validate(...args: string[]): Promise<{ code: number; out: string; lines: string[] }> {
  const lines: string[] = [];
  const code = await runValidate(args, { out: (s) => lines.push(s), err: (s) => lines.push(`ERR ${s}`) });
  const out = lines.join('\n');
  return { code, out, lines: out.split('\n') };
}

function whittle(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/whittle.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const texts = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ text: `Once upon a time, a cat number ${i + from} sat in the sun and was happy.` }));

const bad = join(tmp, 'bad.jsonl');
writeFileSync(bad, [...texts(3), '{"text": ', JSON.stringify({ prompt: 'Say hi.', completion: '' }), ...texts(2, 3)].join('\n') + '\n');
const good = join(tmp, 'good.jsonl');
writeFileSync(good, [...texts(12), JSON.stringify({ prompt: 'Once upon a time', completion: ' there was a very, very, very long story about a dog and a cat and a bird.' })].join('\n') + '\n');

test('validate: bad lines → exit 1, each error with its line; --json is one object with the same report', async () => {
  const r = await validate('--data', bad);
  assert.equal(r.code, 1, r.out);
  assert.match(r.lines[0], /bad\.jsonl: 7 lines, 5 valid examples \(5 text\), 2 bad lines, 2 errors, \d+ warnings$/);
  assert.match(r.out, /^ {2}error line 4:\d+: not valid JSON .*\[invalid_json\]$/m);
  assert.match(r.out, /^ {2}error line 5, completion: "completion" is empty.*\[empty_content\]$/m);
  assert.match(r.lines.at(-1)!, /^not ok: 2 error\(s\) on 2 line\(s\) \(4, 5\)$/);

  const j = await validate('--data', bad, '--json');
  assert.equal(j.code, 1);
  assert.equal(j.lines.length, 1, 'one JSON object');
  const o = JSON.parse(j.lines[0]);
  assert.equal(o.source, bad);
  assert.equal(o.ok, false);
  assert.deepEqual(o.report.badLines, [4, 5]);
  assert.equal(o.report.errors, 2);
  assert.deepEqual(o.report.issues.filter((i: { severity: string }) => i.severity === 'error').map((i: { line: number; code: string }) => [i.line, i.code]),
    [[4, 'invalid_json'], [5, 'empty_content']]);
  assert.equal(o.stats, undefined, 'no statistics without --model');
});

test('validate --model: token statistics, too-long warnings for --max-seq-len; warnings alone exit 0', async () => {
  const r = await validate('--data', good, '--model', TS656K, '--max-seq-len', '24', '--min-examples', '10');
  assert.equal(r.code, 0, r.out);
  assert.match(r.lines[0], /good\.jsonl: 13 lines, 13 valid examples \(1 prompt_completion, 12 text\), 0 bad lines, 0 errors, \d+ warnings$/);
  assert.match(r.out, /^ {2}warning line 13: example is \d+ tokens, longer than maxSeqLen 24.*\[too_long\]$/m);
  assert.doesNotMatch(r.out, /warning line 1:/, 'the short lines fit');
  assert.match(r.out, /^tokens: 13 examples, \d+\.\.\d+ tokens each \(median \d+(\.\d+)?, mean \d+\.\d\); \d+ tokens per epoch, \d+ trained$/m);
  assert.match(r.out, /^ {2}\d+ example\(s\) longer than 24 tokens: truncation cuts \d+ tokens \(\d+ trained\)$/m);
  assert.match(r.out, /^ {2}length histogram \(tokens per example\):$/m);
  assert.match(r.lines.at(-1)!, /^ok: 13 valid examples, \d+ warning\(s\)$/);
  assert.doesNotMatch(r.out, /few_examples/, '--min-examples 10');

  const j = JSON.parse((await validate('--data', good, '--model', TS656K, '--max-seq-len', '24', '--json')).lines[0]);
  assert.equal(j.ok, true);
  assert.equal(j.model, TS656K);
  assert.equal(j.maxSeqLen, 24);
  assert.equal(j.stats.examples, 13);
  assert.equal(j.stats.truncatedExamples, 1, 'only the long completion line');
  assert.equal(j.stats.maxSeqLen, 24);
  assert.ok(j.stats.trainedTokens > 0 && j.stats.trainedTokens < j.stats.totalTokens, 'the prompt of the completion line is not trained');

  // a GGUF model: tokenizer from its header; errors still exit 1 and the valid lines get statistics
  const g = await validate('--data', bad, '--model', S260K_GGUF);
  assert.equal(g.code, 1, g.out);
  assert.match(g.out, /^tokens: 5 examples, /m);
});

test('validate through `whittle`: exit codes 0 / 1 / 2 and messages', () => {
  const ok = whittle(['validate', '--data', good, '--min-examples', '5']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^ok: 13 valid examples/m);
  const no = whittle(['validate', '--data', bad, '--json']);
  assert.equal(no.code, 1);
  assert.equal(JSON.parse(no.stdout).ok, false);
  const usage = whittle(['validate', '--model', TS656K]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /^whittle validate: --data FILE\.jsonl is required/);
  assert.equal(whittle(['validate', '--data', good, '--max-seq-len', '24']).code, 2, '--max-seq-len needs --model');
  assert.equal(whittle(['validate', '--data', good, '--format', 'csv']).code, 2);
  const missing = whittle(['validate', '--data', join(tmp, 'nope.jsonl')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope\.jsonl: cannot read the dataset/);
  assert.match(whittle(['--help']).stdout, /^ {2}validate +check a JSONL training file/m);
});
