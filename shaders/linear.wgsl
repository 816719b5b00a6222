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
//   LORA           (SG but not SGV; the RT, R8, MV and MVS forwards) a LoRA adapter fused as R/4 more reduction steps, R = P.lr, R % 4 == 0:
//                  forward out (+)= inp·Wᵀ + P.ls·h (N,R)·B (OC,R)ᵀ (h, B at bindings 5, 6); backward
//                  dinp += dout·W + dropout'(dh (N,R)·A (R,IC)) (dh, A at bindings 4, 5; the adapter's
//                  sums come first and are masked in registers, then the frozen weight's are added).
//                  Saves the LoRA kernel's read-modify-write pass over out / dinp (src/ops/lora.ts
//                  runs it where this can't). The launcher appends shaders/dropout_hash.wgsl.
//   XN             (forward; the matvecs rt1x8, mv16, mvsg, sg1x32, V4; not with LORA) the input
//                  RMS-normalized in-kernel, saving the rmsnorm dispatch that would write it: x·g·r
//                  with g at binding 5 and r = 1/sqrt(mean(x²) + P.eps) of the row, applied to the
//                  sums, (Σ w·x·g)·r (src/ops/linear.ts: opts.norm)
//   RT / SM / SG / MV / MVS / R8  which entry points: register-tiled (RT), shared-memory tiled (SM, end
//                  of file), subgroup (SG, after SM; `enable subgroups;`), the coalesced matvec (MV;
//                  forward only), its subgroup form (MVS; forward only) or the 8-column register
//                  matvec (R8, last; forward only) — exactly one
//
// Variants (src/ops/linear.ts picks one per adapter and shape class, tuned by src/gpu/autotune.ts):
//   rt8x4, rt4x4, rt1x4 (!SM, TM = 8, 4, 1)  register tiling, no shared memory: fastest on the CPU Vulkan
//                  drivers, where a workgroup barrier is expensive. rt8x4 is the default.
//   sm64 (SM)      shared-memory tiling (what GPUs reward): a 64×64 output tile per 16×16
//                  workgroup, the reduction in tiles of 16 staged (and dequantized) in workgroup memory.
//   sg16x32 (SG)   adapters whose subgroups are exactly W = 8 (lavapipe) or 4 wide (SG4: SwiftShader),
//                  IC % 4 == 0 (V4): one subgroup per workgroup, a 2W×4W output tile (16×32; 8×16
//                  for W = 4); activation quads shared by subgroupBroadcast (end of file). Fastest
//                  measured on lavapipe, and on SwiftShader 2.1–2.2× rt8x4.
//   sg1x32 (SG, SGV) its matvec forward (decode): one row per subgroup, the activation row loaded
//                  once per subgroup and broadcast; its backward is sg16x32's.
//   mv16 (MV)      a matvec forward for GPUs (decode): 16 threads per output column reading its
//                  weight row coalesced, a workgroup-memory reduction; its backward is rt1x4's.
//   mvsg (MVS)     the same with one subgroup per 2 output columns (any fixed subgroup size S:
//                  NVIDIA 32), lanes reading the two rows' quads j, j+S, … and subgroupAdd instead of
//                  the tree: no workgroup memory, no barrier; its backward is rt1x4's.
//   rt1x8 (R8)     a matvec forward for SwiftShader (decode): one thread, 8 output columns of one row,
//                  each activation quad loaded once for the 8; its backward is rt1x4's.
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
//#if SG
enable subgroups;
//#endif
//#if MVS
enable subgroups;
//#endif

const TM: u32 = 8u; // rows per thread (set by the launcher)
const WX: u32 = 8u; // register-tiled workgroup shape WX×WY (set by the launcher)
const WY: u32 = 8u;
const SGW: u32 = 8u; // SG: the subgroup width, 8 (or 4 with SG4; set by the launcher); MVS: the adapter's fixed subgroup size

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

// lr, ls: LORA rank and scale (forward); lthr, lseed, lkeep: the backward's LoRA dropout (threshold,
// seed, 1/(1−p); lthr = 0: none); eps: XN's RMSNorm epsilon
struct Params { N: u32, IC: u32, OC: u32, wbase: u32, rowWords: u32, hasBias: u32, lr: u32, ls: f32, lthr: u32, lseed: u32, lkeep: f32, eps: f32 }
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
  // bytes as unsigned 0..255, then two's complement: b ≥ 128 means b − 256
  let v = w[bw + 1u + t];
  let b = vec4f((vec4u(v) >> vec4u(0u, 8u, 16u, 24u)) & vec4u(255u));
  return d * (b - select(vec4f(0.0), vec4f(256.0), b >= vec4f(128.0)));
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

//#if LORA
//#if !SG
// the forward's adapter in RT and R8 (LORA: R = P.lr, R % 4 == 0): h (N,R) and B (OC,R) as quads
// (bindings 5, 6; the SG form declares its own)
@group(0) @binding(5) var<storage, read> rlh: array<vec4f>;
@group(0) @binding(6) var<storage, read> rlb: array<vec4f>;
// P.ls·h[n]·B[o] (the matvecs mv16 / mvsg: added by the thread that stores column o)
fn lora_dot(n: u32, o: u32) -> f32 {
  let rq = P.lr / 4u;
  var a = vec4f(0.0);
  for (var t = 0u; t < rq; t++) { a += rlh[n * rq + t] * rlb[o * rq + t]; }
  return P.ls * (a.x + a.y + a.z + a.w);
}
//#endif
//#endif

// the matvecs' input (R8, MV, MVS, SGV): xin(b, k) is the quad k..k+3 of the row starting at element
// b as the kernel uses it. XN: RMS-normalized — x·g, with Σx² of the quads this thread loaded added
// to ssq; the sums are scaled by rnorm(Σx² of the whole row) at the end (MV, MVS, SGV: the threads'
// ssq summed with their partial dots).
//#if XN
@group(0) @binding(5) var<storage, read> gn: array<vec4f>; // the RMSNorm weight g (IC); never with LORA
var<private> ssq: f32;
fn xin(b: u32, k: u32) -> vec4f { let x = ldx(b + k); ssq += dot(x, x); return x * gn[k >> 2u]; }
fn rnorm(ss: f32) -> f32 { return inverseSqrt(ss / f32(P.IC) + P.eps); }
//#else
fn xin(b: u32, k: u32) -> vec4f { return ldx(b + k); }
//#endif

