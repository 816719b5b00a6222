// The Device section: which WebGPU adapter the engine worker got (or why there is none), its
// features and key limits, this site's storage (usage / quota, whether the browser keeps it: see
// ../persist.ts; whether the app is cached for offline use), and the kernel self-test streamed
// from the worker. Without WebGPU it says why, and what still works (the CPU / ONNX playground);
// on a software adapter (SwiftShader) what that costs, with the bench's figures.
import type { GpuInfo } from '../../gpu/device.ts';
import { isSoftwareInfo } from '../../gpu/software.ts';
import type { FromWorker } from '../../protocol.ts';
import type { SelftestResult } from '../../selftest.ts';
import { bytes, h, replace, when } from '../dom.ts';
import type { Engine } from '../engine.ts';
import { askPersistence, onPersistence, persistRecord } from '../persist.ts';
import type { Section } from '../section.ts';

type Ready = Extract<FromWorker, { type: 'ready' | 'gpu-unavailable' }>;

const FEATURES: Array<{ key: keyof GpuInfo['features']; name: string; what: string }> = [
  { key: 'f16', name: 'shader-f16', what: 'half-precision math in shaders; an optimisation, every kernel also runs in f32' },
  { key: 'subgroups', name: 'subgroups', what: 'subgroup operations for faster reductions' },
  { key: 'timestamp', name: 'timestamp-query', what: 'GPU timings per kernel for the profiler' },
];

const LIMITS: Array<{ key: string; name: string; fmt: (v: number) => string }> = [
  { key: 'maxBufferSize', name: 'Largest buffer', fmt: bytes },
  { key: 'maxStorageBufferBindingSize', name: 'Largest storage binding', fmt: bytes },
  { key: 'maxStorageBuffersPerShaderStage', name: 'Storage buffers per stage', fmt: String },
  { key: 'maxComputeWorkgroupStorageSize', name: 'Workgroup memory', fmt: bytes },
  { key: 'maxComputeInvocationsPerWorkgroup', name: 'Invocations per workgroup', fmt: String },
  { key: 'maxComputeWorkgroupsPerDimension', name: 'Workgroups per dimension', fmt: (v) => v.toLocaleString('en-US') },
];

