// The training job layer (src/train), DOM-free: hyperparameters with 'auto' rules, the memory
// planner, the trainer (steps, gradient accumulation, validation, checkpoints), jobs and the queue,
// and the finished adapter. Node-only helpers (file checkpoints / adapter files) are in
// ./node.ts; the IndexedDB checkpoint sink is in ./sink-store.ts. See src/train/README.md.
export * from './hyperparams.ts';
export * from './memory.ts';
export * from './checkpoint.ts';
export * from './adapter.ts';
export { Trainer, NonFiniteStepError, truncateExamples, toModelBatch, type TrainerInit, type TrainerHooks, type StepMetrics, type EvalMetrics } from './trainer.ts';
export { TrainingJob, JobQueue, JobCancelled, type JobInputs, type JobListener, type JobSpec, type JobResult } from './job.ts';
export { accumulate, accumulateOp, type AccumulateOp } from './accumulate.ts';
