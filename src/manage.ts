/**
 * Operations on stored files as a whole: stat and remove.
 * @module
 */

import type { RedisClient } from './client.js';
import { badFormat, notFound, wrapRedisError } from './errors.js';
import { type FileKeys, type FileState, fileKeys, FORMAT_VERSION, parseMeta } from './format.js';
import { checkClientAndKey, type KeyOptions, resolveKeyOptions } from './options.js';
import { REMOVE, runScript } from './scripts.js';

/** What {@link stat} tells about a stored file. */
export interface FileStat {
  /** The file's key. */
  readonly key: string;
  /** `writing` while a writer is at work, `complete` once the end record is stored, or `aborted`. */
  readonly state: FileState;
  /** Stored bytes: the whole file once complete, the committed prefix while writing. */
  readonly size: number;
  /** Stored chunks (same rule as `size`). */
  readonly chunks: number;
  /** Size of every chunk but the last. */
  readonly chunkSize: number;
  /** Content encoding of the stored bytes: `'gzip'`, `'identity'`, or what the writer declared. */
  readonly contentEncoding: string;
  /** MIME type given by the writer, if any. */
  readonly contentType: string | undefined;
  /** User metadata given by the writer. */
  readonly metadata: Readonly<Record<string, string>>;
  /** CRC-32 of the whole file (8 hex digits), once complete. */
  readonly crc32: string | undefined;
  /** When the file was created (server clock). */
  readonly created: Date;
  /** Last progress of the writer (server clock). */
  readonly updated: Date;
  /** Seconds until the file expires, or `undefined` when it does not expire. */
  readonly ttl: number | undefined;
}

/**
 * Describe the file stored at `key`.
 * @throws TypeError / RangeError for bad arguments, at the call
 * @throws RedisFileError (as a rejection) `ERR_REDIS_FILE_NOT_FOUND` when there is none,
 * `ERR_REDIS_FILE_FORMAT` when the key holds something this version cannot read
 */
export function stat(client: RedisClient, key: string, options?: KeyOptions): Promise<FileStat> {
  checkClientAndKey(client, key);
  return statFile(client, key, fileKeys(resolveKeyOptions(options).prefix, key));
}

async function statFile(client: RedisClient, key: string, keys: FileKeys): Promise<FileStat> {
  let raw: Record<string, string>;
  let ttl: number;
  try {
    [raw, ttl] = await Promise.all([client.hgetall(keys.meta), client.ttl(keys.meta)]);
  } catch (err) {
    throw wrapRedisError(err, key, 'stat');
  }
  const meta = parseMeta(raw);
  if (meta === undefined) throw notFound(key);
  if (typeof meta === 'string') throw badFormat(key, meta);
  return {
    key,
    state: meta.state,
    size: meta.size,
    chunks: meta.chunks,
    chunkSize: meta.chunkSize,
    contentEncoding: meta.encoding,
    contentType: meta.contentType,
    metadata: meta.metadata,
    crc32: meta.crc32,
    created: new Date(meta.created),
    updated: new Date(meta.updated),
    ttl: ttl >= 0 ? ttl : undefined,
  };
}

/**
 * Delete the file stored at `key`, all its keys in one atomic step. Readers following it fail with
 * `ERR_REDIS_FILE_NOT_FOUND`; a writer still writing it fails with `ERR_REDIS_FILE_ABORTED`.
 * @returns true when a file was removed, false when there was none
 * @throws TypeError / RangeError for bad arguments, at the call
 */
export function remove(client: RedisClient, key: string, options?: KeyOptions): Promise<boolean> {
  checkClientAndKey(client, key);
  return removeFile(client, key, fileKeys(resolveKeyOptions(options).prefix, key));
}

async function removeFile(client: RedisClient, key: string, keys: FileKeys): Promise<boolean> {
  try {
    for (let attempt = 0; attempt < 10; attempt++) {
      const gen = (await client.hget(keys.meta, 'gen')) ?? '';
      const reply = await runScript(client, REMOVE, [keys.meta, keys.events, keys.chunks(gen)], [gen, FORMAT_VERSION]);
      if (reply === 0) return false;
      if (reply === 1) return true;
      const [status, detail] = reply as [string, string];
      if (status === 'format') throw badFormat(key, `will not remove this key: ${detail}`);
      // 'retry': the file was replaced between reading its generation and the script.
    }
  } catch (err) {
    throw wrapRedisError(err, key, 'remove');
  }
  throw wrapRedisError(new Error('the file keeps being replaced'), key, 'remove');
}
