// Packs what a bare GPU machine needs to run `whittle` (bench, selftest, profile) into .dev/
// (git-ignored through .git/info/exclude): the CLI bundled into one file (esbuild; shaders
// inlined), npm `webgpu` with its Dawn binary (xz), Node itself (xz), the Vulkan loader (.deb)
// and the small real model. Then scripts/device-bench.sh runs there. Usage:
//   node scripts/device-pack.mjs        (then: the device tool's `run` with carry ['.dev'])
// The bundle sits two folders down (.dev/bin/) so that the paths the CLI derives from its own
// location (scripts/bench_torch.py, ../shared/models) resolve as they do from src/.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dev = join(root, '.dev');
rmSync(join(dev, 'bin'), { recursive: true, force: true });
mkdirSync(join(dev, 'bin'), { recursive: true });

// 1. the CLI, one ESM file; `import x from '…/y.wgsl?raw'` becomes the file's text (as in Vite)
const wgsl = {
  name: 'wgsl-raw',
  setup(b) {
    b.onResolve({ filter: /\.wgsl(\?raw)?$/ }, (a) => ({ path: resolve(a.resolveDir, a.path.replace(/\?raw$/, '')), namespace: 'wgsl' }));
    b.onLoad({ filter: /.*/, namespace: 'wgsl' }, (a) => ({ contents: readFileSync(a.path, 'utf8'), loader: 'text' }));
  },
};
writeFileSync(join(dev, 'entry.ts'), "import { main } from '../src/cli/main.ts';\nprocess.exitCode = await main(process.argv.slice(2));\n");
await build({
  entryPoints: [join(dev, 'entry.ts')],
  outdir: join(dev, 'bin'),
  entryNames: 'whittle',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunk-[hash]',
  splitting: true, // dynamic imports (onnxruntime-web, the browser bench) stay lazy
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['webgpu', 'onnxruntime-web', 'playwright-core', 'tsx', 'vite', 'fake-indexeddb'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  plugins: [wgsl],
  logLevel: 'warning',
});

// 2. npm `webgpu` without its other platforms; dawn.node compressed (21 MB → ~5 MB)
const wsrc = join(root, 'node_modules', 'webgpu');
const wdst = join(dev, 'node_modules', 'webgpu');
rmSync(wdst, { recursive: true, force: true });
mkdirSync(join(wdst, 'dist', 'linux-x64'), { recursive: true });
for (const f of ['package.json', 'index.js']) cpSync(join(wsrc, f), join(wdst, f));
execFileSync('sh', ['-c', `xz -6 -T2 -c '${join(wsrc, 'dist/linux-x64/dawn.node')}' > '${join(wdst, 'dist/linux-x64/dawn.node.xz')}'`]);

// 3. Node (the GPU machine has none): xz of this machine's static-ish /usr/bin/node, made once
if (!existsSync(join(dev, 'node.xz'))) execFileSync('sh', ['-c', `xz -9 -T2 -c "$(command -v node)" > '${join(dev, 'node.xz.tmp')}' && mv '${join(dev, 'node.xz.tmp')}' '${join(dev, 'node.xz')}'`]);

// 4. the Vulkan loader and the GL dispatch libraries the NVIDIA ICD links (the driver is there, these are not)
mkdirSync(join(dev, 'gl'), { recursive: true });
const debs = ['libvulkan1', 'libegl1', 'libglvnd0', 'libopengl0', 'libgl1', 'libglx0', 'libgles2'];
const have = readdirSync(join(dev, 'gl'));
const want = debs.filter((d) => !have.some((f) => f.startsWith(`${d}_`)));
if (want.length) execFileSync('apt-get', ['download', ...want], { cwd: join(dev, 'gl'), stdio: 'inherit' });

// 5. the real small model (../shared does not travel)
const model = resolve(root, '..', 'shared', 'models', 'tinystories-656k');
if (existsSync(model)) cpSync(model, join(dev, 'models', 'tinystories-656k'), { recursive: true });

const size = (p) => (statSync(p).isDirectory() ? readdirSync(p).reduce((s, f) => s + size(join(p, f)), 0) : statSync(p).size);
console.log(`.dev: ${(size(dev) / 2 ** 20).toFixed(1)} MiB (the device tool carries at most 64 MiB with the working tree)`);
