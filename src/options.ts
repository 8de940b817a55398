/**
 * Options of the factories and of the file operations: their types, their defaults, and the one
 * place where they are checked. Everything is validated synchronously at the call, before any I/O;
 * bad arguments are `TypeError` / `RangeError` with Node's own error codes, thrown by the stream
 * factories, and the rejection of the promise (or of the first step of the async iterator) that
 * the other functions return.
 * @module
 */

import { isRedisClient, type RedisClient } from './client.js';
import { DEFAULT_PREFIX } from './format.js';

/** Options shared by every call that names a file. */
export interface KeyOptions {
  /**
   * Namespace prefix of every Redis key the package creates, so that an ACL key pattern such as
   * `~rfs:*` can confine a user to them. Must not contain `{` or `}`.
   * @default 'rfs:'
   */
  prefix?: string;
}

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
   * `redis-file` command declares gzip for input that starts with gzip's magic bytes).
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
   * than the limit still goes through while its consumers follow it.
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
   * Milliseconds to keep retrying while Redis refuses writes for a passing reason (out of memory
   * with `noeviction`, a busy script) before failing with `ERR_REDIS_FILE_REDIS`.
   * @default 30000
   */
  retryTimeout?: number;
  /**
   * How many chunk writes may wait for Redis's acknowledgement at once.
   * @default 16
   */
  maxInFlight?: number;
  /**
   * Count a chunk (and the end record) as stored only once this many replicas of the node that
   * holds the file have it, checked with `WAIT` after each write. Redis replicates asynchronously:
   * without this, a chunk Redis acknowledged can be lost when a replica takes over from a failed
   * primary. A chunk that does not reach enough replicas within `waitTimeout` is written again,
   * until `retryTimeout`; then the stream fails with `ERR_REDIS_FILE_TIMEOUT`. Each `WAIT` holds
   * the connection it runs on, so writes slow down to the replicas' pace. 0 turns it off.
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
  /** Aborts the upload: the stream is destroyed and the file marked aborted. */
  signal?: AbortSignal;
  /**
   * Bytes buffered before `write()` returns false (on top of the in-flight chunks).
   * @default chunkSize
   */
  highWaterMark?: number;
}

/** Options of {@link createRedisReadStream}. */
export interface ReadStreamOptions extends KeyOptions {
  /**
   * Offset of the first byte to read. Reading starts at the chunk holding it.
   * @default 0
   */
  start?: number;
  /**
   * Offset of the last byte to read, inclusive, as in `fs.createReadStream`: an `end` at or past
   * the end of the file reads to the end. (A `start` past the end fails with `ERR_REDIS_FILE_RANGE`.)
   * @default Infinity (to the end of the file)
   */
  end?: number;
  /**
   * While the file is being written, wait for the writer (with blocking reads) and end only at the
   * end record. With `false`, read what is stored now and end there.
   * @default true
   */
  follow?: boolean;
  /**
   * Gunzip the bytes when the stored content encoding is gzip; no-op otherwise. Cannot be combined
   * with `start` or `end`.
   * @default false
   */
  decompress?: boolean;
  /**
   * Milliseconds to wait for a key that does not exist yet. With 0, a missing key fails at once
   * with `ERR_REDIS_FILE_NOT_FOUND`; after a longer wait it fails with `ERR_REDIS_FILE_TIMEOUT`.
   * @default 0
   */
  waitForCreate?: number;
  /**
   * Milliseconds without any progress or heartbeat from the writer before a following reader
   * gives up with `ERR_REDIS_FILE_TIMEOUT`. `Infinity` waits forever. (A channel receiver does not
   * wait that long for a dead writer: see {@link receiveFiles}.)
   * @default 30000
   */
  idleTimeout?: number;
  /**
   * Verify the CRC-32 of the whole file, stored in the end record, on reads that start at the
   * first byte and reach the end. Chunk numbers and sizes are always checked.
   * @default true
   */
  checksum?: boolean;
  /**
   * This reader's name as a consumer of the file: after a complete, verified read it acknowledges
   * the file (once per name, however often it reads), which deletes the file when the writer's
   * `consumers` are all done. Under the writer's `maxRedisMemory` it reports how far the
   * application has consumed (the whole chunks taken out of the stream), so that the chunks every
   * consumer consumed are trimmed; one reader per name at a time.
   */
  consumer?: string;
  /**
   * How many chunks one read request fetches: the bound of the read-ahead.
   * @default 16
   */
  readAhead?: number;
  /**
   * Least milliseconds between two `progress` events.
   * @default 250
   */
  progressInterval?: number;
  /** Aborts the read: the stream is destroyed and its blocking connection closed. */
  signal?: AbortSignal;
  /**
   * Bytes buffered in the stream before fetching pauses.
   * @default 1048576 (1 MiB)
   */
  highWaterMark?: number;
  /**
   * Decode the bytes into strings with this character encoding, as `fs.createReadStream` does
   * (the same as calling `setEncoding()`); characters split across pieces come out whole.
   * @default undefined (Buffers)
   * @example 'utf8'
   */
  encoding?: BufferEncoding;
}

