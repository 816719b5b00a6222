// `whittle profile`: GPU milliseconds per kernel of LoRA training steps, from timestamp queries
// (gpu.startProfile / stopProfile, src/gpu/device.ts). One warm-up step (pipeline compilation) and
// one unprofiled step (wall time) first; then each profiled step is recorded in three profiled
// submissions — forward, backward, optimizer — because a profile holds at most 2048 dispatches on
// lavapipe and a whole SmolLM2-135M step has more. Profiling ends the compute pass around every
// dispatch, so the per-kernel sum is a little above an unprofiled step's GPU time.
import { acquireGpu, type Gpu } from '../gpu/device.ts';
import { BENCH_ADAMW, BENCH_LORA, randomBatch, randomWeights, SHAPES } from '../bench/shapes.ts';
import { InferenceModel } from '../model/generate.ts';
import { promptIds } from '../bench/infer.ts';
import type { LlamaConfig, LlamaWeights } from '../model/config.ts';
import { LlamaModel } from '../model/llama.ts';
import { loadModel } from '../model/load.ts';
import type { QFormat } from '../model/quant.ts';
import { nodeSource } from '../model/source-node.ts';
import { parseArgs, UsageError } from './args.ts';
import { parseNum } from './generate.ts';
import { linearFusion } from '../ops/linear.ts';
import { argmaxTuning } from '../ops/argmax.ts';
import type { Command } from './command.ts';

const USAGE = [
  'usage: whittle profile (--model PATH | --shape NAME) [--quant f32|q8|q4] [--batch B] [--seq T] [--steps N] [options]',
  '',
  'Runs LoRA training steps (r=16 on q,k,v,o,gate,up,down) with timestamp-query profiling and prints',
  'GPU milliseconds per kernel per step, sorted by time, plus a roll-up per op.',
  '',
  '  --model PATH      Hugging Face model folder or .gguf file',
  `  --shape NAME      a randomly initialised model of a known shape: ${Object.keys(SHAPES).join(', ')}`,
  '  --quant F         base format f32 | q8 | q4 (default f32)',
  '  --batch B --seq T batch and sequence length (default 2 and 64)',
  '  --steps N         profiled steps (default 1)',
  '  --checkpointing   gradient checkpointing on',
  '  --tune            run the per-adapter kernel trials first (as a training job does), so the tuned variants are profiled',
  '  --decode K        profile greedy decode instead (the KV-cache inference path, no adapter): a 64-token prompt, then',
  '                    K decode steps (default 4; fewer when the profile would overflow), time per kernel per token',
  '  --driver-threads N  llvmpipe (lavapipe) only: its shader threads (default: 0 with --decode, as',
  '                    `whittle generate` decodes; the driver\'s own, one per core, for training; -1: that)',
  '  --no-fused-norm   run the RMSNorm before a projection as its own dispatch even where the matvec could',
  '                    take it (linear opts.norm): an A/B of that fusion',
  '  --argmax-split M  greedy argmax over the logits: auto (default: split into chunks on a real GPU for',
  '                    vocabularies ≥ 16,384), on, off — an A/B of the split form',
  '  --top K           print only the K slowest kernels (default all)',
  '  --json            one JSON object instead of the table',
].join('\n');

/** Per-profile dispatch capacity (timestamp query pairs); lavapipe allows 2048. */
const MAX_DISPATCHES = 2048;

interface KernelRow {
  kernel: string;
  msPerStep: number;
  share: number;
  dispatchesPerStep: number;
  usPerDispatch: number;
}

const int = (flags: Record<string, string | true>, k: string, d: number): number => {
  const v = flags[k];
  if (v === undefined) return d;
  const x = Number(v);
  if (typeof v !== 'string' || !Number.isInteger(x) || x < 1) throw new UsageError(`--${k} needs a positive integer (got ${JSON.stringify(v)})`);
  return x;
};

/** Count dispatches recorded on `gpu` (to tell when a profile overflowed its query capacity). */
function countDispatches(gpu: Gpu): { n: number } {
  const c = { n: 0 };
  const orig = gpu.dispatch.bind(gpu);
  gpu.dispatch = ((...a: Parameters<Gpu['dispatch']>) => {
    c.n++;
    return orig(...a);
  }) as Gpu['dispatch'];
  return c;
}

