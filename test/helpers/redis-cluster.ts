/**
 * A private Redis Cluster for the tests: the launcher shared with the benchmarks
 * (scripts/lib/redis-launcher.mjs), under the names the tests import, plus an ioredis client for it.
 */
import { Cluster, type ClusterOptions } from 'ioredis';
import type { RedisCluster } from '../../scripts/lib/redis-launcher.mjs';

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
