#!/usr/bin/env node
// Many files at once on 1 node and on 3 shards (`npm run bench:cluster`, `npm run bench:cluster -- --quick`).
//
// Starts its own servers on loopback: one standalone redis-server, a Redis Cluster of 3 primaries
// and one of 3 primaries + 3 replicas. On each topology in turn (the order rotated every repetition)
// it writes N files at once with createRedisWriteStream, then reads them all at once with
// createRedisReadStream (default options: checksum on), through one ioredis client (`Redis` for
// the node, `Cluster` for the clusters). It records the aggregate MiB/s of each phase and the CPU
// time of this Node process, of every redis-server of the topology and of the whole machine, and
// writes:
//   benchmarks/results/<YYYY-MM-DD>-cluster.json   raw runs, medians, ratios, CPU, the machine
//   docs/scaling-benchmark.md                      regenerated from that JSON (full runs only)
//
// Options:
//   --quick          8 files of 2 MiB, one run per topology, no warm-up: a smoke check (< 1 minute);
//                    writes benchmarks/results/<date>-cluster-quick.json and leaves docs/ alone
//   --files N        files written (then read) at once (default 16)
//   --size MIB       size of each file in MiB (default 16)
//   --reps N         timed runs per topology (default 7)
//   --no-replicas    leave out the 3 primaries + 3 replicas topology
//   --no-docs        do not regenerate docs/scaling-benchmark.md
//   --out FILE       write the results JSON here instead
//   --render FILE    run nothing: regenerate docs/scaling-benchmark.md from a results JSON
//
// Needs the built package (dist/): `npm run bench:cluster` builds it first. The servers are
// stopped at the end, on errors and on Ctrl-C. Exit code: 0 when every run completed (whatever
// the timings), 1 on a failure, 130 on Ctrl-C.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startCluster, startRedis } from '../scripts/lib/redis-launcher.mjs';
import { runScript, track, trackServer } from './lib/cleanup.mjs';
import { formatClusterSummary, renderClusterMarkdown } from './lib/cluster-report.mjs';
import { infoCpuMs, machineCpuMs, procCpuMs } from './lib/cpu.mjs';
import { describeMachine, loadavg } from './lib/machine.mjs';
import {
  alternate,
  compare,
  countingSink,
  headerComment,
  importBuiltPackage,
  MiB,
  median,
  medians,
  mibps,
  now,
  poolSource,
  randomPool,
  round,
} from './lib/util.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const docsFile = join(root, 'docs', 'scaling-benchmark.md');

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    files: { type: 'string' },
    size: { type: 'string' },
    reps: { type: 'string' },
    'no-replicas': { type: 'boolean', default: false },
    'no-docs': { type: 'boolean', default: false },
    out: { type: 'string' },
    render: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(headerComment(import.meta.url));
  process.exit(0);
}

function positiveInt(name, value, fallback) {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
}
const fileCount = positiveInt('files', args.files, args.quick ? 8 : 16);
const fileSize = positiveInt('size', args.size, args.quick ? 2 : 16) * MiB;
const reps = positiveInt('reps', args.reps, args.quick ? 1 : 7);
const warmup = !args.quick;

const log = (line) => console.log(line);
const logRun = (line) => process.stderr.write(`${line}\n`);

/** Percent of one core that `cpuMs` of CPU time is over `wallMs`. */
const pctOfCore = (cpuMs, wallMs) => round((cpuMs / wallMs) * 100, 1);

/**
 * A topology under test: its ioredis client, the redis-servers behind it (CPU is read for each),
 * and how to empty it between runs.
 */
