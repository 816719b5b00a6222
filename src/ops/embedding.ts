// Launcher for shaders/embedding.wgsl; twin: src/ref/embedding.ts.
// Legend: N rows (B*T), C hidden, V vocab.
// A table (or its gradient) bigger than maxStorageBufferBindingSize is bound in row chunks (offsets
// aligned down to minStorageBufferOffsetAlignment), one dispatch per chunk; usually there is one.
import code from '../../shaders/embedding.wgsl?raw';
import { type Buf, type Gpu, uniforms } from '../gpu/device.ts';
import type { QFormat } from '../model/quant.ts';
import { type QWeight, rowWords } from './linear.ts';
import { grid1d, need } from './util.ts';

const FMT: Record<QFormat, number> = { f32: 0, q8: 1, q4: 2, f16: 3 };

interface Chunk { r0: number; r1: number; bind: Buf; wbase: number }

/** Bindings covering `rows` rows of `rw` u32 words each in `buf`, each at most maxBind bytes. */
function chunks(gpu: Gpu, buf: Buf, rows: number, rw: number, maxBind: number): Chunk[] {
  const b = buf instanceof GPUBuffer ? { buffer: buf, offset: 0 } : { buffer: buf.buffer, offset: buf.offset ?? 0 };
  const rowBytes = rw * 4;
  if (rows * rowBytes <= maxBind) return [{ r0: 0, r1: rows, bind: buf, wbase: 0 }];
  const align = gpu.alignment;
  const per = Math.floor((maxBind - align) / rowBytes);
  need(per >= 1, `embedding: one row (${rowBytes} bytes) must fit a binding of ${maxBind} bytes`);
  const out: Chunk[] = [];
  for (let r0 = 0; r0 < rows; r0 += per) {
    const r1 = Math.min(rows, r0 + per);
    const start = b.offset + r0 * rowBytes;
    const offset = Math.floor(start / align) * align;
    out.push({ r0, r1, bind: { buffer: b.buffer, offset, size: start - offset + (r1 - r0) * rowBytes }, wbase: (start - offset) / 4 });
  }
  return out;
}

function maxBindOf(gpu: Gpu, override?: number): number {
  return override ?? gpu.info.limits.maxStorageBufferBindingSize ?? 128 * 1024 * 1024;
}

/**
 * out (N,C) = wte[ids[n]] — overwrites; ids ≥ V give zero rows. wte: QWeight (V,C) f32/f16/q8/q4.
 * `maxBindBytes` (tests only) lowers the binding size limit to force row chunking.
 */
export function embedding_forward(gpu: Gpu, out: Buf, ids: Buf, wte: QWeight, N: number, C: number, maxBindBytes?: number): void {
  need(wte.cols === C, `embedding: table cols ${wte.cols} must equal C ${C}`);
  if (N === 0 || C === 0) return;
  const V = wte.rows, rw = rowWords(wte);
  const p = gpu.pipeline('embedding', code, 'embedding_forward', { FMT: FMT[wte.format] });
  for (const ch of chunks(gpu, wte.buf, V, rw, maxBindOf(gpu, maxBindBytes))) {
    const u = uniforms([[N, 'u32'], [C, 'u32'], [V, 'u32'], [ch.r0, 'u32'], [ch.r1, 'u32'], [ch.wbase, 'u32'], [rw, 'u32']]);
    gpu.dispatch(p, u, [out, ids, ch.bind], grid1d(gpu, N * C, 256));
  }
}

/**
 * dwte (V,C) f32 += Σ_{n: ids[n]=v} dout[n] (C); ids ≥ V are skipped. Deterministic, no atomics.
 * `maxBindBytes` (tests only) lowers the binding size limit to force row chunking.
 */
export function embedding_backward(gpu: Gpu, dwte: Buf, dout: Buf, ids: Buf, N: number, C: number, V: number, maxBindBytes?: number): void {
  if (N === 0 || C === 0 || V === 0) return;
  const p = gpu.pipeline('embedding', code, 'embedding_backward');
  for (const ch of chunks(gpu, dwte, V, C, maxBindOf(gpu, maxBindBytes))) {
    const u = uniforms([[N, 'u32'], [C, 'u32'], [V, 'u32'], [ch.r0, 'u32'], [ch.r1, 'u32'], [ch.wbase, 'u32'], [C, 'u32']]);
    gpu.dispatch(p, u, [ch.bind, dout, ids], grid1d(gpu, N * C, 256));
  }
}
