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

// forward bindings
@group(0) @binding(1) var<storage, read_write> out: array<f32>;    // (N,C)
@group(0) @binding(2) var<storage, read_write> rstd: array<f32>;   // (N)
@group(0) @binding(3) var<storage, read> inp: array<f32>;          // (N,C)
@group(0) @binding(4) var<storage, read> weight: array<f32>;       // (C)

@compute @workgroup_size(WG)
fn rmsnorm_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) t: u32) {
  let n = wid.x + wid.y * nwg.x;
  // n is uniform over the workgroup; rows past N still run the barriers, then skip the writes.
  let live = n < P.N;
  let base = select(0u, n * P.C, live);
  var ss = 0.0;
  if (live) {
    for (var c = t; c < P.C; c += WG) { let x = inp[base + c]; ss += x * x; }
  }
  let r = inverseSqrt(wg_sum(ss, t) / f32(P.C) + P.eps);
  if (!live) { return; }
  if (t == 0u) { rstd[n] = r; }
  for (var c = t; c < P.C; c += WG) { out[base + c] = inp[base + c] * r * weight[c]; }
}

// backward bindings
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;   // (N,C) +=
@group(0) @binding(2) var<storage, read> dout: array<f32>;         // (N,C)
@group(0) @binding(3) var<storage, read> inp_b: array<f32>;        // (N,C)
@group(0) @binding(4) var<storage, read> weight_b: array<f32>;     // (C)
@group(0) @binding(5) var<storage, read> rstd_b: array<f32>;       // (N)

@compute @workgroup_size(WG)
fn rmsnorm_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) t: u32) {
  let n = wid.x + wid.y * nwg.x;
  let live = n < P.N;
  let base = select(0u, n * P.C, live);
  var dot = 0.0; // Σ_c dout·w·inp
  if (live) {
    for (var c = t; c < P.C; c += WG) { dot += dout[base + c] * weight_b[c] * inp_b[base + c]; }
  }
  let total = wg_sum(dot, t);
  if (!live) { return; }
  let r = rstd_b[n];
  let k = r * r * r * total / f32(P.C);
  for (var c = t; c < P.C; c += WG) {
    dinp[base + c] += r * weight_b[c] * dout[base + c] - inp_b[base + c] * k;
  }
}
