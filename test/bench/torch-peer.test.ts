// scripts/bench_torch.py through src/bench/torch.ts (runTorch), where python3 has torch (Debian's
// python3-torch here; CI machines without it skip, saying so): the plain LoRA peer on the CPU with
// --device cpu reports its device, peer and finite figures; --peft without transformers / peft
// installed (as here) fails with a message that says what is missing; --decode without --peft is refused.
import assert from 'node:assert/strict';
import { test } from '../harness.ts';
import { ensureTorch, runTorch } from '../../src/bench/torch.ts';

const SHAPE = JSON.stringify({ hidden: 32, layers: 1, heads: 2, kvHeads: 1, headDim: 16, ffn: 64, vocab: 64, ropeTheta: 10000, eps: 1e-5, tiedEmbeddings: true });

function torchHere(): boolean {
  const env = ensureTorch({ install: false });
  if (!env.ok) console.log(`# skipped: ${env.error}`);
  return env.ok;
}

test('bench_torch.py: the plain LoRA peer with --device cpu', async () => {
  if (!torchHere()) return;
  const r = await runTorch(['--shape', SHAPE, '--batch', '2', '--seq', '8', '--warmup', '1', '--steps', '2', '--no-sgemm', '--threads', '1', '--device', 'cpu']);
  assert.equal(r.device, 'cpu');
  assert.match(r.peer ?? '', /plain PyTorch LoRA/);
  assert.equal(r.step_ms?.length, 2);
  assert.ok(r.step_ms!.every((x) => Number.isFinite(x) && x > 0));
  assert.ok(Number.isFinite(r.loss!) && r.loss! > 0, `loss ${r.loss}`);
});

test('bench_torch.py: --peft without transformers / peft says so; --decode needs --peft', async () => {
  if (!torchHere()) return;
  let peftHere = true;
  try {
    await runTorch(['--shape', SHAPE, '--batch', '1', '--seq', '4', '--warmup', '1', '--steps', '1', '--no-sgemm', '--threads', '1', '--peft']);
  } catch (e) {
    peftHere = false;
    assert.match((e as Error).message, /--peft needs the Python packages transformers and peft/);
  }
  if (peftHere) console.log('# transformers and peft are installed here: the missing-package message was not exercised');
  await assert.rejects(runTorch(['--shape', SHAPE, '--no-sgemm', '--threads', '1', '--decode']), /--decode needs --peft/);
});
