/**
 * The storage format: every key name and every entry encoding lives here, and only here.
 * `docs/format.md` describes the same thing for people who inspect Redis with redis-cli; keep the
 * two in step, and bump {@link FORMAT_VERSION} for any change an older reader would misread.
 *
 * A file `K` under the prefix `P` (default `rfs:`) is three keys sharing the hash tag `{K'}`, where
 * `K'` is `K` with `%`, `{` and `}` percent-encoded, so that all of them land on one cluster slot
 * whatever characters `K` holds:
 *
 * - `P{K'}:meta`         hash: state, sizes, encodings, user metadata, times, the writer's lease
 * - `P{K'}:chunks:<gen>` stream: a header entry, then one entry per chunk, then an end record
 * - `P{K'}:events`       stream: short log of `created` / `removed` events, so that waiting readers
 *                        wake at once instead of polling
 *
 * `<gen>` is a random token chosen when the file is created. Overwriting a file creates a new
 * generation under a new stream key, so a reader of the old file, or a writer that lost its lease,
 * can never mix its bytes with the new file's.
 * @internal
 * @module
 */

import type { Buffer } from 'node:buffer';

/** @internal Bumped whenever an older reader would misread what a newer writer stores. */
export const FORMAT_VERSION = 1;
/** @internal */
export const DEFAULT_PREFIX = 'rfs:';

/** @internal Names of the Redis keys of one file. */
export interface FileKeys {
  /** The metadata hash. */
  readonly meta: string;
  /** The event stream. */
  readonly events: string;
  /** The chunk stream of one generation. */
  chunks(gen: string): string;
}

/**
 * Percent-encode the three characters that would break the hash tag or the decoding.
 * @internal
 */
export function encodeKey(key: string): string {
  return key.replace(/[%{}]/g, (c) => (c === '%' ? '%25' : c === '{' ? '%7B' : '%7D'));
}

