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

// Template: src/ops/attention.ts keeps lines by flag (like linear). SG adds the subgroup forms
// attention_forward_sg, attention_backward_dq_sg, attention_backward_dkv_sg (end of file; no
// workgroup memory, no barriers), run where subgroups are exactly 8 wide and HS % 4 == 0, or exactly
// 4 wide (SG4: SwiftShader) and HS % 4 == 0, HS ≤ 64 (attentionTuning picks plain or auto per
// kernel; tests run both).
//#if SG
enable subgroups;
//#endif

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
// dkv_sum: 1 dk, 2 dv, 3 part_k, 4 part_v (the split form's per-head partials)
@group(0) @binding(3) var<storage, read> part_k: array<f32>;
@group(0) @binding(4) var<storage, read> part_v: array<f32>;

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
// Split form (P.n = N·NKV·HS ≠ 0; grid (ceil(T/R), B*NKV, G)): workgroup z takes query head z of the
// group alone — G times the workgroups, for GPUs — and writes (not adds) its partial dk / dv at
// z·P.n + j of the scratch bound at dk / dv; attention_backward_dkv_sum then adds the G partials.
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
  let split = P.n != 0u;
  for (var hh = select(0u, wid.z, split); hh < select(G, wid.z + 1u, split); hh++) {
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
      if (split) {
        dk[wid.z * P.n + j] = tA[row * HCP + d / 4u][d % 4u];
        dv[wid.z * P.n + j] = tB[row * HCP + d / 4u][d % 4u];
      } else {
        dk[j] += tA[row * HCP + d / 4u][d % 4u];
        dv[j] += tB[row * HCP + d / 4u][d % 4u];
      }
    }
  }
}

// dkv_sum (after the split dkv): dk[e] += Σ_z part_k[z·P.n + e], dv likewise, for e < P.n = N·NKV·HS
// and z < G; one thread per element, 1-D grid folded into 2-D.
@compute @workgroup_size(WG)
fn attention_backward_dkv_sum(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * WG;
  if (e >= P.n) { return; }
  var a = 0.0;
  var c = 0.0;
  for (var z = 0u; z < P.NH / P.NKV; z++) {
    a += part_k[z * P.n + e];
    c += part_v[z * P.n + e];
  }
  dk[e] += a;
  dv[e] += c;
}

//#if SG
// ---- forward, subgroup form ---------------------------------------------------------------------
// attention_forward_sg: same contract as attention_forward, for HS % 4 == 0 on adapters whose
// subgroups are exactly W = SGW = 8 wide (below) or 4 wide (SG4: each lane holds two rows — j and
// 4+j — where a W = 8 lane holds one, and key blocks have 4 keys). A workgroup is one subgroup; it
// owns the 8 query rows t0..t0+7 of one (b, h) and walks the visible keys in blocks of W with no
// barrier:
// - scores: lane j takes key s0+j; it keeps its own query row's q quads (·scale) in registers and
//   the 8 rows' quads reach every lane by subgroupBroadcast, so per head quad a lane loads one k
//   quad and forms 8 dots: S[r] for rows r (two vec4: rows 0..3, 4..7);
// - online softmax per row: max and sum over the block's 8 keys by subgroupMax / subgroupAdd
//   (vector-wise over the 8 rows), so the running (m, l) of every row is the same in every lane;
// - P·V: lane j owns head quads j + Wu (u < UQ) of all 8 rows; per key j' it loads its quads of
//   v[s0+j'] and takes p[·][j'] by subgroupBroadcast.
// Masked keys (s > t, s ≥ T, valid = 0) get p = 0; a row with no visible key ends with out 0, lse 0.
override SGW: u32 = 8u;                       // the subgroup width W: 8, or 4 with SG4
override UQ: u32 = (HC + SGW - 1u) / SGW;     // output quads per lane (≤ 4; W = 4: HS ≤ 64)
// HS ≤ 16 (HC ≤ 4 quads) on W = 8: the P·V accumulation splits the rows instead — lanes 0..3 own
// rows 0..3, lanes 4..7 rows 4..7, lane j at quad j % 4 — so no lane repeats another's work
// (forward_sg and dq_sg: query rows; dkv_sg: key rows). (W = 4 needs no split: UQ = 1 there.)
override HALF: bool = HC <= 4u && SGW == 8u;
@group(0) @binding(3) var<storage, read> q4: array<vec4f>;
@group(0) @binding(4) var<storage, read> k4: array<vec4f>;
@group(0) @binding(5) var<storage, read> v4: array<vec4f>;
var<private> fo: array<vec4f, 32>;            // fo[r·UQ + u] = unnormalised out[t0+r][quad j + Wu]

