/**
 * A cluster of a test's own, for the tests that fail its nodes over. Apart from
 * test/helpers/redis-cluster.ts, which the global setup imports too (it may not import the test
 * hooks of clients.ts).
 */
import type { Cluster } from 'ioredis';
import { afterEach } from 'vitest';
import { type RedisCluster, startCluster } from '../../scripts/lib/redis-launcher.mjs';
import { closeAll, subject, subjectConnected } from './clients.js';
import { clusterClient } from './redis-cluster.js';

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
