// SwiGLU: out = silu(gate) * up, elementwise over n = N*F values.
// Legend: N rows (B*T), F ffn size.
// swiglu_forward:  out (n) = silu(gate (n)) * up (n)
// swiglu_backward: dgate (n) += dout * up * silu'(gate);  dup (n) += dout * silu(gate)
// swiglu_forward4 / swiglu_backward4: the same by quads (n % 4 == 0, quad-aligned bindings): a
// quarter of the loads and stores, each a per-lane loop on the CPU drivers (3× faster on lavapipe).

struct Params { n: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<uniform> P: Params;

// forward bindings
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> gate: array<f32>;
@group(0) @binding(3) var<storage, read> up: array<f32>;

fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }

@compute @workgroup_size(256)
fn swiglu_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.n) { return; }
  let g = gate[i];
  out[i] = g * sigmoid(g) * up[i];
}

// backward bindings (separate numbers: each entry point uses exactly its own)
@group(0) @binding(1) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(2) var<storage, read_write> dup: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read> gate_b: array<f32>;
@group(0) @binding(5) var<storage, read> up_b: array<f32>;

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

// ---- by quads (same binding numbers, vec4 views) ---------------------------------------------
@group(0) @binding(1) var<storage, read_write> out4: array<vec4f>;
@group(0) @binding(2) var<storage, read> gate4: array<vec4f>;
@group(0) @binding(3) var<storage, read> up4: array<vec4f>;

fn sigmoid4(x: vec4f) -> vec4f { return 1.0 / (1.0 + exp(-x)); }

// P.n counts quads here
@compute @workgroup_size(256)
fn swiglu_forward4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.n) { return; }
  let g = gate4[i];
  out4[i] = g * sigmoid4(g) * up4[i];
}

@group(0) @binding(1) var<storage, read_write> dgate4: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dup4: array<vec4f>;
@group(0) @binding(3) var<storage, read> dout4: array<vec4f>;
@group(0) @binding(4) var<storage, read> gate_b4: array<vec4f>;
@group(0) @binding(5) var<storage, read> up_b4: array<vec4f>;

@compute @workgroup_size(256)
fn swiglu_backward4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.n) { return; }
  let g = gate_b4[i];
  let s = sigmoid4(g);
  let d = dout4[i];
  dgate4[i] += d * up_b4[i] * s * (1.0 + g * (1.0 - s));
  dup4[i] += d * g * s;
}
