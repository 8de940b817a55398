/**
 * Channels: many files, many receivers. A channel is an ordered, durable announcement log (a Redis
 * stream); each receiver is a consumer group of its own on it, so its position lives in Redis.
 * @module
 */

import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat as fsStat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Redis } from 'ioredis';
import { closeConnection, isRedisClient, openBlockingConnection, type RedisClient } from './client.js';
import { wrapRedisError } from './errors.js';
import { ChannelField, channelLogKey, fileKeys, Flag, looksGzipped, memoryEventsKey, Meta } from './format.js';
import { announceFreed } from './memory-guard.js';
import {
  failedIteration,
  invalidType,
  invalidValue,
  type ReadStreamOptions,
  resolveKeyOptions,
  resolveReadOptions,
  type ResolvedReadOptions,
  resolveWriteOptions,
  type WriteStreamOptions,
} from './options.js';
import { openRedisReadStream, type RedisReadStream } from './read-stream.js';
import { ACK, JOIN, run } from './scripts/index.js';
import { createRedisWriteStream } from './write-stream.js';

/**
 * A file to send: a path on disk (a file that starts with gzip's magic bytes is stored as gzip,
 * never compressed again), or a name with a stream of its bytes and, when they are already
 * encoded, their `contentEncoding`.
 */
export type SendableFile =
  | string
  | { readonly name: string; readonly stream: Readable; readonly size?: number; readonly contentEncoding?: string };

/** Options of {@link sendFiles}: those of the write stream, for every file. */
export type SendFilesOptions = Omit<WriteStreamOptions, 'signal' | 'resume' | 'overwrite'> & {
  /** Stops the sending: the file being sent is aborted. */
  signal?: AbortSignal;
  /**
   * Called as each file's upload starts, once the file is announced on the channel (receivers
   * may already be reading it), with its name and its key in Redis. An exception thrown here
   * aborts that file and rejects {@link sendFiles}.
   * @example (file) => console.error(`sending ${file.name} as ${file.key}`)
   */
  onStart?: (file: AnnouncedFile) => void;
};

/** A file {@link sendFiles} has announced and is uploading. */
export interface AnnouncedFile {
  readonly name: string;
  /** The file's key in Redis: `<channel>/<time>-<random>/<name>`. */
  readonly key: string;
  /** Size in bytes when the sender knows it (a path, or a stream given with its size), else `undefined`. */
  readonly size: number | undefined;
}

/** What {@link sendFiles} sent. */
export interface SentFile {
  readonly name: string;
  /** The file's key in Redis. */
  readonly key: string;
  readonly size: number;
}

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
 * Upload files in order to a channel, announcing each one as its upload starts, so that receivers
 * begin at once. Running a sender again on the same channel appends to it.
 * @returns the files sent, with their keys
 * @throws TypeError / RangeError (as a rejection, never at the call) for bad arguments, all checked
 * before any I/O
 */
export async function sendFiles(client: RedisClient, channel: string, files: readonly SendableFile[], options?: SendFilesOptions): Promise<SentFile[]> {
  checkChannel(client, channel);
  if (!Array.isArray(files)) throw invalidType('files', 'an array of paths or { name, stream }', files);
  for (const [i, f] of files.entries()) {
    const ok = typeof f === 'string' ? f.length > 0 : typeof f === 'object' && f !== null && typeof f.name === 'string' && f.name.length > 0 && typeof f.stream?.pipe === 'function';
    if (!ok) throw invalidValue(`files[${i}]`, f, 'a path, or { name, stream } with a non-empty name');
  }
  if (typeof options === 'object' && options !== null && options.onStart !== undefined && typeof options.onStart !== 'function') {
    throw invalidType('onStart', 'a function', options.onStart);
  }
  const { signal, onStart, ...writeOptions } = options ?? {};
  // Every write option is checked now, before any I/O.
  const { prefix } = resolveWriteOptions({ ...writeOptions, signal });
  return send(client, channelLogKey(prefix, channel), channel, files, writeOptions, signal, onStart);
}

