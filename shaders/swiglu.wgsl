// SwiGLU: out = silu(gate) * up, elementwise over n = N*F values.
// Legend: N rows (B*T), F ffn size.
// swiglu_forward:  out (n) = silu(gate (n)) * up (n)
// swiglu_backward: dgate (n) += dout * up * silu'(gate);  dup (n) += dout * silu(gate)
// swiglu_rows_forward (inference; forward only): out (N,F) = silu(gu[:, :F]) * gu[:, F:] for
//   gu (N, 2F), each row [gate | up] — the output of one linear over the concatenated gate and up
//   weights (src/model/generate.ts). P.n counts out's elements (or quads), P.f one row's.
// Template (src/ops/swiglu.ts keeps lines by flag): V4 (n % 4 == 0, quad-aligned bindings) works by
// quads, T = vec4f and P.n counting quads — a quarter of the loads and stores, each a per-lane loop
// on the CPU drivers (2× faster on lavapipe); otherwise T = f32.
//#if V4
alias T = vec4f;
//#else
alias T = f32;
//#endif

struct Params { n: u32, f: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<uniform> P: Params;

// forward bindings
@group(0) @binding(1) var<storage, read_write> out: array<T>;
@group(0) @binding(2) var<storage, read> gate: array<T>;
@group(0) @binding(3) var<storage, read> up: array<T>;

fn sigmoid(x: T) -> T { return 1.0 / (1.0 + exp(-x)); }

@compute @workgroup_size(256)
fn swiglu_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.n) { return; }
  let g = gate[i];
  out[i] = g * sigmoid(g) * up[i];
}

// backward bindings (separate numbers: each entry point uses exactly its own)
@group(0) @binding(1) var<storage, read_write> dgate: array<T>;
@group(0) @binding(2) var<storage, read_write> dup: array<T>;
@group(0) @binding(3) var<storage, read> dout: array<T>;
@group(0) @binding(4) var<storage, read> gate_b: array<T>;
@group(0) @binding(5) var<storage, read> up_b: array<T>;

@compute @workgroup_size(256)
fn swiglu_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.n) { return; }
  let g = gate_b[i];
  let s = sigmoid(g);
  let d = dout[i];
  dgate[i] += d * up_b[i] * s * (1.0 + g * (1.0 - s));
  dup[i] += d * g * s;
}

// rows bindings
@group(0) @binding(2) var<storage, read> gu: array<T>;

@compute @workgroup_size(256)
fn swiglu_rows_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.n) { return; }
  let r = i / P.f;
  let j = i - r * P.f;
  let g = gu[2u * r * P.f + j];
  out[i] = g * sigmoid(g) * gu[(2u * r + 1u) * P.f + j];
}
