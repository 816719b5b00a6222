// temporary benchmark (not a test)
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
const alt = process.env.ALT ? readFileSync(process.env.ALT, 'utf8') : null;
const line: string[] = [];
for (const format of (process.env.FMTS ?? 'f32,q8,q4').split(',') as ('f32'|'q8'|'q4')[]) {
  const w = op.uploadWeight(gpu, quantize(wf, OC, IC, format), 'p.w');
  for (const dir of (process.env.DIRS ?? 'fwd,bwd').split(',')) {
    const run = () => {
      if (alt) {
        const rw = op.rowWords(w);
        const FMT = { f32: 0, q8: 1, q4: 2 }[format];
        const u = uniforms([[N, 'u32'], [IC, 'u32'], [OC, 'u32'], [0, 'u32'], [rw, 'u32'], [0, 'u32']]);
        const TM = +(process.env.TM ?? 32), TN = +(process.env.TN ?? 32);
        if (dir === 'fwd') gpu.dispatch(gpu.pipeline('alt', alt, 'linear_forward', { FMT }), u, [out, inp, w.buf, dout], [Math.ceil(OC / TN), Math.ceil(N / TM)]);
        else gpu.dispatch(gpu.pipeline('alt', alt, 'linear_backward', { FMT }), u, [dinp, dout, w.buf], [Math.ceil(IC / TN), Math.ceil(N / TM)]);
        return;
      }
      dir === 'fwd' ? op.linear_forward(gpu, out, inp, w, null, N, IC, OC) : op.linear_backward(gpu, dinp, dout, w, N, IC, OC);
    };
    await gpu.scoped('warm', run);
    await gpu.readF32(out, 1);
    let best = 1e9;
    for (let t = 0; t < 3; t++) {
      const reps = 3, t0 = performance.now();
      for (let r = 0; r < reps; r++) { run(); gpu.submit(); }
      await gpu.readF32(dir === 'fwd' ? out : dinp, 1);
      best = Math.min(best, (performance.now() - t0) / reps);
    }
    line.push(`${format} ${dir} ${(flop / best / 1e6).toFixed(2)}`);
  }
}
console.log(line.join(', '));
process.exit(0);
