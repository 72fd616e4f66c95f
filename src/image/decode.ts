/**
 * Decode + crop + resize + flip + normalise one image into a caller-provided tensor.
 *
 * JPEGs the fused path handles (see ./fused.ts) take one native call: decode only the crop's
 * rows and columns at a reduced DCT scale, resample, normalise and lay out into `out`. Everything
 * else takes one sharp pipeline per image: auto-orient (EXIF), resize with JPEG/WebP shrink-on-load,
 * extract the crop, drop or flatten alpha, convert to 8-bit sRGB, raw output; then one native pass
 * writes the pixels into `out` (normalised float32 or uint8, HWC or CHW, mirrored if flipped): at
 * most one copy after sharp's own output. Both paths crop the same box (`augmentation`).
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import sharp, { type OutputInfo, type Sharp, type SharpOptions } from 'sharp';
import { InvalidArgumentError } from '../errors.js';
import { centerCropBox, planResizeExtract, randomResizedCropBox, type CropBox } from './crop.js';
import { ImageDecodeError } from './errors.js';
import { fusedDecode, fusedRefusal, type DecoderChoice } from './fused.js';
import { jpegHeader, jpegInfo } from './header.js';
import type { ImageItem } from './folder.js';
import { channelLuts, packLuts, writeTensor, type ImageDType, type Layout, type Rgb } from './normalize.js';
import { Rng, STREAM_AUGMENT } from '../util/random.js';

/**
 * How the output window is chosen:
 * - `'center'`: torchvision's evaluation crop, `Resize(size / centerFraction)` + `CenterCrop(size)`;
 * - `'random'`: torchvision's `RandomResizedCrop(size, scale, ratio)`;
 * - `'resize'`: the whole image resized to `size` (aspect ratio not kept).
 */
export type CropMode = 'center' | 'random' | 'resize';

/** libvips resampling kernels (sharp's names). `'linear'` is bilinear with antialiasing on reduction, as torchvision's default. */
export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'mitchell' | 'lanczos2' | 'lanczos3' | 'mks2013' | 'mks2021';

/**
 * How a crop is executed by sharp:
 * - `'resize-extract'`: resize the whole image by the crop's scale factors, then extract the output
 *   box. Keeps JPEG/WebP shrink-on-load and libvips only computes the extracted pixels. The box is
 *   exact to within half an output pixel.
 * - `'extract-resize'`: extract the exact crop, then resize it. Pixel-exact geometry, but sharp
 *   disables shrink-on-load after a pre-resize extract, so large images decode at full size.
 */
export type CropStrategy = 'resize-extract' | 'extract-resize';

