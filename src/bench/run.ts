// `whittle bench`: the plan of cases for a mode (tiny / quick / full), running them in order, the
// PyTorch peer next to each training setting, and the goals. One JSON document (BenchReport) comes
// out; src/bench/report.ts renders it as markdown. Node only (the torch peer, the model folder).
//
// Order: matmul microbenchmark → per model: (per setting: our f32/q8/q4 steps, then torch's) →
// memory of SmolLM2-135M at seq 256 → inference. Torch runs right after our cases of the same
// setting so that both see similar machine load (the CPU drivers and torch share the same cores;
// the report records the load average before and after).
import { cpus, loadavg, platform, release } from 'node:os';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { acquireGpu, type Gpu, type GpuInfo } from '../gpu/device.ts';
import type { LlamaConfig, LlamaWeights } from '../model/config.ts';
import { loadModel } from '../model/load.ts';
import type { QFormat } from '../model/quant.ts';
import { nodeSource } from '../model/source-node.ts';
import { benchOnnxPeer } from './onnx-peer.ts';
import type { BrowserBenchResult } from './browser.ts';
import { benchInfer, type InferCase, type InferResult } from './infer.ts';
import { benchMatmul, matmulSizes, type MatmulReport } from './matmul.ts';
import { benchDriver, type DriverCeilings } from './driver.ts';
import { benchMemory, type MemoryCase, type MemoryResult } from './memory.ts';
import { BENCH_ADAMW, BENCH_LORA, paramCount, randomWeights, SHAPES } from './shapes.ts';
import { type Stat, now, stat } from './stats.ts';
import { ensureTorch, runTorch, type TorchEnv, type TorchRun } from './torch.ts';
import { benchTrain, type TrainCase, type TrainResult } from './train.ts';
import { trainStepFlops } from './flops.ts';

export const DEFAULT_MODEL = fileURLToPath(new URL('../../../shared/models/tinystories-656k', import.meta.url));

export interface BenchOptions {
  quick: boolean;
  /** a tiny random model only (tests) */
  tiny: boolean;
  /** run the PyTorch peer */
  torch: boolean;
  /** apt-get install torch when missing (as root) */
  install: boolean;
  /** also time SmolLM2-135M at the issue setting (seq 256, batch 4): minutes per step on CPU drivers */
  full135m: boolean;
  /** run the onnxruntime-web inference peer (default true) */
  onnx?: boolean;
  /** run the in-browser peer: our decode and onnxruntime-web's in one Chromium page (default: unless tiny) */
  browser?: boolean;
  /** the real small model (default ../shared/models/tinystories-656k) */
  modelPath: string;
  /** the torch peer's device: 'cpu' (default) or 'cuda' (a machine with a real GPU) */
  torchDevice?: string;
  /** the torch peer as transformers + PEFT (scripts/bench_torch.py --peft) instead of the plain LoRA */
  torchPeft?: boolean;
  /** the adapter is a real GPU: more timed steps, and SmolLM2-135M at the issue setting in every format */
  hardware?: boolean;
  /** run the per-adapter kernel trials before each training / inference case (as the app does; default: on hardware adapters) */
  tune?: boolean;
  log: (s: string) => void;
}

export interface TorchCase {
  model: string;
  setting: string;
  batch: number;
  seq: number;
  /** torch's tokens/s and ms per step (timed steps), or the error */
  tokensPerSecond?: Stat;
  stepMs?: Stat;
  /** matmul GFLOP/s from the same FLOP count as ours */
  gflops?: Stat;
  threads?: number;
  threadsTriedMs?: Record<string, number>;
  loss?: number;
  error?: string;
}

export interface ModelInfoRow {
  name: string;
  source: string;
  config: LlamaConfig;
  params: number;
}

export interface Goal {
  goal: string;
  met: boolean | null;
  /** the measured figure(s) and the margin */
  detail: string;
}

