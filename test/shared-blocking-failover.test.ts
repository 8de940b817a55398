/**
 * Shared blocking reads through a failover: followers of one cluster client, of files on every
 * primary, and the primary of some of them dies mid-file. The shared read of each slot on the dead
 * node asks the cluster where the slot went and carries on there; the others never notice. The
 * writers write the rest once the replica has taken over (writers through a failover are the
 * subject of cluster-failover.test.ts). On a cluster of its own.
 */
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream } from '../src/index.js';
import { subject } from './helpers/clients.js';
import { clusterPerTest } from './helpers/cluster-per-test.js';
import { eventually } from './helpers/eventually.js';
import { replicaCaughtUp } from './helpers/redis-cluster.js';
import { bytes, sha256 } from './helpers/streams.js';

const own = clusterPerTest();
const client = own.client;

describe('shared blocking reads through a failover', { timeout: 90_000 }, () => {
  it('followers of files on the dead primary go on through its replica, the others undisturbed', async () => {
    const cluster = await own.start();
    const keys = Array.from({ length: 9 }, (_, i) => `shared-failover/f${i}.bin`);
    const data = keys.map((_, i) => bytes(40_000, 60 + i));
    const half = 20_000;
    const writerClient = await client();
    const readerClient = await client();
    // A lease that outlasts the failover, as in cluster-failover.test.ts.
    const writers = keys.map((key) =>
      createRedisWriteStream(subject(writerClient), key, { chunkSize: 4096, heartbeatInterval: 5000 }),
    );
    const followers = keys.map((key) => {
      const reader = createRedisReadStream(subject(readerClient), key, { waitForCreate: 10_000 });
      const parts: Buffer[] = [];
      reader.on('data', (d: Buffer) => parts.push(d));
      const done = once(reader, 'end').then(() => Buffer.concat(parts));
      done.catch(() => {});
      return { reader, done };
    });
    for (const [i, w] of writers.entries()) w.write(data[i]!.subarray(0, half));
    await eventually(() => writers.every((w) => w.committedBytes === half), 'the first halves stored');
    await eventually(() => followers.every((f) => f.reader.deliveredBytes >= 16_384), 'the followers at the tail');

    const victim = await cluster.masterOf(keys[0]!);
    const onVictim: number[] = [];
    for (const [i, key] of keys.entries()) if ((await cluster.masterOf(key)).port === victim.port) onVictim.push(i);
    expect(onVictim.length).toBeLessThan(keys.length);
    for (const i of onVictim) (await replicaCaughtUp(victim, keys[i]!)).disconnect();
    await victim.kill();
    // The followers of the dead node's files wait through the failover; the writers go on after it.
    await eventually(
      async () => (await cluster.masterOf(keys[0]!).catch(() => victim)).port !== victim.port,
      'a replica to take over',
      30_000,
      100,
    );

    const ended = writers.map((w) => once(w, 'finish'));
    for (const [i, w] of writers.entries()) w.end(data[i]!.subarray(half));
    await Promise.all(ended);
    const got = await Promise.all(followers.map((f) => f.done));
    for (const [i, b] of got.entries()) expect(sha256(b), keys[i]).toBe(sha256(data[i]!));
  });
});