/** What {@link preprocess} produces. Treat a spec as immutable once in use. */
export interface PreprocessSpec {
  /** Output size: a side length for a square, or `[height, width]`. Default 224. */
  size?: number | readonly [number, number];
  /** How the output window is chosen. Default `'center'`. */
  crop?: CropMode;
  /** For `crop: 'center'`: the fraction of the (scaled) image the output covers along its limiting side; 0.875 is torchvision's 224-of-256. Default 0.875. */
  centerFraction?: number;
  /** For `crop: 'random'`: range of the crop's area as a fraction of the image. Default `[0.08, 1]`. */
  scale?: readonly [number, number];
  /** For `crop: 'random'`: range of the crop's aspect ratio (width / height), drawn log-uniformly. Default `[3/4, 4/3]`. */
  ratio?: readonly [number, number];
  /** For `crop: 'random'`: tries before falling back to a centre crop. Default 10. */
  attempts?: number;
  /** Horizontal flip: `true` = with probability 0.5, or a probability in [0, 1]. Default false. */
  flip?: boolean | number;
  /** Tensor layout, `[H, W, 3]` or `[3, H, W]`. Default `'hwc'`. */
  layout?: Layout;
  /** `'float32'`: `(v / 255 - mean) / std` per channel; `'uint8'`: the 8-bit sRGB values. Default `'float32'`. */
  dtype?: ImageDType;
  /** Per-channel mean subtracted from `v / 255` (float32 only). Default `[0, 0, 0]`; see `IMAGENET_MEAN`. */
  mean?: Rgb;
  /** Per-channel divisor after the mean (float32 only). Default `[1, 1, 1]`; see `IMAGENET_STD`. */
  std?: Rgb;
  /** Seed of the augmentation randomness (non-negative integer); a sample's draws depend only on (seed, epoch, index). Default 0. */
  seed?: number;
  /** Resampling kernel. Default `'linear'`. */
  kernel?: ResizeKernel;
  /** Let JPEG/WebP shrink-on-load take the largest power-of-two reduction (faster, can add slight moire); false keeps a factor of 2 for the final resize. Default true. */
  fastShrinkOnLoad?: boolean;
  /**
   * How crops are executed; see {@link CropStrategy}. Default `'resize-extract'`: the same cost as
   * `'extract-resize'` on ~500x375 JPEGs (shrink-on-load rarely applies there) and 13 % less CPU per
   * image on 1080p-5K JPEGs (bench/suites/image.ts).
   */
  strategy?: CropStrategy;
  /** Composite transparent pixels over this RGB (0-255) colour; by default the alpha channel is dropped (as PIL's `convert('RGB')`). */
  background?: Rgb;
  /** Rotate/mirror according to the EXIF orientation before cropping. Default true. */
  autoOrient?: boolean;
  /** sharp's `failOn`: the level of libvips message that makes a decode fail. `'warning'` (the default) rejects truncated files. */
  failOn?: 'none' | 'truncated' | 'error' | 'warning';
  /** Reject images with more pixels than this (decompression bombs). Default 268,402,689 (sharp's default). */
  limitInputPixels?: number;
  /**
   * For file inputs, how the bytes reach sharp:
   * - `'sync'`: read on the calling thread, then sharp is given the bytes (a JPEG's size and
   *   orientation are parsed in JS). Cheapest: 6-9 % less CPU per 500x375 JPEG than `'async'`,
   *   whose open, stat, read and close each cross to libuv's pool and back (paired whole-process
   *   runs of the serial loop of bench/suites/image.ts). It blocks the event loop for the read:
   *   microseconds for a cached file of tens of KiB, which is why the pipeline's replicas
   *   (`ImagePreprocessor`) read this way by default.
   * - `'async'` (or `true`): the same, read with fs/promises. The default of `preprocess()`,
   *   whose caller's event loop may serve other work.
   * - `false`: libvips opens the file itself, twice (header, then pixels): 7-11 % more CPU per
   *   500x375 JPEG, but very large files are not held in memory.
   *
   * Either way the path is opened non-blocking and anything but a regular file (a FIFO, a device)
   * is rejected, so it cannot block a thread. Files over 256 MiB are always left to libvips.
   * Default `'async'` (`'sync'` in `ImagePreprocessor`).
   *
   * The fused JPEG path runs on the calling thread with `'sync'` (files or bytes), on libuv's pool
   * otherwise. It needs the bytes: with `false` ringpipe reads them for it (as `'async'`), and
   * libvips opens the file itself only for the images the fused path leaves to sharp. So the
   * tensors are the same whatever `readFile` says.
   */
  readFile?: boolean | 'sync' | 'async';
  /**
   * `'auto'` (default): JPEGs that the fused path handles (8-bit YCbCr or grey, baseline or
   * progressive, no EXIF rotation, no ICC profile but sRGB; see ./fused.ts) are decoded by it,
   * everything else by sharp. `'sharp'`: every image through sharp. The two agree within JPEG
   * resampling differences (bench/RESULTS.md gives the mean absolute error and PSNR per corpus).
   */
  decoder?: DecoderChoice;
}

/** An image tensor: `data` is exactly `shape[0] * shape[1] * shape[2]` elements. */
export interface ImageTensor<T extends Float32Array | Uint8Array = Float32Array | Uint8Array> {
  data: T;
  shape: [number, number, number];
  dtype: ImageDType;
  /** `'hwc'` when `shape` is `[H, W, 3]`, `'chw'` when it is `[3, H, W]`. */
  layout: Layout;
}

