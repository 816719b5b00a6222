// whittle's service worker: makes the app work with no network after its first load.
// - install: precaches every file of the build (the page, its script and CSS, the engine worker and
//   its chunks, onnxruntime-web's .wasm, the example datasets) but the bench page's own (vite.config.ts BENCH_ONLY) into a cache named after the build's
//   version; `vite build` writes the list and the version into this file (vite.config.ts
//   precacheManifest replaces the marker below). Unbuilt (vite dev) it does nothing.
// - fetch: same-origin GETs under this scope are answered cache-first (page navigations with the
//   cached index.html); anything else — Hub downloads above all — goes to the network untouched.
//   Models, datasets, jobs and adapters live in IndexedDB, not here.
// - update: a new build installs beside the old one and waits; the page offers "Reload" and
//   sends {type: 'skip-waiting'}; activation removes the older caches.
// It is not: a cache of Hub downloads, nor background sync.
/* eslint-disable no-restricted-globals */
const MANIFEST = self.__WHITTLE_PRECACHE__;
const PREFIX = 'whittle-app-';
const CACHE = MANIFEST ? PREFIX + MANIFEST.version : null;
const SCOPE = new URL(self.registration.scope);
const INDEX = new URL('index.html', SCOPE).href;

self.addEventListener('install', (event) => {
  if (!MANIFEST) return;
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // cache: 'reload' skips the HTTP cache, so the files cached are the build's own
    await cache.addAll(MANIFEST.files.map((f) => new Request(new URL(f, SCOPE).href, { cache: 'reload' })));
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'skip-waiting') self.skipWaiting();
});

/** A navigation to the app itself (its folder, or index.html): answered with the cached page. */
function isAppPage(url) {
  return url.pathname === SCOPE.pathname || url.href.split(/[?#]/)[0] === INDEX;
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (!CACHE || req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== SCOPE.origin || !url.pathname.startsWith(SCOPE.pathname)) return;
  const page = req.mode === 'navigate' && isAppPage(url);
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    // ignoreVary: the server may send `Vary: Origin`, and module scripts (import(), type=module)
    // carry an Origin header that the precache requests did not: the same file all the same
    const hit = await cache.match(page ? INDEX : req, { ignoreSearch: true, ignoreVary: true });
    if (hit) return hit;
    return fetch(req);
  })());
});
