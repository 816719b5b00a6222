// `whittle validate --data FILE [--model PATH] [--json]`: check a JSONL training file without
// training (no GPU). Without --model: the structural checks of src/data/validate.ts (UTF-8, JSON
// per line, format detection, roles, empty fields, duplicates, mixed formats, too few examples),
// every issue with its line. With --model: the model's tokenizer and chat template only (no
// weights are read) format and tokenize every valid line as `whittle train` would, adding the
// tokenizer checks (template failures, nothing to train on, longer than --max-seq-len) and token
// statistics (per example min / median / mean / max, a length histogram, total and trained tokens,
// what truncation cuts). Statistics cover the valid lines.
// Output: the report (a summary line, then one line per issue: `error line 4: …  [code]`), then
// the statistics; --json prints one JSON object {source, ok, report, stats?}.
// Exit codes: 0 no errors (warnings allowed), 1 errors (or an unreadable file / model), 2 usage.
import { readFile } from 'node:fs/promises';
import { chatRenderer, formatReport, loadDataset, parseDataset, type DataFormat, type DatasetStats, FORMATS } from '../data/index.ts';
import { parseArgs, UsageError } from './args.ts';
import type { Command, Io } from './command.ts';

const USAGE = [
  'usage: whittle validate --data FILE.jsonl [--model PATH] [--json]',
  '',
  'Checks a JSONL training file (chat, prompt/completion or text lines) and prints every problem',
  'with its line. With --model, also tokenizes it with the model\'s tokenizer and chat template',
  '(no weights are loaded) and prints token statistics.',
  '',
  '  --data FILE.jsonl       the file to check',
  '  --model PATH            Hugging Face model folder or .gguf: tokenizer checks and token statistics',
  '  --max-seq-len T         longest sequence (default: the model\'s context, at most 2048); longer',
  '                          examples are reported and cut',
  '  --train-on assistant|all   which tokens carry the loss (default assistant / completion)',
  '  --prefix-space on|off   the tokenizer\'s SentencePiece leading "▁" (default: as the tokenizer says)',
  '  --format chat|prompt_completion|text   require one format (default: detected per line)',
  '  --min-examples N        warn below N valid examples (default 100)',
  '  --max-issues N          issues printed (default 50; --json has all)',
  '  --json                  one JSON object: {"source","ok","report":{…},"stats":{…}}',
  '',
  'Exit code: 0 no errors (warnings allowed), 1 errors, 2 bad arguments.',
].join('\n');

const SPEC = {
  data: 'string', model: 'string', json: 'bool', 'max-seq-len': 'string', 'train-on': 'string', 'prefix-space': 'string', format: 'string',
  'min-examples': 'string', 'max-issues': 'string',
} as const;

function int(flags: Record<string, string | true>, key: string, min: number): number | undefined {
  const v = flags[key];
  if (v === undefined) return undefined;
  const x = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isInteger(x) || x < min) throw new UsageError(`--${key} needs an integer ≥ ${min} (got ${JSON.stringify(v)})`);
  return x;
}

/** Token statistics as text lines. */
export function formatStats(s: DatasetStats): string[] {
  const t = s.tokens;
  const lines = [
    `tokens: ${s.examples} examples, ${t.min}..${t.max} tokens each (median ${t.median}, mean ${t.mean.toFixed(1)}); ` +
      `${s.totalTokens} tokens per epoch, ${s.trainedTokens} trained`,
  ];
  if (s.truncatedExamples) {
    lines.push(`  ${s.truncatedExamples} example(s) longer than ${s.maxSeqLen} tokens: truncation cuts ${s.tokensCut} tokens (${s.trainedTokensCut} trained)`);
  }
  const h = s.histogram, peak = Math.max(1, ...h.counts);
  const w = String(h.edges[h.edges.length - 1]).length;
  lines.push('  length histogram (tokens per example):');
  for (let i = 0; i < h.counts.length; i++) {
    const bar = '#'.repeat(Math.round((h.counts[i] / peak) * 40));
    lines.push(`  ${String(h.edges[i]).padStart(w)}..${String(h.edges[i + 1] - 1).padEnd(w)} ${String(h.counts[i]).padStart(5)} ${bar}`);
  }
  return lines;
}

