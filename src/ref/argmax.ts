// CPU twin of shaders/argmax.wgsl: index of the largest value of each row (greedy decoding).
// Legend: N rows, V vocab. Ties go to the lowest index; NaN never wins; an all-NaN row gives 0.
import type { IVec, Vec } from './types.ts';

/** out (N) = argmax_v inp[n, v] over inp (N, V). */
export function argmax_forward(out: IVec, inp: Vec | ArrayLike<number>, N: number, V: number): void {
  for (let n = 0; n < N; n++) {
    let best = 0, idx = -1;
    for (let v = 0; v < V; v++) {
      const x = inp[n * V + v];
      if (x === x && (idx < 0 || x > best)) {
        best = x;
        idx = v;
      }
    }
    out[n] = Math.max(idx, 0);
  }
}
