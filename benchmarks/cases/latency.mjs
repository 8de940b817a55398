// Case 9, latency: the package across a network, simulated by a delaying TCP proxy (a process of
// its own, lib/delay-proxy.mjs) between the clients and the private redis-server, both on
// loopback. At each round trip time (1, 5 and 20 ms; the proxy calibrated so that a PING through
// it takes that long, no bandwidth limit, order kept), through the proxy:
//
// - write and read of a 64 MiB file with the default options, against the raw loops at the
//   package's window (16 XADDs of 256 KiB in flight; an XRANGE batch of 16 asked for as soon as
//   the previous one arrives) and at other windows (XADDs 16 to 128 in flight; 1 to 8 XRANGE
//   batches in flight, each naming its range by the known entry ids): the best of them is the
//   ceiling at that RTT;
// - follow latency: 100 bytes then flush() (flushInterval 0) to a following reader, against XADD
//   and a reader in XREAD BLOCK;
// - round trips of a 1-byte file: the request bursts the proxy sees (client-to-server traffic
//   after a quiet gap of half the RTT), and the time in RTTs, to write one and to read it;
// - round trips per 1 KiB file through a channel: sendFiles alone, and a receiver alone (reading
//   and acknowledging each file), the proxy's request bursts divided by the files;
// - 1 KiB files per second: written one after another, sent through a channel (sendFiles, and a
//   receiver reading and acknowledging each file), against N XADDs pipelined.
//
// Quick mode: RTT 5 ms only, 8 MiB, two windows of each kind, a few writes and files.

import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { track } from '../lib/cleanup.mjs';
import { calibrate, pingSummary, pingTimes, startDelayProxy } from '../lib/latency-proxy.mjs';
import { loadavg } from '../lib/machine.mjs';
import {
  alternate,
  bestOf,
  compare,
  countingSink,
  KiB,
  MiB,
  median,
  medians,
  now,
  poolSource,
  rawXadd,
  round,
} from '../lib/util.mjs';
import { packageFollower, rawFollower, steady, summary } from './follow.mjs';
import { rawXrangeAhead, rawXrangeBatches } from './read.mjs';

export const id = 'latency';
export const title = 'Across a network: through a delaying proxy at RTT 1, 5 and 20 ms';

const CHUNK = 256 * KiB;
/** The package's defaults the fixed-window raw loops copy: its floor of pieces in flight, and readAhead. */
const WINDOW = 16;
const PKG = 'redis-file-stream';
const CHANNEL = 'redis-file-stream, channel';
const RAW_AHEAD = 'raw XRANGE, next batch ahead';
const RAW_FOLLOW = 'raw XREAD BLOCK';
const SMALL = 1 * KiB;

const rawWrite = (w) => `raw XADD, ${w} in flight`;
const rawRead = (d) => `raw XRANGE, ${d} batch${d === 1 ? '' : 'es'} in flight`;

function planOf(ctx) {
  if (ctx.quick) {
    return {
      rtts: [5],
      size: 8 * MiB,
      windows: [16, 64],
      depths: [1, 4],
      reps: ctx.reps(5, 1),
      followWrites: 5,
      followIntervalMs: 100,
      roundTripReps: ctx.reps(5, 1),
      files: 5,
      fileReps: ctx.reps(3, 1),
      pings: 20,
    };
  }
  return {
    rtts: [1, 5, 20],
    size: 64 * MiB,
    windows: [16, 32, 64, 128],
    depths: [1, 2, 4, 8],
    reps: ctx.reps(5, 1),
    followWrites: 30,
    followIntervalMs: 200,
    roundTripReps: ctx.reps(5, 1),
    files: 50,
    fileReps: ctx.reps(3, 1),
    pings: 40,
  };
}

/** Resolves on the stream's 'finish', rejects on its 'error'. */
function finishOf(stream) {
  return new Promise((resolve, reject) => {
    stream.once('finish', resolve);
    stream.once('error', reject);
  });
}

const hexCrc = (buf) => crc32(buf).toString(16).padStart(8, '0');

// ---------------------------------------------------------------------------------------------
// The sections, at one RTT. Each returns { [contender name]: runs[] }.

