// The Datasets section: a JSONL editor fed by an upload, a paste or a built-in example, checked as
// you type (line-precise errors and warnings; the engine worker validates), statistics and a
// token-length histogram with a model's tokenizer, a token view of any example that shows what the
// loss covers, the option to train on the valid lines only, and the stored datasets (open,
// rename, delete).
import type { DatasetCheck, Issue, TrainOn } from '../../protocol.ts';
import { histogram } from '../chart.ts';
import { button, bytes, field, h, int, replace, say, select, when } from '../dom.ts';
import type { Engine } from '../engine.ts';
import { askPersistence } from '../persist.ts';
import type { Section } from '../section.ts';
import { setSetting, setting, type AppState } from '../state.ts';

/** Built-in datasets (src/ui/examples/*.jsonl, written by make-examples.ts), loaded on demand. */
const EXAMPLES: Array<{ id: string; name: string; what: string; load: () => Promise<string> }> = [
  { id: 'iso-dates', name: 'ISO dates', what: 'chat · a fixed answer format: any written date → YYYY-MM-DD', load: async () => (await import('../examples/iso-dates.jsonl?raw')).default },
  { id: 'pirate', name: 'Pirate captain', what: 'chat · a persona and style: correct answers in pirate speak', load: async () => (await import('../examples/pirate.jsonl?raw')).default },
  { id: 'story-endings', name: 'Story endings', what: 'prompt/completion · for tiny base models such as TinyStories', load: async () => (await import('../examples/story-endings.jsonl?raw')).default },
];

const FORMAT_NAMES: Record<string, string> = { chat: 'chat messages', prompt_completion: 'prompt / completion', text: 'plain text' };

function plural(n: number, w: string): string {
  return `${int(n)} ${w}${n === 1 ? '' : 's'}`;
}

