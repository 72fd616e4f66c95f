/**
 * Mean absolute error and PSNR between 8-bit images, accumulated over many: how the fused JPEG
 * path's tensors compare with sharp's for the same crop boxes (test/image-fused.test.ts, and
 * bench/suites/image.ts on each corpus).
 */
export class PixelDiff {
  private abs = 0;
  private sq = 0;
  /** Values compared so far. */
  count = 0;

  /** Adds the differences of two images of the same length (8-bit values, any layout). */
  add(a: ArrayLike<number>, b: ArrayLike<number>): this {
    if (a.length !== b.length) throw new RangeError(`PixelDiff: ${a.length} values against ${b.length}`);
    for (let i = 0; i < a.length; i++) {
      const e = a[i]! - b[i]!;
      this.abs += Math.abs(e);
      this.sq += e * e;
    }
    this.count += a.length;
    return this;
  }

  /** Mean absolute error, in 8-bit levels (NaN before any value). */
  get mae(): number {
    return this.abs / this.count;
  }

  /** Peak signal-to-noise ratio in dB (Infinity for identical images). */
  get psnr(): number {
    return this.sq === 0 ? Infinity : 10 * Math.log10((255 * 255 * this.count) / this.sq);
  }

  /** `{ mae, psnr, images }` rounded for reports, `images` counted as images of `perImage` values. */
  summary(perImage: number): { mae: number; psnr: number; images: number } {
    return { mae: Number(this.mae.toFixed(3)), psnr: Number(this.psnr.toFixed(2)), images: this.count / perImage };
  }

  /** One line for logs. */
  text(perImage: number): string {
    if (!this.count) return 'no images';
    return `MAE ${this.mae.toFixed(3)}, PSNR ${this.psnr.toFixed(1)} dB over ${this.count / perImage} images`;
  }
}
