/**
 * The sending side of a channel: {@link sendFiles} uploads files in order, announcing each on the
 * channel's log as its upload starts.
 * @module
 */

import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { ErrorCodes, RedisFileError, signalAbortError, wrapRedisError } from '../errors.js';
import { ChannelField, channelLogKey, looksGzipped } from '../format.js';
import { remove } from '../manage.js';
import type { MemoryWait } from '../memory-guard.js';
import {
  type Bag,
  checkKnown,
  checkObject,
  FILE_READ_BYTES,
  int,
  invalidType,
  invalidValue,
  LONE_SURROGATE,
  resolveWriteOptions,
  WRITE_OPTIONS,
  type WriteStreamOptions,
} from '../options.js';
import { portOf, type RedisClient } from '../redis/port.js';
import { upload } from '../upload.js';
import { createRedisWriteStream, type RedisWriteStream } from '../write-stream.js';
import { checkChannel } from './log.js';

/**
 * A file to send: a path on disk (a file that starts with gzip's magic bytes is stored as gzip,
 * never compressed again; a file that grows while it is sent, such as a log, is sent at the size it
 * had when its upload started; one whose size reads 0 and that has bytes, as those of /proc do, is
 * read to its end, its size not announced), or a name with a stream of its bytes, its `size` when known, and,
 * when they are already encoded, their `contentEncoding`. A size is announced to receivers before
 * the bytes: a stream that then gives more or fewer bytes aborts its file.
 */
export type SendableFile =
  | string
  | { readonly name: string; readonly stream: Readable; readonly size?: number; readonly contentEncoding?: string };

/** Options of {@link sendFiles}: those of the write stream, for every file. */
export type SendFilesOptions = Omit<WriteStreamOptions, 'signal' | 'resume' | 'overwrite'> & {
  /**
   * Stops the sending: the file being sent is aborted, and the promise rejects with Node's
   * `AbortError` (code `ABORT_ERR`, the signal's reason as its `cause`), as an aborted stream fails.
   */
  signal?: AbortSignal;
  /**
   * Called as each file's upload starts, once the file is announced on the channel (receivers
   * may already be reading it), with its name and its key in Redis. An exception thrown here
   * rejects {@link sendFiles} and aborts that file, unless its end record is already on its way
   * (a small file's may be: every byte was given to the writer before it was announced); such a
   * file stays complete.
   * @example (file) => console.error(`sending ${file.name} as ${file.key}`)
   */
  onStart?: (file: AnnouncedFile) => void;
  /**
   * With `maxRedisMemory`: called while Redis has no room for the next chunk of a file and its
   * upload waits (the write stream's `memoryWait` event), when the wait begins and at every reading
   * of `used_memory` while it lasts (at least once a second). An exception thrown here rejects
   * {@link sendFiles} and aborts that file (removes it, when it was not announced yet).
   * @example (file, wait) => wait.waitedMs > 5000 && console.error(`${file.name}: waiting for Redis memory`)
   */
  onMemoryWait?: (file: AnnouncedFile, wait: MemoryWait) => void;
};

/** What {@link sendFiles} calls back with, besides the write stream's options. */
type SendHooks = Pick<SendFilesOptions, 'onStart' | 'onMemoryWait'>;

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
 * begin at once. A file's upload begins once the one before has all its bytes (its end record
 * then on its way), so that small files cost about one round trip each; under `maxRedisMemory`,
 * once the one before is stored whole (receivers take the files in order: a later file must not
 * take the room an earlier one still needs). On a failure, a file begun and not announced yet is
 * removed. Running a sender again on the same channel appends to it.
 * @returns the files sent, with their keys
 * @throws TypeError / RangeError (as a rejection, never at the call) for bad arguments, all checked
 * before any I/O
 * @throws RedisFileError (as a rejection) `ERR_REDIS_FILE_ABORTED` when a stream gives other than
 * its declared `size`; the codes of the write stream for its failures. The promise settles once the
 * file that failed is marked aborted (or removed, when it was not announced yet).
 */
