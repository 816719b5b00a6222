// `whittle selftest --json` as a child process, on both CPU Vulkan drivers (SwiftShader, lavapipe):
// the JSON document, every check passing, exit codes; plus --help and usage errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from '../harness.ts';
import type { SelftestReport } from '../../src/cli/selftest.ts';

function whittle(args: string[], env: Record<string, string | undefined> = {}): { code: number | null; stdout: string; stderr: string } {
  const e: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || '/tmp' };
  delete e.VK_ICD_FILENAMES;
  delete e.VK_DRIVER_FILES;
  delete e.WHITTLE_ICD;
  for (const [k, v] of Object.entries(env)) if (v !== undefined) e[k] = v;
  const r = spawnSync(process.execPath, ['bin/whittle.mjs', ...args], { env: e, encoding: 'utf8', timeout: 5 * 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const ICDS = [
  { name: 'swiftshader', json: '/usr/lib/chromium/vk_swiftshader_icd.json', arch: /swiftshader/i },
  { name: 'lavapipe', json: '/usr/share/vulkan/icd.d/lvp_icd.json', arch: /llvmpipe|software|lavapipe/i },
] as const;

for (const icd of ICDS) {
  test(`whittle selftest --json on ${icd.name}`, () => {
    assert.ok(existsSync(icd.json), `${icd.json} is missing: install it (as root: bash scripts/ensure-system.sh)`);
    const r = whittle(['selftest', '--json'], { WHITTLE_ICD: icd.name });
    let report: SelftestReport;
    try {
      report = JSON.parse(r.stdout);
    } catch {
      assert.fail(`stdout is not one JSON object (exit ${r.code}):\n${r.stdout.slice(0, 2000)}\n${r.stderr.slice(0, 2000)}`);
    }
    assert.ok(report.adapter, `no adapter: ${report.error}`);
    const desc = `${report.adapter.vendor} ${report.adapter.architecture} ${report.adapter.description} ${report.adapter.device}`;
    assert.match(desc, icd.arch, `the ${icd.name} driver was used`);
    assert.equal(typeof report.adapter.features.f16, 'boolean');
    assert.ok(report.adapter.limits.maxStorageBufferBindingSize > 0);
    const failed = report.results.filter((x) => !x.pass);
    assert.deepEqual(failed.map((x) => `${x.op} ${x.check} ${x.shape}: ${x.error ?? `max abs ${x.maxAbs}`}`), [], 'every check passes');
    assert.ok(report.results.length >= 3, 'at least the swiglu checks ran');
    for (const x of report.results) {
      assert.ok(x.op && x.check && x.shape, 'each result names op, check and shape');
      assert.ok(Number.isFinite(x.maxAbs) && Number.isFinite(x.maxRel), `${x.op} ${x.check}: finite errors`);
      assert.ok(x.atol >= 0 && x.rtol >= 0 && x.atol < 1e-2 && x.rtol < 1e-2, `${x.op} ${x.check}: tolerance reported (f32)`);
    }
    assert.ok(report.results.some((x) => x.op === 'swiglu' && x.check.startsWith('backward')), 'backward is checked');
    const ops = new Set(report.results.map((x) => x.op));
    for (const op of ['embedding', 'rmsnorm', 'rope', 'linear', 'lora', 'attention', 'swiglu', 'xent', 'adamw', 'attention_decode', 'kv_append', 'argmax', 'rope_qkv', 'swiglu_rows']) {
      assert.ok(ops.has(op), `the self-test covers ${op}`);
    }
    assert.equal(report.passed, report.results.length);
    assert.equal(report.failed, 0);
    assert.equal(report.ok, true);
    assert.equal(r.code, 0, `exit code (stderr: ${r.stderr.slice(0, 500)})`);
  });
}

test('whittle selftest prints the adapter and a table', () => {
  const r = whittle(['selftest', '--filter', 'swiglu'], { WHITTLE_ICD: 'swiftshader' });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^adapter .*swiftshader/m);
  assert.match(r.stdout, /^features +shader-f16 (yes|no) · subgroups (yes|no) · timestamp-query (yes|no)/m);
  assert.match(r.stdout, /^op +check +shape +max abs +max rel +pass$/m);
  assert.match(r.stdout, /^swiglu +forward out +n=\d+ .* ok$/m);
  assert.match(r.stdout, /^4 passed, 0 failed/m); // swiglu (3 checks) and swiglu_rows (1)
});

test('whittle selftest exits 1 when nothing is checked or there is no adapter', () => {
  const none = whittle(['selftest', '--json', '--filter', 'no-such-op'], { WHITTLE_ICD: 'swiftshader' });
  assert.equal(none.code, 1);
  assert.equal(JSON.parse(none.stdout).ok, false);
  const noGpu = whittle(['selftest', '--json'], { VK_ICD_FILENAMES: '/nonexistent/icd.json' });
  assert.equal(noGpu.code, 1, noGpu.stdout + noGpu.stderr);
  const report = JSON.parse(noGpu.stdout) as SelftestReport;
  assert.equal(report.ok, false);
  assert.equal(report.adapter, null);
  assert.match(report.error ?? '', /adapter|Vulkan|WebGPU/i);
});

test('whittle --help, unknown command and bad options', () => {
  const help = whittle(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /usage: whittle <command>/);
  assert.match(help.stdout, /^ +selftest +check every GPU kernel/m);
  const sub = whittle(['selftest', '--help']);
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /--json/);
  const unknown = whittle(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  const bad = whittle(['selftest', '--jsn']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown option --jsn/);
});
