// `sweep({ cluster })`: the same sweep, its trials run by the cluster's agents. What agents need is
// found here, before anything is submitted: the data builder as `module#export` (an exported
// function is found by its export, as segments are; a closure cannot travel) and trainer settings
// that JSON can carry. The rest is clusterDataPath's.
import { fileURLToPath } from 'node:url';
import { locate } from '../segments/locate.js';
import type { DataPath, SweepOptions } from '../sweep/sweep.js';
import { ClusterError, ClusterRunError } from './errors.js';
import { clusterDataPath, type ClusterSweepOptions } from './sweep.js';

/**
 * The `cluster` option of `sweep()`: connection (servers, project, credentials, TLS) and
 * {@link clusterDataPath}'s options. `build`, `args` and `isolation` default to those of the
 * sweep's `data` (an `engineDataPath` whose `build` is exported by a module).
 */
export interface SweepClusterOptions extends Omit<ClusterSweepOptions, 'build'> {
  /** `module#export` of the data builder (default: `data`'s `build`, found by its export). */
  build?: string;
}

/** The first part of `value` JSON cannot carry (a function, a typed array, a class instance), as a path; undefined if none. */
export function notJson(value: unknown, path: string): string | undefined {
  if (value === null || value === undefined || ['string', 'number', 'boolean'].includes(typeof value)) return undefined;
  if (typeof value !== 'object') return path;
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const bad = notJson(v, `${path}[${i}]`);
      if (bad) return bad;
    }
    return undefined;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return path;
  for (const [k, v] of Object.entries(value)) {
    const bad = notJson(v, `${path}.${k}`);
    if (bad) return bad;
  }
  return undefined;
}

/** `module#export` of a data path's build function, or a {@link ClusterRunError} saying why there is none. */
async function buildReference(data: DataPath | undefined): Promise<string> {
  const remote = data?.remote;
  if (!remote) {
    const what = data ? `the data path '${data.name}' cannot be rebuilt on an agent` : 'there is no data path (option data)';
    throw new ClusterRunError('ERR_CLUSTER_NOT_SHIPPABLE', `sweep: option 'cluster' needs the data builder as 'module#export': ${what}; use engineDataPath({ build }) with an exported build function, or give cluster.build`, { option: 'cluster.build' });
  }
  if (typeof remote.build === 'string') return remote.build;
  const target = { impl: remote.build, name: 'build', declaredIn: remote.declaredIn, module: undefined as string | undefined, exportName: undefined as string | undefined };
  try {
    await locate(target);
  } catch (err) {
    throw new ClusterRunError(
      'ERR_CLUSTER_NOT_SHIPPABLE',
      `sweep: option 'cluster': agents import the data builder by module and export, and data's build function is not exported by ${remote.declaredIn ?? 'the module that made the data path'} or the modules it imports (a closure cannot travel): export it, or give cluster.build as './data.js#build'`,
      { option: 'data.build', cause: err },
    );
  }
  return `${fileURLToPath(target.module!)}#${target.exportName!}`;
}

/** The data path of `sweep({ cluster })`; throws {@link ClusterRunError} for what agents could not get. */
export async function sweepClusterPath(cluster: string | SweepClusterOptions, options: Pick<SweepOptions, 'data' | 'trainer'>): Promise<DataPath> {
  const given: SweepClusterOptions = typeof cluster === 'string' ? { servers: cluster } : cluster;
  if (!given || !given.servers || (Array.isArray(given.servers) && !given.servers.length)) {
    throw new ClusterError('ERR_CLUSTER_OPTIONS', "sweep: option 'cluster' needs servers (e.g. 'nats://host:4222')");
  }
  const remote = options.data?.remote;
  const build = given.build ?? (await buildReference(options.data));
  const args = 'args' in given ? given.args : remote?.args;
  for (const [value, path] of [[options.trainer, 'trainer'], [args, given.args !== undefined ? 'cluster.args' : 'data.args']] as const) {
    const bad = notJson(value, path);
    if (bad) throw new ClusterRunError('ERR_CLUSTER_NOT_SHIPPABLE', `sweep: option 'cluster': ${bad} cannot travel to agents (work items are JSON): give data sets as { module, export, args }`, { option: bad });
  }
  const isolation = given.isolation ?? remote?.isolation;
  return clusterDataPath({ ...given, build, ...(args !== undefined ? { args } : {}), ...(isolation ? { isolation } : {}) });
}
