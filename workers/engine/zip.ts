// A minimal ZIP writer (stored entries, no compression: model weights do not compress, and it keeps
// this small): local file headers with CRC-32, then the central directory and its end record. One
// download for an export made of several files (PEFT folder, merged model, recipe).
// ZIP64 is not written: each file and the archive stay under 4 GiB (checked).
// It is not: a ZIP reader, nor streaming.

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The bytes of a .zip holding `files` (name → bytes, '/'-separated names) in insertion order. */
export function zip(files: Map<string, Uint8Array>): Uint8Array {
  const enc = new TextEncoder();
  const entries: Array<{ name: Uint8Array; data: Uint8Array; crc: number; offset: number }> = [];
  let size = 0;
  for (const [name, data] of files) {
    const n = enc.encode(name);
    entries.push({ name: n, data, crc: crc32(data), offset: size });
    size += 30 + n.length + data.length;
  }
  const central = entries.reduce((a, e) => a + 46 + e.name.length, 0);
  if (size + central + 22 > 0xffffffff) throw new Error('the export is larger than 4 GiB, more than a ZIP without ZIP64 holds; choose a smaller dtype (f16)');
  const out = new Uint8Array(size + central + 22);
  const dv = new DataView(out.buffer);
  const date = 0x21; // 1980-01-01: reproducible archives
  let p = 0;
  for (const e of entries) {
    dv.setUint32(p, 0x04034b50, true);
    dv.setUint16(p + 4, 20, true); // version needed
    dv.setUint16(p + 6, 0x0800, true); // UTF-8 names
    dv.setUint16(p + 8, 0, true); // stored
    dv.setUint16(p + 10, 0, true);
    dv.setUint16(p + 12, date, true);
    dv.setUint32(p + 14, e.crc, true);
    dv.setUint32(p + 18, e.data.length, true);
    dv.setUint32(p + 22, e.data.length, true);
    dv.setUint16(p + 26, e.name.length, true);
    dv.setUint16(p + 28, 0, true);
    out.set(e.name, p + 30);
    out.set(e.data, p + 30 + e.name.length);
    p += 30 + e.name.length + e.data.length;
  }
  const cd = p;
  for (const e of entries) {
    dv.setUint32(p, 0x02014b50, true);
    dv.setUint16(p + 4, 20, true); // version made by
    dv.setUint16(p + 6, 20, true);
    dv.setUint16(p + 8, 0x0800, true);
    dv.setUint16(p + 10, 0, true);
    dv.setUint16(p + 12, 0, true);
    dv.setUint16(p + 14, date, true);
    dv.setUint32(p + 16, e.crc, true);
    dv.setUint32(p + 20, e.data.length, true);
    dv.setUint32(p + 24, e.data.length, true);
    dv.setUint16(p + 28, e.name.length, true);
    dv.setUint32(p + 42, e.offset, true);
    out.set(e.name, p + 46);
    p += 46 + e.name.length;
  }
  dv.setUint32(p, 0x06054b50, true);
  dv.setUint16(p + 8, entries.length, true);
  dv.setUint16(p + 10, entries.length, true);
  dv.setUint32(p + 12, p - cd, true);
  dv.setUint32(p + 16, cd, true);
  return out;
}
