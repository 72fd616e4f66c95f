// A child process of the image suite's process-pool runners: runs the serial loop over the images
// it is sent (a list per message; its own libvips, its own libuv pool) and answers 'done' after
// each list. Started once, so process start-up is not in the figures.
import sharp from 'sharp';
import { preprocess, type PreprocessSpec } from '../../src/image/decode.js';

interface Chunk {
  spec: PreprocessSpec;
  tasks: { file: string; index: number; epoch: number }[];
}

sharp.concurrency(1);
sharp.cache(false);
const out = new Float32Array(224 * 224 * 3);
let queue = Promise.resolve();
process.on('message', (c: Chunk | 'stop') => {
  if (c === 'stop') return void queue.then(() => process.disconnect());
  queue = queue.then(async () => {
    for (const t of c.tasks) await preprocess(t.file, c.spec, out, { index: t.index, epoch: t.epoch });
    process.send!('done');
  });
});
process.send!('ready');
