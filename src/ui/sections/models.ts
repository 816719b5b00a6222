// The Models section: the models stored in this browser (size, format, quantization, config and
// base memory per storage format), adding one from the Hugging Face Hub (a built-in list, or any
// repo id) or from local files (a folder of HF files, or one .gguf; picker or drag and drop), with
// progress (bytes, percent, speed, time left), resuming a cut download, and deleting.
// The Hub server is a setting (default https://huggingface.co): the only address whittle contacts,
// and only when the user starts a download.
import type { HubProgress, ModelDetails, ModelSummary } from '../../protocol.ts';
import { button, bytes, count, duration, field, h, int, replace, say } from '../dom.ts';
import type { Engine } from '../engine.ts';
import { askPersistence } from '../persist.ts';
import type { Section } from '../section.ts';
import { setSetting, setting, type AppState } from '../state.ts';

export const HUB_DEFAULT = 'https://huggingface.co';

/** Models a workshop can start from: name, repo, parameters and download size (the weights, bf16 unless noted). */
export const HUB_MODELS: Array<{ repo: string; name: string; params: string; size: number; note: string }> = [
  { repo: 'HuggingFaceTB/SmolLM2-135M-Instruct', name: 'SmolLM2-135M-Instruct', params: '135M', size: 269e6, note: 'the best first choice: the smallest instruction-tuned model here' },
  { repo: 'HuggingFaceTB/SmolLM2-360M-Instruct', name: 'SmolLM2-360M-Instruct', params: '362M', size: 724e6, note: 'about 2.7× the parameters of the 135M, so roughly that much more work per token' },
  { repo: 'Qwen/Qwen2.5-0.5B-Instruct', name: 'Qwen2.5-0.5B-Instruct', params: '494M', size: 988e6, note: 'multilingual; a 152k-token vocabulary makes it the heaviest per token' },
  { repo: 'TinyLlama/TinyLlama-1.1B-Chat-v1.0', name: 'TinyLlama-1.1B-Chat', params: '1.1B', size: 2.2e9, note: 'the largest here: keep the base in q4 (about 0.7 GB of weights)' },
  { repo: 'raincandy-u/TinyStories-656K', name: 'TinyStories-656K', params: '656K', size: 2.7e6, note: 'a toy story model (not a chat model), small enough to try the app on any adapter' },
];

function sourceText(m: ModelSummary): string {
  return m.source.kind === 'hub' ? `Hub · ${m.source.repo}${m.source.revision !== 'main' ? `@${m.source.revision}` : ''}` : `local files · ${m.source.name}`;
}

function formatText(m: ModelSummary): string {
  if (m.quant) return `${m.quant.format}${m.quant.detail ? ` ${m.quant.detail}` : ''}`;
  return m.format === 'gguf' ? 'GGUF' : 'safetensors';
}

/** '12.0 MiB of 270 MiB · 4% · 3.1 MiB/s · 1m 20s left' */
export function progressText(p: HubProgress): string {
  if (p.phase === 'resolving') return 'finding the files…';
  if (p.phase === 'verifying') return `checking ${p.file ?? 'the files'} (${p.fileTotal ? Math.round((100 * p.fileDone) / p.fileTotal) : 0}%)…`;
  if (p.phase === 'done') return 'done';
  const parts = [`${bytes(p.done)} of ${bytes(p.total)}`, `${Math.floor(p.percent)}%`];
  if (p.bytesPerSecond) parts.push(`${bytes(p.bytesPerSecond)}/s`);
  if (p.etaSeconds !== null && p.etaSeconds !== undefined && p.percent < 100) parts.push(`${duration(p.etaSeconds * 1000)} left`);
  return parts.join(' · ');
}

/** Every file under a dropped folder, with its path relative to that folder. */
async function filesOfEntry(entry: FileSystemEntry, prefix = ''): Promise<Array<{ path: string; file: File }>> {
  if (entry.isFile) {
    const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
    return [{ path: prefix + entry.name, file }];
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const out: Array<{ path: string; file: File }> = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
    if (!batch.length) break;
    for (const e of batch) out.push(...(await filesOfEntry(e, `${prefix}${entry.name}/`)));
  }
  return out;
}