//#if RT
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
//#if LORA
  // the adapter's output, acc += P.ls·h·Bᵀ: R/4 more quad steps, h rows n0.. and B rows o0..o0+3
  // (clamped as the activation and weight rows are), in f32 whatever the compute type
  let rq = P.lr / 4u;
  for (var t = 0u; t < rq; t++) {
    let b0 = rlb[min(o0, P.OC - 1u) * rq + t];      let b1 = rlb[min(o0 + 1u, P.OC - 1u) * rq + t];
    let b2 = rlb[min(o0 + 2u, P.OC - 1u) * rq + t]; let b3 = rlb[min(o0 + 3u, P.OC - 1u) * rq + t];
    for (var i = 0u; i < TM; i++) {
      let hq = P.ls * rlh[min(n0 + i, P.N - 1u) * rq + t];
      acc[i] += vec4f(dot(hq, b0), dot(hq, b1), dot(hq, b2), dot(hq, b3));
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

//#if RT
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

// the forward's output element: out[n][o] = v (+ bias[o]); ACC: adds into out
fn put_out(n: u32, o: u32, v0: f32) {
  var v = v0;
  if (P.hasBias != 0u) { v += bias[o]; }
//#if ACC
  out[n * P.OC + o] += v;
//#else
  out[n * P.OC + o] = v;
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

//#if !SM128
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
      put_out(n, o, a[i][j]);
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
//#else
// ---------------------------------------------------------------------------------------------
// sm128 (SM + SM128): the same staging with twice the tile each way — a 16×16 workgroup computes a
// 128×128 output tile, 8×8 per thread — so every value read from workgroup memory feeds 8 FMAs
// (sm64: 4). Tiles are stored reduction-major as quads, s4a[k][r / 4] (32 quads per k), and read
// as quads: thread (tx, ty) owns rows n0 + 4ty + {0..3} and n0 + 64 + 4ty + {0..3}, and columns
// likewise from 4tx. KT = 16; 2 × 8 KiB of workgroup memory (the WebGPU minimum, 16 KiB). The
// forward computes in f32 (the H flag's f16 dots are sm64's). Rows / columns past N, OC, IC are
// staged clamped or as 0 and never stored, as in sm64.
var<workgroup> s4a: array<vec4f, 512>; // forward: X tile [k][n]; backward: dout tile [o][n]
var<workgroup> s4b: array<vec4f, 512>; // forward: W tile [k][o]; backward: W tile [o][c]

// quad v (reduction steps k..k+3 of tile row r) into s4a / s4b, transposed: [k + i][r]
fn put4a(k: u32, r: u32, v: vec4f) {
  let q = r / 4u; let e = r % 4u;
  s4a[k * 32u + q][e] = v.x; s4a[(k + 1u) * 32u + q][e] = v.y; s4a[(k + 2u) * 32u + q][e] = v.z; s4a[(k + 3u) * 32u + q][e] = v.w;
}
fn put4b(k: u32, r: u32, v: vec4f) {
  let q = r / 4u; let e = r % 4u;
  s4b[k * 32u + q][e] = v.x; s4b[(k + 1u) * 32u + q][e] = v.y; s4b[(k + 2u) * 32u + q][e] = v.z; s4b[(k + 3u) * 32u + q][e] = v.w;
}

// one reduction step from the tiles: acc[2i + h] += a_i · b_h, rows i (a0: 4ty.., a1: 64 + 4ty..), column quads h
fn mma8(acc: ptr<function, array<vec4f, 16>>, kk: u32, tx: u32, ty: u32) {
  let a0 = s4a[kk * 32u + ty]; let a1 = s4a[kk * 32u + 16u + ty];
  let b0 = s4b[kk * 32u + tx]; let b1 = s4b[kk * 32u + 16u + tx];
  (*acc)[0] += a0.x * b0; (*acc)[1] += a0.x * b1; (*acc)[2] += a0.y * b0; (*acc)[3] += a0.y * b1;
  (*acc)[4] += a0.z * b0; (*acc)[5] += a0.z * b1; (*acc)[6] += a0.w * b0; (*acc)[7] += a0.w * b1;
  (*acc)[8] += a1.x * b0; (*acc)[9] += a1.x * b1; (*acc)[10] += a1.y * b0; (*acc)[11] += a1.y * b1;
  (*acc)[12] += a1.z * b0; (*acc)[13] += a1.z * b1; (*acc)[14] += a1.w * b0; (*acc)[15] += a1.w * b1;
}

// tile row i (0..7) of this thread: n0 + 4ty + i (i < 4) or n0 + 64 + 4ty + (i − 4)
fn row8(base: u32, t: u32, i: u32) -> u32 { return base + 4u * t + select(i, 60u + i, i >= 4u); }

// grid: (ceil(OC/128), ceil(N/128)) workgroups of 16×16
@compute @workgroup_size(16, 16)
fn linear_forward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let n0 = wg.y * 128u;
  let o0 = wg.x * 128u;
  let li = lid.y * 16u + lid.x;
  let sr = li / 4u;        // staged rows: sr and 64 + sr of X (n) and of W (o)
  let sk = (li % 4u) * 4u; // staged quad: k0 + sk .. +3
  let xb0 = min(n0 + sr, P.N - 1u) * P.IC;
  let xb1 = min(n0 + 64u + sr, P.N - 1u) * P.IC;
  let wb0 = P.wbase + min(o0 + sr, P.OC - 1u) * P.rowWords;
  let wb1 = P.wbase + min(o0 + 64u + sr, P.OC - 1u) * P.rowWords;
  var acc: array<vec4f, 16>;
  for (var k0 = 0u; k0 < P.IC; k0 += KT) {
    put4a(sk, sr, xstage(xb0, k0 + sk)); put4a(sk, 64u + sr, xstage(xb1, k0 + sk));
    put4b(sk, sr, wstage(wb0, k0 + sk)); put4b(sk, 64u + sr, wstage(wb1, k0 + sk));
    workgroupBarrier();
    for (var kk = 0u; kk < KT; kk++) { mma8(&acc, kk, lid.x, lid.y); }
    workgroupBarrier();
  }
  for (var i = 0u; i < 8u; i++) {
    let n = row8(n0, lid.y, i);
    if (n >= P.N) { continue; }
    for (var h = 0u; h < 2u; h++) {
      let v4 = acc[2u * i + h];
      for (var e = 0u; e < 4u; e++) {
        let o = o0 + 64u * h + 4u * lid.x + e;
        if (o >= P.OC) { break; }
        put_out(n, o, v4[e]);
      }
    }
  }
}

// grid: (ceil(IC/128), ceil(N/128)) workgroups of 16×16. dinp[n][c] += Σ_o dout[n][o]·W[o][c]:
// the dout tile is staged like the forward's X (transposed), the W tile row by row as it lies
// (16 rows o × 32 column quads: two quads per thread, no transpose).
@compute @workgroup_size(16, 16)
fn linear_backward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let n0 = wg.y * 128u;
  let c0 = wg.x * 128u;
  let li = lid.y * 16u + lid.x;
  let dr = li / 4u;
  let dk = (li % 4u) * 4u;
  let db0 = min(n0 + dr, P.N - 1u) * P.OC;
  let db1 = min(n0 + 64u + dr, P.N - 1u) * P.OC;
  let wo = li / 16u;        // staged W row o0 + wo
  let wc = (li % 16u) * 4u; // staged column quads c0 + wc and c0 + 64 + wc
  var acc: array<vec4f, 16>;
  for (var o0 = 0u; o0 < P.OC; o0 += KT) {
    put4a(dk, dr, dstage(db0, o0 + dk)); put4a(dk, 64u + dr, dstage(db1, o0 + dk));
    let o = o0 + wo;
    let rb = P.wbase + min(o, P.OC - 1u) * P.rowWords;
    let live = o < P.OC;
    s4b[wo * 32u + li % 16u] = select(vec4f(0.0), wstage(rb, c0 + wc), live);
    s4b[wo * 32u + 16u + li % 16u] = select(vec4f(0.0), wstage(rb, c0 + 64u + wc), live);
    workgroupBarrier();
    for (var kk = 0u; kk < KT; kk++) { mma8(&acc, kk, lid.x, lid.y); }
    workgroupBarrier();
  }
  for (var i = 0u; i < 8u; i++) {
    let n = row8(n0, lid.y, i);
    if (n >= P.N) { continue; }
    for (var h = 0u; h < 2u; h++) {
      let c = c0 + 64u * h + 4u * lid.x;
      if (c >= P.IC) { continue; }
//#if V4
      dinp[(n * P.IC + c) >> 2u] += acc[2u * i + h];
//#else
      for (var e = 0u; e < 4u; e++) {
        if (c + e >= P.IC) { break; }
        dinp[n * P.IC + c + e] += acc[2u * i + h][e];
      }
//#endif
    }
  }
}
//#endif
//#endif

//#if SG
// ---------------------------------------------------------------------------------------------
// Subgroup variant sg16x32 (the launcher runs it only where subgroups are exactly W = SGW = 8 or 4
// wide (SG4), and only with V4: IC % 4 == 0). A workgroup is one subgroup of W lanes. Per 4-wide
// reduction step a lane loads two quads of the row operand — rows n0+j and n0+W+j — plus its own
// column operand, and the 2W row quads every lane needs are passed around with subgroupBroadcast.
// On the CPU Vulkan drivers a storage load is a scalar loop (lavapipe) or a gather (SwiftShader)
// over the lanes while a broadcast is a register shuffle, so with W = 8 this does 6 loads per 64
// 4-term dots where rt8x4 does 12 per 32 (W = 4: 6 per 32). Rows 2W..15 of the tile arrays are
// unused with W = 4; the tile's row count is spelled out in the unrolled calls (SG4 or not).
// Every subgroupBroadcast sits in uniform control flow (loop bounds come from P only).
var<private> sacc: array<vec4f, 16>; // forward: sacc[r][c] = out[n0+r][o0+j+Wc]; backward: sacc[r] = dinp[n0+r][c0..c0+3]
//#if LORA
// LoRA operands, row-major f32 read as quads (R % 4 == 0). Forward: lh = h (N,R), lb = B (OC,R)
// (bindings 5, 6); backward: ldh = dh (N,R), la = A (R,IC) (bindings 4, 5: numbers are reused
// across the two entry points, which bind 1..6 and 1..5).
@group(0) @binding(5) var<storage, read> lh: array<vec4f>;
@group(0) @binding(6) var<storage, read> lb: array<vec4f>;
@group(0) @binding(4) var<storage, read> ldh: array<vec4f>;
@group(0) @binding(5) var<storage, read> la: array<vec4f>;
// backward: the input dropout's multipliers (0 or 1/(1−p)) of dinp[n][c..c+3] (pcg, dropout_hash:
// shaders/dropout_hash.wgsl)
fn drop4(n: u32, c: u32) -> vec4f {
  let i = n * P.IC + c;
  let h = vec4u(dropout_hash(P.lseed, i), dropout_hash(P.lseed, i + 1u), dropout_hash(P.lseed, i + 2u), dropout_hash(P.lseed, i + 3u));
  return select(vec4f(0.0), vec4f(P.lkeep), h >= vec4u(P.lthr));
}
// the 2W rows' sums of column quad c (q = 0: sacc, 1: the SGP form's sbq) × their dropout multipliers;
// sg_mask1 (per form) is called with constant r so the accumulators stay in registers
fn sg_mask_rows(n0: u32, c: u32, q: u32) {
  sg_mask1(0u, n0, c, q); sg_mask1(1u, n0, c, q); sg_mask1(2u, n0, c, q); sg_mask1(3u, n0, c, q);
  sg_mask1(4u, n0, c, q); sg_mask1(5u, n0, c, q); sg_mask1(6u, n0, c, q); sg_mask1(7u, n0, c, q);
//#if !SG4
  sg_mask1(8u, n0, c, q); sg_mask1(9u, n0, c, q); sg_mask1(10u, n0, c, q); sg_mask1(11u, n0, c, q);
  sg_mask1(12u, n0, c, q); sg_mask1(13u, n0, c, q); sg_mask1(14u, n0, c, q); sg_mask1(15u, n0, c, q);
//#endif
}
//#endif

// forward: row r += x · [w0 w1 w2 w3] (one 4-term dot per column; H: in f16, added in f32)
fn sg_row(r: u32, x: vec4f, w0: VT, w1: VT, w2: VT, w3: VT) {
  let v = cv(x);
  sacc[r] += vec4f(vec4<VS>(dot(v, w0), dot(v, w1), dot(v, w2), dot(v, w3)));
}
// rows 0..W-1 take lane r's quad xa, rows W..2W-1 lane r's quad xb (constant lanes: no dynamic index)
//#if SG4
fn sg_step(xa: vec4f, xb: vec4f, w0: VT, w1: VT, w2: VT, w3: VT) {
  sg_row(0u, subgroupBroadcast(xa, 0u), w0, w1, w2, w3); sg_row(1u, subgroupBroadcast(xa, 1u), w0, w1, w2, w3);
  sg_row(2u, subgroupBroadcast(xa, 2u), w0, w1, w2, w3); sg_row(3u, subgroupBroadcast(xa, 3u), w0, w1, w2, w3);
  sg_row(4u, subgroupBroadcast(xb, 0u), w0, w1, w2, w3); sg_row(5u, subgroupBroadcast(xb, 1u), w0, w1, w2, w3);
  sg_row(6u, subgroupBroadcast(xb, 2u), w0, w1, w2, w3); sg_row(7u, subgroupBroadcast(xb, 3u), w0, w1, w2, w3);
}
//#else
fn sg_step(xa: vec4f, xb: vec4f, w0: VT, w1: VT, w2: VT, w3: VT) {
  sg_row(0u, subgroupBroadcast(xa, 0u), w0, w1, w2, w3); sg_row(1u, subgroupBroadcast(xa, 1u), w0, w1, w2, w3);
  sg_row(2u, subgroupBroadcast(xa, 2u), w0, w1, w2, w3); sg_row(3u, subgroupBroadcast(xa, 3u), w0, w1, w2, w3);
  sg_row(4u, subgroupBroadcast(xa, 4u), w0, w1, w2, w3); sg_row(5u, subgroupBroadcast(xa, 5u), w0, w1, w2, w3);
  sg_row(6u, subgroupBroadcast(xa, 6u), w0, w1, w2, w3); sg_row(7u, subgroupBroadcast(xa, 7u), w0, w1, w2, w3);
  sg_row(8u, subgroupBroadcast(xb, 0u), w0, w1, w2, w3); sg_row(9u, subgroupBroadcast(xb, 1u), w0, w1, w2, w3);
  sg_row(10u, subgroupBroadcast(xb, 2u), w0, w1, w2, w3); sg_row(11u, subgroupBroadcast(xb, 3u), w0, w1, w2, w3);
  sg_row(12u, subgroupBroadcast(xb, 4u), w0, w1, w2, w3); sg_row(13u, subgroupBroadcast(xb, 5u), w0, w1, w2, w3);
  sg_row(14u, subgroupBroadcast(xb, 6u), w0, w1, w2, w3); sg_row(15u, subgroupBroadcast(xb, 7u), w0, w1, w2, w3);
}
//#endif
// store row r of the tile (columns o0+j+8c); called with constant r so sacc stays in registers
fn sg_store(r: u32, n0: u32, o0: u32) {
  let n = n0 + r;
  if (n >= P.N) { return; }
  for (var c = 0u; c < 4u; c++) {
    let o = o0 + SGW * c;
    if (o < P.OC) {
      var v = sacc[r][c];
      if (P.hasBias != 0u) { v += bias[o]; }
//#if ACC
      out[n * P.OC + o] += v;
//#else
      out[n * P.OC + o] = v;
//#endif
    }
  }
}

//#if SGV
// sg1x32 (SGV; decode, N ≤ 4): the matvec form. A workgroup (one subgroup of W = SGW lanes) computes
// 4W columns of one row n = wg.y: lane j owns columns o0+j+Wc (c < 4). The activation row is read
// once per subgroup — lane j loads quad j of each group of W quads and the others come by
// subgroupBroadcast — instead of once per lane; the weights are read once as ever.
fn sgv_step(x: vec4f, w0: VT, w1: VT, w2: VT, w3: VT) {
  let v = cv(x);
  sacc[0] += vec4f(vec4<VS>(dot(v, w0), dot(v, w1), dot(v, w2), dot(v, w3)));
}
//#if Q
// quad t of the group: quad tq + t of block words b0..b3 with scales d0..d3
fn sgv_q(x: vec4f, t: u32, tq: u32, b0: u32, b1: u32, b2: u32, b3: u32, d0: f32, d1: f32, d2: f32, d3: f32) {
  sgv_step(x, cv(wquad_q(b0, tq + t, d0)), cv(wquad_q(b1, tq + t, d1)), cv(wquad_q(b2, tq + t, d2)), cv(wquad_q(b3, tq + t, d3)));
}
//#else
// quad t of the group starting at value k
fn sgv_f(x: vec4f, t: u32, k: u32, r0: u32, r1: u32, r2: u32, r3: u32) {
  let kt = k + 4u * t;
  sgv_step(x, wquad(r0, kt), wquad(r1, kt), wquad(r2, kt), wquad(r3, kt));
}
//#endif

// grid: (ceil(OC/4W), N) workgroups of W (one subgroup)
@compute @workgroup_size(SGW)
fn linear_forward(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) j: u32) {
  let o0 = wg.x * 4u * SGW;
  let n = wg.y;
  let IC = P.IC;
  let xr = n * IC;
  let r0 = P.wbase + min(o0 + j, P.OC - 1u) * P.rowWords;
  let r1 = P.wbase + min(o0 + j + SGW, P.OC - 1u) * P.rowWords;
  let r2 = P.wbase + min(o0 + j + 2u * SGW, P.OC - 1u) * P.rowWords;
  let r3 = P.wbase + min(o0 + j + 3u * SGW, P.OC - 1u) * P.rowWords;
  let nq = IC / 4u; // IC % 4 == 0
  // groups of W quads (4W values; for q8 / q4 one block of each weight row, or half of one for W = 4)
  for (var g = 0u; g * SGW < nq; g++) {
    let q0 = g * SGW;
    let m = min(SGW, nq - q0);
//#if XN
    let xraw = ldx(xr + 4u * min(q0 + j, nq - 1u)); // lanes past the row's end load its last quad again
    if (j < m) { ssq += dot(xraw, xraw); }
    let xq = xraw * gn[min(q0 + j, nq - 1u)];
//#else
    let xq = ldx(xr + 4u * min(q0 + j, nq - 1u));
//#endif
//#if Q
    let bo = (q0 / 8u) * WB; // the block's first word
//#if SG4
    let tq = q0 % 8u; // the group's first quad in the block (0 or 4)
//#else
    let tq = 0u; // a group is one whole block (a constant: the quad indexes below fold)
//#endif
    let b0 = r0 + bo; let b1 = r1 + bo; let b2 = r2 + bo; let b3 = r3 + bo;
    let d0 = wf(b0); let d1 = wf(b1); let d2 = wf(b2); let d3 = wf(b3);
    if (m == SGW) {
      sgv_q(subgroupBroadcast(xq, 0u), 0u, tq, b0, b1, b2, b3, d0, d1, d2, d3);
      sgv_q(subgroupBroadcast(xq, 1u), 1u, tq, b0, b1, b2, b3, d0, d1, d2, d3);
      sgv_q(subgroupBroadcast(xq, 2u), 2u, tq, b0, b1, b2, b3, d0, d1, d2, d3);
      sgv_q(subgroupBroadcast(xq, 3u), 3u, tq, b0, b1, b2, b3, d0, d1, d2, d3);
//#if !SG4
      sgv_q(subgroupBroadcast(xq, 4u), 4u, tq, b0, b1, b2, b3, d0, d1, d2, d3);
      sgv_q(subgroupBroadcast(xq, 5u), 5u, tq, b0, b1, b2, b3, d0, d1, d2, d3);
      sgv_q(subgroupBroadcast(xq, 6u), 6u, tq, b0, b1, b2, b3, d0, d1, d2, d3);
      sgv_q(subgroupBroadcast(xq, 7u), 7u, tq, b0, b1, b2, b3, d0, d1, d2, d3);
//#endif
    } else {
      // the last, partial group (IC % 4W ≠ 0): quad t from lane t by shuffle
      for (var t = 0u; t < m; t++) { sgv_q(subgroupShuffle(xq, t), t, tq, b0, b1, b2, b3, d0, d1, d2, d3); }
    }
//#else
    let k = 4u * q0;
    if (m == SGW) {
      sgv_f(subgroupBroadcast(xq, 0u), 0u, k, r0, r1, r2, r3); sgv_f(subgroupBroadcast(xq, 1u), 1u, k, r0, r1, r2, r3);
      sgv_f(subgroupBroadcast(xq, 2u), 2u, k, r0, r1, r2, r3); sgv_f(subgroupBroadcast(xq, 3u), 3u, k, r0, r1, r2, r3);
//#if !SG4
      sgv_f(subgroupBroadcast(xq, 4u), 4u, k, r0, r1, r2, r3); sgv_f(subgroupBroadcast(xq, 5u), 5u, k, r0, r1, r2, r3);
      sgv_f(subgroupBroadcast(xq, 6u), 6u, k, r0, r1, r2, r3); sgv_f(subgroupBroadcast(xq, 7u), 7u, k, r0, r1, r2, r3);
//#endif
    } else {
      // the last, partial group (IC % 4W ≠ 0): quad t from lane t by shuffle
      for (var t = 0u; t < m; t++) { sgv_f(subgroupShuffle(xq, t), t, k, r0, r1, r2, r3); }
    }
//#endif
  }
//#if XN
  sacc[0] *= rnorm(subgroupAdd(ssq));
//#endif
  sg_store(0u, n, o0 + j);
}
//#else
// grid: (ceil(OC/4W), ceil(N/2W)) workgroups of W = SGW (one subgroup). Lane j: columns o0+j+Wc (c < 4),
// rows n0..n0+2W-1.
@compute @workgroup_size(SGW)
fn linear_forward(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) j: u32) {
  let o0 = wg.x * 4u * SGW;
  let n0 = wg.y * 2u * SGW;
  let IC = P.IC;
  let xa = min(n0 + j, P.N - 1u) * IC;
  let xb = min(n0 + SGW + j, P.N - 1u) * IC;
  let r0 = P.wbase + min(o0 + j, P.OC - 1u) * P.rowWords;
  let r1 = P.wbase + min(o0 + j + SGW, P.OC - 1u) * P.rowWords;
  let r2 = P.wbase + min(o0 + j + 2u * SGW, P.OC - 1u) * P.rowWords;
  let r3 = P.wbase + min(o0 + j + 3u * SGW, P.OC - 1u) * P.rowWords;
//#if !Q
  for (var k = 0u; k < IC; k += 4u) {
    sg_step(ldx(xa + k), ldx(xb + k), wquad(r0, k), wquad(r1, k), wquad(r2, k), wquad(r3, k));
  }
//#else
  let nb = (IC + 31u) / 32u;
  for (var b = 0u; b < nb; b++) {
    let nq = min(8u, (IC - b * 32u) / 4u); // quads of block b (IC % 4 == 0)
    let b0 = r0 + b * WB; let b1 = r1 + b * WB; let b2 = r2 + b * WB; let b3 = r3 + b * WB;
    let d0 = wf(b0); let d1 = wf(b1); let d2 = wf(b2); let d3 = wf(b3);
    for (var t = 0u; t < nq; t++) {
      let k = b * 32u + 4u * t;
      sg_step(ldx(xa + k), ldx(xb + k), cv(wquad_q(b0, t, d0)), cv(wquad_q(b1, t, d1)), cv(wquad_q(b2, t, d2)), cv(wquad_q(b3, t, d3)));
    }
  }
//#endif
//#if LORA
  // the adapter as R more reduction steps: rows h[n0+j], h[n0+W+j], columns P.ls·B[o] (o = o0+j+Wc)
  let R = P.lr;
  let ha = min(n0 + j, P.N - 1u) * R;
  let hb = min(n0 + SGW + j, P.N - 1u) * R;
  let l0 = min(o0 + j, P.OC - 1u) * R; let l1 = min(o0 + j + SGW, P.OC - 1u) * R;
  let l2 = min(o0 + j + 2u * SGW, P.OC - 1u) * R; let l3 = min(o0 + j + 3u * SGW, P.OC - 1u) * R;
  for (var k = 0u; k < R; k += 4u) {
    sg_step(lh[(ha + k) >> 2u], lh[(hb + k) >> 2u], cv(P.ls * lb[(l0 + k) >> 2u]), cv(P.ls * lb[(l1 + k) >> 2u]),
      cv(P.ls * lb[(l2 + k) >> 2u]), cv(P.ls * lb[(l3 + k) >> 2u]));
  }
//#endif
  let oj = o0 + j;
  sg_store(0u, n0, oj); sg_store(1u, n0, oj); sg_store(2u, n0, oj); sg_store(3u, n0, oj);
  sg_store(4u, n0, oj); sg_store(5u, n0, oj); sg_store(6u, n0, oj); sg_store(7u, n0, oj);
//#if !SG4
  sg_store(8u, n0, oj); sg_store(9u, n0, oj); sg_store(10u, n0, oj); sg_store(11u, n0, oj);
  sg_store(12u, n0, oj); sg_store(13u, n0, oj); sg_store(14u, n0, oj); sg_store(15u, n0, oj);
//#endif
}
//#endif

