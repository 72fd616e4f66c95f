// The sequential API (Keras-Sequential look and feel): segments one after the other, each
// reading what the previous one writes.
import { Readable } from 'node:stream';
import { InvalidArgumentError } from '../errors.js';
import type { Segment } from '../segments/segment.js';
import type { RunOptions, RunResult } from '../runtime/supervisor.js';
import type { GraphDescription } from './describe.js';
import { checkNodeOptions, Graph, type NodeOptions } from './graph.js';
import type { IterateOptions, PipelineIterator } from './iterate.js';
import { Stream } from './stream.js';

/**
 * Segments one after the other, each reading what the previous one writes (Keras-Sequential look
 * and feel). It starts with a Source; it ends with a Sink to `run()`, or with a transform or
 * regulator to `iterate()` in this thread.
 *
 * @example
 * const result = await new Pipeline()
 *   .add(new Source(numbers))
 *   .add(new Transform(square), { workers: 2 })
 *   .add(new Sink(Collect))
 *   .run();
 */
export class Pipeline {
  private readonly steps: { segment: Segment<any>; options: NodeOptions }[] = [];

  /** Appends a segment; the first must be a Source, the last usually a Sink. */
  add(segment: Segment<any>, options: NodeOptions = {}): this {
    if (this.steps.length === 0 && segment.kind !== 'source') {
      throw new InvalidArgumentError(`a pipeline starts with a Source; '${segment.name}' is a ${segment.kind}`);
    }
    if (this.steps.length > 0 && segment.kind === 'source') {
      throw new InvalidArgumentError(`'${segment.name}' is a Source: only the first segment of a Pipeline is (use a Graph for several sources)`);
    }
    checkNodeOptions(segment, options);
    this.steps.push({ segment, options });
    return this;
  }

  /** The same pipeline as a Graph. */
  toGraph(): Graph {
    const { graph, open } = this.build();
    if (open) {
      throw new InvalidArgumentError(`the pipeline ends with '${this.steps.at(-1)!.segment.name}', a ${this.steps.at(-1)!.segment.kind}: end it with a Sink (or read it with iterate())`);
    }
    return graph;
  }

  /** The graph, and the last stage's output stream when the pipeline does not end with a sink. */
  private build(): { graph: Graph; open: Stream | undefined } {
    const graph = new Graph();
    let prev: Stream | undefined;
    this.steps.forEach(({ segment, options }, i) => {
      const last = i === this.steps.length - 1;
      const out = last && segment.kind === 'sink' ? undefined : new Stream(`${segment.name}.out`, { capacity: options.capacity });
      graph.add(segment, { ...options, in: prev, out });
      prev = out;
    });
    return { graph, open: prev };
  }

  /** Runs the pipeline to the end; call again to run it again. */
  run(options?: RunOptions): Promise<RunResult> {
    return this.toGraph().run(options);
  }

  /**
   * Runs the pipeline and yields what its last stage produces, in this thread: the pipeline ends
   * with a transform or regulator, not a sink. Records are owned copies unless `{ views: true }`;
   * see Graph.iterate for backpressure, stopping and errors.
   *
   * @example
   * const batches = new Pipeline().add(new Source(images)).add(new Transform(decode), { workers: 2 }).add(batch(64));
   * for await (const b of batches.iterate({ epochs: 3 })) await model.trainOnBatch(toXs(b), toYs(b));
   */
  iterate<T = unknown>(options?: IterateOptions): PipelineIterator<T> {
    const { graph, open } = this.build();
    if (!open) {
      throw new InvalidArgumentError(`iterate() yields what the last stage produces, but '${this.steps.at(-1)?.segment.name}' is a sink: end the pipeline with a transform or regulator`);
    }
    return graph.iterate<T>(open, options);
  }

  /**
   * The pipeline as a Node Readable in object mode (see iterate()): for stream.pipeline(), with
   * backpressure; destroying it stops every stage.
   *
   * @example
   * await pipeline(records.toReadable(), new Transform({ objectMode: true, transform: toJsonLine }), createWriteStream('out.jsonl'));
   */
  toReadable(options?: IterateOptions): Readable {
    return Readable.from(this.iterate(options), { objectMode: true });
  }

  /** The pipeline as Mermaid and DOT text. */
  describe(): GraphDescription {
    return this.toGraph().describe();
  }
}
