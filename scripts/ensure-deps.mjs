// Installs npm packages when node_modules is missing or older than package-lock.json / package.json.
import { existsSync, statSync } from 'node:fs';
import { execSync } from 'node:child_process';

export function ensureDeps() {
  const stamp = 'node_modules/.package-lock.json';
  const newest = Math.max(...['package.json', 'package-lock.json'].filter(existsSync).map((f) => statSync(f).mtimeMs));
  if (!existsSync(stamp) || statSync(stamp).mtimeMs < newest || !existsSync('node_modules/webgpu')) {
    console.log('whittle: installing npm packages…');
    execSync(existsSync('package-lock.json') ? 'npm ci --no-audit --no-fund' : 'npm install --no-audit --no-fund', { stdio: 'inherit' });
  }
}
