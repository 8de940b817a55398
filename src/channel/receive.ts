/**
 * The receiving side of a channel: {@link receiveFiles} walks the channel's log as a consumer group
 * of its own, yielding each announced file as a stream to read and acknowledge.
 * @module
 */

import { clientClosedError, compareIds, MOVING } from '../blocking-reads.js';
import { ErrorCodes, isRetryable, RedisFileError, signalAbortError, wrapRedisError } from '../errors.js';
import { ChannelField, channelLogKey, Flag, fileKeys, Meta, type MetaRecord, memoryEventsKey } from '../format.js';
import { announceFreed } from '../memory-guard.js';
import {
  type Bag,
  checkKnown,
  failedIteration,
  invalidType,
  invalidValue,
  READ_OPTIONS,
  type ReadStreamOptions,
  type ResolvedReadOptions,
  resolveReadOptions,
} from '../options.js';
import { openRedisReadStream, type RedisReadStream } from '../read-stream.js';
import { LONGEST_BLOCK_MS } from '../redis/limits.js';
import { fieldsOf, portOf, type RedisClient, type RedisPort, toRecord } from '../redis/port.js';
import { hashSlot } from '../redis/slot.js';
import { nextDelay, RETRY_MIN_MS } from '../retry.js';
import type { AckReply } from '../scripts/consumers.js';
import { ACK, ACK_ANNOUNCED, JOIN, run } from '../scripts/index.js';
import { onceAborted } from '../shared-listener.js';
import { checkChannel } from './log.js';

/** Options of {@link receiveFiles}. */
export type ReceiveFilesOptions = Omit<ReadStreamOptions, 'consumer' | 'start' | 'end' | 'signal'> & {
  /** The receiver's name: its position in the channel is kept in Redis under this name. */
  consumer: string;
  /**
   * Ends the iteration; a file being read is destroyed. The step under way rejects with Node's
   * `AbortError` (code `ABORT_ERR`, the signal's reason as its `cause`), as an aborted stream fails.
   */
  signal?: AbortSignal;
  /**
   * Called for a file announced on the channel that is gone from Redis before the receiver opens
   * it (removed, expired, or deleted once every consumer it was sent to was done): it is not
   * yielded, and is acknowledged. `name` is its name on the channel, `key` its key in Redis. An
   * exception it throws ends the iteration with it.
   */
  onSkip?: (file: { readonly name: string; readonly key: string }) => void;
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
 * @throws RedisFileError (as a rejection of a step) `ERR_REDIS_FILE_NOT_FOUND` when the channel is
 * removed (`removeChannel`) while the receiver runs; `ERR_REDIS_FILE_REDIS` when Redis fails
 * it for longer than `idleTimeout`
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
  return receive(
    portOf(client),
    channelLogKey(resolved.prefix, channel),
    channel,
    resolved.consumer,
    resolved,
    resolved.onSkip,
  );
}

type ResolvedReceiveOptions = ResolvedReadOptions & { consumer: string; onSkip?: ReceiveFilesOptions['onSkip'] };

function resolveReceiveOptions(client: unknown, channel: unknown, options: unknown): ResolvedReceiveOptions {
  checkChannel(client, channel);
  if (typeof options !== 'object' || options === null)
    throw invalidType('options', 'an object with a `consumer`', options);
  // The read options but the range: a receiver reads each file whole.
  checkKnown(options as Bag, 'options', [
    ...READ_OPTIONS.filter((name) => name !== 'start' && name !== 'end'),
    'onSkip',
  ]);
  const { consumer, signal, onSkip, ...readOptions } = options as ReceiveFilesOptions;
  if (typeof consumer !== 'string') throw invalidType('consumer', 'a string', consumer);
  if (consumer.length === 0) throw invalidValue('consumer', consumer, 'a non-empty name');
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('signal', 'an AbortSignal', signal);
  if (onSkip !== undefined && typeof onSkip !== 'function') throw invalidType('onSkip', 'a function', onSkip);
  // Every read option is checked now, before any I/O. The receiver reads as a consumer, so that
  // under a memory limit the chunks all receivers consumed are trimmed, but it acknowledges a file
  // only after processing it, with ack(). A channel's sender never resumes a file, so a receiver
  // marks the file of a dead sender aborted instead of waiting for it.
  return {
    ...resolveReadOptions({ ...readOptions, signal, consumer }),
    consumer,
    ackAtEnd: false,
    abandonStale: true,
    ...(onSkip === undefined ? {} : { onSkip }),
  };
}

/** How long one blocking wait for the next announcement lasts before it looks again. */
const WAIT_MS = LONGEST_BLOCK_MS;
/** How late past its block a blocking read's answer may come before Redis counts as not answering. */
const ANSWER_SLACK_MS = 1000;
/** Announcements read at once: waiting ones come several to a round trip. */
const BATCH = 16;

