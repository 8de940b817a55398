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
import { parseCrc } from './crc.js';

/** @internal Bumped whenever an older reader would misread what a newer writer stores. */
export const FORMAT_VERSION = 2;
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
 * Stream entry ids `<n>-<s>`: the millisecond part is the record number (the chunk a piece belongs
 * to, or the number of the end or abort record), the sequence part the piece number, from 2 (Redis
 * forbids `0-0`, so the header needs `0-1` and pieces start above it). `XRANGE key 5 5` in redis-cli
 * shows every piece of chunk 5, and a retried XADD of a piece is refused by Redis instead of being
 * stored twice.
 * @internal
 */
export const HEADER_ID = '0-1';
/** @internal The sequence number of a chunk's first piece, and of end and abort records. */
export const FIRST_PIECE = 2;
/** @internal The largest sequence number Redis accepts: `<n>-MAX_SEQ` is the last id of record n. */
export const MAX_SEQ = '18446744073709551615';

/** @internal The id of piece `s` of chunk `n` (and of the end or abort record `n` with s = 2). */
export function pieceId(n: number, s: number = FIRST_PIECE): string {
  return `${n}-${s}`;
}

/**
 * @internal The largest id below piece `s` of record `n`: what a stream's last id is set to when
 * everything from that piece on is deleted, so that the piece can be written again.
 */
export function idBefore(n: number, s: number): string {
  if (s > FIRST_PIECE) return `${n}-${s - 1}`;
  return n > 0 ? `${n - 1}-${MAX_SEQ}` : HEADER_ID;
}

/** @internal The record and piece number of an id, or undefined for an id not of that form. */
export function parseId(id: string): { n: number; s: number } | undefined {
  const dash = id.indexOf('-');
  if (dash <= 0) return undefined;
  const n = parseNumber(id.slice(0, dash));
  const s = parseNumber(id.slice(dash + 1));
  return n === undefined || s === undefined ? undefined : { n, s };
}

/**
 * @internal A number as the format stores it: ASCII decimal, no sign, no leading zero, at most
 * 2^53 - 1. Undefined for anything else.
 */
