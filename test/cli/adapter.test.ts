// `whittle logits` / `whittle generate` with --adapter DIR (and --merge), as child processes on the
// real models in ../shared/models:
// - tinystories-656k (HF) + a random adapter (every target, B ≠ 0) written by exportPeft: the logits
//   differ from the base's and equal ref_logits on the host-merged weights, unmerged and --merge;
//   the same tensors as a `whittle train` output directory (adapter.json + adapter.bin) give the
//   same logits; generate --greedy: unmerged == --merge tokens, ≠ the base's; the JSON names it;
// - stories260K (GGUF, q/k rows in llama.cpp order) + a q/k adapter trained in that order, exported
//   as PEFT (HF order) and permuted back on load: logits == ref_logits on the merged GGUF weights;
// - errors: a mis-shaped PEFT tensor (exit 1, the tensor named with expected vs actual shape), an
//   adapter of another base, a missing directory, --merge without --adapter (exit 2).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from '../harness.ts';
import type { GenerateReport } from '../../src/cli/generate.ts';
import { adapterFromParams } from '../../src/export/adapter.ts';
import { exportPeft } from '../../src/export/peft.ts';
import type { LlamaConfig, LoraConfig } from '../../src/model/config.ts';
import { loadModel } from '../../src/model/load.ts';
import type { LoraParams } from '../../src/model/lora.ts';
import { mergeLora } from '../../src/model/merge.ts';
import { writeSafetensors } from '../../src/model/safetensors.ts';
import { nodeSource } from '../../src/model/source-node.ts';
import { ref_logits } from '../../src/ref/model.ts';
import { modelShapeSignature } from '../../src/store/adapters.ts';
import type { TrainedAdapter } from '../../src/train/adapter.ts';
import { writeAdapterFiles } from '../../src/train/node.ts';
import { HF_MODULE, HF_PARENT } from '../../src/export/adapter.ts';
import { S260K_GGUF, TS656K } from '../model/fixtures.ts';
import { ALL_TARGETS, randomLora } from '../model/tiny.ts';
import { assertClose, closeness } from '../util.ts';

