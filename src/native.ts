// The one place the addon is loaded. Built by `npm install` (cmake-js) into build/Release.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NativeLoadError } from './errors.js';

/** Offsets and constants of the ring layout, exported by native/ring.h (the single definition). */
export interface Layout {
  magic: number; version: number; line: number; maxWriters: number; maxReaders: number;
  recordHeader: number; recordAlign: number; typePad: number;
  flagMultiProducer: number; flagCrossProcess: number; flagSupervised: number;
  stateOpen: number; stateClosed: number; stateAborted: number;
  offMagic: number; offVersion: number; offCapacity: number; offFlags: number; offReaderSlots: number;
  offDataOffset: number; offState: number; offWritersOpen: number; offAbortCode: number; offCreatorPid: number;
  offWritePos: number; offDataSeq: number; offReadersWaiting: number; offSpaceSeq: number;
  offWritersWaiting: number; offSpaceWant: number; offDataWant: number; offWriterPids: number; offReaders: number;
  readerReadPos: number; readerActive: number; readerPid: number; readerClaim: number; readerSeen: number;
  recLength: number; recTypeFlags: number; recSeq: number; recStamp: number;
}

export interface Addon {
  layout: Layout;
  createRegion(size: number, shared: boolean): { buffer: SharedArrayBuffer; name: string };
  openRegion(name: string): SharedArrayBuffer;
  unlinkRegion(name: string): boolean;
  unlinkOwnedRegions(): number;
  cleanupStaleRegions(): number;
  regionPrefix(): string;
  /** 0 woken, 1 value differed, 2 timed out. Blocks the calling thread. */
  futexWait(buffer: SharedArrayBuffer, byteOffset: number, expected: number, timeoutMs: number): 0 | 1 | 2;
  futexWake(buffer: SharedArrayBuffer, byteOffset: number, count?: number): number;
  futexWaitAsync(buffer: SharedArrayBuffer, byteOffset: number, expected: number, timeoutMs: number): Promise<0 | 1 | 2>;
  initRing(buffer: SharedArrayBuffer, capacity: number, readerSlots: number, flags: number, writers: number): void;
  /** Test hooks: a C++ writer / reader of testdata records on a thread of their own. */
  cppProduce(buffer: SharedArrayBuffer, count: number, seed: number, maxLen: number, align: number): Promise<void>;
  cppConsume(buffer: SharedArrayBuffer, slot: number, seed: number, maxLen: number): Promise<{ count: number; bad: number }>;
  /** Benchmark hook: one record written by C++, one N-API call per record. False when full. */
  napiWriteRecord(buffer: SharedArrayBuffer, length: number, seq: number): boolean;
  /**
   * 8-bit interleaved RGB (`width * height * 3` bytes) into `out`: through `lut` (3 x 256 floats,
   * channel-major) for a Float32Array, copied for a Uint8Array; CHW or HWC; mirrored when `flip`.
   */
  writeRgbTensor(src: Uint8Array, width: number, height: number, out: Float32Array | Uint8Array, chw: boolean, flip: boolean, lut?: Float32Array): void;
  /**
   * The fused JPEG path (native/jpeg/): decode the iMCU rows and columns covering the crop box
   * (stored-image pixels) at the largest DCT downscale that keeps the output size, resample to
   * `outWidth x outHeight` with `kernel` (0 linear, 1 cubic, 2 mitchell, 3 lanczos2, 4 lanczos3), then
   * write as writeRgbTensor does. `failOn`: 0 warnings ignored, 1 a premature end fails, 2 any
   * warning fails. On the calling thread, or on libuv's pool (a Promise) when `async`.
   */
  jpegCropDecode(
    bytes: Uint8Array, left: number, top: number, width: number, height: number, outWidth: number, outHeight: number,
    kernel: number, fastShrink: boolean, failOn: number, maxPixels: number,
    out: Float32Array | Uint8Array, chw: boolean, flip: boolean, lut: Float32Array | undefined, async: boolean,
  ): JpegCropResult | Promise<JpegCropResult>;
}

/** What `jpegCropDecode` did: status 0 ok, 1 unsupported (use sharp), 2 corrupt, 3 box outside the image. */
export interface JpegCropResult {
  status: 0 | 1 | 2 | 3;
  /** Why, when status is not 0 (libjpeg's message for a corrupt file). */
  message: string;
  /** The DCT scale denominator used (1, 2, 4 or 8). */
  scale: number;
  /** The decoded region, in pixels of the scaled image. */
  x: number;
  y: number;
  width: number;
  height: number;
}

const addonPath = fileURLToPath(new URL('../build/Release/ringpipe.node', import.meta.url));

function load(): Addon {
  if (!existsSync(addonPath)) {
    throw new NativeLoadError(
      'ERR_NATIVE_MISSING',
      `ringpipe's native addon is not built (expected ${addonPath}). Run \`npm install\` (or \`npm run build:native\`) in the ringpipe package; it needs cmake and a C++20 compiler.`,
    );
  }
  try {
    return createRequire(import.meta.url)(addonPath) as Addon;
  } catch (cause) {
    throw new NativeLoadError(
      'ERR_NATIVE_LOAD',
      `ringpipe's native addon at ${addonPath} failed to load (${(cause as Error).message}). It is built for one Node major: rebuild it with \`npm run build:native\` after changing Node.`,
      { cause },
    );
  }
}

export const native: Addon = load();
export const layout: Layout = native.layout;

/**
 * The record header size and alignment the JS hot path uses as constants (src/ring/reader.ts,
 * writer.ts): checked against native/ring.h, the one definition of the layout, at load.
 */
export const RECORD_HEADER = 16, RECORD_ALIGN = 16;
if (layout.recordHeader !== RECORD_HEADER || layout.recordAlign !== RECORD_ALIGN) {
  throw new NativeLoadError(
    'ERR_NATIVE_LOAD',
    `ringpipe's addon lays records out with a ${layout.recordHeader}-byte header aligned to ${layout.recordAlign}, its JavaScript with ${RECORD_HEADER} and ${RECORD_ALIGN}: rebuild both from one checkout (npm run build)`,
  );
}
