/**
 * The options of {@link createRedisWriteStream}: their type, their defaults, and their resolver,
 * which checks them all synchronously at the call, before any I/O.
 * @internal
 * @module
 */

import { DEFAULT_PREFIX } from '../format.js';
import {
  type Bag,
  bool,
  checkKnown,
  checkObject,
  consumerName,
  describe,
  incompatible,
  int,
  invalidType,
  invalidValue,
  type KeyOptions,
  PROGRESS_INTERVAL,
  prefix,
  signal,
  str,
} from './common.js';

/** Options of {@link createRedisWriteStream}. */
export interface WriteStreamOptions extends KeyOptions {
  /**
   * Size in bytes of every stored chunk but the last, whatever sizes are written.
   * @default 262144 (256 KiB)
   */
  chunkSize?: number;
  /**
   * Gzip the bytes on the way in; the file is stored with content encoding `gzip`.
   * @default false
   */
  compress?: boolean;
  /**
   * Declares that the written bytes are already encoded (for example `'gzip'` for a `.gz` file),
   * so that a reader with `decompress` decodes them. The file is created before the first byte
   * is written, so nothing is guessed from the bytes: `'identity'` unless declared (the
   * `redis-file` command declares gzip for input that starts with gzip's magic bytes). Tokens are
   * stored in lower case, and `'x-gzip'` as `'gzip'` (HTTP takes them as the same).
   * @default 'identity' ('gzip' with `compress`)
   * @example 'gzip'
   */
  contentEncoding?: string;
  /**
   * MIME type stored with the file.
   * @example 'text/csv'
   */
  contentType?: string;
  /**
   * User metadata stored with the file: a map of strings.
   * @default {}
   */
  metadata?: Record<string, string>;
  /**
   * Replace a complete or aborted file stored at the key. A file that a live writer is still
   * writing is never replaced.
   * @default false
   */
  overwrite?: boolean;
  /**
   * Time to live in seconds, applied to every key of the file when it is created and again when
   * it is complete.
   * @default undefined (no expiry)
   */
  ttl?: number;
  /**
   * Who must read the file before it is deleted: a number of distinct consumers, or their names.
   * Readers name themselves with the read option `consumer` and acknowledge after a complete,
   * verified read; once enough have, the file is deleted, in one step, by a server-side script.
   * Combine with `ttl` as a safety net for consumers that never come.
   * @default undefined (the file stays until removed or expired)
   * @example 10
   * @example ['eu-1', 'eu-2', 'us-1']
   */
  consumers?: number | readonly string[];
  /**
   * Hold back (backpressure, not an error) while Redis's `used_memory` is above this many bytes,
   * until acknowledgements or trimming free memory. With `consumers`, chunks that every consumer
   * has consumed (taken out of its stream, not merely fetched) are trimmed, so that a file larger
   * than the limit still goes through while its consumers follow it. `used_memory` passes the limit
   * by at most one chunk: the writer counts what it sent since its last reading and keeps room for
   * a pending reply (256 KiB) per consumer, so leave at least that much, and a chunk, above the
   * memory Redis uses when the write starts.
   * @default undefined (no limit)
   */
  maxRedisMemory?: number;
  /**
   * Continue a file whose writer died (state `writing` with a stale heartbeat) or was aborted,
   * from the committed size that {@link stat} reports: restart the source at that offset. With
   * no file at the key, a new one is created. Chunk size and encoding are the stored file's.
   * @default false
   */
  resume?: boolean;
  /**
   * Milliseconds to keep retrying while Redis refuses writes, or the writer's heartbeats, for a
   * passing reason (out of memory with `noeviction`, a busy script, loading, a failover) before
   * failing with `ERR_REDIS_FILE_REDIS`. Any other failure of a write or a heartbeat (a command the
   * client timed out, an ACL denial) fails the writer at once.
   * @default 30000
   */
  retryTimeout?: number;
  /**
   * How many piece writes (chunks, or the pieces a flush cut) may wait for Redis's acknowledgement
   * at once: a window of fixed size (within `maxInFlightBytes`). Unset, the window holds 16 chunks
   * and grows past that as far as the link's round trip and throughput call for, up to 1024 pieces
   * and `maxInFlightBytes`.
   * @default undefined (a window sized to the link)
   */
  maxInFlight?: number;
  /**
   * The most bytes of piece writes that may wait for Redis's acknowledgement at once: the
   * writer's memory budget for its window (it keeps each piece until Redis acknowledged it, to
   * send it again after a fault). The window starts at 16 chunks (less when this is smaller), grows
   * while the link's round trip and throughput call for more (about 4 times their product, for a
   * round trip over 2 ms), and shrinks again when they no longer do; at least one piece is always
   * sent.
   * @default 33554432 (32 MiB)
   */
  maxInFlightBytes?: number;
  /**
   * Count a chunk (and the end record) as stored only once this many replicas of the node that
   * holds the file have it, checked with one `WAIT` after the chunks sent together (one such `WAIT`
   * at a time). Redis replicates asynchronously:
   * without this, a chunk Redis acknowledged can be lost when a replica takes over from a failed
   * primary. A chunk that does not reach enough replicas within `waitTimeout` is written again,
   * until `retryTimeout`; then the stream fails with `ERR_REDIS_FILE_TIMEOUT`. Each `WAIT` holds
   * the connection it runs on, so writes slow down to the replicas' pace, and the writer's
   * heartbeats wait behind it: with too few replicas up, a `waitTimeout` longer than three
   * `heartbeatInterval`s (the defaults: 5000 against 3000 ms) lets others take the writer for dead
   * meanwhile. On a cluster, the replicas counted are those of the node that stores the file: the
   * writes and their `WAIT` go together to it (a slot that moves, or is being migrated, sends them
   * to its new node).
   * 0 turns it off.
   * @default 0
   */
  waitReplicas?: number;
  /**
   * Milliseconds each `WAIT` of `waitReplicas` may take.
   * @default 5000
   */
  waitTimeout?: number;
  /**
   * Milliseconds between the writer's heartbeats. A writer silent for three intervals is taken for
   * dead: its key can then be overwritten, and following readers time out.
   * @default 1000
   */
  heartbeatInterval?: number;
  /**
   * Milliseconds after which bytes written but not yet part of a full chunk are stored anyway (as
   * a piece of their chunk), so that followers see a slow writer's data within this interval
   * instead of a chunk later. A writer that fills chunks faster than this stores whole chunks, as
   * if it were off. 0 turns it off: bytes are then stored a chunk at a time, by `flush()`, and at
   * the end. See also {@link RedisWriteStream.flush}.
   * @default 100
   */
  flushInterval?: number;
  /**
   * Least milliseconds between two `progress` events.
   * @default 250
   */
  progressInterval?: number;
  /**
   * Aborts the upload: the stream is destroyed with an `AbortError` and the file marked aborted.
   * Streams given the same signal hold one listener on it between them.
   */
  signal?: AbortSignal;
  /**
   * Bytes buffered before `write()` returns false (on top of the in-flight chunks).
   * @default chunkSize
   */
  highWaterMark?: number;
}

