// The residual connection of the GPU model: out (n) = a (n) + b (n). The op set in docs/ENGINE.md
// has no elementwise add (linear_forward overwrites its output), so the model carries this one tiny
// kernel itself; its backward is the identity (the gradient flows through unchanged). CPU twin: the
// `add` in src/ref/model.ts.
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { grid1d } from '../ops/util.ts';

const code = /* wgsl */ `
struct Params { n: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;

@compute @workgroup_size(256)
fn residual_add(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.n) { return; }
  out[i] = a[i] + b[i];
}
`;

/** out (n) = a (n) + b (n); out may not alias a or b. */
export function residual_add(gpu: Gpu, out: Buf, a: Buf, b: Buf, n: number): void {
  gpu.dispatch(gpu.pipeline('residual', code, 'residual_add'), uniforms([[n, 'u32']]), [out, a, b], grid1d(gpu, n, 256));
}
