// Launcher for shaders/attention_decode.wgsl; twin: src/ref/attention_decode.ts.
// Attention of NQ new query rows (positions t0 .. t0+NQ−1 of one sequence) against one layer's KV
// cache: the decode step (NQ = 1) and prefill chunks (NQ > 1, rows already appended by kv_append).
// Legend: NQ query rows, NH heads, NKV kv heads, HS head size (≤ 128), KVD = NKV*HS.
// q, out (NQ, NH*HS); kc, vc (≥ t0+NQ rows, KVD).
import code from '../../shaders/attention_decode.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { need } from './util.ts';

const MAX_HS = 128;
/** Threads per workgroup = keys per tile (WG in the shader); HS ≤ 4·WG. Tests may change it. */
export const attentionDecodeTuning = { wg: 32 };

/** out (NQ, NH*HS) = softmax(q·kcᵀ/sqrt(HS) over cache rows s ≤ t0+n)·vc — overwrites. */
export function attention_decode_forward(gpu: Gpu, out: Buf, q: Buf, kc: Buf, vc: Buf, NQ: number, t0: number, NH: number, NKV: number, HS: number): void {
  const wg = attentionDecodeTuning.wg;
  need(HS >= 1 && HS <= MAX_HS && HS <= 4 * wg, `attention_decode: head size ${HS} in 1..${Math.min(MAX_HS, 4 * wg)}`);
  need(NKV >= 1 && NH % NKV === 0, `attention_decode: NH (${NH}) a multiple of NKV (${NKV})`);
  need(t0 >= 0 && Number.isInteger(t0), `attention_decode: t0 (${t0}) a non-negative integer`);
  if (NQ === 0) return;
  const maxG = gpu.info.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  need(NH <= maxG && NQ <= maxG, `attention_decode: NH (${NH}) and NQ (${NQ}) ≤ ${maxG} workgroups`);
  const u = uniforms([[NQ, 'u32'], [t0, 'u32'], [NH, 'u32'], [NKV, 'u32'], [1 / Math.sqrt(HS), 'f32']]);
  gpu.dispatch(gpu.pipeline('attention_decode', code, 'attention_decode_forward', { HS, WG: attentionDecodeTuning.wg }), u, [out, q, kc, vc], [NH, NQ]);
}
