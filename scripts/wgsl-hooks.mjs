// Node module hooks: `import code from '../../shaders/x.wgsl?raw'` yields the file's text,
// the same way Vite's `?raw` does, so shaders load identically in the browser, tests and CLI.
import { readFile } from 'node:fs/promises';

export async function resolve(specifier, context, next) {
  if (specifier.endsWith('.wgsl?raw') || specifier.endsWith('.wgsl')) {
    const url = new URL(specifier, context.parentURL);
    return { url: url.href, shortCircuit: true, format: 'module' };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (url.includes('.wgsl')) {
    const path = new URL(url.split('?')[0]);
    const text = await readFile(path, 'utf8');
    return { format: 'module', shortCircuit: true, source: `export default ${JSON.stringify(text)};` };
  }
  return next(url, context);
}
