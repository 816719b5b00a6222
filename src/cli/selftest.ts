// `whittle selftest [--json] [--filter OP]`: every kernel against its CPU twin on this machine's
// adapter (src/selftest.ts). Prints the adapter, then one row per compared tensor as it finishes;
// exit code 1 when any check fails (or no adapter can be had).
import { acquireGpu, type GpuInfo } from '../gpu/device.ts';
import { runSelftest, selftestPlan, type SelftestResult } from '../selftest.ts';
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

const HEAD = ['op', 'check', 'shape', 'max abs', 'max rel', 'pass'];

/** Column widths, fixed before the first row (rows stream): op and shape from the plan. */
function widths(plan: Array<{ op: string; shape: string }>): number[] {
  const w = (xs: string[], min: number) => Math.max(min, ...xs.map((x) => x.length));
  return [w(plan.map((p) => p.op), 9), 16, w(plan.map((p) => p.shape), 5), 9, 9, 4];
}

function row(cells: string[], w: number[]): string {
  return cells.map((c, i) => (i >= 3 && i <= 4 ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ').trimEnd();
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
    const w = widths(selftestPlan(filter));
    if (!json) {
      for (const l of describeAdapter(gpu.info)) io.out(l);
      io.out('');
      io.out(row(HEAD, w));
      io.out(row(w.map((n) => '-'.repeat(n)), w));
    }
    const results = await runSelftest(
      gpu,
      json
        ? undefined
        : (r) => {
            io.out(row([r.op, r.check, r.shape, num(r.maxAbs), num(r.maxRel), r.pass ? 'ok' : 'FAIL'], w));
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
