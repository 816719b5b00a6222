// Launcher for shaders/attention.wgsl; twin: src/ref/attention.ts.
// Causal grouped-query self-attention with a padding mask, flash-attention style.
// Legend: B batch, T time, N = B*T, NH query heads, NKV kv heads, HS head size (≤ 128).
// q, out, dq (N, NH*HS); k, v, dk, dv (N, NKV*HS); valid u32 (N); lse (B*NH*T).
import code from '../../shaders/attention.wgsl?raw';
import { type Buf, type Gpu, type Pipeline, uniforms } from '../gpu/device.ts';
import { fixedSubgroupSize, grid1d, need, preprocess } from './util.ts';

const plain = preprocess(code, { SG: false });
const withSg = preprocess(code, { SG: true });
const withSg4 = preprocess(code, { SG: true, SG4: true });

const WG = 64; // threads per workgroup (WG in the shader)
const MAXC = 4; // vec4 chunks per lane at most (MAXC in the shader)
const MAXBK = 16; // tile capacity in rows at most (BK ≤ 16 in the shader)
const MAX_HS = 128;

/**
 * Test hooks: bk — stream tiles of this many rows (0 = the full tile capacity chosen from the
 * limits; plain kernels); forward / dq / dkv — 'auto' runs the subgroup form of that kernel where
 * sgPipeline allows (4× the plain one on lavapipe), 'plain' never.
 */
export const attentionTuning: { bk: number; forward: 'auto' | 'plain'; dq: 'auto' | 'plain'; dkv: 'auto' | 'plain' } = { bk: 0, forward: 'auto', dq: 'auto', dkv: 'auto' };

interface Kernel {
  cap: number; // tile capacity in rows (BK constant: sizes workgroup memory)
  bk: number; // rows streamed per tile (≤ cap; a runtime value)
}
interface Plan {
  L: number; // lanes per row
  R: number; // own rows per workgroup
  fwd: Kernel;
  dq: Kernel;
  dkv: Kernel;
}

/** Lanes per row so each lane holds ≤ MAXC vec4 chunks; tile capacity from workgroup memory. */
function plan(gpu: Gpu, HS: number): Plan {
  const HC = Math.ceil(HS / 4);
  let L = 1;
  while (Math.ceil(HC / L) > MAXC) L *= 2;
  const HCP = Math.ceil(HC / L) * L;
  const R = WG / L;
  const limit = gpu.info.limits.maxComputeWorkgroupStorageSize ?? 16384;
  // workgroup bytes at capacity cap: two vec4 tiles (max(cap, R), HCP), `reds` partial-dot arrays
  // (WG, cap) and `extra` bytes per tile row
  const pick = (reds: number, extra: number): Kernel => {
    const bytes = (cap: number) => 32 * Math.max(cap, R) * HCP + 4 * WG * cap * reds + extra * cap;
    let cap = MAXBK;
    while (cap > 1 && bytes(cap) > limit) cap--;
    need(bytes(cap) <= limit, `attention: head size ${HS} fits workgroup memory (${bytes(cap)} ≤ ${limit} B)`);
    const bk = attentionTuning.bk > 0 ? attentionTuning.bk : cap;
    need(bk <= cap, `attention: tile height ${bk} ≤ capacity ${cap}`);
    return { cap, bk };
  };
  return { L, R, fwd: pick(1, 4), dq: pick(2, 4), dkv: pick(2, 8) };
}

/**
 * The subgroup form `entry` of the kernel for head size HS on `gpu`, or null where it cannot run:
 * subgroups exactly 8 wide and HS % 4 == 0, or exactly 4 wide (SG4) and HS % 4 == 0, HS ≤ 64 (each
 * lane's output quads fit the shader's 32-slot accumulators).
 */
function sgPipeline(gpu: Gpu, entry: string, HS: number, L: number, BK: number): Pipeline | null {
  const S = fixedSubgroupSize(gpu);
  if (HS % 4 !== 0 || !(S === 8 || (S === 4 && HS <= 64))) return null;
  return S === 4
    ? gpu.pipeline('attention_sg_w4', withSg4, entry, { HS, L, BK, SGW: 4 })
    : gpu.pipeline('attention_sg', withSg, entry, { HS, L, BK });
}

function check(gpu: Gpu, B: number, T: number, NH: number, NKV: number, HS: number, p: Plan): void {
  need(HS >= 1 && HS <= MAX_HS, `attention: head size ${HS} in 1..${MAX_HS}`);
  need(NKV >= 1 && NH % NKV === 0, `attention: NH (${NH}) a multiple of NKV (${NKV})`);
  const maxG = gpu.info.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  need(B * NH <= maxG && Math.ceil(T / p.R) <= maxG, `attention: B*NH (${B * NH}) and T/${p.R} ≤ ${maxG} workgroups`);
}