async function writeSection(ctx, plan, at, client) {
  const { pkg, pool } = ctx;
  const { size } = plan;
  const contenders = [
    {
      name: at.name('write', PKG),
      run: async (rep) => {
        const key = `latency-write-${at.rtt}-${rep}`;
        const result = await ctx.timed(async () => {
          await pipeline(poolSource(pool, size), pkg.createRedisWriteStream(client, key, { prefix: ctx.prefix }));
          return size;
        }, size);
        const st = await pkg.stat(ctx.redis, key, { prefix: ctx.prefix });
        if (st.state !== 'complete' || st.size !== size) {
          throw new Error(`the file is ${st.state} with ${st.size} bytes`);
        }
        return result;
      },
    },
    ...plan.windows.map((w) => ({
      name: at.name('write', rawWrite(w)),
      run: async (rep) => {
        const key = ctx.rawKey(`latency-xadd-${at.rtt}-${w}-${rep}`);
        const result = await ctx.timed(() => rawXadd(client, key, pool, size, CHUNK, w), size);
        const n = await ctx.redis.xlen(key);
        if (n !== size / CHUNK) throw new Error(`the raw stream has ${n} entries`);
        return result;
      },
    })),
  ];
  return alternate(plan.reps, contenders, { after: () => ctx.dropKeys(), log: ctx.log, warmup: ctx.warmup });
}

async function readSection(ctx, plan, at, client) {
  const { pkg, pool } = ctx;
  const { size } = plan;
  const fileKey = `latency-read-${at.rtt}`;
  const rawKey = ctx.rawKey(`latency-read-${at.rtt}`);
  // Stored without the proxy: only the reads are measured.
  await pipeline(poolSource(pool, size), pkg.createRedisWriteStream(ctx.redis, fileKey, { prefix: ctx.prefix }));
  await rawXadd(ctx.redis, rawKey, pool, size, CHUNK, WINDOW);
  const contenders = [
    {
      name: at.name('read', PKG),
      run: () =>
        ctx.timed(async () => {
          const sink = countingSink();
          await pipeline(pkg.createRedisReadStream(client, fileKey, { prefix: ctx.prefix }), sink);
          return sink.bytes;
        }, size),
    },
    { name: at.name('read', RAW_AHEAD), run: () => ctx.timed(() => rawXrangeAhead(client, rawKey, WINDOW), size) },
    ...plan.depths.map((d) => ({
      name: at.name('read', rawRead(d)),
      run: () => ctx.timed(() => rawXrangeBatches(client, rawKey, WINDOW, d), size),
    })),
  ];
  try {
    return await alternate(plan.reps, contenders, { log: ctx.log, warmup: ctx.warmup });
  } finally {
    await ctx.dropKeys();
  }
}

/** The two followers of the follow case, interleaved half an interval apart, through the proxy. */
async function followSection(ctx, plan, at, client) {
  const count = plan.followWrites;
  const through = { ...ctx, redis: client };
  const followers = {
    [at.name('follow', PKG)]: packageFollower(through, `latency-follow-${at.rtt}`, { flushInterval: 0 }, true),
    [at.name('follow', RAW_FOLLOW)]: rawFollower(through, ctx.rawKey(`latency-follow-${at.rtt}`), count),
  };
  const list = Object.values(followers);
  try {
    for (const f of list) await f.open();
    const t0 = performance.now() + 20;
    const slot = plan.followIntervalMs / list.length;
    await Promise.all(list.map((f, j) => steady(count, plan.followIntervalMs, (i) => f.send(i + 1), t0 + j * slot)));
    const out = {};
    for (const [name, f] of Object.entries(followers)) {
      const latencies = await f.close(count);
      out[name] = [{ ...summary(latencies), latenciesMs: latencies.map((x) => round(x, 2)) }];
    }
    const figures = Object.entries(out).map(([n, [s]]) => `${n} p50=${s.p50} p99=${s.p99}`);
    ctx.log(`  follow at RTT ${at.rtt} ms: ${figures.join('; ')}`);
    return out;
  } finally {
    for (const f of list) f.destroy();
    await ctx.dropKeys();
  }
}