export async function sendFiles(
  client: RedisClient,
  channel: string,
  files: readonly SendableFile[],
  options?: SendFilesOptions,
): Promise<SentFile[]> {
  checkChannel(client, channel);
  if (!Array.isArray(files)) throw invalidType('files', 'an array of paths or { name, stream }', files);
  const o = checkObject(options, 'options');
  const hookNames = ['onStart', 'onMemoryWait'] as const;
  checkKnown(o, 'options', [
    ...WRITE_OPTIONS.filter((name) => name !== 'resume' && name !== 'overwrite'),
    ...hookNames,
  ]);
  for (const name of hookNames)
    if (o[name] !== undefined && typeof o[name] !== 'function') throw invalidType(name, 'a function', o[name]);
  const { signal, onStart, onMemoryWait, ...writeOptions } = o as SendFilesOptions;
  // Every write option is checked now, before any I/O: for each file as it will be written.
  const { prefix } = resolveWriteOptions({ ...writeOptions, signal });
  for (const [i, f] of files.entries()) {
    const named = typeof f === 'string' ? f : typeof f === 'object' && f !== null ? f.name : undefined;
    if (typeof named !== 'string' || named.length === 0)
      throw invalidValue(`files[${i}]`, f, 'a path, or { name, stream } with a non-empty name');
    // The name ends the file's key (a path's base name): a lone surrogate has no UTF-8 form.
    const argument = typeof f === 'string' ? `files[${i}]` : `files[${i}].name`;
    if (LONE_SURROGATE.test(named)) throw invalidValue(argument, named, 'a name without lone surrogates');
    if (typeof f === 'string') {
      if (basename(f).length === 0) throw invalidValue(argument, f, 'a path that names a file');
      continue;
    }
    // What pipeline() and the upload use of a Readable.
    const { stream, size } = f;
    if (!['pipe', 'on', 'once'].every((m) => typeof (stream as unknown as Bag | undefined)?.[m] === 'function'))
      throw invalidType(`files[${i}].stream`, 'a Readable stream', stream);
    int({ [`files[${i}].size`]: size }, `files[${i}].size`, 0, 0, Number.MAX_SAFE_INTEGER);
    if (f.contentEncoding !== undefined)
      resolveWriteOptions({ ...writeOptions, signal, contentEncoding: f.contentEncoding, compress: false });
  }
  // Aborted already: rejects as an abort does at any later moment, whatever the files.
  if (signal?.aborted) throw signalAbortError(signal);
  return send(client, channelLogKey(prefix, channel), channel, files, writeOptions, signal, { onStart, onMemoryWait });
}

/** One file's upload, under way. */
interface Upload {
  readonly name: string;
  readonly key: string;
  readonly size: number | undefined;
  readonly writer: RedisWriteStream;
  /** Settles with the upload: 'finish' of the writer, or its failure. */
  readonly uploading: Promise<void>;
  /** True once the file exists (the writer's 'ready'), false when the upload failed first. */
  readonly claimed: Promise<boolean>;
  /** Resolves once the writer has every byte (its source ended), or the upload settled. */
  readonly handedOver: Promise<void>;
  /** Whether {@link Upload.handedOver} has resolved. */
  readonly isHandedOver: () => boolean;
}

/** Start uploading `file`: the writer claims its key at once. */
async function begin(
  client: RedisClient,
  channel: string,
  file: SendableFile,
  options: Omit<WriteStreamOptions, 'signal'>,
  signal: AbortSignal | undefined,
  hooks: SendHooks,
): Promise<Upload> {
  if (signal?.aborted) throw signalAbortError(signal);
  const name = typeof file === 'string' ? basename(file) : file.name;
  let size: number | undefined;
  let declared: string | undefined;
  if (typeof file === 'string') {
    const local = await inspect(file);
    size = local.size;
    declared = local.gzipped ? 'gzip' : undefined;
  } else ({ size, contentEncoding: declared } = file);
  // A path is read to the size it had when announced (a log that grows meanwhile is sent as it
  // was), so that receivers get the size they were told.
  const source =
    typeof file !== 'string'
      ? file.stream
      : size === 0
        ? Readable.from([])
        : createReadStream(file, { highWaterMark: FILE_READ_BYTES, ...(size === undefined ? {} : { end: size - 1 }) });
  // A key of its own for every upload: a sender run again never meets its earlier files.
  const key = `${channel}/${Date.now().toString(36)}-${randomBytes(4).toString('hex')}/${name}`;
  // Bytes already gzipped are stored as they are, declared as gzip, and not compressed again.
  const encoding = declared === undefined ? {} : { contentEncoding: declared, compress: false };
  const writer = createRedisWriteStream(client, key, { ...options, ...encoding, signal });
  const { onMemoryWait } = hooks;
  // The writer is destroyed by a listener that throws: the upload fails with its exception.
  if (onMemoryWait) writer.on('memoryWait', (wait: MemoryWait) => onMemoryWait({ name, key, size }, wait));
  // The declared size is announced to receivers before any byte is sent; a source that gives
  // other than that many aborts the file before its end record.
  const check = size === undefined ? undefined : sizeCheck(name, key, size);
  const fed: Readable = check ?? source;
  const uploading = upload(source, check ? [check] : [], writer);
  uploading.catch(() => {});
  const settled = uploading.then(
    () => true,
    () => false,
  );
  const claimed = Promise.race([new Promise<boolean>((resolve) => writer.once('ready', () => resolve(true))), settled]);
  let handed = false;
  const handedOver = Promise.race([new Promise<void>((resolve) => fed.once('end', resolve)), settled]).then(() => {
    handed = true;
  });
  return { name, key, size, writer, uploading, claimed, handedOver, isHandedOver: () => handed };
}

