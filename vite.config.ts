// Vite: the page (index.html → src/ui) and the engine worker (workers/engine.worker.ts) as ES
// modules; `.wgsl?raw` imports are Vite's own. Built to dist/ with relative URLs (base './') so the
// build can be served from any path. `webgpu` (Dawn for Node) and node: builtins are only reached
// by src/gpu/device.ts when there is no navigator.gpu in Node: kept out of the browser bundles.
// - onnxruntime-web resolves to its wasm-only bundle (`onnxruntime-web/wasm`: the JS glue inlined,
//   no WebGPU/WebNN/JSEP code), whose `new URL('ort-wasm-simd-threaded.wasm', import.meta.url)`
//   Vite emits into dist/assets: the CPU (ONNX) fallback is served by this app, never a CDN.
// - The service worker (public/sw.js, copied to dist/sw.js) gets the list of every built file (but
//   the bench page's own: BENCH_ONLY, among them onnxruntime-web's WebGPU build for its peer) and
//   a version hash of their contents written into it after the build (`precacheManifest`), so it
//   can precache the whole app — page, worker, chunks, the ort .wasm — and run it offline.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { defineConfig, type Plugin, type ResolvedConfig } from 'vite';

const nodeOnly = ['webgpu', /^node:/];

/** Marker in public/sw.js replaced by the manifest `{version, files}`. */
export const PRECACHE_MARKER = 'self.__WHITTLE_PRECACHE__';

/**
 * Files of the build only the bench page uses (bench.html, its chunk, and onnxruntime-web's WebGPU
 * build with its 27 MB asyncify .wasm — the bench's transformers.js-on-WebGPU peer): not precached
 * for the app (the app's ONNX fallback is the wasm-only build).
 */
export const BENCH_ONLY = [/^bench\.html$/, /^assets\/bench-/, /^assets\/ort\.webgpu\./, /^assets\/ort-wasm-simd-threaded\.asyncify-/];

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

/** After `vite build`: write the precache manifest (every file of dist/ but sw.js and maps) into dist/sw.js. */
function precacheManifest(): Plugin {
  let config: ResolvedConfig;
  return {
    name: 'whittle-precache-manifest',
    apply: 'build',
    configResolved(c) {
      config = c;
    },
    closeBundle() {
      const out = resolve(config.root, config.build.outDir);
      const sw = join(out, 'sw.js');
      if (!existsSync(sw)) return;
      const hash = createHash('sha256');
      const files: string[] = [];
      for (const p of filesUnder(out).sort()) {
        const rel = relative(out, p).split('\\').join('/');
        if (rel === 'sw.js' || rel.endsWith('.map') || BENCH_ONLY.some((re) => re.test(rel))) continue;
        files.push(rel);
        hash.update(rel).update('\0').update(readFileSync(p)).update('\0');
      }
      const manifest = { version: hash.digest('hex').slice(0, 16), files };
      const text = readFileSync(sw, 'utf8');
      if (!text.includes(PRECACHE_MARKER)) throw new Error(`dist/sw.js has no ${PRECACHE_MARKER} to replace`);
      writeFileSync(sw, text.replace(PRECACHE_MARKER, JSON.stringify(manifest)));
    },
  };
}

const alias = [{ find: /^onnxruntime-web$/, replacement: 'onnxruntime-web/wasm' }];

export default defineConfig({
  base: './',
  resolve: { alias },
  plugins: [precacheManifest()],
  // dev server: pre-bundling would move ort away from its .wasm (the new URL(…, import.meta.url) above)
  optimizeDeps: { exclude: ['onnxruntime-web', 'onnxruntime-web/wasm'] },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // the ort .wasm is 14 MB: never inline it; warn only above the worker's own size
    assetsInlineLimit: 4096,
    chunkSizeWarningLimit: 1024,
    // bench.html: the in-browser inference bench page (src/bench/page.ts), driven by `whittle bench`
    rolldownOptions: { external: nodeOnly, input: { index: 'index.html', bench: 'bench.html' } },
  },
  worker: {
    format: 'es',
    rolldownOptions: { external: nodeOnly },
  },
  // the dev server on its own port: `npm start` (vite preview, 5173) registers the offline service
  // worker for its origin, which would otherwise answer the dev server's pages from its cache
  server: { host: '127.0.0.1', port: 5180 },
  preview: { host: '127.0.0.1' },
});
