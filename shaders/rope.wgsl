// Rotary position embedding, in place, both pairings; backward is the rotation by −angle.
// Legend: N rows (B*T), H heads (NH for q, NKV for k), HS head size.
// x (N,H,HS) in place; pos u32 (N); invFreq (HS/2). Pair i (0 ≤ i < HS/2) of head (n,h):
//   style 'half'  (P.pairs = 0, HF rotate-half):     (x[i], x[i + HS/2])
//   style 'pairs' (P.pairs = 1, GGUF/llama2.c):      (x[2i], x[2i+1])
// angle = f32(pos[n]) · invFreq[i]  (rounded to f32 as in HF);  (a, b) ← (a·cos − b·sin, a·sin + b·cos)
// cos/sin come from our own range reduction + polynomial (cos_sin below), not the builtins.
// One thread per pair; the 1-D grid folds into 2-D: idx = gid.x + gid.y * nwg.x * WG.

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
  let base = nh * P.HS;
  var ia: u32; var ib: u32;
  if (P.pairs != 0u) { ia = base + 2u * i; ib = ia + 1u; } else { ia = base + i; ib = ia + half; }
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