export interface BenchReport {
  schema: 'whittle-bench/1';
  date: string;
  command: string;
  mode: 'tiny' | 'quick' | 'full';
  adapter: GpuInfo;
  host: { node: string; platform: string; cpus: number; cpuModel: string; loadavgStart: number[]; loadavgEnd: number[] };
  lora: typeof BENCH_LORA;
  adamw: typeof BENCH_ADAMW;
  models: ModelInfoRow[];
  matmul: MatmulReport;
  /** what any kernel can reach on this adapter (src/bench/driver.ts) */
  driver: DriverCeilings;
  training: (TrainResult & { torchTokensPerSecond: number | null; ratioVsPytorch: number | null })[];
  torch: {
    env: TorchEnv | null; sgemm1024Gflops: number | null; blas: string | null; cases: TorchCase[]; note: string;
    /** where torch ran ('cpu', 'cuda'), the GPU's name, and which peer (plain LoRA or transformers + PEFT) */
    device?: string; deviceName?: string | null; peer?: string | null;
  };
  memory: MemoryResult[];
  inference: InferResult[];
  /** the same decode comparison inside Chromium (src/bench/browser.ts); null when not run or failed */
  browser: (BrowserBenchResult & { model: string; prompt: number; gen: number; runs: number }) | null;
  goals: Goal[];
  notes: string[];
  ms: number;
}

interface ModelPlan {
  name: string;
  load: () => Promise<{ cfg: LlamaConfig; weights: LlamaWeights; source: string }>;
  settings: { setting: string; batch: number; seq: number; quants: QFormat[]; warmup: number; steps: number }[];
  torch: boolean;
  memory: (MemoryCase & { measure: boolean })[];
  infer: Omit<InferCase, 'model'>[];
}

const QUANTS: QFormat[] = ['f32', 'q8', 'q4'];

function plan(o: BenchOptions): ModelPlan[] {
  const shape = (name: string) => async () => ({ cfg: SHAPES[name], weights: randomWeights(SHAPES[name], 1), source: `random ${name} shape` });
  if (o.tiny) {
    return [{
      name: 'tiny', load: shape('tiny'), torch: true,
      settings: [{ setting: 'tiny', batch: 2, seq: 16, quants: ['f32', 'q4'], warmup: 1, steps: 2 }],
      memory: [{ model: 'tiny', quant: 'q4', batch: 2, seq: 16, checkpointing: true, measure: true }],
      infer: [{ quant: 'f32', prompt: 8, gen: 4, runs: 2, onnx: true }],
    }];
  }
  const plans: ModelPlan[] = [];
  if (existsSync(o.modelPath)) {
    plans.push({
      name: o.modelPath.replace(/\/+$/, '').split('/').pop()!,
      load: async () => {
        const m = await loadModel(await nodeSource(o.modelPath));
        return { cfg: m.config, weights: m.weights, source: o.modelPath };
      },
      torch: true,
      settings: [
        { setting: 'small', batch: 2, seq: 64, quants: QUANTS, warmup: 2, steps: o.hardware ? 5 : 3 },
        ...(o.quick ? [] : [{ setting: 'issue', batch: 4, seq: 256, quants: QUANTS, warmup: 2, steps: o.hardware ? 5 : 3 }]),
      ],
      memory: [],
      infer: (o.quick ? ['f32'] : ['f32', 'q4']).map((quant) => ({ quant: quant as QFormat, prompt: 128, gen: 64, runs: 3, onnx: quant === 'f32' })),
    });
  }
  const mem: (MemoryCase & { measure: boolean })[] = [];
  for (const quant of QUANTS) {
    for (const [batch, checkpointing] of [[4, false], [4, true], [1, false], [1, true]] as const) {
      mem.push({ model: 'smollm2-135m', quant, batch, seq: 256, checkpointing, measure: batch === 4 && (!o.quick || quant === 'q4') });
    }
  }
  plans.push({
    name: 'smollm2-135m', load: shape('smollm2-135m'), torch: true,
    settings: [
      { setting: 'small', batch: 2, seq: 64, quants: o.quick ? ['f32', 'q4'] : QUANTS, warmup: o.quick ? 1 : 2, steps: o.quick ? 2 : 3 },
      ...(o.full135m ? [o.hardware ? { setting: 'issue', batch: 4, seq: 256, quants: QUANTS, warmup: 2, steps: 5 }
        : { setting: 'issue', batch: 4, seq: 256, quants: ['f32'] as QFormat[], warmup: 0, steps: 2 }] : []),
    ],
    memory: mem,
    infer: (o.quick ? ['f32'] : QUANTS).map((quant) => ({ quant: quant as QFormat, prompt: 64, gen: 16, runs: o.quick ? 2 : 3, onnx: quant === 'f32' && o.full135m })),
  });
  return plans;
}

