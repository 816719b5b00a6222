// `whittle export` (src/cli/export.ts) end to end on disk: a hand-written PEFT adapter for the real
// tinystories-656k model through every format (peft, gguf, merged, recipe), a `whittle train`
// adapter directory, the stories260K GGUF through merged-gguf, and the usage / path errors.
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../harness.ts';
import { runExport } from '../../src/cli/export.ts';
import { UsageError } from '../../src/cli/args.ts';
import { loadModel } from '../../src/model/load.ts';
import { nodeSource } from '../../src/model/source-node.ts';
import { parseGGUF } from '../../src/model/gguf.ts';
import { parseSafetensors, writeSafetensors, type SafetensorsInput } from '../../src/model/safetensors.ts';
import { writeAdapterFiles } from '../../src/train/node.ts';
import type { TrainedAdapter } from '../../src/train/adapter.ts';
import { modelShapeSignature } from '../../src/store/adapters.ts';
import { S260K_GGUF, TS656K, rejects } from '../model/fixtures.ts';
import { randn32 } from '../util.ts';
import { randomIds, tokenLosses } from './fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'whittle-export-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const io = () => {
  const lines: string[] = [];
  return { lines, io: { out: (s: string) => lines.push(s), err: (s: string) => lines.push(`ERR ${s}`) } };
};
const exp = async (...args: string[]) => {
  const c = io();
  const code = await runExport(args, c.io);
  return { code, out: c.lines.join('\n') };
};

// tinystories-656k: C128 L2 NH8 NKV4 HS16 F384
const MODS: [string, number, number][] = [['self_attn.q_proj', 128, 128], ['self_attn.v_proj', 64, 128], ['mlp.down_proj', 128, 384]];
function peftDir(dir: string): Map<string, { A: Float32Array; B: Float32Array }> {
  mkdirSync(dir, { recursive: true });
  const values = new Map<string, { A: Float32Array; B: Float32Array }>();
  const ts: SafetensorsInput[] = [];
  let s = 100;
  for (let l = 0; l < 2; l++) {
    for (const [mod, OC, IC] of MODS) {
      const A = randn32(4 * IC, s++, 0.2), B = randn32(OC * 4, s++, 0.2);
      values.set(`${l}.${mod}`, { A, B });
      ts.push({ name: `base_model.model.model.layers.${l}.${mod}.lora_A.weight`, shape: [4, IC], data: A });
      ts.push({ name: `base_model.model.model.layers.${l}.${mod}.lora_B.weight`, shape: [OC, 4], data: B });
    }
  }
  writeFileSync(join(dir, 'adapter_model.safetensors'), writeSafetensors(ts, { format: 'pt' }));
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({
    peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: ['q_proj', 'v_proj', 'down_proj'],
    base_model_name_or_path: 'raincandy-u/TinyStories-656K', bias: 'none', use_rslora: false,
  }));
  return values;
}

const chatData = [
  { messages: [{ role: 'user', content: 'Tell me a story.' }, { role: 'assistant', content: 'Once upon a time there was a cat.' }] },
  { messages: [{ role: 'user', content: 'Another one.' }, { role: 'assistant', content: 'Lily went to the park.' }] },
].map((o) => JSON.stringify(o)).join('\n') + '\n';

