// Validation of JSONL training files (src/data/validate.ts, dataset.ts): every error and warning
// with its line number and field path, the three formats and their mixture, encodings (BOM,
// UTF-16, invalid UTF-8), size limit, duplicates, too few examples, and the explicit choice to
// train on the good lines only.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { formatIssue, formatReport, loadDataset, parseDataset, type Issue, type IssueCode, type ValidationReport } from '../../src/data/index.ts';
import { charTokenizer, chatLines, jsonl } from './toy.ts';

function find(r: ValidationReport, code: IssueCode, line?: number, path?: string): Issue {
  const hit = r.issues.find((i) => i.code === code && i.line === line && (path === undefined || i.path === path));
  assert.ok(hit, `expected ${code} at line ${line}${path ? ` (${path})` : ''}; got:\n${r.issues.map((i) => formatIssue(i)).join('\n')}`);
  return hit;
}

const U = (content: unknown) => ({ role: 'user', content });
const A = (content: unknown, extra: object = {}) => ({ role: 'assistant', content, ...extra });

test('three formats are detected per file', () => {
  const chat = parseDataset(jsonl(...chatLines(3)));
  assert.equal(chat.report.format, 'chat');
  assert.equal(chat.report.examples, 3);
  assert.deepEqual(chat.examples[1], { format: 'chat', line: 2, messages: [{ role: 'user', content: 'question 1', weight: 1 }, { role: 'assistant', content: 'answer 1', weight: 1 }] });

  const pc = parseDataset(jsonl({ prompt: 'a', completion: ' b' }, { prompt: '', completion: ' c' }));
  assert.equal(pc.report.format, 'prompt_completion');
  assert.deepEqual(pc.examples.map((e) => e.format === 'prompt_completion' && [e.prompt, e.completion]), [['a', ' b'], ['', ' c']]);

  const text = parseDataset(jsonl({ text: 'Once upon a time.' }, { text: 'The end.' }));
  assert.equal(text.report.format, 'text');
  assert.equal(text.report.examples, 2);
  assert.ok(!text.report.issues.some((i) => i.code === 'mixed_formats'));
});

test('a mixture of formats is reported with the minority lines; each line keeps its format', () => {
  const { report, examples } = parseDataset(jsonl(...chatLines(4), { text: 'plain' }, ...chatLines(2, 10), { prompt: 'p', completion: 'c' }));
  assert.equal(report.format, 'chat');
  assert.deepEqual(report.formats, { chat: 6, prompt_completion: 1, text: 1 });
  const m = find(report, 'mixed_formats', undefined);
  assert.equal(m.severity, 'warning');
  assert.match(m.message, /6 chat, 1 prompt_completion, 1 text/);
  assert.match(m.message, /text at line 5/);
  assert.match(m.message, /prompt_completion at line 8/);
  assert.deepEqual(examples.map((e) => e.format), ['chat', 'chat', 'chat', 'chat', 'text', 'chat', 'chat', 'prompt_completion']);
});

