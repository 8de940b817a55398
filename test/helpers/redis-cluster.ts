/**
 * Starts and stops a real Redis Cluster on loopback for the tests: `masters` primaries with
 * `replicas` replicas each, every node a private redis-server from {@link startRedis} (so the
 * same safety nets reap them), joined with `redis-cli --cluster create`.
 *
 * A cluster node also listens on its bus port, `port + 10000`, so ports are picked where both
 * are free.
 */
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis, type ClusterOptions } from 'ioredis';
import { isPortFree, startRedis, type RedisServer } from './redis-server.js';

export interface StartClusterOptions {
  /** Number of primaries. Default 3. */
  masters?: number;
  /** Replicas per primary. Default 1. */
  replicas?: number;
  /** Extra redis-server arguments for every node. */
  args?: string[];
  /**
   * `cluster-node-timeout` in ms: how long a node may be unreachable before it counts as failed
   * and a replica takes over. Default 1000, so failover tests take seconds, not minutes.
   */
  nodeTimeout?: number;
}

export interface RedisCluster {
  /** Every node, in the order they were given to `redis-cli --cluster create`. */
  readonly nodes: readonly RedisServer[];
  /** `host:port` of every node, as ioredis `Cluster` seeds. */
  readonly seeds: readonly { host: string; port: number }[];
  /** `redis://127.0.0.1:<port>` of every node. */
  readonly urls: readonly string[];
  /** The node serving `key`'s slot as primary now (asks the cluster). */
  masterOf(key: string): Promise<RedisServer>;
  /** The replicas of the primary serving `key`'s slot now. */
  replicasOf(key: string): Promise<RedisServer[]>;
  /** Wait until every running node reports `cluster_state:ok` and agrees on the primaries of all slots. */
  waitUntilHealthy(timeoutMs?: number): Promise<void>;
  /**
   * Start a node that was killed again, as a new, empty node (its old cluster config removed, so
   * that it never claims its old slots without their data), and make it a replica of the primary
   * that serves `key` now. Resolves once it is in sync.
   */
  rejoinAsReplica(node: RedisServer, key: string): Promise<void>;
  /** Stop every node and remove its directory. */
  stop(): Promise<void>;
}