// rows 0..3 / 4..7 of the block: S[r] += q_r · kq. W = 8: the q quad of row r is held by lane r in
// qa (qb is qa and unused); W = 4: rows 0..3 by lanes 0..3 in qa, rows 4..7 by lanes 0..3 in qb.
fn sg_dots(qa: vec4f, qb: vec4f, kq: vec4f) -> mat2x4f {
//#if SG4
  return mat2x4f(
    vec4f(dot(subgroupBroadcast(qa, 0u), kq), dot(subgroupBroadcast(qa, 1u), kq), dot(subgroupBroadcast(qa, 2u), kq), dot(subgroupBroadcast(qa, 3u), kq)),
    vec4f(dot(subgroupBroadcast(qb, 0u), kq), dot(subgroupBroadcast(qb, 1u), kq), dot(subgroupBroadcast(qb, 2u), kq), dot(subgroupBroadcast(qb, 3u), kq)));
//#else
  return mat2x4f(
    vec4f(dot(subgroupBroadcast(qa, 0u), kq), dot(subgroupBroadcast(qa, 1u), kq), dot(subgroupBroadcast(qa, 2u), kq), dot(subgroupBroadcast(qa, 3u), kq)),
    vec4f(dot(subgroupBroadcast(qa, 4u), kq), dot(subgroupBroadcast(qa, 5u), kq), dot(subgroupBroadcast(qa, 6u), kq), dot(subgroupBroadcast(qa, 7u), kq)));
//#endif
}

// fo[r] = fo[r]·alpha[r] + p[r]·v for the 8 rows at quad slot u
fn sg_pv(u: u32, a: vec4f, b: vec4f, v: vec4f) {
  fo[0u * UQ + u] += a.x * v; fo[1u * UQ + u] += a.y * v; fo[2u * UQ + u] += a.z * v; fo[3u * UQ + u] += a.w * v;
  fo[4u * UQ + u] += b.x * v; fo[5u * UQ + u] += b.y * v; fo[6u * UQ + u] += b.z * v; fo[7u * UQ + u] += b.w * v;
}
// one key of the block: its v row starts at quad vb; p of rows 0..3 / 4..7 for this key
fn sg_key(vb: u32, j: u32, pa: vec4f, pb: vec4f) {
  for (var u = 0u; u < UQ; u++) { sg_pv(u, pa, pb, v4[vb + min(j + SGW * u, HC - 1u)]); } //#unroll
}
// HALF (HC ≤ 4): a head row that stays the same for the whole walk (the lane's own query row in
// forward_sg / dq_sg, its key row in dkv_sg) is read once into registers: quad c in column c
// (c < HC; past HC the last quad repeats and is never used). Saves a quarter to a third of the
// storage loads per block, each a per-lane loop on the CPU drivers.
fn regs_q(b: u32, s: f32) -> mat4x4f {
  return mat4x4f(q4[b] * s, q4[b + min(1u, HC - 1u)] * s, q4[b + min(2u, HC - 1u)] * s, q4[b + min(3u, HC - 1u)] * s);
}
fn regs_k(b: u32) -> mat4x4f { return mat4x4f(k4[b], k4[b + min(1u, HC - 1u)], k4[b + min(2u, HC - 1u)], k4[b + min(3u, HC - 1u)]); }
fn regs_v(b: u32) -> mat4x4f { return mat4x4f(v4[b], v4[b + min(1u, HC - 1u)], v4[b + min(2u, HC - 1u)], v4[b + min(3u, HC - 1u)]); }
// HALF: fo[i] += p[i]·x for this lane's 4 rows (0..3 with a, or 4..7 with b)
fn sg_pv_half(j: u32, a: vec4f, b: vec4f, x: vec4f) {
  let p = select(a, b, j >= 4u);
  fo[0] += p.x * x; fo[1] += p.y * x; fo[2] += p.z * x; fo[3] += p.w * x;
}
// HALF: one key of the block, its v quad j % 4 (v row at quad vb)
fn sg_key_half(vb: u32, j: u32, pa: vec4f, pb: vec4f) {
  sg_pv_half(j, pa, pb, v4[vb + min(j % 4u, HC - 1u)]);
}
// one key of the block in the form this head size uses (HALF is a pipeline constant)
fn sg_key_any(vb: u32, j: u32, pa: vec4f, pb: vec4f) {
  if (HALF) { sg_key_half(vb, j, pa, pb); } else { sg_key(vb, j, pa, pb); }
}
fn sg_scale(u: u32, a: vec4f, b: vec4f) {
  fo[0u * UQ + u] *= a.x; fo[1u * UQ + u] *= a.y; fo[2u * UQ + u] *= a.z; fo[3u * UQ + u] *= a.w;
  fo[4u * UQ + u] *= b.x; fo[5u * UQ + u] *= b.y; fo[6u * UQ + u] *= b.z; fo[7u * UQ + u] *= b.w;
}

