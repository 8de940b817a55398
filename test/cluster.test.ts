/**
 * What only a cluster has: files spread over shards, a slot moving to another node while a file is
 * written and followed (MOVED / ASK), replicas confirming writes (`waitReplicas`), and a memory
 * limit that holds per node. On a private cluster, because these tests move slots and stop nodes.
 */
import { once } from 'node:events';
import type { Cluster, Redis } from 'ioredis';
import { Redis as RedisClass } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setWatchTrust } from '../src/blocking-reads.js';
import { createRedisReadStream, createRedisWriteStream, list, stat } from '../src/index.js';
import {
  blockedIn,
  closeAll,
  connect,
  connectSubject,
  disconnectSubject,
  keysOf,
  subject,
  subjectConnected,
  subjectReady,
} from './helpers/clients.js';
import { eventually } from './helpers/eventually.js';
import { chunkStreamOf, fileKeysOf, keyPattern, slotOfFile } from './helpers/keys.js';
import { clusterClient, type RedisCluster, startCluster } from './helpers/redis-cluster.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { bytes, collect, follower, put, sha256 } from './helpers/streams.js';

let cluster: RedisCluster;
const clients: Cluster[] = [];

/** A client of the cluster; its subject, for a node-redis cluster, connected: it refuses commands before. */
async function client(connectionName?: string): Promise<Cluster> {
  const c = clusterClient(cluster, connectionName === undefined ? {} : { redisOptions: { connectionName } });
  clients.push(c);
  await subjectConnected(subject(c));
  return c;
}

async function node(server: RedisServer): Promise<Redis> {
  const c = connect(server.url);
  await c.ping();
  return c;
}

beforeAll(async () => {
  cluster = await startCluster();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await closeAll();
  await cluster?.stop();
});

/**
 * How many commands the nodes have refused with TRYAGAIN (the keys of one call split between two
 * nodes while a slot moves) or redirected with ASK: clients met a slot being moved.
 */
