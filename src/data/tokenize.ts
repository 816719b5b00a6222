// Formatting + tokenization + loss mask: turns one validated Example into token ids and a
// per-token `trained` flag (1 = a token the model learns to produce), and back into a preview
// the UI can show. Chat lines use the model's chat template when one is given (assistant spans
// found by rendering message prefixes incrementally), else the documented plain fallback:
//
//   <BOS>System: {system}\nUser: {user}\nAssistant: {assistant}<EOS>User: {user}\nAssistant: …<EOS>
//
// prompt/completion lines are `<BOS>{prompt}{completion}<EOS>` (plain concatenation, as the
// OpenAI legacy format), text lines `<BOS>{text}<EOS>`. <BOS> is tokenizer.bos (skipped when
// null), <EOS> is tokenizer.eos[0]; both are inserted as ids. In these plain formats each prompt
// and each answer are encoded separately (`addBos: false`; the answer without the SentencePiece
// leading "▁"), so training sees exactly the prompt tokens generation will be fed. A templated
// conversation is encoded as one string and gets no extra BOS/EOS: the template writes its own
// (e.g. `{{ bos_token }}`, `<|im_end|>`); a token straddling a mask boundary counts as trained.
// It is not: validation of the JSON structure (validate.ts), nor truncation (dataset.ts).
import type { ChatMessage, ChatRenderer, Example, TemplateMessage, Tokenizer, TrainOn } from './types.ts';

export interface FormatOptions {
  /** the model's chat template as a render function; absent/null: the plain fallback */
  chatTemplate?: ChatRenderer | null;
  /** 'assistant' (default): train on assistant messages / completions; 'all': every token */
  trainOn?: TrainOn;
  /** passed to tokenizer.encode when set (SentencePiece leading "▁"); default: the tokenizer's */
  prefixSpace?: boolean;
}

export interface Formatted {
  ids: number[];
  /** trained[t] = 1 when token t is learned (predicted from position t-1); trained[0] = 0 */
  trained: Uint8Array;
}

/** A formatting failure tied to one example: becomes a line-precise issue. */
export class FormatError extends Error {
  constructor(public code: 'template_error' | 'mask_not_found', message: string, public path?: string) {
    super(message);
    this.name = 'FormatError';
  }
}

/**
 * The tokenizer with encode bound to this layer's options: never an implicit BOS. `encodeCont`
 * encodes text that continues earlier text (an answer after its prompt): without the
 * SentencePiece leading "▁", which belongs only at the start of a text.
 */
interface BoundTokenizer extends Tokenizer {
  encodeCont(text: string): number[];
}

function bound(tok: Tokenizer, o: { prefixSpace?: boolean }): BoundTokenizer {
  const eo = o.prefixSpace === undefined ? { addBos: false } : { addBos: false, prefixSpace: o.prefixSpace };
  const co = { addBos: false, prefixSpace: false };
  return {
    encode: (text) => tok.encode(text, eo),
    encodeCont: (text) => tok.encode(text, co),
    decode: (ids) => tok.decode(ids),
    bos: tok.bos,
    eos: tok.eos,
    vocabSize: tok.vocabSize,
  };
}

