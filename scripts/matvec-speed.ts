// Wall-clock time of one linear variant as a decode step calls it (one row), on tinystories-656k's
// projection shapes and a 4→4 call (the fixed cost of a dispatch): 200 calls in one submission,
// best of 9, µs per call. Timestamp queries are too coarse for dispatches this short on llvmpipe.
// Run: node --import ./scripts/register.mjs scripts/matvec-speed.ts [format=f32] [variant=rt1x4] [norm|rmsnorm+]
//      (WHITTLE_ICD=swiftshader for SwiftShader; llvmpipe runs inline: driverThreads 0, as decode does)
//      norm: the input RMS-normalized by the call (opts.norm: in-kernel where the variant can);
//      rmsnorm+: an rmsnorm dispatch, then the plain call (what opts.norm replaces)
import { acquireGpu } from '../src/gpu/device.ts';
import { type LinearVariant, linear_forward, uploadWeight } from '../src/ops/linear.ts';
import { type QFormat, quantize } from '../src/model/quant.ts';
import { rmsnorm_forward } from '../src/ops/rmsnorm.ts';

const gpu = await acquireGpu({ driverThreads: 0 });
const format = (process.argv[2] ?? 'f32') as QFormat, variant = (process.argv[3] ?? 'rt1x4') as LinearVariant;
const mode = process.argv[4] ?? 'plain';
if (!['plain', 'norm', 'rmsnorm+'].includes(mode)) throw new Error(`mode must be norm or rmsnorm+ (got ${mode})`);
const shapes = [[4, 4], [128, 128], [128, 64], [128, 384], [384, 128], [128, 2048]];
const parts: string[] = [];
for (const [IC, OC] of shapes) {
  const w = uploadWeight(gpu, quantize(new Float32Array(IC * OC).map((_, i) => Math.sin(i)), OC, IC, format), 'w');
  const x = gpu.f32(new Float32Array(IC).map((_, i) => Math.cos(i)), 'x'), y = gpu.f32(OC, 'y'), z = gpu.f32(1, 'z');
  const g = gpu.f32(new Float32Array(IC).fill(1.5), 'g'), h = gpu.f32(IC, 'h'), r = gpu.f32(1, 'rstd');
  const one = mode === 'plain' ? () => linear_forward(gpu, y, x, w, null, 1, IC, OC, 0, { variant })
    : mode === 'norm' ? () => linear_forward(gpu, y, x, w, null, 1, IC, OC, 0, { variant, norm: { weight: g, eps: 1e-5, scratch: h, rstd: r } })
      : () => { rmsnorm_forward(gpu, h, r, x, g, 1, IC, 1e-5); linear_forward(gpu, y, h, w, null, 1, IC, OC, 0, { variant }); };
  await gpu.scoped('warm-up', one);
  await gpu.readF32(z);
  let best = Infinity;
  for (let rep = 0; rep < 9; rep++) {
    const t = performance.now();
    await gpu.scoped('matvec', () => { for (let i = 0; i < 200; i++) one(); });
    await gpu.readF32(z);
    best = Math.min(best, (performance.now() - t) / 200);
  }
  parts.push(`${IC}→${OC} ${(best * 1000).toFixed(1)}`);
  for (const b of [w.buf, x, y, z, g, h, r]) gpu.destroy(b);
}
console.log(`${format} ${variant}${mode === 'plain' ? '' : ` ${mode}`} on ${gpu.info.description || gpu.info.device}: ${parts.join('; ')} µs per call`);
