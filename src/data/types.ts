// Shared types of the dataset layer (src/data): the structural Tokenizer and chat-renderer
// interfaces it consumes, the parsed examples it produces, the validation issues it reports and
// the tokenized dataset it hands to the trainer. Everything here is plain structured-clone data
// (no classes, no functions inside values) so reports and datasets can cross a postMessage.
// It is not: a tokenizer (src/tokenizer is), nor a chat-template engine (@huggingface/jinja is).

/**
 * The tokenizer shape this layer needs: a structural subset of src/tokenizer's Tokenizer (which
 * satisfies it), small enough for toy tokenizers in tests.
 * `encode` is always called here with an explicit `{ addBos: false }`: BOS/EOS are placed by this
 * layer (or by the chat template's own text), never implicitly. `prefixSpace` (SentencePiece
 * leading "▁") is passed only when FormatOptions.prefixSpace is set; otherwise the tokenizer's default.
 */
export interface Tokenizer {
  encode(text: string, opts?: { addBos?: boolean; prefixSpace?: boolean }): number[];
  decode(ids: number[]): string;
  /** beginning-of-sequence id, or null when the model has none (Qwen) */
  bos: number | null;
  /** end-of-sequence / end-of-turn ids; eos[0] is the one appended by the plain formats */
  eos: number[];
  vocabSize: number;
}

/** One chat message as a chat template sees it (weight stripped). */
export interface TemplateMessage {
  role: string;
  content: string;
}

/**
 * Renders a conversation to text with the model's chat template, e.g.
 * `(m, o) => applyChatTemplate(template, m, o)` from src/tokenizer, or a jinja Template bound to
 * the model's bos/eos strings. Must be deterministic. May throw (template `raise_exception`):
 * the error becomes a line-precise `template_error`.
 */
export type ChatRenderer = (messages: TemplateMessage[], opts: { addGenerationPrompt: boolean }) => string;

export type Role = 'system' | 'user' | 'assistant';
export const ROLES: readonly Role[] = ['system', 'user', 'assistant'];

export interface ChatMessage {
  role: Role;
  content: string;
  /** assistant only: 0 = do not train on this message; 1 (default) = train */
  weight: 0 | 1;
}

export type DataFormat = 'chat' | 'prompt_completion' | 'text';
export const FORMATS: readonly DataFormat[] = ['chat', 'prompt_completion', 'text'];

/** A validated example, with the 1-based line of the source file it came from. */
export type Example =
  | { format: 'chat'; line: number; messages: ChatMessage[] }
  | { format: 'prompt_completion'; line: number; prompt: string; completion: string }
  | { format: 'text'; line: number; text: string };

export type Severity = 'error' | 'warning' | 'info';

/** Every issue code, with its severity. Errors exclude the line; warnings and infos do not. */
export const ISSUE_CODES = {
  // file level
  file_too_large: 'error',
  not_utf8: 'error',
  utf16: 'error',
  empty_file: 'error',
  json_array: 'info',
  pretty_printed: 'info',
  bom: 'info',
  crlf: 'info',
  few_examples: 'warning',
  mixed_formats: 'warning',
  // line level: structure
  blank_line: 'info',
  invalid_json: 'error',
  not_object: 'error',
  unknown_format: 'error',
  ambiguous_format: 'error',
  wrong_format: 'error',
  missing_field: 'error',
  wrong_type: 'error',
  unknown_role: 'error',
  missing_content: 'error',
  empty_content: 'error',
  empty_content_prompt: 'warning',
  no_messages: 'error',
  no_assistant: 'error',
  bad_weight: 'error',
  weight_not_assistant: 'error',
  unsupported: 'error',
  unsupported_ignored: 'warning',
  unknown_field: 'warning',
  system_not_first: 'warning',
  trailing_messages: 'info',
  duplicate: 'warning',
  // line level: needs the tokenizer / template
  template_error: 'error',
  mask_not_found: 'error',
  too_long: 'warning',
  no_trained_tokens: 'error',
} as const satisfies Record<string, Severity>;
export type IssueCode = keyof typeof ISSUE_CODES;

