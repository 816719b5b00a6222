// Hand-written SVG charts: the training loss chart (train loss per step as a line, validation loss
// as a line with dots, a learning-rate trace on a second axis) and the token-length histogram of a
// dataset. Sized by a viewBox and CSS, so they scale with the card; colours come from CSS
// variables (light and dark). Each chart carries a text summary (aria-label) for screen readers.
// It is not: a charting library; no interaction beyond a hover readout.

const NS = 'http://www.w3.org/2000/svg';

function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}, text?: string): SVGElementTagNameMap[K] {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** About `n` round tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((x) => x >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

export interface LossPoint {
  step: number;
  loss?: number;
  validLoss?: number;
  lr?: number;
}

/** A live loss chart: call `update(points, totalSteps)` as metric rows arrive. */
export class LossChart {
  readonly el: HTMLElement;
  private svg: SVGSVGElement;
  private readout: HTMLElement;
  private points: LossPoint[] = [];
  private total = 1;
  private W = 720;
  private H = 280;
  private pad = { l: 48, r: 56, t: 14, b: 34 };

  constructor(label = 'Loss') {
    this.svg = s('svg', { viewBox: `0 0 ${this.W} ${this.H}`, class: 'chart', role: 'img' });
    this.readout = document.createElement('div');
    this.readout.className = 'chart-readout mono';
    this.readout.setAttribute('aria-hidden', 'true');
    const legend = document.createElement('div');
    legend.className = 'legend';
    legend.innerHTML =
      '<span class="key key-train"></span>training loss <span class="key key-valid"></span>validation loss <span class="key key-lr"></span>learning rate';
    this.el = document.createElement('figure');
    this.el.className = 'chart-fig';
    this.el.append(this.svg, legend, this.readout);
    this.svg.setAttribute('aria-label', `${label}: no steps yet`);
    this.svg.addEventListener('mousemove', (e) => this.hover(e));
    this.svg.addEventListener('mouseleave', () => (this.readout.textContent = ''));
    this.draw();
  }

  update(points: LossPoint[], totalSteps: number | null): void {
    this.points = points;
    this.total = Math.max(totalSteps ?? 0, points.at(-1)?.step ?? 0, 1);
    this.draw();
  }

  private x(step: number): number {
    return this.pad.l + ((this.W - this.pad.l - this.pad.r) * step) / this.total;
  }

  private hover(e: MouseEvent): void {
    if (!this.points.length) return;
    const r = this.svg.getBoundingClientRect();
    const vx = ((e.clientX - r.left) / r.width) * this.W;
    const step = ((vx - this.pad.l) / (this.W - this.pad.l - this.pad.r)) * this.total;
    let best = this.points[0];
    for (const p of this.points) if (Math.abs(p.step - step) < Math.abs(best.step - step)) best = p;
    this.readout.textContent = `step ${best.step}` + (best.loss !== undefined ? ` · loss ${best.loss.toFixed(4)}` : '') +
      (best.validLoss !== undefined ? ` · validation ${best.validLoss.toFixed(4)}` : '') + (best.lr !== undefined ? ` · lr ${best.lr.toExponential(2)}` : '');
  }

  private draw(): void {
    const { W, H, pad } = this;
    const svg = this.svg;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const train = this.points.filter((p) => typeof p.loss === 'number' && Number.isFinite(p.loss));
    const valid = this.points.filter((p) => typeof p.validLoss === 'number' && Number.isFinite(p.validLoss));
    const lrs = this.points.filter((p) => typeof p.lr === 'number');
    const ys = [...train.map((p) => p.loss!), ...valid.map((p) => p.validLoss!)];
    const hi = ys.length ? Math.max(...ys) * 1.05 : 1;
    const lo = 0;
    const y = (v: number) => pad.t + (H - pad.t - pad.b) * (1 - (v - lo) / (hi - lo || 1));
    const lrMax = lrs.length ? Math.max(...lrs.map((p) => p.lr!)) || 1 : 1;
    const yl = (v: number) => pad.t + (H - pad.t - pad.b) * (1 - v / lrMax);

    const grid = s('g', { class: 'grid' });
    for (const t of ticks(lo, hi, 5)) {
      grid.append(s('line', { x1: pad.l, x2: W - pad.r, y1: y(t), y2: y(t) }));
      grid.append(s('text', { x: pad.l - 8, y: y(t) + 4, 'text-anchor': 'end', class: 'tick' }, fmt(t)));
    }
    for (const t of ticks(0, this.total, 6).filter((v) => Number.isInteger(v))) {
      grid.append(s('text', { x: this.x(t), y: H - pad.b + 18, 'text-anchor': 'middle', class: 'tick' }, String(t)));
    }
    grid.append(s('text', { x: (pad.l + W - pad.r) / 2, y: H - 4, 'text-anchor': 'middle', class: 'axis-label' }, 'step'));
    grid.append(s('text', { x: 12, y: pad.t + 4, class: 'axis-label', transform: `rotate(-90 12 ${pad.t + 4})`, 'text-anchor': 'end' }, 'loss'));
    if (lrs.length) {
      grid.append(s('text', { x: W - pad.r + 8, y: yl(lrMax) + 4, class: 'tick tick-lr' }, lrMax.toExponential(0)));
      grid.append(s('text', { x: W - pad.r + 8, y: yl(0) + 4, class: 'tick tick-lr' }, '0'));
    }
    svg.append(grid);
    svg.append(s('line', { x1: pad.l, x2: W - pad.r, y1: H - pad.b, y2: H - pad.b, class: 'axis' }));
    svg.append(s('line', { x1: pad.l, x2: pad.l, y1: pad.t, y2: H - pad.b, class: 'axis' }));

    const path = (pts: LossPoint[], val: (p: LossPoint) => number, yf: (v: number) => number) =>
      pts.map((p, i) => `${i ? 'L' : 'M'}${this.x(p.step).toFixed(1)},${yf(val(p)).toFixed(1)}`).join('');
    if (lrs.length > 1) svg.append(s('path', { d: path(lrs, (p) => p.lr!, yl), class: 'series-lr' }));
    if (train.length) svg.append(s('path', { d: path(train, (p) => p.loss!, y), class: 'series-train' }));
    if (valid.length) {
      svg.append(s('path', { d: path(valid, (p) => p.validLoss!, y), class: 'series-valid' }));
      for (const p of valid) svg.append(s('circle', { cx: this.x(p.step), cy: y(p.validLoss!), r: 3.5, class: 'dot-valid' }));
    }
    const first = train[0]?.loss, last = train.at(-1)?.loss;
    svg.dataset.points = String(train.length);
    svg.dataset.valid = String(valid.length);
    if (first !== undefined) svg.dataset.first = String(first);
    if (last !== undefined) svg.dataset.last = String(last);
    svg.setAttribute('aria-label', train.length
      ? `Loss chart: training loss ${first!.toFixed(3)} at step ${train[0].step}, ${last!.toFixed(3)} at step ${train.at(-1)!.step} of ${this.total}` +
        (valid.length ? `; validation loss ${valid.at(-1)!.validLoss!.toFixed(3)} at step ${valid.at(-1)!.step}` : '')
      : 'Loss chart: no steps yet');
  }
}

/** Bars of a histogram {edges, counts} (counts[i] in [edges[i], edges[i+1])). */
export function histogram(hist: { edges: number[]; counts: number[] }, opts: { label: string; cut?: number } = { label: 'tokens' }): SVGSVGElement {
  const W = 640, H = 200, pad = { l: 40, r: 10, t: 10, b: 34 };
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart histogram', role: 'img' });
  const n = hist.counts.length;
  const max = Math.max(1, ...hist.counts);
  const bw = (W - pad.l - pad.r) / Math.max(1, n);
  const y = (v: number) => pad.t + (H - pad.t - pad.b) * (1 - v / max);
  const grid = s('g', { class: 'grid' });
  for (const t of ticks(0, max, 4).filter((v) => Number.isInteger(v))) {
    grid.append(s('line', { x1: pad.l, x2: W - pad.r, y1: y(t), y2: y(t) }));
    grid.append(s('text', { x: pad.l - 6, y: y(t) + 4, 'text-anchor': 'end', class: 'tick' }, String(t)));
  }
  svg.append(grid);
  for (let i = 0; i < n; i++) {
    const c = hist.counts[i];
    const over = opts.cut !== undefined && hist.edges[i] >= opts.cut;
    const w = Math.max(1, Math.min(bw - 2, 56)); // a lone bin stays a bar, not a wall
    const bar = s('rect', { x: pad.l + i * bw + (bw - w) / 2, y: y(c), width: w, height: H - pad.b - y(c), class: over ? 'bar bar-cut' : 'bar' });
    bar.append(s('title', {}, `${c} example${c === 1 ? '' : 's'} of ${Math.round(hist.edges[i])}–${Math.round(hist.edges[i + 1])} ${opts.label}`));
    svg.append(bar);
  }
  const every = Math.max(1, Math.ceil(n / 8));
  for (let i = 0; i <= n; i += every) {
    svg.append(s('text', { x: pad.l + i * bw, y: H - pad.b + 16, 'text-anchor': 'middle', class: 'tick' }, String(Math.round(hist.edges[i]))));
  }
  svg.append(s('text', { x: (pad.l + W - pad.r) / 2, y: H - 4, 'text-anchor': 'middle', class: 'axis-label' }, `${opts.label} per example`));
  const total = hist.counts.reduce((a, b) => a + b, 0);
  svg.setAttribute('aria-label', `Histogram of ${opts.label} per example: ${total} examples from ${Math.round(hist.edges[0])} to ${Math.round(hist.edges[n])} ${opts.label}`);
  return svg;
}
