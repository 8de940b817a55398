// Starts a private Redis Cluster for the benchmark: `primaries` primaries with `replicas` replicas
// each, every node a private redis-server from redis-server.mjs (127.0.0.1 only, its own temp dir,
// no persistence, registered with cleanup.mjs), joined with `redis-cli --cluster create`.
//
// A cluster node also listens on its bus port, port + 10000, so ports are picked where both are
// free. The logic follows the tests' harness (test/helpers/redis-cluster.ts).

import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { trackChild } from './cleanup.mjs';
import { isPortFree, startRedisServer } from './redis-server.mjs';

/** Ports taken by the nodes of this process (a node and its bus port), so two never collide. */
const taken = new Set();

async function pickClusterPort() {
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

function run(cmd, args, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(child, `${cmd} ${args[0] ?? ''}`);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code ?? signal}:\n${out}`));
    });
  });
}

/** One short-lived connection to a node, for admin commands. */
async function ask(port, fn) {
  const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

/** Rows of CLUSTER NODES: id, port, flags, id of its primary ('-' for a primary), slot ranges. */
export function parseClusterNodes(text) {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, addr, flags, master, , , , , ...slots] = line.split(' ');
      return { id, port: Number(/:(\d+)@/.exec(addr)?.[1]), flags: flags.split(','), master, slots };
    });
}

/**
 * Start a cluster and wait until every node reports `cluster_state:ok`, agrees on the primaries and
 * (with replicas) every replica is in sync. Always `await cluster.stop()` when done (cleanup.mjs
 * stops the nodes on errors and Ctrl-C too).
 *
 * @param {{ primaries?: number, replicas?: number, nodeTimeout?: number }} [options]
 */
export async function startRedisCluster({ primaries = 3, replicas = 0, nodeTimeout = 2000 } = {}) {
  const count = primaries * (1 + replicas);
  const nodes = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    const started = await Promise.all(
      Array.from({ length: count }, () =>
        startRedisServer({
          pickPort: pickClusterPort,
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeout)],
        }),
      ),
    );
    nodes.push(...started);
    await run('redis-cli', [
      '--cluster', 'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas', String(replicas),
      '--cluster-yes',
    ]);
    await waitUntilHealthy(nodes, primaries);
  } catch (err) {
    await stop();
    throw err;
  }
  const rows = parseClusterNodes(await ask(nodes[0].port, (r) => r.cluster('NODES')));
  const byPort = new Map(nodes.map((n) => [n.port, n]));
  const role = (n) => (rows.find((row) => row.port === n.port)?.flags.includes('master') ? 'primary' : 'replica');
  return {
    /** Every node: port, pid, url and role ('primary' or 'replica') as the cluster was formed. */
    nodes: nodes.map((n) => ({ port: n.port, pid: n.pid, url: n.url, role: role(n) })),
    /** `{ host, port }` of every node, as ioredis `Cluster` seeds. */
    seeds: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    /** Slot ranges served by each primary, by port. */
    slots: Object.fromEntries(rows.filter((row) => row.flags.includes('master') && byPort.has(row.port)).map((row) => [row.port, row.slots])),
    stop,
  };
}

async function waitUntilHealthy(nodes, primaries, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const states = await Promise.all(
        nodes.map((n) =>
          ask(n.port, async (r) => {
            const info = await r.cluster('INFO');
            const views = parseClusterNodes(await r.cluster('NODES'))
              .filter((row) => row.flags.includes('master') && row.slots.length > 0 && !row.flags.some((f) => f.startsWith('fail')))
              .map((row) => row.port)
              .sort()
              .join(',');
            const replication = await r.info('replication');
            // WAIT and the replicas' share of the work count only once a replica is in sync.
            const synced = !/^role:slave/m.test(replication) || /^master_link_status:up/m.test(replication);
            return { ok: /cluster_state:ok/.test(info), views, synced };
          }),
        ),
      );
      const views = new Set(states.map((s) => s.views));
      if (states.every((s) => s.ok && s.synced) && views.size === 1 && states[0].views.split(',').length === primaries) return;
      last = JSON.stringify(states);
    } catch (err) {
      last = String(err?.message ?? err);
    }
    await sleep(100);
  }
  throw new Error(`the cluster did not become healthy in ${timeoutMs} ms (${last})`);
}
