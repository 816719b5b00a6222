// Markdown rendering of a BenchReport (src/bench/run.ts): a header (date, command, driver, host),
// then one table per section. Every timed figure is "median (min–max)" over the timed runs.
import type { BenchReport } from './run.ts';
import { fmtNum, fmtStat } from './stats.ts';

const mib = (b: number | null | undefined) => (b === null || b === undefined ? '—' : (b / 2 ** 20).toFixed(1));

function table(head: string[], rows: string[][], right: number[] = []): string[] {
  const align = head.map((_, i) => (right.includes(i) ? '---:' : '---'));
  return [`| ${head.join(' | ')} |`, `| ${align.join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

export function renderMarkdown(r: BenchReport): string {
  const a = r.adapter;
  const L: string[] = [];
  L.push(`# whittle bench (${r.mode})`, '');
  L.push(`- date: ${r.date}`);
  L.push(`- command: \`${r.command}\``);
  L.push(`- driver: ${[a.vendor, a.architecture].filter(Boolean).join(' / ')}${a.description ? ` — ${a.description}` : ''} (${a.host}; shader-f16 ${a.features.f16 ? 'yes' : 'no'}, subgroups ${a.features.subgroups ? 'yes' : 'no'})`);
  L.push(`- host: ${r.host.cpus} × ${r.host.cpuModel}, ${r.host.platform}, Node ${r.host.node}; load average ${r.host.loadavgStart[0].toFixed(2)} at start, ${r.host.loadavgEnd[0].toFixed(2)} at end`);
  const tv = r.torch.env?.ok ? `torch ${r.torch.env.version} (${r.torch.deviceName ? `${r.torch.deviceName}${r.torch.peer ? `, ${r.torch.peer}` : ''}` : `libblas → ${r.torch.blas ?? '?'}`}), 1024³ sgemm ${fmtNum(r.torch.sgemm1024Gflops ?? NaN)} GFLOP/s` : 'not run';
  L.push(`- PyTorch peer: ${tv}`);
  L.push(`- LoRA: r=${r.lora.rank}, alpha ${r.lora.alpha}, dropout ${r.lora.dropout} on ${r.lora.targets.join(',')}; AdamW lr ${r.adamw.lr}, clip ${r.adamw.maxNorm}; float32 activations`);
  L.push(`- models: ${r.models.map((m) => `${m.name} (${(m.params / 1e6).toFixed(2)} M params, ${m.config.layers} layers, hidden ${m.config.hidden}, vocab ${m.config.vocab}; ${m.source})`).join('; ')}`);
  L.push(`- took ${(r.ms / 1000).toFixed(0)} s`, '');

  L.push('## Training (LoRA step: forward + backward + AdamW)', '');
  L.push(...table(
    ['model', 'B×T', 'base', 'ms / step', 'tokens/s', 'matmul GFLOP/s (share of our f32 peak)', 'PyTorch tokens/s', 'ratio vs PyTorch', 'GPU MiB allocated', 'planned MiB'],
    r.training.map((t) => [
      t.model, `${t.batch}×${t.seq}`, t.quant, fmtStat(t.stepMs, 0), fmtStat(t.tokensPerSecond), `${fmtStat(t.gflops, 2)}${t.shareOfPeak !== undefined ? ` (${(t.shareOfPeak * 100).toFixed(0)}%)` : ''}`,
      t.torchTokensPerSecond === null ? '—' : `${fmtNum(t.torchTokensPerSecond)}${t.quant !== 'f32' ? ' ¹' : ''}`,
      t.ratioVsPytorch === null ? '—' : `${t.ratioVsPytorch.toFixed(3)}×`,
      mib(t.memory.allocatedAfterStep ?? t.memory.allocatedAtBuild), mib(t.memory.planned),
    ]),
    [3, 4, 5, 6, 7, 8, 9],
  ));
  L.push('', 'Each row: warm-up steps untimed (the first compiles the pipelines), then median (min–max) of the timed steps. ' +
    'Matmul FLOPs per step counted exactly from the shapes (src/bench/flops.ts: frozen linears forward + input gradient, LoRA forward + backward, causal attention, lm_head; not the recomputations). ' +
    '¹ PyTorch runs a quantized base dequantized to float32 (no q8/q4 matmul in torch): same figure as f32.');
  if (r.torch.cases.length) {
    L.push('', ...table(['PyTorch case', 'B×T', 'ms / step', 'tokens/s', 'matmul GFLOP/s', 'threads'],
      r.torch.cases.map((c) => [c.model, `${c.batch}×${c.seq}`, c.error ? `error: ${c.error.slice(0, 80)}` : fmtStat(c.stepMs, 0), fmtStat(c.tokensPerSecond), fmtStat(c.gflops, 2), String(c.threads ?? '—')]),
      [2, 3, 4, 5]));
  }

  L.push('', '## Matmul microbenchmark (src/ops/linear.ts; GFLOP/s = 2·N·IC·OC / time)', '');
  const sizes = [...new Set(r.matmul.results.map((x) => `${x.N}|${x.IC}|${x.OC}|${x.op}`))];
  const formats = [...new Set(r.matmul.results.map((x) => x.format))];
  L.push(...table(['N × IC → OC', 'op', ...formats.map((f) => `${f} GFLOP/s`)], sizes.map((k) => {
    const [N, IC, OC, op] = k.split('|');
    const cells = formats.map((f) => {
      const x = r.matmul.results.find((y) => `${y.N}|${y.IC}|${y.OC}|${y.op}` === k && y.format === f);
      return x ? fmtStat(x.gflops, 2) : '—';
    });
    return [`${N} × ${IC} → ${OC}`, op, ...cells];
  }), formats.map((_, i) => i + 2)));
  const p = r.matmul.peakF32;
  L.push('', `f32 peak: ${p.gflops.toFixed(2)} GFLOP/s (${p.at.op}, ${p.at.N} × ${p.at.IC} → ${p.at.OC}); ` +
    Object.entries(r.matmul.byFormat).map(([f, v]) => `${f} best ${v.gflops.toFixed(2)} (${(v.shareOfF32Peak * 100).toFixed(0)}% of the f32 peak)`).join(', ') + '.');

  const d = r.driver;
  L.push('', '## Driver ceilings (src/bench/driver.ts, shaders/probe.wgsl)', '');
  L.push(...table(['f32 FMA GFLOP/s (no memory traffic)', 'ns per vec4 storage load per invocation', 'µs per dispatch (1 workgroup, 200 in one submission)'],
    [[fmtStat(d.fmaGflops, 1), fmtStat(d.loadNsPerVec4, 2), fmtStat(d.dispatchUs, 1)]], [0, 1, 2]));
  L.push('', `A kernel whose inner loop does L vec4 loads and F FMAs per invocation costs about L·${d.loadNsPerVec4.median.toFixed(2)} ns + F·${(2 / d.fmaGflops.median).toFixed(3)} ns ` +
    '(both summed over every invocation, all cores); every dispatch adds its fixed cost.');

  if (r.memory.length) {
    L.push('', '## GPU memory (LoRA r=16 on every linear)', '');
    L.push(...table(['model', 'base', 'B×T', 'checkpointing', 'planned MiB', 'base / LoRA+Adam / activations / scratch MiB', 'allocated at build MiB', 'memoryReport MiB', '< 1 GiB'],
      r.memory.map((m) => [m.model, m.quant, `${m.batch}×${m.seq}`, m.checkpointing ? 'on' : 'off', mib(m.planned),
        `${mib(m.plannedBytes.baseWeights)} / ${mib(m.plannedBytes.loraAndOptimizer)} / ${mib(m.plannedBytes.activations)} / ${mib(m.plannedBytes.scratch)}`,
        m.allocatedAtBuild === null ? '—' : `${mib(m.allocatedAtBuild)} + ${mib(m.xentScratch)} xent`, mib(m.modelReport), m.fitsUnder1GiB ? 'yes' : 'no']),
      [4, 6, 7]));
    L.push('', 'planned = src/train/memory.ts planMemory before allocation; allocated = gpu.allocated added by constructing the model (the cross-entropy scratch, "xent", comes with the first step).');
  }

  if (r.inference.length) {
    L.push('', '## Inference (src/model/generate.ts, greedy on the GPU)', '');
    L.push(...table(['model', 'base', 'prompt', 'generated', 'prefill tokens/s', 'decode tokens/s', 'inline driver ¹ prefill / decode tokens/s', 'GPU MiB',
      'onnxruntime-web prefill tokens/s', 'onnxruntime-web decode tokens/s', 'decode ratio vs onnxruntime-web (ours: best)'],
      r.inference.map((x) => [x.model, x.quant, String(x.prompt), String(x.gen), fmtStat(x.prefillTokensPerSecond), fmtStat(x.decodeTokensPerSecond),
        x.inline ? `${fmtStat(x.inline.prefillTokensPerSecond)} / ${fmtStat(x.inline.decodeTokensPerSecond)}` : '—', mib(x.bytes),
        fmtStat(x.onnxruntimeWeb?.prefillTokensPerSecond), fmtStat(x.onnxruntimeWeb?.decodeTokensPerSecond),
        x.decode_ratio_vs_onnxruntime_web == null ? '—' : `${x.decode_ratio_vs_onnxruntime_web.toFixed(3)}×${x.decodeBest ? ` (${x.decodeBest})` : ''}`]),
      [2, 3, 4, 5, 6, 7, 8, 9, 10]));
    if (r.inference.some((x) => x.inline)) {
      L.push('', '¹ the same case on a second device whose llvmpipe runs every dispatch on its own queue thread (acquireGpu driverThreads 0, ' +
        'LP_NUM_THREADS=0; `whittle generate --driver-threads 0`): no thread-pool handoff per dispatch, one core of shader work.');
    }
    const tp = r.inference.filter((x) => x.torch);
    if (tp.length) {
      L.push('', `PyTorch on the GPU (${tp[0].torch!.peer}; transformers generate with the KV cache, greedy, the adapter active; decode excludes prefill):`, '');
      L.push(...table(['model', 'base', 'torch prefill tokens/s', 'torch decode tokens/s', 'our decode ÷ torch'],
        tp.map((x) => [x.model, x.quant, fmtStat(x.torch!.prefillTokensPerSecond), fmtStat(x.torch!.decodeTokensPerSecond), `${x.decode_ratio_vs_torch!.toFixed(3)}×`]), [2, 3, 4]));
    }
    if (r.inference.some((x) => x.onnxruntimeWeb)) {
      L.push('', `onnxruntime-web: ${r.inference.find((x) => x.onnxruntimeWeb)!.onnxruntimeWeb!.runtime} — the same model exported to ONNX (src/export/onnx.ts), ` +
        'the runtime transformers.js uses, on WebAssembly single-threaded in Node; greedy with the KV cache; decode excludes prefill.');
    }
  }

  if (r.browser) {
    const b = r.browser;
    L.push('', '## Inference in the browser (bench.html in Chromium: our engine on its WebGPU adapter, onnxruntime-web wasm 1 thread, one page)', '');
    L.push(...table(['model', 'adapter', 'prompt', 'generated', 'ours prefill tokens/s', 'ours decode tokens/s', 'onnxruntime-web prefill tokens/s', 'onnxruntime-web decode tokens/s', 'decode ratio'],
      [[b.model, b.adapter, String(b.prompt), String(b.gen), fmtStat(b.ours.prefillTokensPerSecond), fmtStat(b.ours.decodeTokensPerSecond),
        fmtStat(b.onnxruntimeWeb.prefillTokensPerSecond), fmtStat(b.onnxruntimeWeb.decodeTokensPerSecond), `${b.decodeRatio.toFixed(3)}×`]],
      [2, 3, 4, 5, 6, 7, 8]));
    const gp = b.onnxruntimeWebgpu;
    if (gp) {
      L.push('', '### onnxruntime-web\'s WebGPU execution provider on the same adapter (what transformers.js runs with device \'webgpu\'; KV cache on the GPU)', '');
      L.push(...('error' in gp
        ? [`did not run: ${gp.error.split('\n')[0]}`]
        : table(['model', 'adapter', 'onnxruntime-web WebGPU prefill tokens/s', 'onnxruntime-web WebGPU decode tokens/s', 'ours decode tokens/s', 'decode ratio'],
          [[b.model, b.adapter, fmtStat(gp.prefillTokensPerSecond), fmtStat(gp.decodeTokensPerSecond), fmtStat(b.ours.decodeTokensPerSecond), `${b.decodeRatioWebgpu!.toFixed(2)}×`]],
          [2, 3, 4, 5])));
    }
    if (b.driver) {
      const d = b.driver, nd = r.driver;
      L.push('', `Driver ceilings of the page's adapter (${b.adapter}; src/bench/driver.ts), next to this machine's Node adapter (${r.adapter.description || r.adapter.device}):`, '');
      L.push(...table(['adapter', 'f32 FMA GFLOP/s', 'ns per vec4 load per invocation', 'µs per dispatch'],
        [[b.adapter, fmtStat(d.fmaGflops, 1), fmtStat(d.loadNsPerVec4, 2), fmtStat(d.dispatchUs, 1)],
          [r.adapter.description || r.adapter.device, fmtStat(nd.fmaGflops, 1), fmtStat(nd.loadNsPerVec4, 2), fmtStat(nd.dispatchUs, 1)]], [1, 2, 3]));
    }
    if (b.train) {
      const t = b.train;
      // the same case in Node on this machine's adapter (the training table), when it ran
      const node = r.training.find((x) => x.model === b.model && x.quant === t.quant && x.batch === t.batch && x.seq === t.seq);
      L.push('', '## Training in the browser (the same page: a LoRA step of that model on the page\'s WebGPU adapter, what the app runs per micro-batch)', '');
      L.push(...table(['model', 'adapter', 'base', 'B×T', 'ms / step', 'tokens/s', 'in Node on this machine: ms / step (adapter)'],
        [[b.model, b.adapter, t.quant, `${t.batch}×${t.seq}`, fmtStat(t.stepMs), fmtStat(t.tokensPerSecond), node ? `${fmtStat(node.stepMs)} (${r.adapter.description || r.adapter.device})` : '—']],
        [4, 5]));
    }
    L.push('', `browser: ${b.userAgent}`);
  }

  L.push('', '## Goals', '');
  L.push(...table(['goal', 'met', 'measured'], r.goals.map((g) => [g.goal, g.met === null ? 'n/a' : g.met ? 'yes' : '**no**', g.detail])));
  if (r.notes.length) L.push('', '## Notes', '', ...r.notes.map((n) => `- ${n}`));
  return L.join('\n') + '\n';
}
