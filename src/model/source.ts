// Where model files come from, abstracted so the same loaders run in Node and in the browser.
// A ModelSource is a flat set of named files (HF repo folder: config.json, *.safetensors,
// tokenizer.json, ...; or one .gguf). `read` returns a whole file; the optional `size` and
// `readRange` let the loaders read headers and tensors piecewise, so multi-GB files need not be
// held in memory twice. Implementations here: memorySource (name → bytes, e.g. from IndexedDB)
// and blobSource (File/Blob objects, e.g. from <input type=file> or IndexedDB). The Node
// implementation (a directory or a single file path) is in ./source-node.ts. No DOM, no node:*.

export interface ModelSource {
  /** Human-readable name, used in error messages (a path, a folder name, a model id). */
  name: string;
  /** File names, '/'-separated and relative to the source root. */
  list(): Promise<string[]>;
  /** A whole file. Throws when the file does not exist. */
  read(file: string): Promise<Uint8Array>;
  /** Byte size of a file (optional: enables ranged reading). */
  size?(file: string): Promise<number>;
  /** Bytes [start, end) of a file, clamped to its size (optional: enables ranged reading). */
  readRange?(file: string, start: number, end: number): Promise<Uint8Array>;
}

/** A file of a source, read whole or by ranges, whichever the source supports. */
export interface RandomAccessFile {
  /** `<source name>/<file>`, for error messages. */
  label: string;
  size: number;
  /** Bytes [start, end), clamped to the file size (may return fewer bytes near EOF). */
  read(start: number, end: number): Promise<Uint8Array>;
}

/** Open `file` of `src` for random access; falls back to reading it whole. */
export async function openFile(src: ModelSource, file: string): Promise<RandomAccessFile> {
  const label = `${src.name}/${file}`;
  if (src.size && src.readRange) {
    const size = await src.size(file);
    const rr = src.readRange.bind(src);
    return { label, size, read: (s, e) => rr(file, s, Math.min(e, size)) };
  }
  const bytes = await src.read(file);
  return bytesFile(label, bytes);
}

/** A RandomAccessFile over bytes already in memory. */
export function bytesFile(label: string, bytes: Uint8Array): RandomAccessFile {
  return {
    label,
    size: bytes.length,
    read: async (s, e) => bytes.subarray(Math.min(s, bytes.length), Math.min(e, bytes.length)),
  };
}

function missing(src: string, file: string, have: string[]): Error {
  return new Error(`${src}: no file '${file}' (files: ${have.slice(0, 20).join(', ')}${have.length > 20 ? ', …' : ''})`);
}

/** A source over bytes in memory (browser: bytes from IndexedDB; tests: built files). */
export function memorySource(name: string, files: Map<string, Uint8Array> | Record<string, Uint8Array>): ModelSource {
  const map = files instanceof Map ? files : new Map(Object.entries(files));
  const get = (f: string): Uint8Array => {
    const b = map.get(f);
    if (!b) throw missing(name, f, [...map.keys()]);
    return b;
  };
  return {
    name,
    list: async () => [...map.keys()],
    read: async (f) => get(f),
    size: async (f) => get(f).length,
    readRange: async (f, s, e) => {
      const b = get(f);
      return b.subarray(Math.min(s, b.length), Math.min(e, b.length));
    },
  };
}

/**
 * A source over Blobs / Files (browser file pickers, IndexedDB-stored Blobs). Keys are the file
 * names; pass an array of File objects to use their `.name`.
 */
export function blobSource(name: string, files: Map<string, Blob> | Record<string, Blob> | { name: string; slice: Blob['slice']; size: number; arrayBuffer: Blob['arrayBuffer'] }[]): ModelSource {
  let map: Map<string, Blob>;
  if (Array.isArray(files)) map = new Map(files.map((f) => [f.name, f as unknown as Blob]));
  else map = files instanceof Map ? files : new Map(Object.entries(files));
  const get = (f: string): Blob => {
    const b = map.get(f);
    if (!b) throw missing(name, f, [...map.keys()]);
    return b;
  };
  return {
    name,
    list: async () => [...map.keys()],
    read: async (f) => new Uint8Array(await get(f).arrayBuffer()),
    size: async (f) => get(f).size,
    readRange: async (f, s, e) => new Uint8Array(await get(f).slice(s, e).arrayBuffer()),
  };
}

/** Read a whole file as UTF-8 text. */
export async function readText(src: ModelSource, file: string): Promise<string> {
  return new TextDecoder('utf-8').decode(await src.read(file));
}

/** Read and parse a JSON file, with an error naming the file on bad JSON. */
export async function readJson<T = unknown>(src: ModelSource, file: string): Promise<T> {
  const text = await readText(src, file);
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${src.name}/${file}: invalid JSON: ${(e as Error).message}`);
  }
}
