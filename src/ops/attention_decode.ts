// Launcher for shaders/attention_decode.wgsl; twin: src/ref/attention_decode.ts.
// Attention of NQ new query rows (positions t0 .. t0+NQ−1 of one sequence) against one layer's KV
// cache: the decode step (NQ = 1) and prefill chunks (NQ > 1, rows already appended by kv_append).
// Legend: NQ query rows, NH heads, NKV kv heads, HS head size (≤ 128), KVD = NKV*HS.
// q, out (NQ, NH*HS); kc, vc (≥ t0+NQ rows, KVD).
import code from '../../shaders/attention_decode.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import { need, preprocess, unrollLoops } from './util.ts';

const MAX_HS = 128;
const codeV4 = preprocess(code, { V4: true }), codeScalar = preprocess(code, { V4: false });
/** The module for head size HS: V4 where HS % 4 == 0, its quad loops unrolled (HQ = ceil(HS/4)). */
const sources = new Map<number, string>();
function source(HS: number): string {
  let s = sources.get(HS);
  if (!s) sources.set(HS, (s = unrollLoops(HS % 4 === 0 ? codeV4 : codeScalar, { HQ: Math.ceil(HS / 4) })));
  return s;
}
/**
 * Which entry point runs and its workgroup size (tests may change these):
 * - split (default): attention_decode_split, no barrier inside the key loop; splitWg threads per
 *   (head, query) — 0 = auto: 8 for HS ≤ 32, else 16 (fastest measured on lavapipe; a real GPU
 *   would want more).
 * - !split: attention_decode_forward, tiles of wg keys (HS ≤ 4·wg), 3 barriers per tile.
 */
export const attentionDecodeTuning = { split: true, splitWg: 0, wg: 32 };

/** out (NQ, NH*HS) = softmax(q·kcᵀ/sqrt(HS) over cache rows s ≤ t0+n)·vc — overwrites. */
export function attention_decode_forward(gpu: Gpu, out: Buf, q: Buf, kc: Buf, vc: Buf, NQ: number, t0: number, NH: number, NKV: number, HS: number): void {
  const { split } = attentionDecodeTuning;
  const wg = split ? attentionDecodeTuning.splitWg || (HS <= 32 ? 8 : 16) : attentionDecodeTuning.wg;
  need(HS >= 1 && HS <= MAX_HS && (split || HS <= 4 * wg), `attention_decode: head size ${HS} in 1..${split ? MAX_HS : Math.min(MAX_HS, 4 * wg)}`);
  need(NKV >= 1 && NH % NKV === 0, `attention_decode: NH (${NH}) a multiple of NKV (${NKV})`);
  need(t0 >= 0 && Number.isInteger(t0), `attention_decode: t0 (${t0}) a non-negative integer`);
  if (NQ === 0) return;
  const maxG = gpu.info.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  need(NH <= maxG && NQ <= maxG, `attention_decode: NH (${NH}) and NQ (${NQ}) ≤ ${maxG} workgroups`);
  const u = uniforms([[NQ, 'u32'], [t0, 'u32'], [NH, 'u32'], [NKV, 'u32'], [1 / Math.sqrt(HS), 'f32']]);
  const entry = split ? 'attention_decode_split' : 'attention_decode_forward';
  // per head size: the cache read by quads where HS % 4 == 0, the quad loops unrolled
  gpu.dispatch(gpu.pipeline(`attention_decode${HS % 4 === 0 ? '_v4' : ''}`, source(HS), entry, { HS, WG: wg }), u, [out, q, kc, vc], [NH, NQ]);
}
