// Work functions for the cluster tests (agents import this module by path): a trial-like item with
// epochs, progress reports and checkpoints; a failing item; a CPU-bound item for the benchmark.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkContext } from '../../src/cluster/index.js';

export interface TrialPayload {
  x: number;
  epochs: number;
  /** Milliseconds per epoch. */
  ms: number;
  /** Directory where every start of an attempt is logged (one line per start). */
  log?: string;
}

/** A trial: `epochs` epochs of `ms`, metrics reported and a checkpoint saved after each; resumes from the last checkpoint. */
export async function trial(p: TrialPayload, ctx: WorkContext) {
  const ck = await ctx.checkpoint.load<{ epoch: number; acc: number }>();
  const from = ck ? ck.value.epoch + 1 : 0;
  if (p.log) appendFileSync(join(p.log, `${ctx.id}.log`), `${ctx.agent} attempt ${ctx.attempt} from ${from}\n`);
  let acc = ck ? ck.value.acc : 0;
  const epochsRun: number[] = [];
  for (let epoch = from; epoch < p.epochs; epoch++) {
    await new Promise((r) => setTimeout(r, p.ms));
    acc += p.x;
    epochsRun.push(epoch);
    await ctx.report({ epoch, loss: 1 / (epoch + 1), acc });
    await ctx.checkpoint.save({ epoch, acc }, { epoch });
  }
  return { x: p.x, square: p.x * p.x, acc, epochsRun, resumedFrom: from, agent: ctx.agent, attempt: ctx.attempt };
}

/** Always fails. */
export function fails(p: { why: string }): never {
  throw new Error(`failing on purpose: ${p.why}`);
}

/** CPU-bound: `n` iterations of arithmetic; returns a checksum. */
export function burn(p: { n: number; seed: number }) {
  let acc = p.seed;
  for (let i = 0; i < p.n; i++) acc = (acc + Math.sqrt(i + acc)) % 1e9;
  return { acc };
}

/** Waits `ms` (an item bound by latency, not CPU: I/O, a remote service, a GPU); stops when its signal aborts. */
export async function nap(p: { ms: number; i: number }, ctx?: WorkContext) {
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, p.ms);
    ctx?.signal.addEventListener('abort', () => {
      clearTimeout(t);
      reject(ctx.signal.reason);
    }, { once: true });
  });
  return { i: p.i };
}

/** Reports the GPUs an item was given (and holds them for `ms`). */
export async function gpuProbe(p: { ms: number; i: number }, ctx: WorkContext) {
  await new Promise((r) => setTimeout(r, p.ms));
  return { i: p.i, gpus: ctx.gpus, cuda: ctx.env.CUDA_VISIBLE_DEVICES, agent: ctx.agent };
}

/** Logs each start (`<agent> <attempt>` in `<log>/<item id>.log`), waits `ms` without touching the cluster, returns. */
export async function napLog(p: { ms: number; i: number; log: string }, ctx: WorkContext) {
  appendFileSync(join(p.log, `${ctx.id}.log`), `${ctx.agent} ${ctx.attempt}\n`);
  await nap(p, ctx);
  return { i: p.i, agent: ctx.agent };
}

/** Touches what a sweep trial's item does besides results: a model upload and an early-stopping question to the submitter. */
export async function probe(p: { subject: string }, ctx: WorkContext) {
  const models = await ctx.cluster.objectStore('models');
  await models.putBlob({ name: `${ctx.id}/model.json` }, new TextEncoder().encode('{}'));
  const answer = await ctx.cluster.nc.request(p.subject, JSON.stringify({ from: ctx.agent }), { timeout: 10_000 });
  return { answer: answer.string() };
}
