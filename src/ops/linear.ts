// Launcher for shaders/linear.wgsl; twin: src/ref/linear.ts. Frozen weights (f32 / f16 / q8 / q4)
// are uploaded once (uploadWeight) and dequantized inside the kernels (f16 with unpack2x16float,
// core WGSL: works on every adapter, SwiftShader included).
// Compute precision: f32 by default. `compute: 'f16'` (per call, or per Gpu with setLinearCompute)
// selects a forward variant that does the 4-wide inner products in vec4<f16> and accumulates them
// in f32; it needs the adapter's shader-f16 and is NOT the default: on lavapipe it measured no
// faster than f32 (see the GFLOP/s test), and it rounds activations to f16 (|x| ≤ 65504). The
// backward always computes in f32 (gradients underflow f16).
// Variants (LinearVariant): 'rt8x4' (register tiling 8×4 per thread), 'rt4x4' (4×4), 'rt1x4' (one
// row; the default for N ≤ SMALL_N_ROWS, decode), 'sm64' (shared-memory tiling, 64×64 per 16×16
// workgroup; GPUs), 'sm128' (128×128 per 16×16 workgroup, 8×8 per thread; GPUs), 'sg16x32' (one 8-lane subgroup per 16×32 tile, operands shared by
// subgroupBroadcast; only where subgroups are exactly 8 wide — or 4 wide: 8×16 tiles — and
// IC % 4 == 0, elsewhere rt8x4 runs in its place; the default for N > SMALL_N_ROWS where it can
// run: ~3× rt8x4 on lavapipe, ~2.1× on SwiftShader), 'sg1x32' (its matvec form, one row per
// subgroup, the activation row read once per subgroup; backward = sg16x32's; elsewhere rt1x4
// runs; the default for N ≤ SMALL_N_ROWS for q4 on 8-wide subgroups and q8 / q4 on 4-wide),
// 'rt1x8' (a matvec: 8 columns of one row per thread, each activation quad loaded once for 8;
// forward only, IC % 4 == 0; the default for N ≤ SMALL_N_ROWS for f32 / f16 on 4-wide subgroups:
// SwiftShader), 'mv16' (a coalesced matvec for GPUs: 16 threads per output column; forward only; picked by tuning),
// 'mvsg' (its subgroup form: one subgroup of the adapter's fixed size per 2 columns, subgroupAdd; picked by tuning).
// Each call runs opts.variant, else the variant tuned for its (format, direction, shape class) on
// this Gpu, else the default (sg16x32 where available, else rt8x4; for N ≤ SMALL_N_ROWS sg1x32
// or rt1x8 as just said, else rt1x4). Tuning: `await tuneLinear(gpu, shapes)` once (model creation, CLI, bench; never
// inside a step): a short timed trial per class through src/gpu/autotune.ts, cached per adapter.
// Legend: N rows (B*T), IC in features (= w.cols), OC out features (a row slice of W).
// Binding limits: a weight larger than maxStorageBufferBindingSize (128 MiB on lavapipe) is bound
// only for the rows used (rowOffset .. rowOffset+OC, offset aligned down to
// minStorageBufferOffsetAlignment), so a big lm_head works when called in row chunks (xent does);
// one slice must still fit the binding limit, and the whole weight must fit maxBufferSize.
import code from '../../shaders/linear.wgsl?raw';
import dropoutHash from '../../shaders/dropout_hash.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { chooseVariant, tuneCacheKey, type TuneOptions } from '../gpu/autotune.ts';
import { bytesOf, blocksPerRow, type QFormat, type QWeightHost, wordsPerBlock } from '../model/quant.ts';
import { lora_apply, lora_backward_dinp } from './lora.ts';
import { rmsnorm_forward } from './rmsnorm.ts';
import { dropout_threshold } from '../ref/lora.ts';
import { bucket4, fixedSubgroupSize, need, preprocess, subgroupWidth } from './util.ts';

export { preprocess };

export interface QWeight {
  format: QFormat;
  /** out features */
  rows: number;
  /** in features */
  cols: number;
  buf: GPUBuffer;
}


/** Arithmetic of the forward's inner products: 'f32', or 'f16' (vec4<f16> dots, f32 accumulation; needs shader-f16). */
export type LinearCompute = 'f32' | 'f16';

