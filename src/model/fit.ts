// Does a model's frozen base fit this GPU? Computed from the config alone (loadModelConfig reads
// only config.json or a GGUF header), before any weight is read or uploaded, with the same buffer
// sizes LlamaModel (./llama.ts) allocates: one buffer per weight, bytesOf(quant, rows, cols) for
// the embedding / lm_head / projections, f32 for norms, biases and the RoPE table.
// Limits, as the kernels bind them (src/ops/linear.ts, embedding.ts, xent.ts):
//   - every buffer ≤ maxBufferSize;
//   - the layer projections (q k v o gate up down) are bound whole → each ≤ maxStorageBufferBindingSize;
//   - the embedding and lm_head are bound in row chunks → one row ≤ maxStorageBufferBindingSize;
//   - optionally, all base weights ≤ a memory budget (WebGPU does not report GPU memory).
// checkFits throws an Error naming the model, the tensor or total at fault, what the device
// allows, and which quantization would fit ("q8 would fit …"). baseMemory reports the base's
// bytes in f32 / q8 / q4 for the UI and CLI. The training-run planner (activations, LoRA,
// optimizer) is src/train/memory.ts; this covers the base alone. No DOM, no node:*.
import type { LlamaConfig } from './config.ts';
import { loadModelConfig } from './load.ts';
import type { ModelSource } from './source.ts';
import { bytesOf, type QFormat } from './quant.ts';
import { rowWords } from '../ops/linear.ts';

/** Most precise first. */
export const QFORMATS: readonly QFormat[] = ['f32', 'f16', 'q8', 'q4'];

export interface FitLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

export interface BaseTensor {
  name: string;
  bytes: number;
  /** 'whole': bound whole by the kernels; 'rows': bound in row chunks (bytes of one row in rowBytes); 'none': small f32 vectors */
  binding: 'whole' | 'rows';
  rowBytes: number;
}

export interface BaseMemory {
  /** unique parameters of the base (tied embeddings counted once) */
  params: number;
  /** bytes of every base buffer in each format (norms, biases and the RoPE table stay f32) */
  bytes: Record<QFormat, number>;
  /** the largest single buffer in each format */
  largest: Record<QFormat, { name: string; bytes: number }>;
}

export interface FitReport {
  fits: boolean;
  quant: QFormat;
  /** total bytes of the base in `quant` */
  bytes: number;
  largest: { name: string; bytes: number };
  /** one sentence per problem, empty when it fits */
  problems: string[];
  /** formats in which the base fits these limits and budget */
  fitsIn: QFormat[];
}

const buf = (bytes: number) => Math.max(4, Math.ceil(bytes / 4) * 4);

/** Human-readable size: MiB under 1 GiB, else GiB. */
export function formatBytes(b: number): string {
  if (b >= 1 << 30) return `${(b / (1 << 30)).toFixed(2)} GiB`;
  if (b >= 1 << 20) return `${(b / (1 << 20)).toFixed(1)} MiB`;
  return `${(b / 1024).toFixed(1)} KiB`;
}

/** The base buffers LlamaModel allocates for `cfg` in `quant`, in allocation order. */
export function baseTensors(cfg: LlamaConfig, quant: QFormat): BaseTensor[] {
  const C = cfg.hidden, QD = cfg.heads * cfg.headDim, KVD = cfg.kvHeads * cfg.headDim, F = cfg.ffn, V = cfg.vocab;
  const rowBytes = (cols: number) => rowWords({ format: quant, cols }) * 4;
  const out: BaseTensor[] = [];
  const mat = (name: string, rows: number, cols: number, binding: 'whole' | 'rows') =>
    out.push({ name, bytes: buf(bytesOf(quant, rows, cols)), binding, rowBytes: rowBytes(cols) });
  const vec = (name: string, n: number) => out.push({ name, bytes: buf(n * 4), binding: 'whole', rowBytes: n * 4 });
  mat('embed', V, C, 'rows');
  if (!cfg.tiedEmbeddings) mat('lmHead', V, C, 'rows');
  vec('norm', C);
  vec('invFreq', cfg.headDim / 2);
  for (let l = 0; l < cfg.layers; l++) {
    vec(`l${l}.attnNorm`, C);
    vec(`l${l}.ffnNorm`, C);
    mat(`l${l}.wq`, QD, C, 'whole'); mat(`l${l}.wk`, KVD, C, 'whole'); mat(`l${l}.wv`, KVD, C, 'whole');
    mat(`l${l}.wo`, C, QD, 'whole');
    mat(`l${l}.wGate`, F, C, 'whole'); mat(`l${l}.wUp`, F, C, 'whole'); mat(`l${l}.wDown`, C, F, 'whole');
    if (cfg.attnBias) { vec(`l${l}.bq`, QD); vec(`l${l}.bk`, KVD); vec(`l${l}.bv`, KVD); }
  }
  return out;
}

/** Parameters of the base (tied embeddings counted once; the RoPE table is not a parameter). */
export function baseParams(cfg: LlamaConfig): number {
  const C = cfg.hidden, QD = cfg.heads * cfg.headDim, KVD = cfg.kvHeads * cfg.headDim, F = cfg.ffn, V = cfg.vocab;
  const layer = 2 * C + QD * C + 2 * KVD * C + C * QD + 3 * F * C + (cfg.attnBias ? QD + 2 * KVD : 0);
  return V * C * (cfg.tiedEmbeddings ? 1 : 2) + C + cfg.layers * layer;
}

