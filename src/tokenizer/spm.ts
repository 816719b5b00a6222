// SentencePiece BPE tokenizer as llama.cpp runs it for GGUF `tokenizer.ggml.model = "llama"`
// (llm_tokenizer_spm): vocabulary pieces with scores and types, no merges list.
// Encode: split the text around special (control / user-defined) token strings; each plain
// fragment gets a leading space if `add_space_prefix` and it starts the text or follows a special
// token, spaces become "▁", then it is split into UTF-8 characters and the adjacent pair whose
// concatenation is a vocabulary piece with the highest score is merged repeatedly (ties: leftmost).
// Characters left that are not pieces become byte-fallback tokens <0xXX> (else <unk>).
// Decode: "▁" → " ", <0xXX> → raw bytes (then UTF-8), one leading space dropped when the prefix
// space was added. No DOM.
import type { DecodeOptions, EncodeOptions, Tokenizer } from './types.ts';

/** GGUF / llama.cpp token types. */
export const enum TokenType {
  UNDEFINED = 0, NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6,
}

export interface SpmVocab {
  tokens: string[];
  scores: number[];
  /** TokenType per id (absent → NORMAL, except <0xXX> → BYTE) */
  types?: number[];
  bos: number | null;
  eos: number[];
  unk: number | null;
  addBos: boolean;
  addSpacePrefix: boolean;
}

const SPACE = '\u2581';

/** Max-heap of candidate merges ordered by (score desc, left asc). */
class Heap {
  a: { l: number; r: number; score: number; size: number }[] = [];
  private less(i: number, j: number) {
    const x = this.a[i], y = this.a[j];
    return x.score < y.score || (x.score === y.score && x.l > y.l);
  }
  push(v: { l: number; r: number; score: number; size: number }) {
    const a = this.a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(p, i)) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }
  pop() {
    const a = this.a;
    const top = a[0];
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && this.less(m, l)) m = l;
        if (r < a.length && this.less(m, r)) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
  get size() { return this.a.length; }
}

export class SpmTokenizer implements Tokenizer {
  readonly kind = 'spm' as const;
  readonly vocabSize: number;
  readonly bos: number | null;
  readonly eos: number[];
  readonly addBosDefault: boolean;
  readonly prefixSpaceDefault: boolean;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  private tokens: string[];
  private scores: number[];
  private types: number[];
  private toId = new Map<string, number>();
  private byteId = new Int32Array(256).fill(-1);
  private unk: number | null;
  /** special strings matched in text, longest first */
  private specials: { text: string; id: number }[];
  private specialRe: RegExp | null;

