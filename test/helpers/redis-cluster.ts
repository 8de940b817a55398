/**
 * A private Redis Cluster for the tests: the launcher shared with the benchmarks
 * (scripts/lib/redis-launcher.mjs), under the names the tests import, plus an ioredis client for it.
 */
import { Cluster, type ClusterOptions, Redis } from 'ioredis';
import type { RedisCluster } from '../../scripts/lib/redis-launcher.mjs';
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
