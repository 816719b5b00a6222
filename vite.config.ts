// Vite: the page (index.html → src/ui) and the engine worker (workers/engine.worker.ts) as ES
// modules; `.wgsl?raw` imports are Vite's own. Built to dist/ with relative URLs (base './') so the
// build can be served from any path. `webgpu` (Dawn for Node) and node: builtins are only reached
// by src/gpu/device.ts when there is no navigator.gpu in Node: kept out of the browser bundles.
import { defineConfig } from 'vite';

const nodeOnly = ['webgpu', /^node:/];

export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    rolldownOptions: { external: nodeOnly },
  },
  worker: {
    format: 'es',
    rolldownOptions: { external: nodeOnly },
  },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