/** Length of the longest common prefix of two id sequences. */
function lcp(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * Maps a character position of `text` to a token boundary of `ids = encode(text)`: the number of
 * leading tokens of encode(text[0:c]) that agree with `ids`. When a token straddles c (a merge
 * across the boundary) it counts as after c.
 */
function tokenIndexer(tok: Tokenizer, text: string, ids: number[]): (c: number) => number {
  const memo = new Map<number, number>();
  return (c) => {
    if (c <= 0) return 0;
    if (c >= text.length) return ids.length;
    let v = memo.get(c);
    if (v === undefined) { v = lcp(tok.encode(text.slice(0, c)), ids); memo.set(c, v); }
    return v;
  };
}

/** Character span of one assistant turn; contentEnd null when the template rewrote the content. */
interface Span { start: number; contentEnd: number | null; end: number; weight: 0 | 1; content: string }

/**
 * Token span trained for one assistant turn [ts, te) whose content ends at token tc (null:
 * unknown): the content, then through the first EOS id after it; without an EOS id in the turn,
 * the one token right after the content (the template's end-of-turn marker).
 */
function trainedTokenSpan(ids: number[], eos: number[], ts: number, tc: number | null, te: number): [number, number] {
  for (let k = tc ?? ts; k < te; k++) if (eos.includes(ids[k])) return [ts, k + 1];
  if (tc === null) return [ts, te];
  if (tc < te) return [ts, tc + 1];
  if (te < ids.length && eos.includes(ids[te])) return [ts, te + 1];
  return [ts, tc];
}

function applyMask(n: number, spans: { from: number; to: number; weight: 0 | 1 }[], trainOn: TrainOn): Uint8Array {
  const trained = new Uint8Array(n);
  if (trainOn === 'all') {
    trained.fill(1);
    for (const s of spans) if (!s.weight) trained.fill(0, s.from, s.to); // weight 0 is honored in 'all' too
  } else {
    for (const s of spans) if (s.weight) trained.fill(1, s.from, s.to);
  }
  if (n) trained[0] = 0; // nothing predicts the first token
  return trained;
}

function toTemplate(ms: ChatMessage[]): TemplateMessage[] {
  return ms.map((m) => ({ role: m.role, content: m.content }));
}

/** Templated chat: render, tokenize, locate each assistant turn by rendering prefixes. */
function formatTemplated(messages: ChatMessage[], render: ChatRenderer, tok: Tokenizer, trainOn: TrainOn): Formatted {
  const tm = toTemplate(messages);
  const memo = new Map<string, string>();
  const r = (k: number, gen: boolean): string => {
    const key = `${k}:${gen}`;
    let s = memo.get(key);
    if (s === undefined) {
      try {
        s = render(tm.slice(0, k), { addGenerationPrompt: gen });
      } catch (e) {
        const what = k === tm.length && !gen ? 'the conversation' : `messages[0..${k - 1}]${gen ? ' + generation prompt' : ''}`;
        throw new FormatError('template_error', `chat template failed on ${what}: ${(e as Error)?.message ?? e}`);
      }
      if (typeof s !== 'string') throw new FormatError('template_error', `chat template returned ${typeof s}, not a string`);
      memo.set(key, s);
    }
    return s;
  };
  const full = r(tm.length, false);
  const spans: Span[] = [];
  let cursor = 0;
  for (let i = 0; i < tm.length; i++) {
    if (tm[i].role !== 'assistant') continue;
    let lo = cursor, prevOk = i === 0, prevLen = 0;
    if (i > 0) {
      const prev = r(i, false);
      if (full.startsWith(prev) && prev.length >= cursor) { lo = prev.length; prevOk = true; prevLen = prev.length; }
    }
    let start = -1;
    if (prevOk) {
      let gen = '';
      try { gen = r(i, true); } catch { gen = ''; } // a template may refuse an empty prefix
      if (gen.length > prevLen && full.startsWith(gen)) start = gen.length;
    }
    const cur = i === tm.length - 1 ? full : r(i + 1, false);
    const hiOk = full.startsWith(cur) && cur.length > lo;
    const hi = hiOk ? cur.length : full.length;
    const c = tm[i].content.trim();
    // where the content starts: right after the generation prompt when there is one; else the
    // last occurrence inside the turn (headers before the content often contain "assistant")
    let k = start >= 0 ? full.indexOf(c, start) : hiOk ? full.lastIndexOf(c, hi - c.length) : full.indexOf(c, lo);
    if (start < 0 && k < lo) k = -1;
    let contentEnd: number | null;
    if (k >= 0 && k + c.length <= hi) contentEnd = k + c.length;
    else if (start >= 0 && hiOk) contentEnd = null; // the template rewrote the content: train its turn
    else {
      throw new FormatError('mask_not_found',
        `cannot locate messages[${i}] (assistant) in the rendered conversation: the chat template neither renders ` +
          'message prefixes as prefixes of the whole nor contains the content verbatim', `messages[${i}]`);
    }
    if (start < 0) start = k >= 0 ? k : lo;
    spans.push({ start, contentEnd, end: hi, weight: messages[i].weight, content: tm[i].content });
    cursor = contentEnd ?? hi;
  }
  const ids = tok.encode(full);
  const at = tokenIndexer(tok, full, ids);
  // An EOS id inside the turn ends it; the content's token end (another prefix encode) is only
  // needed when there is none, or when the content itself contains EOS text.
  const eosText = tok.eos.map((id) => tok.decode([id])).filter((x) => x !== '');
  const tokSpans = spans.map((s) => {
    const ts = at(s.start), te = at(s.end);
    let k = ts;
    while (k < te && !tok.eos.includes(ids[k])) k++;
    if (k < te && !eosText.some((x) => s.content.includes(x))) return { from: ts, to: k + 1, weight: s.weight };
    const [from, to] = trainedTokenSpan(ids, tok.eos, ts, s.contentEnd === null ? null : at(s.contentEnd), te);
    return { from, to, weight: s.weight };
  });
  return { ids, trained: applyMask(ids.length, tokSpans, trainOn) };
}

const LABEL: Record<'system' | 'user', string> = { system: 'System', user: 'User' };

/**
 * A piece of a plain-format sequence: prompt text, then optionally an answer (trained) and an
 * EOS. The prompt and the answer are encoded separately, so the prompt tokens are exactly those
 * generation is fed (encodeChatPrompt / encodeCompletionPrompt) even when the tokenizer would
 * merge across the boundary (e.g. ":" + " Hello" → ":▁" in tinystories-656k).
 */
interface Chunk { prompt: string; answer: { text: string; weight: 0 | 1 } | null; eos: boolean }

type FallbackMessage = TemplateMessage & { weight?: 0 | 1 };

/** The fallback chat layout; each assistant answer ends its chunk (then EOS). */
function fallbackChunks(messages: FallbackMessage[], generationPrompt: boolean): Chunk[] {
  const chunks: Chunk[] = [];
  let prompt = '';
  for (const m of messages) {
    if (m.role === 'assistant') {
      chunks.push({ prompt: prompt + 'Assistant:', answer: { text: ' ' + m.content, weight: m.weight ?? 1 }, eos: true });
      prompt = '';
    } else prompt += `${LABEL[m.role as 'system' | 'user'] ?? m.role}: ${m.content}\n`;
  }
  if (generationPrompt) prompt += 'Assistant:';
  if (prompt) chunks.push({ prompt, answer: null, eos: false });
  return chunks;
}

function bosIds(tok: Tokenizer): number[] {
  return tok.bos === null || tok.bos === undefined ? [] : [tok.bos];
}

/** [BOS] prompt answer [EOS] prompt answer [EOS] …; answer (+ its EOS) spans as token ranges. */
function encodeChunks(chunks: Chunk[], tok: BoundTokenizer): { ids: number[]; spans: { from: number; to: number; weight: 0 | 1 }[] } {
  const ids = bosIds(tok);
  const spans: { from: number; to: number; weight: 0 | 1 }[] = [];
  const eos = tok.eos.length ? tok.eos[0] : null;
  for (const ch of chunks) {
    if (ch.prompt) ids.push(...tok.encode(ch.prompt));
    const from = ids.length;
    if (ch.answer) ids.push(...(ch.prompt ? tok.encodeCont(ch.answer.text) : tok.encode(ch.answer.text)));
    if (ch.eos && eos !== null) ids.push(eos);
    if (ch.answer) spans.push({ from, to: ids.length, weight: ch.answer.weight });
  }
  return { ids, spans };
}

/** Formats and tokenizes one example. Throws FormatError (template problems) only. */
export function formatExample(ex: Example, tokenizer: Tokenizer, opts: FormatOptions = {}): Formatted {
  const tok = bound(tokenizer, opts);
  const trainOn = opts.trainOn ?? 'assistant';
  switch (ex.format) {
    case 'chat': {
      if (opts.chatTemplate) return formatTemplated(ex.messages, opts.chatTemplate, tok, trainOn);
      const { ids, spans } = encodeChunks(fallbackChunks(ex.messages, false), tok);
      return { ids, trained: applyMask(ids.length, spans, trainOn) };
    }
    case 'prompt_completion': {
      const ch: Chunk = { prompt: ex.prompt, answer: { text: ex.completion, weight: 1 }, eos: true };
      const { ids, spans } = encodeChunks([ch], tok);
      return { ids, trained: applyMask(ids.length, spans, trainOn) };
    }
    case 'text': {
      const { ids } = encodeChunks([{ prompt: ex.text, answer: null, eos: true }], tok);
      return { ids, trained: applyMask(ids.length, [], 'all') };
    }
  }
}

/**
 * The ids to feed for generation, formatted exactly like training: with a template, the rendered
 * conversation plus the generation prompt; without, the fallback ending in `Assistant:`.
 */
export function encodeChatPrompt(
  messages: TemplateMessage[], tokenizer: Tokenizer, opts: { chatTemplate?: ChatRenderer | null; prefixSpace?: boolean } = {},
): number[] {
  const tok = bound(tokenizer, opts);
  if (opts.chatTemplate) return tok.encode(opts.chatTemplate(messages, { addGenerationPrompt: true }));
  return encodeChunks(fallbackChunks(messages, true), tok).ids;
}

/** The ids to feed for a prompt/completion model: [BOS] prompt (the completion is generated). */
export function encodeCompletionPrompt(prompt: string, tokenizer: Tokenizer, opts: { prefixSpace?: boolean } = {}): number[] {
  return [...bosIds(tokenizer), ...bound(tokenizer, opts).encode(prompt)];
}

export interface PreviewToken {
  id: number;
  /** the text this token adds (incremental decode), `<bos>`/`<eos>` for specials that decode to '' */
  text: string;
  /** the model learns to produce this token */
  trained: boolean;
  /** beyond maxSeqLen: removed by truncation */
  cut: boolean;
}

/** Token-by-token view of a formatted sequence: exactly what is learned (trained) and what is cut. */
export function previewTokens(ids: ArrayLike<number>, trained: ArrayLike<number>, tok: Tokenizer, opts: { maxSeqLen?: number } = {}): PreviewToken[] {
  const W = 6;
  const arr = Array.from(ids);
  const out: PreviewToken[] = [];
  for (let t = 0; t < arr.length; t++) {
    const w0 = Math.max(0, t - W);
    const before = t > w0 ? tok.decode(arr.slice(w0, t)) : ''; // some decoders refuse []
    const after = tok.decode(arr.slice(w0, t + 1));
    let text = after.startsWith(before) ? after.slice(before.length) : tok.decode([arr[t]]);
    if (text === '') {
      const alone = tok.decode([arr[t]]);
      if (alone) text = alone;
      else if (arr[t] === tok.bos) text = '<bos>';
      else if (tok.eos.includes(arr[t])) text = '<eos>';
    }
    out.push({ id: arr[t], text, trained: trained[t] === 1, cut: opts.maxSeqLen !== undefined && t >= opts.maxSeqLen });
  }
  return out;
}

/** Formats one example and previews it (full length; tokens past maxSeqLen are marked `cut`). */
export function previewExample(ex: Example, tok: Tokenizer, opts: FormatOptions & { maxSeqLen?: number } = {}): PreviewToken[] {
  const f = formatExample(ex, tok, opts);
  return previewTokens(f.ids, f.trained, tok, opts);
}
