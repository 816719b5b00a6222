// Causal grouped-query self-attention with a padding mask, flash-attention style: no (T,T)
// probability matrix is ever stored; the backward recomputes P from the saved log-sum-exp.
// Legend: B batch, T time, N = B*T rows, NH query heads, NKV kv heads (G = NH/NKV heads per kv
// head; head h reads kv head h / G), HS head size (≤ 128), scale = 1/sqrt(HS).
// Key s of batch b is visible to query t iff s ≤ t and valid[b*T+s] = 1. A query with no visible
// key gets out 0, lse 0 and contributes nothing to any gradient.
//
// attention_forward        out (N, NH*HS), lse (B*NH*T) ← q (N, NH*HS), k, v (N, NKV*HS), valid u32 (N)
// attention_backward_prep  ld (B*NH*T) vec2 = (lse, D = rowsum(dout∘out))
// attention_backward_dq    dq (N, NH*HS) += scale · Σ_s dS[t,s]·k[s],  dS = P∘(dP − D), dP = dout·vᵀ
// attention_backward_dkv   dk (N, NKV*HS) += scale · Σ_{t, heads of group} dS[t,s]·q[t]
//                          dv (N, NKV*HS) += Σ_{t, heads of group} P[t,s]·dout[t]
//
// Work split (forward, dq, dkv): a workgroup of WG = 64 threads owns R = WG/L rows (query rows;
// key rows for dkv) of one (batch, head). The L lanes of a row each hold CPT vec4 chunks of the
// head dimension in registers (chunk lane + L·i). The other side (keys/values, or queries/dout for
// dkv) is streamed through workgroup memory in tiles of BK rows; each lane's partial dot products
// are reduced across the L lanes through workgroup memory. The forward keeps a running max and sum
// per query (online softmax, one pass over keys). No atomics: every output element has one owner.
// All global reads and writes are coalesced scalar loops through the workgroup tiles (own rows are
// staged in and out the same way), which also handles HS % 4 ≠ 0 (tile rows are zero-padded).

// ---- specialisation (pipeline-overridable constants, chosen by src/ops/attention.ts) ----------
override HS: u32;                       // head size
override L: u32;                        // lanes per row (1, 2, 4 or 8)
override BK: u32;                       // tile capacity in rows (1..16); P.bk ≤ BK rows are used
const WG: u32 = 64u;                    // threads per workgroup
const MAXC: u32 = 4u;                   // vec4 chunks per lane at most (HS ≤ 16·L)
override R: u32 = WG / L;               // own rows per workgroup
override HC: u32 = (HS + 3u) / 4u;      // vec4 chunks per head row
override CPT: u32 = (HC + L - 1u) / L;  // chunks per lane
override HCP: u32 = CPT * L;            // vec4 chunks per tile row (zero-padded)
override RW: u32 = 4u * HCP;            // floats per tile row
override TR: u32 = max(BK, R);          // tile rows: a streamed tile (BK) or the own rows (R)

// bk: streamed rows per tile (≤ BK); nl = L. Loops over tile rows and lanes use these runtime values
// so that compilers do not unroll them (fully unrolled, llvmpipe's JIT took up to a minute per kernel).
struct Params { B: u32, T: u32, NH: u32, NKV: u32, scale: f32, n: u32, bk: u32, nl: u32 }
@group(0) @binding(0) var<uniform> P: Params;

// Workgroup memory (each entry point allocates only what it uses).
var<workgroup> tA: array<vec4f, TR * HCP>;   // (TR, HCP) vec4: k (fwd, dq) or q·scale (dkv) tiles
var<workgroup> tB: array<vec4f, TR * HCP>;   // (TR, HCP) vec4: v (fwd, dq) or dout (dkv) tiles
var<workgroup> red1: array<f32, BK * WG>;    // partial scores (R, L, BK) = (thread, BK)
var<workgroup> red2: array<f32, BK * WG>;    // partial dP (R, L, BK)
var<workgroup> kvis: array<u32, BK>;         // key of the tile is real (valid and < T)
var<workgroup> rowld: array<vec2f, BK>;      // (lse, D) of the tile's query rows (dkv)

