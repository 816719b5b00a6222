// The subgroup kernel forms on 4-wide subgroups (SwiftShader; lavapipe's are 8 wide, which the
// default test run covers): the subgroup tests of test/ops/linear.test.ts, lora.test.ts and
// attention.test.ts re-run in a child process on the SwiftShader driver, where linear's sg16x32 /
// sg1x32, lora_mm_sg* and the attention subgroup kernels compile with W = 4 (SG4).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from '../harness.ts';

function onSwiftShader(file: string, filter: string): { passed: number; stdout: string } {
  const icd = '/usr/lib/chromium/vk_swiftshader_icd.json';
  assert.ok(existsSync(icd), `${icd} is missing: install chromium (as root: bash scripts/ensure-system.sh)`);
  const env: NodeJS.ProcessEnv = { ...process.env, WHITTLE_ICD: 'swiftshader', WHITTLE_TEST_FILTER: filter, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || '/tmp' };
  delete env.VK_ICD_FILENAMES;
  delete env.VK_DRIVER_FILES;
  const r = spawnSync(process.execPath, ['--import', './scripts/register.mjs', file], { env, encoding: 'utf8', timeout: 10 * 60_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  const m = /^(\d+) passed, (\d+) failed$/m.exec(r.stdout);
  assert.ok(m, `${file}: the child run ended with its totals (exit ${r.status}):\n${out.slice(-3000)}`);
  assert.equal(+m[2], 0, `${file}: no failures:\n${out.split('\n').filter((l) => /^not ok|assert|Error/.test(l)).slice(0, 40).join('\n')}`);
  assert.equal(r.status, 0);
  return { passed: +m[1], stdout: r.stdout };
}

test('gpu linear sg16x32 / sg1x32 on 4-wide subgroups (SwiftShader) vs ref: every format, odd shapes, slices, LoRA fused', () => {
  const r = onSwiftShader('test/ops/linear.test.ts', 'sg');
  assert.ok(r.passed >= 20, `the subgroup tests ran (${r.passed} passed)`);
  assert.match(r.stdout, /^ok - gpu linear with a LoRA adapter/m, 'the LoRA test (which checks the _w4 pipelines) ran');
});

test('gpu linear rt1x8 (the decode matvec SwiftShader runs by default for f32 / f16) on SwiftShader vs ref: every format, odd shapes, slices', () => {
  const r = onSwiftShader('test/ops/linear.test.ts', 'rt1x8');
  assert.ok(r.passed >= 12, `the rt1x8 tests ran (${r.passed} passed)`);
  // the untuned defaults there (decode f32 → rt1x8, q4 → sg1x32)
  assert.equal(onSwiftShader('test/ops/linear.test.ts', 'tuned dispatch').passed, 1);
});

test('gpu lora_mm_sg* on 4-wide subgroups (SwiftShader) vs ref: odd shapes, dropout', () => {
  const r = onSwiftShader('test/ops/lora.test.ts', 'kernel');
  assert.ok(r.passed >= 6, `the kernel tests ran (${r.passed} passed; each checks which pipeline ran)`);
});

test('gpu attention subgroup forms on 4-wide subgroups (SwiftShader) vs ref: GQA, padding, HS 4..64', () => {
  const r = onSwiftShader('test/ops/attention.test.ts', 'auto');
  assert.ok(r.passed >= 10, `the 'auto' tests ran (${r.passed} passed)`);
  assert.match(r.stdout, /^ok - gpu attention auto runs the subgroup forms where they can run/m, 'the test that checks which pipelines ran');
});
