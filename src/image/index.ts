/**
 * `ringpipe/image`: image datasets, preprocessing (sharp, and a fused JPEG path on libjpeg-turbo)
 * and batching, and the segments and factories that run them on the engine (`imagePipeline`,
 * `imageItems`, `preprocessImages`, `writeShards`, `skippedImages`, `unusedImages`).
 */
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
export { parseCsv, parseCsvLabels, parseJsonLabels, readLabelList, type LabelEntry } from './labels.js';
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
export { centerCropBox, randomResizedCropBox, planResizeExtract, type CropBox, type ResizeExtractPlan } from './crop.js';
export { IMAGENET_MEAN, IMAGENET_STD, channelLuts, writeTensor, type Layout, type ImageDType, type Rgb, type WriteOptions } from './normalize.js';
export { allocBatch, batchSlot, stackBatch, hwcToChw, chwToHwc, type BatchLayout, type ImageBatch } from './batch.js';
export { findJemalloc, allocatorEnv, jemallocCandidates, type Allocator } from './allocator.js';
export { threadPlan, threadEnv, applyThreadPlan, type ThreadPlan, type ThreadPlanOptions, type AppliedThreads } from './threads.js';
export { ShardWriter, readManifest, readShard, ShardFormatError, SHARD_FORMAT, SHARD_VERSION, type ShardManifest, type ShardEntry, type ShardWriterOptions, type LoadedShard, type SampleBlock } from './shards.js';
export { Rng, permutation, hashInts, mix32 } from '../util/random.js';
export { ImageDecodeError } from './errors.js';
export { jpegHeader, jpegInfo, type ImageHeader, type JpegInfo } from './header.js';
export { fusedRefusal, type DecoderChoice } from './fused.js';
export { isSrgbProfile } from './icc.js';
export { ImagePreprocessor, ShardWriterSink, DigestSink, type DecoderCounts, type SampleDigest, type DigestReport, type SampleMeta, type ImagePreprocessorOptions, type ImagePreprocessorReport, type ShardSinkOptions } from './segments.js';
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