export interface LinearOptions {
  /** default: the Gpu's setting (setLinearCompute), else 'f32'. Forward only. */
  compute?: LinearCompute;
  /** linear_forward only: add into out (out += inp·Wᵀ + bias) instead of overwriting it */
  accumulate?: boolean;
  /** kernel variant; default: the tuned one for this shape class (tuneLinear), else 'rt1x4' for N ≤ SMALL_N_ROWS, else 'rt8x4' */
  variant?: LinearVariant;
  /**
   * linear_forward only: also add a LoRA adapter's output, out += scale·h (N,R)·B (OC,R)ᵀ (h from
   * lora_hidden). Fused into the kernel where it runs sg16x32, a register-tiled form (rt8x4, rt4x4,
   * rt1x4, rt1x8), mv16 or mvsg, with R % 4 == 0 (R more reduction
   * steps); elsewhere one lora_apply dispatch follows. With a row slice (rowOffset), B has the slice's OC rows.
   */
  lora?: { h: Buf; B: Buf; rank: number; scale: number };
  /**
   * linear_forward only: the linear's input is inp's rows (N,IC) RMS-normalized with `weight` (IC)
   * and `eps` (a model's norm before its projections). Inside the kernel (XN in
   * shaders/linear.wgsl: no dispatch writes the normalized rows) where a matvec other than rt1x4
   * runs — rt1x8, mv16, mvsg, sg1x32 (fusesNorm);
   * elsewhere rmsnorm_forward writes them to `scratch` (N,IC) (and their 1/rms to `rstd` (N)) first.
   * Not with opts.lora (the adapter's hidden needs the normalized rows).
   */
  norm?: { weight: Buf; eps: number; scratch: Buf; rstd: Buf };
  /**
   * linear_backward only: also add the adapter's input gradient, dinp += dropout'(dh (N,R)·A (R,IC))
   * (dh from lora_backward_dh; dropout p, seed as the forward's lora_hidden, default none). Fused
   * like opts.lora (the adapter's sums masked in registers); elsewhere lora_backward_dinp follows.
   */
  loraGrad?: { dh: Buf; A: Buf; rank: number; p?: number; seed?: number };
}

const computeOf = new WeakMap<Gpu, LinearCompute>();

/** Set the default forward compute precision of linear_forward on `gpu` ('f16' needs shader-f16). */
export function setLinearCompute(gpu: Gpu, compute: LinearCompute): void {
  need(compute === 'f32' || compute === 'f16', `linear: compute must be 'f32' or 'f16' (got ${JSON.stringify(compute)})`);
  need(compute === 'f32' || gpu.info.features.f16, `linear: compute 'f16' needs the adapter feature shader-f16, which ${gpu.info.description || 'this adapter'} lacks`);
  computeOf.set(gpu, compute);
}

/** The default forward compute precision of linear_forward on `gpu`. */
export function linearCompute(gpu: Gpu): LinearCompute {
  return computeOf.get(gpu) ?? 'f32';
}

/**
 * Kernel variants (shaders/linear.wgsl): 'rt8x4' register tiling, 8×4 outputs per thread (the
 * default where sg16x32 cannot run), 'rt4x4' register tiling 4×4, 'rt1x4' one row × 4
 * columns per thread (the untuned default for N ≤ SMALL_N_ROWS: decode steps), 'sg16x32' subgroup
 * tiles (8- or 4-wide subgroups, IC % 4 == 0; the default there), 'sg1x32' its matvec form (decode
 * default there: q4 only on 8-wide, q8 / q4 on 4-wide), 'rt1x8' one row × 8 columns per thread
 * (a matvec, forward only, IC % 4 == 0 — its backward and other IC run rt1x4; the decode default
 * for f32 / f16 on 4-wide subgroups: SwiftShader), 'sm64' shared-memory
 * tiling (64×64 per 16×16 workgroup, K tiles of 16 in workgroup memory; what GPUs reward), 'sm128'
 * (the same with 128×128 tiles, 8×8 outputs per thread; its forward always computes in f32), 'mv16'
 * a coalesced matvec for GPUs (16 threads per output column; forward only, IC % 4 == 0 — its
 * backward and other IC run rt1x4; chosen only by tuning), 'mvsg' its subgroup form (one subgroup
 * per 2 columns, subgroupAdd; where the subgroup size is fixed; forward only; chosen only by tuning). Every variant takes every format, both
 * directions and f16 compute. Which one runs: opts.variant, else
 * the one tuned for (format, direction, shape class) on this Gpu (tuneLinear), else 'rt1x4' for
 * N ≤ SMALL_N_ROWS (sg1x32 or rt1x8 where linearVariant says), else 'sg16x32' where it can run, else 'rt8x4'.
 */