// Backward, both forms (one column quad per lane, or two: SGP below): WQ is a lane's weights for
// one o, sgb_add (per form) adds a WQ into row r's accumulators.
//#if SGP
alias WQ = mat2x4f;
//#else
alias WQ = vec4f;
//#endif
// row r += g.x·W[o] + g.y·W[o+1] + g.z·W[o+2] + g.w·W[o+3] (the lane's columns)
fn sgb_row(r: u32, g: vec4f, w0: WQ, w1: WQ, w2: WQ, w3: WQ) { sgb_add(r, g.x * w0 + g.y * w1 + g.z * w2 + g.w * w3); }
//#if SG4
fn sgb_step(ga: vec4f, gb: vec4f, w0: WQ, w1: WQ, w2: WQ, w3: WQ) {
  sgb_row(0u, subgroupBroadcast(ga, 0u), w0, w1, w2, w3); sgb_row(1u, subgroupBroadcast(ga, 1u), w0, w1, w2, w3);
  sgb_row(2u, subgroupBroadcast(ga, 2u), w0, w1, w2, w3); sgb_row(3u, subgroupBroadcast(ga, 3u), w0, w1, w2, w3);
  sgb_row(4u, subgroupBroadcast(gb, 0u), w0, w1, w2, w3); sgb_row(5u, subgroupBroadcast(gb, 1u), w0, w1, w2, w3);
  sgb_row(6u, subgroupBroadcast(gb, 2u), w0, w1, w2, w3); sgb_row(7u, subgroupBroadcast(gb, 3u), w0, w1, w2, w3);
}
//#else
fn sgb_step(ga: vec4f, gb: vec4f, w0: WQ, w1: WQ, w2: WQ, w3: WQ) {
  sgb_row(0u, subgroupBroadcast(ga, 0u), w0, w1, w2, w3); sgb_row(1u, subgroupBroadcast(ga, 1u), w0, w1, w2, w3);
  sgb_row(2u, subgroupBroadcast(ga, 2u), w0, w1, w2, w3); sgb_row(3u, subgroupBroadcast(ga, 3u), w0, w1, w2, w3);
  sgb_row(4u, subgroupBroadcast(ga, 4u), w0, w1, w2, w3); sgb_row(5u, subgroupBroadcast(ga, 5u), w0, w1, w2, w3);
  sgb_row(6u, subgroupBroadcast(ga, 6u), w0, w1, w2, w3); sgb_row(7u, subgroupBroadcast(ga, 7u), w0, w1, w2, w3);
  sgb_row(8u, subgroupBroadcast(gb, 0u), w0, w1, w2, w3); sgb_row(9u, subgroupBroadcast(gb, 1u), w0, w1, w2, w3);
  sgb_row(10u, subgroupBroadcast(gb, 2u), w0, w1, w2, w3); sgb_row(11u, subgroupBroadcast(gb, 3u), w0, w1, w2, w3);
  sgb_row(12u, subgroupBroadcast(gb, 4u), w0, w1, w2, w3); sgb_row(13u, subgroupBroadcast(gb, 5u), w0, w1, w2, w3);
  sgb_row(14u, subgroupBroadcast(gb, 6u), w0, w1, w2, w3); sgb_row(15u, subgroupBroadcast(gb, 7u), w0, w1, w2, w3);
}
//#endif
//#if !DV
// the OC tail (OC % 4 ≠ 0): one o at a time
//#if SG4
fn sgb_tail(ga: f32, gb: f32, w: WQ) {
  sgb_add(0u, subgroupBroadcast(ga, 0u) * w); sgb_add(1u, subgroupBroadcast(ga, 1u) * w);
  sgb_add(2u, subgroupBroadcast(ga, 2u) * w); sgb_add(3u, subgroupBroadcast(ga, 3u) * w);
  sgb_add(4u, subgroupBroadcast(gb, 0u) * w); sgb_add(5u, subgroupBroadcast(gb, 1u) * w);
  sgb_add(6u, subgroupBroadcast(gb, 2u) * w); sgb_add(7u, subgroupBroadcast(gb, 3u) * w);
}
//#else
fn sgb_tail(ga: f32, gb: f32, w: WQ) {
  sgb_add(0u, subgroupBroadcast(ga, 0u) * w); sgb_add(1u, subgroupBroadcast(ga, 1u) * w);
  sgb_add(2u, subgroupBroadcast(ga, 2u) * w); sgb_add(3u, subgroupBroadcast(ga, 3u) * w);
  sgb_add(4u, subgroupBroadcast(ga, 4u) * w); sgb_add(5u, subgroupBroadcast(ga, 5u) * w);
  sgb_add(6u, subgroupBroadcast(ga, 6u) * w); sgb_add(7u, subgroupBroadcast(ga, 7u) * w);
  sgb_add(8u, subgroupBroadcast(gb, 0u) * w); sgb_add(9u, subgroupBroadcast(gb, 1u) * w);
  sgb_add(10u, subgroupBroadcast(gb, 2u) * w); sgb_add(11u, subgroupBroadcast(gb, 3u) * w);
  sgb_add(12u, subgroupBroadcast(gb, 4u) * w); sgb_add(13u, subgroupBroadcast(gb, 5u) * w);
  sgb_add(14u, subgroupBroadcast(gb, 6u) * w); sgb_add(15u, subgroupBroadcast(gb, 7u) * w);
}
//#endif
//#endif

