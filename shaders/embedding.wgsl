// Token embedding: gather rows of a frozen table (f32 / f16 / q8 / q4, dequantized here), and the
// deterministic scatter-add of its gradient (no atomics).
// Legend: N rows (B*T), C hidden, V vocab.
// embedding_forward:  out (N,C) = wte[ids[n]] (C)        — overwrites; an id ≥ V gives a zero row
// embedding_backward: dwte (V,C) += Σ_{n: ids[n] = v} dout[n]  (ids ≥ V are skipped)
// The table may be bound in row chunks [r0, r1) (bindings are size-limited); one dispatch per chunk,
// each handling only the ids inside it. Row v of the chunk starts at word wbase + (v − r0)·rw.
// Formats (docs/ENGINE.md): rw = C (f32 bits), ceil(C/2) (f16 pairs, element 2w in the low half),
// nb·9 (q8) or nb·5 (q4) words, nb = ceil(C/32).
// One thread per (n, c), c fastest: consecutive threads read consecutive words (coalesced).
// Grid folds into 2-D: i = gid.x + gid.y · nwg.x · WG.

const WG: u32 = 256u;
override FMT: u32 = 0u; // 0 = f32, 1 = q8, 2 = q4, 3 = f16

struct Params { N: u32, C: u32, V: u32, r0: u32, r1: u32, wbase: u32, rw: u32, _p0: u32 }
@group(0) @binding(0) var<uniform> P: Params;

// forward bindings
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (N,C)
@group(0) @binding(2) var<storage, read> ids: array<u32>;       // (N)
@group(0) @binding(3) var<storage, read> wte: array<u32>;       // (V,C) chunk, raw words

// Dequantized wte[v][c] for v in the bound chunk.
fn load(v: u32, c: u32) -> f32 {
  let rb = P.wbase + (v - P.r0) * P.rw;
  if (FMT == 0u) { return bitcast<f32>(wte[rb + c]); }
  if (FMT == 3u) { return unpack2x16float(wte[rb + c / 2u])[c % 2u]; }
  let j = c % 32u;
  if (FMT == 1u) {
    let bw = rb + (c / 32u) * 9u;
    let q = extractBits(bitcast<i32>(wte[bw + 1u + j / 4u]), 8u * (j % 4u), 8u); // sign-extended
    return bitcast<f32>(wte[bw]) * f32(q);
  }
  let bw = rb + (c / 32u) * 5u;
  let code = extractBits(wte[bw + 1u + j / 8u], 4u * (j % 8u), 4u);
  return bitcast<f32>(wte[bw]) * (f32(code) - 8.0);
}

@compute @workgroup_size(WG)
fn embedding_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.N * P.C) { return; }
  let n = i / P.C;
  let c = i - n * P.C;
  let v = ids[n];
  if (v >= P.r0 && v < P.r1) {
    out[i] = load(v, c);
  } else if (v >= P.V && P.r0 == 0u) {
    out[i] = 0.0; // out-of-range id: zero row (written once, by the first chunk)
  }
}

// backward bindings
@group(0) @binding(1) var<storage, read_write> dwte: array<f32>; // (V,C) chunk +=
@group(0) @binding(2) var<storage, read> dout: array<f32>;       // (N,C)
@group(0) @binding(3) var<storage, read> ids_b: array<u32>;      // (N)

// Thread (n, c) owns dwte[ids[n]][c] iff n is the first occurrence of that id; it then sums dout
// over all occurrences (ascending n, a fixed order) and adds once. No two threads write one word.
// Work O(N²·C) instead of O(V·N·C) for a (v, c)-per-thread scan; rows no id names are untouched.
@compute @workgroup_size(WG)
fn embedding_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.N * P.C) { return; }
  let n = i / P.C;
  let c = i - n * P.C;
  let v = ids_b[n];
  if (v < P.r0 || v >= P.r1 || v >= P.V) { return; }
  for (var m = 0u; m < n; m++) {
    if (ids_b[m] == v) { return; } // an earlier row owns this id
  }
  var s = dout[i];
  for (var m = n + 1u; m < P.N; m++) {
    if (ids_b[m] == v) { s += dout[m * P.C + c]; }
  }
  let o = P.wbase + (v - P.r0) * P.C + c;
  dwte[o] += s;
}