export type LinearVariant = 'rt8x4' | 'rt4x4' | 'rt1x4' | 'rt1x8' | 'sm64' | 'sm128' | 'sg16x32' | 'sg1x32' | 'mv16' | 'mvsg';
export const LINEAR_VARIANTS: readonly LinearVariant[] = ['rt8x4', 'rt4x4', 'rt1x4', 'rt1x8', 'sm64', 'sm128', 'sg16x32', 'sg1x32', 'mv16', 'mvsg'];
export const DEFAULT_LINEAR_VARIANT: LinearVariant = 'rt8x4';
/** Untuned calls with at most this many rows run 'rt1x4' (decode steps: a TM = 8 tile would compute one row 8 times). */
export const SMALL_N_ROWS = 4;
export type LinearDir = 'forward' | 'backward';

/** Dispatch geometry of a variant: output rows (n) and columns (o or c) per workgroup. */
/** (register-tiled: TM rows × 4 columns per thread, workgroups of wx × wy threads) */
interface Geometry { kind: 'RT' | 'R8' | 'SM' | 'SG' | 'MV' | 'MVS'; tm: number; wx: number; wy: number; rowsPerGroup: number; colsPerGroup: number }
const GEOMETRY: Record<LinearVariant, Geometry> = {
  rt8x4: { kind: 'RT', tm: 8, wx: 8, wy: 8, rowsPerGroup: 64, colsPerGroup: 32 },
  rt4x4: { kind: 'RT', tm: 4, wx: 8, wy: 8, rowsPerGroup: 32, colsPerGroup: 32 },
  rt1x4: { kind: 'RT', tm: 1, wx: 64, wy: 1, rowsPerGroup: 1, colsPerGroup: 256 },
  // forward: 8 columns of one row per thread, 16 threads (the matvec; on SwiftShader 16 measured
  // 0–20% faster than 64 for 64..384 columns, the same for 2048); backward: rt1x4's
  rt1x8: { kind: 'R8', tm: 1, wx: 16, wy: 1, rowsPerGroup: 1, colsPerGroup: 128 },
  sm64: { kind: 'SM', tm: 8, wx: 16, wy: 16, rowsPerGroup: 64, colsPerGroup: 64 },
  // 8×8 outputs per thread (SM128 in the shader)
  sm128: { kind: 'SM', tm: 8, wx: 16, wy: 16, rowsPerGroup: 128, colsPerGroup: 128 },
  // the subgroup forms as on 8-wide subgroups; on 4-wide ones (SG4) rows and columns halve: geometryOn
  sg16x32: { kind: 'SG', tm: 1, wx: 8, wy: 1, rowsPerGroup: 16, colsPerGroup: 32 },
  // forward: one row per workgroup (the matvec); backward: sg16x32's
  sg1x32: { kind: 'SG', tm: 1, wx: 8, wy: 1, rowsPerGroup: 1, colsPerGroup: 32 },
  // forward: 4 columns of one row per workgroup of 64 (16 threads per column); backward: rt1x4's
  mv16: { kind: 'MV', tm: 1, wx: 64, wy: 1, rowsPerGroup: 1, colsPerGroup: 4 },
  // forward: 2 columns of one row per workgroup = one subgroup (wx: the fixed subgroup size, geometryOn); backward: rt1x4's
  mvsg: { kind: 'MVS', tm: 1, wx: 32, wy: 1, rowsPerGroup: 1, colsPerGroup: 2 },
};

/**
 * Geometry of `variant` as it runs on `gpu`: the subgroup forms' workgroup is one subgroup of W
 * lanes (W = subgroupWidth) with a 2W × 4W tile (the matvec: 1 × 4W).
 */