export function parseNumber(text: string | undefined): number | undefined {
  if (text === undefined || !/^(0|[1-9][0-9]{0,15})$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** @internal Field names of the entries in a chunk stream, in the order they are stored. */
export const Field = Object.freeze({
  /** Header: format version, generation, chunk size, content encoding. */
  version: 'rfs',
  gen: 'gen',
  chunkSize: 'chunkSize',
  encoding: 'encoding',
  /** Piece: its bytes and their CRC-32. */
  data: 'd',
  crc: 'c',
  /** End record: total size, chunk count, CRC-32 of the whole file. */
  size: 'end',
  chunks: 'chunks',
  crc32: 'crc32',
  /** Abort record: the reason. */
  abort: 'abort',
} as const);

/** @internal A decoded chunk-stream entry, or the damage found in it. */
export type Entry =
  | {
      readonly kind: 'header';
      readonly id: string;
      readonly version: string;
      readonly gen: string;
      readonly chunkSize: number;
      readonly encoding: string;
    }
  | { readonly kind: 'piece'; readonly id: string; readonly n: number; readonly s: number; readonly data: Buffer; readonly crc: number }
  | {
      readonly kind: 'end';
      readonly id: string;
      readonly n: number;
      readonly s: number;
      readonly size: number;
      readonly chunks: number;
      readonly crc32: number;
    }
  | { readonly kind: 'abort'; readonly id: string; readonly n: number; readonly s: number; readonly reason: string }
  | { readonly kind: 'bad'; readonly id: string; readonly n: number; readonly s: number; readonly detail: string };

function fieldsAre(fields: Buffer[], names: readonly string[]): boolean {
  if (fields.length !== names.length * 2) return false;
  for (let i = 0; i < names.length; i++) if (fields[i * 2]!.toString('latin1') !== names[i]) return false;
  return true;
}

const HEADER_FIELDS = [Field.version, Field.gen, Field.chunkSize, Field.encoding] as const;
const PIECE_FIELDS = [Field.data, Field.crc] as const;
const END_FIELDS = [Field.size, Field.chunks, Field.crc32] as const;
const ABORT_FIELDS = [Field.abort] as const;

/**
 * @internal Decode one entry as returned by `XRANGE`/`XREAD` in buffer mode, strictly: exact field
 * lists, numbers and CRCs of the stored form. Damage decodes to `kind: 'bad'`; a header of another
 * version decodes as a header (the reader refuses its version).
 */
export function decodeEntry(rawId: Buffer | string, fields: Buffer[]): Entry {
  const id = typeof rawId === 'string' ? rawId : rawId.toString('latin1');
  const parsed = parseId(id);
  const n = parsed?.n ?? -1;
  const s = parsed?.s ?? -1;
  const bad = (detail: string): Entry => ({ kind: 'bad', id, n, s, detail });
  if (parsed === undefined) return bad(`entry ${id} has an id this format never writes`);
  if (id === HEADER_ID) {
    if (!fieldsAre(fields, HEADER_FIELDS)) return bad('the header entry does not hold exactly rfs, gen, chunkSize, encoding');
    const chunkSize = parseNumber(fields[5]!.toString('latin1'));
    if (chunkSize === undefined || chunkSize < 1) return bad('the header\'s chunkSize is not a positive number');
    return {
      kind: 'header',
      id,
      version: fields[1]!.toString('latin1'),
      gen: fields[3]!.toString('latin1'),
      chunkSize,
      encoding: fields[7]!.toString('latin1'),
    };
  }
  if (s < FIRST_PIECE) return bad(`entry ${id} has an id this format never writes`);
  const first = fields[0]?.toString('latin1');
  if (first === Field.data) {
    if (!fieldsAre(fields, PIECE_FIELDS)) return bad(`piece ${id} does not hold exactly d and c`);
    const crc = parseCrc(fields[3]!.toString('latin1'));
    if (crc === undefined) return bad(`piece ${id} has a CRC-32 that is not 8 lowercase hex digits`);
    if (fields[1]!.length === 0) return bad(`piece ${id} holds no bytes`);
    return { kind: 'piece', id, n, s, data: fields[1]!, crc };
  }
  if (first === Field.size) {
    if (!fieldsAre(fields, END_FIELDS)) return bad(`the end record ${id} does not hold exactly end, chunks, crc32`);
    const size = parseNumber(fields[1]!.toString('latin1'));
    const chunks = parseNumber(fields[3]!.toString('latin1'));
    const crc32 = parseCrc(fields[5]!.toString('latin1'));
    if (size === undefined || chunks === undefined) return bad(`the end record ${id} holds a size or chunk count that is not a number`);
    if (crc32 === undefined) return bad(`the end record ${id} has a CRC-32 that is not 8 lowercase hex digits`);
    return { kind: 'end', id, n, s, size, chunks, crc32 };
  }
  if (first === Field.abort) {
    if (!fieldsAre(fields, ABORT_FIELDS)) return bad(`the abort record ${id} does not hold exactly abort`);
    return { kind: 'abort', id, n, s, reason: fields[1]!.toString('utf8') };
  }
  return bad(`entry ${id} is neither a piece nor an end or abort record`);
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
  /** How many entries trimming removed in all (the header included). */
  dropped: 'dropped',
  /** Set ('1') when the writer aborted because Redis lost pieces it had acknowledged (a failover). */
  lost: 'lost',
  /**
   * Set ('1') once the writer was held back by its memory limit: only from then on do consumers
   * trim the chunks they all consumed, so that a file that fits is never trimmed.
   */
  pressure: 'pressure',
  /** Prefixes of the per-consumer fields: its acknowledgement, and its position while trimming. */
  ackPrefix: 'ack:',
  posPrefix: 'pos:',
} as const);

/** @internal The values of the hash's flags (`trim`, `lost`), and of a script's boolean arguments. */
export const Flag = Object.freeze({ yes: '1', no: '0' } as const);
/** @internal A consumer's position once it acknowledged the file: it needs nothing more of it. */
export const POSITION_DONE = 'done';
/** @internal The CRC-32 of no bytes, as stored: a new file's `crc32`. */
export const EMPTY_CRC = '00000000';

/** The lifecycle of a stored file. */
export type FileState = 'writing' | 'complete' | 'aborted';

/** @internal The values of the `state` field. */
export const State = Object.freeze({ writing: 'writing', complete: 'complete', aborted: 'aborted' } as const);

/** @internal Events in the `events` stream. */
export const Event = Object.freeze({
  created: 'created',
  removed: 'removed',
  /** The writer deleted entries past a gap left by a refused write, and writes them again. */
  repaired: 'repaired',
  resumed: 'resumed',
  /** The commit deleted the file at once, every consumer having acknowledged it already. */
  consumed: 'consumed',
} as const);

/** @internal Constants the scripts share with the package. */
export const Limits = Object.freeze({
  /** How many events the `events` stream keeps (approximate trim). */
  eventsMaxLen: 16,
  /** How long the events of a file its commit deleted stay (ms): a retried commit reads them. */
  consumedTtl: 60_000,
  /** A writer's lease is stale after this many heartbeat intervals without a heartbeat. */
  leaseFactor: 3,
  /** How many entries `Pmemory:freed` keeps (approximate trim), and how long it outlives its last one (ms). */
  freedMaxLen: 100,
  freedTtl: 60_000,
} as const);

/** @internal The field of an entry of `Pmemory:freed`: the key of the file that freed memory. */
export const FREED_FIELD = 'freed';

/** @internal The key of the stream that announces freed memory to writers held back by a limit. */
export function memoryEventsKey(prefix: string): string {
  return `${prefix}memory:freed`;
}

/** @internal Whether a writer's lease, by its last heartbeat and interval, has lapsed at `now`. */
export function leaseLapsed(heartbeat: number, interval: number, now: number): boolean {
  return now - heartbeat > Limits.leaseFactor * interval;
}

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
  readonly crc32: string;
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
  /** The writer aborted because Redis lost pieces it had acknowledged: the stored file has a gap. */
  readonly lost: boolean;
}

