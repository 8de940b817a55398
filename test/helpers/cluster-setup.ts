/**
 * vitest globalSetup of the `cluster` project: starts ONE Redis Cluster on loopback (3 primaries,
 * 3 replicas) for the test files that run on both topologies, hands its seeds to the tests
 * (`inject('clusterSeeds')`, which makes `connectAny()` return an ioredis `Cluster`), and stops it
 * at the end.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureBuilt, ensureRedisInstalled } from './global-setup.js';
import { type RedisCluster, startCluster } from './redis-cluster.js';
import { RUN_DIR_ENV, reapServers } from './redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Seeds of the shared cluster, in the `cluster` project only. */
    clusterSeeds: { host: string; port: number }[];
  }
}

let cluster: RedisCluster | undefined;
let runDir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  ensureRedisInstalled();
  ensureBuilt();
  runDir = mkdtempSync(join(tmpdir(), 'redis-file-stream-cluster-'));
  // The cluster's nodes keep their pid files in a folder of their own, reaped at teardown; the
  // standalone project's setup owns the variable for everything else.
  const previous = process.env[RUN_DIR_ENV];
  process.env[RUN_DIR_ENV] = runDir;
  try {
    cluster = await startCluster();
  } finally {
    if (previous === undefined) delete process.env[RUN_DIR_ENV];
    else process.env[RUN_DIR_ENV] = previous;
  }
  project.provide('clusterSeeds', [...cluster.seeds]);
}

export async function teardown(): Promise<void> {
  try {
    await cluster?.stop();
  } finally {
    cluster = undefined;
    if (runDir) {
      const reaped = reapServers(runDir);
      if (reaped > 0) console.warn(`cluster-setup: killed ${reaped} redis-server(s) left running`);
      runDir = undefined;
    }
  }
}
