// `ringpipe results FILE`: the artifacts of a pipeline with their metadata; `ringpipe graph FILE`.
import { JsonPipeline } from '../../config/pipeline.js';
import { loadOptions } from './run.js';
import { UsageError } from '../errors.js';
import { cellValue, csv, flattenParams, line, table, type Io } from '../format.js';

/** Options of `ringpipe results`. */
export interface ResultsCommandOptions {
  /** `item.field=value` overrides (results of that variant of the pipeline). */
  set: string[];
  /** Only these stages (default: the stages no other stage reads). */
  stage: string[];
  /** Every stage. */
  all?: boolean;
  /** Print `{ "results": [...] }`. */
  json?: boolean;
  /** Print CSV. */
  csv?: boolean;
  /** Cache directory (default: beside the pipeline file). */
  cacheDir?: string;
  /** Most branches (`--max-branches`). */
  maxBranches?: number;
  /** Allow paths outside the project folder. */
  allowOutsideProject?: boolean;
}

/** `ringpipe results`; returns the exit code. */
export async function resultsCommand(file: string, opts: ResultsCommandOptions, io: Io): Promise<number> {
  const pipeline = await JsonPipeline.load(file, loadOptions(opts));
  const known = new Set(pipeline.loaded.items.map((i) => i.name));
  for (const s of opts.stage) if (!known.has(s)) throw new UsageError(`no item '${s}' in ${file}`);
  const rows = await pipeline.results({ stages: opts.stage, all: opts.all, cacheDir: opts.cacheDir });
  if (opts.json) {
    io.out.write(JSON.stringify({ results: rows }) + '\n');
    return 0;
  }
  const paramCols = unionKeys(rows.map((r) => flattenParams(r.params)));
  const metaCols = unionKeys(rows.map((r) => r.metadata ?? {}));
  const head = ['stage', 'branch', ...paramCols, 'status', 'records', ...metaCols];
  const body = rows.map((r) => {
    const p = flattenParams(r.params);
    return [r.stage, r.branch ?? '', ...paramCols.map((c) => p[c]), r.status, r.records ?? '', ...metaCols.map((c) => r.metadata?.[c])];
  });
  if (opts.csv) {
    io.out.write(csv([...head, 'key'], body.map((b, i) => [...b, rows[i]!.key])));
    return 0;
  }
  line(io.out, table(head, body.map((b) => b.map((c) => cellValue(c)))));
  const missing = rows.filter((r) => r.status === 'missing').length;
  if (missing) line(io.err, `${missing} of ${rows.length} artifacts are not in the cache yet (run 'ringpipe run ${file}')`);
  return 0;
}

function unionKeys(objs: Record<string, unknown>[]): string[] {
  const keys: string[] = [];
  for (const o of objs) for (const k of Object.keys(o)) if (!keys.includes(k)) keys.push(k);
  return keys;
}

/** `ringpipe graph`. */
export async function graphCommand(file: string, opts: { set: string[]; format: string; branches?: boolean; maxBranches?: number; allowOutsideProject?: boolean }, io: Io): Promise<number> {
  if (opts.format !== 'mermaid' && opts.format !== 'dot') throw new UsageError(`--format must be mermaid or dot (got '${opts.format}')`);
  const pipeline = await JsonPipeline.load(file, loadOptions(opts));
  const g = await pipeline.describe({ branches: opts.branches });
  io.out.write(opts.format === 'dot' ? g.dot : g.mermaid);
  return 0;
}
