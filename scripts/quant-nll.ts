// Quantization quality of the two shared models: mean NLL (nats/token) on held-out text with the
// frozen base in f32, q8 and q4 (src/model/quality.ts: weights dequantize(quantize(w)) through
// src/model/quant.ts, CPU reference forward in float64), printed as a markdown table.
//   node --import ./scripts/register.mjs scripts/quant-nll.ts
// Text: each model's reference.json nll_ids (nll_ids_no_prefix for tinystories-656k, whose
// tokenizer.json prepends a "▁" the model never saw) plus the short stories below, written for
// this script (not from the TinyStories data), encoded with the model's own tokenizer.
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadModel, type LoadedModel } from '../src/model/load.ts';
import { nodeSource } from '../src/model/source-node.ts';
import { meanNll, quantNll, type QuantNllRow } from '../src/model/quality.ts';
import { formatBytes } from '../src/model/fit.ts';

const MODELS = fileURLToPath(new URL('../../shared/models/', import.meta.url));

export const HELD_OUT_STORIES = [
  'Tom had a small red boat. Every morning he took it to the pond near his house. One day the wind was very strong and the boat went far away. Tom was sad. His dog Max jumped into the water and swam to the boat. Max brought the boat back to Tom. Tom hugged Max and said, "You are the best dog!"',
  'Mia liked to bake cookies with her grandma. They put flour, sugar and eggs in a big bowl. Mia stirred and stirred. When the cookies were ready, they smelled so good. Mia gave one cookie to her friend Ben. Ben smiled and said thank you. They ate the cookies together under the tree.',
  'A little bird lived in a tall tree. The bird wanted to fly to the sun, but the sun was too far. A wise owl told the bird, "You do not need the sun. Your home is warm and your friends are here." The bird listened and stayed in the tree. It sang happy songs every day.',
];

export interface QuantNllModel {
  name: string;
  /** loaded model (f32 weights) */
  model: LoadedModel;
  /** token sequences the NLL is measured on (the reference.json one first) */
  seqs: number[][];
  /** reference.json's independent f32 mean NLL of seqs[0] */
  refNll: number;
}

/** stories260K (GGUF): reference nll_ids + the held-out stories (BOS + llama2.c-style leading space). */
export async function stories260K(): Promise<QuantNllModel> {
  const dir = MODELS + 'stories260K';
  const ref = JSON.parse(readFileSync(dir + '/reference.json', 'utf8')) as { nll_text: string; nll_ids: number[]; mean_nll_nats: number };
  const model = await loadModel(await nodeSource(dir + '/stories260K.gguf'));
  const enc = (s: string) => model.tokenizer.encode(s, { addBos: true });
  if (JSON.stringify(enc(ref.nll_text)) !== JSON.stringify(ref.nll_ids)) throw new Error('stories260K: the tokenizer does not reproduce reference.json nll_ids');
  return { name: 'stories260K', model, seqs: [ref.nll_ids, ...HELD_OUT_STORIES.map(enc)], refNll: ref.mean_nll_nats };
}

/** tinystories-656k (HF): reference nll_ids_no_prefix + the held-out stories (BOS, no lone "▁"). */
export async function tinystories656k(): Promise<QuantNllModel> {
  const dir = MODELS + 'tinystories-656k';
  const ref = JSON.parse(readFileSync(dir + '/reference.json', 'utf8')) as { nll_text: string; nll_ids_no_prefix: number[]; mean_nll_nats_no_prefix: number };
  const model = await loadModel(await nodeSource(dir));
  const enc = (s: string) => model.tokenizer.encode(s, { addBos: true, prefixSpace: false });
  if (JSON.stringify(enc(ref.nll_text)) !== JSON.stringify(ref.nll_ids_no_prefix)) throw new Error('tinystories-656k: the tokenizer does not reproduce reference.json nll_ids_no_prefix');
  return { name: 'tinystories-656k', model, seqs: [ref.nll_ids_no_prefix, ...HELD_OUT_STORIES.map(enc)], refNll: ref.mean_nll_nats_no_prefix };
}

export function measure(m: QuantNllModel): QuantNllRow[] {
  return quantNll(m.model.config, m.model.weights, m.seqs);
}

export function markdown(rows: { model: string; row: QuantNllRow }[]): string {
  const out = ['| model | quant | mean NLL (nats/token) | Δ vs f32 | base bytes |', '| --- | --- | ---: | ---: | ---: |'];
  for (const { model, row } of rows) {
    const d = row.quant === 'f32' ? '—' : `${row.delta >= 0 ? '+' : ''}${row.delta.toFixed(4)}`;
    out.push(`| ${model} | ${row.quant} | ${row.nll.toFixed(4)} | ${d} | ${row.baseBytes.toLocaleString('en-US')} (${formatBytes(row.baseBytes)}) |`);
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const rows: { model: string; row: QuantNllRow }[] = [];
  for (const load of [stories260K, tinystories656k]) {
    const m = await load();
    const t0 = performance.now();
    const r = measure(m);
    const check = meanNll(m.model.config, m.model.weights, [m.seqs[0]]);
    if (Math.abs(check - m.refNll) > 1e-3) throw new Error(`${m.name}: f32 NLL ${check} on reference.json's text, the reference says ${m.refNll}`);
    console.error(`${m.name}: f32 NLL on reference.json's nll text ${check.toFixed(6)} (reference ${m.refNll})`);
    console.error(`${m.name}: ${m.seqs.length} sequences, ${r[0].tokens} predicted tokens, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const row of r) rows.push({ model: m.name, row });
  }
  console.log(markdown(rows));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
