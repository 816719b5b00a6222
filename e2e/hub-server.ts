// A local server with the Hugging Face Hub's download layout, for the e2e specs: node:http on
// 127.0.0.1 and a free port, `GET|HEAD /{owner}/{name}/resolve/{revision}/{file}` answered from a
// folder per repo (any revision), with Content-Length, Accept-Ranges and `Range: bytes=a-b` (206 +
// Content-Range; 416 when out of range), 404 for anything else. `bytesPerSecond` throttles bodies
// so a spec can watch the progress bar move. Every request is logged (the specs assert which
// happened, and that none happened while they handled datasets or trained).
// It is not: the Hub's API (no listing, no LFS redirects, no auth).
import { createReadStream, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join, normalize } from 'node:path';
import { Transform } from 'node:stream';

export interface HubServer {
  url: string;
  /** every request so far: method, path, Range header, status */
  log: Array<{ method: string; path: string; range: string | null; status: number }>;
  /** change the throttle (bytes per second of each body; 0 = unthrottled) */
  throttle(bytesPerSecond: number): void;
  close(): Promise<void>;
}

export async function startHubServer(repos: Record<string, string>, opts: { bytesPerSecond?: number } = {}): Promise<HubServer> {
  let rate = opts.bytesPerSecond ?? 0;
  const log: HubServer['log'] = [];
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    const range = typeof req.headers.range === 'string' ? req.headers.range : null;
    const done = (status: number) => log.push({ method: req.method ?? 'GET', path, range, status });
    const fail = (status: number, text: string) => {
      done(status);
      res.writeHead(status, { 'Content-Type': 'text/plain' });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, 'method not allowed');
    const m = /^\/([^/]+\/[^/]+)\/resolve\/[^/]+\/(.+)$/.exec(path);
    const dir = m && repos[m[1]];
    if (!m || !dir) return fail(404, 'Repository not found');
    const file = normalize(m[2]);
    if (file.startsWith('..') || file.startsWith('/')) return fail(400, 'bad path');
    const full = join(dir, file);
    let size: number;
    try {
      const st = statSync(full);
      if (!st.isFile()) return fail(404, 'Entry not found');
      size = st.size;
    } catch {
      return fail(404, 'Entry not found');
    }
    let start = 0, end = size - 1, status = 200;
    if (range) {
      const r = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (!r || (r[1] === '' && r[2] === '')) return fail(416, 'bad range');
      if (r[1] === '') {
        start = Math.max(0, size - Number(r[2]));
      } else {
        start = Number(r[1]);
        end = r[2] === '' ? size - 1 : Math.min(size - 1, Number(r[2]));
      }
      if (start >= size || start > end) {
        done(416);
        res.writeHead(416, { 'Content-Range': `bytes */${size}` });
        res.end();
        return;
      }
      status = 206;
    }
    const headers: Record<string, string | number> = {
      'Content-Length': end - start + 1, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream', ETag: `"${size}"`,
      'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': 'Content-Length, Content-Range, ETag, Accept-Ranges',
    };
    if (status === 206) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    done(status);
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || size === 0) {
      res.end();
      return;
    }
    const body = createReadStream(full, { start, end, highWaterMark: 64 * 1024 });
    if (!rate) {
      body.pipe(res);
      return;
    }
    const perTick = Math.max(1024, Math.round(rate / 20));
    const slow = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        let off = 0;
        const push = () => {
          if (off >= chunk.length) return cb();
          this.push(chunk.subarray(off, off + perTick));
          off += perTick;
          setTimeout(push, 50);
        };
        push();
      },
    });
    body.pipe(slow).pipe(res);
    res.on('close', () => body.destroy());
  };
  const server = createServer((req, res) => {
    // preflight for the Range header from the page's origin
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Headers': 'Range, Authorization', 'Access-Control-Allow-Methods': 'GET, HEAD' });
      res.end();
      return;
    }
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('the hub server did not report a port');
  return {
    url: `http://127.0.0.1:${addr.port}`,
    log,
    throttle: (b) => (rate = b),
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** The repos the specs serve: the real tinystories-656k model under its Hub id. */
export const SPEC_REPOS = { 'raincandy-u/TinyStories-656K': '../shared/models/tinystories-656k' };
