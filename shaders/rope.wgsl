// Rotary position embedding, in place, both pairings; backward is the rotation by −angle.
// Legend: N rows (B*T), H heads (NH for q, NKV for k), HS head size.
// x (N,H,HS) in place; pos u32 (N); invFreq (HS/2). Pair i (0 ≤ i < HS/2) of head (n,h):
//   style 'half'  (P.pairs = 0, HF rotate-half):     (x[i], x[i + HS/2])
//   style 'pairs' (P.pairs = 1, GGUF/llama2.c):      (x[2i], x[2i+1])
// angle = f32(pos[n]) · invFreq[i]  (rounded to f32 as in HF);  (a, b) ← (a·cos − b·sin, a·sin + b·cos)
// cos/sin come from our own range reduction + polynomial (cos_sin below), not the builtins.
// One thread per pair; the 1-D grid folds into 2-D: idx = gid.x + gid.y * nwg.x * WG.
// rope_forward4 / rope_backward4: one thread per 4 consecutive pairs (HS/2 % 4 == 0, quad-aligned x):
// the same arithmetic by vec4 — a quarter of the loads (per-lane loops on the CPU drivers).
// rope_qkv_forward (inference; forward only, end of file): rows [q | k | v] of one linear over the
// concatenated q, k, v weights, split in one pass — q rotated into its own buffer, k rotated and v
// copied into the KV cache rows t0.. (src/model/generate.ts: a decode step's rope and cache writes
// in one dispatch instead of three).

const WG: u32 = 256u;

struct Params { N: u32, H: u32, HS: u32, pairs: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;     // (N,H,HS) in place
@group(0) @binding(2) var<storage, read> pos: array<u32>;         // (N)
@group(0) @binding(3) var<storage, read> invFreq: array<f32>;     // (HS/2)

// (cos, sin) of an f32 angle, accurate to ~1e-7 for |a| up to ~2^17 on every GPU. WGSL's own
// sin/cos only promise 2^-11 absolute error, and only on [−π, π] (SwiftShader really is ~1e-4 off).
// Cody–Waite reduction by π/2 = HI + MID + LO: HI (5 significant bits) and MID (7 bits) make k·HI,
// k·MID and both subtractions exact for k < 2^17; then cephes' sinf/cosf polynomials on [−π/4, π/4].
const PIO2_HI: f32 = 1.5625;
const PIO2_MID: f32 = 0.0081787109375;
const PIO2_LO: f32 = 1.1761585483327508e-4;
const TWO_OVER_PI: f32 = 0.6366197723675814;

fn cos_sin(a: f32) -> vec2f {
  let k = round(a * TWO_OVER_PI);
  let r = ((a - k * PIO2_HI) - k * PIO2_MID) - k * PIO2_LO;
  let z = r * r;
  let s = r + r * z * ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1);
  let c = 1.0 - 0.5 * z + z * z * ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2);
  switch (i32(k) & 3) {
    case 0: { return vec2f(c, s); }
    case 1: { return vec2f(-s, c); }
    case 2: { return vec2f(-c, -s); }
    default: { return vec2f(s, -c); }
  }
}

// The two elements of pair i within a head row (pairs: GGUF adjacent; else HF rotate-half).
fn pair_at(i: u32, half: u32, pairs: bool) -> vec2u {
  if (pairs) { return vec2u(2u * i, 2u * i + 1u); }
  return vec2u(i, i + half);
}

// Rotate pair `idx` by sign·angle (sign = 1 forward, −1 backward).
fn rotate(idx: u32, sign: f32) {
  let half = P.HS / 2u;
  let i = idx % half;
  let nh = idx / half;          // n·H + h
  let n = nh / P.H;
  let a = f32(pos[n]) * invFreq[i];
  let cs = cos_sin(a);
  let c = cs.x;
  let s = sign * cs.y;
  let e = nh * P.HS + pair_at(i, half, P.pairs != 0u);
  let ia = e.x;
  let ib = e.y;
  let xa = x[ia];
  let xb = x[ib];
  x[ia] = xa * c - xb * s;
  x[ib] = xa * s + xb * c;
}

@compute @workgroup_size(WG)
fn rope_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= P.N * P.H * (P.HS / 2u)) { return; }
  rotate(idx, 1.0);
}

@compute @workgroup_size(WG)
fn rope_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= P.N * P.H * (P.HS / 2u)) { return; }
  rotate(idx, -1.0);
}

// ---- by quads of pairs ---------------------------------------------------------------------------
@group(0) @binding(1) var<storage, read_write> x4: array<vec4f>;
@group(0) @binding(3) var<storage, read> invFreq4: array<vec4f>;