/** Options of {@link list}. */
export interface ListOptions extends KeyOptions {
  /**
   * Redis glob on the file keys: `*`, `?`, `[abc]`, `\` to escape.
   * @default '*'
   */
  match?: string;
  /**
   * SCAN's COUNT hint: how much of the keyspace one round trip looks at.
   * @default 1000
   */
  count?: number;
}

/** Options of {@link rename}. */
export interface RenameOptions extends KeyOptions {
  /**
   * Replace a complete or aborted file stored at the new key.
   * @default false
   */
  overwrite?: boolean;
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
  readonly maxInFlight: number;
  readonly waitReplicas: number;
  readonly waitTimeout: number;
  readonly heartbeatInterval: number;
  readonly flushInterval: number;
  readonly progressInterval: number;
  readonly signal: AbortSignal | undefined;
  readonly highWaterMark: number;
}

/** @internal Resolved read options. */
export interface ResolvedReadOptions {
  readonly prefix: string;
  readonly start: number;
  readonly end: number;
  readonly follow: boolean;
  readonly decompress: boolean;
  readonly waitForCreate: number;
  readonly idleTimeout: number;
  readonly checksum: boolean;
  readonly consumer: string | undefined;
  /**
   * Whether the consumer acknowledges at the end of a complete read. Channel receivers report
   * their position as consumers but acknowledge only after processing, with `ack()`.
   */
  readonly ackAtEnd: boolean;
  /**
   * Whether a follower that finds the writer silent for three heartbeat intervals marks the file
   * aborted (when the server agrees the lease is stale), instead of waiting up to `idleTimeout`
   * for a `resume`. Channel receivers do: a channel's sender never resumes a file.
   */
  readonly abandonStale: boolean;
  readonly readAhead: number;
  readonly progressInterval: number;
  readonly signal: AbortSignal | undefined;
  readonly highWaterMark: number;
  readonly encoding: BufferEncoding | undefined;
}

const PROGRESS_INTERVAL = 250;

const WRITE_DEFAULTS = Object.freeze({
  prefix: DEFAULT_PREFIX,
  chunkSize: 256 * 1024,
  compress: false,
  overwrite: false,
  resume: false,
  retryTimeout: 30_000,
  maxInFlight: 16,
  waitReplicas: 0,
  waitTimeout: 5000,
  heartbeatInterval: 1000,
  flushInterval: 100,
});

const READ_DEFAULTS = Object.freeze({
  prefix: DEFAULT_PREFIX,
  start: 0,
  end: Infinity,
  follow: true,
  decompress: false,
  waitForCreate: 0,
  idleTimeout: 30_000,
  checksum: true,
  readAhead: 16,
  highWaterMark: 1024 * 1024,
});

/** @internal */
export function resolveWriteOptions(options: WriteStreamOptions | undefined): ResolvedWriteOptions {
  const o = checkObject(options, 'options');
  checkKnown(o, 'options', [
    'prefix', 'chunkSize', 'compress', 'contentEncoding', 'contentType', 'metadata', 'overwrite', 'consumers', 'maxRedisMemory', 'resume',
    'retryTimeout', 'ttl', 'maxInFlight', 'waitReplicas', 'waitTimeout', 'heartbeatInterval', 'flushInterval', 'progressInterval', 'signal',
    'highWaterMark',
  ]);
  const chunkSize = int(o, 'chunkSize', WRITE_DEFAULTS.chunkSize, 1, MAX_CHUNK_SIZE);
  const compress = bool(o, 'compress', WRITE_DEFAULTS.compress);
  const contentEncoding = token(o, 'contentEncoding');
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
    maxRedisMemory: o.maxRedisMemory === undefined ? undefined : int(o, 'maxRedisMemory', 0, 1, Number.MAX_SAFE_INTEGER),
    resume,
    retryTimeout: int(o, 'retryTimeout', WRITE_DEFAULTS.retryTimeout, 0, 2 ** 31 - 1),
    ttl: o.ttl === undefined ? 0 : int(o, 'ttl', 0, 1, 2 ** 31 - 1),
    maxInFlight: int(o, 'maxInFlight', WRITE_DEFAULTS.maxInFlight, 1, 1024),
    waitReplicas: int(o, 'waitReplicas', WRITE_DEFAULTS.waitReplicas, 0, 1024),
    waitTimeout: int(o, 'waitTimeout', WRITE_DEFAULTS.waitTimeout, 1, 3_600_000),
    heartbeatInterval: int(o, 'heartbeatInterval', WRITE_DEFAULTS.heartbeatInterval, 10, 3_600_000),
    flushInterval: int(o, 'flushInterval', WRITE_DEFAULTS.flushInterval, 0, 3_600_000),
    progressInterval: int(o, 'progressInterval', PROGRESS_INTERVAL, 0, 3_600_000),
    signal: signal(o),
    highWaterMark: int(o, 'highWaterMark', chunkSize, 1, 2 ** 31 - 1),
  });
}

