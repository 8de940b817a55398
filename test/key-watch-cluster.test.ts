import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setWatchTrust } from '../src/blocking-reads.js';
import { createRedisWriteStream, type RedisWriteStream } from '../src/index.js';
import { denials } from './helpers/acl.js';
import { closeAll, connectAny, readyAnySubject, subject, uniqueConnectionName, uniqueKey } from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { slotOfFile } from './helpers/keys.js';
import { bytes, follower } from './helpers/streams.js';

const redis = connectAny() as Cluster;
// The slots of the cluster known before keys are placed on nodes.
beforeAll(() => redis.ping());
afterAll(closeAll);

/** The primary `node` ("host:port") of the cluster. */
const primaryAt = (node: string) => redis.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === node)!;

/** Connections named `name` on the primary `node`, as CLIENT LIST lines. */
async function connectionsOn(node: string, name: string): Promise<string[]> {
  return ((await primaryAt(node).client('LIST')) as string)
    .split('\n')
    .filter((line) => line.includes(` name=${name} `));
}

const watchesIn = (lines: string[]) => lines.filter((line) => /\bflags=\S*P/.test(line));
const blockedIn = (lines: string[]) => lines.filter((line) => /\bcmd=xread\b/.test(line) && /\bflags=\S*b/.test(line));

/** `count` new file keys whose slots are all served by one primary, and that primary. */
function keysOnOneNode(count: number, label: string): { node: string; keys: string[] } {
  const byNode = new Map<string, string[]>();
  for (let i = 0; ; i++) {
    const key = uniqueKey(`${label}-${i}`);
    const node = redis.slots[slotOfFile(key)]![0]!;
    const list = byNode.get(node) ?? [];
    byNode.set(node, [...list, key]);
    if (list.length + 1 === count) return { node, keys: [...list, key] };
  }
}

/** A writer of `key` with 1000-byte chunks whose first `first` bytes of `data` are stored. */
async function started(key: string, data: Buffer, first: number): Promise<RedisWriteStream> {
  const w = createRedisWriteStream(subject(redis), key, { chunkSize: 1000, flushInterval: 0 });
  w.on('error', () => {});
  w.write(data.subarray(0, first));
  await eventually(() => w.committedBytes === first, 'the first bytes stored');
  return w;
}

/**
 * `count` files on one primary, each `size` bytes (from `seed`) with its first 1000 stored, and a
 * follower of each on a client of its own (named `name`, with `options`) at the tail.
 */
async function followedAtTheTail(label: string, count: number, size: number, seed: number, options: object = {}) {
  const name = uniqueConnectionName(label);
  const client = await readyAnySubject({ connectionName: name, ...options });
  const { node, keys } = keysOnOneNode(count, label);
  const data = keys.map((_, i) => bytes(size, i + seed));
  const ws = await Promise.all(keys.map((key, i) => started(key, data[i]!, 1000)));
  const followers = keys.map((key) => follower(client, key));
  await eventually(() => followers.every((f) => f.received().length === 1000), 'every follower at the tail');
  return { name, node, keys, data, ws, followers };
}