export function deviceSection(engine: Engine, ready: Promise<Ready>): Section {
  const adapterBody = h('div', { class: 'card-body' }, h('p', { class: 'muted' }, 'Asking the engine worker for a GPU…'));
  const storageLine = h('p', { class: 'storage', id: 'storage-line' }, 'Storage: checking…');
  const persistLine = h('p', { class: 'storage', id: 'persist-line' });
  const offlineLine = h('p', { class: 'storage', id: 'offline-line' });
  const againBtn = h('button', { type: 'button', class: 'ghost small', id: 'persist-ask', hidden: true }, 'Ask again') as HTMLButtonElement;
  const refreshStorage = () => void showStorage(storageLine, persistLine, offlineLine, againBtn);
  againBtn.addEventListener('click', async () => {
    againBtn.disabled = true;
    try {
      await askPersistence('you asked on the Device page', true);
    } finally {
      againBtn.disabled = false;
    }
  });
  onPersistence(refreshStorage);
  navigator.serviceWorker?.addEventListener('controllerchange', refreshStorage);
  const adapterCard = h(
    'article',
    { class: 'card', id: 'adapter-card', 'aria-labelledby': 'adapter-h', 'aria-busy': 'true' },
    h('h2', { id: 'adapter-h' }, 'WebGPU adapter'),
    adapterBody,
    h('div', { class: 'storage-box' }, storageLine, h('div', { class: 'actions tight' }, persistLine, againBtn), offlineLine),
  );

  const runBtn = h('button', { type: 'button', id: 'run-selftest', class: 'primary', disabled: true }, 'Run self-test') as HTMLButtonElement;
  const status = h('p', { id: 'selftest-status', class: 'status', role: 'status', 'aria-live': 'polite' }, 'Waiting for the GPU…');
  const progress = h('progress', { id: 'selftest-progress', max: 1, value: 0, hidden: true, 'aria-label': 'Self-test progress' });
  const tbody = h('tbody');
  const table = h(
    'table',
    { id: 'selftest-table', class: 'results', 'data-state': 'idle', hidden: true },
    h('caption', { class: 'sr-only' }, 'Self-test results: each GPU kernel output against its CPU twin'),
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('th', { scope: 'col' }, 'Op'),
        h('th', { scope: 'col' }, 'Check'),
        h('th', { scope: 'col' }, 'Shape'),
        h('th', { scope: 'col', class: 'num' }, 'Max abs'),
        h('th', { scope: 'col', class: 'num' }, 'Max rel'),
        h('th', { scope: 'col', class: 'num' }, 'Tolerance'),
        h('th', { scope: 'col' }, 'Result'),
      ),
    ),
    tbody,
  );
  const selftestCard = h(
    'article',
    { class: 'card', id: 'selftest-card', 'aria-labelledby': 'selftest-h' },
    h('h2', { id: 'selftest-h' }, 'Kernel self-test'),
    h(
      'p',
      { class: 'muted' },
      'Runs every GPU kernel, forward and backward, on this adapter and compares each output with its plain-TypeScript twin: ',
      h('code', null, '|got − ref| ≤ atol + rtol·|ref|'),
      ' for every element.',
    ),
    h('div', { class: 'actions' }, runBtn, status),
    progress,
    h('div', { class: 'table-wrap' }, table),
  );

  const el = h('section', { class: 'section', id: 'section-device', 'aria-labelledby': 'device-h' },
    h('header', { class: 'section-head' },
      h('h1', { id: 'device-h' }, 'Device'),
      h('p', { class: 'lede' }, 'The GPU this browser lends to whittle, and a check that every kernel computes the right numbers on it.'),
    ),
    h('div', { class: 'cards' }, adapterCard, selftestCard),
  );

  refreshStorage();

  ready.then(
    (r) => {
      adapterCard.removeAttribute('aria-busy');
      if (r.type === 'ready') {
        replace(adapterBody, ...adapterView(r.gpu, r.context));
        runBtn.disabled = false;
        status.textContent = 'Ready.';
      } else {
        replace(adapterBody, unavailableView(r.reason, r.navigatorGpu));
        adapterCard.classList.add('card-warn');
        status.textContent = 'The self-test needs WebGPU.';
      }
    },
    (e: Error) => {
      adapterCard.removeAttribute('aria-busy');
      replace(adapterBody, h('div', { class: 'unavailable', id: 'engine-failed', role: 'alert' },
        h('p', { class: 'adapter-name' }, 'The engine did not start'),
        h('p', null, 'whittle runs its GPU engine in a Web Worker, and that worker failed before it could ask for a GPU. ' +
          'This is a bug or an unsupported browser, not a WebGPU problem; the details below help a bug report.'),
        h('pre', null, e.message),
      ));
      adapterCard.classList.add('card-warn');
      status.textContent = 'The self-test needs the engine worker.';
    },
  );

  runBtn.addEventListener('click', async () => {
    runBtn.disabled = true;
    replace(tbody);
    table.hidden = false;
    table.dataset.state = 'running';
    progress.hidden = false;
    progress.value = 0;
    status.textContent = 'Running…';
    let cases = 1, passed = 0, failed = 0;
    const seen = new Set<string>();
    try {
      const done = await engine.selftest((m) => {
        if (m.type === 'selftest-plan') {
          cases = Math.max(1, m.cases.length);
          progress.max = cases;
        } else if (m.type === 'selftest-result') {
          const r = m.result;
          seen.add(`${r.op} ${r.shape}`);
          progress.value = seen.size;
          if (r.pass) passed++;
          else failed++;
          tbody.appendChild(resultRow(r));
          status.textContent = `Running… ${seen.size} of ${cases} cases, ${passed} checks passed${failed ? `, ${failed} failed` : ''}`;
        }
      });
      table.dataset.state = 'done';
      table.dataset.passed = String(done.passed);
      table.dataset.failed = String(done.failed);
      table.dataset.context = done.context;
      status.replaceChildren(
        h('strong', { class: done.failed ? 'bad' : 'good' },
          done.failed ? `${done.failed} of ${done.passed + done.failed} checks failed` : `All ${done.passed} checks passed`),
        ` in ${(done.ms / 1000).toFixed(1)} s, run in the engine ${done.context === 'worker' ? 'Web Worker' : done.context}.`,
      );
    } catch (e) {
      table.dataset.state = 'error';
      status.replaceChildren(h('strong', { class: 'bad' }, 'Self-test stopped: '), (e as Error).message);
    } finally {
      progress.hidden = true;
      runBtn.disabled = false;
    }
  });

  return { id: 'device', title: 'Device', el, onShow: refreshStorage };
}