test('structural errors: line numbers, field paths, messages', () => {
  const lines: unknown[] = [
    /* 1 */ { messages: [U('hi'), A('hello')] },
    /* 2 */ '{"messages": [{"role": "user", "content": "hi"},}',
    /* 3 */ '[1, 2]',
    /* 4 */ '42',
    /* 5 */ { input: 'x', output: 'y' },
    /* 6 */ { messages: [U('a'), A('b')], text: 'c' },
    /* 7 */ { messages: 'hi' },
    /* 8 */ { messages: [U('a'), 'oops', A('b')] },
    /* 9 */ { messages: [U('a'), { content: 'b' }] },
    /* 10 */ { messages: [U('a'), { role: 'bot', content: 'b' }] },
    /* 11 */ { messages: [U('a'), { role: 7, content: 'b' }] },
    /* 12 */ { messages: [U('a'), { role: 'assistant' }] },
    /* 13 */ { messages: [U('a'), A(null)] },
    /* 14 */ { messages: [U('a'), A(42)] },
    /* 15 */ { messages: [U('a'), A('   ')] },
    /* 16 */ { messages: [U(''), A('b')] },
    /* 17 */ { messages: [] },
    /* 18 */ { messages: [{ role: 'system', content: 's' }, U('a')] },
    /* 19 */ { messages: [U('a'), A('b', { weight: 0.5 })] },
    /* 20 */ { messages: [U('a'), A('b', { weight: true })] },
    /* 21 */ { messages: [{ role: 'user', content: 'a', weight: 1 }, A('b')] },
    /* 22 */ { messages: [U('a'), A('b', { tool_calls: [] })] },
    /* 23 */ { messages: [U([{ type: 'image_url', image_url: { url: 'x' } }]), A('b')] },
    /* 24 */ { prompt: 'p' },
    /* 25 */ { prompt: 3, completion: 'c' },
    /* 26 */ { prompt: 'p', completion: '' },
    /* 27 */ { text: 5 },
    /* 28 */ { text: '' },
    /* 29 */ { messages: [U('a'), { role: 'tool', content: 'b' }] },
  ];
  const { report, examples } = parseDataset(jsonl(...lines));
  const bad = (code: IssueCode, line: number, path?: string) => {
    const i = find(report, code, line, path);
    assert.equal(i.severity, code === 'empty_content_prompt' ? 'warning' : 'error', `${code} severity`);
    return i;
  };
  const j = bad('invalid_json', 2);
  assert.match(j.message, /^not valid JSON at column 49: Unexpected token/);
  assert.equal(j.column, 49);
  assert.match(bad('not_object', 3).message, /found an array.*JSON array instead of JSON Lines/);
  assert.match(bad('not_object', 4).message, /found a number/);
  assert.match(bad('unknown_format', 5).message, /found "input", "output"/);
  assert.match(bad('ambiguous_format', 6).message, /"messages" and "text"/);
  assert.match(bad('wrong_type', 7, 'messages').message, /must be an array.*found a string/);
  assert.match(bad('wrong_type', 8, 'messages[1]').message, /found a string/);
  assert.match(bad('missing_field', 9, 'messages[1].role').message, /missing "role"/);
  assert.match(bad('unknown_role', 10, 'messages[1].role').message, /unknown role "bot".*use "assistant"/);
  assert.match(bad('wrong_type', 11, 'messages[1].role').message, /"role" must be a string \(found a number\)/);
  assert.match(bad('missing_content', 12, 'messages[1].content').message, /missing "content"/);
  assert.match(bad('missing_content', 13, 'messages[1].content').message, /null/);
  assert.match(bad('wrong_type', 14, 'messages[1].content').message, /"content" must be a string \(found a number\)/);
  assert.match(bad('empty_content', 15, 'messages[1].content').message, /assistant "content" is empty/);
  bad('empty_content_prompt', 16, 'messages[0].content');
  assert.match(bad('no_messages', 17, 'messages').message, /empty/);
  assert.match(bad('no_assistant', 18, 'messages').message, /no assistant message/);
  assert.match(bad('bad_weight', 19, 'messages[1].weight').message, /must be 0 or 1 \(found 0.5\)/);
  assert.match(bad('bad_weight', 20, 'messages[1].weight').message, /found true/);
  assert.match(bad('weight_not_assistant', 21, 'messages[0].weight').message, /only allowed on assistant messages \(this is a user message\)/);
  assert.match(bad('unsupported', 22, 'messages[1].tool_calls').message, /tool calling is not supported/);
  assert.match(bad('unsupported', 23, 'messages[0].content[0].type').message, /"image_url" is not supported/);
  assert.match(bad('missing_field', 24, 'completion').message, /missing "completion"/);
  assert.match(bad('wrong_type', 25, 'prompt').message, /"prompt" must be a string \(found a number\)/);
  assert.match(bad('empty_content', 26, 'completion').message, /"completion" is empty/);
  assert.match(bad('wrong_type', 27, 'text').message, /"text" must be a string/);
  assert.match(bad('empty_content', 28, 'text').message, /"text" is empty/);
  assert.match(bad('unknown_role', 29, 'messages[1].role').message, /tool messages .* not supported/);

  // every line but 1 and 16 (a warning only) is bad; bad lines are listed, never silently dropped
  const expectedBad = Array.from({ length: 29 }, (_, i) => i + 1).filter((l) => l !== 1 && l !== 16);
  assert.deepEqual(report.badLines, expectedBad);
  assert.deepEqual(examples.map((e) => e.line), [1, 16]);
  assert.equal(report.ok, false);
  assert.equal(report.lines, 29);
  // issues are sorted by line
  const ls = report.issues.filter((i) => i.line !== undefined).map((i) => i.line!);
  assert.deepEqual(ls, [...ls].sort((a, b) => a - b));
});

