// Test helpers: the one tolerance rule, a shared GPU, seeded random data, finite differences.
// The GPU tests run on real WebGPU (Dawn through npm `webgpu`); without an adapter they FAIL.
import assert from 'node:assert/strict';
import { acquireGpu, type Gpu } from '../src/gpu/device.ts';

export type Vec = Float32Array | Float64Array;

import { closeness, TOL } from '../src/ref/tolerance.ts';
import { mulberry32 } from '../src/rng.ts';
export { closeness, TOL };

export function assertClose(name: string, got: ArrayLike<number>, ref: ArrayLike<number>, tol: { atol: number; rtol: number } = TOL.f32): void {
  assert.equal(got.length, ref.length, `${name}: length ${got.length} ≠ reference length ${ref.length}`);
  const c = closeness(got, ref, tol.atol, tol.rtol);
  if (!c.ok) {
    const head = (a: ArrayLike<number>) => Array.from({ length: Math.min(6, a.length) }, (_, i) => a[i].toPrecision(6)).join(', ');
    assert.fail(
      `${name}: mismatch at index ${c.worst}: got ${got[c.worst]} vs ref ${ref[c.worst]} ` +
        `(atol ${tol.atol}, rtol ${tol.rtol}; max abs err ${c.maxAbs.toExponential(3)})\n  got: ${head(got)}\n  ref: ${head(ref)}`,
    );
  }
}

let gpuPromise: Promise<Gpu> | null = null;
/** The shared test GPU. Throws (fails the test) with a how-to when no adapter can be had. */
export function testGpu(): Promise<Gpu> {
  if (!gpuPromise) {
    gpuPromise = acquireGpu().catch((e) => {
      throw new Error(`GPU tests need a WebGPU adapter and none could be had: ${(e as Error).message}`);
    });
  }
  return gpuPromise;
}

/** Seeded PRNG (mulberry32) for test data. */
export { mulberry32 as rng } from '../src/rng.ts';

/** n uniform values in [-scale, scale) as Float32Array. */
export function randn32(n: number, seed: number, scale = 1): Float32Array {
  const r = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

export function to64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a as ArrayLike<number>);
}

/**
 * Central finite differences of a scalar loss f(x) w.r.t. x (float64), at up to `maxProbe` indices.
 * Returns [indices, numeric gradients].
 */
export function finiteDiff(f: () => number, x: Float64Array, maxProbe = 64, h = 1e-6): [number[], number[]] {
  const idx: number[] = [];
  const step = Math.max(1, Math.floor(x.length / maxProbe));
  for (let i = 0; i < x.length; i += step) idx.push(i);
  const g = idx.map((i) => {
    const old = x[i];
    x[i] = old + h;
    const fp = f();
    x[i] = old - h;
    const fm = f();
    x[i] = old;
    return (fp - fm) / (2 * h);
  });
  return [idx, g];
}

/** Dot product of a with a fixed random projection: turns an output tensor into a scalar loss. */
export function project(a: ArrayLike<number>, w: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * w[i];
  return s;
}
