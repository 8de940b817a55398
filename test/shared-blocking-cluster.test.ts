import type { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisWriteStream, type RedisWriteStream } from '../src/index.js';
import {
  blockedIn,
  closeAll,
  connectAny,
  readyAnySubject,
  subject,
  subjectReady,
  uniqueConnectionName,
  uniqueKey,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { slotOfFile } from './helpers/keys.js';
import { bytes, follower } from './helpers/streams.js';

const redis = connectAny() as Cluster;
afterAll(closeAll);

/** Per primary ("host:port"): the XREADs blocked, and the subscribed connections, of connections named `name`. */
async function perNode(name: string): Promise<Map<string, { blocked: number; watches: number }>> {
  const counts = new Map<string, { blocked: number; watches: number }>();
  for (const node of redis.nodes('master')) {
    const lines = ((await node.client('LIST')) as string).split('\n').filter((line) => line.includes(` name=${name} `));
    counts.set(`${node.options.host}:${node.options.port}`, {
      blocked: lines.filter((line) => /\bcmd=xread\b/.test(line) && /\bflags=\S*b/.test(line)).length,
      watches: lines.filter((line) => /\bflags=\S*P/.test(line)).length,
    });
  }
  return counts;
}

/**
 * `count` file keys for each primary, each in a slot of its own. Keys that differ in a counter
 * only are not spread evenly over the slots (CRC16 is linear): they are picked, not left to chance.
 */
async function spreadKeys(name: string, count: number): Promise<string[]> {
  // The slot map is the one the cluster client loaded on connecting.
  await subjectReady(redis);
  const primaries = redis.nodes('master').map((node) => `${node.options.host}:${node.options.port}`);
  expect(primaries).toHaveLength(3);
  const picked = new Map(primaries.map((node) => [node, new Map<number, string>()]));
  while ([...picked.values()].some((slots) => slots.size < count)) {
    const key = uniqueKey(name);
    const slot = slotOfFile(key);
    const slots = picked.get(redis.slots[slot]![0]!)!;
    if (slots.size < count && !slots.has(slot)) slots.set(slot, key);
  }
  return [...picked.values()].flatMap((slots) => [...slots.values()]);
}

function write(key: string): RedisWriteStream {
  const w = createRedisWriteStream(subject(redis), key, { chunkSize: 1000 });
  w.on('error', () => {});
  return w;
}

describe('followers of one cluster client', () => {
  it('share one blocking connection and one key watch per primary, whatever the slots', async () => {
    const name = uniqueConnectionName('slots');
    const client = await readyAnySubject({ connectionName: name });
    const keys = await spreadKeys('slots', 10);
    const data = keys.map((_, i) => bytes(2000, i + 1));
    const ws = keys.map((key, i) => {
      const w = write(key);
      w.write(data[i]!.subarray(0, 1000));
      return w;
    });
    await Promise.all(ws.map((w) => eventually(() => w.committedBytes === 1000, 'the first chunk stored')));
    // Three followers for each file: the count of connections follows the nodes, not the
    // followers or their slots.
    const followers = keys.flatMap((key) => [follower(client, key), follower(client, key), follower(client, key)]);
    await eventually(() => followers.every((f) => f.received().length === 1000), 'every follower at the tail');
    await eventually(async () => {
      const seen = await perNode(name);
      return [...seen.values()].every(({ blocked, watches }) => blocked === 1 && watches === 1);
    }, 'one blocked XREAD and one key watch on each primary').catch(async (err) => {
      console.log(JSON.stringify([...(await perNode(name))]));
      throw err;
    });

    // Each write reaches every follower, chunk by chunk.
    for (const [i, w] of ws.entries()) w.write(data[i]!.subarray(1000, 1500));
    await eventually(() => followers.every((f) => f.received().length === 1500), 'every follower to get the 2nd chunk');
    for (const [i, w] of ws.entries()) w.end(data[i]!.subarray(1500));
    const got = await Promise.all(followers.map((f) => f.done));
    for (const [i, b] of got.entries()) expect(b.equals(data[Math.floor(i / 3)]!)).toBe(true);
    await eventually(async () => {
      const seen = await perNode(name);
      return [...seen.values()].every(({ blocked, watches }) => blocked === 0 && watches === 0);
    }, 'the blocking connections and key watches to be closed');
  });

  it('followers of files in one slot share one connection', async () => {
    const name = uniqueConnectionName('one-slot');
    const client = await readyAnySubject({ connectionName: name });
    const key = uniqueKey('one-slot');
    const w = write(key);
    w.write(bytes(1000, 5));
    await eventually(() => w.committedBytes === 1000, 'the first chunk stored');
    const followers = Array.from({ length: 20 }, () => follower(client, key));
    await eventually(() => followers.every((f) => f.received().length === 1000), 'every follower at the tail');
    await eventually(async () => (await blockedIn(redis, name)) === 1, 'the followers to wait on one connection');
    w.end(bytes(500, 6));
    for (const f of followers) expect((await f.done).length).toBe(1500);
    await eventually(async () => (await blockedIn(redis, name)) === 0, 'the blocking connection to be closed');
  });
});