test('export a PEFT adapter of tinystories-656k as peft, gguf, merged and recipe', async () => {
  const adapterDir = join(tmp, 'peft-in');
  const values = peftDir(adapterDir);
  const base = ['--model', TS656K, '--adapter', adapterDir];

  const p = await exp(...base, '--format', 'peft', '--out', join(tmp, 'peft-out'));
  assert.equal(p.code, 0);
  assert.match(p.out, /adapter {2}peft-in: rank 4, alpha 8, targets q,v,down/);
  assert.deepEqual(readdirSync(join(tmp, 'peft-out')).sort(), ['README.md', 'adapter_config.json', 'adapter_model.safetensors', 'whittle_adapter.json']);
  const cfgJson = JSON.parse(readFileSync(join(tmp, 'peft-out/adapter_config.json'), 'utf8'));
  assert.equal(cfgJson.base_model_name_or_path, 'raincandy-u/TinyStories-656K');
  assert.deepEqual(cfgJson.target_modules, ['q_proj', 'v_proj', 'down_proj']);
  const st = parseSafetensors('p', new Uint8Array(readFileSync(join(tmp, 'peft-out/adapter_model.safetensors'))));
  assert.deepEqual(st.get('base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight'), values.get('1.self_attn.q_proj')!.B);

  const g = await exp(...base, '--format', 'gguf', '--out', join(tmp, 'lora.gguf'));
  assert.equal(g.code, 0, g.out);
  const gg = parseGGUF('lora.gguf', new Uint8Array(readFileSync(join(tmp, 'lora.gguf'))));
  assert.equal(gg.metadata.get('general.type'), 'adapter');
  assert.equal(gg.tensors.size, 12);
  assert.deepEqual(gg.tensors.get('blk.0.ffn_down.weight.lora_a')!.dims, [384, 4]);

  const m = await exp(...base, '--format', 'merged', '--dtype', 'f32', '--out', join(tmp, 'merged'));
  assert.equal(m.code, 0, m.out);
  const merged = await loadModel(await nodeSource(join(tmp, 'merged')));
  const orig = await loadModel(await nodeSource(TS656K));
  const params = new Map<string, { A: Float32Array; B: Float32Array }>();
  for (const [k, v] of values) {
    const [l, mod] = [k.split('.')[0], k.split('.').slice(1).join('.')];
    params.set(`${l}.${{ 'self_attn.q_proj': 'q', 'self_attn.v_proj': 'v', 'mlp.down_proj': 'down' }[mod]}`, v);
  }
  const ids = randomIds(2048, 10, 3);
  const want = tokenLosses(orig.config, orig.weights, { config: { rank: 4, alpha: 8, dropout: 0, targets: ['q', 'v', 'down'] }, params }, ids, 2);
  const got = tokenLosses(merged.config, merged.weights, null, ids, 2);
  for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-4, `loss ${i}: ${got[i]} vs ${want[i]}`);

  const dataFile = join(tmp, 'stories.jsonl');
  writeFileSync(dataFile, chatData);
  const r = await exp(...base, '--format', 'recipe', '--data', dataFile, '--epochs', '2', '--lr', '0.0005', '--out', join(tmp, 'recipe'));
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(readdirSync(join(tmp, 'recipe')).sort(), ['README.md', 'axolotl.yaml', 'data', 'requirements.txt', 'train_trl.py']);
  assert.equal(readFileSync(join(tmp, 'recipe/data/train.jsonl'), 'utf8'), chatData);
  const y = readFileSync(join(tmp, 'recipe/axolotl.yaml'), 'utf8');
  for (const l of ['base_model: "raincandy-u/TinyStories-656K"', 'lora_r: 4', 'lora_alpha: 8', 'lora_dropout: 0.1', 'num_epochs: 2', 'learning_rate: 0.0005', 'type: chat_template']) {
    assert.ok(y.includes(l), `axolotl.yaml lacks ${l}`);
  }
  assert.match(y, /lora_target_modules:\n {2}- q_proj\n {2}- v_proj\n {2}- down_proj\n/);
  assert.match(readFileSync(join(tmp, 'recipe/train_trl.py'), 'utf8'), /num_train_epochs=2,/);
});

