// Listing a project's KV buckets and object stores on a real nats-server while they are written:
// every listing ends, and holds every entry that existed throughout (`kv.keys()` and
// `store.list()` could wait for ever when an entry was replaced while they listed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterConnection } from '../src/cluster/index.js';
import { startServer, stopAll, type TestServer } from './helpers/nats.js';

let server: TestServer;
let conn: ClusterConnection;

beforeAll(async () => {
  server = await startServer();
  conn = await ClusterConnection.open({ servers: server.url, project: 'listing' });
}, 60_000);
afterAll(async () => {
  await conn?.close();
  await stopAll();
}, 60_000);

const KEYS = Array.from({ length: 40 }, (_, i) => `key-${String(i).padStart(2, '0')}`);

describe('listing while writing', () => {
  it('kvKeys: every key, each listing ends, while the keys are rewritten and others come and go', async () => {
    const kv = await conn.kv('busy', { history: 1 });
    for (const k of KEYS) await kv.put(k, `v0 ${k}`);
    let writing = true;
    const writer = (async () => {
      for (let n = 1; writing; n++) {
        await kv.put(KEYS[n % KEYS.length]!, `v${n}`);
        if (n % 7 === 0) await kv.put(`extra-${n}`, 'x').then(() => kv.delete(`extra-${n}`));
      }
    })();
    try {
      for (let i = 0; i < 25; i++) {
        const keys = await conn.kvKeys('busy');
        expect(keys.filter((k) => k.startsWith('key-'))).toEqual(KEYS);
      }
    } finally {
      writing = false;
      await writer;
    }
    expect(await conn.kvKeys('no-such-bucket')).toEqual([]);
  }, 60_000);

  it('objectNames: every live object, each listing ends, while objects are replaced and others deleted', async () => {
    const store = await conn.objectStore('busy-objects');
    const names = KEYS.slice(0, 12).map((k) => `${k}/model.json`);
    for (const n of names) await store.putBlob({ name: n }, new Uint8Array([1]));
    await store.putBlob({ name: 'gone' }, new Uint8Array([2]));
    await store.delete('gone');
    let writing = true;
    const writer = (async () => {
      for (let n = 1; writing; n++) await store.putBlob({ name: names[n % names.length]! }, new Uint8Array([n & 255]));
    })();
    try {
      for (let i = 0; i < 15; i++) expect(await conn.objectNames('busy-objects')).toEqual([...names].sort());
    } finally {
      writing = false;
      await writer;
    }
    expect(await conn.objectNames('no-such-store')).toEqual([]);
  }, 60_000);
});
