// The segment that runs a JSON pipeline stage's function inside ringpipe's engine (a worker thread or
// a child process). Each record it receives is one call: the records of the streaming inputs for that
// call; the other inputs were given once, in the segment's options.
import { isMainThread } from 'node:worker_threads';
import { ReplayableInput, type ReplaySource } from './feeds.js';
import { loadLibraryStage } from './library.js';
import { importModule } from './modules.js';
import { toRecord, yieldsMany, type StageContext, type StageFunction } from './runner.js';
import type { ArtifactRecord } from '../cache/records.js';

/** An input of an engine stage, in plain data. */
export type EngineInput =
  /** Consumed one record per call: comes with each record. */
  | { type: 'stream' }
  /** Passed whole to every call. */
  | { type: 'value'; data: unknown; metadata?: Record<string, unknown> }
  /** An `"as": "iterable"` input, opened in the worker. */
  | { type: 'replay'; source: ReplaySource; length?: number };

/** Options of {@link JsonStageSegment} (posted to its workers). */
export interface EngineStageOptions {
  /** The stage's item name. */
  stage: string;
  /** Branch id, or null. */
  branch: string | null;
  /** The branch's parameters. */
  params: Record<string, Record<string, unknown>>;
  /** The user's module and export, or a library stage type. */
  target: { file: string; exportName: string } | { library: string };
  /** Library stage options (`{}` for user stages). */
  options: Record<string, unknown>;
  /** One entry per input, in order. */
  inputs: EngineInput[];
  /** True when at least one input streams (then `undefined` results send nothing). */
  streaming: boolean;
}

/** What the segment receives per call. */
export interface EngineCall {
  /** Data of the streaming inputs, in input order. */
  args: unknown[];
  /** Their metadata. */
  metas: (Record<string, unknown> | undefined)[];
}

/** What the segment returns per call. */
export interface EngineCallResult {
  /** The function yielded (many records) rather than returned one value. */
  many: boolean;
  /** The records the call produced, metadata included. */
  records: ArtifactRecord[];
}

/** The segment class (setup / run run inside the worker). */
export class JsonStageSegment {
  private fn!: StageFunction;
  private opts!: EngineStageOptions;
  private values: { data: unknown; metadata?: Record<string, unknown> }[] = [];
  private readonly abort = new AbortController();

  async setup(opts: EngineStageOptions, ctx: { replicas: number }): Promise<void> {
    this.opts = opts;
    if ('library' in opts.target) {
      const lookup = await loadLibraryStage(opts.target.library);
      if (!lookup.ok) throw new Error(lookup.reason);
      this.fn = lookup.impl.run.bind(lookup.impl);
      // A replica's main thread is a process of its own (isolation 'process'); worker threads share one.
      lookup.impl.setup?.({ replicas: ctx.replicas, ownProcess: isMainThread });
    } else {
      const mod = await importModule(opts.target.file);
      const fn = mod[opts.target.exportName];
      if (typeof fn !== 'function') throw new TypeError(`${opts.target.file} has no function export '${opts.target.exportName}'`);
      this.fn = fn as StageFunction;
    }
    this.values = opts.inputs.map((i) =>
      i.type === 'value' ? { data: i.data, metadata: i.metadata } : i.type === 'replay' ? { data: ReplayableInput.of(i.source, i.length) } : { data: undefined },
    );
  }

  async run(call: EngineCall, ctx: { index: number }): Promise<EngineCallResult> {
    const args: unknown[] = [];
    const metas: (Record<string, unknown> | undefined)[] = [];
    let s = 0;
    this.opts.inputs.forEach((input, i) => {
      if (input.type === 'stream') {
        args.push(call.args[s]);
        metas.push(call.metas[s++]);
      } else {
        args.push(this.values[i]!.data);
        metas.push(this.values[i]!.metadata);
      }
    });
    let inherited: Record<string, unknown> | undefined;
    for (const m of metas) if (m) inherited = { ...inherited, ...m };
    const stageCtx: StageContext = {
      stage: this.opts.stage,
      branch: this.opts.branch,
      params: this.opts.params,
      index: ctx.index,
      metadata: metas,
      options: this.opts.options,
      signal: this.abort.signal,
    };
    const fn = this.fn; // unbound: its stack frames name the function, not `[as fn]`
    const result = await fn(...args, stageCtx);
    if (yieldsMany(result)) {
      const records: ArtifactRecord[] = [];
      for await (const out of result as AsyncIterable<unknown>) records.push(toRecord(out, inherited));
      return { many: true, records };
    }
    if (result === undefined && this.opts.streaming) return { many: false, records: [] };
    return { many: false, records: [toRecord(result, inherited)] };
  }

  teardown(): void {
    this.abort.abort();
  }
}
