// Formatting, tokenization and loss masks (src/data/tokenize.ts) with toy tokenizers written
// here: the plain fallback for chat / prompt-completion / text, per-message weight 0, trainOn
// 'all', ChatML and Llama-3-style chat templates rendered through @huggingface/jinja (exactly the
// assistant content + end-of-turn token is trained), templates that ignore the generation prompt,
// are not incremental, rewrite content or raise; token merges across the mask boundary; previews;
// and the inference prompt helpers lining up with training.
import assert from 'node:assert/strict';
import { Template } from '@huggingface/jinja';
import { test } from '../harness.ts';
import {
  encodeChatPrompt, encodeCompletionPrompt, formatExample, FormatError, loadDataset, previewExample, previewTokens,
  type ChatMessage, type ChatRenderer, type Example,
} from '../../src/data/index.ts';
import { charTokenizer, greedyTokenizer, jsonl, trainedRuns } from './toy.ts';

// SmolLM2-Instruct's ChatML template (default system prompt when none is given).
const CHATML = `{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system
You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
' }}{% endif %}{{'<|im_start|>' + message['role'] + '
' + message['content'] + '<|im_end|>' + '
'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
' }}{% endif %}`;

// Llama-3-Instruct style: BOS from the template, trimmed content, <|eot_id|> ends a turn.
const LLAMA3 = `{{- bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}`;

function jinja(template: string, vars: Record<string, unknown> = {}): ChatRenderer {
  const t = new Template(template);
  return (messages, { addGenerationPrompt }) => t.render({ messages, add_generation_prompt: addGenerationPrompt, ...vars });
}

const msg = (role: ChatMessage['role'], content: string, weight: 0 | 1 = 1): ChatMessage => ({ role, content, weight });
const chat = (...messages: ChatMessage[]): Example => ({ format: 'chat', line: 1, messages });
const CONVO = chat(msg('system', 'Be brief.'), msg('user', 'Hi'), msg('assistant', 'Hello!'), msg('user', 'Bye'), msg('assistant', 'See you.'));

test('fallback chat: exact layout, trained = " answer" + EOS per assistant turn', () => {
  const tok = charTokenizer();
  const f = formatExample(CONVO, tok);
  assert.equal(tok.decode(f.ids), '<s>System: Be brief.\nUser: Hi\nAssistant: Hello!</s>User: Bye\nAssistant: See you.</s>');
  assert.deepEqual(trainedRuns(tok, f.ids, f.trained), [' Hello!</s>', ' See you.</s>']);
  assert.equal(f.trained[0], 0);
  assert.equal(f.trained.length, f.ids.length);
});

test('weight 0 and trainOn "all"', () => {
  const tok = charTokenizer();
  const w0 = chat(msg('user', 'Hi'), msg('assistant', 'Hello!', 0), msg('user', 'Bye'), msg('assistant', 'See you.'));
  let f = formatExample(w0, tok);
  assert.deepEqual(trainedRuns(tok, f.ids, f.trained), [' See you.</s>']);
  f = formatExample(CONVO, tok, { trainOn: 'all' });
  assert.deepEqual(trainedRuns(tok, f.ids, f.trained), [tok.decode(f.ids.slice(1))], 'everything but the first token');
  f = formatExample(w0, tok, { trainOn: 'all' });
  assert.deepEqual(trainedRuns(tok, f.ids, f.trained), ['User: Hi\nAssistant:', 'User: Bye\nAssistant: See you.</s>'], 'weight 0 is honored in "all" too');
});

test('prompt/completion and text formats', () => {
  const tok = charTokenizer();
  const pc: Example = { format: 'prompt_completion', line: 1, prompt: 'Q: 2+2?\nA:', completion: ' 4' };
  let f = formatExample(pc, tok);
  assert.equal(tok.decode(f.ids), '<s>Q: 2+2?\nA: 4</s>');
  assert.deepEqual(trainedRuns(tok, f.ids, f.trained), [' 4</s>']);
  f = formatExample(pc, tok, { trainOn: 'all' });
  assert.deepEqual(trainedRuns(tok, f.ids, f.trained), ['Q: 2+2?\nA: 4</s>']);
  f = formatExample(pc, tok, { chatTemplate: jinja(CHATML) });
  assert.equal(tok.decode(f.ids), '<s>Q: 2+2?\nA: 4</s>', 'prompt/completion is plain concatenation even with a template');

  const tx: Example = { format: 'text', line: 1, text: 'Once upon a time.' };
  f = formatExample(tx, tok);
  assert.equal(tok.decode(f.ids), '<s>Once upon a time.</s>');
  assert.deepEqual(trainedRuns(tok, f.ids, f.trained), ['Once upon a time.</s>']);

  const noBos = charTokenizer({ bos: null, eos: [] });
  f = formatExample(tx, noBos);
  assert.equal(noBos.decode(f.ids), 'Once upon a time.', 'no BOS and no EOS when the tokenizer has none');
  assert.deepEqual(trainedRuns(noBos, f.ids, f.trained), ['nce upon a time.'], 'the first token is never a target');
});

