// The benchmark harness: `npm run bench -- <suite> [--quick]` runs bench/suites/<suite>.ts, prints a
// table and writes bench/results/<suite>.json. Every result carries the peer it was measured
// against in the same run; `ratio` = value / baseline, higher is better.
import { mkdirSync, writeFileSync, readdirSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface BenchResult {
  name: string;
  unit: string;
  value: number;
  baseline: { name: string; value: number };
  /** Extra figures worth keeping (e.g. absolute peer throughput, work counts). */
  notes?: Record<string, unknown>;
}

export interface BenchContext {
  /** Finish in under a minute. */
  quick: boolean;
  /** Records a result; the harness adds the ratio. */
  report(result: BenchResult): void;
  log(message: string): void;
}

export type Suite = (ctx: BenchContext) => Promise<void>;

const here = dirname(fileURLToPath(import.meta.url));

export function suites(): string[] {
  return readdirSync(join(here, 'suites'))
    .filter((f) => /^[a-z0-9-]+\.ts$/.test(f))  // helpers are named like x.worker.ts
    .map((f) => f.slice(0, -3))
    .sort();
}

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3));

export async function runSuite(name: string, quick: boolean): Promise<object> {
  if (!suites().includes(name)) throw new Error(`unknown bench suite '${name}' (have: ${suites().join(', ')})`);
  const mod = (await import(pathToFileURL(join(here, 'suites', `${name}.ts`)).href)) as { default: Suite };
  const results: (BenchResult & { ratio: number })[] = [];
  const started = Date.now();
  await mod.default({
    quick,
    log: (m) => console.error(`[${name}] ${m}`),
    report: (r) => {
      const ratio = r.value / r.baseline.value;
      results.push({ ...r, ratio });
      console.error(`[${name}] ${r.name}: ${fmt(r.value)} ${r.unit} vs ${r.baseline.name} ${fmt(r.baseline.value)} -> x${fmt(ratio)}`);
    },
  });
  const out = {
    suite: name,
    quick,
    date: new Date().toISOString(),
    seconds: (Date.now() - started) / 1000,
    machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version },
    results,
  };
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, 'results', `${name}.json`), JSON.stringify(out, null, 2) + '\n');
  console.log(`\n${name}${quick ? ' (quick)' : ''}, ${out.machine.cpus} cpus, node ${process.version}`);
  console.log('| benchmark | value | unit | baseline | baseline value | ratio |');
  console.log('| --- | ---: | --- | --- | ---: | ---: |');
  for (const r of results) {
    console.log(`| ${r.name} | ${fmt(r.value)} | ${r.unit} | ${r.baseline.name} | ${fmt(r.baseline.value)} | ${fmt(r.ratio)} |`);
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const names = args.filter((a) => !a.startsWith('--'));
  if (!names.length) {
    console.error(`usage: npm run bench -- <suite> [--quick]   suites: ${suites().join(', ')}`);
    process.exit(2);
  }
  for (const n of names) await runSuite(n, quick);
}
