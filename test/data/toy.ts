// Toy tokenizers and helpers for the dataset-layer tests (test/data): a character-level tokenizer
// with special tokens matched as whole strings, and a greedy longest-match tokenizer whose pieces
// can straddle the boundaries the loss mask has to find. Not a test file itself.
import type { Tokenizer } from '../../src/data/index.ts';

export interface ToyTokenizer extends Tokenizer {
  id(piece: string): number;
}

/**
 * Character-level: each special string is one id (0..k-1), any other code point c is k + c.
 * bos/eos name special strings (bos null: none).
 */
export function charTokenizer(opts: { specials?: string[]; bos?: string | null; eos?: string[] } = {}): ToyTokenizer {
  const specials = opts.specials ?? ['<s>', '</s>', '<|im_start|>', '<|im_end|>'];
  const k = specials.length;
  const id = (p: string) => {
    const i = specials.indexOf(p);
    if (i >= 0) return i;
    if ([...p].length !== 1) throw new Error(`charTokenizer: no piece ${JSON.stringify(p)}`);
    return k + p.codePointAt(0)!;
  };
  const bos = opts.bos === undefined ? '<s>' : opts.bos;
  return {
    id,
    bos: bos === null ? null : id(bos),
    eos: (opts.eos ?? ['</s>']).map(id),
    vocabSize: k + 0x110000,
    encode(text, o = {}) {
      const out: number[] = [];
      if (o.addBos && bos !== null) out.push(id(bos));
      let i = 0;
      outer: while (i < text.length) {
        for (let s = 0; s < k; s++) if (text.startsWith(specials[s], i)) { out.push(s); i += specials[s].length; continue outer; }
        const cp = text.codePointAt(i)!;
        out.push(k + cp);
        i += cp > 0xffff ? 2 : 1;
      }
      return out;
    },
    decode(ids) {
      return ids.map((x) => (x < k ? specials[x] : String.fromCodePoint(x - k))).join('');
    },
  };
}

/**
 * Greedy longest-match over `pieces` (multi-character tokens, e.g. ": H" that straddles the
 * `Assistant:` | ` Hello` boundary), then single characters; specials as in charTokenizer.
 */
export function greedyTokenizer(pieces: string[], opts: { specials?: string[]; bos?: string | null; eos?: string[] } = {}): ToyTokenizer {
  const specials = opts.specials ?? ['<s>', '</s>'];
  const vocab = [...specials, ...pieces];
  const base = vocab.length;
  const id = (p: string) => {
    const i = vocab.indexOf(p);
    if (i >= 0) return i;
    if ([...p].length !== 1) throw new Error(`greedyTokenizer: no piece ${JSON.stringify(p)}`);
    return base + p.codePointAt(0)!;
  };
  const byLen = [...pieces].sort((a, b) => b.length - a.length);
  const bos = opts.bos === undefined ? '<s>' : opts.bos;
  return {
    id,
    bos: bos === null ? null : id(bos),
    eos: (opts.eos ?? ['</s>']).map(id),
    vocabSize: base + 0x110000,
    encode(text, o = {}) {
      const out: number[] = [];
      if (o.addBos && bos !== null) out.push(id(bos));
      let i = 0;
      outer: while (i < text.length) {
        for (const s of specials) if (text.startsWith(s, i)) { out.push(id(s)); i += s.length; continue outer; }
        for (const p of byLen) if (text.startsWith(p, i)) { out.push(id(p)); i += p.length; continue outer; }
        const cp = text.codePointAt(i)!;
        out.push(base + cp);
        i += cp > 0xffff ? 2 : 1;
      }
      return out;
    },
    decode(ids) {
      return ids.map((x) => (x < base ? vocab[x] : String.fromCodePoint(x - base))).join('');
    },
  };
}

/** JSONL text from values (objects are JSON.stringify'd, strings are taken as raw lines). */
export function jsonl(...lines: unknown[]): string {
  return lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';
}

/** n distinct valid chat examples. */
export function chatLines(n: number, start = 0): unknown[] {
  return Array.from({ length: n }, (_, i) => ({
    messages: [
      { role: 'user', content: `question ${start + i}` },
      { role: 'assistant', content: `answer ${start + i}` },
    ],
  }));
}

/** The decoded text of the trained tokens, split into runs of consecutive trained tokens. */
export function trainedRuns(tok: Tokenizer, ids: ArrayLike<number>, trained: ArrayLike<number>): string[] {
  const runs: string[] = [];
  let cur: number[] = [];
  for (let t = 0; t <= ids.length; t++) {
    if (t < ids.length && trained[t]) cur.push(ids[t]);
    else if (cur.length) { runs.push(tok.decode(cur)); cur = []; }
  }
  return runs;
}