/** @internal Why a metadata hash cannot be read: another format, or damage. */
export interface MetaProblem {
  readonly problem: 'format' | 'corrupt';
  readonly detail: string;
}

/**
 * Parse the metadata hash, as `HGETALL` returns it, strictly (docs/format.md). Returns `undefined`
 * for a missing hash, and a {@link MetaProblem} for a hash of another version or a damaged one.
 * @internal
 */
export function parseMeta(raw: Record<string, string> | null | undefined): MetaRecord | MetaProblem | undefined {
  if (raw == null || Object.keys(raw).length === 0) return undefined;
  const version = raw[Meta.version];
  if (version !== String(FORMAT_VERSION)) {
    return {
      problem: 'format',
      detail:
        version === undefined
          ? 'the metadata hash carries no storage format version'
          : `it is stored in format version ${JSON.stringify(version)}; this version of redis-file-stream reads version ${FORMAT_VERSION}`,
    };
  }
  const corrupt = (detail: string): MetaProblem => ({ problem: 'corrupt', detail: `the metadata hash ${detail}` });
  const num = (field: string): number | undefined => parseNumber(raw[field]);
  const state = raw[Meta.state];
  if (state !== State.writing && state !== State.complete && state !== State.aborted) return corrupt(`has an unknown state ${JSON.stringify(state)}`);
  const gen = raw[Meta.gen];
  if (gen === undefined || !/^[0-9a-f]{16}$/.test(gen)) return corrupt('has no generation of 16 lowercase hex digits');
  const numbers = [Meta.chunkSize, Meta.size, Meta.chunks, Meta.created, Meta.updated, Meta.heartbeat, Meta.heartbeatInterval, Meta.trimmed, Meta.dropped];
  for (const field of numbers) if (num(field) === undefined) return corrupt(`field ${field} is missing or not a number`);
  if (num(Meta.chunkSize)! < 1) return corrupt('has a chunk size of 0');
  const crc = raw[Meta.crc32];
  if (parseCrc(crc) === undefined) return corrupt('field crc32 is missing or not 8 lowercase hex digits');
  const encoding = raw[Meta.encoding];
  if (!encoding) return corrupt('has no encoding');
  if (raw[Meta.trim] !== Flag.yes && raw[Meta.trim] !== Flag.no) return corrupt('field trim is neither 1 nor 0');
  if (raw[Meta.metadata] === undefined || raw[Meta.contentType] === undefined || raw[Meta.consumers] === undefined) {
    return corrupt('lacks metadata, contentType or consumers');
  }
  if (!/^[0-9a-f]{16}$/.test(raw[Meta.writer] ?? '')) return corrupt('has no writer token of 16 lowercase hex digits');
  if (raw[Meta.lost] !== undefined && raw[Meta.lost] !== Flag.yes) return corrupt('field lost is neither 1 nor absent');
  if (raw[Meta.pressure] !== undefined && raw[Meta.pressure] !== Flag.yes) return corrupt('field pressure is neither 1 nor absent');
  let metadata: Record<string, string> = {};
  let consumers: number | readonly string[] | undefined;
  try {
    metadata = JSON.parse(raw[Meta.metadata]!) as Record<string, string>;
    consumers = raw[Meta.consumers] ? (JSON.parse(raw[Meta.consumers]!) as number | string[]) : undefined;
  } catch {
    return corrupt('holds user metadata or consumers that are not valid JSON');
  }
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata) || Object.values(metadata).some((v) => typeof v !== 'string')) {
    return corrupt('holds user metadata that is not an object of strings');
  }
  const acknowledgedBy = Object.keys(raw)
    .filter((field) => field.startsWith(Meta.ackPrefix))
    .map((field) => field.slice(Meta.ackPrefix.length));
  return {
    version: FORMAT_VERSION,
    gen,
    state,
    chunkSize: num(Meta.chunkSize)!,
    size: num(Meta.size)!,
    chunks: num(Meta.chunks)!,
    encoding,
    contentType: raw[Meta.contentType] || undefined,
    metadata,
    crc32: crc!,
    created: num(Meta.created)!,
    updated: num(Meta.updated)!,
    heartbeat: num(Meta.heartbeat)!,
    heartbeatInterval: num(Meta.heartbeatInterval)!,
    consumers,
    acknowledgedBy,
    trim: raw[Meta.trim] === Flag.yes,
    trimmed: num(Meta.trimmed)!,
    lost: raw[Meta.lost] === Flag.yes,
  };
}

/** @internal Whether a parsed hash is a problem rather than a file. */
export function isMetaProblem(meta: MetaRecord | MetaProblem | undefined): meta is MetaProblem {
  return meta !== undefined && 'problem' in meta;
}

/** @internal The gzip magic bytes, used to detect gzip input that was not declared. */
export function looksGzipped(bytes: Buffer): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}
