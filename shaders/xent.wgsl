// Masked next-token cross-entropy fused with the lm_head matmul, in vocab chunks: the (N, V)
// logits are never materialised. The launcher (src/ops/xent.ts) computes each chunk's logits
// (N, len) = inp (N,C) · W[r0 : r0+len]ᵀ with linear_forward into a cached scratch, then runs:
// Legend: N rows (B*T), C hidden, V vocab, len = rows of W in this chunk (≤ chunk), r0 = first row.
//
// xent_update (one workgroup per row n): online merge of the chunk into the running per-row state
//   (N) {max, sum exp(x − max), argmax (first index on ties), target logit}. flags bit 0 = first
//   chunk (state is initialised, not read), bit 1 = last chunk (finalize instead of storing state):
//   lse[n] = max + log(sumexp); losses[n] = lse − logit[target]; correct[n] = 1.0 if argmax = target;
//   losses and correct are 0 for an ignored target (0xFFFFFFFF); lse is written for every row.
// xent_dlogits (elementwise over N·len; xent_dlogits4 by quads when len % 4 = 0): logits (N, len) turned in place into
//   dlogits = (exp(logit − lse[n]) − onehot(target)) · dloss[n]   (0 for an ignored target);
//   the launcher then runs linear_backward(dinp +=, dlogits, W[r0 : r0+len]).
//
// The gradient inside the forward (flags bit 2, GRAD: training with more than one chunk), so the
// backward recomputes no chunk: alongside the running (max m, sum s) the launcher accumulates
//   Gacc (N,C) = Σ_chunks exp(logits − m)·W_chunk, rescaled by exp(m_old − m_new) when m grows
// (online softmax, as flash attention accumulates its output), and the backward finishes
//   dinp += dloss·(Gacc / s − W[target])   (0 for an ignored target).
// xent_update (GRAD) also writes ga[n] = (exp(m_old − m_new) (0 on the first chunk), m_new, s_new, 0);
// xent_gscale: Gacc[n, :] ·= ga[n].x (set to 0 on the first chunk);
// xent_probs (xent_probs4 by quads): logits turned in place into exp(logit − ga[n].y) (0 for an
//   ignored target), then linear_backward(Gacc +=, probs, W[r0 : r0+len]);
// xent_finish: dinp[n, :] += dloss[n]·(Gacc[n, :] / ga[n].z − wt[n, :]), wt = W[target] rows gathered
//   by embedding_forward (a zero row for an ignored target, whose dinp row is left as it is).

// Template (src/ops/xent.ts keeps lines by flag): SG — where subgroups have one fixed size S —
// makes xent_update's workgroup one subgroup (WG = S, an override constant) reducing with
// subgroupMax / subgroupAdd / subgroupMin instead of a barrier tree (on SwiftShader the tree's nine
// barriers made xent_update 13% of a tinystories-656k training step).
//#if SG
enable subgroups;

override WG: u32 = 8u;
//#else
const WG: u32 = 256u;
//#endif
const IGNORE: u32 = 0xFFFFFFFFu;
const NEG: f32 = -3.4028234e38; // finite "−inf": keeps exp(a − b) free of inf − inf

struct UpdateParams { N: u32, len: u32, r0: u32, flags: u32 }

// Running state of one row (16 bytes).
struct RowState { m: f32, s: f32, arg: u32, tgt: f32 }

@group(0) @binding(0) var<uniform> U: UpdateParams;
@group(0) @binding(1) var<storage, read_write> state: array<RowState>; // (N)
@group(0) @binding(2) var<storage, read_write> losses: array<f32>;     // (N)
@group(0) @binding(3) var<storage, read_write> lse_out: array<f32>;    // (N)
@group(0) @binding(4) var<storage, read_write> correct: array<f32>;    // (N) 1.0 / 0.0
@group(0) @binding(5) var<storage, read> logits: array<f32>;           // (N, len)
@group(0) @binding(6) var<storage, read> targets: array<u32>;          // (N)
@group(0) @binding(7) var<storage, read_write> ga: array<vec4f>;       // (N) GRAD: (alpha, m, s, 0)

