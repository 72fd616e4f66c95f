/**
 * `ringpipe/image`: image datasets, preprocessing (sharp, and a fused JPEG path on libjpeg-turbo)
 * and batching, and the segments and factories that run them on the engine (`imagePipeline`,
 * `imageItems`, `preprocessImages`, `writeShards`, `skippedImages`, `unusedImages`).
 *
 * @packageDocumentation
 */

/** Datasets: list a folder (class per folder, or a label file) or a list of inputs, order and shard it; the source segment. */
export {
  DEFAULT_EXTENSIONS,
  imageFolder,
  imageList,
  imageSource,
  ImageSourceSegment,
  loadDataset,
  selectItems,
  resolveOrder,
  type ImageItem,
  type ImageDataset,
  type ImageSourceReport,
  type UnusedImageEntry,
  type ImageFolderOptions,
  type ImageInput,
  type ImageListOptions,
  type ImageSourceOptions,
  type LabelSource,
  type OrderOptions,
} from './folder.js';
/** Label files: CSV and JSON lists of path and label. */
export { parseCsv, parseCsvLabels, parseJsonLabels, readLabelList, type LabelEntry } from './labels.js';
/** Preprocessing one image: decode, crop, resize, flip, normalise into a tensor (`preprocess`), and its spec. */
export {
  preprocess,
  preprocessItem,
  resolveSpec,
  outputShape,
  outputLength,
  augmentation,
  type PreprocessSpec,
  type PreprocessResult,
  type ResolvedSpec,
  type ImageTensor,
  type SampleKey,
  type PreprocessedSample,
  type CropMode,
  type CropStrategy,
  type ResizeKernel,
} from './decode.js';
/** Crop boxes: centre and random-resized crops, and how a crop is executed. */
export { centerCropBox, randomResizedCropBox, planResizeExtract, type CropBox, type ResizeExtractPlan } from './crop.js';
/** Normalising pixels into tensors: ImageNet mean and std, lookup tables, the tensor writer. */
export { IMAGENET_MEAN, IMAGENET_STD, channelLuts, writeTensor, type Layout, type ImageDType, type Rgb, type WriteOptions } from './normalize.js';
/** Batches of images: allocate, stack, and convert between HWC and CHW. */
export { allocBatch, batchSlot, stackBatch, hwcToChw, chwToHwc, type BatchLayout, type ImageBatch } from './batch.js';
/** jemalloc for preprocessing processes: where it is, and the environment that preloads it. */
export { findJemalloc, allocatorEnv, jemallocCandidates, type Allocator } from './allocator.js';
/** The thread rule: libvips and libuv threads per replica for the cores there are. */
export { threadPlan, threadEnv, applyThreadPlan, type ThreadPlan, type ThreadPlanOptions, type AppliedThreads } from './threads.js';
/** Shard files of preprocessed samples: write, and read back with their manifest. */
export { ShardWriter, readManifest, readShard, ShardFormatError, SHARD_FORMAT, SHARD_VERSION, type ShardManifest, type ShardEntry, type ShardWriterOptions, type LoadedShard, type SampleBlock } from './shards.js';
/** Seeded random numbers, as augmentation and shuffling use them. */
export { Rng, permutation, hashInts, mix32 } from '../util/random.js';
/** An image that cannot be read or decoded (`ERR_IMAGE_DECODE`). */
export { ImageDecodeError } from './errors.js';
/** A JPEG's header: size, components, progressive, orientation, ICC profile. */
export { jpegHeader, jpegInfo, type ImageHeader, type JpegInfo } from './header.js';
/** Why the fused JPEG path leaves an image to sharp. */
export { fusedRefusal, type DecoderChoice } from './fused.js';
/** Whether an ICC profile is sRGB. */
export { isSrgbProfile } from './icc.js';
/** The segments image pipelines run: preprocessing, shard writing, digests; their options and reports. */
export { ImagePreprocessor, ShardWriterSink, DigestSink, type DecoderCounts, type SampleDigest, type DigestReport, type SampleMeta, type ImagePreprocessorOptions, type ImagePreprocessorReport, type ShardSinkOptions } from './segments.js';
/** Image pipelines on the engine: `imagePipeline` and its parts, and what a run skipped or left unused. */
export {
  imagePipeline,
  imageItems,
  preprocessImages,
  writeShards,
  digestSink,
  batchNamed,
  ringCapacity,
  skippedImages,
  unusedImages,
  type ImagePipelineOptions,
  type PreprocessImagesOptions,
  type WriteShardsOptions,
  type SkippedImage,
} from './pipeline.js';