export const command: Command = {
  name: 'profile',
  usage: USAGE,
  async run(args, io) {
    const { flags, positional } = parseArgs(args, {
      model: 'string', shape: 'string', quant: 'string', batch: 'string', seq: 'string', steps: 'string', checkpointing: 'bool', top: 'string', json: 'bool', tune: 'bool', decode: 'string', 'driver-threads': 'string', 'no-fused-norm': 'bool', 'argmax-split': 'string',
    });
    if (positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`);
    if ((typeof flags.model === 'string') === (typeof flags.shape === 'string')) throw new UsageError('give exactly one of --model PATH and --shape NAME');
    const quant = (flags.quant ?? 'f32') as QFormat;
    if (!['f32', 'q8', 'q4'].includes(quant)) throw new UsageError(`--quant must be f32, q8 or q4 (got ${JSON.stringify(flags.quant)})`);
    const B = int(flags, 'batch', 2), T = int(flags, 'seq', 64), steps = int(flags, 'steps', 1);
    const top = flags.top === undefined ? Infinity : int(flags, 'top', 1);
    const json = flags.json === true;
    let cfg, weights, name: string;
    if (typeof flags.shape === 'string') {
      cfg = SHAPES[flags.shape];
      if (!cfg) throw new UsageError(`unknown --shape ${JSON.stringify(flags.shape)}; known: ${Object.keys(SHAPES).join(', ')}`);
      weights = randomWeights(cfg, 1);
      name = `${flags.shape} (random weights)`;
    } else {
      const m = await loadModel(await nodeSource(flags.model as string));
      cfg = m.config;
      weights = m.weights;
      name = m.source.modelName ?? (flags.model as string);
    }
    // decode runs every dispatch on llvmpipe's queue thread by default, as `whittle generate` does
    const driverThreads = parseNum('driver-threads', flags['driver-threads'], { int: true, min: -1, max: 64 }) ?? (flags.decode !== undefined ? 0 : -1);
    const gpu = await acquireGpu(driverThreads < 0 ? {} : { driverThreads });
    if (flags['no-fused-norm'] === true) linearFusion.norm = false;
    const split = flags['argmax-split'] ?? 'auto';
    if (split !== 'auto' && split !== 'on' && split !== 'off') throw new UsageError(`--argmax-split must be auto, on or off (got ${JSON.stringify(split)})`);
    argmaxTuning.split = split;
    if (!gpu.info.features.timestamp) {
      io.err('whittle profile: this adapter has no timestamp-query feature; per-kernel GPU times cannot be measured here');
      gpu.device.destroy();
      return 1;
    }
    if (flags.decode !== undefined) {
      try {
        return await profileDecode(gpu, cfg, weights, name, quant, int(flags, 'decode', 4), flags.tune === true, top, json, io);
      } finally {
        gpu.device.destroy();
      }
    }
    const model = new LlamaModel(gpu, cfg, weights, { quant, lora: BENCH_LORA, batch: B, seq: T, checkpointing: flags.checkpointing === true, seed: 0 });
    const say = (s: string) => { if (!json) io.err(s); };
    try {
      if (flags.tune === true) {
        say('profile: per-adapter kernel trials (LlamaModel.tune; cached)…');
        await model.tune();
      }
      say(`profile: ${name}, ${quant}, B=${B}, T=${T}${flags.checkpointing === true ? ', checkpointing' : ''}: warm-up step (pipeline compilation)…`);
      let t = performance.now();
      await model.trainStep(randomBatch(cfg.vocab, B, T, 1), { ...BENCH_ADAMW, t: 1 });
      const warmMs = performance.now() - t;
      t = performance.now();
      await model.trainStep(randomBatch(cfg.vocab, B, T, 2), { ...BENCH_ADAMW, t: 2 });
      const wallMs = performance.now() - t;
      say(`unprofiled step: ${wallMs.toFixed(1)} ms wall; profiling ${steps} step(s)…`);

      const counter = countDispatches(gpu);
      const total = new Map<string, { ms: number; count: number }>();
      const phases: Record<string, number> = { forward: 0, backward: 0, optimizer: 0 };
      let dropped = 0, maxPhase = 0;
      const phase = async (label: string, fn: () => void | Promise<unknown>) => {
        gpu.startProfile(MAX_DISPATCHES);
        const before = counter.n;
        await gpu.scoped(`profile ${label}`, fn);
        const prof = await gpu.stopProfile();
        const n = counter.n - before;
        maxPhase = Math.max(maxPhase, n);
        dropped += Math.max(0, n - MAX_DISPATCHES);
        for (const [k, v] of prof) {
          const r = total.get(k) ?? { ms: 0, count: 0 };
          r.ms += v.ms;
          r.count += v.count;
          total.set(k, r);
          phases[label] += v.ms;
        }
      };
      for (let i = 0; i < steps; i++) {
        const step = 3 + i;
        model.step = step;
        await phase('forward', () => {
          model.setBatch(randomBatch(cfg.vocab, B, T, step));
          model.forward(true);
        });
        await phase('backward', () => model.backward());
        await phase('optimizer', async () => {
          model.optimizerStep({ ...BENCH_ADAMW, t: step });
          await model.readLoss();
        });
      }
      let sum = 0;
      for (const v of total.values()) sum += v.ms;
      const rows: KernelRow[] = [...total].map(([kernel, v]) => ({
        kernel, msPerStep: v.ms / steps, share: sum > 0 ? v.ms / sum : 0, dispatchesPerStep: v.count / steps, usPerDispatch: (v.ms * 1000) / v.count,
      })).sort((a, b) => b.msPerStep - a.msPerStep);
      const ops = new Map<string, { ms: number; count: number }>();
      for (const r of rows) {
        const op = r.kernel.split(/[._]/)[0];
        const o = ops.get(op) ?? { ms: 0, count: 0 };
        o.ms += r.msPerStep;
        o.count += r.dispatchesPerStep;
        ops.set(op, o);
      }
      const byOp = [...ops].map(([op, v]) => ({ op, msPerStep: v.ms, share: sum > 0 ? (v.ms * steps) / sum : 0, dispatchesPerStep: v.count })).sort((a, b) => b.msPerStep - a.msPerStep);
      const perStep = sum / steps;
      if (json) {
        io.out(JSON.stringify({
          model: name, quant, batch: B, seq: T, steps, checkpointing: flags.checkpointing === true, adapter: gpu.info,
          warmupMs: warmMs, wallMsUnprofiled: wallMs, gpuMsPerStep: perStep, phasesMsPerStep: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, v / steps])),
          maxDispatchesPerProfile: maxPhase, droppedDispatches: dropped, kernels: rows, ops: byOp,
        }));
      } else {
        const w = Math.max(6, ...rows.map((r) => r.kernel.length));
        io.out(`${name} · ${quant} · B=${B} T=${T} · ${gpu.info.description || gpu.info.architecture} · ${steps} profiled step(s)`);
        io.out(`GPU time per step ${perStep.toFixed(1)} ms (forward ${(phases.forward / steps).toFixed(1)}, backward ${(phases.backward / steps).toFixed(1)}, ` +
          `optimizer ${(phases.optimizer / steps).toFixed(1)}); unprofiled step wall time ${wallMs.toFixed(1)} ms`);
        io.out('');
        io.out(`${'kernel'.padEnd(w)}  ${'ms/step'.padStart(9)}  ${'share'.padStart(6)}  ${'calls'.padStart(6)}  ${'µs/call'.padStart(9)}`);
        for (const r of rows.slice(0, top)) {
          io.out(`${r.kernel.padEnd(w)}  ${r.msPerStep.toFixed(2).padStart(9)}  ${(r.share * 100).toFixed(1).padStart(5)}%  ${String(Math.round(r.dispatchesPerStep)).padStart(6)}  ${r.usPerDispatch.toFixed(1).padStart(9)}`);
        }
        io.out('');
        io.out('per op: ' + byOp.map((o) => `${o.op} ${o.msPerStep.toFixed(1)} ms (${(o.share * 100).toFixed(0)}%)`).join(', '));
        if (dropped) io.out(`warning: ${dropped} dispatches exceeded the ${MAX_DISPATCHES}-dispatch profile and were not timed`);
      }
    } finally {
      model.destroy();
      gpu.device.destroy();
    }
    return 0;
  },
};

/**
 * `--decode K`: greedy decode on the KV-cache path (InferenceModel, src/model/generate.ts): a 64-token
 * prompt prefilled (not profiled), one step to count its dispatches, the unprofiled wall time of K
 * steps (each awaited: no lookahead), then K profiled steps. Prints GPU µs per kernel per token.
 */
async function profileDecode(
  gpu: Gpu, cfg: LlamaConfig, weights: LlamaWeights, name: string, quant: QFormat, K: number, tune: boolean, top: number, json: boolean,
  io: Parameters<Command['run']>[1],
): Promise<number> {
  const prompt = promptIds(64, cfg.vocab, 1);
  const inf = InferenceModel.create(gpu, cfg, weights, { quant, maxSeq: prompt.length + 3 * K + 8, prefillChunk: 64 });
  const say = (x: string) => { if (!json) io.err(x); };
  try {
    if (tune) {
      say('profile: per-adapter kernel trials (InferenceModel.tune; cached)…');
      await inf.tune();
    }
    const counter = countDispatches(gpu);
    await inf.prefillArgmax(prompt);
    let n0 = counter.n;
    await inf.decodeArgmaxChained(); // warm-up: compiles the decode pipelines
    const perToken = counter.n - n0;
    const k = Math.max(1, Math.min(K, Math.floor(MAX_DISPATCHES / Math.max(1, perToken))));
    let t = performance.now();
    for (let i = 0; i < k; i++) await inf.decodeArgmaxChained();
    const wallMs = (performance.now() - t) / k;
    say(`decode: ${perToken} dispatches per token; unprofiled ${wallMs.toFixed(2)} ms per token (each step awaited); profiling ${k} step(s)…`);
    gpu.startProfile(MAX_DISPATCHES);
    n0 = counter.n;
    t = performance.now();
    for (let i = 0; i < k; i++) await inf.decodeArgmaxChained();
    const prof = await gpu.stopProfile();
    const dropped = Math.max(0, counter.n - n0 - MAX_DISPATCHES);
    let sum = 0;
    for (const v of prof.values()) sum += v.ms;
    const rows = [...prof].map(([kernel, v]) => ({ kernel, usPerToken: (v.ms * 1000) / k, share: sum > 0 ? v.ms / sum : 0, callsPerToken: v.count / k, usPerCall: (v.ms * 1000) / v.count }))
      .sort((a, b) => b.usPerToken - a.usPerToken);
    const gpuMsPerToken = sum / k;
    if (json) {
      io.out(JSON.stringify({ model: name, quant, mode: 'decode', steps: k, adapter: gpu.info, dispatchesPerToken: perToken, wallMsPerToken: wallMs, gpuMsPerToken, droppedDispatches: dropped, kernels: rows }));
    } else {
      const w = Math.max(6, ...rows.map((r) => r.kernel.length));
      io.out(`${name} · ${quant} · decode (prompt 64) · ${gpu.info.description || gpu.info.architecture} · ${k} profiled step(s)`);
      io.out(`GPU time per token ${gpuMsPerToken.toFixed(3)} ms over ${perToken} dispatches; unprofiled wall time per token ${wallMs.toFixed(3)} ms (the rest: dispatch and wait overhead)`);
      io.out('');
      io.out(`${'kernel'.padEnd(w)}  ${'µs/token'.padStart(9)}  ${'share'.padStart(6)}  ${'calls'.padStart(6)}  ${'µs/call'.padStart(9)}`);
      for (const r of rows.slice(0, top)) {
        io.out(`${r.kernel.padEnd(w)}  ${r.usPerToken.toFixed(1).padStart(9)}  ${(r.share * 100).toFixed(1).padStart(5)}%  ${String(Math.round(r.callsPerToken)).padStart(6)}  ${r.usPerCall.toFixed(1).padStart(9)}`);
      }
      if (dropped) io.out(`warning: ${dropped} dispatches exceeded the ${MAX_DISPATCHES}-dispatch profile and were not timed`);
    }
  } finally {
    inf.destroy();
  }
  return 0;
}
