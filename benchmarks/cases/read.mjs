// Case 2, read: createRedisReadStream on a complete file against raw XRANGE batches of 16 entries
// (three loops: the next batch requested while one is consumed, one request at a time, and two
// batches in flight, as the package keeps on loopback; the fastest is the ceiling), against the
// two-batches loop checking each entry's CRC-32, alone and handing its Buffers to a Readable (no
// ceilings: what the check costs, and the least a checked stream does), against the one-at-a-time
// loop handing its Buffers to a Readable (no ceiling: the cost of stream delivery alone), and
// against redis-rstream with its default options (GETRANGE of the stream's
// highWaterMark at a time) reading the same bytes from a string key.

import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import redisRStream from 'redis-rstream';
import {
  alternate,
  bestOf,
  compare,
  countingSink,
  importBuiltInternal,
  KiB,
  MiB,
  poolSource,
  rawCommands,
  rawXadd,
  rawXrange,
  throughputContenders,
} from '../lib/util.mjs';

export const id = 'read';
export const title = 'Read a complete file from Redis';

/** The two-batches loop checking every entry's CRC-32, as the package checks a piece. */
const CHECKED = 'raw XRANGE checked (2 batches in flight)';
/** The same, its Buffers pushed into a Readable piped into the sink: the least a checked stream does. */
const CHECKED_STREAM = 'raw XRANGE checked into a Readable (2 batches in flight)';

/**
 * A raw read: XRANGE COUNT `count`, and the next batch asked for as soon as a full batch arrives
 * (two requests in flight at most; the package's pattern before it kept two batches ahead).
 * `redis`: a client or the commands of one (rawCommands).
 */
export async function rawXrangeAhead(redis, key, count = 16) {
  const { xrange } = rawCommands(redis);
  let bytes = 0;
  const range = (from) => xrange(key, from, count);
  let pending = range('-');
  for (;;) {
    const entries = await pending;
    if (entries.length === count) pending = range(`(${entries[entries.length - 1][0].toString()}`);
    for (const [, fields] of entries) bytes += fields[1].length;
    if (entries.length < count) return bytes;
  }
}

/**
 * XRANGE batches of `count` entries of a raw stream whose entries have the ids `<n>-2`, by those
 * known ids: batch b is `XRANGE key <b*count> <b*count + count - 1>`, `depth` of them requested
 * without waiting for the ones before them. Yields each batch's entries in order; the next batch
 * is requested once the one yielded was consumed (`depth` in flight while none is consumed).
 */
async function* xrangeBatches(redis, key, count, depth) {
  const { xrangeIds } = rawCommands(redis);
  let next = 0;
  let ended = false;
  const batch = (b) => xrangeIds(key, String(b * count), String(b * count + count - 1));
  const inFlight = [];
  for (let i = 0; i < depth; i++) inFlight.push(batch(next++));
  while (inFlight.length > 0) {
    const entries = await inFlight.shift();
    yield entries;
    if (entries.length < count) ended = true;
    if (!ended) inFlight.push(batch(next++));
  }
}

/** An entry's bytes, once their CRC-32 (`crc32`, when given) matches the one stored with them (`c`, 8 hex digits). */
function checked(id, fields, crc32) {
  if (crc32 !== undefined && crc32(fields[1]) !== Number.parseInt(fields[3].toString('latin1'), 16)) {
    throw new Error(`entry ${id} does not match its CRC-32`);
  }
  return fields[1];
}

/**
 * The raw read at `depth` XRANGE batches of `count` in flight ({@link xrangeBatches}). With
 * `crc32` (the package's implementation), each entry's bytes are checked against the CRC-32 stored
 * with them, as the package checks a piece: the loop then does the one piece of work a checked
 * read cannot skip, and nothing else of the package's. `redis`: a client or the commands of one
 * (rawCommands). Returns the byte count.
 */
export async function rawXrangeBatches(redis, key, count, depth, crc32) {
  let bytes = 0;
  for await (const entries of xrangeBatches(redis, key, count, depth)) {
    for (const [id, fields] of entries) bytes += checked(id, fields, crc32).length;
  }
  return bytes;
}

/**
 * {@link rawXrangeBatches} with `crc32`, its Buffers pushed into a Readable piped into a counting
 * sink: the least a reader does that checks each entry before handing its bytes to a stream
 * consumer (no open, no decoding of the format, no read-ahead sized to the link). Not a ceiling.
 * Returns the byte count.
 */
export function rawXrangeBatchesReadable(redis, key, count, depth, crc32) {
  return intoReadable(
    (async function* () {
      for await (const entries of xrangeBatches(redis, key, count, depth)) {
        yield entries.map(([id, fields]) => checked(id, fields, crc32));
      }
    })(),
  );
}