/**
 * Runs `fn` between a mark and a count of the proxy: its request bursts (and when each began, ms
 * after the mark), the exchanges (requests sent after a reply reached the client: the same count
 * without a clock), its time, that time in RTTs.
 */
async function counted(at, fn) {
  await at.proxy.mark();
  const t0 = now();
  await fn();
  const ms = now() - t0;
  const { bursts, exchanges, burstsAtMs } = await at.proxy.count();
  return { roundTrips: bursts, exchanges, ms: round(ms, 3), rtts: round(ms / at.pingMs, 3), burstsAtMs };
}

async function roundTripSection(ctx, plan, at, client) {
  const { pkg } = ctx;
  const one = Buffer.from('x');
  const piece = ['d', one, 'c', hexCrc(one)];
  const writes = await alternate(
    plan.roundTripReps,
    [
      {
        name: at.name('1-byte write', PKG),
        run: (rep) =>
          counted(at, async () => {
            const ws = pkg.createRedisWriteStream(client, `latency-one-${at.rtt}-${rep}`, { prefix: ctx.prefix });
            const done = finishOf(ws);
            ws.end(one);
            await done;
          }),
      },
      {
        name: at.name('1-byte write', 'raw XADD'),
        run: (rep) => counted(at, () => client.xadd(ctx.rawKey(`latency-one-${at.rtt}-${rep}`), '0-2', ...piece)),
      },
    ],
    { after: () => ctx.dropKeys(), log: ctx.log, warmup: ctx.warmup },
  );
  const fileKey = `latency-one-${at.rtt}`;
  const rawKey = ctx.rawKey(`latency-one-${at.rtt}`);
  const ws = pkg.createRedisWriteStream(ctx.redis, fileKey, { prefix: ctx.prefix });
  const done = finishOf(ws);
  ws.end(one);
  await done;
  await ctx.redis.xadd(rawKey, '0-2', ...piece);
  try {
    const reads = await alternate(
      plan.roundTripReps,
      [
        {
          name: at.name('1-byte read', PKG),
          run: () =>
            counted(at, async () => {
              const sink = countingSink();
              await pipeline(pkg.createRedisReadStream(client, fileKey, { prefix: ctx.prefix }), sink);
              if (sink.bytes !== 1) throw new Error(`read ${sink.bytes} bytes of a 1-byte file`);
            }),
        },
        {
          name: at.name('1-byte read', 'raw XRANGE'),
          run: () =>
            counted(at, async () => {
              const entries = await client.xrangeBuffer(rawKey, '-', '+');
              if (entries.length !== 1) throw new Error(`the raw stream has ${entries.length} entries`);
            }),
        },
      ],
      { log: ctx.log, warmup: ctx.warmup },
    );
    return { ...writes, ...reads };
  } finally {
    await ctx.dropKeys();
  }
}

/**
 * Round trips per 1 KiB file through a channel, each side on its own: `sendFiles` of the files (no
 * receiver running), and a receiver that reads and acknowledges them all (sent beforehand without
 * the proxy, the channel closed), counted by the proxy and divided by the number of files.
 */
async function channelRoundTripSection(ctx, plan, at, client) {
  const { pkg, pool } = ctx;
  const { files } = plan;
  const buf = pool.subarray(0, SMALL);
  const list = (prefix) =>
    Array.from({ length: files }, (_, i) => ({
      name: `${prefix}-${i}`,
      stream: poolSource(buf, buf.length),
      size: SMALL,
    }));
  const perFile = (r) => ({
    ...r,
    roundTrips: round(r.roundTrips / files, 3),
    exchanges: round(r.exchanges / files, 3),
  });
  const channel = (side, rep) => `latency-channel-rtt-${at.rtt}-${side}-${rep}`;
  return alternate(
    plan.roundTripReps,
    [
      {
        name: at.name('channel, per file', 'send'),
        run: async (rep) =>
          perFile(
            await counted(at, () => pkg.sendFiles(client, channel('send', rep), list('f'), { prefix: ctx.prefix })),
          ),
      },
      {
        name: at.name('channel, per file', 'receive'),
        run: async (rep) => {
          const name = channel('receive', rep);
          await pkg.sendFiles(ctx.redis, name, list('f'), { prefix: ctx.prefix });
          await pkg.closeChannel(ctx.redis, name, { prefix: ctx.prefix });
          let n = 0;
          const r = await counted(at, async () => {
            for await (const file of pkg.receiveFiles(client, name, { prefix: ctx.prefix, consumer: 'bench' })) {
              const sink = countingSink();
              await pipeline(file.stream, sink);
              if (sink.bytes !== SMALL) throw new Error(`received ${sink.bytes} bytes of ${file.name}`);
              await file.ack();
              n++;
            }
          });
          if (n !== files) throw new Error(`received ${n} files of ${files}`);
          return perFile(r);
        },
      },
    ],
    { after: () => ctx.dropKeys(), log: ctx.log, warmup: ctx.warmup },
  );
}

