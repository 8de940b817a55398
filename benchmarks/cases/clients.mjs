// Case 11, clients: the package on each client library it accepts (ioredis, node-redis, iovalkey),
// each against that client's own raw loops in the same run: write against raw XADD (the write
// case's ceiling: the same chunk size and entries, 16 commands in flight), read against raw XRANGE
// COUNT 16 (the read case's three loops, the fastest one as the ceiling). So a client's ratio says what
// the package costs on it, apart from how fast the client itself is.
//
// BENCH_CLIENTS=ioredis,iovalkey (environment) runs only the clients named.

import { pipeline } from 'node:stream/promises';
import { track } from '../lib/cleanup.mjs';
import { versionOf } from '../lib/machine.mjs';
import {
  alternate,
  compare,
  countingSink,
  KiB,
  MiB,
  medians,
  poolSource,
  rawCommands,
  rawXadd,
  rawXrange,
  throughputContenders,
} from '../lib/util.mjs';
import { rawXrangeAhead, rawXrangeBatches } from './read.mjs';

export const id = 'clients';
export const title = 'Each client library against its own raw loops';

/**
 * The client libraries, each with how to connect one client and the raw loops' commands on it.
 * `open(url)` resolves to `{ client, raws, close }`: `client` is what the package gets, `raws` the
 * ways of sending the raw loops' commands on it (util.mjs rawCommands), each with its `api`; with
 * more than one, each runs as a contender of its own and the faster is the ceiling.
 */
export const CLIENTS = [
  {
    name: 'ioredis',
    package: 'ioredis',
    async open(url) {
      const { Redis } = await import('ioredis');
      return openIoredisLike(new Redis(url));
    },
  },
  {
    name: 'node-redis',
    package: 'redis',
    // Both on a client whose bulk strings are Buffers: sendCommand, whose reply has the shape of
    // ioredis's xrangeBuffer, and the xAdd / xRange helpers (xRange builds an object per entry).
    // Neither was clearly faster on a loaded machine, so both run and the faster is the ceiling.
    async open(url) {
      const { createClient, RESP_TYPES } = await import('redis');
      const client = createClient({ url });
      client.on('error', () => {}); // failures surface through the commands
      await client.connect();
      const buffers = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
      return {
        client,
        raws: [
          {
            api: 'sendCommand',
            names: { XADD: 'sendCommand', XRANGE: 'sendCommand' },
            xadd: (key, id, data, crc) => buffers.sendCommand(['XADD', key, id, 'd', data, 'c', crc]),
            xrange: (key, from, count) => buffers.sendCommand(['XRANGE', key, from, '+', 'COUNT', String(count)]),
            xrangeIds: (key, start, end) => buffers.sendCommand(['XRANGE', key, start, end]),
          },
          {
            api: 'xAdd / xRange',
            names: { XADD: 'xAdd', XRANGE: 'xRange' },
            xadd: (key, id, data, crc) => buffers.xAdd(key, id, { d: data, c: crc }),
            // The raw loops read an entry's id and its second field (the data).
            xrange: async (key, from, count) =>
              (await buffers.xRange(key, from, '+', { COUNT: count })).map((e) => [e.id, ['d', e.message.d]]),
            xrangeIds: async (key, start, end) =>
              (await buffers.xRange(key, start, end)).map((e) => [e.id, ['d', e.message.d]]),
          },
        ],
        close: () => client.destroy(),
      };
    },
  },
  {
    name: 'iovalkey',
    package: 'iovalkey',
    async open(url) {
      const { Redis } = await import('iovalkey');
      return openIoredisLike(new Redis(url));
    },
  },
];

async function openIoredisLike(client) {
  client.on('error', () => {}); // failures surface through the commands
  await client.ping();
  return {
    client,
    raws: [
      {
        api: 'xaddBuffer / xrangeBuffer',
        names: { XADD: 'xaddBuffer', XRANGE: 'xrangeBuffer' },
        ...rawCommands(client),
      },
    ],
    close: () => client.disconnect(),
  };
}

