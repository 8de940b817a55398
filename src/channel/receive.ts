/**
 * The receiving side of a channel: {@link receiveFiles} walks the channel's log as a consumer group
 * of its own, yielding each announced file as a stream to read and acknowledge.
 * @module
 */

import type { Redis } from 'ioredis';
import { closeConnection, openBlockingConnection, type RedisClient } from '../client.js';
import { wrapRedisError } from '../errors.js';
import { ChannelField, channelLogKey, Flag, fileKeys, Meta, memoryEventsKey } from '../format.js';
import { announceFreed } from '../memory-guard.js';
import {
  failedIteration,
  invalidType,
  invalidValue,
  type ReadStreamOptions,
  type ResolvedReadOptions,
  resolveReadOptions,
} from '../options.js';
import { openRedisReadStream, type RedisReadStream } from '../read-stream.js';
import { ACK, JOIN, run } from '../scripts/index.js';
import { checkChannel } from './log.js';

/** Options of {@link receiveFiles}. */
export type ReceiveFilesOptions = Omit<ReadStreamOptions, 'consumer' | 'start' | 'end' | 'signal'> & {
  /** The receiver's name: its position in the channel is kept in Redis under this name. */
  consumer: string;
  /** Ends the iteration; a file being read is destroyed. */
  signal?: AbortSignal;
};

/** A file announced on a channel, as {@link receiveFiles} yields it. */
export interface ReceivedFile {
  readonly name: string;
  /** The file's key in Redis. */
  readonly key: string;
  /** Size in bytes when the sender knew it, else `undefined`. */
  readonly size: number | undefined;
  /**
   * The content encoding of the stored bytes (`'gzip'`, `'identity'`, or what the sender
   * declared). With `decompress`, a gzip file's stream yields it decoded.
   */
  readonly contentEncoding: string;
  /**
   * The offset in the stored file of the first byte of `stream`: 0, unless this receiver was
   * restarted in the middle of the file after the chunks before this offset were trimmed (under
   * `maxRedisMemory`, once every consumer had consumed them). It is a chunk boundary at or before
   * the point this receiver had consumed before it stopped; the stream then checks chunk numbers,
   * sizes and the end record, but not the checksum of the whole file. A gzip file cannot be
   * decompressed from the middle: with `decompress`, its stream then fails with
   * `ERR_REDIS_FILE_NOT_FOUND`.
   */
  readonly offset: number;
  /** The file's bytes from `offset` on, following the upload while it is still running. */
  readonly stream: RedisReadStream;
  /**
   * Acknowledge the file once it is processed: the receiver's position moves past it (a restart
   * resumes after it), and it counts toward the deletion of the file. A file not acknowledged is
   * delivered again when the receiver restarts.
   */
  ack(): Promise<void>;
}

/**
 * Receive the files of a channel, in order, as `{ name, stream, ack }`. A receiver that restarts
 * resumes at the first file it has not acknowledged, from that file's beginning, or, when the
 * sender's `maxRedisMemory` had the chunks every receiver consumed trimmed, from the first chunk
 * still held (see {@link ReceivedFile.offset}); one that joins late gets every file still held.
 * A file whose sender died (its heartbeat stopped) fails with `ERR_REDIS_FILE_ABORTED`, marked so
 * for every receiver. Waiting for the next file is a blocking read on a connection of the
 * iterator's own: an idle receiver costs nothing. The iteration ends at a close of the channel.
 *
 * The arguments are checked at the call, before any I/O, but a bad one never throws there: the
 * first step of the iteration (the first `next()`, so the `for await`) rejects with it.
 * @throws TypeError / RangeError (as the rejection of the first step) for bad arguments
 * @example
 * ```ts
 * for await (const file of receiveFiles(redis, 'logs', { consumer: 'eu-1', decompress: true })) {
 *   await pipeline(file.stream, lines(), aggregate);
 *   await file.ack();
 * }
 * ```
 */
export function receiveFiles(
  client: RedisClient,
  channel: string,
  options: ReceiveFilesOptions,
): AsyncIterableIterator<ReceivedFile> {
  let resolved: ResolvedReceiveOptions;
  try {
    resolved = resolveReceiveOptions(client, channel, options);
  } catch (err) {
    return failedIteration(err);
  }
  return receive(client, channelLogKey(resolved.prefix, channel), channel, resolved.consumer, resolved);
}

type ResolvedReceiveOptions = ResolvedReadOptions & { consumer: string };

function resolveReceiveOptions(client: unknown, channel: unknown, options: unknown): ResolvedReceiveOptions {
  checkChannel(client, channel);
  if (typeof options !== 'object' || options === null)
    throw invalidType('options', 'an object with a `consumer`', options);
  const { consumer, signal, ...readOptions } = options as ReceiveFilesOptions;
  if (typeof consumer !== 'string') throw invalidType('consumer', 'a string', consumer);
  if (consumer.length === 0) throw invalidValue('consumer', consumer, 'a non-empty name');
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('signal', 'an AbortSignal', signal);
  // Every read option is checked now, before any I/O. The receiver reads as a consumer, so that
  // under a memory limit the chunks all receivers consumed are trimmed, but it acknowledges a file
  // only after processing it, with ack(). A channel's sender never resumes a file, so a receiver
  // marks the file of a dead sender aborted instead of waiting for it.
  return { ...resolveReadOptions({ ...readOptions, signal, consumer }), consumer, ackAtEnd: false, abandonStale: true };
}