/** @internal */
export const MAX_CHUNK_SIZE = 512 * 1024 * 1024;

/** @internal Resolved write options. */
export interface ResolvedWriteOptions {
  readonly prefix: string;
  readonly chunkSize: number;
  readonly compress: boolean;
  readonly contentEncoding: string | undefined;
  readonly contentType: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly overwrite: boolean;
  readonly consumers: number | readonly string[] | undefined;
  readonly maxRedisMemory: number | undefined;
  readonly resume: boolean;
  readonly retryTimeout: number;
  readonly ttl: number;
  /** The most pieces in flight, and the least the window holds (both `maxInFlight` when set). */
  readonly maxInFlight: number;
  readonly minInFlight: number;
  readonly maxInFlightBytes: number;
  readonly waitReplicas: number;
  readonly waitTimeout: number;
  readonly heartbeatInterval: number;
  readonly flushInterval: number;
  readonly progressInterval: number;
  readonly signal: AbortSignal | undefined;
  readonly highWaterMark: number;
}

const WRITE_DEFAULTS = Object.freeze({
  prefix: DEFAULT_PREFIX,
  chunkSize: 256 * 1024,
  compress: false,
  overwrite: false,
  resume: false,
  retryTimeout: 30_000,
  maxInFlight: 1024,
  minInFlight: 16,
  maxInFlightBytes: 32 * 1024 * 1024,
  waitReplicas: 0,
  waitTimeout: 5000,
  heartbeatInterval: 1000,
  flushInterval: 100,
});

/** @internal The names of {@link WriteStreamOptions}. */
export const WRITE_OPTIONS = [
  'prefix',
  'chunkSize',
  'compress',
  'contentEncoding',
  'contentType',
  'metadata',
  'overwrite',
  'consumers',
  'maxRedisMemory',
  'resume',
  'retryTimeout',
  'ttl',
  'maxInFlight',
  'maxInFlightBytes',
  'waitReplicas',
  'waitTimeout',
  'heartbeatInterval',
  'flushInterval',
  'progressInterval',
  'signal',
  'highWaterMark',
];

