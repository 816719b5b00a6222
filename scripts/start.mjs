// `npm start`: installs npm packages when missing, builds the app (vite build → dist/), and serves
// dist/ on 127.0.0.1 (default port 5173, the next free one if taken; PORT=n to insist on n).
// WebGPU needs a secure context: http://127.0.0.1 counts as one, a LAN address over http does not.
import { ensureDeps } from './ensure-deps.mjs';

ensureDeps();
const { build, preview } = await import('vite');

console.log('whittle: building the app…');
await build({ logLevel: 'warn' });

const fixed = process.env.PORT !== undefined && process.env.PORT !== '';
const port = fixed ? Number(process.env.PORT) : 5173;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`whittle: PORT must be a port number, got "${process.env.PORT}"`);
  process.exit(2);
}
let server;
try {
  server = await preview({ preview: { host: '127.0.0.1', port, strictPort: fixed, open: false }, logLevel: 'warn' });
} catch (e) {
  console.error(`whittle: could not serve on 127.0.0.1:${port}: ${e.message}` + (fixed ? ' (unset PORT to take a free port)' : ''));
  process.exit(1);
}
const url = server.resolvedUrls?.local?.[0] ?? `http://127.0.0.1:${port}/`;
const line = '─'.repeat(url.length + 4);
console.log(`\n  ${line}\n    ${url}\n  ${line}\n`);
console.log('  whittle is running: open the address above in Chrome or Edge (WebGPU).');
console.log('  Press Ctrl+C to stop.\n');

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    await server.close();
    process.exit(0);
  });
}
