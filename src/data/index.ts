// The dataset layer's public API (src/data): validate a JSONL training file, format and tokenize
// it with a loss mask, compute statistics, and batch it deterministically. See src/data/README.md.
export * from './types.ts';
export { parseDataset, formatIssue, formatReport, firstInvalidUtf8, jsonErrorOffset, DEFAULT_MAX_BYTES, DEFAULT_MIN_EXAMPLES, type ParseOptions, type ParseResult } from './validate.ts';
export {
  formatExample, encodeChatPrompt, encodeCompletionPrompt, previewTokens, previewExample, FormatError,
  type FormatOptions, type Formatted, type PreviewToken,
} from './tokenize.ts';
export { prepareDataset, loadDataset, type PrepareOptions, type LoadResult } from './dataset.ts';
export { computeStats, summarize, histogram, estimateEpochSeconds, type EpochCost } from './stats.ts';
export {
  BatchIterator, makeBatch, evalBatches, epochCost, epochOrder, splitDataset, findOverlap, datasetFingerprint,
  permutation, mulberry32, hash32, type BatchOptions,
} from './batch.ts';
export { chatRenderer } from './template.ts';
