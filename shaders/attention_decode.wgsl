// Attention of new query rows against one layer's KV cache (inference: prefill chunks and decode).
// Legend: NQ query rows of one sequence at positions t0 .. t0+NQ−1, NH query heads, NKV kv heads
// (G = NH/NKV query heads per kv head; head h reads kv head h / G), HS head size (≤ 128),
// KVD = NKV*HS, scale = 1/sqrt(HS).
//
// attention_decode_forward  out (NQ, NH*HS) ← q (NQ, NH*HS) (rope applied), kc, vc (≥ t0+NQ rows, KVD)
//   query n (position t = t0 + n) attends cache rows s ≤ t:  out = softmax(q·kcᵀ·scale)·vc
//   (the cache already holds rows t0 .. t0+NQ−1 of this chunk: kv_append runs first).
//
// Work split: one workgroup of WG threads per (head h, query n) = (wid.x, wid.y). Keys go by in
// tiles of WG: thread i scores key s0+i (an HS-long dot with q, which sits in workgroup memory);
// workgroup max/sum reductions update the running max m and sum l (online softmax; every thread
// holds the same m and l); then thread (g, d) (g < GR = WG/HS key groups, d < HS) adds
// Σ_{i ≡ g mod GR} p_i·vc[s0+i, d] into its accumulator (loads coalesced over d). The GR partial
// outputs are summed at the end. No atomics; every output element has one owner.

const WG: u32 = 128u;
const MAX_HS: u32 = 128u;
const NEG: f32 = -1e30;  // running-max start (finite: no inf − inf)
override HS: u32;
override GR: u32 = WG / HS;  // key groups of the P·V product

struct Params { NQ: u32, t0: u32, NH: u32, NKV: u32, scale: f32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;  // (NQ, NH*HS)
@group(0) @binding(2) var<storage, read> q: array<f32>;          // (NQ, NH*HS)
@group(0) @binding(3) var<storage, read> kc: array<f32>;         // (≥ t0+NQ, KVD)
@group(0) @binding(4) var<storage, read> vc: array<f32>;         // (≥ t0+NQ, KVD)

var<workgroup> qs: array<f32, MAX_HS>;  // q·scale of this (n, h)
var<workgroup> pr: array<f32, WG>;      // probabilities of the current tile
var<workgroup> red: array<f32, WG>;     // reduction scratch
var<workgroup> part: array<f32, WG>;    // partial outputs (GR, HS)

// Max / sum of `v` over the workgroup; every thread gets the result. Uniform control flow only.
fn wg_max(v: f32, t: u32) -> f32 {
  red[t] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] = max(red[t], red[t + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn wg_sum(v: f32, t: u32) -> f32 {
  red[t] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] += red[t + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

// grid (NH, NQ)
@compute @workgroup_size(WG)
fn attention_decode_forward(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3u) {
  let h = wid.x;
  let n = wid.y;
  let KVD = P.NKV * HS;
  let kvoff = (h / (P.NH / P.NKV)) * HS;
  let pos = P.t0 + n;  // this query's position: it sees cache rows 0 ..= pos
  let qrow = (n * P.NH + h) * HS;
  if (t < HS) { qs[t] = q[qrow + t] * P.scale; }
  workgroupBarrier();
  let g = t / HS;
  let d = t % HS;
  let pv = g < GR;  // this thread takes part in P·V as (g, d)
  var m = NEG;
  var l = 0.0;
  var acc = 0.0;
  let ntiles = pos / WG + 1u;
  for (var tile = 0u; tile < ntiles; tile++) {
    let s0 = tile * WG;
    let s = s0 + t;
    let live = s <= pos;
    var sc = NEG;
    if (live) {
      let kb = s * KVD + kvoff;
      var x = 0.0;
      for (var e = 0u; e < HS; e++) { x += qs[e] * kc[kb + e]; }
      sc = x;
    }
    let mn = max(m, wg_max(sc, t));
    let alpha = exp(m - mn);
    let p = select(0.0, exp(sc - mn), live);
    pr[t] = p;
    l = l * alpha + wg_sum(p, t);  // wg_sum's barriers also publish pr
    m = mn;
    if (pv) {
      var a = acc * alpha;
      let cnt = min(WG, pos + 1u - s0);
      for (var i = g; i < cnt; i += GR) { a += pr[i] * vc[(s0 + i) * KVD + kvoff + d]; }
      acc = a;
    }
    workgroupBarrier();  // pr is rewritten by the next tile
  }
  if (pv) { part[t] = acc; }  // t = g·HS + d
  workgroupBarrier();
  if (t < HS) {
    var o = 0.0;
    for (var j = 0u; j < GR; j++) { o += part[j * HS + t]; }
    out[qrow + t] = o / l;
  }
}
