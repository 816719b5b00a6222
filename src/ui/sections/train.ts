// The Train section: a run's form (model, dataset, hyperparameters left on 'auto' or set, each
// with a one-line explanation and, for auto ones, why the planner chose its value), the planner's
// prediction before starting (memory by category against the budget, trainable parameters vs the
// base, steps and tokens), then the live dashboard of a job — Pause / Resume / Cancel, progress
// with ETA, loss chart (training and validation, learning rate), tokens/s, the event log — and the
// job history. Jobs run in the engine worker and are mirrored into IndexedDB, so after a reload
// the dashboard shows the saved metrics and the worker continues from the last checkpoint.
import type { HyperparameterInput, JobEvent, JobMetric, JobSummary, TrainOn, TrainPlan } from '../../protocol.ts';
import { LossChart, type LossPoint } from '../chart.ts';
import { button, bytes, count, duration, field, h, int, replace, say, select, when } from '../dom.ts';
import type { Engine } from '../engine.ts';
import type { Section } from '../section.ts';
import { setSetting, setting, type AppState } from '../state.ts';

type Kind = 'int' | 'float' | 'choice' | 'bool' | 'targets';
interface HpField {
  key: keyof HyperparameterInput;
  label: string;
  help: string;
  kind: Kind;
  choices?: string[];
  advanced?: boolean;
}

const TARGETS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;

/** The form's fields, in order; `help` says what the setting is, the planner says why its auto value. */
export const HP_FIELDS: HpField[] = [
  { key: 'epochs', label: 'Epochs', kind: 'int', help: 'passes over the training set' },
  { key: 'maxSteps', label: 'Max steps', kind: 'int', help: 'stop after this many optimizer steps (overrides epochs)' },
  { key: 'learningRate', label: 'Learning rate', kind: 'float', help: 'size of each update: too high diverges, too low learns nothing' },
  { key: 'batchSize', label: 'Batch size', kind: 'int', help: 'sequences per forward/backward pass; memory grows with it' },
  { key: 'gradAccum', label: 'Gradient accumulation', kind: 'int', help: 'passes summed into one update (effective batch = batch × this)' },
  { key: 'seqLen', label: 'Sequence length', kind: 'int', help: 'tokens per sequence; longer examples are cut at the end' },
  { key: 'rank', label: 'LoRA rank', kind: 'int', help: "the adapter's capacity, and its size" },
  { key: 'alpha', label: 'LoRA alpha', kind: 'float', help: 'adapter updates are scaled by alpha / rank' },
  { key: 'quant', label: 'Base weights', kind: 'choice', choices: ['f32', 'q8', 'q4'], help: 'how the frozen base is kept on the GPU: f32 exact, q8 / q4 blocks smaller (QLoRA)' },
  { key: 'schedule', label: 'LR schedule', kind: 'choice', choices: ['constant', 'linear', 'cosine'], help: 'how the learning rate changes over the run', advanced: true },
  { key: 'warmupSteps', label: 'Warmup steps', kind: 'int', help: 'steps that ramp the learning rate up from 0', advanced: true },
  { key: 'dropout', label: 'LoRA dropout', kind: 'float', help: 'randomly zero adapter inputs while training, against overfitting', advanced: true },
  { key: 'targets', label: 'Adapted projections', kind: 'targets', help: 'which linear layers get an adapter', advanced: true },
  { key: 'weightDecay', label: 'Weight decay', kind: 'float', help: 'AdamW decay pulling the adapter weights toward 0', advanced: true },
  { key: 'maxGradNorm', label: 'Gradient clipping', kind: 'float', help: 'cap on the global gradient norm (0 = none)', advanced: true },
  { key: 'validationFraction', label: 'Validation share', kind: 'float', help: 'fraction of examples held out to measure generalization', advanced: true },
  { key: 'evalInterval', label: 'Validate every', kind: 'int', help: 'steps between validation passes (0 = never)', advanced: true },
  { key: 'checkpointInterval', label: 'Checkpoint every', kind: 'int', help: 'steps between checkpoints (a reload resumes from the last one)', advanced: true },
  { key: 'checkpointing', label: 'Gradient checkpointing', kind: 'bool', help: 'recompute activations in backward: less memory, slower', advanced: true },
  { key: 'seed', label: 'Seed', kind: 'int', help: 'the same seed and settings reproduce the same run', advanced: true },
];

