// After the whole suite, no ringpipe segment of this user may be left in /dev/shm.
import { readdirSync } from 'node:fs';
import { userInfo } from 'node:os';

const prefix = `ringpipe-u${userInfo().uid}-`;
const listShm = () => {
  try {
    return readdirSync('/dev/shm').filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
};

let before = new Set<string>();
export function setup() {
  before = new Set(listShm());
}
export function teardown() {
  const left = listShm().filter((n) => !before.has(n));
  if (left.length) throw new Error(`the test suite left shared-memory segments in /dev/shm: ${left.join(', ')}`);
}
