// `whittle selftest [--json] [--filter OP]`: every kernel against its CPU twin on this machine's
// adapter (src/selftest.ts). Prints the adapter, then one row per compared tensor as it finishes;
// exit code 1 when any check fails (or no adapter can be had).
import { acquireGpu, type GpuInfo } from '../gpu/device.ts';
import { runSelftest, type SelftestResult } from '../selftest.ts';
import { parseArgs } from './args.ts';
import type { Command } from './command.ts';

/** The JSON document of `whittle selftest --json`. */
export interface SelftestReport {
  ok: boolean;
  adapter: GpuInfo | null;
  /** set when no adapter could be had */
  error?: string;
  passed: number;
  failed: number;
  ms: number;
  results: SelftestResult[];
}

const COLS = [
  ['op', 10],
  ['check', 18],
  ['shape', 22],
  ['max abs', 10],
  ['max rel', 10],
  ['pass', 4],
] as const;

function row(cells: string[]): string {
  return cells.map((c, i) => (i >= 3 && i <= 4 ? c.padStart(COLS[i][1]) : c.padEnd(COLS[i][1]))).join('  ').trimEnd();
}

const num = (x: number) => (Number.isFinite(x) ? x.toExponential(2) : '—');

/** One human line about the adapter. */
export function describeAdapter(info: GpuInfo): string[] {
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  const mib = (b: number | undefined) => (b === undefined ? '?' : `${Math.round(b / 2 ** 20)} MiB`);
  const l = info.limits;
  return [
    `adapter   ${[info.vendor, info.architecture].filter(Boolean).join(' / ') || '(unnamed)'}` +
      `${info.description ? ` — ${info.description}` : ''}${info.device ? ` [${info.device}]` : ''} (${info.host})`,
    `features  shader-f16 ${yes(info.features.f16)} · subgroups ${yes(info.features.subgroups)} · timestamp-query ${yes(info.features.timestamp)}`,
    `limits    maxStorageBufferBindingSize ${mib(l.maxStorageBufferBindingSize)} · maxBufferSize ${mib(l.maxBufferSize)} · ` +
      `maxComputeInvocationsPerWorkgroup ${l.maxComputeInvocationsPerWorkgroup ?? '?'} · ` +
      `maxComputeWorkgroupStorageSize ${l.maxComputeWorkgroupStorageSize ?? '?'} B`,
  ];
}

export const command: Command = {
  name: 'selftest',
  summary: 'check every GPU kernel against its CPU twin on this adapter',
  usage: [
    'usage: whittle selftest [--json] [--filter OP]',
    '',
    'Runs every kernel (forward and backward) on the WebGPU adapter and compares it with the',
    'plain-TypeScript reference using |got − ref| ≤ atol + rtol·|ref| (src/ref/tolerance.ts).',
    '',
    '  --json         print one JSON object (adapter, results, passed, failed) instead of a table',
    '  --filter OP    only ops whose name contains OP',
    '',
    'Exit code: 0 all passed, 1 a check failed or no adapter, 2 bad arguments.',
  ].join('\n'),

  async run(args, io) {
    const { flags } = parseArgs(args, { json: 'bool', filter: 'string' });
    const json = flags.json === true;
    const filter = typeof flags.filter === 'string' ? flags.filter : undefined;
    const t0 = performance.now();
    let gpu;
    try {
      gpu = await acquireGpu();
    } catch (e) {
      const error = (e as Error)?.message ?? String(e);
      if (json) {
        const report: SelftestReport = { ok: false, adapter: null, error, passed: 0, failed: 0, ms: 0, results: [] };
        io.out(JSON.stringify(report));
      } else io.err(`whittle selftest: ${error}`);
      return 1;
    }
    if (!json) {
      for (const l of describeAdapter(gpu.info)) io.out(l);
      io.out('');
      io.out(row(COLS.map((c) => c[0])));
      io.out(row(COLS.map((c) => '-'.repeat(c[1]))));
    }
    const results = await runSelftest(
      gpu,
      json
        ? undefined
        : (r) => {
            io.out(row([r.op, r.check, r.shape, num(r.maxAbs), num(r.maxRel), r.pass ? 'ok' : 'FAIL']));
            if (r.error) io.out(`    error: ${r.error}`);
          },
      { filter },
    );
    const failed = results.filter((r) => !r.pass).length;
    const passed = results.length - failed;
    const ms = Math.round(performance.now() - t0);
    const ok = failed === 0 && results.length > 0;
    if (json) {
      const report: SelftestReport = { ok, adapter: gpu.info, passed, failed, ms, results };
      io.out(JSON.stringify(report));
    } else {
      io.out('');
      if (results.length === 0) io.out(`no self-test matches --filter ${filter}`);
      io.out(`${passed} passed, ${failed} failed (${(ms / 1000).toFixed(1)} s)`);
    }
    gpu.device.destroy();
    return ok ? 0 : 1;
  },
};
