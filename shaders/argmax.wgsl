// Greedy token choice on the GPU: the index of the largest value of each row.
// Legend: N rows, V vocab, C chunks per row (split form), CH values per chunk.
// argmax_forward: out u32 (N) = argmax_v inp[n, v] over inp (N, V); ties go to the lowest index;
//   NaN never wins; a row with no comparable value (all NaN) gives 0.
// One workgroup of WG threads per row (rows fold into 2-D: row = wid.x + wid.y * nwg.x): each thread
// scans a strided slice keeping its first maximum, then a reduction over (value, index) (reduce_pair).
// Split form, for long rows (a large vocabulary): argmax_partial — workgroup (c, n) reduces chunk c
// of row n (values c·CH .. (c+1)·CH − 1) to part[n·C + c] = (value bits, index) — then
// argmax_final — one workgroup per row reduces its C pairs the same way. One workgroup walking
// 49,152 logits alone took 450 µs per decode token on an H100 (12% of the token's GPU time).
// Template (src/ops/argmax.ts keeps lines by flag): SG — where subgroups have one fixed size S — makes
// the workgroup one subgroup (WG = S, an override constant) and the reduction subgroupMax of the
// values, then subgroupMin of the indices holding it: no barriers (450 µs per decode argmax on
// SwiftShader with the tree's nine).
//#if SG
enable subgroups;

override WG: u32 = 8u;
//#else

const WG: u32 = 256u;
//#endif
const NONE: u32 = 0xffffffffu;

struct Params { N: u32, V: u32, C: u32, CH: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;  // (N) — argmax_forward, argmax_final
@group(0) @binding(2) var<storage, read> inp: array<f32>;        // (N, V) — argmax_forward, argmax_partial
// the split form's pairs (N, C): (value bits, index); the same binding numbers as out / inp
@group(0) @binding(1) var<storage, read_write> pout: array<vec2u>; // argmax_partial
@group(0) @binding(2) var<storage, read> pin: array<vec2u>;        // argmax_final

//#if !SG
var<workgroup> bv: array<f32, WG>;
var<workgroup> bi: array<u32, WG>;
//#endif

// (value b, index j) beats (value a, index i): larger value, or equal value and lower index;
// NONE loses to every real index.
fn beats(b: f32, j: u32, a: f32, i: u32) -> bool {
  if (j == NONE) { return false; }
  if (i == NONE) { return true; }
  return b > a || (b == a && j < i);
}

// The workgroup's best (value, index) over every thread's (best, idx) (idx NONE: no value), as
// (value bits, index); index NONE when no thread has a value. Call in uniform control flow.
fn reduce_pair(t: u32, best: f32, idx: u32) -> vec2u {
//#if SG
  // lanes without a value offer the lowest finite f32 to the max and NONE to the min. No lane holds
  // m only when every value is −∞: then the lowest index of any lane with a value wins (j0).
  let has = idx != NONE;
  let m = subgroupMax(select(-3.4028234e38, best, has));
  let j = subgroupMin(select(NONE, idx, has && best == m));
  let j0 = subgroupMin(select(NONE, idx, has));
  let w = select(j, j0, j == NONE);
  let wv = subgroupMin(select(3.4028234e38, best, has && idx == w)); // the winner's own value
  return vec2u(bitcast<u32>(wv), w);
//#else
  bv[t] = best;
  bi[t] = idx;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s && beats(bv[t + s], bi[t + s], bv[t], bi[t])) {
      bv[t] = bv[t + s];
      bi[t] = bi[t + s];
    }
    workgroupBarrier();
  }
  let r = vec2u(bitcast<u32>(bv[0]), bi[0]);
  workgroupBarrier(); // bv / bi are reused by a later call
  return r;
//#endif
}

// this thread's first maximum over inp[base + v] for v in [lo, hi) with stride WG from lo + t
fn scan(base: u32, lo: u32, hi: u32, t: u32) -> vec2u {
  var best = 0.0;
  var idx = NONE;
  for (var v = lo + t; v < hi; v += WG) {
    let x = inp[base + v];
    if (x == x && (idx == NONE || x > best)) { best = x; idx = v; }
  }
  return vec2u(bitcast<u32>(best), idx);
}

@compute @workgroup_size(WG)
fn argmax_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) t: u32) {
  let n = wid.x + wid.y * nwg.x;
  let live = n < P.N;
  var mine = vec2u(0u, NONE);
  if (live) { mine = scan(n * P.V, 0u, P.V, t); }
  let r = reduce_pair(t, bitcast<f32>(mine.x), mine.y);
  if (live && t == 0u) { out[n] = select(r.y, 0u, r.y == NONE); }
}

// grid (C, N): chunk wid.x of row wid.y → part[n·C + c] (index NONE: the chunk has no comparable value)
@compute @workgroup_size(WG)
fn argmax_partial(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let c = wid.x;
  let n = wid.y;
  let lo = c * P.CH;
  let mine = scan(n * P.V, lo, min(lo + P.CH, P.V), t);
  let r = reduce_pair(t, bitcast<f32>(mine.x), mine.y);
  if (t == 0u) { pout[n * P.C + c] = r; }
}

// one workgroup per row (folded as argmax_forward's): its C pairs
@compute @workgroup_size(WG)
fn argmax_final(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) t: u32) {
  let n = wid.x + wid.y * nwg.x;
  let live = n < P.N;
  var best = 0.0;
  var idx = NONE;
  if (live) {
    for (var c = t; c < P.C; c += WG) {
      let pr = pin[n * P.C + c];
      let v = bitcast<f32>(pr.x);
      if (beats(v, pr.y, best, idx)) { best = v; idx = pr.y; }
    }
  }
  let r = reduce_pair(t, best, idx);
  if (live && t == 0u) { out[n] = select(r.y, 0u, r.y == NONE); }
}
