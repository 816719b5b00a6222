// Tiny datasets for the training tests (not a test file): TokenizedExamples built directly (no
// tokenizer) for the tiny random model of test/model/tiny.ts (V = 256).
import { computeStats } from '../../src/data/stats.ts';
import type { Dataset, TokenizedExample } from '../../src/data/types.ts';
import { rng } from '../util.ts';

/**
 * n examples of 6..maxLen tokens. 'random': random ids; 'pattern': arithmetic runs
 * (id_{t+1} = id_t + step mod V, learnable). The first two tokens are the "prompt" (untrained).
 */
export function tinyDataset(n: number, seed: number, opts: { maxLen?: number; vocab?: number; kind?: 'random' | 'pattern' } = {}): Dataset {
  const r = rng(seed), V = opts.vocab ?? 256, maxLen = opts.maxLen ?? 16;
  const examples: TokenizedExample[] = [];
  for (let i = 0; i < n; i++) {
    const L = 6 + Math.floor(r() * (maxLen - 5));
    const ids = new Uint32Array(L);
    const start = Math.floor(r() * V), step = 1 + (i % 3);
    for (let t = 0; t < L; t++) ids[t] = opts.kind === 'pattern' ? (start + t * step) % V : Math.floor(r() * V);
    const trained = new Uint8Array(L);
    for (let t = 2; t < L; t++) trained[t] = 1;
    examples.push({ line: i + 1, format: 'text', ids, trained, fullLength: L, fullTrained: L - 2, trainedCount: L - 2 });
  }
  return {
    examples, format: 'text', trainOn: 'all', maxSeqLen: maxLen, excludedLines: [], sourceLines: n,
    stats: computeStats(examples, maxLen),
  };
}
