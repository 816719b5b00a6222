// Cluster recipe: the same fine-tune, ready to run on GPUs elsewhere. Writes
//   data/train.jsonl (and data/valid.jsonl)  the dataset exactly as given (OpenAI-format JSONL)
//   axolotl.yaml        axolotl config: base_model, datasets (chat_template for chat lines, a
//                       custom instruct type for prompt/completion, completion for text), adapter
//                       lora + lora_r/alpha/dropout/target_modules, sequence_len, micro_batch_size,
//                       gradient_accumulation_steps, num_epochs, learning_rate, lr_scheduler,
//                       warmup_steps, weight_decay, optimizer betas/eps, max_grad_norm, seed, output_dir
//   train_trl.py        TRL SFTTrainer + PEFT LoraConfig with the same values (run with accelerate)
//   requirements.txt    the Python packages of train_trl.py
//   README.md           how to run either, and how to bring the adapter back into whittle
// Both write a PEFT adapter (adapter_config.json + adapter_model.safetensors) that importPeft
// (./peft.ts) reads back. The dataset must be one format (chat, prompt/completion or text); a
// file that mixes them, or a line that is not a JSON object, is an error naming the lines.
// No DOM, no node:*.
import { LORA_TARGETS, type LoraConfig } from '../model/config.ts';
import type { Hyperparameters } from '../train/hyperparams.ts';
import { type FileSink, HF_MODULE, utf8 } from './adapter.ts';

/** The training settings a recipe carries over (src/train Hyperparameters fields). */
export type RecipeHyperparameters = Pick<Hyperparameters,
  'epochs' | 'batchSize' | 'gradAccum' | 'seqLen' | 'learningRate' | 'schedule' | 'warmupSteps' | 'weightDecay' |
  'maxGradNorm' | 'adamBeta1' | 'adamBeta2' | 'adamEps' | 'seed' | 'validationFraction' | 'checkpointing'> & {
  /** stop after this many optimizer steps (only when the user asked for it; otherwise epochs decide) */
  maxSteps?: number | null;
};

export interface RecipeInput {
  /** Hugging Face model id (or a path the cluster can read) */
  baseModel: string;
  lora: LoraConfig;
  hp: RecipeHyperparameters;
  /** the training JSONL, written as-is */
  data: Uint8Array;
  /** a separate validation JSONL, written as-is */
  valid?: Uint8Array | null;
  /** which tokens carry the loss, as in whittle (default 'assistant') */
  trainOn?: 'assistant' | 'all';
  /** run name (README title) */
  name?: string;
  /** where the cluster run writes (default 'out') */
  outputDir?: string;
}

export type RecipeFormat = 'chat' | 'prompt_completion' | 'text';

export interface DataShape {
  format: RecipeFormat;
  examples: number;
  /** a chat message carries the OpenAI `weight` field */
  weights: boolean;
}