// ---- bindings: entry points reuse numbers; q, k, v, dout keep one number throughout ------------
// forward: 1 out, 2 lse, 3 q, 4 k, 5 v, 6 valid
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read> q: array<f32>;
@group(0) @binding(4) var<storage, read> k: array<f32>;
@group(0) @binding(5) var<storage, read> v: array<f32>;
@group(0) @binding(6) var<storage, read> valid_f: array<u32>;
// prep: 1 ld, 2 lse, 3 out, 4 dout
@group(0) @binding(1) var<storage, read_write> ld_w: array<vec2f>;
@group(0) @binding(2) var<storage, read> lse_p: array<f32>;
@group(0) @binding(3) var<storage, read> out_p: array<f32>;
@group(0) @binding(4) var<storage, read> dout_p: array<f32>;
// dq: 1 dq, 2 ld, 3 q, 4 k, 5 v, 6 dout, 7 valid
@group(0) @binding(1) var<storage, read_write> dq: array<f32>;
@group(0) @binding(2) var<storage, read> ld_q: array<vec2f>;
@group(0) @binding(6) var<storage, read> dout: array<f32>;
@group(0) @binding(7) var<storage, read> valid_q: array<u32>;
// dkv: 1 dk, 2 dv, 3 q, 4 k, 5 v, 6 dout, 7 ld, 8 valid
@group(0) @binding(1) var<storage, read_write> dk: array<f32>;
@group(0) @binding(2) var<storage, read_write> dv: array<f32>;
@group(0) @binding(7) var<storage, read> ld_k: array<vec2f>;
@group(0) @binding(8) var<storage, read> valid_k: array<u32>;

const NEG: f32 = -1e30;  // running-max start (finite: no inf − inf)

// Element d (< RW) of the head row starting at `base`; 0 past HS (the zero padding of a tile row).
fn eq(base: u32, d: u32) -> f32 { return select(0.0, q[base + d], d < HS); }
fn ek(base: u32, d: u32) -> f32 { return select(0.0, k[base + d], d < HS); }
fn ev(base: u32, d: u32) -> f32 { return select(0.0, v[base + d], d < HS); }
fn edo(base: u32, d: u32) -> f32 { return select(0.0, dout[base + d], d < HS); }

// Lane reduction of the partial dots, in place: thread (r, lane) sums columns c ≡ lane (mod L) of
// row r over the L lanes into the lane-0 slot, so red[r·L·BK + c] then holds the full dot product.
// (Each column is read and written by one thread only; a barrier must follow.)
fn reduce1(r: u32, lane: u32) {
  let o = r * L * BK;
  for (var c = lane; c < P.bk; c += P.nl) {
    var x = red1[o + c];
    for (var j = 1u; j < P.nl; j++) { x += red1[o + j * BK + c]; }
    red1[o + c] = x;
  }
}
fn reduce2(r: u32, lane: u32) {
  let o = r * L * BK;
  for (var c = lane; c < P.bk; c += P.nl) {
    var x = red1[o + c];
    var y = red2[o + c];
    for (var j = 1u; j < P.nl; j++) {
      x += red1[o + j * BK + c];
      y += red2[o + j * BK + c];
    }
    red1[o + c] = x;
    red2[o + c] = y;
  }
}

