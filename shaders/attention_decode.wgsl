// Attention of new query rows against one layer's KV cache (inference: prefill chunks and decode).
// Legend: NQ query rows of one sequence at positions t0 .. t0+NQ−1, NH query heads, NKV kv heads
// (G = NH/NKV query heads per kv head; head h reads kv head h / G), HS head size (≤ 128),
// KVD = NKV*HS, scale = 1/sqrt(HS).
//
// attention_decode_forward  out (NQ, NH*HS) ← q (NQ, NH*HS) (rope applied), kc, vc (≥ t0+NQ rows, KVD)
//   query n (position t = t0 + n) attends cache rows s ≤ t:  out = softmax(q·kcᵀ·scale)·vc
//   (the cache already holds rows t0 .. t0+NQ−1 of this chunk: kv_append runs first).
//
// Two entry points compute the same thing; src/ops/attention_decode.ts runs attention_decode_split
// (end of file: keys split across threads, no barrier in the key loop) unless told otherwise.
//
// attention_decode_forward (tiled). Work split: one workgroup of WG threads per (head h, query n) = (wid.x, wid.y). Keys go by in
// tiles of WG: thread i scores key s0+i (an HS-long dot with q, which sits in workgroup memory) and
// publishes it; every thread then reads the whole tile to get the tile max (so all threads hold the
// same running max m — no tree reductions: 3 barriers per tile, cheap on the CPU Vulkan drivers),
// publishes its p = exp(score − m), and sums the tile's p into the running sum l (online softmax).
// P·V: with HS ≤ WG/2, thread (g, d) (g < GR = WG/HS key groups, d < HS) adds
// Σ_{i ≡ g mod GR} p_i·vc[s0+i, d] into its accumulator (loads coalesced over d) and the GR partial
// outputs are summed at the end; otherwise thread t owns dims t + WG·j (j < DPT ≤ MAXD). No atomics;
// every output element has one owner. WG (32 by default) is chosen by src/ops/attention_decode.ts:
// small tiles keep the per-thread tile scans short.

override WG: u32 = 32u;                          // threads per workgroup = keys per tile
const MAX_HS: u32 = 128u;
const MAXD: u32 = 4u;                            // head dims per thread at most (HS ≤ MAXD·WG)
const NEG: f32 = -1e30;                          // running-max start (finite: no inf − inf)
override HS: u32;
override GR: u32 = max(1u, WG / HS);             // key groups of the P·V product
override DPT: u32 = (HS + WG - 1u) / WG;         // head dims per thread in P·V

