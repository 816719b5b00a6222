// The worker's dataset service: checks JSONL (src/data validation; with a model's tokenizer also
// formatting, loss masks and statistics), previews one example token by token, stores datasets
// (src/store/datasets.ts) and builds the tokenized Dataset a training job uses.
// Excluded lines are blanked (not removed) before loading, so every line number in reports, the
// store and the token view stays the line number of the file the user gave.
// It is not: the validator (src/data) nor the store; no DOM.
import {
  type Dataset, type Example, type TrainOn, loadDataset, parseDataset, previewExample,
} from '../../src/data/index.ts';
import {
  createDataset, deleteDataset, getDataset, listDatasets, renameDataset, type DatasetMeta,
} from '../../src/store/index.ts';
import type { DatasetCheck, DatasetInput } from '../../src/protocol.ts';
import type { Models, TokenizerBundle } from './models.ts';

/** Issues sent to the page at most (the counts in the report stay exact). */
const ISSUE_LIMIT = 500;

export function maxSeqLenOf(t: TokenizerBundle): number {
  return Math.min(t.config.maxPos, 2048);
}

/** The text with `lines` (1-based) emptied: they become blank lines, which the validator ignores. */
export function blankLines(text: string, lines: number[]): string {
  if (!lines.length) return text;
  const drop = new Set(lines);
  return text.split('\n').map((l, i) => (drop.has(i + 1) ? (l.endsWith('\r') ? '\r' : '') : l)).join('\n');
}

export class Datasets {
  private parsed: { text: string; examples: Example[] } | null = null;
  /** the last tokenized training sets (the Train form asks for a plan on every change) */
  private tokenized = new WeakMap<object, Map<string, Dataset>>();

  constructor(private models: Models) {}

  list(): Promise<DatasetMeta[]> {
    return listDatasets({ onUnreadable: (e) => console.warn(`whittle: skipping an unreadable dataset record: ${e.message}`) });
  }

  async check(input: DatasetInput, modelId: string | null, trainOn: TrainOn = 'assistant'): Promise<DatasetCheck> {
    let bytes: Uint8Array | null = null;
    let text: string;
    if ('file' in input) {
      bytes = new Uint8Array(await input.file.arrayBuffer());
      text = new TextDecoder('utf-8').decode(bytes);
    } else text = input.text;
    const source = bytes ?? text;
    if (!modelId) {
      const p = parseDataset(source);
      this.parsed = { text, examples: p.examples };
      return this.result(text, p.report, null, null, p.examples.map((e) => e.line));
    }
    const t = await this.models.tokenizer(modelId);
    const r = loadDataset(source, {
      tokenizer: t.tokenizer, chatTemplate: t.renderer, maxSeqLen: maxSeqLenOf(t), trainOn, skipInvalid: true,
    });
    this.parsed = { text, examples: r.examples };
    const lines = r.dataset ? r.dataset.examples.map((e) => e.line) : [];
    return this.result(text, r.report, r.dataset, modelId, lines, r.dataset ? null : r.reason ?? null);
  }

  private result(text: string, report: DatasetCheck['report'], ds: Dataset | null, modelId: string | null, exampleLines: number[], why: string | null = null): DatasetCheck {
    const bad = report.badLines;
    const reason = why ?? (report.errors > 0
      ? `${bad.length} line${bad.length === 1 ? '' : 's'} ${bad.length === 1 ? 'has' : 'have'} errors${report.examples ? `; ${report.examples} valid example${report.examples === 1 ? '' : 's'} can be used without ${bad.length === 1 ? 'it' : 'them'}` : ''}`
      : report.examples === 0 ? 'no usable example' : null);
    return {
      text,
      report: { ...report, issues: report.issues.slice(0, ISSUE_LIMIT) },
      issuesShown: Math.min(ISSUE_LIMIT, report.issues.length),
      stats: ds?.stats ?? null,
      modelId,
      exampleLines,
      reason,
      badLines: bad,
    };
  }

  async preview(text: string, line: number, modelId: string, trainOn: TrainOn = 'assistant') {
    if (this.parsed?.text !== text) this.parsed = { text, examples: parseDataset(text).examples };
    const ex = this.parsed.examples.find((e) => e.line === line);
    if (!ex) throw new Error(`line ${line} is not a valid example`);
    const t = await this.models.tokenizer(modelId);
    const tokens = previewExample(ex, t.tokenizer, { chatTemplate: t.renderer, trainOn, maxSeqLen: maxSeqLenOf(t) });
    return { tokens, trained: tokens.filter((x) => x.trained).length, total: tokens.length };
  }

  async save(name: string, text: string, excluded: number[]): Promise<DatasetMeta> {
    const p = parseDataset(blankLines(text, excluded));
    const bad = p.report.badLines;
    if (bad.length) {
      throw new Error(`line${bad.length === 1 ? '' : 's'} ${bad.slice(0, 10).join(', ')}${bad.length > 10 ? ', …' : ''} still ${bad.length === 1 ? 'has' : 'have'} errors: fix ${bad.length === 1 ? 'it' : 'them'} or use only the valid lines`);
    }
    if (p.report.examples === 0) throw new Error('the dataset has no example');
    const rep = p.report;
    return createDataset({
      name,
      format: rep.format ?? 'unknown',
      text,
      excluded,
      report: {
        lines: rep.lines, examples: rep.examples, errors: 0, warnings: rep.warnings,
        notes: rep.issues.filter((i) => i.severity === 'warning' && i.line === undefined).map((i) => i.message),
      },
    });
  }

  async get(id: string) {
    const d = await getDataset(id);
    if (!d) throw new Error(`no dataset ${id} in this browser's storage`);
    return d;
  }

  rename(id: string, name: string): Promise<DatasetMeta> {
    return renameDataset(id, name);
  }

  remove(id: string): Promise<boolean> {
    return deleteDataset(id);
  }

  /** The tokenized training set of a stored dataset for a model's tokenizer (excluded lines left out). */
  async forTraining(id: string, t: Pick<TokenizerBundle, 'tokenizer' | 'renderer'>, maxSeqLen: number, trainOn: TrainOn): Promise<Dataset> {
    const d = await this.get(id);
    let cache = this.tokenized.get(t.tokenizer);
    if (!cache) this.tokenized.set(t.tokenizer, (cache = new Map()));
    const key = `${id}|${d.updatedAt}|${d.excluded.join(',')}|${maxSeqLen}|${trainOn}|${t.renderer ? 'template' : 'plain'}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const r = loadDataset(blankLines(d.text, d.excluded), {
      tokenizer: t.tokenizer, chatTemplate: t.renderer, maxSeqLen, trainOn, source: d.name, skipInvalid: d.excluded.length > 0,
    });
    if (!r.dataset) throw new Error(`dataset "${d.name}": ${r.reason ?? 'no usable example'}`);
    if (cache.size >= 4) cache.delete(cache.keys().next().value!);
    cache.set(key, r.dataset);
    return r.dataset;
  }
}