/** Detect the (single) format of a JSONL training file; errors name the offending lines. */
export function inspectJsonl(where: string, bytes: Uint8Array): DataShape {
  let text = new TextDecoder('utf-8').decode(bytes);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split(/\r?\n/);
  const by: Record<RecipeFormat, number[]> = { chat: [], prompt_completion: [], text: [] };
  let weights = false;
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where}:${i + 1}: not a JSON line (${(e as Error).message}); the recipe needs JSON Lines, one example per line`);
    }
    if (!o || typeof o !== 'object' || Array.isArray(o)) throw new Error(`${where}:${i + 1}: not a JSON object`);
    const r = o as Record<string, unknown>;
    if (Array.isArray(r.messages)) {
      by.chat.push(i + 1);
      if ((r.messages as unknown[]).some((m) => m && typeof m === 'object' && 'weight' in (m as object))) weights = true;
    } else if ('prompt' in r && 'completion' in r) by.prompt_completion.push(i + 1);
    else if (typeof r.text === 'string') by.text.push(i + 1);
    else throw new Error(`${where}:${i + 1}: no "messages", "prompt"/"completion" or "text" field`);
  });
  const present = (Object.keys(by) as RecipeFormat[]).filter((f) => by[f].length);
  if (present.length === 0) throw new Error(`${where}: no examples`);
  if (present.length > 1) {
    const lineList = (ls: number[]) => `line${ls.length > 1 ? 's' : ''} ${ls.slice(0, 5).join(', ')}${ls.length > 5 ? ', …' : ''}`;
    throw new Error(`${where}: mixes formats (${present.map((f) => `${f}: ${by[f].length} (${lineList(by[f])})`).join('; ')}); ` +
      'axolotl and TRL need one format per file — split it, or convert the minority lines');
  }
  return { format: present[0], examples: by[present[0]].length, weights };
}

const q = (s: string) => JSON.stringify(s); // a JSON string is a valid YAML / Python string literal
/** A number as Python reads it (JS shortest round-trip form: 0.001, 1e-8). */
const num = (x: number) => String(x);
/** A number as YAML 1.1 (PyYAML) reads it: exponent forms need a dot and a signed exponent (1.0e-8). */
export function yamlNum(x: number): string {
  const s = String(x);
  const m = /^(-?\d+)(?:\.(\d+))?e([+-]?)(\d+)$/.exec(s);
  if (!m) return s;
  return `${m[1]}.${m[2] ?? '0'}e${m[3] || '+'}${m[4]}`;
}
const pyBool = (b: boolean) => (b ? 'True' : 'False');

/** HF scheduler name (transformers SchedulerType) of a whittle schedule. */
export function hfScheduler(hp: Pick<RecipeHyperparameters, 'schedule' | 'warmupSteps'>): string {
  if (hp.schedule === 'constant') return hp.warmupSteps > 0 ? 'constant_with_warmup' : 'constant';
  return hp.schedule;
}

function targetModules(lora: LoraConfig): string[] {
  return LORA_TARGETS.filter((t) => lora.targets.includes(t)).map((t) => HF_MODULE[t]);
}

/** The axolotl config (YAML text). */
export function axolotlYaml(r: RecipeInput, shape: DataShape): string {
  const hp = r.hp, lora = r.lora, out = r.outputDir ?? 'out';
  const trainAll = r.trainOn === 'all';
  const L: string[] = [
    '# axolotl config generated by whittle: the same LoRA fine-tune as the whittle run.',
    '# Run: axolotl train axolotl.yaml   (see README.md)',
    `base_model: ${q(r.baseModel)}`,
    '',
    'datasets:',
  ];
  const ds = (path: string) => {
    L.push(`  - path: ${q(path)}`, '    ds_type: json');
    if (shape.format === 'chat') {
      L.push('    type: chat_template', '    field_messages: messages', '    message_property_mappings:', '      role: role', '      content: content',
        `    roles_to_train: ${trainAll ? '["system", "user", "assistant"]' : '["assistant"]'}`, '    train_on_eos: turn');
      if (shape.weights) L.push('    message_field_training: weight   # OpenAI "weight": 0 turns are not trained');
    } else if (shape.format === 'prompt_completion') {
      L.push('    type:', '      field_instruction: prompt', '      field_output: completion', '      format: "{instruction}"', '      no_input_format: "{instruction}"');
    } else {
      L.push('    type: completion', '    field: text');
    }
  };
  ds('data/train.jsonl');
  if (r.valid) {
    L.push('test_datasets:');
    const before = L.length;
    ds('data/valid.jsonl');
    L.splice(before + 1, 0, '    split: train');
    L.push('val_set_size: 0');
  } else {
    L.push(`val_set_size: ${yamlNum(hp.validationFraction)}`);
  }
  L.push(
    'dataset_prepared_path: last_run_prepared',
    `output_dir: ${q(out)}`,
    `train_on_inputs: ${trainAll}`,
    '',
    'adapter: lora',
    `lora_r: ${lora.rank}`,
    `lora_alpha: ${yamlNum(lora.alpha)}`,
    `lora_dropout: ${yamlNum(lora.dropout)}`,
    'lora_target_modules:',
    ...targetModules(lora).map((m) => `  - ${m}`),
  );
  if (lora.rslora) L.push('peft_use_rslora: true');
  L.push(
    '',
    `sequence_len: ${hp.seqLen}`,
    'sample_packing: false',
    'pad_to_sequence_len: false',
    '',
    `micro_batch_size: ${hp.batchSize}`,
    `gradient_accumulation_steps: ${hp.gradAccum}`,
    `num_epochs: ${hp.epochs}`,
  );
  if (hp.maxSteps) L.push(`max_steps: ${hp.maxSteps}`);
  L.push(
    'optimizer: adamw_torch',
    `adam_beta1: ${yamlNum(hp.adamBeta1)}`,
    `adam_beta2: ${yamlNum(hp.adamBeta2)}`,
    `adam_epsilon: ${yamlNum(hp.adamEps)}`,
    `learning_rate: ${yamlNum(hp.learningRate)}`,
    `lr_scheduler: ${hfScheduler(hp)}`,
    `warmup_steps: ${hp.warmupSteps}`,
    `weight_decay: ${yamlNum(hp.weightDecay)}`,
    `max_grad_norm: ${yamlNum(hp.maxGradNorm)}`,
    `seed: ${hp.seed}`,
    '',
    'bf16: auto',
    `gradient_checkpointing: ${hp.checkpointing}`,
    'logging_steps: 1',
    'saves_per_epoch: 1',
    'save_safetensors: true',
    '',
  );
  return L.join('\n');
}

/** The TRL + PEFT training script (Python text). */
export function trlScript(r: RecipeInput, shape: DataShape): string {
  const hp = r.hp, lora = r.lora, out = r.outputDir ?? 'out';
  const trainAll = r.trainOn === 'all';
  const modules = `[${targetModules(lora).map(q).join(', ')}]`;
  const lossArgs = shape.format === 'chat'
    ? `    assistant_only_loss=${trainAll ? 'False' : 'ASSISTANT_ONLY'},`
    : shape.format === 'prompt_completion' ? `    completion_only_loss=${pyBool(!trainAll)},` : '';
  return `#!/usr/bin/env python3
