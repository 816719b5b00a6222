// Launcher for shaders/kv_append.wgsl; twin: src/ref/kv_append.ts.
// Legend: NQ new rows at positions t0 .. t0+NQ−1, KVD = NKV*HS. k, v (NQ, KVD); kc, vc (maxT, KVD).
import code from '../../shaders/kv_append.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { grid1d } from './util.ts';

/** kc[t0+n] = k[n], vc[t0+n] = v[n] (rows of KVD floats), n < NQ — one dispatch for both caches. */
export function kv_append_forward(gpu: Gpu, kc: Buf, vc: Buf, k: Buf, v: Buf, NQ: number, t0: number, KVD: number): void {
  const n = NQ * KVD;
  if (n === 0) return;
  gpu.dispatch(gpu.pipeline('kv_append', code, 'kv_append_forward'), uniforms([[n, 'u32'], [t0 * KVD, 'u32']]), [kc, vc, k, v], grid1d(gpu, n, 256));
}
