// Everything whittle keeps in IndexedDB, in one import: models (chunked files), datasets, jobs
// (with paged event / metric logs), checkpoints (crash-atomic), adapters, and storage quota info.
// Layout, formats and atomicity: src/store/README.md.
export * from './core.ts';
export * from './models.ts';
export * from './datasets.ts';
export * from './jobs.ts';
export * from './checkpoints.ts';
export * from './adapters.ts';
export * from './storage.ts';
export { Sha256, sha256Hex } from './sha256.ts';
