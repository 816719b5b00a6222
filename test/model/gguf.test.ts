// GGUF reader/writer/dequantizer: the real stories260K.gguf, metadata of every type, hand-built
// quant blocks checked against literal values and against an independent per-element decoder
// written from the ggml block layouts, Q8_0/Q4_0 round trips through ggml's reference quantizers
// (re-implemented here), and every malformed-file case producing its clear error.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from '../harness.ts';
import {
  GGMLType, GGUFType, GGML_TYPE_SIZE, dequantize, parseGGUF, readGGUFHeader, writeGGUF, ggufStoreFromBytes,
} from '../../src/model/gguf.ts';
import { f16ToF32, f32ToF16 } from '../../src/model/half.ts';
import { bytesFile } from '../../src/model/source.ts';
import { S260K_GGUF, rejects, seeded } from './fixtures.ts';

// ---------------------------------------------------------------------------------------------
// helpers

const h16 = (v: number) => f32ToF16(v);
function putF16(b: Uint8Array, off: number, v: number) {
  const h = h16(v);
  b[off] = h & 255;
  b[off + 1] = h >> 8;
}
/** random bytes with a deterministic generator */
function randBytes(n: number, seed: number): Uint8Array {
  const r = seeded(n, seed);
  return Uint8Array.from(r, (v) => Math.floor((v + 1) * 128) & 255);
}
function closeTo(got: Float32Array, want: number[] | Float64Array, what: string, rel = 1e-6) {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const tol = rel * Math.max(1, Math.abs(want[i]));
    assert.ok(Math.abs(got[i] - want[i]) <= tol, `${what}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

// Independent per-element decoders, written from the ggml struct layouts (not from the loops).
const F16 = (b: Uint8Array, o: number) => f16ToF32(b[o] | (b[o + 1] << 8));
const I8 = (v: number) => (v << 24) >> 24;

function refElement(type: GGMLType, b: Uint8Array, e: number): number {
  switch (type) {
    case GGMLType.Q8_0: return F16(b, 0) * I8(b[2 + e]);
    case GGMLType.Q4_0: { const q = e < 16 ? b[2 + e] & 15 : b[2 + e - 16] >> 4; return F16(b, 0) * (q - 8); }
    case GGMLType.Q4_1: { const q = e < 16 ? b[4 + e] & 15 : b[4 + e - 16] >> 4; return F16(b, 0) * q + F16(b, 2); }
    case GGMLType.Q5_0:
    case GGMLType.Q5_1: {
      const o = type === GGMLType.Q5_0 ? 2 : 4; // qh offset
      const qh = b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
      const lo = e < 16 ? b[o + 4 + e] & 15 : b[o + 4 + e - 16] >> 4;
      const q = lo | (((qh >>> e) & 1) << 4);
      return type === GGMLType.Q5_0 ? F16(b, 0) * (q - 16) : F16(b, 0) * q + F16(b, 2);
    }
    case GGMLType.Q2_K: { // scales[16] qs[64] d dmin
      const half = e >> 7, r = e & 127, j = r >> 5, k = r & 31, hi = k >> 4, l = k & 15;
      const sc = b[half * 8 + 2 * j + hi];
      const q = (b[16 + 32 * half + 16 * hi + l] >> (2 * j)) & 3;
      return F16(b, 80) * (sc & 15) * q - F16(b, 82) * (sc >> 4);
    }
    case GGMLType.Q3_K: { // hmask[32] qs[64] scales[12] d
      // scales exactly as ggml unpacks them: four u32 words and the kmask shuffle
      const w = new Uint32Array(4);
      const dv = new DataView(b.buffer, b.byteOffset + 96, 12);
      for (let i = 0; i < 3; i++) w[i] = dv.getUint32(4 * i, true);
      const k1 = 0x03030303, k2 = 0x0f0f0f0f, tmp = w[2];
      w[2] = ((w[0] >>> 4) & k2) | (((tmp >>> 4) & k1) << 4);
      w[3] = ((w[1] >>> 4) & k2) | (((tmp >>> 6) & k1) << 4);
      w[0] = (w[0] & k2) | (((tmp >>> 0) & k1) << 4);
      w[1] = (w[1] & k2) | (((tmp >>> 2) & k1) << 4);
      const scales = new Int8Array(w.buffer);
      const half = e >> 7, r = e & 127, j = r >> 5, k = r & 31, hi = k >> 4, l = k & 15;
      const m = 1 << (half * 4 + j);
      const q = ((b[32 + 32 * half + 16 * hi + l] >> (2 * j)) & 3) - (b[16 * hi + l] & m ? 0 : 4);
      return F16(b, 108) * (scales[half * 8 + 2 * j + hi] - 32) * q;
    }
    case GGMLType.Q4_K:
    case GGMLType.Q5_K: { // d dmin scales[12] (qh[32]) qs[128]
      const g = e >> 6, hi = (e >> 5) & 1, l = e & 31, sb = 2 * g + hi;
      const S = (i: number) => b[4 + i];
      // 8 six-bit scales and mins: 0..3 in the low 6 bits of bytes 0..3 / 4..7; 4..7 take their
      // low 4 bits from the nibbles of bytes 8..11 and their top 2 bits from bytes 0..3 / 4..7.
      const sc = sb < 4 ? S(sb) & 63 : (S(sb + 4) & 15) | ((S(sb - 4) >> 6) << 4);
      const mn = sb < 4 ? S(sb + 4) & 63 : (S(sb + 4) >> 4) | ((S(sb) >> 6) << 4);
      const qsOff = type === GGMLType.Q4_K ? 16 : 48;
      const byte = b[qsOff + 32 * g + l];
      let q = hi ? byte >> 4 : byte & 15;
      if (type === GGMLType.Q5_K) q += ((b[16 + l] >> sb) & 1) << 4;
      return F16(b, 0) * sc * q - F16(b, 2) * mn;
    }
    case GGMLType.Q6_K: { // ql[128] qh[64] scales[16] d
      const half = e >> 7, r = e & 127, quarter = r >> 5, l = r & 31;
      const lb = b[64 * half + l + (quarter & 1 ? 32 : 0)];
      const low = quarter < 2 ? lb & 15 : lb >> 4;
      const high = (b[128 + 32 * half + l] >> (2 * quarter)) & 3;
      const sc = I8(b[192 + 8 * half + (l >> 4) + 2 * quarter]);
      return F16(b, 208) * sc * ((low | (high << 4)) - 32);
    }
    default: throw new Error('no reference for ' + type);
  }
}

/** positions of the f16 scale fields of each type (set to sane values in random blocks) */
const F16_FIELDS: Partial<Record<GGMLType, number[]>> = {
  [GGMLType.Q8_0]: [0], [GGMLType.Q4_0]: [0], [GGMLType.Q4_1]: [0, 2], [GGMLType.Q5_0]: [0], [GGMLType.Q5_1]: [0, 2],
  [GGMLType.Q2_K]: [80, 82], [GGMLType.Q3_K]: [108], [GGMLType.Q4_K]: [0, 2], [GGMLType.Q5_K]: [0, 2], [GGMLType.Q6_K]: [208],
};

// ggml's reference quantizers (quantize_row_q8_0_ref / quantize_row_q4_0_ref), re-implemented.
function quantizeQ8_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32, out = new Uint8Array(nb * 34);
  for (let i = 0; i < nb; i++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[i * 32 + j]));
    const d = Math.fround(amax / 127), id = d ? Math.fround(1 / d) : 0;
    putF16(out, i * 34, d);
    for (let j = 0; j < 32; j++) {
      const v = Math.fround(x[i * 32 + j] * id);
      out[i * 34 + 2 + j] = (v < 0 ? -Math.round(-v) : Math.round(v)) & 255; // roundf: half away from zero
    }
  }
  return out;
}
function quantizeQ4_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32, out = new Uint8Array(nb * 18);
  for (let i = 0; i < nb; i++) {
    let amax = 0, max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[i * 32 + j];
      if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
    }
    const d = Math.fround(max / -8), id = d ? Math.fround(1 / d) : 0;
    putF16(out, i * 18, d);
    for (let j = 0; j < 16; j++) {
      const x0 = Math.fround(x[i * 32 + j] * id), x1 = Math.fround(x[i * 32 + 16 + j] * id);
      const q0 = Math.min(15, Math.trunc(Math.fround(x0 + 8.5))), q1 = Math.min(15, Math.trunc(Math.fround(x1 + 8.5)));
      out[i * 18 + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

test('gguf: the real stories260K.gguf header', () => {
  const g = parseGGUF('stories260K.gguf', new Uint8Array(readFileSync(S260K_GGUF)));
  assert.equal(g.version, 3);
  assert.equal(g.alignment, 32);
  assert.equal(g.dataStart, 14176);
  assert.equal(g.tensors.size, 48);
  assert.equal(g.metadata.get('general.architecture'), 'llama');
  assert.equal(g.metadata.get('llama.embedding_length'), 64);
  assert.equal(g.metadata.get('llama.block_count'), 5);
  assert.equal(g.metadata.get('llama.feed_forward_length'), 172);
  assert.equal(g.metadata.get('llama.attention.head_count'), 8);
  assert.equal(g.metadata.get('llama.attention.head_count_kv'), 4);
  assert.equal(g.metadata.get('llama.attention.layer_norm_rms_epsilon'), 1e-5);
  assert.equal(g.metadata.get('llama.rope.freq_base'), undefined);
  assert.equal(g.metadata.get('tokenizer.ggml.model'), 'llama');
  assert.equal((g.metadata.get('tokenizer.ggml.tokens') as string[]).length, 512);
  assert.equal((g.metadata.get('tokenizer.ggml.tokens') as string[])[3], '<0x00>');
  assert.deepEqual(g.metadataTypes.get('tokenizer.ggml.scores'), { type: GGUFType.ARRAY, itemType: GGUFType.FLOAT32 });
  const k = g.tensors.get('blk.0.attn_k.weight')!;
  assert.deepEqual(k.dims, [64, 32]);
  assert.deepEqual(k.shape, [32, 64]);
  assert.equal(k.type, GGMLType.F32);
  assert.deepEqual(g.tensors.get('token_embd.weight')!.shape, [512, 64]);
  assert.deepEqual(g.tensors.get('blk.4.ffn_down.weight')!.shape, [64, 172]);
  assert.ok(g.tensors.has('output.weight'));
});

test('gguf: metadata of every type and F32/F16 tensors survive write → read (v2 and v3, custom alignment)', async () => {
  const kv = [
    { key: 'general.architecture', value: 'llama' },
    { key: 'u8', type: GGUFType.UINT8, value: 200 },
    { key: 'i8', type: GGUFType.INT8, value: -100 },
    { key: 'u16', type: GGUFType.UINT16, value: 60000 },
    { key: 'i16', type: GGUFType.INT16, value: -30000 },
    { key: 'u32', type: GGUFType.UINT32, value: 4000000000 },
    { key: 'i32', type: GGUFType.INT32, value: -2000000000 },
    { key: 'f32', type: GGUFType.FLOAT32, value: 0.1 },
    { key: 'f64', type: GGUFType.FLOAT64, value: 0.1 },
    { key: 'u64', type: GGUFType.UINT64, value: 2n ** 63n },
    { key: 'u64small', type: GGUFType.UINT64, value: 123 },
    { key: 'i64', type: GGUFType.INT64, value: -(2n ** 62n) },
    { key: 'bool', value: true },
    { key: 'str', value: 'héllo ▁ 😀' },
    { key: 'strs', value: ['a', '', 'ü'] },
    { key: 'floats', value: [0.5, -1.25], itemType: GGUFType.FLOAT32 },
    { key: 'ints', value: [1, -2, 3], itemType: GGUFType.INT32 },
    { key: 'nested', value: [[1, 2], [3]], itemType: GGUFType.ARRAY },
    { key: 'empty', value: [], itemType: GGUFType.STRING },
    { key: 'general.alignment', type: GGUFType.UINT32, value: 64 },
  ];
  const a = seeded(12, 1), b = seeded(64, 2);
  for (const version of [2, 3]) {
    const bytes = writeGGUF(kv, [
      { name: 'a', shape: [3, 4], data: a },
      { name: 'b', shape: [2, 32], data: b, type: GGMLType.F16 },
      { name: 'c', shape: [7], data: new Float32Array(7).fill(3) },
    ], { version });
    const g = parseGGUF('w.gguf', bytes);
    assert.equal(g.version, version);
    assert.equal(g.alignment, 64);
    assert.equal(g.dataStart % 64, 0);
    const m = g.metadata;
    assert.equal(m.get('u8'), 200); assert.equal(m.get('i8'), -100);
    assert.equal(m.get('u16'), 60000); assert.equal(m.get('i16'), -30000);
    assert.equal(m.get('u32'), 4000000000); assert.equal(m.get('i32'), -2000000000);
    assert.equal(m.get('f32'), 0.1); // shortest decimal of the stored f32
    assert.equal(m.get('f64'), 0.1);
    assert.equal(m.get('u64'), 2n ** 63n); assert.equal(m.get('u64small'), 123); assert.equal(m.get('i64'), -(2n ** 62n));
    assert.equal(m.get('bool'), true);
    assert.equal(m.get('str'), 'héllo ▁ 😀');
    assert.deepEqual(m.get('strs'), ['a', '', 'ü']);
    assert.deepEqual(m.get('floats'), [0.5, -1.25]);
    assert.deepEqual(m.get('ints'), [1, -2, 3]);
    assert.deepEqual(m.get('nested'), [[1, 2], [3]]);
    assert.deepEqual(m.get('empty'), []);
    assert.deepEqual(g.metadataTypes.get('u64'), { type: GGUFType.UINT64 });
    for (const t of g.tensors.values()) assert.equal(t.offset % 64, 0);
    const store = ggufStoreFromBytes('w.gguf', bytes);
    assert.deepEqual(await store.read('a'), a);
    assert.deepEqual(await store.read('b'), Float32Array.from(b, (v) => f16ToF32(f32ToF16(v))));
    assert.deepEqual(await store.read('c'), new Float32Array(7).fill(3));
    assert.deepEqual(store.info('b'), { name: 'b', shape: [2, 32], dtype: 'F16', file: 'w.gguf' });
  }
});

test('gguf: hand-built quant blocks decode to known values', () => {
  const blk = (type: GGMLType) => new Uint8Array(GGML_TYPE_SIZE[type][1]);
  { // Q8_0: d = 0.5
    const b = blk(GGMLType.Q8_0);
    putF16(b, 0, 0.5);
    b.set([1, 255, 127, 128], 2);
    const y = dequantize(GGMLType.Q8_0, b, 32);
    assert.deepEqual(Array.from(y.subarray(0, 5)), [0.5, -0.5, 63.5, -64, 0]);
  }
  { // Q4_0: d = 2; byte 0x1F → element 0 = 2·(15−8), element 16 = 2·(1−8)
    const b = blk(GGMLType.Q4_0);
    putF16(b, 0, 2);
    b[2] = 0x1f;
    const y = dequantize(GGMLType.Q4_0, b, 32);
    assert.equal(y[0], 14); assert.equal(y[16], -14); assert.equal(y[1], -16);
  }
  { // Q4_1: d = 1, m = −1
    const b = blk(GGMLType.Q4_1);
    putF16(b, 0, 1); putF16(b, 2, -1);
    b[4] = 0x30;
    const y = dequantize(GGMLType.Q4_1, b, 32);
    assert.equal(y[0], -1); assert.equal(y[16], 2); assert.equal(y[5], -1);
  }
  { // Q5_0: d = 1; qh bits 0 and 16 set → 5th bit of elements 0 and 16
    const b = blk(GGMLType.Q5_0);
    putF16(b, 0, 1);
    b[2] = 0x01; b[4] = 0x01;
    b[6] = 0x21;
    const y = dequantize(GGMLType.Q5_0, b, 32);
    assert.equal(y[0], 1); assert.equal(y[16], 2); assert.equal(y[1], -16); assert.equal(y[17], -16);
  }
  { // Q5_1: d = 0.5, m = 1; qh bit 16 set
    const b = blk(GGMLType.Q5_1);
    putF16(b, 0, 0.5); putF16(b, 2, 1);
    b[6] = 0x01;
    b[8] = 0xf0;
    const y = dequantize(GGMLType.Q5_1, b, 32);
    assert.equal(y[0], 1); assert.equal(y[16], 16.5);
  }
  { // Q4_K: d = 1, dmin = 0.5; sub-block 0: scale 3, min 2; sub-block 1: scale 1, min 0;
    // sub-block 4: scale 1|(1<<4) = 17, min 2
    const b = blk(GGMLType.Q4_K);
    putF16(b, 0, 1); putF16(b, 2, 0.5);
    b[4 + 0] = 0x43; b[4 + 4] = 2; b[4 + 1] = 1; b[4 + 5] = 0; b[4 + 8] = 0x21;
    b[16 + 0] = 0x5a; b[16 + 64] = 0x07;
    const y = dequantize(GGMLType.Q4_K, b, 256);
    assert.equal(y[0], 29); // 3·10 − 0.5·2
    assert.equal(y[32], 5); // 1·5 − 0
    assert.equal(y[128], 118); // 17·7 − 0.5·2
  }
  { // Q5_K: d = dmin = 1; sub-block 0 scale 1 min 1, sub-block 1 scale 2 min 0
    const b = blk(GGMLType.Q5_K);
    putF16(b, 0, 1); putF16(b, 2, 1);
    b[4 + 0] = 1; b[4 + 4] = 1; b[4 + 1] = 2; b[4 + 5] = 0;
    b[16 + 0] = 0x03; // qh[0]: high bit of element 0 (bit 0) and element 32 (bit 1)
    b[48 + 0] = 0x03;
    const y = dequantize(GGMLType.Q5_K, b, 256);
    assert.equal(y[0], 18); // 1·(3+16) − 1
    assert.equal(y[32], 32); // 2·(0+16) − 0
    assert.equal(y[1], -1); // 1·0 − 1
  }
  { // Q6_K: d = 1; scales[0] = 2, scales[2] = −1, scales[4] = 1
    const b = blk(GGMLType.Q6_K);
    putF16(b, 208, 1);
    b[192 + 0] = 2; b[192 + 2] = 255; b[192 + 4] = 1;
    b[0] = 0x21; b[128] = 0b00000111;
    const y = dequantize(GGMLType.Q6_K, b, 256);
    assert.equal(y[0], 34); // 2·((1 | 3<<4) − 32)
    assert.equal(y[32], 16); // −1·((0 | 1<<4) − 32)
    assert.equal(y[64], -30); // 1·((2 | 0) − 32)
  }
});

test('gguf: random quant blocks match an independent per-element decoder (all supported Q types)', () => {
  const types = [GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K];
  for (const type of types) {
    const [bs, ts] = GGML_TYPE_SIZE[type];
    const nb = 3;
    const bytes = randBytes(nb * ts, 100 + type);
    const scales = seeded(nb * 2, 200 + type, 0.5);
    for (let i = 0; i < nb; i++) F16_FIELDS[type]!.forEach((o, k) => putF16(bytes, i * ts + o, scales[i * 2 + k]));
    const y = dequantize(type, bytes, nb * bs, GGMLType[type]);
    const want = new Float64Array(nb * bs);
    for (let i = 0; i < nb; i++) {
      const blk = bytes.slice(i * ts, (i + 1) * ts);
      for (let e = 0; e < bs; e++) want[i * bs + e] = refElement(type, blk, e);
    }
    closeTo(y, want, GGMLType[type], 1e-6);
  }
});

test('gguf: Q8_0 and Q4_0 round trips through ggml reference quantizers', () => {
  const x = seeded(32 * 8, 9, 3);
  x[5] = 0; x[40] = -3; // some exact extremes
  x.fill(0, 64, 96); // an all-zero block
  { // Q8_0
    const q = quantizeQ8_0(x);
    const y = dequantize(GGMLType.Q8_0, q, x.length);
    for (let i = 0; i < x.length; i++) {
      const b = Math.floor(i / 32), d = f16ToF32(q[b * 34] | (q[b * 34 + 1] << 8));
      assert.equal(y[i], Math.fround(d * I8(q[b * 34 + 2 + (i % 32)])));
      assert.ok(Math.abs(y[i] - x[i]) <= 0.6 * d + 1e-7, `q8_0 [${i}] ${x[i]} → ${y[i]} (d ${d})`);
    }
    assert.ok(y.subarray(64, 96).every((v) => v === 0));
  }
  { // Q4_0 (d = max/−8: the largest-magnitude value is exact, its negation clamps by one step)
    const q = quantizeQ4_0(x);
    const y = dequantize(GGMLType.Q4_0, q, x.length);
    for (let i = 0; i < x.length; i++) {
      const b = Math.floor(i / 32), d = Math.abs(f16ToF32(q[b * 18] | (q[b * 18 + 1] << 8)));
      assert.ok(Math.abs(y[i] - x[i]) <= 1.01 * d + 1e-7, `q4_0 [${i}] ${x[i]} → ${y[i]} (d ${d})`);
    }
    let inside = 0, n = 0;
    for (let i = 0; i < x.length; i++) {
      const b = Math.floor(i / 32), d = Math.abs(f16ToF32(q[b * 18] | (q[b * 18 + 1] << 8)));
      n++;
      if (Math.abs(y[i] - x[i]) <= 0.51 * d + 1e-7) inside++;
    }
    assert.ok(inside >= n - 8, `q4_0: ${n - inside} values off by more than d/2`);
    // through a file: raw Q4_0 bytes written and read back as a (8, 32) tensor
    const file = writeGGUF([], [{ name: 'w', shape: [8, 32], data: q, type: GGMLType.Q4_0 }]);
    assert.deepEqual(parseGGUF('q.gguf', file).tensors.get('w')!.dims, [32, 8]);
  }
});

test('gguf: each malformed file gives a clear error naming the file', async () => {
  const F = 'bad.gguf';
  const good = writeGGUF([{ key: 'general.architecture', value: 'llama' }], [
    { name: 'w', shape: [2, 4], data: seeded(8, 1) },
    { name: 'v', shape: [4], data: seeded(4, 2) },
  ]);
  const parse = (b: Uint8Array) => () => parseGGUF(F, b);
  // bad magic
  const magic = good.slice();
  magic.set([0x47, 0x47, 0x4d, 0x4c], 0); // "GGML"
  await rejects(parse(magic), /bad\.gguf/, /bad magic 'GGML' \(expected 'GGUF'/);
  await rejects(parse(new Uint8Array(2)), /bad\.gguf/, /truncated/);
  // unsupported versions
  const v = (n: number) => { const b = good.slice(); new DataView(b.buffer).setUint32(4, n, true); return b; };
  await rejects(parse(v(1)), /bad\.gguf/, /unsupported GGUF version 1/);
  await rejects(parse(v(7)), /unsupported GGUF version 7 \(supported: 2, 3\)/);
  await rejects(parse(v(0x03000000)), /big-endian GGUF/);
  // tensor data past EOF
  await rejects(parse(good.subarray(0, good.length - 20)), /bad\.gguf/, /tensor 'v' .* runs past the end of the file/);
  // truncated inside the metadata
  await rejects(parse(good.subarray(0, 30)), /bad\.gguf/, /truncated: .* at byte \d+ needs \d+ bytes, but the file has 30/);
  // unknown tensor type
  const unk = writeGGUF([], [{ name: 'x', shape: [4], data: new Uint8Array(16), type: 99 as GGMLType }]);
  await rejects(parse(unk), /bad\.gguf/, /tensor 'x' has unknown ggml type 99/);
  // known but not dequantizable type: parses, fails on read
  const iq = writeGGUF([], [{ name: 'x', shape: [256], data: new Uint8Array(66), type: GGMLType.IQ2_XXS }]);
  const store = ggufStoreFromBytes(F, iq);
  await rejects(store.read('x'), /bad\.gguf: tensor 'x': ggml type IQ2_XXS cannot be dequantized here/);
  // row length not a multiple of the block size
  const odd = writeGGUF([], [{ name: 'x', shape: [2, 16], data: new Uint8Array(36), type: GGMLType.Q8_0 }]);
  await rejects(parse(odd), /tensor 'x': row length 16 is not a multiple of the Q8_0 block size 32/);
  // misaligned offset (file says alignment 64, tensors written at 16)
  const mis = writeGGUF([{ key: 'general.alignment', type: GGUFType.UINT32, value: 64 }], [
    { name: 'a', shape: [4], data: seeded(4, 1) }, { name: 'b', shape: [4], data: seeded(4, 2) },
  ], { alignment: 16 });
  await rejects(parse(mis), /tensor 'b': offset 16 is not a multiple of the alignment 64/);
  const badAlign = writeGGUF([{ key: 'general.alignment', type: GGUFType.UINT32, value: 48 }], []);
  await rejects(parse(badAlign), /general\.alignment 48 is not a power of two/);
  // unknown metadata value type
  const kvt = writeGGUF([{ key: 'k', type: GGUFType.UINT32, value: 1 }], []);
  new DataView(kvt.buffer).setUint32(24 + 8 + 1, 77, true);
  await rejects(parse(kvt), /metadata 'k' has unknown value type 77/);
  // the ranged reader reports the same
  await rejects(readGGUFHeader(bytesFile(F, magic)), /bad\.gguf: invalid GGUF file: bad magic/);
  await rejects(store.read('nope'), /no tensor 'nope'/);
  await rejects(() => dequantize(GGMLType.Q4_0, new Uint8Array(10), 32, 'w'), /w: 10 bytes, Q4_0 × 32 needs 18/);
});

test('gguf: a header larger than the first read is fetched piecewise', async () => {
  const tokens = Array.from({ length: 150_000 }, (_, i) => `token_${i}_▁▁`);
  const bytes = writeGGUF([{ key: 'tokenizer.ggml.tokens', value: tokens }], [{ name: 'w', shape: [3], data: seeded(3, 1) }]);
  assert.ok(bytes.length > 2 << 20);
  const reads: [number, number][] = [];
  const f = { label: 'big.gguf', size: bytes.length, read: async (s: number, e: number) => { reads.push([s, e]); return bytes.subarray(s, Math.min(e, bytes.length)); } };
  const g = await readGGUFHeader(f);
  assert.equal((g.metadata.get('tokenizer.ggml.tokens') as string[])[149_999], 'token_149999_▁▁');
  assert.ok(reads.length >= 2, 'grew the prefix');
  assert.ok(reads[0][1] <= 1 << 20, 'started with at most 1 MiB');
});
