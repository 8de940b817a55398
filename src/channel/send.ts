/**
 * The sending side of a channel: {@link sendFiles} uploads files in order, announcing each on the
 * channel's log as its upload starts.
 * @module
 */

import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat as fsStat, open } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RedisClient } from '../client.js';
import { wrapRedisError } from '../errors.js';
import { ChannelField, channelLogKey, looksGzipped } from '../format.js';
import { invalidType, invalidValue, resolveWriteOptions, type WriteStreamOptions } from '../options.js';
import { createRedisWriteStream } from '../write-stream.js';
import { checkChannel } from './log.js';

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

/**
 * Upload files in order to a channel, announcing each one as its upload starts, so that receivers
 * begin at once. Running a sender again on the same channel appends to it.
 * @returns the files sent, with their keys
 * @throws TypeError / RangeError (as a rejection, never at the call) for bad arguments, all checked
 * before any I/O
 */
export async function sendFiles(
  client: RedisClient,
  channel: string,
  files: readonly SendableFile[],
  options?: SendFilesOptions,
): Promise<SentFile[]> {
  checkChannel(client, channel);
  if (!Array.isArray(files)) throw invalidType('files', 'an array of paths or { name, stream }', files);
  for (const [i, f] of files.entries()) {
    const ok =
      typeof f === 'string'
        ? f.length > 0
        : typeof f === 'object' &&
          f !== null &&
          typeof f.name === 'string' &&
          f.name.length > 0 &&
          typeof f.stream?.pipe === 'function';
    if (!ok) throw invalidValue(`files[${i}]`, f, 'a path, or { name, stream } with a non-empty name');
  }
  if (
    typeof options === 'object' &&
    options !== null &&
    options.onStart !== undefined &&
    typeof options.onStart !== 'function'
  ) {
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
    const declared =
      typeof file === 'string' ? ((await startsGzipped(file)) ? 'gzip' : undefined) : file.contentEncoding;
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