const STATUS_TEXT: Record<string, string> = {
  validating_files: 'preparing', queued: 'queued', running: 'running', paused: 'paused', succeeded: 'finished', failed: 'failed', cancelled: 'cancelled',
};

function fmtValue(k: string, v: unknown): string {
  if (Array.isArray(v)) return v.join(',');
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  if (k === 'learningRate' && typeof v === 'number') return v.toExponential(1).replace('.0e', 'e');
  return String(v);
}

export function trainSection(engine: Engine, app: AppState): Section {
  // ================= the form
  const modelSel = select([], undefined, { id: 'train-model' });
  const datasetSel = select([], undefined, { id: 'train-dataset' });
  const nameInput = h('input', { type: 'text', id: 'train-name', placeholder: 'a name for the run and its adapter', autocomplete: 'off' });
  const trainOnSel = select([['assistant', 'assistant replies / completions'], ['all', 'every token']], setting('trainOn', 'assistant'), { id: 'train-on' });
  const budgetInput = h('input', { type: 'number', id: 'train-budget', min: 64, step: 64, value: setting('budgetMiB', '4096') });
  const inputs = new Map<string, HTMLInputElement | HTMLSelectElement | HTMLFieldSetElement>();
  const autoNotes = new Map<string, HTMLElement>();

  function hpControl(f: HpField): HTMLElement {
    const id = `hp-${f.key}`;
    let c: HTMLInputElement | HTMLSelectElement | HTMLFieldSetElement;
    if (f.kind === 'choice') c = select([['auto', 'auto'], ...f.choices!.map((x) => [x, x] as [string, string])], 'auto', { id });
    else if (f.kind === 'bool') c = select([['auto', 'auto'], ['true', 'on'], ['false', 'off']], 'auto', { id });
    else if (f.kind === 'targets') {
      c = h('fieldset', { class: 'targets', id },
        h('legend', { class: 'sr-only' }, f.label),
        h('label', null, h('input', { type: 'checkbox', value: 'auto', checked: true, 'data-auto': true }), 'auto'),
        ...TARGETS.map((t) => h('label', null, h('input', { type: 'checkbox', value: t, checked: true, disabled: true }), t)));
      const auto = c.querySelector('input[data-auto]') as HTMLInputElement;
      auto.addEventListener('change', () => {
        for (const cb of c.querySelectorAll<HTMLInputElement>('input:not([data-auto])')) cb.disabled = auto.checked;
      });
    } else c = h('input', { type: 'text', id, inputmode: f.kind === 'int' ? 'numeric' : 'decimal', placeholder: 'auto', autocomplete: 'off', size: 8 });
    inputs.set(f.key, c);
    const note = h('span', { class: 'auto-note', id: `${id}-auto` });
    autoNotes.set(f.key, note);
    const wrap = h('div', { class: 'field hp', 'data-hp': f.key },
      f.kind === 'targets' ? h('span', { class: 'label' }, f.label) : h('label', { for: id }, f.label),
      c, h('span', { class: 'help' }, f.help), note);
    if (f.kind !== 'targets') c.setAttribute('aria-describedby', `${id}-auto`);
    return wrap;
  }

  const basic = h('div', { class: 'hp-grid' }, ...HP_FIELDS.filter((f) => !f.advanced).map(hpControl));
  const advanced = h('div', { class: 'hp-grid' }, ...HP_FIELDS.filter((f) => f.advanced).map(hpControl));
  const formNote = h('p', { class: 'note', id: 'train-form-note', hidden: true });

  /** The form as hyperparameter input; throws with the field's name when a value is not a number. */
  function readHp(): HyperparameterInput {
    const hp: Record<string, unknown> = {};
    for (const f of HP_FIELDS) {
      const c = inputs.get(f.key)!;
      if (f.kind === 'targets') {
        const auto = c.querySelector<HTMLInputElement>('input[data-auto]')!;
        if (!auto.checked) hp.targets = [...c.querySelectorAll<HTMLInputElement>('input:not([data-auto]):checked')].map((x) => x.value);
        continue;
      }
      const v = (c as HTMLInputElement).value.trim();
      if (!v || v === 'auto') continue;
      if (f.kind === 'choice') hp[f.key] = v;
      else if (f.kind === 'bool') hp[f.key] = v === 'true';
      else {
        const x = Number(v);
        if (!Number.isFinite(x) || (f.kind === 'int' && !Number.isInteger(x))) throw new Error(`${f.label}: "${v}" is not ${f.kind === 'int' ? 'a whole number' : 'a number'}`);
        hp[f.key] = x;
      }
    }
    return hp as HyperparameterInput;
  }

  const planBox = h('div', { class: 'plan', id: 'train-plan', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Choose a model and a dataset to see the plan.'));
  const startBtn = h('button', { type: 'button', class: 'primary', id: 'train-start', disabled: true }, 'Start training');
  let plan: TrainPlan | null = null;
  let planSeq = 0;
  let planTimer: ReturnType<typeof setTimeout> | null = null;

  function request() {
    return {
      modelId: modelSel.value, datasetId: datasetSel.value, hyperparameters: readHp(), trainOn: trainOnSel.value as TrainOn,
      budgetBytes: Math.max(64, Number(budgetInput.value) || 4096) * 2 ** 20,
    };
  }

  function renderPlan(p: TrainPlan): void {
    const b = p.plan.bytes;
    const budget = Math.max(64, Number(budgetInput.value) || 4096) * 2 ** 20;
    const parts: Array<[string, number, string]> = [
      ['base weights', b.baseWeights, 'base'], ['LoRA + optimizer', b.loraAndOptimizer + b.accumulation, 'lora'],
      ['activations', b.activations, 'acts'], ['scratch', b.scratch, 'scratch'],
    ];
    const scale = p.plan.total || 1;
    const r = p.resolved;
    replace(planBox,
      h('div', { class: 'plan-tiles' },
        h('div', { class: 'tile' }, h('span', { class: 'tile-label' }, 'Trainable parameters'),
          h('strong', { id: 'plan-trainable' }, int(p.trainableParams)),
          h('span', { class: 'muted small' }, `${p.trainablePercent < 0.01 ? p.trainablePercent.toExponential(1) : p.trainablePercent.toFixed(2)}% of the ${count(p.baseParams)} base`)),
        h('div', { class: 'tile' }, h('span', { class: 'tile-label' }, 'GPU memory'),
          h('strong', { id: 'plan-memory' }, bytes(p.plan.total)),
          h('span', { class: `small ${p.plan.fits ? 'muted' : 'bad'}` }, `${p.plan.fits ? 'fits' : 'does not fit'} the ${bytes(budget)} budget`)),
        h('div', { class: 'tile' }, h('span', { class: 'tile-label' }, 'Steps'),
          h('strong', { id: 'plan-steps' }, int(r.maxSteps)),
          h('span', { class: 'muted small' }, `${r.epochs} epoch${r.epochs === 1 ? '' : 's'} · ${p.batchesPerEpoch} batches of ${r.batchSize} × ${r.seqLen}${r.gradAccum > 1 ? ` · ${r.gradAccum} per step` : ''}`)),
        h('div', { class: 'tile' }, h('span', { class: 'tile-label' }, 'Data'),
          h('strong', null, `${int(p.trainSize)} examples`),
          h('span', { class: 'muted small' }, `${int(p.epochTokens)} tokens per epoch${p.examples > p.trainSize ? ` · ${p.examples - p.trainSize} held out` : ''}`)),
      ),
      h('div', { class: 'membar', role: 'img', 'aria-label': `memory: ${parts.map(([n, v]) => `${n} ${bytes(v)}`).join(', ')}; ${(100 * p.plan.total / budget).toFixed(1)}% of a ${bytes(budget)} budget` },
        ...parts.map(([n, v, c]) => h('span', { class: `seg seg-${c}`, style: `width:${((100 * v) / scale).toFixed(2)}%`, title: `${n}: ${bytes(v)}` }))),
      h('p', { class: 'membar-legend small' }, ...parts.flatMap(([n, v, c]) => [h('span', { class: `key seg-${c}` }), `${n} ${bytes(v)} `]),
        `· ${(100 * p.plan.total / budget).toFixed(p.plan.total / budget < 0.01 ? 2 : 0)}% of the budget`),
      ...p.plan.advice.map((a) => h('p', { class: 'bad small' }, a)),
    );
    for (const f of HP_FIELDS) {
      const note = autoNotes.get(f.key)!;
      const mine = p.explanations.filter((e) => new RegExp(`(^|, )${f.key}: `).test(e.split(' — ')[0]));
      const line = mine.at(-1);
      const why = line ? line.split(' — ').slice(1).join(' — ') : '';
      const c = inputs.get(f.key)!;
      const isAuto = f.kind === 'targets' ? !!c.querySelector<HTMLInputElement>('input[data-auto]')?.checked : !(c as HTMLInputElement).value.trim() || (c as HTMLInputElement).value === 'auto';
      const val = fmtValue(f.key, (r as unknown as Record<string, unknown>)[f.key]);
      if (f.kind === 'int' || f.kind === 'float') (c as HTMLInputElement).placeholder = isAuto ? `auto (${val})` : 'auto';
      note.textContent = isAuto ? `auto: ${val}${why ? ` — ${why}` : ''}` : line ? `adjusted: ${line}` : '';
      note.dataset.value = val;
    }
  }

  async function updatePlan(): Promise<void> {
    const my = ++planSeq;
    startBtn.disabled = true;
    if (app.gpu === false) {
      plan = null;
      replace(planBox, h('p', { class: 'muted' }, 'Training needs WebGPU, which this browser does not offer (see above).'));
      return;
    }
    if (!modelSel.value || !datasetSel.value) {
      plan = null;
      replace(planBox, h('p', { class: 'muted' }, !app.lists.models.some((m) => m.complete)
        ? 'Add a model on the Models page first.' : !app.lists.datasets.length ? 'Save a dataset on the Datasets page first.' : 'Choose a model and a dataset.'));
      return;
    }
    let req;
    try {
      req = request();
    } catch (e) {
      say(formNote, 'bad', (e as Error).message);
      return;
    }
    formNote.hidden = true;
    planBox.setAttribute('aria-busy', 'true');
    try {
      const p = await engine.request({ type: 'train-plan', ...req });
      if (my !== planSeq) return;
      plan = p;
      renderPlan(p);
      startBtn.disabled = !p.plan.fits;
    } catch (e) {
      if (my !== planSeq) return;
      plan = null;
      replace(planBox, h('p', { class: 'bad', id: 'plan-error' }, (e as Error).message));
    } finally {
      if (my === planSeq) planBox.removeAttribute('aria-busy');
    }
  }

  function schedulePlan(ms = 350): void {
    if (planTimer) clearTimeout(planTimer);
    planTimer = setTimeout(() => void updatePlan(), ms);
  }

  const form = h('form', { id: 'train-form', class: 'train-form' },
    h('div', { class: 'grid3' },
      field('Base model', modelSel),
      field('Dataset', datasetSel),
      field('Name', nameInput),
    ),
    h('div', { class: 'grid3' }, field('Train on', trainOnSel), field('Memory budget (MiB)', budgetInput, 'WebGPU cannot tell how much GPU memory there is: say how much the run may use')),
    h('h3', null, 'Hyperparameters'),
    h('p', { class: 'muted small' }, 'Leave a field empty for auto: whittle picks a value from the dataset, the model and this GPU, and says why.'),
    basic,
    h('details', { class: 'advanced' }, h('summary', null, 'More settings'), advanced),
    formNote,
    h('h3', null, 'Plan'),
    planBox,
    h('div', { class: 'actions' }, startBtn, h('span', { class: 'muted small', id: 'train-start-note' })),
  );
  form.addEventListener('input', () => schedulePlan());
  form.addEventListener('change', (e) => {
    if (e.target === modelSel) setSetting('trainModel', modelSel.value);
    if (e.target === datasetSel) setSetting('trainDataset', datasetSel.value);
    if (e.target === budgetInput) setSetting('budgetMiB', budgetInput.value);
    if (e.target === trainOnSel) setSetting('trainOn', trainOnSel.value);
    schedulePlan(0);
  });
  form.addEventListener('submit', (e) => e.preventDefault());

  function refreshChoices(): void {
    const ms = app.lists.models.filter((m) => m.complete);
    const curM = modelSel.value || setting('trainModel', '');
    replace(modelSel, ...ms.map((m) => h('option', { value: m.id }, m.name)));
    modelSel.value = ms.some((m) => m.id === curM) ? curM : ms.at(-1)?.id ?? '';
    const ds = app.lists.datasets;
    const curD = datasetSel.value || setting('trainDataset', '');
    replace(datasetSel, ...ds.map((d) => h('option', { value: d.id }, d.name)));
    datasetSel.value = ds.some((d) => d.id === curD) ? curD : ds.at(-1)?.id ?? '';
    if (!nameInput.value && datasetSel.value) nameInput.placeholder = `${datasetSel.selectedOptions[0]?.textContent ?? 'run'} · LoRA`;
    schedulePlan(0);
  }
  app.subscribe('models', refreshChoices);
  app.subscribe('datasets', refreshChoices);

  startBtn.addEventListener('click', async () => {
    startBtn.disabled = true;
    try {
      const name = nameInput.value.trim() || nameInput.placeholder.replace(/^a name.*/, '') || 'LoRA run';
      const job = await engine.request({ type: 'train-start', name, ...request() });
      nameInput.value = '';
      await selectJob(job.id);
      dashCard.scrollIntoView({ block: 'start' });
    } catch (e) {
      say(formNote, 'bad', `Could not start: ${(e as Error).message}`);
    } finally {
      startBtn.disabled = !plan?.plan.fits;
    }
  });

  const formCard = h('article', { class: 'card', 'aria-labelledby': 'train-form-h' }, h('h2', { id: 'train-form-h' }, 'New run'), form);
  // without WebGPU: say so, and what still works
  const noGpu = h('article', { class: 'card card-warn', id: 'train-no-gpu', role: 'alert', hidden: true, 'aria-labelledby': 'no-gpu-h' },
    h('h2', { id: 'no-gpu-h', class: 'warn' }, 'Training needs WebGPU'),
    h('p', null, 'This browser does not give whittle a GPU (the ', h('a', { href: '#device' }, 'Device page'), ' says why and what to do), and training runs on the GPU, so it is off here.'),
    h('p', null, 'What still works: downloading and importing models, preparing datasets, importing and exporting adapters (including ONNX), and trying a model — with an adapter merged in — in the ',
      h('a', { href: '#playground' }, 'Playground'), ', on the CPU through ONNX Runtime.'));
  void app.ready.then((r) => r.type === 'ready', () => false).then((gpu) => {
    if (gpu) return;
    noGpu.hidden = false;
    schedulePlan(0);
  });

  // ================= the dashboard of one job
  let current: JobSummary | null = null;
  let points: LossPoint[] = [];
  let events: JobEvent[] = [];
  const chart = new LossChart('Loss');
  const dashTitle = h('h2', { id: 'dash-h' }, 'Run');
  const dashMeta = h('p', { class: 'muted small', id: 'dash-meta' });
  const statusPill = h('span', { class: 'status-pill', id: 'job-status' });
  const pauseBtn = button('Pause', () => void jobControl('pause'), { id: 'job-pause', class: 'ghost' });
  const resumeBtn = button('Resume', () => void jobControl('resume'), { id: 'job-resume', class: 'ghost' });
  const cancelBtn = button('Cancel', () => void jobControl('cancel'), { id: 'job-cancel', class: 'ghost danger' });
  const progress = h('progress', { id: 'job-progress', max: 1, value: 0, 'aria-label': 'Training progress' });
  const progressText = h('p', { class: 'mono small', id: 'job-progress-text' });
  const tiles = h('div', { class: 'plan-tiles', id: 'job-tiles' });
  const log = h('ol', { class: 'log', id: 'job-log', 'aria-label': 'Events' });
  const dashNote = h('p', { class: 'note', hidden: true });
  const dashBody = h('div', { id: 'dash-body', hidden: true },
    h('div', { class: 'actions' }, statusPill, pauseBtn, resumeBtn, cancelBtn),
    progress, progressText, tiles, chart.el,
    h('details', { class: 'log-wrap', open: true }, h('summary', null, 'Events'), log),
  );
  const dashEmpty = h('p', { class: 'empty', id: 'dash-empty' }, 'No run yet. Start one above; it keeps going while you look at other pages, and survives a reload.');
  const dashCard = h('article', { class: 'card', 'aria-labelledby': 'dash-h', id: 'job-dashboard' }, dashTitle, dashMeta, dashNote, dashEmpty, dashBody);

  function tile(label: string, value: string, sub = '', id = ''): HTMLElement {
    return h('div', { class: 'tile', ...(id ? { id } : {}) }, h('span', { class: 'tile-label' }, label), h('strong', null, value), h('span', { class: 'muted small' }, sub));
  }

  function renderDash(): void {
    const j = current;
    if (!j) {
      dashBody.hidden = true;
      dashEmpty.hidden = false;
      return;
    }
    dashEmpty.hidden = true;
    dashBody.hidden = false;
    dashTitle.textContent = j.name;
    const model = app.model(j.modelId)?.name ?? j.modelId;
    const ds = app.lists.datasets.find((d) => d.id === j.datasetId)?.name ?? j.datasetId;
    dashMeta.textContent = `${model} · ${ds} · started ${when(j.startedAt ?? j.createdAt)}`;
    statusPill.textContent = STATUS_TEXT[j.status] ?? j.status;
    statusPill.dataset.status = j.status;
    dashCard.dataset.status = j.status;
    dashCard.dataset.job = j.id;
    const active = j.status === 'running' || j.status === 'queued' || j.status === 'validating_files';
    pauseBtn.disabled = !(j.live && active);
    resumeBtn.disabled = !(j.status === 'paused' || j.status === 'failed');
    cancelBtn.disabled = !(active || j.status === 'paused');
    const last = [...points].reverse().find((p) => p.loss !== undefined);
    const lastRow = j.last;
    const step = points.at(-1)?.step ?? 0;
    const total = j.totalSteps ?? 0;
    progress.max = Math.max(1, total);
    progress.value = j.status === 'succeeded' ? progress.max : step;
    const eta = lastRow && typeof lastRow.etaMs === 'number' && active ? `${duration(lastRow.etaMs)} left` : '';
    const elapsed = lastRow && typeof lastRow.elapsedMs === 'number' ? `${duration(lastRow.elapsedMs)} elapsed` : '';
    progressText.textContent = total
      ? [`step ${step} of ${total}`, `${Math.floor((100 * (j.status === 'succeeded' ? total : step)) / total)}%`, elapsed, eta].filter(Boolean).join(' · ')
      : j.status === 'validating_files' ? 'preparing the model and the dataset…' : '';
    progressText.dataset.step = String(step);
    const validRow = [...points].reverse().find((p) => p.validLoss !== undefined);
    const tps = lastRow?.tokensPerSec as number | undefined;
    replace(tiles,
      tile('Loss', last?.loss !== undefined ? last.loss.toFixed(4) : '—', points.length > 1 && points[0].loss !== undefined ? `from ${points[0].loss.toFixed(3)}` : '', 'tile-loss'),
      tile('Validation loss', validRow ? validRow.validLoss!.toFixed(4) : '—', validRow ? `at step ${validRow.step}` : ''),
      tile('Tokens / s', tps !== undefined ? int(tps) : '—', '', 'tile-tps'),
      tile('Learning rate', last?.lr !== undefined ? last.lr.toExponential(2) : '—', lastRow && typeof lastRow.epoch === 'number' ? `epoch ${(lastRow.epoch as number).toFixed(2)}` : ''),
    );
    chart.update(points, total || null);
    if (j.error) say(dashNote, 'bad', j.error);
    else dashNote.hidden = true;
  }

  function eventItem(e: JobEvent): HTMLElement {
    return h('li', { class: `ev ev-${e.type}` }, h('time', { class: 'mono muted' }, new Date(e.time).toLocaleTimeString('en-GB')), ' ', h('span', { class: 'ev-type' }, e.type), ' ', e.message);
  }

  function renderLog(): void {
    replace(log, ...events.slice(-300).map(eventItem));
    log.scrollTop = log.scrollHeight;
  }

  function pointOf(m: JobMetric): LossPoint {
    return {
      step: m.step,
      loss: typeof m.loss === 'number' ? m.loss : undefined,
      validLoss: typeof m.validLoss === 'number' ? m.validLoss : undefined,
      lr: typeof m.lr === 'number' ? m.lr : undefined,
    };
  }

  async function selectJob(jobId: string): Promise<void> {
    try {
      const r = await engine.request({ type: 'job-get', jobId });
      current = r.job;
      points = r.metrics.map(pointOf);
      events = r.events;
      if (!current.last && r.metrics.length) current.last = r.metrics.at(-1)!;
      renderDash();
      renderLog();
      renderHistory();
    } catch (e) {
      say(dashNote, 'bad', (e as Error).message);
    }
  }

  async function jobControl(action: 'pause' | 'resume' | 'cancel'): Promise<void> {
    if (!current) return;
    if (action === 'cancel' && !confirm(`Cancel "${current.name}"? Its progress is discarded (no adapter is saved).`)) return;
    try {
      current = { ...(await engine.request({ type: 'job-control', jobId: current.id, action })), last: current.last };
      renderDash();
    } catch (e) {
      say(dashNote, 'bad', (e as Error).message);
    }
  }

  engine.on((m) => {
    if (m.type === 'job-metric') {
      const listed = app.lists.jobs.find((j) => j.id === m.jobId);
      if (listed) {
        listed.last = m.metric;
        const cell = historyBody.querySelector(`tr[data-job="${m.jobId}"] td:nth-child(4)`);
        if (cell && listed.totalSteps) cell.textContent = `${m.metric.step} / ${listed.totalSteps}`;
        const lossCell = historyBody.querySelector(`tr[data-job="${m.jobId}"] td:nth-child(5)`);
        if (lossCell && typeof m.metric.loss === 'number') lossCell.textContent = m.metric.loss.toFixed(4);
      }
    }
    if (m.type === 'job-metric' && current && m.jobId === current.id) {
      while (points.length && points.at(-1)!.step >= m.metric.step) points.pop(); // a resumed run replays steps after its checkpoint
      points.push(pointOf(m.metric));
      current.last = m.metric;
      renderDash();
    } else if (m.type === 'job-event' && current && m.jobId === current.id) {
      events.push(m.event);
      log.appendChild(eventItem(m.event));
      log.scrollTop = log.scrollHeight;
      if (m.event.type === 'checkpoint' && /^resumed/.test(m.event.message)) {
        const s = (m.event.data as { step?: number } | undefined)?.step ?? 0;
        points = points.filter((p) => p.step <= s);
        renderDash();
      }
    } else if (m.type === 'job-update') {
      if (current && m.job.id === current.id) {
        current = { ...m.job, last: m.job.last ?? current.last };
        renderDash();
      } else if (!current || (m.job.live && !current.live)) void selectJob(m.job.id);
    }
  });

  // ================= history
  const historyBody = h('div', { id: 'job-history' });
  function renderHistory(): void {
    const jobs = [...app.lists.jobs].sort((a, b) => b.createdAt - a.createdAt);
    if (!jobs.length) {
      replace(historyBody, h('p', { class: 'empty' }, 'No runs yet.'));
      return;
    }
    replace(historyBody, h('div', { class: 'table-wrap' }, h('table', { class: 'results' },
      h('thead', null, h('tr', null, ...['Run', 'Status', 'Model', 'Steps', 'Loss', 'Started', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, ...jobs.map((j) => {
        const loss = typeof j.last?.loss === 'number' ? (j.last.loss as number).toFixed(4) : '—';
        const del = j.live ? null : button('Delete', async () => {
          if (!confirm(`Delete the run "${j.name}" and its log? Its adapter (if any) is kept.`)) return;
          try {
            await engine.request({ type: 'job-delete', jobId: j.id });
            if (current?.id === j.id) {
              current = null;
              renderDash();
            }
          } catch (e) {
            say(dashNote, 'bad', (e as Error).message);
          }
        }, { class: 'ghost small danger', 'aria-label': `Delete ${j.name}` });
        return h('tr', { 'data-job': j.id, class: current?.id === j.id ? 'current' : '' },
          h('td', null, h('strong', null, j.name)),
          h('td', null, h('span', { class: 'status-pill', 'data-status': j.status }, STATUS_TEXT[j.status] ?? j.status)),
          h('td', null, app.model(j.modelId)?.name ?? j.modelId),
          h('td', { class: 'num' }, j.totalSteps ? `${j.last?.step ?? 0} / ${j.totalSteps}` : String(j.last?.step ?? '—')),
          h('td', { class: 'num mono' }, loss),
          h('td', null, when(j.startedAt ?? j.createdAt)),
          h('td', null, button('View', () => void selectJob(j.id), { class: 'ghost small', 'aria-label': `View ${j.name}` }), del),
        );
      })))));
  }
  app.subscribe('jobs', () => {
    renderHistory();
    if (!current) {
      const pick = app.lists.jobs.find((j) => j.live) ?? [...app.lists.jobs].sort((a, b) => b.createdAt - a.createdAt)[0];
      if (pick) void selectJob(pick.id);
    }
  });
  const historyCard = h('article', { class: 'card', 'aria-labelledby': 'hist-h' }, h('h2', { id: 'hist-h' }, 'History'), historyBody);

  renderDash();
  renderHistory();
  refreshChoices();

  const el = h('section', { class: 'section', id: 'section-train', 'aria-labelledby': 'train-title' },
    h('header', { class: 'section-head' },
      h('h1', { id: 'train-title' }, 'Train'),
      h('p', { class: 'lede' }, 'Fine-tune a LoRA adapter on the GPU of this computer. The base model stays frozen; only the small adapter learns.'),
    ),
    h('div', { class: 'cards' }, noGpu, formCard, dashCard, historyCard),
  );
  return { id: 'train', title: 'Train', el, onShow: () => schedulePlan(0) };
}
