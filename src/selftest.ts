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
// Legend: N rows (B*T), C hidden, F ffn size, n flat length.
import type { Gpu } from './gpu/device.ts';
import { closeness, TOL } from './ref/tolerance.ts';
import * as swigluOp from './ops/swiglu.ts';
import * as swigluRef from './ref/swiglu.ts';
import * as rmsnormOp from './ops/rmsnorm.ts';
import * as rmsnormRef from './ref/rmsnorm.ts';
import * as adamwOp from './ops/adamw.ts';
import * as adamwRef from './ref/adamw.ts';

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

  readF32(b: GPUBuffer, n: number): Promise<Float32Array> {
    return this.gpu.readF32(b, n);
  }

  dispose(): void {
    for (const b of this.bufs) this.gpu.destroy(b);
    this.bufs = [];
  }
}

/** Seeded PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
