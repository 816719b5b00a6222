// Launcher for shaders/attention.wgsl; twin: src/ref/attention.ts.
// Causal grouped-query self-attention with a padding mask, flash-attention style.
// Legend: B batch, T time, N = B*T, NH query heads, NKV kv heads, HS head size (≤ 128).
// q, out, dq (N, NH*HS); k, v, dk, dv (N, NKV*HS); valid u32 (N); lse (B*NH*T).
import code from '../../shaders/attention.wgsl?raw';
import { type Buf, type Gpu, type Pipeline, uniforms } from '../gpu/device.ts';
import { chooseVariant, type TuneOptions } from '../gpu/autotune.ts';
import { bucket4, grid1d, need, preprocess, subgroupWidth, unrollLoops } from './util.ts';

const plain = preprocess(code, { SG: false });
const withSg = preprocess(code, { SG: true });
const withSg4 = preprocess(code, { SG: true, SG4: true });

const WG = 64; // threads per workgroup (WG in the shader)
const MAXC = 4; // vec4 chunks per lane at most (MAXC in the shader)
const MAXBK = 16; // tile capacity in rows at most (BK ≤ 16 in the shader)
const MAX_HS = 128;
const MAX_L = 8; // lanes per row at most (L in the shader)

/**
 * Test hooks: bk — stream tiles of this many rows (0 = the full tile capacity chosen from the
 * limits; plain kernels); forward / dq / dkv — 'auto' runs the form tuned for this adapter and
 * head size (tuneAttention), else the subgroup form where sgPipeline allows (4× the plain one on
 * lavapipe); 'plain' never runs the subgroup form; 'wide' runs the plain kernels with 8 lanes per row
 * (R = 8 rows per workgroup: more, smaller workgroups — for GPUs, where the default plan leaves most
 * of the chip idle at short T); 'split' runs dk/dv with one workgroup per query head of the group
 * (G = NH/NKV times the workgroups, partials summed by attention_backward_dkv_sum; plain elsewhere).
 */
type Hook = 'auto' | 'plain' | 'wide' | 'split';
export const attentionTuning: { bk: number; forward: Hook; dq: Hook; dkv: Hook } = { bk: 0, forward: 'auto', dq: 'auto', dkv: 'auto' };

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

/**
 * Lanes per row so each lane holds ≤ MAXC vec4 chunks (wide: 8, the most the shader takes); tile
 * capacity from workgroup memory.
 */