/** `whittle validate` with explicit output streams; returns the exit code. */
export async function runValidate(args: string[], io: Io): Promise<number> {
  const { flags, positional } = parseArgs(args, SPEC);
  if (positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`);
  if (typeof flags.data !== 'string') throw new UsageError('--data FILE.jsonl is required');
  const trainOn = flags['train-on'] ?? 'assistant';
  if (trainOn !== 'assistant' && trainOn !== 'all') throw new UsageError(`--train-on must be assistant or all (got ${JSON.stringify(trainOn)})`);
  const ps = flags['prefix-space'];
  if (ps !== undefined && ps !== 'on' && ps !== 'off') throw new UsageError(`--prefix-space must be on or off (got ${JSON.stringify(ps)})`);
  const format = flags.format;
  if (format !== undefined && !FORMATS.includes(format as DataFormat)) throw new UsageError(`--format must be ${FORMATS.join(', ')} (got ${JSON.stringify(format)})`);
  const seq = int(flags, 'max-seq-len', 2);
  const minExamples = int(flags, 'min-examples', 0);
  const maxIssues = int(flags, 'max-issues', 0) ?? 50;
  if (seq !== undefined && typeof flags.model !== 'string') throw new UsageError('--max-seq-len needs --model (token counts need the tokenizer)');
  const path = flags.data;
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new Error(`${path}: cannot read the dataset: ${(e as Error).message}`);
  }
  const parseOpts = { ...(format ? { format: format as DataFormat } : {}), ...(minExamples !== undefined ? { minExamples } : {}) };
  let report, stats: DatasetStats | null = null, model: { path: string; maxSeqLen: number } | null = null;
  if (typeof flags.model === 'string') {
    const { loadModelTokenizer } = await import('../model/load.ts');
    const { nodeSource } = await import('../model/source-node.ts');
    const m = await loadModelTokenizer(await nodeSource(flags.model));
    const maxSeqLen = seq ?? Math.min(m.config.maxPos, 2048);
    const r = loadDataset(bytes, {
      ...parseOpts, tokenizer: m.tokenizer, maxSeqLen, trainOn, source: path, skipInvalid: true,
      chatTemplate: m.chatTemplate ? chatRenderer(m.chatTemplate, m.tokenizer) : null,
      ...(ps ? { prefixSpace: ps === 'on' } : {}),
    });
    report = r.report;
    stats = r.dataset?.stats ?? null;
    model = { path: flags.model, maxSeqLen };
  } else {
    report = parseDataset(bytes, parseOpts).report;
  }
  const ok = report.errors === 0;
  if (flags.json === true) {
    io.out(JSON.stringify({ source: path, ok, ...(model ? { model: model.path, maxSeqLen: model.maxSeqLen } : {}), report, ...(model ? { stats } : {}) }));
    return ok ? 0 : 1;
  }
  io.out(formatReport(report, { source: path, maxIssues }));
  if (stats) for (const l of formatStats(stats)) io.out(l);
  else if (model) io.out('tokens: no valid example to count');
  io.out(ok
    ? `ok: ${report.examples} valid examples${report.warnings ? `, ${report.warnings} warning(s)` : ''}`
    : `not ok: ${report.errors} error(s) on ${report.badLines.length} line(s)${report.badLines.length ? ` (${report.badLines.slice(0, 10).join(', ')}${report.badLines.length > 10 ? ', …' : ''})` : ''}`);
  return ok ? 0 : 1;
}

export const command: Command = { name: 'validate', usage: USAGE, run: runValidate };