/** @internal Inverse of {@link encodeKey}. */
export function decodeKey(encoded: string): string {
  return encoded.replace(/%(25|7B|7D)/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** @internal */
export function fileKeys(prefix: string, key: string): FileKeys {
  const base = `${prefix}{${encodeKey(key)}}:`;
  return {
    meta: `${base}${META_SUFFIX.slice(1)}`,
    events: `${base}events`,
    chunks: (gen: string) => `${base}chunks:${gen}`,
  };
}

/**
 * The key of a channel's announcement log: `P` + `channel:{name'}:log`. File keys always follow
 * the prefix with `{`, so no file key can collide with a channel's.
 * @internal
 */
export function channelLogKey(prefix: string, channel: string): string {
  return `${prefix}channel:{${encodeKey(channel)}}:log`;
}

/** @internal Fields of a channel's log entries. */
export const ChannelField = Object.freeze({
  /** Announces a file: its key in Redis; with `name` (and `size` when known). */
  file: 'file',
  name: 'name',
  size: 'size',
  /** Closes the channel: a random token, so that every close is a distinct entry. */
  close: 'close',
} as const);

/** @internal The suffix of metadata keys, which `list` scans for. */
export const META_SUFFIX = ':meta';

/**
 * The SCAN pattern for the metadata keys of files whose key matches the Redis glob `match`.
 * Literal `%`, `{` and `}` are encoded like keys; where that cannot be done exactly (inside a
 * bracket class or after an escape) the pattern widens to `*`, and the caller filters by
 * {@link decodeMetaKey} and its own match.
 * @internal
 */
export function scanPattern(prefix: string, match: string): string {
  const exact = !/[[\\]/.test(match);
  return `${escapeGlob(prefix)}{${exact ? encodeKey(match) : '*'}}${META_SUFFIX}`;
}

/** @internal The file key of a metadata key found by SCAN, or undefined for any other key. */
export function decodeMetaKey(prefix: string, redisKey: string): string | undefined {
  if (!redisKey.startsWith(`${prefix}{`) || !redisKey.endsWith(`}${META_SUFFIX}`)) return undefined;
  const encoded = redisKey.slice(prefix.length + 1, -(META_SUFFIX.length + 1));
  return /[{}]/.test(encoded) ? undefined : decodeKey(encoded);
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/**
 * Stream entry ids. The millisecond part is the record number; the sequence part is 1 for the
 * header (Redis forbids `0-0`, so the header needs `0-1`) and 2 for every record after it, so that
 * `XRANGE key 5 5` in redis-cli shows chunk 5 and a retried XADD of chunk `n` is refused by Redis
 * instead of being stored twice.
 * @internal
 */
export const HEADER_ID = '0-1';

/** @internal Entry id of record `n` (chunk `n`, or the end record when `n` is the chunk count). */
export function recordId(n: number): string {
  return `${n}-2`;
}

/** @internal Record number of an entry id, or -1 for an id this format never writes. */
export function parseRecordId(id: string): number {
  const dash = id.indexOf('-');
  if (dash <= 0 || id.slice(dash + 1) !== '2') return -1;
  const n = Number(id.slice(0, dash));
  return Number.isSafeInteger(n) && n >= 0 ? n : -1;
}

/** @internal Field names of the entries in a chunk stream. */
export const Field = Object.freeze({
  /** Header entry: the format version. */
  header: 'rfs',
  /** Chunk entry: the bytes. */
  data: 'd',
  /** End record: total size; with `chunks` and `crc32`. */
  end: 'end',
  chunks: 'chunks',
  crc32: 'crc32',
  /** Abort record: the reason. */
  abort: 'abort',
} as const);

/** @internal A decoded chunk-stream entry. */
export type Entry =
  | { readonly kind: 'header'; readonly n: -1; readonly version: string; readonly fields: Map<string, Buffer> }
  | { readonly kind: 'chunk'; readonly n: number; readonly data: Buffer }
  | { readonly kind: 'end'; readonly n: number; readonly size: number; readonly chunks: number; readonly crc32: string | undefined }
  | { readonly kind: 'abort'; readonly n: number; readonly reason: string }
  | { readonly kind: 'unknown'; readonly n: number; readonly id: string };

/** @internal Decode one entry as returned by `XRANGE`/`XREAD` in buffer mode. */
export function decodeEntry(id: Buffer, fields: Buffer[]): Entry {
  const idText = id.toString('latin1');
  if (idText === HEADER_ID) {
    const map = new Map<string, Buffer>();
    for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!.toString('latin1'), fields[i + 1]!);
    return { kind: 'header', n: -1, version: map.get(Field.header)?.toString('latin1') ?? '', fields: map };
  }
  const n = parseRecordId(idText);
  const name = fields[0]?.toString('latin1');
  if (n < 0 || name === undefined) return { kind: 'unknown', n, id: idText };
  if (name === Field.data && fields.length === 2) return { kind: 'chunk', n, data: fields[1]! };
  if (name === Field.end) {
    const map = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!.toString('latin1'), fields[i + 1]!.toString('latin1'));
    return {
      kind: 'end',
      n,
      size: Number(map.get(Field.end)),
      chunks: Number(map.get(Field.chunks)),
      crc32: map.get(Field.crc32),
    };
  }
  if (name === Field.abort) return { kind: 'abort', n, reason: fields[1]?.toString('utf8') ?? '' };
  return { kind: 'unknown', n, id: idText };
}

/** @internal Field names of the metadata hash. */
export const Meta = Object.freeze({
  version: 'v',
  gen: 'gen',
  state: 'state',
  chunkSize: 'chunkSize',
  size: 'size',
  chunks: 'chunks',
  encoding: 'encoding',
  contentType: 'contentType',
  metadata: 'metadata',
  crc32: 'crc32',
  created: 'created',
  updated: 'updated',
  writer: 'writer',
  heartbeat: 'hb',
  heartbeatInterval: 'hbi',
  consumers: 'consumers',
  acks: 'acks',
  trim: 'trim',
  trimmed: 'trimmed',
  /** Set ('1') when the writer aborted because Redis lost chunks it had acknowledged (a failover). */
  lost: 'lost',
} as const);

/** @internal The key of the stream that announces freed memory to writers held back by a limit. */
export function memoryEventsKey(prefix: string): string {
  return `${prefix}memory:freed`;
}

/** @internal Prefix of the metadata fields that record a consumer's acknowledgement. */
export const ACK_FIELD = 'ack:';

/** The lifecycle of a stored file. */
export type FileState = 'writing' | 'complete' | 'aborted';

/** @internal The metadata hash, parsed. */
export interface MetaRecord {
  readonly version: number;
  readonly gen: string;
  readonly state: FileState;
  readonly chunkSize: number;
  readonly size: number;
  readonly chunks: number;
  readonly encoding: string;
  readonly contentType: string | undefined;
  readonly metadata: Record<string, string>;
  readonly crc32: string | undefined;
  readonly created: number;
  readonly updated: number;
  readonly heartbeat: number;
  /** The writer's heartbeat interval in ms: its lease is stale after three of them. */
  readonly heartbeatInterval: number;
  /** Who must read the file before it is deleted: a count or names, as the writer set it. */
  readonly consumers: number | readonly string[] | undefined;
  /** The consumers that acknowledged the file. */
  readonly acknowledgedBy: readonly string[];
  /** Whether consumers may trim the chunks they all read. */
  readonly trim: boolean;
  /** Chunks 0 to `trimmed - 1` were trimmed: every consumer had read them. */
  readonly trimmed: number;
  /** The writer aborted because Redis lost chunks it had acknowledged: the stored file has a gap. */
  readonly lost: boolean;
}

/**
 * Parse the metadata hash, as `HGETALL` returns it. Returns `undefined` for a missing hash, and a
 * string describing the problem for a hash this version cannot read.
 * @internal
 */
export function parseMeta(raw: Record<string, string> | null | undefined): MetaRecord | undefined | string {
  if (raw == null || Object.keys(raw).length === 0) return undefined;
  const version = Number(raw[Meta.version]);
  if (!Number.isInteger(version) || version < 1) return 'the metadata hash carries no storage format version';
  if (version !== FORMAT_VERSION) {
    return `stored in format version ${raw[Meta.version]}; this version of redis-file-stream reads version ${FORMAT_VERSION}`;
  }
  const state = raw[Meta.state];
  if (state !== 'writing' && state !== 'complete' && state !== 'aborted') return `unknown state ${JSON.stringify(state)}`;
  const chunkSize = Number(raw[Meta.chunkSize]);
  const gen = raw[Meta.gen];
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1 || !gen) return 'the metadata hash is incomplete';
  let metadata: Record<string, string> = {};
  let consumers: number | readonly string[] | undefined;
  try {
    metadata = raw[Meta.metadata] ? (JSON.parse(raw[Meta.metadata]) as Record<string, string>) : {};
    consumers = raw[Meta.consumers] ? (JSON.parse(raw[Meta.consumers]) as number | string[]) : undefined;
  } catch {
    return 'the user metadata or the consumers are not valid JSON';
  }
  const acknowledgedBy = Object.keys(raw)
    .filter((field) => field.startsWith(ACK_FIELD))
    .map((field) => field.slice(ACK_FIELD.length));
  return {
    version,
    gen,
    state,
    chunkSize,
    size: Number(raw[Meta.size] ?? 0),
    chunks: Number(raw[Meta.chunks] ?? 0),
    encoding: raw[Meta.encoding] || 'identity',
    contentType: raw[Meta.contentType] || undefined,
    metadata,
    crc32: raw[Meta.crc32] || undefined,
    created: Number(raw[Meta.created] ?? 0),
    updated: Number(raw[Meta.updated] ?? 0),
    heartbeat: Number(raw[Meta.heartbeat] ?? 0),
    heartbeatInterval: Number(raw[Meta.heartbeatInterval] ?? 0),
    consumers,
    acknowledgedBy,
    trim: raw[Meta.trim] === '1',
    trimmed: Number(raw[Meta.trimmed] ?? 0),
    lost: raw[Meta.lost] === '1',
  };
}

/** @internal A CRC-32 as stored: 8 lowercase hex digits. */
export function formatCrc(crc: number): string {
  return crc.toString(16).padStart(8, '0');
}

/** @internal The gzip magic bytes, used to detect gzip input that was not declared. */
export function looksGzipped(bytes: Buffer): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** @internal Events in the `events` stream. */
export const Event = Object.freeze({
  created: 'created',
  removed: 'removed',
  /** The writer deleted entries past a gap left by a refused write, and writes them again. */
  repaired: 'repaired',
  resumed: 'resumed',
} as const);
/** @internal How many events the `events` stream keeps (approximate trim). */
export const EVENTS_MAXLEN = 16;
