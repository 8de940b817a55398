/**
 * Failover: the primary that holds a file dies mid-transfer and its replica takes over. When the
 * replica holds every chunk the writer counted, writer and followers go on through the failover.
 * Replication is asynchronous, so chunks the dead primary acknowledged can be missing on the new
 * one: readers then report ERR_REDIS_FILE_CORRUPT (never wrong bytes as a whole file), and
 * `waitReplicas` keeps such chunks from counting before a replica has them. Each test starts a
 * cluster of its own.
 */
import { type Redis, Redis as RedisClass } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, list, stat } from '../src/index.js';
import { subject } from './helpers/clients.js';
import { clusterPerTest } from './helpers/cluster-per-test.js';
import { eventually } from './helpers/eventually.js';
import { type RedisCluster, replicaCaughtUp } from './helpers/redis-cluster.js';
import { bytes, collect, sha256 } from './helpers/streams.js';

const own = clusterPerTest();
const client = own.client;

/** Settle a stream's promise into what happened to it, never rejecting. */
async function outcome<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error };
  }
}

function finished(writer: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    writer.once('finish', resolve);
    writer.once('error', reject);
  });
}

/** How many WAIT commands `node` has answered. */
async function waits(node: Redis): Promise<number> {
  return Number(/^cmdstat_wait:calls=(\d+)/m.exec((await node.info('commandstats')) as string)?.[1] ?? 0);
}