function topology(name, description, client, servers, isCluster) {
  const primaries = () => (isCluster ? client.nodes('master') : [client]);
  return {
    name,
    description,
    client,
    servers,
    async cpuMs() {
      return Promise.all(servers.map(async (s) => procCpuMs(s.pid) ?? infoCpuMs(s.admin)));
    },
    /** How many of `names` each primary holds (by port): SCAN for the files' metadata hashes. */
    async distribution() {
      const counts = {};
      for (const node of primaries()) {
        let cursor = '0';
        let n = 0;
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', 'rfs:{*}:meta', 'COUNT', 1000);
          cursor = next;
          n += keys.length;
        } while (cursor !== '0');
        counts[node.options.port] = n;
      }
      return counts;
    },
    /**
     * FLUSHALL every primary, wait until its replicas have applied it, then MEMORY PURGE: every run
     * starts from empty servers and the same allocator state.
     */
    async empty() {
      await Promise.all(
        primaries().map(async (node) => {
          await node.flushall();
          const replicas = servers.filter((s) => s.role === 'replica').length;
          if (replicas > 0) await node.call('WAIT', String(replicas / primaries().length), '10000');
        }),
      );
      await Promise.all(servers.map((s) => s.admin.call('MEMORY', 'PURGE').catch(() => {})));
    },
  };
}

/** Primaries first, then replicas, each by port: the order of the per-primary file counts. */
const byRoleAndPort = (nodes) =>
  [...nodes].sort((a, b) => (a.role === b.role ? a.port - b.port : a.role === 'primary' ? -1 : 1));

/** Run `fn` and measure wall time and CPU time: this process, each server of `topo`, the machine. */
async function measure(topo, fn) {
  const s0 = await topo.cpuMs();
  const m0 = machineCpuMs();
  const c0 = process.cpuUsage();
  const t0 = now();
  const bytes = await fn();
  const ms = now() - t0;
  const c = process.cpuUsage(c0);
  const m1 = machineCpuMs();
  const s1 = await topo.cpuMs();
  const nodeMs = (c.user + c.system) / 1000;
  const serverMs = s1.map((x, i) => x - s0[i]);
  const redisMs = serverMs.reduce((a, b) => a + b, 0);
  const out = {
    mibps: round(mibps(bytes, ms), 1),
    ms: round(ms, 1),
    nodeCpuPct: pctOfCore(nodeMs, ms),
    redisCpuPct: pctOfCore(redisMs, ms),
    // CPU time per MiB moved: what the work costs, whatever share of the CPUs it got.
    nodeCpuMsPerMiB: round(nodeMs / (bytes / MiB), 2),
    redisCpuMsPerMiB: round(redisMs / (bytes / MiB), 2),
    servers: topo.servers.map((s, i) => ({ port: s.port, role: s.role, cpuPct: pctOfCore(serverMs[i], ms) })),
  };
  if (m0 && m1) {
    const busy = m1.busy - m0.busy;
    // Whatever else ran meanwhile (other people's work on a shared machine, the idle servers of
    // the other topologies), as % of one core; an estimate: /proc ticks are 10 ms apart.
    out.machineBusyPct = round((busy / (m1.total - m0.total)) * 100, 1);
    out.otherCpuPct = pctOfCore(busy - nodeMs - redisMs, ms);
  }
  return out;
}

