// AdamW optimizer step with global-norm gradient clipping, and the global squared-norm reduction.
// Legend: n = number of trainable parameters (all LoRA A/B matrices in one flat buffer, up to ~10M).
// global_norm_sq_partial: partials (G) = per-workgroup Σ g² over a fixed grid-stride partition of grads (n)
// global_norm_sq_final:   out (1) = Σ partials (G)         (one workgroup; G ≤ 1024)
//   The partition depends only on n and G, so the sum is bitwise deterministic run to run.
// adamw_step: params, m, v (n) updated in place from grads (n) and normsq (1):
//   s = maxNorm > 0 ? min(1, maxNorm / (sqrt(normsq) + 1e-6)) : 1;  g = s·grad
//   p -= lr·wd·p;  m = b1·m + (1−b1)·g;  v = b2·v + (1−b2)·g²;  p -= lr·(m/bc1) / (sqrt(v/bc2) + eps)
//   with bc1 = 1 − b1^t, bc2 = 1 − b2^t computed on the host (PyTorch AdamW semantics).
//   A non-finite normsq (a NaN or ±Inf anywhere in grads, or Σ g² overflowing f32) skips the step:
//   params, m and v are left as they were, so a NaN / Inf step cannot reach the weights or the
//   moments (src/train rejects that step and rolls back). Tested on the bits (exponent all ones),
//   which a compiler cannot fold away as it may `x != x`.

// Template (src/ops/adamw.ts keeps lines by flag): SG adds global_norm_sq_partial_sg / _final_sg,
// the two reductions with a workgroup of one subgroup (SGW = the adapter's fixed subgroup size) and
// subgroupAdd instead of the barrier tree (on SwiftShader the tree made the norm 4% of a
// tinystories-656k training step). Same partition rule with SGW threads per workgroup.
//#if SG
enable subgroups;
override SGW: u32 = 8u;
//#endif

const WG: u32 = 256u;

struct NormParams { n: u32, groups: u32, _p0: u32, _p1: u32 }

struct AdamParams {
  n: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  wd: f32,
  bc1: f32,
  bc2: f32,
  max_norm: f32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

var<workgroup> red: array<f32, 256>;

// Tree-reduce red[0..256) into red[0]. Called from uniform control flow by every invocation.
fn reduce_sum(lid: u32) {
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k >> 1u) {
    if (lid < k) { red[lid] += red[lid + k]; }
    workgroupBarrier();
  }
}

// ---- global_norm_sq, stage 1 ---------------------------------------------------------------
@group(0) @binding(0) var<uniform> NP: NormParams;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>; // (G)
@group(0) @binding(2) var<storage, read> grads_n: array<f32>;        // (n)

@compute @workgroup_size(256)
fn global_norm_sq_partial(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let lid = lid3.x;
  let stride = NP.groups * WG;
  var s = 0.0;
  var i = wid.x * WG + lid;
  loop {
    if (i >= NP.n) { break; }
    let g = grads_n[i];
    s += g * g;
    i += stride;
  }
  red[lid] = s;
  reduce_sum(lid);
  if (lid == 0u) { partials[wid.x] = red[0]; }
}

// ---- global_norm_sq, stage 2 ---------------------------------------------------------------
// (reuses binding numbers 1..2 with its own names)
@group(0) @binding(1) var<storage, read_write> norm_out: array<f32>;  // (1)
@group(0) @binding(2) var<storage, read> partials_in: array<f32>;     // (G)

@compute @workgroup_size(256)
fn global_norm_sq_final(@builtin(local_invocation_id) lid3: vec3u) {
  let lid = lid3.x;
  var s = 0.0;
  for (var i = lid; i < NP.groups; i += WG) { s += partials_in[i]; }
  red[lid] = s;
  reduce_sum(lid);
  if (lid == 0u) { norm_out[0] = red[0]; }
}

//#if SG
// ---- global_norm_sq, subgroup forms (bindings as in the two stages above) --------------------
@compute @workgroup_size(SGW)
fn global_norm_sq_partial_sg(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let lid = lid3.x;
  let stride = NP.groups * SGW;
  var s = 0.0;
  for (var i = wid.x * SGW + lid; i < NP.n; i += stride) { let g = grads_n[i]; s += g * g; }
  let t = subgroupAdd(s);
  if (lid == 0u) { partials[wid.x] = t; }
}

@compute @workgroup_size(SGW)
fn global_norm_sq_final_sg(@builtin(local_invocation_id) lid3: vec3u) {
  let lid = lid3.x;
  var s = 0.0;
  for (var i = lid; i < NP.groups; i += SGW) { s += partials_in[i]; }
  let t = subgroupAdd(s);
  if (lid == 0u) { norm_out[0] = t; }
}
//#endif

// ---- adamw_step ----------------------------------------------------------------------------
// V4 (n % 4 == 0, quad-aligned buffers; src/ops/adamw.ts sets it): by quads, T = vec4f and AP.n
// counts quads — the same arithmetic per component, a quarter of the loads and stores.
//#if V4
alias T = vec4f;
//#else
alias T = f32;
//#endif
@group(0) @binding(0) var<uniform> AP: AdamParams;
@group(0) @binding(1) var<storage, read_write> params: array<T>; // (n)
@group(0) @binding(2) var<storage, read> grads: array<T>;        // (n)
@group(0) @binding(3) var<storage, read_write> m1: array<T>;     // (n) first moment
@group(0) @binding(4) var<storage, read_write> m2: array<T>;     // (n) second moment
@group(0) @binding(5) var<storage, read> normsq: array<f32>;     // (1)

@compute @workgroup_size(256)
fn adamw_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= AP.n) { return; }
  if ((bitcast<u32>(normsq[0]) & 0x7f800000u) == 0x7f800000u) { return; } // NaN / Inf: no update
  var scale = 1.0;
  if (AP.max_norm > 0.0) {
    scale = min(1.0, AP.max_norm / (sqrt(normsq[0]) + 1e-6));
  }
  let g = grads[i] * scale;
  var p = params[i];
  p -= AP.lr * AP.wd * p;
  let m = AP.beta1 * m1[i] + (1.0 - AP.beta1) * g;
  let v = AP.beta2 * m2[i] + (1.0 - AP.beta2) * g * g;
  m1[i] = m;
  m2[i] = v;
  p -= AP.lr * (m / AP.bc1) / (sqrt(v / AP.bc2) + AP.eps);
  params[i] = p;
}