/** How long one blocking wait for the next announcement lasts before it looks again. */
const WAIT_MS = 5000;

async function* receive(
  client: RedisClient,
  log: string,
  channel: string,
  consumer: string,
  readOptions: ResolvedReadOptions,
): AsyncIterableIterator<ReceivedFile> {
  const { prefix, signal } = readOptions;
  const fail = (err: unknown, what: string): never => {
    throw wrapRedisError(err, channel, what);
  };
  await client.xgroup('CREATE', log, consumer, '0', 'MKSTREAM').catch((err: unknown) => {
    if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) fail(err, 'joining the channel');
  });
  const blocking = openBlockingConnection(client) as Redis;
  const onAbort = (): void => closeConnection(blocking);
  signal?.addEventListener('abort', onAbort, { once: true });
  let current: RedisReadStream | undefined;
  try {
    // First what this receiver was given before and never acknowledged (a restart), walking its
    // pending entries in order, then new ones.
    let pending: string | undefined = '0';
    for (;;) {
      signal?.throwIfAborted();
      let reply: unknown;
      try {
        reply =
          pending !== undefined
            ? await client.xreadgroup('GROUP', consumer, 'c', 'COUNT', 1, 'STREAMS', log, pending)
            : await blocking.xreadgroup('GROUP', consumer, 'c', 'COUNT', 1, 'BLOCK', WAIT_MS, 'STREAMS', log, '>');
      } catch (err) {
        signal?.throwIfAborted();
        return fail(err, 'waiting for the next file');
      }
      const entry = firstEntry(reply);
      if (!entry) {
        pending = undefined;
        continue;
      }
      const [id, fields] = entry;
      if (pending !== undefined) pending = id;
      const ack = (): Promise<void> =>
        client.xack(log, consumer, id).then(
          () => undefined,
          (err: unknown) => fail(err, 'acknowledging'),
        );
      if (fields.has(ChannelField.close)) {
        // A close ends the receiver only while nothing was announced after it.
        const later = await client
          .xrange(log, `(${id}`, '+', 'COUNT', 1)
          .catch((err: unknown) => fail(err, 'reading the channel'));
        await ack();
        if (later.length === 0) return;
        continue;
      }
      const key = fields.get(ChannelField.file);
      if (key === undefined) {
        await ack();
        continue;
      }
      const keys = fileKeys(prefix, key);
      const name = fields.get(ChannelField.name) ?? key;
      const sizeField = fields.get(ChannelField.size);
      const [gen, encoding, chunkSize, trim] = await client
        .hmget(keys.meta, Meta.gen, Meta.encoding, Meta.chunkSize, Meta.trim)
        .catch((err: unknown) => fail(err, `opening ${JSON.stringify(name)}`));
      // Announced only once created: a missing file is gone (every consumer done, or expired).
      let start: number | undefined = 0;
      if (gen !== null && trim === Flag.yes)
        start = await startChunk(client, keys.meta, gen, consumer).catch((err: unknown) =>
          fail(err, `opening ${JSON.stringify(name)}`),
        );
      if (gen === null || start === undefined) {
        await ack();
        continue;
      }
      const offset = start * Number(chunkSize);
      current = openRedisReadStream(client, key, { ...readOptions, start: offset });
      const stream = current;
      yield {
        name,
        key,
        size: sizeField === undefined ? undefined : Number(sizeField),
        contentEncoding: encoding || 'identity',
        offset,
        stream,
        async ack() {
          try {
            const reply = await run(
              client,
              ACK,
              { meta: keys.meta, chunks: keys.chunks(gen), events: keys.events },
              { gen, consumer, any: Flag.yes },
            );
            // Writers held back by a memory limit wait for this (the file deleted, or chunks trimmed
            // now that this receiver is done with them); others do not need it.
            const freed = reply.status === 'deleted' ? reply.trim : reply.status !== 'missing' && reply.trimmed > 0;
            if (freed) await announceFreed(client, memoryEventsKey(prefix), key);
          } catch (err) {
            fail(err, `acknowledging ${JSON.stringify(name)}`);
          }
          await ack();
        },
      };
      if (!stream.destroyed && !stream.readableEnded) stream.destroy();
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    current?.destroy();
    closeConnection(blocking);
  }
}

/**
 * The chunk a receiver starts a file at, in a file whose consumers trim what they all consumed:
 * 0, or after a restart the first chunk still held, when this receiver had consumed the chunks
 * trimmed before it. Recorded as the receiver's position, so that nothing from there on is
 * trimmed under it. When the chunks it needs are gone (it never read the file, which was trimmed
 * meanwhile), 0: the stream then fails, saying so. `undefined` when the file is gone.
 */
async function startChunk(
  client: RedisClient,
  meta: string,
  gen: string,
  consumer: string,
): Promise<number | undefined> {
  const reply = await run(client, JOIN, { meta }, { gen, consumer, first: 0, restart: Flag.yes });
  if (reply.status === 'missing') return undefined;
  return reply.status === 'ok' ? reply.chunk : 0;
}

function firstEntry(reply: unknown): [string, Map<string, string>] | undefined {
  if (!Array.isArray(reply) || reply.length === 0) return undefined;
  const entries = (reply[0] as [string, [string, string[] | null][]])[1];
  const first = entries[0];
  if (!first) return undefined;
  const [id, raw] = first;
  const fields = new Map<string, string>();
  for (let i = 0; raw && i + 1 < raw.length; i += 2) fields.set(raw[i]!, raw[i + 1]!);
  return [id, fields];
}
