// A tiny DOM builder: h('div', { class: 'x', onclick }, child, 'text'). No framework, no virtual DOM.
type Child = Node | string | number | null | undefined | false;
export type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs | null = null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v as EventListener);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, ...children);
  return el;
}

export function append(el: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** Replace all children of el. */
export function replace(el: Node, ...children: Child[]): void {
  while (el.firstChild) el.removeChild(el.firstChild);
  append(el, ...children);
}

/** 1536 → '1.5 KiB' */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

/** 656_000 → '656K', 134_515_008 → '135M', 1.1e9 → '1.1B' */
export function count(n: number): string {
  if (n < 1000) return String(n);
  const [d, s] = n >= 1e9 ? [1e9, 'B'] : n >= 1e6 ? [1e6, 'M'] : [1e3, 'K'];
  const v = n / d;
  return `${v < 10 ? v.toFixed(1).replace(/\.0$/, '') : Math.round(v)}${s}`;
}

/** 12345 → '12,345' */
export function int(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** 65_000 ms → '1m 05s'; 3_700_000 → '1h 01m' */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A time as 'today 14:05' / '3 Nov 14:05'. */
export function when(t: number): string {
  const d = new Date(t), now = new Date();
  const hm = d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
  return d.toDateString() === now.toDateString() ? `today ${hm}` : `${d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short' })} ${hm}`;
}

/** Save bytes as a file through a temporary link (the page's own download; no network). */
export function download(name: string, bytes: ArrayBuffer | Uint8Array | string, mime = 'application/octet-stream'): void {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: mime }));
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** A status line that says what happened (role=status) or went wrong (role=alert). */
export function say(el: HTMLElement, kind: 'info' | 'good' | 'bad' | 'busy', text: string | Node): void {
  el.className = `note note-${kind}`;
  el.setAttribute('role', kind === 'bad' ? 'alert' : 'status');
  el.hidden = false;
  replace(el, text);
}

/** A labelled form control with an optional one-line help text below it. */
export function field(label: string, control: HTMLElement, help?: string | Node, attrs: Attrs = {}): HTMLElement {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const helpEl = help ? h('span', { class: 'help', id: `${id}-help` }, help) : null;
  if (helpEl) control.setAttribute('aria-describedby', helpEl.id);
  return h('div', { class: 'field', ...attrs }, h('label', { for: id }, label), control, helpEl);
}

/** <select> from [value, label] pairs. */
export function select(options: Array<[string, string]>, value?: string, attrs: Attrs = {}): HTMLSelectElement {
  const s = h('select', attrs, ...options.map(([v, l]) => h('option', { value: v }, l)));
  if (value !== undefined) s.value = value;
  return s;
}

export function button(text: string, onclick: (e: MouseEvent) => void, attrs: Attrs = {}): HTMLButtonElement {
  return h('button', { type: 'button', ...attrs, onclick: onclick as EventListener }, text);
}
