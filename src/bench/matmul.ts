// Matmul microbenchmark of our linear kernels (src/ops/linear.ts, the variant the model uses:
// register-tiled, vec4 when IC % 4 == 0, f32 compute): linear_forward (out = x·Wᵀ) and
// linear_backward (dinp += dout·W) at a few (N, IC, OC) sizes, f32 weights and the f16 / q8 / q4
// storage formats unpacked / dequantized in the kernel. GFLOP/s = 2·N·IC·OC per dispatch ÷ wall time of `reps` dispatches recorded into one
// submission (so per-submission latency is amortized), median of `runs` such submissions.
// "peak" = the best f32 median over the sizes; each quantized size is reported against it.
// It is not: a tuning search (the variant is what src/ops/linear.ts picks).
import type { Gpu } from '../gpu/device.ts';
import { linear_backward, linear_forward, uploadWeight } from '../ops/linear.ts';
import { quantize, type QFormat } from '../model/quant.ts';
import { type Stat, stat, now } from './stats.ts';

export interface MatmulSize {
  N: number;
  IC: number;
  OC: number;
}

export interface MatmulResult extends MatmulSize {
  format: QFormat;
  op: 'forward' | 'backward';
  /** GFLOP/s, median (min–max) over runs */
  gflops: Stat;
  /** ms per dispatch (median run) */
  ms: number;
}

export interface MatmulReport {
  results: MatmulResult[];
  /** best f32 median over every size and op */
  peakF32: { gflops: number; at: MatmulSize & { op: string } };
  /** per format: best median GFLOP/s and its share of peakF32 */
  byFormat: Record<string, { gflops: number; shareOfF32Peak: number }>;
}

/** The sizes of `whittle bench`: SmolLM2-135M's projections at 128 and 512 rows, and a square one. */
export function matmulSizes(quick: boolean, tiny: boolean): MatmulSize[] {
  if (tiny) return [{ N: 64, IC: 64, OC: 128 }];
  const s: MatmulSize[] = [
    { N: 128, IC: 576, OC: 1536 }, // gate/up at seq 64 × batch 2
    { N: 128, IC: 1536, OC: 576 }, // down
  ];
  if (!quick) s.push({ N: 512, IC: 576, OC: 1536 }, { N: 512, IC: 1024, OC: 1024 });
  return s;
}

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    a[i] = ((s >>> 0) / 4294967296 - 0.5) * 0.2;
  }
  return a;
}

/** Weight formats measured: f32, the f16 storage format (unpacked to f32 in the kernel), q8, q4. */
export const MATMUL_FORMATS: QFormat[] = ['f32', 'f16', 'q8', 'q4'];

/** Run the microbenchmark; `formats` default MATMUL_FORMATS. */
export async function benchMatmul(
  gpu: Gpu, sizes: MatmulSize[], opts: { runs?: number; formats?: QFormat[]; targetMs?: number; log?: (s: string) => void } = {},
): Promise<MatmulReport> {
  const runs = opts.runs ?? 3, formats = opts.formats ?? MATMUL_FORMATS, targetMs = opts.targetMs ?? 300;
  const results: MatmulResult[] = [];
  for (const sz of sizes) {
    const { N, IC, OC } = sz;
    const x = gpu.f32(rand(N * IC, 1), 'bench.x');
    const y = gpu.f32(N * OC, 'bench.y');
    const dy = gpu.f32(rand(N * OC, 2), 'bench.dy');
    const dx = gpu.f32(N * IC, 'bench.dx');
    const host = rand(OC * IC, 3);
    for (const format of formats) {
      const w = uploadWeight(gpu, quantize(host, OC, IC, format), 'bench.w');
      for (const op of ['forward', 'backward'] as const) {
        const record = () => (op === 'forward' ? linear_forward(gpu, y, x, w, null, N, IC, OC) : linear_backward(gpu, dx, dy, w, N, IC, OC));
        const sync = () => gpu.read({ buffer: op === 'forward' ? y : dx, offset: 0, size: 4 }, 4, { relaxed: true });
        // warm-up (pipeline compile) and a calibration run: reps so one run takes ~targetMs
        await gpu.scoped('bench matmul', async () => { record(); await sync(); });
        let t = now();
        await gpu.scoped('bench matmul', async () => { record(); await sync(); });
        const one = Math.max(0.05, now() - t);
        const reps = Math.max(1, Math.min(64, Math.round(targetMs / one)));
        const samples: number[] = [];
        for (let r = 0; r < runs; r++) {
          await gpu.scoped('bench matmul', async () => {
            t = now();
            for (let i = 0; i < reps; i++) record();
            await sync();
            samples.push((now() - t) / reps);
          });
        }
        const flops = 2 * N * IC * OC;
        const g = stat(samples.map((ms) => flops / (ms * 1e6)));
        const ms = stat(samples).median;
        results.push({ ...sz, format, op, gflops: g, ms });
        opts.log?.(`matmul ${format} ${op} N=${N} IC=${IC} OC=${OC}: ${g.median.toFixed(2)} GFLOP/s (${ms.toFixed(2)} ms)`);
      }
      gpu.destroy(w.buf);
    }
    for (const b of [x, y, dy, dx]) gpu.destroy(b);
  }
  let peak = { gflops: 0, at: { N: 0, IC: 0, OC: 0, op: '' } };
  for (const r of results) if (r.format === 'f32' && r.gflops.median > peak.gflops) peak = { gflops: r.gflops.median, at: { N: r.N, IC: r.IC, OC: r.OC, op: r.op } };
  const byFormat: MatmulReport['byFormat'] = {};
  for (const f of formats) {
    const best = Math.max(0, ...results.filter((r) => r.format === f).map((r) => r.gflops.median));
    byFormat[f] = { gflops: best, shareOfF32Peak: peak.gflops > 0 ? best / peak.gflops : 0 };
  }
  return { results, peakF32: peak, byFormat };
}