async function slotRefusals(nodes: Redis[]): Promise<number> {
  const counts = await Promise.all(
    nodes.map(async (n) => {
      const stats = (await n.info('errorstats')) as string;
      return [...stats.matchAll(/^errorstat_(?:TRYAGAIN|ASK):count=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/**
 * Move `key`'s hash slot from the node that serves it to another primary, key by key, the way
 * `redis-cli --cluster reshard` does: IMPORTING / MIGRATING, MIGRATE in batches, then SETSLOT NODE
 * on every primary. `between` runs after the first batch, while the slot is half moved.
 */
async function moveSlot(
  key: string,
  between: () => Promise<void> = async () => {},
  target?: RedisServer,
): Promise<RedisServer> {
  const from = await cluster.masterOf(key);
  const masters = await Promise.all(
    cluster.nodes.map(async (n) => ((await node(n)).role() as Promise<unknown[]>).then((r) => [n, r[0]] as const)),
  );
  const to = target ?? masters.find(([n, role]) => role === 'master' && n !== from)![0];
  const src = await node(from);
  const dst = await node(to);
  const slot = (await src.cluster('KEYSLOT', key)) as number;
  const srcId = (await src.cluster('MYID')) as string;
  const dstId = (await dst.cluster('MYID')) as string;
  await dst.cluster('SETSLOT', slot, 'IMPORTING', srcId);
  await src.cluster('SETSLOT', slot, 'MIGRATING', dstId);
  let first = true;
  for (;;) {
    const keys = (await src.cluster('GETKEYSINSLOT', slot, 1)) as string[];
    if (keys.length === 0) break;
    await src.migrate('127.0.0.1', to.port, '', 0, 5000, 'KEYS', ...keys);
    if (first) {
      first = false;
      await between();
    }
  }
  for (const [n, role] of masters) if (role === 'master') await (await node(n)).cluster('SETSLOT', slot, 'NODE', dstId);
  return to;
}

/**
 * Write a third of `data`, then move `key`'s slot while writing the second third (stored on the
 * old node while the slot is half moved, or refused, TRYAGAIN or ASK, and sent again), then end
 * the writer with the rest once it has moved. Resolves to the node the slot went to.
 */
async function writeAcrossMove(writer: ReturnType<typeof createRedisWriteStream>, key: string, data: Buffer) {
  const third = data.length / 3;
  writer.write(data.subarray(0, third));
  await eventually(() => writer.committedBytes >= third, 'the first third stored');
  const nodes = await Promise.all(cluster.nodes.map(node));
  const refused = await slotRefusals(nodes);
  const after = await moveSlot(key, async () => {
    writer.write(data.subarray(third, 2 * third));
    await eventually(
      async () => writer.committedBytes > third || (await slotRefusals(nodes)) > refused,
      'the writer to store more, or a client to be refused, while the slot is half moved',
    );
  });
  expect(writer.committedBytes).toBeGreaterThanOrEqual(third);
  writer.end(data.subarray(2 * third));
  return after;
}

describe('Redis Cluster', () => {
  it('keeps every key of a file in one slot, and spreads files over the primaries', async () => {
    const redis = await client();
    const masters = new Set<number>();
    for (let i = 0; i < 24; i++) {
      const key = `spread/${i}.log`;
      await put(redis, key, bytes(3000, i), { chunkSize: 1000 });
      masters.add((await cluster.masterOf(key)).port);
      const keys = await keysOf(redis, keyPattern(key));
      expect(keys.length).toBe(3);
      const slots = await Promise.all(keys.map((k) => redis.cluster('KEYSLOT', k)));
      expect(new Set(slots).size).toBe(1);
    }
    expect(masters.size).toBe(3);
    // list() scans every primary.
    const found: string[] = [];
    for await (const f of list(subject(redis), { match: 'spread/*' })) found.push(f.key);
    expect(found.sort()).toEqual(Array.from({ length: 24 }, (_, i) => `spread/${i}.log`).sort());
  });

  it("a client of one node: list() refuses (it would see that node's files only), a write elsewhere names the cause", async () => {
    const redis = await client();
    for (let i = 0; i < 6; i++) await put(redis, `one-node/${i}.log`, bytes(100, i));
    const primary = await cluster.masterOf('one-node/0.log');
    const single = connectSubject(primary.url);
    const listing = (async () => {
      for await (const _ of list(single, { match: 'one-node/*' }));
    })();
    await expect(listing).rejects.toMatchObject({
      code: 'ERR_REDIS_FILE_REDIS',
      message: expect.stringMatching(/one node of a Redis Cluster.*cluster client/),
    });
    // A key the node does not serve: Redis answers MOVED.
    let elsewhere = 0;
    while ((await cluster.masterOf(`one-node/x${elsewhere}`)).port === primary.port) elsewhere++;
    await expect(stat(single, `one-node/x${elsewhere}`)).rejects.toMatchObject({
      code: 'ERR_REDIS_FILE_REDIS',
      message: expect.stringMatching(/MOVED .*one node of a Redis Cluster: give the package a cluster client/),
    });
  });

  it('list() rejects, never ends as if complete, when slots move while it lists or one is being migrated', async () => {
    const redis = await client();
    const names = Array.from({ length: 12 }, (_, i) => `relist/${i}.log`).sort();
    for (const [i, name] of names.entries()) await put(redis, name, bytes(100, i));
    const all = async (): Promise<string[]> => {
      const found: string[] = [];
      for await (const f of list(subject(redis), { match: 'relist/*' })) found.push(f.key);
      return found.sort();
    };
    expect(await all()).toEqual(names);
    // A listing that has yielded its first file when a slot moves: SCAN may miss a file or repeat one.
    const listing = list(subject(redis), { match: 'relist/*' });
    const first = await listing.next();
    expect(first.done).toBe(false);
    await moveSlot(names.find((n) => n !== (first.value as { key: string }).key)!);
    const rest = (async () => {
      for await (const _ of listing);
    })();
    await expect(rest).rejects.toMatchObject({
      code: 'ERR_REDIS_FILE_REDIS',
      message: /moved to other nodes while it ran/,
    });
    // A listing that starts while a slot is half moved.
    await moveSlot(names[0]!, async () => {
      await expect(all()).rejects.toMatchObject({ code: 'ERR_REDIS_FILE_REDIS', message: /is being migrated/ });
    });
    expect(await all()).toEqual(names);
    // A slot moved away and back while it lists: each primary serves the same slots at its end.
    const again = list(subject(redis), { match: 'relist/*' });
    const one = await again.next();
    const moved = names.find((n) => n !== (one.value as { key: string }).key)!;
    const home = await cluster.masterOf(moved);
    await moveSlot(moved);
    await moveSlot(moved, async () => {}, home);
    expect((await cluster.masterOf(moved)).port).toBe(home.port);
    const rest2 = (async () => {
      for await (const _ of again);
    })();
    await expect(rest2).rejects.toMatchObject({
      code: 'ERR_REDIS_FILE_REDIS',
      message: /moved to other nodes while it ran/,
    });
  });

  it('a client of the one node of a cluster of one shard lists every file', async () => {
    // redis-cli makes clusters of 3 primaries at least: this one is made by hand.
    const one = await startRedis({ args: ['--cluster-enabled', 'yes'] });
    try {
      const admin = await node(one);
      await admin.cluster('ADDSLOTSRANGE', 0, 16383);
      await eventually(
        async () => /cluster_state:ok/.test(String(await admin.cluster('INFO'))),
        'the cluster to be ok',
      );
      const single = connectSubject(one.url);
      await subjectReady(single);
      for (let i = 0; i < 3; i++) await put(single, `one-shard/${i}.log`, bytes(100, i));
      const found: string[] = [];
      for await (const f of list(single, { match: 'one-shard/*' })) found.push(f.key);
      expect(found.sort()).toEqual(['one-shard/0.log', 'one-shard/1.log', 'one-shard/2.log']);
      disconnectSubject(single);
    } finally {
      await one.stop();
    }
  });

  it("a writer and a following reader go on while the file's slot moves to another node", async () => {
    const redis = await client();
    const key = 'moving/slot.bin';
    const data = bytes(3 * 1024 * 1024, 7);
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 16 * 1024, maxInFlight: 4 });
    const reader = collect(createRedisReadStream(subject(await client()), key, { waitForCreate: 10_000 }));
    const before = await cluster.masterOf(key);
    const after = await writeAcrossMove(writer, key, data);
    expect(after.port).not.toBe(before.port);
    await once(writer, 'finish');
    expect(sha256(await reader)).toBe(sha256(data));
    expect(sha256(await collect(createRedisReadStream(subject(await client()), key)))).toBe(sha256(data));
    expect((await cluster.masterOf(key)).port).toBe(after.port);
  });

  it("a follower woken by its node's key watch moves with its slot: its new node wakes it", async () => {
    const name = 'moved-watch';
    const redis = await client(name);
    // Two files on one primary, in two slots: the first slot's follower has the node's blocking
    // connection, the second's is woken by the node's key watch.
    const primary = await cluster.masterOf('watched/a');
    let other = 0;
    while (
      (await cluster.masterOf(`watched/b${other}`)).port !== primary.port ||
      slotOfFile(`watched/b${other}`) === slotOfFile('watched/a')
    )
      other++;
    const keys = ['watched/a', `watched/b${other}`];
    const data = keys.map((_, i) => bytes(3000, 40 + i));
    const writers = keys.map((key) =>
      createRedisWriteStream(subject(redis), key, { chunkSize: 1000, flushInterval: 0 }),
    );
    for (const [i, w] of writers.entries()) w.write(data[i]!.subarray(0, 1000));
    await eventually(() => writers.every((w) => w.committedBytes === 1000), 'the first chunks stored');
    const followers = keys.map((key) => follower(subject(redis), key));
    await eventually(() => followers.every((f) => f.received().length === 1000), 'both followers at the tail');
    // Rechecks often, until the follower has moved: one of its reads meets MOVED.
    setWatchTrust(200);
    try {
      const to = await moveSlot(keys[1]!);
      const there = await node(to);
      // Its new node reads for it: a blocking read there, or the node's key watch (a cluster
      // client may take the slot's neighbours for moved too, for a moment, and give it that lane).
      const served = async (): Promise<boolean> => {
        const lines = String(await there.client('LIST'))
          .split('\n')
          .filter((line) => line.includes(` name=${name} `));
        return (
          lines.some((line) => /\bcmd=xread\b/.test(line) && /\bflags=\S*b/.test(line)) ||
          lines.some((line) => /\bflags=\S*P/.test(line))
        );
      };
      await eventually(served, 'a blocking read or a key watch for the moved follower on its new node');
      // From now on only a wake-up delivers: a follower's "nothing new" holds for an hour.
      setWatchTrust(3_600_000);
      writers[1]!.write(data[1]!.subarray(1000, 2000));
      await eventually(() => followers[1]!.received().length === 2000, 'the moved follower to get the second chunk');
    } finally {
      setWatchTrust();
    }
    writers[0]!.end(data[0]!.subarray(1000));
    writers[1]!.end(data[1]!.subarray(2000));
    const got = await Promise.all(followers.map((f) => f.done));
    for (const [i, b] of got.entries()) expect(b.equals(data[i]!)).toBe(true);
  });

  it('waitReplicas: every chunk and the end record wait for the replica', async () => {
    const redis = await client();
    const key = 'replicated/a.bin';
    const primary = await node(await cluster.masterOf(key));
    const waits = async (): Promise<number> =>
      Number(/cmdstat_wait:calls=(\d+)/.exec((await primary.info('commandstats')) as string)?.[1] ?? 0);
    const before = await waits();
    const data = bytes(40 * 1000, 3);
    await put(redis, key, data, { chunkSize: 1000, waitReplicas: 1 });
    // The chunks, a WAIT after each group of them sent together, and the commit with its own WAIT,
    // on the file's primary.
    expect((await waits()) - before).toBeGreaterThanOrEqual(2);
    // The replica holds the whole file.
    const [replica] = await cluster.replicasOf(key);
    const onReplica = await node(replica!);
    await onReplica.call('READONLY');
    expect(await onReplica.hget(fileKeysOf(key).meta, 'state')).toBe('complete');
    expect(await onReplica.xlen(await chunkStreamOf(onReplica, key))).toBe(42);
  });

  it('waitReplicas: a replica that does not answer fails the writer with ERR_REDIS_FILE_TIMEOUT', async () => {
    const redis = await client();
    const key = 'replicated/stopped.bin';
    const [replica] = await cluster.replicasOf(key);
    process.kill(replica!.pid!, 'SIGSTOP');
    try {
      const writer = createRedisWriteStream(subject(redis), key, {
        chunkSize: 1000,
        waitReplicas: 1,
        waitTimeout: 100,
        retryTimeout: 600,
      });
      const failed = once(writer, 'error');
      writer.end(bytes(3000));
      const [err] = await failed;
      expect(err).toMatchObject({
        code: 'ERR_REDIS_FILE_TIMEOUT',
        message: expect.stringMatching(/reached 0 of 1 replicas/),
      });
    } finally {
      process.kill(replica!.pid!, 'SIGCONT');
    }
    const s = await stat(subject(redis), key);
    expect(s.state).toBe('aborted');
    await cluster.waitUntilHealthy();
  });

  it('waitReplicas: a writer goes on while its slot moves, unknown to its client', async () => {
    const redis = await client();
    const key = 'replicated/moving.bin';
    const data = bytes(30 * 1000, 11);
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 1000, waitReplicas: 1 });
    const after = await writeAcrossMove(writer, key, data);
    await once(writer, 'finish');
    expect(sha256(await collect(createRedisReadStream(subject(redis), key)))).toBe(sha256(data));
    expect((await cluster.masterOf(key)).port).toBe(after.port);
  });

  it('waitReplicas: a writer stores on while its slot is being migrated, its keys moved already (ASK)', async () => {
    const redis = await client();
    const key = 'replicated/migrating.bin';
    const data = bytes(20 * 1000, 14);
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 1000, waitReplicas: 1 });
    const half = data.length / 2;
    writer.write(data.subarray(0, half));
    await eventually(() => writer.committedBytes >= half, 'the first half stored');
    // Every key of the slot moves to another primary; the slot stays in migration meanwhile, so
    // the old node answers ASK for the file's keys.
    const from = await cluster.masterOf(key);
    const to = (await cluster.primaries()).find((p) => p.port !== from.port)!;
    const [src, dst] = await Promise.all([node(from), node(to)]);
    const slot = (await src.cluster('KEYSLOT', key)) as number;
    await dst.cluster('SETSLOT', slot, 'IMPORTING', (await src.cluster('MYID')) as string);
    await src.cluster('SETSLOT', slot, 'MIGRATING', (await dst.cluster('MYID')) as string);
    for (let keys = (await src.cluster('GETKEYSINSLOT', slot, 100)) as string[]; keys.length > 0; ) {
      await src.migrate('127.0.0.1', to.port, '', 0, 5000, 'KEYS', ...keys);
      keys = (await src.cluster('GETKEYSINSLOT', slot, 100)) as string[];
    }
    writer.write(data.subarray(half, half + 3000));
    await eventually(() => writer.committedBytes > half, 'the writer to store more while the slot is being migrated');
    const toId = (await dst.cluster('MYID')) as string;
    for (const p of await cluster.primaries()) await (await node(p)).cluster('SETSLOT', slot, 'NODE', toId);
    writer.end(data.subarray(half + 3000));
    await once(writer, 'finish');
    expect(sha256(await collect(createRedisReadStream(subject(redis), key)))).toBe(sha256(data));
  });

  it('waitReplicas: an end record sent to the node its slot left waits for the replica of the node that stores it', async () => {
    const redis = await client();
    const key = 'replicated/moved-end.bin';
    const writer = createRedisWriteStream(subject(redis), key, {
      chunkSize: 1000,
      waitReplicas: 1,
      waitTimeout: 100,
      retryTimeout: 600,
    });
    writer.write(bytes(3000, 12));
    await eventually(() => writer.committedBytes === 3000, 'every piece stored');
    // The slot moves to a primary whose replica does not answer; the client is not told. The end
    // record goes to the old node first: its replica answers a WAIT there, which never saw the
    // end record, and must not confirm it.
    await moveSlot(key);
    const [replica] = await cluster.replicasOf(key);
    process.kill(replica!.pid!, 'SIGSTOP');
    try {
      const outcome = Promise.race([
        once(writer, 'error').then(([err]) => err as Error),
        once(writer, 'finish').then(() => new Error('finished: a WAIT that never saw the end record confirmed it')),
      ]);
      writer.end();
      expect(await outcome).toMatchObject({
        code: 'ERR_REDIS_FILE_TIMEOUT',
        message: expect.stringMatching(/the end record reached 0 of 1 replicas/),
      });
    } finally {
      process.kill(replica!.pid!, 'SIGCONT');
    }
    await cluster.waitUntilHealthy();
  });

  it('waitReplicas: a primary without a replica holds up no file stored on another', async () => {
    const redis = await client();
    const key = 'replicated/elsewhere.bin';
    const home = await cluster.masterOf(key);
    // A key on another primary, to find that primary's replica.
    let other = '';
    for (let i = 0; other === ''; i++)
      if ((await cluster.masterOf(`elsewhere/${i}`)).port !== home.port) other = `elsewhere/${i}`;
    const [replica] = await cluster.replicasOf(other);
    // Gone: that primary has no replica (a stopped one would still count for a WAIT there that
    // follows no write of its connection).
    await replica!.kill();
    try {
      const data = bytes(5000, 13);
      await put(redis, key, data, { chunkSize: 1000, waitReplicas: 1, waitTimeout: 100, retryTimeout: 600 });
      expect(sha256(await collect(createRedisReadStream(subject(redis), key)))).toBe(sha256(data));
    } finally {
      await cluster.rejoinAsReplica(replica!, other);
    }
    await cluster.waitUntilHealthy();
  });

  it('maxRedisMemory holds for the node that stores the file', async () => {
    const redis = await client('memory-node');
    const key = 'memory/node.bin';
    const primary = await node(await cluster.masterOf(key));
    const used = async (): Promise<number> =>
      Number(/^used_memory:(\d+)/m.exec((await primary.info('memory')) as string)![1]);
    const MiB = 1024 * 1024;
    // A limit under what the node uses now: the writer must hold back until memory is freed.
    // Ballast on the file's own slot (same hash tag), so on the same node: 8 MiB, and the limit
    // 4 MiB under the node's use, so that memory the node frees meanwhile does not bring it
    // under the limit: half a MiB did not hold in a CI run (what the node freed is not known).
    const ballast = Array.from({ length: 8000 }, (_, i) => `{${key}}:ballast:${i}`);
    const fill = redis.pipeline();
    for (const k of ballast) fill.set(k, 'x'.repeat(1024));
    await fill.exec();
    const limit = (await used()) - 4 * MiB;
    const writer = createRedisWriteStream(subject(redis), key, { chunkSize: 64 * 1024, maxRedisMemory: limit });
    try {
      writer.end(bytes(256 * 1024));
      await eventually(
        async () => (await blockedIn(redis, 'memory-node')) === 1,
        'the writer to wait for freed memory',
      );
      expect(writer.committedBytes).toBe(0);
      const finished = once(writer, 'finish');
      await redis.del(...ballast);
      await finished;
      expect(writer.committedBytes).toBe(256 * 1024);
    } finally {
      // A failed expectation leaves no writer behind to fail once the client is closed.
      writer.destroy();
    }
  });
});

