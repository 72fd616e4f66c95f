// Compiling a graph into what the runtime runs: a ring per (writer segment, output port, replica)
// with a cursor per reading replica, and each replica's plan (its input groups, output rings,
// whether records may be forwarded by reference). The supervisor (src/runtime) then only runs it.
import { InvalidArgumentError } from '../errors.js';
import { DEFAULT_CAPACITY, Ring } from '../ring/ring.js';
import { RingWriter } from '../ring/writer.js';
import { RingViews, tryEncode } from '../codec/codec.js';
import { PipelineValidationError } from './errors.js';
import { createStatsRegion } from '../runtime/stats.js';
import type { InputPlan, LoadedCode, PoisonMode, ReplicaPlan, RunPlan, SegmentEntry } from '../runtime/plan.js';
import type { RunOptions } from '../runtime/supervisor.js';
import type { Graph, GraphNode } from './graph.js';
import type { Stream } from './stream.js';

/** Default of RunOptions.settleTimeoutMs. */
const SETTLE_TIMEOUT_MS = 5000;

/**
 * The run plan of a validated, prepared graph. Creates its rings and stats region: the caller
 * owns them (the supervisor releases them when the run ends; here, on a failure half-way).
 * `taps`: streams the caller reads itself (iterate()), one more reader each, in RunPlan.taps.
 */
export function compile(graph: Graph, options: RunOptions, taps: readonly Stream[] = []): RunPlan {
  const nodes = graph.nodes;
  const writersOf = new Map<Stream, GraphNode[]>();
  const readersOf = new Map<Stream, GraphNode[]>();
  for (const n of nodes) {
    for (const s of n.outputs) writersOf.set(s, [...(writersOf.get(s) ?? []), n]);
    for (const s of n.inputs) readersOf.set(s, [...(readersOf.get(s) ?? []), n]);
  }
  const poisonAsked = options.poisonReleased ?? poisonFromEnv();
  const rings: Ring[] = [];
  const ringOf = new Map<string, Ring>();  // `${node}/${port}/${replica}`
  const totalReplicas = nodes.reduce((a, n) => a + n.options.workers, 0);
  const stats = createStatsRegion(totalReplicas, nodes.some((n) => n.options.isolation === 'process'));
  try {
    const streams: RunPlan['streams'] = [];
    nodes.forEach((w, wi) => {
      w.outputs.forEach((st, p) => {
        const consumers = readersOf.get(st) ?? [];
        const readers = consumers.reduce((a, c) => a + c.options.workers, 0) + (taps.includes(st) ? 1 : 0);
        const crossProcess = w.options.isolation === 'process' || consumers.some((c) => c.options.isolation === 'process');
        let entry = streams.find((s) => s.name === st.name);
        if (!entry) streams.push((entry = { name: st.name, rings: [] }));
        for (let r = 0; r < w.options.workers; r++) {
          const ring = Ring.create({ capacity: w.options.capacity ?? st.capacity ?? DEFAULT_CAPACITY, readers, crossProcess, supervised: true });
          rings.push(ring);
          entry.rings.push(ring);
          ringOf.set(`${wi}/${p}/${r}`, ring);
        }
      });
    });

    // Forwarding by reference needs every reader of the output to map the writer's input rings:
    // shared (cross-process) rings always; private ones only when nobody involved is a process.
    const canForward = (w: GraphNode, st: Stream): boolean => {
      if (w.segment.kind !== 'transform' || poisonAsked) return false;
      const inputsShared = w.inputs.every((s) =>
        writersOf.get(s)!.every((u) => ringOf.get(`${nodes.indexOf(u)}/${u.outputs.indexOf(s)}/0`)!.crossProcess),
      );
      const anyProcessReader = (readersOf.get(st) ?? []).some((c) => c.options.isolation === 'process');
      return inputsShared || (!anyProcessReader && w.options.isolation !== 'process');
    };
    const laneRings = (n: GraphNode) =>
      n.inputs.flatMap((st) =>
        writersOf.get(st)!.flatMap((w) => {
          const wi = nodes.indexOf(w), p = w.outputs.indexOf(st);
          return Array.from({ length: w.options.workers }, (_, r) => ringOf.get(`${wi}/${p}/${r}`)!.descriptor);
        }),
      );

    /** How a reader in `slot` reads `st`: a group per writing segment, a ring per writer replica. */
    const inputPlan = (st: Stream, slot: number, claimSlot: number | undefined): InputPlan => ({
      groups: writersOf.get(st)!.map((w) => {
        const wi = nodes.indexOf(w), p = w.outputs.indexOf(st);
        return {
          ordered: w.options.ordered && w.options.workers > 1,
          rings: Array.from({ length: w.options.workers }, (_, r) => ({
            ring: ringOf.get(`${wi}/${p}/${r}`)!.descriptor,
            slot,
            claimSlot,
            // Writer replica r's own input rings, which its forward records point into.
            sources: canForward(w, st) ? laneRings(w) : undefined,
          })),
        };
      }),
    });

    const replicas: RunPlan['replicas'] = [];
    nodes.forEach((n, ni) => {
      const resequence = resequences(n, writersOf);
      const poison: PoisonMode = poisonAsked === undefined ? (n.options.isolation === 'local' ? 'sole' : 'off') : poisonAsked ? 'all' : 'off';
      for (let j = 0; j < n.options.workers; j++) {
        const inputs: InputPlan[] = n.inputs.map((st) => {
          const consumers = readersOf.get(st)!;
          const first = consumers.slice(0, consumers.indexOf(n)).reduce((a, c) => a + c.options.workers, 0);
          // Who shares the work of this ring: all readers of a balanced stream; otherwise the
          // replicas of this segment (a broadcast stream gives each segment every record).
          const balanced = st.mode === 'balance' && consumers.length + (taps.includes(st) ? 1 : 0) > 1;
          return inputPlan(st, first + j, balanced ? 0 : n.options.workers > 1 ? first : undefined);
        });
        const plan: ReplicaPlan = {
          segment: {
            kind: n.segment.kind,
            name: n.segment.name,
            module: n.segment.module ?? '',
            exportName: n.segment.exportName ?? '',
            isClass: n.segment.isClass,
            options: n.segment.options,
            onError: typeof n.options.onError === 'function' ? 'function' : (n.options.onError ?? 'fail'),
            records: n.options.records ?? 'view',
          },
          onErrorRef: n.onErrorRef,
          segmentIndex: ni,
          replica: j,
          replicas: n.options.workers,
          inputs,
          outputs: n.outputs.map((st, p) => ({ ring: ringOf.get(`${ni}/${p}/${j}`)!.descriptor, forward: canForward(n, st) })),
          resequence,
          stats: stats.descriptor,
          statsSlot: replicas.length,
          poison,
          spin: n.options.isolation === 'local' ? 0 : undefined,
          settleTimeoutMs: options.settleTimeoutMs ?? SETTLE_TIMEOUT_MS,
          epoch: options.epoch ?? 0,
        };
        replicas.push({ segment: ni, plan });
      }
    });
    // Who holds whose space, for deadlock detection: each replica's output rings, each ring's reader slots.
    const ringIndex = new Map(rings.map((r, i) => [r.name || r.buffer, i]));
    const indexOf = (d: { name: string; buffer?: SharedArrayBuffer }) => ringIndex.get(d.name || d.buffer!)!;
    const slotOwners: number[][] = rings.map((r) => new Array<number>(r.readerSlots).fill(-1));
    replicas.forEach(({ plan }, ri) => {
      for (const input of plan.inputs) for (const g of input.groups) for (const l of g.rings) slotOwners[indexOf(l.ring)]![l.slot] = ri;
    });
    const waits = { outputs: replicas.map(({ plan }) => plan.outputs.map((o) => indexOf(o.ring))), readers: slotOwners };

    for (const [st, [w]] of writersOf) if (st.initial.length) seed(st, ringOf.get(`${nodes.indexOf(w!)}/${w!.outputs.indexOf(st)}/0`)!);
    // The caller's own readers: the last slot of each tapped stream's rings.
    const tapPlans = taps.map((st) => {
      const consumers = readersOf.get(st) ?? [];
      const slot = consumers.reduce((a, c) => a + c.options.workers, 0);
      return { plan: inputPlan(st, slot, st.mode === 'balance' && consumers.length > 0 ? 0 : undefined), poison: (poisonAsked ? 'all' : 'off') as PoisonMode };
    });
    return { segments: nodes.map(entryOf), replicas, streams, rings, stats, waits, taps: tapPlans };
  } catch (e) {
    for (const r of rings) r.close();
    stats.close();
    throw e;
  }
}