//#if !SGP
fn sgb_add(r: u32, v: vec4f) { sacc[r] += v; }
//#if LORA
fn sg_mask1(r: u32, n0: u32, c: u32, q: u32) { sacc[r] *= drop4(min(n0 + r, P.N - 1u), c); }
//#endif
fn sgb_store(r: u32, n0: u32, c0: u32) {
  let n = n0 + r;
  if (n < P.N && c0 < P.IC) { dinp[(n * P.IC + c0) >> 2u] += sacc[r]; }
}

// grid: (ceil(IC/4W), ceil(N/2W)) workgroups of W = SGW (one subgroup). Lane j: dinp[n0..n0+2W-1][c0..c0+3],
// c0 = 4W·wg.x + 4j (lanes past IC compute a clamped copy and store nothing).
@compute @workgroup_size(SGW)
fn linear_backward(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) j: u32) {
  let c0 = wg.x * 4u * SGW + 4u * j;
  let n0 = wg.y * 2u * SGW;
  let OC = P.OC;
  let da = min(n0 + j, P.N - 1u) * OC;
  let db = min(n0 + SGW + j, P.N - 1u) * OC;
  let cc = min(c0, P.IC - 4u);
  ccol = vec4u(cc, cc + 1u, cc + 2u, cc + 3u);
//#if Q
  cbw = (cc / 32u) * WB;
  ct = (cc % 32u) / 4u;
//#endif
//#if LORA
  // the adapter first, as R reduction steps: rows dh[n0+j], dh[n0+W+j], columns A[r][cc..cc+3];
  // its sums are masked by the input dropout, then the frozen weight's sums are added on top
  let R = P.lr;
  let ha = min(n0 + j, P.N - 1u) * R;
  let hb = min(n0 + SGW + j, P.N - 1u) * R;
  for (var r = 0u; r < R; r += 4u) {
    let ab = r * P.IC + cc;
    sgb_step(ldh[(ha + r) >> 2u], ldh[(hb + r) >> 2u], la[ab >> 2u], la[(ab + P.IC) >> 2u], la[(ab + 2u * P.IC) >> 2u], la[(ab + 3u * P.IC) >> 2u]);
  }
  if (P.lthr != 0u) { sg_mask_rows(n0, cc, 0u); }
//#endif
  let OC4 = OC & ~3u;
  for (var o = 0u; o < OC4; o += 4u) {
    sgb_step(ldd(da + o), ldd(db + o), wcol(o), wcol(o + 1u), wcol(o + 2u), wcol(o + 3u));
  }
//#if !DV
  for (var o = OC4; o < OC; o++) { sgb_tail(dout[da + o], dout[db + o], wcol(o)); }
//#endif
  sgb_store(0u, n0, c0); sgb_store(1u, n0, c0); sgb_store(2u, n0, c0); sgb_store(3u, n0, c0);
  sgb_store(4u, n0, c0); sgb_store(5u, n0, c0); sgb_store(6u, n0, c0); sgb_store(7u, n0, c0);
//#if !SG4
  sgb_store(8u, n0, c0); sgb_store(9u, n0, c0); sgb_store(10u, n0, c0); sgb_store(11u, n0, c0);
  sgb_store(12u, n0, c0); sgb_store(13u, n0, c0); sgb_store(14u, n0, c0); sgb_store(15u, n0, c0);
//#endif
}
//#else
// SGP (the launcher sets it for q4 weights, where it measured 1.5× the single-quad form; for f32 it
// measured slower, 12 vs 28 GFLOP/s):
// backward: a lane owns two adjacent column quads (8 columns c0..c0+7, c0 % 8 == 0): one q4 word
// holds both, so a row's scale and word are loaded once for 8 columns. sacc[r] / sacc[16+r]: row r,
// quad A (c0..c0+3) / quad B (c0+4..c0+7).
var<private> sbq: array<vec4f, 16>; // quad B accumulators (quad A: sacc)