// ---- forward ------------------------------------------------------------------------------------
// grid (ceil(T/R), B*NH); a workgroup handles queries t0 .. t0+R−1 of (b, h) = divmod(y, NH).
@compute @workgroup_size(WG)
fn attention_forward(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u,
                     @builtin(num_workgroups) nwg: vec3u) {
  let T = P.T;
  let bh = wid.y;
  let b = bh / P.NH;
  let h = bh % P.NH;
  let qs = P.NH * HS;
  let ks = P.NKV * HS;
  let kvoff = (h / (P.NH / P.NKV)) * HS;
  let r = lid / L;
  let lane = lid % L;
  let t0 = (nwg.x - 1u - wid.x) * R;  // latest (longest) query blocks are dispatched first
  let t = t0 + r;
  // stage the block's q rows (·scale) in tA
  for (var e = lid; e < R * RW; e += WG) {
    let row = min(t0 + e / RW, T - 1u);
    tA[e / 4u][e % 4u] = eq((b * T + row) * qs + h * HS, e % RW) * P.scale;
  }
  workgroupBarrier();
  var qv: array<vec4f, MAXC>;  // q·scale, this lane's chunks
  var o: array<vec4f, MAXC>;   // unnormalised output accumulator
  for (var i = 0u; i < CPT; i++) {
    qv[i] = tA[r * HCP + lane + L * i];
    o[i] = vec4f(0.0);
  }
  var m = NEG;  // running max of the visible scaled scores
  var l = 0.0;  // running Σ exp(score − m)
  let ntiles = (min(T, t0 + R) + P.bk - 1u) / P.bk;  // causal: keys < t0 + R only
  for (var kt = 0u; kt < ntiles; kt++) {
    let s0 = kt * P.bk;
    workgroupBarrier();
    for (var e = lid; e < P.bk * RW; e += WG) {
      let base = (b * T + min(s0 + e / RW, T - 1u)) * ks + kvoff;
      tA[e / 4u][e % 4u] = ek(base, e % RW);
      tB[e / 4u][e % 4u] = ev(base, e % RW);
    }
    if (lid < P.bk) {
      let s = s0 + lid;
      kvis[lid] = select(0u, valid_f[b * T + min(s, T - 1u)], s < T);
    }
    workgroupBarrier();
    for (var c = 0u; c < P.bk; c++) {
      var acc = 0.0;
      for (var i = 0u; i < CPT; i++) { acc += dot(qv[i], tA[c * HCP + lane + L * i]); }
      red1[lid * BK + c] = acc;
    }
    workgroupBarrier();
    if (L > 1u) {
      reduce1(r, lane);
      workgroupBarrier();
    }
    let so = r * L * BK;  // row r's full scores: red1[so + c]
    var mt = m;        // new running max
    var seen = false;  // any key of this tile visible to t
    for (var c = 0u; c < P.bk; c++) {
      if (s0 + c <= t && kvis[c] != 0u) {
        mt = max(mt, red1[so + c]);
        seen = true;
      }
    }
    if (seen) {
      let alpha = exp(m - mt);
      l *= alpha;
      for (var i = 0u; i < CPT; i++) { o[i] *= alpha; }
      for (var c = 0u; c < P.bk; c++) {
        if (s0 + c <= t && kvis[c] != 0u) {
          let p = exp(red1[so + c] - mt);
          l += p;
          for (var i = 0u; i < CPT; i++) { o[i] += p * tB[c * HCP + lane + L * i]; }
        }
      }
      m = mt;
    }
  }
  // stage the normalised rows in tA, then write them out
  workgroupBarrier();
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var i = 0u; i < CPT; i++) { tA[r * HCP + lane + L * i] = o[i] * inv; }
  if (t < T && lane == 0u) { lse[bh * T + t] = select(0.0, m + log(l), l > 0.0); }
  workgroupBarrier();
  for (var e = lid; e < R * HS; e += WG) {
    let row = e / HS;
    let d = e % HS;
    if (t0 + row < T) { out[(b * T + t0 + row) * qs + h * HS + d] = tA[row * HCP + d / 4u][d % 4u]; }
  }
}

// ---- backward ----------------------------------------------------------------------------------
// prep: one thread per (n, h), n*NH + h < P.n = N*NH; 1-D grid folded into 2-D.
@compute @workgroup_size(WG)
fn attention_backward_prep(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let n = i / P.NH;
  let h = i % P.NH;
  let b = n / P.T;
  let t = n % P.T;
  let base = n * (P.NH * HS) + h * HS;
  var d = 0.0;
  for (var e = 0u; e < HS; e++) { d += dout_p[base + e] * out_p[base + e]; }
  let j = (b * P.NH + h) * P.T + t;
  ld_w[j] = vec2f(lse_p[j], d);
}

