// src/export/recipe.ts: the cluster recipe's files and the values in them (axolotl YAML, TRL
// script, README), per data format; data written byte for byte; format detection errors.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { memorySink } from '../../src/export/adapter.ts';
import { axolotlYaml, exportRecipe, hfScheduler, inspectJsonl, type RecipeInput, yamlNum } from '../../src/export/recipe.ts';
import { utf8 } from '../model/fixtures.ts';

const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const chat = utf8([
  JSON.stringify({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }] }),
  JSON.stringify({ messages: [{ role: 'user', content: 'Again' }, { role: 'assistant', content: 'No', weight: 0 }, { role: 'user', content: '?' }, { role: 'assistant', content: 'Yes' }] }),
  '',
].join('\n'));

const input = (over: Partial<RecipeInput> = {}): RecipeInput => ({
  baseModel: 'HuggingFaceTB/SmolLM2-135M-Instruct',
  lora: { rank: 8, alpha: 16, dropout: 0.05, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] },
  hp: {
    epochs: 3, batchSize: 4, gradAccum: 2, seqLen: 256, learningRate: 2e-4, schedule: 'cosine', warmupSteps: 10, weightDecay: 0,
    maxGradNorm: 1, adamBeta1: 0.9, adamBeta2: 0.999, adamEps: 1e-8, seed: 42, validationFraction: 0.1, checkpointing: false,
  },
  data: chat,
  name: 'support-bot',
  ...over,
});