function geometryOn(gpu: Gpu, variant: LinearVariant): Geometry {
  const g = GEOMETRY[variant];
  if (g.kind === 'MVS') return { ...g, wx: fixedSubgroupSize(gpu) };
  if (g.kind !== 'SG') return g;
  const W = subgroupWidth(gpu);
  return { ...g, wx: W, rowsPerGroup: variant === 'sg1x32' ? 1 : 2 * W, colsPerGroup: 4 * W };
}

/**
 * sg16x32's backward with two column quads per lane (one q4 word holds both): q4 weights on 8-wide
 * subgroups (lavapipe: 1.5× the single-quad form; SwiftShader's 4-wide: 0.67×, so not there).
 */
function sgPairs(gpu: Gpu, variant: LinearVariant, format: QFormat): boolean {
  return variant === 'sg16x32' && format === 'q4' && subgroupWidth(gpu) === 8;
}

/** The subgroup width the subgroup variants run with on `gpu` (src/ops/util.ts; 0: they cannot run). */
export { subgroupWidth };

/** Whether the subgroup variants (sg16x32, sg1x32) can run on `gpu` (subgroupWidth ≠ 0). */
export function subgroupVariantAvailable(gpu: Gpu): boolean {
  return subgroupWidth(gpu) !== 0;
}

/** What each subgroup variant falls back to where it cannot run. */
const SG_FALLBACK: Partial<Record<LinearVariant, LinearVariant>> = { sg16x32: 'rt8x4', sg1x32: 'rt1x4' };

/**
 * The variant that actually runs: a subgroup variant needs subgroupVariantAvailable and IC % 4 == 0,
 * mv16 IC % 4 == 0, mvsg that and a fixed subgroup size (else rt1x4).
 */
function effective(gpu: Gpu, v: LinearVariant, IC: number): LinearVariant {
  if (v === 'mv16' || v === 'rt1x8') return IC % 4 === 0 ? v : 'rt1x4';
  if (v === 'mvsg') return IC % 4 === 0 && fixedSubgroupSize(gpu) !== 0 ? v : 'rt1x4';
  const fb = SG_FALLBACK[v];
  return fb && !(IC % 4 === 0 && subgroupVariantAvailable(gpu)) ? fb : v;
}

const sources = new Map<string, string>();
/** Pipeline of one variant: format, V4 = IC % 4 == 0, DV = OC % 4 == 0 (backward only), H = f16 compute (forward only). */
function pipelineFor(gpu: Gpu, variant: LinearVariant, format: QFormat, entry: 'linear_forward' | 'linear_backward', v4: boolean, dv: boolean, h = false, acc = false, lora = false, xn = false) {
  need(!!GEOMETRY[variant], `linear: unknown variant ${JSON.stringify(variant)} (one of ${LINEAR_VARIANTS.join(', ')})`);
  const g = geometryOn(gpu, variant);
  const sg4 = g.kind === 'SG' && g.wx === 4;
  const sgw = g.kind === 'MVS' ? `_w${g.wx}` : sg4 ? '_w4' : '';
  const name = `linear_${format}${v4 ? '_v4' : ''}${dv ? '_dv' : ''}${h ? '_h' : ''}${acc ? '_acc' : ''}${lora ? '_lora' : ''}${xn ? '_rmsnorm' : ''}_${variant}${sgw}`;
  let src = sources.get(name);
  if (!src) {
    const flags = {
      F32: format === 'f32', F16: format === 'f16', Q8: format === 'q8', Q4: format === 'q4', Q: format === 'q8' || format === 'q4',
      V4: v4, DV: dv, H: h, ACC: acc, LORA: lora, RT: g.kind === 'RT', SM: g.kind === 'SM', SM128: variant === 'sm128', SG: g.kind === 'SG', MV: g.kind === 'MV', MVS: g.kind === 'MVS', R8: g.kind === 'R8', SGP: sgPairs(gpu, variant, format), SGV: variant === 'sg1x32', SG4: sg4, XN: xn,
    };
    need(flags.F32 || flags.F16 || flags.Q, `linear: unknown weight format '${format}'`);
    src = preprocess(lora ? `${code}\n${dropoutHash}` : code, flags)
      .replace(/const TM: u32 = \d+u;/, `const TM: u32 = ${g.tm}u;`)
      .replace(/const WX: u32 = \d+u;/, `const WX: u32 = ${g.wx}u;`)
      .replace(/const WY: u32 = \d+u;/, `const WY: u32 = ${g.wy}u;`)
      .replace(/const SGW: u32 = \d+u;/, `const SGW: u32 = ${g.kind === 'SG' || g.kind === 'MVS' ? g.wx : 8}u;`);
    sources.set(name, src);
  }
  return gpu.pipeline(name, src, entry);
}

