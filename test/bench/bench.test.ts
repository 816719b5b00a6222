// `whittle bench --tiny --quick --json --no-torch` as a child process: the JSON document has every
// section with positive, finite figures, the file from --out matches stdout, and the markdown
// renders; the FLOP counter against a hand count; `whittle profile` on the tiny shape. No timing
// assertions (CPU drivers on shared machines are noisy).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../harness.ts';
import { type BenchReport, goals } from '../../src/bench/run.ts';
import { renderMarkdown } from '../../src/bench/report.ts';
import { trainStepFlops } from '../../src/bench/flops.ts';
import { BENCH_LORA, SHAPES, paramCount } from '../../src/bench/shapes.ts';
import type { Stat } from '../../src/bench/stats.ts';

function whittle(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/whittle.mjs', ...args], {
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || '/tmp' }, encoding: 'utf8', timeout: 5 * 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const positive = (name: string, x: unknown) => assert.ok(typeof x === 'number' && Number.isFinite(x) && x > 0, `${name} is a positive number (got ${x})`);
function positiveStat(name: string, s: Stat) {
  positive(`${name}.median`, s.median);
  positive(`${name}.min`, s.min);
  positive(`${name}.max`, s.max);
  assert.ok(s.min <= s.median && s.median <= s.max, `${name}: min ≤ median ≤ max`);
  assert.ok(s.runs.length >= 2, `${name}: several runs`);
}

