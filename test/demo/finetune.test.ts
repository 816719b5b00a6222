// Fine-tuning works, end to end, with the CLI as a user runs it (docs/demo.md):
// - a 60-line chat dataset, built here, teaches ../shared/models/tinystories-656k (a base model
//   that only writes children's stories) to answer "My name is NAME." / "I am NAME." / "Hi, I'm
//   NAME." with exactly "Hello, NAME! Nice to meet you." and then stop;
// - `whittle train` (a child process, --prefix-space off: the model was trained without the
//   tokenizer's leading "▁", see the model's SOURCE.md) trains a LoRA adapter on it;
// - `whittle generate --greedy --no-prefix-space` on six names that are not in the dataset: the
//   tuned model answers in the taught format and copies most names; the base model never does;
// - the validation loss at the end is far below the first evaluation (DIR/metrics.jsonl, or the
//   --json step lines when there is no metrics file).
// The prompt is the data layer's plain chat fallback (the model has no chat template):
// "User: {user}\nAssistant:"; generate is fed exactly the ids training used (checked below).
// About a minute on lavapipe (2 cores); SwiftShader is about 10× slower.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from '../harness.ts';
import { encodeChatPrompt } from '../../src/data/index.ts';
import { loadModelTokenizer } from '../../src/model/load.ts';
import { nodeSource } from '../../src/model/source-node.ts';

const MODEL = new URL('../../../shared/models/tinystories-656k', import.meta.url).pathname;
const ROOT = new URL('../../', import.meta.url).pathname;
const run = promisify(execFile);

/** Names in the training data (held-out names below are not among them). */
const TRAIN_NAMES = ('Ben Sue Mia Tim Sam Bob Sara Spot Lucy Emma Jill Kate Amy Zoe Leo Jane Mark Ella Ruby Timmy Billy Molly Daisy ' +
  'Jake Luke Nina Kim Fred Ann Joe Dan Ted Pam Meg Jen Ava Eli Finn Rex Roxy Sally Bella Lisa Mike Pete Paul Peter Alice Ollie ' +
  'Grace Jenny Susie Benny Lila Mimi Kitty Polly Bunny Lola Dot').split(' ');
const PHRASES = [(n: string) => `My name is ${n}.`, (n: string) => `I am ${n}.`, (n: string) => `Hi, I'm ${n}.`];
const answer = (n: string) => `Hello, ${n}! Nice to meet you.`;
const HELD_OUT = ['Tom', 'Lily', 'Max', 'Anna', 'Jack', 'Rose'];

/** The training file: one chat line per name, the three phrasings in turn. */
function greetingDataset(): string {
  return TRAIN_NAMES.map((n, i) => JSON.stringify({ messages: [{ role: 'user', content: PHRASES[i % 3](n) }, { role: 'assistant', content: answer(n) }] }))
    .join('\n') + '\n';
}

const TRAIN_FLAGS = ['--prefix-space', 'off', '--lr', '3e-3', '--epochs', '10', '--batch-size', '8', '--seed', '1'];

async function whittle(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['bin/whittle.mjs', ...args], { cwd: ROOT, maxBuffer: 64 << 20 });
  return stdout;
}

interface Generated { text: string; promptIds: number[]; finishReason: string }

async function generate(prompt: string, adapter: string | null): Promise<Generated> {
  const out = await whittle(['generate', '--model', MODEL, '--prompt', prompt, '--greedy', '--max-tokens', '16', '--no-prefix-space', '--json',
    ...(adapter ? ['--adapter', adapter] : [])]);
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

test('fine-tuning teaches tinystories-656k a greeting it does not have; validation loss falls', async () => {
  if (!existsSync(join(MODEL, 'model.safetensors'))) {
    console.log(`# skipped: ${MODEL} is not there`);
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'whittle-demo-'));
  try {
    const data = join(dir, 'greetings.jsonl'), out = join(dir, 'adapter');
    await writeFile(data, greetingDataset());
    const t0 = performance.now();
    const log = await whittle(['train', '--model', MODEL, '--data', data, '--out', out, ...TRAIN_FLAGS, '--json']);
    const trainS = (performance.now() - t0) / 1000;
    const rows = log.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const result = rows.find((r) => r.type === 'result');
    assert.ok(result && result.status !== 'failed', `training failed: ${JSON.stringify(result)}`);

    // validation loss: DIR/metrics.jsonl rows {type: 'valid'}, else the --json step lines' validLoss
    const metricsFile = join(out, 'metrics.jsonl');
    const valid: { step: number; loss: number }[] = existsSync(metricsFile)
      ? (await readFile(metricsFile, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((r) => r.type === 'valid')
      : rows.filter((r) => r.type === 'step' && typeof r.validLoss === 'number').map((r) => ({ step: r.step, loss: r.validLoss }));
    assert.ok(valid.length >= 2, 'at least two evaluations');
    const [first, last] = [valid[0], valid.at(-1)!];
    assert.ok(last.loss < 0.5 * first.loss, `validation loss falls: ${first.loss.toFixed(4)} (step ${first.step}) → ${last.loss.toFixed(4)} (step ${last.step})`);

    // generate is fed exactly what training trained on: the plain fallback's prompt ids, no "▁"
    const { tokenizer } = await loadModelTokenizer(await nodeSource(MODEL));
    const table: string[] = [];
    let format = 0, named = 0, baseHas = 0;
    for (const [i, name] of HELD_OUT.entries()) {
      const user = PHRASES[i % 2](name);
      const prompt = `User: ${user}\nAssistant:`;
      const base = await generate(prompt, null), tuned = await generate(prompt, out);
      if (i === 0) {
        assert.deepEqual(tuned.promptIds, encodeChatPrompt([{ role: 'user', content: user }], tokenizer, { prefixSpace: false }),
          'the generate prompt is tokenized as the training data');
      }
      if (/^ Hello, [^!]+! Nice to meet you\.$/.test(tuned.text) && tuned.finishReason === 'eos') format++;
      if (tuned.text === ` ${answer(name)}`) named++;
      if (/Hello|Nice to meet you/.test(base.text)) baseHas++;
      table.push(`| ${user} | ${JSON.stringify(base.text)} | ${JSON.stringify(tuned.text)} |`);
    }
    console.log(`# trained in ${trainS.toFixed(0)} s; validation loss ${first.loss.toFixed(4)} (step ${first.step}) → ${last.loss.toFixed(4)} (step ${last.step}); ` +
      `held-out prompts: taught format ${format}/${HELD_OUT.length}, right name ${named}/${HELD_OUT.length}, base greets ${baseHas}/${HELD_OUT.length}`);
    console.log(`# | prompt | base | tuned |\n${table.map((l) => `# ${l}`).join('\n')}`);
    assert.ok(format >= HELD_OUT.length - 1, `the tuned model answers in the taught format (${format}/${HELD_OUT.length})`);
    assert.ok(named >= Math.ceil(HELD_OUT.length / 2) + 1, `the tuned model greets most held-out names by name (${named}/${HELD_OUT.length})`);
    assert.equal(baseHas, 0, 'the base model never greets');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