// grid (ceil(T/8), B*NH) workgroups of W (one subgroup)
@compute @workgroup_size(SGW)
fn attention_forward_sg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                        @builtin(subgroup_invocation_id) j: u32) {
  let T = P.T;
  let bh = wid.y;
  let b = bh / P.NH;
  let h = bh % P.NH;
  let qs4 = P.NH * HC;                         // quads per q row
  let ks4 = P.NKV * HC;                        // quads per k / v row
  let kvo4 = (h / (P.NH / P.NKV)) * HC;
  let t0 = (nwg.x - 1u - wid.x) * 8u;          // latest (longest) query blocks are dispatched first
  // this lane's query row (clamped); its quads are re-read per key block (a register array indexed
  // in a loop that the compiler may not unroll would live in scratch memory, slower than a load)
  let qb = (b * T + min(t0 + j, T - 1u)) * qs4 + h * HC;
  let qb2 = (b * T + min(t0 + 4u + j, T - 1u)) * qs4 + h * HC; // W = 4: the lane's second row
  var qh = mat4x4f();                          // HALF: this lane's q row ·scale, in registers
  if (HALF) { qh = regs_q(qb, P.scale); }
  var mA = vec4f(NEG); var mB = vec4f(NEG);    // running max of rows 0..3, 4..7 (same in every lane)
  var lA = vec4f(0.0); var lB = vec4f(0.0);    // running Σ exp(score − m)
  let rA = vec4u(t0, t0 + 1u, t0 + 2u, t0 + 3u);
  let rB = vec4u(t0 + 4u, t0 + 5u, t0 + 6u, t0 + 7u);
  let nblk = (min(T, t0 + 8u) + SGW - 1u) / SGW; // causal: keys < t0 + 8 only
  for (var kb = 0u; kb < nblk; kb++) {
    let s0 = kb * SGW;
    let s = s0 + j;                            // this lane's key
    let sb = (b * T + min(s, T - 1u)) * ks4 + kvo4;
    var S = mat2x4f(vec4f(0.0), vec4f(0.0));
    if (HALF) {
      S += sg_dots(qh[0], qh[0], k4[sb]);
      if (HC > 1u) { S += sg_dots(qh[1], qh[1], k4[sb + 1u]); }
      if (HC > 2u) { S += sg_dots(qh[2], qh[2], k4[sb + 2u]); }
      if (HC > 3u) { S += sg_dots(qh[3], qh[3], k4[sb + 3u]); }
    } else {
      for (var c = 0u; c < HC; c++) {
        let qa = q4[qb + c] * P.scale;
        var q2 = qa;
        if (SGW == 4u) { q2 = q4[qb2 + c] * P.scale; }
        S += sg_dots(qa, q2, k4[sb + c]);
      }
    }
    let live = s < T && valid_f[b * T + min(s, T - 1u)] != 0u;
    let visA = vec4<bool>(live) & (vec4u(s) <= rA);
    let visB = vec4<bool>(live) & (vec4u(s) <= rB);
    let nA = max(mA, subgroupMax(select(vec4f(NEG), S[0], visA)));
    let nB = max(mB, subgroupMax(select(vec4f(NEG), S[1], visB)));
    let aA = exp(mA - nA); let aB = exp(mB - nB);
    let pA = select(vec4f(0.0), exp(S[0] - nA), visA);
    let pB = select(vec4f(0.0), exp(S[1] - nB), visB);
    lA = lA * aA + subgroupAdd(pA);
    lB = lB * aB + subgroupAdd(pB);
    mA = nA; mB = nB;
    let vb = b * T;
    if (HALF) {
      let a = select(aA, aB, j >= 4u);
      fo[0] *= a.x; fo[1] *= a.y; fo[2] *= a.z; fo[3] *= a.w;
    } else {
      for (var u = 0u; u < UQ; u++) { sg_scale(u, aA, aB); } //#unroll
    }
    // P·V over the block's W keys (key s0+i's probabilities come from lane i)
    sg_key_any((vb + min(s0, T - 1u)) * ks4 + kvo4, j, subgroupBroadcast(pA, 0u), subgroupBroadcast(pB, 0u));
    sg_key_any((vb + min(s0 + 1u, T - 1u)) * ks4 + kvo4, j, subgroupBroadcast(pA, 1u), subgroupBroadcast(pB, 1u));
    sg_key_any((vb + min(s0 + 2u, T - 1u)) * ks4 + kvo4, j, subgroupBroadcast(pA, 2u), subgroupBroadcast(pB, 2u));
    sg_key_any((vb + min(s0 + 3u, T - 1u)) * ks4 + kvo4, j, subgroupBroadcast(pA, 3u), subgroupBroadcast(pB, 3u));
//#if !SG4
    sg_key_any((vb + min(s0 + 4u, T - 1u)) * ks4 + kvo4, j, subgroupBroadcast(pA, 4u), subgroupBroadcast(pB, 4u));
    sg_key_any((vb + min(s0 + 5u, T - 1u)) * ks4 + kvo4, j, subgroupBroadcast(pA, 5u), subgroupBroadcast(pB, 5u));
    sg_key_any((vb + min(s0 + 6u, T - 1u)) * ks4 + kvo4, j, subgroupBroadcast(pA, 6u), subgroupBroadcast(pB, 6u));
    sg_key_any((vb + min(s0 + 7u, T - 1u)) * ks4 + kvo4, j, subgroupBroadcast(pA, 7u), subgroupBroadcast(pB, 7u));
//#endif
  }
  // rows r < 8: out quads j + Wu, lse by lane r % W
  let iA = select(vec4f(0.0), 1.0 / lA, lA > vec4f(0.0));
  let iB = select(vec4f(0.0), 1.0 / lB, lB > vec4f(0.0));
  if (HALF && j % 4u < HC) {
    let hi = j >= 4u;
    let inv = select(iA, iB, hi);
    for (var i = 0u; i < 4u; i++) {
      let t = t0 + select(0u, 4u, hi) + i;
      if (t < T) { q4w[(b * T + t) * qs4 + h * HC + j % 4u] = fo[i] * inv[i]; }
    }
  }
  for (var u = 0u; u < select(UQ, 0u, HALF); u++) {
    let cq = j + SGW * u;
    if (cq < HC) {
      for (var r = 0u; r < 8u; r++) {
        let t = t0 + r;
        if (t < T) {
          let inv = select(iA[r % 4u], iB[r % 4u], r >= 4u);
          q4w[(b * T + t) * qs4 + h * HC + cq] = fo[r * UQ + u] * inv;
        }
      }
    }
  }
  for (var r = j; r < 8u; r += SGW) {
    let t = t0 + r;
    if (t < T) {
      let m = select(mA[r % 4u], mB[r % 4u], r >= 4u);
      let l = select(lA[r % 4u], lB[r % 4u], r >= 4u);
      lse[bh * T + t] = select(0.0, m + log(l), l > 0.0);
    }
  }
}
@group(0) @binding(1) var<storage, read_write> q4w: array<vec4f>; // forward_sg: out as vec4