function adapterView(g: GpuInfo, context: string): Node[] {
  const name = [g.vendor, g.architecture].filter(Boolean).join(' · ') || 'unnamed adapter';
  return [
    h('p', { class: 'adapter-name', id: 'adapter-name' }, name),
    ...(isSoftwareInfo(g)
      ? [h('p', { class: 'note', id: 'software-adapter' },
        'A software renderer: WebGPU here runs on the CPU, not a GPU. Everything works, slowly — on a 2-core machine whittle bench measured ' +
        'about 9 GFLOP/s of shader arithmetic (SwiftShader), a LoRA step of the 656k-parameter example model at 100 ms for 2 × 64 tokens, ' +
        'and decoding at 434 tokens/s, where the Playground\'s “run on CPU (ONNX)” reached 1,760. On a GPU (an H100) that training step took 4 ms.')]
      : []),
    h('dl', { class: 'kv', id: 'adapter-info' },
      h('dt', null, 'Vendor'), h('dd', { 'data-field': 'vendor' }, g.vendor || '—'),
      h('dt', null, 'Architecture'), h('dd', { 'data-field': 'architecture' }, g.architecture || '—'),
      h('dt', null, 'Description'), h('dd', { 'data-field': 'description' }, g.description || '—'),
      h('dt', null, 'Engine runs in'), h('dd', { 'data-field': 'context' }, context === 'worker' ? 'a Web Worker' : context),
    ),
    h('h3', null, 'Features'),
    h('ul', { class: 'features', id: 'adapter-features' },
      ...FEATURES.map((f) => {
        const on = g.features[f.key];
        return h('li', { class: on ? 'on' : 'off', 'data-feature': f.name, 'data-present': String(on) },
          h('span', { class: 'pill' }, h('span', { 'aria-hidden': 'true' }, on ? '✓ ' : '– '), f.name),
          h('span', { class: 'muted' }, `${on ? 'available' : 'not available'}: ${f.what}`),
        );
      }),
    ),
    h('h3', null, 'Key limits'),
    h('dl', { class: 'kv limits', id: 'adapter-limits' },
      ...LIMITS.flatMap((l) => {
        const v = g.limits[l.key];
        return [h('dt', { title: l.key }, l.name), h('dd', { 'data-limit': l.key }, v === undefined ? '—' : l.fmt(v))];
      }),
    ),
  ];
}

function unavailableView(reason: string, workerHasGpu: boolean): HTMLElement {
  const tips: string[] = [];
  const pageHasGpu = 'gpu' in navigator;
  if (!window.isSecureContext) {
    tips.push('This page is not a secure context. WebGPU only exists on https:// pages and on http://localhost or 127.0.0.1; open it that way.');
  } else if (!pageHasGpu) {
    tips.push('This browser does not offer WebGPU. Use a current Chrome or Edge (113 or later) on desktop; in Chromium on Linux, start it with --enable-unsafe-webgpu.');
  } else if (!workerHasGpu) {
    tips.push('This browser offers WebGPU to pages but not to Web Workers, and whittle runs its engine in a worker. Use a current Chrome or Edge.');
  } else {
    tips.push('WebGPU exists here but no adapter was granted: the GPU may be blocklisted or hardware acceleration turned off. In Chrome, see chrome://gpu.');
  }
  return h('div', { class: 'unavailable', id: 'webgpu-missing', role: 'alert' },
    h('p', { class: 'adapter-name' }, 'WebGPU is not available'),
    ...tips.map((t) => h('p', null, t)),
    h('p', { class: 'muted', id: 'no-gpu-works' }, 'Without it, training and this self-test are off; models, datasets and adapters still work, and the ',
      h('a', { href: '#playground' }, 'Playground'), ' runs a model (with an adapter merged in) on the CPU through ONNX Runtime.'),
    h('details', null, h('summary', null, 'What the engine reported'), h('pre', null, reason)),
  );
}

