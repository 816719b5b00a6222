// Driver ceilings: three microbenchmarks (shaders/probe.wgsl) that bound what any kernel can reach
// on this adapter, printed beside the matmul numbers so a missed ratio can be read against them:
// - fmaGflops: f32 FMA throughput with no memory traffic (16 independent chains per thread);
// - loadNsPerVec4: nanoseconds per storage-buffer vec4 load per invocation (all threads, all cores);
// - dispatchUs: microseconds per dispatch of a one-workgroup kernel, 200 recorded in one submission.
// Each: wall time of one submission after a warm-up, median of `runs`; waits are gpu.done() (relaxed
// in Node: see Gpu.settle).
import code from '../../shaders/probe.wgsl?raw';
import { type Gpu, uniforms } from '../gpu/device.ts';
import { type Stat, now, stat } from './stats.ts';

export interface DriverCeilings {
  fmaGflops: Stat;
  loadNsPerVec4: Stat;
  dispatchUs: Stat;
}

async function timeSubmission(gpu: Gpu, record: () => void): Promise<number> {
  record();
  const t0 = now();
  await gpu.done({ relaxed: true }); // Gpu.settle: in Node, Dawn's polling would otherwise take a shader core
  return now() - t0;
}

export async function benchDriver(gpu: Gpu, opts: { runs?: number; tiny?: boolean } = {}): Promise<DriverCeilings> {
  const runs = opts.runs ?? 5;
  const groups = opts.tiny ? 8 : 96, threads = groups * 64, iter = opts.tiny ? 200 : 4000, S = 1 << 16;
  // FMA and load submissions hold `reps` dispatches (≥ 100 ms here): a relaxed wait ends up to ~1 ms late
  const reps = opts.tiny ? 1 : 8;
  const out = gpu.buffer(threads * 4, 'bench.probe.out');
  const src = gpu.buffer(S * 16, 'bench.probe.src', new Float32Array(S * 4).fill(1));
  try {
    const u = uniforms([[iter, 'u32'], [S, 'u32'], [threads, 'u32'], [0, 'u32']]);
    const fma = gpu.pipeline('probe', code, 'probe_fma'), load = gpu.pipeline('probe', code, 'probe_load'), nop = gpu.pipeline('probe', code, 'probe_nop');
    const one = uniforms([[1, 'u32'], [S, 'u32'], [64, 'u32'], [0, 'u32']]);
    const fl: number[] = [], ld: number[] = [], dp: number[] = [];
    for (let r = 0; r <= runs; r++) {
      const tf = await timeSubmission(gpu, () => { for (let i = 0; i < reps; i++) gpu.dispatch(fma, u, [out], [groups]); });
      const tl = await timeSubmission(gpu, () => { for (let i = 0; i < reps; i++) gpu.dispatch(load, u, [out, src], [groups]); });
      const td = await timeSubmission(gpu, () => { for (let i = 0; i < 200; i++) gpu.dispatch(nop, one, [out], [1]); });
      if (r === 0) continue; // warm-up (pipeline compilation)
      fl.push((reps * threads * iter * 32) / (tf * 1e6));
      ld.push((tl * 1e6) / (reps * threads * iter));
      dp.push((td * 1000) / 200);
    }
    // the probes did their work: every load probe thread summed iter vec4s of ones (4·iter); the
    // FMA probe's sums are finite (a compiler that dropped the loop would leave other values)
    await timeSubmission(gpu, () => gpu.dispatch(load, u, [out, src], [groups]));
    const sums = await gpu.readF32(out, threads);
    const bad = sums.findIndex((x) => x !== 4 * iter);
    if (bad >= 0) throw new Error(`bench driver: load probe thread ${bad} summed ${sums[bad]}, expected ${4 * iter}`);
    await timeSubmission(gpu, () => gpu.dispatch(fma, u, [out], [groups]));
    const f = await gpu.readF32(out, threads);
    if (!f.every((x) => Number.isFinite(x) && x > 0)) throw new Error('bench driver: FMA probe produced a non-finite or non-positive sum');
    return { fmaGflops: stat(fl), loadNsPerVec4: stat(ld), dispatchUs: stat(dp) };
  } finally {
    gpu.destroy(out);
    gpu.destroy(src);
  }
}