/**
 * A channel run: a receiver (reading and acknowledging every file) started first and primed with
 * one file, then `files` files sent with one sendFiles call; timed until the receiver has
 * acknowledged the last one.
 */
async function channelRun(ctx, plan, at, rep, sender, receiver, buf) {
  const { pkg } = ctx;
  const channel = `latency-channel-${at.rtt}-${rep}`;
  const stop = new AbortController();
  let onPrimer;
  const primed = new Promise((resolve) => (onPrimer = resolve));
  const receiving = (async () => {
    let n = 0;
    const options = { prefix: ctx.prefix, consumer: 'bench', signal: stop.signal };
    for await (const file of pkg.receiveFiles(receiver, channel, options)) {
      const sink = countingSink();
      await pipeline(file.stream, sink);
      if (sink.bytes !== buf.length) throw new Error(`received ${sink.bytes} bytes of ${file.name}`);
      await file.ack();
      if (n++ === 0) onPrimer();
      else if (n === plan.files + 1) return now();
    }
    throw new Error(`the channel ended after ${n} files`);
  })();
  receiving.catch(() => {}); // awaited below
  const file = (name) => ({ name, stream: poolSource(buf, buf.length), size: buf.length });
  try {
    await pkg.sendFiles(sender, channel, [file('primer')], { prefix: ctx.prefix });
    await Promise.race([primed, receiving]);
    const t0 = now();
    const files = Array.from({ length: plan.files }, (_, i) => file(`file-${i}`));
    await pkg.sendFiles(sender, channel, files, { prefix: ctx.prefix });
    const ms = (await receiving) - t0;
    return { filesPerSecond: round(plan.files / (ms / 1000), 2), ms: round(ms, 2) };
  } finally {
    stop.abort();
  }
}

async function smallFilesSection(ctx, plan, at, clients) {
  const { pkg, pool } = ctx;
  const { files } = plan;
  const buf = pool.subarray(0, SMALL);
  const piece = ['d', buf, 'c', hexCrc(buf)];
  const perSecond = async (fn) => {
    const t0 = now();
    await fn();
    const ms = now() - t0;
    return { filesPerSecond: round(files / (ms / 1000), 2), ms: round(ms, 2) };
  };
  const key = (rep, i) => `latency-small-${at.rtt}-${rep}-${i}`;
  return alternate(
    plan.fileReps,
    [
      {
        name: at.name('1 KiB files', PKG),
        run: (rep) =>
          perSecond(async () => {
            for (let i = 0; i < files; i++) {
              const ws = pkg.createRedisWriteStream(clients.main, key(rep, i), { prefix: ctx.prefix });
              const done = finishOf(ws);
              ws.end(buf);
              await done;
            }
          }),
      },
      {
        name: at.name('1 KiB files', CHANNEL),
        run: (rep) => channelRun(ctx, plan, at, rep, clients.sender, clients.receiver, buf),
      },
      {
        name: at.name('1 KiB files', 'raw XADD, pipelined'),
        run: (rep) =>
          perSecond(async () => {
            const batch = clients.main.pipeline();
            for (let i = 0; i < files; i++) batch.xadd(ctx.rawKey(key(rep, i)), '0-2', ...piece);
            for (const [err] of await batch.exec()) if (err) throw err;
          }),
      },
      {
        name: at.name('1 KiB files', 'raw XADD, one after another'),
        run: (rep) =>
          perSecond(async () => {
            for (let i = 0; i < files; i++) await clients.main.xadd(ctx.rawKey(key(rep, i)), '0-2', ...piece);
          }),
      },
    ],
    { after: () => ctx.dropKeys(), log: ctx.log, warmup: ctx.warmup },
  );
}