/** Params of the shader; bk: rows per streamed tile; nl repeats L as a runtime value (see the shader). */
function params(B: number, T: number, NH: number, NKV: number, HS: number, bk: number, L: number, n = 0): ArrayBuffer {
  return uniforms([[B, 'u32'], [T, 'u32'], [NH, 'u32'], [NKV, 'u32'], [1 / Math.sqrt(HS), 'f32'], [n, 'u32'], [bk, 'u32'], [L, 'u32']]);
}

/**
 * out (N, NH*HS) = causal masked softmax(q·kᵀ/sqrt(HS))·v (written); lse (B*NH*T) written
 * (log-sum-exp of the scaled visible scores; 0 for a query with no visible key, whose out row is 0).
 */
export function attention_forward(gpu: Gpu, out: Buf, lse: Buf, q: Buf, k: Buf, v: Buf, valid: Buf, B: number, T: number, NH: number, NKV: number, HS: number): void {
  if (B * T === 0) return;
  const p = plan(gpu, HS);
  check(gpu, B, T, NH, NKV, HS, p);
  const sg = attentionTuning.forward === 'auto' ? sgPipeline(gpu, 'attention_forward_sg', HS, p.L, p.fwd.cap) : null;
  if (sg) {
    // subgroup form: 8 query rows per workgroup (one subgroup), no barriers (shaders/attention.wgsl, end)
    gpu.dispatch(sg, params(B, T, NH, NKV, HS, p.fwd.bk, p.L), [out, lse, q, k, v, valid], [Math.ceil(T / 8), B * NH]);
    return;
  }
  const pipe = gpu.pipeline('attention', plain, 'attention_forward', { HS, L: p.L, BK: p.fwd.cap });
  gpu.dispatch(pipe, params(B, T, NH, NKV, HS, p.fwd.bk, p.L), [out, lse, q, k, v, valid], [Math.ceil(T / p.R), B * NH]);
}

// (lse, D) scratch (B*NH*T vec2), one per gpu and size, reused across steps.
const scratch = new WeakMap<Gpu, Map<number, GPUBuffer>>();
function ldScratch(gpu: Gpu, rows: number): GPUBuffer {
  let m = scratch.get(gpu);
  if (!m) scratch.set(gpu, (m = new Map()));
  let buf = m.get(rows);
  if (!buf) m.set(rows, (buf = gpu.f32(2 * rows, 'attention.ld')));
  return buf;
}

/**
 * dq (N, NH*HS) +=, dk (N, NKV*HS) +=, dv (N, NKV*HS) += (adds into all three), from dout (N, NH*HS)
 * and the forward's out and lse. P = exp(S − lse) is recomputed tile by tile.
 */
export function attention_backward(gpu: Gpu, dq: Buf, dk: Buf, dv: Buf, dout: Buf, q: Buf, k: Buf, v: Buf, out: Buf, lse: Buf, valid: Buf, B: number, T: number, NH: number, NKV: number, HS: number): void {
  if (B * T === 0) return;
  const p = plan(gpu, HS);
  check(gpu, B, T, NH, NKV, HS, p);
  const ld = ldScratch(gpu, B * NH * T);
  const n = B * T * NH;
  const prep = gpu.pipeline('attention', plain, 'attention_backward_prep', { HS, L: p.L, BK: p.dq.cap });
  gpu.dispatch(prep, params(B, T, NH, NKV, HS, p.dq.bk, p.L, n), [ld, lse, out, dout], grid1d(gpu, n, WG));
  const sgq = attentionTuning.dq === 'auto' ? sgPipeline(gpu, 'attention_backward_dq_sg', HS, p.L, p.dq.cap) : null;
  if (sgq) {
    gpu.dispatch(sgq, params(B, T, NH, NKV, HS, p.dq.bk, p.L), [dq, ld, q, k, v, dout, valid], [Math.ceil(T / 8), B * NH]);
  } else {
    const pdq = gpu.pipeline('attention', plain, 'attention_backward_dq', { HS, L: p.L, BK: p.dq.cap });
    gpu.dispatch(pdq, params(B, T, NH, NKV, HS, p.dq.bk, p.L), [dq, ld, q, k, v, dout, valid], [Math.ceil(T / p.R), B * NH]);
  }
  const sgkv = attentionTuning.dkv === 'auto' ? sgPipeline(gpu, 'attention_backward_dkv_sg', HS, p.L, p.dkv.cap) : null;
  if (sgkv) {
    gpu.dispatch(sgkv, params(B, T, NH, NKV, HS, p.dkv.bk, p.L), [dk, dv, q, k, v, dout, ld, valid], [Math.ceil(T / 8), B * NKV]);
  } else {
    const pkv = gpu.pipeline('attention', plain, 'attention_backward_dkv', { HS, L: p.L, BK: p.dkv.cap });
    gpu.dispatch(pkv, params(B, T, NH, NKV, HS, p.dkv.bk, p.L), [dk, dv, q, k, v, dout, ld, valid], [Math.ceil(T / p.R), B * NKV]);
  }
}