describe('the key watch of a cluster node', () => {
  it('wakes its followers for each write: no periodic read needed', async () => {
    // A follower's "nothing new" held for an hour: what reaches the followers was reported.
    setWatchTrust(3_600_000);
    try {
      const { name, node, data, ws, followers } = await followedAtTheTail('watch-wakes', 4, 4000, 30);
      await eventually(async () => watchesIn(await connectionsOn(node, name)).length === 1, 'the key watch');
      for (let part = 1; part < 4; part++) {
        for (const [i, w] of ws.entries()) w.write(data[i]!.subarray(part * 1000, (part + 1) * 1000));
        const want = (part + 1) * 1000;
        await eventually(() => followers.every((f) => f.received().length === want), `every follower at ${want}`);
      }
      for (const w of ws) w.end();
      const got = await Promise.all(followers.map((f) => f.done));
      for (const [i, b] of got.entries()) expect(b.equals(data[i]!)).toBe(true);
    } finally {
      setWatchTrust();
    }
  });

  it('is opened again when killed, and no write is missed', async () => {
    const { name, node, data, ws, followers } = await followedAtTheTail('watch-killed', 4, 3000, 1);
    await eventually(async () => watchesIn(await connectionsOn(node, name)).length === 1, 'the key watch');

    const [watch] = watchesIn(await connectionsOn(node, name));
    const id = /\bid=(\d+)/.exec(watch!)![1]!;
    expect(await primaryAt(node).client('KILL', 'ID', id)).toBe(1);
    // Written while no watch hears: read once the watch is back, from where each follower is.
    for (const [i, w] of ws.entries()) w.write(data[i]!.subarray(1000, 2000));
    await eventually(() => followers.every((f) => f.received().length === 2000), 'every follower to get the 2nd chunk');
    await eventually(async () => {
      const watches = watchesIn(await connectionsOn(node, name));
      return watches.length === 1 && !watches[0]!.includes(` id=${id} `);
    }, 'a new key watch');

    for (const [i, w] of ws.entries()) w.end(data[i]!.subarray(2000));
    const got = await Promise.all(followers.map((f) => f.done));
    for (const [i, b] of got.entries()) expect(b.equals(data[i]!)).toBe(true);
  });

  it('a paused follower holds back no other; followers destroyed while waiting close it', async () => {
    const { name, node, data, ws, followers } = await followedAtTheTail('watch-paused', 3, 5000, 10);
    await eventually(async () => watchesIn(await connectionsOn(node, name)).length === 1, 'the key watch');

    // The last follower is in the watched lane (its node's blocking connection reads the first
    // key's slot): paused, it takes nothing; the others go on.
    const paused = followers[2]!;
    paused.reader.pause();
    for (let part = 1; part < 4; part++) {
      for (const [i, w] of ws.entries()) w.write(data[i]!.subarray(part * 1000, (part + 1) * 1000));
      const want = (part + 1) * 1000;
      await eventually(
        () => followers.slice(0, 2).every((f) => f.received().length === want),
        `the followers that flow to get ${want} bytes`,
      );
    }
    expect(paused.received().length).toBe(1000);
    paused.reader.resume();
    await eventually(() => paused.received().length === 4000, 'the paused follower to catch up');

    // Destroyed while waiting at the tail: nothing stays open of the blocking reads.
    for (const f of followers) f.reader.destroy();
    await eventually(async () => {
      const lines = await connectionsOn(node, name);
      return watchesIn(lines).length === 0 && blockedIn(lines).length === 0;
    }, 'the key watch and the blocking connection to be closed');
    for (const w of ws) w.destroy();
  });

  it('refused by the ACL: a blocking connection per slot, every write delivered, one denial', async () => {
    const user = uniqueConnectionName('nowatch');
    const password = 'secret';
    // Everything but the key watch's CLIENT TRACKING and SUBSCRIBE.
    for (const n of redis.nodes('all')) {
      await n.call(
        'ACL',
        'SETUSER',
        user,
        'on',
        `>${password}`,
        'allkeys',
        'allchannels',
        '+@all',
        '-client|tracking',
        '-subscribe',
      );
    }
    try {
      const { name, node, keys, data, ws, followers } = await followedAtTheTail('nowatch', 3, 2000, 20, {
        username: user,
        password,
      });
      const slots = new Set(keys.map((key) => slotOfFile(key)));
      await eventually(
        async () => blockedIn(await connectionsOn(node, name)).length === slots.size,
        'a blocked XREAD per slot',
      );
      for (const [i, w] of ws.entries()) w.end(data[i]!.subarray(1000));
      const got = await Promise.all(followers.map((f) => f.done));
      for (const [i, b] of got.entries()) expect(b.equals(data[i]!)).toBe(true);
      expect((await denials(primaryAt(node), user)).filter((d) => d.endsWith('client|tracking')).length).toBe(1);
    } finally {
      for (const n of redis.nodes('all')) await n.call('ACL', 'DELUSER', user);
    }
  });
});