/** What {@link preprocess} returns: the tensor, and which decoder made it. */
export interface PreprocessResult extends ImageTensor {
  /** `'fused'`: the fused JPEG path (native/jpeg); `'sharp'`: sharp (libvips). */
  decoder: 'fused' | 'sharp';
  /** Set when the fused path took the file but libjpeg failed on it (its message), and sharp decoded it instead. */
  fusedFailure?: string;
}

/** Identifies a sample for its augmentation randomness. */
export interface SampleKey {
  /** The sample's dataset index (see `ImageItem.index`). */
  index: number;
  /** The epoch, so each epoch draws new augmentations. Default 0. */
  epoch?: number;
}

/** A spec with defaults applied and values checked (fields as in {@link PreprocessSpec}; `size` split into `height`/`width`, `flip` into the probability `flipP`). */
export interface ResolvedSpec {
  height: number;
  width: number;
  crop: CropMode;
  centerFraction: number;
  scale: [number, number];
  ratio: [number, number];
  attempts: number;
  flipP: number;
  layout: Layout;
  dtype: ImageDType;
  mean: [number, number, number];
  std: [number, number, number];
  seed: number;
  kernel: ResizeKernel;
  fastShrinkOnLoad: boolean;
  strategy: CropStrategy;
  background: [number, number, number] | undefined;
  autoOrient: boolean;
  failOn: 'none' | 'truncated' | 'error' | 'warning';
  limitInputPixels: number;
  readFile: 'sync' | 'async' | false;
  decoder: DecoderChoice;
  /** Whether a sample key is needed (random crop or a flip probability strictly between 0 and 1). */
  random: boolean;
}

const KERNELS = new Set(['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3', 'mks2013', 'mks2021']);
const FAIL_ON = new Set(['none', 'truncated', 'error', 'warning']);

const bad = (what: string, v: unknown) => new InvalidArgumentError(`preprocess: ${what}, got ${JSON.stringify(v)}`);
const posInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function rgb(v: unknown, name: string, dflt: number, check: (x: number) => boolean): [number, number, number] {
  if (v === undefined) return [dflt, dflt, dflt];
  if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => finite(x) && check(x))) throw bad(`${name} must be 3 valid numbers`, v);
  return [v[0], v[1], v[2]];
}

function range(v: unknown, name: string, dflt: [number, number], check: (lo: number, hi: number) => boolean): [number, number] {
  if (v === undefined) return dflt;
  if (!Array.isArray(v) || v.length !== 2 || !finite(v[0]) || !finite(v[1]) || !check(v[0], v[1])) throw bad(`${name} must be [lo, hi] with valid bounds`, v);
  return [v[0], v[1]];
}

