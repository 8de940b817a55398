/**
 * Operations on stored files as a whole: stat, remove, expire, rename.
 *
 * They are `async` functions, so that a bad argument (checked before any I/O) rejects the promise
 * they return, as every other failure does: a caller's `.catch()` sees it.
 * @module
 */

import { badFormat, corrupt, exists, fileInState, notFound, wrapRedisError } from './errors.js';
import { type FileStat, serverMs, storedSize, toFileStat } from './file-stat.js';
import { type FileKeys, fileKeys, isMetaProblem, Meta, parseMeta, State } from './format.js';
import {
  checkClientAndKey,
  checkSeconds,
  type KeyOptions,
  type RenameOptions,
  resolveKeyOptions,
  resolveRenameOptions,
} from './options.js';
import { createRedisReadStream } from './read-stream.js';
import { portOf, type RedisClient, toRecord } from './redis/port.js';
import { MAX_ATTEMPTS } from './retry.js';
import type { FileRefusal, RenameReply } from './scripts/file.js';
import { EXPIRE, REMOVE, RENAME, run } from './scripts/index.js';
import { upload } from './upload.js';
import { createRedisWriteStream } from './write-stream.js';

/**
 * Describe the file stored at `key`.
 * @throws TypeError / RangeError (as a rejection, never at the call) for bad arguments
 * @throws RedisFileError (as a rejection) `ERR_REDIS_FILE_NOT_FOUND` when there is none,
 * `ERR_REDIS_FILE_FORMAT` when the key holds something this version cannot read
 */
export async function stat(client: RedisClient, key: string, options?: KeyOptions): Promise<FileStat> {
  checkClientAndKey(client, key);
  return statFile(client, key, fileKeys(resolveKeyOptions(options).prefix, key));
}

async function statFile(client: RedisClient, key: string, keys: FileKeys): Promise<FileStat> {
  try {
    // One round trip; a file being written takes a second one, for the bytes stored so far.
    const port = portOf(client);
    const { meta: m } = keys;
    const [raw, ttl, time] = await Promise.all([
      port.send(m, ['HGETALL', m]).then(toRecord),
      port.send(m, ['TTL', m]).then(Number),
      port.send(m, ['TIME']) as Promise<string[]>,
    ]);
    const meta = parseMeta(raw);
    if (meta === undefined) throw notFound(key);
    if (isMetaProblem(meta)) throw meta.problem === 'format' ? badFormat(key, meta.detail) : corrupt(key, meta.detail);
    const size = meta.state === State.writing ? await storedSize(portOf(client), keys, meta) : meta.size;
    return toFileStat(key, meta, ttl, serverMs(time), size ?? meta.size);
  } catch (err) {
    throw wrapRedisError(err, key, 'stat');
  }
}

/**
 * Delete the file stored at `key`, all its keys in one atomic step. Readers following it fail with
 * `ERR_REDIS_FILE_NOT_FOUND`; a writer still writing it fails with `ERR_REDIS_FILE_ABORTED`.
 * @returns true when a file was removed, false when there was none
 * @throws TypeError / RangeError (as a rejection, never at the call) for bad arguments
 */
export async function remove(client: RedisClient, key: string, options?: KeyOptions): Promise<boolean> {
  checkClientAndKey(client, key);
  return removeFile(client, key, fileKeys(resolveKeyOptions(options).prefix, key));
}

async function removeFile(client: RedisClient, key: string, keys: FileKeys): Promise<boolean> {
  return onFile(client, key, keys, 'remove', (gen) =>
    run(portOf(client), REMOVE, { meta: keys.meta, chunks: keys.chunks(gen), events: keys.events }, { gen }),
  );
}

/**
 * Run a whole-file script with the file's current generation, again when the file was replaced in
 * between (the script answers 'retry'). Resolves to whether there was a file.
 */
async function onFile(
  client: RedisClient,
  key: string,
  keys: FileKeys,
  operation: string,
  call: (gen: string) => Promise<{ status: 'ok' } | FileRefusal>,
): Promise<boolean> {
  try {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const gen = (await portOf(client).send(keys.meta, ['HGET', keys.meta, Meta.gen])) as string | null;
      const reply = await call(gen ?? '');
      if (reply.status === 'ok' || reply.status === 'missing') return reply.status === 'ok';
      if (reply.status === 'format') throw badFormat(key, `will not ${operation} this key: ${reply.detail}`);
    }
  } catch (err) {
    throw wrapRedisError(err, key, operation);
  }
  throw wrapRedisError(new Error('the file keeps being replaced'), key, operation);
}

/**
 * Set the time to live of every key of the file at `key`, in seconds; `null` removes it.
 * @returns true when there was a file, false when there was none
 * @throws TypeError / RangeError (as a rejection, never at the call) for bad arguments
 */
export async function expire(
  client: RedisClient,
  key: string,
  seconds: number | null,
  options?: KeyOptions,
): Promise<boolean> {
  checkClientAndKey(client, key);
  const ttl = checkSeconds(seconds);
  return expireFile(client, key, fileKeys(resolveKeyOptions(options).prefix, key), ttl ?? 0);
}

