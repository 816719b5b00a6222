// Every message between the page (src/ui) and the engine worker (workers/engine.worker.ts), as one
// discriminated union on `type`. Plain structured-clone data only (File objects included: the
// browser clones them as handles, not bytes).
// - Requests carry an `id`; each is answered by exactly one `reply` (its value typed by ReplyOf)
//   or one `error` with the same id. Long requests stream on the way: `progress` (imports and
//   downloads), `gen-token` / `gen-done` (generation), `selftest-*`.
// - Without WebGPU (`gpu-unavailable`) models, datasets and adapters still work, and `generate` with
//   backend 'onnx' runs on the CPU; training and the self-test need the GPU.
// - Pushes carry no request id: `job-update` / `job-event` / `job-metric` for every training job
//   the worker runs (also those resumed at start-up), `changed` when the store changed under the
//   page (an adapter saved by a finished job, a model downloaded).
// It is not: a transport (postMessage is), nor RPC machinery (src/ui/engine.ts pairs ids).
import type { GpuInfo } from './gpu/device.ts';
import type { SelftestResult } from './selftest.ts';
import type { HubProgress } from './model/hub.ts';
import type { LlamaConfig } from './model/config.ts';
import type { FinishReason } from './model/generate.ts';
import type { SamplingOptions } from './model/sample.ts';
import type { DatasetStats, Issue, PreviewToken, TrainOn, ValidationReport } from './data/index.ts';
import type { ModelOrigin, QuantInfo } from './store/models.ts';
import type { DatasetMeta } from './store/datasets.ts';
import type { JobEvent, JobMetric, JobRecord, JobStatus } from './store/jobs.ts';
import type { AdapterMeta } from './store/adapters.ts';
import type { HyperparameterInput, Hyperparameters } from './train/hyperparams.ts';
import type { MemoryPlan } from './train/memory.ts';

/** Bumped on any incompatible change; the worker answers `hello` with it. */
export const PROTOCOL_VERSION = 2;

export type EngineContext = 'worker' | 'window' | 'node';
export type StoreKind = 'models' | 'datasets' | 'jobs' | 'adapters';

/** A stored model as the Models list shows it (no config: that is `model-info`). */
export interface ModelSummary {
  id: string;
  name: string;
  source: ModelOrigin;
  complete: boolean;
  totalBytes: number;
  storedBytes: number;
  files: Array<{ name: string; size: number }>;
  quant: QuantInfo | null;
  /** 'hf' (config.json + safetensors) or 'gguf' */
  format: 'hf' | 'gguf';
  createdAt: number;
}

/** What a model is, read from its config (cheap: no weights loaded). */
export interface ModelDetails {
  id: string;
  config: LlamaConfig;
  /** modelShapeSignature(config): adapters with this shape fit the model */
  shape: string;
  /** parameters of the base (tied embeddings counted once) */
  params: number;
  /** GPU bytes of the frozen base per storage format (src/train/memory.ts planMemory) */
  baseBytes: { f32: number; q8: number; q4: number };
  tokenizer: { kind: string; vocabSize: number; bos: string | null; eos: string | null };
  chatTemplate: boolean;
}

/** What the page sends to check a dataset: pasted text, or a file (read as bytes in the worker). */
export type DatasetInput = { text: string; name?: string } | { file: File };

export interface DatasetCheck {
  /** the text as read (a file is decoded here, so the page can show and edit it) */
  text: string;
  /** the report, with issues capped at `issueLimit` (counts stay exact) */
  report: ValidationReport;
  issuesShown: number;
  /** statistics of the valid examples, with the model's tokenizer (null without a model) */
  stats: DatasetStats | null;
  /** the model whose tokenizer counted the tokens */
  modelId: string | null;
  /** 1-based lines of the valid examples, for the token view's example picker */
  exampleLines: number[];
  /** why no dataset could be built (the report's errors, or nothing usable) */
  reason: string | null;
  /** lines with errors (excluded when the valid lines are used) */
  badLines: number[];
}

/** Playground prompt: a chat turn (formatted like training: chat template or the plain fallback) or raw text. */
export type PromptInput = { mode: 'chat'; system?: string; user: string } | { mode: 'completion'; text: string };

export interface GenerationSummary {
  text: string;
  finishReason: FinishReason;
  promptTokens: number;
  tokens: number;
  tokensPerSecond: number;
  prefillMs: number;
  decodeMs: number;
  /** where it ran: 'gpu' (WebGPU, src/model/generate.ts) or 'onnx' (onnxruntime-web on the CPU, greedy) */
  backend?: 'gpu' | 'onnx';
}

