// safetensors reader/writer: round trips (F32/F16/BF16/F64), the real tinystories-656k file,
// sharded checkpoints, and every malformed-file case producing its clear, file-naming error.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from '../harness.ts';
import {
  parseSafetensors, readSafetensorsHeader, writeSafetensors, openSafetensorsStore, safetensorsStoreFromBytes,
} from '../../src/model/safetensors.ts';
import { bytesFile, memorySource } from '../../src/model/source.ts';
import { f16ToF32, f32ToF16, bf16ToF32, f32ToBf16 } from '../../src/model/half.ts';
import { TS656K, json, rejects, seeded, utf8 } from './fixtures.ts';

/** A safetensors file from a raw header object and a data section. */
function rawFile(header: unknown, data: Uint8Array | number = 0, headerLen?: number): Uint8Array {
  const hb = typeof header === 'string' ? utf8(header) : json(header);
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + hb.length + d.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen ?? hb.length), true);
  out.set(hb, 8);
  out.set(d, 8 + hb.length);
  return out;
}

test('half: f16/bf16 conversions round to nearest even and keep specials', () => {
  for (const v of [0, -0, 1, -2, 0.5, 65504, 6.103515625e-5, 5.960464477539063e-8, Infinity, -Infinity]) {
    assert.equal(f16ToF32(f32ToF16(v)), v, `f16 ${v}`);
  }
  assert.ok(Number.isNaN(f16ToF32(f32ToF16(NaN))));
  assert.equal(f16ToF32(f32ToF16(1 + 2 ** -11)), 1); // tie → even
  assert.equal(f16ToF32(f32ToF16(1 + 3 * 2 ** -11)), 1 + 2 ** -9); // tie → even (up)
  assert.equal(f16ToF32(f32ToF16(1e6)), Infinity);
  assert.equal(f16ToF32(0x3c00), 1);
  assert.equal(f16ToF32(0xc000), -2);
  assert.equal(f16ToF32(0x0001), 2 ** -24);
  assert.equal(bf16ToF32(0x3f80), 1);
  assert.equal(bf16ToF32(f32ToBf16(3.140625)), 3.140625);
  assert.equal(bf16ToF32(f32ToBf16(1 + 2 ** -8)), 1); // tie → even
  assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(NaN))));
});

test('safetensors: write → read round trip for F32, F16, BF16 and raw F64', async () => {
  const a = seeded(6, 1), b = seeded(12, 2, 4), c = seeded(5, 3);
  const f64 = new Float64Array([1.5, -2.25, 1e-3]);
  const bytes = writeSafetensors([
    { name: 'a', shape: [2, 3], data: a },
    { name: 'b', shape: [3, 4], data: b, dtype: 'F16' },
    { name: 'c', shape: [5], data: c, dtype: 'BF16' },
    { name: 'd', shape: [3], data: new Uint8Array(f64.buffer), dtype: 'F64' },
    { name: 'empty', shape: [0, 4], data: new Float32Array(0) },
  ], { format: 'pt', note: 'x' });
  const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(hlen % 8, 0, 'header padded to 8 bytes');
  const { header, get } = parseSafetensors('t.safetensors', bytes);
  assert.deepEqual(header.metadata, { format: 'pt', note: 'x' });
  assert.deepEqual([...header.tensors.keys()], ['a', 'b', 'c', 'd', 'empty']);
  assert.deepEqual(header.tensors.get('b')!.shape, [3, 4]);
  assert.deepEqual(get('a'), a);
  assert.deepEqual(get('b'), Float32Array.from(b, (v) => f16ToF32(f32ToF16(v))));
  assert.deepEqual(get('c'), Float32Array.from(c, (v) => bf16ToF32(f32ToBf16(v))));
  assert.deepEqual(get('d'), Float32Array.from(f64));
  assert.equal(get('empty').length, 0);
  // ranged reading gives the same
  const store = await safetensorsStoreFromBytes('t.safetensors', bytes);
  assert.deepEqual(await store.read('b'), get('b'));
  assert.deepEqual(store.info('c'), { name: 'c', shape: [5], dtype: 'BF16', file: 't.safetensors' });
});

