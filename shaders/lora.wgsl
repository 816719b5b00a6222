// LoRA adapter matmuls with counter-based dropout on the adapter input.
// Legend: N rows (B*T), IC in features, OC out features, R rank.
//   forward:  h (N,R) = dropout(inp (N,IC))·A (R,IC)ᵀ;  out (N,OC) += scale·h·B (OC,R)ᵀ
//   backward: dh (N,R) = scale·dout·B;  dB (OC,R) += scale·doutᵀ·h;  dA (R,IC) += dhᵀ·dropout(inp);
//             dinp (N,IC) += dropout'(dh·A)
// All six products are one generic kernel, lora_mm: C (M,Nc) (+)= alpha·Σ_k X[m,k]·Y[n,k] with
// arbitrary element strides (so transposes are free) and the dropout mask applied to X, to Y or
// to C. Dropout element idx = n·IC + i is always the element's index in its (N,IC) buffer:
// kept when pcg(pcg(idx) ^ seed·0x9E3779B9) ≥ thr (thr = floor(p·2^32)), kept values × 1/(1−p)
// (shaders/dropout_hash.wgsl). The TS twin is dropout_keep in src/ref/lora.ts (identical integer ops).
// Strategy: register tiling like linear: a thread owns a 4×4 tile of C, a workgroup 8×8 threads
// (32×32); the reductions over N (dA, dB) are a plain loop over k = N per thread. lora_mm_sk splits
// long K across a workgroup instead (GPUs: the products with a rank-sized side).
// Template (src/ops/lora.ts keeps lines by flag, like linear): SG adds lora_mm_sg (end of file),
// the same product by one W-lane subgroup per 2W×(W·TN) tile of C with X values shared by
// subgroupBroadcast — run where subgroups are exactly W = 8 wide, or 4 wide with SG4 (override
// SGW = W) — and its forms lora_mm_sg4 / lora_mm_sg4x for products whose X (and Y) are contiguous
// along k: quads instead of scalars.
//#if SG
enable subgroups;
//#endif

override MASK: u32 = 0u; // 0 none, 1 on X loads, 2 on Y loads, 3 on the C update
override ACC: u32 = 0u;  // 0: C = alpha·XYᵀ, 1: C += alpha·XYᵀ

