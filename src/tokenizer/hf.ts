// Hugging Face tokenizer.json tokenizers, through `@huggingface/tokenizers` (the tokenizer core of
// transformers.js, installed with @huggingface/transformers; no DOM, runs in Node and browsers).
// Special ids come from tokenizer_config.json (bos_token / eos_token, add_bos_token) with the
// model's config.json / generation_config.json ids as fallback and extra EOS ids.
// encode() never runs the post-processor: BOS is prepended here (addBos), so every tokenizer
// behaves alike; `prefixSpace: false` uses a copy of tokenizer.json without the Prepend
// normalizer / Metaspace prefix (tinystories-656k quirk, see ../../../shared/models).
// Special added tokens are matched in the raw text (as if `normalized: false`): tokenizers.js
// matches `normalized: true` tokens against their *normalized* content, so with a Prepend
// normalizer "<|end_story|>" would only be found after a space ("▁<|end_story|>").
import { Tokenizer as HfCore } from '@huggingface/tokenizers';
import type { DecodeOptions, EncodeOptions, Tokenizer } from './types.ts';

type Json = Record<string, unknown>;

export interface HfTokenizerOptions {
  /** tokenizer_config.json, parsed (optional) */
  config?: Json | null;
  /** config.json bos_token_id, used when tokenizer_config.json names no BOS */
  bosId?: number | null;
  /** extra EOS ids (config.json / generation_config.json eos_token_id) */
  eosIds?: number[];
  /** label for errors */
  label?: string;
}

/** The content string of a tokenizer_config token entry (string or {content}). */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

/** A copy of tokenizer.json with the SentencePiece leading-"▁" step removed (or null if it has none). */
function withoutPrefixSpace(tj: Json): Json | null {
  let changed = false;
  const norm = (n: unknown): unknown => {
    if (!n || typeof n !== 'object') return n;
    const o = n as Json;
    if (o.type === 'Prepend') { changed = true; return null; }
    if (o.type === 'Sequence' && Array.isArray(o.normalizers)) {
      return { ...o, normalizers: o.normalizers.map(norm).filter((x) => x !== null) };
    }
    return o;
  };
  const pre = (p: unknown): unknown => {
    if (!p || typeof p !== 'object') return p;
    const o = p as Json;
    if (o.type === 'Metaspace' && o.prepend_scheme !== 'never') { changed = true; return { ...o, prepend_scheme: 'never', add_prefix_space: false }; }
    if (o.type === 'Sequence' && Array.isArray(o.pretokenizers)) return { ...o, pretokenizers: o.pretokenizers.map(pre) };
    return o;
  };
  const out = { ...tj, normalizer: norm(tj.normalizer), pre_tokenizer: pre(tj.pre_tokenizer) };
  return changed ? out : null;
}

export class HfTokenizer implements Tokenizer {
  readonly kind: 'hf' | 'bpe';
  readonly vocabSize: number;
  readonly bos: number | null;
  readonly eos: number[];
  readonly addBosDefault: boolean;
  readonly prefixSpaceDefault: boolean;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  private core: HfCore;
  private noPrefixJson: Json | null;
  private noPrefix: HfCore | null = null;
  private config: Json;
  private special = new Set<number>();

  constructor(tokenizerJson: Json, opts: HfTokenizerOptions = {}, kind: 'hf' | 'bpe' = 'hf') {
    const label = opts.label ?? 'tokenizer.json';
    if (!tokenizerJson || typeof tokenizerJson !== 'object' || !tokenizerJson.model) {
      throw new Error(`${label}: not a tokenizer.json (no "model" section)`);
    }
    this.kind = kind;
    this.config = (opts.config ?? {}) as Json;
    if (Array.isArray(tokenizerJson.added_tokens)) {
      tokenizerJson = {
        ...tokenizerJson,
        added_tokens: (tokenizerJson.added_tokens as Json[]).map((t) => (t.special ? { ...t, normalized: false } : t)),
      };
    }
    try {
      this.core = new HfCore(tokenizerJson, this.config);
    } catch (e) {
      throw new Error(`${label}: cannot build the tokenizer: ${(e as Error).message}`);
    }
    this.noPrefixJson = withoutPrefixSpace(tokenizerJson);
    this.prefixSpaceDefault = this.noPrefixJson !== null;

    let maxId = -1;
    for (const id of this.core.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    for (const [id, tok] of this.core.get_added_tokens_decoder()) if (tok.special) this.special.add(id);

    const cfg = this.config;
    // BOS: tokenizer_config's bos_token decides (null there means "no BOS", as in Qwen2)
    let bosToken: string | null = null;
    let bos: number | null = null;
    if ('bos_token' in cfg) {
      bosToken = tokenContent(cfg.bos_token);
      bos = bosToken === null ? null : (this.core.token_to_id(bosToken) ?? null);
    } else if (opts.bosId != null && opts.bosId < this.vocabSize) {
      bos = opts.bosId;
      bosToken = this.core.id_to_token(bos) ?? null;
    }
    this.bos = bos;
    this.bosToken = bos === null ? null : bosToken;
    const eosToken = tokenContent(cfg.eos_token);
    const eos: number[] = [];
    const eid = eosToken === null ? undefined : this.core.token_to_id(eosToken);
    if (eid !== undefined) eos.push(eid);
    for (const e of opts.eosIds ?? []) if (!eos.includes(e) && e < this.vocabSize) eos.push(e);
    this.eos = eos;
    this.eosToken = eosToken ?? (eos.length ? (this.core.id_to_token(eos[0]) ?? null) : null);
    for (const id of [bos, ...eos]) if (id !== null) this.special.add(id);

    // Does this tokenizer add BOS by default? tokenizer_config.add_bos_token, else the post-processor.
    if (bos === null) this.addBosDefault = false;
    else if (typeof cfg.add_bos_token === 'boolean') this.addBosDefault = cfg.add_bos_token;
    else {
      const withSp = this.core.encode('a', { add_special_tokens: true }).ids;
      const without = this.core.encode('a', { add_special_tokens: false }).ids;
      this.addBosDefault = withSp.length > without.length && withSp[0] === bos;
    }
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const prefix = opts.prefixSpace ?? this.prefixSpaceDefault;
    let core = this.core;
    if (!prefix && this.noPrefixJson) core = this.noPrefix ??= new HfCore(this.noPrefixJson, this.config);
    const ids = core.encode(text, { add_special_tokens: false }).ids;
    if ((opts.addBos ?? this.addBosDefault) && this.bos !== null) ids.unshift(this.bos);
    return ids;
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    // the HF flag only knows added special tokens; drop our BOS/EOS ids too
    const list = opts.skipSpecial ? Array.from(ids).filter((i) => !this.special.has(i)) : Array.from(ids);
    // the tokenizers library throws on an empty list; nothing decodes to ''
    if (list.length === 0) return '';
    return this.core.decode(list, { skip_special_tokens: !!opts.skipSpecial });
  }

  tokenToString(id: number): string {
    return this.core.id_to_token(id) ?? '';
  }

  tokenToId(piece: string): number | undefined {
    return this.core.token_to_id(piece);
  }

  isSpecial(id: number): boolean {
    return this.special.has(id);
  }
}
