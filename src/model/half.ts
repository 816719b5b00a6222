// IEEE half (f16) and bfloat16 ↔ f32 conversions for the weight-file readers and writers
// (safetensors F16/BF16, GGUF F16/BF16 and the f16 scales of ggml quant blocks).
// f32 → f16/bf16 rounds to nearest, ties to even; NaN stays NaN, overflow gives ±Inf.

let F16_TABLE: Float32Array | null = null;

function f16BitsToF32Slow(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** All 65536 f16 values as f32 (built once, 256 KiB). */
export function f16Table(): Float32Array {
  if (!F16_TABLE) {
    F16_TABLE = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) F16_TABLE[h] = f16BitsToF32Slow(h);
  }
  return F16_TABLE;
}

export function f16ToF32(h: number): number {
  return f16Table()[h & 0xffff];
}

const cvt = new DataView(new ArrayBuffer(4));

/** f32 value → f16 bits (round to nearest even). */
export function f32ToF16(v: number): number {
  cvt.setFloat32(0, v, true);
  const x = cvt.getUint32(0, true);
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // may carry into the exponent: correct
  return sign | h;
}

export function bf16ToF32(b: number): number {
  cvt.setUint32(0, (b & 0xffff) << 16, true);
  return cvt.getFloat32(0, true);
}

/** f32 value → bf16 bits (round to nearest even). */
export function f32ToBf16(v: number): number {
  cvt.setFloat32(0, v, true);
  const x = cvt.getUint32(0, true);
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff; // NaN
  const r = x + 0x7fff + ((x >>> 16) & 1);
  return (r >>> 16) & 0xffff;
}

/** n little-endian f16 values at bytes[off..] → f32. */
export function f16ArrayToF32(bytes: Uint8Array, off: number, n: number, out = new Float32Array(n)): Float32Array {
  const t = f16Table();
  for (let i = 0, p = off; i < n; i++, p += 2) out[i] = t[bytes[p] | (bytes[p + 1] << 8)];
  return out;
}

/** n little-endian bf16 values at bytes[off..] → f32. */
export function bf16ArrayToF32(bytes: Uint8Array, off: number, n: number, out = new Float32Array(n)): Float32Array {
  const u = new Uint32Array(out.buffer, out.byteOffset, n);
  for (let i = 0, p = off; i < n; i++, p += 2) u[i] = ((bytes[p] | (bytes[p + 1] << 8)) << 16) >>> 0;
  return out;
}

/** n little-endian f32 values at bytes[off..] (any alignment) → a fresh Float32Array. */
export function f32ArrayFromBytes(bytes: Uint8Array, off: number, n: number): Float32Array {
  const out = new Float32Array(n);
  new Uint8Array(out.buffer).set(bytes.subarray(off, off + 4 * n));
  return out;
}
