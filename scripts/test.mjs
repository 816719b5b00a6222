// `npm test`: installs what the tests need (npm packages; Debian chromium and lavapipe when missing
// and running as root), then runs every test file in its own process — unit and GPU tests under
// test/, then the Playwright specs under e2e/ — and ends with one line: `N passed, N failed`.
// Env: WHITTLE_TEST_FILTER=substring (test names), WHITTLE_TEST_FILES=substring (file paths),
//      WHITTLE_ICD=lavapipe|swiftshader (Vulkan driver for Node's WebGPU).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, execSync } from 'node:child_process';
import { ensureDeps } from './ensure-deps.mjs';

ensureDeps();
try {
  execSync('bash scripts/ensure-system.sh', { stdio: 'inherit' });
} catch {
  console.log('whittle: system packages missing (see above); GPU and browser tests will fail until they are installed.');
}

function list(dir, suffix) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...list(p, suffix));
    else if (p.endsWith(suffix)) out.push(p);
  }
  return out.sort();
}

const only = process.env.WHITTLE_TEST_FILES;
const files = [...list('test', '.test.ts'), ...list('e2e', '.spec.ts')].filter((f) => !only || f.includes(only));

function runFile(file) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', './scripts/register.mjs', file], {
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || '/tmp' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      const s = String(d).split('\n').filter((l) => l && !l.startsWith('Warning: max')).join('\n');
      if (s) out += s + '\n';
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 15 * 60 * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const m = out.match(/^(\d+) passed, (\d+) failed$/m);
      let passed = m ? +m[1] : 0, failed = m ? +m[2] : 0;
      if (code !== 0 && failed === 0) {
        failed = 1;
        out += `\nnot ok - ${file}: process exited with ${signal ?? code} before finishing its tests\n`;
      }
      resolve({ file, passed, failed, out });
    });
  });
}

const t0 = Date.now();
let passed = 0, failed = 0;
for (const f of files) {
  const r = await runFile(f);
  process.stdout.write(`\n# ${f}\n${r.out.replace(/^\d+ passed, \d+ failed\n?/m, '')}`);
  passed += r.passed;
  failed += r.failed;
}
console.log(`\n# ${files.length} files in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
