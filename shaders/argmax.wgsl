// Greedy token choice on the GPU: the index of the largest value of each row.
// Legend: N rows, V vocab.
// argmax_forward: out u32 (N) = argmax_v inp[n, v] over inp (N, V); ties go to the lowest index;
//   NaN never wins; a row with no comparable value (all NaN) gives 0.
// One workgroup of WG threads per row (rows fold into 2-D: row = wid.x + wid.y * nwg.x): each thread
// scans a strided slice keeping its first maximum, then a tree reduction over (value, index).
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

struct Params { N: u32, V: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;  // (N)
@group(0) @binding(2) var<storage, read> inp: array<f32>;        // (N, V)

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

@compute @workgroup_size(WG)
fn argmax_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) t: u32) {
  let n = wid.x + wid.y * nwg.x;
  let live = n < P.N;
  var best = 0.0;
  var idx = NONE;
  if (live) {
    let base = n * P.V;
    for (var v = t; v < P.V; v += WG) {
      let x = inp[base + v];
      if (x == x && (idx == NONE || x > best)) { best = x; idx = v; }
    }
  }
//#if SG
  // lanes without a value offer the lowest finite f32 to the max and NONE to the min. No lane holds
  // m only when every value is −∞: then the lowest index of any lane with a value wins (j0).
  let has = idx != NONE;
  let m = subgroupMax(select(-3.4028234e38, best, has));
  let j = subgroupMin(select(NONE, idx, has && best == m));
  let j0 = subgroupMin(select(NONE, idx, has));
  let w = select(j, j0, j == NONE);
  if (live && t == 0u) { out[n] = select(w, 0u, w == NONE); }
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
  if (live && t == 0u) { out[n] = select(bi[0], 0u, bi[0] == NONE); }
//#endif
}
