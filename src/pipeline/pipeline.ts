// The sequential API (Keras-Sequential look and feel): segments one after the other, each
// reading what the previous one writes.
import { InvalidArgumentError } from '../errors.js';
import type { Segment } from '../segments/segment.js';
import type { RunOptions, RunResult } from '../runtime/supervisor.js';
import type { GraphDescription } from './describe.js';
import { Graph, type NodeOptions } from './graph.js';
import { Stream } from './stream.js';

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
    this.steps.push({ segment, options });
    return this;
  }

  /** The same pipeline as a Graph. */
  toGraph(): Graph {
    const g = new Graph();
    let prev: Stream | undefined;
    this.steps.forEach(({ segment, options }, i) => {
      const last = i === this.steps.length - 1;
      const out = last && segment.kind === 'sink' ? undefined : new Stream(`${segment.name}.out`, { capacity: options.capacity });
      g.add(segment, { ...options, in: prev, out });
      prev = out;
    });
    if (prev) {
      throw new InvalidArgumentError(`the pipeline ends with '${this.steps.at(-1)!.segment.name}', a ${this.steps.at(-1)!.segment.kind}: end it with a Sink`);
    }
    return g;
  }

  /** Runs the pipeline to the end; call again to run it again. */
  run(options?: RunOptions): Promise<RunResult> {
    return this.toGraph().run(options);
  }

  describe(): GraphDescription {
    return this.toGraph().describe();
  }
}
