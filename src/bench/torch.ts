// The PyTorch peer of `whittle bench`: makes sure python3 + torch (with OpenBLAS) is there and runs
// scripts/bench_torch.py for one case, returning its JSON.
// Install (only when torch is missing and we run as root, e.g. CI / a fresh dev machine):
//   apt-get install -y python3-torch libopenblas0-pthread
// Debian's torch links the generic libblas.so.3 (the reference BLAS, ~16× slower than OpenBLAS)
// unless the alternative libblas.so.3-x86_64-linux-gnu points at openblas-pthread; we check it
// every run and, as root, set it (`update-alternatives --set`). Node only.
// It is not: a Python environment manager (no pip, no venv).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const TORCH_SCRIPT = fileURLToPath(new URL('../../scripts/bench_torch.py', import.meta.url));
const BLAS_ALT = 'libblas.so.3-x86_64-linux-gnu';
const OPENBLAS = '/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3';

export interface TorchEnv {
  ok: boolean;
  /** torch version, when ok */
  version?: string;
  /** the interpreter used */
  python?: string;
  /** what libblas.so.3 resolves to (update-alternatives), when known */
  blas?: string;
  /** everything done or found, in order (install, alternative set, …) */
  notes: string[];
  /** why torch is not usable */
  error?: string;
}

export interface TorchRun {
  torch: string;
  threads: number;
  blas: string;
  sgemm1024_gflops: number | null;
  batch?: number;
  seq?: number;
  quant?: string;
  quant_note?: string | null;
  trainable_params?: number;
  build_s?: number;
  step_ms?: number[];
  tokens_per_s?: number[];
  loss?: number;
  /** --decode: prefill and decode tokens/s per timed run */
  prefill_tokens_per_s?: number[];
  decode_tokens_per_s?: number[];
  /** which peer ran (plain LoRA or transformers + PEFT) and on what device */
  peer?: string;
  device?: string;
  device_name?: string;
}

function sh(cmd: string, args: string[], timeoutMs = 60_000): { code: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return { code: r.error ? null : r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error.message) : ''}` };
}

/** The Python that runs the peer: Debian's /usr/bin/python3 first (apt's torch lives there, while
 * a pyenv / venv python3 earlier on PATH may lack it), else python3 on PATH. */
let python = '/usr/bin/python3';

function torchVersion(): string | null {
  for (const py of existsSync('/usr/bin/python3') ? ['/usr/bin/python3', 'python3'] : ['python3']) {
    const r = sh(py, ['-c', 'import torch; print(torch.__version__)']);
    if (r.code === 0) {
      python = py;
      return r.out.trim().split('\n').pop()!;
    }
  }
  return null;
}

/** The current libblas.so.3 alternative ('link currently points to …'), or null. */
function blasLink(): string | null {
  const r = sh('update-alternatives', ['--display', BLAS_ALT]);
  if (r.code !== 0) return null;
  const m = /currently points to (\S+)/.exec(r.out);
  return m ? m[1] : null;
}

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

/** Find torch; when missing and root, install it (apt); make libblas point at OpenBLAS. */
export function ensureTorch(opts: { install?: boolean; log?: (s: string) => void } = {}): TorchEnv {
  const notes: string[] = [];
  const say = (s: string) => {
    notes.push(s);
    opts.log?.(s);
  };
  let version = torchVersion();
  if (!version) {
    if (opts.install === false) return { ok: false, notes, error: 'python3 torch is not installed (install skipped)' };
    if (!isRoot()) {
      return { ok: false, notes, error: 'python3 torch is not installed and we are not root: `apt-get install -y python3-torch libopenblas0-pthread` as root' };
    }
    say('installing python3-torch libopenblas0-pthread (apt-get; a few minutes)…');
    let r = sh('apt-get', ['install', '-y', 'python3-torch', 'libopenblas0-pthread'], 30 * 60_000);
    if (r.code !== 0) {
      say('apt-get install failed; running apt-get update and retrying');
      sh('apt-get', ['update'], 10 * 60_000);
      r = sh('apt-get', ['install', '-y', 'python3-torch', 'libopenblas0-pthread'], 30 * 60_000);
    }
    if (r.code !== 0) return { ok: false, notes, error: `apt-get install python3-torch failed: ${r.out.trim().split('\n').slice(-3).join(' | ')}` };
    version = torchVersion();
    if (!version) return { ok: false, notes, error: 'python3-torch was installed but `import torch` still fails' };
    say(`installed torch ${version}`);
  }
  let blas = blasLink();
  if (blas !== OPENBLAS && existsSync(OPENBLAS)) {
    if (isRoot()) {
      const r = sh('update-alternatives', ['--set', BLAS_ALT, OPENBLAS]);
      if (r.code === 0) {
        say(`libblas.so.3 pointed at ${blas ?? '(unknown)'}; set it to OpenBLAS (${OPENBLAS})`);
        blas = blasLink();
      } else say(`could not set libblas.so.3 to OpenBLAS: ${r.out.trim()}`);
    } else say(`libblas.so.3 points at ${blas}, not OpenBLAS: torch matmuls will be slow (as root: update-alternatives --set ${BLAS_ALT} ${OPENBLAS})`);
  } else if (!existsSync(OPENBLAS)) {
    say(`OpenBLAS (libopenblas0-pthread) is not installed: torch uses ${blas ?? 'the default BLAS'}`);
  }
  return { ok: true, version, python, blas: blas ?? undefined, notes };
}

/** Run scripts/bench_torch.py with `args`; resolves to its JSON (the last stdout line). */
export function runTorch(args: string[], timeoutMs = 20 * 60_000): Promise<TorchRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [TORCH_SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0) {
        try {
          resolve(JSON.parse(last) as TorchRun);
          return;
        } catch {
          /* fall through */
        }
      }
      reject(new Error(`bench_torch.py ${args.join(' ')} exited with ${signal ?? code}: ${(err || out).trim().split('\n').slice(-5).join(' | ')}`));
    });
  });
}
