/**
 * Failover: the primary that holds a file dies mid-transfer and its replica takes over. Writers and
 * readers go on or fail with a coded error; a reader never delivers wrong bytes as a whole file.
 * Replication is asynchronous, so chunks the dead primary acknowledged can be missing on the new
 * one: readers then report ERR_REDIS_FILE_CORRUPT, and `waitReplicas` keeps such chunks from
 * counting before a replica has them. Each test starts a cluster of its own.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type Cluster } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { createRedisReadStream, createRedisWriteStream, RedisFileError, stat } from '../src/index.js';
import { clusterClient, startCluster, type RedisCluster } from './helpers/redis-cluster.js';
import { bytes, collect, sha256 } from './helpers/streams.js';

let cluster: RedisCluster | undefined;
const clients: Cluster[] = [];

function client(): Cluster {
  const c = clusterClient(cluster!);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await cluster?.stop();
  cluster = undefined;
});

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

describe('failover', { timeout: 90_000 }, () => {
  it('the primary dies mid-transfer: writer and follower complete byte for byte, or fail with a coded error', async () => {
    cluster = await startCluster();
    const key = 'failover/live.bin';
    const data = bytes(8 * 1024 * 1024, 11);
    const writer = createRedisWriteStream(client(), key, { chunkSize: 64 * 1024 });
    const writing = outcome(finished(writer));
    const reading = outcome(collect(createRedisReadStream(client(), key, { waitForCreate: 10_000 })));
    const primary = await (async () => {
      writer.write(data.subarray(0, data.length / 2));
      await sleep(200);
      return cluster!.masterOf(key);
    })();
    await primary.kill();
    writer.end(data.subarray(data.length / 2));
    const [w, r] = await Promise.all([writing, reading]);
    if (!w.ok) expect(w.error).toBeInstanceOf(RedisFileError);
    if (r.ok) expect(sha256(r.value)).toBe(sha256(data));
    else expect(r.error).toBeInstanceOf(RedisFileError);
    // A reader that starts after the failover never gets wrong bytes either.
    const late = await outcome(collect(createRedisReadStream(client(), key, { idleTimeout: 3000 })));
    if (late.ok) expect(sha256(late.value)).toBe(sha256(data));
    else expect(late.error).toBeInstanceOf(RedisFileError);
    // The cluster serves the slot again, through the promoted replica.
    expect((await cluster.masterOf(key)).port).not.toBe(primary.port);
    const again = bytes(300_000, 12);
    const w2 = createRedisWriteStream(client(), key, { overwrite: true });
    w2.end(again);
    await finished(w2);
    expect(sha256(await collect(createRedisReadStream(client(), key)))).toBe(sha256(again));
  });

  /**
   * The replica is stopped (SIGSTOP) while the primary acknowledges more chunks, then the primary
   * is killed and the replica resumed: it takes over without those chunks.
   */
  async function loseAcknowledgedChunks(options: { waitReplicas?: number }) {
    cluster = await startCluster();
    const key = `failover/lost-${options.waitReplicas ?? 0}.bin`;
    const chunkSize = 16 * 1024;
    const data = bytes(64 * chunkSize, 13);
    const redis = client();
    const writer = createRedisWriteStream(redis, key, { chunkSize, maxInFlight: 4, waitTimeout: 200, ...options });
    const writing = outcome(finished(writer));
    writer.write(data.subarray(0, 16 * chunkSize));
    for (let i = 0; i < 100 && writer.committedChunks < 16; i++) await sleep(20);
    expect(writer.committedChunks).toBe(16);
    const primary = await cluster.masterOf(key);
    const [replica] = await cluster.replicasOf(key);
    const admin = new Redis(primary.url);
    admin.on('error', () => {});
    // The replica has everything so far: a write of this connection (in the file's slot) that the
    // replica confirms comes after the writer's in the replication stream.
    await admin.set(`{${key}}:synced`, '1');
    expect(await admin.wait(1, 5000)).toBe(1);
    process.kill(replica!.pid!, 'SIGSTOP');
    // Drop the replication link too: what the primary sends from now on never reaches the replica
    // (else the replica would find it in its socket buffer on waking).
    await admin.call('CLIENT', 'KILL', 'TYPE', 'replica');
    admin.disconnect();
    writer.write(data.subarray(16 * chunkSize, 32 * chunkSize));
    await sleep(300);
    const acknowledged = writer.committedChunks;
    await primary.kill();
    process.kill(replica!.pid!, 'SIGCONT');
    return { key, data, redis, writer, writing, primary, replica: replica!, acknowledged };
  }

  it('chunks acknowledged by a primary that dies before replicating them: readers report ERR_REDIS_FILE_CORRUPT', async () => {
    const { key, data, writer, writing, acknowledged } = await loseAcknowledgedChunks({});
    // Without waitReplicas the primary's acknowledgement counted: the writer moved past them.
    expect(acknowledged).toBe(32);
    writer.end(data.subarray(32 * 16 * 1024));
    const w = await writing;
    expect(w.ok).toBe(false);
    expect(w.ok ? undefined : w.error).toMatchObject({ code: 'ERR_REDIS_FILE_CORRUPT' });
    const r = await outcome(collect(createRedisReadStream(client(), key, { idleTimeout: 3000 })));
    expect(r.ok).toBe(false);
    expect(r.ok ? undefined : r.error).toMatchObject({ code: 'ERR_REDIS_FILE_CORRUPT' });
    expect((await stat(client(), key)).state).not.toBe('complete');
  });

  it('with waitReplicas, no acknowledged chunk is lost: the writer re-sends them to the new primary', async () => {
    const { key, data, writer, writing, primary, acknowledged } = await loseAcknowledgedChunks({ waitReplicas: 1 });
    // The stopped replica confirmed nothing: the writer still holds every chunk after the 16th.
    expect(acknowledged).toBe(16);
    // The old primary comes back (empty) as the new primary's replica, so WAIT can be answered again.
    await cluster!.rejoinAsReplica(primary, key);
    writer.end(data.subarray(32 * 16 * 1024));
    const w = await writing;
    expect(w).toEqual({ ok: true, value: undefined });
    expect(sha256(await collect(createRedisReadStream(client(), key)))).toBe(sha256(data));
  });
});
