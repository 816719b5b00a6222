// `whittle train` end to end on the real tinystories-656k model (../shared/models): 40 templated
// short stories as JSONL, 30 steps on the GPU; the loss falls, the adapter files are written and
// read back (PEFT names, shapes, metrics); usage errors and bad data give clear messages.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../harness.ts';
import { runTrain, run } from '../../src/cli/train.ts';
import { readAdapterFiles } from '../../src/train/node.ts';
import { UsageError } from '../../src/cli/args.ts';

const MODEL = new URL('../../../shared/models/tinystories-656k', import.meta.url).pathname;

function stories(n: number): string {
  const names = ['Tom', 'Lily', 'Ben', 'Mia', 'Sam'], animals = ['cat', 'dog', 'bird', 'frog'], places = ['park', 'garden', 'forest', 'house'];
  const things = ['red ball', 'big box', 'shiny stone', 'small hat'];
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = names[i % 5], animal = animals[(i >> 1) % 4], place = places[(i >> 2) % 4], thing = things[(i * 3) % 4];
    const text = `Once upon a time, there was a little ${animal} named ${name}. ${name} liked to play in the ${place}. ` +
      `One day, ${name} found a ${thing}. ${name} was very happy and showed the ${thing} to mom.`;
    lines.push(JSON.stringify({ text }));
  }
  return lines.join('\n') + '\n';
}

function capture() {
  const out: string[] = [], err: string[] = [];
  return { io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) }, out, err };
}

test('whittle train: 30 steps on tinystories-656k, loss falls, adapter written', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'whittle-cli-'));
  try {
    await writeFile(join(dir, 'stories.jsonl'), stories(40));
    const c = capture();
    const code = await runTrain(['--model', MODEL, '--data', join(dir, 'stories.jsonl'), '--max-steps', '30', '--batch', '4', '--seed', '5',
      '--out', join(dir, 'out'), '--json'], c.io);
    assert.equal(code, 0, c.err.join('\n'));
    const rows = c.out.map((l) => JSON.parse(l));
    const steps = rows.filter((r) => r.type === 'step');
    assert.equal(steps.length, 30);
    const mean = (xs: { loss: number }[]) => xs.reduce((a, x) => a + x.loss, 0) / xs.length;
    const first = mean(steps.slice(0, 5)), last = mean(steps.slice(-5));
    assert.ok(last < 0.85 * first, `loss falls: ${first.toFixed(3)} → ${last.toFixed(3)}`);
    assert.ok(rows.some((r) => r.type === 'event' && r.kind === 'hyperparameter' && /^learningRate: 1e-3/.test(r.message)));
    const result = rows.find((r) => r.type === 'result');
    assert.equal(result.status, 'succeeded');
    const a = await readAdapterFiles(join(dir, 'out'));
    assert.equal(a.format, 'whittle.lora-adapter');
    assert.equal(a.baseModel.shape, 'llama:C128:L2:H8:KV4:HS16:F384:V2048');
    assert.equal(a.tensors.length, 2 * 7 * 2);
    const qa = a.tensors.find((t) => t.name === 'base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight')!;
    assert.deepEqual(qa.shape, [128, 8]);
    assert.equal((qa.data as ArrayBuffer).byteLength, 128 * 8 * 4);
    assert.ok(new Float32Array(qa.data as ArrayBuffer).some((x) => x !== 0), 'B moved away from 0');
    assert.equal(a.metrics.steps, 30);
    assert.equal(a.history.length, 30);
    assert.equal(a.hyperparameters.maxSteps, 30);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('whittle train: usage errors and invalid data are reported clearly', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'whittle-cli-'));
  try {
    await assert.rejects(runTrain(['--data', 'x.jsonl'], capture().io), (e: Error) => e instanceof UsageError && /--model PATH is required/.test(e.message));
    await assert.rejects(runTrain(['--model', MODEL, '--data', 'x.jsonl', '--lr', 'fast'], capture().io), /--lr needs a number/);
    await writeFile(join(dir, 'bad.jsonl'), stories(3) + '{"text": \n');
    const c = capture();
    await assert.rejects(runTrain(['--model', MODEL, '--data', join(dir, 'bad.jsonl')], c.io), /bad\.jsonl: 1 line has errors \(line 4\)/);
    assert.match(c.err.join('\n'), /line 4/);
    const [oldErr, oldOut] = [process.stderr.write.bind(process.stderr), process.stdout.write.bind(process.stdout)];
    let stderr = '';
    process.stderr.write = ((s: string) => { stderr += s; return true; }) as typeof process.stderr.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      assert.equal(await run(['--model', MODEL]), 2);
      assert.equal(await run(['--model', MODEL, '--data', join(dir, 'bad.jsonl')]), 1);
    } finally {
      process.stderr.write = oldErr;
      process.stdout.write = oldOut;
    }
    assert.match(stderr, /--data FILE.jsonl is required/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
