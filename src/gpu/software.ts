// Whether an adapter is a CPU (software) Vulkan driver — SwiftShader, llvmpipe / lavapipe — from
// its GpuInfo alone: no GPU code here, so the page (src/ui) can ask too.
import type { GpuInfo } from './device.ts';

export function isSoftwareInfo(info: Pick<GpuInfo, 'architecture' | 'device' | 'description'>): boolean {
  return /swiftshader|llvmpipe|lavapipe|software/i.test(`${info.architecture} ${info.device} ${info.description}`);
}