export async function run(ctx) {
  const { pkg, pool, redis } = ctx;
  const size = ctx.quick ? 16 * MiB : 256 * MiB;
  const reps = ctx.reps(5, 1);
  const chunkSize = 256 * KiB;
  const piece = 64 * KiB;
  const inFlight = 16;

  const only = process.env.BENCH_CLIENTS?.split(',').map((s) => s.trim());
  const specs = only ? CLIENTS.filter((c) => only.includes(c.name)) : CLIENTS;
  if (only && specs.length !== only.length) {
    throw new Error(`BENCH_CLIENTS: unknown client in "${only}"; clients: ${CLIENTS.map((c) => c.name).join(', ')}`);
  }
  const clients = [];
  try {
    for (const spec of specs) {
      const opened = await spec.open(ctx.url);
      const untrack = track(`${spec.name} client`, opened.close);
      const close = () => {
        untrack();
        opened.close();
      };
      clients.push({ ...spec, ...opened, close, version: versionOf(spec.package) });
    }
    return await measure();
  } finally {
    for (const c of clients) c.close();
  }

  async function measure() {
    /** A raw loop's contender name: with more than one way to send the commands, which one it is. */
    const rawName = (name, raws, raw, command, loop) =>
      `${name}: raw ${command}${loop ? `, ${loop}` : ''}${raws.length > 1 ? ` (${raw.names[command]})` : ''}`;
    const writers = clients.flatMap(({ name, client, raws }) => [
      {
        name: `${name}: redis-file-stream write`,
        run: (rep) =>
          ctx.timed(async () => {
            const key = `clients-${name}-${rep}`;
            await pipeline(
              poolSource(pool, size, piece),
              pkg.createRedisWriteStream(client, key, { prefix: ctx.prefix, chunkSize }),
            );
            const st = await pkg.stat(client, key, { prefix: ctx.prefix });
            if (st.state !== 'complete') throw new Error(`file is ${st.state}`);
            return st.size;
          }, size),
      },
      ...raws.map((raw, i) => ({
        name: rawName(name, raws, raw, 'XADD'),
        run: (rep) =>
          ctx.timed(async () => {
            const key = ctx.rawKey(`clients-xadd-${name}-${i}-${rep}`);
            await rawXadd(raw, key, pool, size, chunkSize, inFlight);
            const n = await redis.xlen(key);
            if (n !== size / chunkSize) throw new Error(`raw stream has ${n} entries`);
            return size;
          }, size),
      })),
    ]);
    const runs = await alternate(reps, writers, { after: () => ctx.dropKeys(), log: ctx.log, warmup: ctx.warmup });

    // Every client reads the same two streams: a package file and a raw stream of the same entries.
    const fileKey = 'clients-read-file';
    const rawKey = ctx.rawKey('clients-read-raw');
    await pipeline(
      poolSource(pool, size),
      pkg.createRedisWriteStream(redis, fileKey, { prefix: ctx.prefix, chunkSize }),
    );
    await rawXadd(redis, rawKey, pool, size, chunkSize, inFlight);
    const readers = clients.flatMap(({ name, client, raws }) => [
      {
        name: `${name}: redis-file-stream read`,
        run: () =>
          ctx.timed(async () => {
            const sink = countingSink();
            await pipeline(pkg.createRedisReadStream(client, fileKey, { prefix: ctx.prefix }), sink);
            return sink.bytes;
          }, size),
      },
      ...raws.flatMap((raw) => [
        {
          name: rawName(name, raws, raw, 'XRANGE'),
          run: () => ctx.timed(() => rawXrangeAhead(raw, rawKey, 16), size),
        },
        {
          name: rawName(name, raws, raw, 'XRANGE', '1 at a time'),
          run: () => ctx.timed(() => rawXrange(raw, rawKey, 16), size),
        },
        {
          name: rawName(name, raws, raw, 'XRANGE', '2 batches in flight'),
          run: () => ctx.timed(() => rawXrangeBatches(raw, rawKey, 16, 2), size),
        },
      ]),
    ]);
    Object.assign(runs, await alternate(reps, readers, { log: ctx.log, warmup: ctx.warmup }));
    await ctx.dropKeys();

    const comparisons = [];
    const table = [];
    // The ceiling of each: the fastest of its raw loops in this run (median MiB/s).
    const fastest = (candidates) =>
      candidates.reduce((a, b) => (medians(runs[b.name]).mibps > medians(runs[a.name]).mibps ? b : a));
    for (const { name, version, raws } of clients) {
      const rawWrite = fastest(raws.map((raw) => ({ name: rawName(name, raws, raw, 'XADD'), api: raw.names.XADD })));
      const rawRead = fastest(
        raws.flatMap((raw) => [
          { name: rawName(name, raws, raw, 'XRANGE'), api: raw.names.XRANGE, loop: 'next batch ahead' },
          { name: rawName(name, raws, raw, 'XRANGE', '1 at a time'), api: raw.names.XRANGE, loop: '1 at a time' },
          {
            name: rawName(name, raws, raw, 'XRANGE', '2 batches in flight'),
            api: raw.names.XRANGE,
            loop: '2 batches in flight',
          },
        ]),
      );
      const write = compare({
        id: `clients-${name}-write`,
        label: `${name}: write vs raw XADD`,
        runs,
        contender: `${name}: redis-file-stream write`,
        baseline: rawWrite.name,
        field: 'mibps',
        target: { op: '>=', value: 0.9, on: 'ratio', text: `>= 0.9x ${name} raw XADD` },
      });
      const read = compare({
        id: `clients-${name}-read`,
        label: `${name}: read vs raw XRANGE`,
        runs,
        contender: `${name}: redis-file-stream read`,
        baseline: rawRead.name,
        field: 'mibps',
        target: { op: '>=', value: 0.9, on: 'ratio', text: `>= 0.9x ${name} raw XRANGE` },
      });
      comparisons.push(write, read);
      table.push({
        client: name,
        version,
        rawApis: raws.map((raw) => raw.api),
        rawWriteApi: rawWrite.api,
        rawReadApi: rawRead.api,
        write: write.contenderMedian,
        rawWrite: write.baselineMedian,
        writeRatio: write.ratio,
        writeRuns: runs[write.contender].map((r) => r.mibps),
        rawWriteRuns: runs[write.baseline].map((r) => r.mibps),
        read: read.contenderMedian,
        rawRead: read.baselineMedian,
        rawReadLoop: rawRead.loop,
        readRatio: read.ratio,
        readRuns: runs[read.contender].map((r) => r.mibps),
        rawReadRuns: runs[read.baseline].map((r) => r.mibps),
      });
    }

    return {
      id,
      title,
      description:
        `Each client library the package accepts (${clients.map((c) => `${c.name} ${c.version}`).join(', ')}), one ` +
        `client of each on the same server, all contenders alternated in one run. Write: ${size / MiB} MiB from ` +
        `an in-memory source of ${piece / KiB} KiB buffers through createRedisWriteStream (defaults, chunkSize ` +
        `${chunkSize / KiB} KiB), against that client's raw XADD loop (the write case's: ${chunkSize / KiB} KiB ` +
        `entries with explicit ids in the package's layout, ${inFlight} commands in flight). Read: a ` +
        `${size / MiB} MiB file through createRedisReadStream (defaults) into a sink that discards the bytes, ` +
        `against that client's raw XRANGE COUNT 16 loops on a raw stream of the same entries (next batch ahead, ` +
        `1 at a time, and 2 batches in flight). Raw loops: ioredis and iovalkey xaddBuffer / xrangeBuffer; node-redis on a client ` +
        `with withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }) (RESP3, its default), both with ` +
        `sendCommand and with the xAdd / xRange helpers. The ceiling of each client is the fastest of its raw ` +
        `loops, named in its table.`,
      params: { size, chunkSize, sourcePiece: piece, reps, rawInFlight: inFlight, readCount: 16 },
      clients: table,
      ...throughputContenders(runs),
      comparisons,
    };
  }
}
