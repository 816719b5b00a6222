// Small launcher helpers shared by src/ops/*.
import type { Buf, Gpu } from '../gpu/device.ts';

/**
 * Workgroup grid for n items, wg threads per group, folded into 2D when n/wg exceeds the
 * per-dimension limit. Kernels compute i = gid.x + gid.y * num_workgroups.x * wg.
 */
export function grid1d(gpu: Gpu, n: number, wg: number): [number, number] {
  const g = Math.ceil(n / wg);
  const max = gpu.info.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  if (g <= max) return [g, 1];
  const y = Math.ceil(g / max);
  return [Math.ceil(g / y), y];
}

/**
 * The subgroup size when `gpu` has subgroups of one fixed size (min = max, a power of two in
 * 4..128: lavapipe 8, SwiftShader 4, NVIDIA 32), else 0. Kernels whose workgroup is exactly one
 * subgroup of this size (rmsnorm, argmax) reduce with subgroup operations instead of barriers;
 * linear, lora and attention have subgroup forms for sizes 8 and 4.
 */
export function fixedSubgroupSize(gpu: Gpu): number {
  const i = gpu.info, s = i.subgroupMinSize ?? 0;
  return i.features.subgroups && s === i.subgroupMaxSize && s >= 4 && s <= 128 && (s & (s - 1)) === 0 ? s : 0;
}

/**
 * The subgroup width the broadcast-tiled kernel forms (linear sg16x32 / sg1x32, lora_mm_sg*,
 * the training attention kernels) run with on `gpu`: 8 or 4 where the adapter's subgroups are
 * exactly that wide (lavapipe 8, SwiftShader 4), else 0 (the plain forms run).
 */
export function subgroupWidth(gpu: Gpu): 0 | 4 | 8 {
  const s = fixedSubgroupSize(gpu);
  return s === 8 || s === 4 ? s : 0;
}

/** Bucket of one tuning dimension: the smallest power of 4 ≥ x, capped at 16384 ('16384' means ≥ 4097). */
export function bucket4(x: number): number {
  let b = 1;
  while (b < x && b < 16384) b *= 4;
  return b;
}

/** Precondition check with a message stating the rule. */
export function need(cond: boolean, rule: string): asserts cond {
  if (!cond) throw new Error(`precondition failed: ${rule}`);
}

/** Keep the lines of a `//#if FLAG` / `//#if !FLAG` / `//#else` / `//#endif` template whose flags hold. */
export function preprocess(src: string, flags: Record<string, boolean>): string {
  const out: string[] = [];
  const stack: { on: boolean; parent: boolean }[] = [];
  let on = true;
  for (const line of src.split('\n')) {
    const m = /^\s*\/\/#(if|else|endif)\b\s*(!?)(\w*)/.exec(line);
    if (!m) {
      if (on) out.push(line);
      continue;
    }
    if (m[1] === 'if') {
      stack.push({ on, parent: on });
      on = on && (m[2] === '!' ? !flags[m[3]] : !!flags[m[3]]);
      stack[stack.length - 1].on = on;
    } else if (m[1] === 'else') {
      const top = stack[stack.length - 1];
      if (!top) throw new Error('preprocess: #else without #if');
      on = top.parent && !top.on;
    } else {
      const top = stack.pop();
      if (!top) throw new Error('preprocess: #endif without #if');
      on = top.parent;
    }
  }
  if (stack.length) throw new Error('preprocess: unterminated #if');
  return out.join('\n');
}

/** A binding whose offset allows vec4 indexing (whole buffers always do). */
export function aligned16(b: Buf): boolean {
  return b instanceof GPUBuffer || (b.offset ?? 0) % 16 === 0;
}

/** Whether an elementwise op over n values can run by quads: n % 4 == 0 and every binding aligned16. */
export function quadAligned(n: number, ...bufs: Buf[]): boolean {
  return n % 4 === 0 && bufs.every(aligned16);
}

/**
 * Unroll the one-line loops marked `//#unroll` whose bound is a name in `counts`:
 * `for (var j = 0u; j < HQ; j++) { BODY } //#unroll` with counts {HQ: 3} becomes
 * `{ const j = 0u; BODY } { const j = 1u; BODY } { const j = 2u; BODY }` — every index into a
 * private array then a constant. SwiftShader keeps a private array indexed by a loop variable in
 * memory (each access a per-lane gather or scatter) and does not unroll loops whose bound is an
 * override constant; with constant indices the array lives in registers (attention_decode_split,
 * head size 16: 300 → 160 µs per call there; lavapipe unchanged). Unmarked loops, and marked ones
 * whose bound is not in `counts`, are left as they are.
 */
export function unrollLoops(src: string, counts: Record<string, number>): string {
  return src.replace(/^(\s*)for \(var (\w+) = 0u; \2 < (\w+); \2\+\+\) \{ (.*) \} \/\/#unroll$/gm, (line, indent: string, v: string, bound: string, body: string) => {
    const n = counts[bound];
    if (n === undefined) return line;
    need(Number.isInteger(n) && n >= 0 && n <= 64, `unrollLoops: ${bound} = ${n} must be an integer in 0..64`);
    return indent + Array.from({ length: n }, (_, k) => `{ const ${v} = ${k}u; ${body} }`).join(' ');
  });
}
