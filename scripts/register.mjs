// Registers TypeScript (tsx) and WGSL-as-text loading for Node: `node --import ./scripts/register.mjs file.ts`.
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';
registerTsx();
register('./wgsl-hooks.mjs', import.meta.url);
