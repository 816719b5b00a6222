// The in-browser half of `whittle bench`'s browser peer (bench.html; driven by src/bench/browser.ts):
// in one page, our inference engine on the browser's WebGPU adapter and onnxruntime-web (wasm, one
// thread; the runtime transformers.js uses) decoding the same model (its ONNX export, made in the
// page) with the same prompt length and new tokens. Model files come from `bench-model/<file>`
// (the driver answers those requests from disk). Then, with trainSteps > 0, a LoRA training step of
// the same model in the same page (src/bench/train.ts: the step `whittle bench` times in Node, here on
// the browser's adapter: what a user of the app gets per micro-batch). With ortWebgpu=1 also
// onnxruntime-web's WebGPU execution provider on the page's WebGPU adapter — the adapter ours runs
// on — as transformers.js runs with device 'webgpu' (the KV cache kept on the GPU between steps:
// preferredOutputLocation 'gpu-buffer'; the logits read back). With driver=1 (or tiny: small probes)
// the page's adapter's ceilings too (src/bench/driver.ts: FMA, one load, one dispatch), what bounds
// every figure above on it.
// Query: ?prompt=N&gen=N&runs=N[&lookahead=N][&ortWebgpu=1][&driver=1|tiny][&trainSteps=N&trainBatch=B&trainSeq=T]
// (lookahead: generate's greedy steps in flight). The result (or {error}) is stored in
// window.__whittleBench.
import { acquireGpu } from '../gpu/device.ts';
import { loadModel } from '../model/load.ts';
import { memorySource } from '../model/source.ts';
import { benchInfer, type InferResult } from './infer.ts';
import { benchTrain, type TrainResult } from './train.ts';
import { benchOnnxPeer } from './onnx-peer.ts';
import { benchDriver, type DriverCeilings } from './driver.ts';

export interface BrowserBenchResult {
  userAgent: string;
  adapter: string;
  ours: InferResult;
  onnxruntimeWeb: Awaited<ReturnType<typeof benchOnnxPeer>>;
  decodeRatio: number;
  /**
   * onnxruntime-web's WebGPU execution provider on the same WebGPU adapter (ortWebgpu=1), or the
   * error that stopped it (e.g. an adapter it does not support); null when not asked for
   */
  onnxruntimeWebgpu: Awaited<ReturnType<typeof benchOnnxPeer>> | { error: string } | null;
  /** ours ÷ onnxruntimeWebgpu decode tokens/s (null when that peer did not run) */
  decodeRatioWebgpu: number | null;
  /** the page's adapter's ceilings (src/bench/driver.ts); null when not asked for */
  driver: DriverCeilings | null;
  /** a LoRA training step of the same model (f32 base) on the page's adapter; null when not asked for (trainSteps 0) */
  train: TrainResult | null;
}

const logEl = document.getElementById('log');
const log = (s: string) => {
  if (logEl) logEl.textContent += s + '\n';
};
const w = window as unknown as { __whittleBench?: BrowserBenchResult | { error: string } };

async function main(): Promise<void> {
  const q = new URLSearchParams(location.search);
  const c = { prompt: Number(q.get('prompt') ?? 128), gen: Number(q.get('gen') ?? 64), runs: Number(q.get('runs') ?? 5) };
  const files: Record<string, Uint8Array> = {};
  // a Hugging Face folder: config, weights, tokenizer (required); generation / tokenizer config if present
  for (const [f, required] of [['config.json', true], ['model.safetensors', true], ['tokenizer.json', true], ['tokenizer_config.json', false], ['generation_config.json', false]] as const) {
    const r = await fetch(`bench-model/${f}`);
    if (!r.ok) {
      if (required) throw new Error(`bench-model/${f}: HTTP ${r.status}`);
      continue;
    }
    files[f] = new Uint8Array(await r.arrayBuffer());
  }
  const m = await loadModel(memorySource('bench-model', files));
  const gpu = await acquireGpu();
  const adapter = gpu.info.description || `${gpu.info.vendor} ${gpu.info.architecture}`;
  log(`adapter: ${adapter}`);
  const la = q.get('lookahead');
  const ours = await benchInfer(gpu, m.config, m.weights, { model: 'bench-model', quant: 'f32', ...c, ...(la ? { lookahead: Number(la) } : {}) }, log);
  const peer = await benchOnnxPeer(m.config, m.weights, c, log);
  let gpuPeer: BrowserBenchResult['onnxruntimeWebgpu'] = null;
  if (q.get('ortWebgpu') === '1') {
    try {
      gpuPeer = await benchOnnxPeer(m.config, m.weights, c, log, 'webgpu');
    } catch (e) {
      gpuPeer = { error: (e as Error).message };
      log(`onnxruntime-web WebGPU: ${(e as Error).message}`);
    }
  }
  const dq = q.get('driver');
  const driver = dq === '1' || dq === 'tiny' ? await benchDriver(gpu, { runs: 3, tiny: dq === 'tiny' }) : null;
  const steps = Number(q.get('trainSteps') ?? 0);
  const train = steps > 0
    ? await benchTrain(gpu, m.config, m.weights, {
      model: 'bench-model', setting: 'browser', quant: 'f32', batch: Number(q.get('trainBatch') ?? 2), seq: Number(q.get('trainSeq') ?? 64), warmup: 2, steps,
    }, log)
    : null;
  w.__whittleBench = {
    userAgent: navigator.userAgent, adapter, ours, onnxruntimeWeb: peer,
    decodeRatio: ours.decodeTokensPerSecond.median / peer.decodeTokensPerSecond.median,
    onnxruntimeWebgpu: gpuPeer, driver,
    decodeRatioWebgpu: gpuPeer && !('error' in gpuPeer) ? ours.decodeTokensPerSecond.median / gpuPeer.decodeTokensPerSecond.median : null, train,
  };
  log('done');
}

main().catch((e) => {
  w.__whittleBench = { error: (e as Error).stack ?? String(e) };
  log(`error: ${(e as Error).message}`);
});