export function modelsSection(engine: Engine, app: AppState): Section {
  // ---- stored models
  const listBody = h('div', { id: 'model-list' });
  const listNote = h('p', { class: 'note', hidden: true });
  const listCard = h('article', { class: 'card', 'aria-labelledby': 'models-h' },
    h('h2', { id: 'models-h' }, 'Models in this browser'),
    h('p', { class: 'muted' }, 'Stored in this browser (IndexedDB), so they work offline and survive reloads. Training and the playground load them from here.'),
    listNote, listBody);

  const details = new Map<string, Promise<ModelDetails>>();
  const open = new Set<string>();

  function detailsView(m: ModelSummary): HTMLElement {
    const box = h('div', { class: 'model-details', 'data-model-details': m.id }, h('p', { class: 'muted' }, 'Reading the config…'));
    let p = details.get(m.id);
    if (!p) {
      p = engine.request({ type: 'model-info', modelId: m.id });
      details.set(m.id, p);
      p.catch(() => details.delete(m.id));
    }
    p.then((d) => {
      const c = d.config;
      replace(box,
        h('dl', { class: 'kv config' },
          h('dt', null, 'Architecture'), h('dd', { 'data-field': 'arch' }, c.arch),
          h('dt', null, 'Parameters'), h('dd', { 'data-field': 'params' }, `${count(d.params)} (${int(d.params)})`),
          h('dt', null, 'Layers'), h('dd', { 'data-field': 'layers' }, String(c.layers)),
          h('dt', null, 'Hidden size'), h('dd', { 'data-field': 'hidden' }, String(c.hidden)),
          h('dt', null, 'Attention heads'), h('dd', null, `${c.heads} (${c.kvHeads} key/value, head size ${c.headDim})`),
          h('dt', null, 'Feed-forward size'), h('dd', null, String(c.ffn)),
          h('dt', null, 'Vocabulary'), h('dd', { 'data-field': 'vocab' }, int(c.vocab)),
          h('dt', null, 'Context'), h('dd', null, `${int(c.maxPos)} tokens`),
          h('dt', null, 'Tokenizer'), h('dd', null, `${d.tokenizer.kind}${d.tokenizer.eos ? `, ends with ${d.tokenizer.eos}` : ''}`),
          h('dt', null, 'Chat template'), h('dd', { 'data-field': 'template' }, d.chatTemplate ? 'yes: chat datasets are formatted with it'
            : 'none: a base model; chat datasets use the plain "User: / Assistant:" format'),
        ),
        h('h3', null, 'Base model in GPU memory'),
        h('table', { class: 'mem', 'data-field': 'memory' },
          h('thead', null, h('tr', null, h('th', null, 'f32'), h('th', null, 'q8 (8-bit blocks)'), h('th', null, 'q4 (4-bit blocks)'))),
          h('tbody', null, h('tr', null, h('td', { class: 'num' }, bytes(d.baseBytes.f32)), h('td', { class: 'num' }, bytes(d.baseBytes.q8)), h('td', { class: 'num' }, bytes(d.baseBytes.q4))))),
        h('p', { class: 'muted small' }, 'Training adds the LoRA adapter, its optimizer state and activations; the Train page predicts the total before you start.'),
      );
    }, (e: Error) => replace(box, h('p', { class: 'bad' }, `Could not read this model: ${e.message}`)));
    return box;
  }

  function renderList(): void {
    const err = app.error('models');
    if (err) say(listNote, 'bad', `Could not list the models: ${err}`);
    else listNote.hidden = true;
    const ms = app.lists.models;
    if (!ms.length) {
      replace(listBody, h('p', { class: 'empty', id: 'models-empty' }, 'No model yet. Download one from the Hub below (TinyStories-656K takes seconds), or add files from your computer.'));
      return;
    }
    replace(listBody, h('ul', { class: 'rows' }, ...ms.map((m) => {
      const isOpen = open.has(m.id);
      const toggle = button(isOpen ? 'Hide details' : 'Details', () => {
        if (open.has(m.id)) open.delete(m.id);
        else open.add(m.id);
        renderList();
      }, { 'aria-expanded': String(isOpen), class: 'ghost', disabled: !m.complete });
      const del = button('Delete', async () => {
        if (!confirm(`Delete ${m.name} (${bytes(m.totalBytes)}) from this browser? Adapters trained on it stay, but need the model to run.`)) return;
        try {
          await engine.request({ type: 'model-delete', modelId: m.id });
          details.delete(m.id);
        } catch (e) {
          say(listNote, 'bad', `Could not delete ${m.name}: ${(e as Error).message}`);
        }
      }, { class: 'ghost danger' });
      const resume = !m.complete && m.source.kind === 'hub'
        ? button('Resume download', () => startDownload({ repo: (m.source as { repo: string }).repo, revision: (m.source as { revision: string }).revision, name: m.name, file: m.format === 'gguf' ? m.files[0]?.name : undefined }), { class: 'ghost' })
        : null;
      const status = m.complete
        ? h('span', { class: 'pill-ok' }, 'ready')
        : h('span', { class: 'pill-warn' }, `partial: ${bytes(m.storedBytes)} of ${bytes(m.totalBytes)}`);
      return h('li', { class: 'row', 'data-model': m.id, 'data-complete': String(m.complete) },
        h('div', { class: 'row-main' },
          h('div', { class: 'row-title' }, h('strong', { class: 'model-name' }, m.name), ' ', status),
          h('div', { class: 'muted small' }, `${sourceText(m)} · ${formatText(m)} · ${bytes(m.totalBytes)} · ${m.files.length} file${m.files.length === 1 ? '' : 's'}`),
        ),
        h('div', { class: 'row-actions' }, resume, toggle, del),
        isOpen ? detailsView(m) : null,
      );
    })));
  }
  app.subscribe('models', renderList);
  renderList();

  // ---- downloads and imports in progress
  const jobsBox = h('div', { class: 'transfers', id: 'transfers', 'aria-live': 'polite' });

  function transfer(title: string): { el: HTMLElement; update: (p: HubProgress) => void; done: (text: string, ok: boolean) => void; onCancel: (f: () => void) => void } {
    const bar = h('progress', { max: 100, value: 0, 'aria-label': `${title} progress` });
    const text = h('span', { class: 'transfer-text mono' }, 'starting…');
    const cancel = button('Cancel', () => undefined, { class: 'ghost small' });
    const el = h('div', { class: 'transfer', 'data-state': 'running' }, h('div', { class: 'transfer-head' }, h('strong', null, title), cancel), bar, text);
    jobsBox.prepend(el);
    return {
      el,
      update: (p) => {
        if (p.phase === 'downloading' || p.phase === 'done') bar.value = p.percent;
        else bar.removeAttribute('value');
        text.textContent = progressText(p);
        el.dataset.percent = String(Math.floor(p.percent));
      },
      done: (t, ok) => {
        bar.value = ok ? 100 : bar.value;
        el.dataset.state = ok ? 'done' : 'failed';
        text.textContent = t;
        text.className = `transfer-text ${ok ? 'good' : 'bad'}`;
        cancel.textContent = 'Dismiss';
        cancel.onclick = () => el.remove();
        if (ok) setTimeout(() => el.remove(), 15_000);
      },
      onCancel: (f) => (cancel.onclick = f),
    };
  }


  async function startDownload(o: { repo: string; revision?: string; file?: string; name?: string }): Promise<void> {
    const baseUrl = serverInput.value.trim().replace(/\/+$/, '') || HUB_DEFAULT;
    const t = transfer(o.name ?? o.repo);
    const p = engine.start({ type: 'model-download', repo: o.repo, revision: o.revision, file: o.file, baseUrl, name: o.name }, (m) => {
      if (m.type === 'progress') t.update(m.progress);
    });
    t.onCancel(() => void engine.abort(p.id));
    try {
      const r = await p.result;
      t.done(r.cached ? 'already stored: nothing downloaded' : `stored ${bytes(r.totalBytes)}${r.resumedBytes ? ` (resumed: ${bytes(r.resumedBytes)} were already here)` : ''}`, true);
      open.add(r.id);
      renderList();
      void askPersistence('the first download'); // models are big to fetch again: ask the browser to keep them
    } catch (e) {
      t.done(`${(e as Error).message}`, false);
    }
  }

  // ---- Hub card
  const serverInput = h('input', { type: 'url', id: 'hub-server', value: setting('hubBaseUrl', HUB_DEFAULT), spellcheck: false, autocomplete: 'off' });
  serverInput.addEventListener('change', () => setSetting('hubBaseUrl', serverInput.value.trim() || HUB_DEFAULT));
  const repoInput = h('input', { type: 'text', id: 'hub-repo', placeholder: 'owner/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct', spellcheck: false, autocomplete: 'off' });
  const revInput = h('input', { type: 'text', id: 'hub-revision', placeholder: 'main', spellcheck: false, size: 10 });
  const fileInput = h('input', { type: 'text', id: 'hub-file', placeholder: 'optional: a .gguf file in the repo', spellcheck: false });
  const repoNote = h('p', { class: 'note', hidden: true });
  const anyRepo = h('form', { class: 'inline-form', id: 'hub-any' },
    field('Repository', repoInput),
    field('Revision', revInput),
    field('File', fileInput),
    h('button', { type: 'submit', class: 'primary', id: 'hub-download' }, 'Download'),
  );
  anyRepo.addEventListener('submit', (e) => {
    e.preventDefault();
    const repo = repoInput.value.trim();
    if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repo)) {
      say(repoNote, 'bad', 'Give a repository id like owner/name.');
      return;
    }
    repoNote.hidden = true;
    void startDownload({ repo, revision: revInput.value.trim() || undefined, file: fileInput.value.trim() || undefined });
  });
  const hubCard = h('article', { class: 'card', 'aria-labelledby': 'hub-h' },
    h('h2', { id: 'hub-h' }, 'Download from the Hugging Face Hub'),
    h('ul', { class: 'rows hub-list' }, ...HUB_MODELS.map((x) => h('li', { class: 'row', 'data-hub': x.repo },
      h('div', { class: 'row-main' },
        h('div', { class: 'row-title' }, h('strong', null, x.name), ' ', h('span', { class: 'muted' }, `${x.params} parameters · ${x.size >= 1e9 ? `${(x.size / 1e9).toFixed(1)} GB` : `${x.size < 1e7 ? (x.size / 1e6).toFixed(1) : Math.round(x.size / 1e6)} MB`} download`)),
        h('div', { class: 'muted small' }, x.note)),
      h('div', { class: 'row-actions' }, button('Download', () => void startDownload({ repo: x.repo, name: x.name }), { class: 'ghost', 'aria-label': `Download ${x.name}` })),
    ))),
    h('h3', null, 'Any repository'),
    anyRepo, repoNote,
    h('details', { class: 'server' },
      h('summary', null, 'Hub server'),
      field('Server address', serverInput, 'Downloads go to {server}/{repo}/resolve/{revision}/{file}. Change it for a mirror or a local copy; it is the only address whittle ever contacts, and only when you download.'),
    ),
  );

  // ---- local files card
  const nameInput = h('input', { type: 'text', id: 'local-name', placeholder: 'a name (default: the folder or file name)' });
  const dirPick = h('input', { type: 'file', id: 'local-folder', webkitdirectory: true, multiple: true, class: 'sr-only' }) as HTMLInputElement;
  const ggufPick = h('input', { type: 'file', id: 'local-gguf', accept: '.gguf', class: 'sr-only' }) as HTMLInputElement;
  const localNote = h('p', { class: 'note', hidden: true });
  async function importFiles(files: Array<{ path: string; file: File }>, fallbackName: string): Promise<void> {
    const name = nameInput.value.trim() || fallbackName;
    const t = transfer(name);
    const p = engine.start({ type: 'model-import', name, files }, (m) => {
      if (m.type === 'progress') t.update(m.progress);
    });
    t.onCancel(() => void engine.abort(p.id));
    try {
      const r = await p.result;
      t.done(`stored ${bytes(r.totalBytes)}`, true);
      nameInput.value = '';
      open.add(r.id);
      renderList();
      void askPersistence('the first import');
    } catch (e) {
      t.done((e as Error).message, false);
    }
  }
  dirPick.addEventListener('change', () => {
    const fs = [...(dirPick.files ?? [])];
    if (!fs.length) return;
    const root = fs[0].webkitRelativePath.split('/')[0] || 'model';
    void importFiles(fs.map((f) => ({ path: f.webkitRelativePath.split('/').slice(1).join('/') || f.name, file: f })), root);
    dirPick.value = '';
  });
  ggufPick.addEventListener('change', () => {
    const f = ggufPick.files?.[0];
    if (!f) return;
    void importFiles([{ path: f.name, file: f }], f.name.replace(/\.gguf$/i, ''));
    ggufPick.value = '';
  });
  const drop = h('div', { class: 'dropzone', id: 'model-drop', tabindex: -1 },
    h('p', null, h('strong', null, 'Drop a model folder or a .gguf file here')),
    h('p', { class: 'muted small' }, 'A Hugging Face folder needs config.json, tokenizer.json and the .safetensors weights. Files are copied into this browser; nothing is uploaded.'),
    h('div', { class: 'actions' },
      h('label', { for: 'local-folder', class: 'button ghost', tabindex: 0, role: 'button', onkeydown: ((e: KeyboardEvent) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); dirPick.click(); } }) as EventListener }, 'Choose a folder…'),
      h('label', { for: 'local-gguf', class: 'button ghost', tabindex: 0, role: 'button', onkeydown: ((e: KeyboardEvent) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); ggufPick.click(); } }) as EventListener }, 'Choose a .gguf file…'),
    ),
    dirPick, ggufPick,
  );
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const items = [...(e.dataTransfer?.items ?? [])].map((i) => i.webkitGetAsEntry?.()).filter((x): x is FileSystemEntry => !!x);
    try {
      if (items.length === 1 && items[0].isDirectory) {
        const all = await filesOfEntry(items[0]);
        void importFiles(all.map((f) => ({ path: f.path.split('/').slice(1).join('/'), file: f.file })), items[0].name);
      } else {
        const files = [...(e.dataTransfer?.files ?? [])];
        if (!files.length) return;
        const gg = files.find((f) => f.name.toLowerCase().endsWith('.gguf'));
        if (gg && files.length === 1) void importFiles([{ path: gg.name, file: gg }], gg.name.replace(/\.gguf$/i, ''));
        else void importFiles(files.map((f) => ({ path: f.name, file: f })), 'model');
      }
    } catch (err) {
      say(localNote, 'bad', `Could not read the dropped files: ${(err as Error).message}`);
    }
  });
  const localCard = h('article', { class: 'card', 'aria-labelledby': 'local-h' },
    h('h2', { id: 'local-h' }, 'Add from your computer'),
    field('Name', nameInput),
    drop, localNote,
  );

  const el = h('section', { class: 'section', id: 'section-models', 'aria-labelledby': 'models-title' },
    h('header', { class: 'section-head' },
      h('h1', { id: 'models-title' }, 'Models'),
      h('p', { class: 'lede' }, 'The base models you fine-tune. Pick a small instruction-tuned model to start; everything stays in this browser.'),
    ),
    h('div', { class: 'cards' }, listCard, jobsBox, hubCard, localCard),
  );
  return { id: 'models', title: 'Models', el, onShow: () => void app.refresh('models') };
}
