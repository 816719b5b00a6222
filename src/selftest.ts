// Self-test: every GPU kernel against its CPU twin (src/ref) on the current adapter, forward and
// backward, with the one tolerance rule (src/ref/tolerance.ts). Runs wherever a Gpu can be had:
// the engine worker (page "Run self-test"), Node (`whittle selftest`), tests.
// It is not: the unit tests (those also check the references against finite differences and probe
// many more shapes); this is a quick "do the kernels compute the right numbers on THIS adapter".
// No DOM here.
//
// A registry of cases: each case builds seeded inputs, runs the kernels and their twins, and
// returns one check per compared tensor. Shapes are small (CPU Vulkan drivers run them too) but
// deliberately odd (not multiples of the workgroup or block sizes).
// Legend: B batch, T time, N rows (B*T), C hidden, V vocab, NH heads, NKV kv heads, HS head size,
// IC/OC in/out features, R LoRA rank, n flat length.
import type { Gpu } from './gpu/device.ts';
import { closeness, TOL } from './ref/tolerance.ts';
import * as swigluOp from './ops/swiglu.ts';
import * as swigluRef from './ref/swiglu.ts';
import * as rmsnormOp from './ops/rmsnorm.ts';
import * as rmsnormRef from './ref/rmsnorm.ts';
import * as adamwOp from './ops/adamw.ts';
import * as adamwRef from './ref/adamw.ts';
import * as embeddingOp from './ops/embedding.ts';
import * as embeddingRef from './ref/embedding.ts';
import * as ropeOp from './ops/rope.ts';
import * as ropeRef from './ref/rope.ts';
import * as linearOp from './ops/linear.ts';
import * as linearRef from './ref/linear.ts';
import * as loraOp from './ops/lora.ts';
import * as loraRef from './ref/lora.ts';
import * as attentionOp from './ops/attention.ts';
import * as attentionRef from './ref/attention.ts';
import * as xentOp from './ops/xent.ts';
import * as xentRef from './ref/xent.ts';
import * as attentionDecodeOp from './ops/attention_decode.ts';
import * as attentionDecodeRef from './ref/attention_decode.ts';
import * as kvAppendOp from './ops/kv_append.ts';
import * as kvAppendRef from './ref/kv_append.ts';
import * as argmaxOp from './ops/argmax.ts';
import * as argmaxRef from './ref/argmax.ts';
import { dequantize, quantize, type QFormat } from './model/quant.ts';

export interface Tol {
  atol: number;
  rtol: number;
}

/** One compared tensor of one case. */
export interface SelftestResult {
  /** kernel family (the shader file), e.g. 'rmsnorm' */
  op: string;
  /** what was compared, e.g. 'forward out', 'backward dinp' */
  check: string;
  /** the case's shape, e.g. 'N=7 C=97' */
  shape: string;
  /** max |got − ref| over finite differences (NaN-free); see `pass` for non-finite values */
  maxAbs: number;
  /** max |got − ref| / |ref| (informational: near-zero refs make it large) */
  maxRel: number;
  atol: number;
  rtol: number;
  pass: boolean;
  /** index of the worst element (largest excess over the tolerance) */
  worst: number;
  /** set when the case threw (validation error, precondition, device loss) */
  error?: string;
  /** wall time of the whole case (GPU + readback + CPU twin), ms */
  ms: number;
}

interface Check {
  check: string;
  got: ArrayLike<number>;
  ref: ArrayLike<number>;
  tol: Tol;
}

interface Case {
  op: string;
  shape: string;
  run(t: Scratch): Promise<Check[]>;
}

/** Buffers of one case, destroyed when it ends; seeded data. */
class Scratch {
  private bufs: GPUBuffer[] = [];
  constructor(readonly gpu: Gpu) {}

  f32(data: Float32Array | number, label: string): GPUBuffer {
    const b = this.gpu.f32(data, `selftest.${label}`);
    this.bufs.push(b);
    return b;
  }

  u32(data: Uint32Array, label: string): GPUBuffer {
    const b = this.gpu.u32(data, `selftest.${label}`);
    this.bufs.push(b);
    return b;
  }

  /** Quantize w (rows, cols) to `format`, upload it, and return it with the dequantized f32 the kernels see. */
  weight(w: Float32Array, rows: number, cols: number, format: QFormat, label: string): { q: linearOp.QWeight; f32: Float32Array } {
    const host = quantize(w, rows, cols, format);
    const q = linearOp.uploadWeight(this.gpu, host, `selftest.${label}`);
    this.bufs.push(q.buf);
    return { q, f32: dequantize(host) };
  }

  readF32(b: GPUBuffer, n: number): Promise<Float32Array> {
    return this.gpu.readF32(b, n);
  }

  dispose(): void {
    for (const b of this.bufs) this.gpu.destroy(b);
    this.bufs = [];
  }
}

import { mulberry32 as rng } from './rng.ts';

