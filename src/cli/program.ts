// The `ringpipe` command line: commands, options, exit codes.
//
// Exit codes: 0 ok; 1 a run failed (a stage threw, or the run was interrupted); 2 usage or
// configuration error (bad arguments, a pipeline that does not validate).
import { Command, CommanderError, Option } from 'commander';
import { packageVersion } from '../cache/package-root.js';
import { ConfigError } from '../config/errors.js';
import { DEFAULT_MAX_BRANCHES } from '../config/load.js';
import { RingpipeError } from '../errors.js';
import { cacheClear, cacheGc, cacheLs, cacheVerify } from './commands/cache.js';
import { demoCommand, seedArg } from './commands/demo.js';
import { benchCommand, initCommand } from './commands/init.js';
import { graphCommand, resultsCommand } from './commands/results.js';
import { runCommand, validateCommand } from './commands/run.js';
import { UsageError } from './errors.js';
import { addConnectionFlags, registerClusterCommands } from '../cluster/cli.js';
import { ClusterError, ClusterRunError } from '../cluster/errors.js';
import { line, type Io } from './format.js';

/** Exit codes of the `ringpipe` command. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

const collect = (value: string, previous: string[]) => [...previous, value];
const integerAtLeast = (min: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`expected ${min ? 'a positive' : 'a non-negative'} integer, got '${value}'`);
  return n;
};
const positiveInt = integerAtLeast(1);
const nonNegativeInt = integerAtLeast(0);

/**
 * Runs the command line `argv` (without `node` and the script) and resolves with the exit code.
 * `signal` interrupts a running command (the CLI wires it to SIGINT).
 */