// cos_sin of four angles (same operations as cos_sin, the quadrant chosen by select): (cos, sin)
fn cos_sin4(a: vec4f) -> mat2x4f {
  let k = round(a * TWO_OVER_PI);
  let r = ((a - k * PIO2_HI) - k * PIO2_MID) - k * PIO2_LO;
  let z = r * r;
  let s = r + r * z * ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1);
  let c = 1.0 - 0.5 * z + z * z * ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2);
  let q = vec4i(k) & vec4i(3);
  let odd = (q & vec4i(1)) != vec4i(0);   // quadrants 1, 3: cos and sin swap
  let cc = select(c, s, odd);
  let ss = select(s, c, odd);
  let negc = (q == vec4i(1)) | (q == vec4i(2));
  let negs = q >= vec4i(2);
  return mat2x4f(select(cc, -cc, negc), select(ss, -ss, negs));
}

// Rotate pairs 4·idx4 .. 4·idx4+3 (one head row) by sign·angle.
fn rotate4(idx4: u32, sign: f32) {
  let half = P.HS / 2u;
  let q4 = half / 4u;            // quads of pairs per head row
  let i = (idx4 % q4) * 4u;      // first pair
  let nh = idx4 / q4;
  let n = nh / P.H;
  let cs = cos_sin4(f32(pos[n]) * invFreq4[i / 4u]);
  let c = cs[0];
  let s = sign * cs[1];
  let base = (nh * P.HS) / 4u;   // quad index of the head row
  if (P.pairs != 0u) {
    // pairs (2i, 2i+1) .. (2i+6, 2i+7): two quads, even lanes a, odd lanes b
    let q0 = base + i / 2u;
    let v0 = x4[q0];
    let v1 = x4[q0 + 1u];
    let xa = vec4f(v0.x, v0.z, v1.x, v1.z);
    let xb = vec4f(v0.y, v0.w, v1.y, v1.w);
    let ya = xa * c - xb * s;
    let yb = xa * s + xb * c;
    x4[q0] = vec4f(ya.x, yb.x, ya.y, yb.y);
    x4[q0 + 1u] = vec4f(ya.z, yb.z, ya.w, yb.w);
  } else {
    let qa = base + i / 4u;
    let qb = qa + half / 4u;
    let xa = x4[qa];
    let xb = x4[qb];
    x4[qa] = xa * c - xb * s;
    x4[qb] = xa * s + xb * c;
  }
}

@compute @workgroup_size(WG)
fn rope_forward4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= P.N * P.H * (P.HS / 8u)) { return; }
  rotate4(idx, 1.0);
}

@compute @workgroup_size(WG)
fn rope_backward4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= P.N * P.H * (P.HS / 8u)) { return; }
  rotate4(idx, -1.0);
}

// ---- rope_qkv_forward --------------------------------------------------------------------------
// qkv (N, W) with W = (NH + 2·NKV)·HS: row n = [q (NH·HS) | k (NKV·HS) | v (NKV·HS)], position pos[n].
// Thread (n, h, i) for h < NH + NKV and pair i: rotates pair i of q head h (h < NH) into qo (N, NH·HS),
// or of k head g = h − NH into kc row t0+n — and copies the same two elements of v head g into vc
// row t0+n. Same angle and cos_sin as rope_forward.
struct QkvParams { N: u32, NH: u32, NKV: u32, HS: u32, pairs: u32, t0: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> Q: QkvParams;
@group(0) @binding(1) var<storage, read_write> qo: array<f32>;   // (N, NH·HS)
@group(0) @binding(4) var<storage, read_write> kc: array<f32>;   // (≥ t0+N, NKV·HS)
@group(0) @binding(5) var<storage, read_write> vc: array<f32>;   // (≥ t0+N, NKV·HS)
@group(0) @binding(6) var<storage, read> qkv: array<f32>;        // (N, W)

@compute @workgroup_size(WG)
fn rope_qkv_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * WG;
  let half = Q.HS / 2u;
  let H = Q.NH + Q.NKV;
  if (idx >= Q.N * H * half) { return; }
  let i = idx % half;
  let nh = idx / half;           // n·H + h
  let n = nh / H;
  let h = nh % H;
  let cs = cos_sin(f32(pos[n]) * invFreq[i]);
  let e = pair_at(i, half, Q.pairs != 0u);
  let ia = e.x;
  let ib = e.y;
  let KVD = Q.NKV * Q.HS;
  let row = n * (Q.NH * Q.HS + 2u * KVD);
  let src = row + h * Q.HS;      // head h: q heads, then k heads
  let xa = qkv[src + ia];
  let xb = qkv[src + ib];
  let ya = xa * cs.x - xb * cs.y;
  let yb = xa * cs.y + xb * cs.x;
  if (h < Q.NH) {
    let d = (n * Q.NH + h) * Q.HS;
    qo[d + ia] = ya;
    qo[d + ib] = yb;
  } else {
    let g = h - Q.NH;
    let d = (Q.t0 + n) * KVD + g * Q.HS;
    kc[d + ia] = ya;
    kc[d + ib] = yb;
    let vs = row + Q.NH * Q.HS + KVD + g * Q.HS;
    vc[d + ia] = qkv[vs + ia];
    vc[d + ib] = qkv[vs + ib];
  }
}
