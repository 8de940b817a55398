/**
 * What `stat`, `list` and a reader's 'file' event tell about a stored file, made from its hash.
 * @module
 */

import { type FileKeys, type FileState, leaseLapsed, type MetaRecord, State } from './format.js';
import type { RedisPort } from './redis/port.js';
import { run, STORED } from './scripts/index.js';

/** What {@link stat} tells about a stored file. */
export interface FileStat {
  /** The file's key. */
  readonly key: string;
  /** `writing` while a writer is at work, `complete` once the end record is stored, or `aborted`. */
  readonly state: FileState;
  /**
   * Stored bytes: the whole file once complete; while writing, every byte stored so far (from
   * {@link stat}; {@link list} and a reader's `file` event give the last heartbeat's whole chunks);
   * once aborted, the whole chunks a `resume` continues after.
   */
  readonly size: number;
  /** Stored chunks (the last may be partly filled while writing). */
  readonly chunks: number;
  /** Size of every chunk but the last. */
  readonly chunkSize: number;
  /**
   * While `writing`: whether the writer holds its lease (it sent a heartbeat within three of its
   * heartbeat intervals, by the server's clock). A writer that died leaves its file `writing` with
   * `writerAlive` false until another writer resumes or overwrites it, or a reader marks it
   * aborted. Always false once complete or aborted.
   */
  readonly writerAlive: boolean;
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
  /** Who must read the file before it is deleted (the writer's `consumers`), if anyone. */
  readonly consumers: number | readonly string[] | undefined;
  /** The consumers that read the whole file and acknowledged it. */
  readonly acknowledgedBy: readonly string[];
}

/** @internal The server's clock in ms, from a `TIME` reply. */
export function serverMs(time: (string | number)[]): number {
  return Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
}

/** @internal A file's stat from its parsed hash, its TTL (s) and the server's clock (ms). */
export function toFileStat(key: string, meta: MetaRecord, ttl: number, now: number, size = meta.size): FileStat {
  return {
    key,
    state: meta.state,
    size,
    chunks: Math.max(meta.chunks, Math.ceil(size / meta.chunkSize)),
    chunkSize: meta.chunkSize,
    writerAlive: meta.state === State.writing && !leaseLapsed(meta.heartbeat, meta.heartbeatInterval, now),
    contentEncoding: meta.encoding,
    contentType: meta.contentType,
    metadata: meta.metadata,
    // While writing, the hash holds the checksum of the committed prefix: not the file's.
    crc32: meta.state === State.complete ? meta.crc32 : undefined,
    created: new Date(meta.created),
    updated: new Date(meta.updated),
    ttl: ttl >= 0 ? ttl : undefined,
    consumers: meta.consumers,
    acknowledgedBy: meta.acknowledgedBy,
  };
}

/**
 * @internal The bytes stored so far of a file being written (undefined when it changed meanwhile):
 * the hash's size is only the last heartbeat's.
 */
export async function storedSize(client: RedisPort, keys: FileKeys, meta: MetaRecord): Promise<number | undefined> {
  const reply = await run(client, STORED, { meta: keys.meta, chunks: keys.chunks(meta.gen) }, { gen: meta.gen });
  return reply.status === 'ok' ? reply.size : undefined;
}
