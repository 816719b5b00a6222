// CPU twin of shaders/embedding.wgsl. Legend: N rows (B*T), C hidden, V vocab.
// wte here is the dequantized f32 table (V,C) (src/model/quant.ts dequantize()).
import type { IVec, Vec } from './types.ts';

/** out (N,C) = wte (V,C)[ids[n]]; ids ≥ V (V = wte.length / C) give zero rows. */
export function embedding_forward(out: Vec, ids: IVec, wte: Vec, N: number, C: number): void {
  const V = Math.floor(wte.length / C);
  for (let n = 0; n < N; n++) {
    const v = ids[n];
    for (let c = 0; c < C; c++) out[n * C + c] = v < V ? wte[v * C + c] : 0;
  }
}

/** dwte (V,C) += Σ_{n: ids[n]=v} dout (N,C)[n]; ids ≥ V are skipped. */
export function embedding_backward(dwte: Vec, dout: Vec, ids: IVec, N: number, C: number, V: number): void {
  for (let n = 0; n < N; n++) {
    const v = ids[n];
    if (v >= V) continue;
    for (let c = 0; c < C; c++) dwte[v * C + c] += dout[n * C + c];
  }
}
