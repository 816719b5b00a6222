// Node-only file formats of the training layer (the CLI and Node tests; never imported by the
// browser build):
// - FileCheckpointSink(dir): `<dir>/<jobId>.ckpt.json` (everything but tensor bytes) +
//   `<dir>/<jobId>.ckpt.bin` (tensor bytes, concatenated); written to temporary names, then
//   renamed (.bin first, then .json: the json names the bin's byte length, so a torn pair is detected).
// - writeAdapterFiles(dir, adapter): `adapter.json` (manifest: config, base model, hyperparameters,
//   metrics, history, and per tensor {name, shape, dtype, offset, bytes}) + `adapter.bin` (raw
//   little-endian f32 tensors, in manifest order). readAdapterFiles reads them back. `whittle train`
//   now writes the PEFT layout instead (src/cli/train.ts); --adapter DIR still reads these
//   directories (src/cli/adapter-arg.ts).
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TensorInput } from '../store/core.ts';
import type { TrainedAdapter } from './adapter.ts';
import type { Checkpoint, CheckpointInput, CheckpointSink } from './checkpoint.ts';

interface TensorEntry {
  name: string;
  shape: number[];
  dtype: TensorInput['dtype'];
  offset: number;
  bytes: number;
}

function bytesOf(t: TensorInput): Uint8Array {
  const d = t.data;
  return d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Concatenate tensors into one buffer; returns the index entries. */
function pack(groups: TensorInput[][]): { bin: Uint8Array; index: TensorEntry[][] } {
  let size = 0;
  for (const g of groups) for (const t of g) size += bytesOf(t).byteLength;
  const bin = new Uint8Array(size);
  let off = 0;
  const index = groups.map((g) => g.map((t) => {
    const b = bytesOf(t);
    bin.set(b, off);
    const e = { name: t.name, shape: [...t.shape], dtype: t.dtype, offset: off, bytes: b.byteLength };
    off += b.byteLength;
    return e;
  }));
  return { bin, index };
}

function unpack(bin: Uint8Array, index: TensorEntry[], what: string): TensorInput[] {
  return index.map((e) => {
    if (e.offset + e.bytes > bin.byteLength) throw new Error(`${what}: tensor ${e.name} lies past the end of the .bin file (truncated?)`);
    return { name: e.name, shape: e.shape, dtype: e.dtype, data: bin.slice(e.offset, e.offset + e.bytes).buffer };
  });
}

async function atomicWrite(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** Checkpoints as files in `dir` (see the header). */
export class FileCheckpointSink implements CheckpointSink {
  constructor(readonly dir: string) {}

  private paths(jobId: string) {
    if (!/^[A-Za-z0-9._-]+$/.test(jobId)) throw new Error(`job id ${JSON.stringify(jobId)} cannot be a file name (use letters, digits, . _ -)`);
    return { json: join(this.dir, `${jobId}.ckpt.json`), bin: join(this.dir, `${jobId}.ckpt.bin`) };
  }

  async save(jobId: string, c: Checkpoint): Promise<void> {
    const p = this.paths(jobId);
    await mkdir(this.dir, { recursive: true });
    const { bin, index } = pack([c.lora, c.adamM, c.adamV]);
    const meta = { ...c, lora: index[0], adamM: index[1], adamV: index[2], binBytes: bin.byteLength };
    await atomicWrite(p.bin, bin);
    await atomicWrite(p.json, JSON.stringify(meta));
  }

  async load(jobId: string): Promise<CheckpointInput | undefined> {
    const p = this.paths(jobId);
    let text: string;
    try {
      text = await readFile(p.json, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const meta = JSON.parse(text) as Omit<CheckpointInput, 'lora' | 'adamM' | 'adamV'> & { lora: TensorEntry[]; adamM: TensorEntry[]; adamV: TensorEntry[]; binBytes: number };
    const bin = new Uint8Array(await readFile(p.bin));
    if (bin.byteLength !== meta.binBytes) throw new Error(`${p.bin} is ${bin.byteLength} bytes, its ${p.json} says ${meta.binBytes}: the checkpoint is torn; delete both to start over`);
    const { binBytes: _b, ...rest } = meta;
    return { ...rest, lora: unpack(bin, meta.lora, p.bin), adamM: unpack(bin, meta.adamM, p.bin), adamV: unpack(bin, meta.adamV, p.bin) };
  }
}

export interface AdapterManifest extends Omit<TrainedAdapter, 'tensors'> {
  /** the tensor file next to this manifest */
  data: string;
  tensors: TensorEntry[];
}

/** Write adapter.json + adapter.bin into `dir` (created); returns both paths. */
export async function writeAdapterFiles(dir: string, a: TrainedAdapter): Promise<{ manifest: string; data: string }> {
  await mkdir(dir, { recursive: true });
  const { bin, index } = pack([a.tensors]);
  const manifest: AdapterManifest = { ...a, data: 'adapter.bin', tensors: index[0] };
  const paths = { manifest: join(dir, 'adapter.json'), data: join(dir, 'adapter.bin') };
  await atomicWrite(paths.data, bin);
  await atomicWrite(paths.manifest, JSON.stringify(manifest, null, 1));
  return paths;
}

/** Read an adapter written by writeAdapterFiles. */
export async function readAdapterFiles(dir: string): Promise<TrainedAdapter> {
  const m = JSON.parse(await readFile(join(dir, 'adapter.json'), 'utf8')) as AdapterManifest;
  const bin = new Uint8Array(await readFile(join(dir, m.data)));
  const { data: _d, ...rest } = m;
  return { ...rest, tensors: unpack(bin, m.tensors, join(dir, m.data)) };
}
