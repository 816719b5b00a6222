// From a validated file to a training Dataset: formats and tokenizes every valid example
// (tokenize.ts), truncates to maxSeqLen, adds the checks that need the tokenizer (template
// failures, too long, nothing to train on) to the report, and builds the Dataset — only when the
// report has no error, or when the caller explicitly asks for the good lines (`skipInvalid`), in
// which case the dataset records every excluded line with its reason.
// It is not: batching (batch.ts), nor file reading (the caller passes bytes or a string).
import { computeStats } from './stats.ts';
import { FormatError, formatExample, type FormatOptions } from './tokenize.ts';
import { issue, makeReport, parseDataset, type ParseOptions, type ParseResult } from './validate.ts';
import type { DataFormat, Dataset, Example, ExcludedLine, Issue, TokenizedExample, Tokenizer, ValidationReport } from './types.ts';

export interface PrepareOptions extends FormatOptions {
  tokenizer: Tokenizer;
  /** longest sequence fed to the model; longer examples are cut at the end (right) */
  maxSeqLen: number;
  /** build the dataset from the valid lines even though some lines have errors (default false) */
  skipInvalid?: boolean;
  /** a name for the source (file name), kept on the dataset */
  source?: string;
  /** bins of the length histogram (default 20) */
  histogramBins?: number;
  /** called every 256 examples and at the end while tokenizing (for a progress bar) */
  onProgress?: (done: number, total: number) => void;
}

export interface LoadResult {
  /** every issue, including those found while tokenizing */
  report: ValidationReport;
  /** null when the report has errors and skipInvalid is not set, or when nothing is usable */
  dataset: Dataset | null;
  /** why dataset is null (a sentence for the user), else undefined */
  reason?: string;
  /** the validated examples (before tokenization), for previews */
  examples: Example[];
}

function plural(n: number, w: string): string {
  return `${n} ${w}${n === 1 ? '' : 's'}`;
}

function listLines(ls: number[]): string {
  return ls.slice(0, 10).join(', ') + (ls.length > 10 ? `, … (${ls.length} in all)` : '');
}

/** Tokenizes parsed examples and builds the dataset (see the header). */
export function prepareDataset(parsed: ParseResult, opts: PrepareOptions): LoadResult {
  const T = opts.maxSeqLen;
  if (!Number.isInteger(T) || T < 2) throw new Error(`maxSeqLen must be an integer ≥ 2 (got ${T})`);
  const tok = opts.tokenizer;
  const issues: Issue[] = [...parsed.report.issues];
  const kept: TokenizedExample[] = [];
  const keptExamples: Example[] = [];
  const formats: Record<DataFormat, number> = { chat: 0, prompt_completion: 0, text: 0 };
  const total = parsed.examples.length;
  let done = 0;
  for (const ex of parsed.examples) {
    if (opts.onProgress && done % 256 === 0) opts.onProgress(done, total);
    done++;
    const line = ex.line;
    let f;
    try {
      f = formatExample(ex, tok, opts);
    } catch (e) {
      if (e instanceof FormatError) { issues.push(issue(e.code, e.message, { line, path: e.path })); continue; }
      throw e;
    }
    for (const id of f.ids) {
      if (!Number.isInteger(id) || id < 0 || id >= tok.vocabSize) {
        throw new Error(`line ${line}: the tokenizer produced id ${id}, outside its vocabulary (0..${tok.vocabSize - 1})`);
      }
    }
    const L = f.ids.length;
    let fullTrained = 0;
    for (let t = 0; t < L; t++) fullTrained += f.trained[t];
    if (fullTrained === 0) {
      const why = ex.format === 'chat' && (opts.trainOn ?? 'assistant') === 'assistant' && ex.messages.every((m) => m.role !== 'assistant' || m.weight === 0)
        ? 'every assistant message has weight 0'
        : 'no token is marked for training';
      issues.push(issue('no_trained_tokens', `nothing to train on: ${why}`, { line }));
      continue;
    }
    const n = Math.min(L, T);
    let trainedCount = 0;
    for (let t = 0; t < n; t++) trainedCount += f.trained[t];
    if (L > T) {
      const cutTrained = fullTrained - trainedCount;
      issues.push(issue('too_long',
        `example is ${L} tokens, longer than maxSeqLen ${T}: the last ${L - T} tokens are cut (${cutTrained} of them trained)`, { line }));
      if (trainedCount === 0) {
        const first = f.trained.indexOf(1);
        issues.push(issue('no_trained_tokens',
          `after truncation to ${T} tokens no trained token is left (the first trained token is at position ${first}): raise maxSeqLen or shorten the prompt`, { line }));
        continue;
      }
    }
    kept.push({
      line,
      format: ex.format,
      ids: Uint32Array.from(f.ids.slice(0, n)),
      trained: f.trained.slice(0, n),
      fullLength: L,
      fullTrained,
      trainedCount,
    });
    keptExamples.push(ex);
    formats[ex.format]++;
  }
  opts.onProgress?.(total, total);
  const report = makeReport(issues, {
    lines: parsed.report.lines,
    examples: kept.length,
    formats,
    blankLines: parsed.report.blankLines,
    bytes: parsed.report.bytes,
  });

  const firstError = new Map<number, Issue>();
  for (const i of report.issues) if (i.severity === 'error' && i.line !== undefined && !firstError.has(i.line)) firstError.set(i.line, i);
  const excludedLines: ExcludedLine[] = [...firstError.values()].map((i) => ({ line: i.line!, code: i.code, reason: i.message }));

  let reason: string | undefined;
  // file-level errors that leave nothing to read (a not_utf8 summary does not: its lines are listed)
  const fileErrors = report.issues.filter((i) => i.code === 'file_too_large' || i.code === 'utf16' || i.code === 'empty_file');
  if (fileErrors.length) reason = fileErrors.map((i) => i.message).join('; ');
  else if (!kept.length) reason = report.badLines.length ? `no usable example: all ${plural(report.badLines.length, 'line')} with examples have errors` : 'no usable example';
  else if (!report.ok && !opts.skipInvalid) {
    reason = `${plural(report.badLines.length, 'line')} ${report.badLines.length === 1 ? 'has' : 'have'} errors (line${report.badLines.length === 1 ? '' : 's'} ` +
      `${listLines(report.badLines)}): fix ${report.badLines.length === 1 ? 'it' : 'them'}, or pass skipInvalid to train on the ${plural(kept.length, 'valid example')} only`;
  }
  if (reason) return { report, dataset: null, reason, examples: keptExamples };

  const dataset: Dataset = {
    examples: kept,
    format: report.format,
    trainOn: opts.trainOn ?? 'assistant',
    maxSeqLen: T,
    excludedLines,
    sourceLines: parsed.report.lines,
    stats: computeStats(kept, T, opts.histogramBins ?? 20),
  };
  if (opts.source !== undefined) dataset.source = opts.source;
  return { report, dataset, examples: keptExamples };
}

/** parseDataset + prepareDataset in one call. */
export function loadDataset(input: Uint8Array | ArrayBuffer | string, opts: PrepareOptions & ParseOptions): LoadResult {
  return prepareDataset(parseDataset(input, opts), opts);
}