/**
 * Shape class of a linear call for tuning: each of N, IC, OC rounded up to a power of 4
 * (1, 4, 16, 64, 256, 1024, 4096, 16384+), e.g. N=256 IC=576 OC=1536 → 'n256.i1024.o4096'.
 */
export function linearShapeClass(N: number, IC: number, OC: number): string {
  return `n${bucket4(N)}.i${bucket4(IC)}.o${bucket4(OC)}`;
}

/** Tuning table key of (format, direction, shape class). */
function tuneKey(format: QFormat, dir: LinearDir, N: number, IC: number, OC: number): string {
  return `${format}.${dir}.${linearShapeClass(N, IC, OC)}`;
}

const tuned = new WeakMap<Gpu, Map<string, LinearVariant>>();

/** The variant linear_forward / linear_backward run for this call shape on `gpu` (tuned, else the default). */
export function linearVariant(gpu: Gpu, format: QFormat, dir: LinearDir, N: number, IC: number, OC: number): LinearVariant {
  const t = tuned.get(gpu);
  const W = IC % 4 === 0 ? subgroupWidth(gpu) : 0;
  // the subgroup matvec: on 8-wide subgroups only for q4 — measured on lavapipe (N = 1) it beat
  // rt1x4 on q4 (1.3–1.8×) but lost on f32 (2× slower) and q8 (8-lane workgroups of 32 columns are
  // many small workgroups); on SwiftShader's 4-wide ones it beat rt1x4 for every format (f32
  // 1.1×, f16 1.0–1.7×, q8 1.3×, q4 1.4–1.5×); there rt1x8 beat sg1x32 on f32 (1.0–1.6×) and f16
  // (1.1–1.8×) and tied on q8 / q4 (scripts/matvec-speed.ts)
  const matvec = W === 4 && (format === 'f32' || format === 'f16') ? 'rt1x8' : W === 4 || (W === 8 && format === 'q4') ? 'sg1x32' : 'rt1x4';
  const v = (t && t.get(tuneKey(format, dir, N, IC, OC))) || (N <= SMALL_N_ROWS ? matvec : W ? 'sg16x32' : DEFAULT_LINEAR_VARIANT);
  return effective(gpu, v, IC);
}

/** The tuned choices on `gpu`: '<format>.<forward|backward>.<shape class>' → variant. */
export function linearTuning(gpu: Gpu): ReadonlyMap<string, LinearVariant> {
  return tuned.get(gpu) ?? new Map();
}

/** Forget the tuned choices on `gpu` (every call takes the default again). */
export function clearLinearTuning(gpu: Gpu): void {
  tuned.delete(gpu);
}

/** Upload a host weight (quantize() output) to a storage buffer labelled `label`. */
export function uploadWeight(gpu: Gpu, host: QWeightHost, label: string): QWeight {
  const bytes = bytesOf(host.format, host.rows, host.cols);
  need(host.data.byteLength === bytes, `${label}: ${host.format} data of (${host.rows},${host.cols}) is ${bytes} bytes (got ${host.data.byteLength})`);
  return { format: host.format, rows: host.rows, cols: host.cols, buf: gpu.buffer(bytes, label, host.data) };
}

/** u32 words per stored row of w. */
export function rowWords(w: { format: QFormat; cols: number }): number {
  if (w.format === 'f32') return w.cols;
  if (w.format === 'f16') return Math.ceil(w.cols / 2);
  return blocksPerRow(w.cols) * wordsPerBlock(w.format);
}

