// Node implementation of ModelSource (./source.ts): a directory (a Hugging Face model folder,
// listed recursively) or a single file (e.g. a .gguf). Reads use ranged file reads, so large
// weight files are streamed tensor by tensor. Node only (node:fs); the browser uses
// memorySource / blobSource from ./source.ts.
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import type { ModelSource } from './source.ts';

async function walk(dir: string, root: string, out: string[]): Promise<void> {
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) {
      if (!ent.name.startsWith('.')) await walk(p, root, out);
    } else if (ent.isFile() || ent.isSymbolicLink()) {
      out.push(relative(root, p).split(sep).join('/'));
    }
  }
}

/** A ModelSource over a directory or one file on disk. */
export async function nodeSource(path: string): Promise<ModelSource> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new Error(`${path}: cannot open model path: ${(e as Error).message}`);
  }
  if (st.isDirectory()) {
    const resolve = (f: string) => join(path, ...f.split('/'));
    return {
      name: path,
      list: async () => {
        const out: string[] = [];
        await walk(path, path, out);
        return out.sort();
      },
      read: async (f) => new Uint8Array(await readFile(resolve(f))),
      size: async (f) => (await stat(resolve(f))).size,
      readRange: (f, s, e) => readRange(resolve(f), s, e),
    };
  }
  const name = basename(path);
  const check = (f: string) => {
    if (f !== name) throw new Error(`${path}: no file '${f}' (this source is the single file '${name}')`);
    return path;
  };
  return {
    name: path,
    list: async () => [name],
    read: async (f) => new Uint8Array(await readFile(check(f))),
    size: async (f) => (await stat(check(f))).size,
    readRange: (f, s, e) => readRange(check(f), s, e),
  };
}

async function readRange(file: string, start: number, end: number): Promise<Uint8Array> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const s = Math.min(start, size), e = Math.min(end, size);
    const buf = new Uint8Array(e - s);
    let off = 0;
    while (off < buf.length) {
      const { bytesRead } = await fh.read(buf, off, buf.length - off, s + off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off === buf.length ? buf : buf.subarray(0, off);
  } finally {
    await fh.close();
  }
}
