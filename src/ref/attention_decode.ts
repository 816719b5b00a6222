// CPU twin of shaders/attention_decode.wgsl: attention of NQ new query rows (positions
// t0 .. t0+NQ−1 of one sequence) against one layer's KV cache.
// Legend: NQ query rows, NH heads, NKV kv heads (head h uses kv head h / (NH/NKV)), HS head size,
// KVD = NKV*HS, scale = 1/sqrt(HS). q, out (NQ, NH*HS); kc, vc (≥ t0+NQ, KVD).
import type { Vec } from './types.ts';

/** out (NQ, NH*HS) = softmax over cache rows s ≤ t0+n of (q[n]·kc[s]·scale), times vc — overwrites. */
export function attention_decode_forward(out: Vec, q: Vec, kc: Vec, vc: Vec, NQ: number, t0: number, NH: number, NKV: number, HS: number): void {
  const G = NH / NKV, scale = 1 / Math.sqrt(HS), KVD = NKV * HS;
  const sc = new Float64Array(t0 + NQ);
  for (let n = 0; n < NQ; n++) {
    const pos = t0 + n;
    for (let h = 0; h < NH; h++) {
      const qo = (n * NH + h) * HS, ko = Math.floor(h / G) * HS;
      let m = -Infinity;
      for (let s = 0; s <= pos; s++) {
        let x = 0;
        for (let d = 0; d < HS; d++) x += q[qo + d] * kc[s * KVD + ko + d];
        sc[s] = x * scale;
        if (sc[s] > m) m = sc[s];
      }
      let l = 0;
      for (let s = 0; s <= pos; s++) l += (sc[s] = Math.exp(sc[s] - m));
      for (let d = 0; d < HS; d++) {
        let o = 0;
        for (let s = 0; s <= pos; s++) o += sc[s] * vc[s * KVD + ko + d];
        out[qo + d] = o / l;
      }
    }
  }
}