// dq: grid (ceil(T/R), B*NH), same split as the forward (query rows, keys streamed).
@compute @workgroup_size(WG)
fn attention_backward_dq(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u,
                         @builtin(num_workgroups) nwg: vec3u) {
  let T = P.T;
  let bh = wid.y;
  let b = bh / P.NH;
  let h = bh % P.NH;
  let qs = P.NH * HS;
  let ks = P.NKV * HS;
  let kvoff = (h / (P.NH / P.NKV)) * HS;
  let r = lid / L;
  let lane = lid % L;
  let t0 = (nwg.x - 1u - wid.x) * R;
  let t = t0 + r;
  // stage the block's q rows (·scale) in tA and dout rows in tB
  for (var e = lid; e < R * RW; e += WG) {
    let base = (b * T + min(t0 + e / RW, T - 1u)) * qs + h * HS;
    tA[e / 4u][e % 4u] = eq(base, e % RW) * P.scale;
    tB[e / 4u][e % 4u] = edo(base, e % RW);
  }
  workgroupBarrier();
  var qv: array<vec4f, MAXC>;   // q·scale
  var dov: array<vec4f, MAXC>;  // dout
  var acc: array<vec4f, MAXC>;  // Σ dS·k
  for (var i = 0u; i < CPT; i++) {
    qv[i] = tA[r * HCP + lane + L * i];
    dov[i] = tB[r * HCP + lane + L * i];
    acc[i] = vec4f(0.0);
  }
  let ldt = ld_q[bh * T + min(t, T - 1u)];  // (lse, D)
  let ntiles = (min(T, t0 + R) + P.bk - 1u) / P.bk;
  for (var kt = 0u; kt < ntiles; kt++) {
    let s0 = kt * P.bk;
    workgroupBarrier();
    for (var e = lid; e < P.bk * RW; e += WG) {
      let base = (b * T + min(s0 + e / RW, T - 1u)) * ks + kvoff;
      tA[e / 4u][e % 4u] = ek(base, e % RW);
      tB[e / 4u][e % 4u] = ev(base, e % RW);
    }
    if (lid < P.bk) {
      let s = s0 + lid;
      kvis[lid] = select(0u, valid_q[b * T + min(s, T - 1u)], s < T);
    }
    workgroupBarrier();
    for (var c = 0u; c < P.bk; c++) {
      var a1 = 0.0;
      var a2 = 0.0;
      for (var i = 0u; i < CPT; i++) {
        a1 += dot(qv[i], tA[c * HCP + lane + L * i]);
        a2 += dot(dov[i], tB[c * HCP + lane + L * i]);
      }
      red1[lid * BK + c] = a1;
      red2[lid * BK + c] = a2;
    }
    workgroupBarrier();
    if (L > 1u) {
      reduce2(r, lane);
      workgroupBarrier();
    }
    let so = r * L * BK;  // row r's full dots: red1[so + c] (scores), red2[so + c] (dP)
    for (var c = 0u; c < P.bk; c++) {
      if (s0 + c <= t && kvis[c] != 0u) {
        let p = exp(red1[so + c] - ldt.x);
        let ds = p * (red2[so + c] - ldt.y);
        for (var i = 0u; i < CPT; i++) { acc[i] += ds * tA[c * HCP + lane + L * i]; }
      }
    }
  }
  workgroupBarrier();
  for (var i = 0u; i < CPT; i++) { tA[r * HCP + lane + L * i] = acc[i] * P.scale; }
  workgroupBarrier();
  for (var e = lid; e < R * HS; e += WG) {
    let row = e / HS;
    let d = e % HS;
    if (t0 + row < T) { dq[(b * T + t0 + row) * qs + h * HS + d] += tA[row * HCP + d / 4u][d % 4u]; }
  }
}

