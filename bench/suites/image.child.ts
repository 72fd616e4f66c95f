// A child process of the image suite's process-pool runner: preprocesses the image it is sent
// (its own libvips, its own libuv pool), answers 'done', waits for the next. Started once, so
// process start-up is not in the figures.
import sharp from 'sharp';
import { preprocess, type PreprocessSpec } from '../../src/image/decode.js';

interface Task {
  file: string;
  index: number;
  epoch: number;
  spec: PreprocessSpec;
}

sharp.concurrency(1);
sharp.cache(false);
const out = new Float32Array(224 * 224 * 3);
process.on('message', async (t: Task | 'stop') => {
  if (t === 'stop') return process.disconnect();
  await preprocess(t.file, t.spec, out, { index: t.index, epoch: t.epoch });
  process.send!('done');
});
process.send!('ready');
