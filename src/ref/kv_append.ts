// CPU twin of shaders/kv_append.wgsl: write a chunk's k, v (NQ, KVD) into cache rows t0 .. t0+NQ−1
// of one layer's kc, vc (maxT, KVD).
import type { Vec } from './types.ts';

/** kc[t0+n] = k[n], vc[t0+n] = v[n] for n < NQ (rows of KVD floats). */
export function kv_append_forward(kc: Vec, vc: Vec, k: Vec, v: Vec, NQ: number, t0: number, KVD: number): void {
  for (let i = 0; i < NQ * KVD; i++) {
    kc[t0 * KVD + i] = k[i];
    vc[t0 * KVD + i] = v[i];
  }
}