/** Bytes of the base in f32, q8 and q4 (what LlamaModel.memoryReport().baseWeights will say). */
export function baseMemory(cfg: LlamaConfig): BaseMemory {
  const bytes = {} as Record<QFormat, number>, largest = {} as BaseMemory['largest'];
  for (const q of QFORMATS) {
    const ts = baseTensors(cfg, q);
    bytes[q] = ts.reduce((a, t) => a + t.bytes, 0);
    largest[q] = ts.reduce((a, t) => (t.bytes > a.bytes ? { name: t.name, bytes: t.bytes } : a), { name: '', bytes: 0 });
  }
  return { params: baseParams(cfg), bytes, largest };
}

/** One line for the UI / CLI: "656.0K params · f32 2.6 MiB · q8 … · q4 …". */
export function describeBaseMemory(cfg: LlamaConfig): string {
  const m = baseMemory(cfg);
  const p = m.params >= 1e9 ? `${(m.params / 1e9).toFixed(2)}B` : m.params >= 1e6 ? `${(m.params / 1e6).toFixed(1)}M` : `${(m.params / 1e3).toFixed(1)}K`;
  return `${p} params · ${QFORMATS.map((q) => `${q} ${formatBytes(m.bytes[q])}`).join(' · ')}`;
}

function problemsOf(cfg: LlamaConfig, quant: QFormat, limits: FitLimits, budgetBytes: number | undefined): { problems: string[]; bytes: number; largest: { name: string; bytes: number } } {
  const ts = baseTensors(cfg, quant);
  const bytes = ts.reduce((a, t) => a + t.bytes, 0);
  const problems: string[] = [];
  let largest = { name: '', bytes: 0 };
  let overBuffer: BaseTensor | null = null, overBind: BaseTensor | null = null, overRow: BaseTensor | null = null;
  for (const t of ts) {
    if (t.bytes > largest.bytes) largest = { name: t.name, bytes: t.bytes };
    if (t.bytes > limits.maxBufferSize && (!overBuffer || t.bytes > overBuffer.bytes)) overBuffer = t;
    if (t.binding === 'whole' && t.bytes > limits.maxStorageBufferBindingSize && (!overBind || t.bytes > overBind.bytes)) overBind = t;
    if (t.binding === 'rows' && t.rowBytes + 256 > limits.maxStorageBufferBindingSize && !overRow) overRow = t;
  }
  if (overBuffer) {
    problems.push(`${overBuffer.name} needs a ${formatBytes(overBuffer.bytes)} buffer in ${quant}, this adapter allows ${formatBytes(limits.maxBufferSize)} (maxBufferSize)`);
  }
  if (overBind) {
    problems.push(`${overBind.name} is ${formatBytes(overBind.bytes)} in ${quant} and is bound whole, this adapter allows ${formatBytes(limits.maxStorageBufferBindingSize)} (maxStorageBufferBindingSize)`);
  }
  if (overRow) {
    problems.push(`one row of ${overRow.name} is ${formatBytes(overRow.rowBytes)} in ${quant}, over maxStorageBufferBindingSize ${formatBytes(limits.maxStorageBufferBindingSize)}`);
  }
  if (budgetBytes !== undefined && bytes > budgetBytes) {
    problems.push(`the base needs ${formatBytes(bytes)} in ${quant}, the memory budget allows ${formatBytes(budgetBytes)}`);
  }
  return { problems, bytes, largest };
}

/** Whether the base of `cfg` fits in `quant` (and which formats would), without throwing. */
export function fitReport(cfg: LlamaConfig, quant: QFormat, limits: FitLimits, budgetBytes?: number): FitReport {
  const mine = problemsOf(cfg, quant, limits, budgetBytes);
  const fitsIn = QFORMATS.filter((q) => (q === quant ? mine : problemsOf(cfg, q, limits, budgetBytes)).problems.length === 0);
  return { fits: mine.problems.length === 0, quant, bytes: mine.bytes, largest: mine.largest, problems: mine.problems, fitsIn };
}

/**
 * Throw a clear Error when the base of `cfg` (named `name` in the message) does not fit the
 * adapter's buffer limits or the memory budget in `quant`; say which quantization would fit, or
 * that none does. Returns the report when it fits.
 */
export function checkFits(cfg: LlamaConfig, quant: QFormat, limits: FitLimits, budgetBytes?: number, name = 'the model'): FitReport {
  const r = fitReport(cfg, quant, limits, budgetBytes);
  if (r.fits) return r;
  const mem = baseMemory(cfg);
  const sizes = QFORMATS.map((q) => `${q} ${formatBytes(mem.bytes[q])}`).join(', ');
  // prefer the most precise format that fits
  const better = r.fitsIn.filter((q) => QFORMATS.indexOf(q) > QFORMATS.indexOf(quant));
  let tip: string;
  if (better.length) {
    tip = `${better[0]} would fit (${formatBytes(mem.bytes[better[0]])}) — load it with quantization ${better[0]}`;
  } else if (r.fitsIn.length) {
    tip = `${r.fitsIn.join(' or ')} would fit`;
  } else {
    tip = quant === 'q4'
      ? 'No quantization is smaller than q4 — choose a smaller model (or allow a larger budget)'
      : `It does not fit even as q4 (${problemsOf(cfg, 'q4', limits, budgetBytes).problems.join('; ')}) — choose a smaller model`;
  }
  throw new Error(`${name} does not fit this GPU as ${quant}: ${r.problems.join('; ')}. Base size: ${sizes}. ${tip}.`);
}

/** checkFits for a model source, reading only its config (config.json or the GGUF header). */
export async function checkModelFits(src: ModelSource, quant: QFormat, limits: FitLimits, budgetBytes?: number, opts: { file?: string } = {}): Promise<FitReport> {
  const cfg = await loadModelConfig(src, opts);
  return checkFits(cfg, quant, limits, budgetBytes, src.name);
}