test('whittle bench --tiny --quick --json --no-torch writes a complete report', () => {
  const dir = mkdtempSync(join(tmpdir(), 'whittle-bench-'));
  const out = join(dir, 'bench.json');
  const r = whittle(['bench', '--tiny', '--quick', '--json', '--no-torch', '--quiet', '--out', out]);
  assert.equal(r.code, 0, `exit code (stderr: ${r.stderr.slice(-2000)})`);
  let rep: BenchReport;
  try {
    rep = JSON.parse(r.stdout);
  } catch {
    assert.fail(`stdout is not one JSON object:\n${r.stdout.slice(0, 2000)}\n${r.stderr.slice(-2000)}`);
  }
  assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), rep, '--out holds the same document');
  assert.equal(rep.schema, 'whittle-bench/1');
  assert.equal(rep.mode, 'tiny');
  assert.ok(rep.adapter && typeof rep.adapter.description === 'string', 'adapter described');
  assert.ok(!Number.isNaN(Date.parse(rep.date)), 'ISO date');
  assert.match(rep.command, /whittle bench/);
  assert.equal(rep.host.loadavgStart.length, 3);
  positive('host.cpus', rep.host.cpus);
  assert.equal(rep.lora.rank, 16);
  assert.deepEqual(rep.lora.targets, ['q', 'k', 'v', 'o', 'gate', 'up', 'down']);

  // matmul
  assert.ok(rep.matmul.results.length >= 8, 'f32/f16/q8/q4 × forward/backward');
  for (const m of rep.matmul.results) positiveStat(`matmul ${m.format} ${m.op}`, m.gflops);
  positive('matmul.peakF32.gflops', rep.matmul.peakF32.gflops);
  for (const f of ['f32', 'f16', 'q8', 'q4']) positive(`matmul.byFormat.${f}.shareOfF32Peak`, rep.matmul.byFormat[f].shareOfF32Peak);

  // driver ceilings
  positiveStat('driver fmaGflops', rep.driver.fmaGflops);
  positiveStat('driver loadNsPerVec4', rep.driver.loadNsPerVec4);
  positiveStat('driver dispatchUs', rep.driver.dispatchUs);

  // training
  assert.ok(rep.training.length >= 2, 'training cases');
  for (const t of rep.training) {
    const n = `training ${t.model} ${t.quant}`;
    positiveStat(`${n} stepMs`, t.stepMs);
    positiveStat(`${n} tokensPerSecond`, t.tokensPerSecond);
    positiveStat(`${n} gflops`, t.gflops);
    positive(`${n} flops.total`, t.flops.total);
    positive(`${n} trainableParams`, t.trainableParams);
    positive(`${n} memory.allocatedAtBuild`, t.memory.allocatedAtBuild);
    positive(`${n} memory.allocatedAfterStep`, t.memory.allocatedAfterStep);
    positive(`${n} memory.planned`, t.memory.planned);
    positive(`${n} memory.modelReport`, t.memory.modelReport);
    assert.ok(Math.abs(t.memory.plannedError) < 0.01, `${n}: allocated within 1% of the plan (${t.memory.plannedError})`);
    assert.equal(t.tokensPerStep, t.batch * t.seq);
    assert.ok(Number.isFinite(t.loss), `${n}: finite loss`);
    assert.equal(t.ratioVsPytorch, null, 'no torch ratio with --no-torch');
  }
  assert.equal(rep.torch.cases.length, 0);
  assert.ok(rep.notes.some((s) => s.includes('--no-torch')), 'the report says the peer was skipped');

  // memory + inference
  assert.ok(rep.memory.length >= 1);
  for (const m of rep.memory) {
    positive('memory.planned', m.planned);
    positive('memory.allocatedAtBuild', m.allocatedAtBuild);
  }
  assert.ok(rep.inference.length >= 1);
  for (const x of rep.inference) {
    positiveStat('inference prefill', x.prefillTokensPerSecond);
    positiveStat('inference decode', x.decodeTokensPerSecond);
    positive('inference bytes', x.bytes);
    // on llvmpipe in Node the case also ran on the inline device (driverThreads 0)
    if (/llvmpipe/i.test(rep.adapter.description)) {
      assert.ok(x.inline, 'the inline-driver run is there on llvmpipe');
      positiveStat('inline prefill', x.inline.prefillTokensPerSecond);
      positiveStat('inline decode', x.inline.decodeTokensPerSecond);
    }
  }
  const peer = rep.inference.find((x) => x.quant === 'f32');
  assert.ok(peer?.onnxruntimeWeb, 'the f32 inference case has the onnxruntime-web peer');
  positiveStat('onnxruntime-web decode', peer.onnxruntimeWeb.decodeTokensPerSecond);
  positive('decode_ratio_vs_onnxruntime_web', peer.decode_ratio_vs_onnxruntime_web);
  const best = Math.max(peer.decodeTokensPerSecond.median, peer.inline?.decodeTokensPerSecond.median ?? 0);
  assert.equal(peer.decode_ratio_vs_onnxruntime_web, best / peer.onnxruntimeWeb.decodeTokensPerSecond.median, 'the ratio uses our best decode');
  assert.equal(peer.decodeBest, peer.inline && peer.inline.decodeTokensPerSecond.median > peer.decodeTokensPerSecond.median ? 'inline' : 'default');

  // goals and markdown
  assert.ok(rep.goals.some((g) => g.goal.includes('PyTorch') && g.met === null), 'training goal is n/a without torch');
  assert.ok(rep.goals.some((g) => g.goal.includes('quantized matmul') && typeof g.met === 'boolean'));
  const md = renderMarkdown(rep);
  for (const h of ['## Training', '## Matmul', '## Driver ceilings', '## GPU memory', '## Inference', '## Goals', 'decode ratio vs onnxruntime-web']) assert.ok(md.includes(h), `markdown has ${h}`);

  // the browser part (run by the full bench, e2e/bench.spec.ts measures it): rendered from this run's own
  // figures put in its place — its tables, its driver ceilings beside the Node adapter's, and its goal rows
  const st = peer.decodeTokensPerSecond, slow = { ...st, median: st.median / 10 };
  const withBrowser: BenchReport = {
    ...rep,
    browser: {
      userAgent: 'HeadlessChrome', adapter: 'google swiftshader', ours: peer, onnxruntimeWeb: peer.onnxruntimeWeb!, decodeRatio: 0.25,
      onnxruntimeWebgpu: { prefillTokensPerSecond: slow, decodeTokensPerSecond: slow, runtime: 'onnxruntime-web (WebGPU, browser)' }, decodeRatioWebgpu: 10,
      driver: rep.driver, train: null, model: 'tinystories-656k', prompt: 16, gen: 8, runs: 1,
    },
  };
  const gs = goals(withBrowser);
  assert.ok(gs.some((g) => g.goal.includes('same WebGPU adapter') && g.met === true && g.detail.includes('10.00×')), gs.map((g) => g.goal).join('; '));
  assert.ok(gs.some((g) => g.goal.includes('on the same model') && g.met === false && g.detail.includes('0.250×')));
  const bmd = renderMarkdown({ ...withBrowser, goals: gs });
  for (const h of ['## Inference in the browser', "WebGPU execution provider on the same adapter", "Driver ceilings of the page's adapter (google swiftshader", '10.00×']) {
    assert.ok(bmd.includes(h), `browser markdown has ${h}`);
  }
  const failed = renderMarkdown({ ...withBrowser, browser: { ...withBrowser.browser!, onnxruntimeWebgpu: { error: 'no adapter\nstack' }, decodeRatioWebgpu: null } });
  assert.ok(failed.includes('did not run: no adapter') && !failed.includes('stack'), 'a failed WebGPU peer renders its error, first line');
});

