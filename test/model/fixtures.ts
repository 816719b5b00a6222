// Shared fixtures of the loader/tokenizer tests: paths of the real models in ../shared/models
// (outside the repo), their reference.json, and small helpers to build model files in memory.
// Nothing here writes to disk.
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { randn32 } from '../util.ts';

export const MODELS = fileURLToPath(new URL('../../../shared/models/', import.meta.url));
export const TS656K = MODELS + 'tinystories-656k';
export const S260K = MODELS + 'stories260K';
export const S260K_GGUF = S260K + '/stories260K.gguf';

export interface Ref656k {
  prompt: string;
  prompt_ids_tokenizer_json: number[];
  prompt_ids_no_prefix: number[];
  greedy_from_bos_ids: number[];
  greedy_from_bos_text: string;
  prompt_no_prefix_logits: number[][];
  nll_text: string;
  nll_ids_tokenizer_json: number[];
  nll_ids_no_prefix: number[];
}

export interface Ref260k {
  prompt: string;
  prompt_ids: number[];
  greedy_continuation_ids: number[];
  greedy_text: string;
  prompt_logits: number[][];
  nll_text: string;
  nll_ids: number[];
}

export const ref656k = (): Ref656k => JSON.parse(readFileSync(TS656K + '/reference.json', 'utf8'));
export const ref260k = (): Ref260k => JSON.parse(readFileSync(S260K + '/reference.json', 'utf8'));

/** All files of a model folder as name → bytes (the browser path: bytes from IndexedDB). */
export function folderBytes(dir: string): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  for (const f of readdirSync(dir)) m.set(f, new Uint8Array(readFileSync(dir + '/' + f)));
  return m;
}

export const utf8 = (s: string) => new TextEncoder().encode(s);
export const json = (o: unknown) => utf8(JSON.stringify(o));

/** Assert that `p` rejects (or `f` throws) with a message matching every pattern. */
export async function rejects(p: Promise<unknown> | (() => unknown), ...patterns: RegExp[]): Promise<Error> {
  let error: Error | null = null;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    error = e as Error;
  }
  assert.ok(error, `expected an error matching ${patterns.join(', ')}, but none was thrown`);
  for (const re of patterns) assert.match(error.message, re, `error message: ${error.message}`);
  return error;
}

/** Seeded uniform values in [-scale, scale) (the tests' one generator: test/util.ts randn32). */
export const seeded = randn32;