function resultRow(r: SelftestResult): DocumentFragment {
  const fmt = (x: number) => (Number.isFinite(x) ? x.toExponential(2) : '—');
  const tr = h('tr', { class: r.pass ? 'pass' : 'fail', 'data-pass': String(r.pass), 'data-op': r.op },
    h('td', null, r.op),
    h('td', null, r.check),
    h('td', { class: 'mono' }, r.shape),
    h('td', { class: 'num mono' }, fmt(r.maxAbs)),
    h('td', { class: 'num mono' }, fmt(r.maxRel)),
    h('td', { class: 'num mono', title: 'atol + rtol·|ref|' }, r.error ? '—' : r.atol === 0 && r.rtol === 0 ? 'exact' : `${r.atol.toExponential(0)} + ${r.rtol.toExponential(0)}·|ref|`),
    h('td', null, h('span', { class: `verdict ${r.pass ? 'good' : 'bad'}` }, h('span', { 'aria-hidden': 'true' }, r.pass ? '✓ ' : '✗ '), r.pass ? 'pass' : 'fail')),
  );
  const rows = document.createDocumentFragment();
  rows.appendChild(tr);
  if (r.error) rows.appendChild(h('tr', { class: 'fail error-row' }, h('td', { colspan: 7 }, h('pre', null, r.error))));
  return rows;
}

/** Usage and quota, whether the browser keeps this site's data (and what whittle asked), offline readiness. */
async function showStorage(el: HTMLElement, persistEl: HTMLElement, offlineEl: HTMLElement, again: HTMLButtonElement): Promise<void> {
  const s = navigator.storage;
  const rec = persistRecord();
  if (!s?.estimate) {
    el.textContent = 'Storage: this browser does not report storage (navigator.storage is missing).';
  } else {
    try {
      const est = await s.estimate();
      const usage = est.usage ?? 0, quota = est.quota ?? 0;
      el.dataset.usage = String(usage);
      el.dataset.quota = String(quota);
      el.replaceChildren(
        h('span', { class: 'label' }, 'Storage '),
        `${bytes(usage)} used of ${bytes(quota)} this site may use`,
        quota ? ` (${((100 * usage) / quota).toFixed(usage && usage / quota < 0.001 ? 3 : 1)}%)` : '',
      );
    } catch (e) {
      el.textContent = `Storage: unknown (${(e as Error).message}).`;
    }
  }
  let persisted = false;
  try {
    persisted = (await s?.persisted?.()) ?? false;
  } catch {
    /* unknown: treated as not persisted */
  }
  const state = persisted ? 'granted' : rec?.result === 'unsupported' || !s?.persist ? 'unsupported' : rec ? 'denied' : 'not-asked';
  persistEl.dataset.state = state;
  const asked = rec ? ` (asked ${when(rec.at)}, after ${rec.after})` : '';
  persistEl.replaceChildren(h('span', { class: 'label' }, 'Persistent storage '),
    state === 'granted' ? h('strong', { class: 'good' }, 'granted') : state === 'denied' ? h('strong', { class: 'warn' }, 'not granted') : state === 'unsupported' ? 'not supported by this browser' : 'not asked yet',
    state === 'granted' ? `${asked}: the browser keeps the models, datasets and adapters stored here even when the disk runs low.`
      : state === 'denied' ? `${asked}: the browser may evict what is stored here when the disk runs low (Chrome grants it to sites you bookmark or use often). Export adapters you want to keep.`
        : state === 'unsupported' ? ': stored data may be evicted when the disk runs low.'
          : ': whittle asks the browser after your first download or import, so what you stored is kept.',
  );
  again.hidden = state === 'granted' || state === 'unsupported';
  again.textContent = state === 'not-asked' ? 'Ask now' : 'Ask again';

  const sw = 'serviceWorker' in navigator ? navigator.serviceWorker : null;
  const ready = !!sw?.controller;
  offlineEl.dataset.state = !sw ? 'unsupported' : ready ? 'ready' : 'not-ready';
  offlineEl.replaceChildren(h('span', { class: 'label' }, 'Offline '),
    !sw ? 'this browser has no service workers: the app needs the network to load.'
      : ready ? 'ready: this app is cached in the browser; with the models, datasets and adapters stored here it works with no network.'
        : 'not yet: the app is being cached (a development build is never cached).');
}
