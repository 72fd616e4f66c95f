/** What a sweep knows about each trial, as it runs and in its results. */
import type { ErrorInfo, EpochReport } from '../train/trainer.js';
import type { Params } from './space.js';

/** Where a trial is: not started, training, or how it ended. */
export type TrialState = 'pending' | 'running' | 'completed' | 'stopped' | 'failed';

/** One epoch of a trial in the results (an {@link EpochReport} without the trial id). */
export type EpochEntry = Omit<EpochReport, 'trialId'>;

/** A trial as the sweep reports it: parameters, placement, backend, history, score and outcome. */
export interface TrialRecord {
  id: string;
  index: number;
  params: Params;
  state: TrialState;
  /** 0-based wave the trial ran in. */
  wave?: number;
  /** Trainer slot and its GPU (null: CPU). */
  slot?: number;
  gpu?: number | null;
  /** tfjs backend name (`tensorflow`, `wasm`, `cpu`). */
  backend?: string;
  /** One line on the backend, package, device and skipped candidates. */
  backendDetail?: string;
  device?: 'gpu' | 'cpu';
  /** `CUDA_VISIBLE_DEVICES` inside the trainer process. */
  cudaVisibleDevices?: string;
  pid?: number;
  history: EpochEntry[];
  /** Best value of the sweep's metric over the epochs, and its epoch. */
  score?: number;
  bestEpoch?: number;
  /** Test metrics (`test_loss`, `test_acc`, ...). */
  test?: Record<string, number>;
  /** `test_acc` (or `test_accuracy`), null without a test set. */
  testAccuracy: number | null;
  stopReason?: string;
  error?: ErrorInfo;
  /** Directory of the saved model, if kept. */
  modelDir?: string;
  /** Trainer wall time. */
  seconds?: number;
}