"""LoRA fine-tuning of ${r.baseModel} with TRL's SFTTrainer and PEFT, generated by whittle.

The same data, LoRA settings and hyperparameters as the whittle run${r.name ? ` "${r.name}"` : ''}.
    pip install -r requirements.txt
    accelerate launch train_trl.py        # all GPUs of this machine (or: python train_trl.py)
The PEFT adapter lands in ${out}/adapter; bring it back with
    whittle export --model BASE --adapter ${out}/adapter --format peft|gguf|merged --out DIR
"""
import re

import torch
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

BASE_MODEL = ${q(r.baseModel)}
OUTPUT_DIR = ${q(out)}
SEED = ${hp.seed}
VALIDATION_FRACTION = ${r.valid ? 0 : num(hp.validationFraction)}

train_dataset = load_dataset("json", data_files="data/train.jsonl", split="train")
eval_dataset = ${r.valid ? 'load_dataset("json", data_files="data/valid.jsonl", split="train")' : 'None'}
if eval_dataset is None and VALIDATION_FRACTION > 0:
    split = train_dataset.train_test_split(test_size=VALIDATION_FRACTION, seed=SEED)
    train_dataset, eval_dataset = split["train"], split["test"]

peft_config = LoraConfig(
    r=${lora.rank},
    lora_alpha=${num(lora.alpha)},
    lora_dropout=${num(lora.dropout)},
    target_modules=${modules},
    bias="none",
    task_type="CAUSAL_LM",
    use_rslora=${pyBool(lora.rslora === true)},
)

tokenizer = AutoTokenizer.from_pretrained(BASE_MODEL)
if tokenizer.pad_token is None:
    tokenizer.pad_token = tokenizer.eos_token
bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
model = AutoModelForCausalLM.from_pretrained(BASE_MODEL, torch_dtype=torch.bfloat16 if bf16 else torch.float32)
${shape.format === 'chat' && !trainAll ? `
# whittle trains on assistant turns only. TRL can do that only when the chat template marks them
# with {% generation %}; otherwise every token of the conversation carries the loss.
ASSISTANT_ONLY = re.search(r"\\{%-?\\s*generation\\s*-?%\\}", tokenizer.chat_template or "") is not None
if not ASSISTANT_ONLY:
    print("note: the chat template has no {% generation %} markers: training on all tokens, not only assistant turns")
` : ''}
args = SFTConfig(
    output_dir=OUTPUT_DIR,
    num_train_epochs=${hp.epochs},
    max_steps=${hp.maxSteps ? hp.maxSteps : -1},
    per_device_train_batch_size=${hp.batchSize},
    gradient_accumulation_steps=${hp.gradAccum},
    learning_rate=${num(hp.learningRate)},
    lr_scheduler_type=${q(hfScheduler(hp))},
    warmup_steps=${hp.warmupSteps},
    weight_decay=${num(hp.weightDecay)},
    max_grad_norm=${num(hp.maxGradNorm)},
    adam_beta1=${num(hp.adamBeta1)},
    adam_beta2=${num(hp.adamBeta2)},
    adam_epsilon=${num(hp.adamEps)},
    optim="adamw_torch",
    seed=SEED,
    data_seed=SEED,
    max_length=${hp.seqLen},
    packing=False,
${lossArgs ? lossArgs + '\n' : ''}    gradient_checkpointing=${pyBool(hp.checkpointing)},
    bf16=bf16,
    logging_steps=1,
    save_strategy="epoch",
    eval_strategy="epoch" if eval_dataset is not None else "no",
    report_to="none",
)

trainer = SFTTrainer(
    model=model,
    args=args,
    train_dataset=train_dataset,
    eval_dataset=eval_dataset,
    processing_class=tokenizer,
    peft_config=peft_config,
)
trainer.train()
trainer.save_model(OUTPUT_DIR + "/adapter")  # adapter_config.json + adapter_model.safetensors
print("PEFT adapter written to", OUTPUT_DIR + "/adapter")
`;
}

export const RECIPE_REQUIREMENTS = `# train_trl.py (TRL's SFTTrainer with max_length / assistant_only_loss needs trl >= 0.20)
torch>=2.3
transformers>=4.51
peft>=0.13
trl>=0.20
accelerate>=1.0
datasets>=3.0
# axolotl.yaml instead: pip install axolotl (see https://docs.axolotl.ai)
`;

function readme(r: RecipeInput, shape: DataShape): string {
  const hp = r.hp, lora = r.lora, out = r.outputDir ?? 'out';
  const fmt = shape.format === 'chat' ? 'chat (`messages`)' : shape.format === 'prompt_completion' ? 'prompt/completion' : 'text';
  return `# ${r.name ?? 'LoRA fine-tune'}: cluster recipe

