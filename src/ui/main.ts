// The page: a header (GPU badge, a live training indicator, the theme switch), the navigation of
// the sections, and the selected section (#hash). The engine (GPU, kernels, storage, training)
// lives in the worker; the page only renders what it reports and sends what the user asks.
// A production build registers the service worker (public/sw.js) that makes the app work offline.
import './style.css';
import { button, h, replace } from './dom.ts';
import { Engine } from './engine.ts';
import type { Section } from './section.ts';
import { adaptersSection } from './sections/adapters.ts';
import { datasetsSection } from './sections/datasets.ts';
import { deviceSection } from './sections/device.ts';
import { modelsSection } from './sections/models.ts';
import { playgroundSection } from './sections/playground.ts';
import { trainSection } from './sections/train.ts';
import { AppState, setSetting, setting } from './state.ts';

// ---- theme: system, light or dark (remembered)
type Theme = 'system' | 'light' | 'dark';
function applyTheme(t: Theme): void {
  if (t === 'system') document.documentElement.removeAttribute('data-theme');
  else document.documentElement.dataset.theme = t;
}
let theme = setting('theme', 'system') as Theme;
applyTheme(theme);

const engine = new Engine();
const ready = engine.hello();
const app = new AppState(engine, ready);

const sections: Section[] = [
  modelsSection(engine, app),
  datasetsSection(engine, app),
  trainSection(engine, app),
  playgroundSection(engine, app),
  adaptersSection(engine, app),
  deviceSection(engine, ready),
];

const badge = h('a', { class: 'badge', id: 'gpu-badge', role: 'status', href: '#device' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), 'connecting…');
ready.then(
  (r) => {
    badge.classList.add(r.type === 'ready' ? 'ok' : 'warn');
    replace(badge, h('span', { class: 'dot', 'aria-hidden': 'true' }),
      r.type === 'ready' ? [r.gpu.vendor, r.gpu.architecture].filter(Boolean).join(' · ') || 'WebGPU' : 'no WebGPU');
    if (r.type === 'ready' && !r.jobsHere) {
      badge.title = 'Training runs in another whittle tab of this browser.';
    }
  },
  () => {
    badge.classList.add('warn');
    replace(badge, h('span', { class: 'dot', 'aria-hidden': 'true' }), 'engine failed');
  },
);

engine.on((m) => {
  if (m.type === 'device-lost') {
    badge.classList.remove('ok');
    badge.classList.add('warn');
    badge.title = `The GPU device was lost (${m.reason}). Reload the page to start again.`;
    replace(badge, h('span', { class: 'dot', 'aria-hidden': 'true' }), 'GPU lost: reload');
  }
});

// ---- the training indicator: visible on every page while a job runs
const runner = h('a', { class: 'runner', id: 'runner', href: '#train', hidden: true });
function showRunner(step?: number): void {
  const j = app.lists.jobs.find((x) => x.live && (x.status === 'running' || x.status === 'queued' || x.status === 'validating_files' || x.status === 'paused'));
  if (!j) {
    runner.hidden = true;
    return;
  }
  runner.hidden = false;
  const s = step ?? j.last?.step ?? 0;
  runner.textContent = j.status === 'paused' ? `${j.name}: paused` : j.totalSteps ? `training ${j.name}: ${s} / ${j.totalSteps}` : `training ${j.name}: preparing`;
}
app.subscribe('jobs', () => showRunner());
engine.on((m) => {
  if (m.type === 'job-metric') {
    const j = app.lists.jobs.find((x) => x.id === m.jobId);
    if (j) j.last = m.metric;
    showRunner(m.metric.step);
  }
});

const themeBtn = h('button', { type: 'button', class: 'ghost small theme', id: 'theme-toggle' });
function themeLabel(): void {
  themeBtn.textContent = theme === 'system' ? 'Theme: system' : theme === 'light' ? 'Theme: light' : 'Theme: dark';
  themeBtn.setAttribute('aria-label', `${themeBtn.textContent} (change)`);
}
themeBtn.addEventListener('click', () => {
  theme = theme === 'system' ? 'light' : theme === 'light' ? 'dark' : 'system';
  setSetting('theme', theme);
  applyTheme(theme);
  themeLabel();
});
themeLabel();

const links = sections.map((s) => h('a', { href: `#${s.id}`, 'data-section': s.id }, s.title));
const main = h('main', { id: 'main', tabindex: -1 });

document.body.append(
  h('a', { class: 'skip', href: '#main', onclick: ((e: Event) => { e.preventDefault(); main.focus(); }) as EventListener }, 'Skip to content'),
  h('header', { class: 'topbar' },
    h('div', { class: 'brand' },
      h('span', { class: 'logo', 'aria-hidden': 'true' }),
      h('span', { class: 'name' }, 'whittle'),
      h('span', { class: 'tagline' }, 'LoRA fine-tuning on your own GPU, in the browser'),
    ),
    h('div', { class: 'topbar-right' }, runner, themeBtn, badge),
  ),
  h('div', { class: 'layout' }, h('nav', { class: 'sidenav', 'aria-label': 'Sections' }, ...links), main),
);

let shown: Section | null = null;
function show(): void {
  const id = location.hash.slice(1);
  const s = sections.find((x) => x.id === id) ?? shown ?? sections[0];
  if (s === shown) return;
  shown = s;
  for (const a of links) {
    if (a.dataset.section === s.id) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  replace(main, s.el);
  document.title = `${s.title} · whittle`;
  s.onShow?.();
}

// ---- offline: the service worker (public/sw.js) caches the built app; production builds only
const updateBar = h('div', { class: 'update-banner', id: 'update-banner', role: 'status', hidden: true });
(document.querySelector('header.topbar') ?? document.body.firstChild)?.before(updateBar);
function offerUpdate(waiting: ServiceWorker): void {
  replace(updateBar, 'A new version of whittle is ready.', button('Reload', () => {
    navigator.serviceWorker.addEventListener('controllerchange', () => location.reload(), { once: true });
    waiting.postMessage({ type: 'skip-waiting' });
  }, { class: 'primary small', id: 'update-reload' }));
  updateBar.hidden = false;
}
if (import.meta.env.PROD && 'serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('./sw.js').then((reg) => {
    // an update: a new build installed beside this one (the first install needs no reload)
    const watch = (w: ServiceWorker | null) => {
      if (!w) return;
      const check = () => {
        if (w.state === 'installed' && navigator.serviceWorker.controller) offerUpdate(w);
      };
      w.addEventListener('statechange', check);
      check();
    };
    watch(reg.waiting);
    reg.addEventListener('updatefound', () => watch(reg.installing));
  }, (e: Error) => console.warn(`whittle: the app cannot be cached for offline use: ${e.message}`));
}

window.addEventListener('hashchange', () => {
  show();
  main.focus();
});
show();
