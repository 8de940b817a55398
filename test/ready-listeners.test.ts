/**
 * Streams made on a client that is still connecting (as a program does that creates its client and
 * its streams together) wait for the client to be ready, to time their probe of the link. However
 * many wait, the client carries one 'ready' listener of the package's, so that Node never warns of
 * a listener leak; once they are done, none. The same for 'end', which channel receivers and
 * followers listen for (a client closed by its owner ends them at once), and for 'abort' on an
 * AbortSignal that many streams and receivers share (one controller to cancel them all).
 */

import { type EventEmitter, getEventListeners } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, receiveFiles } from '../src/index.js';
import { portOf } from '../src/redis/port.js';
import {
  blockedIn,
  closeAll,
  connect,
  connectSubject,
  subjectConnected,
  uniqueConnectionName,
  uniqueKey,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { bytes, get, put } from './helpers/streams.js';

const KiB = 1024;

const redis = connect();
afterAll(closeAll);

/** Listens for the process's warnings until `stop()`: `leaks()` gives those of a listener leak. */
function watchWarnings(): { leaks: () => Promise<Error[]>; stop: () => void } {
  const warnings: Error[] = [];
  const onWarning = (warning: Error): void => void warnings.push(warning);
  process.on('warning', onWarning);
  return {
    async leaks() {
      // A warning is emitted on the next tick after the listener that passes the limit.
      await new Promise<void>((resolve) => process.nextTick(resolve));
      return warnings.filter((w) => w.name === 'MaxListenersExceededWarning');
    },
    stop: () => process.off('warning', onWarning),
  };
}

describe("streams on a connecting client: one 'ready' listener", () => {
  it('adds at most one listener for 40 streams, warns of nothing, and leaves none', async () => {
    const chunkSize = 16 * KiB;
    // Larger than a read's first batch (readAhead 2): each read also probes before its batches.
    const data = bytes(5 * chunkSize, 411);
    const source = uniqueKey('ready-source');
    await put(redis, source, data, { chunkSize });

    const warnings = watchWarnings();
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
      expect(await warnings.leaks()).toEqual([]);
    } finally {
      warnings.stop();
    }
  });
});

describe("receivers and followers on one client: one 'end' listener", () => {
  it('adds at most one listener for 12 receivers and 12 followers, warns of nothing, and leaves none', async () => {
    const warnings = watchWarnings();
    // One signal for all 24: it carries one listener of the package's too (see below).
    const stop = new AbortController();
    try {
      const name = uniqueConnectionName('end-listeners');
      const client = await subjectConnected(connectSubject(undefined, { connectionName: name }));
      const emitter = client as unknown as EventEmitter;
      const before = emitter.listenerCount('end');
      const { signal } = stop;
      const receivers = Array.from({ length: 12 }, (_, i) =>
        receiveFiles(client, uniqueKey(`end-channel-${i}`), { consumer: 'r', signal })
          .next()
          .catch(() => {}),
      );
      const followers = Array.from({ length: 12 }, (_, i) => {
        const reader = createRedisReadStream(client, uniqueKey(`end-file-${i}`), { waitForCreate: 600_000, signal });
        reader.on('error', () => {});
        reader.resume();
        return new Promise((resolve) => reader.on('close', resolve));
      });
      // Every receiver in a blocking read of its own; the followers in the reads they share.
      await eventually(
        async () => (await blockedIn(redis, name, 'xreadgroup')) === 12 && (await blockedIn(redis, name)) >= 1,
        'the receivers and followers to wait',
      );
      expect(emitter.listenerCount('end')).toBe(before + 1);
      stop.abort();
      await Promise.all([...receivers, ...followers]);
      await eventually(async () => emitter.listenerCount('end') === before, "the package's 'end' listener to go");
      expect(await warnings.leaks()).toEqual([]);
    } finally {
      stop.abort();
      warnings.stop();
    }
  });
});

describe("streams and receivers given one AbortSignal: one 'abort' listener", () => {
  it('adds one listener for 20 readers, 12 writers and 6 receivers, warns of nothing, aborts them all, and leaves none', async () => {
    const warnings = watchWarnings();
    const stop = new AbortController();
    const { signal } = stop;
    try {
      const name = uniqueConnectionName('abort-listeners');
      const client = await subjectConnected(connectSubject(undefined, { connectionName: name }));
      const closed = (stream: Readable | Writable): Promise<unknown> =>
        new Promise((resolve) => stream.on('close', () => resolve(stream.errored)));
      const readers = Array.from({ length: 20 }, (_, i) => {
        const reader = createRedisReadStream(client, uniqueKey(`abort-file-${i}`), { waitForCreate: 600_000, signal });
        reader.on('error', () => {});
        reader.resume();
        return closed(reader);
      });
      const writers = Array.from({ length: 12 }, (_, i) => {
        const writer = createRedisWriteStream(client, uniqueKey(`abort-written-${i}`), { signal });
        writer.on('error', () => {});
        writer.write('a first line\n');
        return { writer, closed: closed(writer) };
      });
      const receivers = Array.from({ length: 6 }, (_, i) =>
        receiveFiles(client, uniqueKey(`abort-channel-${i}`), { consumer: 'r', signal })
          .next()
          .then(
            () => undefined,
            (err: unknown) => err,
          ),
      );
      await Promise.all(writers.map(({ writer }) => new Promise((resolve) => writer.once('ready', resolve))));
      await eventually(
        async () => (await blockedIn(redis, name, 'xreadgroup')) === 6 && (await blockedIn(redis, name)) >= 1,
        'the receivers and readers to wait',
      );
      expect(getEventListeners(signal, 'abort')).toHaveLength(1);
      stop.abort();
      const aborted = { name: 'AbortError', code: 'ABORT_ERR' };
      for (const err of await Promise.all(readers)) expect(err).toMatchObject(aborted);
      for (const err of await Promise.all(writers.map((w) => w.closed))) expect(err).toMatchObject(aborted);
      for (const err of await Promise.all(receivers)) expect(err).toMatchObject(aborted);
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);
      expect(await warnings.leaks()).toEqual([]);
    } finally {
      stop.abort();
      warnings.stop();
    }
  });

  it('leaves no listener on the signal once its streams are done without it', async () => {
    const { signal } = new AbortController();
    const data = bytes(3 * KiB, 412);
    const keys = Array.from({ length: 15 }, (_, i) => uniqueKey(`abort-done-${i}`));
    await Promise.all(keys.map((key) => put(redis, key, data, { chunkSize: KiB, signal })));
    const read = await Promise.all(keys.map((key) => get(redis, key, { signal })));
    for (const got of read) expect(got.equals(data)).toBe(true);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });
});