test('trainStepFlops matches a hand count on the tiny shape', () => {
  const cfg = SHAPES.tiny, B = 2, T = 16, N = B * T, R = BENCH_LORA.rank;
  const f = trainStepFlops(cfg, BENCH_LORA, B, T);
  const C = 64, QD = 64, KVD = 32, F = 128, V = 256, L = 2, HS = 16, NH = 4;
  const lin = [[QD, C], [KVD, C], [KVD, C], [C, QD], [F, C], [F, C], [C, F]];
  const perLayer = lin.reduce((a, [o, i]) => a + o * i, 0);
  assert.equal(f.baseForward, 2 * N * perLayer * L);
  // input grads of every linear but layer 0's q, k, v
  assert.equal(f.baseInputGrad, 2 * N * (perLayer * L - (QD * C + 2 * KVD * C)));
  assert.equal(f.lora, lin.reduce((a, [o, i]) => a + 6 * N * R * (i + o), 0) * L - 3 * 2 * N * R * C);
  assert.equal(f.attention, L * 12 * (B * NH * (T * (T + 1)) / 2) * HS);
  assert.equal(f.lmHead, 4 * N * C * V);
  assert.equal(f.total, f.baseForward + f.baseInputGrad + f.lora + f.attention + f.lmHead);
  // ≈ 4·N·(linear params) + …: the base dominates on a real shape
  const s = SHAPES['smollm2-135m'], fs = trainStepFlops(s, BENCH_LORA, 2, 64);
  const ratio = fs.total / (4 * 128 * paramCount(s));
  assert.ok(ratio > 0.9 && ratio < 1.2, `SmolLM2-135M step ≈ 4·N·params (ratio ${ratio})`);
});

test('whittle profile --shape tiny prints kernels sorted by time', () => {
  const r = whittle(['profile', '--shape', 'tiny', '--batch', '2', '--seq', '16', '--json']);
  assert.equal(r.code, 0, `exit code (stderr: ${r.stderr.slice(-2000)})`);
  const p = JSON.parse(r.stdout) as { kernels: { kernel: string; msPerStep: number; dispatchesPerStep: number }[]; gpuMsPerStep: number; droppedDispatches: number };
  assert.ok(p.kernels.length >= 5, 'several kernels');
  positive('gpuMsPerStep', p.gpuMsPerStep);
  assert.equal(p.droppedDispatches, 0);
  for (let i = 1; i < p.kernels.length; i++) assert.ok(p.kernels[i - 1].msPerStep >= p.kernels[i].msPerStep, 'sorted by time');
  assert.ok(p.kernels.some((k) => k.kernel.includes('linear')), 'linear kernels profiled');
  assert.ok(p.kernels.some((k) => k.kernel.includes('attention')), 'attention profiled');
  const usage = whittle(['profile', '--shape', 'nope']);
  assert.equal(usage.code, 2, 'unknown shape is a usage error');
});

test('whittle profile --decode: per-kernel GPU time per token of the KV-cache decode path', () => {
  const r = whittle(['profile', '--shape', 'tiny', '--quant', 'q4', '--decode', '3', '--json']);
  assert.equal(r.code, 0, `exit code (stderr: ${r.stderr.slice(-2000)})`);
  const p = JSON.parse(r.stdout) as { mode: string; steps: number; dispatchesPerToken: number; wallMsPerToken: number; gpuMsPerToken: number; droppedDispatches: number;
    kernels: { kernel: string; usPerToken: number; callsPerToken: number }[] };
  assert.equal(p.mode, 'decode');
  assert.equal(p.steps, 3);
  positive('gpuMsPerToken', p.gpuMsPerToken);
  positive('wallMsPerToken', p.wallMsPerToken);
  assert.equal(p.droppedDispatches, 0);
  const calls = p.kernels.reduce((a, k) => a + k.callsPerToken, 0);
  assert.equal(Math.round(calls), p.dispatchesPerToken, 'every dispatch of a token is in the profile');
  assert.ok(p.kernels.some((k) => k.kernel.includes('attention_decode')) && p.kernels.some((k) => k.kernel.includes('argmax')), p.kernels.map((k) => k.kernel).join(', '));
  for (let i = 1; i < p.kernels.length; i++) assert.ok(p.kernels[i - 1].usPerToken >= p.kernels[i].usPerToken, 'sorted by time');
  // the norms before q, k, v and gate, up run inside the q4 matvec (sg1x32 on these drivers' subgroups);
  // --no-fused-norm puts them back as their own dispatches: two more per layer
  const un = whittle(['profile', '--shape', 'tiny', '--quant', 'q4', '--decode', '2', '--json', '--no-fused-norm']);
  assert.equal(un.code, 0, un.stderr.slice(-2000));
  const pu = JSON.parse(un.stdout) as { dispatchesPerToken: number; kernels: { kernel: string }[] };
  assert.equal(pu.dispatchesPerToken - p.dispatchesPerToken, 2 * SHAPES.tiny.layers, `${pu.dispatchesPerToken} vs ${p.dispatchesPerToken}`);
  assert.ok(p.kernels.some((k) => k.kernel.includes('_rmsnorm_')) && !pu.kernels.some((k) => k.kernel.includes('_rmsnorm_')), 'the normalizing matvec only when fused');
  const badSplit = whittle(['profile', '--shape', 'tiny', '--decode', '2', '--argmax-split', 'maybe']);
  assert.equal(badSplit.code, 2, '--argmax-split takes auto, on or off');
  assert.match(badSplit.stderr, /--argmax-split must be auto, on or off/);
  const bad = whittle(['profile', '--shape', 'tiny', '--decode', '2', '--driver-threads', 'many']);
  assert.equal(bad.code, 2, '--driver-threads needs an integer');
  assert.match(bad.stderr, /driver-threads/);
});