type Announcement = [id: string, fields: Map<string, string>];

/** An announcement, and for a file its read stream, already opening (see `openEarly`). */
interface Prepared {
  readonly id: string;
  readonly fields: Map<string, string>;
  readonly file?: { readonly key: string; readonly stream: RedisReadStream; readonly meta: Promise<unknown> };
}

async function* receive(
  client: RedisPort,
  log: string,
  channel: string,
  consumer: string,
  readOptions: ResolvedReadOptions,
  onSkip: ReceiveFilesOptions['onSkip'],
): AsyncIterableIterator<ReceivedFile> {
  const { prefix, signal } = readOptions;
  const fail = (err: unknown, what: string): never => {
    // The log, or this receiver's group in it, was deleted (removeChannel) under the receiver.
    if (err instanceof Error && err.message.startsWith('NOGROUP')) {
      throw new RedisFileError(
        ErrorCodes.NOT_FOUND,
        `Channel ${JSON.stringify(channel)}: it was removed (its log, with this receiver's position) while the receiver was ${what}`,
        { key: channel, cause: err },
      );
    }
    throw wrapRedisError(err, channel, what, 'Channel');
  };
  // An aborted signal joins nothing (the group would be made for a receiver that never reads).
  if (signal?.aborted) throw signalAbortError(signal);
  await client.send(log, ['XGROUP', 'CREATE', log, consumer, '0', 'MKSTREAM']).catch((err: unknown) => {
    if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) fail(err, 'joining the channel');
  });
  // The blocking reads go on a connection of the receiver's own: on a cluster, to the primary of
  // the log's slot. Replaced when it fails (see below).
  const slot = hashSlot(log);
  let blocking = client.openBlocking(slot);
  // Set once the iteration is over (its end, `break`, an error): a read still under way in the
  // background then stops, and opens no connection again.
  let over = false;
  const onAbort = (): void => blocking?.close();
  const stopAbortWait = signal ? onceAborted(signal, onAbort) : undefined;
  // A client closed by its owner ends the receiver at once, not when the blocking read returns
  // (up to WAIT_MS later): its connection is closed, and the failed read tells why.
  const stopListening = client.onClosed(() => blocking?.close());
  let current: RedisReadStream | undefined;
  // A file and the channel's log lie on different cluster slots: there, a file's acknowledgement
  // and its announcement's take a step each; on a single server, one script does both.
  let separately = client.cluster;
  // First what this receiver was given before and never acknowledged (a restart), walking its
  // pending entries in order, then new ones.
  let pending: string | undefined = '0';
  // The last announcement read: after a failed blocking read, the pending entries after it are what
  // a lost reply may have delivered to this receiver.
  let lastRead = '0';
  let failingSince = 0;
  let pause = 0;
  const queue: Announcement[] = [];
  /**
   * The log's last entry, when it is a close this receiver was given before (its group has read up
   * to it): run again after it ended on that close, with nothing announced since, a receiver ends
   * at once instead of waiting for what no sender will announce. Looked for once, after the
   * pending entries: a close given and not acknowledged is among them.
   */
  let lookedForClose = false;
  const closeTaken = async (): Promise<Announcement | undefined> => {
    const [last] = entriesOf([[log, await client.send(log, ['XREVRANGE', log, '+', '-', 'COUNT', 1])]]);
    if (last === undefined || !last[1].has(ChannelField.close)) return undefined;
    // XINFO STREAM (the subcommand the documented ACL grants) with FULL: each group's position.
    const info = fieldsOf(await client.send(log, ['XINFO', 'STREAM', log, 'FULL', 'COUNT', 1]));
    const group = (info.get('groups') as unknown[] | undefined)?.map(toRecord).find((g) => g.name === consumer);
    const delivered = group?.['last-delivered-id'];
    return delivered !== undefined && compareIds(delivered, last[0]) >= 0 ? last : undefined;
  };
  const nextAnnouncement = async (): Promise<Announcement> => {
    for (;;) {
      // Before an announcement already read: one taken after an abort would be opened (and, as a
      // file gone, acknowledged) though nobody reads it.
      if (signal?.aborted) throw signalAbortError(signal);
      if (over) throw new Error('the receiver has ended');
      const queued = queue.shift();
      if (queued) return queued;
      // A blocking read returns at least every WAIT_MS: a client closed meanwhile ends the receiver.
      if (client.closed()) fail(clientClosedError(), 'waiting for the next file');
      let reply: unknown;
      const waiting = pending === undefined;
      const sent = Date.now();
      try {
        if (waiting && blocking === undefined) throw new Error('no primary of the cluster is known for the channel');
        reply = !waiting
          ? await client.send(log, ['XREADGROUP', 'GROUP', consumer, 'c', 'COUNT', BATCH, 'STREAMS', log, pending!])
          : await blocking!.send(log, [
              'XREADGROUP',
              'GROUP',
              consumer,
              'c',
              'COUNT',
              BATCH,
              'BLOCK',
              WAIT_MS,
              'STREAMS',
              log,
              '>',
            ]);
      } catch (err) {
        if (signal?.aborted) throw signalAbortError(signal);
        // Its connection was closed because the iteration is over.
        if (over) throw err;
        if (client.closed()) fail(clientClosedError(), 'waiting for the next file');
        // A blocking connection that failed (dropped, or its cluster slot moved) or a passing
        // refusal: the read is made again, on a new connection, for up to idleTimeout.
        const passing =
          isRetryable(err, client) || (waiting && (!client.isReplyError(err) || MOVING.test((err as Error).message)));
        // A blocking read that failed long after Redis should have answered it (its command
        // timeout: Redis stopped answering) counts from when it should have been answered, so that
        // the idleTimeout it waited is not waited again by one more read.
        const unanswered = waiting && Date.now() - sent > WAIT_MS + ANSWER_SLACK_MS;
        failingSince ||= unanswered ? sent + WAIT_MS : Date.now();
        if (!passing || Date.now() - failingSince > readOptions.idleTimeout) fail(err, 'waiting for the next file');
        if (waiting) {
          blocking?.close();
          client.refreshSlots(log);
          blocking = client.openBlocking(slot);
          pending = lastRead;
        }
        pause = pause === 0 ? RETRY_MIN_MS : nextDelay(pause);
        await new Promise((resolve) => setTimeout(resolve, pause).unref());
        continue;
      }
      const entries = entriesOf(reply);
      // A blocking read answered, or entries came: the trouble is over. (The read of the pending
      // entries that follows a failed blocking read goes through the caller's client, and its
      // answer says nothing of the blocking connection, which may fail again and again.)
      if (waiting || entries.length > 0) {
        failingSince = 0;
        pause = 0;
      }
      if (entries.length > 0) lastRead = entries[entries.length - 1]![0];
      if (entries.length === 0 && pending !== undefined && !lookedForClose) {
        lookedForClose = true;
        pending = undefined;
        const close = await closeTaken().catch((err: unknown) => fail(err, 'joining the channel'));
        if (close) return close;
        continue;
      }
      if (entries.length === 0) pending = undefined;
      else if (pending !== undefined) pending = entries[entries.length - 1]![0];
      queue.push(...entries);
    }
  };
  // A file's read stream starts opening as soon as its announcement is read: its hash and first
  // entries come while the application still processes the file before it.
  const prepare = ([id, fields]: Announcement): Prepared => {
    const key = fields.get(ChannelField.file);
    if (fields.has(ChannelField.close) || key === undefined) return { id, fields };
    const stream = openRedisReadStream(client, key, { ...readOptions, start: 0 });
    const meta = stream.openEarly();
    meta.catch(() => {});
    return { id, fields, file: { key, stream, meta } };
  };
  const prepareNext = (): Promise<Prepared> => {
    const next = nextAnnouncement().then(prepare);
    next.catch(() => {});
    return next;
  };
  let next = prepareNext();
  try {
    for (;;) {
      const { id, fields, file } = await next;
      // Aborted meanwhile: the file opened ahead was destroyed by the signal, and must not pass
      // for one that is gone (it would be acknowledged unread).
      if (signal?.aborted) throw signalAbortError(signal);
      const ack = (): Promise<void> =>
        client.send(log, ['XACK', log, consumer, id]).then(
          () => undefined,
          (err: unknown) => fail(err, 'acknowledging'),
        );
      if (fields.has(ChannelField.close)) {
        // A close ends the receiver only while nothing was announced after it.
        const later =
          queue.length > 0 ||
          (
            (await client
              .send(log, ['XRANGE', log, `(${id}`, '+', 'COUNT', 1])
              .catch((err: unknown) => fail(err, 'reading the channel'))) as unknown[]
          ).length > 0;
        await ack();
        if (!later) return;
        next = prepareNext();
        continue;
      }
      if (!file) {
        await ack();
        next = prepareNext();
        continue;
      }
      const { key } = file;
      const keys = fileKeys(prefix, key);
      const name = fields.get(ChannelField.name) ?? key;
      const sizeField = fields.get(ChannelField.size);
      let stream = file.stream;
      current = stream;
      const opened = await opening(client, keys.meta, file.meta).catch((err: unknown) =>
        fail(err, `opening ${JSON.stringify(name)}`),
      );
      // Announced only once created: a missing file is gone (every consumer done, or expired).
      let start: number | undefined = 0;
      if (opened.gen !== null && opened.trim === Flag.yes)
        start = await startChunk(client, keys.meta, opened.gen, consumer).catch((err: unknown) =>
          fail(err, `opening ${JSON.stringify(name)}`),
        );
      if (opened.gen === null || start === undefined) {
        stream.destroy();
        await ack();
        onSkip?.({ name, key });
        next = prepareNext();
        continue;
      }
      const { gen } = opened;
      const offset = start * Number(opened.chunkSize);
      if (offset > 0) {
        stream.destroy();
        stream = openRedisReadStream(client, key, { ...readOptions, start: offset });
        current = stream;
      }
      next = prepareNext();
      yield {
        name,
        key,
        size: sizeField === undefined ? undefined : Number(sizeField),
        contentEncoding: opened.encoding || 'identity',
        offset,
        stream,
        async ack() {
          const fileKeys = { meta: keys.meta, chunks: keys.chunks(gen), events: keys.events };
          const args = { gen, consumer, any: Flag.yes };
          let logged = false;
          try {
            let reply: AckReply | undefined;
            if (!separately) {
              reply = await run(
                client,
                ACK_ANNOUNCED,
                { ...fileKeys, log },
                { ...args, group: consumer, entry: id },
              ).catch((err: unknown) => {
                if (!(err instanceof Error && /CROSSSLOT|same slot/.test(err.message))) throw err;
                separately = true;
                return undefined;
              });
              logged = reply !== undefined;
            }
            reply ??= await run(client, ACK, fileKeys, args);
            // Writers held back by a memory limit wait for this (the file deleted, or chunks trimmed
            // now that this receiver is done with them); others do not need it.
            const freed = reply.status === 'deleted' ? reply.trim : reply.status !== 'missing' && reply.trimmed > 0;
            if (freed) await announceFreed(client, memoryEventsKey(prefix), key);
          } catch (err) {
            fail(err, `acknowledging ${JSON.stringify(name)}`);
          }
          if (!logged) await ack();
        },
      };
      if (!stream.destroyed && !stream.readableEnded) stream.destroy();
    }
  } finally {
    over = true;
    stopAbortWait?.();
    stopListening();
    current?.destroy();
    // The next file, opening already: nobody reads it now (a restart delivers it again).
    void next.then(
      (p) => p.file?.stream.destroy(),
      () => {},
    );
    blocking?.close();
  }
}

