// Linear layer with frozen weights dequantized in-kernel (f32 / f16 / q8 / q4, docs/ENGINE.md formats).
// Legend: N rows (B*T), IC in features, OC out features (a row slice of W starting at word wbase).
// linear_forward:  out (N,OC) = inp (N,IC) · W[slice] (OC,IC)ᵀ (+ bias (OC))        — overwrites
//                  (ACC: out += …, e.g. a residual stream updated in place)
// linear_backward: dinp (N,IC) += dout (N,OC) · W[slice] (OC,IC)                     — adds
// Row o of the slice starts at u32 word wbase + o·rowWords (rowWords = IC for f32, ceil(IC/2) for
// f16, nb·9 for q8, nb·5 for q4, nb = ceil(IC/32)).
//
// This file is a template: src/ops/linear.ts keeps the lines of the variant it needs, by flags in
// `//#if FLAG` / `//#if !FLAG` / `//#else` / `//#endif` lines (nestable), and sets TM:
//   F32 | F16 | Q8 | Q4  the weight format (exactly one); Q = Q8 or Q4 (32-value blocks with a scale)
//   V4             IC % 4 == 0: activations, f32 weights and dinp accessed as vec4 (f16 weights as
//                  vec2u = 4 halves; rowWords = IC/2 is even, so every row starts on a vec2u)
//   DV             OC % 4 == 0: dout read as vec4 (backward)
//   H              forward inner products in f16 (`enable f16;`, needs the adapter's shader-f16):
//                  each 4-term dot x·w is computed in vec4<f16> and added into the f32 accumulators
//                  (f32 accumulation per 4-wide k step). The backward entry point always computes in
//                  f32: gradients are routinely below f16's normal range (6e-5) and there is no loss
//                  scaling here.
//
//   ACC            linear_forward adds into out instead of overwriting it
//   SM             the shared-memory tiled entry points (end of file) instead of the register-tiled ones
//
// Variants (src/ops/linear.ts picks one per adapter and shape class, tuned by src/gpu/autotune.ts):
//   rt8x4, rt4x4, rt1x4 (!SM, TM = 8, 4, 1)  register tiling, no shared memory: fastest on the CPU Vulkan
//                  drivers, where a workgroup barrier is expensive. rt8x4 is the default.
//   sm64 (SM)      shared-memory tiling (what GPUs reward): a 64×64 output tile per 16×16
//                  workgroup, the reduction in tiles of 16 staged (and dequantized) in workgroup memory.
//
// Register tiling: each thread
// owns a TM×4 output tile (TM rows n × 4 columns), a workgroup of 8×8 threads an (8·TM)×32 tile.
// Out-of-range rows/cols are clamped on load and skipped on store; the IC tail is zero-masked on
// the activation side (quantized rows are zero-padded to whole blocks anyway). Quantized weights
// are read 4 at a time (a q8 word = 4 values, half a q4 word = 4 values) and scaled by the block's
// f32 scale d, loaded once per block per row in the forward. f16 weights (two halves per u32,
// element 2w in the low half) are unpacked with unpack2x16float (core WGSL, no extension needed),
// or reinterpreted with bitcast<vec4<f16>> in the H variant.
//#if H
enable f16;
//#endif

const TM: u32 = 8u; // rows per thread (set by the launcher)
const WX: u32 = 8u; // register-tiled workgroup shape WX×WY (set by the launcher)
const WY: u32 = 8u;

// VT: the forward's compute vector (4 consecutive k); cv converts an f32 quad to it.
//#if H
alias VT = vec4<f16>;
alias VS = f16;
fn cv(v: vec4f) -> VT { return vec4<f16>(v); }
//#else
alias VT = vec4f;
alias VS = f32;
fn cv(v: vec4f) -> VT { return v; }
//#endif

