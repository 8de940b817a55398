/**
 * The storage format: every key name and every entry encoding lives here, under `format/`, and
 * only here; the rest of the package imports it from this module. `docs/format.md` describes the
 * same thing for people who inspect Redis with redis-cli; keep the two in step, and bump
 * {@link FORMAT_VERSION} for any change an older reader would misread.
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
 *
 * - `format/conventions.ts`: the format's version, and numbers as it stores them
 * - `format/keys.ts`: the names of a file's keys, and the SCAN pattern that finds them
 * - `format/chunks.ts`: the chunk stream's entry ids, fields and strict decoding
 * - `format/meta.ts`: the metadata hash, its parsing, the events, the lease rule, shared limits
 * - `format/logs.ts`: the keys beside the files, a channel's log and the freed-memory stream
 * @internal
 * @module
 */

export {
  decodeEntry,
  type Entry,
  FIRST_PIECE,
  Field,
  HEADER_ID,
  idBefore,
  looksGzipped,
  MAX_SEQ,
  parseId,
  pieceId,
} from './format/chunks.js';
export { FORMAT_VERSION, parseNumber } from './format/conventions.js';
export { globMatcher } from './format/glob.js';
export {
  DEFAULT_PREFIX,
  decodeKey,
  decodeMetaKey,
  encodeKey,
  type FileKeys,
  fileKeys,
  META_SUFFIX,
  scanPattern,
} from './format/keys.js';
export { ChannelField, channelLogKey, FREED_FIELD, memoryEventsKey } from './format/logs.js';
export {
  EMPTY_CRC,
  Event,
  type FileState,
  Flag,
  isMetaProblem,
  Limits,
  leaseLapsed,
  Meta,
  type MetaProblem,
  type MetaRecord,
  POSITION_DONE,
  parseMeta,
  State,
} from './format/meta.js';