test('export a `whittle train` adapter directory (adapter.json + adapter.bin); merged-gguf for a GGUF base', async () => {
  const model = await loadModel(await nodeSource(S260K_GGUF));
  const cfg = model.config; // C64 L5 NH8 NKV4 HS8 F172
  const tensors = [];
  let s = 7;
  for (let l = 0; l < cfg.layers; l++) {
    tensors.push({ name: `base_model.model.model.layers.${l}.self_attn.k_proj.lora_A.weight`, shape: [2, 64], dtype: 'f32' as const, data: randn32(128, s++, 0.2) });
    tensors.push({ name: `base_model.model.model.layers.${l}.self_attn.k_proj.lora_B.weight`, shape: [32, 2], dtype: 'f32' as const, data: randn32(64, s++, 0.2) });
  }
  const trained = {
    format: 'whittle.lora-adapter', version: 1, name: 'k-only', baseModel: { id: S260K_GGUF, shape: modelShapeSignature(cfg), arch: cfg.arch },
    datasetId: null, jobId: null, lora: { r: 2, lora_alpha: 4, lora_dropout: 0, target_modules: ['k_proj'], targets: ['k'], bias: 'none', task_type: 'CAUSAL_LM' },
    tensors, hyperparameters: { epochs: 1, learningRate: 0.001 }, metrics: {}, history: [], createdAt: 0,
  } as unknown as TrainedAdapter;
  const dir = join(tmp, 'trained');
  await writeAdapterFiles(dir, trained);
  const r = await exp('--model', S260K_GGUF, '--adapter', dir, '--format', 'merged-gguf', '--out', join(tmp, 'm.gguf'));
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /adapter {2}k-only: rank 2, alpha 4, targets k/);
  const m = await loadModel(await nodeSource(join(tmp, 'm.gguf')));
  const params = new Map<string, { A: Float32Array; B: Float32Array }>();
  for (let l = 0; l < cfg.layers; l++) params.set(`${l}.k`, { A: tensors[2 * l].data, B: tensors[2 * l + 1].data });
  const ids = randomIds(cfg.vocab, 10, 4);
  const want = tokenLosses(cfg, model.weights, { config: { rank: 2, alpha: 4, dropout: 0, targets: ['k'] }, params }, ids, 2);
  const got = tokenLosses(m.config, m.weights, null, ids, 2);
  for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-4, `loss ${i}`);
  // the same adapter as PEFT: HF orientation (un-permuted k rows)
  const p = await exp('--model', S260K_GGUF, '--adapter', dir, '--format', 'peft', '--base-id', 'karpathy/tinyllamas', '--out', join(tmp, 'trained-peft'));
  assert.equal(p.code, 0, p.out);
  assert.equal(JSON.parse(readFileSync(join(tmp, 'trained-peft/adapter_config.json'), 'utf8')).base_model_name_or_path, 'karpathy/tinyllamas');
});

test('export errors: usage, missing paths, non-empty output, wrong adapter', async () => {
  const adapterDir = join(tmp, 'peft-err');
  peftDir(adapterDir);
  await rejects(runExport(['--model', TS656K, '--adapter', adapterDir, '--out', join(tmp, 'x')], io().io), /--format must be one of peft, gguf, merged, merged-gguf, recipe/);
  await assert.rejects(runExport(['--model', TS656K, '--format', 'peft', '--out', join(tmp, 'x')], io().io), UsageError);
  await rejects(runExport(['--model', TS656K, '--adapter', adapterDir, '--format', 'gguf', '--dtype', 'bf16', '--out', join(tmp, 'x.gguf')], io().io), /--dtype bf16 is not available for GGUF output/);
  await rejects(runExport(['--model', TS656K, '--adapter', adapterDir, '--format', 'recipe', '--out', join(tmp, 'x')], io().io), /--format recipe needs --data/);
  await rejects(runExport(['--model', TS656K, '--adapter', join(tmp, 'nope'), '--format', 'peft', '--out', join(tmp, 'x')], io().io), /nope: no such directory/);
  await rejects(runExport(['--model', TS656K, '--adapter', TS656K, '--format', 'peft', '--out', join(tmp, 'x')], io().io), /not an adapter directory: expected adapter_config\.json/);
  await rejects(runExport(['--model', TS656K, '--adapter', adapterDir, '--format', 'merged-gguf', '--out', join(tmp, 'y.gguf')], io().io), /--format merged-gguf needs a GGUF base/);
  await rejects(runExport(['--model', S260K_GGUF, '--adapter', adapterDir, '--format', 'peft', '--out', join(tmp, 'x')], io().io), /this adapter was made for a different base model \(adapter_config\.json says raincandy-u\/TinyStories-656K\)/);
  mkdirSync(join(tmp, 'full'), { recursive: true });
  writeFileSync(join(tmp, 'full/keep.txt'), 'x');
  await rejects(runExport(['--model', TS656K, '--adapter', adapterDir, '--format', 'peft', '--out', join(tmp, 'full')], io().io), /full is a non-empty directory \(use --force to write into it\)/);
  assert.equal((await exp('--model', TS656K, '--adapter', adapterDir, '--format', 'peft', '--force', '--out', join(tmp, 'full'))).code, 0);
});
