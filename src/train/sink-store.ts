// The CheckpointSink for the browser / worker: the store's crash-atomic IndexedDB checkpoints
// (src/store/checkpoints.ts saveCheckpoint / loadCheckpoint; the job record must exist in the store).
import { loadCheckpoint, saveCheckpoint } from '../store/checkpoints.ts';
import type { CheckpointSink } from './checkpoint.ts';

export function storeCheckpointSink(): CheckpointSink {
  return {
    async save(jobId, ckpt) {
      await saveCheckpoint(jobId, ckpt);
    },
    load: (jobId) => loadCheckpoint(jobId),
  };
}
