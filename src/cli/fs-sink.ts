// A FileSink (src/export/adapter.ts) writing under a directory on disk, for the CLI commands that
// write exporter output (export, train). Names are '/'-separated and relative to the root;
// directories are created as needed. Each written file is recorded (path, bytes) for the summary.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { FileSink } from '../export/adapter.ts';

/** A sink writing under `root` (directories created); every file written is pushed onto `written`. */
export function dirSink(root: string, written: { path: string; bytes: number }[] = []): FileSink {
  return async (name, bytes) => {
    const p = join(root, ...name.split('/'));
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, bytes);
    written.push({ path: p, bytes: bytes.length });
  };
}

/** "12.3 MiB", "4.0 KiB", "12 B". */
export const size = (b: number): string => (b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${b} B`);
