// Training datasets in IndexedDB (database `whittle-datasets`):
//   ['meta', id]   DatasetMeta (versioned): name, format, sizes, report summary, excluded lines
//   ['text', id]   DatasetText (versioned): the raw JSONL text, kept apart so listing never loads it
// Both records of a dataset are written and deleted in one transaction.
import { type Versioned, type ListOptions, kind, decodeAll, whereOfId, stamp, decode, decodeRequired, tx, req, prefixRange, StoreError, checkId, newId } from './core.ts';

/** Summary of the validation report (the full report is recomputed from the text when needed). */
export interface DatasetReportSummary {
  /** Non-empty lines in the file. */
  lines: number;
  /** Usable examples after exclusions. */
  examples: number;
  tokens?: number;
  errors?: number;
  warnings?: number;
  /** Short human notes ("12 lines longer than the context, truncated"). */
  notes?: string[];
  [key: string]: unknown;
}

export interface DatasetMeta extends Versioned {
  id: string;
  name: string;
  createdAt: number;
  updatedAt: number;
  /** Detected layout of the JSONL, e.g. 'chat' (messages), 'prompt_completion', 'text' (src/data's names). */
  format: string;
  /** UTF-16 length of the text and its number of lines, for listings. */
  chars: number;
  lines: number;
  report: DatasetReportSummary | null;
  /** 1-based line numbers left out of training. */
  excluded: number[];
}

export interface DatasetText extends Versioned {
  id: string;
  text: string;
}

export type Dataset = DatasetMeta & { text: string };

export const DATASET_META = kind<DatasetMeta>('dataset', 'whittle.dataset', 1);
export const DATASET_TEXT = kind<DatasetText>('dataset text', 'whittle.dataset-text', 1);

export interface CreateDatasetInit {
  id?: string;
  name: string;
  format: string;
  text: string;
  report?: DatasetReportSummary | null;
  excluded?: number[];
}

const where = (id: string) => `datasets/${id}`;

function checkName(name: unknown): string {
  if (typeof name !== 'string' || !name.trim()) throw new StoreError('invalid', `a dataset name must be a non-empty string (got ${JSON.stringify(name)})`);
  return name.trim();
}

function checkExcluded(id: string, lines: unknown): number[] {
  if (!Array.isArray(lines) || lines.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new StoreError('invalid', `dataset ${id}: excluded lines must be 1-based integers`);
  }
  return [...new Set(lines as number[])].sort((a, b) => a - b);
}

function countLines(text: string): number {
  if (!text) return 0;
  let n = 1;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return text.endsWith('\n') ? n - 1 : n;
}

/** Store a new dataset (id generated when absent). Throws 'exists' when the id is taken. */
export async function createDataset(init: CreateDatasetInit): Promise<DatasetMeta> {
  const id = init.id === undefined ? newId('ds') : checkId('dataset', init.id);
  if (typeof init.text !== 'string') throw new StoreError('invalid', `dataset ${id}: text must be a string`);
  if (typeof init.format !== 'string' || !init.format) throw new StoreError('invalid', `dataset ${id}: format must be a non-empty string`);
  const now = Date.now();
  const meta = stamp(DATASET_META, {
    id,
    name: checkName(init.name),
    createdAt: now,
    updatedAt: now,
    format: init.format,
    chars: init.text.length,
    lines: countLines(init.text),
    report: init.report ?? null,
    excluded: checkExcluded(id, init.excluded ?? []),
  });
  const text = stamp(DATASET_TEXT, { id, text: init.text });
  await tx('datasets', 'readwrite', async (s) => {
    if ((await req(s.count(['meta', id]))) > 0) throw new StoreError('exists', `dataset ${id} already exists`);
    await req(s.put(meta, ['meta', id]));
    await req(s.put(text, ['text', id]));
  });
  return meta;
}

/** The dataset's metadata (no text), or undefined. */
export async function getDatasetMeta(id: string): Promise<DatasetMeta | undefined> {
  return tx('datasets', 'readonly', async (s) => decode(DATASET_META, await req(s.get(['meta', id])), where(id)));
}

/** Metadata and text, or undefined. */
export async function getDataset(id: string): Promise<Dataset | undefined> {
  return tx('datasets', 'readonly', async (s) => {
    const meta = decode(DATASET_META, await req(s.get(['meta', id])), where(id));
    if (!meta) return undefined;
    const text = decodeRequired(DATASET_TEXT, await req(s.get(['text', id])), `${where(id)}/text`);
    return { ...meta, text: text.text };
  });
}

/** Every dataset's metadata (never the text), oldest first. */
export async function listDatasets(opts: ListOptions = {}): Promise<DatasetMeta[]> {
  const raws = await tx('datasets', 'readonly', (s) => req(s.getAll(prefixRange(['meta']))));
  return decodeAll(DATASET_META, raws, whereOfId('datasets'), opts.onUnreadable)
    .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
}

/** Change name / report / excluded lines / format (read-modify-write in one transaction). */
export async function updateDataset(id: string, patch: { name?: string; report?: DatasetReportSummary | null; excluded?: number[]; format?: string }): Promise<DatasetMeta> {
  return tx('datasets', 'readwrite', async (s) => {
    const cur = decodeRequired(DATASET_META, await req(s.get(['meta', id])), where(id));
    const next: DatasetMeta = { ...cur, updatedAt: Date.now() };
    if (patch.name !== undefined) next.name = checkName(patch.name);
    if (patch.report !== undefined) next.report = patch.report;
    if (patch.excluded !== undefined) next.excluded = checkExcluded(id, patch.excluded);
    if (patch.format !== undefined) next.format = patch.format;
    await req(s.put(next, ['meta', id]));
    return next;
  });
}

export function renameDataset(id: string, name: string): Promise<DatasetMeta> {
  return updateDataset(id, { name });
}

export function setDatasetExcluded(id: string, lines: number[]): Promise<DatasetMeta> {
  return updateDataset(id, { excluded: lines });
}

/** Delete metadata and text in one transaction; false when there was no such dataset. */
export async function deleteDataset(id: string): Promise<boolean> {
  return tx('datasets', 'readwrite', async (s) => {
    const had = (await req(s.count(['meta', id]))) > 0;
    await req(s.delete(['meta', id]));
    await req(s.delete(['text', id]));
    return had;
  });
}