/** n uniform values in [-scale, scale). */
function rand(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

// ---- the registry ---------------------------------------------------------------------------

const CASES: Case[] = [];

function register(op: string, shape: string, run: (t: Scratch) => Promise<Check[]>): void {
  CASES.push({ op, shape, run });
}

// embedding: gather from a f32 / q8 / q4 table (dequantized in the kernel), scatter-add backward;
// repeated ids and one out-of-range id (→ zero row, no gradient)
for (const format of ['f32', 'q8', 'q4', 'f16'] as const) {
  const N = 33, C = 97, V = 50;
  register('embedding', `N=${N} C=${C} V=${V} ${format}`, async (t) => {
    const { gpu } = t;
    const seed = 300 + V;
    const { q: wte, f32: table } = t.weight(rand(V * C, seed, 2), V, C, format, 'wte');
    const r = rng(seed + 1);
    const ids = Uint32Array.from({ length: N }, () => Math.floor(r() * 17)); // repeats
    ids[N - 2] = V + 3;
    const dout = rand(N * C, seed + 2), d0 = rand(V * C, seed + 3);
    const out = new Float32Array(N * C);
    embeddingRef.embedding_forward(out, ids, table, N, C);
    const dwte = d0.slice();
    embeddingRef.embedding_backward(dwte, dout, ids, N, C, V);
    const bIds = t.u32(ids, 'ids'), bOut = t.f32(rand(N * C, seed + 4), 'out'); // garbage: forward overwrites
    const bDout = t.f32(dout, 'dout'), bD = t.f32(d0, 'dwte');
    await gpu.scoped('selftest embedding', () => {
      embeddingOp.embedding_forward(gpu, bOut, bIds, wte, N, C);
      embeddingOp.embedding_backward(gpu, bD, bDout, bIds, N, C, V);
    });
    return [
      { check: 'forward out', got: await t.readF32(bOut, N * C), ref: out, tol: TOL.f32 },
      { check: 'backward dwte', got: await t.readF32(bD, V * C), ref: dwte, tol: TOL.f32 },
    ];
  });
}

// rmsnorm: one row reduction per token; C odd and larger than a workgroup
for (const [N, C] of [[7, 97], [3, 300]] as const) {
  register('rmsnorm', `N=${N} C=${C}`, async (t) => {
    const { gpu } = t;
    const eps = 1e-5, seed = 100 + C;
    const inp = rand(N * C, seed, 3), w = rand(C, seed + 1, 2), dout = rand(N * C, seed + 2);
    const d0 = rand(N * C, seed + 3);
    const out = new Float32Array(N * C), rstd = new Float32Array(N);
    rmsnormRef.rmsnorm_forward(out, rstd, inp, w, N, C, eps);
    const dinp = d0.slice();
    rmsnormRef.rmsnorm_backward(dinp, dout, inp, w, rstd, N, C);
    const bInp = t.f32(inp, 'inp'), bW = t.f32(w, 'w'), bOut = t.f32(N * C, 'out'), bR = t.f32(N, 'rstd');
    const bDout = t.f32(dout, 'dout'), bD = t.f32(d0, 'dinp');
    await gpu.scoped('selftest rmsnorm', () => {
      rmsnormOp.rmsnorm_forward(gpu, bOut, bR, bInp, bW, N, C, eps);
      rmsnormOp.rmsnorm_backward(gpu, bD, bDout, bInp, bW, bR, N, C);
    });
    return [
      { check: 'forward rstd', got: await t.readF32(bR, N), ref: rstd, tol: TOL.f32sum },
      { check: 'forward out', got: await t.readF32(bOut, N * C), ref: out, tol: TOL.f32sum },
      { check: 'backward dinp', got: await t.readF32(bD, N * C), ref: dinp, tol: TOL.f32sum },
    ];
  });
}

// rope: both pairings (HF rotate-half, GGUF adjacent pairs), positions up to 8191, Llama-3 scaling on one
for (const style of ['half', 'pairs'] as const) {
  const N = 13, H = 3, HS = 64;
  register('rope', `N=${N} H=${H} HS=${HS} ${style}${style === 'half' ? ' llama3' : ''}`, async (t) => {
    const { gpu } = t;
    const scaling = style === 'half'
      ? { type: 'llama3' as const, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 }
      : null;
    const invFreq = ropeRef.rope_inv_freq(HS, style === 'half' ? 500000 : 10000, scaling);
    const r = rng(400);
    const pos = Uint32Array.from({ length: N }, (_, n) => (n < 4 ? n : n === N - 1 ? 8191 : Math.floor(r() * 2000)));
    const x = rand(N * H * HS, 401), dx = rand(N * H * HS, 402);
    const y = x.slice(), dy = dx.slice();
    ropeRef.rope_forward(y, pos, invFreq, N, H, HS, style);
    ropeRef.rope_backward(dy, pos, invFreq, N, H, HS, style);
    const bX = t.f32(x, 'x'), bDx = t.f32(dx, 'dx'), bPos = t.u32(pos, 'pos'), bF = t.f32(invFreq, 'invfreq');
    await gpu.scoped('selftest rope', () => {
      ropeOp.rope_forward(gpu, bX, bPos, bF, N, H, HS, style);
      ropeOp.rope_backward(gpu, bDx, bPos, bF, N, H, HS, style);
    });
    return [
      { check: 'forward x', got: await t.readF32(bX, N * H * HS), ref: y, tol: TOL.f32 },
      { check: 'backward dx', got: await t.readF32(bDx, N * H * HS), ref: dy, tol: TOL.f32 },
    ];
  });
}

// linear: f32 / q8 / q4 weights dequantized in the kernel; bias; a row slice (rowOffset) of a taller W
for (const { format, bias, rows, off } of [
  { format: 'f32', bias: true, rows: 65, off: 0 },
  { format: 'q8', bias: true, rows: 65, off: 0 },
  { format: 'q4', bias: false, rows: 150, off: 51 },
] as const) {
  const N = 17, IC = 100, OC = 65;
  register('linear', `N=${N} IC=${IC} OC=${OC} ${format}${bias ? ' +bias' : ''}${off ? ` rows ${off}..${off + OC}` : ''}`, async (t) => {
    const { gpu } = t;
    const seed = 500 + rows + off;
    const { q: w, f32: wdq } = t.weight(rand(rows * IC, seed, 0.5), rows, IC, format, 'w');
    const inp = rand(N * IC, seed + 1), dout = rand(N * OC, seed + 2), d0 = rand(N * IC, seed + 4);
    const b = bias ? rand(OC, seed + 3) : null;
    const out = new Float32Array(N * OC);
    linearRef.linear_forward(out, inp, wdq, b, N, IC, OC, off);
    const dinp = d0.slice();
    linearRef.linear_backward(dinp, dout, wdq, N, IC, OC, off);
    const bInp = t.f32(inp, 'inp'), bOut = t.f32(rand(N * OC, seed + 5), 'out'), bB = b ? t.f32(b, 'bias') : null;
    const bDout = t.f32(dout, 'dout'), bD = t.f32(d0, 'dinp');
    await gpu.scoped('selftest linear', () => {
      linearOp.linear_forward(gpu, bOut, bInp, w, bB, N, IC, OC, off);
      linearOp.linear_backward(gpu, bD, bDout, w, N, IC, OC, off);
    });
    return [
      { check: 'forward out', got: await t.readF32(bOut, N * OC), ref: out, tol: TOL.f32sum },
      { check: 'backward dinp', got: await t.readF32(bD, N * IC), ref: dinp, tol: TOL.f32sum },
    ];
  });
}

// linear, f16 weights (two halves per word, unpack2x16float: every adapter) with an odd IC (a pad half,
// the scalar tail) and a slice starting at an odd row; and the f16-compute forward variant (vec4<f16>
// dots, f32 accumulation) — only where the adapter has shader-f16 (elsewhere the case checks nothing).
// Its tolerance: x and w are rounded to f16 (2^-11 relative each) and each 4-term dot is summed in
// f16; the errors are random-signed, max |err| ≈ 2.5e-3 on lavapipe (worst-case bound 3·2^-11·Σ|x·w|
// ≈ 2e-2), so atol 8e-3 / rtol 4e-3 — under the 1e-2 the self-test report allows (TOL.f16 is 2e-2).
for (const { format, compute, IC } of [
  { format: 'f16', compute: 'f32', IC: 99 },
  { format: 'f16', compute: 'f16', IC: 99 },
  { format: 'q8', compute: 'f16', IC: 100 },
] as const) {
  const N = 17, OC = 65, rows = 150, off = 51;
  register('linear', `N=${N} IC=${IC} OC=${OC} ${format} +bias rows ${off}..${off + OC}${compute === 'f16' ? ' compute f16' : ''}`, async (t) => {
    const { gpu } = t;
    if (compute === 'f16' && !gpu.info.features.f16) return [];
    const seed = 550 + IC;
    const { q: w, f32: wdq } = t.weight(rand(rows * IC, seed, 0.5), rows, IC, format, 'w');
    const inp = rand(N * IC, seed + 1), dout = rand(N * OC, seed + 2), d0 = rand(N * IC, seed + 4), b = rand(OC, seed + 3);
    const out = new Float32Array(N * OC);
    linearRef.linear_forward(out, inp, wdq, b, N, IC, OC, off);
    const dinp = d0.slice();
    linearRef.linear_backward(dinp, dout, wdq, N, IC, OC, off);
    const bInp = t.f32(inp, 'inp'), bOut = t.f32(rand(N * OC, seed + 5), 'out'), bB = t.f32(b, 'bias');
    const bDout = t.f32(dout, 'dout'), bD = t.f32(d0, 'dinp');
    await gpu.scoped('selftest linear', () => {
      linearOp.linear_forward(gpu, bOut, bInp, w, bB, N, IC, OC, off, { compute });
      linearOp.linear_backward(gpu, bD, bDout, w, N, IC, OC, off);
    });
    return [
      { check: 'forward out', got: await t.readF32(bOut, N * OC), ref: out, tol: compute === 'f16' ? { atol: 8e-3, rtol: 4e-3 } : TOL.f32sum },
      { check: 'backward dinp', got: await t.readF32(bD, N * IC), ref: dinp, tol: TOL.f32sum },
    ];
  });
}

// linear kernel variants other than the default (src/ops/linear.ts LinearVariant; autotune may pick
// them on this adapter): register tiling 4×4 and 8×4, the one-row matvecs rt1x4 and rt1x8, the coalesced matvecs mv16 and mvsg, the subgroup tiles
// (where subgroups are 8 or 4 wide; else rt8x4 runs), and shared-memory tiling (64×64 and 128×128 tiles,
// K tiles of 16, dequantized while staging) on a shape with several partial tiles, an odd IC (scalar paths) and a slice.
for (const { variant, format, IC } of [
  { variant: 'rt4x4', format: 'q4', IC: 100 },
  { variant: 'rt8x4', format: 'q8', IC: 100 },
  { variant: 'rt1x4', format: 'f16', IC: 100 },
  { variant: 'sg16x32', format: 'q4', IC: 100 },
  { variant: 'sg16x32', format: 'f32', IC: 96 },
  { variant: 'sg1x32', format: 'q4', IC: 100 },
  { variant: 'mv16', format: 'q8', IC: 100 },
  { variant: 'mvsg', format: 'q4', IC: 100 },
  { variant: 'mvsg', format: 'f32', IC: 96 },
  { variant: 'rt1x8', format: 'f32', IC: 96 },
  { variant: 'rt1x8', format: 'q4', IC: 100 },
  { variant: 'sm64', format: 'f32', IC: 99 },
  { variant: 'sm64', format: 'q8', IC: 100 },
  { variant: 'sm64', format: 'f16', IC: 99 },
  { variant: 'sm128', format: 'f32', IC: 99 },
  { variant: 'sm128', format: 'q4', IC: 100 },
  { variant: 'sm128', format: 'f16', IC: 100 },
] as const) {
  const N = 70, OC = 67, rows = 150, off = 51;
  register('linear', `N=${N} IC=${IC} OC=${OC} ${format} +bias rows ${off}..${off + OC} variant ${variant}`, async (t) => {
    const { gpu } = t;
    const seed = 570 + IC;
    const { q: w, f32: wdq } = t.weight(rand(rows * IC, seed, 0.5), rows, IC, format, 'w');
    const inp = rand(N * IC, seed + 1), dout = rand(N * OC, seed + 2), d0 = rand(N * IC, seed + 4), b = rand(OC, seed + 3);
    const out = new Float32Array(N * OC);
    linearRef.linear_forward(out, inp, wdq, b, N, IC, OC, off);
    const dinp = d0.slice();
    linearRef.linear_backward(dinp, dout, wdq, N, IC, OC, off);
    const bInp = t.f32(inp, 'inp'), bOut = t.f32(rand(N * OC, seed + 5), 'out'), bB = t.f32(b, 'bias');
    const bDout = t.f32(dout, 'dout'), bD = t.f32(d0, 'dinp');
    await gpu.scoped('selftest linear', () => {
      linearOp.linear_forward(gpu, bOut, bInp, w, bB, N, IC, OC, off, { variant });
      linearOp.linear_backward(gpu, bD, bDout, w, N, IC, OC, off, { variant });
    });
    return [
      { check: 'forward out', got: await t.readF32(bOut, N * OC), ref: out, tol: TOL.f32sum },
      { check: 'backward dinp', got: await t.readF32(bD, N * IC), ref: dinp, tol: TOL.f32sum },
    ];
  });
}

// linear with its input RMS-normalized (opts.norm: inside the matvecs rt1x8, mv16, mvsg and sg1x32 —
// where those run; elsewhere a separate rmsnorm first), a decode row and three rows, f32 and q8
for (const { N, format, variant } of [
  { N: 1, format: 'f32', variant: 'rt1x8' }, { N: 3, format: 'q8', variant: 'rt1x8' },
  { N: 1, format: 'f32', variant: 'mv16' }, { N: 1, format: 'q8', variant: 'mvsg' }, { N: 3, format: 'q4', variant: 'sg1x32' },
] as const) {
  const IC = 96, OC = 70, eps = 1e-5;
  register('linear', `N=${N} IC=${IC} OC=${OC} ${format} +bias · input RMS-normalized, variant ${variant} · no backward`, async (t) => {
    const { gpu } = t;
    const seed = 610 + N + IC * variant.length;
    const { q: w, f32: wdq } = t.weight(rand(OC * IC, seed, 0.5), OC, IC, format, 'w');
    const inp = rand(N * IC, seed + 1, 2), g = rand(IC, seed + 2), b = rand(OC, seed + 3);
    const x = new Float32Array(N * IC);
    rmsnormRef.rmsnorm_forward(x, new Float32Array(N), inp, g, N, IC, eps);
    const out = new Float32Array(N * OC);
    linearRef.linear_forward(out, x, wdq, b, N, IC, OC);
    const bInp = t.f32(inp, 'inp'), bG = t.f32(g, 'g'), bB = t.f32(b, 'bias'), bOut = t.f32(N * OC, 'out');
    const scratch = t.f32(N * IC, 'scratch'), rstd = t.f32(N, 'rstd');
    await gpu.scoped('selftest linear norm', () => linearOp.linear_forward(gpu, bOut, bInp, w, bB, N, IC, OC, 0, { variant, norm: { weight: bG, eps, scratch, rstd } }));
    return [{ check: 'forward out', got: await t.readF32(bOut, N * OC), ref: out, tol: TOL.f32sum }];
  });
}

// lora: dropout on the input (exact integer hash shared with the twin), all four gradients; the
// adapter's own kernel choice ('auto'), then each kernel forced (src/ops/lora.ts loraTuning)
for (const kernel of ['auto', 'rt', 'sk'] as const) {
  const N = 17, IC = 100, OC = 65, R = 8, scale = 2, p = 0.1, seed = 7;
  register('lora', `N=${N} IC=${IC} OC=${OC} R=${R} dropout ${p}${kernel === 'auto' ? '' : ` kernel ${kernel}`}`, async (t) => {
    const { gpu } = t;
    const keep = loraOp.loraTuning.kernel;
    loraOp.loraTuning.kernel = kernel;
    const inp = rand(N * IC, 600), A = loraRef.lora_init_A(R, IC, 601), B = rand(OC * R, 602, 0.1); // B ≠ 0: exercise dA, dinp
    const out0 = rand(N * OC, 603), dout = rand(N * OC, 604);
    const dinp0 = rand(N * IC, 605), dA0 = rand(R * IC, 606), dB0 = rand(OC * R, 607);
    const out = out0.slice(), h = new Float32Array(N * R), dh = new Float32Array(N * R);
    loraRef.lora_forward(out, h, inp, A, B, N, IC, OC, R, scale, p, seed);
    const dinp = dinp0.slice(), dA = dA0.slice(), dB = dB0.slice();
    loraRef.lora_backward(dinp, dA, dB, dh, dout, inp, A, B, h, N, IC, OC, R, scale, p, seed);
    const bInp = t.f32(inp, 'inp'), bA = t.f32(A, 'A'), bB = t.f32(B, 'B'), bOut = t.f32(out0, 'out'), bH = t.f32(N * R, 'h');
    const bDout = t.f32(dout, 'dout'), bDinp = t.f32(dinp0, 'dinp'), bDA = t.f32(dA0, 'dA'), bDB = t.f32(dB0, 'dB'), bDh = t.f32(N * R, 'dh');
    try {
      await gpu.scoped('selftest lora', () => {
        loraOp.lora_forward(gpu, bOut, bH, bInp, bA, bB, N, IC, OC, R, scale, p, seed);
        loraOp.lora_backward(gpu, bDinp, bDA, bDB, bDh, bDout, bInp, bA, bB, bH, N, IC, OC, R, scale, p, seed);
      });
    } finally {
      loraOp.loraTuning.kernel = keep;
    }
    return [
      { check: 'forward h', got: await t.readF32(bH, N * R), ref: h, tol: TOL.f32sum },
      { check: 'forward out', got: await t.readF32(bOut, N * OC), ref: out, tol: TOL.f32sum },
      { check: 'backward dA', got: await t.readF32(bDA, R * IC), ref: dA, tol: TOL.f32sum },
      { check: 'backward dB', got: await t.readF32(bDB, OC * R), ref: dB, tol: TOL.f32sum },
      { check: 'backward dinp', got: await t.readF32(bDinp, N * IC), ref: dinp, tol: TOL.f32sum },
    ];
  });
}

// attention: grouped-query (NH = 2·NKV), causal, padding on both sides of the batch rows (a query
// whose visible keys are all padding gets 0), T past one tile; the adapter's own choice ('auto'),
// then the plain, the wide (8 lanes per row) and the split (dk/dv per query head) forms forced
// (src/ops/attention.ts attentionTuning)
for (const form of ['auto', 'plain', 'wide', 'split'] as const) {
  const B = 2, T = 21, NH = 4, NKV = 2, HS = 32;
  register('attention', `B=${B} T=${T} NH=${NH} NKV=${NKV} HS=${HS} padded${form === 'auto' ? '' : ` ${form}`}`, async (t) => {
    const { gpu } = t;
    const N = B * T, nq = N * NH * HS, nk = N * NKV * HS, nl = B * NH * T;
    const valid = new Uint32Array(N).fill(1);
    for (let s = 0; s < 3; s++) valid[s] = 0; // row 0: left padding
    for (let s = T - 5; s < T; s++) valid[T + s] = 0; // row 1: right padding
    const q = rand(nq, 700, 1.5), k = rand(nk, 701, 1.5), v = rand(nk, 702), dout = rand(nq, 703);
    const dq0 = rand(nq, 704), dk0 = rand(nk, 705), dv0 = rand(nk, 706);
    const out = new Float32Array(nq), lse = new Float32Array(nl);
    attentionRef.attention_forward(out, lse, q, k, v, valid, B, T, NH, NKV, HS);
    const dq = dq0.slice(), dk = dk0.slice(), dv = dv0.slice();
    attentionRef.attention_backward(dq, dk, dv, dout, q, k, v, out, lse, valid, B, T, NH, NKV, HS);
    const bQ = t.f32(q, 'q'), bK = t.f32(k, 'k'), bV = t.f32(v, 'v'), bValid = t.u32(valid, 'valid');
    const bOut = t.f32(rand(nq, 707), 'out'), bLse = t.f32(nl, 'lse'), bDout = t.f32(dout, 'dout');
    const bDq = t.f32(dq0, 'dq'), bDk = t.f32(dk0, 'dk'), bDv = t.f32(dv0, 'dv');
    const keep = { ...attentionOp.attentionTuning };
    Object.assign(attentionOp.attentionTuning, { forward: form, dq: form, dkv: form });
    try {
      await gpu.scoped('selftest attention', () => {
        attentionOp.attention_forward(gpu, bOut, bLse, bQ, bK, bV, bValid, B, T, NH, NKV, HS);
        attentionOp.attention_backward(gpu, bDq, bDk, bDv, bDout, bQ, bK, bV, bOut, bLse, bValid, B, T, NH, NKV, HS);
      });
    } finally {
      Object.assign(attentionOp.attentionTuning, keep);
    }
    return [
      { check: 'forward out', got: await t.readF32(bOut, nq), ref: out, tol: TOL.f32sum },
      { check: 'forward lse', got: await t.readF32(bLse, nl), ref: lse, tol: TOL.f32sum },
      { check: 'backward dq', got: await t.readF32(bDq, nq), ref: dq, tol: TOL.f32sum },
      { check: 'backward dk', got: await t.readF32(bDk, nk), ref: dk, tol: TOL.f32sum },
      { check: 'backward dv', got: await t.readF32(bDv, nk), ref: dv, tol: TOL.f32sum },
    ];
  });
}

// attention_decode (inference only: no backward — the KV-cache path is never differentiated): a
// prefill chunk (GQA, HS not dividing the workgroup, cache past one tile of keys) and a decode
// step (MHA); cache rows past the last visible position hold NaN and must never be read
for (const { NQ, t0, NH, NKV, HS } of [
  { NQ: 5, t0: 37, NH: 6, NKV: 2, HS: 40 },
  { NQ: 1, t0: 70, NH: 4, NKV: 4, HS: 64 },
] as const) {
  register('attention_decode', `NQ=${NQ} t0=${t0} NH=${NH} NKV=${NKV} HS=${HS} · no backward`, async (t) => {
    const { gpu } = t;
    const KVD = NKV * HS, T = t0 + NQ, maxT = T + 3, seed = 900 + HS;
    const q = rand(NQ * NH * HS, seed, 1.5), kc = rand(maxT * KVD, seed + 1, 1.5), vc = rand(maxT * KVD, seed + 2);
    kc.fill(NaN, T * KVD);
    vc.fill(NaN, T * KVD);
    const out = new Float32Array(NQ * NH * HS);
    attentionDecodeRef.attention_decode_forward(out, q, kc, vc, NQ, t0, NH, NKV, HS);
    const bQ = t.f32(q, 'q'), bKc = t.f32(kc, 'kc'), bVc = t.f32(vc, 'vc'), bOut = t.f32(rand(NQ * NH * HS, seed + 3), 'out');
    await gpu.scoped('selftest attention_decode', () => {
      attentionDecodeOp.attention_decode_forward(gpu, bOut, bQ, bKc, bVc, NQ, t0, NH, NKV, HS);
    });
    return [{ check: 'forward out', got: await t.readF32(bOut, NQ * NH * HS), ref: out, tol: TOL.f32sum }];
  });
}

// rope_qkv (inference only: no backward): rows [q | k | v] split into q (rotated) and the cache
// rows t0.. (k rotated, v copied), GQA, both pairings
for (const style of ['half', 'pairs'] as const) {
  const N = 3, NH = 9, NKV = 3, HS = 64, t0 = 70, T = t0 + N + 2, QD = NH * HS, KVD = NKV * HS;
  register('rope_qkv', `N=${N} NH=${NH} NKV=${NKV} HS=${HS} t0=${t0} ${style} · no backward`, async (t) => {
    const { gpu } = t;
    const invFreq = ropeRef.rope_inv_freq(HS, 10000, null);
    const pos = Uint32Array.from({ length: N }, (_, n) => t0 + n);
    const qkv = rand(N * (QD + 2 * KVD), 960, 2), kc = rand(T * KVD, 961), vc = rand(T * KVD, 962);
    const bKc = t.f32(kc, 'kc'), bVc = t.f32(vc, 'vc'), bQkv = t.f32(qkv, 'qkv'), bQ = t.f32(N * QD, 'q');
    const bPos = t.u32(pos, 'pos'), bF = t.f32(invFreq, 'invfreq');
    const q = new Float32Array(N * QD);
    ropeRef.rope_qkv_forward(q, kc, vc, qkv, pos, invFreq, N, t0, NH, NKV, HS, style);
    await gpu.scoped('selftest rope_qkv', () => ropeOp.rope_qkv_forward(gpu, bQ, bKc, bVc, bQkv, bPos, bF, N, t0, NH, NKV, HS, style));
    return [
      { check: 'forward q', got: await t.readF32(bQ, N * QD), ref: q, tol: TOL.f32 },
      { check: 'forward kc', got: await t.readF32(bKc, T * KVD), ref: kc, tol: TOL.f32 },
      { check: 'forward vc', got: await t.readF32(bVc, T * KVD), ref: vc, tol: { atol: 0, rtol: 0 } },
    ];
  });
}

// kv_append (inference only: no backward): a prefill chunk then a decode row written into the
// caches at rows t0..; every other row keeps its value (exact copy)
{
  const maxT = 29, KVD = 40, steps = [{ NQ: 7, t0: 13 }, { NQ: 1, t0: 20 }];
  register('kv_append', `maxT=${maxT} KVD=${KVD} rows ${steps.map((x) => (x.NQ > 1 ? `${x.t0}..${x.t0 + x.NQ - 1}` : `${x.t0}`)).join(' then ')} · no backward`, async (t) => {
    const { gpu } = t;
    const kc = rand(maxT * KVD, 950), vc = rand(maxT * KVD, 951);
    const bKc = t.f32(kc, 'kc'), bVc = t.f32(vc, 'vc');
    for (const [i, { NQ, t0 }] of steps.entries()) {
      const k = rand(NQ * KVD, 952 + 2 * i), v = rand(NQ * KVD, 953 + 2 * i);
      kvAppendRef.kv_append_forward(kc, vc, k, v, NQ, t0, KVD);
      const bK = t.f32(k, `k${i}`), bV = t.f32(v, `v${i}`);
      await gpu.scoped('selftest kv_append', () => kvAppendOp.kv_append_forward(gpu, bKc, bVc, bK, bV, NQ, t0, KVD));
    }
    const exact = { atol: 0, rtol: 0 };
    return [
      { check: 'forward kc', got: await t.readF32(bKc, maxT * KVD), ref: kc, tol: exact },
      { check: 'forward vc', got: await t.readF32(bVc, maxT * KVD), ref: vc, tol: exact },
    ];
  });
}

// argmax (greedy decoding; inference only: no backward): rows longer than a workgroup, a tie
// between far-apart maxima (lowest index wins), NaN that must never win, an all-NaN row (→ 0),
// a row of −Infinity but one value; once in one pass (V 1001) and once split (V 49152: a SmolLM2
// vocabulary, argmax_partial + argmax_final, the tie and the NaNs across chunks)
for (const V of [1001, 49152]) {
  const N = 6;
  register('argmax', `N=${N} V=${V} ties NaN${V >= argmaxOp.SPLIT_MIN_V ? ' split' : ''} · no backward`, async (t) => {
    const { gpu } = t;
    const x = rand(N * V, 970, 4);
    x[7] = x[V - 3] = 9; // row 0: tie → 7
    x.fill(NaN, V, V + (V >> 1)); // row 1: NaN in the first half
    x[V + V - 101] = 8;
    x.fill(NaN, 2 * V, 3 * V); // row 2: all NaN → 0
    x.fill(-Infinity, 3 * V, 4 * V); // row 3: −Infinity but one
    x[3 * V + V - 224] = -50;
    const ids = new Uint32Array(N);
    argmaxRef.argmax_forward(ids, x, N, V);
    const bX = t.f32(x, 'x'), bOut = t.u32(new Uint32Array(N).fill(0xdeadbeef), 'out');
    const keep = argmaxOp.argmaxTuning.split;
    argmaxOp.argmaxTuning.split = V >= argmaxOp.SPLIT_MIN_V ? 'on' : 'auto'; // the split form on every adapter
    try {
      await gpu.scoped('selftest argmax', () => argmaxOp.argmax_forward(gpu, bOut, bX, N, V));
    } finally {
      argmaxOp.argmaxTuning.split = keep;
    }
    return [{ check: 'forward ids', got: await gpu.readU32(bOut, N), ref: ids, tol: { atol: 0, rtol: 0 } }];
  });
}

// swiglu_rows (inference: no backward): gate and up side by side in each row, by quads (F % 4 == 0)
{
  const N = 3, F = 384;
  register('swiglu_rows', `N=${N} F=${F} · no backward`, async (t) => {
    const { gpu } = t;
    const gu = rand(N * 2 * F, 6, 4), out = new Float32Array(N * F);
    swigluRef.swiglu_rows_forward(out, gu, N, F);
    const bGu = t.f32(gu, 'gu'), bOut = t.f32(N * F, 'out');
    await gpu.scoped('selftest swiglu_rows', () => swigluOp.swiglu_rows_forward(gpu, bOut, bGu, N, F));
    return [{ check: 'forward out', got: await t.readF32(bOut, N * F), ref: out, tol: TOL.f32 }];
  });
}

// swiglu: elementwise, n odd and past one workgroup
for (const n of [4099]) {
  register('swiglu', `n=${n}`, async (t) => {
    const { gpu } = t;
    const gate = rand(n, 1, 4), up = rand(n, 2), dout = rand(n, 3);
    const dg0 = rand(n, 4), du0 = rand(n, 5); // non-zero: backward must add
    const out = new Float32Array(n);
    swigluRef.swiglu_forward(out, gate, up, n);
    const dg = dg0.slice(), du = du0.slice();
    swigluRef.swiglu_backward(dg, du, dout, gate, up, n);
    const bGate = t.f32(gate, 'gate'), bUp = t.f32(up, 'up'), bOut = t.f32(n, 'out');
    const bDout = t.f32(dout, 'dout'), bDg = t.f32(dg0, 'dgate'), bDu = t.f32(du0, 'dup');
    await gpu.scoped('selftest swiglu', () => {
      swigluOp.swiglu_forward(gpu, bOut, bGate, bUp, n);
      swigluOp.swiglu_backward(gpu, bDg, bDu, bDout, bGate, bUp, n);
    });
    return [
      { check: 'forward out', got: await t.readF32(bOut, n), ref: out, tol: TOL.f32 },
      { check: 'backward dgate', got: await t.readF32(bDg, n), ref: dg, tol: TOL.f32 },
      { check: 'backward dup', got: await t.readF32(bDu, n), ref: du, tol: TOL.f32 },
    ];
  });
}

// xent: cross-entropy fused with a q8 lm_head in vocab chunks (a partial last chunk), one ignored
// target, some targets at the argmax (correct = 1)
{
  const N = 13, C = 64, V = 1000, chunk = 256;
  register('xent', `N=${N} C=${C} V=${V} chunk=${chunk} q8`, async (t) => {
    const { gpu } = t;
    const inp = rand(N * C, 800);
    const { q: w, f32: wd } = t.weight(rand(V * C, 801, 0.5), V, C, 'q8', 'lm_head');
    const targets = new Uint32Array(N);
    const r = rng(802);
    for (let n = 0; n < N; n++) targets[n] = Math.floor(r() * V);
    for (let n = 0; n < N; n += 3) targets[n] = argmaxRow(inp, wd, n, C, V); // hits
    targets[2] = xentRef.XENT_IGNORE;
    const dloss = rand(N, 803), d0 = rand(N * C, 804);
    const losses = new Float32Array(N), lse = new Float32Array(N), correct = new Float32Array(N);
    xentRef.xent_forward(losses, lse, correct, inp, wd, targets, N, C, V, chunk);
    const dinp = d0.slice();
    xentRef.xent_backward(dinp, inp, wd, targets, lse, dloss, N, C, V, chunk);
    const bInp = t.f32(inp, 'inp'), bT = t.u32(targets, 'targets'), bDl = t.f32(dloss, 'dloss');
    const bL = t.f32(N, 'losses'), bLse = t.f32(N, 'lse'), bC = t.f32(N, 'correct'), bD = t.f32(d0, 'dinp');
    await gpu.scoped('selftest xent', () => {
      xentOp.xent_forward(gpu, bL, bLse, bC, bInp, w, bT, N, C, V, chunk);
      xentOp.xent_backward(gpu, bD, bInp, w, bT, bLse, bDl, N, C, V, chunk);
    });
    return [
      { check: 'forward losses', got: await t.readF32(bL, N), ref: losses, tol: TOL.f32sum },
      { check: 'forward lse', got: await t.readF32(bLse, N), ref: lse, tol: TOL.f32sum },
      { check: 'forward correct', got: await t.readF32(bC, N), ref: correct, tol: { atol: 0, rtol: 0 } },
      { check: 'backward dinp', got: await t.readF32(bD, N * C), ref: dinp, tol: TOL.f32sum },
    ];
  });
}

// adamw + global_norm_sq: two steps with clipping active (the clip factor is computed on the GPU)
for (const n of [4099]) {
  register('adamw', `n=${n} steps=2 clip`, async (t) => {
    const { gpu } = t;
    const lr = 3e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
    const p = rand(n, 200), m = new Float32Array(n), v = new Float32Array(n);
    const bP = t.f32(p, 'p'), bM = t.f32(n, 'm'), bV = t.f32(n, 'v'), bG = t.f32(n, 'g'), bNs = t.f32(1, 'normsq');
    const ns = new Float32Array(1);
    const checks: Check[] = [];
    for (let step = 1; step <= 2; step++) {
      const g = rand(n, 210 + step, 0.05 * step);
      adamwRef.global_norm_sq(ns, g, n);
      const maxNorm = 0.3 * Math.sqrt(ns[0]); // clipping active
      adamwRef.adamw_step(p, g, m, v, ns, n, lr, b1, b2, eps, wd, step, maxNorm);
      gpu.write(bG, g);
      await gpu.scoped('selftest adamw', () => {
        adamwOp.global_norm_sq(gpu, bNs, bG, n);
        adamwOp.adamw_step(gpu, bP, bG, bM, bV, bNs, n, lr, b1, b2, eps, wd, step, maxNorm);
      });
      if (step === 1) checks.push({ check: 'global_norm_sq', got: await t.readF32(bNs, 1), ref: ns.slice(), tol: TOL.f32sum });
    }
    checks.push(
      { check: 'step params', got: await t.readF32(bP, n), ref: p, tol: TOL.f32 },
      { check: 'step m', got: await t.readF32(bM, n), ref: m, tol: TOL.f32 },
      { check: 'step v', got: await t.readF32(bV, n), ref: v, tol: TOL.f32 },
    );
    return checks;
  });
}

/** argmax over v of inp[n]·w[v] (f64). */
function argmaxRow(inp: Float32Array, w: Float32Array, n: number, C: number, V: number): number {
  let best = -Infinity, a = 0;
  for (let v = 0; v < V; v++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += inp[n * C + c] * w[v * C + c];
    if (s > best) {
      best = s;
      a = v;
    }
  }
  return a;
}

// ---- running --------------------------------------------------------------------------------

/** The cases that would run (op + shape), in order. */
export function selftestPlan(filter?: string): Array<{ op: string; shape: string }> {
  return CASES.filter((c) => !filter || c.op.includes(filter)).map(({ op, shape }) => ({ op, shape }));
}

export interface SelftestOptions {
  /** only ops whose name contains this */
  filter?: string;
}

/**
 * Run every case on `gpu`; `onResult` gets each result as soon as its case ends (for streaming).
 * A case that throws yields one failing result carrying the error; later cases still run.
 */
export async function runSelftest(
  gpu: Gpu,
  onResult?: (r: SelftestResult) => void,
  opts: SelftestOptions = {},
): Promise<SelftestResult[]> {
  const results: SelftestResult[] = [];
  const emit = (r: SelftestResult) => {
    results.push(r);
    onResult?.(r);
  };
  for (const c of CASES) {
    if (opts.filter && !c.op.includes(opts.filter)) continue;
    const t = new Scratch(gpu);
    const t0 = performance.now();
    try {
      const checks = await c.run(t);
      const ms = performance.now() - t0;
      for (const k of checks) {
        const cl = closeness(k.got, k.ref, k.tol.atol, k.tol.rtol);
        emit({
          op: c.op, check: k.check, shape: c.shape,
          maxAbs: cl.maxAbs, maxRel: cl.maxRel, atol: k.tol.atol, rtol: k.tol.rtol,
          pass: cl.ok, worst: cl.worst, ms,
        });
      }
    } catch (e) {
      emit({
        op: c.op, check: 'error', shape: c.shape, maxAbs: NaN, maxRel: NaN, atol: 0, rtol: 0,
        pass: false, worst: -1, error: (e as Error)?.message ?? String(e), ms: performance.now() - t0,
      });
    } finally {
      try {
        t.dispose();
      } catch {
        // a lost device cannot destroy buffers; the error is already reported
      }
    }
  }
  return results;
}