/**
 * The one-at-a-time loop handing its Buffers to a consumer: pushed into a Readable piped into a
 * counting sink, as any stream of the replies would. Not a ceiling: it measures what delivering
 * 256 KiB Buffers through a stream costs by itself, without the package's checks.
 * `redis`: a client or the commands of one (rawCommands).
 */
export function rawXrangeReadable(redis, key, count = 16) {
  const { xrange } = rawCommands(redis);
  return intoReadable(
    (async function* () {
      let from = '-';
      for (;;) {
        const entries = await xrange(key, from, count);
        yield entries.map(([, fields]) => fields[1]);
        if (entries.length < count) return;
        from = `(${entries[entries.length - 1][0].toString()}`;
      }
    })(),
  );
}

/**
 * The Buffers of `batches` (an async iterable of arrays of them) pushed into a Readable piped into
 * a counting sink, as a stream of the replies would hand them to its consumer: the next array is
 * taken only while the Readable wants more. Resolves to the byte count.
 */
function intoReadable(batches) {
  const iterator = batches[Symbol.asyncIterator]();
  let busy = false;
  const readable = new Readable({
    highWaterMark: MiB,
    read() {
      if (busy) return;
      busy = true;
      (async () => {
        for (;;) {
          const { value, done } = await iterator.next();
          if (done) return void this.push(null);
          let more = true;
          for (const buffer of value) more = this.push(buffer);
          if (!more) break;
        }
        busy = false;
      })().catch((err) => this.destroy(err));
    },
  });
  const sink = countingSink();
  return pipeline(readable, sink).then(() => sink.bytes);
}

