// Reading and validating a JSON Lines training file: bytes → lines (UTF-8, BOM, size limit) →
// one JSON object per line → format detection per line (chat / prompt-completion / text) →
// structural checks with line-precise errors and warnings → validated Examples. Also: exact
// duplicates, mixtures of formats, too few examples. Needs no tokenizer (tokenize.ts adds the
// length/template checks). Runs anywhere (Worker, Node): no DOM, no GPU.
// It is not: tokenization, batching, nor a "fixer" — bad lines are reported, never dropped here.
import {
  FORMATS, ISSUE_CODES, ROLES,
  type ChatMessage, type DataFormat, type Example, type Issue, type IssueCode, type Role, type ValidationReport,
} from './types.ts';

export interface ParseOptions {
  /** refuse inputs larger than this many bytes (default 64 MiB) */
  maxBytes?: number;
  /** force one format: lines in another format become `wrong_format` errors (default: auto-detect) */
  format?: DataFormat;
  /** warn below this many valid examples (default 100) */
  minExamples?: number;
}

export interface ParseResult {
  report: ValidationReport;
  /** valid examples, in file order */
  examples: Example[];
}

export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MIN_EXAMPLES = 100;

/** Builds an issue with the severity of its code. */
export function issue(code: IssueCode, message: string, where: { line?: number; path?: string; column?: number; relatedLine?: number } = {}): Issue {
  const i: Issue = { severity: ISSUE_CODES[code], code, message };
  if (where.line !== undefined) i.line = where.line;
  if (where.column !== undefined) i.column = where.column;
  if (where.path !== undefined) i.path = where.path;
  if (where.relatedLine !== undefined) i.relatedLine = where.relatedLine;
  return i;
}

/** `line 12, messages[2].role: unknown role "bot" …` (file-level issues have no prefix but the source). */
export function formatIssue(i: Issue, source?: string): string {
  const where: string[] = [];
  if (i.line !== undefined) where.push(`line ${i.line}${i.column !== undefined ? `:${i.column}` : ''}`);
  if (i.path) where.push(i.path);
  const head = `${i.severity}${source ? ` ${source}` : ''}${where.length ? ` ${where.join(', ')}` : ''}`;
  return `${head}: ${i.message} [${i.code}]`;
}

/** A readable summary: counts, then the issues (at most `maxIssues`, default 50). */
export function formatReport(r: ValidationReport, opts: { source?: string; maxIssues?: number } = {}): string {
  const max = opts.maxIssues ?? 50;
  const fmt = FORMATS.filter((f) => r.formats[f] > 0).map((f) => `${r.formats[f]} ${f}`).join(', ') || 'none';
  const out = [
    `${opts.source ?? 'dataset'}: ${r.lines} lines, ${r.examples} valid examples (${fmt}), ` +
      `${r.badLines.length} bad lines, ${r.errors} errors, ${r.warnings} warnings`,
  ];
  for (const i of r.issues.slice(0, max)) out.push('  ' + formatIssue(i));
  if (r.issues.length > max) out.push(`  … and ${r.issues.length - max} more`);
  return out.join('\n');
}

// ---------------------------------------------------------------- bytes → lines

/** Offset of the first byte of an invalid UTF-8 sequence in bytes[start, end), or -1. */
export function firstInvalidUtf8(b: Uint8Array, start = 0, end = b.length): number {
  let i = start;
  while (i < end) {
    const c = b[i];
    if (c < 0x80) { i++; continue; }
    let n: number, lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c === 0xe0) { n = 2; lo = 0xa0; }
    else if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) n = 2;
    else if (c === 0xed) { n = 2; hi = 0x9f; }
    else if (c === 0xf0) { n = 3; lo = 0x90; }
    else if (c >= 0xf1 && c <= 0xf3) n = 3;
    else if (c === 0xf4) { n = 3; hi = 0x8f; }
    else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      const l = k === 1 ? lo : 0x80, h = k === 1 ? hi : 0xbf;
      if (i + k >= end || d < l || d > h) return i; // truncated or bad continuation
    }
    i += n + 1;
  }
  return -1;
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) { n += 4; i++; }
    else n += 3;
  }
  return n;
}