// ---- dq, subgroup form ----------------------------------------------------------------------------
// attention_backward_dq_sg: same contract as attention_backward_dq (HS % 4 == 0, W-wide subgroups),
// the forward_sg split: 8 query rows per subgroup, keys in blocks of W (lane j ↔ key s0+j) for
// S = q·k (·scale) and dP = dout·v by subgroupBroadcast of the rows' quads; P = exp(S − lse),
// dS = P∘(dP − D); then dq rows += scale·Σ_keys dS·k with lane j owning head quads j + Wu.
@group(0) @binding(1) var<storage, read_write> dq4: array<vec4f>;
@group(0) @binding(6) var<storage, read> do4: array<vec4f>;

fn sg_keyk(kb: u32, j: u32, da: vec4f, db: vec4f) {
  if (HALF) {
    sg_pv_half(j, da, db, k4[kb + min(j % 4u, HC - 1u)]);
    return;
  }
  for (var u = 0u; u < UQ; u++) { sg_pv(u, da, db, k4[kb + min(j + SGW * u, HC - 1u)]); } //#unroll
}

// grid (ceil(T/8), B*NH) workgroups of W (one subgroup)
@compute @workgroup_size(SGW)
fn attention_backward_dq_sg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                            @builtin(subgroup_invocation_id) j: u32) {
  let T = P.T;
  let bh = wid.y;
  let b = bh / P.NH;
  let h = bh % P.NH;
  let qs4 = P.NH * HC;
  let ks4 = P.NKV * HC;
  let kvo4 = (h / (P.NH / P.NKV)) * HC;
  let t0 = (nwg.x - 1u - wid.x) * 8u;
  let qb = (b * T + min(t0 + j, T - 1u)) * qs4 + h * HC;  // this lane's q / dout row (clamped)
  let qb2 = (b * T + min(t0 + 4u + j, T - 1u)) * qs4 + h * HC; // W = 4: the lane's second row
  let lb = bh * T;
  let l0 = ld_q[lb + min(t0, T - 1u)]; let l1 = ld_q[lb + min(t0 + 1u, T - 1u)];
  let l2 = ld_q[lb + min(t0 + 2u, T - 1u)]; let l3 = ld_q[lb + min(t0 + 3u, T - 1u)];
  let l4 = ld_q[lb + min(t0 + 4u, T - 1u)]; let l5 = ld_q[lb + min(t0 + 5u, T - 1u)];
  let l6 = ld_q[lb + min(t0 + 6u, T - 1u)]; let l7 = ld_q[lb + min(t0 + 7u, T - 1u)];
  let lseA = vec4f(l0.x, l1.x, l2.x, l3.x); let lseB = vec4f(l4.x, l5.x, l6.x, l7.x);
  let dA = vec4f(l0.y, l1.y, l2.y, l3.y); let dB = vec4f(l4.y, l5.y, l6.y, l7.y);
  let rA = vec4u(t0, t0 + 1u, t0 + 2u, t0 + 3u);
  let rB = vec4u(t0 + 4u, t0 + 5u, t0 + 6u, t0 + 7u);
  var qh = mat4x4f(); var dh = mat4x4f();      // HALF: this lane's q row ·scale and dout row, in registers
  if (HALF) {
    qh = regs_q(qb, P.scale);
    dh = mat4x4f(do4[qb], do4[qb + min(1u, HC - 1u)], do4[qb + min(2u, HC - 1u)], do4[qb + min(3u, HC - 1u)]);
  }
  let nblk = (min(T, t0 + 8u) + SGW - 1u) / SGW;
  for (var kb = 0u; kb < nblk; kb++) {
    let s0 = kb * SGW;
    let s = s0 + j;
    let sb = (b * T + min(s, T - 1u)) * ks4 + kvo4;
    var S = mat2x4f(vec4f(0.0), vec4f(0.0));
    var dP = mat2x4f(vec4f(0.0), vec4f(0.0));
    if (HALF) {
      S += sg_dots(qh[0], qh[0], k4[sb]); dP += sg_dots(dh[0], dh[0], v4[sb]);
      if (HC > 1u) { S += sg_dots(qh[1], qh[1], k4[sb + 1u]); dP += sg_dots(dh[1], dh[1], v4[sb + 1u]); }
      if (HC > 2u) { S += sg_dots(qh[2], qh[2], k4[sb + 2u]); dP += sg_dots(dh[2], dh[2], v4[sb + 2u]); }
      if (HC > 3u) { S += sg_dots(qh[3], qh[3], k4[sb + 3u]); dP += sg_dots(dh[3], dh[3], v4[sb + 3u]); }
    } else {
      for (var c = 0u; c < HC; c++) {
        let qa = q4[qb + c] * P.scale;
        let da = do4[qb + c];
        var q2 = qa; var d2 = da;
        if (SGW == 4u) { q2 = q4[qb2 + c] * P.scale; d2 = do4[qb2 + c]; }
        S += sg_dots(qa, q2, k4[sb + c]);
        dP += sg_dots(da, d2, v4[sb + c]);
      }
    }
    let live = s < T && valid_q[b * T + min(s, T - 1u)] != 0u;
    let visA = vec4<bool>(live) & (vec4u(s) <= rA);
    let visB = vec4<bool>(live) & (vec4u(s) <= rB);
    let dsA = select(vec4f(0.0), exp(S[0] - lseA) * (dP[0] - dA), visA);
    let dsB = select(vec4f(0.0), exp(S[1] - lseB) * (dP[1] - dB), visB);
    let kr = b * T;
    sg_keyk((kr + min(s0, T - 1u)) * ks4 + kvo4, j, subgroupBroadcast(dsA, 0u), subgroupBroadcast(dsB, 0u));
    sg_keyk((kr + min(s0 + 1u, T - 1u)) * ks4 + kvo4, j, subgroupBroadcast(dsA, 1u), subgroupBroadcast(dsB, 1u));
    sg_keyk((kr + min(s0 + 2u, T - 1u)) * ks4 + kvo4, j, subgroupBroadcast(dsA, 2u), subgroupBroadcast(dsB, 2u));
    sg_keyk((kr + min(s0 + 3u, T - 1u)) * ks4 + kvo4, j, subgroupBroadcast(dsA, 3u), subgroupBroadcast(dsB, 3u));
//#if !SG4
    sg_keyk((kr + min(s0 + 4u, T - 1u)) * ks4 + kvo4, j, subgroupBroadcast(dsA, 4u), subgroupBroadcast(dsB, 4u));
    sg_keyk((kr + min(s0 + 5u, T - 1u)) * ks4 + kvo4, j, subgroupBroadcast(dsA, 5u), subgroupBroadcast(dsB, 5u));
    sg_keyk((kr + min(s0 + 6u, T - 1u)) * ks4 + kvo4, j, subgroupBroadcast(dsA, 6u), subgroupBroadcast(dsB, 6u));
    sg_keyk((kr + min(s0 + 7u, T - 1u)) * ks4 + kvo4, j, subgroupBroadcast(dsA, 7u), subgroupBroadcast(dsB, 7u));
//#endif
  }
  if (HALF && j % 4u < HC) {
    for (var i = 0u; i < 4u; i++) {
      let t = t0 + select(0u, 4u, j >= 4u) + i;
      if (t < T) { dq4[(b * T + t) * qs4 + h * HC + j % 4u] += fo[i] * P.scale; }
    }
  }
  for (var u = 0u; u < select(UQ, 0u, HALF); u++) {
    let cq = j + SGW * u;
    if (cq < HC) {
      for (var r = 0u; r < 8u; r++) {
        let t = t0 + r;
        if (t < T) { dq4[(b * T + t) * qs4 + h * HC + cq] += fo[r * UQ + u] * P.scale; }
      }
    }
  }
}