test('warnings and notes: unknown fields, ignored fields, system order, trailing messages, blank lines, CRLF', () => {
  const text = [
    JSON.stringify({ messages: [U('a'), A('b')], id: 7 }),
    '',
    '   ',
    JSON.stringify({ messages: [U('a'), A('c', { foo: 1 })], tools: [] }),
    JSON.stringify({ messages: [U('a'), { role: 'system', content: 's' }, A('d')] }),
    JSON.stringify({ messages: [U('a'), A('e'), U('f')] }),
    JSON.stringify({ messages: [{ role: 'user', content: 'a', name: 'bob' }, A('g')] }),
    JSON.stringify({ prompt: 'p', completion: 'c', meta: 1 }),
    JSON.stringify({ messages: [U([{ type: 'text', text: 'part1 ' }, { type: 'text', text: 'part2' }]), A('h')] }),
  ].join('\r\n');
  const { report, examples } = parseDataset(text);
  assert.equal(report.ok, true, formatReport(report));
  assert.equal(find(report, 'unknown_field', 1, 'id').severity, 'warning');
  assert.equal(find(report, 'blank_line', 2).severity, 'info');
  find(report, 'blank_line', 3);
  assert.deepEqual(report.blankLines, [2, 3]);
  find(report, 'unknown_field', 4, 'messages[1].foo');
  assert.match(find(report, 'unsupported_ignored', 4, 'tools').message, /"tools" is ignored/);
  assert.equal(find(report, 'system_not_first', 5, 'messages[1].role').severity, 'warning');
  const tr = find(report, 'trailing_messages', 6, 'messages[2]');
  assert.equal(tr.severity, 'info');
  assert.equal(tr.message, 'messages[2] comes after the last assistant message and is not trained on');
  find(report, 'unsupported_ignored', 7, 'messages[0].name');
  find(report, 'unknown_field', 8, 'meta');
  assert.match(find(report, 'crlf', undefined).message, /8 lines end with CRLF/);
  assert.equal(examples.length, 7);
  const parts = examples.find((e) => e.line === 9);
  assert.ok(parts && parts.format === 'chat');
  assert.equal(parts.messages[0].content, 'part1 part2');
});

test('exact duplicates name both lines (key order and spacing do not matter)', () => {
  const { report } = parseDataset(jsonl(
    { messages: [U('a'), A('b')] },
    { text: 'x' },
    '{"messages":[{"content":"a","role":"user"},{"content":"b","role":"assistant"}]}',
    { messages: [U('a'), A('b', { weight: 0 })] },
    { text: 'x' },
  ));
  const d = find(report, 'duplicate', 3);
  assert.equal(d.severity, 'warning');
  assert.match(d.message, /duplicate of line 1/);
  assert.match(d.message, /line 3 repeats line 1/);
  assert.match(find(report, 'duplicate', 5).message, /line 5 repeats line 2/);
  assert.ok(!report.issues.some((i) => i.code === 'duplicate' && i.line === 4), 'a different weight is not a duplicate');
  assert.equal(report.examples, 5, 'duplicates are kept (warning only)');
});

test('fewer than ~100 examples: a warning with the rule of thumb', () => {
  const few = parseDataset(jsonl(...chatLines(12))).report;
  const w = find(few, 'few_examples', undefined);
  assert.equal(w.severity, 'warning');
  assert.match(w.message, /only 12 valid examples/);
  assert.match(w.message, /50–100/);
  assert.match(find(parseDataset(jsonl(...chatLines(3))).report, 'few_examples', undefined).message, /fewer than 10/);
  assert.ok(!parseDataset(jsonl(...chatLines(100))).report.issues.some((i) => i.code === 'few_examples'));
  assert.ok(!parseDataset(jsonl(...chatLines(5)), { minExamples: 5 }).report.issues.some((i) => i.code === 'few_examples'));
});

test('encodings: UTF-8 BOM ignored, UTF-16 refused, invalid UTF-8 lines located', () => {
  const body = new TextEncoder().encode(jsonl(...chatLines(2)));
  const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...body]);
  let r = parseDataset(withBom).report;
  assert.equal(r.ok, true);
  assert.equal(r.examples, 2);
  assert.equal(find(r, 'bom', undefined).severity, 'info');
  r = parseDataset('\ufeff' + jsonl(...chatLines(2))).report;
  assert.equal(r.examples, 2);
  find(r, 'bom', undefined);

  const utf16 = new Uint8Array([0xff, 0xfe, ...Array.from(body).flatMap((b) => [b, 0])]);
  r = parseDataset(utf16).report;
  assert.match(find(r, 'utf16', undefined).message, /UTF-16 little-endian.*save it as UTF-8/);
  assert.equal(r.examples, 0);
  r = parseDataset(new Uint8Array(Array.from(body).flatMap((b) => [b, 0]))).report;
  assert.match(find(r, 'utf16', undefined).message, /zero bytes/);

  // line 2 contains "café" in Windows-1252 (0xE9)
  const l1 = new TextEncoder().encode(JSON.stringify(chatLines(1)[0]) + '\n');
  const l2 = new Uint8Array([...new TextEncoder().encode('{"text": "caf'), 0xe9, ...new TextEncoder().encode('"}\n')]);
  const l3 = new TextEncoder().encode(JSON.stringify({ text: 'ünïcödé ok' }) + '\n');
  const { report, examples } = parseDataset(new Uint8Array([...l1, ...l2, ...l3]));
  const e = find(report, 'not_utf8', 2);
  assert.equal(e.severity, 'error');
  assert.equal(e.column, 14);
  assert.match(e.message, /byte 0xE9 at column 14 \(0xE9 is "é" in Windows-1252\/Latin-1\)/);
  assert.match(find(report, 'not_utf8', undefined).message, /1 line is not valid UTF-8 \(first: line 2\).*re-save it as UTF-8/);
  assert.deepEqual(report.badLines, [2]);
  assert.deepEqual(examples.map((x) => x.line), [1, 3]);
  assert.equal(examples[1].format === 'text' && examples[1].text, 'ünïcödé ok');
});