async function pickClusterPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = randomInt(20_000, 40_000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if ((await isPortFree(port)) && (await isPortFree(port + 10_000))) {
      taken.add(port);
      taken.add(port + 10_000);
      return port;
    }
  }
  throw new Error('no free pair of ports (port and port + 10000) found for a cluster node');
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}:\n${out}`)),
    );
  });
}

/** One short-lived connection to a node, for admin commands. */
async function ask<T>(port: number, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

/** Rows of CLUSTER NODES: id, port, flags, master id, slot ranges. */
interface NodeRow {
  id: string;
  port: number;
  flags: string[];
  master: string;
  slots: string[];
}

function parseNodes(text: string): NodeRow[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, addr, flags, master, , , , , ...slots] = line.split(' ');
      return {
        id: id!,
        port: Number(/:(\d+)@/.exec(addr!)?.[1]),
        flags: flags!.split(','),
        master: master!,
        slots,
      };
    });
}

/**
 * Start a cluster and wait until it serves every slot. Always `await cluster.stop()` when done.
 */
export async function startCluster(opts: StartClusterOptions = {}): Promise<RedisCluster> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicas ?? 1;
  const count = masters * (1 + replicas);
  const taken = new Set<number>();
  const nodes: RedisServer[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < count; i++) {
      const port = await pickClusterPort(taken);
      nodes.push(
        await startRedis({
          port,
          args: [
            '--cluster-enabled', 'yes',
            '--cluster-config-file', 'nodes.conf',
            '--cluster-node-timeout', String(opts.nodeTimeout ?? 1000),
            // A replica may take over however long ago it last heard from its primary: the
            // failover tests stop replicas on purpose.
            '--cluster-replica-validity-factor', '0',
            ...(opts.args ?? []),
          ],
        }),
      );
    }
    await run('redis-cli', [
      '--cluster', 'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas', String(replicas),
      '--cluster-yes',
    ]);
  } catch (err) {
    await stopAll();
    throw err;
  }

  const byPort = new Map(nodes.map((n) => [n.port, n]));

  async function view(): Promise<NodeRow[]> {
    for (const node of nodes) {
      if (node.pid === undefined) continue;
      try {
        return parseNodes(await ask(node.port, (r) => r.cluster('NODES') as Promise<string>));
      } catch {
        // that node is down or restarting: ask the next one
      }
    }
    throw new Error('no cluster node answered CLUSTER NODES');
  }

  async function primaryRow(key: string): Promise<{ rows: NodeRow[]; primary: NodeRow }> {
    const someUp = nodes.find((n) => n.pid !== undefined);
    if (!someUp) throw new Error('every cluster node is down');
    const slot = await ask(someUp.port, (r) => r.cluster('KEYSLOT', key) as Promise<number>);
    const rows = await view();
    const primary = rows.find(
      (row) =>
        row.flags.includes('master') &&
        !row.flags.some((f) => f.startsWith('fail')) &&
        row.slots.some((range) => {
          const [lo, hi] = range.split('-').map(Number);
          return slot >= lo! && slot <= (hi ?? lo)!;
        }),
    );
    if (!primary) throw new Error(`no primary serves the slot of ${key}`);
    return { rows, primary };
  }

  const cluster: RedisCluster = {
    nodes,
    seeds: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    urls: nodes.map((n) => n.url),
    async masterOf(key) {
      const { primary } = await primaryRow(key);
      return byPort.get(primary.port)!;
    },
    async replicasOf(key) {
      const { rows, primary } = await primaryRow(key);
      return rows.filter((row) => row.master === primary.id).map((row) => byPort.get(row.port)!);
    },
    async waitUntilHealthy(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      while (Date.now() < deadline) {
        try {
          const running = nodes.filter((n) => n.pid !== undefined);
          const states = await Promise.all(running.map((n) => ask(n.port, (r) => r.cluster('INFO') as Promise<string>)));
          const ok = states.every((s) => /cluster_state:ok/.test(s));
          // Every node must name the same primaries, none of them failed.
          const views = await Promise.all(
            running.map((n) =>
              ask(n.port, async (r) =>
                parseNodes((await r.cluster('NODES')) as string)
                  .filter((row) => row.flags.includes('master') && row.slots.length > 0 && !row.flags.some((f) => f.startsWith('fail')))
                  .map((row) => row.port)
                  .sort()
                  .join(','),
              ),
            ),
          );
          // ... and every replica must be in sync with its primary (WAIT counts only those).
          const links = await Promise.all(
            running.map((n) => ask(n.port, async (r) => {
              const info = (await r.info('replication')) as string;
              return !/^role:slave/m.test(info) || /^master_link_status:up/m.test(info);
            })),
          );
          if (ok && links.every(Boolean) && new Set(views).size === 1 && views[0]!.split(',').length === masters) return;
          last = `states ok=${ok}, replicas in sync=${links.every(Boolean)}, views=${JSON.stringify(views)}`;
        } catch (err) {
          last = String(err);
        }
        await sleep(100);
      }
      throw new Error(`the cluster did not become healthy in ${timeoutMs} ms (${last})`);
    },
    async rejoinAsReplica(server, key) {
      if (server.pid !== undefined) throw new Error(`node ${server.port} is running`);
      // First a replica must have taken over the slot from the dead node.
      const deadline = Date.now() + 30_000;
      let primary = await cluster.masterOf(key).catch(() => server);
      while (primary === server) {
        if (Date.now() > deadline) throw new Error(`no replica took over ${key} from node ${server.port}`);
        await sleep(100);
        primary = await cluster.masterOf(key).catch(() => server);
      }
      rmSync(join(server.dir, 'nodes.conf'), { force: true });
      await server.restart();
      const primaryId = await ask(primary.port, (r) => r.cluster('MYID') as Promise<string>);
      await ask(server.port, (r) => r.cluster('MEET', '127.0.0.1', primary.port) as Promise<unknown>);
      for (;;) {
        try {
          await ask(server.port, (r) => r.cluster('REPLICATE', primaryId) as Promise<unknown>);
          break;
        } catch (err) {
          // It has not learned of the primary through the cluster bus yet.
          if (Date.now() > deadline) throw err;
          await sleep(100);
        }
      }
      await cluster.waitUntilHealthy();
    },
    stop: stopAll,
  };
  try {
    await cluster.waitUntilHealthy();
  } catch (err) {
    await stopAll();
    throw err;
  }
  return cluster;
}

/**
 * An ioredis `Cluster` client for `cluster`, with the options the package's users would pick for a
 * cluster on loopback. Disconnect it when done.
 */
export function clusterClient(cluster: Pick<RedisCluster, 'seeds'>, options: ClusterOptions = {}): Cluster {
  const client = new Cluster([...cluster.seeds], { ...options });
  client.on('error', () => {});
  return client;
}
