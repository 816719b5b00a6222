// `whittle export --format onnx` (src/cli/export.ts → src/export/onnx.ts exportOnnx): the base with
// the adapter merged, as a transformers.js-style folder on disk. The folder's files are read back and
// run in onnxruntime-web (wasm, one thread) against the CPU reference on the host-merged weights:
// - tinystories-656k (HF folder) + a random PEFT adapter on every target: config.json, the source's
//   tokenizer files, generation_config.json, onnx/model.onnx; logits == ref_logits(merged), ≠ the base;
// - stories260K (GGUF, q/k in llama.cpp order) + a q/k adapter: the graph is in HF order, logits ==
//   ref_logits on the merged GGUF weights; the notes say no tokenizer files were written;
// - --dtype f16 is a usage error; a non-empty --out needs --force.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import * as ort from 'onnxruntime-web';
import { test } from '../harness.ts';
import { runExport } from '../../src/cli/export.ts';
import { UsageError } from '../../src/cli/args.ts';
import { createOnnxSession } from '../../src/export/onnx-generate.ts';
import { adapterFromParams } from '../../src/export/adapter.ts';
import { exportPeft } from '../../src/export/peft.ts';
import type { LlamaConfig, LoraConfig } from '../../src/model/config.ts';
import { loadModel } from '../../src/model/load.ts';
import type { LoraParams } from '../../src/model/lora.ts';
import { mergeLora } from '../../src/model/merge.ts';
import { nodeSource } from '../../src/model/source-node.ts';
import { ref_logits } from '../../src/ref/model.ts';
import { S260K_GGUF, TS656K } from '../model/fixtures.ts';
import { ALL_TARGETS, randomLora } from '../model/tiny.ts';

ort.env.wasm.numThreads = 1;
const tmp = mkdtempSync(join(tmpdir(), 'whittle-export-onnx-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

async function writePeft(dir: string, cfg: LlamaConfig, lora: LoraConfig, params: LoraParams): Promise<string> {
  await exportPeft(adapterFromParams(cfg, lora, params, { name: 'rand' }), cfg, async (name, bytes) => {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), bytes);
  });
  return dir;
}

async function exp(...args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await runExport(args, { out: (s) => lines.push(s), err: (s) => lines.push(`ERR ${s}`) });
  return { code, out: lines.join('\n') };
}

/** Every file under `dir`, '/'-separated relative paths → bytes. */
function folder(dir: string, root = dir, out = new Map<string, Uint8Array>()): Map<string, Uint8Array> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) folder(p, root, out);
    else out.set(relative(root, p).split('\\').join('/'), new Uint8Array(readFileSync(p)));
  }
  return out;
}

/** Logits (T, V) of one sequence from the exported folder. */
async function onnxLogits(files: Map<string, Uint8Array>, cfg: LlamaConfig, ids: number[]): Promise<Float32Array> {
  const s = await createOnnxSession(files);
  const i64 = (xs: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs, (x) => BigInt(x)), [1, xs.length]);
  const feeds: Record<string, ort.Tensor> = { input_ids: i64(ids), attention_mask: i64(ids.map(() => 1)), position_ids: i64(ids.map((_, i) => i)) };
  for (let l = 0; l < cfg.layers; l++) {
    for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, cfg.kvHeads, 0, cfg.headDim]);
  }
  const out = await s.run(feeds);
  await s.release();
  return out.logits.data as Float32Array;
}

const maxErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

test('export --format onnx (tinystories-656k + PEFT adapter): folder files; logits == ref on the merged weights', async () => {
  const m = await loadModel(await nodeSource(TS656K));
  const cfg = m.config;
  const lora: LoraConfig = { rank: 4, alpha: 8, dropout: 0, targets: ALL_TARGETS };
  const params = randomLora(cfg, lora, 5, 0.2);
  const dir = await writePeft(join(tmp, 'peft-656k'), cfg, lora, params);
  const out = join(tmp, 'onnx-656k');
  const r = await exp('--model', TS656K, '--adapter', dir, '--format', 'onnx', '--out', out);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /^wrote {4}.*onnx-656k\/onnx\/model\.onnx \(\d+\.\d MiB\)$/m);
  assert.match(r.out, /^note {5}weights are f32, with the adapter merged in/m);
  const files = folder(out);
  assert.deepEqual([...files.keys()].sort(), [
    'config.json', 'generation_config.json', 'onnx/model.onnx', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json',
  ]);
  assert.deepEqual(files.get('tokenizer.json'), new Uint8Array(readFileSync(join(TS656K, 'tokenizer.json'))), 'tokenizer copied as is');
  const config = JSON.parse(new TextDecoder().decode(files.get('config.json')));
  assert.equal(config.num_hidden_layers, cfg.layers);
  assert.equal(config['transformers.js_config'].dtype, 'fp32');

  const ids = [1, 147, 201, 282, 57, 13, 400, 99];
  const want = ref_logits(cfg, mergeLora(cfg, m.weights, lora, params), ids);
  const got = await onnxLogits(files, cfg, ids);
  const gap = maxErr(ref_logits(cfg, m.weights, ids), want);
  assert.ok(gap > 0.5, `the adapter changes the logits (max |Δ| ${gap})`);
  const err = maxErr(got, want);
  console.log(`  onnx vs ref(merged): max |Δ| ${err.toExponential(2)} (adapter moves logits by up to ${gap.toFixed(2)})`);
  assert.ok(err < 1e-4, `max |onnx − ref| = ${err}`);

  // the output directory is now non-empty; --dtype f16 is not an ONNX option
  await assert.rejects(exp('--model', TS656K, '--adapter', dir, '--format', 'onnx', '--out', out), /non-empty directory \(use --force/);
  assert.equal((await exp('--model', TS656K, '--adapter', dir, '--format', 'onnx', '--out', out, '--force')).code, 0);
  await assert.rejects(exp('--model', TS656K, '--adapter', dir, '--format', 'onnx', '--dtype', 'f16', '--out', join(tmp, 'x')),
    (e: Error) => e instanceof UsageError && /--format onnx writes f32 weights/.test(e.message));
});

test('export --format onnx (stories260K GGUF + q/k adapter): HF-order graph == ref on the merged GGUF weights; tokenizer note', async () => {
  const m = await loadModel(await nodeSource(S260K_GGUF));
  const cfg = m.config;
  assert.equal(cfg.ropeStyle, 'pairs');
  const lora: LoraConfig = { rank: 2, alpha: 4, dropout: 0, targets: ['q', 'k', 'down'] };
  const params = randomLora(cfg, lora, 9, 0.3);
  const dir = await writePeft(join(tmp, 'peft-260k'), cfg, lora, params);
  const out = join(tmp, 'onnx-260k');
  const r = await exp('--model', S260K_GGUF, '--adapter', dir, '--format', 'onnx', '--out', out);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /^note {5}the base is a GGUF file: .*no tokenizer files were written/m);
  assert.match(r.out, /^note {5}q\/k projections un-permuted/m);
  const files = folder(out);
  assert.deepEqual([...files.keys()].sort(), ['config.json', 'generation_config.json', 'onnx/model.onnx']);
  const ids = [1, 403, 407, 261, 378, 30, 200];
  const want = ref_logits(cfg, mergeLora(cfg, m.weights, lora, params), ids);
  const err = maxErr(await onnxLogits(files, cfg, ids), want);
  assert.ok(err < 1e-4, `max |onnx − ref| = ${err}`);
});
