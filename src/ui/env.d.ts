// What Vite puts on import.meta.env in the page's build (only what src/ui reads).
interface ImportMetaEnv {
  /** true in `vite build` output, false under `vite` (dev server) */
  readonly PROD: boolean;
  readonly DEV: boolean;
}
interface ImportMeta {
  readonly env: ImportMetaEnv;
}