/** Binding of W rows [rowOffset, rowOffset+OC) and the word index of row rowOffset inside it. */
function bindRows(gpu: Gpu, w: QWeight, rowOffset: number, OC: number): { buf: Buf; wbase: number } {
  const rw = rowWords(w);
  const maxBind = gpu.info.limits.maxStorageBufferBindingSize ?? 128 * 1024 * 1024;
  if (w.buf.size <= maxBind) return { buf: w.buf, wbase: rowOffset * rw };
  const start = rowOffset * rw * 4;
  const offset = Math.floor(start / gpu.alignment) * gpu.alignment;
  const size = start - offset + OC * rw * 4;
  need(size <= maxBind, `linear: a slice of ${OC} rows of ${w.format} (${w.rows},${w.cols}) is ${size} bytes; ` +
    `it must fit maxStorageBufferBindingSize ${maxBind} — use a smaller row chunk`);
  return { buf: { buffer: w.buf, offset, size }, wbase: (start - offset) / 4 };
}

const dummies = new WeakMap<Gpu, GPUBuffer>();
function dummy(gpu: Gpu): GPUBuffer {
  let b = dummies.get(gpu);
  if (!b) dummies.set(gpu, (b = gpu.f32(1, 'linear.nobias')));
  return b;
}

function check(w: QWeight, IC: number, OC: number, rowOffset: number): void {
  need(w.cols === IC, `linear: weight cols ${w.cols} must equal IC ${IC}`);
  need(rowOffset >= 0 && rowOffset + OC <= w.rows, `linear: rows ${rowOffset}..${rowOffset + OC} must lie in the weight's ${w.rows} rows`);
}

/**
 * out (N,OC) = inp (N,IC) · W[rowOffset : rowOffset+OC]ᵀ (+ bias (OC)) — overwrites out (opts.accumulate: adds into it).
 * opts.compute 'f16' (needs shader-f16): the inner products in f16, accumulated in f32.
 */
export function linear_forward(gpu: Gpu, out: Buf, inp: Buf, w: QWeight, bias: Buf | null, N: number, IC: number, OC: number, rowOffset = 0, opts: LinearOptions = {}): void {
  check(w, IC, OC, rowOffset);
  const compute = opts.compute ?? linearCompute(gpu);
  need(compute === 'f32' || compute === 'f16', `linear: compute must be 'f32' or 'f16' (got ${JSON.stringify(compute)})`);
  need(compute === 'f32' || gpu.info.features.f16, `linear: compute 'f16' needs the adapter feature shader-f16, which ${gpu.info.description || 'this adapter'} lacks`);
  const lora = opts.lora, nrm = opts.norm;
  need(!lora || lora.rank >= 1, 'linear: opts.lora needs rank ≥ 1');
  need(!lora || !nrm, "linear: opts.norm and opts.lora cannot be combined (the adapter's hidden needs the normalized rows)");
  if (N === 0 || OC === 0) return;
  const variant = effective(gpu, opts.variant ?? linearVariant(gpu, w.format, 'forward', N, IC, OC), IC);
  if (nrm && !(linearFusion.norm && fusesNorm(variant, IC))) {
    rmsnorm_forward(gpu, nrm.scratch, nrm.rstd, inp, nrm.weight, N, IC, nrm.eps);
    linear_forward(gpu, out, nrm.scratch, w, bias, N, IC, OC, rowOffset, { ...opts, norm: undefined, variant });
    return;
  }
  const { buf, wbase } = bindRows(gpu, w, rowOffset, OC);
  const fuse = !!lora && fusesLora(variant, lora.rank, 'forward');
  const u = uniforms([[N, 'u32'], [IC, 'u32'], [OC, 'u32'], [wbase, 'u32'], [rowWords(w), 'u32'], [bias ? 1 : 0, 'u32'],
    [fuse ? lora.rank : 0, 'u32'], [fuse ? lora.scale : 0, 'f32'], [0, 'u32'], [0, 'u32'], [0, 'f32'], [nrm ? nrm.eps : 0, 'f32']]);
  const p = pipelineFor(gpu, variant, w.format, 'linear_forward', IC % 4 === 0, false, compute === 'f16', opts.accumulate === true, fuse, !!nrm);
  const g = geometryOn(gpu, variant);
  const bufs: Buf[] = [out, inp, buf, bias ?? dummy(gpu)];
  if (fuse) bufs.push(lora.h, lora.B);
  if (nrm) bufs.push(nrm.weight);
  gpu.dispatch(p, u, bufs, [Math.ceil(OC / g.colsPerGroup), Math.ceil(N / g.rowsPerGroup)]);
  if (lora && !fuse) lora_apply(gpu, out, lora.h, lora.B, N, OC, lora.rank, lora.scale);
}