//#if !SG
var<workgroup> red_m: array<f32, 256>;
var<workgroup> red_s: array<f32, 256>;
var<workgroup> red_i: array<u32, 256>;
//#endif

@compute @workgroup_size(WG)
fn xent_update(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u,
               @builtin(num_workgroups) nwg: vec3u) {
  let lid = lid3.x;
  let n = wid.x + wid.y * nwg.x; // uniform across the workgroup
  if (n >= U.N) { return; }
  let base = n * U.len;

  // Per-invocation online max / sum-exp / argmax over j = lid, lid + 256, ... (increasing j,
  // strict > keeps the first index of a tie).
  var m = NEG;
  var s = 0.0;
  var a = IGNORE;
  for (var j = lid; j < U.len; j += WG) {
    let x = logits[base + j];
    if (x > m) {
      s = s * exp(m - x) + 1.0;
      m = x;
      a = j;
    } else {
      s += exp(x - m);
    }
  }
//#if SG
  // the row's max over the lanes; each lane's sum rescaled to it; the first index among the lanes
  // holding the max (each lane's own index is its first)
  let m0 = subgroupMax(m);
  let s0 = subgroupAdd(s * exp(m - m0));
  let i0 = subgroupMin(select(IGNORE, a, m == m0));
//#else
  red_m[lid] = m;
  red_s[lid] = s;
  red_i[lid] = a;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k >> 1u) {
    if (lid < k) {
      let ma = red_m[lid];
      let mb = red_m[lid + k];
      let ia = red_i[lid];
      let ib = red_i[lid + k];
      let mm = max(ma, mb);
      red_s[lid] = red_s[lid] * exp(ma - mm) + red_s[lid + k] * exp(mb - mm);
      red_m[lid] = mm;
      if (mb > ma || (mb == ma && ib < ia)) { red_i[lid] = ib; }
    }
    workgroupBarrier();
  }
  let m0 = red_m[0];
  let s0 = red_s[0];
  let i0 = red_i[0];
//#endif

  if (lid == 0u) {
    var M = m0;
    var S = s0;
    var A = U.r0 + i0;
    var T = 0.0;
    if ((U.flags & 1u) == 0u) {
      // merge with the earlier chunks (all their indices are smaller: they win ties)
      let st = state[n];
      let mm = max(st.m, M);
      S = st.s * exp(st.m - mm) + S * exp(M - mm);
      if (!(M > st.m)) { A = st.arg; }
      if ((U.flags & 4u) != 0u) { ga[n] = vec4f(exp(st.m - mm), mm, S, 0.0); }
      M = mm;
      T = st.tgt;
    } else if ((U.flags & 4u) != 0u) {
      ga[n] = vec4f(0.0, M, S, 0.0);
    }
    let t = targets[n];
    if (t != IGNORE && t >= U.r0 && t - U.r0 < U.len) { T = logits[base + (t - U.r0)]; }
    if ((U.flags & 2u) != 0u) {
      let l = M + log(S);
      lse_out[n] = l;
      if (t == IGNORE) {
        losses[n] = 0.0;
        correct[n] = 0.0;
      } else {
        losses[n] = l - T;
        correct[n] = select(0.0, 1.0, A == t);
      }
    } else {
      state[n] = RowState(M, S, A, T);
    }
  }
}

// ---- backward: dlogits in place ------------------------------------------------------------
struct GradParams { N: u32, len: u32, r0: u32, _p0: u32 }

@group(0) @binding(0) var<uniform> G: GradParams;
@group(0) @binding(1) var<storage, read_write> dlogits: array<f32>; // (N, len) logits in, dlogits out
@group(0) @binding(2) var<storage, read> targets_b: array<u32>;     // (N)
@group(0) @binding(3) var<storage, read> lse_b: array<f32>;         // (N)
@group(0) @binding(4) var<storage, read> dloss: array<f32>;         // (N)

