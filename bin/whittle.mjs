#!/usr/bin/env node
// `npx whittle …`: the engine headless in Node (Dawn through npm `webgpu`). See src/cli/main.ts.
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';
registerTsx();
register('../scripts/wgsl-hooks.mjs', import.meta.url);
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
