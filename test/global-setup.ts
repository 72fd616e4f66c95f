// After the whole suite, no ringpipe segment of this user may be left in /dev/shm by a process that
// has ended. (Segments of processes still running, such as another test run on the same machine,
// are theirs to clean up; a segment whose owner is gone is a leak.)
import { readdirSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { removeStaleSpools } from '../src/config/executor.js';
import { removeStaleSockets } from '../src/sweep/control.js';

const prefix = `ringpipe-u${userInfo().uid}-`;
const listShm = () => {
  try {
    return readdirSync('/dev/shm').filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
};

/** The owner (pid + start time, see native/region.h) of a segment still runs. */
function ownerAlive(name: string): boolean {
  const m = /-p(\d+)-s(\d+)-/.exec(name);
  if (!m) return false;
  try {
    const stat = readFileSync(`/proc/${m[1]}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] === m[2];
  } catch {
    return false;
  }
}

let before = new Set<string>();
export function setup() {
  before = new Set(listShm());
}
export async function teardown() {
  // Spools of pipeline runs the tests killed (agents' items): the next run would remove them.
  await removeStaleSpools();
  // Control sockets of sweep processes the tests killed on purpose (agents SIGKILLed mid-trial):
  // the next sweep would remove them; the suite leaves none.
  removeStaleSockets();
  const left = listShm().filter((n) => !before.has(n) && !ownerAlive(n));
  if (left.length) throw new Error(`the test suite left shared-memory segments in /dev/shm: ${left.join(', ')}`);
}