test('size limit, empty file, JSON array / pretty-printed hints, forced format', () => {
  const big = jsonl(...chatLines(50));
  const r = parseDataset(big, { maxBytes: 1000 }).report;
  const e = find(r, 'file_too_large', undefined);
  assert.match(e.message, /the file is [\d.]+ KiB; the limit is 1000 bytes \(option maxBytes\)/);
  assert.equal(r.ok, false);
  assert.equal(parseDataset(new TextEncoder().encode(big), { maxBytes: 1000 }).report.issues[0].code, 'file_too_large');

  assert.match(find(parseDataset('').report, 'empty_file', undefined).message, /empty/);
  assert.match(find(parseDataset('\n  \n').report, 'empty_file', undefined).message, /only blank lines/);

  const arr = parseDataset('[\n' + JSON.stringify(chatLines(1)[0]) + ',\n' + JSON.stringify(chatLines(1)[0]) + '\n]\n').report;
  find(arr, 'json_array', undefined);
  assert.match(find(arr, 'invalid_json', 2).message, /remove the trailing comma/);
  const pretty = parseDataset('{\n  "text": "a"\n}\n').report;
  find(pretty, 'pretty_printed', undefined);
  assert.match(find(pretty, 'invalid_json', 1).message, /spans several lines/);

  const forced = parseDataset(jsonl({ text: 'a' }, ...chatLines(1)), { format: 'text' }).report;
  assert.match(find(forced, 'wrong_format', 2).message, /chat format .* set to text/);
});

test('formatIssue and formatReport are readable', () => {
  const { report } = parseDataset(jsonl(...chatLines(1), { messages: [U('a'), { role: 'bot', content: 'b' }] }));
  const i = find(report, 'unknown_role', 2);
  assert.equal(formatIssue(i), 'error line 2, messages[1].role: unknown role "bot": expected "system", "user" or "assistant" — use "assistant" [unknown_role]');
  assert.equal(formatIssue(i, 'data.jsonl').startsWith('error data.jsonl line 2,'), true);
  const text = formatReport(report, { source: 'data.jsonl' });
  assert.match(text, /^data\.jsonl: 2 lines, 1 valid examples \(1 chat\), 1 bad lines, 1 errors, 1 warnings/);
});

test('bad lines block the dataset unless skipInvalid is set; then excluded lines are recorded', () => {
  const tok = charTokenizer();
  const text = jsonl(...chatLines(3), { messages: [U('a')] }, 'not json', ...chatLines(2, 3));
  const strict = loadDataset(text, { tokenizer: tok, maxSeqLen: 256 });
  assert.equal(strict.dataset, null);
  assert.match(strict.reason!, /2 lines have errors \(lines 4, 5\): fix them, or pass skipInvalid to train on the 5 valid examples only/);
  const loose = loadDataset(text, { tokenizer: tok, maxSeqLen: 256, skipInvalid: true, source: 'x.jsonl' });
  assert.ok(loose.dataset);
  assert.deepEqual(loose.dataset.examples.map((e) => e.line), [1, 2, 3, 6, 7]);
  assert.deepEqual(loose.dataset.excludedLines.map((e) => [e.line, e.code]), [[4, 'no_assistant'], [5, 'invalid_json']]);
  assert.match(loose.dataset.excludedLines[1].reason, /not valid JSON/);
  assert.equal(loose.dataset.sourceLines, 7);
  assert.equal(loose.dataset.source, 'x.jsonl');
  assert.equal(loose.report.ok, false, 'the report still shows the errors');
  // a fatal file-level error gives no dataset even with skipInvalid
  const huge = loadDataset(text, { tokenizer: tok, maxSeqLen: 256, skipInvalid: true, maxBytes: 10 });
  assert.equal(huge.dataset, null);
  assert.match(huge.reason!, /limit is 10 bytes/);
});

