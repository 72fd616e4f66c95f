// Running a stage on ringpipe's engine: the stage's function as a Transform with `workers` replicas
// in worker threads or child processes, fed by a local Source that reads the stage's streaming inputs
// and drained by a local Sink that writes its artifact. Order is kept (the engine's ordered merge).
//
//   <stage>:read (Source, local) -> <stage> (Transform, JsonStageSegment x workers) -> <stage>:write (Sink, local)
import type { ArtifactRecord } from '../cache/records.js';
import { RingpipeError } from '../errors.js';
import type { EngineCall, EngineCallResult, EngineInput, EngineStageOptions } from './engine-stage.js';
import { StageError } from './errors.js';
import { ReplayableInput } from './feeds.js';
import { callsAt, skippedCall, type InputFeed, type SkippedCall, type StageInvocation, type StageOutcome, type StageRunner } from './runner.js';
import { functionStack, previewArgs } from './preview.js';
import type { Isolation } from './types.js';
import { loadLibraryStage } from './library.js';

/** Most replicas the engine runs for one segment. */
export const ENGINE_MAX_WORKERS = 64;
const ENGINE_STAGE_MODULE = new URL(import.meta.url.endsWith('.ts') ? './engine-stage.ts' : './engine-stage.js', import.meta.url).href;

/** Runs stages on the engine (replicas in worker threads or child processes). */
export class EngineRunner implements StageRunner {
  readonly name = 'engine';

  capacity(workers: number): number {
    return Math.min(workers, ENGINE_MAX_WORKERS);
  }

  async run(inv: StageInvocation): Promise<StageOutcome> {
    let engine: { Graph: typeof import('../pipeline/graph.js').Graph; seg: typeof import('../segments/segment.js'); errors: typeof import('../runtime/errors.js') };
    try {
      const [g, seg, errors] = await Promise.all([import('../pipeline/graph.js'), import('../segments/segment.js'), import('../runtime/errors.js')]);
      engine = { Graph: g.Graph, seg, errors };
    } catch (err) {
      throw new StageError('ERR_NOT_AVAILABLE', inv.stage, inv.branch, `ringpipe's engine (needed for workers and isolation) cannot be loaded: ${(err as Error).message}`, { cause: err });
    }
    const { Graph } = engine;
    const { JsonStageSegment } = (await import(ENGINE_STAGE_MODULE)) as typeof import('./engine-stage.js');

    const streams = inv.inputs.map((f, i) => (f.type === 'stream' ? i : -1)).filter((i) => i >= 0);
    const inputs: EngineInput[] = inv.inputs.map((f, i) => engineInput(inv, f, i));
    const options: EngineStageOptions = {
      stage: inv.stage,
      branch: inv.branch,
      params: inv.params,
      target: inv.library ? { library: inv.library } : { file: inv.target.file, exportName: inv.target.exportName },
      options: inv.options,
      inputs,
      streaming: streams.length > 0,
    };

    const counts = streams.map((i) => (inv.inputs[i] as Extract<InputFeed, { type: 'stream' }>).count);
    if (counts.every((c) => c !== undefined) && new Set(counts).size > 1) {
      throw new StageError('ERR_STREAM_MISMATCH', inv.stage, inv.branch, `its streaming inputs have different lengths (${streams.map((i, n) => `input ${i + 1}: ${counts[n]}`).join(', ')}); one record of each is consumed per call`);
    }
    let mismatch: StageError | undefined;
    const calls = async function* (): AsyncGenerator<EngineCall> {
      if (!streams.length) {
        yield { args: [], metas: [] };
        return;
      }
      const its = streams.map((i) => (inv.inputs[i] as Extract<InputFeed, { type: 'stream' }>).open()[Symbol.asyncIterator]());
      try {
        for (let n = 0; ; n++) {
          const steps = await Promise.all(its.map((it) => it.next()));
          const ended = steps.filter((s) => s.done).length;
          if (ended === steps.length) return;
          if (ended) {
            mismatch = new StageError('ERR_STREAM_MISMATCH', inv.stage, inv.branch, `its streaming inputs have different lengths: ${streams.filter((_, k) => steps[k]!.done).map((i) => `input ${i + 1}`).join(', ')} ended after ${n} records while the others go on`);
            return;
          }
          const recs = steps.map((s) => s.value as ArtifactRecord);
          yield { args: recs.map((r) => r.data), metas: recs.map((r) => r.metadata) };
        }
      } finally {
        await Promise.all(its.map((it) => it.return?.().catch(() => undefined)));
      }
    };

    let many = false;
    let outputs = 0;
    const write = async (result: EngineCallResult) => {
      if (result.many) many = true;
      for (const r of result.records) await inv.emit(r);
      outputs++;
    };
    const name = inv.stage;
    const graph = new Graph();
    const callStream = graph.stream(`${name}.calls`);
    const outStream = graph.stream(`${name}.out`);
    graph.add(new engine.seg.Source(calls, { name: `${name}:read` }), { isolation: 'local', out: callStream });
    graph.add(new engine.seg.Transform(JsonStageSegment, { name, options, module: ENGINE_STAGE_MODULE, export: 'JsonStageSegment' }), {
      in: callStream,
      out: outStream,
      workers: this.capacity(inv.workers),
      isolation: inv.isolation,
      onError: inv.onError,
      ...(inv.isolation === 'process' ? await libraryProcessEnv(inv.library) : {}),
    });
    graph.add(new engine.seg.Sink(write, { name: `${name}:write` }), { isolation: 'local', in: outStream });

    let result;
    try {
      result = await graph.run({
        signal: inv.signal,
        handleSigint: false,
        onProgress: (p) => {
          const seg = p.segments.find((s) => s.name === name);
          if (seg) inv.progress(seg.recordsIn);
        },
      });
    } catch (err) {
      throw await engineFailure(inv, err, engine.errors);
    }
    if (mismatch) throw mismatch;
    const dropped = result.skipped.filter((s) => s.segment === name);
    // The engine reports a dropped record by index: its input file is read from the inputs again.
    const again = await callsAt(inv.inputs, dropped.map((s) => s.index)).catch(() => new Map<number, { metas: (Record<string, unknown> | undefined)[] }>());
    const skipped: SkippedCall[] = dropped.map((s) => skippedCall(s.index, s.error, again.get(s.index)?.metas ?? []));
    return { kind: streams.length || many ? 'stream' : 'value', skipped, workers: this.capacity(inv.workers) };
  }
}