/** Applies defaults and validates a spec. @throws InvalidArgumentError */
export function resolveSpec(spec: PreprocessSpec = {}): ResolvedSpec {
  const size = spec.size ?? 224;
  let height: number;
  let width: number;
  if (posInt(size)) height = width = size;
  else if (Array.isArray(size) && size.length === 2 && posInt(size[0]) && posInt(size[1])) [height, width] = size;
  else throw bad('size must be a positive integer or [height, width]', size);
  const crop = spec.crop ?? 'center';
  if (crop !== 'center' && crop !== 'random' && crop !== 'resize') throw bad(`crop must be 'center', 'random' or 'resize'`, crop);
  const centerFraction = spec.centerFraction ?? 0.875;
  if (!finite(centerFraction) || centerFraction <= 0 || centerFraction > 1) throw bad('centerFraction must be in (0, 1]', centerFraction);
  const scale = range(spec.scale, 'scale', [0.08, 1], (lo, hi) => lo > 0 && lo <= hi && hi <= 1);
  const ratio = range(spec.ratio, 'ratio', [3 / 4, 4 / 3], (lo, hi) => lo > 0 && lo <= hi);
  const attempts = spec.attempts ?? 10;
  if (!Number.isInteger(attempts) || attempts < 0) throw bad('attempts must be a non-negative integer', attempts);
  const flip = spec.flip ?? false;
  const flipP = flip === true ? 0.5 : flip === false ? 0 : flip;
  if (!finite(flipP) || flipP < 0 || flipP > 1) throw bad('flip must be a boolean or a probability in [0, 1]', flip);
  const layout = spec.layout ?? 'hwc';
  if (layout !== 'hwc' && layout !== 'chw') throw bad(`layout must be 'hwc' or 'chw'`, layout);
  const dtype = spec.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'uint8') throw bad(`dtype must be 'float32' or 'uint8'`, dtype);
  const mean = rgb(spec.mean, 'mean', 0, () => true);
  const std = rgb(spec.std, 'std', 1, (x) => x !== 0);
  const seed = spec.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw bad('seed must be a non-negative safe integer', seed);
  const kernel = spec.kernel ?? 'linear';
  if (!KERNELS.has(kernel)) throw bad(`kernel must be one of ${[...KERNELS].join(', ')}`, kernel);
  const strategy = spec.strategy ?? 'resize-extract';
  if (strategy !== 'resize-extract' && strategy !== 'extract-resize') throw bad(`strategy must be 'resize-extract' or 'extract-resize'`, strategy);
  const background = spec.background === undefined ? undefined : rgb(spec.background, 'background', 0, (x) => x >= 0 && x <= 255);
  const failOn = spec.failOn ?? 'warning';
  if (!FAIL_ON.has(failOn)) throw bad(`failOn must be one of ${[...FAIL_ON].join(', ')}`, failOn);
  const limitInputPixels = spec.limitInputPixels ?? 0x3fff * 0x3fff;
  if (!posInt(limitInputPixels)) throw bad('limitInputPixels must be a positive integer', limitInputPixels);
  const rf = spec.readFile ?? 'async';
  if (rf !== true && rf !== false && rf !== 'sync' && rf !== 'async') throw bad(`readFile must be 'sync', 'async', true or false`, rf);
  const readFile = rf === true ? 'async' : rf;
  const decoder = spec.decoder ?? 'auto';
  if (decoder !== 'auto' && decoder !== 'sharp') throw bad(`decoder must be 'auto' or 'sharp'`, decoder);
  return {
    height, width, crop, centerFraction, scale, ratio, attempts, flipP, layout, dtype, mean, std, seed, kernel,
    fastShrinkOnLoad: spec.fastShrinkOnLoad ?? true, strategy, background, autoOrient: spec.autoOrient ?? true, failOn, limitInputPixels,
    readFile,
    decoder,
    random: crop === 'random' || (flipP > 0 && flipP < 1),
  };
}

/** The tensor shape a spec produces: `[H, W, 3]` or `[3, H, W]`. */
export function outputShape(spec: PreprocessSpec | ResolvedSpec): [number, number, number] {
  const r = 'random' in spec && 'flipP' in spec ? (spec as ResolvedSpec) : resolveSpec(spec);
  return r.layout === 'hwc' ? [r.height, r.width, 3] : [3, r.height, r.width];
}

/** Number of elements of the tensor a spec produces. */
export function outputLength(spec: PreprocessSpec | ResolvedSpec): number {
  const [a, b, c] = outputShape(spec);
  return a * b * c;
}

const lutCache = new Map<string, [Float32Array, Float32Array, Float32Array]>();
function lutsFor(mean: Rgb, std: Rgb) {
  const key = `${mean.join(',')}/${std.join(',')}`;
  let l = lutCache.get(key);
  if (!l) {
    if (lutCache.size > 64) lutCache.clear();
    l = channelLuts(mean, std);
    lutCache.set(key, l);
  }
  return l;
}

/** An image to decode: a file path, or its encoded bytes. */
type Input = string | Uint8Array;

/** Files larger than this are left for libvips to stream from disk whatever `readFile` says. */
const READ_WHOLE_LIMIT = 256 * 1024 * 1024;