test('tokenizer-stage checks: too long (tokens cut, trained cut), nothing left to train, all weights 0, template errors', () => {
  const tok = charTokenizer();
  const long = 'x'.repeat(40);
  const text = jsonl(
    { messages: [U('q'), A(long)] }, // 1: cut inside the answer
    { messages: [U('y'.repeat(60)), A('z')] }, // 2: the answer is cut entirely
    { messages: [U('q'), A('a', { weight: 0 })] }, // 3: all weights 0
    { text: 'short' }, // 4: fine
  );
  const { report, dataset } = loadDataset(text, { tokenizer: tok, maxSeqLen: 32, skipInvalid: true });
  // line 1: <s> "User: q\n" (8) "Assistant:" (10) " " + 40 x (41) </s> = 61 tokens, trained = 42
  const t1 = find(report, 'too_long', 1);
  assert.equal(t1.severity, 'warning');
  assert.equal(t1.message, 'example is 61 tokens, longer than maxSeqLen 32: the last 29 tokens are cut (29 of them trained)');
  find(report, 'too_long', 2);
  assert.match(find(report, 'no_trained_tokens', 2).message, /after truncation to 32 tokens no trained token is left \(the first trained token is at position 78\)/);
  assert.match(find(report, 'no_trained_tokens', 3).message, /every assistant message has weight 0/);
  assert.ok(dataset);
  assert.deepEqual(dataset.examples.map((e) => e.line), [1, 4]);
  assert.equal(dataset.examples[0].ids.length, 32);
  assert.equal(dataset.examples[0].fullLength, 61);
  assert.equal(dataset.examples[0].trainedCount, 42 - 29);

  const raising = () => { throw new Error('Conversation roles must alternate user/assistant'); };
  const r2 = loadDataset(jsonl(...chatLines(2)), { tokenizer: tok, maxSeqLen: 64, chatTemplate: raising });
  assert.match(find(r2.report, 'template_error', 1).message, /chat template failed on the conversation: Conversation roles must alternate/);
  find(r2.report, 'template_error', 2);
  assert.equal(r2.dataset, null);
});

test('jsonErrorOffset agrees with JSON.parse (mutation fuzz) and firstInvalidUtf8 with TextDecoder', async () => {
  const { jsonErrorOffset, firstInvalidUtf8, mulberry32 } = await import('../../src/data/index.ts');
  const seeds = [
    '{"messages": [{"role": "user", "content": "h\\u00e9 \\"q\\"\\n"}, {"role": "assistant", "content": "ok", "weight": 0}]}',
    '{"prompt": "a", "completion": " -1.5e+3 b", "n": [1, -0, 2.5E-2, true, false, null, {}, []]}',
    '{"text": "x"}', '[]', '"s"', '0', '-12.5',
  ];
  const alphabet = '{}[]":,\\ -+.eE0123456789abtrufnl\t';
  const r = mulberry32(7);
  let checked = 0;
  for (const s0 of seeds) {
    assert.equal(jsonErrorOffset(s0), -1, s0);
    for (let k = 0; k < 400; k++) {
      let s = s0;
      const edits = 1 + Math.floor(r() * 3);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(r() * (s.length + 1));
        const op = r();
        const ch = alphabet[Math.floor(r() * alphabet.length)];
        s = op < 0.4 ? s.slice(0, at) + s.slice(at + 1) : op < 0.7 ? s.slice(0, at) + ch + s.slice(at) : s.slice(0, at) + ch + s.slice(at + 1);
      }
      let parses = true;
      try { JSON.parse(s); } catch { parses = false; }
      const off = jsonErrorOffset(s);
      assert.equal(off === -1, parses, `${JSON.stringify(s)}: offset ${off}, JSON.parse ${parses ? 'accepts' : 'rejects'}`);
      checked++;
    }
  }
  assert.equal(checked, seeds.length * 400);
  const fatal = new TextDecoder('utf-8', { fatal: true });
  for (let k = 0; k < 3000; k++) {
    const n = 1 + Math.floor(r() * 6);
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = r() < 0.5 ? 0x80 + Math.floor(r() * 0x80) : Math.floor(r() * 256);
    let ok = true;
    try { fatal.decode(b); } catch { ok = false; }
    assert.equal(firstInvalidUtf8(b) === -1, ok, `bytes ${Array.from(b).map((x) => x.toString(16)).join(' ')}`);
  }
});