test('ChatML template (jinja): exactly assistant content + <|im_end|> is trained', () => {
  const tok = charTokenizer({ bos: null, eos: ['<|im_end|>'] });
  const render = jinja(CHATML);
  const f = formatExample(CONVO, tok, { chatTemplate: render });
  assert.equal(tok.decode(f.ids), render([...CONVO.format === 'chat' ? CONVO.messages : []].map(({ role, content }) => ({ role, content })), { addGenerationPrompt: false }));
  assert.deepEqual(trainedRuns(tok, f.ids, f.trained), ['Hello!<|im_end|>', 'See you.<|im_end|>']);
  // the newline after <|im_end|> and the headers are not trained
  const end = tok.id('<|im_end|>');
  for (let t = 1; t < f.ids.length; t++) if (f.ids[t - 1] === end) assert.equal(f.trained[t], 0, `token after <|im_end|> at ${t}`);

  // default system prompt inserted by the template (no system message) and weight 0
  const ex = chat(msg('user', 'Hi'), msg('assistant', 'Hello!', 0), msg('user', 'Bye'), msg('assistant', 'See you.'));
  const g = formatExample(ex, tok, { chatTemplate: render });
  assert.match(tok.decode(g.ids), /^<\|im_start\|>system\nYou are a helpful AI assistant named SmolLM/);
  assert.deepEqual(trainedRuns(tok, g.ids, g.trained), ['See you.<|im_end|>']);
  const all = formatExample(ex, tok, { chatTemplate: render, trainOn: 'all' });
  assert.ok(!trainedRuns(tok, all.ids, all.trained).some((r) => r.includes('Hello!')));
  assert.ok(trainedRuns(tok, all.ids, all.trained).join('').includes('You are a helpful AI'));
});

test('the inference prompt is the training prefix, and its next token is the first trained one', () => {
  const cases: [string, ReturnType<typeof charTokenizer>, ChatRenderer | null][] = [
    ['fallback', charTokenizer(), null],
    ['chatml', charTokenizer({ bos: null, eos: ['<|im_end|>'] }), jinja(CHATML)],
    ['llama3', charTokenizer({ specials: ['<|begin_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'], bos: '<|begin_of_text|>', eos: ['<|eot_id|>'] }), jinja(LLAMA3, { bos_token: '<|begin_of_text|>' })],
  ];
  assert.ok(CONVO.format === 'chat');
  for (const [name, tok, tpl] of cases) {
    const f = formatExample(CONVO, tok, { chatTemplate: tpl });
    for (const i of [2, 4]) {
      const prompt = encodeChatPrompt(CONVO.messages.slice(0, i).map(({ role, content }) => ({ role, content })), tok, { chatTemplate: tpl });
      assert.deepEqual(Array.from(f.ids.slice(0, prompt.length)), prompt, `${name}: prompt before messages[${i}] is a prefix`);
      assert.equal(f.trained[prompt.length], 1, `${name}: first generated token is trained`);
      assert.equal(f.trained[prompt.length - 1], 0, `${name}: last prompt token is not trained`);
    }
  }
  const pc = encodeCompletionPrompt('Q:', charTokenizer());
  assert.equal(charTokenizer().decode(pc), '<s>Q:');
});

test('Llama-3-style template: trimmed content, BOS from the template, <|eot_id|> trained', () => {
  const tok = charTokenizer({ specials: ['<|begin_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'], bos: '<|begin_of_text|>', eos: ['<|eot_id|>'] });
  const ex = chat(msg('user', '  Hi  '), msg('assistant', '  Hello there!\n'));
  const f = formatExample(ex, tok, { chatTemplate: jinja(LLAMA3, { bos_token: '<|begin_of_text|>' }) });
  assert.equal(tok.decode(f.ids), '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello there!<|eot_id|>');
  assert.equal(f.ids.filter((x) => x === tok.bos).length, 1, 'no double BOS');
  assert.deepEqual(trainedRuns(tok, f.ids, f.trained), ['Hello there!<|eot_id|>']);
});