/**
 * What sharp is given: the file's bytes (read with O_NONBLOCK and checked to be a regular file, so a
 * FIFO cannot block a thread), the checked path, or the caller's bytes (wrapped, not copied).
 */
function toSharpInput(input: Input, read: 'sync' | 'async' | false): string | Buffer | Promise<string | Buffer> {
  if (typeof input !== 'string') return Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  return read === 'sync' ? readSyncChecked(input) : readAsyncChecked(input, read === 'async');
}

function readSyncChecked(path: string): string | Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > READ_WHOLE_LIMIT) return path;
    // Read to end of file (a read of 0 bytes), not to the size stat gave: network file systems
    // may return short reads, and the file may have grown meanwhile.
    const chunks: Buffer[] = [];
    let total = 0;
    for (let want = st.size || 65536; ; want = 65536) {
      const b = Buffer.allocUnsafe(want);
      const n = readSync(fd, b, 0, want, total);
      if (n === 0) break;
      chunks.push(n === want ? b : b.subarray(0, n));
      total += n;
      if (total > READ_WHOLE_LIMIT) return path;
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

async function readAsyncChecked(path: string, readWhole: boolean): Promise<string | Buffer> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Error('not a regular file');
    return readWhole && st.size <= READ_WHOLE_LIMIT ? await fh.readFile() : path;
  } finally {
    await fh.close();
  }
}

