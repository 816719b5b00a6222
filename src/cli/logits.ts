// `whittle logits --model PATH (--text STR | --ids 1,2,3) [--quant f32|f16|q8|q4] [--json]`: the logits of
// every position of one sequence from the GPU inference path (InferenceModel.logitsAll, positions
// from 0). --json prints {"ids":[…],"logits":[[…V floats…], …]} (one row per position); without it,
// the top tokens of each position. For comparing against other implementations.
// --adapter DIR applies a LoRA adapter (PEFT directory or `whittle train` output), unmerged unless
// --merge; the JSON then also names it ({"adapter":{…,"mode":"unmerged"|"merged"}}).
import { acquireGpu } from '../gpu/device.ts';
import { InferenceModel } from '../model/generate.ts';
import { parseArgs, UsageError } from './args.ts';
import type { Command } from './command.ts';
import { describeAdapter, loraWeightsOf } from './adapter-arg.ts';
import { adapterArg, adapterReport, loadModelPath, parseNum, parseQuant, promptIds, stdio } from './generate.ts';

const USAGE = [
  'usage: whittle logits --model PATH (--text STR | --ids 1,2,3) [--quant f32|f16|q8|q4] [--json] [--top N]',
  '                      [--adapter DIR [--merge]]',
  '',
  'Runs one sequence through the model on the GPU and prints the logits of every position.',
  '',
  '  --text STR         text, encoded with the model\'s tokenizer (BOS added as it says)',
  '  --ids 1,2,3        token ids instead of --text',
  '  --quant FORMAT     storage format of the frozen weights on the GPU: f32 (default), f16, q8, q4',
  '  --adapter DIR      apply a LoRA adapter: a PEFT directory (what `whittle train` writes) or an older',
  '                     whittle adapter.json + adapter.bin directory; unmerged (LoRA kernels beside the',
  '                     frozen base) by default',
  '  --merge            merge the adapter into the base weights first (W + scale·B·A)',
  '  --json             print {"ids":[…],"logits":[[…]…]} (T rows of V floats)',
  '  --top N            without --json: the N most likely next tokens per position (default 5)',
  '  --no-bos           do not add BOS to --text',
  '  --no-prefix-space  no SentencePiece leading "▁"',
  '',
  'Exit code: 0 ok, 1 failure, 2 bad arguments.',
].join('\n');

export const command: Command = {
  name: 'logits',
  usage: USAGE,
  async run(args, io) {
    const { flags, positional } = parseArgs(args, {
      model: 'string', text: 'string', ids: 'string', quant: 'string', json: 'bool', top: 'string', 'no-bos': 'bool', 'no-prefix-space': 'bool',
      adapter: 'string', merge: 'bool',
    });
    if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
    if (typeof flags.model !== 'string') throw new UsageError('--model PATH is required');
    const quant = parseQuant(flags.quant);
    const top = parseNum('top', flags.top, { int: true, min: 1 }) ?? 5;
    const loaded = await loadModelPath(flags.model);
    const adapter = await adapterArg(loaded, flags);
    const ids = promptIds(loaded, flags, 'text');
    const V = loaded.config.vocab;
    for (const id of ids) if (id >= V) throw new UsageError(`token id ${id} is outside the vocabulary (V = ${V})`);
    const gpu = await acquireGpu();
    const model = InferenceModel.create(gpu, loaded.config, loaded.weights, {
      quant, maxSeq: ids.length, lora: adapter && loraWeightsOf(adapter), merge: flags.merge === true,
    });
    try {
      const z = await model.logitsAll(ids);
      const rows = ids.map((_, t) => z.subarray(t * V, (t + 1) * V));
      if (flags.json === true) {
        const ad = adapter ? `"adapter":${JSON.stringify(adapterReport(flags.adapter as string, adapter, model.loraMode))},` : '';
        io.out(`{${ad}"ids":${JSON.stringify(ids)},"logits":[${rows.map((r) => `[${Array.from(r).join(',')}]`).join(',')}]}`);
        return 0;
      }
      const tok = loaded.tokenizer;
      if (adapter) io.out(`adapter ${describeAdapter(adapter, model.loraMode)}`);
      ids.forEach((id, t) => {
        const best = Array.from(rows[t].keys()).sort((a, b) => rows[t][b] - rows[t][a]).slice(0, top);
        io.out(`${String(t).padStart(4)} ${JSON.stringify(tok.tokenToString(id))} (${id}) → ` +
          best.map((b) => `${JSON.stringify(tok.tokenToString(b))} ${rows[t][b].toFixed(3)}`).join('  '));
      });
      return 0;
    } finally {
      model.destroy();
    }
  },
};

/** `whittle logits` with argv (no command name): the exit code. */
export async function run(argv: string[]): Promise<number> {
  try {
    return await command.run(argv, stdio);
  } catch (e) {
    stdio.err(`whittle logits: ${(e as Error)?.message ?? String(e)}${e instanceof UsageError ? `\n\n${USAGE}` : ''}`);
    return e instanceof UsageError ? 2 : 1;
  }
}
