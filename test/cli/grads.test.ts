// `whittle grads` (src/cli/grads.ts) against the CPU reference (src/ref/model.ts ref_loss, f64, no
// dropout) on the real models in ../shared/models:
// - tinystories-656k + a random adapter on every target (B ≠ 0, lora_dropout 0.1 that must be
//   ignored) written with exportPeft: the printed loss and every gradient (28 tensors, PEFT key +
//   ".grad", shapes (r, in) / (out, r)) match the reference on a 2-row batch whose loss_mask skips
//   some targets;
// - stories260K (GGUF, q/k rows in llama.cpp order) + a q/k/down adapter whose file names its
//   tensors `…lora_A.default.weight`: the gradients come back under those names, in Hugging Face
//   orientation (the reference's dB of q/k un-permuted);
// - errors: unequal rows, no counted target, an id outside the vocabulary, a bad mask value (exit 1,
//   a clear message); a missing flag (exit 2).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from '../harness.ts';
import { runGrads } from '../../src/cli/grads.ts';
import { adapterFromParams, peftName, permuteRows } from '../../src/export/adapter.ts';
import { exportPeft } from '../../src/export/peft.ts';
import type { LlamaConfig, LoraConfig, LoraTarget } from '../../src/model/config.ts';
import { loadModel } from '../../src/model/load.ts';
import type { LoraParams } from '../../src/model/lora.ts';
import { parseSafetensors, writeSafetensors } from '../../src/model/safetensors.ts';
import { nodeSource } from '../../src/model/source-node.ts';
import { type Batch, ref_loss } from '../../src/ref/model.ts';
import { XENT_IGNORE } from '../../src/ref/xent.ts';
import { S260K_GGUF, TS656K } from '../model/fixtures.ts';
import { ALL_TARGETS, randomLora } from '../model/tiny.ts';
import { assertClose } from '../util.ts';

