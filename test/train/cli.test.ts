// `whittle train` end to end on the real tinystories-656k model (../shared/models): 40 templated
// short stories as JSONL, 30 steps on the GPU; the loss falls, the PEFT adapter directory is written
// (adapter_config.json fields, adapter_model.safetensors keys and shapes) and metrics.jsonl has one
// row per step; the flag names (--batch-size, --max-seq-len, --checkpoint-every) and the old
// aliases; --valid adds validation rows; --resume continues from DIR/checkpoints bit-identically and
// rewrites metrics.jsonl without repeated steps; the progress bar on a terminal; usage errors and
// bad data give clear messages.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../harness.ts';
import { MetricsFile, runTrain, run } from '../../src/cli/train.ts';
import { loadAdapterDir } from '../../src/cli/adapter-arg.ts';
import { loadModel } from '../../src/model/load.ts';
import { nodeSource } from '../../src/model/source-node.ts';
import { parseSafetensors } from '../../src/model/safetensors.ts';
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

const readJsonl = async (p: string) => (await readFile(p, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
const readSt = async (p: string) => parseSafetensors(p, new Uint8Array(await readFile(p)));

test('whittle train: 30 steps on tinystories-656k, loss falls, PEFT adapter + metrics.jsonl written', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'whittle-cli-'));
  try {
    await writeFile(join(dir, 'stories.jsonl'), stories(40));
    const c = capture();
    const out = join(dir, 'out');
    const code = await runTrain(['--model', MODEL, '--data', join(dir, 'stories.jsonl'), '--max-steps', '30', '--batch-size', '4', '--seed', '5',
      '--out', out, '--json'], c.io);
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
    assert.equal(result.files.config, join(out, 'adapter_config.json'));
    assert.equal(result.files.weights, join(out, 'adapter_model.safetensors'));
    assert.equal(result.files.metrics, join(out, 'metrics.jsonl'));
    assert.deepEqual(readdirSync(out).sort(), ['README.md', 'adapter_config.json', 'adapter_model.safetensors', 'checkpoints', 'metrics.jsonl', 'whittle_adapter.json']);

    // adapter_config.json: the PEFT LoraConfig fields
    const cfg = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
    assert.equal(cfg.peft_type, 'LORA');
    assert.equal(cfg.task_type, 'CAUSAL_LM');
    assert.equal(cfg.r, 8);
    assert.equal(cfg.lora_alpha, 16);
    assert.deepEqual(cfg.target_modules, ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    assert.equal(cfg.base_model_name_or_path, MODEL);

    // adapter_model.safetensors: PEFT keys, A (r, in), B (out, r); C128 QD128 KVD64 F384
    const st = await readSt(join(out, 'adapter_model.safetensors'));
    assert.equal(st.header.tensors.size, 2 * 7 * 2);
    const shapes: Record<string, [number, number]> = {
      'self_attn.q_proj': [128, 128], 'self_attn.k_proj': [64, 128], 'self_attn.v_proj': [64, 128], 'self_attn.o_proj': [128, 128],
      'mlp.gate_proj': [384, 128], 'mlp.up_proj': [384, 128], 'mlp.down_proj': [128, 384],
    };
    for (let l = 0; l < 2; l++) {
      for (const [mod, [OC, IC]] of Object.entries(shapes)) {
        const a = st.header.tensors.get(`base_model.model.model.layers.${l}.${mod}.lora_A.weight`);
        const b = st.header.tensors.get(`base_model.model.model.layers.${l}.${mod}.lora_B.weight`);
        assert.ok(a && b, `layer ${l} ${mod}`);
        assert.equal(a.dtype, 'F32');
        assert.deepEqual(a.shape, [8, IC]);
        assert.deepEqual(b.shape, [OC, 8]);
      }
    }
    assert.ok(st.get('base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight').some((x) => x !== 0), 'B moved away from 0');
    const meta = JSON.parse(await readFile(join(out, 'whittle_adapter.json'), 'utf8'));
    assert.equal(meta.hyperparameters.maxSteps, 30);
    assert.equal(meta.metrics.steps, 30);

    // metrics.jsonl: one train row per step, the same numbers as the --json step lines
    const mrows = await readJsonl(join(out, 'metrics.jsonl'));
    assert.deepEqual(mrows.map((r) => r.type), Array(30).fill('train'));
    assert.deepEqual(mrows.map((r) => r.step), Array.from({ length: 30 }, (_, i) => i + 1));
    for (const k of ['loss', 'accuracy', 'lr', 'tokensPerSec', 'trainedTokens', 'epoch', 'elapsedMs']) assert.equal(typeof mrows[0][k], 'number', k);
    assert.deepEqual(mrows.map((r) => r.loss), steps.map((r) => r.loss));

    // the directory loads back as an adapter (--adapter DIR of generate / logits / export / grads)
    const m = await loadModel(await nodeSource(MODEL));
    const ad = await loadAdapterDir(out, m);
    assert.equal(ad.lora.rank, 8);
    assert.deepEqual(ad.lora.targets, ['q', 'k', 'v', 'o', 'gate', 'up', 'down']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('whittle train: --valid adds validation rows; --resume continues bit-identically and keeps metrics.jsonl free of repeats', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'whittle-cli-'));
  try {
    await writeFile(join(dir, 'train.jsonl'), stories(24));
    await writeFile(join(dir, 'valid.jsonl'), stories(31).split('\n').slice(24).join('\n'));
    // the flag names next to the old ones (--seq is --max-seq-len's alias; same value is fine)
    const args = (out: string) => ['--model', MODEL, '--data', join(dir, 'train.jsonl'), '--valid', join(dir, 'valid.jsonl'), '--out', out,
      '--max-steps', '6', '--batch-size', '4', '--max-seq-len', '32', '--seq', '32', '--checkpoint-every', '2', '--eval-interval', '3',
      '--rank', '4', '--alpha', '8', '--dropout', '0.1', '--targets', 'q,v,down', '--lr', '2e-3', '--quant', 'f32', '--seed', '3'];
    const a = join(dir, 'a');
    const c1 = capture();
    assert.equal(await runTrain(args(a), c1.io), 0, c1.err.join('\n'));
    const rowsA = await readJsonl(join(a, 'metrics.jsonl'));
    assert.deepEqual(rowsA.map((r) => `${r.type}${r.step}`), ['train1', 'train2', 'train3', 'valid3', 'train4', 'train5', 'train6', 'valid6']);
    for (const r of rowsA.filter((r) => r.type === 'valid')) assert.ok(r.loss > 0 && r.accuracy >= 0 && r.accuracy <= 1);
    assert.match(c1.out.join('\n'), /^step 3\/6 .* valid loss \d+\.\d{4} acc/m);
    const cfg = JSON.parse(await readFile(join(a, 'adapter_config.json'), 'utf8'));
    assert.equal(cfg.r, 4);
    assert.equal(cfg.lora_alpha, 8);
    assert.equal(cfg.lora_dropout, 0.1);
    assert.deepEqual(cfg.target_modules, ['q_proj', 'v_proj', 'down_proj']);
    const weightsA = await readFile(join(a, 'adapter_model.safetensors'));

    // resume: the latest checkpoint is step 4 (none is written at the last step); steps 5, 6 again
    const c2 = capture();
    assert.equal(await runTrain([...args(a), '--resume'], c2.io), 0, c2.err.join('\n'));
    assert.match(c2.out.join('\n'), /resumed from the checkpoint at step 4/);
    assert.deepEqual(c2.out.filter((l) => l.startsWith('step ')).map((l) => l.split(' ')[1]), ['5/6', '6/6']);
    const rowsB = await readJsonl(join(a, 'metrics.jsonl'));
    assert.deepEqual(rowsB.map((r) => `${r.type}${r.step}`), rowsA.map((r) => `${r.type}${r.step}`));
    assert.deepEqual(rowsB.map((r) => r.loss), rowsA.map((r) => r.loss));
    assert.ok(Buffer.compare(await readFile(join(a, 'adapter_model.safetensors')), weightsA) === 0, 'resumed adapter is bit-identical');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('whittle train: a progress bar on a terminal (stderr, redrawn with \\r), no step lines', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'whittle-cli-'));
  try {
    await writeFile(join(dir, 'stories.jsonl'), stories(12));
    const c = capture();
    let tty = '';
    const code = await runTrain(['--model', MODEL, '--data', join(dir, 'stories.jsonl'), '--max-steps', '3', '--batch', '4', '--out', join(dir, 'o'), '--resume'],
      { ...c.io, tty: { write: (s) => void (tty += s), columns: 100 } });
    assert.equal(code, 0, c.err.join('\n'));
    assert.ok(!c.out.some((l) => l.startsWith('step ')), 'no per-step lines under a bar');
    assert.ok(c.out.some((l) => /^no checkpoint in .*checkpoints: starting from step 0$/.test(l)), c.out.join('\n'));
    const frames = tty.split('\r\x1b[K').filter(Boolean);
    assert.ok(frames.some((f) => /^\[#{25}-{0}\] 3\/3 100% {2}loss \d\.\d{4} {2}\d:\d\d<0:00 {2}\d+ tok\/s/.test(f)), frames.join('\n'));
    assert.ok(frames.some((f) => /^\[#{8}-{17}\] 1\/3 {2}33%/.test(f)), frames.join('\n'));
    assert.ok(frames.every((f) => f.length < 100), 'cut to the terminal width');
    assert.ok(tty.endsWith('\r\x1b[K'), 'the bar is erased at the end');
    assert.match(c.out.join('\n'), /^adapter {3}.*adapter_config\.json \+ .*adapter_model\.safetensors: 28 tensors/m);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('metrics.jsonl follows the job\'s rows: appends, a validation row, a rollback rewrites, a resume starts from the history', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'whittle-cli-'));
  try {
    const p = join(dir, 'metrics.jsonl');
    await writeFile(p, '{"type":"train","step":99}\n'); // a previous run's file
    const row = (step: number, loss: number, valid?: number) => ({ step, time: step, epoch: step / 10, loss, accuracy: 0.5, lr: 1e-3, ...(valid ? { validLoss: valid, validAccuracy: 0.25 } : {}) });
    const f = new MetricsFile(p);
    const rows = [row(1, 3), row(2, 2.5)];
    f.sync(rows, true); // training starts with the checkpoint's history
    rows.push(row(3, 2.2, 2.4));
    f.sync(rows);
    f.sync(rows); // nothing new
    rows.push(row(4, NaN));
    f.sync(rows);
    rows.splice(2); // rolled back to step 2 (the job drops later rows)
    f.sync(rows);
    rows.push(row(3, 2.3));
    f.sync(rows);
    await f.flush();
    assert.equal(f.error, null);
    const got = await readJsonl(p);
    assert.deepEqual(got.map((r) => `${r.type}${r.step}:${r.loss}`), ['train1:3', 'train2:2.5', 'train3:2.3']);
    f.sync([...rows, row(4, 2.1, 2.2)]);
    await f.flush();
    const last = (await readJsonl(p)).slice(-2);
    assert.deepEqual(last[0], { type: 'train', step: 4, time: 4, epoch: 0.4, loss: 2.1, accuracy: 0.5, lr: 1e-3 });
    assert.deepEqual(last[1], { type: 'valid', step: 4, time: 4, epoch: 0.4, loss: 2.2, accuracy: 0.25 });
    const bad = new MetricsFile(join(dir, 'no', 'such', 'dir', 'metrics.jsonl'));
    bad.sync([row(1, 1)], true);
    await bad.flush();
    assert.match(bad.error?.message ?? '', /ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('whittle train: usage errors and invalid data are reported clearly', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'whittle-cli-'));
  try {
    await assert.rejects(runTrain(['--data', 'x.jsonl'], capture().io), (e: Error) => e instanceof UsageError && /--model PATH is required/.test(e.message));
    await assert.rejects(runTrain(['--model', MODEL, '--data', 'x.jsonl', '--out', dir, '--lr', 'fast'], capture().io), /--lr needs a number/);
    await assert.rejects(runTrain(['--model', MODEL, '--data', 'x.jsonl'], capture().io), /--out DIR is required/);
    const bad = async (extra: string[], re: RegExp) =>
      assert.rejects(runTrain(['--model', MODEL, '--data', 'x.jsonl', '--out', dir, ...extra], capture().io), (e: Error) => e instanceof UsageError && re.test(e.message));
    await bad(['--batch-size', '4', '--batch', '8'], /--batch-size and --batch are the same setting/);
    await bad(['--max-seq-len', 'x'], /--max-seq-len needs an integer/);
    await bad(['--checkpoint-interval', '1.5'], /--checkpoint-interval needs an integer/);
    await bad(['--quant', 'q3'], /--quant must be f32, f16, q8, q4/);
    await bad(['--targets', 'q,attn'], /--targets: unknown target 'attn'/);
    await bad(['--schedule', 'steep'], /--schedule must be constant, linear, cosine/);
    await writeFile(join(dir, 'bad.jsonl'), stories(3) + '{"text": \n');
    const c = capture();
    await assert.rejects(runTrain(['--model', MODEL, '--data', join(dir, 'bad.jsonl'), '--out', join(dir, 'o')], c.io), /bad\.jsonl: 1 line has errors \(line 4\)/);
    assert.match(c.err.join('\n'), /line 4/);
    const [oldErr, oldOut] = [process.stderr.write.bind(process.stderr), process.stdout.write.bind(process.stdout)];
    let stderr = '';
    process.stderr.write = ((s: string) => { stderr += s; return true; }) as typeof process.stderr.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      assert.equal(await run(['--model', MODEL]), 2);
      assert.equal(await run(['--model', MODEL, '--data', join(dir, 'bad.jsonl'), '--out', join(dir, 'o')]), 1);
    } finally {
      process.stderr.write = oldErr;
      process.stdout.write = oldOut;
    }
    assert.match(stderr, /--data FILE.jsonl is required/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
