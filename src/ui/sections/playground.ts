// The Playground section: one prompt through the base model and through a tuned adapter, side by
// side, streaming as the engine worker generates (the two interleave token by token). Chat mode
// formats the turn exactly as training did (the model's chat template, or the plain
// "User: / Assistant:" format); completion mode continues raw text. Sampling: temperature (0 =
// greedy), top-k, top-p, repetition penalty, seed, and the length.
// "Run on CPU (ONNX)" (forced where WebGPU is missing) generates through onnxruntime-web instead:
// the worker exports the model with the adapter merged to ONNX in memory (workers/engine/onnx.ts);
// greedy only, lanes one after the other. On a software WebGPU adapter (SwiftShader: the "GPU" is
// the CPU) a note says the CPU path decodes faster there, with the bench's measurement.
import type { GenerationSummary, ModelDetails, PromptInput, SamplingOptions } from '../../protocol.ts';
import { button, field, h, replace, say, select } from '../dom.ts';
import type { Engine } from '../engine.ts';
import type { Section } from '../section.ts';
import { setSetting, setting, type AppState } from '../state.ts';
import { isSoftwareInfo } from '../../gpu/software.ts';

const FINISH: Record<string, string> = { eos: 'ended by the model', stop: 'stop string', length: 'length limit', abort: 'stopped' };

