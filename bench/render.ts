// Renders bench/results/*.json as the Markdown tables of bench/RESULTS.md:
// `node --import tsx bench/render.ts > /tmp/tables.md`.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
const fmt = (v: number) => (Math.abs(v) >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : Math.abs(v) >= 1e4 ? `${(v / 1e3).toFixed(1)} k` : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2));
for (const f of readdirSync(dir).filter((x) => x.endsWith('.json')).sort()) {
  const r = JSON.parse(readFileSync(join(dir, f), 'utf8'));
  console.log(`### ${r.suite}${r.quick ? ' (--quick)' : ''}\n`);
  console.log(`\`npm run bench -- ${r.suite}${r.quick ? ' --quick' : ''}\` on ${r.date.slice(0, 16).replace('T', ' ')} UTC, ${r.machine.cpus} cpus (${r.machine.cpuModel}), Node ${r.machine.node}, ${r.seconds.toFixed(0)} s.\n`);
  console.log('| benchmark | ringpipe | peer (same run) | peer | ratio |');
  console.log('| --- | ---: | --- | ---: | ---: |');
  for (const x of r.results) console.log(`| ${x.name} | ${fmt(x.value)} ${x.unit} | ${x.baseline.name} | ${fmt(x.baseline.value)} | **${x.ratio.toFixed(2)}** |`);
  console.log('');
}
