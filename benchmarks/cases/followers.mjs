// Case: many followers in one process. N files are written slowly (100 bytes every 500 ms, flush()
// after each write, the files' writes spread evenly over the interval) and followed by N readers
// that share one client, as a server that streams live files to its users does.
//
// Contenders, alternated:
// - "shared": the package as it is: the followers of one client share their blocking reads (one
//   connection and one XREAD over the waiting followers' streams per 64 followers,
//   src/blocking-reads.ts);
// - "shared, one connection for all": the same with no limit of followers per connection;
// - "one connection per follower": the design before (each follower blocks on a connection of its
//   own).
// The last two are switched on for the benchmark only, through an internal function of the built
// package.
//
// Per run: the server's connected_clients while the followers follow (over the count before they
// were made), connections opened during the run (total_connections_received), this process's RSS
// and heap growth from before the followers were made to when they all follow, the write-to-delivery
// latency of every write (p50, p99), and the Redis server's CPU time during the timed writes.
//
// One follower against raw XREAD BLOCK: the single-follower latency of the shared reads, with the
// writers and the interleaving of the follow case.
//
// The same many-follower run on a Redis Cluster of 3 primaries (started by the case, on loopback),
// with ioredis `Cluster` clients: "cluster: key watch per primary", the package (per primary one
// blocking connection and one key watch, src/blocking-reads.ts), against "cluster: a connection per
// slot (before)" (a blocking connection per hash slot with followers, switched on for the
// benchmark only). Counts and CPU are summed over the primaries.

import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster } from 'ioredis';
import { startCluster } from '../../scripts/lib/redis-launcher.mjs';
import { track, trackServer } from '../lib/cleanup.mjs';
import { alternate, compare, importBuiltInternal, median, medians, redisCpuMs, round } from '../lib/util.mjs';
import { difference, packageFollower, rawFollower, steady, summary } from './follow.mjs';

export const id = 'followers';
export const title = 'Many followers in one process (connections, memory, latency)';

const SIZE = 100;
const INTERVAL_MS = 500;

const SHARED = 'shared blocking reads';
const ALL_IN_ONE = 'shared, one connection for all';
const PER_FOLLOWER = 'one connection per follower (before)';
const CLUSTER_WATCH = 'cluster: key watch per primary';
const CLUSTER_PER_SLOT = 'cluster: a connection per slot (before)';
const ONE = 'one follower, shared reads';
const RAW = 'one follower, raw XREAD BLOCK';

/** A record of SIZE bytes: the time it is written, the file's number, the record's number. */
function record(file, i) {
  const buf = Buffer.alloc(SIZE, i & 0xff);
  buf.writeDoubleLE(performance.now(), 0);
  buf.writeUInt32LE(file, 8);
  buf.writeUInt32LE(i, 12);
  return buf;
}