/** @internal */
export function resolveWriteOptions(options: WriteStreamOptions | undefined): ResolvedWriteOptions {
  const o = checkObject(options, 'options');
  checkKnown(o, 'options', WRITE_OPTIONS);
  const chunkSize = int(o, 'chunkSize', WRITE_DEFAULTS.chunkSize, 1, MAX_CHUNK_SIZE);
  const compress = bool(o, 'compress', WRITE_DEFAULTS.compress);
  // x-gzip is gzip (RFC 9110, 8.4.1.3): stored as gzip, so that readers with `decompress` decode it.
  const declared = token(o, 'contentEncoding');
  const contentEncoding = declared === 'x-gzip' ? 'gzip' : declared;
  if (compress && contentEncoding !== undefined && contentEncoding !== 'identity') {
    throw incompatible(`\`contentEncoding\` ${describe(o.contentEncoding)}`, '`compress`, which stores gzip');
  }
  const resume = bool(o, 'resume', WRITE_DEFAULTS.resume);
  if (resume && compress) {
    throw incompatible('`resume`', '`compress`: a gzip stream cannot be continued');
  }
  return Object.freeze({
    prefix: prefix(o),
    chunkSize,
    compress,
    contentEncoding: compress ? 'gzip' : contentEncoding,
    contentType: str(o, 'contentType') ?? '',
    metadata: metadata(o),
    overwrite: bool(o, 'overwrite', WRITE_DEFAULTS.overwrite),
    consumers: consumers(o),
    maxRedisMemory:
      o.maxRedisMemory === undefined ? undefined : int(o, 'maxRedisMemory', 0, 1, Number.MAX_SAFE_INTEGER),
    resume,
    retryTimeout: int(o, 'retryTimeout', WRITE_DEFAULTS.retryTimeout, 0, 2 ** 31 - 1),
    ttl: o.ttl === undefined ? 0 : int(o, 'ttl', 0, 1, 2 ** 31 - 1),
    maxInFlight: int(o, 'maxInFlight', WRITE_DEFAULTS.maxInFlight, 1, 1024),
    minInFlight: int(o, 'maxInFlight', WRITE_DEFAULTS.minInFlight, 1, 1024),
    maxInFlightBytes: int(o, 'maxInFlightBytes', WRITE_DEFAULTS.maxInFlightBytes, 1, Number.MAX_SAFE_INTEGER),
    waitReplicas: int(o, 'waitReplicas', WRITE_DEFAULTS.waitReplicas, 0, 1024),
    waitTimeout: int(o, 'waitTimeout', WRITE_DEFAULTS.waitTimeout, 1, 3_600_000),
    heartbeatInterval: int(o, 'heartbeatInterval', WRITE_DEFAULTS.heartbeatInterval, 10, 3_600_000),
    flushInterval: int(o, 'flushInterval', WRITE_DEFAULTS.flushInterval, 0, 3_600_000),
    progressInterval: int(o, 'progressInterval', PROGRESS_INTERVAL, 0, 3_600_000),
    signal: signal(o),
    highWaterMark: int(o, 'highWaterMark', chunkSize, 1, 2 ** 31 - 1),
  });
}

function token(o: Bag, name: string): string | undefined {
  const v = str(o, name);
  if (v !== undefined && !/^[A-Za-z0-9._+-]{1,64}$/.test(v)) {
    throw invalidValue(name, v, 'a content-coding token such as "gzip" or "identity"');
  }
  return v?.toLowerCase();
}

function metadata(o: Bag): Readonly<Record<string, string>> {
  const v = o.metadata;
  if (v === undefined) return Object.freeze({});
  // A plain object only: a Map, a Date or a class instance would be stored as {} (no own entries).
  const proto = typeof v === 'object' && v !== null ? Object.getPrototypeOf(v) : undefined;
  if (proto !== Object.prototype && proto !== null) throw invalidType('metadata', 'a plain object of strings', v);
  const entries = Object.entries(v as object);
  for (const [k, val] of entries) if (typeof val !== 'string') throw invalidType(`metadata.${k}`, 'a string', val);
  // fromEntries defines each key, `__proto__` too (an assignment would drop it).
  return Object.freeze(Object.fromEntries(entries));
}

function consumers(o: Bag): number | readonly string[] | undefined {
  const v = o.consumers;
  if (v === undefined) return undefined;
  if (typeof v === 'number') return int(o, 'consumers', 1, 1, 1_000_000);
  if (!Array.isArray(v)) throw invalidType('consumers', 'a positive integer or an array of names', v);
  if (v.length === 0) throw invalidValue('consumers', v, 'a non-empty array of names');
  // Array.from visits holes too (map skips them), so that each one is refused as undefined.
  const names = Array.from(v, (n: unknown, i) => {
    if (n === undefined) throw invalidType(`consumers[${i}]`, 'a string', n);
    return consumerName(n, `consumers[${i}]`)!;
  });
  if (new Set(names).size !== names.length) throw invalidValue('consumers', v, 'an array of distinct names');
  return Object.freeze(names);
}
