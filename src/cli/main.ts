// `whittle <command>`: the engine headless in Node (Dawn through npm `webgpu`). bin/whittle.mjs
// calls main(argv). Each command is its own module in src/cli/, loaded only when run, exporting
// `command: Command` (see ./command.ts). To add one: write src/cli/<name>.ts and list it below
// with a one-line summary (kept here so `whittle --help` loads no command module).
// It is not: an argument-parsing framework; commands parse their own flags with ./args.ts.
import { type Command, stderrTty } from './command.ts';
import { UsageError } from './args.ts';

/** name → summary and loader; the order is the order of `whittle --help`. */
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ command: Command }> }> = {
  selftest: { summary: 'check every GPU kernel against its CPU twin on this adapter', load: () => import('./selftest.ts') },
  generate: { summary: 'generate text from a model with the KV-cache GPU path (streamed)', load: () => import('./generate.ts') },
  logits: { summary: 'print the logits of every position of a sequence (JSON for comparisons)', load: () => import('./logits.ts') },
  validate: { summary: 'check a JSONL training file: line-precise errors and warnings, token statistics with --model', load: () => import('./validate.ts') },
  train: { summary: 'fine-tune a LoRA adapter on a JSONL dataset (headless, on the GPU), written in the PEFT layout', load: () => import('./train.ts') },
  grads: { summary: 'the loss and every LoRA gradient of an adapter on given tokens (safetensors, for comparisons)', load: () => import('./grads.ts') },
  bench: { summary: 'benchmark training, matmul, memory and inference against a PyTorch CPU peer', load: () => import('./bench.ts') },
  profile: { summary: 'GPU time per kernel of LoRA training steps (timestamp queries)', load: () => import('./profile.ts') },
  export: { summary: 'export a LoRA adapter as PEFT, llama.cpp GGUF, a merged model (HF, GGUF or ONNX), or a cluster training recipe', load: () => import('./export.ts') },
};

const VERSION = '0.1.0';

function help(out: (s: string) => void): void {
  const lines = [
    'whittle: LoRA fine-tuning of small language models on WebGPU, headless in Node',
    '',
    'usage: whittle <command> [options]',
    '',
    'commands:',
  ];
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(width)}  ${c.summary}`);
  lines.push(
    '',
    'Run `whittle <command> --help` for its options.',
    '',
    'environment:',
    '  WHITTLE_ICD=lavapipe|swiftshader   Vulkan driver for Dawn when no GPU driver is set',
    '  VK_ICD_FILENAMES=<icd.json>        an explicit Vulkan driver (overrides WHITTLE_ICD)',
  );
  out(lines.join('\n'));
}

export async function main(argv: string[]): Promise<number> {
  const out = (s: string) => process.stdout.write(s + '\n');
  const err = (s: string) => process.stderr.write(s + '\n');
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    help(out);
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v') {
    out(VERSION);
    return 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    err(`whittle: unknown command "${name}". Commands: ${Object.keys(COMMANDS).join(', ')}. See \`whittle --help\`.`);
    return 2;
  }
  const { command } = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    out(command.usage);
    return 0;
  }
  try {
    return await command.run(rest, { out, err, tty: stderrTty() });
  } catch (e) {
    if (e instanceof UsageError) {
      err(`whittle ${name}: ${e.message}\n\n${command.usage}`);
      return 2;
    }
    err(`whittle ${name}: ${(e as Error)?.message ?? String(e)}`);
    return 1;
  }
}
