/**
 * A file's Redis keys for tests that look at or damage what is stored, named by the package's own
 * format module rather than spelled out by hand.
 */
import type { Cluster, Redis } from 'ioredis';
import { crc32, formatCrc } from '../../src/crc.js';
import {
  channelLogKey,
  DEFAULT_PREFIX,
  encodeKey,
  Field,
  type FileKeys,
  FORMAT_VERSION,
  fileKeys,
  Meta,
} from '../../src/format.js';
import { hashSlot } from '../../src/redis/slot.js';

export type { FileKeys };

/** The keys of the file `key` (metadata hash, events, and the chunk stream of a generation). */
export function fileKeysOf(key: string, prefix = DEFAULT_PREFIX): FileKeys {
  return fileKeys(prefix, key);
}

/**
 * The cluster slot of the file `key`: the slot of its keys, which share one hash tag (its events
 * key is the one a follower watches).
 */
export function slotOfFile(key: string, prefix = DEFAULT_PREFIX): number {
  return hashSlot(fileKeys(prefix, key).events);
}

/** The key of the file's current chunk stream (from the generation its hash names). */
export async function chunkStreamOf(redis: Redis | Cluster, key: string, prefix = DEFAULT_PREFIX): Promise<string> {
  const keys = fileKeys(prefix, key);
  const gen = await redis.hget(keys.meta, Meta.gen);
  if (gen === null) throw new Error(`no file at ${key}`);
  return keys.chunks(gen);
}

/** The key of a channel's announcement log. */
export function channelLogOf(channel: string, prefix = DEFAULT_PREFIX): string {
  return channelLogKey(prefix, channel);
}

/** A KEYS/SCAN pattern for every Redis key of the file `key`: metadata, events, every generation's chunks. */
export function keyPattern(key: string, prefix = DEFAULT_PREFIX): string {
  return `${escapeGlob(keyBase(key, prefix))}*`;
}

/** A KEYS/SCAN pattern for the chunk streams of every generation of the file `key`. */
export function chunkStreamsPattern(key: string, prefix = DEFAULT_PREFIX): string {
  return `${escapeGlob(fileKeys(prefix, key).chunks(''))}*`;
}

/**
 * A KEYS/SCAN pattern for every Redis key of every file whose key matches the glob `match`
 * (e.g. `channel/*` for the files of a channel); braces and `%` in `match` are encoded like keys.
 */
export function filesPattern(match: string, prefix = DEFAULT_PREFIX): string {
  return `${escapeGlob(prefix)}{${encodeKey(match)}}:*`;
}

/** The fields of a piece entry holding `data`, as the format stores them. */
export function pieceFields(data: Buffer): (string | Buffer)[] {
  return [Field.data, data, Field.crc, formatCrc(crc32(data))];
}

/** The fields of the header entry (`0-1`) of a file of generation `gen`, as the format stores them. */
export function headerFields(gen: string, chunkSize: number, encoding = 'identity'): string[] {
  return [
    Field.version,
    String(FORMAT_VERSION),
    Field.gen,
    gen,
    Field.chunkSize,
    String(chunkSize),
    Field.encoding,
    encoding,
  ];
}

/** What every key of the file `key` starts with: the events key without its last name. */
function keyBase(key: string, prefix: string): string {
  const { events } = fileKeys(prefix, key);
  return events.slice(0, events.lastIndexOf(':') + 1);
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