test('templates that ignore the generation prompt, are not incremental, rewrite content, or raise', () => {
  const tok = charTokenizer({ bos: null, eos: ['<|im_end|>'] });
  // no add_generation_prompt support: the mask starts at the content (found verbatim)
  const noGen = jinja(`{% for m in messages %}{{ '<|im_start|>' + m.role + '\n' + m.content + '<|im_end|>\n' }}{% endfor %}`);
  let f = formatExample(CONVO, tok, { chatTemplate: noGen });
  assert.deepEqual(trainedRuns(tok, f.ids, f.trained), ['Hello!<|im_end|>', 'See you.<|im_end|>']);
  f = formatExample(chat(msg('user', 'a'), msg('assistant', 'a'), msg('user', 't'), msg('assistant', 't')), tok, { chatTemplate: noGen });
  assert.deepEqual(trainedRuns(tok, f.ids, f.trained), ['a<|im_end|>', 't<|im_end|>'], 'content that also occurs in the header');
  // not incremental: a header that depends on the whole conversation
  const counted = jinja(`{{ messages | length }} turns\n{% for m in messages %}{{ '<|im_start|>' + m.role + '\n' + m.content + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`);
  f = formatExample(CONVO, tok, { chatTemplate: counted });
  assert.deepEqual(trainedRuns(tok, f.ids, f.trained), ['Hello!<|im_end|>', 'See you.<|im_end|>']);
  // incremental but rewrites the content: the whole turn through the end-of-turn token
  const upper = jinja(`{% for m in messages %}{{ '<|im_start|>' + m.role + '\n' + (m.content | upper) + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`);
  f = formatExample(CONVO, tok, { chatTemplate: upper });
  assert.deepEqual(trainedRuns(tok, f.ids, f.trained), ['HELLO!<|im_end|>', 'SEE YOU.<|im_end|>']);
  // neither: the assistant turn cannot be located
  const both = jinja(`{{ messages | length }}{% for m in messages %}{{ '<|im_start|>' + m.role + '\n' + (m.content | upper) + '<|im_end|>\n' }}{% endfor %}`);
  assert.throws(() => formatExample(CONVO, tok, { chatTemplate: both }), (e: unknown) => e instanceof FormatError && e.code === 'mask_not_found' && e.path === 'messages[2]');
  // a template that raises (Gemma-like: no system role) → line-precise template_error
  const noSystem = jinja(`{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ m.content }}{% endfor %}`);
  const { report } = loadDataset(jsonl(
    { messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] },
    { messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'a' }, { role: 'assistant', content: 'c' }] },
  ), { tokenizer: tok, maxSeqLen: 64, chatTemplate: noSystem });
  const err = report.issues.find((i) => i.code === 'template_error');
  assert.ok(err, JSON.stringify(report.issues));
  assert.equal(err.line, 2);
  assert.match(err.message, /System role not supported/);
});

test('token merges across the prompt/answer boundary: plain formats split there, templates train the merged token', () => {
  const tok = greedyTokenizer([': H', 'Assistant', 'User', 'ello', 't\nH'], { specials: ['<s>', '</s>', '<|im_start|>', '<|im_end|>'], eos: ['<|im_end|>', '</s>'] });
  const ex = chat(msg('user', 'hi'), msg('assistant', 'Hello'));
  // fallback: the prompt is encoded alone, so ":" stays ":" as generation will see it
  const f = formatExample(ex, tok);
  assert.deepEqual(f.ids.map((i) => tok.decode([i])), ['<s>', 'User', ':', ' ', 'h', 'i', '\n', 'Assistant', ':', ' ', 'H', 'ello', '<|im_end|>']);
  assert.deepEqual(trainedRuns(tok, f.ids, f.trained), [' Hello<|im_end|>']);
  assert.ok(ex.format === 'chat');
  const prompt = encodeChatPrompt(ex.messages.slice(0, 1), tok);
  assert.deepEqual(f.ids.slice(0, prompt.length), prompt);
  // template: one string; "assistant\n" + "Hello" merges into "t\nH", which is trained
  const g = formatExample(ex, tok, { chatTemplate: jinja(CHATML) });
  assert.deepEqual(trainedRuns(tok, g.ids, g.trained), ['t\nHello<|im_end|>']);
});

test('preview: text pieces, trained flags and truncation marks', () => {
  const tok = charTokenizer();
  const ex = chat(msg('user', 'Hi'), msg('assistant', 'Yo'));
  const p = previewExample(ex, tok, { maxSeqLen: 20 });
  const f = formatExample(ex, tok);
  assert.equal(p.map((x) => x.text).join(''), tok.decode(f.ids));
  assert.deepEqual(p.map((x) => x.id), f.ids);
  assert.deepEqual(p.filter((x) => x.trained).map((x) => x.text), [' ', 'Y', 'o', '</s>']);
  assert.deepEqual(p.map((x) => x.cut), f.ids.map((_, t) => t >= 20));
  assert.equal(p[0].text, '<s>');
  // specials that decode to '' are labeled
  const silent = { ...tok, decode: (ids: number[]) => ids.filter((i) => i !== tok.bos && !tok.eos.includes(i)).map((i) => tok.decode([i])).join('') };
  const q = previewTokens(f.ids, f.trained, silent);
  assert.equal(q[0].text, '<bos>');
  assert.equal(q[q.length - 1].text, '<eos>');
});
