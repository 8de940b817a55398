/**
 * The options of {@link createRedisReadStream}: their type, their defaults, and their resolver,
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
  incompatible,
  int,
  invalidType,
  invalidValue,
  type KeyOptions,
  PROGRESS_INTERVAL,
  prefix,
  signal,
} from './common.js';

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
   * with `start` or `end`. The gzip data (one member or several) must reach the file's last byte:
   * a truncated or damaged stream, or bytes after its last member (zero padding too), fail the read
   * with `ERR_REDIS_FILE_DECODE`. With `follow: false` on a file still being written, the read
   * delivers what the pieces stored now decode to and ends normally; if the file is completed
   * before the read reaches those pieces' end, it reads to the end record, and the gzip data must
   * then be whole.
   * @default false
   */
  decompress?: boolean;
  /**
   * Milliseconds to wait for a key that does not exist yet. With 0, a missing key fails at once
   * with `ERR_REDIS_FILE_NOT_FOUND`; after a longer wait it fails with `ERR_REDIS_FILE_TIMEOUT`,
   * also while Redis does not answer (a stalled server): then once `idleTimeout` has passed since
   * the last look for the file was sent (at most `waitForCreate` + `idleTimeout` in all).
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
   * Verify each piece's CRC-32 before any of its bytes go out, and the CRC-32 of the whole file,
   * stored in the end record, on reads that start at the first byte and reach the end. `false`
   * skips both: a damaged piece's bytes are then delivered as they are. The format (chunk numbers,
   * sizes, ids, records) is always checked.
   * @default true
   */
  checksum?: boolean;
  /**
   * This reader's name as a consumer of the file: after a complete, verified read, once the
   * application has taken the last byte out of the stream (before `'end'`), it acknowledges the
   * file (once per name, however often it reads), which deletes the file when the writer's
   * `consumers` are all done. Under the writer's `maxRedisMemory` it reports how far the
   * application has consumed (the whole chunks taken out of the stream), so that the chunks every
   * consumer consumed are trimmed; one reader per name at a time.
   */
  consumer?: string;
  /**
   * How many chunks one read request fetches at most. Chunks are asked for with all their pieces,
   * so that a file stored in many small pieces (a slowly written log) takes as few requests as one
   * stored in whole chunks (at most 1024 entries a request). A file written under
   * `maxRedisMemory` is read this many entries (chunks, or pieces of chunks) at a time.
   * @default 16
   */
  readAhead?: number;
  /**
   * How many bytes one read request fetches at most, whatever the chunk size: a request asks for
   * `readAheadBytes / chunkSize` chunks (at least 1, at most `readAhead`), so that larger chunks
   * make fewer, not larger, replies. A range that ends before the file does asks for no more
   * chunks than it covers.
   * @default 4194304 (4 MiB)
   */
  readAheadBytes?: number;
  /**
   * The most bytes asked for ahead of those being consumed: the reader's memory budget for its
   * read-ahead (a reader holds at most this plus one request, besides `highWaterMark`). Two
   * requests are read ahead while another is consumed; on a link with a long round trip more are,
   * as many as its round trip and throughput call for, up to this; at least one always is. The
   * default holds four requests of `readAheadBytes`: Redis builds the replies it cannot send yet in
   * its own memory, and across a round trip of 20 ms eight read slower than four.
   * @default 16777216 (16 MiB)
   */
  maxReadAheadBytes?: number;
  /**
   * Least milliseconds between two `progress` events.
   * @default 250
   */
  progressInterval?: number;
  /**
   * Aborts the read: the stream is destroyed with an `AbortError` and leaves its blocking read at
   * once. Streams given the same signal hold one listener on it between them.
   */
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
  readonly readAheadBytes: number;
  readonly maxReadAheadBytes: number;
  readonly progressInterval: number;
  readonly signal: AbortSignal | undefined;
  readonly highWaterMark: number;
  readonly encoding: BufferEncoding | undefined;
}

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
  readAheadBytes: 4 * 1024 * 1024,
  maxReadAheadBytes: 16 * 1024 * 1024,
  highWaterMark: 1024 * 1024,
});

/** @internal The names of {@link ReadStreamOptions}. */
export const READ_OPTIONS = [
  'prefix',
  'start',
  'end',
  'follow',
  'decompress',
  'waitForCreate',
  'idleTimeout',
  'checksum',
  'consumer',
  'readAhead',
  'readAheadBytes',
  'maxReadAheadBytes',
  'progressInterval',
  'signal',
  'highWaterMark',
  'encoding',
];

/** @internal */
export function resolveReadOptions(options: ReadStreamOptions | undefined): ResolvedReadOptions {
  const o = checkObject(options, 'options');
  checkKnown(o, 'options', READ_OPTIONS);
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
    idleTimeout:
      o.idleTimeout === Infinity ? Infinity : int(o, 'idleTimeout', READ_DEFAULTS.idleTimeout, 1, 2 ** 31 - 1),
    checksum: bool(o, 'checksum', READ_DEFAULTS.checksum),
    consumer: consumerName(o.consumer, 'consumer'),
    ackAtEnd: true,
    abandonStale: false,
    readAhead: int(o, 'readAhead', READ_DEFAULTS.readAhead, 1, 1024),
    readAheadBytes: int(o, 'readAheadBytes', READ_DEFAULTS.readAheadBytes, 1, 2 ** 31 - 1),
    maxReadAheadBytes: int(o, 'maxReadAheadBytes', READ_DEFAULTS.maxReadAheadBytes, 1, Number.MAX_SAFE_INTEGER),
    progressInterval: int(o, 'progressInterval', PROGRESS_INTERVAL, 0, 3_600_000),
    signal: signal(o),
    highWaterMark: int(o, 'highWaterMark', READ_DEFAULTS.highWaterMark, 1, 2 ** 31 - 1),
    encoding: encoding(o),
  });
}

function encoding(o: Bag): BufferEncoding | undefined {
  const v = o.encoding;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalidType('encoding', "a character encoding such as 'utf8'", v);
  if (!Buffer.isEncoding(v)) throw invalidValue('encoding', v, "a character encoding Node knows, such as 'utf8'");
  return v;
}
