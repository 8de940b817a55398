/**
 * Streams made on a client that is still connecting (as a program does that creates its client and
 * its streams together) wait for the client to be ready, to time their probe of the link. However
 * many wait, the client carries one 'ready' listener of the package's, so that Node never warns of
 * a listener leak; once they are done, none.
 */

import type { EventEmitter } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { portOf } from '../src/redis/port.js';
import { closeAll, connect, connectSubject, uniqueKey } from './helpers/clients.js';
import { bytes, get, put } from './helpers/streams.js';

const KiB = 1024;

const redis = connect();
afterAll(closeAll);

describe("streams on a connecting client: one 'ready' listener", () => {
  it('adds at most one listener for 40 streams, warns of nothing, and leaves none', async () => {
    const chunkSize = 16 * KiB;
    // Larger than a read's first batch (readAhead 2): each read also probes before its batches.
    const data = bytes(5 * chunkSize, 411);
    const source = uniqueKey('ready-source');
    await put(redis, source, data, { chunkSize });

    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const client = connectSubject(undefined, { lazyConnect: false });
      const emitter = client as unknown as EventEmitter;
      // Counts the streams that wait: every one of them, the client still connecting.
      const port = portOf(client);
      const onceReady = port.onceReady.bind(port);
      let waits = 0;
      port.onceReady = (listener) => {
        waits++;
        return onceReady(listener);
      };
      const before = emitter.listenerCount('ready');
      let most = before;
      const onNew = (event: string | symbol): void => {
        if (event === 'ready') most = Math.max(most, emitter.listenerCount('ready') + 1);
      };
      emitter.on('newListener', onNew);
      const reads = Array.from({ length: 20 }, () => get(client, source, { readAhead: 2 }));
      const writes = Array.from({ length: 20 }, (_, i) => put(client, uniqueKey(`ready-${i}`), data, { chunkSize }));
      const read = await Promise.all(reads);
      await Promise.all(writes);
      emitter.off('newListener', onNew);

      for (const got of read) expect(got.equals(data)).toBe(true);
      expect(waits).toBeGreaterThanOrEqual(40);
      // One of the package's, and one the client library may hold while it connects (ioredis's).
      expect(most).toBeLessThanOrEqual(before + 2);
      expect(emitter.listenerCount('ready')).toBeLessThanOrEqual(before);
      // A warning is emitted on the next tick after the listener that passes the limit.
      await new Promise<void>((resolve) => process.nextTick(resolve));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