const DWG: u32 = 256u; // xent_dlogits' workgroup (elementwise; not the reduction's WG)

@compute @workgroup_size(DWG)
fn xent_dlogits(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * DWG;
  if (i >= G.N * G.len) { return; }
  let n = i / G.len;
  let j = i - n * G.len;
  let t = targets_b[n];
  if (t == IGNORE) {
    dlogits[i] = 0.0;
    return;
  }
  var p = exp(dlogits[i] - lse_b[n]);
  if (G.r0 + j == t) { p -= 1.0; }
  dlogits[i] = p * dloss[n];
}

// xent_dlogits4: xent_dlogits four elements of one row per invocation (len % 4 == 0): one vec4 of
// logits and one read of the row's target / lse / dloss per quad instead of per element.
@group(0) @binding(1) var<storage, read_write> dlogits4: array<vec4f>; // (N, len/4)

@compute @workgroup_size(DWG)
fn xent_dlogits4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * DWG;   // quad index
  let q = G.len / 4u;                     // quads per row
  if (i >= G.N * q) { return; }
  let n = i / q;
  let j = (i - n * q) * 4u;               // first column of the quad
  let t = targets_b[n];
  if (t == IGNORE) {
    dlogits4[i] = vec4f(0.0);
    return;
  }
  var p = exp(dlogits4[i] - lse_b[n]);
  let c = vec4u(G.r0 + j) + vec4u(0u, 1u, 2u, 3u);
  p -= select(vec4f(0.0), vec4f(1.0), c == vec4u(t));
  dlogits4[i] = p * dloss[n];
}

// ---- the gradient inside the forward (GRAD) ------------------------------------------------------
// bindings: gscale 1 gacc, 2 ga_b; probs 1 dlogits / dlogits4, 2 targets_b, 3 ga_b; finish 1 dinp_f,
// 2 targets_b, 3 ga_b, 4 dloss, 5 gacc_r, 6 wt. G.len = C for gscale / finish; G._p0 = 1: first chunk.
@group(0) @binding(1) var<storage, read_write> gacc: array<f32>; // (N, C)
@group(0) @binding(2) var<storage, read> ga_s: array<vec4f>;     // (N)
@group(0) @binding(3) var<storage, read> ga_b: array<vec4f>;     // (N)
@group(0) @binding(1) var<storage, read_write> dinp_f: array<f32>; // (N, C)
@group(0) @binding(5) var<storage, read> gacc_r: array<f32>;     // (N, C)
@group(0) @binding(6) var<storage, read> wt: array<f32>;         // (N, C) W[target] rows

// Gacc (N, C) rescaled to the new running max (zeroed on the first chunk)
@compute @workgroup_size(DWG)
fn xent_gscale(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * DWG;
  if (i >= G.N * G.len) { return; }
  if (G._p0 == 1u) {
    gacc[i] = 0.0;
  } else {
    gacc[i] *= ga_s[i / G.len].x;
  }
}

@compute @workgroup_size(DWG)
fn xent_probs(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * DWG;
  if (i >= G.N * G.len) { return; }
  let n = i / G.len;
  dlogits[i] = select(exp(dlogits[i] - ga_b[n].y), 0.0, targets_b[n] == IGNORE);
}

// xent_probs by quads of a row (len % 4 == 0)
@compute @workgroup_size(DWG)
fn xent_probs4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * DWG;
  let q = G.len / 4u;
  if (i >= G.N * q) { return; }
  let n = i / q;
  dlogits4[i] = select(exp(dlogits4[i] - vec4f(ga_b[n].y)), vec4f(0.0), targets_b[n] == IGNORE);
}

@compute @workgroup_size(DWG)
fn xent_finish(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * DWG;
  if (i >= G.N * G.len) { return; }
  let n = i / G.len;
  if (targets_b[n] == IGNORE) { return; }
  dinp_f[i] += dloss[n] * (gacc_r[i] / ga_b[n].z - wt[i]);
}