/** Torch's shape argument for a config (the fields bench_torch.py reads). */
function torchShape(cfg: LlamaConfig): string {
  const { hidden, layers, heads, kvHeads, headDim, ffn, vocab, ropeTheta, eps, tiedEmbeddings } = cfg;
  return JSON.stringify({ hidden, layers, heads, kvHeads, headDim, ffn, vocab, ropeTheta, eps, tiedEmbeddings });
}

export async function runBench(gpu: Gpu, o: BenchOptions, command: string): Promise<BenchReport> {
  const t0 = now();
  const loadStart = loadavg();
  const notes: string[] = [];
  const log = o.log;
  const mode = o.tiny ? 'tiny' : o.quick ? 'quick' : 'full';
  if (!o.tiny && !existsSync(o.modelPath)) notes.push(`${o.modelPath} is missing: the real small model was skipped`);

  // inference also runs on a second device whose llvmpipe runs dispatches on its queue thread
  // (driverThreads 0): decode steps are many tiny dispatches, and the thread-pool handoff per
  // dispatch costs more than the threads give back (Node on llvmpipe only)
  let inline: Gpu | null | undefined;
  const inlineGpu = async (): Promise<Gpu | null> => {
    if (inline !== undefined) return inline;
    inline = null;
    if (gpu.info.host === 'node' && /llvmpipe/i.test(gpu.info.description)) {
      try {
        inline = await acquireGpu({ driverThreads: 0 });
      } catch (e) {
        notes.push(`second (inline llvmpipe) device not acquired: ${(e as Error).message}`);
      }
    }
    return inline;
  };

  // the PyTorch peer
  const torchPeer = [...(o.torchDevice ? ['--device', o.torchDevice] : []), ...(o.torchPeft ? ['--peft'] : [])];
  let torchEnv: TorchEnv | null = null, sgemm: number | null = null, blas: string | null = null;
  let torchPeerName: string | null = null, torchDeviceName: string | null = null;
  if (o.torch) {
    torchEnv = ensureTorch({ install: o.install, log });
    if (!torchEnv.ok) {
      notes.push(`PyTorch peer skipped: ${torchEnv.error}`);
      log(`torch: ${torchEnv.error} — reporting ours only`);
    } else {
      try {
        const r = await runTorch(['--sgemm-only', '--threads', String(cpus().length), ...torchPeer]);
        sgemm = r.sgemm1024_gflops;
        blas = torchEnv.blas ?? r.blas;
        if (r.device_name) torchDeviceName = r.device_name;
        log(`torch ${torchEnv.version}: 1024³ sgemm ${sgemm?.toFixed(1)} GFLOP/s (${r.device_name ?? `${r.threads} threads, libblas → ${blas}`})`);
      } catch (e) {
        notes.push(`torch sgemm failed: ${(e as Error).message}`);
      }
    }
  } else notes.push('PyTorch peer not run (--no-torch)');
  const torchOk = !!torchEnv?.ok;

  // matmul
  log('matmul microbenchmark…');
  const matmul = await benchMatmul(gpu, matmulSizes(o.quick, o.tiny), { runs: o.tiny ? 2 : 5, targetMs: o.tiny ? 20 : 300, log });
  log('driver ceilings (fma, vec4 load, dispatch)…');
  const driver = await benchDriver(gpu, { runs: o.tiny ? 2 : 5, tiny: o.tiny });

  const models: ModelInfoRow[] = [];
  const training: BenchReport['training'] = [];
  const torchCases: TorchCase[] = [];
  const memory: MemoryResult[] = [];
  const inference: InferResult[] = [];
  for (const p of plan(o)) {
    log(`model ${p.name}: loading…`);
    const { cfg, weights, source } = await p.load();
    models.push({ name: p.name, source, config: cfg, params: paramCount(cfg) });
    // the torch peer's weights: the same random shape, or the real model's folder
    const src = p.name === 'tiny' || p.name === 'smollm2-135m' ? ['--shape', torchShape(cfg)] : ['--model', o.modelPath];
    for (const s of p.settings) {
      const ours: TrainResult[] = [];
      for (const quant of s.quants) {
        const c: TrainCase = { model: p.name, setting: s.setting, quant, batch: s.batch, seq: s.seq, warmup: s.warmup, steps: s.steps, tune: o.tune };
        log(`train ${p.name} ${s.setting} (B=${s.batch}, T=${s.seq}) ${quant}: ${s.warmup} warm-up + ${s.steps} timed steps`);
        const r = await benchTrain(gpu, cfg, weights, c, log);
        r.shareOfPeak = matmul.peakF32.gflops > 0 ? r.gflops.median / matmul.peakF32.gflops : undefined;
        log(`  → ${r.tokensPerSecond.median.toFixed(1)} tokens/s, ${r.stepMs.median.toFixed(0)} ms/step, ${r.gflops.median.toFixed(2)} GFLOP/s`);
        ours.push(r);
      }
      let tc: TorchCase | null = null;
      if (torchOk && p.torch) {
        tc = { model: p.name, setting: s.setting, batch: s.batch, seq: s.seq };
        const steps = o.tiny ? ['--warmup', '1', '--steps', '2'] : ['--warmup', '2', '--steps', o.torchDevice && o.torchDevice !== 'cpu' ? '5' : '3'];
        log(`torch ${p.name} ${s.setting} (B=${s.batch}, T=${s.seq}) f32…`);
        try {
          const r: TorchRun = await runTorch([...src, '--batch', String(s.batch), '--seq', String(s.seq), '--rank', String(BENCH_LORA.rank),
            '--alpha', String(BENCH_LORA.alpha), '--dropout', String(BENCH_LORA.dropout), '--no-sgemm', ...steps, ...torchPeer]);
          const flops = trainStepFlops(cfg, BENCH_LORA, s.batch, s.seq).total;
          tc.stepMs = stat(r.step_ms ?? []);
          tc.tokensPerSecond = stat(r.tokens_per_s ?? []);
          tc.gflops = stat((r.step_ms ?? []).map((x) => flops / (x * 1e6)));
          tc.threads = r.threads;
          tc.threadsTriedMs = (r as TorchRun & { threads_tried_ms?: Record<string, number> }).threads_tried_ms;
          tc.loss = r.loss;
          if (r.peer) torchPeerName = r.peer;
          log(`  → torch ${tc.tokensPerSecond.median.toFixed(1)} tokens/s, ${tc.stepMs.median.toFixed(0)} ms/step (${r.threads} threads)`);
        } catch (e) {
          tc.error = (e as Error).message;
          notes.push(`torch ${p.name} ${s.setting}: ${tc.error}`);
          log(`  torch failed: ${tc.error}`);
        }
        torchCases.push(tc);
      }
      for (const r of ours) {
        const theirs = tc?.tokensPerSecond?.median ?? null;
        training.push({ ...r, torchTokensPerSecond: theirs, ratioVsPytorch: theirs ? r.tokensPerSecond.median / theirs : null });
      }
    }
    if (p.memory.length) {
      const measured = p.memory.filter((m) => m.measure);
      const rest = p.memory.filter((m) => !m.measure);
      memory.push(...(await benchMemory(gpu, cfg, weights, measured, log)), ...(await benchMemory(gpu, cfg, null, rest, log)));
    }
    const torchDecode = new Map<string, InferResult['torch']>(); // null: it failed (noted once)
    for (const ic of p.infer) {
      const x = await benchInfer(gpu, cfg, weights, { model: p.name, ...ic, tune: o.tune }, log);
      const ig = await inlineGpu();
      if (ig) {
        log(`infer ${p.name} ${ic.quant} again with llvmpipe running dispatches on its queue thread (driverThreads 0)…`);
        const y = await benchInfer(ig, cfg, weights, { model: p.name, ...ic }, log);
        x.inline = { prefillTokensPerSecond: y.prefillTokensPerSecond, decodeTokensPerSecond: y.decodeTokensPerSecond };
      }
      if (torchOk && o.torchPeft && o.torchDevice && o.torchDevice !== 'cpu') {
        // once per model and prompt / length: a q8 / q4 base costs torch what f32 costs (dequantized)
        const key = `${ic.prompt}/${ic.gen}`;
        try {
          if (!torchDecode.has(key)) {
            log(`torch decode ${p.name} (prompt ${ic.prompt}, ${ic.gen} tokens; transformers generate)…`);
            const r = await runTorch([...src, '--rank', String(BENCH_LORA.rank), '--alpha', String(BENCH_LORA.alpha), '--no-sgemm',
              '--decode', '--prompt', String(ic.prompt), '--gen', String(ic.gen), '--runs', String(ic.runs), ...torchPeer]);
            torchDecode.set(key, { prefillTokensPerSecond: stat(r.prefill_tokens_per_s ?? []), decodeTokensPerSecond: stat(r.decode_tokens_per_s ?? []), peer: r.peer ?? 'torch' });
          }
          x.torch = torchDecode.get(key) ?? null;
          if (x.torch) x.decode_ratio_vs_torch = x.decodeTokensPerSecond.median / x.torch.decodeTokensPerSecond.median;
          if (x.torch) log(`  → torch decode ${x.torch.decodeTokensPerSecond.median.toFixed(1)} tok/s: ours ${x.decode_ratio_vs_torch!.toFixed(3)}×`);
        } catch (e) {
          torchDecode.set(key, null);
          notes.push(`torch decode ${p.name} ${ic.quant}: ${(e as Error).message}`);
          log(`  torch decode failed: ${(e as Error).message}`);
        }
      }
      if (ic.onnx && o.onnx !== false) {
        log(`onnxruntime-web ${p.name} f32 (prompt ${ic.prompt}, ${ic.gen} tokens)…`);
        try {
          x.onnxruntimeWeb = await benchOnnxPeer(cfg, weights, ic, log);
          const inl = x.inline?.decodeTokensPerSecond.median ?? 0;
          x.decodeBest = inl > x.decodeTokensPerSecond.median ? 'inline' : 'default';
          x.decode_ratio_vs_onnxruntime_web = Math.max(inl, x.decodeTokensPerSecond.median) / x.onnxruntimeWeb.decodeTokensPerSecond.median;
          log(`  → decode ratio vs onnxruntime-web ${x.decode_ratio_vs_onnxruntime_web.toFixed(3)}× (our ${x.decodeBest} driver threads)`);
        } catch (e) {
          notes.push(`onnxruntime-web peer ${p.name}: ${(e as Error).message}`);
          log(`  onnxruntime-web failed: ${(e as Error).message}`);
        }
      }
      inference.push(x);
    }
  }

  // the browser peer: the real small model, our engine and onnxruntime-web in one Chromium page
  let browser: BenchReport['browser'] = null;
  if (o.browser ?? !o.tiny) {
    // and a LoRA training step of the same model in that page (f32, the small setting: 2 × 64)
    const bc = { prompt: 128, gen: 64, runs: 3, train: { batch: 2, seq: 64, steps: o.quick ? 3 : 5 } };
    log(`browser: our decode and onnxruntime-web's (wasm; WebGPU on the same adapter) in one Chromium page (WebGPU on SwiftShader), then a training step there, ${o.modelPath}…`);
    try {
      const { benchBrowser } = await import('./browser.ts');
      const r = await benchBrowser(o.modelPath, bc, log);
      browser = { ...r, model: o.modelPath.split('/').pop() ?? o.modelPath, prompt: bc.prompt, gen: bc.gen, runs: bc.runs };
      log(`  → browser: ours ${r.ours.decodeTokensPerSecond.median.toFixed(1)} tok/s on ${r.adapter}, onnxruntime-web ${r.onnxruntimeWeb.decodeTokensPerSecond.median.toFixed(1)} tok/s: ${r.decodeRatio.toFixed(3)}×`);
      const gp = r.onnxruntimeWebgpu;
      if (gp && 'error' in gp) notes.push(`onnxruntime-web WebGPU peer: ${gp.error.split('\n')[0]}`);
      else if (gp) log(`  → onnxruntime-web WebGPU on the same adapter: ${gp.decodeTokensPerSecond.median.toFixed(1)} tok/s: ours ${r.decodeRatioWebgpu!.toFixed(3)}×`);
      if (r.train) log(`  → browser training step ${r.train.batch}×${r.train.seq} f32: ${r.train.stepMs.median.toFixed(1)} ms (${r.train.tokensPerSecond.median.toFixed(0)} tokens/s)`);
    } catch (e) {
      notes.push(`browser peer: ${(e as Error).message.split('\n')[0]}`);
      log(`  browser peer failed: ${(e as Error).message}`);
    }
  } else notes.push('browser peer not run' + (o.tiny ? ' (--tiny)' : ' (--no-browser)'));

  if (models.some((m) => m.name === 'smollm2-135m') && !o.full135m) {
    notes.push('SmolLM2-135M shape: timed at the small setting only (B=2, T=64; one step takes tens of seconds on a CPU Vulkan driver); ' +
      'its issue setting (B=4, T=256) is covered by the memory table (planned and allocated bytes). `--full-135m` times it too.');
  }
  if (o.onnx === false) notes.push('onnxruntime-web inference peer not run (--no-onnx)');
  else {
    notes.push('Inference peer: the same model exported to ONNX in memory (src/export/onnx.ts) and decoded greedily with the KV cache by ' +
      'onnxruntime-web (the runtime transformers.js uses) on its WebAssembly execution provider, one thread, in Node (the browser pair, when it ran, is in its own table). ' +
      'Same prompt length and new tokens; decode tokens/s excludes prefill (first token to last); f32 only.' +
      (models.some((m) => m.name === 'smollm2-135m') && !o.full135m ? ' SmolLM2-135M shape: peer skipped (`--full-135m` runs it).' : ''));
  }
  if (torchOk) {
    notes.push('PyTorch ratios of q8 / q4 cases use the f32 torch run: torch has no q8/q4 matmul, so a quantized base is dequantized to ' +
      'float32 there (scripts/bench_torch.py --quant does exactly that) and costs what f32 costs.');
  }
  const over = training.filter((t) => (t.shareOfPeak ?? 0) > 1);
  if (over.length) {
    notes.push(`${over.map((t) => `${t.model} ${t.setting} ${t.quant}`).join(', ')}: the step's matmul rate exceeds the microbenchmark's f32 peak — ` +
      'the machine load changed between the two measurements (the peak is a lower bound on this adapter\'s capability)');
  }
  const loadEnd = loadavg();
  const ncpu = cpus().length;
  if (Math.max(loadStart[0], loadEnd[0]) > ncpu * 0.75) {
    notes.push(`the machine was busy (load average ${loadStart[0].toFixed(1)} → ${loadEnd[0].toFixed(1)} on ${ncpu} CPUs): other processes shared ` +
      'the cores, so absolute figures are low and noisy; torch ran right after ours at each setting to share the same conditions');
  }
  if (inline) inline.device.destroy();
  const report: BenchReport = {
    schema: 'whittle-bench/1',
    date: new Date().toISOString(),
    command,
    mode,
    adapter: gpu.info,
    host: { node: process.version, platform: `${platform()} ${release()}`, cpus: ncpu, cpuModel: cpus()[0]?.model ?? '', loadavgStart: loadStart, loadavgEnd: loadEnd },
    lora: BENCH_LORA,
    adamw: BENCH_ADAMW,
    models,
    matmul,
    driver,
    training,
    torch: {
      env: torchEnv, sgemm1024Gflops: sgemm, blas, cases: torchCases, device: o.torchDevice ?? 'cpu', deviceName: torchDeviceName, peer: torchPeerName,
      note: o.torchDevice && o.torchDevice !== 'cpu'
        ? `eager PyTorch on ${torchDeviceName ?? o.torchDevice} (${torchPeerName ?? 'plain LoRA'}), float32 without TF32, the same shapes / LoRA / batch / AdamW`
        : 'plain eager PyTorch on the CPU, float32, the same shapes / LoRA / batch / AdamW; threads: the faster of 1 and all cores on warm-up steps',
    },
    memory,
    inference,
    browser,
    goals: [],
    notes,
    ms: 0,
  };
  report.goals = goals(report);
  report.ms = now() - t0;
  return report;
}

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

