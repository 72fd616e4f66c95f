/**
 * Epoch-end checkpoints of a trainer, and resuming from one.
 *
 * A checkpoint is a directory: `model.json` + `weights.bin` (the model as {@link saveModel} writes it,
 * loadable on its own), `optimizer.bin` (the optimizer's state, e.g. Adam's moments and step count, so
 * the first step after a resume is the one an uninterrupted run takes), `best.bin` (restoreBest's
 * weights, when the best epoch is not the last one) and `trainer-state.json`, written last: a
 * directory that holds it is complete.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from './backend.js';
import { TrainerError } from './errors.js';
import { readModelArtifacts, readWeights, saveModel, writeWeights, type NamedTensor } from './model-io.js';
import type { EpochReport } from './trainer.js';

/** The file that completes a checkpoint directory. */
export const STATE_JSON = 'trainer-state.json';
const OPTIMIZER_BIN = 'optimizer.bin';
const BEST_BIN = 'best.bin';
const EPOCH_DIR = /^epoch-(\d+)$/;

/** Tensors kept in a file of a checkpoint directory. */
export interface WeightsFileRef {
  /** File name inside the checkpoint directory. */
  file: string;
  /** tfjs weight specs of the file's tensors, in order. */
  specs: TF.io.WeightsManifestEntry[];
}

/** A trainer's state at the end of an epoch, besides the model's weights (JSON). */
export interface TrainerState {
  /** Last completed epoch (1-based; 0: none). Reports go on with `epoch + 1`. */
  epoch: number;
  /**
   * Reports of the completed epochs: they lead the result's history, count toward `maxEpochs`, and
   * are replayed into the early-stopping and restore-best monitors.
   */
  history?: EpochReport[];
  /** Training examples and steps of the completed epochs (default: summed from `history`). */
  samples?: number;
  steps?: number;
  /** Training had been stopped (early stopping, maxEpochs, the scheduler): the resumed trainer trains no more. */
  stopReason?: string;
  /** The optimizer's state; absent: the optimizer starts fresh. */
  optimizer?: WeightsFileRef & { className: string };
  /** restoreBest's weights (of epoch `epoch`); absent: the model's own weights are the best ones, if any. */
  best?: WeightsFileRef & { epoch: number };
}

/** Where a trainer starts from ({@link TrainerOptions.resume}). */
export interface TrainerResume extends TrainerState {
  /**
   * Directory (or `file://` URL) of a checkpoint, or of any model saved by `saveModel` or tfjs-node:
   * its weights are loaded into the model the factory builds (same architecture, matched in order),
   * and `optimizer` / `best` files are read from it.
   */
  model: string;
}

/** A complete checkpoint (in the directory `model`): pass it as `resume` to go on from it. */
export interface TrainerCheckpoint extends TrainerResume {
  trialId?: string;
}

/** Reads the checkpoint in `dir` (a directory a trainer's `checkpoint` option produced, `epoch-N`). */
export async function readCheckpoint(dir: string): Promise<TrainerCheckpoint> {
  const abs = resolve(dir);
  try {
    const state = JSON.parse(await readFile(join(abs, STATE_JSON), 'utf8')) as TrainerState & { trialId?: string };
    return { ...state, model: abs };
  } catch (e) {
    throw new TrainerError('ERR_TRAINER_RESUME', `${abs} holds no complete checkpoint: ${(e as Error).message}`, { cause: e });
  }
}

/** The latest complete checkpoint under a trainer's `checkpoint` directory, if any. */
export async function latestCheckpoint(root: string): Promise<TrainerCheckpoint | undefined> {
  const names = await readdir(resolve(root)).catch(() => [] as string[]);
  const epochs = names.map((n) => EPOCH_DIR.exec(n)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1])).sort((a, b) => b - a);
  for (const e of epochs) {
    const ck = await readCheckpoint(join(root, `epoch-${e}`)).catch(() => undefined);
    if (ck) return ck;
  }
  return undefined;
}

/** The directory of epoch `epoch`'s checkpoint under `root`. */
export const checkpointDir = (root: string, epoch: number) => join(resolve(root), `epoch-${epoch}`);

