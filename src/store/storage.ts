// Browser storage quota and persistence (navigator.storage), guarded: every function resolves
// null where the API is missing (Node, old browsers, some private modes) instead of throwing.
// Persistence matters here: without it the browser may evict a 500 MB model under storage pressure.
import { StoreError } from './core.ts';

export interface StorageInfo {
  /** Bytes used by this origin (all IndexedDB databases, caches, ...). */
  usage: number;
  /** Bytes this origin may use. */
  quota: number;
  /** quota - usage, never negative. */
  available: number;
  /** Whether the origin's storage is persistent (not evicted under pressure); null when unknown. */
  persisted: boolean | null;
}

type StorageManagerLike = {
  estimate?: () => Promise<{ usage?: number; quota?: number }>;
  persisted?: () => Promise<boolean>;
  persist?: () => Promise<boolean>;
};

function manager(): StorageManagerLike | null {
  const nav = (globalThis as { navigator?: { storage?: StorageManagerLike } }).navigator;
  return nav?.storage ?? null;
}

/** Usage, quota and persistence of this origin's storage, or null when the browser does not say. */
export async function storageInfo(): Promise<StorageInfo | null> {
  const m = manager();
  if (!m?.estimate) return null;
  try {
    const e = await m.estimate();
    const usage = e.usage ?? 0, quota = e.quota ?? 0;
    let persisted: boolean | null = null;
    if (m.persisted) persisted = await m.persisted().catch(() => null);
    return { usage, quota, available: Math.max(0, quota - usage), persisted };
  } catch {
    return null;
  }
}

/** Ask the browser to make storage persistent (may prompt). Resolves the outcome, or null when unsupported. */
export async function requestPersistence(): Promise<boolean | null> {
  const m = manager();
  if (!m?.persist) return null;
  try {
    return await m.persist();
  } catch {
    return null;
  }
}

/** Throw a clear error when `bytes` more will not fit in the quota (no-op when the quota is unknown). */
export async function ensureSpace(bytes: number, what: string): Promise<void> {
  const info = await storageInfo();
  if (!info || info.quota === 0) return;
  if (bytes > info.available) {
    const mb = (n: number) => `${(n / 1048576).toFixed(0)} MB`;
    throw new StoreError('quota', `not enough browser storage for ${what}: needs ${mb(bytes)}, ${mb(info.available)} free of ${mb(info.quota)} — delete models, adapters or jobs, or allow persistent storage`);
  }
}