/** The goals of the performance issue, met or missed and by how much. */
export function goals(r: BenchReport): Goal[] {
  const out: Goal[] = [];
  const ratios = r.training.filter((t) => t.ratioVsPytorch !== null);
  const where = r.torch.device && r.torch.device !== 'cpu' ? `PyTorch ${r.torch.deviceName ?? r.torch.device}${r.torch.peer ? ` (${r.torch.peer})` : ''}` : 'PyTorch CPU';
  if (ratios.length) {
    const min = ratios.reduce((a, t) => (t.ratioVsPytorch! < a.ratioVsPytorch! ? t : a));
    const max = ratios.reduce((a, t) => (t.ratioVsPytorch! > a.ratioVsPytorch! ? t : a));
    const name = (t: typeof min) => `${t.model} ${t.setting} ${t.quant}`;
    out.push({
      goal: `training ≥ 1.0× ${where} (tokens/s)`,
      met: min.ratioVsPytorch! >= 1,
      detail: `ratio ${min.ratioVsPytorch!.toFixed(3)}× (${name(min)}) … ${max.ratioVsPytorch!.toFixed(3)}× (${name(max)}); ` +
        `the worst case needs ${(1 / min.ratioVsPytorch!).toFixed(1)}× more speed`,
    });
  } else out.push({ goal: `training ≥ 1.0× ${where} (tokens/s)`, met: null, detail: 'no PyTorch figures (torch not run)' });

  const peak = r.matmul.peakF32.gflops;
  const quantRows = r.matmul.results.filter((x) => x.format === 'q8' || x.format === 'q4');
  if (peak > 0 && quantRows.length) {
    // met: each quantized format's best GFLOP/s ≥ 50% of the best f32 GFLOP/s (peak against peak);
    // the detail adds the same-size ratios (quantized ÷ f32 at the same N, IC, OC, op) and the worst size.
    const fmts = Object.entries(r.matmul.byFormat).filter(([f]) => f === 'q8' || f === 'q4');
    const parts = fmts.map(([f, v]) => `${f} best ${v.gflops.toFixed(2)} GFLOP/s = ${pct(v.shareOfF32Peak)}`);
    const same = quantRows.map((x) => {
      const f = r.matmul.results.find((y) => y.format === 'f32' && y.op === x.op && y.N === x.N && y.IC === x.IC && y.OC === x.OC);
      return f ? x.gflops.median / f.gflops.median : NaN;
    }).filter(Number.isFinite);
    const worst = quantRows.reduce((a, x) => (x.gflops.median < a.gflops.median ? x : a));
    out.push({
      goal: 'quantized matmul ≥ 50% of the f32 peak',
      met: fmts.every(([, v]) => v.shareOfF32Peak >= 0.5),
      detail: `f32 peak ${peak.toFixed(2)} GFLOP/s; ${parts.join(', ')}; quantized ÷ f32 at the same size ` +
        `${pct(Math.min(...same))}…${pct(Math.max(...same))}; slowest quantized size ${worst.format} ${worst.op} ` +
        `${worst.N}×${worst.IC}→${worst.OC} ${worst.gflops.median.toFixed(2)} GFLOP/s = ${pct(worst.gflops.median / peak)} of the peak`,
    });
  }

  // decode vs onnxruntime-web: the in-browser pair (same page, same browser) when it ran, and the Node pair
  const nodePair = r.inference.find((x) => x.decode_ratio_vs_onnxruntime_web != null);
  if (r.browser || nodePair) {
    const parts: string[] = [];
    if (r.browser) parts.push(`in Chromium (${r.browser.adapter}): ours ${r.browser.ours.decodeTokensPerSecond.median.toFixed(0)} vs ${r.browser.onnxruntimeWeb.decodeTokensPerSecond.median.toFixed(0)} tokens/s = ${r.browser.decodeRatio.toFixed(3)}×`);
    if (nodePair) {
      const best = nodePair.decodeBest === 'inline' ? nodePair.inline!.decodeTokensPerSecond.median : nodePair.decodeTokensPerSecond.median;
      parts.push(`in Node (${r.adapter.description || r.adapter.device}): ${nodePair.model} ours ${best.toFixed(0)}${nodePair.decodeBest === 'inline' ? ' (inline driver, driverThreads 0)' : ''} ` +
        `vs ${nodePair.onnxruntimeWeb!.decodeTokensPerSecond.median.toFixed(0)} tokens/s = ${nodePair.decode_ratio_vs_onnxruntime_web!.toFixed(3)}×`);
    }
    const ratio = r.browser ? r.browser.decodeRatio : nodePair!.decode_ratio_vs_onnxruntime_web!;
    out.push({ goal: 'decode ≥ 1.0× onnxruntime-web (transformers.js runtime) on the same model', met: ratio >= 1, detail: parts.join('; ') });
  }
  // the same goal read as "on the same (WebGPU) adapter": transformers.js's WebGPU backend on the page's adapter
  const gp = r.browser?.onnxruntimeWebgpu;
  if (r.browser && gp && !('error' in gp)) {
    out.push({
      goal: 'decode ≥ 1.0× onnxruntime-web on the same WebGPU adapter (transformers.js device webgpu)',
      met: r.browser.decodeRatioWebgpu! >= 1,
      detail: `in Chromium (${r.browser.adapter}): ours ${r.browser.ours.decodeTokensPerSecond.median.toFixed(0)} vs ${gp.decodeTokensPerSecond.median.toFixed(1)} tokens/s = ${r.browser.decodeRatioWebgpu!.toFixed(2)}×`,
    });
  }

  const tdec = r.inference.filter((x) => x.decode_ratio_vs_torch != null);
  if (tdec.length) {
    const worst = tdec.reduce((a, x) => (x.decode_ratio_vs_torch! < a.decode_ratio_vs_torch! ? x : a));
    out.push({
      goal: `decode ≥ 1.0× PyTorch on the same GPU (${tdec[0].torch!.peer}, transformers generate)`,
      met: worst.decode_ratio_vs_torch! >= 1,
      detail: tdec.map((x) => `${x.model} ${x.quant} ours ${x.decodeTokensPerSecond.median.toFixed(0)} vs ${x.torch!.decodeTokensPerSecond.median.toFixed(0)} tokens/s = ${x.decode_ratio_vs_torch!.toFixed(3)}×`).join('; '),
    });
  }

  const mem = r.memory.filter((m) => m.model === 'smollm2-135m' && m.seq === 256);
  if (mem.length) {
    const fits = mem.filter((m) => m.fitsUnder1GiB);
    const b4 = mem.filter((m) => m.batch === 4).sort((a, b) => a.planned - b.planned)[0];
    const desc = (m: MemoryResult) => `${m.quant} B=${m.batch}${m.checkpointing ? ' +ckpt' : ''} ${gib(m.planned)}`;
    out.push({
      goal: 'SmolLM2-135M-shaped LoRA r=16, seq 256 in < 1 GiB of GPU buffers',
      met: fits.length > 0,
      detail: `${fits.length ? `fits: ${fits.map(desc).join('; ')}` : 'no setting fits'}; smallest at batch 4: ${b4 ? desc(b4) : '—'}` +
        `; does not fit: ${mem.filter((m) => !m.fitsUnder1GiB).map(desc).join('; ') || 'none'}`,
    });
  }
  return out;
}