// W[o][ccA .. ccA+7] of the slice as two quads (ccA % 4 == 0; ccB = the second quad's first column,
// clamped into the row: ccB ≠ ccA + 4 only for columns that are never stored)
fn wcol2(o: u32, ccA: u32, ccB: u32) -> mat2x4f {
  let rb = P.wbase + o * P.rowWords;
//#if F32
  return mat2x4f(wq4(rb + ccA), wq4(rb + ccB));
//#endif
//#if F16
  return mat2x4f(h4f(wpair(rb + (ccA >> 1u))), h4f(wpair(rb + (ccB >> 1u))));
//#endif
//#if Q8
  let bw = rb + (ccA / 32u) * WB;
  let d = wf(bw);
  let bwB = rb + (ccB / 32u) * WB;
  return mat2x4f(wquad_q(bw, (ccA % 32u) / 4u, d), wquad_q(bwB, (ccB % 32u) / 4u, wf(bwB)));
//#endif
//#if Q4
  let bw = rb + (ccA / 32u) * WB;
  let d = wf(bw);
  if (ccB == ccA + 4u && (ccA % 8u) == 0u) {
    // one word, both quads: values 8w..8w+7 in nibbles 0..7
    let v = w[bw + 1u + (ccA % 32u) / 8u];
    let lo = vec4f(f32(v & 15u), f32((v >> 4u) & 15u), f32((v >> 8u) & 15u), f32((v >> 12u) & 15u));
    let hi = vec4f(f32((v >> 16u) & 15u), f32((v >> 20u) & 15u), f32((v >> 24u) & 15u), f32(v >> 28u));
    return mat2x4f(d * (lo - vec4f(8.0)), d * (hi - vec4f(8.0)));
  }
  let bwB = rb + (ccB / 32u) * WB;
  return mat2x4f(wquad_q(bw, (ccA % 32u) / 4u, d), wquad_q(bwB, (ccB % 32u) / 4u, wf(bwB)));
//#endif
}
fn sgb_add(r: u32, v: mat2x4f) { sacc[r] += v[0]; sbq[r] += v[1]; }
//#if LORA
fn sg_mask1(r: u32, n0: u32, c: u32, q: u32) {
  let m = drop4(min(n0 + r, P.N - 1u), c);
  if (q == 0u) { sacc[r] *= m; } else { sbq[r] *= m; }
}
//#endif
fn sgb_store(r: u32, n0: u32, c0: u32) {
  let n = n0 + r;
  if (n >= P.N) { return; }
  if (c0 < P.IC) { dinp[(n * P.IC + c0) >> 2u] += sacc[r]; }
  if (c0 + 4u < P.IC) { dinp[(n * P.IC + c0 + 4u) >> 2u] += sbq[r]; }
}

