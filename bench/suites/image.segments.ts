// Segment code of the `image` suite's ringpipe runner (workers import it by module and export).
import type { Tensor } from '../../src/index.js';

/**
 * The control block a long-lived ringpipe runner shares with its source and sink (Int32 words): the
 * runner asks for a round, the source yields it, the sink counts it and answers.
 */
export const ROUND = { request: 0, start: 1, count: 2, base: 3, stop: 4, done: 5 } as const;
export const ROUND_BYTES = 32;

export interface RoundOptions {
  control: SharedArrayBuffer;
  files: string[];
}

/**
 * Yields one round of images per request, as `imageSource` would over the round's list: files
 * [(start + k) mod n] with index base + k and epoch `start`. Between rounds it waits (the
 * pipeline's replicas stay up, as the peers' processes and pools do).
 */
export async function* roundSource(o: RoundOptions): AsyncGenerator<{ index: number; path: string; label: number; epoch: number }> {
  const c = new Int32Array(o.control);
  const n = o.files.length;
  let seen = 0;
  for (;;) {
    // A pending waitAsync does not keep a thread's event loop alive: the timer does, meanwhile.
    const alive = setInterval(() => {}, 60_000);
    while (Atomics.load(c, ROUND.request) === seen) await Atomics.waitAsync(c, ROUND.request, seen).value;
    clearInterval(alive);
    seen = Atomics.load(c, ROUND.request);
    if (Atomics.load(c, ROUND.stop)) return;
    const start = c[ROUND.start]!, count = c[ROUND.count]!, base = c[ROUND.base]!;
    for (let k = 0; k < count; k++) yield { index: base + k, path: o.files[(start + k) % n]!, label: -1, epoch: start };
  }
}

/** Counts the tensors that reach the end of the pipeline, and bumps `done` at each round's last. */
export class RoundCount {
  private c!: Int32Array;
  private length = 0;
  private k = 0;

  setup(o: RoundOptions & { length: number }): void {
    this.c = new Int32Array(o.control);
    this.length = o.length;
  }

  run(t: Tensor): void {
    if (t.data.length !== this.length || t.dtype !== 'float32') throw new Error(`RoundCount: got ${t.dtype} [${t.shape.join(', ')}], expected ${this.length} float32 elements`);
    if (++this.k === this.c[ROUND.count]) {
      this.k = 0;
      Atomics.add(this.c, ROUND.done, 1);
      Atomics.notify(this.c, ROUND.done);
    }
  }
}