// ---- dk, dv, subgroup form ---------------------------------------------------------------------
// attention_backward_dkv_sg: same contract as attention_backward_dkv (HS % 4 == 0, W-wide
// subgroups). A subgroup owns the 8 keys s0..s0+7 of (b, kv head g) and walks, for each query head
// of the group, the query blocks t0 ≥ s0 of W rows: lane j ↔ query t0+j; the keys' k / v quads come
// by subgroupBroadcast, giving Sᵀ = k·q·scale and dPᵀ = v·dout for the 8 keys (two vec4 per lane);
// P = exp(Sᵀ − lse_t), dS = P∘(dPᵀ − D_t); then lane j, owning head quads j + Wu of the 8 key rows,
// adds Σ_t dS·q·scale into dk and Σ_t P·dout into dv, each query's dS / P taken by broadcast.
@group(0) @binding(1) var<storage, read_write> dk4: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dv4: array<vec4f>;
var<private> fv: array<vec4f, 32>;            // fv[r·UQ + u] = dv of key s0+r, quad j + Wu (fo: dk)

// one query of the block: its q (·scale) and dout rows start at quad qb; dS and P of the 8 keys
fn sg_query(qb: u32, j: u32, da: vec4f, db: vec4f, pa: vec4f, pb: vec4f) {
  if (HALF) { // this lane's 4 keys (0..3 or 4..7) at quad j % 4
    let c = qb + min(j % 4u, HC - 1u);
    sg_pv_half(j, da, db, q4[c] * P.scale); // dk rows in fo
    let p = select(pa, pb, j >= 4u);
    let d = do4[c];
    fv[0] += p.x * d; fv[1] += p.y * d; fv[2] += p.z * d; fv[3] += p.w * d;
    return;
  }
  for (var u = 0u; u < UQ; u++) { sg_query_u(u, qb, j, da, db, pa, pb); } //#unroll
}
// quad slot u of sg_query
fn sg_query_u(u: u32, qb: u32, j: u32, da: vec4f, db: vec4f, pa: vec4f, pb: vec4f) {
  let c = qb + min(j + SGW * u, HC - 1u);
  sg_pv(u, da, db, q4[c] * P.scale);
  let d = do4[c];
  fv[0u * UQ + u] += pa.x * d; fv[1u * UQ + u] += pa.y * d; fv[2u * UQ + u] += pa.z * d; fv[3u * UQ + u] += pa.w * d;
  fv[4u * UQ + u] += pb.x * d; fv[5u * UQ + u] += pb.y * d; fv[6u * UQ + u] += pb.z * d; fv[7u * UQ + u] += pb.w * d;
}