describe('waitReplicas on one server', () => {
  let primary: RedisServer;
  let replica: RedisServer;
  beforeAll(async () => {
    primary = await startRedis();
    replica = await startRedis({ args: ['--replicaof', '127.0.0.1', '0'] });
    const r = connect(replica.url);
    await r.replicaof('127.0.0.1', primary.port);
    await eventually(
      async () => /master_link_status:up/.test((await r.info('replication')) as string),
      'the replica to be in sync',
    );
  });
  afterAll(async () => {
    await closeAll();
    await replica?.stop();
    await primary?.stop();
  });

  it('a standalone primary with a replica: the file is on the replica when the writer finishes', async () => {
    const data = bytes(10_000, 9);
    await put(connect(primary.url), 'w/a', data, { chunkSize: 1000, waitReplicas: 1 });
    const fromReplica = new RedisClass(replica.url);
    try {
      expect(sha256(await collect(createRedisReadStream(subject(fromReplica), 'w/a', { follow: false })))).toBe(
        sha256(data),
      );
    } finally {
      fromReplica.disconnect();
    }
  });

  it('asking for more replicas than exist fails with ERR_REDIS_FILE_TIMEOUT', async () => {
    const writer = createRedisWriteStream(connectSubject(primary.url), 'w/b', {
      chunkSize: 1000,
      waitReplicas: 2,
      waitTimeout: 50,
      retryTimeout: 300,
    });
    const failed = once(writer, 'error');
    writer.end(bytes(2500));
    const [err] = await failed;
    expect(err).toMatchObject({
      code: 'ERR_REDIS_FILE_TIMEOUT',
      message: expect.stringMatching(/reached 1 of 2 replicas/),
    });
  });

  it('one WAIT for the chunks sent together: too few replicas cost one waitTimeout per attempt, not one per chunk in flight', async () => {
    const admin = connect(primary.url);
    const waits = async (): Promise<number> =>
      Number(/^cmdstat_wait:calls=(\d+)/m.exec((await admin.info('commandstats')) as string)?.[1] ?? 0);
    const client = connectSubject(primary.url);
    await subjectReady(client);
    const before = await waits();
    // 16 chunks in one write: the window sends them in one turn. No retry: one attempt.
    const writer = createRedisWriteStream(client, 'w/c', {
      chunkSize: 1000,
      maxInFlight: 16,
      waitReplicas: 2,
      waitTimeout: 50,
      retryTimeout: 0,
    });
    const failed = once(writer, 'error');
    writer.end(bytes(16_000));
    const [err] = await failed;
    expect(err).toMatchObject({
      code: 'ERR_REDIS_FILE_TIMEOUT',
      message: expect.stringMatching(/reached 1 of 2 replicas/),
    });
    // A WAIT per chunk in flight made 16, each holding the connection for waitTimeout.
    expect((await waits()) - before).toBeLessThanOrEqual(2);
  });
});
