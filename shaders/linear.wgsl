// Linear layer with frozen weights dequantized in-kernel (f32 / q8 / q4, docs/ENGINE.md formats).
// Legend: N rows (B*T), IC in features, OC out features (a row slice of W starting at wbase).
// linear_forward:  out (N,OC) = inp (N,IC) · W[slice] (OC,IC)ᵀ (+ bias (OC))        — overwrites
// linear_backward: dinp (N,IC) += dout (N,OC) · W[slice] (OC,IC)                     — adds
// W is bound as raw u32 words (f32 bits for FMT 0). Row o of the slice starts at word
// wbase + o·rowWords (rowWords = IC for f32, nb·9 for q8, nb·5 for q4, nb = ceil(IC/32)).
// Strategy: register tiling, no shared memory (fastest on the CPU Vulkan drivers): each thread
// owns a 4×4 output tile, a workgroup of 8×8 threads a 32×32 tile. Out-of-range rows/cols are
// clamped on load and skipped on store; the IC tail is zero-masked on the activation side.
// Quantized weights are read 4 at a time (a q8 word = 4 values, half a q4 word = 4 values),
// scaled by the block's f32 scale d (one load per block per row in the forward).

override FMT: u32 = 0u; // 0 = f32, 1 = q8, 2 = q4