test('safetensors: the real tinystories-656k file parses, covers the file exactly, stores only lm_head', async () => {
  const bytes = new Uint8Array(readFileSync(TS656K + '/model.safetensors'));
  const h = await readSafetensorsHeader(bytesFile('model.safetensors', bytes));
  assert.equal(h.tensors.size, 20);
  assert.deepEqual(h.metadata, { format: 'pt', 'model.embed_tokens.weight': 'lm_head.weight' });
  assert.ok(!h.tensors.has('model.embed_tokens.weight'));
  assert.deepEqual(h.tensors.get('lm_head.weight')!.shape, [2048, 128]);
  assert.deepEqual(h.tensors.get('model.layers.1.self_attn.k_proj.weight')!.shape, [64, 128]);
  assert.deepEqual(h.tensors.get('model.layers.0.mlp.down_proj.weight')!.shape, [128, 384]);
  const end = Math.max(...[...h.tensors.values()].map((t) => t.end));
  assert.equal(end, bytes.length);
  const total = [...h.tensors.values()].reduce((s, t) => s + (t.end - t.begin) / 4, 0);
  assert.equal(total, 656000);
});

test('safetensors: each malformed file gives a clear error naming the file', async () => {
  const F = 'bad.safetensors';
  const good = { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } };
  const parse = (b: Uint8Array) => () => parseSafetensors(F, b);
  // truncated below the 8-byte length
  await rejects(parse(new Uint8Array(5)), /bad\.safetensors/, /truncated: 5 bytes/);
  // header length past EOF
  await rejects(parse(rawFile(good, 16, 10_000)), /bad\.safetensors/, /header length 10000 runs past the end of the file/);
  // header length absurdly large (u64)
  const huge = rawFile(good, 16);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 60n, true);
  await rejects(parse(huge), /header length \d+ runs past the end/);
  // not JSON
  await rejects(parse(rawFile('{"w": nope}', 16)), /bad\.safetensors/, /header is not valid UTF-8 JSON/);
  await rejects(parse(rawFile('[1,2]', 0)), /header is not a JSON object/);
  // data truncated: offsets past the end of the data section
  await rejects(parse(rawFile(good, 12)), /bad\.safetensors/, /tensor 'w': data_offsets \[0, 16\] lie past the end of the data section \(12 bytes/);
  // offsets that end before they begin
  await rejects(parse(rawFile({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, 16)), /tensor 'w': data_offsets \[8, 4\] end before they begin/);
  // size ≠ shape·dtype
  await rejects(parse(rawFile({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 16] } }, 16)), /tensor 'w'/, /span 16 bytes, but shape \[2,3\] × F32 needs 24/);
  await rejects(parse(rawFile({ w: { dtype: 'BF16', shape: [2, 2], data_offsets: [0, 16] } }, 16)), /× BF16 needs 8/);
  // overlapping tensors
  await rejects(parse(rawFile({
    a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
    b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
  }, 16)), /bad\.safetensors/, /tensors 'a' \[0, 16\) and 'b' \[8, 16\) overlap/);
  // malformed entries
  await rejects(parse(rawFile({ w: { dtype: 'F32', shape: [2, -2], data_offsets: [0, 16] } }, 16)), /shape \[2,-2\] is not a list of non-negative integers/);
  await rejects(parse(rawFile({ w: { dtype: 'F32', shape: [4], data_offsets: [0] } }, 16)), /data_offsets \[0\] is not \[begin, end\]/);
  await rejects(parse(rawFile({ w: { shape: [4], data_offsets: [0, 16] } }, 16)), /tensor 'w': missing dtype/);
  // unsupported dtype: unknown at parse time…
  await rejects(parse(rawFile({ w: { dtype: 'Q9', shape: [4], data_offsets: [0, 4] } }, 4)), /bad\.safetensors/, /tensor 'w': unsupported dtype 'Q9'/);
  // …and a known non-float dtype when read as weights
  const i8 = writeSafetensors([{ name: 'q', shape: [4], data: new Uint8Array([1, 2, 3, 4]), dtype: 'I8' }]);
  const p = parseSafetensors(F, i8);
  await rejects(() => p.get('q'), /bad\.safetensors/, /tensor 'q' has dtype I8, which cannot be loaded as f32 weights/);
  const store = await safetensorsStoreFromBytes(F, i8);
  await rejects(store.read('q'), /dtype I8/);
  await rejects(store.read('nope'), /no tensor 'nope'/);
  // the ranged reader reports the same problems
  await rejects(readSafetensorsHeader(bytesFile(F, rawFile(good, 16, 99))), /bad\.safetensors/, /header length 99 runs past/);
  await rejects(readSafetensorsHeader(bytesFile(F, new Uint8Array(3))), /truncated: 3 bytes/);
});

