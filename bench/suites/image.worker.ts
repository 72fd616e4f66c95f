// Piscina worker for the image suite: the same preprocess call as the serial peer, the tensor
// transferred (not cloned) back to the main thread.
import { move } from 'piscina';
import sharp from 'sharp';
import { preprocess, type PreprocessSpec } from '../../src/image/decode.js';

export interface ImageTask {
  file: string;
  index: number;
  epoch: number;
  spec: PreprocessSpec;
}

export default async function task(t: ImageTask | { probe: true; holdMs?: number }): Promise<unknown> {
  if ('probe' in t) {
    await new Promise((r) => setTimeout(r, t.holdMs ?? 0));  // held: probes sent together occupy every worker
    return { concurrency: sharp.concurrency() };
  }
  const { data } = await preprocess(t.file, t.spec, undefined, { index: t.index, epoch: t.epoch });
  return move(data as Float32Array);
}