struct Params { N: u32, IC: u32, OC: u32, wbase: u32, rowWords: u32, hasBias: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> P: Params;

//#if F32
//#if V4
@group(0) @binding(3) var<storage, read> w: array<vec4u>;
// 4 weights starting at word i (i % 4 == 0)
fn wq4(i: u32) -> vec4f { return bitcast<vec4f>(w[i >> 2u]); }
//#else
@group(0) @binding(3) var<storage, read> w: array<u32>;
fn wf(i: u32) -> f32 { return bitcast<f32>(w[i]); }
fn wq4(i: u32) -> vec4f { return vec4f(wf(i), wf(i + 1u), wf(i + 2u), wf(i + 3u)); }
//#endif
// weights k..k+3 of the row starting at word rb (k % 4 == 0, k + 3 < IC)
fn wquad(rb: u32, k: u32) -> VT { return cv(wq4(rb + k)); }
//#endif
//#if F16
//#if V4
@group(0) @binding(3) var<storage, read> w: array<vec2u>;
// words i, i+1 (i even): halves 2i..2i+3 of the buffer
fn wpair(i: u32) -> vec2u { return w[i >> 1u]; }
//#else
@group(0) @binding(3) var<storage, read> w: array<u32>;
fn wpair(i: u32) -> vec2u { return vec2u(w[i], w[i + 1u]); }
//#endif
// 4 halves (element 2w in the low 16 bits of word w) as f32
fn h4f(p: vec2u) -> vec4f { return vec4f(unpack2x16float(p.x), unpack2x16float(p.y)); }
// ... as the compute vector (H: the bits as they are)
fn h4(p: vec2u) -> VT {
//#if H
  return bitcast<vec4<f16>>(p);
//#else
  return h4f(p);
//#endif
}
// weights k..k+3 of the row starting at word rb (k % 4 == 0, k + 3 < IC)
fn wquad(rb: u32, k: u32) -> VT { return h4(wpair(rb + (k >> 1u))); }
//#endif
//#if Q
@group(0) @binding(3) var<storage, read> w: array<u32>;
fn wf(i: u32) -> f32 { return bitcast<f32>(w[i]); }
//#endif
//#if Q8
const WB: u32 = 9u; // words per block
// values 4t..4t+3 of the block at word bw, scale d (element 4w+j in bits 8j..8j+7 of word 1+w)
fn wquad_q(bw: u32, t: u32, d: f32) -> vec4f {
  let v = bitcast<i32>(w[bw + 1u + t]);
  return d * vec4f(f32((v << 24u) >> 24u), f32((v << 16u) >> 24u), f32((v << 8u) >> 24u), f32(v >> 24u));
}
//#endif
//#if Q4
const WB: u32 = 5u;
// values 4t..4t+3 of the block at word bw, scale d (element 8w+j in bits 4j..4j+3 of word 1+w, c − 8)
fn wquad_q(bw: u32, t: u32, d: f32) -> vec4f {
  let v = w[bw + 1u + (t >> 1u)] >> (16u * (t & 1u));
  return d * (vec4f(f32(v & 15u), f32((v >> 4u) & 15u), f32((v >> 8u) & 15u), f32((v >> 12u) & 15u)) - vec4f(8.0));
}
//#endif

// ---------------------------------------------------------------------------------------------
// forward bindings
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
//#if V4
@group(0) @binding(2) var<storage, read> inp: array<vec4f>;
fn ldx(i: u32) -> vec4f { return inp[i >> 2u]; }
//#else
@group(0) @binding(2) var<storage, read> inp: array<f32>;
fn ldx(i: u32) -> vec4f { return vec4f(inp[i], inp[i + 1u], inp[i + 2u], inp[i + 3u]); }
//#endif
@group(0) @binding(4) var<storage, read> bias: array<f32>;

var<private> acc: array<vec4f, TM>; // forward: acc[i][j] = out[n0+i][o0+j]; backward: acc[i][e] = dinp[n0+i][c0+e]
var<private> xrow: array<u32, TM>;  // forward: element index of inp row n0+i (clamped); backward: of dout row
var<private> wrow: array<u32, 4>;   // forward: word index of W row o0+j (clamped)

// acc += X[n0.., k..k+3] · [w0 w1 w2 w3] (wj = W[o0+j][k..k+3]); H: each dot in f16, summed in f32
fn step4(k: u32, w0: VT, w1: VT, w2: VT, w3: VT) {
  for (var i = 0u; i < TM; i++) {
    let x = cv(ldx(xrow[i] + k));
    acc[i] += vec4f(vec4<VS>(dot(x, w0), dot(x, w1), dot(x, w2), dot(x, w3)));
  }
}
//#if !V4
// the last partial quad: columns ≥ IC contribute 0 (x masked, indices clamped)
fn step4_tail(k: u32, w0: VT, w1: VT, w2: VT, w3: VT) {
  let last = P.IC - 1u;
  let m = vec4f(vec4<bool>(k < P.IC, k + 1u < P.IC, k + 2u < P.IC, k + 3u < P.IC));
  for (var i = 0u; i < TM; i++) {
    let b = xrow[i];
    let x = cv(m * vec4f(inp[b + min(k, last)], inp[b + min(k + 1u, last)], inp[b + min(k + 2u, last)], inp[b + min(k + 3u, last)]));
    acc[i] += vec4f(vec4<VS>(dot(x, w0), dot(x, w1), dot(x, w2), dot(x, w3)));
  }
}
//#endif
//#if !V4
//#if F32
// weights k..k+3 of the row at word rb, past-the-end columns clamped to the last one (x masks them)
fn wquad_tail(rb: u32, k: u32) -> VT {
  let last = P.IC - 1u;
  return cv(vec4f(wf(rb + min(k, last)), wf(rb + min(k + 1u, last)), wf(rb + min(k + 2u, last)), wf(rb + min(k + 3u, last))));
}
//#endif
//#if F16
// the row's last 1..3 halves (k % 4 == 0): the second word is clamped into the row (x masks it)
fn wquad_tail(rb: u32, k: u32) -> VT {
  let i = k >> 1u;
  return h4(vec2u(w[rb + i], w[rb + min(i + 1u, P.rowWords - 1u)]));
}
//#endif
//#endif

//#if !SM
// grid: (ceil(OC/(4·WX)), ceil(N/(WY·TM))) workgroups of WX×WY (8×8; rt1x4: 64×1)
@compute @workgroup_size(WX, WY)
fn linear_forward(@builtin(global_invocation_id) gid: vec3u) {
  let o0 = gid.x * 4u;
  let n0 = gid.y * TM;
  if (o0 >= P.OC || n0 >= P.N) { return; }
  let IC = P.IC;
  for (var i = 0u; i < TM; i++) {
    xrow[i] = min(n0 + i, P.N - 1u) * IC;
    acc[i] = vec4f(0.0);
  }
  for (var j = 0u; j < 4u; j++) { wrow[j] = P.wbase + min(o0 + j, P.OC - 1u) * P.rowWords; }
//#if !Q
  let k4 = IC & ~3u;
  for (var k = 0u; k < k4; k += 4u) {
    step4(k, wquad(wrow[0], k), wquad(wrow[1], k), wquad(wrow[2], k), wquad(wrow[3], k));
  }
//#if !V4
  if (k4 < IC) {
    step4_tail(k4, wquad_tail(wrow[0], k4), wquad_tail(wrow[1], k4), wquad_tail(wrow[2], k4), wquad_tail(wrow[3], k4));
  }
//#endif
//#else
  let nbFull = IC / 32u;
  for (var b = 0u; b <= nbFull; b++) {
    // block b: 8 quads when full; the partial last block (b = nbFull, if IC % 32 ≠ 0) has fewer
    let nq = min(8u, (IC - min(IC, b * 32u) + 3u) / 4u);
    if (nq == 0u) { break; }
    let bw0 = wrow[0] + b * WB; let bw1 = wrow[1] + b * WB;
    let bw2 = wrow[2] + b * WB; let bw3 = wrow[3] + b * WB;
    let d0 = wf(bw0); let d1 = wf(bw1); let d2 = wf(bw2); let d3 = wf(bw3);
    if (nq == 8u) {
      for (var t = 0u; t < 8u; t++) {
        step4(b * 32u + 4u * t, cv(wquad_q(bw0, t, d0)), cv(wquad_q(bw1, t, d1)), cv(wquad_q(bw2, t, d2)), cv(wquad_q(bw3, t, d3)));
      }
    } else {
      for (var t = 0u; t < nq; t++) {
//#if V4
        step4(b * 32u + 4u * t, cv(wquad_q(bw0, t, d0)), cv(wquad_q(bw1, t, d1)), cv(wquad_q(bw2, t, d2)), cv(wquad_q(bw3, t, d3)));
//#else
        step4_tail(b * 32u + 4u * t, cv(wquad_q(bw0, t, d0)), cv(wquad_q(bw1, t, d1)), cv(wquad_q(bw2, t, d2)), cv(wquad_q(bw3, t, d3)));
//#endif
      }
    }
  }
//#endif
  for (var i = 0u; i < TM; i++) {
    let n = n0 + i;
    if (n >= P.N) { break; }
    for (var j = 0u; j < 4u; j++) {
      let o = o0 + j;
      if (o >= P.OC) { break; }
      var v = acc[i][j];
      if (P.hasBias != 0u) { v += bias[o]; }
//#if ACC
      out[n * P.OC + o] += v;
//#else
      out[n * P.OC + o] = v;
//#endif
    }
  }
}
//#endif

// ---------------------------------------------------------------------------------------------
// backward bindings
//#if V4
@group(0) @binding(1) var<storage, read_write> dinp: array<vec4f>;
//#else
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
//#endif
//#if DV
@group(0) @binding(2) var<storage, read> dout: array<vec4f>;
fn ldd(i: u32) -> vec4f { return dout[i >> 2u]; }
//#else
@group(0) @binding(2) var<storage, read> dout: array<f32>;
fn ldd(i: u32) -> vec4f { return vec4f(dout[i], dout[i + 1u], dout[i + 2u], dout[i + 3u]); }
//#endif

var<private> ccol: vec4u; // backward f32: the thread's 4 columns (clamped)
var<private> cbw: u32;    // backward q: word offset of the columns' block in a row
var<private> ct: u32;     // backward q: quad of the columns in their block

// W[o][c0..c0+3] of the slice, dequantized (always f32, also in the H variant)
fn wcol(o: u32) -> vec4f {
  let rb = P.wbase + o * P.rowWords;
//#if F32
//#if V4
  return wq4(rb + ccol.x);
//#else
  return vec4f(wf(rb + ccol.x), wf(rb + ccol.y), wf(rb + ccol.z), wf(rb + ccol.w));
//#endif
//#endif
//#if F16
  let i = ccol.x >> 1u;
//#if V4
  return h4f(wpair(rb + i));
//#else
  // columns past IC: the second word is clamped into the row (their sums are never stored)
  return h4f(vec2u(w[rb + i], w[rb + min(i + 1u, P.rowWords - 1u)]));
//#endif
//#endif
//#if Q
  let bw = rb + cbw;
  return wquad_q(bw, ct, wf(bw));
//#endif
}

//#if !SM
// grid: (ceil(IC/(4·WX)), ceil(N/(WY·TM))) workgroups of WX×WY. Thread: dinp[n0..][c0..c0+3] += Σ_o dout[n][o]·W[o][c]
@compute @workgroup_size(WX, WY)
fn linear_backward(@builtin(global_invocation_id) gid: vec3u) {
  let c0 = gid.x * 4u;
  let n0 = gid.y * TM;
  if (c0 >= P.IC || n0 >= P.N) { return; }
  let OC = P.OC;
  for (var i = 0u; i < TM; i++) {
    xrow[i] = min(n0 + i, P.N - 1u) * OC;
    acc[i] = vec4f(0.0);
  }
  let last = P.IC - 1u;
  ccol = vec4u(c0, min(c0 + 1u, last), min(c0 + 2u, last), min(c0 + 3u, last));
  // the quad c0..c0+3 lies in one block (c0 % 4 == 0); padded columns hold zeros
//#if Q
  cbw = (c0 / 32u) * WB;
  ct = (c0 % 32u) / 4u;
//#endif
  let OC4 = OC & ~3u;
  for (var o = 0u; o < OC4; o += 4u) {
    let w0 = wcol(o); let w1 = wcol(o + 1u); let w2 = wcol(o + 2u); let w3 = wcol(o + 3u);
    for (var i = 0u; i < TM; i++) {
      let g = ldd(xrow[i] + o);
      acc[i] += g.x * w0 + g.y * w1 + g.z * w2 + g.w * w3;
    }
  }
//#if !DV
  for (var o = OC4; o < OC; o++) {
    let w0 = wcol(o);
    for (var i = 0u; i < TM; i++) { acc[i] += dout[xrow[i] + o] * w0; }
  }
//#endif
  for (var i = 0u; i < TM; i++) {
    let n = n0 + i;
    if (n >= P.N) { break; }
//#if V4
    dinp[(n * P.IC + c0) >> 2u] += acc[i];
//#else
    for (var e = 0u; e < 4u; e++) {
      if (c0 + e >= P.IC) { break; }
      dinp[n * P.IC + c0 + e] += acc[i][e];
    }
//#endif
  }
}
//#endif

//#if SM
// ---------------------------------------------------------------------------------------------
// Shared-memory tiling. A 16×16 workgroup computes a 64×64 output tile. The reduction dimension
// (k in the forward, o in the backward) goes in tiles of KT = 16: every thread stages one quad of
// each operand into workgroup memory — dequantized to f32 while staging; reduction indices past
// the end, rows past N / OC and columns past IC are staged as 0 (indices clamped, values selected
// away, so no Inf·0) — then a barrier, KT steps of a register outer product read from workgroup
// memory, a barrier. Tiles are stored reduction-major (t[k·SS + row]); SS = 64 + 2 makes the
// transposing staging writes of 32 consecutive threads hit 32 distinct banks.
const KT: u32 = 16u;
const SS: u32 = 66u;
var<workgroup> ta: array<f32, 1056>; // KT·SS. forward: X tile ta[k][n]; backward: dout tile ta[o][n]
var<workgroup> tb: array<f32, 1056>; // forward: W tile tb[k][o]; backward: W tile tb[o][c]

fn lt4(k: u32, lim: u32) -> vec4<bool> { return vec4<bool>(k < lim, k + 1u < lim, k + 2u < lim, k + 3u < lim); }

// W[row at word rb][k..k+3] (k % 4 == 0) dequantized to f32; 0 for k ≥ IC
fn wstage(rb: u32, k: u32) -> vec4f {
//#if F32
//#if V4
  if (k >= P.IC) { return vec4f(0.0); }
  return wq4(rb + k);
//#else
  let last = P.IC - 1u;
  return select(vec4f(0.0), vec4f(wf(rb + min(k, last)), wf(rb + min(k + 1u, last)), wf(rb + min(k + 2u, last)), wf(rb + min(k + 3u, last))), lt4(k, P.IC));
//#endif
//#endif
//#if F16
//#if V4
  if (k >= P.IC) { return vec4f(0.0); }
  return h4f(wpair(rb + (k >> 1u)));
//#else
  let lw = P.rowWords - 1u;
  let i = min(k >> 1u, lw);
  return select(vec4f(0.0), h4f(vec2u(w[rb + i], w[rb + min(i + 1u, lw)])), lt4(k, P.IC));
//#endif
//#endif
//#if Q
  // rows are zero-padded to whole blocks; a quad past the last block is clamped into it (and masked)
  let bw = rb + min(k / 32u, P.rowWords / WB - 1u) * WB;
  return select(vec4f(0.0), wquad_q(bw, (k % 32u) / 4u, wf(bw)), lt4(k, P.IC));
//#endif
}

// inp[row at element rb][k..k+3]; 0 for k ≥ IC
fn xstage(rb: u32, k: u32) -> vec4f {
//#if V4
  if (k >= P.IC) { return vec4f(0.0); }
  return inp[(rb + k) >> 2u];
//#else
  let last = P.IC - 1u;
  return select(vec4f(0.0), vec4f(inp[rb + min(k, last)], inp[rb + min(k + 1u, last)], inp[rb + min(k + 2u, last)], inp[rb + min(k + 3u, last)]), lt4(k, P.IC));
//#endif
}

// dout[row at element rb][o..o+3]; 0 for o ≥ OC
fn dstage(rb: u32, o: u32) -> vec4f {
//#if DV
  if (o >= P.OC) { return vec4f(0.0); }
  return dout[(rb + o) >> 2u];
//#else
  let last = P.OC - 1u;
  return select(vec4f(0.0), vec4f(dout[rb + min(o, last)], dout[rb + min(o + 1u, last)], dout[rb + min(o + 2u, last)], dout[rb + min(o + 3u, last)]), lt4(o, P.OC));
//#endif
}

// quad v of tile row r at reduction offset k: ta/tb[k..k+3][r]
fn put_a(k: u32, r: u32, v: vec4f) {
  ta[k * SS + r] = v.x; ta[(k + 1u) * SS + r] = v.y; ta[(k + 2u) * SS + r] = v.z; ta[(k + 3u) * SS + r] = v.w;
}
fn put_b(k: u32, r: u32, v: vec4f) {
  tb[k * SS + r] = v.x; tb[(k + 1u) * SS + r] = v.y; tb[(k + 2u) * SS + r] = v.z; tb[(k + 3u) * SS + r] = v.w;
}
// ta/tb[k..k+3][r]
fn col_a(k: u32, r: u32) -> vec4f { return vec4f(ta[k * SS + r], ta[(k + 1u) * SS + r], ta[(k + 2u) * SS + r], ta[(k + 3u) * SS + r]); }
fn col_b(k: u32, r: u32) -> vec4f { return vec4f(tb[k * SS + r], tb[(k + 1u) * SS + r], tb[(k + 2u) * SS + r], tb[(k + 3u) * SS + r]); }

// grid: (ceil(OC/64), ceil(N/64)) workgroups of 16×16. Thread (tx, ty) owns rows n0 + ty + 16i and
// columns o0 + tx + 16j (i, j < 4; strided, so tile reads and output stores are consecutive across
// tx). Each step forms 4-term dots over k (vec4<f16> in the H variant) added into f32 accumulators.
@compute @workgroup_size(16, 16)
fn linear_forward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let n0 = wg.y * 64u;
  let o0 = wg.x * 64u;
  let li = lid.y * 16u + lid.x;
  let sr = li / 4u;        // staged row: n0 + sr of X, o0 + sr of W
  let sk = (li % 4u) * 4u; // staged quad: k0 + sk .. +3
  let xb = min(n0 + sr, P.N - 1u) * P.IC;
  let wb = P.wbase + min(o0 + sr, P.OC - 1u) * P.rowWords;
  var a: array<vec4f, 4>; // a[i][j] = out[n0 + ty + 16i][o0 + tx + 16j]
  for (var k0 = 0u; k0 < P.IC; k0 += KT) {
    put_a(sk, sr, xstage(xb, k0 + sk));
    put_b(sk, sr, wstage(wb, k0 + sk));
    workgroupBarrier();
    for (var kq = 0u; kq < KT; kq += 4u) {
      let w0 = cv(col_b(kq, lid.x)); let w1 = cv(col_b(kq, lid.x + 16u));
      let w2 = cv(col_b(kq, lid.x + 32u)); let w3 = cv(col_b(kq, lid.x + 48u));
      for (var i = 0u; i < 4u; i++) {
        let x = cv(col_a(kq, lid.y + 16u * i));
        a[i] += vec4f(vec4<VS>(dot(x, w0), dot(x, w1), dot(x, w2), dot(x, w3)));
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let n = n0 + lid.y + 16u * i;
    if (n >= P.N) { break; }
    for (var j = 0u; j < 4u; j++) {
      let o = o0 + lid.x + 16u * j;
      if (o >= P.OC) { break; }
      var v = a[i][j];
      if (P.hasBias != 0u) { v += bias[o]; }
//#if ACC
      out[n * P.OC + o] += v;
//#else
      out[n * P.OC + o] = v;
//#endif
    }
  }
}

// grid: (ceil(IC/64), ceil(N/64)) workgroups of 16×16. Thread (tx, ty) owns rows n0 + ty + 16i
// (i < 4) and the 4 consecutive columns c0 + 4tx .. +3 (one vec4 store when IC % 4 == 0).
// dinp[n][c] += Σ_o dout[n][o]·W[o][c], always in f32.
@compute @workgroup_size(16, 16)
fn linear_backward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let n0 = wg.y * 64u;
  let c0 = wg.x * 64u;
  let li = lid.y * 16u + lid.x;
  // dout tile, 64 rows n × KT o: this thread stages row n0 + dr, o quad o0 + dk
  let dr = li / 4u;
  let dk = (li % 4u) * 4u;
  let db = min(n0 + dr, P.N - 1u) * P.OC;
  // W tile, KT rows o × 64 columns c: this thread stages row o0 + wo, column quad c0 + wc
  let wo = li / 16u;
  let wc = (li % 16u) * 4u;
  var a: array<vec4f, 4>; // a[i][e] = Σ for dinp[n0 + ty + 16i][c0 + 4tx + e]
  for (var o0 = 0u; o0 < P.OC; o0 += KT) {
    put_a(dk, dr, dstage(db, o0 + dk));
    let o = o0 + wo;
    var wv = wstage(P.wbase + min(o, P.OC - 1u) * P.rowWords, c0 + wc);
    if (o >= P.OC) { wv = vec4f(0.0); }
    let t = wo * SS + wc;
    tb[t] = wv.x; tb[t + 1u] = wv.y; tb[t + 2u] = wv.z; tb[t + 3u] = wv.w;
    workgroupBarrier();
    for (var k = 0u; k < KT; k++) {
      let r = k * SS + 4u * lid.x;
      let wr = vec4f(tb[r], tb[r + 1u], tb[r + 2u], tb[r + 3u]);
      for (var i = 0u; i < 4u; i++) { a[i] += ta[k * SS + lid.y + 16u * i] * wr; }
    }
    workgroupBarrier();
  }
  let c = c0 + 4u * lid.x;
  if (c >= P.IC) { return; }
  for (var i = 0u; i < 4u; i++) {
    let n = n0 + lid.y + 16u * i;
    if (n >= P.N) { break; }
//#if V4
    dinp[(n * P.IC + c) >> 2u] += a[i];
//#else
    for (var e = 0u; e < 4u; e++) {
      if (c + e >= P.IC) { break; }
      dinp[n * P.IC + c + e] += a[i][e];
    }
//#endif
  }
}
//#endif