/**
 * Writes a stream's initial records into its first writer's ring, before any replica starts: the
 * writer then attaches where they end (the ring's write position), and readers read them first.
 */
function seed(st: Stream, ring: Ring): void {
  const w = new RingWriter(ring);
  const views = new RingViews(w.bytes);
  st.initial.forEach((record, i) => {
    let written: number;
    try {
      written = tryEncode(w, views, record, i);
    } catch (e) {
      throw new PipelineValidationError(`stream '${st.name}': initial record ${i} cannot be written: ${(e as Error).message}`);
    }
    if (written < 0) throw new PipelineValidationError(`stream '${st.name}': its ${st.initial.length} initial records do not fit its ring (${ring.capacity} bytes): give it a larger capacity`);
  });
  w.flush();
}

/** Output records are numbered afresh (not the input's seq) where several inputs or writers meet. */
function resequences(node: GraphNode, writersOf: Map<Stream, GraphNode[]>): boolean {
  const k = node.segment.kind;
  return k === 'source' || k === 'regulator' || node.inputs.length > 1 || (writersOf.get(node.inputs[0]!)?.length ?? 0) > 1;
}

function entryOf(n: GraphNode): SegmentEntry {
  return {
    name: n.segment.name,
    kind: n.segment.kind,
    isolation: n.options.isolation,
    replicas: n.options.workers,
    env: n.options.env,
    onCrash: n.options.onCrash ?? 'fail',
    recordTimeoutMs: n.options.recordTimeoutMs,
    ...(n.options.isolation === 'local'
      ? { local: { impl: n.segment.impl as LoadedCode['impl'], onError: typeof n.options.onError === 'function' ? n.options.onError : undefined } }
      : {}),
  };
}

/** RINGPIPE_POISON: '1' poisons released records in every segment, '0' in none; unset: undefined. */
function poisonFromEnv(): boolean | undefined {
  const v = process.env.RINGPIPE_POISON;
  if (v === undefined || v === '') return undefined;
  if (v === '1' || v === '0') return v === '1';
  throw new InvalidArgumentError(`the environment variable RINGPIPE_POISON must be 1 or 0, got '${v}'`);
}
