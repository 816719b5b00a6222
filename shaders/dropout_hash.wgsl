// The dropout mask's counter hash, shared by the kernels that apply LoRA dropout (lora.wgsl; linear.wgsl
// with LORA): their launchers append this file to the kernel source. Not an op of its own.
// Element idx (its index in its (N,IC) buffer) is kept when dropout_hash(seed, idx) ≥ thr,
// thr = floor(p·2^32); kept values are scaled by 1/(1−p). CPU twin: dropout_hash / dropout_keep in
// src/ref/lora.ts (identical integer ops).
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
fn dropout_hash(seed: u32, idx: u32) -> u32 { return pcg(pcg(idx) ^ (seed * 0x9E3779B9u)); }