export async function run(ctx) {
  const { redis, pkg, pool } = ctx;
  const size = ctx.quick ? 32 * MiB : 256 * MiB;
  const reps = ctx.reps(7, 1);
  const chunkSize = 256 * KiB;
  const fileKey = 'read-file';
  const rawKey = ctx.rawKey('read-raw');
  const stringKey = ctx.rawKey('read-string');

  // The same bytes three ways: a package file, a raw stream of the same 256 KiB entries as the
  // package's (format 2 pieces, `d <bytes> c <crc>`), a string.
  await pipeline(poolSource(pool, size), pkg.createRedisWriteStream(redis, fileKey, { prefix: ctx.prefix, chunkSize }));
  await rawXadd(redis, rawKey, pool, size, chunkSize, 16);
  for (let off = 0; off < size; off += 4 * MiB) {
    await redis.append(
      stringKey,
      pool.subarray(off % pool.length, (off % pool.length) + Math.min(4 * MiB, size - off)),
    );
  }

  // The package's own CRC-32 (the native one when it loads), for the checked raw loop.
  const { crc32 } = (await importBuiltInternal('crc.js')) ?? {};
  const contenders = [
    {
      name: 'redis-file-stream',
      run: () =>
        ctx.timed(async () => {
          const sink = countingSink();
          await pipeline(pkg.createRedisReadStream(redis, fileKey, { prefix: ctx.prefix }), sink);
          return sink.bytes;
        }, size),
    },
    { name: 'raw XRANGE', run: () => ctx.timed(() => rawXrangeAhead(redis, rawKey, 16), size) },
    { name: 'raw XRANGE (1 at a time)', run: () => ctx.timed(() => rawXrange(redis, rawKey, 16), size) },
    {
      name: 'raw XRANGE (2 batches in flight)',
      run: () => ctx.timed(() => rawXrangeBatches(redis, rawKey, 16, 2), size),
    },
    ...(crc32 === undefined
      ? []
      : [
          {
            name: CHECKED,
            run: () => ctx.timed(() => rawXrangeBatches(redis, rawKey, 16, 2, crc32), size),
          },
          {
            name: CHECKED_STREAM,
            run: () => ctx.timed(() => rawXrangeBatchesReadable(redis, rawKey, 16, 2, crc32), size),
          },
        ]),
    { name: 'raw XRANGE into a Readable', run: () => ctx.timed(() => rawXrangeReadable(redis, rawKey, 16), size) },
    {
      name: 'redis-rstream',
      run: () =>
        ctx.timed(async () => {
          const sink = countingSink();
          await pipeline(redisRStream(redis, stringKey), sink);
          return sink.bytes;
        }, size),
    },
  ];
  const runs = await alternate(reps, contenders, { log: ctx.log, warmup: ctx.warmup });
  await ctx.dropKeys();

  // The ceiling is the fastest of the three raw loops in this run: overlapping requests does not
  // always pay on loopback, where the reading process, not Redis, is the bottleneck.
  const loops = {
    'raw XRANGE': 'next batch ahead',
    'raw XRANGE (1 at a time)': '1 at a time',
    'raw XRANGE (2 batches in flight)': '2 batches in flight',
  };
  const best = bestOf(runs, Object.keys(loops), 'mibps');
  const others = Object.keys(loops).filter((name) => name !== best);

  return {
    id,
    title,
    description:
      `${size / MiB} MiB file of ${chunkSize / KiB} KiB chunks, read into a sink that discards the bytes. ` +
      `redis-file-stream: defaults (readAhead 16, checksum on: every piece's CRC-32 checked before its bytes ` +
      `are pushed). raw XRANGE: COUNT 16 batches of a raw stream of the same entries (format 2 pieces, ` +
      `d <bytes> c <crc-32>, unchecked), the next batch requested as soon as one arrives; "1 at a time" ` +
      `waits for each reply before sending the next request; "2 batches in flight" names each batch's range ` +
      `by the known ids and keeps two requested beyond the one being counted (the package's depth on ` +
      `loopback). The target is checked against the fastest of the three (the ceiling). "checked": the ` +
      `two-batches loop computing each entry's CRC-32 with the package's implementation and comparing it ` +
      `with the stored one, as the package checks a piece (the one cost a checked read cannot skip; not a ` +
      `ceiling). "checked into a Readable": the checking loop pushing each checked Buffer into a Readable ` +
      `piped into the same sink (the least a reader does that checks each entry and hands it to a stream ` +
      `consumer; not a ceiling). "into a Readable": ` +
      `the 1-at-a-time loop pushing its ` +
      `Buffers into a Readable piped into the same sink, without any check (what handing the Buffers to a ` +
      `stream consumer costs). redis-rstream: default options on a string key holding the same bytes ` +
      `(Node 20's default highWaterMark makes that 16 KiB GETRANGEs, 2 in flight at most).`,
    params: { size, chunkSize, readAhead: 16, reps, ceiling: best },
    ...throughputContenders(runs),
    comparisons: [
      compare({
        id: 'read-vs-raw',
        label: `read vs raw XRANGE (ceiling: ${loops[best]})`,
        runs,
        contender: 'redis-file-stream',
        baseline: best,
        field: 'mibps',
        target: { op: '>=', value: 0.9, on: 'ratio', text: '>= 0.9x raw XRANGE' },
      }),
      ...others.map((other, i) =>
        compare({
          id: `read-vs-raw-other${i === 0 ? '' : `-${i + 1}`}`,
          label: `read vs raw XRANGE, ${loops[other]}`,
          runs,
          contender: 'redis-file-stream',
          baseline: other,
          field: 'mibps',
        }),
      ),
      ...(crc32 === undefined
        ? []
        : [
            compare({
              id: 'read-vs-raw-checked',
              label: 'read vs raw XRANGE checked by CRC-32, 2 batches in flight',
              runs,
              contender: 'redis-file-stream',
              baseline: CHECKED,
              field: 'mibps',
            }),
            compare({
              id: 'raw-checked-vs-raw',
              label: 'raw XRANGE checked by CRC-32 vs unchecked, 2 batches in flight',
              runs,
              contender: CHECKED,
              baseline: 'raw XRANGE (2 batches in flight)',
              field: 'mibps',
            }),
            compare({
              id: 'read-vs-raw-checked-stream',
              label: 'read vs raw XRANGE checked into a Readable, 2 batches in flight',
              runs,
              contender: 'redis-file-stream',
              baseline: CHECKED_STREAM,
              field: 'mibps',
            }),
            compare({
              id: 'raw-checked-stream-vs-raw',
              label: 'raw XRANGE checked into a Readable vs unchecked loop, 2 batches in flight',
              runs,
              contender: CHECKED_STREAM,
              baseline: 'raw XRANGE (2 batches in flight)',
              field: 'mibps',
            }),
          ]),
      compare({
        id: 'read-vs-raw-readable',
        label: 'read vs raw XRANGE into a Readable',
        runs,
        contender: 'redis-file-stream',
        baseline: 'raw XRANGE into a Readable',
        field: 'mibps',
      }),
      compare({
        id: 'read-vs-rstream',
        label: 'read vs redis-rstream',
        runs,
        contender: 'redis-file-stream',
        baseline: 'redis-rstream',
        field: 'mibps',
        target: { op: '>=', value: 4, on: 'ratio', text: '>= 4x redis-rstream' },
      }),
    ],
  };
}