const tmp = mkdtempSync(join(tmpdir(), 'whittle-grads-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

function whittle(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || '/tmp' };
  const r = spawnSync(process.execPath, ['bin/whittle.mjs', ...args], { env, encoding: 'utf8', timeout: 5 * 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function writePeft(dir: string, cfg: LlamaConfig, lora: LoraConfig, params: LoraParams): Promise<string> {
  await exportPeft(adapterFromParams(cfg, lora, params, { name: 'rand' }), cfg, async (name, bytes) => {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), bytes);
  });
  return dir;
}

/** The semantics, written out independently: position t predicts t+1 where mask[t+1] = 1. */
function refBatch(ids: number[][], mask: number[][]): Batch {
  const B = ids.length, T = ids[0].length, N = B * T;
  const b: Batch = {
    B, T, ids: Uint32Array.from(ids.flat()), targets: new Uint32Array(N).fill(XENT_IGNORE), valid: new Uint32Array(N).fill(1),
    pos: Uint32Array.from({ length: N }, (_, n) => n % T), lossWeights: new Float32Array(N),
  };
  for (let r = 0; r < B; r++) {
    for (let t = 0; t + 1 < T; t++) {
      if (mask[r][t + 1] !== 1) continue;
      b.targets[r * T + t] = ids[r][t + 1];
      b.lossWeights[r * T + t] = 1;
    }
  }
  return b;
}

interface GradsJson { loss: number; tokens: number; rows: number; seq: number; tensors: number; out: string; adapter: { rank: number; targets: string[] } }

function grads(model: string, adapter: string, tokens: object, name: string): { json: GradsJson; st: ReturnType<typeof parseSafetensors> } {
  const tokFile = join(tmp, `${name}.json`), out = join(tmp, `${name}.safetensors`);
  writeFileSync(tokFile, JSON.stringify(tokens));
  const r = whittle(['grads', '--model', model, '--adapter', adapter, '--tokens', tokFile, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout) as GradsJson;
  assert.equal(json.out, out);
  return { json, st: parseSafetensors(out, new Uint8Array(readFileSync(out))) };
}

/** Gradients within tolerance of the reference: atol relative to the tensor's largest |g|. */
function closeGrad(name: string, got: Float32Array, ref: ArrayLike<number>): void {
  let max = 0;
  for (let i = 0; i < ref.length; i++) max = Math.max(max, Math.abs(ref[i]));
  assert.ok(max > 0, `${name}: the reference gradient is not all zero`);
  assertClose(name, got, ref, { atol: 2e-5 * max, rtol: 1e-3 });
}

test('whittle grads on tinystories-656k (every target): loss and all 28 gradients == ref_loss (no dropout)', async () => {
  const m = await loadModel(await nodeSource(TS656K));
  const cfg = m.config;
  const lora: LoraConfig = { rank: 4, alpha: 8, dropout: 0.1, targets: ALL_TARGETS };
  const params = randomLora(cfg, lora, 7, 0.2);
  const dir = await writePeft(join(tmp, 'peft-656k'), cfg, lora, params);
  const ids = [[1, 147, 201, 282, 57, 13, 400, 99, 1024, 7, 300, 12], [1, 90, 91, 700, 2000, 5, 6, 250, 33, 34, 35, 36]];
  const mask = [[0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1], [1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0]];
  const { json, st } = grads(TS656K, dir, { input_ids: ids, loss_mask: mask }, 'g656k');
  const counted = mask.flat().length - mask.length - mask.reduce((a, r) => a + r.slice(1).filter((x) => x === 0).length, 0);
  assert.equal(json.tokens, counted);
  assert.equal(json.rows, 2);
  assert.equal(json.seq, 12);
  assert.equal(json.tensors, 28);
  assert.equal(st.header.tensors.size, 28);
  assert.equal(st.header.metadata.loss, String(json.loss));

  const ref = ref_loss(cfg, m.weights, { config: lora, params, seed: 0, step: 1, train: false }, refBatch(ids, mask), { grads: true });
  console.log(`  loss ${json.loss} vs reference ${ref.loss}`);
  assertClose('loss', [json.loss], [ref.loss], { atol: 1e-5, rtol: 1e-5 });
  for (let l = 0; l < cfg.layers; l++) {
    for (const t of ALL_TARGETS) {
      const g = ref.grads.get(`${l}.${t}`)!;
      for (const w of ['A', 'B'] as const) {
        const key = `${peftName(l, t, w)}.grad`;
        const info = st.header.tensors.get(key);
        assert.ok(info, `${key} is in the file`);
        assert.deepEqual(info.shape, w === 'A' ? [4, params.get(`${l}.${t}`)!.A.length / 4] : [params.get(`${l}.${t}`)!.B.length / 4, 4]);
        assert.equal(info.dtype, 'F32');
        closeGrad(key, st.get(key), g[w]);
      }
    }
  }
});

test('whittle grads on the stories260K GGUF: names from the adapter file (.default), q/k gradients in Hugging Face order', async () => {
  const m = await loadModel(await nodeSource(S260K_GGUF));
  const cfg = m.config;
  assert.equal(cfg.ropeStyle, 'pairs');
  const targets: LoraTarget[] = ['q', 'k', 'down'];
  const lora: LoraConfig = { rank: 2, alpha: 4, dropout: 0, targets };
  const params = randomLora(cfg, lora, 11, 0.3); // in the GGUF (pairs) orientation, as trained on this base
  const dir = await writePeft(join(tmp, 'peft-260k'), cfg, lora, params);
  // rename the tensors as PEFT does for a named adapter: …lora_A.default.weight
  const file = join(dir, 'adapter_model.safetensors');
  const orig = parseSafetensors(file, new Uint8Array(readFileSync(file)));
  writeFileSync(file, writeSafetensors([...orig.header.tensors.values()].map((t) => ({
    name: t.name.replace(/\.weight$/, '.default.weight'), shape: t.shape, data: orig.get(t.name),
  })), { format: 'pt' }));

  const ids = [[1, 403, 407, 261, 378, 30, 200, 45, 46]];
  const mask = [[0, 1, 1, 1, 1, 0, 1, 1, 1]];
  const { json, st } = grads(S260K_GGUF, dir, { input_ids: ids, loss_mask: mask }, 'g260k');
  assert.equal(json.tokens, 7);
  assert.equal(st.header.tensors.size, cfg.layers * 3 * 2);
  const ref = ref_loss(cfg, m.weights, { config: lora, params, seed: 0, step: 1, train: false }, refBatch(ids, mask), { grads: true });
  assertClose('loss', [json.loss], [ref.loss], { atol: 1e-5, rtol: 1e-5 });
  for (let l = 0; l < cfg.layers; l++) {
    for (const t of targets) {
      const g = ref.grads.get(`${l}.${t}`)!;
      const heads = t === 'q' ? cfg.heads : cfg.kvHeads;
      const dB = t === 'down' ? g.B : permuteRows(Float32Array.from(g.B), heads, cfg.headDim, 2, 'half');
      const name = (w: 'A' | 'B') => peftName(l, t, w).replace(/\.weight$/, '.default.weight.grad');
      closeGrad(name('A'), st.get(name('A')), g.A);
      closeGrad(name('B'), st.get(name('B')), dB);
    }
  }
});

test('whittle grads: bad token files and missing flags', async () => {
  const dir = join(tmp, 'peft-656k'); // from the first test
  const run = async (tokens: unknown) => {
    const f = join(tmp, 'bad.json');
    writeFileSync(f, typeof tokens === 'string' ? tokens : JSON.stringify(tokens));
    return runGrads(['--model', TS656K, '--adapter', dir, '--tokens', f, '--out', join(tmp, 'bad.safetensors')], { out: () => {}, err: () => {} });
  };
  await assert.rejects(run({ input_ids: [[1, 2, 3], [1, 2]], loss_mask: [[1, 1, 1], [1, 1]] }), /input_ids row 1 has 2 tokens, row 0 has 3: rows must have equal length/);
  await assert.rejects(run({ input_ids: [[1, 2, 3]], loss_mask: [[1, 0, 0]] }), /loss_mask counts no target/);
  await assert.rejects(run({ input_ids: [[1, 2, 5000]], loss_mask: [[1, 1, 1]] }), /input_ids\[0\]\[2\] = 5000 is not a token id of this model \(0\.\.2047\)/);
  await assert.rejects(run({ input_ids: [[1, 2, 3]], loss_mask: [[1, 2, 1]] }), /loss_mask\[0\]\[1\] = 2: expected 0 or 1/);
  await assert.rejects(run({ input_ids: [[1, 2, 3]] }), /"loss_mask" must be a non-empty array of rows/);
  await assert.rejects(run('{"input_ids": [[1,'), /bad\.json: not valid JSON/);
  const f = join(tmp, 'ok.json');
  writeFileSync(f, JSON.stringify({ input_ids: [[1, 2, 3, 4]], loss_mask: [[1, 1, 1, 1]] }));
  const missing = whittle(['grads', '--model', TS656K, '--adapter', dir, '--tokens', f]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^whittle grads: --out GRADS\.safetensors is required/);
  const unequal = whittle(['grads', '--model', TS656K, '--adapter', dir, '--tokens', join(tmp, 'bad.json'), '--out', join(tmp, 'x.safetensors')]);
  assert.equal(unequal.code, 1);
  assert.match(unequal.stderr, /^whittle grads: .*bad\.json: not valid JSON/);
});