function engineInput(inv: StageInvocation, feed: InputFeed, i: number): EngineInput {
  if (feed.type === 'stream') return { type: 'stream' };
  if (feed.data instanceof ReplayableInput) {
    if (!feed.data.source) {
      throw new StageError('ERR_STAGE_FAILED', inv.stage, inv.branch, `input ${i + 1} ("as": "iterable") cannot be reopened in a worker: its store is not a local cache directory`);
    }
    return { type: 'replay', source: feed.data.source, length: feed.data.length };
  }
  return { type: 'value', data: feed.data, ...(feed.metadata ? { metadata: feed.metadata } : {}) };
}

async function engineFailure(inv: StageInvocation, err: unknown, errors: typeof import('../runtime/errors.js')): Promise<StageError> {
  if (err instanceof StageError) return err;
  if (err instanceof errors.CancelledError || inv.signal.aborted) return new StageError('ERR_ABORTED', inv.stage, inv.branch, 'the run was cancelled', { cause: err });
  if (err instanceof errors.SegmentError) {
    const fn = inv.target.exportName === 'default' ? 'the function' : `'${inv.target.exportName}'`;
    if (err.segment === inv.stage) {
      const where = err.index === null ? '' : ` on record ${err.index}`;
      // The engine carries the record's index; its arguments are read from the inputs again.
      const call = err.index === null ? undefined : (await callsAt(inv.inputs, [err.index]).catch(() => undefined))?.get(err.index);
      return new StageError('ERR_STAGE_FAILED', inv.stage, inv.branch, `${fn} failed${where} (replica ${err.replica}): ${err.original.message}`, {
        cause: err,
        record: err.index ?? undefined,
        ...(call ? { input: previewArgs(call.args) } : {}),
        ...(err.original.stack ? { functionStack: functionStack(err.original.stack) } : {}),
      });
    }
    const cause = (err as { original: { message: string } }).original.message;
    return new StageError('ERR_STAGE_FAILED', inv.stage, inv.branch, `${err.segment.endsWith(':read') ? 'reading its inputs' : 'writing its output'} failed: ${cause}`, { cause: err });
  }
  if (err instanceof errors.SegmentCrashError) return new StageError('ERR_STAGE_FAILED', inv.stage, inv.branch, err.message.replace(`segment '${inv.stage}'`, 'a replica'), { cause: err });
  const msg = err instanceof RingpipeError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
  return new StageError('ERR_STAGE_FAILED', inv.stage, inv.branch, msg, { cause: err });
}

/** `{ env }` that a library stage asks for its replica processes (see LibraryStageImplementation.processEnv). */
async function libraryProcessEnv(type: string | undefined): Promise<{ env?: Record<string, string> }> {
  if (!type) return {};
  const found = await loadLibraryStage(type);
  return found.ok && found.impl.processEnv ? { env: found.impl.processEnv() } : {};
}

/** Whether a stage runs on the engine: it asks for thread / process isolation, or for replicas (unless `local`). */
export function wantsEngine(workers: number, isolation: Isolation | undefined): boolean {
  if (isolation === 'local') return false;
  return workers > 1 || isolation === 'thread' || isolation === 'process';
}
