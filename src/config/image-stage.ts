// The `image_preprocess` stage type: src/image's `preprocess` as a JSON pipeline stage.
//
//   "prepared": { "type": "image_preprocess", "inputs": ["raw_images"], "size": 224, "crop": "center" }
//
// Input records: a file path, encoded bytes (Buffer / Uint8Array), or an image item
// `{ path | buffer, index?, label?, className? }`. The options are src/image's PreprocessSpec
// (`decoder: 'sharp'` turns the fused JPEG path off). Output: one tensor record per image,
// `{ data: Float32Array | Uint8Array, shape, dtype, layout, decoder }` (plus `index`, `label` for
// items; `decoder` says whether the fused JPEG path or sharp made it). Random augmentations are
// keyed on the record's index in the stream, so they are the same in every run and with any number
// of workers.
import { preprocess, preprocessItem, type ImageItem, type PreprocessSpec } from '../image/index.js';
import { InvalidArgumentError } from '../errors.js';
import { allocatorEnv } from '../image/allocator.js';
import { applyThreadPlan, threadPlan, vipsThreadsAtFirstRecord } from '../image/threads.js';
import type { LibraryStageImplementation } from './library.js';
import type { StageContext } from './runner.js';

const rgb = { type: 'array', items: { type: 'number' }, minItems: 3, maxItems: 3 };
const pair = { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 };

/** Sets the replica's libvips threads again at its first call (see vipsThreadsAtFirstRecord). */
let atFirstCall = (): void => {};

/** `image_preprocess`: decode + crop + resize + flip + normalise (see src/image `PreprocessSpec`). */
export const imagePreprocess: LibraryStageImplementation = {
  inputs: 1,
  // jemalloc in replica processes, as imagePipeline's (src/image/allocator.ts).
  processEnv: () => allocatorEnv('auto'),
  // Replicas on the engine size libvips' threads by the rule of src/image/threads.ts, as
  // ImagePreprocessor's do (in this stage's own process, left as the user set them).
  setup({ replicas, ownProcess }) {
    const plan = threadPlan({ replicas, replicasPerProcess: ownProcess ? 1 : replicas });
    applyThreadPlan(plan);
    atFirstCall = vipsThreadsAtFirstRecord(plan.vipsConcurrency);
  },
  optionsSchema: {
    type: 'object',
    properties: {
      size: { oneOf: [{ type: 'integer', minimum: 1 }, { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 2, maxItems: 2 }] },
      crop: { enum: ['center', 'random', 'resize'] },
      centerFraction: { type: 'number' },
      scale: pair,
      ratio: pair,
      attempts: { type: 'integer', minimum: 1 },
      flip: { type: ['boolean', 'number'] },
      layout: { enum: ['hwc', 'chw'] },
      dtype: { enum: ['float32', 'uint8'] },
      mean: rgb,
      std: rgb,
      seed: { type: 'integer', minimum: 0 },
      kernel: { enum: ['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3', 'mks2013', 'mks2021'] },
      fastShrinkOnLoad: { type: 'boolean' },
      strategy: { enum: ['resize-extract', 'extract-resize'] },
      background: rgb,
      autoOrient: { type: 'boolean' },
      failOn: { enum: ['none', 'truncated', 'error', 'warning'] },
      limitInputPixels: { type: 'integer', minimum: 1 },
      readFile: { enum: [true, false, 'sync', 'async'] },
      decoder: { enum: ['auto', 'sharp'] },
    },
    additionalProperties: false,
  },
  async run(input: unknown, ctx: StageContext) {
    atFirstCall();
    const spec = ctx.options as PreprocessSpec;
    if (typeof input === 'string' || input instanceof Uint8Array) {
      return preprocess(input, spec, undefined, { index: ctx.index });
    }
    if (input && typeof input === 'object' && ('path' in input || 'buffer' in input)) {
      const o = input as Partial<ImageItem>;
      const item: ImageItem = { index: o.index ?? ctx.index, label: o.label ?? -1, path: o.path, buffer: o.buffer, className: o.className, epoch: o.epoch };
      return preprocessItem(item, spec);
    }
    throw new InvalidArgumentError(`image_preprocess: a record must be a path, bytes or { path | buffer } (record ${ctx.index} is ${typeof input})`);
  },
};
