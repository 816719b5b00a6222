// Residual connection: out (n) = a (n) + b (n), n = N*C. Its backward is the identity (the
// gradient reaches both inputs unchanged), so there is no residual_backward kernel.
// Template (src/ops/residual.ts keeps lines by flag): V4 (n % 4 == 0, quad-aligned bindings) works
// by quads, T = vec4f and P.n counting quads; otherwise T = f32.
//#if V4
alias T = vec4f;
//#else
alias T = f32;
//#endif

struct Params { n: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<T>;
@group(0) @binding(2) var<storage, read> a: array<T>;
@group(0) @binding(3) var<storage, read> b: array<T>;

@compute @workgroup_size(256)
fn residual_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.n) { return; }
  out[i] = a[i] + b[i];
}