/**
 * Fusions linear_forward may use, for A/B measurements (`whittle profile --no-fused-norm`): norm
 * false runs opts.norm as a separate rmsnorm dispatch on every variant.
 */
export const linearFusion = { norm: true };

/**
 * Whether `variant` (as it runs) RMS-normalizes its input in-kernel (opts.norm): the matvecs rt1x8,
 * mv16, mvsg and sg1x32 (IC % 4 == 0; the ones that split a row's K across threads sum Σx² with
 * their partial dots). Not rt1x4: on lavapipe, loading the norm's weight beside x made it 2× slower
 * (tinystories-656k decode, `whittle profile --decode 16`: without that one load the fused form cost
 * what the plain one does), more than the rmsnorm dispatch it saves. SwiGLU folded into the down
 * projection's input the same way was slower on both CPU drivers (every thread recomputes the
 * row's silu: 16–32× the exps).
 */
export function fusesNorm(variant: LinearVariant, IC: number): boolean {
  return IC % 4 === 0 && (variant === 'rt1x8' || variant === 'mv16' || variant === 'mvsg' || variant === 'sg1x32');
}

/**
 * Whether `variant` (as it runs) takes a LoRA adapter of rank R inside its kernel (the LORA flag):
 * sg16x32 both ways; the register-tiled forwards (rt8x4, rt4x4, rt1x4, rt1x8) and the matvecs mv16,
 * mvsg too (not sm64 / sm128, not sg1x32).
 */
function fusesLora(variant: LinearVariant, R: number, dir: LinearDir): boolean {
  if (R % 4 !== 0) return false;
  const kind = GEOMETRY[variant].kind;
  return variant === 'sg16x32' || (dir === 'forward' && kind !== 'SM' && kind !== 'SG');
}

/**
 * dinp (N,IC) += dout (N,OC) · W[rowOffset : rowOffset+OC]. Always f32 compute (opts.compute is
 * ignored); opts.variant picks the kernel variant.
 */
export function linear_backward(gpu: Gpu, dinp: Buf, dout: Buf, w: QWeight, N: number, IC: number, OC: number, rowOffset = 0, opts: LinearOptions = {}): void {
  check(w, IC, OC, rowOffset);
  const lora = opts.loraGrad;
  need(!lora || lora.rank >= 1, 'linear: opts.loraGrad needs rank ≥ 1');
  const p = lora?.p ?? 0, seed = lora?.seed ?? 0;
  need(p >= 0 && p < 1, `linear: opts.loraGrad dropout p must be in [0, 1), got ${p}`);
  if (N === 0 || OC === 0) return;
  const { buf, wbase } = bindRows(gpu, w, rowOffset, OC);
  const v0 = effective(gpu, opts.variant ?? linearVariant(gpu, w.format, 'backward', N, IC, OC), IC);
  const variant: LinearVariant = v0 === 'sg1x32' ? 'sg16x32' : v0 === 'mv16' || v0 === 'mvsg' || v0 === 'rt1x8' ? 'rt1x4' : v0; // sg1x32, mv16, mvsg, rt1x8: forward forms
  const fuse = !!lora && fusesLora(variant, lora.rank, 'backward');
  const u = uniforms([[N, 'u32'], [IC, 'u32'], [OC, 'u32'], [wbase, 'u32'], [rowWords(w), 'u32'], [0, 'u32'], [fuse ? lora.rank : 0, 'u32'], [0, 'f32'],
    [fuse ? dropout_threshold(p) : 0, 'u32'], [seed, 'u32'], [1 / (1 - p), 'f32'], [0, 'u32']]);
  const pl = pipelineFor(gpu, variant, w.format, 'linear_backward', IC % 4 === 0, OC % 4 === 0, false, false, fuse);
  const g = geometryOn(gpu, variant);
  const cols = sgPairs(gpu, variant, w.format) ? 2 * g.colsPerGroup : g.colsPerGroup; // sg16x32's q4 backward: 8 columns per lane
  const bufs: Buf[] = [dinp, dout, buf];
  if (fuse) bufs.push(lora.dh, lora.A);
  gpu.dispatch(pl, u, bufs, [Math.ceil(IC / cols), Math.ceil(N / g.rowsPerGroup)]);
  if (lora && !fuse) lora_backward_dinp(gpu, dinp, lora.dh, lora.A, N, IC, lora.rank, p, seed);
}