// grid: (ceil(IC/8W), ceil(N/2W)) workgroups of W = SGW (one subgroup). Lane j: dinp[n0..n0+2W-1][c0..c0+7],
// c0 = 8W·wg.x + 8j (quads past IC compute a clamped copy and store nothing).
@compute @workgroup_size(SGW)
fn linear_backward(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) j: u32) {
  let c0 = wg.x * 8u * SGW + 8u * j;
  let n0 = wg.y * 2u * SGW;
  let OC = P.OC;
  let da = min(n0 + j, P.N - 1u) * OC;
  let db = min(n0 + SGW + j, P.N - 1u) * OC;
  let ccA = min(c0, P.IC - 4u);
  let ccB = min(c0 + 4u, P.IC - 4u);
//#if LORA
  // the adapter first, as R reduction steps: rows dh[n0+j], dh[n0+W+j], columns A[r][ccA..], A[r][ccB..];
  // its sums are masked by the input dropout, then the frozen weight's sums are added on top
  let R = P.lr;
  let ha = min(n0 + j, P.N - 1u) * R;
  let hb = min(n0 + SGW + j, P.N - 1u) * R;
  for (var r = 0u; r < R; r += 4u) {
    let ra = r * P.IC;
    sgb_step(ldh[(ha + r) >> 2u], ldh[(hb + r) >> 2u],
      mat2x4f(la[(ra + ccA) >> 2u], la[(ra + ccB) >> 2u]), mat2x4f(la[(ra + P.IC + ccA) >> 2u], la[(ra + P.IC + ccB) >> 2u]),
      mat2x4f(la[(ra + 2u * P.IC + ccA) >> 2u], la[(ra + 2u * P.IC + ccB) >> 2u]), mat2x4f(la[(ra + 3u * P.IC + ccA) >> 2u], la[(ra + 3u * P.IC + ccB) >> 2u]));
  }
  if (P.lthr != 0u) { sg_mask_rows(n0, ccA, 0u); sg_mask_rows(n0, ccB, 1u); }
//#endif
  let OC4 = OC & ~3u;
  for (var o = 0u; o < OC4; o += 4u) {
    sgb_step(ldd(da + o), ldd(db + o), wcol2(o, ccA, ccB), wcol2(o + 1u, ccA, ccB), wcol2(o + 2u, ccA, ccB), wcol2(o + 3u, ccA, ccB));
  }
//#if !DV
  for (var o = OC4; o < OC; o++) { sgb_tail(dout[da + o], dout[db + o], wcol2(o, ccA, ccB)); }
//#endif
  sgb_store(0u, n0, c0); sgb_store(1u, n0, c0); sgb_store(2u, n0, c0); sgb_store(3u, n0, c0);
  sgb_store(4u, n0, c0); sgb_store(5u, n0, c0); sgb_store(6u, n0, c0); sgb_store(7u, n0, c0);
//#if !SG4
  sgb_store(8u, n0, c0); sgb_store(9u, n0, c0); sgb_store(10u, n0, c0); sgb_store(11u, n0, c0);
  sgb_store(12u, n0, c0); sgb_store(13u, n0, c0); sgb_store(14u, n0, c0); sgb_store(15u, n0, c0);
//#endif
}
//#endif
//#endif

