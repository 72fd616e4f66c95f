// A child process of the image suite's process-pool runners: runs the serial loop over the images
// it is sent in one message (its own libvips, its own libuv pool), answers 'done', waits for the
// next batch. Started once, so process start-up is not in the figures.
import sharp from 'sharp';
import { preprocess, type PreprocessSpec } from '../../src/image/decode.js';

interface Batch {
  spec: PreprocessSpec;
  tasks: { file: string; index: number; epoch: number }[];
}

sharp.concurrency(1);
sharp.cache(false);
const out = new Float32Array(224 * 224 * 3);
process.on('message', async (b: Batch | 'stop') => {
  if (b === 'stop') return process.disconnect();
  for (const t of b.tasks) await preprocess(t.file, b.spec, out, { index: t.index, epoch: t.epoch });
  process.send!('done');
});
process.send!('ready');