/**
 * Files go one after another, announced in order. To spare round trips, the next file starts
 * (its writer claims its key) once the current one has every byte, while its end record is on
 * its way: a small file's claim then travels with the announcement and the end record of the file
 * before it. At most two uploads run at once: the next starts only after the one before the
 * current has finished. Under `maxRedisMemory`, the next starts once the current one has finished.
 */
async function send(
  client: RedisClient,
  log: string,
  channel: string,
  files: readonly SendableFile[],
  options: Omit<WriteStreamOptions, 'signal'>,
  signal: AbortSignal | undefined,
  hooks: SendHooks,
): Promise<SentFile[]> {
  const sent: SentFile[] = [];
  const done = (up: Upload): void => {
    sent.push({ name: up.name, key: up.key, size: up.writer.committedBytes });
  };
  let upcoming: Promise<Upload> | undefined;
  let finishing: Upload | undefined;
  let current: Upload | undefined;
  let announced = false;
  // Under a memory limit, one file at a time: receivers take the files in order, so the bytes of
  // a later file stored early only take the room the file before still needs (both would wait
  // for the other: the writer for memory, its receivers for its last bytes).
  const oneAtATime = options.maxRedisMemory !== undefined;
  try {
    for (let i = 0; i < files.length; i++) {
      announced = false;
      current = await (upcoming ?? begin(client, channel, files[i]!, options, signal, hooks));
      upcoming = undefined;
      const up = current;
      const claimed = await up.claimed;
      if (finishing) {
        await finishing.uploading;
        done(finishing);
        finishing = undefined;
      }
      const startNext = (): void => {
        if (upcoming || i + 1 >= files.length) return;
        upcoming = begin(client, channel, files[i + 1]!, options, signal, hooks);
        upcoming.catch(() => {});
      };
      if (up.isHandedOver() && !oneAtATime) startNext();
      // Announced once the file exists, so that a receiver finds it at once: a file announced and
      // missing is then one that is gone (read by all its consumers, or expired).
      if (claimed) {
        const fields: (string | number)[] = [ChannelField.file, up.key, ChannelField.name, up.name];
        if (up.size !== undefined) fields.push(ChannelField.size, up.size);
        try {
          await portOf(client).send(log, ['XADD', log, '*', ...fields]);
        } catch (err) {
          throw wrapRedisError(err, channel, `announcing ${JSON.stringify(up.name)} on the channel`, 'Channel');
        }
        announced = true;
        hooks.onStart?.({ name: up.name, key: up.key, size: up.size });
      }
      await up.handedOver;
      if (oneAtATime) await up.uploading;
      startNext();
      // A failure of this upload before it had every byte is reported now, not after the next
      // file was begun.
      if (!claimed) await up.uploading;
      finishing = up;
      current = undefined;
    }
    if (finishing) {
      await finishing.uploading;
      done(finishing);
    }
    return sent;
  } catch (err) {
    // A file announced is aborted, as a lone upload would be; one begun early and not announced
    // yet is removed: receivers never hear of it. The file before, which has all its bytes,
    // finishes.
    const removeIt = (up: Upload) => () => remove(client, up.key, { prefix: options.prefix });
    await Promise.all([
      current && stopUpload(current, err, announced ? undefined : removeIt(current)),
      finishing?.uploading.catch(() => {}),
      upcoming?.then(
        (up) => stopUpload(up, err, removeIt(up)),
        () => {},
      ),
    ]);
    throw err;
  }
}

/** Destroy an upload that is not finished yet (marking its file aborted), then run `after`. */
async function stopUpload(up: Upload, err: unknown, after?: () => Promise<unknown>): Promise<void> {
  if (!up.writer.writableFinished) up.writer.destroy(err instanceof Error ? err : undefined);
  await up.uploading.catch(() => {});
  await after?.().catch(() => {});
}

/** A pass-through that fails (the upload then aborts) when the bytes through it are not `size`. */
function sizeCheck(name: string, key: string, size: number): Transform {
  let seen = 0;
  const mismatch = (what: string) =>
    new RedisFileError(
      ErrorCodes.ABORTED,
      `${JSON.stringify(name)}: its source gave ${what} than the ${size} bytes announced as its size; the file is aborted`,
      { key },
    );
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      callback(seen > size ? mismatch('more') : null, chunk);
    },
    flush(callback) {
      callback(seen < size ? mismatch(`${seen} bytes, fewer`) : null);
    },
  });
}

/**
 * The size of the file at `path` (`undefined` when it says 0 bytes and has some, as the files of
 * /proc do: such a file is read to its end), and whether it starts with gzip's magic bytes.
 */
async function inspect(path: string): Promise<{ size: number | undefined; gzipped: boolean }> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    return { size: size > 0 || bytesRead === 0 ? size : undefined, gzipped: bytesRead === 2 && looksGzipped(head) };
  } finally {
    await handle.close();
  }
}
