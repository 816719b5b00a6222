// `whittle bench`: training / matmul / memory / inference throughput on this machine's WebGPU
// adapter, next to a plain-PyTorch CPU peer (src/bench). Writes the JSON document to --out
// (default .cache/bench-results.json) and prints a markdown table (or the JSON with --json).
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { acquireGpu, isSoftwareAdapter } from '../gpu/device.ts';
import { renderMarkdown } from '../bench/report.ts';
import { DEFAULT_MODEL, runBench } from '../bench/run.ts';
import { parseArgs, UsageError } from './args.ts';
import type { Command } from './command.ts';

const USAGE = [
  'usage: whittle bench [--json] [--quick] [--out FILE] [options]',
  '',
  'Measures LoRA training (r=16 on q,k,v,o,gate,up,down; f32, q8 and q4 bases) on tinystories-656k and',
  'on a randomly initialised SmolLM2-135M-shaped model, the matmul kernels\' GFLOP/s, GPU memory',
  '(allocated vs planned) and inference prefill / decode, with the same LoRA step in plain PyTorch on',
  'the CPU as the peer (installed with apt-get when missing and running as root). Every figure is the',
  'median (min–max) of several runs.',
  '',
  '  --quick          fewer cases: the small setting only (seq 64, batch 2), SmolLM2-135M in f32 and q4',
  '  --out FILE       where the JSON goes (default .cache/bench-results.json)',
  '  --json           print the JSON document instead of the markdown tables',
  '  --no-torch       skip the PyTorch peer',
  '  --no-onnx        skip the onnxruntime-web inference peer (the same model exported to ONNX, wasm, 1 thread)',
  '  --no-browser     skip the browser peer (our decode and onnxruntime-web\'s in one Chromium page)',
  '  --no-install     do not apt-get install torch when it is missing',
  '  --tiny           a tiny random model only (seconds; for tests)',
  '  --model PATH     the real small model (default ../shared/models/tinystories-656k)',
  '  --full-135m      also time SmolLM2-135M at seq 256, batch 4 (minutes per step on CPU drivers)',
  '  --torch-device D the torch peer\'s device: cpu (default) or cuda (on a machine with a real GPU)',
  '  --torch-peft     the torch peer as Hugging Face transformers + PEFT (needs both installed) instead of the plain LoRA',
  '  --tune / --no-tune  run the per-adapter kernel trials before each case, as the app does (default: on a real GPU only)',
  '  --quiet          no progress lines on stderr',
].join('\n');

export const command: Command = {
  name: 'bench',
  usage: USAGE,
  async run(args, io) {
    const { flags, positional } = parseArgs(args, {
      json: 'bool', quick: 'bool', out: 'string', 'no-torch': 'bool', 'no-onnx': 'bool', 'no-browser': 'bool', 'no-install': 'bool', tiny: 'bool', model: 'string', 'full-135m': 'bool', quiet: 'bool', 'torch-device': 'string', 'torch-peft': 'bool', tune: 'bool', 'no-tune': 'bool',
    });
    if (positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`);
    const out = resolve(typeof flags.out === 'string' ? flags.out : '.cache/bench-results.json');
    const gpu = await acquireGpu();
    const log = flags.quiet === true ? () => {} : (s: string) => io.err(s);
    const report = await runBench(gpu, {
      quick: flags.quick === true,
      tiny: flags.tiny === true,
      torch: flags['no-torch'] !== true,
      install: flags['no-install'] !== true,
      onnx: flags['no-onnx'] !== true,
      browser: flags['no-browser'] === true ? false : undefined,
      full135m: flags['full-135m'] === true,
      torchDevice: typeof flags['torch-device'] === 'string' ? flags['torch-device'] : undefined,
      torchPeft: flags['torch-peft'] === true,
      hardware: !isSoftwareAdapter(gpu),
      tune: flags.tune === true || (flags['no-tune'] !== true && !isSoftwareAdapter(gpu)),
      modelPath: resolve(typeof flags.model === 'string' ? flags.model : DEFAULT_MODEL),
      log,
    }, ['whittle bench', ...args].join(' '));
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, JSON.stringify(report, null, 2) + '\n');
    if (flags.json === true) io.out(JSON.stringify(report));
    else {
      io.out(renderMarkdown(report));
      io.out(`(JSON: ${out})`);
    }
    gpu.device.destroy();
    return 0;
  },
};
