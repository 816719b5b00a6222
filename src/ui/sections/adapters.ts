// The Adapters section: every LoRA adapter in this browser with what it was trained on and how it
// ended (steps, losses, rank, size), rename / delete / try it in the playground, exports through
// src/export as downloads (PEFT, llama.cpp GGUF LoRA, merged model, ONNX of the merged model, a
// cluster recipe), and importing
// a PEFT adapter made elsewhere for a stored base model.
import type { AdapterMeta, ExportFormat } from '../../protocol.ts';
import { button, bytes, download, field, h, int, replace, say, select, when } from '../dom.ts';
import type { Engine } from '../engine.ts';
import { askPersistence } from '../persist.ts';
import type { Section } from '../section.ts';
import { setSetting, type AppState } from '../state.ts';

const FORMATS: Array<{ id: ExportFormat; label: string; what: string }> = [
  { id: 'peft', label: 'PEFT (Hugging Face)', what: 'adapter_config.json + adapter_model.safetensors: load with peft / transformers' },
  { id: 'gguf', label: 'GGUF LoRA (llama.cpp)', what: 'one .gguf adapter for llama.cpp / Ollama (--lora)' },
  { id: 'merged', label: 'Merged model (safetensors)', what: 'the base with the adapter folded in, as a Hugging Face folder' },
  { id: 'merged-gguf', label: 'Merged model (GGUF)', what: 'for a GGUF base: the same .gguf with the adapter merged' },
  { id: 'onnx', label: 'ONNX (merged)', what: 'the base with the adapter merged, as an ONNX folder (config.json, tokenizer, onnx/model.onnx; f32): runs in transformers.js / ONNX Runtime on a CPU, no GPU needed' },
  { id: 'recipe', label: 'Cluster recipe', what: 'the dataset + axolotl config + TRL script to train the same adapter on GPUs' },
];

const num = (v: unknown, d = 4) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '—');