/** @internal */
export function resolveReadOptions(options: ReadStreamOptions | undefined): ResolvedReadOptions {
  const o = checkObject(options, 'options');
  checkKnown(o, 'options', [
    'prefix', 'start', 'end', 'follow', 'decompress', 'waitForCreate', 'idleTimeout', 'checksum', 'consumer', 'readAhead',
    'progressInterval', 'signal', 'highWaterMark', 'encoding',
  ]);
  const start = int(o, 'start', READ_DEFAULTS.start, 0, Number.MAX_SAFE_INTEGER);
  const end = o.end === undefined || o.end === Infinity ? Infinity : int(o, 'end', 0, start, Number.MAX_SAFE_INTEGER);
  const decompress = bool(o, 'decompress', READ_DEFAULTS.decompress);
  if (decompress && (o.start !== undefined || o.end !== undefined)) {
    throw incompatible('`decompress`', '`start` or `end`: gzip cannot be decoded from the middle');
  }
  return Object.freeze({
    prefix: prefix(o),
    start,
    end,
    follow: bool(o, 'follow', READ_DEFAULTS.follow),
    decompress,
    waitForCreate: int(o, 'waitForCreate', READ_DEFAULTS.waitForCreate, 0, 2 ** 31 - 1),
    idleTimeout: o.idleTimeout === Infinity ? Infinity : int(o, 'idleTimeout', READ_DEFAULTS.idleTimeout, 1, 2 ** 31 - 1),
    checksum: bool(o, 'checksum', READ_DEFAULTS.checksum),
    consumer: consumerName(o.consumer, 'consumer'),
    ackAtEnd: true,
    abandonStale: false,
    readAhead: int(o, 'readAhead', READ_DEFAULTS.readAhead, 1, 1024),
    progressInterval: int(o, 'progressInterval', PROGRESS_INTERVAL, 0, 3_600_000),
    signal: signal(o),
    highWaterMark: int(o, 'highWaterMark', READ_DEFAULTS.highWaterMark, 1, 2 ** 31 - 1),
    encoding: encoding(o),
  });
}

/** @internal Options of stat / remove. */
export function resolveKeyOptions(options: KeyOptions | undefined): { readonly prefix: string } {
  const o = checkObject(options, 'options');
  checkKnown(o, 'options', ['prefix']);
  return Object.freeze({ prefix: prefix(o) });
}

/** @internal */
export function resolveListOptions(options: ListOptions | undefined): { prefix: string; match: string; count: number } {
  const o = checkObject(options, 'options');
  checkKnown(o, 'options', ['prefix', 'match', 'count']);
  return Object.freeze({ prefix: prefix(o), match: str(o, 'match') ?? '*', count: int(o, 'count', 1000, 1, 1_000_000) });
}

/** @internal */
export function resolveRenameOptions(options: RenameOptions | undefined): { prefix: string; overwrite: boolean } {
  const o = checkObject(options, 'options');
  checkKnown(o, 'options', ['prefix', 'overwrite']);
  return Object.freeze({ prefix: prefix(o), overwrite: bool(o, 'overwrite', false) });
}

/** @internal Seconds for {@link expire}: a positive integer, or null to remove the expiry. */
export function checkSeconds(seconds: unknown): number | null {
  if (seconds === null) return null;
  if (typeof seconds !== 'number') throw invalidType('seconds', 'a positive integer or null', seconds);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 2 ** 31 - 1) {
    throw outOfRange('seconds', `an integer from 1 to ${2 ** 31 - 1}, or null`, seconds);
  }
  return seconds;
}

/**
 * An iteration whose first step rejects with `err`: how a function that returns an async iterator
 * reports a bad argument, found at the call, without throwing there.
 * @internal
 */
export async function* failedIteration(err: unknown): AsyncGenerator<never, never> {
  throw err;
}

/** @internal Check the client and key arguments every call takes. */
export function checkClientAndKey(client: unknown, key: unknown): asserts client is RedisClient {
  if (!isRedisClient(client)) {
    throw invalidType('client', 'an ioredis Redis or Cluster instance', client);
  }
  if (typeof key !== 'string') throw invalidType('key', 'a string', key);
  if (key.length === 0) throw invalidValue('key', key, 'a non-empty string');
}