//#if MV
// ---------------------------------------------------------------------------------------------
// Variant mv16 (MV; a matvec for GPUs, forward only: its backward is rt1x4's). 16 threads share one
// output column: thread t reads the weight row's quads t, t+16, … — consecutive threads read
// consecutive 16-byte quads, the coalesced access a GPU's memory system rewards (rt1x4's threads
// each walk their own rows instead) — and the 16 partial sums meet in a workgroup-memory tree.
// V4 only (IC % 4 == 0; the launcher runs rt1x4 otherwise). On the CPU drivers each workgroup
// barrier is costly and loads are per-lane loops either way, so it is slower there; the autotuner
// decides per adapter.
var<workgroup> mvsum: array<f32, 64>;
//#if XN
var<workgroup> mvss: array<f32, 64>; // the threads' Σx², summed in the same tree
//#endif

// grid: (ceil(OC/4), N) workgroups of 64: 4 columns o0..o0+3 × 16 threads, row n = wg.y
@compute @workgroup_size(64)
fn linear_forward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let t = li % 16u;                     // thread within the column
  let o = wg.x * 4u + li / 16u;         // this thread's column
  let n = wg.y;
  let rb = P.wbase + min(o, P.OC - 1u) * P.rowWords;
  let xr = n * P.IC;
  let nq = P.IC / 4u;
  var s = 0.0;
  for (var q = t; q < nq; q += 16u) {
    let x = cv(xin(xr, 4u * q));
//#if Q
    let bw = rb + (q / 8u) * WB;
    s += f32(dot(x, cv(wquad_q(bw, q % 8u, wf(bw)))));
//#else
    s += f32(dot(x, wquad(rb, 4u * q)));
//#endif
  }
  mvsum[li] = s;
//#if XN
  mvss[li] = ssq;
//#endif
  workgroupBarrier();
  for (var h = 8u; h > 0u; h >>= 1u) {
    if (t < h) {
      mvsum[li] += mvsum[li + h];
//#if XN
      mvss[li] += mvss[li + h];
//#endif
    }
    workgroupBarrier();
  }
  if (t == 0u && o < P.OC) {
    var v = mvsum[li];
//#if XN
    v *= rnorm(mvss[li]);
//#endif
    if (P.hasBias != 0u) { v += bias[o]; }
//#if LORA
    v += lora_dot(n, o);
//#endif
//#if ACC
    out[n * P.OC + o] += v;
//#else
    out[n * P.OC + o] = v;
//#endif
  }
}
//#endif
//#if MVS
// ---------------------------------------------------------------------------------------------
// Variant mvsg (MVS; forward only, V4 only): a workgroup is one subgroup of SGW lanes (the adapter's
// fixed subgroup size) and computes output columns o0 = 2·wg.x and o0 + 1 of row n = wg.y. Lane j
// reads quads j, j+SGW, … of both weight rows (consecutive lanes, consecutive 16-byte quads; two
// independent loads in flight per step) and the activation quad once for both; subgroupAdd sums
// the lanes' partials. Rows past OC are clamped on load and not stored.
// grid: (ceil(OC/2), N) workgroups of SGW
@compute @workgroup_size(SGW)
fn linear_forward(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) j: u32) {
  let n = wg.y;
  let o0 = wg.x * 2u;
  let rb0 = P.wbase + min(o0, P.OC - 1u) * P.rowWords;
  let rb1 = P.wbase + min(o0 + 1u, P.OC - 1u) * P.rowWords;
  let xr = n * P.IC;
  let nq = P.IC / 4u;
  var s = vec2f(0.0);
  for (var q = j; q < nq; q += SGW) {
    let x = cv(xin(xr, 4u * q));
//#if Q
    let bw0 = rb0 + (q / 8u) * WB;
    let bw1 = rb1 + (q / 8u) * WB;
    s += vec2f(f32(dot(x, cv(wquad_q(bw0, q % 8u, wf(bw0))))), f32(dot(x, cv(wquad_q(bw1, q % 8u, wf(bw1))))));
//#else
    s += vec2f(f32(dot(x, wquad(rb0, 4u * q))), f32(dot(x, wquad(rb1, 4u * q))));
//#endif
  }
  let t = subgroupAdd(s);
//#if XN
  let rn = rnorm(subgroupAdd(ssq)); // in uniform control flow
//#endif
  if (j < 2u && o0 + j < P.OC) {
    var v = t[j];
//#if XN
    v *= rn;
//#endif
    if (P.hasBias != 0u) { v += bias[o0 + j]; }
//#if LORA
    v += lora_dot(n, o0 + j);
//#endif
//#if ACC
    out[n * P.OC + o0 + j] += v;
//#else
    out[n * P.OC + o0 + j] = v;
//#endif
  }
}
//#endif
//#if R8
// ---------------------------------------------------------------------------------------------
// Variant rt1x8 (R8; a matvec for SwiftShader's decode, forward only, V4 only: its backward is
// rt1x4's). One thread owns 8 output columns o0..o0+7 of row n = wg.y and walks their 8 weight rows
// side by side, loading each activation quad once for all 8 (rt1x4: once per 4). On SwiftShader a
// storage load is a per-lane gather whether or not the lanes share its address, so the activation
// loads cost as much as the weights': 9 loads per 8 weight quads instead of 5 per 4. The 8 sums are
// named registers (a private array indexed in a loop is memory there). Columns past OC are
// clamped on load and not stored.
// grid: (ceil(OC/(8·WX)), N) workgroups of WX
fn put8(n: u32, o: u32, s: vec4f) {
  if (o >= P.OC) { return; }
  var v = s.x + s.y + s.z + s.w;
  if (P.hasBias != 0u) { v += bias[o]; }
//#if ACC
  out[n * P.OC + o] += v;
//#else
  out[n * P.OC + o] = v;
//#endif
}