/** Kernel name of linear's autotune cache entries (bump the version when the variants change speed). */
export function linearTuneKernel(dir: LinearDir, format: QFormat): string {
  return `linear@3.${dir}.${format}`;
}

/** The autotune cache key (src/gpu/autotune.ts) of a linear call shape on `gpu`'s adapter. */
export function linearTuneCacheKey(gpu: Gpu, dir: LinearDir, format: QFormat, N: number, IC: number, OC: number): string {
  return tuneCacheKey(gpu.info, linearTuneKernel(dir, format), linearShapeClass(N, IC, OC));
}

/** One call shape to tune: weight format, rows N, IC, OC; dirs default to both. */
export interface LinearShape {
  format: QFormat;
  N: number;
  IC: number;
  OC: number;
  dirs?: LinearDir[];
}

export interface TuneLinearOptions extends TuneOptions {
  /** candidates (default: every variant, the default first) */
  variants?: readonly LinearVariant[];
}

/**
 * Tune linear on `gpu`: for each distinct (format, direction, shape class) of `shapes`, a short
 * timed trial of every variant at the first shape given for that class (chooseVariant: cached per
 * adapter, so a later run — another process, a page reload — does no trial). Afterwards calls of
 * that class run the winner. Call it at model creation or from the CLI / bench, never inside a
 * step (it submits and awaits). Returns the table (linearTuning). Scratch buffers are zero-filled
 * and freed; a variant whose trial fails (validation error, out of memory) is excluded.
 */
export async function tuneLinear(gpu: Gpu, shapes: LinearShape[], opts: TuneLinearOptions = {}): Promise<ReadonlyMap<string, LinearVariant>> {
  const cands = (opts.variants ?? LINEAR_VARIANTS).filter((v) => (!SG_FALLBACK[v] || subgroupVariantAvailable(gpu)) && (v !== 'mvsg' || fixedSubgroupSize(gpu) !== 0));
  need(cands.length > 0 && cands.every((v) => GEOMETRY[v]), `tuneLinear: variants must be some of ${LINEAR_VARIANTS.join(', ')}`);
  let table = tuned.get(gpu);
  if (!table) tuned.set(gpu, (table = new Map()));
  const seen = new Set<string>();
  for (const s of shapes) {
    if (s.N <= 0 || s.IC <= 0 || s.OC <= 0) continue;
    for (const dir of s.dirs ?? (['forward', 'backward'] as const)) {
      const key = tuneKey(s.format, dir, s.N, s.IC, s.OC);
      if (seen.has(key)) continue;
      seen.add(key);
      const { N, IC, OC, format } = s;
      const bufs: GPUBuffer[] = [];
      const mk = (bytes: number, label: string) => { const b = gpu.buffer(bytes, label); bufs.push(b); return b; };
      try {
        const w: QWeight = { format, rows: OC, cols: IC, buf: mk(bytesOf(format, OC, IC), 'autotune.w') };
        const a = mk(N * IC * 4, 'autotune.x'), b = mk(N * OC * 4, 'autotune.y');
        const candidates = cands.map((v) => ({
          name: v,
          run: dir === 'forward'
            ? () => linear_forward(gpu, b, a, w, null, N, IC, OC, 0, { variant: v, compute: 'f32' })
            : () => linear_backward(gpu, a, b, w, N, IC, OC, 0, { variant: v }),
        }));
        const pick = await chooseVariant(gpu, linearTuneKernel(dir, format), linearShapeClass(N, IC, OC), candidates, opts);
        table.set(key, pick as LinearVariant);
      } finally {
        for (const b of bufs) gpu.destroy(b);
      }
    }
  }
  return table;
}