export interface Issue {
  severity: Severity;
  code: IssueCode;
  /** 1-based line of the source file; absent for file-level issues */
  line?: number;
  /** 1-based column (invalid JSON, bad UTF-8 byte) when known */
  column?: number;
  /** field path inside the line, e.g. `messages[2].role` */
  path?: string;
  /** the full explanation, without the line prefix (see formatIssue) */
  message: string;
  /** another line involved, e.g. the first occurrence of a duplicate */
  relatedLine?: number;
}

export interface ValidationReport {
  /** true when there is no error (warnings and infos allowed) */
  ok: boolean;
  /** majority format of the valid lines ('mixed' is never returned: see formats/mixed_formats) */
  format: DataFormat | null;
  /** number of valid lines per format */
  formats: Record<DataFormat, number>;
  /** lines in the file (a final newline does not start a line) */
  lines: number;
  /** valid examples (lines without errors) */
  examples: number;
  /** lines with at least one error, ascending */
  badLines: number[];
  /** whitespace-only lines (ignored), ascending */
  blankLines: number[];
  errors: number;
  warnings: number;
  /** sorted by line (file-level issues first), then in detection order */
  issues: Issue[];
  /** size of the input in bytes */
  bytes: number;
}

export type TrainOn = 'assistant' | 'all';

/** One example after formatting, tokenization and truncation. */
export interface TokenizedExample {
  /** 1-based source line */
  line: number;
  format: DataFormat;
  /** token ids, truncated to maxSeqLen */
  ids: Uint32Array;
  /**
   * trained[t] = 1 when token t is one the model learns to produce (the target of position t-1).
   * trained[0] is always 0 (nothing predicts the first token).
   */
  trained: Uint8Array;
  /** length before truncation */
  fullLength: number;
  /** trained tokens before truncation */
  fullTrained: number;
  /** trained tokens kept (sum of trained) */
  trainedCount: number;
}

export interface ExcludedLine {
  line: number;
  /** the first error of that line (code and message) */
  code: IssueCode;
  reason: string;
}

export interface DatasetStats {
  examples: number;
  /** tokens per example before truncation */
  tokens: { min: number; median: number; max: number; mean: number };
  /** histogram of tokens per example (before truncation): counts[i] examples have a length in [edges[i], edges[i+1]) */
  histogram: { edges: number[]; counts: number[] };
  /** tokens fed to the model in one epoch (after truncation, no padding) */
  totalTokens: number;
  /** tokens the loss is computed on in one epoch (after truncation) */
  trainedTokens: number;
  /** same two sums before truncation */
  fullTokens: number;
  fullTrainedTokens: number;
  /** examples longer than maxSeqLen, and what truncation removed */
  truncatedExamples: number;
  tokensCut: number;
  trainedTokensCut: number;
  maxSeqLen: number;
}

export interface Dataset {
  examples: TokenizedExample[];
  format: DataFormat | null;
  trainOn: TrainOn;
  maxSeqLen: number;
  /** lines of the source file not in `examples` (each with its first error), ascending */
  excludedLines: ExcludedLine[];
  /** lines in the source file */
  sourceLines: number;
  /** optional name of the source (file name), for messages */
  source?: string;
  /** set on the two halves made by splitDataset */
  split?: { part: 'train' | 'valid'; fraction: number; seed: number };
  stats: DatasetStats;
}

/** Where a batch iterator stands: the next batch starts at position `index` of epoch `epoch`'s order. */
export interface DataState {
  epoch: number;
  index: number;
}

/** One training batch, row-major (B, T), in the engine's conventions (docs/ENGINE.md). */
export interface Batch {
  B: number;
  T: number;
  ids: Uint32Array;
  /** next token where it is trained, else IGNORE (0xFFFFFFFF) */
  targets: Uint32Array;
  /** 1 for a real token, 0 for padding */
  valid: Uint32Array;
  /** position id per token (t for row-local token t; padding continues counting) */
  pos: Uint32Array;
  /** number of targets that are not IGNORE (the loss denominator) */
  trainedTokens: number;
  /** number of valid (non-padding) tokens */
  realTokens: number;
  /** dataset indices of the rows */
  rows: number[];
  /** source lines of the rows */
  lines: number[];
  /** state at which this batch started, and the state after it (save `next` in a checkpoint) */
  state: DataState;
  next: DataState;
}

export const IGNORE = 0xffffffff;
