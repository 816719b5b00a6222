// CPU twin of shaders/residual.wgsl: out (n) = a (n) + b (n). Backward is the identity.
import type { Vec } from './types.ts';

export function residual_forward(out: Vec, a: Vec, b: Vec, n: number): void {
  for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
}