// ---------------------------------------------------------------------------------------------

/** How each section's contenders are measured, for the results and the report. */
const SECTIONS = {
  write: { unit: 'MiB/s', mainField: 'mibps', better: 'higher' },
  read: { unit: 'MiB/s', mainField: 'mibps', better: 'higher' },
  follow: { unit: 'ms', mainField: 'p50', better: 'lower' },
  '1-byte write': { unit: 'round trips', mainField: 'roundTrips', better: 'lower' },
  '1-byte read': { unit: 'round trips', mainField: 'roundTrips', better: 'lower' },
  'channel, per file': { unit: 'round trips', mainField: 'roundTrips', better: 'lower' },
  '1 KiB files': { unit: 'files/s', mainField: 'filesPerSecond', better: 'higher' },
};

/** The contender of `runs` (names) with the best median `field`. */
/** A measured count against a bound (round trips), as a comparison of its own kind. */
function figureOf({ id, label, runs, contender, field, unit, target }) {
  const value = round(median(runs[contender].map((r) => r[field])), 3);
  const all = runs[contender].map((r) => r[field]);
  const result = { id, label, kind: 'value', contender, field, unit, better: 'lower', value, runs: all };
  if (target) Object.assign(result, { target, met: value <= target.value });
  return result;
}

function comparisonsAt(rtt, plan, runs, name, described) {
  // The targets of issue 14 are set at an RTT of 20 ms.
  const at20 = rtt === 20;
  const target = (op, value, on, text) => (at20 ? { op, value, on, text: `RTT 20 ms: ${text}` } : undefined);
  const out = [];
  const bestWrite = bestOf(
    runs,
    plan.windows.map((w) => name('write', rawWrite(w))),
    'mibps',
  );
  const bestRead = bestOf(
    runs,
    [RAW_AHEAD, ...plan.depths.map(rawRead)].map((n) => name('read', n)),
    'mibps',
  );
  const short = (full) => described.get(full).label;
  const ratio = (fields) => compare({ runs, field: 'mibps', extra: { unit: 'MiB/s' }, ...fields });
  out.push(
    ratio({
      id: `latency-${rtt}-write-vs-best`,
      label: `RTT ${rtt} ms: write vs the best raw XADD (${short(bestWrite)})`,
      contender: name('write', PKG),
      baseline: bestWrite,
      target: target('>=', 0.9, 'ratio', 'write >= 0.9x the best raw XADD'),
    }),
    ratio({
      id: `latency-${rtt}-write-vs-same-window`,
      label: `RTT ${rtt} ms: write vs ${rawWrite(WINDOW)} (the fixed window)`,
      contender: name('write', PKG),
      baseline: name('write', rawWrite(WINDOW)),
    }),
    ratio({
      id: `latency-${rtt}-read-vs-best`,
      label: `RTT ${rtt} ms: read vs the best raw XRANGE (${short(bestRead)})`,
      contender: name('read', PKG),
      baseline: bestRead,
      target: target('>=', 0.9, 'ratio', 'read >= 0.9x the best raw XRANGE'),
    }),
    ratio({
      id: `latency-${rtt}-read-vs-same-window`,
      label: `RTT ${rtt} ms: read vs ${RAW_AHEAD} (the fixed window)`,
      contender: name('read', PKG),
      baseline: name('read', RAW_AHEAD),
    }),
  );
  for (const p of ['p50', 'p99']) {
    out.push(
      compare({
        id: `latency-${rtt}-follow-${p}`,
        label: `RTT ${rtt} ms: follow ${p}, flush() per write, vs raw XREAD BLOCK`,
        runs,
        contender: name('follow', PKG),
        baseline: name('follow', RAW_FOLLOW),
        field: p,
        extra: { unit: 'ms' },
        better: 'lower',
        // "No worse than raw XREAD BLOCK", with room for the jitter of one run of a few dozen writes.
        target: p === 'p50' ? target('<=', 1.1, 'ratio', 'follow p50 <= 1.1x raw XREAD BLOCK') : undefined,
      }),
    );
  }
  out.push(
    figureOf({
      id: `latency-${rtt}-one-byte-write`,
      label: `RTT ${rtt} ms: round trips to write a 1-byte file (request bursts)`,
      runs,
      contender: name('1-byte write', PKG),
      field: 'roundTrips',
      unit: 'round trips',
      target: target('<=', 2, 'value', 'a 1-byte file written in <= 2 round trips'),
    }),
    figureOf({
      id: `latency-${rtt}-one-byte-read`,
      label: `RTT ${rtt} ms: round trips to read a 1-byte file (request bursts)`,
      runs,
      contender: name('1-byte read', PKG),
      field: 'roundTrips',
      unit: 'round trips',
      target: target('<=', 1, 'value', 'a 1-byte file read in <= 1 round trip'),
    }),
  );
  for (const side of ['send', 'receive']) {
    out.push(
      figureOf({
        id: `latency-${rtt}-channel-${side}-per-file`,
        label: `RTT ${rtt} ms: round trips per 1 KiB file through a channel, ${side} (request bursts / files)`,
        runs,
        contender: name('channel, per file', side),
        field: 'roundTrips',
        unit: 'round trips',
      }),
    );
  }
  for (const c of [PKG, CHANNEL]) {
    out.push(
      compare({
        id: `latency-${rtt}-small-files-${c === PKG ? 'write' : 'channel'}`,
        label:
          `RTT ${rtt} ms: 1 KiB files/s, ${c === PKG ? 'written one after another' : 'through a channel'}, ` +
          'vs raw XADD pipelined',
        runs,
        contender: name('1 KiB files', c),
        baseline: name('1 KiB files', 'raw XADD, pipelined'),
        field: 'filesPerSecond',
        extra: { unit: 'files/s' },
      }),
    );
  }
  return { comparisons: out, bestWrite: short(bestWrite), bestRead: short(bestRead) };
}

