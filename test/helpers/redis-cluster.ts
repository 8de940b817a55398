/**
 * A private Redis Cluster for the tests: the launcher shared with the benchmarks
 * (scripts/lib/redis-launcher.mjs), under the names the tests import, plus an ioredis client for it.
 */
import { Cluster, type ClusterOptions, Redis } from 'ioredis';
import { afterEach } from 'vitest';
import { type RedisCluster, startCluster } from '../../scripts/lib/redis-launcher.mjs';
import { closeAll, subject, subjectConnected } from './clients.js';
import type { RedisServer } from './redis-server.js';

export { type RedisCluster, type StartClusterOptions, startCluster } from '../../scripts/lib/redis-launcher.mjs';

/**
 * An ioredis `Cluster` client for `cluster`, with the options the package's users would pick for a
 * cluster on loopback. Disconnect it when done.
 */
export function clusterClient(cluster: Pick<RedisCluster, 'seeds'>, options: ClusterOptions = {}): Cluster {
  const client = new Cluster([...cluster.seeds], { ...options });
  client.on('error', () => {});
  return client;
}

/**
 * A connection to `primary` once its replica holds everything the primary holds in `key`'s slot:
 * a write of this connection in that slot, confirmed by the replica (WAIT), comes after every
 * earlier write in the replication stream. Disconnect it when done.
 */
export async function replicaCaughtUp(primary: Pick<RedisServer, 'url'>, key: string): Promise<Redis> {
  const admin = new Redis(primary.url);
  admin.on('error', () => {});
  await admin.set(`{${key}}:synced`, '1');
  const replicas = await admin.wait(1, 5000);
  if (replicas !== 1) {
    admin.disconnect();
    throw new Error(`the replica of ${primary.url} did not confirm the slot of ${key} within 5 s`);
  }
  return admin;
}

/**
 * A cluster of a test's own, started with `start()`, and its clients from `client()`: an ioredis
 * `Cluster` whose subject (the client of the library under test) is connected, as a node-redis
 * cluster must be. After each test the clients close, then the cluster stops.
 */
export function clusterPerTest(): { start(): Promise<RedisCluster>; client(): Promise<Cluster> } {
  let cluster: RedisCluster | undefined;
  const clients: Cluster[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect();
    // The clients handed to the package (subject()), before their cluster goes.
    await closeAll();
    await cluster?.stop();
    cluster = undefined;
  });
  return {
    async start() {
      cluster = await startCluster();
      return cluster;
    },
    async client() {
      if (!cluster) throw new Error('start() the cluster first');
      const c = clusterClient(cluster);
      clients.push(c);
      await subjectConnected(subject(c));
      return c;
    },
  };
}