// grid (ceil(T/8), B*NKV) workgroups of W (one subgroup)
@compute @workgroup_size(SGW)
fn attention_backward_dkv_sg(@builtin(workgroup_id) wid: vec3u, @builtin(subgroup_invocation_id) j: u32) {
  let T = P.T;
  let G = P.NH / P.NKV;
  let b = wid.y / P.NKV;
  let g = wid.y % P.NKV;
  let qs4 = P.NH * HC;
  let ks4 = P.NKV * HC;
  let s0 = wid.x * 8u;
  let kb = (b * T + min(s0 + j, T - 1u)) * ks4 + g * HC;  // this lane's key row (for the broadcasts)
  let kb2 = (b * T + min(s0 + 4u + j, T - 1u)) * ks4 + g * HC; // W = 4: the lane's second key row
  let vk = b * T;
  let okA = vec4<bool>(s0 < T && valid_k[vk + min(s0, T - 1u)] != 0u, s0 + 1u < T && valid_k[vk + min(s0 + 1u, T - 1u)] != 0u,
                       s0 + 2u < T && valid_k[vk + min(s0 + 2u, T - 1u)] != 0u, s0 + 3u < T && valid_k[vk + min(s0 + 3u, T - 1u)] != 0u);
  let okB = vec4<bool>(s0 + 4u < T && valid_k[vk + min(s0 + 4u, T - 1u)] != 0u, s0 + 5u < T && valid_k[vk + min(s0 + 5u, T - 1u)] != 0u,
                       s0 + 6u < T && valid_k[vk + min(s0 + 6u, T - 1u)] != 0u, s0 + 7u < T && valid_k[vk + min(s0 + 7u, T - 1u)] != 0u);
  let kA = vec4u(s0, s0 + 1u, s0 + 2u, s0 + 3u);
  let kB = vec4u(s0 + 4u, s0 + 5u, s0 + 6u, s0 + 7u);
  let nblk = (T + SGW - 1u) / SGW;
  var kh = mat4x4f(); var vh = mat4x4f();      // HALF: this lane's k and v rows, in registers
  if (HALF) { kh = regs_k(kb); vh = regs_v(kb); }
  for (var hh = 0u; hh < G; hh++) {
    let h = g * G + hh;
    for (var tb = wid.x * (8u / SGW); tb < nblk; tb++) { // query blocks of W, t0 ≥ s0 (s0 % 8 == 0)
      let t0 = tb * SGW;
      let t = t0 + j;                          // this lane's query
      let qb = (b * T + min(t, T - 1u)) * qs4 + h * HC;
      var S = mat2x4f(vec4f(0.0), vec4f(0.0));
      var dP = mat2x4f(vec4f(0.0), vec4f(0.0));
      if (HALF) {
        S += sg_dots(kh[0], kh[0], q4[qb] * P.scale); dP += sg_dots(vh[0], vh[0], do4[qb]);
        if (HC > 1u) { S += sg_dots(kh[1], kh[1], q4[qb + 1u] * P.scale); dP += sg_dots(vh[1], vh[1], do4[qb + 1u]); }
        if (HC > 2u) { S += sg_dots(kh[2], kh[2], q4[qb + 2u] * P.scale); dP += sg_dots(vh[2], vh[2], do4[qb + 2u]); }
        if (HC > 3u) { S += sg_dots(kh[3], kh[3], q4[qb + 3u] * P.scale); dP += sg_dots(vh[3], vh[3], do4[qb + 3u]); }
      } else {
        for (var c = 0u; c < HC; c++) {
          let ka = k4[kb + c]; let va = v4[kb + c];
          var k2 = ka; var v2 = va;
          if (SGW == 4u) { k2 = k4[kb2 + c]; v2 = v4[kb2 + c]; }
          S += sg_dots(ka, k2, q4[qb + c] * P.scale);
          dP += sg_dots(va, v2, do4[qb + c]);
        }
      }
      let x = select(vec2f(0.0), ld_k[(b * P.NH + h) * T + min(t, T - 1u)], t < T);
      let qok = vec4<bool>(t < T);
      let visA = okA & qok & (kA <= vec4u(t));
      let visB = okB & qok & (kB <= vec4u(t));
      let pA = select(vec4f(0.0), exp(S[0] - x.x), visA);
      let pB = select(vec4f(0.0), exp(S[1] - x.x), visB);
      let dA = pA * (dP[0] - x.y);
      let dB = pB * (dP[1] - x.y);
      let qr = b * T;
      sg_query((qr + min(t0, T - 1u)) * qs4 + h * HC, j, subgroupBroadcast(dA, 0u), subgroupBroadcast(dB, 0u), subgroupBroadcast(pA, 0u), subgroupBroadcast(pB, 0u));
      sg_query((qr + min(t0 + 1u, T - 1u)) * qs4 + h * HC, j, subgroupBroadcast(dA, 1u), subgroupBroadcast(dB, 1u), subgroupBroadcast(pA, 1u), subgroupBroadcast(pB, 1u));
      sg_query((qr + min(t0 + 2u, T - 1u)) * qs4 + h * HC, j, subgroupBroadcast(dA, 2u), subgroupBroadcast(dB, 2u), subgroupBroadcast(pA, 2u), subgroupBroadcast(pB, 2u));
      sg_query((qr + min(t0 + 3u, T - 1u)) * qs4 + h * HC, j, subgroupBroadcast(dA, 3u), subgroupBroadcast(dB, 3u), subgroupBroadcast(pA, 3u), subgroupBroadcast(pB, 3u));
//#if !SG4
      sg_query((qr + min(t0 + 4u, T - 1u)) * qs4 + h * HC, j, subgroupBroadcast(dA, 4u), subgroupBroadcast(dB, 4u), subgroupBroadcast(pA, 4u), subgroupBroadcast(pB, 4u));
      sg_query((qr + min(t0 + 5u, T - 1u)) * qs4 + h * HC, j, subgroupBroadcast(dA, 5u), subgroupBroadcast(dB, 5u), subgroupBroadcast(pA, 5u), subgroupBroadcast(pB, 5u));
      sg_query((qr + min(t0 + 6u, T - 1u)) * qs4 + h * HC, j, subgroupBroadcast(dA, 6u), subgroupBroadcast(dB, 6u), subgroupBroadcast(pA, 6u), subgroupBroadcast(pB, 6u));
      sg_query((qr + min(t0 + 7u, T - 1u)) * qs4 + h * HC, j, subgroupBroadcast(dA, 7u), subgroupBroadcast(dB, 7u), subgroupBroadcast(pA, 7u), subgroupBroadcast(pB, 7u));
//#endif
    }
  }
  if (HALF && j % 4u < HC) {
    for (var i = 0u; i < 4u; i++) {
      let s = s0 + select(0u, 4u, j >= 4u) + i;
      if (s < T) {
        let o = (b * T + s) * ks4 + g * HC + j % 4u;
        dk4[o] += fo[i];
        dv4[o] += fv[i];
      }
    }
  }
  for (var u = 0u; u < select(UQ, 0u, HALF); u++) {
    let cq = j + SGW * u;
    if (cq < HC) {
      for (var r = 0u; r < 8u; r++) {
        let s = s0 + r;
        if (s < T) {
          let o = (b * T + s) * ks4 + g * HC + cq;
          dk4[o] += fo[r * UQ + u];
          dv4[o] += fv[r * UQ + u];
        }
      }
    }
  }
}
//#endif
