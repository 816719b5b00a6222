// Driver-ceiling probes of `whittle bench` (src/bench/driver.ts); not an op of the model.
// probe_fma:  each thread runs ITER rounds of 16 independent fma chains a_i ← a_i·m + 0.5 and
//             stores their sum: 32·ITER flops per thread, no memory traffic in the loop.
// probe_load: each thread sums ITER vec4 loads of src at a thread-dependent, wrapping index:
//             the cost of one storage-buffer vec4 load per invocation.
// probe_nop:  one store per thread: the fixed cost of a dispatch.
// Legend: out (≥ threads) f32, src (S, a power of two) vec4, threads = 64 per workgroup.
struct Params { iter: u32, S: u32, outLen: u32, _p: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn probe_fma(@builtin(global_invocation_id) g: vec3u) {
  let m = 0.999 + f32(g.x & 7u) * 1e-6;
  var a0 = f32(g.x); var a1 = a0 + 1.0; var a2 = a0 + 2.0; var a3 = a0 + 3.0;
  var a4 = a0 + 4.0; var a5 = a0 + 5.0; var a6 = a0 + 6.0; var a7 = a0 + 7.0;
  var a8 = a0 + 8.0; var a9 = a0 + 9.0; var a10 = a0 + 10.0; var a11 = a0 + 11.0;
  var a12 = a0 + 12.0; var a13 = a0 + 13.0; var a14 = a0 + 14.0; var a15 = a0 + 15.0;
  for (var k = 0u; k < P.iter; k++) {
    a0 = fma(a0, m, 0.5); a1 = fma(a1, m, 0.5); a2 = fma(a2, m, 0.5); a3 = fma(a3, m, 0.5);
    a4 = fma(a4, m, 0.5); a5 = fma(a5, m, 0.5); a6 = fma(a6, m, 0.5); a7 = fma(a7, m, 0.5);
    a8 = fma(a8, m, 0.5); a9 = fma(a9, m, 0.5); a10 = fma(a10, m, 0.5); a11 = fma(a11, m, 0.5);
    a12 = fma(a12, m, 0.5); a13 = fma(a13, m, 0.5); a14 = fma(a14, m, 0.5); a15 = fma(a15, m, 0.5);
  }
  out[g.x % P.outLen] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15;
}

@group(0) @binding(2) var<storage, read> src: array<vec4f>;

@compute @workgroup_size(64)
fn probe_load(@builtin(global_invocation_id) g: vec3u) {
  var s = vec4f(0.0);
  let base = g.x * 17u;
  for (var k = 0u; k < P.iter; k++) { s += src[(base + k) & (P.S - 1u)]; }
  out[g.x % P.outLen] = s.x + s.y + s.z + s.w;
}

@compute @workgroup_size(64)
fn probe_nop(@builtin(global_invocation_id) g: vec3u) {
  out[g.x % P.outLen] = f32(g.x);
}
