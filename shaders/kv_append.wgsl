// Append a chunk's keys and values to one layer's KV cache (inference).
// Legend: NQ new rows at positions t0 .. t0+NQ−1, KVD = NKV*HS.
// kv_append_forward: kc[(t0+n)·KVD + e] = k[n·KVD + e];  vc[(t0+n)·KVD + e] = v[n·KVD + e]
//   k, v (NQ, KVD) (k with rope applied); kc, vc (maxT, KVD). One thread per element; the 1-D grid
//   folds into 2-D: idx = gid.x + gid.y * nwg.x * 256.

struct Params { n: u32 /* NQ·KVD */, off: u32 /* t0·KVD */, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> kc: array<f32>;
@group(0) @binding(2) var<storage, read_write> vc: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;

@compute @workgroup_size(256)
fn kv_append_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.n) { return; }
  kc[P.off + i] = k[i];
  vc[P.off + i] = v[i];
}