/** Removes the checkpoints under `root` other than `keep` (older ones, or a previous run's). */
export async function pruneCheckpoints(root: string, keep: string): Promise<void> {
  const names = await readdir(resolve(root)).catch(() => [] as string[]);
  for (const n of names) {
    const dir = join(resolve(root), n);
    if (EPOCH_DIR.test(n) && dir !== resolve(keep)) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Writes a checkpoint of `model` and `state` into `dir` (replacing what is there). `best`: the best
 * epoch's weights, when they are not the model's current ones.
 */
export async function writeCheckpoint(
  tf: Tf,
  model: TF.LayersModel,
  dir: string,
  state: Omit<TrainerState, 'optimizer' | 'best'> & { trialId?: string },
  best?: { epoch: number; weights: TF.Tensor[] },
): Promise<TrainerCheckpoint> {
  const abs = resolve(dir);
  await rm(abs, { recursive: true, force: true });
  await mkdir(abs, { recursive: true });
  await saveModel(tf, model, abs);
  const out: TrainerState & { trialId?: string } = { ...state };
  const opt = model.optimizer;
  if (opt) {
    let weights: NamedTensor[] | undefined;
    try {
      weights = await opt.getWeights();
    } catch {
      // An optimizer that cannot export its state: a resumed trainer starts it fresh.
    }
    if (weights) {
      try {
        out.optimizer = { className: opt.getClassName(), file: OPTIMIZER_BIN, specs: await writeWeights(tf, weights, join(abs, OPTIMIZER_BIN)) };
      } finally {
        // getWeights() makes some tensors (the step count); the rest are the optimizer's own variables.
        for (const w of weights) if (!(w.tensor instanceof tf.Variable)) w.tensor.dispose();
      }
    }
  }
  if (best) {
    const specs = await writeWeights(tf, best.weights.map((tensor, i) => ({ name: `w${i}`, tensor })), join(abs, BEST_BIN));
    out.best = { epoch: best.epoch, file: BEST_BIN, specs };
  }
  await writeFile(join(abs, `${STATE_JSON}.tmp`), JSON.stringify(out));
  await rename(join(abs, `${STATE_JSON}.tmp`), join(abs, STATE_JSON));
  return { ...out, model: abs };
}

/**
 * Loads `resume`'s weights (and optimizer state) into `model`; returns restoreBest's weights when the
 * checkpoint holds them (the caller disposes them).
 */
export async function applyResume(tf: Tf, model: TF.LayersModel, resume: TrainerResume): Promise<TF.Tensor[] | undefined> {
  const dir = resolve(resume.model.startsWith('file:') ? fileURLToPath(resume.model) : resume.model);
  const artifacts = await readModelArtifacts(tf, dir);
  const specs = (artifacts.weightSpecs ?? []).filter((s) => s.group !== 'optimizer');
  const all = artifacts.weightData ? tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs ?? []) : {};
  try {
    const values = specs.map((s) => all[s.name]!);
    fits(model, values, `the weights in ${dir}`);
    model.setWeights(values);
  } finally {
    tf.dispose(Object.values(all));
  }
  if (resume.optimizer && model.optimizer) {
    const have = model.optimizer.getClassName();
    if (have !== resume.optimizer.className) {
      throw new TrainerError('ERR_TRAINER_RESUME', `the checkpoint in ${dir} holds the state of a ${resume.optimizer.className} optimizer, the model has a ${have} one`);
    }
    const w = await readWeights(tf, join(dir, resume.optimizer.file), resume.optimizer.specs);
    try {
      await model.optimizer.setWeights(w);
    } finally {
      tf.dispose(w.map((x) => x.tensor));
    }
  }
  if (!resume.best) return undefined;
  const best = (await readWeights(tf, join(dir, resume.best.file), resume.best.specs)).map((x) => x.tensor);
  try {
    fits(model, best, `the best weights in ${dir}`);
  } catch (e) {
    tf.dispose(best);
    throw e;
  }
  return best;
}

function fits(model: TF.LayersModel, values: TF.Tensor[], what: string): void {
  const want = model.weights.map((w) => w.shape.join('x'));
  const have = values.map((v) => v.shape.join('x'));
  if (want.join(',') !== have.join(',')) {
    throw new TrainerError('ERR_TRAINER_RESUME', `${what} do not fit the model: shapes [${have.join(', ')}], the model's [${want.join(', ')}]`);
  }
}