const tmp = mkdtempSync(join(tmpdir(), 'whittle-cli-adapter-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

function whittle(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || '/tmp' };
  const r = spawnSync(process.execPath, ['bin/whittle.mjs', ...args], { env, encoding: 'utf8', timeout: 5 * 60_000, maxBuffer: 256 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface LogitsJson {
  ids: number[];
  logits: number[][];
  adapter?: { name: string; mode: string; rank: number; targets: string[] };
}

function logits(model: string, ids: number[], extra: string[] = []): LogitsJson {
  const r = whittle(['logits', '--model', model, '--ids', ids.join(','), '--json', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** Write a PEFT directory for `params` (in cfg's orientation) with exportPeft; returns the directory. */
async function writePeft(dir: string, cfg: LlamaConfig, lora: LoraConfig, params: LoraParams, nameOrPath: string): Promise<string> {
  const a = adapterFromParams(cfg, lora, params, { name: 'rand', nameOrPath, format: null });
  await exportPeft(a, cfg, async (name, bytes) => {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), bytes);
  });
  return dir;
}

/** The largest |a − b| over two (T, V) logit tables. */
function maxDiff(a: number[][], b: ArrayLike<number>): number {
  return closeness(a.flat(), b, 0, 0).maxAbs;
}

const IDS_656K = [1, 147, 201, 282, 57, 13, 400, 99, 1024, 7];
const LORA: LoraConfig = { rank: 4, alpha: 8, dropout: 0.1, targets: ALL_TARGETS };

test('whittle logits --adapter (PEFT, tinystories-656k): differs from the base, == ref on the merged weights; --merge too', async () => {
  const m = await loadModel(await nodeSource(TS656K));
  const cfg = m.config;
  const params = randomLora(cfg, LORA, 3, 0.2);
  const dir = await writePeft(join(tmp, 'peft-656k'), cfg, LORA, params, 'raincandy-u/TinyStories-656K');
  const want = ref_logits(cfg, mergeLora(cfg, m.weights, LORA, params), IDS_656K);
  const base = logits(TS656K, IDS_656K);
  assert.equal(base.adapter, undefined);
  const un = logits(TS656K, IDS_656K, ['--adapter', dir]);
  assert.deepEqual(un.ids, IDS_656K);
  assert.equal(un.adapter?.mode, 'unmerged');
  assert.equal(un.adapter?.rank, 4);
  assert.deepEqual(un.adapter?.targets, ALL_TARGETS);
  const gap = maxDiff(base.logits, want);
  console.log(`  base vs tuned reference: max |Δlogit| ${gap.toFixed(3)}; unmerged vs reference ${maxDiff(un.logits, want).toExponential(2)}`);
  assert.ok(gap > 0.5, `the adapter changes the logits (max |Δ| ${gap})`);
  assertClose('unmerged vs ref(merged weights)', un.logits.flat(), want, { atol: 2e-4, rtol: 1e-4 });
  const mg = logits(TS656K, IDS_656K, ['--adapter', dir, '--merge']);
  assert.equal(mg.adapter?.mode, 'merged');
  assertClose('--merge vs ref(merged weights)', mg.logits.flat(), want, { atol: 2e-4, rtol: 1e-4 });

  // the same tensors as a `whittle train` output directory
  const tensors = [];
  for (let l = 0; l < cfg.layers; l++) {
    for (const t of ALL_TARGETS) {
      const p = params.get(`${l}.${t}`)!;
      const name = (w: 'A' | 'B') => `base_model.model.model.layers.${l}.${HF_PARENT[t]}.${HF_MODULE[t]}.lora_${w}.weight`;
      tensors.push({ name: name('A'), shape: [4, p.A.length / 4], dtype: 'f32' as const, data: p.A });
      tensors.push({ name: name('B'), shape: [p.B.length / 4, 4], dtype: 'f32' as const, data: p.B });
    }
  }
  const trained = {
    format: 'whittle.lora-adapter', version: 1, name: 'trained-656k',
    baseModel: { id: TS656K, shape: modelShapeSignature(cfg), arch: cfg.arch, ropeStyle: cfg.ropeStyle },
    datasetId: null, jobId: null,
    lora: { r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: ALL_TARGETS.map((t) => HF_MODULE[t]), targets: ALL_TARGETS, bias: 'none', task_type: 'CAUSAL_LM' },
    tensors, hyperparameters: {}, metrics: {}, history: [], createdAt: 0,
  } as unknown as TrainedAdapter;
  const tdir = join(tmp, 'trained-656k');
  await writeAdapterFiles(tdir, trained);
  const tr = logits(TS656K, IDS_656K, ['--adapter', tdir]);
  assert.equal(tr.adapter?.name, 'trained-656k');
  assertClose('whittle-train dir vs ref', tr.logits.flat(), want, { atol: 2e-4, rtol: 1e-4 });

  // the text form names the adapter
  const txt = whittle(['logits', '--model', TS656K, '--ids', IDS_656K.join(','), '--adapter', dir, '--top', '2']);
  assert.equal(txt.code, 0, txt.stderr);
  assert.match(txt.stdout, /^adapter rand: rank 4, alpha 8, targets q,k,v,o,gate,up,down \(unmerged\)$/m);
});

test('whittle generate --adapter: greedy unmerged == --merge, ≠ the base; the JSON and stderr name the adapter', () => {
  const dir = join(tmp, 'peft-656k'); // from the test above
  const gen = (extra: string[]): GenerateReport => {
    const r = whittle(['generate', '--model', TS656K, '--ids', '1', '--max-tokens', '24', '--greedy', '--json', ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const base = gen([]), un = gen(['--adapter', dir]), mg = gen(['--adapter', dir, '--merge']);
  assert.equal(base.adapter, null);
  assert.equal(base.stats.adapter, 'none');
  assert.equal(un.stats.adapter, 'unmerged');
  assert.equal(mg.stats.adapter, 'merged');
  assert.equal(un.adapter?.name, 'rand');
  assert.equal(un.adapter?.path, dir);
  assert.deepEqual(un.ids, mg.ids, 'unmerged and merged greedy tokens agree (f32 base)');
  assert.notDeepEqual(un.ids, base.ids, 'the adapter changes the continuation');
  const s = whittle(['generate', '--model', TS656K, '--ids', '1', '--max-tokens', '4', '--greedy', '--adapter', dir]);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stderr, /^\[adapter rand: rank 4, alpha 8, targets q,k,v,o,gate,up,down \(unmerged\)\]$/m);
  assert.match(s.stderr, /; f32; adapter rand \(unmerged\); seed/);
});

test('whittle logits --adapter on a GGUF base (stories260K, q/k in llama.cpp order): PEFT q/k adapter == ref on the merged weights', async () => {
  const m = await loadModel(await nodeSource(S260K_GGUF));
  const cfg = m.config;
  assert.equal(cfg.ropeStyle, 'pairs');
  const lora: LoraConfig = { rank: 2, alpha: 4, dropout: 0, targets: ['q', 'k', 'down'] };
  const params = randomLora(cfg, lora, 5, 0.3); // in the GGUF (pairs) orientation, as trained on this base
  const dir = await writePeft(join(tmp, 'peft-260k'), cfg, lora, params, 'karpathy/tinyllamas');
  const ids = [1, 403, 407, 261, 378, 30, 200];
  const want = ref_logits(cfg, mergeLora(cfg, m.weights, lora, params), ids);
  const un = logits(S260K_GGUF, ids, ['--adapter', dir]);
  assert.ok(maxDiff(logits(S260K_GGUF, ids).logits, want) > 0.1, 'the adapter changes the logits');
  assertClose('GGUF base, unmerged vs ref', un.logits.flat(), want, { atol: 2e-4, rtol: 1e-4 });
  assertClose('GGUF base, --merge vs ref', logits(S260K_GGUF, ids, ['--adapter', dir, '--merge']).logits.flat(), want, { atol: 2e-4, rtol: 1e-4 });
});

test('--adapter errors: a wrong-shape tensor names it (expected vs got), another base, no directory, --merge alone', () => {
  // tinystories-656k: q_proj is (128, 128); this lora_B is (100, 4)
  const dir = join(tmp, 'bad-shape');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'adapter_model.safetensors'), writeSafetensors([
    { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', shape: [4, 128], data: new Float32Array(512) },
    { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', shape: [100, 4], data: new Float32Array(400) },
  ], { format: 'pt' }));
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj'], layers_to_transform: [0] }));
  for (const cmd of [['logits', '--ids', '1,2,3'], ['generate', '--ids', '1', '--max-tokens', '3']]) {
    const r = whittle([cmd[0], '--model', TS656K, ...cmd.slice(1), '--adapter', dir]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`^whittle ${cmd[0]}: .*tensor 'base_model\\.model\\.model\\.layers\\.0\\.self_attn\\.q_proj\\.lora_B\\.weight' has shape \\[100, 4\\], expected \\[128, 4\\]`, 'm'));
  }
  // the stories260K adapter of the previous test on tinystories-656k
  const other = whittle(['logits', '--model', TS656K, '--ids', '1,2', '--adapter', join(tmp, 'peft-260k')]);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /has shape \[2, 64\], expected \[2, 128\] .*different base model \(adapter_config\.json says karpathy\/tinyllamas\)/);
  const none = whittle(['logits', '--model', TS656K, '--ids', '1,2', '--adapter', join(tmp, 'nope')]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /nope: no such directory/);
  const merge = whittle(['generate', '--model', TS656K, '--ids', '1', '--merge']);
  assert.equal(merge.code, 2);
  assert.match(merge.stderr, /--merge needs --adapter DIR/);
});
