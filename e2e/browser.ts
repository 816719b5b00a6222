// Shared by the e2e specs: build the app when dist/ is stale, serve dist/ on a free localhost port
// (vite preview, as `npm start` does), and launch Debian's chromium through playwright-core with
// the flags that give WebGPU on SwiftShader here (../shared/platform/WEBGPU_HERE.md).
// It is not: a Playwright test runner (specs use test/harness.ts).
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.WHITTLE_CHROMIUM ?? '/usr/bin/chromium';

export const WEBGPU_FLAGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--disable-vulkan-surface',
];

/** Flags that keep Chromium from calling home (the specs assert no request leaves localhost). */
export const QUIET_FLAGS = ['--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

function newest(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let m = st.mtimeMs;
  for (const name of readdirSync(path)) m = Math.max(m, newest(join(path, name)));
  return m;
}

/** Run `vite build` unless dist/index.html is newer than every source the app is built from. */
export function buildIfStale(): { built: boolean; ms: number } {
  const t0 = performance.now();
  const inputs = ['index.html', 'vite.config.ts', 'package.json', 'src', 'workers', 'shaders', 'public'];
  const src = Math.max(...inputs.map(newest));
  const out = existsSync('dist/index.html') ? statSync('dist/index.html').mtimeMs : 0;
  if (out > src) return { built: false, ms: 0 };
  const r = spawnSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--logLevel', 'warn'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vite build failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return { built: true, ms: performance.now() - t0 };
}

/** Serve dist/ with vite preview on 127.0.0.1 and a free port. */
export async function serveDist(): Promise<{ url: string; close: () => Promise<void> }> {
  const { preview } = await import('vite');
  const server = await preview({ preview: { host: '127.0.0.1', port: 0, strictPort: true, open: false }, logLevel: 'warn' });
  const addr = server.httpServer.address();
  if (!addr || typeof addr === 'string') throw new Error('vite preview did not report a port');
  return { url: `http://127.0.0.1:${addr.port}/`, close: () => server.close() };
}

/** A fresh Chromium profile (own --user-data-dir) with WebGPU on SwiftShader; `close` removes the profile. */
export async function launchChromium(opts: { webgpu?: boolean } = {}): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: the e2e specs drive Debian's chromium (apt-get install chromium, or as root ` +
        '`bash scripts/ensure-system.sh`). Do not use `npx playwright install` (it downloads a browser).',
    );
  }
  const profile = mkdtempSync(join(tmpdir(), 'whittle-chromium-'));
  const args = [...(opts.webgpu === false ? ['--no-sandbox'] : WEBGPU_FLAGS), ...QUIET_FLAGS];
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args,
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** True for URLs that stay on this machine (or never touch the network). */
export function isLocal(url: string): boolean {
  if (/^(data|blob|about|chrome|chrome-extension|devtools):/.test(url)) return true;
  try {
    const host = new URL(url).hostname;
    return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
  } catch {
    return false;
  }
}

/** Record every request of the context; anything off this machine is blocked and remembered. */
export async function guardNetwork(context: BrowserContext): Promise<{ requests: string[]; offHost: string[] }> {
  const requests: string[] = [], offHost: string[] = [];
  context.on('request', (r) => requests.push(r.url()));
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isLocal(url)) return route.continue();
    offHost.push(url);
    return route.abort('blockedbyclient');
  });
  return { requests, offHost };
}

/** Page errors and console errors, collected for a final assertion. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
  });
  return errors;
}