export function datasetsSection(engine: Engine, app: AppState): Section {
  // ---- editor state
  let check: DatasetCheck | null = null;
  let checking = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;

  const nameInput = h('input', { type: 'text', id: 'ds-name', placeholder: 'e.g. support answers v1', autocomplete: 'off' });
  const text = h('textarea', { id: 'ds-text', class: 'mono editor', rows: 14, spellcheck: false, wrap: 'off',
    placeholder: '{"messages": [{"role": "user", "content": "…"}, {"role": "assistant", "content": "…"}]}\n{"prompt": "…", "completion": "…"}\n{"text": "…"}' });
  const upload = h('input', { type: 'file', id: 'ds-file', accept: '.jsonl,.json,.txt,application/jsonl,application/json', class: 'sr-only' }) as HTMLInputElement;
  const modelSel = select([['', 'none (structure only)']], undefined, { id: 'ds-model' });
  const trainOnSel = select([['assistant', 'assistant replies / completions'], ['all', 'every token']], setting('trainOn', 'assistant'), { id: 'ds-train-on' });
  const status = h('p', { id: 'ds-status', class: 'note', hidden: true });
  const summary = h('div', { id: 'ds-summary' });
  const issuesBox = h('div', { id: 'ds-issues' });
  const useValid = h('input', { type: 'checkbox', id: 'ds-use-valid' }) as HTMLInputElement;
  const useValidLabel = h('label', { for: 'ds-use-valid', id: 'ds-use-valid-label' });
  const useValidRow = h('div', { class: 'checkrow', hidden: true }, useValid, useValidLabel);
  const saveBtn = h('button', { type: 'button', class: 'primary', id: 'ds-save', disabled: true }, 'Save dataset');
  const saveNote = h('p', { class: 'note', id: 'ds-save-note', hidden: true });
  const statsBox = h('div', { id: 'ds-stats' });
  const tokensBox = h('div', { id: 'ds-tokens' });

  function refreshModels(): void {
    const cur = modelSel.value || setting('datasetModel', '');
    const ms = app.lists.models.filter((m) => m.complete);
    replace(modelSel, h('option', { value: '' }, 'none (structure only)'), ...ms.map((m) => h('option', { value: m.id }, m.name)));
    modelSel.value = ms.some((m) => m.id === cur) ? cur : ms[0]?.id ?? '';
  }
  app.subscribe('models', () => {
    const before = modelSel.value;
    refreshModels();
    if (modelSel.value !== before && text.value.trim()) schedule(0);
  });
  refreshModels();

  function lineRange(n: number): [number, number] {
    const v = text.value;
    let start = 0;
    for (let i = 1; i < n; i++) {
      const j = v.indexOf('\n', start);
      if (j < 0) return [v.length, v.length];
      start = j + 1;
    }
    const end = v.indexOf('\n', start);
    return [start, end < 0 ? v.length : end];
  }

  function goToLine(n: number): void {
    const [a, b] = lineRange(n);
    text.focus();
    text.setSelectionRange(a, b);
    const lh = parseFloat(getComputedStyle(text).lineHeight) || 18;
    text.scrollTop = Math.max(0, (n - 3) * lh);
  }

  function issueItem(i: Issue): HTMLElement {
    const where = i.line !== undefined
      ? button(`line ${i.line}${i.column ? `:${i.column}` : ''}`, () => goToLine(i.line!), { class: 'linklike mono', 'data-line': i.line, title: 'Show this line in the editor' })
      : h('span', { class: 'muted mono' }, 'file');
    return h('li', { class: `issue issue-${i.severity}`, 'data-code': i.code, 'data-line': i.line ?? '' },
      h('span', { class: `sev sev-${i.severity}` }, i.severity),
      where,
      i.path ? h('code', null, i.path) : null,
      h('span', { class: 'msg' }, i.message),
    );
  }

  function renderCheck(): void {
    if (!check) {
      replace(summary);
      replace(issuesBox);
      replace(statsBox);
      replace(tokensBox);
      useValidRow.hidden = true;
      saveBtn.disabled = true;
      return;
    }
    const r = check.report;
    const ok = r.errors === 0 && r.examples > 0;
    summary.dataset.state = ok ? 'valid' : 'invalid';
    replace(summary, h('p', { class: `verdict-line ${ok ? 'good' : 'bad'}`, id: 'ds-verdict' },
      h('strong', null, ok ? 'Valid. ' : r.examples ? 'Not valid yet. ' : 'Nothing usable. '),
      `${plural(r.lines, 'line')} · ${plural(r.examples, 'valid example')}`,
      r.format ? ` · ${FORMAT_NAMES[r.format] ?? r.format}` : '',
      ` · ${plural(r.errors, 'error')} · ${plural(r.warnings, 'warning')} · ${bytes(r.bytes)}`,
    ));
    const sorted = [...r.issues].sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : b.severity === 'error' ? 1 : a.severity === 'warning' ? -1 : 1));
    const shown = sorted.filter((i) => i.severity !== 'info');
    const infos = sorted.filter((i) => i.severity === 'info');
    replace(issuesBox,
      shown.length ? h('ul', { class: 'issues', id: 'ds-issue-list' }, ...shown.slice(0, 200).map(issueItem)) : null,
      shown.length > 200 ? h('p', { class: 'muted small' }, `… and ${shown.length - 200} more`) : null,
      infos.length ? h('details', { class: 'infos' }, h('summary', null, plural(infos.length, 'note')), h('ul', { class: 'issues' }, ...infos.slice(0, 100).map(issueItem))) : null,
      check.issuesShown < r.issues.length ? h('p', { class: 'muted small' }, `${r.issues.length - check.issuesShown} more issues are not listed.`) : null,
    );
    const bad = check.badLines;
    useValidRow.hidden = !(bad.length && r.examples);
    replace(useValidLabel, `Use the ${plural(r.examples, 'valid line')} and leave out ${bad.length === 1 ? `line ${bad[0]}` : `${bad.length} lines (${bad.slice(0, 8).join(', ')}${bad.length > 8 ? ', …' : ''})`}`);
    if (!bad.length) useValid.checked = false;
    saveBtn.disabled = !(r.examples > 0 && (r.errors === 0 || useValid.checked));
    renderStats();
  }

  function renderStats(): void {
    const st = check?.stats;
    if (!check || !st) {
      replace(statsBox, check && !check.modelId ? h('p', { class: 'muted' }, 'Choose a model above to count tokens, see the length histogram and the token view.') : null);
      replace(tokensBox);
      return;
    }
    const model = app.model(check.modelId!);
    // Time per epoch: this dataset's tokens at the tokens/s the newest run of this model measured
    // on this adapter (src/train reports real tokens per second); none measured yet → say so.
    const measured = app.lists.jobs
      .filter((j) => j.modelId === check!.modelId && (j.last?.tokensPerSec ?? 0) > 0)
      .sort((a, b) => b.createdAt - a.createdAt)[0];
    const tps = measured?.last?.tokensPerSec ?? 0;
    const epochTime = tps > 0
      ? `about ${duration(st.totalTokens / tps)} at ${tps.toFixed(0)} tokens/s (measured by "${measured!.name ?? measured!.id}" on this GPU; batch and sequence settings change it)`
      : 'unknown until a training run of this model measures tokens/s on this GPU';
    replace(statsBox,
      h('h3', null, `Tokens (${model?.name ?? check.modelId} tokenizer)`),
      h('dl', { class: 'kv stats', id: 'ds-stat-list' },
        h('dt', null, 'Examples'), h('dd', { 'data-stat': 'examples' }, int(st.examples)),
        h('dt', null, 'Tokens per example'), h('dd', { 'data-stat': 'tokens' }, `${int(st.tokens.min)} – ${int(st.tokens.max)} (median ${int(st.tokens.median)}, mean ${st.tokens.mean.toFixed(1)})`),
        h('dt', null, 'Tokens per epoch'), h('dd', { 'data-stat': 'total' }, int(st.totalTokens)),
        h('dt', null, 'Time per epoch'), h('dd', { 'data-stat': 'epoch-time' }, epochTime),
        h('dt', null, 'Trained tokens'), h('dd', { 'data-stat': 'trained' }, `${int(st.trainedTokens)} (${((100 * st.trainedTokens) / Math.max(1, st.totalTokens)).toFixed(0)}% of the tokens carry the loss)`),
        st.truncatedExamples ? h('dt', null, 'Cut') : null,
        st.truncatedExamples ? h('dd', { class: 'warn' }, `${plural(st.truncatedExamples, 'example')} longer than ${int(st.maxSeqLen)} tokens lose ${int(st.tokensCut)} tokens`) : null,
      ),
      h('figure', { class: 'hist', id: 'ds-histogram' }, histogram(st.histogram, { label: 'tokens', cut: st.maxSeqLen }), h('figcaption', { class: 'muted small' }, 'Length of each example in tokens.')),
    );
    renderTokenPicker();
  }

  // ---- token view
  let tokenLine = 0;
  function renderTokenPicker(): void {
    if (!check?.stats || !check.exampleLines.length) {
      replace(tokensBox);
      return;
    }
    const lines = check.exampleLines;
    if (!lines.includes(tokenLine)) tokenLine = lines[0];
    const pick = select(lines.slice(0, 2000).map((l) => [String(l), `line ${l}`]), String(tokenLine), { id: 'ds-token-line' });
    const view = h('div', { class: 'tokens', id: 'ds-token-view', 'aria-live': 'polite' }, h('span', { class: 'muted' }, 'Tokenizing…'));
    const show = async (line: number) => {
      tokenLine = line;
      pick.value = String(line);
      try {
        const r = await engine.request({ type: 'dataset-preview', text: text.value, line, modelId: check!.modelId!, trainOn: trainOnSel.value as TrainOn });
        view.dataset.trained = String(r.trained);
        view.dataset.total = String(r.total);
        replace(view, ...r.tokens.map((t) => {
          const shown = t.text.replace(/\n/g, '↵\n');
          return h('span', { class: `tok${t.trained ? ' trained' : ''}${t.cut ? ' cut' : ''}`, title: `id ${t.id}${t.trained ? ' · trained' : ''}${t.cut ? ' · cut (too long)' : ''}` }, shown || '·');
        }));
        countLine.textContent = `${r.trained} of ${r.total} tokens carry the loss`;
      } catch (e) {
        replace(view, h('span', { class: 'bad' }, (e as Error).message));
      }
    };
    const idx = () => lines.indexOf(tokenLine);
    const countLine = h('span', { class: 'muted small', id: 'ds-token-count' });
    pick.addEventListener('change', () => void show(Number(pick.value)));
    replace(tokensBox,
      h('h3', null, 'What the model learns'),
      h('div', { class: 'actions tight' },
        field('Example', pick),
        button('‹ Previous', () => void show(lines[Math.max(0, idx() - 1)]), { class: 'ghost small', 'aria-label': 'Previous example' }),
        button('Next ›', () => void show(lines[Math.min(lines.length - 1, idx() + 1)]), { class: 'ghost small', 'aria-label': 'Next example' }),
        countLine,
      ),
      view,
      h('p', { class: 'legend-line muted small' }, h('span', { class: 'tok trained' }, 'highlighted'), ' tokens are what the model learns to write (the loss covers them); the rest is context it reads. ',
        h('span', { class: 'tok cut' }, 'struck'), ' tokens are cut (longer than the context).'),
    );
    void show(tokenLine);
  }

  // ---- checking
  async function runCheck(input?: { file: File }): Promise<void> {
    const my = ++checking;
    if (!input && !text.value.trim()) {
      check = null;
      status.hidden = true;
      renderCheck();
      return;
    }
    say(status, 'busy', modelSel.value ? 'Checking and counting tokens…' : 'Checking…');
    try {
      const r = await engine.request({
        type: 'dataset-check', input: input ?? { text: text.value }, modelId: modelSel.value || null, trainOn: trainOnSel.value as TrainOn,
      });
      if (my !== checking) return;
      if (input) text.value = r.text;
      check = r;
      status.hidden = true;
      renderCheck();
    } catch (e) {
      if (my !== checking) return;
      say(status, 'bad', `Could not check the dataset: ${(e as Error).message}`);
    }
  }

  function schedule(ms = 500): void {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void runCheck(), ms);
  }

  text.addEventListener('input', () => {
    saveBtn.disabled = true;
    saveNote.hidden = true;
    schedule();
  });
  modelSel.addEventListener('change', () => {
    setSetting('datasetModel', modelSel.value);
    schedule(0);
  });
  trainOnSel.addEventListener('change', () => {
    setSetting('trainOn', trainOnSel.value);
    schedule(0);
  });
  useValid.addEventListener('change', () => renderCheck());
  upload.addEventListener('change', () => {
    const f = upload.files?.[0];
    if (!f) return;
    if (!nameInput.value.trim()) nameInput.value = f.name.replace(/\.(jsonl?|txt)$/i, '');
    void runCheck({ file: f });
    upload.value = '';
  });
  text.addEventListener('dragover', (e) => e.preventDefault());
  text.addEventListener('drop', (e) => {
    const f = e.dataTransfer?.files?.[0];
    if (!f) return;
    e.preventDefault();
    if (!nameInput.value.trim()) nameInput.value = f.name.replace(/\.(jsonl?|txt)$/i, '');
    void runCheck({ file: f });
  });

  saveBtn.addEventListener('click', async () => {
    if (!check) return;
    const name = nameInput.value.trim() || `dataset ${new Date().toLocaleString('en-GB')}`;
    const excluded = check.report.errors ? check.badLines : [];
    saveBtn.disabled = true;
    try {
      const meta = await engine.request({ type: 'dataset-save', name, text: text.value, excluded });
      say(saveNote, 'good', `Saved "${meta.name}": ${plural(meta.report?.examples ?? 0, 'example')}${excluded.length ? `, ${plural(excluded.length, 'line')} left out` : ''}. It is ready on the Train page.`);
      saveNote.dataset.datasetId = meta.id;
      setSetting('trainDataset', meta.id);
      void askPersistence('the first saved dataset');
    } catch (e) {
      say(saveNote, 'bad', `Not saved: ${(e as Error).message}`);
    } finally {
      saveBtn.disabled = false;
    }
  });

  const exampleButtons = EXAMPLES.map((x) => button(x.name, async () => {
    try {
      text.value = await x.load();
      nameInput.value = x.name;
        saveNote.hidden = true;
      void runCheck();
    } catch (e) {
      say(status, 'bad', `Could not load the example: ${(e as Error).message}`);
    }
  }, { class: 'ghost', title: x.what, 'data-example': x.id }));

  const editorCard = h('article', { class: 'card', 'aria-labelledby': 'ds-edit-h', id: 'ds-editor' },
    h('h2', { id: 'ds-edit-h' }, 'New dataset'),
    h('p', { class: 'muted' }, 'One JSON object per line: chat ', h('code', null, '{"messages": [...]}'), ' (the OpenAI fine-tuning format), ',
      h('code', null, '{"prompt", "completion"}'), ' or ', h('code', null, '{"text"}'), '. About 100 good examples are enough to teach a format or a style.'),
    h('div', { class: 'actions' },
      h('label', { for: 'ds-file', class: 'button ghost', tabindex: 0, role: 'button',
        onkeydown: ((e: KeyboardEvent) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); upload.click(); } }) as EventListener }, 'Upload a .jsonl file…'),
      upload,
      h('span', { class: 'muted small' }, 'or start from an example:'),
      ...exampleButtons,
    ),
    h('div', { class: 'grid2' },
      field('Name', nameInput),
      field('Count tokens with', modelSel, 'the tokenizer of the model you will train'),
    ),
    field('JSONL', text, 'Paste or edit here; it is checked as you type.'),
    field('Train on', trainOnSel),
    status, summary, issuesBox, useValidRow,
    h('div', { class: 'actions' }, saveBtn), saveNote,
    statsBox, tokensBox,
  );

  // ---- stored datasets
  const listBody = h('div', { id: 'dataset-list' });
  const listNote = h('p', { class: 'note', hidden: true });
  function renderList(): void {
    const ds = app.lists.datasets;
    if (!ds.length) {
      replace(listBody, h('p', { class: 'empty' }, 'No dataset saved yet.'));
      return;
    }
    replace(listBody, h('ul', { class: 'rows' }, ...ds.map((d) => h('li', { class: 'row', 'data-dataset': d.id },
      h('div', { class: 'row-main' },
        h('div', { class: 'row-title' }, h('strong', { class: 'dataset-name' }, d.name)),
        h('div', { class: 'muted small' }, `${FORMAT_NAMES[d.format] ?? d.format} · ${plural(d.report?.examples ?? d.lines, 'example')}` +
          `${d.excluded.length ? ` · ${plural(d.excluded.length, 'line')} left out` : ''} · ${bytes(d.chars)} · ${when(d.createdAt)}`)),
      h('div', { class: 'row-actions' },
        button('Open', async () => {
          try {
            const full = await engine.request({ type: 'dataset-get', datasetId: d.id });
            text.value = full.text;
            nameInput.value = `${full.name} (edited)`;
            saveNote.hidden = true;
            useValid.checked = full.excluded.length > 0;
            await runCheck();
            editorCard.scrollIntoView({ block: 'start' });
            text.focus();
          } catch (e) {
            say(listNote, 'bad', (e as Error).message);
          }
        }, { class: 'ghost', 'aria-label': `Open ${d.name} in the editor` }),
        button('Rename', async () => {
          const name = prompt('New name', d.name)?.trim();
          if (!name || name === d.name) return;
          try {
            await engine.request({ type: 'dataset-rename', datasetId: d.id, name });
          } catch (e) {
            say(listNote, 'bad', (e as Error).message);
          }
        }, { class: 'ghost', 'aria-label': `Rename ${d.name}` }),
        button('Delete', async () => {
          if (!confirm(`Delete the dataset "${d.name}"? Jobs and adapters made from it are kept.`)) return;
          try {
            await engine.request({ type: 'dataset-delete', datasetId: d.id });
          } catch (e) {
            say(listNote, 'bad', (e as Error).message);
          }
        }, { class: 'ghost danger', 'aria-label': `Delete ${d.name}` }),
      ),
    ))));
  }
  app.subscribe('datasets', renderList);
  app.subscribe('jobs', () => renderStats());
  renderList();
  const listCard = h('article', { class: 'card', 'aria-labelledby': 'ds-list-h' },
    h('h2', { id: 'ds-list-h' }, 'Saved datasets'), listNote, listBody);

  const el = h('section', { class: 'section', id: 'section-datasets', 'aria-labelledby': 'datasets-title' },
    h('header', { class: 'section-head' },
      h('h1', { id: 'datasets-title' }, 'Datasets'),
      h('p', { class: 'lede' }, 'Examples of what the model should do. Every line is checked; errors name the line and the field, and nothing is dropped without you saying so.'),
    ),
    h('div', { class: 'cards' }, editorCard, listCard),
  );
  return { id: 'datasets', title: 'Datasets', el, onShow: () => refreshModels() };
}

/** A short human duration: 45 s, 3.2 min, 1.5 h. */
function duration(seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
