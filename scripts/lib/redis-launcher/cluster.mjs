// A private Redis Cluster on loopback: `masters` primaries with `replicas` replicas each, every node
// a private redis-server from server.mjs (so the same safety nets stop them), joined with
// `redis-cli --cluster create`. Types and docs: ../redis-launcher.d.mts.
//
// A cluster node also listens on its bus port, port + 10000, so ports are picked where both are
// free.

import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { command, exchange } from './resp.mjs';
import { isPortFree, startRedis } from './server.mjs';

/** Ports handed to the cluster nodes of this process (a node and its bus port), so two never collide. */
const taken = new Set();

async function pickClusterPort() {
  for (let i = 0; i < 200; i++) {
    const port = randomInt(20_000, 40_000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    // Reserved before the checks: nodes pick their ports concurrently.
    taken.add(port).add(port + 10_000);
    if ((await isPortFree(port)) && (await isPortFree(port + 10_000))) return port;
    taken.delete(port);
    taken.delete(port + 10_000);
  }
  throw new Error('no free pair of ports (port and port + 10000) found for a cluster node');
}

function run(cmd, args, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
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

/** Rows of CLUSTER NODES: id, port, flags, id of its primary ('-' for a primary), slot ranges. */
function parseNodes(text) {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, addr, flags, master, , , , , ...slots] = line.split(' ');
      return { id, port: Number(/:(\d+)@/.exec(addr)?.[1]), flags: flags.split(','), master, slots };
    });
}

const isServingPrimary = (row) =>
  row.flags.includes('master') && row.slots.length > 0 && !row.flags.some((f) => f.startsWith('fail'));

/**
 * Start a cluster and wait until it is healthy. Always `await cluster.stop()` when done.
 *
 * @param {import('../redis-launcher.mjs').StartClusterOptions} [opts]
 * @returns {Promise<import('../redis-launcher.mjs').RedisCluster>}
 */
export async function startCluster({ masters = 3, replicas = 1, args = [], nodeTimeout = 1000 } = {}) {
  const count = masters * (1 + replicas);
  const nodeArgs = [
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    'nodes.conf',
    '--cluster-node-timeout',
    String(nodeTimeout),
    // A replica may take over however long ago it last heard from its primary: the failover
    // tests stop replicas on purpose.
    '--cluster-replica-validity-factor',
    '0',
    // CLUSTER SLOTS lists a replica only once it has replicated something; a primary's PING to
    // its replicas counts, every second instead of every 10 s, so a new cluster is whole sooner.
    '--repl-ping-replica-period',
    '1',
    ...args,
  ];
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => startRedis({ pickPort: pickClusterPort, args: nodeArgs })),
  );
  const nodes = started.filter((s) => s.status === 'fulfilled').map((s) => s.value);
  const stopAll = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await stopAll();
    throw failed.reason;
  }
  try {
    await run('redis-cli', [
      '--cluster',
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ]);
  } catch (err) {
    await stopAll();
    throw err;
  }

  const byPort = new Map(nodes.map((n) => [n.port, n]));
  const running = () => nodes.filter((n) => n.pid !== undefined);

  async function view() {
    for (const node of running()) {
      try {
        return parseNodes(await command(node.port, ['CLUSTER', 'NODES']));
      } catch {
        // that node is down or restarting: ask the next one
      }
    }
    throw new Error('no cluster node answered CLUSTER NODES');
  }

  async function primaryRow(key) {
    const someUp = running()[0];
    if (!someUp) throw new Error('every cluster node is down');
    const slot = Number(await command(someUp.port, ['CLUSTER', 'KEYSLOT', key]));
    const rows = await view();
    const primary = rows.find(
      (row) =>
        isServingPrimary(row) &&
        row.slots.some((range) => {
          const [lo, hi] = range.split('-').map(Number);
          return slot >= lo && slot <= (hi ?? lo);
        }),
    );
    if (!primary) throw new Error(`no primary serves the slot of ${key}`);
    return { rows, primary };
  }

  /** Why the cluster is not healthy yet, or undefined when it is. */
  async function unhealthy() {
    const states = await Promise.all(
      running().map(async (n) => {
        const [info, nodesText, replication, slots] = await exchange(n.port, [
          ['CLUSTER', 'INFO'],
          ['CLUSTER', 'NODES'],
          ['INFO', 'replication'],
          ['CLUSTER', 'SLOTS'],
        ]);
        return {
          port: n.port,
          replica: /^role:slave/m.test(replication?.text ?? ''),
          // The replicas this node's CLUSTER SLOTS lists (Redis leaves out a replica that has not
          // replicated anything yet): a client that connected to one not listed drops it again,
          // which can fail its ready check.
          knownReplicas: (slots?.items ?? []).flatMap((range) =>
            (range.items ?? []).slice(3).map((node) => Number(node.items?.[1]?.text)),
          ),
          ok: /cluster_state:ok/.test(info?.text ?? ''),
          // Every node must name the same primaries, none of them failed ...
          primaries: parseNodes(nodesText?.text ?? '')
            .filter(isServingPrimary)
            .map((row) => row.port)
            .sort()
            .join(','),
          // ... and every replica must be in sync with its primary (WAIT counts only those).
          synced: !/^role:slave/m.test(replication?.text ?? '') || /^master_link_status:up/m.test(replication.text),
        };
      }),
    );
    const views = new Set(states.map((s) => s.primaries));
    const replicaPorts = states.filter((s) => s.replica).map((s) => s.port);
    const healthy =
      states.every((s) => s.ok && s.synced && replicaPorts.every((port) => s.knownReplicas.includes(port))) &&
      views.size === 1 &&
      states[0].primaries.split(',').length === masters;
    return healthy ? undefined : JSON.stringify(states);
  }

  const cluster = {
    nodes,
    seeds: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    urls: nodes.map((n) => n.url),
    async masterOf(key) {
      const { primary } = await primaryRow(key);
      return byPort.get(primary.port);
    },
    async replicasOf(key) {
      const { rows, primary } = await primaryRow(key);
      return rows.filter((row) => row.master === primary.id).map((row) => byPort.get(row.port));
    },
    async primaries() {
      return (await view()).filter(isServingPrimary).map((row) => byPort.get(row.port));
    },
    async waitUntilHealthy(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      while (Date.now() < deadline) {
        try {
          const why = await unhealthy();
          if (why === undefined) return;
          last = why;
        } catch (err) {
          last = String(err?.message ?? err);
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
      // A new, empty node: with its old config it would claim its old slots without their data.
      rmSync(join(server.dir, 'nodes.conf'), { force: true });
      await server.restart();
      const primaryId = await command(primary.port, ['CLUSTER', 'MYID']);
      await command(server.port, ['CLUSTER', 'MEET', '127.0.0.1', String(primary.port)]);
      for (;;) {
        try {
          await command(server.port, ['CLUSTER', 'REPLICATE', primaryId]);
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
