// The page: a header, a navigation of the sections that exist, and the selected section (#hash).
// The engine (GPU, kernels, training) lives in the worker; the page only renders what it reports.
import './style.css';
import { h, replace } from './dom.ts';
import { Engine } from './engine.ts';
import type { Section } from './section.ts';
import { deviceSection } from './sections/device.ts';

const engine = new Engine();
const ready = engine.hello();

const sections: Section[] = [deviceSection(engine, ready)];

const badge = h('span', { class: 'badge', id: 'gpu-badge', role: 'status' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), 'connecting…');
ready.then(
  (r) => {
    badge.classList.add(r.type === 'ready' ? 'ok' : 'warn');
    replace(badge, h('span', { class: 'dot', 'aria-hidden': 'true' }),
      r.type === 'ready' ? [r.gpu.vendor, r.gpu.architecture].filter(Boolean).join(' · ') || 'WebGPU' : 'no WebGPU');
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

const links = sections.map((s) => h('a', { href: `#${s.id}`, 'data-section': s.id }, s.title));
const main = h('main', { id: 'main', tabindex: -1 });

document.body.append(
  h('a', { class: 'skip', href: '#main' }, 'Skip to content'),
  h('header', { class: 'topbar' },
    h('div', { class: 'brand' },
      h('span', { class: 'logo', 'aria-hidden': 'true' }),
      h('span', { class: 'name' }, 'whittle'),
      h('span', { class: 'tagline' }, 'LoRA fine-tuning on your own GPU, in the browser'),
    ),
    badge,
  ),
  h('div', { class: 'layout' }, h('nav', { class: 'sidenav', 'aria-label': 'Sections' }, ...links), main),
);

function show(): void {
  const id = location.hash.slice(1);
  const s = sections.find((x) => x.id === id) ?? sections[0];
  for (const a of links) {
    if (a.dataset.section === s.id) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  replace(main, s.el);
  document.title = `${s.title} · whittle`;
}

window.addEventListener('hashchange', () => {
  show();
  main.focus();
});
show();