async function main() {
  const startedAt = new Date();
  const t0 = Date.now();
  const pkg = await importBuiltPackage('bench:cluster');
  if (pkg === undefined) return 1;
  const { Cluster, Redis } = await import('ioredis');

  const admin = (port) => {
    const r = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
    r.on('error', () => {});
    track(`admin client :${port}`, () => r.disconnect());
    return r;
  };

  log(
    `redis-file-stream cluster benchmark${args.quick ? ' (quick)' : ''}: ${fileCount} files x ${fileSize / MiB} MiB at once, ${reps} run(s) per topology${warmup ? ' after a warm-up run' : ''}`,
  );
  log('starting servers on 127.0.0.1 …');
  const ts = Date.now();
  const [single, sharded, replicated] = await Promise.all([
    startRedis({ args: ['--maxmemory', '0'] }).then((s) => trackServer(s)),
    startCluster({ masters: 3, replicas: 0, nodeTimeout: 2000 }).then((c) => trackServer(c, 'cluster (3 shards)')),
    args['no-replicas']
      ? undefined
      : startCluster({ masters: 3, replicas: 1, nodeTimeout: 2000 }).then((c) => trackServer(c, 'cluster (3 + 3)')),
  ]);
  log(`servers up in ${round((Date.now() - ts) / 1000, 1)} s`);

  const standaloneClient = new Redis(single.url);
  standaloneClient.on('error', () => {}); // failures surface through the commands
  track('standalone client', () => standaloneClient.disconnect());
  const topologies = [
    topology(
      '1 node',
      'one standalone redis-server, an ioredis `Redis` client',
      standaloneClient,
      [{ port: single.port, pid: single.pid, role: 'standalone', admin: admin(single.port) }],
      false,
    ),
  ];
  for (const [cluster, name, description] of [
    [sharded, '3 shards', 'Redis Cluster, 3 primaries, no replicas, an ioredis `Cluster` client'],
    [
      replicated,
      '3 shards + 3 replicas',
      'Redis Cluster, 3 primaries with 1 replica each, an ioredis `Cluster` client (reads from the primaries)',
    ],
  ]) {
    if (!cluster) continue;
    const client = new Cluster(cluster.seeds);
    client.on('error', () => {});
    track(`cluster client (${name})`, () => client.disconnect());
    const primaries = new Set(await cluster.primaries());
    const servers = byRoleAndPort(
      cluster.nodes.map((n) => ({ port: n.port, pid: n.pid, role: primaries.has(n) ? 'primary' : 'replica' })),
    ).map((n) => ({ ...n, admin: admin(n.port) }));
    topologies.push(topology(name, description, client, servers, true));
  }
  const info = await topologies[0].servers[0].admin.info('server');
  const machine = describeMachine({
    root,
    redis: /redis_version:(\S+)/.exec(info)?.[1],
    redisServer:
      'private servers started by the benchmark on 127.0.0.1, no persistence, maxmemory 0: 1 standalone, a cluster of 3 primaries' +
      `${replicated ? ' and a cluster of 3 primaries + 3 replicas' : ''} (cluster-node-timeout 2000), all running throughout`,
  });
  log(
    `node ${machine.node}, redis ${machine.redis}, ${machine.cpus} x ${machine.cpuModel}, load ${machine.loadavgAtStart.join(' ')}`,
  );

  const pool = randomPool();
  const names = Array.from({ length: fileCount }, (_, i) => `bench-file-${i}`);
  const distributions = Object.fromEntries(topologies.map((t) => [t.name, []]));

  const contenders = topologies.map((topo) => ({
    name: topo.name,
    run: async (rep) => {
      const load1 = round(os.loadavg()[0], 2);
      const write = await measure(topo, async () => {
        await Promise.all(
          names.map((name) => pipeline(poolSource(pool, fileSize), pkg.createRedisWriteStream(topo.client, name))),
        );
        return fileCount * fileSize;
      });
      const distribution = await topo.distribution();
      if (rep !== 'warmup') distributions[topo.name].push(distribution);
      const read = await measure(topo, async () => {
        const sinks = names.map(() => countingSink());
        await Promise.all(names.map((name, i) => pipeline(pkg.createRedisReadStream(topo.client, name), sinks[i])));
        for (const [i, sink] of sinks.entries()) {
          if (sink.bytes !== fileSize)
            throw new Error(`${topo.name}: read ${sink.bytes} bytes of ${names[i]}, expected ${fileSize}`);
        }
        return fileCount * fileSize;
      });
      const flat = (phase, m) => ({
        [`${phase}MiBps`]: m.mibps,
        [`${phase}Ms`]: m.ms,
        [`${phase}NodeCpuPct`]: m.nodeCpuPct,
        [`${phase}RedisCpuPct`]: m.redisCpuPct,
        [`${phase}NodeCpuMsPerMiB`]: m.nodeCpuMsPerMiB,
        [`${phase}RedisCpuMsPerMiB`]: m.redisCpuMsPerMiB,
        ...(m.machineBusyPct === undefined
          ? {}
          : { [`${phase}MachineBusyPct`]: m.machineBusyPct, [`${phase}OtherCpuPct`]: m.otherCpuPct }),
      });
      return {
        ...flat('write', write),
        ...flat('read', read),
        load1,
        servers: { write: write.servers, read: read.servers },
      };
    },
  }));

  for (const topo of topologies) await topo.empty();
  const runs = await alternate(reps, contenders, {
    log: logRun,
    warmup,
    after: (name) => topologies.find((t) => t.name === name).empty(),
  });

  const results = topologies.map((topo) => {
    const rs = runs[topo.name];
    const serverMedians = (phase) =>
      topo.servers.map((s, i) => ({
        port: s.port,
        role: s.role,
        cpuPct: round(median(rs.map((r) => r.servers[phase][i].cpuPct)), 1),
      }));
    const dist = distributions[topo.name];
    return {
      name: topo.name,
      description: topo.description,
      servers: topo.servers.map(({ port, role }) => ({ port, role })),
      distribution: dist[0],
      distributionStable: dist.every((d) => JSON.stringify(d) === JSON.stringify(dist[0])),
      median: medians(rs),
      serverCpuMedian: { write: serverMedians('write'), read: serverMedians('read') },
      runs: rs,
    };
  });
  const comparisons = [];
  for (const topo of topologies.slice(1)) {
    for (const phase of ['write', 'read']) {
      comparisons.push(
        compare({
          id: `${phase}:${topo.name}`,
          label: `${phase}, ${topo.name} / 1 node`,
          runs,
          contender: topo.name,
          baseline: '1 node',
          field: `${phase}MiBps`,
        }),
      );
    }
  }
  machine.loadavgAtEnd = loadavg();

  const date = startedAt.toISOString().slice(0, 10);
  const output = {
    benchmark: 'redis-file-stream cluster',
    date,
    startedAt: startedAt.toISOString(),
    durationSeconds: Math.round((Date.now() - t0) / 1000),
    quick: args.quick,
    command: `node benchmarks/cluster.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    machine,
    setup: {
      files: fileCount,
      fileSizeBytes: fileSize,
      totalBytes: fileCount * fileSize,
      reps,
      warmup,
      write: 'createRedisWriteStream(client, name), default options, fed 64 KiB buffers from memory; all files at once',
      read: 'createRedisReadStream(client, name), default options (checksum on, readAhead 16) into a sink that discards the bytes; all files at once',
      cpu:
        "CPU % of one core over the phase's wall time: node = this process (process.cpuUsage), redis = sum of the " +
        "topology's redis-servers (/proc/<pid>/stat utime + stime), machine busy = all CPUs (/proc/stat) as % of the " +
        'machine, other = machine busy time minus node and redis, as % of one core; CPU ms per MiB = CPU time of node ' +
        'or of the redis-servers (sum) / MiB moved',
    },
    topologies: results,
    comparisons,
  };
  const file = args.out ?? join(root, 'benchmarks', 'results', `${date}-cluster${args.quick ? '-quick' : ''}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(output, null, 2)}\n`);

  log(`\n${formatClusterSummary(output)}`);
  log(`\nresults: ${relative(process.cwd(), file)}`);
  if (!args.quick && !args['no-docs']) {
    writeFileSync(docsFile, renderClusterMarkdown(output, { resultsFile: relative(root, resolve(file)) }));
    log(`docs: ${relative(process.cwd(), docsFile)}`);
  }
  log(`took ${output.durationSeconds} s`);
  return 0;
}

/** --render: the docs from a results file, nothing run. */
function render() {
  const output = JSON.parse(readFileSync(args.render, 'utf8'));
  writeFileSync(docsFile, renderClusterMarkdown(output, { resultsFile: relative(root, resolve(args.render)) }));
  log(`docs: ${relative(process.cwd(), docsFile)}`);
  return 0;
}

await runScript('bench', args.render ? render : main);
