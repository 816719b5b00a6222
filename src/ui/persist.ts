// Persistent storage for this site: by default a browser may evict a site's IndexedDB under storage
// pressure, and whittle keeps models (hundreds of MB to download again), datasets, checkpoints and
// adapters there. `askPersistence` calls navigator.storage.persist() once, after the first thing
// the user stored (a download, an import, a saved dataset) — never on page load, where a prompt
// (Firefox) would make no sense — and remembers the answer (localStorage), which the Device page
// shows with the usage and quota. Asking again is the Device page's button (a user action).
// persist() exists on pages only (not in workers), so this lives in the page, not the engine.
import { setSetting, setting } from './state.ts';

export type PersistResult = 'granted' | 'denied' | 'unsupported';

export interface PersistRecord {
  result: PersistResult;
  /** when it was asked (ms since epoch) */
  at: number;
  /** what the user had just done */
  after: string;
}

const KEY = 'persist';
const listeners = new Set<(r: PersistRecord) => void>();
let inFlight: Promise<PersistRecord> | null = null;

/** The remembered answer, or null when whittle has not asked yet. */
export function persistRecord(): PersistRecord | null {
  try {
    const r = JSON.parse(setting(KEY, 'null')) as PersistRecord | null;
    return r && typeof r.result === 'string' && typeof r.at === 'number' ? r : null;
  } catch {
    return null;
  }
}

/** Listen to new answers; returns the unsubscribe function. */
export function onPersistence(fn: (r: PersistRecord) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/**
 * Ask the browser to keep this site's storage, once (`again`: ask even if asked before). `after`
 * says what the user did ('the first download'). Resolves with the answer; never throws.
 */
export function askPersistence(after: string, again = false): Promise<PersistRecord> {
  const known = persistRecord();
  if (known && !again) return Promise.resolve(known);
  if (inFlight) return inFlight;
  inFlight = (async (): Promise<PersistRecord> => {
    const s = typeof navigator !== 'undefined' ? navigator.storage : undefined;
    let result: PersistResult;
    if (!s?.persist) result = 'unsupported';
    else {
      try {
        result = (await s.persisted?.()) || (await s.persist()) ? 'granted' : 'denied';
      } catch {
        result = 'denied';
      }
    }
    const r: PersistRecord = { result, at: Date.now(), after };
    setSetting(KEY, JSON.stringify(r));
    for (const l of listeners) l(r);
    return r;
  })().finally(() => (inFlight = null));
  return inFlight;
}
