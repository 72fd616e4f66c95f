// Who decides that a ring's peer is dead. A waiter aborts an unsupervised ring with ERR_PEER_DEAD only
// when every peer on the other side is gone (one in its own process counts as alive); a supervised ring
// (the engine's) leaves it to its creator while the creator lives, so a dead reader's cursor can be
// dropped and the other readers go on. Deterministic: peers are pids of processes that have exited.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { layout as L } from '../src/native.js';
import { Ring, RingReader, RingWriter } from '../src/ring/index.js';

/** The pid of a process that has exited (and was reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

const setReaderPid = (ring: Ring, slot: number, pid: number) => Atomics.store(ring.i32, (L.offReaders + slot * L.line + L.readerPid) >> 2, pid);

/** A ring with two reader slots whose writer (this process) has filled it. */
function fullRing(supervised: boolean): { ring: Ring; w: RingWriter } {
  const ring = Ring.create({ capacity: 1 << 12, readers: 2, crossProcess: true, supervised });
  const w = new RingWriter(ring);
  while (w.claim(100, 1) >= 0) w.commit();
  w.flush();
  return { ring, w };
}

describe('a writer waiting for space while a reader is dead', () => {
  it('unsupervised: a live reader in this process keeps the ring up; dropping the dead cursor lets the writer on', async () => {
    const { ring, w } = fullRing(false);
    setReaderPid(ring, 0, deadPid());
    const live = new RingReader(ring, 1);  // registers this process's pid in slot 1
    await expect(w.waitForSpace(100, 16, { timeoutMs: 300 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(ring.state()).toBe(L.stateOpen);
    // What the supervisor does for an onCrash: 'continue' sink: the dead cursor stops counting.
    ring.deactivateReader(0);
    while (live.next() >= 0) live.release();
    live.flush();
    await w.waitForSpace(100, 16, { timeoutMs: 2000 });
    expect(w.claim(100, 1)).toBeGreaterThanOrEqual(0);
    ring.close();
  });

  it('unsupervised: every reader dead aborts the ring with ERR_PEER_DEAD', async () => {
    const { ring, w } = fullRing(false);
    setReaderPid(ring, 0, deadPid());
    setReaderPid(ring, 1, deadPid());
    await expect(w.waitForSpace(100, 16, { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'ERR_PEER_DEAD' });
    ring.close();
  });

  it('supervised: while its creator lives, dead readers are the creator\'s to handle (no abort)', async () => {
    const { ring, w } = fullRing(true);
    setReaderPid(ring, 0, deadPid());
    setReaderPid(ring, 1, deadPid());
    await expect(w.waitForSpace(100, 16, { timeoutMs: 300 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(ring.state()).toBe(L.stateOpen);
    ring.close();
  });

  it('supervised: once its creator is gone too, a waiter aborts with ERR_PEER_DEAD', async () => {
    const { ring } = fullRing(true);
    setReaderPid(ring, 0, deadPid());
    setReaderPid(ring, 1, deadPid());
    // As seen from a process the creator left behind: the same ring, another creator that has exited.
    Atomics.store(ring.i32, L.offCreatorPid >> 2, deadPid());
    const orphan = new RingWriter({ name: ring.name });
    expect(orphan.mem.creatorPid).not.toBe(process.pid);
    await expect(orphan.waitForSpace(100, 16, { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'ERR_PEER_DEAD' });
    ring.close();
  });
});
