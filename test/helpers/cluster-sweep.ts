// The `build` of the distributed sweep test: what an agent adds to its graph for a wave's trials
// (the sweep tests' blob source and preprocessing). Agents import it by path.
import { Source, Stream, Transform, type Graph } from '../../src/index.js';
// @ts-expect-error plain JS fixture
import { Preprocess, blobSource } from '../fixtures/train/sweep-segments.mjs';

export function build(graph: Graph, _wave: unknown, args: { n: number; epochs: number; batchSize: number }): Stream {
  const raw = new Stream('raw');
  const batches = new Stream('batches');
  graph.add(new Source(blobSource, { name: 'source', options: { n: args.n, epochs: args.epochs, batchSize: args.batchSize } }), { out: raw });
  graph.add(new Transform(Preprocess, { name: 'preprocess' }), { in: raw, out: batches });
  return batches;
}