function expireFile(client: RedisClient, key: string, keys: FileKeys, ttl: number): Promise<boolean> {
  return onFile(client, key, keys, 'expire', (gen) =>
    run(portOf(client), EXPIRE, { meta: keys.meta, chunks: keys.chunks(gen), events: keys.events }, { gen, ttl }),
  );
}

/**
 * Rename the file at `from` to `to`, atomically: readers of the old name fail with
 * `ERR_REDIS_FILE_NOT_FOUND`, readers waiting for the new name wake up. A file that is still being
 * written cannot be renamed.
 *
 * On a Redis Cluster the two names usually hash to different slots, often on different nodes, where
 * no script can move keys. The file is then copied, streaming chunk by chunk and verified, to the
 * new name (content, encoding, type, metadata, `consumers` and TTL; acknowledgements already given
 * do not carry over), and the old name is removed once the copy is complete. That move is not
 * atomic: for its duration both names exist, readers of the new name follow the copy as it is
 * written, and a move that fails part way leaves the old name whole and the new name aborted (marked
 * so by the time the promise rejects).
 *
 * A file renamed to its own name stays as it is, whatever `overwrite` says (as `fs.rename` and
 * Redis's `RENAME` do); it must still be there and not being written.
 * @throws TypeError / RangeError (as a rejection, never at the call) for bad arguments
 * @throws RedisFileError (as a rejection) `ERR_REDIS_FILE_NOT_FOUND` when there is no file at
 * `from`, `ERR_REDIS_FILE_EXISTS` when `to` holds a file (without `overwrite`) or `from` is being written
 */
export async function rename(client: RedisClient, from: string, to: string, options?: RenameOptions): Promise<void> {
  checkClientAndKey(client, from);
  checkClientAndKey(client, to);
  const { prefix, overwrite } = resolveRenameOptions(options);
  return renameFile(client, from, to, fileKeys(prefix, from), fileKeys(prefix, to), overwrite, prefix);
}

/** Rename between two hash slots of a cluster: copy the stored bytes as they are, then remove the old name. */
async function copyAcrossSlots(
  client: RedisClient,
  from: string,
  to: string,
  src: FileKeys,
  gen: string,
  overwrite: boolean,
  prefix: string,
): Promise<void> {
  const before = await statFile(client, from, src);
  if (before.state === 'writing') throw exists(from, 'the file is still being written and cannot be renamed');
  await upload(
    // The stored bytes go across untouched (no decompression, no compression), checked against
    // the CRC-32 of the end record on the way.
    createRedisReadStream(client, from, { prefix, decompress: false }),
    [],
    createRedisWriteStream(client, to, {
      prefix,
      overwrite,
      chunkSize: before.chunkSize,
      contentEncoding: before.contentEncoding,
      ...(before.contentType === undefined ? {} : { contentType: before.contentType }),
      metadata: before.metadata,
      ...(before.consumers === undefined ? {} : { consumers: before.consumers as number | string[] }),
      ...(before.ttl === undefined ? {} : { ttl: before.ttl }),
    }),
  );
  // Only the generation that was copied goes: a file stored at the old name meanwhile stays.
  try {
    await run(portOf(client), REMOVE, { meta: src.meta, chunks: src.chunks(gen), events: src.events }, { gen });
  } catch (err) {
    throw wrapRedisError(err, from, `removing the old name after copying it to ${JSON.stringify(to)}`);
  }
}

async function renameFile(
  client: RedisClient,
  from: string,
  to: string,
  src: FileKeys,
  dst: FileKeys,
  overwrite: boolean,
  prefix: string,
): Promise<void> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    let reply: RenameReply;
    let gen: string | null = null;
    try {
      let targetGen: string | null;
      const port = portOf(client);
      [gen, targetGen] = (await Promise.all([
        port.send(src.meta, ['HGET', src.meta, Meta.gen]),
        port.send(dst.meta, ['HGET', dst.meta, Meta.gen]),
      ])) as (string | null)[];
      reply = await run(
        portOf(client),
        RENAME,
        {
          meta: src.meta,
          chunks: src.chunks(gen ?? ''),
          events: src.events,
          toMeta: dst.meta,
          toChunks: dst.chunks(gen ?? ''),
          toEvents: dst.events,
          toOld: dst.chunks(targetGen ?? gen ?? ''),
        },
        { gen: gen ?? '', overwrite: overwrite ? '1' : '0', toGen: targetGen ?? '' },
      );
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('CROSSSLOT'))
        return copyAcrossSlots(client, from, to, src, gen ?? '', overwrite, prefix);
      throw wrapRedisError(err, from, `rename to ${JSON.stringify(to)}`);
    }
    if (reply.status === 'ok') return;
    if (reply.status === 'missing') throw notFound(from);
    if (reply.status === 'busy') throw exists(from, 'the file is still being written and cannot be renamed');
    if (reply.status === 'exists') {
      // A file being written is never replaced, `overwrite` or not: its writer holds it.
      throw exists(
        to,
        reply.state === State.writing
          ? 'a file is being written at the new name, and cannot be replaced while its writer holds it'
          : `${fileInState(reply.state)} is stored at the new name and \`overwrite\` is off`,
      );
    }
    if (reply.status === 'format') throw badFormat(from, `will not rename: ${reply.detail}`);
  }
  throw wrapRedisError(new Error('the files keep changing'), from, 'rename');
}