  constructor(v: SpmVocab) {
    this.tokens = v.tokens;
    this.scores = v.scores;
    this.vocabSize = v.tokens.length;
    this.types = v.tokens.map((t, i) => v.types?.[i] ?? (/^<0x[0-9A-Fa-f]{2}>$/.test(t) ? TokenType.BYTE : TokenType.NORMAL));
    for (let i = 0; i < v.tokens.length; i++) if (!this.toId.has(v.tokens[i])) this.toId.set(v.tokens[i], i);
    for (let i = 0; i < v.tokens.length; i++) {
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(v.tokens[i]);
      if (m && this.types[i] === TokenType.BYTE) this.byteId[parseInt(m[1], 16)] = i;
    }
    this.bos = v.bos;
    this.eos = v.eos;
    this.unk = v.unk;
    this.addBosDefault = v.addBos && v.bos !== null;
    this.prefixSpaceDefault = v.addSpacePrefix;
    this.bosToken = v.bos === null ? null : v.tokens[v.bos];
    this.eosToken = v.eos.length ? v.tokens[v.eos[0]] : null;
    this.specials = [];
    for (let i = 0; i < v.tokens.length; i++) {
      const t = this.types[i];
      if ((t === TokenType.CONTROL || t === TokenType.USER_DEFINED) && v.tokens[i].length > 0) this.specials.push({ text: v.tokens[i], id: i });
    }
    this.specials.sort((a, b) => b.text.length - a.text.length);
    this.specialRe = this.specials.length
      ? new RegExp(this.specials.map((s) => s.text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g')
      : null;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if ((opts.addBos ?? this.addBosDefault) && this.bos !== null) out.push(this.bos);
    const prefix = opts.prefixSpace ?? this.prefixSpaceDefault;
    let prevSpecial = true;
    const plain = (s: string) => {
      if (!s) return;
      this.encodeFragment((prefix && prevSpecial ? ' ' : '') + s, out);
      prevSpecial = false;
    };
    if (this.specialRe) {
      let last = 0;
      const byText = new Map(this.specials.map((s) => [s.text, s.id]));
      for (const m of text.matchAll(this.specialRe)) {
        plain(text.slice(last, m.index));
        out.push(byText.get(m[0])!);
        prevSpecial = true;
        last = m.index! + m[0].length;
      }
      plain(text.slice(last));
    } else plain(text);
    return out;
  }

  private encodeFragment(raw: string, out: number[]): void {
    const text = raw.replaceAll(' ', SPACE);
    // symbols: one per code point, as a doubly linked list over the string
    const chars = Array.from(text);
    const n = chars.length;
    const sym = chars.slice();
    const prev = new Int32Array(n), next = new Int32Array(n);
    for (let i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
    const heap = new Heap();
    const tryAdd = (l: number, r: number) => {
      if (l < 0 || r < 0) return;
      const s = sym[l] + sym[r];
      const id = this.toId.get(s);
      if (id === undefined) return;
      heap.push({ l, r, score: this.scores[id] ?? 0, size: s.length });
    };
    for (let i = 1; i < n; i++) tryAdd(i - 1, i);
    while (heap.size) {
      const b = heap.pop();
      // stale candidate: one side already merged away or changed
      if (!sym[b.l] || !sym[b.r] || sym[b.l].length + sym[b.r].length !== b.size || next[b.l] !== b.r) continue;
      sym[b.l] += sym[b.r];
      sym[b.r] = '';
      next[b.l] = next[b.r];
      if (next[b.r] >= 0) prev[next[b.r]] = b.l;
      tryAdd(prev[b.l], b.l);
      tryAdd(b.l, next[b.l]);
    }
    const enc = new TextEncoder();
    for (let i = 0; i !== -1 && n > 0; i = next[i]) {
      const s = sym[i];
      const id = this.toId.get(s);
      if (id !== undefined) { out.push(id); continue; }
      for (const byte of enc.encode(s)) {
        const bid = this.byteId[byte];
        if (bid >= 0) out.push(bid);
        else if (this.unk !== null) out.push(this.unk);
      }
    }
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const bytes: number[] = [];
    const enc = new TextEncoder();
    let first = true;
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k];
      if (id < 0 || id >= this.tokens.length) continue;
      const t = this.types[id];
      if (t === TokenType.CONTROL || t === TokenType.UNKNOWN || t === TokenType.UNUSED) {
        if (opts.skipSpecial || t === TokenType.UNUSED) continue;
        for (const b of enc.encode(this.tokens[id])) bytes.push(b);
        continue;
      }
      if (t === TokenType.BYTE) {
        bytes.push(parseInt(this.tokens[id].slice(3, 5), 16));
        first = false;
        continue;
      }
      let piece = t === TokenType.USER_DEFINED ? this.tokens[id] : this.tokens[id].replaceAll(SPACE, ' ');
      if (first && this.prefixSpaceDefault && piece.startsWith(' ')) piece = piece.slice(1);
      first = false;
      for (const b of enc.encode(piece)) bytes.push(b);
    }
    return new TextDecoder('utf-8').decode(new Uint8Array(bytes));
  }

  tokenToString(id: number): string {
    return this.tokens[id] ?? '';
  }

  tokenToId(piece: string): number | undefined {
    return this.toId.get(piece);
  }

  isSpecial(id: number): boolean {
    const t = this.types[id];
    return t === TokenType.CONTROL || id === this.bos || this.eos.includes(id);
  }
}
