/**
 * A file's metadata hash (its fields, states and flags, and its strict parsing), the events of its
 * event stream, the writer's lease rule, and the constants the scripts share with the package.
 * @internal
 * @module
 */

import { parseCrc } from '../crc.js';
import { FORMAT_VERSION, parseNumber } from './conventions.js';

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
  if (state !== State.writing && state !== State.complete && state !== State.aborted)
    return corrupt(state === undefined ? 'has no state' : `has an unknown state ${JSON.stringify(state)}`);
  const gen = raw[Meta.gen];
  if (gen === undefined || !/^[0-9a-f]{16}$/.test(gen)) return corrupt('has no generation of 16 lowercase hex digits');
  const numbers = [
    Meta.chunkSize,
    Meta.size,
    Meta.chunks,
    Meta.created,
    Meta.updated,
    Meta.heartbeat,
    Meta.heartbeatInterval,
    Meta.trimmed,
    Meta.dropped,
  ];
  for (const field of numbers)
    if (num(field) === undefined) return corrupt(`field ${field} is missing or not a number`);
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
  if (raw[Meta.pressure] !== undefined && raw[Meta.pressure] !== Flag.yes)
    return corrupt('field pressure is neither 1 nor absent');
  let metadata: Record<string, string> = {};
  let consumers: number | readonly string[] | undefined;
  try {
    metadata = JSON.parse(raw[Meta.metadata]!) as Record<string, string>;
    consumers = raw[Meta.consumers] ? (JSON.parse(raw[Meta.consumers]!) as number | string[]) : undefined;
  } catch {
    return corrupt('holds user metadata or consumers that are not valid JSON');
  }
  if (
    typeof metadata !== 'object' ||
    metadata === null ||
    Array.isArray(metadata) ||
    Object.values(metadata).some((v) => typeof v !== 'string')
  ) {
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