export function adaptersSection(engine: Engine, app: AppState): Section {
  const listBody = h('div', { id: 'adapter-list' });
  const listNote = h('p', { class: 'note', hidden: true });

  function row(a: AdapterMeta): HTMLElement {
    const m = a.metrics;
    const hp = a.hyperparameters as { lora?: { r?: number; lora_alpha?: number; targets?: string[] }; quant?: string; imported?: string };
    const base = app.model(a.baseModel.id);
    const ds = a.datasetId ? app.lists.datasets.find((d) => d.id === a.datasetId) : null;
    const fmt = select(FORMATS.map((f) => [f.id, f.label]), 'peft', { 'aria-label': `Export format for ${a.name}` });
    const dtype = select([['f32', 'f32'], ['f16', 'f16'], ['bf16', 'bf16']], 'f32', { 'aria-label': 'Tensor type' });
    const what = h('span', { class: 'muted small' }, FORMATS[0].what);
    const exportNote = h('p', { class: 'note', hidden: true });
    fmt.addEventListener('change', () => {
      what.textContent = FORMATS.find((f) => f.id === fmt.value)!.what;
      if (fmt.value === 'merged') dtype.value = 'f16';
      dtype.disabled = fmt.value === 'onnx' || fmt.value === 'recipe';
      if (fmt.value === 'onnx') dtype.value = 'f32';
    });
    const exportBtn = button('Export', async () => {
      exportBtn.disabled = true;
      say(exportNote, 'busy', 'Exporting…');
      try {
        const r = await engine.request({ type: 'adapter-export', adapterId: a.id, format: fmt.value as ExportFormat, dtype: dtype.value as 'f32' | 'f16' | 'bf16' });
        download(r.name, r.bytes, r.mime);
        say(exportNote, 'good', `${r.name} (${bytes(r.bytes.byteLength)}): ${r.files.join(', ')}${r.notes.length ? ` — ${r.notes.join('; ')}` : ''}`);
      } catch (e) {
        say(exportNote, 'bad', `Export failed: ${(e as Error).message}`);
      } finally {
        exportBtn.disabled = false;
      }
    }, { class: 'ghost', 'data-export': a.id });
    return h('li', { class: 'row adapter-row', 'data-adapter': a.id },
      h('div', { class: 'row-main' },
        h('div', { class: 'row-title' }, h('strong', { class: 'adapter-title' }, a.name), hp.imported ? h('span', { class: 'pill-warn' }, 'imported') : null),
        h('div', { class: 'muted small' },
          `${base?.name ?? a.baseModel.id}${ds ? ` · ${ds.name}` : ''} · rank ${hp.lora?.r ?? '?'} · alpha ${hp.lora?.lora_alpha ?? '?'}` +
          `${hp.lora?.targets ? ` · ${hp.lora.targets.join(',')}` : ''} · ${bytes(a.bytes)} · ${when(a.createdAt)}`),
        hp.imported ? null : h('dl', { class: 'kv inline-kv small' },
          h('dt', null, 'steps'), h('dd', null, int(Number(m.steps ?? 0))),
          h('dt', null, 'final loss'), h('dd', { 'data-metric': 'finalLoss' }, num(m.finalLoss)),
          h('dt', null, 'validation loss'), h('dd', null, num(m.validLoss)),
          h('dt', null, 'token accuracy'), h('dd', null, typeof m.finalAccuracy === 'number' ? `${(100 * m.finalAccuracy).toFixed(1)}%` : '—'),
        ),
        h('div', { class: 'actions tight' }, fmt, dtype, exportBtn, what),
        exportNote,
      ),
      h('div', { class: 'row-actions' },
        button('Try it', () => {
          setSetting('pgModel', a.baseModel.id);
          setSetting('pgAdapter', a.id);
          location.hash = '#playground';
        }, { class: 'ghost', 'aria-label': `Try ${a.name} in the playground` }),
        button('Rename', async () => {
          const name = prompt('New name', a.name)?.trim();
          if (!name || name === a.name) return;
          try {
            await engine.request({ type: 'adapter-rename', adapterId: a.id, name });
          } catch (e) {
            say(listNote, 'bad', (e as Error).message);
          }
        }, { class: 'ghost', 'aria-label': `Rename ${a.name}` }),
        button('Delete', async () => {
          if (!confirm(`Delete the adapter "${a.name}"? Export it first if you want to keep it.`)) return;
          try {
            await engine.request({ type: 'adapter-delete', adapterId: a.id });
          } catch (e) {
            say(listNote, 'bad', (e as Error).message);
          }
        }, { class: 'ghost danger', 'aria-label': `Delete ${a.name}` }),
      ),
    );
  }

  function renderList(): void {
    const as = [...app.lists.adapters].reverse();
    replace(listBody, as.length
      ? h('ul', { class: 'rows' }, ...as.map(row))
      : h('p', { class: 'empty' }, 'No adapter yet: a finished training run saves one here.'));
  }
  app.subscribe('adapters', renderList);
  app.subscribe('models', renderList);
  app.subscribe('datasets', renderList);
  renderList();

  // ---- import
  const baseSel = select([], undefined, { id: 'imp-model' });
  const nameInput = h('input', { type: 'text', id: 'imp-name', placeholder: 'a name for the adapter' });
  const dirPick = h('input', { type: 'file', id: 'imp-folder', webkitdirectory: true, multiple: true, class: 'sr-only' }) as HTMLInputElement;
  const filesPick = h('input', { type: 'file', id: 'imp-files', multiple: true, accept: '.json,.safetensors', class: 'sr-only' }) as HTMLInputElement;
  const impNote = h('p', { class: 'note', id: 'imp-note', hidden: true });
  function refreshBases(): void {
    const ms = app.lists.models.filter((m) => m.complete);
    const cur = baseSel.value;
    replace(baseSel, ...ms.map((m) => h('option', { value: m.id }, m.name)));
    if (ms.some((m) => m.id === cur)) baseSel.value = cur;
  }
  app.subscribe('models', refreshBases);
  refreshBases();
  async function importFiles(files: File[], fallback: string): Promise<void> {
    if (!baseSel.value) {
      say(impNote, 'bad', 'Add the base model first (Models page): an adapter is checked against it.');
      return;
    }
    const name = nameInput.value.trim() || fallback;
    say(impNote, 'busy', 'Importing…');
    try {
      const meta = await engine.request({
        type: 'adapter-import', modelId: baseSel.value, name,
        files: files.map((f) => ({ path: f.webkitRelativePath || f.name, file: f })),
      });
      say(impNote, 'good', `Imported "${meta.name}" (${meta.tensorCount} tensors).`);
      void askPersistence('the first adapter import');
      nameInput.value = '';
    } catch (e) {
      say(impNote, 'bad', `Not imported: ${(e as Error).message}`);
    }
  }
  dirPick.addEventListener('change', () => {
    const fs = [...(dirPick.files ?? [])];
    if (fs.length) void importFiles(fs, fs[0].webkitRelativePath.split('/')[0] || 'imported adapter');
    dirPick.value = '';
  });
  filesPick.addEventListener('change', () => {
    const fs = [...(filesPick.files ?? [])];
    if (fs.length) void importFiles(fs, 'imported adapter');
    filesPick.value = '';
  });
  const keyOpen = (input: HTMLInputElement) => ((e: KeyboardEvent) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      input.click();
    }
  }) as EventListener;
  const importCard = h('article', { class: 'card', 'aria-labelledby': 'imp-h' },
    h('h2', { id: 'imp-h' }, 'Import a PEFT adapter'),
    h('p', { class: 'muted' }, 'An adapter trained elsewhere (peft, axolotl, TRL, or a whittle recipe): its folder holds adapter_config.json and adapter_model.safetensors.'),
    h('div', { class: 'grid3' }, field('Base model', baseSel), field('Name', nameInput)),
    h('div', { class: 'actions' },
      h('label', { for: 'imp-folder', class: 'button ghost', tabindex: 0, role: 'button', onkeydown: keyOpen(dirPick) }, 'Choose the adapter folder…'),
      h('label', { for: 'imp-files', class: 'button ghost', tabindex: 0, role: 'button', onkeydown: keyOpen(filesPick) }, 'Choose the two files…'),
      dirPick, filesPick,
    ),
    impNote,
  );

  const el = h('section', { class: 'section', id: 'section-adapters', 'aria-labelledby': 'adapters-title' },
    h('header', { class: 'section-head' },
      h('h1', { id: 'adapters-title' }, 'Adapters'),
      h('p', { class: 'lede' }, 'What training produced: small files that turn the base model into your model. Export them to run anywhere.'),
    ),
    h('div', { class: 'cards' }, h('article', { class: 'card', 'aria-labelledby': 'ad-list-h' }, h('h2', { id: 'ad-list-h' }, 'Your adapters'), listNote, listBody), importCard),
  );
  return { id: 'adapters', title: 'Adapters', el, onShow: () => void app.refresh('adapters') };
}
