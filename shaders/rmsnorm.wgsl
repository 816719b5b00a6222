// RMSNorm with a frozen weight: forward (saving rstd) and the input gradient.
// Legend: N rows (B*T), C hidden.
// rmsnorm_forward:  rstd (N) = 1/sqrt(mean_c(inp²) + eps);  out (N,C) = inp · rstd · weight (C)
// rmsnorm_backward: dinp (N,C) += rstd·w·dout − inp · rstd³/C · Σ_c(dout·w·inp)
// One workgroup of WG threads per row: threads stride over the row (coalesced), then a
// workgroup tree reduction. Rows fold into a 2-D grid: row = wid.x + wid.y * nwg.x.
// Template (src/ops/rmsnorm.ts keeps lines by flag): SG — where subgroups have one fixed size S
// (lavapipe 8, SwiftShader 4, NVIDIA 32) — makes the workgroup one subgroup, WG = S (an override
// constant), and the reduction a subgroupAdd (no barriers, which cost a coroutine switch per
// invocation on the CPU Vulkan drivers: 290 µs per decode rmsnorm on SwiftShader with them).
//#if SG
enable subgroups;
//#endif

//#if SG
override WG: u32 = 8u;
//#else
const WG: u32 = 256u;
//#endif

struct Params { N: u32, C: u32, eps: f32, _p0: u32 }

@group(0) @binding(0) var<uniform> P: Params;

//#if SG
// Sum `v` over the workgroup (= one subgroup); every thread gets the total. Uniform control flow.
fn wg_sum(v: f32, t: u32) -> f32 { return subgroupAdd(v); }
//#else
var<workgroup> red: array<f32, WG>;

// Sum `v` over the workgroup; every thread gets the total. Called in uniform control flow.
fn wg_sum(v: f32, t: u32) -> f32 {
  red[t] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] += red[t + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier(); // red may be reused right after
  return total;
}
//#endif

// V4 (C % 4 == 0, quad-aligned bindings; src/ops/rmsnorm.ts sets it): rows are read and written by
// quads, T = vec4f and K = 4 values per element, a quarter of the loads (per-lane loops on the CPU
// drivers); otherwise T = f32, K = 1.
//#if V4
alias T = vec4f;
const K: u32 = 4u;
fn hsum(v: vec4f) -> f32 { return (v.x + v.y) + (v.z + v.w); }
//#else
alias T = f32;
const K: u32 = 1u;
fn hsum(v: f32) -> f32 { return v; }
//#endif

// forward bindings
@group(0) @binding(1) var<storage, read_write> out: array<T>;      // (N,C)
@group(0) @binding(2) var<storage, read_write> rstd: array<f32>;   // (N)
@group(0) @binding(3) var<storage, read> inp: array<T>;            // (N,C)
@group(0) @binding(4) var<storage, read> weight: array<T>;         // (C)

@compute @workgroup_size(WG)
fn rmsnorm_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) t: u32) {
  let n = wid.x + wid.y * nwg.x;
  // n is uniform over the workgroup; rows past N still run the barriers, then skip the writes.
  let live = n < P.N;
  let CK = P.C / K;                    // elements (values or quads) per row
  let base = select(0u, n * CK, live);
  var ss = 0.0;
  if (live) {
    for (var c = t; c < CK; c += WG) { let x = inp[base + c]; ss += hsum(x * x); }
  }
  let r = inverseSqrt(wg_sum(ss, t) / f32(P.C) + P.eps);
  if (!live) { return; }
  if (t == 0u) { rstd[n] = r; }
  for (var c = t; c < CK; c += WG) { out[base + c] = inp[base + c] * r * weight[c]; }
}

// backward bindings
@group(0) @binding(1) var<storage, read_write> dinp: array<T>;     // (N,C) +=
@group(0) @binding(2) var<storage, read> dout: array<T>;           // (N,C)
@group(0) @binding(3) var<storage, read> inp_b: array<T>;          // (N,C)
@group(0) @binding(4) var<storage, read> weight_b: array<T>;       // (C)
@group(0) @binding(5) var<storage, read> rstd_b: array<f32>;       // (N)

@compute @workgroup_size(WG)
fn rmsnorm_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) t: u32) {
  let n = wid.x + wid.y * nwg.x;
  let live = n < P.N;
  let CK = P.C / K;
  let base = select(0u, n * CK, live);
  var dot = 0.0; // Σ_c dout·w·inp
  if (live) {
    for (var c = t; c < CK; c += WG) { dot += hsum(dout[base + c] * weight_b[c] * inp_b[base + c]); }
  }
  let total = wg_sum(dot, t);
  if (!live) { return; }
  let r = rstd_b[n];
  let k = r * r * r * total / f32(P.C);
  for (var c = t; c < CK; c += WG) {
    dinp[base + c] += r * weight_b[c] * dout[base + c] - inp_b[base + c] * k;
  }
}