export async function runCli(argv: string[], io: Io, signal: AbortSignal = new AbortController().signal): Promise<number> {
  let code: number = EXIT.ok;
  const program = new Command('ringpipe')
    .description('Streaming ML data pipelines: JSON pipelines with a content-addressed cache, benchmarks.')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s) })
    .exitOverride();
  const setOption = () => new Option('--set <item.field=value>', 'override a field of an item (repeatable; the value is JSON, or a string); the field must exist').argParser(collect).default([]);
  // Options of every command that loads a pipeline file.
  const pipelineOptions = (c: Command) =>
    c
      .addOption(setOption())
      .addOption(new Option('--add <item.field=value>', 'add a field an item does not have yet, e.g. a new parameter (repeatable)').argParser(collect).default([]))
      .addOption(new Option('--max-branches <n>', `refuse a pipeline with more branches than this (default ${DEFAULT_MAX_BRANCHES}, or RINGPIPE_MAX_BRANCHES)`).argParser(positiveInt))
      .option('--allow-outside-project', "allow paths that lead outside the pipeline file's folder (files, folders, modules, links)");
  const cacheDirOption = () => new Option('--cache-dir <dir>', 'cache directory (default: .ringpipe/cache beside the pipeline file)');

  program
    .command('init')
    .description('write a runnable example project (a JSON pipeline, its functions and data) into DIR')
    .argument('<dir>', 'directory to create or fill')
    .option('--force', 'overwrite existing files')
    .action(async (dir: string, opts: { force?: boolean }) => {
      code = await initCommand(dir, opts, io);
    });

  pipelineOptions(
    program
      .command('validate')
      .description('check a pipeline file: schema, names, inputs, cycles, modules and exports, paths, the number of branches')
      .argument('<file>', 'pipeline file (JSON)'),
  )
    .option('--json', 'print the verdict as JSON')
    .action(async (file: string, opts: PipelineFlags & { json?: boolean }) => {
      code = await validateCommand(file, withAdds(opts), io);
    });

  const run = pipelineOptions(
    program
      .command('run')
      .description('run a pipeline; stages whose results are in the cache are loaded, not run')
      .argument('<file>', 'pipeline file (JSON)'),
  )
    .option('--dry-run', 'show which stages are cached and which would run; run nothing')
    .option('--no-cache', 'neither read nor write the cache (everything runs)')
    .option('--verify', 'hash every cached artifact the run uses (default: those up to 64 MiB; larger ones have their size checked)')
    .option('--json', 'print one JSON object: { "stages": [ { name, branch, status, records, seconds, skipped?, error? } ], "notRun": [...], "unusedInputs": [...] }, a stage run per line as it ends')
    .addOption(cacheDirOption())
    .addOption(new Option('--concurrency <n>', 'stage runs at the same time (independent branches)').argParser(positiveInt))
    .option('--fail-fast', 'stop at the first failing stage (default: independent branches go on)')
    .option('-q, --quiet', 'no progress output')
    .option('--cluster <urls>', "run the branches on a cluster's agents: NATS server URL(s), comma-separated (docs/cluster.md)")
    .option('--root <dir>', 'with --cluster: the checkout directory agents --root stands for (default: current directory)')
    .addOption(new Option('--item-gpus <n>', "with --cluster: GPUs each branch's work item asks for (default 0)").argParser(nonNegativeInt));
  addConnectionFlags(run, { servers: false }).action(async (file: string, opts: Parameters<typeof runCommand>[1] & { add: string[] }) => {
    code = await runCommand(file, withAdds(opts), io, signal);
  });

  pipelineOptions(
    program
      .command('graph')
      .description('print the pipeline graph as Mermaid (default) or Graphviz DOT')
      .argument('<file>', 'pipeline file (JSON)')
      .addOption(new Option('--format <format>', 'output format').choices(['mermaid', 'dot']).default('mermaid'))
      .addOption(new Option('--dot', 'the same as --format dot').conflicts('mermaid'))
      .addOption(new Option('--mermaid', 'the same as --format mermaid'))
      .option('--branches', 'one node per grid branch instead of one per item'),
  ).action(async (file: string, opts: PipelineFlags & { format: string; dot?: boolean; mermaid?: boolean; branches?: boolean }) => {
    const format = opts.dot ? 'dot' : opts.mermaid ? 'mermaid' : opts.format;
    code = await graphCommand(file, withAdds({ ...opts, format }), io);
  });

  pipelineOptions(
    program
      .command('results')
      .description("show the artifacts of a pipeline's stages with their parameters and metadata (e.g. each grid branch's loss)")
      .argument('<file>', 'pipeline file (JSON)')
      .addOption(new Option('--stage <name>', 'only this stage (repeatable; default: the final stages)').argParser(collect).default([]))
      .option('--all', 'every stage')
      .addOption(new Option('--json', 'print JSON').conflicts('csv'))
      .option('--csv', 'print CSV'),
  )
    .addOption(cacheDirOption())
    .action(async (file: string, opts: Parameters<typeof resultsCommand>[1] & { add: string[] }) => {
      code = await resultsCommand(file, withAdds(opts), io);
    });

  program
    .command('bench')
    .description('run a benchmark suite (from a ringpipe checkout) and print its table')
    .argument('[suite]', 'suite name (see --list)')
    .option('--quick', 'a shorter run (under a minute)')
    .option('--list', 'list the suites')
    .action(async (suite: string | undefined, opts: { quick?: boolean; list?: boolean }) => {
      code = await benchCommand(suite, opts, io, signal);
    });

  program
    .command('demo')
    .description('run the embedded example end to end on generated data: image preprocessing on the engine, then a small sweep of TensorFlow.js models; prints the results table')
    .option('--out <dir>', 'keep the result files (results.json, results.csv, history.csv, learning-curves.html, best-model/) in DIR (default: a temporary folder, removed at the end)')
    .option('--quick', 'a smaller run: fewer images, 2 trials in one wave')
    .addOption(new Option('--seed <n>', 'seed of the generated data, the split and the shuffling').argParser(seedArg).default(1))
    .action(async (opts: { out?: string; quick?: boolean; seed?: number }) => {
      code = await demoCommand(opts, io, signal);
    });

  const cache = program.command('cache').description('inspect and clean the artifact cache');
  cache
    .command('ls')
    .description('list cache entries with their sizes')
    .argument('[file]', 'pipeline file whose cache to list (default: ./.ringpipe/cache)')
    .addOption(cacheDirOption())
    .option('--json', 'print JSON')
    .action(async (file: string | undefined, opts: { cacheDir?: string; json?: boolean }) => {
      code = await cacheLs(file, opts, io);
    });
  cache
    .command('gc')
    .description('remove entries that no current pipeline reaches (pipelines that ran with this cache, plus FILEs), and leftovers of killed runs')
    .argument('[files...]', 'pipeline files to keep besides the registered ones')
    .addOption(cacheDirOption())
    .option('--dry-run', 'only say what would be removed')
    .option('--force', 'go on when a registered pipeline does not validate (its entries are dropped)')
    .option('--json', 'print JSON')
    .action(async (files: string[], opts: { cacheDir?: string; dryRun?: boolean; force?: boolean; json?: boolean }) => {
      code = await cacheGc(files, opts, io);
    });
  cache
    .command('verify')
    .description("hash every cache entry's records and compare them with its manifest; exit 1 when one is damaged")
    .argument('[file]', 'pipeline file whose cache to verify (default: ./.ringpipe/cache)')
    .addOption(cacheDirOption())
    .option('--remove', 'remove damaged entries (the next run computes them again)')
    .option('--json', 'print JSON')
    .action(async (file: string | undefined, opts: { cacheDir?: string; remove?: boolean; json?: boolean }) => {
      code = await cacheVerify(file, opts, io);
    });
  cache
    .command('clear')
    .description('remove every cache entry')
    .argument('[file]', 'pipeline file whose cache to clear (default: ./.ringpipe/cache)')
    .addOption(cacheDirOption())
    .action(async (file: string | undefined, opts: { cacheDir?: string }) => {
      code = await cacheClear(file, opts, io);
    });

  // `ringpipe agent` and `ringpipe cluster status` (NATS JetStream; docs/cluster.md).
  const clusterCommands = registerClusterCommands(program, io, signal, (c) => (code = c));

  for (const c of [program, ...program.commands, ...cache.commands, ...clusterCommands]) {
    c.exitOverride().configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s) });
  }

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    return exitCodeFor(err, io);
  }
}