/** Turns a failure into a precise reason (only runs on the error path). */
async function failureReason(input: Input, err: unknown): Promise<string> {
  if (typeof input === 'string') {
    try {
      const s = await stat(input);
      if (!s.isFile()) return 'not a regular file';
      if (s.size === 0) return 'empty file (0 bytes)';
      await access(input, constants.R_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return 'file not found';
      if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
      return `cannot read file (${code ?? (e as Error).message})`;
    }
  } else if (input.byteLength === 0) {
    return 'empty buffer (0 bytes)';
  }
  // libvips repeats lines; keep each distinct line once.
  const msg = [...new Set((err instanceof Error ? err.message : String(err)).split('\n').map((l) => l.trim()).filter(Boolean))].join('; ');
  if (/unsupported image format/i.test(msg)) return 'not an image, or an unsupported format';
  if (/pixel limit/i.test(msg)) return `image exceeds the pixel limit (${msg})`;
  return `corrupt or truncated image (${msg})`;
}

async function decodeError(input: Input, err: unknown, index: number | undefined): Promise<ImageDecodeError> {
  if (err instanceof ImageDecodeError) return err;
  const reason = await failureReason(input, err);
  return new ImageDecodeError(typeof input === 'string' ? input : undefined, reason, { cause: err, ...(index !== undefined ? { index } : {}) });
}

/** Width and height as the pipeline will see them (after EXIF orientation when `autoOrient`). */
async function orientedSize(src: string | Buffer, inputOpts: SharpOptions, autoOrient: boolean): Promise<[number | undefined, number | undefined]> {
  const head = typeof src === 'string' ? undefined : jpegHeader(src);
  if (head) {
    const swap = autoOrient && head.orientation >= 5;
    return swap ? [head.height, head.width] : [head.width, head.height];
  }
  const meta = await sharp(src, inputOpts).metadata();
  return autoOrient ? [meta.autoOrient?.width ?? meta.width, meta.autoOrient?.height ?? meta.height] : [meta.width, meta.height];
}

/** Checks `out` against the spec; returns the view to write into. */
function checkOut(out: Float32Array | Uint8Array | undefined, r: ResolvedSpec, n: number): Float32Array | Uint8Array {
  if (out === undefined) return r.dtype === 'float32' ? new Float32Array(n) : new Uint8Array(n);
  if (r.dtype === 'float32' ? !(out instanceof Float32Array) : !(out instanceof Uint8Array)) {
    throw new InvalidArgumentError(`preprocess: out must be a ${r.dtype === 'float32' ? 'Float32Array' : 'Uint8Array'} for dtype '${r.dtype}'`);
  }
  if (out.length < n) throw new InvalidArgumentError(`preprocess: out holds ${out.length} elements, the tensor needs ${n}`);
  return out.length === n ? out : out.subarray(0, n);
}

/**
 * The crop box (in EXIF-oriented source pixels) and flip a spec draws for one sample. Pure: the
 * same (spec, source size, sample key) always gives the same answer.
 */
export function augmentation(r: ResolvedSpec, srcWidth: number, srcHeight: number, key?: SampleKey): { box: CropBox; flip: boolean } {
  let rng: Rng | undefined;
  if (r.random) {
    if (!key || !Number.isSafeInteger(key.index) || key.index < 0) {
      throw new InvalidArgumentError('preprocess: a random crop or flip needs the sample key { index, epoch? } (deterministic augmentation)');
    }
    const epoch = key.epoch ?? 0;
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new InvalidArgumentError(`preprocess: bad epoch ${String(key.epoch)}`);
    rng = new Rng(r.seed, STREAM_AUGMENT, epoch, key.index);
  }
  const box =
    r.crop === 'random'
      ? randomResizedCropBox(srcWidth, srcHeight, rng!, r.scale, r.ratio, r.attempts)
      : r.crop === 'center'
        ? centerCropBox(srcWidth, srcHeight, r.width, r.height, r.centerFraction)
        : { left: 0, top: 0, width: srcWidth, height: srcHeight };
  const flip = r.flipP >= 1 ? true : r.flipP <= 0 ? false : rng!.next() < r.flipP;
  return { box, flip };
}

/**
 * Decodes one image and writes it, cropped, resized, possibly flipped and normalised, into `out`
 * (allocated when omitted). Grey, CMYK, 16-bit, palette and alpha inputs all give 3-channel 8-bit
 * sRGB before normalisation; EXIF orientation is applied first.
 *
 * @param input a file path or encoded bytes
 * @param spec what to produce (see {@link PreprocessSpec})
 * @param out caller-provided storage of at least {@link outputLength} elements (e.g. a view into a
 *   ring): written in place, and the returned `data` is this memory
 * @param key the sample's index (and epoch): required when the spec is random
 * @throws ImageDecodeError for any unreadable or undecodable input (never hangs)
 * @throws InvalidArgumentError for a bad spec, `out` or key
 */
export async function preprocess(input: Input, spec: PreprocessSpec, out?: Float32Array | Uint8Array, key?: SampleKey): Promise<PreprocessResult> {
  const r = resolveSpec(spec);
  if (typeof input !== 'string' && !(input instanceof Uint8Array)) throw new InvalidArgumentError('preprocess: input must be a path or a Uint8Array');
  const n = r.height * r.width * 3;
  const dest = checkOut(out, r, n);
  if (r.random && (!key || !Number.isSafeInteger(key.index) || key.index < 0)) augmentation(r, 1, 1, key); // throws the precise error early
  const index = key?.index;
  const shape: [number, number, number] = r.layout === 'hwc' ? [r.height, r.width, 3] : [3, r.height, r.width];
  const luts = r.dtype === 'float32' ? lutsFor(r.mean, r.std) : undefined;
  // The fused path needs the bytes: with readFile false they are read for it, and sharp is given
  // the path (libvips opens the file itself) for the images it leaves to sharp.
  const read = r.readFile === false && r.decoder === 'auto' ? 'async' : r.readFile;
  let bytes: string | Buffer;
  try {
    bytes = await toSharpInput(input, read);
  } catch (err) {
    throw await decodeError(input, err, index);
  }
  let fusedFailure: string | undefined;
  if (typeof bytes !== 'string' && r.decoder === 'auto') {
    const info = jpegInfo(bytes);
    if (!fusedRefusal(info, bytes, r)) {
      const { box, flip } = augmentation(r, info!.width, info!.height, key);
      const res = await fusedDecode(bytes, box, flip, r, dest, luts && packLuts(luts), r.readFile === 'sync');
      if (res.status === 0) return { data: dest, shape, dtype: r.dtype, layout: r.layout, decoder: 'fused' };
      // 2: libjpeg failed on it. 1 and 3 (a colour space or size the header parse did not show): sharp's.
      if (res.status === 2) fusedFailure = res.message;
    }
  }
  const src = r.readFile === false && typeof input === 'string' ? input : bytes;
  let raw: { data: Buffer; info: OutputInfo };
  let flip = false;
  try {
    const inputOpts: SharpOptions = { autoOrient: r.autoOrient, failOn: r.failOn, limitInputPixels: r.limitInputPixels, sequentialRead: true };
    let img: Sharp;
    if (r.crop === 'resize') {
      img = sharp(src, inputOpts).resize(r.width, r.height, { fit: 'fill', kernel: r.kernel, fastShrinkOnLoad: r.fastShrinkOnLoad });
      flip = augmentation(r, 1, 1, key).flip;
    } else {
      const [w, h] = await orientedSize(src, inputOpts, r.autoOrient);
      if (!w || !h) throw new ImageDecodeError(typeof input === 'string' ? input : undefined, 'image has no dimensions', index !== undefined ? { index } : {});
      const aug = augmentation(r, w, h, key);
      flip = aug.flip;
      const box = aug.box;
      img = sharp(src, inputOpts);
      if (box.left === 0 && box.top === 0 && box.width === w && box.height === h) {
        img = img.resize(r.width, r.height, { fit: 'fill', kernel: r.kernel, fastShrinkOnLoad: r.fastShrinkOnLoad });
      } else if (r.strategy === 'resize-extract') {
        const plan = planResizeExtract(w, h, box, r.width, r.height);
        img = img.resize(plan.width, plan.height, { fit: 'fill', kernel: r.kernel, fastShrinkOnLoad: r.fastShrinkOnLoad }).extract(plan.extract);
      } else {
        img = img.extract(box).resize(r.width, r.height, { fit: 'fill', kernel: r.kernel, fastShrinkOnLoad: r.fastShrinkOnLoad });
      }
    }
    img = r.background ? img.flatten({ background: { r: r.background[0], g: r.background[1], b: r.background[2] } }) : img.removeAlpha();
    raw = await img.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw await decodeError(input, err, index);
  }
  const { info, data } = raw;
  if (info.width !== r.width || info.height !== r.height || info.channels !== 3 || data.length !== n) {
    throw new ImageDecodeError(typeof input === 'string' ? input : undefined, `unexpected decoder output ${info.width}x${info.height}x${info.channels} (${data.length} bytes)`, index !== undefined ? { index } : {});
  }
  writeTensor(data, r.width, r.height, dest, { layout: r.layout, flip, ...(luts ? { luts } : {}) });
  return { data: dest, shape, dtype: r.dtype, layout: r.layout, decoder: 'sharp', ...(fusedFailure !== undefined ? { fusedFailure } : {}) };
}

/** A preprocessed sample: the tensor plus the item's identity and label. */
export interface PreprocessedSample extends PreprocessResult {
  index: number;
  label: number;
  epoch?: number;
  className?: string;
}

/**
 * {@link preprocess} for a dataset item (see `imageSource`): uses its path or buffer, keys the
 * augmentation on its (epoch, index), and carries its label. Usable as a ringpipe transform.
 */
export async function preprocessItem(item: ImageItem, spec: PreprocessSpec, out?: Float32Array | Uint8Array): Promise<PreprocessedSample> {
  const input = item.path ?? item.buffer;
  if (input === undefined) throw new InvalidArgumentError(`preprocessItem: item ${item.index} has neither path nor buffer`);
  const t = await preprocess(input, spec, out, { index: item.index, ...(item.epoch !== undefined ? { epoch: item.epoch } : {}) });
  const s: PreprocessedSample = { ...t, index: item.index, label: item.label };
  if (item.epoch !== undefined) s.epoch = item.epoch;
  if (item.className !== undefined) s.className = item.className;
  return s;
}
