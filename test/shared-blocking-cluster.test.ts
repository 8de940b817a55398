/**
 * On a cluster, followers of one client share a blocking connection per hash slot in use (XREAD
 * takes keys of one slot only): a plain connection to the primary that serves the slot, not a copy
 * of the whole Cluster client per follower. Runs on the shared cluster of the `cluster` project.
 */
import { once } from 'node:events';
import type { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { hashSlot } from '../src/blocking-reads.js';
import {
  createRedisReadStream,
  createRedisWriteStream,
  type RedisClient,
  type RedisWriteStream,
} from '../src/index.js';
import {
  blockedIn,
  closeAll,
  connectAny,
  readyAnySubject,
  subject,
  uniqueConnectionName,
  uniqueKey,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { fileKeysOf } from './helpers/keys.js';
import { bytes } from './helpers/streams.js';

const redis = connectAny() as Cluster;
afterAll(closeAll);

/** The XREADs blocked on each primary ("host:port") by connections named `name`. */
async function blockedPerNode(name: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const node of redis.nodes('master')) {
    const list = (await node.client('LIST')) as string;
    const n = list
      .split('\n')
      .filter(
        (line) => line.includes(` name=${name} `) && /\bcmd=xread\b/.test(line) && /\bflags=\S*b/.test(line),
      ).length;
    counts.set(`${node.options.host}:${node.options.port}`, n);
  }
  return counts;
}

function follow(client: RedisClient, key: string) {
  const reader = createRedisReadStream(client, key, { waitForCreate: 20_000 });
  const parts: Buffer[] = [];
  reader.on('data', (d: Buffer) => parts.push(d));
  const done = once(reader, 'end').then(() => Buffer.concat(parts));
  done.catch(() => {});
  return { reader, done, received: () => Buffer.concat(parts) };
}

function write(key: string): RedisWriteStream {
  const w = createRedisWriteStream(subject(redis), key, { chunkSize: 1000 });
  w.on('error', () => {});
  return w;
}

describe('followers of one cluster client', () => {
  it('share one blocking connection per slot, on the primary that serves it', async () => {
    const name = uniqueConnectionName('slots');
    const client = await readyAnySubject({ connectionName: name });
    const keys = Array.from({ length: 30 }, (_, i) => uniqueKey(`slots-${i}`));
    const data = keys.map((_, i) => bytes(1500, i + 1));
    const ws = keys.map((key, i) => {
      const w = write(key);
      w.write(data[i]!.subarray(0, 1000));
      return w;
    });
    await Promise.all(ws.map((w) => eventually(() => w.committedBytes === 1000, 'the first chunk stored')));
    // Three followers for each file: the count of connections follows the slots, not the followers.
    const followers = keys.flatMap((key) => [follow(client, key), follow(client, key), follow(client, key)]);
    await eventually(() => followers.every((f) => f.received().length === 1000), 'every follower at the tail');

    const slots = new Set(keys.map((key) => hashSlot(fileKeysOf(key).events)));
    const perNode = new Map<string, number>();
    for (const slot of slots) {
      const node = redis.slots[slot]![0]!;
      perNode.set(node, (perNode.get(node) ?? 0) + 1);
    }
    expect(perNode.size).toBe(3);
    await eventually(async () => {
      const seen = await blockedPerNode(name);
      return [...seen].every(([node, n]) => n === (perNode.get(node) ?? 0));
    }, 'one blocked XREAD per slot, on the node of the slot');

    for (const [i, w] of ws.entries()) w.end(data[i]!.subarray(1000));
    const got = await Promise.all(followers.map((f) => f.done));
    for (const [i, b] of got.entries()) expect(b.equals(data[Math.floor(i / 3)]!)).toBe(true);
    await eventually(async () => (await blockedIn(redis, name)) === 0, 'the blocking connections to be closed');
  });

  it('followers of files in one slot share one connection', async () => {
    const name = uniqueConnectionName('one-slot');
    const client = await readyAnySubject({ connectionName: name });
    const key = uniqueKey('one-slot');
    const w = write(key);
    w.write(bytes(1000, 5));
    await eventually(() => w.committedBytes === 1000, 'the first chunk stored');
    const followers = Array.from({ length: 20 }, () => follow(client, key));
    await eventually(() => followers.every((f) => f.received().length === 1000), 'every follower at the tail');
    await eventually(async () => (await blockedIn(redis, name)) === 1, 'the followers to wait on one connection');
    w.end(bytes(500, 6));
    for (const f of followers) expect((await f.done).length).toBe(1500);
    await eventually(async () => (await blockedIn(redis, name)) === 0, 'the blocking connection to be closed');
  });
});