async function clientsInfo(redis) {
  const info = await redis.info('all');
  const field = (name) =>
    Number(new RegExp(`^${name.replace('|', '\\|')}:(?:calls=)?(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return {
    connected: field('connected_clients'),
    received: field('total_connections_received'),
    xreads: field('cmdstat_xread'),
    unblocks: field('cmdstat_client|unblock'),
  };
}

/** Poll (bounded) until `check` holds; false when it did not within `ms`. */
async function until(check, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(20);
  }
  return false;
}

/** The server of the case: clients of it, and its counts and CPU time. */
function standalone(redis) {
  return {
    client: () => redis.duplicate(),
    connect: (client) => client.ping(),
    info: () => clientsInfo(redis),
    cpuMs: () => redisCpuMs(redis),
  };
}

/** A cluster: `Cluster` clients of its seeds, and its primaries' counts and CPU time summed. */
function cluster(control, seeds) {
  const sum = async (each) => {
    const all = await Promise.all(control.nodes('master').map(each));
    return all.reduce((a, b) =>
      typeof a === 'number' ? a + b : Object.fromEntries(Object.keys(a).map((k) => [k, a[k] + b[k]])),
    );
  };
  return {
    client: () => new Cluster(seeds),
    // Connected to every primary before the counts are taken: a Cluster client connects to a node
    // when it first sends a command there.
    connect: async (client) => {
      await client.ping();
      await Promise.all(client.nodes('master').map((node) => node.ping()));
    },
    info: () => sum((node) => clientsInfo(node)),
    cpuMs: () => sum((node) => redisCpuMs(node)),
  };
}

/**
 * `shared`: true (the package), 'one' (one connection for all), false (one per follower),
 * 'per-slot' (on a cluster: a blocking connection per slot, no key watch). `topo`: standalone() or
 * cluster().
 */
async function manyRun(ctx, rep, n, writes, shared, topo = standalone(ctx.redis)) {
  const { pkg } = ctx;
  const internal = await importBuiltInternal('blocking-reads.js');
  if (typeof internal?.shareBlockingReads !== 'function') throw new Error('the build has no shareBlockingReads');
  internal.shareBlockingReads(
    shared !== false,
    shared === 'one' ? Number.POSITIVE_INFINITY : undefined,
    shared !== 'per-slot',
  );
  const writerClient = topo.client();
  const readerClient = topo.client();
  writerClient.on('error', () => {});
  readerClient.on('error', () => {});
  const writers = [];
  const readers = [];
  const latencies = [];
  try {
    await Promise.all([topo.connect(writerClient), topo.connect(readerClient)]);
    const keys = Array.from({ length: n }, (_, j) => `followers-${shared}-${rep}-${j}`);
    for (const key of keys) {
      const w = pkg.createRedisWriteStream(writerClient, key, { prefix: ctx.prefix, flushInterval: 0 });
      w.on('error', () => {});
      writers.push(w);
    }
    await Promise.all(writers.map((w) => new Promise((resolve) => w.once('ready', resolve))));
    const before = await topo.info();
    const mem0 = process.memoryUsage();

    const seen = new Array(n).fill(0);
    let primed = 0;
    let onPrimed;
    const allPrimed = new Promise((resolve) => (onPrimed = resolve));
    const ends = keys.map((key, j) => {
      const reader = pkg.createRedisReadStream(readerClient, key, { prefix: ctx.prefix });
      readers.push(reader);
      let pending = Buffer.alloc(0);
      reader.on('data', (chunk) => {
        const t = performance.now();
        pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
        while (pending.length >= SIZE) {
          const i = pending.readUInt32LE(12);
          if (pending.readUInt32LE(8) !== j || i !== seen[j]) throw new Error(`file ${j}: record out of order`);
          if (i > 0) latencies.push(t - pending.readDoubleLE(0));
          else if (++primed === n) onPrimed();
          seen[j]++;
          pending = pending.subarray(SIZE);
        }
      });
      return new Promise((resolve, reject) => {
        reader.once('end', resolve);
        reader.once('error', reject);
      });
    });
    for (const [j, w] of writers.entries()) {
      w.write(record(j, 0));
      w.flush();
    }
    await Promise.race([allPrimed, Promise.all(ends)]);
    const during = await topo.info();
    const mem1 = process.memoryUsage();

    const cpu0 = await topo.cpuMs();
    const timedFrom = await topo.info();
    // The most connections the server holds while the writes go on.
    let connections = during.connected - before.connected;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        connections = Math.max(connections, (await topo.info()).connected - before.connected);
        await sleep(100);
      }
    })();
    const t0 = performance.now() + 20;
    await Promise.all(
      writers.map((w, j) =>
        steady(
          writes,
          INTERVAL_MS,
          (i) => {
            w.write(record(j, i + 1));
            w.flush();
          },
          t0 + (j * INTERVAL_MS) / n,
        ),
      ),
    );
    sampling = false;
    await sampler;
    const timedTo = await topo.info();
    const redisCpu = (await topo.cpuMs()) - cpu0;
    for (const w of writers) w.end();
    await Promise.all(ends);
    if (latencies.length !== n * writes) throw new Error(`received ${latencies.length} of ${n * writes} writes`);
    for (const r of readers) r.destroy();
    // The blocking connections close as the followers end: wait (bounded) for the server to see it.
    await until(async () => (await topo.info()).connected <= before.connected);
    const after = await topo.info();
    const s = summary(latencies);
    return {
      p99: s.p99,
      p50: s.p50,
      max: s.max,
      connections,
      xreadsPerWrite: round((timedTo.xreads - timedFrom.xreads) / (n * writes), 2),
      unblocks: timedTo.unblocks - timedFrom.unblocks,
      connectionsOpened: after.received - before.received,
      connectionsLeft: after.connected - before.connected,
      rssMiB: round((mem1.rss - mem0.rss) / 1048576, 1),
      heapMiB: round((mem1.heapUsed - mem0.heapUsed) / 1048576, 1),
      redisCpuMs: round(redisCpu, 1),
      writes: s.writes,
    };
  } finally {
    internal.shareBlockingReads(true);
    for (const r of readers) r.destroy();
    for (const w of writers) w.destroy();
    writerClient.disconnect();
    readerClient.disconnect();
  }
}

/** One follower of the package and one raw XREAD BLOCK reader, interleaved half an interval apart. */
async function oneRun(ctx, rep, count) {
  const contenders = {
    [ONE]: packageFollower(ctx, `followers-one-${rep}`, { flushInterval: 0 }, true),
    [RAW]: rawFollower(ctx, ctx.rawKey(`followers-one-xread-${rep}`), count),
  };
  const list = Object.values(contenders);
  try {
    for (const c of list) await c.open();
    const t0 = performance.now() + 20;
    await Promise.all(list.map((c, j) => steady(count, INTERVAL_MS, (i) => c.send(i + 1), t0 + (j * INTERVAL_MS) / 2)));
    const out = {};
    for (const [name, c] of Object.entries(contenders)) out[name] = summary(await c.close(count));
    ctx.log(
      `  one follower #${rep + 1}: ${Object.entries(out)
        .map(([k, v]) => `${k} p50=${v.p50} p99=${v.p99}`)
        .join('; ')}`,
    );
    return out;
  } finally {
    for (const c of list) c.destroy();
    await ctx.dropKeys();
  }
}

export async function run(ctx) {
  const n = ctx.quick ? 50 : 1000;
  const writes = ctx.quick ? 4 : 10;
  const reps = ctx.reps(2, 1);
  const oneCount = ctx.quick ? 5 : 24;
  const runs = await alternate(
    reps,
    [
      { name: SHARED, run: (rep) => manyRun(ctx, rep, n, writes, true) },
      { name: ALL_IN_ONE, run: (rep) => manyRun(ctx, rep, n, writes, 'one') },
      { name: PER_FOLLOWER, run: (rep) => manyRun(ctx, rep, n, writes, false) },
    ],
    { after: () => ctx.dropKeys(), log: ctx.log },
  );
  // The same on a cluster of 3 primaries, started for it.
  const servers = await startCluster({ masters: 3, replicas: 0, nodeTimeout: 2000 });
  trackServer(servers, 'cluster (3 shards)');
  const control = new Cluster(servers.seeds);
  control.on('error', () => {});
  track('cluster client (followers)', () => control.disconnect());
  try {
    await control.ping();
    const topo = cluster(control, servers.seeds);
    const clusterRuns = await alternate(
      reps,
      [
        { name: CLUSTER_WATCH, run: (rep) => manyRun(ctx, rep, n, writes, true, topo) },
        { name: CLUSTER_PER_SLOT, run: (rep) => manyRun(ctx, rep, n, writes, 'per-slot', topo) },
      ],
      // Warmed up first: the first run on a fresh cluster (connections, the JIT of the cluster
      // paths) is not the steady state of either design.
      { log: ctx.log, warmup: ctx.warmup },
    );
    Object.assign(runs, clusterRuns);
  } finally {
    control.disconnect();
    await servers.stop();
  }
  runs[ONE] = [];
  runs[RAW] = [];
  for (let rep = 0; rep < reps; rep++) {
    const out = await oneRun(ctx, rep, oneCount);
    for (const [name, s] of Object.entries(out)) runs[name].push(s);
  }
  const med = (name, field) => round(median(runs[name].map((r) => r[field])), 3);
  const many = { runs, contender: SHARED, baseline: PER_FOLLOWER, better: 'lower' };
  const clusterMany = { runs, contender: CLUSTER_WATCH, baseline: CLUSTER_PER_SLOT, better: 'lower' };
  return {
    id,
    title,
    description:
      `${n} files written at once, each ${SIZE} bytes every ${INTERVAL_MS} ms (flushInterval 0 and flush() after ` +
      `each write; the files' writes spread evenly over the interval), ${writes} timed writes per file after one ` +
      `untimed write delivered to every follower; ${n} followers (createRedisReadStream, default options) on one ` +
      `client, the writers on another, in this process. "${SHARED}": the package; "${PER_FOLLOWER}": each ` +
      'follower blocks on a connection of its own (the design before shared reads, switched on for the benchmark ' +
      "only). Per run: p50/p99/max of write-to-delivery in ms over every write; connections = the server's " +
      'connected_clients while following, over the count before the followers were made; connectionsOpened = ' +
      'total_connections_received during the run; connectionsLeft = connected_clients after the followers ended, ' +
      'over the count before; rssMiB / heapMiB = growth of this process from before the followers were made to ' +
      `when all follow; redisCpuMs = the server's CPU time during the timed writes. Then "${ONE}" against ` +
      `"${RAW}": ${oneCount} writes each, interleaved half an interval apart, as in the follow case. The many-follower ` +
      `run again on a Redis Cluster of 3 primaries (no replicas) started by the case, with ioredis Cluster clients: ` +
      `"${CLUSTER_WATCH}" (the package: per primary one blocking connection and one key watch) against ` +
      `"${CLUSTER_PER_SLOT}" (a blocking connection per hash slot with followers, the design before key watches, ` +
      'switched on for the benchmark only); counts and CPU summed over the primaries.',
    params: { followers: n, writeSize: SIZE, intervalMs: INTERVAL_MS, writes, reps, oneFollowerWrites: oneCount },
    unit: 'ms',
    better: 'lower',
    mainField: 'p99',
    contenders: Object.entries(runs).map(([name, r]) => ({ name, runs: r, median: medians(r) })),
    comparisons: [
      compare({
        ...many,
        id: 'followers-connections',
        label: `connections while ${n} follow, shared vs one per follower`,
        field: 'connections',
        extra: { unit: 'connections' },
      }),
      compare({
        ...many,
        id: 'followers-rss',
        label: `RSS growth with ${n} followers, shared vs one per follower`,
        field: 'rssMiB',
        extra: { unit: 'MiB' },
      }),
      compare({
        ...many,
        id: 'followers-p50',
        label: `p50 write-to-delivery, ${n} followers, shared vs one per follower`,
        field: 'p50',
      }),
      compare({
        ...many,
        id: 'followers-p99',
        label: `p99 write-to-delivery, ${n} followers, shared vs one per follower`,
        field: 'p99',
      }),
      compare({
        ...many,
        id: 'followers-redis-cpu',
        label: `Redis CPU, ${n} followers, shared vs one per follower`,
        field: 'redisCpuMs',
        extra: { unit: 'ms CPU' },
      }),
      compare({
        ...many,
        baseline: ALL_IN_ONE,
        id: 'followers-p50-vs-one-connection',
        label: `p50 write-to-delivery, ${n} followers, shared vs one connection for all`,
        field: 'p50',
      }),
      compare({
        ...clusterMany,
        id: 'followers-cluster-connections',
        label: `connections while ${n} follow on 3 primaries, key watch vs a connection per slot`,
        field: 'connections',
        extra: { unit: 'connections' },
      }),
      compare({
        ...clusterMany,
        id: 'followers-cluster-p99',
        label: `p99 write-to-delivery, ${n} followers on 3 primaries, key watch vs a connection per slot`,
        field: 'p99',
      }),
      compare({
        ...clusterMany,
        id: 'followers-cluster-redis-cpu',
        label: `Redis CPU (3 primaries), ${n} followers, key watch vs a connection per slot`,
        field: 'redisCpuMs',
        extra: { unit: 'ms CPU' },
      }),
      difference({
        id: 'followers-one-p99-over-xread',
        label: 'one follower p99 over raw XREAD BLOCK',
        contender: ONE,
        baseline: RAW,
        contenderMedian: med(ONE, 'p99'),
        baselineMedian: med(RAW, 'p99'),
      }),
    ],
  };
}
