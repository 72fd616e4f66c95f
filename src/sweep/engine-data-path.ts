/**
 * The engine's data path for sweeps: per wave, one graph in which the source and preprocessing run
 * once and their output stream is broadcast (one ring, one cursor per trainer) to one trainer
 * process per trial, each started with its own environment (`CUDA_VISIBLE_DEVICES`). A slow trainer
 * holds the others back only as far as the ring's capacity; its data-wait % says so.
 */
import { InvalidArgumentError } from '../errors.js';
import { Graph } from '../pipeline/graph.js';
import type { Stream } from '../pipeline/stream.js';
import type { RunOptions, RunResult } from '../runtime/supervisor.js';
import { Sink } from '../segments/segment.js';
import { callerFile } from '../segments/locate.js';
import type { TrainerResult } from '../train/trainer.js';
import { ControlServer } from './control.js';
import type { DataPath, Wave } from './sweep.js';
import { TrainerSink, type TrainerSinkOptions } from './trainer-sink.js';

const TRAINER_SINK_MODULE = new URL('./trainer-sink.js', import.meta.url).href;

/** Options of {@link engineDataPath}. */
export interface EngineDataPathOptions {
  /**
   * Adds the source and preprocessing segments of one wave to `graph` and returns the stream the
   * trainers read: `{ xs, ys }` batches and `{ epochEnd: n }` markers for every epoch, or two
   * streams `[xs, ys]` of tensors (markers on both). Called once per wave, with `args`.
   * For `sweep({ cluster })` it must be exported by a module (agents import it; a closure cannot travel).
   */
  build(graph: Graph, wave: Wave, args: unknown): Stream | [Stream, Stream];
  /** Argument handed to `build` (JSON when the sweep runs on a cluster). */
  args?: unknown;
  /** Where trainers run: `'process'` (default; needed for GPU binding and to free tfjs memory per trial) or `'thread'`. */
  isolation?: 'process' | 'thread';
  /** Options for each wave's run (progress callback, cancellation signal, ...). */
  run?: RunOptions;
  /** Called after each wave with the engine's result (segment stats, e.g. preprocessing counts). */
  onWaveEnd?(wave: Wave, result: RunResult): void;
}

/** Name of a trial's trainer segment in the wave's graph. */
export const trainerSegmentName = (trialId: string) => `trainer-${trialId}`;

/**
 * The data path on the engine: each wave runs one graph whose stream `build` returns is broadcast
 * to one trainer sink per trial (processes by default, each bound to its GPU).
 */
export function engineDataPath(options: EngineDataPathOptions): DataPath {
  const isolation = options.isolation ?? 'process';
  if (isolation !== 'process' && isolation !== 'thread') throw new InvalidArgumentError(`isolation must be 'process' or 'thread', got '${String(isolation)}'`);
  return {
    name: `engine (${isolation === 'process' ? 'trainer processes' : 'trainer threads'})`,
    isolation,
    remote: { build: options.build, declaredIn: callerFile(), args: options.args, isolation },
    async runWave(wave, events) {
      const control = await ControlServer.start(events);
      try {
        const graph = new Graph();
        const input = options.build(graph, wave, options.args);
        const streams = Array.isArray(input) ? input : [input];
        for (const wt of wave.trials) {
          const sinkOptions: TrainerSinkOptions = { trainer: wt.trainer, control: control.address };
          graph.add(new Sink(TrainerSink, { name: trainerSegmentName(wt.trial.id), options: sinkOptions, module: TRAINER_SINK_MODULE, export: 'TrainerSink' }), {
            in: streams,
            isolation,
            // One trainer dying (native abort, out of memory) must not take its wave down.
            onCrash: 'continue',
            ...(isolation === 'process' ? { env: wt.env } : {}),
          });
        }
        const result = await graph.run(options.run);
        options.onWaveEnd?.(wave, result);
        return wave.trials.map((wt): TrainerResult => {
          const r = result.results[trainerSegmentName(wt.trial.id)]?.[0] as TrainerResult | undefined;
          const died = result.crashed.find((c) => c.segment === trainerSegmentName(wt.trial.id));
          return (
            r ?? {
              trialId: wt.trial.id,
              params: wt.trial.params,
              status: 'failed',
              error: { name: 'Error', message: died ? `the trainer ${isolation === 'process' ? 'process' : 'thread'} died: ${died.reason}` : 'the trainer returned no result' },
              pid: 0,
              history: [],
              samples: 0,
              steps: 0,
              drained: 0,
              seconds: 0,
            }
          );
        });
      } finally {
        await control.close();
      }
    },
  };
}
