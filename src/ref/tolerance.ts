// The one tolerance rule: |got − ref| ≤ atol + rtol·|ref| for every element; non-finite fails.
// Used by the tests (test/util.ts) and by `whittle selftest` (src/selftest.ts).

export const TOL = {
  f32: { atol: 1e-5, rtol: 1e-4 },
  /** reductions over long rows (matmuls, attention, cross-entropy) */
  f32sum: { atol: 1e-4, rtol: 1e-3 },
  f16: { atol: 2e-2, rtol: 2e-2 },
  /** central finite differences in float64 */
  fd: { atol: 1e-6, rtol: 1e-4 },
};

export interface Closeness {
  ok: boolean;
  worst: number;
  maxAbs: number;
  maxRel: number;
}

export function closeness(got: ArrayLike<number>, ref: ArrayLike<number>, atol: number, rtol: number): Closeness {
  let worst = -1, worstExcess = -Infinity, maxAbs = 0, maxRel = 0;
  for (let i = 0; i < ref.length; i++) {
    const g = got[i], r = ref[i];
    const d = Math.abs(g - r);
    const excess = !Number.isFinite(g) || !Number.isFinite(r) ? Infinity : d - (atol + rtol * Math.abs(r));
    if (Number.isFinite(d)) {
      maxAbs = Math.max(maxAbs, d);
      maxRel = Math.max(maxRel, d / Math.max(Math.abs(r), 1e-12));
    }
    if (excess > worstExcess) { worstExcess = excess; worst = i; }
  }
  return { ok: got.length === ref.length && worstExcess <= 0, worst, maxAbs, maxRel };
}
