/**
 * Saving and loading models in TensorFlow.js's layers format (`model.json` + `weights.bin`), the
 * files tfjs-node's `file://` handler writes and `tf.loadLayersModel('file://.../model.json')` reads.
 * Without tfjs-node there is no `file://` handler: these functions write the same files themselves.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from './backend.js';
import { TrainerError } from './errors.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

/** What {@link saveModel} wrote. */
export interface SavedModelInfo {
  /** Directory holding the files. */
  dir: string;
  /** `'file://'` when tfjs's own handler was used, `'ringpipe'` for the built-in writer. */
  handler: 'file://' | 'ringpipe';
  /** Bytes of the weights file. */
  weightBytes: number;
}

/**
 * Saves `model` into `dir` (created if needed) as `model.json` + `weights.bin`. Uses tfjs's `file://`
 * handler when one is registered (tfjs-node), else writes the same layout itself.
 */
export async function saveModel(tf: Tf, model: TF.LayersModel, dir: string): Promise<SavedModelInfo> {
  const abs = resolve(dir);
  await mkdir(abs, { recursive: true });
  try {
    const url = `file://${abs}`;
    if (tf.io.getSaveHandlers(url).length) {
      const r = await model.save(url);
      return { dir: abs, handler: 'file://', weightBytes: r.modelArtifactsInfo.weightDataBytes ?? 0 };
    }
    let weightBytes = 0;
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        const weights = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
        weightBytes = weights.byteLength;
        const json: TF.io.ModelJSON = {
          modelTopology: artifacts.modelTopology as object,
          format: artifacts.format,
          generatedBy: artifacts.generatedBy,
          convertedBy: artifacts.convertedBy,
          weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
        };
        if (artifacts.trainingConfig) json.trainingConfig = artifacts.trainingConfig;
        if (artifacts.signature) json.signature = artifacts.signature;
        if (artifacts.userDefinedMetadata) json.userDefinedMetadata = artifacts.userDefinedMetadata;
        // Write beside, then rename: a reader never sees half a model.
        await writeFile(join(abs, `${WEIGHTS_BIN}.tmp`), new Uint8Array(weights));
        await writeFile(join(abs, `${MODEL_JSON}.tmp`), JSON.stringify(json));
        await rename(join(abs, `${WEIGHTS_BIN}.tmp`), join(abs, WEIGHTS_BIN));
        await rename(join(abs, `${MODEL_JSON}.tmp`), join(abs, MODEL_JSON));
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
      }),
      { includeOptimizer: false },
    );
    return { dir: abs, handler: 'ringpipe', weightBytes };
  } catch (e) {
    throw new TrainerError('ERR_TRAINER_SAVE', `saving the model to ${abs} failed: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Reads the artifacts (topology, weight specs and data) of a model saved by {@link saveModel} or by
 * tfjs-node's `file://` handler from `dir`, reading the files directly so it works on every backend.
 */
export async function readModelArtifacts(tf: Tf, dir: string): Promise<TF.io.ModelArtifacts> {
  const abs = resolve(dir);
  let json: TF.io.ModelJSON;
  try {
    json = JSON.parse(await readFile(join(abs, MODEL_JSON), 'utf8')) as TF.io.ModelJSON;
  } catch (e) {
    throw new TrainerError('ERR_TRAINER_SAVE', `cannot read ${join(abs, MODEL_JSON)}: ${(e as Error).message}`, { cause: e });
  }
  return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
    const specs: TF.io.WeightsManifestEntry[] = [];
    const buffers: ArrayBuffer[] = [];
    for (const group of manifest) {
      specs.push(...group.weights);
      for (const p of group.paths) buffers.push(bufferOf(await readFile(join(abs, p))));
    }
    return [specs, tf.io.CompositeArrayBuffer.join(buffers)];
  });
}

/** Loads a layers model saved by {@link saveModel} (or by tfjs-node's `file://` handler) from `dir`. */
export async function loadModel(tf: Tf, dir: string): Promise<TF.LayersModel> {
  return tf.loadLayersModel(tf.io.fromMemory(await readModelArtifacts(tf, dir)));
}

/** A tensor and its name, as tfjs's weight encoding stores them. */
export interface NamedTensor {
  name: string;
  tensor: TF.Tensor;
}

/**
 * Writes named tensors (unique names, in order) to `file` in tfjs's weights encoding; returns their
 * specs, which {@link readWeights} needs.
 */
export async function writeWeights(tf: Tf, tensors: NamedTensor[], file: string): Promise<TF.io.WeightsManifestEntry[]> {
  const { data, specs } = await tf.io.encodeWeights(tensors);
  await writeFile(`${file}.tmp`, new Uint8Array(data));
  await rename(`${file}.tmp`, file);
  return specs;
}

/** Reads tensors written by {@link writeWeights}, in their order. The caller disposes them. */
export async function readWeights(tf: Tf, file: string, specs: TF.io.WeightsManifestEntry[]): Promise<NamedTensor[]> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new TrainerError('ERR_TRAINER_SAVE', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  const map = tf.io.decodeWeights(bufferOf(bytes), specs);
  return specs.map((s) => ({ name: s.name, tensor: map[s.name]! }));
}

function bufferOf(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}
