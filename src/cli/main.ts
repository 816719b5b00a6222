// `whittle <command>`: the engine headless in Node (Dawn through npm `webgpu`). bin/whittle.mjs
// calls main(argv). Each command is its own module in src/cli/, loaded only when run, exporting
// `command: Command` (see ./command.ts). To add one: write src/cli/<name>.ts and list it below.
// It is not: an argument-parsing framework; commands parse their own flags with ./args.ts.
import type { Command } from './command.ts';
import { UsageError } from './args.ts';

/** name → loader; the order is the order of `whittle --help`. */
const COMMANDS: Record<string, () => Promise<{ command: Command }>> = {
  selftest: () => import('./selftest.ts'),
};

const VERSION = '0.1.0';

async function help(out: (s: string) => void): Promise<void> {
  const lines = [
    'whittle: LoRA fine-tuning of small language models on WebGPU, headless in Node',
    '',
    'usage: whittle <command> [options]',
    '',
    'commands:',
  ];
  const cmds = await Promise.all(Object.values(COMMANDS).map((load) => load().then((m) => m.command)));
  const width = Math.max(...cmds.map((c) => c.name.length));
  for (const c of cmds) lines.push(`  ${c.name.padEnd(width)}  ${c.summary}`);
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
    await help(out);
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v') {
    out(VERSION);
    return 0;
  }
  const load = COMMANDS[name];
  if (!load) {
    err(`whittle: unknown command "${name}". Commands: ${Object.keys(COMMANDS).join(', ')}. See \`whittle --help\`.`);
    return 2;
  }
  const { command } = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    out(command.usage);
    return 0;
  }
  try {
    return await command.run(rest, { out, err });
  } catch (e) {
    if (e instanceof UsageError) {
      err(`whittle ${name}: ${e.message}\n\n${command.usage}`);
      return 2;
    }
    err(`whittle ${name}: ${(e as Error)?.message ?? String(e)}`);
    return 1;
  }
}