Generated by whittle: the same LoRA fine-tune of \`${r.baseModel}\` as the whittle run, for a
machine with NVIDIA GPUs. Pick one of the two ways below; both write a PEFT adapter.

| file | what |
| --- | --- |
| \`data/train.jsonl\`${r.valid ? ' / `data/valid.jsonl`' : ''} | the dataset, exactly as given to whittle (${shape.examples} ${fmt} examples) |
| \`axolotl.yaml\` | [axolotl](https://docs.axolotl.ai) config |
| \`train_trl.py\` | [TRL](https://huggingface.co/docs/trl) \`SFTTrainer\` + [PEFT](https://huggingface.co/docs/peft) script, run with \`accelerate\` |
| \`requirements.txt\` | Python packages of \`train_trl.py\` |

## Settings

| | value |
| --- | --- |
| base model | \`${r.baseModel}\` |
| LoRA | r ${lora.rank}, alpha ${lora.alpha}${lora.rslora ? ' (rsLoRA)' : ''}, dropout ${lora.dropout}, modules ${targetModules(lora).join(', ')} |
| sequence length | ${hp.seqLen} tokens (longer examples are cut) |
| batch | ${hp.batchSize} per device × ${hp.gradAccum} accumulation steps |
| epochs | ${hp.epochs}${hp.maxSteps ? ` (at most ${hp.maxSteps} steps)` : ''} |
| optimizer | AdamW, lr ${hp.learningRate}, ${hfScheduler(hp)} schedule, ${hp.warmupSteps} warmup steps, weight decay ${hp.weightDecay}, betas (${hp.adamBeta1}, ${hp.adamBeta2}), eps ${hp.adamEps}, gradient clipping ${hp.maxGradNorm} |
| validation | ${r.valid ? 'data/valid.jsonl' : hp.validationFraction > 0 ? `${hp.validationFraction * 100}% held out` : 'none'} |
| loss on | ${r.trainOn === 'all' ? 'every token' : shape.format === 'chat' ? 'assistant turns' : shape.format === 'prompt_completion' ? 'the completion' : 'every token'} |
| seed | ${hp.seed} |

With several GPUs the effective batch grows with their number (batch × accumulation × GPUs);
divide \`gradient_accumulation_steps\` by the GPU count to keep whittle's.

## Run with axolotl

\`\`\`sh
pip install axolotl
axolotl train axolotl.yaml          # multi-GPU: accelerate launch -m axolotl.cli.train axolotl.yaml
\`\`\`

The adapter is written to \`${out}/\` (adapter_config.json + adapter_model.safetensors).

## Run with TRL

\`\`\`sh
pip install -r requirements.txt
accelerate config                    # once per machine (GPUs, mixed precision)
accelerate launch train_trl.py
\`\`\`

The adapter is written to \`${out}/adapter/\`.
${shape.format === 'chat' && r.trainOn !== 'all' ? `
TRL restricts the loss to assistant turns only when the model's chat template marks them with
\`{% generation %}\`; the script checks and says when it trains on every token instead. axolotl
masks by turn (\`roles_to_train: ["assistant"]\`)${shape.weights ? ' and honours the per-message `weight` field' : ''}.
` : ''}
## Back into whittle

Both produce a standard PEFT adapter directory. Load it in the whittle app (Adapters → Import),
or convert it on the command line:

\`\`\`sh
whittle export --model PATH/TO/BASE --adapter ${out}/adapter --format gguf   --out adapter.gguf
whittle export --model PATH/TO/BASE --adapter ${out}/adapter --format merged --out merged/
\`\`\`

Small differences from a whittle run are expected: the learning-rate schedules differ by one step,
mixed precision (bf16) replaces f32, and data order and dropout masks use other random streams.
`;
}

/** Write the recipe into `sink`; returns the file names. */
export async function exportRecipe(r: RecipeInput, sink: FileSink): Promise<string[]> {
  const shape = inspectJsonl('training data', r.data);
  if (r.valid) {
    const v = inspectJsonl('validation data', r.valid);
    if (v.format !== shape.format) throw new Error(`the validation data is ${v.format} but the training data is ${shape.format}; they must be the same format`);
  }
  if (!r.baseModel) throw new Error('recipe: the base model id is empty');
  const files: string[] = [];
  const put = async (name: string, bytes: Uint8Array) => {
    await sink(name, bytes);
    files.push(name);
  };
  await put('data/train.jsonl', r.data);
  if (r.valid) await put('data/valid.jsonl', r.valid);
  await put('axolotl.yaml', utf8(axolotlYaml(r, shape)));
  await put('train_trl.py', utf8(trlScript(r, shape)));
  await put('requirements.txt', utf8(RECIPE_REQUIREMENTS));
  await put('README.md', utf8(readme(r, shape)));
  return files;
}