/** A training job as lists and the dashboard show it. */
export interface JobSummary extends JobRecord {
  /** whether this worker is running it right now (validating, queued, running or paused in memory) */
  live: boolean;
  /** the last metric row, when there is one */
  last: JobMetric | null;
  /** the total optimizer steps, once known */
  totalSteps: number | null;
}

/** The planner's view of a run before it starts. */
export interface TrainPlan {
  resolved: Hyperparameters;
  /** one line per auto choice, 'key: value — why' */
  explanations: string[];
  plan: MemoryPlan;
  /** examples: in the dataset, used for training (after the validation split) */
  examples: number;
  trainSize: number;
  baseParams: number;
  /** trainable (LoRA) parameters and their share of the base */
  trainableParams: number;
  trainablePercent: number;
  /** tokens of one epoch and micro-batches per epoch */
  epochTokens: number;
  batchesPerEpoch: number;
}

/** What a run is made of, as the Train form sends it. */
export interface TrainRequest {
  modelId: string;
  datasetId: string;
  /** any field left out or 'auto' is chosen by src/train resolveHyperparameters */
  hyperparameters: HyperparameterInput;
  trainOn: TrainOn;
  /** GPU memory the run may take (WebGPU does not report a GPU's memory); default 4 GiB */
  budgetBytes?: number;
}

/** peft: adapter_config.json + adapter_model.safetensors; gguf: a llama.cpp LoRA adapter; merged: the base with
 *  the adapter folded in (Hugging Face folder); merged-gguf: the same for a GGUF base; onnx: the merged model as a
 *  transformers.js ONNX folder (config.json, tokenizer files, onnx/model.onnx); recipe: the same run for a GPU cluster. */
export type ExportFormat = 'peft' | 'gguf' | 'merged' | 'merged-gguf' | 'onnx' | 'recipe';

/** Where the playground generates: the GPU (WebGPU), or the CPU through an in-memory ONNX export (onnxruntime-web, wasm). */
export type GenerateBackend = 'gpu' | 'onnx';

export interface ExportedFile {
  /** file name to save as (a .zip when the format has several files) */
  name: string;
  mime: string;
  bytes: ArrayBuffer;
  /** the files written (inside the zip) */
  files: string[];
  notes: string[];
}

