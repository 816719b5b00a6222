// The tokenizer contract shared by every tokenizer whittle loads: Hugging Face tokenizer.json
// (./hf.ts), and tokenizers rebuilt from GGUF metadata (./gguf.ts: SentencePiece 'llama' via
// ./spm.ts, byte-level BPE 'gpt2' via the HF implementation). No DOM.

export interface EncodeOptions {
  /** Prepend BOS. Default: `addBosDefault` (what the tokenizer files say). Ignored when bos is null. */
  addBos?: boolean;
  /**
   * SentencePiece-style leading "▁" (HF `Prepend`/`Metaspace` normalization, llama.cpp
   * `add_space_prefix`). Default: as the tokenizer files say. `false` removes that step — e.g.
   * tinystories-656k's tokenizer.json prepends a lone "▁" (id 80) that the model never saw.
   */
  prefixSpace?: boolean;
}

export interface DecodeOptions {
  /** Drop special/control tokens (BOS, EOS, chat markers) from the text. Default false. */
  skipSpecial?: boolean;
}

export interface Tokenizer {
  /** which implementation: 'hf' (tokenizer.json), 'spm' (GGUF llama), 'bpe' (GGUF gpt2) */
  readonly kind: 'hf' | 'spm' | 'bpe';
  /** number of token ids (max id + 1, added tokens included) */
  readonly vocabSize: number;
  /** BOS id, or null when the model has none (e.g. Qwen2) */
  readonly bos: number | null;
  /** ids that end generation (EOS, and EOT/EOM/chat end markers where declared) */
  readonly eos: number[];
  /** whether encode() prepends BOS unless told otherwise */
  readonly addBosDefault: boolean;
  /** whether encode() adds the SentencePiece leading "▁" unless told otherwise */
  readonly prefixSpaceDefault: boolean;
  /** BOS / EOS token text (for chat templates' bos_token / eos_token) */
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  encode(text: string, opts?: EncodeOptions): number[];
  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string;
  /** The raw vocabulary piece of an id (e.g. "▁the", "Ġthe", "<0x0A>", "<|im_end|>"); '' when out of range. */
  tokenToString(id: number): string;
  /** The id of a raw vocabulary piece, if any. */
  tokenToId(piece: string): number | undefined;
  /** Control/special tokens (BOS, EOS, added special tokens). */
  isSpecial(id: number): boolean;
}