// ---------------------------------------------------------------------------------------------
// Checks. Messages follow the pattern "Expected `name` to be <what>, got <what came>"; two options
// that cannot go together say "`a` cannot be combined with `b`: <why>".

type Bag = Record<string, unknown>;

function checkObject(value: unknown, name: string): Bag {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidType(name, 'an object', value);
  return value as Bag;
}

function checkKnown(o: Bag, name: string, known: string[]): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k) && o[k] !== undefined) {
      const message = `Expected \`${name}\` to hold only known options (${known.join(', ')}), got \`${k}\``;
      throw Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_VALUE' });
    }
  }
}

function int(o: Bag, name: string, dflt: number, min: number, max: number): number {
  const v = o[name];
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw invalidType(name, `an integer from ${min} to ${max}`, v);
  if (!Number.isInteger(v) || v < min || v > max) throw outOfRange(name, `an integer from ${min} to ${max}`, v);
  return v;
}

function bool(o: Bag, name: string, dflt: boolean): boolean {
  const v = o[name];
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw invalidType(name, 'a boolean', v);
  return v;
}

function str(o: Bag, name: string): string | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidType(name, 'a string', v);
  return v;
}

function token(o: Bag, name: string): string | undefined {
  const v = str(o, name);
  if (v !== undefined && !/^[A-Za-z0-9._+-]{1,64}$/.test(v)) {
    throw invalidValue(name, v, 'a content-coding token such as "gzip" or "identity"');
  }
  return v?.toLowerCase();
}

function prefix(o: Bag): string {
  const v = str(o, 'prefix') ?? DEFAULT_PREFIX;
  if (/[{}]/.test(v)) throw invalidValue('prefix', v, 'a string without `{` or `}` (they would break the hash tag)');
  return v;
}

function metadata(o: Bag): Readonly<Record<string, string>> {
  const v = o.metadata;
  if (v === undefined) return Object.freeze({});
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidType('metadata', 'an object of strings', v);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw invalidType(`metadata.${k}`, 'a string', val);
    out[k] = val;
  }
  return Object.freeze(out);
}

function consumerName(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidType(name, 'a string', v);
  if (v.length === 0 || v.length > 256) throw invalidValue(name, v, 'a name of 1 to 256 characters');
  return v;
}

function consumers(o: Bag): number | readonly string[] | undefined {
  const v = o.consumers;
  if (v === undefined) return undefined;
  if (typeof v === 'number') return int(o, 'consumers', 1, 1, 1_000_000);
  if (!Array.isArray(v)) throw invalidType('consumers', 'a positive integer or an array of names', v);
  if (v.length === 0) throw invalidValue('consumers', v, 'a non-empty array of names');
  const names = v.map((n, i) => consumerName(n, `consumers[${i}]`)!);
  if (new Set(names).size !== names.length) throw invalidValue('consumers', v, 'an array of distinct names');
  return Object.freeze(names);
}

function signal(o: Bag): AbortSignal | undefined {
  const v = o.signal;
  if (v === undefined) return undefined;
  if (!(v instanceof AbortSignal)) throw invalidType('signal', 'an AbortSignal', v);
  return v;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'Object'}`;
  return typeof value;
}

interface CodedError extends Error {
  code: string;
}

/** @internal */
export function invalidType(name: string, expected: string, got: unknown): TypeError & CodedError {
  return Object.assign(new TypeError(`Expected \`${name}\` to be ${expected}, got ${describe(got)}`), {
    code: 'ERR_INVALID_ARG_TYPE',
  });
}

/** @internal */
export function invalidValue(name: string, got: unknown, expected: string): TypeError & CodedError {
  return Object.assign(new TypeError(`Expected \`${name}\` to be ${expected}, got ${describe(got)}`), {
    code: 'ERR_INVALID_ARG_VALUE',
  });
}

/** @internal Two options given together that cannot go together. */
export function incompatible(what: string, other: string): TypeError & CodedError {
  return Object.assign(new TypeError(`${what} cannot be combined with ${other}`), { code: 'ERR_INVALID_ARG_VALUE' });
}

/** @internal */
export function outOfRange(name: string, expected: string, got: unknown): RangeError & CodedError {
  return Object.assign(new RangeError(`Expected \`${name}\` to be ${expected}, got ${describe(got)}`), {
    code: 'ERR_OUT_OF_RANGE',
  });
}

function encoding(o: Bag): BufferEncoding | undefined {
  const v = o.encoding;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalidType('encoding', 'a character encoding such as \'utf8\'', v);
  if (!Buffer.isEncoding(v)) throw invalidValue('encoding', v, 'a character encoding Node knows, such as \'utf8\'');
  return v;
}
