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
// xent_dlogits (elementwise over N·len): logits (N, len) turned in place into
//   dlogits = (exp(logit − lse[n]) − onehot(target)) · dloss[n]   (0 for an ignored target);
//   the launcher then runs linear_backward(dinp +=, dlogits, W[r0 : r0+len]).

const WG: u32 = 256u;
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

var<workgroup> red_m: array<f32, 256>;
var<workgroup> red_s: array<f32, 256>;
var<workgroup> red_i: array<u32, 256>;

@compute @workgroup_size(256)
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

  if (lid == 0u) {
    var M = red_m[0];
    var S = red_s[0];
    var A = U.r0 + red_i[0];
    var T = 0.0;
    if ((U.flags & 1u) == 0u) {
      // merge with the earlier chunks (all their indices are smaller: they win ties)
      let st = state[n];
      let mm = max(st.m, M);
      S = st.s * exp(st.m - mm) + S * exp(M - mm);
      if (!(M > st.m)) { A = st.arg; }
      M = mm;
      T = st.tgt;
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

@compute @workgroup_size(256)
fn xent_dlogits(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
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