function mib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} bytes`;
}

interface Lines {
  /** one entry per line; null where the line is not valid UTF-8 (an error was added) */
  lines: (string | null)[];
  bytes: number;
  /** set when the file cannot be read at all (too large, UTF-16) */
  fatal: boolean;
}

function hex(b: number): string {
  return '0x' + b.toString(16).toUpperCase().padStart(2, '0');
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop(); // a final newline ends the last line
  return lines;
}

function readLines(input: Uint8Array | ArrayBuffer | string, maxBytes: number, issues: Issue[]): Lines {
  if (typeof input === 'string') {
    const bytes = utf8Length(input);
    if (bytes > maxBytes) {
      issues.push(issue('file_too_large', `the file is ${mib(bytes)}; the limit is ${mib(maxBytes)} (option maxBytes). Split it or sample it.`));
      return { lines: [], bytes, fatal: true };
    }
    let text = input;
    if (text.charCodeAt(0) === 0xfeff) {
      text = text.slice(1);
      issues.push(issue('bom', 'the file starts with a byte order mark (U+FEFF); it was ignored'));
    }
    return { lines: splitLines(text), bytes, fatal: false };
  }
  const b = input instanceof Uint8Array ? input : new Uint8Array(input);
  if (b.length > maxBytes) {
    issues.push(issue('file_too_large', `the file is ${mib(b.length)}; the limit is ${mib(maxBytes)} (option maxBytes). Split it or sample it.`));
    return { lines: [], bytes: b.length, fatal: true };
  }
  if (b.length >= 2 && ((b[0] === 0xff && b[1] === 0xfe) || (b[0] === 0xfe && b[1] === 0xff))) {
    const which = b[0] === 0xff ? 'UTF-16 little-endian (byte order mark FF FE)' : 'UTF-16 big-endian (byte order mark FE FF)';
    issues.push(issue('utf16', `the file is ${which}, not UTF-8: save it as UTF-8`));
    return { lines: [], bytes: b.length, fatal: true };
  }
  let nul = 0;
  const probe = Math.min(b.length, 4096);
  for (let i = 0; i < probe; i++) if (b[i] === 0) nul++;
  if (probe >= 4 && nul > probe / 8) {
    issues.push(issue('utf16', `the file has many zero bytes (${nul} in the first ${probe}): it looks like UTF-16 or a binary file, not UTF-8 text`));
    return { lines: [], bytes: b.length, fatal: true };
  }
  let start = 0;
  if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) {
    start = 3;
    issues.push(issue('bom', 'the file starts with a UTF-8 byte order mark (EF BB BF); it was ignored'));
  }
  const body = b.subarray(start);
  try {
    return { lines: splitLines(new TextDecoder('utf-8', { fatal: true }).decode(body)), bytes: b.length, fatal: false };
  } catch {
    // slow path: find the bad lines, decode the good ones
  }
  const loose = new TextDecoder('utf-8');
  let latin: TextDecoder | null = null;
  try { latin = new TextDecoder('windows-1252'); } catch { latin = null; }
  const lines: (string | null)[] = [];
  let bad = 0, firstBad = 0, highBytes = 0;
  let ls = 0;
  for (let i = 0; i <= body.length; i++) {
    if (i < body.length && body[i] !== 0x0a) continue;
    if (i === body.length && ls === body.length) break; // final newline
    const off = firstInvalidUtf8(body, ls, i);
    const lineNo = lines.length + 1;
    if (off < 0) lines.push(loose.decode(body.subarray(ls, i)));
    else {
      bad++;
      if (!firstBad) firstBad = lineNo;
      const col = loose.decode(body.subarray(ls, off)).length + 1;
      const byte = body[off];
      if (byte >= 0x80) highBytes++;
      const asLatin = latin && byte >= 0x80 ? latin.decode(body.subarray(off, off + 1)) : '';
      const hint = asLatin && asLatin !== '\ufffd' ? ` (${hex(byte)} is "${asLatin}" in Windows-1252/Latin-1)` : '';
      issues.push(issue('not_utf8', `not valid UTF-8: byte ${hex(byte)} at column ${col}${hint}`, { line: lineNo, column: col }));
      lines.push(null);
    }
    ls = i + 1;
  }
  issues.push(issue('not_utf8',
    `${bad} line${bad === 1 ? ' is' : 's are'} not valid UTF-8 (first: line ${firstBad}).` +
      (highBytes ? ' The file is probably in a legacy encoding such as Windows-1252/Latin-1: re-save it as UTF-8.' : '')));
  return { lines, bytes: b.length, fatal: false };
}

// ---------------------------------------------------------------- one line → Example

type Add = (code: IssueCode, message: string, path?: string) => void;

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number') return 'a number';
  if (typeof v === 'boolean') return 'a boolean';
  return typeof v;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const has = (o: Record<string, unknown>, k: string) => Object.prototype.hasOwnProperty.call(o, k);

const ROLE_HINTS: Record<string, string> = {
  tool: 'tool messages (function calling) are not supported',
  function: 'function messages (function calling) are not supported',
  developer: 'use "system"',
  human: 'use "user" (ShareGPT-style roles must be mapped)',
  gpt: 'use "assistant" (ShareGPT-style roles must be mapped)',
  bot: 'use "assistant"',
  model: 'use "assistant"',
};

/** Detected formats of a parsed line (by its keys). */
function detect(v: Record<string, unknown>): DataFormat[] {
  const f: DataFormat[] = [];
  if (has(v, 'messages')) f.push('chat');
  if (has(v, 'prompt') || has(v, 'completion')) f.push('prompt_completion');
  if (has(v, 'text')) f.push('text');
  return f;
}

const FORMAT_KEYS: Record<DataFormat, string> = { chat: '"messages"', prompt_completion: '"prompt"/"completion"', text: '"text"' };

function validateChat(v: Record<string, unknown>, add: Add): ChatMessage[] | null {
  for (const k of Object.keys(v)) {
    if (k === 'messages') continue;
    if (k === 'tools' || k === 'functions' || k === 'parallel_tool_calls') add('unsupported_ignored', `function/tool calling is not supported; "${k}" is ignored`, k);
    else add('unknown_field', `unknown field "${k}" is ignored`, k);
  }
  const msgs = v.messages;
  if (!Array.isArray(msgs)) {
    add('wrong_type', `"messages" must be an array of {"role", "content"} objects (found ${kind(msgs)})`, 'messages');
    return null;
  }
  if (msgs.length === 0) {
    add('no_messages', '"messages" is empty', 'messages');
    return null;
  }
  let ok = true;
  const out: ChatMessage[] = [];
  const roles: (Role | null)[] = [];
  msgs.forEach((m, i) => {
    const p = `messages[${i}]`;
    if (!isObject(m)) {
      add('wrong_type', `each message must be an object with "role" and "content" (found ${kind(m)})`, p);
      ok = false;
      roles.push(null);
      return;
    }
    let role: Role | null = null;
    if (!has(m, 'role')) { add('missing_field', 'missing "role"', `${p}.role`); ok = false; }
    else if (typeof m.role !== 'string') { add('wrong_type', `"role" must be a string (found ${kind(m.role)})`, `${p}.role`); ok = false; }
    else if (!(ROLES as readonly string[]).includes(m.role)) {
      const hint = ROLE_HINTS[m.role.toLowerCase()];
      add('unknown_role', `unknown role ${JSON.stringify(m.role)}: expected "system", "user" or "assistant"${hint ? ` — ${hint}` : ''}`, `${p}.role`);
      ok = false;
    } else role = m.role as Role;
    roles.push(role);

    for (const k of Object.keys(m)) {
      if (k === 'role' || k === 'content' || k === 'weight') continue;
      if (k === 'tool_calls' || k === 'function_call' || k === 'tool_call_id') {
        add('unsupported', `"${k}": function/tool calling is not supported`, `${p}.${k}`);
        ok = false;
      } else if (k === 'name') add('unsupported_ignored', '"name" is ignored (chat templates here do not render it)', `${p}.name`);
      else add('unknown_field', `unknown field "${k}" is ignored`, `${p}.${k}`);
    }

    let content: string | null = null;
    if (!has(m, 'content') || m.content === null || m.content === undefined) {
      add('missing_content', `missing "content"${has(m, 'content') ? ' (it is null)' : ''}`, `${p}.content`);
      ok = false;
    } else if (typeof m.content === 'string') content = m.content;
    else if (Array.isArray(m.content)) {
      // OpenAI content parts: only text parts are supported; they are joined.
      const parts: string[] = [];
      m.content.forEach((part, j) => {
        const pp = `${p}.content[${j}]`;
        if (isObject(part) && part.type === 'text' && typeof part.text === 'string') parts.push(part.text);
        else if (isObject(part) && typeof part.type === 'string' && part.type !== 'text') {
          add('unsupported', `content part of type ${JSON.stringify(part.type)} is not supported (text only)`, `${pp}.type`);
          ok = false;
        } else {
          add('wrong_type', `a content part must be {"type": "text", "text": string} (found ${kind(part)})`, pp);
          ok = false;
        }
      });
      if (parts.length === m.content.length) content = parts.join('');
    } else {
      add('wrong_type', `"content" must be a string (found ${kind(m.content)})`, `${p}.content`);
      ok = false;
    }
    if (content !== null && content.trim() === '') {
      if (role === 'assistant') { add('empty_content', 'assistant "content" is empty: there is nothing to learn', `${p}.content`); ok = false; }
      else if (role) add('empty_content_prompt', `${role} "content" is empty (kept)`, `${p}.content`);
    }

    let weight: 0 | 1 = 1;
    if (has(m, 'weight')) {
      if (role && role !== 'assistant') {
        add('weight_not_assistant', `"weight" is only allowed on assistant messages (this is a ${role} message)`, `${p}.weight`);
        ok = false;
      } else if (m.weight !== 0 && m.weight !== 1) {
        add('bad_weight', `"weight" must be 0 or 1 (found ${JSON.stringify(m.weight)})`, `${p}.weight`);
        ok = false;
      } else weight = m.weight;
    }
    if (role && content !== null) out.push({ role, content, weight });
  });

  const lastAssistant = roles.lastIndexOf('assistant');
  if (lastAssistant < 0) {
    if (roles.every((r) => r !== null)) add('no_assistant', 'no assistant message: there is nothing to learn from this example', 'messages');
    ok = false;
  } else if (lastAssistant < roles.length - 1 && roles.slice(lastAssistant + 1).every((r) => r !== null)) {
    const k = lastAssistant + 1, n = roles.length - 1;
    add('trailing_messages', `${k === n ? `messages[${k}] comes` : `messages[${k}..${n}] come`} after the last assistant message and ${k === n ? 'is' : 'are'} not trained on`, `messages[${k}]`);
  }
  roles.forEach((r, i) => {
    if (r === 'system' && i > 0) add('system_not_first', 'system message is not the first message; many chat templates reject or move it', `messages[${i}].role`);
  });
  return ok ? out : null;
}

function validatePromptCompletion(v: Record<string, unknown>, add: Add): { prompt: string; completion: string } | null {
  let ok = true;
  for (const k of Object.keys(v)) if (k !== 'prompt' && k !== 'completion') add('unknown_field', `unknown field "${k}" is ignored`, k);
  for (const k of ['prompt', 'completion'] as const) {
    if (!has(v, k)) { add('missing_field', `missing "${k}"`, k); ok = false; }
    else if (typeof v[k] !== 'string') {
      add('wrong_type', `"${k}" must be a string (found ${kind(v[k])})${Array.isArray(v[k]) ? '; conversational prompts go in {"messages": [...]}' : ''}`, k);
      ok = false;
    }
  }
  if (ok && (v.completion as string).trim() === '') { add('empty_content', '"completion" is empty: there is nothing to learn', 'completion'); ok = false; }
  return ok ? { prompt: v.prompt as string, completion: v.completion as string } : null;
}

function validateText(v: Record<string, unknown>, add: Add): string | null {
  for (const k of Object.keys(v)) if (k !== 'text') add('unknown_field', `unknown field "${k}" is ignored`, k);
  if (typeof v.text !== 'string') { add('wrong_type', `"text" must be a string (found ${kind(v.text)})`, 'text'); return null; }
  if (v.text.trim() === '') { add('empty_content', '"text" is empty', 'text'); return null; }
  return v.text;
}

/**
 * Offset of the first JSON syntax error in s (for a column number: engines' messages do not
 * always carry a position), or -1 when s is valid JSON (or too deeply nested to scan).
 */
export function jsonErrorOffset(s: string): number {
  let i = 0;
  class Fail { constructor(public at: number) {} }
  const fail = (at = i): never => { throw new Fail(at); };
  const ws = () => { while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n' || s[i] === '\r')) i++; };
  const lit = (w: string) => { for (let k = 0; k < w.length; k++, i++) if (s[i] !== w[k]) fail(); };
  const str = () => {
    i++; // opening quote
    for (;;) {
      if (i >= s.length) fail();
      const c = s.charCodeAt(i);
      if (c === 0x22) { i++; return; }
      if (c < 0x20) fail();
      if (c === 0x5c) {
        i++;
        const e = s[i];
        if (e === 'u') { for (let k = 1; k <= 4; k++) if (!/[0-9a-fA-F]/.test(s[i + k] ?? '')) fail(i + k); i += 5; }
        else if ('"\\/bfnrt'.includes(e ?? 'x') && e !== undefined) i++;
        else fail();
      } else i++;
    }
  };
  const num = () => {
    if (s[i] === '-') i++;
    if (s[i] === '0') i++;
    else if (/[1-9]/.test(s[i] ?? '')) while (/[0-9]/.test(s[i] ?? '')) i++;
    else fail();
    if (s[i] === '.') { i++; if (!/[0-9]/.test(s[i] ?? '')) fail(); while (/[0-9]/.test(s[i] ?? '')) i++; }
    if (s[i] === 'e' || s[i] === 'E') {
      i++;
      if (s[i] === '+' || s[i] === '-') i++;
      if (!/[0-9]/.test(s[i] ?? '')) fail();
      while (/[0-9]/.test(s[i] ?? '')) i++;
    }
  };
  const value = (): void => {
    ws();
    const c = s[i];
    if (c === '{') {
      i++; ws();
      if (s[i] === '}') { i++; return; }
      for (;;) {
        ws();
        if (s[i] !== '"') fail();
        str(); ws();
        if (s[i] !== ':') fail();
        i++; value(); ws();
        if (s[i] === ',') { i++; continue; }
        if (s[i] === '}') { i++; return; }
        fail();
      }
    } else if (c === '[') {
      i++; ws();
      if (s[i] === ']') { i++; return; }
      for (;;) {
        value(); ws();
        if (s[i] === ',') { i++; continue; }
        if (s[i] === ']') { i++; return; }
        fail();
      }
    } else if (c === '"') str();
    else if (c === 't') lit('true');
    else if (c === 'f') lit('false');
    else if (c === 'n') lit('null');
    else num();
  };
  try {
    value(); ws();
    if (i < s.length) fail();
    return -1;
  } catch (e) {
    if (e instanceof Fail) return Math.min(e.at, s.length);
    return -1; // e.g. nesting too deep for this scanner: no column then
  }
}

function jsonHint(s: string): string {
  const t = s.trim();
  if (t === '{' || t === '[' || t === '}' || t === ']' || t === '},') return ' — one example spans several lines? JSONL needs one complete object per line';
  if (t.endsWith(',') && t.startsWith('{')) return ' — remove the trailing comma (JSONL is not a JSON array)';
  if (t.startsWith("{'") || t.includes("':")) return ' — JSON needs double quotes';
  return '';
}

/** Canonical form of an example for exact-duplicate detection (line excluded). */
function canonical(e: Example): string {
  switch (e.format) {
    case 'chat': return JSON.stringify(['c', e.messages.map((m) => [m.role, m.content, m.weight])]);
    case 'prompt_completion': return JSON.stringify(['p', e.prompt, e.completion]);
    case 'text': return JSON.stringify(['t', e.text]);
  }
}

// ---------------------------------------------------------------- the file

/**
 * Validates a JSONL training file. Never throws on bad data: everything is in `report`.
 * `examples` holds the valid lines only; whether a dataset may be built from them while the file
 * has errors is the caller's explicit choice (see prepareDataset's `skipInvalid`).
 */
export function parseDataset(input: Uint8Array | ArrayBuffer | string, opts: ParseOptions = {}): ParseResult {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const minExamples = opts.minExamples ?? DEFAULT_MIN_EXAMPLES;
  const fileIssues: Issue[] = [];
  const lineIssues: Issue[] = [];
  const { lines, bytes, fatal } = readLines(input, maxBytes, fileIssues);
  const examples: Example[] = [];
  const blankLines: number[] = [];
  const formats: Record<DataFormat, number> = { chat: 0, prompt_completion: 0, text: 0 };
  const formatLines: Record<DataFormat, number[]> = { chat: [], prompt_completion: [], text: [] };
  const seen = new Map<string, number>();
  let crlf = 0, nonBlank = 0;
  let firstNonBlank: string | null = null;

  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    let s = lines[i];
    if (s === null) { nonBlank++; continue; }
    if (s.endsWith('\r')) { s = s.slice(0, -1); crlf++; }
    if (s.trim() === '') {
      blankLines.push(line);
      lineIssues.push(issue('blank_line', 'blank line (ignored)', { line }));
      continue;
    }
    nonBlank++;
    if (firstNonBlank === null) firstNonBlank = s.trim();
    let errors = 0;
    const add: Add = (code, message, path) => {
      if (ISSUE_CODES[code] === 'error') errors++;
      lineIssues.push(issue(code, message, { line, path }));
    };
    let v: unknown;
    try {
      v = JSON.parse(s);
    } catch (e) {
      const msg = (e as Error).message;
      const off = jsonErrorOffset(s);
      const column = off >= 0 ? off + 1 : undefined;
      lineIssues.push(issue('invalid_json', `not valid JSON${column ? ` at column ${column}` : ''}: ${msg}${jsonHint(s)}`, { line, column }));
      continue;
    }
    if (!isObject(v)) {
      add('not_object', `each line must be a JSON object (found ${kind(v)})${Array.isArray(v) ? ' — is the file a JSON array instead of JSON Lines?' : ''}`);
      continue;
    }
    const found = detect(v);
    if (found.length === 0) {
      const keys = Object.keys(v).slice(0, 8).map((k) => JSON.stringify(k)).join(', ');
      add('unknown_format', `no "messages", "prompt"/"completion" or "text" field (found ${keys || 'no fields'}); expected {"messages": [...]}, {"prompt": …, "completion": …} or {"text": …}`);
      continue;
    }
    if (found.length > 1) {
      add('ambiguous_format', `has ${found.map((f) => FORMAT_KEYS[f]).join(' and ')}: use one format per line`);
      continue;
    }
    const format = found[0];
    if (opts.format && format !== opts.format) {
      add('wrong_format', `this line is in ${format} format (${FORMAT_KEYS[format]}) but the format was set to ${opts.format}`);
      continue;
    }
    let ex: Example | null = null;
    if (format === 'chat') {
      const messages = validateChat(v, add);
      if (messages) ex = { format, line, messages };
    } else if (format === 'prompt_completion') {
      const pc = validatePromptCompletion(v, add);
      if (pc) ex = { format, line, ...pc };
    } else {
      const text = validateText(v, add);
      if (text !== null) ex = { format, line, text };
    }
    if (!ex || errors) continue;
    const key = canonical(ex);
    const first = seen.get(key);
    if (first !== undefined) add('duplicate', `exact duplicate of line ${first} (line ${line} repeats line ${first})`);
    else seen.set(key, line);
    formats[format]++;
    formatLines[format].push(line);
    examples.push(ex);
  }

  if (!fatal) {
    if (crlf) fileIssues.push(issue('crlf', `${crlf} line${crlf === 1 ? '' : 's'} end with CRLF (Windows line endings); the CR was ignored`));
    if (firstNonBlank === '[') fileIssues.push(issue('json_array', 'the file looks like a JSON array; JSONL needs one JSON object per line, without the surrounding [ ]'));
    else if (firstNonBlank === '{') fileIssues.push(issue('pretty_printed', 'the file looks like pretty-printed JSON; JSONL needs each example on one line'));
    if (nonBlank === 0) fileIssues.push(issue('empty_file', lines.length ? 'the file has only blank lines' : 'the file is empty'));
    const present = FORMATS.filter((f) => formats[f] > 0);
    if (present.length > 1) {
      const major = present.reduce((a, b) => (formats[b] > formats[a] ? b : a));
      const parts = present.map((f) => `${formats[f]} ${f}`).join(', ');
      const minority = present.filter((f) => f !== major).map((f) => {
        const ls = formatLines[f];
        return `${f} at line${ls.length === 1 ? '' : 's'} ${ls.slice(0, 10).join(', ')}${ls.length > 10 ? ', …' : ''}`;
      }).join('; ');
      fileIssues.push(issue('mixed_formats', `the file mixes formats (${parts}); mostly ${major}, ${minority}. Each line is formatted by its own format.`));
    }
    const n = examples.length;
    if (n > 0 && n < minExamples) {
      fileIssues.push(issue('few_examples',
        `only ${n} valid example${n === 1 ? '' : 's'}. Rule of thumb: fine-tuning starts to show clear gains from about 50–100 ` +
          `well-chosen examples (OpenAI's API requires at least 10 and recommends 50–100); aim for 100+ ` +
          `and add more while the validation loss keeps improving.${n < 10 ? ' With fewer than 10 the model mostly memorizes them.' : ''}`));
    }
  }

  return { report: makeReport([...fileIssues, ...lineIssues], { lines: lines.length, examples: examples.length, formats, blankLines, bytes }), examples };
}

/** Assembles a report from issues (sorted: file-level first, then by line, stable). */
export function makeReport(
  issues: Issue[],
  r: { lines: number; examples: number; formats: Record<DataFormat, number>; blankLines: number[]; bytes: number },
): ValidationReport {
  const sorted = issues
    .map((i, k) => ({ i, k }))
    .sort((a, b) => (a.i.line ?? 0) - (b.i.line ?? 0) || a.k - b.k)
    .map((x) => x.i);
  const bad = new Set<number>();
  let errors = 0, warnings = 0;
  for (const i of sorted) {
    if (i.severity === 'error') { errors++; if (i.line !== undefined) bad.add(i.line); }
    else if (i.severity === 'warning') warnings++;
  }
  const present = FORMATS.filter((f) => r.formats[f] > 0);
  const format = present.length ? present.reduce((a, b) => (r.formats[b] > r.formats[a] ? b : a)) : null;
  return {
    ok: errors === 0,
    format,
    formats: r.formats,
    lines: r.lines,
    examples: r.examples,
    badLines: [...bad].sort((a, b) => a - b),
    blankLines: r.blankLines,
    errors,
    warnings,
    issues: sorted,
    bytes: r.bytes,
  };
}
