/**
 * A saved model held in memory as its files (`model.json` + `weights.bin`, what {@link saveModel}
 * writes): a value that can be stored as one cache record, sent to another process, written back to
 * a directory, or loaded as a tfjs model without touching the disk.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from './backend.js';
import { TrainerError } from './errors.js';
import { MODEL_JSON } from './model-io.js';

/** A model in tfjs's layers format, by file name. */
export interface ModelFiles {
  format: 'tfjs-layers';
  /** `model.json`, its weight files, and anything else the saver wrote. */
  files: Record<string, Uint8Array>;
}

/** Reads every file of a directory written by {@link saveModel}. */
export async function readModelFiles(dir: string): Promise<ModelFiles> {
  const files: Record<string, Uint8Array> = {};
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isFile()) files[e.name] = new Uint8Array(await readFile(join(dir, e.name)));
  }
  if (!files[MODEL_JSON]) throw new TrainerError('ERR_TRAINER_SAVE', `${dir} holds no ${MODEL_JSON}`);
  return { format: 'tfjs-layers', files };
}

/** Writes the files into `dir` (created if needed); `loadModel(tf, dir)` or tfjs-node's `file://` loader read them. */
export async function writeModelFiles(model: ModelFiles, dir: string): Promise<string> {
  const abs = resolve(dir);
  await mkdir(abs, { recursive: true });
  for (const [name, bytes] of Object.entries(checkFiles(model))) await writeFile(join(abs, name), bytes);
  return abs;
}

/** Loads the model from memory (every backend; no `file://` handler needed). */
export async function loadModelFiles(tf: Tf, model: ModelFiles): Promise<TF.LayersModel> {
  const files = checkFiles(model);
  const json = JSON.parse(Buffer.from(files[MODEL_JSON]!).toString('utf8')) as TF.io.ModelJSON;
  const artifacts = await tf.io.getModelArtifactsForJSON(json, async (manifest) => {
    const buffers = manifest.flatMap((g) =>
      g.paths.map((p) => {
        const b = files[p.replace(/^\.\//, '')];
        if (!b) throw new TrainerError('ERR_TRAINER_SAVE', `the model's weight file ${p} is missing`);
        return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
      }),
    );
    return [manifest.flatMap((g) => g.weights), tf.io.CompositeArrayBuffer.join(buffers)];
  });
  return tf.loadLayersModel(tf.io.fromMemory(artifacts));
}

function checkFiles(model: ModelFiles): Record<string, Uint8Array> {
  const files = model?.files;
  if (!files || !(files[MODEL_JSON] instanceof Uint8Array)) throw new TrainerError('ERR_TRAINER_SAVE', `not a model in memory: expected { files: { '${MODEL_JSON}': bytes, ... } }`);
  return files;
}