test('safetensors: sharded checkpoint (index + shards) opens as one store; bad indexes are errors', async () => {
  const a = seeded(8, 4), b = seeded(6, 5), c = seeded(3, 6);
  const s1 = writeSafetensors([{ name: 'a', shape: [2, 4], data: a }, { name: 'c', shape: [3], data: c, dtype: 'F16' }]);
  const s2 = writeSafetensors([{ name: 'b', shape: [6], data: b, dtype: 'BF16' }], { format: 'pt' });
  const index = { metadata: { total_size: 0 }, weight_map: { a: 'model-00001-of-00002.safetensors', c: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } };
  const files = { 'model.safetensors.index.json': json(index), 'model-00001-of-00002.safetensors': s1, 'model-00002-of-00002.safetensors': s2 };
  const store = await openSafetensorsStore(memorySource('sharded', files));
  assert.deepEqual(store.names().sort(), ['a', 'b', 'c']);
  assert.deepEqual(await store.read('a'), a);
  assert.equal(store.info('b')!.file, 'sharded/model-00002-of-00002.safetensors');
  assert.deepEqual(await store.read('b'), Float32Array.from(b, (v) => bf16ToF32(f32ToBf16(v))));
  assert.deepEqual(store.metadata, { format: 'pt' });

  const missingShard = { ...files } as Record<string, Uint8Array>;
  delete missingShard['model-00002-of-00002.safetensors'];
  await rejects(openSafetensorsStore(memorySource('m', missingShard)), /shard 'model-00002-of-00002\.safetensors' is listed in weight_map but missing/);
  const wrongMap = { ...files, 'model.safetensors.index.json': json({ weight_map: { ...index.weight_map, b: 'model-00001-of-00002.safetensors', z: 'model-00002-of-00002.safetensors' } }) };
  await rejects(openSafetensorsStore(memorySource('m', wrongMap)), /tensor 'b' is mapped to 'model-00001-of-00002\.safetensors' but stored in 'm\/model-00002-of-00002\.safetensors'/);
  const dup = { ...files, 'model-00002-of-00002.safetensors': writeSafetensors([{ name: 'a', shape: [1], data: new Float32Array(1) }, { name: 'b', shape: [1], data: new Float32Array(1) }]) };
  await rejects(openSafetensorsStore(memorySource('m', dup)), /tensor 'a' is stored twice/);
  await rejects(openSafetensorsStore(memorySource('m', { 'model.safetensors.index.json': json({ nope: 1 }) })), /no "weight_map" object/);
  await rejects(openSafetensorsStore(memorySource('m', { 'model.safetensors.index.json': utf8('{oops') })), /m\/model\.safetensors\.index\.json: invalid JSON/);
  await rejects(openSafetensorsStore(memorySource('m', { 'x.txt': utf8('') })), /m: no \.safetensors weights found/);
  // a bad shard names the shard
  const truncated = { ...files, 'model-00002-of-00002.safetensors': s2.subarray(0, s2.length - 4) };
  await rejects(openSafetensorsStore(memorySource('m', truncated)), /m\/model-00002-of-00002\.safetensors: invalid safetensors file: tensor 'b'.*past the end/);
});

test('safetensors: a source without ranged reads (read only) works the same', async () => {
  const a = seeded(10, 7);
  const bytes = writeSafetensors([{ name: 'a', shape: [10], data: a }]);
  const src = { name: 'plain', list: async () => ['model.safetensors'], read: async () => bytes };
  const store = await openSafetensorsStore(src);
  assert.deepEqual(await store.read('a'), a);
});
