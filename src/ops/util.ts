// Small launcher helpers shared by src/ops/*.
import type { Gpu } from '../gpu/device.ts';

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

/** Precondition check with a message stating the rule. */
export function need(cond: boolean, rule: string): asserts cond {
  if (!cond) throw new Error(`precondition failed: ${rule}`);
}