function plan(gpu: Gpu, HS: number, wide = false): Plan {
  const HC = Math.ceil(HS / 4);
  let L = 1;
  while (Math.ceil(HC / L) > MAXC) L *= 2;
  if (wide) L = Math.max(L, MAX_L);
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

/** The subgroup module per (subgroup width, head size): its loops over UQ unrolled. */
const sgSources = new Map<string, string>();

/**
 * The subgroup form `entry` of the kernel for head size HS on `gpu`, or null where it cannot run:
 * subgroups exactly 8 wide and HS % 4 == 0, or exactly 4 wide (SG4) and HS % 4 == 0, HS ≤ 64 (each
 * lane's output quads fit the shader's 32-slot accumulators).
 */
function sgPipeline(gpu: Gpu, entry: string, HS: number, L: number, BK: number): Pipeline | null {
  const S = subgroupWidth(gpu);
  if (HS % 4 !== 0 || S === 0 || (S === 4 && HS > 64)) return null;
  // UQ (output quads per lane) is known here: its loops are unrolled (unrollLoops), per (S, HS)
  const key = `${S}.${HS}`;
  let code = sgSources.get(key);
  if (!code) sgSources.set(key, (code = unrollLoops(S === 4 ? withSg4 : withSg, { UQ: Math.ceil(HS / 4 / S) })));
  return S === 4
    ? gpu.pipeline('attention_sg_w4', code, entry, { HS, L, BK, SGW: 4 })
    : gpu.pipeline('attention_sg', code, entry, { HS, L, BK });
}

/** A direction of attention that tuneAttention picks a form for: the forward, or the backward (dq and dk/dv together). */
export type AttentionDir = 'forward' | 'backward';
export type AttentionForm = 'sg' | 'plain' | 'wide' | 'split';

/** Shape class of an attention call for tuning: head size and T rounded up to a power of 4, e.g. 'hs64.t256'. */
export function attentionShapeClass(HS: number, T: number): string {
  return `hs${HS}.t${bucket4(T)}`;
}
/** Kernel name of attention's autotune cache entries (bump the version when the forms change speed). */
export function attentionTuneKernel(dir: AttentionDir): string {
  return `attention@1.${dir}`;
}

const tunedForms = new WeakMap<Gpu, Map<string, AttentionForm>>();

/**
 * The form a call of direction `dir` runs: the test hook, then the tuned choice, else 'sg' (the
 * subgroup form where it can run, else plain).
 */
function formFor(gpu: Gpu, dir: AttentionDir, kernel: 'forward' | 'dq' | 'dkv', HS: number, T: number): AttentionForm {
  const hook = attentionTuning[kernel];
  if (hook !== 'auto') return hook;
  return tunedForms.get(gpu)?.get(`${dir}.${attentionShapeClass(HS, T)}`) ?? 'sg';
}

/** The tuned choices on `gpu`: '<forward|backward>.<shape class>' → form. */
export function attentionTunedForms(gpu: Gpu): ReadonlyMap<string, AttentionForm> {
  return tunedForms.get(gpu) ?? new Map();
}

/** Forget the tuned choices on `gpu` (every call takes the default again). */
export function clearAttentionTuning(gpu: Gpu): void {
  tunedForms.delete(gpu);
}

/** One call shape to tune. */
export interface AttentionShape { B: number; T: number; NH: number; NKV: number; HS: number }

/**
 * Tune attention on `gpu`: for each distinct shape class (head size, T bucket) of `shapes` where the
 * subgroup forms can run at all, a short timed trial of the subgroup form against the plain
 * (workgroup-tiled) one, forward and backward separately, at the first shape of that class
 * (chooseVariant: cached per adapter; the subgroup form, the default, keeps near-ties). Afterwards
 * calls of that class run the winner. Call at model creation, never inside a step. Returns the
 * table (attentionTunedForms). Scratch buffers are zero-filled and freed.
 */
export async function tuneAttention(gpu: Gpu, shapes: AttentionShape[], opts: TuneOptions = {}): Promise<ReadonlyMap<string, AttentionForm>> {
  let table = tunedForms.get(gpu);
  if (!table) tunedForms.set(gpu, (table = new Map()));
  const seen = new Set<string>();
  for (const { B, T, NH, NKV, HS } of shapes) {
    const cls = attentionShapeClass(HS, T);
    if (seen.has(cls) || B * T === 0) continue;
    seen.add(cls);
    const p = plan(gpu, HS);
    check(gpu, B, T, NH, NKV, HS, p);
    // the candidates, the default first: sg where it can run, plain, wide where it differs from plain,
    // and for the backward split where heads share a kv head
    const common: AttentionForm[] = [...(sgPipeline(gpu, 'attention_forward_sg', HS, p.L, p.fwd.cap) ? ['sg' as const] : []), 'plain', ...(p.L < MAX_L ? ['wide' as const] : [])];
    const formsOf = (dir: AttentionDir): AttentionForm[] => (dir === 'backward' && NH > NKV ? [...common, 'split'] : common);
    if (formsOf('backward').length < 2) continue; // one form only: nothing to choose
    const N = B * T, nq = N * NH * HS, nk = N * NKV * HS;
    const bufs: GPUBuffer[] = [];
    const f = (n: number, label: string) => { const b = gpu.f32(n, label); bufs.push(b); return b; };
    try {
      const q = f(nq, 'autotune.q'), k = f(nk, 'autotune.k'), v = f(nk, 'autotune.v'), out = f(nq, 'autotune.out');
      const lse = f(B * NH * T, 'autotune.lse'), dq = f(nq, 'autotune.dq'), dk = f(nk, 'autotune.dk'), dv = f(nk, 'autotune.dv');
      const valid = gpu.u32(new Uint32Array(N).fill(1), 'autotune.valid');
      bufs.push(valid);
      for (const dir of ['forward', 'backward'] as const) {
        const forms = formsOf(dir);
        if (forms.length < 2) continue;
        const run = (form: AttentionForm) => () => {
          const keep = { ...attentionTuning };
          const f = form === 'sg' ? 'auto' : form;
          Object.assign(attentionTuning, { forward: f, dq: f, dkv: f });
          try {
            if (dir === 'forward') attention_forward(gpu, out, lse, q, k, v, valid, B, T, NH, NKV, HS);
            else attention_backward(gpu, dq, dk, dv, out, q, k, v, out, lse, valid, B, T, NH, NKV, HS);
          } finally {
            Object.assign(attentionTuning, keep);
          }
        };
        table.delete(`${dir}.${cls}`); // the trial's 'sg' candidate must not follow an earlier choice
        const pick = await chooseVariant(gpu, attentionTuneKernel(dir), cls, forms.map((f) => ({ name: f, run: run(f) })), opts);
        table.set(`${dir}.${cls}`, pick as AttentionForm);
      }
    } finally {
      for (const b of bufs) gpu.destroy(b);
    }
  }
  return table;
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
  const form = formFor(gpu, 'forward', 'forward', HS, T);
  const p = plan(gpu, HS, form === 'wide');
  check(gpu, B, T, NH, NKV, HS, p);
  const sg = form === 'sg' ? sgPipeline(gpu, 'attention_forward_sg', HS, p.L, p.fwd.cap) : null;
  if (sg) {
    // subgroup form: 8 query rows per workgroup (one subgroup), no barriers (shaders/attention.wgsl, end)
    gpu.dispatch(sg, params(B, T, NH, NKV, HS, p.fwd.bk, p.L), [out, lse, q, k, v, valid], [Math.ceil(T / 8), B * NH]);
    return;
  }
  const pipe = gpu.pipeline('attention', plain, 'attention_forward', { HS, L: p.L, BK: p.fwd.cap });
  gpu.dispatch(pipe, params(B, T, NH, NKV, HS, p.fwd.bk, p.L), [out, lse, q, k, v, valid], [Math.ceil(T / p.R), B * NH]);
}

// The split dk/dv form's per-head partials (two of `floats` each), one pair per gpu, grown as needed
// and reused across steps (allocated at the first backward that runs the form).
const splitBufs = new WeakMap<Gpu, [GPUBuffer, GPUBuffer]>();
function splitScratch(gpu: Gpu, floats: number): [GPUBuffer, GPUBuffer] {
  let b = splitBufs.get(gpu);
  if (!b || b[0].size < floats * 4) {
    if (b) for (const x of b) gpu.destroy(x);
    b = [gpu.f32(floats, 'attention.split_dk'), gpu.f32(floats, 'attention.split_dv')];
    splitBufs.set(gpu, b);
  }
  return b;
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
  const fq = formFor(gpu, 'backward', 'dq', HS, T), fkv = formFor(gpu, 'backward', 'dkv', HS, T);
  const p = plan(gpu, HS, fq === 'wide'), pk = plan(gpu, HS, fkv === 'wide');
  check(gpu, B, T, NH, NKV, HS, p);
  check(gpu, B, T, NH, NKV, HS, pk);
  const ld = ldScratch(gpu, B * NH * T);
  const n = B * T * NH;
  const prep = gpu.pipeline('attention', plain, 'attention_backward_prep', { HS, L: p.L, BK: p.dq.cap });
  gpu.dispatch(prep, params(B, T, NH, NKV, HS, p.dq.bk, p.L, n), [ld, lse, out, dout], grid1d(gpu, n, WG));
  const sgq = fq === 'sg' ? sgPipeline(gpu, 'attention_backward_dq_sg', HS, p.L, p.dq.cap) : null;
  if (sgq) {
    gpu.dispatch(sgq, params(B, T, NH, NKV, HS, p.dq.bk, p.L), [dq, ld, q, k, v, dout, valid], [Math.ceil(T / 8), B * NH]);
  } else {
    const pdq = gpu.pipeline('attention', plain, 'attention_backward_dq', { HS, L: p.L, BK: p.dq.cap });
    gpu.dispatch(pdq, params(B, T, NH, NKV, HS, p.dq.bk, p.L), [dq, ld, q, k, v, dout, valid], [Math.ceil(T / p.R), B * NH]);
  }
  const sgkv = fkv === 'sg' ? sgPipeline(gpu, 'attention_backward_dkv_sg', HS, pk.L, pk.dkv.cap) : null;
  const G = NH / NKV, nk = B * T * NKV * HS;
  if (fkv === 'split' && G > 1 && G * nk * 4 <= (gpu.info.limits.maxStorageBufferBindingSize ?? 128 << 20)) {
    // one workgroup per (key block, b·kv head, query head of the group): partials, then their sum
    const [pdk, pdv] = splitScratch(gpu, G * nk);
    const pkv = gpu.pipeline('attention', plain, 'attention_backward_dkv', { HS, L: pk.L, BK: pk.dkv.cap });
    gpu.dispatch(pkv, params(B, T, NH, NKV, HS, pk.dkv.bk, pk.L, nk), [pdk, pdv, q, k, v, dout, ld, valid], [Math.ceil(T / pk.R), B * NKV, G]);
    const sum = gpu.pipeline('attention', plain, 'attention_backward_dkv_sum', { HS, L: pk.L, BK: pk.dkv.cap });
    gpu.dispatch(sum, params(B, T, NH, NKV, HS, pk.dkv.bk, pk.L, nk), [dk, dv, pdk, pdv], grid1d(gpu, nk, WG));
  } else if (sgkv) {
    gpu.dispatch(sgkv, params(B, T, NH, NKV, HS, pk.dkv.bk, pk.L), [dk, dv, q, k, v, dout, ld, valid], [Math.ceil(T / 8), B * NKV]);
  } else {
    const pkv = gpu.pipeline('attention', plain, 'attention_backward_dkv', { HS, L: pk.L, BK: pk.dkv.cap });
    gpu.dispatch(pkv, params(B, T, NH, NKV, HS, pk.dkv.bk, pk.L), [dk, dv, q, k, v, dout, ld, valid], [Math.ceil(T / pk.R), B * NKV]);
  }
}
