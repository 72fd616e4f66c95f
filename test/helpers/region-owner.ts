// A process that creates a shared ring and then ends as argv[2] says: 'exit', 'throw', 'hang'
// (to be signalled). It prints the region name first.
import { Ring } from '../../src/ring/index.js';

const ring = Ring.create({ capacity: 4096, crossProcess: true });
process.stdout.write(ring.name + '\n');
const how = process.argv[2];
if (how === 'throw') setTimeout(() => { throw new Error('boom'); }, 10);
else if (how === 'hang') setInterval(() => {}, 1000);
else setTimeout(() => process.exit(0), 10);