/** What every command that loads a pipeline file takes. */
interface PipelineFlags {
  set: string[];
  add: string[];
  maxBranches?: number;
  allowOutsideProject?: boolean;
}

/** `--add x.y=v` travels with the overrides as `+x.y=v` (see applyOverrides), after the `--set`s. */
function withAdds<T extends { set: string[]; add: string[] }>(opts: T): T {
  return { ...opts, set: [...opts.set, ...opts.add.map((a) => `+${a}`)] };
}

function exitCodeFor(err: unknown, io: Io): number {
  if (err instanceof CommanderError) {
    // help and version exit 0; commander already printed its message
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return EXIT.ok;
    if (err.code === 'commander.executeSubCommandAsync') return EXIT.failed;
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (err instanceof ConfigError) {
    line(io.err, `error: ${err.message}`);
    return EXIT.usage;
  }
  // A cluster run asked for wrongly (bad options, nothing to distribute) is a usage error.
  if (err instanceof UsageError || err instanceof ClusterRunError || (err instanceof ClusterError && err.code === 'ERR_CLUSTER_OPTIONS')) {
    line(io.err, `error: ${err.message}`);
    return EXIT.usage;
  }
  if (err instanceof RingpipeError) {
    line(io.err, `error: ${err.message}`);
    if (process.env.RINGPIPE_DEBUG && err.stack) line(io.err, err.stack);
    return EXIT.failed;
  }
  line(io.err, `error: ${err instanceof Error ? (process.env.RINGPIPE_DEBUG ? err.stack : err.message) : String(err)}`);
  return EXIT.failed;
}
