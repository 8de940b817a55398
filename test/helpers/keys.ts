/**
 * A file's Redis keys for tests that look at or damage what is stored, named by the package's own
 * format module rather than spelled out by hand.
 */
import type { Cluster, Redis } from 'ioredis';
import { formatCrc, crc32 } from '../../src/crc.js';
import { DEFAULT_PREFIX, type FileKeys, fileKeys } from '../../src/format.js';

export type { FileKeys };

/** The keys of the file `key` (metadata hash, events, and the chunk stream of a generation). */
export function fileKeysOf(key: string, prefix = DEFAULT_PREFIX): FileKeys {
  return fileKeys(prefix, key);
}

/** The key of the file's current chunk stream (from the generation its hash names). */
export async function chunkStreamOf(redis: Redis | Cluster, key: string, prefix = DEFAULT_PREFIX): Promise<string> {
  const keys = fileKeys(prefix, key);
  const gen = await redis.hget(keys.meta, 'gen');
  if (gen === null) throw new Error(`no file at ${key}`);
  return keys.chunks(gen);
}

/** The fields of a piece entry holding `data`, as the format stores them. */
export function pieceFields(data: Buffer): (string | Buffer)[] {
  return ['d', data, 'c', formatCrc(crc32(data))];
}