/**
 * What the receiver needs of a file's hash, from the stream's early open: its generation
 * (null when the file is gone), encoding, chunk size and whether it is trimmed. When that open
 * failed for another reason than Redis (a damaged hash, which the stream reports when read), the
 * fields are read on their own, as far as they are there.
 */
async function opening(
  client: RedisPort,
  meta: string,
  early: Promise<unknown>,
): Promise<{ gen: string | null; encoding: string | null; chunkSize: string | null; trim: string | null }> {
  try {
    const m = (await early) as MetaRecord | undefined;
    if (m === undefined) return { gen: null, encoding: null, chunkSize: null, trim: null };
    return { gen: m.gen, encoding: m.encoding, chunkSize: String(m.chunkSize), trim: m.trim ? Flag.yes : Flag.no };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === ErrorCodes.NOT_FOUND) return { gen: null, encoding: null, chunkSize: null, trim: null };
    if (code === ErrorCodes.REDIS) throw (err as { cause?: unknown }).cause ?? err;
  }
  const fields = [Meta.gen, Meta.encoding, Meta.chunkSize, Meta.trim];
  const [gen, encoding, chunkSize, trim] = (await client.send(meta, ['HMGET', meta, ...fields])) as (string | null)[];
  return { gen, encoding, chunkSize, trim };
}

/**
 * The chunk a receiver starts a file at, in a file whose consumers trim what they all consumed:
 * 0, or after a restart the first chunk still held, when this receiver had consumed the chunks
 * trimmed before it. Recorded as the receiver's position, so that nothing from there on is
 * trimmed under it. When the chunks it needs are gone (it never read the file, which was trimmed
 * meanwhile), 0: the stream then fails, saying so. `undefined` when the file is gone.
 */
async function startChunk(client: RedisPort, meta: string, gen: string, consumer: string): Promise<number | undefined> {
  const reply = await run(client, JOIN, { meta }, { gen, consumer, first: 0, restart: Flag.yes });
  if (reply.status === 'missing') return undefined;
  return reply.status === 'ok' ? reply.chunk : 0;
}

function entriesOf(reply: unknown): Announcement[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const entries = (reply[0] as [string, [string, string[] | null][]])[1];
  return entries.map(([id, raw]) => {
    const fields = new Map<string, string>();
    for (let i = 0; raw && i + 1 < raw.length; i += 2) fields.set(raw[i]!, raw[i + 1]!);
    return [id, fields];
  });
}
