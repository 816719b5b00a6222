// Chat templates (src/tokenizer/chat.ts) rendered with @huggingface/jinja: ChatML, a Llama-2
// style template using bos/eos and raise_exception, generation prompts, and encodeChat with a
// tokenizer that must recognise the template's special tokens.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { applyChatTemplate, encodeChat } from '../../src/tokenizer/chat.ts';
import { tokenizerFromGGUF } from '../../src/tokenizer/gguf.ts';
import { parseGGUF, writeGGUF } from '../../src/model/gguf.ts';
import { readFileSync } from 'node:fs';
import { S260K_GGUF, rejects } from '../model/fixtures.ts';

const CHATML =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const LLAMA2 =
  "{% if messages[0]['role'] == 'system' %}{% set sys = '<<SYS>>\\n' + messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}{% set msgs = messages[1:] %}{% else %}{% set sys = '' %}{% set msgs = messages %}{% endif %}" +
  "{% for m in msgs %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('roles must alternate user/assistant') }}{% endif %}" +
  "{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + (sys if loop.first else '') + m['content'] + ' [/INST]' }}{% else %}{{ ' ' + m['content'] + ' ' + eos_token }}{% endif %}{% endfor %}";

test('chat template: ChatML with and without a generation prompt', () => {
  const msgs = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi!' }];
  assert.equal(applyChatTemplate(CHATML, msgs), '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n');
  assert.equal(applyChatTemplate(CHATML, msgs, { addGenerationPrompt: true }).endsWith('<|im_start|>assistant\n'), true);
});

test('chat template: Llama-2 style with bos/eos tokens, system prompt and raise_exception', async () => {
  const msgs = [
    { role: 'system', content: 'S' },
    { role: 'user', content: 'U1' },
    { role: 'assistant', content: 'A1' },
    { role: 'user', content: 'U2' },
  ];
  const out = applyChatTemplate(LLAMA2, msgs, { bosToken: '<s>', eosToken: '</s>' });
  assert.equal(out, '<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]');
  await rejects(() => applyChatTemplate(LLAMA2, [{ role: 'assistant', content: 'x' }], { bosToken: '<s>', eosToken: '</s>' }), /chat template failed to render: .*roles must alternate/);
  await rejects(() => applyChatTemplate('{% for %}', []), /chat template does not parse/);
});

test('chat template: encodeChat uses the tokenizer’s BOS/EOS strings and adds no second BOS', () => {
  const t = tokenizerFromGGUF(parseGGUF('s.gguf', new Uint8Array(readFileSync(S260K_GGUF))));
  const ids = encodeChat(t, LLAMA2, [{ role: 'user', content: 'Tell a story.' }, { role: 'assistant', content: 'Once upon a time' }]);
  assert.equal(ids[0], 1);
  assert.notEqual(ids[1], 1);
  assert.equal(ids[ids.length - 1], 2);
  assert.equal(ids.filter((i) => i === 1).length, 1);
  assert.equal(t.decode(ids, { skipSpecial: true }), '[INST] Tell a story. [/INST] Once upon a time ');
  // ChatML markers are single special ids for a tokenizer that declares them
  const tokens = ['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>', '▁', 'a', 'b', 'u', 's', 'e', 'r', '\n', '<0x0A>'];
  const g = parseGGUF('c.gguf', writeGGUF([
    { key: 'tokenizer.ggml.model', value: 'llama' },
    { key: 'tokenizer.ggml.tokens', value: tokens },
    { key: 'tokenizer.ggml.scores', value: tokens.map(() => 0), itemType: 6 },
    { key: 'tokenizer.ggml.token_type', value: tokens.map((s, i) => (i === 0 ? 2 : i < 5 ? 3 : s.startsWith('<0x') ? 6 : 1)), itemType: 5 },
    { key: 'tokenizer.ggml.bos_token_id', value: 1 },
    { key: 'tokenizer.ggml.eos_token_id', value: 4 },
  ], []));
  const ct = tokenizerFromGGUF(g);
  const chat = encodeChat(ct, CHATML, [{ role: 'user', content: 'ab' }]);
  assert.deepEqual(chat.filter((i) => i === 3 || i === 4), [3, 4]);
  assert.equal(chat[0], 3);
  assert.deepEqual(ct.eos, [4]);
});
