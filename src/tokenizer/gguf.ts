// Tokenizers rebuilt from GGUF metadata (tokenizer.ggml.*), as llama.cpp reads them:
// - model "llama": SentencePiece BPE with scores and byte fallback → SpmTokenizer (./spm.ts).
// - model "gpt2": byte-level BPE with merges → converted to a tokenizer.json structure (BPE model,
//   a Split pre-tokenizer with the regex of `tokenizer.ggml.pre`, ByteLevel bytes↔unicode mapping
//   and decoder, control/user-defined tokens as added tokens) and run by HfTokenizer (./hf.ts).
// Special ids: bos/eos/unknown_token_id, plus eot/eom ids as extra EOS; add_bos_token and
// add_space_prefix as llama.cpp defaults them. The chat template is `tokenizer.chat_template`.
// No DOM.
import type { GGUFFile } from '../model/gguf.ts';
import { HfTokenizer } from './hf.ts';
import { SpmTokenizer, TokenType } from './spm.ts';
import type { Tokenizer } from './types.ts';

/** Pre-tokenizer regexes of llama.cpp's BPE `tokenizer.ggml.pre` types (Oniguruma syntax, as tokenizer.json). */
const PRE_REGEX: Record<string, string | null> = {
  // null: the GPT-2 regex built into the ByteLevel pre-tokenizer
  default: null,
  gpt2: null,
  'gpt-2': null,
  'llama-bpe': "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  llama3: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  qwen2: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};
const PRE_DIGITS = new Set(['smollm']);

function arr<T>(g: GGUFFile, key: string): T[] | undefined {
  const v = g.metadata.get(key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw new Error(`${g.file}: metadata '${key}' is not an array`);
  return v as T[];
}

function num(g: GGUFFile, key: string): number | undefined {
  const v = g.metadata.get(key);
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
}

function bool(g: GGUFFile, key: string): boolean | undefined {
  const v = g.metadata.get(key);
  return typeof v === 'boolean' ? v : undefined;
}

/** The chat template stored in a GGUF file, if any. */
export function ggufChatTemplate(g: GGUFFile): string | null {
  const v = g.metadata.get('tokenizer.chat_template');
  return typeof v === 'string' ? v : null;
}

/** Build the tokenizer described by a GGUF file's metadata. */
export function tokenizerFromGGUF(g: GGUFFile): Tokenizer {
  const model = g.metadata.get('tokenizer.ggml.model');
  if (model === undefined || model === 'none' || model === 'no_vocab') {
    throw new Error(`${g.file}: no tokenizer in this GGUF file (tokenizer.ggml.model is ${model === undefined ? 'missing' : `'${model}'`})`);
  }
  const tokens = arr<string>(g, 'tokenizer.ggml.tokens');
  if (!tokens || tokens.length === 0) throw new Error(`${g.file}: tokenizer.ggml.tokens is missing or empty`);
  if (!tokens.every((t) => typeof t === 'string')) throw new Error(`${g.file}: tokenizer.ggml.tokens is not an array of strings`);
  const types = arr<number>(g, 'tokenizer.ggml.token_type');
  const scores = arr<number>(g, 'tokenizer.ggml.scores');
  const V = tokens.length;
  const id = (key: string): number | null => {
    const v = num(g, key);
    return v !== undefined && v >= 0 && v < V ? v : null;
  };
  const bos = id('tokenizer.ggml.bos_token_id');
  const eos: number[] = [];
  for (const k of ['tokenizer.ggml.eos_token_id', 'tokenizer.ggml.eot_token_id', 'tokenizer.ggml.eom_token_id']) {
    const e = id(k);
    if (e !== null && !eos.includes(e)) eos.push(e);
  }

  if (model === 'llama') {
    if (!scores || scores.length !== V) throw new Error(`${g.file}: tokenizer.ggml.scores is missing or has ${scores?.length} entries for ${V} tokens`);
    return new SpmTokenizer({
      tokens,
      scores,
      types: types && types.length === V ? types : undefined,
      bos,
      eos,
      unk: id('tokenizer.ggml.unknown_token_id') ?? (tokens[0] === '<unk>' ? 0 : null),
      addBos: bool(g, 'tokenizer.ggml.add_bos_token') ?? true,
      addSpacePrefix: bool(g, 'tokenizer.ggml.add_space_prefix') ?? true,
    });
  }

  if (model === 'gpt2') {
    const merges = arr<string>(g, 'tokenizer.ggml.merges');
    if (!merges) throw new Error(`${g.file}: gpt2 tokenizer without tokenizer.ggml.merges`);
    const pre = (g.metadata.get('tokenizer.ggml.pre') as string | undefined) ?? 'default';
    if (!(pre in PRE_REGEX) && !PRE_DIGITS.has(pre)) {
      throw new Error(`${g.file}: unsupported BPE pre-tokenizer '${pre}' (tokenizer.ggml.pre; supported: ${[...Object.keys(PRE_REGEX), ...PRE_DIGITS].join(', ')})`);
    }
    const vocab: Record<string, number> = {};
    for (let i = 0; i < V; i++) if (!(tokens[i] in vocab)) vocab[tokens[i]] = i;
    const added = [];
    for (let i = 0; i < V; i++) {
      const t = types?.[i];
      if (t === TokenType.CONTROL || t === TokenType.USER_DEFINED) {
        added.push({ id: i, content: tokens[i], single_word: false, lstrip: false, rstrip: false, normalized: false, special: t === TokenType.CONTROL });
      }
    }
    const regex = PRE_REGEX[pre] ?? null;
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: regex === null };
    const preTok = PRE_DIGITS.has(pre)
      ? { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, { ...byteLevel, use_regex: true }] }
      : regex === null
        ? byteLevel
        : { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false }, byteLevel] };
    const tj = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: pre === 'qwen2' ? { type: 'NFC' } : null,
      pre_tokenizer: preTok,
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: false, byte_fallback: false, ignore_merges: pre === 'llama-bpe' || pre === 'llama3',
        vocab, merges,
      },
    };
    const config: Record<string, unknown> = {
      bos_token: bos === null ? null : tokens[bos],
      eos_token: eos.length ? tokens[eos[0]] : null,
      add_bos_token: (bool(g, 'tokenizer.ggml.add_bos_token') ?? (pre === 'llama-bpe' || pre === 'llama3')) && bos !== null,
      clean_up_tokenization_spaces: false,
    };
    return new HfTokenizer(tj, { config, eosIds: eos, label: `${g.file} (tokenizer.ggml)` }, 'bpe');
  }

  throw new Error(`${g.file}: unsupported tokenizer model '${model}' (tokenizer.ggml.model; supported: llama, gpt2)`);
}