async function send(
  client: RedisClient,
  log: string,
  channel: string,
  files: readonly SendableFile[],
  options: Omit<WriteStreamOptions, 'signal'>,
  signal: AbortSignal | undefined,
  onStart: ((file: AnnouncedFile) => void) | undefined,
): Promise<SentFile[]> {
  const sent: SentFile[] = [];
  for (const file of files) {
    signal?.throwIfAborted();
    const name = typeof file === 'string' ? basename(file) : file.name;
    const size = typeof file === 'string' ? (await fsStat(file)).size : file.size;
    const source = typeof file === 'string' ? createReadStream(file) : file.stream;
    const declared = typeof file === 'string' ? ((await startsGzipped(file)) ? 'gzip' : undefined) : file.contentEncoding;
    // A key of its own for every upload: a sender run again never meets its earlier files.
    const key = `${channel}/${Date.now().toString(36)}-${randomBytes(4).toString('hex')}/${name}`;
    // Bytes already gzipped are stored as they are, declared as gzip, and not compressed again.
    const encoding = declared === undefined ? {} : { contentEncoding: declared, compress: false };
    const writer = createRedisWriteStream(client, key, { ...options, ...encoding, signal });
    const uploading = pipeline(source, writer);
    // Announced once the file exists, so that a receiver finds it at once: a file announced and
    // missing is then one that is gone (read by all its consumers, or expired).
    const claimed = await Promise.race([
      new Promise<boolean>((resolve) => writer.once('ready', () => resolve(true))),
      uploading.then(
        () => true,
        () => false,
      ),
    ]);
    if (claimed) {
      const fields: (string | number)[] = [ChannelField.file, key, ChannelField.name, name];
      if (size !== undefined) fields.push(ChannelField.size, size);
      try {
        await client.xadd(log, '*', ...fields);
      } catch (err) {
        writer.destroy();
        await uploading.catch(() => {});
        throw wrapRedisError(err, channel, `announcing ${JSON.stringify(name)} on the channel`);
      }
      try {
        onStart?.({ name, key, size });
      } catch (err) {
        writer.destroy(err as Error);
        await uploading.catch(() => {});
        throw err;
      }
    }
    await uploading;
    sent.push({ name, key, size: writer.committedBytes });
  }
  return sent;
}

/**
 * Close a channel: every receiver ends once it has processed all files announced before the close.
 * A channel used again after a close is open again: the old close ends nobody later.
 * @throws TypeError / RangeError (as a rejection, never at the call) for bad arguments
 */
export async function closeChannel(client: RedisClient, channel: string, options?: { prefix?: string }): Promise<void> {
  checkChannel(client, channel);
  const log = channelLogKey(resolveKeyOptions(options).prefix, channel);
  try {
    await client.xadd(log, '*', ChannelField.close, randomBytes(8).toString('hex'));
  } catch (err) {
    throw wrapRedisError(err, channel, 'closing the channel');
  }
}

/**
 * Delete a channel's log and every receiver's position in it (the files themselves go with their
 * acknowledgements or TTL).
 * @returns whether there was a channel
 * @throws TypeError / RangeError (as a rejection, never at the call) for bad arguments
 */
export async function removeChannel(client: RedisClient, channel: string, options?: { prefix?: string }): Promise<boolean> {
  checkChannel(client, channel);
  const log = channelLogKey(resolveKeyOptions(options).prefix, channel);
  try {
    return (await client.del(log)) > 0;
  } catch (err) {
    throw wrapRedisError(err, channel, 'removing the channel');
  }
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
export function receiveFiles(client: RedisClient, channel: string, options: ReceiveFilesOptions): AsyncIterableIterator<ReceivedFile> {
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
  if (typeof options !== 'object' || options === null) throw invalidType('options', 'an object with a `consumer`', options);
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
      const ack = (): Promise<void> => client.xack(log, consumer, id).then(() => undefined, (err: unknown) => fail(err, 'acknowledging'));
      if (fields.has(ChannelField.close)) {
        // A close ends the receiver only while nothing was announced after it.
        const later = await client.xrange(log, `(${id}`, '+', 'COUNT', 1);
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
      const [gen, encoding, chunkSize, trim] = await client.hmget(keys.meta, Meta.gen, Meta.encoding, Meta.chunkSize, Meta.trim).catch((err: unknown) =>
        fail(err, `opening ${JSON.stringify(name)}`),
      );
      // Announced only once created: a missing file is gone (every consumer done, or expired).
      let start: number | undefined = 0;
      if (gen !== null && trim === Flag.yes) start = await startChunk(client, keys.meta, gen, consumer).catch((err: unknown) => fail(err, `opening ${JSON.stringify(name)}`));
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
            const reply = await run(client, ACK, { meta: keys.meta, chunks: keys.chunks(gen), events: keys.events }, { gen, consumer, any: Flag.yes });
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
async function startChunk(client: RedisClient, meta: string, gen: string, consumer: string): Promise<number | undefined> {
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

function checkChannel(client: unknown, channel: unknown): void {
  if (!isRedisClient(client)) throw invalidType('client', 'an ioredis Redis or Cluster instance', client);
  if (typeof channel !== 'string') throw invalidType('channel', 'a string', channel);
  if (channel.length === 0) throw invalidValue('channel', channel, 'a non-empty string');
}

/** Whether the file at `path` starts with gzip's magic bytes. */
async function startsGzipped(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    return bytesRead === 2 && looksGzipped(head);
  } finally {
    await handle.close();
  }
}