export async function run(ctx) {
  const plan = planOf(ctx);
  const proxy = await startDelayProxy(ctx.url);
  const clients = {};
  const untrack = track('latency case clients', () => {
    for (const c of Object.values(clients)) c.disconnect();
  });
  const runs = {};
  /** Every contender's name -> { rtt, section, label }. */
  const described = new Map();
  const atRtts = [];
  const comparisons = [];
  try {
    for (const role of ['main', 'sender', 'receiver']) {
      clients[role] = ctx.redis.duplicate({ host: '127.0.0.1', port: proxy.port });
      clients[role].on('error', () => {}); // failures surface through the commands
      await clients[role].ping();
    }
    for (const rtt of plan.rtts) {
      const calibration = await calibrate(proxy, clients.main, rtt, { pings: plan.pings, log: ctx.log });
      ctx.log(`  RTT ${rtt} ms: one-way delay ${calibration.oneWayMs} ms, PING p50 ${calibration.ping.p50} ms`);
      const name = (section, label) => {
        const full = `RTT ${rtt} ms, ${section}: ${label}`;
        described.set(full, { rtt, section, label });
        return full;
      };
      const at = { rtt, proxy, name, pingMs: calibration.ping.p50 };
      const found = {};
      const load = loadavg();
      for (const [section, fn] of [
        ['write', writeSection],
        ['read', readSection],
        ['follow', followSection],
        ['round trips', roundTripSection],
        ['channel round trips', channelRoundTripSection],
        ['1 KiB files', smallFilesSection],
      ]) {
        ctx.log(`  RTT ${rtt} ms: ${section}`);
        Object.assign(found, await fn(ctx, plan, at, section === '1 KiB files' ? clients : clients.main));
      }
      Object.assign(runs, found);
      // The calibration still holds after the load of the measurements?
      const pingAfter = pingSummary(await pingTimes(clients.main, plan.pings));
      const { comparisons: cmps, bestWrite, bestRead } = comparisonsAt(rtt, plan, found, name, described);
      comparisons.push(...cmps);
      atRtts.push({ ...calibration, pingAfter, bestWrite, bestRead, loadavgAtStart: load, loadavgAtEnd: loadavg() });
    }
  } finally {
    for (const c of Object.values(clients)) c.disconnect();
    untrack();
    await proxy.stop();
  }

  const p = plan;
  const nRuns = (n) => `${n} run${n === 1 ? '' : 's'}`;
  return {
    id,
    title,
    description:
      `Every client connects through a delaying TCP proxy (benchmarks/lib/delay-proxy.mjs, a process of its own on ` +
      `127.0.0.1): each chunk, either way, is released at its arrival + the one-way delay, in order, without ` +
      `a bandwidth limit; the delay is calibrated so that the median PING through the proxy takes the RTT ` +
      `(${p.pings} PINGs a try). Write and read: files of ${p.size / MiB} MiB in ${CHUNK / KiB} KiB chunks, ` +
      `createRedisWriteStream / createRedisReadStream with the default options (windows sized to the link: at ` +
      `least ${WINDOW} pieces in flight and two batches of ${WINDOW} read ahead, at most 32 MiB of pieces and 16 MiB read ahead), against raw ` +
      `XADD loops of the same ${CHUNK / KiB} KiB format 2 pieces (d <bytes> c <crc>) with ` +
      `${p.windows.join(', ')} commands in flight and raw XRANGE loops of ${WINDOW}-entry batches: ` +
      `"next batch ahead" asks for the next batch when one arrives (with ${WINDOW} in flight for writes, the fixed ` +
      `window the package had before its windows followed the link), "N batches in flight" names each ` +
      `batch's range by the known ids (N = ${p.depths.join(', ')}); ${nRuns(p.reps)} of each, alternated. Follow: ` +
      `${p.followWrites} writes of 100 bytes every ${p.followIntervalMs} ms, flushInterval 0 and flush() after ` +
      `each, to a following reader, against XADD and a reader in XREAD BLOCK, the two interleaved. 1-byte file: ` +
      `request bursts the proxy sees (client-to-server bytes after a quiet gap longer than half the RTT, ` +
      `one per round trip) from the stream's creation to 'finish' (write) or 'end' (read), and that time in ` +
      `calibrated RTTs; ${nRuns(p.roundTripReps)} of each. Channel round trips: the bursts of one sendFiles of ` +
      `${p.files} files of 1 KiB (no receiver running), and of a receiver reading and acknowledging them all ` +
      `(sent beforehand without the proxy, the channel closed), divided by ${p.files}. 1 KiB files: ` +
      `${p.files} files written one after another (each createRedisWriteStream, end(), 'finish'), or sent ` +
      `with one sendFiles call to a receiver that reads and acknowledges each (timed until the last ack; the ` +
      `receiver started and primed with one file first), against ${p.files} XADDs of a 1 KiB piece pipelined ` +
      `in one go, and one after another; ` +
      `${nRuns(p.fileReps)} of each, alternated.`,
    params: {
      rttsMs: p.rtts,
      size: p.size,
      chunkSize: CHUNK,
      window: WINDOW,
      rawWriteWindows: p.windows,
      rawReadDepths: p.depths,
      reps: p.reps,
      follow: { writes: p.followWrites, writeSize: 100, intervalMs: p.followIntervalMs },
      oneByteFileReps: p.roundTripReps,
      smallFiles: { files: p.files, fileSize: SMALL, reps: p.fileReps },
      pingsPerCalibrationTry: p.pings,
    },
    latency: { rtts: atRtts },
    unit: 'MiB/s',
    better: 'higher',
    mainField: 'mibps',
    contenders: Object.entries(runs).map(([n, r]) => {
      const { rtt, section, label } = described.get(n);
      return { name: n, rttMs: rtt, section, label, ...SECTIONS[section], runs: r, median: medians(r) };
    }),
    comparisons,
  };
}