// dkv: grid (ceil(T/R), B*NKV); a workgroup handles keys s0 .. s0+R−1 of (b, kv head g), looping
// over the G query heads of the group and streaming query rows t ≥ s0 (q·scale and dout tiles).
@compute @workgroup_size(WG)
fn attention_backward_dkv(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  let T = P.T;
  let G = P.NH / P.NKV;
  let b = wid.y / P.NKV;
  let g = wid.y % P.NKV;
  let qs = P.NH * HS;
  let ks = P.NKV * HS;
  let r = lid / L;
  let lane = lid % L;
  let s0 = wid.x * R;  // earliest (longest) key blocks are dispatched first
  let s = s0 + r;
  let keyok = s < T && valid_k[b * T + min(s, T - 1u)] != 0u;
  // stage the block's k rows in tA and v rows in tB
  for (var e = lid; e < R * RW; e += WG) {
    let base = (b * T + min(s0 + e / RW, T - 1u)) * ks + g * HS;
    tA[e / 4u][e % 4u] = ek(base, e % RW);
    tB[e / 4u][e % 4u] = ev(base, e % RW);
  }
  workgroupBarrier();
  var kv: array<vec4f, MAXC>;
  var vv: array<vec4f, MAXC>;
  var dka: array<vec4f, MAXC>;  // Σ dS·q·scale
  var dva: array<vec4f, MAXC>;  // Σ P·dout
  for (var i = 0u; i < CPT; i++) {
    kv[i] = tA[r * HCP + lane + L * i];
    vv[i] = tB[r * HCP + lane + L * i];
    dka[i] = vec4f(0.0);
    dva[i] = vec4f(0.0);
  }
  let ntiles = (T - s0 + P.bk - 1u) / P.bk;  // queries t ≥ s0
  for (var hh = 0u; hh < G; hh++) {
    let h = g * G + hh;
    for (var qt = 0u; qt < ntiles; qt++) {
      let t0 = s0 + qt * P.bk;
      workgroupBarrier();
      for (var e = lid; e < P.bk * RW; e += WG) {
        let base = (b * T + min(t0 + e / RW, T - 1u)) * qs + h * HS;
        tA[e / 4u][e % 4u] = eq(base, e % RW) * P.scale;
        tB[e / 4u][e % 4u] = edo(base, e % RW);
      }
      if (lid < P.bk) {
        let t = t0 + lid;
        rowld[lid] = select(vec2f(0.0), ld_k[(b * P.NH + h) * T + min(t, T - 1u)], t < T);
      }
      workgroupBarrier();
      for (var c = 0u; c < P.bk; c++) {
        var a1 = 0.0;
        var a2 = 0.0;
        for (var i = 0u; i < CPT; i++) {
          a1 += dot(tA[c * HCP + lane + L * i], kv[i]);
          a2 += dot(tB[c * HCP + lane + L * i], vv[i]);
        }
        red1[lid * BK + c] = a1;
        red2[lid * BK + c] = a2;
      }
      workgroupBarrier();
      if (L > 1u) {
        reduce2(r, lane);
        workgroupBarrier();
      }
      let so = r * L * BK;  // key row r's full dots: red1[so + c] (scores), red2[so + c] (dP)
      if (keyok) {
        for (var c = 0u; c < P.bk; c++) {
          let t = t0 + c;
          if (t < T && s <= t) {
            let x = rowld[c];
            let p = exp(red1[so + c] - x.x);
            let ds = p * (red2[so + c] - x.y);
            for (var i = 0u; i < CPT; i++) {
              dva[i] += p * tB[c * HCP + lane + L * i];
              dka[i] += ds * tA[c * HCP + lane + L * i];
            }
          }
        }
      }
    }
  }
  workgroupBarrier();
  for (var i = 0u; i < CPT; i++) {
    tA[r * HCP + lane + L * i] = dka[i];
    tB[r * HCP + lane + L * i] = dva[i];
  }
  workgroupBarrier();
  for (var e = lid; e < R * HS; e += WG) {
    let row = e / HS;
    let d = e % HS;
    if (s0 + row < T) {
      let j = (b * T + s0 + row) * ks + g * HS + d;
      dk[j] += tA[row * HCP + d / 4u][d % 4u];
      dv[j] += tB[row * HCP + d / 4u][d % 4u];
    }
  }
}