describe('failover', { timeout: 90_000 }, () => {
  /**
   * 30 files under `prefix` listed whole; then, after `failover`, a listing is every file or a
   * coded error, and the one after it every file.
   */
  async function listedAcross(prefix: string, failover: (cluster: RedisCluster, first: string) => Promise<void>) {
    const cluster = await own.start();
    const redis = await client();
    const keys = Array.from({ length: 30 }, (_, i) => `${prefix}/${i}`).sort();
    for (const key of keys) {
      const writer = createRedisWriteStream(subject(redis), key);
      writer.end(key);
      await finished(writer);
    }
    const listed = async (): Promise<string[]> => {
      const found: string[] = [];
      for await (const f of list(subject(redis), { match: `${prefix}/*` })) found.push(f.key);
      return found.sort();
    };
    expect(await listed()).toEqual(keys);
    await failover(cluster, keys[0]!);
    await cluster.waitUntilHealthy();
    const first = await listed().catch((err: unknown) => err);
    if (first instanceof Error) expect(first).toMatchObject({ code: 'ERR_REDIS_FILE_REDIS' });
    else expect(first).toEqual(keys);
    expect(await listed()).toEqual(keys);
  }

  it('list() after a failover never ends with a shard left out: every file, or a coded error and then every file', () =>
    // The client sees its connection to the old primary end, and is told of no new one.
    listedAcross('listed', async (cluster, key) => {
      const primary = await cluster.masterOf(key);
      (await replicaCaughtUp(primary, key)).disconnect();
      await primary.kill();
    }));

  it('list() after a failover its client was not told of (CLUSTER FAILOVER): every file, or a coded error and then every file', () =>
    // The replica takes over with its primary's agreement: no connection of the client drops.
    listedAcross('handed', async (cluster, key) => {
      const [replica] = await cluster.replicasOf(key);
      const admin = new RedisClass(replica!.url);
      try {
        await admin.cluster('FAILOVER');
        await eventually(async () => ((await admin.role()) as unknown[])[0] === 'master', 'the replica to take over');
      } finally {
        admin.disconnect();
      }
    }));

  const mid = 'the primary dies mid-transfer, its replica holding every acknowledged chunk';
  it(`${mid}: writer and follower complete byte for byte`, async () => {
    const cluster = await own.start();
    const key = 'failover/live.bin';
    const data = bytes(8 * 1024 * 1024, 11);
    const half = data.length / 2;
    // A lease that outlasts the failover: while the slot has no primary, the writer's heartbeats
    // fail, and a follower must not take it for dead.
    const writer = createRedisWriteStream(subject(await client()), key, {
      chunkSize: 64 * 1024,
      heartbeatInterval: 5000,
    });
    const writing = outcome(finished(writer));
    const reading = outcome(collect(createRedisReadStream(subject(await client()), key, { waitForCreate: 10_000 })));
    writer.write(data.subarray(0, half));
    await eventually(() => writer.committedBytes === half, 'the first half stored');
    const primary = await cluster.masterOf(key);
    (await replicaCaughtUp(primary, key)).disconnect();
    await primary.kill();
    // The second half goes to the promoted replica, once the cluster has failed over.
    writer.end(data.subarray(half));
    const [w, r] = await Promise.all([writing, reading]);
    expect(w).toEqual({ ok: true, value: undefined });
    expect(r.ok ? sha256(r.value) : r.error).toBe(sha256(data));
    // A reader that starts after the failover reads it whole too.
    expect(sha256(await collect(createRedisReadStream(subject(await client()), key)))).toBe(sha256(data));
    // The cluster serves the slot through the promoted replica.
    expect((await cluster.masterOf(key)).port).not.toBe(primary.port);
    const again = bytes(300_000, 12);
    const w2 = createRedisWriteStream(subject(await client()), key, { overwrite: true });
    w2.end(again);
    await finished(w2);
    expect(sha256(await collect(createRedisReadStream(subject(await client()), key)))).toBe(sha256(again));
  });

  /**
   * The replica is stopped (SIGSTOP) while the primary acknowledges more chunks, then the primary
   * is killed and the replica resumed: it takes over without those chunks.
   */
  async function loseAcknowledgedChunks(options: { waitReplicas?: number }) {
    const cluster = await own.start();
    const key = `failover/lost-${options.waitReplicas ?? 0}.bin`;
    const chunkSize = 16 * 1024;
    const data = bytes(64 * chunkSize, 13);
    const redis = await client();
    const writer = createRedisWriteStream(subject(redis), key, {
      chunkSize,
      maxInFlight: 4,
      waitTimeout: 200,
      ...options,
    });
    const writing = outcome(finished(writer));
    writer.write(data.subarray(0, 16 * chunkSize));
    await eventually(() => writer.committedChunks === 16, 'the first 16 chunks stored');
    const primary = await cluster.masterOf(key);
    const [replica] = await cluster.replicasOf(key);
    const admin = await replicaCaughtUp(primary, key);
    process.kill(replica!.pid!, 'SIGSTOP');
    // Drop the replication link too: what the primary sends from now on never reaches the replica
    // (else the replica would find it in its socket buffer on waking).
    await admin.call('CLIENT', 'KILL', 'TYPE', 'replica');
    const waitsBefore = await waits(admin);
    writer.write(data.subarray(16 * chunkSize, 32 * chunkSize));
    if (options.waitReplicas) {
      // The primary stored the next chunks, and the writer's WAITs for them came back unconfirmed.
      await eventually(
        async () => (await waits(admin)) >= waitsBefore + 4,
        'the WAITs for the next chunks to time out',
      );
    } else {
      await eventually(() => writer.committedChunks === 32, 'the next 16 chunks acknowledged by the primary');
    }
    admin.disconnect();
    const acknowledged = writer.committedChunks;
    await primary.kill();
    process.kill(replica!.pid!, 'SIGCONT');
    return { cluster, key, data, redis, writer, writing, primary, replica: replica!, acknowledged };
  }
  it('chunks acknowledged by a primary that dies before replicating them: readers report ERR_REDIS_FILE_CORRUPT', async () => {
    const { key, data, writer, writing, acknowledged } = await loseAcknowledgedChunks({});
    // Without waitReplicas the primary's acknowledgement counted: the writer moved past them.
    expect(acknowledged).toBe(32);
    writer.end(data.subarray(32 * 16 * 1024));
    const w = await writing;
    expect(w.ok).toBe(false);
    expect(w.ok ? undefined : w.error).toMatchObject({ code: 'ERR_REDIS_FILE_CORRUPT' });
    const r = await outcome(collect(createRedisReadStream(subject(await client()), key, { idleTimeout: 3000 })));
    expect(r.ok).toBe(false);
    expect(r.ok ? undefined : r.error).toMatchObject({ code: 'ERR_REDIS_FILE_CORRUPT' });
    expect((await stat(subject(await client()), key)).state).not.toBe('complete');
  });

  it('with waitReplicas, no acknowledged chunk is lost: the writer re-sends them to the new primary', async () => {
    const { cluster, key, data, writer, writing, primary, acknowledged } = await loseAcknowledgedChunks({
      waitReplicas: 1,
    });
    // The stopped replica confirmed nothing: the writer still holds every chunk after the 16th.
    expect(acknowledged).toBe(16);
    // The old primary comes back (empty) as the new primary's replica, so WAIT can be answered again.
    await cluster.rejoinAsReplica(primary, key);
    writer.end(data.subarray(32 * 16 * 1024));
    const w = await writing;
    expect(w).toEqual({ ok: true, value: undefined });
    expect(sha256(await collect(createRedisReadStream(subject(await client()), key)))).toBe(sha256(data));
  });
});