export type Message =
  // ---- page → worker -------------------------------------------------------------------------
  /** Acquire the GPU (once) and report it: answered by `ready` or `gpu-unavailable`. */
  | { type: 'hello' }
  /** Run every kernel against its CPU twin: answered by `selftest-plan`, `selftest-result`×k, `selftest-done`. */
  | { type: 'selftest'; id: number; filter?: string }
  /** Abort request `target` (a download, an import, a generation). Replied with whether it was running. */
  | { type: 'abort'; id: number; target: number }
  // models
  | { type: 'models-list'; id: number }
  | { type: 'model-info'; id: number; modelId: string }
  /** Store local files (a folder's HF files, or one .gguf); streams `progress`. */
  | { type: 'model-import'; id: number; name: string; files: Array<{ path: string; file: File }> }
  /** Download from a Hub-layout server (resumes a partial download); streams `progress`. */
  | { type: 'model-download'; id: number; repo: string; revision?: string; file?: string; baseUrl: string; name?: string }
  | { type: 'model-delete'; id: number; modelId: string }
  // datasets
  | { type: 'datasets-list'; id: number }
  /** Validate (and, with a model, tokenize and count) JSONL. */
  | { type: 'dataset-check'; id: number; input: DatasetInput; modelId: string | null; trainOn?: TrainOn }
  /** Token-by-token view of the example on `line` (what the loss covers). */
  | { type: 'dataset-preview'; id: number; text: string; line: number; modelId: string; trainOn?: TrainOn }
  /** Store a dataset; `excluded` lines (errors) are left out of training. */
  | { type: 'dataset-save'; id: number; name: string; text: string; excluded: number[] }
  | { type: 'dataset-get'; id: number; datasetId: string }
  | { type: 'dataset-rename'; id: number; datasetId: string; name: string }
  | { type: 'dataset-delete'; id: number; datasetId: string }
  // training
  | ({ type: 'train-plan'; id: number } & TrainRequest)
  | ({ type: 'train-start'; id: number; name: string } & TrainRequest)
  | { type: 'job-control'; id: number; jobId: string; action: 'pause' | 'resume' | 'cancel' }
  | { type: 'jobs-list'; id: number }
  | { type: 'job-get'; id: number; jobId: string }
  | { type: 'job-delete'; id: number; jobId: string }
  // playground
  /** Generate from one prompt with the base (adapterId null) and adapters, interleaved: streams `gen-token`, `gen-done` per lane.
   *  backend 'onnx' (default 'gpu'): on the CPU through onnxruntime-web, greedy (sampling ignored), lane after lane. */
  | { type: 'generate'; id: number; modelId: string; lanes: Array<{ adapterId: string | null }>; prompt: PromptInput; sampling: SamplingOptions; maxTokens: number; backend?: GenerateBackend }
  // adapters
  | { type: 'adapters-list'; id: number }
  | { type: 'adapter-rename'; id: number; adapterId: string; name: string }
  | { type: 'adapter-delete'; id: number; adapterId: string }
  /** Export an adapter (src/export): one file, or a .zip of the format's files. */
  | { type: 'adapter-export'; id: number; adapterId: string; format: ExportFormat; dtype?: 'f32' | 'f16' | 'bf16' }
  /** Import a PEFT adapter directory (adapter_config.json + adapter_model.safetensors) for a stored base model. */
  | { type: 'adapter-import'; id: number; modelId: string; name: string; files: Array<{ path: string; file: File }> }
  // ---- worker → page -------------------------------------------------------------------------
  | {
      type: 'ready';
      protocol: number;
      gpu: GpuInfo;
      /** where the engine runs: 'worker' inside a dedicated Web Worker */
      context: EngineContext;
      /** whether this tab runs training jobs (false: another tab holds the job lock) */
      jobsHere: boolean;
    }
  | {
      type: 'gpu-unavailable';
      protocol: number;
      /** the engine's explanation (GpuError message) */
      reason: string;
      /** whether navigator.gpu existed in the worker (false: no WebGPU in workers here) */
      navigatorGpu: boolean;
    }
  | { type: 'selftest-plan'; id: number; cases: Array<{ op: string; shape: string }> }
  | { type: 'selftest-result'; id: number; result: SelftestResult }
  | { type: 'selftest-done'; id: number; passed: number; failed: number; ms: number; context: EngineContext }
  /** The answer to request `id` (its value's type: ReplyOf[request type]). */
  | { type: 'reply'; id: number; value: unknown }
  /** Download / import progress of request `id`. */
  | { type: 'progress'; id: number; modelId: string; progress: HubProgress }
  | { type: 'gen-token'; id: number; lane: number; text: string; tokenId: number | null }
  | { type: 'gen-done'; id: number; lane: number; summary: GenerationSummary }
  | { type: 'job-update'; job: JobSummary }
  | { type: 'job-event'; jobId: string; event: JobEvent }
  | { type: 'job-metric'; jobId: string; metric: JobMetric }
  | { type: 'changed'; what: StoreKind }
  /** The GPU device was lost; the engine must be restarted (reload). */
  | { type: 'device-lost'; reason: string }
  /** A request failed as a whole (id when it belongs to one). */
  | { type: 'error'; id?: number; message: string };

/** The value each request is answered with. */
export interface ReplyOf {
  abort: boolean;
  'models-list': ModelSummary[];
  'model-info': ModelDetails;
  'model-import': ModelSummary;
  'model-download': ModelSummary & { cached: boolean; fetchedBytes: number; resumedBytes: number };
  'model-delete': boolean;
  'datasets-list': DatasetMeta[];
  'dataset-check': DatasetCheck;
  'dataset-preview': { tokens: PreviewToken[]; trained: number; total: number };
  'dataset-save': DatasetMeta;
  'dataset-get': DatasetMeta & { text: string };
  'dataset-rename': DatasetMeta;
  'dataset-delete': boolean;
  'train-plan': TrainPlan;
  'train-start': JobSummary;
  'job-control': JobSummary;
  'jobs-list': JobSummary[];
  'job-get': { job: JobSummary; events: JobEvent[]; metrics: JobMetric[] };
  'job-delete': boolean;
  generate: GenerationSummary[];
  'adapters-list': AdapterMeta[];
  'adapter-rename': AdapterMeta;
  'adapter-delete': boolean;
  'adapter-export': ExportedFile;
  'adapter-import': AdapterMeta;
}

type PageTypes = 'hello' | 'selftest' | keyof ReplyOf;
export type ToWorker = Extract<Message, { type: PageTypes }>;
export type FromWorker = Exclude<Message, { type: PageTypes }>;
/** A request that is answered by `reply`. */
export type Request = Extract<Message, { type: keyof ReplyOf }>;
export type RequestType = Request['type'];

export type { HubProgress, Issue, JobEvent, JobMetric, JobStatus, PreviewToken, DatasetMeta, AdapterMeta, HyperparameterInput, Hyperparameters, MemoryPlan, SamplingOptions, TrainOn };