struct Params { NQ: u32, t0: u32, NH: u32, NKV: u32, scale: f32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;  // (NQ, NH*HS)
@group(0) @binding(2) var<storage, read> q: array<f32>;          // (NQ, NH*HS)
//#if V4
// HS % 4 == 0 (src/ops/attention_decode.ts sets V4): the cache read by quads — one load where the
// scalar form makes four (each a per-lane gather on the CPU drivers)
@group(0) @binding(3) var<storage, read> kc: array<vec4f>;       // (≥ t0+NQ, KVD/4)
@group(0) @binding(4) var<storage, read> vc: array<vec4f>;       // (≥ t0+NQ, KVD/4)
fn kcs(i: u32) -> f32 { return kc[i >> 2u][i & 3u]; }
fn vcs(i: u32) -> f32 { return vc[i >> 2u][i & 3u]; }
//#else
@group(0) @binding(3) var<storage, read> kc: array<f32>;         // (≥ t0+NQ, KVD)
@group(0) @binding(4) var<storage, read> vc: array<f32>;         // (≥ t0+NQ, KVD)
fn kcs(i: u32) -> f32 { return kc[i]; }
fn vcs(i: u32) -> f32 { return vc[i]; }
//#endif

var<workgroup> qs: array<f32, MAX_HS>;  // q·scale of this (n, h)
var<workgroup> sc: array<f32, WG>;      // scores of the current tile
var<workgroup> pr: array<f32, WG>;      // probabilities of the current tile (against the running max)
var<workgroup> part: array<f32, WG>;    // partial outputs (GR, HS) when GR > 1

// grid (NH, NQ)
@compute @workgroup_size(WG)
fn attention_decode_forward(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3u) {
  let h = wid.x;
  let n = wid.y;
  let KVD = P.NKV * HS;
  let kvoff = (h / (P.NH / P.NKV)) * HS;
  let pos = P.t0 + n;  // this query's position: it sees cache rows 0 ..= pos
  let qrow = (n * P.NH + h) * HS;
  for (var e = t; e < HS; e += WG) { qs[e] = q[qrow + e] * P.scale; }
  workgroupBarrier();
  // P·V role: key group g, dims d0 + WG·j (j < DPT); with GR > 1 (HS ≤ WG/2) DPT = 1 and d0 = t % HS
  let g = select(0u, t / HS, GR > 1u);
  let d0 = select(t, t % HS, GR > 1u);
  let pv = g < GR;
  var m = NEG;
  var l = 0.0;
  var acc: array<f32, MAXD>;
  for (var j = 0u; j < DPT; j++) { acc[j] = 0.0; }
  let ntiles = pos / WG + 1u;
  for (var tile = 0u; tile < ntiles; tile++) {
    let s0 = tile * WG;
    let cnt = min(WG, pos + 1u - s0);  // visible keys of this tile: s0 .. s0+cnt−1
    let live = t < cnt;
    var x = NEG;
    if (live) {
      let kb = (s0 + t) * KVD + kvoff;
      x = 0.0;
      for (var e = 0u; e < HS; e++) { x += qs[e] * kcs(kb + e); }
    }
    sc[t] = x;
    workgroupBarrier();
    var mt = NEG;
    for (var i = 0u; i < cnt; i++) { mt = max(mt, sc[i]); }
    let mn = max(m, mt);
    let alpha = exp(m - mn);
    pr[t] = select(0.0, exp(x - mn), live);
    workgroupBarrier();
    var lt = 0.0;
    for (var i = 0u; i < cnt; i++) { lt += pr[i]; }
    l = l * alpha + lt;
    m = mn;
    if (pv) {
      for (var j = 0u; j < DPT; j++) {
        let d = d0 + WG * j;
        if (d < HS) {
          var a = acc[j] * alpha;
          for (var i = g; i < cnt; i += GR) { a += pr[i] * vcs((s0 + i) * KVD + kvoff + d); }
          acc[j] = a;
        }
      }
    }
    workgroupBarrier();  // sc and pr are rewritten by the next tile
  }
  if (GR > 1u) {
    if (pv) { part[t] = acc[0]; }  // t = g·HS + d0
    workgroupBarrier();
    if (t < HS) {
      var o = 0.0;
      for (var j = 0u; j < GR; j++) { o += part[j * HS + t]; }
      out[qrow + t] = o / l;
    }
  } else {
    for (var j = 0u; j < DPT; j++) {
      let d = d0 + WG * j;
      if (d < HS) { out[qrow + d] = acc[j] / l; }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// attention_decode_split: the same result with no barrier inside the key loop (what the CPU
// Vulkan drivers reward, where a workgroup barrier is a coroutine switch per invocation).
// One workgroup of WG threads per (head h, query n); thread t takes keys s ≡ t (mod WG) and keeps
// its own online-softmax state (max m, sum l, output accumulator acc over the head's dims in quads
// of 4; dims ≥ HS are zero in q, so they add nothing). Then one barrier and a merge: with
// M = max_t m_t and w_t = exp(m_t − M), out[d] = Σ_t w_t·acc_t[d] / Σ_t w_t·l_t. Needs HS ≤ MAX_HS.
const MAXQ: u32 = MAX_HS / 4u;
override HQ: u32 = (HS + 3u) / 4u;               // quads per head
var<workgroup> mst: array<f32, WG>;              // per-thread running max
var<workgroup> lst: array<f32, WG>;              // per-thread running sum
var<workgroup> ast: array<vec4f, WG * HQ>;       // per-thread accumulators (WG, HQ)

// row values [b + 4j .. b + 4j + 3] of a cache row of HS values starting at b (dims ≥ HS clamped into the row)
//#if V4
fn kq(b: u32, j: u32) -> vec4f { return kc[(b >> 2u) + j]; }
fn vq(b: u32, j: u32) -> vec4f { return vc[(b >> 2u) + j]; }
//#else
fn kq(b: u32, j: u32) -> vec4f {
  let e = 4u * j;
  let l = HS - 1u;
  return vec4f(kc[b + min(e, l)], kc[b + min(e + 1u, l)], kc[b + min(e + 2u, l)], kc[b + min(e + 3u, l)]);
}
fn vq(b: u32, j: u32) -> vec4f {
  let e = 4u * j;
  let l = HS - 1u;
  return vec4f(vc[b + min(e, l)], vc[b + min(e + 1u, l)], vc[b + min(e + 2u, l)], vc[b + min(e + 3u, l)]);
}
//#endif

// q·scale, values 4j..4j+3 of the query row starting at qrow (dims ≥ HS zero)
fn qquad(qrow: u32, j: u32) -> vec4f {
  let e = 4u * j;
  let v = vec4f(q[qrow + min(e, HS - 1u)], q[qrow + min(e + 1u, HS - 1u)], q[qrow + min(e + 2u, HS - 1u)], q[qrow + min(e + 3u, HS - 1u)]);
  return select(vec4f(0.0), v * P.scale, vec4<bool>(e < HS, e + 1u < HS, e + 2u < HS, e + 3u < HS));
}

// grid (NH, NQ). The loops over the head's quads (//#unroll) are unrolled by the launcher
// (src/ops/util.ts unrollLoops: qv and acc then live in registers on SwiftShader too).
@compute @workgroup_size(WG)
fn attention_decode_split(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3u) {
  let h = wid.x;
  let n = wid.y;
  let KVD = P.NKV * HS;
  let kvoff = (h / (P.NH / P.NKV)) * HS;
  let pos = P.t0 + n;
  let qrow = (n * P.NH + h) * HS;
  var qv: array<vec4f, MAXQ>;
  var acc: array<vec4f, MAXQ>;
  for (var j = 0u; j < HQ; j++) { qv[j] = qquad(qrow, j); acc[j] = vec4f(0.0); } //#unroll
  var m = NEG;
  var l = 0.0;
  for (var s = t; s <= pos; s += WG) {
    let b = s * KVD + kvoff;
    var x = 0.0;
    for (var j = 0u; j < HQ; j++) { x += dot(qv[j], kq(b, j)); } //#unroll
    let mn = max(m, x);
    let alpha = exp(m - mn);
    let p = exp(x - mn);
    l = l * alpha + p;
    m = mn;
    for (var j = 0u; j < HQ; j++) { acc[j] = acc[j] * alpha + p * vq(b, j); } //#unroll
  }
  mst[t] = m;
  lst[t] = l;
  for (var j = 0u; j < HQ; j++) { ast[t * HQ + j] = acc[j]; } //#unroll
  workgroupBarrier();
  var M = NEG;
  for (var i = 0u; i < WG; i++) { M = max(M, mst[i]); }
  var L = 0.0;
  for (var i = 0u; i < WG; i++) { L += lst[i] * exp(mst[i] - M); }
  for (var j = t; j < HQ; j += WG) {
    var o = vec4f(0.0);
    for (var i = 0u; i < WG; i++) { o += ast[i * HQ + j] * exp(mst[i] - M); }
    o /= L;
    let e = 4u * j;
    for (var c = 0u; c < 4u; c++) { if (e + c < HS) { out[qrow + e + c] = o[c]; } }
  }
}