struct Params { N: u32, IC: u32, OC: u32, wbase: u32, rowWords: u32, hasBias: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> P: Params;

// shared by both entry points
@group(0) @binding(3) var<storage, read> w: array<u32>;

// forward bindings
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

fn words_per_block() -> u32 { return select(5u, 9u, FMT == 1u); }

// q8 word → 4 signed values (element j in bits 8j..8j+7)
fn unpack_q8(word: u32) -> vec4f {
  let v = bitcast<i32>(word);
  return vec4f(f32((v << 24u) >> 24u), f32((v << 16u) >> 24u), f32((v << 8u) >> 24u), f32(v >> 24u));
}
// q4 word half h (elements 4h..4h+3 of the word) → 4 values c − 8
fn unpack_q4(word: u32, h: u32) -> vec4f {
  let v = word >> (16u * h);
  return vec4f(f32(v & 15u), f32((v >> 4u) & 15u), f32((v >> 8u) & 15u), f32((v >> 12u) & 15u)) - vec4f(8.0);
}
// Quantized: 4 dequantized values of quad t (0..7) of the block starting at word bw, scale d.
fn wquad_q(bw: u32, t: u32, d: f32) -> vec4f {
  if (FMT == 1u) { return d * unpack_q8(w[bw + 1u + t]); }
  return d * unpack_q4(w[bw + 1u + (t >> 1u)], t & 1u);
}
fn wf(i: u32) -> f32 { return bitcast<f32>(w[i]); }

var<private> acc: array<vec4f, 4>;  // forward: acc[i][j] = out[n0+i][o0+j]; backward: acc[i][e] = dinp[n0+i][c0+e]
var<private> xrow: array<u32, 4>;   // forward: word index of inp row n0+i (clamped)
var<private> wrow: array<u32, 4>;   // forward: word index of W row o0+j (clamped)

// acc += X[:, k..k+3] · [w0 w1 w2 w3] (each wj = W[o0+j][k..k+3]); no bounds checks
fn step4(k: u32, w0: vec4f, w1: vec4f, w2: vec4f, w3: vec4f) {
  for (var i = 0u; i < 4u; i++) {
    let b = xrow[i] + k;
    let x = vec4f(inp[b], inp[b + 1u], inp[b + 2u], inp[b + 3u]);
    acc[i] += vec4f(dot(x, w0), dot(x, w1), dot(x, w2), dot(x, w3));
  }
}
// same for the last partial quad/block: columns ≥ IC contribute 0
fn step4_tail(k: u32, w0: vec4f, w1: vec4f, w2: vec4f, w3: vec4f) {
  let last = P.IC - 1u;
  let m = vec4f(vec4<bool>(k < P.IC, k + 1u < P.IC, k + 2u < P.IC, k + 3u < P.IC));
  for (var i = 0u; i < 4u; i++) {
    let b = xrow[i];
    let x = m * vec4f(inp[b + min(k, last)], inp[b + min(k + 1u, last)], inp[b + min(k + 2u, last)], inp[b + min(k + 3u, last)]);
    acc[i] += vec4f(dot(x, w0), dot(x, w1), dot(x, w2), dot(x, w3));
  }
}
fn wquad_f32_tail(rb: u32, k: u32) -> vec4f {
  let last = P.IC - 1u;
  return vec4f(wf(rb + min(k, last)), wf(rb + min(k + 1u, last)), wf(rb + min(k + 2u, last)), wf(rb + min(k + 3u, last)));
}

// grid: (ceil(OC/32), ceil(N/32)) workgroups of 8×8
@compute @workgroup_size(8, 8)
fn linear_forward(@builtin(global_invocation_id) gid: vec3u) {
  let o0 = gid.x * 4u;
  let n0 = gid.y * 4u;
  if (o0 >= P.OC || n0 >= P.N) { return; }
  let IC = P.IC;
  for (var i = 0u; i < 4u; i++) {
    xrow[i] = min(n0 + i, P.N - 1u) * IC;
    wrow[i] = P.wbase + min(o0 + i, P.OC - 1u) * P.rowWords;
    acc[i] = vec4f(0.0);
  }
  if (FMT == 0u) {
    let k4 = IC & ~3u;
    for (var k = 0u; k < k4; k += 4u) {
      step4(k,
        vec4f(wf(wrow[0] + k), wf(wrow[0] + k + 1u), wf(wrow[0] + k + 2u), wf(wrow[0] + k + 3u)),
        vec4f(wf(wrow[1] + k), wf(wrow[1] + k + 1u), wf(wrow[1] + k + 2u), wf(wrow[1] + k + 3u)),
        vec4f(wf(wrow[2] + k), wf(wrow[2] + k + 1u), wf(wrow[2] + k + 2u), wf(wrow[2] + k + 3u)),
        vec4f(wf(wrow[3] + k), wf(wrow[3] + k + 1u), wf(wrow[3] + k + 2u), wf(wrow[3] + k + 3u)));
    }
    if (k4 < IC) {
      step4_tail(k4, wquad_f32_tail(wrow[0], k4), wquad_f32_tail(wrow[1], k4), wquad_f32_tail(wrow[2], k4), wquad_f32_tail(wrow[3], k4));
    }
  } else {
    let WB = words_per_block();
    let nbFull = IC / 32u;
    for (var b = 0u; b < nbFull; b++) {
      let bw0 = wrow[0] + b * WB; let bw1 = wrow[1] + b * WB;
      let bw2 = wrow[2] + b * WB; let bw3 = wrow[3] + b * WB;
      let d0 = wf(bw0); let d1 = wf(bw1); let d2 = wf(bw2); let d3 = wf(bw3);
      for (var t = 0u; t < 8u; t++) {
        step4(b * 32u + 4u * t, wquad_q(bw0, t, d0), wquad_q(bw1, t, d1), wquad_q(bw2, t, d2), wquad_q(bw3, t, d3));
      }
    }
    if (nbFull * 32u < IC) {
      let b = nbFull;
      let bw0 = wrow[0] + b * WB; let bw1 = wrow[1] + b * WB;
      let bw2 = wrow[2] + b * WB; let bw3 = wrow[3] + b * WB;
      let d0 = wf(bw0); let d1 = wf(bw1); let d2 = wf(bw2); let d3 = wf(bw3);
      let nq = (IC - b * 32u + 3u) / 4u;
      for (var t = 0u; t < nq; t++) {
        step4_tail(b * 32u + 4u * t, wquad_q(bw0, t, d0), wquad_q(bw1, t, d1), wquad_q(bw2, t, d2), wquad_q(bw3, t, d3));
      }
    }
  }
  for (var i = 0u; i < 4u; i++) {
    let n = n0 + i;
    if (n >= P.N) { break; }
    for (var j = 0u; j < 4u; j++) {
      let o = o0 + j;
      if (o >= P.OC) { break; }
      var v = acc[i][j];
      if (P.hasBias != 0u) { v += bias[o]; }
      out[n * P.OC + o] = v;
    }
  }
}

// backward bindings
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;

// grid: (ceil(IC/32), ceil(N/32)) workgroups of 8×8. Thread: dinp[n0..n0+3][c0..c0+3] += Σ_o dout[n][o]·W[o][c]
@compute @workgroup_size(8, 8)
fn linear_backward(@builtin(global_invocation_id) gid: vec3u) {
  let c0 = gid.x * 4u;
  let n0 = gid.y * 4u;
  if (c0 >= P.IC || n0 >= P.N) { return; }
  let OC = P.OC;
  let d0r = min(n0, P.N - 1u) * OC;
  let d1r = min(n0 + 1u, P.N - 1u) * OC;
  let d2r = min(n0 + 2u, P.N - 1u) * OC;
  let d3r = min(n0 + 3u, P.N - 1u) * OC;
  var a0 = vec4f(0.0); var a1 = vec4f(0.0); var a2 = vec4f(0.0); var a3 = vec4f(0.0);
  if (FMT == 0u) {
    let last = P.IC - 1u;
    let c = vec4u(c0, min(c0 + 1u, last), min(c0 + 2u, last), min(c0 + 3u, last));
    for (var o = 0u; o < OC; o++) {
      let rb = P.wbase + o * P.rowWords;
      let wv = vec4f(wf(rb + c.x), wf(rb + c.y), wf(rb + c.z), wf(rb + c.w));
      a0 += dout[d0r + o] * wv; a1 += dout[d1r + o] * wv;
      a2 += dout[d2r + o] * wv; a3 += dout[d3r + o] * wv;
    }
  } else {
    // the quad c0..c0+3 lies in one block (c0 % 4 == 0); padded columns hold zeros
    let bw = (c0 / 32u) * words_per_block();
    let t = (c0 % 32u) / 4u;
    for (var o = 0u; o < OC; o++) {
      let rb = P.wbase + o * P.rowWords + bw;
      let wv = wquad_q(rb, t, wf(rb));
      a0 += dout[d0r + o] * wv; a1 += dout[d1r + o] * wv;
      a2 += dout[d2r + o] * wv; a3 += dout[d3r + o] * wv;
    }
  }
  acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
  for (var i = 0u; i < 4u; i++) {
    let n = n0 + i;
    if (n >= P.N) { break; }
    for (var e = 0u; e < 4u; e++) {
      let c = c0 + e;
      if (c >= P.IC) { break; }
      dinp[n * P.IC + c] += acc[i][e];
    }
  }
}