test('recipe: files, data as-is, axolotl.yaml values (chat data)', async () => {
  const { sink, files } = memorySink();
  const written = await exportRecipe(input(), sink);
  assert.deepEqual(written, ['data/train.jsonl', 'axolotl.yaml', 'train_trl.py', 'requirements.txt', 'README.md']);
  assert.equal(files.get('data/train.jsonl'), chat, 'the dataset is written as given');
  const y = dec(files.get('axolotl.yaml')!);
  const lines = y.split('\n');
  for (const l of [
    'base_model: "HuggingFaceTB/SmolLM2-135M-Instruct"', '  - path: "data/train.jsonl"', '    ds_type: json', '    type: chat_template',
    '    field_messages: messages', '    roles_to_train: ["assistant"]', '    train_on_eos: turn', 'val_set_size: 0.1', 'output_dir: "out"',
    'train_on_inputs: false', 'adapter: lora', 'lora_r: 8', 'lora_alpha: 16', 'lora_dropout: 0.05', 'sequence_len: 256', 'micro_batch_size: 4',
    'gradient_accumulation_steps: 2', 'num_epochs: 3', 'optimizer: adamw_torch', 'adam_beta1: 0.9', 'adam_beta2: 0.999', 'adam_epsilon: 1.0e-8',
    'learning_rate: 0.0002', 'lr_scheduler: cosine', 'warmup_steps: 10', 'weight_decay: 0', 'max_grad_norm: 1', 'seed: 42',
    'gradient_checkpointing: false',
  ]) assert.ok(lines.includes(l), `axolotl.yaml lacks '${l}':\n${y}`);
  assert.ok(y.includes('lora_target_modules:\n  - q_proj\n  - k_proj\n  - v_proj\n  - o_proj\n  - gate_proj\n  - up_proj\n  - down_proj\n'));
  assert.ok(lines.some((l) => l.startsWith('    message_field_training: weight')), 'OpenAI weight fields are honoured');
  assert.ok(!y.includes('max_steps'), 'epochs decide unless max steps were asked for');
  assert.ok(!y.includes('peft_use_rslora'));
  assert.match(dec(files.get('requirements.txt')!), /^trl>=0\.20$/m);
  const readme = dec(files.get('README.md')!);
  assert.match(readme, /^# support-bot: cluster recipe/);
  assert.match(readme, /axolotl train axolotl\.yaml/);
  assert.match(readme, /accelerate launch train_trl\.py/);
  assert.match(readme, /whittle export --model PATH\/TO\/BASE --adapter out\/adapter --format gguf/);
  assert.match(readme, /\| LoRA \| r 8, alpha 16, dropout 0\.05, modules q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj \|/);
});

test('recipe: train_trl.py carries the same base model, LoRA config and hyperparameters', async () => {
  const { sink, files } = memorySink();
  await exportRecipe(input({ lora: { rank: 16, alpha: 8, dropout: 0, targets: ['q', 'v'], rslora: true }, hp: { ...input().hp, schedule: 'constant', maxSteps: 500, checkpointing: true } }), sink);
  const py = dec(files.get('train_trl.py')!);
  for (const s of [
    'BASE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"', 'from trl import SFTConfig, SFTTrainer', 'from peft import LoraConfig',
    'train_dataset = load_dataset("json", data_files="data/train.jsonl", split="train")', 'VALIDATION_FRACTION = 0.1', 'SEED = 42',
    '    r=16,', '    lora_alpha=8,', '    lora_dropout=0,', '    target_modules=["q_proj", "v_proj"],', '    bias="none",', '    task_type="CAUSAL_LM",',
    '    use_rslora=True,', '    num_train_epochs=3,', '    max_steps=500,', '    per_device_train_batch_size=4,', '    gradient_accumulation_steps=2,',
    '    learning_rate=0.0002,', '    lr_scheduler_type="constant_with_warmup",', '    warmup_steps=10,', '    weight_decay=0,', '    max_grad_norm=1,',
    '    adam_beta1=0.9,', '    adam_beta2=0.999,', '    adam_epsilon=1e-8,', '    max_length=256,', '    assistant_only_loss=ASSISTANT_ONLY,',
    '    gradient_checkpointing=True,', 'trainer.save_model(OUTPUT_DIR + "/adapter")', 'peft_config=peft_config,',
  ]) assert.ok(py.includes(s), `train_trl.py lacks '${s}'`);
  const y = dec(files.get('axolotl.yaml')!);
  assert.match(y, /^max_steps: 500$/m);
  assert.match(y, /^peft_use_rslora: true$/m);
  assert.match(y, /^lr_scheduler: constant_with_warmup$/m);
  assert.match(y, /^lora_target_modules:\n {2}- q_proj\n {2}- v_proj$/m);
});

test('recipe: prompt/completion and text data, a separate validation file, train-on all', async () => {
  const pc = utf8('{"prompt": "2+2=", "completion": "4"}\n{"prompt": "3+3=", "completion": "6"}\n');
  const m = memorySink();
  await exportRecipe(input({ data: pc, valid: utf8('{"prompt": "1+1=", "completion": "2"}\n') }), m.sink);
  const y = dec(m.files.get('axolotl.yaml')!);
  assert.match(y, / {4}type:\n {6}field_instruction: prompt\n {6}field_output: completion\n/);
  assert.match(y, /^test_datasets:\n {2}- path: "data\/valid\.jsonl"\n {4}split: train\n/m);
  assert.match(y, /^val_set_size: 0$/m);
  const py = dec(m.files.get('train_trl.py')!);
  assert.ok(py.includes('    completion_only_loss=True,'));
  assert.ok(py.includes('eval_dataset = load_dataset("json", data_files="data/valid.jsonl", split="train")'));
  assert.ok(!py.includes('ASSISTANT_ONLY'));
  assert.ok(m.files.has('data/valid.jsonl'));

  const t = memorySink();
  await exportRecipe(input({ data: utf8('{"text": "Once upon a time"}\n'), trainOn: 'all' }), t.sink);
  const ty = dec(t.files.get('axolotl.yaml')!);
  assert.match(ty, / {4}type: completion\n {4}field: text\n/);
  assert.match(ty, /^train_on_inputs: true$/m);
  assert.ok(!dec(t.files.get('train_trl.py')!).includes('_only_loss'));

  const c = memorySink();
  await exportRecipe(input({ trainOn: 'all' }), c.sink);
  assert.match(dec(c.files.get('axolotl.yaml')!), /roles_to_train: \["system", "user", "assistant"\]/);
  assert.ok(dec(c.files.get('train_trl.py')!).includes('    assistant_only_loss=False,'));
});

test('recipe: format detection errors name the lines; YAML numbers; schedulers', async () => {
  assert.deepEqual(inspectJsonl('d', chat), { format: 'chat', examples: 2, weights: true });
  assert.throws(() => inspectJsonl('d.jsonl', utf8('{"text": "a"}\n{"prompt": "p", "completion": "c"}\n{"text": "b"}\n')),
    /d\.jsonl: mixes formats \(prompt_completion: 1 \(line 2\); text: 2 \(lines 1, 3\)\)|d\.jsonl: mixes formats \(text: 2 \(lines 1, 3\); prompt_completion: 1 \(line 2\)\)/);
  assert.throws(() => inspectJsonl('d.jsonl', utf8('{"text": "a"}\n{oops\n')), /d\.jsonl:2: not a JSON line/);
  assert.throws(() => inspectJsonl('d.jsonl', utf8('{"foo": 1}\n')), /d\.jsonl:1: no "messages", "prompt"\/"completion" or "text" field/);
  await assert.rejects(exportRecipe(input({ valid: utf8('{"text": "x"}\n') }), memorySink().sink), /the validation data is text but the training data is chat/);
  assert.equal(yamlNum(1e-8), '1.0e-8');
  assert.equal(yamlNum(2.5e-7), '2.5e-7');
  assert.equal(yamlNum(2.5e-5), '0.000025');
  assert.equal(yamlNum(1e21), '1.0e+21');
  assert.equal(yamlNum(0.0002), '0.0002');
  assert.equal(hfScheduler({ schedule: 'linear', warmupSteps: 3 }), 'linear');
  assert.equal(hfScheduler({ schedule: 'constant', warmupSteps: 0 }), 'constant');
  assert.ok(axolotlYaml(input(), { format: 'chat', examples: 2, weights: false }).includes('roles_to_train'));
});