export function playgroundSection(engine: Engine, app: AppState): Section {
  const modelSel = select([], undefined, { id: 'pg-model' });
  const adapterSel = select([], undefined, { id: 'pg-adapter' });
  const compare = h('input', { type: 'checkbox', id: 'pg-compare', checked: true }) as HTMLInputElement;
  const onnx = h('input', { type: 'checkbox', id: 'pg-onnx', checked: setting('pgOnnx', '0') === '1' }) as HTMLInputElement;
  const cpuNote = h('p', { class: 'note', id: 'pg-cpu-note', hidden: true });
  const greedyNote = h('span', { class: 'muted small', id: 'pg-greedy-note' }, ' — not used on the CPU (ONNX): decoding there is greedy');
  const syncBackend = () => (greedyNote.hidden = !onnx.checked);
  onnx.addEventListener('change', () => {
    setSetting('pgOnnx', onnx.checked ? '1' : '0');
    syncBackend();
  });
  syncBackend();
  // no WebGPU here: the CPU path is the only one (and says so); a software adapter: the CPU path is faster
  void app.ready.then((r) => (r.type === 'ready' ? r.gpu : null), () => null).then((gpu) => {
    if (gpu && isSoftwareInfo(gpu)) {
      say(cpuNote, 'info', `This browser's WebGPU is a software renderer (${gpu.description || gpu.architecture || 'on the CPU'}): the “GPU” work runs on the CPU. ` +
        'Here “run on CPU (ONNX)” decodes faster — whittle bench measured ONNX Runtime (WebAssembly) at 1,760 tokens/s against 434 for the WebGPU engine ' +
        '(a 656k-parameter model, 2 CPU cores, Chromium with SwiftShader) — while the WebGPU path keeps sampling and runs both lanes together.');
      return;
    }
    if (gpu) return;
    onnx.checked = true;
    onnx.disabled = true;
    syncBackend();
    say(cpuNote, 'info', 'WebGPU is not available in this browser, so the model runs on the CPU: whittle exports it (with the adapter merged in) to ONNX in memory and runs it with ONNX Runtime (WebAssembly). Decoding is greedy; it is slower than a GPU, fine for small models.');
  });
  const modeSel = select([['chat', 'chat turn'], ['completion', 'continue text']], undefined, { id: 'pg-mode' });
  const system = h('input', { type: 'text', id: 'pg-system', placeholder: 'optional: the system prompt your dataset used' });
  const prompt = h('textarea', { id: 'pg-prompt', rows: 4, placeholder: 'Ask something, or paste a prompt from your dataset…' });
  const num = (id: string, value: string, attrs: Record<string, string | number> = {}) => h('input', { type: 'number', id, value, ...attrs }) as HTMLInputElement;
  const temperature = num('pg-temperature', setting('pgTemperature', '0.7'), { min: 0, max: 2, step: 0.05 });
  const topK = num('pg-topk', '40', { min: 0, step: 1 });
  const topP = num('pg-topp', '0.95', { min: 0, max: 1, step: 0.01 });
  const penalty = num('pg-penalty', '1.1', { min: 1, max: 2, step: 0.05 });
  const maxTokens = num('pg-max', setting('pgMaxTokens', '128'), { min: 1, max: 1024, step: 1 });
  const seed = num('pg-seed', '1', { min: 0, step: 1 });
  const goBtn = h('button', { type: 'submit', class: 'primary', id: 'pg-generate' }, 'Generate');
  const stopBtn = button('Stop', () => void stop(), { id: 'pg-stop', class: 'ghost', disabled: true });
  const note = h('p', { class: 'note', id: 'pg-note', hidden: true });
  const outputs = h('div', { class: 'outputs', id: 'pg-outputs' });
  let running: number | null = null;
  const details = new Map<string, Promise<ModelDetails>>();

  function info(id: string): Promise<ModelDetails> {
    let p = details.get(id);
    if (!p) {
      p = engine.request({ type: 'model-info', modelId: id });
      details.set(id, p);
      p.catch(() => details.delete(id));
    }
    return p;
  }

  async function refresh(): Promise<void> {
    const ms = app.lists.models.filter((m) => m.complete);
    const curM = modelSel.value || setting('pgModel', '');
    replace(modelSel, ...ms.map((m) => h('option', { value: m.id }, m.name)));
    modelSel.value = ms.some((m) => m.id === curM) ? curM : ms.at(-1)?.id ?? '';
    if (!modelSel.value) {
      replace(adapterSel, h('option', { value: '' }, 'no model yet'));
      return;
    }
    const d = await info(modelSel.value).catch(() => null);
    if (!d) return;
    if (!modeSel.dataset.touched) modeSel.value = d.chatTemplate ? 'chat' : setting('pgMode', 'completion');
    syncMode();
    const fits = app.lists.adapters.filter((a) => a.baseModel.shape === d.shape);
    const curA = adapterSel.value || setting('pgAdapter', '');
    replace(adapterSel, h('option', { value: '' }, fits.length ? 'none (base only)' : 'no adapter for this model yet'),
      ...[...fits].reverse().map((a) => h('option', { value: a.id }, a.name)));
    adapterSel.value = fits.some((a) => a.id === curA) ? curA : fits.at(-1)?.id ?? '';
  }
  app.subscribe('models', () => void refresh());
  app.subscribe('adapters', () => void refresh());
  modelSel.addEventListener('change', () => {
    setSetting('pgModel', modelSel.value);
    void refresh();
  });
  adapterSel.addEventListener('change', () => setSetting('pgAdapter', adapterSel.value));
  function syncMode(): void {
    system.closest('.field')?.toggleAttribute('hidden', modeSel.value !== 'chat');
  }
  modeSel.addEventListener('change', () => {
    modeSel.dataset.touched = '1';
    setSetting('pgMode', modeSel.value);
    syncMode();
  });

  function pane(title: string, lane: number): { el: HTMLElement; text: HTMLElement; foot: HTMLElement } {
    const text = h('div', { class: 'gen-text', 'data-lane': lane, 'aria-live': 'polite' });
    const foot = h('p', { class: 'gen-foot muted small mono' }, 'generating…');
    const el = h('article', { class: 'gen-pane', 'data-lane': lane, 'data-state': 'running' }, h('h3', null, title), text, foot);
    return { el, text, foot };
  }

  async function stop(): Promise<void> {
    if (running !== null) await engine.abort(running);
  }

  async function generate(): Promise<void> {
    if (running !== null) return;
    const modelId = modelSel.value;
    if (!modelId) {
      say(note, 'bad', 'Add a model on the Models page first.');
      return;
    }
    const text = prompt.value;
    if (!text.trim()) {
      say(note, 'bad', 'Write a prompt first.');
      prompt.focus();
      return;
    }
    note.hidden = true;
    const adapterId = adapterSel.value || null;
    const lanes: Array<{ adapterId: string | null }> = [];
    if (!adapterId || compare.checked) lanes.push({ adapterId: null });
    if (adapterId) lanes.push({ adapterId });
    const t = Number(temperature.value);
    const sampling: SamplingOptions = {
      temperature: Number.isFinite(t) ? t : 0.7, greedy: !(t > 0), topK: Number(topK.value) || 0, topP: Number(topP.value) || 1,
      repetitionPenalty: Number(penalty.value) || 1, seed: Number(seed.value) >>> 0,
    };
    setSetting('pgTemperature', temperature.value);
    setSetting('pgMaxTokens', maxTokens.value);
    const input: PromptInput = modeSel.value === 'chat' ? { mode: 'chat', system: system.value, user: text } : { mode: 'completion', text };
    const adapterName = adapterId ? app.lists.adapters.find((a) => a.id === adapterId)?.name ?? 'adapter' : '';
    const panes = lanes.map((l, i) => pane(l.adapterId ? `Tuned · ${adapterName}` : 'Base model', i));
    replace(outputs, ...panes.map((p) => p.el));
    outputs.dataset.lanes = String(lanes.length);
    goBtn.disabled = true;
    stopBtn.disabled = false;
    const backend = onnx.checked ? 'onnx' as const : 'gpu' as const;
    if (backend === 'onnx') panes.forEach((pn, i) => i > 0 && (pn.foot.textContent = 'waiting: on the CPU the lanes run one after the other…'));
    const p = engine.start({ type: 'generate', modelId, lanes, prompt: input, sampling, maxTokens: Math.max(1, Number(maxTokens.value) || 128), backend }, (m) => {
      if (m.type === 'gen-token') {
        const pn = panes[m.lane];
        if (pn.el.dataset.tokens === undefined) pn.foot.textContent = 'generating…';
        pn.text.append(m.text);
        pn.el.dataset.tokens = String(Number(pn.el.dataset.tokens ?? 0) + (m.tokenId === null ? 0 : 1));
      } else if (m.type === 'gen-done') {
        done(panes[m.lane], m.summary);
      }
    });
    running = p.id;
    try {
      await p.result;
    } catch (e) {
      say(note, 'bad', (e as Error).message);
      for (const pn of panes) if (pn.el.dataset.state === 'running') pn.el.dataset.state = 'failed';
    } finally {
      running = null;
      goBtn.disabled = false;
      stopBtn.disabled = true;
    }
  }

  function done(pn: { el: HTMLElement; text: HTMLElement; foot: HTMLElement }, s: GenerationSummary): void {
    pn.el.dataset.state = 'done';
    pn.el.dataset.finish = s.finishReason;
    if (!s.text) pn.text.append(h('span', { class: 'muted' }, '(nothing: the model ended at once)'));
    pn.el.dataset.backend = s.backend ?? 'gpu';
    pn.foot.textContent = `${s.tokens} tokens · ${s.tokensPerSecond ? `${s.tokensPerSecond.toFixed(1)} tokens/s` : '—'} · prompt ${s.promptTokens} tokens · ${FINISH[s.finishReason] ?? s.finishReason}` +
      (s.backend === 'onnx' ? ' · CPU (ONNX, greedy)' : '');
  }

  const form = h('form', { id: 'pg-form' },
    h('div', { class: 'grid3' },
      field('Base model', modelSel),
      field('Adapter', adapterSel),
      h('div', { class: 'field checkfield' }, h('span', { class: 'label' }, 'Compare'), h('label', { for: 'pg-compare', class: 'checkrow' }, compare, 'show the base model next to it')),
    ),
    h('div', { class: 'grid3' }, field('Mode', modeSel), field('System prompt', system),
      h('div', { class: 'field checkfield' }, h('span', { class: 'label' }, 'Run on'),
        h('label', { for: 'pg-onnx', class: 'checkrow' }, onnx, 'run on CPU (ONNX)'),
        h('span', { class: 'help' }, 'the model, with the adapter merged, exported to ONNX in memory and run by ONNX Runtime (WebAssembly): no GPU needed; greedy decoding'))),
    cpuNote,
    field('Prompt', prompt, 'Ctrl+Enter generates.'),
    h('details', { class: 'advanced' }, h('summary', null, 'Sampling', greedyNote),
      h('div', { class: 'hp-grid' },
        field('Temperature', temperature, '0 = always the most likely token (greedy)'),
        field('Top-k', topK, 'keep the k most likely tokens (0 = all)'),
        field('Top-p', topP, 'keep the most likely tokens up to this probability'),
        field('Repetition penalty', penalty, '1 = none; higher discourages repeats'),
        field('Max new tokens', maxTokens),
        field('Seed', seed, 'the same seed and settings give the same text'),
      )),
    h('div', { class: 'actions' }, goBtn, stopBtn),
    note,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void generate();
  });
  prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      void generate();
    }
  });

  const el = h('section', { class: 'section', id: 'section-playground', 'aria-labelledby': 'pg-title' },
    h('header', { class: 'section-head' },
      h('h1', { id: 'pg-title' }, 'Playground'),
      h('p', { class: 'lede' }, 'Ask the base model and your tuned adapter the same thing, side by side.'),
    ),
    h('div', { class: 'cards' }, h('article', { class: 'card' }, form), outputs),
  );
  void refresh();
  return { id: 'playground', title: 'Playground', el, onShow: () => void refresh() };
}
