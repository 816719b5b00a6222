// temporary benchmark (not a test): interleaved A/B of shader variants, best-of timing
import * as op from '../../src/ops/linear.ts';
import { quantize } from '../../src/model/quant.ts';
import { randn32, testGpu } from '../util.ts';
import { readFileSync } from 'node:fs';
import { uniforms } from '../../src/gpu/device.ts';
const gpu = await testGpu();
const N = +(process.env.BN ?? 256), IC = +(process.env.BIC ?? 576), OC = +(process.env.BOC ?? 1536), flop = 2 * N * IC * OC;
const inp = gpu.f32(randn32(N * IC, 1), 'p.inp'), out = gpu.f32(N * OC, 'p.out');
const dout = gpu.f32(randn32(N * OC, 2), 'p.dout'), dinp = gpu.f32(N * IC, 'p.dinp');
const wf = randn32(OC * IC, 3, 0.1);
// ALTS: comma list of file[:TM:TN]
const alts = (process.env.ALTS ?? 'shaders/linear.wgsl').split(',').map((s) => { const [f, tm, tn] = s.split(':'); return { f, code: f === 'op' ? '' : readFileSync(f, 'utf8'), TM: +(tm ?? 32), TN: +(tn ?? 32) }; });
const rounds = +(process.env.ROUNDS ?? 3);
for (const format of (process.env.FMTS ?? 'f32,q8,q4').split(',') as ('f32'|'q8'|'q4')[]) {
  const w = op.uploadWeight(gpu, quantize(wf, OC, IC, format), 'p.w');
  for (const dir of (process.env.DIRS ?? 'fwd,bwd').split(',')) {
    const best = alts.map(() => 1e9);
    for (let round = 0; round < rounds; round++) {
      for (const [ai, a] of alts.entries()) {
        const run = () => {
          if (a.f === 'op') { dir === 'fwd' ? op.linear_forward(gpu, out, inp, w, null, N, IC, OC) : op.linear_backward(gpu, dinp, dout, w, N, IC, OC); return; }
          const rw = op.rowWords(w);
          const FMT = { f32: 0, q8: 1, q4: 2 }[format];
          const u = uniforms([[N, 'u32'], [IC, 'u32'], [OC, 'u32'], [0, 'u32'], [rw, 'u32'], [0, 'u32']]);
          if (dir === 'fwd') gpu.dispatch(gpu.pipeline(a.f, a.code, 'linear_forward', { FMT }), u, [out, inp, w.buf, dout], [Math.ceil(OC / a.TN), Math.ceil(N / a.TM)]);
          else gpu.dispatch(gpu.pipeline(a.f, a.code, 'linear_backward', { FMT }), u, [dinp, dout, w.buf], [Math.ceil(IC / a.TN), Math.ceil(N / a.TM)]);
        };
        if (round === 0) { await gpu.scoped('warm', run); await gpu.readF32(out, 1); }
        const reps = 2, c0 = process.cpuUsage(), t0 = performance.now();
        for (let r = 0; r < reps; r++) { run(); gpu.submit(); }
        await gpu.readF32(dir === 'fwd' ? out : dinp, 1);
        const cu = process.cpuUsage(c0); const cpuMs = (cu.user + cu.system) / 1000; best[ai] = Math.min(best[ai], (process.env.CPU ? cpuMs : performance.now() - t0) / reps);
      }
    }
    console.log(`${format} ${dir}: ` + alts.map((a, i) => `${a.f.split('/').pop()} ${(flop / best[i] / 1e6).toFixed(2)}`).join('  '));
  }
}
process.exit(0);
