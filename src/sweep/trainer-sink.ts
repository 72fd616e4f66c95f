/**
 * The trainer as an engine segment: `new Sink(TrainerSink, { options: { trainer, control } })`.
 * Wraps {@link Trainer}, connecting its epoch reports to the sweep's control channel.
 *
 * Input: one stream of `{ xs, ys }` batches (and `{ epochEnd: n }` markers), or two streams, xs
 * tensors and ys tensors, paired record by record (markers on both), which keeps the tensors
 * zero-copy up to the trainer.
 */
import { isEpochEnd, isTensorRecord } from '../train/records.js';
import { Trainer, type TrainerOptions, type TrainerResult } from '../train/trainer.js';
import type { SegmentContext } from '../segments/segment.js';
import { ControlClient } from './control.js';

/** Options of {@link TrainerSink}: the trainer's, and where the sweep listens. */
export interface TrainerSinkOptions {
  trainer: TrainerOptions;
  /** Address of the sweep's control channel; without it the trainer reports nothing during the run. */
  control?: string;
}

/** A {@link Trainer} as a sink segment, its epochs reported to the sweep (see the module comment). */
export class TrainerSink {
  private readonly trainer = new Trainer();
  private client?: ControlClient;

  /** Connects to the sweep, then sets the trainer up (loads tfjs, builds the model). */
  async setup(options: TrainerSinkOptions): Promise<void> {
    if (options.control) this.client = await ControlClient.connect(options.control, options.trainer.trialId ?? 'trial');
    await this.trainer.setup(options.trainer, this.client?.context() ?? {});
  }

  /** Trains on one record: a batch or a marker, or (two inputs) an xs and a ys tensor. */
  run(a: unknown, b?: unknown, c?: SegmentContext): Promise<void> {
    // Two inputs: run(xs, ys, ctx). One input: run(record, ctx), where ctx is the engine's context.
    if (b !== undefined && (isTensorRecord(b) || isEpochEnd(b))) {
      if (isEpochEnd(a) && isEpochEnd(b)) return this.trainer.run(a, c);
      return this.trainer.run({ xs: a, ys: b }, c);
    }
    // The trainer lets go of the stream through ctx.stop() once it stopped.
    return this.trainer.run(a, b as SegmentContext | undefined);
  }

  /** Finishes the trial (test set, saving) and returns its result. */
  async teardown(): Promise<TrainerResult> {
    try {
      return await this.trainer.teardown();
    } finally {
      await this.client?.close();
    }
  }
}
