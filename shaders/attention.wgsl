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

// ---- specialisation (pipeline-overridable constants, chosen by src/ops/attention.ts) ----------
override HS: u32;                       // head size
override L: u32;                        // lanes per row (1, 2, 4 or 8)
override BK: u32;                       // streamed rows per tile (1..MAXBK)
const WG: u32 = 64u;                    // threads per workgroup
const MAXC: u32 = 4u;                   // vec4 chunks per lane at most (HS ≤ 16·L)
const MAXBK: u32 = 16u;
override R: u32 = WG / L;               // rows per workgroup
override HC: u32 = (HS + 3u) / 4u;      // vec4 chunks per head row
override CPT: u32 = (HC + L - 1u) / L;  // chunks per lane
override HCP: u32 = CPT * L;            // chunks per tile row (zero-padded)

struct Params { B: u32, T: u32, NH: u32, NKV: u32, scale: f32, n: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> P: Params;

// Workgroup memory (each entry point allocates only what it uses).
var<workgroup> tA: array<vec4f, BK * HCP>;   // tile (BK, HCP) vec4: k (fwd, dq) or q·scale (dkv)
var<workgroup> tB: array<vec4f, BK * HCP>;   // tile (BK, HCP) vec4: v (fwd, dq) or dout (dkv)
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

// Element mask of chunk c of a head row: components with 4c + j < HS.
fn cmask(c: u32) -> vec4<bool> {
  return (vec4u(4u * c) + vec4u(0u, 1u, 2u, 3u)) < vec4u(HS);
}
// Chunk c of the head row starting at element `base` (zeros past HS). Rows need not be 16-byte
// aligned (HS % 4 ≠ 0), so these are scalar loads; out-of-range indices are masked.
fn ldq(base: u32, c: u32) -> vec4f {
  let i = base + 4u * c;
  return select(vec4f(0.0), vec4f(q[i], q[i + 1u], q[i + 2u], q[i + 3u]), cmask(c));
}
fn ldk(base: u32, c: u32) -> vec4f {
  let i = base + 4u * c;
  return select(vec4f(0.0), vec4f(k[i], k[i + 1u], k[i + 2u], k[i + 3u]), cmask(c));
}
fn ldv(base: u32, c: u32) -> vec4f {
  let i = base + 4u * c;
  return select(vec4f(0.0), vec4f(v[i], v[i + 1u], v[i + 2u], v[i + 3u]), cmask(c));
}
fn lddo(base: u32, c: u32) -> vec4f {
  let i = base + 4u * c;
  return select(vec4f(0.0), vec4f(dout[i], dout[i + 1u], dout[i + 2u], dout[i + 3u]), cmask(c));
}

// Sum over the L lanes of row r of a partial-dot array, for tile column c.
fn red1_sum(r: u32, c: u32) -> f32 {
  var x = 0.0;
  for (var j = 0u; j < L; j++) { x += red1[(r * L + j) * BK + c]; }
  return x;
}
fn red2_sum(r: u32, c: u32) -> f32 {
  var x = 0.0;
  for (var j = 0u; j < L; j++) { x += red2[(r * L + j) * BK + c]; }
  return x;
}

// ---- forward ------------------------------------------------------------------------------------
// grid (ceil(T/R), B*NH); workgroup x handles queries t0 .. t0+R−1 of (b, h) = divmod(y, NH).
@compute @workgroup_size(WG)
fn attention_forward(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u,
                     @builtin(num_workgroups) nwg: vec3u) {
  let T = P.T;
  let bh = wid.y;
  let b = bh / P.NH;
  let h = bh % P.NH;
  let kvoff = (h / (P.NH / P.NKV)) * HS;
  let kstride = P.NKV * HS;
  let r = lid / L;
  let lane = lid % L;
  let t0 = (nwg.x - 1u - wid.x) * R;  // latest (longest) query blocks are dispatched first
  let t = t0 + r;
  let live = t < T;
  let qrow = (b * T + min(t, T - 1u)) * (P.NH * HS) + h * HS;
  var qv: array<vec4f, MAXC>;  // q·scale, this lane's chunks
  var o: array<vec4f, MAXC>;   // unnormalised output accumulator
  for (var i = 0u; i < CPT; i++) {
    qv[i] = ldq(qrow, lane + L * i) * P.scale;
    o[i] = vec4f(0.0);
  }
  var m = NEG;  // running max of the visible scaled scores
  var l = 0.0;  // running Σ exp(score − m)
  let ntiles = (min(T, t0 + R) + BK - 1u) / BK;  // causal: keys < t0 + R only
  for (var kt = 0u; kt < ntiles; kt++) {
    let s0 = kt * BK;
    workgroupBarrier();
    for (var i = lid; i < BK * HCP; i += WG) {
      let s = s0 + i / HCP;
      let row = (b * T + min(s, T - 1u)) * kstride + kvoff;
      tA[i] = ldk(row, i % HCP);
      tB[i] = ldv(row, i % HCP);
    }
    if (lid < BK) {
      let s = s0 + lid;
      kvis[lid] = select(0u, valid_f[b * T + min(s, T - 1u)], s < T);
    }
    workgroupBarrier();
    for (var c = 0u; c < BK; c++) {
      var acc = 0.0;
      for (var i = 0u; i < CPT; i++) { acc += dot(qv[i], tA[c * HCP + lane + L * i]); }
      red1[lid * BK + c] = acc;
    }
    workgroupBarrier();
    var sc: array<f32, MAXBK>;
    var vis = 0u;  // bit c: key s0 + c visible to t
    var mt = m;
    for (var c = 0u; c < BK; c++) {
      if (s0 + c <= t && kvis[c] != 0u) {
        let x = red1_sum(r, c);
        sc[c] = x;
        mt = max(mt, x);
        vis |= 1u << c;
      }
    }
    if (vis != 0u) {
      let alpha = exp(m - mt);
      l *= alpha;
      for (var i = 0u; i < CPT; i++) { o[i] *= alpha; }
      for (var c = 0u; c < BK; c++) {
        if ((vis & (1u << c)) != 0u) {
          let p = exp(sc[c] - mt);
          l += p;
          for (var i = 0u; i < CPT; i++) { o[i] += p * tB[c * HCP + lane + L * i]; }
        }
      }
      m = mt;
    }
  }
  if (live) {
    let inv = select(0.0, 1.0 / l, l > 0.0);
    let orow = (b * T + t) * (P.NH * HS) + h * HS;
    for (var i = 0u; i < CPT; i++) {
      let c = lane + L * i;
      let x = o[i] * inv;
      for (var j = 0u; j < 4u; j++) {
        if (4u * c + j < HS) { out[orow + 4u * c + j] = x[j]; }
      }
    }
    if (lane == 0u) { lse[bh * T + t] = select(0.0, m + log(l), l > 0.0); }
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
  let kvoff = (h / (P.NH / P.NKV)) * HS;
  let kstride = P.NKV * HS;
  let r = lid / L;
  let lane = lid % L;
  let t0 = (nwg.x - 1u - wid.x) * R;
  let t = t0 + r;
  let live = t < T;
  let qrow = (b * T + min(t, T - 1u)) * (P.NH * HS) + h * HS;
  var qv: array<vec4f, MAXC>;   // q·scale
  var dov: array<vec4f, MAXC>;  // dout
  var acc: array<vec4f, MAXC>;  // Σ dS·k
  for (var i = 0u; i < CPT; i++) {
    qv[i] = ldq(qrow, lane + L * i) * P.scale;
    dov[i] = lddo(qrow, lane + L * i);
    acc[i] = vec4f(0.0);
  }
  let ldt = ld_q[bh * T + min(t, T - 1u)];  // (lse, D)
  let ntiles = (min(T, t0 + R) + BK - 1u) / BK;
  for (var kt = 0u; kt < ntiles; kt++) {
    let s0 = kt * BK;
    workgroupBarrier();
    for (var i = lid; i < BK * HCP; i += WG) {
      let s = s0 + i / HCP;
      let row = (b * T + min(s, T - 1u)) * kstride + kvoff;
      tA[i] = ldk(row, i % HCP);
      tB[i] = ldv(row, i % HCP);
    }
    if (lid < BK) {
      let s = s0 + lid;
      kvis[lid] = select(0u, valid_q[b * T + min(s, T - 1u)], s < T);
    }
    workgroupBarrier();
    for (var c = 0u; c < BK; c++) {
      var a1 = 0.0;
      var a2 = 0.0;
      for (var i = 0u; i < CPT; i++) {
        let ci = c * HCP + lane + L * i;
        a1 += dot(qv[i], tA[ci]);
        a2 += dot(dov[i], tB[ci]);
      }
      red1[lid * BK + c] = a1;
      red2[lid * BK + c] = a2;
    }
    workgroupBarrier();
    for (var c = 0u; c < BK; c++) {
      if (s0 + c <= t && kvis[c] != 0u) {
        let p = exp(red1_sum(r, c) - ldt.x);
        let ds = p * (red2_sum(r, c) - ldt.y);
        for (var i = 0u; i < CPT; i++) { acc[i] += ds * tA[c * HCP + lane + L * i]; }
      }
    }
  }
  if (live) {
    for (var i = 0u; i < CPT; i++) {
      let c = lane + L * i;
      let x = acc[i] * P.scale;
      for (var j = 0u; j < 4u; j++) {
        if (4u * c + j < HS) { dq[qrow + 4u * c + j] += x[j]; }
      }
    }
  }
}

// dkv: grid (ceil(T/R), B*NKV); workgroup x handles keys s0 .. s0+R−1 of (b, kv head g), looping
// over the G query heads of the group and streaming query rows t ≥ s0 (q·scale and dout tiles).
@compute @workgroup_size(WG)
fn attention_backward_dkv(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  let T = P.T;
  let G = P.NH / P.NKV;
  let b = wid.y / P.NKV;
  let g = wid.y % P.NKV;
  let r = lid / L;
  let lane = lid % L;
  let s0 = wid.x * R;  // earliest (longest) key blocks are dispatched first
  let s = s0 + r;
  let live = s < T;
  let keyok = live && valid_k[b * T + min(s, T - 1u)] != 0u;
  let krow = (b * T + min(s, T - 1u)) * (P.NKV * HS) + g * HS;
  let qstride = P.NH * HS;
  var kv: array<vec4f, MAXC>;
  var vv: array<vec4f, MAXC>;
  var dka: array<vec4f, MAXC>;  // Σ dS·q·scale
  var dva: array<vec4f, MAXC>;  // Σ P·dout
  for (var i = 0u; i < CPT; i++) {
    kv[i] = ldk(krow, lane + L * i);
    vv[i] = ldv(krow, lane + L * i);
    dka[i] = vec4f(0.0);
    dva[i] = vec4f(0.0);
  }
  let ntiles = (T - s0 + BK - 1u) / BK;  // queries t ≥ s0
  for (var hh = 0u; hh < G; hh++) {
    let h = g * G + hh;
    for (var qt = 0u; qt < ntiles; qt++) {
      let t0 = s0 + qt * BK;
      workgroupBarrier();
      for (var i = lid; i < BK * HCP; i += WG) {
        let t = t0 + i / HCP;
        let row = (b * T + min(t, T - 1u)) * qstride + h * HS;
        tA[i] = ldq(row, i % HCP) * P.scale;
        tB[i] = lddo(row, i % HCP);
      }
      if (lid < BK) {
        let t = t0 + lid;
        rowld[lid] = select(vec2f(0.0), ld_k[(b * P.NH + h) * T + min(t, T - 1u)], t < T);
      }
      workgroupBarrier();
      for (var c = 0u; c < BK; c++) {
        var a1 = 0.0;
        var a2 = 0.0;
        for (var i = 0u; i < CPT; i++) {
          let ci = c * HCP + lane + L * i;
          a1 += dot(tA[ci], kv[i]);
          a2 += dot(tB[ci], vv[i]);
        }
        red1[lid * BK + c] = a1;
        red2[lid * BK + c] = a2;
      }
      workgroupBarrier();
      if (keyok) {
        for (var c = 0u; c < BK; c++) {
          let t = t0 + c;
          if (t < T && s <= t) {
            let x = rowld[c];
            let p = exp(red1_sum(r, c) - x.x);
            let ds = p * (red2_sum(r, c) - x.y);
            for (var i = 0u; i < CPT; i++) {
              let ci = c * HCP + lane + L * i;
              dva[i] += p * tB[ci];
              dka[i] += ds * tA[ci];
            }
          }
        }
      }
    }
  }
  if (live) {
    for (var i = 0u; i < CPT; i++) {
      let c = lane + L * i;
      for (var j = 0u; j < 4u; j++) {
        if (4u * c + j < HS) {
          dk[krow + 4u * c + j] += dka[i][j];
          dv[krow + 4u * c + j] += dva[i][j];
        }
      }
    }
  }
}