struct Params {
  M: u32, Nc: u32, K: u32, cs: u32,      // C (M,Nc), row stride cs
  xs0: u32, xs1: u32, ys0: u32, ys1: u32, // X[m,k] at m·xs0 + k·xs1; Y[n,k] at n·ys0 + k·ys1
  alpha: f32, thr: u32, seed: u32, keep_scale: f32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> C: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read> Y: array<f32>;

// (pcg, dropout_hash: shaders/dropout_hash.wgsl, appended by the launcher)
// multiplier of element idx: 0 (dropped) or 1/(1−p)
fn drop(idx: u32) -> f32 { return select(0.0, P.keep_scale, dropout_hash(P.seed, idx) >= P.thr); }

fn ldx(i: u32) -> f32 { if (MASK == 1u) { return X[i] * drop(i); } return X[i]; }
fn ldy(i: u32) -> f32 { if (MASK == 2u) { return Y[i] * drop(i); } return Y[i]; }

// The 4×4 tile of Σ_k X[xb[i] + k·xs1]·Y[yb[j] + k·ys1] over k = k0, k0 + step, … < K (row i of
// the result holds the 4 columns j), dropout on X or Y loads as MASK says; lora_mm walks all of K,
// lora_mm_sk one slice of it.
fn tile_sum(xb: vec4u, yb: vec4u, k0: u32, step: u32) -> array<vec4f, 4> {
  var a0 = vec4f(0.0); var a1 = vec4f(0.0); var a2 = vec4f(0.0); var a3 = vec4f(0.0);
  if (MASK != 0u && MASK != 3u && P.thr != 0u) {
    for (var k = k0; k < P.K; k += step) {
      let xo = k * P.xs1; let yo = k * P.ys1;
      let y = vec4f(ldy(yb.x + yo), ldy(yb.y + yo), ldy(yb.z + yo), ldy(yb.w + yo));
      a0 += ldx(xb.x + xo) * y; a1 += ldx(xb.y + xo) * y;
      a2 += ldx(xb.z + xo) * y; a3 += ldx(xb.w + xo) * y;
    }
  } else {
    for (var k = k0; k < P.K; k += step) {
      let xo = k * P.xs1; let yo = k * P.ys1;
      let y = vec4f(Y[yb.x + yo], Y[yb.y + yo], Y[yb.z + yo], Y[yb.w + yo]);
      a0 += X[xb.x + xo] * y; a1 += X[xb.y + xo] * y;
      a2 += X[xb.z + xo] * y; a3 += X[xb.w + xo] * y;
    }
  }
  return array<vec4f, 4>(a0, a1, a2, a3);
}

// grid: (ceil(Nc/32), ceil(M/32)) workgroups of 8×8
@compute @workgroup_size(8, 8)
fn lora_mm(@builtin(global_invocation_id) gid: vec3u) {
  let n0 = gid.x * 4u;
  let m0 = gid.y * 4u;
  if (n0 >= P.Nc || m0 >= P.M) { return; }
  let xb = vec4u(min(m0, P.M - 1u), min(m0 + 1u, P.M - 1u), min(m0 + 2u, P.M - 1u), min(m0 + 3u, P.M - 1u)) * P.xs0;
  let yb = vec4u(min(n0, P.Nc - 1u), min(n0 + 1u, P.Nc - 1u), min(n0 + 2u, P.Nc - 1u), min(n0 + 3u, P.Nc - 1u)) * P.ys0;
  let masked = MASK != 0u && P.thr != 0u;
  var acc = tile_sum(xb, yb, 0u, 1u);
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + i;
    if (m >= P.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + j;
      if (n >= P.Nc) { break; }
      let ci = m * P.cs + n;
      var v = P.alpha * acc[i][j];
      if (MASK == 3u && masked) { v *= drop(ci); }
      if (ACC == 1u) { C[ci] += v; } else { C[ci] = v; }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// lora_mm_sk: the same product split along K inside a workgroup, for the tall-skinny products
// (h = x·Aᵀ, dh = dout·B: C is N×R with K = IC or OC; dB, dA: C is OC×R or R×IC with K = N). On a
// GPU, lora_mm gives those a few thousand threads each walking all of K (latency-bound). Here a
// workgroup of 256 threads = SKM×SKN groups (each a 4×4 tile of C, as in lora_mm) × S = 256/(SKM·SKN)
// slices of K; slice s takes k = s, s+S, … (adjacent slices read adjacent k); the S partial tiles
// are summed through workgroup memory. Tile of C per workgroup: (4·SKM) × (4·SKN).
// grid: (ceil(Nc/(4·SKN)), ceil(M/(4·SKM)))
override SKM: u32 = 2u;
override SKN: u32 = 4u;
// 1: slices are the fast thread index (adjacent threads read adjacent k: coalesced where X and Y
// are contiguous along k); 0: groups are (adjacent threads read adjacent rows / columns)
override SKF: u32 = 0u;
var<workgroup> sk_part: array<vec4f, 1024>; // [thread][row of its 4×4 tile] → 4 columns (16 KiB)

// the thread holding slice t of group g
fn sk_thread(g: u32, t: u32, G: u32, S: u32) -> u32 { return select(t * G + g, g * S + t, SKF == 1u); }

@compute @workgroup_size(256)
fn lora_mm_sk(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let G = SKM * SKN;
  let S = 256u / G;
  let g = select(li % G, li / S, SKF == 1u);
  let s = select(li / G, li % S, SKF == 1u);
  let m0 = (wg.y * SKM + g / SKN) * 4u;
  let n0 = (wg.x * SKN + g % SKN) * 4u;
  // clamped rows / columns: every thread loads in range and reaches the barrier
  let xb = vec4u(min(m0, P.M - 1u), min(m0 + 1u, P.M - 1u), min(m0 + 2u, P.M - 1u), min(m0 + 3u, P.M - 1u)) * P.xs0;
  let yb = vec4u(min(n0, P.Nc - 1u), min(n0 + 1u, P.Nc - 1u), min(n0 + 2u, P.Nc - 1u), min(n0 + 3u, P.Nc - 1u)) * P.ys0;
  let masked = MASK != 0u && P.thr != 0u;
  let a = tile_sum(xb, yb, s, S);
  sk_part[li * 4u] = a[0]; sk_part[li * 4u + 1u] = a[1];
  sk_part[li * 4u + 2u] = a[2]; sk_part[li * 4u + 3u] = a[3];
  workgroupBarrier();
  // G·16 outputs per workgroup; output o = (group go, row r, column c) sums its S partials
  for (var o = li; o < G * 16u; o += 256u) {
    let go = o / 16u; let r = (o / 4u) % 4u; let c = o % 4u;
    var v = 0.0;
    for (var t = 0u; t < S; t++) { v += sk_part[sk_thread(go, t, G, S) * 4u + r][c]; }
    let m = (wg.y * SKM + go / SKN) * 4u + r;
    let n = (wg.x * SKN + go % SKN) * 4u + c;
    if (m < P.M && n < P.Nc) {
      let ci = m * P.cs + n;
      v *= P.alpha;
      if (MASK == 3u && masked) { v *= drop(ci); }
      if (ACC == 1u) { C[ci] += v; } else { C[ci] = v; }
    }
  }
}

//#if SG
// ---------------------------------------------------------------------------------------------
// lora_mm_sg: workgroup = one subgroup of W = SGW lanes; C tile rows m0..m0+2W-1, columns
// n0+j+Wc (c < TN) for lane j. Per k a lane loads X[m0+j, k], X[m0+W+j, k] and its TN values
// Y[n, k] (dropout applied by element index as in lora_mm); the 2W X values every lane needs come
// by subgroupBroadcast (a register shuffle on the CPU drivers, where each load is a loop over
// lanes or a gather). Rows 2W..15 of sacc are unused with W = 4.
override TN: u32 = 4u; // columns per lane (1, 2 or 4)
override SGW: u32 = 8u; // the subgroup width: 8, or 4 with SG4
var<private> sacc: array<vec4f, 16>; // sacc[r][c] = Σ_k X[m0+r, k]·Y[n0+j+Wc, k]

fn sg_row(r: u32, x: f32, y: vec4f) { sacc[r] += x * y; }
//#if SG4
fn sg_step(xa: f32, xb: f32, y: vec4f) {
  sg_row(0u, subgroupBroadcast(xa, 0u), y); sg_row(1u, subgroupBroadcast(xa, 1u), y);
  sg_row(2u, subgroupBroadcast(xa, 2u), y); sg_row(3u, subgroupBroadcast(xa, 3u), y);
  sg_row(4u, subgroupBroadcast(xb, 0u), y); sg_row(5u, subgroupBroadcast(xb, 1u), y);
  sg_row(6u, subgroupBroadcast(xb, 2u), y); sg_row(7u, subgroupBroadcast(xb, 3u), y);
}
//#else
fn sg_step(xa: f32, xb: f32, y: vec4f) {
  sg_row(0u, subgroupBroadcast(xa, 0u), y); sg_row(1u, subgroupBroadcast(xa, 1u), y);
  sg_row(2u, subgroupBroadcast(xa, 2u), y); sg_row(3u, subgroupBroadcast(xa, 3u), y);
  sg_row(4u, subgroupBroadcast(xa, 4u), y); sg_row(5u, subgroupBroadcast(xa, 5u), y);
  sg_row(6u, subgroupBroadcast(xa, 6u), y); sg_row(7u, subgroupBroadcast(xa, 7u), y);
  sg_row(8u, subgroupBroadcast(xb, 0u), y); sg_row(9u, subgroupBroadcast(xb, 1u), y);
  sg_row(10u, subgroupBroadcast(xb, 2u), y); sg_row(11u, subgroupBroadcast(xb, 3u), y);
  sg_row(12u, subgroupBroadcast(xb, 4u), y); sg_row(13u, subgroupBroadcast(xb, 5u), y);
  sg_row(14u, subgroupBroadcast(xb, 6u), y); sg_row(15u, subgroupBroadcast(xb, 7u), y);
}
//#endif
// store row r (columns nj + Wc), called with constant r so sacc stays in registers
fn sg_store(r: u32, m0: u32, nj: u32, masked: bool) {
  let m = m0 + r;
  if (m >= P.M) { return; }
  for (var c = 0u; c < TN; c++) {
    let n = nj + SGW * c;
    if (n < P.Nc) {
      let ci = m * P.cs + n;
      var v = P.alpha * sacc[r][c];
      if (MASK == 3u && masked) { v *= drop(ci); }
      if (ACC == 1u) { C[ci] += v; } else { C[ci] = v; }
    }
  }
}

// the tile of workgroup wg for lane j: rows m0 = 2W·wg.y (X offsets of rows m0+j, m0+W+j, clamped)
// and columns n0 = W·TN·wg.x (Y offsets of columns n0+j+Wc, c < 4, clamped)
struct SgTile { m0: u32, n0: u32, xa: u32, xb: u32, y: vec4u }
fn sg_tile(wg: vec3u, j: u32) -> SgTile {
  let n0 = wg.x * SGW * TN;
  let m0 = wg.y * 2u * SGW;
  let cols = min(vec4u(n0 + j) + vec4u(0u, 1u, 2u, 3u) * SGW, vec4u(P.Nc - 1u)) * P.ys0;
  return SgTile(m0, n0, min(m0 + j, P.M - 1u) * P.xs0, min(m0 + SGW + j, P.M - 1u) * P.xs0, cols);
}

// grid: (ceil(Nc/(W·TN)), ceil(M/2W)) workgroups of W
@compute @workgroup_size(SGW)
fn lora_mm_sg(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) j: u32) {
  let tl = sg_tile(wg, j);
  let m0 = tl.m0; let n0 = tl.n0; let xa = tl.xa; let xb = tl.xb;
  let y0 = tl.y.x; let y1 = tl.y.y; let y2 = tl.y.z; let y3 = tl.y.w;
  let masked = MASK != 0u && P.thr != 0u;
  for (var k = 0u; k < P.K; k++) {
    let xo = k * P.xs1; let yo = k * P.ys1;
    var y = vec4f(0.0);
    var x0: f32; var x1: f32;
    if (masked && MASK != 3u) {
      x0 = ldx(xa + xo); x1 = ldx(xb + xo);
      y.x = ldy(y0 + yo);
      if (TN > 1u) { y.y = ldy(y1 + yo); }
      if (TN > 2u) { y.z = ldy(y2 + yo); y.w = ldy(y3 + yo); }
    } else {
      x0 = X[xa + xo]; x1 = X[xb + xo];
      y.x = Y[y0 + yo];
      if (TN > 1u) { y.y = Y[y1 + yo]; }
      if (TN > 2u) { y.z = Y[y2 + yo]; y.w = Y[y3 + yo]; }
    }
    sg_step(x0, x1, y);
  }
  sg_store_all(m0, n0 + j, masked);
}

// lora_mm_sg4 / lora_mm_sg4x: lora_mm_sg with X read as quads along k (xs1 = 1; K, xs0 % 4 == 0), so
// a lane loads one quad per 4 reduction steps instead of four values: lora_mm_sg4 reads Y the same way
// (ys1 = 1, ys0 % 4 == 0: h = x·Aᵀ), lora_mm_sg4x reads Y by scalars at stride ys1 (dh = dout·B).
@group(0) @binding(2) var<storage, read> X4: array<vec4f>;
@group(0) @binding(3) var<storage, read> Y4: array<vec4f>;
// 4 consecutive values of X / Y from element i (i % 4 == 0), dropout applied where MASK says
fn ldx4(i: u32, masked: bool) -> vec4f {
  let v = X4[i >> 2u];
  if (MASK == 1u && masked) { return v * vec4f(drop(i), drop(i + 1u), drop(i + 2u), drop(i + 3u)); }
  return v;
}
fn ldy4(i: u32, masked: bool) -> vec4f {
  let v = Y4[i >> 2u];
  if (MASK == 2u && masked) { return v * vec4f(drop(i), drop(i + 1u), drop(i + 2u), drop(i + 3u)); }
  return v;
}
fn ldy4s(i: u32, st: u32, masked: bool) -> vec4f {
  if (MASK == 2u && masked) { return vec4f(ldy(i), ldy(i + st), ldy(i + 2u * st), ldy(i + 3u * st)); }
  return vec4f(Y[i], Y[i + st], Y[i + 2u * st], Y[i + 3u * st]);
}
// the four reduction steps of one quad: x quads of rows j / W+j, y quads of the lane's TN columns
fn sg_step4(xa: vec4f, xb: vec4f, y0: vec4f, y1: vec4f, y2: vec4f, y3: vec4f) {
  sg_step(xa.x, xb.x, vec4f(y0.x, y1.x, y2.x, y3.x));
  sg_step(xa.y, xb.y, vec4f(y0.y, y1.y, y2.y, y3.y));
  sg_step(xa.z, xb.z, vec4f(y0.z, y1.z, y2.z, y3.z));
  sg_step(xa.w, xb.w, vec4f(y0.w, y1.w, y2.w, y3.w));
}
fn sg_store_all(m0: u32, nj: u32, masked: bool) {
  sg_store(0u, m0, nj, masked); sg_store(1u, m0, nj, masked); sg_store(2u, m0, nj, masked); sg_store(3u, m0, nj, masked);
  sg_store(4u, m0, nj, masked); sg_store(5u, m0, nj, masked); sg_store(6u, m0, nj, masked); sg_store(7u, m0, nj, masked);
//#if !SG4
  sg_store(8u, m0, nj, masked); sg_store(9u, m0, nj, masked); sg_store(10u, m0, nj, masked); sg_store(11u, m0, nj, masked);
  sg_store(12u, m0, nj, masked); sg_store(13u, m0, nj, masked); sg_store(14u, m0, nj, masked); sg_store(15u, m0, nj, masked);
//#endif
}

// grid: (ceil(Nc/(W·TN)), ceil(M/2W)) workgroups of W
@compute @workgroup_size(SGW)
fn lora_mm_sg4(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) j: u32) {
  let tl = sg_tile(wg, j);
  let xa = tl.xa; let xb = tl.xb;
  let c0 = tl.y.x; let c1 = tl.y.y; let c2 = tl.y.z; let c3 = tl.y.w;
  let masked = MASK != 0u && P.thr != 0u;
  for (var k = 0u; k < P.K; k += 4u) {
    var y1 = vec4f(0.0); var y2 = vec4f(0.0); var y3 = vec4f(0.0);
    if (TN > 1u) { y1 = ldy4(c1 + k, masked); }
    if (TN > 2u) { y2 = ldy4(c2 + k, masked); y3 = ldy4(c3 + k, masked); }
    sg_step4(ldx4(xa + k, masked), ldx4(xb + k, masked), ldy4(c0 + k, masked), y1, y2, y3);
  }
  sg_store_all(tl.m0, tl.n0 + j, masked);
}

// grid: (ceil(Nc/(W·TN)), ceil(M/2W)) workgroups of W
@compute @workgroup_size(SGW)
fn lora_mm_sg4x(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) j: u32) {
  let tl = sg_tile(wg, j);
  let xa = tl.xa; let xb = tl.xb;
  let c0 = tl.y.x; let c1 = tl.y.y; let c2 = tl.y.z; let c3 = tl.y.w;
  let st = P.ys1;
  let masked = MASK != 0u && P.thr != 0u;
  for (var k = 0u; k < P.K; k += 4u) {
    let yo = k * st;
    var y1 = vec4f(0.0); var y2 = vec4f(0.0); var y3 = vec4f(0.0);
    if (TN > 1u) { y1 = ldy4s(c1 + yo, st, masked); }
    if (TN > 2u) { y2 = ldy4s(c2 + yo, st, masked); y3 = ldy4s(c3 + yo, st, masked); }
    sg_step4(ldx4(xa + k, masked), ldx4(xb + k, masked), ldy4s(c0 + yo, st, masked), y1, y2, y3);
  }
  sg_store_all(tl.m0, tl.n0 + j, masked);
}
//#endif