@compute @workgroup_size(WX)
fn linear_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let o0 = gid.x * 8u;
  let n = wg.y;
  if (o0 >= P.OC) { return; }
  let last = P.OC - 1u;
  let rw = P.rowWords;
  let r0 = P.wbase + min(o0, last) * rw;      let r1 = P.wbase + min(o0 + 1u, last) * rw;
  let r2 = P.wbase + min(o0 + 2u, last) * rw; let r3 = P.wbase + min(o0 + 3u, last) * rw;
  let r4 = P.wbase + min(o0 + 4u, last) * rw; let r5 = P.wbase + min(o0 + 5u, last) * rw;
  let r6 = P.wbase + min(o0 + 6u, last) * rw; let r7 = P.wbase + min(o0 + 7u, last) * rw;
  let xr = n * P.IC;
  var s0 = vec4f(0.0); var s1 = vec4f(0.0); var s2 = vec4f(0.0); var s3 = vec4f(0.0);
  var s4 = vec4f(0.0); var s5 = vec4f(0.0); var s6 = vec4f(0.0); var s7 = vec4f(0.0);
//#if Q
  for (var b = 0u; b * 32u < P.IC; b++) {
    let nq = min(8u, (P.IC - b * 32u) / 4u); // the last block may be partial (IC % 4 == 0)
    let o = b * WB;
    let b0 = r0 + o; let b1 = r1 + o; let b2 = r2 + o; let b3 = r3 + o;
    let b4 = r4 + o; let b5 = r5 + o; let b6 = r6 + o; let b7 = r7 + o;
    let d0 = wf(b0); let d1 = wf(b1); let d2 = wf(b2); let d3 = wf(b3);
    let d4 = wf(b4); let d5 = wf(b5); let d6 = wf(b6); let d7 = wf(b7);
    for (var t = 0u; t < nq; t++) {
      let x = cv(xin(xr, b * 32u + 4u * t));
      s0 += vec4f(x * cv(wquad_q(b0, t, d0))); s1 += vec4f(x * cv(wquad_q(b1, t, d1)));
      s2 += vec4f(x * cv(wquad_q(b2, t, d2))); s3 += vec4f(x * cv(wquad_q(b3, t, d3)));
      s4 += vec4f(x * cv(wquad_q(b4, t, d4))); s5 += vec4f(x * cv(wquad_q(b5, t, d5)));
      s6 += vec4f(x * cv(wquad_q(b6, t, d6))); s7 += vec4f(x * cv(wquad_q(b7, t, d7)));
    }
  }
//#else
//#if F32
  // quads: row r's quad j is w[r/4 + j] (rowWords = IC, a multiple of 4; wbase too)
  let q0 = r0 >> 2u; let q1 = r1 >> 2u; let q2 = r2 >> 2u; let q3 = r3 >> 2u;
  let q4 = r4 >> 2u; let q5 = r5 >> 2u; let q6 = r6 >> 2u; let q7 = r7 >> 2u;
  for (var j = 0u; j < P.IC / 4u; j++) {
    let x = cv(xin(xr, 4u * j));
    s0 += vec4f(x * cv(bitcast<vec4f>(w[q0 + j]))); s1 += vec4f(x * cv(bitcast<vec4f>(w[q1 + j])));
    s2 += vec4f(x * cv(bitcast<vec4f>(w[q2 + j]))); s3 += vec4f(x * cv(bitcast<vec4f>(w[q3 + j])));
    s4 += vec4f(x * cv(bitcast<vec4f>(w[q4 + j]))); s5 += vec4f(x * cv(bitcast<vec4f>(w[q5 + j])));
    s6 += vec4f(x * cv(bitcast<vec4f>(w[q6 + j]))); s7 += vec4f(x * cv(bitcast<vec4f>(w[q7 + j])));
  }
//#else
  for (var k = 0u; k < P.IC; k += 4u) {
    let x = cv(xin(xr, k));
    s0 += vec4f(x * wquad(r0, k)); s1 += vec4f(x * wquad(r1, k));
    s2 += vec4f(x * wquad(r2, k)); s3 += vec4f(x * wquad(r3, k));
    s4 += vec4f(x * wquad(r4, k)); s5 += vec4f(x * wquad(r5, k));
    s6 += vec4f(x * wquad(r6, k)); s7 += vec4f(x * wquad(r7, k));
  }
//#endif
//#endif
//#if XN
  let rn = rnorm(ssq);
  s0 *= rn; s1 *= rn; s2 *= rn; s3 *= rn; s4 *= rn; s5 *= rn; s6 *= rn; s7 *= rn;
//#endif
//#if LORA
  // the adapter's output, out += P.ls·h·Bᵀ: R/4 more quad steps on the same sums (B rows clamped as W's)
  let rq = P.lr / 4u;
  let hb = n * rq;
  let c0 = min(o0, last) * rq;      let c1 = min(o0 + 1u, last) * rq;
  let c2 = min(o0 + 2u, last) * rq; let c3 = min(o0 + 3u, last) * rq;
  let c4 = min(o0 + 4u, last) * rq; let c5 = min(o0 + 5u, last) * rq;
  let c6 = min(o0 + 6u, last) * rq; let c7 = min(o0 + 7u, last) * rq;
  for (var j = 0u; j < rq; j++) {
    let hq = P.ls * rlh[hb + j];
    s0 += hq * rlb[c0 + j]; s1 += hq * rlb[c1 + j]; s2 += hq * rlb[c2 + j]; s3 += hq * rlb[c3 + j];
    s4 += hq * rlb[c4 + j]; s5 += hq * rlb[c5 + j]; s6 += hq * rlb[c6 + j]; s7 += hq * rlb[c7 + j];
  }
//#endif
  put8(n, o0, s0); put8(n, o0 + 1u, s1); put8(n, o0 + 2u, s2); put8(n, o0 + 3u, s3);
  put8(n, o0 + 4u, s4); put8(n, o0 + 5u, s5); put8(n, o0 + 6u, s6); put8(n, o0 + 7u, s7);
}
//#endif
