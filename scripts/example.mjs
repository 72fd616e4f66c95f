// npm run example -- <name> [args...]: runs examples/<name>/main.ts (through tsx) with the args.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [name, ...args] = process.argv.slice(2);
const examples = readdirSync(join(root, 'examples')).filter((d) => existsSync(join(root, 'examples', d, 'main.ts')));
if (!name || !examples.includes(name)) {
  console.error(`usage: npm run example -- <name> [args...]\nexamples: ${examples.join(', ')}`);
  process.exit(2);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'examples', name, 'main.ts'), ...args], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
